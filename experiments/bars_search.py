r"""Search the bars-problem settings with the kit itself: one sweep program per static setting.

For every (batch size, rate decay, initial weight scale) it trains a grid of
(generative rate x recognition rate) x seeds in one compiled program, at a fixed
budget of data samples per run, and records the exact KL(data || model) in bits.
This is how the defaults of ``experiments.bars`` were chosen.

  python -m experiments.bars_search --output_dir=/tmp/bars_search

With --variants (a JSON list of knob dicts, see VARIANT_DEFAULTS) it instead runs a custom
plain wake-sleep loop (library wake_grads/sleep_grads, SGD delta rules) with knobs TrainConfig
lacks: separate rate decays, sequential phases, rate warm-up, a rate multiplier (and its
schedule) and initial weight noise for the layers touching the top unit, a separate hidden
generative bias, tail averaging of the params, and (static flags) a larger sleep batch or
several recognition samples per data image; results go to variants.jsonl. For example

  python -m experiments.bars_search --output_dir=/tmp/bs --batch_sizes=10 --num_seeds=16 \
      --variants='[{"top_rate":0.03,"top_rate_end":10,"top_init":1}]'
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
flags.DEFINE_string("variants", None, "Instead of the grid search: a JSON list of dicts of traced "
                    "knobs for _variant_program (keys of VARIANT_DEFAULTS), one sweep over them x seeds.")
flags.DEFINE_integer("sleep_batch", 0, "Dreams per sleep phase in --variants mode (0: the wake batch).")
flags.DEFINE_integer("wake_repeat", 1, "Recognition samples per data image in --variants mode.")
flags.DEFINE_string("tag", "", "Label for the --variants run in the output.")
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


VARIANT_DEFAULTS = dict(
    gen_rate=2.0, rec_rate=4.0,      # initial rates
    gen_decay=0.01, rec_decay=0.01,  # final rate / initial rate, geometric over the run
    sequential=0.0,                  # 1: sleep dreams from the freshly updated generative model
    prior_bias=-2.5, gen_bias=-2.5, rec_bias=-1.4,
    warmup=0.0,                      # fraction of the run over which the rates ramp up linearly
    hid_gen_bias=float("nan"),       # initial generative bias of the hidden layers (nan: gen_bias)
    top_rate=1.0,                    # rate multiplier for the prior and the layers touching the top
    top_rec_rate=float("nan"),       # the same for the top recognition layer only (nan: top_rate)
    top_rate_end=float("nan"),       # top multipliers move geometrically to this by the end (nan: constant)
    top_init=0.0,                    # std of the initial weights between the top two layers (both halves)
)
AVERAGE_FROM = (0.5, 0.75, 0.9)  # tail (Polyak) averages of the params from these run fractions


def _variant_program(sizes, num_steps, batch, sleep_batch, wake_repeat=1, return_params=False):
    """jit(vmap over knob vectors of vmap over seeds): plain wake-sleep SGD with extra schedule knobs.

    Returns (keys [S], knobs [V, len(VARIANT_DEFAULTS)]) -> dict of KL in bits [V, S]:
    "final" (last params) and "avg<f>" (uniform average of the params over the run from fraction f).
    """
    from wsjax.model import generative_params, recognition_params
    from wsjax.wake_sleep import sleep_grads, wake_grads
    from wsjax import data as wsdata
    kl_fn = bars_lib.bars_eval()
    names = list(VARIANT_DEFAULTS)
    starts = [int(f * num_steps) for f in AVERAGE_FROM]

    def train(key, knobs):
        k = dict(zip(names, knobs))
        key_init, key = jax.random.split(key)
        params = wsjax.init(key_init, sizes, prior_bias=k["prior_bias"],
                            generative_bias=k["gen_bias"], recognition_bias=k["rec_bias"])
        hid_b = jnp.where(jnp.isnan(k["hid_gen_bias"]), k["gen_bias"], k["hid_gen_bias"])
        params["generative"] = (params["generative"][0],) + tuple(
            {**l, "b": jnp.full_like(l["b"], hid_b)} for l in params["generative"][1:])
        top = len(sizes) - 2  # index of the conditionals next to the top layer
        key_top_g, key_top_r = jax.random.split(jax.random.fold_in(key_init, 1))
        noisy = lambda l, kk: {**l, "w": l["w"] + k["top_init"] * jax.random.normal(kk, l["w"].shape)}
        params["generative"] = tuple(noisy(l, key_top_g) if i == top else l
                                     for i, l in enumerate(params["generative"]))
        params["recognition"] = tuple(noisy(l, key_top_r) if i == top else l
                                      for i, l in enumerate(params["recognition"]))
        avgs = tuple(params for _ in starts)

        def scale_top(tree, half, frac):
            end = jnp.where(jnp.isnan(k["top_rate_end"]), 1.0, k["top_rate_end"] / k["top_rate"])
            grow = jnp.where(jnp.isnan(k["top_rate_end"]), 1.0, end ** frac)
            if half == "gen":
                m = k["top_rate"] * grow
                return {"prior": jax.tree.map(lambda g: m * g, tree["prior"]),
                        "generative": tuple(jax.tree.map(lambda g: m * g, l) if i == top
                                            else l for i, l in enumerate(tree["generative"]))}
            m = grow * jnp.where(jnp.isnan(k["top_rec_rate"]), k["top_rate"], k["top_rec_rate"])
            return {"recognition": tuple(jax.tree.map(lambda g: m * g, l) if i == top
                                         else l for i, l in enumerate(tree["recognition"]))}

        def step(carry, t):
            params, avgs, key = carry
            key, key_data, key_wake, key_sleep = jax.random.split(key, 4)
            frac = t.astype(jnp.float32) / num_steps
            ramp = jnp.where(k["warmup"] > 0, jnp.minimum(1.0, (frac + 1.0 / num_steps) / jnp.maximum(k["warmup"], 1e-9)), 1.0)
            lr_g = ramp * k["gen_rate"] * k["gen_decay"] ** frac
            lr_r = ramp * k["rec_rate"] * k["rec_decay"] ** frac
            u = jnp.repeat(wsdata.sample_bars(key_data, batch), wake_repeat, axis=0)
            gen_grads, _ = wake_grads(key_wake, params, u)
            gen_grads = scale_top(gen_grads, "gen", frac)
            gen = jax.tree.map(lambda p, g: p - lr_g * g, generative_params(params), gen_grads)
            fresh = {**params, **gen}
            dream_from = jax.tree.map(lambda a, b: jnp.where(k["sequential"] > 0, a, b), fresh, params)
            rec_grads, _ = sleep_grads(key_sleep, dream_from, sleep_batch)
            rec_grads = scale_top(rec_grads, "rec", frac)
            rec = jax.tree.map(lambda p, g: p - lr_r * g, recognition_params(params), rec_grads)
            new = {**params, **gen, **rec}
            new_avgs = []
            for s0, avg in zip(starts, avgs):
                n = jnp.maximum(t - s0 + 1, 1).astype(jnp.float32)
                new_avgs.append(jax.tree.map(
                    lambda a, p: jnp.where(t >= s0, a + (p - a) / n, p), avg, new))
            return (new, tuple(new_avgs), key), None

        (params, avgs, _), _ = jax.lax.scan(step, (params, avgs, key), jnp.arange(num_steps))
        out = {"final": kl_fn(params)["kl_bits"]}
        for f, avg in zip(AVERAGE_FROM, avgs):
            out[f"avg{f:g}"] = kl_fn(avg)["kl_bits"]
        return (out, params) if return_params else out

    over_seeds = jax.vmap(train, in_axes=(0, None))
    return jax.jit(jax.vmap(over_seeds, in_axes=(None, 0)))


def run_variants(variants, num_seeds, seed, num_samples, batch, sleep_batch, sizes=(16, 8, 1),
                 wake_repeat=1):
    """Run the knob dicts ``variants`` x seeds in one program; returns (rows, seconds)."""
    knobs = jnp.array([[float({**VARIANT_DEFAULTS, **v}[n]) for n in VARIANT_DEFAULTS]
                       for v in variants], jnp.float32)
    keys = jax.random.split(jax.random.key(seed), num_seeds)
    program = _variant_program(tuple(sizes), num_samples // batch, batch, sleep_batch or batch,
                               wake_repeat)
    start = time.time()
    out = jax.tree.map(np.asarray, jax.block_until_ready(program(keys, knobs)))
    seconds = time.time() - start
    rows = []
    for i, v in enumerate(variants):
        for name, kl in out.items():
            kls = np.sort(kl[i])
            rows.append(dict(variant=v, eval=name, batch=batch, sleep_batch=sleep_batch or batch,
                             wake_repeat=wake_repeat,
                             num_samples=num_samples, seed=seed, median=float(np.median(kls)),
                             best=float(kls[0]), kl_bits=[round(float(x), 3) for x in kls]))
    return rows, seconds


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    logging.info("devices: %s", jax.devices())
    os.makedirs(FLAGS.output_dir, exist_ok=True)
    if FLAGS.variants:
        batch = int(FLAGS.batch_sizes[0])
        rows, seconds = run_variants(json.loads(FLAGS.variants), FLAGS.num_seeds, FLAGS.seed,
                                     FLAGS.num_samples, batch, FLAGS.sleep_batch,
                                     [int(n) for n in FLAGS.layer_sizes], FLAGS.wake_repeat)
        path = os.path.join(FLAGS.output_dir, "variants.jsonl")
        with open(path, "a") as f:
            for r in rows:
                f.write(json.dumps({**r, "tag": FLAGS.tag, "seconds": seconds}) + "\n")
        print(f"[{FLAGS.tag}] batch {batch} sleep {FLAGS.sleep_batch or batch} x{FLAGS.wake_repeat} "
              f"samples {FLAGS.num_samples} seed {FLAGS.seed} seeds {FLAGS.num_seeds}: {seconds:.0f} s")
        for r in rows:
            print(f"{json.dumps(r['variant']):60s} {r['eval']:8s} med {r['median']:.3f} "
                  f"best {r['best']:.3f} {r['kl_bits']}")
        return
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
