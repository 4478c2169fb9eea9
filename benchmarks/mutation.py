"""Mutation testing helpers for ``benchmarks/mutation.sh``: stage a copy, then score the run.

``python benchmarks/mutation.py stage STAGE_DIR``
    Copy the package, the tests and ``pyproject.toml`` into ``STAGE_DIR``, with each
    ``@checked`` decorator rewritten as the assignment it stands for (below).
``python benchmarks/mutation.py score STAGE_DIR``
    Read mutmut's results in ``STAGE_DIR/mutants`` and the equivalent mutants listed in
    ``docs/mutation-testing.md``; print a table per module and the score; exit 1 if any
    non-equivalent mutant survived.

Why a staged copy: mutmut 3 never mutates a decorated function (a decorator runs at import, and
copying a decorated function can have side effects). Almost every function of the math modules
is decorated with ``@checked``, so on the repository as it stands mutmut would mutate only the
undecorated helpers. In the copy, and only there, each ``@checked`` / ``@checked(...)`` (and
``@property`` on a method) becomes the assignment the decorator syntax is defined to mean::

    @checked                                def affine_forward(...): ...
    def affine_forward(...): ...     ->     affine_forward = checked(affine_forward)

The runtime checks stay on: mutmut wraps the function body in its trampoline, and ``checked``
wraps the trampoline. The package in the repository is not touched.
"""

import json
import os
import re
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import libcst as cst

ROOT = Path(__file__).resolve().parent.parent
EQUIVALENTS_PAGE = ROOT / "docs" / "mutation-testing.md"
MOVABLE_AT_MODULE_LEVEL = {"checked"}
MOVABLE_IN_CLASS_BODY = {"property"}

# mutmut's exit codes (mutmut/stats.py): 1 and 3 are kills, 0 a survivor, 33 and 5 mean no
# selected test calls the function, 36 and the SIGXCPU codes a timeout.
STATUS = {1: "killed", 3: "killed", 0: "survived", 5: "no tests", 33: "no tests", 36: "timeout"}
STATUS.update({code: "timeout" for code in (-24, 24, 152, 255)})


# --- stage -----------------------------------------------------------------------------------


def _decorator_name(decorator: cst.Decorator) -> str | None:
    expression = decorator.decorator
    if isinstance(expression, cst.Call):
        expression = expression.func
    return expression.value if isinstance(expression, cst.Name) else None


def _undecorate(body: Sequence[cst.BaseStatement], movable: set[str]) -> list[cst.BaseStatement]:
    """``body`` with each function whose decorators are all ``movable`` undecorated + assigned."""
    rewritten: list[cst.BaseStatement] = []
    for statement in body:
        if isinstance(statement, cst.ClassDef) and isinstance(statement.body, cst.IndentedBlock):
            inner = _undecorate(statement.body.body, MOVABLE_IN_CLASS_BODY)
            statement = statement.with_changes(body=statement.body.with_changes(body=inner))
        if (
            isinstance(statement, cst.FunctionDef)
            and statement.decorators
            and all(_decorator_name(d) in movable for d in statement.decorators)
        ):
            name = statement.name.value
            rewritten.append(statement.with_changes(decorators=[]))
            for decorator in reversed(statement.decorators):  # the one nearest the def first
                call = cst.Call(func=decorator.decorator, args=[cst.Arg(cst.Name(name))])
                assign = cst.Assign(targets=[cst.AssignTarget(cst.Name(name))], value=call)
                rewritten.append(cst.SimpleStatementLine(body=[assign]))
            continue
        rewritten.append(statement)
    return rewritten


def stage_source(source: str) -> str:
    """``source`` with every ``@checked`` function rewritten as a plain function + assignment."""
    module = cst.parse_module(source)
    return module.with_changes(body=_undecorate(module.body, MOVABLE_AT_MODULE_LEVEL)).code


def _write_if_changed(path: Path, text: str) -> None:
    # Unchanged files keep their mtime, so mutmut keeps its cached results for them.
    if path.exists() and path.read_text(encoding="utf-8") == text:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def stage(destination: Path) -> None:
    """Copy the package (rewritten), the tests and ``pyproject.toml`` into ``destination``."""
    for source in sorted((ROOT / "typedbackprop").rglob("*")):
        if "__pycache__" in source.parts or not source.is_file():
            continue
        text = source.read_text(encoding="utf-8")
        if source.suffix == ".py":
            text = stage_source(text)
        _write_if_changed(destination / source.relative_to(ROOT), text)
    for source in sorted((ROOT / "tests").rglob("*.py")):
        if "__pycache__" not in source.parts:
            text = source.read_text(encoding="utf-8")
            _write_if_changed(destination / source.relative_to(ROOT), text)
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    deselect = os.environ.get("MUTATION_DESELECT", "").split()
    if deselect:  # tests that fail on the unmutated code: mutmut needs a green suite
        extra = "".join(f'    "--deselect",\n    "{node}",\n' for node in deselect)
        opening = "pytest_add_cli_args = [\n"
        pyproject = pyproject.replace(opening, opening + extra, 1)
    _write_if_changed(destination / "pyproject.toml", pyproject)
    plugin = ROOT / "benchmarks" / "mutation_pytest_plugin.py"
    _write_if_changed(destination / plugin.name, plugin.read_text(encoding="utf-8"))
    # A test file deleted from the repository must not linger in the stage or in mutmut's copy.
    for staged in sorted((destination / "tests").rglob("*.py")):
        if not (ROOT / staged.relative_to(destination)).exists():
            staged.unlink()
            (destination / "mutants" / staged.relative_to(destination)).unlink(missing_ok=True)


# --- score -----------------------------------------------------------------------------------


def equivalent_mutants(page: Path = EQUIVALENTS_PAGE) -> dict[str, str]:
    """The mutants the docs page lists as equivalent: ``| `name` | reason |`` table rows."""
    row = re.compile(r"^\|\s*`(typedbackprop\.[\w.ǁ]+__mutmut_\d+)`\s*\|\s*(.+?)\s*\|\s*$")
    found = {}
    for line in page.read_text(encoding="utf-8").splitlines():
        match = row.match(line)
        if match:
            found[match.group(1)] = match.group(2)
    return found


def results(stage_dir: Path) -> dict[str, str]:
    """Every mutant's status, from mutmut's ``.meta`` files (``"not checked"`` if not run)."""
    statuses = {}
    for meta in sorted((stage_dir / "mutants" / "typedbackprop").glob("*.py.meta")):
        exit_codes = json.loads(meta.read_text(encoding="utf-8"))["exit_code_by_key"]
        for name, code in exit_codes.items():
            statuses[name] = "not checked" if code is None else STATUS.get(code, "suspicious")
    return statuses


def score(stage_dir: Path) -> int:
    """Print the per-module table, the survivors and the score; 0 if every survivor is listed."""
    statuses = results(stage_dir)
    equivalent = equivalent_mutants()
    columns = ["killed", "survived", "equivalent", "timeout", "no tests", "other"]
    counts: dict[str, Counter[str]] = {}
    survivors = []
    for name, status in statuses.items():
        module = name.split(".")[1]
        if name in equivalent:
            column = "equivalent"
            if status == "killed":
                print(f"listed as equivalent but killed (remove it from the page): {name}")
        elif status in columns:
            column = status
        else:
            column = "other"
        if column in ("survived", "no tests", "other"):
            survivors.append(f"{name}: {status}")
        counts.setdefault(module, Counter())[column] += 1
    stale = sorted(set(equivalent) - set(statuses))
    for name in stale:
        print(f"listed as equivalent but no such mutant (renumbered?): {name}")

    print(f"{'module':<12}" + "".join(f"{column:>11}" for column in columns) + f"{'total':>8}")
    total: Counter[str] = Counter()
    for module, count in sorted(counts.items()):
        total.update(count)
        cells = "".join(f"{count[column]:>11}" for column in columns)
        print(f"{module:<12}{cells}{sum(count.values()):>8}")
    cells = "".join(f"{total[column]:>11}" for column in columns)
    print(f"{'all':<12}{cells}{sum(total.values()):>8}")
    # Timeouts count as kills: the mutant made the tests run 15 times longer than they should.
    judged = sum(total.values()) - total["equivalent"]
    caught = total["killed"] + total["timeout"]
    if survivors:
        print("\nnot killed and not listed as equivalent:")
        print("\n".join(f"  {line}" for line in survivors))
    percent = 100 * caught / judged if judged else 100.0
    print(
        f"\nmutation score: {caught}/{judged} non-equivalent mutants killed = {percent:.1f}% "
        f"({total['equivalent']} equivalent, listed in docs/mutation-testing.md)"
    )
    return 1 if survivors or stale else 0


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in ("stage", "score"):
        sys.exit(__doc__)
    directory = Path(sys.argv[2]).resolve()
    if sys.argv[1] == "stage":
        stage(directory)
    else:
        sys.exit(score(directory))
