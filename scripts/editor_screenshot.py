"""Screenshot of the question's bug underlined by Pyrefly's language server in a real editor.

Neovim's built-in LSP client talks to ``pyrefly lsp`` in an xterm on a virtual X display; the
project it opens has the ``pyrefly.toml`` that ``typedbackprop check-shapes --print-config``
prints, and a user's layer in Pyrefly's documented form with ``grad_W = grad_z @ a_prev``. When
Pyrefly's diagnostic arrives, Neovim underlines it and opens it in a float; the script checks
that it is the expected message at the expected line, then captures the xterm window with
ImageMagick's ``import`` and writes the PNG atomically. Needs (Debian): ``apt-get install xvfb
xterm neovim imagemagick x11-utils fonts-dejavu-core``. Run from the repository's root::

    python scripts/editor_screenshot.py docs/images/editor-question-bug.png
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

LAYER = '''\
"""My layer's backward step, its shapes checked by name as I type."""

import numpy as np
from jaxtyping import Float
from shape_extensions import static_jaxtyping

from typedbackprop import checked


@checked
@static_jaxtyping("out batch inp")
def affine_backward(
    grad_z: Float[np.ndarray, "out batch"],
    W: Float[np.ndarray, "out inp"],
    a_prev: Float[np.ndarray, "inp batch"],
) -> tuple[
    Float[np.ndarray, "out inp"],
    Float[np.ndarray, " out"],
    Float[np.ndarray, "inp batch"],
]:
    grad_W = grad_z @ a_prev
    grad_b = grad_z.sum(axis=1)
    grad_a_prev = W.T @ grad_z
    return grad_W, grad_b, grad_a_prev
'''
"""The user's file: the question's bug in a layer written as Pyrefly documents."""

BUG = "grad_W = grad_z @ a_prev"
EXPECTED = "`@` is not supported between `ndarray[[out, batch]]` and `ndarray[[inp, batch]]`"

INIT_LUA = r"""
vim.opt.number = true
vim.opt.signcolumn = "yes"
vim.opt.laststatus = 0
vim.opt.ruler = false
vim.opt.showmode = false
vim.opt.fillchars = { eob = " " }
vim.opt.shortmess:append("F")
vim.cmd("syntax on")
vim.cmd("highlight DiagnosticUnderlineError cterm=underline ctermfg=160")
vim.cmd("highlight DiagnosticError ctermfg=160")
vim.cmd("highlight NormalFloat ctermbg=230 ctermfg=0")
vim.cmd("highlight FloatBorder ctermbg=230 ctermfg=160")
vim.cmd("highlight SignColumn ctermbg=NONE")
vim.diagnostic.config({ virtual_text = false, underline = true, signs = true })

local marker = vim.env.SCREENSHOT_MARKER
local WIDTH = 66

local function wrapped(diagnostic)
  local lines = {}
  for text in vim.gsplit(diagnostic.message, "\n") do
    local indent = text:match("^%s*")
    local line = ""
    for word in text:gmatch("%S+") do
      if line ~= "" and #line + 1 + #word > WIDTH then
        table.insert(lines, line)
        line = indent .. word
      else
        line = (line == "" and indent or line .. " ") .. word
      end
    end
    table.insert(lines, line)
  end
  return table.concat(lines, "\n")
end
local shown = false
vim.api.nvim_create_autocmd("DiagnosticChanged", {
  callback = function()
    local found = vim.diagnostic.get(0)
    if shown or #found == 0 then return end
    shown = true
    local first = found[1]
    vim.api.nvim_win_set_cursor(0, { first.lnum + 1, first.col })
    vim.defer_fn(function()
      -- under the code, from its left edge, the message wrapped between words; the float goes
      -- below the cursor (top at offset_y + 1) where more lines are below it, else above it
      -- (bottom at offset_y - 1), as vim.lsp.util.make_floating_popup_options decides
      local after = vim.api.nvim_buf_line_count(0) - first.lnum
      local height = #vim.split(wrapped(first), "\n") + 2
      local above = vim.fn.winline() - 1
      local offset_y = after
      if above >= vim.fn.winheight(0) - above then offset_y = after + height + 1 end
      vim.diagnostic.open_float({
        scope = "cursor",
        border = "rounded",
        source = "always",
        header = "",
        format = wrapped,
        offset_y = offset_y,
        offset_x = -first.col,
      })
      vim.defer_fn(function()
        local seen = {}
        for _, d in ipairs(found) do
          table.insert(seen, { line = d.lnum + 1, message = d.message, source = d.source })
        end
        vim.fn.writefile({ vim.fn.json_encode(seen) }, marker)
      end, 500)
    end, 300)
  end,
})

vim.api.nvim_create_autocmd("FileType", {
  pattern = "python",
  callback = function(args)
    local client = vim.lsp.start_client({
      name = "pyrefly",
      cmd = { vim.env.SCREENSHOT_PYTHON, "-m", "pyrefly", "lsp" },
      root_dir = vim.fn.getcwd(),
    })
    vim.lsp.buf_attach_client(args.buf, client)
  end,
})
"""
"""Neovim's configuration: its built-in LSP client on ``pyrefly lsp``, the diagnostic in a float."""


def project(folder: Path) -> Path:
    """The user's project: the printed ``pyrefly.toml`` and the layer; returns the layer."""
    config = subprocess.run(
        [sys.executable, "-m", "typedbackprop", "check-shapes", "--print-config"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    (folder / "pyrefly.toml").write_text(config, encoding="utf-8")
    layer = folder / "my_layer.py"
    layer.write_text(LAYER, encoding="utf-8")
    return layer


def wait_for(path: Path, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists():
        if time.monotonic() > deadline:
            raise TimeoutError(path)
        time.sleep(0.2)


def screenshot(output: Path) -> None:
    for tool in ("Xvfb", "xterm", "nvim", "import", "xwininfo"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is not installed (see this script's docstring)")
    with tempfile.TemporaryDirectory(prefix="editor-screenshot-") as temporary:
        folder = Path(temporary)
        layer = project(folder)
        init = folder / "init.lua"
        init.write_text(INIT_LUA, encoding="utf-8")
        marker = folder / "diagnostics.json"
        xvfb = subprocess.Popen(
            ["Xvfb", "-displayfd", "1", "-screen", "0", "1400x900x24", "-nolisten", "tcp"],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert xvfb.stdout is not None
        display = f":{xvfb.stdout.readline().strip()}"
        environment = {
            **os.environ,
            "DISPLAY": display,
            "SCREENSHOT_MARKER": str(marker),
            "SCREENSHOT_PYTHON": sys.executable,
            "TERM": "xterm-256color",
        }
        title = "my_layer.py - Neovim + pyrefly lsp"
        xterm = subprocess.Popen(
            ["xterm", "-T", title, "-geometry", "78x32+0+0", "-fa", "DejaVu Sans Mono"]
            + ["-fs", "13", "-bg", "white", "-fg", "black", "-bw", "0", "+sb", "-tn"]
            + ["xterm-256color", "-e", "nvim", "--clean", "-u", str(init), layer.name],
            cwd=folder,
            env=environment,
        )
        try:
            try:
                wait_for(marker, 60)
            except TimeoutError:
                failed = output.with_name(f"{output.stem}.failed.png")
                subprocess.run(["import", "-window", "root", str(failed)], env=environment)
                raise SystemExit(
                    f"no diagnostic from pyrefly lsp in 60 s: the screen is in {failed}"
                ) from None
            seen = json.loads(marker.read_text(encoding="utf-8"))
            line = LAYER.splitlines().index(f"    {BUG}") + 1
            found = [(d["line"], d["message"].splitlines()[0]) for d in seen]
            if found != [(line, EXPECTED)]:
                raise SystemExit(f"expected Pyrefly's {EXPECTED!r} at line {line}, got {found}")
            time.sleep(0.5)
            window = (
                subprocess.run(
                    ["xwininfo", "-name", title], env=environment, capture_output=True, text=True
                )
                .stdout.split("Window id: ")[1]
                .split()[0]
            )
            staging = output.with_name(f".{output.name}.partial.png")
            subprocess.run(["import", "-window", window, str(staging)], env=environment, check=True)
            os.replace(staging, output)
            print(f"{output}: line {line}, {seen[0]['source']}: {EXPECTED}")
        finally:
            xterm.terminate()
            xterm.wait()
            xvfb.terminate()
            xvfb.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output", type=Path, help="the PNG to write")
    screenshot(parser.parse_args().output)


if __name__ == "__main__":
    main()
