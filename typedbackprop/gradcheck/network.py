"""``gradcheck_network``: a network's ``loss_and_grads`` against central differences of its loss.

The analytic side is one call of :func:`~typedbackprop.loss_and_grads`. The numerical side
evaluates the loss alone, a forward pass (:func:`~typedbackprop.forward`) and the loss function,
never the gradients. It also reads, at every point, which side of zero each pre-activation of a
ReLU (or leaky ReLU) hidden layer lies on: a step whose sign pattern differs from the
unperturbed point's crossed a kink, and that entry (or projection) is left out and counted.
"""

from collections.abc import Sequence
from typing import TYPE_CHECKING, Final, Literal

import numpy as np
from jaxtyping import Float

from typedbackprop.checking import Array, IntArray
from typedbackprop.gradcheck.analytic import Analytic
from typedbackprop.gradcheck.compare import GradcheckError, GradcheckReport
from typedbackprop.gradcheck.core import DEFAULT_ATOL, DEFAULT_RTOL, make_report, run_checks
from typedbackprop.gradcheck.numerical import DEFAULT_EPS, OutputLayout, Pattern
from typedbackprop.gradcheck.subject import Settings, Subject
from typedbackprop.gradcheck.validate import require_float64, require_settings

if TYPE_CHECKING:  # the top-level names: they stay where the network modules move
    from typedbackprop import ActivationName, Dense, LossName
    from typedbackprop.nn import OutputActivationName

__all__ = [
    "FULL_CHECK_PARAMETERS",
    "NETWORK_SAMPLES",
    "KINKED_ACTIVATIONS",
    "perceptron_losses",
    "check_network_names",
    "chosen_method",
    "loss_evaluations",
    "gradcheck_network",
]

FULL_CHECK_PARAMETERS: Final = 20_000
"""Networks with at most this many parameters get the full check (two forward passes per
parameter: seconds); larger ones fast mode plus :data:`NETWORK_SAMPLES` entries per parameter."""
NETWORK_SAMPLES: Final = 32
"""Entries checked per parameter array of a network too large for the full check."""
KINKED_ACTIVATIONS: Final = frozenset({"relu", "leaky_relu"})
"""Hidden activations with a kink at ``z = 0``: their sign pattern is watched."""


def perceptron_losses() -> tuple[str, ...]:
    """The losses of :data:`~typedbackprop.LOSSES` that take a perceptron's output.

    Those with one target per example (``per_example``): a column of ``(out, batch)`` or a
    label of ``(batch,)``. ``token_cross_entropy`` takes a sequence model's logits
    ``(classes, seq, batch)``.
    """
    import typedbackprop as tbp  # at call time: the network modules import this package

    return tuple(name for name, entry in tbp.nn.LOSSES.items() if entry.per_example)


def check_network_names(activation: str, output_activation: str, loss: str) -> None:
    """Raise ``ValueError`` for a name :func:`gradcheck_network` cannot check.

    The names must be known, the loss must go with the output activation
    (:func:`~typedbackprop.nn.network.check_names`), and the loss must take a perceptron's
    ``(out, batch)`` output (:func:`perceptron_losses`).
    """
    import typedbackprop.nn.network as network  # at call time, as above

    network.check_names(activation, output_activation, loss)
    fitting = perceptron_losses()
    if loss not in fitting:
        raise ValueError(
            f"loss {loss!r} does not take a perceptron's (out, batch) output; "
            f"gradcheck_network checks one of {fitting}"
        )


def chosen_method(parameters: int, method: Literal["auto", "full", "fast"]) -> str:
    """``"full"`` or ``"fast"``: what ``method`` means for a network of ``parameters``.

    ``"auto"`` is the full check up to :data:`FULL_CHECK_PARAMETERS` parameters, fast mode plus
    sampled entries above.
    """
    if method not in ("auto", "full", "fast"):
        raise ValueError(f"unknown method {method!r}; choose one of ('auto', 'full', 'fast')")
    if method == "auto":
        return "fast" if parameters > FULL_CHECK_PARAMETERS else "full"
    return method


def loss_evaluations(
    sizes: Sequence[int],
    method: Literal["auto", "full", "fast"] = "auto",
    samples: int = NETWORK_SAMPLES,
    projections: int = 3,
) -> int:
    """How many forward passes :func:`gradcheck_network` runs on a network of ``sizes``.

    Parameters
    ----------
    sizes
        The number of entries of each parameter array (``W1, b1, W2, ...``).
    method, samples, projections
        As for :func:`gradcheck_network`.

    Returns
    -------
    int
        One pass at the unperturbed point, then two per entry checked (full check) or per
        projection and sampled entry (fast mode): what a caller needs to bound the cost before
        starting. Projection directions drawn again at a kink add two passes each.
    """
    if chosen_method(sum(sizes), method) == "full":
        return 1 + 2 * sum(sizes)
    return 1 + sum(2 * projections + 2 * min(samples, size) for size in sizes)


def gradcheck_network(
    layers: Sequence["Dense"],
    x: Array,
    y: Array | IntArray,
    activation: "ActivationName" = "sigmoid",
    output_activation: "OutputActivationName" = "identity",
    loss: "LossName" = "squared_error",
    *,
    eps: float = DEFAULT_EPS,
    rtol: float = DEFAULT_RTOL,
    atol: float = DEFAULT_ATOL,
    method: Literal["auto", "full", "fast"] = "auto",
    samples: int = NETWORK_SAMPLES,
    projections: int = 3,
    seed: int = 0,
    raise_exception: bool = True,
) -> GradcheckReport:
    """Check :func:`~typedbackprop.loss_and_grads` for every ``W`` and ``b`` of a network.

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
        As for :func:`~typedbackprop.gradcheck.gradcheck`.
    method
        ``"full"``: every parameter entry. ``"fast"``: fast mode (random projections) plus
        ``samples`` random entries per parameter. ``"auto"`` (the default): full for a network
        of at most :data:`FULL_CHECK_PARAMETERS` parameters, fast otherwise.
    samples
        Entries checked per parameter array with ``method="fast"``.
    projections
        Random projections per parameter array with ``method="fast"``.
    seed
        Seeds the projections and the sampled entries.
    raise_exception
        Raise :class:`~typedbackprop.gradcheck.GradcheckError` on failure (the default, the
        same as :func:`~typedbackprop.gradcheck.gradcheck`'s); otherwise return the report.

    Returns
    -------
    GradcheckReport
        One entry per parameter, named ``W1, b1, W2, ...`` (layers counted from 1).

    Raises
    ------
    ValueError
        For an unknown activation, output activation, loss or method, a loss that does not go
        with the output activation, or a loss that does not take a perceptron's output
        (``token_cross_entropy``: see :func:`check_network_names`).
    TypeError
        If a parameter is not a float64 array.

    Notes
    -----
    The loss is evaluated by a forward pass alone, so the check costs two forward passes per
    parameter entry checked (and one ``loss_and_grads``). A step that changes the sign of any
    hidden pre-activation of a ReLU or leaky ReLU network has crossed a kink, where the central
    difference matches neither one-sided derivative: such entries are skipped and counted, and
    such projection directions drawn again, so that a correct network never fails for it.
    """
    import typedbackprop as tbp  # at call time: the network modules import this package

    params = [array for layer in layers for array in (layer.W, layer.b)]
    names = [f"{kind}{number}" for number in range(1, len(layers) + 1) for kind in ("W", "b")]
    require_float64(params, names)
    require_settings(
        eps=eps, rtol=rtol, atol=atol, nondet_tol=0.0, samples=samples, projections=projections
    )
    check_network_names(activation, output_activation, loss)
    fast = chosen_method(sum(array.size for array in params), method) == "fast"
    settings = Settings(
        eps, rtol, atol, fast_mode=fast, samples=samples if fast else None,
        projections=projections, seed=seed,
    )  # fmt: skip
    entry = tbp.nn.LOSSES[loss]
    watch_kinks = activation in KINKED_ACTIVATIONS

    def unpack(point: Sequence[Array]) -> list["Dense"]:
        return [tbp.Dense(W, b) for W, b in zip(point[::2], point[1::2], strict=True)]

    def evaluate(point: list[Array]) -> tuple[Float[Array, " outputs"], Pattern]:
        caches = tbp.forward(unpack(point), x, activation, output_activation)
        top = caches[-1]
        value, _ = entry.function(top.z if entry.from_logits else top.a, y)
        pattern = tuple(cache.z > 0 for cache in caches[:-1]) if watch_kinks else ()
        return np.array([value]), pattern

    def backward(grad_loss: float, *point: Array) -> list[Array]:
        _, grads = tbp.loss_and_grads(unpack(point), x, y, activation, output_activation, loss)
        return [grad_loss * array for grad in grads for array in (grad.W, grad.b)]

    work = [array.copy() for array in params]
    layout = OutputLayout(((),), several=False)
    analytic = Analytic(backward, work, names, layout, 0.0, True)
    checks, problems = run_checks(Subject(evaluate, analytic, work, names, layout), settings)
    report = make_report(checks, problems, settings, layout)
    if raise_exception and not report.passed:
        raise GradcheckError(report)
    return report
