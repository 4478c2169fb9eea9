"""Array aliases and the ``checked`` decorator that enforces them on every call.

Every forward and backward function in typedbackprop is annotated with named dimensions,
``Float[Array, "out batch"]``, and wrapped in :func:`checked`. With checks on (the default) a call
whose shapes disagree with the annotation raises :class:`jaxtyping.TypeCheckError`, and its message
lists the size bound to every dimension name (``out=4``, ``in=3``). Set the environment variable
``TYPEDBACKPROP_CHECKS=0`` before importing typedbackprop to turn the checks off: ``checked`` then
returns each function unchanged and costs nothing.

The check is the stock ``jaxtyped(typechecker=beartype)`` one. What makes it cheap enough to leave
on is that its verdict depends only on the *signature* of a call: the type, shape and dtype of each
array argument, the type of each number, the value of each string. A call whose signature has
already passed the full check, and whose result has the signature that call returned, is
recognised by one dictionary look-up. Every new signature, and every failing one, goes through
the full check, so failures raise exactly the error jaxtyping + beartype raise, first call or
thousandth.

Records (frozen dataclasses whose fields carry named dimensions, such as a layer's parameters or
the cache its forward pass saves) are checked field by field in the *same* dimension scope as the
call that takes or returns them. That is the layer contract's guarantee: a backward pass
that receives ``cache: DenseCache`` binds ``in`` and ``batch`` from ``cache.a_prev``, so a
``grad_a_prev`` not shaped like the ``a_prev`` forward saw is refused, although backward's own
arguments could not tell.
"""

import dataclasses
import functools
import inspect
import math
import os
import threading
import typing
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Final, ParamSpec, TypeVar

import numpy as np
from beartype import beartype
from beartype.door import die_if_unbearable
from beartype.roar import BeartypeCallHintViolation
from jaxtyping import AbstractArray, Float, TypeCheckError, jaxtyped
from numpy.typing import NDArray

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

_ndarray = np.ndarray


# How the signature of a value of each type is formed: by value, by type, from its items (lists
# and tuples), from its fields (dataclasses: a tuple of field names), or not at all (``None``:
# dicts and sets, whose contents may matter and are not cheap to summarise). Learned per type.
_BY_VALUE, _BY_TYPE, _BY_ITEMS, _ARRAY_SUBCLASS = "value", "type", "items", "array subclass"
_how: dict[type, str | tuple[str, ...] | None] = {
    str: _BY_VALUE,
    bool: _BY_VALUE,
    type(None): _BY_VALUE,
    int: _BY_TYPE,
    float: _BY_TYPE,
    list: _BY_ITEMS,
    tuple: _BY_ITEMS,
}


def _learn_how(kind: type) -> str | tuple[str, ...] | None:
    how: str | tuple[str, ...] | None
    if issubclass(kind, _ndarray):
        how = _ARRAY_SUBCLASS
    elif issubclass(kind, list | tuple):
        how = _BY_ITEMS
    elif issubclass(kind, dict | set | frozenset):
        how = None
    else:
        how = tuple(getattr(kind, "__dataclass_fields__", ())) or _BY_TYPE
    _how[kind] = how
    return how


def _signature(value: object, deep: bool = False) -> object:
    """What a check of ``value`` can depend on, or ``None`` if that is not known.

    Arrays give their shape and dtype (and their type, for a subclass); strings, booleans and
    ``None`` their value (a ``Literal`` hint looks at it); other numbers their type; lists and
    tuples (named ones too) their type and their items' signatures. A hint naming a dataclass
    checks its type alone, so that is its signature, unless ``deep``: then the signatures of its
    fields count too, and the signature of a ``list[Dense]`` holds every ``W`` and ``b`` shape.
    """
    kind = type(value)
    if kind is _ndarray:
        array = typing.cast("NDArray[Any]", value)
        return (array.shape, array.dtype)
    how = _how[kind] if kind in _how else _learn_how(kind)
    if how is _BY_VALUE:
        return (kind, value)
    if how is _BY_TYPE:
        return kind
    if how is _BY_ITEMS:
        items = _signatures(typing.cast("list[object]", value), deep)
        return None if items is None else (kind, items)
    if how is _ARRAY_SUBCLASS:
        array = typing.cast("NDArray[Any]", value)
        return (kind, array.shape, array.dtype)
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


class _Trust(threading.local):
    """Per thread: how many calls up the stack vouch for the checks of every call below them."""

    depth = 0


_trust = _Trust()


def _depends_on_values(hint: object) -> bool:
    """Whether a hint can look at a number's value (``Annotated`` validators, numeric literals)."""
    origin = typing.get_origin(hint)
    if origin is typing.Annotated:
        return True
    if origin is typing.Literal:
        return any(
            type(arg) not in (str, bool) and arg is not None for arg in typing.get_args(hint)
        )
    return any(_depends_on_values(arg) for arg in typing.get_args(hint))


def _signature_decides_verdict(function: Callable[..., Any]) -> bool:
    try:
        hints = typing.get_type_hints(function, include_extras=True)
    except Exception:  # unresolvable hints: let the full check report them on every call
        return False
    return not any(_depends_on_values(hint) for hint in hints.values())


@typing.overload
def checked(function: Callable[P, R], /) -> Callable[P, R]: ...


@typing.overload
def checked(
    *, vouches_for_inner_calls: bool = False
) -> Callable[[Callable[P, R]], Callable[P, R]]: ...


def checked(
    function: Callable[P, R] | None = None, /, *, vouches_for_inner_calls: bool = False
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

    Returns
    -------
    Callable
        ``function`` itself when checks are off (``TYPEDBACKPROP_CHECKS=0``); otherwise a wrapper
        that raises :class:`jaxtyping.TypeCheckError` (a ``TypeError``) on any mismatch.

    Notes
    -----
    The wrapper runs ``jaxtyped(typechecker=beartype)(function)`` for every call signature it
    has not verified yet. A signature holds each argument's type, shape and dtype (a string's
    value; the fields of a dataclass, the items of a list); once a call with that signature has
    passed, with a result of signature ``r``, later calls with the same signature run
    ``function`` directly and compare their result's signature to ``r``. Any difference falls
    back to the full check, so a failure always raises the stock jaxtyping + beartype error.
    Functions whose hints inspect a number's value (``Annotated`` validators, numeric
    ``Literal``) are always checked in full.
    """
    if function is None:
        return functools.partial(_checked, vouches_for_inner_calls=vouches_for_inner_calls)
    return _checked(function, vouches_for_inner_calls=vouches_for_inner_calls)


def _checked(function: Callable[P, R], *, vouches_for_inner_calls: bool) -> Callable[P, R]:
    if not CHECKS_ENABLED:
        return function
    records = _records_of(function)
    fully_checked: Callable[P, R] = (
        _checked_in_one_scope(function, *records)
        if records is not None
        else jaxtyped(typechecker=beartype)(function)
    )
    if not _signature_decides_verdict(function):
        return fully_checked
    deep = records is not None  # a record's verdict depends on its fields' shapes
    trust = _trust

    if vouches_for_inner_calls:
        passed: set[object] = set()

        @functools.wraps(function)
        def check_outer_call(*args: P.args, **kwargs: P.kwargs) -> R:
            if trust.depth:
                return function(*args, **kwargs)
            call = _call_signature(args, kwargs, deep=True)
            if call is not None and call in passed:
                # A call with this signature passed, every check inside it included, and the
                # signatures inside it (the result's too) follow from this one: all pass again.
                trust.depth += 1
                try:
                    return function(*args, **kwargs)
                finally:
                    trust.depth -= 1
            result = fully_checked(*args, **kwargs)
            if call is not None:
                if len(passed) >= _MAX_SIGNATURES_PER_FUNCTION:
                    passed.clear()
                passed.add(call)
            return result

        return check_outer_call

    verified: dict[object, object] = {}

    @functools.wraps(function)
    def check_call(*args: P.args, **kwargs: P.kwargs) -> R:
        if trust.depth:
            return function(*args, **kwargs)
        call = _call_signature(args, kwargs, deep=deep)
        expected = verified.get(call)  # None for a new signature (None itself is never stored)
        if expected is not None:
            result = function(*args, **kwargs)
            if _signature(result, deep) == expected:
                return result
        result = fully_checked(*args, **kwargs)
        returned = _signature(result, deep)
        if call is not None and returned is not None:
            if len(verified) >= _MAX_SIGNATURES_PER_FUNCTION:
                verified.clear()
            verified[call] = returned
        return result

    return check_call


# --- records: dataclass fields checked in the scope of the call --------------------------------

_RecordFields = tuple[tuple[str, object], ...]
_record_fields_cache: dict[type, _RecordFields] = {}


def _mentions_array(hint: object) -> bool:
    if isinstance(hint, type) and issubclass(hint, AbstractArray):
        return True
    return any(_mentions_array(arg) for arg in typing.get_args(hint))


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


def _records_of(function: Callable[..., Any]) -> tuple[tuple[str, ...], tuple[int, ...]] | None:
    """Which parameters of ``function`` are records, and where its result holds records.

    The second item lists positions in a tuple result (``-1``: the result itself is a record).
    ``None`` when neither arguments nor result are records: the stock check applies.
    """
    try:
        hints = typing.get_type_hints(function, include_extras=True)
    except Exception:
        return None
    returned = hints.pop("return", None)
    parameters = tuple(name for name, hint in hints.items() if _is_record_type(hint))
    positions: tuple[int, ...] = ()
    if _is_record_type(returned):
        positions = (-1,)
    elif typing.get_origin(returned) is tuple:
        positions = tuple(
            index for index, hint in enumerate(typing.get_args(returned)) if _is_record_type(hint)
        )
    if not parameters and not positions:
        return None
    return parameters, positions


def _bind_record(label: str, record: object) -> None:
    """Check every dimension-carrying field of ``record`` in the dimension scope now open."""
    for name, hint in record_fields(type(record)):
        value = getattr(record, name)
        where = f"{label}.{name}"
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            _bind_record(where, value)
            continue
        try:
            die_if_unbearable(value, hint)
        except BeartypeCallHintViolation as error:
            raise TypeCheckError(f"{where}: {_reason(error)}") from None


def _reason(error: BeartypeCallHintViolation) -> str:
    """Beartype's explanation without the value's repr (``"as the size of dimension ..."``)."""
    message = str(error)
    _, separator, tail = message.rpartition(", as ")
    return tail if separator else message


def _returned_records(result: object, positions: tuple[int, ...]) -> Iterator[tuple[str, object]]:
    if positions == (-1,):
        yield "result", result
        return
    items = typing.cast("tuple[object, ...]", result)
    for index in positions:
        if isinstance(items, tuple) and index < len(items):
            yield f"result[{index}]", items[index]


def _checked_in_one_scope(
    function: Callable[P, R], parameters: tuple[str, ...], positions: tuple[int, ...]
) -> Callable[P, R]:
    """The full check of a function that takes or returns records, in one dimension scope.

    The fields of record arguments are bound first (a cache carries the sizes its forward pass
    saw), then beartype checks the plain arguments, the body runs, beartype checks the result,
    and finally the fields of returned records are checked, all against the same bindings.
    """
    body = beartype(function)
    signature = inspect.signature(function)
    name = getattr(function, "__qualname__", repr(function))

    @functools.wraps(function)
    def check_in_one_scope(*args: P.args, **kwargs: P.kwargs) -> R:
        arguments = signature.bind(*args, **kwargs).arguments
        with jaxtyped("context"):
            for parameter in parameters:
                value = arguments.get(parameter)
                if dataclasses.is_dataclass(value) and not isinstance(value, type):
                    _bind_record(f"{name}: argument {parameter}", value)
            try:
                result = body(*args, **kwargs)
            except BeartypeCallHintViolation as error:
                raise TypeCheckError(f"{name}: {_violation(error)}") from None
            for label, record in _returned_records(result, positions):
                if dataclasses.is_dataclass(record) and not isinstance(record, type):
                    _bind_record(f"{name}: {label}", record)
        return result

    return check_in_one_scope


def _violation(error: BeartypeCallHintViolation) -> str:
    """``parameter grad_z: it ...`` or ``the result: it ...``, from beartype's message."""
    message = str(error)
    first = message.split(" violates type hint", 1)[0]
    if " parameter " in first:
        parameter = first.split(" parameter ", 1)[1].split("=", 1)[0]
        return f"argument {parameter}: {_reason(error)}"
    if " return " in first:
        return f"the result: {_reason(error)}"
    return message


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
