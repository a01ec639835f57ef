"""The kinds of layer (SBN, DARN, NADE) against exact enumeration, alone and in a machine."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

import wsjax
from wsjax import evaluation, exact, model, phases, reweighted
from wsjax.layers import DARN, NADE, SBN, Conditionals, conditional, row_floats
from wsjax.modules import HelmholtzMachine, Layer

KINDS = {"sbn": SBN(), "darn": DARN(), "nade": NADE(3)}
N_OUT = 4
YS = exact.all_binary_configs(N_OUT)  # [16, 4]
MIXED = Conditionals(generative=(DARN(), NADE(4)), recognition=(NADE(3), DARN()),
                     prior=NADE(2))
SIZES = (4, 3, 2)


def _layer(kind, n_in, seed=0, spread=0.5):
    """Params of one conditional with weights large enough to matter."""
    layer = kind.init(jax.random.key(seed), n_in, N_OUT, 1.0)
    return jax.tree.map(
        lambda x: x + spread * jax.random.normal(jax.random.key(seed + 7), x.shape), layer)


@pytest.fixture(scope="module")
def mixed():
    """A 4-3-2 machine mixing the kinds on every side, perturbed away from its init."""
    params = wsjax.init(jax.random.key(0), SIZES, conditionals=MIXED, init_scale=1.0)
    leaves, tree = jax.tree.flatten(params)
    keys = jax.random.split(jax.random.key(1), len(leaves))
    leaves = [x + 0.5 * jax.random.normal(k, x.shape) for x, k in zip(leaves, keys)]
    return jax.tree.unflatten(tree, leaves)


@pytest.mark.parametrize("n_in", [0, 3], ids=["prior", "conditional"])
@pytest.mark.parametrize("name", KINDS)
def test_each_kind_sums_to_one_and_samples_its_probabilities(name, n_in):
    kind = KINDS[name]
    layer = _layer(kind, n_in)
    x = jnp.array([1.0, 0.0, 1.0])[:n_in]
    log_p = kind.log_prob(layer, jnp.broadcast_to(x, (16, n_in)), YS)  # [16]
    np.testing.assert_allclose(jax.nn.logsumexp(log_p), 0.0, atol=1e-5)
    # One example drawn 40000 times: the frequency of each configuration within 5 std errors.
    n = 40_000
    ys = jax.jit(kind.sample, static_argnums=3)(jax.random.key(2), layer, x[None], n)
    index = np.asarray(ys.astype(jnp.int32) @ (2 ** jnp.arange(N_OUT)))
    freq = np.bincount(index, minlength=16) / n
    p = np.exp(np.asarray(log_p))
    assert np.all(np.abs(freq - p) <= 5 * np.sqrt(p * (1 - p) / n) + 1e-3), (freq, p)


@pytest.mark.parametrize("name", KINDS)
def test_autoregressive_kinds_are_not_factorial(name):
    kind = KINDS[name]
    layer = _layer(kind, 3, seed=4, spread=1.0)
    x = jnp.broadcast_to(jnp.array([0.0, 1.0, 1.0]), (16, 3))
    p = np.exp(np.asarray(kind.log_prob(layer, x, YS), np.float64))
    marginals = np.asarray(YS).T @ p  # P(y_i = 1), [4]
    product = np.prod(np.where(np.asarray(YS) > 0, marginals, 1 - marginals), axis=1)
    # KL(joint || product of its marginals), exact: zero if and only if the units are independent.
    dependence = np.sum(p * np.log(p / product))
    if kind.factorial:
        assert dependence < 1e-5
    else:
        assert dependence > 0.01


def test_darn_without_lateral_weights_is_the_sbn_bitwise():
    darn = DARN().init(jax.random.key(3), 5, 6, 1.0)
    darn = {**darn, "a": jnp.zeros_like(darn["a"])}
    sbn = {"w": darn["w"], "b": darn["b"]}
    x = (jax.random.uniform(jax.random.key(4), (7, 5)) < 0.5).astype(jnp.float32)
    key = jax.random.key(5)
    np.testing.assert_array_equal(DARN().sample(key, darn, x, 3), SBN().sample(key, sbn, x, 3))
    y = SBN().sample(key, sbn, x)
    np.testing.assert_array_equal(DARN().log_prob(darn, x, y), SBN().log_prob(sbn, x, y))


def _visible_configs():
    return exact.all_binary_configs(SIZES[0])


def test_a_mixed_machine_is_a_distribution_and_dreams_it(mixed):
    log_p = wsjax.exact_log_prob(mixed, _visible_configs(), MIXED)  # [16]
    np.testing.assert_allclose(jax.nn.logsumexp(log_p), 0.0, atol=1e-5)
    # log p(u) from the joint of one example, summed by hand over the 32 hidden configurations.
    u = _visible_configs()[5]
    joint = [wsjax.log_joint(mixed, u, (jnp.array(h1, jnp.float32), jnp.array(h2, jnp.float32)),
                             MIXED)
             for h1 in itertools.product((0, 1), repeat=3)
             for h2 in itertools.product((0, 1), repeat=2)]
    np.testing.assert_allclose(jax.nn.logsumexp(jnp.array(joint)), log_p[5], rtol=1e-5)
    # Dreams: the frequency of each visible configuration within 5 std errors of p(u).
    n = 40_000
    dreams, _ = phases.sleep_samples(jax.random.key(6), mixed, n, MIXED)
    index = np.asarray(dreams.astype(jnp.int32) @ (2 ** jnp.arange(SIZES[0])))
    freq = np.bincount(index, minlength=16) / n
    p = np.exp(np.asarray(log_p))
    assert np.all(np.abs(freq - p) <= 5 * np.sqrt(p * (1 - p) / n) + 1e-3)
    # Recognition: log Q sums to one over the hidden configurations of each example.
    table = exact.exact_log_recognition_table(mixed, _visible_configs()[:3], MIXED)
    np.testing.assert_allclose(jax.nn.logsumexp(table, axis=1), 0.0, atol=1e-5)


def test_estimates_and_bounds_on_a_mixed_machine_meet_the_exact_values(mixed):
    u = _visible_configs()[jnp.array([0, 6, 15])]
    exact_lp = wsjax.exact_log_prob(mixed, u, MIXED)
    num = 5000
    estimate = wsjax.estimate_log_prob(jax.random.key(7), mixed, u, num, conditionals=MIXED)
    # Within 5 standard errors, from the weights' exact relative variance E_Q[w^2] / p^2 - 1.
    log_joint = exact.exact_log_joint_table(mixed, u, MIXED)
    log_q = exact.exact_log_recognition_table(mixed, u, MIXED)
    rel_var = jnp.exp(jax.nn.logsumexp(2 * log_joint - log_q, axis=1) - 2 * exact_lp) - 1
    assert np.all(np.abs(estimate - exact_lp) < 5 * np.sqrt(rel_var / num))
    elbo = wsjax.elbo(jax.random.key(8), mixed, u, 5000, conditionals=MIXED)
    np.testing.assert_allclose(elbo, exact.exact_elbo(mixed, u, MIXED), atol=0.1)
    assert np.all(exact.exact_elbo(mixed, u, MIXED) < exact_lp - 1e-3)


def test_rws_with_many_particles_reaches_the_exact_gradients_on_a_mixed_machine(mixed):
    u = _visible_configs()[jnp.array([1, 6, 14])]
    targets = evaluation._rws_targets(mixed, u, MIXED)  # ascent directions, by enumeration
    grads = jax.jit(reweighted.rws_grads, static_argnums=(3, 5, 6))(
        jax.random.key(9), mixed, u, 20_000, 1.0, None, MIXED)[0]
    tol = 0.03
    diff = jax.tree.map(lambda g, t: jnp.max(jnp.abs(g + t)), grads, targets)
    assert max(jax.tree.leaves(diff)) < tol, diff
    # The check can fail: the exact gradients are far from zero, and no side is zero.
    assert max(float(jnp.max(jnp.abs(x))) for x in jax.tree.leaves(targets)) > 6 * tol
    for side in ("prior", "generative", "recognition"):
        assert max(float(jnp.max(jnp.abs(x))) for x in jax.tree.leaves(targets[side])) > tol
    # Insomnia 0 keeps the generative half and draws the recognition half from dreams.
    grads0 = jax.jit(reweighted.rws_grads, static_argnums=(3, 5, 6))(
        jax.random.key(9), mixed, u, 20_000, 0.0, 64, MIXED)[0]
    diff = jax.tree.map(lambda g, t: jnp.max(jnp.abs(g + t)), model.generative_params(grads0),
                        model.generative_params(targets))
    assert max(jax.tree.leaves(diff)) < tol


def test_sbn_layers_named_explicitly_keep_the_delta_rules():
    explicit = Conditionals((SBN(),), (SBN(),), SBN())
    params = wsjax.init(jax.random.key(10), (5, 3), conditionals=explicit, init_scale=0.8)
    m = wsjax.to_matrices(params)
    f = jax.nn.sigmoid
    u = (jax.random.uniform(jax.random.key(11), (6, 5)) < 0.5).astype(jnp.float32)
    grads, _, (v,) = phases.wake_grads(jax.random.key(12), params, u, explicit,
                                       return_samples=True)
    err = u - f(m["h"] + v @ m["G"].T)
    np.testing.assert_allclose(grads["prior"]["b"], -jnp.mean(v - f(m["g"]), 0), atol=1e-6)
    np.testing.assert_allclose(grads["generative"][0]["b"], -jnp.mean(err, 0), atol=1e-6)
    np.testing.assert_allclose(grads["generative"][0]["w"], -err.T @ v / 6, atol=1e-6)
    dream, (v,) = phases.sleep_samples(jax.random.key(13), params, 6, explicit)
    grads, _ = phases.sleep_grads(jax.random.key(13), params, 6, explicit)
    err = v - f(m["w"] + dream @ m["W"].T)
    np.testing.assert_allclose(grads["recognition"][0]["b"], -jnp.mean(err, 0), atol=1e-6)
    np.testing.assert_allclose(grads["recognition"][0]["w"], -err.T @ dream / 6, atol=1e-6)


BUNDLES = {
    "wake_sleep": lambda: wsjax.wake_sleep(optax.adam, conditionals=MIXED),
    "rws": lambda: wsjax.rws(optax.adam, 5, conditionals=MIXED),
    "vimco": lambda: wsjax.vimco(optax.adam, 5, conditionals=MIXED),
    "nvil": lambda: wsjax.nvil(optax.adam, conditionals=MIXED),
}


@pytest.mark.parametrize("name", BUNDLES)
def test_every_bundle_trains_a_mixed_machine_and_vmaps_over_seeds(name, mixed):
    algo = BUNDLES[name]()
    data = _visible_configs()[jnp.array([3, 3, 5, 12, 12, 12, 10, 0])]
    hp = algo.default_hyperparams(learning_rate=0.03)
    step = jax.jit(algo.step)

    def run(key, steps):
        state = algo.init(mixed, hp)
        for i in range(steps):
            state, _ = step(jax.random.fold_in(key, i), state, data)
        return state

    before = float(jnp.mean(wsjax.exact_log_prob(mixed, data, MIXED)))
    trained = run(jax.random.key(14), 150)
    params = {k: trained.params[k] for k in ("prior", "generative", "recognition")}
    after = float(jnp.mean(wsjax.exact_log_prob(params, data, MIXED)))
    assert after > before + 0.3, (before, after)

    keys = jax.random.split(jax.random.key(15), 3)
    stacked = jax.jit(jax.vmap(lambda k: step(k, algo.init(mixed, hp), data)[0]))(keys)
    for i, k in enumerate(keys):
        alone = step(k, algo.init(mixed, hp), data)[0]
        np.testing.assert_allclose(
            jax.flatten_util.ravel_pytree(jax.tree.map(lambda x, i=i: x[i], stacked.params))[0],
            jax.flatten_util.ravel_pytree(alone.params)[0], rtol=1e-5, atol=1e-6)


def test_init_makes_params_of_each_kind_and_names_misfits():
    params = wsjax.init(jax.random.key(16), SIZES, conditionals=MIXED)
    assert set(params["prior"]) == {"b", "c", "enc", "dec"}
    assert set(params["generative"][0]) == {"b", "a", "w"}
    assert set(params["generative"][1]) == {"b", "c", "enc", "dec", "w", "v"}
    assert params["recognition"][0]["enc"].shape == (3, 3)
    assert model.layer_sizes(params, MIXED) == SIZES
    # Default params read as NADE and DARN layers: their own params are missing.
    plain = wsjax.init(jax.random.key(16), SIZES)
    with pytest.raises(ValueError, match="the prior has params that do not fit its kind NADE"):
        model.layer_sizes(plain, MIXED)
    with pytest.raises(ValueError, match="names 1 generative"):
        wsjax.init(jax.random.key(16), SIZES, conditionals=Conditionals((DARN(),), (DARN(),)))
    with pytest.raises(ValueError, match="positive int num_hidden"):
        NADE(0)
    assert conditional(DARN(), "prior") == SBN()  # one kind for every layer: factorial prior
    # Memory budgets: the factorial machine holds its widths; a NADE layer n * (1 + H) more.
    assert row_floats(SBN(), SIZES) == sum(SIZES)
    assert row_floats(MIXED, SIZES) == 4 * 1 + 3 * 5 + 2 * 3  # DARN; NADE(4) over NADE(3); NADE(2)


def test_the_nnx_module_takes_kinds(mixed):
    machine = HelmholtzMachine(SIZES, rngs=nnx.Rngs(0), generative=[DARN(), NADE(4)],
                               recognition=[NADE(3), DARN()], prior=NADE(2), init_scale=1.0)
    assert isinstance(machine.prior, Layer)
    params, conditionals = machine.split()
    assert conditionals == MIXED
    machine.set_params(mixed)
    u = _visible_configs()[:4]
    np.testing.assert_allclose(machine.log_prob(u), wsjax.exact_log_prob(mixed, u, MIXED),
                               rtol=1e-6)
    key = jax.random.key(17)
    machine.rws_step(key, u, 0.1, 5)
    want = wsjax.rws_step(key, mixed, u, 0.1, 5, conditionals=MIXED)
    np.testing.assert_allclose(jax.flatten_util.ravel_pytree(machine.split()[0])[0],
                               jax.flatten_util.ravel_pytree(want)[0], rtol=1e-5, atol=1e-6)
