"""``typedbackprop demo``: the seeds' networks, trained, then gradient-checked; one table."""

import argparse
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from typedbackprop import (
    Array,
    GradcheckReport,
    IntArray,
    evaluate,
    gradcheck_network,
    init_layers,
    load_dataset,
    train,
)
from typedbackprop.cli.options import GRADCHECK_EPS, seed
from typedbackprop.initialize import InitName
from typedbackprop.models import Architecture, random_layers

__all__ = ["Scenario", "SCENARIOS", "Result", "results_table", "add_parser", "run"]

SUMMARY = "train the seeds' networks and gradient-check each (the main job)"


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


LOSS_LABELS: dict[str, tuple[str, str]] = {
    "squared_error": ("squared", "error"),
    "binary_cross_entropy": ("binary", "CE"),
    "cross_entropy": ("softmax", "CE"),
}
"""Each loss's short name in the table, in two parts (two lines in a narrow terminal)."""


@dataclass(frozen=True)
class Result:
    """One scenario's row of the table."""

    scenario: Scenario
    loss_before: float
    loss_after: float
    accuracy: float | None
    worst_relative_error: float
    passed: bool


def _gradcheck_scenario(
    architecture: Architecture, x: Array, y: Array | IntArray, rng: np.random.Generator
) -> GradcheckReport:
    """Gradient-check ``loss_and_grads`` for the scenario's network on 8 training examples.

    The check runs at random parameters of unit scale, where no unit is saturated and the
    gradients are not small against the loss: at a trained minimum, central differences would
    mostly measure their own rounding.
    """
    probe = random_layers(architecture.sizes, rng)
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
        raise_exception=False,
    )


def _run_scenario(scenario: Scenario, seed: int, console: Console) -> Result:
    x_train, y_train, x_test, y_test = scenario.load(seed)
    rng = np.random.default_rng(seed)
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
    worst = max(argument.relative_error for argument in report.arguments)
    return Result(scenario, before, after, test_accuracy, worst, report.passed)


def _cells(result: Result) -> list[tuple[str, str]]:
    """Each cell of a row as two parts, shown on one line or, in a narrow terminal, two."""
    architecture = result.scenario.architecture
    return [
        (result.scenario.source, result.scenario.name),
        (
            "-".join(str(size) for size in architecture.sizes),
            f"{architecture.activation}/{architecture.output_activation}",
        ),
        LOSS_LABELS[architecture.loss],
        (f"{result.loss_before:.3g} →", f"{result.loss_after:.3g}"),
        ("—" if result.accuracy is None else f"{result.accuracy:.3f}", ""),
        ("pass" if result.passed else "FAIL", f"{result.worst_relative_error:.1e}"),
    ]


COLUMNS = [
    (("scenario", ""), "left"),
    (("network", ""), "left"),
    (("loss", ""), "left"),
    (("test loss", ""), "right"),
    (("accuracy", ""), "right"),
    (("gradient", "check"), "left"),
]
"""Each column's header, in two parts like the cells, and its justification."""


def _table(results: Sequence[Result], separator: str) -> Table:
    table = Table(title="the seeds' networks: trained, then gradient-checked")
    for header, justify in COLUMNS:
        # overflow="fold": a terminal too narrow even for two lines wraps a cell, never cuts it
        table.add_column(
            separator.join(part for part in header if part),
            justify=justify,  # type: ignore[arg-type]
            overflow="fold",
        )
    for result in results:
        table.add_row(*(separator.join(part for part in cell if part) for cell in _cells(result)))
    return table


def results_table(results: Sequence[Result], console: Console) -> Table:
    """The demo's table: one line per scenario where the console is wide enough, else two.

    Parameters
    ----------
    results
        One per scenario.
    console
        Where it will be printed (its width decides).

    Returns
    -------
    rich.table.Table
        A table whose every character is shown at the console's width: nothing is cut off
        with an ellipsis, however narrow the terminal.
    """
    wide = _table(results, " ")
    unbounded = console.options.update(max_width=10_000)  # measure() clamps to the maximum
    if console.measure(wide, options=unbounded).maximum <= console.width:
        return wide
    return _table(results, "\n")


NOTES = """\
network: layer sizes, hidden/output activation. test loss: before → after
training. accuracy: on the test set (— for a regression).
gradient check: each W and b from loss_and_grads against float64 central
differences (eps={eps:g}) at random parameters on 8 training examples; pass:
every entry within 1e-8 + 1e-7 |numerical|. The number is the largest
‖analytic − numerical‖ / max(‖analytic‖, ‖numerical‖) of any parameter."""


def add_parser(commands: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    """Add the ``demo`` command to the top-level parser's commands."""
    parser = commands.add_parser(
        "demo",
        help=SUMMARY,
        description=SUMMARY + ": the question's 3-4-4-2 network, seed 001's circles, seed 002's "
        "iris and seed 003's 128-16-1 network; one table of results.",
    )
    parser.add_argument("--seed", type=seed, default=0, help="random seed (default: 0)")
    parser.set_defaults(run=run, parser=parser)


def run(args: argparse.Namespace, console: Console) -> int:
    """Train and check every scenario, print the table; return 0 if every check passed."""
    started = time.perf_counter()
    results = [_run_scenario(scenario, args.seed, console) for scenario in SCENARIOS]
    console.print(results_table(results, console))
    console.print(NOTES.format(eps=GRADCHECK_EPS), highlight=False)
    elapsed = time.perf_counter() - started
    all_passed = all(result.passed for result in results)
    verdict = "every gradient check passed" if all_passed else "a gradient check FAILED"
    console.print(f"{verdict} ({elapsed:.1f} s)", highlight=False)
    return 0 if all_passed else 1
