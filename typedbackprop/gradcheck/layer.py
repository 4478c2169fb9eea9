"""``check_layer``: everything a backward pass owes its forward pass, on inputs it builds itself.

Give it a layer in the classic form, ``forward(*inputs) -> output`` and
``backward(grad_output, *inputs) -> one gradient per input``, with ``forward`` annotated in
jaxtyping's dimension names. It builds float64 inputs from the annotations, a distinct size for
each dimension name, draws a random upstream gradient, and checks that

1. every gradient carries its input's annotation (shape and dtype);
2. the gradients match central differences (full check when small, fast + sampled when large);
3. ``backward`` is linear in the upstream gradient;
4. neither ``forward`` nor ``backward`` modifies an input (nor ``backward`` its
   ``grad_output``);
5. ``backward`` (and ``forward``) gives the same result when called twice;
6. float32 in gives float32 out, from ``forward`` and from ``backward``.

A layer in the record form (``<family>_forward(layer, x) -> (out, cache)``) is checked through
a classic-form pair around it, with ``annotations=`` listing the record's arrays and ``x``.
"""

import math
import re
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np

from typedbackprop.checking import Array
from typedbackprop.checking.diagnosis import NOTE_MARK, Step, numpy_note
from typedbackprop.gradcheck.analytic import Backward, as_gradients
from typedbackprop.gradcheck.compare import RATIO_RTOL, GradcheckReport
from typedbackprop.gradcheck.core import DEFAULT_ATOL, DEFAULT_RTOL, gradcheck
from typedbackprop.gradcheck.numerical import DEFAULT_EPS, GradOutput, OutputLayout
from typedbackprop.gradcheck.shapes import (
    ArraySpec,
    array_specs,
    assign_sizes,
    describe,
    name_axes,
    random_inputs,
    shape_fault,
    shape_of,
)

__all__ = ["LayerCheck", "LayerReport", "LayerCheckError", "check_layer", "FULL_CHECK_COST"]

FULL_CHECK_COST: Final = 20_000
"""A layer whose full check costs at most this many calls (one ``backward`` per output entry,
two ``forward`` per input entry) is checked in full; a larger one in fast mode plus samples."""
MAX_POINT_REDRAWS: Final = 5
"""How many times the inputs are drawn again when the check of a point meets a kink."""
LINEARITY_RTOL: Final = 1e-10
"""``backward(α g₁ + β g₂)`` must be within this fraction of the gradients' largest entry of
``α backward(g₁) + β backward(g₂)``: rounding gives about 1e-15 at these sizes."""


@dataclass(frozen=True)
class LayerCheck:
    """One of :func:`check_layer`'s checks: what it checked, and what it found."""

    name: str
    """``"annotations"``, ``"gradients"``, ``"linearity"``, ``"purity"``, ``"determinism"``,
    ``"float32"``."""
    passed: bool
    detail: str
    """What was checked, or what is wrong, naming the input and the dimension."""


@dataclass(frozen=True)
class LayerReport:
    """The results of :func:`check_layer`; ``str(report)`` lists them."""

    layer: str
    """``forward``'s name."""
    sizes: tuple[tuple[str, int], ...]
    """The size given to each dimension name."""
    seed: int
    checks: tuple[LayerCheck, ...]
    gradients: GradcheckReport | None
    """The gradient check's own report (``None`` if the annotations check stopped the run)."""
    redraws: int = 0
    """How many times the inputs were drawn again because the gradient check met a kink."""

    @property
    def passed(self) -> bool:
        """Whether every check passed."""
        return all(check.passed for check in self.checks)

    def __bool__(self) -> bool:
        return self.passed

    def __str__(self) -> str:
        sizes = ", ".join(f"{name}={size}" for name, size in self.sizes)
        lines = [f"check_layer {self.layer} with {sizes} (seed {self.seed})"]
        for check in self.checks:
            verdict = "ok" if check.passed else "FAILED"
            first, *rest = check.detail.splitlines() or [""]
            lines.append(f"{check.name:<12} {first}  {verdict}")
            lines.extend(f"{'':<12} {line}" for line in rest)  # a note on NumPy's error
        gradients_failed = any(c.name == "gradients" and not c.passed for c in self.checks)
        if self.gradients is not None and gradients_failed:
            table = str(self.gradients).splitlines()
            lines.extend(table[:-1])  # its own last line, FAILED, is said once, below
        lines.append("passed" if self.passed else "FAILED")
        return "\n".join(lines)


class LayerCheckError(RuntimeError):
    """Raised by :func:`check_layer` when a check fails; ``.report`` holds the details."""

    def __init__(self, report: LayerReport) -> None:
        super().__init__(str(report))
        self.report = report


def _copies(values: Sequence[Array]) -> list[Array]:
    return [value.copy() for value in values]


def _copy_grad_output(grad_output: GradOutput) -> GradOutput:
    if isinstance(grad_output, tuple):
        return tuple(part.copy() if isinstance(part, np.ndarray) else part for part in grad_output)
    return grad_output.copy() if isinstance(grad_output, np.ndarray) else grad_output


def _same_grad_output(first: GradOutput, second: GradOutput) -> bool:
    firsts = first if isinstance(first, tuple) else (first,)
    seconds = second if isinstance(second, tuple) else (second,)
    return all(np.array_equal(a, b, equal_nan=True) for a, b in zip(firsts, seconds, strict=True))


def _name_of(function: Callable[..., Any], default: str) -> str:
    name = getattr(function, "__name__", default)
    return default if name == "<lambda>" else name


def _steps(
    forward: Callable[..., Any],
    specs: Sequence[ArraySpec],
    inputs: Sequence[Array],
    grad_output: object = None,
) -> list[Step]:
    """The arguments of a call, each with its label and annotation, for NumPy's error note.

    ``grad_output`` (for a call of ``backward``) has the annotation of ``forward``'s result,
    where ``forward`` has one.
    """
    steps: list[Step] = []
    if grad_output is not None:
        try:
            result = typing.get_type_hints(forward, include_extras=True).get("return")
        except Exception:  # an annotation that does not resolve: the note goes without it
            result = None
        steps.append(("grad_output", grad_output, result))
    steps.extend(
        (spec.name, value, spec.annotation) for spec, value in zip(specs, inputs, strict=True)
    )
    return steps


_NUMBER = re.compile(r"(?<![\w.])(?<!operand )(?<!dimension )(?<!axis )(?<!dim )(\d+)(?![\w.])")
"""A whole number in an error message, not one that counts operands, dimensions or axes."""


def _sizes_named(message: str, sizes: Mapping[str, int]) -> str | None:
    """``6 is kernel_w, 2 is width``: the numbers of ``message`` that are sizes check_layer drew.

    Every dimension has a size of its own, so a size in a message names its dimension.
    """
    by_size: dict[int, list[str]] = {}
    for name, size in sizes.items():
        by_size.setdefault(size, []).append(name)
    named = []
    for text in dict.fromkeys(_NUMBER.findall(message)):
        if int(text) in by_size:
            named.append(f"{text} is {' or '.join(by_size[int(text)])}")
    return ", ".join(named) or None


def _raised(who: str, error: BaseException, steps: Sequence[Step], sizes: Mapping[str, int]) -> str:
    """``ValueError: ...`` raised by ``who``, with notes naming the dimension behind each size.

    A checked function of the package has already noted its own arguments' dimensions. A
    user's backward, unannotated, gets the same note here for a NumPy shape error: the sizes
    check_layer bound, by name, and what met what (``the product met inp=3 ... with out=4``).
    Any other message but a type-check error's (which names them itself) gets the dimension
    of each of its numbers that is a drawn size.
    """
    if not any(NOTE_MARK in note for note in getattr(error, "__notes__", ())):
        try:
            note = numpy_note(who, steps, error)
        except Exception:  # the note is a courtesy: never let it hide the error itself
            note = None
        if note is None and not isinstance(error, TypeError):  # a TypeCheckError names them
            named = _sizes_named(str(error), sizes)
            note = f"sizes in this message, by the dimension check_layer drew them for: {named}"
            note = note if named else None
        if note is not None:
            error.add_note(note)
    notes = "".join(f"\n{note}" for note in getattr(error, "__notes__", ()))
    return f"{type(error).__name__}: {error}{notes}"


def _on_copies(function: Callable[..., Any]) -> Callable[..., Any]:
    """``function`` called on copies of its array arguments: what it does to them stays there.

    The gradient check runs on these, so that a backward (or forward) that modifies an input
    in place is reported once, by the purity check, and not also as wrong gradients of the
    inputs it changed (the next call would have started from the changed values).
    """

    def on_copies(*arguments: Any) -> Any:
        return function(*(a.copy() if isinstance(a, np.ndarray) else a for a in arguments))

    return on_copies


def _worst_place(spec: ArraySpec, difference: Array) -> str:
    index = np.unravel_index(int(np.argmax(difference)), difference.shape)
    return name_axes(spec, [int(i) for i in index])


def _annotations(
    specs: Sequence[ArraySpec], sizes: Mapping[str, int], gradients: Sequence[Array]
) -> LayerCheck:
    faults = []
    for spec, gradient in zip(specs, gradients, strict=True):
        if gradient.shape != shape_of(spec, sizes):
            faults.append(shape_fault(spec, sizes, gradient.shape))
        elif gradient.dtype != np.float64:
            faults.append(
                f"gradient for {spec.name} is {gradient.dtype}, but {spec.name} is float64"
            )
    if faults:
        return LayerCheck("annotations", False, "; ".join(faults))
    carried = "; ".join(describe(spec, sizes) for spec in specs)
    return LayerCheck(
        "annotations", True, f"every gradient carries its input's annotation ({carried})"
    )


def _gradients(
    report: GradcheckReport, specs: Sequence[ArraySpec], sizes: Mapping[str, int], redraws: int
) -> LayerCheck:
    how = {
        "full": "every Jacobian entry matches",
        "fast+sampled": f"{report.projections} random projections and {report.samples} random "
        "entries per input match",
    }.get(report.method, report.method)
    skipped = sum(argument.skipped for argument in report.arguments)
    after = f", after {redraws} new draws of the inputs" if redraws else ""
    kinks = f"; {skipped} entries skipped at kinks{after}" if skipped else after
    if report.passed:
        return LayerCheck("gradients", True, f"{how} central differences{kinks}")
    faults = []
    by_name = {spec.name: spec for spec in specs}
    for argument in report.arguments:
        if argument.passed:
            continue
        if argument.worst_input_index:
            where = name_axes(by_name[argument.name], argument.worst_input_index)
            faults.append(
                f"gradient for {argument.name} is wrong: worst entry {where}, analytic "
                f"{argument.analytic:.10g}, numerical {argument.numerical:.10g}"
            )
        else:
            faults.append(f"gradient for {argument.name} is wrong (see the table)")
    faults.extend(report.problems)
    return LayerCheck("gradients", False, "\n".join(["; ".join(faults), *_factors(report, sizes)]))


def _factors(report: GradcheckReport, sizes: Mapping[str, int]) -> list[str]:
    """``analytic / numerical = 3.000 everywhere: batch = 3``, for gradients off by a constant.

    A failed input whose every compared entry is off by one factor gets a line, with the
    dimension whose size (or its reciprocal) that factor is: a missing ``1/batch`` shows as
    ``batch``. One line without a name when every failed input has the same factor.
    """
    failed = [argument for argument in report.arguments if not argument.passed]
    ratios = {argument.name: argument.ratio for argument in failed if argument.ratio is not None}
    where = "everywhere" if report.method == "full" else "on every entry compared"
    if not ratios:
        return []
    ratio = next(iter(ratios.values()))
    if len(ratios) == len(failed) and all(
        math.isclose(other, ratio, rel_tol=RATIO_RTOL) for other in ratios.values()
    ):
        return [f"analytic / numerical = {ratio:.3f} {where}{_factor_of(ratio, sizes)}"]
    return [
        f"{name}: analytic / numerical = {ratio:.3f} {where}{_factor_of(ratio, sizes)}"
        for name, ratio in ratios.items()
    ]


def _factor_of(ratio: float, sizes: Mapping[str, int]) -> str:
    """``: batch = 3`` (``: 1/batch = 1/3``, ``: -batch = -3``) for a ratio that is a size."""
    sign = "-" if ratio < 0 else ""
    named = []
    for name, size in sizes.items():
        if math.isclose(abs(ratio), size, rel_tol=RATIO_RTOL):
            named.append(f"{sign}{name} = {sign}{size}")
        elif math.isclose(abs(ratio), 1 / size, rel_tol=RATIO_RTOL):
            named.append(f"{sign}1/{name} = {sign}1/{size}")
    return f": {' or '.join(named)}" if named else ""


def _linearity(
    backward: Backward,
    inputs: Sequence[Array],
    specs: Sequence[ArraySpec],
    layout: OutputLayout,
    rng: np.random.Generator,
) -> LayerCheck:
    first, second = rng.standard_normal((2, layout.size))
    alpha, beta = rng.uniform(0.5, 2.0, size=2) * rng.choice([-1.0, 1.0], size=2)
    count = len(inputs)
    combined = as_gradients(
        backward(layout.unflatten(alpha * first + beta * second), *_copies(inputs)), count
    )
    ones = as_gradients(backward(layout.unflatten(first), *_copies(inputs)), count)
    twos = as_gradients(backward(layout.unflatten(second), *_copies(inputs)), count)
    faults = []
    for spec, together, one, two in zip(specs, combined, ones, twos, strict=True):
        expected = alpha * one + beta * two
        scale = max(float(np.max(np.abs(alpha * one), initial=0.0)),
                    float(np.max(np.abs(beta * two), initial=0.0)),
                    float(np.max(np.abs(together), initial=0.0)))  # fmt: skip
        difference = np.abs(together - expected)
        if difference.size and not float(difference.max()) <= LINEARITY_RTOL * scale:
            faults.append(
                f"gradient for {spec.name} is not linear in grad_output: backward(a g1 + b g2) "
                f"differs from a backward(g1) + b backward(g2) by {float(difference.max()):.3g} "
                f"at {_worst_place(spec, difference)}"
            )
    if faults:
        return LayerCheck("linearity", False, "; ".join(faults))
    return LayerCheck("linearity", True, "backward(a g1 + b g2) = a backward(g1) + b backward(g2)")


def _purity(
    forward: Callable[..., Any],
    backward: Backward,
    inputs: Sequence[Array],
    specs: Sequence[ArraySpec],
    grad_output: GradOutput,
) -> LayerCheck:
    faults = []
    work = _copies(inputs)
    forward(*work)
    faults += [
        f"forward modified its input {spec.name} in place"
        for spec, value, original in zip(specs, work, inputs, strict=True)
        if not np.array_equal(value, original, equal_nan=True)
    ]
    work, upstream = _copies(inputs), _copy_grad_output(grad_output)
    backward(upstream, *work)
    faults += [
        f"backward modified its input {spec.name} in place"
        for spec, value, original in zip(specs, work, inputs, strict=True)
        if not np.array_equal(value, original, equal_nan=True)
    ]
    if not _same_grad_output(upstream, grad_output):
        faults.append("backward modified grad_output in place")
    if faults:
        return LayerCheck("purity", False, "; ".join(faults))
    return LayerCheck("purity", True, "no input, and not grad_output, is modified")


def _determinism(
    forward: Callable[..., Any],
    backward: Backward,
    inputs: Sequence[Array],
    specs: Sequence[ArraySpec],
    layout: OutputLayout,
    grad_output: GradOutput,
) -> LayerCheck:
    faults = []
    outputs = [layout.flatten(forward(*_copies(inputs))) for _ in range(2)]
    if not np.array_equal(outputs[0], outputs[1], equal_nan=True):
        faults.append("forward gives different outputs for the same inputs")
    count = len(inputs)
    first, second = (
        as_gradients(backward(_copy_grad_output(grad_output), *_copies(inputs)), count)
        for _ in range(2)
    )
    for spec, one, two in zip(specs, first, second, strict=True):
        if one.shape == two.shape and not np.array_equal(one, two, equal_nan=True):
            difference = np.nan_to_num(np.abs(one - two), nan=np.inf)
            faults.append(
                f"backward is not deterministic for {spec.name}: two calls differ by up to "
                f"{float(difference.max()):.3g} at {_worst_place(spec, difference)}"
            )
    if faults:
        return LayerCheck("determinism", False, "; ".join(faults))
    return LayerCheck("determinism", True, "forward and backward repeat bit for bit")


def _float32(
    forward: Callable[..., Any],
    backward: Backward,
    inputs: Sequence[Array],
    specs: Sequence[ArraySpec],
    layout: OutputLayout,
    grad_output: GradOutput,
) -> LayerCheck:
    if not all("float32" in spec.dtypes for spec in specs):
        return LayerCheck("float32", True, "not applicable: the annotations take no float32")
    singles = [value.astype(np.float32) for value in inputs]
    faults = []
    try:
        output = forward(*singles)
        parts = output if layout.several else (output,)
        for number, part in enumerate(parts):
            if isinstance(part, np.ndarray) and part.dtype != np.float32:
                which = f"output {number}" if layout.several else "its output"
                faults.append(f"forward turns float32 inputs into {part.dtype} ({which})")
        upstream: GradOutput
        if isinstance(grad_output, tuple):
            upstream = tuple(
                part.astype(np.float32) if isinstance(part, np.ndarray) else part
                for part in grad_output
            )
        elif isinstance(grad_output, np.ndarray):
            upstream = grad_output.astype(np.float32)
        else:
            upstream = grad_output
        gradients = as_gradients(backward(upstream, *singles), len(singles))
        faults += [
            f"backward turns float32 into {gradient.dtype} (gradient for {spec.name})"
            for spec, gradient in zip(specs, gradients, strict=True)
            if gradient.dtype != np.float32
        ]
    except (TypeError, ValueError, ArithmeticError) as error:
        faults.append(f"float32 inputs raise {type(error).__name__}: {error}")
    if faults:
        return LayerCheck("float32", False, "; ".join(faults))
    return LayerCheck("float32", True, "float32 in gives float32 out, forward and backward")


def check_layer(
    forward: Callable[..., Any],
    backward: Backward,
    *,
    sizes: Mapping[str, int] | None = None,
    annotations: Sequence[tuple[str, Any]] | None = None,
    seed: int = 0,
    eps: float = DEFAULT_EPS,
    rtol: float = DEFAULT_RTOL,
    atol: float = DEFAULT_ATOL,
    samples: int = 32,
    projections: int = 3,
    raise_exception: bool = True,
) -> LayerReport:
    """Check a layer's ``backward`` against its ``forward``, on inputs built from annotations.

    Parameters
    ----------
    forward
        ``forward(*inputs)``: its float-array parameters, annotated with jaxtyping
        (``Float[Array, "out inp"]``), are the inputs; other parameters keep their defaults.
    backward
        ``backward(grad_output, *inputs)``, returning one gradient per input.
    sizes
        Sizes for some dimension names (``{"batch": 64}``); every other name gets a distinct
        size of its own (:data:`~typedbackprop.gradcheck.shapes.SIZES`). A layer whose sizes
        are constrained (a convolution's kernel no larger than its input) gets them here:
        ``{"kernel_h": 2, "kernel_w": 3, "height": 5, "width": 6}``.
    annotations
        ``(name, annotation)`` of each input, in order, to use instead of ``forward``'s (for a
        ``forward`` wrapped around a layer record).
    seed
        Seeds the inputs, the upstream gradients and the gradient check.
    eps, rtol, atol
        As for :func:`~typedbackprop.gradcheck.gradcheck`.
    samples, projections
        The sampled entries and fast-mode projections per input, for a layer too large to check
        in full (above :data:`FULL_CHECK_COST` calls).
    raise_exception
        Raise :class:`LayerCheckError` if a check fails (the default, as for
        :func:`~typedbackprop.gradcheck.gradcheck`); otherwise return the report.

    Returns
    -------
    LayerReport
        One line per check, naming the input and the dimension at fault.

    Raises
    ------
    TypeError
        If a parameter of ``forward`` without a default is not a float array.
    ValueError
        If a size given is below 1, or ``forward`` refuses the inputs drawn (a size its layer
        cannot take): the message gives the sizes drawn, ``forward``'s error, and the dimension
        each of its numbers stands for.
    LayerCheckError
        If a check fails and ``raise_exception`` is true.

    Notes
    -----
    The inputs are float64, entries of magnitude 0.5 to 1.5 and random sign: away from 0, where
    the kinks of ReLU-like functions sit. If the gradient check still meets a kink (an entry
    whose step crosses one), the inputs are drawn again, up to 5 times; the report says how
    often. Each dimension name has its own size, so a transposed gradient or one summed over
    the wrong axis cannot have the right shape by coincidence, and the shape of a wrong
    gradient names the dimension it came from; so does a NumPy error in ``backward``'s body
    (``W @ grad_z`` for ``W.T @ grad_z``), to which a note adds the dimension of each size.

    The gradient check gives ``forward`` and ``backward`` fresh copies of the inputs at every
    call: a layer that modifies an input fails the purity check, not also the gradient check
    of the input it changed.
    """
    specs = array_specs(forward, annotations)
    layer = _name_of(forward, "forward")
    if not specs:
        raise TypeError(f"{layer} has no float array to check")
    bound = assign_sizes(specs, sizes)
    rng = np.random.default_rng(seed)
    inputs = random_inputs(specs, bound, rng)
    names = [spec.name for spec in specs]
    try:
        layout = OutputLayout.of(forward(*_copies(inputs)))
    except (TypeError, ValueError, IndexError) as error:
        drawn = ", ".join(f"{name}={size}" for name, size in bound.items())
        raise ValueError(
            f"check_layer drew inputs with {drawn}, and {layer} refused them: "
            f"{_raised(layer, error, _steps(forward, specs, inputs), bound)}\n"
            "A layer that constrains its sizes (a kernel no larger than the image, a sequence no "
            "longer than the context) needs them given: check_layer(..., sizes={...}) with a "
            "size for each dimension the constraint involves"
        ) from error
    grad_output = layout.unflatten(rng.standard_normal(layout.size))  # random, never all ones

    def report_of(
        checks: list[LayerCheck], gradients: GradcheckReport | None, redraws: int
    ) -> LayerReport:
        report = LayerReport(layer, tuple(bound.items()), seed, tuple(checks), gradients, redraws)
        if raise_exception and not report.passed:
            raise LayerCheckError(report)
        return report

    try:
        first = as_gradients(backward(_copy_grad_output(grad_output), *_copies(inputs)), len(specs))
    except (TypeError, ValueError) as error:  # a checked backward refuses its own result, or
        # NumPy refuses a product or a broadcast in backward's body (a transpose missing)
        raised = _raised("backward", error, _steps(forward, specs, inputs, grad_output), bound)
        detail = f"backward raised {raised}"
        return report_of([LayerCheck("annotations", False, detail)], None, 0)
    checks = [_annotations(specs, bound, first)]
    if not checks[0].passed:
        return report_of(checks, None, 0)

    full = layout.size + 2 * sum(value.size for value in inputs) <= FULL_CHECK_COST
    redraws = 0
    while True:
        gradients = gradcheck(
            _on_copies(forward), _on_copies(backward), inputs, names=names, eps=eps, rtol=rtol,
            atol=atol,
            fast_mode=not full, samples=None if full else samples, projections=projections,
            seed=seed, raise_exception=False,
        )  # fmt: skip
        met_kink = any(
            argument.skipped or (argument.projection is not None and argument.projection.redrawn)
            for argument in gradients.arguments
        )
        if not met_kink or redraws == MAX_POINT_REDRAWS:
            break
        inputs = random_inputs(specs, bound, rng)
        redraws += 1
    gradients_check = _gradients(gradients, specs, bound, redraws)
    purity = _purity(forward, backward, inputs, specs, grad_output)
    if not gradients_check.passed and not purity.passed:
        summary, *rest = gradients_check.detail.splitlines()
        because = (
            f"{summary}; this may follow from the change in place that purity reports (each "
            "call got fresh copies, but a layer may read what it has changed)"
        )
        gradients_check = LayerCheck("gradients", False, "\n".join([because, *rest]))
    checks.append(gradients_check)
    checks.append(_linearity(backward, inputs, specs, layout, rng))
    checks.append(purity)
    checks.append(_determinism(forward, backward, inputs, specs, layout, grad_output))
    checks.append(_float32(forward, backward, inputs, specs, layout, grad_output))
    return report_of(checks, gradients, redraws)
