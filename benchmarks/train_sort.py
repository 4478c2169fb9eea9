"""Train the small transformer on the sort task with AdamW; print the test accuracy and time.

    python benchmarks/train_sort.py [--steps N] [--seed S]

400 AdamW steps of 64 sequences (a linear warm-up over the first 40, then a cosine decay from
3e-3 to 0), one BLAS thread unless ``OMP_NUM_THREADS`` says otherwise.

Accuracy is the share of answer tokens right on held-out sequences, read with teacher forcing
(the model sees the correct earlier answer tokens, as in training) and also written greedily
(each answer token fed back in), and counted token by token.
"""

import argparse
import math
import os
import time

# This model's matrices are small (64 features, 15 tokens × 64 sequences): BLAS threads gain
# little on them and lose much on a machine whose cores are shared. Set before NumPy loads.
for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(variable, "1")

import numpy as np  # noqa: E402

import typedbackprop as tbp  # noqa: E402
from typedbackprop.datasets import sort_dataset  # noqa: E402
from typedbackprop.models import transformer  # noqa: E402
from typedbackprop.optimizers import AdamW, all_but_weights  # noqa: E402


def teacher_forced_accuracy(layers, x, y):
    logits, _ = tbp.network_forward(layers, x, tbp.Mode(training=False))
    return float(np.mean(np.argmax(logits, axis=0) == y))


def greedy_accuracy(layers, x, y):
    """Write the answer one token at a time, each prediction fed back as the next input."""
    length = y.shape[0]
    tokens = x.copy()
    tokens[length:] = 0  # the answer tokens the model has not written yet
    for i in range(length):
        logits, _ = tbp.network_forward(layers, tokens, tbp.Mode(training=False))
        predicted = np.argmax(logits[:, i], axis=0)
        if i < length - 1:
            tokens[length + i] = predicted
    logits, _ = tbp.network_forward(layers, tokens, tbp.Mode(training=False))
    return float(np.mean(np.argmax(logits, axis=0) == y))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--features", type=int, default=64)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--every", type=int, default=100)
    args = parser.parse_args()
    data = sort_dataset(seed=args.seed)
    rng = np.random.default_rng(args.seed)
    layers = transformer(rng, features=args.features, hidden=args.hidden, heads=args.heads)
    state = AdamW().init(layers)
    n = data.x_train.shape[1]
    start = time.perf_counter()
    for step in range(1, args.steps + 1):
        batch = rng.integers(0, n, size=args.batch)
        loss, grads = tbp.network_loss_and_grads(
            layers, data.x_train[:, batch], data.y_train[:, batch], "token_cross_entropy"
        )
        # Linear warm-up over the first tenth of the steps, then a cosine decay to 0.
        warm = min(1.0, step / (0.1 * args.steps))
        rate = args.lr * warm * 0.5 * (1.0 + math.cos(math.pi * step / args.steps))
        optimizer = AdamW(
            learning_rate=max(rate, 1e-12), weight_decay=0.01, exempt=all_but_weights
        )  # the recipe's decay: weights only
        layers, state = optimizer.step(layers, grads, state)
        if step % args.every == 0 or step == args.steps:
            elapsed = time.perf_counter() - start
            accuracy = teacher_forced_accuracy(layers, data.x_test, data.y_test)
            print(
                f"step {step:5d}  loss {loss:.4f}  test accuracy {accuracy:.4f}  {elapsed:6.1f} s"
            )
    elapsed = time.perf_counter() - start
    accuracy = teacher_forced_accuracy(layers, data.x_test, data.y_test)
    print(f"teacher-forced test accuracy {accuracy:.4f}")
    print(f"greedy test accuracy {greedy_accuracy(layers, data.x_test, data.y_test):.4f}")
    print(f"training time {elapsed:.1f} s")


if __name__ == "__main__":
    main()
