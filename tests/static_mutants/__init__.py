"""One-line shape mistakes applied to copies of the math, each of which Pyrefly must flag.

A :class:`Mutant` names a function of a module in ``typedbackprop/nn``, one of its lines exactly as
written there, and the same line with a classic mistake (a missing transpose, swapped factors, a
sum over the wrong axis, a bias broadcast along the wrong axis). ``tests/test_static_shapes.py``
writes each mutant as a copy of its module with that one line changed, runs
``typedbackprop check-shapes`` once over all the copies, and requires a finding about shapes
inside the changed function of every copy, while the package itself is clean. It also requires a
mutant for every function that declares its dimensions, so no declaration goes untested.

Each family's mutants live in a module of this package named after the family's module
(``affine.py`` for ``typedbackprop/nn/affine.py``), as a list named ``MUTANTS``.
"""

import importlib
import pkgutil
from dataclasses import dataclass

__all__ = ["Mutant", "all_mutants"]


@dataclass(frozen=True)
class Mutant:
    """One line of one math function, and the same line with a classic shape mistake."""

    module: str
    """The module's path from the repository root: ``"typedbackprop/nn/affine.py"``."""
    function: str
    """The function whose body holds the line (it must occur there exactly once)."""
    original: str
    """The line as written in the module, without its indentation."""
    mutated: str
    """The line with the mistake, without its indentation."""
    mistake: str
    """What a person got wrong, in words: ``"grad_W without the transpose"``."""
    silent_at_runtime: bool = False
    """Whether some sizes let the mistake run without a runtime error *and* give a wrong
    result (``inp == batch`` for ``grad_z @ a_prev``), as its author checked by running it."""


def all_mutants() -> list[Mutant]:
    """Every family's ``MUTANTS``, in module order."""
    mutants: list[Mutant] = []
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda info: info.name):
        mutants += importlib.import_module(f"{__name__}.{info.name}").MUTANTS
    return mutants
