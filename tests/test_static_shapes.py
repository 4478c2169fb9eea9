"""The math is shape-checked by dimension name before it runs, and that check can fail.

``typedbackprop check-shapes`` runs Pyrefly over the package's math (``typedbackprop/nn``): every
forward and backward function declares its dimension names with ``@static_jaxtyping``, or says
with ``@runtime_shapes_only`` why Pyrefly cannot follow it. The package must be clean, and each
mutant of ``tests/static_mutants`` (one line of one function with a classic shape mistake) must
be flagged inside its function, including the mistakes that run silently at runtime when two
sizes coincide. Pyrefly runs twice in this file (the package, then every mutant at once).
"""

import ast
import inspect
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import pytest
from doc_outputs import check_output
from static_mutants import Mutant, all_mutants

import typedbackprop.nn
from typedbackprop.checking.static import DECLARATION_ATTRIBUTE, RUNTIME_ONLY_ATTRIBUTE
from typedbackprop.cli import check_shapes

ROOT = Path(__file__).resolve().parents[1]
NN = Path(typedbackprop.nn.__file__).parent

NOT_MATH = {"__init__", "layer", "tree", "mode", "specs"}
"""The modules of ``typedbackprop.nn`` that hold no forward or backward function."""

MUTANTS = all_mutants()


def math_modules() -> Iterator[ModuleType]:
    for path in sorted(NN.glob("*.py")):
        if path.stem not in NOT_MATH:
            yield __import__(f"typedbackprop.nn.{path.stem}", fromlist=["_"])


def _annotated_with_dimensions(function: Callable[..., object]) -> bool:
    """Whether a parameter or the return of ``function`` names dimensions (jaxtyping)."""
    return any("jaxtyping" in repr(hint) for hint in function.__annotations__.values())


def math_functions() -> Iterator[tuple[str, str, Callable[..., object]]]:
    """``(module path, name, function)`` for each function of the math with named dimensions."""
    for module in math_modules():
        for name, value in vars(module).items():
            if (
                inspect.isfunction(value)
                and value.__module__ == module.__name__
                and _annotated_with_dimensions(inspect.unwrap(value))
            ):
                yield f"typedbackprop/nn/{Path(module.__file__ or '').name}", name, value


@dataclass(frozen=True)
class Span:
    """The lines of a function in a module (1-based, decorators included)."""

    first: int
    last: int

    def __contains__(self, line: object) -> bool:
        return isinstance(line, int) and self.first <= line <= self.last


def function_span(source: str, name: str) -> Span:
    tree = ast.parse(source)
    found = [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef) and node.name == name and node.end_lineno
    ]
    assert len(found) == 1, f"{name}: {len(found)} definitions"
    node = found[0]
    first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
    return Span(first, node.end_lineno or node.lineno)


def mutated_source(mutant: Mutant) -> tuple[str, Span]:
    """The module's source with the mutant's one line changed, and the function's span."""
    source = (ROOT / mutant.module).read_text(encoding="utf-8")
    span = function_span(source, mutant.function)
    lines = source.splitlines(keepends=True)
    hits = [
        number
        for number in range(span.first, span.last + 1)
        if lines[number - 1].strip() == mutant.original.strip()
    ]
    assert len(hits) == 1, f"{mutant.function}: {mutant.original!r} occurs {len(hits)} times"
    line = lines[hits[0] - 1]
    indent = line[: len(line) - len(line.lstrip())]
    lines[hits[0] - 1] = indent + mutant.mutated.strip() + "\n"
    return "".join(lines), span


def mutant_id(mutant: Mutant) -> str:
    return f"{Path(mutant.module).stem}.{mutant.function}: {mutant.mistake}"


@pytest.fixture(scope="module")
def stubs() -> Path:
    return check_shapes.ensure_stubs()


@pytest.fixture(scope="module")
def package_findings(stubs: Path) -> list[check_shapes.Finding]:
    return check_shapes.check_shapes(check_shapes.python_files([str(NN)]), stubs)


@pytest.fixture(scope="module")
def mutant_findings(
    stubs: Path, tmp_path_factory: pytest.TempPathFactory
) -> dict[Mutant, tuple[Span, list[check_shapes.Finding]]]:
    folder = tmp_path_factory.mktemp("mutants")
    copies: dict[Path, tuple[Mutant, Span]] = {}
    for number, mutant in enumerate(MUTANTS):
        source, span = mutated_source(mutant)
        path = (folder / f"mutant_{number:03d}_{Path(mutant.module).stem}.py").resolve()
        path.write_text(source, encoding="utf-8")
        copies[path] = (mutant, span)
    findings = check_shapes.check_shapes(list(copies), stubs)
    result: dict[Mutant, tuple[Span, list[check_shapes.Finding]]] = {}
    for path, (mutant, span) in copies.items():
        mine = [f for f in findings if Path(f.path).resolve() == path and f.about_shapes]
        result[mutant] = (span, mine)
    return result


def test_the_math_is_clean(package_findings: list[check_shapes.Finding]) -> None:
    shown = [finding.text() for finding in package_findings if finding.about_shapes]
    assert shown == []


def test_every_math_function_is_declared_or_says_why_not() -> None:
    undecided = [
        f"{module}: {name}"
        for module, name, function in math_functions()
        if not hasattr(function, DECLARATION_ATTRIBUTE)
        and not hasattr(function, RUNTIME_ONLY_ATTRIBUTE)
    ]
    assert undecided == []


def test_every_declaration_is_tested_by_a_mutant() -> None:
    mutated = {(mutant.module, mutant.function) for mutant in MUTANTS}
    untested = [
        f"{module}: {name}"
        for module, name, function in math_functions()
        if hasattr(function, DECLARATION_ATTRIBUTE) and (module, name) not in mutated
    ]
    assert untested == []


@pytest.mark.parametrize("mutant", MUTANTS, ids=mutant_id)
def test_the_mutant_is_flagged_in_its_function(
    mutant: Mutant, mutant_findings: dict[Mutant, tuple[Span, list[check_shapes.Finding]]]
) -> None:
    span, findings = mutant_findings[mutant]
    inside = [finding for finding in findings if finding.line in span]
    assert inside, f"no shape finding in lines {span.first}-{span.last}: {findings}"


def test_the_silent_mistakes_include_those_the_issue_names() -> None:
    silent = {mutant.mistake for mutant in MUTANTS if mutant.silent_at_runtime}
    wanted = [r"\bW\b.*transpose", r"query.*key|key.*query", r"softmax.*axis"]
    missing = [pattern for pattern in wanted if not any(re.search(pattern, m) for m in silent)]
    assert missing == []


def coverage_table() -> str:
    """The docs' table: per module, the functions declared, runtime-only, and their mutants."""
    rows = [
        "| module | declared | runtime only | mutants | silent at run time |",
        "|---|---|---|---|---|",
    ]
    totals = [0, 0, 0, 0]
    for module in math_modules():
        path = f"typedbackprop/nn/{Path(module.__file__ or '').name}"
        functions = [f for m, _, f in math_functions() if m == path]
        mine = [mutant for mutant in MUTANTS if mutant.module == path]
        counts = [
            sum(hasattr(f, DECLARATION_ATTRIBUTE) for f in functions),
            sum(hasattr(f, RUNTIME_ONLY_ATTRIBUTE) for f in functions),
            len(mine),
            sum(mutant.silent_at_runtime for mutant in mine),
        ]
        totals = [a + b for a, b in zip(totals, counts, strict=True)]
        rows.append(f"| `{Path(path).stem}` | " + " | ".join(map(str, counts)) + " |")
    rows.append("| **all** | " + " | ".join(f"**{n}**" for n in totals) + " |")
    return "\n".join(rows)


def runtime_only_table() -> str:
    """The docs' list of the functions checked at run time only, and why."""
    rows = ["| function | why Pyrefly cannot follow it |", "|---|---|"]
    for module, name, function in math_functions():
        reason = getattr(function, RUNTIME_ONLY_ATTRIBUTE, None)
        if reason is not None:
            rows.append(f"| `{Path(module).stem}.{name}` | {reason} |")
    return "\n".join(rows)


def test_the_docs_page_counts_what_is_declared_and_lists_what_is_not() -> None:
    check_output("static_shapes_coverage.md", coverage_table())
    check_output("static_shapes_runtime_only.md", runtime_only_table())
