"""The package as a user installs it: the README's commands, mypy in the user's own project, CI.

The README installs the package in editable mode. setuptools' default editable install for a
package at the repository root is an import hook that mypy cannot follow: a user's
``mypy`` then reports ``Cannot find implementation or library stub for module named
"typedbackprop"``. ``[tool.setuptools] package-dir`` in ``pyproject.toml`` makes it a plain
``.pth`` path instead, which mypy reads. These tests type-check a user's file *outside* the
repository against the package installed that way.
"""

import os
import re
import shutil
import site
import subprocess
import sys
import tomllib
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
USER_CODE = ROOT / "tests" / "typecheck_api.py"

MISTAKE = """\
import numpy as np

import typedbackprop as tbp

layers = [tbp.Dense(np.ones((2, 3)), np.zeros(2))]
loss, grads = tbp.loss_and_grads(layers, np.ones((3, 4)), np.ones((2, 4)), activation="swish")
"""
"""A user's mistake that only the package's own annotations can catch."""


def readme_commands() -> list[str]:
    """The README's two set-up commands, without their comments."""
    block = re.search(r"```bash\n(.*?)```", (ROOT / "README.md").read_text("utf-8"), re.S)
    assert block is not None
    lines = block[1].splitlines()
    assert len(lines) == 2, lines
    return [line.split("#")[0].strip() for line in lines]


def user_environment() -> dict[str, str]:
    """The environment with nothing that points mypy or Python at the repository."""
    return {
        name: value
        for name, value in os.environ.items()
        if name not in {"PYTHONPATH", "MYPYPATH", "PYTHONSAFEPATH"}
    }


def mypy_in_a_users_project(python: str, project: Path) -> tuple[str, str]:
    """Type-check the user's two files with ``python -m mypy --strict``, from their folder.

    Returns the report on the correct file and the report on the mistaken one.
    """
    shutil.copy(USER_CODE, project / "user_code.py")
    (project / "mistake.py").write_text(MISTAKE)
    reports = []
    for name in ("user_code.py", "mistake.py"):
        result = subprocess.run(
            [python, "-m", "mypy", "--strict", "--no-incremental", name],
            cwd=project,
            capture_output=True,
            text=True,
            check=False,
            env=user_environment(),
        )
        reports.append(result.stdout + result.stderr)
    return reports[0], reports[1]


def check_reports(correct: str, mistaken: str) -> None:
    if "No module named mypy" in correct:
        hint = '(no mypy in the environment that ran it: the dev extras, pip install -e ".[dev]")'
    else:
        hint = (
            "(an install from before pyproject's package-dir setting? reinstall: pip install -e .)"
        )
    assert "Success: no issues found in 1 source file" in correct, f"{hint}\n{correct}"
    # mypy read the package's annotations: the activation names are a Literal type.
    assert 'Argument "activation" to "loss_and_grads" has incompatible type' in mistaken, mistaken
    assert "Literal['swish']" in mistaken and "Found 1 error in 1 file" in mistaken, mistaken


def test_the_package_in_this_environment_is_this_tree(tmp_path):
    result = subprocess.run(
        [sys.executable, "-c", "import typedbackprop; print(typedbackprop.__file__)"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
        env=user_environment(),
    )
    assert result.returncode == 0, result.stderr
    assert Path(result.stdout.strip()) == ROOT / "typedbackprop" / "__init__.py"


def test_mypy_in_a_users_project_sees_the_package_as_this_environment_has_it(tmp_path):
    # The suite runs after the README's second command (and .ci/run's): pip install -e ".[dev]"
    check_reports(*mypy_in_a_users_project(sys.executable, tmp_path))


def site_directories() -> list[str]:
    """The site directories of the interpreter running the suite: where its packages are.

    A virtual environment's own, and the system's too where it sees them (``site`` lists both
    then), and the user's where it reads them. The ``.pth`` files in them are not part of this
    list: a directory named in another environment's ``.pth`` file is added to its path, but the
    ``.pth`` files inside it are not read, so this tree's own editable install is not inherited.
    """
    directories = site.getsitepackages()
    if site.ENABLE_USER_SITE:
        directories.append(site.getusersitepackages())
    return [directory for directory in directories if Path(directory).is_dir()]


def run_in(
    python: str, code: str, cwd: Path, env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [python, "-c", code], cwd=cwd, capture_output=True, text=True, check=False, env=env
    )


@pytest.mark.slow
def test_the_readmes_install_command_as_written_lets_mypy_see_the_package(tmp_path):
    # A fresh virtual environment, activated as a user would, then the README's first command's
    # install, word for word, from the repository root. So that nothing but this package is
    # downloaded, the new environment sees the packages of the one running the suite (where the
    # dev extras, mypy among them, are installed): a .pth file names its site directories.
    # Not system_site_packages: that inherits the *base* interpreter's packages, which lack
    # mypy when the suite runs from a virtual environment.
    environment = tmp_path / "venv"
    venv.create(environment, system_site_packages=False, with_pip=True)
    scripts = environment / ("Scripts" if os.name == "nt" else "bin")
    python = str(scripts / ("python.exe" if os.name == "nt" else "python"))
    install = readme_commands()[0].split(" && ")[0]
    assert install.startswith("pip install -e ")
    env = user_environment() | {
        "PATH": f"{scripts}{os.pathsep}{os.environ['PATH']}",
        "VIRTUAL_ENV": str(environment),
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
    }
    project = tmp_path / "my_project"
    project.mkdir()
    purelib = run_in(python, "import sysconfig; print(sysconfig.get_path('purelib'))", project, env)
    pth = Path(purelib.stdout.strip()) / "the_suites_packages.pth"
    pth.write_text("\n".join(site_directories()) + "\n", "utf-8")
    importing = "import typedbackprop; print(typedbackprop.__file__)"
    before = run_in(python, "import mypy, numpy\n" + importing, project, env)
    # Before the install the new environment has the suite's packages but not this one: what
    # mypy sees below, the README's install gave it.
    assert "No module named 'typedbackprop'" in before.stderr, before.stdout + before.stderr
    result = subprocess.run(
        install, shell=True, cwd=ROOT, capture_output=True, text=True, check=False, env=env
    )
    assert result.returncode == 0, result.stdout + result.stderr
    found = run_in(python, importing, project, env)
    assert Path(found.stdout.strip()) == ROOT / "typedbackprop" / "__init__.py", found.stderr
    check_reports(*mypy_in_a_users_project(python, project))


def test_the_suite_needs_no_activated_environment():
    # The tests that start the console script, with PATH reduced to the system's directories:
    # they must find the script next to the interpreter, not on PATH.
    env = {name: value for name, value in os.environ.items() if name != "VIRTUAL_ENV"}
    env["PATH"] = os.defpath
    result = subprocess.run(
        [
            sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
            "tests/test_cli.py", "-k", "console_script",
        ],
        cwd=ROOT, capture_output=True, text=True, check=False, env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"\b2 passed\b", result.stdout), result.stdout


def test_ci_runs_the_readmes_test_command_word_for_word():
    script = (ROOT / ".ci" / "run").read_text("utf-8").splitlines()
    assert readme_commands()[1] in script


def test_the_readmes_first_command_installs_what_demo_and_its_pictures_need():
    install, run = readme_commands()[0].split(" && ")
    assert run == "typedbackprop demo"
    extras = set(re.fullmatch(r'pip install -e "\.\[([\w,]+)\]"', install)[1].split(","))
    optional = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))["project"][
        "optional-dependencies"
    ]
    installed = " ".join(requirement for extra in extras for requirement in optional[extra])
    for package in ("scikit-learn", "matplotlib", "pillow"):  # data sets; --plot; --animate
        assert package in installed, (package, extras)


def test_the_docs_start_page_shows_the_readmes_commands():
    page = (ROOT / "docs" / "index.md").read_text("utf-8")
    block = re.search(r"```bash\n(.*?)```", page, re.S)
    assert block is not None
    # The page may put each comment on a line of its own, above its command (it is narrower).
    commands = [line.split("#")[0].strip() for line in block[1].splitlines()]
    assert [command for command in commands if command] == readme_commands()
