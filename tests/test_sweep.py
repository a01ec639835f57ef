"""Sweeps at scale, run as real subprocesses: 4 devices, 2 processes and kill/resume equal 1 device."""

import json
import os
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SMALL = ["--dataset=bars", "--learning_rates=1,3", "--num_seeds=3", "--num_steps=600",
         "--num_evals=3", "--batch_size=5"]


def _env(devices=1):
    env = dict(os.environ, PYTHONPATH=ROOT, JAX_PLATFORMS="cpu")
    env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"
    return env


def _cmd(out, *extra):
    return [sys.executable, "-m", "experiments.sweep", f"--output_dir={out}", *SMALL, *extra]


def _run(out, *extra, devices=1, timeout=300):
    proc = subprocess.run(_cmd(out, *extra), cwd=ROOT, env=_env(devices), capture_output=True,
                          text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return proc


def _metrics(out):
    with np.load(os.path.join(out, "metrics.npz")) as z:
        return {k: z[k] for k in z.files}


def _assert_same(a, b):
    assert sorted(a) == sorted(b)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("one_device"))
    proc = _run(out)
    assert "over 1 devices in 1 processes" in proc.stderr
    return out


def test_four_devices_equal_one(reference, tmp_path):
    proc = _run(str(tmp_path), devices=4)
    assert "over 4 devices in 1 processes" in proc.stderr
    _assert_same(_metrics(reference), _metrics(str(tmp_path)))


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_equal_one(reference, tmp_path):
    out, port = str(tmp_path), _free_port()
    procs = [subprocess.Popen(
        _cmd(out, f"--coordinator_address=127.0.0.1:{port}", "--num_processes=2", f"--process_id={i}"),
        cwd=ROOT, env=_env(1), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for i in range(2)]
    outputs = [p.communicate(timeout=300) for p in procs]
    for p, (_, err) in zip(procs, outputs):
        assert p.returncode == 0, err[-4000:]
    assert "over 2 devices in 2 processes" in outputs[0][1]
    _assert_same(_metrics(reference), _metrics(out))


def test_killed_sweep_resumes_to_the_same_numbers(reference, tmp_path):
    out = str(tmp_path)
    # Slow the chunks down so that the kill lands mid-run: 3 evals of 20000 steps.
    longer = ["--num_steps=60000", "--num_evals=3"]
    proc = subprocess.Popen(_cmd(out, *longer), cwd=ROOT, env=_env(1), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    ckpt = os.path.join(out, "checkpoints")
    deadline = time.time() + 240
    while time.time() < deadline and not (os.path.isdir(ckpt) and "1" in os.listdir(ckpt)):
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert os.path.isdir(os.path.join(ckpt, "1")), "no checkpoint appeared before the deadline"
    assert not os.path.exists(os.path.join(out, "metrics.npz"))  # it really stopped early
    resumed = _run(out, *longer)
    assert "resumed from checkpoint" in resumed.stderr
    fresh = str(tmp_path / "fresh")
    _run(fresh, *longer)
    _assert_same(_metrics(out), _metrics(fresh))
    with open(os.path.join(out, "results.json")) as f:
        assert json.load(f)["resumed_from"] >= 1


def test_a_different_sweep_in_a_used_directory_is_refused(reference, tmp_path):
    out = str(tmp_path)
    _run(out)
    proc = subprocess.run(_cmd(out, "--seed=1"), cwd=ROOT, env=_env(), capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode != 0
    assert "refusing to use output directory" in proc.stderr and "seed: 0 there, 1 now" in proc.stderr
    assert "steps/s" not in proc.stderr
    _run(out, "--seed=1", "--overwrite")
    with open(os.path.join(out, "sweep.json")) as f:
        assert json.load(f)["seed"] == 1


def test_rws_and_digits_sweep_runs(tmp_path):
    out = str(tmp_path)
    proc = subprocess.run(
        [sys.executable, "-m", "experiments.sweep", f"--output_dir={out}", "--dataset=digits",
         "--algorithm=rws", "--num_samples=3", "--learning_rates=0.01", "--optimizer=adam",
         "--num_seeds=2", "--num_steps=200", "--num_evals=2", "--batch_size=20"],
        cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]
    m = _metrics(out)
    assert m["test_nll"].shape == (1, 2, 2) and np.all(np.isfinite(m["test_nll"]))
    assert np.all(m["test_nll"][:, :, -1] < m["test_nll"][:, :, 0])
    assert "iw_bound" in m
