"""What a check runs on: the working inputs, how to evaluate them, and the settings.

:func:`~typedbackprop.gradcheck.gradcheck` and
:func:`~typedbackprop.gradcheck.gradcheck_network` differ only in how they evaluate a point (a
network also reports which side of each ReLU kink every unit lies on) and in what ``backward``
is; both hand a :class:`Subject` and :class:`Settings` to the same three steps.
"""

from dataclasses import dataclass, field

import numpy as np
from jaxtyping import Float

from typedbackprop.checking import Array
from typedbackprop.gradcheck.analytic import Analytic
from typedbackprop.gradcheck.numerical import Evaluate, OutputLayout, Pattern, unit_vector

__all__ = ["Settings", "Subject"]


@dataclass(frozen=True)
class Settings:
    """The options of a check, as the entry points take them."""

    eps: float
    rtol: float
    atol: float
    nondet_tol: float = 0.0
    check_grad_dtypes: bool = True
    fast_mode: bool = False
    samples: int | None = None
    projections: int = 3
    seed: int = 0

    @property
    def method(self) -> str:
        """``"full"``, ``"sampled"``, ``"fast"`` or ``"fast+sampled"``."""
        if self.fast_mode:
            return "fast" if self.samples is None else "fast+sampled"
        return "full" if self.samples is None else "sampled"


@dataclass
class Subject:
    """The function under check at one point: inputs, names, output layout, both sides."""

    evaluate: Evaluate
    analytic: Analytic
    work: list[Array]
    names: list[str]
    layout: OutputLayout
    center: Float[Array, " outputs"] = field(init=False)
    """``f`` at the unperturbed point, every output entry."""
    center_pattern: Pattern = field(init=False)
    """The kink pattern at the unperturbed point (``None``: the function cannot tell)."""

    def __post_init__(self) -> None:
        self.center, self.center_pattern = self.evaluate(self.work)

    @property
    def has_patterns(self) -> bool:
        """Whether kinks are told by patterns (exact) rather than by the non-linearity test."""
        return self.center_pattern is not None

    def random_weights(self, rng: np.random.Generator) -> Float[Array, " outputs"]:
        """A random unit ``v`` over the outputs, or ``1`` for a scalar output (a loss)."""
        if self.layout.is_scalar:
            return np.ones(1)
        return unit_vector(rng.standard_normal(self.layout.size))
