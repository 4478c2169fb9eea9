"""Inputs from annotations: read a function's jaxtyping shapes, give every dimension a size.

``Float[Array, "out inp"]`` names the dimensions of an argument; one size per name, bound across
all arguments, is what the runtime check enforces. To test a layer, every name gets a size of
its own (``out=4, inp=3, batch=5``): then a transposed result or a sum over the wrong axis
cannot have the right shape by coincidence, and a size in a message names one dimension.
"""

import inspect
import re
import typing
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import jaxtyping
import numpy as np

from typedbackprop.checking import Array

__all__ = [
    "SIZES",
    "Axis",
    "ArraySpec",
    "array_specs",
    "dimension_names",
    "require_sizes",
    "assign_sizes",
    "shape_of",
    "describe",
    "name_axes",
    "shape_fault",
    "random_inputs",
]

SIZES: Final = (4, 3, 5, 6, 7, 2, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20)
"""The sizes dimensions get, in the order their names first appear: none is 1 (which would
broadcast), no two alike."""

_SYMBOLIC = re.compile(r"[^\w]")


@dataclass(frozen=True)
class Axis:
    """One axis of an annotation: a named dimension, a fixed size, or a size expression."""

    name: str
    """The dimension name (``"out"``), the size as text (``"3"``) or an expression
    (``"in+1"``)."""
    kind: str
    """``"named"``, ``"fixed"`` or ``"symbolic"``."""


@dataclass(frozen=True)
class ArraySpec:
    """A differentiable argument: its name, its annotation, and the axes the annotation names."""

    name: str
    annotation: Any
    axes: tuple[Axis, ...]
    dtypes: tuple[str, ...]
    """The dtypes the annotation allows (``"float32"``, ``"float64"``, ...)."""

    @property
    def text(self) -> str:
        """The annotation as written: ``Float[Array, "out inp"]``."""
        kind = getattr(self.annotation, "__name__", "Float").split("[")[0]
        dims = self.annotation.dim_str
        if dims and " " not in dims:  # one dimension is written with a leading space: " out"
            dims = f" {dims}"
        return f'{kind}[Array, "{dims}"]'


def _axes(dim_str: str) -> tuple[Axis, ...]:
    """The axes of a jaxtyping dimension string (``"*batch"`` counts as one axis ``batch``)."""
    axes = []
    anonymous = 0
    for token in dim_str.split():
        if token in ("...", "*_", "#*_", "*#_"):
            continue  # any number of axes: none are drawn
        name = token.lstrip("*#?")
        if name.startswith("_"):  # "_" is anonymous; "_name" names a dimension not checked
            name = name[1:] or f"_{anonymous}"
            anonymous += name.startswith("_")
        if name.isdigit():
            axes.append(Axis(name, "fixed"))
        elif _SYMBOLIC.search(name):
            axes.append(Axis(name, "symbolic"))
        else:
            axes.append(Axis(name, "named"))
    return tuple(axes)


def _is_float_array(annotation: object) -> bool:
    return (
        isinstance(annotation, type)
        and issubclass(annotation, jaxtyping.AbstractArray)
        and any(dtype.startswith(("float", "bfloat")) for dtype in annotation.dtypes)
    )


def array_specs(
    function: Callable[..., Any], annotations: Sequence[tuple[str, Any]] | None = None
) -> list[ArraySpec]:
    """The differentiable arguments of ``function``: its parameters annotated as float arrays.

    Parameters
    ----------
    function
        A function annotated with jaxtyping, such as ``affine_forward``.
    annotations
        ``(name, annotation)`` of each differentiable argument, in order, to use instead of
        ``function``'s own (for a function whose arguments are not annotated one by one).

    Returns
    -------
    list of ArraySpec
        One per float-array parameter, in order. Parameters with another annotation must have a
        default (a slope, a flag): they keep it.

    Raises
    ------
    TypeError
        If a parameter without a default is not a float array (labels, indices): close over it.
    """
    if annotations is None:
        hints = typing.get_type_hints(function, include_extras=True)
        annotations = []
        for parameter in inspect.signature(function).parameters.values():
            hint = hints.get(parameter.name)
            if _is_float_array(hint):
                annotations.append((parameter.name, hint))
            elif parameter.default is inspect.Parameter.empty and parameter.kind in (
                inspect.Parameter.POSITIONAL_ONLY,
                inspect.Parameter.POSITIONAL_OR_KEYWORD,
            ):
                raise TypeError(
                    f"{getattr(function, '__name__', 'forward')}'s parameter {parameter.name} "
                    f"({hint!r}) is not a float array and has no default: only float arrays are "
                    "built and differentiated; close over the others (functools.partial)"
                )
    specs = []
    for name, annotation in annotations:
        if not _is_float_array(annotation):
            raise TypeError(f"{name}: {annotation!r} is not a jaxtyping float array annotation")
        specs.append(ArraySpec(name, annotation, _axes(annotation.dim_str), annotation.dtypes))
    return specs


def dimension_names(specs: Sequence[ArraySpec]) -> list[str]:
    """Every dimension name, in the order of first appearance."""
    names: list[str] = []
    for spec in specs:
        for axis in spec.axes:
            if axis.kind == "named" and axis.name not in names:
                names.append(axis.name)
    return names


def require_sizes(given: Mapping[str, int]) -> None:
    """Raise ``ValueError`` for a given size that is not a whole number of at least 1.

    A name no annotation has is left alone (one mapping can serve several layers); the report
    lists every size used.
    """
    for name, size in given.items():
        if isinstance(size, bool) or not isinstance(size, int | np.integer) or size < 1:
            raise ValueError(f"sizes gives {name}={size!r}; a size is a whole number of at least 1")


def assign_sizes(
    specs: Sequence[ArraySpec], given: Mapping[str, int] | None = None
) -> dict[str, int]:
    """A distinct size for every dimension name: ``given`` ones first, then :data:`SIZES`.

    Raises ``ValueError`` for a given size below 1 (:func:`require_sizes`).
    """
    require_sizes(given or {})
    sizes = dict(given or {})
    taken = set(sizes.values()) | {
        int(axis.name) for spec in specs for axis in spec.axes if axis.kind == "fixed"
    }
    free: Iterator[int] = (size for size in SIZES if size not in taken)
    for name in dimension_names(specs):
        if name not in sizes:
            try:
                sizes[name] = next(free)
            except StopIteration:
                raise ValueError("too many dimension names for the sizes on offer") from None
    return sizes


def shape_of(spec: ArraySpec, sizes: Mapping[str, int]) -> tuple[int, ...]:
    """The shape of ``spec`` with ``sizes``; a size expression is evaluated with them."""
    shape = []
    for axis in spec.axes:
        if axis.kind == "fixed":
            shape.append(int(axis.name))
        elif axis.kind == "named":
            shape.append(sizes[axis.name])
        else:
            shape.append(int(eval(axis.name, {"__builtins__": {}}, dict(sizes))))  # noqa: S307
    return tuple(shape)


def describe(spec: ArraySpec, sizes: Mapping[str, int]) -> str:
    """``W: Float[Array, "out inp"] with out=4, inp=3`` (a name repeated, ``"n n"``, once)."""
    named = dict.fromkeys(axis.name for axis in spec.axes if axis.kind == "named")
    bound = ", ".join(f"{name}={sizes[name]}" for name in named)
    return f"{spec.name}: {spec.text}" + (f" with {bound}" if bound else "")


def name_axes(spec: ArraySpec, index: Sequence[int]) -> str:
    """An entry of ``spec`` with its dimension names: ``W[out=1, inp=2]``."""
    parts = [f"{axis.name}={i}" for axis, i in zip(spec.axes, index, strict=False)]
    return f"{spec.name}[{', '.join(parts)}]"


def shape_fault(spec: ArraySpec, sizes: Mapping[str, int], shape: tuple[int, ...]) -> str:
    """What is wrong with a gradient of ``shape`` for ``spec``, dimension by dimension.

    Because every dimension has a size of its own, each axis's size names the dimension it
    came from: a gradient ``(3, 4)`` for ``W: "out inp"`` with ``out=4, inp=3`` is transposed.
    """
    expected = shape_of(spec, sizes)
    by_size = {size: name for name, size in sizes.items()}

    def dimension(size: int) -> str:
        return by_size.get(size, str(size))

    got = "(" + ", ".join(f"{dimension(size)}={size}" for size in shape) + ")"
    head = f"gradient for {spec.name} has shape {shape} {got}, but {describe(spec, sizes)}"
    if sorted(shape) == sorted(expected) and shape != expected:
        return f"{head}: its axes are permuted (a transpose missing or extra)"
    extra = [dimension(size) for size in shape if size not in expected]
    missing = [
        axis.name for axis in spec.axes if axis.kind == "named" and sizes[axis.name] not in shape
    ]
    if extra and not missing:
        return f"{head}: it keeps {', '.join(extra)}, which a sum over that axis would remove"
    if missing:
        return f"{head}: dimension {', '.join(missing)} is missing"
    wrong = [
        f"axis {number} is {size} where {axis.name}={want}"
        for number, (axis, size, want) in enumerate(zip(spec.axes, shape, expected, strict=False))
        if size != want
    ]
    return f"{head}: " + "; ".join(wrong)


def random_inputs(
    specs: Sequence[ArraySpec], sizes: Mapping[str, int], rng: np.random.Generator
) -> list[Array]:
    """float64 arrays of ``specs``' shapes, entries of magnitude 0.5 to 1.5 and random sign.

    Bounded away from 0, where ReLU-like kinks and divisions sit, and from large values, where
    saturating functions have derivatives too small to check.
    """
    arrays: list[Array] = []
    for spec in specs:
        shape = shape_of(spec, sizes)
        magnitude = rng.uniform(0.5, 1.5, size=shape)
        arrays.append(np.where(rng.random(shape) < 0.5, -magnitude, magnitude))
    return arrays
