r"""Learning-rate x seed sweeps for any data set and algorithm of the kit, on any devices.

Every (rate, seed) run is one slice of one compiled program, sharded over all
devices of all processes; results are checkpointed (orbax) so a killed sweep
resumes where it stopped. The output directory gets flags.txt (a --flagfile),
metrics.npz ([rate, seed, eval] arrays), metrics.csv (tidy), summary.md,
results.json, curves.png and final_vs_rate.png.

  python -m experiments.sweep --dataset=bars --algorithm=wake_sleep \
      --learning_rates=0.5,1,2,4 --num_seeds=16 --output_dir=runs/sweep_bars

Several hosts (or processes): run the same command on each with
--num_processes=N --process_id=i --coordinator_address=host0:port (or set
JAX_COORDINATOR_ADDRESS, JAX_NUM_PROCESSES, JAX_PROCESS_ID). Process 0 writes the files.
"""

import os

from absl import app, flags, logging
import jax
import numpy as np
import optax

import wsjax
from experiments import common
from wsjax import plotting, runner, tasks

flags.DEFINE_enum("dataset", "bars", list(tasks.TASKS), "Data set.")
flags.DEFINE_string("data_path", None, "MNIST file or directory (--dataset=mnist).")
flags.DEFINE_enum("algorithm", "wake_sleep", ["wake_sleep", "rws"], "Training algorithm.")
flags.DEFINE_list("learning_rates", ["0.5", "1", "2", "4"],
                  "Rates: 'e' for both halves or 'generative:recognition'.")
flags.DEFINE_integer("num_seeds", 16, "Seeds per rate.")
flags.DEFINE_integer("num_steps", 20_000, "Training steps per run.")
flags.DEFINE_integer("batch_size", 10, "Examples per step.")
flags.DEFINE_list("layer_sizes", None, "Widths, visible first (default: the data set's).")
flags.DEFINE_integer("num_samples", 5, "Importance samples per example (rws).")
flags.DEFINE_float("insomnia", 1.0, "rws: weight of the wake-phase recognition update (0: sleep).")
flags.DEFINE_enum("optimizer", "sgd", ["sgd", "adam"], "optax optimizer (sgd: the delta rules).")
flags.DEFINE_float("lr_decay", 0.1, "Final rate / initial rate (geometric).")
flags.DEFINE_float("init_scale", 0.0, "Standard deviation of the initial weights.")
flags.DEFINE_string("init_biases", "0:0:0", "Initial biases 'prior:generative:recognition'.")
flags.DEFINE_integer("num_evals", 10, "Evaluations (and chunks) per run.")
flags.DEFINE_integer("checkpoint_every", 1, "Checkpoint every this many evaluations.")
flags.DEFINE_integer("seed", 0, "Root seed.")
flags.DEFINE_string("output_dir", None, "Results, figures and checkpoints.")
flags.DEFINE_bool("overwrite", False, "Replace a different sweep found in --output_dir.")
flags.DEFINE_string("coordinator_address", None, "host:port of process 0, for several processes.")
flags.DEFINE_integer("num_processes", None, "Number of processes (several hosts).")
flags.DEFINE_integer("process_id", None, "This process's index.")
flags.mark_flag_as_required("output_dir")
FLAGS = flags.FLAGS

# Settings that do not change the numbers a sweep produces.
_NOT_IDENTITY = {"coordinator_address", "num_processes", "process_id", "checkpoint_every"}
_OPTIMIZERS = {"sgd": optax.sgd, "adam": optax.adam}


def load_task():
    """The Task of --dataset (host-side; validates any data read from files)."""
    try:
        return tasks.load(FLAGS.dataset, FLAGS.data_path)
    except ValueError as e:
        raise flags.ValidationError(str(e)) from None


def build():
    """Check every flag and build (task, trainer, rates) before anything is compiled."""
    rates = runner.parse_rates(FLAGS.learning_rates)
    common.check_positive(num_seeds=FLAGS.num_seeds, num_steps=FLAGS.num_steps,
                          batch_size=FLAGS.batch_size, num_evals=FLAGS.num_evals,
                          lr_decay=FLAGS.lr_decay, num_samples=FLAGS.num_samples,
                          checkpoint_every=FLAGS.checkpoint_every)
    if FLAGS.num_steps % FLAGS.num_evals:
        raise flags.ValidationError(
            f"--num_steps ({FLAGS.num_steps}) must be a multiple of --num_evals ({FLAGS.num_evals})")
    task = load_task()
    sizes = common.parse_ints("layer_sizes", FLAGS.layer_sizes) if FLAGS.layer_sizes else task.layer_sizes
    if sizes[0] != task.layer_sizes[0]:
        raise flags.ValidationError(
            f"{task.name} has {task.layer_sizes[0]} visible units, but --layer_sizes starts with {sizes[0]}")
    config = wsjax.TrainConfig(
        layer_sizes=sizes, num_steps=FLAGS.num_steps, batch_size=FLAGS.batch_size,
        sampler=task.sampler, algorithm=FLAGS.algorithm,
        num_samples=FLAGS.num_samples if FLAGS.algorithm == "rws" else None,
        insomnia=FLAGS.insomnia, optimizer=_OPTIMIZERS[FLAGS.optimizer], lr_decay=FLAGS.lr_decay,
        init_scale=FLAGS.init_scale, init_biases=common.parse_biases(FLAGS.init_biases),
        eval_every=FLAGS.num_steps // FLAGS.num_evals, eval_fn=task.eval_fn)
    try:
        trainer = wsjax.make_train(config)
    except ValueError as e:
        raise flags.ValidationError(str(e)) from None
    return task, trainer, rates


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    if FLAGS.num_processes or os.environ.get("JAX_NUM_PROCESSES"):
        if jax.config.jax_platforms in (None, "", "cpu") and not os.environ.get("JAX_PLATFORMS", "").startswith(("cuda", "gpu", "tpu")):
            jax.config.update("jax_cpu_collectives_implementation", "gloo")
        jax.distributed.initialize(FLAGS.coordinator_address, FLAGS.num_processes, FLAGS.process_id)
    try:
        task, trainer, rates = build()
    except (ValueError, flags.ValidationError) as e:
        raise app.UsageError(str(e)) from None
    out = FLAGS.output_dir
    lead = jax.process_index() == 0
    if lead:
        resumed = common.claim_output_dir(FLAGS, __name__, ignore=_NOT_IDENTITY)
        logging.info("output %s (%s)", out, "resuming" if resumed else "new sweep")
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils
        multihost_utils.sync_global_devices("output_dir ready")
    logging.info("process %d of %d, devices: %s", jax.process_index(), jax.process_count(),
                 jax.devices())

    result = runner.run_sweep(trainer, rates, FLAGS.num_seeds, FLAGS.seed, task.data,
                              checkpoint_dir=os.path.join(out, "checkpoints"),
                              checkpoint_every=FLAGS.checkpoint_every)
    if not lead:
        return
    summary = runner.write_results(out, result, task.metric,
                                   extra=dict(dataset=task.name, algorithm=FLAGS.algorithm,
                                              layer_sizes=list(trainer.config.layer_sizes)))
    labels = [row["rate"] for row in summary["rows"]]
    plotting.plot_learning_curves(result.metrics["step"], result.metrics[task.metric], labels,
                                  os.path.join(out, "curves.png"), task.metric, logy=task.metric == "kl_bits")
    plotting.plot_metric_vs_rate(result.learning_rates, result.metrics[task.metric][:, :, -1],
                                 os.path.join(out, "final_vs_rate.png"), task.metric)
    print(runner.summary_markdown(summary), end="")
    logging.info("%d runs in %.1f s (resumed from eval %d)", int(np.prod(result.metrics[task.metric].shape[:2])),
                 result.seconds, result.resumed_from)


if __name__ == "__main__":
    app.run(main)
