"""Exact log-likelihoods and posteriors by enumerating every hidden configuration.

These are the oracles that tests and small experiments check everything else
against. The cost is 2**H log-joint evaluations per call, H the total number of
hidden units; the enumeration is streamed in chunks so memory stays bounded.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from wsjax._api import public
from wsjax.layers import LogitsFn, bernoulli_log_prob, conditional, dense_logits
from wsjax.model import check_visible, layer_sizes, log_prior

__all__ = ["MAX_EXACT_HIDDEN", "all_binary_configs", "exact_kl_bits", "exact_log_prob",
           "exact_log_joint_table"]

MAX_EXACT_HIDDEN = 24
"""Most hidden units (summed over layers) that exact enumeration accepts: 2**24 configurations."""

# Chunk size bound: configs x (n_visible + batch) float32 values held at once.
_CHUNK_BUDGET = 2**22


def all_binary_configs(n: int) -> jax.Array:
    """Every 0/1 vector of length n as rows of a [2**n, n] float32 array (bit i = unit i)."""
    return _index_bits(jnp.arange(2**n, dtype=jnp.int32), n)


def _index_bits(idx: jax.Array, n: int) -> jax.Array:
    return ((idx[:, None] >> jnp.arange(n, dtype=jnp.int32)) & 1).astype(jnp.float32)


def _hidden_split(bits: jax.Array, sizes) -> tuple[jax.Array, ...]:
    out, start = [], 0
    for n in sizes[1:]:
        out.append(bits[..., start:start + n])
        start += n
    return tuple(out)


def _num_hidden(params, logits_fn):
    sizes = layer_sizes(params, logits_fn)
    num_hidden = sum(sizes[1:])
    if num_hidden > MAX_EXACT_HIDDEN:
        raise ValueError(
            f"exact enumeration needs 2**{num_hidden} hidden configurations (layer_sizes "
            f"{sizes}); the limit is {MAX_EXACT_HIDDEN} hidden units in total. Use "
            "estimate_log_prob for larger machines."
        )
    return sizes, num_hidden


def _chunk_log_joints(params, u, idx, sizes, logits_fn):
    """log P(u_b, h_c) for a chunk of hidden configurations: [batch, chunk]."""
    hs = _hidden_split(_index_bits(idx, sum(sizes[1:])), sizes)

    def hidden_part(*h):  # everything in the joint that does not involve u
        total = log_prior(params, h[-1])
        for l in range(1, len(h)):  # log P(h_l | h_{l+1}), generative conditional l
            logits = conditional(logits_fn, "generative", l)(params["generative"][l], h[l])
            total = total + bernoulli_log_prob(logits, h[l - 1])
        return total

    log_h = jax.vmap(hidden_part)(*hs)  # [chunk]
    vis_logits = jax.vmap(conditional(logits_fn, "generative", 0), in_axes=(None, 0))(
        params["generative"][0], hs[0])
    # log P(u | h_1) = u . l - sum softplus(l), as a matmul over batch x chunk.
    log_u = u @ vis_logits.T - jnp.sum(jax.nn.softplus(vis_logits), axis=-1)[None, :]
    return log_h[None, :] + log_u


def _chunking(sizes, batch, num_hidden):
    total = 2**num_hidden
    chunk = 1
    while chunk * 2 <= total and chunk * 2 * (sizes[0] + batch + sum(sizes)) <= _CHUNK_BUDGET:
        chunk *= 2
    return chunk, total // chunk


@public(static_argnames=("logits_fn",), data=("u",))
def exact_log_prob(params: dict, u: jax.Array, logits_fn: LogitsFn = dense_logits) -> jax.Array:
    r"""log p(u) in nats by summing P(u, h) over every hidden configuration.

    .. math:: \log p(u) = \log \sum_{h_1..h_L} P(h_L) \prod_l P(h_{l-1} | h_l)

    Args:
      params: the machine; at most ``MAX_EXACT_HIDDEN`` hidden units in all (static).
      u: data [batch, n_visible] of 0/1.

    Returns:
      [batch] log-probabilities.

    Raises:
      ValueError: at trace time, if the hidden units are too many to enumerate or
        ``u`` does not fit the machine.
    """
    check_visible(params, u, logits_fn, batched=True)
    sizes, num_hidden = _num_hidden(params, logits_fn)
    u = jnp.asarray(u, params["prior"]["b"].dtype)
    chunk, num_chunks = _chunking(sizes, u.shape[0], num_hidden)

    def body(carry, c):
        run_max, run_sum = carry
        idx = c * chunk + jnp.arange(chunk, dtype=jnp.int32)
        lj = _chunk_log_joints(params, u, idx, sizes, logits_fn)
        new_max = jnp.maximum(run_max, jnp.max(lj, axis=1))
        run_sum = run_sum * jnp.exp(run_max - new_max) + jnp.sum(
            jnp.exp(lj - new_max[:, None]), axis=1
        )
        return (new_max, run_sum), None

    batch = u.shape[0]
    init = (jnp.full((batch,), -jnp.inf, u.dtype), jnp.zeros((batch,), u.dtype))
    (run_max, run_sum), _ = jax.lax.scan(body, init, jnp.arange(num_chunks, dtype=jnp.int32))
    return run_max + jnp.log(run_sum)


@public(static_argnames=("logits_fn",), data=("u",))
def exact_log_joint_table(
    params: dict, u: jax.Array, logits_fn: LogitsFn = dense_logits
) -> jax.Array:
    """log P(u_b, h) for every hidden configuration h, unchunked: [batch, 2**H].

    Column j is the configuration whose bits are those of j (the first hidden
    unit of h_1 is bit 0); ``all_binary_configs(H)`` lists them in that order.
    Meant for tiny machines (posteriors, expectations in tests and notebooks);
    the exact log posterior is this table minus its logsumexp over columns.
    """
    check_visible(params, u, logits_fn, batched=True)
    sizes, num_hidden = _num_hidden(params, logits_fn)
    u = jnp.asarray(u, params["prior"]["b"].dtype)
    return _chunk_log_joints(params, u, jnp.arange(2**num_hidden, dtype=jnp.int32), sizes,
                             logits_fn)


@public(static_argnames=("logits_fn",), data=("images",))
def exact_kl_bits(
    params: dict, images: jax.Array, probs: jax.Array, logits_fn: LogitsFn = dense_logits
) -> jax.Array:
    r"""KL(data || model) in bits, for a data distribution given exactly.

    .. math:: \mathrm{KL} = \sum_x p(x) \,[\log_2 p(x) - \log_2 p_\theta(x)]

    Args:
      params: the machine (small enough for :func:`exact_log_prob`).
      images: the distinct data vectors [num_distinct, n_visible].
      probs: their probabilities [num_distinct], summing to 1.

    Returns:
      Scalar KL in bits (0 when the model matches the data distribution).
      Images of probability 0 contribute nothing (``xlogy``).
    """
    probs = jnp.asarray(probs, params["prior"]["b"].dtype)
    log_model = exact_log_prob.uncompiled(params, jnp.asarray(images), logits_fn)
    cross = jnp.sum(jnp.where(probs > 0, probs * log_model, 0.0))
    return (jnp.sum(jax.scipy.special.xlogy(probs, probs)) - cross) / jnp.log(2.0)
