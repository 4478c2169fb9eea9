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

from typedbackprop.checking import Array
from typedbackprop.nn.activations import (
    Activation,
    activation_backward,
    activation_forward,
)
from typedbackprop.nn.affine import Dense, dense_backward, dense_backward_params, dense_forward
from typedbackprop.nn.attention import Attention, attention_backward, attention_forward
from typedbackprop.nn.embedding import (
    Embedding,
    PositionalEmbedding,
    embedding_backward,
    embedding_forward,
    positional_backward,
    positional_forward,
)
from typedbackprop.nn.layernorm import LayerNorm, layernorm_backward, layernorm_forward
from typedbackprop.nn.transformer import (
    FeedForward,
    TransformerBlock,
    feedforward_backward,
    feedforward_forward,
    transformer_block_backward,
    transformer_block_forward,
)

__all__ = ["FAMILIES", "Family", "Mode", "family_of"]


@dataclass(frozen=True, slots=True)
class Mode:
    """How a forward pass runs: training (batch statistics, dropout on) or evaluation."""

    training: bool = False
    """True while training; layers such as dropout and batch norm act differently then."""
    rng: np.random.Generator | None = None
    """The source of randomness for layers that draw (dropout's masks) while training."""


@dataclass(frozen=True, slots=True)
class Family:
    """One layer family's row in :data:`FAMILIES`."""

    name: str
    """The family's name in checkpoints and messages (``"dense"``)."""
    record: type
    """The parameter record (``Dense``); a layer is an instance of it."""
    forward: Callable[[Any, Any, Mode], tuple[Array, Any]]
    """``(layer, x, mode) -> (output, cache)``; ``x`` is an array (integer ids for an
    embedding)."""
    backward: Callable[[Array, Any], Any]
    """``(grad_output, cache) -> (grad_layer, grad_x)``, or ``grad_x`` without parameters."""
    has_parameters: bool
    """Whether the record holds arrays that training updates."""
    backward_parameters: Callable[[Array, Any], Any] | None = None
    """``(grad_output, cache) -> grad_layer`` without ``grad_x``, for a network's first layer;
    ``None`` when the family has no cheaper form."""


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
}
"""Every layer family, by record type."""


def family_of(layer: object) -> Family:
    """The :class:`Family` of ``layer``; ``TypeError`` naming the type if it has none."""
    family = FAMILIES.get(type(layer))
    if family is None:
        known = ", ".join(kind.__name__ for kind in FAMILIES)
        raise TypeError(f"{type(layer).__name__} is not a layer; layers are one of: {known}")
    return family
