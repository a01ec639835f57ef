"""Checkpoints of a sweep (orbax): the runs' states and the metrics so far, whole or absent.

A checkpoint, named by the number of evaluations done, holds two items: ``state``,
the sweep's states as host arrays with every leaf per run, unpadded (so a sweep may
resume on another number of devices, processes or blocks: see :mod:`wsjax.layout`),
and ``history``, every metric so far [evals, runs], with ``step`` and
:data:`WALL`, the training time up to each evaluation.
"""

from __future__ import annotations

import contextlib
import logging as std_logging
import os
from collections.abc import Iterator

import numpy as np
from absl import logging

__all__ = ["WALL", "open_manager", "latest", "restore", "save"]

WALL = "wall_seconds"
"""In the history, beside each metric: the training time (summed over sessions) up to that
evaluation, the same for every run."""


class _QuietOrbax:
    """Logging filter: drops orbax's INFO lines (several per checkpoint); its warnings and
    errors, and every other logger's lines, are kept."""

    def filter(self, record) -> bool:
        return record.levelno >= std_logging.WARNING or not (
            record.name.startswith("orbax") or "/orbax/" in record.pathname)


@contextlib.contextmanager
def open_manager(directory: str | None) -> Iterator:
    """An orbax CheckpointManager for ``directory`` (None: no checkpoints, None is yielded),
    keeping the last two checkpoints; orbax's INFO lines are silenced meanwhile."""
    if directory is None:
        yield None
        return
    import orbax.checkpoint as ocp

    handler, quiet = logging.get_absl_handler().python_handler, _QuietOrbax()
    handler.addFilter(quiet)
    manager = ocp.CheckpointManager(
        os.path.abspath(directory),
        options=ocp.CheckpointManagerOptions(max_to_keep=2, enable_async_checkpointing=False))
    try:
        yield manager
    finally:
        manager.close()
        handler.removeFilter(quiet)


def latest(manager) -> int:
    """The number of evaluations of the latest checkpoint (0: none, or no manager)."""
    step = None if manager is None else manager.latest_step()
    return 0 if step is None else int(step)


def restore(manager, target) -> tuple:
    """(state, history) of the latest checkpoint.

    Args:
      manager: from :func:`open_manager`, with a checkpoint.
      target: host arrays of the state's structure, shapes and dtypes (every leaf per run).

    Returns:
      The state as host arrays like ``target``, and the history as a list with one dict
      per evaluation done (metric -> [runs]).
    """
    import orbax.checkpoint as ocp

    evals = latest(manager)
    restored = manager.restore(evals, args=ocp.args.Composite(
        state=ocp.args.StandardRestore(target), history=ocp.args.StandardRestore()))
    saved = {k: np.asarray(v) for k, v in restored["history"].items()}
    return restored["state"], [{k: v[e] for k, v in saved.items()} for e in range(evals)]


def save(manager, state, history: list) -> None:
    """Write the checkpoint of ``len(history)`` evaluations and wait until it is whole.

    Args:
      manager: from :func:`open_manager`.
      state: host arrays, every leaf per run.
      history: one dict per evaluation done (metric -> [runs]).
    """
    import orbax.checkpoint as ocp

    stacked = {k: np.stack([h[k] for h in history]) for k in history[0]}
    manager.save(len(history), args=ocp.args.Composite(
        state=ocp.args.StandardSave(state), history=ocp.args.StandardSave(stacked)))
    manager.wait_until_finished()
