"""Softmax over the classes of each example, and its backward pass."""

import numpy as np
from jaxtyping import Float

from typedbackprop.checking import Array, checked, require_finite, static_jaxtyping
from typedbackprop.nn.specs import Spec

__all__ = ["softmax_forward", "softmax_backward"]


@checked
@static_jaxtyping("classes batch")
def softmax_forward(z: Float[Array, "classes batch"]) -> Float[Array, "classes batch"]:
    """Softmax down each column: ``a = exp(z) / Σ_classes exp(z)``, without overflow.

    Parameters
    ----------
    z
        Logits, one column per example.

    Returns
    -------
    a
        Probabilities; each column sums to 1.

    Raises
    ------
    ValueError
        For zero classes, or an example whose largest logit is NaN or infinite.

    Notes
    -----
    ``a_{jb} = exp(z_{jb} − m_b) / Σ_j′ exp(z_{j′b} − m_b)`` with ``m_b = max_j′ z_{j′b}``.
    Subtracting ``m_b`` changes nothing mathematically (it cancels) but makes every exponent
    ``≤ 0``, so ``exp`` cannot overflow and the largest term is exactly 1.
    """
    if z.shape[0] == 0:
        raise ValueError("softmax over 0 classes is undefined")
    largest = z.max(axis=0)
    require_finite("the largest logit of each example", largest)
    e: Float[Array, "classes batch"] = z - largest
    np.exp(e, out=e)
    e /= e.sum(axis=0)
    return e


@checked
@static_jaxtyping("classes batch")
def softmax_backward(
    grad_a: Float[Array, "classes batch"],
    z: Float[Array, "classes batch"],
    a: Float[Array, "classes batch"],
) -> Float[Array, "classes batch"]:
    """Gradient through the softmax: ``∂L/∂z = a ⊙ (∂L/∂a − Σ_classes a ⊙ ∂L/∂a)``.

    Parameters
    ----------
    grad_a
        ``∂L/∂a``, the upstream gradient.
    z
        The forward's input (unused: the Jacobian is cheaper from ``a``).
    a
        The forward's output, the probabilities.

    Returns
    -------
    grad_z
        ``∂L/∂z``.

    Notes
    -----
    Index form: ``∂L/∂z_{j′b} = Σ_j ∂L/∂a_{jb} J_{jbj′}``, upstream gradient times local
    gradient, with the Jacobian of each example ``J_{jbj′} = ∂a_{jb}/∂z_{j′b}
    = a_{jb} ([j = j′] − a_{j′b})``. So ``∂L/∂z_{j′b} = Σ_j ∂L/∂a_{jb} a_{jb} ([j = j′] − a_{j′b})
    = a_{j′b} (∂L/∂a_{j′b} − Σ_j a_{jb} ∂L/∂a_{jb})``. Unlike the elementwise activations the
    Jacobian is not diagonal, but it never needs to be formed: one sum over ``classes`` per
    example does. That is a vector-Jacobian product: the upstream gradient times the
    Jacobian, without the Jacobian.
    """
    weighted = grad_a * a
    grad_z: Float[Array, "classes batch"] = grad_a - weighted.sum(axis=0)
    grad_z *= a
    return grad_z


SOFTMAX_GRAD_Z = Spec("grad_z", "jb,jbJ->Jb", ("grad_a", "J"))
""":func:`softmax_backward` in index form, ``∂L/∂z_{j′b} = Σ_j ∂L/∂a_{jb} J_{jbj′}``, with the
Jacobian ``J_{jbj′} = ∂a_{jb}/∂z_{j′b} = a_{jb} ([j = j′] − a_{j′b})``."""
