"""Shape mistakes in a recurrent gate's backward: the input's and the state's weights confused.

A gate has two weight matrices, ``W_ih`` (``"hidden features"``) for the step's input and the
square ``W_hh`` (``"hidden hidden"``) for the previous state. Sending a gradient back through the
other one runs whenever the input has as many features as the state has units, on the wrong
numbers. The checks rely on :mod:`typedbackprop.nn.affine` declaring its dimensions: the calls
into it are checked by name.
"""

from static_mutants import Mutant

MODULE = "typedbackprop/nn/gate.py"

MUTANTS: list[Mutant] = [
    Mutant(
        MODULE,
        "gate_backward",
        "grad_x = affine_grad_input(grad_input_part, W_ih)",
        "grad_x = affine_grad_input(grad_input_part, W_hh)",
        "grad_x sent back through the state's weights W_hh instead of the input's W_ih",
        silent_at_runtime=True,
    ),
    Mutant(
        MODULE,
        "gate_backward",
        "grad_h = affine_grad_input(grad_hidden_part, W_hh)",
        "grad_h = affine_grad_input(grad_hidden_part, W_ih)",
        "grad_h sent back through the input's weights W_ih instead of the state's W_hh",
        silent_at_runtime=True,
    ),
]
