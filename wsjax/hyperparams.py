"""The hyperparameters of the kit: one table, from which every rule about them is derived.

A hyperparameter is a traced leaf of one dict (``state.hyperparams``), read
afresh by every step, so that any of them can be vmapped and swept in one
compiled program. Each row of :data:`TABLE` says what a hyperparameter is
called, its default, the values it may take, its shape (a scalar, a
(generative, recognition) pair, or one value per layer of conditionals), which
part of the kit reads it, and what it means. The algorithms' and the training
loop's defaults, the checks of concrete values, the broadcast to canonical
shapes, the experiments' flags and the documentation's table all come from
here: a new hyperparameter is one row plus the code that reads it.

The optimizer's own keywords (``hyperparams["optimizer"]``, e.g. ``{"b1":
0.8}`` for ``optax.adam``) are not rows: they belong to the optimizer. Those
whose ranges optax's aliases share are checked by :data:`OPTIMIZER_RANGES`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

__all__ = [
    "Hyperparameter",
    "TABLE",
    "OPTIMIZER_RANGES",
    "names",
    "defaults",
    "as_leaf",
    "check",
    "canonical",
    "markdown_table",
]

SCALAR, PAIR, PER_LAYER = "scalar", "pair", "per_layer"


class Hyperparameter(NamedTuple):
    """One row of the table.

    Attributes:
      name: the key in the hyperparameter dict.
      default: its default value (a scalar; a pair or per-layer value repeats it).
      valid: which values are allowed, in words ("finite and >= 0").
      ok: elementwise test of that rule on a float64 numpy array.
      shape: ``"scalar"``; ``"pair"`` (generative, recognition: a scalar means
        both); or ``"per_layer"`` (one value per layer of conditionals: a scalar
        means every layer).
      readers: who reads it: ``"wake_sleep"``, ``"rws"``, ``"vimco"``, ``"nvil"`` (the
        algorithms) or ``"init"`` (the training loop's initialisation of the machine).
      help: what it does, one sentence or two.
    """

    name: str
    default: float
    valid: str
    ok: Callable[[np.ndarray], np.ndarray]
    shape: str
    readers: tuple[str, ...]
    help: str


_ALGORITHMS = ("wake_sleep", "rws", "vimco", "nvil")
_finite = np.isfinite
_non_negative = lambda v: np.isfinite(v) & (v >= 0)
_positive = lambda v: np.isfinite(v) & (v > 0)
_unit = lambda v: (v >= 0) & (v <= 1)
_half_open_unit = lambda v: (v >= 0) & (v < 1)

TABLE: tuple[Hyperparameter, ...] = (
    Hyperparameter(
        "learning_rate", 0.1, "finite and >= 0", _non_negative, PAIR, _ALGORITHMS,
        "Base rate of the (generative, recognition) halves; a scalar means both; 0 freezes a "
        "half."),
    Hyperparameter(
        "lr_decay", 1.0, "finite and > 0", _positive, SCALAR, _ALGORITHMS,
        "The rate falls geometrically to lr_decay times its start at step decay_steps, then "
        "holds; 1 is a constant rate."),
    Hyperparameter(
        "decay_steps", 1.0, "finite and > 0", _positive, SCALAR, _ALGORITHMS,
        "Steps over which the rate decays and the layer multipliers move."),
    Hyperparameter(
        "layer_rate_start", 1.0, "finite and >= 0", _non_negative, PER_LAYER, _ALGORITHMS,
        "Rate multiplier of each layer of conditionals at step 0 (the prior takes the top "
        "layer's); 0 freezes a layer."),
    Hyperparameter(
        "layer_rate_end", 1.0, "finite and >= 0", _non_negative, PER_LAYER, _ALGORITHMS,
        "Rate multiplier of each layer at step decay_steps, reached geometrically from "
        "layer_rate_start."),
    Hyperparameter(
        "activity_weight", 0.0, "finite and >= 0", _non_negative, PER_LAYER, _ALGORITHMS,
        "Weight of wsjax.phases.activity_grads on each recognition layer: units whose mean "
        "probability on the wake batch leaves [activity_floor, activity_ceiling] are pushed "
        "back (Hinton 2010, section 11); 0 is the plain algorithm."),
    Hyperparameter(
        "activity_floor", 0.02, "in [0, 1]", _unit, PER_LAYER, _ALGORITHMS,
        "Mean recognition probability below which a unit is turned up."),
    Hyperparameter(
        "activity_ceiling", 1.0, "in [0, 1]", _unit, PER_LAYER, _ALGORITHMS,
        "Mean recognition probability above which a unit is turned down."),
    Hyperparameter(
        "insomnia", 1.0, "in [0, 1]", _unit, SCALAR, ("rws",),
        "Weight of the wake-phase recognition update against the sleep phase: 1 draws no "
        "dreams (wake-wake), 0 is the classic sleep phase."),
    Hyperparameter(
        "baseline_rate", 1.0, "finite and >= 0", _non_negative, SCALAR, ("nvil",),
        "Rate of NVIL's input-dependent baseline as a multiple of the recognition rate (with "
        "its decay); 0 freezes the baseline."),
    Hyperparameter(
        "signal_decay", 0.8, "in [0, 1]", _unit, SCALAR, ("nvil",),
        "Decay of NVIL's running mean and variance of the centred learning signal: each step "
        "keeps this fraction of the old estimate and takes the rest from its batch; 1 freezes "
        "them (Mnih & Gregor 2014 use 0.8)."),
    Hyperparameter(
        "defensive", 0.0, "in [0, 1)", _half_open_unit, SCALAR, ("rws",),
        "Weight d of the uniform distribution in the proposal (1 - d) Q + d Uniform of each "
        "hidden layer, the importance weights taken against that mixture (Le et al. 2019); "
        "0 is plain RWS, and with insomnia 1 it is defensive wake-wake."),
    Hyperparameter(
        "init_scale", 0.0, "finite and >= 0", _non_negative, PER_LAYER, ("init",),
        "Standard deviation of the initial weights of each layer of conditionals."),
    Hyperparameter(
        "prior_bias", 0.0, "finite", _finite, SCALAR, ("init",),
        "Initial logits of the top-layer prior."),
    Hyperparameter(
        "generative_bias", 0.0, "finite", _finite, PER_LAYER, ("init",),
        "Initial generative biases (entry 0: the visible units', entry l: h_l's)."),
    Hyperparameter(
        "recognition_bias", 0.0, "finite", _finite, PER_LAYER, ("init",),
        "Initial recognition biases (entry l: those of Q(h_{l+1} | h_l))."),
)

"""Every hyperparameter of the kit, one :class:`Hyperparameter` row each."""

_ROWS = {row.name: row for row in TABLE}

OPTIMIZER_RANGES: dict[str, tuple[str, Callable]] = {
    "b1": ("in [0, 1)", _half_open_unit),
    "b2": ("in [0, 1)", _half_open_unit),
    "decay": ("in [0, 1]", _unit),
    "momentum": ("in [0, 1)", _half_open_unit),
    "eps": ("finite and >= 0", _non_negative),
    "eps_root": ("finite and >= 0", _non_negative),
    "initial_accumulator_value": ("finite and >= 0", _non_negative),
    "weight_decay": ("finite and >= 0", _non_negative),
}
"""Ranges of the optimizer keywords that optax's aliases share: the moment decays
(``b1``, ``b2``, ``decay``, ``momentum``) and the non-negative constants. A keyword
not listed here is passed on unchecked; whether the optimizer takes it at all is
checked when the algorithm builds it."""


def names(reader: str) -> tuple[str, ...]:
    """The names of the rows ``reader`` reads, in table order."""
    return tuple(row.name for row in TABLE if reader in row.readers)


def defaults(reader: str) -> dict:
    """{name: default} of the rows ``reader`` reads (plain Python floats)."""
    return {row.name: row.default for row in TABLE if reader in row.readers}


def _is_traced(value) -> bool:
    return any(isinstance(leaf, jax.core.Tracer) for leaf in jax.tree.leaves(value))


def as_leaf(name: str, value) -> jax.Array:
    """``value`` as a float32 array, or a TypeError naming ``name`` and the value."""
    if _is_traced(value):
        return jnp.asarray(value, jnp.float32)
    if callable(value) or isinstance(value, (str, bytes, dict)):
        raise TypeError(f"hyperparameter {name} must be a number or an array of numbers, "
                        f"got {value!r}")
    try:
        array = np.asarray(value)
        if array.dtype.kind not in "biuf":
            raise TypeError
    except (TypeError, ValueError):
        raise TypeError(f"hyperparameter {name} must be a number or an array of numbers, "
                        f"got {value!r}") from None
    return jnp.asarray(array, jnp.float32)


def _concrete(value):
    return None if _is_traced(value) else np.asarray(value, np.float64)


def _show(value) -> str:
    return str(value.tolist()) if isinstance(value, np.ndarray) else repr(value)


def check(hyperparams: dict, num_layers: int | None = None, *, leading: int = 0) -> None:
    """Raise a ValueError naming the first concrete hyperparameter out of its range or shape.

    Traced values pass the range checks (their ranges are the caller's to keep);
    shapes are checked either way.

    Args:
      hyperparams: a dict of hyperparameters (any subset of the table, and
        ``"optimizer"``).
      num_layers: the machine's number of layers of conditionals, if known: the
        per-layer values are then checked to have one value or ``num_layers``.
      leading: number of leading axes to ignore in the shapes (1 for a grid of
        points from :func:`wsjax.grid`).
    """
    for name, value in hyperparams.items():
        if name == "optimizer":
            continue
        row = _ROWS.get(name)
        if row is None:
            continue
        v = _concrete(value)
        if v is not None and not np.all(row.ok(v)):
            raise ValueError(f"hyperparameter {name} must be {row.valid}, got {_show(v)}")
        _check_shape(row, np.shape(value)[leading:], num_layers)
    for name, value in dict(hyperparams.get("optimizer", {})).items():
        v = _concrete(value)
        if name in OPTIMIZER_RANGES and v is not None:
            valid, ok = OPTIMIZER_RANGES[name]
            if not np.all(ok(v)):
                raise ValueError(f"optimizer keyword {name} must be {valid}, got {_show(v)}")
        if len(np.shape(value)) > leading:
            raise ValueError(f"optimizer keyword {name} must be a scalar, got shape "
                             f"{np.shape(value)[leading:]}")
    _check_band(*(_concrete(hyperparams.get(k, default)) for k, default in
                  (("activity_floor", 0.0), ("activity_ceiling", 1.0))))


def _check_shape(row, shape, num_layers):
    if row.shape == SCALAR and shape not in ((), (1,)):
        raise ValueError(f"hyperparameter {row.name} must be a scalar, got shape {shape}")
    if row.shape == PAIR and shape not in ((), (1,), (2,)):
        raise ValueError(f"{row.name} must be a scalar or a (generative, recognition) pair, "
                         f"got shape {shape}")
    if row.shape == PER_LAYER:
        allowed = ((), (1,)) + (((num_layers,),) if num_layers is not None else ())
        if len(shape) > 1 or (num_layers is not None and shape not in allowed):
            count = (f"{num_layers} (one per layer of conditionals)" if num_layers
                     else "one per layer")
            raise ValueError(f"{row.name} needs one value or {count}, got shape {shape}")


def _check_band(floor, ceiling):
    """activity_floor <= activity_ceiling, layer by layer (and point by point in a grid,
    whose leaves carry a leading axis of points: the lower-rank one is aligned on it)."""
    if floor is None or ceiling is None:
        return
    rank = max(floor.ndim, ceiling.ndim)
    floor, ceiling = (np.reshape(v, v.shape + (1,) * (rank - v.ndim)) if v.ndim else v
                      for v in (floor, ceiling))
    try:
        below = floor > ceiling
    except ValueError:  # shapes that do not fit: the per-layer shape check names them
        return
    if np.any(below):
        show = lambda v: " ".join(f"{x:.6g}" for x in np.ravel(v))
        raise ValueError(f"activity_floor ({show(floor)}) must not exceed activity_ceiling "
                         f"({show(ceiling)})")


def canonical(hyperparams: dict, num_layers: int) -> dict:
    """The dict checked, with every row in its canonical shape: a pair [2], per layer [L].

    Scalars stay scalars; entries that are not rows (``"optimizer"``) are kept as they are.
    """
    check(hyperparams, num_layers)
    out = dict(hyperparams)
    for name, value in hyperparams.items():
        row = _ROWS.get(name)
        if row is None:
            continue
        value = jnp.asarray(value, jnp.float32)
        if row.shape == PAIR:
            out[name] = jnp.broadcast_to(value, (2,))
        elif row.shape == PER_LAYER:
            out[name] = jnp.broadcast_to(value, (num_layers,))
        else:
            out[name] = jnp.reshape(value, ())
    return out


def markdown_table(reader: str | None = None) -> str:
    """The table (or the rows ``reader`` reads) as Markdown, for the documentation."""
    lines = ["| name | default | valid | shape | read by | meaning |", "|---|---|---|---|---|---|"]
    for row in TABLE:
        if reader is None or reader in row.readers:
            shape = {"scalar": "scalar", "pair": "scalar or pair",
                     "per_layer": "scalar or per layer"}[row.shape]
            lines.append(f"| `{row.name}` | {row.default:g} | {row.valid} | {shape} | "
                         f"{', '.join(row.readers)} | {row.help} |")
    return "\n".join(lines) + "\n"
