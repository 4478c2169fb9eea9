"""The words of ``explain``: what a layer's values are called, and how its rows are laid out.

``explain`` walks a network and gives each layer the :class:`Names` of its input and output
(``a1``, ``z2``) and of their gradients (``grad_a1``, ``delta2``); the layer's describer returns
rows of ``(equation, note)``, each operand followed by the shape of the real array it stands for.
:func:`table` lays the rows out for a terminal of a given width.
"""

import textwrap
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["Names", "Row", "prose", "shape_text", "table", "wrap"]

Row = tuple[str, str]
"""One line of ``explain``: the equation with shapes, and a note on why it has that form."""


@dataclass(frozen=True, slots=True)
class Names:
    """What ``explain`` calls one layer's values.

    A composite layer describes its parts with names of its own: a transformer block names the
    layer norm before attention's input ``r3`` and output ``xa3``, and its γ
    ``attention_norm_gamma3`` (``prefix="attention_norm_"``).
    """

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
    first: bool = False
    """Whether the first step of the backward pass runs through this layer (BP1)."""
    input_gradient: bool = True
    """Whether the backward pass computes the input's gradient (not below the lowest layer
    with parameters: nothing needs it)."""
    prefix: str = ""
    """What the layer's parameters' names start with (``attention_norm_`` in a block)."""

    def parameter(self, name: str) -> str:
        """A parameter's name in the equations: ``W1``, or ``attention_norm_gamma3``."""
        return f"{self.prefix}{name}{self.number}"


def shape_text(shape: tuple[int, ...]) -> str:
    """``(4, 5)``, ``(4,)`` or ``()``: a shape as NumPy prints it."""
    return "(" + ", ".join(str(size) for size in shape) + ("," if len(shape) == 1 else "") + ")"


INDENT = "  "
"""Where an equation starts."""
GAP = "   "
"""Between an equation and its note, when they share a line."""
UNDER = "      "
"""Where the rest of an equation that does not fit on one line goes, and a note under it."""
NOTE_MIN = 30
"""The narrowest column a note is wrapped into beside its equation; narrower, it goes under."""
OPERATORS = frozenset({"=", "+=", "+", "-", "*", "/", "@", "·"})
"""Tokens a line is broken before, never after: the next line opens with the operator."""


def _pieces(text: str) -> list[str]:
    """``text`` cut at the spaces a line may break at: never inside brackets, never between a
    name and the shape after it (``W1 (4, 3)`` stays whole), never after an operator."""
    atoms, depth, start = [], 0, 0
    for index, character in enumerate(text):
        if character in "([{":
            depth += 1
        elif character in ")]}":
            depth -= 1
        elif character == " " and depth == 0 and not text.startswith("(", index + 1):
            atoms.append(text[start:index])
            start = index + 1
    atoms.append(text[start:])
    pieces: list[str] = []
    for atom in atoms:
        if pieces and pieces[-1] in OPERATORS:
            pieces[-1] += " " + atom
        else:
            pieces.append(atom)
    return pieces


def wrap(text: str, width: int, first: str = "", rest: str = "") -> list[str]:
    """``text`` in lines of at most ``width`` characters, after ``first`` then ``rest``.

    A piece longer than a line (a bracket group, an operand with its shape) is never cut: its
    line is longer.
    """
    lines: list[str] = []
    line = ""
    for piece in _pieces(text):
        indent = rest if lines else first
        if line and len(indent) + len(line) + 1 + len(piece) > width:
            lines.append(indent + line)
            line = piece
        else:
            line = f"{line} {piece}" if line else piece
    lines.append((rest if lines else first) + line)
    return lines


def table(rows: Sequence[Row], width: int | None = None) -> list[str]:
    """The rows as lines: each note beside its equation, or under it where the width is short.

    Parameters
    ----------
    rows
        ``(equation, note)`` pairs; an empty note adds nothing.
    width
        The widest line allowed (a terminal's columns); ``None`` for no limit.

    Returns
    -------
    lines
        Where every row fits, one line per row, the notes in one column. Where the equations
        fit with a column of at least :data:`NOTE_MIN` characters beside them, the notes wrap
        within it. Otherwise each equation is wrapped on its own, and its note follows under it
        as ``# note``.
    """
    widest = max(len(equation) for equation, _ in rows)
    column = len(INDENT) + widest + len(GAP)
    beside = [f"{INDENT}{equation:<{widest}}{GAP}{note}".rstrip() for equation, note in rows]
    if width is None or max(len(line) for line in beside) <= width:
        return beside
    lines: list[str] = []
    if width - column >= NOTE_MIN:
        for equation, note in rows:
            notes = wrap(note, width - column) if note else [""]
            lines.append(f"{INDENT}{equation:<{widest}}{GAP}{notes[0]}".rstrip())
            lines += [" " * column + more for more in notes[1:]]
        return lines
    for equation, note in rows:
        lines += wrap(equation, width, INDENT, UNDER)
        if note:
            lines += wrap(note, width, UNDER + "# ", UNDER + "# ")
    return lines


def prose(lines: Sequence[str], width: int | None) -> list[str]:
    """Lines of prose, each wrapped to ``width`` under its own indent (``None``: as they are)."""
    if width is None:
        return list(lines)
    wrapped: list[str] = []
    for line in lines:
        indent = line[: len(line) - len(line.lstrip())]
        wrapped += textwrap.wrap(
            line.lstrip(),
            width,
            initial_indent=indent,
            subsequent_indent=indent + "  ",
            break_long_words=False,
            break_on_hyphens=False,
        ) or [line]
    return wrapped
