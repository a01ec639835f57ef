r"""Conditional distributions over a layer of binary units: the kinds of layer.

A Helmholtz machine is a stack of conditionals, P(h_l | h_{l+1}) on the generative
side, Q(h_{l+1} | h_l) on the recognition side, and a prior P(h_L) on top. Each
is a *kind*: a hashable object (a static argument of compiled functions) that
knows how to make its params, evaluate the log-probability of a whole layer in
one parallel pass, and sample it. Three kinds:

* :class:`SBN`, the sigmoid belief net layer: the units are independent given
  the input, ``P(y | x) = prod_i f(l_i)^{y_i} (1 - f(l_i))^{1 - y_i}`` with
  logits ``l = logits_fn(params, x)`` (the affine ``w x + b`` by default, or any
  function of the layer params and the input, e.g. an MLP). Cost: one logits
  evaluation per row, sampled in one draw.
* :class:`DARN`, the deep autoregressive network layer (Gregor, Danihelka, Mnih,
  Blundell & Wierstra 2014): unit i also sees the units before it in the same
  layer, ``l_i = b_i + (w x)_i + sum_{j<i} a_ij y_j`` with ``a`` strictly
  lower-triangular. Evaluation is one parallel pass (the samples are known);
  sampling visits the units in index order 0, 1, ..., n-1 (a ``lax.scan`` of n
  steps, each O(n) per row).
* :class:`NADE`, the conditional neural autoregressive distribution estimator
  (Larochelle & Murray 2011; the conditional form of Bornschein & Bengio 2015):
  unit i sees the units before it through H deterministic sigmoid hidden units,
  ``l_i = b_i + (w x)_i + dec_i . f(c + v x + sum_{j<i} enc_j y_j)``; the
  conditioning layer shifts both bias vectors. Evaluation is one parallel pass
  holding [rows, n, H] activations; sampling is a scan over the units in index
  order, O(H) per unit and row.

With no input (width 0) a kind is a prior: the SBN prior is ``{"b": [n]}``, the
factorial prior of the textbook machine; DARN and NADE priors are fully
connected autoregressive models of the top layer. :class:`Conditionals` names
one kind per layer and side and the prior's; every function of the kit takes it
as ``conditionals`` (a single kind, or a bare logits function, stands for that
conditional at every layer and side with the factorial prior on top).

Samples of K particles per example are rows ``b * K + k``; a layer's uniforms
are drawn in one block from one key, so a machine of DARN layers with ``a = 0``
draws exactly the samples of the SBN machine with the same weights.

References:
  Neal (1992), Connectionist learning of belief networks. Artificial Intelligence 56.
  Larochelle & Murray (2011), The neural autoregressive distribution estimator. AISTATS.
  Gregor, Danihelka, Mnih, Blundell & Wierstra (2014), Deep autoregressive networks. ICML.
  Bornschein & Bengio (2015), Reweighted wake-sleep. ICLR.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
from jax.custom_derivatives import SymbolicZero

__all__ = [
    "LogitsFn",
    "Kind",
    "SBN",
    "DARN",
    "NADE",
    "Conditionals",
    "Conditional",
    "as_kind",
    "conditional",
    "row_floats",
    "no_input",
    "apply_rows",
    "dense_logits",
    "init_dense",
    "bernoulli_log_prob",
    "bernoulli_sample",
    "draw_flat",
]

LogitsFn = Callable[[Any, jax.Array], jax.Array]
"""A factorial conditional's logits: ``(layer params, input [n_in]) -> logits [n_out]``."""


def init_dense(key: jax.Array, n_in: int, n_out: int, scale: float = 0.0) -> dict:
    """Params of one affine conditional ``logits = w @ x + b``.

    Args:
      key: PRNG key for the weights.
      n_in: width of the conditioning layer.
      n_out: width of the layer whose logits are produced.
      scale: standard deviation of the Gaussian initial weights (0 gives zeros).

    Returns:
      ``{"w": [n_out, n_in], "b": [n_out]}``, float32.
    """
    w = scale * draw_flat(lambda s: jax.random.normal(key, s, jnp.float32), (n_out, n_in))
    return {"w": w, "b": jnp.zeros((n_out,), jnp.float32)}


def dense_logits(layer: dict, x: jax.Array) -> jax.Array:
    """Affine conditional: ``layer["w"] @ x + layer["b"]``.

    Args:
      layer: ``{"w": [n_out, n_in], "b": [n_out]}``.
      x: input of shape [n_in] (or [..., n_in]; leading axes broadcast).

    Returns:
      Logits of shape [n_out] (or [..., n_out]).
    """
    return jnp.asarray(x, layer["w"].dtype) @ layer["w"].T + layer["b"]


def apply_rows(fn: LogitsFn, layer, x: jax.Array) -> jax.Array:
    """Apply a one-example logits function to every row of ``x`` [..., n_in] -> [..., n_out].

    The rows are vmapped (for the affine conditional: one matrix product over all of them).
    """
    rows = jnp.reshape(x, (-1, x.shape[-1]))
    out = jax.vmap(fn, in_axes=(None, 0))(layer, rows)
    return jnp.reshape(out, (*x.shape[:-1], out.shape[-1]))


def no_input(shape: tuple[int, ...] = ()) -> jax.Array:
    """The input of a prior: zeros of shape [*shape, 0]."""
    return jnp.zeros((*shape, 0), jnp.float32)


class Kind:
    """The interface of a kind of layer (base class of :class:`SBN`, :class:`DARN`, :class:`NADE`).

    Attributes:
      factorial: True when the units are independent given the input (then
        ``logits`` does not read ``y``).
    """

    factorial: ClassVar[bool] = True

    def init(self, key: jax.Array, n_in: int, n_out: int, scale: float = 0.0) -> dict:
        """Params of one conditional from width ``n_in`` (0 for a prior) to ``n_out``.

        Every kind's params hold the output biases as ``"b"`` [n_out].
        """
        raise NotImplementedError

    def logits(self, layer, x: jax.Array, y: jax.Array | None = None) -> jax.Array:
        """Logits of every unit given the input and the units before it, teacher-forced.

        Args:
          layer: the params.
          x: inputs [..., n_in] (width 0 for a prior).
          y: the layer's values [..., n_out] (read by autoregressive kinds only).

        Returns:
          [..., n_out]: logit i is that of P(y_i = 1 | x, y_<i).
        """
        raise NotImplementedError

    def log_prob(self, layer, x: jax.Array, y: jax.Array) -> jax.Array:
        """log P(y | x) in nats, [...], in one parallel pass."""
        y = jnp.asarray(y, jnp.float32)
        return bernoulli_log_prob(self.logits(layer, jnp.asarray(x, jnp.float32), y), y)

    def sample(self, key: jax.Array, layer, x: jax.Array, num_samples: int | None = None
               ) -> jax.Array:
        """Draw y ~ P(y | x) for every row of ``x`` [rows, n_in]: [rows, n_out] 0/1.

        With ``num_samples = K`` every row gets K samples, as rows ``r * K + k``
        of a [rows * K, n_out] array. One key for the whole layer.
        """
        raise NotImplementedError

    def row_floats(self, n_out: int) -> int:
        """Values a log-probability pass holds per row of a layer of width ``n_out``."""
        return n_out

    def out_width(self, layer, n_in: int) -> int:
        """Width of the layer these params produce from an input of width ``n_in``.

        Raises:
          TypeError: if the params cannot take that input; KeyError if a param is missing.
        """
        n_out = int(jnp.shape(layer["b"])[-1])
        jax.eval_shape(self.logits, layer, jax.ShapeDtypeStruct((1, n_in), jnp.float32),
                       jax.ShapeDtypeStruct((1, n_out), jnp.float32))
        return n_out


@dataclasses.dataclass(frozen=True)
class SBN(Kind):
    """Sigmoid belief net layer: independent Bernoulli units with logits ``logits_fn(params, x)``.

    Args:
      logits_fn: ``(layer params, input [n_in]) -> logits [n_out]``; the affine
        :func:`dense_logits` by default (params ``{"w": [n_out, n_in], "b": [n_out]}``,
        or ``{"b": [n]}`` as a prior). Another function brings its own params
        (e.g. :func:`wsjax.modules.as_conditional`), so :meth:`init` is only
        defined for the affine one.
    """

    logits_fn: LogitsFn = dense_logits
    factorial: ClassVar[bool] = True

    def __repr__(self):
        if self.logits_fn is dense_logits:
            return "SBN()"
        return f"SBN({getattr(self.logits_fn, '__name__', self.logits_fn)!r})"

    def init(self, key, n_in, n_out, scale=0.0):
        if self.logits_fn is not dense_logits:
            raise ValueError(f"{self!r} has no init: a custom logits_fn brings its own params "
                             "(see wsjax.modules.as_conditional)")
        if n_in == 0:
            return {"b": jnp.zeros((n_out,), jnp.float32)}
        return init_dense(key, n_in, n_out, scale)

    def logits(self, layer, x, y=None):
        x = jnp.asarray(x)
        if x.shape[-1] == 0 and "w" not in layer:  # the factorial prior
            b = layer["b"]
            return jnp.broadcast_to(b, (*x.shape[:-1], b.shape[-1]))
        if x.ndim == 1:
            return self.logits_fn(layer, x)
        return apply_rows(self.logits_fn, layer, x)

    def sample(self, key, layer, x, num_samples=None):
        logits = self.logits(layer, x)
        if num_samples is not None:
            logits = jnp.repeat(logits, num_samples, axis=0)
        return bernoulli_sample(key, logits)

    def out_width(self, layer, n_in):
        if n_in == 0 and "w" not in layer:
            return int(jnp.shape(layer["b"])[-1])
        out = jax.eval_shape(self.logits_fn, layer, jax.ShapeDtypeStruct((n_in,), jnp.float32))
        return int(out.shape[-1])


class _Autoregressive(Kind):
    """Shared sampler of the autoregressive kinds: a scan over the units in index order."""

    factorial: ClassVar[bool] = False

    def _start(self, layer, x):
        """Per-row state before unit 0 (pytree of [rows, ...]); its first entry is the
        input's part of the logits, which ``logits`` reads as well."""
        raise NotImplementedError

    def _unit(self, layer, state, i):
        """(logit of unit i [rows], a function of y_i [rows] giving the next state)."""
        raise NotImplementedError

    def sample(self, key, layer, x, num_samples=None):
        x = jnp.asarray(x, jnp.float32)
        layer = jax.tree.map(jnp.asarray, layer)  # indexed by the scan's traced unit
        if num_samples is not None:
            x = jnp.repeat(x, num_samples, axis=0)
        n = int(jnp.shape(layer["b"])[-1])
        rows = x.shape[0]
        # One uniform block for the layer, as the factorial layer draws it.
        u = draw_flat(lambda s: jax.random.uniform(key, s, jnp.float32), (rows, n))

        def body(state, xs):
            i, u_i = xs
            logit, advance = self._unit(layer, state, i)
            y_i = (u_i < jax.nn.sigmoid(logit)).astype(jnp.float32)
            return advance(y_i), y_i

        _, ys = jax.lax.scan(body, self._start(layer, x), (jnp.arange(n), u.T))
        return ys.T


def _input_term(layer, key, x, n):
    """``x @ layer[key].T`` [rows, n], or zeros for a prior (width-0 input)."""
    if x.shape[-1] == 0 or key not in layer:
        return jnp.zeros((*x.shape[:-1], n), jnp.float32)
    return x @ layer[key].T


@dataclasses.dataclass(frozen=True)
class DARN(_Autoregressive):
    """Deep autoregressive network layer: logistic autoregression within the layer.

    ``l_i = b_i + (w x)_i + sum_{j<i} a_ij y_j``. Params ``{"b": [n_out],
    "a": [n_out, n_out], "w": [n_out, n_in]}`` (no ``"w"`` as a prior); only the
    strictly lower triangle of ``a`` is read, so the rest gets zero gradient.
    Evaluation costs one [n_out, n_out] matrix product per row more than an SBN
    layer; sampling is n_out sequential steps.
    """

    def init(self, key, n_in, n_out, scale=0.0):
        key_w, key_a = jax.random.split(key)
        layer = {"b": jnp.zeros((n_out,), jnp.float32),
                 "a": jnp.tril(scale * draw_flat(
                     lambda s: jax.random.normal(key_a, s, jnp.float32), (n_out, n_out)), -1)}
        if n_in:
            layer["w"] = init_dense(key_w, n_in, n_out, scale)["w"]
        return layer

    def logits(self, layer, x, y=None):
        x, y = jnp.asarray(x, jnp.float32), jnp.asarray(y, jnp.float32)
        base, _ = self._start(layer, x)
        return base + y @ jnp.tril(layer["a"], -1).T

    def _start(self, layer, x):
        n = layer["b"].shape[-1]
        base = layer["b"] + _input_term(layer, "w", x, n)
        return base, jnp.zeros_like(base)

    def _unit(self, layer, state, i):
        base, y = state
        a_i = jnp.where(jnp.arange(y.shape[-1]) < i, layer["a"][i], 0.0)
        logit = base[:, i] + y @ a_i
        return logit, lambda y_i: (base, y.at[:, i].set(y_i))


@dataclasses.dataclass(frozen=True)
class NADE(_Autoregressive):
    """Conditional NADE layer: autoregression through ``num_hidden`` deterministic sigmoid units.

    ``l_i = b_i + (w x)_i + dec_i . f(c + v x + sum_{j<i} enc_j y_j)``, with
    params ``{"b": [n_out], "c": [H], "enc": [H, n_out], "dec": [n_out, H],
    "w": [n_out, n_in], "v": [H, n_in]}`` (no ``"w"``, ``"v"`` as a prior).
    Evaluation holds [rows, n_out, H] activations (a cumulative sum over the
    units); sampling is n_out sequential steps of O(H) per row.

    Args:
      num_hidden: H, the deterministic hidden units.
      hidden_scale: standard deviation of the initial ``enc`` and ``dec`` weights,
        nonzero so that the hidden units start apart even at ``init_scale`` 0.
    """

    num_hidden: int
    hidden_scale: float = 0.01

    def __post_init__(self):
        if not isinstance(self.num_hidden, int) or isinstance(self.num_hidden, bool) \
                or self.num_hidden < 1:
            raise ValueError(f"NADE needs a positive int num_hidden, got {self.num_hidden!r}")

    def row_floats(self, n_out):
        return n_out * (1 + self.num_hidden)

    def init(self, key, n_in, n_out, scale=0.0):
        keys = jax.random.split(key, 4)
        h = self.num_hidden
        normal = lambda k, s, sd: sd * draw_flat(
            lambda f: jax.random.normal(k, f, jnp.float32), s)
        layer = {"b": jnp.zeros((n_out,), jnp.float32), "c": jnp.zeros((h,), jnp.float32),
                 "enc": normal(keys[0], (h, n_out), self.hidden_scale),
                 "dec": normal(keys[1], (n_out, h), self.hidden_scale)}
        if n_in:
            layer["w"] = normal(keys[2], (n_out, n_in), scale)
            layer["v"] = normal(keys[3], (h, n_in), scale)
        return layer

    def logits(self, layer, x, y=None):
        x, y = jnp.asarray(x, jnp.float32), jnp.asarray(y, jnp.float32)
        base, hidden = self._start(layer, x)  # [..., n], [..., H]
        steps = y[..., :, None] * layer["enc"].T  # [..., n, H]: unit j's push on the hidden
        before = jnp.cumsum(steps, axis=-2) - steps  # sum over j < i
        act = jax.nn.sigmoid(hidden[..., None, :] + before)  # [..., n, H]
        return base + jnp.sum(act * layer["dec"], axis=-1)

    def _start(self, layer, x):
        n = layer["b"].shape[-1]
        return (layer["b"] + _input_term(layer, "w", x, n),
                layer["c"] + _input_term(layer, "v", x, self.num_hidden))

    def _unit(self, layer, state, i):
        base, hidden = state
        logit = base[:, i] + jax.nn.sigmoid(hidden) @ layer["dec"][i]
        return logit, lambda y_i: (base, hidden + y_i[:, None] * layer["enc"][:, i])


def as_kind(value) -> Kind:
    """A kind, or a bare logits function taken as the factorial :class:`SBN` over it."""
    if isinstance(value, Kind):
        return value
    if callable(value):
        return SBN(value)
    raise TypeError(f"a conditional must be a kind (SBN(), DARN(), NADE(h)) or a logits "
                    f"function, got {value!r}")


@dataclasses.dataclass(frozen=True)
class Conditionals:
    """One kind per layer and side of a machine with L layers of conditionals, and the prior's.

    Attributes:
      generative: L kinds; entry l is P(h_l | h_{l+1}) (h_0 the visible layer).
      recognition: L kinds; entry l is Q(h_{l+1} | h_l).
      prior: the kind of P(h_L) (default the factorial :class:`SBN` prior).

    Entries may also be bare logits functions (taken as ``SBN(fn)``).
    """

    generative: tuple
    recognition: tuple
    prior: Kind = SBN()

    def __post_init__(self):
        for side in ("generative", "recognition"):
            kinds = getattr(self, side)
            if isinstance(kinds, Kind) or callable(kinds):
                raise TypeError(f"Conditionals.{side} must be a sequence of kinds, one per layer")
            object.__setattr__(self, side, tuple(as_kind(k) for k in kinds))
        if len(self.generative) != len(self.recognition):
            raise ValueError(f"Conditionals names {len(self.generative)} generative and "
                             f"{len(self.recognition)} recognition kinds: one per layer each")
        object.__setattr__(self, "prior", as_kind(self.prior))


Conditional = Conditionals | Kind | LogitsFn
"""What the kit's ``conditionals`` arguments accept."""


def row_floats(conditionals: Conditional, sizes) -> int:
    """Values a machine's log-probability passes hold per sample, layer by layer (memory budgets).

    Layer l counts once, at the most costly kind that produces it (the factorial
    machine: ``sum(sizes)``).
    """
    num_layers = len(sizes) - 1
    total = conditional(conditionals, "generative", 0).row_floats(sizes[0])
    for l in range(1, num_layers + 1):
        makers = [conditional(conditionals, "recognition", l - 1),
                  conditional(conditionals, "generative", l) if l < num_layers
                  else conditional(conditionals, "prior")]
        total += max(kind.row_floats(sizes[l]) for kind in makers)
    return total


def conditional(conditionals: Conditional, side: str, layer: int = 0) -> Kind:
    """The kind of ``side`` ("generative", "recognition" or "prior") at ``layer``."""
    if isinstance(conditionals, Conditionals):
        if side == "prior":
            return conditionals.prior
        return getattr(conditionals, side)[layer]
    if side == "prior":
        return SBN()
    return as_kind(conditionals)


def bernoulli_log_prob(logits: jax.Array, x: jax.Array) -> jax.Array:
    r"""Log-probability of binary ``x`` under factorial Bernoulli(sigmoid(logits)).

    Uses :math:`\log p(x) = x\,l - \mathrm{softplus}(l)`, summed over the last
    axis, which is exact and stable for any logit (no log of a sigmoid). Its
    derivative in the logits is written as the delta rule's error
    :math:`x - \sigma(l)` (one sigmoid; the forward softplus is not needed for it).

    Args:
      logits: array [..., n].
      x: 0/1 array broadcastable to ``logits``.

    Returns:
      Array [...]: the log-probability in nats, summed over the last axis.
    """
    x = jnp.asarray(x, logits.dtype)
    return jnp.sum(_log_prob_terms(logits, x), axis=-1)


@jax.custom_jvp
def _log_prob_terms(logits, x):
    return x * logits - jax.nn.softplus(logits)


def _log_prob_terms_jvp(primals, tangents):
    logits, x = primals
    t_logits, t_x = tangents
    out = _log_prob_terms(logits, x)
    tangent = jnp.zeros_like(out)
    if not isinstance(t_logits, SymbolicZero):
        tangent = tangent + (x - jax.nn.sigmoid(logits)) * t_logits
    if not isinstance(t_x, SymbolicZero):
        tangent = tangent + logits * t_x
    return out, tangent


_log_prob_terms.defjvp(_log_prob_terms_jvp, symbolic_zeros=True)


def draw_flat(draw: Callable[[tuple[int]], jax.Array], shape: tuple[int, ...]) -> jax.Array:
    """``draw(shape)`` for a ``jax.random`` draw, made as one flat vector and reshaped.

    The same numbers as the shaped draw (threefry counts elements in row-major
    order), with less index arithmetic to compile: a draw of two axes becomes one
    of three under a vmap over seeds, which took 1.9 s to compile against 0.3 s
    flat on a 2-core CPU. Every multi-axis draw of the kit goes through here.

    Args:
      draw: ``flat_shape -> array``, e.g. ``lambda s: jax.random.uniform(key, s)``.
      shape: the shape of the result.
    """
    return jnp.reshape(draw((math.prod(shape),)), shape)


def bernoulli_sample(key: jax.Array, logits: jax.Array) -> jax.Array:
    """Sample a binary array with P(1) = sigmoid(logits), as 0/1 in the dtype of ``logits``.

    The uniforms are those of ``jax.random.uniform(key, logits.shape)``, drawn flat
    (:func:`draw_flat`).
    """
    u = draw_flat(lambda s: jax.random.uniform(key, s, logits.dtype), logits.shape)
    return (u < jax.nn.sigmoid(logits)).astype(logits.dtype)
