"""Flatten's and unflatten's equations: reshapes, with batch kept last."""

import math

from typedbackprop.checking import Array
from typedbackprop.explain.text import Names, Row, shape_text
from typedbackprop.nn.reshape import Flatten, FlattenCache, Unflatten, UnflattenCache

__all__ = [
    "flatten_forward_rows",
    "flatten_backward_rows",
    "unflatten_forward_rows",
    "unflatten_backward_rows",
]


def flatten_forward_rows(
    names: Names, layer: Flatten, cache: FlattenCache, output: Array
) -> list[Row]:
    """Flatten's forward equation."""
    return [
        (
            f"{names.output} {shape_text(output.shape)} = {names.input} "
            f"{shape_text(cache.x.shape)}.reshape{shape_text(output.shape)}",
            "each image one column; batch stays last",
        )
    ]


def flatten_backward_rows(names: Names, layer: Flatten, cache: FlattenCache) -> list[Row]:
    """Flatten's backward equation."""
    *image, batch = cache.x.shape
    columns = shape_text((math.prod(image), batch))  # the output's shape, as forward made it
    return [
        (
            f"{names.grad_input} {shape_text(cache.x.shape)} = {names.grad_output} {columns}"
            f".reshape{shape_text(cache.x.shape)}",
            "back in the images' shape",
        )
    ]


def unflatten_forward_rows(
    names: Names, layer: Unflatten, cache: UnflattenCache, output: Array
) -> list[Row]:
    """Unflatten's forward equation."""
    return [
        (
            f"{names.output} {shape_text(output.shape)} = {names.input} "
            f"{shape_text(cache.x.shape)}.reshape{shape_text(output.shape)}",
            "each column one image",
        )
    ]


def unflatten_backward_rows(names: Names, layer: Unflatten, cache: UnflattenCache) -> list[Row]:
    """Unflatten's backward equation."""
    return [
        (
            f"{names.grad_input} {shape_text(cache.x.shape)} = {names.grad_output} "
            f"{shape_text(cache.a.shape)}.reshape{shape_text(cache.x.shape)}",
            "back as columns",
        )
    ]
