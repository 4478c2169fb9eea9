"""The ``typedbackprop`` command line: ``demo``, ``explain``, ``gradcheck`` and ``train``.

Every command has ``--help``. Bad arguments print the command's usage and one line saying what
is wrong, and exit with status 2; a failure while running (a missing optional extra, an
unreadable checkpoint, a diverging run) prints one line and exits with status 1; Ctrl-C exits
with status 130. None of them prints a traceback.
"""

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, cast, get_args

import numpy as np
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from typedbackprop.checking import Array, IntArray
from typedbackprop.checkpoint import load_checkpoint, save_checkpoint
from typedbackprop.datasets import Dataset, DatasetName, load_dataset
from typedbackprop.explain import explain
from typedbackprop.explain_batch_first import LAYOUTS
from typedbackprop.gradcheck import GradcheckReport, gradcheck_network
from typedbackprop.initialize import InitName, init_layers
from typedbackprop.nn.network import (
    ActivationName,
    Dense,
    LossName,
    OutputActivationName,
    check_names,
)
from typedbackprop.plots import animate_hidden, check_image_path, plot_training, require_plotting
from typedbackprop.training import Architecture, History, evaluate, train

__all__ = ["main", "TrainingDefaults", "DEFAULTS"]


@dataclass(frozen=True)
class TrainingDefaults:
    """A data set's default network and hyperparameters for ``typedbackprop train``."""

    hidden: tuple[int, ...]
    activation: ActivationName
    output_activation: OutputActivationName
    loss: LossName
    init: InitName
    epochs: int
    batch_size: int
    learning_rate: float
    momentum: float


DEFAULTS: dict[str, TrainingDefaults] = {
    # seed 001's 1-D step, with a small sigmoid network and a sigmoid output from logits
    "step": TrainingDefaults((4,), "sigmoid", "sigmoid", "binary_cross_entropy", "glorot_uniform",
                             100, 32, 1.0, 0.9),
    # seed 001's 2-3-3-1 sigmoid network with squared error
    "circles": TrainingDefaults((3, 3), "sigmoid", "sigmoid", "squared_error", "glorot_uniform",
                                200, 10, 1.0, 0.9),
    # seed 002's 4-20-3 ReLU + softmax network, Glorot-uniform weights
    "iris": TrainingDefaults((20,), "relu", "softmax", "cross_entropy", "glorot_uniform",
                             50, 16, 0.05, 0.9),
    # scikit-learn's 8×8 digits: one ReLU layer of 64 units, He-normal weights for ReLU
    "digits": TrainingDefaults((64,), "relu", "softmax", "cross_entropy", "he_normal",
                               20, 32, 0.05, 0.9),
}  # fmt: skip


GRADCHECK_EPS = 1e-5
"""The central-difference step of ``demo`` and ``gradcheck``. The error of a central difference
is about ``h² |f‴| / 6`` from truncation plus ``ε |f| / h`` from rounding, smallest near
``h = (3 ε)^(1/3) ≈ 7e-6`` in float64 for a loss and derivatives of unit scale."""


PLOT_SUFFIXES = (".png", ".pdf", ".svg", ".jpg", ".jpeg")
"""The image formats ``--plot`` writes, by file name ending."""


class UsageError(Exception):
    """A bad argument found after parsing; reported like argparse's own errors (status 2)."""


def _sizes(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"layer sizes must be comma-separated whole numbers such as 3,4,4,2; got {text!r}"
        ) from None
    if len(sizes) < 2 or min(sizes) < 1:
        raise argparse.ArgumentTypeError(
            f"need at least two layer sizes, each at least 1 (input,...,output); got {text!r}"
        )
    return sizes


def _hidden_sizes(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"hidden sizes must be comma-separated whole numbers such as 20 or 8,8; got {text!r}"
        ) from None
    if min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"every hidden size must be at least 1; got {text!r}")
    return sizes


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a number of at least 1, got {value}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {value}")
    return value


def _add_network_options(parser: argparse.ArgumentParser, *, defaults: bool) -> None:
    parser.add_argument(
        "--activation",
        choices=get_args(ActivationName),
        default="sigmoid" if defaults else None,
        help="hidden layers' activation" + (" (default: sigmoid)" if defaults else ""),
    )
    parser.add_argument(
        "--output-activation",
        choices=get_args(OutputActivationName),
        default=None,
        help="last layer's activation (default: identity, or what the loss needs)",
    )
    parser.add_argument(
        "--loss",
        choices=get_args(LossName),
        default="squared_error" if defaults else None,
        help="loss" + (" (default: squared_error)" if defaults else ""),
    )


def _output_for(loss: str, output_activation: str | None) -> OutputActivationName:
    """The output activation a loss needs, unless one was given (argparse checked the name)."""
    if output_activation is None:
        needed = {"binary_cross_entropy": "sigmoid", "cross_entropy": "softmax"}
        output_activation = needed.get(loss, "identity")
    return cast(OutputActivationName, output_activation)


def _random_problem(
    sizes: Sequence[int], batch: int, loss: str, rng: np.random.Generator
) -> tuple[Array, Array | IntArray]:
    x = rng.standard_normal((sizes[0], batch))
    if loss == "cross_entropy":
        return x, rng.integers(0, sizes[-1], size=batch)
    if loss == "binary_cross_entropy":
        return x, (rng.random((sizes[-1], batch)) < 0.5).astype(np.float64)
    return x, rng.standard_normal((sizes[-1], batch))


# --- explain and gradcheck -----------------------------------------------------------------


def _names(args: argparse.Namespace) -> OutputActivationName:
    """The output activation for ``args``, after checking that it goes with the loss."""
    output = _output_for(args.loss, args.output_activation)
    try:
        check_names(args.activation, output, args.loss)
    except ValueError as error:
        raise UsageError(str(error)) from None
    return output


MAX_EXPLAIN_VALUES = 50_000_000
"""``explain`` runs the real network: at most this many parameters and activations (400 MB)."""
MAX_GRADCHECK_PARAMETERS = 20_000
"""``gradcheck`` evaluates the loss twice per parameter: at most this many (seconds, not hours)."""


def _parameter_count(sizes: Sequence[int]) -> int:
    return sum((n_in + 1) * n_out for n_in, n_out in zip(sizes[:-1], sizes[1:], strict=True))


def _run_explain(args: argparse.Namespace, console: Console) -> int:
    output = _names(args)
    values = _parameter_count(args.sizes) + 3 * sum(args.sizes) * args.batch
    if values > MAX_EXPLAIN_VALUES:
        raise UsageError(
            f"explain runs the network for real, and {values:,} parameters and activations "
            f"are more than {MAX_EXPLAIN_VALUES:,}: the shapes read the same at a smaller size"
        )
    for line in explain(args.sizes, args.batch, args.activation, output, args.loss, args.layout):
        console.print(line, highlight=False, markup=False, soft_wrap=True)
    return 0


def _run_gradcheck(args: argparse.Namespace, console: Console) -> int:
    output = _names(args)
    count = _parameter_count(args.sizes)
    if count > MAX_GRADCHECK_PARAMETERS:
        raise UsageError(
            f"{count:,} parameters: gradcheck evaluates the loss twice per parameter, so it "
            f"takes at most {MAX_GRADCHECK_PARAMETERS:,}; a smaller network tests the same code"
        )
    rng = np.random.default_rng(args.seed)
    layers = init_layers(args.sizes, rng, "glorot_uniform")
    layers = [Dense(layer.W, rng.standard_normal(layer.b.shape)) for layer in layers]
    x, y = _random_problem(args.sizes, args.batch, args.loss, rng)
    report = gradcheck_network(layers, x, y, args.activation, output, args.loss, eps=args.eps)
    table = Table(
        title=f"{'-'.join(map(str, args.sizes))}, batch {args.batch}, {args.activation}/{output}, "
        f"{args.loss}: analytic against central differences (eps={args.eps:g})"
    )
    for column in [
        "parameter",
        "shape",
        "relative error",
        "max abs error",
        "worst entry",
        "verdict",
    ]:
        table.add_column(column, justify="right" if "error" in column else "left")
    shapes = [array.shape for layer in layers for array in (layer.W, layer.b)]
    for argument, shape in zip(report.arguments, shapes, strict=True):
        table.add_row(
            argument.name,
            str(shape),
            f"{argument.relative_error:.2e}",
            f"{argument.max_abs_error:.2e}",
            str(list(argument.worst_input_index)),
            "ok" if argument.passed else "FAILED",
        )
    console.print(table)
    console.print("passed" if report.passed else "FAILED", highlight=False)
    return 0 if report.passed else 1


# --- train ---------------------------------------------------------------------------------


def _architecture(
    args: argparse.Namespace, data: Dataset, defaults: TrainingDefaults
) -> Architecture:
    hidden = args.hidden if args.hidden is not None else defaults.hidden
    loss = args.loss or defaults.loss
    activation = args.activation or defaults.activation
    output = args.output_activation or (
        defaults.output_activation if args.loss is None else _output_for(loss, None)
    )
    if loss == "cross_entropy" and data.task != "multiclass":
        raise UsageError(f"--loss cross_entropy needs a multiclass data set; {data.name} is binary")
    if loss != "cross_entropy" and data.task == "multiclass":
        raise UsageError(f"{data.name} has integer class labels: use --loss cross_entropy")
    try:
        return Architecture(
            (data.x_train.shape[0], *hidden, data.outputs), activation, output, loss
        )
    except ValueError as error:
        raise UsageError(str(error)) from None


def _check_train_arguments(args: argparse.Namespace) -> None:
    """Everything that can be wrong with the arguments, found before any time is spent."""
    if args.momentum is not None and not 0 <= args.momentum < 1:
        raise UsageError(f"--momentum must lie in [0, 1), got {args.momentum}")
    if args.epochs is not None and args.epochs < 0:
        raise UsageError(f"--epochs must be at least 0, got {args.epochs}")
    if args.load:
        fixed = ["hidden", "activation", "output_activation", "loss", "init"]
        given = [name for name in fixed if getattr(args, name) is not None]
        if given:
            options = ", ".join("--" + name.replace("_", "-") for name in given)
            raise UsageError(f"{options}: the checkpoint given to --load fixes the network")
    try:
        if args.plot:
            check_image_path(args.plot, PLOT_SUFFIXES)
        if args.animate:
            check_image_path(args.animate, (".gif",))
        if args.save:
            check_image_path(args.save, (".npz",))
    except ValueError as error:
        raise UsageError(str(error)) from None
    if args.plot or args.animate:
        require_plotting(animation=bool(args.animate))  # ImportError: exit 1 with what to install


def _load_network(path: str, data: Dataset) -> tuple[list[Dense], Architecture]:
    layers, architecture = load_checkpoint(path)
    features, outputs = data.x_train.shape[0], data.outputs
    if (architecture.sizes[0], architecture.sizes[-1]) != (features, outputs):
        raise UsageError(
            f"{path} holds a {architecture.describe()} network; {data.name} needs {features} "
            f"inputs and {outputs} output{'s' if outputs > 1 else ''}"
        )
    if (data.task == "multiclass") != (architecture.loss == "cross_entropy"):
        raise UsageError(
            f"{path} was trained with {architecture.loss}, which {data.name} cannot use"
        )
    return layers, architecture


def _run_train(args: argparse.Namespace, console: Console) -> int:
    _check_train_arguments(args)
    defaults = DEFAULTS[args.dataset]
    data = load_dataset(args.dataset, seed=args.seed)
    rng = np.random.default_rng(args.seed)
    if args.load:
        layers, architecture = _load_network(args.load, data)
    else:
        architecture = _architecture(args, data, defaults)
        layers = init_layers(architecture.sizes, rng, args.init or defaults.init)
    epochs = args.epochs if args.epochs is not None else (0 if args.load else defaults.epochs)
    snapshots: list[list[Dense]] = [layers]
    captions = ["epoch 0"]
    history = History()
    started = time.perf_counter()
    if epochs > 0:
        every = max(1, epochs // 40)  # at most about 40 frames
        with Progress(
            TextColumn(f"training {data.name} {'-'.join(map(str, architecture.sizes))}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]}"),
            TimeElapsedColumn(),
            console=console,
            transient=not console.is_terminal,
        ) as progress:
            task = progress.add_task("epochs", total=epochs, loss="—")

            def on_epoch(epoch: int, current: list[Dense], history: History) -> None:
                progress.update(task, advance=1, loss=f"{history.loss[-1]:.4g}")
                if args.animate and (epoch % every == 0 or epoch == epochs):
                    snapshots.append(current)
                    captions.append(f"epoch {epoch}")

            layers, history = train(
                layers,
                architecture,
                data.x_train,
                data.y_train,
                epochs=epochs,
                batch_size=args.batch_size or defaults.batch_size,
                learning_rate=args.lr or defaults.learning_rate,
                momentum=defaults.momentum if args.momentum is None else args.momentum,
                rng=rng,
                x_test=data.x_test,
                y_test=data.y_test,
                on_epoch=on_epoch,
            )
    elapsed = time.perf_counter() - started
    test_loss, test_accuracy = evaluate(layers, architecture, data.x_test, data.y_test)
    if args.save:
        save_checkpoint(args.save, layers, architecture)
        console.print(f"saved {args.save}", highlight=False)
    if args.plot:
        plot_training(args.plot, history, layers, architecture, data)
        console.print(f"wrote {args.plot}", highlight=False)
    if args.animate:
        animate_hidden(args.animate, snapshots, architecture, data, captions)
        console.print(f"wrote {args.animate}", highlight=False)
    console.print(
        f"{data.name}, {architecture.describe()}: {epochs} epochs in {elapsed:.1f} s; "
        f"test loss {test_loss:.4g}",
        highlight=False,
    )
    shown = "n/a" if test_accuracy is None else f"{test_accuracy:.3f}"
    console.print(f"test accuracy: {shown}", highlight=False)
    return 0


# --- demo ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scenario:
    """One row of ``typedbackprop demo``: a seed's network, trained, then gradient-checked."""

    name: str
    source: str
    load: Callable[[int], tuple[Array, Array | IntArray, Array, Array | IntArray]]
    architecture: Architecture
    init: InitName
    epochs: int
    batch_size: int
    learning_rate: float
    momentum: float


def _question_data(seed: int) -> tuple[Array, Array, Array, Array]:
    """The question's random inputs, with targets from a fixed random linear map plus noise.

    Targets drawn independently of the inputs, as in the question, leave nothing to learn; a
    hidden linear map makes the loss a measure of learning.
    """
    rng = np.random.default_rng(seed)
    teacher = rng.standard_normal((2, 3))
    x = rng.random((3, 200))
    y = teacher @ x + 0.05 * rng.standard_normal((2, 200))
    return x[:, :150], y[:, :150], x[:, 150:], y[:, 150:]


def _teacher_data(seed: int) -> tuple[Array, Array, Array, Array]:
    """Seed 003's 128-16-1 setting: 128 Gaussian features, a label from a hidden hyperplane."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((128, 1500))
    y = (rng.standard_normal(128) @ x > 0).astype(np.float64)[np.newaxis, :]
    return x[:, :1000], y[:, :1000], x[:, 1000:], y[:, 1000:]


def _dataset_loader(name: str) -> Callable[[int], tuple[Array, Any, Array, Any]]:
    def load(seed: int) -> tuple[Array, Any, Array, Any]:
        data = load_dataset(name, seed=seed)
        return data.x_train, data.y_train, data.x_test, data.y_test

    return load


SCENARIOS = [
    Scenario("question", "000", _question_data,
             Architecture((3, 4, 4, 2), "sigmoid", "identity", "squared_error"),
             "small_normal", 200, 10, 0.5, 0.9),
    Scenario("circles", "001", _dataset_loader("circles"),
             Architecture((2, 3, 3, 1), "sigmoid", "sigmoid", "squared_error"),
             "glorot_uniform", 200, 10, 1.0, 0.9),
    Scenario("iris", "002", _dataset_loader("iris"),
             Architecture((4, 20, 3), "relu", "softmax", "cross_entropy"),
             "glorot_uniform", 50, 16, 0.05, 0.9),
    Scenario("hyperplane", "003", _teacher_data,
             Architecture((128, 16, 1), "sigmoid", "sigmoid", "binary_cross_entropy"),
             "glorot_uniform", 60, 20, 0.5, 0.9),
]  # fmt: skip
"""The seeds' networks: the question's 3-4-4-2 regression, seed 001's circles, seed 002's iris,
seed 003's 128-16-1 binary classifier."""


def _gradcheck_scenario(
    architecture: Architecture, x: Array, y: Array | IntArray, rng: np.random.Generator
) -> GradcheckReport:
    """Gradient-check ``loss_and_grads`` for the scenario's network on 8 training examples.

    The check runs at random parameters of unit scale, where no unit is saturated and the
    gradients are not small against the loss: at a trained minimum, central differences would
    mostly measure their own rounding.
    """
    sizes = architecture.sizes
    probe = [
        Dense(rng.standard_normal((n_out, n_in)) / np.sqrt(n_in), rng.standard_normal(n_out))
        for n_in, n_out in zip(sizes[:-1], sizes[1:], strict=True)
    ]
    examples = slice(0, 8)
    y_sample = y[examples] if y.ndim == 1 else y[:, examples]
    return gradcheck_network(
        probe,
        x[:, examples],
        y_sample,
        architecture.activation,
        architecture.output_activation,
        architecture.loss,
        eps=GRADCHECK_EPS,
    )


LOSS_LABELS = {
    "squared_error": "squared error",
    "binary_cross_entropy": "binary CE",
    "cross_entropy": "softmax CE",
}


def _run_demo(args: argparse.Namespace, console: Console) -> int:
    table = Table(title="the seeds' networks: trained, then gradient-checked")
    for column, justify in [
        ("scenario", "left"),
        ("network", "left"),
        ("loss", "left"),
        ("test loss", "right"),
        ("accuracy", "right"),
        ("max rel. error", "right"),
        ("gradcheck", "left"),
    ]:
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    all_passed = True
    started = time.perf_counter()
    for scenario in SCENARIOS:
        x_train, y_train, x_test, y_test = scenario.load(args.seed)
        rng = np.random.default_rng(args.seed)
        architecture = scenario.architecture
        layers = init_layers(architecture.sizes, rng, scenario.init)
        before, _ = evaluate(layers, architecture, x_test, y_test)
        with console.status(f"training {scenario.name}"):
            layers, _ = train(
                layers,
                architecture,
                x_train,
                y_train,
                epochs=scenario.epochs,
                batch_size=scenario.batch_size,
                learning_rate=scenario.learning_rate,
                momentum=scenario.momentum,
                rng=rng,
            )
        after, test_accuracy = evaluate(layers, architecture, x_test, y_test)
        report = _gradcheck_scenario(architecture, x_train, y_train, rng)
        all_passed &= report.passed
        worst = max(argument.relative_error for argument in report.arguments)
        sizes = "-".join(str(size) for size in architecture.sizes)
        table.add_row(
            f"{scenario.source} {scenario.name}",
            f"{sizes} {architecture.activation}/{architecture.output_activation}",
            LOSS_LABELS[architecture.loss],
            f"{before:.3g} → {after:.3g}",
            "—" if test_accuracy is None else f"{test_accuracy:.3f}",
            f"{worst:.1e}",
            "pass" if report.passed else "FAIL",
        )
    console.print(table)
    console.print(
        "network: layer sizes, hidden/output activation. test loss: before → after training.\n"
        "accuracy: on the test set (— for a regression).\n"
        f"gradcheck: each W and b from loss_and_grads against float64 central differences "
        f"(eps={GRADCHECK_EPS:g}),\n"
        "at random parameters on 8 training examples. max rel. error: the largest\n"
        "‖analytic − numerical‖ / max(‖analytic‖, ‖numerical‖) of any parameter; "
        "pass: every entry within 1e-8 + 1e-7 |numerical|.",
        highlight=False,
    )
    elapsed = time.perf_counter() - started
    verdict = "every gradient check passed" if all_passed else "a gradient check FAILED"
    console.print(f"{verdict} ({elapsed:.1f} s)", highlight=False)
    return 0 if all_passed else 1


# --- the parser ----------------------------------------------------------------------------


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"a seed must be at least 0, got {value}")
    return value


def _defaults_table() -> str:
    rows = []
    for name, d in DEFAULTS.items():
        hidden = ",".join(map(str, d.hidden))
        rows.append(
            f"  {name:<8} hidden {hidden:<3} {d.activation}/{d.output_activation}, {d.loss}, "
            f"{d.init}; {d.epochs} epochs, batch {d.batch_size}, lr {d.learning_rate:g}, "
            f"momentum {d.momentum:g}"
        )
    return "\n".join(rows)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="typedbackprop",
        description="Backpropagation in NumPy whose shapes document and check themselves.",
        epilog="Run 'typedbackprop COMMAND --help' for a command's options.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    summary = "train the seeds' networks and gradient-check each (the main job)"
    demo = commands.add_parser(
        "demo",
        help=summary,
        description=summary + ": the question's 3-4-4-2 network, seed 001's circles, seed 002's "
        "iris and seed 003's 128-16-1 network; one table of results.",
    )
    demo.add_argument("--seed", type=_seed, default=0, help="random seed (default: 0)")
    demo.set_defaults(run=_run_demo, parser=demo)

    for name, run, summary in [
        ("explain", _run_explain, "print every forward and backward equation with its shapes"),
        ("gradcheck", _run_gradcheck, "compare analytic and numerical gradients, per parameter"),
    ]:
        command = commands.add_parser(name, help=summary, description=summary)
        command.add_argument("sizes", type=_sizes, help="layer sizes, input first: e.g. 3,4,4,2")
        command.add_argument("--batch", type=_positive_int, default=5, help="examples (default: 5)")
        _add_network_options(command, defaults=True)
        command.set_defaults(run=run, parser=command)
        if name == "explain":
            command.add_argument(
                "--layout",
                choices=LAYOUTS,
                default="features-first",
                help="features-first: one column per example, W (out, in), the package's; "
                "batch-first: one row per example, W (in, out) (default: features-first)",
            )
        if name == "gradcheck":
            command.add_argument("--seed", type=_seed, default=0, help="random seed (default: 0)")
            command.add_argument(
                "--eps",
                type=_positive_float,
                default=GRADCHECK_EPS,
                help=f"central-difference step (default: {GRADCHECK_EPS:g}, near the cube root "
                "of float64's machine epsilon, where truncation and rounding errors balance)",
            )

    training = commands.add_parser(
        "train",
        help="train on a data set with a progress bar; prints the test accuracy",
        description="Train a network on a data set with minibatch SGD and momentum; the last "
        "line printed is the test accuracy. Defaults per data set:\n" + _defaults_table(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    training.add_argument(
        "--dataset", choices=get_args(DatasetName), required=True, help="the data set"
    )
    training.add_argument(
        "--hidden",
        type=_hidden_sizes,
        help="hidden layer sizes, e.g. 20 or 8,8 (default: per data set)",
    )
    _add_network_options(training, defaults=False)
    training.add_argument(
        "--init", choices=get_args(InitName), help="weight initialisation (default: per data set)"
    )
    training.add_argument(
        "--epochs",
        type=int,
        help="passes over the training set (default: per data set; 0 with --load)",
    )
    training.add_argument(
        "--batch-size", type=_positive_int, help="examples per step (default: per data set)"
    )
    training.add_argument(
        "--lr", type=_positive_float, help="learning rate (default: per data set)"
    )
    training.add_argument(
        "--momentum", type=float, help="momentum in [0, 1) (default: per data set)"
    )
    training.add_argument(
        "--seed",
        type=_seed,
        default=0,
        help="seeds the data, the split, the initial weights "
        "and the order of examples (default: 0)",
    )
    training.add_argument(
        "--plot",
        metavar="FILE.png",
        help="draw the loss curve and, for 1-D and 2-D data, what the network learned "
        "(also .pdf, .svg, .jpg)",
    )
    training.add_argument(
        "--animate", metavar="FILE.gif", help="animate the hidden representation over training"
    )
    training.add_argument("--save", metavar="FILE.npz", help="save a checkpoint after training")
    training.add_argument(
        "--load", metavar="FILE.npz", help="start from a checkpoint (no training unless --epochs)"
    )
    training.set_defaults(run=_run_train, parser=training)
    return parser


def main(argv: Sequence[str] | None = None, console: Console | None = None) -> int:
    """Run the command line; returns the exit status.

    Parameters
    ----------
    argv
        The arguments after the program name (default: ``sys.argv[1:]``).
    console
        Where to print (default: standard output).

    Returns
    -------
    int
        0 on success, 1 if a check failed or the run failed, 2 for bad arguments, 130 when
        interrupted (Ctrl-C).
    """
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:
        return int(exit_.code or 0)
    if console is None:
        console = Console()
        if not console.is_terminal:  # a pipe or a file: no terminal width to respect
            console = Console(width=120)
    try:
        return int(args.run(args, console))
    except UsageError as error:
        args.parser.print_usage(sys.stderr)
        print(f"{args.parser.prog}: error: {error}", file=sys.stderr)
        return 2
    except (ValueError, TypeError, ImportError, OSError, ArithmeticError) as error:
        print(f"typedbackprop: error: {error}", file=sys.stderr)
        return 1
    except MemoryError:
        print("typedbackprop: error: out of memory; try smaller layers", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("typedbackprop: interrupted", file=sys.stderr)
        return 130
