"""The container walk: every item of every container checked, in order, in the open scope.

beartype checks one item of a list, a dict, a set (often at random); a hint whose verdict would
depend on that draw is walked here instead, item by item, so that the verdict does not.
"""

import collections.abc as abc
import types
import typing
from collections.abc import Mapping
from typing import Any, Final

from beartype.door import die_if_unbearable, is_bearable
from beartype.roar import BeartypeCallHintViolation

from typedbackprop.checking.diagnosis import MAPPING_ORIGINS, SEQUENCE_ORIGINS, mapping_hints

__all__ = ["UNIONS", "Refused", "check_fully", "samples"]


UNIONS: Final[tuple[object, ...]] = (typing.Union, types.UnionType)


def samples(hint: object) -> bool:
    """Whether beartype checks only some items of a value of this hint: lists, dicts, sets and
    every other container it knows (``SEQUENCE_ORIGINS``, ``MAPPING_ORIGINS``)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        return True
    if args and (origin in SEQUENCE_ORIGINS or origin in MAPPING_ORIGINS):
        return any(arg is not Any and arg is not object for arg in args)
    return any(samples(arg) for arg in args)


# --- checking every item -----------------------------------------------------------------------


class Refused(Exception):
    """A value that the stock check passed (it saw another item) and a full walk refuses."""

    def __init__(self, label: str, reason: str) -> None:
        super().__init__(f"{label}: {reason}")
        self.label, self.reason = label, reason


def _reason(error: BeartypeCallHintViolation) -> str:
    """Beartype's explanation without the value's repr (``"the size of dimension ..."``)."""
    message = str(error)
    _, separator, tail = message.rpartition(", as ")
    return tail if separator else message


def check_fully(label: str, value: object, hint: object) -> None:
    """Check ``value`` in the dimension scope now open, every item of every container included.

    Items are checked in order, so the verdict (and which error) does not depend on beartype's
    random choice of item. Raises ``Refused`` naming the first value that fails.
    """
    if not samples(hint):
        _check_one(label, value, hint)
        return
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in UNIONS:
        for member in args:
            if samples(member):
                if _is_instance(value, typing.get_origin(member)):
                    check_fully(label, value, member)
                    return
            elif is_bearable(value, member):
                return
        _check_one(label, value, hint)  # nothing fits: beartype says why
    elif origin is typing.Annotated:
        check_fully(label, value, args[0])
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
            check_fully(f"{label}[{index}]", item, item_hint)
    elif origin in MAPPING_ORIGINS:
        key_hint, value_hint = mapping_hints(origin, args)
        for key, item in typing.cast("Mapping[object, object]", value).items():
            check_fully(f"a key of {label}", key, key_hint)
            check_fully(f"{label}[{key!r}]", item, value_hint)
    elif isinstance(value, abc.Collection) and not isinstance(value, abc.Iterator):
        # a sequence, a set, a deque, any collection an ``Iterable[...]`` hint is given: one
        # hint for every item (an iterator, or an iterable that is no collection, might be used
        # up by a walk: beartype's own check decides)
        for index, item in enumerate(value):
            check_fully(f"{label}[{index}]", item, args[0])
    else:
        _check_one(label, value, hint)


def _is_instance(value: object, origin: object) -> bool:
    return not isinstance(origin, type) or isinstance(value, origin)


def _check_one(label: str, value: object, hint: object) -> None:
    try:
        die_if_unbearable(value, hint)
    except BeartypeCallHintViolation as error:
        raise Refused(label, _reason(error)) from None
