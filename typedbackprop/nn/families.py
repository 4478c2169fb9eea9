"""The one table of layer families: what a network needs to run a layer of each kind.

A family is a parameter record (a frozen dataclass: arrays with named dimensions, settings as
plain fields), a cache record, and the pair ``<family>_forward(layer, x) -> (output, cache)`` and
``<family>_backward(grad_output, cache)``, which returns one gradient per array argument of
forward: ``(grad_layer, grad_x)`` for a family with parameters, ``grad_x`` alone for one without.
The network, training, checkpoints, ``explain`` and the tests find every family here; adding a
family means adding its module and one row to :data:`FAMILIES`.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from typedbackprop.checking import Array, record_fields
from typedbackprop.nn.activation2d import (
    Activation2d,
    activation2d_backward,
    activation2d_forward,
)
from typedbackprop.nn.activations import (
    Activation,
    activation_backward,
    activation_forward,
)
from typedbackprop.nn.affine import (
    Dense,
    dense_backward,
    dense_backward_params,
    dense_forward,
)
from typedbackprop.nn.attention import (
    Attention,
    attention_backward,
    attention_forward,
)
from typedbackprop.nn.batchnorm import (
    BatchNorm,
    BatchNorm2d,
    batchnorm2d_backward,
    batchnorm2d_forward,
    batchnorm2d_forward_eval,
    batchnorm2d_initial_state,
    batchnorm2d_update_state,
    batchnorm_backward,
    batchnorm_forward,
    batchnorm_forward_eval,
    batchnorm_initial_state,
    batchnorm_update_state,
)
from typedbackprop.nn.conv import (
    Conv2d,
    conv2d_backward,
    conv2d_backward_params,
    conv2d_forward,
)
from typedbackprop.nn.dropout import (
    Dropout,
    dropout_backward,
    dropout_forward,
)
from typedbackprop.nn.embedding import (
    Embedding,
    PositionalEmbedding,
    embedding_backward,
    embedding_forward,
    positional_backward,
    positional_forward,
)
from typedbackprop.nn.layernorm import (
    LayerNorm,
    layernorm_backward,
    layernorm_forward,
)
from typedbackprop.nn.mode import Mode
from typedbackprop.nn.pooling import (
    AvgPool2d,
    MaxPool2d,
    avgpool2d_backward,
    avgpool2d_forward,
    maxpool2d_backward,
    maxpool2d_forward,
)
from typedbackprop.nn.reshape import (
    Flatten,
    Unflatten,
    flatten_backward,
    flatten_forward,
    unflatten_backward,
    unflatten_forward,
)
from typedbackprop.nn.sequence import (
    KeepLast,
    TokenDense,
    keep_last_backward,
    keep_last_forward,
    token_dense_backward,
    token_dense_forward,
)
from typedbackprop.nn.transformer import (
    FeedForward,
    TransformerBlock,
    feedforward_backward,
    feedforward_forward,
    transformer_block_backward,
    transformer_block_forward,
)

__all__ = ["FAMILIES", "Family", "Mode", "StateRules", "family_of", "parameters"]


@dataclass(frozen=True, slots=True)
class StateRules:
    """How a family keeps state that is not a parameter, such as batch norm's running statistics.

    The state of a layer is a record of its own (``BatchNormState``), apart from the parameter
    record: training never steps it along a gradient. It travels beside the layers, one entry
    per layer, through :func:`~typedbackprop.nn.network.network_forward`'s ``states``.
    """

    initial: Callable[[Any], Any]
    """``layer -> state``: the state a new layer starts with."""
    forward: Callable[[Any, Array, Mode, Any], tuple[Array, Any]]
    """``(layer, x, mode, state) -> (output, cache)``: the forward pass that can read the state
    (evaluation uses it; training uses the batch)."""
    update: Callable[[Any, Any], Any]
    """``(state, cache) -> state``: the state after a forward pass whose cache is given (a new
    record; the old one is not modified)."""


@dataclass(frozen=True, slots=True)
class Family:
    """One layer family's row in :data:`FAMILIES`."""

    name: str
    """The family's name in checkpoints and messages (``"dense"``)."""
    record: type
    """The parameter record (``Dense``); a layer is an instance of it."""
    forward: Callable[[Any, Any, Mode], tuple[Array, Any]]
    """``(layer, x, mode) -> (output, cache)``."""
    backward: Callable[[Array, Any], Any]
    """``(grad_output, cache) -> (grad_layer, grad_x)``, or ``grad_x`` without parameters."""
    has_parameters: bool
    """Whether the record holds arrays that training updates."""
    backward_parameters: Callable[[Array, Any], Any] | None = None
    """``(grad_output, cache) -> grad_layer`` without ``grad_x``, for a network's first layer;
    ``None`` when the family has no cheaper form."""
    state: StateRules | None = None
    """How the family keeps state that is not a parameter; ``None`` for a family without."""


FAMILIES: dict[type, Family] = {
    Dense: Family(
        "dense",
        Dense,
        lambda layer, x, mode: dense_forward(layer, x),
        dense_backward,
        has_parameters=True,
        backward_parameters=dense_backward_params,
    ),
    Activation: Family(
        "activation",
        Activation,
        lambda layer, x, mode: activation_forward(layer, x),
        activation_backward,
        has_parameters=False,
    ),
    Embedding: Family(
        "embedding",
        Embedding,
        lambda layer, x, mode: embedding_forward(layer, x),
        lambda grad, cache: (embedding_backward(grad, cache), None),  # integer ids: no gradient
        has_parameters=True,
        backward_parameters=embedding_backward,
    ),
    PositionalEmbedding: Family(
        "positional_embedding",
        PositionalEmbedding,
        lambda layer, x, mode: positional_forward(layer, x),
        positional_backward,
        has_parameters=True,
    ),
    LayerNorm: Family(
        "layernorm",
        LayerNorm,
        lambda layer, x, mode: layernorm_forward(layer, x),
        layernorm_backward,
        has_parameters=True,
    ),
    Attention: Family(
        "attention",
        Attention,
        lambda layer, x, mode: attention_forward(layer, x),
        attention_backward,
        has_parameters=True,
    ),
    FeedForward: Family(
        "feedforward",
        FeedForward,
        lambda layer, x, mode: feedforward_forward(layer, x),
        feedforward_backward,
        has_parameters=True,
    ),
    TransformerBlock: Family(
        "transformer_block",
        TransformerBlock,
        lambda layer, x, mode: transformer_block_forward(layer, x),
        transformer_block_backward,
        has_parameters=True,
    ),
    KeepLast: Family(
        "keep_last",
        KeepLast,
        lambda layer, x, mode: keep_last_forward(layer, x),
        keep_last_backward,
        has_parameters=False,
    ),
    TokenDense: Family(
        "token_dense",
        TokenDense,
        lambda layer, x, mode: token_dense_forward(layer, x),
        token_dense_backward,
        has_parameters=True,
    ),
    Conv2d: Family(
        "conv2d",
        Conv2d,
        lambda layer, x, mode: conv2d_forward(layer, x),
        conv2d_backward,
        has_parameters=True,
        backward_parameters=conv2d_backward_params,
    ),
    MaxPool2d: Family(
        "maxpool2d",
        MaxPool2d,
        lambda layer, x, mode: maxpool2d_forward(layer, x),
        maxpool2d_backward,
        has_parameters=False,
    ),
    AvgPool2d: Family(
        "avgpool2d",
        AvgPool2d,
        lambda layer, x, mode: avgpool2d_forward(layer, x),
        avgpool2d_backward,
        has_parameters=False,
    ),
    BatchNorm: Family(
        "batchnorm",
        BatchNorm,
        lambda layer, x, mode: _without_state(batchnorm_forward, layer, x, mode),
        batchnorm_backward,
        has_parameters=True,
        state=StateRules(
            batchnorm_initial_state,
            lambda layer, x, mode, state: (
                batchnorm_forward(layer, x)
                if mode.training
                else batchnorm_forward_eval(layer, x, state)
            ),
            batchnorm_update_state,
        ),
    ),
    BatchNorm2d: Family(
        "batchnorm2d",
        BatchNorm2d,
        lambda layer, x, mode: _without_state(batchnorm2d_forward, layer, x, mode),
        batchnorm2d_backward,
        has_parameters=True,
        state=StateRules(
            batchnorm2d_initial_state,
            lambda layer, x, mode, state: (
                batchnorm2d_forward(layer, x)
                if mode.training
                else batchnorm2d_forward_eval(layer, x, state)
            ),
            batchnorm2d_update_state,
        ),
    ),
    Dropout: Family(
        "dropout",
        Dropout,
        dropout_forward,
        dropout_backward,
        has_parameters=False,
    ),
    Activation2d: Family(
        "activation2d",
        Activation2d,
        lambda layer, x, mode: activation2d_forward(layer, x),
        activation2d_backward,
        has_parameters=False,
    ),
    Flatten: Family(
        "flatten",
        Flatten,
        lambda layer, x, mode: flatten_forward(layer, x),
        flatten_backward,
        has_parameters=False,
    ),
    Unflatten: Family(
        "unflatten",
        Unflatten,
        lambda layer, x, mode: unflatten_forward(layer, x),
        unflatten_backward,
        has_parameters=False,
    ),
}
"""Every layer family, by record type."""


def _without_state(
    training_forward: Callable[[Any, Array], tuple[Array, Any]], layer: Any, x: Array, mode: Mode
) -> tuple[Array, Any]:
    """A stateful family's forward when no state is given: training only."""
    if not mode.training:
        raise ValueError(
            f"{type(layer).__name__} in evaluation mode normalises with its running statistics: "
            "pass the network's states (network_forward(layers, x, mode, "
            "states=initial_states(layers)), updated by training)"
        )
    return training_forward(layer, x)


def family_of(layer: object) -> Family:
    """The :class:`Family` of ``layer``; ``TypeError`` naming the type if it has none."""
    family = FAMILIES.get(type(layer))
    if family is None:
        known = ", ".join(kind.__name__ for kind in FAMILIES)
        raise TypeError(f"{type(layer).__name__} is not a layer; layers are one of: {known}")
    return family


def parameters(layer: object) -> dict[str, Array]:
    """A layer's parameter arrays by field name, in declaration order (empty without any).

    Parameters
    ----------
    layer
        A parameter record (or a gradient record of the same type).

    Returns
    -------
    dict
        ``{"W": ..., "b": ...}`` for a :class:`~typedbackprop.nn.affine.Dense`.
    """
    return {
        name: value
        for name, _ in record_fields(type(layer))
        if isinstance(value := getattr(layer, name), np.ndarray)
    }
