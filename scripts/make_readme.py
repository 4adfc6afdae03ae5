#!/usr/bin/env python
"""Generate README.md from nbs/index.ipynb without Quarto (nbdev_readme needs it).

First the chapter table of nbs/index.ipynb (between `<!-- chapter-table -->` and
`<!-- /chapter-table -->`) is regenerated from the notebooks and the chapter map in build_docs.py,
so it links every chapter page that exists. Then hidden cells and `#|` directive lines are dropped; code cells become fenced Python blocks and
their text or HTML-table outputs are kept as text. `--check` exits 1 if that table or README.md is stale, or if
its ```python blocks, run in order as one script in a fresh interpreter in an empty folder, fail:
a reader who copies them must get what the README shows.
"""
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
INDEX = ROOT / "nbs" / "index.ipynb"
TABLE = re.compile(r"(<!-- chapter-table -->\n).*?(\n<!-- /chapter-table -->)", re.S)


def sync_index(write: bool) -> bool:
    "Regenerate the chapter table in nbs/index.ipynb; returns whether it was already current."
    import nbformat

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from build_docs import chapter_table, settings

    nb = nbformat.read(INDEX, as_version=4)
    table = chapter_table(ROOT / "nbs", settings()["doc_host"])
    cells = [c for c in nb.cells if c.cell_type == "markdown" and TABLE.search(c.source)]
    if len(cells) != 1:
        raise SystemExit("nbs/index.ipynb needs one markdown cell with <!-- chapter-table --> ... <!-- /chapter-table -->")
    new = TABLE.sub(lambda m: m.group(1) + table + m.group(2), cells[0].source)
    if new == cells[0].source:
        return True
    if write:
        cells[0].source = new
        fd, tmp = tempfile.mkstemp(dir=INDEX.parent, suffix=".ipynb.tmp")
        os.close(fd)
        nbformat.write(nb, tmp)
        os.replace(tmp, INDEX)  # atomic: other processes read the notebooks at any moment
    return False


def render() -> str:
    nb = json.loads(INDEX.read_text())
    out = ["<!-- Generated from nbs/index.ipynb by scripts/make_readme.py: edit the notebook, not this file. -->", ""]
    for cell in nb["cells"]:
        src = "".join(cell["source"])
        if cell["cell_type"] == "markdown":
            out += [src, ""]
            continue
        if cell["cell_type"] != "code":
            continue
        lines = src.splitlines()
        if any(l.strip().replace(" ", "") in ("#|hide", "#|include:false") for l in lines):
            continue
        code = "\n".join(l for l in lines if not l.lstrip().startswith("#|")).strip()
        if code:
            out += ["```python", code, "```", ""]
        for o in cell.get("outputs", []):
            text = o.get("text") or o.get("data", {}).get("text/plain")
            if text:
                out += ["```", "".join(text).rstrip(), "```", ""]
    return "\n".join(out).rstrip() + "\n"


def run_snippets(readme: Path, timeout: int = 600) -> int:
    "Run the README's python blocks in order, as one script, in a fresh interpreter in an empty folder."
    blocks = re.findall(r"^```python\n(.*?)^```", readme.read_text(), re.S | re.M)
    if not blocks:
        print("README.md has no python snippets")
        return 0
    script = "\n\n".join(f"# --- README snippet {i}\n{b}" for i, b in enumerate(blocks, 1))
    env = dict(os.environ, MPLBACKEND="Agg", PYTHONWARNINGS="error")  # a snippet that warns is a broken snippet
    with tempfile.TemporaryDirectory() as tmp:
        try:
            res = subprocess.run([sys.executable, "-c", script], cwd=tmp, env=env, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            print(f"README.md python snippets did not finish in {timeout} s", file=sys.stderr)
            return 1
    if res.returncode != 0:
        print(f"README.md python snippets fail when run as written (exit {res.returncode}):", file=sys.stderr)
        print(res.stderr[-3000:], file=sys.stderr)
        return 1
    print(f"README.md python snippets run: {len(blocks)} block(s) ok")
    return 0


if __name__ == "__main__":
    if "--check" not in sys.argv and not sync_index(write=True):
        print(f"updated the chapter table in {INDEX}")
    text = render()
    readme = ROOT / "README.md"
    if "--check" in sys.argv:
        if not sync_index(write=False):
            print("the chapter table of nbs/index.ipynb is stale (a chapter gained or lost notebooks): "
                  "run python scripts/make_readme.py", file=sys.stderr)
            sys.exit(1)
        if readme.read_text() != text:
            print("README.md is stale: run python scripts/make_readme.py", file=sys.stderr)
            sys.exit(1)
        print("README.md is current")
        sys.exit(run_snippets(readme))
    else:
        readme.write_text(text)
        print(f"wrote {readme}")
