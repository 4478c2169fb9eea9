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

Contenders, each timed in blocks of about 20 ms, alternated round by round so that machine
drift hits all of them; the table gives medians:

- ``checked``: :func:`typedbackprop.network_loss_and_grads` with runtime checks on (the default);
- ``unchecked``: the same with ``TYPEDBACKPROP_CHECKS=0``;
- ``torch``: the same network in PyTorch eager autograd (``F.conv2d``, ``F.batch_norm``,
  ``F.max_pool2d``, ``F.linear``, ``F.cross_entropy``), float64, in a separate process, so that
  its OpenMP workers (started with ``OMP_WAIT_POLICY=PASSIVE``, not spinning) cannot slow the
  NumPy timings. Both processes use the same number of threads (``--threads``, default all
  cores): NumPy's BLAS through ``OPENBLAS_NUM_THREADS``/``OMP_NUM_THREADS``, PyTorch through
  ``torch.set_num_threads``.

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

import importlib  # noqa: E402
import pickle  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402
from types import ModuleType  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
BATCHES = (64, 256)
CHANNELS = (16, 32)


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


def make_problem(batch: int, seed: int = 0) -> tuple[list[Any], Any, Any]:
    """The convnet's layers (from the checked package), a batch of 8×8 images, labels."""
    rng = np.random.default_rng(seed)
    layers = CHECKED.models.convnet(rng, channels=CHANNELS)
    # Random β and γ: a γ of ones and a β of zeros would hide a swap of the two.
    layers = [
        type(layer)(rng.uniform(0.5, 1.5, layer.gamma.shape), rng.normal(0, 0.1, layer.beta.shape))
        if type(layer).__name__ == "BatchNorm"
        else layer
        for layer in layers
    ]
    return layers, rng.standard_normal((64, batch)), rng.integers(0, 10, batch)


def as_module(module: ModuleType, layers: list[Any]) -> list[Any]:
    """The same layers as records of ``module`` (each import of the package has its own)."""
    converted = []
    for layer in layers:
        kind = getattr(module.nn, type(layer).__name__)
        fields = {name: getattr(layer, name) for name in layer.__dataclass_fields__}
        converted.append(kind(**fields))
    return converted


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


def typedbackprop_step(module: ModuleType, layers: list[Any], x: Any, y: Any) -> Callable[[], Any]:
    layers = as_module(module, layers)
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


def time_block(step: Callable[[], Any], repeats: int) -> float:
    start = time.perf_counter()
    for _ in range(repeats):
        step()
    return (time.perf_counter() - start) / repeats


# --- PyTorch, in its own process ----------------------------------------------------------------

TORCH_CHILD = r"""
import pickle, sys, time
import torch
import torch.nn.functional as F

torch.set_num_threads(int(sys.argv[1]))
inbox, outbox = sys.stdin.buffer, sys.stdout.buffer


def receive():
    return pickle.load(inbox)


def send(value):
    pickle.dump(value, outbox)
    outbox.flush()


described, x, y = receive()
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
            h = F.conv2d(h, p["W"], p["b"], stride=settings["stride"], padding=settings["padding"])
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
    return loss.item()


loss = step()
send((loss, [{name: leaf.grad.numpy() for name, leaf in p.items()} for _, p, _ in params if p]))
while True:
    command = receive()
    if command is None:
        break
    start = time.perf_counter()
    for _ in range(command):
        step()
    send((time.perf_counter() - start) / command)
"""


class TorchProcess:
    """The PyTorch side: a child process that builds the same network and times blocks."""

    def __init__(self, layers: list[Any], x: Any, y: Any) -> None:
        environment = {
            **os.environ,
            "OMP_WAIT_POLICY": "PASSIVE",
            "OMP_NUM_THREADS": str(THREADS),
            "MKL_NUM_THREADS": str(THREADS),
        }
        self.process = subprocess.Popen(
            [sys.executable, "-c", TORCH_CHILD, str(THREADS)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=environment,
        )
        self._send((parameter_arrays(layers), x, y))
        self.result = self._receive()

    def _send(self, value: Any) -> None:
        assert self.process.stdin is not None
        pickle.dump(value, self.process.stdin)
        self.process.stdin.flush()

    def _receive(self) -> Any:
        assert self.process.stdout is not None
        return pickle.load(self.process.stdout)

    def time_block(self, repeats: int) -> float:
        self._send(repeats)
        return float(self._receive())

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


def benchmark(batch: int, rounds: int) -> dict[str, float]:
    layers, x, y = make_problem(batch)
    steps: dict[str, Callable[[], Any]] = {
        "checked": typedbackprop_step(CHECKED, layers, x, y),
        "unchecked": typedbackprop_step(UNCHECKED, layers, x, y),
    }
    torch_process = TorchProcess(layers, x, y)
    try:
        results = {name: step() for name, step in steps.items()}
        results["torch"] = torch_process.result
        check_agreement(results)
        single = min(time_block(steps["unchecked"], 1) for _ in range(5))
        repeats = max(1, int(0.02 / max(single, 1e-7)))
        timers: dict[str, Callable[[], float]] = {
            name: (lambda step=step: time_block(step, repeats)) for name, step in steps.items()
        }
        timers["torch"] = lambda: torch_process.time_block(repeats)
        for timer in timers.values():  # warm-up: first-signature checks, caches, threads
            timer()
        samples: dict[str, list[float]] = {name: [] for name in timers}
        names = list(timers)
        for round_index in range(rounds):
            shift = round_index % len(names)
            for name in names[shift:] + names[:shift]:
                samples[name].append(timers[name]())
    finally:
        torch_process.close()
    return {name: statistics.median(times) for name, times in samples.items()}


def table(results: dict[int, dict[str, float]], command: str) -> str:
    contenders = list(next(iter(results.values())))
    header = "| batch | " + " | ".join(f"{name} (ms) | ×torch" for name in contenders) + " |"
    lines = [header, "|---:|" + "---:|---:|" * len(contenders)]
    for batch, medians in results.items():
        cells = " | ".join(
            f"{medians[name] * 1e3:,.2f} | {medians[name] / medians['torch']:.2f}"
            for name in contenders
        )
        lines.append(f"| {batch} | {cells} |")
    import torch

    machine = f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores"
    versions = (
        f"Python {platform.python_version()}, NumPy {np.__version__}, PyTorch {torch.__version__}"
    )
    lines += [
        "",
        f"Medians per step (forward in training mode, loss, every gradient), float64, "
        f"{THREADS} thread(s) each. Convnet channels {CHANNELS}. Machine: {machine}; {versions}. "
        f"Command: `{command}`",
    ]
    return "\n".join(lines)


def train(seed: int) -> None:
    """Train the convnet on digits with ``models.CONVNET_TRAINING``; print accuracy and time."""
    data = CHECKED.load_dataset("digits", seed=seed)
    rng = np.random.default_rng(seed)
    layers = CHECKED.models.convnet(rng, channels=CHANNELS)
    states = CHECKED.initial_states(layers)
    start = time.perf_counter()

    def on_epoch(epoch: int, _: list[Any], history: Any) -> None:
        print(
            f"epoch {epoch:2d}  loss {history.loss[-1]:.4f}  test accuracy "
            f"{history.test_accuracy[-1]:.4f}  {time.perf_counter() - start:6.1f} s",
            flush=True,
        )

    settings = CHECKED.models.CONVNET_TRAINING
    _, history = CHECKED.training.train_network(
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


CHECKED = load_typedbackprop(checks=True)
UNCHECKED = load_typedbackprop(checks=False)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=15, help="timed rounds per contender")
    parser.add_argument("--threads", type=int, default=THREADS, help="threads for each side")
    parser.add_argument("--batch", type=int, action="append", help="batch size (repeatable)")
    parser.add_argument("--markdown", metavar="FILE", help="also write the step table to FILE")
    parser.add_argument("--train", action="store_true", help="train on digits instead")
    parser.add_argument("--seed", type=int, default=0, help="the seed of --train")
    args = parser.parse_args(argv)
    if args.train:
        train(args.seed)
        return
    results = {}
    for batch in args.batch or BATCHES:
        results[batch] = benchmark(batch, args.rounds)
        print(
            f"batch {batch}: "
            + ", ".join(f"{k} {v * 1e3:,.2f} ms" for k, v in results[batch].items()),
            flush=True,
        )
    command = "python benchmarks/convnet_step.py " + " ".join(
        argv if argv is not None else sys.argv[1:]
    )
    text = table(results, command.strip())
    print(text)
    if args.markdown:
        Path(args.markdown).write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
