"""Where one step's time goes: typedbackprop against the tight NumPy floor, item by item.

Usage::

    python benchmarks/overhead.py                     # the question's 3-4-4-2 network
    python benchmarks/overhead.py --network medium    # 2-64-64-1, batch 256
    python benchmarks/overhead.py --markdown docs/snippets/benchmarks/overhead.md

The floor (``benchmarks/step.py``) makes exactly the package's NumPy calls, so the package's
time above it is the price of its structure and of its checks. This script splits that price
by adding the structure one layer at a time and measuring each step, all of which must give
the floor's results bit for bit:

1. the floor: NumPy calls, inline;
2. the package's math functions (``affine_forward``, ``sigmoid_forward``, ...,
   ``affine_grad_params``) called one after another by hand;
3. ``network_loss_and_grads`` over the layers: the layer contract (a family per layer, a cache
   record per layer, a gradient record per dense layer);
4. ``loss_and_grads``: the MLP API, which also checks the names, that the layers chain, the
   targets, and builds the layer sequence: the unchecked package;
5. with checks on, ``loss_and_grads`` inside a call that has already vouched for it: every
   inner checked call runs through its wrapper, which finds the call vouched for, and ``x``
   and ``y`` are checked for NaN and infinity;
6. ``loss_and_grads`` with checks on, the outer check included: the checked package.

Rows 1-4 run in one worker process with checks off, rows 5-6 in one with checks on (one BLAS
thread and the malloc settings of ``step.py``), timed with the process's CPU clock, medians
over alternated blocks. For each step, cProfile counts the Python function calls it makes, the
calls into ``checking.py`` and the records (dataclasses) it creates.
"""

import argparse
import cProfile
import os
import statistics
import sys
from typing import Any

import numpy as np
import processes
import step
from processes import Worker, checks_settings, environment

SCRIPT = os.path.abspath(__file__)


def step_times(steps: dict[str, Any], blocks: int, block_s: float) -> dict[str, float]:
    """Median seconds per step of each, blocks alternated."""
    single = min(processes.time_block(steps["floor"], 1) for _ in range(5))
    repeats = max(1, round(block_s / single))
    for function in steps.values():
        processes.time_block(function, repeats, "cpu")
    samples: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(blocks):
        for name, function in steps.items():
            samples[name].append(processes.time_block(function, repeats, "cpu"))
    return {name: statistics.median(times) for name, times in samples.items()}


def counts(function: Any) -> dict[str, float]:
    """Per call of ``function``: Python calls, records created, calls into checking.py."""
    function()
    profile = cProfile.Profile()
    calls = 200
    profile.enable()
    for _ in range(calls):
        function()
    profile.disable()
    found = {"python": 0, "records": 0, "checking": 0, "finite": 0}
    for entry in profile.getstats():
        code = entry.code
        if isinstance(code, str):  # a C function: NumPy's, a dict's
            continue
        if code.co_filename == "<string>" and code.co_name == "__init__":
            found["records"] += entry.callcount  # a dataclass's generated __init__
        elif code.co_name == "require_finite":
            found["finite"] += entry.callcount
        elif f"{os.sep}checking{os.sep}" in code.co_filename:  # the checking package
            found["checking"] += entry.callcount
        else:
            found["python"] += entry.callcount
    return {name: value / calls for name, value in found.items()}


def functions_step(network: step.Network, params: Any, x: Any, y: Any) -> Any:
    """The package's math functions called one after another, by hand: no network, no records."""
    import typedbackprop as tbp

    forward = {"sigmoid": tbp.nn.sigmoid_forward, "relu": tbp.nn.relu_forward}[network.activation]
    backward = {"sigmoid": tbp.nn.sigmoid_backward, "relu": tbp.nn.relu_backward}[
        network.activation
    ]
    loss_function = tbp.nn.LOSSES[network.loss].function  # of a_L = z_L, or of the logits z_L
    last = len(params) - 1

    def run() -> Any:
        inputs, pre_activations = [], []
        a = x
        for index, (W, b) in enumerate(params):
            inputs.append(a)
            z = tbp.nn.affine_forward(W, b, a)
            pre_activations.append(z)
            if index < last:
                a = forward(z)
        loss, delta = loss_function(z, y)
        grads = []
        for index in range(last, -1, -1):
            grads.append(tbp.nn.affine_grad_params(delta, inputs[index]))
            if index == 0:
                break
            grad_a = tbp.nn.affine_grad_input(delta, params[index][0])
            delta = backward(grad_a, pre_activations[index - 1], inputs[index])
        return loss, grads[::-1]

    return run


def sequence_step(network: step.Network, params: Any, x: Any, y: Any) -> Any:
    """``network_loss_and_grads`` over the layers: the layer contract, without the MLP API."""
    import typedbackprop as tbp

    layers = [tbp.Dense(W, b) for W, b in params]
    sequence = tbp.mlp(layers, network.activation, network.output_activation)
    if network.output_activation == "identity":
        sequence.pop()  # as loss_and_grads does

    def run() -> Any:
        loss, grads = tbp.network_loss_and_grads(sequence, x, y, network.loss)
        return loss, [(grad.W, grad.b) for grad in grads[0::2]]

    return run


def measure(network_name: str, blocks: int, block_s: float) -> dict[str, Any]:
    """Every row's time and counts, in this process (whose check setting is the environment's)."""
    import typedbackprop as tbp

    network = step.BY_NAME[network_name]
    params, x, y = step.make_problem(network)
    steps = {"floor": step.floor_step(network, params, x, y)}
    if network.short == "question":
        steps["question"] = step.question_step(network, params, x, y)
    if not tbp.CHECKS_ENABLED:
        steps["functions"] = functions_step(network, params, x, y)
        steps["sequence"] = sequence_step(network, params, x, y)
    steps["package"] = step.package_step(network, params, x, y)
    trust = getattr(tbp.checking, "trust", None) if tbp.CHECKS_ENABLED else None
    if trust is not None:
        package = steps["package"]

        def vouched_for() -> Any:
            trust.depth += 1
            try:
                return package()
            finally:
                trust.depth -= 1

        package()  # the first call checks in full and vouches for the signature
        steps["vouched"] = vouched_for
    reference_loss, reference_grads = steps["floor"]()
    for name, function in steps.items():
        if name == "question":
            continue
        loss, grads = function()
        assert loss == reference_loss, name
        for (grad_W, grad_b), (want_W, want_b) in zip(grads, reference_grads, strict=True):
            np.testing.assert_array_equal(grad_W, want_W, err_msg=name)
            np.testing.assert_array_equal(grad_b, want_b, err_msg=name)
    return {
        "times": step_times(steps, blocks, block_s),
        "counts": {name: counts(function) for name, function in steps.items()},
    }


def run_worker(names: list[str], threads: int | None) -> None:
    def handle(operation: str, *arguments: Any) -> Any:
        if operation == "measure":
            return measure(*arguments)
        raise ValueError(operation)

    processes.serve(handle)


ROWS = [  # (check setting, step, what it adds to the row above)
    (False, "question", "the question's hand-written step (for reference)"),
    (False, "floor", "**the floor**: the package's NumPy calls, inline"),
    (False, "functions", "+ one function call per operation (`affine_forward`, ...)"),
    (False, "sequence", "+ the layer contract: families, caches, gradient records"),
    (False, "package", "+ the MLP API: names, layers chaining, targets = **unchecked**"),
    (True, "vouched", "+ checked wrappers, vouched for; finite checks of x and y"),
    (True, "package", "+ the outer check: the call's signature, its look-up = **checked**"),
]


def table(network: step.Network, results: dict[bool, dict[str, Any]], footer: str) -> str:
    """One row per layer of structure, each measured; counts per step from cProfile."""
    lines = [
        "| step | µs | + µs | Python calls | in checking.py | records |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    previous = None
    for checks, name, label in ROWS:
        result = results.get(checks)
        if result is None or name not in result["times"]:
            continue
        time, count = result["times"][name], result["counts"][name]
        added = "" if previous is None or name == "question" else f"{(time - previous) * 1e6:+.1f}"
        lines.append(
            f"| {label} | {time * 1e6:.1f} | {added} | {count['python']:g} | "
            f"{count['checking'] + count['finite']:g} | {count['records']:g} |"
        )
        if name != "question":
            previous = time
    title = f"{network.name}, batch {network.batch}"
    return "\n".join([f"One step of the {title}:", "", *lines, "", footer])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--network", choices=list(step.BY_NAME), default="question")
    parser.add_argument("--blocks", type=int, default=25, help="timed blocks per step")
    parser.add_argument("--block-ms", type=float, default=10.0, help="floor's time per block")
    parser.add_argument("--markdown", metavar="FILE", help="also write the table to FILE")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        run_worker(args.worker.split(","), args.threads or None)
        return
    command = "python benchmarks/overhead.py " + " ".join(
        argv if argv is not None else sys.argv[1:]
    )
    load_before = processes.load()
    results = {}
    for checks in checks_settings():
        worker = Worker(SCRIPT, ["package"], 1, environment(1, checks=checks))
        try:
            results[checks] = worker.ask("measure", args.network, args.blocks, args.block_ms / 1000)
        finally:
            worker.close()
    footer = (
        f"Medians over {args.blocks} blocks of about {args.block_ms:g} ms of steps "
        "(the process's CPU clock), alternated; "
        "unchecked rows in one process, checked rows in another; each step's results equal "
        f"the floor's bit for bit; {processes.thread_note(1)}; "
        f"{processes.malloc_note(True)}. Machine: {processes.machine()}, load average "
        f"{load_before} before and {processes.load()} after; {processes.versions(False)}. "
        f"Command: `{command.strip()}`"
    )
    text = table(step.BY_NAME[args.network], results, footer)
    print(text)
    if args.markdown:
        with open(args.markdown, "w", encoding="utf-8") as handle:
            handle.write(text + "\n")


if __name__ == "__main__":
    main()
