"""The ``typedbackprop`` command line: ``demo``, ``explain``, ``gradcheck`` and ``train``.

One module per command (``typedbackprop.cli.demo``, ``.explain``, ``.gradcheck``, ``.train``),
each with an ``add_parser`` and a ``run``; ``typedbackprop.cli.options`` holds the argument
types and the checks they share.

Every command has ``--help``. Bad arguments print the command's usage and one line saying what
is wrong, naming the option, and exit with status 2, before any time or memory is spent; a
failure while running (a missing optional extra, an unreadable checkpoint, a diverging run)
prints one line and exits with status 1; Ctrl-C, at any moment from the first import on, prints
one line and exits with status 130 (:mod:`typedbackprop._interrupt`). None of them prints a
traceback. Output cut short by its reader (``| head``) ends quietly with status 0.
"""

import argparse
import os
import sys
from collections.abc import Sequence

from rich.console import Console

from typedbackprop import __version__, _interrupt
from typedbackprop.cli import check_shapes, demo, explain, gradcheck, train
from typedbackprop.cli.options import UsageError
from typedbackprop.cli.train import DEFAULTS, TrainingDefaults

__all__ = [
    "main",
    "TrainingDefaults",
    "DEFAULTS",
    "demo",
    "explain",
    "gradcheck",
    "train",
    "check_shapes",
]

COMMANDS = [demo, explain, gradcheck, train, check_shapes]
"""The command modules, in the order ``--help`` lists them."""

PIPE_WIDTH = 120
"""The width of output to a pipe or a file, unless ``COLUMNS`` says otherwise."""


def _columns_given() -> bool:
    """Whether the ``COLUMNS`` environment variable gives a width (rich then uses it)."""
    return os.environ.get("COLUMNS", "").strip().isdigit()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="typedbackprop",
        description="Backpropagation in NumPy whose shapes document and check themselves.",
        epilog="Run 'typedbackprop COMMAND --help' for a command's options.",
    )
    parser.add_argument("--version", action="version", version=f"typedbackprop {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.add_parser(commands)
    return parser


class _Console(Console):
    """rich's console, except that a reader who stops reading ends the command with status 0.

    rich's own ``on_broken_pipe`` exits with status 1, as if the command had failed.
    """

    def on_broken_pipe(self) -> None:
        self.quiet = True
        raise BrokenPipeError  # main() sends the rest nowhere and returns 0


def _first_line(error: BaseException) -> str:
    """The error's message as one line (a multi-line message keeps its first line)."""
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__


def _discard_standard_output() -> None:
    """The reader has gone (``| head``): send what is left, and the final flush, nowhere."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # no file descriptor (a test's stream): nothing to flush
        pass


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
        0 on success (also when the reader of the output stops reading, as ``head`` does), 1
        if a check failed or the run failed, 2 for bad arguments, 130 when interrupted
        (Ctrl-C).
    """
    try:
        _interrupt.release()  # from here on a Ctrl-C is a KeyboardInterrupt, caught below
        return _main(argv, console)
    except KeyboardInterrupt:
        print(_interrupt.INTERRUPTED, file=sys.stderr)
        return _interrupt.STATUS


def _main(argv: Sequence[str] | None, console: Console | None) -> int:
    """:func:`main` but for Ctrl-C."""
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:
        return int(exit_.code or 0)
    if console is None:
        console = _Console()
        if not console.is_terminal and not _columns_given():
            console = _Console(width=PIPE_WIDTH)  # a pipe or a file: no terminal to measure
    try:
        status = int(args.run(args, console))
        console.file.flush()
        return status
    except UsageError as error:
        args.parser.print_usage(sys.stderr)
        print(f"{args.parser.prog}: error: {error}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        _discard_standard_output()
        return 0
    except (ValueError, TypeError, ImportError, OSError, ArithmeticError) as error:
        print(f"typedbackprop: error: {_first_line(error)}", file=sys.stderr)
        return 1
    except MemoryError:
        print("typedbackprop: error: out of memory; try smaller layers", file=sys.stderr)
        return 1
