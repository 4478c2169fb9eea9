"""Tests for typedbackprop.activations and typedbackprop.softmax."""

import numpy as np
import pytest
import torch
from helpers import assert_close, vjp
from hypothesis import given, settings
from hypothesis import strategies as st
from jaxtyping import TypeCheckError

import typedbackprop as tbp

# (forward, backward, the same function in PyTorch), one row per activation
ACTIVATIONS = {
    "sigmoid": (tbp.sigmoid_forward, tbp.sigmoid_backward, torch.sigmoid),
    "tanh": (tbp.tanh_forward, tbp.tanh_backward, torch.tanh),
    "relu": (tbp.relu_forward, tbp.relu_backward, torch.relu),
    "leaky_relu": (
        tbp.leaky_relu_forward,
        tbp.leaky_relu_backward,
        lambda z: torch.nn.functional.leaky_relu(z, 0.01),
    ),
    "identity": (tbp.identity_forward, tbp.identity_backward, lambda z: z * 1.0),
    "softmax": (tbp.softmax_forward, tbp.softmax_backward, lambda z: torch.softmax(z, dim=0)),
}
NAMES = list(ACTIVATIONS)


@pytest.mark.parametrize(
    ("name", "z", "a", "grad_z"),
    [
        # σ(0) = ½, σ'(0) = ¼; σ(ln 3) = ¾, σ' = 3/16
        ("sigmoid", [[0.0, np.log(3.0)]], [[0.5, 0.75]], [[0.25, 3 / 16]]),
        # tanh(0) = 0, tanh' = 1; tanh(ln 2) = 3/5, tanh' = 1 − 9/25 = 16/25
        ("tanh", [[0.0, np.log(2.0)]], [[0.0, 0.6]], [[1.0, 16 / 25]]),
        ("relu", [[-2.0, 0.0, 3.0]], [[0.0, 0.0, 3.0]], [[0.0, 0.0, 1.0]]),
        ("leaky_relu", [[-2.0, 0.0, 3.0]], [[-0.02, 0.0, 3.0]], [[0.01, 0.01, 1.0]]),
        ("identity", [[-2.0, 5.0]], [[-2.0, 5.0]], [[1.0, 1.0]]),
        # softmax of [0, ln 2, ln 5]: [1, 2, 5] / 8; with upstream e_0, ∂/∂z = a_0 (e_0 − a)
        ("softmax", [[0.0], [np.log(2.0)], [np.log(5.0)]], [[1 / 8], [2 / 8], [5 / 8]],
         [[1 / 8 * 7 / 8], [-1 / 8 * 2 / 8], [-1 / 8 * 5 / 8]]),
    ],
)  # fmt: skip
def test_values_by_hand(name, z, a, grad_z):
    forward, backward, _ = ACTIVATIONS[name]
    z, a, grad_z = np.array(z), np.array(a), np.array(grad_z)
    np.testing.assert_allclose(forward(z), a, rtol=1e-15, atol=1e-17)
    upstream = np.zeros_like(z)
    if name == "softmax":
        upstream[0, 0] = 1.0
    else:
        upstream[:] = 1.0
    np.testing.assert_allclose(backward(upstream, z, forward(z)), grad_z, rtol=1e-14, atol=1e-17)


@pytest.mark.parametrize("name", NAMES)
def test_gradient_check(name):
    forward, backward, _ = ACTIVATIONS[name]
    z = np.random.default_rng(1).standard_normal((4, 3)) * 2
    report = tbp.gradcheck(forward, lambda g, z: backward(g, z, forward(z)), [z])
    assert report.passed, str(report)


@pytest.mark.parametrize("name", NAMES)
@settings(deadline=None, max_examples=25)
@given(
    features=st.integers(1, 6), batch=st.integers(1, 6), scale=st.sampled_from([0.1, 1.0, 10.0]),
    seed=st.integers(0, 2**32 - 1),
)  # fmt: skip
def test_against_torch(name, features, batch, scale, seed):
    forward, backward, torch_function = ACTIVATIONS[name]
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((features, batch)) * scale
    grad_a = rng.standard_normal((features, batch))
    a, (grad_z,) = vjp(torch_function, [z], grad_a)
    assert_close(forward(z), a)
    assert_close(backward(grad_a, z, forward(z)), grad_z)


def test_sigmoid_is_accurate_in_both_tails():
    z = np.array([[-40.0, -700.0, 40.0, 1e4, -1e4]])
    expected = torch.sigmoid(torch.tensor(z)).numpy()
    np.testing.assert_allclose(tbp.sigmoid_forward(z), expected, rtol=1e-14, atol=0)
    assert tbp.sigmoid_forward(z)[0, 0] == pytest.approx(4.248354255291589e-18, rel=1e-14)


def test_leaky_relu_slope_is_a_parameter():
    z = np.array([[-2.0, 1.0]])
    np.testing.assert_array_equal(tbp.leaky_relu_forward(z, slope=0.2), [[-0.4, 1.0]])
    np.testing.assert_array_equal(
        tbp.leaky_relu_backward(np.ones_like(z), z, z, slope=0.2), [[0.2, 1.0]]
    )
    report = tbp.gradcheck(
        lambda z: tbp.leaky_relu_forward(z, 0.3),
        lambda g, z: tbp.leaky_relu_backward(g, z, z, 0.3),
        [np.array([[-1.5, 0.7], [2.0, -0.2]])],
    )
    assert report.passed


def test_identity_returns_its_input():
    z = np.ones((2, 3))
    assert tbp.identity_forward(z) is z
    assert tbp.identity_backward(z, z, z) is z


def test_softmax_columns_sum_to_one_and_shift_invariance():
    z = np.random.default_rng(0).standard_normal((5, 4))
    a = tbp.softmax_forward(z)
    np.testing.assert_allclose(a.sum(axis=0), 1.0, rtol=1e-15)
    np.testing.assert_allclose(tbp.softmax_forward(z + 1000.0), a, rtol=1e-13)


@pytest.mark.parametrize("name", NAMES)
def test_wrong_shapes_are_refused(name):
    forward, backward, _ = ACTIVATIONS[name]
    z = np.ones((3, 4))
    with pytest.raises(TypeCheckError):
        forward(np.ones(4))  # a vector: the layout is (features, batch)
    with pytest.raises(TypeCheckError, match="batch=5"):  # grad_a binds batch=5; z has 4
        backward(np.ones((3, 5)), z, z)
    with pytest.raises(TypeCheckError):
        forward(np.ones((3, 4), dtype=np.int64))


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_is_kept_and_inputs_are_untouched(name, dtype):
    forward, backward, _ = ACTIVATIONS[name]
    z = np.random.default_rng(0).standard_normal((3, 4)).astype(dtype)
    grad_a = np.ones_like(z)
    saved = z.copy()
    z.flags.writeable = grad_a.flags.writeable = False
    a = forward(z)
    grad_z = backward(grad_a, z, a)
    assert a.dtype == dtype and grad_z.dtype == dtype
    np.testing.assert_array_equal(z, saved)
