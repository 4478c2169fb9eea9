"""The analytic side: what ``backward`` says the Jacobians are.

``backward(grad_output, *inputs)`` is a vector-Jacobian product: given ``v = grad_output`` it
returns ``vᵀ J_k`` for every input ``k``. With ``v`` a unit vector ``e_j`` that is row ``j`` of
each Jacobian (the full check calls it once per output entry); with a random ``v`` it is the
weighted sum of rows that fast mode and the sampled check compare.

At a value that fails, the analytic side also tells whether a kink lies within the step: the
analytic derivative then jumps (:meth:`Analytic.jump`).

Every call also checks what came back: one gradient per input, each of its input's shape and
(optionally) dtype; and ``backward`` gives the same gradients when called twice.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Final

import numpy as np
from jaxtyping import Float

from typedbackprop.checking import Array
from typedbackprop.gradcheck.numerical import Direction, GradOutput, OutputLayout

__all__ = ["KINK_FRACTION", "Backward", "Analytic", "as_gradients"]

KINK_FRACTION: Final = 0.25
"""A value that fails is put down to a kink when the analytic derivative jumps across the step
by at least this fraction of its error (see :meth:`Analytic.jump`)."""

Backward = Callable[..., object]
"""``backward(grad_output, *inputs)``, returning one gradient per input."""


def as_gradients(gradients: object, count: int) -> list[Array]:
    """``backward``'s return value as a list of ``count`` arrays (a single array for one input)."""
    if isinstance(gradients, np.ndarray):
        gradients = [gradients]
    if not isinstance(gradients, Sequence):
        raise TypeError(
            f"backward returned a {type(gradients).__name__}; it must return one gradient per "
            "input (a tuple or a list, or a single array for one input)"
        )
    values = list(gradients)
    if len(values) != count:
        raise ValueError(f"backward returned {len(values)} gradients for {count} inputs")
    return [np.asarray(gradient) for gradient in values]


@dataclass
class Analytic:
    """Calls ``backward`` on the working inputs and records what is wrong with its gradients."""

    backward: Backward
    work: list[Array]
    names: list[str]
    layout: OutputLayout
    nondet_tol: float
    check_grad_dtypes: bool
    problems: list[str] = field(default_factory=list)
    """Problems found so far, each once, in the order found."""
    deterministic: bool = True
    """Whether two calls with the same arguments agreed (within ``nondet_tol``) so far."""

    def _problem(self, text: str) -> None:
        if text not in self.problems:
            self.problems.append(text)

    def call(self, grad_output: GradOutput) -> list[Array]:
        """``backward(grad_output, *work)``, one gradient per input, its problems recorded."""
        gradients = as_gradients(self.backward(grad_output, *self.work), len(self.work))
        for name, gradient, value in zip(self.names, gradients, self.work, strict=True):
            if gradient.shape != value.shape:
                self._problem(
                    f"gradient for {name} has shape {gradient.shape}, but {name} has shape "
                    f"{value.shape}"
                )
            elif self.check_grad_dtypes and gradient.dtype != value.dtype:
                self._problem(
                    f"gradient for {name} is {gradient.dtype}, but {name} is {value.dtype}: a "
                    "gradient carries its input's dtype"
                )
        return gradients

    def call_twice(self, grad_output: GradOutput) -> list[Array]:
        """:meth:`call`, then again with the same arguments: the two must agree."""
        first = self.call(grad_output)
        second = as_gradients(self.backward(grad_output, *self.work), len(self.work))
        for name, one, two in zip(self.names, first, second, strict=True):
            if one.shape != two.shape:
                continue
            if self.nondet_tol == 0:
                repeatable = np.array_equal(one, two, equal_nan=True)
            else:
                # NaN on both sides in the same places is repeatable; elsewhere the difference
                # must be within nondet_tol (a NaN difference never is).
                same_nan = np.isnan(one) == np.isnan(two)
                difference = np.abs(np.where(np.isnan(one), 0.0, one - two))
                repeatable = bool(np.all(same_nan) and np.all(difference <= self.nondet_tol))
            if not repeatable:
                self.deterministic = False
                self._problem(f"backward is not deterministic for {name}")
        return first

    def row(self, gradients: list[Array], k: int) -> Float[Array, " entries"]:
        """Input ``k``'s gradient flattened, or NaN where its shape was wrong (never passes)."""
        gradient = gradients[k]
        if gradient.shape != self.work[k].shape:
            return np.full(self.work[k].size, np.nan)
        return np.asarray(gradient, dtype=np.float64).reshape(-1)

    def jacobians(self) -> list[Float[Array, "outputs entries"]]:
        """Every input's full Jacobian, row ``j`` from ``backward`` with ``grad_output = e_j``."""
        size = self.layout.size
        jacobians: list[Array] = [np.zeros((size, value.size)) for value in self.work]
        for j in range(size):
            unit = np.zeros(size)
            unit[j] = 1.0
            grad_output = self.layout.unflatten(unit)
            gradients = self.call_twice(grad_output) if j == 0 else self.call(grad_output)
            for k in range(len(self.work)):
                jacobians[k][j, :] = self.row(gradients, k)
        return jacobians

    def vector_jacobian(
        self, weights: Float[Array, " outputs"], twice: bool = False
    ) -> list[Float[Array, " entries"]]:
        """``vᵀ J_k`` for every input ``k``, flattened, for ``v = weights``."""
        grad_output = self.layout.unflatten(weights)
        gradients = self.call_twice(grad_output) if twice else self.call(grad_output)
        return [self.row(gradients, k) for k in range(len(self.work))]

    def jump(
        self, k: int, direction: Direction, eps: float, weights: Float[Array, " outputs"]
    ) -> Float[Array, " entries"]:
        """``g(x + h d) − 2 g(x) + g(x − h d)`` for ``g = vᵀ J_k``, ``v = weights``, flattened.

        Parameters
        ----------
        k
            Which input moves.
        direction
            An entry index or a direction array, as for the central difference.
        eps
            The step ``h``.
        weights
            ``v``, the weights of the outputs.

        Returns
        -------
        jump
            The second difference of ``backward``'s gradient for input ``k`` along ``d``.

        Notes
        -----
        Dotted with ``d``, this tells a kink from an error. Where ``forward`` is smooth within the
        step, ``vᵀ J d`` changes smoothly and its second difference is ``O(h²)``: far below any
        error worth reporting. Where a kink lies within the step, ``backward`` returns the slope
        of one side at one point and of the other side at another, and the second difference is
        the jump ``Δs`` of the slope. For ``f`` linear on either side of the kinks (ReLU), the
        central difference is off by at most ``|Δs| / 2``, so the jump is at least twice the
        error the kink causes, wherever in the step the kink lies, and even at a point sitting
        on several kinks at once, where ``backward``'s convention (ReLU′(0) = 0) matches neither
        side. A value whose jump is at least :data:`KINK_FRACTION` of its error is skipped; a
        ``backward`` that ignores the kink (no jump) still fails there.
        """
        grad_output = self.layout.unflatten(weights)
        saved = self.work[k]
        values = []
        for step in (eps, -eps):
            if isinstance(direction, int):
                moved = saved.copy()
                moved.reshape(-1)[direction] += step
            else:
                moved = saved + step * direction
            self.work[k] = moved
            try:
                gradients = as_gradients(self.backward(grad_output, *self.work), len(self.work))
            finally:
                self.work[k] = saved
            values.append(self.row(gradients, k))
        center = self.row(as_gradients(self.backward(grad_output, *self.work), len(self.work)), k)
        second: Array = values[0] - 2 * center + values[1]
        return second

    def is_kink(
        self,
        k: int,
        direction: Direction,
        eps: float,
        weights: Float[Array, " outputs"],
        error: float,
    ) -> bool:
        """Whether a value that fails by ``error`` has a kink within its step to blame.

        True when ``backward``'s derivative along ``direction`` jumps across the step by at
        least :data:`KINK_FRACTION` of ``error`` (see :meth:`jump`), beyond what ``nondet_tol``
        lets two calls differ. A ``backward`` that is not deterministic cannot tell: never.

        Along a direction array ``d`` the jump is measured as ``Σ_i |jump_i d_i|``, not
        ``|Σ_i jump_i d_i|``: a random direction can cross several kinks (ReLU units near 0),
        whose jumps have signs of their own and would cancel in the signed sum while the errors
        they cause in the central difference need not. A smooth ``backward`` still has every
        ``jump_i`` of order ``h²``, so the sum stays far below an error worth reporting.
        """
        if not self.deterministic:
            return False
        jump = self.jump(k, direction, eps, weights)
        if isinstance(direction, int):
            along, spread = abs(float(jump[direction])), 1.0
        else:
            # Entry by entry, in absolute value: a direction that crosses several kinks jumps at
            # each, with signs of their own, and a signed sum could cancel jumps whose errors
            # add up (the central difference's error from each kink is at most half its jump).
            flat = direction.reshape(-1)
            along, spread = float(np.abs(jump * flat).sum()), float(np.abs(flat).sum())
        # Four calls' worth of nondet_tol, per unit of the weights and of the direction.
        noise = 4 * self.nondet_tol * spread * float(np.abs(weights).sum())
        return along - noise >= KINK_FRACTION * error
