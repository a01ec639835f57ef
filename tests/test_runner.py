"""The sweep runner's host-side rules, in process: summaries, results files, rates."""

import math

import numpy as np
import pytest

from wsjax import runner


def _result(final):
    final = np.asarray(final, np.float32)  # [rates, seeds]
    metrics = {"kl_bits": final[..., None]}
    return runner.SweepResult(state=None, metrics=metrics, steps=np.array([10]),
                              axes={"learning_rate": np.array([1.0, 1e38], np.float32)},
                              seeds=np.arange(final.shape[1]), seconds=0.0)


def test_diverged_runs_are_counted_and_left_out_of_statistics_and_best():
    summary = runner.summarize(_result([[0.5, np.nan, 0.3], [np.nan, np.inf, np.nan]]), "kl_bits")
    good, bad = summary["rows"]
    assert good["diverged"] == 1 and good["median"] == pytest.approx(0.4)
    assert good["best_seed"] == 2 and good["min"] == pytest.approx(0.3)
    assert bad["diverged"] == 3 and math.isnan(bad["median"]) and bad["best_seed"] is None
    assert summary["best"] == {"index": [0], "seed": 2, "value": pytest.approx(0.3)}
    assert summary["best_point"] == 0
    text = runner.summary_markdown(summary)
    assert "4 run(s) diverged" in text and "Best run: learning_rate 1, seed 2" in text


def test_every_run_diverged_still_summarizes():
    summary = runner.summarize(_result([[np.nan], [np.nan]]), "kl_bits")
    assert summary["best"] is None and summary["best_point"] is None
    assert "Every run diverged" in runner.summary_markdown(summary)


def test_results_of_a_resume_from_an_old_checkpoint_keep_the_earlier_training_time(tmp_path):
    import json
    # A checkpoint of an older version records no training time (seconds None): the time of
    # the finished earlier session comes from the results.json it wrote, plus this session's.
    earlier = _result([[0.5, 0.3], [0.2, 0.1]])._replace(seconds=280.0, session_seconds=280.0)
    runner.write_results(str(tmp_path), earlier, "kl_bits")
    resumed = earlier._replace(seconds=None, session_seconds=0.5, resumed_from=1)
    runner.write_results(str(tmp_path), resumed, "kl_bits")
    with open(tmp_path / "results.json") as f:
        written = json.load(f)
    assert written["seconds"] == 280.5 and written["session_seconds"] == 0.5
    # With no earlier results the time is unknown, and written as such, not as 0.
    runner.write_results(str(tmp_path / "fresh"), resumed, "kl_bits")
    with open(tmp_path / "fresh" / "results.json") as f:
        assert json.load(f)["seconds"] is None
    from experiments import report
    assert ("4 runs, training time not recorded (resumed from evaluation 1)."
            in report.report(str(tmp_path / "fresh")))
    assert "4 runs, 280 s of training (resumed" in report.report(str(tmp_path))


@pytest.mark.parametrize("specs, message", [
    ([], "at least one"), (["abc"], "not a number"), (["1:2:3"], "generative:recognition"),
    (["-1"], "finite and >= 0"), (["nan"], "finite and >= 0"),
])
def test_bad_rates_are_refused(specs, message):
    with pytest.raises(ValueError, match=message):
        runner.parse_rates(specs)


def test_rates_parse_with_zero_and_pairs():
    assert runner.parse_rates(["0", "0.5", "1:0"]) == [0.0, 0.5, [1.0, 0.0]]
