"""The one table of layer families that drives every cross-cutting test of a family.

Each row builds a layer and an input whose every dimension has a distinct size (so a transposed
axis or a wrong sum axis cannot pass), says how PyTorch computes the same forward pass (the
independent oracle, in float64, on tensors laid out features first like ours), and what
``check_layer`` needs beyond the built layer (an input annotation with named axes, sizes the
layer constrains). A new family is tested by adding one row here:

- ``tests/test_families.py``: the gradient check, the PyTorch oracle, purity, float32 kept, the
  refusal of a wrongly shaped gradient, and every family of ``FAMILIES`` having a row;
- ``tests/test_check_layer.py``: ``check_layer`` with every one of its checks, on the row's
  record and settings, at sizes it draws;
- ``tests/test_hostile.py``: NaN input, an empty batch, read-only arrays.

Each family's own hand-computed values live in ``tests/nn/test_<family>.py``.
"""

import dataclasses
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from jaxtyping import Float

import typedbackprop as tbp
from typedbackprop import Array
from typedbackprop.nn.activations import ActivationKind

SEED = 0
"""The seed of the generator a training row's :attr:`FamilyCase.mode` draws from (dropout's
mask): every call gets a fresh generator with this seed, so every call draws the same mask."""


@dataclass(frozen=True)
class FamilyCase:
    """One row: a layer family, how to build a test point, PyTorch's forward pass, and what
    ``check_layer`` needs beyond the built layer."""

    name: str
    """The test id."""
    build: Callable[[np.random.Generator, type[np.floating[Any]]], tuple[Any, np.ndarray]]
    """``(rng, dtype) -> (layer, x)``: distinct sizes per dimension, clear of any kink."""
    torch_forward: Callable[[dict[str, torch.Tensor], torch.Tensor, Any], torch.Tensor]
    """``(parameters, x, layer) -> output``: the parameters by field name, as float64 tensors."""
    training: bool = False
    """Whether forward runs in training (batch statistics, dropout's mask) or evaluation."""
    check_input: Any = None
    """The annotation ``check_layer`` draws the input by, where the family's forward annotates
    it with a variadic group (``"features *positions batch"``) and the row wants named axes
    (``"features height width batch"`` for images); ``None``: forward's own annotation."""
    check_sizes: dict[str, int] = field(default_factory=dict)
    """Sizes the layer constrains, for ``check_layer`` (a kernel that fits its image, the
    features an ``Unflatten`` splits); it draws every other size, distinct."""

    @property
    def mode(self) -> tbp.Mode:
        """The mode forward runs in; in training, with a fresh generator seeded :data:`SEED`."""
        if not self.training:
            return tbp.Mode()
        return tbp.Mode(training=True, rng=np.random.default_rng(SEED))


def _dense(rng: np.random.Generator, dtype: type[np.floating[Any]]) -> tuple[Any, np.ndarray]:
    layer = tbp.Dense(
        rng.standard_normal((4, 3)).astype(dtype), rng.standard_normal(4).astype(dtype)
    )  # out=4, inp=3
    return layer, rng.standard_normal((3, 5)).astype(dtype)  # inp=3, batch=5


def _activation(
    name: str, slope: float = 0.01, shape: tuple[int, ...] = (4, 5)
) -> Callable[..., tuple[Any, np.ndarray]]:
    """An activation on ``shape``: a matrix (features=4, batch=5), images (channels=3,
    height=4, width=5, batch=2) or tokens (features=3, seq=4, batch=5)."""

    def build(rng: np.random.Generator, dtype: type[np.floating[Any]]) -> tuple[Any, np.ndarray]:
        z = rng.standard_normal(shape)
        z += np.where(z >= 0, 0.1, -0.1)  # |z| ≥ 0.1: a central difference cannot cross 0
        return tbp.Activation(name, slope=slope), z.astype(dtype)  # type: ignore[arg-type]

    return build


_TORCH_ACTIVATIONS: dict[str, Callable[[torch.Tensor, Any], torch.Tensor]] = {
    "sigmoid": lambda z, layer: torch.sigmoid(z),
    "tanh": lambda z, layer: torch.tanh(z),
    "relu": lambda z, layer: F.relu(z),
    "leaky_relu": lambda z, layer: F.leaky_relu(z, layer.slope),
    "identity": lambda z, layer: z,
    "softmax": lambda z, layer: F.softmax(z, dim=0),  # down each column: over features
    "gelu": lambda z, layer: F.gelu(z),
    "gelu_tanh": lambda z, layer: F.gelu(z, approximate="tanh"),
}


# --- the sequence families: "features seq batch", features=3, seq=4, batch=5 --------------------


def _normal(rng: np.random.Generator, dtype: type[np.floating[Any]], *shape: int) -> np.ndarray:
    return rng.standard_normal(shape).astype(dtype)


def _tokens(rng: np.random.Generator, dtype: type[np.floating[Any]]) -> np.ndarray:
    """(features=3, seq=4, batch=5), each token's features spread apart: no token has a
    variance near 0, where layer norm curves too sharply for central differences."""
    spread = np.array([-1.5, 0.0, 1.5])[:, None, None]
    return (spread + 0.5 * rng.standard_normal((3, 4, 5))).astype(dtype)


def _embedding(rng: np.random.Generator, dtype: type[np.floating[Any]]) -> tuple[Any, np.ndarray]:
    ids = rng.integers(0, 6, size=(4, 5))  # seq=4, batch=5
    ids[0, :2] = 2  # a repeated id: its rows' gradients must add up
    return tbp.nn.Embedding(_normal(rng, dtype, 6, 3)), ids  # vocab=6, features=3


def _positional(rng: np.random.Generator, dtype: type[np.floating[Any]]) -> tuple[Any, np.ndarray]:
    return tbp.nn.PositionalEmbedding(_normal(rng, dtype, 7, 3)), _tokens(rng, dtype)  # context=7


def _layernorm(rng: np.random.Generator, dtype: type[np.floating[Any]]) -> tuple[Any, np.ndarray]:
    gamma, beta = 1.0 + 0.3 * _normal(rng, dtype, 3), _normal(rng, dtype, 3)
    return tbp.nn.LayerNorm(gamma.astype(dtype), beta), _tokens(rng, dtype)


def _attention(causal: bool) -> Callable[..., tuple[Any, np.ndarray]]:
    def build(rng: np.random.Generator, dtype: type[np.floating[Any]]) -> tuple[Any, np.ndarray]:
        heads, head_dim, features = 2, 6, 3

        def weights(*shape: int) -> np.ndarray:
            return (0.5 * _normal(rng, dtype, *shape)).astype(dtype)

        layer = tbp.nn.Attention(
            weights(heads, head_dim, features),
            weights(heads, head_dim),
            weights(heads, head_dim, features),  # keys: no bias
            weights(heads, head_dim, features),
            weights(heads, head_dim),
            weights(features, heads, head_dim),
            weights(features),
            causal,
        )
        return layer, _tokens(rng, dtype)

    return build


def _feedforward(rng: np.random.Generator, dtype: type[np.floating[Any]]) -> tuple[Any, np.ndarray]:
    layer = tbp.nn.FeedForward(  # hidden=7
        _normal(rng, dtype, 7, 3),
        _normal(rng, dtype, 7),
        _normal(rng, dtype, 3, 7),
        _normal(rng, dtype, 3),
    )
    return layer, _tokens(rng, dtype)


def _leaky(
    build: Callable[..., tuple[Any, np.ndarray]], slope: float
) -> Callable[..., tuple[Any, np.ndarray]]:
    """``build``'s feed-forward network (or block's) with a leaky ReLU of the given slope."""

    def leaky(rng: np.random.Generator, dtype: type[np.floating[Any]]) -> tuple[Any, np.ndarray]:
        layer, x = build(rng, dtype)
        if isinstance(layer, tbp.nn.TransformerBlock):
            feedforward = dataclasses.replace(
                layer.feedforward, activation="leaky_relu", slope=slope
            )
            return dataclasses.replace(layer, feedforward=feedforward), x
        return dataclasses.replace(layer, activation="leaky_relu", slope=slope), x

    return leaky


def _block(rng: np.random.Generator, dtype: type[np.floating[Any]]) -> tuple[Any, np.ndarray]:
    attention, x = _attention(causal=True)(rng, dtype)
    norm, _ = _layernorm(rng, dtype)
    feedforward, _ = _feedforward(rng, dtype)
    return tbp.nn.TransformerBlock(norm, attention, norm, feedforward), x


def _keep_last(rng: np.random.Generator, dtype: type[np.floating[Any]]) -> tuple[Any, np.ndarray]:
    return tbp.nn.KeepLast(3), _tokens(rng, dtype)


def _token_dense(rng: np.random.Generator, dtype: type[np.floating[Any]]) -> tuple[Any, np.ndarray]:
    return tbp.nn.TokenDense(_normal(rng, dtype, 6, 3), _normal(rng, dtype, 6)), _tokens(rng, dtype)


# --- the recurrent families: x "features seq batch" (3, 4, 5), states "hidden batch", hidden=6 ---


def _gate(rng: np.random.Generator, dtype: type[np.floating[Any]]) -> Any:
    """One gate (hidden=6, features=3), weights and biases of scale 0.5."""
    return tbp.nn.Gate(
        *(0.5 * _normal(rng, dtype, *shape) for shape in [(6, 3), (6,), (6, 6), (6,)])
    )


def _recurrent(record: type) -> Callable[..., tuple[Any, np.ndarray]]:
    """An RNN, LSTM or GRU (hidden=6) on tokens (features=3, seq=4, batch=5)."""

    def build(rng: np.random.Generator, dtype: type[np.floating[Any]]) -> tuple[Any, np.ndarray]:
        if record is tbp.nn.RNN:
            gate = _gate(rng, dtype)
            cell: Any = tbp.nn.RNNCell(gate.W_ih, gate.b_ih, gate.W_hh, gate.b_hh)
        elif record is tbp.nn.LSTM:
            cell = tbp.nn.LSTMCell(*(_gate(rng, dtype) for _ in range(4)))
        else:
            cell = tbp.nn.GRUCell(*(_gate(rng, dtype) for _ in range(3)))
        return record(cell), _tokens(rng, dtype)

    return build


_TORCH_RECURRENT = {"RNN": torch.nn.RNN, "LSTM": torch.nn.LSTM, "GRU": torch.nn.GRU}
"""PyTorch's layer for each of ours: the same equations, gate order and two bias vectors."""


def _torch_recurrent(p: dict[str, torch.Tensor], x: torch.Tensor, layer: Any) -> torch.Tensor:
    """``torch.nn.RNN/LSTM/GRU`` run on our parameters: ``weight_ih_l0`` is the gates' ``W_ih``
    stacked in the cell's order (PyTorch's: i, f, g, o; r, z, n), and so on; x as (seq,
    batch, features), the output back to (hidden, seq, batch)."""
    names = ["W_ih", "b_ih", "W_hh", "b_hh"]
    torch_names = ["weight_ih_l0", "bias_ih_l0", "weight_hh_l0", "bias_hh_l0"]
    if isinstance(layer, tbp.nn.RNN):
        weights = {ours: p[f"cell.{ours}"] for ours in names}
    else:
        gates = [field.name for field in dataclasses.fields(layer.cell)]
        weights = {ours: torch.cat([p[f"cell.{g}.{ours}"] for g in gates]) for ours in names}
    hidden, features = weights["W_hh"].shape[1], weights["W_ih"].shape[1]
    module = _TORCH_RECURRENT[type(layer).__name__](features, hidden).double()
    parameters = {theirs: weights[ours] for ours, theirs in zip(names, torch_names, strict=True)}
    output, _ = torch.func.functional_call(module, parameters, (x.permute(1, 2, 0),))
    return output.permute(2, 0, 1)


def _torch_layer_norm(
    x: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor, eps: float
) -> torch.Tensor:
    return F.layer_norm(x.movedim(0, -1), (x.shape[0],), gamma, beta, eps).movedim(-1, 0)


def _torch_attention(p: dict[str, torch.Tensor], x: torch.Tensor, causal: bool) -> torch.Tensor:
    """Self-attention with ``F.scaled_dot_product_attention`` on (batch, heads, seq, head_dim)."""
    tokens = x.permute(2, 1, 0)  # (batch, seq, features)

    def project(which: str) -> torch.Tensor:
        projected = torch.einsum("hdf,bsf->bhsd", p[f"W_{which}"], tokens)
        if which == "key":  # keys have no bias
            return projected
        return projected + p[f"b_{which}"][None, :, None, :]

    out = F.scaled_dot_product_attention(
        project("query"), project("key"), project("value"), is_causal=causal
    )
    return (torch.einsum("fhd,bhsd->bsf", p["W_output"], out) + p["b_output"]).permute(2, 1, 0)


def _torch_feedforward(p: dict[str, torch.Tensor], x: torch.Tensor, layer: Any) -> torch.Tensor:
    """The feed-forward network of ``layer`` (a ``FeedForward``: its activation and slope)."""
    tokens = x.movedim(0, -1)
    hidden = _TORCH_ACTIVATIONS[layer.activation](F.linear(tokens, p["W_up"], p["b_up"]), layer)
    return F.linear(hidden, p["W_down"], p["b_down"]).movedim(-1, 0)


def _part(p: dict[str, torch.Tensor], name: str) -> dict[str, torch.Tensor]:
    """The tensors of the block's part ``name``, by their field in it (``attention.W_query``
    as ``W_query``)."""
    return {
        path.removeprefix(f"{name}."): t for path, t in p.items() if path.startswith(f"{name}.")
    }


def _torch_block(p: dict[str, torch.Tensor], x: torch.Tensor, layer: Any) -> torch.Tensor:
    norm = _part(p, "attention_norm")
    normed = _torch_layer_norm(x, norm["gamma"], norm["beta"], layer.attention_norm.eps)
    h = x + _torch_attention(_part(p, "attention"), normed, layer.attention.causal)
    norm = _part(p, "feedforward_norm")
    normed = _torch_layer_norm(h, norm["gamma"], norm["beta"], layer.feedforward_norm.eps)
    return h + _torch_feedforward(_part(p, "feedforward"), normed, layer.feedforward)


def _nchw(x: torch.Tensor) -> torch.Tensor:
    """``(channels, height, width, batch)`` as PyTorch lays images out, batch first."""
    return x.permute(3, 0, 1, 2)


def _house(x: torch.Tensor) -> torch.Tensor:
    """PyTorch's ``(batch, channels, height, width)`` back in the house layout, batch last."""
    return x.permute(1, 2, 3, 0)


def _conv2d(stride: int, padding: int) -> Callable[..., tuple[Any, np.ndarray]]:
    def build(rng: np.random.Generator, dtype: type[np.floating[Any]]) -> tuple[Any, np.ndarray]:
        # out_channels=4, in_channels=3, a 3×2 kernel; images 7 high, 8 wide, batch 6: the
        # output is 5×7 (stride 1, no padding) or 4×5 (stride 2, padding 1).
        layer = tbp.nn.Conv2d(
            rng.standard_normal((4, 3, 3, 2)).astype(dtype),
            rng.standard_normal(4).astype(dtype),
            stride,
            padding,
        )
        return layer, rng.standard_normal((3, 7, 8, 6)).astype(dtype)

    return build


def _pool(record: type, window: int, stride: int) -> Callable[..., tuple[Any, np.ndarray]]:
    def build(rng: np.random.Generator, dtype: type[np.floating[Any]]) -> tuple[Any, np.ndarray]:
        # channels=2, images 7 high, 9 wide, batch 5; distinct values 1/size apart, so that no
        # window holds a tie and no central difference moves a maximum.
        shape = (2, 7, 9, 5)
        size = int(np.prod(shape))
        x = (rng.permutation(size) - size / 2).reshape(shape) / size
        return record(window, stride), x.astype(dtype)

    return build


def _batchnorm(rng: np.random.Generator, dtype: type[np.floating[Any]]) -> tuple[Any, np.ndarray]:
    layer = tbp.nn.BatchNorm(
        rng.standard_normal(4).astype(dtype), rng.standard_normal(4).astype(dtype)
    )  # features=4
    return layer, (3.0 + 2.0 * rng.standard_normal((4, 5))).astype(dtype)  # batch=5


def _batchnorm_images(
    rng: np.random.Generator, dtype: type[np.floating[Any]]
) -> tuple[Any, np.ndarray]:
    layer = tbp.nn.BatchNorm(
        rng.standard_normal(3).astype(dtype), rng.standard_normal(3).astype(dtype), eps=1e-3
    )  # channels=3
    return layer, rng.standard_normal((3, 4, 5, 2)).astype(dtype)  # height=4, width=5, batch=2


def _dropout(rate: float) -> Callable[..., tuple[Any, np.ndarray]]:
    def build(rng: np.random.Generator, dtype: type[np.floating[Any]]) -> tuple[Any, np.ndarray]:
        return tbp.nn.Dropout(rate), rng.standard_normal((3, 4, 5, 2)).astype(dtype)

    return build


def _flatten(rng: np.random.Generator, dtype: type[np.floating[Any]]) -> tuple[Any, np.ndarray]:
    return tbp.nn.Flatten(), rng.standard_normal((3, 4, 5, 2)).astype(dtype)


def _unflatten(rng: np.random.Generator, dtype: type[np.floating[Any]]) -> tuple[Any, np.ndarray]:
    return tbp.nn.Unflatten(3, 4, 5), rng.standard_normal((60, 2)).astype(dtype)


IMAGES = (3, 4, 5, 2)
"""channels=3, height=4, width=5, batch=2."""
TOKENS = (3, 4, 5)
"""features=3, seq=4, batch=5."""
IMAGE_Z = Float[Array, "features height width batch"]
"""An activation's input as images, for check_layer: its ``*positions`` are (height, width)."""
TOKEN_Z = Float[Array, "features seq batch"]
"""An activation's input as tokens, for check_layer: its ``*positions`` are the sequence."""
IMAGE_X = Float[Array, "channels height width batch"]
"""Batch norm's input as images, for check_layer: its ``*spatial`` axes are (height, width)."""


def _torch_dropout(p: dict[str, torch.Tensor], x: torch.Tensor, layer: Any) -> torch.Tensor:
    """Inverted dropout with the mask its docstring states, ``[u ≥ rate] / (1 − rate)``, ``u``
    drawn by ``rng.random(x.shape)`` from the row's generator (seeded :data:`SEED`)."""
    u = np.random.default_rng(SEED).random(tuple(x.shape))
    return x * torch.tensor(u >= layer.rate, dtype=x.dtype) / (1.0 - layer.rate)


CASES: list[FamilyCase] = [
    FamilyCase("dense", _dense, lambda p, x, layer: p["W"] @ x + p["b"][:, None]),
    *[
        FamilyCase(
            f"activation-{name}",
            _activation(name),
            lambda p, z, layer: _TORCH_ACTIVATIONS[layer.name](z, layer),
        )
        for name in typing.get_args(ActivationKind)  # every activation the family knows
    ],
    FamilyCase(
        "activation-leaky_relu-0.2",
        _activation("leaky_relu", slope=0.2),
        lambda p, z, layer: _TORCH_ACTIVATIONS["leaky_relu"](z, layer),
    ),
    FamilyCase(
        "embedding",
        _embedding,
        lambda p, ids, layer: F.embedding(ids, p["table"]).permute(2, 0, 1),
        check_sizes={"vocab": 6},  # the ids the row draws are below 6
    ),
    FamilyCase(
        "positional_embedding",
        _positional,
        lambda p, x, layer: x + p["table"][: x.shape[1]].T[:, :, None],
        check_sizes={"context": 7},  # at least as long as any sequence
    ),
    FamilyCase(
        "layernorm",
        _layernorm,
        lambda p, x, layer: _torch_layer_norm(x, p["gamma"], p["beta"], layer.eps),
    ),
    FamilyCase(
        "attention", _attention(causal=False), lambda p, x, layer: _torch_attention(p, x, False)
    ),
    FamilyCase(
        "attention-causal",
        _attention(causal=True),
        lambda p, x, layer: _torch_attention(p, x, True),
    ),
    FamilyCase("feedforward", _feedforward, _torch_feedforward),
    FamilyCase("feedforward-leaky_relu-0.2", _leaky(_feedforward, 0.2), _torch_feedforward),
    FamilyCase("transformer_block", _block, _torch_block),
    FamilyCase("transformer_block-leaky_relu-0.2", _leaky(_block, 0.2), _torch_block),
    FamilyCase(
        "keep_last",
        _keep_last,
        lambda p, x, layer: x[:, -layer.count :, :],
        check_sizes={"seq": 4},  # it keeps 3
    ),
    FamilyCase(
        "token_dense",
        _token_dense,
        lambda p, x, layer: F.linear(x.movedim(0, -1), p["W"], p["b"]).movedim(-1, 0),
    ),
    *[
        FamilyCase(
            f"conv2d-stride{stride}-padding{padding}",
            _conv2d(stride, padding),
            lambda p, x, layer: _house(
                F.conv2d(_nchw(x), p["W"], p["b"], stride=layer.stride, padding=layer.padding)
            ),
            check_sizes={"kernel_h": 3, "kernel_w": 2, "height": 7, "width": 8},  # as built
        )
        for stride, padding in [(1, 0), (2, 1)]
    ],
    *[
        FamilyCase(
            f"maxpool2d-window{window}-stride{stride}",
            _pool(tbp.nn.MaxPool2d, window, stride),
            lambda p, x, layer: _house(F.max_pool2d(_nchw(x), layer.window, layer.stride)),
            check_sizes={"height": 7, "width": 9},  # as built
        )
        for window, stride in [(2, 2), (3, 1)]
    ],
    *[
        FamilyCase(
            f"avgpool2d-window{window}-stride{stride}",
            _pool(tbp.nn.AvgPool2d, window, stride),
            lambda p, x, layer: _house(F.avg_pool2d(_nchw(x), layer.window, layer.stride)),
            check_sizes={"height": 7, "width": 9},  # as built
        )
        for window, stride in [(2, 2), (3, 2)]
    ],
    FamilyCase(
        "batchnorm-training",
        _batchnorm,
        lambda p, x, layer: (
            F.batch_norm(x.T, None, None, p["gamma"], p["beta"], training=True, eps=layer.eps).T
        ),
        training=True,
    ),
    FamilyCase(
        "batchnorm-images-training",
        _batchnorm_images,
        lambda p, x, layer: _house(
            F.batch_norm(_nchw(x), None, None, p["gamma"], p["beta"], training=True, eps=layer.eps)
        ),
        training=True,
        check_input=IMAGE_X,
    ),
    *[
        FamilyCase(
            f"activation-images-{name}",
            _activation(name, shape=IMAGES),
            lambda p, z, layer: _house(
                _TORCH_ACTIVATIONS[layer.name](_nchw(z), layer)
                if layer.name != "softmax"
                else F.softmax(_nchw(z), dim=1)  # over the channels of each pixel
            ),
            check_input=IMAGE_Z,
        )
        for name in ("relu", "tanh", "gelu", "softmax")
    ],
    FamilyCase(
        "activation-images-leaky_relu-0.2",
        _activation("leaky_relu", slope=0.2, shape=IMAGES),
        lambda p, z, layer: F.leaky_relu(z, layer.slope),
        check_input=IMAGE_Z,
    ),
    *[
        FamilyCase(
            f"activation-tokens-{name}",
            _activation(name, shape=TOKENS),
            lambda p, z, layer: _TORCH_ACTIVATIONS[layer.name](z, layer),  # softmax: dim=0
            check_input=TOKEN_Z,
        )
        for name in ("gelu", "softmax")
    ],
    *[
        FamilyCase(name, _recurrent(record), _torch_recurrent)
        for name, record in [("rnn", tbp.nn.RNN), ("lstm", tbp.nn.LSTM), ("gru", tbp.nn.GRU)]
    ],
    FamilyCase("flatten", _flatten, lambda p, x, layer: x.reshape(-1, x.shape[-1])),
    FamilyCase(
        "unflatten",
        _unflatten,
        lambda p, x, layer: x.reshape(layer.channels, layer.height, layer.width, x.shape[-1]),
        check_sizes={"features": 60},  # 3 · 4 · 5, as built
    ),
    # Dropout in evaluation is the identity. In training, every call of a row's mode gets a
    # fresh generator seeded SEED, so every call draws one mask: the gradient checks compare
    # like with like, and the oracle draws the same uniform numbers. tests/nn/test_dropout.py
    # holds masks by hand.
    FamilyCase("dropout-evaluation", _dropout(0.5), lambda p, x, layer: x),
    FamilyCase("dropout-training", _dropout(0.5), _torch_dropout, training=True),
    FamilyCase("dropout-training-rate0", _dropout(0.0), lambda p, x, layer: x, training=True),
]
"""Every layer family the package ships, with its settings varied where they matter (each
activation, a stride and padding, causal attention, dropout in training and evaluation)."""
