"""Data sets packaged for training: a sampler, an evaluation and its metric.

A :class:`Task` bundles what a sweep needs to know about a data set: how to
draw a batch inside the compiled program, what to evaluate every
``eval_every`` steps, which of its metrics decides "best" (lower is better for
all of them here), and a default machine.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from wsjax import data as data_lib
from wsjax.evaluation import direction_accuracy, parts_drawn
from wsjax.exact import exact_kl_bits
from wsjax.layers import SBN
from wsjax.model import check_layer_sizes
from wsjax.objectives import estimate_log_prob

__all__ = ["Task", "bars", "shifter", "from_arrays", "load", "TASKS"]


class Task(NamedTuple):
    """A data set ready for ``wsjax.TrainConfig`` and ``wsjax.runner.run_sweep``.

    Attributes:
      name: short name.
      layer_sizes: default machine (visible width first).
      sampler: (key, batch_size, data) -> [batch_size, n_visible] 0/1.
      eval_fn: (key, params, data) -> dict of scalar metrics.
      metric: the key of eval_fn's dict that ranks runs (lower is better).
      image_shape: how to draw one visible vector.
      data: the arrays the sampler and eval_fn read (None for synthetic tasks).
      splits: for data sets, the whole host arrays ``{"train", "test"}`` (the final
        test estimate and the baselines read them); None for synthetic tasks.
    """

    name: str
    layer_sizes: tuple
    sampler: Callable
    eval_fn: Callable
    metric: str
    image_shape: tuple
    data: Any = None
    splits: Any = None


def bars(size: int = 4, num_orientation_samples: int = 100) -> Task:
    """Hinton et al. (1995) bars, fresh samples each step.

    Metrics: ``kl_bits``, the exact KL(data || model) in bits (the ranking
    metric); ``bars_drawn``, how many of the 2 * size bars some first-layer
    hidden unit draws on its own (:func:`wsjax.evaluation.parts_drawn`; all of
    them for clean bar detectors); ``orientation``, how well the best top unit
    of the recognition model tells vertical from horizontal images
    (:func:`wsjax.evaluation.direction_accuracy` with ``num_orientation_samples``
    recognition samples per image; 1 is a perfect detector, and a unit that
    ignores the image scores 2/3, the probability of vertical bars).
    """
    images, probs = data_lib.bars_distribution(size)
    images, probs = jnp.asarray(images), jnp.asarray(probs, jnp.float32)
    oriented = [jnp.asarray(a, jnp.float32) for a in data_lib.bars_orientations(size)]
    masks = data_lib.bars_masks(size)

    def eval_fn(key, params, data=None):
        key_bars, key_top = jax.random.split(key)
        return {"kl_bits": exact_kl_bits(params, images, probs),
                "bars_drawn": parts_drawn(key_bars, params, masks).astype(jnp.float32),
                "orientation": jnp.max(direction_accuracy(key_top, params, *oriented,
                                                          num_orientation_samples))}

    return Task(
        name="bars", layer_sizes=(size * size, 2 * size, 1),
        sampler=lambda key, batch_size, _=None: data_lib.sample_bars(key, batch_size, size=size),
        eval_fn=eval_fn, metric="kl_bits", image_shape=(size, size),
    )


def shifter(width: int = 8, num_eval_samples: int = 100) -> Task:
    """Dayan et al. (1995) shifter, fresh samples each step.

    Metric ``kl_bits``: KL(data || model) in bits over the exact data
    distribution, with log p(u) of the model estimated by importance sampling
    (``num_eval_samples`` recognition samples): an estimate that is high on
    average, since the estimate of log p(u) is low on average.

    Metric ``pairs_drawn``: how many of the 2 * width direction-specific parts
    (:func:`wsjax.data.shifter_masks`: a pixel of the row with the pixel it
    lands on, one direction) some first-layer hidden unit draws on its own
    (:func:`wsjax.evaluation.parts_drawn`, with ``fold_in(key, 1)``). A top unit
    can only read the direction from such units: a machine that encodes it has
    all of them.
    """
    images, probs, _ = data_lib.shifter_distribution(width)
    images, probs = jnp.asarray(images), jnp.asarray(probs, jnp.float32)
    entropy_bits = float(-np.sum(np.asarray(probs) * np.log2(np.asarray(probs))))
    masks = data_lib.shifter_masks(width)

    def eval_fn(key, params, data=None):
        log_model = estimate_log_prob(key, params, images, num_eval_samples)
        cross = -jnp.sum(probs * log_model) / math.log(2.0)
        pairs = parts_drawn(jax.random.fold_in(key, 1), params, masks)
        return {"kl_bits": cross - entropy_bits, "pairs_drawn": pairs.astype(jnp.float32)}

    return Task(
        name="shifter", layer_sizes=(4 * width, 24, 1),
        sampler=lambda key, batch_size, _=None: data_lib.sample_shifter(key, batch_size,
                                                                        width=width),
        eval_fn=eval_fn, metric="kl_bits", image_shape=(4, width),
    )


def _rows(key, batch_size, data):
    return data_lib.sample_batch(key, batch_size, data["train"])


def from_arrays(name: str, train, test, layer_sizes, image_shape, num_eval_samples: int = 100,
                eval_batch: int = 500, heldout=None) -> Task:
    """A task over a fixed data set: minibatches drawn with replacement from ``train``.

    Metrics, each a mean -log p(u) in nats estimated with ``num_eval_samples``
    importance samples (so high on average): ``test_nll`` over ``eval_batch`` rows
    of ``test`` (the ranking metric) and ``train_nll`` over ``eval_batch`` rows of
    ``train``, both fixed random subsets (files are often ordered, so a prefix
    would be a biased sample).

    Args:
      heldout: the split evaluated during training (default: ``test``); pass the
        validation split to keep the test split for the end.

    Raises:
      ValueError: if the arrays are not 0/1 or do not have the machine's width, or
        ``image_shape`` does not hold ``layer_sizes[0]`` pixels.
    """
    layer_sizes = check_layer_sizes(layer_sizes)
    n_visible = layer_sizes[0]
    if int(np.prod(image_shape)) != n_visible:
        raise ValueError(f"image_shape {tuple(image_shape)} holds {int(np.prod(image_shape))} "
                         f"pixels, but the machine has n_visible = {n_visible} (layer_sizes "
                         f"{layer_sizes})")
    train = data_lib.validate_binary(train, f"{name} train", n_visible)
    test = data_lib.validate_binary(test, f"{name} test", n_visible)
    heldout = test if heldout is None else data_lib.validate_binary(heldout, f"{name} valid",
                                                                    n_visible)
    rng = np.random.default_rng(0)
    test_eval = heldout[np.sort(rng.permutation(heldout.shape[0])[:eval_batch])]
    train_eval = train[np.sort(rng.permutation(train.shape[0])[:eval_batch])]

    def eval_fn(key, params, data, conditionals=SBN()):
        key_test, key_train = jax.random.split(key)
        return {"test_nll": -jnp.mean(estimate_log_prob(
                    key_test, params, data["test"], num_eval_samples, conditionals=conditionals)),
                "train_nll": -jnp.mean(estimate_log_prob(
                    key_train, params, data["train_eval"], num_eval_samples,
                    conditionals=conditionals))}

    return Task(name=name, layer_sizes=tuple(layer_sizes), sampler=_rows, eval_fn=eval_fn,
                metric="test_nll", image_shape=tuple(image_shape),
                data={"train": train, "test": test_eval, "train_eval": train_eval},
                splits={"train": train, "test": test})


def load(name: str, data_path: str | None = None, valid_as_test: bool = False) -> Task:
    """The task called ``name`` (one of ``TASKS``), reading files where it needs them.

    Args:
      name: "bars", "shifter", "digits" (scikit-learn's bundled 8x8 digits,
        thresholded at half intensity, a fixed 80/20 split) or "mnist"
        (binarized MNIST from ``data_path``; see ``wsjax.loaders``).
      valid_as_test: evaluate on the validation split during training
        (mnist files that have one), keeping the test split for the end.

    Raises:
      ValueError: unknown name, missing data_path, or bad data (named).
    """
    from wsjax import loaders

    if name == "bars":
        return bars()
    if name == "shifter":
        return shifter()
    if name == "digits":
        split = loaders.load_digits()
        return from_arrays("digits", split["train"], split["test"], (64, 32, 8), (8, 8))
    if name == "mnist":
        if data_path is None:
            raise ValueError("the mnist task needs a data path (the user's binarized MNIST files)")
        split = loaders.load_binarized_mnist(data_path)
        missing = [k for k in ("train", "test") if k not in split]
        if missing:
            raise ValueError(f"{data_path}: no {' or '.join(missing)} split found "
                             f"(it holds {sorted(split)})")
        heldout = split.get("valid") if valid_as_test else None
        return from_arrays("mnist", split["train"], split["test"], (784, 200, 200, 200), (28, 28),
                           heldout=heldout)
    raise ValueError(f"unknown task {name!r}; known: {TASKS}")


TASKS = ("bars", "shifter", "digits", "mnist")
"""Data sets the sweep entry point knows: bars and shifter are built in, digits comes
with scikit-learn, mnist is read from the user's files."""
