"""Failures told in dimension names: which dimension disagrees, who bound it, what failed to meet.

:func:`typedbackprop.checking.checked` calls on this module only when a call has already failed,
so nothing here is on the path of a call that passes. Two kinds of failure get words:

- a refused argument or result (:func:`disagreement`): the first dimension whose size differs
  from the size an earlier argument bound, as one line such as
  ``a_prev: batch is 4 here, but grad_z bound batch=5``;
- an exception that NumPy raises inside a checked body (:func:`numpy_note`): every array argument
  with its named dimensions (``grad_z: (out=2, batch=5)``), and, when NumPy's message gives the
  sizes, the dimensions that failed to meet.

Both walk the values in the order the check visits them, remembering which value bound each
name. Whether an array fits is jaxtyping's answer (asked through
:mod:`~typedbackprop.checking.jaxtyping_adapter`, in a scope holding the sizes bound so far);
only the wording of a refusal reads the annotation here, axis by axis (named, fixed,
broadcastable ``#name``, variadic ``*name`` and symbolic dimensions such as ``n-1`` or
``{size}``).
"""

import collections
import collections.abc as abc
import re
import types
import typing
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from beartype.door import is_bearable
from jaxtyping import AbstractArray

from typedbackprop.checking import jaxtyping_adapter

__all__ = [
    "MAPPING_ORIGINS",
    "NOTE_MARK",
    "SEQUENCE_ORIGINS",
    "Step",
    "disagreement",
    "is_array_hint",
    "mapping_hints",
    "numpy_note",
]

Step = tuple[str, object, object]
"""``(label, value, hint)``: a value the check visits, in order (``"grad_z"``, ``"result[0]"``)."""

SEQUENCE_ORIGINS: frozenset[object] = frozenset(
    [list, set, frozenset, collections.deque, abc.Sequence, abc.MutableSequence, abc.Collection]
    + [abc.Set, abc.MutableSet, abc.KeysView, abc.ValuesView]
    + [abc.Iterable, abc.Reversible, abc.Container]
)
"""The containers, by ``typing.get_origin``, of which beartype checks one item (or none): every
one-argument container it knows (its sequences, "reiterables" and "quasi-iterables")."""

MAPPING_ORIGINS: frozenset[object] = frozenset(
    [dict, abc.Mapping, abc.MutableMapping, collections.OrderedDict, collections.defaultdict]
    + [collections.ChainMap, collections.Counter]
)
"""The mappings, by ``typing.get_origin``, of which beartype checks one key and value. A
``Counter[K]`` names its keys only; beartype checks its values against ``int``."""


def mapping_hints(origin: object, args: tuple[object, ...]) -> tuple[object, object]:
    """The key and value hints of a mapping hint, as beartype reads them."""
    if len(args) == 2:
        return args[0], args[1]
    return args[0], int if origin is collections.Counter else Any


_UNIONS: tuple[object, ...] = (typing.Union, types.UnionType)

# What a disagreement is about, best first: a union reports its member that came closest.
_DIMENSION, _RANK, _DTYPE, _KIND = 0, 1, 2, 3

Finding = tuple[int, str]


def is_array_hint(hint: object) -> bool:
    """Whether ``hint`` is a jaxtyping array annotation such as ``Float[Array, "out inp"]``."""
    return isinstance(hint, type) and issubclass(hint, AbstractArray)


class _Bindings:
    """The sizes bound so far, each with the label of the value that bound it."""

    def __init__(self, arguments: Mapping[str, object]) -> None:
        self.arguments = dict(arguments)
        self.sizes: dict[str, tuple[int, str]] = {}
        self.shapes: dict[str, tuple[bool, tuple[int, ...], str]] = {}

    def copy(self) -> "_Bindings":
        other = _Bindings(self.arguments)
        other.sizes, other.shapes = dict(self.sizes), dict(self.shapes)
        return other

    def adopt(self, other: "_Bindings") -> None:
        self.sizes, self.shapes = other.sizes, other.shapes


def disagreement(steps: Iterable[Step], arguments: Mapping[str, object]) -> str | None:
    """The first dimension that disagrees, in one line, or ``None`` if no dimension does.

    Parameters
    ----------
    steps
        The values in the order the failed check visited them, with their labels and hints.
    arguments
        The call's arguments by name (defaults included): ``{size}`` dimensions read them.

    Returns
    -------
    str or None
        ``"a_prev: batch is 4 here, but grad_z bound batch=5"``, or a line about a dtype, a
        number of dimensions or a kind of value when that is what disagrees.
    """
    bindings = _Bindings(arguments)
    for label, value, hint in steps:
        found = _visit(label, value, hint, bindings)
        if found is not None:
            return found[1]
    return None


def _visit(label: str, value: object, hint: object, bindings: _Bindings) -> Finding | None:
    if is_array_hint(hint):
        return _array(label, value, typing.cast("type[AbstractArray]", hint), bindings)
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in _UNIONS:
        return _union(label, value, args, bindings)
    if origin is typing.Annotated:
        return _visit(label, value, args[0], bindings)
    if origin is tuple:
        return _tuple(label, value, args, bindings)
    if args and origin in MAPPING_ORIGINS and isinstance(value, typing.cast(type, origin)):
        key_hint, value_hint = mapping_hints(origin, args)
        for key, item in typing.cast("Mapping[object, object]", value).items():
            found = _visit(f"a key of {label}", key, key_hint, bindings) or _visit(
                f"{label}[{key!r}]", item, value_hint, bindings
            )
            if found:
                return found
        return None
    if args and origin in SEQUENCE_ORIGINS and isinstance(value, typing.cast(type, origin)):
        if isinstance(value, abc.Iterator) or not isinstance(value, abc.Collection):
            return None  # iterating might consume it
        return _items(label, value, args[0], bindings)
    try:
        fits = is_bearable(value, typing.cast(Any, hint))  # no dimensions: only the kind
    except Exception:
        fits = True
    if fits:
        return None
    if origin is typing.Literal:
        here = repr(value) if isinstance(value, str | int | bool | None) else _a(value)
        return _KIND, f"{label}: {here} here, not one of {', '.join(map(repr, args))}"
    return _KIND, f"{label}: {_a(value)} here, not {getattr(hint, '__name__', hint)}"


def _a(value: object) -> str:
    """``a str``, ``an int``: the kind of ``value``, as a message names it."""
    name = type(value).__name__
    return f"{'an' if name[:1] in 'aeiou' else 'a'} {name}"


def _items(
    label: str, value: Iterable[object], hint: object, bindings: _Bindings
) -> Finding | None:
    for index, item in enumerate(value):
        found = _visit(f"{label}[{index}]", item, hint, bindings)
        if found:
            return found
    return None


def _tuple(
    label: str, value: object, args: tuple[object, ...], bindings: _Bindings
) -> Finding | None:
    if not isinstance(value, tuple):
        return _KIND, f"{label}: a {type(value).__name__} here, not a tuple"
    if len(args) == 2 and args[1] is Ellipsis:
        return _items(label, value, args[0], bindings)
    if args == ((),):
        args = ()
    if len(value) != len(args):
        return _KIND, f"{label}: a tuple of {len(value)} here, the annotation has {len(args)}"
    return _items_each(label, value, args, bindings)


def _items_each(
    label: str, value: tuple[object, ...], hints: tuple[object, ...], bindings: _Bindings
) -> Finding | None:
    for index, (item, hint) in enumerate(zip(value, hints, strict=True)):
        found = _visit(f"{label}[{index}]", item, hint, bindings)
        if found:
            return found
    return None


def _union(
    label: str, value: object, members: tuple[object, ...], bindings: _Bindings
) -> Finding | None:
    """The first member the value fits binds; if none fits, the closest one's finding."""
    best: Finding | None = None
    for member in members:
        trial = bindings.copy()
        found = _visit(label, value, member, trial)
        if found is None:
            bindings.adopt(trial)
            return None
        if best is None or found[0] < best[0]:
            best = found
    return best


# --- one array against its annotation ----------------------------------------------------------


def _dtype_name(value: Any) -> str:
    """The dtype's name as jaxtyping compares it (``float64``)."""
    dtype = value.dtype
    if hasattr(dtype, "type") and hasattr(dtype.type, "__name__"):
        return str(dtype.type.__name__)
    return str(dtype).rsplit(".", 1)[-1]


def _dtype_fits(value: Any, hint: type[AbstractArray]) -> bool:
    """Whether jaxtyping takes ``value``'s dtype for ``hint``'s (asked with any shape)."""
    try:
        return isinstance(value, hint.dtype[hint.array_type, "..."])
    except Exception:  # a hint jaxtyping cannot rebuild: let the shape decide
        return True


def _jaxtyping_fits(label: str, value: object, hint: type, bindings: _Bindings) -> bool | None:
    """Ask jaxtyping whether ``value`` fits ``hint`` given the sizes bound so far.

    When it does, the sizes it bound (jaxtyping's own rules: broadcasting, ``*name``,
    ``{size}``) join ``bindings`` as bound by ``label``. ``None`` if jaxtyping cannot answer.
    """
    sizes = {name: size for name, (size, _) in bindings.sizes.items()}
    shapes = {name: (broadcast, shape) for name, (broadcast, shape, _) in bindings.shapes.items()}
    try:
        fits, sizes_after, shapes_after = jaxtyping_adapter.fits(
            value, hint, sizes, shapes, bindings.arguments
        )
    except Exception:  # an annotation jaxtyping refuses: its own error says why
        return None
    if fits:
        for name, size in sizes_after.items():
            if name not in bindings.sizes and not name.startswith("~"):
                bindings.sizes[name] = (size, label)
        for name, (broadcast, shape) in shapes_after.items():
            source = bindings.shapes[name][2] if name in bindings.shapes else label
            bindings.shapes[name] = (broadcast, shape, source)
    return fits


def _array(
    label: str, value: object, hint: type[AbstractArray], bindings: _Bindings
) -> Finding | None:
    kind = hint.array_type
    if kind is Any:
        if not (hasattr(value, "shape") and hasattr(value, "dtype")):
            return _KIND, f"{label}: a {type(value).__name__} here, not an array"
    elif not isinstance(value, kind):
        return (
            _KIND,
            f"{label}: a {type(value).__name__} here, not {getattr(kind, '__name__', kind)}",
        )
    array: Any = value
    if not _dtype_fits(array, hint):
        return (
            _DTYPE,
            f"{label}: {_dtype_name(array)} here, the annotation asks for {hint.dtype.__name__}",
        )
    if _jaxtyping_fits(label, value, hint, bindings):
        return None  # jaxtyping's verdict; what follows only words a refusal
    shape = tuple(int(size) for size in array.shape)
    dims, variadic = hint.dims, hint.index_variadic
    if variadic is None:
        if len(shape) != len(dims):
            return _RANK, _rank_line(label, shape, hint, "")
        return _dims(label, dims, shape, 0, bindings)
    if len(shape) < len(dims) - 1:
        return _RANK, _rank_line(label, shape, hint, "at least ")
    after = len(dims) - variadic - 1
    end = len(shape) - after
    found = _dims(label, dims[:variadic], shape[:variadic], 0, bindings) or _dims(
        label, dims[variadic + 1 :], shape[end:], end, bindings
    )
    return found or _variadic(label, dims[variadic], shape[variadic:end], bindings)


def _rank_line(label: str, shape: tuple[int, ...], hint: type[AbstractArray], least: str) -> str:
    wanted = len(hint.dims) - (1 if least else 0)
    count = "dimension" if len(shape) == 1 else "dimensions"
    return (
        f"{label}: {len(shape)} {count} here, shape {shape}; the annotation has {least}{wanted}: "
        f"({hint.dim_str})"
    )


def _dims(
    label: str, dims: tuple[Any, ...], shape: tuple[int, ...], first: int, bindings: _Bindings
) -> Finding | None:
    for axis, (dim, size) in enumerate(zip(dims, shape, strict=True), start=first):
        line = _dim(label, dim, size, axis, bindings)
        if line is not None:
            return _DIMENSION, line
    return None


def _dim(label: str, dim: Any, size: int, axis: int, bindings: _Bindings) -> str | None:
    """Check one axis as jaxtyping does; the line saying how it disagrees, if it does."""
    if getattr(dim, "broadcastable", False) and size == 1:
        return None
    if hasattr(dim, "size"):  # a fixed size
        if dim.size != size:
            return f"{label}: axis {axis} is {size} here, but the annotation fixes it at {dim.size}"
        return None
    if hasattr(dim, "elem"):  # a symbolic expression: n-1, 2*n, {size}
        return _symbolic(label, dim.elem, size, axis, bindings)
    if not hasattr(dim, "name"):  # anonymous: _
        return None
    bound = bindings.sizes.get(dim.name)
    if bound is None:
        bindings.sizes[dim.name] = (size, label)
        return None
    if bound[0] != size:
        alike = _alike(dim.name, size, bindings)
        return (
            f"{label}: {dim.name} is {size} here{alike}, but {bound[1]} bound {dim.name}={bound[0]}"
        )
    return None


def _alike(name: str, size: int, bindings: _Bindings) -> str:
    """``", the size of batch"``: the other dimensions bound to ``size`` (a transposition shows)."""
    others = [
        other for other, (bound, _) in bindings.sizes.items() if bound == size and other != name
    ]
    if not others:
        return ""
    listed = others[0] if len(others) == 1 else f"{', '.join(others[:-1])} and {others[-1]}"
    return f", the size of {listed}"


def _symbolic(label: str, expression: str, size: int, axis: int, bindings: _Bindings) -> str | None:
    sizes = {name: bound for name, (bound, _) in bindings.sizes.items()}
    try:
        formatted = eval(f"f'{expression}'", dict(bindings.arguments))  # as jaxtyping does
        expected = eval(formatted, sizes)
    except Exception:  # an expression jaxtyping itself rejects: its own error says why
        return None
    if expected == size:
        return None
    sources = [
        f"{bindings.sizes[name][1]} bound {name}={bindings.sizes[name][0]}"
        for name in dict.fromkeys(re.findall(r"[A-Za-z_]\w*", formatted))
        if name in bindings.sizes
    ]
    sources += [
        f"argument {name}={bindings.arguments[name]!r}"
        for name in dict.fromkeys(re.findall(r"\{\s*([A-Za-z_]\w*)", expression))
        if name in bindings.arguments
    ]
    why = f" ({', '.join(sources)})" if sources else ""
    return f"{label}: axis {axis} is {size} here, but {expression} is {expected}{why}"


def _variadic(label: str, dim: Any, shape: tuple[int, ...], bindings: _Bindings) -> Finding | None:
    """A ``*name`` (``*#name``) dimension: jaxtyping's rules for equal or broadcast shapes."""
    if not hasattr(dim, "name"):  # anonymous: ...
        return None
    name, broadcastable = dim.name, dim.broadcastable
    previous = bindings.shapes.get(name)
    if previous is None:
        bindings.shapes[name] = (broadcastable, shape, label)
        return None
    was_broadcastable, bound, source = previous
    fits = shape == bound
    joined = bound
    if was_broadcastable or broadcastable:
        try:
            joined = _broadcast(shape, bound)
        except ValueError:
            fits = False
        else:
            if was_broadcastable:
                fits = broadcastable or joined == shape
            else:
                fits = joined == bound
    if not fits:
        return _DIMENSION, f"{label}: *{name} is {shape} here, but {source} bound *{name}={bound}"
    if was_broadcastable:
        bindings.shapes[name] = (broadcastable, joined, source)
    return None


def _broadcast(first: tuple[int, ...], second: tuple[int, ...]) -> tuple[int, ...]:
    width = max(len(first), len(second))
    padded = [(1,) * (width - len(shape)) + shape for shape in (first, second)]
    joined = []
    for left, right in zip(*padded, strict=True):
        if left != right and 1 not in (left, right):
            raise ValueError(f"{first} and {second} do not broadcast")
        joined.append(max(left, right) if 1 in (left, right) else left)
    return tuple(joined)


# --- a note for an exception NumPy raised inside a checked body ---------------------------------

NOTE_MARK = "was called with these arrays:"
"""Every note :func:`numpy_note` writes contains this; an outer checked call adds no second one."""

_SHAPE_ERROR = re.compile(
    r"matmul|broadcast|not aligned|core dimension|cannot reshape|must match exactly|"
    r"size \d+ is different from \d+|shape mismatch|operands? could not"
)


def numpy_note(name: str, steps: Iterable[Step], error: BaseException) -> str | None:
    """A note naming the dimensions of every array argument, for a shape error NumPy raised.

    Parameters
    ----------
    name
        The checked function's name.
    steps
        Its arguments, with their labels and hints, in order.
    error
        The exception raised in its body.

    Returns
    -------
    str or None
        ``None`` unless ``error`` looks like a NumPy shape error (matmul, broadcasting, dot,
        reshape, concatenate) and some argument is an annotated array.
    """
    message = str(error)
    if not _SHAPE_ERROR.search(message):
        return None
    described = list(_describe(steps))
    if not described:
        return None
    sizes: dict[int, list[str]] = {}
    for _, dims in described:
        for dim_name, size in dims:
            if dim_name is not None and dim_name not in sizes.setdefault(size, []):
                sizes[size].append(dim_name)
    lines = [f"{name} {NOTE_MARK}"]
    for label, dims in described:
        lines.append(f"  {label}: ({', '.join(_sized(dim_name, size) for dim_name, size in dims)})")
    met = _what_failed_to_meet(message, sizes)
    if met:
        lines.append(met)
    return "\n".join(lines)


def _sized(name: str | None, size: int) -> str:
    return str(size) if name is None else f"{name}={size}"


def _describe(steps: Iterable[Step]) -> Iterator[tuple[str, list[tuple[str | None, int]]]]:
    """Each array argument's label and its ``(dimension name or None, size)`` per axis."""
    for label, value, hint in steps:
        for array_label, array, array_hint in _arrays_in(label, value, hint):
            yield array_label, _named_axes(array, array_hint)


def _arrays_in(label: str, value: object, hint: object) -> Iterator[Step]:
    if is_array_hint(hint):
        yield label, value, hint
        return
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in _UNIONS:
        for member in args:
            if is_array_hint(member) and isinstance(member, type) and isinstance(value, member):
                yield label, value, member
                return
        return
    if origin is tuple and isinstance(value, tuple):
        if len(args) == 2 and args[1] is Ellipsis:
            args = (args[0],) * len(value)
        if len(args) == len(value):
            for index, (item, item_hint) in enumerate(zip(value, args, strict=True)):
                yield from _arrays_in(f"{label}[{index}]", item, item_hint)
        return
    if origin in (list, abc.Sequence) and isinstance(value, list | tuple) and args:
        for index, item in enumerate(value):
            yield from _arrays_in(f"{label}[{index}]", item, args[0])
        return


def _named_axes(array: Any, hint: Any) -> list[tuple[str | None, int]]:
    shape = tuple(int(size) for size in array.shape)
    dims = list(hint.dims)
    variadic = hint.index_variadic
    if variadic is not None:  # the variadic dimension covers the axes the others leave
        count = len(shape) - len(dims) + 1
        dims[variadic : variadic + 1] = [dims[variadic]] * max(count, 0)
    if len(dims) != len(shape):
        return [(None, size) for size in shape]
    named: list[tuple[str | None, int]] = []
    for dim, size in zip(dims, shape, strict=True):
        name = getattr(dim, "name", None) or getattr(dim, "elem", None)
        if name is not None and variadic is not None and dim is hint.dims[variadic]:
            name = f"*{name}"
        named.append((name, size))
    return named


def _what_failed_to_meet(message: str, sizes: Mapping[int, list[str]]) -> str | None:
    """The dimensions behind the sizes NumPy's message names, where they can be told."""

    def called(size: int) -> str:
        names = sizes.get(size, [])
        if len(names) == 1:
            return f"{names[0]}={size}"
        if names:
            return f"{size} ({' or '.join(names)})"
        return str(size)

    matmul = re.search(r"size (\d+) is different from (\d+)", message)
    if matmul:
        right, left = int(matmul[1]), int(matmul[2])
        return (
            f"the product met {called(left)} (the left factor's last axis) with {called(right)} "
            "(the right factor's first axis): a matrix product sums over one dimension both share"
        )
    dot = re.search(r"(\d+) \(dim \d+\) != (\d+) \(dim \d+\)", message)
    if dot:
        left, right = int(dot[1]), int(dot[2])
        return (
            f"the product met {called(left)} (the left factor's last axis) with {called(right)} "
            "(the right factor's first axis): a matrix product sums over one dimension both share"
        )
    if "broadcast" in message:
        shapes = [
            tuple(int(size) for size in re.findall(r"\d+", found))
            for found in re.findall(r"\(([\d,\s]*)\)", message)
        ]
        if len(shapes) >= 2:
            return _broadcast_line(shapes[0], shapes[1], called)
    return None


def _broadcast_line(
    first: tuple[int, ...], second: tuple[int, ...], called: typing.Callable[[int], str]
) -> str | None:
    for left, right in zip(reversed(first), reversed(second), strict=False):
        if left != right and 1 not in (left, right):
            shown = " and ".join(
                f"({', '.join(called(size) for size in shape)})" for shape in (first, second)
            )
            return (
                f"broadcasting lines up trailing axes: {shown} put {called(left)} against "
                f"{called(right)}"
            )
    return None
