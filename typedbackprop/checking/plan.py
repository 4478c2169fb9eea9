"""The plan: what one function's hints ask of every check of it, worked out once."""

import dataclasses
import inspect
import re
import threading
import typing
from abc import ABCMeta
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Final

from typedbackprop.checking.diagnosis import is_array_hint
from typedbackprop.checking.jaxtyping_adapter import SCOPES_REOPEN, Memo
from typedbackprop.checking.records import record_fields, records_of
from typedbackprop.checking.walk import samples

__all__ = ["NOTHING", "NO_HINT", "CallState", "Diagnose", "Plan", "array_hints", "make_plan"]


Diagnose = Callable[[Mapping[str, object]], str | None]
"""Given a failed call's arguments by name, advice to open the error message with, or ``None``."""

NOTHING: Final = object()
NO_HINT: Final = object()


class CallState(threading.local):
    """Per thread and function: a result to check without running the body again; the last
    result the body gave (a failed result check explains it); the exception the body raised;
    the sizes bound before and after the body of the last full check that ran it."""

    replay: object = NOTHING
    result: object = None
    from_body: BaseException | None = None
    scope: tuple[Memo, Memo] | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class Plan:
    """What the checks of one function need to know about its hints, worked out once."""

    function: Callable[..., Any]
    qualname: str
    name: str
    """``module.qualname``, as jaxtyping names the function."""
    signature: inspect.Signature
    """The function's signature with every annotation resolved."""
    hints: dict[str, object]
    """Each annotated parameter's hint, in the signature's order."""
    returns: object
    """The return hint, or ``NO_HINT``."""
    walked: tuple[str, ...]
    """The parameters whose hints hold a container beartype samples (a list, a dict, a set,
    ``Iterable[...]``): their every item is checked."""
    walk_result: bool
    rechecks_arguments: bool
    """Whether the check looks at the arguments again after the body: the stock check does when
    there is a return hint; lists, dicts and sets are looked at again in any case."""
    cacheable: bool
    """False when a verdict may depend on more than the signature (a validator, a protocol)."""
    read_by_value: tuple[tuple[str, int | None, object], ...]
    """``(name, position, default)`` of each argument a ``{name}`` dimension reads."""
    records: tuple[tuple[str, ...], tuple[int, ...]] | None
    """The record parameters and the positions of records in the result (see ``records_of``);
    ``None`` when there are none: the stock check applies."""
    diagnose: Diagnose | None
    state: CallState

    def bind_arguments(self, args: tuple[object, ...], kwargs: dict[str, object]) -> dict[str, Any]:
        """The call's arguments by name, defaults included."""
        bound = self.signature.bind(*args, **kwargs)
        bound.apply_defaults()
        return dict(bound.arguments)


def make_plan(function: Callable[..., Any], diagnose: Diagnose | None) -> Plan | None:
    """The plan for ``function``, or ``None`` if its hints cannot be resolved."""
    try:
        hints = typing.get_type_hints(function, include_extras=True)
        signature = inspect.signature(function)
    except Exception:  # unresolvable hints: let the stock check report them on every call
        return None
    returns = hints.pop("return", NO_HINT)
    parameters = [
        parameter.replace(annotation=hints[parameter.name])
        if parameter.name in hints
        else parameter
        for parameter in signature.parameters.values()
    ]
    signature = signature.replace(
        parameters=parameters,
        return_annotation=inspect.Signature.empty if returns is NO_HINT else returns,
    )
    ordered = {p.name: hints[p.name] for p in parameters if p.name in hints}
    every_hint = [*ordered.values(), *([] if returns is NO_HINT else [returns])]
    read_by_value, readable = _arguments_read(every_hint, signature)
    module = getattr(function, "__module__", "<unknown>")
    qualname = getattr(function, "__qualname__", repr(function))
    walked = tuple(name for name, hint in ordered.items() if samples(hint))
    return Plan(
        function=function,
        qualname=qualname,
        name=f"{module}.{qualname}",
        signature=signature,
        hints=ordered,
        returns=returns,
        walked=walked,
        walk_result=returns is not NO_HINT and samples(returns),
        rechecks_arguments=returns is not NO_HINT or bool(walked),
        cacheable=SCOPES_REOPEN
        and readable
        and not any(_depends_on_values(hint) for hint in every_hint),
        read_by_value=read_by_value,
        records=records_of(ordered, returns),
        diagnose=diagnose,
        state=CallState(),
    )


def _parts(hint: object, seen: frozenset[type] = frozenset()) -> Iterator[object]:
    """``hint``, every hint inside it, and the field hints of every record it names."""
    yield hint
    for arg in typing.get_args(hint):
        yield from _parts(arg, seen)
    if isinstance(hint, typing.TypeVar):  # beartype checks a value against its bound
        for inner in (hint.__bound__, *hint.__constraints__):
            if inner is not None:
                yield from _parts(inner, seen)
    supertype = getattr(hint, "__supertype__", None)  # a ``NewType``
    if supertype is not None:
        yield from _parts(supertype, seen)
    if isinstance(hint, type) and hint not in seen and dataclasses.is_dataclass(hint):
        for _, field_hint in record_fields(hint):
            yield from _parts(field_hint, seen | {hint})


_TYPE_BASED_INSTANCE_CHECKS: Final = (type.__instancecheck__, ABCMeta.__instancecheck__)


def _depends_on_values(hint: object) -> bool:
    """Whether a hint can look at more than a signature holds: ``Annotated`` validators, numeric
    literals, protocols (an instance's own attributes), classes whose metaclass decides
    ``isinstance`` by its own ``__instancecheck__`` (which may read the value)."""
    for part in _parts(hint):
        origin = typing.get_origin(part)
        if origin is typing.Annotated:
            return True
        if origin is typing.Literal and any(
            type(arg) not in (str, bool) and arg is not None for arg in typing.get_args(part)
        ):
            return True
        if isinstance(part, type) and getattr(part, "_is_protocol", False):
            return True
        if (
            isinstance(part, type)
            and part is not Any
            and not is_array_hint(part)  # jaxtyping's reads a shape and a dtype: the signature
            and type(part).__instancecheck__ not in _TYPE_BASED_INSTANCE_CHECKS
        ):
            return True
    return False


def array_hints(hint: object) -> Iterator[Any]:
    return (part for part in _parts(hint) if is_array_hint(part))


_BRACED = re.compile(r"\{([^{}]*)\}")


def _arguments_read(
    hints: list[object], signature: inspect.Signature
) -> tuple[tuple[tuple[str, int | None, object], ...], bool]:
    """The arguments that ``{name}`` dimensions read, and whether a verdict can be cached.

    jaxtyping formats a symbolic dimension as an f-string over the call's arguments. When every
    braced expression is a parameter's name, the values of those parameters join the signature;
    any other expression (``{len(x)}``, ``{config.size}``) makes every call take the full check.
    """
    names: dict[str, None] = {}
    for hint in hints:
        for array_hint in array_hints(hint):
            for dim in array_hint.dims:
                for expression in _BRACED.findall(getattr(dim, "elem", "")):
                    names[expression.strip()] = None
    read = []
    positional = [
        p.name
        for p in signature.parameters.values()
        if p.kind in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    ]
    for name in names:
        parameter = signature.parameters.get(name)
        if parameter is None or parameter.kind in (
            inspect.Parameter.VAR_POSITIONAL,
            inspect.Parameter.VAR_KEYWORD,
        ):
            return (), False
        position = positional.index(name) if name in positional else None
        read.append((name, position, parameter.default))
    return tuple(read), True
