r"""The estimators side by side: wake-sleep, RWS at insomnia 0, 0.5 and 1, defensive wake-wake,
VIMCO and NVIL, each at every K of --num_samples where it applies, on digits or binarized MNIST.

Each configuration is one ``experiments.mnist`` run (a subprocess, with --num_seeds seeds)
in a directory of its own under --output_dir, so each is checkpointed and resumes on its own,
and a configuration already finished is not run again. Then it writes comparison.png (the
held-out NLL, median over seeds, against training steps and against training time) and
prints ``experiments.report --table`` over the runs: test NLL at K = --test_samples, epochs
and wall time per configuration.

Configurations (K from --num_samples; RWS at K = 1 is wake-sleep with a wake-phase
recognition update, VIMCO needs K >= 2, NVIL and wake-sleep take one sample):
  ws                      wake-sleep
  rws_i{0,0.5,1}_k{K}     reweighted wake-sleep at insomnia 0 (sleep), 0.5, 1 (wake-wake)
  dww_k{K}                defensive wake-wake: insomnia 1, particles from (1 - d) Q + d Uniform
  vimco_k{K}              VIMCO, the K-sample bound with leave-one-out signals
  nvil                    NVIL, the ELBO with a learned baseline

  python -m experiments.compare --dataset=digits --output_dir=runs/compare_digits
  python -m experiments.compare --dataset=mnist --data_path=binarized_mnist.npz \
      --output_dir=runs/compare_mnist --num_epochs=200
"""

import os
import subprocess
import sys

from absl import app, flags

from experiments import common, report

flags.DEFINE_enum("dataset", "digits", ["digits", "mnist"], "digits: built in; mnist: "
                  "--data_path files.")
flags.DEFINE_string("data_path", None, "Binarized MNIST file or directory (--dataset=mnist).")
flags.DEFINE_list("num_samples", ["1", "5", "50"], "Values of K.")
flags.DEFINE_list("configs", None, "Run only these configurations (names as listed above; "
                  "default: all).")
flags.DEFINE_integer("num_seeds", 3, "Seeds per configuration.")
flags.DEFINE_integer("num_epochs", None, "Passes over the training set (default: that of "
                     "experiments.mnist).")
flags.DEFINE_float("defensive", 0.2, "d of defensive wake-wake.")
flags.DEFINE_integer("num_evals", None, "Held-out evaluations per run: the points of each "
                     "curve (default: that of experiments.mnist).")
flags.DEFINE_list("learning_rates", None, "Learning rate of every configuration (default: "
                  "that of experiments.mnist).")
flags.DEFINE_integer("test_samples", 1000, "K of the final test log-likelihood.")
flags.DEFINE_integer("test_examples", None, "A fixed random subset of the test images.")
flags.DEFINE_string("output_dir", None, "One run directory per configuration goes here.")
flags.mark_flag_as_required("output_dir")
FLAGS = flags.FLAGS


def configurations(ks, defensive):
    """{name: flags of experiments.mnist} for every configuration at the values of K."""
    out = {"ws": ["--algorithm=wake_sleep"]}
    for insomnia in ("0", "0.5", "1"):
        for k in ks:
            out[f"rws_i{insomnia}_k{k}"] = ["--algorithm=rws", f"--insomnia={insomnia}",
                                            f"--num_samples={k}"]
    for k in ks:
        out[f"dww_k{k}"] = ["--algorithm=rws", "--insomnia=1", f"--defensive={defensive:g}",
                            f"--num_samples={k}"]
    for k in ks:
        if k >= 2:
            out[f"vimco_k{k}"] = ["--algorithm=vimco", f"--num_samples={k}"]
    out["nvil"] = ["--algorithm=nvil"]
    return out


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    ks = common.parse_ints("num_samples", FLAGS.num_samples)
    common.check_positive(num_seeds=FLAGS.num_seeds, test_samples=FLAGS.test_samples)
    if not 0 <= FLAGS.defensive < 1:
        raise app.UsageError(f"--defensive must be in [0, 1), got {FLAGS.defensive}")
    if FLAGS.dataset == "mnist" and not FLAGS.data_path:
        raise app.UsageError("--dataset=mnist needs --data_path (the binarized MNIST files)")
    configs = configurations(ks, FLAGS.defensive)
    if FLAGS.configs:
        unknown = [c for c in FLAGS.configs if c not in configs]
        if unknown:
            raise app.UsageError(f"--configs: unknown {unknown}; known: {list(configs)}")
        configs = {c: configs[c] for c in FLAGS.configs}
    shared = [f"--dataset={FLAGS.dataset}", f"--num_seeds={FLAGS.num_seeds}",
              f"--test_samples={FLAGS.test_samples}"]
    for name, value in (("data_path", FLAGS.data_path), ("num_epochs", FLAGS.num_epochs),
                        ("num_evals", FLAGS.num_evals), ("test_examples", FLAGS.test_examples)):
        if value is not None:
            shared.append(f"--{name}={value}")
    if FLAGS.learning_rates:
        shared.append(f"--learning_rates={','.join(FLAGS.learning_rates)}")
    summaries = {}
    for name, own in configs.items():
        run_dir = os.path.join(FLAGS.output_dir, name)
        if not os.path.exists(os.path.join(run_dir, "test.json")):
            print(f"{name}: training", flush=True)
            done = subprocess.run([sys.executable, "-m", "experiments.mnist", *shared, *own,
                                   f"--output_dir={run_dir}"], check=False)
            if done.returncode:
                raise app.UsageError(f"{name}: experiments.mnist failed (exit code "
                                     f"{done.returncode}); its error is printed above")
        summaries[name] = report.summarize(run_dir)
    report.plot_comparison(summaries, os.path.join(FLAGS.output_dir, "comparison.png"))
    print(report.table(list(summaries.values())), end="")


if __name__ == "__main__":
    common.run_main(main)
