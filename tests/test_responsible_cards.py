"""Model cards (mlsys.responsible.cards): a card read from a planted run folder, its explicit gaps, its renderings, the
service-group fairness numbers against a hand count, the report's card sections, and the bad inputs."""
import json
import re
import shutil

import numpy as np
import pandas as pd
import pytest

from mlsys.core import DataError, PipelineError
from mlsys.report.text import _card_sections
from mlsys.responsible.cards import (OPTIONAL, SECTIONS, ModelCard, card_from_run, example_run, fairness_gaps,
                                     flight_fairness)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return example_run(tmp_path_factory.mktemp("runs") / "example", n=1500, seed=1)


@pytest.fixture(scope="module")
def card(run):
    return card_from_run(run, n_boot=20)


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
    assert heads(sk) == heads(plain) == ["# Model card: m<x> v1"] + [f"## {h}" for h in SECTIONS]
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
    assert main(["card", "--runs-dir", str(run.parent), "--run-id", "r1", "--n-boot", "20", "--out", str(tmp_path / "c")]) == 0
    assert (tmp_path / "c" / "model_card.md").read_text().strip() and (tmp_path / "c" / "model_card.html").is_file()
    assert main(["card", "--runs-dir", str(tmp_path / "runs"), "--run-id", "nope"]) == 2
    assert "no run folder" in capsys.readouterr().err
    assert main(["card", "--runs-dir", str(run.parent), "--run-id", "r1", "--n-boot", "0"]) == 2
