"""The README and the documentation speak to users, and their figures come from results/.

The documentation build itself (.ci/run: Sphinx with warnings as errors) checks that every
public name is documented and executes the notebooks; these tests check, in a second, what
the build cannot: the README's shape and its results table, the summaries under results/,
what the package installs, and the text of every page.
"""

import glob
import importlib.metadata
import json
import os
import re
import tomllib

import pytest

import wsjax
from experiments import report
from tests.conftest import ROOT

README = os.path.join(ROOT, "README.md")
SUMMARIES = sorted(glob.glob(os.path.join(ROOT, "results", "*.json")))
GROUPS = sorted(glob.glob(os.path.join(ROOT, "results", "*", "")))  # a comparison each
GROUPED = sorted(glob.glob(os.path.join(ROOT, "results", "*", "*.json")))
PAGES = [README, *sorted(glob.glob(os.path.join(ROOT, "docs", "**", "*.md"), recursive=True))]
PAGES = [p for p in PAGES if "_generated" not in p and "_build" not in p]


def _read(path):
    with open(path) as f:
        return f.read()


def _code_blocks(text):
    return re.findall(r"^```(\w*)\n(.*?)^```", text, re.M | re.S)


def test_readme_is_a_guide_that_starts_with_the_two_commands():
    text = _read(README)
    assert len(text.splitlines()) <= 300
    lang, first = _code_blocks(text)[0]
    lines = first.splitlines()
    assert lang == "sh" and len(lines) == 2
    assert lines[0].endswith(".venv/bin/python -m experiments.bars --output_dir=runs/bars")
    assert "-m pytest" in lines[1] and "--doctest-modules wsjax" in lines[1]
    for section in ("## Install", "## Quickstart", "## Concepts", "## Your own data",
                    "## Composition", "## Notebooks", "## The command line",
                    "## Errors and safety", "## Results", "## Documentation"):
        assert section in text
    assert re.search(r"^\.venv/bin/python -m sphinx -W --keep-going .*-b html docs ", text, re.M)


# What a page must not say: one machine's paths, first person, commit hashes, work items.
FORBIDDEN = {
    "a path of one machine": re.compile(r"(/tmp/|/work/|/home/|scratch|shared/data)"),
    "first person": re.compile(r"\b(I|I'm|I've|my|mine|me)\b"),
    "a commit hash": re.compile(r"\b(?=[0-9a-f]*[a-f])(?=[0-9a-f]*[0-9])[0-9a-f]{7,40}\b"),
    "a work item": re.compile(r"(\bissue\b|#\d+\b|\bTODO\b|this session)", re.I),
}


@pytest.mark.parametrize("path", PAGES, ids=lambda p: os.path.relpath(p, ROOT))
def test_page_speaks_to_its_users(path):
    text = _read(path)
    for what, pattern in FORBIDDEN.items():
        found = pattern.search(text)
        assert not found, f"{what}: {found.group(0)!r} in {os.path.relpath(path, ROOT)}"


def test_readme_results_table_is_the_reports_output():
    summaries = [report.load(p) for p in SUMMARIES]
    table = report.headlines([s for s in summaries if s["kind"] == "run"])
    assert table in _read(README), "rerun: python -m experiments.report --headline results/"


def test_there_is_a_summary_for_every_results_page():
    names = {os.path.splitext(os.path.basename(p))[0] for p in SUMMARIES}
    included = set()
    for page in glob.glob(os.path.join(ROOT, "docs", "results", "*.md")):
        included |= set(re.findall(r"_generated/results/(\w+)\.md", _read(page)))
    tables = {n[len("table_"):] for n in included if n.startswith("table_")}
    included = {n for n in included if n != "headline" and not n.startswith(("machine_", "table_"))}
    assert included <= names, "a results page includes a summary not in results/"
    assert names <= included, "a summary in results/ that no results page shows"
    groups = {os.path.basename(os.path.dirname(g)) for g in GROUPS}
    assert tables == groups, "each folder of summaries in results/ is one page's table"


@pytest.mark.parametrize("group", GROUPS, ids=lambda g: os.path.basename(os.path.dirname(g)))
def test_each_run_of_a_comparison_has_its_own_look(group):
    # The runs of experiments.compare, named as it names them: estimator, then _k and K.
    names = [os.path.splitext(os.path.basename(p))[0] for p in GROUPED if p.startswith(group)]
    styles = report.line_styles(names)
    assert len(set(styles.values())) == len(names) > 10  # more runs than colours, none alike
    colours = {}
    for name in names:
        estimator, _, k = name.rpartition("_k")
        if not k.isdigit():
            estimator, k = name, None  # ws, nvil: one sample, one solid line each
        assert styles[name][1] == {"50": "-", "5": "--", "1": ":", None: "-"}[k], name
        assert colours.setdefault(estimator, styles[name][0]) == styles[name][0], name
    assert len(set(colours.values())) == len(colours)  # one colour per estimator


@pytest.mark.parametrize("path", SUMMARIES + GROUPED, ids=os.path.basename)
def test_summary_is_small_strict_json_and_prints(path):
    assert os.path.getsize(path) < 24_000
    with open(path) as f:
        summary = json.load(f, parse_constant=lambda c: pytest.fail(f"{c} in {path}"))
    assert summary["format"] == report.FORMAT and summary["command"]
    assert summary["machine"]["cpu_cores"] >= 1
    assert summary["command"].startswith("python -m experiments.")
    text = report.section(summary)
    assert text.count("\n|") >= 2  # a table
    if summary["kind"] == "run":
        rows = summary["results"]["summary"]["rows"]
        assert len(summary["results"]["final"]) == len(rows)
        assert report.headline(summary).startswith(f"| {summary['dataset']} |")


@pytest.fixture
def run_dir(tmp_path):
    """The files a bars sweep of 2 rates x 3 seeds x 4 evaluations writes, one run diverged."""
    import numpy as np

    rng = np.random.default_rng(0)
    kl = rng.random((2, 3, 4))
    kl[1, 2, -1] = np.nan
    labels = [{"learning_rate": "1"}, {"learning_rate": "2:4"}]
    finals = [kl[i, :, -1].tolist() for i in range(2)]
    rows = []
    for i, values in enumerate(finals):
        ok = np.asarray([v for v in values if np.isfinite(v)])
        rows.append(dict(index=[i], labels=labels[i], diverged=int(np.isnan(values).sum()),
                         mean=ok.mean(), std=ok.std(), median=float(np.median(ok)),
                         min=ok.min(), max=ok.max(), best_seed=int(np.nanargmin(values))))
    results = dict(summary=dict(metric="kl_bits", axes=["learning_rate"], rows=rows,
                                best=None, best_point=0),
                   seconds=12.0, session_seconds=12.0, resumed_from=0,
                   axes={"learning_rate": ["1", "2:4"]},
                   final=[dict(labels=labels[i], values=finals[i]) for i in range(2)],
                   dataset="bars", algorithm={"name": "rws", "num_samples": 5},
                   layer_sizes=[16, 8, 1], command="python -m experiments.bars --num_seeds=3")
    structure = {name: [dict(labels=labels[i], values=[8, 7, 8]) for i in range(2)]
                 for name in ("bars_drawn", "best_top_unit_orientation_accuracy")}
    out = tmp_path / "run"
    out.mkdir()
    for name, payload in (("results", results), ("structure", structure)):
        with open(out / f"{name}.json", "w") as f:
            json.dump(payload, f)
    np.savez(out / "metrics.npz", kl_bits=kl, step=np.arange(1, 5) * 100, seeds=np.arange(3),
             grid_axes=np.array(["learning_rate"]), learning_rate=np.array([[1, 1], [2, 4]]))
    return str(out)


def test_summary_of_a_run_directory_prints_as_its_directory(run_dir, tmp_path):
    out = run_dir
    saved = tmp_path / "bars.json"
    with open(saved, "w") as f:
        f.write(report.dumps(report.summarize(out, with_machine=True)))
    assert report.report(str(saved)).splitlines()[1:] == report.report(out).splitlines()[1:]
    assert "| 2:4 | " in report.report(out) and " nan |" in report.report(out)
    with open(saved) as f:  # strict JSON: the diverged run is null, not NaN
        summary = json.load(f, parse_constant=lambda c: pytest.fail(c))
    assert summary["results"]["final"][1]["values"][2] is None
    curve = summary["curves"]["metrics"]["kl_bits"][0]
    assert len(curve["median"]) == len(summary["curves"]["step"])
    report.plot_curves(summary, str(tmp_path / "curves.png"))
    assert os.path.getsize(tmp_path / "curves.png") > 0


def test_one_version_and_only_the_library_in_the_wheel():
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        project = tomllib.load(f)
    assert "version" not in project["project"] and project["project"]["dynamic"] == ["version"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "wsjax.__version__"}
    assert project["tool"]["setuptools"]["packages"]["find"]["include"] == ["wsjax", "wsjax.*"]
    assert importlib.metadata.version("wsjax") == wsjax.__version__


def test_a_summary_names_no_folder_of_the_machine_it_ran_on():
    command = ("python -m experiments.mnist --data_path=/srv/data/mnist.npz "
               "--output_dir=runs/mnist --flagfile=../elsewhere/flags.txt")
    assert report._portable({"command": command, "files": ["/srv/a.npz", "../b/c.npz", "d/e"]}) == {
        "command": "python -m experiments.mnist --data_path=mnist.npz --output_dir=runs/mnist "
                   "--flagfile=flags.txt",
        "files": ["a.npz", "c.npz", "d/e"]}
