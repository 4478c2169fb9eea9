"""What the tests of the sequence families share: distinct sizes, and records as flat arrays."""

import dataclasses
from typing import Any

import numpy as np
from hypothesis import strategies as st


def distinct_sizes(count: int, low: int = 1, high: int = 7) -> st.SearchStrategy[list[int]]:
    """``count`` different sizes from ``low`` to ``high``: no two dimensions of a draw agree,
    so a transpose or a sum over the wrong axis changes a shape, or fails."""
    return st.lists(st.integers(low, high), min_size=count, max_size=count, unique=True)


def leaves(record: Any, prefix: str = "") -> list[tuple[str, np.ndarray]]:
    """Every array in a record, records inside it included, with its dotted path."""
    found = []
    for field in dataclasses.fields(record):
        value = getattr(record, field.name)
        if isinstance(value, np.ndarray):
            found.append((prefix + field.name, value))
        elif dataclasses.is_dataclass(value):
            found += leaves(value, f"{prefix}{field.name}.")
    return found


def with_leaves(record: Any, arrays: list[np.ndarray]) -> Any:
    """``record`` with its arrays replaced, in the order of :func:`leaves`; settings kept."""
    remaining = list(arrays)

    def rebuild(record: Any) -> Any:
        changes = {}
        for field in dataclasses.fields(record):
            value = getattr(record, field.name)
            if isinstance(value, np.ndarray):
                changes[field.name] = remaining.pop(0)
            elif dataclasses.is_dataclass(value):
                changes[field.name] = rebuild(value)
        return dataclasses.replace(record, **changes)

    rebuilt = rebuild(record)
    assert not remaining
    return rebuilt
