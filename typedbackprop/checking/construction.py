"""Records checked at construction: one class decorator, the same for every family's record."""

import functools
import inspect
import linecache
from collections.abc import Callable, Mapping
from typing import Any, Final, TypeVar

from typedbackprop.checking.arrays import CHECKS_ENABLED
from typedbackprop.checking.cache import trusted
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
        def packing_init(self: object, *args: object, **kwargs: object) -> None:
            initialize(self, *args, **kwargs)
            if not trusted():  # inside a vouched-for call, this check passed before
                check(*[getattr(self, name) for name in names])

        # Written with the dataclass's own parameters where they can be: no packing.
        init = _checking_init(initialize, check, names) or packing_init
        setattr(kind, "__init__", init)  # noqa: B010
        setattr(kind, "__checked_record__", True)  # noqa: B010
        return kind

    return decorate


_INIT_TEMPLATE: Final = """
def make(_tbp_initialize, _tbp_check, _tbp_trusted, _tbp_defaults):
    def __init__({parameters}):
        _tbp_initialize({arguments})
        if not _tbp_trusted():  # inside a vouched-for call, this check passed before
            _tbp_check({fields})
    return __init__
"""


def _checking_init(
    initialize: Callable[..., None], check: Callable[..., None], names: tuple[str, ...]
) -> Callable[..., None] | None:
    """The record's ``__init__`` followed by the check of its fields, written with the
    parameters of the dataclass's own ``__init__``: a gradient record built inside a
    vouched-for call (three a step of the question's network) pays no packing of its
    arguments into a tuple and a dict. ``None`` where the parameters cannot be written out
    (``*args``, ``**kwargs``, positional-only ones, an ``__init__`` that is not a function)."""
    if not inspect.isfunction(initialize) or "__signature__" in vars(initialize):
        return None
    kinds = inspect.Parameter
    parameters: list[str] = []
    arguments: list[str] = []
    defaults: dict[str, object] = {}
    signature = inspect.signature(initialize, follow_wrapped=False).parameters.values()
    for parameter in signature:
        name, kind = parameter.name, parameter.kind
        if kind not in (kinds.POSITIONAL_OR_KEYWORD, kinds.KEYWORD_ONLY) or name.startswith(
            "_tbp_"
        ):
            return None
        if kind is kinds.KEYWORD_ONLY and "*" not in parameters:
            parameters.append("*")
        if parameter.default is kinds.empty:
            parameters.append(name)
        else:  # the very default object the dataclass's ``__init__`` would take
            defaults[name] = parameter.default
            parameters.append(f"{name}=_tbp_defaults[{name!r}]")
        arguments.append(f"{name}={name}" if kind is kinds.KEYWORD_ONLY else name)
    if not arguments:
        return None
    self = arguments[0]
    source = _INIT_TEMPLATE.format(
        parameters=", ".join(parameters),
        arguments=", ".join(arguments),
        fields=", ".join(f"{self}.{name}" for name in names),
    )
    namespace: dict[str, Any] = {}
    filename = f"<checked record {initialize.__module__}.{initialize.__qualname__}>"
    exec(compile(source, filename, "exec"), namespace)  # noqa: S102
    # A traceback through it shows its lines, as it would a file's.
    linecache.cache[filename] = (len(source), None, source.splitlines(keepends=True), filename)
    function: Callable[..., None] = namespace["make"](initialize, check, trusted, defaults)
    functools.update_wrapper(function, initialize)
    return function


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
