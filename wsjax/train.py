"""Whole training runs as one compiled program, and sweeps over any hyperparameters x seeds.

``make_train(config, algorithm)`` returns a :class:`Trainer` of pure functions.
Its ``train(key, hyperparams, data)`` initialises a machine and runs
``config.num_steps`` steps of the algorithm inside ``lax.scan``, the data drawn
inside the program by ``config.sampler``, and returns the final
:class:`~wsjax.algorithms.State` and the metrics of every evaluation.
``hyperparams`` is one dict of arrays: the algorithm's (see
:mod:`wsjax.algorithms`) plus the initialisation's (``init_scale``,
``prior_bias``, ``generative_bias``, ``recognition_bias``), all traced, so
:func:`grid` and :func:`sweep` run any grid of them x seeds as one compiled
program (blocks of vmapped runs, laid out by :mod:`wsjax.layout`).

Key use: a run's key is split once into ``key_init, key_steps, key_eval``;
step t draws its batch and its algorithm step from ``fold_in(key_steps, t)``
and the evaluation after step t uses ``fold_in(key_eval, t)``. So no key is
carried in the state, and a run's numbers depend only on its key and its
hyperparameters (not on where it was stopped and resumed, nor on which other
runs share the program).
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from wsjax import hyperparams as hyperparams_lib
from wsjax import layout as layout_lib
from wsjax._api import check_positive_int, entry_point, is_traced
from wsjax.algorithms import Algorithm, State
from wsjax.data import validate_binary
from wsjax.layers import SBN
from wsjax.model import check_layer_sizes, init

__all__ = ["TrainConfig", "Trainer", "make_train", "check_config", "grid", "axis_values", "sweep",
           "scan_steps", "run_axes"]

Sampler = Callable[[jax.Array, int, Any], jax.Array]
"""(key, batch_size, data) -> [batch_size, n_visible] 0/1 batch, e.g.
``wsjax.data.sample_batch``."""

EvalFn = Callable[[jax.Array, Any, Any], dict]
"""(key, params, data) -> dict of scalar metrics."""


class TrainConfig(NamedTuple):
    """Static settings of a run: they fix shapes and program structure.

    Attributes:
      layer_sizes: (n_visible, n_1, ..., n_top).
      num_steps: training steps in the run; a multiple of eval_every.
      batch_size: data examples per step.
      sampler: (key, batch_size, data) -> batch; runs inside the program
        (``wsjax.data.sample_batch`` draws rows of a data array).
      eval_every: steps between evaluations; step diagnostics are averaged over each window.
      eval_fn: optional (key, params, data) -> dict of scalars, run every eval_every steps;
        for an algorithm built with other kinds of layer than the default it is called
        with ``conditionals=`` those kinds as well (the data sets' tasks take it).
    """

    layer_sizes: tuple
    num_steps: int
    batch_size: int
    sampler: Sampler
    eval_every: int = 1000
    eval_fn: EvalFn | None = None


class Trainer(NamedTuple):
    """The pure functions of a run; jit them where you need.

    ``data`` is None (a sampler that makes its own data) or a pytree of 0/1 arrays
    ``[num_examples, n_visible]`` (a numpy array is fine). Called eagerly, each function
    is compiled once per shape and checks its concrete inputs (the data 0/1, finite
    and of the machine's width; the hyperparameters in range); inside ``jit``,
    ``vmap`` or ``scan`` they are plain traced code.

    Attributes:
      init: (key, hyperparams) -> State at step 0, with fresh params.
      step: (key, state, data) -> (state, info): one step; ``key`` is the run's key.
      run_steps: (key, state, data) -> (state, metrics): eval_every steps, the means of
        their infos and the step count in metrics.
      evaluate: (key, state, data) -> dict of the eval_fn's metrics after the state's step
        (empty without an eval_fn).
      run: (key, state, data) -> (state, metrics): eval_every steps, then the evaluation.
      train: (key, hyperparams, data=None) -> (state, metrics), each metric of
        shape [num_steps // eval_every].
      default_hyperparams: (**overrides) -> the full hyperparameter dict, checked.
      config: the TrainConfig.
      algorithm: the Algorithm.
    """

    init: Callable
    step: Callable
    run_steps: Callable
    evaluate: Callable
    run: Callable
    train: Callable
    default_hyperparams: Callable
    config: TrainConfig
    algorithm: Algorithm


def check_config(config: TrainConfig) -> None:
    """Raise a ValueError naming the first impossible setting of ``config``."""
    check_layer_sizes(config.layer_sizes)
    for name in ("num_steps", "batch_size", "eval_every"):
        check_positive_int(getattr(config, name), name)
    if config.num_steps % config.eval_every:
        raise ValueError(
            f"num_steps ({config.num_steps}) must be a multiple of eval_every "
            f"({config.eval_every})")
    if not callable(config.sampler):
        raise ValueError(f"sampler must be callable, got {config.sampler!r}")


def _check_data(data, n_visible):
    """Every concrete leaf of ``data`` checked as 0/1 [num_examples, n_visible] (float32)."""
    if data is None or is_traced(data):
        return data
    leaves, treedef = jax.tree_util.tree_flatten_with_path(data)
    checked = [validate_binary(leaf, "data" + jax.tree_util.keystr(path), n_visible)
               for path, leaf in leaves]
    return jax.tree.unflatten(treedef, checked)


def _run_keys(key):
    """A run's key split once by use, the one place of that convention: (init, steps, eval)."""
    return jax.random.split(key, 3)


def make_train(config: TrainConfig, algorithm: Algorithm) -> Trainer:
    """Build the pure training functions of ``algorithm`` under ``config`` (see :class:`Trainer`).

    Raises:
      ValueError: naming the first impossible setting of ``config``.
    """
    check_config(config)
    sizes = tuple(int(n) for n in config.layer_sizes)
    num_layers = len(sizes) - 1
    num_evals = config.num_steps // config.eval_every

    init_defaults = hyperparams_lib.defaults("init")

    def default_hyperparams(**overrides) -> dict:
        init_part = {k: overrides.pop(k, v) for k, v in init_defaults.items()}
        hp = algorithm.default_hyperparams(**overrides)
        hp.update({k: hyperparams_lib.as_leaf(k, v) for k, v in init_part.items()})
        hyperparams_lib.check(hp, num_layers)
        return hp

    def init_fn(key, hyperparams) -> State:
        missing = sorted(set(init_defaults) - set(hyperparams))
        if missing:
            raise ValueError(f"hyperparameters {missing} are missing; build a full set with "
                             "trainer.default_hyperparams(...)")
        hyperparams_lib.check({k: hyperparams[k] for k in init_defaults}, num_layers)
        key_init, _, _ = _run_keys(key)
        params = init(key_init, sizes, conditionals=algorithm.conditionals,
                      init_scale=hyperparams["init_scale"],
                      prior_bias=hyperparams["prior_bias"],
                      generative_bias=hyperparams["generative_bias"],
                      recognition_bias=hyperparams["recognition_bias"])
        algo_hp = {k: v for k, v in hyperparams.items() if k not in init_defaults}
        return algorithm.init(params, algo_hp)

    def steps_key_step(key_steps, state, data):
        key_data, key_step = jax.random.split(jax.random.fold_in(key_steps, state.step))
        u = config.sampler(key_data, config.batch_size, data)
        return algorithm.step(key_step, state, u)

    def step_fn(key, state, data=None):
        _, key_steps, _ = _run_keys(key)
        return steps_key_step(key_steps, state, data)

    def run_steps(key, state, data=None):
        """eval_every steps: (state, window metrics); the steps' key derived once, outside the
        loop."""
        _, key_steps, _ = _run_keys(key)
        return scan_steps(lambda s: steps_key_step(key_steps, s, data), state, config.eval_every)

    def evaluate_fn(key, state, data=None):
        if config.eval_fn is None:
            return {}
        _, _, key_eval = _run_keys(key)
        key_eval = jax.random.fold_in(key_eval, state.step)
        if algorithm.conditionals == SBN():
            return config.eval_fn(key_eval, state.params, data)
        return config.eval_fn(key_eval, state.params, data, conditionals=algorithm.conditionals)

    def run_fn(key, state, data=None):
        state, metrics = run_steps(key, state, data)
        metrics.update(evaluate_fn(key, state, data))
        return state, metrics

    def train_fn(key, hyperparams, data=None):
        state = init_fn(key, hyperparams)
        return jax.lax.scan(lambda s, _: run_fn(key, s, data), state, None, num_evals)

    def check(arguments):
        if "data" in arguments:
            arguments["data"] = _check_data(arguments["data"], sizes[0])
        if isinstance(arguments.get("hyperparams"), Mapping):
            hyperparams_lib.check(arguments["hyperparams"], num_layers)

    def public(fn):
        name = fn.__name__.removesuffix("_fn")
        return entry_point(fn, check=check, name=name, doc=_TRAINER_DOCS[name])

    return Trainer(public(init_fn), public(step_fn), public(run_steps), public(evaluate_fn),
                   public(run_fn), public(train_fn), default_hyperparams, config, algorithm)


_TRAINER_DOCS = {
    "init": "(key, hyperparams) -> State at step 0, with fresh params.",
    "step": "(key, state, data=None) -> (state, info): one step of the run whose key is ``key``.",
    "run_steps": "(key, state, data=None) -> (state, metrics): eval_every steps, the means of "
                 "their infos and the step count in metrics.",
    "evaluate": "(key, state, data=None) -> dict of the eval_fn's metrics after the state's step.",
    "run": "(key, state, data=None) -> (state, metrics): eval_every steps, then the evaluation.",
    "train": "(key, hyperparams, data=None) -> (state, metrics): a whole run, each metric "
             "[num_steps // eval_every].",
}

def scan_steps(step: Callable, state, num_steps: int):
    """Run ``step: state -> (state, info)`` ``num_steps`` times in a ``lax.scan``.

    Returns:
      (state, metrics): metrics holds the mean of every field of the info over the
      steps, and ``step``, the state's step count at the end. The means are kept
      as running sums in the scan's carry, added one step at a time, so their
      rounding does not depend on how many runs are vmapped beside this one.
    """
    _, info_shape = jax.eval_shape(step, state)
    zeros = jax.tree.map(lambda x: jnp.zeros(x.shape, x.dtype), info_shape)

    def body(carry, _):
        state, total = carry
        state, info = step(state)
        return (state, jax.tree.map(jnp.add, total, info)), None

    (state, total), _ = jax.lax.scan(body, (state, zeros), None, num_steps)
    metrics = {k: v / num_steps for k, v in total._asdict().items()}
    metrics["step"] = state.step
    return state, metrics


def _get(hp, name):
    node = hp
    for part in name.split("."):
        node = node[part]
    return node


def _set(hp, name, value):
    """A copy of ``hp`` with the (dotted) ``name`` set to ``value``."""
    head, _, rest = name.partition(".")
    if rest:
        return {**hp, head: _set(hp.get(head, {}), rest, value)}
    return {**hp, head: value}


def axis_values(hyperparams: dict, name: str, values) -> np.ndarray:
    """The values of one grid axis as one float32 array [len(values), *shape].

    Each value is broadcast with the others and with the base value of ``name``
    in ``hyperparams`` (a scalar rate becomes a (generative, recognition) pair).
    """
    values = [np.asarray(v, np.float32) for v in values]
    try:
        base = np.shape(_get(hyperparams, name))
    except KeyError:
        base = ()
    shape = np.broadcast_shapes(base, *(v.shape for v in values))
    return np.stack([np.broadcast_to(v, shape) for v in values]) if values else np.zeros((0,))


def grid(hyperparams: dict, axes: Mapping[str, Any]) -> dict:
    """Every combination of the values in ``axes``, stacked on one leading axis.

    Args:
      hyperparams: the base dict (e.g. ``trainer.default_hyperparams()``); every
        point of the grid is a copy of it with the axes' values put in.
      axes: ordered mapping name -> values, e.g. ``{"learning_rate": [0.5, 1],
        "insomnia": [0, 0.5, 1]}``; dotted names reach into the optimizer's dict
        (``"optimizer.b1"``). A value may be a scalar or an array (``[4, 8]``
        for a (generative, recognition) rate); the values of one axis are
        broadcast to a common shape.

    Returns:
      The hyperparams with every leaf stacked to a leading axis of
      ``prod(len(v) for v in axes.values())`` points, the first axis varying
      slowest: reshape a result to ``[len(axis_1), ..., len(axis_n), ...]``.

    Raises:
      ValueError: for an axis without values, a name the base does not have, or a
        value out of its range (named).
    """
    names = list(axes)
    for name in names:
        if not name.startswith("optimizer."):
            try:
                _get(hyperparams, name)
            except (KeyError, TypeError):
                known = sorted(k for k in hyperparams if k != "optimizer")
                raise ValueError(f"unknown hyperparameter {name!r}; known: {known} and "
                                 "optimizer.<name>") from None
        if len(axes[name]) == 0:
            raise ValueError(f"grid axis {name!r} has no values")
    columns = [axis_values(hyperparams, name, axes[name]) for name in names]
    points = []
    for combo in itertools.product(*columns):
        hp = hyperparams
        for name, value in zip(names, combo):
            hp = _set(hp, name, jnp.asarray(value))
        hyperparams_lib.check(hp)
        points.append(hp)
    return jax.tree.map(lambda *xs: jnp.stack(xs), *points)


def _check_sweep_inputs(keys, hyperparams):
    """Raise a ValueError when ``keys`` is not a batch of keys or ``hyperparams`` not a grid."""
    key_shape = jnp.shape(keys)
    typed = jnp.issubdtype(jnp.result_type(keys), jax.dtypes.prng_key)
    if (typed and len(key_shape) != 1) or (not typed and len(key_shape) != 2):
        raise ValueError(
            f"sweep takes a batch of keys [num_seeds] (jax.random.split(key, num_seeds)), got "
            f"{'a single key' if key_shape in ((), (2,)) else f'keys of shape {key_shape}'}")
    if not isinstance(hyperparams, Mapping):
        raise TypeError(f"sweep takes hyperparams as a dict (a grid from wsjax.grid), got "
                        f"{type(hyperparams).__name__}")
    leaves = jax.tree_util.tree_leaves_with_path(hyperparams)
    lengths = {jax.tree_util.keystr(p): (jnp.shape(x)[0] if jnp.ndim(x) else None)
               for p, x in leaves}
    if None in lengths.values() or len(set(lengths.values())) > 1:
        raise ValueError(
            "sweep takes a grid of hyperparameters (wsjax.grid(base, axes)): every leaf with "
            "one leading axis of grid points; got leading lengths "
            + ", ".join(f"{k}: {'none (a scalar)' if v is None else v}"
                        for k, v in lengths.items()))


def sweep(trainer: Trainer, vectorize: str = "seeds") -> Callable:
    """One compiled program over a grid x seeds: (keys [S], hyperparams [G, ...], data) -> results.

    Outputs have leading axes [G, S]. ``hyperparams`` comes from :func:`grid`
    (or any dict whose every leaf has the same leading length G).

    Args:
      trainer: from :func:`make_train`.
      vectorize: ``"seeds"`` (default): the S seeds of a grid point are vmapped
        together and the points run in turn, so a grid point gives bitwise the
        numbers of the same run swept alone. ``"runs"``: all G x S runs are vmapped
        together, faster for small models, a run's last bits depending on how many
        runs share the program. The layouts, and which hyperparameters stay
        unbatched in each, are those of ``wsjax.runner.run_sweep``
        (:mod:`wsjax.layout` explains them).

    Reuse the returned function: calling it again with values of the same shapes
    does not recompile (in the runs layout, as long as the same hyperparameters are
    swept: a hyperparameter with one value at every point is compiled as shared).

    Raises (when the returned function is called):
      ValueError: if ``keys`` is one key rather than a batch of keys, or
        ``hyperparams`` is not a grid (a leaf without the leading axis of points).
    """
    if vectorize not in layout_lib.VECTORIZE:
        raise ValueError(f"vectorize must be one of {layout_lib.VECTORIZE}, got {vectorize!r}")

    @functools.partial(jax.jit, static_argnames=("layout",))
    def program(keys, hyperparams, data, layout):
        hp_axes, s_axes = run_axes(trainer, hyperparams, layout)
        train = jax.vmap(trainer.train, in_axes=(0, hp_axes, None), out_axes=(s_axes, 0))
        runs = layout_lib.run_inputs(keys, hyperparams)
        blocks = layout_lib.to_blocks(runs, (0, hp_axes), layout)
        out = layout_lib.map_blocks(lambda block, data: train(*block, data), blocks, data)
        out = layout_lib.from_blocks(out, (s_axes, 0), layout)
        return jax.tree.map(lambda x: x.reshape(layout.num_points, layout.num_seeds,
                                                *x.shape[1:]), out)

    def call(keys, hyperparams, data=None):
        _check_sweep_inputs(keys, hyperparams)
        layout = layout_lib.make_layout(hyperparams, jnp.shape(keys)[0], 1, vectorize)
        return program(keys, hyperparams, data, layout=layout)

    call._cache_size = program._cache_size
    return call


def run_axes(trainer: Trainer, points: dict, layout: layout_lib.Layout):
    """vmap axes (0 or None per leaf) of a run's hyperparameters and of its State under
    ``layout``, for a grid ``points`` (leaves [G, ...]); nothing is computed."""
    point = jax.tree.map(lambda x: jax.ShapeDtypeStruct(jnp.shape(x)[1:], jnp.result_type(x)),
                         points)
    state = jax.eval_shape(trainer.init, jax.ShapeDtypeStruct((), jax.random.key(0).dtype),
                           point)
    return (layout_lib.hyperparam_axes(points, layout),
            layout_lib.state_axes(state, layout))
