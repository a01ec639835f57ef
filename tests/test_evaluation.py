"""What a trained machine learned (bar and shifter parts, the orientation), on hand-built
machines."""

import jax
import numpy as np

import wsjax
from wsjax import data, evaluation, tasks

MASKS = data.bars_masks()  # [8, 16]: column k is row 2k, row k is row 2k + 1


def _bars_machine():
    """16-8-1: hidden unit j draws and detects bar j; the top unit is on for vertical images.

    The hidden units are rarely on (prior logit -3): the reference state is all off."""
    params = wsjax.init(jax.random.key(0), (16, 8, 1), generative_bias=(0.0, -3.0))
    gen0 = {"w": np.float32(12.0) * MASKS.T, "b": np.full(16, -6.0, np.float32)}
    rec0 = {"w": np.float32(10.0) * MASKS, "b": np.full(8, -35.0, np.float32)}
    vertical = np.where(np.arange(8) % 2 == 0, 10.0, -10.0).astype(np.float32)
    rec1 = {"w": vertical[None, :], "b": np.zeros(1, np.float32)}
    return {"prior": params["prior"],
            "generative": ({k: np.asarray(v, np.float32) for k, v in gen0.items()},
                           params["generative"][1]),
            "recognition": (rec0, rec1)}


def _drawn(params, gen):
    return int(evaluation.parts_drawn(jax.random.key(2),
                                      {**params, "generative": (gen, params["generative"][1])},
                                      MASKS))


def test_clean_bar_detectors_draw_every_bar_and_mixed_units_do_not():
    params = _bars_machine()
    gen = params["generative"][0]
    assert _drawn(params, gen) == 8
    dead = {**gen, "w": gen["w"].copy()}
    dead["w"][:, 3] = 0.0
    double = {**gen, "w": gen["w"].copy()}
    double["w"][:, 3] = 12.0 * (MASKS[3] | MASKS[5])  # one unit draws two bars at once
    weak = {**gen, "w": gen["w"].copy()}
    weak["w"][:, 3] = 5.0 * MASKS[3]  # sigmoid(-1) = 0.27 on the bar: not clean
    counts = [_drawn(params, g) for g in (dead, double, weak)]
    assert counts == [7, 7, 7]
    # Weights that push pixels further off where they are off anyway do not matter.
    pushy = {**gen, "w": (gen["w"] - 6.0 * (~MASKS.T)).astype(np.float32)}
    assert _drawn(params, pushy) == 8
    # A unit that is usually on and draws its bar by turning it off draws it too: the
    # reference state has it on, the bar off, and the other units draw theirs from there.
    inverted = {"w": gen["w"].copy(), "b": gen["b"].copy()}
    inverted["b"][MASKS[3]] = 6.0
    inverted["w"][:, 3] = -12.0 * MASKS[3]
    usually_on = {**params, "generative": (params["generative"][0], {
        "w": params["generative"][1]["w"],
        "b": np.where(np.arange(8) == 3, 5.0, -3.0).astype(np.float32)})}
    assert _drawn(usually_on, inverted) == 8
    # From all off, row 1 is on and every column crosses it: only the 4 rows are drawn.
    assert _drawn(params, inverted) == 4


def test_bars_task_reports_structure_and_orientation():
    task = tasks.bars()
    metrics = task.eval_fn(jax.random.key(1), _bars_machine())
    assert float(metrics["bars_drawn"]) == 8.0
    assert float(metrics["orientation"]) > 0.99
    # A machine whose recognition ignores the image guesses "horizontal" for every image
    # (q = 1/2 is not above 1/2), right for the third of the probability that is horizontal.
    blank = task.eval_fn(jax.random.key(1), wsjax.init(jax.random.key(0), (16, 8, 1)))
    np.testing.assert_allclose(float(blank["orientation"]), 2.0 / 3.0, rtol=1e-6)
    assert float(blank["bars_drawn"]) == 0.0


def _shifter_machine(fields):
    """32-16-1: hidden unit j draws ``fields[j]`` (4 pixels); the top unit picks the direction.

    Right-shift units (even j) are on with probability 0.2 when the top unit is on, never when
    it is off, and the left-shift units the other way round: for the fields of
    ``data.shifter_masks`` exactly the shifter's generative process."""
    params = wsjax.init(jax.random.key(0), (32, 16, 1))
    right = np.arange(16) % 2 == 0
    gen1 = {"w": np.where(right, 10.0, -10.0).astype(np.float32)[:, None],
            "b": np.where(right, -11.4, -1.4).astype(np.float32)}
    gen0 = {"w": np.float32(12.0) * fields.T.astype(np.float32), "b": np.full(32, -6.0, np.float32)}
    return {**params, "generative": (gen0, gen1)}


def test_shifter_pairs_drawn_counts_direction_specific_units():
    masks = data.shifter_masks()
    drawn = lambda fields: int(evaluation.parts_drawn(jax.random.key(3), _shifter_machine(fields),
                                                      masks))
    assert drawn(masks) == 16
    assert float(tasks.shifter().eval_fn(jax.random.key(1),
                                         _shifter_machine(masks))["pairs_drawn"]) == 16.0
    dead = masks.copy()
    dead[5] = False
    assert drawn(dead) == 15
    # Units that draw a pixel with both places it could land (either direction) draw no part.
    both = np.stack([masks[2 * i] | masks[2 * i + 1] for i in range(8) for _ in (0, 1)])
    assert drawn(both) == 0


def test_direction_accuracy_is_the_mean_top_probability_of_nested_samples():
    # Sample s of image i comes from split(split(key, n)[i], num_samples)[s]: the definition,
    # written as the vmap of a vmap, against the function (which maps over one flat axis).
    # Noisy bar detectors (a bar's unit is on with probability sigmoid(+-2)) under three top
    # units that read them with different weights: accuracies that depend on the samples.
    images, probs, right = (np.asarray(a, np.float32) for a in data.bars_orientations(4))
    machine = _bars_machine()
    rec0 = {"w": 4.0 * MASKS.astype(np.float32), "b": np.full(8, -2.0, np.float32)}
    vertical = np.where(np.arange(8) % 2 == 0, 1.0, -1.0).astype(np.float32)
    rec1 = {"w": np.stack([vertical, 0.5 * vertical + 0.3, np.roll(vertical, 1)]),
            "b": np.array([0.0, -0.5, 0.2], np.float32)}
    params = {**machine, "recognition": (rec0, rec1)}
    key, num = jax.random.key(9), 20

    def top_prob(k, u):
        def one(kk):
            hs = wsjax.sample_recognition(kk, params, u)
            return jax.nn.sigmoid(wsjax.layers.dense_logits(params["recognition"][-1], hs[-2]))
        return jax.vmap(one)(jax.random.split(k, num)).mean(0)

    q = np.asarray(jax.vmap(top_prob)(jax.random.split(key, len(images)), images))
    acc = (probs / probs.sum()) @ ((q > 0.5) == (right[:, None] > 0.5))
    got = evaluation.direction_accuracy(key, params, images, probs, right, num)
    np.testing.assert_allclose(got, np.maximum(acc, 1 - acc), rtol=1e-6)
    assert len(set(np.round(np.asarray(got), 6))) > 1  # the units differ: a real comparison
