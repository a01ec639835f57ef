"""A grid point of a sweep gives bitwise the numbers of the same run swept alone (subprocesses).

Digits with RWS and Adam: the configuration in which vmapping more runs together changes the
last bits of the gradients (XLA on CPU picks its reduction code from the whole shape), so the
default layout (one grid point's seeds per block) is what this test holds to.
"""

import os

import numpy as np


def _metrics(out):
    with np.load(os.path.join(out, "metrics.npz")) as z:
        return {k: z[k] for k in z.files}


def test_a_grid_slice_equals_the_single_value_sweep(run_module, tmp_path):
    common = ["--dataset=digits", "--algorithm=rws", "--num_samples=3", "--optimizer=adam",
              "--learning_rates=0.01", "--num_seeds=2", "--num_steps=20", "--num_evals=1",
              "--batch_size=20"]
    grid, alone = str(tmp_path / "grid"), str(tmp_path / "alone")
    run_module("experiments.sweep", f"--output_dir={grid}", *common, "--grid=insomnia=0,0.5,1",
               fast_compile=False)
    run_module("experiments.sweep", f"--output_dir={alone}", *common, "--insomnia=1",
               fast_compile=False)
    g, a = _metrics(grid), _metrics(alone)
    assert list(g["grid_axes"]) == ["learning_rate", "insomnia"] and list(a["grid_axes"]) == [
        "learning_rate"]
    assert g["test_nll"].shape == (1, 3, 2, 1) and a["test_nll"].shape == (1, 2, 1)
    for name in ("test_nll", "train_nll", "iw_bound", "ess", "sleep_loss", "wake_p_loss"):
        np.testing.assert_array_equal(g[name][:, 2], a[name], err_msg=name)
    assert np.all(np.isfinite(g["test_nll"]))
    assert not np.array_equal(g["test_nll"][:, 0], g["test_nll"][:, 2])
