"""Sweeps over any hyperparameter grid x seeds as one compiled program: chunked, sharded,
checkpointed.

:func:`run_sweep` lays the grid x seeds out as blocks of runs over every device of
every process (:mod:`wsjax.layout`), and calls one compiled chunk program
(``config.eval_every`` steps, then the evaluation) ``num_steps / eval_every``
times; between chunks it logs progress and checkpoints the sweep
(:mod:`wsjax.checkpoint`). Each run only sees its own key, hyperparameters and
state, so (in the default layout) its numbers depend neither on the grid around
it, nor on how the blocks are split over devices or processes, nor on where the
sweep was stopped and resumed. The results go to files with :mod:`wsjax.results`.

For several processes, call ``jax.distributed.initialize`` first; every
process then runs the same program on its share of the runs, and every
process receives the gathered metrics (write files from process 0 only).
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import jax
import numpy as np
from absl import logging
from jax.sharding import Mesh

from wsjax import checkpoint
from wsjax import layout as layout_lib
from wsjax._api import check_positive_int
from wsjax.results import SweepResult
from wsjax.train import Trainer, axis_values, grid, run_axes

__all__ = ["SweepResult", "run_sweep"]


def run_sweep(
    trainer: Trainer, hyperparams: dict, axes: Mapping[str, Any], num_seeds: int, seed: int = 0,
    data=None, *, vectorize: str = "seeds", checkpoint_dir: str | None = None,
    checkpoint_every: int = 1, on_eval: Callable[[int, dict], None] | None = None,
) -> SweepResult:
    """Train every (grid point, seed) run together, over all devices.

    Args:
      trainer: from ``wsjax.make_train``.
      hyperparams: the base hyperparameters (``trainer.default_hyperparams(...)``).
      axes: ordered name -> values of the grid (see :func:`wsjax.grid`); may be empty.
      num_seeds: S runs per grid point.
      seed: root seed of the S run keys.
      data: passed to the trainer's sampler and eval_fn (None for built-in samplers);
        a pytree of arrays, replicated to every device.
      vectorize: how runs share the hardware (:mod:`wsjax.layout`): ``"seeds"``
        (default), one block per grid point, so that a run's numbers are bitwise those
        of the same run swept alone on any number of devices or processes; ``"runs"``,
        the runs a device holds vmapped together, faster for small models, a run's last
        bits then depending on the layout.
      checkpoint_dir: if given, the sweep's states and the metrics so far are
        saved there (orbax; a checkpoint is whole or absent) every
        ``checkpoint_every`` evaluations, and a sweep started again with the
        same directory resumes from the latest one, on any number of devices.
      on_eval: optional callback (eval_index, metrics of that eval [*grid, S]) after each chunk.

    Returns:
      A :class:`~wsjax.results.SweepResult`.
    """
    num_seeds = check_positive_int(num_seeds, "num_seeds")
    checkpoint_every = check_positive_int(checkpoint_every, "checkpoint_every")
    axes = {name: list(values) for name, values in axes.items()}
    points = grid(hyperparams, axes)  # leaves [G, ...]
    layout = layout_lib.make_layout(points, num_seeds, jax.device_count(), vectorize)
    sweep, state = _start(trainer, points, layout, seed, data)
    shape = (*(len(v) for v in axes.values()), num_seeds)
    with checkpoint.open_manager(checkpoint_dir) as manager:
        history = []
        if checkpoint.latest(manager):
            state, history = _resume(manager, sweep, state, checkpoint_dir)
        _log_start(trainer.config, axes, layout, vectorize)
        progress = _Progress(trainer.config, layout.num_runs, history)

        def chunk_done(state, history):
            e = len(history) - 1
            if manager is not None and (len(history) % checkpoint_every == 0
                                        or len(history) == sweep.num_evals):
                checkpoint.save(manager, sweep.to_runs(state, sweep.state_axes), history)
            metrics = {k: v.reshape(shape) for k, v in history[-1].items()
                       if k != checkpoint.WALL}
            progress.log(e, metrics)
            if on_eval is not None:
                on_eval(e, metrics)

        state = _train_chunks(sweep, state, history, progress, chunk_done)
    return _result(sweep, state, history, hyperparams, axes, progress)


class _Sweep(NamedTuple):
    """A sweep laid out over the devices: what the chunk loop needs.

    Attributes:
      layout: the :class:`~wsjax.layout.Layout`.
      mesh: the devices' mesh.
      state_axes: the vmap axes of a run's State (None for the shared hyperparameters).
      keys: the runs' key data as blocks, on the devices.
      data: the data, replicated on every device.
      chunk: the compiled chunk program, ((keys, states), data) -> (states, metrics).
      num_evals: chunks in the whole sweep.
    """

    layout: layout_lib.Layout
    mesh: Mesh
    state_axes: Any
    keys: Any
    data: Any
    chunk: Callable
    num_evals: int

    def to_devices(self, runs, axes):
        """Host arrays [runs, ...] -> blocks on the devices."""
        return layout_lib.to_devices(layout_lib.to_blocks(runs, axes, self.layout), self.mesh)

    def to_runs(self, blocks, axes):
        """Blocks on the devices -> host arrays [runs, ...], on every process."""
        return layout_lib.from_blocks(layout_lib.to_host(blocks), axes, self.layout)


def _start(trainer: Trainer, points: dict, layout: layout_lib.Layout, seed: int, data):
    """(the :class:`_Sweep`, every run's State at step 0 as blocks on the devices)."""
    mesh = layout_lib.make_mesh()
    hp_axes, s_axes = run_axes(trainer, points, layout)
    seed_keys = np.asarray(jax.random.key_data(
        jax.random.split(jax.random.key(seed), layout.num_seeds)))
    keys, run_hp = layout_lib.run_inputs(
        seed_keys, jax.tree.map(np.asarray, points))  # host arrays [G * S, ...]

    def init_block(block, data):
        del data
        init = lambda key_data, hp: trainer.init(jax.random.wrap_key_data(key_data), hp)
        return jax.vmap(init, in_axes=(0, hp_axes), out_axes=s_axes)(*block)

    def chunk_block(block, data):
        key_data, states = block
        keys = jax.random.wrap_key_data(key_data)
        run_steps = jax.vmap(trainer.run_steps, in_axes=(0, s_axes, None), out_axes=(s_axes, 0))
        states, metrics = run_steps(keys, states, data)
        # Evaluations run one run at a time: their reductions then compile to the same code
        # whatever the block's width. They read a state's params and step only.
        metrics.update(jax.lax.map(lambda run: trainer.evaluate(*run, data),
                                   (keys, states._replace(hyperparams={}))))
        return states, metrics

    sweep = _Sweep(layout, mesh, s_axes, None, layout_lib.to_devices(data, mesh, replicated=True),
                   layout_lib.sharded_program(chunk_block, mesh),
                   trainer.config.num_steps // trainer.config.eval_every)
    sweep = sweep._replace(keys=sweep.to_devices(keys, 0))
    init = layout_lib.sharded_program(init_block, mesh)
    return sweep, init((sweep.keys, sweep.to_devices(run_hp, hp_axes)), sweep.data)


def _resume(manager, sweep: _Sweep, state, checkpoint_dir):
    """(state as blocks on the devices, history) from the latest checkpoint."""
    restored, history = checkpoint.restore(manager, sweep.to_runs(state, sweep.state_axes))
    logging.info("resumed from checkpoint %s at eval %d/%d", checkpoint_dir, len(history),
                 sweep.num_evals)
    return sweep.to_devices(restored, sweep.state_axes), history


def _train_chunks(sweep: _Sweep, state, history: list, progress: _Progress,
                  chunk_done: Callable) -> Any:
    """Run the chunks left, appending each one's metrics [runs] (and the training time so far,
    :data:`wsjax.checkpoint.WALL`) to ``history`` and calling ``chunk_done(state, history)``.

    Returns:
      The final state, as blocks on the devices.
    """
    for _ in range(len(history), sweep.num_evals):
        state, metrics = sweep.chunk((sweep.keys, state), sweep.data)
        metrics = sweep.to_runs(metrics, 0)
        progress.chunk_trained()
        history.append({**metrics, checkpoint.WALL: np.full(sweep.layout.num_runs,
                                                            progress.seconds())})
        chunk_done(state, history)
    return state


def _log_start(config, axes: dict, layout: layout_lib.Layout, vectorize: str) -> None:
    logging.info("sweep: grid %s x %d seeds = %d runs, %d steps each, in %d blocks of %d (%s "
                 "vectorized) over %d devices in %d processes",
                 " x ".join(f"{n}[{len(v)}]" for n, v in axes.items()) or "[1]",
                 layout.num_seeds, layout.num_runs, config.num_steps, layout.num_blocks,
                 layout.width, vectorize, jax.device_count(), jax.process_count())


def _format_seconds(s: float) -> str:
    s = int(round(s))
    return f"{s // 3600:d}:{s % 3600 // 60:02d}:{s % 60:02d}"


class _Progress:
    """The training time of a sweep (this session's and the earlier sessions'), its speed and
    ETA, and the log line after each chunk.

    The first chunk of a session includes the compilation, so the speed is measured from the
    second one on.
    """

    def __init__(self, config, num_runs: int, history: list):
        self.config, self.num_runs = config, num_runs
        self.resumed_from = len(history)
        self.earlier = float(history[-1][checkpoint.WALL][0]) if history else 0.0
        self.start = time.time()
        self.session = 0.0  # this session's training time, read when a chunk's total is
        self.chunk_start = self.start
        self.first_chunk = None  # seconds, compilation included

    def chunk_trained(self) -> None:
        self.session = time.time() - self.start

    def seconds(self) -> float:
        """The training time of every session up to the last chunk trained."""
        return self.earlier + self.session

    def log(self, e: int, metrics: dict) -> None:
        """Log chunk ``e``'s step, speed, ETA and the medians of ``metrics`` over the runs."""
        c, now = self.config, time.time()
        if self.first_chunk is None:
            self.first_chunk = now - self.chunk_start
        # A metric may be NaN in every run (RWS's sleep_loss at insomnia 1): logged as nan.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            medians = " ".join(f"{k} {np.nanmedian(v):.4g}" for k, v in metrics.items()
                               if k != "step")
        step = (e + 1) * c.eval_every
        if e == self.resumed_from:
            logging.info("step %d/%d  first chunk %.1f s (with compilation)  (medians: %s)",
                         step, c.num_steps, self.first_chunk, medians)
        else:
            done = e - self.resumed_from  # chunks after the first
            speed = done * c.eval_every / (now - self.start - self.first_chunk)
            eta = (c.num_steps - step) / speed
            logging.info("step %d/%d  %.0f steps/s  %.3g samples/s  ETA %s  (medians: %s)",
                         step, c.num_steps, speed, speed * self.num_runs * c.batch_size,
                         _format_seconds(eta), medians)


def _result(sweep: _Sweep, state, history: list, hyperparams: dict, axes: dict,
            progress: _Progress) -> SweepResult:
    """The :class:`SweepResult`: every leaf reshaped to [*grid, seed, ...]."""
    shape = (*(len(v) for v in axes.values()), sweep.layout.num_seeds)
    stacked = {k: np.stack([h[k] for h in history], axis=-1) for k in history[0]}
    steps = stacked.pop("step")[0]
    seconds = float(stacked.pop(checkpoint.WALL)[0, -1])
    metrics = {k: v.reshape(*shape, -1) for k, v in stacked.items()}
    final = jax.tree.map(lambda a: a.reshape(*shape, *a.shape[1:]),
                         sweep.to_runs(state, sweep.state_axes))
    return SweepResult(final, metrics, steps,
                       {n: axis_values(hyperparams, n, v) for n, v in axes.items()},
                       np.arange(sweep.layout.num_seeds), seconds, progress.resumed_from,
                       progress.session)
