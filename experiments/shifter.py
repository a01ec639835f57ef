r"""The shifter problem (Dayan, Hinton, Neal & Zemel 1995): does the top layer learn the shift?

Trains a learning-rate x seed sweep of wake-sleep on 4x8 shifter images (a random
row, copied, over the same row shifted one place left or right), then asks of
every run how well its top units encode the shift direction: for each distinct
unambiguous image, the recognition model's probability that a top unit is on,
averaged over the hidden layers below it, predicts "shifted right" when above
1/2; the accuracy (or one minus it: the code's sign is arbitrary) of the best
top unit, weighted by the images' probabilities, is reported per run. 0.5 is
chance, 1.0 a perfect direction unit. Writes to --output_dir the results of
the sweep (see experiments.bars), direction.json, weights.png (the best run's
first-layer generative fields, titled by their weight from the top unit) and
fantasies.png.

  python -m experiments.shifter --output_dir=runs/shifter
"""

import json
import os

from absl import app, flags, logging
import jax
import jax.numpy as jnp
import numpy as np

import wsjax
from experiments import common
from wsjax import data as data_lib
from wsjax import plotting, runner, tasks

flags.DEFINE_list("learning_rates", ["0.5:1", "1:2"], "Rates: 'e' or 'generative:recognition'.")
flags.DEFINE_integer("num_seeds", 8, "Seeds per rate.")
flags.DEFINE_integer("num_steps", 100_000, "Wake-sleep steps per run.")
flags.DEFINE_integer("batch_size", 10, "Images per step.")
flags.DEFINE_list("layer_sizes", ["32", "24", "1"], "Widths, visible first.")
flags.DEFINE_float("lr_decay", 0.1, "Final rate / initial rate (geometric).")
flags.DEFINE_string("init_biases", "0:-1.4:-1.4", "Initial biases 'prior:generative:recognition'.")
flags.DEFINE_list("init_scale", ["0.1"], "Standard deviation of the initial weights: one value "
                  "or one per layer of conditionals.")
flags.DEFINE_list("layer_rate_scales", ["1", "1"], "Rate multiplier per layer of conditionals: 'm' "
                  "or 'start:end' (geometric over the run); the prior takes the last.")
flags.DEFINE_integer("num_evals", 10, "Evaluations over each run.")
flags.DEFINE_integer("num_direction_samples", 200, "Recognition samples per image for the direction test.")
flags.DEFINE_integer("seed", 0, "Root seed.")
flags.DEFINE_string("output_dir", "runs/shifter", "Where results, figures and checkpoints go.")
flags.DEFINE_bool("overwrite", False, "Replace a different run found in --output_dir.")
FLAGS = flags.FLAGS


def direction_accuracy(key, params, images, probs, right, num_samples):
    """Accuracy of each top unit as a detector of the shift direction: [n_top].

    Args:
      images: distinct unambiguous shifter images [n, 32]; probs [n]; right [n] in {0, 1}.
    """
    def top_prob(k, u):
        keys = jax.random.split(k, num_samples)
        def one(kk):
            hs = wsjax.sample_recognition(kk, params, u)
            below = hs[-2] if len(hs) > 1 else u
            return jax.nn.sigmoid(wsjax.dense_logits(params["recognition"][-1], below))
        return jnp.mean(jax.vmap(one)(keys), axis=0)

    q = jax.vmap(top_prob)(jax.random.split(key, images.shape[0]), images)  # [n, n_top]
    weights = probs / jnp.sum(probs)
    acc = jnp.sum(weights[:, None] * ((q > 0.5) == (right[:, None] > 0.5)), axis=0)
    return jnp.maximum(acc, 1.0 - acc)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    try:
        rates = runner.parse_rates(FLAGS.learning_rates)
        sizes = common.parse_ints("layer_sizes", FLAGS.layer_sizes)
        common.check_positive(num_seeds=FLAGS.num_seeds, num_steps=FLAGS.num_steps,
                              batch_size=FLAGS.batch_size, lr_decay=FLAGS.lr_decay,
                              num_evals=FLAGS.num_evals,
                              num_direction_samples=FLAGS.num_direction_samples)
        task = tasks.shifter()
        if sizes[0] != 32:
            raise flags.ValidationError(f"shifter images have 32 pixels, --layer_sizes starts with {sizes[0]}")
        if FLAGS.num_steps % FLAGS.num_evals:
            raise flags.ValidationError("--num_steps must be a multiple of --num_evals")
        config = wsjax.TrainConfig(
            layer_sizes=sizes, num_steps=FLAGS.num_steps, batch_size=FLAGS.batch_size,
            sampler=task.sampler, lr_decay=FLAGS.lr_decay,
            init_scale=common.parse_floats("init_scale", FLAGS.init_scale),
            layer_rate_scales=common.parse_layer_rates(FLAGS.layer_rate_scales),
            init_biases=common.parse_biases(FLAGS.init_biases),
            eval_every=FLAGS.num_steps // FLAGS.num_evals, eval_fn=task.eval_fn)
        trainer = wsjax.make_train(config)
    except (ValueError, flags.ValidationError) as e:
        raise app.UsageError(str(e)) from None
    out = FLAGS.output_dir
    common.claim_output_dir(FLAGS, __name__, ignore={"num_direction_samples"})
    result = runner.run_sweep(trainer, rates, FLAGS.num_seeds, FLAGS.seed,
                              checkpoint_dir=os.path.join(out, "checkpoints"))
    summary = runner.write_results(out, result, "kl_bits",
                                   extra=dict(layer_sizes=list(sizes), dataset="shifter"))

    images, probs, p_right = data_lib.shifter_distribution()
    clear = (p_right == 0) | (p_right == 1)  # images whose direction is determined
    args = [jnp.asarray(a[clear]) for a in (images, probs, p_right)]
    accuracy_fn = jax.jit(jax.vmap(jax.vmap(
        lambda p: direction_accuracy(jax.random.key(FLAGS.seed), p, *args, FLAGS.num_direction_samples))))
    acc = np.asarray(accuracy_fn(result.params))  # [rate, seed, n_top]
    best_unit_acc = acc.max(axis=-1)
    report = {"best_top_unit_accuracy": {row["rate"]: best_unit_acc[r].tolist()
                                         for r, row in enumerate(summary["rows"])},
              "fraction_of_probability_unambiguous": float(probs[clear].sum()),
              "median_over_all_runs": float(np.median(best_unit_acc))}
    with open(os.path.join(out, "direction.json"), "w") as f:
        json.dump(report, f, indent=1)
    for r, row in enumerate(summary["rows"]):
        logging.info("rate %s: direction accuracy of the best top unit per seed: %s", row["rate"],
                     " ".join(f"{a:.3f}" for a in best_unit_acc[r]))

    b = summary["best"]
    best = jax.tree.map(lambda a: a[b["rate_index"], b["seed"]], result.params)
    fields = np.asarray(best["generative"][0]["w"]).T  # [n_1, 32]
    top_w = np.asarray(best["generative"][1]["w"])[:, 0] if len(sizes) > 2 else np.zeros(len(fields))
    plotting.plot_image_grid(fields, (4, 8), os.path.join(out, "weights.png"), signed=True, num_cols=6,
                             labels=[f"top {w:+.1f}" for w in top_w],
                             title="first-layer generative fields of the best run; label: weight from the top unit")
    dreams, _ = jax.vmap(wsjax.sample_generative, in_axes=(0, None))(
        jax.random.split(jax.random.key(FLAGS.seed + 1), 24), best)
    plotting.plot_image_grid(dreams, (4, 8), os.path.join(out, "fantasies.png"), num_cols=6,
                             title="fantasies of the best run")
    print(runner.summary_markdown(summary), end="")
    print(f"direction accuracy of the best top unit, median over runs: {report['median_over_all_runs']:.3f}")


if __name__ == "__main__":
    app.run(main)
