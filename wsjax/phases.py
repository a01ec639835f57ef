r"""The classic wake and sleep phases as pure SGD steps on sampled cross-entropies.

For a machine with one hidden layer (Dayan & Abbott's notation) one step is

* wake, u from the data and v ~ Q(v|u):
  ``g += e (v - f(g))``, ``h += e (u - f(h + G v))``, ``G += e (u - f(h + G v)) v^T``
* sleep, v ~ P(v) and u ~ P(u|v):
  ``w += e (v - f(w + W u))``, ``W += e (v - f(w + W u)) u^T``

averaged over the batch; deeper machines apply the same rule to every layer.

References:
  Hinton, Dayan, Frey & Neal (1995), The wake-sleep algorithm for unsupervised
  neural networks. Science 268, 1158-1161.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from wsjax._api import check_positive_int, public
from wsjax.layers import SBN, Conditional, conditional
from wsjax.model import (
    check_visible,
    generative_params,
    layer_sizes,
    recognition_params,
    sample_down,
    sample_up,
)
from wsjax.objectives import sleep_loss, wake_loss

__all__ = ["wake_samples", "sleep_samples", "wake_grads", "sleep_grads", "activity_grads",
           "wake_step", "sleep_step"]


def wake_samples(key: jax.Array, params: dict, u: jax.Array, conditionals: Conditional = SBN()):
    """Recognition samples for a batch: (h_1 [batch, n_1], ..., h_L [batch, n_L]).

    One key split per layer (``wsjax.model.sample_up``).
    """
    check_visible(params, u, conditionals, batched=True)
    return sample_up(key, params, u, conditionals)


def sleep_samples(key: jax.Array, params: dict, batch_size: int,
                  conditionals: Conditional = SBN()):
    """Dream ``batch_size`` (static) examples: (u [batch, n_0], (h_1, ..., h_L)).

    One key split per layer (``wsjax.model.sample_down``).
    """
    layer_sizes(params, conditionals)  # a malformed machine fails here, with a message
    return sample_down(key, params, check_positive_int(batch_size, "batch_size"), conditionals)


def _merge(params, part):
    return {**params, **part}


def wake_grads(key: jax.Array, params: dict, u: jax.Array, conditionals: Conditional = SBN(),
               *, return_samples: bool = False):
    """Gradient of the wake loss in the generative half, at fresh recognition samples.

    Args:
      key: PRNG key.
      params: the machine.
      u: data [batch, n_visible] of 0/1.
      conditionals: the conditional(s).
      return_samples: also return the recognition samples the gradient was taken at
        (static; the algorithms' activity term reads them).

    Returns:
      (grads, loss), or (grads, loss, hs) with ``return_samples``: grads has the
      structure of ``generative_params(params)`` (``{"prior", "generative"}``) and
      equals minus the batch-averaged wake delta rule; hs = (h_1 [batch, n_1], ...).
    """
    u = jnp.asarray(u, jnp.float32)
    hs = wake_samples(key, params, u, conditionals)
    loss_fn = lambda gen: wake_loss(_merge(params, gen), u, hs, conditionals)
    loss, grads = jax.value_and_grad(loss_fn)(generative_params(params))
    return (grads, loss, hs) if return_samples else (grads, loss)


def sleep_grads(key: jax.Array, params: dict, batch_size: int, conditionals: Conditional = SBN()):
    """Gradient of the sleep loss in the recognition half, at fresh dreams.

    Returns:
      (grads, loss): grads has the structure of ``recognition_params(params)``
      (``{"recognition"}``) and equals minus the batch-averaged sleep delta rule.
    """
    u, hs = sleep_samples(key, params, batch_size, conditionals)
    loss_fn = lambda rec: sleep_loss(_merge(params, rec), u, hs, conditionals)
    loss, grads = jax.value_and_grad(loss_fn)(recognition_params(params))
    return grads, loss


def activity_grads(params: dict, u: jax.Array, hs, floor, ceiling=1.0,
                   conditionals: Conditional = SBN()):
    r"""A pseudo-gradient that holds each recognition unit's mean activity within bounds.

    A hidden unit that the recognition model never turns on gets no wake-phase
    update of its generative weights (they are multiplied by its state), and no
    dream shows it on, so the sleep phase keeps it off: it stays dead; a unit
    that is always on is a second bias. This term is the sparsity target of
    Hinton's guide to training RBMs (2010, section 11) with a band in place of
    the target: for recognition layer l and each unit j whose mean probability
    :math:`\bar q_j` over the inputs falls below ``floor`` (above ``ceiling``),
    the unit's total input gets :math:`c_j = \bar q_j - \text{floor}`
    (:math:`\bar q_j - \text{ceiling}`), and 0 inside the band. That is the
    guide's derivative of the cross-entropy between the bound and the mean
    activity with respect to the total input, in which the sigmoid's slope
    cancels, so a dead unit still gets a full-sized push. ``floor = ceiling =
    p`` is the guide's target p; ``ceiling = 1`` only revives dead units. The
    guide averages :math:`\bar q` over past batches; here it is the mean over
    this batch. It is handed to the conditional's params as the vector-Jacobian
    product of the logits at the mean input :math:`\bar x`, which for the
    affine conditional is the guide's rule (``b`` gets :math:`c` and ``w`` gets
    :math:`c\,\bar x^T`) at the cost of one row; for another logits function it
    is that rule's linearisation at :math:`\bar x`, not the mean of per-example
    products. For an autoregressive kind (DARN, NADE) a unit's probability is
    taken at the layer's own samples (teacher-forced), and ``c`` is handed to
    the mean of the logits over the rows. A step ``params - lr * grads`` raises
    the logits of units below the floor and lowers those above the ceiling.

    Args:
      params: the machine.
      u: data [batch, n_visible].
      hs: recognition samples at ``u`` from ``sample_up``, (h_1, ..., h_L), each
        [batch, n_l] or [batch, K, n_l] (then every sample counts once).
      floor, ceiling: the band of mean probabilities left alone, scalars or one per layer
        [L] (may be traced).
      conditionals: the kinds of layer (:class:`wsjax.layers.Conditionals`, or one for all).

    Returns:
      grads with the structure of ``recognition_params(params)`` (``{"recognition"}``).

    Raises:
      ValueError: at trace time, if ``u`` or ``hs`` do not fit the machine.
    """
    check_visible(params, u, conditionals, batched=True)
    sizes = layer_sizes(params, conditionals)
    hs = tuple(hs)
    if len(hs) != len(sizes) - 1 or any(
            jnp.shape(h)[0] != jnp.shape(u)[0] or jnp.shape(h)[-1] != n
            for h, n in zip(hs, sizes[1:])):
        raise ValueError(f"hs must be one sample per hidden layer, [batch, n_l] or [batch, K, "
                         f"n_l] with batch {jnp.shape(u)[0]} and n_l of layer_sizes {sizes}, "
                         f"got shapes {[jnp.shape(h) for h in hs]}")
    inputs = (jnp.asarray(u, jnp.float32), *hs[:-1])
    num_layers = len(params["recognition"])
    floor, ceiling = (jnp.broadcast_to(jnp.asarray(v, jnp.float32), (num_layers,))
                      for v in (floor, ceiling))
    grads = []
    for l, layer in enumerate(params["recognition"]):
        kind = conditional(conditionals, "recognition", l)
        x = jnp.reshape(inputs[l], (-1, inputs[l].shape[-1]))
        if kind.factorial:
            q_mean = jnp.mean(jax.nn.sigmoid(kind.logits(layer, x)), axis=0)
            logits_at_mean = lambda p, kind=kind, x=x: kind.logits(
                p, jnp.mean(x, axis=0, keepdims=True))
        else:  # the units' conditionals at the layer's own samples, teacher-forced
            y = jnp.reshape(hs[l], (-1, hs[l].shape[-1]))
            x = jnp.repeat(x, y.shape[0] // x.shape[0], axis=0)
            q_mean = jnp.mean(jax.nn.sigmoid(kind.logits(layer, x, y)), axis=0)
            logits_at_mean = lambda p, kind=kind, x=x, y=y: jnp.mean(
                kind.logits(p, x, y), axis=0, keepdims=True)
        c = jnp.minimum(q_mean - floor[l], 0.0) + jnp.maximum(q_mean - ceiling[l], 0.0)
        _, vjp = jax.vjp(logits_at_mean, layer)
        grads.append(vjp(jax.lax.stop_gradient(c)[None])[0])
    return {"recognition": tuple(grads)}


def _sgd(part, grads, learning_rate):
    return jax.tree.map(lambda p, g: p - learning_rate * g, part, grads)


@public(static_argnames=("conditionals",), data=("u",), rates=("learning_rate",))
def wake_step(
    key: jax.Array, params: dict, u: jax.Array, learning_rate, *, conditionals: Conditional = SBN()
) -> dict:
    """One wake phase: the delta rule on every generative conditional and the prior.

    Args:
      key: PRNG key for the recognition samples.
      params: the machine.
      u: a batch of data [batch, n_visible] of 0/1.
      learning_rate: scalar step size e (may be traced).

    Returns:
      New params; the recognition half is returned unchanged.

    Compiled once per shape (an eager call costs what a jitted one does);
    concrete data and rates are checked (0/1 data, finite non-negative rate).
    """
    grads, _ = wake_grads(key, params, u, conditionals)
    return _merge(params, _sgd(generative_params(params), grads, learning_rate))


@public(static_argnames=("batch_size", "conditionals"), rates=("learning_rate",))
def sleep_step(
    key: jax.Array, params: dict, learning_rate, batch_size: int, *,
    conditionals: Conditional = SBN(),
) -> dict:
    """One sleep phase: dream ``batch_size`` examples, then the delta rule on recognition.

    Args:
      key: PRNG key for the dreams.
      params: the machine.
      learning_rate: scalar step size e (may be traced).
      batch_size: number of dreams (static positive int).

    Returns:
      New params; the generative half is returned unchanged.
    """
    grads, _ = sleep_grads(key, params, batch_size, conditionals)
    return _merge(params, _sgd(recognition_params(params), grads, learning_rate))
