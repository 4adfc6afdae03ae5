#!/usr/bin/env python
"""Build the documentation site offline from the notebooks.

Quarto cannot be installed on these machines, so `nbdev_docs` is not an option. Instead:

1. The notebooks in `nbs/` are committed with their outputs, so every `show_doc` is already
   rendered as Markdown; nothing is executed here (unlike `proc_nbs`, which re-runs cells).
2. This script turns them into plain notebooks for Sphinx: `#| hide` cells are dropped, `#|`
   directives become MyST-NB cell tags (`show_doc` cells show only their output), backticked
   names become links with nbdev's doclinks (made relative), and Quarto-only syntax
   (`{target=...}` attributes, links to the unpublished source host) is removed.
3. The pages are grouped under the book's chapters (`CHAPTERS` below, keyed by the notebook's
   number prefix, so a new `02g_*.ipynb` lands in chapter 3 by itself; a notebook whose prefix no
   chapter claims stops the build). Each chapter gets a page with a one-line summary per notebook
   (its `>` line) in reading order; every notebook page links to its chapter and its API page,
   and every API page links back.
4. Sphinx + MyST-NB + pydata-sphinx-theme render the notebooks with their stored outputs (nothing
   is executed), plus one autodoc API page per mlsys module, with docments turned into
   parameter docs and members inherited from scikit-learn left out. MathJax is vendored from the
   npm registry so no page loads anything remote. Any Sphinx warning fails the build.

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

# The book's chapters, in order: (slug, title, what the chapter covers, {file-name prefix: section}).
# A notebook belongs to the chapter whose prefix is the longest one its file name starts with:
# "02" takes every `02*_...` notebook (a new `02g_data_sources` lands in chapter 3), "01_" takes
# `01_datasets` only, so a new `01c_...` matches nothing and stops the build until it is mapped.
# The optional section groups pages inside a chapter. Chapters with no notebook yet are left out.
CHAPTERS = [
    ("overview", "1. Overview of machine learning systems", "When to use machine learning, and how ML in "
     "production differs from ML in research, measured.", {"01a": None}),
    ("design", "2. Introduction to machine learning systems design", "From business objectives to ML "
     "objectives, requirements, framing a problem, and decoupling objectives.", {"01b": None}),
    ("foundations", "Foundations", "The pieces every chapter uses: errors and input checks, configuration, "
     "seeding, optional imports, and loaders for the real datasets.", {"00": None, "01_": None}),
    ("data-engineering", "3. Data engineering", "Data formats, data models, ETL, the three modes of dataflow "
     "(database, service, real-time transport) and batch vs stream processing.", {"02": None}),
    ("training-data", "4. Training data", "Sampling, labeling (weak and semi-supervision, transfer and active "
     "learning, label lineage), class imbalance and data augmentation.",
     {"03": "Sampling", "04": "Labeling", "05": "Class imbalance", "06": "Data augmentation"}),
    ("feature-engineering", "5. Feature engineering", "Feature operations, hashing, embeddings, leakage "
     "detection, feature importance and a feature store.", {"07": None}),
    ("model-development", "6. Model development and offline evaluation", "Baselines, model selection, "
     "ensembles, experiment tracking, distributed training, AutoML and offline evaluation.",
     {"08": "Model development", "09": "Offline evaluation"}),
    ("deployment", "7. Model deployment and prediction service", "Batch, online and streaming prediction, "
     "and model compression.", {"10": None}),
    ("monitoring", "8. Data distribution shifts and monitoring", "Drift detection, monitoring windows, "
     "feature validation, operational metrics and alerts.", {"11": None}),
    ("continual-learning", "9. Continual learning and test in production", "Retraining, champion and "
     "challenger, triggers, and testing in production.", {"12": None}),
    ("infrastructure", "10. Infrastructure and tooling for MLOps", "The workflow runner that executes the "
     "pipeline and the `mlsys` command.", {"13": None}),
    ("responsible-ml", "11. The human side of machine learning", "Model cards, fairness by slice and "
     "responsible trade-offs.", {"14": None}),
    ("system", "The end-to-end system", "The flights ML system that `mlsys run` executes, composed from the "
     "chapters above.", {"15": None}),
]
class DocsError(SystemExit):
    "A problem in the notebooks that must stop the docs build."

    def __init__(self, msg: str):
        super().__init__(f"build_docs: {msg}")


def chapter_of(rel: Path) -> tuple[str, str | None]:
    "The (chapter slug, section) of a top-level chapter notebook: the longest prefix in CHAPTERS its name starts with."
    matches = [(len(prefix), slug, section) for slug, _, _, prefixes in CHAPTERS
               for prefix, section in prefixes.items() if rel.name.startswith(prefix)]
    if not matches:
        raise DocsError(f"notebook {rel}: no chapter of the book claims its file-name prefix. Add the prefix to "
                        "CHAPTERS in scripts/build_docs.py (which book chapter does it belong to?)")
    _, slug, section = max(matches)
    return slug, section


def nb_facts(nb: dict) -> dict:
    "The one-line summary (`>` line under the H1 or the front matter's description) and `default_exp` of a notebook."
    summary, module, title = "", None, None
    for cell in nb["cells"]:
        src = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
        if not summary and cell["cell_type"] == "raw" and src.lstrip().startswith("---"):
            fm = front_matter(src)
            summary, title = str(fm.get("description", "")), fm.get("title")
        if not summary and cell["cell_type"] == "markdown":
            m = re.search(r"^>\s*(.+)$", src, re.M)
            if m:
                summary = m.group(1).strip()
            m = re.search(r"^#\s+(.+?)\s*$", src, re.M)
            if m and title is None:
                title = m.group(1)
        m = re.search(r"^#\|\s*default_exp\s+(\S+)", src, re.M) if cell["cell_type"] == "code" else None
        if m and module is None:
            module = "mlsys." + m.group(1)
    return {"summary": summary, "module": module, "title": title}


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


TH = re.compile(r"(<th\b[^>]*>)([^<]*)(</th>)")
DIRECTIVE = re.compile(r"^\s*#\|\s*([\w-]+)\s*:?\s*(.*)$")


def convert(nb_path: Path, doc_host: str, git_url: str, depth: int = 0, nav: str = "") -> tuple[str, dict]:
    "A plain notebook for MyST-NB; `nav` (Markdown) is put right after the title and summary."
    from nbdev.doclinks import NbdevLookup

    linkify = NbdevLookup().linkify
    nb = json.loads(nb_path.read_text())
    cells, meta = [], {}
    prefix = "../" * depth
    for cell in nb["cells"]:
        if nav and cells and cells[-1]["cell_type"] == "markdown" and re.search(r"^# ", cells[-1]["source"], re.M):
            cells.append({"cell_type": "markdown", "metadata": {}, "source": nav})
            nav = ""
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
                    md = re.sub(r"\A\s*---\s*\n", "", md)  # show_doc's leading rule: a transition inside a cell is invalid in docutils
                    md = re.sub(r"^(#{2,4}) (\S+)\s*$", lambda m: f'<span id="{m.group(2).lower()}"></span>\n\n{m.group(1)} {m.group(2)}', md, flags=re.M)
                    data["text/markdown"] = clean_md(md, doc_host, git_url, prefix)
                    data.pop("text/plain", None)
                if "text/html" in data:  # let wide DataFrame headers break after underscores instead of widening the table
                    html = "".join(data["text/html"]) if isinstance(data["text/html"], list) else data["text/html"]
                    data["text/html"] = TH.sub(lambda m: m.group(1) + m.group(2).replace("_", "_<wbr>") + m.group(3), html)
        else:
            src = clean_md(linkify(src) if cell["cell_type"] == "markdown" else src, doc_host, git_url, prefix)
        cell = dict(cell, source=src, metadata=dict(cell.get("metadata", {}), tags=sorted(tags)))
        cell.pop("id", None)
        cells.append(cell)
    if nav:  # no cell followed the title
        cells.insert(1 if cells else 0, {"cell_type": "markdown", "metadata": {}, "source": nav})
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
suppress_warnings = {suppress!r}
html_theme = "pydata_sphinx_theme"
html_title = "mlsys"
html_static_path = ["_static"]
html_css_files = ["mlsys.css"]
# The page's table of contents goes under the site navigation in the left sidebar, and the right
# sidebar is dropped: at 1,280 px that gives the content column the width of a 120-character line.
html_sidebars = {{"**": ["sidebar-nav-bs", "page-toc"]}}
html_theme_options = {{"navigation_with_keys": False, "show_toc_level": 2, "icon_links": [], "use_edit_page_button": False,
                      "secondary_sidebar_items": [], "show_nav_level": 1, "navigation_depth": 3, "collapse_navigation": False}}
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


def _not_ours(app, what, name, obj, skip, options):
    "Leave out class members defined outside mlsys (scikit-learn's set_*_request methods, for one): they are not our API."
    if what != "class" or skip:
        return None
    target = inspect.unwrap(getattr(obj, "fget", None) or getattr(obj, "__func__", None) or obj)
    if inspect.isroutine(target) or inspect.isclass(target):
        module = getattr(target, "__module__", None)
        if isinstance(module, str) and module.split(".")[0] != "mlsys":
            return True
    return None


def _builtins_unlinked(app, doctree):
    "A builtin in a signature (`type`, `list`) is not a reference to a project attribute that happens to share its name."
    import builtins
    from sphinx.addnodes import pending_xref
    for node in list(doctree.findall(pending_xref)):
        if node.get("refdomain") == "py" and node.get("reftarget") in vars(builtins):
            node.replace_self(node.children)


def setup(app):
    app.connect("doctree-read", _builtins_unlinked)
    app.connect("autodoc-process-docstring", _docments)
    app.connect("autodoc-skip-member", _not_ours)
'''

# Warnings that are expected by construction and therefore not errors (every other Sphinx warning fails the build):
SUPPRESS = [
    "myst.header",  # notebooks start at H2 sections after an H1 title inserted from the front matter
    "myst.xref_missing",  # links are plain relative .html links (myst_all_links_external); check_site.py resolves them
    "mystnb.unknown_mime_type",  # widget/application outputs that have no static rendering
    "misc.highlighting_failure",  # stored outputs that are not valid in the lexer of their cell
    "toc.not_included",  # pages outside every toctree are reported by check_site.py as unreachable
]


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


LINK = re.compile(r"\[([^\]\n]*)\]\(((?:\.\./)*)([\w/]+)\.html#([\w.]+)\)")


def fix_doclinks(pages) -> None:
    """Point doclinks whose anchor is not rendered on the notebook page at the symbol's autodoc entry instead;
    a private symbol (`_helper`) has no API entry either, so its name stays code without a link."""
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
        text, prefix, page, anchor = m.groups()
        if anchor in ids.get(page, set()) or f"{page}.html#{anchor}" not in by_anchor:
            return m.group(0)
        mod, full = by_anchor[f"{page}.html#{anchor}"]
        if any(part.startswith("_") for part in full[len(mod):].split(".") if part):
            return text
        return f"[{text}]({prefix}api/{mod}.html#{full})"

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


def discover(nbs: Path) -> tuple[list, dict, dict]:
    """What each notebook is, before any page is written, so pages can link to each other.

    Returns (found, pages, by_module): found lists (path, rel, facts, chapter, section) for every
    published notebook including index; pages maps a page path to its facts, chapter, section and
    title; by_module maps an mlsys module to the page that explains it."""
    found = []
    for nb in sorted(nbs.rglob("*.ipynb")):
        rel = nb.relative_to(nbs)
        if any(part.startswith((".", "_")) for part in rel.parts):
            continue
        facts = nb_facts(json.loads(nb.read_text()))
        if rel.parts[0] == "pipelines":
            chapter, section = "system", "Pipeline stages"
        elif rel == Path("index.ipynb"):
            chapter, section = None, None
        else:
            chapter, section = chapter_of(rel)
        found.append((nb, rel, facts, chapter, section))
    pages: dict[str, dict] = {}
    by_module: dict[str, str] = {}
    for nb, rel, facts, chapter, section in found:
        if rel == Path("index.ipynb"):
            continue
        name = page_name(nb, {})
        page = (rel.parent / name).as_posix()
        pages[page] = dict(facts, chapter=chapter, section=section, title=facts["title"] or name, depth=len(rel.parts) - 1,
                           stem=rel.with_suffix("").as_posix())
        if facts["module"]:
            by_module[facts["module"]] = page
    return found, pages, by_module


def chapter_table(nbs: Path, doc_host: str) -> str:
    "The Markdown table of the book's chapters that have notebooks, linking each to its chapter page (for index.ipynb and README)."
    _, pages, _ = discover(nbs)
    host = doc_host.rstrip("/")
    rows = ["| book chapter | notebooks | modules |", "|---|---|---|"]
    for slug, title, _, prefixes in CHAPTERS:
        mine = [p for p, info in pages.items() if info["chapter"] == slug]
        if not mine:
            continue
        groups: dict[tuple, list[str]] = {}
        for p in mine:
            stem = pages[p]["stem"]
            if stem.startswith("pipelines/"):
                groups.setdefault(("pipelines",), []).append(stem)
                continue
            digits, _, rest = stem.partition("_")
            groups.setdefault((digits.rstrip("abcdefghijklmnopqrstuvwxyz"), rest.split("_")[0]), []).append(stem)
        names = [f"`{k[0]}/*`" if k == ("pipelines",) else f"`{v[0]}`" if len(v) == 1 else f"`{k[0]}*_{k[1]}_*`"
                 for k, v in groups.items()]
        mods = []
        for p in mine:
            m = pages[p]["module"]
            if m:
                top = ".".join(m.split(".")[:2])
                if top not in mods:
                    mods.append(top)
        sections = [s for s in prefixes.values() if s and any(pages[p]["section"] == s for p in mine)]
        label = f"[{title}]({host}/chapters/{slug}.html)" + (": " + ", ".join(s.lower() for s in sections) if len(sections) > 1 else "")
        rows.append(f"| {label} | {', '.join(names)} | {', '.join(f'`{m}`' for m in mods)} |")
    return "\n".join(rows)


def stage_order(stages: list[str], folder: Path) -> list[str]:
    "The stage pages in the order `mlsys run` executes them (the pipeline's DAG), unknown ones last."
    try:
        from mlsys.platform.workflow import load_pipeline

        order = load_pipeline(folder).order
    except Exception as e:  # the docs still build; the order is then alphabetical
        print(f"warning: stage order not read from {folder} ({e}); stages listed alphabetically", file=sys.stderr)
        return sorted(stages)
    rank = {f"pipelines/{name}": i for i, name in enumerate(order)}
    return sorted(stages, key=lambda p: (rank.get(p, len(rank)), p))


def md_link(text: str, target: str) -> str:
    return f"[{text}]({target})"


def chapter_pages(chapters: dict, pages: dict, stages: list[str]) -> None:
    "Write chapters.md (the book's chapters and a reading path) and one page per chapter with its notebooks in reading order."
    (SRC / "chapters").mkdir(exist_ok=True)
    present = [c for c in CHAPTERS if chapters.get(c[0])]
    for slug, title, about, _ in present:
        lines = [f"# {title}", "", about, "", "The pages in reading order; each builds on the ones before it.", ""]
        section = object()
        for n, page in enumerate(chapters[slug], 1):
            info = pages[page]
            if info["section"] != section and info["section"]:
                lines += ["", f"## {info['section']}", ""]
            section = info["section"]
            api = f" · API: {md_link('`' + info['module'] + '`', '../api/' + info['module'] + '.html')}" if info["module"] else ""
            lines.append(f"{n}. **{md_link(info['title'], '../' + page + '.html')}**: {info['summary']}{api}")
        if slug == "system" and stages:
            lines += ["", f"The {md_link('pipeline stage notebooks', '../pipelines/index.html')} that `mlsys run` executes "
                      "call these functions: " + ", ".join(md_link(pages[s]["title"].replace("Stage: ", ""), f"../{s}.html") for s in stages) + "."]
        lines += ["", "```{toctree}", ":hidden:", ""] + [f"/{p}" for p in chapters[slug]] + ["```", ""]
        (SRC / "chapters" / f"{slug}.md").write_text("\n".join(lines))
    path = []
    intro = [c for c in present if c[0] in ("overview", "design")]
    if intro:
        path.append("**Begin with the book's opening**: " + " → ".join(md_link(t, f"chapters/{s}.html") for s, t, *_ in intro)
                    + ": when ML is the right tool, and how to frame a problem for it.")
    if "foundations" in chapters:
        ds = [p for p in chapters["foundations"] if pages[p]["module"] == "mlsys.datasets"]
        path.append(("**Then the data.** " if intro else "**Begin with the data.** ") + (md_link(pages[ds[0]]["title"], ds[0] + ".html") if ds else
                    md_link("Foundations", "chapters/foundations.html")) + " shows the real datasets every page uses; "
                    + md_link("Foundations", "chapters/foundations.html") + " also holds the error types and helpers the "
                    "other pages refer to.")
    book = [c for c in present if c[0] not in ("overview", "design", "foundations", "system")]
    if book:
        path.append("**Then the book's chapters in order**: " + " → ".join(md_link(t, f"chapters/{s}.html") for s, t, *_ in book)
                    + ". Within a chapter, read the pages in the order listed; each builds on the ones before it.")
    if "system" in chapters:
        path.append("**Finish with " + md_link("the end-to-end system", "chapters/system.html") + "**, which composes the "
                    "chapters into the job that `mlsys run` executes. In a hurry? Read it first, after the data page, and "
                    "follow its links back into the chapters.")
    lines = ["# Chapters", "", "The notebooks grouped under the book's chapters. Each page explains one part in prose, shows it "
             "on real data, and exports it to a module of `mlsys` (its API page is linked beside it).", "",
             "## A suggested reading path", ""] + [f"{i}. {t}" for i, t in enumerate(path, 1)] + [""]
    for slug, title, about, _ in present:
        lines += [f"## {md_link(title, f'chapters/{slug}.html')}", "", about, ""]
        lines += [f"- {md_link(pages[p]['title'], p + '.html')}: {pages[p]['summary']}" for p in chapters[slug]] + [""]
    lines += ["```{toctree}", ":hidden:", ""] + [f"chapters/{s}" for s, *_ in present] + ["```", ""]
    (SRC / "chapters.md").write_text("\n".join(lines))


def api_pages(mods: list[str], by_module: dict, pages: dict) -> None:
    "One autodoc page per module, each linking back to its notebook page and chapter; the index grouped by chapter."
    titles = {slug: title for slug, title, *_ in CHAPTERS}
    for m in mods:
        page = by_module.get(m)
        back = ""
        if page:
            info = pages[page]
            back = (f"Explained on the page {md_link(info['title'], '../' + page + '.html')}, in "
                    f"{md_link(titles[info['chapter']], '../chapters/' + info['chapter'] + '.html')}.\n\n")
        (SRC / "api" / f"{m}.md").write_text(f"# `{m}`\n\n{back}```{{eval-rst}}\n.. automodule:: {m}\n```\n")
    order = {slug: i for i, (slug, *_) in enumerate(CHAPTERS)}
    key = lambda m: (order.get(pages[by_module[m]]["chapter"], 99), list(pages).index(by_module[m])) if m in by_module else (99, 0)
    lines, last = ["# API reference", "", "One page per module of the `mlsys` package, grouped by the book's chapters.", ""], None
    for m in sorted(mods, key=key):
        chap = pages[by_module[m]]["chapter"] if m in by_module else None
        if chap != last:
            lines += ["", f"## {titles.get(chap, 'Other modules')}", ""]
            last = chap
        summary = f": {pages[by_module[m]]['summary']}" if m in by_module else ""
        lines.append(f"- {md_link('`' + m + '`', m + '.html')}{summary}")
    lines += ["", "```{toctree}", ":hidden:", ""] + sorted(mods, key=key) + ["```", ""]
    (SRC / "api" / "index.md").write_text("\n".join(lines))


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
    shutil.copy(nbs / "styles.css", SRC / "_static" / "mlsys.css")
    try:
        vendor_mathjax(SRC / "_static")
    except Exception as e:  # no npm: render math as text rather than load MathJax from the internet
        print(f"warning: MathJax not vendored ({e}); math is shown as TeX source", file=sys.stderr)
    found, pages, by_module = discover(nbs)
    titles = {slug: title for slug, title, *_ in CHAPTERS}
    for nb, rel, facts, chapter, _section in found:
        depth = len(rel.parts) - 1
        nav = ""
        if chapter:
            up = "../" * depth
            nav = f"Part of {md_link(titles[chapter], f'{up}chapters/{chapter}.html')}"
            if facts["module"]:
                nav += f" · API reference: {md_link('`' + facts['module'] + '`', f'{up}api/' + facts['module'] + '.html')}"
            nav = f"*{nav}*\n"
        text, meta = convert(nb, cfg["doc_host"], cfg["git_url"], depth=depth, nav=nav)
        if rel == Path("index.ipynb"):
            (SRC / "index.ipynb").write_text(text)
            continue
        name, sub = page_name(nb, meta), rel.parent
        page = (sub / name).as_posix()
        if page not in pages:  # front matter renamed the page
            raise DocsError(f"{rel}: its front matter names the page {name!r}; keep page names derived from the file name")
        pages[page]["title"] = meta.get("title", pages[page]["title"])
        (SRC / sub).mkdir(parents=True, exist_ok=True)
        (SRC / sub / f"{name}.ipynb").write_text(text)
    fix_doclinks(list(pages.items()))
    chapters: dict[str, list[str]] = {}
    for page, info in pages.items():
        if not page.startswith("pipelines/"):
            chapters.setdefault(info["chapter"], []).append(page)
    stages = stage_order([p for p in pages if p.startswith("pipelines/")], nbs / "pipelines")
    chapter_pages(chapters, pages, stages)
    mods = modules()
    api_pages(mods, by_module, pages)
    if stages:
        (SRC / "pipelines" / "index.md").write_text(
            "# Pipeline stages\n\nThe stage notebooks that `mlsys run` executes with papermill, in order. The functions they "
            "call are explained in " + md_link("the end-to-end system", "../chapters/system.html") + ".\n\n"
            + "\n".join(f"- {md_link(pages[s]['title'], Path(s).name + '.html')}: {pages[s]['summary']}" for s in stages)
            + "\n\n```{toctree}\n:hidden:\n\n" + "\n".join(Path(s).name for s in stages) + "\n```\n")
    index = SRC / "index.ipynb"
    if not index.exists():
        index.write_text(json.dumps({"cells": [{"cell_type": "markdown", "metadata": {}, "source": "# mlsys\n"}], "metadata": {}, "nbformat": 4, "nbformat_minor": 4}))
    nbj = json.loads(index.read_text())
    toc = "```{toctree}\n:maxdepth: 1\n:hidden:\n\nchapters\n" + ("pipelines/index\n" if stages else "") + "api/index\n```\n"
    nbj["cells"].append({"cell_type": "markdown", "metadata": {}, "source": toc})
    index.write_text(json.dumps(nbj, indent=1))
    (SRC / "conf.py").write_text(CONF.format(version=cfg["version"], suppress=SUPPRESS))
    out = Path(args.out)
    if out.exists():
        shutil.rmtree(out)
    # -W --keep-going: every warning is an error, and all of them are reported before the build fails
    res = subprocess.run([sys.executable, "-m", "sphinx", "-b", "html", "-q", "-W", "--keep-going", "-j", "1", str(SRC), str(out)],
                         capture_output=True, text=True, cwd=SRC)  # myst-nb writes jupyter_execute/ in the cwd
    warnings = [l for l in res.stderr.splitlines() if "WARNING" in l or "ERROR" in l]
    for w in warnings[:60]:
        print(w, file=sys.stderr)
    if res.returncode != 0 or warnings:
        print(res.stdout[-3000:], res.stderr[-3000:], file=sys.stderr)
        print(f"docs build FAILED: {len(warnings)} Sphinx warnings/errors (warnings are errors here)", file=sys.stderr)
        return res.returncode or 1
    n_chapters = len([c for c in CHAPTERS if chapters.get(c[0])])
    print(f"docs site: {out / 'index.html'} ({len(list(out.rglob('*.html')))} pages, {len(pages)} notebooks in "
          f"{n_chapters} chapters, 0 warnings)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
