"""The signature cache: a call whose signature has passed is recognised by one look-up.

A verdict of the full check depends only on the *signature* of a call: the type, shape and dtype
of each array argument, the type of each number (its value, when an annotation reads it), the
value of each string, the signatures of a list's or a tuple's items. :func:`caching` remembers,
per signature, what the call that passed saw (its result's signature, the sizes bound before and
after its body) and runs a later call of that signature in a scope holding those sizes;
:func:`vouching` lets a call whose signature passed run its inner checked calls unchecked.
"""

import collections.abc as abc
import contextvars
import functools
import inspect
import linecache
import operator
import typing
from collections.abc import Callable, Iterable
from typing import Any, Final, ParamSpec, TypeVar

import numpy as np

from typedbackprop.checking.full import FullCheck, check_after_body, note_numpy_error
from typedbackprop.checking.jaxtyping_adapter import Memo, ReopenedScope, storage
from typedbackprop.checking.plan import NOTHING, Plan

__all__ = [
    "MAX_SIGNATURES_PER_FUNCTION",
    "FullChecks",
    "Trust",
    "call_signature",
    "caching",
    "full_checks",
    "signature_of",
    "trust",
    "trusted",
    "trusted_fast_path",
    "values_read",
    "vouching",
]

P = ParamSpec("P")
R = TypeVar("R")


MAX_SIGNATURES_PER_FUNCTION: Final = 1024

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
# For a dataclass (``_how`` its field names): its deep signature, by a function written for its
# fields (see ``_record_signature``).
_records: dict[type, Callable[[object], object]] = {}
_NO_RECORDS: Final[dict[type, Callable[[object], object]]] = {}
_shape_and_dtype: Final = operator.attrgetter("shape", "dtype")

_RECORD_SIGNATURE_TEMPLATE: Final = """
def make(_tbp_kind, _tbp_ndarray, _tbp_signatures, _tbp_signature_of):
    def record_signature(_tbp_value):
        if type(_tbp_value) is not _tbp_kind:  # another item of a list of records
            return _tbp_signature_of(_tbp_value, True)
{read}
        if {all_arrays}:
            return (_tbp_kind, {arrays})
        _tbp_items = _tbp_signatures(({fields},), True)
        return None if _tbp_items is None else (_tbp_kind, _tbp_items)
    return record_signature
"""


def _record_signature(kind: type, names: tuple[str, ...]) -> Callable[[object], object]:
    """The deep signature of a ``kind`` record, by a function written for its fields.

    A record of exact arrays (a ``Dense``'s ``W`` and ``b``) gives ``(kind, W.shape, W.dtype,
    b.shape, b.dtype)``: each field read once, its shape and dtype in line, one flat tuple to
    build, hash and compare (a network's signature holds every layer's). Any other gives
    ``(kind, signatures of its fields)`` as :func:`_signatures` gives them: two items, where the
    flat form has at least three, so the two forms never meet.
    """
    fields = [f"_tbp_{index}" for index in range(len(names))]
    source = _RECORD_SIGNATURE_TEMPLATE.format(
        read="\n".join(
            f"        {field} = _tbp_value.{name}"
            for field, name in zip(fields, names, strict=True)
        ),
        all_arrays=" and ".join(f"type({field}) is _tbp_ndarray" for field in fields),
        arrays=", ".join(f"{field}.shape, {field}.dtype" for field in fields),
        fields=", ".join(fields),
    )
    namespace: dict[str, Any] = {}
    exec(compile(source, f"<signature of {kind.__qualname__}>", "exec"), namespace)  # noqa: S102
    function: Callable[[object], object] = namespace["make"](
        kind, _ndarray, _signatures, signature_of
    )
    return function


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
        if type(how) is tuple:
            _records[kind] = _record_signature(kind, how)
    _how[kind] = how
    return how


def signature_of(value: object, deep: bool = False) -> object:
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
    any_value: Any = value  # as the branches below read it (``typing.cast`` would be a call)
    if kind is _ndarray:
        return (any_value.shape, any_value.dtype)
    how = _how[kind] if kind in _how else _learn_how(kind, value)
    if how is _BY_VALUE:
        return (kind, value)
    if how is _BY_TYPE:
        return kind
    if how is _BY_ITEMS:
        record = _records.get(type(any_value[0])) if deep and any_value else None
        if record is not None:  # a list of records, a network's layers: no frame but theirs
            each = tuple(map(record, any_value))  # (an item of another type: its own way)
            return None if None in each else (kind, each)
        items = _signatures(any_value, deep)
        return None if items is None else (kind, items)
    if how is _ARRAY_SUBCLASS:
        return None if any_value.dtype.hasobject else (kind, any_value.shape, any_value.dtype)
    if how is _ARRAY_LIKE:
        shape, dtype = getattr(value, "shape", None), getattr(value, "dtype", None)
        if getattr(dtype, "hasobject", False) or str(dtype) in ("object", "O"):
            return None  # its items are any objects: ``Iterable[...]`` may look at them
        return (kind, None if shape is None else tuple(shape), str(dtype))
    if how is None:
        return None
    if not deep:
        return kind
    return _records[kind](value)


def _signatures(values: Iterable[object], deep: bool) -> tuple[object, ...] | None:
    """The signature of each value (arrays and records inline, the common cases), or ``None`` if
    any is."""
    records = _records if deep else _NO_RECORDS
    signatures = tuple(
        [
            (value.shape, value.dtype)
            if type(value) is _ndarray
            else records[type(value)](value)  # a network's layers, one frame each
            if type(value) in records
            else signature_of(value, deep)
            for value in values
        ]
    )
    return None if None in signatures else signatures


def call_signature(args: tuple[object, ...], kwargs: dict[str, object], deep: bool) -> object:
    positional = _signatures(args, deep)
    if not kwargs or positional is None:
        return positional
    keywords = _signatures(kwargs.values(), deep)
    return None if keywords is None else (positional, tuple(kwargs), keywords)


_SCALARS: Final = (int, float, complex, bool, str, type(None))


def values_read(plan: "Plan", args: tuple[object, ...], kwargs: dict[str, object]) -> object:
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


class FullChecks:
    """How many calls of one checked function took the full check (the rest were remembered)."""

    __slots__ = ("full",)

    def __init__(self) -> None:
        self.full = 0


def full_checks(function: Callable[..., Any]) -> int | None:
    """How many calls of a :func:`~typedbackprop.checking.checked` function were checked in full.

    A call whose signature passed before is not: it takes the cached path. ``None`` for a
    function whose every call is checked in full (hints that read more than a signature holds,
    or a jaxtyping this package's adapter was not written for), and for one not checked at all.

    Parameters
    ----------
    function
        What ``checked`` returned.

    Returns
    -------
    int or None
        The count, or ``None`` where no call is remembered.
    """
    counts = getattr(function, "__full_checks__", None)
    return counts.full if isinstance(counts, FullChecks) else None


# Whether this thread is inside a call that vouches for its inner calls: the value of a context
# variable, a *level* ``[level outside, depth]`` that is non-empty while the call runs and is
# emptied when it returns. Every checked wrapper asks ``trusted()``, one C call (a
# ``threading.local`` attribute cost about four times as much, some thirty times a step); a
# context copied inside the call (an ``asyncio`` task it creates) shares the level, and sees it
# emptied when the call returns, so nothing is trusted beyond the call.
_Level = list[Any]
_OUTSIDE: Final[_Level] = []  # the level outside every vouched-for call: never filled
_level: Final = contextvars.ContextVar[_Level]("typedbackprop_trusted_level", default=_OUTSIDE)

trusted: Final[Callable[[], _Level]] = _level.get
"""``trusted()`` is truthy inside a call that vouches for its inner calls (``trust.depth > 0``),
on a signature that passed before; a wrapper's one test before it runs its body unchecked."""


class Trust:
    """Per thread: how many calls up the stack vouch for the checks of every call below them."""

    __slots__ = ()

    @property
    def depth(self) -> int:
        level = _level.get()
        depth: int = level[1] if level else 0
        return depth

    @depth.setter
    def depth(self, value: int) -> None:
        if value < 0:
            raise ValueError(f"trust.depth cannot be {value}: it counts calls")
        level = _level.get()
        while level and level[1] > value:  # leave: the level is emptied, as a call's is
            outside = level[0]
            level.clear()
            _level.set(level := outside)
        while (int(level[1]) if level else 0) < value:  # enter, one level per step
            _level.set(level := [level, (int(level[1]) if level else 0) + 1])


trust = Trust()
"""While ``trust.depth`` is above 0 (inside a call made ``vouches_for_inner_calls``, on a signature
that passed before), checked functions and records checked at construction skip their checks:
they would see what passed before. Code that checks by hand (a network's gradients against its
layers) skips with them: ``if CHECKS_ENABLED and not trusted()``, the same test in one call. Per
thread (and context): a thread's calls are trusted only inside that thread's vouched-for call."""


def caching(
    function: Callable[P, R], plan: Plan, full_check: FullCheck, deep: bool
) -> Callable[P, R]:
    """The wrapper that remembers, per call signature, what the call that passed saw: the
    signature of its result and the sizes bound before and after its body."""
    verified: dict[object, _Remembered] = {}
    inside, ndarray, signature, state = trusted, _ndarray, signature_of, plan.state
    by_value, rechecks, memo = bool(plan.read_by_value), plan.rechecks_arguments, storage
    counts = FullChecks()
    positions, shape_and_dtype = plan.records[1] if plan.records else (), _shape_and_dtype

    @functools.wraps(function)
    def check_call(*args: P.args, **kwargs: P.kwargs) -> R:
        if inside():
            return function(*args, **kwargs)
        # call_signature(args, kwargs, deep), inlined for the common call: arrays, by position
        call: Any = tuple(
            [
                (value.shape, value.dtype) if type(value) is ndarray else signature(value, deep)
                for value in args
            ]
        )
        if kwargs or None in call:
            call = call_signature(args, kwargs, deep)
        arguments = call
        if by_value and call is not None:
            values = values_read(plan, args, kwargs)
            call = None if values is None else (call, values)
        entry = verified.get(call)  # None for a new signature (None itself is never stored)
        if entry is None:
            counts.full += 1
            state.scope = None
            result = full_check(args, kwargs, NOTHING)
            scope, state.scope = state.scope, None
            _remember(verified, call, arguments, signature_of(result, deep), scope)
            return typing.cast("R", result)
        expected, before, after, arrays_only = entry
        # The body runs in a dimension scope holding the sizes this signature bound, as it runs
        # inside the stock check: an ``isinstance`` of a jaxtyping hint in it sees them.
        scope = ReopenedScope((plan, before, args, kwargs))
        try:
            stack = memo.memo_stack
        except AttributeError:
            stack = memo.memo_stack = []
        stack.append(scope)
        try:
            result = function(*args, **kwargs)
        except ValueError as error:
            note_numpy_error(plan, args, kwargs, error)
            raise
        finally:
            left = stack.pop()
        returned = (
            (result.shape, result.dtype)  # type: ignore[attr-defined]
            if type(result) is ndarray
            else signature(result, deep)
        )
        if returned == expected and (left[:3] == after if left is not scope else after is before):
            if not rechecks:
                return result
            # The stock check looks at the arguments again after the body: unless the body
            # changed one (reshaped an array in place, appended to a list), they pass again.
            # (Only an exact array's signature is a pair of a shape and a dtype: equal pairs
            # read back from the same arguments mean equal signatures.)
            if arrays_only:
                if tuple(map(shape_and_dtype, args)) == arguments:
                    return result
            elif call_signature(args, kwargs, deep) == arguments:
                return result
        if left is scope:  # the body left the scope as it found it
            left = (*before, None)
        counts.full += 1
        check_after_body(plan, positions, args, kwargs, result, left, full_check)
        _remember(verified, call, arguments, returned, (before, left[:3]))
        return result

    check_call.__full_checks__ = counts  # type: ignore[attr-defined]
    return trusted_fast_path(function, check_call)


_Remembered = tuple[object, Memo, Memo, bool]
"""What a call that passed saw: its result's signature, the sizes bound before and after its
body, and whether its arguments were all arrays, passed by position."""


def _remember(
    verified: dict[object, _Remembered],
    call: object,
    arguments: object,
    returned: object,
    scope: tuple[Memo, Memo] | None,
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
    if len(verified) >= MAX_SIGNATURES_PER_FUNCTION:
        verified.clear()
    verified[call] = (returned, before, before if after == before else after, arrays_only)


def _holds_objects(signature: object) -> bool:
    if isinstance(signature, np.dtype):
        return bool(signature.hasobject)
    return type(signature) is tuple and any(_holds_objects(part) for part in signature)


def vouching(function: Callable[P, R], plan: Plan, full_check: FullCheck) -> Callable[P, R]:
    """The wrapper for ``vouches_for_inner_calls``: a signature that passed runs unchecked."""
    passed: set[object] = set()
    last: list[object] = [None]  # the signature that passed last: compared before hashing any
    inside, level, ndarray, signature = trusted, _level, _ndarray, signature_of
    by_value = bool(plan.read_by_value)
    counts = FullChecks()

    @functools.wraps(function)
    def check_outer_call(*args: P.args, **kwargs: P.kwargs) -> R:
        outside = inside()
        if outside:
            return function(*args, **kwargs)
        # call_signature(args, kwargs, deep=True), inlined for the common call, by position:
        # arrays, and the names of a network's activations and loss
        call: Any = tuple(
            [
                (value.shape, value.dtype)
                if type(value) is ndarray
                else (str, value)
                if type(value) is str
                else signature(value, True)
                for value in args
            ]
        )
        # A training loop repeats one signature: comparing it with the last one that passed
        # costs less than hashing it (a dtype's hash is computed anew every time), and, as that
        # one holds no ``None``, less than looking for one first.
        if by_value or kwargs or call != last[0]:
            if kwargs or None in call:
                call = call_signature(args, kwargs, deep=True)
            if by_value and call is not None:
                values = values_read(plan, args, kwargs)
                call = None if values is None else (call, values)
            remembered = call is not None and (call == last[0] or call in passed)
        else:
            remembered = True
        if remembered:
            # A call with this signature passed, every check inside it included, and the
            # signatures inside it (the result's too) follow from this one: all pass again.
            last[0] = call
            trusting = [outside, 1]  # a level, non-empty while the call runs (see ``trusted``)
            token = level.set(trusting)
            try:
                return function(*args, **kwargs)
            finally:
                trusting.clear()
                level.reset(token)
        counts.full += 1
        result = full_check(args, kwargs, NOTHING)
        if call is not None:
            if len(passed) >= MAX_SIGNATURES_PER_FUNCTION:
                passed.clear()
            passed.add(call)
            last[0] = call
        return typing.cast("R", result)

    check_outer_call.__full_checks__ = counts  # type: ignore[attr-defined]
    return trusted_fast_path(function, check_outer_call)


# --- the trusted call: the function's own parameters, no packing ------------------------------

_MISSING: Final = object()
"""The default of a parameter in a :func:`trusted_fast_path` wrapper: the caller left it out."""

_FAST_PATH_TEMPLATE: Final = """
def make(_tbp_function, _tbp_check, _tbp_trusted, _tbp_missing, _tbp_defaults):
    def {name}({parameters}):
        if _tbp_trusted():
            return _tbp_function({trusted})
{check}
    return {name}
"""


def trusted_fast_path(function: Callable[P, R], check: Callable[P, R]) -> Callable[P, R]:
    """``check`` behind a wrapper with ``function``'s own parameters, for the trusted call.

    Inside a call that vouches for its inner calls (``trust.depth`` above 0), a checked function
    runs its body unchecked; a network step makes some thirty such calls. A wrapper taking
    ``*args, **kwargs`` packs them into a tuple and a dict and unpacks them again for the body,
    which costs as much as the rest of the trusted call. This one is written with the
    parameters of ``function`` (names, order, positional-only and keyword-only markers): under
    trust it calls ``function`` with them as they came (a parameter left out gets its default,
    the very object the body would get); otherwise it hands ``check`` exactly the arguments the
    caller gave (required ones by position, others by name, those left out not at all), so
    every check sees what it saw before. ``check`` itself where the parameters cannot be
    written this way (``*args``, ``**kwargs``, a positional-only default, a callable that is
    not a plain function, a function whose ``__signature__`` states parameters its code may not
    take).
    """
    if not inspect.isfunction(function) or "__signature__" in vars(function):
        return check  # not a plain function, or one whose stated signature is not its code's
    kinds = inspect.Parameter
    parameters: list[str] = []
    passed_on: list[str] = []  # the body's arguments, under trust
    required: list[str] = []
    optional: list[str] = []  # by position or keyword, with a default
    keyword_only = False
    given: list[str] = []
    defaults: dict[str, object] = {}
    signature = list(inspect.signature(function, follow_wrapped=False).parameters.values())
    for index, parameter in enumerate(signature):
        name, kind = parameter.name, parameter.kind
        if kind in (kinds.VAR_POSITIONAL, kinds.VAR_KEYWORD) or name.startswith("_tbp_"):
            return check
        if kind is kinds.KEYWORD_ONLY and "*" not in parameters:
            parameters.append("*")
            keyword_only = True
        if parameter.default is kinds.empty:
            parameters.append(name)
            value = name
            if kind is kinds.KEYWORD_ONLY:
                given.append(f"        _tbp_given[{name!r}] = {name}\n")
            else:
                required.append(name)
        else:
            if kind is kinds.POSITIONAL_ONLY:
                return check
            parameters.append(f"{name}=_tbp_missing")
            defaults[name] = parameter.default
            value = f"_tbp_defaults[{name!r}] if {name} is _tbp_missing else {name}"
            if kind is kinds.KEYWORD_ONLY:
                given.append(
                    f"        if {name} is not _tbp_missing:\n"
                    f"            _tbp_given[{name!r}] = {name}\n"
                )
            else:  # by position while every parameter before it was given, else by name
                optional.append(name)
                given.append(
                    f"        if {name} is _tbp_missing:\n"
                    "            _tbp_gap = True\n"
                    "        elif _tbp_gap:\n"
                    f"            _tbp_given[{name!r}] = {name}\n"
                    "        else:\n"
                    f"            _tbp_positional.append({name})\n"
                )
        passed_on.append(f"{name}=({value})" if kind is kinds.KEYWORD_ONLY else f"({value})")
        last_positional_only = kind is kinds.POSITIONAL_ONLY and (
            index + 1 == len(signature) or signature[index + 1].kind is not kinds.POSITIONAL_ONLY
        )
        if last_positional_only:
            parameters.append("/")
    if given and not keyword_only:
        # Every parameter with a default given, or none: by position, with no list or dict to
        # build (as the general way below would hand them on).
        everything = ", ".join([*required, *optional])
        shortcut = (
            f"        if {' and '.join(f'{name} is not _tbp_missing' for name in optional)}:\n"
            f"            return _tbp_check({everything})\n"
            f"        if {' and '.join(f'{name} is _tbp_missing' for name in optional)}:\n"
            f"            return _tbp_check({', '.join(required)})\n"
        )
    else:
        shortcut = ""
    if given:
        check_call = shortcut + (
            f"        _tbp_positional = [{', '.join(required)}]\n"
            "        _tbp_given, _tbp_gap = {}, False\n"
            + "".join(given)
            + "        return _tbp_check(*_tbp_positional, **_tbp_given)"
        )
    else:
        check_call = f"        return _tbp_check({', '.join(required)})"
    name = function.__name__
    source = _FAST_PATH_TEMPLATE.format(
        name=name if name.isidentifier() and not name.startswith("_tbp_") else "checked_call",
        parameters=", ".join(parameters),
        trusted=", ".join(passed_on),
        check=check_call,
    )
    namespace: dict[str, Any] = {}
    filename = f"<checked {function.__module__}.{function.__qualname__}>"
    exec(compile(source, filename, "exec"), namespace)  # noqa: S102
    # A traceback through the wrapper shows its lines, as it would a file's.
    linecache.cache[filename] = (len(source), None, source.splitlines(keepends=True), filename)
    fast = namespace["make"](function, check, trusted, _MISSING, defaults)
    functools.update_wrapper(fast, function)
    fast.__full_checks__ = getattr(check, "__full_checks__", None)
    return typing.cast("Callable[P, R]", fast)
