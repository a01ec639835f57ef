r"""Training algorithms as bundles of pure functions: wake-sleep and reweighted wake-sleep.

Each factory takes an optax optimizer and returns an :class:`Algorithm`, the
``init``/``step`` pair of optax's GradientTransformation and blackjax's
algorithms::

    algo = wsjax.rws(optax.adam, num_samples=5)
    state = algo.init(params, algo.default_hyperparams(learning_rate=1e-3, insomnia=0.5))
    state, info = jax.jit(algo.step)(key, state, u)      # info: an RWSInfo

**Hyperparameters are data.** ``state.hyperparams`` is a dict of arrays that
the step reads afresh every time, so every value in it can be traced, vmapped
and swept in one compiled program; only what fixes shapes or program structure
(K, the sleep batch size, sequential or simultaneous phases, the optimizer
itself, ``logits_fn``) is an argument of the factory. The keys:

* ``learning_rate``: [2], the base rate of the generative half (the prior and
  every generative conditional) and of the recognition half. A scalar given to
  :meth:`Algorithm.default_hyperparams` means both.
* ``lr_decay`` and ``decay_steps``: the rate falls geometrically to
  ``lr_decay`` times its start at step ``decay_steps`` and stays there (the
  curve of ``optax.exponential_decay`` with ``transition_steps=decay_steps``,
  held at its end). ``lr_decay = 1`` is a constant rate.
* ``layer_rate_start`` and ``layer_rate_end``: per layer of conditionals
  (scalar or [L]), a rate multiplier moving geometrically from start to end
  over the same ``decay_steps``; generative and recognition conditional l take
  entry l, the prior takes the top entry. 0 freezes a layer.
* ``activity_weight``, ``activity_floor`` and ``activity_ceiling``: per
  layer (scalar or [L]; recognition conditional l, the units of h_{l+1}),
  units whose mean recognition probability on the wake batch falls below the
  floor (rises above the ceiling) get ``activity_weight`` times
  :func:`~wsjax.phases.activity_grads` added to their gradient, which turns
  them up (down): dead units come back. ``activity_weight = 0`` (default) is
  the plain algorithm. The floor must not exceed the ceiling in any layer.
* ``insomnia`` (RWS only): weight in [0, 1] of the wake-phase recognition
  update against the sleep phase.
* ``optimizer``: a dict of keyword arguments of the optimizer (``{"b1": 0.8}``
  for ``optax.adam``), numeric and so traced too.

**Let optax do it.** The step builds one optax transformation from the
hyperparameters: ``optax.partition`` over one label per (half, layer), each
label's instance of the optimizer called with its own ``learning_rate``
schedule (base rate x decay x layer multiplier). So the two halves never share
optimizer moments, a rate of 0 freezes a half, and ``optax.sgd`` gives exactly
the delta rules of :func:`~wsjax.phases.wake_step`,
:func:`~wsjax.phases.sleep_step` and :func:`~wsjax.reweighted.rws_step`. The
schedule is written out (one line) rather than taken from
``optax.exponential_decay``, which inspects its decay rate in Python and so
cannot take a traced one. Optimizers whose update is not per leaf (global-norm
clipping, say) see one layer of one half at a time.

Key use: ``step(key, state, batch)`` for wake-sleep splits ``key_wake,
key_sleep = jax.random.split(key)`` (recognition samples from ``key_wake``,
dreams from ``key_sleep``); RWS hands the key to ``rws_grads`` unsplit.

References:
  Hinton, Dayan, Frey & Neal (1995), The wake-sleep algorithm for unsupervised
  neural networks. Science 268.
  Bornschein & Bengio (2015), Reweighted wake-sleep. ICLR.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from wsjax._api import check_positive_int, is_traced
from wsjax.layers import LogitsFn, dense_logits
from wsjax.model import generative_params, recognition_params
from wsjax.phases import _wake_grads, activity_grads, sleep_grads
from wsjax.reweighted import RWSInfo, _rws_grads

__all__ = [
    "Algorithm",
    "State",
    "WakeSleepInfo",
    "RWSInfo",
    "wake_sleep",
    "rws",
    "check_hyperparams",
]

Optimizer = Callable[..., optax.GradientTransformation]
"""An optax alias such as ``optax.sgd`` or ``optax.adam``: ``(learning_rate, **kwargs) -> tx``."""


class State(NamedTuple):
    """What a run carries from one step to the next, for every algorithm.

    Attributes:
      params: the machine, ``{"prior", "generative", "recognition"}``.
      opt_state: the optax state of the transformation built from ``hyperparams``.
      hyperparams: the dict of arrays described in the module docstring, in
        canonical shapes (``learning_rate`` [2], layer multipliers [L]).
      step: number of steps taken, an int32 scalar.
    """

    params: Any
    opt_state: Any
    hyperparams: dict
    step: jax.Array


class WakeSleepInfo(NamedTuple):
    """Diagnostics of one wake-sleep step (scalars).

    Attributes:
      wake_loss: the wake loss (minus the mean log P(u, h) at the recognition
        samples) at the pre-step params.
      sleep_loss: the sleep loss (minus the mean log Q(h | u) on the dreams),
        at the pre-step params, or after the wake update when sequential.
    """

    wake_loss: jax.Array
    sleep_loss: jax.Array


class Algorithm(NamedTuple):
    """The pure functions of a training algorithm; jit and vmap them where you need.

    Attributes:
      init: ``(params, hyperparams) -> State`` at step 0.
      step: ``(key, state, u) -> (State, info)`` with ``u`` a batch [batch,
        n_visible] of 0/1 data and ``info`` the algorithm's Info NamedTuple.
      default_hyperparams: ``(**overrides) -> dict``: every hyperparameter the
        algorithm reads, at its default unless overridden, checked.
      name: "wake_sleep" or "rws".
    """

    init: Callable
    step: Callable
    default_hyperparams: Callable
    name: str


_COMMON_DEFAULTS = dict(learning_rate=0.1, lr_decay=1.0, decay_steps=1.0,
                        layer_rate_start=1.0, layer_rate_end=1.0, activity_weight=0.0,
                        activity_floor=0.02, activity_ceiling=1.0)


# Hyperparameters with one value per layer of conditionals (a scalar means every layer).
_PER_LAYER = ("layer_rate_start", "layer_rate_end", "activity_weight", "activity_floor",
             "activity_ceiling")


def _as_leaf(name, value):
    if callable(value):
        raise TypeError(f"hyperparameter {name} must be a number or an array, not a callable")
    return jnp.asarray(value, jnp.float32)


def _make_defaults(extra):
    keys = tuple(_COMMON_DEFAULTS) + tuple(extra) + ("optimizer",)

    def default_hyperparams(**overrides) -> dict:
        unknown = sorted(set(overrides) - set(keys))
        if unknown:
            raise ValueError(f"unknown hyperparameters {unknown}; this algorithm reads {list(keys)}")
        values = {**_COMMON_DEFAULTS, **extra, "optimizer": {}, **overrides}
        hp = {k: _as_leaf(k, v) for k, v in values.items() if k != "optimizer"}
        hp["optimizer"] = {k: _as_leaf(f"optimizer.{k}", v) for k, v in dict(values["optimizer"]).items()}
        check_hyperparams(hp)
        return hp

    return default_hyperparams


def _concrete(x):
    return None if is_traced(x) else np.asarray(x, np.float64)


def check_hyperparams(hyperparams: dict, num_layers: int | None = None) -> None:
    """Raise a ValueError naming the first concrete hyperparameter out of its range.

    Traced values pass: their ranges are the caller's to keep.
    """
    rules = dict(learning_rate=("finite and >= 0", lambda v: np.isfinite(v) & (v >= 0)),
                 lr_decay=("finite and > 0", lambda v: np.isfinite(v) & (v > 0)),
                 decay_steps=("finite and > 0", lambda v: np.isfinite(v) & (v > 0)),
                 layer_rate_start=("finite and >= 0", lambda v: np.isfinite(v) & (v >= 0)),
                 layer_rate_end=("finite and >= 0", lambda v: np.isfinite(v) & (v >= 0)),
                 insomnia=("in [0, 1]", lambda v: (v >= 0) & (v <= 1)),
                 activity_weight=("finite and >= 0", lambda v: np.isfinite(v) & (v >= 0)),
                 activity_floor=("in [0, 1]", lambda v: (v >= 0) & (v <= 1)),
                 activity_ceiling=("in [0, 1]", lambda v: (v >= 0) & (v <= 1)),
                 # The training loop's initialisation (wsjax.train), when present.
                 init_scale=("finite and >= 0", lambda v: np.isfinite(v) & (v >= 0)),
                 prior_bias=("finite", np.isfinite), generative_bias=("finite", np.isfinite),
                 recognition_bias=("finite", np.isfinite))
    for name, (what, ok) in rules.items():
        if name not in hyperparams:
            continue
        v = _concrete(hyperparams[name])
        if v is not None and not np.all(ok(v)):
            raise ValueError(f"hyperparameter {name} must be {what}, got {v.tolist()}")
    lr = np.shape(hyperparams.get("learning_rate", 0.0))
    if lr not in ((), (1,), (2,)):
        raise ValueError(f"learning_rate must be a scalar or a (generative, recognition) pair, "
                         f"got shape {lr}")
    if num_layers is not None:
        for name in _PER_LAYER:
            shape = np.shape(hyperparams.get(name, 1.0))
            if shape not in ((), (1,), (num_layers,)):
                raise ValueError(f"{name} needs one value or {num_layers} (one per layer of "
                                 f"conditionals), got shape {shape}")
    _check_band(*(_concrete(hyperparams.get(k, v)) for k, v in
                  (("activity_floor", 0.0), ("activity_ceiling", 1.0))))


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


def _canonical(hyperparams, num_layers):
    check_hyperparams(hyperparams, num_layers)
    hp = dict(hyperparams)
    hp["learning_rate"] = jnp.broadcast_to(jnp.asarray(hp["learning_rate"], jnp.float32), (2,))
    for name in _PER_LAYER:
        hp[name] = jnp.broadcast_to(jnp.asarray(hp[name], jnp.float32), (num_layers,))
    return hp


def _labels(params):
    """One label per (half, layer): the prior belongs to the top generative layer."""
    num_layers = len(params["generative"])
    return {
        "prior": jax.tree.map(lambda _: f"generative_{num_layers - 1}", params["prior"]),
        "generative": tuple(jax.tree.map(lambda _, l=l: f"generative_{l}", layer)
                            for l, layer in enumerate(params["generative"])),
        "recognition": tuple(jax.tree.map(lambda _, l=l: f"recognition_{l}", layer)
                             for l, layer in enumerate(params["recognition"])),
    }


def _transformation(optimizer, hp, num_layers):
    """The optax transformation of the whole machine for the hyperparameters ``hp``."""

    def rate(half, layer):
        def schedule(count):
            frac = jnp.minimum(count / hp["decay_steps"], 1.0)
            start, end = hp["layer_rate_start"][layer], hp["layer_rate_end"][layer]
            multiplier = start ** (1.0 - frac) * end ** frac
            return hp["learning_rate"][half] * hp["lr_decay"] ** frac * multiplier
        return schedule

    transforms = {
        f"{side}_{l}": optimizer(rate(half, l), **hp.get("optimizer", {}))
        for half, side in enumerate(("generative", "recognition")) for l in range(num_layers)
    }
    return optax.partition(transforms, _labels)


def _check_optimizer(optimizer):
    if isinstance(optimizer, optax.GradientTransformation):
        raise TypeError(
            "optimizer must be an optax alias such as optax.adam (called with the rate), not a "
            "built transformation such as optax.adam(1e-3): the rate is a hyperparameter, so "
            "that it can be traced and swept")
    if not callable(optimizer):
        raise TypeError(f"optimizer must be callable, got {optimizer!r}")


def _init_fn(optimizer, required):
    def init_fn(params, hyperparams) -> State:
        missing = sorted(set(required) - set(hyperparams))
        if missing:
            raise ValueError(f"hyperparameters {missing} are missing; build a full set with "
                             "algorithm.default_hyperparams(...)")
        num_layers = len(params["generative"])
        hp = _canonical(hyperparams, num_layers)
        opt_state = _transformation(optimizer, hp, num_layers).init(params)
        return State(params, opt_state, hp, jnp.zeros((), jnp.int32))
    return init_fn


def _apply(optimizer, state, grads, params=None):
    """One update of ``params`` (default: the state's) by ``grads``: (params, opt_state)."""
    params = state.params if params is None else params
    tx = _transformation(optimizer, state.hyperparams, len(params["generative"]))
    updates, opt_state = tx.update(grads, state.opt_state, params)
    return optax.apply_updates(params, updates), opt_state


def _activity(hp, params, u, hs, logits_fn):
    grads = activity_grads(params, u, hs, hp["activity_floor"], hp["activity_ceiling"], logits_fn)
    return {"recognition": tuple(jax.tree.map(lambda g, w=w: w * g, layer) for w, layer in
                                 zip(hp["activity_weight"], grads["recognition"]))}


def _add(a, b):
    return jax.tree.map(jnp.add, a, b)


def wake_sleep(
    optimizer: Optimizer = optax.sgd, *, sequential: bool = False,
    sleep_batch_size: int | None = None, logits_fn: LogitsFn = dense_logits,
) -> Algorithm:
    r"""Classic wake-sleep (Hinton et al. 1995) with any optax optimizer.

    Each step takes the wake gradient of the generative half at recognition
    samples of the batch and the sleep gradient of the recognition half at
    dreams, and applies the optimizer. With ``optax.sgd`` the update is the pair
    of delta rules, :math:`\theta \leftarrow \theta - \eta_t \nabla L`.

    Args:
      optimizer: an optax alias, called as ``optimizer(learning_rate, **hyperparams["optimizer"])``.
      sequential: False (default): both phases take their gradients at the
        pre-step params (one step equals ``wake_step`` and ``sleep_step`` from the
        same params). True: the wake update is applied first and the sleep phase
        dreams from the updated generative model. Static.
      sleep_batch_size: dreams per sleep phase (static; None: the batch size).
      logits_fn: the conditional "layer params, input -> logits", or one per layer and side
        (:class:`wsjax.layers.Conditionals`).

    Returns:
      An :class:`Algorithm` whose step returns a :class:`WakeSleepInfo`.

    Examples:
      >>> import jax, optax, wsjax
      >>> algo = wsjax.wake_sleep(optax.sgd)
      >>> params = wsjax.init(jax.random.key(0), (6, 3))
      >>> state = algo.init(params, algo.default_hyperparams(learning_rate=0.5))
      >>> state, info = jax.jit(algo.step)(jax.random.key(1), state, jax.numpy.ones((4, 6)))
      >>> int(state.step)
      1
    """
    _check_optimizer(optimizer)
    if sleep_batch_size is not None:
        sleep_batch_size = check_positive_int(sleep_batch_size, "sleep_batch_size")
    sequential = bool(sequential)

    def step_fn(key, state, u):
        key_wake, key_sleep = jax.random.split(key)
        params = state.params
        batch = sleep_batch_size or jnp.shape(u)[0]
        gen_grads, wake_loss, hs = _wake_grads(key_wake, params, u, logits_fn)
        activity = _activity(state.hyperparams, params, u, hs, logits_fn)
        if not sequential:
            rec_grads, sleep_loss = sleep_grads(key_sleep, params, batch, logits_fn)
            rec_grads = _add(rec_grads, activity)
            new_params, opt_state = _apply(optimizer, state, {**gen_grads, **rec_grads})
        else:
            # Two updates of the one transformation, each keeping only its half: the
            # partition's inner states are per label, so each half's state moves once.
            zeros = jax.tree.map(jnp.zeros_like, params)
            woken, opt_wake = _apply(optimizer, state, {**zeros, **gen_grads})
            dreamer = {**params, **generative_params(woken)}
            rec_grads, sleep_loss = sleep_grads(key_sleep, dreamer, batch, logits_fn)
            rec_grads = _add(rec_grads, activity)  # the wake update left recognition as it was
            slept, opt_sleep = _apply(optimizer, state, {**zeros, **rec_grads}, dreamer)
            new_params = {**dreamer, **recognition_params(slept)}
            opt_state = optax.PartitionState(inner_states={
                label: (opt_wake if label.startswith("generative") else opt_sleep).inner_states[label]
                for label in opt_wake.inner_states})
        info = WakeSleepInfo(wake_loss=wake_loss, sleep_loss=sleep_loss)
        return State(new_params, opt_state, state.hyperparams, state.step + 1), info

    return Algorithm(_init_fn(optimizer, _COMMON_DEFAULTS), step_fn, _make_defaults({}),
                     "wake_sleep")


def rws(
    optimizer: Optimizer = optax.sgd, num_samples: int = 5, *,
    sleep_batch_size: int | None = None, logits_fn: LogitsFn = dense_logits,
) -> Algorithm:
    r"""Reweighted wake-sleep (Bornschein & Bengio 2015) with any optax optimizer.

    Each step takes :func:`~wsjax.reweighted.rws_grads` (K importance samples per
    example; the recognition update mixes the wake-phase and sleep-phase
    gradients by the ``insomnia`` hyperparameter) and applies the optimizer.
    With ``optax.sgd`` a step equals ``rws_step`` with the same key.

    Args:
      optimizer: an optax alias, called as ``optimizer(learning_rate, **hyperparams["optimizer"])``.
      num_samples: K, recognition samples per example (static positive int).
      sleep_batch_size: dreams per sleep phase (static; None: the batch size).
      logits_fn: the conditional "layer params, input -> logits", or one per layer and side
        (:class:`wsjax.layers.Conditionals`).

    Returns:
      An :class:`Algorithm` whose step returns an :class:`RWSInfo`; its
      hyperparameters add ``insomnia`` (default 1: wake-phase Q updates only).
    """
    _check_optimizer(optimizer)
    num_samples = check_positive_int(num_samples, "num_samples")
    if sleep_batch_size is not None:
        sleep_batch_size = check_positive_int(sleep_batch_size, "sleep_batch_size")

    def step_fn(key, state, u):
        grads, info, hs = _rws_grads(key, state.params, u, num_samples,
                                     state.hyperparams["insomnia"], sleep_batch_size, logits_fn)
        activity = _activity(state.hyperparams, state.params, u, hs, logits_fn)
        grads = {**grads, **_add(recognition_params(grads), activity)}
        new_params, opt_state = _apply(optimizer, state, grads)
        return State(new_params, opt_state, state.hyperparams, state.step + 1), info

    return Algorithm(_init_fn(optimizer, (*_COMMON_DEFAULTS, "insomnia")), step_fn,
                     _make_defaults({"insomnia": 1.0}), "rws")
