"""Tests for typedbackprop.gradcheck: it passes right gradients and catches wrong ones."""

import numpy as np
import pytest

import typedbackprop as tbp


def sigmoid_backward_at_a(grad_a, z, a):
    """The classic bug: σ' evaluated at a instead of z."""
    s = tbp.sigmoid_forward(a)
    return grad_a * s * (1 - s)


def test_numerical_gradient_of_a_known_function():
    x = np.array([[1.0, -2.0], [0.5, 3.0]])
    gradient = tbp.numerical_gradient(lambda x: float(np.sum(x**3)), x)
    np.testing.assert_allclose(gradient, 3 * x**2, rtol=1e-9)
    assert x[0, 0] == 1.0  # not modified


def test_passes_on_right_gradients_and_names_the_inputs():
    z = np.random.default_rng(0).standard_normal((3, 4))
    report = tbp.gradcheck(
        tbp.sigmoid_forward, lambda g, z: tbp.sigmoid_backward(g, z, tbp.sigmoid_forward(z)), [z]
    )
    assert report.passed and bool(report)
    assert report.arguments[0].name == "z" and report.arguments[0].relative_error < 1e-8
    assert "z" in str(report) and str(report).endswith("passed")


def test_catches_sigma_prime_at_the_wrong_value():
    z = np.random.default_rng(0).standard_normal((3, 4))
    backward = lambda g, z: sigmoid_backward_at_a(g, z, tbp.sigmoid_forward(z))  # noqa: E731
    with pytest.raises(tbp.GradcheckError) as error:
        tbp.gradcheck(tbp.sigmoid_forward, backward, [z])
    report = error.value.report
    assert not report.passed and report.arguments[0].relative_error > 0.01
    assert "FAILED" in str(error.value)
    quiet = tbp.gradcheck(tbp.sigmoid_forward, backward, [z], raise_exception=False)
    assert not quiet.passed


def test_catches_a_missing_factor_and_reports_the_worst_entry():
    x = np.array([1.0, 2.0, 3.0])
    report = tbp.gradcheck(
        lambda x: float(np.sum(x**2)),
        lambda g, x: g * np.where(np.arange(3) == 1, x, 2 * x),  # wrong only at index 1
        [x],
        raise_exception=False,
    )
    assert not report.passed
    assert report.arguments[0].worst_input_index == (1,)
    assert report.arguments[0].analytic == pytest.approx(2.0)
    assert report.arguments[0].numerical == pytest.approx(4.0)


def test_tolerances_are_parameters():
    x = np.array([1.0, 2.0])
    slightly_wrong = lambda g, x: g * 2 * x * (1 + 1e-6)  # noqa: E731
    loss = lambda x: float(np.sum(x**2))  # noqa: E731
    assert not tbp.gradcheck(loss, slightly_wrong, [x], raise_exception=False).passed
    assert tbp.gradcheck(loss, slightly_wrong, [x], rtol=1e-5).passed


@pytest.mark.parametrize("dtype", [np.float32, np.int64])
def test_refuses_inputs_that_are_not_float64(dtype):
    with pytest.raises(TypeError, match="float64"):
        tbp.gradcheck(lambda x: float(x.sum()), lambda g, x: np.ones_like(x), [np.ones(3, dtype)])


def test_reports_a_gradient_of_the_wrong_shape():
    rng = np.random.default_rng(0)
    W, b, a_prev = rng.standard_normal((4, 3)), rng.standard_normal(4), rng.standard_normal((3, 5))

    def transposed(grad_z, W, b, a_prev):
        grad_W, grad_b, grad_a_prev = tbp.affine_backward(grad_z, W, a_prev)
        return grad_W.T, grad_b, grad_a_prev

    report = tbp.gradcheck(tbp.affine_forward, transposed, [W, b, a_prev], raise_exception=False)
    assert not report.passed
    assert "gradient for W has shape (3, 4), but W has shape (4, 3)" in report.problems


def test_detects_an_input_modified_in_place():
    def squares_in_place(x):
        x += 1.0  # the bug: a forward that updates what it was given
        return float(np.sum((x - 1.0) ** 2))

    report = tbp.gradcheck(
        squares_in_place, lambda g, x: 2 * g * x, [np.array([1.0, 2.0])], raise_exception=False
    )
    assert not report.passed and any("in place" in problem for problem in report.problems)


def test_never_modifies_the_callers_inputs():
    x = np.array([[0.5, -1.0]])
    x.flags.writeable = False
    tbp.gradcheck(tbp.tanh_forward, lambda g, z: tbp.tanh_backward(g, z, np.tanh(z)), [x])


def test_a_forward_that_returns_its_input():
    z = np.array([[1.0, -2.0]])
    assert tbp.gradcheck(tbp.identity_forward, lambda g, z: g, [z]).passed


def test_network_gradcheck_names_every_parameter():
    rng = np.random.default_rng(0)
    layers = [tbp.Dense(rng.standard_normal((3, 2)), rng.standard_normal(3)),
              tbp.Dense(rng.standard_normal((1, 3)), rng.standard_normal(1))]  # fmt: skip
    report = tbp.gradcheck_network(
        layers, rng.standard_normal((2, 4)), rng.random((1, 4)), "tanh", "sigmoid",
        "binary_cross_entropy",
    )  # fmt: skip
    assert report.passed and [check.name for check in report.arguments] == ["W1", "b1", "W2", "b2"]
