"""The recurrent models in the house: ``--model rnn|lstm|gru`` on ``recall``, truncated BPTT
and clipping as options of training and of the command line, the vanishing-gradient plot."""

import dataclasses
import io
import re

import numpy as np
import pytest
from helpers import assert_close
from rich.console import Console

from typedbackprop import recipes
from typedbackprop.checkpoint import read_checkpoint, save_network
from typedbackprop.cli import main
from typedbackprop.cli.options import OPTION_MODELS, RECURRENT_MODELS
from typedbackprop.datasets import SEQUENCE_DATASETS, recall_dataset
from typedbackprop.models import LSTM_FORGET_BIAS, recurrent
from typedbackprop.nn import (
    GRU,
    LSTM,
    RNN,
    gru_backward,
    lstm_backward,
    network_forward,
    network_loss_and_grads,
    rnn_backward,
    token_cross_entropy,
    token_dense_backward,
    token_dense_forward,
)
from typedbackprop.nn.mode import Mode
from typedbackprop.nn.tree import leaves
from typedbackprop.training import History, train_steps, truncated

BACKWARD = {RNN: rnn_backward, LSTM: lstm_backward, GRU: gru_backward}
KINDS = ("rnn", "lstm", "gru")


def run(*argv):
    out = io.StringIO()
    console = Console(file=out, width=200, force_terminal=False, color_system=None)
    status = main(list(argv), console=console)
    return status, out.getvalue()


def small(kind, seed=0):
    """A recurrent classifier (features=11, hidden=6, classes=8) and 5 recall sequences of 7
    whose later tokens vary (3 fillers, so 11 token ids)."""
    layers = recurrent(np.random.default_rng(seed), kind, features=11, hidden=6)
    data = recall_dataset(length=7, n_train=5, n_test=1, seed=seed, fillers=3)
    x = recipes.one_hot(data.x_train, data.vocab)
    return layers, x, data.y_train


def test_the_recipes_are_the_recurrent_models_on_recall():
    assert RECURRENT_MODELS == KINDS
    assert SEQUENCE_DATASETS["recall"] is recall_dataset
    for kind in KINDS:
        recipe = recipes.RECIPES[kind]
        assert (recipe.dataset, recipe.loss, recipe.one_hot) == (
            "recall",
            "token_cross_entropy",
            True,
        )
        data = recipes.recipe_data(recipe, seed=0)
        assert data.x_train.shape == (9, 30, 2_000)  # one-hot tokens, features first
        np.testing.assert_array_equal(data.x_train.argmax(axis=0), recall_dataset().x_train)
        assert data.y_train.shape == (1, 2_000)
    assert OPTION_MODELS["truncate"] == KINDS
    assert set(KINDS) <= set(OPTION_MODELS["clip"]) and set(KINDS) <= set(OPTION_MODELS["plot"])


@pytest.mark.parametrize("kind", KINDS)
def test_the_model_reads_the_last_state_and_starts_as_pytorch_does(kind):
    layers = recurrent(np.random.default_rng(0), kind)
    bound = 1 / np.sqrt(32)
    for path, value in [*leaves(layers[0]).items(), *leaves(layers[2]).items()]:
        if path != "cell.forget_gate.b_ih" and path != "cell.forget_gate.b_hh":
            assert np.abs(value).max() <= bound, path
    if kind == "lstm":  # the forget gate starts open: b_if + b_hf = 5
        gate = layers[0].cell.forget_gate
        np.testing.assert_array_equal(gate.b_ih + gate.b_hh, np.full(32, LSTM_FORGET_BIAS))
    x = recipes.one_hot(recall_dataset(n_train=3, n_test=1).x_train, 9)
    logits, caches = network_forward(layers, x, Mode())
    assert logits.shape == (8, 1, 3)
    hidden_states = caches[1].x  # KeepLast's input: every state
    assert_close(logits[:, 0], layers[2].W @ hidden_states[:, -1] + layers[2].b[:, None])


@pytest.mark.parametrize("kind", KINDS)
def test_truncate_reaches_the_layers_backward_through_the_network(kind):
    layers, x, y = small(kind)
    _, whole = network_loss_and_grads(layers, x, y, "token_cross_entropy")
    cut_layers = truncated(layers, 2)
    assert cut_layers[0].truncate == 2 and cut_layers[1:] == layers[1:]
    _, cut = network_loss_and_grads(cut_layers, x, y, "token_cross_entropy")
    # the layer's own BPTT, from ∂L/∂h_t (the readout's at the last step, zeros elsewhere)
    _, caches = network_forward(layers, x, Mode(training=True))
    backward = BACKWARD[type(layers[0])]
    grad_hidden_states = _grad_at_last(layers, x, y)
    expected_whole, _, _ = backward(grad_hidden_states, caches[0])
    expected_cut, _, _ = backward(grad_hidden_states, caches[0], truncate=2)
    for path, value in leaves(expected_whole).items():
        assert_close(leaves(whole[0])[path], value)
        assert_close(leaves(cut[0])[path], leaves(expected_cut)[path])
    # and truncation changed the weights' gradient (the state's path is cut at steps 2, 4, 6)
    W_hh = next(path for path in leaves(whole[0]) if path.endswith("W_hh"))
    assert not np.allclose(leaves(whole[0])[W_hh], leaves(cut[0])[W_hh])


def _grad_at_last(layers, x, y):
    """``∂L/∂h_t`` for every step: the readout's gradient at the last step, zeros elsewhere."""
    hidden_states, _ = network_forward(layers[:1], x, Mode())
    logits, dense_cache = token_dense_forward(layers[2], hidden_states[:, -1:])
    _, grad_logits = token_cross_entropy(logits, y)
    _, grad_last = token_dense_backward(grad_logits, dense_cache)
    grad_hidden_states = np.zeros_like(hidden_states)
    grad_hidden_states[:, -1:] = grad_last
    return grad_hidden_states


def test_train_steps_trains_with_the_truncate_setting_and_returns_it():
    layers, x, y = small("lstm")
    trained, _ = train_steps(layers, "token_cross_entropy", x, y, steps=2, batch_size=3,
                             rng=np.random.default_rng(0), optimizer=lambda step: _Plain(),
                             truncate=3)  # fmt: skip
    assert trained[0].truncate == 3 and layers[0].truncate is None  # the caller's kept
    with pytest.raises(ValueError, match="truncate"):
        dataclasses.replace(layers[0], truncate=0)


class _Plain:
    def init(self, layers):
        return None

    def step(self, layers, grads, state):
        return layers, state


def test_the_command_line_hands_clip_and_truncate_to_training(monkeypatch):
    seen = []

    def fit(layers, data, rng, states, progress, length, clip):
        seen.append((layers[0].truncate, clip, length))
        return History()

    monkeypatch.setitem(
        recipes.RECIPES, "gru", dataclasses.replace(recipes.RECIPES["gru"], fit=fit)
    )
    status, text = run("train", "--model", "gru", "--steps", "3", "--clip", "0.5",
                       "--truncate", "10")  # fmt: skip
    assert status == 0, text
    status, text = run("train", "--model", "gru", "--steps", "3")
    assert status == 0, text
    assert seen == [(10, 0.5, 3), (None, None, 3)]


def test_truncate_is_for_the_recurrent_models_only(capsys):
    status, _ = run("train", "--model", "transformer", "--truncate", "5")
    assert status == 2
    assert "--truncate is for --model rnn or lstm or gru only" in capsys.readouterr().err


def test_train_lstm_recalls_the_first_token(tmp_path):
    # Seed 0 reaches 1.0 at step 100 (benchmarks/train_recall.py, whose draws the recipe makes)
    status, text = run("train", "--model", "lstm", "--steps", "100")
    assert status == 0, text
    accuracy = float(re.search(r"test accuracy: (\S+)", text)[1])
    assert accuracy >= 0.99, text


def test_plot_draws_the_vanishing_gradient(tmp_path):
    pytest.importorskip("matplotlib")
    path = tmp_path / "vanishing.png"
    status, text = run("train", "--model", "rnn", "--steps", "1", "--plot", str(path))
    assert status == 0, text
    assert f"wrote {path}" in text
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("kind", KINDS)
def test_gradcheck_checks_every_parameter_of_a_recurrent_model(kind):
    status, text = run("gradcheck", "--model", kind, "--batch", "2")
    assert status == 0, text
    assert text.rstrip().endswith("passed") and "FAILED" not in text
    layers = recipes.RECIPES[kind].build(np.random.default_rng(0))
    for index, layer in enumerate(layers):
        for path in leaves(layer):
            assert f"│ {index}.{path} " in text, path
    # for real: no gradient 0 on both sides (on the training data the GRU's update gate's is)
    assert text.startswith(f"model {kind} on recall with 5 symbols and 4 fillers, batch 2: ")
    assert "nothing to compare" not in text and "compared nothing" not in text


def test_the_gradient_check_data_is_recall_with_fillers_the_model_reads():
    for kind in KINDS:
        recipe = recipes.RECIPES[kind]
        data, checked = recipes.recipe_data(recipe, seed=1), recipes.check_data(recipe, seed=1)
        assert checked.x_train.shape == data.x_train.shape  # 9 one-hot tokens, 30 steps
        tokens = checked.x_train.argmax(axis=0)
        np.testing.assert_array_equal(checked.y_train, tokens[:1])
        assert checked.y_train.max() < recipes.RECALL_CHECK_SYMBOLS < 8  # the model's classes
        later = tokens[1:]
        assert set(np.unique(later)) == set(range(recipes.RECALL_CHECK_SYMBOLS, 9))
        assert (later[1:] != later[:-1]).any(axis=0).all()  # no sequence of one blank


def test_on_the_training_data_the_grus_update_gate_has_no_gradient_to_check():
    """Why the check data exists: after the first token every training sequence is one blank,
    the GRU's state settles to a fixed point (``h_{t−1} = n_t``), and its update gate's
    gradient, ``∂L/∂h_t ⊙ (h_{t−1} − n_t)`` at each step, is within the check's atol of 0."""
    recipe = recipes.RECIPES["gru"]
    layers = recipe.build(np.random.default_rng(0))

    def largest_update_gate_gradient(data):
        x, y = data.x_train[..., :5], data.y_train[..., :5]
        _, grads = network_loss_and_grads(layers, x, y, recipe.loss)
        return max(np.abs(g).max() for g in leaves(grads[0].cell.update_gate).values())

    assert largest_update_gate_gradient(recipes.recipe_data(recipe, seed=0)) < 1e-7  # 4.3e-8
    assert largest_update_gate_gradient(recipes.check_data(recipe, seed=0)) > 1e-4  # 3.3e-3


@pytest.mark.parametrize("kind", KINDS)
def test_explain_a_recurrent_model(kind):
    status, text = run("explain", "--model", kind, "--batch", "2")
    assert status == 0, text
    assert "for t = 0, …, 29:" in text


@pytest.mark.parametrize("kind", KINDS)
def test_a_recurrent_model_round_trips_with_its_truncate_setting(kind, tmp_path):
    layers = truncated(recurrent(np.random.default_rng(1), kind), 4)
    path = tmp_path / f"{kind}.npz"
    save_network(path, layers, "token_cross_entropy", model=kind)
    loaded = read_checkpoint(path)
    assert loaded.model == kind and [type(layer) for layer in loaded.network] == [
        type(layer) for layer in layers
    ]
    assert loaded.network[0].truncate == 4 and loaded.network[1].count == 1
    for layer, back in zip(layers, loaded.network, strict=True):
        assert leaves(layer).keys() == leaves(back).keys()
        for path_, value in leaves(layer).items():
            np.testing.assert_array_equal(leaves(back)[path_], value)
