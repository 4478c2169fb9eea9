"""Tests for typedbackprop.nn.conv: im2col, col2im, and the convolution as an affine layer."""

import dataclasses
import tracemalloc

import numpy as np
import pytest
from helpers import SEEDS, assert_close, assert_leaves_inputs_alone
from hypothesis import given, settings
from hypothesis import strategies as st
from jaxtyping import Float, TypeCheckError
from torch_images import torch_conv2d

import typedbackprop as tbp
from typedbackprop import Array, checked
from typedbackprop.nn.conv import (
    Conv2d,
    Conv2dCache,
    col2im,
    columns_as_matrix,
    conv2d_backward,
    conv2d_backward_params,
    conv2d_forward,
    conv2d_output_size,
    im2col,
    kernel_as_matrix,
    matrix_as_columns,
)

KERNELS = st.sampled_from([1, 3, 5])
STRIDES = st.sampled_from([1, 2])
PADDINGS = st.sampled_from([0, 1])


@st.composite
def convolutions(draw, kernels=KERNELS, max_extra=4):
    """``(layer, x, grad_z)``: a random layer and input, sizes distinct per dimension.

    The kernel's height and width, the stride and the padding are drawn first; the image's
    height and width then range over the sizes the window fits in (from ``kernel − 2 padding``
    up). ``in_channels``, ``height``, ``width`` and ``batch`` are four distinct sizes, and so are
    ``out_channels``, ``out_height``, ``out_width`` as far as the draw allows, so that a
    transposed axis changes a shape.
    """
    kernel_h, kernel_w = draw(kernels), draw(kernels)
    stride, padding = draw(STRIDES), draw(PADDINGS)
    low_h, low_w = max(1, kernel_h - 2 * padding), max(1, kernel_w - 2 * padding)
    height = draw(st.integers(low_h, low_h + max_extra))
    width = draw(st.integers(low_w, low_w + max_extra).filter(lambda w: w != height))
    used = {height, width}
    in_channels = draw(st.integers(1, 7).filter(lambda c: c not in used))
    used.add(in_channels)
    batch = draw(st.integers(1, 7).filter(lambda n: n not in used))
    out_channels = draw(st.integers(1, 4).filter(lambda o: o != in_channels))
    rng = np.random.default_rng(draw(SEEDS))
    layer = Conv2d(
        rng.standard_normal((out_channels, in_channels, kernel_h, kernel_w)),
        rng.standard_normal(out_channels),
        stride,
        padding,
    )
    x = rng.standard_normal((in_channels, height, width, batch))
    out_height = conv2d_output_size(height, kernel_h, stride, padding)
    out_width = conv2d_output_size(width, kernel_w, stride, padding)
    grad_z = rng.standard_normal((out_channels, out_height, out_width, batch))
    return layer, x, grad_z


def forward_of(layer):
    """``conv2d_forward`` as a function of ``(W, b, x)``, the form gradcheck differentiates."""
    return lambda W, b, x: conv2d_forward(Conv2d(W, b, layer.stride, layer.padding), x)[0]


def backward_of(layer):
    """``conv2d_backward`` in the ``backward(grad_z, W, b, x)`` form gradcheck calls."""

    def backward(grad_z, W, b, x):
        _, cache = conv2d_forward(Conv2d(W, b, layer.stride, layer.padding), x)
        grads, grad_x = conv2d_backward(grad_z, cache)
        return grads.W, grads.b, grad_x

    return backward


# --- values by hand ---------------------------------------------------------------------------

# One channel, a 3×3 image, one example: the pixels 1..9 row by row.
X = np.arange(1.0, 10.0).reshape(1, 3, 3, 1)
# One output channel, a 2×2 kernel [[1, 2], [0, −1]], bias 0.5.
KERNEL = np.array([[[[1.0, 2.0], [0.0, -1.0]]]])
BIAS = np.array([0.5])


def test_im2col_by_hand_copies_each_window_into_a_column():
    columns = im2col(X, 2, 2, 1, 0)
    assert columns.shape == (1, 2, 2, 2, 2, 1)  # (in_channels, kernel_h, kernel_w, 2, 2, batch)
    # The matrix form: column p·2 + q is the window at (p, q), read row by row.
    np.testing.assert_array_equal(
        columns_as_matrix(columns),
        [[1.0, 2.0, 4.0, 5.0], [2.0, 3.0, 5.0, 6.0], [4.0, 5.0, 7.0, 8.0], [5.0, 6.0, 8.0, 9.0]],
    )


def test_im2col_by_hand_with_stride_and_padding():
    # Padded, the image is 5×5 with a border of zeros; windows start at rows and columns 0, 2.
    columns = columns_as_matrix(im2col(X, 2, 2, 2, 1))
    np.testing.assert_array_equal(
        columns,
        [[0.0, 0.0, 0.0, 5.0], [0.0, 0.0, 4.0, 6.0], [0.0, 2.0, 0.0, 8.0], [1.0, 3.0, 7.0, 9.0]],
    )


def test_col2im_of_ones_counts_the_windows_each_pixel_is_in():
    # Overlapping 2×2 windows with stride 1: the centre pixel is in all four, a corner in one.
    counts = col2im(np.ones((1, 2, 2, 2, 2, 1)), 3, 3, 1, 0)
    np.testing.assert_array_equal(counts[0, :, :, 0], [[1, 2, 1], [2, 4, 2], [1, 2, 1]])
    # Stride equal to the window: no overlap, every pixel of a 4×4 image is in exactly one.
    counts = col2im(np.ones((1, 2, 2, 2, 2, 1)), 4, 4, 2, 0)
    np.testing.assert_array_equal(counts[0, :, :, 0], np.ones((4, 4)))
    # Stride 3 with a 2×2 window on a 5×5 image: row and column 2 are in no window.
    counts = col2im(np.ones((1, 2, 2, 2, 2, 1)), 5, 5, 3, 0)
    np.testing.assert_array_equal(counts[0, 2, :, 0], np.zeros(5))
    np.testing.assert_array_equal(counts[0, :, 2, 0], np.zeros(5))
    # Padding: the counts of the padded image, without its border.
    counts = col2im(np.ones((1, 2, 2, 2, 2, 1)), 3, 3, 2, 1)
    np.testing.assert_array_equal(counts[0, :, :, 0], np.ones((3, 3)))


def test_col2im_by_hand_sums_the_overlapping_entries():
    columns = np.arange(1.0, 17.0).reshape(1, 2, 2, 2, 2, 1)  # entry (i, j) of window (p, q)
    image = col2im(columns, 3, 3, 1, 0)[0, :, :, 0]
    # Pixel (1, 1) is entry (1, 1) of window (0, 0), (1, 0) of (0, 1), (0, 1) of (1, 0) and
    # (0, 0) of (1, 1): columns[0, i, j, p, q, 0] = 1 + 8i + 4j + 2p + q.
    assert image[1, 1] == (1 + 8 + 4) + (1 + 8 + 1) + (1 + 4 + 2) + (1 + 2 + 1)
    assert image[0, 0] == 1.0  # entry (0, 0) of window (0, 0) only
    assert image[2, 2] == 1 + 8 + 4 + 2 + 1  # entry (1, 1) of window (1, 1) only


def test_forward_by_hand():
    # z_pq = x[p, q] + 2 x[p, q+1] − x[p+1, q+1] + 0.5
    z, _ = conv2d_forward(Conv2d(KERNEL, BIAS), X)
    np.testing.assert_array_equal(z[0, :, :, 0], [[0.5, 2.5], [6.5, 8.5]])


def test_forward_by_hand_with_stride_and_padding():
    # Windows at (0, 0), (0, 2), (2, 0), (2, 2) of the padded 5×5 image (see im2col above).
    z, _ = conv2d_forward(Conv2d(KERNEL, BIAS, stride=2, padding=1), X)
    np.testing.assert_array_equal(z[0, :, :, 0], [[-0.5, -2.5], [1.5, 8.5]])


def test_backward_by_hand():
    _, cache = conv2d_forward(Conv2d(KERNEL, BIAS), X)
    grad_z = np.array([[1.0, -1.0], [2.0, 0.0]]).reshape(1, 2, 2, 1)
    grads, grad_x = conv2d_backward(grad_z, cache)
    # grad_W_ij = Σ_pq δ_pq x[p+i, q+j]: (1·1 − 2 + 2·4, 2 − 3 + 2·5, 4 − 5 + 2·7, 5 − 6 + 2·8)
    np.testing.assert_array_equal(grads.W[0, 0], [[7.0, 9.0], [13.0, 15.0]])
    np.testing.assert_array_equal(grads.b, [2.0])  # Σ_pq δ_pq
    # grad_x: δ_pq W added onto the window at (p, q), summed where windows overlap:
    # 1·W at (0, 0), −1·W at (0, 1), 2·W at (1, 0).
    np.testing.assert_array_equal(
        grad_x[0, :, :, 0], [[1.0, 1.0, -2.0], [2.0, 3.0, 1.0], [0.0, -2.0, 0.0]]
    )
    assert (grads.stride, grads.padding) == (1, 0)


def test_the_convolution_is_the_affine_layer_on_the_columns(rng):
    layer = Conv2d(rng.standard_normal((4, 3, 3, 2)), rng.standard_normal(4), 2, 1)
    x = rng.standard_normal((3, 7, 6, 5))
    z, cache = conv2d_forward(layer, x)
    columns = columns_as_matrix(cache.columns)
    W_col = kernel_as_matrix(layer.W)
    # W_col: (out_channels, in_channels·kernel_h·kernel_w); columns: (that, out 4 × 4 × batch 5)
    assert W_col.shape == (4, 3 * 3 * 2) and columns.shape == (3 * 3 * 2, 4 * 4 * 5)
    np.testing.assert_array_equal(z.reshape(4, -1), tbp.nn.affine_forward(W_col, layer.b, columns))
    grad_z = rng.standard_normal(z.shape)
    grads, grad_x = conv2d_backward(grad_z, cache)
    delta_col = grad_z.reshape(4, -1)
    np.testing.assert_array_equal(grads.W.reshape(4, -1), delta_col @ columns.T)
    np.testing.assert_array_equal(grads.b, delta_col.sum(axis=1))
    grad_columns = matrix_as_columns(cache.columns, W_col.T @ delta_col)
    np.testing.assert_array_equal(grad_x, col2im(grad_columns, 7, 6, 2, 1))


def test_the_output_size():
    assert conv2d_output_size(8, 3, 1, 1) == 8
    assert conv2d_output_size(8, 3, 2, 1) == 4
    assert conv2d_output_size(7, 5, 2, 0) == 2
    assert conv2d_output_size(1, 3, 1, 1) == 1
    with pytest.raises(ValueError, match="a window of 5 does not fit in an input of 2"):
        conv2d_output_size(2, 5, 1, 1)


# --- gradient checks --------------------------------------------------------------------------


@settings(deadline=None, max_examples=25)
@given(convolution=convolutions(max_extra=3))
def test_conv2d_backward_passes_gradcheck(convolution):
    layer, x, _ = convolution
    report = tbp.gradcheck(forward_of(layer), backward_of(layer), [layer.W, layer.b, x])
    assert report.passed
    assert [check.name for check in report.arguments] == ["W", "b", "x"]


@settings(deadline=None, max_examples=25)
@given(convolution=convolutions(max_extra=3))
def test_col2im_is_the_gradient_of_im2col(convolution):
    layer, x, _ = convolution
    _, _, kernel_h, kernel_w = layer.W.shape
    _, height, width, _ = x.shape
    report = tbp.gradcheck(
        lambda x: im2col(x, kernel_h, kernel_w, layer.stride, layer.padding),
        lambda grad_columns, x: col2im(grad_columns, height, width, layer.stride, layer.padding),
        [x],
        names=["x"],
    )
    assert report.passed


@settings(deadline=None, max_examples=25)
@given(convolution=convolutions(max_extra=3))
def test_the_first_layers_backward_gives_the_same_parameter_gradients(convolution):
    layer, x, grad_z = convolution
    _, cache = conv2d_forward(layer, x)
    grads, _ = conv2d_backward(grad_z, cache)
    alone = conv2d_backward_params(grad_z, cache)
    np.testing.assert_array_equal(alone.W, grads.W)
    np.testing.assert_array_equal(alone.b, grads.b)


# --- against PyTorch --------------------------------------------------------------------------


@settings(deadline=None, max_examples=80)
@given(convolution=convolutions())
def test_conv2d_matches_torch(convolution):
    layer, x, grad_z = convolution
    z, (grad_W, grad_b, grad_x) = torch_conv2d(
        layer.W, layer.b, x, grad_z, layer.stride, layer.padding
    )
    ours, cache = conv2d_forward(layer, x)
    assert_close(ours, z)
    grads, ours_grad_x = conv2d_backward(grad_z, cache)
    assert_close(grads.W, grad_W)
    assert_close(grads.b, grad_b)
    assert_close(ours_grad_x, grad_x)


@pytest.mark.parametrize(("kernel", "stride", "padding"), [(1, 1, 0), (3, 2, 1), (5, 1, 1)])
def test_conv2d_matches_torch_on_a_digits_sized_batch(rng, kernel, stride, padding):
    layer = Conv2d(rng.standard_normal((6, 3, kernel, kernel)), rng.standard_normal(6))
    layer = Conv2d(layer.W, layer.b, stride, padding)
    x = rng.standard_normal((3, 8, 8, 16))
    ours, cache = conv2d_forward(layer, x)
    grad_z = rng.standard_normal(ours.shape)
    z, (grad_W, grad_b, grad_x) = torch_conv2d(layer.W, layer.b, x, grad_z, stride, padding)
    assert_close(ours, z)
    grads, ours_grad_x = conv2d_backward(grad_z, cache)
    assert_close(grads.W, grad_W)
    assert_close(grads.b, grad_b)
    assert_close(ours_grad_x, grad_x)


# --- wrong shapes -----------------------------------------------------------------------------

# out_channels=4, in_channels=3, a 3×2 kernel, images 7 high and 8 wide, batch 6; stride 1 and
# no padding give an output 5 high and 7 wide: every size differs from the one beside it.
W = np.ones((4, 3, 3, 2))
B = np.ones(4)
X_IMAGES = np.ones((3, 7, 8, 6))
LAYER = Conv2d(W, B)


def shape_error(call) -> str:
    with pytest.raises(TypeCheckError) as caught:
        call()
    return str(caught.value)


@pytest.mark.parametrize(
    ("call", "fragments"),
    [
        pytest.param(
            lambda: conv2d_forward(LAYER, X_IMAGES.transpose(3, 0, 1, 2)),
            ["argument x", "in_channels is 6", "existing value of 3"],
            id="batch-first (NCHW) images",
        ),
        pytest.param(
            lambda: conv2d_forward(LAYER, X_IMAGES[:2]),
            ["argument x", "in_channels is 2", "existing value of 3"],
            id="too few input channels",
        ),
        pytest.param(
            lambda: conv2d_forward(LAYER, X_IMAGES[..., 0]),
            ["argument x"],
            id="one image without its batch axis",
        ),
        pytest.param(
            lambda: conv2d_backward(np.ones((4, 7, 5, 6)), conv2d_forward(LAYER, X_IMAGES)[1]),
            # the cache keeps x, not its windows: backward copies them again, and they bind
            # the output's height before grad_z is checked against it
            ["grad_z: out_height is 7", "the size of out_width", "columns bound out_height=5"],
            id="backward: grad_z with height and width transposed",
        ),
        pytest.param(
            lambda: conv2d_backward(np.ones((6, 4, 5, 7)), conv2d_forward(LAYER, X_IMAGES)[1]),
            ["argument grad_z", "out_channels is 6", "existing value of 4"],
            id="backward: batch-first grad_z",
        ),
    ],
)
def test_wrong_shapes_raise_naming_the_dimension(call, fragments):
    message = shape_error(call)
    for fragment in fragments:
        assert fragment in message, message


def test_a_bias_per_input_channel_is_refused_naming_out_channels():
    message = shape_error(lambda: Conv2d(W, np.ones(3)))
    assert "out_channels=4" in message.splitlines()


@pytest.mark.parametrize(
    ("stride", "padding"), [(0, 0), (-1, 0), (1, -1)], ids=["stride 0", "stride -1", "padding -1"]
)
def test_bad_settings_are_refused(stride, padding):
    with pytest.raises(ValueError, match="stride must be at least 1 and padding at least 0"):
        Conv2d(W, B, stride, padding)


def test_an_image_smaller_than_the_kernel_is_refused():
    with pytest.raises(ValueError, match="a window of 3 does not fit"):
        conv2d_forward(LAYER, np.ones((3, 2, 8, 6)))


@checked
def conv2d_backward_transposed(
    grad_z: Float[Array, "out_channels out_height out_width batch"], cache: Conv2dCache
) -> tuple[Conv2d, Float[Array, "in_channels height width batch"]]:
    """A backward with a bug: it returns ``grad_x`` with height and width swapped."""
    grads, grad_x = conv2d_backward(grad_z, cache)
    return grads, grad_x.transpose(0, 2, 1, 3)  # BUG


@checked
def conv2d_backward_kernel_transposed(
    grad_z: Float[Array, "out_channels out_height out_width batch"], cache: Conv2dCache
) -> tuple[Conv2d, Float[Array, "in_channels height width batch"]]:
    """A backward with a bug: its weight gradient has the kernel's axes swapped."""
    grads, grad_x = conv2d_backward(grad_z, cache)
    return Conv2d(grads.W.transpose(0, 1, 3, 2), grads.b), grad_x  # BUG


def test_a_backward_returning_a_transposed_gradient_is_refused_by_the_scope_of_its_cache():
    # The bug's own arguments say nothing about height and width; the cache's x binds them.
    _, cache = conv2d_forward(LAYER, X_IMAGES)
    grad_z = np.ones((4, 5, 7, 6))
    message = shape_error(lambda: conv2d_backward_transposed(grad_z, cache))
    assert "the result" in message and "height is 8" in message and "value of 7" in message
    message = shape_error(lambda: conv2d_backward_kernel_transposed(grad_z, cache))
    assert "result[0].W" in message and "kernel_h is 2" in message and "value of 3" in message


def test_integer_images_are_refused():
    with pytest.raises(TypeCheckError, match="argument x"):
        conv2d_forward(LAYER, X_IMAGES.astype(np.int64))


# --- purity and dtypes ------------------------------------------------------------------------


def read_only(*arrays):
    copies = []
    for array in arrays:
        copy = np.array(array, copy=True)
        copy.flags.writeable = False
        copies.append(copy)
    return copies


def test_no_conv2d_function_modifies_its_arguments(rng):
    W, b = rng.standard_normal((4, 3, 3, 2)), rng.standard_normal(4)
    x = rng.standard_normal((3, 7, 8, 5))
    columns = assert_leaves_inputs_alone(im2col, x, 3, 2, 2, 1)
    assert_leaves_inputs_alone(col2im, columns, 7, 8, 2, 1)
    assert_leaves_inputs_alone(columns_as_matrix, columns)
    assert_leaves_inputs_alone(kernel_as_matrix, W)
    # forward and backward on read-only arrays (a write raises), compared with the originals
    frozen_W, frozen_b, frozen_x = read_only(W, b, x)
    z, cache = conv2d_forward(Conv2d(frozen_W, frozen_b, 2, 1), frozen_x)
    (grad_z,) = read_only(rng.standard_normal(z.shape))
    conv2d_backward(grad_z, cache)
    for frozen, original in [(frozen_W, W), (frozen_b, b), (frozen_x, x)]:
        np.testing.assert_array_equal(frozen, original)


def test_float32_in_float32_out(rng):
    W, b, x = (
        rng.standard_normal(shape).astype(np.float32) for shape in [(4, 3, 3, 2), 4, (3, 7, 8, 5)]
    )
    z, cache = conv2d_forward(Conv2d(W, b, 2, 1), x)
    assert z.dtype == np.float32 and cache.columns.dtype == np.float32
    grads, grad_x = conv2d_backward(rng.standard_normal(z.shape).astype(np.float32), cache)
    assert grads.W.dtype == grads.b.dtype == grad_x.dtype == np.float32


def test_the_cache_keeps_x_and_not_its_windows(rng):
    # The windows are kernel_h·kernel_w copies of x, the layer's largest array: kept in the
    # cache they would live through every layer's backward pass above this one. Backward copies
    # them again instead, from x, and gets the same numbers.
    layer = Conv2d(rng.standard_normal((4, 3, 3, 2)), rng.standard_normal(4), 2, 1)
    x = rng.standard_normal((3, 7, 6, 5))
    _, cache = conv2d_forward(layer, x)
    assert [field.name for field in dataclasses.fields(cache)] == ["layer", "x"]
    assert cache.x is x
    np.testing.assert_array_equal(cache.columns, im2col(x, 3, 2, 2, 1))


def test_backward_never_holds_the_whole_gradient_of_the_columns(rng):
    # ∂L/∂columns = W_colᵀ δ_col is as large as the columns; backward adds it into the image one
    # kernel offset at a time, so at its peak it holds the columns (for ∂L/∂W) and a ninth of
    # that, not both whole.
    layer = Conv2d(rng.standard_normal((32, 16, 3, 3)), rng.standard_normal(32), 1, 1)
    x = rng.standard_normal((16, 6, 5, 7))
    z, cache = conv2d_forward(layer, x)
    grad_z = rng.standard_normal(z.shape)
    columns_bytes = im2col(x, 3, 3, 1, 1).nbytes
    conv2d_backward(grad_z, cache)  # the checks' first call, out of the measurement
    tracemalloc.start()
    try:
        conv2d_backward(grad_z, cache)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert columns_bytes < peak < 1.5 * columns_bytes
