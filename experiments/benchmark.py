r"""Benchmarks that print figures (never asserted in tests): what the kit costs, measured in one
run.

--suite=steps (the default): the machine's ceilings, then wake-sleep and RWS steps at each
  --sizes, batch --batch_size, against a minimal hand-written JAX implementation of the same
  math timed in the same rounds (so every figure is also a ratio to it):
  * ceilings: fp32 matmul on a --ceiling_size^3 product and on the shapes a step uses; one jit
    dispatch of a trivial program; one uniform draw (threefry), for the Bernoulli samples, and
    one Bernoulli drawn from a 16-bit slice of a random word (the lever of fewer random bits,
    which the kit does not use: see the README);
  * per size and algorithm: steps/s and examples/s of one run under lax.scan of --scan_steps
    steps and with one jitted call per step; of a vmapped sweep of --num_seeds seeds (scan);
    the matmul FLOPs per step (counted from the shapes) over time as a fraction of the
    measured matmul ceiling; compile time of the scan programs; the sweep's memory (XLA's
    memory analysis of the compiled program: arguments, outputs and temporaries);
  * per size and algorithm, what a step costs at the least: its matrix products alone and its
    Bernoulli draws alone (exact uniforms, and 16- and 8-bit slices of words), each a lax.scan
    at the step's shapes, against the minimal step (``step_floors``): how close to the matmul
    ceiling any implementation of that step can come on the machine (its products alone).
  Implementations: "minimal" (this file: batch-major, one key split per step, the delta rules
  written out; its RWS evaluates every conditional on all B*K rows), "contract"
  (``wsjax.wake_step`` + ``wsjax.sleep_step``, ``wsjax.rws_step``) and
  "bundle" (``wsjax.wake_sleep(optax.sgd)`` / ``wsjax.rws(optax.sgd, 5)``: ``algo.step`` on a
  ``State``). RWS runs at insomnia 1 (the contract step's default: the recognition half learns
  from the weighted wake samples); the minimal RWS therefore draws no dreams. --insomnia sets
  the contract's and the bundle's insomnia (0: no wake-phase recognition gradient, the dreams
  of the sleep phase instead); the minimal RWS stays at 1, so its ratios then compare unlike
  work.
  Every timing is the median of --rounds interleaved rounds after a warm-up call (compilation
  never timed); in each round a program runs enough calls in a row to last --min_seconds (a
  16-8-1 scan of 100 steps takes ~20 ms, too short to time alone on a busy machine), and the
  time is divided by the calls. The JSON lines carry the spread (min, max) and the calls.
--suite=kinds: the cost of each kind of layer (``wsjax.layers``): at each --sizes, a machine
  whose every conditional and prior is SBN, DARN or NADE(--nade_hidden), its RWS step
  (``wsjax.rws(optax.sgd, K)``, insomnia 1) in a lax.scan of --scan_steps steps, and the two
  halves of that step alone: the recognition samples (``sample_up``, K per example: DARN and
  NADE layers are sampled unit by unit) and the gradient of the particles' log-probabilities
  (one parallel pass per layer). Printed as steps/s, the ratio to the SBN step, and the
  sampling's share of the step, all timed in the same interleaved rounds.
--suite=eager: the public functions a notebook calls eagerly, on the bars machine: the third
  and later eager calls against the same call under an explicit ``jax.jit``, and against the
  plain eager call of the uncompiled function.

  python -m experiments.benchmark                      # the steps suite, a table and JSON lines
  python -m experiments.benchmark --suite=eager
  python -m experiments.benchmark --suite=kinds --sizes=784-200,784-200-200
  python -m experiments.benchmark --sizes=16-8-1 --scan_steps=5 --rounds=1   # a smoke test
"""

import json
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
from absl import app, flags

import wsjax
from experiments import common
from wsjax import data as data_lib

flags.DEFINE_enum("suite", "steps", ["steps", "eager", "kinds"], "Which measurements to run.")
flags.DEFINE_list("sizes", ["16-8-1", "784-200", "784-200-200"], "Machines, as n0-n1-...")
flags.DEFINE_list("algorithms", ["wake_sleep", "rws"], "wake_sleep and/or rws (K=5).")
flags.DEFINE_integer("batch_size", 100, "Examples per step.")
flags.DEFINE_integer("num_samples", 5, "K of RWS.")
flags.DEFINE_float("insomnia", 1.0, "Insomnia of the contract and bundle RWS steps (the minimal "
                  "RWS is at 1).")
flags.DEFINE_integer("scan_steps", 100, "Steps per timed lax.scan.")
flags.DEFINE_integer("num_seeds", 8, "Runs of the vmapped sweep.")
flags.DEFINE_integer("rounds", 5, "Interleaved timing rounds (the median is reported).")
flags.DEFINE_float("min_seconds", 0.25, "Shortest timed measurement: a program that runs faster is "
                   "called this many times over in a row, and the time divided.")
flags.DEFINE_integer("ceiling_size", 1024, "Side of the square matmul of the ceiling.")
flags.DEFINE_integer("nade_hidden", 50, "kinds suite: hidden units of each NADE layer.")
flags.DEFINE_integer("repeats", 7, "Timed calls per measurement of the eager suite.")
FLAGS = flags.FLAGS

LEARNING_RATE = 0.01


def _time(fn, repeats, warmup):
    for _ in range(warmup):
        jax.block_until_ready(fn())
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - start)
    return float(np.median(times)), float(np.min(times)), float(np.max(times))


# ---------------------------------------------------------------------------------------------
# The minimal implementation: the same math as the kit's steps, written out batch-major.
# Params are the kit's pytree, so both start from the same machine.

def _bernoulli(key, logits):
    return (jax.random.uniform(key, logits.shape) < jax.nn.sigmoid(logits)).astype(jnp.float32)


def _affine(layer, x):
    return x @ layer["w"].T + layer["b"]


def _delta(layer, target, inputs, logits, rate):
    """layer += rate * mean over rows of (target - f(logits)) inputs^T (and the bias)."""
    err = target - jax.nn.sigmoid(logits)
    scale = rate / target.shape[0]
    return {"w": layer["w"] + scale * err.T @ inputs, "b": layer["b"] + scale * err.sum(0)}


def minimal_wake_sleep(key, params, u, rate):
    """One wake phase and one sleep phase (simultaneous, from the same params), plain SGD."""
    gen, rec, prior = params["generative"], params["recognition"], params["prior"]["b"]
    num_layers = len(gen)
    keys = jax.random.split(key, 2 * num_layers + 1)
    # Wake: h ~ Q(h | u) bottom-up, then the generative delta rules.
    hs = [u]
    for l in range(num_layers):
        hs.append(_bernoulli(keys[l], _affine(rec[l], hs[l])))
    new_gen = tuple(_delta(gen[l], hs[l], hs[l + 1], _affine(gen[l], hs[l + 1]), rate)
                    for l in range(num_layers))
    new_prior = prior + rate * jnp.mean(hs[-1] - jax.nn.sigmoid(prior), 0)
    # Sleep: dream top-down, then the recognition delta rules.
    batch = u.shape[0]
    top = _bernoulli(keys[num_layers], jnp.broadcast_to(prior, (batch, prior.shape[0])))
    dreams = [top]
    for l in reversed(range(num_layers)):
        dreams.insert(0, _bernoulli(keys[num_layers + 1 + l], _affine(gen[l], dreams[0])))
    new_rec = tuple(_delta(rec[l], dreams[l + 1], dreams[l], _affine(rec[l], dreams[l]), rate)
                    for l in range(num_layers))
    return {"prior": {"b": new_prior}, "generative": new_gen, "recognition": new_rec}


def _log_bern(logits, x):
    return jnp.sum(x * logits - jax.nn.softplus(logits), -1)


def minimal_rws(key, params, u, rate, num_samples):
    """One RWS step at insomnia 1: K samples per example as B*K rows of one GEMM per layer."""
    gen, rec, prior = params["generative"], params["recognition"], params["prior"]["b"]
    num_layers = len(gen)
    batch = u.shape[0]
    keys = jax.random.split(key, num_layers)
    rows = jnp.repeat(u, num_samples, axis=0)  # [B*K, n0]
    hs, log_q = [rows], 0.0
    rec_logits = []
    for l in range(num_layers):
        logits = _affine(rec[l], hs[l])
        h = _bernoulli(keys[l], logits)
        rec_logits.append(logits)
        log_q = log_q + _log_bern(logits, h)
        hs.append(h)
    gen_logits = [_affine(gen[l], hs[l + 1]) for l in range(num_layers)]
    log_p = _log_bern(prior, hs[-1]) + sum(_log_bern(gen_logits[l], hs[l])
                                           for l in range(num_layers))
    log_w = (log_p - log_q).reshape(batch, num_samples)
    w = jax.nn.softmax(log_w, axis=1).reshape(-1, 1)  # normalized weights, one per row
    scale = rate / batch

    def weighted(layer, target, inputs, logits):
        err = w * (target - jax.nn.sigmoid(logits))
        return {"w": layer["w"] + scale * err.T @ inputs, "b": layer["b"] + scale * err.sum(0)}

    new_gen = tuple(weighted(gen[l], hs[l], hs[l + 1], gen_logits[l]) for l in range(num_layers))
    new_rec = tuple(weighted(rec[l], hs[l + 1], hs[l], rec_logits[l]) for l in range(num_layers))
    new_prior = prior + scale * jnp.sum(w * (hs[-1] - jax.nn.sigmoid(prior)), 0)
    return {"prior": {"b": new_prior}, "generative": new_gen, "recognition": new_rec}


# ---------------------------------------------------------------------------------------------
# The steps every implementation offers: (key, carry, u) -> carry, with an init from params.

def implementations(algorithm, num_samples, insomnia=1.0):
    """name -> (init(params) -> carry, step(key, carry, u) -> carry, params(carry))."""
    ident = lambda p: p
    if algorithm == "wake_sleep":
        def contract(key, p, u):
            k_wake, k_sleep = jax.random.split(key)
            p = wsjax.wake_step.uncompiled(k_wake, p, u, LEARNING_RATE)
            return wsjax.sleep_step.uncompiled(k_sleep, p, LEARNING_RATE, u.shape[0])
        algo = wsjax.wake_sleep(optax.sgd)
        minimal = lambda key, p, u: minimal_wake_sleep(key, p, u, LEARNING_RATE)
    else:
        def contract(key, p, u):
            return wsjax.rws_step.uncompiled(key, p, u, LEARNING_RATE, num_samples,
                                             insomnia=insomnia)
        algo = wsjax.rws(optax.sgd, num_samples)
        minimal = lambda key, p, u: minimal_rws(key, p, u, LEARNING_RATE, num_samples)
    extra = dict(insomnia=insomnia) if algorithm == "rws" else {}
    hyperparams = algo.default_hyperparams(learning_rate=LEARNING_RATE, **extra)
    return {
        "minimal": (ident, minimal, ident),
        "contract": (ident, contract, ident),
        "bundle": (lambda p: algo.init(p, hyperparams),
                   lambda key, s, u: algo.step(key, s, u)[0], lambda s: s.params),
    }


def matmul_flops(sizes, batch, algorithm, num_samples):
    """FLOPs of the matrix products one step needs (2 m n k each), counted from the shapes."""
    pairs = sum(a * b for a, b in zip(sizes, sizes[1:]))
    # wake: Q sample, P logits, P grad; sleep: P dream, Q logits, Q grad
    if algorithm == "wake_sleep":
        return 6 * 2 * batch * pairs
    return 4 * 2 * batch * num_samples * pairs  # Q sample, P logits, P grad, Q grad on B*K rows


def ceilings(size, shapes, rounds):
    """Measured fp32 matmul GFLOP/s (square and step shapes), jit dispatch (us), uniform draw
    (ns)."""
    out = {}
    a = jax.random.normal(jax.random.key(0), (size, size))
    mm = jax.jit(lambda x, y: x @ y)
    t = _time(lambda: mm(a, a), max(3, rounds), warmup=2)
    out["matmul_square_gflops"] = 2 * size**3 / t[0] / 1e9
    for m, k, n in shapes:
        x = jax.random.normal(jax.random.key(1), (m, k))
        y = jax.random.normal(jax.random.key(2), (k, n))
        calls = 50  # back-to-back dispatches: XLA cannot hoist a product out of a loop here

        def many(x=x, y=y, calls=calls):
            for _ in range(calls):
                z = mm(x, y)
            return z

        t = _time(many, max(3, rounds), warmup=1)
        out[f"matmul_{m}x{k}x{n}_gflops"] = 2 * m * k * n * calls / t[0] / 1e9
    noop = jax.jit(lambda x: x + 1)
    x = jnp.zeros(())
    jax.block_until_ready(noop(x))
    calls = 2000
    start = time.perf_counter()
    for _ in range(calls):
        x = noop(x)
    jax.block_until_ready(x)
    out["jit_dispatch_us"] = (time.perf_counter() - start) / calls * 1e6
    draws = 10_000_000
    uniform = jax.jit(lambda k: jnp.sum(jax.random.uniform(k, (draws,))))
    t = _time(lambda: uniform(jax.random.key(3)), max(3, rounds), warmup=1)
    out["uniform_draw_ns"] = t[0] / draws * 1e9

    # The lever of fewer random bits per Bernoulli: two 16-bit slices of each 32-bit word,
    # each compared with a probability quantized to 1/65536 (half the threefry calls).
    def sliced(k):
        words = jax.random.bits(k, (draws // 2,), jnp.uint32)
        threshold = jnp.uint32(19661)  # 0.3 * 65536
        return jnp.sum((words & 0xFFFF) < threshold) + jnp.sum((words >> 16) < threshold)

    sixteen = jax.jit(sliced)
    t = _time(lambda: sixteen(jax.random.key(3)), max(3, rounds), warmup=1)
    out["bernoulli_16bit_slice_ns"] = t[0] / draws * 1e9
    return out


def _interleaved(programs, rounds, min_seconds):
    """Time {name: {kind: fn}} in interleaved rounds: (times {name: {kind: [s per call]}}, calls).

    Every program runs once as a warm-up and once more to choose how many calls in a row one
    measurement makes (enough to last ``min_seconds``); each round then times every program.
    """
    times = {name: {kind: [] for kind in progs} for name, progs in programs.items()}
    calls = {name: {} for name in programs}
    for name, progs in programs.items():
        for kind, fn in progs.items():
            jax.block_until_ready(fn())
            start = time.perf_counter()
            jax.block_until_ready(fn())
            calls[name][kind] = max(1, int(np.ceil(min_seconds / (time.perf_counter() - start))))
    for _ in range(rounds):
        for name, progs in programs.items():
            for kind, fn in progs.items():
                n = calls[name][kind]
                start = time.perf_counter()
                for _ in range(n):
                    out = fn()
                jax.block_until_ready(out)
                times[name][kind].append((time.perf_counter() - start) / n)
    return times, calls


def _with_ceiling(programs, rounds, min_seconds, size):
    """:func:`_interleaved` with one size^3 fp32 product timed in the same rounds:
    (times, calls, ceiling), the ceiling being that product's GFLOP/s."""
    a = jax.random.normal(jax.random.key(0), (size, size))
    mm = jax.jit(lambda x, y: x @ y)
    times, calls = _interleaved({**programs, "ceiling": {"square": lambda: mm(a, a)}}, rounds,
                                min_seconds)
    return times, calls, 2 * size**3 / float(np.median(times["ceiling"]["square"])) / 1e9


def measure(sizes, algorithm, batch, num_samples, scan_steps, num_seeds, rounds,
            min_seconds=0.0, ceiling_size=1024, insomnia=1.0):
    """Rows of figures for one machine and algorithm, every implementation in the same rounds.

    The square-matmul ceiling (``ceiling_size``^3) is timed in the same rounds too: this
    machine's speed drifts by 2x within minutes, so a ceiling timed once at the start is no
    measure of the steps timed later. Each row's ``fraction_of_matmul_ceiling`` is against it.
    """
    params = wsjax.init(jax.random.key(0), sizes, init_scale=0.1)
    data = (jax.random.uniform(jax.random.key(1), (scan_steps, batch, sizes[0])) < 0.3
            ).astype(jnp.float32)
    impls = implementations(algorithm, num_samples, insomnia)
    programs, compile_s, memory = {}, {}, {}
    for name, (init, step, _) in impls.items():
        def run(key, carry, step=step):
            keys = jax.random.split(key, scan_steps)
            return jax.lax.scan(lambda c, xs: (step(xs[0], c, xs[1]), None), carry,
                                (keys, data))[0]
        carry = init(params)
        start = time.perf_counter()
        scan = jax.jit(run).lower(jax.random.key(2), carry).compile()
        compile_s[name] = time.perf_counter() - start
        sweep_fn = jax.vmap(run, in_axes=(0, None))
        seed_keys = jax.random.split(jax.random.key(3), num_seeds)
        sweep = jax.jit(sweep_fn).lower(seed_keys, carry).compile()
        mem = sweep.memory_analysis()
        memory[name] = None if mem is None else int(
            mem.argument_size_in_bytes + mem.output_size_in_bytes + mem.temp_size_in_bytes)
        one = jax.jit(step)
        jax.block_until_ready(one(jax.random.key(4), carry, data[0]))
        programs[name] = dict(scan=lambda scan=scan, carry=carry: scan(jax.random.key(2), carry),
                              sweep=lambda sweep=sweep, carry=carry, k=seed_keys: sweep(k, carry),
                              per_step=lambda one=one, carry=carry: _loop(one, carry, data))
    times, calls, ceiling = _with_ceiling(programs, rounds, min_seconds, ceiling_size)
    flops = matmul_flops(sizes, batch, algorithm, num_samples)
    rows = []
    for name in impls:
        med = {kind: float(np.median(t)) for kind, t in times[name].items()}
        gflops = flops * scan_steps / med["scan"] / 1e9
        row = dict(size="-".join(map(str, sizes)), algorithm=algorithm, implementation=name,
                   batch=batch, num_samples=num_samples if algorithm == "rws" else None,
                   insomnia=insomnia if algorithm == "rws" else None,
                   scan_steps_per_s=scan_steps / med["scan"],
                   per_step_jit_steps_per_s=scan_steps / med["per_step"],
                   sweep_steps_per_s=num_seeds * scan_steps / med["sweep"],
                   examples_per_s=batch * scan_steps / med["scan"],
                   matmul_flops_per_step=flops, gflops=gflops,
                   compile_s=compile_s[name], sweep_memory_bytes=memory[name],
                   spread_s={kind: [min(t), max(t)] for kind, t in times[name].items()},
                   calls_per_measurement=calls[name], matmul_ceiling_gflops=ceiling,
                   fraction_of_matmul_ceiling=gflops / ceiling)
        rows.append(row)
    minimal = rows[0]
    for row in rows:
        for kind in ("scan_steps_per_s", "per_step_jit_steps_per_s", "sweep_steps_per_s"):
            row[f"{kind}_vs_minimal"] = row[kind] / minimal[kind]
    return rows


def step_products(sizes, batch, algorithm, num_samples):
    """The (m, k, n) of every matrix product of one minimal step (what matmul_flops counts)."""
    rows = batch if algorithm == "wake_sleep" else batch * num_samples
    shapes = []
    for a, b in zip(sizes, sizes[1:]):  # layer a below, b above; (m, k, n): [m, k] x [k, n]
        # Q sample (up), P logits (down), the generative delta rule's error x sample
        shapes += [(rows, a, b), (rows, b, a), (a, rows, b)]
        # wake-sleep's dream (down), Q logits (up), recognition delta rule; RWS's Q delta rule
        shapes += ([(rows, b, a), (rows, a, b), (b, rows, a)] if algorithm == "wake_sleep"
                   else [(b, rows, a)])
    return shapes


def step_draws(sizes, batch, algorithm, num_samples):
    """Bernoulli draws of one minimal step: wake samples of the hidden layers (K per example for
    RWS) and, for wake-sleep, dreams of every layer."""
    if algorithm == "wake_sleep":
        return batch * sum(sizes[1:]) + batch * sum(sizes)
    return batch * num_samples * sum(sizes[1:])  # RWS at insomnia 1: no dreams


def _sliced_bernoulli(key, quantized, bits):
    """Bernoullis from ``bits``-bit slices of 32-bit words, each compared with a probability
    quantized to 1/2^bits (32 / bits draws per word): the lever of fewer random bits."""
    per_word = 32 // bits
    words = jax.random.bits(key, (-(-quantized.size // per_word),), jnp.uint32)
    mask = jnp.uint32(2**bits - 1)
    slices = jnp.concatenate([(words >> (bits * i)) & mask for i in range(per_word)])
    return slices[:quantized.size] < quantized


def step_floors(sizes, algorithm, batch, num_samples, scan_steps, rounds, min_seconds=0.0,
                ceiling_size=1024):
    """What one step costs at the least: its matrix products alone and its Bernoulli draws
    alone, each as a lax.scan of ``scan_steps`` steps at the step's shapes, in us per step.
    No implementation of the step runs faster than its products alone.

    The draws three ways: exact uniforms compared with the probabilities (what the kit and the
    minimal implementation do), and 16- and 8-bit slices of random words compared with
    quantized probabilities (approximate: a probability below 2^-(bits+1) never fires).
    Every program's input depends on the loop's carry, so XLA cannot hoist it out of the loop.
    The square-matmul ceiling is timed in the same rounds (``products_fraction_of_ceiling``).
    """
    shapes = step_products(sizes, batch, algorithm, num_samples)
    mats = [(jax.random.normal(jax.random.key(2 * i), (m, k)),
             jax.random.normal(jax.random.key(2 * i + 1), (k, n)))
            for i, (m, k, n) in enumerate(shapes)]
    num_draws = step_draws(sizes, batch, algorithm, num_samples)
    probs = jax.nn.sigmoid(jax.random.normal(jax.random.key(7), (num_draws,)))

    def scan(body):
        def run():
            step = lambda c, i: (body(c, i), None)
            return jax.lax.scan(step, jnp.zeros(()), jnp.arange(scan_steps))[0]
        return jax.jit(run).lower().compile()

    def products(c, i):
        return sum(jnp.sum((x * (1.0 + c * 1e-30)) @ y) for x, y in mats) * 1e-30

    def draws(sample):
        return lambda c, i: c + jnp.sum(sample(jax.random.fold_in(jax.random.key(3), i)))

    exact = lambda k: jax.random.uniform(k, (num_draws,)) < probs
    programs = {"products": scan(products), "draws_exact": scan(draws(exact))}
    for bits in (16, 8):
        q = jnp.round(probs * 2**bits).astype(jnp.uint32)
        sliced = lambda k, q=q, b=bits: _sliced_bernoulli(k, q, b)
        programs[f"draws_{bits}bit"] = scan(draws(sliced))
    times, _, ceiling = _with_ceiling({"floors": programs}, rounds, min_seconds, ceiling_size)
    out = {f"{name}_us_per_step": float(np.median(t)) / scan_steps * 1e6
           for name, t in times["floors"].items()}
    flops = sum(2 * m * k * n for m, k, n in shapes)
    out["products_gflops"] = flops / (out["products_us_per_step"] * 1e3)
    out["matmul_ceiling_gflops"] = ceiling
    # No implementation of the step can beat its products alone (on several cores the draws
    # and the rest may overlap them, so the products' time is the only floor).
    out["products_fraction_of_ceiling"] = out["products_gflops"] / out["matmul_ceiling_gflops"]
    return dict(size="-".join(map(str, sizes)), algorithm=algorithm, products=len(shapes),
                matmul_flops_per_step=flops, draws_per_step=num_draws, **out)


def _loop(one, carry, data):
    for i in range(data.shape[0]):
        carry = one(jax.random.fold_in(jax.random.key(5), i), carry, data[i])
    return carry


def steps_suite():
    sizes = []
    for text in FLAGS.sizes:
        try:
            sizes.append(tuple(int(n) for n in text.split("-")))
        except ValueError:
            raise app.UsageError(f"--sizes: {text!r} is not n0-n1-... of positive ints") from None
        if len(sizes[-1]) < 2 or min(sizes[-1]) < 1:
            raise app.UsageError(f"--sizes: {text!r} needs at least two positive widths")
    for name in FLAGS.algorithms:
        if name not in ("wake_sleep", "rws"):
            raise app.UsageError(f"--algorithms: unknown {name!r} (wake_sleep, rws)")
    common.check_positive(batch_size=FLAGS.batch_size, num_samples=FLAGS.num_samples,
                          scan_steps=FLAGS.scan_steps, num_seeds=FLAGS.num_seeds,
                          rounds=FLAGS.rounds, ceiling_size=FLAGS.ceiling_size)
    if not FLAGS.min_seconds >= 0:
        raise app.UsageError(f"--min_seconds must be >= 0, got {FLAGS.min_seconds}")
    shapes = sorted({(FLAGS.batch_size, s[0], s[1]) for s in sizes})
    ceiling = ceilings(FLAGS.ceiling_size, shapes, FLAGS.rounds)
    device = jax.devices()[0]
    header = dict(backend=jax.default_backend(), device=str(getattr(device, "device_kind", device)),
                  device_count=jax.device_count(), jax=jax.__version__, **ceiling)
    print(json.dumps(header))
    rows, floors = [], []
    for s in sizes:
        for algorithm in FLAGS.algorithms:
            measured = measure(s, algorithm, FLAGS.batch_size, FLAGS.num_samples,
                               FLAGS.scan_steps, FLAGS.num_seeds, FLAGS.rounds,
                               FLAGS.min_seconds, FLAGS.ceiling_size, FLAGS.insomnia)
            for row in measured:
                rows.append(row)
                print(json.dumps(row), flush=True)
            floor = step_floors(s, algorithm, FLAGS.batch_size, FLAGS.num_samples,
                                FLAGS.scan_steps, FLAGS.rounds, FLAGS.min_seconds,
                                FLAGS.ceiling_size)
            floor["minimal_step_us"] = 1e6 / measured[0]["scan_steps_per_s"]
            for name in ("products", "draws_exact"):
                floor[f"{name}_share_of_minimal_step"] = (floor[f"{name}_us_per_step"]
                                                          / floor["minimal_step_us"])
            floors.append(floor)
            print(json.dumps(floor), flush=True)
    print(f"\n{header['backend']} ({header['device']}, {header['device_count']} device(s)), jax "
          f"{header['jax']}; batch {FLAGS.batch_size}, lax.scan of {FLAGS.scan_steps} steps, "
          f"medians of {FLAGS.rounds} interleaved rounds of at least {FLAGS.min_seconds} s each")
    print(f"ceilings at the start: fp32 matmul {FLAGS.ceiling_size}^3 "
          f"{ceiling['matmul_square_gflops']:.1f} GFLOP/s; "
          + "; ".join(f"{k[7:-7]} {v:.1f} GFLOP/s" for k, v in ceiling.items()
                      if k.startswith("matmul_") and k != "matmul_square_gflops")
          + f"; jit dispatch {ceiling['jit_dispatch_us']:.1f} us; one uniform draw "
          f"{ceiling['uniform_draw_ns']:.2f} ns (one Bernoulli from a 16-bit slice of a word: "
          f"{ceiling['bernoulli_16bit_slice_ns']:.2f} ns); \"ceiling\" in the tables: the "
          f"{FLAGS.ceiling_size}^3 product timed in the same rounds as each row\n")
    print("| machine | algorithm | implementation | scan steps/s | x minimal | jit/step steps/s | "
          "x minimal | sweep of seeds, steps/s | x minimal | GFLOP/s | ceiling GFLOP/s | "
          "of ceiling | compile s | sweep memory MB |")
    print("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        algo = (f"RWS K={r['num_samples']:d}" + (f", insomnia {r['insomnia']:g}"
                                                  if r["insomnia"] != 1 else "")
                if r["algorithm"] == "rws" else "wake-sleep")
        mem = "" if r["sweep_memory_bytes"] is None else f"{r['sweep_memory_bytes'] / 2**20:.1f}"
        print(f"| {r['size']} | {algo} | {r['implementation']} | {r['scan_steps_per_s']:.0f} | "
              f"{r['scan_steps_per_s_vs_minimal']:.2f} | {r['per_step_jit_steps_per_s']:.0f} | "
              f"{r['per_step_jit_steps_per_s_vs_minimal']:.2f} | {r['sweep_steps_per_s']:.0f} | "
              f"{r['sweep_steps_per_s_vs_minimal']:.2f} | {r['gflops']:.1f} | "
              f"{r['matmul_ceiling_gflops']:.1f} | "
              f"{r['fraction_of_matmul_ceiling']:.0%} | {r['compile_s']:.2f} | {mem} |")
    print("\nWhat one step costs at the least (lax.scan at the step's shapes, us per step): its "
          "matrix products alone, its Bernoulli draws alone (exact uniforms; 16- and 8-bit slices "
          "of words, approximate), each against the minimal step's time in the scan.\n")
    print("| machine | algorithm | minimal step, us | products alone, us | of the step | "
          "products GFLOP/s | exact draws, us | of the step | 16-bit draws, us | 8-bit draws, us "
          "| ceiling GFLOP/s | products alone: of ceiling |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for f in floors:
        algo = f"RWS K={FLAGS.num_samples}" if f["algorithm"] == "rws" else "wake-sleep"
        print(f"| {f['size']} | {algo} | {f['minimal_step_us']:.0f} | "
              f"{f['products_us_per_step']:.0f} | {f['products_share_of_minimal_step']:.0%} | "
              f"{f['products_gflops']:.1f} | {f['draws_exact_us_per_step']:.0f} | "
              f"{f['draws_exact_share_of_minimal_step']:.0%} | "
              f"{f['draws_16bit_us_per_step']:.0f} | "
              f"{f['draws_8bit_us_per_step']:.0f} | {f['matmul_ceiling_gflops']:.1f} | "
              f"{f['products_fraction_of_ceiling']:.0%} |")


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
        eager = _time(lambda fn=fn, args=args: fn(*args), repeats, warmup=2)
        twin = _time(lambda jitted=jitted, args=args: jitted(*args), repeats, warmup=2)
        plain = _time(lambda fn=fn, args=args: fn.uncompiled(*args), max(1, repeats // 3),
                      warmup=0)
        rows.append(dict(function=name, eager_ms=1e3 * eager[0], jit_ms=1e3 * twin[0],
                         uncompiled_eager_ms=1e3 * plain[0], ratio=eager[0] / twin[0],
                         within_5x_plus_20ms=bool(eager[0] <= 5 * twin[0] + 0.020),
                         eager_spread_ms=[1e3 * eager[1], 1e3 * eager[2]]))
    print(f"backend {jax.default_backend()}, {jax.device_count()} device(s); medians of "
          f"{repeats} calls after 2 warm-up calls")
    print("| function | eager call, ms | under jax.jit, ms | eager / jit | uncompiled eager, ms |")
    print("|---|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['function']} | {r['eager_ms']:.3f} | {r['jit_ms']:.3f} | {r['ratio']:.2f} | "
              f"{r['uncompiled_eager_ms']:.1f} |")
    for r in rows:
        print(json.dumps(r))


def kinds_measure(sizes, batch, num_samples, scan_steps, rounds, min_seconds=0.0,
                  nade_hidden=50):
    """Rows of figures, one per kind of layer, for one machine, timed in the same rounds.

    Every conditional and the prior of the machine are of the kind; each row holds the RWS
    step (``steps_per_s``, ``ratio_to_sbn``), the recognition sampling alone and the
    gradient of the particles' log-probabilities alone, each per step in microseconds.
    """
    from wsjax.layers import DARN, NADE, SBN, Conditionals
    from wsjax.model import particle_log_probs, sample_up

    num_layers = len(sizes) - 1
    data = (jax.random.uniform(jax.random.key(1), (scan_steps, batch, sizes[0])) < 0.3
            ).astype(jnp.float32)
    programs = {}
    for name, kind in (("sbn", SBN()), ("darn", DARN()), (f"nade:{nade_hidden}",
                                                          NADE(nade_hidden))):
        kinds = Conditionals((kind,) * num_layers, (kind,) * num_layers, kind)
        algo = wsjax.rws(optax.sgd, num_samples, conditionals=kinds)
        params = wsjax.init(jax.random.key(0), sizes, conditionals=kinds, init_scale=0.1)
        state = algo.init(params, algo.default_hyperparams(learning_rate=1e-3))
        keys = jax.random.split(jax.random.key(2), scan_steps)

        def over_steps(body, carry, keys=keys):
            return jax.lax.scan(lambda c, xs: (body(c, *xs), None), carry, (keys, data))[0]

        step = jax.jit(lambda s, algo=algo: over_steps(lambda c, k, u: algo.step(k, c, u)[0], s))
        sample = jax.jit(lambda p, kinds=kinds: over_steps(
            lambda c, k, u: c + sum(jnp.sum(h) for h in sample_up(k, p, u, kinds, num_samples)),
            jnp.zeros(())))
        hs = sample_up(jax.random.key(3), params, data[0], kinds, num_samples)

        def score(c, k, u, p, kinds=kinds, hs=hs):
            grads = jax.grad(lambda q: sum(jnp.sum(x) for x in particle_log_probs(
                q, u, hs, kinds)))(p)
            return c + sum(jnp.sum(g) for g in jax.tree.leaves(grads))

        log_probs = jax.jit(lambda p, score=score: over_steps(
            lambda c, k, u: score(c, k, u, p), jnp.zeros(())))
        programs[name] = {"step": lambda step=step, state=state: step(state),
                          "sample": lambda sample=sample, p=params: sample(p),
                          "log_probs": lambda log_probs=log_probs, p=params: log_probs(p)}
    times, _ = _interleaved(programs, rounds, min_seconds)
    per_step = {name: {part: float(np.median(t)) / scan_steps * 1e6 for part, t in parts.items()}
                for name, parts in times.items()}
    return [dict(sizes="-".join(map(str, sizes)), kind=name, batch=batch, num_samples=num_samples,
                 steps_per_s=1e6 / t["step"], step_us=t["step"],
                 ratio_to_sbn=per_step["sbn"]["step"] / t["step"],
                 sample_us=t["sample"], log_probs_grad_us=t["log_probs"],
                 sample_share_of_step=t["sample"] / t["step"])
            for name, t in per_step.items()]


def kinds_suite():
    common.check_positive(batch_size=FLAGS.batch_size, num_samples=FLAGS.num_samples,
                          scan_steps=FLAGS.scan_steps, rounds=FLAGS.rounds,
                          nade_hidden=FLAGS.nade_hidden)
    device = jax.devices()[0]
    print(json.dumps(dict(backend=jax.default_backend(),
                          device=str(getattr(device, "device_kind", device)), jax=jax.__version__)))
    print("| sizes | kind | RWS steps/s | vs SBN | sampling us | log-prob grad us | "
          "sampling share |")
    print("|---|---|---|---|---|---|---|")
    rows = []
    for text in FLAGS.sizes:
        sizes = tuple(int(n) for n in text.split("-"))
        for r in kinds_measure(sizes, FLAGS.batch_size, FLAGS.num_samples, FLAGS.scan_steps,
                               FLAGS.rounds, FLAGS.min_seconds, FLAGS.nade_hidden):
            rows.append(r)
            print(f"| {r['sizes']} | {r['kind']} | {r['steps_per_s']:.1f} | "
                  f"{r['ratio_to_sbn']:.2f} | {r['sample_us']:.0f} | "
                  f"{r['log_probs_grad_us']:.0f} | {r['sample_share_of_step']:.2f} |", flush=True)
    for r in rows:
        print(json.dumps(r))


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    if FLAGS.suite == "eager":
        eager_suite(FLAGS.repeats)
    elif FLAGS.suite == "kinds":
        kinds_suite()
    else:
        steps_suite()


if __name__ == "__main__":
    common.run_main(main)
