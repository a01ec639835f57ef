"""Learning-rate x seed sweeps as one compiled program: chunked, sharded, checkpointed.

The grid of (rate, seed) runs is flattened to one axis of R*S runs, padded to a
multiple of the device count, sharded over every device of every process
(``jax.sharding.NamedSharding`` on a one-axis ``Mesh``) and vmapped. The same
compiled chunk program (``config.eval_every`` steps, then the evaluation) is
called ``num_steps / eval_every`` times, so progress is logged and the whole
sweep state is checkpointed (orbax) between chunks. Each run only ever sees its
own key, rate and params, so the numbers do not depend on how the grid is
split over devices or processes, nor on where a run was stopped and resumed.
Every rate uses the same S seeds (common random numbers), so differences
between rates are not seed noise.

For several processes, call ``jax.distributed.initialize`` first; every
process then runs the same program on its share of the grid, and every
process receives the gathered metrics (write files from process 0 only).
"""

from __future__ import annotations

import csv
import logging as std_logging
import json
import os
import shutil
import time
from typing import Any, Callable, NamedTuple

from absl import logging
import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from wsjax.train import Trainer

__all__ = [
    "SweepResult",
    "parse_rates",
    "prepare_output_dir",
    "rate_label",
    "run_sweep",
    "summarize",
    "summary_markdown",
    "write_results",
]


class SweepResult(NamedTuple):
    """What a sweep returns.

    Attributes:
      params: final params, every leaf a numpy array with leading axes [rate, seed].
      metrics: name -> numpy array [rate, seed, eval] (``step`` is [eval]).
      learning_rates: numpy [R] or [R, 2] (generative, recognition).
      seeds: numpy [S] int: run s used ``jax.random.split(key(seed), S)[s]``.
      seconds: wall time of the training loop in this process (compilation included).
      resumed_from: number of evaluations restored from a checkpoint (0 for a fresh run).
    """

    params: Any
    metrics: dict
    learning_rates: np.ndarray
    seeds: np.ndarray
    seconds: float
    resumed_from: int = 0


def parse_rates(specs) -> np.ndarray:
    """Parse rates given as strings: "0.1" (both halves) or "0.5:2" (generative:recognition).

    Returns:
      [R] float32 when every spec is a single rate, else [R, 2].

    Raises:
      ValueError: for an empty list, a malformed entry, or a rate that is not positive and finite.
    """
    specs = list(specs)
    if not specs:
        raise ValueError("at least one learning rate is needed")
    pairs = []
    for spec in specs:
        parts = str(spec).split(":")
        try:
            values = [float(p) for p in parts]
        except ValueError:
            raise ValueError(f"learning rate {spec!r} is not a number or a 'gen:rec' pair") from None
        if len(values) not in (1, 2):
            raise ValueError(f"learning rate {spec!r} must be 'rate' or 'generative:recognition'")
        if not all(np.isfinite(v) and v > 0 for v in values):
            raise ValueError(f"learning rates must be positive and finite, got {spec!r}")
        pairs.append(values * 2 if len(values) == 1 else values)
    rates = np.asarray(pairs, np.float32)
    if all(len(str(s).split(":")) == 1 for s in specs):
        return rates[:, 0]
    return rates


def prepare_output_dir(output_dir: str, identity: dict, overwrite: bool = False) -> bool:
    """Claim ``output_dir`` for the sweep described by ``identity`` (JSON-able settings).

    A new or empty directory is claimed (``sweep.json`` written). A directory
    that already holds the same sweep is kept, so the sweep resumes from its
    checkpoints. A directory holding anything else is refused, unless
    ``overwrite``, which empties it first. Call it from one process only.

    Returns:
      True when the directory already held this sweep (a resume).

    Raises:
      FileExistsError: naming the directory and the settings that differ.
    """
    marker = os.path.join(output_dir, "sweep.json")
    identity = json.loads(json.dumps(identity))  # normalise tuples, numpy scalars
    if os.path.isdir(output_dir) and os.listdir(output_dir):
        previous = None
        if os.path.exists(marker):
            with open(marker) as f:
                previous = json.load(f)
        if previous == identity and not overwrite:
            return True
        if not overwrite:
            if previous is None:
                why = "it is not empty and holds no sweep.json"
            else:
                diff = sorted(k for k in set(previous) | set(identity)
                              if previous.get(k) != identity.get(k))
                why = "it holds a different sweep (" + ", ".join(
                    f"{k}: {previous.get(k)!r} there, {identity.get(k)!r} now" for k in diff) + ")"
            raise FileExistsError(
                f"refusing to use output directory {output_dir!r}: {why}. Pass --overwrite to "
                "replace its contents, or choose another directory.")
        for name in os.listdir(output_dir):
            path = os.path.join(output_dir, name)
            shutil.rmtree(path) if os.path.isdir(path) and not os.path.islink(path) else os.remove(path)
    os.makedirs(output_dir, exist_ok=True)
    tmp = marker + ".tmp"
    with open(tmp, "w") as f:
        json.dump(identity, f, indent=1, sort_keys=True)
    os.replace(tmp, marker)
    return False


def _quiet_orbax(record) -> bool:
    """Logging filter: INFO lines of installed packages (orbax writes several per checkpoint)
    are dropped; warnings, errors and the kit's own lines are kept."""
    return record.levelno >= std_logging.WARNING or "site-packages" not in record.pathname


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


def run_sweep(
    trainer: Trainer, learning_rates, num_seeds: int, seed: int = 0, data=None, *,
    checkpoint_dir: str | None = None, checkpoint_every: int = 1,
    on_eval: Callable[[int, dict], None] | None = None,
) -> SweepResult:
    """Train every (rate, seed) run of the grid together, over all devices.

    Args:
      trainer: from ``wsjax.make_train``.
      learning_rates: [R] or [R, 2] rates (see :func:`parse_rates`).
      num_seeds: S runs per rate.
      seed: root seed of the S run keys.
      data: passed to the trainer's sampler and eval_fn (None for built-in samplers);
        a pytree of arrays, replicated to every device.
      checkpoint_dir: if given, the whole sweep state and the metrics so far are
        saved there (orbax; a checkpoint is whole or absent) every
        ``checkpoint_every`` evaluations, and a sweep started again with the
        same directory resumes from the latest one.
      on_eval: optional callback (eval_index, metrics of that eval [R, S]) after each chunk.

    Returns:
      A :class:`SweepResult`.
    """
    rates = np.asarray(learning_rates, np.float32)
    if rates.ndim not in (1, 2) or rates.shape[0] < 1 or (rates.ndim == 2 and rates.shape[1] != 2):
        raise ValueError(f"learning_rates must be [R] or [R, 2], got shape {rates.shape}")
    if not np.all(np.isfinite(rates)) or np.any(rates <= 0):
        raise ValueError(f"learning rates must be positive and finite, got {rates.tolist()}")
    if int(num_seeds) < 1:
        raise ValueError(f"num_seeds must be at least 1, got {num_seeds}")
    if int(checkpoint_every) < 1:
        raise ValueError(f"checkpoint_every must be at least 1, got {checkpoint_every}")
    config = trainer.config
    num_rates, num_seeds = rates.shape[0], int(num_seeds)
    num_runs = num_rates * num_seeds
    num_evals = config.num_steps // config.eval_every

    devices = jax.devices()
    mesh = Mesh(np.array(devices), ("grid",))
    grid = NamedSharding(mesh, PartitionSpec("grid"))
    replicated = NamedSharding(mesh, PartitionSpec())
    padded = -(-num_runs // len(devices)) * len(devices)

    key_data = np.asarray(jax.random.key_data(jax.random.split(jax.random.key(seed), num_seeds)))
    run_keys = np.tile(key_data, (num_rates, 1))  # run g = r * S + s
    run_rates = np.repeat(rates, num_seeds, axis=0)
    pad = np.zeros(padded - num_runs, np.int64)  # padding runs repeat run 0; dropped at the end
    run_keys = np.concatenate([run_keys, run_keys[pad]])
    run_rates = np.concatenate([run_rates, run_rates[pad]])
    data = jax.tree.map(lambda x: _global(np.asarray(x), replicated), data)

    def init_one(kd, lr):
        state = trainer.init(jax.random.wrap_key_data(kd), lr)
        return state._replace(key=jax.random.key_data(state.key))

    def step_one(state, data):
        state, info = trainer.step(state._replace(key=jax.random.wrap_key_data(state.key)), data)
        return state._replace(key=jax.random.key_data(state.key)), info

    def chunk(states, data):
        # Steps are vmapped over this device's runs. The evaluation is mapped over them one
        # at a time, so its reductions compile to the same code whatever the number of runs
        # per device: results do not depend on how the grid is laid out.
        states, infos = jax.lax.scan(
            lambda s, _: jax.vmap(step_one, in_axes=(0, None))(s, data), states, None,
            config.eval_every)
        metrics = {k: jnp.mean(v, axis=0) for k, v in infos.items()}
        metrics["step"] = states.step
        if config.eval_fn is not None:
            metrics.update(jax.lax.map(lambda p: config.eval_fn(p, data), states.params))
        return states, metrics

    init_program = jax.jit(jax.vmap(init_one), out_shardings=grid)
    chunk_program = jax.jit(chunk, in_shardings=(grid, replicated), out_shardings=grid,
                            donate_argnums=0)
    state = init_program(_global(run_keys, grid), _global(run_rates, grid))

    history: list[dict] = []
    manager = None
    if checkpoint_dir is not None:
        import orbax.checkpoint as ocp

        # absl's handler passes records on to its python_handler, where filters apply.
        handler = logging.get_absl_handler().python_handler
        if _quiet_orbax not in handler.filters:
            handler.addFilter(_quiet_orbax)
        manager = ocp.CheckpointManager(
            os.path.abspath(checkpoint_dir),
            options=ocp.CheckpointManagerOptions(max_to_keep=2, enable_async_checkpointing=False))
        latest = manager.latest_step()
        if latest is not None:
            abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, state)
            restored = manager.restore(latest, args=ocp.args.Composite(
                state=ocp.args.StandardRestore(abstract), history=ocp.args.StandardRestore()))
            state = restored["state"]
            saved = {k: np.asarray(v) for k, v in restored["history"].items()}
            history = [{k: v[e] for k, v in saved.items()} for e in range(latest)]
            logging.info("resumed from checkpoint %s at eval %d/%d", checkpoint_dir, latest, num_evals)

    logging.info("sweep: %d rates x %d seeds = %d runs (%d padded), %d steps each, over %d devices "
                 "in %d processes", num_rates, num_seeds, num_runs, padded, config.num_steps,
                 len(devices), jax.process_count())
    resumed_from = len(history)
    start = time.time()
    for e in range(resumed_from, num_evals):
        state, metrics = chunk_program(state, data)
        metrics = _to_host(metrics)
        history.append(metrics)
        if manager is not None and ((e + 1) % checkpoint_every == 0 or e + 1 == num_evals):
            saved = {k: np.stack([h[k] for h in history]) for k in history[0]}
            manager.save(e + 1, args=ocp.args.Composite(
                state=ocp.args.StandardSave(state), history=ocp.args.StandardSave(saved)))
            manager.wait_until_finished()
        elapsed = time.time() - start
        steps_done = (e + 1) * config.eval_every
        speed = (e + 1 - resumed_from) * config.eval_every / elapsed
        grid_metrics = {k: v[:num_runs].reshape(num_rates, num_seeds) for k, v in metrics.items()}
        if on_eval is not None:
            on_eval(e, grid_metrics)
        medians = " ".join(f"{k} {np.median(v):.4g}" for k, v in grid_metrics.items() if k != "step")
        logging.info(
            "step %d/%d  %.0f steps/s  %.3g samples/s  ETA %s  (medians: %s)",
            steps_done, config.num_steps, speed, speed * num_runs * config.batch_size,
            _format_seconds((config.num_steps - steps_done) / speed), medians,
        )
    if manager is not None:
        manager.close()
    seconds = time.time() - start
    stacked = {k: np.stack([h[k][:num_runs] for h in history], axis=-1) for k in history[0]}
    out = {k: v.reshape(num_rates, num_seeds, num_evals) for k, v in stacked.items() if k != "step"}
    out["step"] = stacked["step"][0]
    params = jax.tree.map(lambda a: a[:num_runs].reshape(num_rates, num_seeds, *a.shape[1:]),
                          _to_host(state.params))
    return SweepResult(params, out, rates, np.arange(num_seeds), seconds, resumed_from)


def rate_label(rate) -> str:
    """'e' for a rate shared by both halves, 'gen:rec' for a pair."""
    rate = np.atleast_1d(rate)
    return f"{rate[0]:g}" if rate.size == 1 or rate[0] == rate[1] else f"{rate[0]:g}:{rate[1]:g}"


def summarize(result: SweepResult, metric: str, lower_is_better: bool = True) -> dict:
    """Per-rate statistics of the final value of ``metric`` over seeds, and the best run.

    Returns:
      {"rows": [per rate: rate, mean, std, median, min, max, best_seed], "best": {rate_index,
      seed, value}, "best_rate_index": index of the rate with the best median}.
    """
    final = result.metrics[metric][:, :, -1]
    sign = 1.0 if lower_is_better else -1.0
    rows = []
    for r, rate in enumerate(result.learning_rates):
        vals = final[r]
        best_seed = int(np.nanargmin(sign * vals))
        rows.append(dict(rate=rate_label(rate), mean=float(np.mean(vals)), std=float(np.std(vals)),
                         median=float(np.median(vals)), min=float(np.min(vals)),
                         max=float(np.max(vals)), best_seed=best_seed))
    flat = int(np.nanargmin(sign * final))
    r, s = divmod(flat, final.shape[1])
    best_rate = int(np.nanargmin(sign * np.median(final, axis=1)))
    return {"metric": metric, "rows": rows, "best": dict(rate_index=r, seed=s, value=float(final[r, s])),
            "best_rate_index": best_rate}


def summary_markdown(summary: dict) -> str:
    """The summary as a Markdown table."""
    m = summary["metric"]
    lines = [f"| rate | mean {m} | std | median | min | max | best seed |",
             "|---|---|---|---|---|---|---|"]
    for row in summary["rows"]:
        lines.append(f"| {row['rate']} | {row['mean']:.4f} | {row['std']:.4f} | {row['median']:.4f} "
                     f"| {row['min']:.4f} | {row['max']:.4f} | {row['best_seed']} |")
    b = summary["best"]
    lines.append("")
    lines.append(f"Best run: rate {summary['rows'][b['rate_index']]['rate']}, seed {b['seed']}: "
                 f"{m} = {b['value']:.4f}. Best rate by median: "
                 f"{summary['rows'][summary['best_rate_index']]['rate']}.")
    return "\n".join(lines) + "\n"


def write_results(output_dir: str, result: SweepResult, metric: str, lower_is_better: bool = True,
                  extra: dict | None = None) -> dict:
    """Write metrics.npz ([rate, seed, eval] arrays), metrics.csv (tidy), summary.md and results.json.

    Returns:
      The summary dict (also stored in results.json with ``extra``).
    """
    os.makedirs(output_dir, exist_ok=True)
    np.savez(os.path.join(output_dir, "metrics.npz"), learning_rates=result.learning_rates,
             seeds=result.seeds, **result.metrics)
    names = sorted(k for k in result.metrics if k != "step")
    with open(os.path.join(output_dir, "metrics.csv"), "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["rate_index", "rate", "seed", "step", *names])
        for r, rate in enumerate(result.learning_rates):
            for s in range(len(result.seeds)):
                for e, step in enumerate(result.metrics["step"]):
                    writer.writerow([r, rate_label(rate), s, int(step),
                                     *(repr(float(result.metrics[n][r, s, e])) for n in names)])
    summary = summarize(result, metric, lower_is_better)
    with open(os.path.join(output_dir, "summary.md"), "w") as f:
        f.write(summary_markdown(summary))
    final = result.metrics[metric][:, :, -1]
    payload = dict(summary=summary, seconds=result.seconds, resumed_from=result.resumed_from,
                   final={rate_label(r): final[i].tolist() for i, r in enumerate(result.learning_rates)},
                   **(extra or {}))
    with open(os.path.join(output_dir, "results.json"), "w") as f:
        json.dump(payload, f, indent=1)
    return summary
