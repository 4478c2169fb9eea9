"""Count the CPU instructions of one training step of the question's network, per contender.

Usage::

    python benchmarks/step_instructions.py                  # question, checked, unchecked
    python benchmarks/step_instructions.py --steps 300      # quicker
    python benchmarks/step_instructions.py --markdown docs/snippets/benchmarks/step_instructions.md

On a shared machine a clock measures the other programs too; an instruction count does not.
Each contender (``question``: the question's own hand-written step; ``checked`` and
``unchecked``: ``typedbackprop.loss_and_grads`` with runtime checks on and off, the contenders
of ``step.py``) runs in a process of its own under ``valgrind --tool=callgrind``: it builds its
step, takes three steps (the first checks every signature in full), then ``--steps`` more
between two calls of ``time.sleep(0)``, before each of which callgrind writes out its counts
(``--dump-before=time_sleep``). The second dump holds exactly the steps and the loop around
them: its instruction count over ``--steps`` is the table's figure, the same on a quiet machine
and a busy one. Instructions are not time (a cache miss costs more than an addition), but on
this network, whose arrays hold twenty numbers, the step is Python and NumPy's call overhead,
which instructions measure well.
"""

import argparse
import glob
import os
import subprocess
import sys
import tempfile
import time

import processes
import step

CONTENDERS = {"question": None, "checked": True, "unchecked": False}
SCRIPT = os.path.abspath(__file__)


def run_worker(name: str, steps: int) -> None:
    """Build ``name``'s step on the question's network, warm it, then take ``steps`` steps
    between two ``time.sleep(0)`` calls (callgrind dumps its counts before each)."""
    network = step.BY_NAME["question"]
    params, x, y = step.make_problem(network)
    builder = step.question_step if name == "question" else step.package_step
    take_step = builder(network, params, x, y)
    for _ in range(3):
        take_step()
    time.sleep(0)
    for _ in range(steps):
        take_step()
    time.sleep(0)


def instructions(dump: str) -> int:
    """The instruction count (``Ir``) a callgrind output file totals."""
    with open(dump, encoding="utf-8") as handle:
        for line in handle:
            if line.startswith(("summary:", "totals:")):
                return int(line.split()[1])
    raise ValueError(f"{dump}: no summary line")


def count_all(steps: int, directory: str) -> dict[str, float]:
    """Instructions per step of each contender, from its own process under callgrind (all at
    once: a count does not depend on what else runs)."""
    running = {}
    for name, checks in CONTENDERS.items():
        environment = dict(os.environ)
        environment.pop("TYPEDBACKPROP_CHECKS", None)
        if checks is not None:
            environment["TYPEDBACKPROP_CHECKS"] = "1" if checks else "0"
        command = [
            "valgrind",
            "--tool=callgrind",
            "--dump-before=time_sleep",
            f"--callgrind-out-file={os.path.join(directory, name)}",
            sys.executable,
            SCRIPT,
            "--worker",
            name,
            "--steps",
            str(steps),
        ]
        running[name] = subprocess.Popen(
            command, env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
    counts = {}
    for name, process in running.items():
        _, error = process.communicate()
        if process.returncode:
            raise RuntimeError(f"{name} under callgrind failed:\n{error.decode()[-2000:]}")
        dumps = glob.glob(os.path.join(directory, name) + ".*")
        dumps.sort(key=lambda path: int(path.rsplit(".", 1)[1]))
        if len(dumps) < 2:
            raise RuntimeError(f"callgrind wrote {len(dumps)} dumps for {name}; expected 2")
        counts[name] = instructions(dumps[1]) / steps
    return counts


def table(counts: dict[str, float], footer: str) -> str:
    lines = [
        "| contender | instructions per step | ÷ question | ÷ unchecked |",
        "|---|---:|---:|---:|",
    ]
    for name, value in counts.items():
        lines.append(
            f"| {name} | {value:,.0f} | {value / counts['question']:.2f} "
            f"| {value / counts['unchecked']:.2f} |"
        )
    return "\n".join([*lines, "", footer])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--steps", type=int, default=1000, help="counted steps per contender")
    parser.add_argument("--markdown", metavar="FILE", help="also write the table to FILE")
    parser.add_argument("--worker", choices=list(CONTENDERS), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        run_worker(args.worker, args.steps)
        return
    command = "python benchmarks/step_instructions.py " + " ".join(
        argv if argv is not None else sys.argv[1:]
    )
    with tempfile.TemporaryDirectory() as directory:
        counts = count_all(args.steps, directory)
    footer = (
        f"Instructions (callgrind's Ir) per step of the question's 3-4-4-2 network, batch 5, "
        f"float64, over {args.steps} steps after three, each contender in its own process; "
        f"load average {processes.load()} (which a count does not see). "
        f"Machine: {processes.machine()}; {processes.versions(False)}. "
        f"Command: `{command.strip()}`"
    )
    text = table(counts, footer)
    print(text)
    if args.markdown:
        with open(args.markdown, "w", encoding="utf-8") as handle:
            handle.write(text + "\n")


if __name__ == "__main__":
    main()
