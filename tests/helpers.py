"""Shared fixtures: small machines with random (non-trivial) params."""

import itertools

import jax
import numpy as np

import wsjax


def random_machine(seed, layer_sizes, scale=1.0):
    """A machine whose every weight and bias is N(0, scale^2): far from the zero init."""
    params = wsjax.init(jax.random.key(seed), layer_sizes)
    leaves, treedef = jax.tree.flatten(params)
    keys = jax.random.split(jax.random.key(seed + 1000), len(leaves))
    leaves = [scale * jax.random.normal(k, l.shape, l.dtype) for k, l in zip(keys, leaves)]
    return jax.tree.unflatten(treedef, leaves)


def all_configs(n):
    """Every 0/1 vector of length n, [2**n, n] numpy float64, bit i = unit i."""
    return np.array([[(i >> j) & 1 for j in range(n)] for i in range(2**n)], np.float64)


def numpy_matrices(params):
    """The params of a machine as lists of float64 numpy arrays: prior b, gen (w, b), rec (w, b)."""
    f = lambda a: np.asarray(a, np.float64)
    prior = f(params["prior"]["b"])
    gen = [(f(l["w"]), f(l["b"])) for l in params["generative"]]
    rec = [(f(l["w"]), f(l["b"])) for l in params["recognition"]]
    return prior, gen, rec


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def bern_logp(p, x):
    return np.sum(x * np.log(p) + (1 - x) * np.log1p(-p))


def naive_log_prob(params, u):
    """log p(u) by a plain Python loop over every hidden configuration, in float64."""
    prior, gen, _ = numpy_matrices(params)
    sizes = [gen[0][0].shape[0]] + [w.shape[1] for w, _ in gen]
    total = 0.0
    for hs in itertools.product(*[all_configs(n) for n in sizes[1:]]):
        layers = [np.asarray(u, np.float64), *hs]
        logp = bern_logp(sigmoid(prior), layers[-1])
        for l, (w, b) in enumerate(gen):
            logp += bern_logp(sigmoid(w @ layers[l + 1] + b), layers[l])
        total += np.exp(logp)
    return np.log(total)
