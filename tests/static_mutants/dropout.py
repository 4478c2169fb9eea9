"""A shape mistake in dropout's backward: the saved mask applied in the other layout.

The mask has the input's shape, ``"*features batch"``; one held batch-first, as PyTorch holds
activations (``mask.T``), multiplies the wrong entries and runs when the sizes agree (as many
features as examples). Drawing the mask is checked at runtime only: ``rng.random`` has no shape
for Pyrefly, and so neither has the forward pass that uses it.
"""

from static_mutants import Mutant

MODULE = "typedbackprop/nn/dropout.py"

MUTANTS: list[Mutant] = [
    Mutant(
        MODULE,
        "dropout_backward",
        "return grad_a * mask",
        "return grad_a * mask.T",
        "the saved mask transposed (batch-first), so the gradient flows through dropped units",
        silent_at_runtime=True,
    ),
]
