"""Tests for typedbackprop.nn.activations: sigmoid, tanh, ReLU, leaky ReLU and the identity,
and the activation layer on matrices, images and tokens."""

import json
import math
from functools import partial

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers import (
    EPS,
    HUGE,
    SEEDS,
    SIZES,
    assert_close,
    assert_leaves_inputs_alone,
    raises_shape_error,
    torch_elementwise,
)
from hypothesis import given, settings
from hypothesis import strategies as st
from jaxtyping import TypeCheckError

import typedbackprop as tbp

# (forward, backward, the same function in PyTorch): one row per activation. Every backward
# takes (grad_a, z, a); leaky ReLU appears twice, with the default slope and another one.
ACTIVATIONS = [
    pytest.param(tbp.nn.sigmoid_forward, tbp.nn.sigmoid_backward, torch.sigmoid, id="sigmoid"),
    pytest.param(tbp.nn.tanh_forward, tbp.nn.tanh_backward, torch.tanh, id="tanh"),
    pytest.param(tbp.nn.relu_forward, tbp.nn.relu_backward, F.relu, id="relu"),
    pytest.param(
        tbp.nn.leaky_relu_forward,
        tbp.nn.leaky_relu_backward,
        partial(F.leaky_relu, negative_slope=0.01),
        id="leaky_relu",
    ),
    pytest.param(
        partial(tbp.nn.leaky_relu_forward, slope=0.2),
        partial(tbp.nn.leaky_relu_backward, slope=0.2),
        partial(F.leaky_relu, negative_slope=0.2),
        id="leaky_relu-slope-0.2",
    ),
    pytest.param(
        tbp.nn.identity_forward, tbp.nn.identity_backward, torch.nn.Identity(), id="identity"
    ),
]
ROWS = ("forward", "backward", "torch_function")
# The same rows without PyTorch, and the rows of the two functions with a kink at 0.
PAIRS = [pytest.param(*row.values[:2], id=row.id) for row in ACTIVATIONS]
KINKED = [row for row in ACTIVATIONS if "relu" in row.id]

LN2, LN3 = math.log(2.0), math.log(3.0)


def backward_at(backward, forward):
    """``backward`` in the ``backward(grad_a, z)`` form gradcheck calls; ``a`` recomputed."""
    return lambda grad_a, z: backward(grad_a, z, forward(z))


@st.composite
def pre_activations(draw):
    """``(z, grad_a)`` of shape (features, batch), features and batch from 1 to 6.

    z is standard normal times 0.1, 1 or 5: near zero, moderate, and into the saturated tails.
    """
    features, batch = draw(SIZES), draw(SIZES)
    scale = draw(st.sampled_from([0.1, 1.0, 5.0]))
    rng = np.random.default_rng(draw(SEEDS))
    return (
        rng.standard_normal((features, batch)) * scale,
        rng.standard_normal((features, batch)),
    )


# --- values by hand ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("forward", "backward", "z", "a", "grad_z"),
    [
        # σ(0) = ½, σ(±ln 3) = 1/(1 + 1/3) = ¾ and ¼; σ' = a(1 − a) = ¼, 3/16, 3/16
        pytest.param(
            tbp.nn.sigmoid_forward, tbp.nn.sigmoid_backward,
            [[0.0, LN3, -LN3]], [[0.5, 0.75, 0.25]], [[0.25, 3 / 16, 3 / 16]],
            id="sigmoid",
        ),
        # tanh(±ln 2) = ±(2 − ½)/(2 + ½) = ±3/5; tanh' = 1 − a² = 1, 16/25, 16/25
        pytest.param(
            tbp.nn.tanh_forward, tbp.nn.tanh_backward,
            [[0.0, LN2, -LN2]], [[0.0, 0.6, -0.6]], [[1.0, 16 / 25, 16 / 25]],
            id="tanh",
        ),
        pytest.param(
            tbp.nn.relu_forward, tbp.nn.relu_backward,
            [[-2.0, 0.0, 3.0]], [[0.0, 0.0, 3.0]], [[0.0, 0.0, 1.0]],
            id="relu",
        ),
        pytest.param(
            tbp.nn.leaky_relu_forward, tbp.nn.leaky_relu_backward,
            [[-2.0, 0.0, 3.0]], [[-0.02, 0.0, 3.0]], [[0.01, 0.01, 1.0]],
            id="leaky_relu",
        ),
        pytest.param(
            partial(tbp.nn.leaky_relu_forward, slope=0.2),
            partial(tbp.nn.leaky_relu_backward, slope=0.2),
            [[-2.0, 0.0, 3.0]], [[-0.4, 0.0, 3.0]], [[0.2, 0.2, 1.0]],
            id="leaky_relu-slope-0.2",
        ),
        pytest.param(
            tbp.nn.identity_forward, tbp.nn.identity_backward,
            [[-2.0, 0.0, 3.0]], [[-2.0, 0.0, 3.0]], [[1.0, 1.0, 1.0]],
            id="identity",
        ),
    ],
)  # fmt: skip
def test_values_and_derivatives_by_hand(forward, backward, z, a, grad_z):
    z, a, grad_z = np.array(z), np.array(a), np.array(grad_z)
    assert_close(forward(z), a, rtol=1e-15)
    # With an upstream gradient of 2 everywhere, backward gives 2 f'(z).
    upstream = np.full_like(z, 2.0)
    assert_close(backward(upstream, z, forward(z)), 2.0 * grad_z, rtol=1e-15)


def test_leaky_relu_slope_is_used_by_forward_and_backward():
    z = np.array([[-10.0, -1.0, 4.0]])
    np.testing.assert_array_equal(tbp.nn.leaky_relu_forward(z, slope=0.5), [[-5.0, -0.5, 4.0]])
    np.testing.assert_array_equal(tbp.nn.leaky_relu_forward(z, 0.0), tbp.nn.relu_forward(z))
    grad_a = np.array([[3.0, 3.0, 3.0]])
    np.testing.assert_array_equal(
        tbp.nn.leaky_relu_backward(grad_a, z, z, slope=0.5), [[1.5, 1.5, 3.0]]
    )


def test_identity_returns_its_input_itself():
    z, grad_a = np.ones((2, 3)), np.zeros((2, 3))
    assert tbp.nn.identity_forward(z) is z
    assert tbp.nn.identity_backward(grad_a, z, z) is grad_a


@pytest.mark.parametrize(ROWS, KINKED)
def test_derivative_at_exactly_zero_follows_torch(forward, backward, torch_function):
    # ReLU's derivative at 0 is taken as 0, leaky ReLU's as its slope, the choices of PyTorch.
    z = np.array([[-1.0, -0.0, 0.0, 1.0]])
    grad_a = np.array([[3.0, 3.0, 3.0, 3.0]])
    a, grad_z = torch_elementwise(torch_function, z, grad_a)
    np.testing.assert_array_equal(forward(z), a)
    np.testing.assert_array_equal(backward(grad_a, z, forward(z)), grad_z)


# --- gradient checks and PyTorch --------------------------------------------------------------


@pytest.mark.parametrize(("forward", "backward"), PAIRS)
@settings(deadline=None, max_examples=25)
@given(case=pre_activations())
def test_backward_passes_gradcheck(forward, backward, case):
    z, _ = case
    # (ReLU's kink: a normal draw within eps = 1e-6 of 0 has negligible odds.)
    report = tbp.gradcheck(forward, backward_at(backward, forward), [z])
    assert report.passed


@pytest.mark.parametrize(ROWS, ACTIVATIONS)
@settings(deadline=None, max_examples=40)
@given(case=pre_activations())
def test_forward_and_backward_match_torch(forward, backward, torch_function, case):
    z, grad_a = case
    a, grad_z = torch_elementwise(torch_function, z, grad_a)
    assert_close(forward(z), a)
    # Sigmoid and tanh take their derivatives from the rounded a, as a(1 − a) and 1 − a², in
    # both libraries. Where they saturate, that is good to a few units of float64's spacing
    # near 1 (times grad_a) absolutely, not to 1e-10 relatively: allow that much on top.
    saturation = 8 * EPS * np.max(np.abs(grad_a))
    assert_close(backward(grad_a, z, forward(z)), grad_z, atol=saturation)


# --- the sigmoid's tails ----------------------------------------------------------------------


def test_sigmoid_is_accurate_far_into_both_tails():
    # σ(−40) = e⁻⁴⁰ / (1 + e⁻⁴⁰) ≈ 4.25e-18; the form 1 − σ(40) would round it to 0.
    z = np.array([[-40.0, -100.0, -300.0, -700.0, 20.0, 40.0]])
    a = tbp.nn.sigmoid_forward(z)
    expected = torch.sigmoid(torch.tensor(z)).numpy()
    np.testing.assert_allclose(a, expected, rtol=1e-14, atol=0.0)
    assert a[0, 0] == pytest.approx(math.exp(-40.0) / (1.0 + math.exp(-40.0)), rel=1e-14, abs=0)
    assert a[0, 0] == pytest.approx(4.248354255291589e-18, rel=1e-14, abs=0)


def test_float32_sigmoid_is_accurate_in_its_tail():
    z = np.array([[-40.0, -80.0, 40.0]], dtype=np.float32)
    expected = [[math.exp(-40.0), math.exp(-80.0), 1.0]]  # σ(z) = eᶻ to float64 precision here
    np.testing.assert_allclose(tbp.nn.sigmoid_forward(z), expected, rtol=1e-6, atol=0.0)


@pytest.mark.filterwarnings("error")  # an overflow in np.exp is a failure, not noise
@pytest.mark.parametrize(("dtype", "big"), HUGE)
def test_sigmoid_of_huge_pre_activations_is_exact_and_silent(dtype, big):
    z = np.array([[big, -big, 0.0]], dtype=dtype)
    a = tbp.nn.sigmoid_forward(z)
    np.testing.assert_array_equal(a, [[1.0, 0.0, 0.5]])
    grad_z = tbp.nn.sigmoid_backward(np.ones_like(z), z, a)
    np.testing.assert_array_equal(grad_z, [[0.0, 0.0, 0.25]])
    assert a.dtype == grad_z.dtype == dtype


# --- wrong shapes and kinds -------------------------------------------------------------------


@pytest.mark.parametrize(("forward", "backward"), PAIRS)
def test_backward_with_z_transposed_names_the_dimensions(forward, backward):
    grad_a = np.ones((3, 4))  # binds features=3, batch=4
    with raises_shape_error("features=3", "batch=4"):
        backward(grad_a, grad_a.T, grad_a)


@pytest.mark.parametrize(("forward", "backward"), PAIRS)
def test_backward_with_a_of_another_batch_names_the_dimensions(forward, backward):
    z = np.ones((3, 4))
    with raises_shape_error("features=3", "batch=4"):
        backward(z, z, np.ones((3, 5)))


@pytest.mark.parametrize(("forward", "backward"), PAIRS)
@pytest.mark.parametrize(
    "bad",
    [np.ones(4), np.ones((2, 3, 4)), np.ones((3, 4), dtype=np.int64)],
    ids=["one example as a vector", "3-d", "int"],
)
def test_forward_refuses_what_is_not_a_float_matrix(forward, backward, bad):
    with raises_shape_error():
        forward(bad)


@pytest.mark.parametrize(("forward", "backward"), PAIRS)
def test_backward_refuses_an_integer_upstream_gradient(forward, backward):
    z = np.ones((3, 4))
    with raises_shape_error():
        backward(np.ones((3, 4), dtype=np.int64), z, z)


def test_leaky_relu_slope_must_be_a_float():
    with raises_shape_error("features=1", "batch=2"):
        tbp.nn.leaky_relu_forward(np.ones((1, 2)), "0.1")


# --- purity and dtypes ------------------------------------------------------------------------


@pytest.mark.parametrize(("forward", "backward"), PAIRS)
def test_inputs_are_not_modified(forward, backward, rng):
    z, grad_a = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    a = assert_leaves_inputs_alone(forward, z)
    assert_leaves_inputs_alone(backward, grad_a, z, a)


@pytest.mark.parametrize(("forward", "backward"), PAIRS)
def test_float32_in_float32_out(forward, backward, rng):
    z = rng.standard_normal((3, 4)).astype(np.float32)
    a = forward(z)
    assert a.dtype == np.float32
    assert backward(np.ones_like(z), z, a).dtype == np.float32


@settings(deadline=None, max_examples=50)
@given(
    rows=st.integers(1, 7),
    columns=st.integers(1, 9),
    seed=st.integers(0, 2**32 - 1),
    slope=st.sampled_from([0.01, 0.2, 0.3, -0.5, 0.0]),
    dtype=st.sampled_from([np.float64, np.float32]),
)
def test_masked_backwards_are_bit_identical_to_where(rows, columns, seed, slope, dtype):
    """The mask products give exactly the bits of the ``np.where`` they replaced, signs of 0
    included, on mixed-sign data with exact zeros in ``z`` and ``grad_a``."""
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((rows, columns)).astype(dtype)
    grad_a = rng.standard_normal((rows, columns)).astype(dtype)
    z[rng.random(z.shape) < 0.2] = 0.0
    grad_a[rng.random(grad_a.shape) < 0.2] = 0.0
    a = tbp.nn.relu_forward(z)

    def same_bits(actual, expected):
        assert actual.dtype == expected.dtype
        assert actual.tobytes() == expected.tobytes()

    same_bits(tbp.nn.relu_backward(grad_a, z, a), np.where(z > 0, grad_a, dtype(0.0)))
    same_bits(
        tbp.nn.leaky_relu_backward(grad_a, z, a, slope),
        np.where(z > 0, grad_a, slope * grad_a),
    )


# --- the layer on images and tokens: one family over " features *positions batch" ----------

# channels=2, a 1×3 image, batch 2
IMAGES = np.array(
    [[[[1.0, -2.0], [-0.5, 3.0], [0.0, -1.0]]], [[[-4.0, 2.0], [5.0, -0.25], [1.5, 0.0]]]]
)


def test_relu_on_images_by_hand():
    a, cache = tbp.nn.activation_forward(tbp.Activation("relu"), IMAGES)
    np.testing.assert_array_equal(a, np.maximum(IMAGES, 0.0))
    grad_a = np.arange(1.0, 13.0).reshape(IMAGES.shape)
    np.testing.assert_array_equal(tbp.nn.activation_backward(grad_a, cache), grad_a * (IMAGES > 0))


def test_softmax_normalizes_over_the_channels_of_each_pixel():
    a, _ = tbp.nn.activation_forward(tbp.Activation("softmax"), IMAGES)
    np.testing.assert_allclose(a.sum(axis=0), np.ones((1, 3, 2)), rtol=1e-15)
    # pixel (0, 0) of example 0: channels hold 1 and −4
    assert a[0, 0, 0, 0] == pytest.approx(1 / (1 + np.exp(-5.0)), rel=1e-15)


@pytest.mark.parametrize(
    "shape", [(3, 4, 5, 2), (3, 6, 2)], ids=["images (channels, height, width, batch)", "tokens"]
)
@pytest.mark.parametrize("name", ["sigmoid", "tanh", "leaky_relu", "identity", "softmax", "gelu"])
def test_beyond_a_matrix_it_is_the_activation_of_each_positions_column(shape, name, rng):
    z, grad_a = rng.standard_normal(shape), rng.standard_normal(shape)
    columns = (shape[0], int(np.prod(shape[1:])))
    layer = tbp.Activation(name, slope=0.2)
    a, cache = tbp.nn.activation_forward(layer, z)
    flat_a, flat_cache = tbp.nn.activation_forward(layer, z.reshape(columns))
    np.testing.assert_array_equal(a, flat_a.reshape(shape))
    np.testing.assert_array_equal(
        tbp.nn.activation_backward(grad_a, cache),
        tbp.nn.activation_backward(grad_a.reshape(columns), flat_cache).reshape(shape),
    )


def test_softmax_on_images_matches_torch_over_the_channels(rng):
    z, grad_a = rng.standard_normal((3, 4, 5, 2)), rng.standard_normal((3, 4, 5, 2))
    a, cache = tbp.nn.activation_forward(tbp.Activation("softmax"), z)
    z_torch = torch.tensor(z.transpose(3, 0, 1, 2), requires_grad=True)  # (batch, channels, ...)
    a_torch = F.softmax(z_torch, dim=1)
    a_torch.backward(torch.tensor(grad_a.transpose(3, 0, 1, 2)))
    assert_close(a, a_torch.detach().permute(1, 2, 3, 0))
    assert_close(tbp.nn.activation_backward(grad_a, cache), z_torch.grad.permute(1, 2, 3, 0))


def test_height_and_width_swapped_are_refused():
    _, cache = tbp.nn.activation_forward(tbp.Activation("relu"), np.ones((3, 4, 5, 2)))
    with pytest.raises(TypeCheckError, match=r"\*positions is \(5, 4\) here, but cache.z bound"):
        tbp.nn.activation_backward(np.ones((3, 5, 4, 2)), cache)
    with pytest.raises(ValueError, match="unknown activation 'swish'"):
        tbp.Activation("swish")  # type: ignore[arg-type]


def test_a_checkpoint_naming_the_old_image_activation_loads_as_an_activation(tmp_path, rng):
    from typedbackprop.checkpoint import save_network
    from typedbackprop.models import convnet

    layers = convnet(rng)
    states = tbp.initial_states(layers)
    path = tmp_path / "convnet.npz"
    save_network(path, layers, "cross_entropy", model="convnet", states=states)
    with np.load(path, allow_pickle=False) as archive:
        arrays = {name: archive[name] for name in archive.files}
    meta = json.loads(str(arrays["meta"]))
    images = [i for i, layer in enumerate(layers[:-1]) if isinstance(layer, tbp.Activation)]
    assert images, "the convnet has activations on images"
    for index in images:  # as a file written before the merge names them
        meta["layers"][index]["type"] = "Activation2d"
    arrays["meta"] = np.array(json.dumps(meta))
    np.savez(path, **arrays)
    checkpoint = tbp.read_checkpoint(path)
    assert [checkpoint.network[index] for index in images] == [tbp.Activation("relu")] * len(images)
    x, evaluation = rng.standard_normal((64, 3)), tbp.Mode(training=False)
    np.testing.assert_array_equal(
        tbp.network_forward(checkpoint.network, x, evaluation, checkpoint.states)[0],
        tbp.network_forward(layers, x, evaluation, states)[0],
    )
