"""The index forms of the backward passes that are einsums (or sums of einsums), each written
once, as data.

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
rest. In index form each term is a product of numbers, so the order is free; in matrix form it
is not, and the shapes decide it.

**Which backward passes have a spec.** Those whose index form is one sum of products, or a
sum of a few such terms:

- the dense layer, both layouts (:mod:`~typedbackprop.nn.affine`,
  :mod:`~typedbackprop.nn.batch_first`), and the dense layer at every token
  (:mod:`~typedbackprop.nn.sequence`);
- every activation (:mod:`~typedbackprop.nn.activations`, :mod:`~typedbackprop.nn.gelu`,
  :mod:`~typedbackprop.nn.softmax`: softmax's local gradient is its Jacobian ``J``);
- dropout in training, and the embedding table (the ids enter as a one-hot, ``[ids_{sb} = v]``);
- attention's products, its softmax over keys and its projections
  (:mod:`~typedbackprop.nn.attention`);
- the convolution (the weights' gradient on the im2col ``columns``; the input's through 0/1
  selectors of the pixel each kernel entry of each window reads), average pooling and max
  pooling (the window's maximum enters as a 0/1 routing array) (:mod:`~typedbackprop.nn.conv`,
  :mod:`~typedbackprop.nn.pooling`);
- batch norm's ``γ`` and ``β``, its input in evaluation, and its input in training, over
  ``features batch`` and over the pixels of images: three terms, through ``x`` itself, the mean
  and the variance (:mod:`~typedbackprop.nn.batchnorm`);
- layer norm's input: the same three terms over ``features`` (:mod:`~typedbackprop.nn.layernorm`).

**Which have none, and why.** A reshape (:mod:`~typedbackprop.nn.reshape`) merges or splits axes,
which an einsum cannot; :class:`~typedbackprop.nn.sequence.KeepLast` and the learned positions'
table (:mod:`~typedbackprop.nn.embedding`) are a slice and a zero-padding, written as such. Layer
norm's ``γ`` and ``β`` sum over every position axis, however many, and an einsum cannot sum over its
``...``. The composite backward passes (a dense layer's, attention's, the transformer block's, the
network's, an activation's on images, and a batch norm's on images apart from its training-mode
input gradient, which reshape and call the functions above) have no index form of their own; a
loss's gradient starts the backward pass rather than carrying one through.
"""

import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import EllipsisType

import numpy as np

from typedbackprop.checking import Array

__all__ = ["Spec", "symbol", "indices_of"]

_INDEX = re.compile(r"\.\.\.|.")


def indices_of(term: str) -> tuple[str, ...]:
    """The indices of one einsum term, ``"...b"`` as ``("...", "b")``: one per axis or group."""
    return tuple(_INDEX.findall(term))


def _index(letter: str) -> str:
    """An index as the math writes it: a capital is its letter's second copy, ``B`` is ``b′``."""
    return f"{letter.lower()}′" if letter.isupper() else letter


def _subscript(indices: str) -> str:
    """``{fb}``; an einsum's ``...`` (any leading axes) is written ``…``, a capital primed."""
    return "{" + "".join(map(_index, indices.replace("...", "…"))) + "}"


def symbol(name: str, indices: str) -> str:
    """How an index form writes the operand ``name`` with ``indices``.

    ``grad_z`` is ``δ_{ob}`` (the backprop equations' name for ``∂L/∂z``, the upstream
    gradient of an affine layer's backward; a result is always written ``∂L/∂<v>``); any other
    ``grad_<v>`` is ``∂L/∂<v>_{...}``; a local derivative written as a function of ``z``, such
    as ``σ'(z)``, takes its indices inside, ``σ'(z_{fb})``; ``one_hot(ids)`` with indices
    ``vsb`` is ``[ids_{sb} = v]``, 1 where the id at ``(s, b)`` is ``v``; a number (no indices,
    such as ``1/√D``) is written in parentheses, ``(1/√D)``; anything else is
    ``<name>_{...}``.
    """
    if not indices:
        return f"({name})"
    if name == "grad_z":
        return f"δ_{_subscript(indices)}"
    if name.startswith("grad_"):
        return f"∂L/∂{name.removeprefix('grad_')}_{_subscript(indices)}"
    if name.endswith("(z)"):
        return f"{name.removesuffix('(z)')}(z_{_subscript(indices)})"
    if name.startswith("one_hot(") and name.endswith(")"):
        value = name.removeprefix("one_hot(").removesuffix(")")
        return f"[{value}_{_subscript(indices[1:])} = {_index(indices[0])}]"
    return f"{name}_{_subscript(indices)}"


@dataclass(frozen=True, slots=True)
class Spec:
    """One gradient of a backward function, in index form, as an einsum or a sum of einsums.

    Parameters
    ----------
    result
        The gradient the spec defines, by its name in the code (``"grad_W"``).
    equation
        :func:`numpy.einsum` subscripts, one term per operand and the result's after ``->``
        (``"ob,ib->oi"``). Each letter stands for the dimension it runs over in the operands'
        annotations: the letter of the table of index letters in the docs' conventions page,
        one dimension per letter (``o`` for ``out``, ``b`` for ``batch``, ``c`` for
        ``channels``, ``j`` for ``classes``). A capital is a second index over its letter's
        dimension in one product (a Jacobian has ``classes`` twice, batch norm sums over the
        batch against the batch) and is written primed, ``B`` as ``b′``. ``...`` stands for
        any number of leading axes (``"*features batch"``). A letter missing from the result
        is summed over. An empty term is a number. Products joined by `` + `` or `` - `` are
        the terms of a sum (``"fb,f - fB,f,->fb"``), sharing
        the result's indices; a product without one of them does not depend on it and is
        broadcast along it (it must keep ``...``, though).
    operands
        What is multiplied, upstream gradient first: names of the backward function's
        arguments or of what its cache holds (``"grad_z"``, ``"a_prev"``), or a local
        derivative that the backward function computes from them, written as a function of
        ``z`` (``"σ'(z)"``), as ``"J"`` for a Jacobian, as ``"one_hot(ids)"``, or by the name
        its docstring defines (``"R"``, ``"x_hat"``), or a number (``"1/√D"``); for a sum, the
        operands of each product in turn.

    Notes
    -----
    ``Spec("grad_W", "ob,ib->oi", ("grad_z", "a_prev")).index_form()`` is
    ``∂L/∂W_{oi} = Σ_b δ_{ob} a_prev_{ib}``; with more than one index summed, the sum is
    written ``Σ_{p,q,b}``. In a sum of products each product carries its own ``Σ``:
    ``∂L/∂x_{fb} = ∂L/∂y_{fb} gamma_{f} − Σ_b′ ∂L/∂y_{fb′} gamma_{f} (1/N)``.
    """

    result: str
    equation: str
    operands: tuple[str, ...]

    def __post_init__(self) -> None:
        inputs, arrow, output = self.equation.partition("->")
        terms = [term for _, product in _products(inputs) for term in product]
        if not arrow or len(terms) != len(self.operands):
            raise ValueError(
                f"{self.equation!r} needs one term per operand {self.operands} and a '->'"
            )
        if not set(indices_of(output.strip())) <= {i for term in terms for i in indices_of(term)}:
            raise ValueError(f"{self.equation!r}: every index of the result must be an input's")
        for _, product in _products(inputs):
            kept = {i for term in product for i in indices_of(term)}
            if "..." in output and "..." not in kept:
                raise ValueError(f"{self.equation!r}: every product must keep the result's '...'")

    @property
    def terms(self) -> tuple[str, ...]:
        """The indices of each operand, every product's in turn: ``("ob", "ib")``."""
        inputs = self.equation.partition("->")[0]
        return tuple(term for _, product in _products(inputs) for term in product)

    @property
    def output(self) -> str:
        """The indices of the result: ``"oi"``."""
        return self.equation.partition("->")[2].strip()

    @property
    def products(self) -> tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...]:
        """Each product of the sum: its sign (``"+"`` or ``"-"``), terms and operands."""
        found = []
        operands = iter(self.operands)
        for sign, product in _products(self.equation.partition("->")[0]):
            found.append((sign, product, tuple(next(operands) for _ in product)))
        return tuple(found)

    @property
    def summed(self) -> str:
        """The indices summed over, in order of appearance: ``"b"``."""
        summed = [index for _, terms, _ in self.products for index in _summed(terms, self.output)]
        return "".join(dict.fromkeys(summed))

    def index_form(self) -> str:
        """The equation as the docstring writes it: ``∂L/∂W_{oi} = Σ_b δ_{ob} a_prev_{ib}``."""
        gradient = f"∂L/∂{self.result.removeprefix('grad_')}_{_subscript(self.output)}"
        written = []
        for n, (sign, terms, operands) in enumerate(self.products):
            summed = _summed(terms, self.output)
            if len(summed) > 1:
                total = "Σ_{" + ",".join(map(_index, summed)) + "} "
            else:
                total = f"Σ_{_index(summed[0])} " if summed else ""
            factors = " ".join(
                symbol(name, indices) for name, indices in zip(operands, terms, strict=True)
            )
            joint = ("− " if sign == "-" else "") if n == 0 else (" − " if sign == "-" else " + ")
            written.append(f"{joint}{total}{factors}")
        return f"{gradient} = {''.join(written)}"

    def einsum_call(self) -> str:
        """The NumPy call that evaluates it: ``np.einsum("ob,ib->oi", grad_z, a_prev)``.

        For a sum, one call per product; a product that lacks an index of the result gets a
        new axis there (``[:, np.newaxis]``), so that it broadcasts along that index.
        """
        written = []
        for n, (sign, terms, operands) in enumerate(self.products):
            kept = _kept(terms, self.output)
            call = f'np.einsum("{",".join(terms)}->{kept}", {", ".join(operands)})'
            places = _placement(self.output, kept)
            if places is not None:
                call += "[" + ", ".join(_place_text(place) for place in places) + "]"
            joint = ("-" if sign == "-" else "") if n == 0 else (" - " if sign == "-" else " + ")
            written.append(f"{joint}{call}")
        return "".join(written)

    def evaluate(self, values: Mapping[str, Array]) -> Array:
        """Evaluate the einsum (each product's, summed) with ``values[name]`` for each operand.

        Parameters
        ----------
        values
            An array for every name in :attr:`operands` (the local derivatives included; a
            number as a 0-d array or a float).

        Returns
        -------
        Array
            The gradient the spec defines, computed index by index (in the cheapest order of
            pairwise products, which changes nothing but the rounding).
        """
        total: Array | None = None
        for sign, terms, operands in self.products:
            kept = _kept(terms, self.output)
            product: Array = np.einsum(
                f"{','.join(terms)}->{kept}", *(values[name] for name in operands), optimize=True
            )
            places = _placement(self.output, kept)
            if places is not None:
                product = product[places]
            if sign == "-":
                product = -product
            total = product if total is None else total + product
        assert total is not None  # __post_init__ refuses an equation without a term
        return total


_SIGN = re.compile(r"\s*([+-])\s*")

Place = slice | EllipsisType | None
"""One entry of an index that broadcasts a product: keep an axis, keep ``...``, or add one."""


def _place_text(place: Place) -> str:
    return "np.newaxis" if place is None else "..." if place is Ellipsis else ":"


def _products(inputs: str) -> list[tuple[str, tuple[str, ...]]]:
    """``"fb,f - fB,f,"`` as ``[("+", ("fb", "f")), ("-", ("fB", "f", ""))]``."""
    signed = inputs.strip()
    parts = _SIGN.split(signed if signed.startswith(("+", "-")) else f"+{signed}")
    products = (tuple(product.split(",")) for product in parts[2::2])
    return list(zip(parts[1::2], products, strict=True))


def _summed(terms: tuple[str, ...], output: str) -> list[str]:
    """The indices one product sums over, in order of appearance."""
    kept = set(indices_of(output))
    seen = dict.fromkeys(index for term in terms for index in indices_of(term))
    return [index for index in seen if index not in kept]


def _kept(terms: tuple[str, ...], output: str) -> str:
    """The result's indices that one product has, in the result's order."""
    present = {index for term in terms for index in indices_of(term)}
    return "".join(index for index in indices_of(output) if index in present)


def _placement(output: str, kept: str) -> tuple[Place, ...] | None:
    """Where a product with indices ``kept`` needs new axes to broadcast to ``output``:
    ``(slice(None), None)`` for ``"f"`` in ``"fb"``; ``None`` when it has them all."""
    if kept == output:
        return None
    have = set(indices_of(kept))
    return tuple(
        Ellipsis if index == "..." else slice(None) if index in have else None
        for index in indices_of(output)
    )
