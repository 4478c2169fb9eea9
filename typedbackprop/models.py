"""What defines a network apart from its parameters, and how to build one from a seed.

:class:`Architecture` describes a multilayer perceptron: its sizes, activations and loss.
:func:`random_layers` is the one place the package (its command line, ``explain``, the demo)
builds a network of random parameters; :func:`transformer` builds a small sequence model.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from typedbackprop.checking import Array
from typedbackprop.nn.activations import ActivationKind
from typedbackprop.nn.affine import Dense
from typedbackprop.nn.embedding import Embedding, PositionalEmbedding
from typedbackprop.nn.layernorm import LayerNorm
from typedbackprop.nn.losses import LossName
from typedbackprop.nn.network import ActivationName, OutputActivationName, check_names
from typedbackprop.nn.sequence import KeepLast, TokenDense
from typedbackprop.nn.transformer import TransformerBlock

__all__ = ["Architecture", "random_layers", "transformer"]


@dataclass(frozen=True)
class Architecture:
    """Everything but the parameters that defines a network and its loss.

    Parameters
    ----------
    sizes
        ``(in_0, out_1, ..., out_L)``: the input width, then each layer's width.
    activation
        The hidden layers' activation.
    output_activation
        The last layer's activation.
    loss
        The loss; ``binary_cross_entropy`` needs a ``sigmoid`` output and ``cross_entropy`` a
        ``softmax`` one (they are computed from the logits).

    Raises
    ------
    ValueError
        For fewer than two sizes, a size below 1, or an unknown or mismatched name.
    """

    sizes: tuple[int, ...]
    activation: ActivationName = "sigmoid"
    output_activation: OutputActivationName = "identity"
    loss: LossName = "squared_error"

    def __post_init__(self) -> None:
        if len(self.sizes) < 2 or min(self.sizes) < 1:
            raise ValueError(
                f"an architecture needs at least two layer sizes, each at least 1; got {self.sizes}"
            )
        check_names(self.activation, self.output_activation, self.loss)

    def describe(self) -> str:
        """``"2-3-3-1 sigmoid/sigmoid, squared_error"``: sizes, activations and loss."""
        sizes = "-".join(str(size) for size in self.sizes)
        return f"{sizes} {self.activation}/{self.output_activation}, {self.loss}"


def random_layers(sizes: Sequence[int], rng: np.random.Generator) -> list[Dense]:
    """Dense layers of standard normal weights scaled by ``1/√in``, and standard normal biases.

    Parameters
    ----------
    sizes
        ``(in_0, out_1, ..., out_L)``.
    rng
        The source of randomness.

    Returns
    -------
    layers
        One :class:`~typedbackprop.nn.affine.Dense` per consecutive pair of sizes. Unlike
        :func:`~typedbackprop.initialize.init_layers` the biases are not zero, so that a gradient
        check or a printout exercises every term.
    """
    return [
        Dense(rng.standard_normal((n_out, n_in)) / np.sqrt(n_in), rng.standard_normal(n_out))
        for n_in, n_out in zip(sizes[:-1], sizes[1:], strict=True)
    ]


def transformer(
    rng: np.random.Generator,
    *,
    vocab: int = 10,
    context: int = 15,
    answer: int = 8,
    features: int = 64,
    heads: int = 4,
    hidden: int = 256,
    blocks: int = 1,
    activation: ActivationKind = "gelu_tanh",
) -> list[Any]:
    """A small causal transformer that reads ``context`` tokens and answers with the last ones.

    Parameters
    ----------
    rng
        The source of the random initial parameters.
    vocab
        Token ids ``0`` to ``vocab − 1``, in and out.
    context
        The longest sequence (the positions learned).
    answer
        How many of the last tokens the loss reads (:class:`~typedbackprop.nn.sequence.KeepLast`).
    features
        Each token's width; ``heads`` must divide it (``head_dim = features / heads``).
    heads
        Attention heads per block.
    hidden
        The feed-forward network's width.
    blocks
        Transformer blocks.
    activation
        The feed-forward networks' activation; GPT-2's tanh-approximate GELU by default (the
        exact one, ``"gelu"``, costs an error function, several times the tanh).

    Returns
    -------
    layers
        ``[Embedding, PositionalEmbedding, TransformerBlock × blocks, LayerNorm, KeepLast,
        TokenDense]``: ids ``(seq, batch)`` in, logits ``(vocab, answer, batch)`` out, for
        :func:`~typedbackprop.nn.losses.token_cross_entropy`.

    Notes
    -----
    GPT-2's initialization: weights and embeddings normal with standard deviation 0.02, the
    projections back into the residual stream (``W_output``, ``W_down``) scaled by
    ``1/√(2·blocks)``, biases 0, layer norms' gains 1.
    """
    if features % heads:
        raise ValueError(f"heads={heads} must divide features={features}")
    head_dim = features // heads

    def normal(*shape: int, std: float = 0.02) -> Array:
        return std * rng.standard_normal(shape)

    residual = 0.02 / np.sqrt(2 * blocks)
    layers: list[Any] = [
        Embedding(normal(vocab, features)),
        PositionalEmbedding(normal(context, features)),
    ]
    for _ in range(blocks):
        layers.append(
            TransformerBlock(
                np.ones(features),
                np.zeros(features),
                normal(heads, head_dim, features),
                np.zeros((heads, head_dim)),
                normal(heads, head_dim, features),
                normal(heads, head_dim, features),
                np.zeros((heads, head_dim)),
                normal(features, heads, head_dim, std=residual),
                np.zeros(features),
                np.ones(features),
                np.zeros(features),
                normal(hidden, features),
                np.zeros(hidden),
                normal(features, hidden, std=residual),
                np.zeros(features),
                causal=True,
                activation=activation,
            )
        )
    layers += [
        LayerNorm(np.ones(features), np.zeros(features)),
        KeepLast(answer),
        TokenDense(normal(vocab, features), np.zeros(vocab)),
    ]
    return layers
