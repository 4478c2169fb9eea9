"""Ctrl-C while the command line starts: one line and exit status 130, never a traceback.

The ``typedbackprop`` script and ``python -m typedbackprop`` import the package (NumPy,
jaxtyping, rich, ...) before :func:`typedbackprop.cli.main` can catch anything: seconds on a
busy machine. The package imports this module first; in a process that is the command line it
installs :func:`interrupted` as the SIGINT handler until ``main`` takes over
(:func:`release`). Imported as a library, the package leaves SIGINT alone.
"""

import os
import signal
import sys
from pathlib import Path
from types import FrameType

__all__ = ["INTERRUPTED", "STATUS", "is_command_line", "interrupted", "guard", "release"]

INTERRUPTED = "typedbackprop: interrupted"
"""The one line a Ctrl-C prints, on standard error."""

STATUS = 130
"""The exit status after a Ctrl-C (128 + SIGINT, as shells report it)."""

PROGRAM = "typedbackprop"


def is_command_line() -> bool:
    """Whether this process is the command line: the console script, or ``python -m
    typedbackprop`` (while ``-m`` locates the module, ``sys.argv[0]`` is ``"-m"`` and
    ``sys.orig_argv`` holds the module's name)."""
    if sys.argv and Path(sys.argv[0]).name in (PROGRAM, f"{PROGRAM}.exe"):
        return True
    if not sys.argv or sys.argv[0] != "-m":
        return False
    arguments = list(getattr(sys, "orig_argv", ()))
    for index, argument in enumerate(arguments):
        if argument == "-m":
            return arguments[index + 1 : index + 2] == [PROGRAM]
        if argument == f"-m{PROGRAM}":
            return True
    return False


def interrupted(signum: int, frame: FrameType | None) -> None:
    """The SIGINT handler while the command line imports: one line, then exit 130.

    The exit is ``os._exit``, not ``SystemExit``: the signal can land inside an extension
    module's initialisation (NumPy's C code importing ``datetime``), which turns any exception
    raised there into its own ``ImportError`` and a page of advice. Nothing has started yet that
    would need cleaning up (``main`` takes SIGINT back before any work), so leaving at once is
    safe.
    """
    print(INTERRUPTED, file=sys.stderr, flush=True)
    sys.stdout.flush()
    os._exit(STATUS)


def guard() -> None:
    """Install :func:`interrupted` for SIGINT in the command line's process, if SIGINT has
    Python's default handler (one set by someone else is left alone)."""
    if is_command_line() and signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signal.signal(signal.SIGINT, interrupted)


def release() -> None:
    """Give SIGINT back to Python's default handler (``KeyboardInterrupt``), if
    :func:`guard` installed :func:`interrupted`: ``main`` catches it from there on."""
    if signal.getsignal(signal.SIGINT) is interrupted:
        signal.signal(signal.SIGINT, signal.default_int_handler)


guard()
