"""VIMCO and NVIL (wsjax.estimators, wsjax.vimco, wsjax.nvil): proofs by enumeration on machines
small enough to enumerate, the optax.sgd convention, and the kit's guarantees for the bundles."""

import itertools
from functools import partial

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import wsjax
from tests.helpers import random_machine
from wsjax.estimators import (
    baseline_values,
    init_baseline,
    leave_one_out_bounds,
    nvil_grads,
    vimco_grads,
)
from wsjax.exact import (
    exact_elbo,
    exact_iw_bound,
    exact_log_joint_table,
    exact_log_recognition_table,
)
from wsjax.model import generative_params, recognition_params

BATCH = 3
NUM_DRAWS = 20_000


def _data(sizes, seed=0, batch=BATCH):
    return jnp.asarray(np.random.default_rng(seed).integers(0, 2, (batch, sizes[0])), jnp.float32)


def _flat(tree):
    return jnp.concatenate([jnp.ravel(x) for x in jax.tree.leaves(tree)])


def _machine(params):
    return {k: params[k] for k in ("prior", "generative", "recognition")}


def tuple_bound(params, u, num_samples):
    """Batch mean of E[log (1/K) sum_k w_k] by enumerating every K-tuple of configurations."""
    log_p = exact_log_joint_table.uncompiled(params, u)
    log_q = exact_log_recognition_table.uncompiled(params, u)
    tuples = jnp.asarray(list(itertools.product(range(log_p.shape[1]), repeat=num_samples)))
    log_prob = jnp.sum(log_q[:, tuples], axis=-1)  # [B, M**K]
    bound = jax.nn.logsumexp((log_p - log_q)[:, tuples], axis=-1) - jnp.log(num_samples)
    return jnp.mean(jnp.sum(jnp.exp(log_prob) * bound, axis=1))


def _moments(draw, key, params):
    """Mean and standard error over NUM_DRAWS draws of ``draw(key, params)``, one jitted call."""
    draws = jax.jit(jax.vmap(partial(draw, params=params)))(jax.random.split(key, NUM_DRAWS))
    mean = jax.tree.map(lambda x: jnp.mean(x, 0), draws)
    se = jax.tree.map(lambda x: jnp.std(x, 0) / np.sqrt(NUM_DRAWS), draws)
    return mean, se


def _assert_within(mean, se, exact, z=4.5):
    """Every entry of ``mean`` within z standard errors of ``exact`` (plus float32 slack)."""
    m, s, e = _flat(mean), _flat(se), _flat(exact)
    worst = float(jnp.max(jnp.abs(m - e) / (s + 1e-6)))
    assert worst < z, f"an entry is {worst:.1f} standard errors from the exact gradient"
    return float(jnp.max(s))


# 1. The exact oracles agree with each other.


@pytest.mark.parametrize("sizes, num_samples", [((4, 2), 3), ((4, 2, 2), 2)])
def test_the_multiset_bound_is_the_tuple_bound_and_the_elbo_at_one_sample(sizes, num_samples):
    params, u = random_machine(0, sizes), _data(sizes)
    value, grads = jax.jit(jax.value_and_grad(
        lambda p: jnp.mean(exact_iw_bound.uncompiled(p, u, num_samples))))(params)
    want, want_grads = jax.jit(jax.value_and_grad(
        lambda p: tuple_bound(p, u, num_samples)))(params)
    np.testing.assert_allclose(value, want, rtol=1e-5)
    chex.assert_trees_all_close(grads, want_grads, atol=1e-5, rtol=1e-4)


def test_the_multiset_bound_rises_from_the_elbo_to_log_p():
    params, u = random_machine(0, (4, 2)), _data((4, 2))

    @jax.jit
    def bounds():
        return ([exact_iw_bound.uncompiled(params, u, k) for k in (1, 2, 5, 100)],
                exact_elbo.uncompiled(params, u), wsjax.exact_log_prob.uncompiled(params, u))

    bounds, elbo, log_p = bounds()
    np.testing.assert_allclose(bounds[0], elbo, rtol=1e-5)
    assert np.all(np.diff(np.asarray(bounds), axis=0) > 0)
    assert np.all(bounds[-1] <= log_p + 1e-5) and np.all(bounds[-1] > log_p - 0.05)


def test_leave_one_out_bounds_replace_one_log_weight_by_the_mean_of_the_others():
    log_w = jax.random.normal(jax.random.key(0), (4, 5)) * 30.0  # weights far apart
    got = leave_one_out_bounds(log_w)
    lw = np.asarray(log_w, np.float64)
    for b, k in itertools.product(range(4), range(5)):
        others = np.delete(lw[b], k)
        replaced = np.append(others, others.mean())
        want = np.log(np.mean(np.exp(replaced - replaced.max()))) + replaced.max()
        np.testing.assert_allclose(got[b, k], want, rtol=1e-5, atol=1e-4)
    with pytest.raises(ValueError, match="K >= 2"):
        leave_one_out_bounds(log_w[:, :1])


# 2. VIMCO: the mean of many estimates is the exact gradient of the K-sample bound.


@pytest.mark.parametrize("sizes, num_samples", [((4, 2), 3), ((4, 2, 2), 2)])
def test_vimco_is_unbiased_for_the_k_sample_bound_in_both_halves(sizes, num_samples):
    params, u = random_machine(0, sizes), _data(sizes)
    # The exact gradients of the K-sample bound and of its neighbours (the ELBO, K + 1).
    exact, *neighbours = jax.jit(lambda p: [
        jax.grad(lambda q: tuple_bound(q, u, num_samples))(p),
        *(jax.grad(lambda q, k=k: jnp.mean(exact_iw_bound.uncompiled(q, u, k)))(p)
          for k in (1, num_samples + 1))])(params)
    # The estimate of the ascent direction is minus vimco_grads.
    draw = lambda key, params: jax.tree.map(
        jnp.negative, vimco_grads(key, params, u, num_samples)[0])
    mean, se = _moments(draw, jax.random.key(1), params)
    for half in (generative_params, recognition_params):
        max_se = _assert_within(half(mean), half(se), half(exact))
        # The check can fail: the gradient is far from zero in both halves, and from the
        # gradients of the neighbouring bounds (the ELBO's, the (K + 1)-sample bound's).
        assert float(jnp.max(jnp.abs(_flat(half(exact))))) > 30 * max_se
        for neighbour in neighbours:
            assert float(jnp.max(jnp.abs(_flat(half(neighbour)) - _flat(half(exact))))) > (
                8 * max_se)


def test_vimco_refuses_fewer_than_two_samples():
    with pytest.raises(ValueError, match="num_samples >= 2"):
        wsjax.vimco(optax.sgd, 1)
    params = random_machine(0, (4, 2))
    with pytest.raises(ValueError, match="num_samples >= 2"):
        vimco_grads(jax.random.key(0), params, _data((4, 2)), 1)


# 3. NVIL: unbiased for the ELBO in the generative half, in direction in the recognition half.


def _frozen_baseline(n_visible):
    return {"w": jnp.linspace(-0.5, 0.8, n_visible), "b": jnp.asarray(-3.0),
            "mean": jnp.asarray(0.2), "var": jnp.asarray(4.0)}


@pytest.mark.parametrize("sizes", [(4, 2), (4, 2, 2)])
def test_nvil_is_unbiased_for_the_elbo_with_its_baseline_and_statistics_held(sizes):
    """signal_decay = 1 holds c and v: the recognition estimate is then unbiased for the ELBO's
    recognition gradient divided by max(1, sqrt(v)) = 2, whatever the baseline."""
    params, u = random_machine(0, sizes), _data(sizes)
    params = {**params, "baseline": _frozen_baseline(sizes[0])}
    exact = jax.jit(jax.grad(lambda p: jnp.mean(exact_elbo.uncompiled(p, u))))(_machine(params))
    draw = lambda key, params: jax.tree.map(jnp.negative, nvil_grads(key, params, u, 1.0)[0])
    mean, se = _moments(draw, jax.random.key(2), params)
    max_se = _assert_within(generative_params(mean), generative_params(se),
                            generative_params(exact))
    assert float(jnp.max(jnp.abs(_flat(generative_params(exact))))) > 30 * max_se
    scaled = lambda t: jax.tree.map(lambda x: 2.0 * x, recognition_params(t))
    max_se = _assert_within(scaled(mean), scaled(se), recognition_params(exact))
    assert float(jnp.max(jnp.abs(_flat(recognition_params(exact))))) > 30 * max_se
    # Without the factor 2 the estimate is far off: the normalisation is really applied.
    unscaled = _flat(recognition_params(mean)) - _flat(recognition_params(exact))
    assert float(jnp.max(jnp.abs(unscaled))) > 10 * max_se
    # The statistics are held, and the baseline's own estimate regresses it onto l - c.
    _, statistics, info = nvil_grads(jax.random.key(0), params, u, 1.0)
    assert float(statistics["mean"]) == pytest.approx(0.2)
    assert float(statistics["var"]) == pytest.approx(4.0)
    assert float(info.signal_mean) == pytest.approx(0.2)


@pytest.mark.parametrize("sizes", [(4, 2), (4, 2, 2)])
def test_nvil_points_the_recognition_half_along_the_elbo_gradient_at_its_defaults(sizes):
    """With the running statistics updated from each batch (signal_decay 0.8 from the start), the
    centring constant and the normalisation depend on the sample, so the estimate is not exactly
    unbiased; it still points along the exact gradient."""
    params, u = random_machine(0, sizes), _data(sizes)
    params = {**params, "baseline": init_baseline(sizes[0])}
    exact = jax.jit(jax.grad(lambda p: jnp.mean(exact_elbo.uncompiled(p, u))))(_machine(params))
    draw = lambda key, params: jax.tree.map(jnp.negative, nvil_grads(key, params, u, 0.8)[0])
    mean, se = _moments(draw, jax.random.key(3), params)
    _assert_within(generative_params(mean), generative_params(se), generative_params(exact))
    m, e = _flat(recognition_params(mean)), _flat(recognition_params(exact))
    # Observed: 0.998 on (4, 2), 0.984 on (4, 2, 2).
    assert float(m @ e / (jnp.linalg.norm(m) * jnp.linalg.norm(e))) > 0.95


def test_nvil_baseline_regresses_onto_the_elbo_with_the_machine_frozen():
    """Layer multipliers 0 freeze the machine (they do not reach the baseline): the baseline alone
    learns, and b(u) + c approaches each example's ELBO."""
    sizes = (4, 2)
    params, u = random_machine(0, sizes), _data(sizes, seed=1)
    algo = wsjax.nvil(optax.sgd)
    state = algo.init(params, algo.default_hyperparams(
        learning_rate=0.02, layer_rate_start=0.0, layer_rate_end=0.0))

    def body(state, key):
        state, _ = algo.step(key, state, u)
        baseline = state.params["baseline"]
        return state, baseline_values(baseline, u) + baseline["mean"]

    state, fits = jax.jit(lambda s: jax.lax.scan(body, s, jax.random.split(jax.random.key(4),
                                                                           3000)))(state)
    chex.assert_trees_all_equal(_machine(state.params), params)
    target = exact_elbo(params, u)
    fit = jnp.mean(fits[-1000:], axis=0)  # the SGD iterates fluctuate: their recent mean
    start = float(jnp.max(jnp.abs(target)))  # the fit starts at 0
    assert float(jnp.max(jnp.abs(fit - target))) < 0.1 * start, (fit, target)


# 4. The bundles: optax.sgd applies minus the estimator's grads; the kit's guarantees.


SIZES = (4, 2, 2)
PARAMS = random_machine(5, SIZES)
U = _data(SIZES, seed=2, batch=5)
KEY = jax.random.key(7)
BUNDLES = {"vimco": wsjax.vimco(optax.sgd, 3), "nvil": wsjax.nvil(optax.sgd),
           "nvil-adam": wsjax.nvil(optax.adam)}
STEPS = {name: jax.jit(algo.step) for name, algo in BUNDLES.items()}
vimco_grads_jit = jax.jit(vimco_grads, static_argnames=("num_samples",))
nvil_grads_jit = jax.jit(nvil_grads)


def _diff(a, b):
    return max(float(jnp.max(jnp.abs(x - y))) for x, y in
               zip(jax.tree.leaves(a), jax.tree.leaves(b)))


def test_sgd_vimco_steps_by_minus_the_vimco_grads():
    algo, lr = BUNDLES["vimco"], 0.3
    state, info = STEPS["vimco"](KEY, algo.init(PARAMS, algo.default_hyperparams(
        learning_rate=lr)), U)
    grads, want_info = vimco_grads_jit(KEY, PARAMS, U, 3)
    change = jax.tree.map(lambda new, old: (new - old) / lr, state.params, PARAMS)
    chex.assert_trees_all_close(change, jax.tree.map(jnp.negative, grads), atol=2e-5, rtol=0)
    chex.assert_trees_all_close(info, want_info, atol=1e-6, rtol=1e-6)
    assert isinstance(info, wsjax.VIMCOInfo) and 1.0 <= float(info.ess) <= 3.0
    assert _diff(grads, jax.tree.map(jnp.zeros_like, grads)) > 1e-2


def test_sgd_nvil_steps_by_minus_the_nvil_grads_and_writes_the_statistics():
    algo, lr, factor = BUNDLES["nvil"], 0.3, 0.5
    state0 = algo.init(PARAMS, algo.default_hyperparams(learning_rate=lr, baseline_rate=factor,
                                                        signal_decay=0.6))
    chex.assert_trees_all_equal(state0.params["baseline"], init_baseline(SIZES[0]))
    state, info = STEPS["nvil"](KEY, state0, U)
    grads, statistics, want_info = nvil_grads_jit(KEY, state0.params, U, 0.6)
    new, old = state.params, state0.params
    change = jax.tree.map(lambda a, b: (a - b) / lr, _machine(new), _machine(old))
    chex.assert_trees_all_close(change, jax.tree.map(jnp.negative, _machine(grads)), atol=2e-5,
                                rtol=0)
    for name in ("w", "b"):
        np.testing.assert_allclose((new["baseline"][name] - old["baseline"][name]) / (lr * factor),
                                   -grads["baseline"][name], atol=2e-5)
    for name in ("mean", "var"):
        assert float(grads["baseline"][name]) == 0.0
        np.testing.assert_allclose(new["baseline"][name], statistics[name], rtol=1e-6)
    # The running mean starts at 0: after one step it holds (1 - 0.6) of the batch's mean.
    np.testing.assert_allclose(info.signal_mean, 0.4 * jnp.mean(_signal_minus_baseline(old, U)),
                               rtol=1e-5)
    chex.assert_trees_all_close(info, want_info, atol=1e-6, rtol=1e-6)
    assert float(jnp.max(jnp.abs(grads["baseline"]["w"]))) > 1e-3


def _signal_minus_baseline(params, u):
    """l - b(u) at the samples of KEY (one per example): the batch's part of the running mean."""
    hs = wsjax.model.sample_up(KEY, params, u, num_samples=1)
    log_p, log_q = wsjax.model.particle_log_probs(params, u, hs)
    return (log_p - log_q)[:, 0] - baseline_values(params["baseline"], u)


@pytest.mark.parametrize("name", ["vimco", "nvil"])
def test_same_key_same_state_other_key_other_state(name):
    algo, step = BUNDLES[name], STEPS[name]
    state0 = algo.init(PARAMS, algo.default_hyperparams(learning_rate=0.05))
    runs = []
    for seed in (1, 1, 2):
        state = state0
        for key in jax.random.split(jax.random.key(seed), 2):
            state, info = step(key, state, U)
        runs.append(state)
    chex.assert_trees_all_equal(runs[0], runs[1])
    assert _diff(runs[0].params, runs[2].params) > 1e-5
    chex.assert_tree_all_finite((runs[0], info))
    chex.assert_trees_all_equal_shapes_and_dtypes(_machine(runs[0].params), PARAMS)


@pytest.mark.parametrize("name", ["vimco", "nvil-adam"])
def test_vmap_over_seeds_and_hyperparameters_equals_a_loop(name):
    algo = BUNDLES[name]
    axes = {"learning_rate": [0.01, [0.05, 0.1]], "lr_decay": [1.0, 0.5]}
    if algo.name == "nvil":  # with adam: the baseline has a state of its own
        axes = {"learning_rate": [0.01, [0.05, 0.1]], "baseline_rate": [0.0, 2.0],
                "signal_decay": [0.5, 1.0]}
    points = wsjax.grid(algo.default_hyperparams(learning_rate=0.05, decay_steps=2.0), axes)
    num_points = jax.tree.leaves(points)[0].shape[0]
    keys = jax.random.split(KEY, num_points)  # a seed per point

    def run(key, hp):
        state = algo.init(PARAMS, hp)
        for k in jax.random.split(key, 2):
            state, _ = algo.step(k, state, U)
        return state

    states = jax.jit(jax.vmap(run))(keys, points)
    for i in range(num_points):
        one = run(keys[i], jax.tree.map(lambda x, i=i: x[i], points))
        chex.assert_trees_all_close(jax.tree.map(lambda x, i=i: x[i], states), one, atol=1e-6,
                                    rtol=0)
    assert _diff(jax.tree.map(lambda x: x[0], states.params),
                 jax.tree.map(lambda x: x[-1], states.params)) > 1e-4


@pytest.mark.parametrize("name", ["vimco", "nvil"])
def test_an_eager_bundle_compiles_once_and_checks_its_data(name):
    algo = BUNDLES[name]
    state = algo.init(PARAMS, algo.default_hyperparams(learning_rate=0.05))
    state, _ = algo.step(jax.random.key(0), state, np.asarray(U))  # numpy data
    size = algo.step.compiled._cache_size()
    for seed in (1, 2):
        state, _ = algo.step(jax.random.key(seed), state, U)
    hp = algo.default_hyperparams(learning_rate=[0.1, 0.2], lr_decay=0.5)
    algo.step(jax.random.key(3), algo.init(state.params, hp), U)  # new values, same program
    assert algo.step.compiled._cache_size() == size
    for bad, message in ((2 * U, "non-binary values 2.0"), (U[0], "must be a 2-D array"),
                         (U[:, :3], "does not fit the machine")):
        with pytest.raises(ValueError, match=message):
            algo.step(jax.random.key(0), state, bad)


def test_bundles_refuse_other_states_and_bad_settings():
    nvil, vimco, rws = BUNDLES["nvil"], BUNDLES["vimco"], wsjax.rws(optax.sgd, 3)
    with pytest.raises(TypeError, match=r"not made by nvil.init .*it lacks \['baseline_rate', "
                                        r"'signal_decay'\]"):
        nvil.step(KEY, vimco.init(PARAMS, vimco.default_hyperparams()), U)
    with pytest.raises(TypeError,
                       match=r"not made by vimco.init .*it has \['defensive', 'insomnia'\]"):
        vimco.step(KEY, rws.init(PARAMS, rws.default_hyperparams()), U)
    with pytest.raises(ValueError, match="signal_decay must be in"):
        nvil.default_hyperparams(signal_decay=1.5)
    with pytest.raises(ValueError, match="baseline_rate must be finite and >= 0"):
        nvil.default_hyperparams(baseline_rate=-1.0)
    bad = {**PARAMS, "baseline": {**init_baseline(3)}}
    with pytest.raises(ValueError, match=r'params\["baseline"\]\["w"\] must have shape \(4,\)'):
        nvil.init(bad, nvil.default_hyperparams())
    # An NVIL state's params are a machine as they are, for the kit and for other algorithms.
    state = nvil.init(PARAMS, nvil.default_hyperparams())
    assert wsjax.exact_log_prob(state.params, U).shape == (5,)
    vimco.step(KEY, vimco.init(_machine(state.params), vimco.default_hyperparams()), U)


def test_bundles_train_every_layer_kind():
    from flax import nnx

    from wsjax.layers import Conditionals, dense_logits
    from wsjax.modules import MLP, as_conditional

    mlp_params, mlp_fn = as_conditional(MLP(2, (3,), 4, rngs=nnx.Rngs(0)))
    params = wsjax.init(jax.random.key(0), SIZES, init_scale=0.5)
    params = {**params, "generative": (mlp_params, params["generative"][1])}
    fn = Conditionals(generative=(mlp_fn, dense_logits), recognition=(dense_logits, dense_logits))
    for algo in (wsjax.vimco(optax.sgd, 2, conditionals=fn),
                 wsjax.nvil(optax.sgd, conditionals=fn)):
        state = algo.init(params, algo.default_hyperparams(learning_rate=0.05))
        state, info = jax.jit(algo.step)(KEY, state, U)
        chex.assert_tree_all_finite((state, info))
        assert _diff(state.params["generative"][0], mlp_params) > 1e-4


@pytest.mark.parametrize("name", ["vimco", "nvil"])
def test_a_bundle_runs_in_make_train_and_sweep(name):
    bars = wsjax.tasks.bars()
    config = wsjax.TrainConfig(layer_sizes=(16, 3), num_steps=4, batch_size=5,
                               sampler=bars.sampler, eval_every=2, eval_fn=bars.eval_fn)
    trainer = wsjax.make_train(config, BUNDLES[name])
    base = trainer.default_hyperparams(learning_rate=0.1, init_scale=0.1)
    axes = {"learning_rate": [0.05, 0.1]}
    if name == "nvil":
        axes["signal_decay"] = [0.8, 1.0]
    points = wsjax.grid(base, axes)
    keys = jax.random.split(jax.random.key(0), 2)
    states, metrics = wsjax.sweep(trainer)(keys, points, None)
    grid = len(jax.tree.leaves(points)[0])
    assert metrics["kl_bits"].shape == (grid, 2, 2)
    chex.assert_tree_all_finite(metrics)
    assert int(states.step[0, 0]) == 4
    if name == "nvil":  # its baseline and statistics are carried in the state: a run stopped
        # after each evaluation and resumed is the run swept (up to the programs' rounding)
        hp = jax.tree.map(lambda x: x[-1], points)
        state = trainer.init(keys[1], hp)
        for _ in range(2):
            state, _ = trainer.run(keys[1], state)
        chex.assert_trees_all_close(state, jax.tree.map(lambda x: x[-1, 1], states), atol=1e-6,
                                    rtol=0)
    info_fields = {"vimco": wsjax.VIMCOInfo, "nvil": wsjax.NVILInfo}[name]._fields
    assert set(info_fields) <= set(metrics)


# 5. The gradient-quality oracle and its experiment.


def test_gradient_quality_measures_each_estimator_against_its_target():
    from wsjax.evaluation import gradient_quality

    params, u = random_machine(0, (4, 2)), _data((4, 2))
    rows = gradient_quality(jax.random.key(8), params, u, num_samples_list=(3, 1),
                            num_draws=1000)
    assert [(r.estimator, r.num_samples, r.half) for r in rows] == [
        (e, k, h) for e, ks in (("rws", (1, 3)), ("vimco", (3,)), ("nvil", (1,)))
        for k in ks for h in ("generative", "recognition")]
    by = {(r.estimator, r.num_samples, r.half): r for r in rows}
    for r in rows:
        assert r.variance > 0 and r.bias_noise > 0 and r.target_norm > 10 * r.bias_noise
    # VIMCO is unbiased for its bound, NVIL's generative half for the ELBO: within the noise.
    for key in (("vimco", 3, "generative"), ("vimco", 3, "recognition"),
                ("nvil", 1, "generative")):
        assert by[key].bias < 4 * by[key].bias_noise and by[key].cosine > 0.99, by[key]
    assert by["nvil", 1, "recognition"].cosine > 0.95
    # RWS is biased for its K -> infinity targets, less so as K grows; at K = 1 its
    # recognition update has mean zero (one sample, weight 1): SNR at the noise floor.
    for half in ("generative", "recognition"):
        assert by["rws", 1, half].bias > by["rws", 3, half].bias > (
            4 * by["rws", 3, half].bias_noise)
    assert by["rws", 1, "recognition"].snr < 0.1 < by["rws", 1, "generative"].snr
    # The same key gives the same rows.
    assert gradient_quality(jax.random.key(8), params, u, ("nvil",), (1,), 1000) == rows[-2:]


def test_gradient_quality_skips_targets_it_cannot_enumerate_and_refuses_bad_settings():
    from wsjax.evaluation import gradient_quality

    params, u = random_machine(0, (4, 2, 2)), _data((4, 2, 2))
    (gen, rec) = gradient_quality(jax.random.key(0), params, u, ("vimco",), (12,), 50)
    assert np.isnan(gen.bias) and np.isnan(rec.cosine) and gen.variance > 0 and rec.snr > 0
    with pytest.raises(ValueError, match="unknown estimators"):
        gradient_quality(jax.random.key(0), params, u, ("reinforce",))
    with pytest.raises(ValueError, match="num_draws must be at least 2"):
        gradient_quality(jax.random.key(0), params, u, num_draws=1)
    with pytest.raises(ValueError, match="non-binary"):
        gradient_quality(jax.random.key(0), params, 2 * u)


def test_the_gradient_snr_experiment_writes_its_figure_and_rows(run_module, tmp_path):
    import json
    import os

    out = str(tmp_path / "snr")
    run_module("experiments.gradient_snr", "--layer_sizes=4,2", "--num_samples=1,2",
               "--num_draws=20", f"--output_dir={out}", timeout=120)
    with open(os.path.join(out, "gradient_snr.json")) as f:
        summary = json.load(f)
    assert summary["command"].startswith("python -m experiments.gradient_snr")
    assert len(summary["rows"]) == 2 * (2 + 1 + 1)  # rws K = 1, 2; vimco K = 2; nvil
    assert {"snr", "bias", "variance", "cosine"} <= set(summary["rows"][0])
    assert os.path.getsize(os.path.join(out, "gradient_snr.png")) > 1000
    assert os.path.exists(os.path.join(out, "flags.txt"))
