"""Tests for the typedbackprop command line: every command, bad arguments, checkpoints, output."""

import io
import os
import re
import signal
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from rich.console import Console
from threadpoolctl import threadpool_info

import typedbackprop as tbp
from typedbackprop import cli
from typedbackprop.checkpoint import load_checkpoint, read_checkpoint, save_checkpoint
from typedbackprop.cli import main
from typedbackprop.cli.demo import SCENARIOS, Result, results_table
from typedbackprop.initialize import init_layers
from typedbackprop.training import Architecture

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = Path(sysconfig.get_path("scripts")) / (
    "typedbackprop.exe" if os.name == "nt" else "typedbackprop"
)
"""The console script of the environment running the tests, found without PATH: the suite
must pass from a virtual environment that is not activated."""


def run(*argv, width=200):
    """Run the command line in-process; return (status, stdout text)."""
    out = io.StringIO()
    console = Console(file=out, width=width, force_terminal=False, color_system=None)
    status = main(list(argv), console=console)
    return status, out.getvalue()


def run_process(*argv, **kwargs):
    """Run ``python -m typedbackprop`` as a user would; return the completed process."""
    return subprocess.run(
        [sys.executable, "-m", "typedbackprop", *argv],
        capture_output=True,
        text=True,
        check=False,
        cwd=kwargs.pop("cwd", ROOT),
        **kwargs,
    )


def test_demo_runs_every_scenario_and_passes_its_gradient_checks():
    status, out = run("demo", width=80)  # a terminal's usual width: nothing may be cut off
    assert status == 0
    assert "…" not in out and max(len(line) for line in out.splitlines()) <= 80
    for name in ("question", "circles", "iris", "hyperplane"):
        assert name in out
    assert "FAIL" not in out and out.count("│ pass ") == 4
    assert "│        — │" in out  # the question's regression has no accuracy
    assert "every gradient check passed" in out


def demo_results():
    """A row per scenario with made-up numbers, to lay out the table without training."""
    return [
        Result(
            scenario,
            0.0861 * (index + 1),
            0.000271 * (index + 1),
            None if index == 0 else 0.928,
            3.7e-10,
            True,
        )
        for index, scenario in enumerate(SCENARIOS)
    ]


def table_text(width):
    console = Console(file=io.StringIO(), width=width, color_system=None)
    console.print(results_table(demo_results(), console))
    return console.file.getvalue()


def test_the_demo_table_fits_a_wide_console_on_one_line_per_scenario():
    text = table_text(120)
    assert "│ 003 hyperplane │ 128-16-1 sigmoid/sigmoid │ binary CE     │" in text
    assert "…" not in text and max(len(line) for line in text.splitlines()) <= 120


@pytest.mark.parametrize("width", [80, 60, 40])
def test_the_demo_table_is_never_cut_off_in_a_narrow_terminal(width):
    text = table_text(width)
    assert "…" not in text
    assert max(len(line) for line in text.splitlines()) <= width

    # every letter and digit of the wide table is still there, only laid out on more lines
    def characters(text):
        return sorted(character for character in text if character.isalnum())

    assert characters(text) == characters(table_text(200))


def test_at_80_columns_each_scenario_takes_two_whole_lines():
    lines = table_text(80).splitlines()
    assert any("│ 003 " in line and "│ 128-16-1 " in line and "│ binary " in line for line in lines)
    assert any("│ hyperplane │ sigmoid/sigmoid  │ CE " in line for line in lines)


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
        assert image.format == "PNG" and image.size == (1100, 480)  # two panels
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
        (["gradcheck", "3,4", "--eps", "-1"], "argument --eps: expected a positive step"),
        (["gradcheck", "3,4", "--eps", "inf"], "argument --eps: expected a positive step"),
        (["gradcheck", "3,4", "--eps", "nan"], "argument --eps: expected a positive step"),
        (["gradcheck", "3,4", "--eps", "2"], "of at most 1"),
        (["train", "--dataset", "mnist"], "invalid choice: 'mnist'"),
        (["train"], "--dataset"),
        (["train", "--dataset", "iris", "--lr", "fast"], "argument --lr: expected a number"),
        (["train", "--dataset", "iris", "--lr", "inf"], "argument --lr: expected a finite number"),
        (["train", "--dataset", "iris", "--lr", "nan"], "argument --lr: expected a finite number"),
        (["train", "--dataset", "iris", "--lr", "0"], "argument --lr: expected a positive number"),
        (["train", "--dataset", "iris", "--momentum", "1.5"], "--momentum: must lie in [0, 1)"),
        (["train", "--dataset", "iris", "--momentum", "nan"], "--momentum: must lie in [0, 1)"),
        (
            ["train", "--dataset", "iris", "--epochs", "-2"],
            "--epochs: expected a number of at least 0",
        ),
        (["train", "--dataset", "iris", "--loss", "squared_error"], "use --loss cross_entropy"),
        (["train", "--dataset", "circles", "--loss", "cross_entropy"], "needs a multiclass"),
        (["train", "--dataset", "step", "--hidden", "2,x"], "hidden sizes"),
        (
            ["explain", "3,2", "--loss", "cross_entropy", "--output-activation", "identity"],
            "--loss cross_entropy is computed from the logits of a softmax output layer: use "
            "--output-activation softmax (or leave it out), not identity",
        ),
        (
            ["train", "--dataset", "step", "--output-activation", "tanh"],
            "use --output-activation sigmoid (or leave it out), not tanh",
        ),
        (["gradcheck", "3,2", "--seed", "-1"], "a seed must be at least 0"),
        (["gradcheck", "3,2", "--seed", str(2**32)], "a seed must be at most 2**32 - 1"),
        (["train", "--dataset", "iris", "--seed", str(2**40)], "a seed must be at most"),
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
        (["explain", "100000,100000,10"], "needs about 80 GB"),
        (["explain", "3,2", "--batch", "10" * 12], "the shapes read the same at a smaller size"),
        (
            ["gradcheck", "3,4,2", "--batch", "1000000000"],
            "gradcheck 3,4,2 --batch 1000000000 needs about 216 GB (27,000,000,026 float64 values)",
        ),
        (["gradcheck", "100,99,98", "--batch", "5000"], "multiply-adds, more than 1e+10"),
        (["gradcheck", "3,4,2", "--batch", "1000000000"], "use a smaller --batch"),
        (
            ["gradcheck", "3,99999999999999999999,2"],
            "use smaller layer sizes (even one example would not fit)",
        ),
        (["gradcheck", "3,4", "--eps", "1e-300"], "argument --eps: expected a step of at least"),
        (
            ["train", "--dataset", "iris", "--hidden", "99999999999999999999"],
            "a 4-99999999999999999999-3 network on iris needs about",
        ),
        (
            ["train", "--dataset", "digits", "--hidden", "20000,20000"],
            "use fewer or smaller --hidden",
        ),
        (["frobnicate"], "invalid choice"),
        ([], "required"),
    ],
)
def test_bad_arguments_exit_2_with_a_one_line_message_and_no_traceback(argv, message, capsys):
    status, out = run(*argv)
    err = capsys.readouterr().err
    assert status == 2 and out == ""
    assert message in err and "Traceback" not in err
    error_lines = [line for line in err.splitlines() if "error:" in line]
    assert len(error_lines) == 1 and error_lines[0] == err.splitlines()[-1]


def test_a_directory_named_like_an_output_file_is_a_usage_error(tmp_path, capsys):
    for option, name in [("--plot", "loss.png"), ("--save", "net.npz"), ("--animate", "a.gif")]:
        (tmp_path / name).mkdir()
        status, _ = run("train", "--dataset", "iris", option, str(tmp_path / name))
        assert status == 2 and "is a directory" in capsys.readouterr().err


def test_version(capsys):
    status, _ = run("--version")
    assert status == 0 and capsys.readouterr().out == f"typedbackprop {tbp.__version__}\n"


def test_runtime_failures_exit_1_with_a_message(tmp_path, capsys):
    broken = tmp_path / "broken.npz"
    broken.write_bytes(b"garbage")
    status, _ = run("train", "--dataset", "iris", "--load", str(broken))
    err = capsys.readouterr().err
    assert status == 1 and "not a readable typedbackprop checkpoint" in err
    assert "Traceback" not in err
    status, _ = run("train", "--dataset", "iris", "--load", str(tmp_path / "absent.npz"))
    assert status == 1 and "no checkpoint at" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("text", "it is not a .npz archive"),
        ("npy", "it is a single NumPy array (.npy)"),
        ("directory", "it is a directory, not a file"),
        ("nan", "W0 holds 1 NaN or infinite values"),
    ],
)
def test_an_unreadable_checkpoint_is_one_line_on_stderr(tmp_path, kind, message, capsys):
    path = tmp_path / "net.npz"
    if kind == "text":
        path.write_text("hello\n")
    elif kind == "npy":
        with open(path, "wb") as file:
            np.save(file, np.ones(3))
    elif kind == "directory":
        path.mkdir()
    else:
        meta = '{"format": "typedbackprop-checkpoint-1", "sizes": [4, 3], "activation": "relu", '
        meta += '"output_activation": "softmax", "loss": "cross_entropy"}'
        W0 = np.ones((3, 4))
        W0[0, 1] = np.nan
        np.savez(path, meta=np.array(meta), W0=W0, b0=np.zeros(3))
    status, out = run("train", "--dataset", "iris", "--load", str(path))
    err = capsys.readouterr().err
    assert status == 1 and out == ""
    assert err.count("\n") == 1 and message in err and "allow_pickle" not in err


@pytest.mark.parametrize("command", [[], ["demo"], ["explain"], ["gradcheck"], ["train"]])
def test_help_on_every_command(command, capsys):
    status, _ = run(*command, "--help")
    assert status == 0 and "usage: typedbackprop" in capsys.readouterr().out


def test_console_script_and_module_entry_points():
    assert SCRIPT.is_file(), f"no console script at {SCRIPT}: reinstall with pip install -e ."
    for launcher in ([str(SCRIPT)], [sys.executable, "-m", "typedbackprop"]):
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
    "argv",
    [["explain", "3,4,2"], ["gradcheck", "3,4,2"], ["train", "--dataset", "iris", "--epochs", "2"]],
)
def test_a_reader_that_stops_reading_ends_the_command_quietly(argv):
    # `typedbackprop explain 3,4,2 | head -1`, made certain: the pipe is closed before the
    # command writes anything, so every write of it meets a closed pipe.
    read, write = os.pipe()
    os.close(read)
    try:
        result = subprocess.run(
            [sys.executable, "-m", "typedbackprop", *argv],
            stdout=write,
            stderr=subprocess.PIPE,
            text=True,
            check=False,
            cwd=ROOT,
        )
    finally:
        os.close(write)
    assert result.returncode == 0 and result.stderr == ""


def test_piped_train_output_is_the_results_alone():
    result = run_process("train", "--dataset", "iris", "--epochs", "3")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("iris, 4-20-3 relu/softmax, cross_entropy: 3 epochs in ")
    assert lines[1].startswith("test accuracy: ") and len(lines) == 2


@pytest.mark.parametrize("command", ["explain", "gradcheck"])
def test_softmax_over_one_output_warns_that_it_is_constant(command, capsys):
    status, _ = run(command, "3,1", "--output-activation", "softmax")
    err = capsys.readouterr().err
    assert status == 0
    assert err.startswith("typedbackprop: warning: softmax over 1 output is constant")
    assert "every gradient is 0" in err


def test_softmax_over_several_outputs_does_not_warn(capsys):
    assert run("gradcheck", "3,2", "--output-activation", "softmax")[0] == 0
    assert capsys.readouterr().err == ""


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
        assert image.format == "PNG" and image.size == (1100, 480)  # two panels
    with Image.open(animation) as image:
        assert image.format == "GIF" and image.n_frames == 4


def test_digits_animates_two_principal_components(tmp_path):
    animation = tmp_path / "digits.gif"
    status, _ = run("train", "--dataset", "digits", "--epochs", "2", "--animate", str(animation))
    assert status == 0
    with Image.open(animation) as image:
        assert image.format == "GIF" and image.n_frames == 3 and image.size == (600, 550)


def test_a_loaded_checkpoint_plots_what_it_learned_without_an_empty_loss_panel(tmp_path):
    path, plot = tmp_path / "circles.npz", tmp_path / "loaded.png"
    assert run("train", "--dataset", "circles", "--epochs", "3", "--save", str(path))[0] == 0
    status, _ = run("train", "--dataset", "circles", "--load", str(path), "--plot", str(plot))
    assert status == 0
    with Image.open(plot) as image:
        assert image.size == (550, 480)  # one panel: the decision regions


def test_without_matplotlib_plots_fail_before_training(monkeypatch, capsys):
    for name in [name for name in sys.modules if name.split(".")[0] == "matplotlib"]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib now fails

    def no_training(*args, **kwargs):
        raise AssertionError("trained before finding that it cannot plot")

    monkeypatch.setattr(cli.train, "train", no_training)
    status, out = run("train", "--dataset", "circles", "--plot", "loss.png")
    err = capsys.readouterr().err
    assert status == 1 and 'pip install "typedbackprop[plot]"' in err
    assert 'in a clone of the repository: pip install -e ".[plot]"' in err  # both ways
    assert "Traceback" not in err and out == ""


def test_without_scikit_learn_the_error_says_what_to_install(monkeypatch, capsys):
    for name in [name for name in sys.modules if name.split(".")[0] == "sklearn"]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "sklearn", None)
    status, _ = run("train", "--dataset", "iris")
    err = capsys.readouterr().err
    assert status == 1 and 'pip install "typedbackprop[data]"' in err and "Traceback" not in err
    assert 'in a clone of the repository: pip install -e ".[data]"' in err  # both ways


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
    status, _ = run("train", "--dataset", "step", "--load", str(path))
    err = capsys.readouterr().err
    assert status == 2 and "step needs 1 input and 1 output" in err


def test_training_on_from_a_checkpoint(tmp_path):
    path = tmp_path / "iris.npz"
    assert run("train", "--dataset", "iris", "--epochs", "2", "--save", str(path))[0] == 0
    status, out = run("train", "--dataset", "iris", "--load", str(path), "--epochs", "30")
    assert status == 0 and "30 epochs" in out


def test_a_checkpoint_is_tested_on_the_split_it_was_saved_with(tmp_path, capsys):
    path = tmp_path / "digits.npz"
    status, trained = run(
        "train", "--dataset", "digits", "--seed", "3", "--epochs", "2", "--save", str(path)
    )
    assert status == 0 and read_checkpoint(path).split.seed == 3
    # Without --seed, the checkpoint's seed: the same test examples, the same accuracy.
    status, loaded = run("train", "--dataset", "digits", "--load", str(path))
    assert status == 0 and capsys.readouterr().err == ""
    assert loaded.splitlines()[-1] == trained.splitlines()[-1]
    # Another seed would test it on examples it trained on: refused, naming the options.
    status, out = run("train", "--dataset", "digits", "--load", str(path), "--seed", "1")
    err = capsys.readouterr().err
    assert status == 2 and out == ""
    assert (
        f"{path} was trained and tested on the digits split of --seed 3; --seed 1 would test "
        "it on examples it trained on: leave --seed out, or give --seed 3"
    ) in err
    assert run("train", "--dataset", "digits", "--load", str(path), "--seed", "3")[0] == 0


def test_a_checkpoint_without_a_split_record_warns(tmp_path, capsys):
    path = tmp_path / "old.npz"
    architecture = Architecture((4, 5, 3), "relu", "softmax", "cross_entropy")
    save_checkpoint(path, init_layers(architecture.sizes, np.random.default_rng(0)), architecture)
    status, _ = run("train", "--dataset", "iris", "--load", str(path))
    err = capsys.readouterr().err
    assert status == 0
    assert err.startswith(f"typedbackprop: warning: {path}: the checkpoint does not record")


def test_a_saved_checkpoint_refuses_a_split_with_other_settings(tmp_path, capsys):
    import dataclasses

    from typedbackprop.datasets import load_dataset

    path = tmp_path / "iris.npz"
    data = load_dataset("iris", seed=0)
    architecture = Architecture((4, 5, 3), "relu", "softmax", "cross_entropy")
    layers = init_layers(architecture.sizes, np.random.default_rng(0))
    save_checkpoint(path, layers, architecture, dataclasses.replace(data.split, test_fraction=0.5))
    status, _ = run("train", "--dataset", "iris", "--load", str(path))
    err = capsys.readouterr().err
    assert status == 2 and "test_fraction 0.5, not 0.2" in err


def test_ctrl_c_exits_130_without_a_traceback(monkeypatch, capsys):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli.train, "train", interrupted)
    status, _ = run("train", "--dataset", "iris", "--epochs", "1")
    err = capsys.readouterr().err
    assert status == 130 and "interrupted" in err and "Traceback" not in err


def _has_loaded(pid, library):
    """Whether process ``pid`` has mapped a file whose path contains ``library``."""
    try:
        return library in Path(f"/proc/{pid}/maps").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False


@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="needs Linux's /proc")
@pytest.mark.parametrize("launcher", ["script", "module"])
def test_ctrl_c_while_the_command_line_imports_prints_one_line_and_exits_130(launcher):
    # A user's Ctrl-C in the first second: the package is still importing (NumPy is mapped,
    # the command line's main has not started), seconds on a busy machine.
    command = [str(SCRIPT)] if launcher == "script" else [sys.executable, "-m", "typedbackprop"]
    process = subprocess.Popen(
        [*command, "train", "--dataset", "digits"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    try:
        for _ in range(2000):
            if _has_loaded(process.pid, "numpy") or process.poll() is not None:
                break
            time.sleep(0.005)
        assert process.poll() is None, "the command ended before it was interrupted"
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=60)
    finally:
        process.kill()
    assert (process.returncode, out, err) == (130, "", "typedbackprop: interrupted\n")


def test_the_interrupt_guard_is_for_the_command_line_alone(monkeypatch):
    from typedbackprop import _interrupt

    monkeypatch.setattr(sys, "argv", ["/usr/bin/pytest"])
    assert not _interrupt.is_command_line()  # a library user's process: SIGINT left alone
    monkeypatch.setattr(sys, "argv", [str(SCRIPT), "train"])
    assert _interrupt.is_command_line()
    monkeypatch.setattr(sys, "argv", ["-m"])
    monkeypatch.setattr(sys, "orig_argv", [sys.executable, "-X", "dev", "-m", "typedbackprop"])
    assert _interrupt.is_command_line()
    monkeypatch.setattr(sys, "orig_argv", [sys.executable, "-m", "typedbackprop_other"])
    assert not _interrupt.is_command_line()


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


def test_gradcheck_says_a_gradient_0_on_both_sides_has_nothing_to_compare(monkeypatch):
    right = cli.gradcheck.gradcheck_network

    def every_hidden_unit_off(layers, *args, **kwargs):
        layers = [tbp.Dense(layers[0].W, np.full(layers[0].b.shape, -100.0)), *layers[1:]]
        return right(layers, *args, **kwargs)

    monkeypatch.setattr(cli.gradcheck, "gradcheck_network", every_hidden_unit_off)
    status, out = run("gradcheck", "3,4,2", "--activation", "relu")
    assert status == 0
    verdicts = {line.split()[1]: line.split("│")[-2].strip() for line in out.splitlines()
                if line.startswith("│ ") and "(" in line}  # fmt: skip
    assert verdicts == {
        "W1": "0: nothing to compare",
        "b1": "0: nothing to compare",
        "W2": "0: nothing to compare",
        "b2": "ok",
    }
    assert "b1: gradient identically 0 (analytic and numerical within atol=1e-08 of 0)" in out


def test_train_end_to_end_through_the_console_script(tmp_path):
    result = subprocess.run(
        [str(SCRIPT), "train", "--dataset", "circles", "--epochs", "5", "--save",
         str(tmp_path / "net.npz")],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1].startswith("test accuracy: ")
    assert load_checkpoint(tmp_path / "net.npz")[1].sizes == (2, 3, 3, 1)


@pytest.mark.parametrize("module", ["demo", "explain", "gradcheck", "train"])
def test_a_module_per_command(module):
    command = getattr(cli, module)
    assert command.__name__ == f"typedbackprop.cli.{module}"
    assert callable(command.add_parser) and callable(command.run)


@pytest.mark.parametrize(
    "argv",
    [["explain", "3,4,2"], ["gradcheck", "3,4,2"], ["train", "--dataset", "iris"]],
)
def test_a_perceptron_is_offered_only_the_losses_of_one_target_per_example(argv, capsys):
    status, _ = run(*argv, "--loss", "token_cross_entropy")
    assert status == 2
    assert "argument --loss: invalid choice: 'token_cross_entropy'" in capsys.readouterr().err
    run(*argv[:1], "--help")
    offered = re.search(r"--loss \{([\w,]+)\}", capsys.readouterr().out)[1].split(",")
    assert offered == [name for name, entry in tbp.nn.LOSSES.items() if entry.per_example]
    assert offered == ["squared_error", "binary_cross_entropy", "cross_entropy"]


def test_a_run_whose_test_loss_explodes_warns_in_one_line(capsys):
    status, out = run("train", "--dataset", "step", "--lr", "1e5", "--epochs", "5")
    err = capsys.readouterr().err
    assert status == 0 and out.rstrip().splitlines()[-1].startswith("test accuracy: ")
    assert err.startswith("typedbackprop: warning: training diverged: the test loss grew from ")
    assert err.endswith("; try a smaller --lr than 100000\n") and err.count("\n") == 1


def test_a_run_that_learns_does_not_warn(capsys):
    status, _ = run("train", "--dataset", "step", "--epochs", "5")
    assert status == 0 and capsys.readouterr().err == ""


def test_a_run_that_overflows_on_the_test_set_is_a_one_line_error(capsys):
    status, _ = run("train", "--dataset", "iris", "--lr", "1e5", "--epochs", "5")
    err = capsys.readouterr().err
    assert status == 1 and err.count("\n") == 1
    assert err.startswith("typedbackprop: error: training diverged in epoch 4 (overflow")


@pytest.mark.parametrize(("columns", "width"), [("80", 80), ("57", 57), (None, 120), ("x", 120)])
def test_output_to_a_pipe_is_120_wide_unless_columns_says(monkeypatch, columns, width):
    widths = []
    monkeypatch.setattr(cli.demo, "run", lambda args, console: widths.append(console.width) or 0)
    if columns is None:
        monkeypatch.delenv("COLUMNS", raising=False)
    else:
        monkeypatch.setenv("COLUMNS", columns)
    monkeypatch.setattr(sys, "stdout", io.StringIO())  # not a terminal
    assert main(["demo"]) == 0
    assert widths == [width]


def blas_threads_now():
    """The BLAS libraries' thread counts, as threadpoolctl reads them."""
    return [pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"]


@pytest.mark.parametrize(("threads", "expected"), [([], None), (["--threads", "3"], 3)])
def test_train_threads_limits_blas_threads_while_the_perceptron_trains(
    monkeypatch, threads, expected
):
    default = blas_threads_now()
    assert default, "NumPy's BLAS is not one threadpoolctl knows"
    seen = []
    real_train = cli.train.train

    def train(*args, **kwargs):
        seen.append(blas_threads_now())
        return real_train(*args, **kwargs)

    monkeypatch.setattr(cli.train, "train", train)
    status, _ = run("train", "--dataset", "step", "--epochs", "1", *threads)
    assert status == 0
    assert seen == [default if expected is None else [expected] * len(default)]
    assert blas_threads_now() == default
