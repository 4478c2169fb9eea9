"""Gradient checking for anyone's NumPy code: analytic Jacobians against central differences.

The NumPy counterpart of ``torch.autograd.gradcheck``. There is no autograd to supply the
analytic side, so you pass your ``forward`` and your ``backward`` (a vector-Jacobian product):

>>> import numpy as np, typedbackprop as tbp
>>> rng = np.random.default_rng(0)
>>> W, b, a_prev = rng.normal(size=(4, 3)), rng.normal(size=4), rng.normal(size=(3, 5))
>>> report = tbp.gradcheck(
...     tbp.affine_forward,
...     lambda grad_z, W, b, a_prev: tbp.affine_backward(grad_z, W, a_prev),
...     [W, b, a_prev],
... )
>>> report.passed
True
"""

import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from jaxtyping import Float

from typedbackprop.checking import Array, IntArray

if TYPE_CHECKING:
    from typedbackprop.nn.network import ActivationName, Dense, LossName, OutputActivationName

__all__ = [
    "gradcheck",
    "gradcheck_network",
    "numerical_gradient",
    "GradcheckReport",
    "ArgumentCheck",
    "GradcheckError",
]

Output = Array | float
Gradients = Array | Sequence[Array]


def numerical_gradient(
    function: Callable[[Array], float],
    x: Float[Array, "*shape"],
    eps: float = 1e-6,
) -> Float[Array, "*shape"]:
    """Central-difference gradient of a scalar function, one element at a time.

    Parameters
    ----------
    function
        Maps an array shaped like ``x`` to a number.
    x
        Where to differentiate; it is copied to float64, never modified. ``function`` sees the
        float64 copy, perturbed one element at a time.
    eps
        The step ``h``.

    Returns
    -------
    gradient
        ``∂f/∂x``, the shape of ``x``, float64 whatever the dtype of ``x``.

    Notes
    -----
    ``∂f/∂x_i ≈ (f(x + h e_i) − f(x − h e_i)) / 2h``, whose error is ``O(h²)`` from truncation
    plus ``O(ε_machine |f| / h)`` from rounding; ``h = 1e-6`` balances the two in float64.
    """
    point = np.array(x, dtype=np.float64, copy=True)
    gradient = np.empty_like(point)
    flat_point, flat_gradient = point.reshape(-1), gradient.reshape(-1)
    for i in range(flat_point.size):
        original = flat_point[i]
        flat_point[i] = original + eps
        above = float(function(point))
        flat_point[i] = original - eps
        below = float(function(point))
        flat_point[i] = original
        flat_gradient[i] = (above - below) / (2 * eps)
    return gradient


@dataclass(frozen=True)
class ArgumentCheck:
    """The comparison of analytic and numerical Jacobians for one input."""

    name: str
    relative_error: float
    """``‖J_analytic − J_numerical‖ / max(‖J_analytic‖, ‖J_numerical‖)`` (Frobenius norms)."""
    max_abs_error: float
    """The largest ``|J_analytic − J_numerical|`` of any element."""
    worst_input_index: tuple[int, ...]
    """The input element of the worst Jacobian entry (worst relative to its tolerance)."""
    worst_output_index: tuple[int, ...]
    """The output element of the worst Jacobian entry (``()`` for a scalar output)."""
    analytic: float
    """The analytic value of the worst entry."""
    numerical: float
    """The numerical value of the worst entry."""
    passed: bool
    """Whether every entry satisfies ``|analytic − numerical| ≤ atol + rtol |numerical|``."""


@dataclass(frozen=True)
class GradcheckReport:
    """Per-input results of :func:`gradcheck`; ``str(report)`` is a readable table."""

    arguments: tuple[ArgumentCheck, ...]
    eps: float
    rtol: float
    atol: float
    problems: tuple[str, ...] = ()
    """Failures that are not tolerance failures: a gradient of the wrong shape, an input that
    ``forward`` or ``backward`` modified, a ``backward`` that differs between two calls."""

    @property
    def passed(self) -> bool:
        """Whether every input passed and there were no other problems."""
        return not self.problems and all(argument.passed for argument in self.arguments)

    def __bool__(self) -> bool:
        return self.passed

    def __str__(self) -> str:
        header = (
            f"gradcheck (central differences, eps={self.eps:g}; "
            f"pass if |analytic - numerical| <= {self.atol:g} + {self.rtol:g} |numerical|)"
        )
        rows = [header, f"{'input':<12} {'rel. error':>10} {'max abs err':>11}  worst entry"]
        for arg in self.arguments:
            output = f"out{list(arg.worst_output_index)}" if arg.worst_output_index else "out"
            where = f"d {output} / d {arg.name}{list(arg.worst_input_index)}"
            verdict = "ok" if arg.passed else "FAILED"
            rows.append(
                f"{arg.name:<12} {arg.relative_error:>10.2e} {arg.max_abs_error:>11.2e}  {where}: "
                f"analytic {arg.analytic:.10g}, numerical {arg.numerical:.10g}  {verdict}"
            )
        rows.extend(f"problem: {problem}" for problem in self.problems)
        rows.append("passed" if self.passed else "FAILED")
        return "\n".join(rows)


class GradcheckError(RuntimeError):
    """Raised by :func:`gradcheck` when a check fails; ``.report`` holds the details."""

    def __init__(self, report: GradcheckReport) -> None:
        super().__init__(str(report))
        self.report = report


def _as_gradients(gradients: Gradients, count: int) -> list[Array]:
    if isinstance(gradients, np.ndarray):
        gradients = [gradients]
    gradients = list(gradients)
    if len(gradients) != count:
        raise ValueError(f"backward returned {len(gradients)} gradients for {count} inputs")
    return [np.asarray(gradient) for gradient in gradients]


def _input_names(forward: Callable[..., Output], count: int) -> list[str]:
    try:
        parameters = list(inspect.signature(forward).parameters)
    except (TypeError, ValueError):
        parameters = []
    if len(parameters) >= count:
        return parameters[:count]
    return [f"input{i}" for i in range(count)]


def gradcheck(
    forward: Callable[..., Output],
    backward: Callable[..., Gradients],
    inputs: Sequence[Array],
    *,
    names: Sequence[str] | None = None,
    eps: float = 1e-6,
    rtol: float = 1e-7,
    atol: float = 1e-8,
    raise_exception: bool = True,
) -> GradcheckReport:
    """Compare the Jacobians ``backward`` implies with central differences of ``forward``.

    Parameters
    ----------
    forward
        ``forward(*inputs)`` returns an array or a number.
    backward
        ``backward(grad_output, *inputs)`` returns one gradient per input (a tuple, or a single
        array for one input): the vector-Jacobian product ``grad_outputᵀ J`` for each input.
        ``grad_output`` has the shape of ``forward``'s output, or is ``1.0`` for a scalar output.
    inputs
        float64 arrays to differentiate with respect to; copied, never modified. Close over
        anything that should not be differentiated (targets, labels).
    names
        Names for the report; by default ``forward``'s parameter names.
    eps
        The central-difference step.
    rtol, atol
        An entry passes if ``|analytic − numerical| ≤ atol + rtol |numerical|``. The defaults are
        far tighter than ``torch.autograd.gradcheck``'s (1e-3, 1e-5) and at least as tight as
        the usual bar of a relative error below 1e-7.
    raise_exception
        Raise :class:`GradcheckError` on failure (as ``torch.autograd.gradcheck`` does);
        otherwise return the failing report.

    Returns
    -------
    GradcheckReport
        Per input: relative error, largest absolute error, and the worst Jacobian entry.

    Raises
    ------
    TypeError
        If an input is not float64: float32 central differences are accurate to about 1e-3
        at best, too coarse to tell a right gradient from a slightly wrong one.
    ValueError
        If ``names`` does not hold one name per input, or ``backward`` returns another number
        of gradients than there are inputs.
    GradcheckError
        If the check fails and ``raise_exception`` is true.

    Notes
    -----
    The full Jacobian of every input is compared, as ``torch.autograd.gradcheck`` does: the
    analytic one row by row, by calling ``backward`` with each unit vector as ``grad_output``;
    the numerical one column by column, ``(f(x + h e_i) − f(x − h e_i)) / 2h``. The check also
    fails if a gradient's shape differs from its input's, if ``forward`` or ``backward`` modifies
    an input, or if ``backward`` returns different values for the same arguments twice.
    """
    for index, value in enumerate(inputs):
        if not isinstance(value, np.ndarray) or value.dtype != np.float64:
            dtype = value.dtype if isinstance(value, np.ndarray) else type(value).__name__
            raise TypeError(
                f"gradcheck needs float64 arrays; input {index} is {dtype}. float32 central "
                "differences are accurate to about 1e-3 at best, too coarse for the check: "
                "cast with .astype(np.float64)"
            )
    names = list(names) if names is not None else _input_names(forward, len(inputs))
    if len(names) != len(inputs):
        raise ValueError(f"{len(names)} names for {len(inputs)} inputs: give one name per input")
    # forward and backward see copies; the caller's inputs are never written to, so they are
    # also what the copies are compared with afterwards.
    work = [value.copy() for value in inputs]
    problems: list[str] = []

    output = forward(*work)
    output_shape = np.shape(output)
    is_scalar = output_shape == ()
    output_size = int(np.prod(output_shape))

    # Analytic Jacobians, one row per output entry: J[k][j, :] = backward(e_j)[k].
    analytic = [np.zeros((output_size, value.size)) for value in work]
    for j in range(output_size):
        grad_output: Output
        if is_scalar:
            grad_output = 1.0
        else:
            unit = np.zeros(output_size)
            unit[j] = 1.0
            grad_output = unit.reshape(output_shape)
        gradients = _as_gradients(backward(grad_output, *work), len(work))
        if j == 0:
            again = _as_gradients(backward(grad_output, *work), len(work))
            for name, first, second in zip(names, gradients, again, strict=True):
                if first.shape == second.shape and not np.array_equal(
                    first, second, equal_nan=True
                ):
                    problems.append(f"backward is not deterministic for {name}")
        for k, (name, gradient, value) in enumerate(zip(names, gradients, work, strict=True)):
            if gradient.shape != value.shape:
                problem = (
                    f"gradient for {name} has shape {gradient.shape}, but {name} has shape "
                    f"{value.shape}"
                )
                if problem not in problems:
                    problems.append(problem)
                continue
            analytic[k][j, :] = gradient.reshape(-1)

    # Numerical Jacobians, one column per input entry.
    numerical = [np.zeros((output_size, value.size)) for value in work]
    for k, value in enumerate(work):
        flat = value.reshape(-1)
        for i in range(flat.size):
            original = flat[i]
            flat[i] = original + eps
            # np.array copies: a forward that returns its input (or a view of it) must not see
            # the next perturbation change a value already taken.
            above = np.array(forward(*work), dtype=np.float64).reshape(-1)
            flat[i] = original - eps
            below = np.array(forward(*work), dtype=np.float64).reshape(-1)
            flat[i] = original
            numerical[k][:, i] = (above - below) / (2 * eps)

    for name, value, original in zip(names, work, inputs, strict=True):
        if not np.array_equal(value, original, equal_nan=True):
            problems.append(f"forward or backward modified the input {name} in place")

    checks = []
    for name, value, exact, approximate in zip(names, work, analytic, numerical, strict=True):
        difference = np.abs(exact - approximate)
        allowed = atol + rtol * np.abs(approximate)
        norms = (float(np.linalg.norm(exact)), float(np.linalg.norm(approximate)))
        scale = max(norms)
        if any(np.isnan(norms)):  # a NaN gradient is never "close": max() would drop it
            relative = float("nan")
        else:
            relative = float(np.linalg.norm(exact - approximate)) / scale if scale != 0 else 0.0
        if difference.size == 0:
            checks.append(ArgumentCheck(name, 0.0, 0.0, (), (), 0.0, 0.0, True))
            continue
        # Rank entries by how far past their tolerance they are. With atol=0 an entry that is 0
        # on both sides has a tolerance of 0: ratio 0 when it matches, inf when it does not.
        ratio = np.divide(
            difference, allowed, out=np.where(difference == 0, 0.0, np.inf), where=allowed > 0
        )
        worst = np.unravel_index(int(np.argmax(ratio)), difference.shape)
        checks.append(
            ArgumentCheck(
                name=name,
                relative_error=relative,
                max_abs_error=float(difference.max()),
                worst_input_index=tuple(
                    int(i) for i in np.unravel_index(int(worst[1]), value.shape)
                ),
                worst_output_index=tuple(
                    int(i) for i in np.unravel_index(int(worst[0]), output_shape)
                ),
                analytic=float(exact[worst]),
                numerical=float(approximate[worst]),
                passed=bool(np.all(difference <= allowed)),
            )
        )
    report = GradcheckReport(tuple(checks), eps, rtol, atol, tuple(problems))
    if raise_exception and not report.passed:
        raise GradcheckError(report)
    return report


def gradcheck_network(
    layers: Sequence["Dense"],
    x: Array,
    y: Array | IntArray,
    activation: "ActivationName" = "sigmoid",
    output_activation: "OutputActivationName" = "identity",
    loss: "LossName" = "squared_error",
    *,
    eps: float = 1e-6,
    rtol: float = 1e-7,
    atol: float = 1e-8,
    raise_exception: bool = False,
) -> GradcheckReport:
    """:func:`gradcheck` of :func:`~typedbackprop.loss_and_grads` for every ``W`` and ``b``.

    Parameters
    ----------
    layers
        The network, with float64 parameters.
    x
        float64 inputs, one column per example.
    y
        Targets or labels, as :func:`~typedbackprop.loss_and_grads` takes them.
    activation, output_activation, loss
        As for :func:`~typedbackprop.loss_and_grads`.
    eps, rtol, atol
        As for :func:`gradcheck`.
    raise_exception
        Raise :class:`GradcheckError` on failure instead of returning the report.

    Returns
    -------
    GradcheckReport
        One entry per parameter, named ``W1, b1, W2, ...`` (layers counted from 1).
    """
    from typedbackprop.nn.network import Dense, loss_and_grads

    def unpack(params: Sequence[Array]) -> list[Dense]:
        return [Dense(W, b) for W, b in zip(params[::2], params[1::2], strict=True)]

    def loss_of(*params: Array) -> float:
        return loss_and_grads(unpack(params), x, y, activation, output_activation, loss)[0]

    def grads_of(grad_loss: float, *params: Array) -> list[Array]:
        _, grads = loss_and_grads(unpack(params), x, y, activation, output_activation, loss)
        return [grad_loss * array for grad in grads for array in (grad.W, grad.b)]

    params = [array for layer in layers for array in (layer.W, layer.b)]
    names = [f"{kind}{number}" for number in range(1, len(layers) + 1) for kind in ("W", "b")]
    return gradcheck(
        loss_of,
        grads_of,
        params,
        names=names,
        eps=eps,
        rtol=rtol,
        atol=atol,
        raise_exception=raise_exception,
    )
