"""Time one training epoch of a 784-512-512-10 network: ``typedbackprop.train`` against PyTorch.

Usage::

    python benchmarks/epoch.py                   # checked, unchecked and PyTorch, 7 rounds
    python benchmarks/epoch.py --threads 2       # BLAS and PyTorch on 2 threads (default 1)
    TYPEDBACKPROP_CHECKS=0 python benchmarks/epoch.py  # only the unchecked package
    python benchmarks/epoch.py --markdown docs/snippets/benchmarks/epoch.md

The work: one epoch of minibatch SGD with momentum over 10,000 examples in batches of 128 (79
steps, the last one of 16 examples), a ReLU network 784-512-512-10 with a softmax output and
cross-entropy loss, float64, on synthetic data: standard normal inputs, and labels given by
the largest of ten random linear functions of the input (a learnable problem, with no data set
to download). Every contender starts from the same He-initialised weights, visits the examples
in the same order (``rng.permutation`` from the same seed) and applies the same update,
``v ← μ v − η g``, ``θ ← θ + v``.

Contenders, each in its own process with the same thread count (see ``processes.py``):

- ``checked`` / ``unchecked``: ``typedbackprop.train`` called as a user calls it, with checks
  on or off (only the environment's setting if ``TYPEDBACKPROP_CHECKS`` is set): its default
  training metrics (the running accuracy), on inputs as ``load_dataset`` gives them, features
  first and C-contiguous (``features_first`` of the example-major array, made before timing);
- ``torch``: a PyTorch CPU eager loop over the example-major tensor: row gather,
  ``linear``/``relu``, ``cross_entropy``, ``backward``, and the same update in place under
  ``no_grad``.

Every worker runs with glibc's malloc as it comes, as a user's process does;
``--keep-freed-memory`` tunes it as ``processes.MALLOC_SETTINGS`` says, for every contender.

Before timing, the trained weights and the epoch's mean loss must agree between contenders.
Each round times one epoch per contender, from the initial weights, in a rotated order.
"""

import argparse
import os
import sys
from typing import Any

import numpy as np
import processes
from processes import Worker, checks_settings, environment, median_and_spread

SCRIPT = os.path.abspath(__file__)
PACKAGE_CONTENDERS = {"checked": True, "unchecked": False}
LEARNING_RATE = 0.01
MOMENTUM = 0.9


def make_problem(sizes: tuple[int, ...], examples: int, seed: int = 0) -> tuple[Any, Any, Any]:
    """Example-major inputs ``(examples, inp)``, integer labels, He-initialised ``(W, b)``."""
    rng = np.random.default_rng(seed)
    x_rows = rng.standard_normal((examples, sizes[0]))
    teacher = rng.standard_normal((sizes[0], sizes[-1]))
    labels = np.argmax(x_rows @ teacher, axis=1).astype(np.int64)
    params = [
        (rng.standard_normal((n_out, n_in)) * np.sqrt(2.0 / n_in), np.zeros(n_out))
        for n_in, n_out in zip(sizes[:-1], sizes[1:], strict=True)
    ]
    return x_rows, labels, params


def package_epoch(sizes: tuple[int, ...], x_rows: Any, labels: Any, params: Any, batch: int):
    import typedbackprop as tbp

    architecture = tbp.models.Architecture(sizes, "relu", "softmax", "cross_entropy")
    layers = [tbp.Dense(W, b) for W, b in params]
    x = tbp.datasets.features_first(x_rows)  # (inp, examples), C-contiguous: load_dataset's layout

    def epoch() -> tuple[float, list[Any]]:
        trained, history = tbp.train(
            layers, architecture, x, labels,
            epochs=1, batch_size=batch, learning_rate=LEARNING_RATE, momentum=MOMENTUM,
            rng=np.random.default_rng(1),
        )  # fmt: skip
        return history.loss[0], [(layer.W, layer.b) for layer in trained]

    return epoch


def torch_epoch(sizes: tuple[int, ...], x_rows: Any, labels: Any, params: Any, batch: int):
    import torch
    import torch.nn.functional as F

    inputs = torch.from_numpy(x_rows)
    targets = torch.from_numpy(labels)
    examples = len(labels)

    def epoch() -> tuple[float, list[Any]]:
        weights = [
            (torch.tensor(W, requires_grad=True), torch.tensor(b, requires_grad=True))
            for W, b in params
        ]
        velocities = [torch.zeros_like(p) for layer in weights for p in layer]
        order = torch.from_numpy(np.random.default_rng(1).permutation(examples))
        total = 0.0
        for start in range(0, examples, batch):
            indices = order[start : start + batch]
            a = inputs[indices]
            for index, (W, b) in enumerate(weights):
                a = F.linear(a, W, b)
                if index < len(weights) - 1:
                    a = torch.relu(a)
            loss = F.cross_entropy(a, targets[indices])
            for W, b in weights:
                W.grad = None
                b.grad = None
            loss.backward()
            with torch.no_grad():
                for p, v in zip([p for layer in weights for p in layer], velocities, strict=True):
                    v *= MOMENTUM
                    v -= LEARNING_RATE * p.grad
                    p += v
            total += loss.item() * len(indices)
        return total / examples, [(W.detach(), b.detach()) for W, b in weights]

    return epoch


BUILDERS = {"checked": package_epoch, "unchecked": package_epoch, "torch": torch_epoch}


def run_worker(names: list[str], threads: int | None) -> None:
    if "torch" in names:
        processes.set_torch_threads(threads)
    for name in names:
        if name in PACKAGE_CONTENDERS:
            processes.import_package(PACKAGE_CONTENDERS[name])
    epochs: dict[str, Any] = {}

    def handle(operation: str, *arguments: Any) -> Any:
        if operation == "setup":
            sizes, examples, batch = arguments
            x_rows, labels, params = make_problem(sizes, examples)
            for name in names:
                epochs[name] = BUILDERS[name](sizes, x_rows, labels, params, batch)
            return None
        if operation == "run":  # one epoch's mean loss and trained weights, for agreement
            loss, weights = epochs[arguments[0]]()
            return loss, [(processes.as_numpy(W), processes.as_numpy(b)) for W, b in weights]
        if operation == "time":
            name, clock = arguments
            return processes.time_block(epochs[name], 1, clock)
        raise ValueError(operation)

    processes.serve(handle)


def check_agreement(results: dict[str, tuple[float, list[Any]]]) -> None:
    """The same epoch: same mean loss, same trained weights (up to the BLAS's rounding)."""
    names = list(results)
    reference_loss, reference = results[names[0]]
    for name in names[1:]:
        loss, weights = results[name]
        assert abs(loss - reference_loss) <= 1e-9 * abs(reference_loss), (name, loss)
        for (W, b), (want_W, want_b) in zip(weights, reference, strict=True):
            np.testing.assert_allclose(W, want_W, rtol=1e-8, atol=1e-11, err_msg=name)
            np.testing.assert_allclose(b, want_b, rtol=1e-8, atol=1e-11, err_msg=name)
    if "checked" in results and "unchecked" in results:  # the same code: bit for bit
        assert results["checked"][0] == results["unchecked"][0]
        pairs = zip(results["checked"][1], results["unchecked"][1], strict=True)
        for (W, b), (want_W, want_b) in pairs:
            np.testing.assert_array_equal(W, want_W)
            np.testing.assert_array_equal(b, want_b)


def table(samples: dict[str, list[float]], description: str, footer: str) -> str:
    medians = {name: median_and_spread(times) for name, times in samples.items()}
    lines = [
        "| contender | one epoch (s) | ÷ torch | ± (half IQR) |",
        "|---|---:|---:|---:|",
    ]
    reference = medians["torch"][0] if "torch" in medians else None
    for name, (median, spread) in medians.items():
        ratio = f"{median / reference:.2f}" if reference else "—"
        lines.append(f"| {name} | {median:.3f} | {ratio} | {spread * 50:.0f}% |")
    return "\n".join([*lines, "", description, "", footer])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--rounds", type=int, default=7, help="timed epochs per contender")
    parser.add_argument("--threads", type=int, default=1, help="BLAS and PyTorch threads")
    parser.add_argument("--clock", choices=list(processes.CLOCKS), default="wall")
    parser.add_argument("--examples", type=int, default=10_000)
    parser.add_argument("--hidden", type=int, default=512, help="width of both hidden layers")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--no-torch", action="store_true", help="leave PyTorch out")
    parser.add_argument(
        "--keep-freed-memory",
        action="store_true",
        help="tune glibc's malloc to keep freed memory, for every contender (see processes.py)",
    )
    parser.add_argument("--markdown", metavar="FILE", help="also write the table to FILE")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        run_worker(args.worker.split(","), args.threads or None)  # 0: library defaults
        return
    command = "python benchmarks/epoch.py " + " ".join(argv if argv is not None else sys.argv[1:])
    load_before = processes.load()
    sizes = (784, args.hidden, args.hidden, 10)
    names = ["checked" if checks else "unchecked" for checks in checks_settings()]
    if not args.no_torch:
        names.append("torch")
    workers = {
        name: Worker(
            SCRIPT,
            [name],
            args.threads,
            environment(
                args.threads,
                checks=PACKAGE_CONTENDERS.get(name),
                keep_freed_memory=args.keep_freed_memory,
            ),
        )
        for name in names
    }
    try:
        for name in names:
            workers[name].ask("setup", sizes, args.examples, args.batch)
        check_agreement({name: workers[name].ask("run", name) for name in names})
        samples: dict[str, list[float]] = {name: [] for name in names}
        for round_index in range(args.rounds):
            shift = round_index % len(names)
            for name in names[shift:] + names[:shift]:
                samples[name].append(workers[name].ask("time", name, args.clock))
            print(
                f"round {round_index + 1}: "
                + ", ".join(f"{name} {times[-1]:.3f} s" for name, times in samples.items()),
                flush=True,
            )
    finally:
        for worker in workers.values():
            worker.close()
    steps = -(-args.examples // args.batch)
    description = (
        f"One epoch of {'-'.join(map(str, sizes))} (ReLU, softmax cross-entropy), "
        f"{args.examples:,} synthetic examples, batch {args.batch} ({steps} steps), SGD with "
        f"momentum {MOMENTUM}, float64; typedbackprop's `train()` as a user calls it (running "
        "training metrics, features-first inputs as `load_dataset` gives them)."
    )
    footer = (
        f"Medians over {args.rounds} rounds ({args.clock} clock), each contender in its own "
        f"process; {processes.thread_note(args.threads)}; "
        f"{processes.malloc_note(args.keep_freed_memory)}. Machine: {processes.machine()}, load "
        f"average {load_before} before and {processes.load()} after; "
        f"{processes.versions(not args.no_torch)}. Command: `{command.strip()}`"
    )
    text = table(samples, description, footer)
    print(text)
    if args.markdown:
        with open(args.markdown, "w", encoding="utf-8") as handle:
            handle.write(text + "\n")


if __name__ == "__main__":
    main()
