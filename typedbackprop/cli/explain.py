"""``typedbackprop explain SIZES``: every forward and backward equation, with its shapes."""

import argparse

from rich.console import Console

from typedbackprop.cli.options import (
    add_network_options,
    check_network,
    layer_sizes,
    output_for,
    parameter_count,
    positive_int,
    require_memory,
)
from typedbackprop.explain import explain
from typedbackprop.explain_batch_first import LAYOUTS

__all__ = ["add_parser", "add_sizes_arguments", "run"]

SUMMARY = "print every forward and backward equation with its shapes"


def add_sizes_arguments(parser: argparse.ArgumentParser) -> None:
    """``SIZES``, ``--batch`` and the network options, shared with ``gradcheck``."""
    parser.add_argument("sizes", type=layer_sizes, help="layer sizes, input first: e.g. 3,4,4,2")
    parser.add_argument("--batch", type=positive_int, default=5, help="examples (default: 5)")
    add_network_options(parser, defaults=True)


def add_parser(commands: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    """Add the ``explain`` command to the top-level parser's commands."""
    parser = commands.add_parser("explain", help=SUMMARY, description=SUMMARY)
    add_sizes_arguments(parser)
    parser.add_argument(
        "--layout",
        choices=LAYOUTS,
        default="features-first",
        help="features-first: one column per example, W (out, in), the package's; "
        "batch-first: one row per example, W (in, out) (default: features-first)",
    )
    parser.set_defaults(run=run, parser=parser)


def run(args: argparse.Namespace, console: Console) -> int:
    """Print the equations; return the exit status (0)."""
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
    for line in explain(args.sizes, args.batch, args.activation, output, args.loss, args.layout):
        console.print(line, highlight=False, markup=False, soft_wrap=True)
    return 0
