"""Sweeps at scale, run as real subprocesses: a grid x seeds on 1 device equals 2 processes and a
run killed on 1 device and resumed on 5 (tests/test_sweep_grid.py: a grid point equals the same
run swept alone)."""

import csv
import json
import os
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

from tests.conftest import ROOT

# Chunks of a second or two on one device, so that a kill can land mid-run.
SMALL = ["--dataset=bars", "--learning_rates=1,3", "--grid=lr_decay=1,0.5", "--num_seeds=3",
         "--num_steps=6000", "--num_evals=3", "--batch_size=5"]


def _metrics(out):
    with np.load(os.path.join(out, "metrics.npz")) as z:
        return {k: z[k] for k in z.files}


def _assert_same(a, b):
    assert sorted(a) == sorted(b)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


@pytest.fixture(scope="module")
def reference(run_module, tmp_path_factory):
    out = str(tmp_path_factory.mktemp("one_device"))
    proc = run_module("experiments.sweep", f"--output_dir={out}", *SMALL, fast_compile=False)
    assert "over 1 devices in 1 processes" in proc.stderr
    return out, proc


def test_results_have_one_axis_per_grid_axis(reference):
    out, proc = reference
    m = _metrics(out)
    assert list(m["grid_axes"]) == ["learning_rate", "lr_decay"]
    np.testing.assert_array_equal(m["learning_rate"], [1, 3])
    np.testing.assert_array_equal(m["lr_decay"], [1, 0.5])
    assert m["kl_bits"].shape == (2, 2, 3, 3) and list(m["step"]) == [2000, 4000, 6000]
    with open(os.path.join(out, "metrics.csv")) as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2 * 2 * 3 * 3
    for row in rows:
        r, d = [1, 3].index(float(row["learning_rate"])), [1, 0.5].index(float(row["lr_decay"]))
        e = [2000, 4000, 6000].index(int(row["step"]))
        assert float(row["kl_bits"]) == m["kl_bits"][r, d, int(row["seed"]), e]
    with open(os.path.join(out, "summary.md")) as f:
        table = [l for l in f if l.startswith("| ") and "mean" not in l]
    assert len(table) == 4  # one row per grid point
    with open(os.path.join(out, "results.json")) as f:
        results = json.load(f)
    final = m["kl_bits"][..., -1]
    best = results["summary"]["best"]
    assert (*best["index"], best["seed"]) == np.unravel_index(np.argmin(final), final.shape)
    for name in ("curves.png", "final_vs_axis.png", "flags.txt", "sweep.json"):
        assert os.path.getsize(os.path.join(out, name)) > 0
    assert "steps/s" in proc.stderr and "first chunk" in proc.stderr


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_equal_one(reference, run_module, tmp_path):
    out, port = str(tmp_path), _free_port()
    cmd = [sys.executable, "-m", "experiments.sweep", f"--output_dir={out}", *SMALL,
           f"--coordinator_address=127.0.0.1:{port}", "--num_processes=2"]
    procs = [subprocess.Popen(cmd + [f"--process_id={i}"], cwd=ROOT,
                              env=run_module.env(1, fast_compile=False),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i in range(2)]
    outputs = [p.communicate(timeout=300) for p in procs]
    for p, (_, err) in zip(procs, outputs):
        assert p.returncode == 0, err[-4000:]
    assert "over 2 devices in 2 processes" in outputs[0][1]
    _assert_same(_metrics(reference[0]), _metrics(out))


def test_killed_on_one_device_and_resumed_on_five_equals_one_device(reference, run_module,
                                                                    tmp_path):
    # The killed run is the reference's program (its compilation comes from the session's
    # cache); the resumed one lays the 4 grid points out on 5 devices, one block each, padded.
    out = str(tmp_path)
    args = [f"--output_dir={out}", *SMALL]
    proc = subprocess.Popen([sys.executable, "-m", "experiments.sweep", *args], cwd=ROOT,
                            env=run_module.env(1, fast_compile=False), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    ckpt = os.path.join(out, "checkpoints")
    deadline = time.time() + 240
    while time.time() < deadline and not (os.path.isdir(ckpt) and "1" in os.listdir(ckpt)):
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    _, err = proc.communicate()
    assert os.path.isdir(os.path.join(ckpt, "1")), "no checkpoint appeared before the deadline"
    assert "over 1 devices in 1 processes" in err
    assert not os.path.exists(os.path.join(out, "metrics.npz"))  # it really stopped early
    resumed = run_module("experiments.sweep", *args, devices=5, fast_compile=False)
    assert "resumed from checkpoint" in resumed.stderr and "over 5 devices" in resumed.stderr
    _assert_same(_metrics(reference[0]), _metrics(out))
    with open(os.path.join(out, "results.json")) as f:
        results = json.load(f)
    assert results["resumed_from"] >= 1
    # The killed session's time up to its checkpoint is in the total.
    assert results["seconds"] > results["session_seconds"] > 0


def test_the_same_sweep_spelled_otherwise_resumes_and_another_is_refused(reference, run_module):
    out, _ = reference
    with open(os.path.join(out, "results.json")) as f:
        first = json.load(f)
    # An explicit default, 1.0 for 1 and 0.50 for 0.5, and a flag wake-sleep never reads.
    same = run_module("experiments.sweep", f"--output_dir={out}", "--dataset=bars",
                      "--learning_rates=1.0,3", "--grid=lr_decay=1,0.50", "--num_seeds=3",
                      "--num_steps=6000", "--num_evals=3", "--batch_size=5", "--layer_sizes=16,8,1",
                      "--num_samples=7", "--insomnia=0.3", fast_compile=False)
    assert "resumed from checkpoint" in same.stderr
    with open(os.path.join(out, "results.json")) as f:
        again = json.load(f)
    # Nothing left to train: the results are rewritten with the first session's training time.
    assert again["resumed_from"] == 3 and again["seconds"] == first["seconds"] > 0
    proc = run_module("experiments.sweep", f"--output_dir={out}", *SMALL, "--seed=1", check=False,
                      fast_compile=False)
    assert proc.returncode != 0
    assert ("refusing to use output directory" in proc.stderr
            and "seed: 0 there, 1 now" in proc.stderr)
    assert "steps/s" not in proc.stderr
