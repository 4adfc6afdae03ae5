"""Tests of mlsys.labeling.lineage: kappas vs references, resolution rules, the label store's lineage."""
import json

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import cohen_kappa_score

from mlsys.core import ConfigError, DataError, IntegrityError
from mlsys.datasets import load_sms_spam
from mlsys.labeling.lineage import (
    LabelStore,
    accuracy_weights,
    annotator_accuracy,
    cohen_kappa,
    fleiss_kappa,
    pairwise_kappa,
    rating_table,
    resolve_into,
    resolve_labels,
    simulate_annotators,
)

# Fleiss (1971) worked example as reprinted in textbooks: 10 subjects, 14 raters, 5 categories
FLEISS_1971 = np.array([[0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0], [2, 2, 8, 1, 1],
                        [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2], [6, 5, 2, 1, 0], [0, 2, 2, 3, 7]])


@pytest.fixture(scope="module")
def gold():
    sms = load_sms_spam(sample=1500, random_state=3)
    return pd.Series(sms["label"].astype(str).to_numpy(), index=[f"m{i}" for i in range(len(sms))])


@pytest.fixture(scope="module")
def ann(gold):
    noise = {"a": 0.05, "b": 0.1, "c": 0.25, "d": {"spam": 0.5, "ham": 0.0}, "e": 0.02}
    return simulate_annotators(gold, noise, coverage={"e": 0.3}, classes=["ham", "spam"], random_state=1)


def test_simulated_error_rates(gold, ann):
    for name, rate in [("a", 0.05), ("b", 0.1), ("c", 0.25)]:
        assert (ann[name] != gold).mean() == pytest.approx(rate, abs=0.025)
    assert (ann.loc[gold == "ham", "d"] == "ham").all()
    assert ann["e"].notna().mean() == pytest.approx(0.3, abs=0.04)


def test_cohen_kappa_equals_sklearn(ann):
    full = ann.drop(columns="e")
    k = pairwise_kappa(full)
    for x in full.columns:
        for y in full.columns:
            if x != y:
                assert k.loc[x, y] == pytest.approx(cohen_kappa_score(full[x].astype(str), full[y].astype(str)), abs=1e-12)
    # multi-class with a category only one rater uses
    a, b = ["x", "y", "z", "x", "y", "x"], ["x", "y", "y", "x", "w", "y"]
    assert cohen_kappa(a, b) == pytest.approx(cohen_kappa_score(a, b), abs=1e-12)
    # missing labels are skipped pairwise
    both = ann[["a", "e"]].dropna()
    assert cohen_kappa(ann["a"], ann["e"]) == pytest.approx(cohen_kappa_score(both["a"], both["e"]), abs=1e-12)


def test_fleiss_kappa_textbook_example():
    t = FLEISS_1971
    n = t.sum(axis=1)[0]
    p_bar = (((t**2).sum(axis=1) - n) / (n * (n - 1))).mean()
    p_e = ((t.sum(axis=0) / t.sum()) ** 2).sum()
    assert p_bar == pytest.approx(0.378, abs=5e-4) and p_e == pytest.approx(0.213, abs=5e-4)
    assert fleiss_kappa(t) == pytest.approx(0.210, abs=5e-4)


def test_fleiss_kappa_equals_statsmodels(ann):
    sm = pytest.importorskip("statsmodels.stats.inter_rater")
    table = rating_table(ann.drop(columns="e"), ["ham", "spam"])
    assert fleiss_kappa(table) == pytest.approx(sm.fleiss_kappa(table.to_numpy(), method="fleiss"), abs=1e-12)
    assert fleiss_kappa(FLEISS_1971) == pytest.approx(sm.fleiss_kappa(FLEISS_1971, method="fleiss"), abs=1e-12)


def test_fleiss_two_raters_is_close_to_scott_pi(ann):
    # with two raters Fleiss' kappa is Scott's pi, which is close to Cohen's kappa when marginals agree
    t = rating_table(ann[["a", "b"]], ["ham", "spam"])
    assert fleiss_kappa(t) == pytest.approx(cohen_kappa(ann["a"], ann["b"]), abs=0.01)


def test_kappa_bad_input(ann):
    with pytest.raises(DataError, match="same number of ratings"):
        fleiss_kappa(rating_table(ann))
    with pytest.raises(DataError, match="at least 2 classes"):
        fleiss_kappa([[3], [3]])
    with pytest.raises(DataError, match="non-negative"):
        fleiss_kappa([[3, -1], [1, 1]])
    with pytest.raises(DataError, match="no item labeled by both"):
        cohen_kappa(["a", None], [None, "b"])


def test_resolution_rules(gold, ann):
    full = ann.drop(columns="e")
    maj = resolve_labels(full, "majority")
    # majority by hand
    votes_spam, n = (full == "spam").sum(axis=1), full.notna().sum(axis=1)
    tie = votes_spam * 2 == n  # four voters can split 2-2
    assert tie.any() and maj.loc[tie, "label"].isna().all()
    exp = np.where(votes_spam * 2 > n, "spam", "ham")[~tie]
    assert (maj.loc[~tie, "label"].to_numpy() == exp).all()
    assert ((maj.loc[~tie, "support"] > 0.5) & (maj.loc[~tie, "support"] <= 1)).all()
    acc = annotator_accuracy(ann, gold.iloc[:300])
    w = accuracy_weights(acc)
    wt = resolve_labels(ann, "weighted", weights=w)
    right = lambda r: (r["label"] == gold).fillna(False).mean()  # unresolved ties count as wrong
    assert right(wt) > right(maj)
    ex = resolve_labels(ann, "expert", expert="e")
    has = ann["e"].notna()
    assert (ex.loc[has, "label"] == ann.loc[has, "e"]).all()
    pd.testing.assert_series_equal(ex.loc[~has, "label"], resolve_labels(ann, "majority").loc[~has, "label"])
    assert set(ex["decided_by"]) == {"expert", "majority"}


def test_majority_ties():
    labels = pd.DataFrame({"a": ["x", "x", None], "b": ["y", "x", None]}, index=["i1", "i2", "i3"])
    r = resolve_labels(labels, "majority")
    assert pd.isna(r.loc["i1", "label"]) and r.loc["i2", "label"] == "x" and pd.isna(r.loc["i3", "label"])
    assert resolve_labels(labels, "majority", ties="first").loc["i1", "label"] == "x"
    assert r.loc["i3", "votes"] == 0


def test_weighted_vote_lets_one_expert_outvote_two():
    labels = pd.DataFrame({"good": ["spam"], "p1": ["ham"], "p2": ["ham"]})
    w = accuracy_weights(pd.Series({"good": 0.99, "p1": 0.6, "p2": 0.6}))
    assert resolve_labels(labels, "weighted", weights=w)["label"].iloc[0] == "spam"
    assert resolve_labels(labels, "majority")["label"].iloc[0] == "ham"


@pytest.mark.parametrize(
    "kwargs,msg",
    [({"rule": "vote"}, "rule must be"), ({"rule": "weighted"}, "needs weights"),
     ({"rule": "weighted", "weights": {"a": 1}}, "weights lack"), ({"rule": "expert", "expert": "zz"}, "expert must name"),
     ({"ties": "coin"}, "ties must be")],
)
def test_resolution_bad_input(ann, kwargs, msg):
    with pytest.raises(ConfigError, match=msg):
        resolve_labels(ann, **kwargs)


def test_simulate_bad_input(gold):
    with pytest.raises(ConfigError, match="must be in"):
        simulate_annotators(gold, {"x": -0.1})
    with pytest.raises(ConfigError, match="coverage"):
        simulate_annotators(gold, {"x": 0.1}, coverage=0)
    with pytest.raises(ConfigError, match="at least one annotator"):
        simulate_annotators(gold, {})


# ---------------------------------------------------------------- the label store


@pytest.fixture
def store(ann, gold):
    s = LabelStore(["ham", "spam"])
    s.add_frame(ann, "annotator", versions={"a": "g1", "b": "g1", "c": "g2", "d": "g1", "e": "g1"})
    resolve_into(s, "majority", version="1", ties="first")
    return s


def test_store_records_every_label_with_its_source(store, ann):
    recs = store.to_frame()
    annot = recs[recs["kind"] == "annotator"]
    assert len(annot) == ann.notna().sum().sum()
    assert set(annot.loc[annot["source"] == "c", "version"]) == {"g2"}
    # each annotator record holds exactly the annotator's label
    a = annot[annot["source"] == "a"].set_index("item_id")["label"]
    assert (a == ann.loc[a.index, "a"]).all()


def test_trace_walks_back_to_the_annotators(store, ann):
    item = ann.index[ann.notna().all(axis=1)][0]
    rid = store.current(item).record_id
    mid = store.add(item, "spam", "model", "lr", "7", parents=[rid], note="trained on v1 labels")
    tr = store.trace(item)
    assert tr["record_id"].tolist()[:2] == [mid, rid]
    assert tr["depth"].tolist() == [0, 1] + [2] * 5
    assert sorted(tr.loc[tr["depth"] == 2, "source"]) == ["a", "b", "c", "d", "e"]
    assert store.current(item).kind == "model" and store.current(item).version == "7"
    assert len(store.history(item)) == 7


def test_affected_by_finds_derived_labels_only(store, ann):
    items_e = set(ann.index[ann["e"].notna()])
    assert set(store.affected_by("e")) == items_e
    assert set(store.affected_by("c", version="g2")) == set(ann.index)
    assert store.affected_by("majority") == sorted(ann.index)
    with pytest.raises(DataError, match="no record comes from source 'zz'"):
        store.affected_by("zz")
    # re-resolving without e removes e from every current lineage
    resolve_into(store, "majority", version="2", exclude=["e"], ties="first")
    assert store.affected_by("e") == []


def test_store_rejects_bad_labels(store, ann):
    item = ann.index[0]
    with pytest.raises(DataError, match="'maybe' from annotator 'x'"):
        store.add(item, "maybe", "annotator", "x")
    with pytest.raises(DataError, match="kind must be"):
        store.add(item, "ham", "oracle", "x")
    with pytest.raises(DataError, match="non-empty"):
        store.add(item, "ham", "annotator", " ")
    with pytest.raises(DataError, match="does not exist"):
        store.add(item, "ham", "rule", "r", parents=[10**9])
    other = store.current(ann.index[1]).record_id
    with pytest.raises(DataError, match="labels item"):
        store.add(item, "ham", "rule", "r", parents=[other])
    with pytest.raises(DataError, match="no labels for item"):
        store.current("unknown")
    with pytest.raises(ConfigError, match="two distinct"):
        LabelStore(["ham"])
    assert store.record(store.add(item, None, "lf", "lf_x")).label is None  # an abstain is a record too


def test_store_save_load_roundtrip_and_tamper(store, tmp_path):
    p = store.save(tmp_path / "s.json")
    back = LabelStore.load(p)
    pd.testing.assert_frame_equal(back.to_frame(), store.to_frame())
    assert back.labels().equals(store.labels())
    data = json.loads(p.read_text())
    data["records"][3]["source"] = "mallory"
    p.write_text(json.dumps(data))
    with pytest.raises(IntegrityError, match="checksum"):
        LabelStore.load(p)
    (tmp_path / "x.json").write_text(json.dumps({"format": "other"}))
    with pytest.raises(DataError, match="not a label store"):
        LabelStore.load(tmp_path / "x.json")
