"""``--model convnet`` and ``--model transformer`` for ``explain``, ``gradcheck`` and ``train``."""

import dataclasses
import io
import os
import re

import numpy as np
import pytest
from rich.console import Console
from threadpoolctl import threadpool_info

from typedbackprop import cli, recipes
from typedbackprop.checkpoint import read_checkpoint, save_network
from typedbackprop.cli import main, options
from typedbackprop.cli import models as cli_models
from typedbackprop.cli.options import MODELS, OPTION_MODELS, SCOPE_RULE
from typedbackprop.cli.tables import COLUMNS
from typedbackprop.models import convnet
from typedbackprop.training import History

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
    assert "col2im(grad_columns3 (144, 48))" in text


def test_explain_transformer_shows_keys_by_queries():
    status, text = run("explain", "--model", "transformer", "--batch", "2")
    assert status == 0
    assert "S3 (4, 2, 15, 15) = k3.mT (4, 2, 15, 16) @ q3 (4, 2, 16, 15) / sqrt(16)" in text
    assert "z5 (10, 8, 2) = W5 (10, 64) @ k4 (64, 8, 2)" in text


# An array's name in an equation: a layer's number ends it (``k3``, ``grad_S3``, ``W_output3``,
# ``delta3_col``), or it is one of layer norm's unnumbered values. Not a method (``.mean``), not a
# function (``softmax(``), not a keyword (``axis=``); ``3x3`` is no name.
ARRAY_NAME = re.compile(
    r"(?<![\w.'])([A-Za-z_]\w*\d(?:_col)?|x_hat|rstd|mean|g|x|labels)(?![\w(='])"
)
# What may stand between a name and its shape: a transpose, an index, a permutation.
ACCESSORS = r"(?:\.T|\.mT|\[[^\]]*\]|\.transpose\([^)]*\))*"
# The lines of each model that may leave an operand's shape to the line above, by the name they
# define. The loss lines name the output the line above shows with its shape, and their target's
# shape stands in the note. The convnet's output softmax and last bias gradient are written as the
# perceptron's (``a5 = softmax(z5)``, ``grad_b5 = delta5.sum(axis=1)``, the lines ``explain
# SIZES`` prints in both layouts); batch norm's "mean and variance of" is prose, not an array.
SHAPE_ON_THE_LINE_ABOVE = {
    "transformer": {"L", "delta5"},
    "convnet": {"L", "delta5", "a5", "grad_b5", "mean2", "mean4"},
}


def equations(text):
    """Each equation of ``explain``'s forward, loss and backward sections, its note cut off."""
    return [
        re.split(r" {3,}", line.strip())[0]
        for line in text.splitlines()
        if line.startswith("  ") and "=" in line
    ]


def shapeless_operands(equation):
    """The array names in ``equation`` that are never followed by their shape."""
    return {
        name
        for name in ARRAY_NAME.findall(equation)
        if not re.search(rf"(?<![\w.]){re.escape(name)}{ACCESSORS} {SHAPE.pattern}", equation)
    }


EXPLAIN_FRAGMENTS = {  # operands that once printed without their shape
    "transformer": [
        "mean (15, 2), rstd (15, 2) = p2 (64, 15, 2).mean(axis=0)",
        "(p2 (64, 15, 2) - mean (15, 2)) * rstd (15, 2)",
        "(grad_n4 (64, 15, 2) * x_hat (64, 15, 2)).sum(axis=(1, 2))",
        "g (64, 15, 2) = gamma4[:, None, None] (64, 1, 1) * grad_n4 (64, 15, 2)",
        "P3 (4, 2, 15, 15) = softmax(S3 (4, 2, 15, 15), axis=-2)",
        "o3 (4, 2, 16, 15) = v3 (4, 2, 16, 15) @ P3 (4, 2, 15, 15)",
        "ya3 (64, 15, 2) = W_output3 (64, 4, 16) · o3 (4, 2, 16, 15) + b_output3 (64,)",
        "grad_o3 (4, 2, 16, 15) = W_output3 (64, 4, 16) · grad_r3 (64, 15, 2)",
        "grad_q3 (4, 2, 16, 15) = k3 (4, 2, 16, 15) @ grad_S3 (4, 2, 15, 15)",
        "grad_xa3 (64, 15, 2) = W_query3 (4, 16, 64) · grad_q3 (4, 2, 16, 15) + ",
        "grad_pos2[:15] (15, 64) = grad_p2 (64, 15, 2).sum(axis=2).T",
        "grad_e1 (64, 15, 2) = grad_p2 (64, 15, 2)",
        "z5 (10, 8, 2) = W5 (10, 64) @ k4 (64, 8, 2) + b5[:, None, None] (10, 1, 1)",
        "grad_b5 (10,) = delta5 (10, 8, 2).sum(axis=(1, 2))",
        "grad_n4 (64, 15, 2) = zeros, with [:, 7:, :] = grad_k4 (64, 8, 2)",
        "np.add.at(grad_E1, a0 (15, 2), ",
    ],
    "convnet": [
        "a2 (16, 8, 8, 3) = relu(y2 (16, 8, 8, 3))",
        "grad_y4 (32, 4, 4, 3) = grad_a4 (32, 4, 4, 3) * relu'(y4 (32, 4, 4, 3))",
    ],
}


@pytest.mark.parametrize(("model", "batch"), [("transformer", "2"), ("convnet", "3")])
def test_explain_shows_the_shape_of_every_operand_on_every_line(model, batch):
    status, text = run("explain", "--model", model, "--batch", batch)
    assert status == 0
    lines = equations(text)
    assert len(lines) > 30
    missing = {line: shapeless_operands(line) for line in lines if shapeless_operands(line)}
    assert {line.split(" ")[0] for line in missing} <= SHAPE_ON_THE_LINE_ABOVE[model], missing
    for fragment in EXPLAIN_FRAGMENTS[model]:
        assert fragment in text, fragment


def test_the_shape_check_of_explain_lines_finds_a_shapeless_operand():
    assert shapeless_operands("S3 (4, 2, 15, 15) = k3.mT @ q3 (4, 2, 16, 15) / sqrt(16)") == {"k3"}
    assert shapeless_operands("grad_b1 (16,) = delta1_col.sum(axis=1)") == {"delta1_col"}
    assert shapeless_operands("g (3, 5) = gamma1[:, None] (3, 1) * grad_y1") == {"grad_y1"}
    assert not shapeless_operands("columns1 (9, 192) = im2col(x0 (1, 8, 8, 3), 3x3, stride 1)")


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
    rows = {line.split()[1]: line for line in text.splitlines() if line.startswith("│ ")}
    assert set(names) <= set(rows), text
    # The convolutions' biases are followed by batch norm, which subtracts the mean over the
    # batch: their gradients are 0 on both sides, and the report says so instead of "ok".
    for bias in ("1.b", "5.b"):
        assert rows[bias].split("│")[-2].strip() == "0: nothing to compare"
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


@pytest.fixture
def short_recipes(monkeypatch):
    """The recipes with two transformer steps and one convnet epoch: the real commands, quick."""
    monkeypatch.setattr(recipes, "TRANSFORMER_STEPS", 2)
    monkeypatch.setitem(recipes.CONVNET_TRAINING, "epochs", 1)
    for name, length in [("transformer", 2), ("convnet", 1)]:
        monkeypatch.setitem(
            recipes.RECIPES, name, dataclasses.replace(recipes.RECIPES[name], length=length)
        )


@pytest.mark.parametrize(
    ("argv", "first_line"),
    [
        (["--dataset", "sort", "--model", "transformer"], "sort, transformer: 2 steps in "),
        (["--dataset", "digits", "--model", "convnet"], "digits, convnet: 1 epoch in "),
    ],
)
def test_train_takes_the_data_set_its_model_is_for(short_recipes, argv, first_line):
    status, text = run("train", *argv)
    assert status == 0, text
    lines = text.splitlines()
    assert lines[0].startswith(first_line) and lines[-1].startswith("test accuracy: ")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["train", "--dataset", "sort"],
            "--dataset sort needs --model transformer; the perceptron (--model mlp) trains on "
            "step, circles, iris, digits",
        ),
        (
            ["train", "--dataset", "sort", "--hidden", "8"],
            "--dataset sort needs --model transformer",
        ),
        (["train", "--dataset", "digits", "--model", "transformer"], "is for --dataset sort"),
        (["train", "--dataset", "sort", "--model", "convnet"], "is for --dataset digits"),
        (["train", "--model", "transformer", "--threads", "0"], "--threads: expected a number"),
    ],
)
def test_a_data_set_without_its_model_is_a_one_line_usage_error(argv, message, capsys):
    status, _ = run(*argv)
    assert status == 2
    usage, error = capsys.readouterr().err.split("error: ")
    assert usage.startswith("usage: typedbackprop train")
    assert message in error and error.count("\n") == 1


def test_every_data_set_a_model_is_for_is_a_choice_of_train_dataset(capsys):
    run("train", "--help")
    choices = re.search(r"--dataset \{([\w,]+)\}", capsys.readouterr().out)[1].split(",")
    assert {recipe.dataset for recipe in recipes.RECIPES.values()} <= set(choices)


def blas_threads_now():
    """The BLAS libraries' thread counts, as threadpoolctl reads them."""
    return [pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"]


@pytest.mark.parametrize(
    ("model", "threads", "expected"),
    [("transformer", [], 1), ("convnet", [], 1), ("transformer", ["--threads", "3"], 3)],
)
def test_a_recipe_trains_with_its_blas_threads_or_those_of_threads(
    monkeypatch, model, threads, expected
):
    seen = []

    def fit(layers, data, rng, states, progress, length, clip):
        seen.append(blas_threads_now())
        return History()

    recipe = recipes.RECIPES[model]
    assert recipe.threads == 1
    monkeypatch.setitem(recipes.RECIPES, model, dataclasses.replace(recipe, fit=fit))
    before = blas_threads_now()
    assert before, "NumPy's BLAS is not one threadpoolctl knows"
    status, text = run("train", "--model", model, *threads)
    assert status == 0, text
    assert seen == [[expected] * len(before)]
    assert blas_threads_now() == before  # restored after training


# --- Checkpoints of every model: what the command line saves, it loads -----------------------

SHORT = {
    "convnet": ["--epochs", "1"],
    "transformer": ["--steps", "2"],
    **{name: ["--steps", "2"] for name in options.RECURRENT_MODELS},
}
"""A model's shortest real training: one epoch of the convnet, two steps of the transformer."""


def results(text):
    """The test loss and the test accuracy a ``train`` run printed."""
    loss = re.search(r"test loss (\S+)", text)[1]
    accuracy = re.search(r"test accuracy: (\S+)", text)[1]
    return loss, accuracy


@pytest.mark.parametrize("model", ["convnet", "transformer", *options.RECURRENT_MODELS])
def test_a_saved_model_loads_back_evaluates_the_same_and_trains_on(model, tmp_path, capsys):
    path = tmp_path / f"{model}.npz"
    status, trained = run("train", "--model", model, *SHORT[model], "--save", str(path))
    assert status == 0, trained
    status, loaded = run("train", "--model", model, "--load", str(path))
    assert status == 0, loaded
    assert results(loaded) == results(trained)  # the same network, tested on the same split
    assert loaded.startswith(f"{recipes.RECIPES[model].dataset}, {model}: 0 ")
    again = tmp_path / "again.npz"
    status, resaved = run("train", "--model", model, "--load", str(path), "--save", str(again))
    assert status == 0 and results(resaved) == results(trained)
    first, second = read_checkpoint(path), read_checkpoint(again)
    assert first.model == second.model == model and first.split == second.split
    status, further = run("train", "--model", model, "--load", str(path), *SHORT[model])
    assert status == 0 and results(further)[0] != results(trained)[0]  # trained on from there
    assert "warning" not in capsys.readouterr().err  # the split is recorded and agrees


@pytest.mark.parametrize(
    ("saved", "argv", "message"),
    [
        ("transformer", ["--model", "convnet"], "holds a transformer network, not --model "
         "convnet: use --model transformer"),
        ("convnet", ["--dataset", "digits"], "holds a convnet network, not a multilayer "
         "perceptron: give --model convnet"),
        ("convnet", ["--model", "convnet", "--seed", "3"], "trained and tested on the digits "
         "split of --seed 0; --seed 3 would test it on examples it trained on"),
        ("transformer", ["--model", "transformer", "--seed", "3"], "trained and tested on the "
         "sort split of --seed 0"),
    ],
)  # fmt: skip
def test_a_model_checkpoint_is_refused_for_another_model_or_split(
    saved, argv, message, tmp_path, capsys
):
    path = tmp_path / "net.npz"
    layers = recipes.RECIPES[saved].build(np.random.default_rng(0))
    data = recipes.recipe_data(recipes.RECIPES[saved], seed=0)
    split = cli_models._recorded_split(recipes.RECIPES[saved], data, seed=0)
    save_network(path, layers, recipes.RECIPES[saved].loss, split=split, model=saved)
    status, out = run("train", "--load", str(path), *argv)
    err = capsys.readouterr().err
    assert status == 2 and out == "" and message in " ".join(err.split())


def test_a_checkpoint_of_a_model_s_name_but_other_shapes_is_refused(tmp_path, capsys):
    path = tmp_path / "net.npz"
    layers = convnet(np.random.default_rng(0), channels=(4, 8))
    save_network(path, layers, "cross_entropy", model="convnet")
    status, _ = run("train", "--model", "convnet", "--load", str(path))
    assert status == 2 and "of other layers or shapes" in capsys.readouterr().err


# --- One rule for options a model does not take ----------------------------------------------

VALUE = {
    "activation": "tanh",
    "output_activation": "sigmoid",
    "loss": "squared_error",
    "layout": "batch-first",
    "hidden": "3",
    "init": "he_normal",
    "batch_size": "4",
    "lr": "0.1",
    "momentum": "0.5",
    "plot": "p.png",
    "animate": "a.gif",
    "epochs": "1",
    "steps": "1",
    "clip": "1",
    "truncate": "5",
}
"""A valid value of each option of OPTION_MODELS."""

COMMAND_MODEL = {"explain": ["3,4"], "gradcheck": ["3,4"], "train": ["--dataset", "iris"]}
"""What each command needs besides the option, for the perceptron (a --model brings its own)."""


def command_options():
    """``(command, dest, flag)`` for every option of OPTION_MODELS each command has."""
    subcommands = next(
        action for action in cli._parser()._actions if action.dest == "command"
    ).choices
    for command in COMMAND_MODEL:
        for action in subcommands[command]._actions:
            if action.dest in OPTION_MODELS:
                yield command, action.dest, action.option_strings[0]


def test_the_table_names_real_models_and_every_value_is_valid():
    assert set(OPTION_MODELS) == set(VALUE)
    assert all(set(models) <= set(MODELS) and models for models in OPTION_MODELS.values())
    assert {dest for _, dest, _ in command_options()} == set(OPTION_MODELS)


@pytest.mark.parametrize(
    ("command", "dest", "flag", "model"),
    [
        (command, dest, flag, model)
        for command, dest, flag in command_options()
        for model in MODELS
        if model not in OPTION_MODELS[dest]
    ],
)
def test_an_option_the_model_does_not_take_is_a_usage_error(
    command, dest, flag, model, monkeypatch, capsys
):
    def no_work(*args, **kwargs):
        raise AssertionError("ran before refusing the option")

    monkeypatch.setattr(cli_models, "recipe_data", no_work)
    monkeypatch.setattr(cli_models, "read_checkpoint", no_work)
    base = COMMAND_MODEL[command] if model == "mlp" else ["--model", model]
    status, out = run(command, *base, flag, VALUE[dest])
    err = capsys.readouterr().err
    assert status == 2 and out == "", err
    assert f"error: {flag} is for " in err and f"not --model {model}" in err


@pytest.mark.parametrize("command", ["explain", "gradcheck", "train"])
def test_help_states_the_rule_and_marks_each_option_with_its_models(command, capsys):
    run(command, "--help")
    text = " ".join(capsys.readouterr().out.split())  # argparse wraps the help
    assert " ".join(SCOPE_RULE.split()) in text
    for listed, dest, flag in command_options():
        if listed == command:
            models = " or ".join(OPTION_MODELS[dest])
            assert re.search(rf"{flag} \S+ .*?\(--model {models} only\)", text), (flag, text)


@pytest.mark.parametrize("command", ["explain", "gradcheck"])
def test_a_batch_larger_than_the_model_s_data_is_a_usage_error(command, capsys):
    status, out = run(command, "--model", "convnet", "--batch", "100000")
    err = capsys.readouterr().err
    assert status == 2 and out == ""
    assert "--batch 100000 is more than the 1,437 training examples of digits" in err


# --- Paths checked before training, for every model ------------------------------------------


@pytest.mark.parametrize("model", ["convnet", "transformer"])
@pytest.mark.parametrize(
    ("name", "message"),
    [("t.txt", "the file name must end in .npz"), ("absent/c.npz", "there is no directory")],
)
def test_a_bad_save_path_is_refused_before_training(model, name, message, tmp_path, monkeypatch,
                                                    capsys):  # fmt: skip
    def no_training(*args, **kwargs):
        raise AssertionError("trained before checking --save")

    monkeypatch.setitem(
        recipes.RECIPES, model, dataclasses.replace(recipes.RECIPES[model], fit=no_training)
    )
    status, out = run("train", "--model", model, "--save", str(tmp_path / name))
    err = capsys.readouterr().err
    assert status == 2 and out == "" and message in err
    assert not (tmp_path / name).exists()


# --- The gradcheck table of every model ------------------------------------------------------


@pytest.mark.parametrize("model", ["convnet", "transformer"])
def test_gradcheck_of_a_model_prints_the_perceptron_s_table_with_aligned_columns(model):
    status, text = run("gradcheck", "--model", model, "--batch", "2")
    assert status == 0, text
    rows = [line for line in text.splitlines() if line.startswith(("│", "┃"))]
    assert rows[0].split("┃")[1:-1] == [
        f" {name} ".ljust(len(cell))
        for name, cell in zip(COLUMNS, rows[0].split("┃")[1:-1], strict=True)
    ]
    bars = {tuple(i for i, char in enumerate(row) if char in "│┃") for row in rows}
    assert len(bars) == 1 and len(next(iter(bars))) == len(COLUMNS) + 1  # one grid for all


# --- Threads -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("threads", "warned"), [(2, False), (3, True)])
def test_more_threads_than_usable_cores_are_warned_of(threads, warned, monkeypatch, capsys):
    monkeypatch.setattr(options, "usable_cores", lambda: 2)
    recipe = recipes.RECIPES["convnet"]
    monkeypatch.setitem(
        recipes.RECIPES, "convnet", dataclasses.replace(recipe, fit=lambda *args: History())
    )
    status, _ = run("train", "--model", "convnet", "--threads", str(threads))
    err = capsys.readouterr().err
    assert status == 0
    expected = f"warning: --threads {threads} is more than the 2 cores this process may use"
    assert (expected in err) == warned, err


def test_usable_cores_are_those_of_the_affinity_mask():
    if not hasattr(os, "sched_getaffinity"):
        pytest.skip("no affinity mask on this system")
    assert options.usable_cores() == len(os.sched_getaffinity(0)) <= os.cpu_count()


def test_train_help_says_when_more_threads_help(capsys):
    run("train", "--help")
    text = " ".join(capsys.readouterr().out.split())
    assert "More threads help only large products" in text and "on a busy machine" in text
