r"""Sigmoid belief nets on real images: binarized MNIST (the user's files) or scikit-learn's digits.

Trains a grid x seeds (one machine by default) with reweighted wake-sleep
(Bornschein & Bengio 2015) or classic wake-sleep and any optax optimizer;
evaluates on held-out data (the validation split where the files have one)
every epoch; checkpoints every evaluation (orbax) and resumes from the last
checkpoint when started again with the same --output_dir; and at the end
estimates the test log-likelihood with K = --test_samples importance samples
per image over the whole test split (or a fixed random subset). Writes to
--output_dir what experiments.sweep writes, test.json (final test NLL per run,
the factorial-Bernoulli baseline, timing), dreams.png and weights.png.

  python -m experiments.mnist --data_path=binarized_mnist.npz --algorithm=rws \
      --layer_sizes=784,200,200,200 --num_samples=5
  python -m experiments.mnist --dataset=digits          # built in: no download
"""

import os

import jax
import numpy as np
from absl import app, flags, logging

import wsjax
from experiments import common
from wsjax import evaluation, plotting, results, tasks

flags.DEFINE_enum("dataset", "mnist", ["mnist", "digits"],
                  "mnist: --data_path files; digits: built in.")
flags.DEFINE_string("data_path", None,
                    "Binarized MNIST file or directory (.npz, .amat, .mat, idx).")
flags.DEFINE_integer("num_epochs", None,
                     "Passes over the training set (default: 200 mnist, 300 digits).")
flags.DEFINE_integer("num_evals", None, "Held-out evaluations (and checkpoints) over the run "
                     "(default: one per epoch for mnist, 20 for digits).")
flags.DEFINE_integer("test_samples", 5000, "K for the final test log-likelihood estimate.")
flags.DEFINE_integer("test_examples", None, "Evaluate a fixed random subset of N test images "
                     "(default: all; a prefix would be biased: files are often ordered).")
common.define_flags(skip=("num_steps", "num_evals"), algorithm="rws", optimizer="adam",
                    learning_rates=None, num_seeds=1, batch_size=50, insomnia=0.5, lr_decay=0.1,
                    init_scale=["0.01"], output_dir="runs/mnist")
flags.adopt_module_key_flags(common)  # --help lists the shared flags beside its own
FLAGS = flags.FLAGS


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    for name in ("num_epochs", "num_evals", "test_examples"):
        if getattr(FLAGS, name) is not None:
            common.check_positive(**{name: getattr(FLAGS, name)})
    common.check_positive(test_samples=FLAGS.test_samples)
    try:
        task = tasks.load(FLAGS.dataset, FLAGS.data_path, valid_as_test=True)
    except (ValueError, OSError) as e:
        raise app.UsageError(str(e)) from None
    if FLAGS.learning_rates is None:
        FLAGS.learning_rates = ["0.001"] if task.name == "mnist" else ["0.01"]
    num_train = task.splits["train"].shape[0]
    epochs = FLAGS.num_epochs or (200 if task.name == "mnist" else 300)
    num_evals = FLAGS.num_evals or (epochs if task.name == "mnist" else 20)
    steps_per_eval = max(1, round(epochs * num_train / FLAGS.batch_size / num_evals))
    trainer, hyperparams, axes = common.build(task, steps_per_eval * num_evals, steps_per_eval)
    config = trainer.config
    logging.info("%s: %d training images; %s, layer sizes %s, %d steps of %d", task.name,
                 num_train, FLAGS.algorithm, config.layer_sizes, config.num_steps,
                 config.batch_size)

    def on_eval(e, metrics):
        epoch = (e + 1) * config.eval_every * config.batch_size / num_train
        logging.info("epoch %.2f: train NLL estimate %s, held-out NLL estimate %s (nats, K=100)",
                     epoch, " ".join(f"{v:.2f}" for v in metrics["train_nll"].ravel()),
                     " ".join(f"{v:.2f}" for v in metrics["test_nll"].ravel()))

    result, summary = common.run(task, trainer, hyperparams, axes, extra_identity=dict(
        data_path=FLAGS.data_path), on_eval=on_eval)
    if summary is None:
        return
    test = task.splits["test"]
    if FLAGS.test_examples is not None and FLAGS.test_examples < test.shape[0]:
        pick = np.random.default_rng(FLAGS.seed).permutation(test.shape[0])[:FLAGS.test_examples]
        test = test[np.sort(pick)]
    log_lik = evaluation.heldout_log_prob(
        jax.random.key(FLAGS.seed), result.state.params, test, FLAGS.test_samples,
        conditionals=trainer.algorithm.conditionals,
        on_batch=lambda done, total, s: logging.info("test log-likelihood: %d/%d images, %.0f s",
                                                     done, total, s))
    baseline = evaluation.factorial_baseline_nll(task.splits["train"], test)
    points = results.summarize(result, "test_nll")["rows"]
    epochs = config.num_steps * config.batch_size / num_train
    common.write_json("test.json", dict(
        dataset=task.name, test_examples=int(test.shape[0]),
        test_importance_samples=FLAGS.test_samples,
        test_nll=common.per_point(points, -log_lik),
        factorial_bernoulli_test_nll=baseline,
        epochs=epochs, train_seconds=result.seconds,
        train_seconds_this_process=result.session_seconds, resumed_from_eval=result.resumed_from,
        seconds_per_epoch=result.seconds / epochs))

    out, best = FLAGS.output_dir, common.best_params(result, summary)
    kinds = trainer.algorithm.conditionals
    dreams, _ = jax.vmap(lambda k: wsjax.sample_generative(k, best, kinds))(
        jax.random.split(jax.random.key(FLAGS.seed + 1), 64))
    plotting.plot_image_grid(dreams, task.image_shape, os.path.join(out, "dreams.png"), num_cols=8,
                             title=f"dreams of {task.name} ({FLAGS.algorithm})")
    fields = np.asarray(best["generative"][0]["w"]).T[:64]
    plotting.plot_image_grid(fields, task.image_shape, os.path.join(out, "weights.png"),
                             signed=True, num_cols=8,
                             title="first-layer generative weights (first 64 units)")
    for row in points:
        logging.info("%s: test NLL (K=%d) per seed: %s", row["labels"], FLAGS.test_samples,
                     " ".join(f"{-v:.2f}" for v in log_lik[tuple(row["index"])]))
    print(f"{task.name} test NLL (nats, K={FLAGS.test_samples}, {test.shape[0]} images): best "
          f"{float(-np.nanmax(log_lik)):.2f}, factorial Bernoulli baseline {baseline:.2f}")


if __name__ == "__main__":
    common.run_main(main)
