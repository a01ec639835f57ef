"""How the public functions meet their callers: compiled once, checked at the boundary.

:func:`public` turns a pure function into one that is jit-compiled once per
shape and static setting (so an eager call from a notebook costs about what the
same call under an explicit ``jax.jit`` costs) and that validates the arguments
it is told are data or rates whenever they are concrete values. Inside a
caller's ``jit``, ``vmap``, ``grad`` or ``scan`` the arguments are tracers and
pass unchecked: traced data is the caller's to check (``wsjax.validate_binary``
on the host, before the program).
"""

from __future__ import annotations

import functools
import inspect

import jax
import jax.numpy as jnp
import numpy as np

from wsjax.data import validate_binary


def is_traced(x) -> bool:
    """True if any leaf of ``x`` is a tracer (the call happens inside a transformation)."""
    return any(isinstance(leaf, jax.core.Tracer) for leaf in jax.tree.leaves(x))


def check_data(x, name: str):
    """A concrete batch [batch, n] of 0/1 values, checked; a tracer is passed through.

    Raises:
      ValueError: naming the shape, the non-binary or non-finite values and where they are.
    """
    if is_traced(x):
        return x
    arr = validate_binary(x, name)
    return x if isinstance(x, jax.Array) and x.dtype == jnp.float32 else jnp.asarray(arr)


def check_rate(x, name: str):
    """A concrete learning rate (scalar or pair), checked finite and non-negative, as float32.

    One dtype for every concrete rate (a Python float, ``np.float32(0.1)``, an array) means one
    compiled program for all of them.
    """
    if is_traced(x):
        return x
    arr = np.asarray(x, np.float64)
    if arr.ndim > 1 or not np.all(np.isfinite(arr)) or np.any(arr < 0):
        raise ValueError(f"{name} must be a finite, non-negative scalar (or pair), got {x!r}")
    return jnp.asarray(arr, jnp.float32)


def check_positive_int(x, name: str) -> int:
    """``x`` as an int if it is a positive integer (``np.int64(3)`` and ``3.0`` pass, 2.5 not)."""
    if isinstance(x, bool) or np.ndim(x) != 0:
        raise ValueError(f"{name} must be a positive integer, got {x!r}")
    try:
        value = int(x)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a positive integer, got {x!r}") from None
    if value != x or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {x!r}")
    return value


def public(*, static_argnames=(), data=(), rates=()):
    """Decorate a pure function: compile it once per shape, check its concrete inputs.

    Args:
      static_argnames: arguments that fix shapes or program structure (hashable).
      data: arguments that are batches of 0/1 data [batch, n].
      rates: arguments that are learning rates.
    """

    def decorate(fn):
        jitted = jax.jit(fn, static_argnames=static_argnames)
        signature = inspect.signature(fn)

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            bound = signature.bind(*args, **kwargs)
            for name in data:
                if name in bound.arguments:
                    bound.arguments[name] = check_data(bound.arguments[name], name)
            for name in rates:
                if name in bound.arguments:
                    bound.arguments[name] = check_rate(bound.arguments[name], name)
            return jitted(*bound.args, **bound.kwargs)

        wrapper.uncompiled = fn  # the pure function, for callers that trace it themselves
        wrapper.compiled = jitted  # its jax.jit, whose cache shows what was compiled
        return wrapper

    return decorate
