"""One vocabulary: the names on the pages are the names in the code, and the rule has one wording.

- The tables of docs/conventions.md ("Which name each array has") are compared with the
  annotations of every function and record they list, read with ``typing.get_type_hints``, and
  every public function and record of the math modules (every family's module, read from
  ``FAMILIES``, and the modules they share) must be in one table.
- Docstrings use only the dimension names of their table.
- The 1-D chain rule is worded one way everywhere: "upstream gradient times local gradient".
- Every overflow limit of ``exp`` quoted on a page or in a docstring is the one NumPy gives.
- A layer's input is ``x``, but where the math names it otherwise (the dense layer's ``a_prev``,
  an activation's ``z``, an embedding's ``ids``), and a cache that saves it saves it under its
  forward's name for it.
"""

import dataclasses
import importlib.util
import inspect
import re
import sys
import typing
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from families import CASES

from typedbackprop.nn import batch_first, losses, network, softmax
from typedbackprop.nn.families import FAMILIES

ROOT = Path(__file__).resolve().parent.parent
CONVENTIONS = ROOT / "docs" / "conventions.md"
FAMILY_MODULES = sorted(
    {sys.modules[record.__module__] for record in FAMILIES}, key=lambda module: module.__name__
)
"""The module of every family, read from its record: a new family's module is held to the
tables as soon as its row is in ``FAMILIES``, and fails until its arrays are in one."""
MODULES = [*FAMILY_MODULES, softmax, losses, network, batch_first]
"""The modules whose arrays the tables name: every family's, and the math the families share
(softmax, the losses, the network, the batch-first twin)."""


@dataclass
class Scope:
    title: str
    members: list[str]
    rows: dict[str, set[str]]
    """Each array's annotations, as jaxtyping normalizes them (``" out"`` is ``"out"``)."""

    @property
    def dimensions(self) -> set[str]:
        return {
            word for annotations in self.rows.values() for a in annotations for word in a.split()
        }


SCOPE = re.compile(
    r"^\*\*(?P<title>[^*]+)\*\* Used by (?P<members>(?:.+\n)+?)\n(?P<table>(?:\|.*\n)+)", re.M
)


def scopes() -> list[Scope]:
    text = CONVENTIONS.read_text(encoding="utf-8")
    found = []
    for match in SCOPE.finditer(text):
        used_by = re.split(r"\.(?:\s|$)", match["members"])[0]  # the first sentence
        members = re.findall(r"`(\w+)`", used_by)
        rows: dict[str, set[str]] = {}
        for line in match["table"].splitlines()[2:]:
            cells = [cell.strip() for cell in line.strip("|").split("|")]
            name = re.fullmatch(r"`(\w+)`", cells[0])
            assert name, line
            annotations = {" ".join(a.split()) for a in re.findall(r'`"([^"`]*)"`', cells[1])}
            assert annotations, line
            assert name[1] not in rows, f"{name[1]} twice in one table"
            rows[name[1]] = annotations
        found.append(Scope(match["title"].strip(), members, rows))
    return found


def dims_of(hint: object) -> set[str]:
    """Every named-dimension string in ``hint`` (unions and tuples searched), normalized."""
    if hasattr(hint, "dim_str"):
        return {" ".join(hint.dim_str.split())}
    return {dims for part in typing.get_args(hint) for dims in dims_of(part)}


def returned_names(function: object) -> list[str]:
    """The names a numpydoc Returns section gives, in order (``grad_W, grad_b`` counts two)."""
    lines = (inspect.getdoc(function) or "").splitlines()
    if "Returns" not in lines:
        return []
    names: list[str] = []
    section = lines[lines.index("Returns") + 2 :]
    for line, following in zip(section, [*section[1:], ""], strict=True):
        if following.startswith("---"):
            break  # the next section's title
        if line and not line[0].isspace():
            names += [name.strip() for name in line.split(",")]
    return names


def arrays_of(obj: object) -> dict[str, set[str]]:
    """Each annotated array of a function (arguments and named results) or a record (fields)."""
    hints = typing.get_type_hints(obj, include_extras=True)
    arrays = {name: dims_of(hint) for name, hint in hints.items() if name != "return"}
    if "return" in hints and not isinstance(obj, type) and dims_of(hints["return"]):
        hint = hints["return"]
        parts = typing.get_args(hint) if typing.get_origin(hint) is tuple else (hint,)
        names = returned_names(obj)
        assert len(names) == len(parts), f"{obj.__name__}: Returns names {names} for {hint}"
        arrays.update(zip(names, map(dims_of, parts), strict=True))
    return {name: dims for name, dims in arrays.items() if dims}


def public_objects() -> dict[str, object]:
    objects: dict[str, object] = {}
    for module in MODULES:
        for name in module.__all__:
            obj = getattr(module, name)
            if inspect.isfunction(obj) or (
                inspect.isclass(obj) and hasattr(obj, "__annotations__")
            ):
                assert objects.get(name, obj) is obj, f"two public objects named {name}"
                objects[name] = obj
    return objects


def fixed(dims: set[str]) -> bool:
    """Whether some annotation names an axis of its own, not only variadic groups
    (``"*input"``): ``"*features batch"`` does, and so does a merged axis ``"c*h*w batch"``."""
    return any(not word.startswith("*") for d in dims for word in d.split())


SCOPES = scopes()
OBJECTS = public_objects()
PLACES = [(scope, member) for scope in SCOPES for member in scope.members]


def test_the_page_has_a_table_for_every_family_module():
    titles = [scope.title for scope in SCOPES]
    assert len(titles) == len(set(titles)) and titles[:4] == [
        "A dense layer, features first.",
        "An activation.",
        "Softmax and its cross-entropy.",
        "A dense layer, batch first.",
    ]
    listed = {member for scope in SCOPES for member in scope.members}
    for module in FAMILY_MODULES:
        assert {name for name in module.__all__ if name in OBJECTS} & listed, (
            f"{module.__name__}: no table of docs/conventions.md lists its arrays"
        )


def test_a_family_module_is_held_to_the_tables_by_its_record():
    # Derived from FAMILIES, never a hand list: every family's module is among the modules read,
    # and a family's own forward is in a table.
    assert {record.__module__ for record in FAMILIES} <= {module.__name__ for module in MODULES}
    listed = {member for scope in SCOPES for member in scope.members}
    assert {family.forward.__name__ for family in FAMILIES.values()} <= listed
    assert fixed({"*features batch"}) and not fixed({"*input"})


@pytest.mark.parametrize(("scope", "member"), PLACES, ids=[f"{s.title}{m}" for s, m in PLACES])
def test_every_array_has_its_tables_annotation(scope, member):
    assert member in OBJECTS, f"{member} is listed but is no public function or record"
    for name, dims in arrays_of(OBJECTS[member]).items():
        assert name in scope.rows, f"{member}: {name} is annotated {dims}; the table lacks it"
        assert dims <= scope.rows[name], (
            f"{member}: {name} is annotated {dims}, the table says {scope.rows[name]}"
        )


@pytest.mark.parametrize("scope", SCOPES, ids=[scope.title for scope in SCOPES])
def test_every_row_of_a_table_is_used(scope):
    used: dict[str, set[str]] = {name: set() for name in scope.rows}
    for member in scope.members:
        for name, dims in arrays_of(OBJECTS[member]).items():
            used[name] |= dims
    assert used == scope.rows


def test_every_public_function_and_record_with_named_dimensions_is_in_one_table():
    listed = [member for scope in SCOPES for member in scope.members]
    assert len(listed) == len(set(listed)), "a name in two tables"
    unlisted = {
        name
        for name, obj in OBJECTS.items()
        if any(fixed(dims) for dims in arrays_of(obj).values())
    } - set(listed)
    assert not unlisted, f"in no table of docs/conventions.md: {sorted(unlisted)}"


DIMENSION_WORDS = sorted(
    {word for scope in SCOPES for word in scope.dimensions if not word.startswith("*")},
    key=lambda word: (-len(word), word),  # head_dim before head: the longest name matches
)
"""Every dimension name a table uses, read from the tables."""

TUPLE = re.compile(
    rf"\(((?:{'|'.join(DIMENSION_WORDS)})(?:, (?:{'|'.join(DIMENSION_WORDS)}))*),?\)"
)


STANDS_FOR = {"*positions": {"height", "width", "seq"}, "*spatial": {"height", "width"}}
"""The axes a variadic group is, where a docstring spells it out: ``(features, seq, batch)``
for an activation over tokens, ``(channels, height, width, batch)`` for batch norm on images."""


@pytest.mark.parametrize(("scope", "member"), PLACES, ids=[f"{s.title}{m}" for s, m in PLACES])
def test_docstrings_use_only_their_tables_dimension_names(scope, member):
    allowed = scope.dimensions.union(*(STANDS_FOR.get(word, set()) for word in scope.dimensions))
    doc = inspect.getdoc(OBJECTS[member]) or ""
    for words in TUPLE.findall(doc):
        assert set(words.split(", ")) <= allowed, (member, words)


def test_a_docstring_with_another_tables_dimension_fails():
    (scope,) = [scope for scope in SCOPES if scope.title == "Layer norm."]
    assert TUPLE.findall("shaped (heads, head_dim, features)") == ["heads, head_dim, features"]
    assert not {"heads", "head_dim"} <= scope.dimensions


# --- one wording of the 1-D chain rule ---------------------------------------------------------

TEXTS = sorted(
    [*(ROOT / "docs").rglob("*.md"), *(ROOT / "typedbackprop").rglob("*.py"), ROOT / "README.md"]
)
OTHER_WORDINGS = re.compile(
    r"local(?: gradient)? times (?:the )?upstream"
    r"|upstream times local"
    r"|global(?: gradient)? times local"
    r"|upstream gradient times local(?! gradient)"
    r"|Jacobian-vector product"
    r"|gradients? upstream(?! gradient)",  # upstream is the loss's side, not the input's
    re.I,
)


def test_the_1d_rule_has_one_wording_everywhere():
    found = []
    for path in TEXTS:
        text = " ".join(path.read_text(encoding="utf-8").split())  # a phrase may wrap a line
        found += [(path.relative_to(ROOT), m[0]) for m in OTHER_WORDINGS.finditer(text)]
    assert not found, "say 'upstream gradient times local gradient': " + repr(found)
    wordings = sum(
        " ".join(path.read_text(encoding="utf-8").split()).count(
            "upstream gradient times local gradient"
        )
        for path in TEXTS
    )
    assert wordings >= 10  # the phrase is there to be found


def test_the_other_wordings_are_recognised():
    for wrong in [
        "local gradient times upstream gradient",
        "upstream times local",
        "global times local",
        "every gradient upstream inherits it",  # upstream used for the input's side
        "the gradients upstream of the loss",
    ]:
        assert OTHER_WORDINGS.search(wrong)
    assert not OTHER_WORDINGS.search("upstream gradient times local gradient")
    assert not OTHER_WORDINGS.search("each gradient is the upstream gradient times the local")


# --- exp's overflow limits ------------------------------------------------------------------------

LIMITS = {
    f"{float(np.log(np.finfo(kind).max)) - margin:.2f}"
    for kind in (np.float64, np.float32)
    for margin in (0.0, 1.0)
}
"""``log(max)`` (709.78, 88.72) and the code's switch, ``log(max) - 1`` (708.78, 87.72)."""

NEAR_A_LIMIT = re.compile(r"(?<![\w.])(?:7[01]\d|8[6-9])(?:\.\d+)?(?![\w.])")


def test_every_quoted_overflow_limit_is_numpys():
    quoted = []
    for path in TEXTS:
        for line in path.read_text(encoding="utf-8").splitlines():
            if "overflow" in line or "exp" in line:
                quoted += [(path.name, number) for number in NEAR_A_LIMIT.findall(line)]
    wrong = [(name, number) for name, number in quoted if number not in LIMITS]
    assert not wrong, f"limits are {sorted(LIMITS)}: {wrong}"
    assert len(quoted) >= 4


# --- the spec directive of the docs -------------------------------------------------------------


def load_hooks():
    spec = importlib.util.spec_from_file_location("docs_hooks", ROOT / "docs" / "hooks.py")
    assert spec is not None and spec.loader is not None
    hooks = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hooks)
    return hooks


def test_the_spec_directive_renders_the_spec_and_fails_loudly_on_a_missing_one():
    hooks = load_hooks()
    page = hooks.expand("<!-- spec: typedbackprop/nn/affine.py AFFINE_GRAD_W -->")
    assert "`∂L/∂W_{oi} = Σ_b δ_{ob} a_prev_{ib}`" in page
    assert 'np.einsum("ob,ib->oi", grad_z, a_prev)' in page
    number = int(re.search(r"line (\d+)", page)[1])
    lines = (ROOT / "typedbackprop/nn/affine.py").read_text().splitlines()
    assert lines[number - 1].startswith("AFFINE_GRAD_W = Spec(")
    with pytest.raises(hooks.DirectiveError, match="no spec 'NO_SUCH_SPEC'"):
        hooks.expand("<!-- spec: typedbackprop/nn/affine.py NO_SUCH_SPEC -->")


# --- the input of a layer, in its forward and in its cache ----------------------------------------

INPUT_NAMES = {"Dense": "a_prev", "Activation": "z", "Embedding": "ids"}
"""The families whose input is not ``x``: the names of the math (``z = W a_prev + b`` and
BP1-BP4 for the dense layer, ``a = σ(z)`` for an activation, integer token ids for an
embedding). docs/conventions.md says why."""


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_a_layer_names_its_input_x_and_its_cache_saves_it_by_that_name(case):
    layer, x = case.build(np.random.default_rng(0), np.float64)
    family = FAMILIES[type(layer)]
    name = list(inspect.signature(family.forward).parameters)[1]
    assert name == INPUT_NAMES.get(type(layer).__name__, "x")
    _, cache = family.run(layer, x, case.mode)
    fields = {field.name: getattr(cache, field.name) for field in dataclasses.fields(cache)}
    saved = [field for field, value in fields.items() if value is x]
    assert not saved or name in saved  # (the identity's output is its input too: z and a)
    if name in fields:  # a field of the input's name holds the input itself
        assert fields[name] is x


def test_most_caches_save_their_input_as_it_was_given():
    saving = set()
    for case in CASES:
        layer, x = case.build(np.random.default_rng(0), np.float64)
        _, cache = FAMILIES[type(layer)].run(layer, x, case.mode)
        if any(getattr(cache, field.name) is x for field in dataclasses.fields(cache)):
            saving.add(type(layer).__name__)
    # Batch norm saves x̂, attention's caches its projections, the block its parts' caches.
    assert {"Dense", "Activation", "Embedding", "LayerNorm", "Conv2d", "Flatten"} <= saving
