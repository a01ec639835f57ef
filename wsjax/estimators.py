r"""Score-function estimators that wake-sleep is compared against: VIMCO and NVIL.

Both train the generative model P and the recognition model Q of a Helmholtz
machine on one variational objective, the recognition half by the score
function (likelihood-ratio) identity, since the hidden units are discrete:

.. math:: \nabla_\phi \mathbb{E}_{Q_\phi}[f(h)] =
   \mathbb{E}_{Q_\phi}[f(h)\, \nabla_\phi \log Q_\phi(h | u)]
   + \mathbb{E}_{Q_\phi}[\nabla_\phi f(h)].

Used raw, the first term is very noisy; each method subtracts a different
baseline from :math:`f` (which leaves the expectation unchanged whenever the
baseline does not depend on the sample it multiplies).

* **VIMCO** (:func:`vimco_grads`) ascends the K-sample importance-weighted bound
  :math:`\mathcal{L}_K = \mathbb{E}[\log \frac{1}{K}\sum_k w_k]` with
  leave-one-out baselines built from the other K - 1 samples.
* **NVIL** (:func:`nvil_grads`) ascends the single-sample ELBO with a learned
  input-dependent baseline, a running centring constant and a running
  variance normalisation of the learning signal.

**NVIL's learning signal.** Section 3 of Mnih & Gregor (2014) reduces the
variance of the score-function term in three ways, all kept here:

1. an input-dependent baseline :math:`b(u)` (here linear in u, held in
   ``params["baseline"]``) is subtracted from the signal;
2. the running mean :math:`c` of :math:`l - b(u)` is subtracted too;
3. the result is divided by :math:`\max(1, \sqrt{v})`, with :math:`v` the
   running variance of :math:`l - b(u)`.

The statistics are updated first with this batch's mean and (population)
variance of :math:`l - b(u)`: :math:`c \leftarrow \alpha c + (1 - \alpha)
\,\mathrm{mean}`, :math:`v \leftarrow \alpha v + (1 - \alpha)\,\mathrm{var}`,
:math:`\alpha` = ``signal_decay``. With
:math:`s = (l - b(u) - c) / \max(1, \sqrt{v})` the estimates are

* generative half: :math:`\nabla_\theta \log P(u, h)`, unbiased for the
  ELBO's gradient;
* recognition half: :math:`s\, \nabla_\phi \log Q(h | u)`. The ELBO's
  recognition gradient is :math:`\mathbb{E}_Q[l\, \nabla_\phi \log Q]` (the
  term :math:`\mathbb{E}_Q[\nabla_\phi l] = -\mathbb{E}_Q[\nabla_\phi \log Q]`
  is zero and is dropped), and baselines that do not depend on h leave it
  unchanged, so with the baseline and the statistics held fixed this is
  unbiased for that gradient divided by :math:`\max(1, \sqrt{v})`: the
  right direction, a smaller step;
* baseline: :math:`s\, \nabla_\psi b(u)`, the regression of :math:`b(u)`
  onto :math:`l - c` (the gradient of :math:`-\frac{1}{2}(l - b(u) - c)^2`
  scaled by the same normalisation, as in the paper's Algorithm 1).

Both return gradients in the kit's convention: ``grads`` is *minus* the
estimated ascent direction, so ``params - learning_rate * grads`` (what
``optax.sgd`` applies) climbs the objective, as for
:func:`wsjax.reweighted.rws_grads`. Both take their K (or one) recognition
samples per example from ``sample_up(key, params, u, num_samples=K)`` with the
key handed in unsplit: neither has a sleep phase.

References:
  Mnih & Rezende (2016), Variational inference for Monte Carlo objectives. ICML.
  Mnih & Gregor (2014), Neural variational inference and learning in belief
  networks. ICML.
  Burda, Grosse & Salakhutdinov (2016), Importance weighted autoencoders. ICLR.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from wsjax._api import check_positive_int
from wsjax.layers import SBN, Conditional
from wsjax.model import check_visible, sample_particles

__all__ = [
    "VIMCOInfo",
    "NVILInfo",
    "leave_one_out_bounds",
    "vimco_grads",
    "check_vimco_samples",
    "init_baseline",
    "check_baseline",
    "baseline_values",
    "nvil_grads",
]


class VIMCOInfo(NamedTuple):
    r"""Diagnostics of one VIMCO step, scalars at the pre-step params.

    Attributes:
      iw_bound: batch mean of :math:`\log \frac{1}{K}\sum_k w_k` at these samples, the
        K-sample bound on log p(u) that VIMCO ascends (nats).
      ess: batch mean of the effective sample size :math:`1 / \sum_k \tilde w_k^2`,
        between 1 and K.
      signal_std: batch mean of the standard deviation over the K samples of the
        leave-one-out learning signals :math:`\hat L - \hat L_{-k}` (nats).
    """

    iw_bound: jax.Array
    ess: jax.Array
    signal_std: jax.Array


class NVILInfo(NamedTuple):
    r"""Diagnostics of one NVIL step, scalars at the pre-step params.

    Attributes:
      elbo: batch mean of the learning signal :math:`l = \log P(u, h) - \log Q(h | u)`,
        a one-sample estimate of the ELBO (nats).
      baseline_loss: batch mean of :math:`(l - b(u) - c)^2`, the squared error of the
        baselines after this step's update of :math:`c` (nats squared).
      signal_mean: :math:`c`, the running mean of :math:`l - b(u)` after this step.
      signal_var: :math:`v`, the running variance of :math:`l - b(u)` after this step.
    """

    elbo: jax.Array
    baseline_loss: jax.Array
    signal_mean: jax.Array
    signal_var: jax.Array


# VIMCO


def leave_one_out_bounds(log_w: jax.Array) -> jax.Array:
    r"""VIMCO's baselines: the K-sample bound with sample k's log-weight replaced.

    For each k, :math:`\log w_k` is replaced by the mean of the other K - 1
    log-weights (so :math:`w_k` by their geometric mean), and the bound is
    taken again:

    .. math:: \hat L_{-k} = \log \frac{1}{K}\Big(\sum_{j \ne k} w_j
       + \exp\Big(\frac{1}{K-1}\sum_{j \ne k} \log w_j\Big)\Big).

    :math:`\hat L_{-k}` does not depend on :math:`h_k`, so it can be subtracted
    from the learning signal of :math:`h_k` without bias. The sums over
    :math:`j \ne k` are taken as log-sums of the samples before k and after k
    (cumulative log-sum-exps in both directions), so no weight is ever
    subtracted from a sum that it dominates, and the cost is linear in K.

    Args:
      log_w: log importance weights [..., K], K >= 2.

    Returns:
      [..., K] baselines :math:`\hat L_{-k}`, in nats.
    """
    num_samples = log_w.shape[-1]
    if num_samples < 2:
        raise ValueError(f"leave-one-out baselines need K >= 2 samples, got K = {num_samples}")
    neg_inf = jnp.full(log_w.shape[:-1] + (1,), -jnp.inf, log_w.dtype)
    before = jnp.concatenate(
        [neg_inf, jax.lax.cumlogsumexp(log_w, axis=log_w.ndim - 1)[..., :-1]], axis=-1)
    after = jnp.concatenate(
        [jax.lax.cumlogsumexp(log_w, axis=log_w.ndim - 1, reverse=True)[..., 1:], neg_inf],
        axis=-1)
    others = jnp.logaddexp(before, after)  # log sum_{j != k} w_j
    geometric = (jnp.sum(log_w, axis=-1, keepdims=True) - log_w) / (num_samples - 1)
    return jnp.logaddexp(others, geometric) - math.log(num_samples)


def check_vimco_samples(num_samples) -> int:
    """``num_samples`` as an int, or a ValueError unless it is an integer >= 2 (VIMCO's K)."""
    num_samples = check_positive_int(num_samples, "num_samples")
    if num_samples < 2:
        raise ValueError(
            f"VIMCO needs num_samples >= 2 (each sample's baseline is built from the others), "
            f"got {num_samples}")
    return num_samples


def vimco_grads(
    key: jax.Array, params: dict, u: jax.Array, num_samples: int,
    conditionals: Conditional = SBN(), *, return_samples: bool = False,
) -> tuple:
    r"""VIMCO's gradients of the K-sample importance-weighted bound (Mnih & Rezende 2016).

    With :math:`h_1, \dots, h_K \sim Q(\cdot | u)` independently,
    :math:`w_k = P(u, h_k) / Q(h_k | u)`, normalised weights
    :math:`\tilde w_k = w_k / \sum_j w_j` and
    :math:`\hat L = \log \frac{1}{K}\sum_k w_k`, the objective is
    :math:`\mathcal{L}_K(u) = \mathbb{E}[\hat L]` (Burda et al. 2016), a lower
    bound on log p(u) that tightens as K grows. Its gradient is estimated by

    * generative half: :math:`\sum_k \tilde w_k \nabla_\theta \log P(u, h_k)`,
      the exact gradient of :math:`\hat L` at the samples (the samples do not
      depend on :math:`\theta`);
    * recognition half: the samples' scores weighted by their leave-one-out
      learning signals, plus the gradient of :math:`\hat L` through the weights,

      .. math:: \sum_k \big(\hat L - \hat L_{-k}\big)\nabla_\phi \log Q(h_k | u)
         + \sum_k \tilde w_k \nabla_\phi \log w_k,
         \qquad \nabla_\phi \log w_k = -\nabla_\phi \log Q(h_k | u),

      with :math:`\hat L_{-k}` of :func:`leave_one_out_bounds`. Both are
      unbiased for :math:`\nabla \mathcal{L}_K`.

    The gradients of the batch mean of :math:`\hat L` are taken as one
    ``jax.grad`` of a surrogate in which the samples, the weights and the
    learning signals are held fixed (``stop_gradient``):
    :math:`\sum_k \tilde w_k \log P(u, h_k) + \sum_k (\hat L - \hat L_{-k} -
    \tilde w_k)\log Q(h_k | u)`.

    Key use: the K samples per example are those of ``sample_up(key, params, u,
    num_samples=K)``, the key used as it comes.

    Args:
      key: PRNG key.
      params: the machine (extra top-level keys are ignored and get no gradient entry).
      u: data [batch, n_visible] of 0/1.
      num_samples: K >= 2, recognition samples per example (static).
      conditionals: the kinds of layer (:class:`wsjax.layers.Conditionals`, or one for all).
      return_samples: also return the samples (static).

    Returns:
      (grads, info), or (grads, info, hs) with ``return_samples``: grads
      ``{"prior", "generative", "recognition"}`` is minus the estimate of the
      gradient of the batch mean of :math:`\mathcal{L}_K`, so a step
      ``params - lr * grads`` ascends it; info a :class:`VIMCOInfo`; hs = (h_1
      [batch, K, n_1], ...).

    Raises:
      ValueError: at trace time, if ``u`` does not fit the machine or K < 2.

    References:
      Mnih & Rezende (2016), Variational inference for Monte Carlo objectives. ICML.
    """
    check_visible(params, u, conditionals, batched=True)
    num_samples = check_vimco_samples(num_samples)
    u = jnp.asarray(u, jnp.float32)
    halves = {k: params[k] for k in ("prior", "generative", "recognition")}

    def surrogate(halves):
        hs, log_p, log_q = sample_particles(key, {**params, **halves}, u, num_samples,
                                            conditionals)
        log_w = jax.lax.stop_gradient(log_p - log_q)
        bound = jax.nn.logsumexp(log_w, axis=1) - math.log(num_samples)
        w = jax.nn.softmax(log_w, axis=1)
        signals = bound[:, None] - leave_one_out_bounds(log_w)
        ascent = jnp.sum(w * log_p, axis=1) + jnp.sum((signals - w) * log_q, axis=1)
        return -jnp.mean(ascent), (hs, log_w, bound, w, signals)

    grads, (hs, log_w, bound, w, signals) = jax.grad(surrogate, has_aux=True)(halves)
    info = VIMCOInfo(iw_bound=jnp.mean(bound), ess=jnp.mean(1.0 / jnp.sum(w * w, axis=1)),
                     signal_std=jnp.mean(jnp.std(signals, axis=1)))
    return (grads, info, hs) if return_samples else (grads, info)


# NVIL


def init_baseline(n_visible: int) -> dict:
    r"""NVIL's baseline and running statistics at their start, to sit in ``params["baseline"]``.

    The input-dependent baseline is linear in the data, :math:`b(u) = w^\top u +
    b_0`, started at zero; the running mean and variance of the centred
    learning signal start at 0 and 1 (a variance of 1 is no normalisation).

    Returns:
      ``{"w": [n_visible], "b": [], "mean": [], "var": []}``, float32 zeros but ``var`` = 1.
    """
    return {"w": jnp.zeros((int(n_visible),), jnp.float32), "b": jnp.zeros((), jnp.float32),
            "mean": jnp.zeros((), jnp.float32), "var": jnp.ones((), jnp.float32)}


def check_baseline(params: dict, n_visible: int) -> None:
    """Raise a ValueError naming what is missing or malformed in ``params["baseline"]``."""
    baseline = params.get("baseline") if isinstance(params, dict) else None
    if not isinstance(baseline, dict) or set(baseline) != {"w", "b", "mean", "var"}:
        found = sorted(baseline) if isinstance(baseline, dict) else type(baseline).__name__
        raise ValueError(
            'NVIL needs params["baseline"] = {"w", "b", "mean", "var"} (made by nvil.init, or '
            f"wsjax.estimators.init_baseline), got {found}")
    want = {"w": (n_visible,), "b": (), "mean": (), "var": ()}
    for name, shape in want.items():
        if np.shape(baseline[name]) != shape:
            raise ValueError(f'params["baseline"]["{name}"] must have shape {shape} for a '
                             f"machine of {n_visible} visible units, got "
                             f"{np.shape(baseline[name])}")


def baseline_values(baseline: dict, u: jax.Array) -> jax.Array:
    r"""The input-dependent baseline :math:`b(u) = w^\top u + b_0` of each example: [batch]."""
    return jnp.asarray(u, jnp.float32) @ baseline["w"] + baseline["b"]


def nvil_grads(
    key: jax.Array, params: dict, u: jax.Array, signal_decay=0.8,
    conditionals: Conditional = SBN(), *, return_samples: bool = False,
) -> tuple:
    r"""NVIL's gradients of the ELBO, and its new running statistics (Mnih & Gregor 2014).

    One sample :math:`h \sim Q(\cdot | u)` per example and its learning signal
    :math:`l = \log P(u, h) - \log Q(h | u)`, whose expectation is the ELBO.
    Section 3 of the paper's three reductions of the variance (an input-dependent
    baseline, centring and normalisation) are all kept; the module docstring gives
    the updates and what each half estimates.

    Args:
      key: PRNG key; the samples are those of ``sample_up(key, params, u,
        num_samples=1)``.
      params: the machine, with ``params["baseline"]`` as made by
        :func:`init_baseline`.
      u: data [batch, n_visible] of 0/1. The statistics are over the batch
        (with one example the batch variance is 0).
      signal_decay: :math:`\alpha` in [0, 1] (may be traced); 1 holds the
        statistics fixed.
      conditionals: the kinds of layer (:class:`wsjax.layers.Conditionals`, or one for all).
      return_samples: also return the samples (static).

    Returns:
      (grads, statistics, info), or (grads, statistics, info, hs) with
      ``return_samples``. grads has the structure of ``params`` with
      ``"baseline"`` (the statistics' entries 0): minus the estimates above, so
      ``params - lr * grads`` ascends. statistics = ``{"mean": c, "var": v}``
      after this batch's update. info an :class:`NVILInfo`; hs = (h_1
      [batch, 1, n_1], ...).

    Raises:
      ValueError: at trace time, if ``u`` does not fit the machine or the
        baseline is missing or malformed.

    References:
      Mnih & Gregor (2014), Neural variational inference and learning in belief
      networks. ICML.
    """
    check_visible(params, u, conditionals, batched=True)
    check_baseline(params, np.shape(u)[-1])
    u = jnp.asarray(u, jnp.float32)
    trainable = {k: params[k] for k in ("prior", "generative", "recognition", "baseline")}
    decay = jnp.asarray(signal_decay, jnp.float32)
    stats = jax.lax.stop_gradient(params["baseline"])

    def surrogate(trainable):
        hs, log_p, log_q = sample_particles(key, {**params, **trainable}, u, 1, conditionals)
        log_p, log_q = log_p[:, 0], log_q[:, 0]
        signal = jax.lax.stop_gradient(log_p - log_q)
        b_u = baseline_values(trainable["baseline"], u)
        centred = signal - jax.lax.stop_gradient(b_u)
        mean = decay * stats["mean"] + (1 - decay) * jnp.mean(centred)
        var = decay * stats["var"] + (1 - decay) * jnp.var(centred)
        scaled = (centred - mean) / jnp.maximum(1.0, jnp.sqrt(var))
        ascent = log_p + scaled * log_q + scaled * b_u
        aux = (hs, signal, jnp.mean((centred - mean) ** 2), mean, var)
        return -jnp.mean(ascent), aux

    grads, (hs, signal, baseline_loss, mean, var) = jax.grad(surrogate, has_aux=True)(trainable)
    statistics = {"mean": mean, "var": var}
    info = NVILInfo(elbo=jnp.mean(signal), baseline_loss=baseline_loss, signal_mean=mean,
                    signal_var=var)
    return (grads, statistics, info, hs) if return_samples else (grads, statistics, info)
