"""What the gradient check accepts: float64 NumPy arrays, anything else refused with its fix.

Each refusal says why that kind of value cannot be checked and what to pass instead: a list
converts with ``np.asarray``; a float32 array casts, at a cost in precision it names; a complex
array does *not* cast (``.astype(np.float64)`` would drop the imaginary part); an integer array
has no derivative at all.
"""

import inspect
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from typedbackprop.checking import Array

__all__ = ["require_float64", "input_names", "require_settings"]


def _refusal(label: str, value: object) -> str | None:
    """Why the input called ``label`` cannot be checked, or ``None`` if it is a float64 array."""
    start = f"gradcheck needs float64 arrays; {label} is"
    if isinstance(value, np.ndarray):
        dtype = value.dtype
        if dtype == np.float64:
            return None
        if dtype.kind == "c":
            return (
                f"{start} {dtype}. gradcheck checks real functions of real inputs, and "
                ".astype(np.float64) would drop the imaginary part: pass the real and the "
                "imaginary part as two float64 inputs, and let forward rebuild "
                "real + 1j * imaginary"
            )
        if dtype.kind in "iub":
            return (
                f"{start} {dtype}, which has no derivative: a step of eps cannot be added to it. "
                "An index or a label is not differentiated: close over it in forward and "
                "backward instead of passing it; data stored as integers: cast with "
                ".astype(np.float64)"
            )
        if dtype.kind == "f" and dtype.itemsize < 8:
            return (
                f"{start} {dtype}. {dtype} central differences are accurate to about 1e-3 at "
                "best, too coarse for the check: cast with .astype(np.float64)"
            )
        return f"{start} {dtype}: cast with .astype(np.float64)"
    if isinstance(value, list | tuple):
        return (
            f"{start} a {type(value).__name__}, not an array: convert it with "
            "np.asarray(value, dtype=np.float64)"
        )
    if isinstance(value, float | int | complex | np.number):
        return (
            f"{start} a number ({type(value).__name__}), not an array: pass "
            "np.array(value, dtype=np.float64), a 0-d array that can be perturbed in place"
        )
    return (
        f"{start} {type(value).__name__}: pass each float64 array it holds as an input of its "
        "own, and rebuild it inside forward and backward"
    )


def require_float64(inputs: Sequence[object], names: Sequence[str] | None = None) -> list[Array]:
    """Return ``inputs`` as a list of float64 arrays, or raise ``TypeError`` saying why not.

    Parameters
    ----------
    inputs
        What the caller passed as the inputs to differentiate.
    names
        What to call each input in a message (default: ``input 0``, ``input 1``, ...).

    Returns
    -------
    list of Array
        The same arrays (not copies).

    Raises
    ------
    TypeError
        For the first input that is not a float64 NumPy array, with what to pass instead.
    """
    arrays: list[Array] = []
    for index, value in enumerate(inputs):
        refusal = _refusal(names[index] if names is not None else f"input {index}", value)
        if refusal is not None:
            raise TypeError(refusal)
        arrays.append(value)  # type: ignore[arg-type]  # _refusal proved it a float64 array
    return arrays


def input_names(
    forward: Callable[..., Any], count: int, names: Sequence[str] | None = None
) -> list[str]:
    """The report's name for each input: ``names``, else ``forward``'s parameter names.

    A ``forward`` without an introspectable signature, or with fewer named parameters than
    inputs (``*args``), gives ``input0, input1, ...``.
    """
    if names is not None:
        chosen = list(names)
        if len(chosen) != count:
            raise ValueError(f"{len(chosen)} names for {count} inputs: give one name per input")
        return chosen
    try:
        parameters = [
            parameter.name
            for parameter in inspect.signature(forward).parameters.values()
            if parameter.kind
            in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
        ]
    except (TypeError, ValueError):
        parameters = []
    if len(parameters) >= count:
        return parameters[:count]
    return [f"input{i}" for i in range(count)]


def require_settings(
    *,
    eps: float,
    rtol: float,
    atol: float,
    nondet_tol: float,
    samples: int | None,
    projections: int,
) -> None:
    """Raise ``ValueError`` for a step, a tolerance or a count that cannot mean anything."""
    if not eps > 0:
        raise ValueError(f"eps must be positive, got {eps}")
    for name, value in (("rtol", rtol), ("atol", atol), ("nondet_tol", nondet_tol)):
        if not value >= 0:
            raise ValueError(f"{name} must be at least 0, got {value}")
    if samples is not None and samples < 1:
        raise ValueError(f"samples must be at least 1, got {samples}")
    if projections < 1:
        raise ValueError(f"projections must be at least 1, got {projections}")
