"""The algorithm bundles (wsjax.algorithms): delta rules under optax.sgd, optax semantics,
purity."""

from functools import partial

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import wsjax
from tests.helpers import random_machine
from wsjax.model import generative_params, recognition_params, sample_up
from wsjax.phases import activity_grads, sleep_grads, sleep_step, wake_grads, wake_step
from wsjax.reweighted import rws_step

SIZES = (4, 3, 2)
BATCH = 5
PARAMS = random_machine(0, SIZES)
U = jnp.asarray(np.random.default_rng(0).integers(0, 2, (BATCH, SIZES[0])), jnp.float32)
KEY = jax.random.key(3)

# Every algorithm and optimizer the invariants are checked for: (name, factory).
ALGORITHMS = [
    ("wake_sleep-sgd", lambda: wsjax.wake_sleep(optax.sgd)),
    ("wake_sleep-sequential-adam", lambda: wsjax.wake_sleep(optax.adam, sequential=True)),
    ("rws-sgd", lambda: wsjax.rws(optax.sgd, 3, sleep_batch_size=4)),
    ("rws-adam", lambda: wsjax.rws(optax.adam, 3)),
]
BUNDLES = {name: make() for name, make in ALGORITHMS}
STEPS = {name: jax.jit(algo.step) for name, algo in BUNDLES.items()}
NAMES = list(BUNDLES)


def _hp(algo, **kw):
    return algo.default_hyperparams(**{"learning_rate": 0.05, **kw})


def _diff(a, b):
    return max(float(jnp.max(jnp.abs(x - y)))
               for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


@partial(jax.jit, static_argnames=("sequential",))
def ws_reference(key, params, u, learning_rate, sequential):
    """One hand-written SGD wake-sleep step with the bundle's key convention."""
    key_wake, key_sleep = jax.random.split(key)
    woken = wake_step(key_wake, params, u, learning_rate)
    if sequential:
        return sleep_step(key_sleep, woken, learning_rate, u.shape[0])
    slept = sleep_step(key_sleep, params, learning_rate, u.shape[0])
    return {**woken, **recognition_params(slept)}


# 1. optax.sgd gives the delta rules.


@pytest.mark.parametrize("sequential", [False, True])
def test_sgd_wake_sleep_is_wake_step_and_sleep_step(sequential):
    algo = wsjax.wake_sleep(optax.sgd, sequential=sequential)
    step = jax.jit(algo.step)
    state = algo.init(PARAMS, _hp(algo, learning_rate=0.3))
    want = PARAMS
    for key in jax.random.split(KEY, 2):
        state, info = step(key, state, U)
        want = ws_reference(key, want, U, 0.3, sequential)
    chex.assert_trees_all_close(state.params, want, atol=1e-6, rtol=0)
    assert int(state.step) == 2
    assert isinstance(info, wsjax.WakeSleepInfo)


def test_sgd_rws_is_rws_step():
    algo = BUNDLES["rws-sgd"]
    state = algo.init(PARAMS, _hp(algo, learning_rate=0.3, insomnia=0.5))
    state, info = STEPS["rws-sgd"](KEY, state, U)
    want = rws_step(KEY, PARAMS, U, 0.3, 3, insomnia=0.5, sleep_batch_size=4)
    chex.assert_trees_all_close(state.params, want, atol=1e-6, rtol=0)
    assert isinstance(info, wsjax.RWSInfo)
    chex.assert_tree_all_finite(info)


SEQUENTIAL_SGD = wsjax.wake_sleep(optax.sgd, sequential=True)


@pytest.mark.parametrize("weight", [1.5, [1.5, 0.0]])  # every layer; the first layer only
@pytest.mark.parametrize("name", ["wake_sleep-sgd", "wake_sleep-sequential-sgd", "rws-sgd"])
def test_the_activity_term_is_added_to_the_recognition_update(name, weight):
    """Also in the sequential step: the term is taken at the pre-step recognition params,
    which the wake update leaves alone, and added to the sleep update alone."""
    algo = SEQUENTIAL_SGD if "sequential" in name else BUNDLES[name]
    step = jax.jit(algo.step) if "sequential" in name else STEPS[name]
    lr, floor, ceiling = [0.2, 0.3], [0.4, 0.2], 0.6
    plain = step(KEY, algo.init(PARAMS, _hp(algo, learning_rate=lr)), U)[0].params
    lifted = step(KEY, algo.init(PARAMS, _hp(algo, learning_rate=lr, activity_weight=weight,
                                             activity_floor=floor, activity_ceiling=ceiling)),
                  U)[0].params
    # The wake samples of either step (its first split of the key).
    wake_key = jax.random.split(KEY)[0]
    hs = sample_up(wake_key, PARAMS, U, num_samples=3 if algo.name == "rws" else None)
    term = activity_grads(PARAMS, U, hs, floor, ceiling)
    per_layer = np.broadcast_to(weight, (len(SIZES) - 1,))
    want = {"recognition": tuple(
        jax.tree.map(lambda p, g, w=w: p - lr[1] * w * g, layer, grads) for w, layer, grads in
        zip(per_layer, plain["recognition"], term["recognition"]))}
    chex.assert_trees_all_close(recognition_params(lifted), want, atol=1e-6, rtol=0)
    chex.assert_trees_all_close(generative_params(lifted), generative_params(plain), atol=0, rtol=0)
    assert _diff(term, jax.tree.map(jnp.zeros_like, term)) > 1e-3  # the term is not empty


def test_the_activity_floor_brings_back_a_unit_the_recognition_model_never_turns_on():
    """Hidden unit 0 starts dead (recognition and prior biases -12: no wake sample and no
    dream has it on): plain wake-sleep keeps it off, with the activity term its mean
    probability on the data rises to the floor."""
    params = random_machine(1, (6, 3), scale=0.5)
    rec = params["recognition"][0]
    params["recognition"] = ({**rec, "b": rec["b"].at[0].set(-12.0)},)
    params["prior"] = {"b": params["prior"]["b"].at[0].set(-12.0)}
    data = jnp.asarray(np.random.default_rng(2).integers(0, 2, (20, 6)), jnp.float32)
    algo = BUNDLES["wake_sleep-sgd"]

    def final_mean(weight):
        state = algo.init(params, _hp(algo, learning_rate=0.5, activity_weight=weight,
                                      activity_floor=0.1))
        state, _ = jax.lax.scan(lambda s, k: (algo.step(k, s, data)[0], None), state,
                                jax.random.split(KEY, 300))
        r = state.params["recognition"][0]
        return float(jnp.mean(jax.nn.sigmoid(data @ r["w"].T + r["b"])[:, 0]))

    assert final_mean(0.0) < 1e-3
    assert final_mean(1.0) > 0.05


def test_adam_keeps_a_separate_state_per_half():
    lr = 0.05
    algo = wsjax.wake_sleep(optax.adam)
    state, _ = jax.jit(algo.step)(KEY, algo.init(PARAMS, _hp(algo, learning_rate=lr)), U)

    # Oracle: Adam on each half alone, fed only that half's gradients.
    key_wake, key_sleep = jax.random.split(KEY)
    want = {}
    for half, (grads, _) in ((generative_params(PARAMS), wake_grads(key_wake, PARAMS, U)),
                             (recognition_params(PARAMS), sleep_grads(key_sleep, PARAMS, BATCH))):
        tx = optax.adam(lr)
        updates, _ = tx.update(grads, tx.init(half), half)
        want.update(optax.apply_updates(half, updates))
    chex.assert_trees_all_close(state.params, want, atol=1e-6, rtol=0)


def test_layer_multipliers_and_decay_scale_each_layer_of_the_sgd_update():
    algo = wsjax.wake_sleep(optax.sgd)
    step = jax.jit(algo.step)

    def delta(state):
        return jax.tree.map(lambda new, old: new - old, step(KEY, state, U)[0].params, state.params)

    base = delta(algo.init(PARAMS, _hp(algo, learning_rate=0.3)))
    # A constant multiplier 0.25 on layer 1 (and the prior), 1 on layer 0.
    scaled = delta(algo.init(PARAMS, _hp(algo, learning_rate=0.3, layer_rate_start=[1.0, 0.25],
                                          layer_rate_end=[1.0, 0.25])))
    for side in ("generative", "recognition"):
        chex.assert_trees_all_close(scaled[side][0], base[side][0], rtol=1e-5, atol=1e-7)
        chex.assert_trees_all_close(scaled[side][1],
                                    jax.tree.map(lambda x: 0.25 * x, base[side][1]),
                                    rtol=1e-5, atol=1e-7)
    chex.assert_trees_all_close(scaled["prior"], jax.tree.map(lambda x: 0.25 * x, base["prior"]),
                                rtol=1e-5, atol=1e-7)

    # Geometric schedules over decay_steps = 8: after 4 steps a multiplier moving 0.5 -> 2 is 1 and
    # a decay to 0.01 is 0.1, so step 4 is a plain step at rate 0.03; from step 8 on both hold
    # their end values (rate 0.3 * 2 * 0.01).
    moving = algo.init(PARAMS, _hp(algo, learning_rate=0.3, layer_rate_start=0.5,
                                   layer_rate_end=2.0, lr_decay=0.01, decay_steps=8.0))
    for t, rate in ((4, 0.03), (8, 0.006), (10, 0.006)):
        state = moving
        for i in range(t):
            state, _ = step(jax.random.fold_in(KEY, i), state, U)
        constant = algo.init(state.params, _hp(algo, learning_rate=rate))
        chex.assert_trees_all_close(delta(state), delta(constant), rtol=2e-5, atol=1e-8)
    assert _diff(delta(state), jax.tree.map(jnp.zeros_like, base)) > 1e-4


@pytest.mark.parametrize("name", NAMES)
def test_zero_rate_freezes_that_half(name):
    algo, step = BUNDLES[name], STEPS[name]
    frozen_gen, _ = step(KEY, algo.init(PARAMS, _hp(algo, learning_rate=[0.0, 0.05])), U)
    chex.assert_trees_all_equal(generative_params(frozen_gen.params), generative_params(PARAMS))
    assert _diff(recognition_params(frozen_gen.params), recognition_params(PARAMS)) > 1e-4
    frozen_rec, _ = step(KEY, algo.init(PARAMS, _hp(algo, learning_rate=[0.05, 0.0])), U)
    chex.assert_trees_all_equal(recognition_params(frozen_rec.params), recognition_params(PARAMS))
    assert _diff(generative_params(frozen_rec.params), generative_params(PARAMS)) > 1e-4


# 2. Purity: same key same state, vmap over hyperparameters equals a loop, no retrace.


@pytest.mark.parametrize("name", NAMES)
def test_same_key_same_state_other_key_other_state(name):
    algo, step = BUNDLES[name], STEPS[name]
    state0 = algo.init(PARAMS, _hp(algo))
    runs = []
    for seed in (1, 1, 2):
        state = state0
        for key in jax.random.split(jax.random.key(seed), 2):
            state, _ = step(key, state, U)
        runs.append(state)
    chex.assert_trees_all_equal(runs[0], runs[1])
    assert _diff(runs[0].params, runs[2].params) > 1e-5
    chex.assert_tree_all_finite(runs[0])
    chex.assert_trees_all_equal_shapes_and_dtypes(runs[0].params, PARAMS)


@pytest.mark.parametrize("name", NAMES)
def test_vmap_over_hyperparameters_equals_a_loop(name):
    algo, step = BUNDLES[name], STEPS[name]
    axes = {"learning_rate": [0.01, [0.05, 0.1]], "lr_decay": [1.0, 0.5],
            "activity_weight": [0.0, 2.0]}
    if algo.name == "rws":
        axes["insomnia"] = [0.0, 1.0]
    if "adam" in name:
        axes["optimizer.b1"] = [0.8, 0.9]
    points = wsjax.grid(_hp(algo, decay_steps=2.0, activity_floor=0.3), axes)
    states = jax.vmap(algo.init, in_axes=(None, 0))(PARAMS, points)
    vstep = jax.jit(jax.vmap(step, in_axes=(None, 0, None)))
    keys = jax.random.split(KEY, 2)
    for key in keys:
        states, _ = vstep(key, states, U)
    looped = []
    for i in range(jax.tree.leaves(points)[0].shape[0]):
        state = algo.init(PARAMS, jax.tree.map(lambda x, i=i: x[i], points))
        for key in keys:
            state, _ = step(key, state, U)
        looped.append(state)
    chex.assert_trees_all_close(states, jax.tree.map(lambda *xs: jnp.stack(xs), *looped),
                                atol=1e-6, rtol=0)
    # The points differ, so the runs do.
    assert _diff(jax.tree.map(lambda x: x[0], states.params),
                 jax.tree.map(lambda x: x[-1], states.params)) > 1e-4


@pytest.mark.parametrize("name", NAMES)
def test_new_hyperparameter_values_do_not_recompile(name):
    algo, step = BUNDLES[name], STEPS[name]
    outs, sizes = [], []
    for kw in (dict(learning_rate=0.1), dict(learning_rate=[0.2, 0.3], lr_decay=0.5),
               dict(layer_rate_start=[1.0, 0.0], layer_rate_end=[2.0, 3.0], decay_steps=5.0)):
        outs.append(step(KEY, algo.init(PARAMS, _hp(algo, **kw)), U)[0].params)
        sizes.append(step._cache_size())
    assert sizes[1:] == sizes[:1] * 2, sizes  # one compiled program serves every value
    assert _diff(outs[0], outs[1]) > 1e-5 and _diff(outs[1], outs[2]) > 1e-5


def test_eager_smoke():
    algo = BUNDLES["wake_sleep-sgd"]
    state, info = algo.step(KEY, algo.init(PARAMS, _hp(algo)), U)
    assert isinstance(state, wsjax.State) and int(state.step) == 1
    chex.assert_tree_all_finite((state, info))


# 3. Bad options and hyperparameters are refused with their names.


@pytest.mark.parametrize("make, error, message", [
    (lambda: wsjax.wake_sleep(optax.sgd(0.1)), TypeError, "not a built transformation"),
    (lambda: wsjax.rws(optax.sgd, 0), ValueError, "num_samples"),
    (lambda: wsjax.rws(optax.sgd, 2.5), ValueError, "num_samples"),
    (lambda: wsjax.wake_sleep(optax.sgd, sleep_batch_size=0), ValueError, "sleep_batch_size"),
    (lambda: wsjax.wake_sleep().default_hyperparams(insomnia=0.5), ValueError,
     "unknown hyperparameters \\['insomnia'\\]"),
    (lambda: wsjax.rws().default_hyperparams(insomnia=1.5), ValueError, "insomnia must be in"),
    (lambda: wsjax.rws().default_hyperparams(learning_rate=-1.0), ValueError, "learning_rate"),
    (lambda: wsjax.rws().default_hyperparams(activity_weight=-1.0), ValueError, "activity_weight"),
    (lambda: wsjax.wake_sleep().default_hyperparams(activity_floor=0.5, activity_ceiling=0.2),
     ValueError, "activity_floor \\(0.5\\) must not exceed activity_ceiling"),
    (lambda: wsjax.rws().default_hyperparams(activity_floor=[0.1, 0.5], activity_ceiling=0.3),
     ValueError, "activity_floor \\(0.1 0.5\\) must not exceed activity_ceiling \\(0.3\\)"),
    (lambda: wsjax.grid(wsjax.rws().default_hyperparams(activity_ceiling=0.3),
                        {"activity_floor": [[0.1, 0.2], [0.1, 0.4]]}), ValueError,
     "activity_floor \\(0.1 0.4\\) must not exceed"),
    (lambda: wsjax.rws().default_hyperparams(learning_rate=float("nan")), ValueError,
     "learning_rate"),
    (lambda: wsjax.rws().default_hyperparams(lr_decay=float("inf")), ValueError, "lr_decay"),
    (lambda: wsjax.rws().default_hyperparams(learning_rate=[1.0, 2.0, 3.0]), ValueError,
     "pair"),
    (lambda: wsjax.rws().init(PARAMS, wsjax.wake_sleep().default_hyperparams()), ValueError,
     "hyperparameters \\['defensive', 'insomnia'\\] are missing"),
    (lambda: wsjax.wake_sleep().init(PARAMS, wsjax.wake_sleep().default_hyperparams(
        layer_rate_start=[1.0, 1.0, 1.0])), ValueError, "layer_rate_start needs one value or 2"),
])
def test_bad_settings_are_refused(make, error, message):
    with pytest.raises(error, match=message):
        make()
