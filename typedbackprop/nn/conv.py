"""Two-dimensional convolution as the affine layer on im2col columns.

Images are features first, batch last, like every activation in typedbackprop:
``Float[Array, "in_channels height width batch"]``. :func:`im2col` copies every window of the
(padded) input into one column of a matrix, so the convolution is the affine layer of
:mod:`typedbackprop.nn.affine` with ``W_col`` (the kernel, one row per output channel) as its
weights and the window positions of every example as its batch:

- forward: ``z_col = W_col columns + b 1ᵀ``;
- the weight gradient: ``∂L/∂W_col = δ_col columnsᵀ``, for the reason the dense layer's is
  ``δ a_prevᵀ``: each weight multiplies one entry of every column;
- the bias gradient: ``δ_col 1``, a sum over every window position of every example;
- the input gradient: ``∂L/∂columns = W_colᵀ δ_col``, then :func:`col2im` *sums* each column's
  entries back into the pixels it was copied from. A pixel copied into several windows was
  used several times, and a value used several times (broadcast) gets the sum of the gradients
  of its uses, as the bias does over the batch.

The reshapes between the image and matrix forms are C-order views in this layout, and each has
a checked function whose annotation states both shapes.
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
from typedbackprop.nn.affine import affine_forward, affine_grad_params
from typedbackprop.nn.layer import Layer
from typedbackprop.nn.specs import Spec

__all__ = [
    "Conv2d",
    "Conv2dCache",
    "conv2d_output_size",
    "im2col",
    "col2im",
    "columns_as_matrix",
    "matrix_as_columns",
    "kernel_as_matrix",
    "conv2d_forward",
    "conv2d_backward",
    "conv2d_backward_params",
]


def conv2d_output_size(size: int, kernel: int, stride: int, padding: int) -> int:
    """How many window positions fit along one axis: ``(size + 2 padding − kernel) // stride + 1``.

    Parameters
    ----------
    size
        The input's extent along the axis (``height`` or ``width``).
    kernel
        The window's extent along it (``kernel_h`` or ``kernel_w``).
    stride
        The step between windows.
    padding
        Zeros added on each side.

    Returns
    -------
    int
        ``out_height`` or ``out_width``.

    Raises
    ------
    ValueError
        If the window does not fit in the padded input even once.
    """
    padded = size + 2 * padding
    if kernel > padded:
        raise ValueError(
            f"a window of {kernel} does not fit in an input of {size} with padding {padding} "
            f"on each side ({padded} in all)"
        )
    return (padded - kernel) // stride + 1


def _padded(x: Array, padding: int) -> Array:
    """``x`` with ``padding`` zeros on every side of each image (``x`` itself for none)."""
    if not padding:
        return x
    channels, height, width, batch = x.shape
    padded = np.zeros((channels, height + 2 * padding, width + 2 * padding, batch), x.dtype)
    padded[:, padding : padding + height, padding : padding + width] = x  # np.pad, but cheaper
    return padded


_MERGED_ANNOTATION = (
    "its annotation merges dimensions (in_channels·kernel_h·kernel_w), a product that "
    "annotations for Pyrefly cannot name (only name, name+1, name-1)"
)


@checked
@runtime_shapes_only(
    "each kernel offset's windows are copied in by slice assignment (columns[:, i, j] = ...), "
    "whose shape Pyrefly does not check, into an array sized by int arguments and computed "
    "sizes (kernel_h, out_height), not names"
)
def im2col(
    x: Float[Array, "in_channels height width batch"],
    kernel_h: int,
    kernel_w: int,
    stride: int,
    padding: int,
) -> Float[Array, "in_channels kernel_h kernel_w out_height out_width batch"]:
    """Copy every window of the zero-padded input into one column.

    Parameters
    ----------
    x
        A batch of images.
    kernel_h, kernel_w
        The window's height and width.
    stride
        The step between windows, the same along both axes.
    padding
        Zeros added on every side of each image.

    Returns
    -------
    columns
        ``columns[c, i, j, p, q, b]`` is pixel ``(c, p·stride + i, q·stride + j)`` of the padded
        image ``b``: the window at position ``(p, q)``, entry ``(c, i, j)`` of it. Read as a
        matrix (:func:`columns_as_matrix`), each column is one window of one example.

    Notes
    -----
    ``columns_{c i j p q b} = x^{pad}_{c, p s + i, q s + j, b}`` with ``s`` the stride and
    ``x^{pad}`` the input with ``padding`` zeros on each side. One strided copy per kernel
    offset ``(i, j)``: ``kernel_h · kernel_w`` vectorised copies, no loop over pixels.
    """
    in_channels, height, width, batch = x.shape
    out_height = conv2d_output_size(height, kernel_h, stride, padding)
    out_width = conv2d_output_size(width, kernel_w, stride, padding)
    padded = _padded(x, padding)
    columns = np.empty((in_channels, kernel_h, kernel_w, out_height, out_width, batch), x.dtype)
    rows_end, cols_end = stride * (out_height - 1) + 1, stride * (out_width - 1) + 1
    for i in range(kernel_h):
        for j in range(kernel_w):
            columns[:, i, j] = padded[:, i : i + rows_end : stride, j : j + cols_end : stride]
    return columns


@checked
@runtime_shapes_only(
    "each kernel offset's entries are added into strided slices of the padded image, whose "
    "extents are sizes computed at run time, which Pyrefly sizes as plain ints, not names"
)
def col2im(
    columns: Float[Array, "in_channels kernel_h kernel_w out_height out_width batch"],
    height: int,
    width: int,
    stride: int,
    padding: int,
) -> Float[Array, "in_channels height width batch"]:
    """Add every column back into the pixels it was copied from: the adjoint of :func:`im2col`.

    Parameters
    ----------
    columns
        One value per entry of every window, laid out as :func:`im2col` returns them
        (in the backward pass, ``∂L/∂columns``).
    height, width
        The size of the images :func:`im2col` read.
    stride, padding
        The stride and padding :func:`im2col` used.

    Returns
    -------
    image
        ``image[c, r, w, b]`` is the sum of the entries of ``columns`` that were copied from
        pixel ``(c, r, w)`` of example ``b``; the padding's entries are dropped.

    Notes
    -----
    ``x_{crwb} = Σ columns_{cmnpub}`` over the ``(m, n, p, u)`` with ``p s + m = r + padding``
    and ``u s + n = w + padding``.
    Overlapping windows (``stride < kernel``) copy a pixel into several columns, and the sum
    collects all of them: ``+=``, not ``=``. That is why this is the gradient of
    :func:`im2col`: a value used several times gets the sum of its uses' gradients.
    """
    in_channels, kernel_h, kernel_w, out_height, out_width, batch = columns.shape
    padded = np.zeros(
        (in_channels, height + 2 * padding, width + 2 * padding, batch), dtype=columns.dtype
    )
    rows_end, cols_end = stride * (out_height - 1) + 1, stride * (out_width - 1) + 1
    for i in range(kernel_h):
        for j in range(kernel_w):
            padded[:, i : i + rows_end : stride, j : j + cols_end : stride] += columns[:, i, j]
    return padded[:, padding : padding + height, padding : padding + width]


@checked
@runtime_shapes_only(_MERGED_ANNOTATION)
def columns_as_matrix(
    columns: Float[Array, "in_channels kernel_h kernel_w out_height out_width batch"],
) -> Float[Array, "in_channels*kernel_h*kernel_w out_height*out_width*batch"]:
    """The columns as a matrix: one row per kernel entry, one column per window of an example.

    Parameters
    ----------
    columns
        What :func:`im2col` returns.

    Returns
    -------
    matrix
        The same numbers (a view), the first three axes merged and the last three merged.
    """
    in_channels, kernel_h, kernel_w, out_height, out_width, batch = columns.shape
    return columns.reshape(in_channels * kernel_h * kernel_w, out_height * out_width * batch)


@checked
@runtime_shapes_only(_MERGED_ANNOTATION)
def matrix_as_columns(
    like: Float[Array, "in_channels kernel_h kernel_w out_height out_width batch"],
    matrix: Float[Array, "in_channels*kernel_h*kernel_w out_height*out_width*batch"],
) -> Float[Array, "in_channels kernel_h kernel_w out_height out_width batch"]:
    """Undo :func:`columns_as_matrix`: the matrix back in the shape of ``like``.

    Parameters
    ----------
    like
        Any array in the column layout, for its shape (the saved ``columns``). It comes first
        because it binds the dimensions that ``matrix``'s merged sizes are computed from.
    matrix
        One row per kernel entry, one column per window of an example.

    Returns
    -------
    columns
        The same numbers (a view), in the shape of ``like``.
    """
    return matrix.reshape(like.shape)


@checked
@runtime_shapes_only(_MERGED_ANNOTATION)
def kernel_as_matrix(
    W: Float[Array, "out_channels in_channels kernel_h kernel_w"],
) -> Float[Array, "out_channels in_channels*kernel_h*kernel_w"]:
    """The kernels as the affine layer's weights ``W_col``: one row per output channel.

    Parameters
    ----------
    W
        The kernels, one per pair of output and input channel.

    Returns
    -------
    W_col
        The same numbers (a view); row ``o`` lists kernel ``o``'s entries in the order of the
        rows of :func:`columns_as_matrix`, ``(c, i, j)``.
    """
    return W.reshape(W.shape[0], -1)


# --- the conv2d family: the layer contract over the functions above ---------------------------


@checked_record()
@dataclass(frozen=True, slots=True)
class Conv2d(Layer):
    """A convolution layer's parameters (or their gradients: the same shapes) and settings.

    Parameters
    ----------
    W
        The kernels: ``W[o, c]`` is the ``kernel_h × kernel_w`` filter from input channel ``c``
        to output channel ``o`` (the layout of PyTorch's ``Conv2d.weight``).
    b
        Biases, one per output channel.
    stride
        The step between windows, along both axes.
    padding
        Zeros added on every side of each image.

    Raises
    ------
    ValueError
        For a stride below 1 or a negative padding.

    Notes
    -----
    Creating a ``Conv2d`` checks that ``W`` is 4-D, ``b`` 1-D, both floating point, with one
    bias per output channel. As with PyTorch's ``conv2d``, the operation is a cross-correlation:
    the kernel is not flipped.
    """

    W: Float[Array, "out_channels in_channels kernel_h kernel_w"]
    b: Float[Array, " out_channels"]
    stride: int = 1
    padding: int = 0

    def __post_init__(self) -> None:
        if self.stride < 1 or self.padding < 0:
            raise ValueError(
                f"stride must be at least 1 and padding at least 0; got stride={self.stride}, "
                f"padding={self.padding}"
            )


@dataclass(frozen=True, slots=True)
class Conv2dCache:
    """What :func:`conv2d_forward` saves for :func:`conv2d_backward`."""

    layer: Conv2d
    """The parameters and settings the forward pass used (``W_colᵀ δ_col`` needs ``W``)."""
    x: Float[Array, "in_channels height width batch"]
    """The input: ``∂L/∂x`` has its shape, and ``δ_col columnsᵀ`` needs its windows."""

    @property
    def columns(self) -> Float[Array, "in_channels kernel_h kernel_w out_height out_width batch"]:
        """The input's windows, ``im2col(x)``, copied again when asked for.

        They are ``kernel_h · kernel_w`` copies of the input, the largest array of the layer:
        forward copies them for its product and lets them go, and backward copies them again
        for ``δ_col columnsᵀ``, rather than the cache holding them through the rest of the
        forward pass and the backward pass of every layer above. One more copy of the input
        costs less than keeping that memory (see the performance page, on the convnet).
        """
        _, _, kernel_h, kernel_w = self.layer.W.shape
        return im2col(self.x, kernel_h, kernel_w, self.layer.stride, self.layer.padding)


@checked
@static_jaxtyping(
    "out_channels in_channels kernel_h kernel_w height width out_height out_width batch"
)
def conv2d_forward(
    layer: Conv2d, x: Float[Array, "in_channels height width batch"]
) -> tuple[Float[Array, "out_channels out_height out_width batch"], Conv2dCache]:
    """The convolution: the affine layer ``W_col columns + b`` on the windows of ``x``.

    Parameters
    ----------
    layer
        The kernels, biases, stride and padding.
    x
        A batch of images.

    Returns
    -------
    z, cache
        One image per output channel for each example, and the :class:`Conv2dCache`.

    Notes
    -----
    Index form: ``z_{o p u b} = Σ_{c,m,n} W_{o c m n} x^{pad}_{c, p s + m, u s + n, b} + b_o``.

    Matrix form: ``z_col = W_col columns + b 1ᵀ`` with ``W_col`` :
    ``(out_channels, in_channels·kernel_h·kernel_w)`` and ``columns`` :
    ``(in_channels·kernel_h·kernel_w, out_height·out_width·batch)``; ``z_col`` is ``z`` with
    its last three axes merged (a view: batch is last).
    """
    W: Float[Array, "out_channels in_channels kernel_h kernel_w"] = layer.W
    out_channels, in_channels, kernel_h, kernel_w = W.shape
    columns: Float[Array, "in_channels kernel_h kernel_w out_height out_width batch"] = im2col(
        x, kernel_h, kernel_w, layer.stride, layer.padding
    )
    out_height, out_width, batch = columns.shape[3:]
    # kernel_as_matrix(W) and columns_as_matrix(columns), written out so that the product's
    # shapes are followed by name: (in_channels·kernel_h·kernel_w) rows of the columns, and
    # (out_height·out_width·batch) windows
    W_col = W.reshape(out_channels, in_channels * kernel_h * kernel_w)
    columns_matrix = columns.reshape(
        in_channels * kernel_h * kernel_w, out_height * out_width * batch
    )
    z_col = affine_forward(W_col, layer.b, columns_matrix)
    # (out_channels, out_height·out_width·batch) -> (out_channels, out_height, out_width, batch)
    z = z_col.reshape(out_channels, out_height, out_width, batch)
    return z, Conv2dCache(layer, x)


@checked
@runtime_shapes_only(
    "one call of _grad_params_on_columns (declared) on the cache's windows, a record's "
    "property, which has no shape for Pyrefly"
)
def conv2d_backward_params(
    grad_z: Float[Array, "out_channels out_height out_width batch"], cache: Conv2dCache
) -> Conv2d:
    """The parameter gradients of :func:`conv2d_backward` alone, for a network's first layer.

    Parameters
    ----------
    grad_z
        ``∂L/∂z``, the upstream gradient (``δ``).
    cache
        What :func:`conv2d_forward` saved.

    Returns
    -------
    grads
        ``Conv2d(∂L/∂W, ∂L/∂b)`` with the layer's settings.

    Notes
    -----
    ``∂L/∂W_col = δ_col columnsᵀ`` and ``∂L/∂b = δ_col 1``: :func:`affine_grad_params` on the
    matrix forms, the sums running over ``out_height·out_width·batch``.
    """
    layer = cache.layer
    grad_W, grad_b = _grad_params_on_columns(cache.columns, grad_z)
    return Conv2d(grad_W, grad_b, layer.stride, layer.padding)


@checked
@static_jaxtyping("out_channels in_channels kernel_h kernel_w out_height out_width batch")
def _grad_params_on_columns(
    columns: Float[Array, "in_channels kernel_h kernel_w out_height out_width batch"],
    grad_z: Float[Array, "out_channels out_height out_width batch"],
) -> tuple[
    Float[Array, "out_channels in_channels kernel_h kernel_w"], Float[Array, " out_channels"]
]:
    """``δ_col columnsᵀ`` (reshaped like ``W``) and ``δ_col 1``; the columns come first, so that
    they bind the output's height and width (the cache holds only ``x``) before ``grad_z`` is
    checked against them."""
    in_channels, kernel_h, kernel_w, out_height, out_width, batch = columns.shape
    out_channels = grad_z.shape[0]
    delta_col = grad_z.reshape(out_channels, out_height * out_width * batch)
    columns_matrix = columns.reshape(
        in_channels * kernel_h * kernel_w, out_height * out_width * batch
    )
    grad_W_col, grad_b = affine_grad_params(delta_col, columns_matrix)
    return grad_W_col.reshape(out_channels, in_channels, kernel_h, kernel_w), grad_b


@checked
@runtime_shapes_only(
    "two calls, of conv2d_backward_params and of _col2im_product (declared), on the cache, a "
    "record whose fields have no shape for Pyrefly"
)
def conv2d_backward(
    grad_z: Float[Array, "out_channels out_height out_width batch"], cache: Conv2dCache
) -> tuple[Conv2d, Float[Array, "in_channels height width batch"]]:
    """Gradients of the convolution: ``(Conv2d(grad_W, grad_b), grad_x)``.

    Parameters
    ----------
    grad_z
        ``∂L/∂z``, the upstream gradient (``δ``).
    cache
        What :func:`conv2d_forward` saved.

    Returns
    -------
    grads, grad_x
        ``∂L/∂W`` and ``∂L/∂b`` in a :class:`Conv2d` (the layer's shapes and settings), and
        ``∂L/∂x`` (the input's shape).

    Notes
    -----
    Index form: ``∂L/∂W_{ocmn} = Σ_{p,u,b} δ_{opub} columns_{cmnpub}``, where
    ``columns_{cmnpub} = x^{pad}_{c, p s + m, u s + n, b}`` (:func:`im2col`);
    ``∂L/∂b_{o} = Σ_{p,u,b} δ_{opub}``; and
    ``∂L/∂x_{crwb} = Σ_{o,p,u,m,n} δ_{opub} W_{ocmn} R_{mrp} C_{nwu}``, where
    ``R_{mrp} = [p s + m = r + padding]`` is 1 where kernel row ``m`` of window row ``p`` reads
    input row ``r``, and ``C_{nwu} = [u s + n = w + padding]`` the same for columns: the local
    gradient ``∂z_{opub}/∂x_{crwb}`` is ``Σ_{m,n} W_{ocmn} R_{mrp} C_{nwu}``, every kernel entry
    that reads pixel ``(r, w)`` in window ``(p, u)``.

    Matrix form: ``∂L/∂W_col = δ_col columnsᵀ``, ``∂L/∂b = δ_col 1``,
    ``∂L/∂columns = W_colᵀ δ_col``, then ``∂L/∂x = col2im(∂L/∂columns)``.

    The last two steps run together, one kernel offset ``(m, n)`` at a time: the rows of
    ``W_colᵀ δ_col`` for offset ``(m, n)`` are ``W[:, :, m, n]ᵀ δ_col``, and :func:`col2im`
    adds them into the pixels that offset read (``+=``: overlapping windows share pixels). The
    same products and the same sums, without building the whole ``∂L/∂columns`` (as large as
    ``columns``) first.
    """
    grads = conv2d_backward_params(grad_z, cache)  # checks grad_z against the windows of x
    _, height, width, _ = cache.x.shape
    return grads, _col2im_product(cache.layer, grad_z, height, width)


@static_jaxtyping(
    "out_channels in_channels kernel_h kernel_w height width out_height out_width batch"
)
def _col2im_product(
    layer: Conv2d,
    grad_z: Float[Array, "out_channels out_height out_width batch"],
    height: int,
    width: int,
) -> Float[Array, "in_channels height width batch"]:
    """``col2im(W_colᵀ δ_col)``, one kernel offset at a time (see :func:`conv2d_backward`)."""
    W: Float[Array, "out_channels in_channels kernel_h kernel_w"] = layer.W
    stride, padding = layer.stride, layer.padding
    _, in_channels, kernel_h, kernel_w = W.shape
    out_channels, out_height, out_width, batch = grad_z.shape
    delta_col = grad_z.reshape(out_channels, out_height * out_width * batch)
    grad_padded = np.zeros(
        (in_channels, height + 2 * padding, width + 2 * padding, batch), dtype=grad_z.dtype
    )
    rows_end, cols_end = stride * (out_height - 1) + 1, stride * (out_width - 1) + 1
    for m in range(kernel_h):
        for n in range(kernel_w):
            # ∂L/∂columns[:, m, n] = W[:, :, m, n]ᵀ δ_col: (in_channels, out_height·out_width·batch)
            grad_window = W[:, :, m, n].T @ delta_col
            grad_padded[:, m : m + rows_end : stride, n : n + cols_end : stride] += (
                grad_window.reshape(in_channels, out_height, out_width, batch)
            )
    return grad_padded[:, padding : padding + height, padding : padding + width]


CONV2D_GRAD_W = Spec("grad_W", "opub,cmnpub->ocmn", ("grad_z", "columns"))
"""``∂L/∂W_{ocmn} = Σ_{p,u,b} δ_{opub} columns_{cmnpub}``: ``δ_col columnsᵀ``, reshaped like
``W`` (:func:`conv2d_backward_params`)."""

CONV2D_GRAD_B = Spec("grad_b", "opub->o", ("grad_z",))
"""``∂L/∂b_{o} = Σ_{p,u,b} δ_{opub}``: ``δ_col 1``, a sum over every window of every example."""

CONV2D_GRAD_X = Spec("grad_x", "opub,ocmn,mrp,nwu->crwb", ("grad_z", "W", "R", "C"))
"""``∂L/∂x_{crwb} = Σ_{o,p,u,m,n} δ_{opub} W_{ocmn} R_{mrp} C_{nwu}``: ``W_colᵀ δ_col``, then
:func:`col2im`, whose sum over the windows that read a pixel is the sum over ``p, u, m, n``."""
