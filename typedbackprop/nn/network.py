"""A fully connected network: ``Dense`` layers, the forward pass, backprop, ``loss_and_grads``.

Layer ``l`` computes ``z_l = W_l a_{l-1} + b_l`` and ``a_l = f_l(z_l)``, with ``a_0 = x``. The
backward pass is the four backprop equations (Nielsen's BP1–BP4), written with ``δ_l = ∂L/∂z_l``:

- BP1  ``δ_L = ∂L/∂a_L ⊙ f_L'(z_L)``          (or ``∂L/∂z_L`` directly, for losses from logits)
- BP2  ``δ_l = (W_{l+1}ᵀ δ_{l+1}) ⊙ f_l'(z_l)``
- BP3  ``∂L/∂b_l = δ_l 1``                       (sum over ``batch``)
- BP4  ``∂L/∂W_l = δ_l a_{l-1}ᵀ``
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal, NamedTuple, cast, get_args

from jaxtyping import Float, Int

from typedbackprop.checking import (
    CHECKS_ENABLED,
    Array,
    IntArray,
    _trust,
    checked,
    require_finite,
)
from typedbackprop.nn.activations import (
    identity_backward,
    identity_forward,
    leaky_relu_backward,
    leaky_relu_forward,
    relu_backward,
    relu_forward,
    sigmoid_backward,
    sigmoid_forward,
    tanh_backward,
    tanh_forward,
)
from typedbackprop.nn.affine import affine_forward, affine_grad_input, affine_grad_params
from typedbackprop.nn.losses import binary_cross_entropy, cross_entropy, squared_error
from typedbackprop.nn.softmax import softmax_backward, softmax_forward

__all__ = [
    "Dense",
    "LayerCache",
    "check_names",
    "ActivationName",
    "OutputActivationName",
    "LossName",
    "forward",
    "backward",
    "loss_and_grads",
    "predict",
]

ActivationName = Literal["sigmoid", "tanh", "relu", "leaky_relu", "identity"]
OutputActivationName = Literal["identity", "sigmoid", "tanh", "softmax"]
LossName = Literal["squared_error", "binary_cross_entropy", "cross_entropy"]

ActivationForward = Callable[[Array], Array]
ActivationBackward = Callable[[Array, Array, Array], Array]

ACTIVATIONS: dict[str, tuple[ActivationForward, ActivationBackward]] = {
    "sigmoid": (sigmoid_forward, sigmoid_backward),
    "tanh": (tanh_forward, tanh_backward),
    "relu": (relu_forward, relu_backward),
    "leaky_relu": (leaky_relu_forward, leaky_relu_backward),
    "identity": (identity_forward, identity_backward),
    "softmax": (softmax_forward, softmax_backward),
}
"""Each activation's ``(forward, backward)`` pair, by name."""

LOGIT_LOSSES: dict[str, str] = {"binary_cross_entropy": "sigmoid", "cross_entropy": "softmax"}
"""Losses computed from logits, and the output activation each one belongs to."""


@checked
def _check_dense_shapes(W: Float[Array, "out in"], b: Float[Array, " out"]) -> None:
    """Bind ``out`` across ``W`` and ``b``: the check behind :class:`Dense`."""


@dataclass(frozen=True, slots=True)
class Dense:
    """One fully connected layer's parameters (or their gradients: the same shapes).

    Parameters
    ----------
    W
        Weights; row ``o`` holds the weights into output unit ``o``.
    b
        Biases, one per output unit.

    Notes
    -----
    Creating a ``Dense`` checks that ``W`` is 2-D, ``b`` is 1-D, both are floating point and
    ``b`` has one entry per row of ``W`` (they agree on ``out``). The arrays are held, not
    copied; typedbackprop never writes to them.
    """

    W: Float[Array, "out in"]
    b: Float[Array, " out"]

    if CHECKS_ENABLED:  # with checks off, creating a Dense costs no call at all

        def __post_init__(self) -> None:
            if not _trust.depth:  # inside a vouched-for call, this shape check passed before
                _check_dense_shapes(self.W, self.b)


class LayerCache(NamedTuple):
    """What the forward pass of one layer saves for the backward pass."""

    a_prev: Float[Array, "in batch"]
    """The layer's input (``x`` for the first layer)."""
    z: Float[Array, "out batch"]
    """The pre-activation ``W a_prev + b``."""
    a: Float[Array, "out batch"]
    """The activation ``f(z)``."""


HIDDEN_NAMES: tuple[str, ...] = get_args(ActivationName)
OUTPUT_NAMES: tuple[str, ...] = get_args(OutputActivationName)
LOSS_NAMES: tuple[str, ...] = get_args(LossName)


def check_names(activation: str, output_activation: str, loss: str | None) -> None:
    """Raise ``ValueError`` for an unknown name or a loss without its output activation."""
    if activation not in HIDDEN_NAMES:
        raise ValueError(f"unknown activation {activation!r}; choose one of {HIDDEN_NAMES}")
    if output_activation not in OUTPUT_NAMES:
        raise ValueError(
            f"unknown output_activation {output_activation!r}; choose one of {OUTPUT_NAMES}"
        )
    if loss is None:
        return
    if loss not in LOSS_NAMES:
        raise ValueError(f"unknown loss {loss!r}; choose one of {LOSS_NAMES}")
    needed = LOGIT_LOSSES.get(loss)
    if needed is not None and output_activation != needed:
        raise ValueError(
            f"loss {loss!r} is computed from the logits of a {needed} output layer; "
            f"use output_activation={needed!r}, not {output_activation!r}"
        )


def _check_layers(layers: Sequence[Dense], x: Array) -> None:
    """Layers must be non-empty, chain (``out`` of one is ``in`` of the next), share x's dtype."""
    if not layers:
        raise ValueError("a network needs at least one layer")
    width = x.shape[0]
    dtype = x.dtype
    for index, layer in enumerate(layers):
        rows, columns = layer.W.shape
        if columns != width:
            source = "x has" if index == 0 else f"layer {index - 1} gives"
            hint = ""
            if index == 0 and x.ndim == 2 and x.shape[1] == columns:
                hint = "; x looks batch-first: typedbackprop takes features first, pass x.T"
            raise ValueError(
                f"layers do not chain: layer {index} expects in={columns} inputs but {source} "
                f"{width} features (W of layer {index} has shape {layer.W.shape}){hint}"
            )
        if layer.W.dtype != dtype or layer.b.dtype != dtype:
            raise TypeError(
                f"dtypes differ: x is {dtype} but layer {index} has W {layer.W.dtype} and "
                f"b {layer.b.dtype}; NumPy would silently compute in the wider one"
            )
        width = rows


def _forward(
    layers: list[Dense],
    x: Array,
    hidden_forward: ActivationForward,
    output_forward: ActivationForward,
) -> list[LayerCache]:
    """The forward pass proper; names and layers were checked by the caller."""
    caches: list[LayerCache] = []
    a_prev = x
    last = len(layers) - 1
    for index, layer in enumerate(layers):
        z = affine_forward(layer.W, layer.b, a_prev)
        a = (output_forward if index == last else hidden_forward)(z)
        caches.append(LayerCache(a_prev, z, a))
        a_prev = a
    return caches


def _backward(
    layers: list[Dense],
    caches: list[LayerCache],
    delta_output: Array,
    hidden_backward: ActivationBackward,
) -> list[Dense]:
    """The backward pass proper: BP4, BP3, then BP2 for the layer below."""
    grads: list[Dense] = []
    delta = delta_output
    for index in reversed(range(len(layers))):
        grad_W, grad_b = affine_grad_params(delta, caches[index].a_prev)  # BP4: δ a_prevᵀ, BP3: δ 1
        grads.append(Dense(grad_W, grad_b))
        if index > 0:
            below = caches[index - 1]
            grad_a_prev = affine_grad_input(delta, layers[index].W)  # Wᵀ δ
            delta = hidden_backward(grad_a_prev, below.z, below.a)  # BP2: (Wᵀ δ) ⊙ f'(z)
    grads.reverse()
    return grads


@checked(vouches_for_inner_calls=True)
def forward(
    layers: list[Dense],
    x: Float[Array, "in batch"],
    activation: ActivationName = "sigmoid",
    output_activation: OutputActivationName = "identity",
) -> list[LayerCache]:
    """Run the network on a batch and keep what the backward pass needs.

    Parameters
    ----------
    layers
        The network, first layer first.
    x
        Inputs, one column per example.
    activation
        The hidden layers' activation.
    output_activation
        The last layer's activation.

    Returns
    -------
    caches
        One :class:`LayerCache` per layer; ``caches[-1].a`` is the network's output.

    Notes
    -----
    ``a_0 = x``; for each layer ``z_l = W_l a_{l-1} + b_l`` and ``a_l = f_l(z_l)``.
    """
    check_names(activation, output_activation, None)
    _check_layers(layers, x)
    return _forward(layers, x, ACTIVATIONS[activation][0], ACTIVATIONS[output_activation][0])


@checked(vouches_for_inner_calls=True)
def predict(
    layers: list[Dense],
    x: Float[Array, "in batch"],
    activation: ActivationName = "sigmoid",
    output_activation: OutputActivationName = "identity",
) -> Float[Array, "out batch"]:
    """The network's output ``a_L`` for inputs ``x`` (see :func:`forward`).

    Parameters
    ----------
    layers
        The network, first layer first.
    x
        Inputs, one column per example.
    activation
        The hidden layers' activation.
    output_activation
        The last layer's activation.

    Returns
    -------
    a_L
        The last layer's activations.
    """
    return forward(layers, x, activation, output_activation)[-1].a


@checked(vouches_for_inner_calls=True)
def backward(
    layers: list[Dense],
    caches: list[LayerCache],
    delta_output: Float[Array, "out batch"],
    activation: ActivationName = "sigmoid",
) -> list[Dense]:
    """Backpropagate ``δ_L = ∂L/∂z_L`` through the network: one gradient :class:`Dense` per layer.

    Parameters
    ----------
    layers
        The network the forward pass ran.
    caches
        What :func:`forward` saved, one entry per layer.
    delta_output
        ``δ_L = ∂L/∂z_L``, the gradient at the last layer's pre-activation (BP1).
    activation
        The hidden layers' activation.

    Returns
    -------
    grads
        ``grads[l].W = ∂L/∂W_l`` and ``grads[l].b = ∂L/∂b_l``, the shapes of ``layers[l]``.

    Notes
    -----
    From the top layer down, the loop body is BP4 ``∂L/∂W_l = δ_l a_{l-1}ᵀ``, BP3
    ``∂L/∂b_l = δ_l 1``, then BP2 ``δ_{l-1} = (W_lᵀ δ_l) ⊙ f'(z_{l-1})`` for the layer below. The
    first layer skips BP2: nobody needs ``∂L/∂x`` and it would cost a matrix product.
    """
    check_names(activation, "identity", None)
    if len(caches) != len(layers):
        raise ValueError(f"{len(layers)} layers but {len(caches)} caches")
    return _backward(layers, caches, delta_output, ACTIVATIONS[activation][1])


@checked(vouches_for_inner_calls=True)
def loss_and_grads(
    layers: list[Dense],
    x: Float[Array, "in batch"],
    y: Float[Array, "out batch"] | Int[IntArray, " batch"],
    activation: ActivationName = "sigmoid",
    output_activation: OutputActivationName = "identity",
    loss: LossName = "squared_error",
) -> tuple[float, list[Dense]]:
    """The loss of the network on a batch, and its gradient with respect to every parameter.

    Parameters
    ----------
    layers
        The network, first layer first; ``W`` of layer ``l`` is ``(out_l, in_l)``.
    x
        Inputs, one column per example (features first, as in ``z = W x + b``).
    y
        Targets: ``(out_L, batch)`` floats for ``squared_error`` and ``binary_cross_entropy``,
        integer class labels ``(batch,)`` for ``cross_entropy``.
    activation
        The hidden layers' activation.
    output_activation
        The last layer's activation; ``binary_cross_entropy`` needs ``"sigmoid"`` and
        ``cross_entropy`` needs ``"softmax"``.
    loss
        The loss, a mean over the batch (see :mod:`typedbackprop.nn.losses`).

    Returns
    -------
    loss
        The loss value.
    grads
        ``∂L/∂W_l`` and ``∂L/∂b_l`` as one :class:`Dense` per layer, the shapes of ``layers``.

    Raises
    ------
    ValueError
        For an unknown name, layers that do not chain, targets that do not fit the loss, or
        NaN/inf in ``x`` or ``y`` (with checks on).
    TypeError
        For a wrong shape or dtype (:class:`jaxtyping.TypeCheckError` names the dimension), or
        parameters whose dtype differs from ``x``'s.

    Notes
    -----
    The forward pass stores ``(a_prev, z, a)`` per layer. For a loss from logits, ``δ_L`` is the
    loss's own gradient with respect to ``z_L``; otherwise BP1 applies the output activation's
    backward to ``∂L/∂a_L``. :func:`backward` does the rest.
    """
    check_names(activation, output_activation, loss)
    _check_layers(layers, x)
    if CHECKS_ENABLED:
        require_finite("x", x)
    hidden_forward, hidden_backward = ACTIVATIONS[activation]
    output_forward, output_backward = ACTIVATIONS[output_activation]
    caches = _forward(layers, x, hidden_forward, output_forward)
    output = caches[-1]
    if loss == "cross_entropy":
        value, delta_output = cross_entropy(output.z, _labels(y))
    elif loss == "binary_cross_entropy":
        value, delta_output = binary_cross_entropy(output.z, _targets(y, x, loss))
    else:
        value, grad_output_a = squared_error(output.a, _targets(y, x, loss))
        delta_output = output_backward(grad_output_a, output.z, output.a)  # BP1
    return value, _backward(layers, caches, delta_output, hidden_backward)


def _labels(y: Array | IntArray) -> IntArray:
    if y.ndim != 1 or y.dtype.kind not in "iu":
        raise TypeError(
            f"cross_entropy takes integer labels of shape (batch,); got {y.dtype} {y.shape}"
        )
    return cast(IntArray, y)


def _targets(y: Array | IntArray, x: Array, loss: str) -> Array:
    if y.ndim != 2 or y.dtype.kind != "f":
        raise TypeError(
            f"{loss} takes float targets of shape (out, batch); got {y.dtype} {y.shape}"
        )
    if y.dtype != x.dtype:
        raise TypeError(f"dtypes differ: x is {x.dtype} but y is {y.dtype}")
    targets = cast(Array, y)
    if CHECKS_ENABLED:
        require_finite("y", targets)
    return targets
