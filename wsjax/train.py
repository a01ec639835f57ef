"""Whole training runs as one compiled program, and sweeps over seeds x rates.

``make_train(config)`` returns a :class:`Trainer` of pure functions. Its
``train(key, learning_rate, data)`` runs ``config.num_steps`` steps of wake-sleep
or reweighted wake-sleep inside ``lax.scan`` (data drawn inside the program by
``config.sampler``) and returns the final params and metrics. ``sweep(trainer)``
wraps it as one ``jit(vmap(vmap(train)))`` over learning rates x seeds.

The learning rate is always a traced argument: a scalar (one rate for both
halves) or a length-2 array (generative rate, recognition rate). It lives in
the optax state (``optax.inject_hyperparams``), and decays geometrically by
``config.lr_decay`` in total over the run. The default optimizer, ``optax.sgd``,
makes every step the plain delta rule.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from wsjax.layers import LogitsFn, dense_logits
from wsjax.model import _check_layer_sizes, init
from wsjax.optim import ALGORITHMS, OptaxState, make_optax_step, rates_pair

__all__ = ["TrainConfig", "TrainState", "Trainer", "make_train", "sweep", "rates_pair"]

Sampler = Callable[[jax.Array, int, Any], jax.Array]
"""(key, batch_size, data) -> [batch_size, n_visible] 0/1 batch."""


class TrainConfig(NamedTuple):
    """Static settings of a run (hashable; fixes shapes and program structure).

    Attributes:
      layer_sizes: (n_visible, n_1, ..., n_top).
      num_steps: training steps in the run; a multiple of eval_every.
      batch_size: data examples per step.
      sampler: (key, batch_size, data) -> batch; runs inside the program.
      algorithm: "wake_sleep" or "rws" (reweighted wake-sleep).
      num_samples: K recognition samples per example (rws only).
      insomnia: rws only: weight of the wake-phase recognition update against
        the sleep phase (1: wake only, 0: sleep only).
      optimizer: learning_rate -> optax.GradientTransformation (optax.sgd: the delta rules).
      sleep_batch_size: dreams per sleep phase (None: batch_size).
      lr_decay: final rate / initial rate; the rate decays geometrically (1: constant).
      layer_rate_scales: optional multiplier of the rate per layer of conditionals
        (generative and recognition conditional l; the prior takes the last one):
        a float, or a (start, end) pair moving geometrically from start to end
        over the run.
      init_scale: standard deviation of the initial weights, one value or one per layer.
      init_biases: initial (prior, generative, recognition) bias values (see wsjax.init).
      eval_every: steps between evaluations; step metrics are averaged over each window.
      eval_fn: optional (params, data) -> dict of scalars, run every eval_every steps.
      logits_fn: the conditional "layer params, input -> logits".
    """

    layer_sizes: tuple
    num_steps: int
    batch_size: int
    sampler: Sampler
    algorithm: str = "wake_sleep"
    num_samples: int | None = None
    insomnia: float = 1.0
    optimizer: Callable = optax.sgd
    sleep_batch_size: int | None = None
    lr_decay: float = 1.0
    layer_rate_scales: tuple | None = None
    init_scale: float | tuple = 0.0
    init_biases: tuple = (0.0, 0.0, 0.0)
    eval_every: int = 1000
    eval_fn: Callable | None = None
    logits_fn: LogitsFn = dense_logits


class TrainState(NamedTuple):
    """Everything a run carries from one step to the next.

    Attributes:
      params: the machine.
      opt_state: (generative, recognition) optax states; each holds its half's
        base rate in ``hyperparams["learning_rate"]``.
      key: PRNG key for the remaining steps.
      step: number of steps taken (int32 scalar).
    """

    params: dict
    opt_state: tuple
    key: jax.Array
    step: jax.Array


class Trainer(NamedTuple):
    """The pure functions of a run; jit them where you need.

    Attributes:
      init: (key, learning_rate) -> TrainState.
      step: (state, data) -> (state, info dict): one training step.
      run: (state, data) -> (state, metrics dict): eval_every steps, then the evaluation.
      train: (key, learning_rate, data=None) -> (params, metrics), metrics of
        shape [num_steps // eval_every] each.
      config: the TrainConfig.
    """

    init: Callable
    step: Callable
    run: Callable
    train: Callable
    config: TrainConfig


def check_config(config: TrainConfig) -> None:
    """Raise a ValueError naming the first impossible setting of ``config``."""
    _check_layer_sizes(config.layer_sizes)
    for name in ("num_steps", "batch_size", "eval_every"):
        value = getattr(config, name)
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    if config.sleep_batch_size is not None and (
        not isinstance(config.sleep_batch_size, int) or config.sleep_batch_size < 1
    ):
        raise ValueError(f"sleep_batch_size must be a positive int, got {config.sleep_batch_size!r}")
    if config.num_steps % config.eval_every:
        raise ValueError(
            f"num_steps ({config.num_steps}) must be a multiple of eval_every ({config.eval_every})"
        )
    if config.algorithm not in ALGORITHMS:
        raise ValueError(f"algorithm must be one of {ALGORITHMS}, got {config.algorithm!r}")
    if config.algorithm == "rws" and (
        not isinstance(config.num_samples, int) or config.num_samples < 1
    ):
        raise ValueError(f"rws needs num_samples, a positive int, got {config.num_samples!r}")
    if not 0.0 <= config.insomnia <= 1.0:
        raise ValueError(f"insomnia must lie in [0, 1], got {config.insomnia!r}")
    if not config.lr_decay > 0:
        raise ValueError(f"lr_decay must be positive, got {config.lr_decay!r}")
    if len(config.init_biases) != 3 or not all(np.isfinite(b) for b in config.init_biases):
        raise ValueError(
            f"init_biases must be three finite numbers (prior, generative, recognition), "
            f"got {config.init_biases!r}"
        )
    if config.layer_rate_scales is not None and (
        len(config.layer_rate_scales) != len(config.layer_sizes) - 1
        or not all(np.all(np.isfinite(m)) and np.all(np.asarray(m) >= 0) and np.size(m) in (1, 2)
                   and (np.size(m) == 1 or np.all(np.asarray(m) > 0))
                   for m in config.layer_rate_scales)
    ):
        raise ValueError(
            f"layer_rate_scales needs one non-negative multiplier (or positive (start, end) pair) "
            f"per layer of conditionals "
            f"({len(config.layer_sizes) - 1} for layer_sizes {tuple(config.layer_sizes)}), "
            f"got {config.layer_rate_scales!r}")
    scales = np.asarray(config.init_scale, np.float64)
    if scales.ndim > 1 or (scales.ndim == 1 and scales.size not in (1, len(config.layer_sizes) - 1)) or not (
        np.all(np.isfinite(scales)) and np.all(scales >= 0)
    ):
        raise ValueError(
            f"init_scale must be one non-negative value or one per layer of conditionals, "
            f"got {config.init_scale!r}")


def _geometric(start, end, num_steps):
    """Schedule moving geometrically from start (step 0) to end (step num_steps)."""
    start, ratio = float(start), float(end) / float(start)
    return lambda count: start * jnp.asarray(ratio, jnp.float32) ** (count / num_steps)


def make_train(config: TrainConfig) -> Trainer:
    """Build the pure training functions for ``config`` (see :class:`Trainer`)."""
    check_config(config)
    sizes = tuple(int(n) for n in config.layer_sizes)
    num_evals = config.num_steps // config.eval_every
    decay = float(config.lr_decay)
    schedule = None if decay == 1.0 else (
        lambda count: jnp.asarray(decay, jnp.float32) ** (count / config.num_steps))
    rws = config.algorithm == "rws"
    layer_scales = None
    if config.layer_rate_scales is not None:
        layer_scales = tuple(
            _geometric(*m, config.num_steps) if np.size(m) == 2 else float(m)
            for m in config.layer_rate_scales)
    algo = make_optax_step(
        config.optimizer, config.algorithm, num_samples=config.num_samples if rws else None,
        insomnia=config.insomnia if rws else None,
        sleep_batch_size=config.sleep_batch_size or config.batch_size, schedule=schedule,
        layer_rate_scales=layer_scales, logits_fn=config.logits_fn,
    )

    def init_fn(key, learning_rate):
        key_init, key_run = jax.random.split(key)
        prior_b, gen_b, rec_b = config.init_biases
        params = init(key_init, sizes, init_scale=config.init_scale, prior_bias=prior_b,
                      generative_bias=gen_b, recognition_bias=rec_b)
        opt = algo.init(params, learning_rate)
        return TrainState(params, opt.opt_state, key_run, opt.step)

    def step_fn(state, data=None):
        key, key_data, key_step = jax.random.split(state.key, 3)
        u = config.sampler(key_data, config.batch_size, data)
        opt, info = algo.step(key_step, OptaxState(state.params, state.opt_state, state.step), u)
        return TrainState(opt.params, opt.opt_state, key, opt.step), info

    def run_fn(state, data=None):
        state, infos = jax.lax.scan(lambda s, _: step_fn(s, data), state, None, config.eval_every)
        metrics = {k: jnp.mean(v) for k, v in infos.items()}
        metrics["step"] = state.step
        if config.eval_fn is not None:
            metrics.update(config.eval_fn(state.params, data))
        return state, metrics

    def train_fn(key, learning_rate, data=None):
        state = init_fn(key, learning_rate)
        state, metrics = jax.lax.scan(lambda s, _: run_fn(s, data), state, None, num_evals)
        return state.params, metrics

    return Trainer(init_fn, step_fn, run_fn, train_fn, config)


def sweep(trainer: Trainer) -> Callable:
    """``jit(vmap(vmap(train)))``: (keys [S], learning_rates [R] or [R, 2], data) -> results.

    Outputs have leading axes [R, S]. Reuse the returned function: calling it
    again with new keys or rates of the same shape does not recompile.
    """
    over_seeds = jax.vmap(trainer.train, in_axes=(0, None, None))
    over_rates = jax.vmap(over_seeds, in_axes=(None, 0, None))
    return jax.jit(over_rates)
