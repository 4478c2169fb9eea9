"""The transformer's benchmark and training scripts keep working: each run once, briefly."""

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run(*arguments: str) -> str:
    result = subprocess.run(
        [sys.executable, *arguments], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_the_step_benchmark_runs_and_the_two_losses_agree():
    # The script refuses to time two steps whose losses differ by more than 1e-10.
    output = run("benchmarks/transformer_step.py", "--rounds", "2")
    assert "PyTorch eager" in output and "ratio" in output
    assert "wall clock, glibc's malloc as it comes" in output
    assert output.count(" page faults") == 2  # each contender's, per step
    # what glibc's heap holds after a step, and how much of it is free inside, for each
    assert re.search(r"ours \d+\.\d / \d+\.\d MB, PyTorch's \d+\.\d / \d+\.\d MB", output)


def test_the_step_benchmark_takes_the_cpu_clock_and_keeps_freed_memory_for_both():
    output = run(
        "benchmarks/transformer_step.py",
        *("--rounds", "2", "--repeats", "1", "--clock", "cpu", "--keep-freed-memory"),
    )
    assert "cpu clock, kept freed memory" in output and "ratio" in output


def test_the_training_script_runs_and_reports_both_accuracies():
    output = run("benchmarks/train_sort.py", "--steps", "4", "--every", "2")
    assert "teacher-forced test accuracy" in output and "greedy test accuracy" in output
