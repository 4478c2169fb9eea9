"""Tests for typedbackprop.nn.affine: ``z = W a_prev + b`` and its three gradients."""

import numpy as np
import pytest
from helpers import (
    SEEDS,
    SIZES,
    assert_close,
    assert_leaves_inputs_alone,
    raises_shape_error,
    torch_affine,
)
from hypothesis import given, settings
from hypothesis import strategies as st
from jaxtyping import TypeCheckError

import typedbackprop as tbp
from typedbackprop.nn.affine import dense_backward_params


@st.composite
def affine_layers(draw):
    """``(W, b, a_prev, grad_z)`` of a random layer: out, inp and batch each from 1 to 6."""
    out, inp, batch = draw(SIZES), draw(SIZES), draw(SIZES)
    rng = np.random.default_rng(draw(SEEDS))
    return (
        rng.standard_normal((out, inp)),
        rng.standard_normal(out),
        rng.standard_normal((inp, batch)),
        rng.standard_normal((out, batch)),
    )


def backward_of_all_three(grad_z, W, b, a_prev):
    """``affine_backward`` in the ``backward(grad_output, *inputs)`` form gradcheck calls."""
    return tbp.nn.affine_backward(grad_z, W, a_prev)


# --- values by hand ---------------------------------------------------------------------------

# A 2×2 layer whose out equals its batch: adding b along the wrong axis (W @ a_prev + b, which
# broadcasts b along batch) gives [[29, 42], [53, 70]] here, not the right answer below.
W_SQUARE = np.array([[1.0, 2.0], [3.0, 4.0]])
B_SQUARE = np.array([10.0, 20.0])
A_PREV_SQUARE = np.array([[5.0, 6.0], [7.0, 8.0]])
GRAD_Z_SQUARE = np.array([[1.0, 2.0], [3.0, 4.0]])

# A layer with out=1, inp=2, batch=3, so that every transpose changes a shape.
W_WIDE = np.array([[2.0, -1.0]])
B_WIDE = np.array([0.5])
A_PREV_WIDE = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
GRAD_Z_WIDE = np.array([[1.0, -1.0, 2.0]])


def test_forward_by_hand_adds_the_bias_to_every_column():
    # W a_prev = [[1·5 + 2·7, 1·6 + 2·8], [3·5 + 4·7, 3·6 + 4·8]] = [[19, 22], [43, 50]];
    # b_o is added to every entry of row o.
    z = tbp.nn.affine_forward(W_SQUARE, B_SQUARE, A_PREV_SQUARE)
    np.testing.assert_array_equal(z, [[29.0, 32.0], [63.0, 70.0]])


def test_forward_by_hand_with_every_dimension_different():
    # z_b = 2 a_{0b} − a_{1b} + 0.5: [2 − 4, 4 − 5, 6 − 6] + 0.5
    z = tbp.nn.affine_forward(W_WIDE, B_WIDE, A_PREV_WIDE)
    np.testing.assert_array_equal(z, [[-1.5, -0.5, 0.5]])


def test_grad_params_by_hand():
    # grad_W = grad_z a_prevᵀ: [[1·5 + 2·6, 1·7 + 2·8], [3·5 + 4·6, 3·7 + 4·8]];
    # grad_b sums grad_z over the batch: [1 + 2, 3 + 4].
    grad_W, grad_b = tbp.nn.affine_grad_params(GRAD_Z_SQUARE, A_PREV_SQUARE)
    np.testing.assert_array_equal(grad_W, [[17.0, 23.0], [39.0, 53.0]])
    np.testing.assert_array_equal(grad_b, [3.0, 7.0])
    # (1, 3) @ (3, 2): [1·1 − 1·2 + 2·3, 1·4 − 1·5 + 2·6]
    grad_W, grad_b = tbp.nn.affine_grad_params(GRAD_Z_WIDE, A_PREV_WIDE)
    np.testing.assert_array_equal(grad_W, [[5.0, 11.0]])
    np.testing.assert_array_equal(grad_b, [2.0])


def test_grad_input_by_hand():
    # Wᵀ grad_z = [[1, 3], [2, 4]] @ [[1, 2], [3, 4]]
    grad_a_prev = tbp.nn.affine_grad_input(GRAD_Z_SQUARE, W_SQUARE)
    np.testing.assert_array_equal(grad_a_prev, [[10.0, 14.0], [14.0, 20.0]])
    # (2, 1) @ (1, 3): the column [2, −1] times the row [1, −1, 2]
    grad_a_prev = tbp.nn.affine_grad_input(GRAD_Z_WIDE, W_WIDE)
    np.testing.assert_array_equal(grad_a_prev, [[2.0, -2.0, 4.0], [-1.0, 1.0, -2.0]])


def test_backward_by_hand_returns_all_three_gradients():
    grad_W, grad_b, grad_a_prev = tbp.nn.affine_backward(GRAD_Z_WIDE, W_WIDE, A_PREV_WIDE)
    np.testing.assert_array_equal(grad_W, [[5.0, 11.0]])
    np.testing.assert_array_equal(grad_b, [2.0])
    np.testing.assert_array_equal(grad_a_prev, [[2.0, -2.0, 4.0], [-1.0, 1.0, -2.0]])


# --- gradient checks --------------------------------------------------------------------------


@settings(deadline=None, max_examples=30)
@given(layer=affine_layers())
def test_affine_backward_passes_gradcheck(layer):
    W, b, a_prev, _ = layer
    report = tbp.gradcheck(tbp.nn.affine_forward, backward_of_all_three, [W, b, a_prev])
    assert report.passed
    assert [check.name for check in report.arguments] == ["W", "b", "a_prev"]


@settings(deadline=None, max_examples=30)
@given(layer=affine_layers())
def test_affine_grad_params_passes_gradcheck(layer):
    W, b, a_prev, _ = layer
    report = tbp.gradcheck(
        lambda W, b: tbp.nn.affine_forward(W, b, a_prev),
        lambda grad_z, W, b: tbp.nn.affine_grad_params(grad_z, a_prev),
        [W, b],
        names=["W", "b"],
    )
    assert report.passed


@settings(deadline=None, max_examples=30)
@given(layer=affine_layers())
def test_affine_grad_input_passes_gradcheck(layer):
    W, b, a_prev, _ = layer
    report = tbp.gradcheck(
        lambda a_prev: tbp.nn.affine_forward(W, b, a_prev),
        lambda grad_z, a_prev: tbp.nn.affine_grad_input(grad_z, W),
        [a_prev],
        names=["a_prev"],
    )
    assert report.passed


# --- against PyTorch --------------------------------------------------------------------------


@settings(deadline=None, max_examples=60)
@given(layer=affine_layers())
def test_affine_matches_torch(layer):
    W, b, a_prev, grad_z = layer
    z, (grad_W, grad_b, grad_a_prev) = torch_affine(W, b, a_prev, grad_z)
    assert_close(tbp.nn.affine_forward(W, b, a_prev), z)
    ours = tbp.nn.affine_backward(grad_z, W, a_prev)
    for name, mine, theirs in zip(
        ["grad_W", "grad_b", "grad_a_prev"], ours, [grad_W, grad_b, grad_a_prev], strict=True
    ):
        assert mine.shape == theirs.shape, name
        assert_close(mine, theirs)
    params = tbp.nn.affine_grad_params(grad_z, a_prev)
    assert_close(params[0], grad_W)
    assert_close(params[1], grad_b)
    assert_close(tbp.nn.affine_grad_input(grad_z, W), grad_a_prev)


# --- wrong shapes and kinds -------------------------------------------------------------------

# out=4, inp=3, batch=5: three different sizes, so every confusion changes a shape.
W = np.ones((4, 3))
B = np.ones(4)
A_PREV = np.ones((3, 5))
GRAD_Z = np.ones((4, 5))


@pytest.mark.parametrize(
    ("call", "bound"),
    [
        pytest.param(
            lambda: tbp.nn.affine_forward(W, B, A_PREV.T), ["out=4", "inp=3"], id="batch-first data"
        ),
        pytest.param(
            lambda: tbp.nn.affine_forward(W, np.ones(5), A_PREV), ["out=4"], id="bias too long"
        ),
        pytest.param(
            lambda: tbp.nn.affine_forward(W, np.ones((4, 1)), A_PREV), ["out=4"], id="bias a column"
        ),
        pytest.param(
            lambda: tbp.nn.affine_forward(W.T, B, A_PREV), ["out=3", "inp=4"], id="W transposed"
        ),
        pytest.param(
            lambda: tbp.nn.affine_grad_params(GRAD_Z, A_PREV.T),
            ["out=4", "batch=5"],
            id="grad_params: batch-first a_prev",
        ),
        pytest.param(
            lambda: tbp.nn.affine_grad_params(GRAD_Z.T, A_PREV),
            ["out=5", "batch=4"],
            id="grad_params: grad_z transposed",
        ),
        pytest.param(
            lambda: tbp.nn.affine_grad_input(GRAD_Z, W.T),
            ["out=4", "batch=5"],
            id="grad_input: W transposed",
        ),
        pytest.param(
            lambda: tbp.nn.affine_backward(GRAD_Z, W, A_PREV.T),
            ["out=4", "batch=5", "inp=3"],
            id="backward: batch-first a_prev",
        ),
        pytest.param(
            lambda: tbp.nn.affine_backward(GRAD_Z, W.T, A_PREV),
            ["out=4", "batch=5"],
            id="backward: W transposed",
        ),
    ],
)
def test_wrong_shapes_raise_naming_the_dimension(call, bound):
    with raises_shape_error(*bound):
        call()


@pytest.mark.parametrize(
    "call",
    [
        pytest.param(lambda: tbp.nn.affine_forward(W, B, A_PREV.astype(np.int64)), id="int a_prev"),
        pytest.param(lambda: tbp.nn.affine_forward(W, B.astype(np.int64), A_PREV), id="int b"),
        pytest.param(lambda: tbp.nn.affine_grad_params(GRAD_Z, A_PREV.astype(int)), id="int a"),
        pytest.param(lambda: tbp.nn.affine_grad_input(GRAD_Z, W.astype(np.int32)), id="int W"),
        pytest.param(lambda: tbp.nn.affine_backward(GRAD_Z, W, A_PREV.astype(int)), id="int a_"),
    ],
)
def test_integer_arrays_are_refused(call):
    # The bound sizes are right; the message names them and the integer dtype it refused.
    with raises_shape_error("out=4"):
        call()


# --- purity and dtypes ------------------------------------------------------------------------


def test_no_affine_function_modifies_its_arguments(rng):
    W, b = rng.standard_normal((4, 3)), rng.standard_normal(4)
    a_prev, grad_z = rng.standard_normal((3, 5)), rng.standard_normal((4, 5))
    z = assert_leaves_inputs_alone(tbp.nn.affine_forward, W, b, a_prev)
    assert_close(z, W @ a_prev + b[:, np.newaxis], rtol=1e-15)
    assert_leaves_inputs_alone(tbp.nn.affine_grad_params, grad_z, a_prev)
    assert_leaves_inputs_alone(tbp.nn.affine_grad_input, grad_z, W)
    assert_leaves_inputs_alone(tbp.nn.affine_backward, grad_z, W, a_prev)


def test_float32_in_float32_out(rng):
    W, b, a_prev, grad_z = (
        rng.standard_normal(shape).astype(np.float32) for shape in [(4, 3), 4, (3, 5), (4, 5)]
    )
    assert tbp.nn.affine_forward(W, b, a_prev).dtype == np.float32
    assert [g.dtype for g in tbp.nn.affine_grad_params(grad_z, a_prev)] == [np.float32] * 2
    assert tbp.nn.affine_grad_input(grad_z, W).dtype == np.float32
    assert [g.dtype for g in tbp.nn.affine_backward(grad_z, W, a_prev)] == [np.float32] * 3


def test_dense_backward_checks_against_the_sizes_its_forward_saw(rng):
    """Only the cache knows ``batch`` and ``inp``: backward is checked in forward's scope."""
    layer = tbp.Dense(rng.standard_normal((4, 3)), rng.standard_normal(4))  # out=4, inp=3
    _, cache = tbp.nn.dense_forward(layer, rng.standard_normal((3, 5)))  # batch=5
    with pytest.raises(TypeCheckError, match="dimension batch is 6 which does not equal .* 5"):
        tbp.nn.dense_backward(rng.standard_normal((4, 6)), cache)


def test_dense_contract_agrees_with_the_affine_functions(rng):
    layer = tbp.Dense(rng.standard_normal((4, 3)), rng.standard_normal(4))
    a_prev = rng.standard_normal((3, 5))
    z, cache = tbp.nn.dense_forward(layer, a_prev)
    grad_z = rng.standard_normal((4, 5))
    grads, grad_a_prev = tbp.nn.dense_backward(grad_z, cache)
    np.testing.assert_array_equal(z, tbp.nn.affine_forward(layer.W, layer.b, a_prev))
    expected = tbp.nn.affine_backward(grad_z, layer.W, a_prev)
    for actual, wanted in zip((grads.W, grads.b, grad_a_prev), expected, strict=True):
        np.testing.assert_array_equal(actual, wanted)
    first_layer = dense_backward_params(grad_z, cache)  # a network's first layer: no grad_a_prev
    np.testing.assert_array_equal(first_layer.W, grads.W)
    np.testing.assert_array_equal(first_layer.b, grads.b)
