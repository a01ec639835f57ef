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
itself, ``conditionals``) is an argument of the factory. Every hyperparameter, its default,
its range, its shape and which algorithm reads it is a row of
:data:`wsjax.hyperparams.TABLE`; ``optimizer`` holds the optimizer's own
keywords (``{"b1": 0.8}`` for ``optax.adam``), numeric and so traced too.

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

import inspect
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from wsjax import hyperparams as hyperparams_lib
from wsjax._api import check_data, check_positive_int, entry_point
from wsjax.estimators import (
    NVILInfo,
    VIMCOInfo,
    check_baseline,
    check_vimco_samples,
    init_baseline,
    nvil_grads,
    vimco_grads,
)
from wsjax.layers import SBN, Conditional
from wsjax.model import check_structure, generative_params, layer_sizes, recognition_params
from wsjax.phases import activity_grads, sleep_grads, wake_grads
from wsjax.reweighted import RWSInfo, rws_grads

__all__ = [
    "Algorithm",
    "State",
    "WakeSleepInfo",
    "RWSInfo",
    "VIMCOInfo",
    "NVILInfo",
    "wake_sleep",
    "rws",
    "vimco",
    "nvil",
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
      name: "wake_sleep", "rws", "vimco" or "nvil".
      conditionals: the kinds of layer the algorithm was built for (machines made for
        it by :func:`wsjax.make_train` have params of these kinds).
    """

    init: Callable
    step: Callable
    default_hyperparams: Callable
    name: str
    conditionals: Conditional = SBN()


def _optimizer_name(optimizer) -> str:
    module = getattr(optimizer, "__module__", "") or ""
    prefix = "optax." if module.startswith("optax") else ""
    return prefix + getattr(optimizer, "__name__", repr(optimizer))


def _check_optimizer_keywords(optimizer, keywords) -> None:
    """Raise a ValueError for a keyword the optimizer does not take (names are static)."""
    try:
        parameters = inspect.signature(optimizer).parameters
    except (TypeError, ValueError):  # no signature to read: the optimizer call will tell
        return
    if any(p.kind == p.VAR_KEYWORD for p in parameters.values()):
        return
    takes = [n for n, p in parameters.items() if n != "learning_rate" and p.kind in (
        p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    unknown = sorted(set(keywords) - set(takes))
    if unknown:
        raise ValueError(f"optimizer keyword {unknown[0]!r} is not a parameter of "
                         f"{_optimizer_name(optimizer)} (it takes {', '.join(takes) or 'none'})")


def _make_defaults(name, optimizer):
    keys = hyperparams_lib.names(name) + ("optimizer",)
    table = hyperparams_lib.defaults(name)

    def default_hyperparams(**overrides) -> dict:
        unknown = sorted(set(overrides) - set(keys))
        if unknown:
            raise ValueError(
                f"unknown hyperparameters {unknown}; this algorithm reads {list(keys)}")
        values = {**table, **overrides}
        keywords = values.pop("optimizer", {})
        if not isinstance(keywords, Mapping):
            raise TypeError(f"hyperparameter optimizer must be a dict of the optimizer's "
                            f"keywords (e.g. {{'b1': 0.8}}), got {keywords!r}")
        hp = {k: hyperparams_lib.as_leaf(k, v) for k, v in values.items()}
        hp["optimizer"] = {k: hyperparams_lib.as_leaf(f"optimizer.{k}", v)
                           for k, v in keywords.items()}
        hyperparams_lib.check(hp)
        _check_optimizer_keywords(optimizer, hp["optimizer"])
        return hp

    default_hyperparams.__doc__ = (
        f"Every hyperparameter {name} reads, at its default unless overridden, checked.\n\n"
        f"Keys: {', '.join(keys)} (see :mod:`wsjax.hyperparams`). Returns a dict of float32\n"
        "arrays, ``optimizer`` a dict of the optimizer's keywords.\n\n"
        "Raises:\n  ValueError: for an unknown name or a value out of its range (named).\n"
        "  TypeError: for a value that is not a number.\n")
    return default_hyperparams


def _labels(params):
    """One label per (half, layer): the prior belongs to the top generative layer.

    NVIL's ``params["baseline"]`` adds two labels: ``"baseline"`` for the baseline's
    weights, ``"statistics"`` for its running mean and variance (which the step writes).
    """
    num_layers = len(params["generative"])
    labels = {
        "prior": jax.tree.map(lambda _: f"generative_{num_layers - 1}", params["prior"]),
        "generative": tuple(jax.tree.map(lambda _, l=l: f"generative_{l}", layer)
                            for l, layer in enumerate(params["generative"])),
        "recognition": tuple(jax.tree.map(lambda _, l=l: f"recognition_{l}", layer)
                             for l, layer in enumerate(params["recognition"])),
    }
    if "baseline" in params:
        labels["baseline"] = {k: "statistics" if k in ("mean", "var") else "baseline"
                              for k in params["baseline"]}
    return labels


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
    if "baseline_rate" in hp:  # NVIL: its baseline learns at the recognition rate x a factor
        def baseline_rate(count):
            frac = jnp.minimum(count / hp["decay_steps"], 1.0)
            return hp["learning_rate"][1] * hp["lr_decay"] ** frac * hp["baseline_rate"]

        transforms["baseline"] = optimizer(baseline_rate, **hp.get("optimizer", {}))
        transforms["statistics"] = optax.set_to_zero()  # running statistics: written, not stepped
    return optax.partition(transforms, _labels)


def _check_optimizer(optimizer):
    if isinstance(optimizer, optax.GradientTransformation):
        raise TypeError(
            "optimizer must be an optax alias such as optax.adam (called with the rate), not a "
            "built transformation such as optax.adam(1e-3): the rate is a hyperparameter, so "
            "that it can be traced and swept")
    if not callable(optimizer):
        raise TypeError(f"optimizer must be callable, got {optimizer!r}")


def _canonical_shape(row, num_layers):
    return {"pair": (2,), "per_layer": (num_layers,)}.get(row.shape, ())


def _check_state(state, name, optimizer) -> None:
    """Raise naming what is wrong when ``state`` is not a State of algorithm ``name``.

    Everything checked here is static (types, dict keys, shapes, the optimizer state's
    structure): it runs once per compilation, or on every call of the uncompiled step.
    """
    if not isinstance(state, State):
        got = type(state).__name__
        if isinstance(state, dict) and "generative" in state:
            got += " (raw params: build a State with algorithm.init(params, hyperparams))"
        raise TypeError(f"{name}.step takes a State made by {name}.init, got {got}")
    params, hp = state.params, state.hyperparams
    if not isinstance(hp, Mapping):
        raise TypeError(f"state.hyperparams must be a dict, got {type(hp).__name__}")
    want = set(hyperparams_lib.names(name)) | {"optimizer"}
    if set(hp) != want:
        missing, extra = sorted(want - set(hp)), sorted(set(hp) - want)
        what = "; ".join(part for part in (
            f"it lacks {missing}" if missing else "",
            f"it has {extra}, which {name} does not read" if extra else "") if part)
        raise TypeError(f"this State was not made by {name}.init (a State of another "
                        f"algorithm?): {what}")
    num_layers = len(params["generative"])
    for row in hyperparams_lib.TABLE:
        if row.name in hp and np.shape(hp[row.name]) != _canonical_shape(row, num_layers):
            raise ValueError(
                f"state.hyperparams[{row.name!r}] has shape {np.shape(hp[row.name])}, but "
                f"{name}.init makes it {_canonical_shape(row, num_layers)} for this machine "
                f"({num_layers} layers of conditionals)")
    _check_optimizer_keywords(optimizer, hp["optimizer"])
    abstract = jax.tree.map(lambda x: jax.ShapeDtypeStruct(np.shape(x), jnp.result_type(x)),
                            params)
    expected = jax.tree.structure(jax.eval_shape(
        _transformation(optimizer, hp, num_layers).init, abstract))
    if jax.tree.structure(state.opt_state) != expected:
        raise TypeError(
            f"state.opt_state is not a state of {_optimizer_name(optimizer)} for these params "
            f"(a State made with another optimizer?): {expected.num_leaves} leaves expected, "
            f"{jax.tree.structure(state.opt_state).num_leaves} found")


def _bundle(name, optimizer, step_fn, info_name, conditionals, prepare=None):
    """The Algorithm of ``step_fn``: init and step as checked, compiled entry points.

    ``prepare``, if given, maps the machine's params to the params the algorithm
    carries (NVIL adds its baseline), in ``init`` before the optimizer's state is made.
    """

    def init_fn(params, hyperparams) -> State:
        check_structure(params)
        if prepare is not None:
            params = prepare(params)
        if not isinstance(hyperparams, Mapping):
            raise TypeError(f"hyperparams must be a dict (from {name}.default_hyperparams), "
                            f"got {type(hyperparams).__name__}")
        want = hyperparams_lib.names(name)
        missing = sorted(set(want) - set(hyperparams))
        if missing:
            raise ValueError(f"hyperparameters {missing} are missing; build a full set with "
                             f"{name}.default_hyperparams(...)")
        unknown = sorted(set(hyperparams) - set(want) - {"optimizer"})
        if unknown:
            raise ValueError(f"unknown hyperparameters {unknown}; {name} reads {list(want)}")
        _check_optimizer_keywords(optimizer, hyperparams.get("optimizer", {}))
        num_layers = len(params["generative"])
        hp = hyperparams_lib.canonical(hyperparams, num_layers)
        hp["optimizer"] = {k: jnp.asarray(v, jnp.float32)
                           for k, v in dict(hyperparams.get("optimizer", {})).items()}
        opt_state = _transformation(optimizer, hp, num_layers).init(params)
        return State(params, opt_state, hp, jnp.zeros((), jnp.int32))

    def checked_step_fn(key, state, u):
        _check_state(state, name, optimizer)
        return step_fn(key, state, u)

    def check_init(arguments):
        check_structure(arguments["params"])
        hyperparams = arguments["hyperparams"]
        if isinstance(hyperparams, Mapping):
            num_layers = len(arguments["params"]["generative"])
            hyperparams_lib.check({k: v for k, v in hyperparams.items()
                                   if k != "optimizer" or isinstance(v, Mapping)}, num_layers)

    def check_step(arguments):
        state = arguments["state"]
        if not isinstance(state, State):
            _check_state(state, name, optimizer)  # raises, naming what it got
        arguments["u"] = check_data(arguments["u"], "u")
        if isinstance(state.hyperparams, Mapping):
            hyperparams_lib.check(state.hyperparams)

    init = entry_point(init_fn, check=check_init, name="init", doc=_INIT_DOC.format(name=name))
    step = entry_point(checked_step_fn, check=check_step, name="step",
                       doc=_STEP_DOC.format(name=name, info=info_name))
    return Algorithm(init, step, _make_defaults(name, optimizer), name, conditionals)


_INIT_DOC = """The State of {name} at step 0: ``(params, hyperparams) -> State``.

Args:
  params: the machine (``wsjax.init``).
  hyperparams: every hyperparameter {name} reads (``default_hyperparams(...)``);
    a pair or per-layer value may be given as a scalar.

Returns:
  A :class:`~wsjax.algorithms.State`: the params, the optimizer's state, the
  hyperparameters in canonical shapes (``learning_rate`` [2], per-layer values
  [L]) and step 0.

Called eagerly it is compiled once per shape, and concrete hyperparameters are
checked (ranges and shapes, named in the error); inside a ``jit`` or ``vmap`` it
is plain traced code.

Raises:
  ValueError: for malformed params, a missing or unknown hyperparameter, a value
    out of its range or of the wrong shape, or an optimizer keyword the
    optimizer does not take.
"""

_STEP_DOC = """One {name} step: ``(key, state, u) -> (State, {info})``.

Args:
  key: PRNG key of this step.
  state: the State from ``init`` (or from the previous step) of this algorithm.
  u: a batch of data [batch, n_visible] of 0/1.

Returns:
  (the State after the step, a :class:`{info}` of diagnostics at the pre-step params).

Called eagerly (from a notebook, say) it is compiled once per shape, and
concrete inputs are checked: ``u`` 2-D, finite, 0/1 and of the machine's width,
the state's hyperparameters in range. Inside ``jit``, ``vmap`` or ``scan`` it is
plain traced code (the static checks run once, at trace time).

Raises:
  TypeError: for raw params, or a State made by another algorithm or optimizer.
  ValueError: naming bad data or a hyperparameter out of range or of the wrong shape.
"""


def _apply(optimizer, state, grads, params=None):
    """One update of ``params`` (default: the state's) by ``grads``: (params, opt_state)."""
    params = state.params if params is None else params
    tx = _transformation(optimizer, state.hyperparams, len(params["generative"]))
    updates, opt_state = tx.update(grads, state.opt_state, params)
    return optax.apply_updates(params, updates), opt_state


def _activity(hp, params, u, hs, conditionals):
    grads = activity_grads(params, u, hs, hp["activity_floor"], hp["activity_ceiling"],
                           conditionals)
    return {"recognition": tuple(jax.tree.map(lambda g, w=w: w * g, layer) for w, layer in
                                 zip(hp["activity_weight"], grads["recognition"]))}


def _step_with_activity(optimizer, state, grads, u, hs, conditionals) -> State:
    """The next State: ``grads`` of every param, the activity term at the recognition
    samples ``hs`` added to the recognition half, one update of the optimizer."""
    activity = _activity(state.hyperparams, state.params, u, hs, conditionals)
    grads = {**grads, **_add(recognition_params(grads), activity)}
    new_params, opt_state = _apply(optimizer, state, grads)
    return State(new_params, opt_state, state.hyperparams, state.step + 1)


def _add(a, b):
    return jax.tree.map(jnp.add, a, b)


def wake_sleep(
    optimizer: Optimizer = optax.sgd, *, sequential: bool = False,
    sleep_batch_size: int | None = None, conditionals: Conditional = SBN(),
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
      conditionals: the kinds of layer (:class:`wsjax.layers.Conditionals`, or one for all).

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
        gen_grads, wake_loss, hs = wake_grads(key_wake, params, u, conditionals,
                                                return_samples=True)
        activity = _activity(state.hyperparams, params, u, hs, conditionals)
        if not sequential:
            rec_grads, sleep_loss = sleep_grads(key_sleep, params, batch, conditionals)
            rec_grads = _add(rec_grads, activity)
            new_params, opt_state = _apply(optimizer, state, {**gen_grads, **rec_grads})
        else:
            # Two updates of the one transformation, each keeping only its half: the
            # partition's inner states are per label, so each half's state moves once.
            zeros = jax.tree.map(jnp.zeros_like, params)
            woken, opt_wake = _apply(optimizer, state, {**zeros, **gen_grads})
            dreamer = {**params, **generative_params(woken)}
            rec_grads, sleep_loss = sleep_grads(key_sleep, dreamer, batch, conditionals)
            rec_grads = _add(rec_grads, activity)  # the wake update left recognition as it was
            slept, opt_sleep = _apply(optimizer, state, {**zeros, **rec_grads}, dreamer)
            new_params = {**dreamer, **recognition_params(slept)}
            opt_state = optax.PartitionState(inner_states={
                label: (opt_wake if label.startswith("generative")
                        else opt_sleep).inner_states[label]
                for label in opt_wake.inner_states})
        info = WakeSleepInfo(wake_loss=wake_loss, sleep_loss=sleep_loss)
        return State(new_params, opt_state, state.hyperparams, state.step + 1), info

    return _bundle("wake_sleep", optimizer, step_fn, "WakeSleepInfo", conditionals)


def rws(
    optimizer: Optimizer = optax.sgd, num_samples: int = 5, *,
    sleep_batch_size: int | None = None, conditionals: Conditional = SBN(),
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
      conditionals: the kinds of layer (:class:`wsjax.layers.Conditionals`, or one for all).

    Returns:
      An :class:`Algorithm` whose step returns an :class:`RWSInfo`; its
      hyperparameters add ``insomnia`` (default 1: wake-phase Q updates only).
    """
    _check_optimizer(optimizer)
    num_samples = check_positive_int(num_samples, "num_samples")
    if sleep_batch_size is not None:
        sleep_batch_size = check_positive_int(sleep_batch_size, "sleep_batch_size")

    def step_fn(key, state, u):
        grads, info, hs = rws_grads(key, state.params, u, num_samples,
                                    state.hyperparams["insomnia"], sleep_batch_size, conditionals,
                                    defensive=state.hyperparams["defensive"],
                                    return_samples=True)
        return _step_with_activity(optimizer, state, grads, u, hs, conditionals), info

    return _bundle("rws", optimizer, step_fn, "RWSInfo", conditionals)


def vimco(
    optimizer: Optimizer = optax.sgd, num_samples: int = 5, *,
    conditionals: Conditional = SBN(),
) -> Algorithm:
    r"""VIMCO (Mnih & Rezende 2016) with any optax optimizer.

    Both halves ascend the K-sample importance-weighted bound
    :math:`\mathbb{E}[\log \frac{1}{K}\sum_k w_k]`: each step takes
    :func:`~wsjax.estimators.vimco_grads` (the generative half by the normalised
    weights, the recognition half by the score function with leave-one-out
    baselines) and applies the optimizer. There is no sleep phase. With
    ``optax.sgd`` a step's change of the params divided by the learning rate is
    VIMCO's estimate of the bound's gradient (minus ``vimco_grads``).

    Key use: the key of a step goes to ``vimco_grads`` unsplit.

    Args:
      optimizer: an optax alias, called as ``optimizer(learning_rate, **hyperparams["optimizer"])``.
      num_samples: K >= 2, recognition samples per example (static).
      conditionals: the kinds of layer (:class:`wsjax.layers.Conditionals`, or one for all).

    Returns:
      An :class:`Algorithm` whose step returns a :class:`~wsjax.estimators.VIMCOInfo`;
      it reads the hyperparameters shared by every algorithm (no sleep phase: no
      ``insomnia``). The activity term (``activity_weight``, 0 by default) is added
      to the recognition update at the K samples, as in ``rws``.

    Raises:
      ValueError: if ``num_samples`` is not an integer >= 2.

    Examples:
      >>> import jax, optax, wsjax
      >>> algo = wsjax.vimco(optax.adam, num_samples=3)
      >>> params = wsjax.init(jax.random.key(0), (6, 3))
      >>> state = algo.init(params, algo.default_hyperparams(learning_rate=1e-2))
      >>> state, info = algo.step(jax.random.key(1), state, jax.numpy.ones((4, 6)))
      >>> int(state.step), info.ess.shape
      (1, ())

    References:
      Mnih & Rezende (2016), Variational inference for Monte Carlo objectives. ICML.
    """
    _check_optimizer(optimizer)
    num_samples = check_vimco_samples(num_samples)

    def step_fn(key, state, u):
        grads, info, hs = vimco_grads(key, state.params, u, num_samples, conditionals,
                                      return_samples=True)
        return _step_with_activity(optimizer, state, grads, u, hs, conditionals), info

    return _bundle("vimco", optimizer, step_fn, "VIMCOInfo", conditionals)


def nvil(optimizer: Optimizer = optax.sgd, *, conditionals: Conditional = SBN()) -> Algorithm:
    r"""NVIL (Mnih & Gregor 2014) with any optax optimizer.

    Both halves ascend the single-sample ELBO: each step takes
    :func:`~wsjax.estimators.nvil_grads` (the generative half at one recognition
    sample per example, the recognition half by the score function with NVIL's
    learned input-dependent baseline, centring and variance normalisation) and
    applies the optimizer. There is no sleep phase.

    **Where the baseline lives.** ``init`` adds ``params["baseline"] = {"w", "b",
    "mean", "var"}`` to the machine (:func:`~wsjax.estimators.init_baseline`;
    params that already hold one keep it): the linear baseline
    :math:`b(u) = w^\top u + b` and the running mean and variance of the centred
    learning signal. Every function of the kit reads only ``prior``,
    ``generative`` and ``recognition``, so the params of an NVIL state are a
    machine as they are (evaluations, sampling, another algorithm's ``init``).
    The optimizer steps ``w`` and ``b`` under their own label, at the
    recognition rate (with its decay) times the ``baseline_rate``
    hyperparameter; ``mean`` and ``var`` are state, not trained: the optimizer
    leaves them (``optax.set_to_zero``) and the step writes their new values,
    decayed by ``signal_decay``. So with ``optax.sgd`` a step's change of the
    machine's params divided by the learning rate is NVIL's estimate (minus the
    ``nvil_grads``), the baseline's change divided by ``learning_rate x
    baseline_rate`` its regression step, and the statistics move by their
    running averages.

    Key use: the key of a step goes to ``nvil_grads`` unsplit.

    Args:
      optimizer: an optax alias, called as ``optimizer(learning_rate, **hyperparams["optimizer"])``.
      conditionals: the kinds of layer (:class:`wsjax.layers.Conditionals`, or one for all).

    Returns:
      An :class:`Algorithm` whose step returns an :class:`~wsjax.estimators.NVILInfo`;
      its hyperparameters add ``baseline_rate`` and ``signal_decay``. The activity
      term (``activity_weight``, 0 by default) is added to the recognition update at
      the sample, as in ``rws``.

    Examples:
      >>> import jax, optax, wsjax
      >>> algo = wsjax.nvil(optax.adam)
      >>> params = wsjax.init(jax.random.key(0), (6, 3))
      >>> state = algo.init(params, algo.default_hyperparams(learning_rate=1e-2))
      >>> sorted(state.params["baseline"])
      ['b', 'mean', 'var', 'w']
      >>> state, info = algo.step(jax.random.key(1), state, jax.numpy.ones((4, 6)))
      >>> int(state.step)
      1

    References:
      Mnih & Gregor (2014), Neural variational inference and learning in belief
      networks. ICML.
    """
    _check_optimizer(optimizer)

    def prepare(params):
        n_visible = layer_sizes(params, conditionals)[0]
        if "baseline" not in params:
            return {**params, "baseline": init_baseline(n_visible)}
        check_baseline(params, n_visible)
        return params

    def step_fn(key, state, u):
        hp = state.hyperparams
        grads, statistics, info, hs = nvil_grads(key, state.params, u, hp["signal_decay"],
                                                 conditionals, return_samples=True)
        activity = _activity(hp, state.params, u, hs, conditionals)
        grads = {**grads, **_add(recognition_params(grads), activity)}
        new_params, opt_state = _apply(optimizer, state, grads)
        new_params = {**new_params, "baseline": {**new_params["baseline"], **statistics}}
        return State(new_params, opt_state, hp, state.step + 1), info

    return _bundle("nvil", optimizer, step_fn, "NVILInfo", conditionals, prepare=prepare)
