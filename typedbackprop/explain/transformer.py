"""The transformer block's equations, told by its parts' describers, and the feed-forward's.

The block names its parts' values itself (``xa3`` into attention, ``r3`` after the first
residual, ``xf3`` into the feed-forward network) and hands each part its :class:`Names`: the
layer norms' parameters carry their place in the block (``attention_norm_gamma3`` for the
record's ``attention_norm.gamma``); attention's and the feed-forward network's keep their own
names (``W_query3`` for ``attention.W_query``), which no other part shares.
"""

from typedbackprop.checking import Array, record_fields
from typedbackprop.explain.attention import attention_backward_rows, attention_forward_rows
from typedbackprop.explain.layernorm import layernorm_backward_rows, layernorm_forward_rows
from typedbackprop.explain.text import Names, Row, shape_text
from typedbackprop.nn.transformer import (
    FeedForward,
    FeedForwardCache,
    TransformerBlock,
    TransformerBlockCache,
)

__all__ = [
    "TRANSFORMER_BLOCK_NAMES",
    "feedforward_forward_rows",
    "feedforward_backward_rows",
    "transformer_block_forward_rows",
    "transformer_block_backward_rows",
]


def _activation_text(layer: FeedForward, argument: str, derivative: bool = False) -> str:
    """``gelu(u3 (256, 15, 2))``, or ``leaky_relu'(u3 (256, 15, 2), slope=0.2)``: the slope is
    shown where the activation reads it."""
    prime = "'" if derivative else ""
    slope = f", slope={layer.slope:g}" if layer.activation == "leaky_relu" else ""
    return f"{layer.activation}{prime}({argument}{slope})"


def feedforward_forward_rows(
    names: Names, layer: FeedForward, cache: FeedForwardCache, output: Array
) -> list[Row]:
    """The feed-forward network's forward equations, every operand with its shape."""
    s, n = shape_text, names.number
    u, g = f"u{n} {s(cache.z.shape)}", f"g{n} {s(cache.a.shape)}"
    return [
        (
            f"{u} = {names.parameter('W_up')} {s(layer.W_up.shape)} @ {names.input} "
            f"{s(cache.x.shape)} + {names.parameter('b_up')} {s(layer.b_up.shape)}",
            "at every token: sum over features",
        ),
        (f"{g} = {_activation_text(layer, u)}", "elementwise"),
        (
            f"{names.output} {s(output.shape)} = {names.parameter('W_down')} "
            f"{s(layer.W_down.shape)} @ {g} + {names.parameter('b_down')} {s(layer.b_down.shape)}",
            "at every token: sum over hidden",
        ),
    ]


def feedforward_backward_rows(
    names: Names, layer: FeedForward, cache: FeedForwardCache
) -> list[Row]:
    """The feed-forward network's backward equations, every operand with its shape."""
    s, n = shape_text, names.number
    W_up, W_down = names.parameter("W_up"), names.parameter("W_down")
    tokens = s(cache.x.shape)
    delta = f"{names.grad_output} {s(cache.x.shape)}"  # ∂L/∂y is shaped like y, and y like x
    u, g = f"u{n} {s(cache.z.shape)}", f"g{n} {s(cache.a.shape)}"
    grad_u = f"grad_u{n} {s(cache.z.shape)}"
    rows = [
        (
            f"grad_{W_down} {s(layer.W_down.shape)} = {delta} · {g}, summed over tokens",
            "δ aᵀ at every token",
        ),
        (
            f"grad_{names.parameter('b_down')} {s(layer.b_down.shape)} = {delta}.sum(axis=(1, 2))",
            "δ 1",
        ),
        (
            f"{grad_u} = ({W_down}.T {s(layer.W_down.T.shape)} @ {delta}) * "
            f"{_activation_text(layer, u, derivative=True)}",
            "Wᵀ δ, then elementwise",
        ),
        (
            f"grad_{W_up} {s(layer.W_up.shape)} = {grad_u} · {names.input} {tokens}, "
            "summed over tokens",
            "δ aᵀ at every token",
        ),
        (
            f"grad_{names.parameter('b_up')} {s(layer.b_up.shape)} = {grad_u}.sum(axis=(1, 2))",
            "δ 1",
        ),
    ]
    if names.input_gradient:
        rows.append(
            (
                f"{names.grad_input} {tokens} = {W_up}.T {s(layer.W_up.T.shape)} @ {grad_u}",
                "sum over hidden",
            )
        )
    return rows


_PREFIXES = {
    "attention_norm": "attention_norm_",
    "attention": "",
    "feedforward_norm": "feedforward_norm_",
    "feedforward": "",
}
"""What a part's parameters are prefixed with in the equations, by the part's field."""

TRANSFORMER_BLOCK_NAMES = {
    f"{part}.{name}": f"{_PREFIXES[part]}{name}"
    for part, kind in record_fields(TransformerBlock)
    if isinstance(kind, type)
    for name, _ in record_fields(kind)
}
"""The block's parameters in the equations (``attention_norm_gamma``, ``W_query``), by their
path in the record (``attention_norm.gamma``, ``attention.W_query``)."""


def _parts(names: Names) -> tuple[Names, Names, Names, Names]:
    """The names the block gives its attention norm, attention, feed-forward norm and
    feed-forward network."""
    n, x = names.number, names.input
    return (
        Names(
            n,
            x,
            f"xa{n}",
            names.grad_input,
            f"grad_xa{n}",
            input_gradient=names.input_gradient,
            prefix=_PREFIXES["attention_norm"],
        ),
        Names(n, f"xa{n}", f"ya{n}", f"grad_xa{n}", f"grad_r{n}"),
        Names(
            n, f"r{n}", f"xf{n}", f"grad_r{n}", f"grad_xf{n}", prefix=_PREFIXES["feedforward_norm"]
        ),
        Names(n, f"xf{n}", f"yf{n}", f"grad_xf{n}", names.grad_output),
    )


def transformer_block_forward_rows(
    names: Names, layer: TransformerBlock, cache: TransformerBlockCache, output: Array
) -> list[Row]:
    """The block's forward equations, each part's in turn, and the two residual paths."""
    n, s = names.number, shape_text(output.shape)
    attention_norm, attention, feedforward_norm, feedforward = _parts(names)
    return [
        *layernorm_forward_rows(
            attention_norm, layer.attention_norm, cache.attention_norm, cache.attention.x
        ),
        *attention_forward_rows(attention, layer.attention, cache.attention, cache.attention.x),
        (f"r{n} {s} = {names.input} {s} + ya{n} {s}", "the residual path around attention"),
        *layernorm_forward_rows(
            feedforward_norm, layer.feedforward_norm, cache.feedforward_norm, cache.feedforward.x
        ),
        *feedforward_forward_rows(feedforward, layer.feedforward, cache.feedforward, output),
        (
            f"{names.output} {s} = r{n} {s} + yf{n} {s}",
            "the residual path around the feed-forward network",
        ),
    ]


def transformer_block_backward_rows(
    names: Names, layer: TransformerBlock, cache: TransformerBlockCache
) -> list[Row]:
    """The block's backward equations, part by part from the top, and the residual paths."""
    n, grad_y = names.number, names.grad_output
    s = shape_text(cache.attention.x.shape)
    attention_norm, attention, feedforward_norm, feedforward = _parts(names)
    rows = [
        *feedforward_backward_rows(feedforward, layer.feedforward, cache.feedforward),
        *layernorm_backward_rows(feedforward_norm, layer.feedforward_norm, cache.feedforward_norm),
        (f"grad_r{n} {s} += {grad_y} {s}", "the residual path: the identity's gradient"),
        *attention_backward_rows(attention, layer.attention, cache.attention),
        *layernorm_backward_rows(attention_norm, layer.attention_norm, cache.attention_norm),
    ]
    if names.input_gradient:
        rows.append((f"{names.grad_input} {s} += grad_r{n} {s}", "the residual path"))
    return rows
