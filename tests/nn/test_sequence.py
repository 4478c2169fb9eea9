"""Tests for typedbackprop.nn.sequence and token_cross_entropy: a sequence model's last layers."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers import SEEDS, assert_close, assert_leaves_inputs_alone, vjp
from hypothesis import given, settings
from jaxtyping import TypeCheckError
from sequence_helpers import distinct_sizes

import typedbackprop as tbp
from typedbackprop.nn.sequence import (
    KeepLast,
    TokenDense,
    keep_last_backward,
    keep_last_forward,
    token_dense_backward,
    token_dense_forward,
)

# --- values by hand ---------------------------------------------------------------------------


def test_token_dense_by_hand():
    # out=1, inp=2: z = 2 x₀ − x₁ + 0.5 at each of seq=2 × batch=3 tokens.
    layer = TokenDense(np.array([[2.0, -1.0]]), np.array([0.5]))
    x = np.stack([np.arange(6.0).reshape(2, 3), np.ones((2, 3))])  # (inp=2, seq=2, batch=3)
    z, cache = token_dense_forward(layer, x)
    np.testing.assert_array_equal(z, (2.0 * x[0] - 1.0 + 0.5)[None])
    grads, grad_x = token_dense_backward(np.ones((1, 2, 3)), cache)
    np.testing.assert_array_equal(grads.W, [[15.0, 6.0]])  # Σ over the six tokens of x
    np.testing.assert_array_equal(grads.b, [6.0])
    np.testing.assert_array_equal(grad_x, np.broadcast_to([[[2.0]], [[-1.0]]], (2, 2, 3)))


def test_keep_last_by_hand():
    x = np.arange(24.0).reshape(2, 4, 3)  # features=2, seq=4, batch=3
    kept, cache = keep_last_forward(KeepLast(2), x)
    np.testing.assert_array_equal(kept, x[:, 2:, :])
    grad_x = keep_last_backward(np.ones((2, 2, 3)), cache)
    np.testing.assert_array_equal(grad_x[:, :2], np.zeros((2, 2, 3)))
    np.testing.assert_array_equal(grad_x[:, 2:], np.ones((2, 2, 3)))
    with pytest.raises(ValueError, match="last 5 tokens of a sequence of 4"):
        keep_last_forward(KeepLast(5), x)
    with pytest.raises(ValueError, match="at least one token"):
        KeepLast(0)


def test_token_cross_entropy_by_hand():
    # classes=2, seq=1, batch=2, logits 0: each token's loss is log 2, the mean too; the
    # gradient is (½ − [c = label]) / 2 tokens.
    loss, grad = tbp.nn.token_cross_entropy(np.zeros((2, 1, 2)), np.array([[0, 1]]))
    assert loss == pytest.approx(np.log(2.0), rel=1e-15)
    np.testing.assert_array_equal(grad[:, 0, :], [[-0.25, 0.25], [0.25, -0.25]])


def test_token_cross_entropy_refuses_a_label_naming_its_position():
    with pytest.raises(ValueError, match=r"label 3 at position \(seq=1, batch=0\) is outside"):
        tbp.nn.token_cross_entropy(np.zeros((3, 2, 2)), np.array([[0, 1], [3, 2]]))


# --- against PyTorch --------------------------------------------------------------------------


@settings(deadline=None, max_examples=40)
@given(sizes=distinct_sizes(4, low=2), seed=SEEDS)
def test_token_dense_and_the_loss_match_torch(sizes, seed):
    out, inp, seq, batch = sizes
    rng = np.random.default_rng(seed)
    W, b, x = (
        rng.standard_normal((out, inp)),
        rng.standard_normal(out),
        rng.standard_normal((inp, seq, batch)),
    )
    labels = rng.integers(0, out, size=(seq, batch))
    target = torch.tensor(labels.T, dtype=torch.int64)  # PyTorch: (batch, seq)

    def loss_of(W, b, x):
        logits = F.linear(x.permute(2, 1, 0), W, b)  # (batch, seq, out)
        return F.cross_entropy(logits.reshape(-1, out), target.reshape(-1))

    expected, (grad_W, grad_b, grad_x) = vjp(loss_of, [W, b, x], 1.0)
    z, cache = token_dense_forward(TokenDense(W, b), x)
    loss, grad_z = tbp.nn.token_cross_entropy(z, labels)
    assert_close(loss, expected)
    grads, ours_grad_x = token_dense_backward(grad_z, cache)
    assert_close(grads.W, grad_W)
    assert_close(grads.b, grad_b)
    assert_close(ours_grad_x, grad_x)


# --- wrong shapes, purity ---------------------------------------------------------------------


def test_wrong_shapes_are_refused_naming_the_dimension():
    z, cache = token_dense_forward(TokenDense(np.ones((5, 3)), np.zeros(5)), np.ones((3, 4, 2)))
    with pytest.raises(TypeCheckError, match="argument grad_z: .*dimension seq is 2"):
        token_dense_backward(z.transpose(0, 2, 1), cache)
    with pytest.raises(TypeCheckError, match="labels"):
        tbp.nn.token_cross_entropy(z, np.zeros((2, 4), dtype=np.int64))  # labels batch-first
    kept, keep_cache = keep_last_forward(KeepLast(3), np.ones((3, 4, 2)))
    with pytest.raises(TypeCheckError, match="argument grad_kept: .*dimension batch is 3"):
        keep_last_backward(kept.transpose(0, 2, 1), keep_cache)


def test_nothing_is_modified(rng):
    W, b, x = rng.standard_normal((5, 3)), rng.standard_normal(5), rng.standard_normal((3, 4, 2))
    z = assert_leaves_inputs_alone(
        lambda W, b, x: token_dense_forward(TokenDense(W, b), x)[0], W, b, x
    )
    labels = rng.integers(0, 5, size=(4, 2))
    assert_leaves_inputs_alone(tbp.nn.token_cross_entropy, z, labels)
    assert_leaves_inputs_alone(lambda x: keep_last_forward(KeepLast(2), x)[0], x)
