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


def test_the_kinds_suite_times_each_kind_against_the_sbn_step():
    rows = benchmark.kinds_measure((6, 4), batch=4, num_samples=2, scan_steps=2, rounds=1,
                                   nade_hidden=3)
    assert [r["kind"] for r in rows] == ["sbn", "darn", "nade:3"]
    assert rows[0]["ratio_to_sbn"] == 1.0
    for r in rows:
        assert r["steps_per_s"] == pytest.approx(1e6 / r["step_us"])
        assert r["ratio_to_sbn"] == pytest.approx(rows[0]["step_us"] / r["step_us"])
        assert r["sample_us"] > 0 and r["log_probs_grad_us"] > 0
        assert r["sample_share_of_step"] == pytest.approx(r["sample_us"] / r["step_us"])


def test_measure_reports_every_implementation_as_a_ratio_to_the_minimal_one():
    # A 3-step scan of a 6-4 machine takes well under a millisecond: a measurement of at least
    # 0.05 s must call it many times over.
    rows = benchmark.measure((6, 4), "wake_sleep", batch=8, num_samples=2, scan_steps=3,
                             num_seeds=2, rounds=1, min_seconds=0.05, ceiling_size=64)
    assert [r["implementation"] for r in rows] == ["minimal", "contract", "bundle"]
    assert rows[0]["scan_steps_per_s_vs_minimal"] == 1.0
    for r in rows:
        assert set(r["calls_per_measurement"]) == {"scan", "sweep", "per_step"}
        assert r["calls_per_measurement"]["scan"] > 1
    for r in rows:
        assert r["scan_steps_per_s"] > 0 and r["sweep_steps_per_s"] > 0 and r["compile_s"] > 0
        assert r["matmul_flops_per_step"] == 6 * 2 * 8 * (6 * 4)
        assert r["examples_per_s"] == pytest.approx(8 * r["scan_steps_per_s"])
        # the ceiling timed in the same rounds, the fraction against it
        assert r["fraction_of_matmul_ceiling"] == pytest.approx(
            r["gflops"] / r["matmul_ceiling_gflops"])


def test_step_floors_time_the_steps_own_products_and_draws():
    for algorithm, sizes in (("wake_sleep", (6, 4, 3)), ("rws", (6, 4))):
        f = benchmark.step_floors(sizes, algorithm, batch=8, num_samples=2, scan_steps=3,
                                  rounds=1, ceiling_size=64)
        # The products are those matmul_flops counts: 6 per layer pair for wake-sleep (3 a
        # phase), 4 for RWS on the B*K rows.
        assert f["matmul_flops_per_step"] == benchmark.matmul_flops(sizes, 8, algorithm, 2)
        assert f["products"] == (6 if algorithm == "wake_sleep" else 4) * (len(sizes) - 1)
        # wake samples of the hidden layers, K per example for RWS; dreams of every layer for WS
        assert f["draws_per_step"] == (8 * (4 + 3) + 8 * (6 + 4 + 3) if algorithm == "wake_sleep"
                                       else 8 * 2 * 4)
        for name in ("products", "draws_exact", "draws_16bit", "draws_8bit"):
            assert f[f"{name}_us_per_step"] > 0
        assert f["products_fraction_of_ceiling"] == pytest.approx(
            f["products_gflops"] / f["matmul_ceiling_gflops"])


@pytest.mark.parametrize("bits", [8, 16])
def test_sliced_bernoulli_fires_with_the_quantized_probability(bits):
    # Each slice is uniform on 0 .. 2^bits - 1, so P(slice < q) = q / 2^bits exactly.
    probs = np.array([0.0, 0.001, 0.3, 0.5, 0.97])
    q = np.round(probs * 2**bits).astype(np.uint32)
    n = 40_000
    draws = jax.jit(lambda k: benchmark._sliced_bernoulli(k, jnp.asarray(np.repeat(q, n)), bits))(
        jax.random.key(0))
    freq = np.asarray(draws).reshape(len(probs), n).mean(1)
    want = q / 2**bits
    np.testing.assert_allclose(freq, want, atol=5 * np.sqrt(0.25 / n))
    assert freq[0] == 0.0
    if bits == 8:  # 0.001 < 2^-9 rounds to 0: the approximation never fires it
        assert q[1] == 0 and freq[1] == 0.0
