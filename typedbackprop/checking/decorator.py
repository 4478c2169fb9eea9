"""``checked``: the decorator that enforces a function's jaxtyping annotations on every call."""

import functools
import typing
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from beartype import beartype
from jaxtyping import jaxtyped

from typedbackprop.checking.arrays import CHECKS_ENABLED
from typedbackprop.checking.cache import caching, vouching
from typedbackprop.checking.full import check_in_one_scope, stock_check
from typedbackprop.checking.plan import NOTHING, Diagnose, make_plan

__all__ = ["checked"]

P = ParamSpec("P")
R = TypeVar("R")


@typing.overload
def checked(function: Callable[P, R], /) -> Callable[P, R]: ...


@typing.overload
def checked(
    *, vouches_for_inner_calls: bool = False, diagnose: Diagnose | None = None
) -> Callable[[Callable[P, R]], Callable[P, R]]: ...


def checked(
    function: Callable[P, R] | None = None,
    /,
    *,
    vouches_for_inner_calls: bool = False,
    diagnose: Diagnose | None = None,
) -> Callable[P, R] | Callable[[Callable[P, R]], Callable[P, R]]:
    """Check every call of ``function`` against its jaxtyping annotations.

    Use as ``@checked``, or as ``@checked(vouches_for_inner_calls=True)`` on a function that
    calls other checked functions with shapes that follow from its own arguments alone.

    Parameters
    ----------
    function
        A function whose array arguments and result are annotated with named dimensions, such as
        ``Float[Array, "out batch"]``. Dimensions are bound across all arguments and the result
        of one call.
    vouches_for_inner_calls
        Declares that the type, shape and dtype of the result, and of every argument of every
        checked call that ``function`` makes, follow from the signature of its own arguments
        (true of a network's forward and backward passes: no shape depends on a value). Then,
        once a call with some signature has passed, every check inside it included, a later
        call with the same signature runs without re-checking its inner calls or its result:
        they would see exactly the signatures that passed before. Here the signature includes
        the fields of dataclass arguments, such as the ``W`` and ``b`` of each ``Dense``.
    diagnose
        Called with a refused call's arguments by name; the advice it returns opens the error
        message (``"x looks batch-first ... pass x.T"``). It never changes a verdict.

    Returns
    -------
    Callable
        ``function`` itself when checks are off (``TYPEDBACKPROP_CHECKS=0``); otherwise a wrapper
        that raises :class:`jaxtyping.TypeCheckError` (a ``TypeError``) on any mismatch.

    Notes
    -----
    The wrapper runs ``jaxtyped(typechecker=beartype)(function)`` for every call signature it
    has not verified yet. A function whose hints hold containers (lists, dicts, sets, deques,
    ``Iterable[...]`` and every other container beartype samples) or records is checked instead
    by walking its arguments in order in one dimension scope, every item of every container
    included (beartype checks one item, often at random), then the arguments again and its
    result: the verdict does not depend on which item a random draw would have looked at.

    A signature holds each argument's type, shape and dtype (a string's value; the fields of a
    dataclass, the items of a list or a tuple; the value of a number that a ``{name}``
    dimension reads). Other containers (dicts, sets, deques, views, any other iterable) and
    arrays of Python objects have none: their calls are checked in full every time. Once a call
    with some signature has passed, later calls with the same signature run ``function`` in a
    dimension scope holding the sizes that call bound (an ``isinstance`` of a jaxtyping hint in
    the body sees them, as inside the stock check), then compare their result's signature and
    the sizes bound after the body with that call's, and, as the stock check looks at the
    arguments again after the body when there is a return hint, the arguments' signature with
    the one before the body (a body may reshape an array in place or append to a list). Any
    difference checks the arguments again and the result in the scope the body left. Functions
    whose hints inspect more than a signature holds (``Annotated`` validators, numeric
    ``Literal``, protocols, classes whose metaclass overrides ``__instancecheck__``,
    ``{len(x)}``) are always checked in full.
    """
    if function is None:
        return functools.partial(
            _checked, vouches_for_inner_calls=vouches_for_inner_calls, diagnose=diagnose
        )
    return _checked(function, vouches_for_inner_calls=vouches_for_inner_calls, diagnose=diagnose)


def _checked(
    function: Callable[P, R], *, vouches_for_inner_calls: bool, diagnose: Diagnose | None = None
) -> Callable[P, R]:
    if not CHECKS_ENABLED:
        return function
    plan = make_plan(function, diagnose)
    if plan is None:
        stock: Callable[P, R] = jaxtyped(typechecker=beartype)(function)
        return stock
    records = plan.records
    deep = records is not None  # a record's verdict depends on its fields' shapes
    if records or plan.walked or plan.walk_result:  # every item in order, one verdict
        full_check = check_in_one_scope(plan, records[1] if records else ())
    else:
        full_check = stock_check(plan)
    if not plan.cacheable:

        @functools.wraps(function)
        def check_every_call(*args: P.args, **kwargs: P.kwargs) -> R:
            return typing.cast("R", full_check(args, kwargs, NOTHING))

        return check_every_call
    if vouches_for_inner_calls:
        return vouching(function, plan, full_check)
    return caching(function, plan, full_check, deep)
