"""Array aliases and the ``checked`` decorator that enforces them on every call.

Every forward and backward function in typedbackprop is annotated with named dimensions,
``Float[Array, "out batch"]``, and wrapped in :func:`checked`. With checks on (the default) a call
whose shapes disagree with the annotation raises :class:`jaxtyping.TypeCheckError`. Its message
opens with the dimension that disagrees, its size there and the argument that bound it
(``a_prev: batch is 4 here, but grad_z bound batch=5``), then gives jaxtyping's report, which
lists the size bound to every dimension name (``out=2``, ``batch=5``). Set the environment
variable ``TYPEDBACKPROP_CHECKS=0`` before importing typedbackprop to turn the checks off:
``checked`` then returns each function unchanged and costs nothing.

The check is the stock ``jaxtyped(typechecker=beartype)`` one, made stricter in one respect:
beartype checks one sampled item of a container (a list, a dict, a set, a deque, anything given
to ``Iterable[...]``), ``checked`` checks every item. What makes it cheap enough to leave on is
that its verdict depends only on the *signature* of a call: the type, shape and dtype of each
array argument, the type of each number (its value, when an annotation reads it: ``{size}``),
the value of each string, the signatures of a list's or a tuple's items. A call whose signature
has already passed is recognised by one dictionary look-up; its body runs in a dimension scope
holding the sizes that signature bound (as inside the stock check), and the call passes if its
result has the signature that call returned and its arguments still have theirs after the body.
Every new signature, every difference and every failing call goes through the full check, so a
call is refused whenever the stock check would refuse it, first call or thousandth.

An exception that NumPy raises inside a checked function (``matmul: ... size 4 is different
from 5``) keeps its type and gains a note naming every array argument's dimensions and, where the
sizes tell, the dimensions that failed to meet.

Records (frozen dataclasses whose fields carry named dimensions, such as a layer's parameters or
the cache its forward pass saves) are checked field by field in the *same* dimension scope as the
call that takes or returns them. That is the layer contract's guarantee: a backward pass
that receives ``cache: DenseCache`` binds ``in`` and ``batch`` from ``cache.a_prev``, so a
``grad_a_prev`` not shaped like the ``a_prev`` forward saw is refused, although backward's own
arguments could not tell.
"""

import collections.abc as abc
import contextlib
import dataclasses
import functools
import inspect
import math
import operator
import os
import re
import threading
import types
import typing
from abc import ABCMeta
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, Final, ParamSpec, TypeVar

import jaxtyping._storage as _jaxtyping_storage  # the memo stack the stock check uses
import numpy as np
from beartype import beartype
from beartype.door import die_if_unbearable, is_bearable
from beartype.roar import BeartypeCallHintViolation
from jaxtyping import Float, TypeCheckError, jaxtyped
from numpy.typing import NDArray

from typedbackprop._diagnosis import (
    MAPPING_ORIGINS,
    NOTE_MARK,
    SEQUENCE_ORIGINS,
    Step,
    disagreement,
    is_array_hint,
    mapping_hints,
    numpy_note,
)

__all__ = ["Array", "IntArray", "CHECKS_ENABLED", "checked", "record_fields", "require_finite"]

Array = NDArray[np.floating[Any]]
"""A floating-point NumPy array; dimensions are named at each use: ``Float[Array, "out in"]``."""

IntArray = NDArray[np.integer[Any]]
"""An integer NumPy array, for class labels: ``Int[IntArray, " batch"]``."""


def _checks_enabled_from_environment() -> bool:
    value = os.environ.get("TYPEDBACKPROP_CHECKS", "1").strip().lower()
    return value not in {"0", "false", "off", "no"}


CHECKS_ENABLED: Final[bool] = _checks_enabled_from_environment()
"""Whether :func:`checked` checks; read once, from ``TYPEDBACKPROP_CHECKS``, at import."""

_MAX_SIGNATURES_PER_FUNCTION: Final = 1024

P = ParamSpec("P")
R = TypeVar("R")

Diagnose = Callable[[Mapping[str, object]], str | None]
"""Given a failed call's arguments by name, advice to open the error message with, or ``None``."""

_ndarray = np.ndarray


# --- signatures: what a verdict can depend on --------------------------------------------------

# How the signature of a value of each type is formed: by value, by type, from its items (lists
# and tuples), from its fields (dataclasses: a tuple of field names), from its shape and dtype
# (array-likes), or not at all (``None``: dicts and sets, whose contents may matter and are not
# cheap to summarise). Learned per type.
_BY_VALUE, _BY_TYPE, _BY_ITEMS = "value", "type", "items"
_ARRAY_SUBCLASS, _ARRAY_LIKE = "array subclass", "array-like"
_how: dict[type, str | tuple[str, ...] | None] = {
    str: _BY_VALUE,
    bool: _BY_VALUE,
    type(None): _BY_VALUE,
    int: _BY_TYPE,
    float: _BY_TYPE,
    list: _BY_ITEMS,
    tuple: _BY_ITEMS,
}


def _learn_how(kind: type, value: object) -> str | tuple[str, ...] | None:
    how: str | tuple[str, ...] | None
    if issubclass(kind, _ndarray):
        how = _ARRAY_SUBCLASS
    elif issubclass(kind, list | tuple):
        how = _BY_ITEMS
    elif issubclass(kind, str | type):  # a ``Literal`` reads a string; ``type[Dense]`` a class
        how = _BY_VALUE
    elif hasattr(value, "shape") and hasattr(value, "dtype"):  # a tensor of another library
        how = _ARRAY_LIKE
    elif issubclass(kind, bytes | bytearray):  # items are ints, whatever the value
        how = _BY_TYPE
    elif issubclass(kind, abc.Iterable):
        # Any other container (a dict, a set, a deque, a ``UserList``, a mapping proxy, a view,
        # a generator): a hint may look at its items, which the type does not tell.
        how = None
    else:
        how = tuple(getattr(kind, "__dataclass_fields__", ())) or _BY_TYPE
    _how[kind] = how
    return how


def _signature(value: object, deep: bool = False) -> object:
    """What a check of ``value`` can depend on, or ``None`` if that is not known.

    Arrays give their shape and dtype (and their type, for a subclass); strings, booleans,
    ``None`` and classes their value (a ``Literal`` hint looks at it); other numbers their type;
    lists and tuples (named ones too) their type and their items' signatures. Other containers
    give ``None``: a hint may look at their items (beartype samples one), which their type does
    not tell; so does an array-like of Python objects. A hint naming a dataclass checks its type
    alone, so that is its signature, unless ``deep``: then the signatures of its fields count
    too, and the signature of a ``list[Dense]`` holds every ``W`` and ``b`` shape.
    """
    kind = type(value)
    if kind is _ndarray:
        array = typing.cast("NDArray[Any]", value)
        return (array.shape, array.dtype)
    how = _how[kind] if kind in _how else _learn_how(kind, value)
    if how is _BY_VALUE:
        return (kind, value)
    if how is _BY_TYPE:
        return kind
    if how is _BY_ITEMS:
        items = _signatures(typing.cast("list[object]", value), deep)
        return None if items is None else (kind, items)
    if how is _ARRAY_SUBCLASS:
        array = typing.cast("NDArray[Any]", value)
        return None if array.dtype.hasobject else (kind, array.shape, array.dtype)
    if how is _ARRAY_LIKE:
        shape, dtype = getattr(value, "shape", None), getattr(value, "dtype", None)
        if getattr(dtype, "hasobject", False) or str(dtype) in ("object", "O"):
            return None  # its items are any objects: ``Iterable[...]`` may look at them
        return (kind, None if shape is None else tuple(shape), str(dtype))
    if how is None:
        return None
    if not deep:
        return kind
    items = _signatures([getattr(value, name) for name in how], deep)
    return None if items is None else (kind, items)


def _signatures(values: Iterable[object], deep: bool) -> tuple[object, ...] | None:
    """The signature of each value (arrays inline, the common case), or ``None`` if any is."""
    signatures = tuple(
        [
            (value.shape, value.dtype) if type(value) is _ndarray else _signature(value, deep)
            for value in values
        ]
    )
    return None if None in signatures else signatures


def _call_signature(args: tuple[object, ...], kwargs: dict[str, object], deep: bool) -> object:
    positional = _signatures(args, deep)
    if not kwargs or positional is None:
        return positional
    keywords = _signatures(kwargs.values(), deep)
    return None if keywords is None else (positional, tuple(kwargs), keywords)


_SCALARS: Final = (int, float, complex, bool, str, type(None))


def _values_read(plan: "_Plan", args: tuple[object, ...], kwargs: dict[str, object]) -> object:
    """The values of the arguments a ``{name}`` dimension reads, or ``None`` if not scalars."""
    values = []
    for name, position, default in plan.read_by_value:
        if position is not None and position < len(args):
            value = args[position]
        else:
            value = kwargs.get(name, default)
        if type(value) not in _SCALARS:
            return None
        values.append((type(value), value))
    return tuple(values)


class _Trust(threading.local):
    """Per thread: how many calls up the stack vouch for the checks of every call below them."""

    depth = 0


_trust = _Trust()


# --- the plan: what one function's hints ask of every check, worked out once -------------------

_NOTHING: Final = object()
_NO_HINT: Final = object()


_Memo = tuple[dict[str, Any], dict[str, Any], dict[str, Any]]
"""What jaxtyping's dimension scope holds: the sizes bound to single dimensions, the shapes
bound to variadic ones, the structures bound to PyTrees (the call's arguments aside)."""

_memo_storage: Any = getattr(_jaxtyping_storage, "_shape_storage", None)
_get_shape_memo: Any = getattr(_jaxtyping_storage, "get_shape_memo", None)


def _memo_now() -> _Memo:
    """A copy of the sizes bound in the dimension scope now open."""
    single, variadic, pytree, _ = _get_shape_memo()
    return dict(single), dict(variadic), dict(pytree)


def _memo_stack() -> list[Any]:
    """jaxtyping's stack of dimension scopes, for this thread."""
    try:
        stack: list[Any] = _memo_storage.memo_stack
    except AttributeError:
        stack = _memo_storage.memo_stack = []
    return stack


class _Scope(tuple[Any, ...]):
    """The dimension scope a remembered call opens for its body: ``(plan, sizes, args, kwargs)``.

    Inside the stock check the body runs in the scope its arguments bound, so an ``isinstance``
    of a jaxtyping hint there sees their sizes. This scope holds the sizes the first call with
    the same signature bound, and becomes a real one (copies of them, and the call's arguments
    by name, which ``{name}`` dimensions read) only when jaxtyping unpacks it: a body that looks
    at no scope pays for none, and leaves this object on the stack, unchanged.
    """

    __slots__ = ()

    def __iter__(self) -> Iterator[Any]:
        plan, (single, variadic, pytree), args, kwargs = self[0], self[1], self[2], self[3]
        arguments = {} if plan is None else _arguments(plan, args, kwargs)
        memo = (single.copy(), variadic.copy(), pytree.copy(), arguments)
        stack = _memo_stack()
        if stack and stack[-1] is self:
            stack[-1] = memo
        return iter(memo)


def _scopes_reopen() -> bool:
    """Whether jaxtyping reads its scopes as ``_Scope`` expects: else no verdict is remembered."""
    if _memo_storage is None or _get_shape_memo is None:
        return False
    probe = _Scope((None, ({"n": 1}, {}, {}), (), {}))
    stack = _memo_stack()
    stack.append(probe)
    try:
        single = _get_shape_memo()[0]  # made real, and the real one left on the stack
        return bool(single == {"n": 1} and stack[-1] is not probe and stack[-1][0] is single)
    except Exception:
        return False
    finally:
        stack.pop()


_SCOPES_REOPEN: Final = _scopes_reopen()
"""Whether a remembered call can run its body in a scope holding the sizes its signature binds
(see ``_Scope``). Without that, every call is checked in full."""


class _CallState(threading.local):
    """Per thread and function: a result to check without running the body again; the last
    result the body gave (a failed result check explains it); the exception the body raised;
    the sizes bound before and after the body of the last full check that ran it."""

    replay: object = _NOTHING
    result: object = None
    from_body: BaseException | None = None
    scope: tuple[_Memo, _Memo] | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class _Plan:
    """What the checks of one function need to know about its hints, worked out once."""

    function: Callable[..., Any]
    qualname: str
    name: str
    """``module.qualname``, as jaxtyping names the function."""
    signature: inspect.Signature
    """The function's signature with every annotation resolved."""
    hints: dict[str, object]
    """Each annotated parameter's hint, in the signature's order."""
    returns: object
    """The return hint, or ``_NO_HINT``."""
    walked: tuple[str, ...]
    """The parameters whose hints hold a container beartype samples (a list, a dict, a set,
    ``Iterable[...]``): their every item is checked."""
    walk_result: bool
    rechecks_arguments: bool
    """Whether the check looks at the arguments again after the body: the stock check does when
    there is a return hint; lists, dicts and sets are looked at again in any case."""
    cacheable: bool
    """False when a verdict may depend on more than the signature (a validator, a protocol)."""
    read_by_value: tuple[tuple[str, int | None, object], ...]
    """``(name, position, default)`` of each argument a ``{name}`` dimension reads."""
    records: tuple[tuple[str, ...], tuple[int, ...]] | None
    """The record parameters and the positions of records in the result (see ``_records_of``);
    ``None`` when there are none: the stock check applies."""
    diagnose: Diagnose | None
    state: _CallState


def _make_plan(function: Callable[..., Any], diagnose: Diagnose | None) -> _Plan | None:
    """The plan for ``function``, or ``None`` if its hints cannot be resolved."""
    try:
        hints = typing.get_type_hints(function, include_extras=True)
        signature = inspect.signature(function)
    except Exception:  # unresolvable hints: let the stock check report them on every call
        return None
    returns = hints.pop("return", _NO_HINT)
    parameters = [
        parameter.replace(annotation=hints[parameter.name])
        if parameter.name in hints
        else parameter
        for parameter in signature.parameters.values()
    ]
    signature = signature.replace(
        parameters=parameters,
        return_annotation=inspect.Signature.empty if returns is _NO_HINT else returns,
    )
    ordered = {p.name: hints[p.name] for p in parameters if p.name in hints}
    every_hint = [*ordered.values(), *([] if returns is _NO_HINT else [returns])]
    read_by_value, readable = _arguments_read(every_hint, signature)
    module = getattr(function, "__module__", "<unknown>")
    qualname = getattr(function, "__qualname__", repr(function))
    walked = tuple(name for name, hint in ordered.items() if _samples(hint))
    return _Plan(
        function=function,
        qualname=qualname,
        name=f"{module}.{qualname}",
        signature=signature,
        hints=ordered,
        returns=returns,
        walked=walked,
        walk_result=returns is not _NO_HINT and _samples(returns),
        rechecks_arguments=returns is not _NO_HINT or bool(walked),
        cacheable=_SCOPES_REOPEN
        and readable
        and not any(_depends_on_values(hint) for hint in every_hint),
        read_by_value=read_by_value,
        records=_records_of(ordered, returns),
        diagnose=diagnose,
        state=_CallState(),
    )


def _parts(hint: object, seen: frozenset[type] = frozenset()) -> Iterator[object]:
    """``hint``, every hint inside it, and the field hints of every record it names."""
    yield hint
    for arg in typing.get_args(hint):
        yield from _parts(arg, seen)
    if isinstance(hint, typing.TypeVar):  # beartype checks a value against its bound
        for inner in (hint.__bound__, *hint.__constraints__):
            if inner is not None:
                yield from _parts(inner, seen)
    supertype = getattr(hint, "__supertype__", None)  # a ``NewType``
    if supertype is not None:
        yield from _parts(supertype, seen)
    if isinstance(hint, type) and hint not in seen and dataclasses.is_dataclass(hint):
        for _, field_hint in record_fields(hint):
            yield from _parts(field_hint, seen | {hint})


_TYPE_BASED_INSTANCE_CHECKS: Final = (type.__instancecheck__, ABCMeta.__instancecheck__)


def _depends_on_values(hint: object) -> bool:
    """Whether a hint can look at more than a signature holds: ``Annotated`` validators, numeric
    literals, protocols (an instance's own attributes), classes whose metaclass decides
    ``isinstance`` by its own ``__instancecheck__`` (which may read the value)."""
    for part in _parts(hint):
        origin = typing.get_origin(part)
        if origin is typing.Annotated:
            return True
        if origin is typing.Literal and any(
            type(arg) not in (str, bool) and arg is not None for arg in typing.get_args(part)
        ):
            return True
        if isinstance(part, type) and getattr(part, "_is_protocol", False):
            return True
        if (
            isinstance(part, type)
            and part is not Any
            and not is_array_hint(part)  # jaxtyping's reads a shape and a dtype: the signature
            and type(part).__instancecheck__ not in _TYPE_BASED_INSTANCE_CHECKS
        ):
            return True
    return False


def _array_hints(hint: object) -> Iterator[Any]:
    return (part for part in _parts(hint) if is_array_hint(part))


_BRACED = re.compile(r"\{([^{}]*)\}")


def _arguments_read(
    hints: list[object], signature: inspect.Signature
) -> tuple[tuple[tuple[str, int | None, object], ...], bool]:
    """The arguments that ``{name}`` dimensions read, and whether a verdict can be cached.

    jaxtyping formats a symbolic dimension as an f-string over the call's arguments. When every
    braced expression is a parameter's name, the values of those parameters join the signature;
    any other expression (``{len(x)}``, ``{config.size}``) makes every call take the full check.
    """
    names: dict[str, None] = {}
    for hint in hints:
        for array_hint in _array_hints(hint):
            for dim in array_hint.dims:
                for expression in _BRACED.findall(getattr(dim, "elem", "")):
                    names[expression.strip()] = None
    read = []
    positional = [
        p.name
        for p in signature.parameters.values()
        if p.kind in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    ]
    for name in names:
        parameter = signature.parameters.get(name)
        if parameter is None or parameter.kind in (
            inspect.Parameter.VAR_POSITIONAL,
            inspect.Parameter.VAR_KEYWORD,
        ):
            return (), False
        position = positional.index(name) if name in positional else None
        read.append((name, position, parameter.default))
    return tuple(read), True


_UNIONS: Final[tuple[object, ...]] = (typing.Union, types.UnionType)


def _samples(hint: object) -> bool:
    """Whether beartype checks only some items of a value of this hint: lists, dicts, sets and
    every other container it knows (``SEQUENCE_ORIGINS``, ``MAPPING_ORIGINS``)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        return True
    if args and (origin in SEQUENCE_ORIGINS or origin in MAPPING_ORIGINS):
        return any(arg is not Any and arg is not object for arg in args)
    return any(_samples(arg) for arg in args)


# --- checking every item -----------------------------------------------------------------------


class _Refused(Exception):
    """A value that the stock check passed (it saw another item) and a full walk refuses."""

    def __init__(self, label: str, reason: str) -> None:
        super().__init__(f"{label}: {reason}")
        self.label, self.reason = label, reason


def _reason(error: BeartypeCallHintViolation) -> str:
    """Beartype's explanation without the value's repr (``"the size of dimension ..."``)."""
    message = str(error)
    _, separator, tail = message.rpartition(", as ")
    return tail if separator else message


def _check_fully(label: str, value: object, hint: object) -> None:
    """Check ``value`` in the dimension scope now open, every item of every container included.

    Items are checked in order, so the verdict (and which error) does not depend on beartype's
    random choice of item. Raises ``_Refused`` naming the first value that fails.
    """
    if not _samples(hint):
        _check_one(label, value, hint)
        return
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in _UNIONS:
        for member in args:
            if _samples(member):
                if _is_instance(value, typing.get_origin(member)):
                    _check_fully(label, value, member)
                    return
            elif is_bearable(value, member):
                return
        _check_one(label, value, hint)  # nothing fits: beartype says why
    elif origin is typing.Annotated:
        _check_fully(label, value, args[0])
        _check_one(label, value, hint)
    elif not _is_instance(value, origin):
        _check_one(label, value, hint)
    elif origin is tuple:
        items = typing.cast("tuple[object, ...]", value)
        if len(args) == 2 and args[1] is Ellipsis:
            args = (args[0],) * len(items)
        elif len(items) != len(args):
            _check_one(label, value, hint)
        for index, (item, item_hint) in enumerate(zip(items, args, strict=True)):
            _check_fully(f"{label}[{index}]", item, item_hint)
    elif origin in MAPPING_ORIGINS:
        key_hint, value_hint = mapping_hints(origin, args)
        for key, item in typing.cast("Mapping[object, object]", value).items():
            _check_fully(f"a key of {label}", key, key_hint)
            _check_fully(f"{label}[{key!r}]", item, value_hint)
    elif isinstance(value, abc.Collection) and not isinstance(value, abc.Iterator):
        # a sequence, a set, a deque, any collection an ``Iterable[...]`` hint is given: one
        # hint for every item (an iterator, or an iterable that is no collection, might be used
        # up by a walk: beartype's own check decides)
        for index, item in enumerate(value):
            _check_fully(f"{label}[{index}]", item, args[0])
    else:
        _check_one(label, value, hint)


def _is_instance(value: object, origin: object) -> bool:
    return not isinstance(origin, type) or isinstance(value, origin)


def _check_one(label: str, value: object, hint: object) -> None:
    try:
        die_if_unbearable(value, hint)
    except BeartypeCallHintViolation as error:
        raise _Refused(label, _reason(error)) from None


# --- the full check ----------------------------------------------------------------------------


def _arguments(plan: _Plan, args: tuple[object, ...], kwargs: dict[str, object]) -> dict[str, Any]:
    bound = plan.signature.bind(*args, **kwargs)
    bound.apply_defaults()
    return dict(bound.arguments)


def _parameter_steps(plan: _Plan, arguments: Mapping[str, Any]) -> list[Step]:
    """Each annotated argument with its label and hint, in order (``*args`` item by item)."""
    steps: list[Step] = []
    for name, hint in plan.hints.items():
        kind = plan.signature.parameters[name].kind
        value: Any = arguments.get(name)
        if kind is inspect.Parameter.VAR_POSITIONAL:
            steps += [(f"{name}[{i}]", item, hint) for i, item in enumerate(value)]
        elif kind is inspect.Parameter.VAR_KEYWORD:
            steps += [(f"{name}[{key!r}]", item, hint) for key, item in value.items()]
        elif name in arguments:
            steps.append((name, value, hint))
    return steps


def _checked_steps(plan: _Plan, arguments: Mapping[str, Any]) -> list[Step]:
    """What a full check visits before the body, in order: record fields first, then arguments."""
    steps: list[Step] = []
    for parameter in plan.records[0] if plan.records is not None else ():
        if _is_record(arguments.get(parameter)):
            steps += _record_steps(parameter, arguments[parameter])
    return steps + _parameter_steps(plan, arguments)


def _call_body(plan: _Plan, args: tuple[object, ...], kwargs: dict[str, object]) -> object:
    """The body's result (or the result being replayed); NumPy's shape errors get a note."""
    state = plan.state
    replay = state.replay
    if replay is not _NOTHING:
        state.replay = _NOTHING
        state.result = replay
        return replay
    before = _memo_now() if plan.cacheable else None
    try:
        result = plan.function(*args, **kwargs)
    except ValueError as error:
        _note_numpy_error(plan, args, kwargs, error)
        state.from_body = error
        raise
    except BaseException as error:
        state.from_body = error
        raise
    state.result = result
    if before is not None:  # a remembered call's body will run in a scope holding these sizes
        state.scope = (before, _memo_now())
    return result


def _note_numpy_error(
    plan: _Plan, args: tuple[object, ...], kwargs: dict[str, object], error: ValueError
) -> None:
    """Add a note naming the arguments' dimensions to a shape error NumPy raised in the body."""
    if any(NOTE_MARK in note for note in getattr(error, "__notes__", ())):
        return  # a checked function further in has said it, about its own arguments
    try:
        steps = _checked_steps(plan, _arguments(plan, args, kwargs))
        note = numpy_note(plan.qualname, steps, error)
    except Exception:  # the note is a courtesy: never let it hide NumPy's own error
        return
    if note is not None:
        error.add_note(note)


def _opening(
    plan: _Plan, steps: list[Step], arguments: Mapping[str, object]
) -> tuple[str | None, str | None]:
    """The layout advice and the line naming the dimension that disagrees, where there are."""
    try:
        advice = plan.diagnose(arguments) if plan.diagnose is not None else None
    except Exception:  # advice is a courtesy: never let it hide the refusal
        advice = None
    try:
        line = disagreement(steps, arguments)
    except Exception:
        line = None
    return advice, line


def _explain(
    plan: _Plan, error: TypeCheckError, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> None:
    """Open the stock message with the layout advice, if any, and the dimension that disagrees."""
    message = str(error)
    arguments = _arguments(plan, args, kwargs)
    steps = _parameter_steps(plan, arguments)
    if "checking the return value" in message.split("\n----", 1)[0]:
        steps.append(("result", plan.state.result, plan.returns))
    advice, line = _opening(plan, steps, arguments)
    error.args = ("\n".join(part for part in (advice, line, message) if part),)


def _refusal(
    plan: _Plan,
    steps: list[Step],
    arguments: Mapping[str, object],
    headline: str,
    bindings: str | None = None,
) -> TypeCheckError:
    """The error for a value the full walk refused, opening with the dimension that disagrees."""
    advice, line = _opening(plan, steps, arguments)
    return TypeCheckError("\n".join(part for part in (advice, line, headline, bindings) if part))


FullCheck = Callable[[tuple[Any, ...], dict[str, Any], object], Any]


def _stock_check(plan: _Plan) -> FullCheck:
    """The full check of a function without records, lists, dicts or sets: the stock decorator.

    ``jaxtyped(typechecker=beartype)`` wraps a stand-in body with the function's signature, which
    can also hand back a result already computed (``replay``) so that checking it does not run
    the body twice.
    """
    state = plan.state

    def run_body(*args: Any, **kwargs: Any) -> object:
        return _call_body(plan, args, kwargs)

    functools.update_wrapper(run_body, plan.function)
    run_body.__signature__ = plan.signature  # type: ignore[attr-defined]
    stock = jaxtyped(typechecker=beartype)(run_body)

    def full_check(args: tuple[Any, ...], kwargs: dict[str, Any], replay: object) -> Any:
        state.replay, state.from_body = replay, None
        try:
            return stock(*args, **kwargs)
        except TypeCheckError as error:
            if error is not state.from_body:
                _explain(plan, error, args, kwargs)
            raise
        finally:
            state.replay, state.from_body = _NOTHING, None

    return full_check


# --- checked -----------------------------------------------------------------------------------


@typing.overload
def checked(function: Callable[P, R], /) -> Callable[P, R]: ...


@typing.overload
def checked(
    *, vouches_for_inner_calls: bool = False, diagnose: Diagnose | None = None
) -> Callable[[Callable[P, R]], Callable[P, R]]: ...


def checked(
    function: Callable[P, R] | None = None,
    /,
    *,
    vouches_for_inner_calls: bool = False,
    diagnose: Diagnose | None = None,
) -> Callable[P, R] | Callable[[Callable[P, R]], Callable[P, R]]:
    """Check every call of ``function`` against its jaxtyping annotations.

    Use as ``@checked``, or as ``@checked(vouches_for_inner_calls=True)`` on a function that
    calls other checked functions with shapes that follow from its own arguments alone.

    Parameters
    ----------
    function
        A function whose array arguments and result are annotated with named dimensions, such as
        ``Float[Array, "out batch"]``. Dimensions are bound across all arguments and the result
        of one call.
    vouches_for_inner_calls
        Declares that the type, shape and dtype of the result, and of every argument of every
        checked call that ``function`` makes, follow from the signature of its own arguments
        (true of a network's forward and backward passes: no shape depends on a value). Then,
        once a call with some signature has passed, every check inside it included, a later
        call with the same signature runs without re-checking its inner calls or its result:
        they would see exactly the signatures that passed before. Here the signature includes
        the fields of dataclass arguments, such as the ``W`` and ``b`` of each ``Dense``.
    diagnose
        Called with a refused call's arguments by name; the advice it returns opens the error
        message (``"x looks batch-first ... pass x.T"``). It never changes a verdict.

    Returns
    -------
    Callable
        ``function`` itself when checks are off (``TYPEDBACKPROP_CHECKS=0``); otherwise a wrapper
        that raises :class:`jaxtyping.TypeCheckError` (a ``TypeError``) on any mismatch.

    Notes
    -----
    The wrapper runs ``jaxtyped(typechecker=beartype)(function)`` for every call signature it
    has not verified yet. A function whose hints hold containers (lists, dicts, sets, deques,
    ``Iterable[...]`` and every other container beartype samples) or records is checked instead
    by walking its arguments in order in one dimension scope, every item of every container
    included (beartype checks one item, often at random), then the arguments again and its
    result: the verdict does not depend on which item a random draw would have looked at.

    A signature holds each argument's type, shape and dtype (a string's value; the fields of a
    dataclass, the items of a list or a tuple; the value of a number that a ``{name}``
    dimension reads). Other containers (dicts, sets, deques, views, any other iterable) and
    arrays of Python objects have none: their calls are checked in full every time. Once a call
    with some signature has passed, later calls with the same signature run ``function`` in a
    dimension scope holding the sizes that call bound (an ``isinstance`` of a jaxtyping hint in
    the body sees them, as inside the stock check), then compare their result's signature and
    the sizes bound after the body with that call's, and, as the stock check looks at the
    arguments again after the body when there is a return hint, the arguments' signature with
    the one before the body (a body may reshape an array in place or append to a list). Any
    difference checks the arguments again and the result in the scope the body left. Functions
    whose hints inspect more than a signature holds (``Annotated`` validators, numeric
    ``Literal``, protocols, classes whose metaclass overrides ``__instancecheck__``,
    ``{len(x)}``) are always checked in full.
    """
    if function is None:
        return functools.partial(
            _checked, vouches_for_inner_calls=vouches_for_inner_calls, diagnose=diagnose
        )
    return _checked(function, vouches_for_inner_calls=vouches_for_inner_calls, diagnose=diagnose)


def _checked(
    function: Callable[P, R], *, vouches_for_inner_calls: bool, diagnose: Diagnose | None = None
) -> Callable[P, R]:
    if not CHECKS_ENABLED:
        return function
    plan = _make_plan(function, diagnose)
    if plan is None:
        stock: Callable[P, R] = jaxtyped(typechecker=beartype)(function)
        return stock
    records = plan.records
    deep = records is not None  # a record's verdict depends on its fields' shapes
    if records or plan.walked or plan.walk_result:  # every item in order, one verdict
        full_check = _check_in_one_scope(plan, records[1] if records else ())
    else:
        full_check = _stock_check(plan)
    if not plan.cacheable:

        @functools.wraps(function)
        def check_every_call(*args: P.args, **kwargs: P.kwargs) -> R:
            return typing.cast("R", full_check(args, kwargs, _NOTHING))

        return check_every_call
    if vouches_for_inner_calls:
        return _vouching(function, plan, full_check)
    return _caching(function, plan, full_check, deep)


_shape_and_dtype: Final = operator.attrgetter("shape", "dtype")


def _caching(
    function: Callable[P, R], plan: _Plan, full_check: FullCheck, deep: bool
) -> Callable[P, R]:
    """The wrapper that remembers, per call signature, what the call that passed saw: the
    signature of its result and the sizes bound before and after its body."""
    verified: dict[object, _Remembered] = {}
    trust, ndarray, signature, state = _trust, _ndarray, _signature, plan.state
    by_value, rechecks, storage = bool(plan.read_by_value), plan.rechecks_arguments, _memo_storage
    positions, shape_and_dtype = plan.records[1] if plan.records else (), _shape_and_dtype

    @functools.wraps(function)
    def check_call(*args: P.args, **kwargs: P.kwargs) -> R:
        if trust.depth:
            return function(*args, **kwargs)
        # _call_signature(args, kwargs, deep), inlined for the common call: arrays, by position
        call: Any = tuple(
            [
                (value.shape, value.dtype) if type(value) is ndarray else signature(value, deep)
                for value in args
            ]
        )
        if kwargs or None in call:
            call = _call_signature(args, kwargs, deep)
        arguments = call
        if by_value and call is not None:
            values = _values_read(plan, args, kwargs)
            call = None if values is None else (call, values)
        entry = verified.get(call)  # None for a new signature (None itself is never stored)
        if entry is None:
            state.scope = None
            result = full_check(args, kwargs, _NOTHING)
            scope, state.scope = state.scope, None
            _remember(verified, call, arguments, _signature(result, deep), scope)
            return typing.cast("R", result)
        expected, before, after, arrays_only = entry
        # The body runs in a dimension scope holding the sizes this signature bound, as it runs
        # inside the stock check: an ``isinstance`` of a jaxtyping hint in it sees them.
        scope = _Scope((plan, before, args, kwargs))
        try:
            stack = storage.memo_stack
        except AttributeError:
            stack = storage.memo_stack = []
        stack.append(scope)
        try:
            result = function(*args, **kwargs)
        except ValueError as error:
            _note_numpy_error(plan, args, kwargs, error)
            raise
        finally:
            memo = stack.pop()
        returned = (
            (result.shape, result.dtype)  # type: ignore[attr-defined]
            if type(result) is ndarray
            else signature(result, deep)
        )
        if returned == expected and (memo[:3] == after if memo is not scope else after is before):
            if not rechecks:
                return result
            # The stock check looks at the arguments again after the body: unless the body
            # changed one (reshaped an array in place, appended to a list), they pass again.
            # (Only an exact array's signature is a pair of a shape and a dtype: equal pairs
            # read back from the same arguments mean equal signatures.)
            if arrays_only:
                if tuple(map(shape_and_dtype, args)) == arguments:
                    return result
            elif _call_signature(args, kwargs, deep) == arguments:
                return result
        if memo is scope:  # the body left the scope as it found it
            memo = (*before, None)
        _check_after_body(plan, positions, args, kwargs, result, memo, full_check)
        _remember(verified, call, arguments, returned, (before, memo[:3]))
        return result

    return check_call


_Remembered = tuple[object, _Memo, _Memo, bool]
"""What a call that passed saw: its result's signature, the sizes bound before and after its
body, and whether its arguments were all arrays, passed by position."""


def _remember(
    verified: dict[object, _Remembered],
    call: object,
    arguments: object,
    returned: object,
    scope: tuple[_Memo, _Memo] | None,
) -> None:
    """Remember that a call of signature ``call`` passed (``arguments``: its arguments' part),
    unless a signature is unknown or holds an array of objects (whose items an
    ``Iterable[...]`` hint may look at)."""
    if call is None or returned is None or scope is None or _holds_objects((call, returned)):
        return
    before, after = scope
    # Only an exact array has a pair of a shape and a dtype as its signature.
    arrays_only = type(arguments) is tuple and all(
        type(part) is tuple and len(part) == 2 and isinstance(part[1], np.dtype)
        for part in arguments
    )
    if len(verified) >= _MAX_SIGNATURES_PER_FUNCTION:
        verified.clear()
    verified[call] = (returned, before, before if after == before else after, arrays_only)


def _holds_objects(signature: object) -> bool:
    if isinstance(signature, np.dtype):
        return bool(signature.hasobject)
    return type(signature) is tuple and any(_holds_objects(part) for part in signature)


def _check_after_body(
    plan: _Plan,
    positions: tuple[int, ...],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    result: object,
    memo: tuple[Any, ...],
    full_check: FullCheck,
) -> None:
    """The check after the body of a remembered call whose arguments, result or sizes differ
    from what the call that passed saw: the arguments again and the result, in the scope the
    body left (``memo``: the sizes the arguments bound, and any its ``isinstance`` bound)."""
    arguments = _arguments(plan, args, kwargs)
    steps = _after_body_steps(plan, arguments, result, positions)
    stack = _memo_stack()
    stack.append((memo[0].copy(), memo[1].copy(), memo[2].copy(), arguments))
    try:
        for label, value, hint in steps:
            _check_fully(label, value, hint)
    except _Refused as refused:
        failure, bindings = refused, _bindings()
    else:
        return
    finally:
        stack.pop()
    # Refused. The full check of these arguments with this result refuses it too, with the
    # stock report, unless the body changed what it checks (or bound sizes by ``isinstance``).
    full_check(args, kwargs, result)
    where = "the result" if failure.label == "result" else f"{failure.label}, after the body"
    headline = f"{plan.qualname}: {where}: {failure.reason}"
    steps = _checked_steps(plan, arguments) + steps
    raise _refusal(plan, steps, arguments, headline, bindings) from None


def _vouching(function: Callable[P, R], plan: _Plan, full_check: FullCheck) -> Callable[P, R]:
    """The wrapper for ``vouches_for_inner_calls``: a signature that passed runs unchecked."""
    passed: set[object] = set()
    trust = _trust
    by_value = bool(plan.read_by_value)

    @functools.wraps(function)
    def check_outer_call(*args: P.args, **kwargs: P.kwargs) -> R:
        if trust.depth:
            return function(*args, **kwargs)
        call = _call_signature(args, kwargs, deep=True)
        if by_value and call is not None:
            values = _values_read(plan, args, kwargs)
            call = None if values is None else (call, values)
        if call is not None and call in passed:
            # A call with this signature passed, every check inside it included, and the
            # signatures inside it (the result's too) follow from this one: all pass again.
            trust.depth += 1
            try:
                return function(*args, **kwargs)
            finally:
                trust.depth -= 1
        result = full_check(args, kwargs, _NOTHING)
        if call is not None:
            if len(passed) >= _MAX_SIGNATURES_PER_FUNCTION:
                passed.clear()
            passed.add(call)
        return typing.cast("R", result)

    return check_outer_call


# --- records: dataclass fields checked in the scope of the call --------------------------------

_RecordFields = tuple[tuple[str, object], ...]
_record_fields_cache: dict[type, _RecordFields] = {}


def _mentions_array(hint: object) -> bool:
    return is_array_hint(hint) or any(_mentions_array(arg) for arg in typing.get_args(hint))


def _is_record_type(hint: object) -> bool:
    return isinstance(hint, type) and bool(record_fields(hint))


def record_fields(kind: type) -> _RecordFields:
    """The fields of a record type that carry named dimensions: ``((name, hint), ...)``.

    A record is a dataclass; its fields annotated with jaxtyping arrays (``Float[Array, "out
    in"]``, or such a hint in a union) and its fields that are records themselves count. Other
    fields (settings such as a slope or a stride) do not. Empty for a type that is not a
    dataclass.

    Parameters
    ----------
    kind
        A class.

    Returns
    -------
    tuple
        ``(field name, type hint)`` pairs, in declaration order.
    """
    if kind in _record_fields_cache:
        return _record_fields_cache[kind]
    fields: _RecordFields = ()
    if dataclasses.is_dataclass(kind):
        hints = typing.get_type_hints(kind, include_extras=True)
        fields = tuple(
            (field.name, hints[field.name])
            for field in dataclasses.fields(kind)
            if _mentions_array(hints[field.name])
            or (isinstance(hints[field.name], type) and dataclasses.is_dataclass(hints[field.name]))
        )
    _record_fields_cache[kind] = fields
    return fields


def _records_of(
    hints: Mapping[str, object], returns: object
) -> tuple[tuple[str, ...], tuple[int, ...]] | None:
    """Which parameters of a function are records, and where its result holds records.

    The second item lists positions in a tuple result (``-1``: the result itself is a record).
    ``None`` when neither arguments nor result are records: the stock check applies.
    """
    parameters = tuple(name for name, hint in hints.items() if _is_record_type(hint))
    positions: tuple[int, ...] = ()
    if _is_record_type(returns):
        positions = (-1,)
    elif typing.get_origin(returns) is tuple:
        positions = tuple(
            index for index, hint in enumerate(typing.get_args(returns)) if _is_record_type(hint)
        )
    if not parameters and not positions:
        return None
    return parameters, positions


def _record_steps(label: str, record: object) -> Iterator[Step]:
    """Every dimension-carrying field of ``record``, nested records' fields included."""
    for name, hint in record_fields(type(record)):
        value = getattr(record, name)
        where = f"{label}.{name}"
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            yield from _record_steps(where, value)
        else:
            yield where, value, hint


def _is_record(value: object) -> bool:
    return dataclasses.is_dataclass(value) and not isinstance(value, type)


def _returned_records(result: object, positions: tuple[int, ...]) -> Iterator[tuple[str, object]]:
    if positions == (-1,):
        yield "result", result
        return
    items = typing.cast("tuple[object, ...]", result)
    for index in positions:
        if isinstance(items, tuple) and index < len(items):
            yield f"result[{index}]", items[index]


@contextlib.contextmanager
def _scope(arguments: dict[str, Any]) -> Iterator[None]:
    """A dimension scope whose symbolic dimensions (``{size}``) can read the call's arguments.

    ``jaxtyped("context")`` opens a scope too, but with no arguments; the stock decorator opens
    one with them through jaxtyping's memo stack, which this uses when it is there.
    """
    push = getattr(_jaxtyping_storage, "push_shape_memo", None)
    pop = getattr(_jaxtyping_storage, "pop_shape_memo", None)
    if push is None or pop is None:
        with jaxtyped("context"):
            yield
        return
    push(arguments)
    try:
        yield
    finally:
        pop()


def _bindings() -> str | None:
    """The sizes bound so far in the open dimension scope, as the stock message ends with them."""
    get_shape_memo = getattr(_jaxtyping_storage, "get_shape_memo", None)
    if get_shape_memo is None:
        return None
    single, variadic, *_ = get_shape_memo()
    pieces = [f"{name}={size}" for name, size in single.items() if not name.startswith("~~")]
    pieces += [f"*{name}={shape}" for name, (_, shape) in variadic.items()]
    return f"Bound so far: {' '.join(pieces)}" if pieces else None


def _after_body_steps(
    plan: _Plan, arguments: Mapping[str, Any], result: object, positions: tuple[int, ...]
) -> list[Step]:
    """What the check visits after the body, in order, in the scope the arguments bound.

    As the stock check does when there is a return hint: every argument again (the body may have
    changed one: appended to a list, reshaped an array in place) and the result; a list, dict or
    set argument is looked at again even without one. Then the fields of returned records.
    """
    again = plan.returns is not _NO_HINT
    steps = [
        step
        for step in _parameter_steps(plan, arguments)
        if again or step[0].partition("[")[0] in plan.walked
    ]
    if plan.returns is not _NO_HINT:
        steps.append(("result", result, plan.returns))
    for label, record in _returned_records(result, positions):
        if _is_record(record):
            steps += _record_steps(label, record)
    return steps


def _check_in_one_scope(plan: _Plan, positions: tuple[int, ...]) -> FullCheck:
    """The full check of a function that takes or returns records, lists, dicts or sets.

    The fields of record arguments are bound first (a cache carries the sizes its forward pass
    saw), then the plain arguments are checked, the body runs, the arguments are checked again
    with the result (see ``_after_body_steps``), and finally the fields of returned records are
    checked, all against the same bindings. Every item of every container is checked.
    """
    state = plan.state

    def full_check(args: tuple[Any, ...], kwargs: dict[str, Any], replay: object) -> Any:
        arguments = _arguments(plan, args, kwargs)
        steps = _checked_steps(plan, arguments)
        with _scope(arguments):
            try:
                for label, value, hint in steps:
                    _check_fully(label, value, hint)
            except _Refused as refused:
                headline = f"{plan.qualname}: argument {refused.label}: {refused.reason}"
                raise _refusal(plan, steps, arguments, headline, _bindings()) from None
            state.replay = replay
            try:
                result = _call_body(plan, args, kwargs)
            finally:
                state.replay, state.from_body = _NOTHING, None
            returned = _after_body_steps(plan, arguments, result, positions)
            try:
                for label, value, hint in returned:
                    _check_fully(label, value, hint)
            except _Refused as refused:
                label = "the result" if refused.label == "result" else refused.label
                headline = f"{plan.qualname}: {label}: {refused.reason}"
                raise _refusal(plan, steps + returned, arguments, headline, _bindings()) from None
        return result

    return full_check


# --- finite values -----------------------------------------------------------------------------


def require_finite(name: str, values: Float[Array, "*shape"]) -> None:
    """Raise ``ValueError`` naming the first NaN or infinite entry of ``values``, if any.

    Parameters
    ----------
    name
        What ``values`` is called in the message (``"x"``, ``"logits"``).
    values
        A floating-point array of any shape, ``*shape``. The annotation is documentation only:
        ``require_finite`` is not wrapped in :func:`checked`, since every caller passes an array
        its own checked signature has already typed, and it runs on every training step.

    Raises
    ------
    ValueError
        ``"x contains nan at index (1, 3)"``, for the first non-finite entry.
    """
    # NaN and ±inf propagate through a sum of squares, so a finite one proves every entry
    # finite; only one that is not (or that overflows) needs the entry-by-entry test.
    if values.size == 0 or math.isfinite(np.vdot(values, values)):
        return
    bad = np.argwhere(~np.isfinite(values))
    if len(bad):
        index = tuple(int(i) for i in bad[0])
        raise ValueError(f"{name} contains {values[index]} at index {index}")
