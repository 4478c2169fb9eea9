"""``--model NAME`` for ``explain``, ``gradcheck`` and ``train``: the networks of ``RECIPES``.

A perceptron is described by its sizes and activation names; the other models (the digits
convnet, the sorting transformer) are built by their recipe in :mod:`typedbackprop.recipes`,
with the data set, loss and training settings that go with them.
"""

import argparse
import dataclasses
import hashlib
import time
from typing import Any, cast

import numpy as np
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from typedbackprop.checking import Array, IntArray
from typedbackprop.checkpoint import Checkpoint, read_checkpoint, save_network
from typedbackprop.cli.checkpoints import check_paths, check_recorded_split
from typedbackprop.cli.options import UsageError, plural
from typedbackprop.cli.tables import print_gradient_report
from typedbackprop.datasets import SplitRecord
from typedbackprop.explain import explain_network
from typedbackprop.gradcheck import gradcheck
from typedbackprop.models import recurrent
from typedbackprop.nn.losses import LOSSES, LossName
from typedbackprop.nn.mode import Mode
from typedbackprop.nn.network import Layer, network_forward, network_loss_and_grads
from typedbackprop.nn.tree import leaves, replace_leaves
from typedbackprop.plots import plot_vanishing_gradient, require_plotting
from typedbackprop.recipes import (
    RECIPES,
    Recipe,
    RecipeData,
    blas_threads,
    check_data,
    fresh_states,
    recipe_data,
)
from typedbackprop.training import evaluate_network, truncated

__all__ = ["MODEL_CHOICES", "add_model_option", "explain_model", "gradcheck_model", "train_model"]

MODEL_CHOICES = ("mlp", *RECIPES)
"""``--model``'s choices: the perceptron of ``SIZES``, or a recipe's model."""

TRAINING = Mode(training=True)

PLOTTED_SEQUENCES = 16
"""How many training sequences ``--plot`` runs the recurrent layers on for the figure."""


def add_model_option(parser: argparse.ArgumentParser) -> None:
    """``--model``, shared by ``explain``, ``gradcheck`` and ``train``."""
    summaries = "; ".join(f"{name}: {recipe.summary}" for name, recipe in RECIPES.items())
    parser.add_argument(
        "--model",
        choices=MODEL_CHOICES,
        default="mlp",
        help=f"mlp: the perceptron of the sizes and activations given (default); {summaries}",
    )


def _batch(data: RecipeData, batch: int) -> tuple[Array | IntArray, Array | IntArray]:
    """The first ``batch`` training examples (the last axis), as a model's input and targets.

    Raises
    ------
    UsageError
        For a ``--batch`` larger than the training set: its examples would silently be fewer.
    """
    examples = data.x_train.shape[-1]
    if batch > examples:
        raise UsageError(
            f"--batch {batch} is more than the {examples:,} training examples of {data.name}"
        )
    return data.x_train[..., :batch], data.y_train[..., :batch]


def explain_model(recipe: Recipe, batch: int, console: Console) -> int:
    """Print the model's equations on ``batch`` examples of its data; return 0."""
    layers = recipe.build(np.random.default_rng(0))
    x, y = _batch(recipe_data(recipe, seed=0), batch)
    console.print(
        f"model {recipe.name}, batch {batch}: {recipe.summary}; loss {recipe.loss}",
        highlight=False,
        markup=False,
    )
    console.print(
        "every array is features first, batch last; each line shows each operand's shape",
        highlight=False,
    )
    console.print()
    for line in explain_network(layers, x, y, recipe.loss, width=console.width):
        console.print(line, highlight=False, markup=False, soft_wrap=True)
    return 0


def _loss(layers: list[Layer], x: Array | IntArray, y: Array | IntArray, loss: LossName) -> float:
    """The loss from one forward pass in training mode (batch statistics), no backward pass."""
    output, caches = network_forward(layers, x, TRAINING)
    entry = LOSSES[loss]
    value, _ = entry.function(caches[-1].z if entry.from_logits else output, y)
    return value


def gradcheck_model(recipe: Recipe, batch: int, seed: int, eps: float, console: Console) -> int:
    """Check every parameter of the model against central differences; 0 if all pass."""
    layers = recipe.build(np.random.default_rng(seed))
    data = check_data(recipe, seed=seed)
    x, y = _batch(data, batch)
    where = [(index, path) for index, layer in enumerate(layers) for path in leaves(layer)]
    inputs = [leaves(layers[index])[path] for index, path in where]

    def rebuilt(values: tuple[Array, ...]) -> list[Layer]:
        arrays: list[dict[str, Array]] = [{} for _ in layers]
        for (index, path), value in zip(where, values, strict=True):
            arrays[index][path] = value
        return [
            replace_leaves(layer, changed) if changed else layer
            for layer, changed in zip(layers, arrays, strict=True)
        ]

    def forward(*values: Array) -> float:
        return _loss(rebuilt(values), x, y, recipe.loss)

    def backward(grad_output: Any, *values: Array) -> tuple[Array, ...]:
        _, grads = network_loss_and_grads(rebuilt(values), x, y, recipe.loss)
        by_layer = [leaves(grad) for grad in grads]
        return tuple(grad_output * by_layer[index][path] for index, path in where)

    count = sum(value.size for value in inputs)
    report = gradcheck(
        forward,
        backward,
        inputs,
        names=[f"{index}.{path}" for index, path in where],
        eps=eps,
        fast_mode=count > 2_000,
        samples=16 if count > 2_000 else None,
        raise_exception=False,
    )
    console.print(
        f"model {recipe.name} on {data.name}, batch {batch}: "
        f"{plural(len(inputs), 'parameter array')}, "
        f"{count:,} numbers; eps={eps:g}"
        + ("; fast mode with 16 sampled entries per array" if count > 2_000 else ""),
        highlight=False,
    )
    shapes = [value.shape for value in inputs]
    print_gradient_report(console, "analytic against central differences", report, shapes)
    return 0 if report.passed else 1


def _recorded_split(recipe: Recipe, data: RecipeData, seed: int) -> SplitRecord:
    """How ``data`` was split, for a checkpoint: the data set's record, or for a generated
    sequence data set (``sort``) one made here: its seed, sizes and a digest of its test
    examples themselves (a generated set has no indices into a fixed table)."""
    if data.split is not None:
        return data.split
    n_train, n_test = data.x_train.shape[-1], data.x_test.shape[-1]
    digest = hashlib.sha256(np.ascontiguousarray(data.x_test).tobytes()).hexdigest()
    return SplitRecord(
        recipe.dataset, seed, n_test / (n_train + n_test), False, n_train + n_test,
        f"sha256:{digest}",
    )  # fmt: skip


def _shapes(layers: list[Layer]) -> list[tuple[str, dict[str, tuple[int, ...]]]]:
    """Each layer's type and the shapes of its parameter arrays: what a checkpoint must match."""
    return [
        (type(layer).__name__, {path: value.shape for path, value in leaves(layer).items()})
        for layer in layers
    ]


def _check_model_checkpoint(path: str, checkpoint: Checkpoint, recipe: Recipe) -> None:
    """Refuse a checkpoint of another model than ``recipe``'s, or of other shapes."""
    if checkpoint.model != recipe.name:
        held = checkpoint.model or ("perceptron" if checkpoint.architecture else "layered")
        hint = f": use --model {checkpoint.model}" if checkpoint.model in RECIPES else ""
        hint = hint or (": leave --model out" if checkpoint.architecture else "")
        raise UsageError(f"{path} holds a {held} network, not --model {recipe.name}{hint}")
    if _shapes(checkpoint.network) != _shapes(recipe.build(np.random.default_rng(0))):
        raise UsageError(
            f"{path} holds a {recipe.name} of other layers or shapes than --model "
            f"{recipe.name} builds"
        )


def plot_recurrent(path: str, data: RecipeData, seed: int) -> None:
    """Draw the vanishing gradient of the recurrent models as their recipes start them.

    ``‖∂L/∂h_t‖`` against ``t`` (log scale) for the RNN, the LSTM (as the recipe starts it,
    forget-gate bias 5, and at PyTorch's draw, bias ≈ 0) and the GRU, each as ``--model``
    builds it from ``seed``, on the first :data:`PLOTTED_SEQUENCES` training sequences, for a
    loss ``L = Σ g ⊙ h_{seq−1}`` with one random ``g`` of norm 1 for every model: how much of
    the gradient at the last state reaches each earlier step at the start of training
    (:func:`~typedbackprop.plots.plot_vanishing_gradient`).
    """
    x = cast(Array, data.x_train[..., :PLOTTED_SEQUENCES])

    def first(layers: list[Layer]) -> Any:
        return layers[0]

    layers: dict[str, Any] = {
        "tanh RNN": first(RECIPES["rnn"].build(np.random.default_rng(seed))),
        "GRU": first(RECIPES["gru"].build(np.random.default_rng(seed))),
        "LSTM, forget bias 5 (the recipe's)": first(
            RECIPES["lstm"].build(np.random.default_rng(seed))
        ),
        "LSTM at PyTorch's draw (bias ≈ 0)": first(
            recurrent(np.random.default_rng(seed), "lstm", forget_bias=float("nan"))
        ),
    }
    hidden = leaves(layers["GRU"])["cell.reset_gate.W_hh"].shape[0]
    grad_last_state = np.random.default_rng(seed).standard_normal((hidden, x.shape[-1]))
    plot_vanishing_gradient(path, layers, x, grad_last_state / np.linalg.norm(grad_last_state))


def _length(recipe: Recipe, args: argparse.Namespace, loading: bool) -> int:
    """The epochs or steps to train: ``--epochs``/``--steps``, else 0 after ``--load`` (only
    evaluate), else the recipe's."""
    given: int | None = getattr(args, "epochs" if recipe.units == "epoch" else "steps", None)
    if given is not None:
        return given
    return 0 if loading else recipe.length


def train_model(recipe: Recipe, args: argparse.Namespace, console: Console) -> int:
    """Train the model by its recipe with a progress bar (or load it, and evaluate it or train
    it further); print the test loss and accuracy.

    The training runs with the recipe's BLAS threads (:attr:`Recipe.threads`), or ``--threads``.
    The options that do not apply to the model have been refused already
    (:func:`~typedbackprop.cli.options.check_option_models`).
    """
    if args.dataset is not None and args.dataset != recipe.dataset:
        raise UsageError(f"--model {recipe.name} is for --dataset {recipe.dataset}")
    check_paths(args)
    if getattr(args, "plot", None):
        require_plotting()  # ImportError: exit 1 with what to install, before any training
    checkpoint = read_checkpoint(args.load) if args.load else None
    if checkpoint is not None:
        _check_model_checkpoint(args.load, checkpoint, recipe)
    recorded = checkpoint.split if checkpoint is not None else None
    seed = args.seed if args.seed is not None else (recorded.seed if recorded else 0)
    data = recipe_data(recipe, seed)
    split = _recorded_split(recipe, data, seed)
    rng = np.random.default_rng(seed)
    if checkpoint is not None:
        check_recorded_split(
            args.load, recorded, dataclasses.replace(data, split=split), args.seed is not None
        )
        layers = list(checkpoint.network)
        states = checkpoint.states if checkpoint.states is not None else fresh_states(layers)
    else:
        layers = recipe.build(rng)
        states = fresh_states(layers)
    layers = truncated(layers, getattr(args, "truncate", None))
    length = _length(recipe, args, loading=checkpoint is not None)
    started = time.perf_counter()
    if length:
        with Progress(
            TextColumn(f"training {recipe.name} on {data.name}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]}"),
            TimeElapsedColumn(),
            console=console,
            disable=not console.is_terminal,
        ) as progress:
            task = progress.add_task(recipe.units, total=length, loss="—")
            threads = recipe.threads if args.threads is None else args.threads
            with blas_threads(threads):
                recipe.fit(
                    layers,
                    data,
                    rng,
                    states,
                    lambda done, loss: progress.update(task, completed=done, loss=f"{loss:.4g}"),
                    length,
                    getattr(args, "clip", None),
                )
    elapsed = time.perf_counter() - started
    test_loss, test_accuracy = evaluate_network(
        layers, recipe.loss, data.x_test, data.y_test, states
    )
    console.print(
        f"{data.name}, {recipe.name}: {plural(length, recipe.units)} in {elapsed:.1f} s; "
        f"test loss {test_loss:.4g}",
        highlight=False,
    )
    if args.save:
        save_network(args.save, layers, recipe.loss, split=split, model=recipe.name, states=states)
        console.print(f"saved {args.save}", highlight=False)
    if getattr(args, "plot", None):
        plot_recurrent(args.plot, data, seed)
        console.print(f"wrote {args.plot}", highlight=False)
    shown = "n/a" if test_accuracy is None else f"{test_accuracy:.3f}"
    console.print(f"test accuracy: {shown}", highlight=False)
    return 0
