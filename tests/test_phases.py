"""Wake and sleep steps against the textbook delta rules, exactly and in expectation."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import wsjax
from tests.helpers import all_configs, random_machine, sigmoid
from wsjax import phases


def _np(tree):
    return jax.tree.map(lambda a: np.asarray(a, np.float64), tree)


def _data(seed, batch, n):
    return jnp.asarray(np.random.default_rng(seed).integers(0, 2, (batch, n)), jnp.float32)


def test_matrices_round_trip_under_jit_and_vmap():
    params = random_machine(0, (5, 3))
    m = wsjax.to_matrices(params)
    assert m["G"].shape == (5, 3) and m["W"].shape == (3, 5)
    back = jax.jit(lambda m: wsjax.from_matrices(**m))(m)
    jax.tree.map(np.testing.assert_array_equal, back, params)
    stacked = jax.tree.map(lambda a: jnp.stack([a, 2 * a]), m)
    batched = jax.vmap(lambda m: wsjax.to_matrices(wsjax.from_matrices(**m)))(stacked)
    jax.tree.map(np.testing.assert_array_equal, batched, stacked)


def test_wake_step_is_the_textbook_delta_rule():
    params = random_machine(1, (6, 4))
    u = _data(0, 7, 6)
    key, lr = jax.random.key(3), 0.37
    v = np.asarray(phases.wake_samples(key, params, u)[0], np.float64)
    m = _np(wsjax.to_matrices(params))
    un = np.asarray(u, np.float64)
    pu = sigmoid(m["h"] + v @ m["G"].T)  # [batch, n_u]
    want = dict(m)
    want["g"] = m["g"] + lr * np.mean(v - sigmoid(m["g"]), axis=0)
    want["h"] = m["h"] + lr * np.mean(un - pu, axis=0)
    want["G"] = m["G"] + lr * np.einsum("bi,bj->ij", un - pu, v) / len(un)
    got = _np(wsjax.to_matrices(jax.jit(wsjax.wake_step)(key, params, u, lr)))
    for name in want:
        np.testing.assert_allclose(got[name], want[name], rtol=1e-5, atol=1e-6, err_msg=name)
    # The recognition half is returned bitwise untouched.
    np.testing.assert_array_equal(got["W"], m["W"])
    np.testing.assert_array_equal(got["w"], m["w"])


def test_sleep_step_is_the_textbook_delta_rule():
    params = random_machine(2, (6, 4))
    key, lr, batch = jax.random.key(4), 0.21, 9
    u, (v,) = phases.sleep_samples(key, params, batch)
    u, v = np.asarray(u, np.float64), np.asarray(v, np.float64)
    m = _np(wsjax.to_matrices(params))
    qv = sigmoid(m["w"] + u @ m["W"].T)
    want = dict(m)
    want["w"] = m["w"] + lr * np.mean(v - qv, axis=0)
    want["W"] = m["W"] + lr * np.einsum("bi,bj->ij", v - qv, u) / batch
    got = _np(wsjax.to_matrices(jax.jit(wsjax.sleep_step, static_argnums=3)(key, params, lr,
                                                                             batch)))
    for name in want:
        np.testing.assert_allclose(got[name], want[name], rtol=1e-5, atol=1e-6, err_msg=name)
    for name in ("G", "g", "h"):
        np.testing.assert_array_equal(got[name], m[name])


@pytest.mark.parametrize("sizes", [(5, 4, 3), (4, 3, 2, 2)])
def test_loss_gradients_are_the_delta_rule_in_every_layer(sizes):
    params = random_machine(3, sizes)
    rng = np.random.default_rng(1)
    batch = 6
    layers = [jnp.asarray(rng.integers(0, 2, (batch, n)), jnp.float32) for n in sizes]
    u, hs = layers[0], tuple(layers[1:])
    g_wake = jax.grad(wsjax.wake_loss)(params, u, hs)
    g_sleep = jax.grad(wsjax.sleep_loss)(params, u, hs)
    f = lambda a: np.asarray(a, np.float64)
    L = [f(x) for x in layers]
    top = L[-1]
    np.testing.assert_allclose(
        -f(g_wake["prior"]["b"]), np.mean(top - sigmoid(f(params["prior"]["b"])), 0), atol=1e-6)
    for l, (gen, rec) in enumerate(zip(params["generative"], params["recognition"])):
        below, above = L[l], L[l + 1]
        err = below - sigmoid(above @ f(gen["w"]).T + f(gen["b"]))
        np.testing.assert_allclose(-f(g_wake["generative"][l]["w"]), err.T @ above / batch,
                                   atol=1e-6)
        np.testing.assert_allclose(-f(g_wake["generative"][l]["b"]), err.mean(0), atol=1e-6)
        err_q = above - sigmoid(below @ f(rec["w"]).T + f(rec["b"]))
        np.testing.assert_allclose(-f(g_sleep["recognition"][l]["w"]), err_q.T @ below / batch,
                                   atol=1e-6)
        np.testing.assert_allclose(-f(g_sleep["recognition"][l]["b"]), err_q.mean(0), atol=1e-6)
        # Each loss leaves the other half alone.
        assert not np.any(f(g_wake["recognition"][l]["w"]))
        assert not np.any(f(g_sleep["generative"][l]["w"]))


def _monte_carlo_update(step, keys, params):
    deltas = jax.jit(jax.vmap(step))(keys)
    mean = jax.tree.map(lambda new, old: np.asarray(jnp.mean(new, 0) - old, np.float64), deltas,
                        params)
    sem = jax.tree.map(lambda new: np.asarray(jnp.std(new, 0), np.float64) / np.sqrt(len(keys)),
                       deltas)
    return mean, sem


def test_expected_wake_update_matches_enumeration():
    params = random_machine(5, (4, 3))
    u = _data(2, 3, 4)
    keys = jax.random.split(jax.random.key(0), 20000)
    mean, sem = _monte_carlo_update(lambda k: wsjax.wake_step(k, params, u, 1.0), keys, params)
    m = _np(wsjax.to_matrices(params))
    un = np.asarray(u, np.float64)
    vs = all_configs(3)
    q = sigmoid(un @ m["W"].T + m["w"])  # [batch, n_v]
    # Q(v | u_b) for every configuration v: [batch, 8]
    qv = np.prod(np.where(vs[None] == 1, q[:, None], 1 - q[:, None]), axis=-1)
    exp = {"g": 0.0, "h": 0.0, "G": 0.0}
    for b in range(len(un)):
        for v, w in zip(vs, qv[b]):
            err = un[b] - sigmoid(m["h"] + m["G"] @ v)
            exp["g"] = exp["g"] + w * (v - sigmoid(m["g"])) / len(un)
            exp["h"] = exp["h"] + w * err / len(un)
            exp["G"] = exp["G"] + w * np.outer(err, v) / len(un)
    got = wsjax.to_matrices(mean)
    got_sem = wsjax.to_matrices(sem)
    for name, want in exp.items():
        z = np.abs(got[name] - want) / (got_sem[name] + 1e-12)
        assert np.all(z < 5), (name, got[name], want, z.max())


def test_expected_sleep_update_matches_enumeration():
    params = random_machine(6, (4, 3))
    keys = jax.random.split(jax.random.key(1), 20000)
    mean, sem = _monte_carlo_update(lambda k: wsjax.sleep_step(k, params, 1.0, 4), keys, params)
    m = _np(wsjax.to_matrices(params))
    exp_w, exp_W = 0.0, 0.0
    for v in all_configs(3):
        pv = np.prod(np.where(v == 1, sigmoid(m["g"]), 1 - sigmoid(m["g"])))
        pu_given_v = sigmoid(m["h"] + m["G"] @ v)
        for u in all_configs(4):
            p = pv * np.prod(np.where(u == 1, pu_given_v, 1 - pu_given_v))
            err = v - sigmoid(m["w"] + m["W"] @ u)
            exp_w = exp_w + p * err
            exp_W = exp_W + p * np.outer(err, u)
    got, got_sem = wsjax.to_matrices(mean), wsjax.to_matrices(sem)
    for name, want in (("w", exp_w), ("W", exp_W)):
        z = np.abs(got[name] - want) / (got_sem[name] + 1e-12)
        assert np.all(z < 5), (name, z.max())


def test_same_key_same_params_and_keys_matter():
    params = random_machine(7, (6, 4, 2))
    u = _data(3, 5, 6)
    step = jax.jit(lambda k: wsjax.sleep_step(k, wsjax.wake_step(k, params, u, 0.1), 0.1, 5))
    a, b = step(jax.random.key(0)), step(jax.random.key(0))
    jax.tree.map(np.testing.assert_array_equal, a, b)
    c = step(jax.random.key(1))
    assert any(not np.array_equal(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(c)))


def test_steps_vmap_over_keys_and_rates_equals_loop():
    params = random_machine(8, (6, 3))
    u = _data(4, 5, 6)
    keys = jax.random.split(jax.random.key(2), 3)
    rates = jnp.array([0.01, 0.1, 1.0])
    step = lambda k, lr: wsjax.sleep_step(k, wsjax.wake_step(k, params, u, lr), lr, 5)
    batched = jax.jit(jax.vmap(jax.vmap(step, (0, None)), (None, 0)))(keys, rates)
    one = jax.jit(step)
    for i, lr in enumerate(rates):
        for j, k in enumerate(keys):
            loop = one(k, lr)
            jax.tree.map(lambda x, y, i=i, j=j: np.testing.assert_allclose(x[i, j], y, rtol=1e-6,
                                                                           atol=1e-7),
                         batched, loop)


def test_shape_mismatch_names_both_shapes():
    params = wsjax.init(jax.random.key(0), (16, 8, 1))
    with pytest.raises(ValueError, match=r"\(10, 15\).*n_visible = 16"):
        jax.jit(wsjax.wake_step).trace(jax.random.key(0), params, jnp.zeros((10, 15)), 0.1)
    with pytest.raises(ValueError, match="shape"):
        wsjax.exact_log_prob(params, jnp.zeros((15,)))
    with pytest.raises(ValueError, match=r"W has shape \(3, 4\) but G has shape \(5, 3\)"):
        wsjax.from_matrices(G=jnp.zeros((5, 3)), g=jnp.zeros(3), h=jnp.zeros(5),
                            W=jnp.zeros((3, 4)), w=jnp.zeros(3))
    bad = dict(params, recognition=(params["recognition"][0],
                                    {"w": jnp.zeros((2, 8)), "b": jnp.zeros(2)}))
    with pytest.raises(ValueError, match="recognition conditional 1 maps width 8 to 2"):
        wsjax.exact_log_prob(bad, jnp.zeros((1, 16)))


@pytest.mark.parametrize("sizes", [(16,), (16, 0), (16, -2), (16, 2.5), ()])
def test_bad_layer_sizes(sizes):
    with pytest.raises(ValueError, match="layer_sizes"):
        wsjax.init(jax.random.key(0), sizes)


@pytest.mark.parametrize("num_samples", [None, 3])
def test_activity_grads_move_only_the_units_outside_the_band(num_samples):
    params = random_machine(4, (5, 4, 3))
    u = _data(2, 6, 5)
    hs = wsjax.model.sample_up(jax.random.key(5), params, u, num_samples=num_samples)
    f = lambda a: np.asarray(a, np.float64)
    inputs = [f(u), *(f(h).reshape(-1, h.shape[-1]) for h in hs[:-1])]
    q_means = [sigmoid(x @ f(rec["w"]).T + f(rec["b"])).mean(0)
               for x, rec in zip(inputs, params["recognition"])]
    floor, ceiling = np.quantile(np.concatenate(q_means), [0.3, 0.7])  # units on each side
    floors = [floor, floor / 2]  # one per layer
    got = phases.activity_grads(params, u, hs, jnp.asarray(floors), ceiling)
    for l, (x, q_mean, floor) in enumerate(zip(inputs, q_means, floors)):
        # Hinton (2010), section 11: q - p at the input of each unit outside the band.
        c = np.where(q_mean < floor, q_mean - floor,
                     np.where(q_mean > ceiling, q_mean - ceiling, 0.0))
        np.testing.assert_allclose(f(got["recognition"][l]["b"]), c, atol=1e-6)
        np.testing.assert_allclose(f(got["recognition"][l]["w"]), np.outer(c, x.mean(0)), atol=1e-6)
    q = np.concatenate(q_means)
    assert (q < floors[0]).any() and (q > ceiling).any()
    assert ((q >= floors[0]) & (q <= ceiling)).any()
    assert set(got) == {"recognition"}
    with pytest.raises(ValueError, match="hs must be one sample per hidden layer"):
        phases.activity_grads(params, u, hs[:1], floor, ceiling)
