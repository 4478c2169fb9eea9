"""An activation applied to a batch of images: every pixel of every image is one column.

The functions of :data:`~typedbackprop.nn.activations.ACTIVATIONS` act on ``"features
batch"``; on the C-order view ``(channels, height·width·batch)`` of an image batch they act on
every value (the elementwise ones) or down the channels of each pixel (softmax). The view is
taken inside a function whose annotations keep the image shape, so the cache, and with it the
scoped check of the backward pass, holds ``"channels height width batch"``.
"""

from dataclasses import dataclass

from jaxtyping import Float

from typedbackprop.checking import Array, checked
from typedbackprop.nn.activations import ACTIVATIONS, ActivationKind

__all__ = [
    "Activation2d",
    "Activation2dCache",
    "activation2d_forward",
    "activation2d_backward",
]


@dataclass(frozen=True, slots=True)
class Activation2d:
    """An activation layer for images: no parameters, only settings.

    Parameters
    ----------
    name
        Which activation (a key of :data:`~typedbackprop.nn.activations.ACTIVATIONS`).
    slope
        Leaky ReLU's gradient for negative ``z``; ignored by the others.

    Raises
    ------
    ValueError
        For an unknown name.
    """

    name: ActivationKind
    slope: float = 0.01

    def __post_init__(self) -> None:
        if self.name not in ACTIVATIONS:
            raise ValueError(
                f"unknown activation {self.name!r}; choose one of {tuple(ACTIVATIONS)}"
            )


@dataclass(frozen=True, slots=True)
class Activation2dCache:
    """What :func:`activation2d_forward` saves: its input and its output."""

    layer: Activation2d
    """The activation and its settings."""
    z: Float[Array, "channels height width batch"]
    """The input."""
    a: Float[Array, "channels height width batch"]
    """The output."""


def _columns(images: Array) -> Array:
    """``(channels, height, width, batch)`` as ``(channels, height·width·batch)``."""
    return images.reshape(images.shape[0], -1)


@checked
def activation2d_forward(
    layer: Activation2d, z: Float[Array, "channels height width batch"]
) -> tuple[Float[Array, "channels height width batch"], Activation2dCache]:
    """``a = f(z)`` on every pixel of every image.

    Parameters
    ----------
    layer
        Which activation, with its settings.
    z
        A batch of images.

    Returns
    -------
    a, cache
        The activations, and the :class:`Activation2dCache`.

    Notes
    -----
    ``a_{crwb} = f(z_{crwb})``; softmax: ``a_{crwb} = exp(z_{crwb}) / Σ_c′ exp(z_{c′rwb})``.
    """
    a = ACTIVATIONS[layer.name].forward(_columns(z), layer.slope).reshape(z.shape)
    return a, Activation2dCache(layer, z, a)


@checked
def activation2d_backward(
    grad_a: Float[Array, "channels height width batch"], cache: Activation2dCache
) -> Float[Array, "channels height width batch"]:
    """``∂L/∂z`` on every pixel of every image, shaped like the ``z`` forward saw.

    Parameters
    ----------
    grad_a
        ``∂L/∂a``, the upstream gradient.
    cache
        What :func:`activation2d_forward` saved.

    Returns
    -------
    grad_z
        ``∂L/∂z_{crwb} = ∂L/∂a_{crwb} f'(z_{crwb})`` for the elementwise activations.
    """
    layer = cache.layer
    function = ACTIVATIONS[layer.name]
    grad_z = function.backward(_columns(grad_a), _columns(cache.z), _columns(cache.a), layer.slope)
    return grad_z.reshape(grad_a.shape)
