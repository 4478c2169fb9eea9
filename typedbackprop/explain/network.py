"""Every forward and backward equation of a network, with the concrete shape of every operand.

The shapes are not computed on paper: :func:`explain_network` runs the real forward and backward
passes on random data and asks each layer's describer (:data:`~typedbackprop.explain.describers.
DESCRIBERS`) to tell its equations with the arrays the layer really saw, so the printout cannot
disagree with the code.
"""

from collections.abc import Sequence
from typing import Any, cast

import numpy as np

from typedbackprop.checking import Array, IntArray
from typedbackprop.explain.batch_first import LAYOUTS, LayoutName, explain_network_batch_first
from typedbackprop.explain.describers import describer_of
from typedbackprop.explain.text import Names, Row, prose, shape_text, table
from typedbackprop.models import random_layers
from typedbackprop.nn.families import Mode, family_of
from typedbackprop.nn.losses import LOSSES
from typedbackprop.nn.network import (
    ActivationName,
    Layer,
    LossName,
    OutputActivationName,
    check_names,
    mlp,
)

__all__ = ["explain", "explain_network", "layer_names"]


def layer_names(layers: Sequence[Layer]) -> list[Names]:
    """``a0 → z1 → a1 → ...``: each layer's input and output names, and their gradients'.

    A layer with parameters starts a new number; a gradient of a ``z`` is a ``delta``. As
    ``network_backward`` does, the backward pass stops at the lowest layer with parameters:
    its input's gradient, and every one below it, is not computed.
    """

    def grad(name: str) -> str:
        return f"delta{name[1:]}" if name.startswith("z") else f"grad_{name}"

    lowest = next((i for i, layer in enumerate(layers) if family_of(layer).has_parameters), 0)
    names, number, current = [], 0, "a0"
    for index, layer in enumerate(layers):
        number += family_of(layer).has_parameters
        output = f"{describer_of(layer).symbol}{number}"
        first = index == len(layers) - 1
        names.append(
            Names(number, current, output, grad(current), grad(output), first, index > lowest)
        )
        current = output
    return names


def explain_network(
    layers: Sequence[Layer],
    x: Array | IntArray,
    y: Array | IntArray,
    loss: str,
    width: int | None = None,
) -> list[str]:
    """The forward pass, the loss and the backward pass of ``layers``, one equation per line.

    Parameters
    ----------
    layers
        Any sequence of layers; for a loss from logits the last is the matching activation.
    x
        An input batch (its values do not matter, its shape does).
    y
        Targets or labels for the loss.
    loss
        The loss's name.
    width
        The widest line (a terminal's columns): a note that does not fit beside its equation
        wraps, or goes under it (see :func:`~typedbackprop.explain.text.table`); ``None`` for
        one line per equation.

    Returns
    -------
    lines
        ``forward``, ``loss`` and ``backward`` sections, each operand followed by its shape.
    """
    entry = LOSSES[loss]
    # The training pass, whose backward the page explains: batch norm with the batch's
    # statistics, dropout with a mask (drawn from a fixed seed, so the printout repeats).
    mode = Mode(training=True, rng=np.random.default_rng(0))
    names = layer_names(layers)
    rows: list[Row] = [
        (f"a0 {shape_text(x.shape)} = x {shape_text(x.shape)}", "the input, features first")
    ]
    caches: list[Any] = []
    output = cast(Array, x)
    for layer, name in zip(layers, names, strict=True):  # the forward pass, layer by layer
        output, cache = family_of(layer).run(layer, output, mode)
        caches.append(cache)
        rows += describer_of(layer).forward(name, layer, cache, output)
    lines = ["forward", *table(rows, width)]

    last = names[-1]
    z, a = last.input, last.output
    target = f"labels {shape_text(y.shape)}" if entry.labels else f"y {shape_text(y.shape)}"
    note = f"{target}, {entry.note}" if entry.note else target
    lines += ["", "loss (a mean over batch: the 1/batch enters here, once)"]
    lines += table([(f"L () = {entry.formula.format(z=z, a=a)}", note)], width)

    gradient = entry.gradient.format(z=z, a=a)
    top = len(layers)
    if entry.from_logits:  # the loss's gradient is δ of the last activation's input: skip it
        top -= 1
        rows = [(f"{last.grad_input} {shape_text(output.shape)} = {gradient}", "BP1 from logits")]
    else:
        rows = [(f"{last.grad_output} {shape_text(output.shape)} = {gradient}", "dL/da")]
    # As network_backward: nothing below the lowest layer with parameters needs a gradient.
    lowest = next((i for i, layer in enumerate(layers) if family_of(layer).has_parameters), 0)
    for index in reversed(range(lowest, top)):
        layer = layers[index]
        rows += describer_of(layer).backward(names[index], layer, caches[index])
    lines += ["", "backward (every grad_<v> has the shape of <v>)", *table(rows, width)]
    lines += prose(
        [
            f"  (no {names[lowest].grad_input}: nothing needs the gradient of the input, and it "
            "would cost a product)"
        ],
        width,
    )
    return lines


def explain(
    sizes: Sequence[int],
    batch: int,
    activation: ActivationName = "sigmoid",
    output_activation: OutputActivationName = "identity",
    loss: LossName = "squared_error",
    layout: LayoutName = "features-first",
    width: int | None = None,
) -> list[str]:
    """A multilayer perceptron's equations, one per line, each operand followed by its shape.

    Parameters
    ----------
    sizes
        ``(in_0, out_1, ..., out_L)``, as for :func:`~typedbackprop.initialize.init_layers`.
    batch
        The number of examples (columns).
    activation
        The hidden layers' activation.
    output_activation
        The last layer's activation.
    loss
        The loss.
    layout
        ``"features-first"``, the package's (one column per example, ``W: (out, inp)``), or
        ``"batch-first"`` (one row per example, ``W: (inp, out)``; see
        :mod:`typedbackprop.nn.batch_first`).
    width
        The widest line (a terminal's columns); ``None`` for one line per equation.

    Returns
    -------
    lines
        A header, then the forward pass, the loss, and the backward pass, e.g.
        ``grad_W3 (2, 4) = delta3 (2, 5) @ a2.T (5, 4)`` (batch first:
        ``grad_W3 (4, 2) = a2.T (4, 5) @ delta3 (5, 2)``), each backward line tagged with the
        backprop equation (BP1–BP4) it is.

    Raises
    ------
    ValueError
        For fewer than two sizes, a size or batch below 1, an unknown or mismatched name, or
        an unknown layout.
    """
    if len(sizes) < 2 or min(sizes) < 1 or batch < 1:
        raise ValueError(
            f"need at least two sizes and a batch, all ≥ 1; got {list(sizes)}, {batch}"
        )
    check_names(activation, output_activation, loss)
    if layout not in LAYOUTS:
        raise ValueError(f"unknown layout {layout!r}; choose one of {LAYOUTS}")
    rng = np.random.default_rng(0)
    layers = random_layers(sizes, rng)
    x = rng.standard_normal((sizes[0], batch))
    y: Array | IntArray
    if LOSSES[loss].labels:
        y = rng.integers(0, sizes[-1], size=batch)
    else:
        y = rng.random((sizes[-1], batch))
    architecture = "-".join(str(size) for size in sizes)
    network = (
        f"network {architecture}, batch {batch}: hidden {activation}, "
        f"output {output_activation}, loss {loss}"
    )
    if layout == "batch-first":
        header = [
            network,
            "batch first: W_l is (inp, out), b_l is (out,), z_l and a_l are (batch, out) of "
            "layer l: one row per example",
            "",
        ]
        return prose(header, width) + explain_network_batch_first(
            layers,
            activation,
            output_activation,
            x.T,
            y if LOSSES[loss].labels else y.T,
            loss,
            width,
        )
    header = [
        network,
        "W_l is (out, inp), b_l is (out,), z_l and a_l are (out, batch) of layer l: "
        "one column per example",
        "",
    ]
    return prose(header, width) + explain_network(
        mlp(layers, activation, output_activation), x, y, loss, width
    )
