"""Tests for typedbackprop.nn.pooling: max pooling and average pooling."""

import numpy as np
import pytest
from helpers import SEEDS, assert_close, assert_leaves_inputs_alone
from hypothesis import given, settings
from hypothesis import strategies as st
from jaxtyping import Float, TypeCheckError
from torch_images import torch_avg_pool2d, torch_max_pool2d

import typedbackprop as tbp
from typedbackprop import Array, checked
from typedbackprop.nn.pooling import (
    AvgPool2d,
    AvgPool2dCache,
    MaxPool2d,
    MaxPool2dCache,
    avgpool2d_backward,
    avgpool2d_forward,
    maxpool2d_backward,
    maxpool2d_forward,
    pool_output_size,
)

POOLS = {
    "max": (MaxPool2d, maxpool2d_forward, maxpool2d_backward, torch_max_pool2d),
    "avg": (AvgPool2d, avgpool2d_forward, avgpool2d_backward, torch_avg_pool2d),
}


WINDOWS = st.sampled_from([1, 2, 3])
STRIDES = st.sampled_from([1, 2])


@st.composite
def poolings(draw, windows=WINDOWS, strides=STRIDES):
    """``(window, stride, x, grad_a)`` with four distinct sizes for the axes of ``x``.

    ``x`` holds distinct values spaced at least ``1 / x.size`` apart, so that no window has a
    tie and no central-difference step (``1e-6``) can change which pixel is a maximum.
    """
    window, stride = draw(windows), draw(strides)
    height = draw(st.integers(window, window + 4))
    width = draw(st.integers(window, window + 4).filter(lambda w: w != height))
    channels = draw(st.integers(1, 5).filter(lambda c: c not in {height, width}))
    batch = draw(st.integers(1, 5).filter(lambda n: n not in {height, width, channels}))
    rng = np.random.default_rng(draw(SEEDS))
    shape = (channels, height, width, batch)
    x = rng.permutation(channels * height * width * batch) - 0.5 * channels * height * width * batch
    x = x.reshape(shape) / x.size
    out_shape = (
        channels,
        pool_output_size(height, window, stride),
        pool_output_size(width, window, stride),
        batch,
    )
    return window, stride, x, rng.standard_normal(out_shape)


def forward_of(kind, window, stride):
    record, forward, _, _ = POOLS[kind]
    return lambda x: forward(record(window, stride), x)[0]


def backward_of(kind, window, stride):
    record, forward, backward, _ = POOLS[kind]
    return lambda grad_a, x: backward(grad_a, forward(record(window, stride), x)[1])


# --- values by hand ---------------------------------------------------------------------------

# One channel, a 4×4 image, one example.
X = np.array(
    [[1.0, 3.0, 2.0, 0.0], [4.0, 2.0, 1.0, 5.0], [0.0, 6.0, 3.0, 3.0], [2.0, 1.0, 7.0, 4.0]]
).reshape(1, 4, 4, 1)
GRAD_3X3 = np.arange(1.0, 10.0).reshape(1, 3, 3, 1)  # for the 3×3 output of window 2, stride 1


def image(array):
    return array[0, :, :, 0]


def test_maxpool_by_hand_without_overlap():
    a, cache = maxpool2d_forward(MaxPool2d(2, 2), X)
    np.testing.assert_array_equal(image(a), [[4.0, 5.0], [6.0, 7.0]])
    # The maximum of window (0, 0) is at offset (1, 0): i·window + j = 2.
    np.testing.assert_array_equal(image(cache.argmax), [[2, 3], [1, 2]])
    grad_x = maxpool2d_backward(np.array([[1.0, -2.0], [3.0, 0.5]]).reshape(1, 2, 2, 1), cache)
    np.testing.assert_array_equal(
        image(grad_x),
        [[0.0, 0.0, 0.0, 0.0], [1.0, 0.0, 0.0, -2.0], [0.0, 3.0, 0.0, 0.0], [0.0, 0.0, 0.5, 0.0]],
    )


def test_maxpool_by_hand_with_overlapping_windows_sums_at_a_shared_maximum():
    a, cache = maxpool2d_forward(MaxPool2d(2, 1), X)
    np.testing.assert_array_equal(image(a), [[4.0, 3.0, 5.0], [6.0, 6.0, 5.0], [6.0, 7.0, 7.0]])
    grad_x = maxpool2d_backward(GRAD_3X3, cache)
    # The 6 at (2, 1) is the maximum of windows (1, 0), (1, 1) and (2, 0): 4 + 5 + 7.
    # The 5 at (1, 3) is the maximum of (0, 2) and (1, 2): 3 + 6; the 7 at (3, 2): 8 + 9.
    np.testing.assert_array_equal(
        image(grad_x),
        [[0.0, 2.0, 0.0, 0.0], [1.0, 0.0, 0.0, 9.0], [0.0, 16.0, 0.0, 0.0], [0.0, 0.0, 17.0, 0.0]],
    )


@pytest.mark.parametrize(
    ("window_values", "winner"),
    [
        pytest.param([[5.0, 5.0], [5.0, 5.0]], (0, 0), id="all four equal"),
        pytest.param([[1.0, 5.0], [5.0, 2.0]], (0, 1), id="a tie across rows"),
        pytest.param([[1.0, 2.0], [5.0, 5.0]], (1, 0), id="a tie in the second row"),
    ],
)
def test_a_tie_gives_the_gradient_to_the_first_maximum_row_by_row(window_values, winner):
    x = np.array(window_values).reshape(1, 2, 2, 1)
    a, cache = maxpool2d_forward(MaxPool2d(2, 2), x)
    assert image(a)[0, 0] == 5.0
    grad_x = image(maxpool2d_backward(np.full((1, 1, 1, 1), -3.0), cache))
    expected = np.zeros((2, 2))
    expected[winner] = -3.0
    np.testing.assert_array_equal(grad_x, expected)


def test_avgpool_by_hand_without_overlap():
    a, cache = avgpool2d_forward(AvgPool2d(2, 2), X)
    np.testing.assert_array_equal(image(a), [[2.5, 2.0], [2.25, 4.25]])
    grad_x = avgpool2d_backward(np.array([[4.0, -8.0], [2.0, 1.0]]).reshape(1, 2, 2, 1), cache)
    np.testing.assert_array_equal(
        image(grad_x),
        [
            [1.0, 1.0, -2.0, -2.0],
            [1.0, 1.0, -2.0, -2.0],
            [0.5, 0.5, 0.25, 0.25],
            [0.5, 0.5, 0.25, 0.25],
        ],
    )


def test_avgpool_by_hand_with_overlapping_windows_sums_the_shares():
    a, cache = avgpool2d_forward(AvgPool2d(2, 1), X)
    np.testing.assert_array_equal(image(a), [[2.5, 2.0, 2.0], [3.0, 3.0, 3.0], [2.25, 4.25, 4.25]])
    # Pixel (h, w) gets a quarter of the gradient of each window it is in.
    grad_x = avgpool2d_backward(GRAD_3X3, cache)
    np.testing.assert_array_equal(
        image(grad_x),
        np.array(
            [
                [1.0, 3.0, 5.0, 3.0],
                [5.0, 12.0, 16.0, 9.0],
                [11.0, 24.0, 28.0, 15.0],
                [7.0, 15.0, 17.0, 9.0],
            ]
        )
        / 4,
    )


def test_output_size():
    assert pool_output_size(8, 2, 2) == 4
    assert pool_output_size(7, 3, 2) == 3
    assert pool_output_size(5, 2, 1) == 4
    with pytest.raises(ValueError, match="a window of 3 does not fit in an input of 2"):
        pool_output_size(2, 3, 1)


# --- gradient checks --------------------------------------------------------------------------


@pytest.mark.parametrize("kind", POOLS)
@settings(deadline=None, max_examples=25)
@given(pooling=poolings())
def test_pooling_backward_passes_gradcheck(kind, pooling):
    window, stride, x, _ = pooling
    report = tbp.gradcheck(
        forward_of(kind, window, stride), backward_of(kind, window, stride), [x], names=["x"]
    )
    assert report.passed


# --- against PyTorch --------------------------------------------------------------------------


@pytest.mark.parametrize("kind", POOLS)
@settings(deadline=None, max_examples=60)
@given(pooling=poolings())
def test_pooling_matches_torch(kind, pooling):
    window, stride, x, grad_a = pooling
    record, forward, backward, oracle = POOLS[kind]
    a, grad_x = oracle(x, grad_a, window, stride)
    ours, cache = forward(record(window, stride), x)
    assert_close(ours, a)
    assert_close(backward(grad_a, cache), grad_x)


@settings(deadline=None, max_examples=60)
@given(pooling=poolings(windows=st.sampled_from([2, 3])), seed=SEEDS)
def test_maxpool_breaks_ties_as_torch_does(pooling, seed):
    # Values from {0, 1, 2}: most windows hold a tie for the maximum.
    window, stride, x, grad_a = pooling
    ties = np.random.default_rng(seed).integers(0, 3, x.shape).astype(np.float64)
    a, grad_x = torch_max_pool2d(ties, grad_a, window, stride)
    ours, cache = maxpool2d_forward(MaxPool2d(window, stride), ties)
    np.testing.assert_array_equal(ours, a)
    assert_close(maxpool2d_backward(grad_a, cache), grad_x)


def test_maxpool_propagates_nan_as_torch_does(rng):
    x = rng.standard_normal((2, 5, 6, 3))
    x[0, 1, 2, 0] = x[1, 3, 3, 2] = x[1, 3, 4, 2] = np.nan
    grad_a = rng.standard_normal((2, 4, 5, 3))
    a, grad_x = torch_max_pool2d(x, grad_a, 2, 1)
    ours, cache = maxpool2d_forward(MaxPool2d(2, 1), x)
    np.testing.assert_array_equal(ours, a)  # NaN where torch has NaN
    assert np.isnan(ours).sum() == 4 + 6
    assert_close(maxpool2d_backward(grad_a, cache), grad_x)  # the same pixels, sums in any order


def test_maxpool_sends_an_infinite_gradient_only_to_the_maximum(rng):
    # grad_a · [is the maximum] would put inf · 0 = NaN at every other pixel of the window.
    x = distinct((1, 4, 4, 2), rng)
    a, cache = maxpool2d_forward(MaxPool2d(2, 2), x)
    grad_a = rng.standard_normal(a.shape)
    grad_a[0, 1, 0, 1] = np.inf
    grad_x = maxpool2d_backward(grad_a, cache)
    window = grad_x[0, 2:4, 0:2, 1]
    assert np.isinf(window).sum() == 1 and np.count_nonzero(window) == 1
    assert not np.isnan(grad_x).any()
    finite = grad_a.copy()
    finite[0, 1, 0, 1] = 1.0
    expected = maxpool2d_backward(finite, cache)
    mask = ~np.isinf(grad_x)
    np.testing.assert_array_equal(grad_x[mask], expected[mask])


def distinct(shape, rng):
    size = int(np.prod(shape))
    return (rng.permutation(size) / size).reshape(shape)


# --- wrong shapes -----------------------------------------------------------------------------

# channels=3, images 7 high and 8 wide, batch 5; window 2 and stride 1 give an output 6 high and
# 7 wide: the sizes along each axis differ from those beside it.
X_IMAGES = np.ones((3, 7, 8, 5))
GRAD_A = np.ones((3, 6, 7, 5))


def shape_error(call) -> str:
    with pytest.raises(TypeCheckError) as caught:
        call()
    return str(caught.value)


@pytest.mark.parametrize("kind", POOLS)
@pytest.mark.parametrize(
    ("arrays", "fragments"),
    [
        pytest.param(
            (np.ones(GRAD_A.shape[::-1]),),
            ["argument grad_a", "channels is 5", "existing value of 3"],
            id="batch-first grad_a",
        ),
        pytest.param(
            (GRAD_A.transpose(0, 2, 1, 3),),
            ["argument grad_a", "out_height is 7", "existing value of 6"],
            id="grad_a with height and width transposed",
        ),
        pytest.param(
            (GRAD_A[..., :2],),
            ["argument grad_a", "batch is 2", "existing value of 5"],
            id="grad_a of another batch",
        ),
    ],
)
def test_a_backward_with_the_wrong_gradient_is_refused_naming_the_dimension(
    kind, arrays, fragments
):
    record, forward, backward, _ = POOLS[kind]
    _, cache = forward(record(2, 1), X_IMAGES)
    message = shape_error(lambda: backward(*arrays, cache))
    for fragment in fragments:
        assert fragment in message, message


@pytest.mark.parametrize("kind", POOLS)
def test_a_batch_of_feature_vectors_is_refused(kind):
    record, forward, _, _ = POOLS[kind]
    with pytest.raises(TypeCheckError, match="argument x"):
        forward(record(2, 1), np.ones((3, 5)))


@checked
def maxpool2d_backward_transposed(
    grad_a: Float[Array, "channels out_height out_width batch"], cache: MaxPool2dCache
) -> Float[Array, "channels height width batch"]:
    return maxpool2d_backward(grad_a, cache).transpose(0, 2, 1, 3)  # BUG


@checked
def avgpool2d_backward_transposed(
    grad_a: Float[Array, "channels out_height out_width batch"], cache: AvgPool2dCache
) -> Float[Array, "channels height width batch"]:
    return avgpool2d_backward(grad_a, cache).transpose(0, 2, 1, 3)  # BUG


@pytest.mark.parametrize(
    ("kind", "wrong"),
    [("max", maxpool2d_backward_transposed), ("avg", avgpool2d_backward_transposed)],
)
def test_a_backward_returning_a_transposed_gradient_is_refused_by_the_scope_of_its_cache(
    kind, wrong
):
    record, forward, _, _ = POOLS[kind]
    _, cache = forward(record(2, 1), X_IMAGES)
    message = shape_error(lambda: wrong(GRAD_A, cache))
    assert "the result" in message and "height is 8" in message and "value of 7" in message


@pytest.mark.parametrize("kind", POOLS)
@pytest.mark.parametrize("window", [1, 2, 3])
def test_the_default_stride_is_the_window_as_in_torch(kind, window, rng):
    # torch.nn.MaxPool2d(3) strides 3: windows side by side. A default of 2 strided 2 for
    # every window, overlapping a window of 3 and skipping pixels for a window of 1.
    import torch

    record, forward, _, _ = POOLS[kind]
    torch_pool = {"max": torch.nn.MaxPool2d, "avg": torch.nn.AvgPool2d}[kind](window)
    assert record(window) == record(window, window)
    assert record(window=window).stride == window == torch_pool.stride
    assert record() == record(2, 2)  # the default window is unchanged
    x = rng.standard_normal((2, 7, 8, 3))  # channels, height, width, batch
    expected = torch_pool(torch.from_numpy(x).permute(3, 0, 1, 2)).permute(1, 2, 3, 0).numpy()
    assert_close(forward(record(window), x)[0], expected)


@pytest.mark.parametrize("record", [MaxPool2d, AvgPool2d])
@pytest.mark.parametrize(("window", "stride"), [(0, 1), (2, 0), (-1, -1), (0, None)])
def test_bad_settings_are_refused(record, window, stride):
    with pytest.raises(ValueError, match="window and stride must be at least 1"):
        record(window, stride)


# --- purity and dtypes ------------------------------------------------------------------------


@pytest.mark.parametrize("kind", POOLS)
def test_no_pooling_function_modifies_its_arguments(kind, rng):
    record, forward, backward, _ = POOLS[kind]
    x = rng.standard_normal((3, 7, 8, 5))
    grad_a = rng.standard_normal((3, 6, 7, 5))
    layer = record(2, 1)
    _, cache = assert_leaves_inputs_alone(lambda x: forward(layer, x), x)
    cache.x.flags.writeable = False
    if isinstance(cache, MaxPool2dCache):
        cache.argmax.flags.writeable = False
    assert_leaves_inputs_alone(lambda grad_a: backward(grad_a, cache), grad_a)


@pytest.mark.parametrize("kind", POOLS)
def test_float32_in_float32_out(kind, rng):
    record, forward, backward, _ = POOLS[kind]
    x = rng.standard_normal((3, 7, 8, 5)).astype(np.float32)
    a, cache = forward(record(3, 2), x)
    assert a.dtype == np.float32
    grad_x = backward(rng.standard_normal(a.shape).astype(np.float32), cache)
    assert grad_x.dtype == np.float32


@pytest.mark.parametrize(("window", "dtype"), [(2, np.uint8), (16, np.uint8), (17, np.uint16)])
def test_maxpool_keeps_the_argmax_in_the_smallest_integer_type(rng, window, dtype):
    # The offsets run to window² − 1; the cache holds them through the whole backward pass,
    # where int64 would take 8 times the memory of uint8.
    x = rng.standard_normal((2, window + 1, window + 2, 3))
    x[0, window - 1, window - 1, 0] = 10.0  # the last offset of the first window
    _, cache = maxpool2d_forward(MaxPool2d(window, 1), x)
    assert cache.argmax.dtype == dtype
    assert cache.argmax[0, 0, 0, 0] == window * window - 1
