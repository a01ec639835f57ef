"""A Python with the kit already imported, that runs each experiment in a process of its own.

The tests run about sixty experiment commands, and each fresh interpreter spends over a
second importing JAX and the kit before it reads its flags. This server imports them
once, then forks one child per request: the child takes the request's environment,
working directory and arguments, points its standard streams at the request's files,
and runs the module as ``python -m`` does (``runpy``, as ``__main__``). It exits as
that command would, through the interpreter's own shutdown, and the server answers
with its exit status (negative: killed by that signal, as ``subprocess`` reports it).

Only what is read when a backend starts may differ from the server's environment:
``XLA_FLAGS`` (the device count, the compiler settings). JAX reads its other settings
when it is imported, so a request with another environment needs its own server
(``tests/conftest.py`` keeps one per environment). Nothing here starts a backend or a
thread before forking.

Protocol, one JSON object per line: the server prints ``{"ready": true}`` once its
imports are done; a request ``{"module", "args", "env", "cwd", "stdout", "stderr"}`` on
its standard input is answered with ``{"pid": ...}`` at the fork and
``{"returncode": ...}`` when the child has ended. End of input ends the server.
"""

import importlib
import json
import os
import runpy
import sys

# Every experiment imports experiments.common (and through it JAX, optax and the kit);
# figures (matplotlib, with the Agg backend wsjax.plotting picks outside notebooks) are
# imported when first used. Not orbax: it defines absl flags, which a run would then list
# in its flags.txt.
PRELOAD = ("jax", "experiments.common", "matplotlib.pyplot")


def _preload() -> None:
    import matplotlib

    matplotlib.use("Agg")
    for name in PRELOAD:
        importlib.import_module(name)


def _child(request: dict, channel) -> None:
    """Become the request's process: its environment, directory, streams and arguments."""
    channel.close()
    os.environ.clear()
    os.environ.update(request["env"])
    os.chdir(request["cwd"])
    for fd, path, flags in ((0, os.devnull, os.O_RDONLY),
                            (1, request["stdout"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC),
                            (2, request["stderr"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC)):
        opened = os.open(path, flags, 0o644)
        os.dup2(opened, fd)
        os.close(opened)
    sys.argv = [request["module"], *request["args"]]  # runpy puts the module's path first
    runpy.run_module(request["module"], run_name="__main__", alter_sys=True)


def main() -> None:
    _preload()
    channel = os.fdopen(os.dup(1), "w", buffering=1)
    requests = os.fdopen(os.dup(0), "r")
    channel.write(json.dumps({"ready": True}) + "\n")
    for line in requests:
        request = json.loads(line)
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            requests.close()
            # Returns (or raises SystemExit) into the interpreter's shutdown, as `python -m`.
            return _child(request, channel)
        channel.write(json.dumps({"pid": pid}) + "\n")
        _, status = os.waitpid(pid, 0)
        channel.write(json.dumps({"returncode": os.waitstatus_to_exitcode(status)}) + "\n")


if __name__ == "__main__":
    main()
