"""A Griffe extension: render the Sphinx roles of the package's docstrings as links.

The numpydoc docstrings say :func:`affine_grad_params` and :class:`Dense`, as Sphinx would
have them. mkdocstrings does not read Sphinx roles; without this extension they would appear
verbatim in the API reference. Each role becomes a cross-reference to the object's entry when
the object is public, part of the package and documented (so that it has an entry to link to), and
plain code otherwise (``jaxtyping.TypeCheckError``).

A second extension, :class:`DoctestBlocks`, fences the docstrings' doctest examples: a run of
``>>>`` lines is reStructuredText's doctest block, which Markdown would read as three nested
blockquotes of run-on text.
"""

import re
from typing import Any

import griffe

ROLE = re.compile(r":(?:func|class|mod|meth|attr|data|exc):`~?(?P<name>[\w.]+)`")


def _find(package: griffe.Module, path: str) -> griffe.Object | griffe.Alias | None:
    parts = path.split(".")
    if parts[0] != package.name:
        return None
    found: Any = package
    for part in parts[1:]:
        members = getattr(found, "members", {})
        if part not in members:
            return None
        found = members[part]
    return found  # type: ignore[no-any-return]


def _target(package: griffe.Module, scope: griffe.Object, name: str) -> str | None:
    """The public path ``name`` refers to from ``scope``, or ``None``."""
    module = scope if isinstance(scope, griffe.Module) else scope.module
    for candidate in (name, f"{module.path}.{name}", f"{package.name}.{name}"):
        found = _find(package, candidate)
        if found is None:
            continue
        target = found.target_path if isinstance(found, griffe.Alias) else found.path
        if any(part.startswith("_") for part in target.split(".")):
            return None
        rendered = _find(package, target)
        if rendered is None or rendered.docstring is None:
            return None  # not rendered (mkdocstrings hides what has no docstring): no anchor
        return target
    return None


class SphinxRoles(griffe.Extension):
    """Rewrite ``:func:`name``` and its kin as autorefs links (or code, for external names)."""

    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        pending: list[griffe.Object] = [pkg]
        while pending:
            scope = pending.pop()
            if scope.docstring is not None:
                scope.docstring.value = ROLE.sub(
                    lambda match, scope=scope: self._replace(pkg, scope, match["name"]),
                    scope.docstring.value,
                )
            pending.extend(
                member for member in scope.members.values() if not isinstance(member, griffe.Alias)
            )

    @staticmethod
    def _replace(package: griffe.Module, scope: griffe.Object, name: str) -> str:
        target = _target(package, scope, name)
        return f"[`{name}`][{target}]" if target else f"`{name}`"


DOCTEST = re.compile(r"^(?P<indent>[ ]*)>>> .*(?:\n(?P=indent)\S.*)*", re.M)
"""A doctest block: a ``>>>`` line and every non-blank line after it, up to a blank line."""


def fence_doctests(text: str) -> str:
    """Each doctest block of ``text`` as a fenced ``pycon`` block."""
    return DOCTEST.sub(
        lambda match: f"{match['indent']}```pycon\n{match[0]}\n{match['indent']}```", text
    )


class DoctestBlocks(griffe.Extension):
    """Fence the ``>>>`` examples of every docstring of the package as ``pycon`` code."""

    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        pending: list[griffe.Object] = [pkg]
        while pending:
            scope = pending.pop()
            if scope.docstring is not None and ">>>" in scope.docstring.value:
                scope.docstring.value = fence_doctests(scope.docstring.value)
            pending.extend(
                member for member in scope.members.values() if not isinstance(member, griffe.Alias)
            )
