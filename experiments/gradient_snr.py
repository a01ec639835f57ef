r"""Gradient signal-to-noise ratio against K for RWS, VIMCO and NVIL, on a machine small enough to
enumerate (wsjax.evaluation.gradient_quality).

A machine with Gaussian random weights (--init_scale) dreams a batch of --batch_size examples;
at those params and that batch each estimator draws --num_draws gradient estimates per K, and
the oracle compares them with the exact gradient of the estimator's target: bias, variance,
the per-parameter signal-to-noise ratio |E[g]| / std[g] (Rainforth et al. 2018), cosine to
the target, for the generative and the recognition half. Writes gradient_snr.png (SNR vs K,
one panel per half), gradient_snr.json (every row, the settings and the command) and
flags.txt into --output_dir, and logs the table.

  python -m experiments.gradient_snr --output_dir=runs/gradient_snr
  python -m experiments.gradient_snr --layer_sizes=5,2 --num_samples=1,2,5,10,20,50,100 \
      --output_dir=runs/gradient_snr_small
"""

import json
import math
import os
import sys

import jax
from absl import app, flags, logging

import wsjax
from wsjax.evaluation import ESTIMATORS, gradient_quality

flags.DEFINE_list("layer_sizes", ["6", "3"], "Widths, visible first (few hidden units).")
flags.DEFINE_float("init_scale", 1.0, "Standard deviation of the random weights.")
flags.DEFINE_integer("batch_size", 4, "Examples in the batch (dreams of the machine).")
flags.DEFINE_list("num_samples", ["1", "2", "5", "10", "20", "50"],
                  "Values of K (VIMCO needs K >= 2; NVIL is measured at K = 1 only).")
flags.DEFINE_integer("num_draws", 2000, "Gradient estimates per estimator and K.")
flags.DEFINE_list("estimators", list(ESTIMATORS), "Estimators to measure.")
flags.DEFINE_integer("seed", 0, "Root seed: the machine, the batch and the draws.")
flags.DEFINE_string("output_dir", None, "Where the figure, the JSON and the flags go.")
flags.mark_flag_as_required("output_dir")
FLAGS = flags.FLAGS


def _ints(name, values):
    try:
        return tuple(int(v) for v in values)
    except ValueError:
        raise app.UsageError(f"--{name} must be integers, got {values}") from None


def _json_value(x):
    return None if isinstance(x, float) and not math.isfinite(x) else x


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    logging.info("devices: %s", jax.devices())
    sizes, ks = _ints("layer_sizes", FLAGS.layer_sizes), _ints("num_samples", FLAGS.num_samples)
    key_init, key_data, key_draws = jax.random.split(jax.random.key(FLAGS.seed), 3)
    try:
        params = wsjax.init(key_init, sizes, init_scale=FLAGS.init_scale)
        u, _ = wsjax.model.sample_down(key_data, params, FLAGS.batch_size)
        rows = gradient_quality(key_draws, params, u, FLAGS.estimators, ks, FLAGS.num_draws)
    except ValueError as e:
        raise app.UsageError(str(e)) from None

    os.makedirs(FLAGS.output_dir, exist_ok=True)
    FLAGS.append_flags_into_file(os.path.join(FLAGS.output_dir, "flags.txt"))
    title = (f"machine {'-'.join(map(str, sizes))}, batch {FLAGS.batch_size}, "
             f"{FLAGS.num_draws} draws per point")
    wsjax.plotting.plot_gradient_snr(rows, os.path.join(FLAGS.output_dir, "gradient_snr.png"),
                                     title=title)
    summary = dict(
        command="python -m experiments.gradient_snr " + " ".join(sys.argv[1:]),
        settings=dict(layer_sizes=sizes, init_scale=FLAGS.init_scale,
                      batch_size=FLAGS.batch_size, num_samples=ks, num_draws=FLAGS.num_draws,
                      estimators=FLAGS.estimators, seed=FLAGS.seed),
        rows=[{k: _json_value(v) for k, v in r._asdict().items()} for r in rows])
    with open(os.path.join(FLAGS.output_dir, "gradient_snr.json"), "w") as f:
        json.dump(summary, f, indent=1, allow_nan=False)
    lines = ["| estimator | K | half | SNR | bias | bias noise | variance | cosine |",
             "|---|---|---|---|---|---|---|---|"]
    lines += [f"| {r.estimator} | {r.num_samples} | {r.half} | {r.snr:.3g} | {r.bias:.3g} | "
              f"{r.bias_noise:.3g} | {r.variance:.3g} | {r.cosine:.4f} |" for r in rows]
    logging.info("%s\n%s", title, "\n".join(lines))


if __name__ == "__main__":
    app.run(main)
