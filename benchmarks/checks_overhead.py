"""Time one call of a user's checked function: ``checked``, stock jaxtyping + beartype, and plain.

Usage::

    python benchmarks/checks_overhead.py              # medians over 21 rounds of 20,000 calls
    python benchmarks/checks_overhead.py --rounds 5   # quicker, noisier
    python benchmarks/checks_overhead.py --markdown docs/snippets/benchmarks/checks_overhead.md

The functions are what a user writes: a two-array product with named dimensions, and a function
of a list of eight such arrays (``checked`` reads every item of a list on every call; beartype
checks one). Each is timed three ways, alternated round by round so that machine drift hits all
of them alike:

- ``checked``: ``typedbackprop.checked``, on a call signature it has already verified (the cached
  path: one dictionary look-up, the body, the result's signature compared);
- ``stock``: ``jaxtyped(typechecker=beartype)``, which checks every call in full (what
  ``checked`` costs on a call with a new signature);
- ``plain``: the undecorated function.

The table gives the median time per call, and ``checked − plain``, the price of leaving the
check on. Run it on a quiet machine: other processes inflate every column.
"""

import argparse
import os
import platform
import statistics
import sys
import timeit
from collections.abc import Callable
from typing import Any

import beartype
import jaxtyping
import numpy as np
from jaxtyping import Float, jaxtyped

from typedbackprop import Array, checked


def product(
    W: Float[Array, "out inp"], a_prev: Float[Array, "inp batch"]
) -> Float[Array, "out batch"]:
    """A user's two-array function: ``W a_prev``, out=4, inp=3, batch=5."""
    return W @ a_prev


def total(arrays: list[Float[Array, "out batch"]]) -> Float[Array, "out batch"]:
    """A user's function of a list of arrays: their sum."""
    return sum(arrays[1:], arrays[0])


def contenders(function: Callable[..., Any]) -> dict[str, Callable[..., Any]]:
    return {
        "checked": checked(function),
        "stock": jaxtyped(typechecker=beartype.beartype)(function),
        "plain": function,
    }


def per_call_medians(
    call: dict[str, Callable[[], Any]], rounds: int, number: int
) -> dict[str, float]:
    """Median seconds per call of each contender, rounds alternated between contenders."""
    samples: dict[str, list[float]] = {name: [] for name in call}
    for function in call.values():
        function()  # the first call verifies the signature; only later calls are timed
    for _ in range(rounds):
        for name, function in call.items():
            samples[name].append(timeit.timeit(function, number=number) / number)
    return {name: statistics.median(times) for name, times in samples.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=21, help="rounds per contender (median)")
    parser.add_argument("--number", type=int, default=20_000, help="calls per round")
    parser.add_argument("--markdown", metavar="FILE", help="also write the table to FILE")
    options = parser.parse_args()

    rng = np.random.default_rng(0)
    W, a_prev = rng.standard_normal((4, 3)), rng.standard_normal((3, 5))
    arrays = [rng.standard_normal((4, 5)) for _ in range(8)]
    cases = {
        "two arrays, W @ a_prev": (contenders(product), (W, a_prev)),
        "a list of 8 arrays, their sum": (contenders(total), (arrays,)),
    }
    setting = (
        f"Python {platform.python_version()}, NumPy {np.__version__}, jaxtyping "
        f"{jaxtyping.__version__}, beartype {beartype.__version__}; {platform.machine()}, "
        f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} before"
    )
    print(f"{setting}; median of {options.rounds} rounds of {options.number} calls")
    rows = [
        "| function | checked (µs) | stock (µs) | plain (µs) | checked − plain (µs) |",
        "|---|---:|---:|---:|---:|",
    ]
    print(f"{'function':<32} {'checked':>10} {'stock':>10} {'plain':>10} {'checked - plain':>16}")
    for label, (functions, arguments) in cases.items():
        call = {
            name: (lambda function=function, arguments=arguments: function(*arguments))
            for name, function in functions.items()
        }
        medians = {
            name: seconds * 1e6
            for name, seconds in per_call_medians(call, options.rounds, options.number).items()
        }
        print(
            f"{label:<32} {medians['checked']:>8.2f}µs {medians['stock']:>8.2f}µs "
            f"{medians['plain']:>8.2f}µs {medians['checked'] - medians['plain']:>14.2f}µs"
        )
        rows.append(
            f"| {label} | {medians['checked']:.2f} | {medians['stock']:.2f} | "
            f"{medians['plain']:.2f} | {medians['checked'] - medians['plain']:.2f} |"
        )
    if options.markdown:
        command = " ".join(["python", "benchmarks/checks_overhead.py", *sys.argv[1:]])
        footer = (
            f"Medians per call over {options.rounds} rounds of {options.number:,} calls, the "
            f"three contenders alternated round by round; checked on a signature it has "
            f"verified before. {setting}, {os.getloadavg()[0]:.1f} after. "
            f"Command: `{command}`"
        )
        with open(options.markdown, "w", encoding="utf-8") as handle:
            handle.write("\n".join([*rows, "", footer]) + "\n")


if __name__ == "__main__":
    main()
