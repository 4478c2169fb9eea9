"""The array aliases every annotation uses, whether checks are on, and ``require_finite``."""

import math
import os
import sys
from typing import Any, Final

import numpy as np
from jaxtyping import Float
from numpy.typing import NDArray

__all__ = ["Array", "IntArray", "CHECKS_ENABLED", "require_finite"]


if sys.platform == "typedbackprop-shapes":  # Pyrefly's shape checking: see checking.static
    Array = np.ndarray
    IntArray = np.ndarray
else:
    Array = NDArray[np.floating[Any]]
    """A floating-point NumPy array; dimensions are named at each use: ``Float[Array, "out inp"]``.

    (Under Pyrefly's shape checking it is ``np.ndarray``, whose shape stubs carry the shape.)
    """

    IntArray = NDArray[np.integer[Any]]
    """An integer NumPy array, for class labels: ``Int[IntArray, " batch"]``."""


def _checks_enabled_from_environment() -> bool:
    value = os.environ.get("TYPEDBACKPROP_CHECKS", "1").strip().lower()
    return value not in {"0", "false", "off", "no"}


CHECKS_ENABLED: Final[bool] = _checks_enabled_from_environment()
"""Whether :func:`checked` checks; read once, from ``TYPEDBACKPROP_CHECKS``, at import."""


_SUMMED: Final = 64
"""The size up to which ``require_finite`` sums an array's entries as Python floats."""


def require_finite(name: str, values: Float[Array, "*shape"]) -> None:
    """Raise ``ValueError`` naming the first NaN or infinite entry of ``values``, if any.

    Parameters
    ----------
    name
        What ``values`` is called in the message (``"x"``, ``"logits"``).
    values
        A floating-point array of any shape, ``*shape``. The annotation is documentation only:
        ``require_finite`` is not wrapped in :func:`checked`, since every caller passes an array
        its own checked signature has already typed, and it runs on every training step.

    Raises
    ------
    ValueError
        ``"x contains nan at index (1, 3)"``, for the first non-finite entry.
    """
    # NaN and ±inf propagate through a sum (of squares), so a finite one proves every entry
    # finite; only one that is not (or that overflows) needs the entry-by-entry test. A few
    # dozen numbers are summed as Python floats: NumPy's call costs more than their sum.
    if math.isfinite(
        sum(values.ravel().tolist()) if values.size <= _SUMMED else np.vdot(values, values)
    ):
        return
    bad = np.argwhere(~np.isfinite(values))
    if len(bad):
        index = tuple(int(i) for i in bad[0])
        raise ValueError(f"{name} contains {values[index]} at index {index}")
