"""Max pooling and average pooling over windows of each channel of each image.

Images are ``Float[Array, "channels height width batch"]``. A window of ``window × window``
pixels slides with step ``stride`` (overlapping windows, ``stride < window``, are allowed; no
padding). Both passes loop over the ``window²`` offsets ``(i, j)`` inside a window, never over
pixels: offset ``(i, j)`` of every window at once is one strided view of the input,
``x[:, i::stride, j::stride]`` cut to ``out_height × out_width``.

Backward *adds* each window's gradient into the pixels it read: with overlapping windows one
pixel is read by several windows (as the maximum of more than one, or in every average it is
part of), and its gradient is the sum over them. Writing ``=`` instead of ``+=`` keeps only the
last window's share, and is invisible when ``stride == window``, where no pixel is shared.
"""

import math
from dataclasses import dataclass

import numpy as np
from jaxtyping import Float, Integer

from typedbackprop.checking import Array, IntArray, checked, runtime_shapes_only
from typedbackprop.nn.conv import conv2d_output_size
from typedbackprop.nn.layer import Layer
from typedbackprop.nn.specs import Spec

__all__ = [
    "MaxPool2d",
    "MaxPool2dCache",
    "AvgPool2d",
    "AvgPool2dCache",
    "pool_output_size",
    "window_offset",
    "maxpool2d_forward",
    "maxpool2d_backward",
    "avgpool2d_forward",
    "avgpool2d_backward",
]


def pool_output_size(size: int, window: int, stride: int) -> int:
    """How many windows fit along one axis: ``(size − window) // stride + 1``.

    Parameters
    ----------
    size
        ``height`` or ``width``.
    window
        The window's extent.
    stride
        The step between windows.

    Returns
    -------
    int
        ``out_height`` or ``out_width``.

    Raises
    ------
    ValueError
        If the window is larger than the image.
    """
    return conv2d_output_size(size, window, stride, 0)


def window_offset(
    i: int, j: int, stride: int, out_height: int, out_width: int
) -> tuple[slice, slice, slice]:
    """The index of offset ``(i, j)`` of every window: pixel ``(p·stride + i, q·stride + j)``.

    Parameters
    ----------
    i, j
        The row and column inside a window.
    stride
        The step between windows.
    out_height, out_width
        How many windows there are along each axis.

    Returns
    -------
    tuple
        ``(channels, rows, columns)`` slices; ``x[index]`` is a view of shape
        ``(channels, out_height, out_width, batch)``, entry ``(c, p, q, b)`` being pixel
        ``(p·stride + i, q·stride + j)`` of channel ``c`` of image ``b``.
    """
    rows = slice(i, i + stride * (out_height - 1) + 1, stride)
    columns = slice(j, j + stride * (out_width - 1) + 1, stride)
    return slice(None), rows, columns


_WINDOWS_READ = (
    "each offset of every window is read as x[window_offset(...)], a tuple of strided slices "
    "by which Pyrefly gives the view no shape (its extent, out_height, is a size computed at "
    "run time, not a name)"
)
_WINDOWS_ADDED = (
    "each window's gradient is added into ∂L/∂x at grad_x[window_offset(...)], a tuple of "
    "strided slices by which Pyrefly gives the view no shape, so the sum it routes is unchecked"
)


def _check_window(window: int, stride: int) -> None:
    if window < 1 or stride < 1:
        raise ValueError(f"window and stride must be at least 1; got window={window}, {stride=}")


# --- max pooling ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, init=False)
class MaxPool2d(Layer):
    """A max-pooling layer: settings only.

    Parameters
    ----------
    window
        The side of the square window.
    stride
        The step between windows; below ``window`` the windows overlap. By default the window
        itself, as in PyTorch: windows side by side, ``MaxPool2d(3)`` strides 3.

    Raises
    ------
    ValueError
        For a window or stride below 1.
    """

    window: int
    stride: int

    def __init__(self, window: int = 2, stride: int | None = None) -> None:
        # Written out so that the stored stride is an int to every reader (and to mypy): the
        # default is the window, which a dataclass field's default cannot name.
        object.__setattr__(self, "window", window)
        object.__setattr__(self, "stride", window if stride is None else stride)
        _check_window(self.window, self.stride)


@dataclass(frozen=True, slots=True)
class MaxPool2dCache:
    """What :func:`maxpool2d_forward` saves for :func:`maxpool2d_backward`."""

    layer: MaxPool2d
    """The window and stride."""
    x: Float[Array, "channels height width batch"]
    """The input, held for its shape: ``∂L/∂x`` must have it."""
    argmax: Integer[IntArray, "channels out_height out_width batch"]
    """For each window, which of its pixels is the maximum: ``i · window + j`` for offset
    ``(i, j)``."""


@checked
@runtime_shapes_only(_WINDOWS_READ)
def maxpool2d_forward(
    layer: MaxPool2d, x: Float[Array, "channels height width batch"]
) -> tuple[Float[Array, "channels out_height out_width batch"], MaxPool2dCache]:
    """The maximum of each window of each channel, and where it is.

    Parameters
    ----------
    layer
        The window and stride.
    x
        A batch of images.

    Returns
    -------
    a, cache
        The maxima, and the :class:`MaxPool2dCache` holding the offset of each.

    Notes
    -----
    ``a_{cpub} = max_{m,n} x_{c, p s + m, u s + n, b}`` with ``s`` the stride.

    **Ties.** Offsets are visited row by row (``(0, 0), (0, 1), ..., (1, 0), ...``) and a later
    pixel replaces the running maximum only if it is strictly larger, so the *first* maximum in
    that order is the one recorded, and the one that gets the gradient: the rule of PyTorch's
    CPU ``max_pool2d``. A NaN replaces the running maximum wherever it is, so a window with a
    NaN has the maximum NaN (the last NaN gets the gradient), also as in PyTorch.
    """
    window, stride = layer.window, layer.stride
    channels, height, width, batch = x.shape
    out_height = pool_output_size(height, window, stride)
    out_width = pool_output_size(width, window, stride)
    a = x[window_offset(0, 0, stride, out_height, out_width)].copy()
    # The smallest integer type that holds every offset (uint8 up to 16 × 16 windows): the
    # cache keeps it through the whole backward pass, and int64 would be 8 times the memory.
    argmax = np.zeros(a.shape, dtype=np.min_scalar_type(window * window - 1))
    for i in range(window):
        for j in range(window):
            if i == j == 0:
                continue
            pixels = x[window_offset(i, j, stride, out_height, out_width)]
            larger = (pixels > a) | np.isnan(pixels)  # strictly larger: a tie keeps the first
            np.maximum(a, pixels, out=a)  # NaN wins both ways, as it does in `larger`
            # The offsets grow, i·window + j larger than every earlier one: where `larger`,
            # the maximum of the two is the new offset; elsewhere larger·(i·window + j) is 0.
            offset = argmax.dtype.type(i * window + j)  # in argmax's type: no int64 product
            np.maximum(argmax, larger * offset, out=argmax)
    return a, MaxPool2dCache(layer, x, argmax)


@checked
@runtime_shapes_only(_WINDOWS_ADDED)
def maxpool2d_backward(
    grad_a: Float[Array, "channels out_height out_width batch"], cache: MaxPool2dCache
) -> Float[Array, "channels height width batch"]:
    """Gradient through max pooling: each window's gradient goes to its maximum.

    Parameters
    ----------
    grad_a
        ``∂L/∂a``, the upstream gradient.
    cache
        What :func:`maxpool2d_forward` saved.

    Returns
    -------
    grad_x
        ``∂L/∂x``: zero at every pixel that is no window's maximum.

    Notes
    -----
    The local gradient ``M_{crwpub} = ∂a_{cpub}/∂x_{crwb}`` is 1 where pixel ``(r, w)`` is the
    recorded maximum of window ``(p, u)`` (of channel ``c`` of image ``b``) and 0 elsewhere,
    so ``∂L/∂x_{crwb} = Σ_{p,u} ∂L/∂a_{cpub} M_{crwpub}``. With overlapping windows a pixel can
    be the maximum of several, and the sum over ``(p, u)`` is the ``+=`` below.
    """
    layer = cache.layer
    window, stride = layer.window, layer.stride
    _, out_height, out_width, _ = grad_a.shape
    grad_x = np.zeros_like(cache.x, dtype=grad_a.dtype)
    # grad_a · [is the maximum] is the cheap mask, but inf · 0 is NaN: with a non-finite entry
    # in ∂L/∂a (one sum tells), mask with np.where instead, so that the rest stays 0. (An add
    # in place with where= needs no masked copy, but its masked loop is 5 times slower.)
    finite = math.isfinite(grad_a.sum())
    for i in range(window):
        for j in range(window):
            is_max = cache.argmax == i * window + j
            share = grad_a * is_max if finite else np.where(is_max, grad_a, 0.0)
            grad_x[window_offset(i, j, stride, out_height, out_width)] += share
    return grad_x


MAXPOOL2D_GRAD_X = Spec("grad_x", "cpub,crwpub->crwb", ("grad_a", "M"))
"""``∂L/∂x_{crwb} = Σ_{p,u} ∂L/∂a_{cpub} M_{crwpub}``: :func:`maxpool2d_backward`, with ``M``
the 0/1 routing of each window's gradient to its recorded maximum."""


# --- average pooling ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, init=False)
class AvgPool2d(Layer):
    """An average-pooling layer: settings only.

    Parameters
    ----------
    window
        The side of the square window.
    stride
        The step between windows; below ``window`` the windows overlap. By default the window
        itself, as in PyTorch: windows side by side, ``AvgPool2d(3)`` strides 3.

    Raises
    ------
    ValueError
        For a window or stride below 1.
    """

    window: int
    stride: int

    def __init__(self, window: int = 2, stride: int | None = None) -> None:
        # Written out so that the stored stride is an int to every reader (and to mypy): the
        # default is the window, which a dataclass field's default cannot name.
        object.__setattr__(self, "window", window)
        object.__setattr__(self, "stride", window if stride is None else stride)
        _check_window(self.window, self.stride)


@dataclass(frozen=True, slots=True)
class AvgPool2dCache:
    """What :func:`avgpool2d_forward` saves for :func:`avgpool2d_backward`."""

    layer: AvgPool2d
    """The window and stride."""
    x: Float[Array, "channels height width batch"]
    """The input, held for its shape: ``∂L/∂x`` must have it."""
    a: Float[Array, "channels out_height out_width batch"]
    """The output, held for its shape: ``∂L/∂a`` must have it."""


@checked
@runtime_shapes_only(_WINDOWS_READ)
def avgpool2d_forward(
    layer: AvgPool2d, x: Float[Array, "channels height width batch"]
) -> tuple[Float[Array, "channels out_height out_width batch"], AvgPool2dCache]:
    """The mean of each window of each channel.

    Parameters
    ----------
    layer
        The window and stride.
    x
        A batch of images.

    Returns
    -------
    a, cache
        The means, and the :class:`AvgPool2dCache`.

    Notes
    -----
    ``a_{cpub} = (1 / window²) Σ_{m,n} x_{c, p s + m, u s + n, b}``.
    """
    window, stride = layer.window, layer.stride
    _, height, width, _ = x.shape
    out_height = pool_output_size(height, window, stride)
    out_width = pool_output_size(width, window, stride)
    a = x[window_offset(0, 0, stride, out_height, out_width)].copy()
    for i in range(window):
        for j in range(window):
            if i or j:
                a += x[window_offset(i, j, stride, out_height, out_width)]
    a /= window * window
    return a, AvgPool2dCache(layer, x, a)


@checked
@runtime_shapes_only(_WINDOWS_ADDED)
def avgpool2d_backward(
    grad_a: Float[Array, "channels out_height out_width batch"], cache: AvgPool2dCache
) -> Float[Array, "channels height width batch"]:
    """Gradient through average pooling: each window's gradient, shared equally by its pixels.

    Parameters
    ----------
    grad_a
        ``∂L/∂a``, the upstream gradient.
    cache
        What :func:`avgpool2d_forward` saved.

    Returns
    -------
    grad_x
        ``∂L/∂x``.

    Notes
    -----
    ``∂L/∂x_{crwb} = Σ_{p,u} ∂L/∂a_{cpub} R_{rp} C_{wu} (1/window²)``, where
    ``R_{rp} = [p s ≤ r < p s + window]`` is 1 where row ``r`` lies in window row ``p`` and
    ``C_{wu} = [u s ≤ w < u s + window]`` the same for columns: the local gradient
    ``∂a_{cpub}/∂x_{crwb} = R_{rp} C_{wu} / window²``. The sum runs over the windows ``(p, u)``
    that contain pixel ``(r, w)``: a sum (``+=``) where windows overlap.
    """
    layer = cache.layer
    window, stride = layer.window, layer.stride
    _, out_height, out_width, _ = grad_a.shape
    per_pixel = grad_a / (window * window)  # each pixel's share of its window's gradient
    grad_x = np.zeros_like(cache.x, dtype=grad_a.dtype)
    for i in range(window):
        for j in range(window):
            grad_x[window_offset(i, j, stride, out_height, out_width)] += per_pixel
    return grad_x


AVGPOOL2D_GRAD_X = Spec("grad_x", "cpub,rp,wu,->crwb", ("grad_a", "R", "C", "1/window²"))
"""``∂L/∂x_{crwb} = Σ_{p,u} ∂L/∂a_{cpub} R_{rp} C_{wu} (1/window²)``: :func:`avgpool2d_backward`,
each window's gradient shared equally by the pixels it covers."""
