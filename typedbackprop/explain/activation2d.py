"""An image activation's equations: ``f`` at every pixel, and its backward."""

from typedbackprop.checking import Array
from typedbackprop.explain.text import Names, Row, shape_text
from typedbackprop.nn.activation2d import Activation2d, Activation2dCache
from typedbackprop.nn.activations import ACTIVATIONS

__all__ = ["activation2d_forward_rows", "activation2d_backward_rows"]


def activation2d_forward_rows(
    names: Names, layer: Activation2d, cache: Activation2dCache, output: Array
) -> list[Row]:
    """The forward equation of an image activation."""
    return [
        (
            f"{names.output} {shape_text(output.shape)} = "
            f"{layer.name}({names.input} {shape_text(cache.z.shape)})",
            "on every pixel: " + ACTIVATIONS[layer.name].acts_on.replace("column", "pixel"),
        )
    ]


def activation2d_backward_rows(
    names: Names, layer: Activation2d, cache: Activation2dCache
) -> list[Row]:
    """The backward equation of an image activation."""
    shape = shape_text(cache.z.shape)
    if layer.name == "softmax":
        grad_a, a = names.grad_output, names.output
        return [
            (
                f"{names.grad_input} {shape} = {a} {shape} * ({grad_a} {shape} - "
                f"({a} * {grad_a}).sum(axis=0))",
                "the softmax backward over the channels of each pixel",
            )
        ]
    return [
        (
            f"{names.grad_input} {shape} = {names.grad_output} {shape} * "
            f"{layer.name}'({names.input} {shape})",
            "elementwise",
        )
    ]
