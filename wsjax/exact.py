"""Exact log-likelihoods and posteriors by enumerating every hidden configuration.

These are the oracles that tests and small experiments check everything else
against. The cost is 2**H log-joint evaluations per call, H the total number of
hidden units; the enumeration is streamed in chunks so memory stays bounded.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import gammaln

from wsjax._api import check_positive_int, public
from wsjax.layers import SBN, Conditional, conditional
from wsjax.model import check_visible, layer_sizes, log_prior, log_recognition

__all__ = ["MAX_EXACT_HIDDEN", "MAX_MULTISETS", "all_binary_configs", "exact_kl_bits",
           "exact_log_prob", "exact_log_joint_table", "exact_log_recognition_table",
           "exact_elbo", "exact_iw_bound", "num_multisets"]

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


def _num_hidden(params, conditionals):
    sizes = layer_sizes(params, conditionals)
    num_hidden = sum(sizes[1:])
    if num_hidden > MAX_EXACT_HIDDEN:
        raise ValueError(
            f"exact enumeration needs 2**{num_hidden} hidden configurations (layer_sizes "
            f"{sizes}); the limit is {MAX_EXACT_HIDDEN} hidden units in total. Use "
            "estimate_log_prob for larger machines."
        )
    return sizes, num_hidden


def _chunk_log_joints(params, u, idx, sizes, conditionals):
    """log P(u_b, h_c) for a chunk of hidden configurations: [batch, chunk]."""
    hs = _hidden_split(_index_bits(idx, sum(sizes[1:])), sizes)
    gen = params["generative"]
    # Everything in the joint that does not involve u, on [chunk, n] rows.
    log_h = log_prior(params, hs[-1], conditionals)
    for l in range(1, len(hs)):  # log P(h_l | h_{l+1}), generative conditional l
        log_h = log_h + conditional(conditionals, "generative", l).log_prob(gen[l], hs[l],
                                                                            hs[l - 1])
    visible = conditional(conditionals, "generative", 0)
    if visible.factorial:
        # log P(u | h_1) = u . l - sum softplus(l), as a matmul over batch x chunk.
        vis_logits = visible.logits(gen[0], hs[0])
        log_u = u @ vis_logits.T - jnp.sum(jax.nn.softplus(vis_logits), axis=-1)[None, :]
    else:
        log_u = jax.vmap(lambda x: visible.log_prob(
            gen[0], hs[0], jnp.broadcast_to(x, (hs[0].shape[0], x.shape[-1]))))(u)
    return log_h[None, :] + log_u


def _chunking(sizes, batch, num_hidden, conditionals):
    """(configurations per chunk, number of chunks) within the memory budget."""
    total = 2**num_hidden
    per_config = sizes[0] + batch + sum(sizes)
    visible = conditional(conditionals, "generative", 0)
    if not visible.factorial:  # every (example, configuration) pair is evaluated
        per_config += batch * visible.row_floats(sizes[0])
    chunk = 1
    while chunk * 2 <= total and chunk * 2 * per_config <= _CHUNK_BUDGET:
        chunk *= 2
    return chunk, total // chunk


@public(static_argnames=("conditionals",), data=("u",))
def exact_log_prob(params: dict, u: jax.Array, conditionals: Conditional = SBN()) -> jax.Array:
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
    check_visible(params, u, conditionals, batched=True)
    sizes, num_hidden = _num_hidden(params, conditionals)
    u = jnp.asarray(u, params["prior"]["b"].dtype)
    chunk, num_chunks = _chunking(sizes, u.shape[0], num_hidden, conditionals)

    def body(carry, c):
        run_max, run_sum = carry
        idx = c * chunk + jnp.arange(chunk, dtype=jnp.int32)
        lj = _chunk_log_joints(params, u, idx, sizes, conditionals)
        new_max = jnp.maximum(run_max, jnp.max(lj, axis=1))
        run_sum = run_sum * jnp.exp(run_max - new_max) + jnp.sum(
            jnp.exp(lj - new_max[:, None]), axis=1
        )
        return (new_max, run_sum), None

    batch = u.shape[0]
    init = (jnp.full((batch,), -jnp.inf, u.dtype), jnp.zeros((batch,), u.dtype))
    (run_max, run_sum), _ = jax.lax.scan(body, init, jnp.arange(num_chunks, dtype=jnp.int32))
    return run_max + jnp.log(run_sum)


@public(static_argnames=("conditionals",), data=("u",))
def exact_log_joint_table(
    params: dict, u: jax.Array, conditionals: Conditional = SBN()
) -> jax.Array:
    """log P(u_b, h) for every hidden configuration h, unchunked: [batch, 2**H].

    Column j is the configuration whose bits are those of j (the first hidden
    unit of h_1 is bit 0); ``all_binary_configs(H)`` lists them in that order.
    Meant for tiny machines (posteriors, expectations in tests and notebooks);
    the exact log posterior is this table minus its logsumexp over columns.
    """
    check_visible(params, u, conditionals, batched=True)
    sizes, num_hidden = _num_hidden(params, conditionals)
    u = jnp.asarray(u, params["prior"]["b"].dtype)
    return _chunk_log_joints(params, u, jnp.arange(2**num_hidden, dtype=jnp.int32), sizes,
                             conditionals)


@public(static_argnames=("conditionals",), data=("images",))
def exact_kl_bits(
    params: dict, images: jax.Array, probs: jax.Array, conditionals: Conditional = SBN()
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
    log_model = exact_log_prob.uncompiled(params, jnp.asarray(images), conditionals)
    cross = jnp.sum(jnp.where(probs > 0, probs * log_model, 0.0))
    return (jnp.sum(jax.scipy.special.xlogy(probs, probs)) - cross) / jnp.log(2.0)


@public(static_argnames=("conditionals",), data=("u",))
def exact_log_recognition_table(
    params: dict, u: jax.Array, conditionals: Conditional = SBN()
) -> jax.Array:
    """log Q(h | u_b) for every hidden configuration h: [batch, 2**H].

    The columns are ordered as those of :func:`exact_log_joint_table`; each row's
    exponentials sum to one.
    """
    check_visible(params, u, conditionals, batched=True)
    sizes, num_hidden = _num_hidden(params, conditionals)
    u = jnp.asarray(u, params["prior"]["b"].dtype)
    hs = _hidden_split(all_binary_configs(num_hidden).astype(u.dtype), sizes)
    per_example = lambda x: jax.vmap(lambda *h: log_recognition(params, x, h, conditionals))(*hs)
    return jax.vmap(per_example)(u)


@public(static_argnames=("conditionals",), data=("u",))
def exact_elbo(params: dict, u: jax.Array, conditionals: Conditional = SBN()) -> jax.Array:
    r"""The evidence lower bound by enumeration: [batch] in nats.

    .. math:: \mathrm{ELBO}(u) = \sum_h Q(h | u)\,[\log P(u, h) - \log Q(h | u)]

    Differentiable in both halves of the machine (the oracle of the
    one-sample estimators' gradients).
    """
    log_p = exact_log_joint_table.uncompiled(params, u, conditionals)
    log_q = exact_log_recognition_table.uncompiled(params, u, conditionals)
    return jnp.sum(jnp.exp(log_q) * (log_p - log_q), axis=1)


MAX_MULTISETS = 2**21
"""Most multisets of K hidden configurations that :func:`exact_iw_bound` enumerates."""


def num_multisets(num_configs: int, num_samples: int) -> int:
    """How many multisets of ``num_samples`` items from ``num_configs`` kinds there are."""
    return math.comb(num_configs + num_samples - 1, num_samples)


def _compositions(total: int, parts: int) -> np.ndarray:
    """Every vector of ``parts`` non-negative ints summing to ``total``: [C, parts] int32."""
    if parts == 1:
        return np.array([[total]], np.int32)
    blocks = []
    for first in range(total, -1, -1):
        rest = _compositions(total - first, parts - 1)
        blocks.append(np.concatenate([np.full((rest.shape[0], 1), first, np.int32), rest], 1))
    return np.concatenate(blocks, 0)


@public(static_argnames=("num_samples", "conditionals"), data=("u",))
def exact_iw_bound(
    params: dict, u: jax.Array, num_samples: int, conditionals: Conditional = SBN()
) -> jax.Array:
    r"""The K-sample importance-weighted bound, exactly: [batch] in nats.

    .. math:: \mathcal{L}_K(u) = \mathbb{E}_{h_1, \dots, h_K \sim Q(\cdot|u)}
       \Big[\log \frac{1}{K}\sum_k \frac{P(u, h_k)}{Q(h_k | u)}\Big]

    The quantity inside depends on the K draws only through how many times
    each of the M = 2**H configurations was drawn, so the expectation is a sum
    over the multisets (counts :math:`n_1 + \dots + n_M = K`) with their
    multinomial probabilities :math:`\frac{K!}{\prod_m n_m!}\prod_m
    Q(m|u)^{n_m}`: :math:`\binom{M + K - 1}{K}` terms rather than
    :math:`M^K`. ``num_samples = 1`` is the ELBO; the bound rises to log p(u) as
    K grows (Burda et al. 2016). Differentiable in both halves of the machine
    (the oracle of VIMCO's gradients).

    Args:
      params: the machine (few hidden units).
      u: data [batch, n_visible] of 0/1.
      num_samples: K (static positive int).

    Returns:
      [batch] bounds in nats.

    Raises:
      ValueError: at trace time, when the multisets number more than
        :data:`MAX_MULTISETS` (:func:`num_multisets` tells in advance).
    """
    num_samples = check_positive_int(num_samples, "num_samples")
    log_p = exact_log_joint_table.uncompiled(params, u, conditionals)
    log_q = exact_log_recognition_table.uncompiled(params, u, conditionals)
    num_configs = log_p.shape[1]
    count = num_multisets(num_configs, num_samples)
    if count > MAX_MULTISETS:
        raise ValueError(
            f"the exact {num_samples}-sample bound of a machine with {num_configs} hidden "
            f"configurations sums over {count} multisets; the limit is {MAX_MULTISETS}")
    counts = _compositions(num_samples, num_configs)  # [C, M]
    chunk = min(counts.shape[0], max(1, 2**22 // (num_configs * log_p.shape[0])))
    num_chunks = -(-counts.shape[0] // chunk)
    valid = np.arange(num_chunks * chunk) < counts.shape[0]
    # Padding rows repeat the first multiset and count with weight 0.
    counts = np.concatenate([counts, np.repeat(counts[:1], num_chunks * chunk - len(counts), 0)])
    counts_f = jnp.asarray(counts.reshape(num_chunks, chunk, num_configs), log_p.dtype)
    valid = jnp.asarray(valid.reshape(num_chunks, chunk), log_p.dtype)
    log_w = log_p - log_q
    log_k_factorial = gammaln(num_samples + 1.0)

    def body(total, part):
        n, mask = part  # [chunk, M], [chunk]
        log_coef = log_k_factorial - jnp.sum(gammaln(n + 1.0), axis=1)  # [chunk]
        log_prob = log_coef[None, :] + log_q @ n.T  # [B, chunk]
        log_n = jnp.where(n > 0, jnp.log(jnp.maximum(n, 1.0)), -jnp.inf)
        bound = jax.nn.logsumexp(log_n[None, :, :] + log_w[:, None, :], axis=-1)  # [B, chunk]
        return total + jnp.sum(mask[None, :] * jnp.exp(log_prob) * bound, axis=1), None

    total, _ = jax.lax.scan(body, jnp.zeros(log_p.shape[:1], log_p.dtype), (counts_f, valid))
    return total - math.log(num_samples)
