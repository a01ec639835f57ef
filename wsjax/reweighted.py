r"""Reweighted wake-sleep: importance-weighted wake phases for both halves.

Classic wake-sleep trains the generative model on one recognition sample per
example, as if Q(h|u) were the posterior. Reweighted wake-sleep (RWS) draws K
samples :math:`h_k \sim Q(\cdot|u)` instead and weights them by their
self-normalised importance weights

.. math:: \tilde w_k = \frac{w_k}{\sum_{j} w_j}, \qquad
   w_k = \frac{P(u, h_k)}{Q(h_k | u)},

so that sums over the K samples estimate expectations under the true
posterior P(h|u), with a bias that vanishes as K grows. With the samples and
the weights held fixed, each update is a weighted delta rule:

* wake phase for P: :math:`\nabla_\theta \log p(u) \approx \sum_k \tilde w_k
  \nabla_\theta \log P(u, h_k)`, the gradient of the importance-weighted bound;
* wake phase for Q: :math:`\sum_k \tilde w_k \nabla_\phi \log Q(h_k | u)`,
  which estimates :math:`-\nabla_\phi \mathrm{KL}(P(\cdot|u) \,\|\, Q(\cdot|u))`,
  the inclusive divergence, taken on real data rather than on dreams;
* sleep phase for Q: the classic sleep delta rule on dreams (u, h) ~ P, unchanged.

The recognition update mixes the last two as
``insomnia * wake_q + (1 - insomnia) * sleep``: 1 is pure wake-phase Q updates,
0 is the classic sleep phase, values between mix the two (the paper also
trains Q with both phases).
With K = 1 the weights are exactly 1 and the wake phase for P is the classic
wake delta rule.

Key use: :func:`rws_grads` and :func:`rws_step` split their key once,
``wake_key, sleep_key = jax.random.split(key)``. The K importance samples are
those of ``log_weights(wake_key, params, u, K)`` (one key per layer for the
whole [batch, K] block, ``wsjax.model.sample_up``), which for K = 1 are the
very samples ``wake_samples(wake_key, params, u)`` draws; the dreams are those
of ``sleep_samples(sleep_key, params, sleep_batch_size)``, as in
``sleep_step(sleep_key, ...)``. So with K = 1 and insomnia = 0 one
:func:`rws_step` does the arithmetic of a classic wake step with ``wake_key``
and a sleep step with ``sleep_key``, both taken from the same starting params
(the simultaneous update of ``wsjax.wake_sleep``), equal up to float rounding
since XLA compiles and fuses the two programs differently.
The wake samples are not drawn from ``key`` itself, so that no stream is used twice.

**Defensive importance sampling** (Le, Kosiorek, Siddharth, Teh & Wood 2019):
with the hyperparameter ``defensive`` = d > 0 the K samples are drawn from the
proposal (1 - d) Q + d Uniform over each hidden layer
(``wsjax.model.sample_up(..., defensive=d)``) and weighted against its density
(:func:`wsjax.model.log_defensive`), so that a poor recognition model cannot
starve the generative update. The updates keep their targets: the weighted
gradients still estimate those of log p(u) and of -KL(P(h|u) || Q), the Q update
with the gradient of log Q, not of the mixture. With insomnia 1 this is
defensive wake-wake. At d = 0 the samples are exactly plain RWS's; a traced d is
a ``lax.cond``.

References:
  Bornschein & Bengio (2015), Reweighted wake-sleep. ICLR.
  Hinton, Dayan, Frey & Neal (1995), The wake-sleep algorithm for unsupervised
  neural networks. Science 268.
  Burda, Grosse & Salakhutdinov (2016), Importance weighted autoencoders. ICLR.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from wsjax._api import check_positive_int, public
from wsjax.layers import SBN, Conditional
from wsjax.model import (
    check_visible,
    generative_params,
    layer_sizes,
    log_defensive,
    particle_log_probs,
    recognition_params,
    sample_up,
)
from wsjax.phases import sleep_grads

__all__ = ["RWSInfo", "normalized_weights", "rws_losses", "rws_grads", "rws_step"]


class RWSInfo(NamedTuple):
    r"""Diagnostics of one reweighted wake-sleep step, scalars at the pre-step params.

    Attributes:
      iw_bound: batch mean of :math:`\log \frac{1}{K}\sum_k w_k`, the
        importance-weighted bound on log p(u) at these samples (nats).
      ess: batch mean of the effective sample size :math:`1 / \sum_k \tilde w_k^2`,
        between 1 and K.
      wake_p_loss: the generative wake loss :math:`L_P` of :func:`rws_losses`.
      wake_q_loss: the recognition wake loss :math:`L_Q` of :func:`rws_losses`.
      sleep_loss: the classic sleep loss on the dreams; NaN at insomnia 1, where no
        dreams are drawn.
    """

    iw_bound: jax.Array
    ess: jax.Array
    wake_p_loss: jax.Array
    wake_q_loss: jax.Array
    sleep_loss: jax.Array


def normalized_weights(log_w: jax.Array) -> jax.Array:
    r"""Self-normalised importance weights, held fixed for differentiation.

    .. math:: \tilde w_{bk} = \frac{\exp(\log w_{bk})}{\sum_j \exp(\log w_{bj})}

    computed as a softmax over the sample axis (stable for any log-weights)
    behind a ``stop_gradient``, so that no gradient flows into the weights.

    Args:
      log_w: log importance weights [batch, K].

    Returns:
      [batch, K] non-negative weights, each row summing to one.
    """
    return jax.nn.softmax(jax.lax.stop_gradient(log_w), axis=-1)


def _check_samples(params, u, hs, log_w, conditionals):
    """Raise a ValueError at trace time when hs or log_w do not fit u and the machine."""
    check_visible(params, u, conditionals, batched=True)
    sizes = layer_sizes(params, conditionals)
    log_w_shape = np.shape(log_w)
    if len(log_w_shape) != 2 or log_w_shape[0] != np.shape(u)[0]:
        raise ValueError(
            f"log_w must have shape [batch, K] with batch = {np.shape(u)[0]}, got {log_w_shape}"
        )
    batch, num_samples = log_w_shape
    if len(hs) != len(sizes) - 1:
        raise ValueError(
            f"hs has {len(hs)} hidden layers but the machine has {len(sizes) - 1} "
            f"(layer_sizes {sizes})"
        )
    for l, h in enumerate(hs):
        want = (batch, num_samples, sizes[l + 1])
        if tuple(np.shape(h)) != want:
            raise ValueError(
                f"hs[{l}] must have shape {want} (batch, K, n_{l + 1}), got {np.shape(h)}")


def rws_losses(
    params: dict, u: jax.Array, hs: Sequence[jax.Array], log_w: jax.Array,
    conditionals: Conditional = SBN(),
) -> tuple[jax.Array, jax.Array]:
    r"""The two wake-phase losses of reweighted wake-sleep, at fixed samples and weights.

    .. math::
       L_P = -\frac{1}{B}\sum_b \sum_k \tilde w_{bk} \log P(u_b, h_{bk}), \qquad
       L_Q = -\frac{1}{B}\sum_b \sum_k \tilde w_{bk} \log Q(h_{bk} | u_b)

    with :math:`\tilde w_{bk}` = ``normalized_weights(log_w)``. The samples
    enter as inputs and the weights pass through a ``stop_gradient``, so the
    gradient of :math:`L_P` in the generative half (of :math:`L_Q` in the
    recognition half) is minus the weighted delta rule: for one hidden layer,
    :math:`-\frac{1}{B}\sum_{bk} \tilde w_{bk}\,(u_b - f(h + G v_{bk}))\,v_{bk}^T`
    for G, and likewise for every other conditional. :math:`L_P` does not depend
    on the recognition params, nor :math:`L_Q` on the generative ones.

    Args:
      params: the machine.
      u: data [batch, n_visible] of 0/1.
      hs: K recognition samples per example, (h_1 [batch, K, n_1], ...,
        h_L [batch, K, n_L]), as returned by ``log_weights``.
      log_w: their log importance weights [batch, K]; any per-example shift
        gives the same losses. Held fixed (no gradient flows into them).
      conditionals: the kinds of layer (:class:`wsjax.layers.Conditionals`, or one for all).

    Returns:
      (wake_p_loss, wake_q_loss), scalars in nats per example.

    Raises:
      ValueError: at trace time, if ``u``, ``hs`` or ``log_w`` do not fit
        together or the machine.
    """
    hs = tuple(hs)
    _check_samples(params, u, hs, log_w, conditionals)
    log_p, log_q = particle_log_probs(params, u, hs, conditionals)
    return _weighted_loss(log_w, log_p), _weighted_loss(log_w, log_q)




def _check_weight(name, value, upper_closed=True):
    """A concrete ``value`` checked to be a scalar in [0, 1] ([0, 1) if not upper_closed)."""
    if np.ndim(value) != 0:
        raise ValueError(f"{name} must be a scalar, got shape {np.shape(value)}")
    try:
        value = float(value)
    except (jax.errors.ConcretizationTypeError, jax.errors.TracerArrayConversionError, TypeError):
        return  # traced: cannot be checked here
    if not (0.0 <= value <= 1.0 and (upper_closed or value < 1.0)):
        raise ValueError(f"{name} must lie in [0, {'1]' if upper_closed else '1)'}, "
                         f"got {value!r}")


def rws_grads(
    key: jax.Array, params: dict, u: jax.Array, num_samples: int, insomnia=1.0,
    sleep_batch_size: int | None = None, conditionals: Conditional = SBN(), *,
    defensive=0.0, return_samples: bool = False,
) -> tuple:
    r"""Reweighted wake-sleep gradients for every param of the machine.

    The generative half gets :math:`\nabla L_P` (see :func:`rws_losses`) at K
    fresh recognition samples per example. The recognition half gets

    .. math:: \iota\, \nabla L_Q + (1 - \iota)\, \nabla L_{\text{sleep}}

    with :math:`\iota` = ``insomnia`` and :math:`L_{\text{sleep}}` the classic
    sleep loss on ``sleep_batch_size`` fresh dreams. At insomnia 1 no dreams are
    drawn and ``info.sleep_loss`` is NaN; at insomnia 0 the wake-phase recognition
    gradient is not taken. A traced insomnia makes each skip a ``lax.cond``, a real
    branch unless a ``vmap`` gives every run its own insomnia (``wsjax.layout`` keeps
    the hyperparameters a block of runs shares out of the vmap).

    Key use: ``wake_key, sleep_key = jax.random.split(key)``; the samples are
    those of ``log_weights(wake_key, ...)`` (for K = 1, those of
    ``wake_samples(wake_key, ...)``) and the dreams those of
    ``sleep_grads(sleep_key, ...)``.

    Args:
      key: PRNG key.
      params: the machine.
      u: data [batch, n_visible] of 0/1.
      num_samples: K, recognition samples per example (static positive int).
      insomnia: weight in [0, 1] of the wake-phase Q update against the sleep
        phase (scalar, may be traced; a concrete value outside [0, 1] is refused).
      sleep_batch_size: dreams per sleep phase (static; None: the batch size of u).
      conditionals: the kinds of layer (:class:`wsjax.layers.Conditionals`, or one for all).
      defensive: d in [0, 1), the uniform's weight in the defensive proposal (see
        the module docstring); 0 (default) is plain RWS (may be traced).
      return_samples: also return the K recognition samples per example the
        gradients were taken at (static; the algorithms' activity term reads them).

    Returns:
      (grads, info), or (grads, info, hs) with ``return_samples``. grads has the
      structure of ``params`` (``{"prior", "generative", "recognition"}``); a step
      ``params - lr * grads`` ascends the importance-weighted bound in the
      generative half. info is an :class:`RWSInfo`; hs = (h_1 [batch, K, n_1], ...).

    Raises:
      ValueError: at trace time, if ``u`` does not fit the machine, or
        num_samples, sleep_batch_size or a concrete insomnia is out of range.
    """
    check_visible(params, u, conditionals, batched=True)
    num_samples = check_positive_int(num_samples, "num_samples")
    _check_weight("insomnia", insomnia)
    _check_weight("defensive", defensive, upper_closed=False)
    sleep_batch_size = u.shape[0] if sleep_batch_size is None else check_positive_int(
        sleep_batch_size, "sleep_batch_size")
    u = jnp.asarray(u, jnp.float32)

    wake_key, sleep_key = jax.random.split(key)
    hs, log_w, (wake_p_loss, gen_grads), wake_q_loss, wake_q_grads = _wake_phase(
        wake_key, params, u, num_samples, conditionals, defensive)

    def no_wake_q_grads():  # insomnia == 0: the wake-phase Q gradient would be weighted by 0
        return jax.tree.map(jnp.zeros_like, recognition_params(params))

    wake_q = _branch(insomnia == 0, no_wake_q_grads, wake_q_grads)  # the grads of L_Q

    def with_sleep():
        sleep_rec_grads, sleep_loss = sleep_grads(sleep_key, params, sleep_batch_size, conditionals)
        mixed = jax.tree.map(lambda q, s: insomnia * q + (1 - insomnia) * s, wake_q,
                             sleep_rec_grads)
        return mixed, sleep_loss

    def without_sleep():  # insomnia == 1: the dreams would be weighted by 0
        return wake_q, jnp.full((), jnp.nan, jnp.result_type(wake_q_loss))

    rec_grads, sleep_loss = _branch(insomnia == 1, without_sleep, with_sleep)

    info = _info(log_w, wake_p_loss, wake_q_loss, sleep_loss)
    grads = {**gen_grads, **rec_grads}
    return (grads, info, hs) if return_samples else (grads, info)


def _info(log_w, wake_p_loss, wake_q_loss, sleep_loss) -> RWSInfo:
    w = normalized_weights(log_w)
    return RWSInfo(
        iw_bound=jnp.mean(jax.nn.logsumexp(log_w, axis=1) - math.log(log_w.shape[1])),
        ess=jnp.mean(1.0 / jnp.sum(w * w, axis=1)),
        wake_p_loss=wake_p_loss,
        wake_q_loss=wake_q_loss,
        sleep_loss=sleep_loss,
    )


def _wake_phase(wake_key, params, u, num_samples, conditionals, defensive=0.0):
    """The K samples of ``log_weights(wake_key, ...)`` and what the wake phase takes at them.

    Returns:
      (hs, log_w, (L_P, its gradient in the generative half), L_Q, a function of no
      arguments that returns the gradient of L_Q in the recognition half). L_P depends
      on the generative half only and L_Q on the recognition half only, so each half's
      gradient is one pullback, taken only where it is needed (the forward products
      that both pullbacks reuse are computed once).
    """
    hs = jax.lax.stop_gradient(sample_up(wake_key, params, u, conditionals, num_samples,
                                         defensive=defensive))
    log_probs = lambda half: particle_log_probs({**params, **half}, u, hs, conditionals)
    log_p, pull_p = jax.vjp(lambda gen: log_probs(gen)[0], generative_params(params))
    log_q, pull_q = jax.vjp(lambda rec: log_probs(rec)[1], recognition_params(params))
    if isinstance(defensive, (int, float)) and defensive == 0:
        log_proposal = log_q
    else:
        log_proposal = _branch(jnp.asarray(defensive) == 0, lambda: log_q,
                               lambda: log_defensive(params, u, hs, defensive, conditionals))
    log_w = jax.lax.stop_gradient(log_p - log_proposal)
    wake_q_grads = lambda: _weighted_loss_grads(log_w, log_q, pull_q)[1]
    return (hs, log_w, _weighted_loss_grads(log_w, log_p, pull_p), _weighted_loss(log_w, log_q),
            wake_q_grads)


def _weighted_loss(log_w, log_x):
    """-(1/B) sum_b sum_k w~_bk log_x_bk: L_P for log_x = log P, L_Q for log_x = log Q."""
    return -jnp.mean(jnp.sum(normalized_weights(log_w) * log_x, axis=1))


def _weighted_loss_grads(log_w, log_x, pullback):
    """(loss, grads): the weighted loss of ``log_x`` and its gradient in the params that
    ``pullback`` (the vjp of ``log_x``) maps cotangents back to."""
    loss, pull_loss = jax.vjp(lambda x: _weighted_loss(log_w, x), log_x)
    (grads,) = pullback(*pull_loss(jnp.ones_like(loss)))
    return loss, grads


def _branch(pred, if_true, if_false):
    """``if_true()`` if ``pred`` else ``if_false()``: a Python ``if`` for a concrete ``pred``,
    a ``lax.cond`` (a real branch, unless a vmap batches ``pred``) for a traced one."""
    if isinstance(pred, (bool, np.bool_)):
        return if_true() if pred else if_false()
    return jax.lax.cond(pred, if_true, if_false)



@public(static_argnames=("num_samples", "sleep_batch_size", "conditionals"), data=("u",),
        rates=("learning_rate",))
def rws_step(
    key: jax.Array, params: dict, u: jax.Array, learning_rate, num_samples: int, *,
    insomnia=1.0, sleep_batch_size: int | None = None, conditionals: Conditional = SBN(),
    defensive=0.0,
) -> dict:
    """One reweighted wake-sleep step: plain SGD ``params - learning_rate * grads``.

    Both halves move at once, from gradients taken at the same (pre-step)
    params; see :func:`rws_grads` for the gradients and the key use. Pure in
    everything but the static ``num_samples`` and ``sleep_batch_size``, so it
    can be jitted and vmapped over keys, learning rates and insomnia.

    Args:
      key: PRNG key (split into a wake and a sleep key).
      params: the machine.
      u: data [batch, n_visible] of 0/1.
      learning_rate: scalar step size (may be traced).
      num_samples: K, recognition samples per example (static positive int).
      insomnia: weight in [0, 1] of the wake-phase Q update (may be traced).
      sleep_batch_size: dreams per sleep phase (static; None: the batch size of u).
      conditionals: the kinds of layer (:class:`wsjax.layers.Conditionals`, or one for all).
      defensive: d in [0, 1), the uniform's weight in the proposal (see :func:`rws_grads`;
        may be traced).

    Returns:
      New params, with the structure of ``params``.
    """
    grads, _ = rws_grads(key, params, u, num_samples, insomnia, sleep_batch_size, conditionals,
                         defensive=defensive)
    halves = {**generative_params(params), **recognition_params(params)}
    stepped = jax.tree.map(lambda p, g: p - learning_rate * g, halves, grads)
    return {**params, **stepped}
