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
  ``module.Error: message`` for the error it raised, followed by its notes, as a traceback
  shows them. The test compares the two
  (see ``tests/doc_outputs.py``; regenerate with ``UPDATE_DOC_OUTPUTS=1 python -m pytest
  tests/test_docs.py tests/test_bug_zoo.py -q``). A block that prints without showing its output
  fails: the page would hide what the code does.
"""

import contextlib
import html
import importlib
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
    {"out", "inp", "batch", "features", "classes"}
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
            notes = "".join(f"\n{note}" for note in getattr(error, "__notes__", ()))
            return printed.getvalue() + f"{error_name(type(error))}: {error}{notes}"
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


@dataclass
class Site:
    """The site as ``mkdocs build --strict`` wrote it, and what the build printed."""

    path: Path
    returncode: int
    log: str

    def page(self, name: str) -> str:
        """The HTML of one page, ``"api/gradcheck"`` for ``api/gradcheck/index.html``."""
        return (self.path / name / "index.html").read_text("utf-8")

    def pages(self) -> list[tuple[str, str]]:
        """Every page of the docs (not the search's or the theme's files), with its HTML."""
        return [
            (str(page.relative_to(self.path)), page.read_text("utf-8"))
            for page in sorted(self.path.rglob("index.html"))
        ]


@pytest.fixture(scope="session")
def site(tmp_path_factory: pytest.TempPathFactory) -> Site:
    """One strict build for every test that reads the built pages (it takes a minute or two)."""
    path = tmp_path_factory.mktemp("docs") / "site"
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    return Site(path, result.returncode, result.stdout + result.stderr)


def test_mkdocs_build_strict_passes(site: Site):
    assert site.returncode == 0, site.log
    assert "WARNING" not in site.log, site.log
    assert (site.path / "bug-zoo" / "index.html").is_file()


def visible_text(html_fragment: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", html_fragment))


CODE_BLOCK = re.compile(
    r'<div class="(?P<language>language-\w+) highlight">(?P<block>.*?)</pre></div>', re.S
)
"""A highlighted code block of a built page, with its language (pygments_lang_class)."""


def code_blocks(page_html: str) -> list[tuple[str, str]]:
    """Each code block's language and text, without the line numbers and the anchors."""
    blocks = []
    for match in CODE_BLOCK.finditer(page_html):
        code = match["block"].rsplit("<code>", 1)[-1]
        blocks.append((match["language"], visible_text(code)))
    return blocks


def test_a_docstrings_doctest_example_renders_as_a_code_block_not_as_blockquotes(site: Site):
    gradcheck = site.page("api/gradcheck")
    examples = [code for language, code in code_blocks(gradcheck) if language == "language-pycon"]
    assert any(">>> report.passed\nTrue" in code for code in examples), examples
    for name, page in site.pages():
        paragraphs = re.findall(r"<(?:p|blockquote)>(.*?)</(?:p|blockquote)>", page, re.S)
        assert not [p for p in paragraphs if visible_text(p).lstrip().startswith(">>>")], name


def test_the_docstrings_doctest_examples_run():
    import doctest

    modules = [
        ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        for path in sorted((ROOT / "typedbackprop").rglob("*.py"))
        if ">>> " in path.read_text("utf-8")
    ]
    assert modules  # the gradcheck module's example at least
    for name in modules:
        result = doctest.testmod(importlib.import_module(name), raise_on_error=False)
        assert result.attempted > 0 and result.failed == 0, (name, result)


MATH = re.compile(r'<(?:span|div) class="arithmatex">(.*?)</(?:span|div)>', re.S)


def test_the_math_escapes_no_underscore_inside_text(site: Site):
    # MathJax's \text{} is text mode without the textmacros package: `\_` would show as `\_`
    checked_text = 0
    for name, page in site.pages():
        for math in MATH.findall(page):
            for text in re.findall(r"\\text\{([^}]*)\}", html.unescape(math)):
                assert "\\" not in text, (name, text)
                checked_text += 1
    assert checked_text > 50
    assert r"\text{head_dim}" in html.unescape(site.page("derivations/attention"))


def test_the_table_of_contents_and_the_navigation_carry_no_raw_latex(site: Site):
    entries = 0
    for name, page in site.pages():
        for entry in re.findall(r'<span class="md-ellipsis">(.*?)</span>', page, re.S):
            text = visible_text(entry)
            assert not re.search(r"\\[(\[]|\$|\\[a-zA-Z]+", text), (name, text)
            entries += 1
    assert entries > 1000  # every page's navigation and contents
    network = site.page("network")
    assert "BP1: the output layer's δ" in network


def test_every_page_is_listed_once_in_the_navigation(site: Site):
    # every page's link in the navigation; the contents' links are anchors ("#..."), left out
    targets = re.findall(r'<a href="([^"#]+)"[^>]*class="md-nav__link', site.page(""))
    assert len(targets) > 60
    assert not sorted({target for target in targets if targets.count(target) > 1})


def test_the_start_page_names_the_families_not_only_dense_networks(site: Site):
    opening = visible_text(site.page("").split("<h1", 1)[1].split("<p>", 1)[1].split("</p>")[0])
    assert "fully connected" not in opening
    for family in ("convolution", "pooling", "batch norm", "attention", "transformer"):
        assert family in opening, family


TEXT_COLUMNS_AT_1280_PX = 104
"""How many characters of a code block's line show at a 1280 px wide window, without scrolling
(measured in Chromium: the text column with the contents integrated into the left one)."""


def test_code_fits_the_text_column_at_1280_px_and_output_wraps(site: Site):
    config = (ROOT / "mkdocs.yml").read_text("utf-8")
    assert "- toc.integrate" in config and "pygments_lang_class: true" in config
    css = (DOCS / "stylesheets" / "extra.css").read_text("utf-8")
    assert ".language-text pre > code" in css and "white-space: pre-wrap" in css
    code_lines = 0
    for name, page in site.pages():
        if name.startswith("api/"):
            continue  # the listings of the package's own source, shown as the file has them
        assert "stylesheets/extra.css" in page, name
        for language, code in code_blocks(page):
            if language in {"language-text", "language-console"}:
                continue  # output wraps
            if "def deriv_squared_loss" in code:
                continue  # the question's code, quoted as posted
            for line in code.splitlines():
                assert len(line) <= TEXT_COLUMNS_AT_1280_PX, (name, line)
                code_lines += 1
    assert code_lines > 1000


NUMBER_WORDS = {
    word: number
    for number, word in enumerate(
        "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen"
        " fifteen sixteen seventeen eighteen nineteen".split()
    )
}
NUMBER_WORDS |= {
    f"{tens}-{unit}" if unit else tens: 10 * t + u
    for t, tens in ((2, "twenty"), (3, "thirty"))
    for u, unit in enumerate(["", *"one two three four five six seven eight nine".split()])
}


def zoo_size() -> int:
    """The mistakes of the bug zoo: each bug's section in the two zoo files (not the fixes)."""
    sections = []
    for path in ("tests/bug_zoo.py", "tests/bug_zoo_mypy.py"):
        text = (ROOT / path).read_text("utf-8")
        sections += re.findall(r"^\s*# --8<-- \[start:(\w+)\]", text, re.M)
    return len([name for name in sections if not name.endswith("_fixed")])


def test_the_number_of_classic_mistakes_in_the_prose_is_the_zoos():
    size = zoo_size()
    table = (DOCS / "bug-zoo.md").read_text("utf-8").split("| bug | what goes wrong |")[1]
    rows = re.findall(r"^\| \[", table.split("\n\n")[0], re.M)
    assert len(rows) == size  # the bug zoo page's table: one row per mistake
    said = 0
    for path in (ROOT / "README.md", DOCS / "index.md", DOCS / "mutation-testing.md"):
        text = " ".join(path.read_text("utf-8").split())
        for word in re.findall(r"([\w-]+) classic mistakes", text):
            if word == "the":  # "list the classic mistakes"
                continue
            assert NUMBER_WORDS.get(word) == size, (path.name, word, size)
            said += 1
    assert said == 3


def test_the_readmes_affine_grad_params_is_the_source_without_its_docstring():
    hooks = load_hooks()
    listing = hooks.render_source("typedbackprop/nn/affine.py", "affine_grad_params", "")
    source = listing.split("\n", 1)[1].rsplit("\n```", 1)[0]
    readme = (ROOT / "README.md").read_text("utf-8")
    shown = [block.body for block in fences(readme) if "def affine_grad_params(" in block.body]
    assert shown == [source]


CITATION = re.compile(
    r"(?P<path>typedbackprop/[\w/]+\.py), (?:line (?P<line>\d+)|lines (?P<first>\d+)–(?P<last>\d+))"
)


def test_every_file_and_line_the_pages_cite_is_the_line_they_show(site: Site):
    """A citation ``path.py, line N`` heads the code of line N, or names a spec defined there."""
    cited = 0
    for name, page in site.pages():
        if name.startswith("api/"):
            continue
        for match in CITATION.finditer(page):
            lines = (ROOT / match["path"]).read_text("utf-8").splitlines()
            after = visible_text(page[match.end() : match.end() + 20000])
            if match["line"]:
                line = lines[int(match["line"]) - 1]
                before = visible_text(page[max(0, match.start() - 400) : match.start()])
                spec = re.search(r"(\w+) = Spec\(\.\.\.\) at\s*$", before)
                if spec:  # a spec's definition
                    assert line.startswith(f"{spec[1]} = Spec("), (name, match[0], line)
                else:  # a one-line listing: the line follows, after its line number
                    shown = after.lstrip().removeprefix(match["line"]).strip().split("\n")[0]
                    assert shown == line.strip(), (name, match[0], shown, line)
            else:  # a listing: its first line is the file's
                first = lines[int(match["first"]) - 1]
                assert first.strip() in after[:2000], (name, match[0], first)
            cited += 1
    assert cited > 100
    # no page cites a line by hand: every citation comes from a directive of docs/hooks.py
    for page in PAGES:
        assert not re.search(r"\.py, lines? \d", page.read_text("utf-8")), page


QUESTION_SEED = Path("/work/shared/seeds")


def test_the_question_page_quotes_the_questions_code_whole():
    """The question's last revision, as the kept copy of its page has it (outside the repo)."""
    page = (DOCS / "question.md").read_text("utf-8")
    quoted = next(
        block.body for block in fences(page) if "def backward(activations, targets" in block.body
    )
    body = quoted.split("\n", 2)
    assert body[0] == "import numpy as np  # not in the question's listing" and body[1] == ""
    copies = sorted(QUESTION_SEED.glob("000_*.txt"))
    if not copies:
        pytest.skip("the question's page is not kept in this checkout")
    revisions = re.findall(
        r"^(def initialize\(.*?^grads = backward\(activations, Y, parameters\))$",
        copies[0].read_text("utf-8"),
        re.M | re.S,
    )
    last = revisions[2]  # the page lists a diff, the revision before, then the last one
    assert "axis=0, ord=2" in last
    assert [line.strip() for line in body[2].splitlines()] == [
        line.strip() for line in last.splitlines()
    ]


# --- one notation: the batch-first page, and one letter per dimension ---------------------------


def test_batch_first_code_has_one_page_in_the_codes_notation():
    """The batch-first page's shapes are the annotations of the code it derives; no other page
    spells the layer batch first in a notation of its own (``A``, ``Z``, ``Δ``, ``grad_Z``)."""
    import typing

    from typedbackprop.nn import batch_first

    hints = typing.get_type_hints(batch_first.affine_forward_batch_first, include_extras=True)
    annotations = {name: hint.dim_str.split() for name, hint in hints.items()}
    page = (DOCS / "derivations" / "affine-batch-first.md").read_text("utf-8")
    heading = page.split("$$")[1]
    for name, symbol in (("W", "W"), ("b", "b"), ("a_prev", r"a^{\text{prev}}"), ("return", "z")):
        dims = re.search(re.escape(symbol) + r" \\in \\mathbb\{R\}\^\{(.*?)\}(?:,|\.)", heading)
        assert dims, (name, heading)
        assert re.findall(r"\\text\{(\w+)\}", dims[1]) == annotations[name], name
    assert "## PyTorch's layout: `W` as `(out, inp)`" in page
    for path in PAGES:
        text = path.read_text("utf-8")
        assert "third spelling" not in text, path
        assert not re.search(r"\bgrad_Z\b|\\Delta\^\\mathsf\{T\}|\bA @ W", text), path


INDEX_ROW = re.compile(r"^\| \$(?P<letter>[a-z])\$ \| (?P<names>`[^|]+`) \|", re.M)
NOT_DIMENSIONS = {"l", "L", "t"}
"""Letters that are no dimension: the layer numbers (``l``, the last ``L``) and ``t``, an entry of
an array taken flat (conventions.md says so under the table)."""


def index_letters() -> dict[str, list[str]]:
    """The table of docs/conventions.md: each letter and the dimension names it stands for."""
    text = (DOCS / "conventions.md").read_text("utf-8").split("### Index letters", 1)[1]
    return {row["letter"]: re.findall(r"`(\w+)`", row["names"]) for row in INDEX_ROW.finditer(text)}


def page_math(text: str) -> list[str]:
    """The TeX of a page's math: ``$$...$$`` and ``$...$``, code blocks and inline code left out."""
    text = FENCE.sub("", text)
    text = re.sub(r"`[^`\n]*`", "", text)
    display = re.findall(r"\$\$(.*?)\$\$", text, re.S)
    text = re.sub(r"\$\$(.*?)\$\$", "", text, flags=re.S)
    return display + re.findall(r"\$([^$\n]+(?:\n[^$\n]+)?)\$", text)


def subscripts(math: str) -> list[str]:
    """Every subscript of ``math`` (``_{...}`` with its braces matched, or ``_x``), nested too;
    an underscore inside ``\\text{...}`` (``\\text{kernel_h}``) is part of a name."""
    math = re.sub(r"\\text\{[^}]*\}", r"\\text{}", math)
    found = []
    position = math.find("_")
    while position != -1:
        start = position + 1
        if math[start : start + 1] == "{":
            depth, end = 1, start + 1
            while depth:
                depth += {"{": 1, "}": -1}.get(math[end], 0)
                end += 1
            group = math[start + 1 : end - 1]
            found += [group, *subscripts(group)]
            position = math.find("_", end)
        else:
            found.append(math[start : start + 1])
            position = math.find("_", start + 1)
    return found


def index_letters_of(subscript: str) -> list[str]:
    """The index letters of one subscript, a primed one as ``b'``.

    A subscript that holds a name (``\\text{col}``) or an expression (``ps+m``, ``l-1``) has no
    letters checked there but its plain indices (``c`` and ``b`` of ``c,\\,ps+m,\\,us+n,\\,b``); a
    ``\\substack`` contributes the indices before its ``:``.
    """
    if "\\substack" in subscript:
        subscript = subscript.split("\\substack{", 1)[1].split(":", 1)[0]
    subscript = re.sub(r"\\text\{[^}]*\}", "", subscript).replace("\\dots", "")
    letters = []
    for part in re.split(r",|\\,|\\;", subscript):
        part = part.strip()
        if not part or "_" in part or re.search(r"[-+=<>\\^]|\\le", part):
            continue  # empty, a nested subscript (scanned on its own), or an expression
        if part.isdigit() or part == ":":
            continue
        letters += re.findall(r"[A-Za-z]'?", part)
    return letters


def page_dimensions(text: str) -> set[str]:
    """The dimension names a page shows: in code and annotations, or as ``\\text{...}`` in math."""
    return {
        name
        for name in DIMENSIONS
        if re.search(rf'[`"\s{{]{name}[`"\s}}]', text) or f"\\text{{{name}}}" in text
    }


def test_the_table_of_index_letters_gives_one_letter_per_dimension():
    table = index_letters()
    assert len(table) >= 18, table
    names = [name for names in table.values() for name in names]
    assert len(names) == len(set(names)), "a dimension with two letters"
    assert set(names) <= DIMENSIONS, set(names) - DIMENSIONS
    assert not NOT_DIMENSIONS & set(table)


def test_the_specs_letters_are_the_tables():
    """Every spec's einsum uses the table's letters (a capital: the letter's second copy), and
    tests/nn/test_specs.py, which holds each letter of a spec to its operand's annotation, uses
    exactly the table."""
    import importlib.util

    from typedbackprop.nn.specs import Spec

    table = index_letters()
    expected = {name: (letter, letter.upper()) for letter, names in table.items() for name in names}
    path = ROOT / "tests" / "nn" / "test_specs.py"
    module_spec = importlib.util.spec_from_file_location("specs_under_test", path)
    assert module_spec is not None and module_spec.loader is not None
    specs_test = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(specs_test)
    used = {
        name: tuple(letters)
        for name, letters in specs_test.LETTERS.items()
        if not name.startswith("*")
    }
    for name, letters in used.items():
        assert set(letters) <= set(expected[name]), (name, letters, expected[name])
    specs = 0
    for module in pkgutil_modules():
        for value in vars(module).values():
            if isinstance(value, Spec):
                letters = set(value.equation) - set(" ,.->")
                assert {letter.lower() for letter in letters} <= set(table), value
                specs += 1
    assert specs > 30


def pkgutil_modules() -> list[object]:
    import pkgutil

    import typedbackprop.nn

    return [
        importlib.import_module(f"typedbackprop.nn.{info.name}")
        for info in pkgutil.iter_modules(typedbackprop.nn.__path__)
    ]


def test_every_index_on_the_pages_is_the_letter_of_a_dimension_the_page_names():
    """Every index of the pages' math is in the table (or a layer number, or ``t``), a primed
    one too, and stands for a dimension that the page itself shows (in an annotation, a shape, a
    ``\\text{}`` or a rendered spec or listing), so ``c`` on the softmax page, which shows no
    ``channels``, fails. A letter is not tied to the array it indexes: that is the specs'
    test."""
    hooks = load_hooks()
    table = index_letters()
    checked = 0
    wrong: dict[str, list[tuple[str, str]]] = {}
    for path in PAGES:
        if path.parent.name == "api":
            continue  # stubs that pull in docstrings
        text = path.read_text("utf-8")
        shown = page_dimensions(expand_snippets(hooks.expand(text)))
        for math in page_math(text):
            for subscript in subscripts(math):
                for letter in index_letters_of(subscript):
                    if letter in NOT_DIMENSIONS:
                        continue
                    index = letter.rstrip("'")
                    if index not in table or not set(table[index]) & shown:
                        wrong.setdefault(path.name, []).append((subscript, letter))
                    checked += 1
    assert checked > 500
    assert {name: found for name, found in wrong.items() if name not in NOT_YET} == {}
    assert set(wrong) >= NOT_YET, "a page now follows the table: take it off NOT_YET"


NOT_YET = {"bptt.md", "rnn.md", "gru.md", "lstm.md"}
"""The recurrent pages, written before the table: their subscripts are PyTorch's weight-block
names (``W_{ih}``, ``b_{hn}``, gates ``_r``, ``_z``) and ``hidden`` has no letter yet (``j`` and
``k`` there). The list may only shrink: a page that follows the table fails the test above."""


def test_the_index_check_catches_a_letter_of_another_page():
    table = index_letters()
    assert index_letters_of(r"c,\,ps+m,\,us+n,\,b") == ["c", "b"]
    assert index_letters_of("jbj'") == ["j", "b", "j'"]
    assert index_letters_of(r"\substack{m,n,p,u:\; ps+m = r}") == ["m", "n", "p", "u"]
    assert subscripts(r"\log a_{y_b,\,b} + x_{f\dots b}") == [r"y_b,\,b", "b", r"f\dots b"]
    softmax = (DOCS / "derivations" / "softmax.md").read_text("utf-8")
    assert "c" in table and not set(table["c"]) & page_dimensions(softmax)
