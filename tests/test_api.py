"""The public surface: compiled once per shape, concrete inputs checked where they enter."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import wsjax
from tests.helpers import random_machine

PARAMS = random_machine(0, (6, 3, 2))
U = jnp.asarray(np.random.default_rng(0).integers(0, 2, (4, 6)), jnp.float32)


def test_repeated_eager_calls_compile_once_per_shape():
    fn = wsjax.estimate_log_prob
    first = fn(jax.random.key(0), PARAMS, U, 10)
    size = fn.compiled._cache_size()
    for seed in (1, 2):
        out = fn(jax.random.key(seed), PARAMS, np.asarray(U), 10)  # numpy data, new key
    assert fn.compiled._cache_size() == size
    assert not np.array_equal(first, out)
    fn(jax.random.key(3), PARAMS, U, 11)  # a new static K compiles once more
    assert fn.compiled._cache_size() == size + 1


def test_steps_take_new_rates_without_recompiling():
    wsjax.wake_step(jax.random.key(0), PARAMS, U, 0.1)
    size = wsjax.wake_step.compiled._cache_size()
    a = wsjax.wake_step(jax.random.key(0), PARAMS, U, 0.2)
    b = wsjax.wake_step(jax.random.key(0), PARAMS, U, np.float32(0.3))
    assert wsjax.wake_step.compiled._cache_size() == size
    assert not np.array_equal(a["prior"]["b"], b["prior"]["b"])


@pytest.mark.parametrize("bad, message", [
    (2 * U, "must contain only 0 and 1; found non-binary values 2.0"),
    (U.at[1, 2].set(jnp.nan), r"NaN or non-binary values nan in 1 entries \(first at row 1, col"),
    (U.at[0, 0].set(0.5), "non-binary values 0.5"),
    (U[:0], "is empty"),
    (U[0], "must be a 2-D array"),
])
def test_concrete_bad_data_is_refused_where_it_enters(bad, message):
    for call in (lambda: wsjax.exact_log_prob(PARAMS, bad),
                 lambda: wsjax.estimate_log_prob(jax.random.key(0), PARAMS, bad, 5),
                 lambda: wsjax.elbo(jax.random.key(0), PARAMS, bad),
                 lambda: wsjax.wake_step(jax.random.key(0), PARAMS, bad, 0.1),
                 lambda: wsjax.rws_step(jax.random.key(0), PARAMS, bad, 0.1, 2)):
        with pytest.raises(ValueError, match=message):
            call()


@pytest.mark.parametrize("rate", [-0.1, float("nan"), float("inf")])
def test_concrete_bad_rates_are_refused(rate):
    with pytest.raises(ValueError, match="learning_rate must be a finite, non-negative"):
        wsjax.wake_step(jax.random.key(0), PARAMS, U, rate)
    with pytest.raises(ValueError, match="learning_rate must be a finite, non-negative"):
        wsjax.sleep_step(jax.random.key(0), PARAMS, rate, 3)


def test_traced_inputs_pass_unchecked_and_compose():
    # Under the caller's jit the data is a tracer: no host check, the same numbers.
    eager = wsjax.exact_log_prob(PARAMS, U)
    traced = jax.jit(lambda u: wsjax.exact_log_prob(PARAMS, u))(U)
    np.testing.assert_allclose(eager, traced, rtol=1e-6)
    grad = jax.grad(lambda p: jnp.sum(wsjax.exact_log_prob(p, U)))(PARAMS)
    assert all(np.all(np.isfinite(g)) for g in jax.tree.leaves(grad))
    batched = jax.vmap(lambda k: wsjax.estimate_log_prob(k, PARAMS, U, 4))(
        jax.random.split(jax.random.key(0), 3))
    assert batched.shape == (3, 4)


def test_sleep_batch_size_must_be_a_whole_number():
    with pytest.raises(ValueError, match="batch_size must be a positive integer, got 2.5"):
        wsjax.sleep_step(jax.random.key(0), PARAMS, 0.1, 2.5)


def test_exact_kl_skips_images_of_probability_zero():
    images = jnp.asarray([[0, 0, 0, 0, 0, 0], [1, 1, 0, 0, 1, 0], [1, 1, 1, 1, 1, 1]], jnp.float32)
    probs = jnp.asarray([0.25, 0.75, 0.0])
    kl = wsjax.exact_kl_bits(PARAMS, images, probs)
    log_model = wsjax.exact_log_prob(PARAMS, images[:2])
    want = float(jnp.sum(probs[:2] * (jnp.log(probs[:2]) - log_model)) / jnp.log(2.0))
    assert np.isfinite(float(kl)) and float(kl) == pytest.approx(want, rel=1e-5)


@pytest.mark.parametrize("params, message", [
    ({"generative": PARAMS["generative"], "recognition": PARAMS["recognition"]},
     r'keys "prior", "generative" and "recognition".*got \[\'generative\', \'recognition\'\]'),
    ({**PARAMS, "prior": {"b": jnp.zeros(3)}},
     "generative conditional 1 cannot take an input of width 3"),
    ({**PARAMS, "prior": {"b": jnp.zeros((1, 2))}}, r"must be a vector \[n_top\]"),
    ({**PARAMS, "generative": ()}, "must be a non-empty tuple"),
    ({**PARAMS, "prior": {"b": jnp.zeros(2, jnp.int32)}},
     r"params\['prior'\]\['b'\] has dtype int32"),
])
def test_malformed_params_are_named(params, message):
    for call in (lambda: wsjax.exact_log_prob(params, U),
                 lambda: wsjax.wake_step(jax.random.key(0), params, U, 0.1),
                 lambda: wsjax.sleep_step(jax.random.key(0), params, 0.1, 3)):
        with pytest.raises(ValueError, match=message):
            call()


def test_integer_textbook_matrices_become_float():
    params = wsjax.from_matrices(G=np.zeros((4, 2), int), g=np.zeros(2, int), h=np.zeros(4, int),
                                 W=np.zeros((2, 4), int), w=np.zeros(2, int))
    assert all(leaf.dtype == jnp.float32 for leaf in jax.tree.leaves(params))
    new = wsjax.sleep_step(jax.random.key(0), params, 0.1, 3)
    # Zero weights and biases: every dream is a fair coin, so the recognition biases move.
    assert np.any(np.asarray(new["recognition"][0]["b"]) != 0)


@pytest.mark.parametrize("sizes", [(True, 8), (16, 0), (16, 2.5), (16,), "16,8"])
def test_impossible_layer_sizes_are_refused(sizes):
    with pytest.raises(ValueError, match="layer_sizes"):
        wsjax.init(jax.random.key(0), sizes)


def test_numpy_integers_and_python_lists_are_accepted():
    params = wsjax.init(jax.random.key(0), (np.int64(6), np.int32(3)))
    assert wsjax.model.layer_sizes(params) == (6, 3)
    from_list = wsjax.exact_log_prob(PARAMS, U.tolist())
    np.testing.assert_array_equal(from_list, wsjax.exact_log_prob(PARAMS, U))


def test_estimate_chunk_size_must_be_a_positive_integer():
    with pytest.raises(ValueError, match="chunk_size must be a positive integer, got 0"):
        wsjax.estimate_log_prob(jax.random.key(0), PARAMS, U, 10, chunk_size=0)


def test_a_config_takes_numpy_integers_and_a_sweep_refuses_a_nan_rate():
    import optax

    bars = wsjax.tasks.bars()
    config = wsjax.TrainConfig(layer_sizes=(16, 8, 1), num_steps=np.int64(20),
                               batch_size=np.int32(10), sampler=bars.sampler, eval_every=10,
                               eval_fn=bars.eval_fn)
    trainer = wsjax.make_train(config, wsjax.wake_sleep(optax.sgd))
    base = trainer.default_hyperparams(learning_rate=0.1)
    with pytest.raises(ValueError, match="learning_rate must be finite and >= 0, got nan"):
        wsjax.grid(base, {"learning_rate": [0.1, float("nan")]})


# Algorithm bundles and trainers: the same promise as the functions above.

import optax  # noqa: E402

RWS = wsjax.rws(optax.adam, num_samples=3)
WS = wsjax.wake_sleep(optax.sgd)


def _state(algo, **overrides):
    return algo.init(PARAMS, algo.default_hyperparams(**overrides))


def test_an_eager_bundle_step_compiles_once_and_equals_the_jitted_step():
    state = _state(RWS, learning_rate=0.01, insomnia=0.5)
    eager, info = RWS.step(jax.random.key(1), state, np.asarray(U))  # numpy data
    size = RWS.step.compiled._cache_size()
    again, _ = RWS.step(jax.random.key(2), eager, U)
    assert RWS.step.compiled._cache_size() == size
    jitted, jitted_info = jax.jit(RWS.step.uncompiled)(jax.random.key(1), state, U)
    chex_equal = lambda a, b: all(np.array_equal(x, y) for x, y in
                                  zip(jax.tree.leaves(a), jax.tree.leaves(b)))
    assert chex_equal(eager, jitted) and chex_equal(info, jitted_info)
    assert not chex_equal(again.params, eager.params)
    # Inside the caller's own transformations it is plain traced code: no nested program.
    jaxpr = jax.make_jaxpr(RWS.step)(jax.random.key(1), state, U)
    nested = [e.params.get("name") for e in jaxpr.jaxpr.eqns if "jit" in e.primitive.name]
    assert "checked_step_fn" not in nested and len(jaxpr.jaxpr.eqns) > 10


def test_bundle_init_and_step_have_real_docstrings():
    for algo in (RWS, WS):
        assert "State" in algo.init.__doc__ and "Raises" in algo.init.__doc__
        assert algo.step.__name__ == "step" and "[batch, n_visible]" in algo.step.__doc__
        assert "learning_rate" in algo.default_hyperparams.__doc__


@pytest.mark.parametrize("bad, message", [
    (2 * U, "must contain only 0 and 1; found non-binary values 2.0"),
    (U.at[1, 2].set(jnp.nan), "NaN or non-binary values nan"),
    (U.at[0, 0].set(0.5), "non-binary values 0.5"),
    (U[0], "must be a 2-D array"),
    (U[:, :4], r"does not fit the machine: expected \[batch, n_visible\] with n_visible = 6"),
])
def test_a_bundle_step_checks_concrete_data(bad, message):
    for algo in (RWS, WS):
        with pytest.raises(ValueError, match=message):
            algo.step(jax.random.key(0), _state(algo), bad)


def test_a_bundle_refuses_another_bundles_state_or_raw_params():
    with pytest.raises(TypeError,
                       match=r"not made by rws.init .*it lacks \['defensive', 'insomnia'\]"):
        RWS.step(jax.random.key(0), _state(WS), U)
    with pytest.raises(TypeError,
                       match=r"not made by wake_sleep.init .*it has \['defensive', 'insomnia'\]"):
        WS.step(jax.random.key(0), _state(RWS), U)
    with pytest.raises(TypeError, match="takes a State made by rws.init, got dict .raw params"):
        RWS.step(jax.random.key(0), PARAMS, U)
    sgd = wsjax.rws(optax.sgd, num_samples=3)
    with pytest.raises(TypeError, match="state.opt_state is not a state of optax.sgd"):
        sgd.step(jax.random.key(0), _state(RWS), U)
    # Inside the caller's jit the same checks run at trace time.
    with pytest.raises(TypeError, match="state.opt_state is not a state of optax.sgd"):
        jax.jit(sgd.step)(jax.random.key(0), _state(RWS), U)


def test_a_state_whose_hyperparameter_has_the_wrong_shape_is_named():
    state = _state(RWS)
    bad = state._replace(hyperparams={**state.hyperparams, "insomnia": jnp.ones(3)})
    with pytest.raises(ValueError, match="insomnia must be a scalar, got shape"):
        RWS.step(jax.random.key(0), bad, U)
    bad = state._replace(hyperparams={**state.hyperparams, "layer_rate_start": jnp.ones(3)})
    with pytest.raises(ValueError, match=r"layer_rate_start'\] has shape \(3,\).* \(2,\)"):
        jax.jit(RWS.step)(jax.random.key(0), bad, U)
    bad = state._replace(hyperparams={**state.hyperparams, "insomnia": jnp.asarray(1.5)})
    with pytest.raises(ValueError, match=r"insomnia must be in \[0, 1\], got 1.5"):
        RWS.step(jax.random.key(0), bad, U)


@pytest.mark.parametrize("call, error, message", [
    (lambda: wsjax.init(jax.random.key(0), (4, 2), init_scale=float("nan")), ValueError,
     "init_scale must be finite and >= 0, got nan"),
    (lambda: wsjax.init(jax.random.key(0), (4, 2, 1), generative_bias=[0.0, float("inf")]),
     ValueError, r"generative_bias must be finite, got \[0.0, inf\]"),
    (lambda: WS.default_hyperparams(learning_rate="abc"), TypeError,
     "hyperparameter learning_rate must be a number or an array of numbers, got 'abc'"),
    (lambda: RWS.default_hyperparams(optimizer={"b1": 2.0}), ValueError,
     r"optimizer keyword b1 must be in \[0, 1\), got 2.0"),
    (lambda: WS.default_hyperparams(optimizer={"b1": 0.9}), ValueError,
     "optimizer keyword 'b1' is not a parameter of optax.sgd"),
    (lambda: wsjax.wake_step(jax.random.key(0), PARAMS, U, [0.1, 0.2]), ValueError,
     r"learning_rate must be a scalar .*got shape \(2,\)"),
    (lambda: wsjax.rws_step(jax.random.key(0), PARAMS, U, [0.1, 0.2, 0.3], 2), ValueError,
     r"learning_rate must be a scalar .*got shape \(3,\)"),
    (lambda: wsjax.sleep_step(jax.random.key(0), PARAMS, "fast", 3), TypeError,
     "learning_rate must be a number, got 'fast'"),
    (lambda: wsjax.estimate_log_prob(jax.random.key(0), PARAMS, U, 2**31), ValueError,
     "num_samples = 2147483648 is more than"),
])
def test_hyperparameters_are_named_where_they_enter(call, error, message):
    with pytest.raises(error, match=message):
        call()


def _bars_trainer(algo=WS, sampler=None):
    bars = wsjax.tasks.bars()
    config = wsjax.TrainConfig(layer_sizes=(16, 4, 1), num_steps=4, batch_size=5,
                               sampler=sampler or bars.sampler, eval_every=2)
    return wsjax.make_train(config, algo)


def test_a_trainer_runs_eagerly_on_a_numpy_array_through_sample_batch():
    data = np.asarray(wsjax.data.sample_bars(jax.random.key(5), 50))
    trainer = _bars_trainer(sampler=wsjax.data.sample_batch)
    hp = trainer.default_hyperparams(learning_rate=0.5)
    state, metrics = trainer.train(jax.random.key(0), hp, data)
    size = trainer.train.compiled._cache_size()
    again, _ = trainer.train(jax.random.key(0), hp, jnp.asarray(data))
    assert trainer.train.compiled._cache_size() == size
    want, _ = jax.jit(trainer.train.uncompiled)(jax.random.key(0), hp, data)
    for a, b, c in zip(jax.tree.leaves(state), jax.tree.leaves(again), jax.tree.leaves(want)):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(a, c)
    assert metrics["wake_loss"].shape == (2,)
    with pytest.raises(ValueError, match="data must contain only 0 and 1; found non-binary"):
        trainer.train(jax.random.key(0), hp, 0.5 * data)
    with pytest.raises(ValueError, match="data has width 8 but the machine has n_visible = 16"):
        trainer.train(jax.random.key(0), hp, data[:, :8])


def test_sample_batch_takes_the_samplers_argument_order():
    data = jnp.eye(4)
    batch = wsjax.data.sample_batch(jax.random.key(0), 6, data)
    assert batch.shape == (6, 4) and batch.dtype == jnp.float32
    assert set(np.asarray(batch).sum(axis=1)) == {1.0}
    with pytest.raises(TypeError, match=r"sample_batch\(key, batch_size, data\): batch_size must"):
        wsjax.data.sample_batch(jax.random.key(0), data, 6)


def test_from_arrays_checks_the_image_shape():
    data = np.zeros((3, 16), np.float32)
    with pytest.raises(ValueError, match=r"image_shape \(5, 5\) holds 25 pixels, but the machine"):
        wsjax.tasks.from_arrays("x", data, data, (16, 4), (5, 5))


def test_a_sweep_names_a_single_key_and_hyperparameters_that_are_not_a_grid():
    trainer = _bars_trainer()
    base = trainer.default_hyperparams()
    program = wsjax.sweep(trainer)
    with pytest.raises(ValueError, match="a batch of keys .num_seeds.*got a single key"):
        program(jax.random.key(0), wsjax.grid(base, {"learning_rate": [0.1]}))
    with pytest.raises(ValueError, match="sweep takes a grid of hyperparameters"):
        program(jax.random.split(jax.random.key(0), 2), base)


def test_the_nnx_module_checks_concrete_data():
    from flax import nnx

    from wsjax.modules import HelmholtzMachine

    machine = HelmholtzMachine((6, 3), rngs=nnx.Rngs(0))
    grey = U.at[0, 0].set(0.5)
    for call in (lambda: machine.wake_sleep_loss(jax.random.key(0), grey),
                 lambda: machine.rws_loss(jax.random.key(0), grey, 2),
                 lambda: machine.recognize(jax.random.key(0), grey),
                 lambda: machine.features(grey),
                 lambda: machine.log_prob(grey),
                 lambda: machine.wake_step(jax.random.key(0), grey, 0.1)):
        with pytest.raises(ValueError, match="non-binary values 0.5"):
            call()
    with pytest.raises(ValueError, match="does not fit the machine"):
        machine.features(U[:, :4])


def test_the_building_blocks_compile_once_and_check_concrete_data():
    hs = tuple(jnp.ones((4, n)) for n in (3, 2))
    grey = U.at[0, 0].set(0.5)
    for call in (lambda u: wsjax.wake_loss(PARAMS, u, hs),
                 lambda u: wsjax.sleep_loss(PARAMS, u, hs),
                 lambda u: wsjax.log_joint(PARAMS, u[0], tuple(h[0] for h in hs)),
                 lambda u: wsjax.log_recognition(PARAMS, u[0], tuple(h[0] for h in hs)),
                 lambda u: wsjax.sample_recognition(jax.random.key(0), PARAMS, u[0])):
        call(U)
        with pytest.raises(ValueError, match="non-binary values 0.5"):
            call(grey)
    with pytest.raises(ValueError, match=r"u must be one example, a vector \[n_visible\]"):
        wsjax.log_joint(PARAMS, U, hs)
    wsjax.sample_generative(jax.random.key(0), PARAMS)
    size = wsjax.sample_generative.compiled._cache_size()
    wsjax.sample_generative(jax.random.key(1), PARAMS)
    assert wsjax.sample_generative.compiled._cache_size() == size
