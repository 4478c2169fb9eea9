"""Fast mode and the sampled check: the three steps on random projections and random entries.

A full check costs one ``backward`` per output entry and two ``forward`` per input entry. Fast
mode (``torch.autograd.gradcheck(fast_mode=True)``'s method) compares, per input, a few random
projections: for random unit vectors ``v`` over the outputs and ``u`` over the input,

- analytic: ``(vᵀ J) u``, one ``backward`` with ``grad_output = v`` giving ``vᵀ J`` for every
  input at once;
- numerical: ``vᵀ (f(x + h u) − f(x − h u)) / 2h``, two ``forward`` per projection.

A projection mixes every entry, so it says *whether* an input's gradient is wrong, not where.
The sampled check says where, for a sample: random entries ``i``, analytic ``(vᵀ J)_i`` against
numerical ``vᵀ (f(x + h e_i) − f(x − h e_i)) / 2h`` (for a scalar output ``v = 1``: the gradient
entry itself).
"""

import dataclasses
from collections.abc import Callable
from typing import Final

import numpy as np
from jaxtyping import Float

from typedbackprop.checking import Array
from typedbackprop.gradcheck.compare import (
    ArgumentCheck,
    Projection,
    compare,
    compare_projections,
    within_tolerance,
)
from typedbackprop.gradcheck.numerical import central_difference, unit_vector
from typedbackprop.gradcheck.subject import Settings, Subject

__all__ = [
    "MAX_REDRAWS",
    "LOCATE_FULL_COST",
    "LOCATE_SAMPLES",
    "sampled_entries",
    "sampled_checks",
    "projection_check",
    "fast_checks",
]

MAX_REDRAWS: Final = 5
"""How many times a projection direction ``u`` whose step crosses a kink is drawn again."""
LOCATE_FULL_COST: Final = 40_000
"""An input that fails fast mode is then checked in full if that costs at most this many calls
(one ``backward`` per output entry, two ``forward`` per input entry); otherwise sampled."""
LOCATE_SAMPLES: Final = 64
"""How many entries locate the error of an input too large to check in full."""

FullCheck = Callable[[Subject, int, Float[Array, "outputs entries"], Settings], ArgumentCheck]


def sampled_entries(
    subject: Subject,
    settings: Settings,
    rng: np.random.Generator,
    k: int,
    gradient: Float[Array, " entries"],
    weights: Float[Array, " outputs"],
    count: int,
    method: str,
) -> ArgumentCheck:
    """Check ``count`` random entries of input ``k`` (all, if it has no more).

    Parameters
    ----------
    subject, settings
        What is checked, and how.
    rng
        Draws the entries.
    k
        Which input.
    gradient
        ``vᵀ J_k`` from ``backward``, flattened.
    weights
        ``v``, the weights of the outputs.
    count
        How many entries to draw.
    method
        How the report names the check.

    Returns
    -------
    ArgumentCheck
        The comparison of the drawn entries, kinks left out.
    """
    value, name = subject.work[k], subject.names[k]
    if value.size == 0:
        return ArgumentCheck(name, 0.0, 0.0, (), (), 0.0, 0.0, True, method)
    entries = np.sort(rng.choice(value.size, size=min(count, value.size), replace=False))
    numerical = np.zeros(entries.size)
    skipped = np.zeros(entries.size, dtype=bool)
    for position, entry in enumerate(entries):
        difference = central_difference(
            subject.evaluate, subject.work, k, int(entry), settings.eps, subject.center_pattern
        )
        numerical[position] = weights @ difference.derivative
        skipped[position] = difference.crosses_kink
    exact = gradient[entries]
    if not subject.has_patterns:
        failing = ~within_tolerance(exact, numerical, settings.rtol, settings.atol)
        for failing_position in np.flatnonzero(failing):
            position = int(failing_position)
            entry = int(entries[position])
            error = abs(float(exact[position] - numerical[position]))
            skipped[position] = subject.analytic.is_kink(k, entry, settings.eps, weights, error)
    shape = value.shape

    def locate(position: int) -> tuple[tuple[int, ...], tuple[int, ...], int | None]:
        index = np.unravel_index(int(entries[position]), shape)
        return tuple(int(i) for i in index), (), None

    return compare(name, exact, numerical, skipped, settings.rtol, settings.atol, locate, method)


def sampled_checks(
    subject: Subject, settings: Settings, rng: np.random.Generator, method: str = "sampled"
) -> list[ArgumentCheck]:
    """The sampled check of every input: one ``backward`` for ``vᵀ J``, then the entries."""
    weights = subject.random_weights(rng)
    gradients = subject.analytic.vector_jacobian(weights, twice=True)
    count = settings.samples if settings.samples is not None else LOCATE_SAMPLES
    return [
        sampled_entries(subject, settings, rng, k, gradients[k], weights, count, method)
        for k in range(len(subject.work))
    ]


def projection_check(
    subject: Subject,
    settings: Settings,
    rng: np.random.Generator,
    k: int,
    weights: list[Float[Array, " outputs"]],
    products: list[list[Float[Array, " entries"]]],
) -> Projection:
    """Fast mode for input ``k``: ``(vᵀ J) u`` against ``vᵀ (f(x + h u) − f(x − h u)) / 2h``.

    A direction ``u`` whose step crosses a kink (by pattern, or, when the projection fails, by
    the jump of ``backward``'s derivative) is drawn again, up to :data:`MAX_REDRAWS` times.
    """
    value = subject.work[k]
    if value.size == 0:
        return Projection(0, 0.0, 0.0, 0.0, 0.0, True)
    exact, approximate = [], []
    redrawn = 0
    for v, product in zip(weights, products, strict=True):
        for _ in range(MAX_REDRAWS + 1):
            u = unit_vector(rng.standard_normal(value.shape))
            analytic = float(product[k] @ u.reshape(-1))
            difference = central_difference(
                subject.evaluate, subject.work, k, u, settings.eps, subject.center_pattern
            )
            numerical = float(v @ difference.derivative)
            kinked = difference.crosses_kink
            if not subject.has_patterns and not within_tolerance(
                np.array(analytic), np.array(numerical), settings.rtol, settings.atol
            ):
                error = abs(analytic - numerical)
                kinked = subject.analytic.is_kink(k, u, settings.eps, v, error)
            if not kinked:
                exact.append(analytic)
                approximate.append(numerical)
                break
            redrawn += 1
    if not exact:  # the point itself sits on a kink: entries will have to tell
        return Projection(0, 0.0, 0.0, 0.0, 0.0, True, redrawn)
    return compare_projections(
        np.array(exact), np.array(approximate), settings.rtol, settings.atol, redrawn
    )


def fast_checks(subject: Subject, settings: Settings, full_check: FullCheck) -> list[ArgumentCheck]:
    """Fast mode for every input; then sampled entries, or the location of a failure.

    With ``settings.samples`` the sampled check runs on every input as well, and each input's
    verdict needs both. Without it, an input whose projections fail is checked entry by entry
    to locate its worst entry: in full when that costs at most :data:`LOCATE_FULL_COST` calls,
    else :data:`LOCATE_SAMPLES` sampled entries. So is an input for which every projection
    direction crossed a kink (the point sits on one): then the entries decide its verdict.
    """
    rng = np.random.default_rng(settings.seed)
    weights = [subject.random_weights(rng) for _ in range(settings.projections)]
    if subject.layout.is_scalar:  # v = 1 every time: one backward serves every projection
        products = [subject.analytic.vector_jacobian(weights[0], twice=True)] * len(weights)
    else:
        products = [
            subject.analytic.vector_jacobian(v, twice=(number == 0))
            for number, v in enumerate(weights)
        ]
    projections = [
        projection_check(subject, settings, rng, k, weights, products)
        for k in range(len(subject.work))
    ]
    if settings.samples is not None:
        sampled = sampled_checks(subject, settings, rng, "fast+sampled")
        return [
            dataclasses.replace(
                check,
                passed=check.passed and projection.passed,
                projection=projection,
                zero=check.zero and (projection.zero or not projection.count),
            )
            for check, projection in zip(sampled, projections, strict=True)
        ]
    checks = []
    jacobians: list[Float[Array, "outputs entries"]] | None = None
    for k, projection in enumerate(projections):
        if projection.passed and projection.count:
            checks.append(
                ArgumentCheck(subject.names[k], projection.relative_error,
                              projection.max_abs_error, (), (), projection.analytic,
                              projection.numerical, True, "fast", projection=projection,
                              zero=projection.zero)
            )  # fmt: skip
            continue
        size = subject.work[k].size
        if subject.layout.size + 2 * size <= LOCATE_FULL_COST:
            if jacobians is None:
                jacobians = subject.analytic.jacobians()
            located = full_check(subject, k, jacobians[k], settings)
            method = "fast, then full"
        else:
            v = subject.random_weights(rng)
            gradient = subject.analytic.vector_jacobian(v)[k]
            located = sampled_entries(
                subject, settings, rng, k, gradient, v, LOCATE_SAMPLES, "fast, then sampled"
            )
            method = "fast, then sampled"
        # Failed projections fail the input, wherever the entries locate the error; with no
        # projection compared (every direction crossed a kink), the entries decide.
        passed = located.passed and projection.passed
        zero = located.zero and (projection.zero or not projection.count)
        checks.append(
            dataclasses.replace(
                located, passed=passed, method=method, projection=projection, zero=zero
            )
        )
    return checks
