"""Shared by the tests: cheaper compiler settings, and experiment runs in processes of their own.

Each experiment command runs as a process of its own, forked from a server that has already
imported JAX and the kit (tests/forkserver.py), so that the sixty-odd commands of the suite
do not each pay those imports. Runs of the same program (the same small sweep on one device,
resumed, refused, overwritten) share compiled executables through one persistent compilation
cache, which is empty at the start of every session, so nothing carries over between sessions.
"""

import json
import os
import select
import signal
import subprocess
import sys
import time

# The tests compile hundreds of small programs, and compilation is most of their time. Three
# XLA settings make it cheaper: no backend optimization, LLVM's cheap passes only, and XLA's
# older loop emitters for fused elementwise code in place of its MLIR fusion emitters (the
# last takes the compile time of tests/test_algorithms.py and tests/test_reweighted.py, run
# in one process, from 38 s to 17 s).
# No property checked here depends on them: every equality compares programs compiled alike,
# and the tests of bitwise reproducibility run their subprocesses with XLA's defaults.
# Set before JAX is imported by any test module; an XLA_FLAGS of the caller's own is kept.
FAST_COMPILE = ["--xla_backend_optimization_level=0", "--xla_llvm_disable_expensive_passes=true",
                "--xla_cpu_use_fusion_emitters=false"]
os.environ.setdefault("XLA_FLAGS", " ".join(FAST_COMPILE))

import pytest  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="session")
def compile_cache(tmp_path_factory):
    return str(tmp_path_factory.mktemp("jax_cache"))


class _ForkServer:
    """The client of one tests/forkserver.py process (one environment, XLA_FLAGS aside)."""

    def __init__(self, env, workdir):
        self.workdir, self.count = workdir, 0
        self.proc = subprocess.Popen([sys.executable, "-m", "tests.forkserver"], cwd=ROOT,
                                     env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self.pending = b""
        assert self._message(timeout=120) == {"ready": True}

    def _message(self, timeout):
        """The next line the server prints, as JSON; None if none came within ``timeout`` s."""
        deadline = time.monotonic() + timeout
        while b"\n" not in self.pending:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.proc.stdout], [], [], left)[0]:
                return None
            chunk = os.read(self.proc.stdout.fileno(), 4096)
            if not chunk:
                raise RuntimeError(f"the fork server ended (status {self.proc.wait()})")
            self.pending += chunk
        line, self.pending = self.pending.split(b"\n", 1)
        return json.loads(line)

    def run(self, module, args, env, timeout):
        self.count += 1
        out, err = (os.path.join(self.workdir, f"{self.count}.{name}") for name in ("out", "err"))
        request = dict(module=module, args=list(args), env=env, cwd=ROOT, stdout=out, stderr=err)
        self.proc.stdin.write(json.dumps(request).encode() + b"\n")
        self.proc.stdin.flush()
        pid = self._message(timeout=60)["pid"]
        done = self._message(timeout)
        if done is None:
            os.kill(pid, signal.SIGKILL)
            self._message(timeout=60)
        with open(out) as f_out, open(err) as f_err:
            stdout, stderr = f_out.read(), f_err.read()
        command = [sys.executable, "-m", module, *args]
        if done is None:
            raise subprocess.TimeoutExpired(command, timeout, stdout, stderr)
        return subprocess.CompletedProcess(command, done["returncode"], stdout, stderr)

    def close(self):
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


@pytest.fixture(scope="session")
def run_module(compile_cache, tmp_path_factory):
    """run_module(module, *args, devices=1, timeout=300, check=True, fast_compile=True, env=None).

    Runs ``python -m module *args`` in a process of its own and returns its
    ``subprocess.CompletedProcess``. The process is forked from a server that has already
    imported JAX and the kit (tests/forkserver.py): the command runs as a user's would,
    without paying those imports each time. The tests of Ctrl-C, of a killed run and of
    several processes start ``python -m`` themselves, with ``run_module.env(...)``.

    ``devices`` is the XLA host device count of the subprocess, or None for none named.

    ``fast_compile`` compiles as the in-process tests do (most subprocess runs are dominated
    by compilation); the tests of bitwise reproducibility across layouts, devices and
    processes pass False, so that they hold XLA's default compiler to the guarantee.

    ``env`` replaces ``run_module.env(devices, fast_compile)`` as the whole environment.
    """
    servers = {}

    def env(devices=1, fast_compile=True):
        out = dict(os.environ, PYTHONPATH=ROOT, JAX_PLATFORMS="cpu",
                   JAX_COMPILATION_CACHE_DIR=compile_cache,
                   JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
                   JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="0")
        # devices=None names no device count, as a user's XLA_FLAGS would not.
        flags = [] if devices is None else [f"--xla_force_host_platform_device_count={devices}"]
        if fast_compile:
            flags += FAST_COMPILE
        out["XLA_FLAGS"] = " ".join(flags)
        return out

    def run(module, *args, devices=1, timeout=300, check=True, fast_compile=True, env=None):
        env = run.env(devices, fast_compile) if env is None else env
        # One server per environment, less what its children may change: XLA_FLAGS and
        # pytest's own variables (PYTEST_CURRENT_TEST names each test).
        key = tuple(sorted((k, v) for k, v in env.items()
                           if k != "XLA_FLAGS" and not k.startswith("PYTEST_")))
        if key not in servers:
            servers[key] = _ForkServer(env, str(tmp_path_factory.mktemp("forked")))
        proc = servers[key].run(module, args, env, timeout)
        if check:
            assert proc.returncode == 0, proc.stderr[-4000:]
        return proc

    run.env = env
    yield run
    for server in servers.values():
        server.close()
