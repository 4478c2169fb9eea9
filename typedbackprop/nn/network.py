"""A fully connected network: ``Dense`` layers, the forward pass, backprop, ``loss_and_grads``.

Layer ``l`` computes ``z_l = W_l a_{l-1} + b_l`` and ``a_l = f_l(z_l)``, with ``a_0 = x``. The
backward pass is the four backprop equations (Nielsen's BP1–BP4), written with ``δ_l = ∂L/∂z_l``:

- BP1  ``δ_L = ∂L/∂a_L ⊙ f_L'(z_L)``          (or ``∂L/∂z_L`` directly, for losses from logits)
- BP2  ``δ_l = (W_{l+1}ᵀ δ_{l+1}) ⊙ f_l'(z_l)``
- BP3  ``∂L/∂b_l = δ_l 1``                       (sum over ``batch``)
- BP4  ``∂L/∂W_l = δ_l a_{l-1}ᵀ``
"""

from collections.abc import Mapping, Sequence
from typing import Any, Literal, NamedTuple, cast, get_args

import numpy as np
from jaxtyping import Float, Int

from typedbackprop.checking import (
    CHECKS_ENABLED,
    Array,
    IntArray,
    checked,
    require_finite,
    runtime_shapes_only,
    trusted,
)
from typedbackprop.nn.activations import Activation, ActivationCache
from typedbackprop.nn.affine import Dense, DenseCache
from typedbackprop.nn.families import FAMILIES, Mode, family_of, parameters
from typedbackprop.nn.layer import Layer
from typedbackprop.nn.losses import LOSSES, LossName

__all__ = [
    "Dense",
    "LayerCache",
    "check_names",
    "ActivationName",
    "OutputActivationName",
    "LossName",
    "Layer",
    "mlp",
    "network_forward",
    "network_backward",
    "network_loss_and_grads",
    "initial_states",
    "forward",
    "backward",
    "loss_and_grads",
    "predict",
]

ActivationName = Literal["sigmoid", "tanh", "relu", "leaky_relu", "identity"]
OutputActivationName = Literal["identity", "sigmoid", "tanh", "softmax"]


TRAINING = Mode(training=True)
"""The mode of a training step with no randomness (no dropout)."""


class LayerCache(NamedTuple):
    """What the forward pass of one layer of a multilayer perceptron saves for backward."""

    a_prev: Float[Array, "inp batch"]
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
    if loss not in LOSSES:
        raise ValueError(f"unknown loss {loss!r}; choose one of {LOSS_NAMES}")
    needed = LOSSES[loss].output_activation
    if needed is not None and output_activation != needed:
        raise ValueError(
            f"loss {loss!r} is computed from the logits of a {needed} output layer; "
            f"use output_activation={needed!r}, not {output_activation!r}"
        )


def _check_layers(layers: Sequence[Dense], x: Array) -> None:
    """Layers must be non-empty, chain (``out`` of one is ``inp`` of the next), share x's dtype."""
    if not layers:
        raise ValueError("a network needs at least one layer")
    for index, layer in enumerate(layers):
        if type(layer) is not Dense:
            raise TypeError(
                f"layer {index} is a {type(layer).__name__}; this function takes a list of Dense "
                "with activation names (see network_loss_and_grads for any layers)"
            )
    width = x.shape[0]
    dtype = x.dtype
    for index, layer in enumerate(layers):
        rows, columns = layer.W.shape
        if columns != width:
            source = "x has" if index == 0 else f"layer {index - 1} gives"
            message = (
                f"layers do not chain: layer {index} expects inp={columns} inputs but {source} "
                f"{width} features (W of layer {index} has shape {layer.W.shape})"
            )
            if index == 0 and x.ndim == 2 and x.shape[1] == columns:  # the layout, first
                message = f"{_x_batch_first(columns, x)}\n{message}"
            raise ValueError(message)
        if layer.W.dtype != dtype or layer.b.dtype != dtype:
            raise TypeError(
                f"dtypes differ: x is {dtype} but layer {index} has W {layer.W.dtype} and "
                f"b {layer.b.dtype}; NumPy would silently compute in the wider one"
            )
        width = rows


def _x_batch_first(inputs: int, x: Array) -> str:
    """The advice for an ``x`` of shape ``(batch, inp)``, where the first layer takes ``inp``."""
    return (
        f"x looks batch-first: layer 0 expects inp={inputs} inputs but x has shape {x.shape}; "
        "typedbackprop takes features first, pass x.T"
    )


def _batch_first_advice(arguments: Mapping[str, object]) -> str | None:
    """What a refused call should say first when ``x`` (and ``y``) arrived batch-first.

    The shape check would blame whichever argument it reaches after ``x`` bound the sizes the
    wrong way round (``y``, for ``loss_and_grads``); the mistake is ``x``'s layout.
    """
    layers, x, y = arguments.get("layers"), arguments.get("x"), arguments.get("y")
    if not (isinstance(layers, list) and layers and isinstance(x, np.ndarray) and x.ndim == 2):
        return None
    first, last = layers[0], layers[-1]
    if type(first) is not Dense or type(last) is not Dense:
        return None
    inputs, outputs = first.W.shape[1], last.W.shape[0]
    if x.shape[0] == inputs:
        if isinstance(y, np.ndarray) and y.shape == (x.shape[1], outputs) != y.shape[::-1]:
            return (
                f"y looks batch-first: the last layer gives out={outputs} outputs for each of "
                f"batch={x.shape[1]} examples but y has shape {y.shape}; pass y.T"
            )
        return None
    if x.shape[1] != inputs:
        return None
    advice = _x_batch_first(inputs, x)
    if isinstance(y, np.ndarray) and y.shape == (x.shape[0], outputs) and outputs != x.shape[0]:
        advice += f", and y.T (y has shape {y.shape}, one row per example too)"
    return advice


_CHAINED = (
    "layers chained through a list and run by their FAMILIES entries: a list holds no shapes for "
    "Pyrefly, and each layer's out is the next one's inp, a chain no annotation names"
)
"""Why the network functions' shapes are checked at run time only."""


_ACTIVATION_LAYERS = {name: Activation(cast(Any, name)) for name in (*HIDDEN_NAMES, *OUTPUT_NAMES)}


def mlp(
    layers: Sequence[Dense],
    activation: str = "sigmoid",
    output_activation: str = "identity",
) -> list[Layer]:
    """A multilayer perceptron as a sequence of layers: each ``Dense`` followed by its activation.

    Parameters
    ----------
    layers
        The dense layers, first layer first.
    activation
        The hidden layers' activation.
    output_activation
        The last layer's activation.

    Returns
    -------
    list
        ``[Dense, Activation(activation), ..., Dense, Activation(output_activation)]``.
    """
    hidden, output = _ACTIVATION_LAYERS[activation], _ACTIVATION_LAYERS[output_activation]
    sequence: list[Layer] = []
    for layer in layers:
        sequence += [layer, hidden]
    if sequence:
        sequence[-1] = output
    return sequence


@checked(vouches_for_inner_calls=True)
@runtime_shapes_only(_CHAINED)
def network_forward(
    layers: Sequence[Layer],
    x: Float[Array, "*input"] | Int[IntArray, "*input"],
    mode: Mode = TRAINING,
    states: list[Any] | None = None,
) -> tuple[Float[Array, "*output"], list[Any]]:
    """Run any sequence of layers on ``x``: the output, and every layer's cache.

    Parameters
    ----------
    layers
        Layers of any family in :data:`~typedbackprop.nn.families.FAMILIES`, first first.
    x
        The input of the first layer.
    mode
        Training or evaluation (dropout, batch norm), and the randomness for training.
    states
        The state that is not a parameter (batch norm's running statistics), one entry per
        layer (``None`` for a layer without), as :func:`initial_states` makes it. Evaluation
        reads it; training replaces each entry by its update from this batch, in place (the
        list is changed, the records in it are not). Without ``states``, a layer that keeps
        state runs in training mode only.

    Returns
    -------
    output, caches
        The last layer's output, and one cache per layer.

    Notes
    -----
    Each layer's forward, ``output, cache = <family>_forward(layer, input)``, in order.
    """
    if states is not None and len(states) != len(layers):
        raise ValueError(f"{len(layers)} layers but {len(states)} states")
    caches = []
    output = cast(Array, x)  # the first layer may take integer ids (an embedding)
    for index, layer in enumerate(layers):
        family = FAMILIES.get(type(layer)) or family_of(layer)  # family_of names a stranger
        output, cache = family.run(layer, output, mode, None if states is None else states[index])
        if family.state is not None and states is not None and mode.training:
            states[index] = family.state.update(states[index], cache)
        caches.append(cache)
    return output, caches


def initial_states(layers: Sequence[Layer]) -> list[Any]:
    """The state each layer starts with: one entry per layer, ``None`` for most.

    Parameters
    ----------
    layers
        The network.

    Returns
    -------
    states
        For a layer whose family keeps state (batch norm: running mean 0, variance 1), its
        initial state record; ``None`` for the others. Pass it to :func:`network_forward`.
    """
    states: list[Any] = []
    for layer in layers:
        rules = family_of(layer).state
        states.append(None if rules is None else rules.initial(layer))
    return states


@checked(vouches_for_inner_calls=True)
@runtime_shapes_only(_CHAINED)
def network_backward(
    layers: Sequence[Layer],
    caches: Sequence[Any],
    grad_output: Float[Array, "*output"],
    *,
    input_gradient: bool = False,
) -> tuple[list[Layer | None], Float[Array, "*input"] | None]:
    """Backpropagate ``∂L/∂output`` through any sequence of layers.

    Parameters
    ----------
    layers
        The layers the forward pass ran.
    caches
        Their caches, from :func:`network_forward`.
    grad_output
        The gradient of the loss with respect to the last layer's output.
    input_gradient
        Whether to compute ``∂L/∂x`` for the first layer's input; by default it is skipped
        (nothing needs it, and it would cost a matrix product), and so is every gradient below
        the lowest layer with parameters (below a convnet's first convolution, say).

    Returns
    -------
    grads, grad_x
        One gradient record per layer (``None`` for a layer without parameters), and
        ``∂L/∂x`` or ``None``.

    Notes
    -----
    From the last layer down, ``grad_layer, grad_input = <family>_backward(grad, cache)``; the
    ``grad_input`` of one layer is the ``grad_output`` of the layer below (the chain rule).
    """
    if len(caches) != len(layers):
        raise ValueError(f"{len(layers)} layers but {len(caches)} caches")
    grads: list[Layer | None] = [None] * len(layers)
    grad = grad_output
    lowest = 0  # the lowest layer whose input gradient anything needs, or that has parameters
    if not input_gradient:
        lowest = next(
            (i for i, layer in enumerate(layers) if family_of(layer).has_parameters), len(layers)
        )
        if lowest == len(layers):
            return grads, None
    for index in reversed(range(len(layers))):
        family = FAMILIES.get(type(layers[index])) or family_of(layers[index])
        if index == lowest and not input_gradient:
            if family.has_parameters:
                if family.backward_parameters is not None:
                    grads[index] = family.backward_parameters(grad, caches[index])
                else:
                    grads[index] = family.backward(grad, caches[index])[0]
            return grads, None
        if family.has_parameters:
            grads[index], grad = family.backward(grad, caches[index])  # dense: BP4, BP3, Wᵀ δ
        else:
            grad = family.backward(grad, caches[index])  # activation: BP1 or BP2, ⊙ f'(z)
    return grads, grad


@checked(vouches_for_inner_calls=True)
@runtime_shapes_only(_CHAINED)
def network_loss_and_grads(
    layers: Sequence[Layer],
    x: Float[Array, "*input"] | Int[IntArray, "*input"],
    y: Float[Array, "*output"] | Int[IntArray, "*labels"],
    loss: LossName,
    mode: Mode = TRAINING,
    states: list[Any] | None = None,
) -> tuple[float, list[Layer | None]]:
    """The loss of any sequence of layers on a batch, and its gradient for every parameter.

    Parameters
    ----------
    layers
        The network, first layer first; for a loss from logits (``cross_entropy``,
        ``binary_cross_entropy``) the last layer must be the matching
        :class:`~typedbackprop.nn.activations.Activation` (softmax, sigmoid).
    x
        The input of the first layer.
    y
        Targets, as the loss takes them (see :data:`~typedbackprop.nn.losses.LOSSES`).
    loss
        The loss's name.
    mode
        Training (the default) or evaluation, and the randomness for training.
    states
        The layers' state, as for :func:`network_forward` (updated in place in training).

    Returns
    -------
    loss, grads
        The loss value, and one gradient record per layer (``None`` without parameters).

    Raises
    ------
    ValueError
        For an unknown loss, or a loss from logits after the wrong last layer.
    TypeError
        With checks on, if a gradient does not match its layer (count, type, shapes).

    Notes
    -----
    For a loss from logits, the forward pass stops below the last activation: the loss takes
    its input ``z``, the logits, and gives ``δ = ∂L/∂z`` itself, where the backward pass starts;
    the activation's output is never needed. Otherwise the whole chain runs from ``∂L/∂a``.
    """
    entry = LOSSES.get(loss)
    if entry is None:
        raise ValueError(f"unknown loss {loss!r}; choose one of {LOSS_NAMES}")
    if entry.from_logits:
        last = layers[-1] if layers else None
        if not isinstance(last, Activation) or last.name != entry.output_activation:
            raise ValueError(
                f"loss {loss!r} is computed from the logits of a {entry.output_activation} "
                "output layer: the last layer must be "
                f"Activation({entry.output_activation!r})"
            )
        if states is not None and len(states) != len(layers):
            raise ValueError(f"{len(layers)} layers but {len(states)} states")
        # The loss reads the logits z_L, the input of that activation: the activation itself
        # is not run (its output would be thrown away) nor backpropagated through.
        below = None if states is None else states[:-1]  # the activation keeps no state
        logits, caches = network_forward(layers[:-1], x, mode, below)
        if states is not None and below is not None:
            states[:-1] = below  # what training updated, in the caller's list
        value, delta = entry.function(logits, y)  # BP1 from logits: the loss gives ∂L/∂z_L
        grads, _ = network_backward(layers[:-1], caches, delta)
        grads.append(None)
    else:
        output, caches = network_forward(layers, x, mode, states)
        value, grad_output = entry.function(output, y)  # ∂L/∂a_L; BP1 is the last layer's backward
        grads, _ = network_backward(layers, caches, grad_output)
    if CHECKS_ENABLED and not trusted():  # a vouched-for call passed this check before
        _check_gradients(layers, grads)
    return value, grads


def _check_gradients(layers: Sequence[Layer], grads: Sequence[Any]) -> None:
    """Each gradient record must match its layer: one per layer, same type, same shapes."""
    if len(grads) != len(layers):
        raise TypeError(f"{len(grads)} gradients for {len(layers)} layers")
    for index, (layer, grad) in enumerate(zip(layers, grads, strict=True)):
        if not family_of(layer).has_parameters:
            continue
        if type(grad) is not type(layer):
            raise TypeError(
                f"the gradient of layer {index} is a {type(grad).__name__}, "
                f"not a {type(layer).__name__}"
            )
        gradients = parameters(grad)
        for name, value in parameters(layer).items():
            gradient = gradients[name]
            if gradient.shape != value.shape or gradient.dtype != value.dtype:
                raise TypeError(
                    f"layer {index}: grad {name} is {gradient.dtype} {gradient.shape} but "
                    f"{name} is {value.dtype} {value.shape}; a gradient has its parameter's shape"
                )


def _dense_caches(layers: Sequence[Dense], caches: Sequence[Any]) -> list[LayerCache]:
    """The per-layer ``(a_prev, z, a)`` of an MLP, from its dense and activation caches."""
    return [
        LayerCache(dense.a_prev, activation.z, activation.a)
        for dense, activation in zip(caches[0::2], caches[1::2], strict=True)
    ]


@checked(vouches_for_inner_calls=True, diagnose=_batch_first_advice)
@runtime_shapes_only(_CHAINED)
def forward(
    layers: list[Dense],
    x: Float[Array, "inp batch"],
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
    if not trusted():  # a call of this signature passed them: they read only the signature
        check_names(activation, output_activation, None)
        _check_layers(layers, x)
    _, caches = network_forward(mlp(layers, activation, output_activation), x)
    return _dense_caches(layers, caches)


@checked(vouches_for_inner_calls=True, diagnose=_batch_first_advice)
@runtime_shapes_only(_CHAINED)
def predict(
    layers: list[Dense],
    x: Float[Array, "inp batch"],
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
    if not trusted():  # a call of this signature passed them: they read only the signature
        check_names(activation, output_activation, None)
        _check_layers(layers, x)
    return network_forward(mlp(layers, activation, output_activation), x)[0]


@checked(vouches_for_inner_calls=True)
@runtime_shapes_only(_CHAINED)
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
    hidden = _ACTIVATION_LAYERS[activation]
    sequence = mlp(layers, activation)[:-1]  # δ_L is given: the output activation is done
    contract_caches: list[Any] = []
    for layer, cache in zip(layers, caches, strict=True):
        contract_caches += [
            DenseCache(layer.W, cache.a_prev),
            ActivationCache(hidden, cache.z, cache.a),
        ]
    grads, _ = network_backward(sequence, contract_caches[:-1], delta_output)
    dense_grads = cast(list[Dense], grads[0::2])
    if CHECKS_ENABLED and not trusted():
        _check_gradients(layers, dense_grads)
    return dense_grads


@checked(vouches_for_inner_calls=True, diagnose=_batch_first_advice)
@runtime_shapes_only(_CHAINED)
def loss_and_grads(
    layers: list[Dense],
    x: Float[Array, "inp batch"],
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
    loss's own gradient with respect to ``z_L`` (and the output activation is not computed);
    otherwise BP1 applies the output activation's backward to ``∂L/∂a_L`` (an identity output
    is no layer at all: ``a_L = z_L``). :func:`backward` does the rest.
    """
    if not trusted():  # a call of this signature passed them: they read only the signature
        check_names(activation, output_activation, loss)
        _check_layers(layers, x)
    if CHECKS_ENABLED:
        require_finite("x", x)
    entry = LOSSES[loss]
    targets = _labels(y) if entry.labels else _targets(y, x, loss)
    sequence = mlp(layers, activation, output_activation)
    if output_activation == "identity":  # a_L = z_L: no layer to run forward or backward
        sequence.pop()
    value, grads = network_loss_and_grads(sequence, x, targets, loss)
    dense_grads = cast("list[Dense]", grads[0::2])
    if CHECKS_ENABLED and not trusted():  # each gradient matches its layer, in order
        _check_gradients(layers, dense_grads)
    return value, dense_grads


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
