"""Composition: nnx modules, arbitrary conditionals, and the pure functions inside larger models."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

import wsjax
from wsjax import exact, model, phases, reweighted
from wsjax.layers import Conditionals, dense_logits
from wsjax.modules import MLP, HelmholtzMachine, as_conditional

U = jnp.asarray(np.random.default_rng(0).integers(0, 2, (8, 6)), jnp.float32)
ALL_U = exact.all_binary_configs(6)


def _close(a, b, **kw):
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_allclose(x, y, **kw)


def _mlp(n_in, n_out, rngs):
    return MLP(n_in, (5,), n_out, rngs=rngs)


@pytest.fixture(scope="module")
def nonlinear():
    """A 6-3-2 machine whose every conditional is a one-hidden-layer tanh MLP (pure view)."""
    return HelmholtzMachine((6, 3, 2), rngs=nnx.Rngs(0), generative=_mlp,
                            recognition=_mlp).split()


def test_a_dense_module_is_the_kits_machine():
    machine = HelmholtzMachine((6, 3, 2), rngs=nnx.Rngs(0), init_scale=0.7)
    params, fn = machine.split()
    plain = jax.tree.map(lambda x: x, params, is_leaf=lambda x: isinstance(x, nnx.Variable))
    dense = {"prior": params["prior"],
             "generative": tuple({"w": s["w"][...], "b": s["b"][...]}
                                 for s in params["generative"]),
             "recognition": tuple({"w": s["w"][...], "b": s["b"][...]}
                                  for s in params["recognition"])}
    _close(machine.log_prob(U), wsjax.exact_log_prob(dense, U), rtol=1e-6)
    key = jax.random.key(1)
    machine.wake_step(key, U, 0.3)
    _close(machine.split()[0], wsjax.wake_step(key, dense, U, 0.3), rtol=1e-6)
    assert jax.tree.structure(machine.split()[0]) == jax.tree.structure(plain)


def test_surrogate_losses_give_the_standalone_gradients():
    machine = HelmholtzMachine((6, 3, 2), rngs=nnx.Rngs(1), init_scale=0.5)
    params, fn = machine.split()
    key = jax.random.key(2)
    key_wake, key_sleep = jax.random.split(key)
    grads = nnx.jit(nnx.grad(lambda m: m.wake_sleep_loss(key, U)))(machine)
    gen, _ = jax.jit(phases.wake_grads, static_argnums=3)(key_wake, params, U, fn)
    rec, _ = jax.jit(phases.sleep_grads, static_argnums=(2, 3))(key_sleep, params, 8, fn)
    _close(grads["prior"], gen["prior"]["b"], rtol=1e-5, atol=1e-7)
    for l in range(2):
        _close(grads["generative"][l], gen["generative"][l], rtol=1e-5, atol=1e-7)
        _close(grads["recognition"][l], rec["recognition"][l], rtol=1e-5, atol=1e-7)

    grads = nnx.jit(nnx.grad(lambda m: m.rws_loss(key, U, 4, insomnia=0.3)))(machine)
    want, _ = jax.jit(reweighted.rws_grads, static_argnums=(3, 5, 6))(key, params, U, 4, 0.3,
                                                                       None, fn)
    _close(grads["prior"], want["prior"]["b"], rtol=1e-5, atol=1e-7)
    for side in ("generative", "recognition"):
        for l in range(2):
            _close(grads[side][l], want[side][l], rtol=1e-5, atol=1e-7)


def test_nnx_optimizer_under_nnx_jit_trains_a_module():
    data = wsjax.data.sample_bars(jax.random.key(0), 200, size=3, p_bar=0.4)
    machine = HelmholtzMachine((9, 6, 1), rngs=nnx.Rngs(0), init_scale=0.1)
    optimizer = nnx.Optimizer(machine, optax.adam(0.03), wrt=nnx.Param)

    @nnx.jit
    def step(machine, optimizer, key, u):
        loss, grads = nnx.value_and_grad(lambda m: m.rws_loss(key, u, 5, 0.5))(machine)
        optimizer.update(machine, grads)
        return loss

    before = float(jnp.mean(machine.log_prob(data)))
    keys = jax.random.split(jax.random.key(1), 300)
    for i, key in enumerate(keys):
        step(machine, optimizer, key, data[(i % 10) * 20:(i % 10 + 1) * 20])
    after = float(jnp.mean(machine.log_prob(data)))
    assert after > before + 1.0, (before, after)


def test_nnx_vmap_over_an_ensemble_equals_a_loop():
    keys = jax.random.split(jax.random.key(0), 3)
    ensemble = nnx.vmap(lambda k: HelmholtzMachine((6, 3), rngs=nnx.Rngs(k), init_scale=1.0))(keys)
    batched = nnx.vmap(lambda m: m.log_prob(U))(ensemble)
    for i, key in enumerate(keys):
        one = HelmholtzMachine((6, 3), rngs=nnx.Rngs(key), init_scale=1.0)
        _close(batched[i], one.log_prob(U), rtol=1e-5)


def test_a_nonlinear_machine_against_exact_enumeration(nonlinear):
    params, fn = nonlinear
    assert model.layer_sizes(params, fn) == (6, 3, 2)
    log_p = wsjax.exact_log_prob(params, ALL_U, fn)
    assert float(jax.nn.logsumexp(log_p)) == pytest.approx(0.0, abs=1e-5)  # a distribution
    # By hand: log sum_h P(u, h) over the 2^5 hidden configurations.
    hidden = exact.all_binary_configs(5)
    joint = jax.vmap(lambda u: jax.vmap(
        lambda h: model.log_joint(params, u, (h[:3], h[3:]), fn))(hidden))(U)
    _close(wsjax.exact_log_prob(params, U, fn), jax.nn.logsumexp(joint, axis=1), rtol=1e-5)
    estimate = wsjax.estimate_log_prob(jax.random.key(0), params, U, 4000, conditionals=fn)
    np.testing.assert_allclose(estimate, wsjax.exact_log_prob(params, U, fn), atol=0.05)
    assert np.all(wsjax.elbo(jax.random.key(1), params, U, 4000, conditionals=fn)
                  <= wsjax.exact_log_prob(params, U, fn) + 1e-4)


def test_a_nonlinear_machine_learns_with_every_algorithm(nonlinear):
    params, fn = nonlinear
    data = wsjax.data.sample_bars(jax.random.key(0), 40, size=2, p_bar=0.4)
    data = jnp.concatenate([data, data[:, :2]], axis=1)  # 6 visible units with structure
    before = float(jnp.mean(wsjax.exact_log_prob(params, data, fn)))
    for algo in (wsjax.wake_sleep(optax.adam, conditionals=fn),
                 wsjax.rws(optax.adam, 5, conditionals=fn)):
        state = algo.init(params, algo.default_hyperparams(learning_rate=0.03))
        step = jax.jit(algo.step)
        for i, key in enumerate(jax.random.split(jax.random.key(3), 300)):
            state, _ = step(key, state, data[(i % 4) * 10:(i % 4 + 1) * 10])
        after = float(jnp.mean(wsjax.exact_log_prob(state.params, data, fn)))
        assert after > before + 0.5, (algo.name, before, after)


def test_one_conditional_per_layer_and_side():
    # An MLP for the visible layer's generative conditional, the affine map everywhere else.
    mlp_params, mlp_fn = as_conditional(MLP(3, (4,), 6, rngs=nnx.Rngs(0)))
    params = wsjax.init(jax.random.key(0), (6, 3, 2), init_scale=0.5)
    params = {**params, "generative": (mlp_params, params["generative"][1])}
    fn = Conditionals(generative=(mlp_fn, dense_logits), recognition=(dense_logits, dense_logits))
    log_p = wsjax.exact_log_prob(params, ALL_U, fn)
    assert float(jax.nn.logsumexp(log_p)) == pytest.approx(0.0, abs=1e-5)
    new = wsjax.sleep_step(jax.random.key(1), params, 0.1, 4, conditionals=fn)
    assert jax.tree.structure(new) == jax.tree.structure(params)
    with pytest.raises(ValueError, match="names 1 generative and 2 recognition"):
        wsjax.exact_log_prob(params, U, Conditionals((mlp_fn,), (dense_logits, dense_logits)))


def test_a_machine_nested_in_a_larger_pytree_trains_at_its_own_rate():
    """optax.multi_transform: the machine at its own rate, the rest of the model at another."""
    machine = wsjax.init(jax.random.key(0), (6, 3), init_scale=0.5)
    tree = {"machine": machine, "head": {"w": jnp.ones((3, 2))}}
    labels = {"machine": jax.tree.map(lambda _: "machine", machine), "head": {"w": "head"}}
    tx = optax.multi_transform({"machine": optax.sgd(0.1), "head": optax.sgd(0.0)}, labels)
    key = jax.random.key(1)

    def loss(tree):  # the wake loss of the machine plus a term in the head
        hs = jax.lax.stop_gradient(phases.wake_samples(key, tree["machine"], U))
        return wsjax.wake_loss(tree["machine"], U, hs) + jnp.sum(tree["head"]["w"] ** 2)

    grads = jax.grad(loss)(tree)
    updates, _ = tx.update(grads, tx.init(tree), tree)
    new = optax.apply_updates(tree, updates)
    want = wsjax.wake_step(key, machine, U, 0.1)  # the delta rule at rate 0.1
    _close(model.generative_params(new["machine"]), model.generative_params(want), rtol=1e-5)
    np.testing.assert_array_equal(new["head"]["w"], tree["head"]["w"])  # rate 0: unchanged


def test_the_pure_functions_compose_with_scan_checkpoint_grad_and_vmap():
    params = wsjax.init(jax.random.key(0), (6, 3, 2), init_scale=0.5)

    def train(params, keys):
        def body(p, k):
            return wsjax.wake_step(k, p, U, 0.1), None
        return jax.lax.scan(jax.checkpoint(body), params, keys)[0]

    keys = jax.random.split(jax.random.key(1), 5)
    scanned = jax.jit(train)(params, keys)
    looped = params
    for k in keys:
        looped = wsjax.wake_step(k, looped, U, 0.1)
    _close(scanned, looped, rtol=1e-5, atol=1e-6)
    # The exact log-likelihood after the scan, differentiated through the initial params.
    grad = jax.grad(lambda p: jnp.mean(wsjax.exact_log_prob(train(p, keys), U)))(params)
    assert all(np.all(np.isfinite(g)) for g in jax.tree.leaves(grad))
    batched = jax.vmap(train, in_axes=(None, 0))(params, jnp.stack([keys, keys]))
    _close(jax.tree.map(lambda x: x[1], batched), scanned, rtol=1e-5, atol=1e-6)


class _FeatureClassifier(nnx.Module):
    """A machine whose recognition features feed a softmax classifier, trained as one model."""

    def __init__(self, rngs):
        self.machine = HelmholtzMachine((64, 24), rngs=rngs, init_scale=0.1)
        self.head = nnx.Linear(24, 10, rngs=rngs)

    def loss(self, key, u, y):
        features = jax.lax.stop_gradient(self.machine.features(u))
        ce = optax.softmax_cross_entropy_with_integer_labels(self.head(features), y).mean()
        return self.machine.wake_sleep_loss(key, u) + ce, ce


def test_a_machine_inside_a_larger_model_trains_end_to_end_with_its_standalone_gradients():
    digits = wsjax.loaders.load_digits(labels=True)
    x, y = jnp.asarray(digits["train"]), jnp.asarray(digits["train_labels"])
    model_ = _FeatureClassifier(nnx.Rngs(0))
    part = lambda state: jax.tree_util.tree_map_with_path(lambda p, _: str(p[0].key), state)
    tx = optax.multi_transform({"machine": optax.adam(1e-2), "head": optax.adam(2e-2)}, part)
    optimizer = nnx.Optimizer(model_, tx, wrt=nnx.Param)

    @nnx.jit
    def step(m, optimizer, key):
        k_batch, k_loss = jax.random.split(key)
        idx = jax.random.randint(k_batch, (50,), 0, x.shape[0])
        (loss, ce), grads = nnx.value_and_grad(_FeatureClassifier.loss, has_aux=True)(
            m, k_loss, x[idx], y[idx])
        optimizer.update(m, grads)
        return loss, ce

    # The machine's gradient inside the model is that of the standalone wake and sleep phases.
    key = jax.random.key(3)
    grads = nnx.jit(nnx.grad(lambda m: m.loss(key, x[:50], y[:50])[0]))(model_)
    params, fn = model_.machine.split()
    k_wake, k_sleep = jax.random.split(key)
    wake, _ = jax.jit(phases.wake_grads, static_argnums=3)(k_wake, params, x[:50], fn)
    sleep, _ = jax.jit(phases.sleep_grads, static_argnums=(2, 3))(k_sleep, params, 50, fn)
    _close(grads["machine"]["generative"], wake["generative"], rtol=1e-5, atol=1e-6)
    _close(grads["machine"]["recognition"], sleep["recognition"], rtol=1e-5, atol=1e-6)
    _close(grads["machine"]["prior"], wake["prior"]["b"], rtol=1e-5, atol=1e-6)

    history = np.array([step(model_, optimizer, k) for k in jax.random.split(key, 400)])
    first, last = history[:40].mean(0), history[-40:].mean(0)
    assert last[1] < 0.5 * first[1], (first, last)  # the classifier's loss falls
    assert last[0] - last[1] < first[0] - first[1] - 5.0, (first, last)  # so does the machine's
    accuracy = jnp.mean(jnp.argmax(model_.head(model_.machine.features(x)), -1) == y)
    assert accuracy > 0.6, accuracy
