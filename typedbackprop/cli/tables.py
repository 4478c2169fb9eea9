"""The table ``gradcheck`` prints, one row per parameter array, for every ``--model``."""

from collections.abc import Sequence

from rich.console import Console
from rich.table import Table

from typedbackprop.gradcheck.compare import ArgumentCheck, GradcheckReport

__all__ = ["COLUMNS", "verdict", "gradient_table", "print_gradient_report"]

COLUMNS = ("parameter", "shape", "relative error", "max abs error", "worst entry", "verdict")
"""The columns of :func:`gradient_table`; the errors are right-aligned."""


def verdict(argument: ArgumentCheck) -> str:
    """``ok``, ``FAILED``, or, for a gradient that is 0 on both sides, that it shows nothing."""
    if argument.nothing_to_compare:
        return "0: nothing to compare"
    return "ok" if argument.passed else "FAILED"


def gradient_table(
    title: str, arguments: Sequence[ArgumentCheck], shapes: Sequence[tuple[int, ...]]
) -> Table:
    """One row per parameter array: its name and shape, the errors, the worst entry, the verdict.

    Parameters
    ----------
    title
        What was checked against what.
    arguments
        The report's checks, one per parameter array.
    shapes
        Each array's shape, in the same order.
    """
    table = Table(title=title)
    for column in COLUMNS:
        table.add_column(column, justify="right" if "error" in column else "left")
    for argument, shape in zip(arguments, shapes, strict=True):
        table.add_row(
            argument.name,
            str(shape),
            f"{argument.relative_error:.2e}",
            f"{argument.max_abs_error:.2e}",
            str(list(argument.worst_input_index)),
            verdict(argument),
        )
    return table


def print_gradient_report(
    console: Console, title: str, report: GradcheckReport, shapes: Sequence[tuple[int, ...]]
) -> None:
    """Print :func:`gradient_table`, the report's notes and problems, then ``passed``/``FAILED``."""
    console.print(gradient_table(title, report.arguments, shapes))
    for line in (*report.notes, *(f"problem: {problem}" for problem in report.problems)):
        console.print(line, highlight=False, markup=False)
    console.print("passed" if report.passed else "FAILED", highlight=False)
