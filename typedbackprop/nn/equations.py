"""How a layer family describes its own equations for ``explain``: names in, rows out.

``explain`` walks a network and gives each layer the names of its input and output (``a1``,
``z2``) and of their gradients (``grad_a1``, ``delta2``); the family's describers return rows of
``(equation, note)``, each operand followed by the shape of the real array it stands for.
"""

from dataclasses import dataclass

__all__ = ["Names", "Row", "shape_text"]

Row = tuple[str, str]
"""One line of ``explain``: the equation with shapes, and a note on why it has that form."""


@dataclass(frozen=True, slots=True)
class Names:
    """What ``explain`` calls one layer's values."""

    number: int
    """The layer's number in the network (``1`` for ``W1``)."""
    input: str
    """The input's name (``a0``)."""
    output: str
    """The output's name (``z1``)."""
    grad_input: str
    """The name of the input's gradient (``grad_a0``)."""
    grad_output: str
    """The name of the output's gradient (``delta1``)."""
    first: bool
    """Whether the first step of the backward pass runs through this layer (BP1)."""


def shape_text(shape: tuple[int, ...]) -> str:
    """``(4, 5)``, ``(4,)`` or ``()``: a shape as NumPy prints it."""
    return "(" + ", ".join(str(size) for size in shape) + ("," if len(shape) == 1 else "") + ")"
