"""``gradcheck``: the Jacobians ``backward`` implies against central differences of ``forward``.

The check runs in three named steps, each in its own module: the **analytic** side
(:mod:`~typedbackprop.gradcheck.analytic`, calls of ``backward``), the **numerical** side
(:mod:`~typedbackprop.gradcheck.numerical`, central differences of ``forward``) and the
**comparison** (:mod:`~typedbackprop.gradcheck.compare`, the tolerance and the report). Fast
mode and the sampled check (:mod:`~typedbackprop.gradcheck.fast`) are the same three steps on
random projections and random entries.
"""

from collections.abc import Callable, Sequence
from typing import Any, Final

import numpy as np
from jaxtyping import Float

from typedbackprop.checking import Array
from typedbackprop.gradcheck.analytic import Analytic, Backward
from typedbackprop.gradcheck.compare import (
    ArgumentCheck,
    GradcheckError,
    GradcheckReport,
    compare,
    within_tolerance,
)
from typedbackprop.gradcheck.fast import fast_checks, sampled_checks
from typedbackprop.gradcheck.numerical import (
    DEFAULT_EPS,
    OutputLayout,
    Pattern,
    central_difference,
)
from typedbackprop.gradcheck.subject import Settings, Subject
from typedbackprop.gradcheck.validate import input_names, require_float64, require_settings

__all__ = ["DEFAULT_RTOL", "DEFAULT_ATOL", "gradcheck", "full_check", "run_checks"]

DEFAULT_RTOL: Final = 1e-7
"""The relative tolerance: seed 001's bar of a relative error below ``1e-7``, entry by entry."""
DEFAULT_ATOL: Final = 1e-8
"""The absolute tolerance, for entries near 0, where the relative one would ask the impossible."""


def full_check(
    subject: Subject, k: int, analytic: Float[Array, "outputs entries"], settings: Settings
) -> ArgumentCheck:
    """Compare input ``k``'s whole Jacobian, column by column, with central differences.

    Columns whose step crossed a kink (by pattern) are left out; without patterns, the failing
    entries of a column are left out when ``backward``'s derivative jumps across the step
    (:meth:`~typedbackprop.gradcheck.analytic.Analytic.jump`): a kink, not an error.
    """
    value = subject.work[k]
    numerical = np.zeros_like(analytic)
    skipped = np.zeros(analytic.shape, dtype=bool)
    for i in range(value.size):
        difference = central_difference(
            subject.evaluate, subject.work, k, i, settings.eps, subject.center_pattern
        )
        numerical[:, i] = difference.derivative
        skipped[:, i] = difference.crosses_kink
    if not subject.has_patterns:
        failing = ~within_tolerance(analytic, numerical, settings.rtol, settings.atol)
        for column in np.flatnonzero(failing.any(axis=0)):
            i = int(column)
            # Weigh the outputs by the errors of the failing ones: the weighted error is then
            # their squared norm, and a real error in any of them cannot cancel out.
            weights = np.where(failing[:, i], analytic[:, i] - numerical[:, i], 0.0)
            weights = np.nan_to_num(weights, nan=1.0, posinf=1.0, neginf=-1.0)
            error = abs(float(weights @ (analytic[:, i] - numerical[:, i])))
            if subject.analytic.is_kink(k, i, settings.eps, weights, error):
                skipped[:, i] |= failing[:, i]
    layout, shape = subject.layout, value.shape

    def locate(position: int) -> tuple[tuple[int, ...], tuple[int, ...], int | None]:
        row, column = divmod(position, value.size)
        output, output_index = layout.locate(row)
        return tuple(int(i) for i in np.unravel_index(column, shape)), output_index, output

    return compare(
        subject.names[k], analytic, numerical, skipped, settings.rtol, settings.atol, locate, "full"
    )


def run_checks(subject: Subject, settings: Settings) -> tuple[list[ArgumentCheck], list[str]]:
    """Run the check ``settings`` ask for; return one check per input and the problems found."""
    if settings.method == "full":
        jacobians = subject.analytic.jacobians()
        checks = [
            full_check(subject, k, jacobian, settings) for k, jacobian in enumerate(jacobians)
        ]
    elif settings.method == "sampled":
        checks = sampled_checks(subject, settings, np.random.default_rng(settings.seed))
    else:
        checks = fast_checks(subject, settings, full_check)
    problems = list(subject.analytic.problems)
    for check in checks:
        if check.skipped and not check.checked:
            problems.append(
                f"every entry of {check.name} compared crossed a kink: nothing was checked; "
                "check at another point"
            )
    return checks, problems


def gradcheck(
    forward: Callable[..., Any],
    backward: Backward,
    inputs: Sequence[Array],
    *,
    names: Sequence[str] | None = None,
    eps: float = DEFAULT_EPS,
    rtol: float = DEFAULT_RTOL,
    atol: float = DEFAULT_ATOL,
    nondet_tol: float = 0.0,
    check_grad_dtypes: bool = True,
    fast_mode: bool = False,
    samples: int | None = None,
    projections: int = 3,
    seed: int = 0,
    raise_exception: bool = True,
) -> GradcheckReport:
    """Compare the Jacobians ``backward`` implies with central differences of ``forward``.

    Parameters
    ----------
    forward
        ``forward(*inputs)`` returns an array or a number, or a tuple of them.
    backward
        ``backward(grad_output, *inputs)`` returns one gradient per input (a tuple, or a single
        array for one input): the vector-Jacobian product ``grad_outputᵀ J`` for each input.
        ``grad_output`` has the shape of ``forward``'s output, is a ``float`` for a scalar
        output, and is a tuple of those for a ``forward`` that returns a tuple.
    inputs
        float64 arrays to differentiate with respect to; copied, never modified. Close over
        anything that should not be differentiated (targets, labels).
    names
        Names for the report; by default ``forward``'s parameter names.
    eps
        The central-difference step (see :data:`~typedbackprop.gradcheck.DEFAULT_EPS`).
    rtol, atol
        A value passes if ``|analytic − numerical| ≤ atol + rtol |numerical|``. The defaults are
        far tighter than ``torch.autograd.gradcheck``'s (1e-3, 1e-5) and at least as tight as
        the usual bar of a relative error below 1e-7.
    nondet_tol
        How far two calls of ``backward`` with the same arguments may differ (0: bit for bit).
    check_grad_dtypes
        Fail if a gradient's dtype differs from its input's.
    fast_mode
        Compare random projections ``vᵀ J u`` instead of whole Jacobians: a few calls instead of
        one ``backward`` per output entry and two ``forward`` per input entry. An input that
        fails is then checked entry by entry (in full where affordable, else sampled) to locate
        its worst entry.
    samples
        Check this many random entries of each input (``vᵀ J e_i`` for a random ``v``) instead of
        every entry; with ``fast_mode``, in addition to the projections.
    projections
        How many random projections fast mode compares per input.
    seed
        Seeds the projections and the sampled entries.
    raise_exception
        Raise :class:`GradcheckError` on failure (the default, as ``torch.autograd.gradcheck``
        does, so that a failing check cannot pass unnoticed); otherwise return the report.

    Returns
    -------
    GradcheckReport
        Per input: relative error, largest absolute error, the worst entry, entries skipped.

    Raises
    ------
    TypeError
        If an input is not a float64 array: the message says what to pass instead (a list
        converts, float32 is too coarse, complex must be split, an integer has no derivative).
    ValueError
        If ``names`` does not hold one name per input, ``backward`` returns another number of
        gradients than there are inputs, or a setting is out of range.
    GradcheckError
        If the check fails and ``raise_exception`` is true.

    Notes
    -----
    The full check compares the whole Jacobian of every input, as ``torch.autograd.gradcheck``
    does: the analytic one row by row, by calling ``backward`` with each unit vector as
    ``grad_output``; the numerical one column by column, ``(f(x + h e_i) − f(x − h e_i)) / 2h``.

    Kinks: where ``forward`` is not differentiable (ReLU at 0), a step that crosses the kink
    gives a central difference that matches neither side. An entry that fails is tested: if
    ``backward``'s own derivative jumps between ``x − h`` and ``x + h`` by a good part of the
    error (:meth:`~typedbackprop.gradcheck.analytic.Analytic.jump`), a kink lies within the
    step, and the entry is skipped and counted in the report instead of failing. A real error
    where ``forward`` is smooth still fails, and so does a ``backward`` that ignores a kink.

    The check also fails, whatever the numbers, if a gradient's shape (or dtype) differs from
    its input's, if ``forward`` or ``backward`` modifies an input, or if ``backward`` returns
    different values for the same arguments twice.
    """
    originals = require_float64(inputs)
    chosen_names = input_names(forward, len(originals), names)
    require_settings(
        eps=eps,
        rtol=rtol,
        atol=atol,
        nondet_tol=nondet_tol,
        samples=samples,
        projections=projections,
    )
    settings = Settings(
        eps, rtol, atol, nondet_tol, check_grad_dtypes, fast_mode, samples, projections, seed
    )
    # forward and backward see copies; the caller's inputs are never written to, so they are
    # also what the copies are compared with afterwards.
    work = [value.copy() for value in originals]
    layout = OutputLayout.of(forward(*work))

    def evaluate(point: list[Array]) -> tuple[Float[Array, " outputs"], Pattern]:
        return layout.flatten(forward(*point)), None

    analytic = Analytic(backward, work, chosen_names, layout, nondet_tol, check_grad_dtypes)
    subject = Subject(evaluate, analytic, work, chosen_names, layout)
    checks, problems = run_checks(subject, settings)
    for name, value, original in zip(chosen_names, work, originals, strict=True):
        if not np.array_equal(value, original, equal_nan=True):
            problems.append(f"forward or backward modified the input {name} in place")
    report = make_report(checks, problems, settings, layout)
    if raise_exception and not report.passed:
        raise GradcheckError(report)
    return report


def make_report(
    checks: Sequence[ArgumentCheck],
    problems: Sequence[str],
    settings: Settings,
    layout: OutputLayout,
) -> GradcheckReport:
    """The report of a run with ``settings``."""
    return GradcheckReport(
        arguments=tuple(checks),
        eps=settings.eps,
        rtol=settings.rtol,
        atol=settings.atol,
        problems=tuple(problems),
        method=settings.method,
        samples=settings.samples or 0,
        projections=settings.projections if settings.fast_mode else 0,
        nondet_tol=settings.nondet_tol,
        weighted_outputs=not layout.is_scalar,
    )
