"""``from __future__ import annotations`` does not defeat the runtime check.

With the import, every annotation is kept as a string until something asks for it;
``checked`` (beartype underneath) resolves those strings in the module's namespace, so a
wrongly shaped result is refused as it is without the import. docs/gradient-checking.md says
so; these tests hold it, on a module of a user's written to a temporary file and imported.
"""

import importlib.util
import re
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from jaxtyping import TypeCheckError

import typedbackprop as tbp

MODULE = """
from __future__ import annotations

import numpy as np
from jaxtyping import Float

from typedbackprop import Array, checked


def affine_unchecked(
    W: Float[Array, "out inp"], a_prev: Float[Array, "inp batch"]
) -> Float[Array, "out batch"]:
    return W @ a_prev


@checked
def affine(
    W: Float[Array, "out inp"], a_prev: Float[Array, "inp batch"]
) -> Float[Array, "out batch"]:
    return W @ a_prev


@checked
def affine_one_example_short(
    W: Float[Array, "out inp"], a_prev: Float[Array, "inp batch"]
) -> Float[Array, "out batch"]:
    return (W @ a_prev)[:, :-1]  # BUG: drops the last example
"""


@pytest.fixture
def user_module(tmp_path: Path) -> Iterator[ModuleType]:
    """The module above, written to a file and imported like any module of a user's."""
    path = tmp_path / "future_annotations_user.py"
    path.write_text(textwrap.dedent(MODULE))
    spec = importlib.util.spec_from_file_location("future_annotations_user", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        del sys.modules[spec.name]


def test_the_annotations_are_postponed_strings(user_module: ModuleType):
    hints = user_module.affine_unchecked.__annotations__
    assert all(isinstance(hint, str) for hint in hints.values()), hints
    assert "out batch" in hints["return"]


def test_a_correct_function_passes(user_module: ModuleType):
    W, a_prev = np.ones((4, 3)), np.ones((3, 5))  # out=4, inp=3, batch=5
    assert user_module.affine(W, a_prev).shape == (4, 5)


@pytest.mark.skipif(not tbp.CHECKS_ENABLED, reason="TYPEDBACKPROP_CHECKS=0 turns checks off")
def test_a_wrongly_shaped_result_is_refused_naming_the_dimension(user_module: ModuleType):
    W, a_prev = np.ones((4, 3)), np.ones((3, 5))
    with pytest.raises(TypeCheckError) as caught:
        user_module.affine_one_example_short(W, a_prev)
    lines = str(caught.value).splitlines()
    assert "batch" in lines[0], caught.value  # the first line names the dimension that disagrees
    assert {"out=4", "inp=3", "batch=5"} <= set(lines), caught.value  # the sizes bound


@pytest.mark.skipif(not tbp.CHECKS_ENABLED, reason="TYPEDBACKPROP_CHECKS=0 turns checks off")
def test_a_wrongly_shaped_argument_is_refused_naming_the_dimension(user_module: ModuleType):
    with pytest.raises(TypeCheckError) as caught:
        user_module.affine(np.ones((4, 3)), np.ones((2, 5)))  # inp=3 from W, 2 rows in a_prev
    lines = str(caught.value).splitlines()
    assert "a_prev" in lines[0] and re.search(r"\binp\b", lines[0]), caught.value
    assert {"out=4", "inp=3"} <= set(lines), caught.value
