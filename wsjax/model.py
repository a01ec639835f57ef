"""The Helmholtz machine: params, samplers and log-probabilities.

A machine with ``layer_sizes = (n_0, n_1, ..., n_L)`` has visible layer
``h_0 = u`` of width ``n_0`` and hidden layers ``h_1 .. h_L`` (``h_L`` the top).
Its params are a plain pytree::

    {"prior": {"b": [n_L]},                      # P(h_L) = f(b)
     "generative": (gen_0, ..., gen_{L-1}),      # gen_l: P(h_l | h_{l+1})
     "recognition": (rec_0, ..., rec_{L-1})}     # rec_l: Q(h_{l+1} | h_l)

with each conditional ``{"w": [n_out, n_in], "b": [n_out]}`` for the default
factorial sigmoid layers (:class:`wsjax.layers.SBN`). The log-probabilities and the
samplers ``sample_recognition`` / ``sample_generative`` work on one example (``u`` of
shape [n_0]; batch with ``jax.vmap``); ``sample_up``, ``sample_down`` and
``particle_log_probs`` work on a batch at once and draw each layer's noise for the
whole batch from one key (the training phases use them). Every function takes
``conditionals``, the kinds of layer (:mod:`wsjax.layers`): autoregressive DARN and
NADE layers, or any logits function (an MLP) in place of the affine one, for every
layer and side at once or one per layer and side (:class:`wsjax.layers.Conditionals`);
each layer's params are then what its kind reads.

References:
  Dayan, Hinton, Neal & Zemel (1995), The Helmholtz machine. Neural Computation 7.
  Dayan & Abbott (2001), Theoretical Neuroscience, ch. 10 (the u, v, G, W notation).
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from wsjax import hyperparams
from wsjax._api import public
from wsjax.layers import (
    SBN,
    Conditional,
    Conditionals,
    bernoulli_log_prob,
    conditional,
    draw_flat,
    no_input,
)

__all__ = [
    "init",
    "from_matrices",
    "to_matrices",
    "layer_sizes",
    "check_layer_sizes",
    "check_structure",
    "check_visible",
    "sample_up",
    "sample_down",
    "sample_recognition",
    "sample_generative",
    "particle_log_probs",
    "sample_particles",
    "log_defensive",
    "log_prior",
    "log_generative",
    "log_joint",
    "log_recognition",
    "generative_params",
    "recognition_params",
]


def init(
    key: jax.Array, layer_sizes: Sequence[int], *, conditionals: Conditional = SBN(),
    init_scale=0.0, prior_bias=0.0, generative_bias=0.0, recognition_bias=0.0,
) -> dict:
    """A fresh machine whose params match ``conditionals``.

    Args:
      key: PRNG key for the initial weights.
      layer_sizes: (n_visible, n_1, ..., n_top), at least two positive ints (static).
      conditionals: the kinds of layer (:class:`wsjax.layers.Conditionals`, or one
        kind for every layer and side with the factorial prior; static). Each kind
        makes its own params (``kind.init``); a custom logits function brings its own.
      init_scale: standard deviation of the Gaussian initial weights: one
        value, or one per layer of conditionals (entry l for the generative and
        recognition conditionals between h_l and h_{l+1}; the prior takes the
        last). 0 (the default) starts every affine weight at zero: the sampling
        noise alone breaks the symmetry between hidden units.
      prior_bias: initial value of the top-layer prior's biases.
      generative_bias: initial value of the generative biases: one value, or
        one per layer of conditionals (entry 0 for the visible units' biases,
        entry l for h_l's). Negative values start the machine with sparse dreams.
      recognition_bias: initial value of the recognition biases: one value, or
        one per layer (entry l for the biases of Q(h_{l+1} | h_l)).
      The bias values may be traced.

    Returns:
      The params pytree described in the module docstring. Layer l of a side
      is drawn from ``jax.random.split(key, 2 L)[l]`` (generative) or ``[L + l]``
      (recognition); the prior from ``jax.random.fold_in(key, 2 L)``.

    Raises:
      ValueError: if layer_sizes has fewer than two entries or a non-positive one,
        ``conditionals`` names another number of layers, or a concrete initial value
        is not finite (or a negative scale), named.
    """
    sizes = check_layer_sizes(layer_sizes)
    num_layers = len(sizes) - 1
    _check_depth(conditionals, num_layers)
    hyperparams.check(dict(init_scale=init_scale, prior_bias=prior_bias,
                           generative_bias=generative_bias, recognition_bias=recognition_bias),
                      num_layers)
    scales = _per_layer("init_scale", init_scale, num_layers)
    gen_biases = _per_layer("generative_bias", generative_bias, num_layers)
    rec_biases = _per_layer("recognition_bias", recognition_bias, num_layers)
    keys = jax.random.split(key, 2 * num_layers)
    with_bias = lambda layer, b: {**layer, "b": jnp.full_like(layer["b"], b)}
    generative = tuple(
        with_bias(conditional(conditionals, "generative", l).init(
            keys[l], sizes[l + 1], sizes[l], scales[l]), gen_biases[l])
        for l in range(num_layers)
    )
    recognition = tuple(
        with_bias(conditional(conditionals, "recognition", l).init(
            keys[num_layers + l], sizes[l], sizes[l + 1], scales[l]), rec_biases[l])
        for l in range(num_layers)
    )
    prior = with_bias(conditional(conditionals, "prior").init(
        jax.random.fold_in(key, 2 * num_layers), 0, sizes[-1], scales[-1]), prior_bias)
    return {"prior": prior, "generative": generative, "recognition": recognition}


def _check_depth(conditionals, num_layers):
    """A ValueError when a :class:`Conditionals` names another number of layers."""
    if isinstance(conditionals, Conditionals) and len(conditionals.generative) != num_layers:
        raise ValueError(
            f"the machine has {num_layers} layers of conditionals but conditionals names "
            f"{len(conditionals.generative)} generative and {len(conditionals.recognition)} "
            "recognition"
        )


def _per_layer(name, value, num_layers):
    """A scalar or a sequence of num_layers values, as a tuple of num_layers."""
    if np.ndim(value) == 0:
        return (value,) * num_layers
    values = tuple(value)
    if len(values) == 1:
        return values * num_layers
    if len(values) != num_layers:
        raise ValueError(f"{name} needs one value or {num_layers} (one per layer), got {value!r}")
    return values


def check_layer_sizes(layer_sizes: Sequence[int]) -> tuple[int, ...]:
    """``layer_sizes`` as a tuple of ints, or a ValueError naming what is wrong with it."""
    try:
        sizes = tuple(int(n) for n in layer_sizes)
    except (TypeError, ValueError) as e:
        raise ValueError(f"layer_sizes must be a sequence of ints, got {layer_sizes!r}") from e
    if len(sizes) < 2:
        raise ValueError(
            f"layer_sizes needs a visible and at least one hidden layer, got {layer_sizes!r}"
        )
    if (any(isinstance(m, (bool, np.bool_)) for m in layer_sizes) or any(n < 1 for n in sizes)
            or any(n != float(m) for n, m in zip(sizes, layer_sizes))):
        raise ValueError(f"layer_sizes must be positive integers, got {tuple(layer_sizes)!r}")
    return sizes


def from_matrices(*, G, g, h, W, w) -> dict:
    """A one-hidden-layer machine from the textbook matrices (Dayan & Abbott).

    ``P(v) = f(g)``, ``P(u|v) = f(h + G v)``, ``Q(v|u) = f(w + W u)``.

    Args:
      G: generative weights [n_u, n_v].
      g: generative prior biases [n_v].
      h: generative visible biases [n_u].
      W: recognition weights [n_v, n_u].
      w: recognition biases [n_v].

    Returns:
      params with ``layer_sizes == (n_u, n_v)``. A pure re-layout: works on tracers.

    Raises:
      ValueError: if the shapes do not fit together (names both shapes).
    """
    # Integer or boolean matrices (np.zeros((4, 2), int)) become float32; float dtypes stay.
    G, g, h, W, w = (_as_float(a) for a in (G, g, h, W, w))
    if G.ndim != 2:
        raise ValueError(f"G must be a matrix [n_u, n_v], got shape {G.shape}")
    n_u, n_v = G.shape
    expected = {"g": (n_v,), "h": (n_u,), "W": (n_v, n_u), "w": (n_v,)}
    for name, arr in (("g", g), ("h", h), ("W", W), ("w", w)):
        if arr.shape != expected[name]:
            raise ValueError(
                f"{name} has shape {arr.shape} but G has shape {G.shape}, "
                f"so {name} must have shape {expected[name]}"
            )
    return {
        "prior": {"b": g},
        "generative": ({"w": G, "b": h},),
        "recognition": ({"w": W, "b": w},),
    }


def _as_float(a):
    a = jnp.asarray(a)
    return a if jnp.issubdtype(a.dtype, jnp.floating) else a.astype(jnp.float32)


def to_matrices(params: dict) -> dict:
    """The inverse of :func:`from_matrices`: ``{"G", "g", "h", "W", "w"}``.

    Raises:
      ValueError: if the machine has more than one hidden layer.
    """
    if len(params["generative"]) != 1:
        raise ValueError(
            "to_matrices needs a machine with one hidden layer, this one has "
            f"{len(params['generative'])}"
        )
    gen, rec = params["generative"][0], params["recognition"][0]
    return {"G": gen["w"], "g": params["prior"]["b"], "h": gen["b"], "W": rec["w"], "w": rec["b"]}


def generative_params(params: dict) -> dict:
    """The generative half ``{"prior", "generative"}`` of a machine."""
    return {"prior": params["prior"], "generative": params["generative"]}


def recognition_params(params: dict) -> dict:
    """The recognition half ``{"recognition"}`` of a machine."""
    return {"recognition": params["recognition"]}


def check_structure(params) -> None:
    """Raise a ValueError naming what is missing or malformed in a machine's params.

    Checks the pytree's layout ({"prior": {"b"}, "generative": (...), "recognition": (...)},
    as many recognition as generative conditionals, at least one) and that every leaf is a
    floating-point array. Shapes are checked by :func:`layer_sizes`.
    """
    if not isinstance(params, dict) or not {"prior", "generative", "recognition"} <= set(params):
        found = sorted(params) if isinstance(params, dict) else type(params).__name__
        raise ValueError(
            'params must be a dict with keys "prior", "generative" and "recognition" '
            f"(as made by wsjax.init), got {found}"
        )
    if not isinstance(params["prior"], dict) or "b" not in params["prior"]:
        raise ValueError(f'params["prior"] must be {{"b": [n_top]}}, got {params["prior"]!r}')
    if np.ndim(params["prior"]["b"]) != 1:
        raise ValueError(
            f'params["prior"]["b"] must be a vector [n_top], got shape '
            f'{np.shape(params["prior"]["b"])}'
        )
    for side in ("generative", "recognition"):
        if not isinstance(params[side], (tuple, list)) or not params[side]:
            raise ValueError(
                f'params["{side}"] must be a non-empty tuple of conditionals (one per layer), '
                f"got {type(params[side]).__name__}"
            )
    if len(params["recognition"]) != len(params["generative"]):
        raise ValueError(
            f"params have {len(params['generative'])} generative but "
            f"{len(params['recognition'])} recognition conditionals"
        )
    for path, leaf in jax.tree_util.tree_leaves_with_path(params):
        dtype = leaf.dtype if hasattr(leaf, "dtype") else np.asarray(leaf).dtype
        if not jnp.issubdtype(dtype, jnp.floating):
            raise ValueError(
                f"params{jax.tree_util.keystr(path)} has dtype {dtype}; params must be floating "
                "point (cast with .astype(jnp.float32))"
            )


def layer_sizes(params: dict, conditionals: Conditional = SBN()) -> tuple[int, ...]:
    """The static widths (n_visible, n_1, ..., n_top) of a machine.

    Read from shapes only (``jax.eval_shape``), so it works under jit.

    Raises:
      ValueError: if the params are malformed (:func:`check_structure`), do not fit
        their kinds, or two conditionals disagree on a width.
    """
    check_structure(params)
    num_layers = len(params["generative"])
    _check_depth(conditionals, num_layers)
    sizes = [_width(conditionals, "prior", 0, params["prior"], 0, "the prior", ())]
    for l in reversed(range(num_layers)):
        where = "the prior" if l == num_layers - 1 else f"generative conditional {l + 1}"
        sizes.insert(0, _width(conditionals, "generative", l, params["generative"][l], sizes[0],
                               f"the width of {where}, widths so far", tuple(sizes)))
    for l in range(num_layers):
        out = _width(conditionals, "recognition", l, params["recognition"][l], sizes[l],
                     "generative widths", tuple(sizes))
        if out != sizes[l + 1]:
            raise ValueError(
                f"recognition conditional {l} maps width {sizes[l]} to {out}, "
                f"but the generative model has width {sizes[l + 1]} there "
                f"(generative widths {tuple(sizes)})"
            )
    return tuple(sizes)


def _width(conditionals, side, l, layer, n_in, context, sizes):
    """The output width of one conditional, or a ValueError saying why it does not fit."""
    kind = conditional(conditionals, side, l)
    name = "the prior" if side == "prior" else f"{side} conditional {l}"
    try:
        return kind.out_width(layer, n_in)
    except (KeyError, TypeError, AttributeError) as e:
        if isinstance(e, TypeError) and side != "prior":
            raise ValueError(f"{name} cannot take an input of width {n_in} "
                             f"({context} {sizes}): {e}") from e
        raise ValueError(f"{name} has params that do not fit its kind {kind!r}: "
                         f"{type(e).__name__}: {e}") from e


def check_visible(params: dict, u, conditionals: Conditional = SBN(), *, batched: bool):
    """Raise a ValueError at trace time when ``u`` does not fit the machine.

    Args:
      params: the machine.
      u: data, [n_visible] (``batched=False``) or [batch, n_visible] (``batched=True``).
      conditionals: the kinds of layer.
      batched: whether a leading batch axis is expected.
    """
    sizes = layer_sizes(params, conditionals)
    shape = np.shape(u)
    want = "[batch, n_visible]" if batched else "[n_visible]"
    ndim = 2 if batched else 1
    if len(shape) != ndim or shape[-1] != sizes[0]:
        raise ValueError(
            f"data of shape {shape} does not fit the machine: expected {want} with "
            f"n_visible = {sizes[0]} (layer_sizes {sizes})"
        )





def sample_up(
    key: jax.Array, params: dict, u: jax.Array, conditionals: Conditional = SBN(),
    num_samples: int | None = None, *, defensive=0.0,
) -> tuple[jax.Array, ...]:
    """Recognition samples for a batch, bottom-up, with one key per layer.

    Layer l's noise for the whole batch is ``jax.random.uniform(keys[l], shape)`` with
    ``keys = jax.random.split(key, L)``, so a batch costs L key splits however many
    examples and samples it holds. With ``num_samples = K`` every example gets K
    samples; they share ``u``, so the first recognition conditional is evaluated once
    per example, not once per sample.

    With ``defensive = d > 0`` each layer is drawn from the mixture (1 - d) Q(h_l |
    h_{l-1}) + d Uniform(h_l): every sample's whole layer is replaced, with probability
    d, by uniform random bits (the draws of ``fold_in(keys[l], 1)``), and the layer above
    is conditioned on what was drawn. At d = 0 the samples are those of plain Q.

    Args:
      key: PRNG key.
      params: the machine.
      u: visible vectors [batch, n_visible] of 0/1.
      num_samples: K (static), or None for one sample per example.
      defensive: d in [0, 1), the uniform's weight in each layer's proposal (may be
        traced; a Python 0 draws nothing more).

    Returns:
      (h_1, ..., h_L), float 0/1 arrays [batch, n_l] (None) or [batch, K, n_l].
    """
    keys = jax.random.split(key, len(params["recognition"]))
    rows = [jnp.asarray(u, jnp.float32)]
    for l, layer in enumerate(params["recognition"]):
        # Rows b*K .. b*K + K-1 are example b's samples; the first conditional's
        # input-dependent part is computed once per example.
        h = conditional(conditionals, "recognition", l).sample(
            keys[l], layer, rows[-1], num_samples if l == 0 else None)
        rows.append(_defend(keys[l], h, defensive))
    u, rows = rows[0], rows[1:]
    if num_samples is None:
        return tuple(rows)
    return tuple(jnp.reshape(h, (u.shape[0], num_samples, h.shape[-1])) for h in rows)


def _defend(key, h, defensive):
    """Rows of ``h`` [rows, n] replaced by uniform bits with probability ``defensive``."""
    if isinstance(defensive, (int, float)) and defensive == 0:
        return h

    def mix():
        key_pick, key_bits = jax.random.split(jax.random.fold_in(key, 1))
        pick = jax.random.uniform(key_pick, (h.shape[0], 1), h.dtype) < defensive
        bits = draw_flat(lambda s: jax.random.bernoulli(key_bits, 0.5, s), h.shape)
        return jnp.where(pick, bits.astype(h.dtype), h)

    return jax.lax.cond(jnp.asarray(defensive) == 0, lambda: h, mix)


def log_defensive(
    params: dict, u: jax.Array, hs: Sequence[jax.Array], defensive,
    conditionals: Conditional = SBN(),
) -> jax.Array:
    r"""log of the defensive proposal's density at K samples per example, [batch, K].

    .. math:: \sum_l \log\big((1 - d)\, Q(h_l | h_{l-1}) + d\, 2^{-n_l}\big)

    the density that :func:`sample_up` draws from with ``defensive = d``.

    Args:
      params: the machine.
      u: data [batch, n_visible].
      hs: (h_1 [batch, K, n_1], ..., h_L [batch, K, n_L]).
      defensive: d in [0, 1) (may be traced).
    """
    u = jnp.asarray(u, jnp.float32)
    batch, num_samples = hs[0].shape[:2]
    rows = [jnp.reshape(h, (batch * num_samples, h.shape[-1])) for h in hs]
    below = (jnp.repeat(u, num_samples, axis=0), *rows[:-1])
    d = jnp.asarray(defensive, rows[0].dtype)
    total = 0.0
    for l, h in enumerate(rows):
        log_q = conditional(conditionals, "recognition", l).log_prob(
            params["recognition"][l], below[l], h)
        total = total + jnp.logaddexp(jnp.log1p(-d) + log_q,
                                      jnp.log(d) - h.shape[-1] * jnp.log(2.0))
    return jnp.reshape(total, (batch, num_samples))


def sample_down(
    key: jax.Array, params: dict, batch_size: int, conditionals: Conditional = SBN()
) -> tuple[jax.Array, tuple[jax.Array, ...]]:
    """Dream a batch top-down, h_L ~ P(h_L), ..., u ~ P(u | h_1), with one key per layer.

    ``keys = jax.random.split(key, L + 1)``: keys[0] draws the top layer and
    ``keys[L - l]`` layer l (l = 0 the visible one), each for the whole batch.

    Returns:
      (u [batch_size, n_0], (h_1 [batch_size, n_1], ..., h_L)), float 0/1 arrays.
    """
    num_layers = len(params["generative"])
    keys = jax.random.split(key, num_layers + 1)
    above = conditional(conditionals, "prior").sample(keys[0], params["prior"],
                                                      no_input((batch_size,)))
    hs = [above]
    for l in reversed(range(num_layers)):
        above = conditional(conditionals, "generative", l).sample(
            keys[num_layers - l], params["generative"][l], above)
        hs.insert(0, above)
    return hs[0], tuple(hs[1:])


@public(static_argnames=("conditionals",), examples=("u",), inline=True)
def sample_recognition(
    key: jax.Array, params: dict, u: jax.Array, conditionals: Conditional = SBN()
) -> tuple[jax.Array, ...]:
    """Sample the hidden layers of one example bottom-up from Q(h_1 | u) Q(h_2 | h_1) ...

    The first row of :func:`sample_up` with the same key.

    Args:
      key: PRNG key.
      params: the machine.
      u: one visible vector [n_visible] of 0/1.

    Returns:
      (h_1, ..., h_L), float 0/1 arrays of widths n_1 .. n_L.
    """
    return tuple(h[0] for h in sample_up(key, params, jnp.asarray(u)[None], conditionals))


@public(static_argnames=("conditionals",), inline=True)
def sample_generative(
    key: jax.Array, params: dict, conditionals: Conditional = SBN()
) -> tuple[jax.Array, tuple[jax.Array, ...]]:
    """Dream one example top-down: h_L ~ P(h_L), ..., u ~ P(u | h_1).

    The first dream of :func:`sample_down` with the same key.

    Returns:
      (u, (h_1, ..., h_L)), float 0/1 arrays.
    """
    u, hs = sample_down(key, params, 1, conditionals)
    return u[0], tuple(h[0] for h in hs)


def particle_log_probs(
    params: dict, u: jax.Array, hs: Sequence[jax.Array], conditionals: Conditional = SBN()
) -> tuple[jax.Array, jax.Array]:
    """log P(u, h_k) and log Q(h_k | u) for K samples per example, in nats.

    Args:
      params: the machine.
      u: data [batch, n_visible].
      hs: (h_1 [batch, K, n_1], ..., h_L [batch, K, n_L]).

    Returns:
      (log_p, log_q), each [batch, K]. The first recognition conditional is evaluated
      once per example (its input ``u`` is the same for the K samples).
    """
    u = jnp.asarray(u, jnp.float32)
    rec, gen = params["recognition"], params["generative"]
    batch, num_samples = hs[0].shape[:2]
    # Computed on 2-D rows [batch * K, n] (b * K + k for sample k of example b): XLA's CPU
    # code is several times faster on them than on [batch, K, n] blocks at small widths.
    hs = [jnp.reshape(h, (batch * num_samples, h.shape[-1])) for h in hs]
    first = conditional(conditionals, "recognition", 0)
    if first.factorial:  # the logits of u once per example, not once per sample
        logits = jnp.repeat(first.logits(rec[0], u), num_samples, axis=0)
        log_q = bernoulli_log_prob(logits, hs[0])
    else:
        log_q = first.log_prob(rec[0], jnp.repeat(u, num_samples, axis=0), hs[0])
    for l in range(1, len(hs)):
        log_q = log_q + conditional(conditionals, "recognition", l).log_prob(
            rec[l], hs[l - 1], hs[l])
    below = (jnp.repeat(u, num_samples, axis=0), *hs)
    log_p = log_prior(params, hs[-1], conditionals)
    for l in range(len(hs)):
        log_p = log_p + conditional(conditionals, "generative", l).log_prob(
            gen[l], hs[l], below[l])
    return (jnp.reshape(log_p, (batch, num_samples)), jnp.reshape(log_q, (batch, num_samples)))


def sample_particles(
    key: jax.Array, params: dict, u: jax.Array, num_samples: int,
    conditionals: Conditional = SBN(),
) -> tuple[tuple[jax.Array, ...], jax.Array, jax.Array]:
    """K recognition samples per example and their (log P, log Q), differentiable in the params.

    The samples are those of ``sample_up(key, params, u, conditionals, num_samples)``, held
    fixed for differentiation (``stop_gradient``); the log-probabilities are those of
    :func:`particle_log_probs` at them, so a gradient through them is the score of the
    samples, as importance-weighted objectives need.

    Returns:
      (hs, log_p, log_q): hs = (h_1 [batch, K, n_1], ...), log_p and log_q [batch, K].
    """
    u = jnp.asarray(u, jnp.float32)
    hs = jax.lax.stop_gradient(sample_up(key, params, u, conditionals, num_samples))
    log_p, log_q = particle_log_probs(params, u, hs, conditionals)
    return hs, log_p, log_q


def log_prior(params: dict, top: jax.Array, conditionals: Conditional = SBN()) -> jax.Array:
    """log P(h_L) for top-layer vectors [..., n_top]: [...]."""
    top = jnp.asarray(top, jnp.float32)
    return conditional(conditionals, "prior").log_prob(params["prior"], no_input(top.shape[:-1]),
                                                       top)


def log_generative(
    params: dict, u: jax.Array, hs: Sequence[jax.Array], conditionals: Conditional = SBN()
) -> jax.Array:
    """sum_l log P(h_l | h_{l+1}) with h_0 = u: the joint without the prior."""
    layers = (u, *hs)
    return sum(
        conditional(conditionals, "generative", l).log_prob(
            params["generative"][l], layers[l + 1], layers[l])
        for l in range(len(hs))
    )


@public(static_argnames=("conditionals",), examples=("u",), inline=True)
def log_joint(
    params: dict, u: jax.Array, hs: Sequence[jax.Array], conditionals: Conditional = SBN()
) -> jax.Array:
    """log P(u, h_1, ..., h_L) in nats, for one example. Returns a scalar."""
    return log_prior(params, hs[-1], conditionals) + log_generative(params, u, hs, conditionals)


@public(static_argnames=("conditionals",), examples=("u",), inline=True)
def log_recognition(
    params: dict, u: jax.Array, hs: Sequence[jax.Array], conditionals: Conditional = SBN()
) -> jax.Array:
    """log Q(h_1, ..., h_L | u) in nats, for one example. Returns a scalar."""
    layers = (u, *hs)
    return sum(
        conditional(conditionals, "recognition", l).log_prob(
            params["recognition"][l], layers[l], layers[l + 1])
        for l in range(len(hs))
    )
