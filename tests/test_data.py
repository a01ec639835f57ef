"""Built-in data: exact distributions against the samplers, and validation of outside data."""

import jax
import numpy as np
import pytest

import wsjax
from wsjax import data


def _frequencies(samples, images):
    index = {img.astype(np.uint8).tobytes(): i for i, img in enumerate(images)}
    counts = np.zeros(len(images))
    for row in np.asarray(samples):
        counts[index[row.astype(np.uint8).tobytes()]] += 1  # KeyError: sampler left the support
    return counts / len(samples)


def test_bars_distribution_has_30_images_and_matches_the_sampler():
    images, probs = data.bars_distribution()
    assert images.shape == (30, 16) and len({i.tobytes() for i in images}) == 30
    np.testing.assert_allclose(probs.sum(), 1.0, atol=1e-12)
    blank = np.flatnonzero(images.sum(1) == 0)[0]
    full = np.flatnonzero(images.sum(1) == 16)[0]
    np.testing.assert_allclose(probs[blank], 0.8**4)  # both orientations
    np.testing.assert_allclose(probs[full], 0.2**4)
    one_vertical = np.flatnonzero((images.reshape(-1, 4, 4)[:, 0] == [1, 0, 0, 0]).all(1)
                                  & (images.sum(1) == 4))[0]
    np.testing.assert_allclose(probs[one_vertical], 2 / 3 * 0.2 * 0.8**3)
    n = 200_000
    freq = _frequencies(jax.jit(data.sample_bars, static_argnums=1)(jax.random.key(0), n), images)
    assert np.all(np.abs(freq - probs) < 5 * np.sqrt(probs * (1 - probs) / n) + 1e-4)


def test_shifter_distribution_matches_the_sampler_and_directions():
    images, probs, p_right = data.shifter_distribution()
    np.testing.assert_allclose(probs.sum(), 1.0, atol=1e-12)
    assert images.shape[1] == 32 and np.all((p_right >= 0) & (p_right <= 1))
    x, right = data.sample_shifter(jax.random.key(1), 100_000, return_direction=True)
    x = np.asarray(x).reshape(-1, 4, 8)
    np.testing.assert_array_equal(x[:, 0], x[:, 1])
    np.testing.assert_array_equal(x[:, 2], x[:, 3])
    shifted = np.where(np.asarray(right)[:, None] == 1, np.roll(x[:, 0], 1, axis=1),
                       np.roll(x[:, 0], -1, axis=1))
    np.testing.assert_array_equal(x[:, 2], shifted)
    freq = _frequencies(x.reshape(-1, 32), images)
    big = probs > 1e-3
    assert np.all(np.abs(freq[big] - probs[big]) < 5 * np.sqrt(probs[big] / 100_000))


def test_shifter_masks_make_up_every_image_in_its_direction():
    masks = data.shifter_masks()
    assert masks.shape == (16, 32) and np.all(masks.sum(1) == 4)
    assert len({m.tobytes() for m in masks}) == 16
    images, _, p_right = data.shifter_distribution()
    for img, right in zip(images, p_right):
        if right not in (0.0, 1.0):
            continue  # the row reads the same shifted either way
        on = np.flatnonzero(img[:8])
        parts = masks[2 * on + (0 if right else 1)]  # row 2i: shifted right; 2i + 1: left
        np.testing.assert_array_equal(parts.any(0) if on.size else np.zeros(32, bool), img == 1)
        other = masks[2 * on + (1 if right else 0)]  # the other direction's parts do not fit
        assert on.size == 0 or not np.array_equal(other.any(0), img == 1)


def test_bars_orientations_and_masks():
    images, probs, vertical = data.bars_orientations()
    all_images, all_probs = data.bars_distribution()
    # All 30 images but the blank and the full one, with their probabilities.
    assert images.shape == (28, 16)
    np.testing.assert_allclose(probs.sum(), 1.0 - 0.8**4 - 0.2**4)
    np.testing.assert_allclose(probs[vertical == 1].sum(), 2 / 3 * (1.0 - 0.8**4 - 0.2**4))
    grid = images.reshape(-1, 4, 4)
    for img, v in zip(grid, vertical):  # a vertical image is constant down each column
        assert np.array_equal(img, np.broadcast_to(img[:1], (4, 4))) == bool(v)
    masks = data.bars_masks()
    assert masks.shape == (8, 16) and np.all(masks.sum(1) == 4)
    np.testing.assert_array_equal(masks[0].reshape(4, 4)[:, 0], True)  # column 0
    np.testing.assert_array_equal(masks[1].reshape(4, 4)[0], True)  # row 0
    # Each bar alone is an image of the distribution, of its own orientation.
    for k, m in enumerate(masks):
        i = np.flatnonzero((images == m).all(1))[0]
        assert vertical[i] == (k % 2 == 0)


@pytest.mark.parametrize("bad, message", [
    (np.array([[0, 1, 2]]), r"non-binary values 2 .*row 0, column 2"),
    (np.array([[0.0, np.nan]]), "NaN"),
    (np.array([0, 1]), "2-D array"),
    (np.zeros((0, 3)), "empty"),
    (np.array([["a", "b"]]), "numeric"),
])
def test_validate_binary_names_the_problem(bad, message):
    with pytest.raises(ValueError, match=message):
        data.validate_binary(bad, "my data")


def test_validate_binary_width_and_pass_through():
    with pytest.raises(ValueError, match="width 3 but the machine has n_visible = 4"):
        data.validate_binary(np.zeros((2, 3)), n_visible=4)
    out = data.validate_binary(np.array([[0, 1], [1, 1]], np.uint8))
    assert out.dtype == np.float32 and out.tolist() == [[0, 1], [1, 1]]


def test_flat_draws_are_the_shaped_draws_under_vmap():
    # The samplers and the weight init draw flat vectors and reshape them (less code to compile):
    # the numbers of the draws of two axes they replace, so earlier runs keep their samples.
    keys = jax.random.split(jax.random.key(3), 4)

    def shaped_bars(key, n):
        key_orient, key_bars = jax.random.split(key)
        vertical = jax.random.bernoulli(key_orient, 2 / 3, (n,))
        bars = jax.random.bernoulli(key_bars, 0.2, (n, 4)).astype(np.float32)
        return jax.vmap(data._bars_image, in_axes=(0, 0, None))(vertical, bars, 4)

    np.testing.assert_array_equal(jax.vmap(lambda k: data.sample_bars(k, 9))(keys),
                                  jax.vmap(lambda k: shaped_bars(k, 9))(keys))
    rows = jax.vmap(lambda k: data.sample_shifter(k, 7)[:, :8])(keys)
    want = jax.vmap(lambda k: jax.random.bernoulli(jax.random.split(k)[0], 0.2, (7, 8)))(keys)
    np.testing.assert_array_equal(rows, want.astype(np.float32))
    layer = jax.vmap(lambda k: wsjax.layers.init_dense(k, 5, 3, 0.5))(keys)
    np.testing.assert_array_equal(
        layer["w"], jax.vmap(lambda k: 0.5 * jax.random.normal(k, (3, 5)))(keys))
