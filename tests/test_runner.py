"""The sweep runner's host-side rules, in process: summaries, rates, the layout of runs."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import wsjax
from experiments.common import parse_rates
from wsjax import layout, results


def _result(final):
    final = np.asarray(final, np.float32)  # [rates, seeds]
    metrics = {"kl_bits": final[..., None]}
    return results.SweepResult(state=None, metrics=metrics, steps=np.array([10]),
                              axes={"learning_rate": np.array([1.0, 1e38], np.float32)},
                              seeds=np.arange(final.shape[1]), seconds=0.0)


def test_diverged_runs_are_counted_and_left_out_of_statistics_and_best():
    summary = results.summarize(_result([[0.5, np.nan, 0.3], [np.nan, np.inf, np.nan]]), "kl_bits")
    good, bad = summary["rows"]
    assert good["diverged"] == 1 and good["median"] == pytest.approx(0.4)
    assert good["best_seed"] == 2 and good["min"] == pytest.approx(0.3)
    assert bad["diverged"] == 3 and math.isnan(bad["median"]) and bad["best_seed"] is None
    assert summary["best"] == {"index": [0], "seed": 2, "value": pytest.approx(0.3)}
    assert summary["best_point"] == 0
    text = results.summary_markdown(summary)
    assert "4 run(s) diverged" in text and "Best run: learning_rate 1, seed 2" in text


def test_every_run_diverged_still_summarizes():
    summary = results.summarize(_result([[np.nan], [np.nan]]), "kl_bits")
    assert summary["best"] is None and summary["best_point"] is None
    assert "Every run diverged" in results.summary_markdown(summary)


@pytest.mark.parametrize("specs, message", [
    ([], "at least one"), (["abc"], "not a number"), (["1:2:3"], "generative:recognition"),
    (["-1"], "finite and >= 0"), (["nan"], "finite and >= 0"),
])
def test_bad_rates_are_refused(specs, message):
    with pytest.raises(ValueError, match=message):
        parse_rates(specs)


def test_rates_parse_with_zero_and_pairs():
    assert parse_rates(["0", "0.5", "1:0"]) == [0.0, 0.5, [1.0, 0.0]]


def test_results_json_holds_the_training_time_of_every_session(tmp_path):
    import json

    from experiments import report
    resumed = _result([[0.5, 0.3], [0.2, 0.1]])._replace(seconds=280.5, session_seconds=0.5,
                                                         resumed_from=1)
    results.write_results(str(tmp_path), resumed, "kl_bits")
    with open(tmp_path / "results.json") as f:
        written = json.load(f)
    assert written["seconds"] == 280.5 and written["session_seconds"] == 0.5
    assert "4 runs, 280 s of training (resumed from evaluation 1)." in report.report(str(tmp_path))


# The layout of runs over blocks (wsjax.layout), shared by wsjax.sweep and the runner.

POINTS = {"learning_rate": np.array([[1.0, 1.0], [2.0, 2.0], [3.0, 3.0]], np.float32),
          "insomnia": np.full(3, 0.5, np.float32), "optimizer": {"b1": np.full(3, 0.9)}}


@pytest.mark.parametrize("vectorize, num_blocks, width, shared", [
    ("seeds", 4, 2, ("insomnia", "learning_rate", "optimizer.b1")),  # 3 points on 2 devices
    ("runs", 2, 3, ("insomnia", "optimizer.b1")),  # 6 runs on 2 devices
])
def test_runs_go_to_blocks_and_back(vectorize, num_blocks, width, shared):
    lay = layout.make_layout(POINTS, 2, num_devices=2, vectorize=vectorize)
    assert (lay.num_blocks, lay.width, sorted(lay.shared)) == (num_blocks, width, list(shared))
    keys, hp = layout.run_inputs(np.arange(4, dtype=np.uint32).reshape(2, 2), POINTS)
    np.testing.assert_array_equal(keys[:, 0], [0, 2, 0, 2, 0, 2])  # run g * S + s
    np.testing.assert_array_equal(hp["learning_rate"][:, 0], [1, 1, 2, 2, 3, 3])
    axes = (0, layout.hyperparam_axes(hp, lay))
    blocks = layout.to_blocks((keys, hp), axes, lay)
    assert blocks[0].shape == (num_blocks, width, 2)
    for name in ("learning_rate", "insomnia"):
        lead = (num_blocks,) if name in shared else (num_blocks, width)
        assert blocks[1][name].shape == (*lead, *hp[name].shape[1:])
    if vectorize == "seeds":  # the padding block repeats run 0, the first point
        np.testing.assert_array_equal(blocks[1]["learning_rate"][:, 0], [1, 2, 3, 1])
    back = layout.from_blocks(blocks, axes, lay)
    for a, b in zip(jax.tree.leaves((keys, hp)), jax.tree.leaves(back)):
        np.testing.assert_array_equal(a, b)


def test_a_traced_grid_shares_nothing_in_the_runs_layout():
    shared = jax.jit(lambda p: jnp.asarray(len(layout.make_layout(p, 2, 1, "runs").shared)))
    assert int(shared(POINTS)) == 0
    with pytest.raises(ValueError, match="vectorize must be one of"):
        layout.make_layout(POINTS, 2, 1, "points")


@pytest.mark.parametrize("axes, conditionals", [
    ({"learning_rate": [0.1, 0.2]}, 2),  # insomnia shared by the block: real branches
    ({"insomnia": [0.0, 1.0]}, 0),  # one insomnia per run: selects that compute both sides
])
def test_the_insomnia_cond_stays_a_branch_in_the_runners_program(axes, conditionals):
    # RWS skips the dreams at insomnia 1 and the wake-phase recognition gradient at 0, each
    # with a lax.cond on insomnia; in the runs layout a hyperparameter that is not swept is
    # shared by every run of a block, so the compiled chunk program keeps both conds.
    from wsjax import runner, tasks
    bars = tasks.bars()
    config = wsjax.TrainConfig(layer_sizes=(16, 4), num_steps=2, batch_size=5,
                               sampler=bars.sampler, eval_every=2)
    trainer = wsjax.make_train(config, wsjax.rws(optax.sgd, 2))
    points = wsjax.grid(trainer.default_hyperparams(insomnia=0.5), axes)
    lay = layout.make_layout(points, 2, jax.device_count(), "runs")
    sweep, state = runner._start(trainer, points, lay, 0, None)
    text = sweep.chunk.lower((sweep.keys, state), sweep.data).compile().as_text()
    # Beside insomnia's: the two conds of `defensive` (shared, not swept, in both cases), one
    # on the hidden layer's draw and one on the proposal's density.
    assert text.count(" conditional(") == conditionals + 2
