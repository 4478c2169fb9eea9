"""Time one training step (loss and all parameter gradients) against hand-written NumPy and PyTorch.

Usage::

    python benchmarks/step.py                 # all three networks, table of medians and ratios
    python benchmarks/step.py --rounds 5      # quicker, noisier
    python benchmarks/step.py --markdown docs/benchmarks-table.md   # also write the table

Contenders, in one process and alternated round by round so that machine drift hits all of them:

- ``numpy``: the same step written by hand in plain NumPy, the way the question writes it (the
  same BLAS calls as typedbackprop: our floor, ratio 1.00);
- ``checked``: ``typedbackprop.loss_and_grads`` with runtime checks on (the default);
- ``unchecked``: the same with ``TYPEDBACKPROP_CHECKS=0``;
- ``torch``: PyTorch CPU eager autograd, float64 (if ``torch`` is installed: ``pip install
  -e ".[bench]"``).

Both typedbackprop variants live in one process: the package is imported twice, once under each
setting of ``TYPEDBACKPROP_CHECKS``, which it reads at import.
"""

import argparse
import importlib
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Network:
    name: str
    sizes: tuple[int, ...]
    batch: int
    activation: str
    output_activation: str
    loss: str


NETWORKS = [
    Network("question 3-4-4-2", (3, 4, 4, 2), 5, "sigmoid", "identity", "squared_error"),
    Network("medium 2-64-64-1", (2, 64, 64, 1), 256, "relu", "sigmoid", "binary_cross_entropy"),
    Network("large 784-512-512-10", (784, 512, 512, 10), 512, "relu", "softmax", "cross_entropy"),
]


def load_typedbackprop(checks: bool) -> ModuleType:
    """A fresh copy of the package, imported with ``TYPEDBACKPROP_CHECKS`` set as asked."""
    for name in [name for name in sys.modules if name.partition(".")[0] == "typedbackprop"]:
        del sys.modules[name]
    previous = os.environ.get("TYPEDBACKPROP_CHECKS")
    os.environ["TYPEDBACKPROP_CHECKS"] = "1" if checks else "0"
    try:
        module = importlib.import_module("typedbackprop")
    finally:
        if previous is None:
            del os.environ["TYPEDBACKPROP_CHECKS"]
        else:
            os.environ["TYPEDBACKPROP_CHECKS"] = previous
    assert module.CHECKS_ENABLED is checks
    for name in [name for name in sys.modules if name.partition(".")[0] == "typedbackprop"]:
        del sys.modules[name]
    return module


def make_problem(network: Network, seed: int = 0) -> tuple[list[tuple[Any, Any]], Any, Any]:
    rng = np.random.default_rng(seed)
    params = []
    for n_in, n_out in zip(network.sizes[:-1], network.sizes[1:], strict=True):
        params.append(
            (rng.normal(size=(n_out, n_in)) / np.sqrt(n_in), rng.normal(size=n_out) * 0.1)
        )
    x = rng.normal(size=(network.sizes[0], network.batch))
    if network.loss == "cross_entropy":
        y = rng.integers(0, network.sizes[-1], size=network.batch)
    elif network.loss == "binary_cross_entropy":
        y = (rng.random((network.sizes[-1], network.batch)) < 0.5).astype(np.float64)
    else:
        y = rng.normal(size=(network.sizes[-1], network.batch))
    return params, x, y


# --- the floor: one step written by hand, as the question writes it ------------------------------


def numpy_step(
    network: Network, params: list[tuple[Any, Any]], x: Any, y: Any
) -> Callable[[], Any]:
    """A hand-written step for ``network``: forward, loss, backward without ``∂L/∂x``."""
    hidden = network.activation
    batch = x.shape[1]

    def step() -> Any:
        activations, pre_activations = [x], []
        a = x
        for index, (W, b) in enumerate(params):
            z = W @ a + b[:, np.newaxis]
            pre_activations.append(z)
            if index == len(params) - 1:
                break
            a = 1 / (1 + np.exp(-z)) if hidden == "sigmoid" else np.maximum(z, 0)
            activations.append(a)
        if network.loss == "squared_error":  # identity output
            delta = (z - y) / batch
            loss = 0.5 * np.sum((z - y) ** 2) / batch
        elif network.loss == "binary_cross_entropy":  # sigmoid output
            a = 1 / (1 + np.exp(-z))
            loss = -np.sum(y * np.log(a) + (1 - y) * np.log(1 - a)) / batch
            delta = (a - y) / batch
        else:  # softmax output, cross-entropy
            e = np.exp(z - z.max(axis=0))
            a = e / e.sum(axis=0)
            loss = -np.log(a[y, np.arange(batch)]).sum() / batch
            delta = a.copy()
            delta[y, np.arange(batch)] -= 1
            delta /= batch
        grads = []
        for index in range(len(params) - 1, -1, -1):
            W, _ = params[index]
            a_prev = activations[index]
            grads.append((delta @ a_prev.T, delta.sum(axis=1)))
            if index > 0:
                grad_a_prev = W.T @ delta
                if hidden == "sigmoid":
                    delta = grad_a_prev * a_prev * (1 - a_prev)
                else:
                    delta = grad_a_prev * (pre_activations[index - 1] > 0)
        return loss, grads[::-1]

    return step


def typedbackprop_step(
    module: ModuleType, network: Network, params: list[tuple[Any, Any]], x: Any, y: Any
) -> Callable[[], Any]:
    layers = [module.Dense(W, b) for W, b in params]

    def step() -> Any:
        return module.loss_and_grads(
            layers, x, y, network.activation, network.output_activation, network.loss
        )

    return step


def torch_step(
    network: Network, params: list[tuple[Any, Any]], x: Any, y: Any
) -> Callable[[], Any]:
    import torch

    weights = [
        (torch.tensor(W, requires_grad=True), torch.tensor(b, requires_grad=True))
        for W, b in params
    ]
    inputs = torch.tensor(x)
    targets = torch.tensor(y)
    hidden = torch.sigmoid if network.activation == "sigmoid" else torch.relu

    def step() -> Any:
        for W, b in weights:
            W.grad = None
            b.grad = None
        a = inputs
        for index, (W, b) in enumerate(weights):
            z = torch.addmm(b[:, None], W, a)
            a = hidden(z) if index < len(weights) - 1 else z
        batch = inputs.shape[1]
        if network.loss == "squared_error":
            loss = 0.5 * ((z - targets) ** 2).sum() / batch
        elif network.loss == "binary_cross_entropy":
            loss = (
                torch.nn.functional.binary_cross_entropy_with_logits(z, targets, reduction="sum")
                / batch
            )
        else:
            loss = torch.nn.functional.cross_entropy(z.T, targets)
        loss.backward()
        return loss.item(), [(W.grad, b.grad) for W, b in weights]

    return step


def check_agreement(results: dict[str, Any]) -> None:
    """All contenders must compute the same loss and gradients before anything is timed."""
    reference_loss, reference_grads = results["numpy"]
    for name, (loss, grads) in results.items():
        grads = [(g.W, g.b) if hasattr(g, "W") else g for g in grads]
        assert abs(float(loss) - float(reference_loss)) <= 1e-9 * abs(float(reference_loss)), name
        for (grad_W, grad_b), (want_W, want_b) in zip(grads, reference_grads, strict=True):
            np.testing.assert_allclose(np.asarray(grad_W), want_W, rtol=1e-9, atol=1e-12)
            np.testing.assert_allclose(np.asarray(grad_b), want_b, rtol=1e-9, atol=1e-12)


def time_block(step: Callable[[], Any], repeats: int) -> float:
    start = time.perf_counter()
    for _ in range(repeats):
        step()
    return (time.perf_counter() - start) / repeats


def benchmark(network: Network, rounds: int, with_torch: bool) -> dict[str, float]:
    params, x, y = make_problem(network)
    steps: dict[str, Callable[[], Any]] = {
        "numpy": numpy_step(network, params, x, y),
        "checked": typedbackprop_step(CHECKED, network, params, x, y),
        "unchecked": typedbackprop_step(UNCHECKED, network, params, x, y),
    }
    if with_torch:
        steps["torch"] = torch_step(network, params, x, y)
    check_agreement({name: step() for name, step in steps.items()})
    # Size each timed block to about 20 ms of the floor's work.
    single = min(time_block(steps["numpy"], 1) for _ in range(5))
    repeats = max(1, int(0.02 / max(single, 1e-7)))
    for step in steps.values():  # warm-up: first-signature checks, caches, BLAS threads
        time_block(step, repeats)
    samples: dict[str, list[float]] = {name: [] for name in steps}
    names = list(steps)
    for round_index in range(rounds):
        shift = round_index % len(names)
        for name in names[shift:] + names[:shift]:
            samples[name].append(time_block(steps[name], repeats))
    return {name: statistics.median(times) for name, times in samples.items()}


def table(results: dict[str, dict[str, float]], command: str) -> str:
    contenders = list(next(iter(results.values())))
    header = "| network | " + " | ".join(f"{name} (µs) | ×numpy" for name in contenders) + " |"
    rule = "|---|" + "---:|---:|" * len(contenders)
    lines = [header, rule]
    for network, medians in results.items():
        floor = medians["numpy"]
        cells = " | ".join(
            f"{medians[name] * 1e6:,.1f} | {medians[name] / floor:.2f}" for name in contenders
        )
        lines.append(f"| {network} | {cells} |")
    machine = f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores"
    versions = f"Python {platform.python_version()}, NumPy {np.__version__}"
    if "torch" in contenders:
        import torch

        versions += f", PyTorch {torch.__version__}"
    lines += [
        "",
        f"Medians per step, float64. Machine: {machine}; {versions}. Command: `{command}`",
    ]
    return "\n".join(lines)


CHECKED = load_typedbackprop(checks=True)
UNCHECKED = load_typedbackprop(checks=False)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=15, help="timed rounds per contender")
    parser.add_argument("--no-torch", action="store_true", help="leave PyTorch out")
    parser.add_argument("--markdown", metavar="FILE", help="also write the table to FILE")
    parser.add_argument(
        "--only", choices=[network.name.split()[0] for network in NETWORKS], help="one network"
    )
    args = parser.parse_args(argv)
    with_torch = not args.no_torch
    if with_torch:
        try:
            import torch  # noqa: F401
        except ImportError:
            print("torch is not installed: pip install -e '.[bench]' (or pass --no-torch)")
            with_torch = False
    results = {}
    for network in NETWORKS:
        if args.only and not network.name.startswith(args.only):
            continue
        results[network.name] = benchmark(network, args.rounds, with_torch)
        print(
            f"{network.name}: "
            + ", ".join(f"{k} {v * 1e6:,.1f} µs" for k, v in results[network.name].items()),
            flush=True,
        )
    command = "python benchmarks/step.py " + " ".join(argv if argv is not None else sys.argv[1:])
    text = table(results, command.strip())
    print(text)
    if args.markdown:
        with open(args.markdown, "w", encoding="utf-8") as handle:
            handle.write(text + "\n")


if __name__ == "__main__":
    main()
