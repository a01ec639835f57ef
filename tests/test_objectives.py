"""Importance-sampled log p(u) and the free energy against exact enumeration."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import wsjax
from wsjax import objectives
from tests.helpers import random_machine


def _setup(seed=0, sizes=(6, 3, 2), scale=1.0):
    params = random_machine(seed, sizes, scale=scale)
    u = jnp.asarray(np.random.default_rng(seed).integers(0, 2, (4, sizes[0])), jnp.float32)
    return params, u, wsjax.exact_log_prob(params, u)


def test_estimate_is_a_lower_bound_on_average_that_tightens_with_k():
    params, u, exact = _setup()
    keys = jax.random.split(jax.random.key(0), 400)
    means = []
    for k in (1, 10, 100):
        est = jax.jit(jax.vmap(lambda key: wsjax.estimate_log_prob(key, params, u, k)))(keys)
        mean, sem = np.mean(est, 0), np.std(est, 0) / np.sqrt(len(keys))
        assert np.all(mean <= exact + 3 * sem + 1e-5), (k, mean, exact)
        means.append(mean)
    gaps = [np.asarray(exact - m) for m in means]
    assert np.all(gaps[0] > gaps[1]) and np.all(gaps[1] > gaps[2] - 1e-3)
    assert np.all(gaps[0] > 0.05)  # K=1 is a visibly loose bound with these params


def _relative_weight_variance(params, u, sizes):
    """Var_q[w] / p(u)^2 by enumeration: the delta-method variance of the log estimate is this / K."""
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
