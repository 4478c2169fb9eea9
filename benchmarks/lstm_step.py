"""Time one training step of the recall LSTM against PyTorch eager, on the CPU, in float64.

Usage::

    python benchmarks/lstm_step.py                  # hidden 32, 1 thread each, 3 x 30 rounds
    python benchmarks/lstm_step.py --hidden 64 --threads 2 --rounds 50 --repeats 5
    python benchmarks/lstm_step.py --checks off     # typedbackprop with TYPEDBACKPROP_CHECKS=0
    python benchmarks/lstm_step.py --markdown docs/snippets/benchmarks/lstm_step.md

The model reads a batch of recall sequences (:func:`typedbackprop.datasets.recall_dataset`, 30
tokens, the answer the first), one-hot, ``"vocab seq batch"``; an LSTM runs over them, and a
dense layer reads its last hidden state into the logits of the answer's classes, scored by
softmax cross-entropy. A step is the forward pass, the backward pass (BPTT) and an AdamW update:
:func:`~typedbackprop.nn.lstm.lstm_forward`, :func:`~typedbackprop.nn.lstm.lstm_backward`,
:func:`~typedbackprop.nn.losses.cross_entropy` and :class:`typedbackprop.optimizers.AdamW`,
against ``torch.nn.LSTM`` (float64; its recurrence a C++ loop), ``torch.nn.functional.linear``,
``F.cross_entropy``, ``loss.backward()`` and ``torch.optim.AdamW``. Each contender runs in its
own process with the same thread count (``OMP_NUM_THREADS`` and friends, read by NumPy's BLAS
and by PyTorch at start), from the same parameters on the same batches; before timing, the two
first steps' losses are compared (they must agree to 1e-10). The processes alternate
``--repeats`` times, so that a change in the machine's load hits both; the times printed are
medians over every round.
"""

import argparse
import json
import statistics
import subprocess
import sys
import time
from typing import Any

import numpy as np
import processes

BATCH = 32
SEQ = 30
LEARNING_RATE = 3e-3
WEIGHT_DECAY = 0.01


def problem(hidden: int, seed: int = 0) -> tuple[list[Any], list[tuple[np.ndarray, np.ndarray]]]:
    """The model's initial layers ``[LSTM, Dense]`` and the batches of every round
    (one-hot inputs ``"vocab seq batch"``, labels ``" batch"``)."""
    from typedbackprop.datasets import recall_dataset
    from typedbackprop.nn.affine import Dense
    from typedbackprop.plots import recurrent_at_initialisation

    rng = np.random.default_rng(seed)
    data = recall_dataset(length=SEQ, seed=seed)
    vocab, classes = data.vocab, int(data.y_train.max()) + 1
    lstm = recurrent_at_initialisation("lstm", vocab, hidden, rng, forget_bias=1.0)
    bound = 1.0 / np.sqrt(hidden)
    head = Dense(rng.uniform(-bound, bound, (classes, hidden)), rng.uniform(-bound, bound, classes))
    batches = []
    for _ in range(50):
        chosen = rng.integers(0, data.x_train.shape[1], size=BATCH)
        ids = data.x_train[:, chosen]  # (seq, batch)
        x = np.eye(vocab)[ids].transpose(2, 0, 1)  # (vocab, seq, batch), one-hot
        batches.append((np.ascontiguousarray(x), data.y_train[0, chosen]))
    return [lstm, head], batches


def run_ours(hidden: int, rounds: int) -> dict[str, Any]:
    import typedbackprop as tbp
    from typedbackprop.nn.affine import dense_backward, dense_forward
    from typedbackprop.nn.losses import cross_entropy
    from typedbackprop.nn.lstm import lstm_backward, lstm_forward
    from typedbackprop.optimizers import AdamW

    layers, batches = problem(hidden)
    optimizer = AdamW(learning_rate=LEARNING_RATE, weight_decay=WEIGHT_DECAY)
    state = optimizer.init(layers)
    losses, times = [], []
    for index in range(rounds + 1):
        x, labels = batches[index % len(batches)]
        start = time.perf_counter()
        lstm, head = layers
        hidden_states, lstm_cache = lstm_forward(lstm, x)
        h_last, c_last = lstm_cache.last_state
        logits, head_cache = dense_forward(head, h_last)
        loss, grad_logits = cross_entropy(logits, labels)
        grad_head, grad_h_last = dense_backward(grad_logits, head_cache)
        grad_lstm, _, _ = lstm_backward(
            np.zeros_like(hidden_states), lstm_cache, (grad_h_last, np.zeros_like(c_last))
        )
        layers, state = optimizer.step(layers, [grad_lstm, grad_head], state)
        times.append(time.perf_counter() - start)
        losses.append(loss)
    return {"losses": losses[:2], "times": times[1:], "checks": tbp.CHECKS_ENABLED}


def run_torch(hidden: int, rounds: int) -> dict[str, Any]:
    import torch
    import torch.nn.functional as F

    (lstm, head), batches = problem(hidden)
    gates = (
        lstm.cell.input_gate,
        lstm.cell.forget_gate,
        lstm.cell.cell_gate,
        lstm.cell.output_gate,
    )
    vocab = gates[0].W_ih.shape[1]
    module = torch.nn.LSTM(vocab, hidden, dtype=torch.float64)
    with torch.no_grad():  # PyTorch stacks the gates' rows in the order i, f, g, o
        for name, field in [("weight_ih_l0", "W_ih"), ("weight_hh_l0", "W_hh"),
                            ("bias_ih_l0", "b_ih"), ("bias_hh_l0", "b_hh")]:  # fmt: skip
            stacked = np.concatenate([getattr(gate, field) for gate in gates])
            getattr(module, name).copy_(torch.tensor(stacked))
    W_head = torch.tensor(head.W, requires_grad=True)
    b_head = torch.tensor(head.b, requires_grad=True)
    parameters = [*module.parameters(), W_head, b_head]
    optimizer = torch.optim.AdamW(parameters, lr=LEARNING_RATE, weight_decay=WEIGHT_DECAY)
    inputs = [  # (seq, batch, vocab), PyTorch's layout
        (torch.tensor(x.transpose(1, 2, 0).copy()), torch.tensor(labels, dtype=torch.int64))
        for x, labels in batches
    ]
    losses, times = [], []
    for index in range(rounds + 1):
        x, labels = inputs[index % len(inputs)]
        start = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        _, (h_last, _) = module(x)
        loss = F.cross_entropy(F.linear(h_last[0], W_head, b_head), labels)
        loss.backward()
        optimizer.step()
        times.append(time.perf_counter() - start)
        losses.append(float(loss))
    return {"losses": losses[:2], "times": times[1:], "threads": torch.get_num_threads()}


def spawn(worker: str, threads: int, hidden: int, rounds: int, checks: bool) -> dict[str, Any]:
    command = [sys.executable, __file__, "--worker", worker, "--hidden", str(hidden)]
    result = subprocess.run(
        [*command, "--rounds", str(rounds)],
        capture_output=True,
        text=True,
        env=processes.environment(threads, checks=checks),
        check=True,
    )
    return json.loads(result.stdout.splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hidden", type=int, default=32, help="the LSTM's hidden units")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--checks",
        choices=["on", "off"],
        default="on",
        help="typedbackprop's shape checks (TYPEDBACKPROP_CHECKS in its worker; default on)",
    )
    parser.add_argument("--worker", choices=["ours", "torch"])
    parser.add_argument("--markdown", metavar="FILE", help="also write the result to FILE")
    args = parser.parse_args()
    if args.worker is not None:
        run = run_ours if args.worker == "ours" else run_torch
        print(json.dumps(run(args.hidden, args.rounds)))
        return
    ours_times: list[float] = []
    torch_times: list[float] = []
    load_before = processes.load()
    for _ in range(args.repeats):  # alternate, so that a change in the load hits both
        checks_on = args.checks == "on"
        ours = spawn("ours", args.threads, args.hidden, args.rounds, checks_on)
        theirs = spawn("torch", args.threads, args.hidden, args.rounds, checks_on)
        for mine, expected in zip(ours["losses"], theirs["losses"], strict=True):
            if abs(mine - expected) > 1e-10 * abs(expected):
                raise SystemExit(f"the losses differ: {ours['losses']} against {theirs['losses']}")
        ours_times += ours["times"]
        torch_times += theirs["times"]
    ours_median, torch_median = statistics.median(ours_times), statistics.median(torch_times)
    checks = "on" if ours["checks"] else "off"
    print(
        f"LSTM step (recall, hidden {args.hidden}, seq {SEQ}, batch {BATCH}, float64, "
        f"{args.threads} thread(s), median of {args.repeats} x {args.rounds} rounds)"
    )
    print(f"  typedbackprop (checks {checks})  {ours_median * 1e3:8.2f} ms")
    print(f"  PyTorch eager               {torch_median * 1e3:8.2f} ms")
    print(f"  ratio                       {ours_median / torch_median:8.2f}x")
    if args.markdown:
        command = " ".join(["python", "benchmarks/lstm_step.py", *sys.argv[1:]])
        table = [
            "| typedbackprop, checks " + checks + " (ms) | PyTorch eager (ms) | ratio |",
            "|---:|---:|---:|",
            f"| {ours_median * 1e3:.2f} | {torch_median * 1e3:.2f} | "
            f"{ours_median / torch_median:.2f} |",
            "",
            f"One step (forward, BPTT, AdamW update) of an LSTM with {args.hidden} hidden units on "
            f"a batch of {BATCH} recall sequences of {SEQ} tokens, float64; medians over "
            f"{args.repeats} × {args.rounds} rounds, the two processes alternated; "
            f"{args.threads} thread(s) each. Machine: {processes.machine()}, load average "
            f"{load_before} before and {processes.load()} after; "
            f"{processes.versions(with_torch=True)}. Command: `{command}`",
        ]
        with open(args.markdown, "w", encoding="utf-8") as handle:
            handle.write("\n".join(table) + "\n")


if __name__ == "__main__":
    main()
