"""Helmholtz machines as flax.nnx modules, and flax networks as a machine's conditionals.

Nothing here computes anything of its own: a module is split into the plain
params pytree and the conditionals of the kit (``nnx.split``), the kit's pure
functions run on them, and the results are written back. So every property
proven for the pure functions holds for the modules, and a machine can sit in
a larger nnx model: trained by ``nnx.Optimizer`` through its surrogate losses,
vmapped with ``nnx.vmap``, compiled with ``nnx.jit``.

Two ways in:

* :class:`HelmholtzMachine`, an ``nnx.Module`` whose conditionals are nnx
  modules (:class:`Dense` by default, :class:`MLP` or any module mapping an
  input to logits, or a :class:`Layer` of a kind such as DARN or NADE), with
  methods for the steps, the losses, the likelihoods and sampling.
* :func:`as_conditional`, for callers of the pure functions: a flax module
  becomes ``(layer params, logits function)`` to put in a params pytree and a
  :class:`wsjax.layers.Conditionals`.

A conditional module should hold only ``nnx.Param`` variables (no batch
statistics, no stored RNG streams): its whole state is what the kit treats as
that layer's params.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
from flax import nnx

from wsjax import exact, model, objectives, phases, reweighted
from wsjax._api import check_data
from wsjax.layers import SBN, Conditionals, Kind, dense_logits

__all__ = ["Dense", "Layer", "MLP", "ModuleConditional", "as_conditional", "HelmholtzMachine"]


class Dense(nnx.Module):
    """The affine conditional ``w @ x + b`` with the kit's layout: w [n_out, n_in], b [n_out].

    Args:
      n_in: width of the conditioning layer.
      n_out: width of the layer whose logits it gives.
      rngs: draws the initial weights.
      scale: standard deviation of the Gaussian initial weights (0: zeros, as ``wsjax.init``).
    """

    def __init__(self, n_in: int, n_out: int, *, rngs: nnx.Rngs, scale: float = 0.0):
        self.w = nnx.Param(scale * jax.random.normal(rngs.params(), (n_out, n_in), jnp.float32))
        self.b = nnx.Param(jnp.zeros((n_out,), jnp.float32))

    def __call__(self, x: jax.Array) -> jax.Array:
        return dense_logits({"w": self.w[...], "b": self.b[...]}, x)


class Layer(nnx.Module):
    """One conditional of a kind of :mod:`wsjax.layers` (DARN, NADE, ...), its params as nnx.Params.

    The variables are named as ``kind.init`` names the params (``b``, ``a``, ``w``
    for DARN; ``b``, ``c``, ``enc``, ``dec``, ``w``, ``v`` for NADE).

    Args:
      kind: the kind of layer.
      n_in: width of the conditioning layer (0 for a prior).
      n_out: width of the layer.
      rngs: draws the initial weights.
      scale: standard deviation of the Gaussian initial weights.
    """

    def __init__(self, kind: Kind, n_in: int, n_out: int, *, rngs: nnx.Rngs, scale: float = 0.0):
        self.kind = kind
        values = kind.init(rngs.params(), n_in, n_out, scale)
        self.names = tuple(sorted(values))
        for name in self.names:
            setattr(self, name, nnx.Param(values[name]))

    def values(self) -> dict:
        """The params as the pure functions read them: ``{name: array}``."""
        return {name: getattr(self, name)[...] for name in self.names}

    def update(self, values: dict) -> None:
        """Write ``values`` (as :meth:`values` gives them) into the variables."""
        for name in self.names:
            getattr(self, name)[...] = values[name]


def _factory(spec, init_scale):
    """``(n_in, n_out, rngs) -> module`` for one layer from a kind, a factory or None."""
    if spec is None:
        return lambda n_in, n_out, rngs: Dense(n_in, n_out, rngs=rngs, scale=init_scale)
    if isinstance(spec, Kind):
        return lambda n_in, n_out, rngs: Layer(spec, n_in, n_out, rngs=rngs, scale=init_scale)
    return spec


def _pure(module):
    """``(layer params, kind or logits function)`` of one conditional module."""
    if isinstance(module, Layer):
        return module.values(), module.kind
    return as_conditional(module)


class MLP(nnx.Module):
    """Logits through deterministic hidden layers: the conditional of a "nonlinear" SBN.

    ``x -> act(Linear) -> ... -> Linear -> logits``, as in the nonlinear sigmoid
    belief nets of Bornschein & Bengio (2015) and Mnih & Rezende (2016), where
    each stochastic layer's conditional is such a network.

    Args:
      n_in: input width.
      hidden: widths of the deterministic hidden layers.
      n_out: number of logits.
      rngs: draws the initial weights (flax's default initialisers).
      activation: nonlinearity of the hidden layers.
    """

    def __init__(self, n_in: int, hidden: Sequence[int], n_out: int, *, rngs: nnx.Rngs,
                 activation: Callable[[jax.Array], jax.Array] = jnp.tanh):
        widths = (n_in, *hidden, n_out)
        self.layers = nnx.List([nnx.Linear(a, b, rngs=rngs) for a, b in zip(widths, widths[1:])])
        self.activation = activation

    def __call__(self, x: jax.Array) -> jax.Array:
        for layer in self.layers[:-1]:
            x = self.activation(layer(x))
        return self.layers[-1](x)


@dataclasses.dataclass(frozen=True)
class ModuleConditional:
    """A conditional ``(state, x) -> logits`` that rebuilds a module from its graph and state.

    Hashable and equal for modules of one structure, so compiled functions that
    take it as a static argument compile once per structure, not once per module.
    """

    graphdef: nnx.GraphDef

    def __call__(self, state, x: jax.Array) -> jax.Array:
        return nnx.merge(self.graphdef, state)(x)


def as_conditional(module: nnx.Module):
    """``(params, conditionals)`` of a flax module mapping an input to logits.

    Returns:
      The module's state (an ``nnx.State`` pytree, for the params pytree) and a
      hashable :class:`ModuleConditional` that applies it (for ``conditionals`` or
      an entry of :class:`wsjax.layers.Conditionals`).
    """
    graphdef, state = nnx.split(module)
    return state, ModuleConditional(graphdef)


def _with_gradient(value, grads, params):
    """``value``, with gradient ``grads`` with respect to ``params`` (the kit's own gradients).

    ``value + <g, p> - stop_gradient(<g, p>)`` with ``g`` held fixed: so ``nnx.grad`` of
    a module's loss returns exactly what the kit's gradient functions computed.
    """
    dot = sum(jax.tree.leaves(jax.tree.map(
        lambda g, p: jnp.vdot(jax.lax.stop_gradient(g), p), grads, params)))
    return jax.lax.stop_gradient(value) + dot - jax.lax.stop_gradient(dot)


class HelmholtzMachine(nnx.Module):
    """A Helmholtz machine whose params live in an nnx module.

    Args:
      layer_sizes: (n_visible, n_1, ..., n_top).
      rngs: draws the initial weights.
      generative: how each generative conditional is made (n_in the layer above,
        n_out the layer below): a kind of :mod:`wsjax.layers` (``DARN()``,
        ``NADE(h)``; a :class:`Layer` of it), an ``(n_in, n_out, rngs) -> module``
        factory (a module mapping an input to logits), or a sequence of those,
        one per layer; default :class:`Dense`.
      recognition: the same for each recognition conditional (n_in below, n_out above).
      prior: the kind of the top-layer prior; default the factorial prior, the
        logits ``self.prior``.
      init_scale: standard deviation of the initial weights of Dense and Layer modules.

    The conditional modules sit in ``self.generative`` and ``self.recognition``
    (entry l between h_l and h_{l+1}, as in the params pytree) and the prior in
    ``self.prior``. :meth:`split` gives the pure view.
    """

    def __init__(self, layer_sizes: Sequence[int], *, rngs: nnx.Rngs, generative=None,
                 recognition=None, prior: Kind = SBN(), init_scale: float = 0.0):
        sizes = model.check_layer_sizes(layer_sizes)
        num_layers = len(sizes) - 1

        def factories(spec, side):
            specs = spec if isinstance(spec, (list, tuple)) else (spec,) * num_layers
            if len(specs) != num_layers:
                raise ValueError(f"{side} names {len(specs)} conditionals for a machine with "
                                 f"{num_layers} layers of them")
            return [_factory(x, init_scale) for x in specs]

        make_gen, make_rec = factories(generative, "generative"), factories(recognition,
                                                                            "recognition")
        if prior == SBN():
            self.prior = nnx.Param(jnp.zeros((sizes[-1],), jnp.float32))
        else:
            self.prior = Layer(prior, 0, sizes[-1], rngs=rngs, scale=init_scale)
        self.generative = nnx.List(
            [make_gen[l](sizes[l + 1], sizes[l], rngs) for l in range(num_layers)])
        self.recognition = nnx.List(
            [make_rec[l](sizes[l], sizes[l + 1], rngs) for l in range(num_layers)])

    # The pure view.

    def split(self):
        """``(params, conditionals)``: the params pytree of the kit and its kinds of layer."""
        gen = [_pure(m) for m in self.generative]
        rec = [_pure(m) for m in self.recognition]
        if isinstance(self.prior, Layer):
            prior, prior_kind = self.prior.values(), self.prior.kind
        else:
            prior, prior_kind = {"b": self.prior[...]}, SBN()
        params = {"prior": prior,
                  "generative": tuple(s for s, _ in gen),
                  "recognition": tuple(s for s, _ in rec)}
        return params, Conditionals(tuple(f for _, f in gen), tuple(f for _, f in rec),
                                    prior_kind)

    def set_params(self, params) -> None:
        """Write a params pytree (with the structure :meth:`split` gives) into the module."""
        if isinstance(self.prior, Layer):
            self.prior.update(params["prior"])
        else:
            self.prior[...] = params["prior"]["b"]
        for side in ("generative", "recognition"):
            for module, state in zip(getattr(self, side), params[side]):
                if isinstance(module, Layer):
                    module.update(state)
                else:
                    nnx.update(module, state)

    @property
    def layer_sizes(self) -> tuple[int, ...]:
        return model.layer_sizes(*self.split())

    # Learning steps (plain SGD, the delta rules), in place.

    def wake_step(self, key: jax.Array, u: jax.Array, learning_rate) -> None:
        """One wake phase on data ``u`` [batch, n_visible] (:func:`wsjax.wake_step`)."""
        params, fn = self.split()
        self.set_params(phases.wake_step(key, params, u, learning_rate, conditionals=fn))

    def sleep_step(self, key: jax.Array, learning_rate, batch_size: int) -> None:
        """One sleep phase on ``batch_size`` dreams (:func:`wsjax.sleep_step`)."""
        params, fn = self.split()
        self.set_params(phases.sleep_step(key, params, learning_rate, batch_size, conditionals=fn))

    def rws_step(self, key: jax.Array, u: jax.Array, learning_rate, num_samples: int,
                 insomnia=1.0) -> None:
        """One reweighted wake-sleep step (:func:`wsjax.rws_step`)."""
        params, fn = self.split()
        self.set_params(reweighted.rws_step(key, params, u, learning_rate, num_samples,
                                            insomnia=insomnia, conditionals=fn))

    # Surrogate losses, for nnx.grad and nnx.Optimizer (or any optax transformation).

    def wake_sleep_loss(self, key: jax.Array, u: jax.Array, sleep_batch_size: int | None = None):
        """Wake loss plus sleep loss at fresh samples, whose gradient is the wake-sleep update.

        ``key`` splits into a wake and a sleep key. The gradient is exactly that of
        :func:`wsjax.phases.wake_grads` in the generative modules (minus the wake
        delta rule for Dense layers) and of :func:`wsjax.phases.sleep_grads` in the
        recognition modules, which compute it.

        Returns:
          Scalar, nats per example (the sum of the two losses).
        """
        u = check_data(u, "u")
        params, fn = self.split()
        key_wake, key_sleep = jax.random.split(key)
        gen, wake_loss = phases.wake_grads(key_wake, params, u, fn)
        rec, sleep_loss = phases.sleep_grads(key_sleep, params,
                                             sleep_batch_size or jnp.shape(u)[0], fn)
        return _with_gradient(wake_loss + sleep_loss, {**gen, **rec}, params)

    def rws_loss(self, key: jax.Array, u: jax.Array, num_samples: int, insomnia=1.0,
                 sleep_batch_size: int | None = None):
        """The reweighted wake-sleep loss, whose gradient is :func:`wsjax.reweighted.rws_grads`.

        ``L_P + insomnia * L_Q + (1 - insomnia) * sleep loss``, each at fresh
        samples (:func:`wsjax.reweighted.rws_losses`; at insomnia 1 no dreams are drawn
        and the last term is 0); the gradient is the one ``rws_grads`` computes.
        """
        u = check_data(u, "u")
        params, fn = self.split()
        grads, info = reweighted.rws_grads(key, params, u, num_samples, insomnia,
                                           sleep_batch_size, fn)
        sleep_term = jnp.where(insomnia == 1, 0.0, (1 - insomnia) * info.sleep_loss)
        value = info.wake_p_loss + insomnia * info.wake_q_loss + sleep_term
        return _with_gradient(value, grads, params)

    # Likelihoods and sampling.

    def log_prob(self, u: jax.Array) -> jax.Array:
        """Exact log P(u) by enumeration, [batch] (:func:`wsjax.exact_log_prob`)."""
        params, fn = self.split()
        return exact.exact_log_prob(params, u, fn)

    def estimate_log_prob(self, key: jax.Array, u: jax.Array, num_samples: int) -> jax.Array:
        """Importance-sampled log P(u) with K samples from Q, [batch]."""
        params, fn = self.split()
        return objectives.estimate_log_prob(key, params, u, num_samples, conditionals=fn)

    def elbo(self, key: jax.Array, u: jax.Array, num_samples: int = 1) -> jax.Array:
        """The evidence lower bound E_Q[log P(u, h) - log Q(h | u)], [batch]."""
        params, fn = self.split()
        return objectives.elbo(key, params, u, num_samples, conditionals=fn)

    def sample(self, key: jax.Array, num: int):
        """``num`` dreams: (u [num, n_0], (h_1, ..., h_L))."""
        params, fn = self.split()
        return phases.sleep_samples(key, params, num, fn)

    def recognize(self, key: jax.Array, u: jax.Array):
        """Samples of the hidden layers from Q given ``u``: (h_1 [batch, n_1], ..., h_L)."""
        params, fn = self.split()
        return phases.wake_samples(key, params, jnp.asarray(check_data(u, "u"), jnp.float32), fn)

    def features(self, u: jax.Array) -> jax.Array:
        """Q(h_1 = 1 | u), [batch, n_1]: the first hidden layer's recognition probabilities."""
        u = check_data(u, "u")
        params, fn = self.split()
        model.check_visible(params, u, fn, batched=True)
        if isinstance(self.recognition[0], Layer):
            raise ValueError("features needs a factorial first recognition layer; "
                             f"this one is {self.recognition[0].kind!r}")
        return jax.nn.sigmoid(self.recognition[0](jnp.asarray(u, jnp.float32)))
