"""Every backward's index form, as its Spec states it, is what the code computes.

Each row of ``CASES`` pairs a :class:`~typedbackprop.nn.specs.Spec` with the function it
specifies. The tests build that function's arguments (and the cache or layer record it reads)
from their own annotations, with a different size for every dimension (so a wrong letter in the
einsum, a swapped pair of indices or a sum over the wrong axis changes a shape or a value),
evaluate the spec with ``np.einsum`` and compare it with the function's result; check that the
letters of each einsum term are the dimensions of the operand's annotation; and check that the
function's docstring states exactly the spec's index form. The local derivatives a spec names
(``σ'(z)``, the softmax Jacobian ``J``, the one-hot of the ids, the 0/1 arrays that say which
pixel a window reads, layer norm's ``x̂``) are computed here from their textbook definitions,
independently of the package. A spec that is a sum of products (the normalizations' three terms)
must fail when any product is dropped or negated.
"""

import importlib
import inspect
import math
import pkgutil
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
from helpers import assert_close
from hypothesis import given, settings
from hypothesis import strategies as st
from jaxtyping import Float

import typedbackprop as tbp
import typedbackprop.nn
from typedbackprop import Array
from typedbackprop.nn import (
    activations,
    affine,
    attention,
    batch_first,
    batchnorm,
    conv,
    dropout,
    embedding,
    gelu,
    layernorm,
    pooling,
    sequence,
    softmax,
)
from typedbackprop.nn.specs import Spec, indices_of

Values = dict[str, Any]
"""The arrays of one case by name (arguments, cache fields, derived operands), and settings."""

SLOPE = 0.2
"""Leaky ReLU's slope in these tests: not the default, so a forgotten slope shows."""

STRIDE, PADDING, KERNEL = 2, 1, 3
"""The convolution's stride and padding and the pooling window: windows overlap (``stride <
window``), and the convolution's padding is not 0, so an index off by the padding shows."""

LETTERS: dict[str, tuple[str, ...]] = {
    **{
        name: tuple(letters)
        for name, letters in {
            "out": "o",
            "inp": "i",
            "batch": "bB",  # a capital is the letter's second copy: batch norm's sum, b′
            "features": "fF",  # layer norm sums over the features with f′
            "classes": "jJ",  # a Jacobian has it twice
            "seq": "s",
            "vocab": "v",
            "heads": "h",
            "head_dim": "d",
            "query": "q",
            "key": "kK",  # the softmax over keys' Jacobian has it twice
            "out_channels": "o",
            "in_channels": "c",
            "channels": "c",
            "kernel_h": "m",
            "kernel_w": "n",
            "height": "rR",  # spatial batch norm sums over
            "width": "wW",  # every pixel with r′, w′ (and b′)
            "out_height": "p",
            "out_width": "u",
        }.items()
    },
    "*features": ("...",),  # any leading axes: einsum's ellipsis
    "*positions": ("...",),  # any middle axes: layer norm's positions
}
"""The einsum letters each dimension may take: the table of docs/conventions.md (a capital is a
second copy); tests/test_docs.py holds this dict to that table."""


# --- local derivatives, from their definitions -------------------------------------------------


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def _softmax_jacobian(z):
    """``J_{jbj′} = ∂a_{jb}/∂z_{j′b} = a_{jb} ([j = j′] − a_{j′b})``, from the definition."""
    e = np.exp(z - z.max(axis=0))
    a = e / e.sum(axis=0)
    identity = np.eye(z.shape[0])[:, np.newaxis, :]  # [c = k], broadcast over b
    return a[:, :, np.newaxis] * (identity - a.T[np.newaxis, :, :])


def _normal_cdf(z):
    """``Φ(z) = ½ erfc(−z/√2)``, with the standard library's ``erfc``."""
    return 0.5 * np.vectorize(math.erfc)(-z / math.sqrt(2.0))


def _gelu_prime(z):
    """``Φ(z) + z φ(z)``: the product rule on ``z Φ(z)``."""
    return _normal_cdf(z) + z * np.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi)


def _gelu_tanh_prime(z):
    """The derivative of ``½ z (1 + tanh u)``, ``u = √(2/π) (z + 0.044715 z³)``."""
    u = math.sqrt(2.0 / math.pi) * (z + 0.044715 * z**3)
    du = math.sqrt(2.0 / math.pi) * (1.0 + 3.0 * 0.044715 * z**2)
    t = np.tanh(u)
    return 0.5 * (1.0 + t) + 0.5 * z * (1.0 - t * t) * du


ELEMENTWISE: dict[str, Callable[[Values], np.ndarray]] = {
    "σ'(z)": lambda v: _sigmoid(v["z"]) * (1.0 - _sigmoid(v["z"])),
    "tanh'(z)": lambda v: 1.0 - np.tanh(v["z"]) ** 2,
    "relu'(z)": lambda v: (v["z"] > 0).astype(v["z"].dtype),
    "leaky_relu'(z)": lambda v: np.where(v["z"] > 0, 1.0, SLOPE),
    "identity'(z)": lambda v: np.ones_like(v["z"]),
    "gelu'(z)": lambda v: _gelu_prime(v["z"]),
    "gelu_tanh'(z)": lambda v: _gelu_tanh_prime(v["z"]),
    "J": lambda v: _softmax_jacobian(v["z"]),
}
"""Each local derivative of an activation, as a function of the forward's input ``z``."""


def _attention_jacobian(weights):
    """``J_{hbk′qk} = ∂P_{k′q}/∂S_{kq} = P_{k′q} ([k′ = k] − P_{kq})``, per head and sequence."""
    key = weights.shape[2]
    identity = np.eye(key)[:, np.newaxis, :]  # [j = k], broadcast over q
    P_k = np.swapaxes(weights, 2, 3)[:, :, np.newaxis, :, :]  # (h, b, 1, q, k): P_{kq}
    return weights[..., np.newaxis] * (identity - P_k)


def _scores_gradient(v: Values) -> np.ndarray:
    """``∂L/∂scores``, scaled by nothing: the chain of the two specs before it."""
    grad_weights = attention.ATTENTION_GRAD_WEIGHTS.evaluate(v)
    J = _attention_jacobian(v["weights"])
    return attention.ATTENTION_GRAD_SCORES.evaluate({"grad_weights": grad_weights, "J": J})


ATTENTION: dict[str, Callable[[Values], Any]] = {
    "J": lambda v: _attention_jacobian(v["weights"]),
    "grad_scores": _scores_gradient,
    "1/√D": lambda v: np.float64(1.0 / math.sqrt(v["q"].shape[2])),
}
"""Attention's local derivatives, and the scores' gradient its last two specs start from."""


def _reads(size: int, kernel: int, out: int, stride: int, padding: int) -> np.ndarray:
    """``R_{ihp} = [p s + i = h + padding]``: kernel row ``i`` of window ``p`` reads row ``h``."""
    i, h, p = np.ix_(np.arange(kernel), np.arange(size), np.arange(out))
    return (p * stride + i == h + padding).astype(np.float64)


def _in_window(size: int, window: int, out: int, stride: int) -> np.ndarray:
    """``R_{hp} = [p s ≤ h < p s + window]``: row ``h`` lies in window ``p``."""
    h, p = np.ix_(np.arange(size), np.arange(out))
    return ((p * stride <= h) & (h < p * stride + window)).astype(np.float64)


def _max_routing(x: np.ndarray, window: int, stride: int) -> np.ndarray:
    """``M_{chwpqb}``: 1 where pixel ``(h, w)`` is the first maximum of window ``(p, q)``.

    ``np.argmax`` of a window read row by row returns the first maximum, the tie rule
    :func:`~typedbackprop.nn.pooling.maxpool2d_forward` documents.
    """
    channels, height, width, batch = x.shape
    out_height = (height - window) // stride + 1
    out_width = (width - window) // stride + 1
    M = np.zeros((channels, height, width, out_height, out_width, batch))
    for p in range(out_height):
        for q in range(out_width):
            rows, cols = (
                slice(p * stride, p * stride + window),
                slice(q * stride, q * stride + window),
            )
            flat = x[:, rows, cols, :].transpose(0, 3, 1, 2).reshape(channels, batch, -1)
            i, j = np.divmod(flat.argmax(axis=2), window)  # (channels, batch) each
            c, b = np.indices((channels, batch))
            M[c, p * stride + i, q * stride + j, p, q, b] = 1.0
    return M


def _one_hot(v: Values) -> np.ndarray:
    """``[ids_{sb} = v]``, laid out ``"vocab seq batch"``."""
    return (v["ids"][np.newaxis] == np.arange(v["vocab"])[:, np.newaxis, np.newaxis]) * 1.0


CONV: dict[str, Callable[[Values], np.ndarray]] = {
    "R": lambda v: _reads(v["x"].shape[1], v["W"].shape[2], v["grad_z"].shape[1], STRIDE, PADDING),
    "C": lambda v: _reads(v["x"].shape[2], v["W"].shape[3], v["grad_z"].shape[2], STRIDE, PADDING),
    "columns": lambda v: conv.im2col(v["x"], *v["W"].shape[2:], STRIDE, PADDING),
}
"""Which input pixel each kernel entry of each window reads, along rows and along columns, and
the windows themselves (the cache keeps ``x``; backward copies them again)."""

POOLING: dict[str, Callable[[Values], Any]] = {
    "R": lambda v: _in_window(v["x"].shape[1], KERNEL, v["grad_a"].shape[1], STRIDE),
    "C": lambda v: _in_window(v["x"].shape[2], KERNEL, v["grad_a"].shape[2], STRIDE),
    "1/window²": lambda v: np.float64(1.0 / KERNEL**2),
    "M": lambda v: _max_routing(v["x"], KERNEL, STRIDE),
}
"""Which windows contain each pixel, the mean's weight, and max pooling's routing."""


# --- the cases ---------------------------------------------------------------------------------


def _conv_sizes(sizes: dict[str, int]) -> dict[str, int]:
    """Sizes a convolution can have: the image at least as large as the padded window needs."""
    height = max(sizes["height"], sizes["kernel_h"] - 2 * PADDING, 1)
    width = max(sizes["width"], sizes["kernel_w"] - 2 * PADDING, 1)
    out = tbp.nn.conv.conv2d_output_size
    return {
        **sizes,
        "height": height,
        "width": width,
        "out_height": out(height, sizes["kernel_h"], STRIDE, PADDING),
        "out_width": out(width, sizes["kernel_w"], STRIDE, PADDING),
    }


def _pool_sizes(sizes: dict[str, int]) -> dict[str, int]:
    """Images at least one window large, and the number of windows that fit."""
    height, width = sizes["height"] + KERNEL - 1, sizes["width"] + KERNEL - 1
    return {
        **sizes,
        "height": height,
        "width": width,
        "out_height": (height - KERNEL) // STRIDE + 1,
        "out_width": (width - KERNEL) // STRIDE + 1,
    }


def _no_change(sizes: dict[str, int]) -> dict[str, int]:
    return sizes


def _as_drawn(values: Values, sizes: dict[str, int], rng: np.random.Generator) -> Values:
    return values


@dataclass(frozen=True)
class SpecCase:
    """A spec, the function whose docstring states it, and the function's value of it."""

    spec: Spec
    function: Callable[..., object]
    compute: Callable[[Values], np.ndarray]
    """``values -> gradient``: what the package computes for ``spec.result``."""
    records: tuple[type, ...] = ()
    """Records (a cache, a layer) whose annotated fields name more operands and dimensions."""
    derived: Mapping[str, Callable[[Values], Any]] = field(default_factory=lambda: ELEMENTWISE)
    """The operands that are neither arguments nor fields, computed here from the values."""
    through: tuple[Spec, ...] = ()
    """Specs a derived operand evaluates on the way (their docstring is the function's)."""
    sizes: Callable[[dict[str, int]], dict[str, int]] = _no_change
    """Completes the drawn sizes (a convolution's ``out_height`` follows from the others)."""
    prepare: Callable[[Values, dict[str, int], np.random.Generator], Values] = _as_drawn
    """Adds what the annotations cannot draw: integer ids, the windows of an image."""
    computed: tuple[str, ...] = ()
    """The dimensions ``sizes`` computes rather than draws."""
    largest: int = 9
    """The largest size drawn (more when there are more dimensions than that)."""


def _elementwise(forward, backward, **settings):
    return lambda v: backward(v["grad_a"], v["z"], forward(v["z"], **settings), **settings)


def _ids(values: Values, sizes: dict[str, int], rng: np.random.Generator) -> Values:
    """Integer ids in ``[0, vocab)``, so that some id repeats and some row is never read."""
    ids = rng.integers(0, sizes["vocab"], size=(sizes["seq"], sizes["batch"]))
    return {**values, "ids": ids, "vocab": sizes["vocab"]}


def _softmax_weights(values: Values, sizes: dict[str, int], rng: np.random.Generator) -> Values:
    """Attention weights as the forward makes them: each column sums to 1 over ``key``."""
    e = np.exp(values["weights"])
    return {**values, "weights": e / e.sum(axis=2, keepdims=True)}


def _token_dense(v: Values):
    return sequence.token_dense_backward(v["grad_z"], sequence.TokenDenseCache(v["W"], v["x"]))


def _attention(v: Values):
    return attention.scaled_dot_product_attention_backward(
        v["grad_output"], v["q"], v["k"], v["v"], v["weights"]
    )


def _conv(v: Values):
    layer = conv.Conv2d(v["W"], v["b"], STRIDE, PADDING)
    return conv.conv2d_backward(v["grad_z"], conv.Conv2dCache(layer, v["x"]))


BATCHNORM: dict[str, Callable[[Values], Any]] = {
    "1/N": lambda v: np.float64(v["grad_y"].shape[0] / v["grad_y"].size),
}
"""``1/N``, ``N`` the number of values each feature's (or channel's) statistics are taken over."""

LAYERNORM: dict[str, Callable[[Values], Any]] = {
    "x_hat": lambda v: (v["x"] - v["mean"]) * v["rstd"],
    "1/F": lambda v: np.float64(1.0 / v["x"].shape[0]),
}
"""``x̂ = (x − μ) rstd``, rebuilt from the saved statistics, and ``1/F``, ``F = features``."""


CONV_CASE = {
    "records": (conv.Conv2dCache, conv.Conv2d),
    "derived": CONV,
    "sizes": _conv_sizes,
    "computed": ("out_height", "out_width"),
    "largest": 7,
}
POOL_CASE = {
    "derived": POOLING,
    "sizes": _pool_sizes,
    "computed": ("out_height", "out_width"),
    "largest": 6,
}
ATTENTION_CASE = {"derived": ATTENTION, "prepare": _softmax_weights}


def batchnorm_backward_on_images(
    grad_y: Float[Array, "channels height width batch"],
    x_hat: Float[Array, "channels height width batch"],
    gamma: Float[Array, " channels"],
    rstd: Float[Array, " channels"],
) -> Float[Array, "channels height width batch"]:
    """:func:`~typedbackprop.nn.batchnorm.batchnorm_backward`'s ``grad_x`` after training, on
    images: the one batch-norm family takes ``"channels *spatial batch"``, whose variadic group
    an einsum cannot sum in one term and keep in another, so the spec names the pixel's axes.

    Returns
    -------
    grad_x
        ``∂L/∂x``.
    """
    cache = batchnorm.BatchNormCache(
        batchnorm.BatchNorm(gamma, np.zeros_like(gamma)),
        x_hat,
        np.zeros_like(gamma),
        np.ones_like(gamma),
        rstd,
        batch_statistics=True,
    )
    return batchnorm.batchnorm_backward(grad_y, cache)[1]


batchnorm_backward_on_images.__doc__ = (
    f"{batchnorm_backward_on_images.__doc__}\n    Notes\n    -----\n"
    f"    {batchnorm.BATCHNORM_IMAGES_GRAD_X.index_form()}\n"
)


def test_batchnorm_backward_states_the_index_form_on_images():
    docstring = " ".join((inspect.getdoc(batchnorm.batchnorm_backward) or "").split())
    assert batchnorm.BATCHNORM_IMAGES_GRAD_X.index_form() in docstring


CASES = [
    SpecCase(
        affine.AFFINE_GRAD_W,
        tbp.nn.affine_grad_params,
        lambda v: tbp.nn.affine_grad_params(v["grad_z"], v["a_prev"])[0],
    ),
    SpecCase(
        affine.AFFINE_GRAD_B,
        tbp.nn.affine_grad_params,
        lambda v: tbp.nn.affine_grad_params(v["grad_z"], v["a_prev"])[1],
    ),
    SpecCase(
        affine.AFFINE_GRAD_A_PREV,
        tbp.nn.affine_grad_input,
        lambda v: tbp.nn.affine_grad_input(v["grad_z"], v["W"]),
    ),
    SpecCase(
        batch_first.BATCH_FIRST_GRAD_W,
        tbp.nn.affine_grad_params_batch_first,
        lambda v: tbp.nn.affine_grad_params_batch_first(v["grad_z"], v["a_prev"])[0],
    ),
    SpecCase(
        batch_first.BATCH_FIRST_GRAD_B,
        tbp.nn.affine_grad_params_batch_first,
        lambda v: tbp.nn.affine_grad_params_batch_first(v["grad_z"], v["a_prev"])[1],
    ),
    SpecCase(
        batch_first.BATCH_FIRST_GRAD_A_PREV,
        tbp.nn.affine_grad_input_batch_first,
        lambda v: tbp.nn.affine_grad_input_batch_first(v["grad_z"], v["W"]),
    ),
    SpecCase(
        activations.SIGMOID_GRAD_Z,
        tbp.nn.sigmoid_backward,
        _elementwise(tbp.nn.sigmoid_forward, tbp.nn.sigmoid_backward),
    ),
    SpecCase(
        activations.TANH_GRAD_Z,
        tbp.nn.tanh_backward,
        _elementwise(tbp.nn.tanh_forward, tbp.nn.tanh_backward),
    ),
    SpecCase(
        activations.RELU_GRAD_Z,
        tbp.nn.relu_backward,
        _elementwise(tbp.nn.relu_forward, tbp.nn.relu_backward),
    ),
    SpecCase(
        activations.LEAKY_RELU_GRAD_Z,
        tbp.nn.leaky_relu_backward,
        _elementwise(tbp.nn.leaky_relu_forward, tbp.nn.leaky_relu_backward, slope=SLOPE),
    ),
    SpecCase(
        activations.IDENTITY_GRAD_Z,
        tbp.nn.identity_backward,
        _elementwise(tbp.nn.identity_forward, tbp.nn.identity_backward),
    ),
    SpecCase(
        gelu.GELU_GRAD_Z,
        gelu.gelu_backward,
        _elementwise(gelu.gelu_forward, gelu.gelu_backward),
    ),
    SpecCase(
        gelu.GELU_TANH_GRAD_Z,
        gelu.gelu_tanh_backward,
        _elementwise(gelu.gelu_tanh_forward, gelu.gelu_tanh_backward),
    ),
    SpecCase(
        softmax.SOFTMAX_GRAD_Z,
        tbp.nn.softmax_backward,
        _elementwise(tbp.nn.softmax_forward, tbp.nn.softmax_backward),
    ),
    SpecCase(
        batchnorm.BATCHNORM_GRAD_GAMMA,
        batchnorm.batchnorm_grad_params,
        lambda v: batchnorm.batchnorm_grad_params(v["grad_y"], v["x_hat"])[0],
    ),
    SpecCase(
        batchnorm.BATCHNORM_GRAD_BETA,
        batchnorm.batchnorm_grad_params,
        lambda v: batchnorm.batchnorm_grad_params(v["grad_y"], v["x_hat"])[1],
    ),
    SpecCase(
        batchnorm.BATCHNORM_GRAD_X,
        batchnorm.batchnorm_grad_input,
        lambda v: batchnorm.batchnorm_grad_input(v["grad_y"], v["x_hat"], v["gamma"], v["rstd"]),
        derived=BATCHNORM,
    ),
    SpecCase(
        batchnorm.BATCHNORM_IMAGES_GRAD_X,
        batchnorm_backward_on_images,
        lambda v: batchnorm_backward_on_images(v["grad_y"], v["x_hat"], v["gamma"], v["rstd"]),
        derived=BATCHNORM,
        largest=7,
    ),
    SpecCase(
        layernorm.LAYERNORM_GRAD_X,
        layernorm.layernorm_grads,
        lambda v: layernorm.layernorm_grads(v["grad_y"], v["x"], v["gamma"], v["mean"], v["rstd"])[
            0
        ],
        derived=LAYERNORM,
    ),
    SpecCase(
        batchnorm.BATCHNORM_GRAD_X_FIXED,
        batchnorm.batchnorm_grad_input_fixed,
        lambda v: batchnorm.batchnorm_grad_input_fixed(v["grad_y"], v["gamma"], v["rstd"]),
    ),
    SpecCase(
        dropout.DROPOUT_GRAD_X,
        dropout.dropout_backward,
        lambda v: dropout.dropout_backward(
            v["grad_a"], dropout.DropoutCache(dropout.Dropout(0.5), v["x"], v["mask"])
        ),
        records=(dropout.DropoutCache,),
    ),
    SpecCase(
        embedding.EMBEDDING_GRAD_TABLE,
        embedding.embedding_scatter,
        lambda v: embedding.embedding_scatter(v["grad_x"], v["ids"], v["vocab"]),
        records=(embedding.EmbeddingCache,),
        derived={"one_hot(ids)": _one_hot},
        prepare=_ids,
    ),
    SpecCase(
        sequence.TOKEN_DENSE_GRAD_W,
        sequence.token_dense_backward,
        lambda v: _token_dense(v)[0].W,
        records=(sequence.TokenDenseCache, sequence.TokenDense),
    ),
    SpecCase(
        sequence.TOKEN_DENSE_GRAD_B,
        sequence.token_dense_backward,
        lambda v: _token_dense(v)[0].b,
        records=(sequence.TokenDenseCache, sequence.TokenDense),
    ),
    SpecCase(
        sequence.TOKEN_DENSE_GRAD_X,
        sequence.token_dense_backward,
        lambda v: _token_dense(v)[1],
        records=(sequence.TokenDenseCache, sequence.TokenDense),
    ),
    SpecCase(
        attention.ATTENTION_GRAD_SCORES,
        attention.attention_weights_backward,
        lambda v: attention.attention_weights_backward(v["grad_weights"], v["weights"]),
        **ATTENTION_CASE,
    ),
    SpecCase(
        attention.ATTENTION_GRAD_V,
        attention.scaled_dot_product_attention_backward,
        lambda v: _attention(v)[2],
        **ATTENTION_CASE,
    ),
    SpecCase(
        attention.ATTENTION_GRAD_Q,
        attention.scaled_dot_product_attention_backward,
        lambda v: _attention(v)[0],
        through=(attention.ATTENTION_GRAD_WEIGHTS, attention.ATTENTION_GRAD_SCORES),
        **ATTENTION_CASE,
    ),
    SpecCase(
        attention.ATTENTION_GRAD_K,
        attention.scaled_dot_product_attention_backward,
        lambda v: _attention(v)[1],
        through=(attention.ATTENTION_GRAD_WEIGHTS, attention.ATTENTION_GRAD_SCORES),
        **ATTENTION_CASE,
    ),
    *(
        SpecCase(
            spec,
            attention.heads_projection_backward,
            lambda v, n=n: attention.heads_projection_backward(v["grad_projected"], v["W"], v["x"])[
                n
            ],
        )
        for n, spec in enumerate(
            [
                attention.HEADS_PROJECTION_GRAD_W,
                attention.HEADS_PROJECTION_GRAD_B,
                attention.HEADS_PROJECTION_GRAD_X,
            ]
        )
    ),
    *(
        SpecCase(
            spec,
            attention.merge_heads_backward,
            lambda v, n=n: attention.merge_heads_backward(v["grad_y"], v["W"], v["output"])[n],
        )
        for n, spec in enumerate(
            [
                attention.MERGE_HEADS_GRAD_W,
                attention.MERGE_HEADS_GRAD_B,
                attention.MERGE_HEADS_GRAD_OUTPUT,
            ]
        )
    ),
    SpecCase(conv.CONV2D_GRAD_W, conv.conv2d_backward, lambda v: _conv(v)[0].W, **CONV_CASE),
    SpecCase(conv.CONV2D_GRAD_B, conv.conv2d_backward, lambda v: _conv(v)[0].b, **CONV_CASE),
    SpecCase(conv.CONV2D_GRAD_X, conv.conv2d_backward, lambda v: _conv(v)[1], **CONV_CASE),
    SpecCase(
        pooling.AVGPOOL2D_GRAD_X,
        pooling.avgpool2d_backward,
        lambda v: pooling.avgpool2d_backward(
            v["grad_a"], pooling.avgpool2d_forward(pooling.AvgPool2d(KERNEL, STRIDE), v["x"])[1]
        ),
        records=(pooling.AvgPool2dCache,),
        **POOL_CASE,
    ),
    SpecCase(
        pooling.MAXPOOL2D_GRAD_X,
        pooling.maxpool2d_backward,
        lambda v: pooling.maxpool2d_backward(
            v["grad_a"], pooling.maxpool2d_forward(pooling.MaxPool2d(KERNEL, STRIDE), v["x"])[1]
        ),
        records=(pooling.MaxPool2dCache,),
        **POOL_CASE,
    ),
]
IDS = [f"{case.function.__name__}-{case.spec.result}" for case in CASES]


# --- reading the annotations -------------------------------------------------------------------


def annotated(obj: object) -> dict[str, type]:
    """Each array argument (or field) of ``obj`` with its jaxtyping hint; ``X | None`` is ``X``."""
    hints = typing.get_type_hints(obj, include_extras=True)
    found = {}
    for name, hint in hints.items():
        parts = [hint, *typing.get_args(hint)]
        arrays = [part for part in parts if hasattr(part, "dim_str")]
        if name != "return" and arrays:
            found[name] = arrays[0]
    return found


def hints(case: SpecCase) -> dict[str, type]:
    """The hints of the function's arguments and of the fields of the case's records."""
    found: dict[str, type] = {}
    for obj in case.records:
        found.update(annotated(obj))
    return {**found, **annotated(case.function)}


def dimensions(case: SpecCase) -> dict[str, tuple[str, ...]]:
    """Each operand's dimension names, from its annotation: ``{"W": ("out", "inp")}``."""
    return {name: tuple(hint.dim_str.split()) for name, hint in hints(case).items()}


def returned(function: Callable[..., object]) -> dict[str, tuple[str, ...]]:
    """Each returned array's dimension names, by the name its docstring's Returns section gives.

    ``{"grad_W": ("out", "inp"), "grad_b": ("out",)}`` for ``affine_grad_params``: the names come
    from numpydoc (one per entry, or several on one line, ``grad_W, grad_b, grad_a_prev``), the
    dimensions from the return annotation, in order; a returned record (``Conv2d``) has none.
    """
    lines = inspect.getdoc(function).splitlines()
    start = lines.index("Returns") + 2
    names: list[str] = []
    for line in lines[start:]:
        if line.startswith("---") or (names and not line.strip()):
            break
        if line and not line[0].isspace():
            names += [name.strip() for name in line.split(",")]
    hint = typing.get_type_hints(function, include_extras=True)["return"]
    parts = typing.get_args(hint) if typing.get_origin(hint) is tuple else (hint,)
    assert len(parts) == len(names), (function.__name__, names)
    return {
        name: tuple(part.dim_str.split())
        for name, part in zip(names, parts, strict=True)
        if hasattr(part, "dim_str")
    }


def result_dimensions(case: SpecCase) -> tuple[str, ...]:
    """The result's dimensions: as returned, or (inside a returned record) its value's."""
    found = returned(case.function)
    if case.spec.result in found:
        return found[case.spec.result]
    return dimensions(case)[case.spec.result.removeprefix("grad_")]


def free_dimensions(case: SpecCase) -> list[str]:
    """The dimensions whose sizes are drawn; ``*features`` is drawn as two axes."""
    names: set[str] = set()
    for dims in [*dimensions(case).values(), *returned(case.function).values()]:
        for dimension in dims:
            names |= {dimension + "0", dimension + "1"} if dimension[0] == "*" else {dimension}
    return sorted(names - set(case.computed))


def shape_of(dims: tuple[str, ...], sizes: dict[str, int]) -> tuple[int, ...]:
    shape: list[int] = []
    for dimension in dims:
        shape += (
            [sizes[dimension + "0"], sizes[dimension + "1"]]
            if dimension[0] == "*"
            else [sizes[dimension]]
        )
    return tuple(shape)


def arguments(case: SpecCase, sizes: dict[str, int], rng: np.random.Generator) -> Values:
    """Random values for the case, shaped by its annotations and ``sizes``."""
    values: Values = {
        name: rng.standard_normal(shape_of(tuple(hint.dim_str.split()), sizes))
        for name, hint in hints(case).items()
        if "float64" in hint.dtypes
    }
    if "z" in values:
        values["z"] += np.where(values["z"] >= 0, 0.1, -0.1)  # clear of ReLU's kink at 0
    return case.prepare(values, sizes, rng)


def operand_values(case: SpecCase, values: Values) -> Values:
    derived = {
        name: case.derived[name](values) for name in case.spec.operands if name not in values
    }
    return {**values, **derived}


# --- the tests ---------------------------------------------------------------------------------


def package_specs() -> dict[int, str]:
    """Every Spec that a module of ``typedbackprop.nn`` defines, by id, with its name."""
    found = {}
    modules = [info.name for info in pkgutil.iter_modules(typedbackprop.nn.__path__)]
    assert {"affine", "conv", "transformer", "layernorm", "reshape"} <= set(modules)
    for name in modules:
        module = importlib.import_module(f"typedbackprop.nn.{name}")
        for attribute, value in vars(module).items():
            if isinstance(value, Spec):
                found[id(value)] = f"{name}.{attribute}"
    return found


def test_every_spec_in_the_package_has_a_row():
    covered = {id(spec) for case in CASES for spec in (case.spec, *case.through)}
    specs = package_specs()
    assert sorted(specs[key] for key in set(specs) - covered) == []
    assert covered <= set(specs)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_the_docstring_states_the_specs_index_form(case):
    for spec in (case.spec, *case.through):
        # a sum of three products is too long for one line: the docstring may wrap it
        assert spec.index_form() in " ".join(inspect.getdoc(case.function).split()), (
            spec.index_form()
        )


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_each_terms_letters_are_its_operands_dimensions(case):
    dims = dimensions(case)
    named = [*dims.values(), *returned(case.function).values()]
    allowed = {letter for names in named for name in names for letter in LETTERS[name]}
    for name, term in zip(case.spec.operands, case.spec.terms, strict=True):
        indices = indices_of(term)
        if name in dims:
            assert len(indices) == len(dims[name]), (name, term)
            for letter, dimension in zip(indices, dims[name], strict=True):
                assert letter in LETTERS[dimension], (name, term, dims[name])
        else:
            assert name in case.derived, f"{name} is neither an argument nor a derivative"
            # a derived operand runs over ``...`` only where an annotation has variadic axes
            assert set(indices) <= allowed, (name, term)
    result_dims = result_dimensions(case)
    value = case.spec.result.removeprefix("grad_")
    if value in dims:  # the rule: a gradient has exactly the annotation of its value
        assert result_dims == dims[value]
    output = indices_of(case.spec.output)
    assert len(output) == len(result_dims)
    for letter, dimension in zip(output, result_dims, strict=True):
        assert letter in LETTERS[dimension], (case.spec.output, result_dims)


@pytest.mark.parametrize("case", CASES, ids=IDS)
@settings(deadline=None, max_examples=15)
@given(data=st.data(), seed=st.integers(0, 2**32 - 1))
def test_the_einsum_is_what_the_function_computes(case, data, seed):
    names = free_dimensions(case)
    largest = max(case.largest, len(names))
    drawn = data.draw(
        st.lists(st.integers(1, largest), min_size=len(names), max_size=len(names), unique=True)
    )
    sizes = case.sizes(dict(zip(names, drawn, strict=True)))
    values = arguments(case, sizes, np.random.default_rng(seed))
    expected = case.spec.evaluate(operand_values(case, values))
    actual = case.compute(values)
    assert actual.shape == expected.shape
    assert_close(actual, expected, rtol=1e-12)


@pytest.mark.parametrize(
    ("wrong", "sizes"),
    [
        pytest.param("ob,ib->io", {"out": 2, "inp": 3, "batch": 5}, id="transposed result"),
        pytest.param("ob,ib->ob", {"out": 2, "inp": 3, "batch": 5}, id="sum over inp, not batch"),
        pytest.param("ob,ib->io", {"out": 3, "inp": 3, "batch": 5}, id="transposed, W square"),
        pytest.param("ob,ib->oi", {"out": 2, "inp": 5, "batch": 5}, id="right spec, inp == batch"),
    ],
)
def test_the_comparison_has_teeth(wrong, sizes):
    """A wrong einsum for ``affine_grad_params`` differs from the code in shape or in value."""
    case = CASES[0]
    values = arguments(case, sizes, np.random.default_rng(3))
    actual = case.compute(values)
    claimed = Spec("grad_W", wrong, ("grad_z", "a_prev")).evaluate(values)
    agrees = claimed.shape == actual.shape and np.allclose(claimed, actual, rtol=1e-12)
    assert agrees == (wrong == case.spec.equation)


@pytest.mark.parametrize(
    "wrong",
    [
        pytest.param("opub,ocmn,mrp,nwu->crwb", id="right spec"),
        pytest.param("opub,ocmn,nrp,mwu->crwb", id="kernel rows and columns swapped"),
        pytest.param("opub,ocnm,mrp,nwu->crwb", id="the kernel transposed"),
    ],
)
def test_the_convolutions_comparison_has_teeth(wrong):
    """With a square kernel and a square image only the values tell a transposed kernel."""
    case = next(case for case in CASES if case.spec is conv.CONV2D_GRAD_X)
    sizes = _conv_sizes(
        {"out_channels": 2, "in_channels": 3, "kernel_h": 3, "kernel_w": 3, "height": 5}
        | {"width": 5, "batch": 4}
    )
    values = arguments(case, sizes, np.random.default_rng(4))
    claimed = Spec("grad_x", wrong, ("grad_z", "W", "R", "C")).evaluate(
        operand_values(case, values)
    )
    actual = case.compute(values)
    agrees = np.allclose(claimed, actual, rtol=1e-12)
    assert agrees == (wrong == case.spec.equation)


THREE_TERMS = [
    batchnorm.BATCHNORM_GRAD_X,
    batchnorm.BATCHNORM_IMAGES_GRAD_X,
    layernorm.LAYERNORM_GRAD_X,
]
"""The normalizations' input gradients: sums of three products."""


def _rebuilt(spec: Spec, products) -> Spec:
    """A spec with the given ``(sign, terms, operands)`` products and ``spec``'s result."""
    equation = " ".join(
        ("- " if sign == "-" else "+ " if n else "") + ",".join(terms)
        for n, (sign, terms, _) in enumerate(products)
    )
    operands = tuple(name for *_, names in products for name in names)
    return Spec(spec.result, f"{equation}->{spec.output}", operands)


def _mutants(spec: Spec) -> list[tuple[str, Spec]]:
    """Each product dropped, each product's sign flipped, and the unchanged spec."""
    products = spec.products
    found = [("unchanged", _rebuilt(spec, products))]
    for n in range(len(products)):
        found.append((f"product {n} dropped", _rebuilt(spec, products[:n] + products[n + 1 :])))
        flipped = ("+" if products[n][0] == "-" else "-", *products[n][1:])
        found.append(
            (f"product {n} negated", _rebuilt(spec, (*products[:n], flipped, *products[n + 1 :])))
        )
    return found


@pytest.mark.parametrize("spec", THREE_TERMS, ids=[spec.einsum_call()[:30] for spec in THREE_TERMS])
def test_the_three_terms_comparison_has_teeth(spec):
    """Dropping or negating any of the three products makes the comparison fail."""
    case = next(case for case in CASES if case.spec is spec)
    names = free_dimensions(case)
    sizes = case.sizes(dict(zip(names, range(2, 2 + len(names)), strict=True)))
    values = arguments(case, sizes, np.random.default_rng(5))
    actual = case.compute(values)
    for label, mutant in _mutants(spec):
        claimed = mutant.evaluate(operand_values(case, values))
        agrees = np.allclose(claimed, actual, rtol=1e-12)
        assert agrees == (label == "unchanged"), label


def test_batch_norm_normalized_over_the_wrong_axis_is_caught():
    """Layer norm's statistics (over ``features``) in batch norm's three terms: caught."""
    case = next(case for case in CASES if case.spec is batchnorm.BATCHNORM_GRAD_X)
    values = arguments(case, {"features": 3, "batch": 5}, np.random.default_rng(6))
    wrong = Spec(
        "grad_x",
        "fb,f,f - kb,f,f, - kb,kb,fb,f,f,->fb",
        batchnorm.BATCHNORM_GRAD_X.operands,
    )
    claimed = wrong.evaluate(operand_values(case, values))
    assert not np.allclose(claimed, case.compute(values), rtol=1e-12)


def test_index_form_and_einsum_call_render_the_spec():
    spec = affine.AFFINE_GRAD_A_PREV
    assert spec.index_form() == "∂L/∂a_prev_{ib} = Σ_o δ_{ob} W_{oi}"
    assert spec.einsum_call() == 'np.einsum("ob,oi->ib", grad_z, W)'
    assert spec.summed == "o"
    assert softmax.SOFTMAX_GRAD_Z.index_form() == "∂L/∂z_{j′b} = Σ_j ∂L/∂a_{jb} J_{jbj′}"


def test_several_sums_a_one_hot_a_number_and_leading_axes_render_as_the_docstrings_write_them():
    assert conv.CONV2D_GRAD_B.index_form() == "∂L/∂b_{o} = Σ_{p,u,b} δ_{opub}"
    assert embedding.EMBEDDING_GRAD_TABLE.index_form() == (
        "∂L/∂table_{vf} = Σ_{s,b} ∂L/∂x_{fsb} [ids_{sb} = v]"
    )
    assert attention.ATTENTION_GRAD_Q.index_form() == (
        "∂L/∂q_{hbdq} = Σ_k ∂L/∂scores_{hbkq} k_{hbdk} (1/√D)"
    )
    assert dropout.DROPOUT_GRAD_X.index_form() == "∂L/∂x_{…b} = ∂L/∂a_{…b} mask_{…b}"
    assert dropout.DROPOUT_GRAD_X.summed == ""
    assert indices_of("...b") == ("...", "b")


def test_a_sum_of_products_renders_each_product_with_its_sign_and_broadcasts_the_shorter():
    spec = Spec("grad_x", "fb,f - fB,f,->fb", ("grad_y", "gamma", "grad_y", "gamma", "1/N"))
    assert spec.index_form() == (  # a capital is its letter's second copy, written primed
        "∂L/∂x_{fb} = ∂L/∂y_{fb} gamma_{f} − Σ_b′ ∂L/∂y_{fb′} gamma_{f} (1/N)"
    )
    assert spec.einsum_call() == (
        'np.einsum("fb,f->fb", grad_y, gamma) - '
        'np.einsum("fB,f,->f", grad_y, gamma, 1/N)[:, np.newaxis]'
    )
    assert spec.terms == ("fb", "f", "fB", "f", "")
    assert spec.summed == "B"
    grad_y, gamma = np.arange(6.0).reshape(2, 3), np.array([2.0, -1.0])
    values = {"grad_y": grad_y, "gamma": gamma, "1/N": 1 / 3}
    expected = gamma[:, np.newaxis] * (grad_y - grad_y.mean(axis=1, keepdims=True))
    assert_close(spec.evaluate(values), expected, rtol=1e-15)
    assert layernorm.LAYERNORM_GRAD_X.einsum_call().count("[np.newaxis, ..., :]") == 1


@pytest.mark.parametrize(
    ("equation", "operands"),
    [
        ("ob,ib", ("grad_z", "a_prev")),
        ("ob->oq", ("grad_z",)),
        ("ob->o", ("grad_z", "a_prev")),
        ("fb,f - fk,f->fb", ("grad_y", "gamma", "grad_y")),
        ("f...b - fk->f...b", ("grad_y", "grad_y")),
    ],
)
def test_a_malformed_spec_is_refused(equation, operands):
    with pytest.raises(ValueError):
        Spec("grad_W", equation, operands)
