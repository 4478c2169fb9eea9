"""Tests for typedbackprop.checking: the cached check must give the stock check's verdicts."""

from typing import Annotated, Literal

import numpy as np
import pytest
from beartype import beartype
from beartype.vale import Is
from jaxtyping import Float, TypeCheckError, jaxtyped

import typedbackprop as tbp
from typedbackprop.checking import Array, checked


def matmul(
    W: Float[Array, "out in"], a_prev: Float[Array, "in batch"]
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
    assert hasattr(tbp.affine_forward, "__wrapped__")


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
    assert str(first.value) == str(stock.value) == str(thousandth.value)


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
