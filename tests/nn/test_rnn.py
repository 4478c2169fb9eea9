"""Tests for typedbackprop.nn.rnn: the tanh RNN cell, the sequence layer, and BPTT."""

import typing

import numpy as np
import pytest
from helpers import SEEDS, assert_close, assert_leaves_inputs_alone
from hypothesis import given, settings
from hypothesis import strategies as st
from jaxtyping import TypeCheckError
from sequence_helpers import distinct_sizes
from torch_recurrent import random_gate, torch_recurrent

import typedbackprop as tbp
from typedbackprop.nn.gate import Gate
from typedbackprop.nn.rnn import (
    RNN,
    RNNCell,
    rnn_backward,
    rnn_cell_backward,
    rnn_cell_forward,
    rnn_forward,
)


def cell_of(gate: Gate) -> RNNCell:
    return RNNCell(gate.W_ih, gate.b_ih, gate.W_hh, gate.b_hh)


def gate_of(cell: RNNCell) -> Gate:
    return Gate(cell.W_ih, cell.b_ih, cell.W_hh, cell.b_hh)


@st.composite
def sequences(draw):
    """``(cell, x, h0, grad_hidden_states, grad_last_state)`` with features, hidden, seq and
    batch all different, and random upstream gradients on every output."""
    features, hidden, seq, batch = draw(distinct_sizes(4))
    rng = np.random.default_rng(draw(SEEDS))
    scale = draw(st.sampled_from([0.3, 1.0]))
    return (
        cell_of(random_gate(rng, features, hidden, scale)),
        rng.standard_normal((features, seq, batch)),
        rng.standard_normal((hidden, batch)),
        rng.standard_normal((hidden, seq, batch)),
        rng.standard_normal((hidden, batch)),
    )


# --- values by hand: two steps, one unit ------------------------------------------------------

# features = hidden = batch = 1, seq = 2; W_ih = 0.5, W_hh = −1, b_ih = 0.25, b_hh = −0.25
# (the biases cancel), h_{−1} = 0, x = (1, 2).
HAND = RNNCell(np.array([[0.5]]), np.array([0.25]), np.array([[-1.0]]), np.array([-0.25]))
X_HAND = np.array([[[1.0], [2.0]]])


def test_two_steps_by_hand():
    hidden_states, cache = rnn_forward(RNN(HAND), X_HAND)
    h0 = np.tanh(0.5)  # z_0 = 0.5·1 + 0.25 − 0.25 + (−1)·0
    h1 = np.tanh(1.0 - h0)  # z_1 = 0.5·2 − h_0
    assert_close(hidden_states, [[[h0], [h1]]], rtol=1e-15)
    assert_close(cache.last_state, [[h1]], rtol=1e-15)
    # L = h_1 alone (∂L/∂h_0 = 0 from the output): δ_1 = 1 − h_1², and h_0 gets only what
    # step 1 carries back, δ_1 W_hh = −δ_1, so δ_0 = −δ_1 (1 − h_0²).
    grads, grad_x, grad_h_initial = rnn_backward(np.array([[[0.0], [1.0]]]), cache)
    delta_1 = 1.0 - h1**2
    delta_0 = -delta_1 * (1.0 - h0**2)
    assert_close(grads.cell.W_ih, [[delta_0 * 1.0 + delta_1 * 2.0]], rtol=1e-15)  # Σ_t δ_t x_t
    assert_close(grads.cell.W_hh, [[delta_0 * 0.0 + delta_1 * h0]], rtol=1e-15)  # Σ_t δ_t h_{t−1}
    assert_close(grads.cell.b_ih, [delta_0 + delta_1], rtol=1e-15)
    assert_close(grads.cell.b_hh, [delta_0 + delta_1], rtol=1e-15)
    assert_close(grad_x, [[[0.5 * delta_0], [0.5 * delta_1]]], rtol=1e-15)
    assert_close(grad_h_initial, [[-delta_0]], rtol=1e-15)


def test_the_weight_gradient_sums_the_steps_and_the_state_gradient_takes_both_paths(rng):
    # BPTT is the cell's backward run from the last step to the first: each step gets its
    # output's gradient plus what the next step carried back, and the weights' gradients add.
    cell = cell_of(random_gate(rng, 3, 4, 0.5))
    x, grad_hidden_states = rng.standard_normal((3, 5, 2)), rng.standard_normal((4, 5, 2))
    _, cache = rnn_forward(RNN(cell), x)
    grads, grad_x, _ = rnn_backward(grad_hidden_states, cache)
    carried, total = np.zeros((4, 2)), None
    for t in reversed(range(5)):
        step, step_grad_x, carried = rnn_cell_backward(
            grad_hidden_states[:, t] + carried, cache.steps[t]
        )
        assert_close(grad_x[:, t], step_grad_x, rtol=1e-15)
        total = step.W_hh if total is None else total + step.W_hh
    assert_close(grads.cell.W_hh, total, rtol=1e-14)


# --- gradient checks --------------------------------------------------------------------------


def test_the_cell_passes_check_layer():
    hints = typing.get_type_hints(RNNCell, include_extras=True)
    inputs = typing.get_type_hints(rnn_cell_forward, include_extras=True)
    annotations = [(name, hints[name]) for name in ("W_ih", "b_ih", "W_hh", "b_hh")]
    annotations += [("x", inputs["x"]), ("h", inputs["h"])]

    def forward(W_ih, b_ih, W_hh, b_hh, x, h):
        return rnn_cell_forward(RNNCell(W_ih, b_ih, W_hh, b_hh), x, h)[0]

    def backward(grad_h_new, W_ih, b_ih, W_hh, b_hh, x, h):
        _, cache = rnn_cell_forward(RNNCell(W_ih, b_ih, W_hh, b_hh), x, h)
        grads, grad_x, grad_h = rnn_cell_backward(grad_h_new, cache)
        return grads.W_ih, grads.b_ih, grads.W_hh, grads.b_hh, grad_x, grad_h

    report = tbp.check_layer(forward, backward, annotations=annotations)
    assert report.passed, str(report)
    assert report.gradients is not None and report.gradients.method == "full"


@settings(deadline=None, max_examples=15)
@given(case=sequences())
def test_the_sequence_layer_passes_gradcheck(case):
    cell, x, h0, _, _ = case

    def forward(W_ih, b_ih, W_hh, b_hh, x, h0):
        hidden_states, cache = rnn_forward(RNN(RNNCell(W_ih, b_ih, W_hh, b_hh)), x, h0)
        return hidden_states, cache.last_state

    def backward(grad_output, W_ih, b_ih, W_hh, b_hh, x, h0):
        _, cache = rnn_forward(RNN(RNNCell(W_ih, b_ih, W_hh, b_hh)), x, h0)
        grads, grad_x, grad_h0 = rnn_backward(grad_output[0], cache, grad_output[1])
        return grads.cell.W_ih, grads.cell.b_ih, grads.cell.W_hh, grads.cell.b_hh, grad_x, grad_h0

    tbp.gradcheck(forward, backward, [cell.W_ih, cell.b_ih, cell.W_hh, cell.b_hh, x, h0])


# --- against PyTorch --------------------------------------------------------------------------


@settings(deadline=None, max_examples=60)
@given(case=sequences())
def test_the_sequence_layer_matches_torch(case):
    cell, x, h0, grad_hidden_states, grad_last_state = case
    expected = torch_recurrent(
        "rnn", [gate_of(cell)], x, [h0], grad_hidden_states, [grad_last_state]
    )
    hidden_states, cache = rnn_forward(RNN(cell), x, h0)
    assert_close(hidden_states, expected.hidden_states)
    assert_close(cache.last_state, expected.last_state[0])
    grads, grad_x, grad_h0 = rnn_backward(grad_hidden_states, cache, grad_last_state)
    for name in ("W_ih", "b_ih", "W_hh", "b_hh"):
        assert_close(getattr(grads.cell, name), getattr(expected.gates[0], name))
    assert_close(grad_x, expected.grad_x)
    assert_close(grad_h0, expected.grad_initial_state[0])


@settings(deadline=None, max_examples=30)
@given(case=sequences(), truncate=st.integers(1, 4))
def test_truncated_bptt_matches_torch_detaching_the_state_every_k_steps(case, truncate):
    cell, x, h0, grad_hidden_states, grad_last_state = case
    expected = torch_recurrent(
        "rnn", [gate_of(cell)], x, [h0], grad_hidden_states, [grad_last_state], truncate
    )
    _, cache = rnn_forward(RNN(cell), x, h0)
    grads, grad_x, grad_h0 = rnn_backward(
        grad_hidden_states, cache, grad_last_state, truncate=truncate
    )
    for name in ("W_ih", "b_ih", "W_hh", "b_hh"):
        assert_close(getattr(grads.cell, name), getattr(expected.gates[0], name))
    assert_close(grad_x, expected.grad_x)
    assert_close(grad_h0, expected.grad_initial_state[0])


def test_truncation_cuts_the_carried_gradient_only(rng):
    cell = cell_of(random_gate(rng, 3, 4, 0.5))
    x, grad_hidden_states = rng.standard_normal((3, 6, 2)), rng.standard_normal((4, 6, 2))
    _, cache = rnn_forward(RNN(cell), x)
    _, full_x, _ = rnn_backward(grad_hidden_states, cache)
    _, cut_x, grad_h0 = rnn_backward(grad_hidden_states, cache, truncate=2)
    # the last chunk (steps 4 and 5) sees no difference; step 3 loses what steps 4, 5 sent it
    assert_close(cut_x[:, 4:], full_x[:, 4:], rtol=1e-15)
    assert not np.allclose(cut_x[:, 3], full_x[:, 3])
    with pytest.raises(ValueError, match="truncate must be a number of steps, at least 1; got 0"):
        rnn_backward(grad_hidden_states, cache, truncate=0)
    assert grad_h0.shape == (4, 2)


def test_each_steps_cache_is_the_cells_own(rng):
    # The layer runs the fused form (every step's input map one product before the loop); what
    # it saves at each step must still be what the cell's own forward saves.
    cell = cell_of(random_gate(rng, 3, 4, 0.5))
    x = rng.standard_normal((3, 5, 2))
    hidden_states, cache = rnn_forward(RNN(cell), x)
    h = cache.initial_state
    for t in range(5):
        h, expected = rnn_cell_forward(cell, x[:, t], h)
        for name in ("x", "h", "h_new"):
            assert_close(getattr(cache.steps[t], name), getattr(expected, name), rtol=1e-14)
        assert_close(hidden_states[:, t], h, rtol=1e-14)
    assert_close(cache.last_state, h, rtol=1e-14)


def test_a_sequence_of_no_steps_passes_the_state_through(rng):
    cell = cell_of(random_gate(rng, 3, 4, 0.5))
    h0, grad_last = rng.standard_normal((4, 2)), rng.standard_normal((4, 2))
    hidden_states, cache = rnn_forward(RNN(cell), np.zeros((3, 0, 2)), h0)
    assert hidden_states.shape == (4, 0, 2)
    np.testing.assert_array_equal(cache.last_state, h0)
    grads, grad_x, grad_h0 = rnn_backward(np.zeros((4, 0, 2)), cache, grad_last)
    np.testing.assert_array_equal(grad_h0, grad_last)
    assert grad_x.shape == (3, 0, 2) and not grads.cell.W_hh.any()


# --- wrong shapes -----------------------------------------------------------------------------

# features=3, hidden=4, seq=5, batch=2.
CELL = cell_of(random_gate(np.random.default_rng(7), 3, 4, 0.5))
X = np.linspace(-1.0, 1.0, 30).reshape(3, 5, 2)
HIDDEN_STATES, CACHE = rnn_forward(RNN(CELL), X)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        pytest.param(
            lambda: rnn_forward(RNN(CELL), X[:2]),
            "x: features is 2 here, but layer.cell.W_ih bound features=3",
            id="a feature short",
        ),
        pytest.param(
            lambda: rnn_cell_forward(CELL, X[:, 0].T, np.zeros((4, 3))),
            "x: features is 2 here, but cell.W_ih bound features=3",
            id="a step's input batch-first",
        ),
        pytest.param(
            lambda: rnn_forward(RNN(CELL), X, np.zeros((2, 4))),
            "initial_state: hidden is 2 here, the size of batch, "
            "but layer.cell.W_ih bound hidden=4",
            id="initial state transposed",
        ),
        pytest.param(
            lambda: rnn_backward(HIDDEN_STATES[:, :4], CACHE),
            "grad_hidden_states: seq is 4 here, the size of hidden, but cache.x bound seq=5",
            id="a step short",
        ),
        pytest.param(
            lambda: rnn_backward(HIDDEN_STATES, CACHE, np.zeros((4, 3))),
            "grad_last_state: batch is 3 here, the size of features, but cache.x bound batch=2",
            id="last state's gradient of another batch",
        ),
        pytest.param(
            lambda: rnn_cell_forward(
                RNNCell(CELL.W_ih, CELL.b_ih, CELL.W_hh[:, :3], CELL.b_hh),
                X[:, 0],
                np.zeros((4, 2)),
            ),
            "cell.W_hh: hidden is 3 here, the size of features, but cell.W_ih bound hidden=4",
            id="recurrent weights not square",
        ),
    ],
)
def test_wrong_shapes_raise_naming_the_dimension(call, message):
    with pytest.raises(TypeCheckError) as caught:
        call()
    assert str(caught.value).splitlines()[0] == message


# --- purity and dtypes ------------------------------------------------------------------------


def test_no_rnn_function_modifies_its_arguments(rng):
    h0, grad_hidden_states, grad_last = (
        rng.standard_normal((4, 2)),
        rng.standard_normal((4, 5, 2)),
        rng.standard_normal((4, 2)),
    )

    def run(W_ih, b_ih, W_hh, b_hh, x, h0, grad_hidden_states, grad_last):
        _, cache = rnn_forward(RNN(RNNCell(W_ih, b_ih, W_hh, b_hh)), x, h0)
        return rnn_backward(grad_hidden_states, cache, grad_last, truncate=2)

    arrays = (CELL.W_ih, CELL.b_ih, CELL.W_hh, CELL.b_hh, X, h0, grad_hidden_states, grad_last)
    assert_leaves_inputs_alone(run, *arrays)


def test_float32_in_float32_out():
    arrays = (CELL.W_ih, CELL.b_ih, CELL.W_hh, CELL.b_hh)
    cell32 = RNNCell(*(value.astype(np.float32) for value in arrays))
    hidden_states, cache = rnn_forward(RNN(cell32), X.astype(np.float32))
    assert hidden_states.dtype == cache.last_state.dtype == np.float32
    assert_close(hidden_states, HIDDEN_STATES, rtol=1e-6)
    grads, grad_x, grad_h0 = rnn_backward(hidden_states, cache)
    assert grad_x.dtype == grad_h0.dtype == np.float32
    assert all(
        value.dtype == np.float32
        for value in (grads.cell.W_ih, grads.cell.b_ih, grads.cell.W_hh, grads.cell.b_hh)
    )
