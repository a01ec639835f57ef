"""Optax-driven wake-sleep and RWS (wsjax.optim) against the hand-written SGD steps."""

from functools import partial

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import wsjax

from tests.helpers import random_machine
from wsjax.model import generative_params, recognition_params
from wsjax.optim import OptaxState, make_optax_step
from wsjax.rws import rws_step
from wsjax.wake_sleep import sleep_grads, sleep_step, wake_grads, wake_step

SIZES = (4, 3)
BATCH = 5
PARAMS = random_machine(0, SIZES)
U = jnp.asarray(np.random.default_rng(0).integers(0, 2, (BATCH, SIZES[0])), jnp.float32)
KEY = jax.random.key(3)


@partial(jax.jit, static_argnames=("sequential",))
def ws_reference(key, params, u, learning_rate, sequential):
    """One hand-written SGD wake-sleep step with the optim key convention."""
    key_wake, key_sleep = jax.random.split(key)
    woken = wake_step(key_wake, params, u, learning_rate)
    if sequential:
        return sleep_step(key_sleep, woken, learning_rate, u.shape[0])
    slept = sleep_step(key_sleep, params, learning_rate, u.shape[0])
    return {**woken, **recognition_params(slept)}


# Shared compiled steps (compiling is the slow part of these tests).
ADAM = make_optax_step(optax.adam)
adam_step = jax.jit(ADAM.step)


def assert_trees_differ(a, b):
    assert any(not np.array_equal(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


@pytest.mark.parametrize("sequential", [False, True])
def test_sgd_is_wake_step_and_sleep_step(sequential):
    algo = make_optax_step(optax.sgd, sequential=sequential)
    step = jax.jit(algo.step)
    state = algo.init(PARAMS, 0.3)
    want = PARAMS
    for key in jax.random.split(KEY, 2):
        state, info = step(key, state, U)
        want = ws_reference(key, want, U, 0.3, sequential)
    chex.assert_trees_all_close(state.params, want, atol=1e-6, rtol=0)
    assert int(state.step) == 2
    assert set(info) == {"wake_loss", "sleep_loss"}


def test_sgd_is_rws_step():
    algo = make_optax_step(
        optax.sgd, "rws", num_samples=3, insomnia=0.5, sleep_batch_size=4
    )
    state, info = jax.jit(algo.step)(KEY, algo.init(PARAMS, 0.3), U)
    want = jax.jit(
        lambda k, p: rws_step(k, p, U, 0.3, 3, insomnia=0.5, sleep_batch_size=4)
    )(KEY, PARAMS)
    chex.assert_trees_all_close(state.params, want, atol=1e-6, rtol=0)
    chex.assert_tree_all_finite(info)
    assert set(info) == {"iw_bound", "ess", "wake_p_loss", "wake_q_loss", "sleep_loss"}


def test_adam_keeps_a_separate_state_per_half():
    lr = 0.05
    state, _ = adam_step(KEY, ADAM.init(PARAMS, lr), U)
    chex.assert_tree_all_finite(state)
    chex.assert_trees_all_equal_shapes_and_dtypes(state.params, PARAMS)
    assert_trees_differ(generative_params(state.params), generative_params(PARAMS))
    assert_trees_differ(recognition_params(state.params), recognition_params(PARAMS))

    # Oracle: Adam on each half alone, fed only that half's gradients.
    @jax.jit
    def oracle(key, params):
        key_wake, key_sleep = jax.random.split(key)
        out = {}
        for half, (grads, _) in (
            (generative_params(params), wake_grads(key_wake, params, U)),
            (recognition_params(params), sleep_grads(key_sleep, params, BATCH)),
        ):
            tx = optax.adam(lr)
            updates, _ = tx.update(grads, tx.init(half), half)
            out.update(optax.apply_updates(half, updates))
        return out

    chex.assert_trees_all_close(state.params, oracle(KEY, PARAMS), atol=1e-6, rtol=0)


def test_zero_rate_on_one_half_leaves_it_untouched():
    # The same compiled step serves every rate; a zero rate freezes that half.
    sleep_only, _ = adam_step(KEY, ADAM.init(PARAMS, jnp.array([0.0, 0.05])), U)
    chex.assert_trees_all_equal(generative_params(sleep_only.params), generative_params(PARAMS))
    assert_trees_differ(recognition_params(sleep_only.params), recognition_params(PARAMS))
    wake_only, _ = adam_step(KEY, ADAM.init(PARAMS, jnp.array([0.05, 0.0])), U)
    chex.assert_trees_all_equal(recognition_params(wake_only.params), recognition_params(PARAMS))
    assert_trees_differ(generative_params(wake_only.params), generative_params(PARAMS))


@pytest.mark.parametrize("rates", [[1e-3, 1e-2, 0.1], [[0.01, 0.1], [0.1, 0.0]]])
def test_vmap_over_learning_rates_equals_a_loop(rates):
    rates = jnp.asarray(rates, jnp.float32)
    keys = jax.random.split(KEY, 2)
    states = jax.vmap(ADAM.init, in_axes=(None, 0))(PARAMS, rates)
    vstep = jax.jit(jax.vmap(ADAM.step, in_axes=(None, 0, None)))
    for key in keys:
        states, _ = vstep(key, states, U)
    looped = []
    for lr in rates:
        state = ADAM.init(PARAMS, lr)
        for key in keys:
            state, _ = adam_step(key, state, U)
        looped.append(state)
    want = jax.tree.map(lambda *xs: jnp.stack(xs), *looped)
    chex.assert_trees_all_close(states, want, atol=1e-6, rtol=0)
    generative_rates = rates if rates.ndim == 1 else rates[:, 0]
    np.testing.assert_array_equal(
        states.opt_state[0].hyperparams["learning_rate"], generative_rates
    )


def test_jit_does_not_retrace_for_a_new_rate():
    chex.clear_trace_counter()
    algo = make_optax_step(optax.sgd)
    step = jax.jit(chex.assert_max_traces(algo.step, n=1))
    for lr in (0.1, 0.5, np.float32(0.2), jnp.array([0.1, 0.3])):
        state, _ = step(KEY, algo.init(PARAMS, lr), U)
        np.testing.assert_array_equal(
            state.opt_state[1].hyperparams["learning_rate"],
            np.broadcast_to(np.asarray(lr, np.float32), (2,))[1],
        )


def test_step_decay_schedule_scales_the_update():
    # Multiplier 1 for steps 0 and 1, then 0.1: the third step is SGD at 0.1 * lr.
    schedule = optax.piecewise_constant_schedule(1.0, {2: 0.1})
    algo = make_optax_step(optax.sgd, schedule=schedule)
    step = jax.jit(algo.step)
    lr = 0.4
    state, want = algo.init(PARAMS, lr), PARAMS
    for key, rate in zip(jax.random.split(KEY, 3), (lr, lr, 0.1 * lr)):
        state, _ = step(key, state, U)
        want = ws_reference(key, want, U, rate, False)
        chex.assert_trees_all_close(state.params, want, atol=1e-6, rtol=0)
    # The base rate in the state is untouched by the schedule.
    np.testing.assert_allclose(state.opt_state[0].hyperparams["learning_rate"], lr)


def test_same_key_same_state_other_key_other_state():
    state0 = ADAM.init(PARAMS, 0.05)
    runs = []
    for seed in (1, 1, 2):
        state = state0
        for key in jax.random.split(jax.random.key(seed), 3):
            state, _ = adam_step(key, state, U)
        runs.append(state)
    chex.assert_trees_all_equal(runs[0], runs[1])
    assert_trees_differ(runs[0].params, runs[2].params)


def test_eager_smoke():
    algo = make_optax_step(optax.sgd)
    state, info = algo.step(KEY, algo.init(PARAMS, 0.01), U)
    assert isinstance(state, OptaxState)
    assert int(state.step) == 1
    chex.assert_trees_all_equal_shapes_and_dtypes(state.params, PARAMS)
    chex.assert_tree_all_finite((state, info))
    assert set(info) == {"wake_loss", "sleep_loss"}


@pytest.mark.parametrize(
    "args, kwargs, error",
    [
        ((optax.sgd(0.1),), {}, TypeError),
        ((optax.sgd, "vae"), {}, ValueError),
        ((optax.sgd, "rws"), {}, ValueError),  # num_samples missing
        ((optax.sgd, "rws"), {"num_samples": 2, "sequential": True}, ValueError),
        ((optax.sgd,), {"num_samples": 2}, ValueError),
        ((optax.sgd,), {"insomnia": 0.5}, ValueError),
        ((optax.sgd,), {"sleep_batch_size": 0}, ValueError),
    ],
)
def test_bad_options_are_refused(args, kwargs, error):
    with pytest.raises(error):
        make_optax_step(*args, **kwargs)


def test_bad_rate_shape_is_refused():
    with pytest.raises(ValueError, match="learning_rate"):
        make_optax_step(optax.sgd).init(PARAMS, jnp.ones(3))


def test_layer_rate_scales_scale_each_layer_of_the_sgd_update():
    params = wsjax.init(jax.random.key(0), (6, 4, 2), init_scale=0.5)
    u = (jax.random.uniform(jax.random.key(1), (5, 6)) < 0.4).astype(jnp.float32)
    key = jax.random.key(2)
    plain = make_optax_step(optax.sgd, "wake_sleep")
    scaled = make_optax_step(optax.sgd, "wake_sleep", layer_rate_scales=(1.0, 0.25))
    a, _ = jax.jit(plain.step)(key, plain.init(params, 0.3), u)
    b, _ = jax.jit(scaled.step)(key, scaled.init(params, 0.3), u)
    delta = lambda s: jax.tree.map(lambda new, old: new - old, s.params, params)
    da, db = delta(a), delta(b)
    for side in ("generative", "recognition"):
        for name in ("w", "b"):
            np.testing.assert_allclose(db[side][0][name], da[side][0][name], rtol=1e-6, atol=1e-7)
            np.testing.assert_allclose(db[side][1][name], 0.25 * da[side][1][name], rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(db["prior"]["b"], 0.25 * da["prior"]["b"], rtol=1e-5, atol=1e-7)
    with pytest.raises(ValueError, match="layer_rate_scales has 3 entries"):
        make_optax_step(optax.sgd, "wake_sleep", layer_rate_scales=(1, 1, 1)).init(params, 0.1)
