"""The outputs the documentation shows, kept equal to what the code really prints.

Every error message, report and command output on a docs page is a file in
``docs/snippets/output/``, included into the page with pymdownx.snippets. The tests that produce
each output compare it with its file; after a deliberate change, regenerate them all with::

    UPDATE_DOC_OUTPUTS=1 python -m pytest tests/test_docs.py tests/test_bug_zoo.py -q

Numbers are compared to a relative 1e-6 (an absolute 1e-9 near zero), so that the last digits of
a float, which may differ between machines (BLAS kernels sum in different orders), do not make the
pages fail; every other character must match exactly. In a gradcheck report, a row that passed
(``... ok``) is compared by its input's name alone: its numbers, and which entry is "worst", are
rounding noise of order 1e-12.
"""

import math
import os
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUTPUT_DIR = ROOT / "docs" / "snippets" / "output"
UPDATE = os.environ.get("UPDATE_DOC_OUTPUTS") == "1"
REGENERATE = "UPDATE_DOC_OUTPUTS=1 python -m pytest tests/test_docs.py tests/test_bug_zoo.py -q"

NUMBER = re.compile(r"[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?")
PASSED_ROW = re.compile(r"^(?P<name>\S+) .*  ok$", re.M)


def _same_text(expected: str, actual: str) -> bool:
    expected = PASSED_ROW.sub(r"\g<name> ok", expected)
    actual = PASSED_ROW.sub(r"\g<name> ok", actual)
    if NUMBER.split(expected) != NUMBER.split(actual):
        return False
    for want, got in zip(NUMBER.findall(expected), NUMBER.findall(actual), strict=True):
        if want == got:
            continue
        if not math.isclose(float(want), float(got), rel_tol=1e-6, abs_tol=1e-9):
            return False
    return True


def check_output(name: str, actual: str) -> None:
    """Assert that ``docs/snippets/output/<name>`` holds ``actual`` (or write it, when updating)."""
    path = OUTPUT_DIR / name
    text = actual.rstrip("\n") + "\n"
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return
    assert path.is_file(), f"docs output {name} does not exist; create it with:\n  {REGENERATE}"
    expected = path.read_text(encoding="utf-8")
    assert _same_text(expected, text), (
        f"docs/snippets/output/{name} is stale: the page shows\n{expected}\nbut the code now "
        f"gives\n{text}\nIf the change is intended, regenerate the outputs with:\n  {REGENERATE}"
    )
