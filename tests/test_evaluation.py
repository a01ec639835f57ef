"""What a trained bars machine learned: bar detectors and the orientation, on hand-built machines."""

import jax
import numpy as np

import wsjax
from wsjax import data, evaluation, tasks

MASKS = data.bars_masks()  # [8, 16]: column k is row 2k, row k is row 2k + 1


def _bars_machine():
    """16-8-1: hidden unit j draws and detects bar j; the top unit is on for vertical images."""
    params = wsjax.init(jax.random.key(0), (16, 8, 1))
    gen0 = {"w": np.float32(12.0) * MASKS.T, "b": np.full(16, -6.0, np.float32)}
    rec0 = {"w": np.float32(10.0) * MASKS, "b": np.full(8, -35.0, np.float32)}
    vertical = np.where(np.arange(8) % 2 == 0, 10.0, -10.0).astype(np.float32)
    rec1 = {"w": vertical[None, :], "b": np.zeros(1, np.float32)}
    return {"prior": params["prior"],
            "generative": ({k: np.asarray(v, np.float32) for k, v in gen0.items()},
                           params["generative"][1]),
            "recognition": (rec0, rec1)}


def test_clean_bar_detectors_draw_every_bar_and_mixed_units_do_not():
    params = _bars_machine()
    gen = params["generative"][0]
    assert int(evaluation.parts_drawn(gen, MASKS)) == 8
    dead = {**gen, "w": gen["w"].copy()}
    dead["w"][:, 3] = 0.0
    double = {**gen, "w": gen["w"].copy()}
    double["w"][:, 3] = 12.0 * (MASKS[3] | MASKS[5])  # one unit draws two bars at once
    weak = {**gen, "w": gen["w"].copy()}
    weak["w"][:, 3] = 6.5 * MASKS[3]  # sigmoid(0.5) = 0.62 on the bar: not clean
    counts = [int(evaluation.parts_drawn(g, MASKS)) for g in (dead, double, weak)]
    assert counts == [7, 7, 7]
    # Leading run axes are kept.
    stacked = jax.tree.map(lambda *a: np.stack(a), gen, dead)
    np.testing.assert_array_equal(evaluation.parts_drawn(stacked, MASKS), [8, 7])


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
