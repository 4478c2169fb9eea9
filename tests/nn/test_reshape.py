"""Tests for typedbackprop.nn.reshape: Flatten and Unflatten between images and columns."""

import numpy as np
import pytest
from jaxtyping import TypeCheckError

from typedbackprop.nn.reshape import (
    Flatten,
    Unflatten,
    flatten_backward,
    flatten_forward,
    unflatten_backward,
    unflatten_forward,
)

# channels=2, a 2×3 image, batch 4: entry (c, h, w, b) is 1000c + 100h + 10w + b.
IMAGES = np.fromfunction(lambda c, h, w, b: 1000 * c + 100 * h + 10 * w + b, (2, 2, 3, 4))


def test_flatten_by_hand_puts_pixel_c_h_w_at_feature_c_height_plus_h_width_plus_w():
    a, cache = flatten_forward(Flatten(), IMAGES)
    assert a.shape == (12, 4)
    # Feature (c·2 + h)·3 + w of example b: feature 10 is (1, 1, 1), feature 5 is (0, 1, 2).
    np.testing.assert_array_equal(a[10], [1110.0, 1111.0, 1112.0, 1113.0])
    np.testing.assert_array_equal(a[5], [120.0, 121.0, 122.0, 123.0])
    grad_x = flatten_backward(a * 2.0, cache)
    np.testing.assert_array_equal(grad_x, IMAGES * 2.0)


def test_unflatten_is_the_inverse_of_flatten():
    columns = flatten_forward(Flatten(), IMAGES)[0]
    images, cache = unflatten_forward(Unflatten(2, 2, 3), columns)
    np.testing.assert_array_equal(images, IMAGES)
    np.testing.assert_array_equal(unflatten_backward(IMAGES * -3.0, cache), columns * -3.0)


def test_a_flattened_batch_first_image_is_not_an_image():
    # Batch-first data flattened per example would put the batch first: refused by the shape.
    with pytest.raises(TypeCheckError, match="argument grad_a"):
        flatten_backward(np.ones((4, 12)), flatten_forward(Flatten(), IMAGES)[1])


def test_wrong_sizes_are_refused():
    with pytest.raises(ValueError, match="12 features do not make images of 3 channels of 2x3"):
        unflatten_forward(Unflatten(3, 2, 3), np.ones((12, 4)))
    _, cache = unflatten_forward(Unflatten(2, 2, 3), np.ones((12, 4)))
    with pytest.raises(TypeCheckError, match="height is 3 which does not equal the existing"):
        unflatten_backward(np.ones((2, 3, 2, 4)), cache)
    with pytest.raises(ValueError, match="at least one channel, row and column"):
        Unflatten(0, 8, 8)


def test_float32_is_kept_and_nothing_is_copied_for_contiguous_input():
    images = IMAGES.astype(np.float32)
    a, _ = flatten_forward(Flatten(), images)
    assert a.dtype == np.float32 and np.shares_memory(a, images)
