"""``typedbackprop train --dataset NAME``: train with a progress bar; print the test accuracy."""

import argparse
import time
from dataclasses import dataclass
from typing import get_args

import numpy as np
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from typedbackprop import (
    ActivationName,
    Dense,
    History,
    LossName,
    evaluate,
    init_layers,
    load_dataset,
)
from typedbackprop.checkpoint import Checkpoint, read_checkpoint, save_checkpoint
from typedbackprop.cli.checkpoints import PLOT_SUFFIXES, check_paths, check_recorded_split
from typedbackprop.cli.models import add_model_option, train_model
from typedbackprop.cli.options import (
    PERCEPTRON_LOSSES,
    UsageError,
    add_network_options,
    check_network,
    check_option_models,
    check_threads,
    finite_positive_float,
    hidden_sizes,
    mark_option_models,
    output_for,
    parameter_count,
    plural,
    positive_int,
    require_memory,
    seed,
    warn,
)
from typedbackprop.datasets import Dataset, DatasetName, SequenceDatasetName
from typedbackprop.initialize import InitName
from typedbackprop.models import Architecture
from typedbackprop.nn import LOSSES, OutputActivationName
from typedbackprop.plots import animate_hidden, plot_training, require_plotting
from typedbackprop.recipes import RECIPES, blas_threads
from typedbackprop.training import train

__all__ = ["TrainingDefaults", "DEFAULTS", "PLOT_SUFFIXES", "add_parser", "run"]


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


MAX_FRAMES = 40
"""``--animate`` keeps about this many snapshots of the network (and the first)."""

REGION_GRID_POINTS = 200 * 200
"""The points at which ``--plot`` evaluates a 2-D network's decision regions."""

DIVERGED_GROWTH = 10.0
"""Training that ends with a test loss this many times the untrained network's is reported as
diverged (a warning: the numbers are printed all the same)."""


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a number of at least 0, got {value}")
    return value


def _momentum(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0 <= value < 1:  # also refuses nan and inf
        raise argparse.ArgumentTypeError(f"must lie in [0, 1), got {text}")
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


def add_parser(commands: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    """Add the ``train`` command to the top-level parser's commands."""
    parser = commands.add_parser(
        "train",
        help="train on a data set with a progress bar; prints the test accuracy",
        description="Train a network on a data set with minibatch SGD and momentum; the last "
        "line printed is the test accuracy. Defaults per data set:\n" + _defaults_table(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--dataset",
        choices=(*get_args(DatasetName), *get_args(SequenceDatasetName)),
        help="the data set (required for the perceptron; a --model brings its own: "
        + ", ".join(f"{name}: {recipe.dataset}" for name, recipe in RECIPES.items())
        + ")",
    )
    add_model_option(parser)
    threads = ", ".join(
        f"{recipe.threads} for --model {name}"
        for name, recipe in RECIPES.items()
        if recipe.threads is not None
    )
    parser.add_argument(
        "--threads",
        type=positive_int,
        help="BLAS threads for the matrix products while training (default: "
        f"{threads}, whose small products gain nothing from more; the BLAS library's own "
        "default for the perceptron). More threads help only large products (a perceptron "
        "with hundreds of units per layer and large batches) on cores that are otherwise "
        "idle: on a busy machine each product waits for its slowest thread, and a run can "
        "take ten times as long; more threads than usable cores are warned of",
    )
    parser.add_argument(
        "--hidden",
        type=hidden_sizes,
        help="hidden layer sizes, e.g. 20 or 8,8 (default: per data set)",
    )
    add_network_options(parser, defaults=False)
    parser.add_argument(
        "--init", choices=get_args(InitName), help="weight initialisation (default: per data set)"
    )
    parser.add_argument(
        "--epochs",
        type=_non_negative_int,
        help="passes over the training set (default: per data set; 0 with --load)",
    )
    parser.add_argument(
        "--steps",
        type=_non_negative_int,
        help="optimizer steps (default: the recipe's; 0 with --load)",
    )
    parser.add_argument(
        "--batch-size", type=positive_int, help="examples per step (default: per data set)"
    )
    parser.add_argument(
        "--lr", type=finite_positive_float, help="learning rate (default: per data set)"
    )
    parser.add_argument(
        "--momentum", type=_momentum, help="momentum in [0, 1) (default: per data set)"
    )
    parser.add_argument(
        "--clip",
        type=finite_positive_float,
        metavar="MAX_NORM",
        help="clip the gradients by their global norm before every step: g ← g · min(1, "
        "MAX_NORM / ‖g‖), ‖g‖ over every parameter of every layer (default: no clipping)",
    )
    parser.add_argument(
        "--truncate",
        type=positive_int,
        metavar="STEPS",
        help="truncated backpropagation through time: chunks of STEPS steps, no state gradient "
        "carried across a chunk's start (default: through the whole sequence)",
    )
    parser.add_argument(
        "--seed",
        type=seed,
        default=None,
        help="seeds the data, the split, the initial weights and the order of examples "
        "(default: 0, or with --load the seed the checkpoint was trained with)",
    )
    parser.add_argument(
        "--plot",
        metavar="FILE.png",
        help="draw the loss curve and what the network learned: its decision regions (2-D "
        "data), its output (1-D) or the test set's confusion matrix (also .pdf, .svg, .jpg); "
        "for a recurrent model, the vanishing gradient: the norm of ∂L/∂h_t against t at "
        "the start of training, for the RNN, LSTM and GRU",
    )
    parser.add_argument(
        "--animate", metavar="FILE.gif", help="animate the hidden representation over training"
    )
    parser.add_argument(
        "--save",
        metavar="FILE.npz",
        help="save a checkpoint after training (with the seed and split it was trained on)",
    )
    parser.add_argument(
        "--load",
        metavar="FILE.npz",
        help="start from a checkpoint saved by --save, of the same --model (no training "
        "unless --epochs or --steps); tested on the held-out examples it was tested on when "
        "saved",
    )
    mark_option_models(parser)
    parser.set_defaults(run=run, parser=parser)


def _check_arguments(args: argparse.Namespace) -> None:
    """What can be wrong with the arguments on their own, found before any time is spent."""
    if args.load:
        fixed = ["hidden", "activation", "output_activation", "loss", "init"]
        given = [name for name in fixed if getattr(args, name) is not None]
        if given:
            options = ", ".join("--" + name.replace("_", "-") for name in given)
            raise UsageError(f"{options}: the checkpoint given to --load fixes the network")
    check_paths(args)
    if args.plot or args.animate:
        require_plotting(animation=bool(args.animate))  # ImportError: exit 1 with what to install


def _architecture(
    args: argparse.Namespace, data: Dataset, defaults: TrainingDefaults
) -> Architecture:
    hidden = args.hidden if args.hidden is not None else defaults.hidden
    loss = args.loss or defaults.loss
    activation = args.activation or defaults.activation
    output = args.output_activation or (
        defaults.output_activation if args.loss is None else output_for(loss, None)
    )
    if LOSSES[loss].labels and data.task != "multiclass":
        raise UsageError(f"--loss {loss} needs a multiclass data set; {data.name} is binary")
    if not LOSSES[loss].labels and data.task == "multiclass":
        takes_labels = " or ".join(name for name in PERCEPTRON_LOSSES if LOSSES[name].labels)
        raise UsageError(f"{data.name} has integer class labels: use --loss {takes_labels}")
    sizes = (data.x_train.shape[0], *hidden, data.outputs)
    check_network(sizes, output, loss)
    return Architecture(sizes, activation, output, loss)


def _check_checkpoint(
    path: str, checkpoint: Checkpoint, data: Dataset, seed_given: bool
) -> Architecture:
    """Refuse a checkpoint that does not fit the data set, or was tested on other examples."""
    architecture = checkpoint.architecture
    if architecture is None:
        hint = f": give --model {checkpoint.model}" if checkpoint.model in RECIPES else ""
        raise UsageError(
            f"{path} holds a {checkpoint.model or 'layered'} network, not a multilayer "
            f"perceptron{hint}"
        )
    features, outputs = data.x_train.shape[0], data.outputs
    if (architecture.sizes[0], architecture.sizes[-1]) != (features, outputs):
        raise UsageError(
            f"{path} holds a {architecture.describe()} network; {data.name} needs "
            f"{plural(features, 'input')} and {plural(outputs, 'output')}"
        )
    if (data.task == "multiclass") != LOSSES[architecture.loss].labels:
        raise UsageError(
            f"{path} was trained with {architecture.loss}, which {data.name} cannot use"
        )
    check_recorded_split(path, checkpoint.split, data, seed_given)
    return architecture


def _check_memory(
    args: argparse.Namespace, architecture: Architecture, data: Dataset, epochs: int
) -> None:
    """Refuse, before allocating anything, a network or run that would not fit in memory."""
    frames = MAX_FRAMES + 2 if args.animate and epochs else 0
    # The parameters, their gradients, the velocities and the previous step's parameters, and
    # a snapshot per frame; then z, a and the gradients of every layer for the largest batch
    # a forward pass sees (all the training examples, for the accuracy after each epoch).
    examples = max(data.x_train.shape[1], data.x_test.shape[1])
    if args.plot and data.x_train.shape[0] == 2:
        examples = max(examples, REGION_GRID_POINTS)
    values = (4 + frames) * parameter_count(architecture.sizes)
    values += 3 * sum(architecture.sizes) * examples
    require_memory(
        values,
        f"a {'-'.join(map(str, architecture.sizes))} network on {data.name}",
        "use fewer or smaller --hidden layers",
    )


def run(args: argparse.Namespace, console: Console) -> int:
    """Train (or load) a network and report its test loss and accuracy; return 0."""
    check_option_models(args)
    check_threads(args.threads)
    if args.model != "mlp":
        return train_model(RECIPES[args.model], args, console)
    if args.dataset is None:
        raise UsageError("--dataset is required (or a --model, which brings its own)")
    if args.dataset not in DEFAULTS:
        models = " or ".join(
            f"--model {name}" for name, recipe in RECIPES.items() if recipe.dataset == args.dataset
        )
        raise UsageError(
            f"--dataset {args.dataset} needs {models}; the perceptron (--model mlp) trains on "
            + ", ".join(DEFAULTS)
        )
    _check_arguments(args)
    defaults = DEFAULTS[args.dataset]
    checkpoint = read_checkpoint(args.load) if args.load else None
    recorded = checkpoint.split if checkpoint is not None else None
    data_seed = args.seed if args.seed is not None else (recorded.seed if recorded else 0)
    data = load_dataset(args.dataset, seed=data_seed)
    if checkpoint is not None:
        architecture = _check_checkpoint(
            args.load, checkpoint, data, seed_given=args.seed is not None
        )
    else:
        architecture = _architecture(args, data, defaults)
    epochs = args.epochs if args.epochs is not None else (0 if args.load else defaults.epochs)
    _check_memory(args, architecture, data, epochs)
    rng = np.random.default_rng(data_seed)
    if checkpoint is not None:
        layers = checkpoint.layers
    else:
        layers = init_layers(architecture.sizes, rng, args.init or defaults.init)
    snapshots: list[list[Dense]] = [layers]
    captions = ["epoch 0"]
    history = History()
    untrained_loss = evaluate(layers, architecture, data.x_test, data.y_test)[0] if epochs else 0.0
    learning_rate = args.lr or defaults.learning_rate
    started = time.perf_counter()
    if epochs > 0:
        every = max(1, epochs // MAX_FRAMES)
        with Progress(
            TextColumn(f"training {data.name} {'-'.join(map(str, architecture.sizes))}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]}"),
            TimeElapsedColumn(),
            console=console,
            disable=not console.is_terminal,  # a pipe or a file gets the results alone
        ) as progress:
            task = progress.add_task("epochs", total=epochs, loss="—")

            def on_epoch(epoch: int, current: list[Dense], history: History) -> None:
                progress.update(task, advance=1, loss=f"{history.loss[-1]:.4g}")
                if args.animate and (epoch % every == 0 or epoch == epochs):
                    snapshots.append(current)
                    captions.append(f"epoch {epoch}")

            with blas_threads(args.threads):
                layers, history = train(
                    layers,
                    architecture,
                    data.x_train,
                    data.y_train,
                    epochs=epochs,
                    batch_size=args.batch_size or defaults.batch_size,
                    learning_rate=learning_rate,
                    momentum=defaults.momentum if args.momentum is None else args.momentum,
                    rng=rng,
                    x_test=data.x_test,
                    y_test=data.y_test,
                    on_epoch=on_epoch,
                )
    elapsed = time.perf_counter() - started
    test_loss, test_accuracy = evaluate(layers, architecture, data.x_test, data.y_test)
    if epochs and test_loss > DIVERGED_GROWTH * untrained_loss:
        warn(
            f"training diverged: the test loss grew from {untrained_loss:.4g} to "
            f"{test_loss:.4g}; try a smaller --lr than {learning_rate:g}"
        )
    if args.save:
        save_checkpoint(args.save, layers, architecture, data.split)
        console.print(f"saved {args.save}", highlight=False)
    if args.plot:
        plot_training(args.plot, history, layers, architecture, data)
        console.print(f"wrote {args.plot}", highlight=False)
    if args.animate:
        animate_hidden(args.animate, snapshots, architecture, data, captions)
        console.print(f"wrote {args.animate}", highlight=False)
    console.print(
        f"{data.name}, {architecture.describe()}: {plural(epochs, 'epoch')} in {elapsed:.1f} s; "
        f"test loss {test_loss:.4g}",
        highlight=False,
    )
    shown = "n/a" if test_accuracy is None else f"{test_accuracy:.3f}"
    console.print(f"test accuracy: {shown}", highlight=False)
    return 0
