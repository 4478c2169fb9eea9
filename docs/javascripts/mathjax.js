// MathJax for pymdownx.arithmatex (generic mode): \( ... \) inline, \[ ... \] and $$ ... $$ display.
// MathJax itself is vendored beside this file (mathjax/tex-svg.js, see mathjax/README.txt): SVG
// output carries its glyphs, so the equations render offline, with no font files to fetch.
window.MathJax = {
  tex: {
    inlineMath: [["\\(", "\\)"]],
    displayMath: [["\\[", "\\]"]],
    processEscapes: true,
    processEnvironments: true,
  },
  options: {
    ignoreHtmlClass: ".*|",
    processHtmlClass: "arithmatex",
  },
};

// Material for MkDocs can swap pages without a reload (instant navigation): typeset each new
// page. The page's first typesetting is MathJax's own, once it has started.
document$.subscribe(() => {
  if (!MathJax.startup || !MathJax.startup.output) {
    return;
  }
  MathJax.startup.output.clearFontCache();
  MathJax.typesetClear();
  MathJax.texReset();
  MathJax.typesetPromise();
});
