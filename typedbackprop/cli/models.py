"""``--model NAME`` for ``explain``, ``gradcheck`` and ``train``: the networks of ``RECIPES``.

A perceptron is described by its sizes and activation names; the other models (the digits
convnet, the sorting transformer) are built by their recipe in :mod:`typedbackprop.recipes`,
with the data set, loss and training settings that go with them.
"""

import argparse
import dataclasses
import time
from typing import Any

import numpy as np
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from typedbackprop.checking import Array, IntArray
from typedbackprop.checkpoint import save_network
from typedbackprop.cli.options import UsageError, plural
from typedbackprop.explain import explain_network
from typedbackprop.gradcheck import gradcheck
from typedbackprop.nn.families import parameters
from typedbackprop.nn.losses import LOSSES
from typedbackprop.nn.mode import Mode
from typedbackprop.nn.network import Layer, network_forward, network_loss_and_grads
from typedbackprop.recipes import (
    RECIPES,
    Recipe,
    RecipeData,
    blas_threads,
    fresh_states,
    recipe_data,
)
from typedbackprop.training import evaluate_network

__all__ = ["MODEL_CHOICES", "add_model_option", "explain_model", "gradcheck_model", "train_model"]

MODEL_CHOICES = ("mlp", *RECIPES)
"""``--model``'s choices: the perceptron of ``SIZES``, or a recipe's model."""

TRAINING = Mode(training=True)


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
    """The first ``batch`` training examples (the last axis), as a model's input and targets."""
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
    for line in explain_network(layers, x, y, recipe.loss):
        console.print(line, highlight=False, markup=False, soft_wrap=True)
    return 0


def _loss(layers: list[Layer], x: Array | IntArray, y: Array | IntArray, loss: str) -> float:
    """The loss from one forward pass in training mode (batch statistics), no backward pass."""
    output, caches = network_forward(layers, x, TRAINING)
    entry = LOSSES[loss]
    value, _ = entry.function(caches[-1].z if entry.from_logits else output, y)
    return value


def gradcheck_model(recipe: Recipe, batch: int, seed: int, eps: float, console: Console) -> int:
    """Check every parameter of the model against central differences; 0 if all pass."""
    layers = recipe.build(np.random.default_rng(seed))
    x, y = _batch(recipe_data(recipe, seed=seed), batch)
    where = [(index, name) for index, layer in enumerate(layers) for name in parameters(layer)]
    inputs = [getattr(layers[index], name) for index, name in where]

    def rebuilt(values: tuple[Array, ...]) -> list[Layer]:
        current = list(layers)
        for (index, name), value in zip(where, values, strict=True):
            current[index] = dataclasses.replace(current[index], **{name: value})
        return current

    def forward(*values: Array) -> float:
        return _loss(rebuilt(values), x, y, recipe.loss)

    def backward(grad_output: Any, *values: Array) -> tuple[Array, ...]:
        _, grads = network_loss_and_grads(rebuilt(values), x, y, recipe.loss)
        return tuple(grad_output * getattr(grads[index], name) for index, name in where)

    count = sum(value.size for value in inputs)
    report = gradcheck(
        forward,
        backward,
        inputs,
        names=[f"{index}.{name}" for index, name in where],
        eps=eps,
        fast_mode=count > 2_000,
        samples=16 if count > 2_000 else None,
        raise_exception=False,
    )
    console.print(
        f"model {recipe.name}, batch {batch}: {plural(len(inputs), 'parameter array')}, "
        f"{count:,} numbers; eps={eps:g}"
        + ("; fast mode with 16 sampled entries per array" if count > 2_000 else ""),
        highlight=False,
    )
    console.print(str(report), highlight=False, markup=False, soft_wrap=True)
    return 0 if report.passed else 1


def train_model(recipe: Recipe, args: argparse.Namespace, console: Console) -> int:
    """Train the model by its recipe with a progress bar; print the test loss and accuracy.

    The training runs with the recipe's BLAS threads (:attr:`Recipe.threads`), or ``--threads``.
    """
    for option in ("hidden", "activation", "output_activation", "loss", "init", "epochs",
                   "batch_size", "lr", "momentum", "load", "plot", "animate"):  # fmt: skip
        if getattr(args, option, None) is not None:
            flag = "--" + option.replace("_", "-")
            raise UsageError(
                f"{flag} is for the perceptron (--model mlp); --model {recipe.name} trains "
                f"with its own recipe"
            )
    if args.dataset is not None and args.dataset != recipe.dataset:
        raise UsageError(f"--model {recipe.name} is for --dataset {recipe.dataset}")
    seed = args.seed if args.seed is not None else 0
    data = recipe_data(recipe, seed)
    rng = np.random.default_rng(seed)
    layers = recipe.build(rng)
    states = fresh_states(layers)
    started = time.perf_counter()
    with Progress(
        TextColumn(f"training {recipe.name} on {data.name}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("loss {task.fields[loss]}"),
        TimeElapsedColumn(),
        console=console,
        disable=not console.is_terminal,
    ) as progress:
        task = progress.add_task(recipe.units, total=recipe.length, loss="—")
        threads = recipe.threads if args.threads is None else args.threads
        with blas_threads(threads):
            recipe.fit(
                layers,
                data,
                rng,
                states,
                lambda done, loss: progress.update(task, completed=done, loss=f"{loss:.4g}"),
            )
    elapsed = time.perf_counter() - started
    test_loss, test_accuracy = evaluate_network(
        layers, recipe.loss, data.x_test, data.y_test, states
    )
    console.print(
        f"{data.name}, {recipe.name}: {plural(recipe.length, recipe.units)} in {elapsed:.1f} s; "
        f"test loss {test_loss:.4g}",
        highlight=False,
    )
    if args.save:
        save_network(args.save, layers, recipe.loss, model=recipe.name, states=states)
        console.print(f"saved {args.save}", highlight=False)
    shown = "n/a" if test_accuracy is None else f"{test_accuracy:.3f}"
    console.print(f"test accuracy: {shown}", highlight=False)
    return 0
