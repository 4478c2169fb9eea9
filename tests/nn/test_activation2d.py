"""Tests for typedbackprop.nn.activation2d: activations on every pixel of a batch of images."""

import numpy as np
import pytest
from jaxtyping import TypeCheckError

import typedbackprop as tbp
from typedbackprop.nn.activation2d import (
    Activation2d,
    activation2d_backward,
    activation2d_forward,
)

# channels=2, a 1×3 image, batch 2
Z = np.array([[[[1.0, -2.0], [-0.5, 3.0], [0.0, -1.0]]], [[[-4.0, 2.0], [5.0, -0.25], [1.5, 0.0]]]])


def test_relu_by_hand():
    a, cache = activation2d_forward(Activation2d("relu"), Z)
    np.testing.assert_array_equal(a, np.maximum(Z, 0.0))
    grad_a = np.arange(1.0, 13.0).reshape(Z.shape)
    np.testing.assert_array_equal(activation2d_backward(grad_a, cache), grad_a * (Z > 0))


def test_softmax_normalises_over_the_channels_of_each_pixel():
    a, _ = activation2d_forward(Activation2d("softmax"), Z)
    np.testing.assert_allclose(a.sum(axis=0), np.ones((1, 3, 2)), rtol=1e-15)
    # pixel (0, 0) of example 0: channels hold 1 and −4
    assert a[0, 0, 0, 0] == pytest.approx(1 / (1 + np.exp(-5.0)), rel=1e-15)


def test_it_is_the_features_batch_activation_on_the_pixel_columns(rng):
    z, grad_a = rng.standard_normal((3, 4, 5, 2)), rng.standard_normal((3, 4, 5, 2))
    for name in ("sigmoid", "tanh", "leaky_relu", "identity", "softmax"):
        a, cache = activation2d_forward(Activation2d(name, slope=0.2), z)
        flat_a, flat_cache = tbp.activation_forward(
            tbp.Activation(name, slope=0.2), z.reshape(3, 40)
        )
        np.testing.assert_array_equal(a, flat_a.reshape(z.shape))
        np.testing.assert_array_equal(
            activation2d_backward(grad_a, cache),
            tbp.activation_backward(grad_a.reshape(3, 40), flat_cache).reshape(z.shape),
        )


def test_height_and_width_swapped_are_refused():
    _, cache = activation2d_forward(Activation2d("relu"), np.ones((3, 4, 5, 2)))
    with pytest.raises(TypeCheckError, match="height is 5 which does not equal the existing value"):
        activation2d_backward(np.ones((3, 5, 4, 2)), cache)
    with pytest.raises(ValueError, match="unknown activation 'swish'"):
        Activation2d("swish")  # type: ignore[arg-type]
