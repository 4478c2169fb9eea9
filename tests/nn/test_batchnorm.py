"""Tests for typedbackprop.nn.batchnorm: one family over "channels *spatial batch"."""

import json
import re
import tracemalloc

import numpy as np
import pytest
from helpers import SEEDS, assert_close, assert_leaves_inputs_alone
from hypothesis import given, settings
from hypothesis import strategies as st
from jaxtyping import Float, TypeCheckError
from torch_images import (
    torch_batch_norm_evaluation,
    torch_batch_norm_running,
    torch_batch_norm_training,
)

import typedbackprop as tbp
from typedbackprop import Array, checked
from typedbackprop.explain.batchnorm import batchnorm_backward_rows, batchnorm_forward_rows
from typedbackprop.explain.text import Names
from typedbackprop.nn.batchnorm import (
    BatchNorm,
    BatchNormCache,
    BatchNormState,
    batchnorm_backward,
    batchnorm_forward,
    batchnorm_forward_eval,
    batchnorm_grad_input,
    batchnorm_grad_params,
    batchnorm_initial_state,
    batchnorm_normalize,
    batchnorm_running_statistics,
    batchnorm_statistics,
    batchnorm_update_state,
)

FAMILY = (BatchNorm, BatchNormState, batchnorm_forward, batchnorm_forward_eval, batchnorm_backward)
KINDS = {"flat": FAMILY, "spatial": FAMILY}
"""One family over ``"channels *spatial batch"``: the kinds differ by the inputs drawn, a dense
layer's ``(channels, batch)`` or images ``(channels, height, width, batch)``."""
EPSILONS = st.sampled_from([1e-5, 1e-3, 0.1])


@st.composite
def flat_cases(draw):
    """``(layer, x, state, grad_y)`` over ``"features batch"``, ``features ≠ batch ≥ 2``."""
    features = draw(st.integers(1, 6))
    batch = draw(st.integers(2, 7).filter(lambda n: n != features))
    return _case(draw, BatchNorm, BatchNormState, features, (features, batch))


@st.composite
def spatial_cases(draw):
    """``(layer, x, state, grad_y)`` over ``"channels height width batch"``, distinct sizes.

    Height, width and batch differ from each other, so each channel has at least 1·2·3 = 6
    values: enough for training's batch statistics."""
    channels = draw(st.integers(1, 5))
    height = draw(st.integers(1, 5).filter(lambda h: h != channels))
    width = draw(st.integers(1, 5).filter(lambda w: w not in {channels, height}))
    batch = draw(st.integers(1, 5).filter(lambda n: n not in {channels, height, width}))
    return _case(draw, BatchNorm, BatchNormState, channels, (channels, height, width, batch))


def _case(draw, record, state_record, features, shape):
    rng = np.random.default_rng(draw(SEEDS))
    layer = record(
        rng.standard_normal(features),
        rng.standard_normal(features),
        eps=draw(EPSILONS),
        momentum=draw(st.sampled_from([0.1, 0.5, 1.0])),
    )
    # Features of different means and scales, as a layer's inputs have.
    offsets = rng.normal(0.0, 3.0, features)
    scales = rng.uniform(0.5, 3.0, features)
    broadcast = (slice(None),) + (np.newaxis,) * (len(shape) - 1)
    x = offsets[broadcast] + scales[broadcast] * rng.standard_normal(shape)
    state = state_record(rng.normal(0.0, 2.0, features), rng.uniform(0.5, 4.0, features))
    return layer, x, state, rng.standard_normal(shape)


def cancellation_allowance(layer, x, cache, grad_y) -> float:
    """The absolute error float64 allows in ∂L/∂x: 0 but for two values per feature.

    With two values, x̂ = ±s with s = d/√(d² + ε) (d half their difference), and the three terms
    cancel to ∂L/∂x_0 = γ (g_0 − g_1)/2 · (1 − s²) / √(d² + ε), where 1 − s² = ε/(d² + ε): for
    ε = 1e-5 and d ≈ 3, about 1e-6 of the terms γ g / √(σ² + ε). Computing 1 − s² from a rounded
    s costs a few units in the last place of 1, so either implementation gives ∂L/∂x only to an
    absolute accuracy of a few 1e-16 times the terms. Measured over 16,641 such cases: relative
    error up to 2.3e-8 of max|∂L/∂x| (87 of them above 1e-10), but never above 6.9e-16 of the
    terms; 1e-14 of the terms bounds it. With three or more values no such cancellation is
    forced, and 20,000 cases stayed under 3e-14 relative: no allowance.
    """
    if x[0].size != 2:
        return 0.0
    return 1e-14 * np.max(np.abs(layer.gamma)) * np.max(cache.rstd) * np.max(np.abs(grad_y))


def gradcheck_training(layer, x, kind):
    record, _, forward, _, backward = KINDS[kind]

    def rebuilt(gamma, beta):
        return record(gamma, beta, layer.eps, layer.momentum)

    def backward_in_order(grad_y, gamma, beta, x):
        grads, grad_x = backward(grad_y, forward(rebuilt(gamma, beta), x)[1])
        return grads.gamma, grads.beta, grad_x

    return tbp.gradcheck(
        lambda gamma, beta, x: forward(rebuilt(gamma, beta), x)[0],
        backward_in_order,
        [layer.gamma, layer.beta, x],
    )


# --- values by hand ---------------------------------------------------------------------------

# features=2, batch=4. Feature 0: mean 2, variance 1; feature 1: mean 10, variance 13. With
# eps = 3 the variances plus eps are 4 and 16, so 1/√(σ² + ε) is 1/2 and 1/4: exact in binary.
X = np.array([[1.0, 3.0, 1.0, 3.0], [5.0, 9.0, 11.0, 15.0]])
LAYER = BatchNorm(np.array([2.0, -1.0]), np.array([0.5, 1.0]), eps=3.0, momentum=0.5)
X_HAT = np.array([[-0.5, 0.5, -0.5, 0.5], [-1.25, -0.25, 0.25, 1.25]])
Y = np.array([[-0.5, 1.5, -0.5, 1.5], [2.25, 1.25, 0.75, -0.25]])  # γ x̂ + β
GRAD_Y = np.array([[1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 4.0]])


def test_statistics_and_normalization_by_hand():
    mean, var = batchnorm_statistics(X)
    np.testing.assert_array_equal(mean, [2.0, 10.0])
    np.testing.assert_array_equal(var, [1.0, 13.0])  # biased: divided by batch = 4
    x_hat, rstd = batchnorm_normalize(X, mean, var, 3.0)
    np.testing.assert_array_equal(rstd, [0.5, 0.25])
    np.testing.assert_array_equal(x_hat, X_HAT)


def test_training_forward_by_hand():
    y, cache = batchnorm_forward(LAYER, X)
    np.testing.assert_array_equal(y, Y)
    assert cache.batch_statistics
    np.testing.assert_array_equal(cache.mean, [2.0, 10.0])


def test_training_backward_by_hand_has_three_terms():
    _, cache = batchnorm_forward(LAYER, X)
    grads, grad_x = batchnorm_backward(GRAD_Y, cache)
    np.testing.assert_array_equal(grads.gamma, [-0.5, 5.0])  # Σ_b grad_y x̂: 1·(−½), 4·(5/4)
    np.testing.assert_array_equal(grads.beta, [1.0, 4.0])  # Σ_b grad_y
    assert (grads.eps, grads.momentum) == (3.0, 0.5)
    # Feature 0: g = γ grad_y = (2, 0, 0, 0), mean(g) = ½, mean(g x̂) = −¼:
    #   ½ ((2, 0, 0, 0) − ½ + ¼ x̂) = (11/16, −3/16, −5/16, −3/16).
    # Feature 1: g = (0, 0, 0, −4), mean(g) = −1, mean(g x̂) = −5/4:
    #   ¼ ((0, 0, 0, −4) + 1 + (5/4) x̂) = (−9/64, 11/64, 21/64, −23/64).
    expected = np.array([[11.0, -3.0, -5.0, -3.0], [-9 / 4, 11 / 4, 21 / 4, -23 / 4]]) / 16
    assert_close(grad_x, expected, rtol=1e-15)
    np.testing.assert_allclose(grad_x.sum(axis=1), 0.0, atol=1e-15)  # the mean's path
    # The same from the two functions backward is made of:
    np.testing.assert_array_equal(batchnorm_grad_params(GRAD_Y, X_HAT)[0], grads.gamma)
    np.testing.assert_array_equal(batchnorm_grad_params(GRAD_Y, X_HAT)[1], grads.beta)
    rstd = np.array([0.5, 0.25])
    assert_close(batchnorm_grad_input(GRAD_Y, X_HAT, LAYER.gamma, rstd), expected, rtol=1e-15)


def test_an_all_ones_upstream_gradient_gives_a_zero_input_gradient():
    # L = Σ y = batch Σ β does not depend on x: a test with all ones sees nothing of grad_x.
    _, cache = batchnorm_forward(LAYER, X)
    _, grad_x = batchnorm_backward(np.ones_like(X), cache)
    np.testing.assert_allclose(grad_x, 0.0, atol=1e-15)


def test_evaluation_by_hand_with_the_batch_statistics_as_running_ones():
    state = BatchNormState(np.array([2.0, 10.0]), np.array([1.0, 13.0]))
    y, cache = batchnorm_forward_eval(LAYER, X, state)
    np.testing.assert_array_equal(y, Y)  # the same normalization as training's...
    assert not cache.batch_statistics
    grads, grad_x = batchnorm_backward(GRAD_Y, cache)
    # ...but the statistics are constants now: ∂L/∂x = γ grad_y / √(σ² + ε), one term.
    np.testing.assert_array_equal(grad_x, [[1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, -1.0]])
    np.testing.assert_array_equal(grads.gamma, [-0.5, 5.0])
    np.testing.assert_array_equal(grads.beta, [1.0, 4.0])


def test_evaluation_normalizes_each_example_alone():
    state = BatchNormState(np.array([1.0, 2.0]), np.array([4.0, 0.25]))
    layer = BatchNorm(np.array([1.0, 2.0]), np.array([0.0, -1.0]), eps=1e-5)
    y, _ = batchnorm_forward_eval(layer, np.array([[3.0], [2.0]]), state)  # a batch of one
    assert_close(y, [[2.0 / np.sqrt(4.0 + 1e-5)], [-1.0]], rtol=1e-15)


def test_running_statistics_by_hand():
    state = batchnorm_initial_state(LAYER)
    np.testing.assert_array_equal(state.mean, [0.0, 0.0])
    np.testing.assert_array_equal(state.var, [1.0, 1.0])
    _, cache = batchnorm_forward(LAYER, X)
    new = batchnorm_update_state(state, cache)
    # momentum ½: mean ½·0 + ½·(2, 10); variance ½·1 + ½·(1, 13)·4/3, the unbiased variance
    np.testing.assert_array_equal(new.mean, [1.0, 5.0])
    assert_close(new.var, [7 / 6, 55 / 6], rtol=1e-15)
    np.testing.assert_array_equal(state.mean, [0.0, 0.0])  # a new record; the old one is kept
    mean, var = batchnorm_running_statistics(
        np.zeros(2), np.ones(2), np.array([2.0, 10.0]), np.array([1.0, 13.0]), 4, 0.5
    )
    np.testing.assert_array_equal(mean, new.mean)
    np.testing.assert_array_equal(var, new.var)


def test_an_evaluation_pass_leaves_the_state_alone():
    state = BatchNormState(np.array([2.0, 10.0]), np.array([1.0, 13.0]))
    _, cache = batchnorm_forward_eval(LAYER, X, state)
    assert batchnorm_update_state(state, cache) is state


def test_spatial_batch_norm_is_the_flat_one_on_the_pixels_of_each_channel(rng):
    # channels=3, height=4, width=5, batch=2: every pixel of every image is an "example".
    layer = BatchNorm(rng.standard_normal(3), rng.standard_normal(3), eps=0.1, momentum=0.3)
    flat_layer = BatchNorm(layer.gamma, layer.beta, eps=0.1, momentum=0.3)
    x, grad_y = rng.standard_normal((3, 4, 5, 2)), rng.standard_normal((3, 4, 5, 2))
    y, cache = batchnorm_forward(layer, x)
    flat_y, flat_cache = batchnorm_forward(flat_layer, x.reshape(3, 40))
    np.testing.assert_array_equal(y, flat_y.reshape(x.shape))
    grads, grad_x = batchnorm_backward(grad_y, cache)
    flat_grads, flat_grad_x = batchnorm_backward(grad_y.reshape(3, 40), flat_cache)
    np.testing.assert_array_equal(grad_x, flat_grad_x.reshape(x.shape))
    np.testing.assert_array_equal(grads.gamma, flat_grads.gamma)
    np.testing.assert_array_equal(grads.beta, flat_grads.beta)
    state = batchnorm_update_state(batchnorm_initial_state(layer), cache)
    flat_state = batchnorm_update_state(batchnorm_initial_state(flat_layer), flat_cache)
    np.testing.assert_array_equal(state.mean, flat_state.mean)
    np.testing.assert_array_equal(state.var, flat_state.var)  # count = 4·5·2 = 40 for both


# channels=3, height=4, width=1, batch=2: eight values per channel, written [height, batch].
# Channel 0: mean 2, variance 1. Channel 1: mean 10, deviations ±5, ±5, ±1, ±1, variance
# 104/8 = 13. Channel 2: mean −1, variance 1. With eps = 3: 1/√(σ² + ε) = ½, ¼, ½, exactly.
X_IMAGE = np.array(
    [
        [[1.0, 3.0], [3.0, 1.0], [1.0, 3.0], [3.0, 1.0]],
        [[5.0, 15.0], [9.0, 11.0], [15.0, 5.0], [11.0, 9.0]],
        [[0.0, -2.0], [-2.0, 0.0], [0.0, -2.0], [-2.0, 0.0]],
    ]
)[:, :, np.newaxis, :]
LAYER_IMAGES = BatchNorm(np.array([2.0, -1.0, 0.5]), np.array([0.5, 1.0, -1.0]), eps=3.0)
X_HAT_IMAGE = np.array(
    [
        [[-0.5, 0.5], [0.5, -0.5], [-0.5, 0.5], [0.5, -0.5]],
        [[-1.25, 1.25], [-0.25, 0.25], [1.25, -1.25], [0.25, -0.25]],
        [[0.5, -0.5], [-0.5, 0.5], [0.5, -0.5], [-0.5, 0.5]],
    ]
)[:, :, np.newaxis, :]
GRAD_Y_IMAGE = np.zeros((3, 4, 1, 2))
GRAD_Y_IMAGE[0, 0, 0, 0] = 1.0  # x̂ = −½
GRAD_Y_IMAGE[1, 3, 0, 1] = 4.0  # x̂ = −¼
GRAD_Y_IMAGE[2, 1, 0, 0] = 2.0  # x̂ = −½


def test_spatial_batch_norm_by_hand():
    y, cache = batchnorm_forward(LAYER_IMAGES, X_IMAGE)
    np.testing.assert_array_equal(cache.mean, [2.0, 10.0, -1.0])
    np.testing.assert_array_equal(cache.var, [1.0, 13.0, 1.0])
    np.testing.assert_array_equal(cache.rstd, [0.5, 0.25, 0.5])
    np.testing.assert_array_equal(cache.x_hat, X_HAT_IMAGE)
    # y = γ x̂ + β per channel: 2 x̂ + ½, 1 − x̂, ½ x̂ − 1.
    expected_y = np.stack([2 * X_HAT_IMAGE[0] + 0.5, 1 - X_HAT_IMAGE[1], X_HAT_IMAGE[2] / 2 - 1])
    np.testing.assert_array_equal(y, expected_y)
    grads, grad_x = batchnorm_backward(GRAD_Y_IMAGE, cache)
    np.testing.assert_array_equal(grads.beta, [1.0, 4.0, 2.0])  # Σ grad_y per channel
    np.testing.assert_array_equal(grads.gamma, [-0.5, -1.0, -1.0])  # Σ grad_y x̂: 1·(−½), ...
    # ∂L/∂x = γ/√(σ² + ε) (grad_y − mean(grad_y) − x̂ mean(grad_y x̂)), means over 8 values:
    #   channel 0: 1 · (grad_y − 1/8 + x̂/16): 27/32 at the gradient, −3/32 at x̂ = ½, −5/32 at −½;
    #   channel 1: −¼ (grad_y − ½ + x̂/8): 21/128 at x̂ = −5/4, 11/128 at 5/4, 17/128 at −¼,
    #     15/128 at ¼, and −¼ (4 − ½ − 1/32) = −111/128 at the gradient;
    #   channel 2: ¼ (grad_y − ¼ + x̂/8): 27/64 at the gradient, −3/64 at x̂ = ½, −5/64 at −½.
    expected = (
        np.array(
            [
                [[27, -3], [-3, -5], [-5, -3], [-3, -5]],
                [[21 / 4, 11 / 4], [17 / 4, 15 / 4], [11 / 4, 21 / 4], [15 / 4, -111 / 4]],
                [[-3, -5], [27, -3], [-3, -5], [-5, -3]],
            ]
        )[:, :, np.newaxis, :]
        / np.array([32.0, 32.0, 64.0])[:, None, None, None]
    )
    assert_close(grad_x, expected, rtol=1e-15)
    np.testing.assert_allclose(grad_x.sum(axis=(1, 2, 3)), 0.0, atol=1e-15)  # the mean's path


def explain_rows(cache) -> str:
    names = Names(2, "z1", "y2", "delta1", "grad_y2", first=False)
    rows = [
        *batchnorm_forward_rows(names, LAYER_IMAGES, cache, X_IMAGE),
        *batchnorm_backward_rows(names, LAYER_IMAGES, cache),
    ]
    for equation, _ in rows:  # every operand (a name ending in a number) shows its shape
        for name in re.findall(r"\b[A-Za-z_]+\d+", equation):
            assert re.search(rf"\b{name} \(\d", equation), f"{name} has no shape in {equation}"
    return "\n".join(equation for equation, _ in rows)


def test_explain_gives_every_operand_its_shape():
    text = explain_rows(batchnorm_forward(LAYER_IMAGES, X_IMAGE)[1])
    assert "x_hat2 (3, 4, 1, 2) = (z1 (3, 4, 1, 2) - mean2 (3,)) / sqrt(var2 (3,) + eps)" in text
    assert "y2 (3, 4, 1, 2) = gamma2 (3,) * x_hat2 (3, 4, 1, 2) + beta2 (3,)" in text
    # The three-term line is long: its operands' shapes follow it.
    assert "with gamma2 (3,), var2 (3,), grad_y2 (3, 4, 1, 2), x_hat2 (3, 4, 1, 2)" in text
    state = BatchNormState(np.zeros(3), np.ones(3))
    text = explain_rows(batchnorm_forward_eval(LAYER_IMAGES, X_IMAGE, state)[1])
    assert "delta1 (3, 4, 1, 2) = gamma2 (3,) / sqrt(var2 (3,) + eps) * grad_y2 (3, 4, 1, 2)" in (
        text
    )


# --- gradient checks --------------------------------------------------------------------------


@settings(deadline=None, max_examples=30)
@given(case=flat_cases())
def test_training_backward_passes_gradcheck(case):
    layer, x, _, _ = case
    assert gradcheck_training(layer, x, "flat").passed


@settings(deadline=None, max_examples=30)
@given(case=spatial_cases())
def test_spatial_training_backward_passes_gradcheck(case):
    layer, x, _, _ = case
    assert gradcheck_training(layer, x, "spatial").passed


@pytest.mark.parametrize("kind", KINDS)
@settings(deadline=None, max_examples=20)
@given(seed=SEEDS)
def test_evaluation_backward_passes_gradcheck(kind, seed):
    record, state_record, _, forward_eval, backward = KINDS[kind]
    rng = np.random.default_rng(seed)
    shape = (3, 4) if kind == "flat" else (3, 4, 2, 5)
    layer = record(rng.standard_normal(3), rng.standard_normal(3), eps=0.01)
    state = state_record(rng.standard_normal(3), rng.uniform(0.5, 2.0, 3))

    def rebuilt(gamma, beta):
        return record(gamma, beta, layer.eps, layer.momentum)

    def backward_in_order(grad_y, gamma, beta, x):
        grads, grad_x = backward(grad_y, forward_eval(rebuilt(gamma, beta), x, state)[1])
        return grads.gamma, grads.beta, grad_x

    report = tbp.gradcheck(
        lambda gamma, beta, x: forward_eval(rebuilt(gamma, beta), x, state)[0],
        backward_in_order,
        [layer.gamma, layer.beta, rng.standard_normal(shape)],
    )
    assert report.passed


# --- against PyTorch --------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
@settings(deadline=None, max_examples=60)
@given(data=st.data())
def test_training_matches_torch(kind, data):
    layer, x, state, grad_y = data.draw(flat_cases() if kind == "flat" else spatial_cases())
    _, _, forward, _, backward = KINDS[kind]
    y, (grad_gamma, grad_beta, grad_x) = torch_batch_norm_training(
        layer.gamma, layer.beta, x, grad_y, layer.eps
    )
    ours, cache = forward(layer, x)
    assert_close(ours, y)
    grads, ours_grad_x = backward(grad_y, cache)
    assert_close(grads.gamma, grad_gamma)
    assert_close(grads.beta, grad_beta)
    assert_close(ours_grad_x, grad_x, atol=cancellation_allowance(layer, x, cache, grad_y))
    update = batchnorm_update_state
    new = update(state, cache)
    mean, var = torch_batch_norm_running(x, state.mean, state.var, layer.momentum, layer.eps)
    assert_close(new.mean, mean)
    assert_close(new.var, var)


@pytest.mark.parametrize("kind", KINDS)
@settings(deadline=None, max_examples=40)
@given(data=st.data())
def test_evaluation_matches_torch(kind, data):
    layer, x, state, grad_y = data.draw(flat_cases() if kind == "flat" else spatial_cases())
    _, _, _, forward_eval, backward = KINDS[kind]
    y, (grad_gamma, grad_beta, grad_x) = torch_batch_norm_evaluation(
        layer.gamma, layer.beta, x, state.mean, state.var, grad_y, layer.eps
    )
    ours, cache = forward_eval(layer, x, state)
    assert_close(ours, y)
    grads, ours_grad_x = backward(grad_y, cache)
    assert_close(grads.gamma, grad_gamma)
    assert_close(grads.beta, grad_beta)
    assert_close(ours_grad_x, grad_x)


def test_many_training_steps_track_torchs_running_statistics(rng):
    layer = BatchNorm(np.ones(3), np.zeros(3), momentum=0.2)
    state = batchnorm_initial_state(layer)
    torch_mean, torch_var = state.mean, state.var
    for step in range(5):
        x = step + rng.standard_normal((3, 4, 5, 2)) * (1 + step)
        state = batchnorm_update_state(state, batchnorm_forward(layer, x)[1])
        torch_mean, torch_var = torch_batch_norm_running(x, torch_mean, torch_var, 0.2, 1e-5)
    assert_close(state.mean, torch_mean)
    assert_close(state.var, torch_var)


# --- refusals ---------------------------------------------------------------------------------


def shape_error(call) -> str:
    with pytest.raises(TypeCheckError) as caught:
        call()
    return str(caught.value)


# features=3, batch=5
GAMMA, BETA = np.ones(3), np.zeros(3)
X_FLAT = np.ones((3, 5)) + np.arange(5.0)
X_IMAGES = np.arange(3 * 4 * 6 * 5, dtype=float).reshape(3, 4, 6, 5)  # channels 3, 4×6, batch 5


@pytest.mark.parametrize(
    ("call", "fragments"),
    [
        pytest.param(
            lambda: batchnorm_forward(BatchNorm(GAMMA, BETA), X_FLAT.T),
            ["argument x", "channels is 5", "existing value of 3"],
            id="batch-first x",
        ),
        pytest.param(
            lambda: batchnorm_backward(
                np.ones((5, 3)), batchnorm_forward(BatchNorm(GAMMA, BETA), X_FLAT)[1]
            ),
            ["argument grad_y", "channels is 5", "existing value of 3"],
            id="transposed grad_y",
        ),
        pytest.param(
            lambda: batchnorm_forward_eval(
                BatchNorm(GAMMA, BETA), X_FLAT, BatchNormState(np.zeros(4), np.ones(4))
            ),
            ["argument state", "channels is 4", "existing value of 3"],
            id="running statistics of another layer",
        ),
        pytest.param(
            lambda: batchnorm_forward(BatchNorm(GAMMA, BETA), X_IMAGES.transpose(3, 0, 1, 2)),
            ["argument x", "channels is 5", "existing value of 3"],
            id="NCHW images",
        ),
        pytest.param(
            lambda: batchnorm_backward(
                X_IMAGES.transpose(0, 2, 1, 3),
                batchnorm_forward(BatchNorm(GAMMA, BETA), X_IMAGES)[1],
            ),
            ["argument grad_y", "*spatial is (6, 4) here, but cache.x_hat bound *spatial=(4, 6)"],
            id="grad_y with height and width transposed",
        ),
        pytest.param(
            lambda: batchnorm_forward_eval(
                BatchNorm(GAMMA, BETA), X_IMAGES, BatchNormState(np.zeros(2), np.ones(2))
            ),
            ["argument state", "channels is 2", "existing value of 3"],
            id="spatial: running statistics of another layer",
        ),
    ],
)
def test_wrong_shapes_raise_naming_the_dimension(call, fragments):
    message = shape_error(call)
    for fragment in fragments:
        assert fragment in message, message


def test_a_scale_and_shift_of_different_lengths_are_refused():
    message = shape_error(lambda: batchnorm_forward(BatchNorm(np.ones(3), np.zeros(4)), X_FLAT))
    assert "channels" in message


def test_a_backward_returning_a_transposed_gradient_is_refused_by_the_scope_of_its_cache():
    @checked
    def batchnorm_backward_transposed(
        grad_y: Float[Array, "features batch"], cache: BatchNormCache
    ) -> tuple[BatchNorm, Float[Array, "features batch"]]:
        grads, grad_x = batchnorm_backward(grad_y, cache)
        return grads, grad_x.T  # BUG

    _, cache = batchnorm_forward(BatchNorm(GAMMA, BETA), X_FLAT)
    message = shape_error(lambda: batchnorm_backward_transposed(np.ones((3, 5)), cache))
    assert "the result" in message and "features is 5" in message


@pytest.mark.parametrize(("eps", "momentum"), [(0.0, 0.1), (-1e-5, 0.1), (1e-5, -0.1), (1e-5, 1.5)])
def test_bad_settings_are_refused(eps, momentum):
    with pytest.raises(ValueError, match="eps must be positive and momentum in"):
        BatchNorm(GAMMA, BETA, eps=eps, momentum=momentum)


def test_training_on_one_value_per_feature_is_refused():
    with pytest.raises(ValueError, match="at least 2 values per feature, got 1"):
        batchnorm_forward(BatchNorm(GAMMA, BETA), np.ones((3, 1)))
    with pytest.raises(ValueError, match="at least 2 values per feature, got 1"):
        batchnorm_forward(BatchNorm(GAMMA, BETA), np.ones((3, 1, 1, 1)))
    batchnorm_forward(BatchNorm(GAMMA, BETA), np.arange(6.0).reshape(3, 1, 2, 1))


# --- state in a network -----------------------------------------------------------------------


def small_network(rng):
    return [
        tbp.Dense(rng.standard_normal((4, 3)), rng.standard_normal(4)),
        BatchNorm(rng.standard_normal(4), rng.standard_normal(4), momentum=0.25),
        tbp.Activation("relu"),
        tbp.Dense(rng.standard_normal((2, 4)), rng.standard_normal(2)),
        tbp.Activation("softmax"),
    ]


def test_the_state_is_kept_apart_from_the_parameters(rng):
    layers = small_network(rng)
    states = tbp.initial_states(layers)
    assert [type(state).__name__ for state in states] == [
        "NoneType",
        "BatchNormState",
        "NoneType",
        "NoneType",
        "NoneType",
    ]
    x, labels = rng.standard_normal((3, 6)), np.array([0, 1, 1, 0, 1, 0])
    _, grads = tbp.network_loss_and_grads(layers, x, labels, "cross_entropy", states=states)
    assert set(tbp.nn.families.parameters(grads[1])) == {"gamma", "beta"}  # no running stats


def test_training_updates_the_states_and_evaluation_reads_them(rng):
    layers = small_network(rng)
    states = tbp.initial_states(layers)
    first = states[1]
    x = rng.standard_normal((3, 6))
    training = tbp.Mode(training=True)
    _, caches = tbp.network_forward(layers, x, training, states)
    assert states[1] is not first  # replaced in the list...
    np.testing.assert_array_equal(first.mean, np.zeros(4))  # ...the old record untouched
    expected = batchnorm_update_state(first, caches[1])
    np.testing.assert_array_equal(states[1].mean, expected.mean)
    np.testing.assert_array_equal(states[1].var, expected.var)
    # Evaluation uses the running statistics, and changes nothing.
    kept = states[1]
    output, caches = tbp.network_forward(layers, x, tbp.Mode(), states)
    assert states[1] is kept and not caches[1].batch_statistics
    hidden = tbp.nn.dense_forward(layers[0], x)[0]
    np.testing.assert_array_equal(caches[1].mean, kept.mean)
    y, _ = batchnorm_forward_eval(layers[1], hidden, kept)
    np.testing.assert_array_equal(caches[2].z, y)


def test_evaluation_without_states_is_refused_and_training_without_them_works(rng):
    layers = small_network(rng)
    x = rng.standard_normal((3, 6))
    with pytest.raises(ValueError, match="BatchNorm in evaluation mode normalizes with its"):
        tbp.network_forward(layers, x, tbp.Mode())
    tbp.network_forward(layers, x, tbp.Mode(training=True))
    with pytest.raises(ValueError, match="5 layers but 4 states"):
        tbp.network_forward(layers, x, tbp.Mode(), [None] * 4)


def test_a_network_with_batch_norm_passes_the_gradient_check_in_training(rng):
    layers = small_network(rng)
    x, labels = rng.standard_normal((3, 6)), np.array([0, 1, 1, 0, 1, 0])
    gamma, beta = layers[1].gamma, layers[1].beta

    def with_parameters(gamma, beta):
        return [*layers[:1], BatchNorm(gamma, beta, momentum=0.25), *layers[2:]]

    def loss(gamma, beta):
        return tbp.network_loss_and_grads(with_parameters(gamma, beta), x, labels, "cross_entropy")[
            0
        ]

    def backward(_, gamma, beta):
        grads = tbp.network_loss_and_grads(
            with_parameters(gamma, beta), x, labels, "cross_entropy"
        )[1]
        return grads[1].gamma, grads[1].beta

    assert tbp.gradcheck(loss, backward, [gamma, beta]).passed


# --- purity and dtypes ------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_nothing_is_modified(kind, rng):
    record, state_record, forward, forward_eval, backward = KINDS[kind]
    shape = (3, 5) if kind == "flat" else (3, 4, 6, 5)
    layer = record(rng.standard_normal(3), rng.standard_normal(3))
    state = state_record(rng.standard_normal(3), rng.uniform(0.5, 2.0, 3))
    for array in (layer.gamma, layer.beta, state.mean, state.var):
        array.flags.writeable = False
    x, grad_y = rng.standard_normal(shape), rng.standard_normal(shape)
    _, cache = assert_leaves_inputs_alone(lambda x: forward(layer, x), x)
    assert_leaves_inputs_alone(lambda x: forward_eval(layer, x, state), x)
    for name in ("x_hat", "mean", "var", "rstd"):
        getattr(cache, name).flags.writeable = False
    assert_leaves_inputs_alone(lambda grad_y: backward(grad_y, cache), grad_y)
    update = batchnorm_update_state
    update(state, cache)


@pytest.mark.parametrize("kind", KINDS)
def test_float32_in_float32_out(kind, rng):
    record, state_record, forward, forward_eval, backward = KINDS[kind]
    shape = (3, 5) if kind == "flat" else (3, 4, 6, 5)
    f32 = np.float32
    layer = record(rng.standard_normal(3).astype(f32), rng.standard_normal(3).astype(f32))
    x, grad_y = rng.standard_normal(shape).astype(f32), rng.standard_normal(shape).astype(f32)
    initial = batchnorm_initial_state
    update = batchnorm_update_state
    state = initial(layer)
    for y, cache in (forward(layer, x), forward_eval(layer, x, state)):
        assert y.dtype == np.float32
        grads, grad_x = backward(grad_y, cache)
        assert grads.gamma.dtype == grads.beta.dtype == grad_x.dtype == np.float32
        new = update(state, cache)
        assert new.mean.dtype == new.var.dtype == np.float32


def test_a_checkpoint_naming_the_old_spatial_batch_norm_loads_as_a_batch_norm(tmp_path, rng):
    from typedbackprop.checkpoint import save_network
    from typedbackprop.models import convnet

    layers = convnet(rng)
    states = tbp.initial_states(layers)
    x = rng.standard_normal((64, 7))
    tbp.network_forward(layers, x, tbp.Mode(training=True), states)  # moves the statistics
    path = tmp_path / "convnet.npz"
    save_network(path, layers, "cross_entropy", model="convnet", states=states)
    with np.load(path, allow_pickle=False) as archive:
        arrays = {name: archive[name] for name in archive.files}
    meta = json.loads(str(arrays["meta"]))
    spatial = [i for i, layer in enumerate(layers) if isinstance(layer, BatchNorm)]
    assert spatial, "the convnet normalizes its images"
    for index in spatial:  # as a file written before the merge names them
        meta["layers"][index]["type"] = "BatchNorm2d"
        meta["states"][index]["type"] = "BatchNorm2dState"
    arrays["meta"] = np.array(json.dumps(meta))
    np.savez(path, **arrays)
    checkpoint = tbp.read_checkpoint(path)
    assert checkpoint.states is not None
    for index in spatial:
        assert type(checkpoint.network[index]) is BatchNorm
        assert type(checkpoint.states[index]) is BatchNormState
        np.testing.assert_array_equal(checkpoint.states[index].var, states[index].var)
    evaluation = tbp.Mode(training=False)
    np.testing.assert_array_equal(
        tbp.network_forward(checkpoint.network, x, evaluation, checkpoint.states)[0],
        tbp.network_forward(layers, x, evaluation, states)[0],
    )


def test_the_training_input_gradient_allocates_only_its_result(rng):
    # The three terms are built in the result itself: a temporary such as x̂ · ∂L/∂γ, as large
    # as the input, would be one more array to fault in on every step.
    grad_y, x_hat = rng.standard_normal((2, 24, 9000))
    gamma, rstd = rng.uniform(0.5, 1.5, (2, 24))
    batchnorm_grad_input(grad_y, x_hat, gamma, rstd)  # the checks' first call, not measured
    tracemalloc.start()
    try:
        batchnorm_grad_input(grad_y, x_hat, gamma, rstd)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert grad_y.nbytes <= peak < 1.25 * grad_y.nbytes  # 2 × with the temporary
