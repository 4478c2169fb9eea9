"""``typedbackprop explain SIZES``: every forward and backward equation, with its shapes."""

import argparse

from rich.console import Console

from typedbackprop.cli.models import add_model_option, explain_model
from typedbackprop.cli.options import (
    NETWORK_DEFAULTS,
    UsageError,
    add_network_options,
    check_network,
    check_option_models,
    fill_defaults,
    layer_sizes,
    mark_option_models,
    output_for,
    parameter_count,
    positive_int,
    require_memory,
)
from typedbackprop.explain import LAYOUTS, explain
from typedbackprop.recipes import RECIPES

__all__ = ["add_parser", "add_sizes_arguments", "check_sizes_or_model", "run"]

SUMMARY = "print every forward and backward equation with its shapes"


def add_sizes_arguments(parser: argparse.ArgumentParser) -> None:
    """``SIZES``, ``--batch`` and the network options, shared with ``gradcheck``."""
    parser.add_argument(
        "sizes",
        type=layer_sizes,
        nargs="?",
        help="layer sizes, input first: e.g. 3,4,4,2 (a perceptron; leave out with --model)",
    )
    parser.add_argument("--batch", type=positive_int, default=5, help="examples (default: 5)")
    add_network_options(parser, defaults=True)
    add_model_option(parser)


def add_parser(commands: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    """Add the ``explain`` command to the top-level parser's commands."""
    parser = commands.add_parser("explain", help=SUMMARY, description=SUMMARY)
    add_sizes_arguments(parser)
    parser.add_argument(
        "--layout",
        choices=LAYOUTS,
        help="features-first: one column per example, W (out, inp), the package's; "
        "batch-first: one row per example, W (inp, out) (default: features-first)",
    )
    mark_option_models(parser)
    parser.set_defaults(run=run, parser=parser)


def check_sizes_or_model(args: argparse.Namespace) -> None:
    """SIZES for the perceptron, none for another ``--model``; no option the model does not
    take (:data:`~typedbackprop.cli.options.OPTION_MODELS`); then the perceptron's defaults."""
    check_option_models(args)
    if args.model == "mlp" and args.sizes is None:
        raise UsageError("give the layer SIZES (e.g. 3,4,4,2), or a --model")
    if args.model != "mlp" and args.sizes is not None:
        raise UsageError(f"--model {args.model} has its own sizes: leave SIZES out")
    if args.model == "mlp":
        fill_defaults(args, NETWORK_DEFAULTS | {"layout": "features-first"})


def run(args: argparse.Namespace, console: Console) -> int:
    """Print the equations; return the exit status (0)."""
    check_sizes_or_model(args)
    if args.model != "mlp":
        return explain_model(RECIPES[args.model], args.batch, console)
    output = output_for(args.loss, args.output_activation)
    check_network(args.sizes, output, args.loss)
    # The real forward and backward passes run: the parameters, and for each layer z, a and
    # the gradients, one column per example.
    values = parameter_count(args.sizes) + 3 * sum(args.sizes) * args.batch
    require_memory(
        values,
        f"explain {','.join(map(str, args.sizes))} --batch {args.batch}",
        "the shapes read the same at a smaller size",
    )
    lines = explain(
        args.sizes, args.batch, args.activation, output, args.loss, args.layout, console.width
    )  # laid out for the console's width: COLUMNS, the terminal's, or a pipe's
    for line in lines:
        console.print(line, highlight=False, markup=False, soft_wrap=True)
    return 0
