"""Tests for typedbackprop.nn.dropout: inverted dropout, its mask from the caller's generator."""

import numpy as np
import pytest
import torch
from helpers import SEEDS, assert_close, assert_leaves_inputs_alone, vjp
from hypothesis import given, settings
from hypothesis import strategies as st
from jaxtyping import Float, TypeCheckError

import typedbackprop as tbp
from typedbackprop import Array, Mode, checked
from typedbackprop.nn.dropout import (
    Dropout,
    DropoutCache,
    dropout_backward,
    dropout_forward,
    dropout_mask,
)

RATES = st.sampled_from([0.0, 0.1, 0.5, 0.9])


@st.composite
def dropouts(draw):
    """``(layer, x, grad_a, seed)``: ``"features batch"`` or image data, sizes distinct."""
    sizes = draw(st.lists(st.integers(1, 5), min_size=2, max_size=4, unique=True))
    rng = np.random.default_rng(draw(SEEDS))
    shape = tuple(sizes)
    return Dropout(draw(RATES)), rng.standard_normal(shape), rng.standard_normal(shape), draw(SEEDS)


def training(seed: int) -> Mode:
    """A training mode whose generator is seeded afresh: the same mask on every call."""
    return Mode(training=True, rng=np.random.default_rng(seed))


# --- values by hand ---------------------------------------------------------------------------

# np.random.default_rng(0).random((2, 3)) is
#   [[0.637, 0.270, 0.041], [0.017, 0.813, 0.913]]   (to three digits)
# With rate ¼ a value is kept where u ≥ ¼, and kept values are scaled by 1 / (1 − ¼) = 4/3.
X = np.array([[3.0, -6.0, 9.0], [1.5, 0.75, -3.0]])


def test_forward_by_hand():
    a, cache = dropout_forward(Dropout(0.25), X, training(0))
    assert cache.mask is not None
    assert_close(cache.mask, np.array([[1.0, 1.0, 0.0], [0.0, 1.0, 1.0]]) * 4 / 3, rtol=1e-15)
    assert_close(a, [[4.0, -8.0, 0.0], [0.0, 1.0, -4.0]], rtol=1e-15)


def test_backward_by_hand_uses_the_saved_mask():
    _, cache = dropout_forward(Dropout(0.25), X, training(0))
    grad_x = dropout_backward(np.array([[0.75, 1.5, 2.0], [-3.0, 3.0, -0.75]]), cache)
    assert_close(grad_x, [[1.0, 2.0, 0.0], [0.0, 4.0, -1.0]], rtol=1e-15)


def test_evaluation_is_the_identity():
    a, cache = dropout_forward(Dropout(0.25), X, Mode())
    assert a is X and cache.mask is None
    grad = np.array([[0.75, 1.5, 2.0], [-3.0, 3.0, -0.75]])
    assert dropout_backward(grad, cache) is grad


def test_rate_zero_keeps_everything_in_training():
    a, cache = dropout_forward(Dropout(0.0), X, training(3))
    np.testing.assert_array_equal(a, X)
    np.testing.assert_array_equal(cache.mask, np.ones_like(X))


def test_the_mask_keeps_one_minus_rate_of_the_values_and_the_mean(rng):
    x = np.ones((50, 400))
    a, cache = dropout_forward(Dropout(0.3), x, Mode(training=True, rng=rng))
    kept = np.mean(cache.mask > 0)
    assert abs(kept - 0.7) < 4 * np.sqrt(0.7 * 0.3 / x.size)  # four standard deviations
    assert set(np.unique(a)) == {0.0, 1 / 0.7}
    assert abs(a.mean() - 1.0) < 4 * np.sqrt(0.3 / 0.7 / x.size)


def test_a_shared_generator_draws_a_new_mask_each_call_and_a_seed_repeats_it(rng):
    layer, x = Dropout(0.5), np.ones((4, 30))
    mode = Mode(training=True, rng=rng)
    first, second = dropout_forward(layer, x, mode)[0], dropout_forward(layer, x, mode)[0]
    assert not np.array_equal(first, second)
    np.testing.assert_array_equal(
        dropout_forward(layer, x, training(9))[0], dropout_forward(layer, x, training(9))[0]
    )
    np.testing.assert_array_equal(
        dropout_mask(np.random.default_rng(9), x, 0.5), dropout_forward(layer, x, training(9))[0]
    )


# --- gradient checks --------------------------------------------------------------------------


@settings(deadline=None, max_examples=40)
@given(case=dropouts())
def test_training_backward_passes_gradcheck_with_the_mask_held_fixed(case):
    layer, x, _, seed = case
    report = tbp.gradcheck(
        lambda x: dropout_forward(layer, x, training(seed))[0],
        lambda grad_a, x: dropout_backward(grad_a, dropout_forward(layer, x, training(seed))[1]),
        [x],
        names=["x"],
    )
    assert report.passed


@settings(deadline=None, max_examples=20)
@given(case=dropouts())
def test_evaluation_backward_passes_gradcheck(case):
    layer, x, _, _ = case
    report = tbp.gradcheck(
        lambda x: dropout_forward(layer, x, Mode())[0],
        lambda grad_a, x: dropout_backward(grad_a, dropout_forward(layer, x, Mode())[1]),
        [x],
        names=["x"],
    )
    assert report.passed


# --- against PyTorch, with the same mask --------------------------------------------------------


@settings(deadline=None, max_examples=60)
@given(case=dropouts())
def test_training_matches_torch_with_the_same_mask(case):
    # PyTorch draws its own masks, so the comparison is with the formula x ⊙ m / (1 − rate)
    # computed and differentiated by PyTorch, for the 0/1 mask this forward pass kept.
    layer, x, grad_a, seed = case
    ours, cache = dropout_forward(layer, x, training(seed))
    assert cache.mask is not None
    kept = torch.tensor(cache.mask > 0, dtype=torch.float64)
    a, (grad_x,) = vjp(lambda x: x * kept / (1.0 - layer.rate), [x], grad_a)
    assert_close(ours, a)
    assert_close(dropout_backward(grad_a, cache), grad_x)


# --- refusals ---------------------------------------------------------------------------------


def test_training_without_a_generator_is_refused():
    with pytest.raises(ValueError, match="dropout in training draws its mask from mode.rng"):
        dropout_forward(Dropout(0.5), X, Mode(training=True))


@pytest.mark.parametrize("rate", [-0.1, 1.0, 1.5])
def test_a_rate_outside_zero_to_one_is_refused(rate):
    with pytest.raises(ValueError, match=r"the dropout rate must lie in \[0, 1\)"):
        Dropout(rate)


# features 3, 4×5 images, batch 6
IMAGES = np.ones((3, 4, 5, 6))


def shape_error(call) -> str:
    with pytest.raises(TypeCheckError) as caught:
        call()
    return str(caught.value)


@pytest.mark.parametrize("mode", [training(0), Mode()], ids=["training", "evaluation"])
@pytest.mark.parametrize(
    ("grad", "fragments"),
    [
        pytest.param(np.ones((3, 4, 5, 7)), ["batch is 7", "value of 6"], id="another batch"),
        pytest.param(np.ones((6, 5, 4, 3)), ["batch is 3", "value of 6"], id="transposed"),
        pytest.param(
            np.ones((3, 5, 4, 6)), ["'*features' is (3, 5, 4)", "(3, 4, 5)"], id="height, width"
        ),
        pytest.param(np.ones((12, 5, 6)), ["'*features' is (12, 5)"], id="flattened"),
    ],
)
def test_a_wrong_gradient_is_refused_naming_the_dimension(mode, grad, fragments):
    _, cache = dropout_forward(Dropout(0.5), IMAGES, mode)
    message = shape_error(lambda: dropout_backward(grad, cache))
    assert "argument grad_a" in message
    for fragment in fragments:
        assert fragment in message, message


@checked
def dropout_backward_transposed(
    grad_a: Float[Array, "*features batch"], cache: DropoutCache
) -> Float[Array, "*features batch"]:
    return dropout_backward(grad_a, cache).T  # BUG


def test_a_backward_returning_a_transposed_gradient_is_refused_by_the_scope_of_its_cache():
    _, cache = dropout_forward(Dropout(0.5), IMAGES, training(0))
    message = shape_error(lambda: dropout_backward_transposed(np.ones(IMAGES.shape), cache))
    assert "the result" in message and "batch is 3" in message


# --- purity and dtypes ------------------------------------------------------------------------


def test_nothing_is_modified(rng):
    x, grad_a = rng.standard_normal((3, 4, 5, 6)), rng.standard_normal((3, 4, 5, 6))
    for mode in (training(1), Mode()):
        _, cache = assert_leaves_inputs_alone(dropout_forward, Dropout(0.5), x, mode)
        if cache.mask is not None:
            cache.mask.flags.writeable = False
        assert_leaves_inputs_alone(dropout_backward, grad_a, cache)


@pytest.mark.parametrize("mode", [training(2), Mode()], ids=["training", "evaluation"])
def test_float32_in_float32_out(mode, rng):
    x = rng.standard_normal((3, 4, 5, 6)).astype(np.float32)
    a, cache = dropout_forward(Dropout(0.3), x, mode)
    assert a.dtype == np.float32
    assert cache.mask is None or cache.mask.dtype == np.float32
    grad_a = rng.standard_normal(x.shape).astype(np.float32)
    assert dropout_backward(grad_a, cache).dtype == np.float32
