"""The poolings' equations: the maximum or the mean of each window, and where the gradient goes."""

from typedbackprop.checking import Array
from typedbackprop.explain.text import Names, Row, shape_text
from typedbackprop.nn.pooling import AvgPool2d, AvgPool2dCache, MaxPool2d, MaxPool2dCache

__all__ = [
    "maxpool2d_forward_rows",
    "maxpool2d_backward_rows",
    "avgpool2d_forward_rows",
    "avgpool2d_backward_rows",
]


def maxpool2d_forward_rows(
    names: Names, layer: MaxPool2d, cache: MaxPool2dCache, output: Array
) -> list[Row]:
    """Max pooling's forward equation."""
    window, stride = layer.window, layer.stride
    return [
        (
            f"{names.output} {shape_text(output.shape)} = max over {window}x{window} windows, "
            f"stride {stride}, of {names.input} {shape_text(cache.x.shape)}",
            "per channel and example; the argmax is saved",
        )
    ]


def maxpool2d_backward_rows(names: Names, layer: MaxPool2d, cache: MaxPool2dCache) -> list[Row]:
    """Max pooling's backward equation."""
    return [
        (
            f"{names.grad_input} {shape_text(cache.x.shape)} = {names.grad_output} "
            f"{shape_text(cache.argmax.shape)} added at each window's maximum",
            "zero elsewhere; overlapping windows add up: +=",
        )
    ]


def avgpool2d_forward_rows(
    names: Names, layer: AvgPool2d, cache: AvgPool2dCache, output: Array
) -> list[Row]:
    """Average pooling's forward equation."""
    window, stride = layer.window, layer.stride
    return [
        (
            f"{names.output} {shape_text(output.shape)} = mean over {window}x{window} windows, "
            f"stride {stride}, of {names.input} {shape_text(cache.x.shape)}",
            "per channel and example",
        )
    ]


def avgpool2d_backward_rows(names: Names, layer: AvgPool2d, cache: AvgPool2dCache) -> list[Row]:
    """Average pooling's backward equation."""
    window = layer.window
    return [
        (
            f"{names.grad_input} {shape_text(cache.x.shape)} = {names.grad_output} "
            f"{shape_text(cache.a.shape)} / {window * window} added over each window",
            "overlapping windows add up: +=",
        )
    ]
