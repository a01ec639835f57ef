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


def check_data(x, name: str, batched: bool = True):
    """Concrete data checked as 0/1 and finite, as float32; a tracer is passed through.

    Args:
      x: a batch [batch, n] (``batched``) or one example [n].
      name: what the data is called in the error.
      batched: whether a leading batch axis is expected.

    Raises:
      ValueError: naming the shape, the non-binary or non-finite values and where they are.
    """
    if is_traced(x):
        return x
    if not batched:
        if np.ndim(x) != 1:
            raise ValueError(f"{name} must be one example, a vector [n_visible], got shape "
                             f"{np.shape(x)}")
        return check_data(np.asarray(x)[None], name)[0]
    arr = validate_binary(x, name)
    return x if isinstance(x, jax.Array) and x.dtype == jnp.float32 else jnp.asarray(arr)


def check_rate(x, name: str):
    """A concrete learning rate, a finite non-negative scalar, as float32; a tracer passes.

    One dtype for every concrete rate (a Python float, ``np.float32(0.1)``, an array) means one
    compiled program for all of them.

    Raises:
      TypeError: for a value that is not a number.
      ValueError: for a rate that is not a scalar, not finite or negative, naming it.
    """
    if is_traced(x):
        return x
    try:
        arr = np.asarray(x, np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a number, got {x!r}") from None
    if arr.ndim != 0:
        raise ValueError(f"{name} must be a scalar (one rate for every param this step "
                         f"updates), got shape {arr.shape}: {arr.tolist()}")
    if not np.isfinite(arr) or arr < 0:
        raise ValueError(f"{name} must be a finite, non-negative scalar, got {x!r}")
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


def public(*, static_argnames=(), data=(), examples=(), rates=(), inline=False):
    """Decorate a pure function: compile it once per shape, check its concrete inputs.

    Args:
      static_argnames: arguments that fix shapes or program structure (hashable).
      data: arguments that are batches of 0/1 data [batch, n].
      examples: arguments that are one example of 0/1 data [n].
      rates: arguments that are learning rates.
      inline: see :func:`entry_point` (the building blocks that other functions call
        inside their own programs pass True).
    """

    def check(arguments):
        for name in data:
            if name in arguments:
                arguments[name] = check_data(arguments[name], name)
        for name in examples:
            if name in arguments:
                arguments[name] = check_data(arguments[name], name, batched=False)
        for name in rates:
            if name in arguments:
                arguments[name] = check_rate(arguments[name], name)

    def decorate(fn):
        return entry_point(fn, check=check, static_argnames=static_argnames, inline=inline)

    return decorate


def entry_point(fn, *, check=None, static_argnames=(), inline=True, name=None, doc=None):
    """``fn`` as a public entry point: compiled once per shape, concrete inputs checked.

    Every call first runs ``check(arguments)`` (the bound arguments as a dict, which
    it may update in place, e.g. a numpy batch made float32), where each check
    passes tracers through and checks concrete values. Then, with every argument
    concrete (an eager call from a notebook), the jit-compiled ``fn`` runs, so a
    repeated call costs about what the same call under an explicit ``jax.jit``
    costs. With a tracer anywhere in the arguments (inside the caller's ``jit``,
    ``vmap``, ``grad`` or ``scan``), ``fn`` itself is traced when ``inline`` (no
    nested program: the caller's program is what it would be without the wrapper),
    else its ``jax.jit`` is called, as a nested program.

    Args:
      fn: a pure function.
      check: ``(arguments: dict) -> None``, run on every call.
      static_argnames: arguments that fix shapes or program structure (hashable).
      inline: trace ``fn`` itself inside the caller's transformations.
      name, doc: the wrapper's ``__name__`` and ``__doc__`` (default: ``fn``'s).

    Returns:
      The wrapper; ``wrapper.uncompiled`` is ``fn`` and ``wrapper.compiled`` its
      ``jax.jit`` (whose cache shows what was compiled).
    """
    jitted = jax.jit(fn, static_argnames=static_argnames)
    signature = inspect.signature(fn)

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            bound = signature.bind(*args, **kwargs)
        except TypeError as e:
            raise TypeError(f"{wrapper.__name__}{signature}: {e}") from None
        if check is not None:
            check(bound.arguments)
        if inline and is_traced([v for k, v in bound.arguments.items()
                                 if k not in static_argnames]):
            return fn(*bound.args, **bound.kwargs)
        return jitted(*bound.args, **bound.kwargs)

    if name is not None:
        wrapper.__name__ = wrapper.__qualname__ = name
    if doc is not None:
        wrapper.__doc__ = doc
    wrapper.uncompiled = fn  # the pure function, for callers that trace it themselves
    wrapper.compiled = jitted  # its jax.jit, whose cache shows what was compiled
    return wrapper
