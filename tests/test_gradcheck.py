"""Tests for typedbackprop.gradcheck: it passes right gradients and catches wrong ones.

A gradient checker that cannot fail proves nothing, so most tests here feed it a deliberately
wrong ``backward`` and check that it fails, and says where.
"""

import math

import numpy as np
import pytest
import torch
from helpers import SEEDS, SIZES, vjp
from hypothesis import given, settings

import typedbackprop as tbp


def squares(x):
    """``x ↦ x²`` elementwise: a diagonal Jacobian, ``2 x`` on the diagonal."""
    return x**2


def squares_backward_missing_the_two(grad_output, x):
    """The bug: ``∂(x²)/∂x`` written as ``x``."""
    return grad_output * x


def affine_backward_all(grad_z, W, b, a_prev):
    return tbp.affine_backward(grad_z, W, a_prev)


def affine_inputs(rng):
    """W (out=4, in=3), b (4,), a_prev (3, batch=5): no two dimensions alike."""
    return [rng.standard_normal((4, 3)), rng.standard_normal(4), rng.standard_normal((3, 5))]


# --- numerical_gradient -----------------------------------------------------------------------


def test_numerical_gradient_of_a_sum_of_cubes_is_three_x_squared():
    x = np.array([[1.0, -2.0], [0.5, 3.0]])
    gradient = tbp.numerical_gradient(lambda x: float(np.sum(x**3)), x)
    # Truncation error h² f'''/6 = 1e-12, rounding error about 1e-16 |f| / h ≈ 2e-9.
    np.testing.assert_allclose(gradient, [[3.0, 12.0], [0.75, 27.0]], rtol=1e-9)
    assert gradient.dtype == np.float64 and gradient.shape == x.shape


def test_numerical_gradient_leaves_x_alone():
    x = np.array([[1.0, -2.0, 0.25]])
    x.flags.writeable = False  # a write would raise
    gradient = tbp.numerical_gradient(lambda x: float(np.sum(np.sin(x))), x)
    np.testing.assert_allclose(gradient, np.cos(x), rtol=1e-7, atol=1e-8)
    np.testing.assert_array_equal(x, [[1.0, -2.0, 0.25]])


@settings(deadline=None, max_examples=25)
@given(rows=SIZES, columns=SIZES, seed=SEEDS)
def test_numerical_gradient_matches_torch(rows, columns, seed):
    x = np.random.default_rng(seed).standard_normal((rows, columns))
    _, (expected,) = vjp(lambda x: (torch.tanh(x) * x).sum(), [x], 1.0)
    gradient = tbp.numerical_gradient(lambda x: float(np.sum(np.tanh(x) * x)), x)
    # Central differences, so the gradcheck bar (|error| ≤ 1e-8 + 1e-7 |exact|), not 1e-10.
    np.testing.assert_allclose(gradient, expected, rtol=1e-7, atol=1e-8)


# --- right gradients pass ---------------------------------------------------------------------


def test_right_gradients_pass_and_the_report_says_so(rng):
    report = tbp.gradcheck(tbp.affine_forward, affine_backward_all, affine_inputs(rng))
    assert report.passed and bool(report)
    assert report.problems == ()
    for check in report.arguments:
        assert check.passed and check.relative_error < 1e-8
    assert str(report).endswith("\npassed")
    assert "FAILED" not in str(report)


@settings(deadline=None, max_examples=20)
@given(size=SIZES, seed=SEEDS)
def test_gradcheck_agrees_with_torch_on_a_composite_function(size, seed):
    # The analytic side from PyTorch's autograd, the numerical side from NumPy: they agree.
    rng = np.random.default_rng(seed)
    x, y = rng.standard_normal((size, 2)), rng.standard_normal((2, size))

    def torch_function(x, y):
        return torch.tanh(x @ y).sin()

    def forward(x, y):
        return np.sin(np.tanh(x @ y))

    def backward(grad_output, x, y):
        return vjp(torch_function, [x, y], grad_output)[1]

    assert tbp.gradcheck(forward, backward, [x, y]).passed


def test_a_forward_that_returns_its_input_is_checked_correctly():
    # Regression: gradcheck once kept views of forward's output, which the next perturbation
    # of the input changed too, so every numerical derivative of the identity came out 0.
    z = np.array([[1.0, -2.0], [0.5, 3.0]])
    report = tbp.gradcheck(tbp.identity_forward, lambda grad_a, z: grad_a, [z])
    assert report.passed


# --- wrong gradients fail ---------------------------------------------------------------------


def test_a_missing_factor_of_two_fails_at_the_worst_entry():
    x = np.array([[0.5, -3.0], [1.0, 2.0]])
    with pytest.raises(tbp.GradcheckError) as caught:
        tbp.gradcheck(squares, squares_backward_missing_the_two, [x])
    report = caught.value.report
    assert not report.passed
    (check,) = report.arguments
    # Each diagonal entry is off by |x|, worst relative to its tolerance where |x| is largest.
    assert check.worst_input_index == (0, 1) and check.worst_output_index == (0, 1)
    assert check.analytic == -3.0
    assert check.numerical == pytest.approx(-6.0, rel=1e-9)
    assert check.max_abs_error == pytest.approx(3.0, rel=1e-9)
    assert "d out[0, 1] / d x[0, 1]" in str(caught.value)
    assert "FAILED" in str(caught.value)


def test_without_raising_the_failing_report_is_returned():
    x = np.array([[0.5, -3.0], [1.0, 2.0]])
    report = tbp.gradcheck(squares, squares_backward_missing_the_two, [x], raise_exception=False)
    assert not report.passed and not bool(report)
    assert not report.arguments[0].passed
    assert str(report).endswith("\nFAILED")


def test_sigmoid_derivative_evaluated_at_a_instead_of_z_fails(rng):
    z = rng.standard_normal((3, 4))

    def backward_at_a(grad_a, z):
        a = tbp.sigmoid_forward(z)
        s = tbp.sigmoid_forward(a)  # the bug: σ'(a) = σ(a)(1 − σ(a)) where σ'(z) belongs
        return grad_a * s * (1.0 - s)

    report = tbp.gradcheck(tbp.sigmoid_forward, backward_at_a, [z], raise_exception=False)
    assert not report.passed
    (check,) = report.arguments
    # The Jacobian is diagonal in both, so the worst entry is on the diagonal, and its two
    # values are the wrong and the right derivative there.
    assert check.worst_output_index == check.worst_input_index
    z_worst = z[check.worst_input_index]
    a_worst = 1.0 / (1.0 + math.exp(-z_worst))
    sigma_of_a = 1.0 / (1.0 + math.exp(-a_worst))
    assert check.analytic == pytest.approx(sigma_of_a * (1 - sigma_of_a), rel=1e-12)
    assert check.numerical == pytest.approx(a_worst * (1 - a_worst), rel=1e-8)


def test_a_slightly_wrong_gradient_fails_at_the_default_tolerance():
    # A relative error of 1e-6 is above the default rtol = 1e-7; loosening rtol lets it pass,
    # so the tolerances are the ones used.
    x = np.array([1.0, 2.0, -0.5])

    def almost_right(grad_output, x):
        return grad_output * 2 * x * (1 + 1e-6)

    def sum_of_squares(x):
        return float(np.sum(x**2))

    assert not tbp.gradcheck(sum_of_squares, almost_right, [x], raise_exception=False).passed
    assert tbp.gradcheck(sum_of_squares, almost_right, [x], rtol=1e-5).passed


def test_a_gradient_of_the_wrong_shape_is_a_problem(rng):
    def grad_W_transposed(grad_z, W, b, a_prev):
        grad_W, grad_b, grad_a_prev = tbp.affine_backward(grad_z, W, a_prev)
        return grad_W.T, grad_b, grad_a_prev

    with pytest.raises(tbp.GradcheckError) as caught:
        tbp.gradcheck(tbp.affine_forward, grad_W_transposed, affine_inputs(rng))
    report = caught.value.report
    assert "gradient for W has shape (3, 4), but W has shape (4, 3)" in report.problems
    assert "problem: gradient for W has shape (3, 4)" in str(caught.value)
    assert [check.passed for check in report.arguments] == [False, True, True]


def test_a_square_gradient_transposed_fails_on_its_values():
    # When W is square, grad_W.T has the right shape; the numbers give it away.
    W, b, a_prev = np.array([[1.0, 2.0], [3.0, 4.0]]), np.zeros(2), np.array([[1.0], [-1.0]])

    def grad_W_transposed(grad_z, W, b, a_prev):
        grad_W, grad_b, grad_a_prev = tbp.affine_backward(grad_z, W, a_prev)
        return grad_W.T, grad_b, grad_a_prev

    report = tbp.gradcheck(
        tbp.affine_forward, grad_W_transposed, [W, b, a_prev], raise_exception=False
    )
    assert report.problems == ()
    assert [check.passed for check in report.arguments] == [False, True, True]


def test_a_backward_with_a_gradient_missing_is_refused():
    with pytest.raises(ValueError, match="2 gradients for 3 inputs"):
        tbp.gradcheck(
            tbp.affine_forward,
            lambda grad_z, W, b, a_prev: tbp.affine_grad_params(grad_z, a_prev),
            affine_inputs(np.random.default_rng(0)),
        )


def test_a_backward_that_is_not_deterministic_is_a_problem():
    noise = np.random.default_rng(0)

    def noisy_backward(grad_output, x):
        return grad_output * (2 * x + noise.normal(scale=1e-3, size=x.shape))

    report = tbp.gradcheck(squares, noisy_backward, [np.ones((2, 2))], raise_exception=False)
    assert "backward is not deterministic for x" in report.problems


@pytest.mark.parametrize("which", ["forward", "backward"])
def test_a_function_that_modifies_its_input_in_place_is_a_problem(which):
    def clips_in_place(x):
        np.clip(x, -1.0, 1.0, out=x)  # the bug: writes into the array it was given

    def forward(x):
        if which == "forward":
            clips_in_place(x)
        return np.tanh(x)

    def backward(grad_output, x):
        grad_x = grad_output * (1.0 - np.tanh(x) ** 2)
        if which == "backward":
            clips_in_place(x)
        return grad_x

    x = np.array([[0.5, -3.0, 2.0]])
    report = tbp.gradcheck(forward, backward, [x], raise_exception=False)
    assert not report.passed
    assert "forward or backward modified the input x in place" in report.problems
    np.testing.assert_array_equal(x, [[0.5, -3.0, 2.0]])  # on its own copy, not the caller's


# --- what gradcheck accepts and leaves alone --------------------------------------------------


@pytest.mark.parametrize(
    "bad",
    [np.ones(3, dtype=np.float32), np.ones(3, dtype=np.int64), [1.0, 2.0, 3.0]],
    ids=["float32", "int64", "list"],
)
def test_inputs_that_are_not_float64_arrays_are_refused(bad):
    with pytest.raises(TypeError, match="float64"):
        tbp.gradcheck(squares, lambda grad_output, x: 2 * grad_output * x, [bad])


def test_the_callers_inputs_are_not_modified(rng):
    inputs = affine_inputs(rng)
    copies = [value.copy() for value in inputs]
    for value in inputs:
        value.flags.writeable = False  # gradcheck perturbs its own copies; a write would raise
    tbp.gradcheck(tbp.affine_forward, affine_backward_all, inputs)
    for value, copy in zip(inputs, copies, strict=True):
        np.testing.assert_array_equal(value, copy)


def test_the_report_names_every_input(rng):
    report = tbp.gradcheck(tbp.affine_forward, affine_backward_all, affine_inputs(rng))
    assert [check.name for check in report.arguments] == ["W", "b", "a_prev"]
    rows = str(report).splitlines()
    for name in ["W", "b", "a_prev"]:
        assert any(row.startswith(f"{name} ") for row in rows), str(report)
    named = tbp.gradcheck(
        tbp.affine_forward,
        affine_backward_all,
        affine_inputs(rng),
        names=["weights", "biases", "inputs"],
    )
    for name in ["weights", "biases", "inputs"]:
        assert name in str(named)


def test_inputs_of_a_function_without_named_parameters_are_numbered():
    report = tbp.gradcheck(
        lambda *xs: xs[0] * xs[1],
        lambda grad_output, *xs: (grad_output * xs[1], grad_output * xs[0]),
        [np.array([2.0]), np.array([3.0])],
    )
    assert [check.name for check in report.arguments] == ["input0", "input1"]


def test_a_scalar_output_is_given_a_grad_output_of_one():
    seen = []

    def sum_of_squares_backward(grad_output, x):
        seen.append(grad_output)
        return 2 * grad_output * x

    x = np.array([[1.0, -2.0], [0.5, 0.0]])
    report = tbp.gradcheck(lambda x: float(np.sum(x**2)), sum_of_squares_backward, [x])
    assert report.passed
    assert seen and all(type(value) is float and value == 1.0 for value in seen)
    assert report.arguments[0].worst_output_index == ()


# --- bugs: each test fails until the fix in its docstring is made -----------------------------


def test_zero_atol_is_a_tighter_check_not_a_division_by_zero():
    """With ``atol=0`` an entry that is exactly 0 on both sides has a tolerance of 0.

    gradcheck ranks entries by ``difference / allowed``, which is 0/0 there: a RuntimeWarning
    (an error in this suite) and a NaN that ``argmax`` then reports as the worst entry. Fix:
    ``np.divide(difference, allowed, out=np.where(difference > 0, np.inf, 0.0),
    where=allowed > 0)``.
    """
    x = np.array([[0.5, -3.0], [1.0, 2.0]])  # x² has a diagonal Jacobian: most entries are 0
    report = tbp.gradcheck(
        squares, squares_backward_missing_the_two, [x], atol=0.0, raise_exception=False
    )
    assert not report.passed
    # Every diagonal entry is off by |x| against a tolerance of 1e-7 |2x|: a tie, which rounding
    # breaks. The worst entry is on the diagonal, never an off-diagonal 0/0.
    check = report.arguments[0]
    assert check.worst_input_index == check.worst_output_index
    assert check.numerical == pytest.approx(2 * check.analytic, rel=1e-9)
    assert tbp.gradcheck(squares, lambda grad_output, x: 2 * grad_output * x, [x], atol=0.0)


def test_a_nan_gradient_fails_without_being_called_nondeterministic():
    """A backward that returns NaN, the same NaN every time, is wrong but deterministic.

    gradcheck compares two calls with ``np.array_equal``, for which NaN ≠ NaN, and its relative
    error divides by a NaN norm and falls back to 0. Fix: ``np.array_equal(first, second,
    equal_nan=True)``, and a relative error of NaN when either norm is NaN.
    """
    x = np.array([1.0, 2.0])
    report = tbp.gradcheck(
        squares, lambda grad_output, x: grad_output * np.nan, [x], raise_exception=False
    )
    assert not report.passed
    assert not any("not deterministic" in problem for problem in report.problems)
    assert not report.arguments[0].relative_error <= report.rtol  # NaN or large, never "small"


# --- gradcheck_network ------------------------------------------------------------------------


def small_network(rng):
    layers = [
        tbp.Dense(rng.standard_normal((3, 2)), rng.standard_normal(3)),
        tbp.Dense(rng.standard_normal((1, 3)), rng.standard_normal(1)),
    ]
    return layers, rng.standard_normal((2, 4)), rng.random((1, 4))


def test_gradcheck_network_passes_and_names_every_parameter(rng):
    layers, x, y = small_network(rng)
    report = tbp.gradcheck_network(layers, x, y, "tanh", "sigmoid", "binary_cross_entropy")
    assert report.passed
    assert [check.name for check in report.arguments] == ["W1", "b1", "W2", "b2"]


def test_gradcheck_network_catches_a_wrong_gradient(rng, monkeypatch):
    # gradcheck_network calls tbp.loss_and_grads for the analytic side, and the forward pass
    # alone for the numerical side: a wrong gradient from loss_and_grads shows.
    layers, x, y = small_network(rng)
    right = tbp.loss_and_grads

    def first_bias_gradient_halved(*args, **kwargs):
        loss, grads = right(*args, **kwargs)
        return loss, [tbp.Dense(grads[0].W, grads[0].b / 2), *grads[1:]]

    monkeypatch.setattr(tbp, "loss_and_grads", first_bias_gradient_halved)
    report = tbp.gradcheck_network(
        layers, x, y, "tanh", "sigmoid", "binary_cross_entropy", raise_exception=False
    )
    assert [check.passed for check in report.arguments] == [True, False, True, True]
    assert "b1" in str(report) and str(report).endswith("FAILED")
