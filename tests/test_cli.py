"""Tests for the typedbackprop command line: every command, bad arguments, pictures."""

import io
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image
from rich.console import Console

from typedbackprop import cli
from typedbackprop.checkpoint import load_checkpoint, save_checkpoint
from typedbackprop.cli import main
from typedbackprop.initialize import init_layers
from typedbackprop.training import Architecture


def run(*argv):
    """Run the command line in-process; return (status, stdout text, stderr text)."""
    out = io.StringIO()
    console = Console(file=out, width=200, force_terminal=False, color_system=None)
    status = main(list(argv), console=console)
    return status, out.getvalue()


def test_demo_runs_every_scenario_and_passes_its_gradient_checks():
    status, out = run("demo")
    assert status == 0
    for name in ("question", "circles", "iris", "hyperplane"):
        assert name in out
    assert "FAIL" not in out and out.count("│ pass ") == 4
    assert "— " in out  # the question's regression has no accuracy
    assert "every gradient check passed" in out


def test_explain_prints_the_question_network():
    status, out = run("explain", "3,4,4,2", "--batch", "5")
    assert status == 0
    assert "grad_W3 (2, 4) = delta3 (2, 5) @ a2.T (5, 4)" in out
    assert "grad_a2 (4, 5) = W3.T (4, 2) @ delta3 (2, 5)" in out


def test_explain_picks_the_output_activation_a_loss_needs():
    status, out = run("explain", "4,20,3", "--activation", "relu", "--loss", "cross_entropy")
    assert status == 0 and "a2 (3, 5) = softmax(z2)" in out


def test_gradcheck_table_in_scientific_notation():
    status, out = run("gradcheck", "3,4,4,2", "--batch", "5")
    assert status == 0
    for name in ("W1", "b1", "W2", "b2", "W3", "b3"):
        assert f" {name} " in out
    assert "e-" in out and out.strip().endswith("passed")


def test_train_reports_test_accuracy_last(tmp_path):
    status, out = run("train", "--dataset", "iris", "--epochs", "20")
    assert status == 0
    last = out.strip().splitlines()[-1]
    assert last.startswith("test accuracy: 0.") or last == "test accuracy: 1.000"
    assert float(last.split(": ")[1]) >= 0.85


def test_train_writes_valid_pictures(tmp_path):
    plot, animation = tmp_path / "loss.png", tmp_path / "hidden.gif"
    status, _ = run(
        "train", "--dataset", "circles", "--epochs", "8", "--plot", str(plot), "--animate",
        str(animation),
    )  # fmt: skip
    assert status == 0
    with Image.open(plot) as image:
        assert image.format == "PNG" and image.size[0] > 500 and image.size[1] > 300
    with Image.open(animation) as image:
        assert image.format == "GIF" and image.n_frames == 9  # the start and 8 epochs


def test_train_save_then_load_gives_the_same_accuracy(tmp_path):
    checkpoint = tmp_path / "iris.npz"
    status, trained = run("train", "--dataset", "iris", "--epochs", "10", "--save", str(checkpoint))
    assert status == 0 and checkpoint.exists()
    layers, architecture = load_checkpoint(checkpoint)
    assert architecture.sizes == (4, 20, 3) and architecture.loss == "cross_entropy"
    status, loaded = run("train", "--dataset", "iris", "--load", str(checkpoint))
    assert status == 0
    assert trained.strip().splitlines()[-1] == loaded.strip().splitlines()[-1]


def test_train_options_override_the_defaults():
    status, out = run(
        "train", "--dataset", "step", "--hidden", "3", "--activation", "tanh", "--epochs", "3",
        "--lr", "0.5", "--momentum", "0", "--batch-size", "50", "--init", "small_normal",
    )  # fmt: skip
    assert status == 0 and "3 epochs" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["explain", "3,x"], "comma-separated whole numbers"),
        (["explain", "3"], "at least two layer sizes"),
        (["explain", "3,0,2"], "at least two layer sizes"),
        (["explain", "3,4", "--batch", "0"], "at least 1"),
        (["explain", "3,4", "--activation", "swish"], "invalid choice: 'swish'"),
        (["gradcheck", "3,4", "--eps", "-1"], "positive"),
        (["train", "--dataset", "mnist"], "invalid choice: 'mnist'"),
        (["train"], "--dataset"),
        (["train", "--dataset", "iris", "--lr", "fast"], "expected a number"),
        (["train", "--dataset", "iris", "--momentum", "1.5"], "--momentum must lie in [0, 1)"),
        (["train", "--dataset", "iris", "--epochs", "-2"], "--epochs must be at least 0"),
        (["train", "--dataset", "iris", "--loss", "squared_error"], "use --loss cross_entropy"),
        (["train", "--dataset", "circles", "--loss", "cross_entropy"], "needs a multiclass"),
        (["train", "--dataset", "step", "--hidden", "2,x"], "hidden sizes"),
        (
            ["explain", "3,2", "--loss", "cross_entropy", "--output-activation", "identity"],
            "use output_activation='softmax'",
        ),
        (["gradcheck", "3,2", "--seed", "-1"], "a seed must be at least 0"),
        (["train", "--dataset", "iris", "--plot", "loss.gif"], "must end in .png"),
        (["train", "--dataset", "iris", "--animate", "hidden.png"], "must end in .gif"),
        (["train", "--dataset", "iris", "--plot", "absent/loss.png"], "no directory absent"),
        (["train", "--dataset", "iris", "--save", "absent/net.npz"], "no directory absent"),
        (
            [
                "train",
                "--dataset",
                "iris",
                "--load",
                "x.npz",
                "--hidden",
                "8",
                "--loss",
                "cross_entropy",
            ],
            "--hidden, --loss: the checkpoint given to --load fixes the network",
        ),
        (["explain", "100000,100000,10"], "more than 50,000,000"),
        (["frobnicate"], "invalid choice"),
        ([], "required"),
    ],
)
def test_bad_arguments_exit_2_with_a_message_and_no_traceback(argv, message, capsys):
    status, _ = run(*argv)
    err = capsys.readouterr().err
    assert status == 2
    assert message in err and "Traceback" not in err


def test_runtime_failures_exit_1_with_a_message(tmp_path, capsys):
    broken = tmp_path / "broken.npz"
    broken.write_bytes(b"garbage")
    status, _ = run("train", "--dataset", "iris", "--load", str(broken))
    err = capsys.readouterr().err
    assert status == 1 and "not a readable typedbackprop checkpoint" in err
    assert "Traceback" not in err
    status, _ = run("train", "--dataset", "iris", "--load", str(tmp_path / "absent.npz"))
    assert status == 1 and "no checkpoint at" in capsys.readouterr().err


@pytest.mark.parametrize("command", [[], ["demo"], ["explain"], ["gradcheck"], ["train"]])
def test_help_on_every_command(command, capsys):
    status, _ = run(*command, "--help")
    assert status == 0 and "usage: typedbackprop" in capsys.readouterr().out


def test_console_script_and_module_entry_points():
    for launcher in (["typedbackprop"], [sys.executable, "-m", "typedbackprop"]):
        result = subprocess.run(
            [*launcher, "explain", "2,3,1", "--batch", "4"],
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        assert "grad_W2 (1, 3) = delta2 (1, 4) @ a1.T (4, 3)" in result.stdout
        bad = subprocess.run(
            [*launcher, "explain", "2,a"], capture_output=True, text=True, check=False
        )
        assert bad.returncode == 2 and "Traceback" not in bad.stderr


@pytest.mark.parametrize(
    ("dataset", "target"), [("circles", 0.95), ("iris", 0.90), ("digits", 0.95)]
)
def test_the_defaults_reach_the_target_accuracy(dataset, target):
    # Accuracy only: the times are measured by benchmarks/accuracy.py, not by a timed test.
    status, out = run("train", "--dataset", dataset)
    assert status == 0
    assert float(out.strip().splitlines()[-1].removeprefix("test accuracy: ")) >= target


def test_train_on_the_step_draws_the_output_curve_and_one_unit_animates(tmp_path):
    plot, animation = tmp_path / "step.png", tmp_path / "one.gif"
    status, out = run(
        "train", "--dataset", "step", "--epochs", "3", "--hidden", "1", "--plot", str(plot),
        "--animate", str(animation),
    )  # fmt: skip
    assert status == 0 and "step, 1-1-1 sigmoid/sigmoid" in out
    with Image.open(plot) as image:
        assert image.format == "PNG" and image.size == (1100, 450)  # two panels
    with Image.open(animation) as image:
        assert image.format == "GIF" and image.n_frames == 4


def test_digits_animates_two_principal_components(tmp_path):
    animation = tmp_path / "digits.gif"
    status, _ = run("train", "--dataset", "digits", "--epochs", "2", "--animate", str(animation))
    assert status == 0
    with Image.open(animation) as image:
        assert image.format == "GIF" and image.n_frames == 3 and image.size == (500, 500)


def test_without_matplotlib_plots_fail_before_training(monkeypatch, capsys):
    for name in [name for name in sys.modules if name.split(".")[0] == "matplotlib"]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib now fails

    def no_training(*args, **kwargs):
        raise AssertionError("trained before finding that it cannot plot")

    monkeypatch.setattr(cli, "train", no_training)
    status, out = run("train", "--dataset", "circles", "--plot", "loss.png")
    err = capsys.readouterr().err
    assert status == 1 and 'pip install "typedbackprop[plot]"' in err
    assert "Traceback" not in err and out == ""


def test_without_scikit_learn_the_error_says_what_to_install(monkeypatch, capsys):
    for name in [name for name in sys.modules if name.split(".")[0] == "sklearn"]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "sklearn", None)
    status, _ = run("train", "--dataset", "iris")
    err = capsys.readouterr().err
    assert status == 1 and 'pip install "typedbackprop[data]"' in err and "Traceback" not in err


def test_a_diverging_run_says_so(capsys):
    status, _ = run("train", "--dataset", "iris", "--lr", "1e6", "--epochs", "20")
    err = capsys.readouterr().err
    assert status == 1 and "diverged" in err and "smaller learning rate" in err
    assert "Traceback" not in err and "RuntimeWarning" not in err


def test_a_checkpoint_for_another_data_set_is_refused(tmp_path, capsys):
    path = tmp_path / "circles.npz"
    architecture = Architecture((2, 3, 3, 1), "sigmoid", "sigmoid", "squared_error")
    save_checkpoint(path, init_layers(architecture.sizes, np.random.default_rng(0)), architecture)
    status, _ = run("train", "--dataset", "iris", "--load", str(path))
    err = capsys.readouterr().err
    assert status == 2 and "iris needs 4 inputs and 3 outputs" in err


def test_training_on_from_a_checkpoint(tmp_path):
    path = tmp_path / "iris.npz"
    assert run("train", "--dataset", "iris", "--epochs", "2", "--save", str(path))[0] == 0
    status, out = run("train", "--dataset", "iris", "--load", str(path), "--epochs", "30")
    assert status == 0 and "30 epochs" in out


def test_ctrl_c_exits_130_without_a_traceback(monkeypatch, capsys):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "train", interrupted)
    status, _ = run("train", "--dataset", "iris", "--epochs", "1")
    err = capsys.readouterr().err
    assert status == 130 and "interrupted" in err and "Traceback" not in err


@pytest.mark.parametrize(
    "options",
    [
        ["--activation", "relu", "--loss", "cross_entropy"],
        ["--activation", "tanh", "--loss", "binary_cross_entropy"],
        ["--activation", "leaky_relu", "--output-activation", "softmax"],
    ],
)
def test_gradcheck_passes_for_every_loss(options):
    status, out = run("gradcheck", "5,4,3", "--batch", "6", *options)
    assert status == 0 and out.strip().endswith("passed") and "FAILED" not in out


def test_train_end_to_end_through_the_console_script(tmp_path):
    result = subprocess.run(
        ["typedbackprop", "train", "--dataset", "circles", "--epochs", "5", "--save",
         str(tmp_path / "net.npz")],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1].startswith("test accuracy: ")
    assert load_checkpoint(tmp_path / "net.npz")[1].sizes == (2, 3, 3, 1)
