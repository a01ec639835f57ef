"""The benchmark's minimal implementation does the kit's math, and its measurements run."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import wsjax
from experiments import benchmark


def _saturated_machine(seed, sizes):
    """Zero weights and biases of +-30: every sample is certain, so any two samplers agree."""
    params = wsjax.init(jax.random.key(seed), sizes)
    rng = np.random.default_rng(seed)
    sign = lambda b: jnp.asarray(30.0 * rng.choice([-1.0, 1.0], b.shape), jnp.float32)
    return jax.tree.map(lambda x: sign(x) if x.ndim == 1 else x, params)


@pytest.mark.parametrize("algorithm", ["wake_sleep", "rws"])
def test_the_minimal_steps_equal_the_kits_steps_on_a_deterministic_machine(algorithm):
    params = _saturated_machine(0, (6, 4, 3))
    u = jnp.asarray(np.random.default_rng(1).integers(0, 2, (8, 6)), jnp.float32)
    impls = benchmark.implementations(algorithm, 3)
    results = {}
    for name, (init, step, get_params) in impls.items():
        results[name] = get_params(jax.jit(step)(jax.random.key(2), init(params), u))
    for name in ("contract", "bundle"):
        for a, b in zip(jax.tree.leaves(results["minimal"]), jax.tree.leaves(results[name])):
            np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    moved = [np.abs(a - b).max() for a, b in zip(jax.tree.leaves(results["minimal"]),
                                                 jax.tree.leaves(params))]
    assert max(moved) > 1e-3  # the step did something


def test_measure_reports_every_implementation_as_a_ratio_to_the_minimal_one():
    # A 3-step scan of a 6-4 machine takes well under a millisecond: a measurement of at least
    # 0.05 s must call it many times over.
    rows = benchmark.measure((6, 4), "wake_sleep", batch=8, num_samples=2, scan_steps=3,
                             num_seeds=2, rounds=1, min_seconds=0.05)
    assert [r["implementation"] for r in rows] == ["minimal", "contract", "bundle"]
    assert rows[0]["scan_steps_per_s_vs_minimal"] == 1.0
    for r in rows:
        assert set(r["calls_per_measurement"]) == {"scan", "sweep", "per_step"}
        assert r["calls_per_measurement"]["scan"] > 1
    for r in rows:
        assert r["scan_steps_per_s"] > 0 and r["sweep_steps_per_s"] > 0 and r["compile_s"] > 0
        assert r["matmul_flops_per_step"] == 6 * 2 * 8 * (6 * 4)
        assert r["examples_per_s"] == pytest.approx(8 * r["scan_steps_per_s"])
