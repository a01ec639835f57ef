"""Importance-sampled log p(u) and the free energy against exact enumeration."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import wsjax
from tests.helpers import random_machine
from wsjax import objectives


def _setup(seed=0, sizes=(6, 3, 2), scale=1.0):
    params = random_machine(seed, sizes, scale=scale)
    u = jnp.asarray(np.random.default_rng(seed).integers(0, 2, (4, sizes[0])), jnp.float32)
    return params, u, wsjax.exact_log_prob(params, u)


def test_estimate_is_a_lower_bound_on_average_that_tightens_with_k():
    params, u, exact = _setup()
    keys = jax.random.split(jax.random.key(0), 400)
    means = []
    for k in (1, 10, 100):
        est = jax.jit(jax.vmap(lambda key, k=k: wsjax.estimate_log_prob(key, params, u, k)))(keys)
        mean, sem = np.mean(est, 0), np.std(est, 0) / np.sqrt(len(keys))
        assert np.all(mean <= exact + 3 * sem + 1e-5), (k, mean, exact)
        means.append(mean)
    gaps = [np.asarray(exact - m) for m in means]
    assert np.all(gaps[0] > gaps[1]) and np.all(gaps[1] > gaps[2] - 1e-3)
    assert np.all(gaps[0] > 0.05)  # K=1 is a visibly loose bound with these params


def _relative_weight_variance(params, u, sizes):
    """Var_q[w] / p(u)^2 by enumeration: the delta-method variance of the log estimate is this /
    K."""
    configs = wsjax.exact.all_binary_configs(sum(sizes[1:]))
    splits = np.cumsum(sizes[1:-1])
    hs = tuple(jnp.split(configs, splits, axis=1))
    log_q = jax.vmap(lambda x: jax.vmap(lambda *h: wsjax.log_recognition(params, x, h))(*hs))(u)
    log_p_uh = wsjax.exact.exact_log_joint_table(params, u)
    log_p = jax.scipy.special.logsumexp(log_p_uh, axis=1)
    second = jax.scipy.special.logsumexp(2 * log_p_uh - log_q, axis=1)
    return np.asarray(jnp.exp(second - 2 * log_p) - 1.0)


def test_estimate_converges_to_exact_and_large_k_streams():
    sizes = (6, 3, 2)
    params, u, exact = _setup(1, sizes=sizes, scale=0.5)
    rel_var = _relative_weight_variance(params, u, sizes)
    errors = []
    for k in (100, 100_000):
        est = jax.jit(wsjax.estimate_log_prob, static_argnums=3)(jax.random.key(1), params, u, k)
        tol = 5 * np.sqrt(rel_var / k)
        assert np.all(np.abs(np.asarray(est) - exact) < tol), (k, est, exact, tol)
        errors.append(np.abs(np.asarray(est) - exact).mean())
    assert errors[1] < errors[0] / 5
    # A chunk size that does not divide K streams the same way (the tail chunk is masked).
    est = wsjax.estimate_log_prob(jax.random.key(2), params, u, 20_001, chunk_size=4096)
    assert np.all(np.abs(np.asarray(est) - exact) < 5 * np.sqrt(rel_var / 20_001))


def test_exact_posterior_as_proposal_makes_every_weight_exact():
    # With Q equal to the true posterior, log w = log p(u) for every sample, so K=1 is exact.
    # A machine with no recognition weights and a generative model whose visible units do not
    # depend on v has posterior = prior: set W = 0, w = g, G = 0.
    params = random_machine(2, (5, 3))
    m = wsjax.to_matrices(params)
    params = wsjax.from_matrices(G=jnp.zeros_like(m["G"]), g=m["g"], h=m["h"],
                                 W=jnp.zeros_like(m["W"]), w=m["g"])
    u = jnp.asarray(np.random.default_rng(0).integers(0, 2, (6, 5)), jnp.float32)
    exact = wsjax.exact_log_prob(params, u)
    lw, _ = objectives.log_weights(jax.random.key(0), params, u, 7)
    np.testing.assert_allclose(lw, jnp.broadcast_to(exact[:, None], lw.shape), atol=1e-5)


def test_elbo_equals_log_p_minus_kl_by_enumeration():
    params, u, exact = _setup(3, sizes=(5, 3))
    m = {k: np.asarray(v, np.float64) for k, v in wsjax.to_matrices(params).items()}
    table = np.asarray(wsjax.exact.exact_log_joint_table(params, u), np.float64)  # [batch, 8]
    vs = np.asarray(wsjax.exact.all_binary_configs(3), np.float64)
    q = 1 / (1 + np.exp(-(np.asarray(u) @ m["W"].T + m["w"])))
    log_q = np.log(np.where(vs[None] == 1, q[:, None], 1 - q[:, None])).sum(-1)
    elbo = np.sum(np.exp(log_q) * (table - log_q), axis=1)
    assert np.all(elbo <= np.asarray(exact) + 1e-5)
    fe = wsjax.elbo(jax.random.key(0), params, u, 200_000)
    np.testing.assert_allclose(fe, elbo, atol=0.02)


def test_wrong_width_and_bad_k():
    params, u, _ = _setup()
    with pytest.raises(ValueError, match="n_visible = 6"):
        wsjax.estimate_log_prob(jax.random.key(0), params, u[:, :5], 10)
    with pytest.raises(ValueError, match="num_samples"):
        wsjax.estimate_log_prob(jax.random.key(0), params, u, 0)


def test_batched_particles_are_the_one_example_functions_and_q_distributed():
    # log_weights draws a [batch, K] block at once (one key per layer, the first recognition
    # conditional evaluated once per example): every log-weight must equal log P - log Q of
    # the one-example functions at its own sample, and the samples must follow Q.
    params = random_machine(4, (6, 4, 3, 2))
    u = jnp.asarray(np.random.default_rng(4).integers(0, 2, (3, 6)), jnp.float32)
    K = 20_000
    lw, hs = jax.jit(objectives.log_weights, static_argnums=3)(jax.random.key(5), params, u, K)
    assert lw.shape == (3, K) and [h.shape for h in hs] == [(3, K, 4), (3, K, 3), (3, K, 2)]
    picks = [(0, 0), (1, 7), (2, K - 1)]
    for b, k in picks:
        h = tuple(layer[b, k] for layer in hs)
        want = wsjax.model.log_joint(params, u[b], h) - wsjax.model.log_recognition(params, u[b], h)
        np.testing.assert_allclose(lw[b, k], want, rtol=1e-5, atol=1e-5)
    # Layer 1 given u, and layer 2 given layer 1, at the frequencies Q says (binomial error).
    rec = params["recognition"]
    for b in range(3):
        q1 = jax.nn.sigmoid(rec[0]["w"] @ u[b] + rec[0]["b"])
        np.testing.assert_allclose(hs[0][b].mean(0), q1, atol=4 * 0.5 / np.sqrt(K))
        q2 = jax.nn.sigmoid(hs[0][b] @ rec[1]["w"].T + rec[1]["b"]).mean(0)
        np.testing.assert_allclose(hs[1][b].mean(0), q2, atol=4 * 0.5 / np.sqrt(K))
        # The K samples of one example are independent draws: neighbours co-occur at q^2.
        both = (hs[0][b, :-1] * hs[0][b, 1:]).mean(0)
        np.testing.assert_allclose(both, q1**2, atol=4 * 0.5 / np.sqrt(K))


def test_one_example_samplers_are_the_first_row_of_the_batched_ones():
    params = random_machine(6, (6, 4, 3))
    u = jnp.asarray(np.random.default_rng(6).integers(0, 2, (5, 6)), jnp.float32)
    key = jax.random.key(7)
    batch = wsjax.model.sample_up(key, params, u)
    one = wsjax.sample_recognition(key, params, u[0])
    for b, o in zip(batch, one):
        np.testing.assert_array_equal(b[0], o)
    dreams_u, dreams_h = wsjax.model.sample_down(key, params, 5)
    one_u, one_h = wsjax.sample_generative(key, params)
    np.testing.assert_array_equal(dreams_u[0], one_u)
    for b, o in zip(dreams_h, one_h):
        np.testing.assert_array_equal(b[0], o)
    # The flat draw of bernoulli_sample is the shaped draw (threefry counts row-major).
    logits = jnp.zeros((4, 3, 5))
    shaped = (jax.random.uniform(key, logits.shape) < 0.5).astype(jnp.float32)
    np.testing.assert_array_equal(wsjax.layers.bernoulli_sample(key, logits), shaped)
