"""The comparison: analytic against numerical values, and the report of it.

One rule decides every value, whatever produced it (a Jacobian entry, a sampled entry, a
projection): it passes if ``|analytic − numerical| ≤ atol + rtol |numerical|``. Values whose
numerical side cannot be trusted because the step crossed a kink are left out of the
comparison and counted.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

import numpy as np
from jaxtyping import Bool, Float
from numpy.typing import NDArray

from typedbackprop.checking import Array

__all__ = [
    "ArgumentCheck",
    "Projection",
    "GradcheckReport",
    "GradcheckError",
    "within_tolerance",
    "compare",
    "compare_projections",
]

Locate = Callable[[int], tuple[tuple[int, ...], tuple[int, ...], int | None]]
"""Maps a flat position among the compared values to ``(input index, output index, output)``."""


@dataclass(frozen=True)
class Projection:
    """Fast mode's check of one input: random projections ``vᵀ J u``, analytic and numerical."""

    count: int
    """How many projections were compared (each a fresh ``u`` and ``v``)."""
    relative_error: float
    """``‖a − n‖ / max(‖a‖, ‖n‖)`` over the compared projections ``a`` (analytic), ``n``."""
    max_abs_error: float
    """The largest ``|a − n|``."""
    analytic: float
    """``(vᵀ J) u`` of the worst projection: ``backward``'s ``vᵀ J``, dotted with ``u``."""
    numerical: float
    """``vᵀ (f(x + h u) − f(x − h u)) / 2h`` of the worst projection."""
    passed: bool
    """Whether every projection is within tolerance."""
    redrawn: int = 0
    """How many directions ``u`` were drawn again because their step crossed a kink."""
    zero: bool = False
    """Whether every compared projection is within ``atol`` of 0, analytic and numerical."""


@dataclass(frozen=True)
class ArgumentCheck:
    """The comparison of analytic and numerical derivatives for one input."""

    name: str
    relative_error: float
    """``‖a − n‖ / max(‖a‖, ‖n‖)`` (Frobenius norms) over the compared values: the whole
    Jacobian (full check), the sampled entries, or the projections (fast mode alone)."""
    max_abs_error: float
    """The largest ``|analytic − numerical|`` of any compared value."""
    worst_input_index: tuple[int, ...]
    """The input element of the worst entry (worst relative to its tolerance); ``()`` for a
    fast check alone, which compares no single entry."""
    worst_output_index: tuple[int, ...]
    """The output element of the worst entry (``()`` for a scalar output, and for a sampled
    check of a vector output, which compares ``vᵀ J e_i``)."""
    analytic: float
    """The analytic value of the worst entry."""
    numerical: float
    """The numerical value of the worst entry."""
    passed: bool
    """Whether every compared value satisfies ``|analytic − numerical| ≤ atol + rtol |numerical|``
    (the projections too, in fast mode)."""
    method: str = "full"
    """``"full"``, ``"sampled"``, ``"fast"``, ``"fast+sampled"``, or ``"fast, then full"`` /
    ``"fast, then sampled"`` when a failed fast check was followed by an entry check."""
    checked: int = 0
    """How many Jacobian entries (or sampled entries) were compared."""
    skipped: int = 0
    """How many were left out because the step from ``x − h`` to ``x + h`` crossed a kink."""
    projection: Projection | None = None
    """Fast mode's projections of this input, when fast mode ran."""
    worst_output: int | None = None
    """Which output holds the worst entry, for a ``forward`` that returns a tuple."""
    zero: bool = False
    """Whether every value compared (entries and projections) is within ``atol`` of 0, analytic
    and numerical: the gradient is identically 0 (a bias followed by batch norm, on which the
    output does not depend), and a comparison that passes shows nothing of substance."""
    ratio: float | None = None
    """``analytic / numerical``, when it is one constant other than 1 on every compared entry (an
    entry 0 on one side is 0 on both): a gradient off by a constant factor, such as a missing
    ``1/batch`` or a flipped sign; ``None`` otherwise."""

    @property
    def nothing_to_compare(self) -> bool:
        """Whether the check passed only because both sides are 0 (see :attr:`zero`)."""
        return self.passed and self.zero


def within_tolerance(
    exact: Float[Array, "*shape"], approximate: Float[Array, "*shape"], rtol: float, atol: float
) -> Bool[NDArray[np.bool_], "*shape"]:
    """Entry by entry: ``|exact − approximate| ≤ atol + rtol |approximate|`` (NaN never is)."""
    result: NDArray[np.bool_] = np.abs(exact - approximate) <= atol + rtol * np.abs(approximate)
    return result


def _relative_error(exact: Array, approximate: Array) -> float:
    norms = (float(np.linalg.norm(exact)), float(np.linalg.norm(approximate)))
    if any(np.isnan(norms)):  # a NaN gradient is never "close": max() would drop it
        return float("nan")
    scale = max(norms)
    return float(np.linalg.norm(exact - approximate)) / scale if scale != 0 else 0.0


def _all_zero(exact: Array, approximate: Array, atol: float) -> bool:
    """Whether there are values and every one is within ``atol`` of 0 on both sides."""
    return bool(
        exact.size and np.all(np.abs(exact) <= atol) and np.all(np.abs(approximate) <= atol)
    )


RATIO_RTOL: Final = 1e-6
"""How far apart the ratios ``analytic / numerical`` of the entries may be and still be called
one constant factor: central differences are good to about 1e-9 of an entry here."""


def _constant_ratio(exact: Array, approximate: Array, atol: float) -> float | None:
    """``exact / approximate`` if it is one constant (not 1) wherever they are not 0, and the
    entries where the numerical side is 0 are 0 on the analytic side too; else ``None``."""
    if not (np.all(np.isfinite(exact)) and np.all(np.isfinite(approximate))):
        return None
    nonzero = np.abs(approximate) > 10 * atol
    if not nonzero.any():
        return None
    ratios = exact[nonzero] / approximate[nonzero]
    ratio = float(np.median(ratios))
    if ratio == 0 or not np.all(np.abs(ratios - ratio) <= RATIO_RTOL * abs(ratio)):
        return None
    if not np.all(np.abs(exact[~nonzero]) <= 10 * atol * max(abs(ratio), 1.0)):
        return None
    return None if abs(ratio - 1) <= RATIO_RTOL else ratio


def _worst(difference: Array, allowed: Array) -> int:
    """The flat position furthest past its tolerance.

    With ``atol = 0`` an entry that is 0 on both sides has a tolerance of 0: its ratio is 0 when
    it matches, infinite when it does not.
    """
    ratio = np.divide(
        difference, allowed, out=np.where(difference == 0, 0.0, np.inf), where=allowed > 0
    )
    ratio = np.where(np.isnan(ratio), np.inf, ratio)  # NaN is as bad as it gets
    return int(np.argmax(ratio))


def compare(
    name: str,
    exact: Float[Array, "*shape"],
    approximate: Float[Array, "*shape"],
    skipped: Bool[NDArray[np.bool_], "*shape"],
    rtol: float,
    atol: float,
    locate: Locate,
    method: str,
) -> ArgumentCheck:
    """Compare analytic values with numerical ones, leaving out the ``skipped`` positions.

    Parameters
    ----------
    name
        The input's name.
    exact, approximate
        Analytic and numerical values, the same shape.
    skipped
        Where the numerical value crossed a kink: not compared, counted.
    rtol, atol
        The tolerance, ``atol + rtol |numerical|``.
    locate
        Maps a flat position to the input index, output index and output number it stands for.
    method
        How the values were obtained, for the report.

    Returns
    -------
    ArgumentCheck
        The relative error, the largest error and the worst entry of the compared values.
    """
    keep = ~skipped.reshape(-1)
    kept_exact, kept_approximate = exact.reshape(-1)[keep], approximate.reshape(-1)[keep]
    skipped_count = int(skipped.sum())
    if kept_exact.size == 0:
        return ArgumentCheck(
            name, 0.0, 0.0, (), (), 0.0, 0.0, True, method, checked=0, skipped=skipped_count
        )
    difference = np.abs(kept_exact - kept_approximate)
    allowed = atol + rtol * np.abs(kept_approximate)
    worst = _worst(difference, allowed)
    input_index, output_index, output = locate(int(np.flatnonzero(keep)[worst]))
    return ArgumentCheck(
        name=name,
        relative_error=_relative_error(kept_exact, kept_approximate),
        max_abs_error=float(difference.max()),
        worst_input_index=input_index,
        worst_output_index=output_index,
        analytic=float(kept_exact[worst]),
        numerical=float(kept_approximate[worst]),
        passed=bool(np.all(difference <= allowed)),
        method=method,
        checked=int(kept_exact.size),
        skipped=skipped_count,
        worst_output=output,
        zero=_all_zero(kept_exact, kept_approximate, atol),
        ratio=_constant_ratio(kept_exact, kept_approximate, atol),
    )


def compare_projections(
    exact: Float[Array, " projections"],
    approximate: Float[Array, " projections"],
    rtol: float,
    atol: float,
    redrawn: int,
) -> Projection:
    """Compare analytic and numerical projections ``vᵀ J u`` of one input."""
    difference = np.abs(exact - approximate)
    allowed = atol + rtol * np.abs(approximate)
    worst = _worst(difference, allowed)
    return Projection(
        count=int(exact.size),
        relative_error=_relative_error(exact, approximate),
        max_abs_error=float(difference.max()),
        analytic=float(exact[worst]),
        numerical=float(approximate[worst]),
        passed=bool(np.all(difference <= allowed)),
        redrawn=redrawn,
        zero=_all_zero(exact, approximate, atol),
    )


@dataclass(frozen=True)
class GradcheckReport:
    """Per-input results of a gradient check; ``str(report)`` is a table."""

    arguments: tuple[ArgumentCheck, ...]
    """One check per input, in order."""
    eps: float
    rtol: float
    atol: float
    problems: tuple[str, ...] = ()
    """Failures that are not tolerance failures: a gradient of the wrong shape or dtype, an input
    that ``forward`` or ``backward`` modified, a ``backward`` that differs between two calls."""
    method: str = "full"
    """``"full"``, ``"sampled"``, ``"fast"`` or ``"fast+sampled"``."""
    samples: int = 0
    """Entries sampled per input (sampled checks)."""
    projections: int = 0
    """Random projections per input (fast mode)."""
    nondet_tol: float = 0.0
    """How far two calls of ``backward`` may differ."""
    weighted_outputs: bool = False
    """Whether sampled entries are ``vᵀ J e_i`` for a random ``v`` over a non-scalar output."""

    @property
    def passed(self) -> bool:
        """Whether every input passed and there were no other problems."""
        return not self.problems and all(argument.passed for argument in self.arguments)

    def __bool__(self) -> bool:
        return self.passed

    @property
    def notes(self) -> tuple[str, ...]:
        """What was left out, one line per input: entries skipped and directions redrawn."""
        lines = []
        for argument in self.arguments:
            if argument.skipped:
                total = argument.checked + argument.skipped
                what = "Jacobian" if "full" in argument.method else "sampled"
                lines.append(
                    f"{argument.name}: {argument.skipped} of {total} {what} entries skipped: "
                    "the step from x - eps to x + eps crosses a kink"
                )
            if argument.nothing_to_compare:
                lines.append(
                    f"{argument.name}: gradient identically 0 (analytic and numerical within "
                    f"atol={self.atol:g} of 0): the output does not depend on it at this point "
                    "(a bias that batch norm follows; weights into ReLU units off for the whole "
                    "batch); the check compared nothing of substance"
                )
            if argument.projection is not None and argument.projection.redrawn:
                lines.append(
                    f"{argument.name}: {argument.projection.redrawn} projection directions drawn "
                    "again: their step crossed a kink"
                )
        return tuple(lines)

    def _header(self) -> str:
        what = {
            "full": "",
            "sampled": f"{self.samples} random entries per input; ",
            "fast": f"fast: {self.projections} random projections v^T J u per input; ",
            "fast+sampled": f"fast: {self.projections} random projections v^T J u and "
            f"{self.samples} random entries per input; ",
        }[self.method]
        repeat = f"; backward repeatable within {self.nondet_tol:g}" if self.nondet_tol else ""
        return (
            f"gradcheck ({what}central differences, eps={self.eps:g}; "
            f"pass if |analytic - numerical| <= {self.atol:g} + {self.rtol:g} |numerical|{repeat})"
        )

    def _entry_row(self, argument: ArgumentCheck) -> str:
        """The row of an entry check: its worst entry, and its own verdict."""
        # "output", not "out": ``out`` is a dimension name (``W: "out inp"``)
        if argument.worst_output is not None:
            output = f"output{argument.worst_output}"
        elif self.weighted_outputs and "sampled" in argument.method:
            output = "v^T output"
        else:
            output = "output"
        if argument.worst_output_index:
            output += str(list(argument.worst_output_index))
        where = f"d {output} / d {argument.name}{list(argument.worst_input_index)}"
        entries_passed = argument.passed
        if argument.projection is not None and not argument.projection.passed:
            # The verdict includes the failed projections. The entries' own: the worst entry is
            # the one furthest past its tolerance, so they passed if it did.
            entries_passed = argument.checked == 0 or bool(
                within_tolerance(
                    np.array(argument.analytic), np.array(argument.numerical), self.rtol, self.atol
                )
            )
        return _row(argument, where, argument.analytic, argument.numerical, entries_passed)

    def __str__(self) -> str:
        rows = [
            self._header(),
            f"{'input':<12} {'rel. error':>10} {'max abs err':>11}  worst entry",
        ]
        for argument in self.arguments:
            projection = argument.projection
            if argument.nothing_to_compare:
                rows.append(f"{argument.name:<12} gradient identically 0: nothing to compare")
                continue
            if argument.method != "fast":
                rows.append(self._entry_row(argument))
            if projection is not None:
                rows.append(
                    _row(
                        argument,
                        f"v^T J u, worst of {projection.count} projections",
                        projection.analytic,
                        projection.numerical,
                        projection.passed,
                        projection.relative_error,
                        projection.max_abs_error,
                    )
                )
        rows.extend(self.notes)
        rows.extend(f"problem: {problem}" for problem in self.problems)
        rows.append("passed" if self.passed else "FAILED")
        return "\n".join(rows)


def _row(
    argument: ArgumentCheck,
    where: str,
    analytic: float,
    numerical: float,
    passed: bool,
    relative_error: float | None = None,
    max_abs_error: float | None = None,
) -> str:
    """One row of the table; the errors are the argument's unless given."""
    relative = argument.relative_error if relative_error is None else relative_error
    largest = argument.max_abs_error if max_abs_error is None else max_abs_error
    verdict = "ok" if passed else "FAILED"
    return (
        f"{argument.name:<12} {relative:>10.2e} {largest:>11.2e}  {where}: "
        f"analytic {analytic:.10g}, numerical {numerical:.10g}  {verdict}"
    )


class GradcheckError(RuntimeError):
    """Raised by the checks when one fails; ``.report`` holds the details."""

    def __init__(self, report: GradcheckReport) -> None:
        super().__init__(str(report))
        self.report = report
