#!/usr/bin/env python
"""Generate README.md from nbs/index.ipynb without Quarto (nbdev_readme needs it).

Hidden cells and `#|` directive lines are dropped; code cells become fenced Python blocks and
their text or HTML-table outputs are kept as text. `--check` exits 1 if README.md is stale.
"""
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def render() -> str:
    nb = json.loads((ROOT / "nbs" / "index.ipynb").read_text())
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


if __name__ == "__main__":
    text = render()
    readme = ROOT / "README.md"
    if "--check" in sys.argv:
        if readme.read_text() != text:
            print("README.md is stale: run python scripts/make_readme.py", file=sys.stderr)
            sys.exit(1)
        print("README.md is current")
    else:
        readme.write_text(text)
        print(f"wrote {readme}")
