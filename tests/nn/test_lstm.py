"""Tests for typedbackprop.nn.lstm: the LSTM cell, the sequence layer, and BPTT."""

import typing

import numpy as np
import pytest
from helpers import SEEDS, assert_close, assert_leaves_inputs_alone
from hypothesis import given, settings
from hypothesis import strategies as st
from jaxtyping import TypeCheckError
from sequence_helpers import distinct_sizes, leaves, with_leaves
from torch_recurrent import random_gate, torch_recurrent

import typedbackprop as tbp
from typedbackprop.nn.gate import Gate
from typedbackprop.nn.lstm import (
    LSTM,
    LSTMCell,
    lstm_backward,
    lstm_cell_backward,
    lstm_cell_forward,
    lstm_forward,
)

GATES = ("input_gate", "forget_gate", "cell_gate", "output_gate")
"""PyTorch's order, ``i, f, g, o``: the rows of its stacked ``weight_ih_l0``."""


def random_cell(rng, features, hidden, scale):
    return LSTMCell(*(random_gate(rng, features, hidden, scale) for _ in GATES))


def gates_of(cell: LSTMCell) -> list[Gate]:
    return [getattr(cell, name) for name in GATES]


@st.composite
def sequences(draw, high=7):
    """``(cell, x, (h0, c0), grad_hidden_states, (grad_h_last, grad_c_last))``, features,
    hidden, seq and batch all different, random upstream gradients on every output."""
    features, hidden, seq, batch = draw(distinct_sizes(4, high=high))
    rng = np.random.default_rng(draw(SEEDS))
    scale = draw(st.sampled_from([0.3, 1.0]))
    return (
        random_cell(rng, features, hidden, scale),
        rng.standard_normal((features, seq, batch)),
        (rng.standard_normal((hidden, batch)), rng.standard_normal((hidden, batch))),
        rng.standard_normal((hidden, seq, batch)),
        (rng.standard_normal((hidden, batch)), rng.standard_normal((hidden, batch))),
    )


# --- values by hand: two steps, one unit, gates that do not depend on x or h ------------------


def constant_gate(pre_activation: float) -> Gate:
    """A one-unit gate with zero weights: its pre-activation is ``b_ih + b_hh`` whatever the
    input; the two biases split it unevenly, as nothing but their sum matters."""
    return Gate(np.zeros((1, 1)), np.array([pre_activation - 1.0]), np.zeros((1, 1)), np.ones(1))


# i = σ(0) = 1/2, f = σ(log 3) = 3/4, g = tanh(atanh(1/2)) = 1/2, o = σ(0) = 1/2.
HAND = LSTMCell(
    constant_gate(0.0),
    constant_gate(np.log(3.0)),
    constant_gate(np.arctanh(0.5)),
    constant_gate(0.0),
)


def test_two_steps_by_hand_the_cell_state_path():
    x = np.array([[[1.0], [2.0]]])  # features = hidden = batch = 1, seq = 2
    c_initial = np.array([[2.0]])
    hidden_states, cache = lstm_forward(LSTM(HAND), x, (np.zeros((1, 1)), c_initial))
    c0 = 0.75 * 2.0 + 0.5 * 0.5  # c' = f c + i g
    c1 = 0.75 * c0 + 0.5 * 0.5
    assert_close(hidden_states, [[[0.5 * np.tanh(c0)], [0.5 * np.tanh(c1)]]], rtol=1e-15)
    assert_close(cache.last_state[1], [[c1]], rtol=1e-15)
    # L = h_1: the gates are constants, so the only path back to c_{−1} is the cell state's,
    # ∂L/∂c_1 = o (1 − tanh² c_1), then × f at each step back: no weight, no squashing.
    grads, grad_x, (grad_h_initial, grad_c_initial) = lstm_backward(
        np.array([[[0.0], [1.0]]]), cache
    )
    grad_c1 = 0.5 * (1.0 - np.tanh(c1) ** 2)
    assert_close(grad_c_initial, [[grad_c1 * 0.75 * 0.75]], rtol=1e-15)
    np.testing.assert_array_equal(grad_h_initial, [[0.0]])  # W_hh = 0: h feeds nothing
    np.testing.assert_array_equal(grad_x, [[[0.0], [0.0]]])  # W_ih = 0
    # The forget gate's gradient at step t is ∂L/∂c_t ⊙ c_{t−1} (the previous cell state),
    # through σ' = f (1 − f) = 3/16, and its weight's gradient sums δ_f x over the two steps.
    delta_f1 = grad_c1 * c0 * 3 / 16
    delta_f0 = grad_c1 * 0.75 * 2.0 * 3 / 16
    forget = grads.cell.forget_gate
    assert_close(forget.W_ih, [[delta_f0 * 1.0 + delta_f1 * 2.0]], rtol=1e-15)
    assert_close(forget.b_ih, [delta_f0 + delta_f1], rtol=1e-15)
    assert_close(forget.b_hh, [delta_f0 + delta_f1], rtol=1e-15)
    # W_hh's gradient is Σ_t δ_t h_{t−1}: h_{−1} = 0 leaves step 1's, δ_f1 h_0.
    assert_close(forget.W_hh, [[delta_f1 * 0.5 * np.tanh(c0)]], rtol=1e-15)


def test_the_state_gradient_of_a_step_has_two_paths_and_the_cell_state_one(rng):
    cell = random_cell(rng, 3, 4, 0.5)
    x, grad_hidden_states = rng.standard_normal((3, 5, 2)), rng.standard_normal((4, 5, 2))
    _, cache = lstm_forward(LSTM(cell), x)
    grads, grad_x, _ = lstm_backward(grad_hidden_states, cache)
    grad_h, grad_c = np.zeros((4, 2)), np.zeros((4, 2))
    total = None
    for t in reversed(range(5)):
        step, step_grad_x, (grad_h, grad_c) = lstm_cell_backward(
            (grad_hidden_states[:, t] + grad_h, grad_c), cache.steps[t]
        )
        assert_close(grad_x[:, t], step_grad_x, rtol=1e-15)
        weight = step.forget_gate.W_hh
        total = weight if total is None else total + weight
    assert_close(grads.cell.forget_gate.W_hh, total, rtol=1e-14)


def test_each_steps_cache_is_the_cells_own(rng):
    # The layer runs the fused form (the gates stacked, every step's input map one product before
    # the loop); what it saves at each step must still be what the cell's own forward saves.
    cell = random_cell(rng, 3, 4, 0.5)
    x = rng.standard_normal((3, 5, 2))
    hidden_states, cache = lstm_forward(LSTM(cell), x)
    state = cache.initial_state
    for t in range(5):
        state, expected = lstm_cell_forward(cell, x[:, t], state)
        for name in ("x", "h", "c", "i", "f", "g", "o", "tanh_c_new"):
            assert_close(getattr(cache.steps[t], name), getattr(expected, name), rtol=1e-14)
        assert_close(hidden_states[:, t], state[0], rtol=1e-14)
    assert_close(cache.last_state[1], state[1], rtol=1e-14)


def test_a_sequence_of_no_steps_passes_the_state_through(rng):
    cell = random_cell(rng, 3, 4, 0.5)
    h0, c0 = rng.standard_normal((4, 2)), rng.standard_normal((4, 2))
    grad_last = (rng.standard_normal((4, 2)), rng.standard_normal((4, 2)))
    hidden_states, cache = lstm_forward(LSTM(cell), np.zeros((3, 0, 2)), (h0, c0))
    assert hidden_states.shape == (4, 0, 2)
    np.testing.assert_array_equal(cache.last_state[0], h0)
    np.testing.assert_array_equal(cache.last_state[1], c0)
    grads, grad_x, (grad_h0, grad_c0) = lstm_backward(np.zeros((4, 0, 2)), cache, grad_last)
    np.testing.assert_array_equal(grad_h0, grad_last[0])
    np.testing.assert_array_equal(grad_c0, grad_last[1])
    assert grad_x.shape == (3, 0, 2)
    for gate in gates_of(grads.cell):
        assert gate.W_ih.shape == (4, 3) and gate.W_hh.shape == (4, 4) and gate.b_ih.shape == (4,)
        assert not (gate.W_ih.any() or gate.W_hh.any() or gate.b_ih.any() or gate.b_hh.any())


# --- gradient checks --------------------------------------------------------------------------


def cell_annotations():
    gate_hints = typing.get_type_hints(Gate, include_extras=True)
    names = [path for path, _ in leaves(HAND)]
    inputs = typing.get_type_hints(lstm_cell_forward, include_extras=True)
    h_hint, c_hint = typing.get_args(inputs["state"])
    annotations = [(path, gate_hints[path.split(".")[-1]]) for path in names]
    return annotations + [("x", inputs["x"]), ("h", h_hint), ("c", c_hint)]


def test_the_cell_passes_check_layer():
    def forward(*arrays):
        *weights, x, h, c = arrays
        return lstm_cell_forward(with_leaves(HAND, weights), x, (h, c))[0]

    def backward(grad_new_state, *arrays):
        *weights, x, h, c = arrays
        _, cache = lstm_cell_forward(with_leaves(HAND, weights), x, (h, c))
        grads, grad_x, (grad_h, grad_c) = lstm_cell_backward(grad_new_state, cache)
        return (*(value for _, value in leaves(grads)), grad_x, grad_h, grad_c)

    report = tbp.check_layer(forward, backward, annotations=cell_annotations())
    assert report.passed, str(report)
    assert report.gradients is not None and report.gradients.method == "full"


@settings(deadline=None, max_examples=8)
@given(case=sequences(high=5))
def test_the_sequence_layer_passes_gradcheck(case):
    cell, x, (h0, c0), _, _ = case

    def forward(*arrays):
        *weights, x, h0, c0 = arrays
        hidden_states, cache = lstm_forward(LSTM(with_leaves(cell, weights)), x, (h0, c0))
        return (hidden_states, *cache.last_state)

    def backward(grad_output, *arrays):
        *weights, x, h0, c0 = arrays
        _, cache = lstm_forward(LSTM(with_leaves(cell, weights)), x, (h0, c0))
        grad_hidden_states, *grad_last_state = grad_output
        grads, grad_x, grad_initial = lstm_backward(
            grad_hidden_states, cache, tuple(grad_last_state)
        )
        return (*(value for _, value in leaves(grads.cell)), grad_x, *grad_initial)

    tbp.gradcheck(forward, backward, [value for _, value in leaves(cell)] + [x, h0, c0])


# --- against PyTorch --------------------------------------------------------------------------


def assert_gates_close(grads: LSTMCell, expected: list[Gate]) -> None:
    for name, theirs in zip(GATES, expected, strict=True):
        ours = getattr(grads, name)
        for field in ("W_ih", "b_ih", "W_hh", "b_hh"):
            assert_close(getattr(ours, field), getattr(theirs, field))


@settings(deadline=None, max_examples=60)
@given(case=sequences())
def test_the_sequence_layer_matches_torch(case):
    cell, x, initial_state, grad_hidden_states, grad_last_state = case
    expected = torch_recurrent(
        "lstm", gates_of(cell), x, initial_state, grad_hidden_states, grad_last_state
    )
    hidden_states, cache = lstm_forward(LSTM(cell), x, initial_state)
    assert_close(hidden_states, expected.hidden_states)
    assert_close(cache.last_state[0], expected.last_state[0])
    assert_close(cache.last_state[1], expected.last_state[1])
    grads, grad_x, grad_initial = lstm_backward(grad_hidden_states, cache, grad_last_state)
    assert_gates_close(grads.cell, expected.gates)
    assert_close(grad_x, expected.grad_x)
    assert_close(grad_initial[0], expected.grad_initial_state[0])
    assert_close(grad_initial[1], expected.grad_initial_state[1])


@settings(deadline=None, max_examples=30)
@given(case=sequences(), truncate=st.integers(1, 4))
def test_truncated_bptt_matches_torch_detaching_the_state_every_k_steps(case, truncate):
    cell, x, initial_state, grad_hidden_states, grad_last_state = case
    expected = torch_recurrent(
        "lstm", gates_of(cell), x, initial_state, grad_hidden_states, grad_last_state, truncate
    )
    _, cache = lstm_forward(LSTM(cell), x, initial_state)
    grads, grad_x, grad_initial = lstm_backward(
        grad_hidden_states, cache, grad_last_state, truncate=truncate
    )
    assert_gates_close(grads.cell, expected.gates)
    assert_close(grad_x, expected.grad_x)
    assert_close(grad_initial[0], expected.grad_initial_state[0])
    assert_close(grad_initial[1], expected.grad_initial_state[1])


def test_the_default_initial_state_is_zeros(rng):
    cell = random_cell(rng, 3, 4, 0.5)
    x = rng.standard_normal((3, 5, 2))
    default, _ = lstm_forward(LSTM(cell), x)
    zeros, _ = lstm_forward(LSTM(cell), x, (np.zeros((4, 2)), np.zeros((4, 2))))
    np.testing.assert_array_equal(default, zeros)
    with pytest.raises(ValueError, match="truncate must be a number of steps, at least 1"):
        lstm_backward(default, lstm_forward(LSTM(cell), x)[1], truncate=-1)


# --- wrong shapes -----------------------------------------------------------------------------

# features=3, hidden=4, seq=5, batch=2.
CELL = random_cell(np.random.default_rng(7), 3, 4, 0.5)
X = np.linspace(-1.0, 1.0, 30).reshape(3, 5, 2)
HIDDEN_STATES, CACHE = lstm_forward(LSTM(CELL), X)
ZEROS = np.zeros((4, 2))


@pytest.mark.parametrize(
    ("call", "message"),
    [
        pytest.param(
            lambda: lstm_forward(LSTM(CELL), X[:2]),
            "x: features is 2 here, but layer.cell.input_gate.W_ih bound features=3",
            id="a feature short",
        ),
        pytest.param(
            lambda: lstm_forward(LSTM(CELL), X, (ZEROS, np.zeros((4, 3)))),
            "initial_state[1]: batch is 3 here, the size of features, but x bound batch=2",
            id="cell state of another batch",
        ),
        pytest.param(
            lambda: lstm_backward(HIDDEN_STATES[:, :4], CACHE),
            "grad_hidden_states: seq is 4 here, the size of hidden, but cache.x bound seq=5",
            id="a step short",
        ),
        pytest.param(
            lambda: lstm_cell_backward((ZEROS, ZEROS[:3]), CACHE.steps[0]),
            "grad_new_state[1]: hidden is 3 here, the size of features, "
            "but cache.cell.input_gate.W_ih bound hidden=4",
            id="cell-state gradient a unit short",
        ),
    ],
)
def test_wrong_shapes_raise_naming_the_dimension(call, message):
    with pytest.raises(TypeCheckError) as caught:
        call()
    assert str(caught.value).splitlines()[0] == message


# --- purity and dtypes ------------------------------------------------------------------------


def test_no_lstm_function_modifies_its_arguments(rng):
    grad_hidden_states = rng.standard_normal((4, 5, 2))
    state, grad_last = rng.standard_normal((2, 4, 2)), rng.standard_normal((2, 4, 2))
    weights = [value for _, value in leaves(CELL)]

    def run(*arrays):
        *weights, x, h0, c0, grad_hidden_states, grad_h, grad_c = arrays
        _, cache = lstm_forward(LSTM(with_leaves(CELL, weights)), x, (h0, c0))
        return lstm_backward(grad_hidden_states, cache, (grad_h, grad_c), truncate=2)

    assert_leaves_inputs_alone(run, *weights, X, *state, grad_hidden_states, *grad_last)


def test_float32_in_float32_out():
    cell32 = with_leaves(CELL, [value.astype(np.float32) for _, value in leaves(CELL)])
    hidden_states, cache = lstm_forward(LSTM(cell32), X.astype(np.float32))
    assert hidden_states.dtype == np.float32
    assert cache.last_state[0].dtype == cache.last_state[1].dtype == np.float32
    assert_close(hidden_states, HIDDEN_STATES, rtol=1e-6)
    grads, grad_x, grad_initial = lstm_backward(hidden_states, cache)
    assert grad_x.dtype == grad_initial[0].dtype == grad_initial[1].dtype == np.float32
    assert all(value.dtype == np.float32 for _, value in leaves(grads))
