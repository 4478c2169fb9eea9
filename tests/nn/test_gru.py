"""Tests for typedbackprop.nn.gru: the GRU cell, the sequence layer, and BPTT."""

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
from typedbackprop.nn.gru import (
    GRU,
    GRUCell,
    gru_backward,
    gru_cell_backward,
    gru_cell_forward,
    gru_forward,
)

GATES = ("reset_gate", "update_gate", "new_gate")
"""PyTorch's order, ``r, z, n``: the rows of its stacked ``weight_ih_l0``."""


def random_cell(rng, features, hidden, scale):
    return GRUCell(*(random_gate(rng, features, hidden, scale) for _ in GATES))


def gates_of(cell: GRUCell) -> list[Gate]:
    return [getattr(cell, name) for name in GATES]


@st.composite
def sequences(draw, high=7):
    """``(cell, x, h0, grad_hidden_states, grad_last_state)``, features, hidden, seq and batch
    all different, random upstream gradients on every output."""
    features, hidden, seq, batch = draw(distinct_sizes(4, high=high))
    rng = np.random.default_rng(draw(SEEDS))
    scale = draw(st.sampled_from([0.3, 1.0]))
    return (
        random_cell(rng, features, hidden, scale),
        rng.standard_normal((features, seq, batch)),
        rng.standard_normal((hidden, batch)),
        rng.standard_normal((hidden, seq, batch)),
        rng.standard_normal((hidden, batch)),
    )


# --- values by hand: two steps, one unit, gates that do not depend on x or h ------------------

# r = σ(0) = 1/2 and z = σ(log 3) = 3/4 (weights zero, the biases split the pre-activation);
# n = tanh(b_in + r b_hn) = tanh(0.25 + 0.5·0.5) = tanh(1/2): b_hn sits inside r's product.
HAND = GRUCell(
    Gate(np.zeros((1, 1)), np.array([-1.0]), np.zeros((1, 1)), np.array([1.0])),
    Gate(np.zeros((1, 1)), np.array([np.log(3.0) - 1.0]), np.zeros((1, 1)), np.array([1.0])),
    Gate(np.zeros((1, 1)), np.array([0.25]), np.zeros((1, 1)), np.array([0.5])),
)


def test_two_steps_by_hand_the_update_gate_path():
    x = np.array([[[1.0], [2.0]]])  # features = hidden = batch = 1, seq = 2
    n = np.tanh(0.5)
    hidden_states, cache = gru_forward(GRU(HAND), x, np.array([[2.0]]))
    h0 = 0.25 * n + 0.75 * 2.0  # h' = (1 − z) n + z h
    h1 = 0.25 * n + 0.75 * h0
    assert_close(hidden_states, [[[h0], [h1]]], rtol=1e-15)
    assert_close(cache.last_state, [[h1]], rtol=1e-15)
    # L = h_1. n does not depend on h (W_hn = 0), so the state's gradient goes back through
    # z ⊙ h alone: × 3/4 per step.
    grads, grad_x, grad_h_initial = gru_backward(np.array([[[0.0], [1.0]]]), cache)
    assert_close(grad_h_initial, [[0.75 * 0.75]], rtol=1e-15)
    np.testing.assert_array_equal(grad_x, [[[0.0], [0.0]]])  # W_ih = 0
    # δ_n = ∂L/∂h_t (1 − z)(1 − n²), with ∂L/∂h_1 = 1 and ∂L/∂h_0 = 3/4. b_in gets Σ_t δ_n;
    # b_hn gets Σ_t δ_n r, half of it: the two biases of n are different parameters.
    delta_n = (1.0 + 0.75) * 0.25 * (1.0 - n**2)
    assert_close(grads.cell.new_gate.b_ih, [delta_n], rtol=1e-15)
    assert_close(grads.cell.new_gate.b_hh, [0.5 * delta_n], rtol=1e-15)
    # The update gate: ∂L/∂z_t = ∂L/∂h_t (h_{t−1} − n), through σ' = z (1 − z) = 3/16.
    delta_z = (1.0 * (h0 - n) + 0.75 * (2.0 - n)) * 3 / 16
    assert_close(grads.cell.update_gate.b_ih, [delta_z], rtol=1e-15)
    delta_z0, delta_z1 = 0.75 * (2.0 - n) * 3 / 16, (h0 - n) * 3 / 16
    assert_close(grads.cell.update_gate.W_ih, [[delta_z0 * 1.0 + delta_z1 * 2.0]], rtol=1e-15)
    # The reset gate: ∂L/∂r = δ_n (W_hn h + b_hn) = δ_n · 0.5, through σ' = 1/4.
    assert_close(grads.cell.reset_gate.b_hh, [delta_n * 0.5 * 0.25], rtol=1e-15)


def test_the_weight_gradient_sums_the_steps(rng):
    cell = random_cell(rng, 3, 4, 0.5)
    x, grad_hidden_states = rng.standard_normal((3, 5, 2)), rng.standard_normal((4, 5, 2))
    _, cache = gru_forward(GRU(cell), x)
    grads, grad_x, _ = gru_backward(grad_hidden_states, cache)
    carried, total = np.zeros((4, 2)), None
    for t in reversed(range(5)):
        step, step_grad_x, carried = gru_cell_backward(
            grad_hidden_states[:, t] + carried, cache.steps[t]
        )
        assert_close(grad_x[:, t], step_grad_x, rtol=1e-15)
        weight = step.new_gate.W_hh
        total = weight if total is None else total + weight
    assert_close(grads.cell.new_gate.W_hh, total, rtol=1e-14)


def test_each_steps_cache_is_the_cells_own(rng):
    # The layer runs the fused form (the gates stacked, every step's input map one product before
    # the loop); what it saves at each step must still be what the cell's own forward saves.
    cell = random_cell(rng, 3, 4, 0.5)
    x = rng.standard_normal((3, 5, 2))
    hidden_states, cache = gru_forward(GRU(cell), x)
    h = cache.initial_state
    for t in range(5):
        h, expected = gru_cell_forward(cell, x[:, t], h)
        for name in ("x", "h", "r", "z", "n", "hidden_part_n"):
            assert_close(getattr(cache.steps[t], name), getattr(expected, name), rtol=1e-14)
        assert_close(hidden_states[:, t], h, rtol=1e-14)
    assert_close(cache.last_state, h, rtol=1e-14)


def test_a_sequence_of_no_steps_passes_the_state_through(rng):
    cell = random_cell(rng, 3, 4, 0.5)
    h0, grad_last = rng.standard_normal((4, 2)), rng.standard_normal((4, 2))
    hidden_states, cache = gru_forward(GRU(cell), np.zeros((3, 0, 2)), h0)
    assert hidden_states.shape == (4, 0, 2)
    np.testing.assert_array_equal(cache.last_state, h0)
    grads, grad_x, grad_h0 = gru_backward(np.zeros((4, 0, 2)), cache, grad_last)
    np.testing.assert_array_equal(grad_h0, grad_last)
    assert grad_x.shape == (3, 0, 2)
    for gate in gates_of(grads.cell):
        assert gate.W_ih.shape == (4, 3) and gate.W_hh.shape == (4, 4) and gate.b_ih.shape == (4,)
        assert not (gate.W_ih.any() or gate.W_hh.any() or gate.b_ih.any() or gate.b_hh.any())


# --- gradient checks --------------------------------------------------------------------------


def cell_annotations():
    gate_hints = typing.get_type_hints(Gate, include_extras=True)
    inputs = typing.get_type_hints(gru_cell_forward, include_extras=True)
    annotations = [(path, gate_hints[path.split(".")[-1]]) for path, _ in leaves(HAND)]
    return annotations + [("x", inputs["x"]), ("h", inputs["h"])]


def test_the_cell_passes_check_layer():
    def forward(*arrays):
        *weights, x, h = arrays
        return gru_cell_forward(with_leaves(HAND, weights), x, h)[0]

    def backward(grad_h_new, *arrays):
        *weights, x, h = arrays
        _, cache = gru_cell_forward(with_leaves(HAND, weights), x, h)
        grads, grad_x, grad_h = gru_cell_backward(grad_h_new, cache)
        return (*(value for _, value in leaves(grads)), grad_x, grad_h)

    report = tbp.check_layer(forward, backward, annotations=cell_annotations())
    assert report.passed, str(report)
    assert report.gradients is not None and report.gradients.method == "full"


@settings(deadline=None, max_examples=8)
@given(case=sequences(high=5))
def test_the_sequence_layer_passes_gradcheck(case):
    cell, x, h0, _, _ = case

    def forward(*arrays):
        *weights, x, h0 = arrays
        hidden_states, cache = gru_forward(GRU(with_leaves(cell, weights)), x, h0)
        return hidden_states, cache.last_state

    def backward(grad_output, *arrays):
        *weights, x, h0 = arrays
        _, cache = gru_forward(GRU(with_leaves(cell, weights)), x, h0)
        grads, grad_x, grad_h0 = gru_backward(grad_output[0], cache, grad_output[1])
        return (*(value for _, value in leaves(grads.cell)), grad_x, grad_h0)

    tbp.gradcheck(forward, backward, [value for _, value in leaves(cell)] + [x, h0])


# --- against PyTorch --------------------------------------------------------------------------


def assert_gates_close(grads: GRUCell, expected: list[Gate]) -> None:
    for name, theirs in zip(GATES, expected, strict=True):
        ours = getattr(grads, name)
        for field in ("W_ih", "b_ih", "W_hh", "b_hh"):
            assert_close(getattr(ours, field), getattr(theirs, field))


@settings(deadline=None, max_examples=60)
@given(case=sequences())
def test_the_sequence_layer_matches_torch(case):
    cell, x, h0, grad_hidden_states, grad_last_state = case
    expected = torch_recurrent(
        "gru", gates_of(cell), x, [h0], grad_hidden_states, [grad_last_state]
    )
    hidden_states, cache = gru_forward(GRU(cell), x, h0)
    assert_close(hidden_states, expected.hidden_states)
    assert_close(cache.last_state, expected.last_state[0])
    grads, grad_x, grad_h0 = gru_backward(grad_hidden_states, cache, grad_last_state)
    assert_gates_close(grads.cell, expected.gates)
    assert_close(grad_x, expected.grad_x)
    assert_close(grad_h0, expected.grad_initial_state[0])


@settings(deadline=None, max_examples=30)
@given(case=sequences(), truncate=st.integers(1, 4))
def test_truncated_bptt_matches_torch_detaching_the_state_every_k_steps(case, truncate):
    cell, x, h0, grad_hidden_states, grad_last_state = case
    expected = torch_recurrent(
        "gru", gates_of(cell), x, [h0], grad_hidden_states, [grad_last_state], truncate
    )
    _, cache = gru_forward(GRU(cell), x, h0)
    grads, grad_x, grad_h0 = gru_backward(
        grad_hidden_states, cache, grad_last_state, truncate=truncate
    )
    assert_gates_close(grads.cell, expected.gates)
    assert_close(grad_x, expected.grad_x)
    assert_close(grad_h0, expected.grad_initial_state[0])


def test_swapping_z_and_one_minus_z_is_a_different_layer(rng):
    # Same shapes, other numbers: only values tell the bug-zoo's swapped update gate apart.
    cell = random_cell(rng, 3, 4, 0.5)
    x, h = rng.standard_normal((3, 2)), rng.standard_normal((4, 2))
    h_new, cache = gru_cell_forward(cell, x, h)
    swapped = cache.z * cache.n + (1.0 - cache.z) * h
    assert_close(h_new, (1.0 - cache.z) * cache.n + cache.z * h, rtol=1e-15)
    assert not np.allclose(h_new, swapped)


# --- wrong shapes -----------------------------------------------------------------------------

# features=3, hidden=4, seq=5, batch=2.
CELL = random_cell(np.random.default_rng(7), 3, 4, 0.5)
X = np.linspace(-1.0, 1.0, 30).reshape(3, 5, 2)
HIDDEN_STATES, CACHE = gru_forward(GRU(CELL), X)
NEW_GATE_A_UNIT_SHORT = Gate(
    CELL.new_gate.W_ih[:3],
    CELL.new_gate.b_ih[:3],
    CELL.new_gate.W_hh[:3, :3],
    CELL.new_gate.b_hh[:3],
)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        pytest.param(
            lambda: gru_forward(GRU(CELL), X[:2]),
            "x: features is 2 here, but layer.cell.reset_gate.W_ih bound features=3",
            id="a feature short",
        ),
        pytest.param(
            lambda: gru_backward(HIDDEN_STATES[:, :4], CACHE),
            "grad_hidden_states: seq is 4 here, the size of hidden, but cache.x bound seq=5",
            id="a step short",
        ),
        pytest.param(
            lambda: gru_cell_forward(
                GRUCell(CELL.reset_gate, CELL.update_gate, NEW_GATE_A_UNIT_SHORT),
                X[:, 0],
                np.zeros((4, 2)),
            ),
            "cell.new_gate.W_ih: hidden is 3 here, the size of features, "
            "but cell.reset_gate.W_ih bound hidden=4",
            id="the candidate a unit short",
        ),
    ],
)
def test_wrong_shapes_raise_naming_the_dimension(call, message):
    with pytest.raises(TypeCheckError) as caught:
        call()
    assert str(caught.value).splitlines()[0] == message


# --- purity and dtypes ------------------------------------------------------------------------


def test_no_gru_function_modifies_its_arguments(rng):
    h0, grad_hidden_states, grad_last = (
        rng.standard_normal((4, 2)),
        rng.standard_normal((4, 5, 2)),
        rng.standard_normal((4, 2)),
    )
    weights = [value for _, value in leaves(CELL)]

    def run(*arrays):
        *weights, x, h0, grad_hidden_states, grad_last = arrays
        _, cache = gru_forward(GRU(with_leaves(CELL, weights)), x, h0)
        return gru_backward(grad_hidden_states, cache, grad_last, truncate=2)

    assert_leaves_inputs_alone(run, *weights, X, h0, grad_hidden_states, grad_last)


def test_float32_in_float32_out():
    cell32 = with_leaves(CELL, [value.astype(np.float32) for _, value in leaves(CELL)])
    hidden_states, cache = gru_forward(GRU(cell32), X.astype(np.float32))
    assert hidden_states.dtype == cache.last_state.dtype == np.float32
    assert_close(hidden_states, HIDDEN_STATES, rtol=1e-6)
    grads, grad_x, grad_h0 = gru_backward(hidden_states, cache)
    assert grad_x.dtype == grad_h0.dtype == np.float32
    assert all(value.dtype == np.float32 for _, value in leaves(grads))
