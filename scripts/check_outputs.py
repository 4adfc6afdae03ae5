#!/usr/bin/env python
"""Fail when a stored notebook output holds a warning, a traceback or kernel chatter.

The stored outputs are the docs, so none of them may show:
- a stderr stream (warnings, progress-bar debris and logging all land there);
- an `error` output (a cell that raised);
- text matching a printed warning (`UserWarning: ...`, `Pandas4Warning: ...`, a line starting with
  `Warning:` or logging's `WARNING:`/`WARNING |`), a traceback (`Traceback (most recent call last)`)
  or Jupyter's kernel chatter (`[IPKernelApp]`), in any text output (stdout, text/plain,
  text/markdown, text/html). The word WARNING as data (a log level in a table) is not a warning.

A cell that demonstrates one on purpose says so with a cell metadata tag: `shows-warning` allows
warnings and stderr, `shows-error` allows error outputs and tracebacks. Scratch notebooks (`_*.ipynb`)
and checkpoints are skipped.

Usage: python scripts/check_outputs.py [NOTEBOOK_OR_FOLDER ...]   (default: nbs/)
"""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TAGS = {"warning": "shows-warning", "error": "shows-error"}
PATTERNS = [
    ("error", re.compile(r"Traceback \(most recent call last\)")),
    ("warning", re.compile(r"\[IPKernelApp\]")),
    ("warning", re.compile(r"\b[A-Z]\w*Warning: |^\s*(?:Warning|WARNING):|\bWARNING \|", re.M)),
]
TEXT_MIMES = ("text/plain", "text/markdown", "text/html")


def _text(value) -> str:
    return "".join(value) if isinstance(value, list) else str(value or "")


def _first(text: str, match: re.Match) -> str:
    "The line holding the match, shortened."
    start = text.rfind("\n", 0, match.start()) + 1
    end = text.find("\n", match.end())
    line = text[start:end if end >= 0 else None].strip()
    line = re.sub(r"<[^>]+>", "", line)  # HTML outputs: show the text
    return line[:140]


def findings(cell: dict) -> list[tuple[str, str]]:
    "(kind, description) for each problem in a code cell's stored outputs; kind is 'warning' or 'error'."
    out = []
    for o in cell.get("outputs", []):
        kind = o.get("output_type")
        if kind == "error":
            out.append(("error", f"error output {o.get('ename', '?')}: {_text(o.get('evalue'))[:120]}"))
            continue
        texts = []
        if kind == "stream":
            text = _text(o.get("text"))
            if o.get("name") == "stderr" and text.strip():
                tb = "Traceback (most recent call last)" in text
                out.append(("error" if tb else "warning", f"stderr output: {text.strip().splitlines()[0][:140]}"))
                continue
            texts.append(text)
        else:
            data = o.get("data", {})
            texts += [_text(data[m]) for m in TEXT_MIMES if m in data]
        hit = next(((k, t, m) for t in texts for k, pat in PATTERNS for m in [pat.search(t)] if m), None)
        if hit:  # one finding per output, even when several of its formats match
            out.append((hit[0], f"output text: {_first(hit[1], hit[2])}"))
    return out


def check_notebook(path: Path) -> list[str]:
    nb = json.loads(path.read_text())
    problems = []
    for i, cell in enumerate(nb.get("cells", [])):
        if cell.get("cell_type") != "code":
            continue
        tags = set(cell.get("metadata", {}).get("tags", []))
        for kind, what in findings(cell):
            if TAGS[kind] in tags:
                continue
            problems.append(f"cell {i} (id {cell.get('id', '?')}): {what}  (tag the cell `{TAGS[kind]}` only if it demonstrates this)")
    return problems


def notebooks(args: list[str]) -> list[Path]:
    paths = [Path(a) for a in args] or [ROOT / "nbs"]
    out = []
    for p in paths:
        found = sorted(p.rglob("*.ipynb")) if p.is_dir() else [p]
        out += [f for f in found if not any(part.startswith((".", "_")) for part in f.relative_to(p if p.is_dir() else p.parent).parts)]
    return out


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    nbs = notebooks(args)
    failing = 0
    for nb in nbs:
        problems = check_notebook(nb)
        if problems:
            failing += 1
            rel = nb.resolve().relative_to(ROOT) if nb.resolve().is_relative_to(ROOT) else nb
            print(f"{rel}: {len(problems)} stored output(s) with a warning or traceback")
            for p in problems:
                print(f"  {p}")
    print(f"stored outputs: {len(nbs)} notebooks checked, {failing} with warnings/tracebacks")
    return 1 if failing else 0


if __name__ == "__main__":
    sys.exit(main())
