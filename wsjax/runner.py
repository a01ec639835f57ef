"""Sweeps over any hyperparameter grid x seeds as one compiled program: chunked, sharded,
checkpointed.

The grid (every combination of the named axes' values) x seeds is laid out as
blocks of runs: by default one block per grid point, holding its seeds. Blocks
are sharded over every device of every process (``jax.shard_map`` on a one-axis
``Mesh``); a device maps over its blocks and vmaps the runs of each. The same
compiled chunk program (``config.eval_every`` steps, then the evaluation) is
called ``num_steps / eval_every`` times, so progress is logged and the sweep is
checkpointed (orbax) between chunks. Each run only sees its own key,
hyperparameters and state, and (with the default layout) always runs in a block
of the same shape, so its numbers depend neither on the grid around it, nor on
how the blocks are split over devices or processes, nor on where the sweep was
stopped and resumed. Every grid point uses the same seeds (common random
numbers), so differences between points are not seed noise.

Checkpoints hold the unpadded runs as host arrays, so a sweep may resume on
another number of devices or processes.

For several processes, call ``jax.distributed.initialize`` first; every
process then runs the same program on its share of the runs, and every
process receives the gathered metrics (write files from process 0 only).
"""

from __future__ import annotations

import csv
import json
import logging as std_logging
import math
import os
import time
import warnings
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import jax
import numpy as np
from absl import logging
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from wsjax._api import check_positive_int
from wsjax.train import Trainer, axis_values, grid

__all__ = [
    "SweepResult",
    "VECTORIZE",
    "parse_rates",
    "point_labels",
    "value_label",
    "run_sweep",
    "summarize",
    "summary_markdown",
    "write_results",
]

class SweepResult(NamedTuple):
    """What a sweep returns.

    Attributes:
      state: final states (``State``), every leaf a numpy array with leading axes [*grid, seed].
      metrics: name -> numpy array [*grid, seed, eval].
      steps: [eval] the step after which each evaluation ran.
      axes: ordered name -> numpy array of the values swept along that axis.
      seeds: numpy [S] int: run s used ``jax.random.split(key(seed), S)[s]``.
      seconds: wall time of the training loop (compilation included), summed over every
        session of a resumed sweep: the checkpoints carry the time so far. None when the
        sweep resumed from a checkpoint of an older version, which kept no training time
        (:func:`write_results` then takes the earlier sessions' time from the directory's
        results.json, where a finished earlier session left one).
      resumed_from: number of evaluations restored from a checkpoint (0 for a fresh run).
      session_seconds: the part of ``seconds`` spent in this process (read at the same moment
        as ``seconds``, so never more than it).
    """

    state: Any
    metrics: dict
    steps: np.ndarray
    axes: dict
    seeds: np.ndarray
    seconds: float | None
    resumed_from: int = 0
    session_seconds: float | None = None

    @property
    def grid_shape(self) -> tuple[int, ...]:
        return tuple(len(v) for v in self.axes.values())


def parse_rates(specs) -> list:
    """Parse rates given as strings: "0.1" (both halves) or "0.5:2" (generative:recognition).

    Returns:
      a list of floats and [gen, rec] pairs. 0 is allowed (it freezes a half).

    Raises:
      ValueError: for an empty list, a malformed entry, or a rate that is negative or not finite.
    """
    specs = list(specs)
    if not specs:
        raise ValueError("at least one learning rate is needed")
    out = []
    for spec in specs:
        parts = str(spec).split(":")
        try:
            values = [float(p) for p in parts]
        except ValueError:
            raise ValueError(
                f"learning rate {spec!r} is not a number or a 'gen:rec' pair") from None
        if len(values) not in (1, 2):
            raise ValueError(f"learning rate {spec!r} must be 'rate' or 'generative:recognition'")
        if not all(math.isfinite(v) and v >= 0 for v in values):
            raise ValueError(f"learning rates must be finite and >= 0, got {spec!r}")
        out.append(values[0] if len(values) == 1 else values)
    return out


def value_label(value) -> str:
    """'0.5' for a scalar (or a vector of equal entries), '4:8' for a vector."""
    v = np.atleast_1d(np.asarray(value, np.float64)).ravel()
    if np.all(v == v[0]):
        return f"{v[0]:g}"
    return ":".join(f"{x:g}" for x in v)


class _QuietOrbax:
    """Logging filter for the duration of a sweep: drops orbax's INFO lines (several per
    checkpoint); its warnings and errors, and every other logger's lines, are kept."""

    def filter(self, record) -> bool:
        return record.levelno >= std_logging.WARNING or not (
            record.name.startswith("orbax") or "/orbax/" in record.pathname)


def _format_seconds(s: float) -> str:
    s = int(round(s))
    return f"{s // 3600:d}:{s % 3600 // 60:02d}:{s % 60:02d}"


def _global(array: np.ndarray, sharding: NamedSharding) -> jax.Array:
    """A global array from a host array that every process holds in full."""
    return jax.make_array_from_callback(array.shape, sharding, lambda index: array[index])


def _to_host(tree):
    """Every leaf as a full numpy array on every process."""
    if jax.process_count() > 1:
        return jax.tree.map(np.asarray, multihost_utils.process_allgather(tree, tiled=True))
    return jax.tree.map(np.asarray, tree)


VECTORIZE = ("seeds", "runs")
"""How :func:`run_sweep` lays runs out: see its ``vectorize`` argument."""

_WALL = "wall_seconds"  # in the checkpointed history: training time so far, beside "step"


def _blocks(num_points, num_seeds, num_devices, vectorize):
    """(number of blocks, block width): blocks are vmapped, sharded over devices, mapped in turn."""
    if vectorize == "seeds":
        return -(-num_points // num_devices) * num_devices, num_seeds
    return num_devices, -(-(num_points * num_seeds) // num_devices)


def _to_blocks(runs, num_blocks, width, num_runs):
    """[num_runs, ...] (run g * S + s) -> [num_blocks, width, ...], padding with run 0."""
    def one(a):
        a = np.asarray(a)[:num_runs]
        pad = num_blocks * width - num_runs
        return np.concatenate([a, np.repeat(a[:1], pad, axis=0)]).reshape(
            num_blocks, width, *a.shape[1:])
    return jax.tree.map(one, runs)


def _from_blocks(blocks, num_runs):
    """[num_blocks, width, ...] -> [num_runs, ...], dropping the padding."""
    return jax.tree.map(lambda a: np.asarray(a).reshape(-1, *a.shape[2:])[:num_runs], blocks)


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
      vectorize: how runs share the hardware. ``"seeds"`` (default): the S seeds of
        one grid point are vmapped together and the points a device holds run one
        after another; every run then computes exactly the same program whatever
        the grid, the device count or the process count, so its numbers are
        bitwise those of the same run swept alone (XLA on CPU chooses its
        reduction code from the whole shape, vmapped axis included, so wider
        vmaps round differently). ``"runs"``: all the runs a device holds are
        vmapped together, the faster layout for small models (the seeds layout
        costs 1.25x on the bars main job's 2 points x 16 seeds, 1.46x on 4 x 16);
        a run's numbers then depend on the layout in the last bits.
      checkpoint_dir: if given, the sweep's states and the metrics so far are
        saved there (orbax; a checkpoint is whole or absent) every
        ``checkpoint_every`` evaluations, and a sweep started again with the
        same directory resumes from the latest one, on any number of devices.
      on_eval: optional callback (eval_index, metrics of that eval [*grid, S]) after each chunk.

    Returns:
      A :class:`SweepResult`.
    """
    num_seeds = check_positive_int(num_seeds, "num_seeds")
    checkpoint_every = check_positive_int(checkpoint_every, "checkpoint_every")
    if vectorize not in VECTORIZE:
        raise ValueError(f"vectorize must be one of {VECTORIZE}, got {vectorize!r}")
    config = trainer.config
    axes = {name: list(values) for name, values in axes.items()}
    shape = tuple(len(v) for v in axes.values())
    points = grid(hyperparams, axes)  # leaves [G, ...]
    num_points = int(np.prod(shape, dtype=np.int64))
    num_runs = num_points * num_seeds
    num_evals = config.num_steps // config.eval_every

    devices = jax.devices()
    mesh = Mesh(np.array(devices), ("blocks",))
    sharded = NamedSharding(mesh, PartitionSpec("blocks"))
    replicated = NamedSharding(mesh, PartitionSpec())
    num_blocks, width = _blocks(num_points, num_seeds, len(devices), vectorize)
    blocks = lambda runs: jax.tree.map(lambda a: _global(a, sharded),
                                       _to_blocks(runs, num_blocks, width, num_runs))

    key_data = np.asarray(jax.random.key_data(jax.random.split(jax.random.key(seed), num_seeds)))
    run_keys = np.tile(key_data, (num_points, 1))  # run g * S + s
    run_hp = jax.tree.map(lambda x: np.repeat(np.asarray(x), num_seeds, axis=0), points)
    data = jax.tree.map(lambda x: _global(np.asarray(x), replicated), data)

    def per_device(fn):
        spec = PartitionSpec("blocks")
        return jax.jit(jax.shard_map(fn, mesh=mesh, in_specs=(spec, spec, PartitionSpec()),
                                     out_specs=spec, check_vma=False))

    def init_blocks(keys, hps, data):
        init = jax.vmap(lambda kd, hp: trainer.init(jax.random.wrap_key_data(kd), hp))
        return jax.lax.map(lambda kh: init(*kh), (keys, hps))

    def chunk_blocks(keys, states, data):
        run_steps = jax.vmap(trainer.run_steps, in_axes=(0, 0, None))

        def block(args):
            keys, states = args
            keys = jax.random.wrap_key_data(keys)
            states, metrics = run_steps(keys, states, data)
            # Evaluations run one run at a time: their reductions then compile to the same
            # code whatever the block's width.
            metrics.update(jax.lax.map(lambda ks: trainer.evaluate(ks[0], ks[1], data),
                                       (keys, states)))
            return states, metrics

        return jax.lax.map(block, (keys, states))

    keys_global = blocks(run_keys)
    state = per_device(init_blocks)(keys_global, blocks(run_hp), data)
    chunk_program = per_device(chunk_blocks)

    history: list[dict] = []
    manager, quiet = None, _QuietOrbax()
    handler = logging.get_absl_handler().python_handler
    if checkpoint_dir is not None:
        import orbax.checkpoint as ocp

        handler.addFilter(quiet)
        manager = ocp.CheckpointManager(
            os.path.abspath(checkpoint_dir),
            options=ocp.CheckpointManagerOptions(max_to_keep=2, enable_async_checkpointing=False))
        latest = manager.latest_step()
        if latest is not None:
            target = _from_blocks(_to_host(state), num_runs)
            restored = manager.restore(latest, args=ocp.args.Composite(
                state=ocp.args.StandardRestore(target), history=ocp.args.StandardRestore()))
            state = blocks(restored["state"])
            saved = {k: np.asarray(v) for k, v in restored["history"].items()}
            history = [{k: v[e] for k, v in saved.items()} for e in range(latest)]
            logging.info("resumed from checkpoint %s at eval %d/%d", checkpoint_dir, latest,
                         num_evals)
            if _WALL not in saved:
                logging.warning("the checkpoint does not record the training time before it (an "
                                "older version wrote it): the training time is taken from the "
                                "results.json of a finished earlier session, if there is one")

    logging.info("sweep: grid %s x %d seeds = %d runs, %d steps each, in %d blocks of %d (%s "
                 "vectorized) over %d devices in %d processes",
                 " x ".join(f"{n}[{len(v)}]" for n, v in axes.items()) or "[1]", num_seeds,
                 num_runs, config.num_steps, num_blocks, width, vectorize, len(devices),
                 jax.process_count())
    resumed_from = len(history)
    earlier = float(history[-1][_WALL][0]) if history and _WALL in history[-1] else 0.0
    start = time.time()
    session = 0.0  # this session's training time, read where each chunk's total is recorded
    first_chunk_seconds = None
    try:
        for e in range(resumed_from, num_evals):
            chunk_start = time.time()
            state, metrics = chunk_program(keys_global, state, data)
            metrics = _from_blocks(_to_host(metrics), num_runs)
            session = time.time() - start
            if not history or _WALL in history[0]:
                history.append({**metrics, _WALL: np.full(num_runs, earlier + session)})
            else:
                history.append(metrics)
            if manager is not None and ((e + 1) % checkpoint_every == 0 or e + 1 == num_evals):
                saved = {k: np.stack([h[k] for h in history]) for k in history[0]}
                manager.save(e + 1, args=ocp.args.Composite(
                    state=ocp.args.StandardSave(_from_blocks(_to_host(state), num_runs)),
                    history=ocp.args.StandardSave(saved)))
                manager.wait_until_finished()
            now = time.time()
            if first_chunk_seconds is None:
                first_chunk_seconds = now - chunk_start  # includes compilation: not a speed
                speed, eta = None, None
            else:
                done = e - resumed_from  # chunks after the first
                speed = done * config.eval_every / (now - start - first_chunk_seconds)
                eta = (config.num_steps - (e + 1) * config.eval_every) / speed
            grid_metrics = {k: v.reshape(*shape, num_seeds) for k, v in metrics.items()}
            if on_eval is not None:
                on_eval(e, grid_metrics)
            # A metric may be NaN in every run (RWS's sleep_loss at insomnia 1): logged as nan.
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                medians = " ".join(f"{k} {np.nanmedian(v):.4g}" for k, v in grid_metrics.items()
                                   if k != "step")
            if speed is None:
                logging.info("step %d/%d  first chunk %.1f s (with compilation)  (medians: %s)",
                             (e + 1) * config.eval_every, config.num_steps, first_chunk_seconds,
                             medians)
            else:
                logging.info("step %d/%d  %.0f steps/s  %.3g samples/s  ETA %s  (medians: %s)",
                             (e + 1) * config.eval_every, config.num_steps, speed,
                             speed * num_runs * config.batch_size, _format_seconds(eta), medians)
    finally:
        if manager is not None:
            manager.close()
        handler.removeFilter(quiet)
    stacked = {k: np.stack([h[k] for h in history], axis=-1) for k in history[0]}
    steps = stacked.pop("step")[0]
    wall = stacked.pop(_WALL, None)
    seconds = None if wall is None else float(wall[0, -1])
    out = {k: v.reshape(*shape, num_seeds, num_evals) for k, v in stacked.items()}
    final = jax.tree.map(lambda a: a.reshape(*shape, num_seeds, *a.shape[1:]),
                         _from_blocks(_to_host(state), num_runs))
    return SweepResult(final, out, steps,
                       {n: axis_values(hyperparams, n, v) for n, v in axes.items()},
                       np.arange(num_seeds), seconds, resumed_from, session)


def point_labels(result: SweepResult):
    """[(index tuple, {axis: label})] for every grid point, first axis slowest."""
    out = []
    for index in np.ndindex(*result.grid_shape):
        out.append((index, {n: value_label(v[i]) for (n, v), i in zip(result.axes.items(), index)}))
    return out


def summarize(result: SweepResult, metric: str, lower_is_better: bool = True) -> dict:
    """Per grid point: statistics of the final ``metric`` over seeds, the best seed, the diverged
    ones.

    A run whose final value is NaN or infinite counts as diverged: it is left out
    of the statistics and of "best" (a point whose every run diverged has NaN
    statistics), and the number of such runs is given per point.

    Returns:
      {"metric", "axes": [names], "rows": [per point: labels, mean, std, median,
      min, max, best_seed, diverged], "best": {index, seed, value} or None,
      "best_point": index of the point with the best median, or None}.
    """
    final = np.asarray(result.metrics[metric][..., -1], np.float64)  # [*grid, S]
    sign = 1.0 if lower_is_better else -1.0
    rows = []
    for index, labels in point_labels(result):
        vals = final[index]
        ok = vals[np.isfinite(vals)]
        stats = dict(mean=float(np.mean(ok)), std=float(np.std(ok)), median=float(np.median(ok)),
                     min=float(np.min(ok)), max=float(np.max(ok)),
                     best_seed=int(np.flatnonzero(np.isfinite(vals))[np.argmin(sign * ok)])
                     ) if ok.size else dict(mean=math.nan, std=math.nan, median=math.nan,
                                            min=math.nan, max=math.nan, best_seed=None)
        rows.append(dict(index=list(index), labels=labels, diverged=int(vals.size - ok.size),
                         **stats))
    finite = np.where(np.isfinite(final), sign * final, np.inf)
    best = None
    if np.isfinite(finite).any():
        flat = np.unravel_index(int(np.argmin(finite)), final.shape)
        best = dict(index=[int(i) for i in flat[:-1]], seed=int(flat[-1]),
                    value=float(final[flat]))
    medians = np.array([sign * r["median"] for r in rows])
    best_point = int(np.nanargmin(medians)) if np.isfinite(medians).any() else None
    return {"metric": metric, "axes": list(result.axes), "rows": rows, "best": best,
            "best_point": best_point}


def summary_markdown(summary: dict) -> str:
    """The summary as a Markdown table, one row per grid point."""
    m, names = summary["metric"], summary["axes"]
    head = [*names, f"mean {m}", "std", "median", "min", "max", "best seed", "diverged"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in summary["rows"]:
        cells = [row["labels"][n] for n in names]
        cells += [f"{row[k]:.4f}" for k in ("mean", "std", "median", "min", "max")]
        cells += [str(row["best_seed"]), str(row["diverged"])]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    describe = lambda index: ", ".join(f"{n} {_label_at(summary, index, n)}" for n in names)
    if summary["best"] is None:
        lines.append("Every run diverged: no best run.")
    else:
        b = summary["best"]
        lines.append(f"Best run: {describe(b['index']) or 'the one grid point'}, seed {b['seed']}: "
                     f"{m} = {b['value']:.4f}. Best point by median: "
                     f"{describe(summary['rows'][summary['best_point']]['index']) or 'the one'}.")
    diverged = sum(r["diverged"] for r in summary["rows"])
    if diverged:
        lines.append(f"{diverged} run(s) diverged (NaN or infinite {m}); they are left out of the "
                     "statistics and of the best run.")
    return "\n".join(lines) + "\n"


def _label_at(summary, index, name):
    for row in summary["rows"]:
        if row["index"] == list(index):
            return row["labels"][name]
    raise KeyError(index)


def write_results(output_dir: str, result: SweepResult, metric: str, lower_is_better: bool = True,
                  extra: dict | None = None) -> dict:
    """Write metrics.npz, metrics.csv, summary.md and results.json.

    metrics.npz holds every metric as [*grid, seed, eval], ``step`` [eval],
    ``grid_axes`` (the axis names in order), one array of values per axis under
    its name, and ``seeds``. metrics.csv has one row per (point, seed, eval) and
    one column per axis.

    results.json's ``seconds`` is ``result.seconds``, or, when that is None (a sweep
    resumed from an older version's checkpoint), the ``seconds`` of the results.json
    already there plus this session's, or null if there is none.

    Returns:
      The summary dict (also stored in results.json with ``extra``).
    """
    os.makedirs(output_dir, exist_ok=True)
    clash = set(result.axes) & (set(result.metrics) | {"step", "seeds", "grid_axes"})
    if clash:
        raise ValueError(f"axis names {sorted(clash)} clash with metric names")
    np.savez(os.path.join(output_dir, "metrics.npz"), step=result.steps, seeds=result.seeds,
             grid_axes=np.array(list(result.axes)), **result.axes, **result.metrics)
    names = sorted(result.metrics)
    with open(os.path.join(output_dir, "metrics.csv"), "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow([*result.axes, "seed", "step", *names])
        for index, labels in point_labels(result):
            for s in range(len(result.seeds)):
                for e, step in enumerate(result.steps):
                    writer.writerow([*labels.values(), s, int(step),
                                     *(repr(float(result.metrics[n][index][s, e])) for n in names)])
    summary = summarize(result, metric, lower_is_better)
    with open(os.path.join(output_dir, "summary.md"), "w") as f:
        f.write(summary_markdown(summary))
    final = result.metrics[metric][..., -1]
    seconds, path = result.seconds, os.path.join(output_dir, "results.json")
    if seconds is None and os.path.exists(path):
        # Resumed from an older version's checkpoint: the earlier sessions' time is only in
        # the results they wrote when they finished (the directory holds one run: its identity
        # was checked before the sweep).
        with open(path) as f:
            earlier = json.load(f).get("seconds")
        if earlier is not None:
            seconds = earlier + (result.session_seconds or 0.0)
    payload = dict(summary=summary, seconds=seconds, session_seconds=result.session_seconds,
                   resumed_from=result.resumed_from,
                   axes={n: [value_label(v) for v in vals] for n, vals in result.axes.items()},
                   final=[dict(labels=labels, values=final[index].tolist())
                          for index, labels in point_labels(result)],
                   **(extra or {}))
    with open(os.path.join(output_dir, "results.json"), "w") as f:
        json.dump(payload, f, indent=1, allow_nan=True)
    return summary
