"""Layer norm's equations: each position's statistics over features, the scale and the shift.

Every operand is printed with its name and its shape (``x_hat`` and ``g`` are shaped like ``x``).
"""

from typedbackprop.checking import Array
from typedbackprop.explain.text import Names, Row, shape_text
from typedbackprop.nn.layernorm import LayerNorm, LayerNormCache

__all__ = ["layernorm_forward_rows", "layernorm_backward_rows"]


def _down_features(cache: LayerNormCache) -> tuple[str, str]:
    """``", None, None"`` and ``(features, 1, 1)``: how a ``" features"`` vector is indexed to
    broadcast along every position, and the shape that gives."""
    positions = cache.x.ndim - 1
    return ", None" * positions, shape_text((cache.layer.gamma.shape[0], *(1,) * positions))


def layernorm_forward_rows(
    names: Names, layer: LayerNorm, cache: LayerNormCache, output: Array
) -> list[Row]:
    """Layer norm's forward equations."""
    s, x = shape_text, names.input
    mean, rstd = f"mean {s(cache.mean.shape)}", f"rstd {s(cache.rstd.shape)}"
    broadcast, down = _down_features(cache)
    return [
        (
            f"{mean}, {rstd} = {x} {s(cache.x.shape)}.mean(axis=0), 1/sqrt({x}.var(axis=0) + eps)",
            "over features, one per position",
        ),
        (
            f"{names.output} {s(output.shape)} = {names.parameter('gamma')}[:{broadcast}] {down} * "
            f"({x} {s(cache.x.shape)} - {mean}) * {rstd} + "
            f"{names.parameter('beta')}[:{broadcast}] {down}",
            "mean and rstd broadcast down features",
        ),
    ]


def layernorm_backward_rows(names: Names, layer: LayerNorm, cache: LayerNormCache) -> list[Row]:
    """Layer norm's backward equations: γ's, β's and the input's gradient."""
    s, grad_y = shape_text, names.grad_output
    shape = s(cache.x.shape)
    axes = tuple(range(1, cache.x.ndim))
    features = s(cache.layer.gamma.shape)
    x_hat = f"x_hat {shape}"
    broadcast, down = _down_features(cache)
    gamma = names.parameter("gamma")
    rows = [
        (
            f"grad_{gamma} {features} = ({grad_y} {shape} * {x_hat}).sum(axis={axes})",
            "sum over every position",
        ),
        (
            f"grad_{names.parameter('beta')} {features} = {grad_y} {shape}.sum(axis={axes})",
            "sum over every position",
        ),
    ]
    if names.input_gradient:
        rows.append(
            (
                f"{names.grad_input} {shape} = rstd {s(cache.rstd.shape)} * (g - g.mean(axis=0) - "
                f"{x_hat} * (g * x_hat).mean(axis=0)), g {shape} = {gamma}[:{broadcast}] {down} * "
                f"{grad_y} {shape}",
                "every feature of a position moves its mean and variance",
            )
        )
    return rows
