"""Model cards (mlsys.responsible.cards): a card read from a planted run folder, its explicit gaps, its renderings, the
service-group fairness numbers against a hand count, the report's card sections, and the bad inputs."""
import json
import re
import shutil

import numpy as np
import pandas as pd
import pytest

from mlsys.core import ConfigError, DataError, PipelineError
from mlsys.report.text import _card_sections
from mlsys.responsible.cards import (OPTIONAL, SECTIONS, ModelCard, card_from_run, example_run, fairness_gaps,
                                     flight_fairness)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return example_run(tmp_path_factory.mktemp("runs") / "example", n=1500, seed=1)


@pytest.fixture(scope="module")
def card(run):
    return card_from_run(run, n_boot=100)


def test_card_has_every_section_and_says_what_it_could_not_read(card):
    assert [h for h, _ in card.sections()] == list(SECTIONS)
    absent = {OPTIONAL[k] for k in ("mlflow_entry", "selection", "metrics", "monitor", "alerts", "continual")}
    assert card.missing == [f"not available: {r}" for r in OPTIONAL.values() if r in absent]
    md = card.to_markdown()
    for line in card.missing:
        assert line in md
    assert "not available: monitor/monitor.json" in card.monitoring and "not available: continual/continual.json" in card.continual
    details = {r["fact"]: r["value"] for r in card.details[0]["table"]}
    assert details["name"] == "flights-late" and details["version"] == "1" and details["type"] == "logreg"
    assert details["parameters"] == "not available: train/selection.json"


def test_optional_products_fill_their_sections(run, tmp_path):
    full = tmp_path / "full"
    shutil.copytree(run, full)
    (full / "monitor").mkdir()
    (full / "monitor/monitor.json").write_text(json.dumps({"predictions": 900, "windows": 6, "error_rate": 0.0, "mean_accuracy": 0.8,
                                                           "alerts": {"fired": 3, "sent": 2}, "online": {"adwin": {"detections": 4}}}))
    notice = {"commonLabels": {"alertname": "ValidationFailed"}, "alerts": [{"labels": {"alertname": "ValidationFailed"}}]}
    (full / "monitor/alerts.jsonl").write_text(json.dumps(notice) + "\n" + json.dumps(notice) + "\n")
    (full / "continual").mkdir()
    (full / "continual/continual.json").write_text(json.dumps({"days": ["2013-01-15", "2013-01-18"], "chosen": "daily (stateless)",
                                                               "retrain_days": [1, 2], "released": 1, "promoted": 1,
                                                               "champion_after": 2, "policies": [{"policy": "never", "retrains": 0}]}))
    (full / "train/selection.json").write_text(json.dumps({"params": {"C": 0.5}}))
    c = card_from_run(full, n_boot=0)
    assert c.missing == ["not available: register/mlflow_entry.json", "not available: metrics.json"]
    assert "900 test flights replayed" in c.monitoring[0] and "adwin: 4 detection(s)" in c.monitoring[1]
    assert c.monitoring[2]["table"] == [{"alert": "ValidationFailed", "notices sent": "2"}]
    assert "the champion is now v2" in c.continual[0]
    assert {r["fact"]: r["value"] for r in c.details[0]["table"]}["parameters"] == "C=0.5"


def test_fairness_numbers_equal_a_hand_count_and_the_gap_has_an_interval():
    rng = np.random.default_rng(3)
    n = 2000
    f = pd.DataFrame({"origin": rng.choice(["EWR", "JFK"], n), "carrier": rng.choice(["AA", "B6", "ZZ"], n, p=[0.5, 0.47, 0.03])})
    f["is_late"] = rng.random(n) < 0.3
    f["score"] = np.clip(rng.random(n) * 0.6 + np.where(f["is_late"] & (f["origin"] == "EWR"), 0.4, 0.0), 0, 1)
    reps = flight_fairness(f, threshold=0.5, n_boot=100, min_rows=100, seed=0)
    rep = reps["origin"].set_index(["metric", "group"])
    for g in ("EWR", "JFK"):
        s = f[f["origin"] == g]
        flag = s["score"] >= 0.5
        assert rep.loc[("tpr", g), "value"] == pytest.approx(flag[s["is_late"]].mean())
        assert rep.loc[("fpr", g), "value"] == pytest.approx(flag[~s["is_late"]].mean())
        assert rep.loc[("ppv", g), "value"] == pytest.approx(s["is_late"][flag].mean())
    assert reps["carrier"].attrs["left_out"] == ["ZZ"] and "ZZ" not in set(reps["carrier"]["group"])
    gaps = fairness_gaps(reps).set_index(["by", "rate"])
    tpr = gaps.loc[("origin", "TPR")]
    hand = rep.loc[("tpr", "EWR"), "value"] - rep.loc[("tpr", "JFK"), "value"]
    assert tpr["gap"] == pytest.approx(hand) and tpr["low"] <= tpr["gap"] <= tpr["high"]
    assert tpr["lowest"].startswith("JFK") and tpr["highest"].startswith("EWR")


def test_renderings_escape_and_stay_self_contained(tmp_path):
    evil = ModelCard("m<x>", 1, limitations=["<script>alert(1)</script> & co"],
                     fairness=[{"table": [{"group": "<b>EWR</b>", "TPR": "0.5 | 0.6"}], "columns": ["group", "TPR"]}])
    page = evil.to_html()
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt; &amp; co" in page and "&lt;b&gt;EWR&lt;/b&gt;" in page
    assert not re.search(r'(src|href)="(https?:)?//', page) and "@import" not in page and "<link" not in page and "url(" not in page
    sk, plain = evil.to_markdown(engine="skops"), evil.to_markdown(engine="plain")
    heads = lambda m: [line for line in m.splitlines() if line.startswith("#")]  # noqa: E731
    assert heads(sk) == heads(plain) == ["# Model card: m&lt;x&gt; v1"] + [f"## {h}" for h in SECTIONS]
    assert "0.5 \\| 0.6" in sk and "0.5 \\| 0.6" in plain  # a pipe in a cell does not split the Markdown table
    out = evil.save(tmp_path / "c")
    assert out["markdown"].read_text() == evil.to_markdown() and out["html"].read_text() == page
    assert sorted(p.name for p in (tmp_path / "c").iterdir()) == ["model_card.html", "model_card.md"]  # no temp file left


def test_card_sections_in_the_report(card):
    parts = _card_sections(card.to_dict())
    assert [p["id"] for p in parts] == ["card", "fairness", "checklist"]
    assert 'href="report/model_card.html"' in parts[0]["html"] and "not available: monitor/monitor.json" in parts[0]["html"]
    assert "service-quality groups" in parts[1]["html"] and "TPR [95% CI]" in parts[1]["html"]
    for p in parts:
        assert p["html"].count("<table>") == p["html"].count('<div class="scroll"><table>')
        for head in re.findall(r"<thead><tr>(.*?)</tr></thead>", p["html"]):
            assert head.count("<th>") <= 8  # fits a 1280-px page
    status = card.facts["checklist"]
    assert f"{status['done']} done" in parts[2]["html"]
    with pytest.raises(DataError, match="card lacks"):
        _card_sections({"name": "m", "version": 1})
    with pytest.raises(DataError, match="card must be a dict"):
        _card_sections("x")


def test_bad_run_folders_name_the_file(run, tmp_path):
    with pytest.raises(PipelineError, match="does not exist"):
        card_from_run(tmp_path / "nowhere")
    for rel in ("register/registration.json", "evaluate/checks.json", "evaluate/predictions.parquet"):
        bad = tmp_path / rel.replace("/", "_")
        shutil.copytree(run, bad)
        (bad / rel).unlink()
        with pytest.raises(PipelineError, match=re.escape(f"lacks {rel}")):
            card_from_run(bad)
    bad = tmp_path / "noversion"
    shutil.copytree(run, bad)
    (bad / "register/registration.json").write_text(json.dumps({"name": "flights-late", "version": None}))
    with pytest.raises(DataError, match="has no integer 'version'"):
        card_from_run(bad)
    (bad / "register/registration.json").write_text(json.dumps({"name": "flights-late", "version": 1}))
    (bad / "monitor").mkdir()
    (bad / "monitor/alerts.jsonl").write_text("{not json\n")
    with pytest.raises(DataError, match="alerts.jsonl line 1 is not JSON"):
        card_from_run(bad)


def test_a_single_group_is_named_in_the_card_and_refused_by_flight_fairness(run, tmp_path):
    bad = tmp_path / "onegroup"
    shutil.copytree(run, bad)
    feats = pd.read_parquet(bad / "features/features.parquet")
    feats.assign(origin="EWR").to_parquet(bad / "features/features.parquet")
    card = card_from_run(bad, n_boot=0)  # a run with one origin still gets its card, and the card says why
    assert any("not compared by origin" in str(b) for b in card.fairness)
    assert not any("not compared by carrier" in str(b) for b in card.fairness)
    scored = feats.assign(origin="EWR", score=0.5, is_late=feats.index % 2)
    with pytest.raises(DataError, match=r"fairness by 'origin' .*single group 'EWR'"):
        flight_fairness(scored, by=("origin",))
    with pytest.raises(DataError, match="min_rows must be a positive integer"):
        flight_fairness(feats.assign(score=0.5), min_rows=0)
    with pytest.raises(DataError, match="version must be a positive integer"):
        ModelCard("m", True)


def test_without_skops_the_own_template_renders_the_same_card(monkeypatch):
    import sys

    from mlsys.core import MissingExtraError
    c = ModelCard("m", 2, ethics=[{"items": ["a", "b"]}])
    with_skops = c.to_markdown()
    monkeypatch.setitem(sys.modules, "skops.card", None)  # `from skops.card import Card` now raises ImportError
    assert c.to_markdown() == c.to_markdown(engine="plain")
    assert [x for x in with_skops.splitlines() if x.startswith("#")] == [x for x in c.to_markdown().splitlines() if x.startswith("#")]
    with pytest.raises(MissingExtraError, match="pip install skops"):
        c.to_markdown(engine="skops")


def test_mlsys_card_command(tmp_path, capsys):
    "`mlsys card` writes the card of a run folder; a missing folder or a bad --n-boot exits 2 with a named error."
    from mlsys.cli import main
    run = example_run(tmp_path / "runs" / "r1", n=800, seed=2)
    assert main(["card", "--runs-dir", str(run.parent), "--run-id", "r1", "--n-boot", "100", "--out", str(tmp_path / "c")]) == 0
    assert (tmp_path / "c" / "model_card.md").read_text().strip() and (tmp_path / "c" / "model_card.html").is_file()
    assert main(["card", "--runs-dir", str(tmp_path / "runs"), "--run-id", "nope"]) == 2
    assert "no run folder" in capsys.readouterr().err
    assert main(["card", "--runs-dir", str(run.parent), "--run-id", "r1", "--n-boot", "0"]) == 0  # point estimates only
    assert (run / "card" / "model_card.md").is_file() and not (run / "report" / "model_card.md").exists()  # not the stage's
    base = ["card", "--runs-dir", str(run.parent), "--run-id", "r1"]
    for bad in (base + ["--n-boot", "50"], base[:3] + ["--run-id", ""], base[:3] + ["--run-id", "../r1"],
                ["card", "--runs-dir", " ", "--run-id", "r1"]):
        assert main(bad) == 2, bad  # 1..99 resamples, a run id that is not a plain name, an empty runs folder
    (run / "register" / "registration.json").unlink()
    assert main(base) == 2  # a folder without its products is bad input, not a failed stage
    assert "registration.json" in capsys.readouterr().err


def _write(run, rel, doc):
    (run / rel).write_text(json.dumps(doc))


def _load(run, rel):
    return json.loads((run / rel).read_text())


@pytest.mark.parametrize("rel, change, message", [
    ("register/registration.json", lambda d: [], r"registration.json must hold a JSON object, got list"),
    ("evaluate/checks.json", lambda d: [1], r"checks.json must hold a JSON object, got list"),
    ("evaluate/checks.json", lambda d: {**d, "costs": None}, r"checks.json: 'costs' must be a JSON object, got NoneType"),
    ("evaluate/checks.json", lambda d: {**d, "costs": {"threshold": "abc"}}, r"costs.threshold must be a number in \[0, 1\], got 'abc'"),
    ("evaluate/checks.json", lambda d: {**d, "costs": {"threshold": 1.5}}, r"costs.threshold must be a number in \[0, 1\]"),
    ("evaluate/checks.json", lambda d: {**d, "operating_points": {d["model"]: {"recall": "x"}}}, r"operating_points.logreg must be an object"),
    ("evaluate/checks.json", lambda d: {**d, "label_shift": {"z": 1}}, r"label_shift must hold numeric"),
    ("evaluate/checks.json", lambda d: {**d, "comparison": [{"baseline": "zero_rule"}]}, r"'comparison' must be a list of objects"),
    ("evaluate/checks.json", lambda d: {k: v for k, v in d.items() if k != "rows"}, r"'rows' must be an integer count"),
    ("register/registration.json", lambda d: {**d, "promotion": "yes"}, r"registration.json: 'promotion' must be a JSON object"),
    ("train/split.json", lambda d: {k: v for k, v in d.items() if k != "split_date"}, r"split.json must hold 'split_date'"),
    ("train/split.json", lambda d: {**d, "split_date": "soon"}, r"split.json must hold 'split_date', a date"),
    ("evaluate/suite.json", lambda d: {**d, "results": [1]}, r"suite.json: 'results' must be a list of objects"),
])
def test_malformed_json_products_are_named_data_errors(run, tmp_path, rel, change, message):
    "A product that parses as JSON but has the wrong shape is a DataError naming the file, never a raw Python error."
    bad = tmp_path / "bad"
    shutil.copytree(run, bad)
    _write(bad, rel, change(_load(bad, rel)))
    with pytest.raises(DataError, match=message):
        card_from_run(bad, n_boot=0)


def test_malformed_optional_products_are_named_data_errors(run, tmp_path):
    bad = tmp_path / "bad"
    shutil.copytree(run, bad)
    (bad / "monitor").mkdir()
    (bad / "continual").mkdir()
    for rel, doc, message in [("monitor/monitor.json", {"online": {"adwin": 3}}, "each 'online' detector"),
                              ("monitor/monitor.json", {"alerts": None}, "'alerts' must be a JSON object"),
                              ("continual/continual.json", {"days": []}, "'days' must be a non-empty list"),
                              ("continual/continual.json", {"policies": [None]}, "'policies' must be a list of objects"),
                              ("train/selection.json", {"params": [1]}, "'params' must be a JSON object"),
                              ("metrics.json", {"ingest": {"cancelled": "3"}}, "integer counts")]:
        _write(bad, rel, doc)
        with pytest.raises(DataError, match=re.escape(message)):
            card_from_run(bad, n_boot=0)
        (bad / rel).unlink()
    (bad / "monitor/alerts.jsonl").write_text("[1]\n")
    with pytest.raises(DataError, match="alerts.jsonl line 1 must hold a JSON object, got list"):
        card_from_run(bad, n_boot=0)


@pytest.mark.parametrize("engine", ["skops", "plain"])
def test_markdown_escapes_html_in_title_cells_items_and_paragraphs(engine):
    evil = "<script>alert(1)</script>"
    c = ModelCard(evil, 1, details=[{"table": [{"fact": "type", "value": "a & <b>b</b>"}], "columns": ["fact", "value"]}],
                  limitations=[f"para {evil}", {"items": [f"item {evil}"]}])
    md = c.to_markdown(engine=engine)
    assert "<" not in md and ">" not in md
    assert md.startswith("# Model card: &lt;script&gt;alert(1)&lt;/script&gt; v1\n")
    assert "| type | a &amp; &lt;b&gt;b&lt;/b&gt; |" in md
    assert "para &lt;script&gt;" in md and "- item &lt;script&gt;" in md
    assert "&amp;lt;" not in md  # escaped once, whichever engine renders it


@pytest.mark.parametrize("n_boot", [1, 20, 99, -1, True, 100.0, "200", None])
def test_n_boot_is_zero_or_at_least_100(run, n_boot):
    with pytest.raises(ConfigError, match="n_boot must be 0"):
        card_from_run(run, n_boot=n_boot)


def test_n_boot_zero_gives_point_estimates_and_says_so(run, card):
    c = card_from_run(run, n_boot=0)
    text = " ".join(str(b) for b in c.fairness)
    assert "point estimates only: no intervals were computed (n_boot=0)" in text
    assert "95%" not in text and "[95% CI]" not in text
    tables = [b for b in c.fairness if isinstance(b, dict) and "table" in b]
    assert tables and all("[" not in v for t in tables for row in t["table"] for v in row.values())
    # with intervals (n_boot=100 in the fixture) each interval holds its estimate
    for t in (b for b in card.fairness if isinstance(b, dict) and "TPR [95% CI]" in b.get("columns", [])):
        for row in t["table"]:
            for col in ("TPR [95% CI]", "FPR [95% CI]", "precision [95% CI]"):
                m = re.fullmatch(r"([\d.]+) \[([\d.]+), ([\d.]+)\]", row[col])
                if m:
                    v, lo, hi = map(float, m.groups())
                    assert lo <= v <= hi and hi > lo
