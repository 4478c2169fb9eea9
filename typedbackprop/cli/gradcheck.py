"""``typedbackprop gradcheck SIZES``: analytic against numerical gradients, per parameter."""

import argparse
from collections.abc import Sequence

import numpy as np
from rich.console import Console
from rich.table import Table

from typedbackprop import LOSSES, Array, Dense, IntArray, gradcheck_network, init_layers
from typedbackprop.cli.explain import add_sizes_arguments
from typedbackprop.cli.options import (
    GRADCHECK_EPS,
    UsageError,
    check_network,
    output_for,
    parameter_count,
    require_memory,
    seed,
)
from typedbackprop.gradcheck.network import loss_evaluations

__all__ = ["MAX_WORK", "add_parser", "run"]

SUMMARY = "compare analytic and numerical gradients, per parameter"

MAX_WORK = 10**10
"""At most this many multiply-adds in all: the loss evaluations ``gradcheck_network`` runs (two
per parameter for a full check, up to 20,000 parameters; fewer, fast + sampled, above), each
about ``parameters × batch``: 100,99,98 (20,000 parameters) at --batch 12 is 1e10 and took 5 s
here; --batch 100, 8e10, took 2 minutes."""


def _step(text: str) -> float:
    """``--eps``: a finite step in ``(0, 1]``, small against parameters of unit scale."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0 < value <= 1:  # also refuses nan and inf
        raise argparse.ArgumentTypeError(
            f"expected a positive step of at most 1 (the parameters are of unit scale), got {text}"
        )
    return value


def add_parser(commands: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    """Add the ``gradcheck`` command to the top-level parser's commands."""
    parser = commands.add_parser("gradcheck", help=SUMMARY, description=SUMMARY)
    add_sizes_arguments(parser)
    parser.add_argument("--seed", type=seed, default=0, help="random seed (default: 0)")
    parser.add_argument(
        "--eps",
        type=_step,
        default=GRADCHECK_EPS,
        help=f"central-difference step (default: {GRADCHECK_EPS:g}, near the cube root "
        "of float64's machine epsilon, where truncation and rounding errors balance)",
    )
    parser.set_defaults(run=run, parser=parser)


def _random_problem(
    sizes: Sequence[int], batch: int, loss: str, rng: np.random.Generator
) -> tuple[Array, Array | IntArray]:
    x = rng.standard_normal((sizes[0], batch))
    if LOSSES[loss].labels:  # class labels, one per example
        return x, rng.integers(0, sizes[-1], size=batch)
    if LOSSES[loss].from_logits:  # 0/1 targets of a sigmoid output
        return x, (rng.random((sizes[-1], batch)) < 0.5).astype(np.float64)
    return x, rng.standard_normal((sizes[-1], batch))


def _check_size(sizes: Sequence[int], batch: int) -> None:
    """Refuse a check that would take hours or more memory than allowed, before starting."""
    count = parameter_count(sizes)
    # The data, and for each layer z, a and the gradients, one column per example.
    require_memory(
        count + 3 * sum(sizes) * batch,
        f"gradcheck {','.join(map(str, sizes))} --batch {batch}",
        "use a smaller --batch (a few examples check the same code)",
    )
    pairs = zip(sizes[:-1], sizes[1:], strict=True)
    arrays = [size for n_in, n_out in pairs for size in (n_in * n_out, n_out)]
    evaluations = loss_evaluations(arrays)  # gradcheck_network's own policy decides how many
    work = evaluations * batch * (count + sum(sizes))
    if work > MAX_WORK:
        raise UsageError(
            f"{evaluations:,} loss evaluations of a batch of {batch:,} are about {work:.1e} "
            f"multiply-adds, more than {MAX_WORK:.0e}: use a smaller --batch"
        )


def run(args: argparse.Namespace, console: Console) -> int:
    """Check every parameter's gradient; return 0 if all pass, 1 if one fails."""
    output = output_for(args.loss, args.output_activation)
    check_network(args.sizes, output, args.loss)
    _check_size(args.sizes, args.batch)
    rng = np.random.default_rng(args.seed)
    layers = init_layers(args.sizes, rng, "glorot_uniform")
    layers = [Dense(layer.W, rng.standard_normal(layer.b.shape)) for layer in layers]
    x, y = _random_problem(args.sizes, args.batch, args.loss, rng)
    # gradcheck_network picks the check: full for a small network, fast + sampled for a large one
    report = gradcheck_network(
        layers, x, y, args.activation, output, args.loss, eps=args.eps, raise_exception=False
    )
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
    for line in (*report.notes, *(f"problem: {problem}" for problem in report.problems)):
        console.print(line, highlight=False)
    console.print("passed" if report.passed else "FAILED", highlight=False)
    return 0 if report.passed else 1
