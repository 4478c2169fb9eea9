"""Tests for typedbackprop.nn.softmax: softmax down each column and its backward pass."""

import math

import numpy as np
import pytest
from helpers import (
    EPS,
    HUGE,
    SEEDS,
    SIZES,
    assert_close,
    assert_leaves_inputs_alone,
    raises_shape_error,
    torch_softmax,
)
from hypothesis import given, settings
from hypothesis import strategies as st

import typedbackprop as tbp

LN2 = math.log(2.0)


def softmax_backward_at(grad_a, z):
    """``softmax_backward`` in the ``backward(grad_a, z)`` form gradcheck calls."""
    return tbp.nn.softmax_backward(grad_a, z, tbp.nn.softmax_forward(z))


@st.composite
def logits(draw):
    """``(z, grad_a)`` of shape (classes, batch), each from 1 to 6; z up to about ±15."""
    classes, batch = draw(SIZES), draw(SIZES)
    scale = draw(st.sampled_from([0.1, 1.0, 5.0]))
    rng = np.random.default_rng(draw(SEEDS))
    return (
        rng.standard_normal((classes, batch)) * scale,
        rng.standard_normal((classes, batch)),
    )


# --- values by hand ---------------------------------------------------------------------------


def test_forward_by_hand():
    # Column 0: e⁰ : e^{ln 2} = 1 : 2, so ⅓ and ⅔. Column 1: equal logits, so ½ and ½.
    z = np.array([[0.0, 0.0], [LN2, 0.0]])
    assert_close(tbp.nn.softmax_forward(z), [[1 / 3, 0.5], [2 / 3, 0.5]], rtol=1e-15)


def test_forward_of_one_class_is_one():
    np.testing.assert_array_equal(tbp.nn.softmax_forward(np.array([[-3.0, 0.0, 7.0]])), [[1, 1, 1]])


def test_backward_by_hand():
    # a = [⅓, ⅔], upstream e₀ = [1, 0]: Σ_c a_c g_c = ⅓, so
    # grad_z = a ⊙ (g − ⅓) = [⅓ · ⅔, ⅔ · (−⅓)] = [2/9, −2/9].
    z = np.array([[0.0], [LN2]])
    grad_z = tbp.nn.softmax_backward(np.array([[1.0], [0.0]]), z, tbp.nn.softmax_forward(z))
    assert_close(grad_z, [[2 / 9], [-2 / 9]], rtol=1e-15)


def test_backward_of_a_constant_upstream_gradient_is_zero():
    # Adding the same g to every class changes nothing downstream: the columns sum to 1.
    z = np.array([[0.3, -1.0], [2.0, 0.5], [-0.7, 0.0]])
    grad_z = tbp.nn.softmax_backward(np.full((3, 2), 5.0), z, tbp.nn.softmax_forward(z))
    assert np.max(np.abs(grad_z)) <= 1e-14  # zero, but for the rounding of Σ_c a_c ≈ 1


# --- properties, gradient check and PyTorch ---------------------------------------------------


@settings(deadline=None, max_examples=40)
@given(case=logits(), shift=st.sampled_from([-1e3, 1.0, 1e3]))
def test_columns_sum_to_one_and_shifting_a_column_changes_nothing(case, shift):
    z, _ = case
    a = tbp.nn.softmax_forward(z)
    assert np.all(a >= 0.0)
    assert_close(a.sum(axis=0), np.ones(z.shape[1]), rtol=1e-14)
    shifts = shift * np.arange(1, z.shape[1] + 1)  # a different shift for each example
    # z + 6000 is rounded to within 4.5e-13, and so are the differences of logits it keeps.
    assert_close(tbp.nn.softmax_forward(z + shifts), a, rtol=1e-11)


@settings(deadline=None, max_examples=30)
@given(case=logits())
def test_backward_passes_gradcheck(case):
    z, _ = case
    report = tbp.gradcheck(tbp.nn.softmax_forward, softmax_backward_at, [z])
    assert report.passed


@settings(deadline=None, max_examples=60)
@given(case=logits())
def test_forward_and_backward_match_torch(case):
    z, grad_a = case
    a, grad_z = torch_softmax(z, grad_a)
    assert_close(tbp.nn.softmax_forward(z), a)
    # The gradient of a saturated column, a ⊙ (grad_a − Σ a grad_a), is a small difference: in
    # both libraries good to a few units of float64's spacing (times grad_a) absolutely, not to
    # 1e-10 relatively. Allow that much on top.
    saturation = 8 * EPS * np.max(np.abs(grad_a))
    assert_close(
        tbp.nn.softmax_backward(grad_a, z, tbp.nn.softmax_forward(z)), grad_z, atol=saturation
    )


# --- numerical stability ----------------------------------------------------------------------


@pytest.mark.filterwarnings("error")  # an overflow in np.exp is a failure, not noise
@pytest.mark.parametrize(("dtype", "big"), HUGE)
def test_huge_logits_give_exact_probabilities_without_warnings(dtype, big):
    # exp(1e4) overflows even float64; with the column maximum subtracted it is never taken.
    z = np.array([[big, -big, 0.0], [-big, big, 0.0], [0.0, 0.0, big]], dtype=dtype)
    a = tbp.nn.softmax_forward(z)
    assert a.dtype == dtype
    np.testing.assert_array_equal(a, [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    grad_z = tbp.nn.softmax_backward(np.ones_like(z), z, a)
    assert np.all(np.isfinite(grad_z))


@pytest.mark.filterwarnings("error")
def test_large_logits_keep_their_differences():
    # softmax([1e4, 1e4 + ln 2]) = softmax([0, ln 2]) = [⅓, ⅔]; the naive form gives inf/inf.
    z = np.array([[1e4], [1e4 + LN2]])
    assert_close(tbp.nn.softmax_forward(z), [[1 / 3], [2 / 3]], rtol=1e-11)


# --- wrong shapes and kinds -------------------------------------------------------------------


def test_backward_with_batch_first_z_names_the_dimensions():
    grad_a = np.ones((3, 5))  # binds classes=3, batch=5
    with raises_shape_error("classes=3", "batch=5"):
        tbp.nn.softmax_backward(grad_a, np.ones((5, 3)), grad_a)


def test_backward_with_a_of_another_size_names_the_dimensions():
    z = np.ones((3, 5))
    with raises_shape_error("classes=3", "batch=5"):
        tbp.nn.softmax_backward(z, z, np.ones((4, 5)))


@pytest.mark.parametrize(
    "bad",
    [np.ones(4), np.ones((2, 3, 4)), np.ones((3, 4), dtype=np.int64)],
    ids=["one example as a vector", "3-d", "int"],
)
def test_forward_refuses_what_is_not_a_float_matrix(bad):
    with raises_shape_error():
        tbp.nn.softmax_forward(bad)


# --- purity and dtypes ------------------------------------------------------------------------


def test_inputs_are_not_modified(rng):
    z, grad_a = rng.standard_normal((4, 3)), rng.standard_normal((4, 3))
    a = assert_leaves_inputs_alone(tbp.nn.softmax_forward, z)
    assert_leaves_inputs_alone(tbp.nn.softmax_backward, grad_a, z, a)


def test_float32_in_float32_out(rng):
    z = rng.standard_normal((4, 3)).astype(np.float32)
    a = tbp.nn.softmax_forward(z)
    assert a.dtype == np.float32
    assert tbp.nn.softmax_backward(np.ones_like(z), z, a).dtype == np.float32
