"""mlsys.responsible.checklist: a planted proxy (a noisy copy of the attribute) ranks first and an independent column
ranks low and is not flagged; normalized MI equals scikit-learn's mutual information over the attribute's entropy and
Cramér's V equals scipy's; the checklist's statuses follow the numbers it is given (slices, fairness, proxies,
labeling, sources, trade-offs), its renderings carry every item and escape HTML; and bad input is refused with named
mlsys errors."""
import numpy as np
import pandas as pd
import pytest
from badinput import check_named, each, raw_errors
from scipy.stats.contingency import association
from sklearn.metrics import mutual_info_score

from mlsys.core import ConfigError, DataError, SchemaError
from mlsys.evaluation.slices import slice_report
from mlsys.responsible.checklist import (
    Checklist,
    ChecklistItem,
    build_checklist,
    cramers_v,
    proxy_table,
    slices_from_suite,
)
from mlsys.responsible.fairness import group_report


def _frame(seed: int = 0, n: int = 3000) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    a = rng.choice(["F", "M"], n, p=[0.35, 0.65])
    flip = rng.random(n) < 0.15
    return pd.DataFrame({
        "attr": a,
        "copy": np.where(flip, np.where(a == "F", "M", "F"), a),  # the planted proxy
        "weak": np.where(rng.random(n) < 0.3, a, rng.choice(["F", "M"], n)),
        "independent": rng.choice(list("abcde"), n),
        "numeric_proxy": (a == "M") * 0.8 + rng.normal(size=n),
        "noise": rng.normal(size=n),
        "mostly_zero": np.where(rng.random(n) < 0.9, 0, rng.integers(1, 10000, n)),
    })


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_planted_proxy_ranks_first_and_independent_low(seed):
    t = proxy_table(_frame(seed), "attr").set_index("feature")
    assert t["rank"].idxmin() == "copy"
    assert t.loc["copy", "proxy"] and t.loc["numeric_proxy", "proxy"]
    for c in ("independent", "noise"):
        assert not t.loc[c, "proxy"] and t.loc[c, "rank"] > t.loc["weak", "rank"]
        assert t.loc[c, "nmi"] < 0.04 and t.loc[c, "cramers_v"] < 0.1  # the kNN estimator's bias at 3,000 rows: ~0.03


def test_measures_equal_reference():
    df = _frame(3)
    t = proxy_table(df, "attr", ["copy", "independent"]).set_index("feature")
    p = df["attr"].value_counts(normalize=True).to_numpy()
    for c in ("copy", "independent"):
        assert t.loc[c, "nmi"] == pytest.approx(max(mutual_info_score(df[c], df["attr"]), 0) / -(p * np.log(p)).sum(),
                                                abs=1e-9)
        table = pd.crosstab(df[c], df["attr"]).to_numpy()
        assert t.loc[c, "cramers_v"] == pytest.approx(association(table, method="cramer"), abs=1e-9)
    assert cramers_v(df["attr"], df["attr"]) == pytest.approx(1.0)
    assert cramers_v(df["attr"], np.zeros(len(df))) == 0.0


def test_missing_values_are_a_category():
    df = _frame(4)
    df["with_missing"] = np.where(df["attr"] == "F", None, "x")  # missingness itself reveals the attribute
    t = proxy_table(df, "attr", ["with_missing", "noise"]).set_index("feature")
    assert t.loc["with_missing", "cramers_v"] == pytest.approx(1.0) and t.loc["with_missing", "proxy"]


SOURCES = {"src": {"description": "d", "biases": ["b"], "rows": 10}}



@pytest.mark.parametrize("col,fragment", [
    (np.r_[np.inf, np.zeros(299)], "'bad' has 1 infinite"),
    (np.r_[-np.inf, np.arange(299.0)], "'bad' has 1 infinite"),
    (np.full(300, np.nan), "'bad' is missing in all 300 rows"),
    ([f"id{i}" for i in range(300)], "'bad' has 300 levels in 300 rows"),
    (np.arange(300).astype(str), "looks like an identifier"),
])
def test_unusable_features_are_refused_by_name(col, fragment):
    df = _frame(0, 300).assign(bad=col)
    check_named(lambda: proxy_table(df, "attr", ["bad", "independent"]), DataError, fragment)
    check_named(lambda: proxy_table(df, "attr"), DataError, fragment)  # also among the default features


def test_datetime_is_numeric_and_nmi_is_at_most_one():
    rng = np.random.default_rng(3)
    df = _frame(3, 400)
    codes = pd.factorize(df["attr"])[0]
    df = df.assign(when=pd.Timestamp("2024-01-01", tz="UTC") + pd.to_timedelta(rng.permutation(400), unit="h"),
                   near_copy=codes + rng.normal(0, 1e-6, 400))
    t = proxy_table(df, "attr", ["when", "near_copy", "independent"]).set_index("feature")
    assert t.loc["when", "kind"] == "numeric" and t.loc["when", "levels"] <= 10
    assert not t.loc["when", "proxy"]  # unique timestamps unrelated to the attribute are no proxy
    assert t.loc["near_copy", "nmi"] == 1.0 and t.loc["near_copy", "proxy"]
    assert t["nmi"].between(0, 1).all() and t["cramers_v"].between(0, 1).all()

def _slices(weak: bool):
    rng = np.random.default_rng(5)
    n = 4000
    key = rng.choice(["A", "B", "C"], n)
    y = rng.random(n) < 0.3
    noise = np.where((key == "C") & weak, 3.0, 0.5)
    s = 1 / (1 + np.exp(-(y * 2 - 1 + rng.normal(size=n) * noise)))
    return y, s, key, slice_report(y, s, pd.DataFrame({"k": key}), metrics="roc_auc", n_boot=50)


@pytest.mark.parametrize("weak", [True, False])
def test_slice_status_follows_the_worst_gap(weak):
    *_, rep = _slices(weak)
    c = build_checklist("t", SOURCES, {"subjectivity": "low"}, slices=rep)
    item = next(i for i in c.items if i.area == "slices")
    worst = rep["roc_auc_gap"].iloc[1:].min()
    assert item.value == pytest.approx(worst)
    assert item.status == ("attention" if worst < -0.05 else "done") == ("attention" if weak else "done")


def test_fairness_status_follows_the_bound():
    y, s, key, _ = _slices(True)
    rep = group_report(y, s >= 0.5, s, key, n_boot=50)
    dpd = rep.set_index(["metric", "group"]).loc[("demographic_parity_difference", "(all)"), "value"]
    for bound in (dpd / 2, min(1.0, dpd * 2)):
        c = build_checklist("t", SOURCES, {"subjectivity": "low"}, proxies={"k": proxy_table(
            pd.DataFrame({"k": key, "x": key}), "k")}, fairness={"k": rep}, max_difference=bound)
        item = next(i for i in c.items if i.question.startswith("Is the demographic parity"))
        assert item.status == ("attention" if dpd > bound else "done") and item.value == pytest.approx(dpd)


def test_statuses_without_protected_attributes_are_not_applicable():
    c = build_checklist("flights", SOURCES, {"subjectivity": "low", "positive_rate": 0.23})
    status = {i.area: i.status for i in c.items}
    assert status["sensitive features"] == status["fairness"] == "not applicable"
    assert status["slices"] == status["trade-offs"] == "attention"  # nothing recorded is not "done"
    assert status["data"] == status["labeling"] == "done"
    c2 = build_checklist("t", {"s": {"description": "d"}}, {"subjectivity": "high"}, tradeoffs={"x": {"decision": "y"}})
    assert [i.status for i in c2.items if i.area in ("data", "labeling", "trade-offs")] == ["attention"] * 2 + ["done"]


def test_model_reading_a_proxy_needs_attention():
    t = proxy_table(_frame(6), "attr")
    for feats, status in ((["noise"], "done"), (["copy", "noise"], "attention"), (["attr"], "attention")):
        c = build_checklist("t", SOURCES, {"subjectivity": "low"}, proxies={"attr": t}, model_features=feats)
        assert next(i for i in c.items if i.question.startswith("Does the model read")).status == status


def test_renderings_carry_every_item_and_escape():
    c = build_checklist("<b>x</b> | y", {"a|b": {"description": "<script>alert(1)</script>", "biases": "z"}},
                        {"subjectivity": "low"})
    md, page = c.to_markdown(), c.to_html()
    assert md.count("\n| ") == len(c.items) + 1  # header row and one row per item
    assert "a\\|b" in md and "<script>" not in page and "&lt;script&gt;" in page
    assert page.count("<tr class=") == len(c.items)
    assert sum(c.counts().values()) == len(c.items) == len(c.to_frame())


def test_slices_from_a_suite_json_file(tmp_path):
    from sklearn.linear_model import LogisticRegression

    from mlsys.core import save_json
    from mlsys.evaluation.slices import SliceTest
    rng = np.random.default_rng(8)
    X = pd.DataFrame({"x": rng.normal(size=2000), "carrier": rng.choice(["AA", "EV", "UA"], 2000)})
    y = rng.random(2000) < 1 / (1 + np.exp(-2 * X["x"]))
    model = LogisticRegression().fit(X[["x"]], y)
    res = SliceTest("slices", ["carrier"], metric="roc_auc", max_gap=0.1, min_size=100, n_boot=20, features=["x"]).run(model, X, y)
    path = save_json({"model": "m", "results": [res.to_dict()]}, tmp_path / "suite.json")
    table = slices_from_suite(path)
    assert list(table["slice"]) == ["(all)", *sorted(table["slice"].iloc[1:], key=lambda k: -int((X["carrier"] == k).sum()))]
    c = build_checklist("t", SOURCES, {"subjectivity": "low"}, slices=table)
    item = next(i for i in c.items if i.area == "slices")
    assert item.value == pytest.approx(table["roc_auc_gap"].iloc[1:].min())
    check_named(lambda: slices_from_suite(tmp_path / "absent.json"), DataError, "absent.json")
    check_named(lambda: build_checklist("t", SOURCES, {"subjectivity": "low"}, slices=table.iloc[1:]), DataError, "(all)")


@pytest.mark.parametrize("call,error,fragment", [
    (lambda: proxy_table(_frame(), "missing"), SchemaError, "missing"),
    (lambda: proxy_table(_frame().assign(attr="F"), "attr"), DataError, "single group"),
    (lambda: proxy_table(_frame().assign(attr=None), "attr"), DataError, "missing values"),
    (lambda: proxy_table(_frame(), "attr", []), ConfigError, "non-empty"),
    (lambda: proxy_table(_frame(), "attr", mi_threshold=0), ConfigError, "mi_threshold"),
    (lambda: proxy_table(pd.DataFrame(), "attr"), DataError, "non-empty DataFrame"),
    (lambda: build_checklist("", SOURCES, {"subjectivity": "low"}), ConfigError, "title"),
    (lambda: build_checklist("t", {}, {"subjectivity": "low"}), ConfigError, "data_sources"),
    (lambda: build_checklist("t", SOURCES, {"subjectivity": "unclear"}), ConfigError, "subjectivity"),
    (lambda: build_checklist("t", SOURCES, {"subjectivity": "low"}, slices=pd.DataFrame({"a": [1]})), SchemaError,
     "slices"),
    (lambda: build_checklist("t", SOURCES, {"subjectivity": "low"}, fairness={"k": pd.DataFrame({"metric": []})}),
     SchemaError, "fairness"),
    (lambda: build_checklist("t", SOURCES, {"subjectivity": "low"}, tradeoffs={"x": "y"}), ConfigError, "decision"),
    (lambda: ChecklistItem("a", "q", "unknown", "e"), ConfigError, "status"),
    (lambda: cramers_v([1, 2], [1]), DataError, "same length"),
])
def test_bad_input_is_named(call, error, fragment):
    check_named(call, error, fragment)


def test_no_raw_library_errors():
    df = _frame(7, 300)
    calls = {**each(proxy_table, df=df, protected="attr", features=["copy"]),
             **each(build_checklist, title="t", data_sources=SOURCES, labeling={"subjectivity": "low"})}
    assert raw_errors(calls) == []
    assert isinstance(build_checklist("t", SOURCES, {"subjectivity": "low"}), Checklist)
