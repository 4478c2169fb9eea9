"""What Pyrefly's static shape checking reads, and what run time sees in its place.

A math function declares its dimension names for Pyrefly with ``@static_jaxtyping("out inp
batch")``; Pyrefly then follows every ``@``, ``.T``, broadcast and reduction of its body by
*name*, before anything runs, where the runtime checks compare sizes. A function whose shapes
Pyrefly cannot follow (an ``np.einsum``, a reshape to a product of dimensions, fancy indexing)
says so with ``@runtime_shapes_only("why")`` instead: its shapes are checked on every call only.

Pyrefly recognises the declaration only as ``shape_extensions.static_jaxtyping`` (package
``pyrefly-shape-extensions``), which is not a dependency of typedbackprop: it declares Python
>= 3.12, and importing it patches PyTorch. So the real one is imported only where
``sys.platform`` is ``"typedbackprop-shapes"``, the platform ``typedbackprop check-shapes``
configures Pyrefly with. Every other reader takes the other branch: Python itself (a declaration
that records its names on the function and returns it unchanged), mypy (a typed decorator, so
the public signatures keep their types) and Pyrefly without that setting (no shape checking of
the package, as before). :data:`typedbackprop.checking.Array` is chosen the same way: Pyrefly's
shape stubs give ``np.ndarray`` a shape argument, which ``NDArray[np.floating[Any]]`` hides.
"""

import sys
from collections.abc import Callable
from typing import Final, TypeVar

__all__ = ["SHAPES_PLATFORM", "static_jaxtyping", "runtime_shapes_only"]

F = TypeVar("F", bound=Callable[..., object])

SHAPES_PLATFORM: Final = "typedbackprop-shapes"
"""The ``sys.platform`` under which checkers see Pyrefly's declarations (spelt out literally
in each ``if``, which is the form checkers evaluate)."""

DECLARATION_ATTRIBUTE: Final = "__shape_declaration__"
"""Where a declared function keeps its dimension names at run time (``"out inp batch"``)."""

RUNTIME_ONLY_ATTRIBUTE: Final = "__runtime_shapes_only__"
"""Where a function whose shapes only the runtime checks follow keeps the reason."""


def runtime_shapes_only(reason: str) -> Callable[[F], F]:
    """Mark a function whose shapes Pyrefly cannot follow: checked at run time only, and why.

    Parameters
    ----------
    reason
        What Pyrefly cannot follow, in one sentence (``"np.einsum returns no shape"``); the
        docs page of statically checked functions lists it.
    """

    def mark(function: F) -> F:
        setattr(function, RUNTIME_ONLY_ATTRIBUTE, reason)
        return function

    return mark


if sys.platform == "typedbackprop-shapes":  # Pyrefly, as `typedbackprop check-shapes` sets it
    from shape_extensions import static_jaxtyping as static_jaxtyping
else:
    # The quoted return type keeps griffe (the API pages) from resolving the import above.
    def static_jaxtyping(declaration: str) -> "Callable[[F], F]":
        """Declare a function's dimension names for Pyrefly; at run time, only record them.

        Parameters
        ----------
        declaration
            The dimension names the function's annotations use, separated by spaces
            (``"out inp batch"``; ``*spatial`` for a variadic group).
        """

        def declare(function: F) -> F:
            setattr(function, DECLARATION_ATTRIBUTE, declaration)
            return function

        return declare
