"""The notebooks are stored clean and well-formed, and the documentation build executes them.

Every notebook runs top to bottom in a fresh kernel at its quick settings (WSJAX_QUICK=1)
once per CI run: in the documentation build (docs/conf.py: myst-nb executes each notebook and
fails the build on any error; .ci/run builds with warnings as errors). The tests here check,
without a kernel, what that execution relies on, and that the build keeps executing them.
"""

import ast
import glob
import os
import re

import nbformat
import pytest

from tests.conftest import ROOT

NOTEBOOKS = sorted(glob.glob(os.path.join(ROOT, "notebooks", "*.ipynb")))


def _code(path):
    nb = nbformat.read(path, as_version=4)
    return nb, [c for c in nb.cells if c.cell_type == "code"]


def test_there_are_the_five_numbered_notebooks():
    names = [os.path.basename(p) for p in NOTEBOOKS]
    assert len(names) >= 5 and [n[:3] for n in names[:5]] == ["01_", "02_", "03_", "04_", "05_"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=os.path.basename)
def test_notebook_is_stored_without_outputs_and_reads_wsjax_quick(path):
    nb, code = _code(path)
    assert all(not c.outputs and c.execution_count is None for c in code)
    assert 'os.environ.get("WSJAX_QUICK") == "1"' in code[0].source and "SEED" in code[0].source


@pytest.mark.parametrize("path", NOTEBOOKS, ids=os.path.basename)
def test_notebook_is_well_formed(path):
    nb, code = _code(path)
    nbformat.validate(nb)  # raises ValidationError on a malformed notebook
    assert nb.metadata.kernelspec.name == "python3"
    assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith("# ")
    for i, cell in enumerate(code):
        ast.parse(cell.source, filename=f"{os.path.basename(path)}, code cell {i + 1}")
    # No state of an earlier session: widget states, cell ids aside, are outputs in disguise.
    assert "widgets" not in nb.metadata


@pytest.mark.parametrize("path", NOTEBOOKS, ids=os.path.basename)
def test_notebook_imports_only_wsjax_and_its_dependencies(path):
    allowed = {"os", "csv", "tempfile", "math", "time", "functools", "itertools", "collections",
               "jax", "numpy", "matplotlib", "optax", "flax", "chex", "wsjax"}
    _, code = _code(path)
    tops = set()
    for cell in code:
        for node in ast.walk(ast.parse(cell.source)):
            if isinstance(node, ast.Import):
                tops |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                tops.add(node.module.split(".")[0])
    assert tops <= allowed, tops - allowed


def test_the_documentation_build_executes_every_notebook_and_fails_on_an_error():
    with open(os.path.join(ROOT, "docs", "conf.py")) as f:
        conf = f.read()
    assert re.search(r'^nb_execution_mode = "force"$', conf, re.M)
    assert re.search(r"^nb_execution_raise_on_error = True$", conf, re.M)
    assert re.search(r'^os\.environ\["WSJAX_QUICK"\] = "1"$', conf, re.M)
    with open(os.path.join(ROOT, "docs", "notebooks.md")) as f:
        assert "notebooks/*" in f.read()  # the toctree's glob takes every notebook
    assert os.path.realpath(os.path.join(ROOT, "docs", "notebooks")) == os.path.join(
        ROOT, "notebooks")
    with open(os.path.join(ROOT, "README.md")) as f:
        assert re.search(r"^\.venv/bin/python -m sphinx -W .*-b html docs ", f.read(), re.M)
    with open(os.path.join(ROOT, ".ci", "run")) as f:
        ci = f.read()
    assert "grep -E '^\\.venv/bin/python -m sphinx ' README.md" in ci and 'bash -c "$docs"' in ci
