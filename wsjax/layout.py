"""How a sweep lays its runs out: G grid points x S seeds as blocks, over devices.

Run ``r = g * S + s`` is grid point g with seed s; every grid point uses the same S
seeds (common random numbers), so differences between points are not seed noise.
The runs are cut into blocks of equal width. The runs of a block are vmapped
together, the blocks a device holds run one after another (``lax.map``), and the
blocks are sharded over the devices of every process (``jax.shard_map`` on a
one-axis :class:`~jax.sharding.Mesh`; a sweep without a mesh runs every block on
the default device). Two layouts (``vectorize``):

* ``"seeds"`` (the default): one block per grid point, holding its S seeds (the
  number of blocks padded to a multiple of the device count). Every run then
  computes exactly the same program whatever the grid, the device count or the
  process count, so its numbers are bitwise those of the same run swept alone.
  (XLA on CPU chooses its reduction code from the whole shape, vmapped axis
  included, so wider vmaps round differently.)
* ``"runs"``: all G x S runs in one block per device, faster for small models,
  where one step is too small to keep a core busy; a run's numbers then depend on
  the layout in the last bits.

A hyperparameter that every run of a block shares is not batched: its leaf has no
run axis in the block, and the vmap takes it with ``in_axes=None`` (the step returns
it unchanged, ``out_axes=None``). So a ``lax.cond`` on it (insomnia 1 draws no dreams,
insomnia 0 takes no wake-phase recognition gradient) is a real branch, not a select
that computes both sides. In the seeds layout every hyperparameter is shared within
a block; in the runs layout those with the same value at every grid point.

Leaves therefore come in two kinds. Per run: host arrays ``[num_runs, ...]`` become
blocks ``[num_blocks, width, ...]``, padded with copies of run 0. Shared: the
block holds ``[num_blocks, ...]``, the value of each block's first run. Going back,
padding is dropped and a shared leaf is repeated for every run of its block, so a
sweep's states on the host (its checkpoints) always hold every leaf per run and may
be laid out again on another number of devices, processes or blocks.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from wsjax._api import is_traced

__all__ = [
    "VECTORIZE",
    "Layout",
    "make_layout",
    "run_inputs",
    "hyperparam_axes",
    "state_axes",
    "to_blocks",
    "from_blocks",
    "map_blocks",
    "make_mesh",
    "sharded_program",
    "to_devices",
    "to_host",
]

VECTORIZE = ("seeds", "runs")
"""The two layouts: see the module's docstring."""

_AXIS = "blocks"  # the one axis of the mesh


class Layout(NamedTuple):
    """G grid points x S seeds as ``num_blocks`` blocks of ``width`` runs (hashable: static).

    Attributes:
      num_points: G.
      num_seeds: S.
      num_blocks: the number of blocks, a multiple of the device count.
      width: runs per block (vmapped together).
      shared: the (dotted) names of the hyperparameters every run of a block shares,
        e.g. ``("insomnia", "optimizer.b1")``.
    """

    num_points: int
    num_seeds: int
    num_blocks: int
    width: int
    shared: tuple[str, ...]

    @property
    def num_runs(self) -> int:
        return self.num_points * self.num_seeds


def _name(path) -> str:
    """The dotted name of a leaf of a hyperparameter dict: ``"optimizer.b1"``."""
    return ".".join(str(getattr(p, "key", p)) for p in path)


def _same_at_every_point(x) -> bool:
    if is_traced(x):
        return False
    a = np.asarray(x)
    return bool(np.all(a == a[:1]))


def make_layout(points: dict, num_seeds: int, num_devices: int = 1,
                vectorize: str = "seeds") -> Layout:
    """The layout of a grid (``wsjax.grid``: leaves [G, ...]) x ``num_seeds`` seeds.

    Raises:
      ValueError: for a ``vectorize`` that is not one of :data:`VECTORIZE`.
    """
    if vectorize not in VECTORIZE:
        raise ValueError(f"vectorize must be one of {VECTORIZE}, got {vectorize!r}")
    leaves = jax.tree_util.tree_leaves_with_path(points)
    num_points = int(np.shape(leaves[0][1])[0])
    if vectorize == "seeds":
        num_blocks = -(-num_points // num_devices) * num_devices
        return Layout(num_points, num_seeds, num_blocks, num_seeds,
                      tuple(_name(p) for p, _ in leaves))
    shared = tuple(_name(p) for p, x in leaves if _same_at_every_point(x))
    width = -(-(num_points * num_seeds) // num_devices)
    return Layout(num_points, num_seeds, num_devices, width, shared)


def run_inputs(keys, points: dict):
    """(keys [S], grid [G, ...]) -> (keys [G * S], hyperparams [G * S, ...]), run g * S + s.

    Works on numpy arrays (kept on the host) and on JAX arrays alike.
    """
    num_points = np.shape(jax.tree.leaves(points)[0])[0]
    num_seeds = np.shape(keys)[0]
    xp = np if isinstance(keys, np.ndarray) else jnp
    run_keys = xp.tile(keys, (num_points,) + (1,) * (np.ndim(keys) - 1))
    repeat = lambda x: (np if isinstance(x, np.ndarray) else jnp).repeat(x, num_seeds, axis=0)
    return run_keys, jax.tree.map(repeat, points)


def hyperparam_axes(hyperparams: dict, layout: Layout) -> dict:
    """vmap axes of a hyperparameter dict: None for the shared leaves, 0 for the others."""
    return jax.tree_util.tree_map_with_path(
        lambda path, _: None if _name(path) in layout.shared else 0, hyperparams)


def state_axes(state, layout: Layout):
    """vmap axes of a ``State`` (or its shape): its hyperparameters' as above, 0 elsewhere."""
    return type(state)(params=0, opt_state=0,
                       hyperparams=hyperparam_axes(state.hyperparams, layout), step=0)


def _each(fn, axes, tree):
    """``fn(axis, leaf)`` for every leaf of ``tree``, ``axes`` being a prefix of it (0 or None)."""
    return jax.tree.map(lambda axis, sub: jax.tree.map(lambda x: fn(axis, x), sub),
                        axes, tree, is_leaf=lambda x: x is None)


def _xp(x):
    return np if isinstance(x, np.ndarray) else jnp


def to_blocks(runs, axes, layout: Layout):
    """Leaves [num_runs, ...] -> blocks: [num_blocks, width, ...] where ``axes`` has 0 (padded
    with copies of run 0), [num_blocks, ...] where it has None (each block's first run)."""
    size = layout.num_blocks * layout.width
    firsts = np.arange(layout.num_blocks) * layout.width
    firsts = np.where(firsts < layout.num_runs, firsts, 0)

    def one(axis, x):
        x = x[:layout.num_runs]
        if axis is None:
            return x[firsts]
        if size > layout.num_runs:
            x = _xp(x).concatenate([x, _xp(x).repeat(x[:1], size - layout.num_runs, axis=0)])
        return x.reshape(layout.num_blocks, layout.width, *x.shape[1:])

    return _each(one, axes, runs)


def from_blocks(blocks, axes, layout: Layout):
    """The inverse of :func:`to_blocks`: every leaf [num_runs, ...], padding dropped, a shared
    leaf repeated for every run of its block."""
    def one(axis, x):
        if axis is None:
            x = _xp(x).repeat(x, layout.width, axis=0)
        else:
            x = x.reshape(-1, *x.shape[2:])
        return x[:layout.num_runs]

    return _each(one, axes, blocks)


def map_blocks(block_fn: Callable, blocks, *replicated):
    """``block_fn(block, *replicated)`` for every block in turn (``lax.map``)."""
    return jax.lax.map(lambda block: block_fn(block, *replicated), blocks)


def make_mesh() -> Mesh:
    """A one-axis mesh over every device of every process."""
    return Mesh(np.array(jax.devices()), (_AXIS,))


def sharded_program(block_fn: Callable, mesh: Mesh) -> Callable:
    """A jitted ``(blocks, data) -> outputs``: :func:`map_blocks` on each device's share of
    the blocks (sharded on their leading axis), ``data`` replicated on every device."""
    spec = PartitionSpec(_AXIS)

    def program(blocks, data):
        return map_blocks(block_fn, blocks, data)

    program.__name__ = getattr(block_fn, "__name__", "program")  # names the compiled program
    return jax.jit(jax.shard_map(program, mesh=mesh, in_specs=(spec, PartitionSpec()),
                                 out_specs=spec, check_vma=False))


def to_devices(tree, mesh: Mesh, replicated: bool = False) -> Any:
    """Host arrays that every process holds in full -> global arrays, sharded on the leading
    (block) axis, or ``replicated`` on every device."""
    sharding = NamedSharding(mesh, PartitionSpec() if replicated else PartitionSpec(_AXIS))

    def one(x):
        x = np.asarray(x)
        return jax.make_array_from_callback(x.shape, sharding, lambda index: x[index])

    return jax.tree.map(one, tree)


def to_host(tree) -> Any:
    """Every leaf of global arrays as a full numpy array, on every process."""
    if jax.process_count() > 1:
        tree = multihost_utils.process_allgather(tree, tiled=True)
    return jax.tree.map(np.asarray, tree)
