"""What the test files share: a scale-relative comparison, strategies, and the PyTorch oracles.

The oracles are the independent implementation every result is compared with: PyTorch in
float64, its gradients from ``torch.autograd``, its functions from ``torch.nn.functional`` where
one exists. PyTorch lays data out batch first, ``(batch, features)``; typedbackprop lays it out
features first, ``(features, batch)``. Each oracle transposes at its boundary, so that the
tests compare like with like and a transpose missing in the package cannot hide in the oracle.
"""

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import strategies as st
from jaxtyping import TypeCheckError

SIZES = st.integers(1, 6)
"""A dimension: features, classes, out, inp or batch."""

SEEDS = st.integers(0, 2**32 - 1)
"""A seed for ``np.random.default_rng``: hypothesis draws the shapes, NumPy the values."""

EPS = float(np.finfo(np.float64).eps)
"""float64's spacing just above 1, ``2.2e-16``."""

HUGE = [(np.float64, 1e4), (np.float64, 1e300), (np.float32, 1e4), (np.float32, 1e30)]
"""``(dtype, magnitude)`` of logits far past where a naive ``exp`` overflows (709.78 in
float64, 88.72 in float32), yet small enough that a difference of two of them stays finite."""


# --- comparing -------------------------------------------------------------------------------


def assert_close(actual: Any, expected: Any, rtol: float = 1e-10, *, atol: float = 0.0) -> None:
    """Assert ``|actual − expected| ≤ rtol · max |expected| + atol`` for every entry, in float64.

    ``actual`` and ``expected`` may be arrays, numbers or PyTorch tensors.

    The tolerance is relative to the scale of ``expected`` as a whole, not entry by entry: an
    entry that is small only because of cancellation is held to the precision of the largest.
    When every expected entry is 0 (and ``atol`` is 0), the result must be exactly 0. ``atol``
    is for the rare result that float64 can give only to an absolute accuracy; say why at
    each use.
    """
    actual_array, expected_array = _float64(actual), _float64(expected)
    assert actual_array.shape == expected_array.shape, (
        f"shape {actual_array.shape}, expected {expected_array.shape}"
    )
    if actual_array.size == 0:
        return
    scale = float(np.max(np.abs(expected_array)))
    error = np.abs(actual_array - expected_array)
    worst = np.unravel_index(int(np.argmax(error)), error.shape)
    assert error[worst] <= rtol * scale + atol, (
        f"|actual - expected| = {error[worst]:.3e} at index {tuple(int(i) for i in worst)} "
        f"(actual {actual_array[worst]!r}, expected {expected_array[worst]!r}) exceeds "
        f"rtol * max|expected| + atol = {rtol:.0e} * {scale:.3e} + {atol:.1e}"
    )


def _float64(value: Any) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        value = value.detach().numpy()
    return np.asarray(value, dtype=np.float64)


@contextmanager
def raises_shape_error(*bound: str) -> Iterator[None]:
    """Expect ``jaxtyping.TypeCheckError`` whose message shows each bound dimension.

    ``bound`` holds lines such as ``"inp=3"``: jaxtyping ends its message with one line per
    dimension it had bound when the check failed, which is what tells a user which size the
    other arguments had already fixed.
    """
    with pytest.raises(TypeCheckError) as caught:
        yield
    lines = str(caught.value).splitlines()
    missing = [line for line in bound if line not in lines]
    assert not missing, f"no line {missing} in the message:\n{caught.value}"


def assert_leaves_inputs_alone(function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call ``function`` on copies of ``args``, writeable and then read-only; check both.

    After each call the arrays are compared with the originals; on the read-only copies an
    in-place write also raises ``ValueError`` at once. Returns the second call's result.
    """
    originals = [np.array(arg, copy=True) if isinstance(arg, np.ndarray) else arg for arg in args]

    def fresh_copies(writeable: bool) -> list[Any]:
        copies = []
        for arg in originals:
            if isinstance(arg, np.ndarray):
                arg = arg.copy()
                arg.flags.writeable = writeable
            copies.append(arg)
        return copies

    result = None
    for writeable in (True, False):
        copies = fresh_copies(writeable)
        result = function(*copies, **kwargs)
        for index, (after, before) in enumerate(zip(copies, originals, strict=True)):
            if isinstance(before, np.ndarray):
                np.testing.assert_array_equal(
                    after, before, err_msg=f"argument {index} was modified"
                )
    return result


# --- the PyTorch oracles -----------------------------------------------------------------------


def vjp(
    function: Callable[..., torch.Tensor],
    inputs: Sequence[np.ndarray],
    grad_output: np.ndarray | float,
) -> tuple[np.ndarray, list[np.ndarray]]:
    """``function(*inputs)`` and the vector-Jacobian product with ``grad_output`` per input.

    Everything is float64; ``grad_output`` is ``1.0`` for a scalar ``function`` (a loss).
    """
    leaves = [torch.tensor(value, dtype=torch.float64, requires_grad=True) for value in inputs]
    output = function(*leaves)
    grads = torch.autograd.grad(output, leaves, torch.as_tensor(grad_output, dtype=torch.float64))
    return output.detach().numpy(), [grad.numpy() for grad in grads]


def torch_affine(
    W: np.ndarray, b: np.ndarray, a_prev: np.ndarray, grad_z: np.ndarray
) -> tuple[np.ndarray, list[np.ndarray]]:
    """``z = W a_prev + b`` by ``F.linear`` on batch-first data, and ``[grad_W, grad_b,
    grad_a_prev]`` for the upstream gradient ``grad_z``."""
    return vjp(
        lambda W, b, a_prev: F.linear(a_prev.T, W, b).T,  # (batch, inp) -> (batch, out)
        [W, b, a_prev],
        grad_z,
    )


def torch_elementwise(
    torch_function: Callable[[torch.Tensor], torch.Tensor], z: np.ndarray, grad_a: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """``a = f(z)`` and ``grad_z`` for an elementwise ``f`` (layout does not matter)."""
    a, (grad_z,) = vjp(torch_function, [z], grad_a)
    return a, grad_z


def torch_softmax(z: np.ndarray, grad_a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Softmax of each example (a column here, a row in PyTorch) and ``grad_z``."""
    a, (grad_z,) = vjp(lambda z: F.softmax(z.T, dim=1).T, [z], grad_a)
    return a, grad_z


def torch_squared_error(a: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """``(1/batch) Σ_b ½ ‖a_b − y_b‖²`` and its gradient with respect to ``a``."""
    batch = a.shape[1]
    target = torch.tensor(y.T, dtype=torch.float64)
    loss, (grad_a,) = vjp(
        lambda a: 0.5 * F.mse_loss(a.T, target, reduction="sum") / batch, [a], 1.0
    )
    return float(loss), grad_a


def torch_binary_cross_entropy(z: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """Per example, the sum over outputs of BCE(σ(z), y); the mean over the batch; ``grad_z``.

    PyTorch computes a right answer held with confidence, ``z ≲ −13`` with ``y = 0``, as the
    log of ``1 + tiny`` without ``log1p``, and loses relative digits there: compare with it on
    moderate logits, and test that tail against values by hand.
    """
    batch = z.shape[1]
    target = torch.tensor(y.T, dtype=torch.float64)
    loss, (grad_z,) = vjp(
        lambda z: F.binary_cross_entropy_with_logits(z.T, target, reduction="sum") / batch,
        [z],
        1.0,
    )
    return float(loss), grad_z


def torch_cross_entropy(z: np.ndarray, labels: np.ndarray) -> tuple[float, np.ndarray]:
    """The mean over the batch of −log softmax(z)[label], and ``grad_z``."""
    target = torch.tensor(labels, dtype=torch.int64)
    loss, (grad_z,) = vjp(lambda z: F.cross_entropy(z.T, target, reduction="mean"), [z], 1.0)
    return float(loss), grad_z
