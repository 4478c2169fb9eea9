"""Elementwise activations ``a = f(z)`` and their backward passes, and the activation layer.

Every backward function has the same signature, ``(grad_a, z, a) -> grad_z``: the upstream
gradient, and the forward's input and output. Each uses whichever of ``z`` and ``a`` gives the
derivative most cheaply, so a network can swap activations without changing its loop. An
elementwise function has a diagonal Jacobian, so backward is an elementwise product,
``∂L/∂z = ∂L/∂a ⊙ f'(z)``, and no transpose appears.

The layer, :class:`Activation`, is one family for every input it follows: a dense layer's
``(features, batch)``, a convolution's ``(channels, height, width, batch)`` and a sequence's
``(features, seq, batch)`` are all ``" features *positions batch"``. The functions above act on
the C-order view ``(features, positions·batch)``: every value for the elementwise ones, down
``features`` at each position of each example for softmax. The view is taken inside the layer,
whose annotations keep the input's shape, so the cache, and with it the scoped check of the
backward pass, holds every axis by name.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, get_args

import numpy as np
from jaxtyping import Float

from typedbackprop.checking import Array, checked, runtime_shapes_only, static_jaxtyping
from typedbackprop.nn.gelu import (
    GELU_GRAD_Z,
    GELU_TANH_GRAD_Z,
    gelu_backward,
    gelu_forward,
    gelu_tanh_backward,
    gelu_tanh_forward,
)
from typedbackprop.nn.layer import Layer
from typedbackprop.nn.softmax import SOFTMAX_GRAD_Z, softmax_backward, softmax_forward
from typedbackprop.nn.specs import Spec

__all__ = [
    "sigmoid_forward",
    "sigmoid_backward",
    "tanh_forward",
    "tanh_backward",
    "relu_forward",
    "relu_backward",
    "leaky_relu_forward",
    "leaky_relu_backward",
    "identity_forward",
    "identity_backward",
    "ACTIVATIONS",
    "Activation",
    "ActivationCache",
    "ActivationKind",
    "ElementwiseFunctions",
    "activation_forward",
    "activation_backward",
]


@checked
@static_jaxtyping("features batch")
def sigmoid_forward(z: Float[Array, "features batch"]) -> Float[Array, "features batch"]:
    """Logistic sigmoid ``a = 1 / (1 + exp(-z))``, computed without overflow.

    Parameters
    ----------
    z
        Pre-activations.

    Returns
    -------
    a
        Activations in ``[0, 1]``.

    Notes
    -----
    ``a_{fb} = σ(z_{fb})``. The textbook form ``1 / (1 + exp(-z))`` is accurate to the last
    bits in both tails, but overflows in ``exp(-z)`` for ``z < -709.78`` (float64) or
    ``z < -88.72`` (float32), minus the log of the largest float. It is used when every entry of
    ``-z`` is below that log less a margin of 1 (one reduction tells), as it is the cheapest
    form. Otherwise, with ``e = exp(-|z|) ∈ (0, 1]``, never an overflow,
    ``σ(z) = 1 / (1 + e)`` for ``z ≥ 0`` and ``σ(z) = e / (1 + e)`` for ``z < 0``.
    """
    minus_z = np.negative(z)
    if np.maximum.reduce(minus_z, axis=None, initial=-np.inf) < _EXP_LIMITS.get(z.dtype, -np.inf):
        np.exp(minus_z, out=minus_z)
        minus_z += 1.0
        return np.reciprocal(minus_z, out=minus_z)
    e = np.exp(-np.abs(z))  # NaN lands here too: NaN < limit is false
    # np.where returns no shape to Pyrefly: the annotation states the one it has, z's.
    numerator: Float[Array, "features batch"] = np.where(z >= 0, 1.0, e)
    e += 1.0
    numerator /= e
    return numerator


_EXP_LIMITS: dict[np.dtype[Any], float] = {
    np.dtype(kind): float(np.log(np.finfo(kind).max)) - 1.0
    for kind in (np.float16, np.float32, np.float64, np.longdouble)
}
"""Per dtype, a bound below which ``exp`` stays finite: ``log(max) - 1``, 708.78 in float64.

``log(max)`` itself is rounded, and in float32 ``exp`` of it already overflows; the margin of 1
costs nothing, as the stable form is exact there too. A dtype not listed (a byte-swapped one)
always takes the stable form."""


@checked
@static_jaxtyping("features batch")
def sigmoid_backward(
    grad_a: Float[Array, "features batch"],
    z: Float[Array, "features batch"],
    a: Float[Array, "features batch"],
) -> Float[Array, "features batch"]:
    """Gradient through the sigmoid: ``∂L/∂z = ∂L/∂a ⊙ a ⊙ (1 − a)``.

    Parameters
    ----------
    grad_a
        ``∂L/∂a``, the upstream gradient.
    z
        The forward's input (unused: the derivative is cheaper from ``a``).
    a
        The forward's output, ``σ(z)``.

    Returns
    -------
    grad_z
        ``∂L/∂z``.

    Notes
    -----
    ``∂L/∂z_{fb} = ∂L/∂a_{fb} σ'(z_{fb})`` with ``σ'(z) = σ(z)(1 − σ(z)) = a(1 − a)``. The
    classic bug is ``σ'`` evaluated at ``a`` instead of ``z``, ``σ(a)(1 − σ(a))``: same shape,
    wrong numbers, caught only by a gradient check.
    """
    return grad_a * a * (1.0 - a)


SIGMOID_GRAD_Z = Spec("grad_z", "fb,fb->fb", ("grad_a", "σ'(z)"))
""":func:`sigmoid_backward` in index form, ``∂L/∂z_{fb} = ∂L/∂a_{fb} σ'(z_{fb})``: no sum."""


@checked
@static_jaxtyping("features batch")
def tanh_forward(z: Float[Array, "features batch"]) -> Float[Array, "features batch"]:
    """Hyperbolic tangent ``a = tanh(z)``.

    Parameters
    ----------
    z
        Pre-activations.

    Returns
    -------
    a
        Activations in ``[-1, 1]``.

    Notes
    -----
    ``a_{fb} = tanh(z_{fb})``; ``np.tanh`` saturates without overflow.
    """
    return np.tanh(z)


@checked
@static_jaxtyping("features batch")
def tanh_backward(
    grad_a: Float[Array, "features batch"],
    z: Float[Array, "features batch"],
    a: Float[Array, "features batch"],
) -> Float[Array, "features batch"]:
    """Gradient through tanh: ``∂L/∂z = ∂L/∂a ⊙ (1 − a²)``.

    Parameters
    ----------
    grad_a
        ``∂L/∂a``, the upstream gradient.
    z
        The forward's input (unused: the derivative is cheaper from ``a``).
    a
        The forward's output, ``tanh(z)``.

    Returns
    -------
    grad_z
        ``∂L/∂z``.

    Notes
    -----
    ``∂L/∂z_{fb} = ∂L/∂a_{fb} tanh'(z_{fb})`` with ``tanh'(z) = 1 − tanh(z)² = 1 − a²``, so
    ``∂L/∂z_{fb} = ∂L/∂a_{fb} (1 − a_{fb}²)``.
    """
    return grad_a * (1.0 - a * a)


TANH_GRAD_Z = Spec("grad_z", "fb,fb->fb", ("grad_a", "tanh'(z)"))
""":func:`tanh_backward` in index form, ``∂L/∂z_{fb} = ∂L/∂a_{fb} tanh'(z_{fb})``."""


@checked
@static_jaxtyping("features batch")
def relu_forward(z: Float[Array, "features batch"]) -> Float[Array, "features batch"]:
    """Rectified linear unit ``a = max(z, 0)``.

    Parameters
    ----------
    z
        Pre-activations.

    Returns
    -------
    a
        Activations, zero where ``z ≤ 0``.

    Notes
    -----
    ``a_{fb} = max(z_{fb}, 0)``.
    """
    return np.maximum(z, 0.0)


@checked
@static_jaxtyping("features batch")
def relu_backward(
    grad_a: Float[Array, "features batch"],
    z: Float[Array, "features batch"],
    a: Float[Array, "features batch"],
) -> Float[Array, "features batch"]:
    """Gradient through ReLU: the upstream gradient where ``z > 0``, zero elsewhere.

    Parameters
    ----------
    grad_a
        ``∂L/∂a``, the upstream gradient.
    z
        The forward's input.
    a
        The forward's output (unused).

    Returns
    -------
    grad_z
        ``∂L/∂z``.

    Notes
    -----
    ``∂L/∂z_{fb} = ∂L/∂a_{fb} relu'(z_{fb})`` with ``relu'(z) = [z > 0]``, 1 where ``z > 0``
    and 0 elsewhere. At ``z = 0`` the derivative is taken as 0, as in PyTorch.
    """
    # A product with the 0/1 mask reads two arrays and writes one, where ``np.where`` also
    # reads a broadcast 0 (3-6x slower measured on mixed-sign data). ``+ 0.0`` turns the
    # product's -0.0 (a negative grad_a masked off) into the 0.0 ``np.where`` gives: the
    # result is bit-identical for finite grad_a.
    grad_z = grad_a * (z > 0)
    grad_z += 0.0
    return grad_z


RELU_GRAD_Z = Spec("grad_z", "fb,fb->fb", ("grad_a", "relu'(z)"))
""":func:`relu_backward` in index form, ``∂L/∂z_{fb} = ∂L/∂a_{fb} relu'(z_{fb})``."""


@checked
@runtime_shapes_only("np.where, the whole computation, returns no shape")
def leaky_relu_forward(
    z: Float[Array, "features batch"], slope: float = 0.01
) -> Float[Array, "features batch"]:
    """Leaky ReLU: ``a = z`` where ``z > 0``, ``slope · z`` elsewhere.

    Parameters
    ----------
    z
        Pre-activations.
    slope
        The gradient for negative ``z``.

    Returns
    -------
    a
        Activations.

    Notes
    -----
    ``a_{fb} = z_{fb}`` if ``z_{fb} > 0``, else ``slope · z_{fb}``.
    """
    return np.where(z > 0, z, slope * z)


@checked
@static_jaxtyping("features batch")
def leaky_relu_backward(
    grad_a: Float[Array, "features batch"],
    z: Float[Array, "features batch"],
    a: Float[Array, "features batch"],
    slope: float = 0.01,
) -> Float[Array, "features batch"]:
    """Gradient through leaky ReLU.

    Parameters
    ----------
    grad_a
        ``∂L/∂a``, the upstream gradient.
    z
        The forward's input.
    a
        The forward's output (unused).
    slope
        The gradient for negative ``z``; must match the forward's.

    Returns
    -------
    grad_z
        ``∂L/∂z``.

    Notes
    -----
    ``∂L/∂z_{fb} = ∂L/∂a_{fb} leaky_relu'(z_{fb})`` with ``leaky_relu'(z)`` 1 where ``z > 0``
    and ``slope`` elsewhere (``slope`` at ``z = 0``, as in PyTorch).
    """
    # grad_a · 1 is grad_a and grad_a · slope is slope · grad_a, exactly: the same bits as
    # choosing between grad_a and slope · grad_a, with one product instead of two arrays.
    # The annotation states the shape np.where returns (z's), which Pyrefly cannot see, so the
    # product with grad_a is checked by name.
    scalar = grad_a.dtype.type  # slope in grad_a's precision, as ``slope * grad_a`` takes it
    derivative: Float[Array, "features batch"] = np.where(z > 0, scalar(1.0), scalar(slope))
    return grad_a * derivative


LEAKY_RELU_GRAD_Z = Spec("grad_z", "fb,fb->fb", ("grad_a", "leaky_relu'(z)"))
""":func:`leaky_relu_backward` in index form, ``∂L/∂z_{fb} = ∂L/∂a_{fb} leaky_relu'(z_{fb})``."""


@checked
@static_jaxtyping("features batch")
def identity_forward(z: Float[Array, "features batch"]) -> Float[Array, "features batch"]:
    """The identity ``a = z``, for a linear output layer.

    Parameters
    ----------
    z
        Pre-activations.

    Returns
    -------
    a
        ``z`` itself, not a copy; nothing in typedbackprop writes to it.

    Notes
    -----
    ``a_{fb} = z_{fb}``.
    """
    return z


@checked
@static_jaxtyping("features batch")
def identity_backward(
    grad_a: Float[Array, "features batch"],
    z: Float[Array, "features batch"],
    a: Float[Array, "features batch"],
) -> Float[Array, "features batch"]:
    """Gradient through the identity: ``∂L/∂z = ∂L/∂a``.

    Parameters
    ----------
    grad_a
        ``∂L/∂a``, the upstream gradient.
    z
        The forward's input (unused).
    a
        The forward's output (unused).

    Returns
    -------
    grad_z
        ``grad_a`` itself, not a copy.

    Notes
    -----
    ``∂L/∂z_{fb} = ∂L/∂a_{fb} identity'(z_{fb})`` with ``identity'(z) = 1``: ``∂L/∂a`` itself.
    """
    return grad_a


IDENTITY_GRAD_Z = Spec("grad_z", "fb,fb->fb", ("grad_a", "identity'(z)"))
""":func:`identity_backward` in index form, ``∂L/∂z_{fb} = ∂L/∂a_{fb} identity'(z_{fb})``."""


# --- the activation family: one table, one record, the layer contract -------------------------

ActivationKind = Literal[
    "sigmoid", "tanh", "relu", "leaky_relu", "identity", "softmax", "gelu", "gelu_tanh"
]
"""Every activation the package has; :data:`ACTIVATIONS` holds their functions."""


@dataclass(frozen=True, slots=True)
class ElementwiseFunctions:
    """One activation's entry in :data:`ACTIVATIONS`."""

    forward: Callable[[Array, float], Array]
    """``(z, slope) -> a``; only leaky ReLU reads ``slope``."""
    backward: Callable[[Array, Array, Array, float], Array]
    """``(grad_a, z, a, slope) -> grad_z``."""
    has_kink: bool
    """Whether ``f'`` jumps at ``z = 0``: a central difference straddling it is meaningless."""
    acts_on: str
    """How it acts on a column: ``"elementwise"`` or ``"down each column"`` (softmax)."""


ACTIVATIONS: dict[str, ElementwiseFunctions] = {
    "sigmoid": ElementwiseFunctions(
        lambda z, slope: sigmoid_forward(z),
        lambda grad_a, z, a, slope: sigmoid_backward(grad_a, z, a),
        has_kink=False,
        acts_on="elementwise",
    ),
    "tanh": ElementwiseFunctions(
        lambda z, slope: tanh_forward(z),
        lambda grad_a, z, a, slope: tanh_backward(grad_a, z, a),
        has_kink=False,
        acts_on="elementwise",
    ),
    "relu": ElementwiseFunctions(
        lambda z, slope: relu_forward(z),
        lambda grad_a, z, a, slope: relu_backward(grad_a, z, a),
        has_kink=True,
        acts_on="elementwise",
    ),
    "leaky_relu": ElementwiseFunctions(
        leaky_relu_forward, leaky_relu_backward, has_kink=True, acts_on="elementwise"
    ),
    "identity": ElementwiseFunctions(
        lambda z, slope: identity_forward(z),
        lambda grad_a, z, a, slope: identity_backward(grad_a, z, a),
        has_kink=False,
        acts_on="elementwise",
    ),
    "softmax": ElementwiseFunctions(
        lambda z, slope: softmax_forward(z),
        lambda grad_a, z, a, slope: softmax_backward(grad_a, z, a),
        has_kink=False,
        acts_on="down each column",
    ),
    "gelu": ElementwiseFunctions(
        lambda z, slope: gelu_forward(z),
        lambda grad_a, z, a, slope: gelu_backward(grad_a, z, a),
        has_kink=False,
        acts_on="elementwise",
    ),
    "gelu_tanh": ElementwiseFunctions(
        lambda z, slope: gelu_tanh_forward(z),
        lambda grad_a, z, a, slope: gelu_tanh_backward(grad_a, z, a),
        has_kink=False,
        acts_on="elementwise",
    ),
}
"""Every activation's forward and backward pass, by name: the one table the network, training,
``explain`` and the command line consult."""

assert set(ACTIVATIONS) == set(get_args(ActivationKind))

ACTIVATION_SPECS: dict[str, Spec] = {
    "sigmoid": SIGMOID_GRAD_Z,
    "tanh": TANH_GRAD_Z,
    "relu": RELU_GRAD_Z,
    "leaky_relu": LEAKY_RELU_GRAD_Z,
    "identity": IDENTITY_GRAD_Z,
    "softmax": SOFTMAX_GRAD_Z,
    "gelu": GELU_GRAD_Z,
    "gelu_tanh": GELU_TANH_GRAD_Z,
}
"""Each activation's backward in index form (:class:`~typedbackprop.nn.specs.Spec`), by name:
the einsum ``explain`` prints beside the activation's backward row, and what the tests evaluate
against the function."""

assert set(ACTIVATION_SPECS) == set(ACTIVATIONS)


@dataclass(frozen=True, slots=True)
class Activation(Layer):
    """An activation layer, after a dense layer, a convolution or a sequence: only settings.

    Parameters
    ----------
    name
        Which activation (a key of :data:`ACTIVATIONS`).
    slope
        Leaky ReLU's gradient for negative ``z``; ignored by the others.

    Raises
    ------
    ValueError
        For an unknown name.
    """

    name: ActivationKind
    slope: float = 0.01

    def __post_init__(self) -> None:
        if self.name not in ACTIVATIONS:
            raise ValueError(
                f"unknown activation {self.name!r}; choose one of {tuple(ACTIVATIONS)}"
            )


@dataclass(frozen=True, slots=True)
class ActivationCache:
    """What :func:`activation_forward` saves: its input and its output."""

    layer: Activation
    """The activation and its settings."""
    z: Float[Array, " features *positions batch"]
    """The input (ReLU's backward reads it)."""
    a: Float[Array, " features *positions batch"]
    """The output (sigmoid's, tanh's and softmax's backward read it)."""


def _columns(values: Array) -> Array:
    """``(features, *positions, batch)`` as ``(features, positions·batch)``: one column per
    position of each example, the ``"features batch"`` the functions of :data:`ACTIVATIONS`
    take (a view: C order keeps ``features`` first)."""
    return values if values.ndim == 2 else values.reshape(values.shape[0], -1)


@checked
@runtime_shapes_only(
    "the activation comes from the ACTIVATIONS table and acts on a reshape to a product of "
    "dimensions (features, positions·batch), neither of which has a shape for Pyrefly"
)
def activation_forward(
    layer: Activation, z: Float[Array, " features *positions batch"]
) -> tuple[Float[Array, " features *positions batch"], ActivationCache]:
    """The activation layer under the layer contract: ``a = f(z)`` and what backward needs.

    Parameters
    ----------
    layer
        Which activation, with its settings.
    z
        Pre-activations: ``(features, batch)`` after a dense layer, ``(channels, height,
        width, batch)`` images after a convolution (``*positions`` is then the pixel), or
        ``(features, seq, batch)`` tokens.

    Returns
    -------
    a, cache
        The activations, and the :class:`ActivationCache` of ``z`` and ``a``.

    Notes
    -----
    ``a_{f…b} = f(z_{f…b})`` at every position ``…`` of every example ``b``; softmax is the
    one activation that is not elementwise: it runs down ``features`` (the classes, or an
    image's channels) at each position of each example,
    ``a_{f…b} = exp(z_{f…b}) / Σ_f′ exp(z_{f′…b})``.
    """
    a = ACTIVATIONS[layer.name].forward(_columns(z), layer.slope)
    if a.shape != z.shape:
        a = a.reshape(z.shape)
    return a, ActivationCache(layer, z, a)


@checked
@runtime_shapes_only(
    "the activation comes from the ACTIVATIONS table and acts on a reshape to a product of "
    "dimensions (features, positions·batch), neither of which has a shape for Pyrefly"
)
def activation_backward(
    grad_a: Float[Array, " features *positions batch"], cache: ActivationCache
) -> Float[Array, " features *positions batch"]:
    """Gradient through the activation layer: ``∂L/∂z``, shaped like the ``z`` forward saw.

    Parameters
    ----------
    grad_a
        ``∂L/∂a``, the upstream gradient.
    cache
        What :func:`activation_forward` saved.

    Returns
    -------
    grad_z
        ``∂L/∂z``: the layer has no parameters, so its one gradient is returned as is.

    Notes
    -----
    ``∂L/∂z_{f…b} = ∂L/∂a_{f…b} f'(z_{f…b})`` for the elementwise activations; softmax's,
    down ``features`` at each position of each example, is
    ``a_{f…b} (∂L/∂a_{f…b} − Σ_f′ a_{f′…b} ∂L/∂a_{f′…b})``.
    """
    layer = cache.layer
    function = ACTIVATIONS[layer.name]
    grad_z = function.backward(_columns(grad_a), _columns(cache.z), _columns(cache.a), layer.slope)
    if grad_z.shape != grad_a.shape:
        grad_z = grad_z.reshape(grad_a.shape)
    return grad_z
