"""An activation layer's equations: ``a = f(z)``, then BP1 or the elementwise half of BP2."""

from typedbackprop.checking import Array
from typedbackprop.explain.text import Names, Row, shape_text
from typedbackprop.nn.activations import (
    ACTIVATION_SPECS,
    ACTIVATIONS,
    Activation,
    ActivationCache,
)

__all__ = ["activation_forward_rows", "activation_backward_rows"]


def activation_forward_rows(
    names: Names, layer: Activation, cache: ActivationCache, output: Array
) -> list[Row]:
    """The forward equation of an activation layer."""
    return [
        (
            f"{names.output} {shape_text(output.shape)} = {layer.name}({names.input})",
            ACTIVATIONS[layer.name].acts_on,
        )
    ]


def activation_backward_rows(names: Names, layer: Activation, cache: ActivationCache) -> list[Row]:
    """BP1 (the output layer's) or the elementwise half of BP2.

    The note gives the activation's einsum from :data:`ACTIVATION_SPECS`, as the dense layer's
    rows give theirs.
    """
    shape = shape_text(cache.z.shape)
    delta, grad_a, a = names.grad_input, names.grad_output, names.output
    einsum = f"einsum {ACTIVATION_SPECS[layer.name].equation}"
    if names.first and layer.name == "softmax":
        return [
            (
                f"{delta} {shape} = {a} * ({grad_a} - ({a} * {grad_a}).sum(axis=0))",
                f"BP1, {einsum}: the softmax vector-Jacobian product",
            )
        ]
    return [
        (
            f"{delta} {shape} = {grad_a} {shape} * {layer.name}'({names.input}) {shape}",
            f"{'BP1' if names.first else 'BP2'}, {einsum}: {ACTIVATIONS[layer.name].acts_on}",
        )
    ]
