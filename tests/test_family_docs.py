"""Every layer family has its pages: a derivation, an API page, and both in the site's nav.

The families are read from :data:`typedbackprop.nn.families.FAMILIES` and each one's module from
its record (``record.__module__``), never from a hand list: a family added to the table fails
here until its pages exist (docs/architecture.md, "Adding a family").
"""

import re
from pathlib import Path

import pytest
import yaml

from typedbackprop.nn.families import FAMILIES

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
RECORDS = list(FAMILIES)
IDS = [record.__name__ for record in RECORDS]


def nav_pages(entries: object) -> set[str]:
    """Every page of mkdocs.yml's nav (a list of pages, ``{title: page}`` and sections)."""
    if isinstance(entries, str):
        return {entries}
    if isinstance(entries, list):
        return {page for entry in entries for page in nav_pages(entry)}
    if isinstance(entries, dict):
        return {page for value in entries.values() for page in nav_pages(value)}
    return set()


NAV = nav_pages(yaml.safe_load((ROOT / "mkdocs.yml").read_text("utf-8"))["nav"])


def api_pages(module: str) -> list[str]:
    """The pages of docs/api that render ``module`` (a ``::: module`` directive of its own)."""
    directive = re.compile(rf"^::: {re.escape(module)}\s*$", re.M)
    return sorted(
        f"api/{path.name}"
        for path in (DOCS / "api").glob("*.md")
        if directive.search(path.read_text("utf-8"))
    )


def pages_naming(names: set[str]) -> list[str]:
    """The derivation pages that name one of ``names`` as a word (``tbp.Dense``, not the
    ``Dense`` of ``TokenDense``)."""
    word = re.compile(rf"(?<!\w)(?:{'|'.join(map(re.escape, sorted(names)))})(?!\w)")
    return sorted(
        f"derivations/{path.name}"
        for path in (DOCS / "derivations").glob("*.md")
        if word.search(path.read_text("utf-8"))
    )


def derivation_pages(record: type) -> list[str]:
    """The derivation pages that name the family's record or its forward function."""
    return pages_naming({record.__name__, FAMILIES[record].forward.__name__})


@pytest.mark.parametrize("record", RECORDS, ids=IDS)
def test_every_family_has_an_api_page_in_the_nav(record):
    pages = api_pages(record.__module__)
    assert pages, f"no docs/api/*.md has '::: {record.__module__}'"
    assert set(pages) <= NAV, f"{record.__name__}: {sorted(set(pages) - NAV)} not in mkdocs.yml"


@pytest.mark.parametrize("record", RECORDS, ids=IDS)
def test_every_family_module_is_in_the_api_index(record):
    index = (DOCS / "api" / "index.md").read_text("utf-8")
    for page in api_pages(record.__module__):
        link = f"[`{record.__module__}`]({page.removeprefix('api/')})"
        assert link in index, f"docs/api/index.md has no row {link}"


@pytest.mark.parametrize("record", RECORDS, ids=IDS)
def test_every_family_has_a_derivation_page_in_the_nav(record):
    pages = derivation_pages(record)
    assert pages, (
        f"no docs/derivations/*.md names {record.__name__} or {FAMILIES[record].forward.__name__}"
    )
    assert set(pages) & NAV, f"{record.__name__}: none of {pages} is in mkdocs.yml's nav"


def test_the_checks_find_what_they_look_for_and_nothing_else():
    # The finders are not vacuous: a module with no page and a name on no page find nothing,
    # a name inside a longer one does not count, and the nav reader enters nested sections.
    assert api_pages("typedbackprop.nn.no_such_module") == []
    assert api_pages("typedbackprop.nn.affine") == ["api/affine.md"]
    assert pages_naming({"NoSuchLayer", "no_such_layer_forward"}) == []
    assert pages_naming({"TokenDense"}) == ["derivations/affine.md"]
    assert pages_naming({"okenDense"}) == []  # inside TokenDense: not a word
    assert "api/index.md" in NAV and "derivations/affine.md" in NAV
    assert nav_pages([{"A": [{"B": "b.md"}, "c.md"]}]) == {"b.md", "c.md"}
