r"""A grid over any hyperparameters x seeds, for any data set and algorithm of the kit, on any
devices.

Every run of the grid is one slice of one compiled program, sharded over all
devices of all processes; results are checkpointed (orbax) so a killed sweep
resumes where it stopped. The output directory gets flags.txt (a --flagfile),
sweep.json (the settings), metrics.npz ([*grid, seed, eval] arrays with
grid_axes), metrics.csv (one column per axis), summary.md (one row per grid
point), results.json, curves.png and final_vs_axis.png.

  python -m experiments.sweep --dataset=bars --learning_rates=0.5,1,2,4 --num_seeds=16 \
      --output_dir=runs/sweep_bars
  python -m experiments.sweep --dataset=digits --algorithm=rws --num_samples=5 \
      --learning_rates=0.003,0.01 --grid=insomnia=0,0.5,1 --num_seeds=4 --output_dir=runs/ins

Several hosts (or processes): run the same command on each with
--num_processes=N --process_id=i --coordinator_address=host0:port (or set
JAX_COORDINATOR_ADDRESS, JAX_NUM_PROCESSES, JAX_PROCESS_ID). Process 0 writes the files.
"""

from absl import app, flags

from experiments import common
from wsjax import tasks

flags.DEFINE_enum("dataset", "bars", list(tasks.TASKS), "Data set.")
flags.DEFINE_string("data_path", None, "MNIST file or directory (--dataset=mnist).")
common.define_flags(learning_rates=["0.5", "1", "2", "4"], num_seeds=16, num_steps=20_000,
                    lr_decay=0.1)
flags.mark_flag_as_required("output_dir")
flags.adopt_module_key_flags(common)  # --help lists the shared flags beside its own
FLAGS = flags.FLAGS


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    try:
        task = tasks.load(FLAGS.dataset, FLAGS.data_path)
    except (ValueError, OSError) as e:
        raise app.UsageError(str(e)) from None
    trainer, hyperparams, axes = common.build(task)
    common.run(task, trainer, hyperparams, axes, extra_identity=dict(data_path=FLAGS.data_path))


if __name__ == "__main__":
    common.run_main(main)
