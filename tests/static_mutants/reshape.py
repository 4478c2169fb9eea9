"""One-line shape mistakes in ``Unflatten`` (``typedbackprop/nn/reshape.py``), flagged by name.

In the house layout the batch is the last axis of both the columns and the images. The classic
mistake is the batch-first habit of PyTorch's ``(batch, channels, height, width)``: the reshape
puts ``batch`` first, which scrambles every example's features across the batch and runs
without an error when ``width == batch``. By name, ``batch`` is not ``channels``.
"""

from static_mutants import Mutant

MODULE = "typedbackprop/nn/reshape.py"

MUTANTS: list[Mutant] = [
    Mutant(
        MODULE,
        "unflatten_forward",
        "a = x.reshape(layer.channels, layer.height, layer.width, batch)",
        "a = x.reshape(batch, layer.channels, layer.height, layer.width)",
        "the images reshaped batch first, (batch, channels, height, width), PyTorch's habit",
        silent_at_runtime=True,
    ),
    Mutant(
        MODULE,
        "unflatten_forward",
        "features, batch = x.shape",
        "batch, features = x.shape",
        "the input's axes read batch first, (batch, features)",
    ),
]
