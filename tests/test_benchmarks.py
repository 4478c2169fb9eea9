"""The benchmark scripts must keep working: run each once, briefly, and check what it prints."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_step_benchmark_runs_and_all_contenders_agree(tmp_path):
    table = tmp_path / "table.md"
    result = subprocess.run(
        [
            sys.executable,
            "benchmarks/step.py",
            "--rounds",
            "1",
            "--block-ms",
            "1",
            "--only",
            "question",
            "--markdown",
            str(table),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    text = table.read_text()
    assert "| question 3-4-4-2 |" in text and "torch" in text and "unchecked" in text
    assert "| checked ≤ 1.5× question, question 3-4-4-2 |" in text


def test_step_benchmark_respects_the_environments_check_setting(tmp_path):
    table = tmp_path / "table.md"
    result = subprocess.run(
        [
            sys.executable,
            "benchmarks/step.py",
            "--rounds",
            "1",
            "--block-ms",
            "1",
            "--only",
            "question",
            "--no-torch",
            "--markdown",
            str(table),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        env=dict(os.environ, TYPEDBACKPROP_CHECKS="0"),
    )
    assert result.returncode == 0, result.stderr
    header = table.read_text().splitlines()[0]
    assert "unchecked (µs)" in header and "| checked (µs)" not in header


def test_epoch_benchmark_runs_and_the_contenders_agree(tmp_path):
    table = tmp_path / "table.md"
    result = subprocess.run(
        [
            sys.executable,
            "benchmarks/epoch.py",
            "--rounds",
            "1",
            "--examples",
            "300",
            "--hidden",
            "16",
            "--batch",
            "64",
            "--markdown",
            str(table),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    text = table.read_text()
    for name in ("checked", "unchecked", "torch"):
        assert f"| {name} |" in text
    assert "784-16-16-10" in text and "300 synthetic examples" in text
    # train() as the README's user calls it: default metrics, glibc as it comes
    assert "`train()` as a user calls it" in text and "train_metrics=False" not in text
    assert "glibc malloc's default settings" in text


def test_overhead_benchmark_runs_and_every_step_gives_the_floors_bits(tmp_path):
    table = tmp_path / "table.md"
    result = subprocess.run(
        [sys.executable, "benchmarks/overhead.py", "--blocks", "2", "--markdown", str(table)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    text = table.read_text()
    assert "= **unchecked**" in text and "= **checked**" in text and "question" in text


def test_convnet_step_benchmark_runs_and_all_contenders_agree(tmp_path):
    table = tmp_path / "table.md"
    result = subprocess.run(
        [
            sys.executable,
            "benchmarks/convnet_step.py",
            "--rounds",
            "1",
            "--batch",
            "8",
            "--threads",
            "1",
            "--markdown",
            str(table),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    text = table.read_text()
    assert "| 8 |" in text and "torch" in text and "unchecked" in text


def test_checks_overhead_benchmark_runs_and_prints_the_three_columns():
    result = subprocess.run(
        [sys.executable, "benchmarks/checks_overhead.py", "--rounds", "1", "--number", "50"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    header, *rows = result.stdout.splitlines()[1:]
    assert header.split()[1:] == ["checked", "stock", "plain", "checked", "-", "plain"]
    assert [row.split("  ")[0] for row in rows] == [
        "two arrays, W @ a_prev",
        "a list of 8 arrays, their sum",
    ]
    assert all(row.count("µs") == 4 for row in rows)


def test_step_instructions_workers_run_and_a_dump_is_read(tmp_path):
    # callgrind itself takes minutes; here each worker runs bare, and the reader and the table
    # are fed a dump of callgrind's format.
    for name in ("question", "checked", "unchecked"):
        result = subprocess.run(
            [sys.executable, "benchmarks/step_instructions.py", "--worker", name, "--steps", "2"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, (name, result.stderr)
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import step_instructions
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    dump = tmp_path / "callgrind.out.2"
    dump.write_text("# callgrind format\nversion: 1\nevents: Ir\nsummary: 4350000\n")
    assert step_instructions.instructions(str(dump)) == 4_350_000
    text = step_instructions.table(
        {"question": 290_000.0, "checked": 435_000.0, "unchecked": 348_000.0}, "footer"
    )
    assert "| checked | 435,000 | 1.50 | 1.25 |" in text.splitlines()


def test_lstm_step_benchmark_runs_and_the_two_losses_agree(tmp_path):
    # The script refuses to time two steps whose losses differ by more than 1e-10.
    table = tmp_path / "table.md"
    result = subprocess.run(
        [
            sys.executable,
            "benchmarks/lstm_step.py",
            "--hidden",
            "12",
            "--rounds",
            "1",
            "--repeats",
            "1",
            "--markdown",
            str(table),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "LSTM step (recall, hidden 12," in result.stdout and "PyTorch eager" in result.stdout
    text = table.read_text()
    assert "LSTM with 12 hidden units" in text
    assert "Command: `python benchmarks/lstm_step.py --hidden 12" in text


def test_profile_layers_prints_every_layer_beside_its_products():
    result = subprocess.run(
        [sys.executable, "benchmarks/profile_layers.py", "--batch", "4", "--repeats", "1"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        env=dict(os.environ, COLUMNS="200"),
    )
    assert result.returncode == 0, result.stderr
    text = result.stdout
    for title in ("transformer, batch 4, 1 thread", "convnet, batch 4, 1 thread"):
        assert title in text
    for layer in ("0 Embedding", "2 TransformerBlock", "1 Conv2d", "2 BatchNorm", "10 Dense"):
        assert f"│ {layer} " in text
    conv = next(line for line in text.splitlines() if "│ 1 Conv2d " in line)
    products = float(conv.split("│")[4])
    assert products > 0  # the convolution's im2col product was found and replayed
    # the caption wraps to its table's width, so compare with the line breaks taken out
    assert " ".join(text.split()).count("of the step outside them") == 2
