"""Evaluations of trained machines: held-out likelihood, baselines, what the top layer encodes.

These run on the host around compiled pieces, and take the leading run axes
of a sweep's params as they come (``params`` leaves of shape [..., *leaf]).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from wsjax._api import check_positive_int
from wsjax.data import validate_binary
from wsjax.layers import dense_logits
from wsjax.model import sample_down, sample_recognition
from wsjax.objectives import estimate_log_prob

__all__ = ["heldout_log_prob", "factorial_baseline_nll", "direction_accuracy", "parts_drawn"]


def _run_axes(params) -> tuple[int, ...]:
    """Leading axes of a (possibly stacked) machine: those before the prior's last axis."""
    return tuple(np.shape(params["prior"]["b"])[:-1])


def heldout_log_prob(
    key: jax.Array, params, data, num_samples: int, *, batch_size: int = 100,
    on_batch: Callable[[int, int, float], None] | None = None,
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
