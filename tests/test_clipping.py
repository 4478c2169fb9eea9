"""Tests for optimizers.clip_by_global_norm, and clipping as an option of training."""

import numpy as np
import pytest
import torch
from helpers import SEEDS, assert_close
from hypothesis import given, settings
from hypothesis import strategies as st

from typedbackprop import nn
from typedbackprop.nn.gate import Gate
from typedbackprop.nn.lstm import LSTM, LSTMCell
from typedbackprop.nn.tree import leaves, map_leaves
from typedbackprop.optimizers import AdamW, clip_by_global_norm, global_norm
from typedbackprop.training import train_network, train_steps


def some_grads(rng, hidden, features, out, scale, dtype=np.float64):
    """Gradients of a dense layer, an activation (none) and an LSTM whose cell holds 4 gates:
    every leaf of every layer, nested records included, counts in the norm."""

    def draw(*shape):
        return (scale * rng.standard_normal(shape)).astype(dtype)

    def gate():
        return Gate(draw(hidden, features), draw(hidden), draw(hidden, hidden), draw(hidden))

    return [
        nn.Dense(draw(out, features), draw(out)),
        None,
        LSTM(LSTMCell(gate(), gate(), gate(), gate())),
    ]


def flat(grads):
    return [value for grad in grads if grad is not None for value in leaves(grad).values()]


# --- by hand -------------------------------------------------------------------------------------


def test_clip_by_hand():
    # W = [[3]], b = [4]: ‖g‖ = 5; max_norm 1 scales by 1/5 to [[0.6]], [0.8] (norm 1).
    grads = [nn.Dense(np.array([[3.0]]), np.array([4.0]))]
    clipped, norm = clip_by_global_norm(grads, 1.0)
    assert norm == 5.0
    assert_close(clipped[0].W, [[0.6]], rtol=1e-15)
    assert_close(clipped[0].b, [0.8], rtol=1e-15)
    # the norm is over every layer together: a second layer's [12] makes it 13
    two = [*grads, None, nn.LayerNorm(np.array([12.0]), np.array([0.0]))]
    clipped, norm = clip_by_global_norm(two, 6.5)
    assert norm == 13.0
    assert_close(clipped[0].W, [[1.5]], rtol=1e-15)
    assert_close(clipped[2].gamma, [6.0], rtol=1e-15)
    assert clipped[1] is None


def test_within_the_norm_is_unchanged():
    grads = [nn.Dense(np.array([[3.0]]), np.array([4.0]))]
    for max_norm in (5.0, 7.0):  # at the norm exactly, and above it: the factor is 1
        clipped, norm = clip_by_global_norm(grads, max_norm)
        assert norm == 5.0
        assert clipped[0] is grads[0]


@given(SEEDS, st.sampled_from([1e-3, 1.0, 1e3]))
@settings(max_examples=15, deadline=None)
def test_against_torch_clip_grad_norm(seed, scale):
    rng = np.random.default_rng(seed)
    grads = some_grads(rng, hidden=3, features=5, out=2, scale=scale)
    norm_before = float(np.sqrt(sum(np.sum(g * g) for g in flat(grads))))
    for max_norm in (0.5 * norm_before, 2.0 * norm_before):  # clipped, and left alone
        tensors = [torch.zeros(g.shape, dtype=torch.float64) for g in flat(grads)]
        for tensor, g in zip(tensors, flat(grads), strict=True):
            tensor.grad = torch.tensor(g)
        torch_norm = torch.nn.utils.clip_grad_norm_(tensors, max_norm)
        clipped, norm = clip_by_global_norm(grads, max_norm, eps=1e-6)  # PyTorch's eps
        assert_close(norm, torch_norm)
        for ours, tensor in zip(flat(clipped), tensors, strict=True):
            assert_close(ours, tensor.grad)
        # eps = 0 (the default) is PyTorch's rule at the max_norm that makes its factor
        # max_norm / ‖g‖: max_norm' = max_norm (‖g‖ + 1e-6) / ‖g‖
        for tensor, g in zip(tensors, flat(grads), strict=True):
            tensor.grad = torch.tensor(g)
        torch.nn.utils.clip_grad_norm_(tensors, max_norm * (norm + 1e-6) / norm)
        clipped, _ = clip_by_global_norm(grads, max_norm)
        for ours, tensor in zip(flat(clipped), tensors, strict=True):
            assert_close(ours, tensor.grad)
        if max_norm < norm:
            assert_close(global_norm(clipped), max_norm, rtol=1e-14)


def test_float32_kept_and_inputs_not_modified():
    grads = some_grads(
        np.random.default_rng(0), hidden=3, features=5, out=2, scale=10.0, dtype=np.float32
    )
    before = [g.copy() for g in flat(grads)]
    clipped, _ = clip_by_global_norm(grads, 1.0)
    assert all(g.dtype == np.float32 for g in flat(clipped))
    for g, kept in zip(flat(grads), before, strict=True):
        np.testing.assert_array_equal(g, kept)
    assert type(clipped[2]) is LSTM and type(clipped[2].cell.forget_gate) is Gate


@pytest.mark.parametrize("max_norm", [0.0, -1.0, float("inf"), float("nan")])
def test_bad_max_norm_refused(max_norm):
    grads = [nn.Dense(np.array([[3.0]]), np.array([4.0]))]
    with pytest.raises(ValueError, match="max_norm"):
        clip_by_global_norm(grads, max_norm)


def test_no_parameters_norm_zero():
    clipped, norm = clip_by_global_norm([None, None], 1.0)
    assert norm == 0.0 and clipped == [None, None]


# --- as an option of training ----------------------------------------------------------------


def a_problem(seed):
    rng = np.random.default_rng(seed)
    layers = [
        nn.Dense(rng.standard_normal((4, 3)), rng.standard_normal(4)),
        nn.Activation("tanh"),
        nn.Dense(rng.standard_normal((2, 4)), rng.standard_normal(2)),
    ]
    x, y = 5.0 * rng.standard_normal((3, 7)), 5.0 * rng.standard_normal((2, 7))
    return layers, x, y


def test_train_steps_clips_before_the_step():
    # The optimizer is given the clipped gradient: with θ ← θ − g, θ moves by exactly it.
    layers, x, y = a_problem(1)

    class Plain:  # θ ← θ − g, to read the gradient the optimizer was given
        def init(self, layers):
            return None

        def step(self, layers, grads, state):
            return [
                layer if grad is None else map_leaves(lambda t, g: t - g, layer, grad)
                for layer, grad in zip(layers, grads, strict=True)
            ], state

    def run(clip):
        return train_steps(
            layers,
            "squared_error",
            x,
            y,
            steps=1,
            batch_size=7,
            rng=np.random.default_rng(3),
            optimizer=lambda step: Plain(),
            clip=clip,
        )[0]

    # batch_size 7 with replacement draws some examples twice: compute on the same batch
    batch = np.random.default_rng(3).integers(0, 7, size=7)
    _, grads = nn.network_loss_and_grads(layers, x[:, batch], y[:, batch], "squared_error")
    clipped, norm = clip_by_global_norm(grads, 0.1)
    assert norm > 0.1  # the clip acts
    trained = run(0.1)
    assert_close(layers[0].W - trained[0].W, clipped[0].W, rtol=1e-14)
    unclipped = run(None)
    assert_close(layers[0].W - unclipped[0].W, grads[0].W, rtol=1e-14)


def test_train_network_clips():
    layers, x, y = a_problem(2)
    kwargs = dict(epochs=1, batch_size=7, learning_rate=0.1, train_metrics=False)
    trained, _ = train_network(
        layers, "squared_error", x, y, rng=np.random.default_rng(0), clip=0.1, **kwargs
    )
    order = np.random.default_rng(0).permutation(7)
    _, grads = nn.network_loss_and_grads(layers, x[:, order], y[:, order], "squared_error")
    clipped, norm = clip_by_global_norm(grads, 0.1)
    assert norm > 0.1
    assert_close(layers[0].W - trained[0].W, 0.1 * clipped[0].W, rtol=1e-12)
    # off by default: the step is the plain gradient's
    plain, _ = train_network(layers, "squared_error", x, y, rng=np.random.default_rng(0), **kwargs)
    assert_close(layers[0].W - plain[0].W, 0.1 * grads[0].W, rtol=1e-12)


def test_training_refuses_a_bad_clip():
    layers, x, y = a_problem(3)
    with pytest.raises(ValueError, match="max_norm"):
        train_steps(
            layers,
            "squared_error",
            x,
            y,
            steps=1,
            batch_size=2,
            rng=np.random.default_rng(0),
            optimizer=lambda step: AdamW(),
            clip=0.0,
        )
