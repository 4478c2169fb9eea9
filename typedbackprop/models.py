"""What defines a network apart from its parameters, and how to build one from a seed.

:class:`Architecture` describes a multilayer perceptron: its sizes, activations and loss.
:func:`random_layers` is the one place the package (its command line, ``explain``, the demo)
builds a network of random parameters. :func:`convnet` builds the convolutional network for
the 8×8 digits, :func:`transformer` a small sequence model.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from typedbackprop.checking import Array
from typedbackprop.nn.activations import Activation, ActivationKind
from typedbackprop.nn.affine import Dense
from typedbackprop.nn.attention import Attention
from typedbackprop.nn.batchnorm import BatchNorm
from typedbackprop.nn.conv import Conv2d
from typedbackprop.nn.dropout import Dropout
from typedbackprop.nn.embedding import Embedding, PositionalEmbedding
from typedbackprop.nn.gate import Gate
from typedbackprop.nn.gru import GRU, GRUCell
from typedbackprop.nn.layernorm import LayerNorm
from typedbackprop.nn.losses import LossName
from typedbackprop.nn.lstm import LSTM, LSTMCell
from typedbackprop.nn.network import ActivationName, Layer, OutputActivationName, check_names
from typedbackprop.nn.pooling import MaxPool2d
from typedbackprop.nn.reshape import Flatten, Unflatten
from typedbackprop.nn.rnn import RNN, RNNCell
from typedbackprop.nn.sequence import KeepLast, TokenDense
from typedbackprop.nn.transformer import FeedForward, TransformerBlock

__all__ = [
    "Architecture",
    "CONVNET_TRAINING",
    "LSTM_FORGET_BIAS",
    "RecurrentKind",
    "convnet",
    "random_layers",
    "recurrent",
    "transformer",
]


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


def convnet(
    rng: np.random.Generator,
    image: tuple[int, int, int] = (1, 8, 8),
    classes: int = 10,
    channels: Sequence[int] = (16, 32),
    kernel: int = 3,
    dropout: float = 0.0,
) -> list[Layer]:
    """A small convolutional network: (conv, batch norm, ReLU, 2×2 max pool) per stage, then
    a dense layer and softmax.

    Parameters
    ----------
    rng
        The source of the initial weights.
    image
        ``(channels, height, width)`` of one input image; the network takes them flat, one
        column of ``channels · height · width`` features per example, as the data sets give
        them (the first layer is an :class:`~typedbackprop.nn.reshape.Unflatten`).
    classes
        The number of classes (the width of the softmax).
    channels
        The output channels of each stage's convolution; each stage halves the height and the
        width (rounding down).
    kernel
        The side of the square kernels, odd; the padding ``kernel // 2`` keeps the size.
    dropout
        The rate of a :class:`~typedbackprop.nn.dropout.Dropout` before the dense layer; ``0``
        leaves it out.

    Returns
    -------
    layers
        ``[Unflatten, (Conv2d, BatchNorm, Activation("relu"), MaxPool2d(2, 2)) per stage,
        Flatten, (Dropout,) Dense, Activation("softmax")]``, for ``cross_entropy``. Kernels are
        He-normal (``N(0, 2 / (in_channels · kernel²))``), the dense weights ``N(0, 1 / inp)``,
        biases 0, batch norm's ``γ`` 1 and ``β`` 0.

    Raises
    ------
    ValueError
        For an even kernel, or an image that the stages would shrink to nothing.
    """
    if kernel % 2 != 1:
        raise ValueError(
            f"the kernel must be odd (padding kernel // 2 keeps the size); got {kernel}"
        )
    in_channels, height, width = image
    layers: list[Layer] = [Unflatten(in_channels, height, width)]
    for out_channels in channels:
        fan_in = in_channels * kernel * kernel
        W = rng.standard_normal((out_channels, in_channels, kernel, kernel)) * np.sqrt(2 / fan_in)
        layers += [
            Conv2d(W, np.zeros(out_channels), stride=1, padding=kernel // 2),
            BatchNorm(np.ones(out_channels), np.zeros(out_channels)),
            Activation("relu"),
            MaxPool2d(2, 2),
        ]
        in_channels, height, width = out_channels, height // 2, width // 2
        if min(height, width) < 1:
            raise ValueError(f"{len(channels)} stages of 2×2 pooling shrink a {image} image away")
    features = in_channels * height * width
    layers.append(Flatten())
    if dropout:
        layers.append(Dropout(dropout))
    layers += [
        Dense(rng.standard_normal((classes, features)) / np.sqrt(features), np.zeros(classes)),
        Activation("softmax"),
    ]
    return layers


CONVNET_TRAINING: dict[str, float] = {
    "epochs": 20,
    "batch_size": 64,
    "learning_rate": 0.1,
    "momentum": 0.9,
}
"""Training settings for :func:`convnet` on the digits: with them its test accuracy was at least
0.98 on each of the splits of seeds 0 to 9 (0.9806 to 0.9917), in 2 to 4 s of one core each
(``python benchmarks/convnet_step.py --train``)."""


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
    ``1/√(2·blocks)``, biases 0, layer norms' ``γ`` 1.
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
                LayerNorm(np.ones(features), np.zeros(features)),
                Attention(
                    normal(heads, head_dim, features),
                    np.zeros((heads, head_dim)),
                    normal(heads, head_dim, features),
                    normal(heads, head_dim, features),
                    np.zeros((heads, head_dim)),
                    normal(features, heads, head_dim, std=residual),
                    np.zeros(features),
                    causal=True,
                ),
                LayerNorm(np.ones(features), np.zeros(features)),
                FeedForward(
                    normal(hidden, features),
                    np.zeros(hidden),
                    normal(features, hidden, std=residual),
                    np.zeros(features),
                    activation=activation,
                ),
            )
        )
    layers += [
        LayerNorm(np.ones(features), np.zeros(features)),
        KeepLast(answer),
        TokenDense(normal(vocab, features), np.zeros(vocab)),
    ]
    return layers


RecurrentKind = Literal["rnn", "lstm", "gru"]
"""The recurrent layers :func:`recurrent` builds: the tanh RNN, the LSTM, the GRU."""

LSTM_FORGET_BIAS = 5.0
"""The LSTM forget gate's bias ``b_if + b_hf`` that :func:`recurrent` starts it with, so that
``f ≈ σ(5) ≈ 0.993`` and the cell state carries the first token through the recall task's 29
later steps (``σ(5)²⁹ ≈ 0.82``); at PyTorch's draw, ``f ≈ σ(0) = 1/2`` and ``0.5²⁹ ≈ 2·10⁻⁹``,
and the LSTM did not learn the task (see docs/derivations/lstm.md)."""


def recurrent(
    rng: np.random.Generator,
    kind: RecurrentKind,
    *,
    features: int = 9,
    hidden: int = 32,
    classes: int = 8,
    forget_bias: float = LSTM_FORGET_BIAS,
) -> list[Layer]:
    """A recurrent classifier of sequences: a recurrent layer, its last state, a dense readout.

    Parameters
    ----------
    rng
        The source of the initial parameters.
    kind
        ``"rnn"`` (tanh), ``"lstm"`` or ``"gru"``.
    features
        The width of each step's input (the recall task's one-hot tokens: 9).
    hidden
        The state's size.
    classes
        The classes the readout scores (the recall task's symbols: 8).
    forget_bias
        The LSTM only: its forget gate's ``b_ih`` is this and its ``b_hh`` 0 (only their sum
        enters the gate); ``nan`` keeps PyTorch's draw.

    Returns
    -------
    layers
        ``[RNN | LSTM | GRU, KeepLast(1), TokenDense]``: tokens ``"features seq batch"`` in,
        logits ``"classes 1 batch"`` of the last step out, for
        :func:`~typedbackprop.nn.sequence.token_cross_entropy` with labels ``(1, batch)``.

    Notes
    -----
    PyTorch's initialisation: every weight and bias of the recurrent layer and of the readout
    from ``U(−1/√hidden, 1/√hidden)`` (``torch.nn.RNN``, ``LSTM``, ``GRU``; the readout as
    ``torch.nn.Linear(hidden, classes)`` draws it), except the LSTM's forget-gate bias,
    :data:`LSTM_FORGET_BIAS`. With PyTorch's draw there the LSTM never left a loss of
    ``log 8`` on the recall task in 600 steps (seeds 0–2), with a bias of 1 it reached 0.27,
    with 5 it reached test accuracy 1.0 in 100–350 steps on seeds 0–8
    (``benchmarks/train_recall.py``).
    """
    bound = 1.0 / np.sqrt(hidden)

    def uniform(*shape: int) -> Array:
        return rng.uniform(-bound, bound, shape)

    def gate() -> Gate:
        # drawn in benchmarks/train_recall.py's order (W_ih, W_hh, b_ih, b_hh), so that a seed
        # gives the model its measurements were made with
        W_ih, W_hh = uniform(hidden, features), uniform(hidden, hidden)
        return Gate(W_ih, uniform(hidden), W_hh, uniform(hidden))

    layer: Layer
    if kind == "rnn":
        only = gate()
        layer = RNN(RNNCell(only.W_ih, only.b_ih, only.W_hh, only.b_hh))
    elif kind == "gru":
        layer = GRU(GRUCell(gate(), gate(), gate()))
    elif kind == "lstm":
        input_gate, forget_gate, cell_gate, output_gate = gate(), gate(), gate(), gate()
        if not np.isnan(forget_bias):
            forget_gate = Gate(
                forget_gate.W_ih,
                np.full(hidden, float(forget_bias)),
                forget_gate.W_hh,
                np.zeros(hidden),
            )
        layer = LSTM(LSTMCell(input_gate, forget_gate, cell_gate, output_gate))
    else:
        raise ValueError(f"kind must be 'rnn', 'lstm' or 'gru'; got {kind!r}")
    return [layer, KeepLast(1), TokenDense(uniform(classes, hidden), uniform(classes))]
