"""The documentation builds strictly, every example on it runs, and every output it shows is real.

Conventions the pages follow, which these tests enforce:

- Every ```` ```python ```` block of a page runs, in order, in one namespace per page. Code
  included with pymdownx.snippets runs as the reader sees it. Inside python blocks the pages use
  the block form (a line ``--8<--``, one ``path`` or ``path:section`` per line, a line ``--8<--``),
  which ``ruff format`` leaves alone; the one-line form ``--8<-- "path"`` would be reformatted as
  Python.
- A block whose code contains a line ``# raises SomeError`` must raise that error.
- A python block followed directly by a ```` ```text ```` block that includes
  ``docs/snippets/output/NAME`` shows its real output there: what it printed, or
  ``module.Error: message`` for the error it raised. The test compares the two
  (see ``tests/doc_outputs.py``; regenerate with ``UPDATE_DOC_OUTPUTS=1 python -m pytest
  tests/test_docs.py tests/test_bug_zoo.py -q``). A block that prints without showing its output
  fails: the page would hide what the code does.
"""

import contextlib
import importlib.util
import io
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from doc_outputs import OUTPUT_DIR, ROOT, check_output

DOCS = ROOT / "docs"
PAGES = sorted(DOCS.rglob("*.md"))

FENCE = re.compile(
    r"^(?P<indent>[ ]*)(?P<ticks>`{3,})(?P<info>[^\n`]*)\n(?P<body>.*?)^(?P=indent)(?P=ticks)[ ]*$",
    re.M | re.S,
)
SNIPPET = re.compile(r'^--8<-- "(?P<target>[^"]+)"[ ]*$', re.M)
SNIPPET_BLOCK = re.compile(r"^--8<--[ ]*\n(?P<targets>.*?)\n--8<--[ ]*$", re.M | re.S)
SECTION_MARKER = re.compile(r"-+8<-+[ \t]+\[[ \t]*(?:start|end)[ \t]*:")
RAISES = re.compile(r"^# raises (?P<name>[\w.]+)", re.M)
OUTPUT = re.compile(r'\A--8<-- "docs/snippets/output/(?P<name>[^"]+)"\s*\Z')

DIMENSIONS = (
    {"out", "in", "batch", "features", "classes"}
    | {"vocab", "seq", "context", "heads", "head_dim", "query", "key", "hidden", "positions"}
    | {  # fmt: skip
        "channels",
        "height",
        "width",
        "in_channels",
        "out_channels",
        "kernel_h",
        "kernel_w",
        "out_height",
        "out_width",
    }
)  # the images' dimensions, for the convolution, pooling and batch norm pages


@dataclass
class Fence:
    language: str
    body: str
    line: int
    start: int
    end: int


def fences(text: str) -> list[Fence]:
    found = []
    for match in FENCE.finditer(text):
        info = match["info"].strip()
        language = info.split()[0] if info else ""
        body = "\n".join(line.removeprefix(match["indent"]) for line in match["body"].splitlines())
        line = text.count("\n", 0, match.start()) + 1
        found.append(Fence(language, body, line, match.start(), match.end()))
    return found


def read_snippet(target: str) -> str:
    path, _, section = target.partition(":")
    lines = (ROOT / path).read_text(encoding="utf-8").splitlines()
    if section:
        start = next(i for i, line in enumerate(lines) if f"[start:{section}]" in line)
        end = next(i for i, line in enumerate(lines) if f"[end:{section}]" in line)
        lines = lines[start + 1 : end]
    return "\n".join(line for line in lines if not SECTION_MARKER.search(line))


def expand_snippets(body: str) -> str:
    """What pymdownx.snippets puts in the page for a block (the forms the pages use)."""
    body = SNIPPET_BLOCK.sub(
        lambda match: "\n".join(
            read_snippet(target.strip())
            for target in match["targets"].splitlines()
            if target.strip()
        ),
        body,
    )
    return SNIPPET.sub(lambda match: read_snippet(match["target"]), body)


def error_name(kind: type[BaseException]) -> str:
    """``jaxtyping.TypeCheckError`` rather than ``jaxtyping._errors.TypeCheckError``."""
    if kind.__module__ == "builtins":
        return kind.__qualname__
    package = sys.modules[kind.__module__.split(".")[0]]
    if getattr(package, kind.__qualname__, None) is kind:
        return f"{package.__name__}.{kind.__qualname__}"
    return f"{kind.__module__}.{kind.__qualname__}"


def run_block(code: str, namespace: dict[str, object], where: str) -> str:
    """Run one block; return what the page should show as its output."""
    expected = RAISES.search(code)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        try:
            exec(compile(code, where, "exec"), namespace)
        except Exception as error:
            if expected is None or expected["name"] not in {
                type(error).__name__,
                error_name(type(error)),
            }:
                raise
            return printed.getvalue() + f"{error_name(type(error))}: {error}"
    assert expected is None, f"{where} says it raises {expected['name']}, but it ran"
    return printed.getvalue()


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(DOCS)) for p in PAGES])
def test_every_example_on_the_page_runs_and_shows_its_real_output(page: Path):
    text = page.read_text(encoding="utf-8")
    blocks = fences(text)
    namespace: dict[str, object] = {"__name__": "__main__"}
    for index, block in enumerate(blocks):
        if block.language != "python":
            continue
        where = f"{page.relative_to(ROOT)}:{block.line}"
        shown = run_block(expand_snippets(block.body), namespace, where)
        following = blocks[index + 1] if index + 1 < len(blocks) else None
        directly = following is not None and not text[block.end : following.start].strip()
        output = OUTPUT.match(following.body) if directly and following.language == "text" else None
        if output:
            check_output(output["name"], shown)
        else:
            assert not shown, f"{where} prints {shown!r}, and the page does not show it"


def test_every_output_file_is_on_a_page():
    used = set()
    for page in PAGES:
        used.update(re.findall(r'--8<-- "docs/snippets/output/([^"]+)"', page.read_text("utf-8")))
    files = {path.name for path in OUTPUT_DIR.iterdir()}
    assert files == used


def real_space_exponents(text: str) -> list[str]:
    """The exponent of every ``\\mathbb{R}^{...}`` in the page's math, braces matched."""
    exponents = []
    start = text.find("\\mathbb{R}^{")
    while start != -1:
        position, depth = start + len("\\mathbb{R}^{"), 1
        while depth:
            depth += {"{": 1, "}": -1}.get(text[position], 0)
            position += 1
        exponents.append(text[start + len("\\mathbb{R}^{") : position - 1])
        start = text.find("\\mathbb{R}^{", position)
    return exponents


def test_dimension_names_on_the_pages_are_the_annotations_names():
    checked_names = 0
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        for annotation in re.findall(r'(?:Float|Int)\[\w+, "([^"]*)"\]', text):
            assert set(annotation.split()) <= DIMENSIONS | {"*shape", "*positions"}, (
                page,
                annotation,
            )
            checked_names += 1
        for exponent in real_space_exponents(text):
            names = re.findall(r"\\text\{(\w+)\}", exponent)
            assert names and set(names) <= DIMENSIONS, (page, exponent)
            checked_names += 1
    assert checked_names > 20  # the pattern still finds what it checks


def test_the_explain_command_prints_what_the_start_page_shows():
    command = ["typedbackprop", "explain", "3,4,4,2", "--batch", "5"]
    result = subprocess.run(
        [sys.executable, "-m", *command],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "COLUMNS": "100", "NO_COLOR": "1", "TERM": "dumb"},
    )
    assert result.returncode == 0, result.stderr
    check_output("explain_3_4_4_2.txt", f"$ {' '.join(command)}\n{result.stdout}")


def load_hooks():
    spec = importlib.util.spec_from_file_location("docs_hooks", DOCS / "hooks.py")
    assert spec is not None and spec.loader is not None
    hooks = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hooks)
    return hooks


def test_the_source_directives_fail_loudly_on_a_missing_name_or_line():
    hooks = load_hooks()
    with pytest.raises(hooks.DirectiveError, match="no top-level function"):
        hooks.expand("<!-- source: typedbackprop/nn/affine.py no_such_function -->")
    with pytest.raises(hooks.DirectiveError, match="0 lines"):
        hooks.expand('<!-- line: typedbackprop/nn/network.py "# BP9" -->')
    block = hooks.expand('<!-- line: typedbackprop/nn/affine.py "grad_W = grad_z @ a_prev.T" -->')
    lines = (ROOT / "typedbackprop/nn/affine.py").read_text().splitlines()
    number = int(re.search(r'linenums="(\d+)"', block)[1])
    assert "grad_W = grad_z @ a_prev.T" in lines[number - 1]


def test_mkdocs_build_strict_passes(tmp_path: Path):
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(tmp_path / "site")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "WARNING" not in result.stderr, result.stderr
    assert (tmp_path / "site" / "bug-zoo" / "index.html").is_file()
