"""Walk parameter records that hold records: the arrays of a layer, however it is composed.

A composite layer is made of layers: a transformer block's record holds its layer norms, its
attention and its feed-forward network; a recurrent layer's record holds its cell. The tools
that treat every parameter alike (the optimizers, training, checkpoints, gradient checks) see a
layer through the helpers here, so they never need to know how it is composed:

- :func:`leaves`: every array of a record, by its dotted path (``"attention.W_query"``);
- :func:`map_leaves`: the record of the same type with every array replaced;
- :func:`replace_leaves`: the record with the arrays at some paths replaced.

A field is walked when it holds an array, a record, or a tuple of those; anything else (a slope,
a stride, an activation's name) is a setting and is kept as it is.
"""

import dataclasses
from collections.abc import Callable, Iterator, Mapping
from typing import Any, TypeVar

import numpy as np

from typedbackprop.checking import Array

__all__ = ["leaves", "map_leaves", "replace_leaves"]

RecordT = TypeVar("RecordT")


def _is_record(value: object) -> bool:
    return dataclasses.is_dataclass(value) and not isinstance(value, type)


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _walk(value: object, path: str) -> Iterator[tuple[str, Array]]:
    if isinstance(value, np.ndarray):
        yield path, value
    elif _is_record(value):
        for field in dataclasses.fields(value):  # type: ignore[arg-type]
            yield from _walk(getattr(value, field.name), _join(path, field.name))
    elif isinstance(value, tuple):
        for index, item in enumerate(value):
            yield from _walk(item, _join(path, str(index)))


def leaves(record: object) -> dict[str, Array]:
    """Every array of ``record``, nested records and tuples of them included, by dotted path.

    Parameters
    ----------
    record
        A parameter record (or a gradient record of the same type).

    Returns
    -------
    dict
        ``{"W": ..., "b": ...}`` for a :class:`~typedbackprop.nn.affine.Dense`; for a record
        that holds records, the path through them (``"attention.W_query"``), in declaration
        order, depth first. Empty for a layer without parameters.
    """
    return dict(_walk(record, ""))


def _rebuild(function: Callable[..., Array], value: Any, others: tuple[Any, ...], path: str) -> Any:
    """``value`` rebuilt with each array ``θ`` at ``path`` replaced by
    ``function(path, θ, *others at path)``."""
    if isinstance(value, np.ndarray):
        return function(path, value, *others)
    if _is_record(value):
        changes = {}
        for field in dataclasses.fields(value):
            inner = getattr(value, field.name)
            if isinstance(inner, np.ndarray | tuple) or _is_record(inner):
                changes[field.name] = _rebuild(
                    function,
                    inner,
                    tuple(getattr(other, field.name) for other in others),
                    _join(path, field.name),
                )
        return dataclasses.replace(value, **changes)
    if isinstance(value, tuple):
        for other in others:
            if not isinstance(other, tuple) or len(other) != len(value):
                raise ValueError(f"{path or 'the record'}: tuples of different lengths")
        return tuple(
            _rebuild(
                function, item, tuple(other[index] for other in others), _join(path, str(index))
            )
            for index, item in enumerate(value)
        )
    return value


def map_leaves(function: Callable[..., Array], record: RecordT, *others: Any) -> RecordT:
    """``record`` with each array ``θ`` replaced by ``function(θ, r₁.θ, r₂.θ, ...)``.

    Parameters
    ----------
    function
        Called once per array of ``record``, with the array at the same path in each of
        ``others`` (records of the same type: a gradient, an optimizer's velocity).
    record
        A parameter record, possibly holding records.
    others
        Records of ``record``'s type, read at the same paths.

    Returns
    -------
    record
        A new record of the same type (nested records rebuilt too); settings are kept, and
        ``record`` itself is not modified.
    """
    for other in others:
        if type(other) is not type(record):
            raise TypeError(
                f"map_leaves over a {type(record).__name__} was given a {type(other).__name__}"
            )
    return _rebuild(  # type: ignore[no-any-return]
        lambda _, value, *at_path: function(value, *at_path), record, others, ""
    )


def replace_leaves(record: RecordT, arrays: Mapping[str, Array]) -> RecordT:
    """``record`` with the arrays at some of its paths replaced, the others kept.

    Parameters
    ----------
    record
        A parameter record, possibly holding records.
    arrays
        New arrays by dotted path, as :func:`leaves` names them (``{"attention.W_query": ...}``).

    Returns
    -------
    record
        A new record of the same type (nested records rebuilt too); ``record`` itself is not
        modified.

    Raises
    ------
    KeyError
        If a path names no array of ``record``.
    """
    if unknown := sorted(set(arrays) - set(leaves(record))):
        raise KeyError(
            f"{unknown} name no array of the {type(record).__name__}; its arrays are "
            f"{list(leaves(record))}"
        )
    return _rebuild(  # type: ignore[no-any-return]
        lambda path, value: arrays.get(path, value), record, (), ""
    )
