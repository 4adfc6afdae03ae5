#!/usr/bin/env python
"""Build the documentation site offline from the notebooks.

Quarto cannot be installed on these machines, so `nbdev_docs` is not an option. Instead:

1. The notebooks in `nbs/` are committed with their outputs, so every `show_doc` is already
   rendered as Markdown; nothing is executed here (unlike `proc_nbs`, which re-runs cells).
2. This script turns them into plain notebooks for Sphinx: `#| hide` cells are dropped, `#|`
   directives become MyST-NB cell tags (`show_doc` cells show only their output), backticked
   names become links with nbdev's doclinks (made relative), and Quarto-only syntax
   (`{target=...}` attributes, links to the unpublished source host) is removed.
3. Sphinx + MyST-NB + pydata-sphinx-theme render the notebooks with their stored outputs (nothing
   is executed), plus one autodoc API page per mlsys module, with docments turned into
   parameter docs. MathJax is vendored from the npm registry so no page loads anything remote.

Usage: python scripts/build_docs.py [--out _docs]
"""
from __future__ import annotations

import argparse
import configparser
import json
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "_docs_src"


def settings() -> configparser.SectionProxy:
    cfg = configparser.ConfigParser(delimiters=["="])
    cfg.read(ROOT / "settings.ini")
    return cfg["DEFAULT"]


def front_matter(text: str) -> dict:
    import yaml

    body = text.strip().strip("-").strip()
    return yaml.safe_load(body) or {}


def page_name(nb_path: Path, meta: dict) -> str:
    out = meta.get("output-file")
    if out:
        return Path(out).stem
    stem = nb_path.stem
    return re.sub(r"^\d+[a-z]?_", "", stem)


DIRECTIVE = re.compile(r"^\s*#\|\s*([\w-]+)\s*:?\s*(.*)$")


def convert(nb_path: Path, doc_host: str, git_url: str, depth: int = 0) -> tuple[str, dict]:
    from nbdev.doclinks import NbdevLookup

    linkify = NbdevLookup().linkify
    nb = json.loads(nb_path.read_text())
    cells, meta = [], {}
    prefix = "../" * depth
    for cell in nb["cells"]:
        src = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
        if cell["cell_type"] == "raw" and src.lstrip().startswith("---"):
            meta = front_matter(src)
            title, desc = meta.get("title", nb_path.stem), meta.get("description", "")
            text = f"# {title}\n\n" + (f"> {desc}\n" if desc else "")
            cells.append({"cell_type": "markdown", "metadata": {}, "source": text})
            continue
        tags = set(cell.get("metadata", {}).get("tags", []))
        if cell["cell_type"] == "code":
            lines, keep = src.splitlines(), []
            for line in lines:
                m = DIRECTIVE.match(line)
                if m:
                    key, val = m.group(1), m.group(2).strip()
                    if key == "echo" and val == "false":
                        tags.add("remove-input")
                    elif key in ("hide", "exec_doc") or (key == "include" and val == "false"):
                        tags.add("remove-cell")
                    continue
                keep.append(line)
            src = "\n".join(keep).strip("\n")
            if "remove-cell" in tags or (not src and not cell.get("outputs")):
                continue
            if re.fullmatch(r"show_doc\(.*\)", src.strip(), re.S):
                tags.add("remove-input")
            for out in cell.get("outputs", []):
                data = out.get("data", {})
                if "text/markdown" in data:
                    md = "".join(data["text/markdown"]) if isinstance(data["text/markdown"], list) else data["text/markdown"]
                    md = re.sub(r"^(#{2,4}) (\S+)\s*$", lambda m: f'<span id="{m.group(2).lower()}"></span>\n\n{m.group(1)} {m.group(2)}', md, flags=re.M)
                    data["text/markdown"] = clean_md(md, doc_host, git_url, prefix)
                    data.pop("text/plain", None)
        else:
            src = clean_md(linkify(src) if cell["cell_type"] == "markdown" else src, doc_host, git_url, prefix)
        cell = dict(cell, source=src, metadata=dict(cell.get("metadata", {}), tags=sorted(tags)))
        cell.pop("id", None)
        cells.append(cell)
    nb["cells"] = cells
    nb.setdefault("metadata", {})["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb["nbformat"], nb["nbformat_minor"] = 4, 4
    return json.dumps(nb, indent=1), meta


def clean_md(md: str, doc_host: str, git_url: str, prefix: str = "") -> str:
    md = re.sub(r"\[source\]\([^)]*\)\{[^}]*\}\n?", "", md)  # links to the unpublished source host
    md = re.sub(r"\)\{[^}]*target=[^}]*\}", ")", md)  # Quarto link attributes
    host = doc_host.rstrip("/") + "/"
    md = md.replace(host, prefix)  # nbdev doclinks -> relative links between pages
    md = md.replace(git_url.rstrip("/") + "/", "")
    return md


CONF = '''
import inspect, os, sys
project = "mlsys"
author = "mlsys developers"
release = version = {version!r}
extensions = ["myst_nb", "sphinx.ext.autodoc", "sphinx.ext.mathjax", "sphinx.ext.viewcode"]
nb_execution_mode = "off"
nb_render_markdown_format = "myst"
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence"]
myst_heading_anchors = 3
myst_all_links_external = True  # links are already relative .html paths; do not resolve them as references
html_context = {{"default_mode": "light"}}
suppress_warnings = ["myst.header", "myst.xref_missing", "mystnb.unknown_mime_type", "misc.highlighting_failure", "autodoc", "ref.python", "toc.not_included", "docutils"]
html_theme = "pydata_sphinx_theme"
html_title = "mlsys"
html_static_path = ["_static"]
html_theme_options = {{"navigation_with_keys": False, "show_toc_level": 2, "icon_links": [], "use_edit_page_button": False}}
html_show_sourcelink = False
mathjax_path = "mathjax/tex-chtml.js"
autodoc_default_options = {{"members": True, "undoc-members": True, "show-inheritance": True}}
autodoc_member_order = "bysource"
autodoc_mock_imports = []
exclude_patterns = ["_build", "**.ipynb_checkpoints"]


def _docments(app, what, name, obj, options, lines):
    "Turn fastcore docments (parameter comments) into :param: fields; docstrings are plain text, so escape rST's `|`."
    lines[:] = [l.replace("|", "\\|") for l in lines]
    if what not in ("function", "method", "class"):
        return
    try:
        from fastcore.docments import docments
        target = obj.__init__ if what == "class" else obj
        docs = docments(target, full=False)
    except Exception:
        return
    for pname, text in (docs or {{}}).items():
        if pname in ("return", "self") or not text:
            continue
        lines.append(f":param {{pname}}: {{text.replace('|', chr(92) + '|')}}")


def setup(app):
    app.connect("autodoc-process-docstring", _docments)
'''


def vendor_mathjax(static: Path) -> None:
    target = static / "mathjax"
    if (target / "tex-chtml.js").exists():  # pragma: no cover
        return
    cache = ROOT / ".cache" / "mathjax"
    cache.mkdir(parents=True, exist_ok=True)
    tgz = sorted(cache.glob("mathjax-3*.tgz"))
    if not tgz:
        subprocess.run(["npm", "pack", "mathjax@3", "--silent"], cwd=cache, check=True, capture_output=True, timeout=300)
        tgz = sorted(cache.glob("mathjax-3*.tgz"))
    with tarfile.open(tgz[-1]) as tf:
        members = [m for m in tf.getmembers() if m.name.startswith("package/es5/")]
        tf.extractall(cache / "x", members=members, filter="data")
    shutil.copytree(cache / "x" / "package" / "es5", target, dirs_exist_ok=True)


LINK = re.compile(r"\]\(((?:\.\./)*)([\w/]+)\.html#([\w.]+)\)")


def fix_doclinks(pages) -> None:
    "Point doclinks whose anchor is not rendered on the notebook page at the symbol's autodoc entry instead."
    from mlsys._modidx import d

    by_anchor = {}
    for mod, syms in d["syms"].items():
        for full, (loc, _) in syms.items():
            by_anchor[loc] = (mod, full)
    files = [SRC / "index.ipynb"] + [SRC / f"{p}.ipynb" for p, _ in pages]
    ids = {}
    for f in files:
        page = f.relative_to(SRC).with_suffix("").as_posix()
        ids[page] = set(re.findall(r'<span id=\\?"([^"\\]+)\\?"', f.read_text()))

    def repl(m):
        prefix, page, anchor = m.groups()
        if anchor in ids.get(page, set()) or f"{page}.html#{anchor}" not in by_anchor:
            return m.group(0)
        mod, full = by_anchor[f"{page}.html#{anchor}"]
        return f"]({prefix}api/{mod}.html#{full})"

    for f in files:
        f.write_text(LINK.sub(repl, f.read_text()))


def modules() -> list[str]:
    lib = ROOT / "mlsys"
    out = []
    for p in sorted(lib.rglob("*.py")):
        rel = p.relative_to(lib)
        if p.name.startswith("_"):
            continue
        out.append("mlsys." + ".".join(rel.with_suffix("").parts))
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(ROOT / "_docs"))
    args = ap.parse_args(argv)
    cfg = settings()
    nbs = ROOT / cfg.get("nbs_path", "nbs")
    if SRC.exists():
        shutil.rmtree(SRC)
    (SRC / "api").mkdir(parents=True)
    (SRC / "_static").mkdir()
    try:
        vendor_mathjax(SRC / "_static")
    except Exception as e:  # no npm: render math as text rather than load MathJax from the internet
        print(f"warning: MathJax not vendored ({e}); math is shown as TeX source", file=sys.stderr)
    pages = []
    for nb in sorted(nbs.rglob("*.ipynb")):
        rel = nb.relative_to(nbs)
        if any(part.startswith((".", "_")) for part in rel.parts):
            continue
        text, meta = convert(nb, cfg["doc_host"], cfg["git_url"], depth=len(rel.parts) - 1)
        if rel == Path("index.ipynb"):
            (SRC / "index.ipynb").write_text(text)
            continue
        name, sub = page_name(nb, meta), rel.parent
        (SRC / sub).mkdir(parents=True, exist_ok=True)
        (SRC / sub / f"{name}.ipynb").write_text(text)
        pages.append(((sub / name).as_posix(), meta.get("title", name)))
    fix_doclinks(pages)
    # order: chapter notebooks in file order, then pipeline stages
    chapters = [p for p, _ in pages if not p.startswith("pipelines/")]
    stages = [p for p, _ in pages if p.startswith("pipelines/")]
    mods = modules()
    for m in mods:
        (SRC / "api" / f"{m}.md").write_text(f"# `{m}`\n\n```{{eval-rst}}\n.. automodule:: {m}\n```\n")
    (SRC / "api" / "index.md").write_text("# API reference\n\nOne page per module of the `mlsys` package.\n\n```{toctree}\n:maxdepth: 1\n\n"
                                          + "\n".join(mods) + "\n```\n")
    if stages:
        (SRC / "pipelines" / "index.md").write_text("# Pipeline stages\n\nThe stage notebooks that `mlsys run` executes with papermill.\n\n```{toctree}\n:maxdepth: 1\n\n"
                                                    + "\n".join(Path(s).name for s in stages) + "\n```\n")
    index = SRC / "index.ipynb"
    if not index.exists():
        index.write_text(json.dumps({"cells": [{"cell_type": "markdown", "metadata": {}, "source": "# mlsys\n"}], "metadata": {}, "nbformat": 4, "nbformat_minor": 4}))
    nbj = json.loads(index.read_text())
    (SRC / "chapters.md").write_text("# Chapters\n\nThe notebooks, in the order of the book's chapters: each explains one "
                                     "part, shows it on real data and exports it to a module of `mlsys`.\n\n```{toctree}\n:maxdepth: 1\n\n"
                                     + "\n".join(chapters) + "\n```\n")
    toc = "```{toctree}\n:maxdepth: 1\n:hidden:\n\nchapters\n" + ("pipelines/index\n" if stages else "") + "api/index\n```\n"
    nbj["cells"].append({"cell_type": "markdown", "metadata": {}, "source": toc})
    index.write_text(json.dumps(nbj, indent=1))
    (SRC / "conf.py").write_text(CONF.format(version=cfg["version"]))
    out = Path(args.out)
    if out.exists():
        shutil.rmtree(out)
    res = subprocess.run([sys.executable, "-m", "sphinx", "-b", "html", "-q", "-j", "1", str(SRC), str(out)],
                         capture_output=True, text=True, cwd=SRC)  # myst-nb writes jupyter_execute/ in the cwd
    warnings = [l for l in res.stderr.splitlines() if "WARNING" in l or "ERROR" in l]
    for w in warnings[:40]:
        print(w, file=sys.stderr)
    if res.returncode != 0:
        print(res.stdout[-3000:], res.stderr[-3000:], file=sys.stderr)
        return res.returncode
    print(f"docs site: {out / 'index.html'} ({len(list(out.rglob('*.html')))} pages, {len(warnings)} warnings)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
