"""Each backward's index form, written once as an einsum, where docs, ``explain`` and tests read it.

A backward function's docstring states its equation in index form, ``∂L/∂W_{oi} = Σ_b δ_{ob}
a_prev_{ib}``, and its body computes it in matrix form, ``grad_z @ a_prev.T``. Nothing in Python
ties the two together. A :class:`Spec` is the index form as data: the einsum subscripts
``"ob,ib->oi"`` and the names of the operands, ``("grad_z", "a_prev")``. It renders to the
docstring's text (:meth:`Spec.index_form`), to the call that evaluates it
(:meth:`Spec.einsum_call`), and evaluates itself with :func:`numpy.einsum`
(:meth:`Spec.evaluate`). The tests evaluate every spec on inputs whose dimensions all have
different sizes and compare it with the function it specifies, and check that the function's
docstring states exactly the spec's index form; so the equation on the page cannot drift from the
code.

Every spec writes the 1-D chain rule in one order, *upstream gradient times local gradient*: the
upstream gradient (``grad_z``, written ``δ``, or ``grad_a``) is the first operand, the local
gradient of the forward's output with respect to the value (``a_prev``, ``W``, ``σ'(z)``) the
second. In index form each term is a product of two numbers, so the order is free; in matrix form
it is not, and the shapes decide it.
"""

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from typedbackprop.checking import Array

__all__ = ["Spec", "symbol"]


def symbol(name: str, indices: str) -> str:
    """How an index form writes the operand ``name`` with ``indices``.

    ``grad_z`` is ``δ_{ob}`` (the backprop equations' name for ``∂L/∂z``, the upstream
    gradient of an affine layer's backward; a result is always written ``∂L/∂<v>``); any other
    ``grad_<v>`` is ``∂L/∂<v>_{...}``; a local derivative written as a function of ``z``, such
    as ``σ'(z)``, takes its indices inside, ``σ'(z_{fb})``; anything else is ``<name>_{...}``.
    """
    if name == "grad_z":
        return f"δ_{{{indices}}}"
    if name.startswith("grad_"):
        return f"∂L/∂{name.removeprefix('grad_')}_{{{indices}}}"
    if name.endswith("(z)"):
        return f"{name.removesuffix('(z)')}(z_{{{indices}}})"
    return f"{name}_{{{indices}}}"


@dataclass(frozen=True, slots=True)
class Spec:
    """One gradient of a backward function, in index form, as an einsum.

    Parameters
    ----------
    result
        The gradient the spec defines, by its name in the code (``"grad_W"``).
    equation
        :func:`numpy.einsum` subscripts, one term per operand and the result's after ``->``
        (``"ob,ib->oi"``). Each letter is the first letter of the dimension it runs over in the
        operands' annotations (``o`` for ``out``, ``b`` for ``batch``; ``c`` and ``k`` both run
        over ``classes``). A letter missing from the result is summed over.
    operands
        What is multiplied, upstream gradient first: names of the backward function's
        arguments (``"grad_z"``, ``"a_prev"``), or a local derivative that the backward function
        computes from them, written as a function of ``z`` (``"σ'(z)"``) or as ``"J"`` for a
        Jacobian.

    Notes
    -----
    ``Spec("grad_W", "ob,ib->oi", ("grad_z", "a_prev")).index_form()`` is
    ``∂L/∂W_{oi} = Σ_b δ_{ob} a_prev_{ib}``.
    """

    result: str
    equation: str
    operands: tuple[str, ...]

    def __post_init__(self) -> None:
        inputs, arrow, output = self.equation.partition("->")
        terms = inputs.split(",")
        if not arrow or len(terms) != len(self.operands):
            raise ValueError(
                f"{self.equation!r} needs one term per operand {self.operands} and a '->'"
            )
        if not set(output) <= set("".join(terms)):
            raise ValueError(f"{self.equation!r}: every index of the result must be an input's")

    @property
    def terms(self) -> tuple[str, ...]:
        """The indices of each operand: ``("ob", "ib")``."""
        return tuple(self.equation.partition("->")[0].split(","))

    @property
    def output(self) -> str:
        """The indices of the result: ``"oi"``."""
        return self.equation.partition("->")[2]

    @property
    def summed(self) -> str:
        """The indices summed over, in order of appearance: ``"b"``."""
        seen = dict.fromkeys("".join(self.terms))
        return "".join(index for index in seen if index not in self.output)

    def index_form(self) -> str:
        """The equation as the docstring writes it: ``∂L/∂W_{oi} = Σ_b δ_{ob} a_prev_{ib}``."""
        total = f"Σ_{self.summed} " if self.summed else ""
        factors = " ".join(
            symbol(name, indices) for name, indices in zip(self.operands, self.terms, strict=True)
        )
        gradient = f"∂L/∂{self.result.removeprefix('grad_')}_{{{self.output}}}"
        return f"{gradient} = {total}{factors}"

    def einsum_call(self) -> str:
        """The NumPy call that evaluates it: ``np.einsum("ob,ib->oi", grad_z, a_prev)``."""
        return f'np.einsum("{self.equation}", {", ".join(self.operands)})'

    def evaluate(self, values: Mapping[str, Array]) -> Array:
        """Evaluate the einsum with ``values[name]`` for each operand.

        Parameters
        ----------
        values
            An array for every name in :attr:`operands` (the local derivatives included).

        Returns
        -------
        Array
            The gradient the spec defines, computed index by index.
        """
        result: Array = np.einsum(self.equation, *(values[name] for name in self.operands))
        return result
