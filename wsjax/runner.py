"""Learning-rate x seed sweeps as one compiled program, run in chunks, with results on disk.

The grid of (rate, seed) runs is flattened to one axis of R*S runs and vmapped;
the same compiled chunk program (``config.eval_every`` steps then the
evaluation) is called ``num_steps / eval_every`` times, so progress can be
logged between chunks. Every rate uses the same S seeds (common random
numbers), so differences between rates are not seed noise.
"""

from __future__ import annotations

import csv
import json
import os
import time
from typing import Any, Callable, NamedTuple

from absl import logging
import jax
import jax.numpy as jnp
import numpy as np

from wsjax.train import Trainer

__all__ = ["SweepResult", "parse_rates", "run_sweep", "summarize", "write_results"]


class SweepResult(NamedTuple):
    """What a sweep returns.

    Attributes:
      params: final params, every leaf with leading axes [rate, seed].
      metrics: name -> numpy array [rate, seed, eval] (``step`` is [eval]).
      learning_rates: numpy [R] or [R, 2] (generative, recognition).
      seeds: numpy [S] int: run s used ``jax.random.split(key(seed), S)[s]``.
      seconds: wall time of the training loop (compilation included).
    """

    params: Any
    metrics: dict
    learning_rates: np.ndarray
    seeds: np.ndarray
    seconds: float


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


def _format_seconds(s: float) -> str:
    s = int(round(s))
    return f"{s // 3600:d}:{s % 3600 // 60:02d}:{s % 60:02d}"


def run_sweep(
    trainer: Trainer, learning_rates, num_seeds: int, seed: int = 0, data=None, *,
    on_eval: Callable[[int, dict], None] | None = None,
) -> SweepResult:
    """Train every (rate, seed) run of the grid together.

    Args:
      trainer: from ``wsjax.make_train``.
      learning_rates: [R] or [R, 2] rates (see :func:`parse_rates`).
      num_seeds: S runs per rate.
      seed: root seed of the S run keys.
      data: passed to the trainer's sampler (None for built-in samplers).
      on_eval: optional callback (eval_index, metrics of that eval [R, S]) after each chunk.

    Returns:
      A :class:`SweepResult`.
    """
    rates = np.asarray(learning_rates, np.float32)
    if rates.ndim not in (1, 2) or rates.shape[0] < 1:
        raise ValueError(f"learning_rates must be [R] or [R, 2], got shape {rates.shape}")
    if not np.all(np.isfinite(rates)) or np.any(rates <= 0):
        raise ValueError(f"learning rates must be positive and finite, got {rates.tolist()}")
    if int(num_seeds) < 1:
        raise ValueError(f"num_seeds must be at least 1, got {num_seeds}")
    config = trainer.config
    num_rates, num_seeds = rates.shape[0], int(num_seeds)
    num_runs = num_rates * num_seeds
    num_evals = config.num_steps // config.eval_every

    keys = jax.random.split(jax.random.key(seed), num_seeds)
    grid_keys = jnp.tile(keys, num_rates)  # run g = r * S + s
    grid_rates = jnp.repeat(jnp.asarray(rates), num_seeds, axis=0)
    state = jax.jit(jax.vmap(trainer.init))(grid_keys, grid_rates)
    chunk = jax.jit(jax.vmap(trainer.run, in_axes=(0, None)), donate_argnums=0)

    logging.info("sweep: %d rates x %d seeds = %d runs, %d steps each, on %s",
                 num_rates, num_seeds, num_runs, config.num_steps, jax.devices())
    history = []
    start = time.time()
    for e in range(num_evals):
        state, metrics = chunk(state, data)
        metrics = jax.tree.map(np.asarray, metrics)
        history.append(metrics)
        elapsed = time.time() - start
        steps_done = (e + 1) * config.eval_every
        rate = steps_done / elapsed
        grid = {k: v.reshape(num_rates, num_seeds) for k, v in metrics.items()}
        if on_eval is not None:
            on_eval(e, grid)
        extra = " ".join(
            f"{k} {np.median(v):.4g}" for k, v in grid.items() if k not in ("step",)
        )
        logging.info(
            "step %d/%d  %.0f steps/s  %.3g samples/s  ETA %s  (medians: %s)",
            steps_done, config.num_steps, rate, rate * num_runs * config.batch_size,
            _format_seconds((config.num_steps - steps_done) / rate), extra,
        )
    seconds = time.time() - start
    stacked = {k: np.stack([h[k] for h in history], axis=-1) for k in history[0]}
    out = {k: v.reshape(num_rates, num_seeds, num_evals) for k, v in stacked.items() if k != "step"}
    out["step"] = stacked["step"][0]
    params = jax.tree.map(lambda a: np.asarray(a).reshape(num_rates, num_seeds, *a.shape[1:]),
                          state.params)
    return SweepResult(params, out, rates, np.arange(num_seeds), seconds)


def _rate_label(rate) -> str:
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
        rows.append(dict(rate=_rate_label(rate), mean=float(np.mean(vals)), std=float(np.std(vals)),
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
                    writer.writerow([r, _rate_label(rate), s, int(step),
                                     *(repr(float(result.metrics[n][r, s, e])) for n in names)])
    summary = summarize(result, metric, lower_is_better)
    with open(os.path.join(output_dir, "summary.md"), "w") as f:
        f.write(summary_markdown(summary))
    final = result.metrics[metric][:, :, -1]
    payload = dict(summary=summary, seconds=result.seconds,
                   final={_rate_label(r): final[i].tolist() for i, r in enumerate(result.learning_rates)},
                   **(extra or {}))
    with open(os.path.join(output_dir, "results.json"), "w") as f:
        json.dump(payload, f, indent=1)
    return summary
