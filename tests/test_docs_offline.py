"""The documentation renders offline: MathJax is vendored, and no page loads from another site."""

import hashlib
import os
import re
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
MATHJAX = ROOT / "docs" / "javascripts" / "mathjax"

LOADS = re.compile(r"<(script|link|img|iframe)\b[^>]*?\b(src|href)=\"([^\"]+)\"", re.I)
"""An element that makes the browser fetch something when the page opens (a script, a style
sheet, a font, an image): ``<a href>`` links are only followed when clicked."""


def config() -> dict:
    class Loader(yaml.SafeLoader):
        pass

    # mkdocs.yml may hold !!python/name tags (none today); read them as plain strings
    Loader.add_multi_constructor("tag:yaml.org,2002:python/", lambda loader, suffix, node: None)
    return yaml.load((ROOT / "mkdocs.yml").read_text("utf-8"), Loader=Loader)


def test_every_script_is_a_file_of_the_docs_not_an_address():
    scripts = config()["extra_javascript"]
    assert "javascripts/mathjax/tex-svg.js" in scripts
    for script in scripts:
        assert not re.match(r"\w+://|//", script), script
        assert (ROOT / "docs" / script).is_file(), script
    assert config()["theme"]["font"] is False  # not Google's fonts


def test_the_vendored_mathjax_is_the_one_its_readme_names_with_its_licence():
    script = MATHJAX / "tex-svg.js"
    readme = (MATHJAX / "README.txt").read_text("utf-8")
    digest = re.search(r"sha256 of tex-svg.js: ([0-9a-f]{64})", readme)[1]
    assert hashlib.sha256(script.read_bytes()).hexdigest() == digest
    assert "MathJax 3.2.2" in readme
    assert script.stat().st_size < 3_000_000  # one file, 2.1 MB: fonts inside, no more
    licence = (MATHJAX / "LICENSE").read_text("utf-8")
    assert "Apache License" in licence and "Version 2.0, January 2004" in licence


def test_the_built_pages_load_nothing_from_another_site_and_typeset_their_math(tmp_path):
    site = tmp_path / "site"
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(site)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    pages_with_math = 0
    for page in site.rglob("*.html"):
        html = page.read_text("utf-8")
        for _, _, address in LOADS.findall(html):
            assert not re.match(r"\w+://|//", address), (page, address)
        if 'class="arithmatex"' in html:
            pages_with_math += 1
            scripts = [address for _, _, address in LOADS.findall(html)]
            assert any(address.endswith("javascripts/mathjax/tex-svg.js") for address in scripts)
    assert pages_with_math >= 10  # the derivations, the network, gradient checking, ...
    assert (site / "javascripts" / "mathjax" / "tex-svg.js").is_file()
