"""Every public function on float64 machines under ``jax_enable_x64``.

A researcher checking precision turns x64 on and casts the params to float64;
each entry point must then run and keep float64 where the machine is float64
(the pattern of optax's float64 test of its transformations). x64 is turned on
inside each test only, so the other test files of a worker are unaffected.
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import wsjax
from wsjax import evaluation, objectives, phases, reweighted

SIZES = (6, 3, 2)


def _setup():
    params = wsjax.init(jax.random.key(0), SIZES, init_scale=0.5)
    params = jax.tree.map(lambda x: x.astype(jnp.float64), params)
    u = jnp.asarray(np.random.default_rng(0).integers(0, 2, (4, SIZES[0])), jnp.float64)
    return params, u


def _bundle_step(algo):
    def call(params, u):
        state = algo.init(params, algo.default_hyperparams(learning_rate=0.1))
        return algo.step(jax.random.key(1), state, u)
    return call


def _rws_half_insomnia(params, u):
    algo = wsjax.rws(optax.adam, num_samples=3)
    state = algo.init(params, algo.default_hyperparams(learning_rate=0.01, insomnia=0.5))
    return algo.step(jax.random.key(1), state, u)


K = jax.random.key
CALLS = {
    "log_joint": lambda p, u: wsjax.log_joint(p, u[0], (u[0, :3], u[0, :2])),
    "log_recognition": lambda p, u: wsjax.log_recognition(p, u[0], (u[0, :3], u[0, :2])),
    "sample_generative": lambda p, u: wsjax.sample_generative(K(0), p),
    "sample_recognition": lambda p, u: wsjax.sample_recognition(K(0), p, u[0]),
    "to_matrices": lambda p, u: wsjax.to_matrices({**p, "generative": p["generative"][:1],
                                                  "recognition": p["recognition"][:1],
                                                  "prior": {"b": p["generative"][0]["b"][:3]}}),
    "wake_step": lambda p, u: wsjax.wake_step(K(0), p, u, 0.1),
    "sleep_step": lambda p, u: wsjax.sleep_step(K(0), p, 0.1, 4),
    "rws_step": lambda p, u: wsjax.rws_step(K(0), p, u, 0.1, 3, insomnia=0.5),
    "rws_step_insomnia_1": lambda p, u: wsjax.rws_step(K(0), p, u, 0.1, 3),
    "wake_sleep_bundle": _bundle_step(wsjax.wake_sleep(optax.sgd)),
    "wake_sleep_sequential": _bundle_step(wsjax.wake_sleep(optax.adam, sequential=True)),
    "rws_bundle": _rws_half_insomnia,
    "wake_loss": lambda p, u: wsjax.wake_loss(p, u, phases.wake_samples(K(0), p, u)),
    "sleep_loss": lambda p, u: wsjax.sleep_loss(p, *phases.sleep_samples(K(0), p, 4)),
    "rws_grads": lambda p, u: reweighted.rws_grads(K(0), p, u, 3, 0.5),
    "activity_grads": lambda p, u: phases.activity_grads(
        p, u, phases.wake_samples(K(0), p, u), 0.2, 0.8),
    "log_weights": lambda p, u: objectives.log_weights(K(0), p, u, 3),
    "elbo": lambda p, u: wsjax.elbo(K(0), p, u, 3),
    "estimate_log_prob": lambda p, u: wsjax.estimate_log_prob(K(0), p, u, 7, chunk_size=3),
    "exact_log_prob": lambda p, u: wsjax.exact_log_prob(p, u),
    "exact_kl_bits": lambda p, u: wsjax.exact_kl_bits(p, u, jnp.full((4,), 0.25)),
    "heldout_log_prob": lambda p, u: evaluation.heldout_log_prob(K(0), p, u, 3),
}


# Run for their numbers; the rest are traced (what failed under x64 fails at trace time).
RUN = ("rws_bundle", "rws_step", "exact_log_prob", "estimate_log_prob", "heldout_log_prob")


@pytest.mark.parametrize("name", sorted(CALLS))
def test_public_functions_run_on_float64_machines(name):
    with jax.enable_x64(True):
        params, u = _setup()
        if name in RUN:
            out = CALLS[name](params, u)
            finite = [np.all(np.isfinite(x)) for x in jax.tree.leaves(out)
                      if jnp.issubdtype(x.dtype, jnp.floating) and x.ndim]
            assert all(finite), name
        else:
            out = jax.eval_shape(CALLS[name], params, u)
        floats = [x for x in jax.tree.leaves(out)
                  if hasattr(x, "dtype") and jnp.issubdtype(x.dtype, jnp.floating)]
        assert floats, name
        # What is computed from the float64 machine stays float64 (samples are 0/1 data).
        if name not in ("sample_generative", "sample_recognition"):
            assert any(x.dtype == jnp.float64 for x in floats), name


def test_a_float64_trainer_and_sweep_run_under_x64():
    with jax.enable_x64(True):
        bars = wsjax.tasks.bars()
        config = wsjax.TrainConfig(layer_sizes=(16, 3, 1), num_steps=4, batch_size=5,
                                   sampler=bars.sampler, eval_every=2, eval_fn=bars.eval_fn)
        trainer = wsjax.make_train(config, wsjax.rws(optax.sgd, num_samples=2))
        points = wsjax.grid(trainer.default_hyperparams(insomnia=0.5),
                            {"learning_rate": [0.1, 0.2]})
        state, metrics = wsjax.sweep(trainer)(jax.random.split(K(0), 2), points)
        assert metrics["kl_bits"].shape == (2, 2, 2)
        assert np.all(np.isfinite(metrics["kl_bits"]))
