"""Tests for typedbackprop.losses."""

import numpy as np
import pytest
import torch
from helpers import assert_close
from hypothesis import given, settings
from hypothesis import strategies as st
from jaxtyping import TypeCheckError

import typedbackprop as tbp


def test_squared_error_by_hand():
    a = np.array([[1.0, 2.0], [3.0, 0.0]])
    y = np.array([[0.0, 2.0], [1.0, 1.0]])
    loss, grad = tbp.squared_error(a, y)
    # per example: ½(1 + 4) = 2.5 and ½(0 + 1) = 0.5; mean 1.5; grad (a − y)/2
    assert loss == 1.5 and isinstance(loss, float)
    np.testing.assert_array_equal(grad, [[0.5, 0.0], [1.0, -0.5]])


def test_binary_cross_entropy_by_hand():
    z = np.array([[0.0, np.log(3.0)]])
    y = np.array([[1.0, 0.0]])
    loss, grad = tbp.binary_cross_entropy(z, y)
    # σ(0) = ½: −log ½ = ln 2; σ(ln 3) = ¾ with y = 0: −log ¼ = ln 4; mean (ln 2 + ln 4)/2
    assert loss == pytest.approx(1.5 * np.log(2.0), rel=1e-15)
    np.testing.assert_allclose(grad, [[-0.25, 0.375]], rtol=1e-15)


def test_cross_entropy_by_hand():
    z = np.array([[0.0, 0.0], [np.log(3.0), 0.0]])  # column 0: probabilities ¼, ¾
    labels = np.array([1, 0])
    loss, grad = tbp.cross_entropy(z, labels)
    assert loss == pytest.approx((-np.log(0.75) + np.log(2.0)) / 2, rel=1e-15)
    np.testing.assert_allclose(grad, [[0.125, -0.25], [-0.125, 0.25]], rtol=1e-15)


def torch_losses(name, z, target):
    tensor = torch.tensor(z, requires_grad=True)
    batch = z.shape[1]
    if name == "squared_error":
        value = 0.5 * ((tensor - torch.tensor(target)) ** 2).sum() / batch
    elif name == "binary_cross_entropy":
        value = (
            torch.nn.functional.binary_cross_entropy_with_logits(
                tensor, torch.tensor(target), reduction="sum"
            )
            / batch
        )
    else:
        value = torch.nn.functional.cross_entropy(tensor.T, torch.tensor(target))
    value.backward()
    return value.item(), tensor.grad.numpy()


def targets_for(name, rng, classes, batch):
    if name == "cross_entropy":
        return rng.integers(0, classes, size=batch)
    if name == "binary_cross_entropy":
        return rng.random((classes, batch))
    return rng.standard_normal((classes, batch))


LOSSES = {
    "squared_error": tbp.squared_error,
    "binary_cross_entropy": tbp.binary_cross_entropy,
    "cross_entropy": tbp.cross_entropy,
}


@pytest.mark.parametrize("name", list(LOSSES))
@settings(deadline=None, max_examples=40)
@given(
    classes=st.integers(1, 6), batch=st.integers(1, 6), scale=st.sampled_from([0.1, 1.0, 30.0]),
    seed=st.integers(0, 2**32 - 1),
)  # fmt: skip
def test_against_torch(name, classes, batch, scale, seed):
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((classes, batch)) * scale
    target = targets_for(name, rng, classes, batch)
    loss, grad = LOSSES[name](z, target)
    expected_loss, expected_grad = torch_losses(name, z, target)
    assert loss == pytest.approx(expected_loss, rel=1e-10, abs=1e-300)
    assert_close(grad, expected_grad)


@pytest.mark.parametrize("name", list(LOSSES))
def test_gradient_check(name):
    rng = np.random.default_rng(2)
    z = rng.standard_normal((3, 4))
    target = targets_for(name, rng, 3, 4)
    loss = LOSSES[name]
    report = tbp.gradcheck(
        lambda z: loss(z, target)[0], lambda g, z: g * loss(z, target)[1], [z], names=["z"]
    )
    assert report.passed, str(report)


def test_the_mean_over_the_batch():
    # Duplicating every example leaves a mean unchanged: the 1/batch is there, once.
    rng = np.random.default_rng(0)
    z, y = rng.standard_normal((2, 3)), rng.random((2, 3))
    for name in ("squared_error", "binary_cross_entropy"):
        loss, grad = LOSSES[name](z, y)
        doubled, doubled_grad = LOSSES[name](np.hstack([z, z]), np.hstack([y, y]))
        assert doubled == pytest.approx(loss, rel=1e-14)
        np.testing.assert_allclose(doubled_grad[:, :3] * 2, grad, rtol=1e-14)


def test_binary_cross_entropy_needs_no_epsilon():
    loss, grad = tbp.binary_cross_entropy(np.array([[40.0, -40.0]]), np.array([[1.0, 0.0]]))
    # −log σ(40) = log(1 + e^−40) ≈ 4.25e-18 each: tiny, finite, not clipped to 1e-8
    assert loss == pytest.approx(4.248354255291589e-18, rel=1e-12)
    assert np.all(np.abs(grad) < 1e-17)


@pytest.mark.parametrize("bad", [-0.5, 1.5, np.nan])
def test_binary_targets_outside_zero_one(bad):
    y = np.array([[0.0, 1.0, bad]])
    with pytest.raises(ValueError, match=r"must lie in \[0, 1\]; y\[0, 2\] is"):
        tbp.binary_cross_entropy(np.zeros((1, 3)), y)


@pytest.mark.parametrize("label", [-1, 3])
def test_labels_outside_the_classes(label):
    with pytest.raises(ValueError, match=f"label {label} of example 1 is outside \\[0, 3\\)"):
        tbp.cross_entropy(np.zeros((3, 2)), np.array([0, label]))


@pytest.mark.parametrize(
    "call",
    [
        lambda: tbp.squared_error(np.ones((2, 3)), np.ones((3, 2))),
        lambda: tbp.binary_cross_entropy(np.ones((2, 3)), np.ones((2, 4))),
        lambda: tbp.cross_entropy(np.ones((2, 3)), np.zeros(4, dtype=np.int64)),
        lambda: tbp.cross_entropy(np.ones((2, 3)), np.zeros(3)),  # float labels
        lambda: tbp.squared_error(np.ones(3), np.ones(3)),
    ],
)
def test_wrong_shapes_and_types_are_refused(call):
    with pytest.raises(TypeCheckError):
        call()


@pytest.mark.parametrize("name", list(LOSSES))
def test_float32_in_float32_out_and_inputs_untouched(name):
    rng = np.random.default_rng(0)
    z = rng.standard_normal((3, 4)).astype(np.float32)
    target = targets_for(name, rng, 3, 4)
    if target.dtype == np.float64:
        target = target.astype(np.float32)
    saved = z.copy(), target.copy()
    z.flags.writeable = target.flags.writeable = False
    loss, grad = LOSSES[name](z, target)
    assert isinstance(loss, float) and grad.dtype == np.float32
    np.testing.assert_array_equal(z, saved[0])
    np.testing.assert_array_equal(target, saved[1])
