"""The full check of one call: the stock check, or the walk of every item in one scope.

A call whose signature the cache has not seen (and a call whose signature differs after its
body) is checked here. A function of plain arrays gets the stock
``jaxtyped(typechecker=beartype)`` check; one that takes or returns records or containers is
walked in one dimension scope, every item of every container included. A refusal opens with the
layout advice and the line of :mod:`~typedbackprop.checking.diagnosis` naming the dimension.
"""

import functools
import inspect
from collections.abc import Callable, Mapping
from typing import Any

from beartype import beartype
from jaxtyping import TypeCheckError, jaxtyped

from typedbackprop.checking.diagnosis import NOTE_MARK, Step, disagreement, numpy_note
from typedbackprop.checking.jaxtyping_adapter import bindings, memo_now, memo_stack, scope
from typedbackprop.checking.plan import NO_HINT, NOTHING, Plan
from typedbackprop.checking.records import is_record, record_steps, returned_records
from typedbackprop.checking.walk import Refused, check_fully

__all__ = [
    "FullCheck",
    "after_body_steps",
    "call_body",
    "check_after_body",
    "check_in_one_scope",
    "checked_steps",
    "note_numpy_error",
    "parameter_steps",
    "stock_check",
]


def parameter_steps(plan: Plan, arguments: Mapping[str, Any]) -> list[Step]:
    """Each annotated argument with its label and hint, in order (``*args`` item by item)."""
    steps: list[Step] = []
    for name, hint in plan.hints.items():
        kind = plan.signature.parameters[name].kind
        value: Any = arguments.get(name)
        if kind is inspect.Parameter.VAR_POSITIONAL:
            steps += [(f"{name}[{i}]", item, hint) for i, item in enumerate(value)]
        elif kind is inspect.Parameter.VAR_KEYWORD:
            steps += [(f"{name}[{key!r}]", item, hint) for key, item in value.items()]
        elif name in arguments:
            steps.append((name, value, hint))
    return steps


def checked_steps(plan: Plan, arguments: Mapping[str, Any]) -> list[Step]:
    """What a full check visits before the body, in order: record fields first, then arguments."""
    steps: list[Step] = []
    for parameter in plan.records[0] if plan.records is not None else ():
        if is_record(arguments.get(parameter)):
            steps += record_steps(parameter, arguments[parameter])
    return steps + parameter_steps(plan, arguments)


def call_body(plan: Plan, args: tuple[object, ...], kwargs: dict[str, object]) -> object:
    """The body's result (or the result being replayed); NumPy's shape errors get a note."""
    state = plan.state
    replay = state.replay
    if replay is not NOTHING:
        state.replay = NOTHING
        state.result = replay
        return replay
    before = memo_now() if plan.cacheable else None
    try:
        result = plan.function(*args, **kwargs)
    except ValueError as error:
        note_numpy_error(plan, args, kwargs, error)
        state.from_body = error
        raise
    except BaseException as error:
        state.from_body = error
        raise
    state.result = result
    if before is not None:  # a remembered call's body will run in a scope holding these sizes
        state.scope = (before, memo_now())
    return result


def note_numpy_error(
    plan: Plan, args: tuple[object, ...], kwargs: dict[str, object], error: ValueError
) -> None:
    """Add a note naming the arguments' dimensions to a shape error NumPy raised in the body."""
    if any(NOTE_MARK in note for note in getattr(error, "__notes__", ())):
        return  # a checked function further in has said it, about its own arguments
    try:
        steps = checked_steps(plan, plan.bind_arguments(args, kwargs))
        note = numpy_note(plan.qualname, steps, error)
    except Exception:  # the note is a courtesy: never let it hide NumPy's own error
        return
    if note is not None:
        error.add_note(note)


def _opening(
    plan: Plan, steps: list[Step], arguments: Mapping[str, object]
) -> tuple[str | None, str | None]:
    """The layout advice and the line naming the dimension that disagrees, where there are."""
    try:
        advice = plan.diagnose(arguments) if plan.diagnose is not None else None
    except Exception:  # advice is a courtesy: never let it hide the refusal
        advice = None
    try:
        line = disagreement(steps, arguments)
    except Exception:
        line = None
    return advice, line


def explain(
    plan: Plan, error: TypeCheckError, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> None:
    """Open the stock message with the layout advice, if any, and the dimension that disagrees."""
    message = str(error)
    arguments = plan.bind_arguments(args, kwargs)
    steps = parameter_steps(plan, arguments)
    if "checking the return value" in message.split("\n----", 1)[0]:
        steps.append(("result", plan.state.result, plan.returns))
    advice, line = _opening(plan, steps, arguments)
    error.args = ("\n".join(part for part in (advice, line, message) if part),)


def refusal(
    plan: Plan,
    steps: list[Step],
    arguments: Mapping[str, object],
    headline: str,
    bound: str | None = None,
) -> TypeCheckError:
    """The error for a value the full walk refused, opening with the dimension that disagrees."""
    advice, line = _opening(plan, steps, arguments)
    return TypeCheckError("\n".join(part for part in (advice, line, headline, bound) if part))


FullCheck = Callable[[tuple[Any, ...], dict[str, Any], object], Any]


def stock_check(plan: Plan) -> FullCheck:
    """The full check of a function without records, lists, dicts or sets: the stock decorator.

    ``jaxtyped(typechecker=beartype)`` wraps a stand-in body with the function's signature, which
    can also hand back a result already computed (``replay``) so that checking it does not run
    the body twice.
    """
    state = plan.state

    def run_body(*args: Any, **kwargs: Any) -> object:
        return call_body(plan, args, kwargs)

    functools.update_wrapper(run_body, plan.function)
    run_body.__signature__ = plan.signature  # type: ignore[attr-defined]
    stock = jaxtyped(typechecker=beartype)(run_body)

    def full_check(args: tuple[Any, ...], kwargs: dict[str, Any], replay: object) -> Any:
        state.replay, state.from_body = replay, None
        try:
            return stock(*args, **kwargs)
        except TypeCheckError as error:
            if error is not state.from_body:
                explain(plan, error, args, kwargs)
            raise
        finally:
            state.replay, state.from_body = NOTHING, None

    return full_check


def check_after_body(
    plan: Plan,
    positions: tuple[int, ...],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    result: object,
    memo: tuple[Any, ...],
    full_check: FullCheck,
) -> None:
    """The check after the body of a remembered call whose arguments, result or sizes differ
    from what the call that passed saw: the arguments again and the result, in the scope the
    body left (``memo``: the sizes the arguments bound, and any its ``isinstance`` bound)."""
    arguments = plan.bind_arguments(args, kwargs)
    steps = after_body_steps(plan, arguments, result, positions)
    stack = memo_stack()
    stack.append((memo[0].copy(), memo[1].copy(), memo[2].copy(), arguments))
    try:
        for label, value, hint in steps:
            check_fully(label, value, hint)
    except Refused as refused:
        failure, bound = refused, bindings()
    else:
        return
    finally:
        stack.pop()
    # Refused. The full check of these arguments with this result refuses it too, with the
    # stock report, unless the body changed what it checks (or bound sizes by ``isinstance``).
    full_check(args, kwargs, result)
    where = "the result" if failure.label == "result" else f"{failure.label}, after the body"
    headline = f"{plan.qualname}: {where}: {failure.reason}"
    steps = checked_steps(plan, arguments) + steps
    raise refusal(plan, steps, arguments, headline, bound) from None


def after_body_steps(
    plan: Plan, arguments: Mapping[str, Any], result: object, positions: tuple[int, ...]
) -> list[Step]:
    """What the check visits after the body, in order, in the scope the arguments bound.

    As the stock check does when there is a return hint: every argument again (the body may have
    changed one: appended to a list, reshaped an array in place) and the result; a list, dict or
    set argument is looked at again even without one. Then the fields of returned records.
    """
    again = plan.returns is not NO_HINT
    steps = [
        step
        for step in parameter_steps(plan, arguments)
        if again or step[0].partition("[")[0] in plan.walked
    ]
    if plan.returns is not NO_HINT:
        steps.append(("result", result, plan.returns))
    for label, record in returned_records(result, positions):
        if is_record(record):
            steps += record_steps(label, record)
    return steps


def check_in_one_scope(plan: Plan, positions: tuple[int, ...]) -> FullCheck:
    """The full check of a function that takes or returns records, lists, dicts or sets.

    The fields of record arguments are bound first (a cache carries the sizes its forward pass
    saw), then the plain arguments are checked, the body runs, the arguments are checked again
    with the result (see ``after_body_steps``), and finally the fields of returned records are
    checked, all against the same bindings. Every item of every container is checked.
    """
    state = plan.state

    def full_check(args: tuple[Any, ...], kwargs: dict[str, Any], replay: object) -> Any:
        arguments = plan.bind_arguments(args, kwargs)
        steps = checked_steps(plan, arguments)
        with scope(arguments):
            try:
                for label, value, hint in steps:
                    check_fully(label, value, hint)
            except Refused as refused:
                headline = f"{plan.qualname}: argument {refused.label}: {refused.reason}"
                raise refusal(plan, steps, arguments, headline, bindings()) from None
            state.replay = replay
            try:
                result = call_body(plan, args, kwargs)
            finally:
                state.replay, state.from_body = NOTHING, None
            returned = after_body_steps(plan, arguments, result, positions)
            try:
                for label, value, hint in returned:
                    check_fully(label, value, hint)
            except Refused as refused:
                label = "the result" if refused.label == "result" else refused.label
                headline = f"{plan.qualname}: {label}: {refused.reason}"
                raise refusal(plan, steps + returned, arguments, headline, bindings()) from None
        return result

    return full_check
