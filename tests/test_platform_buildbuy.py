"""mlsys.platform.buildbuy: every module the build-vs-buy table names exists (found by spec, without importing it),
every module of the package is in a row or in the justified exclusion list, the records are well formed and short
enough for the page, and bad input is refused. No estimator is defined here."""
import importlib.util
import sys
from pathlib import Path

import pytest

from mlsys.core import ConfigError
from mlsys.platform import buildbuy as B

HEAVY = ("torch", "tensorflow", "mlflow", "prefect", "fastapi", "optuna", "dask", "redis", "onnxruntime")


def test_every_named_module_has_a_spec():
    assert B.missing_modules() == []
    for m in sorted({m for p in B.PARTS for m in p.modules} | set(B.EXCLUDED)):
        assert importlib.util.find_spec(f"mlsys.{m}") is not None, m


def test_the_spec_check_imports_no_heavy_dependency(tmp_path):
    import subprocess
    code = ("import sys; from mlsys.platform.buildbuy import missing_modules, coverage; "
            "assert missing_modules() == []; coverage(); "
            f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=tmp_path)
    assert out.stdout.strip() == "[]", out.stdout


def test_every_platform_module_is_in_a_row_or_excluded():
    cov = B.coverage()
    bad = cov[cov.status != "in a part"]
    bad = bad[bad.status != "excluded"]
    assert bad.empty, f"add these modules to a row of PARTS or to EXCLUDED with a reason:\n{bad.to_string()}"


def test_no_module_is_both_named_and_excluded():
    named = {m for p in B.PARTS for m in p.modules}
    for key in B.EXCLUDED:
        assert not any(m == key or m.startswith(key + ".") for m in named), key


def test_every_exclusion_has_a_reason_and_is_used():
    modules = B.mlsys_modules()
    for key, why in B.EXCLUDED.items():
        assert isinstance(why, str) and len(why.split()) >= 2, key
        assert any(m == key or m.startswith(key + ".") for m in modules), f"exclusion {key!r} matches no module"


def test_every_subpackage_is_represented():
    subpackages = {m.split(".")[0] for m in B.mlsys_modules() if "." in m}
    cov = B.coverage()
    for pkg in subpackages:
        rows = cov[cov.module.str.startswith(pkg + ".")]
        assert set(rows.status) <= {"in a part", "excluded"} and len(rows), pkg


def test_module_walk_matches_the_files():
    root = Path(importlib.util.find_spec("mlsys").origin).parent
    mods = B.mlsys_modules()
    assert "platform.buildbuy" in mods and "deploy.service" in mods and "cli" in mods
    assert not any(m.endswith("__init__") or m.startswith("_") or "._" in m for m in mods)
    for m in mods:
        assert (root / Path(*m.split("."))).with_suffix(".py").is_file(), m


def test_module_walk_on_a_planted_package(tmp_path):
    (tmp_path / "deploy").mkdir()
    for f in ["core.py", "_modidx.py", "deploy/__init__.py", "deploy/new.py"]:
        (tmp_path / f).write_text("")
    (tmp_path / "__pycache__").mkdir()
    (tmp_path / "__pycache__" / "x.py").write_text("")
    assert B.mlsys_modules(tmp_path) == ["core", "deploy.new"]
    cov = B.coverage(modules=B.mlsys_modules(tmp_path))
    assert dict(zip(cov.module, cov.status)) == {"core": "excluded", "deploy.new": "uncovered"}
    with pytest.raises(ConfigError, match="package folder"):
        B.mlsys_modules(tmp_path / "missing")


def test_missing_and_both_are_detected():
    fake = (B.Part(B.LAYERS[2], "x", "buy", "-", ("deploy.nope", "nopkg.mod"), "a", "b", "c"),)
    assert B.missing_modules(fake, {"gone": "a reason"}) == ["deploy.nope", "gone", "nopkg.mod"]
    both = B.coverage(B.PARTS, {"deploy": "no reason"}, ["deploy.batch"])
    assert both.status.tolist() == ["both"]


def test_records_are_well_formed_and_short():
    assert len({p.part for p in B.PARTS}) == len(B.PARTS)
    assert {p.layer for p in B.PARTS} == set(B.LAYERS)
    assert {p.decision for p in B.PARTS} == set(B.DECISIONS)
    for p in B.PARTS:
        for f in ("part", "bought", *B.FACTORS):
            assert 0 < len(getattr(p, f)) <= B.MAX_TEXT, (p.part, f)
        assert len(p.modules) == len(set(p.modules)), p.part


def test_the_parts_the_brief_names_are_present():
    parts = {p.part for p in B.PARTS}
    for want in ["file formats", "feature store", "experiment tracking", "model store", "online serving",
                 "real-time transport", "operational monitoring", "drift detectors", "alerts", "workflow orchestrator",
                 "scheduler and triggers", "HPO and AutoML", "distributed training", "data-parallel processing",
                 "model compression", "dev environment", "compute"]:
        assert want in parts, want
    by = {p.part: p for p in B.PARTS}
    assert "Prefect" in by["workflow orchestrator"].bought and "platform.workflow" in by["workflow orchestrator"].modules
    assert "Optuna" in by["HPO and AutoML"].bought and "modeling.hpo" in by["HPO and AutoML"].modules
    assert "Dask" in by["data-parallel processing"].bought


@pytest.mark.parametrize("view,cols", [
    ("decision", ["layer", "part", "decision", "bought"]),
    ("why", ["part", "stage", "focus", "maturity"]),
    ("modules", ["part", "modules"]),
])
def test_views_fit_the_page(view, cols):
    df = B.build_vs_buy(view)
    assert list(df.columns) == cols and len(df.columns) <= 6 and len(df) == len(B.PARTS)
    width = sum(int(df[c].astype(str).str.len().max()) for c in cols)
    assert width <= 160, (view, width)  # characters across the widest row: about 1,100 px of table text


def test_layer_filter_and_all_view():
    df = B.build_vs_buy("all", layer="dev environment")
    assert set(df.layer) == {"dev environment"} and isinstance(df.modules.iloc[0], list)
    assert B._short(("deploy.a", "deploy.b", "cli", "x.y")) == "deploy.{a, b}, cli, x.y"


@pytest.mark.parametrize("kw,match", [
    (dict(view="wide"), "view must be one of"),
    (dict(layer="cloud"), "layer must be one of"),
    (dict(parts=()), "no parts to tabulate"),
])
def test_build_vs_buy_bad_input(kw, match):
    with pytest.raises(ConfigError, match=match):
        B.build_vs_buy(**kw)


@pytest.mark.parametrize("kw,match", [
    (dict(layer="cloud"), "layer must be one of"),
    (dict(decision="rent"), "decision must be one of"),
    (dict(modules=()), "modules must be a non-empty tuple"),
    (dict(modules=["a"]), "modules must be a non-empty tuple"),
    (dict(modules=("",)), "modules must be a non-empty tuple"),
    (dict(stage="x" * 41), "at most 40 characters"),
    (dict(focus=""), "non-empty text"),
    (dict(bought=None), "non-empty text"),
])
def test_part_bad_input(kw, match):
    base = dict(layer="ML platform", part="p", decision="buy", bought="-", modules=("core",), stage="a", focus="b",
                maturity="c")
    with pytest.raises(ConfigError, match=match):
        B.Part(**(base | kw))
