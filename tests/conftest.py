"""Shared by the subprocess tests: one persistent compilation cache for the whole session.

Every experiment run in a subprocess pays JAX's start-up and compiles its programs;
runs of the same program (the same small sweep on one device, resumed, refused,
overwritten) share compiled executables through this cache, which is empty at the
start of every session, so nothing carries over between sessions.
"""

import os
import subprocess
import sys

# The tests in this process compile dozens of small programs; LLVM's cheap passes take a
# quarter off the time and no property checked here depends on them (every equality compares
# programs compiled alike). The experiments run in subprocesses keep the default compiler.
# Set before JAX is imported by any test module; an XLA_FLAGS of the caller's own is kept.
os.environ.setdefault("XLA_FLAGS", "--xla_backend_optimization_level=0 "
                                   "--xla_llvm_disable_expensive_passes=true")

import pytest  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="session")
def compile_cache(tmp_path_factory):
    return str(tmp_path_factory.mktemp("jax_cache"))


@pytest.fixture(scope="session")
def run_module(compile_cache):
    """run_module(module, *args, devices=1, timeout=300, check=True, fast_compile=True).

    ``devices`` is the XLA host device count of the subprocess, or None for none named.

    ``fast_compile`` compiles as the in-process tests do (most subprocess runs are dominated
    by compilation); the tests of bitwise reproducibility across layouts, devices and
    processes pass False, so that they hold XLA's default compiler to the guarantee.
    """

    def env(devices=1, fast_compile=True):
        out = dict(os.environ, PYTHONPATH=ROOT, JAX_PLATFORMS="cpu",
                   JAX_COMPILATION_CACHE_DIR=compile_cache,
                   JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
                   JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="0")
        # devices=None names no device count, as a user's XLA_FLAGS would not.
        flags = [] if devices is None else [f"--xla_force_host_platform_device_count={devices}"]
        if fast_compile:
            flags += ["--xla_backend_optimization_level=0",
                      "--xla_llvm_disable_expensive_passes=true"]
        out["XLA_FLAGS"] = " ".join(flags)
        return out

    def run(module, *args, devices=1, timeout=300, check=True, fast_compile=True):
        proc = subprocess.run([sys.executable, "-m", module, *args], cwd=ROOT,
                              env=env(devices, fast_compile),
                              capture_output=True, text=True, timeout=timeout)
        if check:
            assert proc.returncode == 0, proc.stderr[-4000:]
        return proc

    run.env = env
    return run
