"""The experiment entry points, run as a user would: tiny settings, real subprocesses."""

import json
import os
import signal
import subprocess
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def bars_run(run_module, tmp_path_factory):
    out = str(tmp_path_factory.mktemp("bars"))
    # As a user runs it: no device count in XLA_FLAGS, so --cpu_devices splits the host.
    proc = run_module("experiments.bars", f"--output_dir={out}", "--num_steps=400",
                      "--num_seeds=2", "--num_evals=4", "--learning_rates=1,2:4",
                      "--cpu_devices=2", devices=None)
    return out, proc


def test_bars_writes_every_result_and_figure(bars_run):
    out, proc = bars_run
    for name in ("flags.txt", "sweep.json", "results.json", "metrics.npz", "metrics.csv",
                 "summary.md", "weights.png", "fantasies.png", "curves.png", "final_vs_axis.png",
                 "structure.json"):
        assert os.path.getsize(os.path.join(out, name)) > 0, name
    assert "steps/s" in proc.stderr and "Best run" in proc.stdout
    # --cpu_devices=2 splits the host in two (test_a_diverged_rate...: not where XLA_FLAGS
    # already names a device count); 2 points x 2 seeds, one vectorized block per device.
    assert "in 2 blocks of 2 (runs vectorized) over 2 devices" in proc.stderr
    npz = np.load(os.path.join(out, "metrics.npz"))
    assert npz["kl_bits"].shape == (2, 2, 4) and list(npz["step"]) == [100, 200, 300, 400]
    np.testing.assert_array_equal(npz["learning_rate"], [[1, 1], [2, 4]])
    with open(os.path.join(out, "results.json")) as f:
        results = json.load(f)
    assert results["final"][1]["labels"] == {"learning_rate": "2:4"}
    assert results["final"][1]["values"] == npz["kl_bits"][1, :, -1].tolist()
    # This session's training time is part of the whole, and a fresh run resumed nothing.
    assert 0 < results["session_seconds"] <= results["seconds"]
    assert results["resumed_from"] == 0 and "resumed from" not in proc.stderr


def test_report_prints_the_table_from_the_run_files(bars_run, run_module, tmp_path):
    out, _ = bars_run
    proc = run_module("experiments.report", out, timeout=60)
    lines = proc.stdout.splitlines()
    assert lines[2].startswith("`python -m experiments.bars --output_dir=") and "4 runs" in lines[2]
    rows = [line for line in lines if line.startswith("| 1 |") or line.startswith("| 2:4 |")]
    kl = np.load(os.path.join(out, "metrics.npz"))["kl_bits"][..., -1]  # [point, seed]
    for row, values in zip(rows, kl):
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert cells[1] == f"{np.median(values):.3f}" and cells[3] == f"{values.min():.3f}"
        assert cells[-1] == " ".join(f"{v:.3f}" for v in np.sort(values))
    assert len(rows) == 2
    with open(os.path.join(out, "structure.json")) as f:
        structure = json.load(f)
    npz = np.load(os.path.join(out, "metrics.npz"))
    for row, drawn, accuracy in zip(rows, npz["bars_drawn"][..., -1], npz["orientation"][..., -1]):
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert cells[5:8] == [f"{np.sum(drawn == 8)} / 2", f"{np.sum(accuracy >= 0.9)} / 2",
                              f"{np.sum((drawn == 8) & (accuracy >= 0.9))} / 2"]
    assert structure["bars_drawn"][1]["values"] == npz["bars_drawn"][1, :, -1].tolist()
    empty = run_module("experiments.report", str(tmp_path), timeout=60, check=False)
    assert empty.returncode == 2 and "no results.json" in empty.stderr.splitlines()[-1]


def test_bars_flagfile_reproduces_the_run_through_ctrl_c_and_resume(bars_run, run_module,
                                                                   tmp_path):
    out, _ = bars_run
    args = [f"--flagfile={os.path.join(out, 'flags.txt')}", f"--output_dir={tmp_path}"]
    # Ctrl-C after the first checkpoint (its step's line is logged after it is saved): one
    # line saying how to resume, status 130, the checkpoints kept. The run is at the lowest
    # priority (nice replaces itself with it), so that on a busy machine it cannot finish its
    # last 300 steps before this process, woken by that line, has sent the signal.
    proc = subprocess.Popen(["nice", "-n", "19", sys.executable, "-m", "experiments.bars", *args],
                            cwd=ROOT, env=run_module.env(devices=None), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    seen = []
    for line in proc.stderr:
        seen.append(line)
        if "step 100/400" in line:
            break
    proc.send_signal(signal.SIGINT)
    _, rest = proc.communicate(timeout=120)
    stderr = "".join(seen) + rest
    assert proc.returncode == 130 and "Traceback" not in stderr, stderr[-3000:]
    command = "python -m experiments.bars " + " ".join(args)
    assert stderr.strip().splitlines()[-1] == (
        f"experiments.bars: interrupted; the checkpoints in {tmp_path / 'checkpoints'} are kept: "
        f"run the same command to resume: {command}")
    kept = max(int(n) for n in os.listdir(tmp_path / "checkpoints") if n.isdigit())
    # The same command resumes there, and ends with the numbers of the uninterrupted run.
    again = run_module("experiments.bars", *args, devices=None)
    assert f"at eval {kept}/4" in again.stderr and f"(resumed from eval {kept})" in again.stderr
    with open(tmp_path / "results.json") as f:
        assert json.load(f)["resumed_from"] == kept >= 1
    np.testing.assert_array_equal(np.load(os.path.join(out, "metrics.npz"))["kl_bits"],
                                  np.load(os.path.join(tmp_path, "metrics.npz"))["kl_bits"])


@pytest.mark.parametrize("flag, message", [
    ("--num_processes=2", "--num_processes > 1 needs --coordinator_address=host:port"),
    ("--num_processes=2 --coordinator_address=localhost:1", "needs --process_id"),
    ("--num_processes=2 --process_id=2 --coordinator_address=localhost:1",
     "--process_id must be in [0, 2), got 2"),
    ("--output_dir=/sys/wsjax_out", "cannot write to output directory '/sys/wsjax_out'"),
    ("--learning_rates=-1", "finite and >= 0"),
    ("--learning_rates=0.1:abc", "not a number"),
    ("--num_seeds=0", "num_seeds must be positive"),
    ("--layer_sizes=15,8,1", "starts with 15"),
    ("--num_steps=1001", "multiple of --num_evals"),
    ("--grid=temperature=1,2", "unknown hyperparameter 'temperature'"),
    ("--grid=lr_decay", "--grid needs NAME=V1,V2"),
    ("--grid=learning_rate=1,2", "--learning_rates, not --grid"),
    ("--activity_weight=10:0", "one number per layer, separated by commas"),
    # Once found only after the directory was claimed (sweep.json written, a traceback): now in
    # build, by the optimizer's signature or by tracing (not compiling) the sweep's program.
    ("--optimizer=sgd --grid=optimizer.b1=0.8,0.9",
     "optimizer keyword 'b1' is not a parameter of optax.sgd"),
    ("--grid=activity_weight=1:2:3,0", "activity_weight"),  # 3 values for 2 layers
    ("--algorithm=vimco --num_samples=1", "vimco needs --num_samples >= 2"),
    ("--algorithm=wake_sleep --defensive=0.1", "--defensive applies to --algorithm=rws only"),
    ("--algorithm=nvil --grid=insomnia=0,1", "unknown hyperparameter 'insomnia'"),
    # Another depth: the per-layer defaults (init_scale 0,1; layer_rate_scales 1,0.01:10) are
    # spread to it, and what is refused is what the exact KL cannot enumerate.
    ("--layer_sizes=16,8,8,8,8", "2**32 hidden configurations (layer_sizes (16, 8, 8, 8, 8)); "
     "the limit is 24 hidden units"),
    ("--init_scale=0,1,2", "--init_scale has 3 values (0,1,2), but --layer_sizes=16,8,1 has 2"),
    # absl's own parse errors: one line and status 2 like the others.
    ("--num_seeds=abc", "flag --num_seeds=abc: invalid literal for int()"),
    ("--unknown_flag", "Unknown command line flag 'unknown_flag'"),
])
def test_bars_rejects_impossible_flags_before_compiling(flag, message, run_module, tmp_path):
    # As a user runs it, JAX_PLATFORMS unset: JAX's notice that it found no TPU is not shown.
    env = run_module.env()
    env.pop("JAX_PLATFORMS")
    proc = run_module("experiments.bars", f"--output_dir={tmp_path}", *flag.split(), env=env,
                      timeout=60, check=False)
    assert proc.returncode == 2
    errors = [line for line in proc.stderr.splitlines() if "error" in line.lower()]
    assert errors == [f"experiments.bars: error: {errors[0].split('error: ', 1)[1]}"], errors
    assert message in errors[0], proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr and "steps/s" not in proc.stderr  # nothing was trained
    assert "Unable to initialize backend 'tpu'" not in proc.stderr
    assert not os.listdir(tmp_path)  # the directory is left as it was found


def test_help_lists_every_flag_of_the_experiment_and_exits_0(run_module):
    shared = ("--num_seeds", "--layer_sizes", "--grid", "--learning_rates", "--init_scale",
              "--output_dir", "--[no]overwrite", "--cpu_devices", "--vectorize", "--algorithm")
    proc = run_module("experiments.bars", "--help", timeout=60)  # exit status 0
    listed = [line.split(":")[0].strip() for line in proc.stdout.splitlines()
              if line.startswith("  --")]
    assert set(shared) <= set(listed), listed


def test_a_diverged_rate_is_reported_and_everything_else_written(run_module, tmp_path):
    # The delta rules bound each update by the rate, so the rate must overflow float32 in a
    # few steps (3e38 ~ its largest value) for the weights, and the KL, to become inf or NaN.
    args = [f"--output_dir={tmp_path}", "--learning_rates=1,3e38", "--num_seeds=2",
            "--num_steps=200", "--num_evals=2"]
    for _attempt in range(2):  # the rerun resumes the finished sweep and writes it all again
        proc = run_module("experiments.bars", *args, timeout=120)
        assert "2 run(s) diverged" in proc.stdout, proc.stdout
        # bars splits the CPU into one device per core (--cpu_devices=0), except where
        # XLA_FLAGS already names a device count, as the test harness does (1).
        assert "over 1 devices" in proc.stderr
        for name in ("summary.md", "results.json", "metrics.npz", "curves.png",
                     "final_vs_axis.png", "weights.png", "fantasies.png"):
            assert os.path.getsize(tmp_path / name) > 0, name
    final = np.load(tmp_path / "metrics.npz")["kl_bits"][..., -1]
    assert np.all(np.isfinite(final[0])) and not np.any(np.isfinite(final[1]))
    with open(tmp_path / "results.json") as f:
        assert json.load(f)["summary"]["best"]["index"] == [0]


def test_an_output_dir_naming_a_file_is_refused_and_left_alone(run_module, tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("mine")
    proc = run_module("experiments.bars", f"--output_dir={path}", timeout=60, check=False)
    assert proc.returncode == 2 and f"output directory '{path}' is a file" in proc.stderr
    assert path.read_text() == "mine"


def test_a_missing_peer_process_ends_in_one_line_after_the_timeout(run_module, tmp_path):
    # Process 1 of 2, whose coordinator never starts: it says what it waits for, then gives up.
    proc = run_module("experiments.bars", f"--output_dir={tmp_path}", "--num_processes=2",
                      "--process_id=1", "--coordinator_address=localhost:1", "--join_timeout=2",
                      timeout=60, check=False)
    assert proc.returncode == 2
    assert "waiting up to 2 s for 2 processes to join at localhost:1" in proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == (
        "experiments.bars: error: not all 2 processes joined at localhost:1 within "
        "--join_timeout=2 s (this is process 1; start every process with the same "
        "--coordinator_address and --num_processes)")
    assert not os.listdir(tmp_path)  # nothing was written


def test_shifter_reports_direction_accuracy(run_module, tmp_path):
    run_module("experiments.shifter", f"--output_dir={tmp_path}", "--num_steps=200",
               "--num_seeds=2", "--num_evals=1", "--learning_rates=1", "--num_direction_samples=8")
    with open(tmp_path / "direction.json") as f:
        report = json.load(f)
    acc = report["best_top_unit_accuracy"][0]["values"]
    assert len(acc) == 2 and all(0.5 <= a <= 1.0 for a in acc)
    pairs = report["pairs_drawn"][0]["values"]
    assert len(pairs) == 2 and all(p == int(p) and 0 <= p <= 16 for p in pairs)
    # Ambiguous rows read the same shifted either way: blank, full, and the two alternating rows.
    ambiguous = 0.8**8 + 0.2**8 + 2 * 0.2**4 * 0.8**4
    assert abs(report["fraction_of_probability_unambiguous"] - (1 - ambiguous)) < 1e-6
    for name in ("weights.png", "fantasies.png", "metrics.npz", "summary.md"):
        assert os.path.getsize(tmp_path / name) > 0
    row = run_module("experiments.report", str(tmp_path), timeout=60).stdout.splitlines()[-1]
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[5] == " ".join(f"{a:.2f}" for a in sorted(acc))
    assert cells[6] == f"{sum(a >= 0.9 for a in acc)} / 2"
    assert cells[7] == " ".join(str(int(p)) for p in sorted(pairs))


def _tiny_mnist(path, bad_value=None):
    rng = np.random.default_rng(0)
    split = {k: (rng.random((n, 784)) < 0.15).astype(np.uint8) for k, n in
             (("train", 200), ("valid", 50), ("test", 60))}
    if bad_value is not None:
        split["train"][3, 5] = bad_value
    np.savez(path, **split)


def test_mnist_on_user_files_trains_checkpoints_and_reports(run_module, tmp_path):
    data = tmp_path / "tiny.npz"
    _tiny_mnist(data)
    out = tmp_path / "out"
    # Every kind of layer on the way: DARN generative layers and prior, NADE recognition.
    args = [f"--data_path={data}", f"--output_dir={out}", "--layer_sizes=784,20,5",
            "--num_epochs=2", "--batch_size=20", "--test_samples=16", "--num_samples=3",
            "--generative=darn", "--recognition=nade:4", "--prior=darn"]
    proc = run_module("experiments.mnist", *args)
    with open(out / "test.json") as f:
        test = json.load(f)
    assert test["test_examples"] == 60 and test["test_importance_samples"] == 16
    nll = test["test_nll"][0]["values"][0]
    assert np.isfinite(nll) and 0 < nll < 784 * np.log(2)
    assert test["factorial_bernoulli_test_nll"] > 0
    assert "epoch 1.00" in proc.stderr and "held-out NLL estimate" in proc.stderr
    assert sorted(os.listdir(out / "checkpoints")) == ["1", "2"]
    table = run_module("experiments.report", str(out), timeout=60).stdout
    assert "test NLL (K=16, 60 images), median" in table and f"{nll:.2f}" in table
    row = run_module("experiments.report", "--table", str(out), timeout=60).stdout.splitlines()[2]
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[:4] == ["784-20-5 (P darn, prior darn; Q nade:4)", "rws K=3, insomnia 0.5, adam",
                         "learning_rate 0.001", "2"]
    assert cells[5] == f"{test['seconds_per_epoch']:.1f}"
    assert cells[7].startswith(f"**{nll:.2f}** ({nll:.2f}), K=16, 60 images")
    assert cells[8].startswith("`python -m experiments.mnist --data_path=")
    for name in ("dreams.png", "weights.png", "curves.png", "flags.txt", "results.json"):
        assert os.path.getsize(out / name) > 0
    # Started again with the same directory, the same kinds spelled otherwise (one per layer,
    # upper case, a leading zero): nothing left to train, the same test estimate.
    respelled = [a for a in args if not a.startswith(("--generative", "--recognition"))]
    again = run_module("experiments.mnist", *respelled, "--generative=darn,DARN",
                       "--recognition=nade:04")
    assert "resumed from checkpoint" in again.stderr
    with open(out / "test.json") as f:
        assert json.load(f)["test_nll"] == test["test_nll"]


def test_mnist_rejects_bad_data_before_compiling(run_module, tmp_path):
    data = tmp_path / "bad.npz"
    _tiny_mnist(data, bad_value=2)
    proc = run_module("experiments.mnist", f"--data_path={data}",
                      f"--output_dir={tmp_path / 'out'}", timeout=60, check=False)
    assert proc.returncode != 0
    assert "must contain only 0 and 1" in proc.stderr and "2" in proc.stderr
    assert "steps/s" not in proc.stderr


def test_mnist_names_a_missing_test_split_and_bad_test_flags(run_module, tmp_path):
    data = tmp_path / "train_only.npz"
    np.savez(data, train=np.zeros((10, 784), np.float32))
    proc = run_module("experiments.mnist", f"--data_path={data}",
                      f"--output_dir={tmp_path / 'out'}", timeout=60, check=False)
    assert proc.returncode == 2
    assert f"{data}: no test split found (it holds ['train'])" in proc.stderr
    for flag, message in (("--test_examples=0", "--test_examples must be positive, got 0"),
                          ("--test_examples=-5", "--test_examples must be positive, got -5"),
                          ("--generative=dran", "--generative: 'dran' is not a kind of layer"),
                          ("--recognition=sbn,darn,sbn", "--recognition names 3 kinds, but the "
                           "machine has 2 layer(s)")):
        proc = run_module("experiments.mnist", "--dataset=digits", flag,
                          f"--output_dir={tmp_path / 'out'}", timeout=60, check=False)
        assert proc.returncode == 2
        assert message in proc.stderr.strip().splitlines()[-1]
    proc = run_module("experiments.bars", "--prior=darn", f"--output_dir={tmp_path / 'out'}",
                      timeout=60, check=False)
    assert proc.returncode == 2 and "the bars task's metrics read affine" in proc.stderr
    proc = run_module("experiments.compare", "--configs=ws,rws_k5",
                      f"--output_dir={tmp_path / 'out'}", timeout=60, check=False)
    assert proc.returncode == 2 and "--configs: unknown ['rws_k5']" in proc.stderr
    assert not (tmp_path / "out").exists()


def test_a_negative_cpu_devices_is_refused(run_module, tmp_path):
    bad = run_module("experiments.bars", "--cpu_devices=-1", f"--output_dir={tmp_path / 'c'}",
                     timeout=60, check=False)
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines()[-1] == (
        "experiments.bars: error: --cpu_devices must be >= 0, got -1")
