"""Every forward and backward equation of a network, with the concrete shape of every operand.

The shapes are not computed on paper: :func:`explain` runs the real forward pass and
:func:`~typedbackprop.loss_and_grads` on random data of the requested sizes and reads each shape
off the array it describes, so the printout cannot disagree with the code.
"""

from collections.abc import Sequence

import numpy as np

from typedbackprop.nn.network import (
    ActivationName,
    Dense,
    LossName,
    OutputActivationName,
    check_names,
    forward,
    loss_and_grads,
)

__all__ = ["explain"]


def _shape(shape: tuple[int, ...]) -> str:
    return "(" + ", ".join(str(size) for size in shape) + ("," if len(shape) == 1 else "") + ")"


def _table(rows: list[tuple[str, str]]) -> list[str]:
    width = max(len(equation) for equation, _ in rows)
    return [f"  {equation:<{width}}   {note}".rstrip() for equation, note in rows]


def explain(
    sizes: Sequence[int],
    batch: int,
    activation: ActivationName = "sigmoid",
    output_activation: OutputActivationName = "identity",
    loss: LossName = "squared_error",
) -> list[str]:
    """The network's equations, one per line, each operand followed by its NumPy shape.

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

    Returns
    -------
    lines
        A header, then the forward pass, the loss, and the backward pass, e.g.
        ``grad_W3 (2, 4) = delta3 (2, 5) @ a2.T (5, 4)``, each backward line tagged with the
        backprop equation (BP1–BP4) it is.

    Raises
    ------
    ValueError
        For fewer than two sizes, a size or batch below 1, or an unknown or mismatched name.
    """
    if len(sizes) < 2 or min(sizes) < 1 or batch < 1:
        raise ValueError(
            f"need at least two sizes and a batch, all ≥ 1; got {list(sizes)}, {batch}"
        )
    check_names(activation, output_activation, loss)
    rng = np.random.default_rng(0)
    layers = [
        Dense(rng.standard_normal((n_out, n_in)), rng.standard_normal(n_out))
        for n_in, n_out in zip(sizes[:-1], sizes[1:], strict=True)
    ]
    x = rng.standard_normal((sizes[0], batch))
    y: np.ndarray
    if loss == "cross_entropy":
        y = rng.integers(0, sizes[-1], size=batch)
    else:
        y = rng.random((sizes[-1], batch))
    caches = forward(layers, x, activation, output_activation)
    _, grads = loss_and_grads(layers, x, y, activation, output_activation, loss)
    count = len(layers)
    architecture = "-".join(str(size) for size in sizes)
    lines = [
        f"network {architecture}, batch {batch}: hidden {activation}, "
        f"output {output_activation}, loss {loss}",
        "W_l is (out, in), b_l is (out,), activations are (features, batch): "
        "one column per example",
        "",
        "forward",
    ]
    rows = [(f"a0 {_shape(x.shape)} = x {_shape(x.shape)}", "the input, features first")]
    for number, (layer, cache) in enumerate(zip(layers, caches, strict=True), start=1):
        name = output_activation if number == count else activation
        rows.append(
            (
                f"z{number} {_shape(cache.z.shape)} = W{number} {_shape(layer.W.shape)} @ "
                f"a{number - 1} {_shape(cache.a_prev.shape)} + b{number}[:, None] "
                f"{_shape(layer.b[:, None].shape)}",
                "sum over in; the bias broadcasts along batch",
            )
        )
        rows.append(
            (
                f"a{number} {_shape(cache.a.shape)} = {name}(z{number})",
                "elementwise" if name != "softmax" else "down each column",
            )
        )
    lines += _table(rows)

    last = count
    z_last, a_last = caches[-1].z, caches[-1].a
    target = f"y {_shape(y.shape)}"
    lines += ["", "loss (a mean over batch: the 1/batch enters here, once)"]
    if loss == "squared_error":
        lines += _table([(f"L () = sum((a{last} - y)**2) / 2 / batch", f"{target}")])
    elif loss == "binary_cross_entropy":
        lines += _table(
            [
                (
                    f"L () = sum(max(z{last}, 0) - z{last} * y + log1p(exp(-|z{last}|))) / batch",
                    f"{target}, from the logits: no log(0)",
                )
            ]
        )
    else:
        lines += _table(
            [
                (
                    f"L () = sum(logsumexp(z{last}, axis=0) - z{last}[labels, range(batch)])"
                    " / batch",
                    f"labels {_shape(y.shape)}, from the logits",
                )
            ]
        )

    rows = []
    delta = f"delta{last} {_shape(z_last.shape)}"
    if loss == "squared_error":
        rows.append((f"grad_a{last} {_shape(a_last.shape)} = (a{last} - y) / batch", "dL/da"))
        if output_activation == "softmax":
            rows.append(
                (
                    f"{delta} = a{last} * (grad_a{last} - (a{last} * grad_a{last}).sum(axis=0))",
                    "BP1, the softmax Jacobian-vector product",
                )
            )
        else:
            rows.append(
                (
                    f"{delta} = grad_a{last} {_shape(a_last.shape)} * "
                    f"{output_activation}'(z{last}) {_shape(z_last.shape)}",
                    "BP1",
                )
            )
    elif loss == "binary_cross_entropy":
        rows.append((f"{delta} = (sigmoid(z{last}) - y) / batch", "BP1 from logits"))
    else:
        rows.append((f"{delta} = (softmax(z{last}) - onehot(labels)) / batch", "BP1 from logits"))
    for number in range(last, 0, -1):
        layer, cache, grad = layers[number - 1], caches[number - 1], grads[number - 1]
        d = f"delta{number} {_shape(cache.z.shape)}"
        rows.append(
            (
                f"grad_W{number} {_shape(grad.W.shape)} = {d} @ a{number - 1}.T "
                f"{_shape(cache.a_prev.T.shape)}",
                "BP4: sum over batch; shaped like W",
            )
        )
        rows.append(
            (
                f"grad_b{number} {_shape(grad.b.shape)} = delta{number}.sum(axis=1)",
                "BP3: b was broadcast along batch",
            )
        )
        if number > 1:
            below = caches[number - 2]
            rows.append(
                (
                    f"grad_a{number - 1} {_shape(below.a.shape)} = W{number}.T "
                    f"{_shape(layer.W.T.shape)} @ {d}",
                    "sum over out; shaped like a",
                )
            )
            rows.append(
                (
                    f"delta{number - 1} {_shape(below.z.shape)} = grad_a{number - 1} "
                    f"{_shape(below.a.shape)} * {activation}'(z{number - 1}) "
                    f"{_shape(below.z.shape)}",
                    "BP2, elementwise",
                )
            )
    lines += ["", "backward (every grad_<v> has the shape of <v>)"]
    lines += _table(rows)
    lines.append(
        "  (no grad_a0: nothing needs the gradient of the input, and it would cost a product)"
    )
    return lines
