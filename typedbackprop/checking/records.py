"""Records: dataclasses whose fields carry named dimensions, checked in the scope of a call.

A layer's parameters and the cache its forward pass saves are records. A checked function that
takes or returns one checks its fields in the *same* dimension scope as its arguments and
result (see :mod:`~typedbackprop.checking.full`); a record checked at its construction checks
its fields as one checked call (:mod:`~typedbackprop.checking.construction`).
"""

import dataclasses
import typing
from collections.abc import Iterator, Mapping

from typedbackprop.checking.diagnosis import Step, is_array_hint

__all__ = [
    "RecordFields",
    "is_record",
    "is_record_type",
    "record_fields",
    "record_steps",
    "records_of",
    "returned_records",
]


RecordFields = tuple[tuple[str, object], ...]
_record_fields_cache: dict[type, RecordFields] = {}


def _mentions_array(hint: object) -> bool:
    return is_array_hint(hint) or any(_mentions_array(arg) for arg in typing.get_args(hint))


def is_record_type(hint: object) -> bool:
    return isinstance(hint, type) and bool(record_fields(hint))


def record_fields(kind: type) -> RecordFields:
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
    fields: RecordFields = ()
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


def records_of(
    hints: Mapping[str, object], returns: object
) -> tuple[tuple[str, ...], tuple[int, ...]] | None:
    """Which parameters of a function are records, and where its result holds records.

    The second item lists positions in a tuple result (``-1``: the result itself is a record).
    ``None`` when neither arguments nor result are records: the stock check applies.
    """
    parameters = tuple(name for name, hint in hints.items() if is_record_type(hint))
    positions: tuple[int, ...] = ()
    if is_record_type(returns):
        positions = (-1,)
    elif typing.get_origin(returns) is tuple:
        positions = tuple(
            index for index, hint in enumerate(typing.get_args(returns)) if is_record_type(hint)
        )
    if not parameters and not positions:
        return None
    return parameters, positions


def record_steps(label: str, record: object) -> Iterator[Step]:
    """Every dimension-carrying field of ``record``, nested records' fields included."""
    for name, hint in record_fields(type(record)):
        value = getattr(record, name)
        where = f"{label}.{name}"
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            yield from record_steps(where, value)
        else:
            yield where, value, hint


def is_record(value: object) -> bool:
    return dataclasses.is_dataclass(value) and not isinstance(value, type)


def returned_records(result: object, positions: tuple[int, ...]) -> Iterator[tuple[str, object]]:
    if positions == (-1,):
        yield "result", result
        return
    items = typing.cast("tuple[object, ...]", result)
    for index in positions:
        if isinstance(items, tuple) and index < len(items):
            yield f"result[{index}]", items[index]
