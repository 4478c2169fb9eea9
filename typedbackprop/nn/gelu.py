"""GELU, ``a = z Φ(z)``, exact and tanh-approximate, with the error function it needs.

``Φ`` is the standard normal distribution function, ``Φ(z) = ½ erfc(−z/√2)``. NumPy has no
``erf``, and the package depends on nothing that has one, so :func:`erfc` is W. J. Cody's
rational Chebyshev approximation ("Rational Chebyshev approximations for the error function",
Math. Comp. 23, 1969, the ``CALERF`` routine of SPECFUN), accurate to a few units in the last
place of float64 over the whole line, vectorized here. The tanh form is the approximation
GPT-2 was trained with; PyTorch calls it ``approximate="tanh"``.

Like the other activations, backward takes ``(grad_a, z, a)``.
"""

import math

import numpy as np
from jaxtyping import Float

from typedbackprop.checking import Array, checked, runtime_shapes_only, static_jaxtyping
from typedbackprop.nn.specs import Spec

__all__ = [
    "erfc",
    "normal_cdf",
    "gelu_forward",
    "gelu_backward",
    "gelu_tanh_forward",
    "gelu_tanh_backward",
]

# Cody's coefficients, as published. erf(y) = y A(y²)/B(y²) for y ≤ 0.46875; erfc(y) =
# e^{−y²} C(y)/D(y) for 0.46875 < y ≤ 4; erfc(y) = (e^{−y²}/y) (1/√π − r P(r)/Q(r)), r = 1/y²,
# beyond. Highest degree last; B, D and Q are monic (their leading 1 is implicit).
_A = (3.16112374387056560e00, 1.13864154151050156e02, 3.77485237685302021e02,
      3.20937758913846947e03, 1.85777706184603153e-1)  # fmt: skip
_B = (2.36012909523441209e01, 2.44024637934444173e02, 1.28261652607737228e03,
      2.84423683343917062e03)  # fmt: skip
_C = (5.64188496988670089e-1, 8.88314979438837594e00, 6.61191906371416295e01,
      2.98635138197400131e02, 8.81952221241769090e02, 1.71204761263407058e03,
      2.05107837782607147e03, 1.23033935479799725e03, 2.15311535474403846e-8)  # fmt: skip
_D = (1.57449261107098347e01, 1.17693950891312499e02, 5.37181101862009858e02,
      1.62138957456669019e03, 3.29079923573345963e03, 4.36261909014324716e03,
      3.43936767414372164e03, 1.23033935480374942e03)  # fmt: skip
_P = (3.05326634961232344e-1, 3.60344899949804439e-1, 1.25781726111229246e-1,
      1.60837851487422766e-2, 6.58749161529837803e-4, 1.63153871373020978e-2)  # fmt: skip
_Q = (2.56852019228982242e00, 1.87295284992346047e00, 5.27905102951428412e-1,
      6.05183413124413191e-2, 2.33520497626869185e-3)  # fmt: skip
_ONE_OVER_SQRT_PI = 5.6418958354775628695e-1
_SMALL, _MEDIUM = 0.46875, 4.0
_NEGLIGIBLE = 40.0
"""``erfc(y)`` is 0 in every float format beyond about ``y = 27``; ``y`` is capped here before
it is squared, so that no ``y²`` overflows (with a warning) on the way to that 0."""


def _rational(t: Array, numerator: tuple[float, ...], denominator: tuple[float, ...]) -> Array:
    """Cody's ``N(t)/D(t)`` by Horner's rule: his loops, with the same order of operations."""
    top = numerator[-1] * t
    bottom = t.copy()
    for n, d in zip(numerator[:-2], denominator[:-1], strict=True):
        top += n
        top *= t
        bottom += d
        bottom *= t
    return (top + numerator[-2]) / (bottom + denominator[-1])


def _exp_minus_square(y: Array) -> Array:
    """``e^{−y²}`` as Cody computes it: ``y²`` split so that its rounding error is not
    magnified by the exponential (``y = y₁₆ + δ`` with ``y₁₆`` a multiple of 1/16, whose
    square is exact)."""
    coarse: Array = np.trunc(y * 16.0) / 16.0
    return np.exp(-coarse * coarse) * np.exp(-(y - coarse) * (y + coarse))


@checked
@runtime_shapes_only("indexing by a boolean mask (x[small]) returns no shape")
def erfc(x: Float[Array, "*shape"]) -> Float[Array, "*shape"]:
    """The complementary error function, ``erfc(x) = (2/√π) ∫ₓ^∞ e^{−t²} dt``, elementwise.

    Parameters
    ----------
    x
        Any floating-point array.

    Returns
    -------
    erfc(x)
        In ``[0, 2]``, with the relative accuracy of Cody's approximation in both tails.

    Notes
    -----
    With ``y = |x|``: for ``y ≤ 0.46875``, ``erfc(x) = 1 − x A(x²)/B(x²)``; for
    ``0.46875 < y ≤ 4``, ``erfc(y) = e^{−y²} C(y)/D(y)``; beyond,
    ``erfc(y) = (e^{−y²}/y)(1/√π − r P(r)/Q(r))`` with ``r = 1/y²``. Negative ``x`` uses
    ``erfc(x) = 2 − erfc(−x)``. Each range is computed on its own entries only.
    """
    y = np.abs(x)
    result = np.empty_like(y)
    small = y <= _SMALL
    tail = ~small  # NaN lands here and stays NaN
    if small.any():
        near = x[small]
        result[small] = 1.0 - near * _rational(near * near, _A, _B)
    if tail.any():
        far = np.minimum(y[tail], _NEGLIGIBLE)
        medium = far <= _MEDIUM
        value = np.empty_like(far)
        value[medium] = _exp_minus_square(far[medium]) * _rational(far[medium], _C, _D)
        large = far[~medium]
        r = 1.0 / (large * large)
        value[~medium] = (
            _exp_minus_square(large) / large * (_ONE_OVER_SQRT_PI - r * _rational(r, _P, _Q))
        )
        negative = x[tail] < 0
        value[negative] = 2.0 - value[negative]
        result[tail] = value
    return result


@checked
@runtime_shapes_only("one call of erfc, whose indexing by a boolean mask returns no shape")
def normal_cdf(z: Float[Array, "*shape"]) -> Float[Array, "*shape"]:
    """The standard normal distribution function, ``Φ(z) = ½ erfc(−z/√2)``, elementwise.

    Parameters
    ----------
    z
        Any floating-point array.

    Returns
    -------
    Φ(z)
        In ``[0, 1]``; accurate relative to its own size in the lower tail too, where
        ``½(1 + erf(z/√2))`` would cancel to 0.
    """
    return 0.5 * erfc(z * -math.sqrt(0.5))


@checked
@static_jaxtyping("features batch")
def gelu_forward(z: Float[Array, "features batch"]) -> Float[Array, "features batch"]:
    """The Gaussian error linear unit ``a = z Φ(z)``: ``z`` weighted by how likely it is.

    Parameters
    ----------
    z
        Pre-activations.

    Returns
    -------
    a
        Activations, ``≈ z`` for large ``z``, ``≈ 0`` for very negative ``z``; the minimum
        is about ``−0.17`` near ``z = −0.75``.

    Notes
    -----
    ``a_{fb} = z_{fb} Φ(z_{fb})`` with ``Φ(z) = ½ (1 + erf(z/√2))``, as PyTorch's
    ``F.gelu(z)`` (``approximate="none"``); see :func:`normal_cdf`.
    """
    cdf: Float[Array, "features batch"] = normal_cdf(z)  # Φ(z)
    return z * cdf


@checked
@static_jaxtyping("features batch")
def gelu_backward(
    grad_a: Float[Array, "features batch"],
    z: Float[Array, "features batch"],
    a: Float[Array, "features batch"],
) -> Float[Array, "features batch"]:
    """Gradient through the exact GELU: ``∂L/∂z = ∂L/∂a ⊙ (Φ(z) + z φ(z))``.

    Parameters
    ----------
    grad_a
        ``∂L/∂a``, the upstream gradient.
    z
        The forward's input.
    a
        The forward's output (unused: ``Φ(z) = a/z`` fails at ``z = 0``).

    Returns
    -------
    grad_z
        ``∂L/∂z``.

    Notes
    -----
    ``∂L/∂z_{fb} = ∂L/∂a_{fb} gelu'(z_{fb})``, with ``gelu'(z) = Φ(z) + z φ(z)`` by the
    product rule on ``z Φ(z)`` (``Φ' = φ``, the normal density ``φ(z) = e^{−z²/2}/√(2π)``).
    The derivative exceeds 1 a little for ``z`` near 1.5, and is slightly negative below
    about ``−0.75``.
    """
    # φ is 0 beyond the cap: no z² to overflow
    capped: Float[Array, "features batch"] = _capped(z, _NEGLIGIBLE)
    slope = capped * capped
    slope *= -0.5
    np.exp(slope, out=slope)
    slope *= capped * (1.0 / math.sqrt(2.0 * math.pi))  # z φ(z)
    cdf: Float[Array, "features batch"] = normal_cdf(z)  # Φ(z)
    slope += cdf
    slope *= grad_a
    return slope


GELU_GRAD_Z = Spec("grad_z", "fb,fb->fb", ("grad_a", "gelu'(z)"))
""":func:`gelu_backward` in index form, ``∂L/∂z_{fb} = ∂L/∂a_{fb} gelu'(z_{fb})``: no sum."""


def _capped(z: Array, limit: float) -> Array:
    """``z`` itself when no entry lies beyond ``±limit`` (two reductions tell), else ``z``
    clipped to ``±limit``: saturated entries' values do not change, and no power overflows."""
    if z.size == 0 or (-limit <= z.min() and z.max() <= limit):
        return z
    return np.clip(z, -limit, limit)  # NaN lands here too, and stays NaN


def _tanh_argument(capped: Array) -> Array:
    """``u = √(2/π) (z + 0.044715 z³)``, as ``√(2/π) z (1 + 0.044715 z²)``, in a new array."""
    u = capped * capped
    u *= _TANH_CUBIC
    u += 1.0
    u *= capped
    u *= _TANH_SCALE
    return u


_TANH_SCALE = math.sqrt(2.0 / math.pi)
_TANH_CUBIC = 0.044715
_TANH_SATURATED = 100.0
"""Past ``|z| = 100`` the tanh is ±1 to the last bit; ``z`` is capped there before it is
cubed, so that no ``z³`` overflows on the way."""


@checked
@static_jaxtyping("features batch")
def gelu_tanh_forward(z: Float[Array, "features batch"]) -> Float[Array, "features batch"]:
    """GELU by its tanh approximation: ``a = ½ z (1 + tanh(√(2/π) (z + 0.044715 z³)))``.

    Parameters
    ----------
    z
        Pre-activations.

    Returns
    -------
    a
        Activations; within about ``5e-4`` of the exact GELU.

    Notes
    -----
    ``a_{fb} = ½ z_{fb} (1 + tanh u_{fb})`` with ``u = √(2/π) (z + 0.044715 z³)``, as
    PyTorch's ``F.gelu(z, approximate="tanh")``. It is computed as ``a = z σ(2u)``, since
    ``½ (1 + tanh u) = σ(2u) = 1 / (1 + e^{−2u})``: one exponential, about half the cost of a
    tanh in NumPy. With ``e = e^{−2|u|} ≤ 1``, which cannot overflow, ``σ(2u) = 1 / (1 + e)``
    where ``u ≥ 0`` and ``e / (1 + e)`` where ``u < 0``; no digits cancel in either, so ``a``
    keeps its relative accuracy where ``z`` is very negative, where ``1 + tanh u`` would cancel.
    """
    capped: Float[Array, "features batch"] = _capped(z, _TANH_SATURATED)
    u: Float[Array, "features batch"] = _tanh_argument(capped)
    positive = u >= 0
    e = np.abs(u, out=u)
    e *= -2.0
    np.exp(e, out=e)  # e^{−2|u|}
    a = np.maximum(e, positive)  # 1 where u ≥ 0, e where u < 0 (as e ≤ 1); no masked copy
    e += 1.0
    a /= e  # σ(2u): 1 / (1 + e) where u ≥ 0, e / (1 + e) where u < 0
    a *= z
    return a


@checked
@static_jaxtyping("features batch")
def gelu_tanh_backward(
    grad_a: Float[Array, "features batch"],
    z: Float[Array, "features batch"],
    a: Float[Array, "features batch"],
) -> Float[Array, "features batch"]:
    """Gradient through the tanh-approximate GELU.

    Parameters
    ----------
    grad_a
        ``∂L/∂a``, the upstream gradient.
    z
        The forward's input.
    a
        The forward's output: ``1 + t = 2a/z`` saves recomputing the tanh.

    Returns
    -------
    grad_z
        ``∂L/∂z``.

    Notes
    -----
    With ``t = tanh u`` and ``u = √(2/π)(z + 0.044715 z³)``, the product and chain rules give
    ``gelu_tanh'(z) = ∂a/∂z = ½ (1 + t) + ½ z (1 − t²) √(2/π) (1 + 3 · 0.044715 z²)``, and
    ``∂L/∂z_{fb} = ∂L/∂a_{fb} gelu_tanh'(z_{fb})``. With ``s = 1 + t``, read off the forward's
    output as ``s = 2a/z`` (``s = 1`` at ``z = 0``), ``1 − t² = s (2 − s)`` and
    ``∂a/∂z = ½ s (1 + z (2 − s) du/dz)``; ``s`` from ``a`` is also accurate where ``t`` is
    near ``−1`` and ``1 + t`` would cancel.
    """
    # 2 − s is 0 beyond the cap: no z² to overflow
    capped: Float[Array, "features batch"] = _capped(z, _TANH_SATURATED)
    s = np.divide(a, z, out=np.full_like(a, 0.5), where=z != 0)  # ½ (1 + t), ½ at z = 0
    s *= 2.0  # 1 + t
    slope = capped * capped  # du/dz = √(2/π) (1 + 3 · 0.044715 z²)
    slope *= 3.0 * _TANH_CUBIC * _TANH_SCALE
    slope += _TANH_SCALE
    grad_z = 2.0 - s
    grad_z *= capped
    grad_z *= slope
    grad_z += 1.0
    grad_z *= s
    grad_z *= 0.5
    grad_z *= grad_a
    return grad_z


GELU_TANH_GRAD_Z = Spec("grad_z", "fb,fb->fb", ("grad_a", "gelu_tanh'(z)"))
""":func:`gelu_tanh_backward` in index form, ``∂L/∂z_{fb} = ∂L/∂a_{fb} gelu_tanh'(z_{fb})``."""
