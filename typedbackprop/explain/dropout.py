"""Dropout's equations: the input times the mask forward drew, and back through the same mask."""

from typedbackprop.checking import Array
from typedbackprop.explain.text import Names, Row, shape_text
from typedbackprop.nn.dropout import Dropout, DropoutCache

__all__ = ["dropout_forward_rows", "dropout_backward_rows"]


def dropout_forward_rows(
    names: Names, layer: Dropout, cache: DropoutCache, output: Array
) -> list[Row]:
    """Dropout's forward equation (the identity in evaluation)."""
    shape = shape_text(output.shape)
    if cache.mask is None:
        return [(f"{names.output} {shape} = {names.input}", "evaluation: the identity")]
    return [
        (
            f"{names.output} {shape} = {names.input} * mask{names.number} {shape}",
            f"mask: 0, or 1/(1 - {layer.rate:g}) with probability {1 - layer.rate:g}",
        )
    ]


def dropout_backward_rows(names: Names, layer: Dropout, cache: DropoutCache) -> list[Row]:
    """Dropout's backward equation."""
    shape = shape_text(cache.x.shape)
    if cache.mask is None:
        return [(f"{names.grad_input} {shape} = {names.grad_output}", "evaluation")]
    return [
        (
            f"{names.grad_input} {shape} = {names.grad_output} * mask{names.number} {shape}",
            "the mask forward drew",
        )
    ]
