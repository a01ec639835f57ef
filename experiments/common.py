"""What the experiments share: their flags (defined once, here), and flags -> library calls.

An experiment calls :func:`define_flags` with its own defaults at import, then in
``main``: :func:`build` (every flag checked, nothing compiled), :func:`run` (claim
the output directory, sweep, write results and figures), and whatever it adds.
"""

import json
import logging as std_logging
import math
import os
import shlex
import sys
import threading

import jax
import numpy as np
import optax
from absl import app, flags, logging

import wsjax
from experiments import outputs
from wsjax import evaluation, hyperparams, layout, plotting, results, runner

FLAGS = flags.FLAGS
OPTIMIZERS = {"sgd": optax.sgd, "adam": optax.adam}
ALGORITHMS = ("wake_sleep", "rws", "vimco", "nvil")
# Flags that do not change the numbers a run produces.
NOT_IDENTITY = ("output_dir", "overwrite", "coordinator_address", "num_processes", "process_id",
                "join_timeout", "checkpoint_every", "plot_axis", "cpu_devices")
TABLE_FLAGS = ("insomnia", "defensive", "lr_decay", "activity_weight", "activity_floor",
               "activity_ceiling", "init_scale")
"""Hyperparameters that are flags of their own, named, described and defaulted by their row of
wsjax.hyperparams.TABLE (the rest enter as --learning_rates, --layer_rate_scales, --init_biases
and --num_steps, or through --grid)."""
PER_LAYER_FLAGS = ("init_scale", "layer_rate_scales", "activity_weight", "activity_floor",
                   "activity_ceiling")
"""The flags with one value per layer of conditionals (or one for all)."""
PER_LAYER_DEFAULTS = (" Left at a default of several values while --layer_sizes has another depth, "
                      "its last value goes to the top layer and its first to every layer below.")


def define_flags(skip=(), **defaults):
    """Define the shared flags, with this experiment's defaults (keyword = flag name).

    Args:
      skip: names of shared flags this experiment replaces with its own.
    """
    d = lambda name, value: defaults.pop(name, value)
    flags.DEFINE_enum("algorithm", d("algorithm", "wake_sleep"), list(ALGORITHMS),
                      "Training algorithm: wake_sleep (Hinton et al. 1995), rws (reweighted "
                      "wake-sleep), vimco (Mnih & Rezende 2016) or nvil (Mnih & Gregor 2014).")
    flags.DEFINE_enum("optimizer", d("optimizer", "sgd"), list(OPTIMIZERS),
                      "optax optimizer (sgd: the delta rules).")
    flags.DEFINE_bool("sequential", d("sequential", False),
                      "wake_sleep: the sleep phase dreams from the machine after the wake update.")
    flags.DEFINE_list("learning_rates", d("learning_rates", ["1"]),
                      "The learning-rate axis: 'e' for both halves or 'generative:recognition'.")
    flags.DEFINE_multi_string("grid", d("grid", []),
                              "NAME=V1,V2,...: one more grid axis over a hyperparameter "
                              "(repeatable, in order); a vector value is written 'a:b' (one entry "
                              "per layer).")
    flags.DEFINE_integer("num_seeds", d("num_seeds", 4), "Seeds per grid point.")
    if "num_steps" not in skip:
        flags.DEFINE_integer("num_steps", d("num_steps", 10_000), "Training steps per run.")
    flags.DEFINE_integer("batch_size", d("batch_size", 10), "Examples per step.")
    flags.DEFINE_integer("sleep_batch_size", d("sleep_batch_size", 0),
                         "Dreams per sleep phase (0: the batch size).")
    flags.DEFINE_list("layer_sizes", d("layer_sizes", None),
                      "Widths, visible first (default: the data set's).")
    flags.DEFINE_integer("num_samples", d("num_samples", 5), "rws: importance samples per example.")
    flags.DEFINE_list("generative", d("generative", ["sbn"]),
                      "Kind of each generative conditional, visible layer first: sbn, darn or "
                      "nade:H (H hidden units); one for all layers, or one per layer.")
    flags.DEFINE_list("recognition", d("recognition", ["sbn"]),
                      "Kind of each recognition conditional, bottom layer first "
                      "(as --generative).")
    flags.DEFINE_string("prior", d("prior", "sbn"),
                        "Kind of the top-layer prior (as --generative).")
    for row in hyperparams.TABLE:
        if row.name not in TABLE_FLAGS:
            continue
        if row.shape == "per_layer":
            flags.DEFINE_list(row.name, d(row.name, [f"{row.default:g}"]),
                              f"{row.help} One value, or one per layer of conditionals."
                              + PER_LAYER_DEFAULTS)
        else:
            readers = "" if set(ALGORITHMS) <= set(row.readers) else (
                ", ".join(row.readers) + ": ")
            flags.DEFINE_float(row.name, d(row.name, row.default), readers + row.help)
    flags.DEFINE_list("layer_rate_scales", d("layer_rate_scales", ["1"]),
                      "Rate multiplier per layer of conditionals (the prior takes the top one): "
                      "'m', or 'start:end' moving geometrically over the run; one entry for all "
                      "(the hyperparameters layer_rate_start and layer_rate_end)."
                      + PER_LAYER_DEFAULTS)
    flags.DEFINE_string("init_biases", d("init_biases", "0:0:0"),
                        "Initial biases 'prior:generative:recognition'.")
    if "num_evals" not in skip:
        flags.DEFINE_integer("num_evals", d("num_evals", 10), "Evaluations (and chunks) per run.")
    flags.DEFINE_enum("vectorize", d("vectorize", "seeds"), list(layout.VECTORIZE),
                      "seeds: each grid point's seeds vmapped together, the points in turn "
                      "(a run's numbers are bitwise those of the run swept alone, on any device "
                      "count); "
                      "runs: every run a device holds vmapped together (faster for small models).")
    flags.DEFINE_integer("checkpoint_every", 1, "Checkpoint every this many evaluations.")
    flags.DEFINE_string("plot_axis", None, "Grid axis of final_vs_axis.png (default: the first "
                        "with more than one value).")
    flags.DEFINE_integer("seed", d("seed", 0), "Root seed.")
    flags.DEFINE_string("output_dir", d("output_dir", None), "Results, figures and checkpoints.")
    flags.DEFINE_bool("overwrite", False, "Replace the kit's outputs of a different run there.")
    flags.DEFINE_string("coordinator_address", None, "host:port of process 0 (several processes).")
    flags.DEFINE_integer("num_processes", None, "Number of processes (several hosts).")
    flags.DEFINE_integer("process_id", None, "This process's index.")
    flags.DEFINE_integer("join_timeout", 120, "Seconds to wait for every process to join "
                         "before giving up (several processes).")
    flags.DEFINE_integer("cpu_devices", d("cpu_devices", 1),
                         "Split the host CPU into this many XLA devices, the runs sharded over "
                         "them "
                         "(0: one per core; small models run faster that way than as one device "
                         "spread over every core). Left alone when XLA_FLAGS already sets "
                         "--xla_force_host_platform_device_count.")
    if defaults:
        raise ValueError(f"no shared flags named {sorted(defaults)}")


def _program():
    return "experiments." + os.path.splitext(os.path.basename(sys.argv[0]))[0]


def _command():
    """The command line that started this process, as a user would type it again."""
    return " ".join(["python -m " + _program(), *map(shlex.quote, sys.argv[1:])])


def _one_line(error):
    """An error's message on one line (absl's flag errors may span several)."""
    return " ".join(line.strip() for line in str(error).strip().splitlines() if line.strip())


class _HelpFlag(flags.BooleanFlag):
    """absl's --help (-?, --helpshort) and --helpfull, exiting 0: help asked for is no error."""

    def __init__(self, name, short_name=None, full=False):
        super().__init__(name, False, "show full help" if full else "show this help",
                         short_name=short_name, allow_hide_cpp=True)
        self.full = full

    def parse(self, argument):
        if self._parse(argument):
            app.usage(shorthelp=not self.full, writeto_stdout=True)
            if not self.full:
                print("\nTry --helpfull to get a list of all flags.")
            sys.exit(0)


def _define_help_flags():
    app.define_help_flags()  # idempotent: app.run keeps the ones defined here
    if isinstance(FLAGS["help"], _HelpFlag):
        return
    for name in ("help", "?", "helpshort", "helpfull"):
        if name in FLAGS:
            delattr(FLAGS, name)
    for flag in (_HelpFlag("help", "?"), _HelpFlag("helpshort"), _HelpFlag("helpfull", full=True)):
        flags.DEFINE_flag(flag, module_name="absl.app")


def _parse_flags(argv):
    """absl's flag parsing, with an error (an unknown flag, a value of the wrong type, a missing
    required flag) shown as one line, exit 2, like every other usage error."""
    try:
        return FLAGS(argv)
    except flags.Error as e:
        print(f"{_program()}: error: {_one_line(e)}", file=sys.stderr)
        sys.exit(2)


class _NoTpuNotice(std_logging.Filter):
    """Drops JAX's INFO notice that it found no TPU, printed on every run of a machine without
    one; the devices a sweep runs on are logged by the sweep itself."""

    def filter(self, record):
        return record.levelno >= std_logging.WARNING or not record.getMessage().startswith(
            "Unable to initialize backend 'tpu'")


_claimed = []  # the output directory this process claimed, once it has


def run_main(main):
    """absl's app.run, with the kit's command-line conventions.

    --help lists the experiment's flags (its own and the shared ones) and exits 0; a usage
    error, from absl's flag parsing or from the checks of ``main``, is one line
    (``experiments.NAME: error: ...``, no help text, no traceback) and exit status 2; Ctrl-C
    is one line saying how to resume, and exit status 130.
    """
    std_logging.getLogger("jax._src.xla_bridge").addFilter(_NoTpuNotice())
    _define_help_flags()

    def checked(argv):
        try:
            split_cpu()
            start_processes()
            return main(argv)
        except (app.UsageError, flags.ValidationError) as e:
            print(f"{_program()}: error: {_one_line(e)}", file=sys.stderr)
            sys.exit(2)
        except KeyboardInterrupt:
            if _claimed:
                print(f"{_program()}: interrupted; the checkpoints in "
                      f"{os.path.join(_claimed[0], 'checkpoints')} are kept: run the same "
                      f"command to resume: {_command()}", file=sys.stderr)
            else:
                print(f"{_program()}: interrupted", file=sys.stderr)
            sys.exit(130)

    app.run(checked, flags_parser=_parse_flags)


def _floats(name, text, sep=":"):
    try:
        return [float(v) for v in str(text).split(sep)]
    except ValueError:
        raise flags.ValidationError(f"--{name}: {text!r} is not a number") from None


def parse_rates(specs) -> list:
    """Parse rates given as strings: "0.1" (both halves) or "0.5:2" (generative:recognition).

    Returns:
      a list of floats and [gen, rec] pairs. 0 is allowed (it freezes a half).

    Raises:
      ValueError: for an empty list, a malformed entry, or a rate that is negative or not finite.
    """
    specs = list(specs)
    if not specs:
        raise ValueError("at least one learning rate is needed")
    out = []
    for spec in specs:
        parts = str(spec).split(":")
        try:
            values = [float(p) for p in parts]
        except ValueError:
            raise ValueError(
                f"learning rate {spec!r} is not a number or a 'gen:rec' pair") from None
        if len(values) not in (1, 2):
            raise ValueError(f"learning rate {spec!r} must be 'rate' or 'generative:recognition'")
        if not all(math.isfinite(v) and v >= 0 for v in values):
            raise ValueError(f"learning rates must be finite and >= 0, got {spec!r}")
        out.append(values[0] if len(values) == 1 else values)
    return out


def parse_ints(name, values, minimum=1):
    """A list flag of ints, each >= minimum."""
    try:
        out = tuple(int(v) for v in values)
    except ValueError:
        raise flags.ValidationError(f"--{name} must be a list of integers, got {values}") from None
    if not out or any(v < minimum for v in out):
        raise flags.ValidationError(f"--{name} must be integers >= {minimum}, got {list(values)}")
    return out


def parse_grid(specs):
    """--grid entries -> ordered {name: [values]} (a value 'a:b' is a vector)."""
    axes = {}
    for spec in specs:
        name, sep, values = spec.partition("=")
        name = name.strip()
        if not sep or not name or not values.strip():
            raise flags.ValidationError(f"--grid needs NAME=V1,V2,..., got {spec!r}")
        if name == "learning_rate":
            raise flags.ValidationError("the learning-rate axis is --learning_rates, not --grid")
        if name in axes:
            raise flags.ValidationError(f"--grid names {name!r} twice")
        parsed = [_floats(f"grid={name}", v) for v in values.split(",")]
        axes[name] = [v[0] if len(v) == 1 else v for v in parsed]
    return axes


def layer_rates(values):
    """--layer_rate_scales -> (start, end) lists."""
    start, end = [], []
    for v in values:
        parts = _floats("layer_rate_scales", v)
        if len(parts) not in (1, 2):
            raise flags.ValidationError(
                f"--layer_rate_scales entries must be 'm' or 'start:end', got {v!r}")
        start.append(parts[0])
        end.append(parts[-1])
    return start, end


def per_layer_values(name):
    """A list flag of one number per layer (or one for all): 'a,b', not the grid's 'a:b'."""
    values = [_floats(name, v) for v in FLAGS[name].value]
    if any(len(v) != 1 for v in values):
        raise flags.ValidationError(f"--{name} takes one number per layer, separated by commas "
                                    f"(e.g. 10,0), got {','.join(FLAGS[name].value)!r}")
    return [v[0] for v in values]


def fit_per_layer_flags(sizes):
    """Give every per-layer flag one value, or one per layer of ``sizes``.

    An experiment's default of several values is written for its default depth; left at that
    default, it is spread to another depth: its last value to the top layer of conditionals
    (the one next to the prior), its first to every layer below. A value the user gave of
    another length is refused, naming --layer_sizes.
    """
    num_layers = len(sizes) - 1
    for name in PER_LAYER_FLAGS:
        values = list(FLAGS[name].value)
        if len(values) in (1, num_layers):
            continue
        if FLAGS[name].using_default_value:
            setattr(FLAGS, name, values[:1] * (num_layers - 1) + values[-1:])
        else:
            raise flags.ValidationError(
                f"--{name} has {len(values)} values ({','.join(values)}), but --layer_sizes="
                f"{','.join(map(str, sizes))} has {num_layers} layer(s) of conditionals: give "
                f"one value, or one per layer")


def trace_first_chunk(task, trainer, points):
    """Trace, without compiling, what the sweep will run for the grid's first point: the
    initialisation and one chunk (the steps, then the evaluation). An error that tracing
    raises (a per-layer value of the wrong length, an optimizer keyword of the wrong kind,
    a machine too large for the task's evaluation) is then a usage error, found before the
    output directory is claimed. Every point of a grid has the same shapes."""
    first = jax.tree.map(lambda a: a[0], points)  # points: wsjax.grid's
    key = jax.random.key(0)
    try:
        state = jax.eval_shape(trainer.init, key, first)
        jax.eval_shape(trainer.run, key, state, task.data)
    except (ValueError, TypeError, IndexError) as e:
        first_line = next((line for line in str(e).splitlines() if line.strip()), type(e).__name__)
        raise flags.ValidationError(
            f"{task.name} cannot be run with these flags: {first_line.strip()}") from None


def check_positive(**named):
    """Raise a ValidationError naming the first flag that is not > 0."""
    for name, value in named.items():
        if not value > 0:
            raise flags.ValidationError(f"--{name} must be positive, got {value}")


def _kind(flag, text):
    """One kind of layer from its flag spelling: sbn, darn or nade:H."""
    name, _, arg = text.strip().lower().partition(":")
    if name in ("sbn", "darn") and not arg:
        return wsjax.layers.SBN() if name == "sbn" else wsjax.layers.DARN()
    if name == "nade" and arg.isdigit() and int(arg) > 0:
        return wsjax.layers.NADE(int(arg))
    raise flags.ValidationError(
        f"--{flag}: {text!r} is not a kind of layer; use sbn, darn or nade:H (H > 0 hidden units)")


def conditionals(num_layers):
    """The kinds of layer the flags ask for, for a machine of ``num_layers`` layers."""
    sides = {}
    for side in ("generative", "recognition"):
        kinds = [_kind(side, v) for v in getattr(FLAGS, side)]
        if len(kinds) == 1:
            kinds = kinds * num_layers
        if len(kinds) != num_layers:
            raise flags.ValidationError(
                f"--{side} names {len(kinds)} kinds, but the machine has {num_layers} layer(s) "
                "of conditionals: give one kind, or one per layer")
        sides[side] = tuple(kinds)
    return wsjax.layers.Conditionals(prior=_kind("prior", FLAGS.prior), **sides)


def _spelling(flag, text):
    """The one spelling of a kind of layer: sbn, darn or nade:H."""
    kind = _kind(flag, text)
    return f"nade:{kind.num_hidden}" if isinstance(kind, wsjax.layers.NADE) else (
        text.strip().lower())


def kinds_settings():
    """The kinds of layer the flags name, for the run's identity: spelled one way, and one
    entry for a side whose layers are all of one kind (``sbn,SBN`` is ``sbn``)."""
    out = {}
    for side in ("generative", "recognition"):
        spelled = [_spelling(side, v) for v in getattr(FLAGS, side)]
        out[side] = spelled[:1] if len(set(spelled)) == 1 else spelled
    return dict(out, prior=_spelling("prior", FLAGS.prior))


def algorithm(num_layers=1):
    """The Algorithm the flags ask for, built for the kinds of layer they name."""
    check_positive(num_samples=FLAGS.num_samples)
    kinds = conditionals(num_layers)
    if kinds == wsjax.layers.Conditionals((wsjax.layers.SBN(),) * num_layers,
                                          (wsjax.layers.SBN(),) * num_layers):
        kinds = wsjax.layers.SBN()  # the default machine, as every other entry point builds it
    if FLAGS.sleep_batch_size < 0:
        raise flags.ValidationError(
            f"--sleep_batch_size must be >= 0, got {FLAGS.sleep_batch_size}")
    sleep_batch = FLAGS.sleep_batch_size or None
    optimizer = OPTIMIZERS[FLAGS.optimizer]
    if FLAGS.sequential and FLAGS.algorithm != "wake_sleep":
        raise flags.ValidationError("--sequential applies to --algorithm=wake_sleep only")
    if FLAGS.algorithm == "rws":
        return wsjax.rws(optimizer, FLAGS.num_samples, sleep_batch_size=sleep_batch,
                         conditionals=kinds)
    if FLAGS.algorithm == "vimco":
        if FLAGS.num_samples < 2:
            raise flags.ValidationError(
                f"--algorithm=vimco needs --num_samples >= 2 (its leave-one-out baselines), "
                f"got {FLAGS.num_samples}")
        return wsjax.vimco(optimizer, FLAGS.num_samples, conditionals=kinds)
    if FLAGS.algorithm == "nvil":
        return wsjax.nvil(optimizer, conditionals=kinds)
    return wsjax.wake_sleep(optimizer, sequential=FLAGS.sequential, sleep_batch_size=sleep_batch,
                            conditionals=kinds)


def algorithm_settings():
    """The static settings of the algorithm, as they change its numbers (for the run's identity)."""
    out = dict(name=FLAGS.algorithm, optimizer=FLAGS.optimizer)
    if kinds_settings() != dict(generative=["sbn"], recognition=["sbn"], prior="sbn"):
        out["kinds"] = kinds_settings()  # absent for the default, as in runs made before them
    if FLAGS.algorithm in ("wake_sleep", "rws"):
        out["sleep_batch_size"] = FLAGS.sleep_batch_size or FLAGS.batch_size
    if FLAGS.algorithm in ("rws", "vimco"):
        out["num_samples"] = FLAGS.num_samples
    if FLAGS.algorithm == "wake_sleep":
        out["sequential"] = FLAGS.sequential
    return out


def build(task, num_steps=None, eval_every=None):
    """Check every flag and build (trainer, hyperparams, axes); nothing is compiled.

    Everything that can refuse the flags runs here, before :func:`run` claims the output
    directory: the program of the grid's first point is traced (not compiled), so that an
    error found only when tracing it is refused here too.

    Raises:
      absl.app.UsageError: naming the first impossible flag.
    """
    try:
        num_steps = FLAGS.num_steps if num_steps is None else num_steps
        check_positive(num_seeds=FLAGS.num_seeds, num_steps=num_steps, batch_size=FLAGS.batch_size,
                       lr_decay=FLAGS.lr_decay, checkpoint_every=FLAGS.checkpoint_every)
        if eval_every is None:
            check_positive(num_evals=FLAGS.num_evals)
            if num_steps % FLAGS.num_evals:
                raise flags.ValidationError(
                    f"--num_steps ({num_steps}) must be a multiple of --num_evals "
                    f"({FLAGS.num_evals})")
            eval_every = num_steps // FLAGS.num_evals
        sizes = (parse_ints("layer_sizes", FLAGS.layer_sizes) if FLAGS.layer_sizes
                 else task.layer_sizes)
        if sizes[0] != task.layer_sizes[0]:
            raise flags.ValidationError(
                f"{task.name} has {task.layer_sizes[0]} visible units, but --layer_sizes starts "
                f"with {sizes[0]}")
        fit_per_layer_flags(sizes)
        config = wsjax.TrainConfig(layer_sizes=sizes, num_steps=num_steps,
                                   batch_size=FLAGS.batch_size, sampler=task.sampler,
                                   eval_every=eval_every, eval_fn=task.eval_fn)
        trainer = wsjax.make_train(config, algorithm(len(sizes) - 1))
        if trainer.algorithm.conditionals != wsjax.layers.SBN() and task.metric == "kl_bits":
            raise flags.ValidationError(
                f"--generative, --recognition and --prior: the {task.name} task's metrics read "
                "affine factorial layers; train other kinds of layer on digits or mnist")
        rates = parse_rates(FLAGS.learning_rates)
        start, end = layer_rates(FLAGS.layer_rate_scales)
        biases = _floats("init_biases", FLAGS.init_biases)
        if len(biases) != 3:
            raise flags.ValidationError(
                f"--init_biases must be 'prior:generative:recognition', got {FLAGS.init_biases!r}")
        scale, activity, floor, ceiling = (per_layer_values(name) for name in (
            "init_scale", "activity_weight", "activity_floor", "activity_ceiling"))
        overrides = dict(learning_rate=rates[0], lr_decay=FLAGS.lr_decay, decay_steps=num_steps,
                         layer_rate_start=start, layer_rate_end=end, init_scale=scale,
                         prior_bias=biases[0], generative_bias=biases[1],
                         recognition_bias=biases[2], activity_weight=activity,
                         activity_floor=floor, activity_ceiling=ceiling)
        if FLAGS.algorithm == "rws":
            overrides.update(insomnia=FLAGS.insomnia, defensive=FLAGS.defensive)
        elif FLAGS.defensive:
            raise flags.ValidationError("--defensive applies to --algorithm=rws only")
        hyperparams = trainer.default_hyperparams(**overrides)
        jax.eval_shape(trainer.init, jax.random.key(0), hyperparams)  # every shape checked
        axes = {"learning_rate": rates, **parse_grid(FLAGS.grid)}
        points = wsjax.grid(hyperparams, axes)  # every axis name and value checked
        trace_first_chunk(task, trainer, points)
    except (ValueError, TypeError, flags.ValidationError) as e:
        raise app.UsageError(str(e)) from None
    return trainer, hyperparams, axes


def _plain(tree):
    return jax.tree.map(lambda x: np.asarray(x, np.float32).tolist(), tree)


def identity(task, trainer, hyperparams, axes, **extra):
    """The settings that determine a run's numbers, normalised (values as float32)."""
    c = trainer.config
    return dict(task=task.name, layer_sizes=list(c.layer_sizes), num_steps=c.num_steps,
                batch_size=c.batch_size, eval_every=c.eval_every, algorithm=algorithm_settings(),
                hyperparams=_plain(hyperparams), axes={n: _plain(list(v)) for n, v in axes.items()},
                seed=FLAGS.seed, num_seeds=FLAGS.num_seeds, vectorize=FLAGS.vectorize, **extra)


def split_cpu():
    """Apply --cpu_devices through XLA_FLAGS, before anything initialises JAX's CPU backend."""
    if "cpu_devices" not in FLAGS:
        return
    if FLAGS.cpu_devices < 0:
        raise app.UsageError(f"--cpu_devices must be >= 0, got {FLAGS.cpu_devices}")
    count = FLAGS.cpu_devices or os.cpu_count() or 1
    current = os.environ.get("XLA_FLAGS", "")
    if count == 1 or "xla_force_host_platform_device_count" in current:
        return
    os.environ["XLA_FLAGS"] = f"{current} --xla_force_host_platform_device_count={count}".strip()


def start_processes():
    """Join the other processes (flags or JAX_* variables) before anything else touches JAX."""
    if "num_processes" not in FLAGS:  # a program without the shared flags (the benchmark)
        return
    if not (FLAGS.num_processes or os.environ.get("JAX_NUM_PROCESSES")):
        return
    if FLAGS.num_processes is not None and FLAGS.num_processes < 1:
        raise app.UsageError(f"--num_processes must be positive, got {FLAGS.num_processes}")
    check_positive(join_timeout=FLAGS.join_timeout)
    several = (FLAGS.num_processes or 0) > 1
    if several and not (FLAGS.coordinator_address or os.environ.get("JAX_COORDINATOR_ADDRESS")):
        raise app.UsageError("--num_processes > 1 needs --coordinator_address=host:port")
    if several and FLAGS.process_id is None and not os.environ.get("JAX_PROCESS_ID"):
        raise app.UsageError("--num_processes > 1 needs --process_id (0 on the coordinator)")
    if FLAGS.process_id is not None and FLAGS.num_processes and not (
            0 <= FLAGS.process_id < FLAGS.num_processes):
        raise app.UsageError(f"--process_id must be in [0, {FLAGS.num_processes}), "
                             f"got {FLAGS.process_id}")
    if jax.config.jax_platforms in (None, "", "cpu") and not os.environ.get(
            "JAX_PLATFORMS", "").startswith(("cuda", "gpu", "tpu")):
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
    address = FLAGS.coordinator_address or os.environ.get("JAX_COORDINATOR_ADDRESS")
    logging.info("process %s waiting up to %d s for %s processes to join at %s",
                 FLAGS.process_id, FLAGS.join_timeout, FLAGS.num_processes, address)
    # When a peer never comes, XLA's client aborts the process from C++ with a stack dump,
    # which Python cannot catch; a timer that fires first ends it with one line instead.
    def give_up():
        print(f"{_program()}: error: not all {FLAGS.num_processes} processes joined at {address} "
              f"within --join_timeout={FLAGS.join_timeout} s (this is process {FLAGS.process_id}; "
              "start every process with the same --coordinator_address and --num_processes)",
              file=sys.stderr, flush=True)
        os._exit(2)

    timer = threading.Timer(FLAGS.join_timeout, give_up)
    timer.daemon = True
    timer.start()
    try:
        jax.distributed.initialize(FLAGS.coordinator_address, FLAGS.num_processes,
                                   FLAGS.process_id,
                                   initialization_timeout=2 * FLAGS.join_timeout + 10)
    finally:
        timer.cancel()


def run(task, trainer, hyperparams, axes, *, extra_identity=None, on_eval=None):
    """Claim --output_dir, run the sweep (resuming if it was started before), write the results.

    Returns:
      (result, summary) on process 0; (result, None) on the others.
    """
    out = FLAGS.output_dir
    lead = jax.process_index() == 0
    if lead:
        ident = identity(task, trainer, hyperparams, axes, **(extra_identity or {}))
        try:
            resumed = outputs.prepare_output_dir(out, ident, FLAGS.overwrite)
        except (FileExistsError, NotADirectoryError, OSError) as e:
            raise app.UsageError(str(e)) from None
        _claimed.append(out)
        FLAGS.append_flags_into_file(os.path.join(out, "flags.txt"))
        logging.info("output %s (%s)", out, "resuming" if resumed else "new run")
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils
        multihost_utils.sync_global_devices("output_dir ready")
    logging.info("process %d of %d, devices: %s", jax.process_index(), jax.process_count(),
                 jax.devices())
    result = runner.run_sweep(trainer, hyperparams, axes, FLAGS.num_seeds, FLAGS.seed, task.data,
                              vectorize=FLAGS.vectorize,
                              checkpoint_dir=os.path.join(out, "checkpoints"),
                              checkpoint_every=FLAGS.checkpoint_every, on_eval=on_eval)
    if not lead:
        return result, None
    summary = results.write_results(out, result, task.metric, extra=dict(
        dataset=task.name, algorithm=algorithm_settings(),
        layer_sizes=list(trainer.config.layer_sizes), command=_command()))
    # The first axis with more than one value, unless --plot_axis names one.
    default = next((n for n, v in result.axes.items() if len(v) > 1), next(iter(result.axes)))
    axis = FLAGS.plot_axis or default
    if axis not in result.axes:
        logging.warning("--plot_axis=%s is not a grid axis (%s); using %s", axis,
                        list(result.axes), default)
        axis = default
    logy = task.metric == "kl_bits"
    plotting.plot_curves(result, task.metric, os.path.join(out, "curves.png"), logy=logy)
    plotting.plot_final_vs_axis(result, task.metric, axis, os.path.join(out, "final_vs_axis.png"))
    print(results.summary_markdown(summary), end="")
    logging.info("%d runs in %.1f s%s", int(np.prod(result.grid_shape)) * len(result.seeds),
                 result.seconds,
                 f" (resumed from eval {result.resumed_from})" if result.resumed_from else "")
    return result, summary


def flat_runs(result):
    """The final params of every run of a sweep, leaves [runs, ...] (grid points then seeds)."""
    lead = len(result.grid_shape) + 1
    return jax.tree.map(lambda a: a.reshape(-1, *a.shape[lead:]), result.state.params)


def final_parts_drawn(result, masks):
    """:func:`wsjax.evaluation.parts_drawn` of every run's final machine, [*grid, seeds].

    From the final machines rather than the last evaluation, so that a finished sweep
    started again recomputes it with the current definition.
    """
    drawn = jax.jit(jax.vmap(lambda p: evaluation.parts_drawn(
        jax.random.key(FLAGS.seed), p, masks)))(flat_runs(result))
    return np.asarray(drawn).reshape(*result.grid_shape, len(result.seeds))


def per_point(rows, values):
    """``[{"labels", "values"}]``, one per row of a summary: the seeds' ``values`` at its point.

    Args:
      rows: ``summary["rows"]`` (each with ``labels`` and its grid ``index``).
      values: array [*grid, seeds].
    """
    return [dict(labels=row["labels"], values=np.asarray(values)[tuple(row["index"])].tolist())
            for row in rows]


def best_params(result, summary):
    """The params of the best run of the sweep (the one with the best final metric)."""
    b = summary["best"]
    if b is None:
        raise app.UsageError("every run diverged: no best run to draw")
    return jax.tree.map(lambda a: a[(*b["index"], b["seed"])], result.state.params)


def write_json(name, payload):
    with open(os.path.join(FLAGS.output_dir, name), "w") as f:
        json.dump(payload, f, indent=1)
