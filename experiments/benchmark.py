r"""Benchmarks that print figures (never asserted in tests): what a call costs, measured in one run.

--suite=eager: the public functions a notebook calls eagerly, on the bars machine
(16-8-1) and 30 bars images: the third and later eager calls against the same call
under an explicit ``jax.jit``, and against the plain eager call of the uncompiled
function (what every eager call cost before the functions compiled once per shape).
Prints a Markdown table and one JSON line per function.

  python -m experiments.benchmark --suite=eager
"""

import json
import time

from absl import app, flags
import jax
import numpy as np

import wsjax
from wsjax import data as data_lib

flags.DEFINE_enum("suite", "eager", ["eager"], "Which measurements to run.")
flags.DEFINE_integer("repeats", 7, "Timed calls per measurement (the median is reported).")
FLAGS = flags.FLAGS


def _time(fn, repeats, warmup):
    for _ in range(warmup):
        jax.block_until_ready(fn())
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - start)
    return float(np.median(times)), float(np.min(times)), float(np.max(times))


def eager_suite(repeats):
    params = wsjax.init(jax.random.key(0), (16, 8, 1), init_scale=0.5)
    u = np.asarray(data_lib.sample_bars(jax.random.key(1), 30))
    key = jax.random.key(2)
    # name: (function, arguments, positions of its static arguments)
    calls = {
        "estimate_log_prob(K=10)": (wsjax.estimate_log_prob, (key, params, u, 10), (3,)),
        "elbo(K=10)": (wsjax.elbo, (key, params, u, 10), (3,)),
        "exact_log_prob": (wsjax.exact_log_prob, (params, u), ()),
        "wake_step": (wsjax.wake_step, (key, params, u, 0.1), ()),
        "sleep_step(batch 30)": (wsjax.sleep_step, (key, params, 0.1, 30), (3,)),
        "rws_step(K=5)": (wsjax.rws_step, (key, params, u, 0.1, 5), (4,)),
    }
    rows = []
    for name, (fn, args, static_nums) in calls.items():
        jitted = jax.jit(fn, static_argnums=static_nums)
        # Two calls first, so the third is the one timed (the first compiles).
        eager = _time(lambda: fn(*args), repeats, warmup=2)
        twin = _time(lambda: jitted(*args), repeats, warmup=2)
        plain = _time(lambda: fn.uncompiled(*args), max(1, repeats // 3), warmup=0)
        rows.append(dict(function=name, eager_ms=1e3 * eager[0], jit_ms=1e3 * twin[0],
                         uncompiled_eager_ms=1e3 * plain[0], ratio=eager[0] / twin[0],
                         within_5x_plus_20ms=bool(eager[0] <= 5 * twin[0] + 0.020),
                         eager_spread_ms=[1e3 * eager[1], 1e3 * eager[2]]))
    return rows


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    rows = eager_suite(FLAGS.repeats)
    print(f"backend {jax.default_backend()}, {jax.device_count()} device(s); medians of "
          f"{FLAGS.repeats} calls after 2 warm-up calls")
    print("| function | eager call, ms | under jax.jit, ms | eager / jit | uncompiled eager, ms |")
    print("|---|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['function']} | {r['eager_ms']:.3f} | {r['jit_ms']:.3f} | {r['ratio']:.2f} | "
              f"{r['uncompiled_eager_ms']:.1f} |")
    for r in rows:
        print(json.dumps(r))


if __name__ == "__main__":
    app.run(main)
