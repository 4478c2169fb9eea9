"""The convolution's equations: im2col, then the dense layer's on the columns."""

from typedbackprop.checking import Array
from typedbackprop.explain.text import Names, Row, shape_text
from typedbackprop.nn.conv import Conv2d, Conv2dCache, columns_as_matrix, kernel_as_matrix

__all__ = ["conv2d_forward_rows", "conv2d_backward_rows"]


def conv2d_forward_rows(
    names: Names, layer: Conv2d, cache: Conv2dCache, output: Array
) -> list[Row]:
    """The convolution's forward equations: im2col, then the affine layer."""
    n, W, b = names.number, names.parameter("W"), names.parameter("b")
    out_channels, in_channels, kernel_h, kernel_w = layer.W.shape
    columns = shape_text(columns_as_matrix(cache.columns).shape)
    W_col = shape_text(kernel_as_matrix(layer.W).shape)
    z_col = shape_text((out_channels, output.size // out_channels))
    return [
        (
            f"columns{n} {columns} = im2col({names.input} {shape_text(cache.x.shape)}, "
            f"{kernel_h}x{kernel_w}, stride {layer.stride}, padding {layer.padding})",
            "a column per window of each example",
        ),
        (
            f"{names.output}_col {z_col} = {W}_col {W_col} @ columns{n} {columns} + {b}[:, None] "
            f"{shape_text((out_channels, 1))}",
            "the affine layer on the columns",
        ),
        (
            f"{names.output} {shape_text(output.shape)} = {names.output}_col {z_col}.reshape"
            f"{shape_text(output.shape)}",
            "a view: batch is last",
        ),
    ]


def conv2d_backward_rows(names: Names, layer: Conv2d, cache: Conv2dCache) -> list[Row]:
    """The convolution's backward equations: the dense layer's, on columns."""
    n, delta = names.number, names.grad_output
    W, b = names.parameter("W"), names.parameter("b")
    columns_matrix = columns_as_matrix(cache.columns).shape
    W_col = kernel_as_matrix(layer.W).shape
    delta_col = shape_text((W_col[0], columns_matrix[1]))
    delta_shape = (W_col[0], *cache.columns.shape[3:])  # (out_channels, out_height, ...)
    rows = [
        (
            f"{delta}_col {delta_col} = {delta} {shape_text(delta_shape)}.reshape{delta_col}",
            "a view: batch is last",
        ),
        (
            f"grad_{W} {shape_text(layer.W.shape)} = ({delta}_col {delta_col} @ columns{n}.T "
            f"{shape_text(columns_matrix[::-1])}).reshape{shape_text(layer.W.shape)}",
            f"sum over every window of every example; shaped like {W}",
        ),
        (
            f"grad_{b} {shape_text(layer.b.shape)} = {delta}_col {delta_col}.sum(axis=1)",
            "b was broadcast along out_height, out_width and batch",
        ),
    ]
    if names.input_gradient:
        rows += [
            (
                f"grad_columns{n} {shape_text(columns_matrix)} = {W}_col.T "
                f"{shape_text(W_col[::-1])} @ {delta}_col {delta_col}",
                "sum over out_channels; shaped like columns",
            ),
            (
                f"{names.grad_input} {shape_text(cache.x.shape)} = col2im(grad_columns{n} "
                f"{shape_text(columns_matrix)})",
                "overlapping windows add up: +=",
            ),
        ]
    return rows
