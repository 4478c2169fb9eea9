"""The dense layer's equations: ``z = W a_prev + b``, then BP4, BP3 and ``Wᵀ δ``."""

from typedbackprop.checking import Array
from typedbackprop.explain.text import Names, Row, shape_text
from typedbackprop.nn.affine import (
    AFFINE_GRAD_A_PREV,
    AFFINE_GRAD_B,
    AFFINE_GRAD_W,
    Dense,
    DenseCache,
)

__all__ = ["dense_forward_rows", "dense_backward_rows"]


def dense_forward_rows(names: Names, layer: Dense, cache: DenseCache, output: Array) -> list[Row]:
    """The forward equation of a dense layer, with every operand's shape."""
    W, b = names.parameter("W"), names.parameter("b")
    return [
        (
            f"{names.output} {shape_text(output.shape)} = {W} {shape_text(layer.W.shape)} @ "
            f"{names.input} {shape_text(cache.a_prev.shape)} + {b}[:, None] "
            f"{shape_text(layer.b[:, None].shape)}",
            "sum over inp; the bias broadcasts along batch",
        )
    ]


def dense_backward_rows(names: Names, layer: Dense, cache: DenseCache) -> list[Row]:
    """BP4, BP3 and (unless nothing needs it) ``Wᵀ δ``, with their specs."""
    W, b, delta = names.parameter("W"), names.parameter("b"), names.grad_output
    batch = cache.a_prev.shape[1]
    delta_shape = shape_text((layer.W.shape[0], batch))
    rows = [
        (
            f"grad_{W} {shape_text(layer.W.shape)} = {delta} {delta_shape} @ {names.input}.T "
            f"{shape_text(cache.a_prev.T.shape)}",
            f"BP4, einsum {AFFINE_GRAD_W.equation}: sum over batch; shaped like {W}",
        ),
        (
            f"grad_{b} {shape_text(layer.b.shape)} = {delta}.sum(axis=1)",
            f"BP3, einsum {AFFINE_GRAD_B.equation}: b was broadcast along batch",
        ),
    ]
    if names.input_gradient:
        rows.append(
            (
                f"{names.grad_input} {shape_text(cache.a_prev.shape)} = {W}.T "
                f"{shape_text(layer.W.T.shape)} @ {delta} {delta_shape}",
                f"einsum {AFFINE_GRAD_A_PREV.equation}: sum over out; shaped like {names.input}",
            )
        )
    return rows
