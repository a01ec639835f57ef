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


def test_shifter_reports_direction_accuracy(tmp_path):
    proc = _run("experiments.shifter", f"--output_dir={tmp_path}", "--num_steps=200", "--num_seeds=2",
                "--num_evals=2", "--learning_rates=1", "--num_direction_samples=8")
    assert proc.returncode == 0, proc.stderr[-3000:]
    with open(tmp_path / "direction.json") as f:
        report = json.load(f)
    acc = report["best_top_unit_accuracy"]["1"]
    assert len(acc) == 2 and all(0.5 <= a <= 1.0 for a in acc)
    # Ambiguous rows read the same shifted either way: blank, full, and the two alternating rows.
    ambiguous = 0.8**8 + 0.2**8 + 2 * 0.2**4 * 0.8**4
    assert abs(report["fraction_of_probability_unambiguous"] - (1 - ambiguous)) < 1e-6
    for name in ("weights.png", "fantasies.png", "metrics.npz", "summary.md"):
        assert os.path.getsize(tmp_path / name) > 0


def _tiny_mnist(path, bad_value=None):
    rng = np.random.default_rng(0)
    split = {k: (rng.random((n, 784)) < 0.15).astype(np.uint8) for k, n in
             (("train", 200), ("valid", 50), ("test", 60))}
    if bad_value is not None:
        split["train"][3, 5] = bad_value
    np.savez(path, **split)


def test_mnist_on_user_files_trains_checkpoints_and_reports(tmp_path):
    data = tmp_path / "tiny.npz"
    _tiny_mnist(data)
    out = tmp_path / "out"
    args = [f"--data_path={data}", f"--output_dir={out}", "--layer_sizes=784,20,5",
            "--num_epochs=2", "--batch_size=20", "--test_samples=16", "--num_samples=3"]
    proc = _run("experiments.mnist", *args)
    assert proc.returncode == 0, proc.stderr[-3000:]
    with open(out / "results.json") as f:
        results = json.load(f)
    assert results["test_examples"] == 60 and results["test_importance_samples"] == 16
    nll = results["test_nll"]["0.001"][0]
    assert np.isfinite(nll) and 0 < nll < 784 * np.log(2)
    assert "epoch 1.00" in proc.stderr and "held-out NLL estimate" in proc.stderr
    assert sorted(os.listdir(out / "checkpoints")) == ["1", "2"]
    for name in ("dreams.png", "weights.png", "curves.png", "flags.txt"):
        assert os.path.getsize(out / name) > 0
    # Started again with the same directory: nothing left to train, same results.
    again = _run("experiments.mnist", *args)
    assert again.returncode == 0 and "resumed from checkpoint" in again.stderr


def test_mnist_rejects_bad_data_before_compiling(tmp_path):
    data = tmp_path / "bad.npz"
    _tiny_mnist(data, bad_value=2)
    proc = _run("experiments.mnist", f"--data_path={data}", f"--output_dir={tmp_path / 'out'}",
                timeout=60)
    assert proc.returncode != 0
    assert "must contain only 0 and 1" in proc.stderr and "2" in proc.stderr
    assert "steps/s" not in proc.stderr
