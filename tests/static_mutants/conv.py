"""One-line shape mistakes in the convolution (``typedbackprop/nn/conv.py``), flagged by name.

The convolution is the affine layer on the im2col columns: ``W_col`` is
``(out_channels, in_channels·kernel_h·kernel_w)`` and the columns' matrix
``(in_channels·kernel_h·kernel_w, out_height·out_width·batch)``, products of dimensions that
Pyrefly follows through every reshape written with the named sizes. The classic mistakes are
the columns' matrix passed one window per row, as batch-first code holds it (silent when
``in_channels·kernel_h·kernel_w == out_height·out_width·batch``), the kernel's
``W[:, :, m, n]`` without its transpose in ``∂L/∂columns = W_colᵀ δ_col`` (silent when
``in_channels == out_channels``), and a reshape with its sizes in the wrong order (the kernel
or ``δ`` the other way round, PyTorch's batch-first habit): a reshape runs only where its
sizes coincide, and then it is the same reshape, so those are caught at run time, and by name
before it.
"""

from static_mutants import Mutant

MODULE = "typedbackprop/nn/conv.py"

MUTANTS: list[Mutant] = [
    Mutant(
        MODULE,
        "conv2d_forward",
        "W_col = W.reshape(out_channels, in_channels * kernel_h * kernel_w)",
        "W_col = W.reshape(in_channels * kernel_h * kernel_w, out_channels)",
        "the kernels reshaped to (in_channels·kernel_h·kernel_w, out_channels), the transpose "
        "of W_col's shape",
    ),
    Mutant(
        MODULE,
        "conv2d_forward",
        "z_col = affine_forward(W_col, layer.b, columns_matrix)",
        "z_col = affine_forward(W_col, layer.b, columns_matrix.T)",
        "the columns passed one window per row (columns_matrixᵀ), as batch-first code holds them",
        silent_at_runtime=True,
    ),
    Mutant(
        MODULE,
        "conv2d_forward",
        "z = z_col.reshape(out_channels, out_height, out_width, batch)",
        "z = z_col.reshape(batch, out_channels, out_height, out_width)",
        "z reshaped batch first, (batch, out_channels, out_height, out_width), PyTorch's habit",
    ),
    Mutant(
        MODULE,
        "_grad_params_on_columns",
        "delta_col = grad_z.reshape(out_channels, out_height * out_width * batch)",
        "delta_col = grad_z.reshape(out_height * out_width * batch, out_channels)",
        "δ_col reshaped one window per row, (out_height·out_width·batch, out_channels)",
    ),
    Mutant(
        MODULE,
        "_grad_params_on_columns",
        "grad_W_col, grad_b = affine_grad_params(delta_col, columns_matrix)",
        "grad_W_col, grad_b = affine_grad_params(delta_col, columns_matrix.T)",
        "∂L/∂W_col as δ_col columns, the columns passed one window per row (the transpose missing)",
        silent_at_runtime=True,
    ),
    Mutant(
        MODULE,
        "_col2im_product",
        "grad_window = W[:, :, m, n].T @ delta_col",
        "grad_window = W[:, :, m, n] @ delta_col",
        "∂L/∂columns as W δ_col, the transpose of the kernel's W[:, :, m, n] missing",
        silent_at_runtime=True,
    ),
    Mutant(
        MODULE,
        "_col2im_product",
        "grad_window.reshape(in_channels, out_height, out_width, batch)",
        "grad_window.reshape(batch, in_channels, out_height, out_width)",
        "each offset's gradient reshaped batch first, (batch, in_channels, out_height, "
        "out_width), before it is added into the image",
    ),
]
