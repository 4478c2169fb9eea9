"""Where a training step's time goes, layer by layer, beside the time of its matrix products.

Usage::

    python benchmarks/profile_layers.py                      # the transformer and the convnet
    python benchmarks/profile_layers.py --model convnet --batch 256 --threads 2
    python benchmarks/profile_layers.py --repeats 5          # quicker, noisier

For each model (:func:`typedbackprop.models.transformer` on the sort task, with
``token_cross_entropy``; :func:`typedbackprop.models.convnet` on the digits, with
``cross_entropy``), one training step is taken apart the way
:func:`~typedbackprop.nn.network.network_loss_and_grads` runs it: every layer's forward
(``family.run``, in training mode), the loss, and every layer's backward (``family.backward``,
or ``family.backward_parameters`` for the lowest layer with parameters, whose input gradient
nothing needs), each timed on its own, the median over ``--repeats`` calls.

Beside each layer, **products** is the time of that layer's matrix products alone: the same
calls (``@``/``np.matmul``, ``np.dot``, ``np.tensordot``, ``np.einsum``) on the same operands,
strides and all, replayed without the rest of the layer's work; they are found by running the
layer once on arrays of a recording subclass of ``np.ndarray`` (the input, the parameters and
the upstream gradient), so a product between two arrays the layer derived without any of those
(through ``as_strided``, which drops the subclass) would be missed. The products are the floor
for this arithmetic; **outside** is the share of the layer's time spent on anything else
(elementwise work, reductions, copies, Python and the checks).

A composite layer is taken apart too: below a transformer block's row, one row per part
(its two layer norms, attention and the feed-forward network, and the two residual sums), each
timed the same way on the inputs and upstream gradients the block gives it. **faults** is the
median count of minor page faults per call (forward and backward together): glibc's ``malloc``
hands freed memory back to the system once more than a threshold of it lies at the top of the
heap (a threshold that moves with the process's history), and an array whose pages are faulted
in afresh costs more than the arithmetic on it.

The thread count is set for BLAS before NumPy is imported (``--threads``, default 1); checks are
on unless ``TYPEDBACKPROP_CHECKS=0``. ``--clock cpu`` times on the process's CPU time, which other
programs on a busy machine do not inflate. Quote ``uptime`` with the figures: on a shared machine
the medians move with the load.
"""

import argparse
import os
import sys


def _threads_from_argv() -> int:
    """``--threads N`` read before NumPy is imported: BLAS reads its thread count at import."""
    for index, argument in enumerate(sys.argv):
        if argument == "--threads" and index + 1 < len(sys.argv):
            return int(sys.argv[index + 1])
        if argument.startswith("--threads="):
            return int(argument.split("=", 1)[1])
    return 1


THREADS = _threads_from_argv()
for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_variable] = str(THREADS)

import resource  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402

PRODUCTS = {np.matmul, np.dot, np.tensordot, np.einsum}


class Recording(np.ndarray):
    """An array that logs every matrix product it takes part in, with plain-array operands."""

    log: list[tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]]] = []

    def __array_ufunc__(self, ufunc: Any, method: str, *inputs: Any, **kwargs: Any) -> Any:
        plain = tuple(_plain(value) for value in inputs)
        kwargs = _plain(kwargs)  # out=, where=: plain arrays too
        if ufunc is np.matmul and method == "__call__":
            Recording.log.append((np.matmul, plain, dict(kwargs)))
        return _recording(getattr(ufunc, method)(*plain, **kwargs))

    def __array_function__(self, func: Any, types: Any, args: Any, kwargs: Any) -> Any:
        plain_args, plain_kwargs = _plain(args), _plain(kwargs)
        if func in PRODUCTS:
            Recording.log.append((func, plain_args, plain_kwargs))
        return _recording(func(*plain_args, **plain_kwargs))


def _plain(value: Any) -> Any:
    if isinstance(value, Recording):
        return value.view(np.ndarray)
    if isinstance(value, list | tuple):
        return type(value)(_plain(item) for item in value)
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    return value


def _recording(value: Any) -> Any:
    if type(value) is np.ndarray:
        return value.view(Recording)
    if isinstance(value, tuple):
        return tuple(_recording(item) for item in value)
    return value


CLOCKS: dict[str, Callable[[], float]] = {"wall": time.perf_counter, "cpu": time.process_time}
clock, CLOCK_NAME = CLOCKS["wall"], "wall"
"""The clock every median is taken on (``--clock``), and its name."""

FAULTS: list[int] = []
"""The page faults of the calls :func:`median_seconds` timed last, one count per call."""


def _minor_faults() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def median_seconds(call: Callable[[], Any], repeats: int) -> float:
    """The median over ``repeats`` timed calls (after one untimed call); their page faults go to
    :data:`FAULTS`."""
    call()
    times = []
    FAULTS.clear()
    for _ in range(repeats):
        faults, start = _minor_faults(), clock()
        call()
        times.append(clock() - start)
        FAULTS.append(_minor_faults() - faults)
    return statistics.median(times)


def median_faults() -> float:
    """The median page faults per call of the calls :func:`median_seconds` timed last."""
    return float(statistics.median(FAULTS)) if FAULTS else 0.0


@dataclass
class Row:
    name: str
    forward: float
    backward: float
    products: float
    faults: float = 0.0
    part: bool = False
    """A part of the composite layer above, already counted in its row."""

    @property
    def total(self) -> float:
        return self.forward + self.backward


def _model(name: str, batch: int) -> tuple[list[Any], Any, Any, str]:
    """The model's layers, a batch of its inputs and targets, and its loss."""
    import typedbackprop as tbp
    from typedbackprop import models
    from typedbackprop.datasets import sort_dataset

    rng = np.random.default_rng(0)
    if name == "transformer":
        data = sort_dataset(seed=0)
        chosen = rng.choice(data.x_train.shape[1], size=batch, replace=False)
        return (
            models.transformer(rng),
            data.x_train[:, chosen],
            data.y_train[:, chosen],
            ("token_cross_entropy"),
        )
    digits = tbp.load_dataset("digits", seed=0)
    chosen = rng.choice(
        digits.x_train.shape[1], size=batch, replace=batch > digits.x_train.shape[1]
    )
    layers = models.convnet(rng, channels=(16, 32))
    return layers, digits.x_train[:, chosen], digits.y_train[chosen], "cross_entropy"


def _record(run: Callable[..., Any], *arguments: Any) -> list[Any]:
    """The products ``run(*arguments)`` takes, its arrays (and records' arrays) recording."""
    from typedbackprop.nn.tree import leaves, map_leaves

    def recording(value: Any) -> Any:
        if type(value) is np.ndarray:
            return value.view(Recording)
        if leaves(value) if hasattr(value, "__dataclass_fields__") else False:
            return map_leaves(lambda array: array.view(Recording), value)
        return value

    Recording.log = []
    run(*[recording(argument) for argument in arguments])
    log, Recording.log = Recording.log, []
    return log


def profile(name: str, batch: int, repeats: int) -> tuple[list[Row], float]:
    """One row per layer (and the loss), and the time of the whole step as the package runs it."""
    from typedbackprop.nn.families import FAMILIES, Mode, family_of
    from typedbackprop.nn.losses import LOSSES
    from typedbackprop.nn.network import initial_states, network_loss_and_grads

    layers, x, y, loss = _model(name, batch)
    entry = LOSSES[loss]
    run_layers = layers[:-1] if entry.from_logits else layers  # the step stops at the logits
    mode = Mode(training=True, rng=np.random.default_rng(1))
    states = initial_states(layers)
    families = [FAMILIES.get(type(layer)) or family_of(layer) for layer in run_layers]
    inputs, caches, output = [], [], x
    for family, layer, state in zip(families, run_layers, states, strict=False):
        inputs.append(output)
        output, cache = family.run(layer, output, mode, state)
        caches.append(cache)
    logits = output  # the logits, for a loss from logits: the last activation is not run
    _, grad = entry.function(logits, y)
    loss_time = median_seconds(lambda: entry.function(logits, y), repeats)
    rows = [Row(f"loss {loss}", loss_time, 0.0, 0.0, median_faults())]
    lowest = next(i for i, family in enumerate(families) if family.has_parameters)
    backward_rows: dict[int, tuple[float, float, float]] = {}
    upstreams: dict[int, Any] = {}
    for index in reversed(range(lowest, len(run_layers))):
        family, cache = families[index], caches[index]
        if index == lowest and family.backward_parameters is not None:
            backward = family.backward_parameters
        else:
            backward = family.backward
        upstream = upstreams[index] = grad
        seconds = median_seconds(lambda b=backward, g=upstream, c=cache: b(g, c), repeats)
        faults = median_faults()
        products = _record(backward, upstream, cache)
        backward_rows[index] = (seconds, _replay(products, repeats), faults)
        result = backward(upstream, cache)
        if index > lowest:
            grad = result[1] if family.has_parameters else result
    for index, (family, layer) in enumerate(zip(families, run_layers, strict=True)):
        state = states[index]
        forward = median_seconds(
            lambda f=family, a=layer, i=inputs[index], s=state: f.run(a, i, mode, s), repeats
        )
        faults = median_faults()
        products = _replay(_record(family.run, layer, inputs[index], mode, state), repeats)
        back, back_products, back_faults = backward_rows.get(index, (0.0, 0.0, 0.0))
        label = f"{index} {type(layer).__name__} {getattr(layer, 'name', '')}".rstrip()
        rows.append(Row(label, forward, back, products + back_products, faults + back_faults))
        parts = PARTS.get(type(layer))
        if parts is not None and index in upstreams:
            rows += parts(layer, inputs[index], upstreams[index], repeats)
    rows.append(rows.pop(0))  # the loss after the layers, where the step computes it
    step = median_seconds(lambda: network_loss_and_grads(layers, x, y, loss, mode, states), repeats)
    return rows, step


def _part(
    name: str,
    forward: Callable[..., Any],
    forward_arguments: tuple[Any, ...],
    backward: Callable[..., Any],
    backward_arguments: tuple[Any, ...],
    repeats: int,
) -> Row:
    """A part of a composite layer: its forward and backward timed, its products replayed."""
    forward_time = median_seconds(lambda: forward(*forward_arguments), repeats)
    faults = median_faults()
    backward_time = median_seconds(lambda: backward(*backward_arguments), repeats)
    faults += median_faults()
    products = _replay(_record(forward, *forward_arguments), repeats)
    products += _replay(_record(backward, *backward_arguments), repeats)
    return Row(f"  {name}", forward_time, backward_time, products, faults, part=True)


def _transformer_block_parts(block: Any, x: Any, grad_y: Any, repeats: int) -> list[Row]:
    """The rows of a transformer block's parts, as its forward and backward run them."""
    from typedbackprop.nn.attention import attention_backward, attention_forward
    from typedbackprop.nn.layernorm import layernorm_backward, layernorm_forward
    from typedbackprop.nn.transformer import (
        feedforward_backward,
        feedforward_forward,
        transformer_block_forward,
    )

    _, cache = transformer_block_forward(block, x)
    attention_input, feedforward_input = cache.attention.x, cache.feedforward.x
    h = cache.feedforward_norm.x
    grad_h = (
        layernorm_backward(
            feedforward_backward(grad_y, cache.feedforward)[1], cache.feedforward_norm
        )[1]
        + grad_y
    )
    grad_attention_input = attention_backward(grad_h, cache.attention)[1]
    attended = h - x

    def add(a: Any, b: Any) -> Any:
        return a + b

    def accumulate(a: Any, b: Any) -> Any:  # the backward's `grad += upstream`, on a copy
        total = a.copy()
        total += b
        return total

    return [
        _part(
            "attention_norm LayerNorm",
            layernorm_forward,
            (block.attention_norm, x),
            layernorm_backward,
            (grad_attention_input, cache.attention_norm),
            repeats,
        ),
        _part(
            "attention Attention",
            attention_forward,
            (block.attention, attention_input),
            attention_backward,
            (grad_h, cache.attention),
            repeats,
        ),
        _part("residual x + attended", add, (x, attended), accumulate, (grad_h, grad_h), repeats),
        _part(
            "feedforward_norm LayerNorm",
            layernorm_forward,
            (block.feedforward_norm, h),
            layernorm_backward,
            (feedforward_backward(grad_y, cache.feedforward)[1], cache.feedforward_norm),
            repeats,
        ),
        _part(
            "feedforward FeedForward",
            feedforward_forward,
            (block.feedforward, feedforward_input),
            feedforward_backward,
            (grad_y, cache.feedforward),
            repeats,
        ),
        _part("residual h + fed", add, (h, h), accumulate, (grad_y, grad_y), repeats),
    ]


def _parts_table() -> dict[type, Callable[[Any, Any, Any, int], list[Row]]]:
    from typedbackprop.nn.transformer import TransformerBlock

    return {TransformerBlock: _transformer_block_parts}


PARTS: dict[type, Callable[[Any, Any, Any, int], list[Row]]] = {}
"""Composite layers taken apart: a layer's type, and the rows of its parts (filled in by
:func:`main`, once the package is imported)."""


def _replay(log: list[Any], repeats: int) -> float:
    """The time of the logged products alone, on their own operands: the sum of medians."""
    return sum(
        median_seconds(lambda f=func, a=args, k=kwargs: f(*a, **k), repeats)
        for func, args, kwargs in log
    )


def render(name: str, batch: int, rows: list[Row], step: float) -> Any:
    from rich.table import Table

    import typedbackprop as tbp

    checks = "checked" if tbp.CHECKS_ENABLED else "unchecked"
    layers = [row for row in rows if not row.part]  # a part is counted in its layer's row
    table = Table(
        title=f"{name}, batch {batch}, {THREADS} thread{'s' if THREADS != 1 else ''}, {checks}",
        caption=(
            f"layers' sum {sum(row.total for row in layers) * 1e3:.2f} ms; the step as "
            f"network_loss_and_grads runs it {step * 1e3:.2f} ms; products "
            f"{sum(row.products for row in layers) * 1e3:.2f} ms, "
            f"{1 - sum(row.products for row in layers) / step:.0%} of the step outside them; "
            f"{CLOCK_NAME} clock"
        ),
    )
    columns = ("layer", "forward (ms)", "backward (ms)", "products (ms)", "outside", "faults")
    for column in columns:
        table.add_column(column, justify="left" if column == "layer" else "right")
    for row in rows:
        outside = 1 - row.products / row.total if row.total else 0.0
        table.add_row(
            row.name,
            f"{row.forward * 1e3:.3f}",
            f"{row.backward * 1e3:.3f}",
            f"{row.products * 1e3:.3f}",
            f"{outside:.0%}",
            f"{row.faults:.0f}",
            style="dim" if row.part else None,
        )
    return table


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--model", choices=["transformer", "convnet", "both"], default="both")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=21, help="timed calls per median")
    parser.add_argument("--threads", type=int, default=1, help="BLAS threads (read at start)")
    parser.add_argument("--clock", choices=list(CLOCKS), default="wall")
    args = parser.parse_args(argv)
    global clock, CLOCK_NAME
    clock, CLOCK_NAME = CLOCKS[args.clock], args.clock
    PARTS.update(_parts_table())
    from rich.console import Console

    console = Console()
    names = ["transformer", "convnet"] if args.model == "both" else [args.model]
    for name in names:
        rows, step = profile(name, args.batch, args.repeats)
        console.print(render(name, args.batch, rows, step))
    load = " ".join(f"{value:.1f}" for value in os.getloadavg())
    command = "python benchmarks/profile_layers.py " + " ".join(
        argv if argv is not None else sys.argv[1:]
    )
    malloc = " ".join(
        f"{name}={value}" for name, value in os.environ.items() if name.startswith("MALLOC_")
    )
    command = f"{malloc} {command.strip()}".strip()  # glibc's settings, where the run tuned them
    console.print(f"load average {load}; command: {command}", highlight=False)


if __name__ == "__main__":
    main()
