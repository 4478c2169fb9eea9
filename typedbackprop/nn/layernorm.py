"""Layer normalization over the features of each position, and its backward pass.

The input is ``"features *positions batch"``: one feature column per position, whatever the
positions are (``"batch"`` alone for a dense network, ``"seq batch"`` for sequences: the
variadic ``*positions`` is empty or ``seq``). Each column is normalized
on its own, to mean 0 and variance 1 over ``features``, then scaled and shifted by a learned
``gamma`` and ``beta``. As in llm.c, forward saves each column's ``mean`` and reciprocal standard
deviation ``rstd``, and backward rebuilds the normalized values from them.

Reducing over the first axis is what makes the layout convenient: ``x.mean(axis=0)`` is
``"*positions batch"``, and NumPy broadcasting, which aligns trailing axes, subtracts it from every
feature row of ``x`` as it is. The per-feature ``gamma`` and ``beta`` are the ones that need an
explicit axis: :func:`_down_features` reshapes them to ``(features, 1, ..., 1)``.
"""

from dataclasses import dataclass

import numpy as np
from jaxtyping import Float

from typedbackprop.checking import (
    Array,
    checked,
    checked_record,
    runtime_shapes_only,
    static_jaxtyping,
)
from typedbackprop.nn.layer import Layer
from typedbackprop.nn.specs import Spec

__all__ = [
    "LayerNorm",
    "LayerNormCache",
    "layernorm_statistics",
    "layernorm_normalize",
    "layernorm_grads",
    "layernorm_forward",
    "layernorm_backward",
]


def _down_features(values: Array, ndim: int) -> Array:
    """A ``" features"`` vector as ``(features, 1, ..., 1)``: broadcast along every position."""
    return values.reshape((-1,) + (1,) * (ndim - 1))


@checked
@static_jaxtyping("features *positions batch")
def layernorm_statistics(
    x: Float[Array, " features *positions batch"], eps: float
) -> tuple[Float[Array, "*positions batch"], Float[Array, "*positions batch"]]:
    """The mean and the reciprocal standard deviation of each position's features.

    Parameters
    ----------
    x
        Features, one column per position.
    eps
        Added to the variance, so that a constant column does not divide by zero.

    Returns
    -------
    mean, rstd
        ``μ`` and ``1 / √(σ² + eps)`` of each column.

    Notes
    -----
    ``μ_{…b} = (1/F) Σ_f x_{f…b}`` and ``σ²_{…b} = (1/F) Σ_f (x_{f…b} − μ_{…b})²`` with
    ``F = features`` and ``…b`` a column (its positions and example): the biased variance, as in
    PyTorch's ``layer_norm``; two passes, so that no difference of large squares loses the digits
    of a small variance.
    """
    mean = x.mean(axis=0)
    centred = x - mean
    variance = np.mean(centred * centred, axis=0)
    return mean, 1.0 / np.sqrt(variance + eps)


@checked
@static_jaxtyping("features *positions batch")
def layernorm_normalize(
    x: Float[Array, " features *positions batch"],
    gamma: Float[Array, " features"],
    beta: Float[Array, " features"],
    mean: Float[Array, "*positions batch"],
    rstd: Float[Array, "*positions batch"],
) -> Float[Array, " features *positions batch"]:
    """Normalize each column with its statistics, then scale and shift: ``y = γ ⊙ x̂ + β``.

    Parameters
    ----------
    x
        Features, one column per position.
    gamma
        ``γ``, one scale per feature.
    beta
        ``β``, one shift per feature.
    mean, rstd
        Each column's ``μ`` and ``1/√(σ² + eps)``, from :func:`layernorm_statistics`.

    Returns
    -------
    y
        The normalized features.

    Notes
    -----
    ``x̂_{f…b} = (x_{f…b} − μ_{…b}) · rstd_{…b}`` and ``y_{f…b} = γ_f x̂_{f…b} + β_f``. ``μ`` and
    ``rstd`` broadcast along ``features`` by NumPy's trailing-axis rule; ``γ`` and ``β`` along every
    position axis, once reshaped to ``(features, 1, ..., 1)``.
    """
    x_hat = (x - mean) * rstd
    return x_hat * _down_features(gamma, x.ndim) + _down_features(beta, x.ndim)


@checked
@static_jaxtyping("features *positions batch")
def layernorm_grads(
    grad_y: Float[Array, " features *positions batch"],
    x: Float[Array, " features *positions batch"],
    gamma: Float[Array, " features"],
    mean: Float[Array, "*positions batch"],
    rstd: Float[Array, "*positions batch"],
) -> tuple[
    Float[Array, " features *positions batch"], Float[Array, " features"], Float[Array, " features"]
]:
    """The three gradients of layer normalization: ``(grad_x, grad_gamma, grad_beta)``.

    Parameters
    ----------
    grad_y
        ``∂L/∂y``, the upstream gradient.
    x
        The input the forward pass saw.
    gamma
        ``γ``, the scale the forward pass used.
    mean, rstd
        The statistics the forward pass saved.

    Returns
    -------
    grad_x, grad_gamma, grad_beta
        ``∂L/∂x``, ``∂L/∂γ`` and ``∂L/∂β``, each the shape of its value.

    Notes
    -----
    With ``x̂ = (x − μ) rstd`` rebuilt from the saved statistics and ``g = γ ⊙ ∂L/∂y``, the
    gradient of the normalized value:

    ``∂L/∂γ_f = Σ_{…b} ∂L/∂y_{f…b} x̂_{f…b}`` and ``∂L/∂β_f = Σ_{…b} ∂L/∂y_{f…b}``: sums over every
    position axis, those ``γ`` and ``β`` were broadcast along.

    ``∂L/∂x_{f…b} = rstd_{…b}
    (g_{f…b} − (1/F) Σ_f′ g_{f′…b} − x̂_{f…b} (1/F) Σ_f′ g_{f′…b} x̂_{f′…b})``:
    a column's mean and variance depend on all its features, so each ``x_{f…b}`` reaches the
    loss through every ``x̂_{f′…b}`` of its column; the two means are what that adds to the
    plain ``rstd_{…b} g_{f…b}``. They are means over ``features`` (``axis=0``), one number per
    position, broadcast back down the column. Spelled out term by term, with ``x_hat`` for
    ``x̂`` and the positions written ``…b`` (``…`` for ``*positions``, ``b`` for ``batch``):

    ``∂L/∂x_{f…b} = ∂L/∂y_{f…b} gamma_{f} rstd_{…b}
    − Σ_f′ ∂L/∂y_{f′…b} gamma_{f′} rstd_{…b} (1/F)
    − Σ_f′ ∂L/∂y_{f′…b} gamma_{f′} x_hat_{f′…b} x_hat_{f…b} rstd_{…b} (1/F)``.
    """
    x_hat = (x - mean) * rstd
    position_axes = tuple(range(1, x.ndim))
    grad_gamma = np.sum(grad_y * x_hat, axis=position_axes)
    grad_beta = np.sum(grad_y, axis=position_axes)
    g: Float[Array, " features *positions batch"] = grad_y * _down_features(gamma, x.ndim)
    grad_x = g - g.mean(axis=0)
    grad_x -= x_hat * np.mean(g * x_hat, axis=0)
    grad_x *= rstd
    return grad_x, grad_gamma, grad_beta


LAYERNORM_GRAD_X = Spec(
    "grad_x",
    "f...b,f,...b - F...b,F,...b, - F...b,F,F...b,f...b,...b,->f...b",
    (
        *("grad_y", "gamma", "rstd"),
        *("grad_y", "gamma", "rstd", "1/F"),
        *("grad_y", "gamma", "x_hat", "x_hat", "rstd", "1/F"),
    ),
)
"""The three terms of :func:`layernorm_grads`' ``∂L/∂x``, with ``x_hat = (x − mean) rstd``."""


# --- the layer-norm family ----------------------------------------------------------------------


@checked_record()
@dataclass(frozen=True, slots=True)
class LayerNorm(Layer):
    """Layer normalization's parameters (or their gradients), and its ``eps``.

    Parameters
    ----------
    gamma
        ``γ``, one scale per feature (``1`` at initialization).
    beta
        ``β``, one shift per feature (``0`` at initialization).
    eps
        Added to each column's variance; PyTorch's default.
    """

    gamma: Float[Array, " features"]
    beta: Float[Array, " features"]
    eps: float = 1e-5


@dataclass(frozen=True, slots=True)
class LayerNormCache:
    """What :func:`layernorm_forward` saves for :func:`layernorm_backward` (llm.c's choice)."""

    layer: LayerNorm
    """The parameters (``γ`` scales the gradient) and ``eps``."""
    x: Float[Array, " features *positions batch"]
    """The input; backward rebuilds ``x̂`` from it."""
    mean: Float[Array, "*positions batch"]
    """Each column's mean ``μ``."""
    rstd: Float[Array, "*positions batch"]
    """Each column's ``1/√(σ² + eps)``."""


@checked
@runtime_shapes_only(
    "two lines handing the record's gamma, beta and eps, which have no shape for Pyrefly, to "
    "layernorm_statistics and layernorm_normalize, whose shapes are checked by name"
)
def layernorm_forward(
    layer: LayerNorm, x: Float[Array, " features *positions batch"]
) -> tuple[Float[Array, " features *positions batch"], LayerNormCache]:
    """The layer-norm layer under the layer contract: ``y = γ ⊙ x̂ + β`` and what backward needs.

    Parameters
    ----------
    layer
        ``γ``, ``β`` and ``eps``.
    x
        Features, one column per position.

    Returns
    -------
    y, cache
        The normalized features, and the :class:`LayerNormCache` of ``x``, ``μ`` and ``rstd``.

    Notes
    -----
    ``y_{f…b} = γ_f (x_{f…b} − μ_{…b}) rstd_{…b} + β_f``; see :func:`layernorm_statistics` and
    :func:`layernorm_normalize`.
    """
    mean, rstd = layernorm_statistics(x, layer.eps)
    y = layernorm_normalize(x, layer.gamma, layer.beta, mean, rstd)
    return y, LayerNormCache(layer, x, mean, rstd)


@checked
@runtime_shapes_only(
    "one line handing the cache's fields, which have no shape for Pyrefly, to layernorm_grads, "
    "whose shapes are checked by name"
)
def layernorm_backward(
    grad_y: Float[Array, " features *positions batch"], cache: LayerNormCache
) -> tuple[LayerNorm, Float[Array, " features *positions batch"]]:
    """Gradients of layer normalization: ``(LayerNorm(∂L/∂γ, ∂L/∂β), ∂L/∂x)``.

    Parameters
    ----------
    grad_y
        ``∂L/∂y``, the upstream gradient.
    cache
        What :func:`layernorm_forward` saved.

    Returns
    -------
    grads, grad_x
        The parameter gradients in a :class:`LayerNorm` (with the layer's ``eps``), and
        ``∂L/∂x``.

    Notes
    -----
    See :func:`layernorm_grads` for the equations.
    """
    layer = cache.layer
    grad_x, grad_gamma, grad_beta = layernorm_grads(
        grad_y, cache.x, layer.gamma, cache.mean, cache.rstd
    )
    return LayerNorm(grad_gamma, grad_beta, layer.eps), grad_x
