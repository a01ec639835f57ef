r"""Wake-sleep and reweighted wake-sleep steps driven by any optax optimizer.

The hand-written steps of :mod:`wsjax.wake_sleep` and :mod:`wsjax.rws` apply
plain SGD. :func:`make_optax_step` returns an ``init``/``step`` pair that
applies an optax optimizer instead (SGD, momentum, Adam, ...), with the
optimizer state carried in an :class:`OptaxState`.

Design:

* **Two optimizer states.** The generative half ``{"prior", "generative"}``
  and the recognition half ``{"recognition"}`` each get their own instance of
  the optimizer, and each is updated only with the gradients of its own half.
  So the moments that Adam keeps for one half never move the other, and in
  sequential wake-sleep each phase sees exactly the params it should.
* **Traced learning rate.** The factory takes an *optimizer factory*
  ``learning_rate -> optax.GradientTransformation`` such as ``optax.sgd`` or
  ``optax.adam`` (or ``lambda lr: optax.sgd(lr, momentum=0.9)``), not a built
  transformation. It is wrapped with ``optax.inject_hyperparams``, so the rate
  is an array inside the optimizer state, set by ``init(params,
  learning_rate)``: ``jax.vmap(init, in_axes=(None, 0))`` builds one state per
  rate, ``jax.vmap(step, in_axes=(None, 0, None))`` steps them all at once, and
  a jitted ``step`` is traced once for every rate. The rate is a scalar (both
  halves) or a ``[2]`` pair (generative rate, recognition rate).
* **Schedules.** An optional ``schedule`` (any optax schedule, ``count ->
  multiplier``) scales every update after the optimizer: the update of step t
  (counting from 0) is ``schedule(t)`` times the optimizer's update at rate
  ``learning_rate``. For SGD and Adam that is a learning rate of
  ``learning_rate * schedule(t)``. The schedule is static (closed over); the
  base rate stays traced. A schedule with ``init_value=1`` applied to a base
  rate of 1 gives an absolute schedule.
* **Gradients, not ascent directions.** optax minimizes, and the wsjax
  gradients (:func:`~wsjax.wake_sleep.wake_grads`, :func:`~wsjax.wake_sleep.sleep_grads`,
  :func:`~wsjax.rws.rws_grads`) are gradients of losses, minus the delta rules.
  So ``optax.sgd(lr)`` gives ``params - lr * grads``, the delta rule, and
  reproduces the hand-written SGD steps.

Key use. ``step(key, state, u)``:

* ``"wake_sleep"``: ``key_wake, key_sleep = jax.random.split(key)``; the
  recognition samples are those of ``wake_grads(key_wake, ...)`` and the dreams
  those of ``sleep_grads(key_sleep, ...)``. With ``optax.sgd(lr)`` a step equals
  ``sleep_step(key_sleep, wake_step(key_wake, params, u, lr), lr, B)`` when
  ``sequential=True``, and the simultaneous update (both phases from the
  pre-step params, as in :mod:`wsjax.train` and :func:`~wsjax.rws.rws_step`)
  when ``sequential=False``, the default. The simultaneous step with a key equals
  ``rws_step`` with that key, K = 1 and insomnia = 0.
* ``"rws"``: the key goes to ``rws_grads(key, ...)`` unsplit (it splits it
  itself), so with ``optax.sgd(lr)`` a step equals ``rws_step(key, params, u,
  lr, K, ...)``.

References:
  Hinton, Dayan, Frey & Neal (1995), The wake-sleep algorithm for unsupervised
  neural networks. Science 268.
  Bornschein & Bengio (2015), Reweighted wake-sleep. ICLR.
  Kingma & Ba (2015), Adam: a method for stochastic optimization. ICLR.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import optax

from wsjax.layers import LogitsFn, dense_logits
from wsjax.model import generative_params, recognition_params
from wsjax.rws import rws_grads
from wsjax.wake_sleep import sleep_grads, wake_grads

__all__ = ["ALGORITHMS", "OptaxState", "OptaxAlgorithm", "make_optax_step", "rates_pair"]

ALGORITHMS = ("wake_sleep", "rws")
"""The algorithms :func:`make_optax_step` accepts."""

OptimizerFn = Callable[[Any], optax.GradientTransformation]
"""learning_rate -> optax.GradientTransformation, e.g. ``optax.sgd`` or ``optax.adam``."""


class OptaxState(NamedTuple):
    """What an optax-driven run carries from one step to the next.

    Attributes:
      params: the machine, ``{"prior", "generative", "recognition"}``.
      opt_state: ``(generative, recognition)``, the optax states of the two
        halves. Each is an ``optax.InjectHyperparamsState`` whose
        ``hyperparams["learning_rate"]`` holds that half's base rate (float
        scalar, traced).
      step: number of steps taken, an int32 scalar.
    """

    params: dict
    opt_state: tuple
    step: jax.Array


class OptaxAlgorithm(NamedTuple):
    """The pure functions of an optax-driven algorithm; jit them where you need.

    Attributes:
      init: ``(params, learning_rate) -> OptaxState``. ``learning_rate`` is a
        scalar or a [2] (generative, recognition) pair, and may be traced.
      step: ``(key, state, u) -> (state, info)`` with ``u`` a batch
        [batch, n_visible] of 0/1 data and ``info`` a dict of scalar
        diagnostics (see :func:`make_optax_step`).
    """

    init: Callable
    step: Callable


def rates_pair(learning_rate) -> jax.Array:
    """A scalar rate or a (generative, recognition) pair as a [2] float32 array."""
    lr = jnp.asarray(learning_rate, jnp.float32)
    if lr.ndim > 1 or (lr.ndim == 1 and lr.shape[0] != 2):
        raise ValueError(
            "learning_rate must be a scalar or a (generative, recognition) pair, "
            f"got shape {lr.shape}"
        )
    return jnp.broadcast_to(lr, (2,))


def _check_positive_int(name, value, allow_none):
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")


def _layer_scales(half, scales):
    """A tree like ``half`` whose leaves are the rate multipliers of their layers.

    Conditional l of either side gets ``scales[l]``; the prior gets the top layer's.
    ``scales`` holds the multipliers at the current step (floats or scalars).
    """
    out = {}
    for name, part in half.items():
        if name == "prior":
            out[name] = jax.tree.map(lambda _: scales[-1], part)
        else:
            out[name] = tuple(jax.tree.map(lambda _, l=l: scales[l], layer)
                              for l, layer in enumerate(part))
    return out


def _update_half(optimizer, opt_state, half, grads, scales=None, step=None):
    """One optimizer update of one half: (new half, new optimizer state)."""
    updates, opt_state = optimizer.update(grads, opt_state, half)
    if scales is not None:
        now = tuple(m(step) if callable(m) else m for m in scales)
        updates = jax.tree.map(lambda u, m: u * m, updates, _layer_scales(half, now))
    return optax.apply_updates(half, updates), opt_state


def make_optax_step(
    optimizer_fn: OptimizerFn,
    algorithm: str = "wake_sleep",
    *,
    num_samples: int | None = None,
    insomnia=None,
    sleep_batch_size: int | None = None,
    sequential: bool = False,
    schedule: optax.Schedule | None = None,
    layer_rate_scales=None,
    logits_fn: LogitsFn = dense_logits,
) -> OptaxAlgorithm:
    r"""Build ``init`` and ``step`` for wake-sleep or RWS with an optax optimizer.

    Each step computes the gradients of the chosen algorithm and feeds the
    generative half's gradients to one instance of the optimizer and the
    recognition half's to another (see the module docstring for the design
    and the key use). With ``optax.sgd`` the step is the plain SGD step of
    :func:`~wsjax.wake_sleep.wake_step` / :func:`~wsjax.wake_sleep.sleep_step`
    or :func:`~wsjax.rws.rws_step`:

    .. math:: \theta \leftarrow \theta - \eta\, s(t)\, \nabla_\theta L

    with :math:`\eta` the rate of the half and :math:`s(t)` the schedule
    (1 without one).

    Args:
      optimizer_fn: a callable ``learning_rate -> optax.GradientTransformation``
        such as ``optax.sgd``, ``optax.adam`` or
        ``functools.partial(optax.adam, b1=0.8)``; it is called with the rate as
        its one positional argument. Not a built transformation: the rate must
        be set by ``init`` so that it can be traced.
      algorithm: ``"wake_sleep"`` (classic wake and sleep phases) or ``"rws"``
        (reweighted wake-sleep, :func:`~wsjax.rws.rws_grads`). Static.
      num_samples: K, recognition samples per example; required for ``"rws"``
        and refused for ``"wake_sleep"``. Static positive int.
      insomnia: RWS only: weight in [0, 1] of the wake-phase Q update against
        the sleep phase (scalar, may be traced; None: 1.0).
      sleep_batch_size: dreams per sleep phase (static; None: the batch size
        of ``u``).
      sequential: wake-sleep only. False (the default): both phases take their
        gradients at the pre-step params. True: the wake update is applied
        first and the sleep phase dreams from the updated generative model.
      schedule: optional optax schedule, step count -> multiplier of every
        update (static). None: constant rate, and no extra transformation.
      layer_rate_scales: optional sequence of one multiplier per layer of
        conditionals, each a float or a schedule (step count -> multiplier):
        the updates of generative and recognition conditional l are scaled by
        entry l, the prior's by the last entry. None: every layer at the full rate.
      logits_fn: the conditional "layer params, input -> logits".

    Returns:
      An :class:`OptaxAlgorithm`. ``init(params, learning_rate)`` returns the
      :class:`OptaxState` at step 0. ``step(key, state, u)``, with ``u`` data
      [batch, n_visible] of 0/1, returns ``(state, info)``: info holds
      ``"wake_loss"`` and ``"sleep_loss"`` for wake-sleep, and the dict of
      :func:`~wsjax.rws.rws_grads` (``"iw_bound"``, ``"ess"``,
      ``"wake_p_loss"``, ``"wake_q_loss"``, ``"sleep_loss"``) for RWS, all
      scalars computed at the pre-step params (the sleep loss, in sequential
      wake-sleep, at the params after the wake update).

    Raises:
      TypeError: if ``optimizer_fn`` is a built ``GradientTransformation`` or
        is not callable.
      ValueError: for an unknown algorithm or an option that does not fit it.

    Examples:
      >>> import jax, optax, wsjax
      >>> from wsjax.optim import make_optax_step
      >>> algo = make_optax_step(optax.adam, "rws", num_samples=4)
      >>> params = wsjax.init(jax.random.key(0), (6, 3))
      >>> state = algo.init(params, 1e-2)
      >>> u = jax.numpy.ones((8, 6))
      >>> state, info = jax.jit(algo.step)(jax.random.key(1), state, u)
      >>> int(state.step)
      1
    """
    if isinstance(optimizer_fn, optax.GradientTransformation):
        raise TypeError(
            "optimizer_fn must be a factory learning_rate -> GradientTransformation "
            "(e.g. optax.adam), not a built transformation (e.g. optax.adam(1e-3)): "
            "the rate is set by init so that it can be traced and vmapped"
        )
    if not callable(optimizer_fn):
        raise TypeError(f"optimizer_fn must be callable, got {optimizer_fn!r}")
    if algorithm not in ALGORITHMS:
        raise ValueError(f"algorithm must be one of {ALGORITHMS}, got {algorithm!r}")
    _check_positive_int("sleep_batch_size", sleep_batch_size, allow_none=True)
    if algorithm == "wake_sleep":
        if num_samples is not None:
            raise ValueError("num_samples applies to algorithm='rws' only")
        if insomnia is not None:
            raise ValueError("insomnia applies to algorithm='rws' only")
    else:
        _check_positive_int("num_samples", num_samples, allow_none=False)
        if sequential:
            raise ValueError("sequential applies to algorithm='wake_sleep' only")
        if insomnia is None:
            insomnia = 1.0

    def factory(learning_rate):
        tx = optimizer_fn(learning_rate)
        if schedule is not None:
            tx = optax.chain(tx, optax.scale_by_schedule(schedule))
        return tx

    if layer_rate_scales is not None:
        layer_rate_scales = tuple(m if callable(m) else float(m) for m in layer_rate_scales)
        if not all(callable(m) or (m >= 0 and m == m) for m in layer_rate_scales):
            raise ValueError(f"layer_rate_scales must be non-negative, got {layer_rate_scales}")

    def check_scales(params):
        if layer_rate_scales is not None and len(layer_rate_scales) != len(params["generative"]):
            raise ValueError(
                f"layer_rate_scales has {len(layer_rate_scales)} entries but the machine has "
                f"{len(params['generative'])} layers of conditionals")

    # Built once; the rate is supplied per state by init.
    make_optimizer = optax.inject_hyperparams(factory)

    def init_fn(params, learning_rate) -> OptaxState:
        check_scales(params)
        lr = rates_pair(learning_rate)
        opt_gen = make_optimizer(lr[0]).init(generative_params(params))
        opt_rec = make_optimizer(lr[1]).init(recognition_params(params))
        return OptaxState(params, (opt_gen, opt_rec), jnp.zeros((), jnp.int32))

    # The update never reads the rate given here: inject_hyperparams takes it
    # from the state. 0.0 is only a placeholder for building the transformation.
    optimizer = make_optimizer(0.0)

    def wake_sleep_step(key, state, u):
        key_wake, key_sleep = jax.random.split(key)
        params = state.params
        opt_gen, opt_rec = state.opt_state
        batch = sleep_batch_size or jnp.shape(u)[0]
        gen_grads, wake_loss = wake_grads(key_wake, params, u, logits_fn)
        check_scales(params)
        gen, opt_gen = _update_half(optimizer, opt_gen, generative_params(params), gen_grads,
                                    layer_rate_scales, state.step)
        # Sequential: dream from the machine after the wake update.
        dreamer = {**params, **gen} if sequential else params
        rec_grads, sleep_loss = sleep_grads(key_sleep, dreamer, batch, logits_fn)
        rec, opt_rec = _update_half(optimizer, opt_rec, recognition_params(params), rec_grads,
                                    layer_rate_scales, state.step)
        info = {"wake_loss": wake_loss, "sleep_loss": sleep_loss}
        return OptaxState({**params, **gen, **rec}, (opt_gen, opt_rec), state.step + 1), info

    def rws_step_fn(key, state, u):
        params = state.params
        opt_gen, opt_rec = state.opt_state
        grads, info = rws_grads(
            key, params, u, num_samples, insomnia, sleep_batch_size, logits_fn
        )
        check_scales(params)
        gen, opt_gen = _update_half(
            optimizer, opt_gen, generative_params(params), generative_params(grads),
            layer_rate_scales, state.step)
        rec, opt_rec = _update_half(
            optimizer, opt_rec, recognition_params(params), recognition_params(grads),
            layer_rate_scales, state.step)
        return OptaxState({**params, **gen, **rec}, (opt_gen, opt_rec), state.step + 1), info

    step_fn = wake_sleep_step if algorithm == "wake_sleep" else rws_step_fn
    return OptaxAlgorithm(init_fn, step_fn)
