"""Batch norm's equations: over the batch after a dense layer, over every pixel of the batch on
images; one describer, whose words follow the input's axes."""

from typedbackprop.checking import Array
from typedbackprop.explain.text import Names, Row, shape_text
from typedbackprop.nn.batchnorm import BatchNorm, BatchNormCache

__all__ = ["batchnorm_forward_rows", "batchnorm_backward_rows"]


def _forward_rows(
    names: Names, x_hat: Array, output: Array, batch_statistics: bool, over: str, per: str
) -> list[Row]:
    """Every operand printed with its name and its shape."""
    n, x, y = names.number, names.input, names.output
    gamma, beta = names.parameter("gamma"), names.parameter("beta")
    x_shape, stat = shape_text(x_hat.shape), shape_text(x_hat.shape[:1])
    if batch_statistics:
        rows = [
            (f"mean{n} {stat}, var{n} {stat} = mean and variance of {x} {x_shape} over {over}", "")
        ]
    else:
        rows = [(f"mean{n} {stat}, var{n} {stat} = the running statistics", "evaluation")]
    rows += [
        (
            f"x_hat{n} {x_shape} = ({x} {x_shape} - mean{n} {stat}) / sqrt(var{n} {stat} + eps)",
            per,
        ),
        (
            f"{y} {shape_text(output.shape)} = {gamma} {stat} * x_hat{n} {x_shape} + {beta} {stat}",
            f"gamma and beta broadcast along {over}",
        ),
    ]
    return rows


def _backward_rows(names: Names, x_hat: Array, batch_statistics: bool, over: str) -> list[Row]:
    """Every operand printed with its name and its shape (the three-term line lists them after
    the equation, which is long enough without them)."""
    n, grad_y = names.number, names.grad_output
    gamma, beta = names.parameter("gamma"), names.parameter("beta")
    x_shape, stat = shape_text(x_hat.shape), shape_text(x_hat.shape[:1])
    rows = [
        (f"grad_{gamma} {stat} = ({grad_y} {x_shape} * x_hat{n} {x_shape}).sum over {over}", ""),
        (f"grad_{beta} {stat} = {grad_y} {x_shape} summed over {over}", ""),
    ]
    if names.input_gradient and batch_statistics:
        rows.append(
            (
                f"{names.grad_input} {x_shape} = {gamma} / sqrt(var{n} + eps) * ({grad_y} - "
                f"mean({grad_y}) - x_hat{n} * mean({grad_y} * x_hat{n})), with {gamma} "
                f"{stat}, var{n} {stat}, {grad_y} {x_shape}, x_hat{n} {x_shape}",
                f"three terms: through x, mean{n} and var{n}; means over {over}",
            )
        )
    elif names.input_gradient:
        rows.append(
            (
                f"{names.grad_input} {x_shape} = {gamma} {stat} / sqrt(var{n} {stat} + eps) "
                f"* {grad_y} {x_shape}",
                "the running statistics are constants",
            )
        )
    return rows


def _over(x_hat: Array) -> tuple[str, str]:
    """What the statistics are taken over, and what each has one of: ``("batch", "per
    feature")`` after a dense layer, ``("height, width, batch", "per channel")`` on images (and
    ``"every axis but channels"`` on any other rank)."""
    if x_hat.ndim == 2:
        return "batch", "per feature"
    if x_hat.ndim == 4:
        return "height, width, batch", "per channel"
    return "every axis but channels", "per channel"


def batchnorm_forward_rows(
    names: Names, layer: BatchNorm, cache: BatchNormCache, output: Array
) -> list[Row]:
    """Batch norm's forward equations."""
    over, per = _over(cache.x_hat)
    return _forward_rows(names, cache.x_hat, output, cache.batch_statistics, over, per)


def batchnorm_backward_rows(names: Names, layer: BatchNorm, cache: BatchNormCache) -> list[Row]:
    """Batch norm's backward equations."""
    return _backward_rows(names, cache.x_hat, cache.batch_statistics, _over(cache.x_hat)[0])
