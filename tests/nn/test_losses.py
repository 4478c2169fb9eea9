"""Tests for typedbackprop.nn.losses: squared error, binary and softmax cross-entropy.

Every loss is the mean over the batch of a per-example loss that sums over the output units, and
returns ``(loss, grad)`` with the loss a Python float.
"""

import math
import re

import numpy as np
import pytest
from helpers import (
    HUGE,
    SEEDS,
    SIZES,
    assert_close,
    assert_leaves_inputs_alone,
    raises_shape_error,
    torch_binary_cross_entropy,
    torch_cross_entropy,
    torch_squared_error,
)
from hypothesis import given, settings
from hypothesis import strategies as st

import typedbackprop as tbp

LN2, LN3 = math.log(2.0), math.log(3.0)


def hard_or_soft_targets(rng, shape, hard):
    """Targets for binary cross-entropy: 0s and 1s, or anywhere in [0, 1)."""
    return rng.integers(0, 2, size=shape).astype(np.float64) if hard else rng.random(shape)


@st.composite
def loss_cases(draw, loss, scales=(0.1, 1.0)):
    """``(z, target)`` for ``loss``: z of shape (out or classes, batch), each from 1 to 6.

    z is standard normal times one of ``scales``; targets are labels, 0/1 or soft, or normal.
    """
    rows, batch = draw(SIZES), draw(SIZES)
    rng = np.random.default_rng(draw(SEEDS))
    z = rng.standard_normal((rows, batch)) * draw(st.sampled_from(scales))
    if loss is tbp.nn.cross_entropy:
        target = rng.integers(0, rows, size=batch)
    elif loss is tbp.nn.binary_cross_entropy:
        target = hard_or_soft_targets(rng, (rows, batch), draw(st.booleans()))
    else:
        target = rng.standard_normal((rows, batch))
    return z, target


LOSSES = [
    pytest.param(tbp.nn.squared_error, torch_squared_error, id="squared_error"),
    pytest.param(
        tbp.nn.binary_cross_entropy, torch_binary_cross_entropy, id="binary_cross_entropy"
    ),
    pytest.param(tbp.nn.cross_entropy, torch_cross_entropy, id="cross_entropy"),
]
LOSS_FUNCTIONS = [pytest.param(row.values[0], id=row.id) for row in LOSSES]


# --- values by hand ---------------------------------------------------------------------------


def test_squared_error_by_hand():
    a = np.array([[1.0, 2.0], [3.0, 4.0]])
    y = np.array([[0.0, 2.0], [1.0, 1.0]])
    loss, grad_a = tbp.nn.squared_error(a, y)
    # residuals [[1, 0], [2, 3]]: per example ½(1 + 4) = 2.5 and ½(0 + 9) = 4.5; mean 3.5.
    assert loss == 3.5
    # ∂L/∂a = (a − y) / batch
    np.testing.assert_array_equal(grad_a, [[0.5, 0.0], [1.0, 1.5]])


def test_binary_cross_entropy_by_hand_sums_over_outputs_and_averages_over_examples():
    z = np.array([[0.0, 0.0], [LN3, -LN3]])
    y = np.array([[1.0, 0.5], [0.0, 1.0]])
    loss, grad_z = tbp.nn.binary_cross_entropy(z, y)
    # σ(z) = [[½, ½], [¾, ¼]]. Example 0: −log ½ − log(1 − ¾) = ln 2 + ln 4 = 3 ln 2.
    # Example 1: −½ log ½ − ½ log ½ − log ¼ = ln 2 + ln 4 = 3 ln 2. Mean: 3 ln 2.
    assert loss == pytest.approx(3 * LN2, rel=1e-15, abs=0)
    # ∂L/∂z = (σ(z) − y) / batch
    assert_close(grad_z, [[-0.25, 0.0], [0.375, -0.375]], rtol=1e-15)


def test_cross_entropy_by_hand():
    z = np.array([[0.0, 0.0], [LN2, 0.0]])  # probabilities: column 0 [⅓, ⅔], column 1 [½, ½]
    labels = np.array([0, 1])
    loss, grad_z = tbp.nn.cross_entropy(z, labels)
    # (−log ⅓ − log ½) / 2 = (ln 3 + ln 2) / 2
    assert loss == pytest.approx((LN3 + LN2) / 2, rel=1e-15, abs=0)
    # ∂L/∂z = (softmax(z) − one_hot(labels)) / batch
    assert_close(grad_z, [[-1 / 3, 0.25], [1 / 3, -0.25]], rtol=1e-15)


def test_a_perfect_prediction_costs_nothing():
    y = np.array([[0.5, -2.0]])
    loss, grad_a = tbp.nn.squared_error(y, y)
    assert loss == 0.0
    np.testing.assert_array_equal(grad_a, np.zeros((1, 2)))
    loss, grad_z = tbp.nn.cross_entropy(np.array([[1e4, -1e4], [-1e4, 1e4]]), np.array([0, 1]))
    assert loss == 0.0
    np.testing.assert_array_equal(grad_z, np.zeros((2, 2)))


def test_binary_cross_entropy_is_accurate_for_confident_right_answers():
    # −log σ(20) = −log(1 − σ(−20)) = log(1 + e⁻²⁰) ≈ 2.06e-9, and ≈ 4.25e-18 at 40: tiny and
    # exact, where log(σ(z) + 1e-8) would give 1e-8, and log(1 + e⁻²⁰) without log1p (PyTorch's
    # binary_cross_entropy_with_logits for z = −20, y = 0) keeps about six digits.
    z = np.array([[20.0, -20.0, 40.0, -40.0]])
    y = np.array([[1.0, 0.0, 1.0, 0.0]])
    loss, grad_z = tbp.nn.binary_cross_entropy(z, y)
    expected = (2 * math.log1p(math.exp(-20.0)) + 2 * math.log1p(math.exp(-40.0))) / 4
    assert loss == pytest.approx(expected, rel=1e-14, abs=0)
    # ∂L/∂z = (σ(z) − y) / 4 = ∓σ(−|z|) / 4. For z < 0, σ(z) keeps its digits. For z > 0, σ(z)
    # rounds to a neighbour of 1, and σ(z) − 1 is right to within that spacing (as in PyTorch).
    tail = np.exp(-np.abs(z)) / (1.0 + np.exp(-np.abs(z))) / 4
    np.testing.assert_allclose(grad_z, np.where(y == 1.0, -tail, tail), atol=np.spacing(1.0) / 4)
    np.testing.assert_allclose(grad_z[y == 0.0], tail[y == 0.0], rtol=1e-14, atol=0)


@pytest.mark.parametrize("loss", LOSS_FUNCTIONS)
def test_the_mean_over_the_batch_is_taken_once(loss, rng):
    # Two copies of every example: the same mean, and each copy gets half the gradient.
    z = rng.standard_normal((3, 4))
    target = rng.integers(0, 3, size=4) if loss is tbp.nn.cross_entropy else rng.random((3, 4))
    value, grad = loss(z, target)
    doubled, doubled_grad = loss(np.hstack([z, z]), np.concatenate([target, target], axis=-1))
    assert doubled == pytest.approx(value, rel=1e-14, abs=0)
    assert_close(2 * doubled_grad[:, :4], grad, rtol=1e-14)
    assert_close(2 * doubled_grad[:, 4:], grad, rtol=1e-14)


# --- gradient checks and PyTorch --------------------------------------------------------------


@pytest.mark.parametrize("loss", LOSS_FUNCTIONS)
@settings(deadline=None, max_examples=30)
@given(data=st.data())
def test_gradient_passes_gradcheck(loss, data):
    z, target = data.draw(loss_cases(loss))
    report = tbp.gradcheck(
        lambda z: loss(z, target)[0],  # a scalar: gradcheck passes grad_output = 1.0
        lambda grad_loss, z: grad_loss * loss(z, target)[1],
        [z],
        names=["z"],
    )
    assert report.passed


@pytest.mark.parametrize(("loss", "torch_loss"), LOSSES)
@settings(deadline=None, max_examples=60)
@given(data=st.data())
def test_loss_and_gradient_match_torch(loss, torch_loss, data):
    z, target = data.draw(loss_cases(loss, scales=(0.1, 1.0, 3.0)))
    value, grad = loss(z, target)
    expected_value, expected_grad = torch_loss(z, target)
    assert_close(value, expected_value)
    assert_close(grad, expected_grad)


# --- numerical stability ----------------------------------------------------------------------


@pytest.mark.filterwarnings("error")  # an overflow in np.exp is a failure, not noise
@pytest.mark.parametrize(("dtype", "big"), HUGE)
def test_binary_cross_entropy_of_huge_logits_is_finite_and_silent(dtype, big):
    z = np.array([[big, -big, big, -big]], dtype=dtype)
    y = np.array([[1.0, 0.0, 0.0, 1.0]], dtype=dtype)
    loss, grad_z = tbp.nn.binary_cross_entropy(z, y)
    # Right with certainty costs 0; wrong costs |z|: (0 + 0 + big + big) / 4.
    assert loss == pytest.approx(big / 2, rel=1e-6 if dtype == np.float32 else 1e-15, abs=0)
    np.testing.assert_array_equal(grad_z, [[0.0, 0.0, 0.25, -0.25]])
    assert grad_z.dtype == dtype


@pytest.mark.filterwarnings("error")
@pytest.mark.parametrize(("dtype", "big"), HUGE)
def test_cross_entropy_of_huge_logits_is_finite_and_silent(dtype, big):
    z = np.array([[big, -big], [-big, big]], dtype=dtype)
    loss, grad_z = tbp.nn.cross_entropy(z, np.array([0, 0]))
    # Example 0 is right with certainty (0); example 1 costs big − (−big) = 2 big. Mean: big.
    assert loss == pytest.approx(big, rel=1e-6 if dtype == np.float32 else 1e-15, abs=0)
    np.testing.assert_array_equal(grad_z, [[0.0, -0.5], [0.0, 0.5]])
    assert grad_z.dtype == dtype


# --- values that are refused ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("labels", "label", "example"),
    [([0, 3, 1], 3, 1), ([0, 1, -1], -1, 2), ([7, 0, 9], 7, 0)],
)
def test_labels_outside_the_classes_are_named_with_their_example(labels, label, example):
    with pytest.raises(ValueError, match=rf"label {label} of example {example}\b.*\[0, 3\)"):
        tbp.nn.cross_entropy(np.zeros((3, 3)), np.array(labels))


@pytest.mark.parametrize("bad", [-0.5, 1.5, np.nan, np.inf, -np.inf])
def test_binary_targets_outside_zero_one_are_named_with_their_index(bad):
    y = np.full((2, 3), 0.5)
    y[1, 2] = bad
    message = re.escape(f"y[1, 2] is {bad}")
    with pytest.raises(ValueError, match=rf"\[0, 1\].*{message}"):
        tbp.nn.binary_cross_entropy(np.zeros((2, 3)), y)


@pytest.mark.parametrize(
    "call",
    [
        pytest.param(lambda: tbp.nn.squared_error(np.ones((2, 0)), np.ones((2, 0))), id="squared"),
        pytest.param(
            lambda: tbp.nn.binary_cross_entropy(np.ones((2, 0)), np.ones((2, 0))), id="binary"
        ),
        pytest.param(
            lambda: tbp.nn.cross_entropy(np.ones((2, 0)), np.zeros(0, dtype=np.int64)), id="softmax"
        ),
    ],
)
def test_an_empty_batch_is_refused(call):
    with pytest.raises(ValueError, match="empty batch"):
        call()


# --- wrong shapes and kinds -------------------------------------------------------------------

# out (or classes) = 3, batch = 5
Z = np.zeros((3, 5))
LABELS = np.zeros(5, dtype=np.int64)


@pytest.mark.parametrize(
    ("call", "bound"),
    [
        pytest.param(
            lambda: tbp.nn.squared_error(Z, Z.T), ["out=3", "batch=5"], id="squared: y batch-first"
        ),
        pytest.param(
            lambda: tbp.nn.squared_error(Z, np.zeros((3, 4))),
            ["out=3", "batch=5"],
            id="squared: y of another batch",
        ),
        pytest.param(
            lambda: tbp.nn.binary_cross_entropy(Z, Z.T),
            ["out=3", "batch=5"],
            id="binary: y batch-first",
        ),
        pytest.param(
            lambda: tbp.nn.binary_cross_entropy(Z, np.zeros((2, 5))),
            ["out=3", "batch=5"],
            id="binary: y with fewer outputs",
        ),
        pytest.param(
            lambda: tbp.nn.cross_entropy(Z.T, LABELS),
            ["classes=5", "batch=3"],
            id="softmax: z batch-first",
        ),
        pytest.param(
            lambda: tbp.nn.cross_entropy(Z, np.zeros(4, dtype=np.int64)),
            ["classes=3", "batch=5"],
            id="softmax: labels of another batch",
        ),
        pytest.param(
            lambda: tbp.nn.cross_entropy(Z, np.eye(3, 5, dtype=np.int64)),
            ["classes=3", "batch=5"],
            id="softmax: one-hot labels",
        ),
        pytest.param(
            lambda: tbp.nn.cross_entropy(Z, LABELS.astype(np.float64)),
            ["classes=3", "batch=5"],
            id="softmax: float labels",
        ),
        pytest.param(
            lambda: tbp.nn.squared_error(Z, Z.astype(np.int64)),
            ["out=3", "batch=5"],
            id="squared: int targets",
        ),
        pytest.param(
            lambda: tbp.nn.binary_cross_entropy(Z, Z.astype(np.int64)),
            ["out=3", "batch=5"],
            id="binary: int targets",
        ),
    ],
)
def test_wrong_shapes_and_kinds_raise_naming_the_dimensions(call, bound):
    with raises_shape_error(*bound):
        call()


@pytest.mark.parametrize(
    "call",
    [
        pytest.param(lambda: tbp.nn.squared_error(Z.astype(np.int64), Z), id="squared"),
        pytest.param(lambda: tbp.nn.binary_cross_entropy(Z.astype(np.int64), Z), id="binary"),
        pytest.param(lambda: tbp.nn.cross_entropy(Z.astype(np.int64), LABELS), id="softmax"),
    ],
)
def test_integer_logits_or_outputs_are_refused(call):
    with raises_shape_error():
        call()


# --- purity, dtypes and the type of the loss --------------------------------------------------


@pytest.mark.parametrize("loss", LOSS_FUNCTIONS)
def test_inputs_are_not_modified(loss, rng):
    z = rng.standard_normal((3, 4))
    target = rng.integers(0, 3, size=4) if loss is tbp.nn.cross_entropy else rng.random((3, 4))
    assert_leaves_inputs_alone(loss, z, target)


@pytest.mark.parametrize("loss", LOSS_FUNCTIONS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_loss_is_a_python_float_and_the_gradient_keeps_the_dtype(loss, dtype, rng):
    z = rng.standard_normal((3, 4)).astype(dtype)
    if loss is tbp.nn.cross_entropy:
        target = rng.integers(0, 3, size=4)
    else:
        target = rng.random((3, 4)).astype(dtype)
    value, grad = loss(z, target)
    assert type(value) is float
    assert grad.dtype == dtype
