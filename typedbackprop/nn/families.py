"""The one table of layer families: what a network needs to run a layer of each kind.

A family is a parameter record (a frozen dataclass: arrays with named dimensions, settings as
plain fields), a cache record, and the pair ``<family>_forward(layer, x) -> (output, cache)`` and
``<family>_backward(grad_output, cache)``, which returns one gradient per array argument of
forward: ``(grad_layer, grad_x)`` for a family with parameters, ``grad_x`` alone for one without.
The network, training, checkpoints, ``explain`` and the tests find every family here; adding a
family means adding its module and one row to :data:`FAMILIES`. The row is the math contract
only: how ``explain`` tells a family's equations is in
:data:`typedbackprop.explain.describers.DESCRIBERS`.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from jaxtyping import Float

from typedbackprop.checking import Array, checked, record_fields, runtime_shapes_only
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
from typedbackprop.nn.gru import GRU, GRUCache, gru_backward, gru_forward
from typedbackprop.nn.layernorm import (
    LayerNorm,
    layernorm_backward,
    layernorm_forward,
)
from typedbackprop.nn.lstm import LSTM, LSTMCache, lstm_backward, lstm_forward
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
from typedbackprop.nn.rnn import RNN, RNNCache, rnn_backward, rnn_forward
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
from typedbackprop.nn.tree import leaves

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
    evaluate: Callable[[Any, Array, Any], tuple[Array, Any]]
    """``(layer, x, state) -> (output, cache)``: the forward pass in evaluation, which reads the
    state (training runs the family's forward, on the batch's own statistics)."""
    update: Callable[[Any, Any], Any]
    """``(state, cache) -> state``: the state after a training forward pass whose cache is given
    (a new record; the old one is not modified)."""


@dataclass(frozen=True, slots=True)
class Family:
    """One layer family's row in :data:`FAMILIES`: its math, and nothing else.

    Every forward takes ``(layer, x)``; a family that reads the mode (dropout) takes it as the
    keyword ``mode`` too, and says so with :attr:`reads_mode`. :meth:`run` calls it either way.
    """

    record: type
    """The parameter record (``Dense``); a layer is an instance of it, and :data:`FAMILIES` is
    keyed by it."""
    forward: Callable[..., tuple[Array, Any]]
    """``(layer, x) -> (output, cache)``; ``(layer, x, mode=mode)`` where :attr:`reads_mode`."""
    backward: Callable[[Array, Any], Any]
    """``(grad_output, cache) -> (grad_layer, grad_x)``, or ``grad_x`` without parameters."""
    backward_parameters: Callable[[Array, Any], Any] | None = None
    """``(grad_output, cache) -> grad_layer`` without ``grad_x``, for a network's first layer;
    ``None`` when the family has no cheaper form."""
    state: StateRules | None = None
    """How the family keeps state that is not a parameter; ``None`` for a family without."""
    reads_mode: bool = False
    """Whether forward takes the mode (``mode=``): dropout draws its mask from ``mode.rng``."""

    @property
    def has_parameters(self) -> bool:
        """Whether the record holds arrays that training updates (read from its fields)."""
        return bool(record_fields(self.record))

    def run(self, layer: Any, x: Any, mode: Mode, state: Any = None) -> tuple[Array, Any]:
        """The forward pass of ``layer`` on ``x`` in ``mode``: ``(output, cache)``.

        Parameters
        ----------
        layer
            A layer of this family.
        x
            Its input.
        mode
            Training or evaluation; handed to forward only where :attr:`reads_mode`.
        state
            The layer's state, for a family that keeps one (read in evaluation).

        Raises
        ------
        ValueError
            In evaluation without the state a stateful family normalizes with.
        """
        if self.state is not None and not mode.training:
            if state is None:
                raise ValueError(
                    f"{type(layer).__name__} in evaluation mode normalizes with its running "
                    "statistics: pass the network's states (network_forward(layers, x, mode, "
                    "states=initial_states(layers)), updated by training)"
                )
            return self.state.evaluate(layer, x, state)
        if self.reads_mode:
            return self.forward(layer, x, mode=mode)
        return self.forward(layer, x)


def _embedding_backward(grad_e: Array, cache: Any) -> tuple[Embedding, None]:
    """The table's gradient, and ``None`` for the input: integer ids have no gradient."""
    return embedding_backward(grad_e, cache), None


# The recurrent layers' backward passes return a third gradient, ∂L/∂(initial state), for a caller
# that passed one (a next chunk of a sequence); in a network the forward starts from zeros, so
# the family's backward is the contract's pair. Each passes the layer's own ``truncate``
# setting on: truncated BPTT is a setting of the layer record, which training sets.


_ADAPTER = (
    "one call of the family's backward on the cache, a record whose fields have no shape for "
    "Pyrefly"
)
"""Why the three adapters below are checked at run time only."""


@checked(vouches_for_inner_calls=True)
@runtime_shapes_only(_ADAPTER)
def _rnn_backward(
    grad_hidden_states: Float[Array, "hidden seq batch"], cache: RNNCache
) -> tuple[RNN, Float[Array, "features seq batch"]]:
    """:func:`~typedbackprop.nn.rnn.rnn_backward` as ``(grad_layer, grad_x)``, truncated at
    the layer's ``truncate``."""
    grads, grad_x, _ = rnn_backward(grad_hidden_states, cache, truncate=cache.layer.truncate)
    return grads, grad_x


@checked(vouches_for_inner_calls=True)
@runtime_shapes_only(_ADAPTER)
def _lstm_backward(
    grad_hidden_states: Float[Array, "hidden seq batch"], cache: LSTMCache
) -> tuple[LSTM, Float[Array, "features seq batch"]]:
    """:func:`~typedbackprop.nn.lstm.lstm_backward` as ``(grad_layer, grad_x)``, truncated at
    the layer's ``truncate``."""
    grads, grad_x, _ = lstm_backward(grad_hidden_states, cache, truncate=cache.layer.truncate)
    return grads, grad_x


@checked(vouches_for_inner_calls=True)
@runtime_shapes_only(_ADAPTER)
def _gru_backward(
    grad_hidden_states: Float[Array, "hidden seq batch"], cache: GRUCache
) -> tuple[GRU, Float[Array, "features seq batch"]]:
    """:func:`~typedbackprop.nn.gru.gru_backward` as ``(grad_layer, grad_x)``, truncated at
    the layer's ``truncate``."""
    grads, grad_x, _ = gru_backward(grad_hidden_states, cache, truncate=cache.layer.truncate)
    return grads, grad_x


FAMILIES: dict[type, Family] = {
    family.record: family
    for family in [
        Family(Dense, dense_forward, dense_backward, dense_backward_params),
        Family(Activation, activation_forward, activation_backward),
        Family(Embedding, embedding_forward, _embedding_backward, embedding_backward),
        Family(PositionalEmbedding, positional_forward, positional_backward),
        Family(LayerNorm, layernorm_forward, layernorm_backward),
        Family(Attention, attention_forward, attention_backward),
        Family(FeedForward, feedforward_forward, feedforward_backward),
        Family(TransformerBlock, transformer_block_forward, transformer_block_backward),
        Family(KeepLast, keep_last_forward, keep_last_backward),
        Family(TokenDense, token_dense_forward, token_dense_backward),
        Family(Conv2d, conv2d_forward, conv2d_backward, conv2d_backward_params),
        Family(MaxPool2d, maxpool2d_forward, maxpool2d_backward),
        Family(AvgPool2d, avgpool2d_forward, avgpool2d_backward),
        Family(
            BatchNorm,
            batchnorm_forward,
            batchnorm_backward,
            state=StateRules(
                batchnorm_initial_state, batchnorm_forward_eval, batchnorm_update_state
            ),
        ),
        Family(Dropout, dropout_forward, dropout_backward, reads_mode=True),
        Family(Flatten, flatten_forward, flatten_backward),
        Family(Unflatten, unflatten_forward, unflatten_backward),
        Family(RNN, rnn_forward, _rnn_backward),
        Family(LSTM, lstm_forward, _lstm_backward),
        Family(GRU, gru_forward, _gru_backward),
    ]
}
"""Every layer family, by record type."""


def family_of(layer: object) -> Family:
    """The :class:`Family` of ``layer``; ``TypeError`` naming the type if it has none."""
    family = FAMILIES.get(type(layer))
    if family is None:
        known = ", ".join(kind.__name__ for kind in FAMILIES)
        raise TypeError(f"{type(layer).__name__} is not a layer; layers are one of: {known}")
    return family


def parameters(layer: object) -> dict[str, Array]:
    """A layer's parameter arrays by dotted path, in declaration order (empty without any).

    Parameters
    ----------
    layer
        A parameter record (or a gradient record of the same type).

    Returns
    -------
    dict
        ``{"W": ..., "b": ...}`` for a :class:`~typedbackprop.nn.affine.Dense`; for a layer
        made of layers, the path through its parts (``"attention.W_query"`` in a
        :class:`~typedbackprop.nn.transformer.TransformerBlock`), as ``nn.tree.leaves`` walks
        them.
    """
    return leaves(layer)
