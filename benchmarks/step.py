"""Time one training step (loss and all parameter gradients) against NumPy floors and PyTorch.

Usage::

    python benchmarks/step.py                    # every network and contender, table of medians
    python benchmarks/step.py --rounds 9         # quicker, noisier
    python benchmarks/step.py --threads 2        # BLAS and PyTorch on 2 threads (default 1)
    TYPEDBACKPROP_CHECKS=0 python benchmarks/step.py   # only the unchecked package
    python benchmarks/step.py --markdown docs/snippets/benchmarks/step.md
    python benchmarks/step.py --interference --markdown docs/snippets/benchmarks/interference.md

Contenders, each in a process of its own (see ``processes.py``), all with the same thread
count for NumPy's BLAS and for PyTorch:

- ``question``: the question's own hand-written step (seed 000: its ``forward``, its
  ``squared_loss`` with the axis fixed, its ``backward``; the same BLAS calls), for the
  question's 3-4-4-2 network only;
- ``floor``: tight NumPy doing exactly typedbackprop's arithmetic, call for call, in place
  where the package is, with none of its Python structure (no functions per layer, no records,
  no checks); it must give the unchecked package's results bit for bit;
- ``checked``: ``typedbackprop.loss_and_grads`` with runtime checks on;
- ``unchecked``: the same with ``TYPEDBACKPROP_CHECKS=0``;
- ``torch``: PyTorch CPU eager autograd, float64.

If ``TYPEDBACKPROP_CHECKS`` is set, only that setting of the package is measured. Before
anything is timed, every contender's loss and gradients are compared with the floor's (the
package's must equal them bit for bit). Each round times one block (about ``--block-ms`` of
the floor's work) per contender, one contender at a time, in an order rotated round by round;
the table gives the median over rounds of the time per step. ``--clock wall`` (the default)
times what a user waits; ``--clock cpu`` the worker process's CPU time, which other programs
on a busy machine do not inflate. Every worker keeps freed memory (glibc malloc settings, see
``processes.py``), so that no contender pays page faults by the chance of its heap's history;
``--malloc-defaults`` leaves glibc as it is.

``--interference`` shows why the contenders run apart: it times the floor alone, right after a
PyTorch block in the same process (as the old benchmark did), and right after a PyTorch block
in another process, with the libraries' default thread settings and with this benchmark's.
"""

import argparse
import math
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import processes
from processes import Worker, checks_settings, environment, median_and_spread

SCRIPT = os.path.abspath(__file__)
PACKAGE_CONTENDERS = {"checked": True, "unchecked": False}


@dataclass(frozen=True)
class Network:
    name: str
    sizes: tuple[int, ...]
    batch: int
    activation: str
    output_activation: str
    loss: str

    @property
    def short(self) -> str:
        return self.name.split()[0]


NETWORKS = [
    Network("question 3-4-4-2", (3, 4, 4, 2), 5, "sigmoid", "identity", "squared_error"),
    Network("medium 2-64-64-1", (2, 64, 64, 1), 256, "relu", "sigmoid", "binary_cross_entropy"),
    Network("large 784-512-512-10", (784, 512, 512, 10), 512, "relu", "softmax", "cross_entropy"),
]
BY_NAME = {network.short: network for network in NETWORKS}

Grads = list[tuple[Any, Any]]
Step = Callable[[], tuple[float, Grads]]


def make_problem(network: Network, seed: int = 0) -> tuple[Grads, Any, Any]:
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


# --- floor (a): the question's own code (seed 000), rewritten without its typos --------------


def sigmoid(x: Any) -> Any:
    return 1 / (1 + np.exp(-x))


def squared_loss(predictions: Any, targets: Any) -> Any:
    return np.mean(0.5 * np.linalg.norm(predictions - targets, axis=0, ord=2) ** 2, axis=0)


def deriv_squared_loss(predictions: Any, targets: Any) -> Any:
    return (predictions - targets) / targets.shape[-1]


def forward(parameters: list[Any], X: Any) -> list[Any]:
    W1, b1, W2, b2, W3, b3 = parameters
    hid_1 = sigmoid(W1 @ X + b1[:, np.newaxis])
    hid_2 = sigmoid(W2 @ hid_1 + b2[:, np.newaxis])
    outputs = W3 @ hid_2 + b3[:, np.newaxis]
    return [X, hid_1, hid_2, outputs]


def backward(activations: list[Any], targets: Any, parameters: list[Any]) -> list[Any]:
    X, hid_1, hid_2, predictions = activations
    W1, b1, W2, b2, W3, b3 = parameters
    batch_size = X.shape[-1]
    dL_dPredictions = deriv_squared_loss(predictions, targets)
    dL_db3 = np.dot(dL_dPredictions, np.ones((batch_size,)))
    dL_dW3 = np.dot(dL_dPredictions, hid_2.T)
    dL_hid_2 = np.dot(W3.T, dL_dPredictions) * hid_2 * (1 - hid_2)
    dL_db2 = np.dot(dL_hid_2, np.ones((batch_size,)))
    dL_dW2 = np.dot(dL_hid_2, hid_1.T)
    dL_hid_1 = np.dot(W2.T, dL_hid_2) * hid_1 * (1 - hid_1)
    dL_db1 = np.dot(dL_hid_1, np.ones((batch_size,)))
    dL_dW1 = np.dot(dL_hid_1, X.T)
    return [dL_dW1, dL_db1, dL_dW2, dL_db2, dL_dW3, dL_db3]


def question_step(network: Network, params: Grads, x: Any, y: Any) -> Step:
    """The question's step: its forward, its loss, its backward."""
    assert network.short == "question"
    parameters = [array for layer in params for array in layer]

    def step() -> tuple[float, Grads]:
        activations = forward(parameters, x)
        loss = squared_loss(activations[-1], y)
        grads = backward(activations, y, parameters)
        return loss, list(zip(grads[0::2], grads[1::2], strict=True))

    return step


# --- floor (b): typedbackprop's arithmetic, call for call, without its structure --------------

EXP_LIMIT = float(np.log(np.finfo(np.float64).max)) - 1.0


def floor_step(network: Network, params: Grads, x: Any, y: Any) -> Step:
    """The package's NumPy calls for ``network``, in its order, in place where it is.

    The always-on validation of the losses (targets in [0, 1], labels in range, finite logits)
    is part of the package's work with checks off, so it is here too; the checks that only
    run with checks on (finite ``x`` and ``y``, shapes) are not.
    """
    weights = [W for W, _ in params]
    biases = [b for _, b in params]
    relu = network.activation == "relu"
    assert network.activation in ("relu", "sigmoid")
    last = len(params) - 1
    batch = x.shape[1]
    columns = np.arange(batch)

    def step() -> tuple[float, Grads]:
        inputs, pre_activations = [x], []
        a = x
        for index in range(last + 1):
            z = weights[index] @ a
            z += biases[index][:, np.newaxis]
            pre_activations.append(z)
            if index == last:
                break
            if relu:
                a = np.maximum(z, 0.0)
            else:  # the package's sigmoid, on its no-overflow branch
                a = np.negative(z)
                assert np.maximum.reduce(a, axis=None, initial=-np.inf) < EXP_LIMIT
                np.exp(a, out=a)
                a += 1.0
                np.reciprocal(a, out=a)
            inputs.append(a)
        if network.loss == "squared_error":  # identity output
            delta = z - y
            loss = 0.5 * float(np.vdot(delta, delta)) / batch
            delta /= batch
        elif network.loss == "binary_cross_entropy":  # from the logits of the sigmoid output
            if y.min() < 0 or y.max() > 1 or np.isnan(y).any():
                raise ValueError("targets outside [0, 1]")
            if not math.isfinite(np.vdot(z, z)):
                raise ValueError("logits not finite")
            e = np.exp(-np.abs(z))
            losses = np.maximum(z, 0.0) - z * y + np.log1p(e)
            loss = float(losses.sum()) / batch
            delta = np.where(z >= 0, 1.0, e)
            delta /= 1.0 + e
            delta -= y
            delta /= batch
        else:  # cross-entropy from the logits of the softmax output
            if y.min() < 0 or y.max() >= z.shape[0]:
                raise ValueError("label out of range")
            largest = z.max(axis=0)
            if not math.isfinite(np.vdot(largest, largest)):
                raise ValueError("logits not finite")
            shifted = z - largest
            delta = np.exp(shifted)
            total = delta.sum(axis=0)
            loss = float(np.log(total).sum() - shifted[y, columns].sum()) / batch
            delta /= total
            delta[y, columns] -= 1.0
            delta /= batch
        grads: Grads = []
        for index in range(last, -1, -1):
            a_prev = inputs[index]
            grads.append((delta @ a_prev.T, delta.sum(axis=1)))
            if index == 0:
                break
            grad_a = weights[index].T @ delta
            if relu:
                delta = grad_a * (pre_activations[index - 1] > 0)
                delta += 0.0
            else:
                delta = grad_a * a_prev * (1.0 - a_prev)
        return loss, grads[::-1]

    return step


# --- the package and PyTorch ------------------------------------------------------------------


def package_step(network: Network, params: Grads, x: Any, y: Any) -> Step:
    import typedbackprop as tbp

    layers = [tbp.Dense(W, b) for W, b in params]

    def step() -> tuple[float, Grads]:
        loss, grads = tbp.loss_and_grads(
            layers, x, y, network.activation, network.output_activation, network.loss
        )
        return loss, [(grad.W, grad.b) for grad in grads]

    return step


def torch_step(network: Network, params: Grads, x: Any, y: Any) -> Step:
    import torch

    weights = [
        (torch.tensor(W, requires_grad=True), torch.tensor(b, requires_grad=True))
        for W, b in params
    ]
    inputs = torch.tensor(x)
    targets = torch.tensor(y)
    hidden = torch.sigmoid if network.activation == "sigmoid" else torch.relu
    batch = inputs.shape[1]

    def step() -> tuple[float, Grads]:
        for W, b in weights:
            W.grad = None
            b.grad = None
        a = inputs
        for index, (W, b) in enumerate(weights):
            z = torch.addmm(b[:, None], W, a)
            a = hidden(z) if index < len(weights) - 1 else z
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


BUILDERS: dict[str, Callable[[Network, Grads, Any, Any], Step]] = {
    "question": question_step,
    "floor": floor_step,
    "checked": package_step,
    "unchecked": package_step,
    "torch": torch_step,
}


def contenders_for(network: Network, names: list[str]) -> list[str]:
    return [name for name in names if name != "question" or network.short == "question"]


# --- the worker: builds and times the steps of its contenders ---------------------------------


def run_worker(names: list[str], threads: int | None) -> None:
    if "torch" in names:
        processes.set_torch_threads(threads)
    for name in names:
        if name in PACKAGE_CONTENDERS:
            processes.import_package(PACKAGE_CONTENDERS[name])
    steps: dict[str, Step] = {}

    def handle(operation: str, *arguments: Any) -> Any:
        if operation == "setup":  # build the steps for a network; return one step's results
            network = BY_NAME[arguments[0]]
            params, x, y = make_problem(network)
            steps.clear()
            results = {}
            for name in contenders_for(network, names):
                steps[name] = BUILDERS[name](network, params, x, y)
                loss, grads = steps[name]()
                results[name] = (
                    float(loss),
                    [(processes.as_numpy(gW), processes.as_numpy(gb)) for gW, gb in grads],
                )
            return results
        if operation == "single":  # the fastest of a few single steps, to size the blocks
            return min(processes.time_block(steps[arguments[0]], 1) for _ in range(5))
        if operation == "time":
            name, repeats, clock = arguments
            return processes.time_block(steps[name], repeats, clock)
        raise ValueError(operation)

    processes.serve(handle)


# --- the parent: agreement, rounds, tables ---------------------------------------------------


def check_agreement(results: dict[str, tuple[float, Grads]]) -> None:
    """Every contender computes the floor's loss and gradients; the package's bit for bit."""
    reference_loss, reference_grads = results["floor"]
    for name, (loss, grads) in results.items():
        assert abs(loss - reference_loss) <= 1e-9 * abs(reference_loss), (name, loss)
        for (grad_W, grad_b), (want_W, want_b) in zip(grads, reference_grads, strict=True):
            if name in PACKAGE_CONTENDERS:
                assert loss == reference_loss, (name, loss, reference_loss)
                np.testing.assert_array_equal(grad_W, want_W, err_msg=name)
                np.testing.assert_array_equal(grad_b, want_b, err_msg=name)
            np.testing.assert_allclose(grad_W, want_W, rtol=1e-9, atol=1e-12, err_msg=name)
            np.testing.assert_allclose(grad_b, want_b, rtol=1e-9, atol=1e-12, err_msg=name)


def start_workers(names: list[str], threads: int | None, keep: bool) -> dict[str, Worker]:
    return {
        name: Worker(
            SCRIPT,
            [name],
            threads,
            environment(threads, checks=PACKAGE_CONTENDERS.get(name), keep_freed_memory=keep),
        )
        for name in names
    }


def benchmark(
    network: Network, workers: dict[str, Worker], rounds: int, block_s: float, clock: str
) -> dict[str, list[float]]:
    names = [name for name in contenders_for(network, list(workers))]
    check_agreement({name: workers[name].ask("setup", network.short)[name] for name in names})
    single = workers["floor"].ask("single", "floor")
    repeats = max(1, round(block_s / max(single, 1e-7)))
    for name in names:  # warm-up: first-signature checks, caches, thread pools
        workers[name].ask("time", name, repeats, clock)
    samples: dict[str, list[float]] = {name: [] for name in names}
    for round_index in range(rounds):
        shift = round_index % len(names)
        for name in names[shift:] + names[:shift]:
            samples[name].append(workers[name].ask("time", name, repeats, clock))
    return samples


COLUMNS = ["question", "floor", "checked", "unchecked", "torch"]
RATIOS = [
    ("checked", "floor"),
    ("unchecked", "floor"),
    ("checked", "question"),
    ("unchecked", "question"),
    ("torch", "floor"),
]
TARGETS = [  # (network, contender, reference, bound)
    ("medium", "checked", "floor", 1.1),
    ("question", "checked", "question", 1.5),
    ("question", "unchecked", "question", 1.15),
]


def step_table(results: dict[str, dict[str, list[float]]], footer: str) -> str:
    medians = {
        network: {name: median_and_spread(times)[0] for name, times in samples.items()}
        for network, samples in results.items()
    }
    present = [name for name in COLUMNS if any(name in m for m in medians.values())]
    ratios = [(a, b) for a, b in RATIOS if a in present and b in present]
    lines = [
        "| network | "
        + " | ".join(f"{name} (µs)" for name in present)
        + "".join(f" | {a} ÷ {b}" for a, b in ratios)
        + " |",
        "|---|" + "---:|" * (len(present) + len(ratios)),
    ]
    for network, values in medians.items():
        cells = [f"{values[name] * 1e6:,.1f}" if name in values else "—" for name in present]
        cells += [
            f"{values[a] / values[b]:.2f}" if a in values and b in values else "—"
            for a, b in ratios
        ]
        lines.append(f"| {network} | " + " | ".join(cells) + " |")
    spreads = [
        f"{network.split()[0]} {name} ±{median_and_spread(times)[1] * 50:.0f}%"
        for network, samples in results.items()
        for name, times in samples.items()
    ]
    targets = []
    for short, contender, reference, bound in TARGETS:
        network = BY_NAME[short].name
        if network in medians and contender in medians[network] and reference in medians[network]:
            ratio = medians[network][contender] / medians[network][reference]
            verdict = "met" if ratio <= bound else "missed"
            targets.append(
                f"| {contender} ≤ {bound}× {reference}, {network} | {ratio:.2f}× | {verdict} |"
            )
    if targets:
        lines += ["", "| target | measured | |", "|---|---:|---|", *targets]
    lines += ["", footer, "", "Half the interquartile range, relative: " + ", ".join(spreads) + "."]
    return "\n".join(lines)


def interference(
    network: Network, rounds: int, threads: int, block_s: float, clock: str, keep: bool
) -> list[tuple[str, dict[str, float]]]:
    """The floor alone, right after PyTorch in its process, right after PyTorch in another.

    NumPy's BLAS has ``threads`` threads throughout, so that the floor's own work is the same
    in every row; what changes is PyTorch's set-up.
    """
    import torch

    default = torch.get_num_threads()
    numpy_only = {"OPENBLAS_NUM_THREADS": str(threads)}
    set_ups = [
        (
            f"PyTorch as it starts: {default} threads, OMP_WAIT_POLICY unset (the old benchmark)",
            environment(None, passive=False, keep_freed_memory=keep) | numpy_only,
            None,
        ),
        (
            f"PyTorch with {default} threads, OMP_WAIT_POLICY=PASSIVE",
            environment(None, passive=True, keep_freed_memory=keep) | numpy_only,
            None,
        ),
        (
            f"PyTorch with {threads} thread(s), OMP_WAIT_POLICY=PASSIVE (this benchmark)",
            environment(threads, passive=True, keep_freed_memory=keep),
            threads,
        ),
    ]
    table = []
    for label, env, torch_threads in set_ups:
        medians = interference_row(network, rounds, env, torch_threads, block_s, clock)
        print(f"{label}: " + ", ".join(f"{k} {v * 1e6:,.1f} µs" for k, v in medians.items()))
        table.append((label, medians))
    return table


def interference_row(
    network: Network,
    rounds: int,
    env: dict[str, str],
    threads: int | None,
    block_s: float,
    clock: str,
) -> dict[str, float]:
    alone = Worker(SCRIPT, ["floor"], threads, env)
    together = Worker(SCRIPT, ["floor", "torch"], threads, env)
    apart_floor = Worker(SCRIPT, ["floor"], threads, env)
    apart_torch = Worker(SCRIPT, ["torch"], threads, env)
    workers = [alone, together, apart_floor, apart_torch]
    try:
        for worker in workers:
            worker.ask("setup", network.short)
        repeats = max(1, round(block_s / max(alone.ask("single", "floor"), 1e-7)))
        torch_repeats = max(1, round(block_s / together.ask("single", "torch")))

        def floor_alone() -> float:
            alone.ask("time", "floor", repeats, clock)  # as warm as after a PyTorch block
            return float(alone.ask("time", "floor", repeats, clock))

        def after_torch_same_process() -> float:
            together.ask("time", "torch", torch_repeats, clock)
            return float(together.ask("time", "floor", repeats, clock))

        def after_torch_other_process() -> float:
            apart_torch.ask("time", "torch", torch_repeats, clock)
            return float(apart_floor.ask("time", "floor", repeats, clock))

        scenarios = {
            "alone": floor_alone,
            "same": after_torch_same_process,
            "other": after_torch_other_process,
        }
        for scenario in scenarios.values():
            scenario()  # warm-up
        samples: dict[str, list[float]] = {name: [] for name in scenarios}
        names = list(scenarios)
        for round_index in range(rounds):
            shift = round_index % len(names)
            for name in names[shift:] + names[:shift]:
                samples[name].append(scenarios[name]())
        return {name: median_and_spread(times)[0] for name, times in samples.items()}
    finally:
        for worker in workers:
            worker.close()


def interference_table(
    network: Network, rows: list[tuple[str, dict[str, float]]], footer: str
) -> str:
    lines = [
        f"| set-up ({network.name}, batch {network.batch}) | floor alone (µs) "
        "| right after PyTorch, same process | right after PyTorch, other process |",
        "|---|---:|---:|---:|",
    ]
    for label, medians in rows:
        alone = medians["alone"]
        lines.append(
            f"| {label} | {alone * 1e6:,.1f} | {medians['same'] * 1e6:,.1f} "
            f"({medians['same'] / alone:.2f}×) | {medians['other'] * 1e6:,.1f} "
            f"({medians['other'] / alone:.2f}×) |"
        )
    return "\n".join([*lines, "", footer])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--rounds", type=int, default=31, help="timed rounds per contender")
    parser.add_argument("--threads", type=int, default=1, help="BLAS and PyTorch threads")
    parser.add_argument("--block-ms", type=float, default=30.0, help="floor's time per block")
    parser.add_argument(
        "--clock",
        choices=list(processes.CLOCKS),
        default="wall",
        help="wall: elapsed time; cpu: the worker's CPU time (steadier on a busy machine)",
    )
    parser.add_argument("--no-torch", action="store_true", help="leave PyTorch out")
    parser.add_argument(
        "--malloc-defaults", action="store_true", help="glibc's malloc settings (see processes.py)"
    )
    parser.add_argument("--markdown", metavar="FILE", help="also write the table to FILE")
    parser.add_argument("--only", choices=list(BY_NAME), help="one network")
    parser.add_argument("--interference", action="store_true", help="show the old artifact")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        run_worker(args.worker.split(","), args.threads or None)  # 0: library defaults
        return
    command = "python benchmarks/step.py " + " ".join(argv if argv is not None else sys.argv[1:])
    load_before = processes.load()
    block_s = args.block_ms / 1000
    if args.interference:
        network = BY_NAME[args.only or "medium"]
        rows = interference(
            network, args.rounds, args.threads, block_s, args.clock, not args.malloc_defaults
        )
        note = (
            f"NumPy's BLAS on {args.threads} thread(s) in every row "
            f"(OPENBLAS_NUM_THREADS={args.threads}); each floor block follows a PyTorch block "
            "of about the same length, run in the floor's process or in another; 'alone' is a "
            "floor block right after another, in a process that never imports PyTorch"
        )
        text = interference_table(
            network, rows, footer(args, command, load_before, True, note=note)
        )
    else:
        names = ["question", "floor"]
        names += ["checked" if checks else "unchecked" for checks in checks_settings()]
        if not args.no_torch:
            names.append("torch")
        workers = start_workers(names, args.threads, not args.malloc_defaults)
        results = {}
        try:
            for network in NETWORKS:
                if args.only and network.short != args.only:
                    continue
                samples = benchmark(network, workers, args.rounds, block_s, args.clock)
                results[network.name] = samples
                print(
                    f"{network.name}: "
                    + ", ".join(
                        f"{name} {median_and_spread(times)[0] * 1e6:,.1f} µs"
                        for name, times in samples.items()
                    ),
                    flush=True,
                )
        finally:
            for worker in workers.values():
                worker.close()
        text = step_table(results, footer(args, command, load_before, not args.no_torch))
    print(text)
    if args.markdown:
        with open(args.markdown, "w", encoding="utf-8") as handle:
            handle.write(text + "\n")


def footer(
    args: argparse.Namespace,
    command: str,
    load_before: str,
    with_torch: bool,
    note: str | None = None,
) -> str:
    return (
        f"Medians over {args.rounds} rounds of blocks of about {args.block_ms:g} ms "
        f"({args.clock} clock), float64; "
        f"{note or 'each contender in its own process; ' + processes.thread_note(args.threads)}; "
        f"{processes.malloc_note(not args.malloc_defaults)}. "
        f"Machine: {processes.machine()}, load average {load_before} before and "
        f"{processes.load()} after; {processes.versions(with_torch)}. "
        f"Command: `{command.strip()}`"
    )


if __name__ == "__main__":
    main()
