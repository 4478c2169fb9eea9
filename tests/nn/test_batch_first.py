"""Tests for typedbackprop.nn.batch_first: ``z = a_prev W + b`` with one row per example."""

import numpy as np
import pytest
import torch.nn.functional as F
from helpers import SEEDS, assert_close, assert_leaves_inputs_alone, raises_shape_error, vjp
from hypothesis import given, settings
from hypothesis import strategies as st
from jaxtyping import Float

import typedbackprop as tbp
from typedbackprop import Array
from typedbackprop.nn.batch_first import (
    affine_backward_batch_first,
    affine_forward_batch_first,
    affine_grad_input_batch_first,
    affine_grad_params_batch_first,
)

DISTINCT_SIZES = st.lists(st.integers(1, 7), min_size=3, max_size=3, unique=True)
"""``[batch, inp, out]``, three different sizes: a transposed axis changes a shape."""


@st.composite
def batch_first_layers(draw):
    """``(W, b, a_prev, grad_z)`` of a random batch-first layer, every dimension its own size."""
    batch, inp, out = draw(DISTINCT_SIZES)
    rng = np.random.default_rng(draw(SEEDS))
    return (
        rng.standard_normal((inp, out)),
        rng.standard_normal(out),
        rng.standard_normal((batch, inp)),
        rng.standard_normal((batch, out)),  # a random upstream gradient, never all ones
    )


def backward_of_all_three(grad_z, W, b, a_prev):
    """``affine_backward_batch_first`` in the ``backward(grad_output, *inputs)`` form."""
    return affine_backward_batch_first(grad_z, W, a_prev)


def torch_linear_batch_first(W, b, a_prev, grad_z):
    """``F.linear`` computes ``a_prev Aᵀ + b`` for ``A: (out, inp)``; here ``A = Wᵀ``."""
    return vjp(lambda W, b, a_prev: F.linear(a_prev, W.T, b), [W, b, a_prev], grad_z)


# --- values by hand ---------------------------------------------------------------------------

# batch=3, inp=2, out=1: every dimension a different size, so every transpose changes a shape.
W_TALL = np.array([[2.0], [-1.0]])  # (inp, out)
B_TALL = np.array([0.5])
A_PREV_TALL = np.array([[1.0, 4.0], [2.0, 5.0], [3.0, 6.0]])  # (batch, inp): one row per example
GRAD_Z_TALL = np.array([[1.0], [-1.0], [2.0]])  # (batch, out)


def test_forward_by_hand_one_row_per_example():
    # z_b = 2 a_{b0} − a_{b1} + 0.5: [2 − 4, 4 − 5, 6 − 6] + 0.5, one row each
    z = affine_forward_batch_first(W_TALL, B_TALL, A_PREV_TALL)
    np.testing.assert_array_equal(z, [[-1.5], [-0.5], [0.5]])


def test_forward_by_hand_adds_the_bias_to_every_row_when_out_equals_batch():
    # a_prev W = [[5·1 + 7·2, 5·3 + 7·4], [6·1 + 8·2, 6·3 + 8·4]] = [[19, 43], [22, 50]];
    # b is added to every row: out is the trailing axis, so plain broadcasting is right here.
    W = np.array([[1.0, 3.0], [2.0, 4.0]])
    a_prev = np.array([[5.0, 7.0], [6.0, 8.0]])
    z = affine_forward_batch_first(W, np.array([10.0, 20.0]), a_prev)
    np.testing.assert_array_equal(z, [[29.0, 63.0], [32.0, 70.0]])


def test_grad_params_by_hand():
    # grad_W = a_prevᵀ grad_z: (2, 3) @ (3, 1) = [[1 − 2 + 6], [4 − 5 + 12]]; grad_b sums rows.
    grad_W, grad_b = affine_grad_params_batch_first(GRAD_Z_TALL, A_PREV_TALL)
    np.testing.assert_array_equal(grad_W, [[5.0], [11.0]])
    np.testing.assert_array_equal(grad_b, [2.0])


def test_grad_input_by_hand():
    # grad_z Wᵀ: (3, 1) @ (1, 2), the column [1, −1, 2] times the row [2, −1]
    grad_a_prev = affine_grad_input_batch_first(GRAD_Z_TALL, W_TALL)
    np.testing.assert_array_equal(grad_a_prev, [[2.0, -1.0], [-2.0, 1.0], [4.0, -2.0]])


def test_backward_by_hand_returns_all_three_gradients():
    grad_W, grad_b, grad_a_prev = affine_backward_batch_first(GRAD_Z_TALL, W_TALL, A_PREV_TALL)
    np.testing.assert_array_equal(grad_W, [[5.0], [11.0]])
    np.testing.assert_array_equal(grad_b, [2.0])
    np.testing.assert_array_equal(grad_a_prev, [[2.0, -1.0], [-2.0, 1.0], [4.0, -2.0]])


# --- gradient checks --------------------------------------------------------------------------


@settings(deadline=None, max_examples=30)
@given(layer=batch_first_layers())
def test_backward_passes_gradcheck(layer):
    W, b, a_prev, _ = layer
    report = tbp.gradcheck(affine_forward_batch_first, backward_of_all_three, [W, b, a_prev])
    assert report.passed
    assert [check.name for check in report.arguments] == ["W", "b", "a_prev"]


@settings(deadline=None, max_examples=20)
@given(layer=batch_first_layers())
def test_grad_params_and_grad_input_pass_gradcheck_alone(layer):
    W, b, a_prev, _ = layer
    assert tbp.gradcheck(
        lambda W, b: affine_forward_batch_first(W, b, a_prev),
        lambda grad_z, W, b: affine_grad_params_batch_first(grad_z, a_prev),
        [W, b],
        names=["W", "b"],
    ).passed
    assert tbp.gradcheck(
        lambda a_prev: affine_forward_batch_first(W, b, a_prev),
        lambda grad_z, a_prev: affine_grad_input_batch_first(grad_z, W),
        [a_prev],
        names=["a_prev"],
    ).passed


# --- against PyTorch, and against the features-first twin ---------------------------------------


@settings(deadline=None, max_examples=60)
@given(layer=batch_first_layers())
def test_matches_torch(layer):
    W, b, a_prev, grad_z = layer
    z, expected = torch_linear_batch_first(W, b, a_prev, grad_z)
    assert_close(affine_forward_batch_first(W, b, a_prev), z)
    ours = affine_backward_batch_first(grad_z, W, a_prev)
    for name, mine, theirs in zip(["grad_W", "grad_b", "grad_a_prev"], ours, expected, strict=True):
        assert mine.shape == theirs.shape, name
        assert_close(mine, theirs)
    grad_W, grad_b = affine_grad_params_batch_first(grad_z, a_prev)
    assert_close(grad_W, expected[0])
    assert_close(grad_b, expected[1])
    assert_close(affine_grad_input_batch_first(grad_z, W), expected[2])


@settings(deadline=None, max_examples=30)
@given(layer=batch_first_layers())
def test_every_value_is_the_transpose_of_the_features_first_twin(layer):
    W, b, a_prev, grad_z = layer  # batch first: W (inp, out), a_prev (batch, inp)
    z = affine_forward_batch_first(W, b, a_prev)
    assert_close(z, tbp.nn.affine_forward(W.T, b, a_prev.T).T, rtol=1e-13)
    twins = tbp.nn.affine_backward(grad_z.T, W.T, a_prev.T)
    ours = affine_backward_batch_first(grad_z, W, a_prev)
    assert_close(ours[0], twins[0].T, rtol=1e-13)  # grad_W: (inp, out) = ((out, inp))ᵀ
    assert_close(ours[1], twins[1], rtol=1e-13)  # grad_b: (out,) in both layouts
    assert_close(ours[2], twins[2].T, rtol=1e-13)  # grad_a_prev: (batch, inp) = ((inp, batch))ᵀ


# --- wrong shapes -----------------------------------------------------------------------------

# batch=5, inp=3, out=4: three different sizes, so every confusion changes a shape.
RNG = np.random.default_rng(7)
W = RNG.standard_normal((3, 4))
B = RNG.standard_normal(4)
A_PREV = RNG.standard_normal((5, 3))
GRAD_Z = RNG.standard_normal((5, 4))


@pytest.mark.parametrize(
    ("call", "bound"),
    [
        pytest.param(
            lambda: affine_forward_batch_first(W.T, B, A_PREV),
            ["inp=4", "out=3"],
            id="W stored (out, inp), the features-first way",
        ),
        pytest.param(
            lambda: affine_forward_batch_first(W, B, A_PREV.T),
            ["inp=3", "out=4"],
            id="features-first data",
        ),
        pytest.param(
            lambda: affine_forward_batch_first(W, np.ones(5), A_PREV),
            ["inp=3", "out=4"],
            id="bias with one entry per example",
        ),
        pytest.param(
            lambda: affine_grad_params_batch_first(GRAD_Z.T, A_PREV),
            ["batch=4", "out=5"],
            id="grad_params: features-first grad_z",
        ),
        pytest.param(
            lambda: affine_grad_input_batch_first(GRAD_Z, W.T),
            ["batch=5", "out=4"],
            id="grad_input: W transposed",
        ),
        pytest.param(
            lambda: affine_backward_batch_first(GRAD_Z, W, A_PREV.T),
            ["batch=5", "out=4", "inp=3"],
            id="backward: features-first a_prev",
        ),
    ],
)
def test_wrong_shapes_raise_naming_the_dimension(call, bound):
    with raises_shape_error(*bound):
        call()


@tbp.checked
def grad_W_in_the_features_first_order(
    grad_z: Float[Array, "batch out"], a_prev: Float[Array, "batch inp"]
) -> Float[Array, "inp out"]:
    """BP4 written ``δᵀ a_prev``, the features-first ``δ a_prevᵀ`` transposed: ``(out, inp)``."""
    return grad_z.T @ a_prev


def test_a_product_in_the_other_order_is_refused_naming_in_and_out():
    with raises_shape_error("batch=5", "out=4", "inp=3"):
        grad_W_in_the_features_first_order(GRAD_Z, A_PREV)


# --- purity and dtypes ------------------------------------------------------------------------


def test_no_function_modifies_its_arguments():
    z = assert_leaves_inputs_alone(affine_forward_batch_first, W, B, A_PREV)
    assert_close(z, A_PREV @ W + B, rtol=1e-15)
    assert_leaves_inputs_alone(affine_grad_params_batch_first, GRAD_Z, A_PREV)
    assert_leaves_inputs_alone(affine_grad_input_batch_first, GRAD_Z, W)
    assert_leaves_inputs_alone(affine_backward_batch_first, GRAD_Z, W, A_PREV)


def test_float32_in_float32_out():
    W32, B32, A32, G32 = (value.astype(np.float32) for value in (W, B, A_PREV, GRAD_Z))
    assert affine_forward_batch_first(W32, B32, A32).dtype == np.float32
    assert [g.dtype for g in affine_backward_batch_first(G32, W32, A32)] == [np.float32] * 3
