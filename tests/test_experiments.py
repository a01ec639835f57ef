"""The experiment entry points, run as a user would: tiny settings, real subprocesses."""

import csv
import json
import os
import subprocess
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _run(module, *args, timeout=300):
    env = dict(os.environ, PYTHONPATH=ROOT, JAX_PLATFORMS="cpu")
    return subprocess.run([sys.executable, "-m", module, *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def bars_run(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("bars"))
    proc = _run("experiments.bars", f"--output_dir={out}", "--num_steps=400", "--num_seeds=2",
                "--num_evals=4", "--learning_rates=1,2:4")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out, proc


def test_bars_writes_every_result_and_figure(bars_run):
    out, proc = bars_run
    for name in ("flags.txt", "results.json", "metrics.npz", "metrics.csv", "summary.md",
                 "weights.png", "fantasies.png", "kl_curves.png", "kl_vs_rate.png"):
        assert os.path.getsize(os.path.join(out, name)) > 0, name
    assert "steps/s" in proc.stderr and "Best run" in proc.stdout


def test_bars_csv_npz_and_summary_agree(bars_run):
    out, _ = bars_run
    npz = np.load(os.path.join(out, "metrics.npz"))
    kl = npz["kl_bits"]
    assert kl.shape == (2, 2, 4) and list(npz["step"]) == [100, 200, 300, 400]
    with open(os.path.join(out, "metrics.csv")) as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == kl.size
    for row in rows:
        r, s = int(row["rate_index"]), int(row["seed"])
        e = list(npz["step"]).index(int(row["step"]))
        assert float(row["kl_bits"]) == kl[r, s, e]
    with open(os.path.join(out, "results.json")) as f:
        results = json.load(f)
    final = kl[:, :, -1]
    best = results["summary"]["best"]
    assert (best["rate_index"], best["seed"]) == np.unravel_index(np.argmin(final), final.shape)
    assert results["summary"]["best_rate_index"] == int(np.argmin(np.median(final, axis=1)))
    assert results["final"]["2:4"] == final[1].tolist()


def test_bars_flagfile_reproduces_the_run(bars_run, tmp_path):
    out, _ = bars_run
    again = str(tmp_path / "again")
    proc = _run("experiments.bars", f"--flagfile={os.path.join(out, 'flags.txt')}",
                f"--output_dir={again}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    np.testing.assert_array_equal(np.load(os.path.join(out, "metrics.npz"))["kl_bits"],
                                  np.load(os.path.join(again, "metrics.npz"))["kl_bits"])


@pytest.mark.parametrize("flag, message", [
    ("--learning_rates=-1", "positive"),
    ("--learning_rates=0.1:abc", "not a number"),
    ("--num_seeds=0", "num_seeds must be positive"),
    ("--num_steps=0", "num_steps must be positive"),
    ("--layer_sizes=15,8,1", "must start with 16"),
    ("--layer_sizes=16,0,1", "layer_sizes"),
    ("--num_steps=1001", "multiple of num_evals"),
])
def test_bars_rejects_impossible_flags_before_compiling(flag, message, tmp_path):
    proc = _run("experiments.bars", f"--output_dir={tmp_path}", flag, timeout=60)
    assert proc.returncode != 0
    assert message in proc.stderr, proc.stderr[-2000:]
    assert "steps/s" not in proc.stderr  # nothing was trained
