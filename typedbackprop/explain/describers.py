"""The one table of describers: how ``explain`` tells each layer family's equations.

A family's math lives in :mod:`typedbackprop.nn` (:data:`~typedbackprop.nn.families.FAMILIES`);
how ``explain`` prints it lives here, one row per parameter record, consulted by
:func:`~typedbackprop.explain.network.explain_network` for every layer it meets. A composite
layer's describer calls its parts' describers (see ``typedbackprop.explain.transformer``).
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from typedbackprop.checking import Array
from typedbackprop.explain.activations import activation_backward_rows, activation_forward_rows
from typedbackprop.explain.affine import dense_backward_rows, dense_forward_rows
from typedbackprop.explain.attention import attention_backward_rows, attention_forward_rows
from typedbackprop.explain.batchnorm import (
    batchnorm_backward_rows,
    batchnorm_forward_rows,
)
from typedbackprop.explain.conv import conv2d_backward_rows, conv2d_forward_rows
from typedbackprop.explain.dropout import dropout_backward_rows, dropout_forward_rows
from typedbackprop.explain.embedding import (
    EMBEDDING_NAMES,
    POSITIONAL_NAMES,
    embedding_backward_rows,
    embedding_forward_rows,
    positional_backward_rows,
    positional_forward_rows,
)
from typedbackprop.explain.layernorm import layernorm_backward_rows, layernorm_forward_rows
from typedbackprop.explain.pooling import (
    avgpool2d_backward_rows,
    avgpool2d_forward_rows,
    maxpool2d_backward_rows,
    maxpool2d_forward_rows,
)
from typedbackprop.explain.recurrent import (
    GRU_NAMES,
    LSTM_NAMES,
    RNN_NAMES,
    gru_backward_rows,
    gru_forward_rows,
    lstm_backward_rows,
    lstm_forward_rows,
    rnn_backward_rows,
    rnn_forward_rows,
)
from typedbackprop.explain.reshape import (
    flatten_backward_rows,
    flatten_forward_rows,
    unflatten_backward_rows,
    unflatten_forward_rows,
)
from typedbackprop.explain.sequence import (
    keep_last_backward_rows,
    keep_last_forward_rows,
    token_dense_backward_rows,
    token_dense_forward_rows,
)
from typedbackprop.explain.text import Names, Row
from typedbackprop.explain.transformer import (
    TRANSFORMER_BLOCK_NAMES,
    feedforward_backward_rows,
    feedforward_forward_rows,
    transformer_block_backward_rows,
    transformer_block_forward_rows,
)
from typedbackprop.nn.activations import Activation
from typedbackprop.nn.affine import Dense
from typedbackprop.nn.attention import Attention
from typedbackprop.nn.batchnorm import BatchNorm
from typedbackprop.nn.conv import Conv2d
from typedbackprop.nn.dropout import Dropout
from typedbackprop.nn.embedding import Embedding, PositionalEmbedding
from typedbackprop.nn.gru import GRU
from typedbackprop.nn.layernorm import LayerNorm
from typedbackprop.nn.lstm import LSTM
from typedbackprop.nn.pooling import AvgPool2d, MaxPool2d
from typedbackprop.nn.reshape import Flatten, Unflatten
from typedbackprop.nn.rnn import RNN
from typedbackprop.nn.sequence import KeepLast, TokenDense
from typedbackprop.nn.transformer import FeedForward, TransformerBlock

__all__ = ["DESCRIBERS", "Describer", "describer_of"]


@dataclass(frozen=True, slots=True)
class Describer:
    """How ``explain`` tells one family's equations."""

    symbol: str
    """The letter the layer's output is named with: ``z`` for a dense layer (``z1``)."""
    forward: Callable[[Names, Any, Any, Array], list[Row]]
    """``(names, layer, cache, output) -> rows``: the forward equations with shapes."""
    backward: Callable[[Names, Any, Any], list[Row]]
    """``(names, layer, cache) -> rows``: the backward equations with shapes, the input's
    gradient among them where ``names.input_gradient`` asks for it."""
    parameters: Mapping[str, str] = field(default_factory=dict)
    """A parameter's name in the equations, by its record's field, where the two differ (an
    embedding's ``table`` is ``E``); every other parameter is called by its field's name."""


DESCRIBERS: dict[type, Describer] = {
    Dense: Describer("z", dense_forward_rows, dense_backward_rows),
    Activation: Describer("a", activation_forward_rows, activation_backward_rows),
    Embedding: Describer("e", embedding_forward_rows, embedding_backward_rows, EMBEDDING_NAMES),
    PositionalEmbedding: Describer(
        "p", positional_forward_rows, positional_backward_rows, POSITIONAL_NAMES
    ),
    LayerNorm: Describer("n", layernorm_forward_rows, layernorm_backward_rows),
    Attention: Describer("y", attention_forward_rows, attention_backward_rows),
    FeedForward: Describer("f", feedforward_forward_rows, feedforward_backward_rows),
    TransformerBlock: Describer(
        "h",
        transformer_block_forward_rows,
        transformer_block_backward_rows,
        TRANSFORMER_BLOCK_NAMES,
    ),
    KeepLast: Describer("k", keep_last_forward_rows, keep_last_backward_rows),
    TokenDense: Describer("z", token_dense_forward_rows, token_dense_backward_rows),
    Conv2d: Describer("z", conv2d_forward_rows, conv2d_backward_rows),
    MaxPool2d: Describer("p", maxpool2d_forward_rows, maxpool2d_backward_rows),
    AvgPool2d: Describer("p", avgpool2d_forward_rows, avgpool2d_backward_rows),
    BatchNorm: Describer("y", batchnorm_forward_rows, batchnorm_backward_rows),
    Dropout: Describer("d", dropout_forward_rows, dropout_backward_rows),
    Flatten: Describer("f", flatten_forward_rows, flatten_backward_rows),
    Unflatten: Describer("x", unflatten_forward_rows, unflatten_backward_rows),
    RNN: Describer("h", rnn_forward_rows, rnn_backward_rows, RNN_NAMES),
    LSTM: Describer("h", lstm_forward_rows, lstm_backward_rows, LSTM_NAMES),
    GRU: Describer("h", gru_forward_rows, gru_backward_rows, GRU_NAMES),
}
"""Every family's describer, by parameter record type (the keys of
:data:`~typedbackprop.nn.families.FAMILIES`)."""


def describer_of(layer: object) -> Describer:
    """The :class:`Describer` of ``layer``; ``TypeError`` naming the type if it has none."""
    describer = DESCRIBERS.get(type(layer))
    if describer is None:
        known = ", ".join(kind.__name__ for kind in DESCRIBERS)
        raise TypeError(f"{type(layer).__name__} has no describer; explain knows: {known}")
    return describer
