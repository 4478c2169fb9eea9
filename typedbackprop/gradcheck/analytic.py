"""The analytic side: what ``backward`` says the Jacobians are.

``backward(grad_output, *inputs)`` is a vector-Jacobian product: given ``v = grad_output`` it
returns ``vᵀ J_k`` for every input ``k``. With ``v`` a unit vector ``e_j`` that is row ``j`` of
each Jacobian (the full check calls it once per output entry); with a random ``v`` it is the
weighted sum of rows that fast mode and the sampled check compare.

Every call also checks what came back: one gradient per input, each of its input's shape and
(optionally) dtype; and ``backward`` gives the same gradients when called twice.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from jaxtyping import Float

from typedbackprop.checking import Array
from typedbackprop.gradcheck.numerical import GradOutput, OutputLayout

__all__ = ["Backward", "Analytic", "as_gradients"]

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
