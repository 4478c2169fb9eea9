"""MkDocs hooks: pages show the package's real source and real line numbers, read at build time.

Two directives, written as HTML comments so that a page still reads cleanly as plain Markdown:

``<!-- source: typedbackprop/nn/affine.py affine_grad_params -->``
    The function or class, as it is in the file now, with its docstring left out (the API
    reference shows the docstring). Add ``numbered`` to keep the docstring and show the file's
    own line numbers, and ``highlight="text"`` to highlight every line that contains ``text``.

``<!-- line: typedbackprop/nn/network.py "# BP1" -->``
    The one line of the file that contains the quoted text, numbered as in the file.

``<!-- spec: typedbackprop/nn/affine.py AFFINE_GRAD_W -->``
    A backward's index form as its :class:`~typedbackprop.nn.specs.Spec` states it, with the
    einsum that evaluates it and the line that defines it: the equation the tests hold to the
    code (``tests/nn/test_specs.py``).

A directive whose file, name or text is missing, or whose text matches more than one line, stops
the build, so a page can neither show code that no longer exists nor point at the wrong line.
"""

import ast
import importlib
import re
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

SOURCE = re.compile(r"^<!-- source: (?P<path>\S+) (?P<name>\w+)(?P<options>[^>]*?) -->$", re.M)
LINE = re.compile(r'^<!-- line: (?P<path>\S+) "(?P<text>[^"]+)" -->$', re.M)
SPEC = re.compile(r"^<!-- spec: (?P<path>\S+) (?P<name>\w+) -->$", re.M)
HIGHLIGHT = re.compile(r'highlight="(?P<text>[^"]+)"')


class DirectiveError(ValueError):
    """A directive names something the source does not have."""


def _read(path: str) -> list[str]:
    file = ROOT / path
    if not file.is_file():
        raise DirectiveError(f"no file {path} (paths are relative to the repository root)")
    return file.read_text(encoding="utf-8").splitlines()


def _definition(path: str, name: str) -> ast.FunctionDef | ast.ClassDef:
    tree = ast.parse((ROOT / path).read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.ClassDef) and node.name == name:
            return node
    raise DirectiveError(f"{path} defines no top-level function or class {name!r}")


def _docstring_lines(node: ast.FunctionDef | ast.ClassDef) -> range:
    first = node.body[0]
    is_docstring = (
        isinstance(first, ast.Expr)
        and isinstance(first.value, ast.Constant)
        and isinstance(first.value.value, str)
    )
    if not is_docstring or first.end_lineno is None:
        return range(0)
    return range(first.lineno, first.end_lineno + 1)


def _fence(lines: list[str], title: str, first_line: int | None, highlight: list[int]) -> str:
    options = [f'title="{title}"']
    if first_line is not None:
        options.append(f'linenums="{first_line}"')
    if highlight:
        options.append(f'hl_lines="{" ".join(str(n) for n in highlight)}"')
    return "\n".join([f"```python {' '.join(options)}", *lines, "```"])


def render_source(path: str, name: str, options: str) -> str:
    """The fenced block that replaces one ``source`` directive."""
    lines = _read(path)
    node = _definition(path, name)
    start = node.decorator_list[0].lineno if node.decorator_list else node.lineno
    end = node.end_lineno or node.lineno
    numbered = "numbered" in options.split()
    skip = range(0) if numbered else _docstring_lines(node)
    kept = [n for n in range(start, end + 1) if n not in skip]
    marker = HIGHLIGHT.search(options)
    highlight = []
    if marker:
        highlight = [i + 1 for i, n in enumerate(kept) if marker["text"] in lines[n - 1]]
        if not highlight:
            raise DirectiveError(f"no line of {path}:{name} contains {marker['text']!r}")
    title = f"{path}, lines {start}–{end}"
    if skip:
        title += " (docstring omitted)"
    return _fence([lines[n - 1] for n in kept], title, start if numbered else None, highlight)


def render_line(path: str, text: str) -> str:
    """The fenced one-line block that replaces one ``line`` directive."""
    lines = _read(path)
    found = [n for n, line in enumerate(lines, start=1) if text in line]
    if len(found) != 1:
        raise DirectiveError(f"{len(found)} lines of {path} contain {text!r}; need exactly one")
    number = found[0]
    return _fence([lines[number - 1].strip()], f"{path}, line {number}", number, [])


def render_spec(path: str, name: str) -> str:
    """The admonition that replaces one ``spec`` directive."""
    lines = _read(path)
    found = [n for n, line in enumerate(lines, start=1) if line.startswith(f"{name} = Spec(")]
    if len(found) != 1:
        raise DirectiveError(f"{path} defines no spec {name!r} (a line '{name} = Spec(...)')")
    module = importlib.import_module(path.removesuffix(".py").replace("/", "."))
    spec = getattr(module, name)
    return "\n".join(
        [
            '!!! check "Index form, held to the code"',
            "",
            f"    `{spec.index_form()}`, evaluated as `{spec.einsum_call()}`, is stated once,",
            f"    as `{name} = Spec(...)` at {path}, line {found[0]}. The tests evaluate it on",
            "    inputs whose every dimension has its own size and compare it with the function,",
            "    whose docstring states it.",
        ]
    )


def expand(markdown: str) -> str:
    """Replace every directive of a page by the code it names."""
    markdown = SOURCE.sub(lambda m: render_source(m["path"], m["name"], m["options"]), markdown)
    markdown = SPEC.sub(lambda m: render_spec(m["path"], m["name"]), markdown)
    return LINE.sub(lambda m: render_line(m["path"], m["text"]), markdown)


def on_page_markdown(markdown: str, page: Any, **kwargs: Any) -> str:
    """MkDocs event: expand the directives before the Markdown is converted."""
    try:
        return expand(markdown)
    except DirectiveError as error:
        raise DirectiveError(f"{page.file.src_path}: {error}") from None
