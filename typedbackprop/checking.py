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
"""

import functools
import os
import typing
from collections.abc import Callable, Hashable
from typing import Any, Final, ParamSpec, TypeVar

import numpy as np
from beartype import beartype
from jaxtyping import jaxtyped
from numpy.typing import NDArray

__all__ = ["Array", "IntArray", "CHECKS_ENABLED", "checked"]

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


def _signature(value: object) -> Hashable:
    """What a type check of ``value`` can depend on, or ``None`` if that is not known."""
    kind = type(value)
    if isinstance(value, np.ndarray):
        return (kind, value.shape, value.dtype)
    if kind is str or kind is bool or value is None:
        return (kind, value)  # a Literal annotation looks at the value itself
    if kind is int or kind is float or kind is complex:
        return kind
    if kind is list or kind is tuple:
        items = tuple(_signature(item) for item in typing.cast("list[object]", value))
        return None if None in items else (kind, items)
    if kind is dict or kind is set or kind is frozenset:
        return None  # contents may matter and are not cheap to summarise: always check fully
    return typing.cast(Hashable, kind)


def _call_signature(args: tuple[object, ...], kwargs: dict[str, object]) -> Hashable:
    positional = tuple(_signature(arg) for arg in args)
    if None in positional:
        return None
    if not kwargs:
        return positional
    keywords = tuple((name, _signature(value)) for name, value in kwargs.items())
    if any(signature is None for _, signature in keywords):
        return None
    return (positional, keywords)


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


def checked(function: Callable[P, R]) -> Callable[P, R]:
    """Check every call of ``function`` against its jaxtyping annotations.

    Parameters
    ----------
    function
        A function whose array arguments and result are annotated with named dimensions, such as
        ``Float[Array, "out batch"]``. Dimensions are bound across all arguments and the result
        of one call.

    Returns
    -------
    Callable
        ``function`` itself when checks are off (``TYPEDBACKPROP_CHECKS=0``); otherwise a wrapper
        that raises :class:`jaxtyping.TypeCheckError` (a ``TypeError``) on any mismatch.

    Notes
    -----
    The wrapper runs ``jaxtyped(typechecker=beartype)(function)`` for every call signature it
    has not verified yet. A signature is the tuple of each argument's type, shape and dtype (and
    a string's value); once a call with that signature has passed, with a result of signature
    ``r``, later calls with the same signature run ``function`` directly and compare their
    result's signature to ``r``. Any difference falls back to the full check. Functions whose
    hints inspect a number's value (``Annotated`` validators, numeric ``Literal``) are always
    checked in full.
    """
    if not CHECKS_ENABLED:
        return function
    fully_checked: Callable[P, R] = jaxtyped(typechecker=beartype)(function)
    if not _signature_decides_verdict(function):
        return fully_checked
    verified: dict[Hashable, Hashable] = {}

    @functools.wraps(function)
    def check_then_call(*args: P.args, **kwargs: P.kwargs) -> R:
        call = _call_signature(args, kwargs)
        if call is not None and call in verified:
            result = function(*args, **kwargs)
            if _signature(result) == verified[call]:
                return result
        result = fully_checked(*args, **kwargs)
        returned = _signature(result)
        if call is not None and returned is not None:
            if len(verified) >= _MAX_SIGNATURES_PER_FUNCTION:
                verified.clear()
            verified[call] = returned
        return result

    return check_then_call
