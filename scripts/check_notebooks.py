#!/usr/bin/env python
"""Fail when a chapter notebook does not read like a book's page (STYLE 21 and 22).

Every chapter notebook (a top-level `nbs/*.ipynb` other than `index.ipynb` and scratch `_*.ipynb`:
the notebooks that become chapter pages in scripts/build_docs.py) must

(a) open with the idea: markdown prose (a paragraph of at least MIN_WORDS words, not counting
    headings and the `>` summary line) comes before the first code cell the page shows. Cells the
    page drops (`#| hide`, `#| exec_doc`, `#| include: false`, a `#| default_exp` cell with nothing
    else) do not count; a `#| echo: false` cell counts when it has stored outputs.
(b) end with a "What we measured" section: a level-2 heading "What we measured", no level-1 or
    level-2 heading after it, at least one number in the section (in its markdown or in the stored
    outputs of its code cells), and the notebook's last cell is not a hidden code cell (clean-up
    goes before the conclusion, so notebook and page both end on it).

Usage: python scripts/check_notebooks.py [NOTEBOOK ...]   (default: the chapter notebooks in nbs/)
"""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MIN_WORDS = 15
DIRECTIVE = re.compile(r"^\s*#\|\s*([\w-]+)\s*:?\s*(.*)$")  # as in scripts/build_docs.py
HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*$", re.M)
MEASURED = re.compile(r"^what we measured\b", re.I)
NUMBER = re.compile(r"\d")


def _src(cell: dict) -> str:
    s = cell.get("source", "")
    return "".join(s) if isinstance(s, list) else s


def directives(src: str) -> dict[str, str]:
    "The `#|` directives of a code cell, name -> value."
    return {m.group(1): m.group(2).strip() for line in src.splitlines() for m in [DIRECTIVE.match(line)] if m}


def shown_on_page(cell: dict) -> bool:
    "Whether the docs page shows anything of this code cell (its code or its outputs), as build_docs converts it."
    src = _src(cell)
    d = directives(src)
    if "hide" in d or "exec_doc" in d or d.get("include") == "false":
        return False
    body = "\n".join(line for line in src.splitlines() if not DIRECTIVE.match(line)).strip()
    if d.get("echo") == "false":
        body = ""
    return bool(body or cell.get("outputs"))


def prose_words(md: str) -> int:
    "Words of running text in a markdown cell: headings and `>` summary lines do not count."
    return sum(len(line.split()) for line in md.splitlines() if not re.match(r"\s*(#|>)", line))


def _output_text(cell: dict) -> str:
    out = []
    for o in cell.get("outputs", []):
        if o.get("output_type") == "stream":
            out.append(_src({"source": o.get("text", "")}))
        for mime in ("text/markdown", "text/plain", "text/html"):
            if mime in o.get("data", {}):
                out.append(_src({"source": o["data"][mime]}))
                break
    return "\n".join(out)


def check_opening(cells: list[dict]) -> list[str]:
    words = 0
    for i, cell in enumerate(cells):
        if cell.get("cell_type") == "markdown":
            words += prose_words(_src(cell))
        elif cell.get("cell_type") == "code" and shown_on_page(cell):
            if words >= MIN_WORDS:
                return []
            return [f"cell {i} (id {cell.get('id', '?')}) is the first code the page shows, but only {words} word(s) of "
                    f"prose come before it: open with the idea (a paragraph of at least {MIN_WORDS} words), and hide "
                    "the imports/setup cells with `#| hide`"]
    return []


def check_ending(cells: list[dict]) -> list[str]:
    start = None
    for i, cell in enumerate(cells):
        if cell.get("cell_type") != "markdown":
            continue
        for m in HEADING.finditer(_src(cell)):
            if len(m.group(1)) == 2 and MEASURED.match(m.group(2)):
                start = i
            elif len(m.group(1)) <= 2 and start is not None:
                start = None  # a later section: the notebook does not end with the conclusion
    if start is None:
        return ['no "## What we measured" section ends the notebook: the last level-2 section must be "What we '
                'measured", with the numbers from the cells above']
    problems = []
    section = cells[start:]
    text = "\n".join(_src(c) if c.get("cell_type") == "markdown" else _output_text(c) for c in section)
    text = HEADING.sub("", text)
    if not NUMBER.search(text):
        problems.append(f'the "What we measured" section (cell {start}) states no number: cite the numbers of the cells above')
    last = cells[-1]
    if last.get("cell_type") == "code" and not shown_on_page(last):
        problems.append(f"the notebook ends on a hidden code cell (cell {len(cells) - 1}, id {last.get('id', '?')}): "
                        'move it before the "What we measured" section so the notebook ends on the conclusion')
    return problems


def check_notebook(path: Path) -> list[str]:
    cells = json.loads(Path(path).read_text()).get("cells", [])
    return check_opening(cells) + check_ending(cells)


def chapter_notebooks(nbs: Path = ROOT / "nbs") -> list[Path]:
    "The notebooks that become chapter pages: top-level, not index, not scratch."
    return [p for p in sorted(nbs.glob("*.ipynb")) if p.name != "index.ipynb" and not p.name.startswith((".", "_"))]


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    nbs = [Path(a) for a in args] or chapter_notebooks()
    failing = 0
    for nb in nbs:
        problems = check_notebook(nb)
        if problems:
            failing += 1
            rel = nb.resolve().relative_to(ROOT) if nb.resolve().is_relative_to(ROOT) else nb
            print(f"{rel}:")
            for p in problems:
                print(f"  {p}")
    print(f"chapter notebooks: {len(nbs)} checked, {failing} that do not open with the idea or end with what we measured")
    return 1 if failing else 0


if __name__ == "__main__":
    sys.exit(main())
