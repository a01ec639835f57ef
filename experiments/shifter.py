r"""The shifter problem (Dayan, Hinton, Neal & Zemel 1995): does the top layer learn the shift?

Trains a grid x seeds of a 32-24-1 machine on 4x8 shifter images (a random row,
copied, over the same row shifted one place left or right), then asks of every
run how well its top units encode the shift direction
(:func:`wsjax.evaluation.direction_accuracy`: 0.5 is chance, 1.0 a perfect unit).
The defaults: 16 seeds of reweighted wake-sleep (K = 5, the recognition model
trained by the sleep phase alone on 100 dreams a step) with an activity band on
the hidden layer (``--activity_weight=10,0 --activity_ceiling=0.2``: a hidden unit
whose mean recognition probability leaves [0.02, 0.2] is pushed back,
:func:`wsjax.phases.activity_grads`; the top unit is left free). Without the band
no setting tried gets the direction into the top unit (README, Results).
Writes to --output_dir what experiments.sweep writes, direction.json (per run: the best top
unit's accuracy, and how many of the 16 direction-specific pairs of pixels some hidden unit
draws on its own, :func:`wsjax.data.shifter_masks`), weights.png
(the best run's first-layer generative fields, titled by their weight from the
top unit) and fantasies.png.

  python -m experiments.shifter --output_dir=runs/shifter
"""

import os

import jax
import jax.numpy as jnp
import numpy as np
from absl import app, flags

import wsjax
from experiments import common
from wsjax import data as data_lib
from wsjax import evaluation, plotting, tasks

common.define_flags(algorithm="rws", num_samples=5, insomnia=0.0, sleep_batch_size=100,
                    learning_rates=["1:2"], num_seeds=16, num_steps=100_000,
                    layer_sizes=["32", "24", "1"], lr_decay=0.1, init_biases="0:-3:-1.4",
                    init_scale=["0.1"], activity_weight=["10", "0"], activity_ceiling=["0.2"],
                    vectorize="runs", cpu_devices=0, output_dir="runs/shifter")
flags.DEFINE_integer("num_direction_samples", 200, "Recognition samples per image for the "
                     "direction test.")
flags.adopt_module_key_flags(common)  # --help lists the shared flags beside its own
FLAGS = flags.FLAGS


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    common.check_positive(num_direction_samples=FLAGS.num_direction_samples)
    task = tasks.shifter()
    trainer, hyperparams, axes = common.build(task)
    result, summary = common.run(task, trainer, hyperparams, axes)

    images, probs, p_right = data_lib.shifter_distribution()
    clear = (p_right == 0) | (p_right == 1)  # images whose direction is determined
    args = [jnp.asarray(a[clear]) for a in (images, probs, p_right)]
    flat = common.flat_runs(result)
    accuracy = jax.jit(jax.vmap(lambda p: evaluation.direction_accuracy(
        jax.random.key(FLAGS.seed), p, *args, FLAGS.num_direction_samples)))
    runs_shape = (*result.grid_shape, len(result.seeds))
    best_unit = np.asarray(accuracy(flat)).max(-1).reshape(runs_shape)
    masks = data_lib.shifter_masks()
    pairs = common.final_parts_drawn(result, masks)
    report = {"best_top_unit_accuracy": common.per_point(summary["rows"], best_unit),
              "pairs_drawn": common.per_point(summary["rows"], pairs),
              "fraction_of_probability_unambiguous": float(probs[clear].sum()),
              "median_over_all_runs": float(np.median(best_unit)),
              "fraction_of_runs_at_least_0.9": float(np.mean(best_unit >= 0.9))}
    common.write_json("direction.json", report)

    out, best = FLAGS.output_dir, common.best_params(result, summary)
    fields = np.asarray(best["generative"][0]["w"]).T  # [n_1, 32]
    top_w = (np.asarray(best["generative"][1]["w"])[:, 0] if len(best["generative"]) > 1
             else np.zeros(len(fields)))
    plotting.plot_image_grid(fields, (4, 8), os.path.join(out, "weights.png"), signed=True,
                             num_cols=6, labels=[f"top {w:+.1f}" for w in top_w],
                             title="first-layer generative fields of the best run; label: weight "
                                   "from the top unit")
    dreams, _ = jax.vmap(wsjax.sample_generative, in_axes=(0, None))(
        jax.random.split(jax.random.key(FLAGS.seed + 1), 24), best)
    plotting.plot_image_grid(dreams, (4, 8), os.path.join(out, "fantasies.png"), num_cols=6,
                             title="fantasies of the best run")
    print(f"of {pairs.size} runs: {int(np.sum(pairs == len(masks)))} draw all {len(masks)} "
          f"direction-specific "
          f"pairs; pairs drawn, median {np.median(pairs):g}, max {pairs.max()}")
    print(f"direction accuracy of the best top unit, median over runs: "
          f"{report['median_over_all_runs']:.3f}; runs >= 0.9: "
          f"{report['fraction_of_runs_at_least_0.9']:.2f}")


if __name__ == "__main__":
    common.run_main(main)
