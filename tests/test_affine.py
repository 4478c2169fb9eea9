"""Tests for typedbackprop.affine."""

import numpy as np
import pytest
import torch
from helpers import assert_close, vjp
from hypothesis import given, settings
from hypothesis import strategies as st
from jaxtyping import TypeCheckError

import typedbackprop as tbp

W = np.array([[1.0, 2.0, 3.0], [0.0, -1.0, 0.5]])  # (out=2, in=3)
b = np.array([0.5, -1.0])
a_prev = np.array([[1.0, 0.0], [2.0, 1.0], [-1.0, 4.0]])  # (in=3, batch=2)
grad_z = np.array([[1.0, -1.0], [2.0, 0.5]])  # (out=2, batch=2)


def test_forward_by_hand():
    # column 0: [1+4-3, -2-0.5] + b = [2.5, -3.5]; column 1: [0+2+12, -1+2] + b = [14.5, 0]
    np.testing.assert_array_equal(tbp.affine_forward(W, b, a_prev), [[2.5, 14.5], [-3.5, 0.0]])


def test_backward_by_hand():
    grad_W, grad_b, grad_a_prev = tbp.affine_backward(grad_z, W, a_prev)
    # grad_W[o, i] = Σ_b grad_z[o, b] a_prev[i, b]
    np.testing.assert_array_equal(grad_W, [[1.0, 1.0, -5.0], [2.0, 4.5, 0.0]])
    np.testing.assert_array_equal(grad_b, [0.0, 2.5])
    # grad_a_prev[i, b] = Σ_o W[o, i] grad_z[o, b]
    np.testing.assert_array_equal(grad_a_prev, [[1.0, -1.0], [0.0, -2.5], [4.0, -2.75]])


def test_the_three_functions_agree():
    grad_W, grad_b, grad_a_prev = tbp.affine_backward(grad_z, W, a_prev)
    params = tbp.affine_grad_params(grad_z, a_prev)
    np.testing.assert_array_equal(params[0], grad_W)
    np.testing.assert_array_equal(params[1], grad_b)
    np.testing.assert_array_equal(tbp.affine_grad_input(grad_z, W), grad_a_prev)


def test_gradient_check():
    rng = np.random.default_rng(0)
    inputs = [rng.standard_normal((4, 3)), rng.standard_normal(4), rng.standard_normal((3, 5))]
    report = tbp.gradcheck(
        tbp.affine_forward, lambda g, W, b, a_prev: tbp.affine_backward(g, W, a_prev), inputs
    )
    assert report.passed and [check.name for check in report.arguments] == ["W", "b", "a_prev"]


@settings(deadline=None, max_examples=40)
@given(
    out=st.integers(1, 6), inputs=st.integers(1, 6), batch=st.integers(1, 6),
    seed=st.integers(0, 2**32 - 1),
)  # fmt: skip
def test_against_torch(out, inputs, batch, seed):
    rng = np.random.default_rng(seed)
    W, b = rng.standard_normal((out, inputs)), rng.standard_normal(out)
    a_prev, grad_z = rng.standard_normal((inputs, batch)), rng.standard_normal((out, batch))
    z, (grad_W, grad_b, grad_a_prev) = vjp(
        lambda W, b, a: W @ a + b[:, None], [W, b, a_prev], grad_z
    )
    assert_close(tbp.affine_forward(W, b, a_prev), z)
    for mine, theirs in zip(
        tbp.affine_backward(grad_z, W, a_prev), (grad_W, grad_b, grad_a_prev), strict=True
    ):
        assert_close(mine, theirs)
    assert_close(
        tbp.affine_forward(W, b, a_prev),
        torch.nn.functional.linear(torch.tensor(a_prev.T), torch.tensor(W), torch.tensor(b)).T,
    )


@pytest.mark.parametrize(
    ("call", "dimension"),
    [
        (lambda: tbp.affine_forward(W, b, a_prev.T), "in=3"),  # batch-first data
        (lambda: tbp.affine_forward(W, np.ones(3), a_prev), "out=2"),  # bias of the wrong length
        (lambda: tbp.affine_forward(W.T, b, a_prev), "out=3"),  # transposed weights
        (lambda: tbp.affine_grad_params(grad_z, a_prev.T), "batch=2"),
        (lambda: tbp.affine_grad_input(np.ones((3, 2)), W), "out=3"),
        (lambda: tbp.affine_backward(grad_z, W, np.ones((4, 2))), "in=3"),
    ],
)
def test_wrong_shapes_name_the_dimension(call, dimension):
    with pytest.raises(TypeCheckError, match=dimension):
        call()


def test_integer_arrays_are_refused():
    with pytest.raises(TypeCheckError):
        tbp.affine_forward(W.astype(np.int64), b, a_prev)


def test_float32_in_float32_out():
    W32, b32, a32, g32 = (array.astype(np.float32) for array in (W, b, a_prev, grad_z))
    assert tbp.affine_forward(W32, b32, a32).dtype == np.float32
    assert all(grad.dtype == np.float32 for grad in tbp.affine_backward(g32, W32, a32))


def test_the_bias_is_added_along_out_even_when_out_equals_batch():
    square_W, square_a = np.eye(2), np.zeros((2, 2))
    np.testing.assert_array_equal(
        tbp.affine_forward(square_W, np.array([1.0, 2.0]), square_a), [[1.0, 1.0], [2.0, 2.0]]
    )
