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
    ({**PARAMS, "prior": {"b": jnp.zeros(2, jnp.int32)}}, r"params\['prior'\]\['b'\] has dtype int32"),
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
