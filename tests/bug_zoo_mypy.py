"""The bug zoo's type errors: mistakes mypy reports before anything runs, each next to its fix.

``tests/test_bug_zoo.py`` runs ``mypy --strict`` on this file and asserts that it reports exactly
the lines marked ``# BUG``, and nothing in the fixed versions. Both mistakes fail at run time too,
but only once the line runs; mypy finds them in code that has never been called.
"""

import typedbackprop as tbp
from typedbackprop import Array

__all__ = [
    "output_layer_grads",
    "output_layer_grads_fixed",
    "output_delta",
    "output_delta_fixed",
]


# --8<-- [start:three_gradients]
def output_layer_grads(delta: Array, a_prev: Array) -> tuple[Array, Array]:
    grad_W, grad_b, grad_a_prev = tbp.nn.affine_grad_params(delta, a_prev)  # BUG: it returns two
    return grad_W, grad_b
    # --8<-- [end:three_gradients]


# --8<-- [start:three_gradients_fixed]
def output_layer_grads_fixed(delta: Array, a_prev: Array) -> tuple[Array, Array]:
    grad_W, grad_b = tbp.nn.affine_grad_params(
        delta, a_prev
    )  # the first layer needs no grad_a_prev
    return grad_W, grad_b
    # --8<-- [end:three_gradients_fixed]


# --8<-- [start:loss_tuple]
def output_delta(a: Array, z: Array, y: Array) -> Array:
    grad_a = tbp.nn.squared_error(a, y)  # BUG: a loss returns (loss, grad_a), not grad_a
    return tbp.nn.sigmoid_backward(grad_a, z, a)  # mypy reports the tuple where it is used
    # --8<-- [end:loss_tuple]


# --8<-- [start:loss_tuple_fixed]
def output_delta_fixed(a: Array, z: Array, y: Array) -> Array:
    _, grad_a = tbp.nn.squared_error(a, y)
    return tbp.nn.sigmoid_backward(grad_a, z, a)
    # --8<-- [end:loss_tuple_fixed]
