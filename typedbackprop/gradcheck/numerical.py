"""The numerical side: central differences of ``forward``.

Everything here evaluates functions and nothing calls ``backward``. The one primitive is the
central difference of a function along a direction ``d`` of one input,
``(f(x + h d) − f(x − h d)) / 2h``, where ``d`` is a unit vector ``e_i`` (one entry, one column
of the Jacobian) or a random unit vector ``u`` (fast mode's ``J u``).
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np
from jaxtyping import Float
from numpy.typing import NDArray

from typedbackprop.checking import Array

__all__ = [
    "DEFAULT_EPS",
    "GradOutput",
    "OutputLayout",
    "Pattern",
    "Evaluate",
    "Direction",
    "numerical_gradient",
    "unit_vector",
    "evaluate_along",
    "central_difference",
    "same_pattern",
]

DEFAULT_EPS: Final = 1e-5
"""The central-difference step ``h``: the one default of every check and of the command line.

A central difference errs by about ``h² |f‴| / 6`` from truncation (the ``h`` and ``h³`` terms of
the two Taylor expansions cancel, the ``h³`` ones only in part) plus ``ε |f| / h`` from rounding
``f`` (``ε = 2.2e-16`` in float64). The sum is smallest at ``h = (3 ε |f| / |f‴|)^(1/3)``, about
``9e-6`` for a function and derivatives of unit scale, where both terms are near ``2e-11``. At
``h = 1e-6`` (``torch.autograd.gradcheck``'s step) rounding alone is ``2e-10``, ten times more;
at ``h = 1e-4`` truncation is ``2e-9``."""

GradOutput = float | Array | tuple[float | Array, ...]
"""What ``backward`` receives as ``grad_output``: a number for a scalar output, an array shaped
like an array output, a tuple of those for a ``forward`` that returns a tuple."""

Pattern = tuple[NDArray[np.bool_], ...] | None
"""Which side of every kink a point lies on (for a network: the sign of each pre-activation of a
ReLU layer), or ``None`` when the function cannot say; then
:meth:`~typedbackprop.gradcheck.analytic.Analytic.jump` decides, for the entries that fail."""

Evaluate = Callable[[list[Array]], tuple[Float[Array, " outputs"], Pattern]]
"""``forward`` on a list of inputs: every output flattened into one float64 vector, and the kink
pattern of that point."""

Direction = int | Array
"""Where to step: a flat entry index ``i`` of the input (the direction ``e_i``), or an array
shaped like the input."""


def _shape(value: object) -> tuple[int, ...]:
    """The shape of an array or a number (``()``)."""
    return tuple(int(size) for size in np.shape(value))  # type: ignore[call-overload]


@dataclass(frozen=True)
class OutputLayout:
    """The layout of ``forward``'s output: one array or number, or a tuple of them.

    The checks work on one flat vector of every output entry; this record flattens outputs into
    it and turns vectors over it back into what ``backward`` takes as ``grad_output``.
    """

    shapes: tuple[tuple[int, ...], ...]
    """The shape of each output (``()`` for a number)."""
    several: bool
    """Whether ``forward`` returns a tuple (or list) of outputs."""

    @classmethod
    def of(cls, output: object) -> "OutputLayout":
        """The layout of one output of ``forward``."""
        several = isinstance(output, tuple | list)
        parts: Sequence[object] = output if isinstance(output, tuple | list) else [output]
        shapes = []
        for number, part in enumerate(parts):
            if isinstance(part, tuple | list | dict):
                where = f"output {number}" if several else "the output"
                raise TypeError(
                    f"forward must return an array, a number, or a tuple of them; {where} is a "
                    f"{type(part).__name__}"
                )
            shapes.append(_shape(part))
        return cls(tuple(shapes), several)

    @property
    def sizes(self) -> list[int]:
        """The number of entries of each output."""
        return [int(np.prod(shape)) for shape in self.shapes]

    @property
    def size(self) -> int:
        """The number of entries of all outputs together: the rows of the Jacobian."""
        return sum(self.sizes)

    @property
    def is_scalar(self) -> bool:
        """Whether ``forward`` returns a single number (a loss)."""
        return not self.several and self.shapes == ((),)

    def flatten(self, output: object) -> Float[Array, " outputs"]:
        """Every entry of ``output`` in one float64 vector, copied (never a view of an input)."""
        parts: Sequence[object] = output if isinstance(output, tuple | list) else [output]
        shapes = tuple(_shape(part) for part in parts)
        if shapes != self.shapes or isinstance(output, tuple | list) != self.several:
            raise ValueError(
                f"forward returned outputs of shapes {shapes} after outputs of shapes "
                f"{self.shapes}: its output shapes must not depend on the input values"
            )
        if not parts:
            return np.zeros(0)
        # np.array copies: a forward that returns its input (or a view of it) must not see the
        # next perturbation change a value already taken.
        return np.concatenate([np.array(part, dtype=np.float64).reshape(-1) for part in parts])

    def unflatten(self, vector: Float[Array, " outputs"]) -> GradOutput:
        """The ``grad_output`` for ``backward`` whose entries are ``vector``."""
        pieces: list[float | Array] = []
        start = 0
        for shape, size in zip(self.shapes, self.sizes, strict=True):
            piece = vector[start : start + size]
            start += size
            pieces.append(float(piece[0]) if shape == () else piece.reshape(shape).copy())
        return tuple(pieces) if self.several else pieces[0]

    def locate(self, row: int) -> tuple[int | None, tuple[int, ...]]:
        """Which output (``None`` for a single one) and which entry of it row ``row`` is."""
        start = 0
        for number, (shape, size) in enumerate(zip(self.shapes, self.sizes, strict=True)):
            if row < start + size:
                index = tuple(int(i) for i in np.unravel_index(row - start, shape))
                return (number if self.several else None), index
            start += size
        raise IndexError(f"row {row} of {self.size}")


def unit_vector(vector: Array) -> Array:
    """``vector / ‖vector‖`` (a zero vector, or an empty one, as it is)."""
    norm = float(np.linalg.norm(vector))
    return vector / norm if norm > 0 else vector


def numerical_gradient(
    function: Callable[[Array], float],
    x: Float[Array, "*shape"],
    eps: float = DEFAULT_EPS,
) -> Float[Array, "*shape"]:
    """Central-difference gradient of a scalar function, one element at a time.

    Parameters
    ----------
    function
        Maps an array shaped like ``x`` to a number.
    x
        Where to differentiate; it is copied to float64, never modified. ``function`` sees the
        float64 copy, perturbed one element at a time.
    eps
        The step ``h`` (see :data:`DEFAULT_EPS` for why ``1e-5``).

    Returns
    -------
    gradient
        ``∂f/∂x``, the shape of ``x``, float64 whatever the dtype of ``x``.

    Notes
    -----
    ``∂f/∂x_i ≈ (f(x + h e_i) − f(x − h e_i)) / 2h``, whose error is ``O(h²)`` from truncation
    plus ``O(ε_machine |f| / h)`` from rounding; ``h = 1e-5`` balances the two in float64.
    """
    point = np.array(x, dtype=np.float64, copy=True)
    gradient = np.empty_like(point)
    flat_point, flat_gradient = point.reshape(-1), gradient.reshape(-1)
    for i in range(flat_point.size):
        original = flat_point[i]
        flat_point[i] = original + eps
        above = float(function(point))
        flat_point[i] = original - eps
        below = float(function(point))
        flat_point[i] = original
        flat_gradient[i] = (above - below) / (2 * eps)
    return gradient


def evaluate_along(
    evaluate: Evaluate, work: list[Array], k: int, direction: Direction, step: float
) -> tuple[Float[Array, " outputs"], Pattern]:
    """``evaluate`` with input ``k`` moved by ``step`` along ``direction``; ``work`` is restored.

    An entry index moves that entry in place and puts back its exact value; an array direction
    evaluates at a new array ``x + step · direction`` and leaves ``x`` itself untouched.
    """
    if isinstance(direction, int):
        flat = work[k].reshape(-1)  # a view: the working copies are contiguous
        original = flat[direction]
        flat[direction] = original + step
        try:
            return evaluate(work)
        finally:
            flat[direction] = original
    saved = work[k]
    work[k] = saved + step * direction
    try:
        return evaluate(work)
    finally:
        work[k] = saved


def same_pattern(first: Pattern, second: Pattern) -> bool:
    """Whether two points lie on the same side of every kink (``True`` if neither can say)."""
    if first is None or second is None:
        return True
    return len(first) == len(second) and all(
        np.array_equal(a, b) for a, b in zip(first, second, strict=True)
    )


@dataclass(frozen=True)
class CentralDifference:
    """One central difference of every output along one direction of one input."""

    derivative: Float[Array, " outputs"]
    """``(f(x + h d) − f(x − h d)) / 2h`` for each output entry."""
    crosses_kink: bool
    """Whether the kink patterns at ``x − h d``, ``x`` and ``x + h d`` differ (``False`` when the
    function gives no pattern)."""


def central_difference(
    evaluate: Evaluate,
    work: list[Array],
    k: int,
    direction: Direction,
    eps: float,
    center_pattern: Pattern,
) -> CentralDifference:
    """The central difference of ``evaluate`` along ``direction`` of input ``k``.

    Parameters
    ----------
    evaluate
        ``forward`` on a list of inputs (see :data:`Evaluate`).
    work
        The inputs; input ``k`` is perturbed and restored.
    k
        Which input.
    direction
        An entry index or a direction array (see :data:`Direction`).
    eps
        The step ``h``.
    center_pattern
        The kink pattern at the unperturbed point.

    Returns
    -------
    CentralDifference
        The derivative along ``direction`` and whether the step crossed a kink.
    """
    above, above_pattern = evaluate_along(evaluate, work, k, direction, eps)
    below, below_pattern = evaluate_along(evaluate, work, k, direction, -eps)
    crosses = not (
        same_pattern(above_pattern, center_pattern) and same_pattern(below_pattern, center_pattern)
    )
    return CentralDifference((above - below) / (2 * eps), crosses)
