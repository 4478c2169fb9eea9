"""Inverted dropout: in training, zero each value with probability ``rate`` and scale the rest.

The kept values are divided by ``1 − rate`` while training, so that the expected output equals
the input and evaluation is the identity: nothing to rescale at test time. The mask is drawn
from the caller's :class:`numpy.random.Generator` (``Mode.rng``), so a run is reproducible
from its seed, and backward multiplies by the same mask, saved in the cache.

Dropout acts on any layout whose last axis is the batch: ``"*features batch"`` is ``"features
batch"`` for a dense layer's activations and ``"channels height width batch"`` for images.
"""

from dataclasses import dataclass

import numpy as np
from jaxtyping import Float

from typedbackprop.checking import Array, checked, runtime_shapes_only, static_jaxtyping
from typedbackprop.nn.layer import Layer
from typedbackprop.nn.mode import Mode
from typedbackprop.nn.specs import Spec

__all__ = [
    "Dropout",
    "DropoutCache",
    "dropout_mask",
    "dropout_forward",
    "dropout_backward",
]


@dataclass(frozen=True, slots=True)
class Dropout(Layer):
    """A dropout layer: settings only.

    Parameters
    ----------
    rate
        The probability of zeroing each value while training, in ``[0, 1)``.

    Raises
    ------
    ValueError
        For a rate outside ``[0, 1)``.
    """

    rate: float = 0.5

    def __post_init__(self) -> None:
        if not 0 <= self.rate < 1:
            raise ValueError(f"the dropout rate must lie in [0, 1); got {self.rate}")


@dataclass(frozen=True, slots=True)
class DropoutCache:
    """What :func:`dropout_forward` saves for :func:`dropout_backward`."""

    layer: Dropout
    """The rate."""
    x: Float[Array, "*features batch"]
    """The input, held for its shape: ``∂L/∂x`` must have it."""
    mask: Float[Array, "*features batch"] | None
    """``kept / (1 − rate)`` per value (0 where dropped); ``None`` in evaluation."""


@checked
@runtime_shapes_only("the draw, rng.random(x.shape), returns no shape")
def dropout_mask(
    rng: np.random.Generator, x: Float[Array, "*features batch"], rate: float
) -> Float[Array, "*features batch"]:
    """A fresh inverted-dropout mask shaped like ``x``: ``0`` or ``1 / (1 − rate)``.

    Parameters
    ----------
    rng
        The source of randomness; one uniform draw per value of ``x``.
    x
        The values to be masked, for their shape and dtype.
    rate
        The probability of dropping each value.

    Returns
    -------
    mask
        ``[u ≥ rate] / (1 − rate)`` for a uniform ``u`` in ``[0, 1)`` per value: each kept with
        probability ``1 − rate``, in ``x``'s dtype.
    """
    kept = rng.random(x.shape) >= rate
    return kept.astype(x.dtype) / x.dtype.type(1.0 - rate)


@checked
@runtime_shapes_only("the mask comes from dropout_mask, whose draw returns no shape")
def dropout_forward(
    layer: Dropout, x: Float[Array, "*features batch"], mode: Mode
) -> tuple[Float[Array, "*features batch"], DropoutCache]:
    """Inverted dropout: ``x ⊙ mask`` in training, ``x`` itself in evaluation.

    Parameters
    ----------
    layer
        The rate.
    x
        The layer's input.
    mode
        Training (a fresh mask from ``mode.rng``) or evaluation (the identity).

    Returns
    -------
    a, cache
        The output, and the :class:`DropoutCache` holding the mask.

    Raises
    ------
    ValueError
        In training without ``mode.rng``: the mask must come from the caller's generator.

    Notes
    -----
    ``a_{…b} = x_{…b} m_{…b}`` with ``m = [u ≥ rate] / (1 − rate)``, so ``E[a] = x``.
    """
    if not mode.training:
        return x, DropoutCache(layer, x, None)
    if mode.rng is None:
        raise ValueError(
            "dropout in training draws its mask from mode.rng: pass "
            "Mode(training=True, rng=np.random.default_rng(seed))"
        )
    mask = dropout_mask(mode.rng, x, layer.rate)
    return x * mask, DropoutCache(layer, x, mask)


@checked
@static_jaxtyping("*features batch")
def dropout_backward(
    grad_a: Float[Array, "*features batch"], cache: DropoutCache
) -> Float[Array, "*features batch"]:
    """Gradient through dropout: the upstream gradient times the same mask.

    Parameters
    ----------
    grad_a
        ``∂L/∂a``, the upstream gradient.
    cache
        What :func:`dropout_forward` saved.

    Returns
    -------
    grad_x
        ``∂L/∂x = ∂L/∂a ⊙ m``: zero where the value was dropped, scaled by ``1 / (1 − rate)``
        where it was kept; ``∂L/∂a`` itself in evaluation.

    Notes
    -----
    In training, ``∂L/∂x_{…b} = ∂L/∂a_{…b} mask_{…b}``: the Jacobian of ``x ↦ x ⊙ m`` is
    ``diag(m)``, for the mask forward *drew*: backward must use the saved mask, never a new
    draw. A gradient check must likewise hold the mask fixed across its evaluations of forward
    (the same seed each time), or it differentiates noise.
    """
    mask: Float[Array, "*features batch"] | None = cache.mask  # a record's field: no shape
    if mask is None:
        return grad_a
    return grad_a * mask


DROPOUT_GRAD_X = Spec("grad_x", "...b,...b->...b", ("grad_a", "mask"))
""":func:`dropout_backward` in training, in index form: ``∂L/∂x_{…b} = ∂L/∂a_{…b} mask_{…b}``,
no sum; ``…`` is every axis before ``batch``."""
