"""Records checked at construction: one class decorator, the same for every family's record."""

import functools
import inspect
from collections.abc import Callable, Mapping
from typing import TypeVar

from typedbackprop.checking.arrays import CHECKS_ENABLED
from typedbackprop.checking.cache import trust
from typedbackprop.checking.decorator import checked
from typedbackprop.checking.records import record_fields

__all__ = ["checked_record"]


RecordType = TypeVar("RecordType", bound=type)


def checked_record(
    diagnose: Callable[[Mapping[str, object]], str | None] | None = None,
) -> Callable[[RecordType], RecordType]:
    """Check a record's fields at its construction: the one way every family's record is checked.

    Use above ``@dataclass``::

        @checked_record()
        @dataclass(frozen=True, slots=True)
        class Dense:
            W: Float[Array, "out inp"]
            b: Float[Array, " out"]

    Creating a ``Dense`` then checks its fields as one checked call of a function taking them
    would (named ``Dense``, in the record's module): ``out`` is bound across ``W`` and ``b``, a
    field that is a record has its fields checked in the same scope, and a signature of fields
    that passed before is recognised by one look-up. The class's own ``__post_init__`` (its
    settings) runs first. Inside a call that vouches for its inner calls, nothing is checked.
    With checks off (``TYPEDBACKPROP_CHECKS=0``) the class is returned unchanged.

    Parameters
    ----------
    diagnose
        Called with the fields by name when one is refused; the advice it returns opens the
        message (``"W looks transposed ..."``).

    Returns
    -------
    Callable
        The class decorator.
    """

    def decorate(kind: RecordType) -> RecordType:
        if not CHECKS_ENABLED:
            return kind
        check = checked(diagnose=diagnose)(_fields_function(kind))
        names = tuple(name for name, _ in record_fields(kind))
        initialize: Callable[..., None] = getattr(kind, "__init__")  # noqa: B009

        @functools.wraps(initialize)
        def __init__(self: object, *args: object, **kwargs: object) -> None:
            initialize(self, *args, **kwargs)
            if not trust.depth:  # inside a vouched-for call, this check passed before
                check(*[getattr(self, name) for name in names])

        setattr(kind, "__init__", __init__)  # noqa: B010
        setattr(kind, "__checked_record__", True)  # noqa: B010
        return kind

    return decorate


def _fields_function(kind: type) -> Callable[..., None]:
    """A function of the record's dimension-carrying fields, annotated as they are."""

    def fields(*values: object) -> None:
        """Bind the dimensions of the record's fields in one scope."""

    parameters = [
        inspect.Parameter(name, inspect.Parameter.POSITIONAL_ONLY, annotation=hint)
        for name, hint in record_fields(kind)
    ]
    fields.__signature__ = inspect.Signature(parameters, return_annotation=None)  # type: ignore[attr-defined]
    fields.__annotations__ = {name: hint for name, hint in record_fields(kind)} | {"return": None}
    fields.__name__ = kind.__name__
    fields.__qualname__ = kind.__qualname__
    fields.__module__ = kind.__module__
    return fields
