"""Time one training step of the digits convnet against PyTorch eager, and train it on digits.

Usage::

    python benchmarks/convnet_step.py                    # step timings, batch 32 and 128
    python benchmarks/convnet_step.py --rounds 5         # quicker, noisier
    python benchmarks/convnet_step.py --threads 1        # both sides on one thread
    python benchmarks/convnet_step.py --train            # train on digits, accuracy and time
    python benchmarks/convnet_step.py --markdown FILE    # also write the step table to FILE

A step is what training does per batch: the forward pass in training mode (batch statistics,
the running statistics updated), the loss, and the gradient of every parameter. The network is
:func:`typedbackprop.models.convnet` (two stages of conv 3×3, batch norm, ReLU, 2×2 max pool,
then dense and softmax), on 8×8 one-channel images, float64, CPU.

Contenders, each in a process of its own with the same thread count, timed in blocks of about
20 ms, alternated round by round so that machine drift hits all of them; the table gives medians:

- ``checked``: :func:`typedbackprop.network_loss_and_grads` with runtime checks on (the default);
- ``unchecked``: the same with ``TYPEDBACKPROP_CHECKS=0``;
- ``torch``: the same network in PyTorch eager autograd (``F.conv2d``, ``F.batch_norm``,
  ``F.max_pool2d``, ``F.linear``, ``F.cross_entropy``), float64.

Every process starts with ``OMP_WAIT_POLICY=PASSIVE`` (an idle OpenMP pool sleeps rather than
spins) and ``--threads`` threads (default all cores): NumPy's BLAS through
``OPENBLAS_NUM_THREADS``/``OMP_NUM_THREADS``, PyTorch through ``torch.set_num_threads``.

Beside each time, the minor page faults per step: glibc's ``malloc`` gives a freed heap back to
the system once the free space at its top passes a threshold (twice the largest block it has
``mmap``-ed and freed, by default), and a step that then allocates as much again faults every
page of it back in, at a few microseconds a page. How often that happens depends on each
process's history, not only on the code (see ``processes.MALLOC_SETTINGS``):
``--keep-freed-memory`` sets those settings for every contender, so that none pays it.
``--clock cpu`` times each process's CPU time, which other programs on a busy machine do not
inflate.

Before anything is timed the three must agree: the same loss and the same gradients, to a
relative 1e-9.

``--train`` trains the convnet on scikit-learn's digits with
:func:`typedbackprop.training.train_network` and the settings
``typedbackprop.models.CONVNET_TRAINING`` (its states carry batch norm's running statistics),
and prints the test accuracy and the wall-clock time after every epoch.
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
    return os.cpu_count() or 1


THREADS = _threads_from_argv()
for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_variable] = str(THREADS)

import functools  # noqa: E402
import importlib  # noqa: E402
import pickle  # noqa: E402
import platform  # noqa: E402
import resource  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402
from types import ModuleType  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
from processes import CLOCKS, MALLOC_SETTINGS, THREAD_VARIABLES, load, machine  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
BATCHES = (64, 256)
CHANNELS = (16, 32)
CONTENDERS = ("checked", "unchecked", "torch")


def load_typedbackprop(checks: bool) -> ModuleType:
    """A fresh copy of the package, imported with ``TYPEDBACKPROP_CHECKS`` set as asked; its
    ``models`` and ``training`` modules are attributes of it."""
    for name in [name for name in sys.modules if name.partition(".")[0] == "typedbackprop"]:
        del sys.modules[name]
    previous = os.environ.get("TYPEDBACKPROP_CHECKS")
    os.environ["TYPEDBACKPROP_CHECKS"] = "1" if checks else "0"
    try:
        module = importlib.import_module("typedbackprop")
        importlib.import_module("typedbackprop.models")
        importlib.import_module("typedbackprop.training")
    finally:
        if previous is None:
            del os.environ["TYPEDBACKPROP_CHECKS"]
        else:
            os.environ["TYPEDBACKPROP_CHECKS"] = previous
    assert module.CHECKS_ENABLED is checks
    for name in [name for name in sys.modules if name.partition(".")[0] == "typedbackprop"]:
        del sys.modules[name]
    return module


@functools.cache
def checked_package() -> ModuleType:
    """The package with checks on, for the problem and ``--train`` (the parent's copy)."""
    return load_typedbackprop(checks=True)


def make_problem(batch: int, seed: int = 0) -> tuple[list[Any], Any, Any]:
    """The convnet's layers (from the checked package), a batch of 8×8 images, labels."""
    rng = np.random.default_rng(seed)
    layers = checked_package().models.convnet(rng, channels=CHANNELS)
    # Random β and γ: a γ of ones and a β of zeros would hide a swap of the two.
    layers = [
        type(layer)(rng.uniform(0.5, 1.5, layer.gamma.shape), rng.normal(0, 0.1, layer.beta.shape))
        if type(layer).__name__ == "BatchNorm"
        else layer
        for layer in layers
    ]
    return layers, rng.standard_normal((64, batch)), rng.integers(0, 10, batch)


def from_described(module: ModuleType, described: list[Any]) -> list[Any]:
    """The layers as records of ``module``, from :func:`parameter_arrays`' description."""
    return [getattr(module.nn, kind)(**arrays, **settings) for kind, arrays, settings in described]


def parameter_arrays(layers: list[Any]) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    """Per layer: its kind, its parameter arrays and its settings, for the PyTorch process."""
    described = []
    for layer in layers:
        arrays, settings = {}, {}
        for name in layer.__dataclass_fields__:
            value = getattr(layer, name)
            (arrays if isinstance(value, np.ndarray) else settings)[name] = value
        described.append((type(layer).__name__, arrays, settings))
    return described


def typedbackprop_step(
    module: ModuleType, described: list[Any], x: Any, y: Any
) -> Callable[[], Any]:
    layers = from_described(module, described)
    states = module.initial_states(layers)
    mode = module.Mode(training=True)

    def step() -> Any:
        loss, grads = module.network_loss_and_grads(layers, x, y, "cross_entropy", mode, states)
        return loss, [
            {
                name: getattr(grad, name)
                for name in ("W", "b", "gamma", "beta")
                if hasattr(grad, name)
            }
            for grad in grads
            if grad is not None
        ]

    return step


# --- each contender in its own process ---------------------------------------------------------

TORCH_STEP = r"""
import torch
import torch.nn.functional as F


def torch_step(described, x, y):
    params = [
        (kind, {name: torch.tensor(v, requires_grad=True) for name, v in arrays.items()}, settings)
        for kind, arrays, settings in described
    ]
    running = {
        index: (torch.zeros(p["gamma"].shape, dtype=torch.float64),
                torch.ones(p["gamma"].shape, dtype=torch.float64))
        for index, (kind, p, _) in enumerate(params) if kind == "BatchNorm"
    }
    inputs = torch.tensor(x)
    labels = torch.tensor(y)
    leaves = [leaf for _, p, _ in params for leaf in p.values()]

    def step():
        for leaf in leaves:
            leaf.grad = None
        batch = inputs.shape[1]
        h = inputs.T.reshape(batch, 1, 8, 8)  # our (64, batch) columns as NCHW images
        for index, (kind, p, settings) in enumerate(params):
            if kind == "Conv2d":
                h = F.conv2d(h, p["W"], p["b"], stride=settings["stride"],
                             padding=settings["padding"])
            elif kind == "BatchNorm":
                mean, var = running[index]
                h = F.batch_norm(h, mean, var, p["gamma"], p["beta"], training=True,
                                 momentum=settings["momentum"], eps=settings["eps"])
            elif kind == "Activation" and settings["name"] == "relu":
                h = F.relu(h)
            elif kind == "MaxPool2d":
                h = F.max_pool2d(h, settings["window"], settings["stride"])
            elif kind == "Flatten":
                h = h.reshape(batch, -1)
            elif kind == "Dense":
                h = F.linear(h, p["W"], p["b"])
        loss = F.cross_entropy(h, labels)
        loss.backward()
        return loss.item(), [{name: leaf.grad.numpy() for name, leaf in p.items()}
                             for _, p, _ in params if p]

    return step
"""


def worker(name: str, clock: str) -> None:
    """A contender's process: build its step from the problem it is sent, then time blocks.

    It answers the problem with its first step's ``(loss, gradients)``, and each block's size
    with ``(seconds per step, minor page faults per step)``; ``None`` ends it.
    """
    inbox, outbox = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # stray prints stay out of the replies
    described, x, y = pickle.load(inbox)
    if name == "torch":
        import torch

        torch.set_num_threads(THREADS)
        namespace: dict[str, Any] = {}
        exec(TORCH_STEP, namespace)
        step = namespace["torch_step"](described, x, y)
    else:
        module = load_typedbackprop(checks=name == "checked")
        step = typedbackprop_step(module, described, x, y)
    pickle.dump(step(), outbox)
    outbox.flush()
    now = CLOCKS[clock]
    while (repeats := pickle.load(inbox)) is not None:
        faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        start = now()
        for _ in range(repeats):
            step()
        seconds = (now() - start) / repeats
        faults = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults) / repeats
        pickle.dump((seconds, faults), outbox)
        outbox.flush()


class ContenderProcess:
    """One contender in a child process (this script run as ``--worker NAME``)."""

    def __init__(
        self, name: str, problem: tuple[Any, ...], clock: str, keep_freed_memory: bool
    ) -> None:
        environment = {
            **os.environ,
            "OMP_WAIT_POLICY": "PASSIVE",
            **dict.fromkeys(THREAD_VARIABLES, str(THREADS)),
        }
        for variable in MALLOC_SETTINGS:
            environment.pop(variable, None)
        if keep_freed_memory:
            environment.update(MALLOC_SETTINGS)
        self.process = subprocess.Popen(
            [
                sys.executable,
                __file__,
                "--worker",
                name,
                "--threads",
                str(THREADS),
                "--clock",
                clock,
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=environment,
        )
        self._send(problem)
        self.result = self._receive()

    def _send(self, value: Any) -> None:
        assert self.process.stdin is not None
        pickle.dump(value, self.process.stdin)
        self.process.stdin.flush()

    def _receive(self) -> Any:
        assert self.process.stdout is not None
        return pickle.load(self.process.stdout)

    def time_block(self, repeats: int) -> tuple[float, float]:
        self._send(repeats)
        seconds, faults = self._receive()
        return float(seconds), float(faults)

    def close(self) -> None:
        self._send(None)
        self.process.wait(timeout=30)


def check_agreement(results: dict[str, Any]) -> None:
    """Every contender must compute the same loss and gradients before anything is timed."""
    reference_loss, reference_grads = results["torch"]
    for name, (loss, grads) in results.items():
        assert abs(loss - reference_loss) <= 1e-9 * abs(reference_loss), (name, loss)
        for mine, theirs in zip(grads, reference_grads, strict=True):
            for key in theirs:
                scale = np.max(np.abs(theirs[key]))
                # A convolution's bias before batch norm has gradient 0 in exact arithmetic:
                # both sides give rounding noise there, so compare to the weights' scale.
                floor = 1e-12 * max(np.max(np.abs(g)) for g in theirs.values())
                error = np.max(np.abs(np.asarray(mine[key]) - theirs[key]))
                assert error <= 1e-9 * scale + floor, (name, key, error, scale)


def benchmark(
    batch: int, rounds: int, clock: str, keep_freed_memory: bool
) -> dict[str, tuple[float, float]]:
    """Per contender: the median seconds per step and the median page faults per step."""
    layers, x, y = make_problem(batch)
    problem = (parameter_arrays(layers), x, y)
    contenders: dict[str, ContenderProcess] = {}
    try:
        for name in CONTENDERS:
            contenders[name] = ContenderProcess(name, problem, clock, keep_freed_memory)
        check_agreement({name: contender.result for name, contender in contenders.items()})
        single = min(contenders["unchecked"].time_block(1)[0] for _ in range(5))
        repeats = max(1, int(0.02 / max(single, 1e-7)))
        for contender in contenders.values():  # warm-up: first-signature checks, caches, threads
            contender.time_block(repeats)
        samples: dict[str, list[tuple[float, float]]] = {name: [] for name in contenders}
        names = list(contenders)
        for round_index in range(rounds):
            shift = round_index % len(names)
            for name in names[shift:] + names[:shift]:
                samples[name].append(contenders[name].time_block(repeats))
    finally:
        for contender in contenders.values():
            contender.close()
    return {
        name: (
            statistics.median(seconds for seconds, _ in values),
            statistics.median(faults for _, faults in values),
        )
        for name, values in samples.items()
    }


def table(
    results: dict[int, dict[str, tuple[float, float]]],
    command: str,
    clock: str,
    keep_freed_memory: bool,
    load_before: str,
) -> str:
    contenders = list(next(iter(results.values())))
    header = (
        "| batch | "
        + " | ".join(f"{name} (ms) | ×torch | faults/step" for name in contenders)
        + " |"
    )
    lines = [header, "|---:|" + "---:|---:|---:|" * len(contenders)]
    for batch, medians in results.items():
        torch_seconds = medians["torch"][0]
        cells = " | ".join(
            f"{seconds * 1e3:,.2f} | {seconds / torch_seconds:.2f} | {faults:,.0f}"
            for seconds, faults in medians.values()
        )
        lines.append(f"| {batch} | {cells} |")
    import torch

    versions = (
        f"Python {platform.python_version()}, NumPy {np.__version__}, PyTorch {torch.__version__}"
    )
    malloc = (
        "glibc malloc keeping freed memory for every contender ("
        + ", ".join(f"{name}={value}" for name, value in MALLOC_SETTINGS.items())
        + ")"
        if keep_freed_memory
        else "glibc malloc as it comes"
    )
    lines += [
        "",
        f"Medians per step (forward in training mode, loss, every gradient), float64, "
        f"{THREADS} thread(s) each, each contender in its own process, {clock} clock, {malloc}; "
        f"faults/step: minor page faults per step. Convnet channels {CHANNELS}. "
        f"Machine: {machine()}, load average {load_before} before and {load()} after; "
        f"{versions}. Command: `{command}`",
    ]
    return "\n".join(lines)


def train(seed: int) -> None:
    """Train the convnet on digits with ``models.CONVNET_TRAINING``; print accuracy and time."""
    data = checked_package().load_dataset("digits", seed=seed)
    rng = np.random.default_rng(seed)
    layers = checked_package().models.convnet(rng, channels=CHANNELS)
    states = checked_package().initial_states(layers)
    start = time.perf_counter()

    def on_epoch(epoch: int, _: list[Any], history: Any) -> None:
        print(
            f"epoch {epoch:2d}  loss {history.loss[-1]:.4f}  test accuracy "
            f"{history.test_accuracy[-1]:.4f}  {time.perf_counter() - start:6.1f} s",
            flush=True,
        )

    settings = checked_package().models.CONVNET_TRAINING
    _, history = checked_package().training.train_network(
        layers,
        "cross_entropy",
        data.x_train,
        data.y_train,
        rng=rng,
        x_test=data.x_test,
        y_test=data.y_test,
        on_epoch=on_epoch,
        train_metrics=False,
        states=states,
        epochs=int(settings["epochs"]),
        batch_size=int(settings["batch_size"]),
        learning_rate=settings["learning_rate"],
        momentum=settings["momentum"],
    )
    print(
        f"seed {seed}: test accuracy {history.test_accuracy[-1]:.4f} after {settings['epochs']} "
        f"epochs in {time.perf_counter() - start:.1f} s ({THREADS} thread(s); {settings})"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=15, help="timed rounds per contender")
    parser.add_argument("--threads", type=int, default=THREADS, help="threads for each side")
    parser.add_argument("--batch", type=int, action="append", help="batch size (repeatable)")
    parser.add_argument("--markdown", metavar="FILE", help="also write the step table to FILE")
    parser.add_argument("--clock", choices=list(CLOCKS), default="wall")
    parser.add_argument(
        "--keep-freed-memory",
        action="store_true",
        help="tune glibc's malloc to keep freed memory, for every contender (see processes.py)",
    )
    parser.add_argument("--train", action="store_true", help="train on digits instead")
    parser.add_argument("--seed", type=int, default=0, help="the seed of --train")
    parser.add_argument(
        "--worker", choices=["checked", "unchecked", "torch"], help=argparse.SUPPRESS
    )
    args = parser.parse_args(argv)
    if args.worker:
        worker(args.worker, args.clock)
        return
    if args.train:
        train(args.seed)
        return
    load_before = load()
    results = {}
    for batch in args.batch or BATCHES:
        results[batch] = benchmark(batch, args.rounds, args.clock, args.keep_freed_memory)
        print(
            f"batch {batch}: "
            + ", ".join(
                f"{name} {seconds * 1e3:,.2f} ms ({faults:,.0f} faults)"
                for name, (seconds, faults) in results[batch].items()
            ),
            flush=True,
        )
    command = "python benchmarks/convnet_step.py " + " ".join(
        argv if argv is not None else sys.argv[1:]
    )
    text = table(results, command.strip(), args.clock, args.keep_freed_memory, load_before)
    print(text)
    if args.markdown:
        Path(args.markdown).write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
