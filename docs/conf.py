"""Sphinx configuration of the wsjax documentation.

Build (from the repository root, with the ``docs`` extra installed):

    python -m sphinx -W --keep-going -j auto -b html docs docs/_build/html

Before Sphinx reads any page, this file writes ``docs/_generated/`` (ignored by git):

* ``api/``: one page per public module of wsjax, made from the module's ``__all__``, and
  ``toplevel.md``, the table of ``wsjax.__all__``; so the reference follows the code.
  :func:`check_api` fails the build when a public name has no docstring or no entry.
* ``results/``: the tables and figures of every summary under ``results/``, printed by
  ``experiments.report`` (nothing on a results page is typed by hand); a folder of
  summaries there is one comparison, printed as one table (``report --table``).

The notebooks (``notebooks/``, stored without outputs) are executed once per build at their
quick settings (``WSJAX_QUICK=1``) by myst-nb; a cell that raises fails the build.
"""

import glob
import importlib
import inspect
import os
import pkgutil
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCS = os.path.join(ROOT, "docs")
GENERATED = os.path.join(DOCS, "_generated")
sys.path.insert(0, ROOT)  # wsjax and experiments from this checkout

# The notebooks' kernels inherit these: quick settings, the CPU, this checkout first, and
# the cheaper compiler settings of the tests (quick settings are dominated by compilation;
# see tests/conftest.py).
os.environ["WSJAX_QUICK"] = "1"
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [ROOT, os.environ.get("PYTHONPATH")]))
os.environ.setdefault("XLA_FLAGS", "--xla_backend_optimization_level=0 "
                                   "--xla_llvm_disable_expensive_passes=true "
                                   "--xla_cpu_use_fusion_emitters=false")
os.environ.pop("WSJAX_MNIST", None)

import wsjax  # noqa: E402

project = "wsjax"
author = "the wsjax authors"
copyright = "the wsjax authors"  # noqa: A001
release = version = wsjax.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "myst_nb",
]
source_suffix = {".rst": "restructuredtext", ".md": "myst-nb", ".ipynb": "myst-nb"}
# The generated fragments are included into pages, not pages themselves.
exclude_patterns = ["_build", "**.ipynb_checkpoints", "_generated/results", "_generated/api/*.md"]
html_theme = "furo"
html_title = f"wsjax {release}"
html_static_path = []

# The API reference: Google-style docstrings, signatures as written, members in source order.
autosummary_generate = False  # the pages are written by write_api_pages below
autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_default_options = {"show-inheritance": False}
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_rtype = False

# MyST and the notebooks.
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence"]
myst_heading_anchors = 3
nb_execution_mode = "force"
nb_execution_timeout = 600
nb_execution_raise_on_error = True
nb_execution_show_tb = True
nb_execution_in_temp = True
nb_merge_streams = True
suppress_warnings = ["mystnb.unknown_mime_type"]


# ---------------------------------------------------------------------------------------------
# The API reference, written from the code.


def public_modules():
    """wsjax's public modules: every submodule whose name does not start with an underscore."""
    names = [m.name for m in pkgutil.iter_modules(wsjax.__path__) if not m.name.startswith("_")]
    return [importlib.import_module(f"wsjax.{n}") for n in sorted(names)]


def public_names(module):
    """The names a module exports (its ``__all__``, less the modules it re-exports), then the
    functions and classes it defines under a public name without listing them there."""
    listed = [n for n in getattr(module, "__all__", [])
              if not inspect.ismodule(getattr(module, n))]
    defined = [n for n, obj in vars(module).items()
               if not n.startswith("_") and n not in listed
               and (inspect.isfunction(obj) or inspect.isclass(obj))
               and getattr(obj, "__module__", None) == module.__name__]
    return listed + defined


def _directive(module, name):
    obj = getattr(module, name)
    if inspect.isclass(obj):
        # A NamedTuple's fields are documented by its docstring's Attributes section.
        return "autoclass", [] if _is_tuple(obj) else ["   :members:"]
    if inspect.isfunction(obj) or inspect.isbuiltin(obj) or callable(obj) and hasattr(
            obj, "__wrapped__"):
        return "autofunction", []
    return "autodata", ["   :annotation:"]


def _is_tuple(cls):
    return issubclass(cls, tuple) and hasattr(cls, "_fields")


def module_page(module):
    """The reStructuredText page of one module: its docstring, a summary table, each name."""
    names = public_names(module)
    title = module.__name__
    lines = [title, "=" * len(title), "", f".. automodule:: {title}", ""]
    if names:
        lines += [f".. currentmodule:: {title}", "", ".. autosummary::", ""]
        lines += [f"   {n}" for n in names] + [""]
    for name in names:
        directive, options = _directive(module, name)
        lines += [f".. {directive}:: {title}.{name}", *options, ""]
    return "\n".join(lines)


def home_of(name):
    """The public module that documents a name of ``wsjax.__all__``."""
    obj = getattr(wsjax, name)
    for module in public_modules():
        if name in public_names(module) and getattr(module, name) is obj:
            return module.__name__
    return None


def toplevel_table():
    """``wsjax.__all__`` as a Markdown table: each name, where it is documented, its summary."""
    rows = ["| name | documented as | summary |", "|---|---|---|"]
    for name in wsjax.__all__:
        obj = getattr(wsjax, name)
        if inspect.ismodule(obj):
            target, role = obj.__name__, "mod"
        else:
            home = home_of(name)
            target, role = f"{home}.{name}", "obj"
        summary = (inspect.getdoc(obj) or "").strip().split("\n\n")[0].replace("\n", " ")
        # reStructuredText roles and literals as Markdown code, in a Markdown table.
        summary = re.sub(r":\w+:`~?([^`]+)`", r"`\1`", summary).replace("``", "`")
        summary = summary.replace("|", "\\|")
        rows.append(f"| `wsjax.{name}` | {{py:{role}}}`{target}` | {summary} |")
    return "\n".join(rows) + "\n"


def _has_docstring(module, name):
    obj = getattr(module, name)
    if inspect.isclass(obj) or inspect.isfunction(obj) or inspect.ismodule(obj) \
            or hasattr(obj, "__wrapped__"):
        doc = inspect.getdoc(obj) or ""
        # A NamedTuple without its own docstring gets "Name(field, ...)" from Python.
        return bool(doc) and not doc.startswith(f"{getattr(obj, '__name__', name)}(")
    from sphinx.pycode import ModuleAnalyzer

    analyzer = ModuleAnalyzer.for_module(module.__name__)
    analyzer.analyze()
    return ("", name) in analyzer.attr_docs


# Public names that have no docstring yet; each is a problem for the library's owner to fix
# (then drop it here: a name listed here that has a docstring also fails the build).
KNOWN_UNDOCUMENTED = set()


def undocumented():
    """Public names with no docstring (module attributes: no string literal after them)."""
    missing = []
    for module in public_modules():
        if not (module.__doc__ or "").strip():
            missing.append(module.__name__)
        missing += [f"{module.__name__}.{n}" for n in public_names(module)
                    if not _has_docstring(module, n)]
    return missing


def unplaced():
    """Names of ``wsjax.__all__`` that no public module's ``__all__`` documents."""
    return [n for n in wsjax.__all__
            if not inspect.ismodule(getattr(wsjax, n)) and home_of(n) is None]


def write_api_pages():
    folder = os.path.join(GENERATED, "api")
    os.makedirs(folder, exist_ok=True)
    for old in os.listdir(folder):
        os.remove(os.path.join(folder, old))
    for module in public_modules():
        _write(os.path.join(folder, f"{module.__name__}.rst"), module_page(module))
    _write(os.path.join(folder, "toplevel.md"), toplevel_table())


# ---------------------------------------------------------------------------------------------
# The results pages' tables and figures, printed by experiments.report from results/*.json.


def write_results():
    from experiments import report

    folder = os.path.join(GENERATED, "results")
    os.makedirs(folder, exist_ok=True)
    for old in os.listdir(folder):
        os.remove(os.path.join(folder, old))
    paths = report.expand([os.path.join(ROOT, "results")])
    summaries = {os.path.splitext(os.path.basename(p))[0]: report.load(p) for p in paths}
    for name, summary in summaries.items():
        text = [report.section(summary)]
        if summary.get("kind") == "run":
            text += ["", report.settings_line(summary)]
        if summary.get("kind") == "run" and summary.get("curves"):
            report.plot_curves(summary, os.path.join(folder, f"{name}.png"))
            text += ["", f"```{{image}} /_generated/results/{name}.png",
                     f":alt: learning curves of {name}", "```"]
        _write(os.path.join(folder, f"{name}.md"), "\n".join(text) + "\n")
    # Each results page states its machine once: that of the summaries it includes.
    for page in glob.glob(os.path.join(DOCS, "results", "*.md")):
        with open(page) as f:
            shown = [n for n in re.findall(r"_generated/results/(\w+)\.md", f.read())
                     if n in summaries]
        machines = list(dict.fromkeys(report.machine_line(summaries[n].get("machine"))
                                      for n in shown))
        if machines:
            page_name = os.path.splitext(os.path.basename(page))[0]
            _write(os.path.join(folder, f"machine_{page_name}.md"),
                   "Measured on a " + "; and on a ".join(machines) + ".\n")
    _write(os.path.join(folder, "headline.md"), report.headlines(
        [s for s in summaries.values() if s.get("kind") == "run"]))
    # A folder of summaries under results/ is one comparison: one table over its runs.
    for sub in sorted(glob.glob(os.path.join(ROOT, "results", "*", ""))):
        name = os.path.basename(os.path.dirname(sub))
        group = {os.path.splitext(os.path.basename(p))[0]: report.load(p)
                 for p in report.expand([sub])}
        report.plot_comparison(group, os.path.join(folder, f"table_{name}.png"))
        _write(os.path.join(folder, f"table_{name}.md"), "\n".join([
            report.table(list(group.values())),
            f"```{{image}} /_generated/results/table_{name}.png",
            f":alt: held-out NLL against steps and time, {name}", "```", ""]))


def _write(path, text):
    """Write only when the text changed, so that Sphinx rebuilds only what changed."""
    if os.path.exists(path):
        with open(path) as f:
            if f.read() == text:
                return
    with open(path, "w") as f:
        f.write(text)


# The docstrings write array shapes with Python's unpacking star, [*grid, seed] and
# (**overrides), outside inline literals: reStructuredText reads such a star as the start of
# emphasis and warns. Outside ``literals``, a star (or two) right after "[", "(" or ", " and
# right before a name that no star closes is escaped, so the shape prints as written.
_UNPACK = re.compile(r"(?:(?<=[\[(])|(?<=, ))(\*{1,2})(?=\w+(?![\w*]))")


def escape_unpacking_stars(app, what, name, obj, options, lines):
    for i, line in enumerate(lines):
        parts = line.split("``")
        parts[::2] = [_UNPACK.sub(lambda m: "\\*" * len(m.group(1)), p) for p in parts[::2]]
        lines[i] = "``".join(parts)


def check_api(app, env):
    """Fail the build (an error, so -W or not) when a public name lacks a docstring or page."""
    from sphinx.errors import ExtensionError

    missing = set(undocumented())
    problems = [f"no docstring: {n}" for n in sorted(missing - KNOWN_UNDOCUMENTED)]
    problems += [f"has a docstring now, drop it from KNOWN_UNDOCUMENTED in docs/conf.py: {n}"
                 for n in sorted(KNOWN_UNDOCUMENTED - missing)]
    problems += [f"wsjax.{n} is in no public module's __all__" for n in unplaced()]
    documented = set(env.get_domain("py").objects)
    for module in public_modules():
        for name in public_names(module):
            if f"{module.__name__}.{name}" not in documented:
                problems.append(f"not in the API reference: {module.__name__}.{name}")
    if problems:
        raise ExtensionError("the API reference is incomplete:\n  " + "\n  ".join(problems))


def write_hyperparameters():
    """The guide's hyperparameter table, from the kit's own table (wsjax.hyperparams)."""
    from wsjax import hyperparams

    _write(os.path.join(GENERATED, "hyperparameters.md"), hyperparams.markdown_table())


def setup(app):
    write_api_pages()
    write_results()
    write_hyperparameters()
    app.connect("autodoc-process-docstring", escape_unpacking_stars)
    app.connect("env-check-consistency", check_api)
