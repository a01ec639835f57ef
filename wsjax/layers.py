"""Sigmoid-Bernoulli conditionals, written on logits.

A conditional is a function (layer params, input) -> logits. The default is the
affine map used throughout the Helmholtz-machine literature. Every function of
the kit takes ``logits_fn``: one conditional used for every layer and side, or
a :class:`Conditionals` naming one per layer and side (an MLP with
deterministic hidden units for some layers, the affine map for others). Both
must be hashable (they are static arguments of compiled functions).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax.custom_derivatives import SymbolicZero

__all__ = [
    "LogitsFn",
    "Conditionals",
    "conditional",
    "dense_logits",
    "init_dense",
    "bernoulli_log_prob",
    "bernoulli_sample",
    "draw_flat",
]

LogitsFn = Callable[[Any, jax.Array], jax.Array]
"""A conditional: ``(layer params, input [n_in]) -> logits [n_out]`` of independent Bernoullis."""


class Conditionals(NamedTuple):
    """One conditional per layer and side of a machine with L layers of conditionals.

    Attributes:
      generative: L functions; entry l maps (params["generative"][l], h_{l+1}) to the
        logits of h_l.
      recognition: L functions; entry l maps (params["recognition"][l], h_l) to the
        logits of h_{l+1}.
    """

    generative: tuple[LogitsFn, ...]
    recognition: tuple[LogitsFn, ...]


def conditional(logits_fn, side: str, layer: int) -> LogitsFn:
    """The conditional of ``side`` ("generative" or "recognition") at ``layer``."""
    if isinstance(logits_fn, Conditionals):
        return getattr(logits_fn, side)[layer]
    return logits_fn


def init_dense(key: jax.Array, n_in: int, n_out: int, scale: float = 0.0) -> dict:
    """Params of one affine conditional ``logits = w @ x + b``.

    Args:
      key: PRNG key for the weights.
      n_in: width of the conditioning layer.
      n_out: width of the layer whose logits are produced.
      scale: standard deviation of the Gaussian initial weights (0 gives zeros).

    Returns:
      ``{"w": [n_out, n_in], "b": [n_out]}``, float32.
    """
    w = scale * draw_flat(lambda s: jax.random.normal(key, s, jnp.float32), (n_out, n_in))
    return {"w": w, "b": jnp.zeros((n_out,), jnp.float32)}


def dense_logits(layer: dict, x: jax.Array) -> jax.Array:
    """Affine conditional: ``layer["w"] @ x + layer["b"]``.

    Args:
      layer: ``{"w": [n_out, n_in], "b": [n_out]}``.
      x: input of shape [n_in] (or [..., n_in]; leading axes broadcast).

    Returns:
      Logits of shape [n_out] (or [..., n_out]).
    """
    return jnp.asarray(x, layer["w"].dtype) @ layer["w"].T + layer["b"]


def bernoulli_log_prob(logits: jax.Array, x: jax.Array) -> jax.Array:
    r"""Log-probability of binary ``x`` under factorial Bernoulli(sigmoid(logits)).

    Uses :math:`\log p(x) = x\,l - \mathrm{softplus}(l)`, summed over the last
    axis, which is exact and stable for any logit (no log of a sigmoid). Its
    derivative in the logits is written as the delta rule's error
    :math:`x - \sigma(l)` (one sigmoid; the forward softplus is not needed for it).

    Args:
      logits: array [..., n].
      x: 0/1 array broadcastable to ``logits``.

    Returns:
      Array [...]: the log-probability in nats, summed over the last axis.
    """
    x = jnp.asarray(x, logits.dtype)
    return jnp.sum(_log_prob_terms(logits, x), axis=-1)


@jax.custom_jvp
def _log_prob_terms(logits, x):
    return x * logits - jax.nn.softplus(logits)


def _log_prob_terms_jvp(primals, tangents):
    logits, x = primals
    t_logits, t_x = tangents
    out = _log_prob_terms(logits, x)
    tangent = jnp.zeros_like(out)
    if not isinstance(t_logits, SymbolicZero):
        tangent = tangent + (x - jax.nn.sigmoid(logits)) * t_logits
    if not isinstance(t_x, SymbolicZero):
        tangent = tangent + logits * t_x
    return out, tangent


_log_prob_terms.defjvp(_log_prob_terms_jvp, symbolic_zeros=True)


def draw_flat(draw: Callable[[tuple[int]], jax.Array], shape: tuple[int, ...]) -> jax.Array:
    """``draw(shape)`` for a ``jax.random`` draw, made as one flat vector and reshaped.

    The same numbers as the shaped draw (threefry counts elements in row-major
    order), with less index arithmetic to compile: a draw of two axes becomes one
    of three under a vmap over seeds, which took 1.9 s to compile against 0.3 s
    flat on a 2-core CPU. Every multi-axis draw of the kit goes through here.

    Args:
      draw: ``flat_shape -> array``, e.g. ``lambda s: jax.random.uniform(key, s)``.
      shape: the shape of the result.
    """
    return jnp.reshape(draw((math.prod(shape),)), shape)


def bernoulli_sample(key: jax.Array, logits: jax.Array) -> jax.Array:
    """Sample a binary array with P(1) = sigmoid(logits), as 0/1 in the dtype of ``logits``.

    The uniforms are those of ``jax.random.uniform(key, logits.shape)``, drawn flat
    (:func:`draw_flat`).
    """
    u = draw_flat(lambda s: jax.random.uniform(key, s, logits.dtype), logits.shape)
    return (u < jax.nn.sigmoid(logits)).astype(logits.dtype)
