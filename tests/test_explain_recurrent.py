"""Tests for typedbackprop.explain.recurrent: the RNN, LSTM and GRU step by step, BPTT's sums."""

import re

import numpy as np
import pytest

from typedbackprop.explain import DESCRIBERS
from typedbackprop.explain.text import Names, table
from typedbackprop.nn.gru import GRU, gru_forward
from typedbackprop.nn.lstm import LSTM, lstm_forward
from typedbackprop.nn.rnn import RNN, rnn_forward
from typedbackprop.nn.tree import leaves
from typedbackprop.plots import recurrent_at_initialisation

SHAPE = r"\((\d+(?:, \d+)*,?)?\)"
FEATURES, HIDDEN, SEQ, BATCH = 5, 7, 4, 3
KINDS = {"rnn": (RNN, rnn_forward), "lstm": (LSTM, lstm_forward), "gru": (GRU, gru_forward)}


def explained(kind, width=None, hidden=HIDDEN, number=1, input_gradient=True):
    """``(layer, lines)``: the layer's forward and backward rows, laid out for ``width``."""
    record, forward = KINDS[kind]
    rng = np.random.default_rng(0)
    layer = recurrent_at_initialisation(kind, FEATURES, hidden, rng)
    assert type(layer) is record
    output, cache = forward(layer, rng.standard_normal((FEATURES, SEQ, BATCH)))
    names = Names(
        number, "a0", f"h{number}", "grad_a0", f"grad_h{number}", input_gradient=input_gradient
    )
    describer = DESCRIBERS[record]
    rows = describer.forward(names, layer, cache, output) + describer.backward(names, layer, cache)
    return layer, table(rows, width)


def gradient_shapes(lines, name):
    pattern = re.compile(rf"^\s*grad_{re.escape(name)} {SHAPE} = ")
    return [
        tuple(int(part) for part in (match.group(1) or "").split(",") if part.strip())
        for line in lines
        if (match := pattern.match(line))
    ]


@pytest.mark.parametrize("kind", KINDS)
def test_every_parameter_has_its_gradient_line_with_its_shape(kind):
    layer, lines = explained(kind, number=2)
    arrays = leaves(layer)
    assert len(arrays) == {"rnn": 4, "lstm": 16, "gru": 12}[kind]
    names = DESCRIBERS[type(layer)].parameters
    assert set(names) == set(arrays)  # every path has its name in the equations
    assert len(set(names.values())) == len(names)
    for path, value in arrays.items():
        assert gradient_shapes(lines, f"{names[path]}2") == [value.shape], path
        (line,) = (line for line in lines if line.lstrip().startswith(f"grad_{names[path]}2 "))
        assert " = Σ_t " in line  # shared by every step: its gradient sums over seq


def test_pytorchs_names_for_the_gates_parameters():
    assert DESCRIBERS[LSTM].parameters["cell.forget_gate.W_hh"] == "W_hf"
    assert DESCRIBERS[LSTM].parameters["cell.cell_gate.b_ih"] == "b_ig"
    assert DESCRIBERS[GRU].parameters["cell.new_gate.b_hh"] == "b_hn"
    assert DESCRIBERS[GRU].parameters["cell.update_gate.W_ih"] == "W_iz"
    assert DESCRIBERS[RNN].parameters["cell.W_hh"] == "W_hh"


def test_the_bptt_sums_name_every_operand_with_its_shape():
    _, lines = explained("rnn")
    text = "\n".join(lines)
    # hidden 7, batch 3, features 5: the step's delta and the previous state, transposed
    assert "grad_W_hh1 (7, 7) = Σ_t delta1_t (7, 3) @ h1_{t-1}.T (3, 7)" in text
    assert "grad_W_ih1 (7, 5) = Σ_t delta1_t (7, 3) @ a0[:, t].T (3, 5)" in text
    assert "grad_b_ih1 (7,) = Σ_t delta1_t (7, 3).sum(axis=1)" in text
    assert "grad_h1_t (7, 3) = grad_h1[:, t] (7, 3) + carry_h1_t (7, 3)" in text
    assert "carry_h1_{t-1} (7, 3) = W_hh1.T (7, 7) @ delta1_t (7, 3)" in text
    assert "grad_a0[:, t] (5, 3) = W_ih1.T (5, 7) @ delta1_t (7, 3)" in text
    assert "for t = 0, …, 3:" in text and "for t = 3, …, 0:" in text


def test_the_lstm_tells_the_forget_gate_from_the_previous_cell_state():
    _, lines = explained("lstm")
    text = "\n".join(lines)
    assert "grad_f1_t (7, 3) = grad_c1_t (7, 3) * c1_{t-1} (7, 3)" in text
    assert "carry_c1_{t-1} (7, 3) = grad_c1_t (7, 3) * f1_t (7, 3)" in text
    assert "c1_t (7, 3) = f1_t (7, 3) * c1_{t-1} (7, 3) + i1_t (7, 3) * g1_t (7, 3)" in text


def test_the_gru_keeps_b_hn_inside_the_reset_gates_product():
    _, lines = explained("gru")
    text = "\n".join(lines)
    assert "hn1_t (7, 3) = W_hn1 (7, 7) @ h1_{t-1} (7, 3) + b_hn1[:, None] (7, 1)" in text
    assert "grad_b_hn1 (7,) = Σ_t grad_hn1_t (7, 3).sum(axis=1)" in text
    assert "grad_b_in1 (7,) = Σ_t delta_n1_t (7, 3).sum(axis=1)" in text
    assert "h1_t (7, 3) = (1 - z1_t (7, 3)) * n1_t (7, 3) + z1_t (7, 3) * h1_{t-1} (7, 3)" in text


@pytest.mark.parametrize("kind", KINDS)
def test_no_input_gradient_below_the_lowest_layer_with_parameters(kind):
    _, lines = explained(kind, input_gradient=False)
    assert not any(line.lstrip().startswith("grad_a0") for line in lines)
    _, lines = explained(kind)
    assert sum(line.lstrip().startswith("grad_a0[:, t] (5, 3) = ") for line in lines) == 1


def words(lines):
    return [word for line in lines for word in line.split() if word != "#"]


@pytest.mark.parametrize("width", [80, 100])
@pytest.mark.parametrize("kind", KINDS)
def test_every_line_fits_the_width_and_says_the_same_words(kind, width):
    # hidden 32 as the recall model's: three-digit shapes are not needed to overflow a line
    _, unwrapped = explained(kind, hidden=32)
    _, wrapped = explained(kind, width, hidden=32)
    assert max(len(line) for line in unwrapped) > width  # there is something to wrap
    assert max(len(line) for line in wrapped) <= width
    assert words(wrapped) == words(unwrapped)
    for line in wrapped:  # a shape stays with its operand: no line opens with one
        assert not re.match(rf"\s*{SHAPE}(?!\S)", line), line
