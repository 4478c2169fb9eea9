"""``typedbackprop check-shapes``: shapes checked by dimension name, before anything runs.

The runtime checks compare sizes, so a transposed product runs silently when two dimensions happen
to have the same size. Pyrefly compares names: a function that declares its dimensions with
``@static_jaxtyping("out batch inp")`` and annotates its arrays ``Float[np.ndarray, "out inp"]``
has every ``@``, ``.T``, broadcast, reduction and return checked against them, as in ::

    ERROR `@` is not supported between `ndarray[[out, batch]]` and `ndarray[[inp, batch]]`

This command runs Pyrefly (the ``pyrefly`` package, a dev extra) on the given files and folders
with NumPy's shape stubs (``pyrefly-numpy-stubs`` and ``pyrefly-shape-extensions``), which it
installs once into a cache folder of its own: installed into site-packages they would shadow
NumPy's own types for mypy. The configuration is generated in a temporary folder, so a project's
own Pyrefly settings play no part.

Only findings about shapes are reported (a message naming a shaped array such as
``ndarray[[out, batch]]``, a dimension declaration or the shape stubs' broadcasting), and
missing imports, which would leave the check blind; ``--all`` reports every Pyrefly finding.
Each run also checks a known shape error of its own, so a clean result means shapes were
checked, not that the stubs went unseen.

``--print-config`` prints the same configuration as a ``pyrefly.toml`` for a project's root, so
that Pyrefly's language server checks in the editor what this command checks on the command line
(the shape stubs' folder, the interpreter, the platform), with the stubs installed first if
needed.
"""

import argparse
import ast
import importlib.metadata
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console

import typedbackprop.nn
from typedbackprop.checking.static import SHAPES_PLATFORM
from typedbackprop.cli.options import UsageError

__all__ = [
    "PYREFLY_VERSION",
    "STUBS_VERSION",
    "STUB_PACKAGES",
    "NO_INSTALL_VARIABLE",
    "Finding",
    "stubs_folder",
    "ensure_stubs",
    "python_files",
    "check_shapes",
    "pyrefly_config",
    "add_parser",
    "run",
]

SUMMARY = "check the shapes of array code by dimension name, before it runs (Pyrefly)"

PYREFLY_VERSION = "1.5.1"
"""The Pyrefly release this command was written and tested with (the dev extra's pin)."""

STUBS_VERSION = "1.4.0"
"""The release of NumPy's shape stubs installed into the cache folder."""

STUB_PACKAGES = (
    f"pyrefly-numpy-stubs=={STUBS_VERSION}",
    f"pyrefly-shape-extensions=={STUBS_VERSION}",
)
"""What the cache folder holds: NumPy's shape stubs and the ``static_jaxtyping`` declaration."""

NO_INSTALL_VARIABLE = "TYPEDBACKPROP_NO_STUB_INSTALL"
"""Set (to anything but ``0``) to forbid installing the stubs: they must be in the cache."""

_PIP_OPTIONS = ("--no-deps", "--ignore-requires-python", "--quiet", "--disable-pip-version-check")
# The stubs declare Python >= 3.12 but Pyrefly reads them from any interpreter; --no-deps
# keeps a second NumPy out of the folder (Pyrefly finds NumPy itself in site-packages).

_SHAPE_MESSAGE = re.compile(
    r"(ndarray|Tensor|Array)\[\[|static_jaxtyping|dimension expression|shape DSL"
)
"""A finding about shapes names a shaped array, a dimension declaration or the shape DSL."""

_ALWAYS_REPORTED = frozenset({"missing-import"})
"""Kinds of finding reported even when not about shapes: they leave the check blind."""

_CANARY = """\
import numpy as np
from jaxtyping import Float
from shape_extensions import static_jaxtyping


@static_jaxtyping("rows cols")
def transposed(x: Float[np.ndarray, "rows cols"]) -> Float[np.ndarray, "cols rows"]:
    return x
"""
"""A known shape error that every run must find (else the stubs were not used)."""


@dataclass(frozen=True)
class Finding:
    """One Pyrefly finding: where it is, Pyrefly's own message, and its kind."""

    path: str
    line: int
    column: int
    kind: str
    message: str

    @property
    def about_shapes(self) -> bool:
        """Whether the finding is about shapes (or a missing import that blinds the check)."""
        return self.kind in _ALWAYS_REPORTED or bool(_SHAPE_MESSAGE.search(self.message))

    def text(self) -> str:
        """``path:line:column: message [kind]``, Pyrefly's detail lines indented below."""
        first, *rest = self.message.splitlines() or [""]
        lines = [f"{self.path}:{self.line}:{self.column}: {first} [{self.kind}]"]
        lines += [f"    {line.strip()}" for line in rest if line.strip()]
        return "\n".join(lines)


def _cache_root() -> Path:
    """``$XDG_CACHE_HOME/typedbackprop``, or ``~/.cache/typedbackprop``."""
    base = os.environ.get("XDG_CACHE_HOME", "").strip()
    return (Path(base) if base else Path.home() / ".cache") / "typedbackprop"


def stubs_folder() -> Path:
    """The cache folder that holds (or will hold) the shape stubs."""
    return _cache_root() / f"shape-stubs-{STUBS_VERSION}"


def _complete(folder: Path) -> bool:
    return (folder / "numpy-stubs" / "__init__.pyi").is_file() and (
        folder / "shape_extensions" / "__init__.py"
    ).is_file()


def _install_command(target: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "pip",
        "install",
        *_PIP_OPTIONS,
        "--target",
        str(target),
        *STUB_PACKAGES,
    ]


def _by_hand(folder: Path) -> str:
    return "python -m pip install --no-deps --ignore-requires-python --target {} {}".format(
        folder, " ".join(STUB_PACKAGES)
    )


def ensure_stubs() -> Path:
    """The shape stubs' folder, installed into the cache first if it is not there.

    The install goes to a temporary folder beside the cache folder, renamed once complete, so
    an interrupted install leaves nothing half-written behind.

    Raises
    ------
    OSError
        The stubs are not there and cannot be installed (installing is off, the cache is not
        writable, or pip failed); the message is one line and says how to install them by hand.
    """
    folder = stubs_folder()
    if _complete(folder):
        return folder
    if os.environ.get(NO_INSTALL_VARIABLE, "0").strip() not in {"", "0"}:
        raise OSError(
            f"the shape stubs are not in {folder} and {NO_INSTALL_VARIABLE} forbids installing "
            f"them; install them with: {_by_hand(folder)}"
        )
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    except OSError as error:
        raise OSError(
            f"cannot write the shape stubs' cache folder {folder.parent} ({error.strerror}); "
            f"set XDG_CACHE_HOME to a writable folder, or install them with: {_by_hand(folder)}"
        ) from None
    try:
        pip = subprocess.run(_install_command(staging), capture_output=True, text=True)
        if pip.returncode != 0 or not _complete(staging):
            reason = (pip.stderr.strip().splitlines() or ["pip installed nothing"])[-1]
            raise OSError(
                f"could not install the shape stubs ({' '.join(STUB_PACKAGES)}): {reason}"
            )
        if folder.exists() and not _complete(folder):
            shutil.rmtree(folder)  # an incomplete folder of an older, interrupted layout
        try:
            staging.rename(folder)
        except OSError:
            if not _complete(folder):  # another run's rename wins; anything else is an error
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return folder


def python_files(paths: Sequence[str]) -> list[Path]:
    """The Python files to check: each file given, and every ``.py`` file under each folder.

    Raises
    ------
    UsageError
        A path that does not exist, a file that is not Python, or a folder with no Python file.
    """
    files: list[Path] = []
    for given in paths:
        path = Path(given)
        if path.is_dir():
            found = sorted(
                file
                for file in path.rglob("*.py")
                if not any(
                    part.startswith(".") or part == "__pycache__"
                    for part in file.relative_to(path).parts
                )
            )
            if not found:
                raise UsageError(f"no Python file under {given}")
            files += found
        elif path.is_file():
            if path.suffix not in {".py", ".pyi"}:
                raise UsageError(f"not a Python file: {given}")
            files.append(path)
        else:
            raise UsageError(f"no such file or folder: {given}")
    return list(dict.fromkeys(file.resolve() for file in files))


def _import_root(file: Path) -> Path:
    """The folder a file is imported from: the first ancestor that is not a package."""
    folder = file.parent
    while (folder / "__init__.py").is_file() and folder.parent != folder:
        folder = folder.parent
    return folder


def _declarations(file: Path) -> int:
    """How many functions in ``file`` declare their dimensions with ``@static_jaxtyping``."""
    try:
        tree = ast.parse(file.read_text(encoding="utf-8"))
    except (SyntaxError, UnicodeDecodeError, OSError):
        return 0  # Pyrefly reports the file itself
    count = 0
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            for decorator in node.decorator_list:
                call = decorator.func if isinstance(decorator, ast.Call) else decorator
                name = call.attr if isinstance(call, ast.Attribute) else getattr(call, "id", "")
                count += name == "static_jaxtyping"
    return count


def _toml_strings(values: Sequence[str]) -> str:
    return "[" + ", ".join(json.dumps(value) for value in values) + "]"


def pyrefly_config(stubs: Path, roots: Sequence[str] = (), *, explained: bool = False) -> str:
    """The Pyrefly configuration shapes are checked with, as the text of a ``pyrefly.toml``.

    Parameters
    ----------
    stubs
        The folder of NumPy's shape stubs and ``shape_extensions`` (:func:`ensure_stubs`).
    roots
        Folders the checked files are imported from, searched after the stubs. A project's own
        ``pyrefly.toml`` leaves them out: Pyrefly infers the project's import root itself.
    explained
        Whether each setting comes with a comment saying why (the file a user keeps).
    """
    settings = [
        (
            "NumPy's shape stubs and shape_extensions (static_jaxtyping), in typedbackprop's "
            "cache:\nin site-packages, numpy-stubs would shadow NumPy's own types for mypy",
            f"search-path = {_toml_strings([str(stubs), *roots])}",
        ),
        (
            "The interpreter whose site-packages hold NumPy, jaxtyping and typedbackprop",
            f"python-interpreter-path = {json.dumps(sys.executable)}",
        ),
        (
            "The sys.platform under which typedbackprop's math shows Pyrefly its dimension\n"
            "declarations (a project's own `if sys.platform == ...` branches see it too)",
            f"python-platform = {json.dumps(SHAPES_PLATFORM)}",
        ),
    ]
    if not explained:
        return "".join(f"{setting}\n" for _, setting in settings)
    heading = (
        "# Pyrefly checks array shapes by dimension name, in the editor (pyrefly lsp) as\n"
        "# `typedbackprop check-shapes` does. Written by `typedbackprop check-shapes "
        "--print-config`.\n"
    )
    comment = "\n# ".join
    return heading + "".join(
        f"\n# {comment(why.splitlines())}\n{setting}\n" for why, setting in settings
    )


def _pyrefly_findings(files: Sequence[Path], stubs: Path, workspace: Path) -> list[Finding]:
    roots = list(dict.fromkeys(str(_import_root(file)) for file in files))
    config = workspace / "pyrefly.toml"
    config.write_text(pyrefly_config(stubs, roots), encoding="utf-8")
    command = [
        sys.executable,
        "-m",
        "pyrefly",
        "check",
        "--config",
        str(config),
        "--output-format",
        "json",
        "--color",
        "never",
        *map(str, files),
    ]
    result = subprocess.run(command, capture_output=True, text=True)
    try:
        errors = json.loads(result.stdout)["errors"]
    except (ValueError, KeyError, TypeError):
        reason = (result.stderr.strip().splitlines() or [f"status {result.returncode}"])[-1]
        raise OSError(f"Pyrefly failed: {reason}") from None
    return [
        Finding(error["path"], error["line"], error["column"], error["name"], error["description"])
        for error in errors
        if error.get("severity", "error") == "error"
    ]


def _shown_path(path: str) -> str:
    try:
        return os.path.relpath(path)
    except ValueError:  # another drive (Windows)
        return path


def check_shapes(files: Sequence[Path], stubs: Path) -> list[Finding]:
    """Every Pyrefly finding in ``files``, checked with the shape stubs in ``stubs``.

    Raises
    ------
    ImportError
        Pyrefly is not installed.
    OSError
        Pyrefly failed, or did not report the known shape error that each run checks (the
        stubs were not used, or this Pyrefly does not check shapes).
    """
    if importlib.util.find_spec("pyrefly") is None:
        raise ImportError(
            f"Pyrefly is not installed: pip install pyrefly=={PYREFLY_VERSION} "
            "(a dev extra: pip install -e '.[dev]' in the clone)"
        )
    with tempfile.TemporaryDirectory(prefix="typedbackprop-shapes-") as workspace:
        canary = Path(workspace, "shape_canary.py").resolve()
        canary.write_text(_CANARY, encoding="utf-8")
        findings = _pyrefly_findings([*files, canary], stubs, Path(workspace))
        mine = [f for f in findings if Path(f.path).resolve() == canary]
        if not any(f.kind == "bad-return" and f.about_shapes for f in mine):
            raise OSError(
                f"Pyrefly {importlib.metadata.version('pyrefly')} did not check shapes: a known "
                f"shape error went unreported (this command was written for Pyrefly "
                f"{PYREFLY_VERSION} and shape stubs {STUBS_VERSION}, in {stubs})"
            )
        return [
            Finding(_shown_path(f.path), f.line, f.column, f.kind, f.message)
            for f in findings
            if Path(f.path).resolve() != canary
        ]


def add_parser(commands: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    """Add the ``check-shapes`` command to the top-level parser's commands."""
    parser = commands.add_parser(
        "check-shapes",
        help=SUMMARY,
        description=SUMMARY + ". A function is checked when it declares its dimensions with "
        '@static_jaxtyping("out batch inp") (from shape_extensions) and annotates its arrays '
        'Float[np.ndarray, "out inp"]. Exits 0 when no shape is wrong, 1 with Pyrefly\'s '
        "findings, 2 on a bad argument. The shape stubs are installed once into "
        f"$XDG_CACHE_HOME/typedbackprop (or ~/.cache/typedbackprop); {NO_INSTALL_VARIABLE}=1 "
        "forbids that.",
    )
    parser.add_argument(
        "paths",
        nargs="*",
        metavar="PATH",
        help="Python files, or folders to search for them (default: typedbackprop's own math, "
        "the typedbackprop.nn package)",
    )
    parser.add_argument(
        "--all",
        action="store_true",
        help="report every Pyrefly finding, not only those about shapes and missing imports",
    )
    parser.add_argument(
        "--print-config",
        action="store_true",
        help="check nothing: print the pyrefly.toml that makes Pyrefly, and its language server "
        "in an editor, check shapes as this command does (typedbackprop check-shapes "
        "--print-config > pyrefly.toml, at a project's root); installs the shape stubs first "
        "if they are not in the cache",
    )
    parser.set_defaults(run=run, parser=parser)


def run(args: argparse.Namespace, console: Console) -> int:
    """Check the shapes; return 0 if Pyrefly finds nothing wrong, 1 if it does."""
    if args.print_config:
        if args.paths or args.all:
            raise UsageError("--print-config checks nothing: it takes no PATH and no --all")
        config = pyrefly_config(ensure_stubs(), explained=True)
        console.print(config, end="", markup=False, highlight=False, soft_wrap=True)
        return 0
    paths = args.paths or [str(Path(typedbackprop.nn.__file__).parent)]
    files = python_files(paths)
    findings = check_shapes(files, ensure_stubs())
    shown = findings if args.all else [f for f in findings if f.about_shapes]
    for finding in shown:
        console.print(finding.text(), markup=False, highlight=False, soft_wrap=True)
    left_out = len(findings) - len(shown)
    note = f"; {_count(left_out, 'other Pyrefly finding')}, not about shapes, left out (--all)"
    note = note if left_out else ""
    if shown:
        where = len({f.path for f in shown})
        summary = f"{_count(len(shown), 'finding')} in {where} of {_count(len(files), 'file')}"
        console.print(summary + note, markup=False, highlight=False, soft_wrap=True)
        return 1
    declared = _count(sum(_declarations(file) for file in files), "function")
    summary = f"no shape errors: {_count(len(files), 'file')}, {declared} declaring dimensions"
    console.print(summary + note, markup=False, highlight=False, soft_wrap=True)
    return 0


def _count(number: int, noun: str) -> str:
    """``1 file``, ``2 files``."""
    return f"{number} {noun}{'' if number == 1 else 's'}"
