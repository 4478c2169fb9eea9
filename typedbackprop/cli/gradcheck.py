"""``typedbackprop gradcheck SIZES``: analytic against numerical gradients, per parameter."""

import argparse
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from rich.console import Console

from typedbackprop import Array, Dense, IntArray, gradcheck_network, init_layers
from typedbackprop.cli.explain import add_sizes_arguments, check_sizes_or_model
from typedbackprop.cli.models import gradcheck_model
from typedbackprop.cli.options import (
    GRADCHECK_EPS,
    MAX_VALUES,
    UsageError,
    check_network,
    mark_option_models,
    output_for,
    parameter_count,
    plural,
    require_memory,
    seed,
)
from typedbackprop.cli.tables import print_gradient_report
from typedbackprop.gradcheck.network import (
    FULL_CHECK_PARAMETERS,
    chosen_method,
    loss_evaluations,
)
from typedbackprop.nn import LOSSES
from typedbackprop.recipes import RECIPES

__all__ = ["MAX_WORK", "add_parser", "run"]

SUMMARY = "compare analytic and numerical gradients, per parameter"

MAX_WORK = 10**10
"""At most this many multiply-adds in all: the loss evaluations ``gradcheck_network`` runs (two
per parameter for a full check, up to 20,000 parameters; fewer, fast + sampled, above, or where
the full check's work would pass this limit), each about ``parameters × batch``: 100,99,98
(20,000 parameters) at --batch 12 is 1e10 and took 5 s here; --batch 100, 8e10, took 2
minutes."""


SMALLEST_STEP = 1e-8
"""The smallest ``--eps``. A central difference carries a rounding error of about
``1e-16 · |L| / eps``: at 1e-8 that is already near the check's relative tolerance (1e-7) for
small gradients, and below it the difference is mostly rounding, which the check would report
as a failure of a correct backward."""


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
    if value < SMALLEST_STEP:
        raise argparse.ArgumentTypeError(
            f"expected a step of at least {SMALLEST_STEP:g}, got {text}: below it a central "
            "difference is mostly rounding error (about 1e-16 × loss / eps)"
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
    mark_option_models(parser)
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


@dataclass(frozen=True)
class Plan:
    """The check the command runs: ``gradcheck_network``'s method, and why."""

    method: Literal["full", "fast"]
    evaluations: int
    """The loss evaluations it runs (``loss_evaluations``)."""
    reason: str
    """Why fast mode, for the header (empty for the full check)."""


def _plan(sizes: Sequence[int], batch: int) -> Plan:
    """The full check if its work is within :data:`MAX_WORK`, else fast mode plus samples.

    ``gradcheck_network`` picks by parameter count alone (full up to
    :data:`~typedbackprop.gradcheck.network.FULL_CHECK_PARAMETERS`); the command also weighs the
    batch, and falls back to fast mode plus sampled entries when a full check would be too much
    work. It refuses, before starting, a check that would take hours even so, or more memory
    than allowed.
    """
    count = parameter_count(sizes)
    # The data, and for each layer z, a and the gradients, one column per example.
    too_large_at_batch_1 = count + 3 * sum(sizes) > MAX_VALUES
    require_memory(
        count + 3 * sum(sizes) * batch,
        f"gradcheck {','.join(map(str, sizes))} --batch {batch}",
        "use smaller layer sizes (even one example would not fit)"
        if too_large_at_batch_1
        else "use a smaller --batch (a few examples check the same code)",
    )
    pairs = zip(sizes[:-1], sizes[1:], strict=True)
    arrays = [size for n_in, n_out in pairs for size in (n_in * n_out, n_out)]
    per_evaluation = batch * (count + sum(sizes))  # multiply-adds of one loss evaluation
    full = loss_evaluations(arrays, "full")
    if chosen_method(count, "auto") == "full" and full * per_evaluation <= MAX_WORK:
        return Plan("full", full, "")
    fast = loss_evaluations(arrays, "fast")  # gradcheck_network's own count decides
    if fast * per_evaluation > MAX_WORK:
        raise UsageError(
            f"{fast:,} loss evaluations of a batch of {batch:,} are about "
            f"{fast * per_evaluation:.1e} multiply-adds, more than {MAX_WORK:.0e}: use a smaller "
            "--batch"
        )
    if chosen_method(count, "auto") == "fast":
        why = f"more than {FULL_CHECK_PARAMETERS:,} parameters"
    else:
        why = (
            f"a full check would be {full:,} loss evaluations, about "
            f"{full * per_evaluation:.1e} multiply-adds, more than {MAX_WORK:.0e}"
        )
    return Plan("fast", fast, why)


def run(args: argparse.Namespace, console: Console) -> int:
    """Check every parameter's gradient; return 0 if all pass, 1 if one fails."""
    check_sizes_or_model(args)
    if args.model != "mlp":
        return gradcheck_model(RECIPES[args.model], args.batch, args.seed, args.eps, console)
    output = output_for(args.loss, args.output_activation)
    check_network(args.sizes, output, args.loss)
    plan = _plan(args.sizes, args.batch)
    rng = np.random.default_rng(args.seed)
    layers = init_layers(args.sizes, rng, "glorot_uniform")
    layers = [Dense(layer.W, rng.standard_normal(layer.b.shape)) for layer in layers]
    x, y = _random_problem(args.sizes, args.batch, args.loss, rng)
    report = gradcheck_network(
        layers, x, y, args.activation, output, args.loss, eps=args.eps, method=plan.method,
        raise_exception=False,
    )  # fmt: skip
    console.print(
        f"{'-'.join(map(str, args.sizes))}, batch {args.batch}: "
        f"{plural(len(report.arguments), 'parameter array')}, "
        f"{parameter_count(args.sizes):,} numbers; eps={args.eps:g}",
        highlight=False,
    )
    if plan.method == "full":
        mode = f"full check: every entry ({plan.evaluations:,} loss evaluations)"
    else:
        mode = (
            f"fast mode: {report.projections} random projections and {report.samples} random "
            f"entries per array ({plan.reason})"
        )
    console.print(mode, highlight=False, soft_wrap=True)
    shapes = [array.shape for layer in layers for array in (layer.W, layer.b)]
    title = f"{args.activation}/{output}, {args.loss}: analytic against central differences"
    print_gradient_report(console, title, report, shapes)
    return 0 if report.passed else 1
