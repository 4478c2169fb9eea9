"""Tests for the vanishing-gradient picture in typedbackprop.plots: its numbers and its axes."""

import numpy as np
import pytest
from PIL import Image

from typedbackprop.nn.gru import GRU, gru_backward, gru_forward
from typedbackprop.nn.lstm import LSTM, lstm_backward, lstm_forward
from typedbackprop.nn.rnn import RNN, RNNCell, rnn_backward, rnn_forward
from typedbackprop.plots import (
    plot_vanishing_gradient,
    recurrent_at_initialisation,
    state_gradient_norms,
    state_gradients,
    vanishing_gradient_example,
    vanishing_gradient_figure,
)

FEATURES, HIDDEN, SEQ, BATCH = 3, 4, 6, 5


def test_two_steps_by_hand_the_norm_is_the_jacobians_product(rng):
    cell = RNNCell(
        rng.standard_normal((HIDDEN, FEATURES)),
        rng.standard_normal(HIDDEN),
        rng.standard_normal((HIDDEN, HIDDEN)),
        rng.standard_normal(HIDDEN),
    )
    x = rng.standard_normal((FEATURES, 2, BATCH))
    grad_last = rng.standard_normal((HIDDEN, BATCH))
    b = (cell.b_ih + cell.b_hh)[:, np.newaxis]
    h0 = np.tanh(cell.W_ih @ x[:, 0] + b)  # h_{-1} = 0
    h1 = np.tanh(cell.W_ih @ x[:, 1] + cell.W_hh @ h0 + b)
    # ∂h1/∂h0 for example b is diag(1 − h1²) W_hh; the loss's gradient goes back through its
    # transpose, one example (column) at a time.
    expected = np.stack(
        [(np.diag(1 - h1[:, e] ** 2) @ cell.W_hh).T @ grad_last[:, e] for e in range(BATCH)],
        axis=1,
    )
    grads = state_gradients(RNN(cell), x, grad_last)
    assert len(grads) == 2
    np.testing.assert_array_equal(grads[1], grad_last)
    np.testing.assert_allclose(grads[0], expected, rtol=1e-12)
    np.testing.assert_allclose(
        state_gradient_norms(RNN(cell), x, grad_last),
        [np.sqrt((expected**2).sum()), np.sqrt((grad_last**2).sum())],
        rtol=1e-12,
    )


RUNS = {
    "rnn": (rnn_forward, rnn_backward),
    "lstm": (lstm_forward, lstm_backward),
    "gru": (gru_forward, gru_backward),
}


@pytest.mark.parametrize("kind", RUNS)
def test_each_state_gradient_is_what_the_layers_own_backward_gives_from_that_step(kind, rng):
    """∂L/∂h_t is the initial state's gradient of the layer's backward over steps t+1, …:
    the layer's own code, run on the rest of the sequence from the state at t."""
    forward, backward = RUNS[kind]
    layer = recurrent_at_initialisation(kind, FEATURES, HIDDEN, rng)
    x = rng.standard_normal((FEATURES, SEQ, BATCH))
    grad_last = rng.standard_normal((HIDDEN, BATCH))
    grads = state_gradients(layer, x, grad_last)
    hidden_states, cache = forward(layer, x)
    for t in range(SEQ - 1):
        if isinstance(layer, LSTM):
            state = (hidden_states[:, t], cache.steps[t + 1].c)  # (h_t, c_t)
            last = (grad_last, np.zeros_like(grad_last))
        else:
            state, last = hidden_states[:, t], grad_last
        _, rest = forward(layer, x[:, t + 1 :], state)
        zeros = np.zeros((HIDDEN, SEQ - 1 - t, BATCH))
        _, _, grad_state = backward(zeros, rest, last)
        expected = grad_state[0] if isinstance(layer, LSTM) else grad_state
        np.testing.assert_allclose(grads[t], expected, rtol=1e-12, atol=1e-15)
    assert isinstance(layer, RNN | LSTM | GRU) and len(grads) == SEQ
    np.testing.assert_array_equal(grads[-1], grad_last)


@pytest.fixture(scope="module")
def example():
    layers, x, grad_last = vanishing_gradient_example()
    norms = {label: state_gradient_norms(layer, x, grad_last) for label, layer in layers.items()}
    return layers, x, grad_last, norms


def test_at_pytorchs_initialisation_the_rnn_and_the_lstm_lose_the_gradient_alike(example):
    _, x, grad_last, norms = example
    assert x.shape == (9, 30, 16) and np.linalg.norm(grad_last) == pytest.approx(1.0)
    for label, values in norms.items():
        assert values[-1] == pytest.approx(1.0), label
    # Thirty steps back, the tanh RNN keeps under 1e-5 of the gradient, and so does the LSTM
    # with PyTorch's initialisation: its forget gate is about σ(0) = 1/2 and halves the
    # cell-state path at every step. A forget-gate bias keeps it open.
    assert norms["tanh RNN"][0] < 1e-5
    assert norms["LSTM, forget bias 0"][0] < 1e-5
    assert norms["LSTM, forget bias 1"][0] > 100 * norms["LSTM, forget bias 0"][0]
    assert norms["LSTM, forget bias 3"][0] > 1e-2
    assert norms["tanh RNN"][0] < norms["GRU"][0] < norms["LSTM, forget bias 3"][0]
    # The RNN's loss is geometric: every step back multiplies the norm by less than one.
    assert np.all(np.diff(norms["tanh RNN"]) > 0)


def test_the_forget_bias_is_the_lstms_and_an_unknown_kind_is_refused(rng):
    lstm = recurrent_at_initialisation("lstm", FEATURES, HIDDEN, rng, forget_bias=3.0)
    assert isinstance(lstm, LSTM)
    bound = 1 / np.sqrt(HIDDEN)
    assert np.all(np.abs(lstm.cell.forget_gate.b_ih - 3.0) <= bound)
    assert np.all(np.abs(lstm.cell.input_gate.b_ih) <= bound)
    assert np.all(np.abs(lstm.cell.input_gate.W_hh) <= bound)
    with pytest.raises(ValueError, match="unknown recurrent layer 'lstn'"):
        recurrent_at_initialisation("lstn", FEATURES, HIDDEN, rng)


def test_the_figure_draws_a_line_per_model_on_a_log_scale(example):
    _, _, _, norms = example
    figure = vanishing_gradient_figure(norms)
    try:
        (axis,) = figure.axes
        assert axis.get_yscale() == "log"
        assert axis.get_xlabel() == "step t"
        assert "\\partial L / \\partial h_t" in axis.get_ylabel() and "log" in axis.get_ylabel()
        assert "last step (t = 29)" in axis.get_title()
        lines = axis.get_lines()
        assert [line.get_label() for line in lines] == list(norms)
        for line, values in zip(lines, norms.values(), strict=True):
            np.testing.assert_array_equal(line.get_xdata(), np.arange(30))
            np.testing.assert_array_equal(line.get_ydata(), values)
        legend = axis.get_legend()
        assert [text.get_text() for text in legend.get_texts()] == list(norms)
    finally:
        import matplotlib.pyplot as pyplot

        pyplot.close(figure)


def test_the_picture_is_written_as_a_png(tmp_path, rng):
    layers = {kind: recurrent_at_initialisation(kind, FEATURES, HIDDEN, rng) for kind in RUNS}
    path = tmp_path / "vanishing.png"
    plot_vanishing_gradient(
        path, layers, rng.standard_normal((FEATURES, SEQ, BATCH)), rng.standard_normal((4, 5))
    )
    with Image.open(path) as image:
        assert image.format == "PNG" and image.size == (900, 480)
    assert [p.name for p in tmp_path.iterdir()] == ["vanishing.png"]  # no partial file left
