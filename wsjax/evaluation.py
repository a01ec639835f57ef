r"""Evaluations of trained machines: held-out likelihood, baselines, what the top layer encodes,
and how good each estimator's gradient is.

These run on the host around compiled pieces, and take the leading run axes
of a sweep's params as they come (``params`` leaves of shape [..., *leaf]).

The targets of :func:`gradient_quality`:

* ``"rws"`` (wake phases, insomnia 1: :func:`wsjax.reweighted.rws_grads`): the
  K -> infinity targets, :math:`\nabla_\theta \log p(u)` for the generative
  half and :math:`-\nabla_\phi \mathrm{KL}(P(h|u) \,\|\, Q(h|u))` for the
  recognition half; RWS is biased for both at finite K, less so as K grows.
* ``"vimco"`` (:func:`wsjax.estimators.vimco_grads`, K >= 2; K = 1 is
  skipped): the gradient of the K-sample bound :math:`\mathcal{L}_K`
  (:func:`wsjax.exact.exact_iw_bound`), for which it is unbiased; where the
  multisets of K configurations number more than
  :data:`wsjax.exact.MAX_MULTISETS` the target is not computed (bias and
  cosine NaN; variance and SNR need no target).
* ``"nvil"`` (:func:`wsjax.estimators.nvil_grads`, one sample: measured once,
  at K = 1, whatever ``num_samples_list``): the gradient of the ELBO. The
  baseline and statistics are those in ``params["baseline"]`` (a trained NVIL
  state's params) or else where their own updates settle on this batch: the
  linear baseline fitted by least squares to the exact ELBO of each example,
  the running mean and variance at the mean and expected batch variance of
  :math:`l - b(u)`. Each draw then takes one update of the statistics with
  ``signal_decay``, as a step would. The recognition half is unbiased up to
  the normalisation's factor, so its cosine, not its bias, says whether it
  points the right way.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from wsjax._api import check_positive_int
from wsjax.data import validate_binary
from wsjax.estimators import baseline_values, nvil_grads, vimco_grads
from wsjax.exact import (
    MAX_MULTISETS,
    exact_elbo,
    exact_iw_bound,
    exact_log_joint_table,
    exact_log_prob,
    exact_log_recognition_table,
    num_multisets,
)
from wsjax.layers import SBN, Conditional, dense_logits
from wsjax.model import (
    generative_params,
    layer_sizes,
    recognition_params,
    sample_down,
    sample_recognition,
)
from wsjax.objectives import estimate_log_prob
from wsjax.reweighted import rws_grads

__all__ = ["heldout_log_prob", "factorial_baseline_nll", "direction_accuracy", "parts_drawn",
           "GradientQuality", "ESTIMATORS", "gradient_quality"]


def _run_axes(params) -> tuple[int, ...]:
    """Leading axes of a (possibly stacked) machine: those before the prior's last axis."""
    return tuple(np.shape(params["prior"]["b"])[:-1])


def heldout_log_prob(
    key: jax.Array, params, data, num_samples: int, *, batch_size: int = 100,
    on_batch: Callable[[int, int, float], None] | None = None,
    conditionals: Conditional = SBN(),
) -> np.ndarray:
    r"""Mean importance-sampled log p(u) over a data set, in batches, for one run or a stack of
    runs.

    Batch i of ``data`` is estimated with ``fold_in(key, i)``, so no two batches
    share random numbers; the estimate of every run uses the same keys.

    Args:
      key: PRNG key.
      params: one machine, or machines stacked on leading run axes [...].
      data: 0/1 array [n, n_visible] (checked).
      num_samples: K importance samples per example (static positive int).
      batch_size: examples per compiled call (the last batch may be smaller).
      on_batch: optional callback (examples done, total, seconds) after each batch.
      conditionals: the kinds of layer (static).

    Returns:
      numpy array of the run axes' shape (a 0-d array for one machine): mean log p(u) in nats.
    """
    data = validate_binary(data, "data")
    num_samples = check_positive_int(num_samples, "num_samples")
    batch_size = check_positive_int(batch_size, "batch_size")
    axes = _run_axes(params)
    fn = lambda p, k, u: estimate_log_prob.uncompiled(k, p, u, num_samples,
                                                      conditionals=conditionals)
    for _ in axes:
        fn = jax.vmap(fn, in_axes=(0, None, None))
    estimate = jax.jit(fn)
    total, start = np.zeros(axes), time.time()
    for i, lo in enumerate(range(0, data.shape[0], batch_size)):
        part = jnp.asarray(data[lo:lo + batch_size])
        total = total + np.asarray(estimate(params, jax.random.fold_in(key, i), part)).sum(-1)
        if on_batch is not None:
            on_batch(min(lo + batch_size, data.shape[0]), data.shape[0], time.time() - start)
    return total / data.shape[0]


def factorial_baseline_nll(train, test) -> float:
    """Test NLL in nats of independent Bernoulli pixels fitted to ``train`` (add-one smoothing).

    The floor every latent-variable model should beat: it models each pixel's
    marginal and nothing else.
    """
    train, test = validate_binary(train, "train"), validate_binary(test, "test", train.shape[1])
    p = (train.sum(0) + 1.0) / (train.shape[0] + 2.0)
    return float(-np.mean(test @ np.log(p) + (1 - test) @ np.log1p(-p)))


def direction_accuracy(key: jax.Array, params, images, probs, right, num_samples: int = 200):
    r"""How well each top unit of the recognition model detects a binary label (the shift
    direction).

    For every image the recognition model's probability that top unit j is on,
    averaged over ``num_samples`` samples of the layers below it, predicts label
    1 when above 1/2; the accuracy, weighted by the images' probabilities, is
    taken as ``max(acc, 1 - acc)`` because the sign of a learned code is arbitrary.
    0.5 is chance, 1.0 a perfect detector.

    Args:
      key: PRNG key.
      params: one machine (vmap it for a stack).
      images: 0/1 images [n, n_visible]; probs: their probabilities [n];
        right: their labels [n] in {0, 1} (for the shifter: shifted right).
      num_samples: recognition samples per image (static).

    Returns:
      [n_top] accuracies.
    """

    def one(k, u):
        hs = sample_recognition(k, params, u)
        below = hs[-2] if len(hs) > 1 else u
        return jax.nn.sigmoid(dense_logits(params["recognition"][-1], below))

    # Sample s of image i uses split(split(key, n)[i], num_samples)[s]. The [n, num_samples]
    # keys are mapped over as one flat axis: the same draws as a vmap nested in a vmap, which
    # compiles to about twice the code.
    n, images = images.shape[0], jnp.asarray(images)
    keys = jax.vmap(lambda k: jax.random.split(k, num_samples))(jax.random.split(key, n))
    q = jax.vmap(one)(jnp.reshape(keys, (-1,)), jnp.repeat(images, num_samples, axis=0))
    q = jnp.mean(jnp.reshape(q, (n, num_samples, -1)), axis=1)  # [n, n_top]
    weights = probs / jnp.sum(probs)
    acc = jnp.sum(weights[:, None] * ((q > 0.5) == (jnp.asarray(right)[:, None] > 0.5)), axis=0)
    return jnp.maximum(acc, 1.0 - acc)


def parts_drawn(key: jax.Array, params, masks, num_samples: int = 256, on: float = 0.5,
                off: float = 0.2) -> jax.Array:
    r"""How many of the given parts (the bars) some first-layer hidden unit draws on its own.

    The reference state of the first hidden layer is each unit's more probable
    value under the machine's prior, from ``num_samples`` dreams. Hidden unit j
    draws part k when flipping j alone in that state moves every pixel of part k
    by more than ``on`` in probability, all the same way, and every other pixel
    by less than ``off``. So a unit may draw its bar by turning it on or, if it is
    usually on, by turning it off; and weights that push an already-off pixel
    further off do not count against it. A machine of clean bar detectors draws
    every bar; mixed codes, dead units and units that draw two bars at once
    leave parts undrawn.

    Args:
      key: PRNG key for the dreams.
      params: one machine with the default affine conditionals.
      masks: [num_parts, n_visible] bool, e.g. :func:`wsjax.data.bars_masks`.
      num_samples: dreams that fix the reference state (static).

    Returns:
      int32 scalar: the number of parts drawn, 0..num_parts.
    """
    _, hs = sample_down(key, params, num_samples)
    ref = (jnp.mean(hs[0], axis=0) > 0.5).astype(jnp.float32)  # [n_1]
    gen = params["generative"][0]
    flipped = jnp.where(jnp.eye(ref.shape[0], dtype=bool), 1.0 - ref, ref)  # row j: j flipped
    probs = lambda h: jax.nn.sigmoid(gen["b"] + h @ gen["w"].T)  # [..., n_visible]
    change = (probs(flipped) - probs(ref))[None]  # [1, n_1, n_visible]
    masks = jnp.asarray(masks)[:, None, :]  # [K, 1, n_visible]
    up = jnp.all(jnp.where(masks, change > on, True), axis=-1)  # [K, n_1]
    down = jnp.all(jnp.where(masks, change < -on, True), axis=-1)
    rest = jnp.all(jnp.where(masks, True, jnp.abs(change) < off), axis=-1)
    return jnp.sum(jnp.any((up | down) & rest, axis=-1)).astype(jnp.int32)


# The gradient-quality oracle.

ESTIMATORS = ("rws", "vimco", "nvil")
"""The estimators :func:`gradient_quality` measures."""

_HALVES = (("generative", generative_params), ("recognition", recognition_params))


class GradientQuality(NamedTuple):
    r"""How good one estimator's gradient is in one half of the machine, at one K.

    All figures are over the half's scalar parameters, for the gradient of the
    batch mean of the objective (the ascent direction: minus the kit's grads).

    Attributes:
      estimator: ``"rws"``, ``"vimco"`` or ``"nvil"``.
      num_samples: K, recognition samples per example (1 for NVIL).
      half: ``"generative"`` or ``"recognition"``.
      bias: :math:`\|\bar g - g^*\|_2`, the distance of the mean of the draws from
        the exact gradient :math:`g^*` of the estimator's target (NaN where the target
        is too costly to enumerate).
      bias_noise: :math:`\sqrt{\sum_i \hat\sigma_i^2 / N}`, the distance the mean of
        N draws of an unbiased estimator lies from its target, typically: a bias
        below it is not resolved.
      variance: :math:`\sum_i \hat\sigma_i^2`, the expected squared distance of one
        draw from the draws' mean.
      snr: mean over parameters of :math:`|\bar g_i| / \hat\sigma_i`, the
        signal-to-noise ratio of Rainforth et al. (2018), over the parameters whose
        estimates vary at all (a weight from a visible unit that is 0 throughout the
        batch gets 0 in every draw and is left out). Even a zero-mean estimate shows
        about :math:`0.8 / \sqrt{N}` here.
      cosine: cosine of the angle between :math:`\bar g` and :math:`g^*` (NaN without
        a target).
      target_norm: :math:`\|g^*\|_2`, the scale of the gradient being estimated.
    """

    estimator: str
    num_samples: int
    half: str
    bias: float
    bias_noise: float
    variance: float
    snr: float
    cosine: float
    target_norm: float


def _flat(tree):
    return jnp.concatenate([jnp.ravel(x) for x in jax.tree.leaves(tree)])


def _machine(params):
    return {k: params[k] for k in ("prior", "generative", "recognition")}


def _rws_targets(params, u, conditionals):
    """The K -> infinity limits of RWS's wake phases: grad log p(u) and -grad KL(P(h|u) || Q)."""
    gen = jax.grad(lambda p: jnp.mean(exact_log_prob.uncompiled(p, u, conditionals)))(params)
    posterior = jax.nn.softmax(exact_log_joint_table.uncompiled(params, u, conditionals), axis=1)
    rec = jax.grad(lambda p: jnp.mean(jnp.sum(
        posterior * exact_log_recognition_table.uncompiled(p, u, conditionals), axis=1)))(params)
    return {**generative_params(gen), **recognition_params(rec)}


def _settled_baseline(params, u, conditionals):
    """NVIL's linear baseline and statistics where their updates settle on this batch.

    The least-squares fit of b(u) to the exact ELBO of each example (what regressing b(u)
    onto l - c converges to, c = 0), and the running mean and variance at the values
    their averages settle to: the mean and the expected batch variance of l - b(u).
    """
    u = jnp.asarray(u, jnp.float32)
    log_p = exact_log_joint_table.uncompiled(params, u, conditionals)
    log_q = exact_log_recognition_table.uncompiled(params, u, conditionals)
    q = jnp.exp(log_q)
    signal = log_p - log_q
    elbo = jnp.sum(q * signal, axis=1)
    spread = jnp.sum(q * (signal - elbo[:, None]) ** 2, axis=1)  # Var_Q(l) per example
    design = jnp.concatenate([u, jnp.ones((u.shape[0], 1))], axis=1)
    coef = jnp.linalg.lstsq(design, elbo)[0]
    baseline = {"w": coef[:-1], "b": coef[-1]}
    residual = elbo - baseline_values(baseline, u)  # the mean of l - b(u), per example
    batch = u.shape[0]
    batch_var = (jnp.mean(spread + residual**2) - jnp.mean(spread) / batch
                 - jnp.mean(residual) ** 2)
    return {**baseline, "mean": jnp.mean(residual), "var": batch_var}


def _quality(name, num_samples, draws, target):
    """The rows of one estimator at one K, from its draws [N, ...] and its target (or None)."""
    rows = []
    for half, part in _HALVES:
        g = jax.vmap(_flat)(part(draws))  # [N, P]
        mean, var = jnp.mean(g, axis=0), jnp.var(g, axis=0, ddof=1)
        std = jnp.sqrt(var)
        varies = std > 0  # a weight from a unit that is 0 throughout the batch never moves
        snr = (jnp.sum(jnp.where(varies, jnp.abs(mean) / jnp.where(varies, std, 1.0), 0.0))
               / jnp.maximum(jnp.sum(varies), 1))
        if target is None:
            bias = cosine = norm = math.nan
        else:
            t = _flat(part(target))
            norm = float(jnp.linalg.norm(t))
            bias = float(jnp.linalg.norm(mean - t))
            cosine = float(mean @ t / (jnp.linalg.norm(mean) * jnp.linalg.norm(t)))
        rows.append(GradientQuality(
            estimator=name, num_samples=int(num_samples), half=half, bias=bias,
            bias_noise=float(jnp.sqrt(jnp.sum(var) / g.shape[0])),
            variance=float(jnp.sum(var)), snr=float(snr), cosine=cosine, target_norm=norm))
    return rows


def gradient_quality(
    key: jax.Array, params: dict, u, estimators: Sequence[str] = ESTIMATORS,
    num_samples_list: Sequence[int] = (1, 2, 5, 10), num_draws: int = 1000, *,
    signal_decay: float = 0.8, conditionals: Conditional = SBN(),
) -> list[GradientQuality]:
    r"""Bias, variance and signal-to-noise ratio of each estimator's gradient, against the exact
    gradient of its target, as K varies: an oracle for machines small enough to enumerate.

    For each estimator and K, ``num_draws`` independent gradient estimates at
    ``params`` on the batch ``u`` (one compiled, vmapped call) are compared with
    the exact gradient of the batch mean of the estimator's target, found by
    enumerating the hidden configurations (:mod:`wsjax.exact`):

    The targets of ``"rws"``, ``"vimco"`` and ``"nvil"`` are listed in the module
    docstring.

    Rainforth et al. (2018) found that tighter bounds (larger K) can lower the
    signal-to-noise ratio of the recognition model's gradient while raising the
    generative model's; the rows tell, for a given machine, what each estimator does.

    Args:
      key: PRNG key; draw i of every estimator and K uses ``split(key, num_draws)[i]``.
      params: the machine (few hidden units: it is enumerated), perhaps with an
        NVIL baseline.
      u: a batch of 0/1 data [batch, n_visible] (checked).
      estimators: names from :data:`ESTIMATORS`.
      num_samples_list: the values of K (positive ints).
      num_draws: gradient estimates per estimator and K (at least 2).
      signal_decay: NVIL's decay of its running statistics.
      conditionals: the kinds of layer, as everywhere in the kit.

    Returns:
      A list of :class:`GradientQuality`, for each estimator (in the order given), each
      K (ascending) and each half (generative first).

    Raises:
      ValueError: for an unknown estimator, a K or ``num_draws`` out of range, or a
        machine too large to enumerate.

    References:
      Rainforth, Kosiorek, Le, Maddison, Igl, Wood & Teh (2018), Tighter variational
      bounds are not necessarily better. ICML.
    """
    unknown = sorted(set(estimators) - set(ESTIMATORS))
    if unknown:
        raise ValueError(f"unknown estimators {unknown}; known: {list(ESTIMATORS)}")
    ks = sorted({check_positive_int(k, "num_samples") for k in num_samples_list})
    num_draws = check_positive_int(num_draws, "num_draws")
    if num_draws < 2:
        raise ValueError(f"num_draws must be at least 2 (a variance), got {num_draws}")
    u = jnp.asarray(validate_binary(u, "u", layer_sizes(params, conditionals)[0]))
    machine = _machine(params)
    keys = jax.random.split(key, num_draws)
    num_configs = 2 ** sum(layer_sizes(params, conditionals)[1:])
    rows = []
    for name in estimators:
        if name == "rws":
            target = _RWS_TARGETS(machine, u, conditionals)
            for k in ks:
                rows += _quality(name, k, _draws(_rws_draw, keys, machine, u, k, conditionals),
                                 target)
        elif name == "vimco":
            for k in (k for k in ks if k >= 2):
                target = None
                if num_multisets(num_configs, k) <= MAX_MULTISETS:
                    target = _IW_BOUND_GRAD(machine, u, k, conditionals)
                rows += _quality(name, k, _draws(_vimco_draw, keys, machine, u, k, conditionals),
                                 target)
        else:
            baseline = (params["baseline"] if "baseline" in params else
                        _SETTLED_BASELINE(machine, u, conditionals))
            target = _ELBO_GRAD(machine, u, conditionals)
            draws = _draws(_nvil_draw, keys, {**machine, "baseline": baseline}, u,
                           signal_decay, conditionals)
            rows += _quality(name, 1, draws, target)
    return rows


def _mean_iw_bound(params, u, num_samples, conditionals):
    return jnp.mean(exact_iw_bound.uncompiled(params, u, num_samples, conditionals))


def _mean_elbo(params, u, conditionals):
    return jnp.mean(exact_elbo.uncompiled(params, u, conditionals))


def _rws_draw(key, params, u, num_samples, conditionals):
    grads = rws_grads(key, params, u, num_samples, conditionals=conditionals)[0]  # insomnia 1
    return jax.tree.map(jnp.negative, grads)


def _vimco_draw(key, params, u, num_samples, conditionals):
    return jax.tree.map(jnp.negative, vimco_grads(key, params, u, num_samples, conditionals)[0])


def _nvil_draw(key, params, u, signal_decay, conditionals):
    grads = _machine(nvil_grads(key, params, u, signal_decay, conditionals)[0])
    return jax.tree.map(jnp.negative, grads)


def _draws(draw, keys, params, u, setting, conditionals):
    """``draw(key, params, u, setting, conditionals)`` for every key: one compiled, vmapped call."""
    return _MANY[draw](keys, params, u, setting, conditionals)


# Compiled once per shape and static setting, so that a repeated call compiles nothing.
_MANY = {draw: jax.jit(jax.vmap(draw, in_axes=(0, None, None, None, None)),
                       static_argnums=(3, 4)) for draw in (_rws_draw, _vimco_draw, _nvil_draw)}
_RWS_TARGETS = jax.jit(_rws_targets, static_argnums=2)
_IW_BOUND_GRAD = jax.jit(jax.grad(_mean_iw_bound), static_argnums=(2, 3))
_ELBO_GRAD = jax.jit(jax.grad(_mean_elbo), static_argnums=2)
_SETTLED_BASELINE = jax.jit(_settled_baseline, static_argnums=2)
