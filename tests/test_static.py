"""Static checks, run as tests so the README's one test command covers them."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)


def test_mypy_strict_on_the_package_and_a_users_code():
    result = run(
        sys.executable, "-m", "mypy", "--strict", "typedbackprop", "tests/typecheck_api.py"
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_is_clean():
    # ruff next to this interpreter, not on PATH: the environment need not be activated
    result = run(sys.executable, "-m", "ruff", "check", ".")
    assert result.returncode == 0, result.stdout + result.stderr
    result = run(sys.executable, "-m", "ruff", "format", "--check", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_py_typed_ships_with_the_package():
    assert (ROOT / "typedbackprop" / "py.typed").is_file()


def test_the_users_code_runs():
    import typecheck_api

    typecheck_api.test_user_code()


def test_mypy_reports_each_misuse_of_the_network_api_and_nothing_else():
    path = "tests/typecheck_api_errors.py"
    result = run(sys.executable, "-m", "mypy", "--strict", "--no-error-summary", path)
    reported = {
        (int(line.split(":")[1]), line.rsplit("[", 1)[1].rstrip("]"))
        for line in result.stdout.splitlines()
        if ": error:" in line
    }
    lines = (ROOT / path).read_text(encoding="utf-8").splitlines()
    expected = {
        (number, line.rsplit("# mypy: ", 1)[1].strip())
        for number, line in enumerate(lines, start=1)
        if "# mypy: " in line
    }
    assert len(expected) == 3
    assert reported == expected, result.stdout + result.stderr
