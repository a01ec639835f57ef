"""Figures for experiments and notebooks: receptive fields, image grids, sweep curves and axes.

Every function writes one PNG and returns its path, or, given ``path=None``,
returns the matplotlib Figure (closed to pyplot, so a notebook shows it once, as
a cell's value). matplotlib is imported lazily, with the non-interactive Agg
backend outside IPython kernels, so the core kit does not need a display.
"""

from __future__ import annotations

import numpy as np

from wsjax.results import point_labels, value_label

__all__ = ["plot_image_grid", "plot_curves", "plot_final_vs_axis", "plot_gradient_snr"]


def _pyplot():
    import sys

    import matplotlib

    if "ipykernel" not in sys.modules:  # a notebook keeps its inline backend
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _finish(plt, fig, path):
    plt.close(fig)
    if path is None:
        return fig
    fig.savefig(path, dpi=120)
    return path


def plot_image_grid(images, image_shape, path=None, title="", num_cols=None, signed=False,
                    labels=None):
    """Show rows of ``images`` [n, prod(image_shape)] as a grid of small images, in one mosaic.

    Args:
      signed: use a diverging colour map centred on zero (for weights), else grey 0..1.
      labels: optional per-image captions, written above each image.
    """
    plt = _pyplot()
    images = np.asarray(images, np.float64).reshape(-1, *image_shape)
    n, (h, w) = images.shape[0], image_shape
    cols = num_cols or int(np.ceil(np.sqrt(n)))
    rows = int(np.ceil(n / cols))
    gap = 1
    mosaic = np.full((rows * (h + gap) - gap, cols * (w + gap) - gap), np.nan)
    for i, img in enumerate(images):
        r, c = divmod(i, cols)
        mosaic[r * (h + gap):r * (h + gap) + h, c * (w + gap):c * (w + gap) + w] = img
    scale = 1.3 / max(h, w)
    fig, ax = plt.subplots(figsize=(max(2.0, scale * cols * (w + gap)),
                                    max(1.5, scale * rows * (h + gap) + (0.4 if title else 0))))
    if signed:
        vmax = np.nanmax(np.abs(images)) or 1.0
        ax.imshow(mosaic, cmap="RdBu_r", vmin=-vmax, vmax=vmax, interpolation="nearest")
    else:
        ax.imshow(mosaic, cmap="gray_r", vmin=0, vmax=1, interpolation="nearest")
    if labels is not None:
        for i, label in enumerate(labels[:n]):
            r, c = divmod(i, cols)
            ax.text(c * (w + gap) + w / 2 - 0.5, r * (h + gap) - 0.6, label, ha="center",
                    va="bottom", fontsize=6)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_frame_on(False)
    if title:
        ax.set_title(title, fontsize=8, pad=10 if labels is not None else 4)
    fig.tight_layout()
    return _finish(plt, fig, path)


def _points(result):
    """'name value, ...' for every grid point of a SweepResult, first axis slowest."""
    return [", ".join(f"{n} {v}" for n, v in labels.items()) or "all runs"
            for _, labels in point_labels(result)]


def plot_curves(result, metric, path=None, logy=False, title=""):
    """``metric`` against steps, one line per grid point: median over seeds, band 25-75%.

    Args:
      result: a ``wsjax.results.SweepResult``.
      metric: name of a metric in ``result.metrics`` ([*grid, seed, eval]).
    """
    plt = _pyplot()
    values = np.asarray(result.metrics[metric], np.float64)
    values = values.reshape(-1, *values.shape[-2:])  # [points, S, E]
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for v, label in zip(values, _points(result)):
        ax.plot(result.steps, np.nanmedian(v, axis=0), label=label)
        ax.fill_between(result.steps, np.nanpercentile(v, 25, axis=0),
                        np.nanpercentile(v, 75, axis=0), alpha=0.2)
    ax.set_xlabel("step")
    ax.set_ylabel(metric)
    if logy:
        ax.set_yscale("log")
    if len(values) <= 12:
        ax.legend(fontsize=7)
    ax.set_title(title or f"{metric}: median over {values.shape[1]} seeds, band 25-75%", fontsize=9)
    fig.tight_layout()
    return _finish(plt, fig, path)


def plot_final_vs_axis(result, metric, axis, path=None, title=""):
    """Final ``metric`` against one grid axis: mean +- std over seeds, one line per setting of the
    other axes, the seeds as dots. The axis is drawn as categories labelled by its values.

    Args:
      result: a ``wsjax.results.SweepResult``.
      axis: the name of one of ``result.axes``.
    """
    plt = _pyplot()
    names = list(result.axes)
    a = names.index(axis)
    final = np.asarray(result.metrics[metric][..., -1], np.float64)  # [*grid, S]
    final = np.moveaxis(final, a, 0)
    others = [n for n in names if n != axis]
    shape = final.shape
    final = final.reshape(shape[0], -1, shape[-1])  # [A, rest, S]
    x = np.arange(shape[0])
    num_series = final.shape[1]
    fig, ax = plt.subplots(figsize=(5.5, 4))
    for j, index in enumerate(np.ndindex(*shape[1:-1])):
        label = ", ".join(f"{n} {value_label(result.axes[n][i])}" for n, i in zip(others, index))
        vals = final[:, j]
        shift = 0.6 * (j - (num_series - 1) / 2) / max(num_series, 1)  # series side by side
        ax.errorbar(x + shift, np.nanmean(vals, 1), yerr=np.nanstd(vals, 1), fmt="o-",
                    capsize=3, label=label or "mean +- std")
        for i in range(shape[0]):
            ax.scatter(np.full(vals.shape[1], x[i] + shift), vals[i], s=6, alpha=0.4,
                       color="gray")
    ax.set_xlim(-0.5, shape[0] - 0.5)
    ax.set_xticks(x)
    ax.set_xticklabels([value_label(v) for v in result.axes[axis]])
    ax.set_xlabel(axis)
    ax.set_ylabel(metric)
    if final.shape[1] <= 12:
        ax.legend(fontsize=7)
    ax.set_title(title or f"final {metric} over {shape[-1]} seeds", fontsize=9)
    fig.tight_layout()
    return _finish(plt, fig, path)


def plot_gradient_snr(rows, path=None, title=""):
    """Gradient signal-to-noise ratio against K, one panel per half, one line per estimator.

    Args:
      rows: :class:`wsjax.evaluation.GradientQuality` rows (or dicts with their fields), as
        :func:`wsjax.evaluation.gradient_quality` returns them. An estimator measured at one
        K only (NVIL) is drawn as a point.
    """
    plt = _pyplot()
    rows = [r if isinstance(r, dict) else r._asdict() for r in rows]
    halves = list(dict.fromkeys(r["half"] for r in rows))
    estimators = list(dict.fromkeys(r["estimator"] for r in rows))
    fig, axes = plt.subplots(1, len(halves), figsize=(4.2 * len(halves), 3.6), squeeze=False)
    for ax, half in zip(axes[0], halves):
        for name in estimators:
            mine = sorted((r["num_samples"], r["snr"]) for r in rows
                          if r["estimator"] == name and r["half"] == half)
            ks, snr = zip(*mine)
            ax.plot(ks, snr, "o-" if len(ks) > 1 else "s", label=name)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("K (samples per example)")
        ax.set_ylabel("mean |E[g]| / std[g] per parameter")
        ax.set_title(f"{half} half", fontsize=9)
        ax.legend(fontsize=7)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return _finish(plt, fig, path)
