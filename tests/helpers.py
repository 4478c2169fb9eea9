"""Shared test helpers: a tight float64 comparison and random arrays."""

import numpy as np
import torch


def assert_close(actual, expected, rtol=1e-10):
    """Every entry within ``rtol`` times the largest magnitude of ``expected`` (float64 oracle)."""
    actual = np.asarray(actual.detach() if isinstance(actual, torch.Tensor) else actual)
    expected = np.asarray(expected.detach() if isinstance(expected, torch.Tensor) else expected)
    assert actual.shape == expected.shape, f"shape {actual.shape} != {expected.shape}"
    scale = max(float(np.max(np.abs(expected), initial=0.0)), np.finfo(np.float64).tiny)
    error = float(np.max(np.abs(actual - expected), initial=0.0)) / scale
    assert error <= rtol, f"relative error {error:.3e} exceeds {rtol:.0e}"


def vjp(function, inputs, grad_output):
    """PyTorch's vector-Jacobian product of ``function`` at ``inputs`` (float64 arrays)."""
    tensors = [torch.tensor(value, requires_grad=True) for value in inputs]
    output = function(*tensors)
    output.backward(torch.as_tensor(grad_output))
    return output.detach().numpy(), [tensor.grad.numpy() for tensor in tensors]


def normal(rng, *shape):
    return rng.standard_normal(shape)
