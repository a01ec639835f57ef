r"""The bars problem (Hinton, Dayan, Frey & Neal 1995): the kit's main job.

Trains the paper's 16-8-1 Helmholtz machine on 4x4 bars images drawn fresh at
every step, a grid of settings x seeds in one compiled program, and reports the
exact KL(data || model) in bits of every run. The default algorithm is reweighted
wake-sleep (K = 5, the recognition model trained by the sleep phase alone,
100 dreams a step); ``--algorithm=wake_sleep`` is the paper's. Writes to --output_dir
what experiments.sweep writes (flags.txt, sweep.json, checkpoints/, metrics.npz/.csv,
summary.md, results.json, curves.png, final_vs_axis.png) and

  weights.png     generative weights of the best run, one 4x4 field per hidden unit
  fantasies.png   images dreamed by the best run
  structure.json  what each run learned, at the end: how many of the 8 bars some
                  hidden unit draws on its own, and how well its best top unit
                  tells the orientation (the task's bars_drawn and orientation metrics)

  python -m experiments.bars --output_dir=runs/bars
"""

import os

import jax
import numpy as np
from absl import app, flags

import wsjax
from experiments import common
from wsjax import data as data_lib
from wsjax import plotting, tasks

common.define_flags(algorithm="rws", num_samples=5, insomnia=0.0, sleep_batch_size=100,
                    learning_rates=["4:8"], num_seeds=32, num_steps=60_000,
                    batch_size=20, layer_sizes=["16", "8", "1"], lr_decay=0.01,
                    init_scale=["0", "1"], layer_rate_scales=["1", "0.01:10"],
                    init_biases="-2.5:-3.5:-1.4", num_evals=20, vectorize="runs",
                    cpu_devices=0, output_dir="runs/bars")
flags.adopt_module_key_flags(common)  # --help lists the shared flags beside its own
FLAGS = flags.FLAGS


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    task = tasks.bars()
    trainer, hyperparams, axes = common.build(task)
    result, summary = common.run(task, trainer, hyperparams, axes)
    masks = data_lib.bars_masks()
    final = {"bars_drawn": common.final_parts_drawn(result, masks),
             "orientation": np.asarray(result.metrics["orientation"][..., -1])}
    every_bar, oriented = final["bars_drawn"] == len(masks), final["orientation"] >= 0.9
    common.write_json("structure.json", {
        "bars_drawn": common.per_point(summary["rows"], final["bars_drawn"]),
        "best_top_unit_orientation_accuracy": common.per_point(summary["rows"],
                                                               final["orientation"]),
        "runs_with_every_bar": int(every_bar.sum()), "runs_oriented": int(oriented.sum()),
        "runs_with_both": int((every_bar & oriented).sum()), "runs": int(every_bar.size)})
    print(f"of {every_bar.size} runs: {int(every_bar.sum())} draw all {len(masks)} bars, "
          f"{int(oriented.sum())} have a top unit that tells the orientation (accuracy >= 0.9), "
          f"{int((every_bar & oriented).sum())} both")

    out, best = FLAGS.output_dir, common.best_params(result, summary)
    fields = np.asarray(best["generative"][0]["w"]).T  # [n_1, 16]: hidden unit -> pixels
    labels = None
    if len(best["generative"]) == 2 and best["generative"][1]["w"].shape[1] == 1:
        labels = [f"top {w:+.1f}" for w in np.asarray(best["generative"][1]["w"])[:, 0]]
    plotting.plot_image_grid(fields, (4, 4), os.path.join(out, "weights.png"), signed=True,
                             num_cols=fields.shape[0], labels=labels,
                             title=f"generative weights of the best run (KL "
                                   f"{summary['best']['value']:.3f} bits); label: weight from the "
                                   f"top unit")
    keys = jax.random.split(jax.random.key(FLAGS.seed + 1), 40)
    dreams, _ = jax.vmap(wsjax.sample_generative, in_axes=(0, None))(keys, best)
    plotting.plot_image_grid(dreams, (4, 4), os.path.join(out, "fantasies.png"), num_cols=10,
                             title="fantasies of the best run")
    final = np.sort(result.metrics["kl_bits"][..., -1].ravel())
    print(f"all {final.size} runs, final KL in bits, sorted: {' '.join(f'{v:.3f}' for v in final)}")


if __name__ == "__main__":
    common.run_main(main)
