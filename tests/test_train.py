"""Compiled training runs and sweeps: determinism, vmap == loop, grid points, no recompilation."""

import chex
import jax
import numpy as np
import optax
import pytest

import wsjax
from wsjax import tasks

BARS = tasks.bars()
WS = wsjax.wake_sleep(optax.sgd)
RWS = wsjax.rws(optax.adam, 2)


def _config(**kw):
    base = dict(layer_sizes=(16, 8, 1), num_steps=40, batch_size=5, sampler=BARS.sampler,
                eval_every=20, eval_fn=BARS.eval_fn)
    base.update(kw)
    return wsjax.TrainConfig(**base)


TRAINER = wsjax.make_train(_config(), WS)
# Without the evaluation, for the tests of the training loop alone (it halves the compile time).
BARE = wsjax.make_train(_config(eval_fn=None), WS)
HP = TRAINER.default_hyperparams(learning_rate=0.5, lr_decay=0.1, decay_steps=40.0,
                                 init_scale=[0.0, 1.0])
TRAIN = jax.jit(TRAINER.train)
BARE_TRAIN = jax.jit(BARE.train)
SWEEP = wsjax.sweep(BARE)


def test_same_key_same_run_and_different_keys_differ():
    a = TRAIN(jax.random.key(0), HP)
    chex.assert_trees_all_equal(a, TRAIN(jax.random.key(0), HP))
    c = TRAIN(jax.random.key(1), HP)
    assert not np.array_equal(a[0].params["generative"][0]["w"], c[0].params["generative"][0]["w"])
    assert a[1]["kl_bits"].shape == (2,) and list(a[1]["step"]) == [20, 40]


def test_sweep_over_a_grid_equals_a_loop_over_points_and_seeds():
    keys = jax.random.split(jax.random.key(3), 3)
    axes = {"learning_rate": [0.3, [1.0, 2.0]], "init_scale": [0.0, [0.1, 1.0]]}
    points = wsjax.grid(HP, axes)
    states, metrics = SWEEP(keys, points, None)
    assert metrics["wake_loss"].shape == (4, 3, 2)
    for g in range(4):
        point = jax.tree.map(lambda x, g=g: x[g], points)
        for s in range(3):
            want = BARE_TRAIN(keys[s], point)
            chex.assert_trees_all_close(jax.tree.map(lambda x, g=g, s=s: x[g, s],
                                                     (states, metrics)), want,
                                        rtol=1e-5, atol=1e-5)


ALGORITHMS = {
    "wake_sleep-sgd": lambda: WS,
    "wake_sleep-sequential-adam": lambda: wsjax.wake_sleep(optax.adam, sequential=True),
    "rws-sgd": lambda: wsjax.rws(optax.sgd, 2),
    "rws-adam": lambda: RWS,
}


@pytest.mark.parametrize("name", list(ALGORITHMS))
def test_a_grid_point_equals_the_same_run_swept_alone(name):
    keys = jax.random.split(jax.random.key(4), 2)
    # One layer of conditionals and a short run: the smallest programs that still have an
    # optimizer state and (for RWS) importance weights.
    trainer = wsjax.make_train(_config(layer_sizes=(16, 6), num_steps=10, eval_every=10,
                                       eval_fn=None), ALGORITHMS[name]())
    sweep = wsjax.sweep(trainer)
    hp = trainer.default_hyperparams(learning_rate=0.01)
    _, together = sweep(keys, wsjax.grid(hp, {"lr_decay": [0.3, 0.5, 1.0]}), None)
    _, alone = sweep(keys, wsjax.grid(hp, {"lr_decay": [1.0]}), None)
    chex.assert_trees_all_equal(jax.tree.map(lambda x: x[2], together),
                                jax.tree.map(lambda x: x[0], alone))
    assert not np.array_equal(together["sleep_loss"][0], together["sleep_loss"][2])


def test_the_runs_layout_gives_the_seeds_layouts_numbers_up_to_rounding():
    keys = jax.random.split(jax.random.key(5), 3)
    points = wsjax.grid(HP, {"learning_rate": [0.3, 1.0]})
    by_seeds = SWEEP(keys, points, None)
    by_runs = wsjax.sweep(BARE, vectorize="runs")(keys, points, None)
    chex.assert_trees_all_close(by_seeds, by_runs, rtol=1e-5, atol=1e-5)


def test_grid_orders_axes_first_slowest_and_broadcasts_values():
    points = wsjax.grid(HP, {"learning_rate": [1.0, [2.0, 3.0]], "lr_decay": [0.5, 0.25, 1.0]})
    np.testing.assert_array_equal(points["learning_rate"],
                                  [[1, 1]] * 3 + [[2, 3]] * 3)
    np.testing.assert_array_equal(points["lr_decay"], [0.5, 0.25, 1.0] * 2)
    np.testing.assert_array_equal(points["init_scale"], np.tile([0.0, 1.0], (6, 1)))


@pytest.mark.parametrize("axes, message", [
    ({"temperature": [1.0]}, "unknown hyperparameter 'temperature'"),
    ({"lr_decay": []}, "has no values"),
    ({"lr_decay": [0.5, -1.0]}, "lr_decay must be finite and > 0"),
    ({"learning_rate": [float("nan")]}, "learning_rate"),
])
def test_bad_grids_are_refused(axes, message):
    with pytest.raises(ValueError, match=message):
        wsjax.grid(HP, axes)


def test_second_sweep_call_does_not_recompile():
    traces = []

    def sampler(key, batch_size, data):
        traces.append(1)  # runs once per trace, never at execution
        return BARS.sampler(key, batch_size, data)

    trainer = wsjax.make_train(_config(sampler=sampler, eval_fn=None), WS)
    sweep = wsjax.sweep(trainer)
    keys = jax.random.split(jax.random.key(0), 2)
    out1 = sweep(keys, wsjax.grid(HP, {"learning_rate": [0.1, 1.0]}), None)
    n = len(traces)
    out2 = sweep(keys, wsjax.grid(HP, {"learning_rate": [0.2, 3.0]}), None)
    assert len(traces) == n  # same shapes: no new trace, so no new compilation
    assert sweep._cache_size() == 1
    assert not np.array_equal(out1[1]["wake_loss"], out2[1]["wake_loss"])


def test_short_bars_run_learns():
    # The exact KL of the start and of the end, computed outside the run: the bars task's
    # other metrics (bars drawn, orientation) would only add compilation here.
    trainer = wsjax.make_train(_config(num_steps=4000, batch_size=10, eval_every=4000,
                                       eval_fn=None), WS)
    hp = trainer.default_hyperparams(lr_decay=0.1, decay_steps=4000.0, prior_bias=-2.5,
                                     generative_bias=-2.5, recognition_bias=-1.4)
    points = wsjax.grid(hp, {"learning_rate": [2.0, 4.0]})
    keys = jax.random.split(jax.random.key(0), 2)
    images, probs = wsjax.data.bars_distribution(4)
    kl = jax.jit(jax.vmap(jax.vmap(lambda p: wsjax.exact_kl_bits(p, images, probs))))
    start = jax.vmap(jax.vmap(trainer.init, in_axes=(0, None)), in_axes=(None, 0))(keys, points)
    states, _ = wsjax.sweep(trainer)(keys, points, None)
    before, after = kl(start.params), kl(states.params)  # [point, seed]
    # Zero weights with these biases start near 9 bits; 4e4 samples bring every run below 2.
    assert np.all(before > 5.0), before
    assert np.all(after < 2.0), after


@pytest.mark.parametrize("change, message", [
    (dict(num_steps=0), "num_steps must be a positive integer"),
    (dict(batch_size=-1), "batch_size must be a positive integer"),
    (dict(num_steps=30, eval_every=20), "multiple of eval_every"),
    (dict(layer_sizes=(16,)), "layer_sizes"),
    (dict(layer_sizes=(16, 0, 1)), "layer_sizes"),
])
def test_impossible_configs_fail_before_compiling(change, message):
    with pytest.raises(ValueError, match=message):
        wsjax.make_train(_config(**change), WS)


@pytest.mark.parametrize("overrides, message", [
    (dict(init_scale=[1.0, 2.0, 3.0]), "init_scale needs one value or 2"),
    (dict(init_scale=-1.0), "init_scale must be finite and >= 0"),
    (dict(prior_bias=float("nan")), "prior_bias must be finite"),
    (dict(generative_bias=[-1.0, -2.0, -3.0]), "generative_bias needs one value or 2"),
    (dict(recognition_bias=[[0.0, 1.0]]), "recognition_bias needs one value or 2"),
])
def test_impossible_init_hyperparameters_are_refused(overrides, message):
    with pytest.raises(ValueError, match=message):
        TRAINER.default_hyperparams(**overrides)


def test_per_layer_init_scale():
    params = wsjax.init(jax.random.key(0), (16, 8, 1), init_scale=(0.0, 1.0))
    assert not np.any(params["generative"][0]["w"]) and not np.any(params["recognition"][0]["w"])
    assert 0.3 < float(np.std(params["generative"][1]["w"])) < 2.0
    with pytest.raises(ValueError, match="one per layer"):
        wsjax.init(jax.random.key(0), (16, 8, 1), init_scale=(0.0, 1.0, 2.0))


def test_per_layer_biases():
    params = wsjax.init(jax.random.key(0), (16, 8, 1), generative_bias=(-2.5, -5.0),
                        recognition_bias=(-1.4, 0.5), prior_bias=-1.0)
    for layer, value in zip(params["generative"], (-2.5, -5.0)):
        np.testing.assert_array_equal(layer["b"], np.full(layer["b"].shape, value, np.float32))
    for layer, value in zip(params["recognition"], (-1.4, 0.5)):
        np.testing.assert_array_equal(layer["b"], np.full(layer["b"].shape, value, np.float32))
    np.testing.assert_array_equal(params["prior"]["b"], [-1.0])
    with pytest.raises(ValueError, match="one per layer"):
        wsjax.init(jax.random.key(0), (16, 8, 1), generative_bias=(-1.0, -2.0, -3.0))


def test_per_layer_bias_is_a_sweep_axis():
    # Two points of a grid over per-layer generative biases start two runs from
    # exactly those biases, in one program.
    axes = {"generative_bias": [[-2.5, -5.0], [-5.0, -2.5]]}
    points = wsjax.grid(TRAINER.default_hyperparams(), axes)
    states = jax.vmap(TRAINER.init, in_axes=(None, 0))(jax.random.key(0), points)
    gen = states.params["generative"]
    np.testing.assert_array_equal(gen[0]["b"][:, 0], [-2.5, -5.0])
    np.testing.assert_array_equal(gen[1]["b"][:, 0], [-5.0, -2.5])
