r"""The bars problem (Hinton, Dayan, Frey & Neal 1995): a learning-rate x seed sweep of wake-sleep.

Trains the paper's 16-8-1 Helmholtz machine on 4x4 bars images drawn fresh at every
step, every (rate, seed) run in one compiled program, and reports the exact
KL(data || model) in bits per run. Writes to --output_dir:

  flags.txt       --flagfile that reproduces the run
  sweep.json      the settings; started again with the same ones, the run resumes
  checkpoints/    orbax checkpoints of the whole sweep after every evaluation
  results.json    final KL per rate and seed, the summary, the settings
  metrics.npz     kl_bits, wake_loss, sleep_loss as [rate, seed, eval]; step [eval]
  metrics.csv     the same, one row per (rate, seed, eval)
  summary.md      per rate: mean, std, median, min, max of the final KL; the best run
  weights.png     generative weights of the best run, one 4x4 field per hidden unit
  fantasies.png   images dreamed by the best run
  kl_curves.png   KL against steps per rate (median and quartile band over seeds)
  kl_vs_rate.png  final KL against the generative rate

  python -m experiments.bars --output_dir=runs/bars
"""

import os

from absl import app, flags, logging
import jax
import jax.numpy as jnp
import numpy as np

import wsjax
from experiments import bars_lib, common
from wsjax import plotting, runner

flags.DEFINE_list("learning_rates", ["4:8", "4:16"],
                  "Rates to sweep: 'e' for both halves or 'generative:recognition'.")
flags.DEFINE_integer("num_seeds", 16, "Seeds per learning rate.")
flags.DEFINE_integer("num_steps", 100_000, "Wake-sleep steps per run.")
flags.DEFINE_integer("batch_size", 20, "Bars images per wake phase (and dreams per sleep phase).")
flags.DEFINE_list("layer_sizes", ["16", "8", "1"], "Widths, visible first.")
flags.DEFINE_float("lr_decay", 0.01, "Final rate / initial rate (geometric decay over the run).")
flags.DEFINE_list("init_scale", ["0", "1"],
                  "Standard deviation of the initial weights: one value, or one per layer of "
                  "conditionals (visible-hidden first).")
flags.DEFINE_list("layer_rate_scales", ["1", "0.01:10"],
                  "Rate multiplier per layer of conditionals (the prior takes the last): 'm', or "
                  "'start:end' for one that moves geometrically from start to end over the run.")
flags.DEFINE_string("init_biases", "-2.5:-2.5:-1.4",
                    "Initial biases 'prior:generative:recognition'.")
flags.DEFINE_integer("num_evals", 20, "Exact-KL evaluations over each run.")
flags.DEFINE_integer("seed", 0, "Root seed of the runs' keys.")
flags.DEFINE_string("output_dir", "runs/bars", "Where results, figures and checkpoints go.")
flags.DEFINE_bool("overwrite", False, "Replace a different run found in --output_dir.")
FLAGS = flags.FLAGS


def build():
    """Parse and check every flag; returns (trainer, rates). Raises before any compilation."""
    rates = runner.parse_rates(FLAGS.learning_rates)
    sizes = common.parse_ints("layer_sizes", FLAGS.layer_sizes)
    common.check_positive(num_seeds=FLAGS.num_seeds, num_steps=FLAGS.num_steps,
                          batch_size=FLAGS.batch_size, lr_decay=FLAGS.lr_decay,
                          num_evals=FLAGS.num_evals)
    try:
        config = bars_lib.bars_config(
            sizes, FLAGS.num_steps, FLAGS.batch_size, FLAGS.lr_decay,
            common.parse_floats("init_scale", FLAGS.init_scale), FLAGS.num_evals,
            common.parse_biases(FLAGS.init_biases),
            common.parse_layer_rates(FLAGS.layer_rate_scales))
    except ValueError as e:
        raise flags.ValidationError(str(e)) from None
    return wsjax.make_train(config), rates


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    try:
        trainer, rates = build()
    except (ValueError, flags.ValidationError) as e:
        raise app.UsageError(str(e)) from None
    out = FLAGS.output_dir
    common.claim_output_dir(FLAGS, __name__)
    logging.info("devices: %s", jax.devices())

    result = runner.run_sweep(trainer, rates, FLAGS.num_seeds, FLAGS.seed,
                              checkpoint_dir=os.path.join(out, "checkpoints"))
    samples = FLAGS.num_steps * FLAGS.batch_size
    summary = runner.write_results(
        out, result, "kl_bits",
        extra=dict(samples_per_run=samples, layer_sizes=list(trainer.config.layer_sizes)))
    final = result.metrics["kl_bits"][:, :, -1]
    for row in summary["rows"]:
        logging.info("rate %s: KL bits median %.3f mean %.3f +- %.3f min %.3f max %.3f",
                     row["rate"], row["median"], row["mean"], row["std"], row["min"], row["max"])
    b = summary["best"]
    logging.info("best run: rate %s seed %d, KL %.4f bits; all %d runs sorted: %s",
                 summary["rows"][b["rate_index"]]["rate"], b["seed"], b["value"], final.size,
                 " ".join(f"{v:.3f}" for v in np.sort(final.ravel())))
    logging.info("%d runs x %.2g samples in %.1f s", final.size, samples, result.seconds)

    best = jax.tree.map(lambda a: a[b["rate_index"], b["seed"]], result.params)
    fields = np.asarray(best["generative"][0]["w"]).T  # [n_1, 16]: hidden unit -> pixels
    labels = None
    if len(best["generative"]) == 2 and best["generative"][1]["w"].shape[1] == 1:
        labels = [f"top {w:+.1f}" for w in np.asarray(best["generative"][1]["w"])[:, 0]]
    plotting.plot_image_grid(fields, (4, 4), os.path.join(out, "weights.png"), signed=True,
                             num_cols=fields.shape[0], labels=labels,
                             title=f"generative weights of the best run (KL {b['value']:.3f} bits); "
                                   "label: weight from the top unit")
    keys = jax.random.split(jax.random.key(FLAGS.seed + 1), 40)
    dreams, _ = jax.vmap(wsjax.sample_generative, in_axes=(0, None))(keys, best)
    plotting.plot_image_grid(dreams, (4, 4), os.path.join(out, "fantasies.png"), num_cols=10,
                             title="fantasies of the best run")
    plotting.plot_learning_curves(result.metrics["step"], result.metrics["kl_bits"],
                                  [row["rate"] for row in summary["rows"]],
                                  os.path.join(out, "kl_curves.png"), "KL(data || model), bits",
                                  logy=True)
    plotting.plot_metric_vs_rate(result.learning_rates, final, os.path.join(out, "kl_vs_rate.png"),
                                 "KL, bits")
    print(runner.summary_markdown(summary), end="")


if __name__ == "__main__":
    app.run(main)
