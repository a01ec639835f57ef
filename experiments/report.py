r"""Print the Markdown results table of finished runs, from their files alone.

  python -m experiments.report runs/bars [runs/other ...]
  python -m experiments.report --table runs/mnist_ws runs/mnist_rws ...   # one table, a row per run

For each run directory (written by any experiment: ``results.json``, and ``test.json``
when the experiment wrote one) prints the command that made it, its runs and wall time, and
one row per grid point: the final metric's median, mean +- std and best over seeds, the
diverged runs and every seed's final value, sorted; with a ``test.json`` (experiments.mnist)
also the final test NLL and the epochs; with a ``direction.json`` (experiments.shifter) the best
top unit's direction accuracy of every seed and, where recorded, how many of the 16
direction-specific pairs its hidden units draw; with a ``structure.json`` (experiments.bars) the runs
whose hidden units draw every bar and whose top unit tells the orientation. With ``--table``, one
table over all the directories instead: a row per run directory and grid point with its machine, algorithm, epochs, wall time,
final metric, test NLL and command (the MNIST table of the README). The README's results tables
are this output.
"""

import json
import math
import os

import numpy as np
from absl import app, flags

from experiments import common

flags.DEFINE_bool("table", False, "One table over all the run directories, a row per run and "
                  "grid point, instead of a section per directory.")
FLAGS = flags.FLAGS


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


def report(run_dir: str) -> str:
    """The Markdown section of one run directory."""
    results = _read(os.path.join(run_dir, "results.json"))
    if results is None:
        raise app.UsageError(f"{run_dir}: no results.json (not a finished run of the kit)")
    test = _read(os.path.join(run_dir, "test.json"))
    direction = _read(os.path.join(run_dir, "direction.json"))
    structure = _read(os.path.join(run_dir, "structure.json"))
    summary = results["summary"]
    metric, axes = summary["metric"], summary["axes"]
    finals = _by_labels(results["final"])
    num_runs = sum(len(v) for v in finals.values())
    digits = 2 if metric.endswith("nll") else 3
    lines = [f"#### {results.get('dataset', os.path.basename(run_dir))}: {run_dir}", ""]
    command = results.get("command")
    lines.append((f"`{command}`" if command else "(command not recorded)")
                 + f": {num_runs} runs, " + (f"{results['seconds']:.0f} s of training"
                                             if results.get("seconds") is not None
                                             else "training time not recorded")
                 + (f" (resumed from evaluation {results['resumed_from']})"
                    if results.get("resumed_from") else "") + ".")
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
        drawn, oriented = ({k: np.asarray(v, float)
                            for k, v in _by_labels(structure[name]).items()}
                           for name in ("bars_drawn", "best_top_unit_orientation_accuracy"))
    head.append("every seed, sorted")
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in summary["rows"]:
        key = tuple(sorted(row["labels"].items()))
        values = np.asarray(finals[key], float)
        cells = [row["labels"][a] for a in axes]
        cells += [_fmt(row["median"], digits), f"{_fmt(row['mean'], digits)} +- "
                  f"{_fmt(row['std'], digits)}", _fmt(row["min"], digits), str(row["diverged"])]
        if test:
            t = np.asarray(tests[key], float)
            ok = t[np.isfinite(t)]
            cells += [_fmt(float(np.median(ok)) if ok.size else None, 2),
                      _fmt(float(ok.min()) if ok.size else None, 2)]
        if direction:
            acc = np.sort(np.asarray(accuracy[key], float))
            cells += [" ".join(_fmt(v, 2) for v in acc), f"{int(np.sum(acc >= 0.9))} / {acc.size}"]
            if pairs:
                cells.append(" ".join(str(int(v)) for v in np.sort(pairs[key])))
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


def table(run_dirs) -> str:
    """One Markdown table over run directories: a row per directory and grid point."""
    head = ["machine", "algorithm", "grid point", "epochs", "training", "s / epoch",
            "final metric (median)", "test NLL, median (best)", "command"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for run_dir in run_dirs:
        results = _read(os.path.join(run_dir, "results.json"))
        if results is None:
            raise app.UsageError(f"{run_dir}: no results.json (not a finished run of the kit)")
        settings = _read(os.path.join(run_dir, "sweep.json")) or {}
        test = _read(os.path.join(run_dir, "test.json"))
        algo = settings.get("algorithm", {})
        name = algo.get("name", results.get("algorithm", "?"))
        if name == "rws":
            name += f" K={algo.get('num_samples')}"
            insomnia = settings.get("hyperparams", {}).get("insomnia")
            if insomnia is not None:
                name += f", insomnia {insomnia:g}"
        if algo.get("optimizer"):
            name += f", {algo['optimizer']}"
        sizes = results.get("layer_sizes") or settings.get("layer_sizes") or []
        summary, metric = results["summary"], results["summary"]["metric"]
        tests = _by_labels(test["test_nll"]) if test else {}
        epochs = test["epochs"] if test else None
        per_epoch = test.get("seconds_per_epoch") if test else None
        for row in summary["rows"]:
            key = tuple(sorted(row["labels"].items()))
            point = ", ".join(f"{a} {row['labels'][a]}" for a in summary["axes"])
            cells = ["-".join(str(n) for n in sizes), name, point,
                     "" if epochs is None else f"{epochs:g}",
                     "not recorded" if results.get("seconds") is None
                     else f"{results['seconds'] / 60:.1f} min",
                     "" if per_epoch is None else f"{per_epoch:.1f}",
                     f"{metric} {_fmt(row['median'], 2)}"]
            if key in tests:
                t = np.asarray(tests[key], float)
                ok = t[np.isfinite(t)]
                cells.append(f"**{_fmt(float(np.median(ok)), 2)}** ({_fmt(float(ok.min()), 2)}), "
                             f"K={test['test_importance_samples']}, {test['test_examples']} images"
                             if ok.size else "nan")
            else:
                cells.append("")
            command = results.get("command")
            cells.append(f"`{command}`" if command else "(not recorded)")
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv):
    if len(argv) < 2:
        raise app.UsageError("give one or more run directories: python -m experiments.report DIR...")
    for run_dir in argv[1:]:
        if not os.path.isdir(run_dir):
            raise app.UsageError(f"{run_dir}: not a directory")
    if FLAGS.table:
        print(table(argv[1:]), end="")
    else:
        print("\n".join(report(d) for d in argv[1:]), end="")


if __name__ == "__main__":
    common.run_main(main)
