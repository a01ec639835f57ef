"""Tests of reweighted wake-sleep (wsjax.rws), against classic wake-sleep and exact oracles."""

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from wsjax.exact import all_binary_configs, exact_log_joint_table, exact_log_prob
from wsjax.model import generative_params, init, log_recognition, recognition_params
from wsjax.objectives import log_weights
from wsjax.phases import sleep_step, wake_samples, wake_step
from wsjax.reweighted import normalized_weights, rws_grads, rws_losses, rws_step

# Compiled once per shape: eager dispatch of these small vmapped programs is slow.
_RWS_STATIC = ("num_samples", "sleep_batch_size", "conditionals")
rws_step_jit = jax.jit(rws_step, static_argnames=_RWS_STATIC)
rws_grads_jit = jax.jit(rws_grads, static_argnames=_RWS_STATIC)
wake_step_jit = jax.jit(wake_step, static_argnames=("conditionals",))
sleep_step_jit = jax.jit(sleep_step, static_argnames=("batch_size", "conditionals"))
log_weights_jit = jax.jit(log_weights, static_argnames=("num_samples", "conditionals"))


def random_machine(seed, sizes, batch):
    """A machine with random weights and biases, and a random 0/1 batch for it."""
    k_init, k_noise, k_data = jax.random.split(jax.random.PRNGKey(seed), 3)
    params = init(k_init, sizes, init_scale=1.0)
    leaves, tree = jax.tree.flatten(params)
    keys = jax.random.split(k_noise, len(leaves))
    leaves = [x + 0.5 * jax.random.normal(k, x.shape) for x, k in zip(leaves, keys)]
    u = (jax.random.uniform(k_data, (batch, sizes[0])) < 0.5).astype(jnp.float32)
    return jax.tree.unflatten(tree, leaves), u


def assert_trees_equal(a, b):
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def max_abs_diff(a, b):
    assert jax.tree.structure(a) == jax.tree.structure(b)
    return max(float(jnp.max(jnp.abs(x - y)))
               for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


# 1. K = 1 is the classic wake phase.


def test_one_sample_is_the_wake_sample():
    params, u = random_machine(0, (6, 4, 3), batch=5)
    key = jax.random.PRNGKey(7)
    _, hs = log_weights_jit(key, params, u, 1)
    for h_rws, h_wake in zip(hs, jax.jit(wake_samples)(key, params, u)):
        np.testing.assert_array_equal(np.asarray(h_rws[:, 0]), np.asarray(h_wake))


def test_one_sample_generative_step_is_the_wake_step():
    params, u = random_machine(1, (6, 4, 3), batch=5)
    key, lr = jax.random.PRNGKey(11), 0.3
    wake_key, _ = jax.random.split(key)
    new = rws_step_jit(key, params, u, lr, 1)
    classic = wake_step_jit(wake_key, params, u, lr)
    # With K = 1 the normalised weight is exactly 1 and the samples are the
    # wake samples, so the two steps are the same arithmetic: bitwise equal when
    # run eagerly. Compiled separately, XLA may fuse the two programs
    # differently, so allow float32 rounding.
    for x, y in zip(jax.tree.leaves(generative_params(new)),
                    jax.tree.leaves(generative_params(classic))):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=1e-6, atol=1e-7)
    # Not vacuous: the step moved the generative half.
    assert max_abs_diff(generative_params(new), generative_params(params)) > 1e-3


# 2. insomnia = 0 is the classic sleep phase.


def test_no_insomnia_recognition_step_is_the_sleep_step():
    params, u = random_machine(2, (6, 4, 3), batch=5)
    key, lr = jax.random.PRNGKey(12), 0.3
    _, sleep_key = jax.random.split(key)
    new = rws_step_jit(key, params, u, lr, 3, insomnia=0.0, sleep_batch_size=7)
    classic = sleep_step_jit(sleep_key, params, lr, 7)
    assert_trees_equal(recognition_params(new), recognition_params(classic))
    assert max_abs_diff(recognition_params(new), recognition_params(params)) > 1e-3
    # insomnia touches only the recognition half.
    awake = rws_step_jit(key, params, u, lr, 3, insomnia=1.0, sleep_batch_size=7)
    assert_trees_equal(generative_params(new), generative_params(awake))
    assert max_abs_diff(recognition_params(new), recognition_params(awake)) > 1e-3


def test_insomnia_mixes_wake_and_sleep_linearly_and_may_be_traced():
    params, u = random_machine(3, (6, 4, 3), batch=5)
    key = jax.random.PRNGKey(13)
    grads = lambda i: rws_grads_jit(key, params, u, 3, i, 7)[0]  # insomnia traced
    g0, g1, g_half = grads(0.0), grads(1.0), grads(0.25)
    mixed = jax.tree.map(lambda a, b: 0.25 * a + 0.75 * b, g1["recognition"], g0["recognition"])
    assert max_abs_diff(g_half["recognition"], mixed) < 1e-6
    assert_trees_equal(generative_params(g_half), generative_params(g0))
    # A traced insomnia gives the grads of the concrete one.
    concrete = jax.jit(lambda k: rws_grads(k, params, u, 3, 0.25, 7)[0])(key)
    assert max_abs_diff(concrete, g_half) < 1e-6


# 3. The gradient of the losses is the weighted delta rule.


def test_loss_gradients_are_the_weighted_delta_rule():
    batch, K, n_u, n_v = 3, 4, 5, 3
    params, u = random_machine(4, (n_u, n_v), batch)
    k_h, k_w = jax.random.split(jax.random.PRNGKey(14))
    v = (jax.random.uniform(k_h, (batch, K, n_v)) < 0.5).astype(jnp.float32)
    # Arbitrary log-weights, unrelated to the params: they are inputs, held fixed.
    log_w = 3.0 * jax.random.normal(k_w, (batch, K))

    loss_p, loss_q = jax.jit(rws_losses)(params, u, (v,), log_w)
    grads = jax.jit(jax.grad(lambda p: sum(rws_losses(p, u, (v,), log_w))))(params)

    f = lambda x: 1.0 / (1.0 + np.exp(-x))
    P = jax.tree.map(lambda x: np.asarray(x, np.float64), params)
    U, V = np.asarray(u, np.float64), np.asarray(v, np.float64)
    lw = np.asarray(log_w, np.float64)
    wt = np.exp(lw - lw.max(1, keepdims=True))
    wt /= wt.sum(1, keepdims=True)  # [B, K]
    G, h = P["generative"][0]["w"], P["generative"][0]["b"]
    W, w = P["recognition"][0]["w"], P["recognition"][0]["b"]
    g = P["prior"]["b"]
    err_prior = V - f(g)  # [B, K, n_v]
    err_u = U[:, None, :] - f(V @ G.T + h)  # [B, K, n_u]
    err_v = V - f(U @ W.T + w)[:, None, :]  # [B, K, n_v]
    delta = {
        "prior": {"b": np.einsum("bk,bki->i", wt, err_prior) / batch},
        "generative": ({
            "w": np.einsum("bk,bki,bkj->ij", wt, err_u, V) / batch,
            "b": np.einsum("bk,bki->i", wt, err_u) / batch,
        },),
        "recognition": ({
            "w": np.einsum("bk,bki,bj->ij", wt, err_v, U) / batch,
            "b": np.einsum("bk,bki->i", wt, err_v) / batch,
        },),
    }
    # grads of the losses are minus the delta rule.
    for got, want in zip(jax.tree.leaves(grads), jax.tree.leaves(delta)):
        np.testing.assert_allclose(np.asarray(got), -want, rtol=1e-5, atol=1e-6)

    def bern(logits, x):
        return np.sum(x * logits - np.logaddexp(0.0, logits), axis=-1)

    log_p = bern(g, V) + bern(V @ G.T + h, U[:, None, :])
    log_q = bern(np.broadcast_to((U @ W.T + w)[:, None, :], V.shape), V)
    np.testing.assert_allclose(float(loss_p), -np.mean(np.sum(wt * log_p, 1)), rtol=1e-5)
    np.testing.assert_allclose(float(loss_q), -np.mean(np.sum(wt * log_q, 1)), rtol=1e-5)

    # The weights are held fixed, and only their per-example ratios matter.
    d_log_w = jax.jit(jax.grad(lambda lw: sum(rws_losses(params, u, (v,), lw))))(log_w)
    assert float(jnp.max(jnp.abs(d_log_w))) == 0.0
    shifted = jax.jit(rws_losses)(params, u, (v,), log_w + jnp.array([[5.0], [-40.0], [100.0]]))
    np.testing.assert_allclose(np.asarray(shifted), np.asarray((loss_p, loss_q)), rtol=1e-5)


# 4. With many samples the RWS gradients approach the exact ones.


def exact_gradients(params, u, sizes):
    """(grad of -mean log p(u), -mean_b E_posterior[grad log Q(h | u_b)]), by enumeration."""
    gen = jax.grad(lambda g: -jnp.mean(exact_log_prob({**params, **g}, u)))(
        generative_params(params))
    configs = all_binary_configs(sum(sizes[1:]))
    hs, start = [], 0
    for n in sizes[1:]:
        hs.append(configs[:, start:start + n])
        start += n
    posterior = jax.nn.softmax(exact_log_joint_table(params, u), axis=1)  # [B, 2**H]

    def expected_neg_log_q(rec):
        p = {**params, **rec}
        lq = jax.vmap(lambda x: jax.vmap(lambda *h: log_recognition(p, x, h))(*hs))(u)
        return -jnp.mean(jnp.sum(posterior * lq, axis=1))

    rec = jax.grad(expected_neg_log_q)(recognition_params(params))
    return {**gen, **rec}


@pytest.mark.parametrize("sizes", [(5, 3), (4, 2, 2)])
def test_many_samples_approach_the_exact_gradients(sizes):
    K = 20_000
    # Observed Monte Carlo error (max over all entries) is about 0.005-0.009 at
    # K = 20000 on these machines; the gradients themselves reach 0.25-0.6.
    tol = 0.03
    params, u = random_machine(0, sizes, batch=3)
    exact = jax.jit(partial(exact_gradients, sizes=sizes))(params, u)
    key = jax.random.PRNGKey(21)

    @jax.jit
    def estimates(key):
        grads, info = rws_grads(key, params, u, K)
        # Uniform weights at the very same samples (those of the wake key).
        log_w, hs = log_weights(jax.random.split(key)[0], params, u, K)
        uniform = jax.grad(lambda p: sum(rws_losses(p, u, hs, jnp.zeros_like(log_w))))(params)
        return grads, info, uniform, log_w

    grads, info, unweighted, log_w = estimates(key)
    assert max_abs_diff(grads, exact) < tol

    # The check can fail: a sign error would be far off in both halves ...
    assert max(float(jnp.max(jnp.abs(x)))
               for x in jax.tree.leaves(generative_params(exact))) > 6 * tol
    assert max(float(jnp.max(jnp.abs(x)))
               for x in jax.tree.leaves(recognition_params(exact))) > 6 * tol
    # ... and so would uniform (unweighted) or unnormalised weights at the same samples.
    assert max_abs_diff(unweighted, exact) > 3 * tol
    raw_w = jnp.exp(log_w) / normalized_weights(log_w)  # the factor unnormalised weights would add
    assert float(jnp.min(raw_w)) > 100.0

    exact_lp = float(jnp.mean(exact_log_prob(params, u)))
    assert abs(float(info.iw_bound) - exact_lp) < 0.05
    assert 1.0 <= float(info.ess) <= K


# 5. Purity: vmap equals a loop, same key gives the same params.


def test_vmap_over_keys_and_rates_equals_a_loop():
    params, u = random_machine(5, (6, 4, 3), batch=5)
    keys = jax.random.split(jax.random.PRNGKey(31), 3)
    rates = [0.05, 0.2, 1.0]
    step = lambda k, lr: rws_step(k, params, u, lr, 3, insomnia=0.5, sleep_batch_size=7)
    batched = jax.jit(jax.vmap(step))(keys, jnp.array(rates))
    for i in range(3):
        one = rws_step_jit(keys[i], params, u, rates[i], 3, insomnia=0.5, sleep_batch_size=7)
        assert max_abs_diff(jax.tree.map(lambda x, i=i: x[i], batched), one) < 1e-5
    # Different keys and rates give different params.
    assert max_abs_diff(jax.tree.map(lambda x: x[0], batched),
                        jax.tree.map(lambda x: x[1], batched)) > 1e-3


def test_same_key_gives_bitwise_the_same_params():
    params, u = random_machine(6, (6, 4, 3), batch=5)
    key = jax.random.PRNGKey(41)
    step = lambda k: rws_step_jit(k, params, u, 0.1, 3, insomnia=0.5, sleep_batch_size=7)
    a = step(key)
    b = step(key)
    assert_trees_equal(a, b)
    c = step(jax.random.PRNGKey(42))
    assert max_abs_diff(a, c) > 1e-4


def test_bad_arguments_are_refused():
    params, u = random_machine(7, (6, 3), batch=2)
    key = jax.random.PRNGKey(0)
    with pytest.raises(ValueError, match="insomnia"):
        rws_grads(key, params, u, 2, insomnia=1.5)
    with pytest.raises(ValueError, match="num_samples"):
        rws_grads(key, params, u, 0)
    with pytest.raises(ValueError, match="n_visible"):
        rws_grads(key, params, u[:, :5], 2)
    log_w, hs = jnp.zeros((2, 3)), (jnp.zeros((2, 3, 3)),)
    with pytest.raises(ValueError, match="hs\\[0\\]"):
        rws_losses(params, u, (hs[0][:, :2],), log_w)
    with pytest.raises(ValueError, match="log_w"):
        rws_losses(params, u, hs, log_w[:1])


# 6. Defensive importance sampling: particles from (1 - d) Q + d Uniform, weights against it.


def _layer_configs(sizes):
    """Every hidden configuration of a (4, 2, 2)-like machine as (h_1 [C, n_1], h_2 [C, n_2])."""
    configs = all_binary_configs(sum(sizes[1:]))
    out, start = [], 0
    for n in sizes[1:]:
        out.append(configs[:, start:start + n])
        start += n
    return out


def test_the_defensive_proposal_is_the_mixture_it_samples_from():
    from wsjax.model import log_defensive, sample_up

    sizes, d, K = (4, 2, 2), 0.4, 40_000
    params, u = random_machine(7, sizes, batch=1)
    h1, h2 = _layer_configs(sizes)
    hs = (h1[None], h2[None])  # [1, C, n_l]: every configuration as a "sample"
    log_mix = log_defensive(params, u, hs, d)[0]
    # A density: it sums to 1 over every configuration, and at d = 0 it is Q itself.
    assert abs(float(jnp.sum(jnp.exp(log_mix))) - 1.0) < 1e-5
    log_q = jax.vmap(lambda a, b: log_recognition(params, u[0], (a, b)))(h1, h2)
    np.testing.assert_allclose(log_defensive(params, u, hs, 0.0)[0], log_q, rtol=1e-5)
    # ... by hand: each layer (1 - d) Q(h_l | h_{l-1}) + d / 2^n_l.
    q1 = jax.vmap(lambda a: log_recognition(
        {**params, "recognition": params["recognition"][:1]}, u[0], (a,)))(h1)
    by_hand = jnp.log((1 - d) * jnp.exp(q1) + d / 4) + jnp.log(
        (1 - d) * jnp.exp(log_q - q1) + d / 4)
    np.testing.assert_allclose(log_mix, by_hand, rtol=1e-5)
    # The sampler draws from that density: frequencies within 4.5 standard errors.
    s1, s2 = jax.jit(lambda k: sample_up(k, params, u, num_samples=K, defensive=d))(
        jax.random.key(3))
    index = lambda a, b: (jnp.sum(a * 2 ** jnp.arange(2), -1) + 4 * jnp.sum(
        b * 2 ** jnp.arange(2), -1)).astype(jnp.int32)
    freq = np.bincount(np.asarray(index(s1[0], s2[0])), minlength=16) / K
    want = np.asarray(jnp.exp(log_mix))[np.argsort(np.asarray(index(h1, h2)))]
    assert np.all(np.abs(freq - want) < 4.5 * np.sqrt(want * (1 - want) / K) + 1e-4)
    # ... and it is not Q's: the uniform part puts mass where Q puts little.
    assert np.max(np.abs(want - np.exp(np.asarray(log_q))[np.argsort(
        np.asarray(index(h1, h2)))])) > 0.02


def test_defensive_zero_draws_plain_rws_samples_bitwise():
    from wsjax.model import sample_up

    params, u = random_machine(8, (6, 4, 3), batch=5)
    key = jax.random.key(4)
    plain = jax.jit(lambda: rws_grads(key, params, u, 7, 0.5))()  # no defensive code at all
    traced = jax.jit(lambda d: rws_grads(key, params, u, 7, 0.5, defensive=d))(0.0)
    for a, b in zip(jax.tree.leaves(plain), jax.tree.leaves(traced)):
        np.testing.assert_array_equal(a, b)
    mixed = sample_up(key, params, u, num_samples=7, defensive=0.5)
    assert any(not np.array_equal(a, b) for a, b in
               zip(mixed, sample_up(key, params, u, num_samples=7)))
    with pytest.raises(ValueError, match=r"defensive must lie in \[0, 1\), got 1.0"):
        rws_grads(key, params, u, 7, defensive=1.0)


@pytest.mark.parametrize("sizes", [(5, 3), (4, 2, 2)])
def test_defensive_rws_approaches_the_exact_gradients_with_many_samples(sizes):
    # As K grows, the defensive estimates reach the same targets as plain RWS: the gradient
    # of log p(u) in the generative half and of -KL(P(h|u) || Q) in the recognition half.
    K, tol = 20_000, 0.03
    params, u = random_machine(0, sizes, batch=3)
    exact = jax.jit(partial(exact_gradients, sizes=sizes))(params, u)
    from wsjax.model import particle_log_probs

    @jax.jit
    def estimates(key):
        grads, info, hs = rws_grads(key, params, u, K, 1.0, defensive=0.6, return_samples=True)
        # The same samples weighted by P / Q, as if they came from Q: the wrong weights.
        log_p, log_q = particle_log_probs(params, u, hs)
        wrong = jax.grad(lambda p: sum(rws_losses(p, u, hs, log_p - log_q)))(params)
        return grads, info, wrong

    grads, info, wrong = estimates(jax.random.PRNGKey(22))
    assert max_abs_diff(grads, exact) < tol
    exact_lp = float(jnp.mean(exact_log_prob(params, u)))
    assert abs(float(info.iw_bound) - exact_lp) < 0.05
    # The check can fail: weights against Q instead of the mixture are far off.
    assert max_abs_diff(wrong, exact) > 1.5 * tol  # beyond tol by more than the MC error
