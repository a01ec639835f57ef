r"""Print the Markdown results tables of finished runs, from their files alone.

  python -m experiments.report runs/bars [runs/other ...]   # a section per run directory
  python -m experiments.report --table runs/mnist_ws runs/mnist_rws ...   # one row per run
  python -m experiments.report runs/bars --save=results/bars.json        # keep a summary
  python -m experiments.report results/                     # every kept summary's section
  python -m experiments.report --headline results/          # one line per summary
  python -m experiments.benchmark > bench.jsonl
  python -m experiments.report bench.jsonl --save=results/performance.json \
      --command="python -m experiments.benchmark"

For each run directory (written by any experiment: ``results.json``, and ``test.json``
when the experiment wrote one) prints the command that made it, its runs and wall time, and
one row per grid point: the final metric's median, mean +- std and best over seeds, the
diverged runs and every seed's final value, sorted; with a ``test.json`` (experiments.mnist)
also the final test NLL and the epochs; with a ``direction.json`` (experiments.shifter) the best
top unit's direction accuracy of every seed and, where recorded, how many of the 16
direction-specific pairs its hidden units draw; with a ``structure.json`` (experiments.bars) the
runs whose hidden units draw every bar and whose top unit tells the orientation. With
``--table``, one table over all the directories instead: a row per run directory and grid point
with its machine, algorithm, epochs, wall time, final metric, test NLL and command.

A *summary* is the few kilobytes of a run that its tables and figures need, as one JSON file:
the command, the settings that determine the numbers (``sweep.json``), the per-seed finals
and the median and quartile curves of the main metrics, and the machine it ran on. Absolute
paths in it (a data file's, say) are written as the file's name.
``--save`` writes one (run it on the machine that trained the run: it records that machine);
a summary, or a folder of them, prints exactly as its run directory does. The benchmark's JSON
lines (``python -m experiments.benchmark``, either suite) are kept the same way. The
documentation's results pages are this output, made from the summaries committed under
``results/`` when the documentation is built.
"""

import glob
import json
import math
import os
import platform
import re

import numpy as np
from absl import app, flags

from experiments import common

flags.DEFINE_bool("table", False, "One table over all the run directories, a row per run and "
                  "grid point, instead of a section per directory.")
flags.DEFINE_string("save", None, "Write the summary of the one run directory (or benchmark "
                    "JSON-lines file) given to this JSON file, then print its section.")
flags.DEFINE_string("command", None, "With --save of a benchmark file: the command that "
                    "printed it (a run directory records its own).")
flags.DEFINE_bool("headline", False, "One Markdown table with a line per summary: its headline "
                  "figure and the command that reproduces it.")
FLAGS = flags.FLAGS

FORMAT = "wsjax-summary/1"
# Per-evaluation metrics whose median and quartile curves a summary keeps, besides its metric.
CURVES = ("kl_bits", "test_nll", "train_nll", "bars_drawn", "orientation", "pairs_drawn")


def _read(path):
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as e:
        raise app.UsageError(f"{path}: cannot be read ({e})") from None


def _by_labels(points):
    """{sorted (axis, label) pairs: values} of a results file's per-point list."""
    return {tuple(sorted(p["labels"].items())): p["values"] for p in points}


def _fmt(x, digits=3):
    return "nan" if x is None or not math.isfinite(x) else f"{x:.{digits}f}"


def _floats(values):
    """Per-seed values as an array, None (a diverged run in a summary) as NaN."""
    return np.asarray([np.nan if v is None else v for v in values], float)


def _finite_or_none(tree):
    """NaN and infinities as None, so that a summary is strict JSON."""
    if isinstance(tree, dict):
        return {k: _finite_or_none(v) for k, v in tree.items()}
    if isinstance(tree, (list, tuple)):
        return [_finite_or_none(v) for v in tree]
    if isinstance(tree, float) and not math.isfinite(tree):
        return None
    return tree


def _portable(tree):
    """Absolute paths (a user's data file), and relative ones that leave the working
    directory, as their file name: a summary names no machine's folders. A run's numbers
    never depend on where its data file lies."""
    if isinstance(tree, dict):
        return {k: _portable(v) for k, v in tree.items()}
    if isinstance(tree, (list, tuple)):
        return [_portable(v) for v in tree]
    if isinstance(tree, str):
        if os.path.isabs(tree) or tree.startswith("../"):
            return os.path.basename(tree)
        return " ".join(re.sub(r"^(--\w+=)(/\S*|\.\./\S*)$", lambda m: m.group(1)
                               + os.path.basename(m.group(2)), word) for word in tree.split(" "))
    return tree


def machine() -> dict:
    """What the process runs on: CPU cores, architecture, JAX's backend and its devices."""
    import jax

    devices = jax.devices()
    return dict(cpu_cores=os.cpu_count(), architecture=platform.machine(),
                backend=jax.default_backend(), device_count=len(devices),
                device=str(getattr(devices[0], "device_kind", devices[0])),
                jax=jax.__version__)


def machine_line(m: dict) -> str:
    """The machine of a summary in words, for the documentation's pages."""
    if m is None:
        return "machine not recorded"
    text = f"{m['cpu_cores']}-core {m['architecture']} CPU"
    if m["backend"] != "cpu":
        text += f", {m['device_count']} x {m['device']} ({m['backend']})"
    else:
        text += ", no accelerator"
    return text + f"; jax {m['jax']}"


def _curves(run_dir, summary):
    """Median and quartiles over seeds of each kept metric, per grid point of ``summary``."""
    path = os.path.join(run_dir, "metrics.npz")
    if not os.path.exists(path):
        return None
    with np.load(path) as npz:
        names = [n for n in dict.fromkeys((summary["metric"], *CURVES)) if n in npz.files]
        out = {"step": npz["step"].tolist(), "metrics": {}}
        for name in names:
            values = np.asarray(npz[name], float)  # [*grid, seed, eval]
            rows = []
            for row in summary["rows"]:
                runs = values[tuple(row["index"])]  # [seed, eval]
                finite = np.isfinite(runs).any(axis=0)
                q25, median, q75 = (
                    np.where(finite, np.nanpercentile(np.where(finite, runs, 0), q, axis=0),
                             np.nan) for q in (25, 50, 75))
                rows.append(dict(labels=row["labels"], median=_round(median), q25=_round(q25),
                                 q75=_round(q75)))
            out["metrics"][name] = rows
    return out


def _round(values, digits=5):
    return [float(f"{v:.{digits}g}") if math.isfinite(v) else None for v in values]


def summarize(run_dir: str, with_machine: bool = False) -> dict:
    """The summary of one finished run directory (see the module docstring).

    ``with_machine`` records the machine this process runs on (for ``--save``, run where the
    run was trained); otherwise the summary's machine is None.
    """
    results = _read(os.path.join(run_dir, "results.json"))
    if results is None:
        raise app.UsageError(f"{run_dir}: no results.json (not a finished run of the kit)")
    summary = {"format": FORMAT, "kind": "run", "machine": machine() if with_machine else None,
               "command": results.get("command"), "dataset": results.get("dataset"),
               "seconds": results.get("seconds"), "resumed_from": results.get("resumed_from"),
               "results": {k: results[k] for k in ("summary", "final", "algorithm", "layer_sizes",
                                                    "axes") if k in results}}
    for name in ("sweep", "test", "direction", "structure"):
        found = _read(os.path.join(run_dir, f"{name}.json"))
        if found is not None:
            summary[name] = found
    summary["curves"] = _curves(run_dir, results["summary"])
    return _portable(_finite_or_none(summary))


def summarize_benchmark(path: str, command: str | None) -> dict:
    """The summary of a benchmark's output: its JSON lines, sorted by suite."""
    header, rows, floors, eager, kinds = None, [], [], [], []
    with open(path) as f:
        for line in f:
            if not line.startswith("{"):
                continue
            row = json.loads(line)
            if "backend" in row and "jax" in row:
                header = row
            elif "function" in row:
                eager.append(row)
            elif "ratio_to_sbn" in row:
                kinds.append(row)
            elif "products_us_per_step" in row:
                floors.append(row)
            elif "implementation" in row:
                rows.append(row)
    if not (header or eager):
        raise app.UsageError(f"{path}: no JSON lines of experiments.benchmark")
    return _finite_or_none({"format": FORMAT, "kind": "benchmark", "machine": machine(),
                            "command": command, "header": header, "steps": rows,
                            "floors": floors, "eager": eager, "kinds": kinds})


def load(path: str) -> dict:
    """A summary from its JSON file, or made from a run directory."""
    if os.path.isdir(path):
        return summarize(path)
    found = _read(path)
    if not isinstance(found, dict) or found.get("format") != FORMAT:
        raise app.UsageError(f"{path}: not a summary of experiments.report ({FORMAT})")
    return found


def dumps(summary: dict) -> str:
    """A summary as JSON, one line per list of numbers so that a diff reads per run."""

    def encode(node, indent):
        pad = " " * indent
        if isinstance(node, dict):
            if not node:
                return "{}"
            items = [f'{pad} {json.dumps(k)}: {encode(v, indent + 1)}' for k, v in node.items()]
            return "{\n" + ",\n".join(items) + "\n" + pad + "}"
        if isinstance(node, list) and any(isinstance(v, (dict, list)) for v in node):
            items = [f"{pad} {encode(v, indent + 1)}" for v in node]
            return "[\n" + ",\n".join(items) + "\n" + pad + "]"
        return json.dumps(node, allow_nan=False)

    return encode(summary, 0) + "\n"


def section(summary: dict, title: str | None = None) -> str:
    """The Markdown section of one run: its command line, then a row per grid point."""
    if summary.get("kind") == "benchmark":
        return benchmark_tables(summary)
    results = summary["results"]
    test, direction, structure = (summary.get(k) for k in ("test", "direction", "structure"))
    metric, axes = results["summary"]["metric"], results["summary"]["axes"]
    finals = _by_labels(results["final"])
    num_runs = sum(len(v) for v in finals.values())
    digits = 2 if metric.endswith("nll") else 3
    lines = [f"#### {summary.get('dataset') or title}: {title}", ""] if title else []
    command = summary.get("command")
    seconds = summary.get("seconds")
    lines.append((f"`{command}`" if command else "(command not recorded)")
                 + f": {num_runs} runs, " + (f"{seconds:.0f} s of training"
                                             if seconds is not None
                                             else "training time not recorded")
                 + (f" (resumed from evaluation {summary['resumed_from']})"
                    if summary.get("resumed_from") else "") + ".")
    lines.append("")
    head = [*axes, f"median {metric}", "mean +- std", "best", "diverged"]
    if test:
        k = test["test_importance_samples"]
        head += [f"test NLL (K={k}, {test['test_examples']} images), median", "best test NLL"]
        tests = _by_labels(test["test_nll"])
    if direction:
        head += ["best top unit's direction accuracy, every seed sorted", "runs >= 0.9"]
        accuracy = _by_labels(direction["best_top_unit_accuracy"])
        pairs = _by_labels(direction.get("pairs_drawn", []))
        if pairs:
            head.append("direction-specific pairs drawn (of 16), every seed sorted")
    if structure:
        head += ["every bar drawn", "orientation >= 0.9", "both"]
        drawn, oriented = ({k: _floats(v) for k, v in _by_labels(structure[name]).items()}
                           for name in ("bars_drawn", "best_top_unit_orientation_accuracy"))
    head.append("every seed, sorted")
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in results["summary"]["rows"]:
        key = tuple(sorted(row["labels"].items()))
        values = _floats(finals[key])
        cells = [row["labels"][a] for a in axes]
        cells += [_fmt(row["median"], digits), f"{_fmt(row['mean'], digits)} +- "
                  f"{_fmt(row['std'], digits)}", _fmt(row["min"], digits), str(row["diverged"])]
        if test:
            t = _floats(tests[key])
            ok = t[np.isfinite(t)]
            cells += [_fmt(float(np.median(ok)) if ok.size else None, 2),
                      _fmt(float(ok.min()) if ok.size else None, 2)]
        if direction:
            acc = np.sort(_floats(accuracy[key]))
            cells += [" ".join(_fmt(v, 2) for v in acc), f"{int(np.sum(acc >= 0.9))} / {acc.size}"]
            if pairs:
                cells.append(" ".join(str(int(v)) for v in np.sort(_floats(pairs[key]))))
        if structure:
            every, good = drawn[key] == 8, oriented[key] >= 0.9
            cells += [f"{int(every.sum())} / {every.size}", f"{int(good.sum())} / {good.size}",
                      f"{int((every & good).sum())} / {every.size}"]
        cells.append(" ".join(_fmt(v, digits) for v in np.sort(values)))
        lines.append("| " + " | ".join(cells) + " |")
    if test:
        lines += ["", f"{test['epochs']:g} epochs; factorial Bernoulli baseline "
                      f"{test['factorial_bernoulli_test_nll']:.2f} nats."]
    return "\n".join(lines) + "\n"


def _value(v):
    if isinstance(v, (list, tuple)):
        return ":".join(_value(x) for x in v)
    if isinstance(v, float):
        return f"{v:.6g}"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k}: {_value(x)}" for k, x in v.items()) + "}"
    return str(v)


def settings_line(summary: dict) -> str:
    """The settings that determine a run's numbers (its sweep.json), in one paragraph."""
    settings = summary.get("sweep")
    if not settings:
        return ""
    algo = settings.get("algorithm", {})
    parts = ["layers " + "-".join(str(n) for n in settings.get("layer_sizes", [])),
             ", ".join(f"{k} {_value(v)}" for k, v in algo.items()),
             f"batch {settings.get('batch_size')}", f"{settings.get('num_steps')} steps",
             f"{settings.get('num_seeds')} seeds from root seed {settings.get('seed')}",
             f"vectorize {settings.get('vectorize')}"]
    grid = ", ".join(f"{k} in {{{', '.join(_value(x) for x in v)}}}"
                     for k, v in settings.get("axes", {}).items())
    hyper = ", ".join(f"{k} {_value(v)}" for k, v in settings.get("hyperparams", {}).items()
                      if k not in settings.get("axes", {}))
    return ("Settings (`sweep.json`): " + "; ".join(parts) + f"; grid: {grid}; "
            f"hyperparameters: {hyper}.")


def report(run_dir: str) -> str:
    """The Markdown section of one run directory (or summary file), titled by its path."""
    return section(load(run_dir), run_dir)


def _machine(settings, results):
    """Layer sizes, and the kinds of layer where they are not the default SBN."""
    sizes = "-".join(str(n) for n in results.get("layer_sizes") or settings.get("layer_sizes")
                     or [])
    kinds = (settings.get("algorithm", {}) or results.get("algorithm", {})).get("kinds")
    if not kinds:
        return sizes
    return (f"{sizes} (P {','.join(kinds['generative'])}, prior {kinds['prior']}; "
            f"Q {','.join(kinds['recognition'])})")


def _algorithm_name(settings, results):
    algo = settings.get("algorithm", {}) or results.get("algorithm", {})
    name = algo.get("name", "?")
    if name == "rws":
        name += f" K={algo.get('num_samples')}"
        insomnia = settings.get("hyperparams", {}).get("insomnia")
        if insomnia is not None:
            name += f", insomnia {insomnia:g}"
        defensive = settings.get("hyperparams", {}).get("defensive")
        if defensive:
            name += f", defensive {defensive:g}"
    elif name == "vimco":
        name += f" K={algo.get('num_samples')}"
    if algo.get("optimizer"):
        name += f", {algo['optimizer']}"
    return name


def table(summaries) -> str:
    """One Markdown table over runs: a row per run and grid point."""
    head = ["machine", "algorithm", "grid point", "epochs", "training", "s / epoch",
            "final metric (median)", "test NLL, median (best)", "command"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for summary in summaries:
        results = summary["results"]
        settings = summary.get("sweep") or {}
        test = summary.get("test")
        name = _algorithm_name(settings, results)
        metric = results["summary"]["metric"]
        tests = _by_labels(test["test_nll"]) if test else {}
        epochs = test["epochs"] if test else None
        per_epoch = test.get("seconds_per_epoch") if test else None
        for row in results["summary"]["rows"]:
            key = tuple(sorted(row["labels"].items()))
            point = ", ".join(f"{a} {row['labels'][a]}" for a in results["summary"]["axes"])
            cells = [_machine(settings, results), name, point,
                     "" if epochs is None else f"{epochs:g}",
                     "not recorded" if summary.get("seconds") is None
                     else f"{summary['seconds'] / 60:.1f} min",
                     "" if per_epoch is None else f"{per_epoch:.1f}",
                     f"{metric} {_fmt(row['median'], 2)}"]
            if key in tests:
                t = _floats(tests[key])
                ok = t[np.isfinite(t)]
                cells.append(f"**{_fmt(float(np.median(ok)), 2)}** ({_fmt(float(ok.min()), 2)}), "
                             f"K={test['test_importance_samples']}, {test['test_examples']} images"
                             if ok.size else "nan")
            else:
                cells.append("")
            command = summary.get("command")
            cells.append(f"`{command}`" if command else "(not recorded)")
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def headline(summary: dict) -> str:
    """The one figure a reader looks for first in a run, in a few words."""
    if summary.get("kind") == "benchmark":
        return ""
    results = summary["results"]
    rows = results["summary"]["rows"]
    finals = _by_labels(results["final"])
    row = rows[results["summary"].get("best_point") or 0]
    key = tuple(sorted(row["labels"].items()))
    n = len(finals[key])
    metric = results["summary"]["metric"]
    settings = summary.get("sweep") or {}
    what = f"{_machine(settings, results)}, {_algorithm_name(settings, results)}, " \
           f"{n} seed{'s' * (n > 1)}"
    if metric == "kl_bits":
        values = _floats(finals[key])
        text = f"median KL(data \\|\\| model) {_fmt(row['median'])} bits, best {_fmt(row['min'])}"
        if summary.get("structure"):
            text += f"; {int(np.sum(values <= 0.15))} of {n} runs <= 0.15"
            drawn = _floats(_by_labels(summary["structure"]["bars_drawn"])[key])
            oriented = _floats(_by_labels(
                summary["structure"]["best_top_unit_orientation_accuracy"])[key])
            text += (f"; {int(np.sum((drawn == 8) & (oriented >= 0.9)))} of {n} draw all 8 bars"
                     " and tell the orientation")
        if summary.get("direction"):
            acc = _floats(_by_labels(summary["direction"]["best_top_unit_accuracy"])[key])
            text += f"; {int(np.sum(acc >= 0.9))} of {n} top units tell the shift (accuracy >= 0.9)"
    elif summary.get("test"):
        test = summary["test"]
        t = _floats(_by_labels(test["test_nll"])[key])
        text = (f"test NLL {_fmt(float(np.nanmedian(t)), 2)} nats after {test['epochs']:.0f} "
                f"epochs (K = {test['test_importance_samples']}, {test['test_examples']} test "
                f"images); factorial baseline {test['factorial_bernoulli_test_nll']:.2f}")
    else:
        text = f"median {metric} {_fmt(row['median'])}"
    return f"| {summary.get('dataset')} | {what} | {text} | `{summary.get('command')}` |"


# The order of the headline table: the toy problems, then real data; others after, by name.
ORDER = ("bars", "shifter", "digits", "mnist")


def headlines(summaries) -> str:
    """The headline table: a line per run summary, in ORDER."""
    def rank(summary):
        name = summary.get("dataset") or ""
        return (ORDER.index(name) if name in ORDER else len(ORDER), name)

    lines = [headline(s) for s in sorted(summaries, key=rank)]
    head = ["task", "layers, algorithm, seeds", "result", "command"]
    return "\n".join(["| " + " | ".join(head) + " |", "|" + "---|" * len(head),
                      *[line for line in lines if line]]) + "\n"


def benchmark_tables(summary: dict) -> str:
    """The tables of a benchmark summary: steps, their floors, eager calls (as it printed)."""
    lines = []
    header = summary.get("header")
    if summary.get("command"):
        lines += [f"`{summary['command']}`", ""]
    if summary.get("steps"):
        lines += [f"Ceilings at the start of the run (the tables' ceiling column is the square "
                  f"product timed again in each row's own rounds): fp32 matmul "
                  f"{header['matmul_square_gflops']:.1f} GFLOP/s (square product), one jit "
                  f"dispatch {header['jit_dispatch_us']:.1f} us, one uniform draw "
                  f"{header['uniform_draw_ns']:.2f} ns.", "",
                  "| machine | algorithm | implementation | scan steps/s | x minimal | "
                  "jit/step steps/s | x minimal | sweep of seeds, steps/s | x minimal | "
                  "GFLOP/s | ceiling GFLOP/s | of ceiling | compile s |",
                  "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for r in summary["steps"]:
            algo = f"RWS K={r['num_samples']}" if r["algorithm"] == "rws" else "wake-sleep"
            lines.append(
                f"| {r['size']} | {algo} | {r['implementation']} | {r['scan_steps_per_s']:.0f} | "
                f"{r['scan_steps_per_s_vs_minimal']:.2f} | {r['per_step_jit_steps_per_s']:.0f} | "
                f"{r['per_step_jit_steps_per_s_vs_minimal']:.2f} | {r['sweep_steps_per_s']:.0f} | "
                f"{r['sweep_steps_per_s_vs_minimal']:.2f} | {r['gflops']:.1f} | "
                f"{r['matmul_ceiling_gflops']:.1f} | "
                f"{r['fraction_of_matmul_ceiling']:.0%} | {r['compile_s']:.2f} |")
        lines.append("")
    if summary.get("floors"):
        lines += ["| machine | algorithm | minimal step, us | products alone, us | of the step | "
                  "exact draws, us | of the step | 16-bit draws, us | 8-bit draws, us | "
                  "ceiling GFLOP/s | products alone: of ceiling |",
                  "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for f in summary["floors"]:
            algo = "RWS" if f["algorithm"] == "rws" else "wake-sleep"
            lines.append(
                f"| {f['size']} | {algo} | {f['minimal_step_us']:.0f} | "
                f"{f['products_us_per_step']:.0f} | {f['products_share_of_minimal_step']:.0%} | "
                f"{f['draws_exact_us_per_step']:.0f} | "
                f"{f['draws_exact_share_of_minimal_step']:.0%} | "
                f"{f['draws_16bit_us_per_step']:.0f} | {f['draws_8bit_us_per_step']:.0f} | "
                f"{f['matmul_ceiling_gflops']:.1f} | {f['products_fraction_of_ceiling']:.0%} |")
        lines.append("")
    if summary.get("kinds"):
        lines += ["| machine | kind of every layer | RWS steps/s | of the SBN step's speed | "
                  "sampling alone, us | log-prob gradient alone, us | sampling: of the step |",
                  "|---|---|---:|---:|---:|---:|---:|"]
        for r in summary["kinds"]:
            lines.append(f"| {r['sizes']} | {r['kind']} | {r['steps_per_s']:.1f} | "
                         f"{r['ratio_to_sbn']:.3f} | {r['sample_us']:.0f} | "
                         f"{r['log_probs_grad_us']:.0f} | {r['sample_share_of_step']:.0%} |")
        lines.append("")
    if summary.get("eager"):
        lines += ["| function | eager call, ms | under `jax.jit`, ms | eager / jit | "
                  "uncompiled eager call, ms |", "|---|---:|---:|---:|---:|"]
        for r in summary["eager"]:
            lines.append(f"| `{r['function']}` | {r['eager_ms']:.3f} | {r['jit_ms']:.3f} | "
                         f"{r['ratio']:.2f} | {r['uncompiled_eager_ms']:.1f} |")
        lines.append("")
    return "\n".join(lines)


def plot_curves(summary: dict, path: str, metrics=None) -> None:
    """Median and quartile band over seeds of each kept curve, one panel per metric, as a PNG."""
    from matplotlib.figure import Figure  # no pyplot: no backend, no global state

    curves = summary["curves"]
    names = [m for m in (metrics or curves["metrics"]) if m in curves["metrics"]]
    fig = Figure(figsize=(4.2 * len(names), 3.2))
    axes = fig.subplots(1, len(names), squeeze=False)
    step = np.asarray(curves["step"])
    for ax, name in zip(axes[0], names, strict=True):
        for row in curves["metrics"][name]:
            label = ", ".join(f"{k} {v}" for k, v in row["labels"].items())
            median = _floats(row["median"])
            ax.plot(step, median, label=label)
            ax.fill_between(step, _floats(row["q25"]), _floats(row["q75"]), alpha=0.25)
        ax.set(xlabel="step", title=name)
        if name in ("kl_bits",):
            ax.set_yscale("log")
    axes[0][0].legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def line_styles(names) -> dict:
    """{name: (colour, line style)} for the runs of a comparison, named as experiments.compare
    names them (``rws_i0.5_k50``: estimator, then ``_k`` and K): one colour per estimator, one
    line style per K (solid for the largest), so no two runs look alike."""
    parsed = {}
    for name in names:
        estimator, sep, k = name.rpartition("_k")
        parsed[name] = (estimator, int(k)) if sep and k.isdigit() else (name, None)
    estimators = list(dict.fromkeys(e for e, _ in parsed.values()))
    ks = sorted({k for _, k in parsed.values() if k is not None}, reverse=True)
    styles = dict(zip(ks, ["-", "--", ":", "-."] * len(ks)))
    return {name: (f"C{estimators.index(e) % 10}", styles.get(k, "-"))
            for name, (e, k) in parsed.items()}


def plot_comparison(summaries: dict, path: str) -> None:
    """Median held-out NLL over seeds against steps and training time, one line per run
    (``summaries``: {name: summary} of experiments.mnist runs, as experiments.compare makes),
    styled by :func:`line_styles`.

    The time axis spreads each run's training time (compilation included) evenly over its
    steps: a step's cost is the same throughout a run.
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 4))
    by_step, by_time = fig.subplots(1, 2)
    styles = line_styles(summaries)
    for name, summary in summaries.items():
        curves = summary["curves"]
        step = np.asarray(curves["step"], float)
        median = _floats(curves["metrics"]["test_nll"][0]["median"])
        seconds = summary.get("seconds") or np.nan
        color, style = styles[name]
        by_step.plot(step, median, color=color, linestyle=style, label=name)
        by_time.plot(step / step[-1] * seconds, median, color=color, linestyle=style, label=name)
    by_step.set(xlabel="step", ylabel="held-out NLL (nats), median over seeds")
    by_time.set(xlabel="training time (s)", xscale="log")
    by_time.legend(fontsize="x-small", ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def expand(paths):
    """Run directories and summary files as given; a folder of summaries as its files, sorted."""
    out = []
    for path in paths:
        run_files = ("results.json", "sweep.json")
        if os.path.isdir(path) and not any(os.path.exists(os.path.join(path, name))
                                           for name in run_files):
            found = sorted(glob.glob(os.path.join(path, "*.json")))
            if found:
                out += found
                continue
        out.append(path)
    return out


def main(argv):
    if len(argv) < 2:
        raise app.UsageError("give one or more run directories or summaries: "
                             "python -m experiments.report DIR...")
    for path in argv[1:]:
        if not os.path.exists(path):
            raise app.UsageError(f"{path}: no such run directory or summary")
    if FLAGS.save:
        if len(argv) != 2:
            raise app.UsageError("--save takes exactly one run directory or benchmark file")
        source = argv[1]
        summary = (summarize(source, with_machine=True) if os.path.isdir(source)
                   else summarize_benchmark(source, FLAGS.command))
        folder = os.path.dirname(FLAGS.save)
        if folder:
            os.makedirs(folder, exist_ok=True)
        with open(FLAGS.save, "w") as f:
            f.write(dumps(summary))
        print(section(summary, FLAGS.save), end="")
        return
    paths = expand(argv[1:])
    if FLAGS.table:
        print(table([load(p) for p in paths]), end="")
    elif FLAGS.headline:
        print(headlines([load(p) for p in paths]), end="")
    else:
        print("\n".join(section(load(p), p) for p in paths), end="")


if __name__ == "__main__":
    common.run_main(main)
