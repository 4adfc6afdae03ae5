"scripts/check_notebooks.py: a chapter notebook opens with the idea and ends with what we measured; planted violations fail."
import importlib.util
import json
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "check_notebooks.py"
spec = importlib.util.spec_from_file_location("check_notebooks", SCRIPT)
check = importlib.util.module_from_spec(spec)
spec.loader.exec_module(check)

IDEA = "A sample is only as good as the frame it is drawn from, so we measure each sampler's bias on real flights."


def md(text):
    return {"cell_type": "markdown", "metadata": {}, "source": text}


def code(text, outputs=()):
    return {"cell_type": "code", "metadata": {}, "execution_count": None, "source": text, "outputs": list(outputs)}


def out(text):
    return {"output_type": "execute_result", "execution_count": 1, "metadata": {}, "data": {"text/plain": text}}


def good_cells():
    return [md("# Sampling\n\n> Samplers and their bias"),
            md(IDEA),
            code("#| default_exp sampling"),
            code("#| hide\n#| export\nimport numpy as np"),
            code("#| hide\nfrom fastcore.test import test_eq"),
            md("## Simple random sampling"),
            code("x = np.arange(10)\nx.mean()", [out("4.5")]),
            code("#| hide\nimport shutil"),
            md("## What we measured\n\nThe mean of the ten draws is 4.5, as the cell above shows.")]


def write(tmp_path, cells, name="03_sampling.ipynb"):
    p = tmp_path / name
    p.write_text(json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    return p


def test_good_notebook_passes(tmp_path, capsys):
    p = write(tmp_path, good_cells())
    assert check.check_notebook(p) == []
    assert check.main([str(p)]) == 0
    assert "1 checked, 0 " in capsys.readouterr().out


def test_conclusion_may_be_a_computed_markdown_cell(tmp_path):
    cells = good_cells()[:-1] + [md("## What we measured"), code("Markdown(f'AP {ap:.3f}')", [out("AP 0.304")])]
    assert check.check_notebook(write(tmp_path, cells)) == []


def planted():
    "The planted violations: (name, cells, words the message must contain)."
    c = good_cells()
    yield "imports shown first", c[:1] + [code("#| export\nimport numpy as np")] + c[1:], "first code the page shows"
    yield "idea after the code", c[:1] + c[2:4] + [code("import pandas as pd")] + c[1:2] + c[4:], "first code the page shows"
    yield "title and summary are not the idea", [c[0]] + c[2:], "0 word(s)"
    yield "echo false with output shows output first", c[:1] + [code("#| echo: false\n1", [out("1")])] + c[1:], "first code"
    yield "no conclusion", c[:-1], "What we measured"
    yield "a section after the conclusion", c + [md("## What's next\n\nThe store, in 07g.")], "What we measured"
    yield "ends on a hidden clean-up cell", c + [code("#| hide\nshutil.rmtree('x')")], "hidden code cell"
    yield "conclusion without numbers", c[:-1] + [md("## What we measured\n\nPLACEHOLDER")], "no number"


@pytest.mark.parametrize("name,cells,words", list(planted()), ids=[n for n, _, _ in planted()])
def test_planted_violation_fails(tmp_path, capsys, name, cells, words):
    p = write(tmp_path, cells)
    problems = check.check_notebook(p)
    assert problems and any(words in x for x in problems), (name, problems)
    assert check.main([str(p)]) == 1
    assert "03_sampling.ipynb" in capsys.readouterr().out


def test_hidden_cells_do_not_count_as_the_first_code(tmp_path):
    c = good_cells()
    cells = c[:1] + [code("#| hide\nimport os"), code("#| default_exp x"), code("#| include: false\n1", [out("1")])] + c[1:]
    assert check.check_opening(cells) == []


def test_chapter_notebooks_skip_index_and_scratch(tmp_path):
    for name in ("index.ipynb", "_scratch.ipynb", "03_sampling.ipynb"):
        write(tmp_path, good_cells(), name)
    (tmp_path / "pipelines").mkdir()
    write(tmp_path / "pipelines", [], "01_ingest.ipynb")
    assert [p.name for p in check.chapter_notebooks(tmp_path)] == ["03_sampling.ipynb"]
