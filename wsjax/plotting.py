"""Figures for experiments: receptive fields, image grids, learning curves, rate sweeps.

Every function writes one PNG and returns its path. matplotlib is imported
lazily with the non-interactive Agg backend, so the core kit does not need it.
"""

from __future__ import annotations

import numpy as np

__all__ = ["plot_image_grid", "plot_learning_curves", "plot_metric_vs_rate"]


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_image_grid(images, image_shape, path, title="", num_cols=None, signed=False, labels=None):
    """Show rows of ``images`` [n, prod(image_shape)] as a grid of small images.

    Args:
      signed: use a diverging colour map centred on zero (for weights), else grey 0..1.
      labels: optional per-image captions.
    """
    plt = _pyplot()
    images = np.asarray(images, np.float64)
    n = images.shape[0]
    cols = num_cols or int(np.ceil(np.sqrt(n)))
    rows = int(np.ceil(n / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(1.3 * cols, 1.3 * rows + (0.4 if title else 0)),
                             squeeze=False)
    vmax = np.max(np.abs(images)) if signed else 1.0
    for i, ax in enumerate(axes.flat):
        ax.set_xticks([])
        ax.set_yticks([])
        if i >= n:
            ax.axis("off")
            continue
        img = images[i].reshape(image_shape)
        if signed:
            ax.imshow(img, cmap="RdBu_r", vmin=-vmax, vmax=vmax, interpolation="nearest")
        else:
            ax.imshow(img, cmap="gray_r", vmin=0, vmax=1, interpolation="nearest")
        if labels is not None:
            ax.set_title(labels[i], fontsize=7)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_learning_curves(steps, values, rate_labels, path, ylabel, logy=False, title=""):
    """Median over seeds per rate, with a band from the 25th to the 75th percentile.

    Args:
      steps: [E] step numbers.
      values: [R, S, E] metric.
      rate_labels: R strings.
    """
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    for r, label in enumerate(rate_labels):
        v = np.asarray(values[r], np.float64)
        med = np.median(v, axis=0)
        lo, hi = np.percentile(v, 25, axis=0), np.percentile(v, 75, axis=0)
        ax.plot(steps, med, label=f"rate {label}")
        ax.fill_between(steps, lo, hi, alpha=0.2)
    ax.set_xlabel("step")
    ax.set_ylabel(ylabel)
    if logy:
        ax.set_yscale("log")
    ax.legend(fontsize=8)
    ax.set_title(title or f"{ylabel}: median over seeds, band 25-75%", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_metric_vs_rate(rates, final, path, ylabel, title=""):
    """Final metric against the (generative) learning rate on a log axis, mean +- std over seeds.

    Args:
      rates: [R] or [R, 2] rates (the first column is plotted).
      final: [R, S] final values.
    """
    plt = _pyplot()
    rates = np.asarray(rates, np.float64)
    x = rates if rates.ndim == 1 else rates[:, 0]
    final = np.asarray(final, np.float64)
    fig, ax = plt.subplots(figsize=(5, 4))
    ax.errorbar(x, final.mean(1), yerr=final.std(1), fmt="o-", capsize=3, label="mean +- std")
    for r in range(final.shape[0]):
        ax.scatter(np.full(final.shape[1], x[r]), final[r], s=6, alpha=0.4, color="gray")
    ax.set_xscale("log")
    ax.set_xticks(x)
    ax.set_xticklabels([f"{v:g}" for v in x])
    ax.minorticks_off()
    ax.set_xlabel("learning rate" if rates.ndim == 1 else "generative learning rate")
    ax.set_ylabel(ylabel)
    ax.set_title(title or f"final {ylabel} over seeds", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
