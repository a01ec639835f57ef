"""Sigmoid-Bernoulli conditionals, written on logits.

A conditional is a function (layer params, input) -> logits. The default is the
affine map used throughout the Helmholtz-machine literature. Every function of
the kit takes ``logits_fn``: one conditional used for every layer and side, or
a :class:`Conditionals` naming one per layer and side (an MLP with
deterministic hidden units for some layers, the affine map for others). Both
must be hashable (they are static arguments of compiled functions).
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp

__all__ = [
    "LogitsFn",
    "Conditionals",
    "conditional",
    "dense_logits",
    "init_dense",
    "bernoulli_log_prob",
    "bernoulli_sample",
]

LogitsFn = Callable[[Any, jax.Array], jax.Array]


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
    w = scale * jax.random.normal(key, (n_out, n_in), jnp.float32)
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
    axis, which is exact and stable for any logit (no log of a sigmoid).

    Args:
      logits: array [..., n].
      x: 0/1 array broadcastable to ``logits``.

    Returns:
      Array [...]: the log-probability in nats, summed over the last axis.
    """
    x = jnp.asarray(x, logits.dtype)
    return jnp.sum(x * logits - jax.nn.softplus(logits), axis=-1)


def bernoulli_sample(key: jax.Array, logits: jax.Array) -> jax.Array:
    """Sample a binary array with P(1) = sigmoid(logits), as 0/1 in the dtype of ``logits``."""
    u = jax.random.uniform(key, logits.shape, logits.dtype)
    return (u < jax.nn.sigmoid(logits)).astype(logits.dtype)
