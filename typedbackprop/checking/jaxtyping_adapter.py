"""The one module that reaches into jaxtyping's private internals (``jaxtyping._storage``).

:func:`~typedbackprop.checking.checked` remembers the verdict of a call signature, and runs a
later call of that signature in a dimension scope holding the sizes the first call bound, as the
stock check would. That scope lives on jaxtyping's private memo stack; everything that reads or
writes it is here, so that a jaxtyping upgrade that changes it meets one module:

- :data:`JAXTYPING_WRITTEN_FOR`: the jaxtyping versions this adapter was written and tested for
  (``pyproject.toml`` bounds the dependency to them);
- :data:`SCOPES_REOPEN`: whether the fast path may be used: the version is one of those, and a
  probe finds the memo stack as :class:`ReopenedScope` expects. Otherwise every call is checked
  in full (correct, about 8 times slower), and ``tests/test_checking.py`` fails, saying why.
"""

import contextlib
from collections.abc import Iterator, Mapping
from typing import Any, Final

import jaxtyping
import jaxtyping._storage as _jaxtyping_storage  # the memo stack the stock check uses
from jaxtyping import jaxtyped

__all__ = [
    "JAXTYPING_WRITTEN_FOR",
    "JAXTYPING_VERSION_KNOWN",
    "SCOPES_REOPEN",
    "Memo",
    "ReopenedScope",
    "bindings",
    "fits",
    "memo_now",
    "memo_stack",
    "scope",
    "storage",
    "written_for",
]

JAXTYPING_WRITTEN_FOR: Final = ("0.3",)
"""The ``major.minor`` versions of jaxtyping whose memo stack this module was written against."""


def written_for(version: str) -> bool:
    """Whether this adapter was written for jaxtyping ``version`` (``"0.3.11"``: yes)."""
    return ".".join(version.split(".")[:2]) in JAXTYPING_WRITTEN_FOR


JAXTYPING_VERSION_KNOWN: Final = written_for(jaxtyping.__version__)
"""Whether the installed jaxtyping is one of :data:`JAXTYPING_WRITTEN_FOR`."""


Memo = tuple[dict[str, Any], dict[str, Any], dict[str, Any]]
"""What jaxtyping's dimension scope holds: the sizes bound to single dimensions, the shapes
bound to variadic ones, the structures bound to PyTrees (the call's arguments aside)."""

storage: Any = getattr(_jaxtyping_storage, "_shape_storage", None)
_get_shape_memo: Any = getattr(_jaxtyping_storage, "get_shape_memo", None)


def memo_now() -> Memo:
    """A copy of the sizes bound in the dimension scope now open."""
    single, variadic, pytree, _ = _get_shape_memo()
    return dict(single), dict(variadic), dict(pytree)


def memo_stack() -> list[Any]:
    """jaxtyping's stack of dimension scopes, for this thread."""
    try:
        stack: list[Any] = storage.memo_stack
    except AttributeError:
        stack = storage.memo_stack = []
    return stack


class ReopenedScope(tuple[Any, ...]):
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
        arguments = {} if plan is None else plan.bind_arguments(args, kwargs)
        memo = (single.copy(), variadic.copy(), pytree.copy(), arguments)
        stack = memo_stack()
        if stack and stack[-1] is self:
            stack[-1] = memo
        return iter(memo)


def _scopes_reopen() -> bool:
    """Whether jaxtyping reads its scopes as ``ReopenedScope`` expects: else no verdict is
    remembered. Never on a jaxtyping version this module was not written for."""
    if not JAXTYPING_VERSION_KNOWN or storage is None or _get_shape_memo is None:
        return False
    probe = ReopenedScope((None, ({"n": 1}, {}, {}), (), {}))
    stack = memo_stack()
    stack.append(probe)
    try:
        single = _get_shape_memo()[0]  # made real, and the real one left on the stack
        return bool(single == {"n": 1} and stack[-1] is not probe and stack[-1][0] is single)
    except Exception:
        return False
    finally:
        stack.pop()


SCOPES_REOPEN: Final = _scopes_reopen()
"""Whether a remembered call can run its body in a scope holding the sizes its signature binds
(see ``ReopenedScope``). Without that, every call is checked in full."""


@contextlib.contextmanager
def scope(arguments: dict[str, Any]) -> Iterator[None]:
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


def bindings() -> str | None:
    """The sizes bound so far in the open dimension scope, as the stock message ends with them."""
    get_shape_memo = getattr(_jaxtyping_storage, "get_shape_memo", None)
    if get_shape_memo is None:
        return None
    single, variadic, *_ = get_shape_memo()
    pieces = [f"{name}={size}" for name, size in single.items() if not name.startswith("~~")]
    pieces += [f"*{name}={shape}" for name, (_, shape) in variadic.items()]
    return f"Bound so far: {' '.join(pieces)}" if pieces else None


def fits(
    value: object,
    hint: type,
    sizes: Mapping[str, int],
    shapes: Mapping[str, tuple[bool, tuple[int, ...]]],
    arguments: Mapping[str, object],
) -> tuple[bool, dict[str, int], dict[str, tuple[bool, tuple[int, ...]]]]:
    """Ask jaxtyping whether ``value`` fits an array ``hint`` given the sizes bound so far.

    ``sizes`` are the single dimensions bound so far, ``shapes`` the variadic ones as
    ``(broadcastable, shape)``, ``arguments`` the call's (``{size}`` dimensions read them).
    Returns the verdict, and the sizes and shapes bound after it (the ones ``value`` bound
    added): jaxtyping's own rules decide, broadcasting and ``*name`` included.
    """
    with scope(dict(arguments)):
        single, variadic, *_ = _get_shape_memo()
        single.update(sizes)
        variadic.update(shapes)
        verdict = isinstance(value, hint)
        single, variadic, *_ = _get_shape_memo()
        return verdict, dict(single), dict(variadic)
