"""Evaluations of trained machines: held-out likelihood, baselines, what the top layer encodes.

These run on the host around compiled pieces, and take the leading run axes
of a sweep's params as they come (``params`` leaves of shape [..., *leaf]).
"""

from __future__ import annotations

import time
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from wsjax._api import check_positive_int
from wsjax.data import validate_binary
from wsjax.layers import dense_logits
from wsjax.model import sample_recognition
from wsjax.objectives import estimate_log_prob

__all__ = ["heldout_log_prob", "factorial_baseline_nll", "direction_accuracy", "parts_drawn"]


def _run_axes(params) -> tuple[int, ...]:
    """Leading axes of a (possibly stacked) machine: those before the prior's last axis."""
    return tuple(np.shape(params["prior"]["b"])[:-1])


def heldout_log_prob(
    key: jax.Array, params, data, num_samples: int, *, batch_size: int = 100,
    on_batch: Callable[[int, int, float], None] | None = None,
) -> np.ndarray:
    r"""Mean importance-sampled log p(u) over a data set, in batches, for one run or a stack of runs.

    Batch i of ``data`` is estimated with ``fold_in(key, i)``, so no two batches
    share random numbers; the estimate of every run uses the same keys.

    Args:
      key: PRNG key.
      params: one machine, or machines stacked on leading run axes [...].
      data: 0/1 array [n, n_visible] (checked).
      num_samples: K importance samples per example (static positive int).
      batch_size: examples per compiled call (the last batch may be smaller).
      on_batch: optional callback (examples done, total, seconds) after each batch.

    Returns:
      numpy array of the run axes' shape (a 0-d array for one machine): mean log p(u) in nats.
    """
    data = validate_binary(data, "data")
    num_samples = check_positive_int(num_samples, "num_samples")
    batch_size = check_positive_int(batch_size, "batch_size")
    axes = _run_axes(params)
    fn = lambda p, k, u: estimate_log_prob.uncompiled(k, p, u, num_samples)
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
    r"""How well each top unit of the recognition model detects a binary label (the shift direction).

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

    def top_prob(k, u):
        def one(kk):
            hs = sample_recognition(kk, params, u)
            below = hs[-2] if len(hs) > 1 else u
            return jax.nn.sigmoid(dense_logits(params["recognition"][-1], below))
        return jnp.mean(jax.vmap(one)(jax.random.split(k, num_samples)), axis=0)

    q = jax.vmap(top_prob)(jax.random.split(key, images.shape[0]), jnp.asarray(images))
    weights = probs / jnp.sum(probs)
    acc = jnp.sum(weights[:, None] * ((q > 0.5) == (jnp.asarray(right)[:, None] > 0.5)), axis=0)
    return jnp.maximum(acc, 1.0 - acc)


def parts_drawn(generative, masks, on: float = 0.8, off: float = 0.2) -> jax.Array:
    r"""How many of the given parts (the bars) some first-layer hidden unit draws on its own.

    Hidden unit j draws part k when, with j alone on, every pixel of part k is on
    with probability above ``on`` and every other pixel below ``off``:
    :math:`\sigma(b + G_{:,j}) > on` on the part, :math:`< off` off it. A machine
    of clean bar detectors draws every bar; mixed codes, dead units and units that
    draw two bars at once leave parts undrawn.

    Args:
      generative: the first generative layer, ``params["generative"][0]``
        (``{"w": [..., n_visible, n_1], "b": [..., n_visible]}``; leading run axes allowed).
      masks: [num_parts, n_visible] bool, e.g. :func:`wsjax.data.bars_masks`.

    Returns:
      [...] int32: the number of parts drawn, 0..num_parts.
    """
    masks = jnp.asarray(masks)[:, :, None]  # [K, n_visible, 1]
    probs = jax.nn.sigmoid(generative["b"][..., :, None] + generative["w"])[..., None, :, :]
    drawn_on = jnp.all(jnp.where(masks, probs > on, True), axis=-2)  # [..., K, n_1]
    rest_off = jnp.all(jnp.where(masks, True, probs < off), axis=-2)
    return jnp.sum(jnp.any(drawn_on & rest_off, axis=-1), axis=-1).astype(jnp.int32)
