"""Tests for typedbackprop.nn.layernorm: normalization over the features of each position."""

import numpy as np
import pytest
import torch.nn.functional as F
from helpers import SEEDS, assert_close, assert_leaves_inputs_alone, raises_shape_error, vjp
from hypothesis import given, settings
from hypothesis import strategies as st
from jaxtyping import TypeCheckError
from sequence_helpers import distinct_sizes

import typedbackprop as tbp
from typedbackprop.nn.layernorm import (
    LayerNorm,
    LayerNormCache,
    layernorm_backward,
    layernorm_forward,
    layernorm_grads,
    layernorm_normalize,
    layernorm_statistics,
)


@st.composite
def normalizations(draw):
    """``(x, gamma, beta, grad_y, eps)``: x is ``features × positions``, every size different,
    with one or two position axes (a dense layer's ``batch``; a sequence's ``seq batch``).

    At least three features: over two, x̂ is ±1 whatever x is, ``∂L/∂x`` vanishes but for
    rounding noise (and ``eps``), and no relative comparison of it means anything; the case
    has its own test by hand."""
    positions = draw(st.integers(1, 2))
    sizes = draw(distinct_sizes(1 + positions, low=2))
    sizes.sort(key=lambda size: size == 2)  # 2 is never the number of features
    features, *position_sizes = sizes
    rng = np.random.default_rng(draw(SEEDS))
    shape = (features, *position_sizes)
    scale, offset = draw(st.sampled_from([(1.0, 0.0), (0.1, 3.0), (10.0, -50.0)]))
    return (
        rng.standard_normal(shape) * scale + offset,
        rng.standard_normal(features),
        rng.standard_normal(features),
        rng.standard_normal(shape),
        draw(st.sampled_from([1e-5, 1e-3])),
    )


def torch_layer_norm(x, gamma, beta, grad_y, eps):
    """``F.layer_norm`` normalizes the *last* axis: features move there and back."""
    return vjp(
        lambda x, gamma, beta: (
            F.layer_norm(x.movedim(0, -1), (x.shape[0],), gamma, beta, eps)
            .movedim(-1, 0)
            .contiguous()
        ),
        [x, gamma, beta],
        grad_y,
    )


def backward_in_forward_order(grad_y, x, gamma, beta, eps):
    grads, grad_x = layernorm_backward(grad_y, layernorm_forward(LayerNorm(gamma, beta, eps), x)[1])
    return grad_x, grads.gamma, grads.beta


# --- values by hand ---------------------------------------------------------------------------

# features=2, batch=2, eps=0. Column 0 is [1, 3]: μ = 2, σ² = 1, x̂ = [−1, 1]; column 1 is
# [4, 0]: μ = 2, σ² = 4, rstd = ½, x̂ = [1, −1].
X = np.array([[1.0, 4.0], [3.0, 0.0]])
GAIN = np.array([2.0, 3.0])
BIAS = np.array([10.0, 20.0])


def test_statistics_by_hand():
    mean, rstd = layernorm_statistics(X, 0.0)
    np.testing.assert_array_equal(mean, [2.0, 2.0])
    np.testing.assert_array_equal(rstd, [1.0, 0.5])


def test_forward_by_hand_scales_and_shifts_each_feature():
    y, cache = layernorm_forward(LayerNorm(GAIN, BIAS, eps=0.0), X)
    # y = γ x̂ + β: feature 0 is 2·[−1, 1] + 10, feature 1 is 3·[1, −1] + 20
    np.testing.assert_array_equal(y, [[8.0, 12.0], [23.0, 17.0]])
    np.testing.assert_array_equal(cache.mean, [2.0, 2.0])
    np.testing.assert_array_equal(cache.rstd, [1.0, 0.5])


def test_backward_by_hand_two_features_give_no_input_gradient():
    # With two features x̂ = ±1 whatever x is (with eps = 0): y does not depend on x at all, so
    # ∂L/∂x = 0. γ's gradient is Σ_p ∂L/∂y x̂, β's is Σ_p ∂L/∂y.
    grad_y = np.array([[1.0, 5.0], [3.0, 7.0]])
    _, cache = layernorm_forward(LayerNorm(GAIN, BIAS, eps=0.0), X)
    grads, grad_x = layernorm_backward(grad_y, cache)
    np.testing.assert_array_equal(grad_x, np.zeros((2, 2)))
    np.testing.assert_array_equal(grads.gamma, [1.0 * -1 + 5.0 * 1, 3.0 * 1 + 7.0 * -1])
    np.testing.assert_array_equal(grads.beta, [6.0, 10.0])
    assert grads.eps == 0.0


def test_backward_by_hand_three_features():
    # One column [0, 0, 3], eps = 0: μ = 1, σ² = 2, rstd = 1/√2, x̂ = [−1, −1, 2]/√2.
    # γ = 1, ∂L/∂y = g = [1, 0, 0]: mean(g) = 1/3, mean(g x̂) = −1/(3√2), so
    # ∂L/∂x = rstd (g − 1/3 − x̂ mean(g x̂)) = (1/√2) ([2/3, −1/3, −1/3] + [−1, −1, 2]/6)
    #       = (1/√2) [1/2, −1/2, 0].
    x = np.array([[0.0], [0.0], [3.0]])
    layer = LayerNorm(np.ones(3), np.zeros(3), eps=0.0)
    _, cache = layernorm_forward(layer, x)
    _, grad_x = layernorm_backward(np.array([[1.0], [0.0], [0.0]]), cache)
    assert_close(grad_x, np.array([[0.5], [-0.5], [0.0]]) / np.sqrt(2.0), rtol=1e-15)


def test_a_constant_column_is_mapped_to_the_beta_with_finite_gradients():
    x = np.full((3, 2), 7.0)
    layer = LayerNorm(np.array([1.0, 2.0, 3.0]), np.array([0.5, 0.25, 0.125]))
    y, cache = layernorm_forward(layer, x)
    np.testing.assert_array_equal(y, np.repeat(layer.beta[:, None], 2, axis=1))
    grads, grad_x = layernorm_backward(np.ones((3, 2)) * np.array([[1.0], [2.0], [-1.0]]), cache)
    assert np.isfinite(grad_x).all() and np.isfinite(grads.gamma).all()


# --- gradient checks --------------------------------------------------------------------------


@settings(deadline=None, max_examples=30)
@given(case=normalizations())
def test_layernorm_passes_gradcheck(case):
    x, gamma, beta, _, eps = case
    report = tbp.gradcheck(
        lambda x, gamma, beta: layernorm_forward(LayerNorm(gamma, beta, eps), x)[0],
        lambda grad_y, x, gamma, beta: backward_in_forward_order(grad_y, x, gamma, beta, eps),
        [x, gamma, beta],
    )
    assert report.passed, report


# --- against PyTorch --------------------------------------------------------------------------


@settings(deadline=None, max_examples=60)
@given(case=normalizations())
def test_layernorm_matches_torch(case):
    x, gamma, beta, grad_y, eps = case
    y, (grad_x, grad_gamma, grad_beta) = torch_layer_norm(x, gamma, beta, grad_y, eps)
    ours, cache = layernorm_forward(LayerNorm(gamma, beta, eps), x)
    assert_close(ours, y)
    grads, ours_grad_x = layernorm_backward(grad_y, cache)
    assert_close(ours_grad_x, grad_x)
    assert_close(grads.gamma, grad_gamma)
    assert_close(grads.beta, grad_beta)
    # the functions the family is made of, called directly
    mean, rstd = layernorm_statistics(x, eps)
    assert_close(layernorm_normalize(x, gamma, beta, mean, rstd), y)
    direct = layernorm_grads(grad_y, x, gamma, mean, rstd)
    for mine, theirs in zip(direct, (grad_x, grad_gamma, grad_beta), strict=True):
        assert_close(mine, theirs)


def test_a_single_column_is_refused_it_needs_a_batch_axis(rng):
    # x needs features, at least one position and batch: one column has only features.
    with pytest.raises(TypeCheckError, match=r"x\b.*features \*positions batch") as caught:
        layernorm_forward(LayerNorm(np.ones(4), np.zeros(4)), rng.standard_normal(4))
    assert "features=4" in str(caught.value)  # bound by the layer's gamma before x was checked


# --- wrong shapes -----------------------------------------------------------------------------

# features=4, seq=3, batch=5.
X_3 = np.linspace(-2.0, 2.0, 60).reshape(4, 3, 5) ** 2
LAYER_4 = LayerNorm(np.linspace(0.5, 2.0, 4), np.linspace(-1.0, 1.0, 4))
Y_3, CACHE_3 = layernorm_forward(LAYER_4, X_3)
GRAD_Y_3 = np.cos(np.arange(60.0)).reshape(4, 3, 5)


@pytest.mark.parametrize(
    ("call", "bound"),
    [
        pytest.param(
            lambda: layernorm_normalize(
                X_3, LAYER_4.gamma[:3], LAYER_4.beta, CACHE_3.mean, CACHE_3.rstd
            ),
            ["features=4"],
            id="gamma a feature short",
        ),
        pytest.param(
            lambda: layernorm_normalize(
                X_3, LAYER_4.gamma, LAYER_4.beta, CACHE_3.mean.T, CACHE_3.rstd
            ),
            ["features=4"],
            id="statistics of transposed positions",
        ),
        pytest.param(
            lambda: layernorm_grads(GRAD_Y_3.T, X_3, LAYER_4.gamma, CACHE_3.mean, CACHE_3.rstd),
            ["features=5", "batch=4"],  # grad_y (5, 3, 4) bound them; x (4, 3, 5) disagrees
            id="grads: gradient batch-first",
        ),
    ],
)
def test_wrong_shapes_raise_naming_the_dimension(call, bound):
    with raises_shape_error(*bound):
        call()


@pytest.mark.parametrize(
    ("grad_y", "message"),
    [
        pytest.param(
            GRAD_Y_3.transpose(0, 2, 1),
            "dimension batch is 3",
            id="seq and batch swapped",
        ),
        pytest.param(GRAD_Y_3[:3], "dimension features is 3", id="a feature short"),
        pytest.param(GRAD_Y_3[:, 0], r"'\*positions' is \(\)", id="a position axis short"),
    ],
)
def test_backward_refuses_a_gradient_not_shaped_like_the_input(grad_y, message):
    with pytest.raises(TypeCheckError, match="argument grad_y: .*" + message):
        layernorm_backward(grad_y, CACHE_3)


def test_a_gamma_and_beta_of_different_lengths_are_refused_when_the_record_is_built():
    with pytest.raises(
        TypeCheckError, match="beta: features is 4 here, but gamma bound features=3"
    ):
        LayerNorm(np.ones(3), np.zeros(4))


# --- purity and dtypes ------------------------------------------------------------------------


def test_no_layernorm_function_modifies_its_arguments():
    y = assert_leaves_inputs_alone(
        lambda x, gamma, beta: layernorm_forward(LayerNorm(gamma, beta), x)[0],
        X_3,
        LAYER_4.gamma,
        LAYER_4.beta,
    )
    assert_close(y, Y_3, rtol=1e-15)
    assert_leaves_inputs_alone(layernorm_statistics, X_3, 1e-5)
    assert_leaves_inputs_alone(
        layernorm_grads, GRAD_Y_3, X_3, LAYER_4.gamma, CACHE_3.mean, CACHE_3.rstd
    )
    assert_leaves_inputs_alone(
        lambda grad_y, x, gamma, beta, mean, rstd: layernorm_backward(
            grad_y, LayerNormCache(LayerNorm(gamma, beta), x, mean, rstd)
        ),
        GRAD_Y_3,
        X_3,
        LAYER_4.gamma,
        LAYER_4.beta,
        CACHE_3.mean,
        CACHE_3.rstd,
    )


def test_float32_in_float32_out():
    x, gamma, beta, grad_y = (
        value.astype(np.float32) for value in (X_3, LAYER_4.gamma, LAYER_4.beta, GRAD_Y_3)
    )
    y, cache = layernorm_forward(LayerNorm(gamma, beta), x)
    assert y.dtype == np.float32
    assert cache.mean.dtype == np.float32 and cache.rstd.dtype == np.float32
    grads, grad_x = layernorm_backward(grad_y, cache)
    assert grad_x.dtype == grads.gamma.dtype == grads.beta.dtype == np.float32
    assert_close(y, Y_3, rtol=1e-5)
