"""Property test: ``checked`` refuses every call the stock check refuses, first call or thousandth.

Hypothesis draws annotated functions (named, broadcast ``#a``, fixed, arithmetic ``a+1`` and
``2*a``, value-dependent ``{n}`` and variadic ``*v`` / ``*#v`` dimensions; arrays, tuples of
arrays, records, and arrays in a list, a deque or a ``UserList`` under any container hint beartype
samples, ``Iterable[...]`` included; a result of each kind; ``n`` an ``int`` or a class whose
``isinstance`` reads the value) with bodies that may reshape their first argument in place or
check an array of ``n`` entries against ``" a"`` by ``isinstance``, and a sequence of calls that
repeats a few argument sets, positionally or by keyword, with results that are sometimes
misshapen. Every call goes to three checks, each with its own copy of the arguments:

- ``checked(f)``, which remembers the signatures that passed;
- the stock ``jaxtyped(typechecker=beartype)(f)``, which checks one sampled item of a list and
  nothing inside a record: when it refuses, ``checked`` must refuse too;
- an oracle: the stock check of the same function with every list item (every record field, as
  a leading argument) spelled out as an argument of its own, so that all of them are checked.
  ``checked`` must give exactly its verdict: never looser, and stricter only where a list item
  or a record field is wrong.
"""

import copy
import dataclasses
from collections import UserList, deque
from collections.abc import Collection, Container, Iterable, Reversible, Sequence
from typing import Any

import numpy as np
from beartype import beartype
from hypothesis import given, settings
from hypothesis import strategies as st
from jaxtyping import AnnotationError, Float, TypeCheckError, jaxtyped

from typedbackprop.checking import Array, checked

NAMES = ["a", "b", "c"]
TOKENS = st.one_of(
    st.sampled_from(NAMES),
    st.sampled_from(NAMES).map(lambda name: f"#{name}"),
    st.sampled_from(["1", "2", "3"]),
    st.sampled_from(NAMES).map(lambda name: f"{name}+1"),
    st.sampled_from(NAMES).map(lambda name: f"2*{name}"),
    st.just("{n}"),
)


@st.composite
def dimension_strings(draw: st.DrawFn) -> str:
    """Up to three dimensions; at most one variadic ``*v`` or ``*#v`` among them."""
    tokens = draw(st.lists(TOKENS, max_size=3))
    if draw(st.booleans()) and len(tokens) < 3:
        tokens.insert(draw(st.integers(0, len(tokens))), draw(st.sampled_from(["*v", "*#v"])))
    return " ".join(tokens)


@dataclasses.dataclass(frozen=True)
class Slot:
    """One argument or the result: ``array``, ``list`` or ``tuple`` of ``specs``, or a record.

    A ``list`` slot holds its arrays in ``container`` (``list``, ``deque`` or ``UserList``) under
    the hint ``origin[...]``.
    """

    kind: str
    specs: tuple[str, ...]
    origin: Any = list
    container: Any = list


# Each container with the hints it fits, among those beartype checks one item of (or none).
CONTAINERS = st.sampled_from(
    [(list, origin) for origin in (list, Sequence, Iterable, Reversible, Container, Collection)]
    + [(deque, deque), (deque, Iterable), (deque, Collection), (UserList, Sequence)]
)

SLOTS = st.one_of(
    dimension_strings().map(lambda spec: Slot("array", (spec,))),
    dimension_strings().map(lambda spec: Slot("list", (spec,))),
    st.tuples(dimension_strings(), dimension_strings()).map(lambda specs: Slot("tuple", specs)),
)
PARAMETER_SLOTS = st.one_of(
    SLOTS,
    st.tuples(dimension_strings(), CONTAINERS).map(
        lambda drawn: Slot("list", (drawn[0],), drawn[1][1], drawn[1][0])
    ),
)


def hint_of(slot: Slot) -> Any:
    arrays = [Float[Array, spec] for spec in slot.specs]
    if slot.kind == "list":
        return slot.origin[arrays[0]]
    if slot.kind == "tuple":
        return tuple[tuple(arrays)]
    return arrays[0]


class _SmallMeta(type):
    def __instancecheck__(cls, value: object) -> bool:
        return type(value) is int and 1 <= value <= 3


class Small(metaclass=_SmallMeta):
    """A hint for ``n`` whose ``isinstance`` reads the value: 4 is not ``Small``."""


# --- values ------------------------------------------------------------------------------------


@st.composite
def shapes_for(draw: st.DrawFn, spec: str, sizes: dict[str, Any]) -> tuple[int, ...]:
    """A shape that fits ``spec`` under ``sizes`` (broadcast dimensions may be 1)."""
    shape: list[int] = []
    for token in spec.split():
        if token.startswith("*"):
            variadic = list(sizes["v"])
            if "#" in token:
                variadic = [draw(st.sampled_from([size, 1])) for size in variadic]
            shape += variadic
            continue
        name = token.lstrip("#")
        if name in NAMES:
            size = sizes[name]
            if token.startswith("#") and draw(st.booleans()):
                size = 1
        elif name == "{n}":
            size = sizes["n"]
        else:
            size = eval(name, {key: sizes[key] for key in NAMES})  # 2, a+1, 2*a
        shape.append(size)
    return tuple(shape)


@st.composite
def arrays_for(draw: st.DrawFn, spec: str, sizes: dict[str, Any], odds: int) -> np.ndarray:
    """An array that fits ``spec``, or, one time in ``odds``, one with a size, an axis or the
    dtype wrong."""
    shape = list(draw(shapes_for(spec, sizes)))
    dtype: type = np.float64
    if draw(st.integers(1, odds)) == 1:
        wrong = draw(st.sampled_from(["size", "size", "axis", "dtype"]))
        if wrong == "size" and shape:
            shape[draw(st.integers(0, len(shape) - 1))] = draw(st.integers(1, 4))
        elif wrong == "axis":
            shape = shape[:-1] if shape and draw(st.booleans()) else [*shape, 2]
        else:
            dtype = np.int64
    return np.zeros(shape, dtype=dtype)


@st.composite
def values_for(draw: st.DrawFn, slot: Slot, sizes: dict[str, Any], odds: int = 12) -> Any:
    if slot.kind == "list":
        count = draw(st.integers(0, 4))
        return slot.container([draw(arrays_for(slot.specs[0], sizes, odds)) for _ in range(count)])
    if slot.kind == "tuple":
        return tuple(draw(arrays_for(spec, sizes, odds)) for spec in slot.specs)
    return draw(arrays_for(slot.specs[0], sizes, odds))


SIZES = st.fixed_dictionaries(
    {
        "a": st.integers(1, 3),
        "b": st.integers(1, 3),
        "c": st.integers(1, 3),
        "v": st.lists(st.integers(1, 3), max_size=2).map(tuple),
        "n": st.integers(1, 3),
    }
)


@dataclasses.dataclass(frozen=True)
class Case:
    parameters: tuple[Slot, ...]
    record: tuple[str, ...] | None  # the dimension strings of a record's fields, if it has one
    result: Slot
    calls: tuple[Any, ...]  # (arguments, record fields, result, first keyword argument, reshape)
    n_hint: Any = int
    peeks: bool = False  # the body asserts isinstance(np.zeros(n), Float[Array, " a"])


Call = tuple[tuple[Any, ...], Any, Any, int, bool]


@st.composite
def variant(draw: st.DrawFn, case: Case, call: Call, sizes: dict[str, Any]) -> Call:
    """``call`` with one thing changed: what a cache keyed too loosely would confuse with it."""
    arguments, fields, result, keywords_from, reshapes = call
    change = draw(st.sampled_from(["n", "argument", "item", "result", "keywords", "reshape"]))
    if change == "n":
        n = arguments[-1]
        arguments = (*arguments[:-1], draw(st.integers(1, 4).filter(lambda other: other != n)))
    elif change == "keywords":
        keywords_from = draw(st.integers(0, len(case.parameters) + 1))
    elif change == "reshape":
        reshapes = case.parameters[0].kind == "array" and not reshapes
    elif change == "result":
        result = draw(values_for(case.result, sizes, odds=2))
    else:
        position = draw(st.integers(0, len(case.parameters) - 1))
        slot, value = case.parameters[position], arguments[position]
        if change == "item" and slot.kind == "list" and value:
            index = draw(st.integers(0, len(value) - 1))
            wrong = draw(arrays_for(slot.specs[0], sizes, odds=2))
            items = list(value)
            value = slot.container([*items[:index], wrong, *items[index + 1 :]])
        else:
            value = draw(values_for(slot, sizes, odds=2))
        arguments = (*arguments[:position], value, *arguments[position + 1 :])
    return arguments, fields, result, keywords_from, reshapes


@st.composite
def cases(draw: st.DrawFn) -> Case:
    """A function, and calls that repeat a few argument sets and near copies of them."""
    parameters = tuple(draw(st.lists(PARAMETER_SLOTS, min_size=1, max_size=3)))
    if draw(st.integers(0, 3)):  # mostly, an argument that binds a, b and c comes first
        parameters = (Slot("array", ("a b c",)), *parameters)
    record = draw(st.none() | st.tuples(dimension_strings(), dimension_strings()))
    result = draw(SLOTS)
    n_hint = draw(st.sampled_from([int, int, Small]))
    case = Case(parameters, record, result, (), n_hint, draw(st.booleans()))
    pool: list[Call] = []
    for _ in range(draw(st.integers(1, 2))):
        sizes = draw(SIZES)
        arguments = tuple(draw(values_for(slot, sizes)) for slot in parameters)
        fields = None
        if record is not None:
            fields = tuple(draw(arrays_for(spec, sizes, odds=12)) for spec in record)
        returned = draw(values_for(result, sizes))
        keywords_from = draw(st.integers(0, len(parameters) + 1))
        reshapes = parameters[0].kind == "array" and draw(st.integers(0, 3)) == 0
        call = ((*arguments, sizes["n"]), fields, returned, keywords_from, reshapes)
        pool.append(call)
        for _ in range(draw(st.integers(0, 2))):
            pool.append(draw(variant(case, call, sizes)))
    order = draw(st.lists(st.integers(0, len(pool) - 1), min_size=1, max_size=12))
    return dataclasses.replace(case, calls=tuple(pool[index] for index in order))


# --- the three checks --------------------------------------------------------------------------


def function_with(
    names: list[str], hints: dict[str, Any], box: list[Any], peeks: bool = False
) -> Any:
    """A function with these parameters and hints that returns ``box[0]``; when ``box[1]``, it
    first reverses the shape of its argument ``p0`` in place (an array: the stock check looks
    at it again after the body); when ``peeks``, it asserts that an array of ``n`` entries is
    a ``Float[Array, " a"]`` in the call's dimension scope."""
    namespace: dict[str, Any] = {"box": box, "np": np, "Float": Float, "Array": Array}
    body = ["    if box[1]:", "        p0.shape = p0.shape[::-1]"] if "p0" in names else []
    if peeks:
        body.append('    assert isinstance(np.zeros(n), Float[Array, " a"])')
    body.append("    return box[0]")
    exec(f"def f({', '.join(names)}):\n" + "\n".join(body) + "\n", namespace)
    function = namespace["f"]
    function.__annotations__ = hints
    return function


def verdict(function: Any, *args: Any, **kwargs: Any) -> str:
    """``"pass"``, or the error: ``TypeCheckError``, ``AssertionError`` from a body that peeks,
    or ``AnnotationError`` when a dimension such as ``a+1`` reads a size nothing bound. Which
    comes first can depend on the order of a list's items, which beartype draws: the property
    compares refused with refused. Each call gets its own copy of the arguments, since a body
    may reshape one."""
    args, kwargs = copy.deepcopy((args, kwargs))
    try:
        function(*args, **kwargs)
    except (TypeCheckError, AnnotationError, AssertionError) as error:
        return type(error).__name__
    return "pass"


def oracle(
    case: Case,
    record_type: Any,
    arguments: tuple[Any, ...],
    fields: Any,
    result: Any,
    reshapes: bool = False,
) -> str:
    """The stock check with every list item and record field as an argument of its own."""
    names, hints, values = [], {}, []
    if record_type is not None:
        for index, spec in enumerate(case.record or ()):
            names.append(f"field{index}")
            hints[f"field{index}"] = Float[Array, spec]
            values.append(fields[index])
        names.append("record")
        hints["record"] = record_type
        values.append(record_type(*fields))
    for position, (slot, value) in enumerate(zip(case.parameters, arguments, strict=False)):
        if slot.kind == "list":
            for index, item in enumerate(value):
                names.append(f"p{position}_{index}")
                hints[f"p{position}_{index}"] = Float[Array, slot.specs[0]]
                values.append(item)
        else:
            names.append(f"p{position}")
            hints[f"p{position}"] = hint_of(slot)
            values.append(value)
    names.append("n")
    hints["n"] = case.n_hint
    values.append(arguments[-1])
    box = [result, reshapes]
    if case.result.kind == "list":
        hints["return"] = tuple[tuple([Float[Array, case.result.specs[0]]] * len(result))]
        box[0] = tuple(result)
    else:
        hints["return"] = hint_of(case.result)
    key = repr((names, hints))
    if key not in ORACLES:
        function = function_with(names, hints, box, case.peeks)
        ORACLES[key] = (jaxtyped(typechecker=beartype)(function), box)
    stock, stock_box = ORACLES[key]
    stock_box[:] = box
    return verdict(stock, *values)


ORACLES: dict[str, tuple[Any, list[Any]]] = {}
"""The current case's oracle functions by their parameters and hints, one per list length."""


@settings(max_examples=300, deadline=None)
@given(cases())
def test_checked_refuses_whatever_stock_refuses_and_gives_the_oracles_verdict(case: Case):
    box: list[Any] = [None, False]
    names = [f"p{index}" for index in range(len(case.parameters))]
    hints: dict[str, Any] = {
        name: hint_of(slot) for name, slot in zip(names, case.parameters, strict=True)
    }
    names.append("n")
    hints["n"] = case.n_hint
    hints["return"] = hint_of(case.result)
    record_type = None
    if case.record is not None:
        record_type = dataclasses.make_dataclass(
            "Record",
            [(f"field{index}", Float[Array, spec]) for index, spec in enumerate(case.record)],
            frozen=True,
        )
        names.insert(0, "record")
        hints = {"record": record_type, **hints}
    function = function_with(names, hints, box, case.peeks)
    ORACLES.clear()
    checked_function, stock_function = checked(function), jaxtyped(typechecker=beartype)(function)
    for number, (arguments, fields, result, keywords_from, reshapes) in enumerate(case.calls):
        values = list(arguments)
        if record_type is not None:
            values.insert(0, record_type(*fields))
        positional = tuple(values[:keywords_from])
        keywords = dict(zip(names[keywords_from:], values[keywords_from:], strict=True))
        box[:] = [result, reshapes]
        ours = verdict(checked_function, *positional, **keywords)
        stock = verdict(stock_function, *positional, **keywords)
        expected = oracle(case, record_type, arguments, fields, result, reshapes)
        where = f"call {number} of {len(case.calls)}: {hints}, peeks={case.peeks}"
        # Only a refused value counts here (or a body's assertion about it). An AnnotationError
        # says that a dimension such as a+1 read a size nothing had bound yet, and for stock
        # what is bound depends on which list item beartype drew (an item of size 1 for #a
        # binds nothing); checked walks every item in order, as the oracle does, so the oracle
        # judges those calls.
        if stock in ("TypeCheckError", "AssertionError"):
            assert ours != "pass", f"stock refused, checked passed; {where}"
        assert (ours == "pass") == (expected == "pass"), (
            f"the oracle says {expected}, checked said {ours}; {where}"
        )


def test_the_strategies_draw_both_verdicts():
    """The property above would pass vacuously if every drawn call passed (or none did)."""
    seen: dict[str, int] = {}

    @settings(max_examples=200, deadline=None, database=None)
    @given(cases())
    def count(case: Case) -> None:
        ORACLES.clear()
        for arguments, fields, result, _, reshapes in case.calls:
            record_type = None
            if case.record is not None:
                record_type = dataclasses.make_dataclass(
                    "Record",
                    [(f"f{i}", Float[Array, spec]) for i, spec in enumerate(case.record)],
                    frozen=True,
                )
            key = oracle(case, record_type, arguments, fields, result, reshapes)
            seen[key] = seen.get(key, 0) + 1

    count()
    assert seen.get("pass", 0) > 20 and seen.get("TypeCheckError", 0) > 20, seen
