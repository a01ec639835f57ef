r"""Losses behind the delta rules, the ELBO, and importance-sampled likelihoods.

The wake and sleep losses are cross-entropies of *sampled* pairs: the samples
enter as plain inputs, so the gradient with respect to the params is taken with
them held fixed, and one SGD step on each loss is exactly the classic wake or
sleep delta rule (Hinton, Dayan, Frey & Neal 1995).

References:
  Hinton, Dayan, Frey & Neal (1995), The wake-sleep algorithm for unsupervised
  neural networks. Science 268.
  Burda, Grosse & Salakhutdinov (2016), Importance weighted autoencoders. ICLR.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from wsjax._api import check_positive_int, public
from wsjax.layers import SBN, Conditional, row_floats
from wsjax.model import (
    check_visible,
    layer_sizes,
    log_joint,
    log_recognition,
    sample_particles,
)

__all__ = [
    "wake_loss",
    "sleep_loss",
    "log_weights",
    "elbo",
    "estimate_log_prob",
]

# Largest number of float32 values one chunk of importance samples may hold
# (batch x samples x total width); 2**22 floats = 16 MiB.
_CHUNK_BUDGET = 2**22


@public(static_argnames=("conditionals",), data=("u",), inline=True)
def wake_loss(
    params: dict, u: jax.Array, hs: Sequence[jax.Array], conditionals: Conditional = SBN()
) -> jax.Array:
    r"""Wake-phase loss: :math:`-\frac{1}{B}\sum_n \log P(u_n, h_n)`.

    Its gradient in the generative params, with the recognition samples ``hs``
    held fixed, is minus the wake delta rule averaged over the batch; it does
    not depend on the recognition params.

    Args:
      params: the machine.
      u: data [batch, n_visible].
      hs: recognition samples (h_1 [batch, n_1], ..., h_L [batch, n_L]).

    Returns:
      Scalar loss in nats per example.
    """
    lj = jax.vmap(log_joint, in_axes=(None, 0, 0, None))(params, u, tuple(hs), conditionals)
    return -jnp.mean(lj)


@public(static_argnames=("conditionals",), data=("u",), inline=True)
def sleep_loss(
    params: dict, u: jax.Array, hs: Sequence[jax.Array], conditionals: Conditional = SBN()
) -> jax.Array:
    r"""Sleep-phase loss: :math:`-\frac{1}{B}\sum_n \log Q(h_n | u_n)` on dreamed pairs.

    Its gradient in the recognition params is minus the sleep delta rule.

    Args:
      params: the machine.
      u: dreamed visible vectors [batch, n_visible].
      hs: the hidden layers that dreamed them.

    Returns:
      Scalar loss in nats per example.
    """
    lq = jax.vmap(log_recognition, in_axes=(None, 0, 0, None))(params, u, tuple(hs), conditionals)
    return -jnp.mean(lq)


def log_weights(
    key: jax.Array, params: dict, u: jax.Array, num_samples: int,
    conditionals: Conditional = SBN(),
) -> tuple[jax.Array, tuple[jax.Array, ...]]:
    """Draw K recognition samples per example and their log importance weights.

    ``log w_k = log P(u, h_k) - log Q(h_k | u)`` with ``h_k ~ Q(. | u)``, the samples
    those of ``wsjax.model.sample_up(key, params, u, num_samples=K)`` (one key split
    per layer for the whole batch).

    Args:
      key: PRNG key.
      params: the machine.
      u: data [batch, n_visible].
      num_samples: K (static).

    Returns:
      (log_w [batch, K], hs) with hs = (h_1 [batch, K, n_1], ...).
    """
    check_visible(params, u, conditionals, batched=True)
    hs, log_p, log_q = sample_particles(key, params, u, num_samples, conditionals)
    return log_p - log_q, hs


_MAX_SAMPLES = int(np.iinfo(np.int32).max)


def _reduce_log_weights(key, params, u, num_samples, chunk_size, conditionals):
    """Stream over chunks of samples; return (logsumexp_k log w, sum_k log w), each [batch]."""
    check_visible(params, u, conditionals, batched=True)
    num_samples = check_positive_int(num_samples, "num_samples")
    batch = u.shape[0]
    if chunk_size is not None:
        chunk_size = check_positive_int(chunk_size, "chunk_size")
    else:
        width = row_floats(conditionals, layer_sizes(params, conditionals))
        chunk_size = max(1, _CHUNK_BUDGET // max(1, batch * width))
    chunk_size = min(int(chunk_size), num_samples)
    num_chunks = -(-num_samples // chunk_size)
    if num_chunks * chunk_size > _MAX_SAMPLES:
        raise ValueError(f"num_samples = {num_samples} is more than the kit's int32 sample "
                         f"counter holds (at most {_MAX_SAMPLES - chunk_size + 1} with chunk_size "
                         f"{chunk_size}); split the estimate into several calls")

    def body(carry, i):
        run_max, run_sum, total = carry
        lw, _ = log_weights(jax.random.fold_in(key, i), params, u, chunk_size, conditionals)
        valid = (i * chunk_size + jnp.arange(chunk_size)) < num_samples
        lw_masked = jnp.where(valid, lw, -jnp.inf)
        new_max = jnp.maximum(run_max, jnp.max(lw_masked, axis=1))
        run_sum = run_sum * jnp.exp(run_max - new_max) + jnp.sum(
            jnp.exp(lw_masked - new_max[:, None]), axis=1
        )
        total = total + jnp.sum(jnp.where(valid, lw, 0.0), axis=1)
        return (new_max, run_sum, total), None

    init = (jnp.full((batch,), -jnp.inf), jnp.zeros((batch,)), jnp.zeros((batch,)))
    (run_max, run_sum, total), _ = jax.lax.scan(body, init, jnp.arange(num_chunks))
    return run_max + jnp.log(run_sum), total


@public(static_argnames=("num_samples", "chunk_size", "conditionals"), data=("u",))
def estimate_log_prob(
    key: jax.Array, params: dict, u: jax.Array, num_samples: int, *,
    chunk_size: int | None = None, conditionals: Conditional = SBN(),
) -> jax.Array:
    r"""Importance-sampled estimate of log p(u), with the recognition model as proposal.

    .. math:: \log \frac{1}{K} \sum_{k=1}^K \frac{P(u, h_k)}{Q(h_k | u)},\quad h_k \sim Q(\cdot|u)

    A stochastic lower bound on log p(u) in expectation (Burda et al. 2016) that
    tightens as K grows. Samples are streamed in chunks with a running
    logsumexp, so memory is bounded by the chunk, not by K.

    Args:
      key: PRNG key.
      params: the machine.
      u: data [batch, n_visible] of 0/1.
      num_samples: K, a static positive int.
      chunk_size: samples per chunk (static); by default chosen so one chunk
        holds about 4M floats. The value drawn depends on it.

    Returns:
      [batch] estimates in nats.

    Compiled once per shape and static setting; concrete ``u`` is checked (0/1, finite).
    """
    lse, _ = _reduce_log_weights(key, params, u, num_samples, chunk_size, conditionals)
    return lse - math.log(int(num_samples))


@public(static_argnames=("num_samples", "chunk_size", "conditionals"), data=("u",))
def elbo(
    key: jax.Array, params: dict, u: jax.Array, num_samples: int = 1, *,
    chunk_size: int | None = None, conditionals: Conditional = SBN(),
) -> jax.Array:
    r"""Monte Carlo estimate of the evidence lower bound (minus the free energy) per example.

    .. math:: \mathrm{ELBO}(u) = -F(u) = \mathbb{E}_{Q(h|u)}[\log P(u,h) - \log Q(h|u)]
       = \log p(u) - KL(Q \| P(\cdot|u))

    Args:
      key: PRNG key.
      params: the machine.
      u: data [batch, n_visible].
      num_samples: recognition samples per example (static).

    Returns:
      [batch] estimates in nats (higher is better; log p(u) minus the KL gap).
    """
    _, total = _reduce_log_weights(key, params, u, num_samples, chunk_size, conditionals)
    return total / int(num_samples)
