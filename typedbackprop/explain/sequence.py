"""The sequence layers' equations: the dense layer at every token, and the tokens kept."""

from typedbackprop.checking import Array
from typedbackprop.explain.text import Names, Row, shape_text
from typedbackprop.nn.sequence import KeepLast, KeepLastCache, TokenDense, TokenDenseCache

__all__ = [
    "token_dense_forward_rows",
    "token_dense_backward_rows",
    "keep_last_forward_rows",
    "keep_last_backward_rows",
]


def token_dense_forward_rows(
    names: Names, layer: TokenDense, cache: TokenDenseCache, output: Array
) -> list[Row]:
    """The forward equation of a token-wise dense layer."""
    return [
        (
            f"{names.output} {shape_text(output.shape)} = {names.parameter('W')} "
            f"{shape_text(layer.W.shape)} @ {names.input} {shape_text(cache.x.shape)} + "
            f"{names.parameter('b')}[:, None, None] {shape_text((*layer.b.shape, 1, 1))}",
            "at every token: sum over inp",
        )
    ]


def token_dense_backward_rows(names: Names, layer: TokenDense, cache: TokenDenseCache) -> list[Row]:
    """``δ xᵀ``, ``δ 1`` and ``Wᵀ δ`` summed over every token."""
    W, b, delta = names.parameter("W"), names.parameter("b"), names.grad_output
    features, seq, batch = cache.x.shape
    delta_shape = shape_text((layer.W.shape[0], seq, batch))
    rows = [
        (
            f"grad_{W} {shape_text(layer.W.shape)} = {delta} {delta_shape} · {names.input} "
            f"{shape_text(cache.x.shape)}, summed over seq and batch",
            "shaped like W",
        ),
        (
            f"grad_{b} {shape_text(layer.b.shape)} = {delta} {delta_shape}.sum(axis=(1, 2))",
            "shaped like b",
        ),
    ]
    if names.input_gradient:
        rows.append(
            (
                f"{names.grad_input} {shape_text(cache.x.shape)} = {W}.T "
                f"{shape_text(layer.W.T.shape)} @ {delta} {delta_shape}",
                "at every token: sum over out",
            )
        )
    return rows


def keep_last_forward_rows(
    names: Names, layer: KeepLast, cache: KeepLastCache, output: Array
) -> list[Row]:
    """The forward equation of :class:`~typedbackprop.nn.sequence.KeepLast`."""
    seq = cache.x.shape[1]
    return [
        (
            f"{names.output} {shape_text(output.shape)} = {names.input} "
            f"{shape_text(cache.x.shape)}[:, {seq - layer.count}:, :]",
            f"the last {layer.count} tokens: those with a target",
        )
    ]


def keep_last_backward_rows(names: Names, layer: KeepLast, cache: KeepLastCache) -> list[Row]:
    """The backward equation of :class:`~typedbackprop.nn.sequence.KeepLast`."""
    if not names.input_gradient:
        return []
    seq = cache.x.shape[1]
    return [
        (
            f"{names.grad_input} {shape_text(cache.x.shape)} = zeros, with "
            f"[:, {seq - layer.count}:, :] = {names.grad_output} "
            f"{shape_text((cache.x.shape[0], layer.count, cache.x.shape[2]))}",
            "the dropped tokens get no gradient",
        )
    ]
