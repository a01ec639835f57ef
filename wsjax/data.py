"""Built-in binary data: the bars and shifter problems, batch sampling, validation.

Samplers are pure functions of a key, so a training loop can draw its data
inside one compiled program. ``validate_binary`` is the gate for data coming
from outside (files, user arrays): it runs on the host, before any tracing.

References:
  Hinton, Dayan, Frey & Neal (1995), Science 268 (the bars problem).
  Dayan, Hinton, Neal & Zemel (1995), Neural Computation 7 (the shifter problem).
"""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np

from wsjax.layers import draw_flat

__all__ = [
    "validate_binary",
    "sample_batch",
    "sample_bars",
    "bars_distribution",
    "bars_orientations",
    "bars_masks",
    "sample_shifter",
    "shifter_distribution",
    "shifter_masks",
]


def validate_binary(x, name: str = "data", n_visible: int | None = None) -> np.ndarray:
    """Check that ``x`` is a [num_examples, n_visible] array of 0/1 values.

    Args:
      x: array-like.
      name: how the data is called in error messages.
      n_visible: required width, if known.

    Returns:
      ``x`` as a float32 numpy array.

    Raises:
      ValueError: naming the offending values (NaN, values other than 0 and 1)
        or the shape that does not fit.
    """
    arr = np.asarray(x)
    if arr.ndim != 2:
        raise ValueError(
            f"{name} must be a 2-D array [num_examples, n_visible], got shape {arr.shape}")
    if n_visible is not None and arr.shape[1] != n_visible:
        raise ValueError(
            f"{name} has width {arr.shape[1]} but the machine has n_visible = {n_visible}")
    if arr.shape[0] == 0:
        raise ValueError(f"{name} is empty (shape {arr.shape})")
    if arr.dtype.kind not in "biuf":
        raise ValueError(f"{name} must be numeric 0/1, got dtype {arr.dtype}")
    bad = ~((arr == 0) | (arr == 1))
    if bad.any():
        rows, cols = np.nonzero(bad)
        values = np.unique(arr[bad])
        shown = ", ".join(repr(v.item()) for v in values[:5]) + (" ..." if values.size > 5 else "")
        kind = ("NaN or non-binary values" if np.isnan(values.astype(float)).any()
                else "non-binary values")
        raise ValueError(
            f"{name} must contain only 0 and 1; found {kind} {shown} in {int(bad.sum())} "
            f"entries (first at row {rows[0]}, column {cols[0]})"
        )
    return arr.astype(np.float32)


def sample_batch(key: jax.Array, batch_size: int, data: jax.Array) -> jax.Array:
    """Draw ``batch_size`` rows of ``data`` [num_examples, n] uniformly with replacement.

    The argument order is that of every sampler of the kit (``TrainConfig.sampler``):
    ``(key, batch_size, data)``, so ``sampler=wsjax.data.sample_batch`` trains on a data array.

    Returns:
      [batch_size, n] float32.

    Raises:
      TypeError: if ``batch_size`` is not an int or ``data`` has no rows to draw from.
    """
    if not isinstance(batch_size, (int, np.integer)) or isinstance(batch_size, bool):
        raise TypeError(
            f"sample_batch(key, batch_size, data): batch_size must be an int, got "
            f"{type(batch_size).__name__}"
            f"{f' of shape {jnp.shape(batch_size)}' if hasattr(batch_size, 'shape') else ''}")
    if jnp.ndim(data) < 1:
        raise TypeError(f"sample_batch(key, batch_size, data): data must be an array "
                        f"[num_examples, n], got {type(data).__name__}")
    idx = jax.random.randint(key, (batch_size,), 0, data.shape[0])
    return jnp.asarray(data[idx], jnp.float32)


def _bernoulli(key, p, shape):
    """``jax.random.bernoulli(key, p, shape)`` as float32 0/1, drawn flat (``draw_flat``)."""
    return draw_flat(lambda s: jax.random.bernoulli(key, p, s), shape).astype(jnp.float32)


def _bars_image(vertical, bars, size):
    rows = jnp.broadcast_to(bars[:, None], (size, size))  # horizontal bars: row r on
    return jnp.where(vertical, rows.T, rows).reshape(size * size)


def sample_bars(
    key: jax.Array, batch_size: int, *, size: int = 4, p_vertical: float = 2.0 / 3.0,
    p_bar: float = 0.2,
) -> jax.Array:
    """Bars images [batch_size, size*size] (row-major), float32 0/1.

    Each image picks vertical bars with probability ``p_vertical`` (else
    horizontal), then turns on each of the ``size`` bars of that orientation
    independently with probability ``p_bar`` (Hinton et al. 1995: 4x4, 2/3, 0.2).
    """
    key_orient, key_bars = jax.random.split(key)
    vertical = jax.random.bernoulli(key_orient, p_vertical, (batch_size,))
    bars = _bernoulli(key_bars, p_bar, (batch_size, size))
    return jax.vmap(_bars_image, in_axes=(0, 0, None))(vertical, bars, size)


def _merge_duplicates(images: np.ndarray, probs: np.ndarray):
    table: dict[bytes, float] = {}
    first: dict[bytes, np.ndarray] = {}
    for img, p in zip(images, probs):
        k = img.astype(np.uint8).tobytes()
        table[k] = table.get(k, 0.0) + float(p)
        first.setdefault(k, img)
    keys = sorted(table)
    return (np.stack([first[k] for k in keys]).astype(np.float32),
            np.array([table[k] for k in keys], np.float64))


def bars_distribution(
    size: int = 4, p_vertical: float = 2.0 / 3.0, p_bar: float = 0.2
) -> tuple[np.ndarray, np.ndarray]:
    """The exact distribution of :func:`sample_bars` over distinct images.

    For 4x4 there are 30 distinct images: the blank and the full image each
    arise from both orientations.

    Returns:
      (images [num_distinct, size*size] float32, probs [num_distinct] float64 summing to 1).
    """
    images, probs = [], []
    for vertical, p_orient in ((True, p_vertical), (False, 1.0 - p_vertical)):
        for bars in itertools.product((0.0, 1.0), repeat=size):
            b = np.array(bars)
            img = np.broadcast_to(b[:, None], (size, size))
            images.append((img.T if vertical else img).reshape(-1))
            k = b.sum()
            probs.append(p_orient * p_bar**k * (1 - p_bar) ** (size - k))
    return _merge_duplicates(np.array(images), np.array(probs))


def bars_orientations(
    size: int = 4, p_vertical: float = 2.0 / 3.0, p_bar: float = 0.2
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The images of :func:`bars_distribution` whose orientation is determined.

    Every image but the blank and the full one comes from one orientation only.

    Returns:
      (images [n, size*size] float32, probs [n] float64 (their probabilities, not
      renormalised), vertical [n] float32: 1 for vertical bars, 0 for horizontal).
    """
    images, probs = bars_distribution(size, p_vertical, p_bar)
    grid = images.reshape(-1, size, size)
    vertical = np.all(grid == grid[:, :1, :], axis=(1, 2))  # every row the same
    horizontal = np.all(grid == grid[:, :, :1], axis=(1, 2))  # every column the same
    clear = vertical != horizontal
    return images[clear], probs[clear], vertical[clear].astype(np.float32)


def bars_masks(size: int = 4) -> np.ndarray:
    """[2 * size, size * size] bool: the pixels of column k (row 2k) and of row k (row 2k + 1)."""
    masks = []
    for k in range(size):
        m = np.zeros((size, size), bool)
        m[:, k] = True
        masks += [m.ravel(), m.T.ravel()]
    return np.stack(masks)


def _shifter_image(row, right):
    shifted = jnp.where(right, jnp.roll(row, 1), jnp.roll(row, -1))
    return jnp.concatenate([row, row, shifted, shifted])


def sample_shifter(
    key: jax.Array, batch_size: int, *, width: int = 8, p_on: float = 0.2,
    return_direction: bool = False,
):
    """Shifter images [batch_size, 4*width], float32 0/1 (Dayan et al. 1995).

    A random row (each bit on with probability ``p_on``) fills the top two rows;
    the same row shifted one place right or left (probability 1/2 each, with
    wrap-around) fills the bottom two rows.

    Args:
      return_direction: also return the shift direction [batch_size] (1 = right).
    """
    key_row, key_dir = jax.random.split(key)
    rows = _bernoulli(key_row, p_on, (batch_size, width))
    right = jax.random.bernoulli(key_dir, 0.5, (batch_size,))
    images = jax.vmap(_shifter_image)(rows, right)
    if return_direction:
        return images, right.astype(jnp.float32)
    return images


def shifter_distribution(width: int = 8, p_on: float = 0.2):
    """The exact distribution of :func:`sample_shifter` over distinct images.

    Returns:
      (images [num_distinct, 4*width] float32, probs [num_distinct] float64,
      p_right [num_distinct]: the probability that the image was shifted right).
    """
    images, probs, rights = [], [], []
    for bits in itertools.product((0.0, 1.0), repeat=width):
        row = np.array(bits)
        k = row.sum()
        for right in (True, False):
            shifted = np.roll(row, 1 if right else -1)
            images.append(np.concatenate([row, row, shifted, shifted]))
            probs.append(0.5 * p_on**k * (1 - p_on) ** (width - k))
            rights.append(float(right))
    images, probs, rights = np.array(images), np.array(probs), np.array(rights)
    merged, merged_p = _merge_duplicates(images, probs)
    _, merged_right = _merge_duplicates(images, probs * rights)
    return merged, merged_p, merged_right / merged_p


def shifter_masks(width: int = 8) -> np.ndarray:
    """[2 * width, 4 * width] bool: the direction-specific parts of a shifter image.

    Row 2i holds pixel i of the top two rows with pixel i + 1 of the bottom two
    (where pixel i of the row lands when shifted right), row 2i + 1 pixel i with
    pixel i - 1 below (shifted left), with wrap-around. An image of
    :func:`sample_shifter` is the union of the parts of its row's on pixels in
    its direction; a hidden unit that draws one part alone codes for a pixel and
    a direction together.
    """
    masks = []
    for i in range(width):
        for step in (1, -1):
            m = np.zeros((4, width), bool)
            m[0:2, i] = True
            m[2:4, (i + step) % width] = True
            masks.append(m.ravel())
    return np.stack(masks)
