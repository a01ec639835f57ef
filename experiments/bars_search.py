r"""Search the bars-problem settings with the kit itself: one sweep program per static setting.

For every (batch size, rate decay, initial weight scale) it trains a grid of
(generative rate x recognition rate) x seeds in one compiled program, at a fixed
budget of data samples per run, and records the exact KL(data || model) in bits.
This is how the defaults of ``experiments.bars`` were chosen.

  python -m experiments.bars_search --output_dir=/tmp/bars_search
"""

import itertools
import json
import os
import time

from absl import app, flags, logging
import jax
import jax.numpy as jnp
import numpy as np

import wsjax
from experiments import bars_lib

flags.DEFINE_list("batch_sizes", ["10", "50"], "Batch sizes to try.")
flags.DEFINE_list("lr_decays", ["0.01", "0.1"], "Total geometric rate decays to try.")
flags.DEFINE_list("init_scales", ["0.0"], "Initial weight standard deviations to try.")
flags.DEFINE_list("gen_rates", ["0.1", "0.3", "1.0"], "Generative learning rates.")
flags.DEFINE_list("rec_rates", ["0.1", "0.3", "1.0"], "Recognition learning rates.")
flags.DEFINE_list("bias_inits", ["0:0"], "Initial biases 'generative:recognition' or "
                  "'prior:generative:recognition' to try (generative: every generative bias; the "
                  "prior takes the generative value unless given).")
flags.DEFINE_list("layer_sizes", ["16", "8", "1"], "Machine widths.")
flags.DEFINE_integer("num_seeds", 8, "Seeds per setting.")
flags.DEFINE_integer("num_samples", 2_000_000, "Data samples per run (steps = this / batch).")
flags.DEFINE_integer("seed", 0, "Root seed.")
flags.DEFINE_string("output_dir", None, "Where to write search.csv and search.json.")
flags.mark_flag_as_required("output_dir")
FLAGS = flags.FLAGS


def _with_biases(params, prior_bias, gen_bias, rec_bias):
    """Set the prior, every generative bias and every recognition bias to the given values."""
    fill = lambda layer, value: {**layer, "b": jnp.full_like(layer["b"], value)}
    return {
        "prior": fill(params["prior"], prior_bias),
        "generative": tuple(fill(l, gen_bias) for l in params["generative"]),
        "recognition": tuple(fill(l, rec_bias) for l in params["recognition"]),
    }


def _search_program(trainer):
    """jit(vmap over (rates, biases) of vmap over seeds) of a run whose initial biases are traced."""
    num_evals = trainer.config.num_steps // trainer.config.eval_every

    def train(key, rates, bias):
        state = trainer.init(key, rates)
        state = state._replace(params=_with_biases(state.params, bias[0], bias[1], bias[2]))
        state, metrics = jax.lax.scan(lambda s, _: trainer.run(s, None), state, None, num_evals)
        return state.params, metrics

    over_seeds = jax.vmap(train, in_axes=(0, None, None))
    return jax.jit(jax.vmap(over_seeds, in_axes=(None, 0, 0)))


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    logging.info("devices: %s", jax.devices())
    os.makedirs(FLAGS.output_dir, exist_ok=True)
    gen = [float(r) for r in FLAGS.gen_rates]
    rec = [float(r) for r in FLAGS.rec_rates]
    biases = [tuple(float(x) for x in b.split(":")) for b in FLAGS.bias_inits]
    biases = [b if len(b) == 3 else (b[0], *b) for b in biases]  # (prior, generative, recognition)
    grid = list(itertools.product(gen, rec, biases))
    pairs = jnp.array([(g, r) for g, r, _ in grid], jnp.float32)
    bias_arr = jnp.array([b for _, _, b in grid], jnp.float32)
    keys = jax.random.split(jax.random.key(FLAGS.seed), FLAGS.num_seeds)
    sizes = tuple(int(n) for n in FLAGS.layer_sizes)
    rows = []
    for batch, decay, scale in itertools.product(
        [int(b) for b in FLAGS.batch_sizes], [float(d) for d in FLAGS.lr_decays],
        [float(s) for s in FLAGS.init_scales],
    ):
        num_steps = FLAGS.num_samples // batch
        config = bars_lib.bars_config(sizes, num_steps, batch, decay, scale, num_evals=1)
        start = time.time()
        _, metrics = _search_program(wsjax.make_train(config))(keys, pairs, bias_arr)
        kl = np.asarray(metrics["kl_bits"][:, :, -1])  # [grid, seeds]
        seconds = time.time() - start
        logging.info("batch %d decay %g init %g: %.1f s, best median %.3f", batch, decay, scale,
                     seconds, np.nanmin(np.median(kl, 1)))
        for (g, r, (bp, bg, br)), kls in zip(grid, kl):
            rows.append(dict(batch_size=batch, lr_decay=decay, init_scale=scale, gen_rate=float(g),
                             rec_rate=float(r), prior_bias=bp, gen_bias=bg, rec_bias=br, num_samples=FLAGS.num_samples, seconds=seconds, median=float(np.median(kls)), best=float(kls.min()),
                             kl_bits=[float(x) for x in kls]))
        # Written after every setting, so a search cut short keeps what it finished.
        with open(os.path.join(FLAGS.output_dir, "search.json"), "w") as f:
            json.dump(sorted(rows, key=lambda r: r["median"]), f, indent=1)
    rows.sort(key=lambda r: r["median"])
    print(f"{'batch':>5} {'decay':>6} {'init':>5} {'gen':>6} {'rec':>6} {'bias':>10} "
          f"{'median':>7} {'best':>6}")
    for r in rows[:25]:
        print(f"{r['batch_size']:5d} {r['lr_decay']:6g} {r['init_scale']:5g} {r['gen_rate']:6g} "
              f"{r['rec_rate']:6g} {r['prior_bias']:g}:{r['gen_bias']:g}:{r['rec_bias']:<4g} {r['median']:7.3f} "
              f"{r['best']:6.3f}")


if __name__ == "__main__":
    app.run(main)
