"""Between images and feature vectors: ``Flatten`` and ``Unflatten``.

In the house layout the batch is the last axis of both, ``(channels, height, width, batch)``
and ``(features, batch)``, so flattening an image batch merges its first three axes, in C
order, and keeps every example's column apart: ``features = channels · height · width``, feature
``(c·height + h)·width + w`` being pixel ``(c, h, w)``. No transpose is needed, and the reshape
is a view of a C-contiguous input (of any other, a copy). Backward reshapes the gradient back:
moving a value does not change its gradient.
"""

import math
from dataclasses import dataclass

from jaxtyping import Float

from typedbackprop.checking import Array, checked, runtime_shapes_only, static_jaxtyping
from typedbackprop.nn.layer import Layer

__all__ = [
    "Flatten",
    "FlattenCache",
    "Unflatten",
    "UnflattenCache",
    "flatten_forward",
    "flatten_backward",
    "unflatten_forward",
    "unflatten_backward",
]


@dataclass(frozen=True, slots=True)
class Flatten(Layer):
    """A layer that makes each image of a batch one column of features: no settings."""


@dataclass(frozen=True, slots=True)
class FlattenCache:
    """What :func:`flatten_forward` saves: the input, for its shape."""

    x: Float[Array, "channels height width batch"]
    """The images (``∂L/∂x`` must have their shape)."""


@checked
@runtime_shapes_only(
    "its result's annotation merges three dimensions (channels·height·width), a product that "
    "annotations for Pyrefly cannot name (only name, name+1, name-1)"
)
def flatten_forward(
    layer: Flatten, x: Float[Array, "channels height width batch"]
) -> tuple[Float[Array, "channels*height*width batch"], FlattenCache]:
    """Each image as one column: ``a[(c·height + h)·width + w, b] = x[c, h, w, b]``.

    Parameters
    ----------
    layer
        The layer (no settings).
    x
        A batch of images.

    Returns
    -------
    a, cache
        The features, and the :class:`FlattenCache`.
    """
    *image, batch = x.shape
    return x.reshape(math.prod(image), batch), FlattenCache(x)  # sizes, not -1: batch may be 0


@checked
@runtime_shapes_only(
    "its argument's annotation merges three dimensions (channels·height·width), a product that "
    "annotations for Pyrefly cannot name (only name, name+1, name-1)"
)
def flatten_backward(
    grad_a: Float[Array, "channels*height*width batch"], cache: FlattenCache
) -> Float[Array, "channels height width batch"]:
    """The gradient of the columns, back in the images' shape.

    Parameters
    ----------
    grad_a
        ``∂L/∂a``, one column per example.
    cache
        What :func:`flatten_forward` saved.

    Returns
    -------
    grad_x
        ``∂L/∂x[c, h, w, b] = ∂L/∂a[(c·height + h)·width + w, b]``.
    """
    return grad_a.reshape(cache.x.shape)


@dataclass(frozen=True, slots=True)
class Unflatten(Layer):
    """A layer that makes each column of features an image: the data sets' images arrive flat.

    Parameters
    ----------
    channels, height, width
        The shape of one image; ``channels · height · width`` must equal the input's features.
    """

    channels: int
    height: int
    width: int

    def __post_init__(self) -> None:
        if min(self.channels, self.height, self.width) < 1:
            raise ValueError(
                f"an image has at least one channel, row and column; got {self.channels}, "
                f"{self.height}, {self.width}"
            )


@dataclass(frozen=True, slots=True)
class UnflattenCache:
    """What :func:`unflatten_forward` saves: its input and output, for their shapes."""

    x: Float[Array, "features batch"]
    """The columns (``∂L/∂x`` must have their shape)."""
    a: Float[Array, "channels height width batch"]
    """The images (``∂L/∂a`` must have their shape)."""


@checked
@static_jaxtyping("features channels height width batch")
def unflatten_forward(
    layer: Unflatten, x: Float[Array, "features batch"]
) -> tuple[Float[Array, "channels height width batch"], UnflattenCache]:
    """Each column as one image: the inverse of :func:`flatten_forward`.

    Parameters
    ----------
    layer
        The shape of one image.
    x
        One column of ``channels · height · width`` features per example.

    Returns
    -------
    a, cache
        The images, and the :class:`UnflattenCache`.

    Raises
    ------
    ValueError
        If ``features`` is not ``channels · height · width``.
    """
    features, batch = x.shape
    if features != layer.channels * layer.height * layer.width:
        raise ValueError(
            f"{features} features do not make images of {layer.channels} channels of "
            f"{layer.height}x{layer.width} pixels ({layer.channels * layer.height * layer.width})"
        )
    a = x.reshape(layer.channels, layer.height, layer.width, batch)
    return a, UnflattenCache(x, a)


@checked
@runtime_shapes_only(
    "one reshape to the shape of the cached input, a record's field, which has no shape for Pyrefly"
)
def unflatten_backward(
    grad_a: Float[Array, "channels height width batch"], cache: UnflattenCache
) -> Float[Array, "features batch"]:
    """The gradient of the images, back as columns.

    Parameters
    ----------
    grad_a
        ``∂L/∂a``, a batch of images.
    cache
        What :func:`unflatten_forward` saved.

    Returns
    -------
    grad_x
        ``∂L/∂x``, one column per example.
    """
    return grad_a.reshape(cache.x.shape)
