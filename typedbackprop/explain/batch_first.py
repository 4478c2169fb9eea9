"""``explain`` laid out batch first: the same network, one row per example, ``W`` as ``(inp, out)``.

The forward and backward passes run for real, through the batch-first affine functions of
:mod:`typedbackprop.nn.batch_first`, so every printed shape is the shape of an array the code
computed. The activations and losses are the package's features-first functions: elementwise
ones do not care about the layout, and softmax and the losses are handed the transposed view and
their result transposed back, once, at their boundary. Each line is the transpose of the
features-first line for the same value: ``grad_W3 (2, 4) = delta3 (2, 5) @ a2.T (5, 4)`` there,
``grad_W3 (4, 2) = a2.T (4, 5) @ delta3 (5, 2)`` here.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, cast, get_args

from typedbackprop.checking import Array, IntArray
from typedbackprop.explain.text import Row, prose, shape_text, table
from typedbackprop.nn.activations import ACTIVATIONS, Activation
from typedbackprop.nn.affine import Dense
from typedbackprop.nn.batch_first import (
    BATCH_FIRST_GRAD_A_PREV,
    BATCH_FIRST_GRAD_B,
    BATCH_FIRST_GRAD_W,
    affine_forward_batch_first,
    affine_grad_input_batch_first,
    affine_grad_params_batch_first,
)
from typedbackprop.nn.losses import LOSSES

__all__ = ["LAYOUTS", "LayoutName", "explain_network_batch_first"]

LayoutName = Literal["features-first", "batch-first"]
"""How ``explain`` lays out a batch: one column per example (the package's), or one row."""

LAYOUTS: tuple[str, ...] = get_args(LayoutName)


@dataclass(frozen=True)
class RowWise:
    """How an activation reads batch first, by how it acts on a features-first array."""

    acts: str
    """How it acts on a batch-first array."""
    bp1: str
    """BP1, the output layer's ``delta``, as a format of ``delta``, ``shape``, ``grad_a``,
    ``a``, ``z`` and ``name`` (the activation's)."""
    bp1_note: str
    """What ``explain`` says beside BP1."""


ROW_WISE: dict[str, RowWise] = {
    "elementwise": RowWise(
        "elementwise", "{delta} {shape} = {grad_a} {shape} * {name}'({z}) {shape}", "BP1"
    ),
    "down each column": RowWise(
        "along each row",
        "{delta} {shape} = {a} * ({grad_a} - ({a} * {grad_a}).sum(axis=1, keepdims=True))",
        "BP1, the softmax vector-Jacobian product, along each row",
    ),
}
"""Each kind of :attr:`~typedbackprop.nn.activations.ElementwiseFunctions.acts_on` of
:data:`~typedbackprop.nn.activations.ACTIVATIONS`, laid out batch first."""

BATCH_FIRST_NOTATION: tuple[tuple[str, str], ...] = (
    ("axis=0", "axis=1"),
    ("[labels, range(batch)]", "[range(batch), labels]"),
    ("softmax({z})", "softmax({z}, axis=1)"),
)
"""How the features-first notation of :data:`~typedbackprop.nn.losses.LOSSES`' formulas reads
batch first: the class axis is 1, not 0, and an example's entry is ``[example, class]``. A loss
that sums over every entry (squared error, binary cross-entropy) names no axis and reads the
same in both layouts."""


def _batch_first(text: str) -> str:
    """A loss's features-first formula, in the notation of the batch-first layout."""
    for features_first, batch_first in BATCH_FIRST_NOTATION:
        text = text.replace(features_first, batch_first)
    return text


def _activation_backward(name: str, grad_a: Array, z: Array, a: Array) -> Array:
    """An activation's backward on batch-first arrays, through the features-first function."""
    layer = Activation(cast(Any, name))
    return ACTIVATIONS[name].backward(grad_a.T, z.T, a.T, layer.slope).T


def explain_network_batch_first(
    layers: Sequence[Dense],
    activation: str,
    output_activation: str,
    x: Array,
    y: Array | IntArray,
    loss: str,
    width: int | None = None,
) -> list[str]:
    """A multilayer perceptron's equations laid out batch first, one per line, with shapes.

    Parameters
    ----------
    layers
        The dense layers, features first (``W: (out, inp)``); each runs as ``W.T``, ``(inp, out)``.
    activation
        The hidden layers' activation.
    output_activation
        The last layer's activation.
    x
        An input batch, one row per example, ``(batch, inp)``.
    y
        Targets, one row per example, ``(batch, out)``, or labels ``(batch,)``.
    loss
        The loss's name.
    width
        The widest line (a terminal's columns); ``None`` for one line per equation.

    Returns
    -------
    lines
        ``forward``, ``loss`` and ``backward`` sections, each operand followed by its shape,
        e.g. ``grad_W3 (4, 2) = a2.T (4, 5) @ delta3 (5, 2)``.
    """
    entry = LOSSES[loss]
    count = len(layers)
    names = [activation] * (count - 1) + [output_activation]
    rows: list[Row] = [
        (f"a0 {shape_text(x.shape)} = x {shape_text(x.shape)}", "the input, one row per example")
    ]
    saved = []  # per layer: W (inp, out), a_prev, z, a
    a = x
    for number, (layer, name) in enumerate(zip(layers, names, strict=True), start=1):
        W, b, a_prev = layer.W.T, layer.b, a
        z = affine_forward_batch_first(W, b, a_prev)
        a = ACTIVATIONS[name].forward(z.T, Activation(cast(Any, name)).slope).T
        rows += [
            (
                f"z{number} {shape_text(z.shape)} = a{number - 1} {shape_text(a_prev.shape)} @ "
                f"W{number} {shape_text(W.shape)} + b{number} {shape_text(b.shape)}",
                "sum over inp; the bias broadcasts along batch (out is the last axis)",
            ),
            (
                f"a{number} {shape_text(a.shape)} = {name}(z{number})",
                ROW_WISE[ACTIVATIONS[name].acts_on].acts,
            ),
        ]
        saved.append((W, a_prev, z, a))
    lines = ["forward", *table(rows, width)]

    top, z_top, a_top = f"{count}", f"z{count}", f"a{count}"
    formula, gradient = _batch_first(entry.formula), _batch_first(entry.gradient)
    target = f"labels {shape_text(y.shape)}" if entry.labels else f"y {shape_text(y.shape)}"
    note = f"{target}, {entry.note}" if entry.note else target
    lines += ["", "loss (a mean over batch: the 1/batch enters here, once)"]
    lines += table([(f"L () = {formula.format(z=z_top, a=a_top)}", note)], width)

    targets = y if entry.labels else cast(Array, y).T
    _, _, z, a = saved[-1]
    if entry.from_logits:
        delta = entry.function(z.T, targets)[1].T
        rows = [
            (
                f"delta{top} {shape_text(delta.shape)} = {gradient.format(z=z_top)}",
                "BP1 from logits",
            )
        ]
    else:
        grad_a = entry.function(a.T, targets)[1].T
        delta = _activation_backward(output_activation, grad_a, z, a)
        shape = shape_text(delta.shape)
        rows = [(f"grad_a{top} {shape} = {gradient.format(a=a_top)}", "dL/da")]
        row_wise = ROW_WISE[ACTIVATIONS[output_activation].acts_on]
        bp1 = row_wise.bp1.format(
            delta=f"delta{top}",
            shape=shape,
            grad_a=f"grad_a{top}",
            a=a_top,
            z=z_top,
            name=output_activation,
        )
        rows.append((bp1, row_wise.bp1_note))
    for number in range(count, 0, -1):
        W, a_prev, _, _ = saved[number - 1]
        grad_W, grad_b = affine_grad_params_batch_first(delta, a_prev)
        previous = f"a{number - 1}"
        rows += [
            (
                f"grad_W{number} {shape_text(grad_W.shape)} = {previous}.T "
                f"{shape_text(a_prev.T.shape)} @ delta{number} {shape_text(delta.shape)}",
                f"BP4, einsum {BATCH_FIRST_GRAD_W.equation}: sum over batch; shaped like W{number}",
            ),
            (
                f"grad_b{number} {shape_text(grad_b.shape)} = delta{number}.sum(axis=0)",
                f"BP3, einsum {BATCH_FIRST_GRAD_B.equation}: b was broadcast along batch",
            ),
        ]
        if number == 1:
            break
        grad_a = affine_grad_input_batch_first(delta, W)
        _, _, z, a = saved[number - 2]
        rows.append(
            (
                f"grad_{previous} {shape_text(grad_a.shape)} = delta{number} "
                f"{shape_text(delta.shape)} @ W{number}.T {shape_text(W.T.shape)}",
                f"einsum {BATCH_FIRST_GRAD_A_PREV.equation}: sum over out; shaped like {previous}",
            )
        )
        delta = _activation_backward(activation, grad_a, z, a)
        shape = shape_text(delta.shape)
        rows.append(
            (
                f"delta{number - 1} {shape} = grad_{previous} {shape} * "
                f"{activation}'(z{number - 1}) {shape}",
                "BP2, elementwise",
            )
        )
    lines += ["", "backward (every grad_<v> has the shape of <v>)", *table(rows, width)]
    lines += prose(
        ["  (no grad_a0: nothing needs the gradient of the input, and it would cost a product)"],
        width,
    )
    return lines
