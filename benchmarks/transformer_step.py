"""Time one training step of the small transformer against PyTorch eager, on the CPU, in float64.

Usage::

    python benchmarks/transformer_step.py                  # 1 thread each, 3 x 30 rounds
    python benchmarks/transformer_step.py --threads 2 --rounds 50 --repeats 5
    python benchmarks/transformer_step.py --markdown docs/snippets/benchmarks/transformer_step.md

A step is the loss and every parameter's gradient on a batch of the sort task, then an AdamW
update: :func:`typedbackprop.network_loss_and_grads` and :class:`typedbackprop.optimizers.AdamW`
against the same model written the way nanoGPT writes it (``F.linear`` on ``(batch, seq,
features)``, ``F.scaled_dot_product_attention``, ``loss.backward()``, ``torch.optim.AdamW``).
Each contender runs in its own process with the same thread count (``OMP_NUM_THREADS`` and
friends, read by NumPy's BLAS and by PyTorch at start), starting from the same parameters on
the same batches; before timing, the two first steps' losses are compared (they must agree to
1e-10). The two processes alternate ``--repeats`` times, so that a change in the machine's load
hits both; the times printed are medians over every round.

``--clock cpu`` times each step on the worker's CPU time (``time.process_time``) instead of the
wall clock: other programs on a busy machine do not inflate it. Each contender also reports its
minor page faults per step (median): glibc's ``malloc`` gives freed memory back to the system
when more than a threshold of it lies at the top of the heap, and the threshold moves with the
process's history (see ``processes.MALLOC_SETTINGS``), so a step whose temporaries outgrow it
faults their pages in afresh every time. Both contenders run with glibc's settings as they come;
``--keep-freed-memory`` sets ``processes.MALLOC_SETTINGS`` for both. After the times, each
contender's heap after a step (median, ``processes.heap``): what glibc holds from the system and
how much of it is free inside, below blocks still in use, where the next step's arrays land
without a fault.
"""

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
from typing import Any

import numpy as np
import processes

THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
BATCH = 64


def problem(seed: int = 0) -> tuple[list[Any], list[tuple[np.ndarray, np.ndarray]]]:
    """The model's initial layers and the batches of every round (ids, answers)."""
    from typedbackprop.datasets import sort_dataset
    from typedbackprop.models import transformer

    rng = np.random.default_rng(seed)
    data = sort_dataset(seed=seed)
    layers = transformer(rng)
    batches = []
    for _ in range(200):
        chosen = rng.integers(0, data.x_train.shape[1], size=BATCH)
        batches.append((data.x_train[:, chosen], data.y_train[:, chosen]))
    return layers, batches


def _minor_faults() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def run_ours(rounds: int, clock: str) -> dict[str, Any]:
    import typedbackprop as tbp
    from typedbackprop.optimizers import AdamW

    layers, batches = problem()
    optimizer = AdamW(learning_rate=3e-3)
    state = optimizer.init(layers)
    now = processes.CLOCKS[clock]
    losses, times, faults, heaps = [], [], [], []
    for index in range(rounds + 1):
        x, y = batches[index % len(batches)]
        faults_before, start = _minor_faults(), now()
        loss, grads = tbp.network_loss_and_grads(layers, x, y, "token_cross_entropy")
        layers, state = optimizer.step(layers, grads, state)
        times.append(now() - start)
        faults.append(_minor_faults() - faults_before)
        heaps.append(processes.heap())
        losses.append(loss)
    return {
        "losses": losses[:2],
        "times": times[1:],
        "faults": faults[1:],
        "heaps": heaps[1:],
        "checks": tbp.CHECKS_ENABLED,
    }


def run_torch(rounds: int, clock: str) -> dict[str, Any]:
    import torch
    import torch.nn.functional as F

    layers, batches = problem()
    embedding, positions, block, norm, keep, head = layers
    heads, head_dim, features = block.attention.W_query.shape

    def tensor(value: np.ndarray, shape: tuple[int, ...] | None = None) -> torch.Tensor:
        value = value.reshape(shape) if shape is not None else value
        return torch.tensor(value, dtype=torch.float64, requires_grad=True)

    rows = (heads * head_dim, features)
    p = {
        "wte": tensor(embedding.table),
        "wpe": tensor(positions.table),
        "ln1_w": tensor(block.attention_norm.gamma),
        "ln1_b": tensor(block.attention_norm.beta),
        "W_q": tensor(block.attention.W_query, rows),
        "b_q": tensor(block.attention.b_query, (rows[0],)),
        "W_k": tensor(block.attention.W_key, rows),
        "W_v": tensor(block.attention.W_value, rows),
        "b_v": tensor(block.attention.b_value, (rows[0],)),
        "W_o": tensor(block.attention.W_output, (features, rows[0])),
        "b_o": tensor(block.attention.b_output),
        "ln2_w": tensor(block.feedforward_norm.gamma),
        "ln2_b": tensor(block.feedforward_norm.beta),
        "W_up": tensor(block.feedforward.W_up),
        "b_up": tensor(block.feedforward.b_up),
        "W_down": tensor(block.feedforward.W_down),
        "b_down": tensor(block.feedforward.b_down),
        "lnf_w": tensor(norm.gamma),
        "lnf_b": tensor(norm.beta),
        "W_head": tensor(head.W),
        "b_head": tensor(head.b),
    }

    def loss_of(ids: torch.Tensor, answers: torch.Tensor) -> torch.Tensor:
        batch, seq = ids.shape
        x = p["wte"][ids] + p["wpe"][:seq]  # (batch, seq, features)
        h = F.layer_norm(x, (features,), p["ln1_w"], p["ln1_b"])

        def split(t: torch.Tensor) -> torch.Tensor:  # (batch, heads, seq, head_dim)
            return t.view(batch, seq, heads, head_dim).transpose(1, 2)

        q = split(F.linear(h, p["W_q"], p["b_q"]))
        k = split(F.linear(h, p["W_k"]))
        v = split(F.linear(h, p["W_v"], p["b_v"]))
        attended = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        attended = attended.transpose(1, 2).reshape(batch, seq, features)
        x = x + F.linear(attended, p["W_o"], p["b_o"])
        h = F.layer_norm(x, (features,), p["ln2_w"], p["ln2_b"])
        hidden = F.gelu(F.linear(h, p["W_up"], p["b_up"]), approximate="tanh")
        x = x + F.linear(hidden, p["W_down"], p["b_down"])
        x = F.layer_norm(x, (features,), p["lnf_w"], p["lnf_b"])[:, -keep.count :]
        logits = F.linear(x, p["W_head"], p["b_head"])  # (batch, answer, vocab)
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), answers.reshape(-1))

    optimizer = torch.optim.AdamW(list(p.values()), lr=3e-3, weight_decay=0.01)
    inputs = [
        (torch.tensor(x.T, dtype=torch.int64), torch.tensor(y.T, dtype=torch.int64))
        for x, y in batches
    ]
    now = processes.CLOCKS[clock]
    losses, times, faults, heaps = [], [], [], []
    for index in range(rounds + 1):
        ids, answers = inputs[index % len(inputs)]
        faults_before, start = _minor_faults(), now()
        optimizer.zero_grad(set_to_none=True)
        loss = loss_of(ids, answers)
        loss.backward()
        optimizer.step()
        times.append(now() - start)
        faults.append(_minor_faults() - faults_before)
        heaps.append(processes.heap())
        losses.append(loss.item())
    return {
        "losses": losses[:2],
        "times": times[1:],
        "faults": faults[1:],
        "heaps": heaps[1:],
        "threads": torch.get_num_threads(),
    }


def heap_text(heaps: list[list[int] | None]) -> str:
    """The median heap held and free after a step, ``"34.0 / 2.5 MB"`` (``"unknown"``
    without glibc's ``mallinfo2``)."""
    known = [heap for heap in heaps if heap is not None]
    if not known:
        return "unknown"
    held = statistics.median(heap[0] for heap in known) / 2**20
    free = statistics.median(heap[1] for heap in known) / 2**20
    return f"{held:.1f} / {free:.1f} MB"


def spawn(worker: str, threads: int, rounds: int, clock: str, keep: bool) -> dict[str, Any]:
    env = {**os.environ, **{name: str(threads) for name in THREAD_VARIABLES}}
    env["OMP_WAIT_POLICY"] = "PASSIVE"
    for name in processes.MALLOC_SETTINGS:
        env.pop(name, None)
    if keep:
        env.update(processes.MALLOC_SETTINGS)
    command = [sys.executable, __file__, "--worker", worker, "--rounds", str(rounds)]
    result = subprocess.run(
        [*command, "--clock", clock],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    return json.loads(result.stdout.splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--clock", choices=list(processes.CLOCKS), default="wall")
    parser.add_argument(
        "--keep-freed-memory",
        action="store_true",
        help="tune glibc's malloc to keep freed memory, for both contenders (see processes.py)",
    )
    parser.add_argument("--worker", choices=["ours", "torch"])
    parser.add_argument("--markdown", metavar="FILE", help="also write the result to FILE")
    args = parser.parse_args()
    if args.worker is not None:
        run = run_ours if args.worker == "ours" else run_torch
        print(json.dumps(run(args.rounds, args.clock)))
        return
    # Alternate the two processes, so that a change in the machine's load hits both.
    ours_times: list[float] = []
    torch_times: list[float] = []
    ours_faults: list[int] = []
    torch_faults: list[int] = []
    ours_heaps: list[list[int] | None] = []
    torch_heaps: list[list[int] | None] = []
    load_before = processes.load()
    for _ in range(args.repeats):
        ours = spawn("ours", args.threads, args.rounds, args.clock, args.keep_freed_memory)
        theirs = spawn("torch", args.threads, args.rounds, args.clock, args.keep_freed_memory)
        for mine, expected in zip(ours["losses"], theirs["losses"], strict=True):
            if abs(mine - expected) > 1e-10 * abs(expected):
                raise SystemExit(f"the losses differ: {ours['losses']} against {theirs['losses']}")
        ours_times += ours["times"]
        torch_times += theirs["times"]
        ours_faults += ours["faults"]
        torch_faults += theirs["faults"]
        ours_heaps += ours["heaps"]
        torch_heaps += theirs["heaps"]
    ours_median, torch_median = statistics.median(ours_times), statistics.median(torch_times)
    ours_faulted, torch_faulted = statistics.median(ours_faults), statistics.median(torch_faults)
    checks = "on" if ours["checks"] else "off"
    malloc = "kept freed memory" if args.keep_freed_memory else "glibc's malloc as it comes"
    print(
        f"transformer step (sort task, batch {BATCH}, float64, {args.threads} thread(s), "
        f"{args.clock} clock, {malloc}, median of {args.repeats} x {args.rounds} rounds)"
    )
    ours_label, torch_label = f"typedbackprop (checks {checks})", "PyTorch eager"
    print(f"  {ours_label:27s} {ours_median * 1e3:8.2f} ms  {ours_faulted:6.0f} page faults")
    print(f"  {torch_label:27s} {torch_median * 1e3:8.2f} ms  {torch_faulted:6.0f} page faults")
    print(f"  ratio                       {ours_median / torch_median:8.2f}x")
    ours_heap, torch_heap = heap_text(ours_heaps), heap_text(torch_heaps)
    print(f"  heap after a step, held / free inside: ours {ours_heap}, PyTorch's {torch_heap}")
    if args.markdown:
        command = " ".join(["python", "benchmarks/transformer_step.py", *sys.argv[1:]])
        table = [
            "| typedbackprop, checks " + checks + " (ms) | PyTorch eager (ms) | ratio "
            "| page faults per step (ours / PyTorch) |",
            "|---:|---:|---:|---:|",
            f"| {ours_median * 1e3:.2f} | {torch_median * 1e3:.2f} | "
            f"{ours_median / torch_median:.2f} | {ours_faulted:.0f} / {torch_faulted:.0f} |",
            "",
            f"glibc's heap after a step (median), held from the system / free inside it: ours "
            f"{ours_heap}, PyTorch's {torch_heap}.",
            "",
            f"One step (loss, every gradient, AdamW update) on a batch of {BATCH} sort sequences, "
            f"float64; medians over {args.repeats} × {args.rounds} rounds ({args.clock} clock), "
            f"the two processes alternated; {args.threads} thread(s) each "
            f"({'/'.join(THREAD_VARIABLES)}={args.threads}), OMP_WAIT_POLICY=PASSIVE, {malloc}. "
            f"Machine: {processes.machine()}, "
            f"load average {load_before} before and {processes.load()} after; "
            f"{processes.versions(with_torch=True)}. Command: `{command}`",
        ]
        with open(args.markdown, "w", encoding="utf-8") as handle:
            handle.write("\n".join(table) + "\n")


if __name__ == "__main__":
    main()
