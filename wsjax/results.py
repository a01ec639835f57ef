"""What a sweep returns, and its results as files: a summary per grid point, npz, CSV,
Markdown and JSON.

:func:`wsjax.runner.run_sweep` returns a :class:`SweepResult`; :func:`summarize` reduces its
final metric per grid point over seeds (diverged runs counted and left out), and
:func:`write_results` writes ``metrics.npz``, ``metrics.csv``, ``summary.md`` and
``results.json`` into a directory the caller chose.
"""

from __future__ import annotations

import csv
import json
import math
import os
from typing import Any, NamedTuple

import numpy as np

__all__ = [
    "SweepResult",
    "value_label",
    "point_labels",
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
        session of a resumed sweep: the checkpoints carry the time so far.
      resumed_from: number of evaluations restored from a checkpoint (0 for a fresh run).
      session_seconds: the part of ``seconds`` spent in this process (read at the same moment
        as ``seconds``, so never more than it).
    """

    state: Any
    metrics: dict
    steps: np.ndarray
    axes: dict
    seeds: np.ndarray
    seconds: float
    resumed_from: int = 0
    session_seconds: float | None = None

    @property
    def grid_shape(self) -> tuple[int, ...]:
        return tuple(len(v) for v in self.axes.values())


def value_label(value) -> str:
    """'0.5' for a scalar (or a vector of equal entries), '4:8' for a vector."""
    v = np.atleast_1d(np.asarray(value, np.float64)).ravel()
    if np.all(v == v[0]):
        return f"{v[0]:g}"
    return ":".join(f"{x:g}" for x in v)


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


def _write_csv(path: str, result: SweepResult) -> None:
    """One row per (grid point, seed, evaluation), one column per axis and metric."""
    names = sorted(result.metrics)
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow([*result.axes, "seed", "step", *names])
        for index, labels in point_labels(result):
            for s in range(len(result.seeds)):
                for e, step in enumerate(result.steps):
                    writer.writerow([*labels.values(), s, int(step),
                                     *(repr(float(result.metrics[n][index][s, e])) for n in names)])


def write_results(output_dir: str, result: SweepResult, metric: str, lower_is_better: bool = True,
                  extra: dict | None = None) -> dict:
    """Write metrics.npz, metrics.csv, summary.md and results.json.

    metrics.npz holds every metric as [*grid, seed, eval], ``step`` [eval],
    ``grid_axes`` (the axis names in order), one array of values per axis under
    its name, and ``seeds``. metrics.csv has one row per (point, seed, eval) and
    one column per axis.

    Returns:
      The summary dict (also stored in results.json with ``extra``).
    """
    os.makedirs(output_dir, exist_ok=True)
    clash = set(result.axes) & (set(result.metrics) | {"step", "seeds", "grid_axes"})
    if clash:
        raise ValueError(f"axis names {sorted(clash)} clash with metric names")
    np.savez(os.path.join(output_dir, "metrics.npz"), step=result.steps, seeds=result.seeds,
             grid_axes=np.array(list(result.axes)), **result.axes, **result.metrics)
    _write_csv(os.path.join(output_dir, "metrics.csv"), result)
    summary = summarize(result, metric, lower_is_better)
    with open(os.path.join(output_dir, "summary.md"), "w") as f:
        f.write(summary_markdown(summary))
    final = result.metrics[metric][..., -1]
    payload = dict(summary=summary, seconds=result.seconds, session_seconds=result.session_seconds,
                   resumed_from=result.resumed_from,
                   axes={n: [value_label(v) for v in vals] for n, vals in result.axes.items()},
                   final=[dict(labels=labels, values=final[index].tolist())
                          for index, labels in point_labels(result)],
                   **(extra or {}))
    with open(os.path.join(output_dir, "results.json"), "w") as f:
        json.dump(payload, f, indent=1, allow_nan=True)
    return summary
