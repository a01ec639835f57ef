"""The experiments' output-directory policy, in process: claims, resumes, refusals, overwrites."""

import os

import pytest

from experiments import outputs


def _claim(path, identity, overwrite=False):
    return outputs.prepare_output_dir(str(path), identity, overwrite)


def test_a_new_directory_is_claimed_and_the_same_sweep_resumes(tmp_path):
    out = tmp_path / "out"
    assert _claim(out, {"seed": 0, "rates": (1.0, 2.0)}) is False
    assert (out / "sweep.json").exists()
    assert _claim(out, {"seed": 0, "rates": [1.0, 2.0]}) is True  # tuples and lists alike


def test_a_different_sweep_is_refused_naming_what_differs(tmp_path):
    _claim(tmp_path, {"seed": 0, "num_steps": 10})
    with pytest.raises(FileExistsError, match="seed: 0 there, 1 now"):
        _claim(tmp_path, {"seed": 1, "num_steps": 10})


def test_overwrite_clears_only_the_kits_outputs(tmp_path):
    _claim(tmp_path, {"seed": 0})
    for name in ("metrics.npz", "summary.md", "curves.png"):
        (tmp_path / name).write_text("old")
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "1").write_text("old")
    assert _claim(tmp_path, {"seed": 1}, overwrite=True) is False
    assert sorted(os.listdir(tmp_path)) == ["sweep.json"]


def test_overwrite_refuses_a_directory_holding_anything_else_and_deletes_nothing(tmp_path):
    _claim(tmp_path, {"seed": 0})
    (tmp_path / "metrics.npz").write_text("old")
    (tmp_path / "my_notes.txt").write_text("mine")
    (tmp_path / ".git").mkdir()
    with pytest.raises(FileExistsError,
                       match=r"files the kit did not write \(\.git, my_notes\.txt\)"):
        _claim(tmp_path, {"seed": 1}, overwrite=True)
    assert sorted(os.listdir(tmp_path)) == [".git", "metrics.npz", "my_notes.txt", "sweep.json"]


def test_a_directory_without_sweep_json_is_never_touched(tmp_path):
    (tmp_path / "data.csv").write_text("x")
    for overwrite in (False, True):
        with pytest.raises(FileExistsError, match="not written by wsjax; nothing was deleted"):
            _claim(tmp_path, {"seed": 0}, overwrite=overwrite)
    assert os.listdir(tmp_path) == ["data.csv"]


def test_an_output_dir_that_is_a_file_is_refused(tmp_path):
    path = tmp_path / "file"
    path.write_text("x")
    with pytest.raises(NotADirectoryError, match="is a file"):
        _claim(path, {"seed": 0})


def test_the_library_names_none_of_the_experiments_files():
    # The runner writes what it is told to; the list of an experiment's files, and the policy
    # for claiming a directory, belong to experiments/ (the library stays application-free).
    import pathlib

    import wsjax
    from wsjax import runner

    own = outputs.KIT_OUTPUTS - {"checkpoints", "metrics.npz", "metrics.csv", "summary.md",
                                 "results.json", "curves.png", "final_vs_axis.png"}
    for path in pathlib.Path(wsjax.__file__).parent.glob("*.py"):
        text = path.read_text()
        assert not [name for name in own if name in text], path.name
    assert not hasattr(runner, "KIT_OUTPUTS") and not hasattr(runner, "prepare_output_dir")
