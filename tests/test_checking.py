"""Tests for typedbackprop.checking: the cached check must give the stock check's verdicts."""

import dataclasses
import re
import subprocess
import sys
from collections import ChainMap, UserList, deque
from collections.abc import (
    Collection,
    Container,
    Iterable,
    Mapping,
    Reversible,
    Sequence,
    ValuesView,
)
from pathlib import Path
from types import MappingProxyType
from typing import Annotated, Literal, TypeVar

import jaxtyping
import numpy as np
import pytest
from beartype import beartype
from beartype.vale import Is
from jaxtyping import Float, TypeCheckError, jaxtyped

import typedbackprop as tbp
from typedbackprop import checking
from typedbackprop.checking import (
    Array,
    checked,
    checked_record,
    diagnosis,
    full_checks,
    jaxtyping_adapter,
    record_fields,
)


def matmul(
    W: Float[Array, "out inp"], a_prev: Float[Array, "inp batch"]
) -> Float[Array, "out batch"]:
    return W @ a_prev


checked_matmul = checked(matmul)
stock_matmul = jaxtyped(typechecker=beartype)(matmul)

BAD_CALLS = [
    ("transposed input", lambda: (np.ones((4, 3)), np.ones((5, 3)))),
    ("vector input", lambda: (np.ones((4, 3)), np.ones(3))),
    ("integer weights", lambda: (np.ones((4, 3), dtype=np.int64), np.ones((3, 5)))),
    ("boolean input", lambda: (np.ones((4, 3)), np.ones((3, 5), dtype=bool))),
    ("list input", lambda: (np.ones((4, 3)), [[1.0] * 5] * 3)),
]


def test_checks_are_on_by_default():
    assert tbp.CHECKS_ENABLED
    assert hasattr(tbp.nn.affine_forward, "__wrapped__")


@pytest.mark.parametrize(("case", "arguments"), BAD_CALLS)
def test_bad_calls_raise_the_stock_message_first_call_or_thousandth(case, arguments):
    with pytest.raises(TypeCheckError) as stock:
        stock_matmul(*arguments())
    with pytest.raises(TypeCheckError) as first:
        checked_matmul(*arguments())
    for _ in range(1000):
        checked_matmul(np.ones((4, 3)), np.ones((3, 5)))
    with pytest.raises(TypeCheckError) as thousandth:
        checked_matmul(*arguments())
    assert str(first.value) == str(thousandth.value)
    assert str(first.value).endswith(str(stock.value))  # stock's report, after one line at most
    assert str(first.value).count("\n") <= str(stock.value).count("\n") + 1


def test_a_result_of_a_new_shape_is_checked_again():
    calls = []

    @checked
    def sometimes_wrong(z: Float[Array, "features batch"]) -> Float[Array, "features batch"]:
        calls.append(1)
        return z if len(calls) < 5 else z.T

    square = np.ones((3, 3))
    for _ in range(4):
        sometimes_wrong(np.ones((3, 5)))
    with pytest.raises(TypeCheckError, match="return"):
        sometimes_wrong(np.ones((3, 5)))
    sometimes_wrong(square)  # a transpose of a square array has the same shape: still valid


def test_string_literals_are_part_of_the_signature():
    @checked
    def pick(name: Literal["a", "b"], z: Float[Array, " n"]) -> Float[Array, " n"]:
        return z

    for _ in range(10):
        pick("a", np.ones(3))
    with pytest.raises(TypeCheckError, match="'c'"):
        pick("c", np.ones(3))


def test_value_validators_are_never_cached():
    @checked
    def scale(
        factor: Annotated[float, Is[lambda value: value > 0]], z: Float[Array, " n"]
    ) -> Float[Array, " n"]:
        return factor * z

    for _ in range(10):
        scale(2.0, np.ones(3))
    with pytest.raises(TypeCheckError):
        scale(-1.0, np.ones(3))


def test_keyword_arguments_and_lists_are_checked():
    @checked
    def total(values: list[Float[Array, " n"]], *, offset: float) -> float:
        return float(sum(value.sum() for value in values)) + offset

    for _ in range(5):
        assert total([np.ones(2), np.ones(2)], offset=1.0) == 5.0
    with pytest.raises(TypeCheckError):  # beartype checks one item of a list; make all wrong
        total([np.ones(2, dtype=np.int64)], offset=1.0)
    with pytest.raises(TypeCheckError):
        total([np.ones(2)], offset="1")


def test_many_signatures_stay_bounded_and_correct():
    for batch in range(1, 3000):
        assert checked_matmul(np.ones((2, 3)), np.ones((3, batch))).shape == (2, batch)
    with pytest.raises(TypeCheckError):
        checked_matmul(np.ones((2, 3)), np.ones((4, 7)))


def test_every_public_function_is_checked():
    unchecked = [
        name
        for name in tbp.__all__
        if name.endswith(("_forward", "_backward", "_grad_params", "_grad_input"))
        and not hasattr(getattr(tbp, name), "__wrapped__")
    ]
    assert unchecked == []


# --- never looser than the stock check ----------------------------------------------------------


def test_a_size_read_from_an_argument_is_part_of_the_signature():
    # The example: after take(x, 3) passed, take(x, 4) returned 3 entries and passed.
    @checked
    def take(x: Float[Array, " m"], size: int) -> Float[Array, " {size}"]:
        return x[:3]

    for _ in range(3):
        assert take(np.ones(5), 3).shape == (3,)
    with pytest.raises(TypeCheckError, match=r"result: axis 0 is 3 here, but \{size\} is 4"):
        take(np.ones(5), 4)
    with pytest.raises(TypeCheckError):
        take(np.ones(5), size=4)  # by keyword too


def test_a_list_with_one_wrong_item_is_refused_on_every_call():
    # beartype checks one sampled item: stock passed this list on most calls.
    @checked
    def total(values: list[Float[Array, "a b"]]) -> float:
        return float(sum(value.sum() for value in values))

    good = [np.ones((2, 3)) for _ in range(8)]
    bad = [*good[:5], np.ones((2, 4)), *good[6:]]
    for _ in range(20):
        assert total(good) == 48.0
        with pytest.raises(
            TypeCheckError, match=r"values\[5\]: b is 4 here, but values\[0\] bound"
        ):
            total(bad)


def test_a_list_verdict_does_not_depend_on_the_item_beartype_draws():
    # "#c" of size 1 binds nothing, so "c+1" can be read only once an item of another size has
    # bound c. Stock beartype draws one item at random: the last one left c unbound
    # (AnnotationError) on about a third of first calls. Items in order, c is bound by the first.
    items = [np.zeros((1, 2, 3)), np.zeros((1, 2, 3)), np.zeros((1, 1, 3))]
    for _ in range(30):  # fresh functions: each first call is a full check

        @checked
        def count(values: list[Float[Array, "#a #c c+1"]]) -> int:
            return len(values)

        assert count(items) == 3
        with pytest.raises(TypeCheckError, match=r"values\[2\]"):
            count([*items[:2], np.zeros((1, 2, 4))])


def test_every_value_of_a_dict_and_every_item_of_a_returned_list_is_checked():
    @checked
    def first_rows(arrays: dict[str, Float[Array, "a b"]]) -> list[Float[Array, " b"]]:
        return [array[0] for array in arrays.values()]

    good = {str(i): np.ones((2, 3)) for i in range(6)}
    assert len(first_rows(good)) == 6
    with pytest.raises(TypeCheckError, match=r"arrays\['5'\]: b is 4 here"):
        first_rows({**good, "5": np.ones((2, 4))})

    @checked
    def split(z: Float[Array, "a b"]) -> list[Float[Array, " b"]]:
        rows = list(z)
        return rows if len(rows) < 6 else [*rows[:5], rows[5][:-1]]

    for _ in range(3):
        assert len(split(np.ones((5, 3)))) == 5
        with pytest.raises(TypeCheckError, match=r"result\[5\]: b is 2 here, but z bound b=3"):
            split(np.ones((6, 3)))


def test_a_class_argument_is_part_of_the_signature_by_value():
    @checked
    def make(kind: type[tbp.Dense], z: Float[Array, " n"]) -> Float[Array, " n"]:
        return z

    for _ in range(3):
        make(tbp.Dense, np.ones(2))
    with pytest.raises(TypeCheckError):
        make(int, np.ones(2))  # type: ignore[arg-type]


def test_a_result_of_a_new_shape_is_checked_without_running_the_body_again():
    calls = []

    @checked
    def drifting(z: Float[Array, "features batch"]) -> Float[Array, "features batch"]:
        calls.append(1)
        return z if len(calls) < 3 else z[:, :-1]

    drifting(np.ones((3, 5)))
    drifting(np.ones((3, 5)))
    with pytest.raises(TypeCheckError, match="result: batch is 4 here, but z bound batch=5"):
        drifting(np.ones((3, 5)))
    assert len(calls) == 3  # once per call: the misshapen result was checked, not recomputed


# --- failures in dimension names ----------------------------------------------------------------


def affine_grad_params(
    grad_z: Float[Array, "out batch"], a_prev: Float[Array, "inp batch"]
) -> tuple[Float[Array, "out inp"], Float[Array, " out"]]:
    return a_prev @ grad_z.T, grad_z.sum(axis=1)  # the swapped product: (inp, out)


def first_line(error: pytest.ExceptionInfo[BaseException]) -> str:
    return str(error.value).splitlines()[0]


def test_a_refused_argument_says_which_dimension_disagrees_and_who_bound_it(rng):
    grad_z, a_prev = rng.standard_normal((2, 5)), rng.standard_normal((4, 4))
    with pytest.raises(TypeCheckError) as error:
        tbp.nn.affine_grad_params(grad_z, a_prev)
    assert first_line(error) == "a_prev: batch is 4 here, the size of inp, but grad_z bound batch=5"
    assert "out=2" in str(error.value).splitlines()  # jaxtyping's bindings follow


def test_a_refused_tuple_result_names_its_element(rng):
    wrong = checked(affine_grad_params)
    with pytest.raises(TypeCheckError) as error:
        wrong(rng.standard_normal((2, 5)), rng.standard_normal((4, 5)))
    assert first_line(error) == "result[0]: out is 4 here, the size of inp, but grad_z bound out=2"


def test_a_wrong_size_names_every_other_dimension_of_that_size(rng):
    # grad_b summed over the wrong axis: its (batch,) where (out,) belongs; batch is 5, out 4.
    @checked
    def grad_b_wrong_axis(
        grad_z: Float[Array, "out batch"], a_prev: Float[Array, "inp batch"]
    ) -> tuple[Float[Array, "out inp"], Float[Array, " out"]]:
        return grad_z @ a_prev.T, grad_z.sum(axis=0)

    with pytest.raises(TypeCheckError) as error:
        grad_b_wrong_axis(rng.standard_normal((4, 5)), rng.standard_normal((3, 5)))
    assert (
        first_line(error) == "result[1]: out is 5 here, the size of batch, but grad_z bound out=4"
    )

    @checked
    def three(
        x: Float[Array, "a b c"], y: Float[Array, " a"]
    ) -> None:  # b and c both 6: both are named
        pass

    with pytest.raises(TypeCheckError) as error:
        three(np.ones((2, 6, 6)), np.ones(6))
    assert first_line(error) == "y: a is 6 here, the size of b and c, but x bound a=2"
    with pytest.raises(TypeCheckError) as error:
        three(np.ones((2, 6, 5)), np.ones(7))  # no dimension is 7: nothing more is said
    assert first_line(error) == "y: a is 7 here, but x bound a=2"


def test_a_refused_literal_lists_the_names_it_allows():
    @checked
    def activate(
        z: Float[Array, "features batch"], kind: Literal["relu", "tanh"]
    ) -> Float[Array, "features batch"]:
        return z

    with pytest.raises(TypeCheckError) as error:
        activate(np.ones((2, 3)), "sigmoid")
    assert first_line(error) == "kind: 'sigmoid' here, not one of 'relu', 'tanh'"
    with pytest.raises(TypeCheckError) as error:
        activate(np.ones((2, 3)), [1])
    assert first_line(error) == "kind: a list here, not one of 'relu', 'tanh'"


@pytest.mark.parametrize(
    ("W", "line"),
    [
        (np.ones((2, 3), dtype=np.int64), "W: int64 here, the annotation asks for Float"),
        (np.ones(3), "W: 1 dimension here, shape (3,); the annotation has 2: (out inp)"),
        (np.ones((2, 4)), "a_prev: inp is 3 here, but W bound inp=4"),
    ],
)
def test_dtype_rank_and_size_each_get_their_line(W, line):
    with pytest.raises(TypeCheckError) as error:
        checked_matmul(W, np.ones((3, 5)))
    assert first_line(error) == line


def test_fixed_symbolic_and_variadic_dimensions_get_their_line():
    @checked
    def shapes(
        x: Float[Array, "3 n"],
        y: Float[Array, " n-1"],
        z: Float[Array, "*rest"],
        w: Float[Array, "*rest"],
    ) -> None:
        pass

    cases = [
        (
            (np.ones((2, 4)), np.ones(3), np.ones(1), np.ones(1)),
            "x: axis 0 is 2 here, but the annotation fixes it at 3",
        ),
        (
            (np.ones((3, 4)), np.ones(4), np.ones(1), np.ones(1)),
            "y: axis 0 is 4 here, but n-1 is 3 (x bound n=4)",
        ),
        (
            (np.ones((3, 4)), np.ones(3), np.ones((2, 5)), np.ones((2, 6))),
            "w: *rest is (2, 6) here, but z bound *rest=(2, 5)",
        ),
    ]
    for arguments, line in cases:
        with pytest.raises(TypeCheckError) as error:
            shapes(*arguments)
        assert first_line(error) == line


def test_a_record_argument_binds_first_and_is_named_as_the_binder(rng):
    layer = tbp.Dense(rng.standard_normal((4, 3)), rng.standard_normal(4))
    _, cache = tbp.nn.dense_forward(layer, rng.standard_normal((3, 5)))
    with pytest.raises(TypeCheckError) as error:
        tbp.nn.dense_backward(rng.standard_normal((4, 6)), cache)
    assert first_line(error) == "grad_z: batch is 6 here, but cache.a_prev bound batch=5"


def test_an_inner_refusal_is_not_explained_again_by_the_outer_call(rng):
    @checked
    def outer(grad_z: Float[Array, "out batch"], a_prev: Float[Array, "inp batch"]) -> None:
        tbp.nn.affine_grad_params(grad_z, a_prev[:, :-1])

    with pytest.raises(TypeCheckError) as error:
        outer(rng.standard_normal((2, 5)), rng.standard_normal((4, 5)))
    assert first_line(error) == "a_prev: batch is 4 here, the size of inp, but grad_z bound batch=5"
    assert "affine_grad_params" in str(error.value).splitlines()[1]


# --- notes on NumPy's errors ---------------------------------------------------------------------


@checked
def grad_W_without_transpose(
    grad_z: Float[Array, "out batch"], a_prev: Float[Array, "inp batch"]
) -> Float[Array, "out inp"]:
    return grad_z @ a_prev  # the question's bug


@checked
def bias_along_batch(
    W: Float[Array, "out inp"], b: Float[Array, " out"], a_prev: Float[Array, "inp batch"]
) -> Float[Array, "out batch"]:
    return W @ a_prev + b  # the other one: b is added along the trailing axis


def test_numpys_matmul_error_gets_a_note_naming_the_dimensions_first_call_or_later(rng):
    grad_z, a_prev = rng.standard_normal((2, 5)), rng.standard_normal((4, 5))
    assert grad_W_without_transpose(grad_z, rng.standard_normal((5, 5))).shape == (2, 5)
    for _ in range(2):  # a new signature, then a cached one
        with pytest.raises(ValueError, match="matmul") as error:
            grad_W_without_transpose(grad_z, a_prev)
        assert type(error.value) is ValueError  # the original exception, its type kept
        (note,) = error.value.__notes__
        assert note.splitlines() == [
            "grad_W_without_transpose was called with these arrays:",
            "  grad_z: (out=2, batch=5)",
            "  a_prev: (inp=4, batch=5)",
            "the product met batch=5 (the left factor's last axis) with inp=4 (the right "
            "factor's first axis): a matrix product sums over one dimension both share",
        ]


def test_numpys_broadcasting_error_gets_a_note_naming_the_axes_that_met(rng):
    W, b, a_prev = rng.standard_normal((3, 2)), rng.standard_normal(3), rng.standard_normal((2, 4))
    with pytest.raises(ValueError, match="broadcast") as error:
        bias_along_batch(W, b, a_prev)
    assert error.value.__notes__[0].splitlines()[1:] == [
        "  W: (out=3, inp=2)",
        "  b: (out=3)",
        "  a_prev: (inp=2, batch=4)",
        "broadcasting lines up trailing axes: (out=3, batch=4) and (out=3) put batch=4 "
        "against out=3",
    ]


def test_a_size_two_dimensions_share_is_named_with_both(rng):
    with pytest.raises(ValueError) as error:
        grad_W_without_transpose(rng.standard_normal((4, 5)), rng.standard_normal((4, 5)))
    assert error.value.__notes__[0].endswith(
        "the product met batch=5 (the left factor's last axis) with 4 (out or inp) (the right "
        "factor's first axis): a matrix product sums over one dimension both share"
    )


def test_the_innermost_checked_call_writes_the_only_note(rng):
    @checked
    def outer(
        grad_z: Float[Array, "out batch"], a_prev: Float[Array, "inp batch"]
    ) -> Float[Array, "out inp"]:
        return grad_W_without_transpose(grad_z, a_prev)

    with pytest.raises(ValueError) as error:
        outer(rng.standard_normal((2, 5)), rng.standard_normal((4, 5)))
    (note,) = error.value.__notes__
    assert note.startswith("grad_W_without_transpose ")


def test_other_errors_in_a_body_get_no_note():
    @checked
    def refuse(z: Float[Array, " n"]) -> None:
        raise ValueError("unknown loss 'l3'")

    with pytest.raises(ValueError) as error:
        refuse(np.ones(2))
    assert not hasattr(error.value, "__notes__")


# --- layout advice -------------------------------------------------------------------------------


def test_batch_first_x_and_y_get_the_layout_advice_first(rng):
    layers = [tbp.Dense(rng.standard_normal((4, 3)), np.zeros(4))]
    x, y = rng.standard_normal((3, 5)), rng.standard_normal((4, 5))
    with pytest.raises(TypeCheckError) as error:  # jaxtyping alone blamed y
        tbp.loss_and_grads(layers, x.T, y.T)
    assert first_line(error) == (
        "x looks batch-first: layer 0 expects inp=3 inputs but x has shape (5, 3); typedbackprop "
        "takes features first, pass x.T, and y.T (y has shape (5, 4), one row per example too)"
    )
    with pytest.raises(TypeCheckError, match=r"\Ax looks batch-first.*pass x\.T\n"):
        tbp.loss_and_grads(layers, x.T, y)
    with pytest.raises(TypeCheckError, match=r"\Ay looks batch-first.*pass y\.T\n"):
        tbp.loss_and_grads(layers, x, y.T)
    with pytest.raises(ValueError, match=r"x looks batch-first.*pass x\.T"):
        tbp.predict(layers, x.T)


def test_a_transposed_W_gets_the_advice_first(rng):
    W = rng.standard_normal((4, 3))
    with pytest.raises(TypeCheckError) as error:
        tbp.Dense(W.T, np.zeros(4))
    assert first_line(error).startswith(
        "W looks transposed: W is (out, inp), one row per entry of b, but W has shape (3, 4)"
    )
    second_line = str(error.value).splitlines()[1]
    assert second_line == "b: out is 4 here, the size of inp, but W bound out=3"


def test_a_list_argument_the_body_changes_is_checked_again_after_the_call():
    # The stock check looks at the arguments again after the body; so must a remembered call.
    calls = []

    @checked
    def extend(values: list[Float[Array, "a b"]]) -> int:
        calls.append(1)
        values.append(np.ones((2, 3) if len(calls) < 4 else (2, 4)))
        return len(values)

    for _ in range(3):
        assert extend([np.ones((2, 3))]) == 2  # the same signature each time, before the call
    with pytest.raises(TypeCheckError, match=r"values\[1\]: b is 4 here, but values\[0\]"):
        extend([np.ones((2, 3))])
    assert len(calls) == 4  # and the body ran once per call


# --- never looser than stock, again: containers, iterables, the body ----------------------------


def annotated(function, **hints):
    """``function`` with these annotations (``returns`` for the result), for hints built here."""
    function.__annotations__ = {
        ("return" if name == "returns" else name): hint for name, hint in hints.items()
    }
    return function


def verdict(function, *arguments):
    """``"pass"``, or the name of the exception the call raised."""
    try:
        function(*arguments)
    except Exception as error:
        return type(error).__name__
    return "pass"


def first_and_after_a_pass(function, good, bad):
    """The verdicts of ``checked`` on ``bad``: the first call, then after ``good`` has passed
    (its signature remembered), a few times."""
    ours = checked(function)
    first = verdict(ours, *bad)
    assert verdict(ours, *good) == "pass"
    return [first, *(verdict(ours, *bad) for _ in range(3))]


VECTOR, INTEGERS = np.ones(2), np.ones(2, dtype=np.int64)


@pytest.mark.parametrize(
    ("hint", "container"),
    [
        (deque[Float[Array, " n"]], deque),
        (Sequence[Float[Array, " n"]], UserList),
        (
            Mapping[str, Float[Array, " n"]],
            lambda items: MappingProxyType(dict(zip("ab", items, strict=True))),
        ),
        (ValuesView[Float[Array, " n"]], lambda items: dict(enumerate(items)).values()),
        (Iterable[Float[Array, " n"]], deque),
    ],
    ids=["deque", "UserList", "MappingProxyType", "ValuesView", "Iterable of a deque"],
)
def test_a_container_is_not_remembered_by_its_type_alone(hint, container):
    # After one good call a deque whose items were all wrong passed: its signature was its type.
    def count(xs):
        return len(xs)

    count = annotated(count, xs=hint, returns=int)
    good, bad = (container([VECTOR, VECTOR]),), (container([INTEGERS, INTEGERS]),)
    assert verdict(jaxtyped(typechecker=beartype)(count), *bad) == "TypeCheckError"
    assert first_and_after_a_pass(count, good, bad) == ["TypeCheckError"] * 4


@pytest.mark.parametrize("origin", [Iterable, Reversible, Container, Collection, Sequence])
def test_every_item_is_checked_under_any_container_hint_beartype_samples(origin):
    # beartype checks one item of a list given to Iterable[...] (Reversible, Container): a lucky
    # first call passed and was remembered, and the list with a wrong item passed ever after.
    def count(xs):
        return len(xs)

    count = annotated(count, xs=origin[Float[Array, " n"]], returns=int)
    mixed = ([VECTOR, VECTOR, VECTOR, np.ones(3)],)
    stock = jaxtyped(typechecker=beartype)(count)
    if origin is not Collection:  # (Collection: beartype checks the first item, a good one)
        assert "TypeCheckError" in {verdict(stock, *mixed) for _ in range(200)}
    assert first_and_after_a_pass(count, ([VECTOR] * 4,), mixed) == ["TypeCheckError"] * 4
    with pytest.raises(TypeCheckError, match=r"xs\[3\]: n is 3 here, but xs\[0\] bound n=2"):
        checked(count)(*mixed)


def test_a_chain_map_and_an_array_of_arrays_are_checked_item_by_item():
    def count(xs):
        return len(xs)

    chained = annotated(count, xs=ChainMap[str, Float[Array, " n"]], returns=int)
    good = (ChainMap({"a": VECTOR}, {"b": VECTOR, "c": VECTOR}),)
    bad = (ChainMap({"a": VECTOR}, {"b": VECTOR, "c": np.ones(3)}),)
    assert first_and_after_a_pass(chained, good, bad) == ["TypeCheckError"] * 4

    def objects(*items):  # a one-dimensional array whose items are arrays
        array = np.empty(len(items), dtype=object)
        array[:] = list(items)
        return (array,)

    iterated = annotated(count, xs=Iterable[Float[Array, " n"]], returns=int)
    bad = objects(INTEGERS, INTEGERS)
    assert verdict(jaxtyped(typechecker=beartype)(iterated), *bad) == "TypeCheckError"
    good = objects(VECTOR, VECTOR)
    assert first_and_after_a_pass(iterated, good, bad) == ["TypeCheckError"] * 4


def reshape_in_place(x: Float[Array, " n"], k: int) -> int:
    if k:
        x.shape = (1, x.size)
    return 0


def reshape_in_place_beside_a_list(
    xs: list[Float[Array, " n"]], x: Float[Array, " n"], k: int
) -> int:
    if k:
        x.shape = (1, x.size)
    return len(xs)


@pytest.mark.parametrize("function", [reshape_in_place, reshape_in_place_beside_a_list])
def test_an_argument_the_body_reshapes_is_checked_again_after_the_body(function):
    # The stock check looks at the arguments again after the body, with the result.
    def call(k):
        return (np.ones(4), k) if function is reshape_in_place else ([np.ones(4)], np.ones(4), k)

    assert verdict(jaxtyped(typechecker=beartype)(function), *call(1)) == "TypeCheckError"
    ours = checked(function)
    assert verdict(ours, *call(1)) == "TypeCheckError"
    assert verdict(ours, *call(0)) == "pass"
    with pytest.raises(TypeCheckError, match=r"\Ax: 2 dimensions here, shape \(1, 4\)"):
        ours(*call(1))


def test_an_argument_the_body_changes_within_its_hint_still_passes():
    @checked
    def flatten(x: Float[Array, "..."]) -> int:
        x.shape = (x.size,)
        return x.size

    for _ in range(3):
        assert flatten(np.ones((2, 3))) == 6  # stock passes it too: "..." binds nothing


def test_isinstance_in_the_body_sees_the_sizes_the_arguments_bound():
    # Inside the stock check the body runs in the call's dimension scope: n is bound.
    def same_n(x: Float[Array, " n"], k: int) -> int:
        assert isinstance(np.ones(k), Float[Array, " n"])
        return 0

    def helper(k):  # a helper the body calls sees the same scope
        return isinstance(np.ones(k), Float[Array, " n"])

    def through_helper(x: Float[Array, " n"], k: int) -> int:
        assert helper(k)
        return 0

    def reads_k(x: Float[Array, " n"], k: int) -> int:
        assert isinstance(np.ones(k), Float[Array, " {k}"])  # {k}: the call's argument k
        return 0

    for function in (same_n, through_helper):
        assert verdict(jaxtyped(typechecker=beartype)(function), np.ones(5), 3) == (
            "AssertionError"
        )
        assert (
            first_and_after_a_pass(function, (np.ones(5), 5), (np.ones(5), 3))
            == ["AssertionError"] * 4
        )
    ours = checked(reads_k)
    for k in (3, 3, 4):
        assert ours(np.ones(5), k) == 0


def test_a_size_the_body_binds_by_isinstance_is_checked_against_the_result():
    def bind_m(x: Float[Array, " n"], k: int) -> Float[Array, " m"]:
        assert isinstance(np.ones(k), Float[Array, " m"])  # binds m=k in the call's scope
        return np.ones(3)

    assert verdict(jaxtyped(typechecker=beartype)(bind_m), np.ones(5), 4) == "TypeCheckError"
    assert (
        first_and_after_a_pass(bind_m, (np.ones(5), 3), (np.ones(5), 4)) == ["TypeCheckError"] * 4
    )


class _PositiveMeta(type):
    def __instancecheck__(cls, value):
        return isinstance(value, int) and value > 0


class Positive(metaclass=_PositiveMeta):
    """A hint whose ``isinstance`` reads the value: the type of an int does not decide it."""


PositiveT = TypeVar("PositiveT", bound=Positive)


@pytest.mark.parametrize("hint", [Positive, PositiveT, Positive | None], ids=str)
def test_a_hint_whose_isinstance_reads_the_value_is_checked_on_every_call(hint):
    def count(k, x):
        return 0

    count = annotated(count, k=hint, x=Float[Array, " n"], returns=int)
    assert verdict(jaxtyped(typechecker=beartype)(count), -3, VECTOR) == "TypeCheckError"
    assert first_and_after_a_pass(count, (3, VECTOR), (-3, VECTOR)) == ["TypeCheckError"] * 4


# --- the fast path and the jaxtyping adapter ------------------------------------------------------


def test_the_cached_fast_path_is_in_use_so_a_jaxtyping_upgrade_cannot_silently_cost_8x():
    written = jaxtyping_adapter.JAXTYPING_WRITTEN_FOR
    assert jaxtyping_adapter.JAXTYPING_VERSION_KNOWN, (
        f"jaxtyping {jaxtyping.__version__} is not a version typedbackprop's adapter was written "
        f"for ({', '.join(written)}): every checked call now takes the full check, about 8x "
        "slower. Check typedbackprop/checking/jaxtyping_adapter.py against this jaxtyping, then "
        "add its version to JAXTYPING_WRITTEN_FOR and to the bound in pyproject.toml"
    )
    assert jaxtyping_adapter.SCOPES_REOPEN, (
        f"jaxtyping {jaxtyping.__version__}'s memo stack is not what the adapter expects: "
        "every checked call takes the full check"
    )
    product = checked(matmul)
    W, a_prev = np.ones((4, 3)), np.ones((3, 5))
    for _ in range(100):
        product(W, a_prev)
    assert full_checks(product) == 1  # the first call; the other 99 were remembered
    product(W, np.ones((3, 6)))
    assert full_checks(product) == 2  # a new signature is checked in full
    assert full_checks(tbp.nn.affine_forward) is not None  # the package's own functions too


def test_the_adapter_refuses_the_fast_path_on_a_jaxtyping_it_was_not_written_for():
    assert jaxtyping_adapter.written_for("0.3.11") and jaxtyping_adapter.written_for("0.3")
    assert not jaxtyping_adapter.written_for("0.4.0")
    assert not jaxtyping_adapter.written_for("1.3.0")
    script = (
        "import jaxtyping, numpy as np\n"
        "jaxtyping.__version__ = '0.4.0'\n"
        "from jaxtyping import Float\n"
        "from typedbackprop.checking import Array, checked, full_checks, jaxtyping_adapter\n"
        "assert not jaxtyping_adapter.SCOPES_REOPEN\n"
        "@checked\n"
        "def double(x: Float[Array, ' n']) -> Float[Array, ' n']:\n"
        "    return 2 * x\n"
        "double(np.ones(3)); double(np.ones(3))\n"
        "assert full_checks(double) is None  # every call checked in full, none remembered\n"
        "try:\n"
        "    double(np.ones((3, 1)))\n"
        "except TypeError:\n"
        "    print('refused')\n"
    )
    done = subprocess.run(
        [sys.executable, "-W", "error", "-c", script], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0 and done.stdout == "refused\n", done.stderr


def test_jaxtypings_private_modules_are_used_by_the_adapter_alone():
    package = Path(checking.__file__).parent
    users = sorted(
        path.name
        for path in package.rglob("*.py")
        if re.search(
            r"jaxtyping\._|from jaxtyping\.\w+ import|import jaxtyping\.", path.read_text()
        )
    )
    assert users == ["jaxtyping_adapter.py"]
    elsewhere = [
        str(path.relative_to(package.parent.parent))
        for path in package.parent.rglob("*.py")
        if package not in path.parents and "jaxtyping._" in path.read_text()
    ]
    assert elsewhere == []


def test_diagnosis_asks_jaxtyping_whether_each_array_fits(monkeypatch):
    asked = []
    real_fits = jaxtyping_adapter.fits

    def spy(value, hint, *rest):
        asked.append(hint)
        return real_fits(value, hint, *rest)

    monkeypatch.setattr(jaxtyping_adapter, "fits", spy)
    W_hint, a_prev_hint = Float[Array, "out inp"], Float[Array, "inp batch"]
    steps = [("W", np.ones((4, 3)), W_hint), ("a_prev", np.ones((2, 5)), a_prev_hint)]
    line = diagnosis.disagreement(steps, {})
    assert asked == [W_hint, a_prev_hint]  # jaxtyping's verdict on each, then the wording
    assert line == "a_prev: inp is 2 here, but W bound inp=3"


# --- records checked at construction --------------------------------------------------------------


def test_a_record_is_checked_at_construction_as_one_call_of_its_fields(rng):
    with pytest.raises(TypeCheckError) as error:
        tbp.nn.Conv2d(rng.standard_normal((2, 3, 2, 2)), np.zeros(3))
    assert (
        first_line(error) == "b: out_channels is 3 here, the size of in_channels, but W bound "
        "out_channels=2"
    )
    assert "checking the parameters of typedbackprop.nn.conv.Conv2d" in str(error.value)
    with pytest.raises(ValueError, match="stride must be at least 1"):  # its settings first
        tbp.nn.Conv2d(rng.standard_normal((2, 3, 2, 2)), np.zeros(3), stride=0)

    @checked_record()
    @dataclasses.dataclass(frozen=True, slots=True)
    class Scale:
        gain: Float[Array, " features"]
        shift: Float[Array, " features"]
        note: str = "settings are not looked at"

    Scale(np.ones(3), np.zeros(3))
    with pytest.raises(TypeCheckError, match="shift: features is 4 here, but gain bound"):
        Scale(np.ones(3), np.zeros(4))


def test_every_family_with_arrays_checks_its_record_at_construction_one_way():
    nn = Path(tbp.nn.__file__).parent
    by_hand = [
        path.name
        for path in nn.glob("*.py")
        if re.search(r"def _check_\w*shapes", path.read_text())
    ]
    assert by_hand == []  # no record binds its arrays' dimensions through a function of its own
    checked_at_construction = {
        kind.__name__ for kind in tbp.nn.FAMILIES if getattr(kind, "__checked_record__", False)
    }
    assert checked_at_construction == {
        kind.__name__ for kind in tbp.nn.FAMILIES if record_fields(kind)
    }
