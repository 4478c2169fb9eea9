"""``--model convnet`` and ``--model transformer`` for ``explain``, ``gradcheck`` and ``train``."""

import io
import re

import pytest
from rich.console import Console

from typedbackprop.checkpoint import read_checkpoint
from typedbackprop.cli import main

SHAPE = re.compile(r"\((\d+(?:, \d+)*,?)?\)")


def run(*argv):
    out = io.StringIO()
    console = Console(file=out, width=200, force_terminal=False, color_system=None)
    status = main(list(argv), console=console)
    return status, out.getvalue()


def test_explain_convnet_shows_the_im2col_columns_and_every_gradient():
    status, text = run("explain", "--model", "convnet", "--batch", "3")
    assert status == 0
    assert "columns1 (9, 192) = im2col(x0 (1, 8, 8, 3), 3x3, stride 1, padding 1)" in text
    assert "grad_W1 (16, 1, 3, 3) = (delta1_col (16, 192) @ columns1.T (192, 9))" in text
    assert "col2im(grad_columns3)" in text


def test_explain_transformer_shows_keys_by_queries():
    status, text = run("explain", "--model", "transformer", "--batch", "2")
    assert status == 0
    assert "S3 (4, 2, 15, 15) = k3.mT @ q3 / sqrt(16)" in text
    assert "z5 (10, 8, 2) = W5 (10, 64) @ k4 (64, 8, 2)" in text


@pytest.mark.parametrize("model", ["convnet", "transformer"])
def test_gradcheck_checks_every_parameter_of_the_model(model):
    status, text = run("gradcheck", "--model", model, "--batch", "2")
    assert status == 0, text
    assert text.rstrip().endswith("passed")
    assert "FAILED" not in text


def test_gradcheck_convnet_shows_every_parameter_and_says_which_gradients_are_0():
    import numpy as np

    from typedbackprop.nn.families import parameters
    from typedbackprop.recipes import RECIPES

    layers = RECIPES["convnet"].build(np.random.default_rng(0))
    names = [f"{index}.{name}" for index, layer in enumerate(layers) for name in parameters(layer)]
    assert names[0] == "1.W" and names[-1] == "10.b" and len(names) == 10
    status, text = run("gradcheck", "--model", "convnet", "--batch", "2")
    assert status == 0, text
    rows = {line.split()[0] for line in text.splitlines()[2:] if line and line[0].isdigit()}
    assert set(names) <= rows, text
    # The convolutions' biases are followed by batch norm, which subtracts the mean over the
    # batch: their gradients are 0 on both sides, and the report says so instead of "ok".
    for bias in ("1.b", "5.b"):
        assert f"\n{bias:<12} gradient identically 0: nothing to compare\n" in text
        assert f"{bias}: gradient identically 0 (analytic and numerical within atol=" in text
    assert "10.b: gradient identically 0" not in text


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["explain"], "give the layer SIZES"),
        (["explain", "3,4,2", "--model", "convnet"], "has its own sizes"),
        (["train", "--model", "convnet", "--hidden", "8"], "--hidden is for the perceptron"),
        (["train", "--model", "convnet", "--dataset", "iris"], "is for --dataset digits"),
        (["train"], "--dataset is required"),
    ],
)
def test_model_options_that_do_not_fit_are_usage_errors(argv, message, capsys):
    status, _ = run(*argv)
    assert status == 2
    assert message in capsys.readouterr().err


@pytest.mark.slow
def test_train_convnet_reaches_the_issue_s_accuracy(tmp_path):
    path = tmp_path / "convnet.npz"
    status, text = run("train", "--model", "convnet", "--save", str(path))
    assert status == 0
    accuracy = float(text.rstrip().rsplit(" ", 1)[1])
    assert accuracy >= 0.98, text
    checkpoint = read_checkpoint(path)
    assert checkpoint.model == "convnet" and checkpoint.states is not None


@pytest.mark.slow
def test_train_transformer_sorts_the_held_out_sequences():
    status, text = run("train", "--model", "transformer")
    assert status == 0
    accuracy = float(text.rstrip().rsplit(" ", 1)[1])
    assert accuracy >= 0.99, text
