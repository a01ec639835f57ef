r"""Sigmoid belief nets on real images: binarized MNIST (the user's files) or scikit-learn's digits.

Trains one machine, or a few seeds / rates vmapped together, with reweighted
wake-sleep (Bornschein & Bengio 2015) or classic wake-sleep and any optax
optimizer; evaluates on held-out data every epoch; checkpoints every epoch (orbax)
and resumes from the last checkpoint when started again with the same
--output_dir; and at the end estimates the test log-likelihood with K = 5000
importance samples per image. Writes to --output_dir: flags.txt, sweep.json,
metrics.npz/.csv (train and held-out NLL estimates per epoch), summary.md,
results.json (final test NLL per run, the factorial-Bernoulli baseline, timing),
dreams.png, weights.png and curves.png.

  python -m experiments.mnist --data_path=binarized_mnist.npz --algorithm=rws \
      --layer_sizes=784,200,200,200 --num_samples=5
  python -m experiments.mnist --dataset=digits          # built in: no download
"""

import json
import math
import os
import time

from absl import app, flags, logging
import jax
import jax.numpy as jnp
import numpy as np
import optax

import wsjax
from experiments import common
from wsjax import loaders, plotting, runner, tasks

flags.DEFINE_enum("dataset", "mnist", ["mnist", "digits"], "mnist: --data_path files; digits: built in.")
flags.DEFINE_string("data_path", None, "Binarized MNIST file or directory (.npz, .amat, .mat, idx).")
flags.DEFINE_enum("algorithm", "rws", ["rws", "wake_sleep"], "Training algorithm.")
flags.DEFINE_list("layer_sizes", None, "Widths, visible first (default: 784,200,200,200 / 64,32,8).")
flags.DEFINE_integer("num_samples", 5, "K importance samples per example (rws).")
flags.DEFINE_float("insomnia", 0.5, "rws: weight of the wake-phase Q update against the sleep phase.")
flags.DEFINE_enum("optimizer", "adam", ["adam", "sgd"], "optax optimizer.")
flags.DEFINE_list("learning_rates", None, "Rates: 'e' or 'generative:recognition' "
                  "(default: 0.001 for mnist, 0.01 for digits).")
flags.DEFINE_float("lr_decay", 0.1, "Final rate / initial rate over the run (geometric).")
flags.DEFINE_integer("num_seeds", 1, "Seeds per rate, trained together.")
flags.DEFINE_integer("batch_size", 50, "Examples per step.")
flags.DEFINE_integer("num_epochs", None, "Passes over the training set (default: 200 mnist, 300 digits).")
flags.DEFINE_integer("num_evals", None, "Held-out evaluations (and checkpoints) over the run "
                     "(default: one per epoch for mnist, 20 for digits).")
flags.DEFINE_integer("test_samples", 5000, "K for the final test log-likelihood estimate.")
flags.DEFINE_integer("test_examples", None, "Evaluate a fixed random subset of N test images "
                     "(default: all; a prefix would be biased: files are often ordered).")
flags.DEFINE_integer("seed", 0, "Root seed.")
flags.DEFINE_string("output_dir", "runs/mnist", "Results, figures and checkpoints.")
flags.DEFINE_bool("overwrite", False, "Replace a different run found in --output_dir.")
FLAGS = flags.FLAGS

def build():
    """Check the flags, load and validate the data, and build the trainer (no compilation)."""
    rates = runner.parse_rates(FLAGS.learning_rates or (["0.001"] if FLAGS.dataset == "mnist" else ["0.01"]))
    common.check_positive(num_samples=FLAGS.num_samples, num_seeds=FLAGS.num_seeds,
                          batch_size=FLAGS.batch_size, lr_decay=FLAGS.lr_decay,
                          test_samples=FLAGS.test_samples)
    if FLAGS.num_evals is not None:
        common.check_positive(num_evals=FLAGS.num_evals)
    if FLAGS.num_epochs is not None:
        common.check_positive(num_epochs=FLAGS.num_epochs)
    if not 0 <= FLAGS.insomnia <= 1:
        raise flags.ValidationError(f"--insomnia must lie in [0, 1], got {FLAGS.insomnia}")
    try:
        task = tasks.load(FLAGS.dataset, FLAGS.data_path, valid_as_test=True)
    except (ValueError, FileNotFoundError) as e:
        raise flags.ValidationError(str(e)) from None
    sizes = common.parse_ints("layer_sizes", FLAGS.layer_sizes) if FLAGS.layer_sizes else task.layer_sizes
    if sizes[0] != task.layer_sizes[0]:
        raise flags.ValidationError(
            f"{task.name} images have {task.layer_sizes[0]} pixels, --layer_sizes starts with {sizes[0]}")
    num_train = task.data["train"].shape[0]
    epochs = FLAGS.num_epochs or (200 if task.name == "mnist" else 300)
    num_evals = FLAGS.num_evals or (epochs if task.name == "mnist" else 20)
    steps_per_eval = max(1, round(epochs * num_train / FLAGS.batch_size / num_evals))
    config = wsjax.TrainConfig(
        layer_sizes=sizes, num_steps=steps_per_eval * num_evals, batch_size=FLAGS.batch_size,
        sampler=task.sampler, algorithm=FLAGS.algorithm,
        num_samples=FLAGS.num_samples if FLAGS.algorithm == "rws" else None,
        insomnia=FLAGS.insomnia, optimizer={"adam": optax.adam, "sgd": optax.sgd}[FLAGS.optimizer],
        lr_decay=FLAGS.lr_decay, init_scale=0.01, eval_every=steps_per_eval, eval_fn=task.eval_fn)
    return task, wsjax.make_train(config), rates


def factorial_baseline_nll(train, test):
    """Test NLL in nats of independent Bernoulli pixels fitted to train (add-one smoothing)."""
    p = (train.sum(0) + 1.0) / (train.shape[0] + 2.0)
    return float(-np.mean(test @ np.log(p) + (1 - test) @ np.log1p(-p)))


def test_log_likelihood(params, test, num_samples, seed, batch=100):
    """Per-run mean log p(u) over ``test`` [n, d], K importance samples, in test batches: [R, S]."""
    estimate = jax.jit(jax.vmap(jax.vmap(
        lambda p, u: wsjax.estimate_log_prob(jax.random.key(seed), p, u, num_samples),
        in_axes=(0, None)), in_axes=(0, None)))
    total, start = 0.0, time.time()
    for i in range(0, test.shape[0], batch):
        part = test[i:i + batch]
        total = total + np.asarray(estimate(params, jnp.asarray(part))).sum(-1)
        done = min(i + batch, test.shape[0])
        if (i // batch) % 10 == 0 or done == test.shape[0]:
            logging.info("test log-likelihood: %d/%d images, %.0f s", done, test.shape[0],
                         time.time() - start)
    return total / test.shape[0]


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    try:
        task, trainer, rates = build()
    except (ValueError, flags.ValidationError) as e:
        raise app.UsageError(str(e)) from None
    out = FLAGS.output_dir
    resumed = common.claim_output_dir(FLAGS, __name__, ignore={"test_samples", "test_examples"})
    config = trainer.config
    num_train = task.data["train"].shape[0]
    logging.info("%s: %d training images; %s, layer sizes %s, %d steps of %d (%s)", task.name,
                 num_train, FLAGS.algorithm, config.layer_sizes, config.num_steps, config.batch_size,
                 "resuming" if resumed else "new run")

    def on_eval(e, metrics):
        epoch = (e + 1) * config.eval_every * config.batch_size / num_train
        logging.info("epoch %.2f: train NLL estimate %s, held-out NLL estimate %s (nats, K=100)", epoch,
                     " ".join(f"{v:.2f}" for v in metrics["train_nll"].ravel()),
                     " ".join(f"{v:.2f}" for v in metrics["test_nll"].ravel()))

    result = runner.run_sweep(trainer, rates, FLAGS.num_seeds, FLAGS.seed, task.data,
                              checkpoint_dir=os.path.join(out, "checkpoints"), on_eval=on_eval)
    summary = runner.write_results(out, result, "test_nll")

    split = (loaders.load_binarized_mnist(FLAGS.data_path) if task.name == "mnist"
             else loaders.load_digits())
    test = split["test"]
    if FLAGS.test_examples is not None and FLAGS.test_examples < test.shape[0]:
        pick = np.random.default_rng(FLAGS.seed).permutation(test.shape[0])[:FLAGS.test_examples]
        test = test[np.sort(pick)]
    trained_epochs = ((config.num_steps // config.eval_every - result.resumed_from)
                      * config.eval_every * config.batch_size / num_train)
    log_lik = test_log_likelihood(result.params, test, FLAGS.test_samples, FLAGS.seed)
    baseline = factorial_baseline_nll(split["train"], test)
    report = dict(summary=summary, dataset=task.name, algorithm=FLAGS.algorithm,
                  layer_sizes=list(config.layer_sizes), num_samples=FLAGS.num_samples,
                  test_examples=int(test.shape[0]), test_importance_samples=FLAGS.test_samples,
                  test_nll={runner.rate_label(r): (-log_lik[i]).tolist()
                            for i, r in enumerate(result.learning_rates)},
                  factorial_bernoulli_test_nll=baseline,
                  epochs=config.num_steps * config.batch_size / num_train,
                  train_seconds_this_process=result.seconds, resumed_from_eval=result.resumed_from,
                  seconds_per_epoch=(result.seconds / trained_epochs if trained_epochs else None))
    with open(os.path.join(out, "results.json"), "w") as f:
        json.dump(report, f, indent=1)

    b = summary["best"]
    best = jax.tree.map(lambda a: a[b["rate_index"], b["seed"]], result.params)
    dreams, _ = jax.vmap(wsjax.sample_generative, in_axes=(0, None))(
        jax.random.split(jax.random.key(FLAGS.seed + 1), 64), best)
    plotting.plot_image_grid(dreams, task.image_shape, os.path.join(out, "dreams.png"), num_cols=8,
                             title=f"dreams of {task.name} ({FLAGS.algorithm})")
    fields = np.asarray(best["generative"][0]["w"]).T[:64]
    plotting.plot_image_grid(fields, task.image_shape, os.path.join(out, "weights.png"), signed=True,
                             num_cols=8, title="first-layer generative weights (first 64 units)")
    labels = [row["rate"] for row in summary["rows"]]
    plotting.plot_learning_curves(result.metrics["step"], result.metrics["test_nll"], labels,
                                  os.path.join(out, "curves.png"), "held-out NLL estimate, nats")
    for i, r in enumerate(result.learning_rates):
        logging.info("rate %s: test NLL (K=%d) per seed: %s", runner.rate_label(r), FLAGS.test_samples,
                     " ".join(f"{-v:.2f}" for v in log_lik[i]))
    print(f"{task.name} test NLL (nats, K={FLAGS.test_samples}): best {float(-log_lik.max()):.2f}, "
          f"factorial Bernoulli baseline {baseline:.2f}")


if __name__ == "__main__":
    app.run(main)
