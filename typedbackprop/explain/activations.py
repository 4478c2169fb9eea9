"""An activation layer's equations: ``a = f(z)``, then BP1 or the elementwise half of BP2.

One describer for every input the layer takes: after a dense layer the rows are the
perceptron's; on images or tokens (``*positions`` not empty) each note says the function acts at
every position, and softmax's rows run down ``features`` (an image's channels) at each one.
"""

from typedbackprop.checking import Array
from typedbackprop.explain.text import Names, Row, shape_text
from typedbackprop.nn.activations import (
    ACTIVATION_SPECS,
    ACTIVATIONS,
    Activation,
    ActivationCache,
)

__all__ = ["activation_forward_rows", "activation_backward_rows"]


def _acts_on(layer: Activation, cache: ActivationCache) -> str:
    """``elementwise`` or ``down each column``; ``at every position: ...`` beyond a matrix."""
    acts_on = ACTIVATIONS[layer.name].acts_on
    if cache.z.ndim == 2:
        return acts_on
    return "at every position: " + acts_on.replace("each column", "features")


def activation_forward_rows(
    names: Names, layer: Activation, cache: ActivationCache, output: Array
) -> list[Row]:
    """The forward equation of an activation layer."""
    argument = names.input
    if cache.z.ndim > 2:  # an image's or a token's activations: the operand's shape is not z's 2-D
        argument += f" {shape_text(cache.z.shape)}"
    return [
        (
            f"{names.output} {shape_text(output.shape)} = {layer.name}({argument})",
            _acts_on(layer, cache),
        )
    ]


def activation_backward_rows(names: Names, layer: Activation, cache: ActivationCache) -> list[Row]:
    """BP1 (the output layer's) or the elementwise half of BP2.

    The note gives the activation's einsum from :data:`ACTIVATION_SPECS`, as the dense layer's
    rows give theirs (on images or tokens, the einsum of each position's column).
    """
    shape = shape_text(cache.z.shape)
    delta, grad_a, a = names.grad_input, names.grad_output, names.output
    einsum = f"einsum {ACTIVATION_SPECS[layer.name].equation}"
    step = "BP1" if names.first else "BP2"
    if layer.name == "softmax" and (names.first or cache.z.ndim > 2):
        where = "" if cache.z.ndim == 2 else ", at every position"
        return [
            (
                f"{delta} {shape} = {a} * ({grad_a} - ({a} * {grad_a}).sum(axis=0))",
                f"{step}, {einsum}: the softmax vector-Jacobian product{where}",
            )
        ]
    derivative = f"{layer.name}'({names.input}) {shape}"  # f'(z1) (4, 5)
    if cache.z.ndim > 2:  # f'(y4 (32, 4, 4, 3)): the operand's shape inside, as the forward's
        derivative = f"{layer.name}'({names.input} {shape})"
    return [
        (
            f"{delta} {shape} = {grad_a} {shape} * {derivative}",
            f"{step}, {einsum}: {_acts_on(layer, cache)}",
        )
    ]
