"""Hypothesis strategies shared by the tests of the sequence families (embedding to attention)."""

from hypothesis import strategies as st


def distinct_sizes(count: int, low: int = 1, high: int = 7) -> st.SearchStrategy[list[int]]:
    """``count`` different sizes from ``low`` to ``high``: no two dimensions of a draw agree,
    so a transpose or a sum over the wrong axis changes a shape, or fails."""
    return st.lists(st.integers(low, high), min_size=count, max_size=count, unique=True)
