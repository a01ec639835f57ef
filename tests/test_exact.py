"""Exact enumeration against a naive float64 loop, and normalisation over all u."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import wsjax
from tests.helpers import all_configs, naive_log_prob, random_machine
from wsjax import exact


@pytest.fixture(autouse=True, scope="module")
def x64():
    jax.config.update("jax_enable_x64", True)
    yield
    jax.config.update("jax_enable_x64", False)


def _to64(params):
    return jax.tree.map(lambda a: jnp.asarray(a, jnp.float64), params)


@pytest.mark.parametrize("sizes", [(4, 3), (5, 2, 2), (3, 2, 2, 1)])
def test_exact_matches_naive_loop(sizes):
    params = _to64(random_machine(0, sizes, scale=1.5))
    u = all_configs(sizes[0])[::3]
    got = np.asarray(wsjax.exact_log_prob(params, jnp.asarray(u)))
    want = np.array([naive_log_prob(params, x) for x in u])
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-10)


@pytest.mark.parametrize("sizes", [(5, 3), (4, 2, 3), (6, 4, 2, 1)])
def test_probabilities_sum_to_one_over_all_u(sizes):
    params = _to64(random_machine(1, sizes, scale=2.0))
    u = jnp.asarray(all_configs(sizes[0]))
    total = jnp.exp(jax.scipy.special.logsumexp(wsjax.exact_log_prob(params, u)))
    np.testing.assert_allclose(float(total), 1.0, atol=1e-12)


def test_chunked_enumeration_matches_table():
    # 16 hidden units need several chunks at this batch size; the unchunked table is the reference.
    params = _to64(random_machine(2, (20, 10, 6), scale=0.5))
    u = jnp.asarray(np.random.default_rng(0).integers(0, 2, (64, 20)), jnp.float64)
    table = exact.exact_log_joint_table(params, u)
    want = jax.scipy.special.logsumexp(table, axis=1)
    np.testing.assert_allclose(wsjax.exact_log_prob(params, u), want, atol=1e-9)


def test_large_logits_stay_finite():
    params = _to64(random_machine(3, (4, 3), scale=60.0))
    u = jnp.asarray(all_configs(4))
    lp = wsjax.exact_log_prob(params, u)
    assert np.all(np.isfinite(lp))
    np.testing.assert_allclose(float(jax.scipy.special.logsumexp(lp)), 0.0, atol=1e-9)


def test_too_many_hidden_units_is_a_trace_time_error():
    params = wsjax.init(jax.random.key(0), (3, exact.MAX_EXACT_HIDDEN + 1))
    with pytest.raises(ValueError, match="limit is 24 hidden units"):
        jax.jit(wsjax.exact_log_prob).trace(params, jnp.zeros((1, 3)))
