"""PyTorch oracles for the image layers, transposed to PyTorch's NCHW layout at their boundary.

typedbackprop lays a batch of images out as ``(channels, height, width, batch)``; PyTorch as
``(batch, channels, height, width)``. Each oracle takes and returns arrays in typedbackprop's
layout and does the transposes itself, once in and once out, so that a transpose missing in the
package cannot hide in the oracle. Everything is float64; the gradients come from
``torch.autograd``.
"""

import numpy as np
import torch
import torch.nn.functional as F
from helpers import vjp

TO_NCHW = (3, 0, 1, 2)
"""``(channels, height, width, batch)`` -> ``(batch, channels, height, width)``."""
FROM_NCHW = (1, 2, 3, 0)
"""``(batch, channels, height, width)`` -> ``(channels, height, width, batch)``."""


def nchw(x: torch.Tensor) -> torch.Tensor:
    """An image batch in typedbackprop's layout, as PyTorch lays it out."""
    return x.permute(*TO_NCHW)


def house(x: torch.Tensor) -> torch.Tensor:
    """An NCHW batch in typedbackprop's layout, features first and batch last."""
    return x.permute(*FROM_NCHW)


def torch_conv2d(
    W: np.ndarray, b: np.ndarray, x: np.ndarray, grad_z: np.ndarray, stride: int, padding: int
) -> tuple[np.ndarray, list[np.ndarray]]:
    """``F.conv2d`` (PyTorch's weight layout is ours), and ``[grad_W, grad_b, grad_x]``."""
    return vjp(
        lambda W, b, x: house(F.conv2d(nchw(x), W, b, stride=stride, padding=padding)),
        [W, b, x],
        grad_z,
    )


def torch_max_pool2d(
    x: np.ndarray, grad_out: np.ndarray, window: int, stride: int
) -> tuple[np.ndarray, np.ndarray]:
    """``F.max_pool2d`` and ``grad_x``."""
    out, (grad_x,) = vjp(lambda x: house(F.max_pool2d(nchw(x), window, stride)), [x], grad_out)
    return out, grad_x


def torch_avg_pool2d(
    x: np.ndarray, grad_out: np.ndarray, window: int, stride: int
) -> tuple[np.ndarray, np.ndarray]:
    """``F.avg_pool2d`` and ``grad_x``."""
    out, (grad_x,) = vjp(lambda x: house(F.avg_pool2d(nchw(x), window, stride)), [x], grad_out)
    return out, grad_x


def torch_batch_norm_training(
    gamma: np.ndarray, beta: np.ndarray, x: np.ndarray, grad_y: np.ndarray, eps: float
) -> tuple[np.ndarray, list[np.ndarray]]:
    """``F.batch_norm`` with batch statistics on ``(features, batch)`` or image data, and
    ``[grad_gamma, grad_beta, grad_x]``. The feature axis is first here, second in PyTorch."""
    order = (x.ndim - 1, *range(x.ndim - 1))  # batch first: (batch, features[, height, width])
    back = (*range(1, x.ndim), 0)

    def batch_norm(gamma: torch.Tensor, beta: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        y = F.batch_norm(x.permute(*order), None, None, gamma, beta, training=True, eps=eps)
        return y.permute(*back)

    return vjp(batch_norm, [gamma, beta, x], grad_y)


def torch_batch_norm_running(
    x: np.ndarray, mean: np.ndarray, var: np.ndarray, momentum: float, eps: float
) -> tuple[np.ndarray, np.ndarray]:
    """The running mean and variance PyTorch holds after one training step on ``x``."""
    order = (x.ndim - 1, *range(x.ndim - 1))
    running_mean = torch.tensor(mean, dtype=torch.float64)
    running_var = torch.tensor(var, dtype=torch.float64)
    F.batch_norm(
        torch.tensor(x, dtype=torch.float64).permute(*order),
        running_mean,
        running_var,
        training=True,
        momentum=momentum,
        eps=eps,
    )
    return running_mean.numpy(), running_var.numpy()


def torch_batch_norm_evaluation(
    gamma: np.ndarray,
    beta: np.ndarray,
    x: np.ndarray,
    mean: np.ndarray,
    var: np.ndarray,
    grad_y: np.ndarray,
    eps: float,
) -> tuple[np.ndarray, list[np.ndarray]]:
    """``F.batch_norm`` with the given running statistics, and ``[grad_gamma, grad_beta,
    grad_x]``."""
    order = (x.ndim - 1, *range(x.ndim - 1))
    back = (*range(1, x.ndim), 0)
    running_mean = torch.tensor(mean, dtype=torch.float64)
    running_var = torch.tensor(var, dtype=torch.float64)

    def batch_norm(gamma: torch.Tensor, beta: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        y = F.batch_norm(
            x.permute(*order), running_mean, running_var, gamma, beta, training=False, eps=eps
        )
        return y.permute(*back)

    return vjp(batch_norm, [gamma, beta, x], grad_y)
