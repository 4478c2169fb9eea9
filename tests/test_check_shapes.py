"""``typedbackprop check-shapes``: Pyrefly's shape checking by dimension name.

The files checked are written here, in a user's form: ``@checked`` over
``@static_jaxtyping("out batch inp")``, arrays ``Float[np.ndarray, "..."]``. Each Pyrefly run
costs a second or two, so the bugs share one run and each is asserted at its own line.
"""

import contextlib
import io
import json
import subprocess
import sys
import threading
import tomllib
from pathlib import Path
from typing import Any

import pytest
from doc_outputs import check_output
from pyrefly.__main__ import get_pyrefly_bin  # the server itself: `python -m pyrefly` is its parent
from rich.console import Console

from typedbackprop import cli
from typedbackprop.cli import check_shapes, main

AFFINE = """\
import numpy as np
from jaxtyping import Float
from shape_extensions import static_jaxtyping

from typedbackprop import checked


@checked
@static_jaxtyping("out batch inp")
def affine_forward(
    W: Float[np.ndarray, "out inp"],
    b: Float[np.ndarray, " out"],
    a_prev: Float[np.ndarray, "inp batch"],
) -> Float[np.ndarray, "out batch"]:
    z = W @ a_prev
    z += b[:, np.newaxis]
    return z


@checked
@static_jaxtyping("out batch inp")
def affine_grad_params(
    grad_z: Float[np.ndarray, "out batch"],
    a_prev: Float[np.ndarray, "inp batch"],
) -> tuple[Float[np.ndarray, "out inp"], Float[np.ndarray, " out"]]:
    grad_W = grad_z @ a_prev.T
    return grad_W, grad_z.sum(axis=1)


@checked(vouches_for_inner_calls=True)
@static_jaxtyping("out batch inp")
def affine_grad_input(
    grad_z: Float[np.ndarray, "out batch"],
    W: Float[np.ndarray, "out inp"],
) -> Float[np.ndarray, "inp batch"]:
    return W.T @ grad_z
"""

BUGS = {
    # name: (correct line, buggy line, Pyrefly's message for it)
    "grad_W": (  # the question's bug: its finding names out, batch and inp
        "grad_W = grad_z @ a_prev.T",
        "grad_W = grad_z @ a_prev",
        "`@` is not supported between `ndarray[[out, batch]]` and `ndarray[[inp, batch]]`",
    ),
    "grad_input": (
        "return W.T @ grad_z",
        "return W @ grad_z",
        "`@` is not supported between `ndarray[[out, inp]]` and `ndarray[[out, batch]]`",
    ),
    "bias": (
        "z += b[:, np.newaxis]",
        "z += b",
        "`+=` is not supported between `ndarray[[out, batch]]` and `ndarray[[out]]`",
    ),
}

CALLER = """\
import numpy as np
from jaxtyping import Float
from shape_extensions import static_jaxtyping

from affine import affine_grad_input


@static_jaxtyping("hidden batch features")
def backward_through(
    delta: Float[np.ndarray, "hidden batch"], W: Float[np.ndarray, "hidden features"]
) -> Float[np.ndarray, "batch features"]:
    return affine_grad_input(delta, W)
"""
"""A caller whose declared result is the transpose of what the checked function returns."""


def run(*argv):
    """Run the command line in-process; return (status, stdout text)."""
    out = io.StringIO()
    status = main(list(argv), console=Console(file=out, width=200, color_system=None))
    return status, out.getvalue()


@pytest.fixture(scope="module", autouse=True)
def stubs():
    """The shape stubs in the cache, installed once if missing (as the command does)."""
    return check_shapes.ensure_stubs()


def write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def line_of(path: Path, text: str) -> int:
    (number,) = [n for n, line in enumerate(path.read_text().splitlines(), 1) if text in line]
    return number


def test_a_correct_file_is_clean(tmp_path):
    path = write(tmp_path, "affine.py", AFFINE)
    status, out = run("check-shapes", str(path))
    assert status == 0, out
    assert "no shape errors: 1 file, 3 functions declaring dimensions" in out


def test_each_bug_is_reported_by_name_at_its_line(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    paths = {}
    for name, (correct, buggy, _) in BUGS.items():
        assert AFFINE.count(correct) == 1
        paths[name] = write(tmp_path / name, "affine.py", AFFINE.replace(correct, buggy))
    status, out = run("check-shapes", *map(str, paths.values()))
    assert status == 1, out
    for name, (_, buggy, message) in BUGS.items():
        where = f"{name}/affine.py:{line_of(paths[name], buggy)}:"
        (finding,) = [line for line in out.splitlines() if line.startswith(where)]
        assert message in finding, out
    assert out.splitlines()[-1] == "3 findings in 3 of 3 files"


def test_checked_keeps_the_signature_pyrefly_reads(tmp_path):
    """A call through ``@checked(...)`` is checked against the dimensions it declares."""
    write(tmp_path, "affine.py", AFFINE)
    caller = write(tmp_path, "caller.py", CALLER)
    status, out = run("check-shapes", str(caller))
    assert status == 1, out
    expected = (
        f"caller.py:{line_of(caller, 'return affine_grad_input')}:12: Returned type "
        "`ndarray[[features, batch]]` is not assignable to declared return type "
        "`ndarray[[batch, features]]` [bad-return]"
    )
    assert expected in out


def test_the_package_math_is_clean():
    status, out = run("check-shapes")
    assert status == 0, out
    assert out.startswith("no shape errors: ")


def test_a_missing_path_is_a_usage_error(tmp_path, capsys):
    missing = tmp_path / "nowhere.py"
    status, out = run("check-shapes", str(missing))
    assert status == 2
    assert out == ""
    assert f"error: no such file or folder: {missing}" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["notes.txt", "empty"])
def test_a_path_with_nothing_to_check_is_a_usage_error(tmp_path, capsys, name):
    path = tmp_path / name
    if name == "empty":
        path.mkdir()
    else:
        path.write_text("not python")
    assert run("check-shapes", str(path))[0] == 2
    assert str(path) in capsys.readouterr().err


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err
    assert err.endswith("\n") and err.count("\n") == 1, err
    return err


def test_stubs_that_may_not_be_installed_are_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv(check_shapes.NO_INSTALL_VARIABLE, "1")
    status, out = run("check-shapes", str(write(tmp_path, "affine.py", AFFINE)))
    assert status == 1 and out == ""
    err = one_line_error(capsys)
    assert err.startswith("typedbackprop: error: the shape stubs are not in ")
    assert check_shapes.NO_INSTALL_VARIABLE in err
    assert "pip install --no-deps --ignore-requires-python --target " in err
    assert not (tmp_path / "cache").exists()


def test_an_unwritable_cache_is_one_line(tmp_path, monkeypatch, capsys):
    blocker = tmp_path / "a file"
    blocker.write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))
    monkeypatch.delenv(check_shapes.NO_INSTALL_VARIABLE, raising=False)
    status, _ = run("check-shapes", str(write(tmp_path, "affine.py", AFFINE)))
    assert status == 1
    err = one_line_error(capsys)
    assert "cannot write the shape stubs' cache folder" in err and "XDG_CACHE_HOME" in err


FAKE_PIP = """\
import pathlib, sys
target = pathlib.Path(sys.argv[1])
if sys.argv[2] == "fail":
    (target / "numpy-stubs").mkdir()
    sys.exit("ERROR: No matching distribution found for pyrefly-numpy-stubs")
(target / "numpy-stubs").mkdir()
(target / "numpy-stubs" / "__init__.pyi").write_text("")
(target / "shape_extensions").mkdir()
(target / "shape_extensions" / "__init__.py").write_text("")
"""


@pytest.mark.parametrize("outcome", ["ok", "fail"])
def test_the_install_is_renamed_into_place_or_leaves_nothing(tmp_path, monkeypatch, outcome):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.delenv(check_shapes.NO_INSTALL_VARIABLE, raising=False)
    fake = write(tmp_path, "fake_pip.py", FAKE_PIP)
    monkeypatch.setattr(
        check_shapes, "_install_command", lambda target: [sys.executable, fake, target, outcome]
    )
    folder = check_shapes.stubs_folder()
    if outcome == "ok":
        assert check_shapes.ensure_stubs() == folder
        assert (folder / "numpy-stubs" / "__init__.pyi").is_file()
    else:
        with pytest.raises(OSError, match="No matching distribution") as error:
            check_shapes.ensure_stubs()
        assert "\n" not in str(error.value)
        assert not folder.exists()
    assert [path.name for path in folder.parent.iterdir()] == [folder.name] * (outcome == "ok")


def test_stubs_pyrefly_does_not_use_are_an_error_not_a_clean_result(tmp_path, monkeypatch, capsys):
    """Shape stubs that Pyrefly does not read would make every file 'clean': the run says so."""
    write(tmp_path / "hollow" / "numpy-stubs", "__init__.pyi", "")
    write(tmp_path / "hollow" / "shape_extensions", "__init__.py", "")
    monkeypatch.setattr(check_shapes, "stubs_folder", lambda: tmp_path / "hollow")
    status, out = run("check-shapes", str(write(tmp_path, "affine.py", AFFINE)))
    assert status == 1 and out == ""
    assert "did not check shapes: a known shape error went unreported" in one_line_error(capsys)


def test_a_module_with_add_parser_and_run():
    assert cli.check_shapes is check_shapes and check_shapes in cli.COMMANDS
    assert callable(check_shapes.add_parser) and callable(check_shapes.run)


OWN_IMPORT = AFFINE.replace("from shape_extensions import static_jaxtyping\n", "").replace(
    "from typedbackprop import checked\n",
    "from typedbackprop import checked\nfrom typedbackprop.checking import static_jaxtyping\n",
)
"""The same layer declaring its dimensions with typedbackprop's own ``static_jaxtyping``."""


def printed_config() -> str:
    status, out = run("check-shapes", "--print-config")
    assert status == 0, out
    return out


def test_the_printed_config_is_toml_with_the_commands_settings():
    config = tomllib.loads(printed_config())
    assert config == {
        "search-path": [str(check_shapes.stubs_folder())],
        "python-interpreter-path": sys.executable,
        "python-platform": "typedbackprop-shapes",
    }
    assert (
        config["search-path"]
        == tomllib.loads(check_shapes.pyrefly_config(check_shapes.stubs_folder()))["search-path"]
    ), "the command's own configuration, less the checked files' roots"


SHOWN_STUBS = "/home/you/.cache/typedbackprop/shape-stubs-" + check_shapes.STUBS_VERSION
SHOWN_PYTHON = "/home/you/project/.venv/bin/python"


def test_the_docs_show_the_printed_config():
    """docs/editor.md shows the real output, its two paths written as a user's (``you``)."""
    printed = printed_config()
    stubs, python = str(check_shapes.stubs_folder()), sys.executable
    assert printed.count(json.dumps(stubs)) == 1 and printed.count(json.dumps(python)) == 1
    shown = printed.replace(json.dumps(stubs), json.dumps(SHOWN_STUBS))
    shown = shown.replace(json.dumps(python), json.dumps(SHOWN_PYTHON))
    check_output("check_shapes_print_config.txt", shown)


def pyrefly_in(project: Path) -> list[dict[str, object]]:
    """Pyrefly's errors in a project, found as an editor finds them: by its pyrefly.toml."""
    result = subprocess.run(
        [sys.executable, "-m", "pyrefly", "check", "--output-format", "json"],
        cwd=project,
        capture_output=True,
        text=True,
    )
    assert "Checking project configured at" in result.stderr, result.stderr
    errors: list[dict[str, object]] = json.loads(result.stdout)["errors"]
    return errors


def test_pyrefly_with_the_printed_config_reports_the_questions_bug_in_a_users_file(tmp_path):
    """Both imports of static_jaxtyping, in a project whose root holds the printed file."""
    correct, buggy, message = BUGS["grad_W"]
    write(tmp_path, "pyrefly.toml", printed_config())
    layers = {
        "documented.py": AFFINE.replace(correct, buggy),  # from shape_extensions import ...
        "own.py": OWN_IMPORT.replace(correct, buggy),  # from typedbackprop.checking import ...
    }
    for name, text in layers.items():
        write(tmp_path, name, text)
    write(tmp_path, "clean.py", OWN_IMPORT)
    errors = pyrefly_in(tmp_path)
    found = sorted((e["path"], e["line"], e["name"], e["concise_description"]) for e in errors)
    line = line_of(tmp_path / "own.py", buggy)
    assert line == line_of(tmp_path / "documented.py", buggy)
    assert found == [(name, line, "unsupported-operation", message) for name in sorted(layers)]


def test_without_the_printed_platform_typedbackprops_import_declares_nothing(tmp_path):
    """The platform line is what shows Pyrefly the declaration behind typedbackprop's import."""
    correct, buggy, _ = BUGS["grad_W"]
    config = printed_config()
    without = [line for line in config.splitlines() if not line.startswith("python-platform")]
    assert len(without) == len(config.splitlines()) - 1
    write(tmp_path, "pyrefly.toml", "\n".join(without) + "\n")
    write(tmp_path, "documented.py", AFFINE.replace(correct, buggy))
    write(tmp_path, "own.py", OWN_IMPORT.replace(correct, buggy))
    assert sorted(str(error["path"]) for error in pyrefly_in(tmp_path)) == ["documented.py"]


def test_print_config_installs_the_stubs_first(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.delenv(check_shapes.NO_INSTALL_VARIABLE, raising=False)
    fake = write(tmp_path, "fake_pip.py", FAKE_PIP)
    monkeypatch.setattr(
        check_shapes, "_install_command", lambda target: [sys.executable, fake, target, "ok"]
    )
    folder = check_shapes.stubs_folder()
    assert not folder.exists()
    assert tomllib.loads(printed_config())["search-path"] == [str(folder)]
    assert (folder / "numpy-stubs" / "__init__.pyi").is_file()


@pytest.mark.parametrize("extra", [["affine.py"], ["--all"]])
def test_print_config_with_a_path_or_all_is_a_usage_error(capsys, extra):
    assert run("check-shapes", "--print-config", *extra) == (2, "")
    assert "--print-config checks nothing" in capsys.readouterr().err


def lsp_diagnostics(project: Path, file: Path, seconds: float = 60) -> list[dict[str, object]]:
    """The first non-empty diagnostics ``pyrefly lsp`` publishes for ``file``, opened as an
    editor opens it (the client of docs/editor.md's screenshot, in a few lines)."""
    server = subprocess.Popen(
        [get_pyrefly_bin(), "lsp"],
        cwd=project,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    assert server.stdin is not None and server.stdout is not None
    stdin, stdout = server.stdin, server.stdout

    def send(message: dict[str, object]) -> None:
        body = json.dumps({"jsonrpc": "2.0", **message}).encode()
        stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        stdin.flush()

    def receive() -> dict[str, Any]:
        length = 0
        while (header := stdout.readline().strip()) != b"":
            if header.lower().startswith(b"content-length:"):
                length = int(header.split(b":")[1])
        message: dict[str, Any] = json.loads(stdout.read(length))
        return message

    found: list[dict[str, object]] = []

    def converse() -> None:
        uri = file.resolve().as_uri()
        root = {"uri": project.resolve().as_uri(), "name": project.name}
        send(
            {
                "id": 1,
                "method": "initialize",
                "params": {
                    "processId": None,
                    "rootUri": root["uri"],
                    "workspaceFolders": [root],
                    "capabilities": {"textDocument": {"publishDiagnostics": {}}},
                },
            }
        )
        while receive().get("id") != 1:
            pass
        send({"method": "initialized", "params": {}})
        document = {"uri": uri, "languageId": "python", "version": 1, "text": file.read_text()}
        send({"method": "textDocument/didOpen", "params": {"textDocument": document}})
        while True:
            message = receive()
            if "id" in message and "method" in message:  # a request from the server
                items = message.get("params", {}).get("items")
                result = [None] * len(items) if isinstance(items, list) else None
                send({"id": message["id"], "result": result})
            elif message.get("method") == "textDocument/publishDiagnostics":
                if message["params"]["uri"] == uri and message["params"]["diagnostics"]:
                    found.extend(message["params"]["diagnostics"])
                    return

    def conversation() -> None:
        with contextlib.suppress(OSError, ValueError):  # the server killed at the deadline
            converse()

    thread = threading.Thread(target=conversation, daemon=True)
    with server:  # closes the pipes once the reader is done: it reads EOF from a killed server
        thread.start()
        thread.join(seconds)
        server.kill()
        thread.join()
    assert found, f"pyrefly lsp published no diagnostic for {file.name} in {seconds:.0f} s"
    return found


def test_the_language_server_with_the_printed_config_underlines_the_questions_bug(tmp_path):
    """What the editor shows: ``pyrefly lsp``, not ``pyrefly check``, with the printed file."""
    correct, buggy, message = BUGS["grad_W"]
    write(tmp_path, "pyrefly.toml", printed_config())
    layer = write(tmp_path, "own.py", OWN_IMPORT.replace(correct, buggy))
    (diagnostic,) = lsp_diagnostics(tmp_path, layer)
    start = diagnostic["range"]["start"]  # type: ignore[index]
    line = line_of(layer, buggy)
    assert (start["line"] + 1, start["character"]) == (line, len("    grad_W = "))
    assert str(diagnostic["message"]).splitlines()[0] == message
    assert diagnostic["code"] == "unsupported-operation" and diagnostic["severity"] == 1
