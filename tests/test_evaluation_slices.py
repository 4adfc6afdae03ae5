"""mlsys.evaluation.slices: slice metrics equal a group-by brute force (scikit-learn per slice), bootstrap intervals
cover a known proportion at about the nominal rate, a planted weak slice fails SliceTest and is listed first, a planted
Simpson's reversal is flagged and a non-reversal is not, error analysis finds a planted error-prone value, and bad input
is refused with named mlsys errors."""
import subprocess
import sys
import warnings

import numpy as np
import pandas as pd
import pytest
from badinput import JUNK, check_named, each, raw_errors
from sklearn import metrics as skm

from mlsys.core import ConfigError, DataError, SchemaError
from mlsys.evaluation.slices import (
    METRICS,
    MISSING,
    SliceTest,
    bucket,
    distance_bucket,
    error_analysis,
    hour_bucket,
    misclassified,
    plot_slices,
    rowwise,
    simpson_from_counts,
    simpson_reversals,
    simpson_search,
    slice_report,
)
from mlsys.evaluation.suite import BehaviouralSuite, NothingToMeasure

ESTIMATORS = []  # this module defines no estimator


def _sk(metric, y, p, t):
    "The brute-force metric of one slice, with NaN where it is undefined (scikit-learn raises or warns there)."
    flag = p >= t
    if metric in ("roc_auc", "pr_auc") and (y.all() or not y.any()):
        return np.nan if metric == "roc_auc" or not y.any() else skm.average_precision_score(y, p)
    if metric == "recall" and not y.any() or metric == "precision" and not flag.any():
        return np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {"pr_auc": lambda: skm.average_precision_score(y, p), "roc_auc": lambda: skm.roc_auc_score(y, p),
                "accuracy": lambda: skm.accuracy_score(y, flag), "error_rate": lambda: 1 - skm.accuracy_score(y, flag),
                "recall": lambda: skm.recall_score(y, flag), "precision": lambda: skm.precision_score(y, flag),
                "brier": lambda: skm.brier_score_loss(y, p, pos_label=1),
                "log_loss": lambda: skm.log_loss(y, p, labels=[0, 1])}[metric]()


def test_slice_metrics_equal_groupby_brute_force():
    rng = np.random.default_rng(0)
    metrics = list(METRICS)
    for case in range(80):
        n = int(rng.integers(1, 120))
        y = rng.random(n) < rng.uniform(0, 1)
        p = rng.random(n)
        if case % 3 == 0:
            p = np.round(p, 1)  # many ties
        if case % 5 == 0:
            p = p.astype(np.float32).astype(float)
        if case % 7 == 0:
            p[: n // 2] = 0.5  # ties at the threshold
        keys = rng.choice(np.array(["a", "b", "é", "", None], dtype=object), n)  # non-ASCII, empty and missing keys
        t = float(rng.choice([0.3, 0.5, 0.7]))
        rep = slice_report(y, p, {"k": keys}, metrics=metrics, threshold=t, min_size=1, n_boot=0)
        body = rep[rep["slicing"] == "k"].set_index("slice")
        brute = pd.Series(keys).fillna(MISSING)
        assert set(body.index) == set(brute.unique())
        assert body["rows"].sum() == n
        for k in brute.unique():
            idx = (brute == k).to_numpy()
            row = body.loc[k]
            assert row["rows"] == idx.sum() and row["positives"] == y[idx].sum()
            assert row["status"] == ("one class" if y[idx].all() or not y[idx].any() else "ok")
            for m in metrics:
                np.testing.assert_allclose(row[m], _sk(m, y[idx], p[idx], t), atol=1e-10, equal_nan=True,
                                           err_msg=f"case {case} slice {k!r} metric {m}")
        for m in metrics:  # the (all) row and the gaps
            np.testing.assert_allclose(rep[m].iloc[0], _sk(m, y, p, t), atol=1e-10, equal_nan=True)
            np.testing.assert_allclose(body[f"{m}_gap"], body[m] - rep[m].iloc[0], equal_nan=True)


def test_missing_keys_refused_on_request():
    y, p = np.array([0, 1, 0, 1]), np.array([0.1, 0.9, 0.2, 0.8])
    check_named(lambda: slice_report(y, p, {"k": ["a", None, "a", "b"]}, min_size=1, missing="refuse"), DataError, "'k'")


def test_categorical_unused_categories_are_not_slices():
    y, p = np.array([0, 1, 0, 1]), np.array([0.1, 0.9, 0.2, 0.8])
    keys = pd.Categorical(["a", "a", "b", "b"], categories=["a", "b", "never"])
    rep = slice_report(y, p, {"k": keys}, min_size=1, n_boot=0)
    assert set(rep["slice"]) == {"(all)", "a", "b"}


def test_bootstrap_interval_covers_a_known_proportion_at_the_nominal_rate():
    truth, n, seeds = 0.3, 300, 200
    covered = 0
    for seed in range(seeds):
        y = np.random.default_rng(10_000 + seed).random(n) < truth
        rep = slice_report(y, np.ones(n), {"all": np.zeros(n)}, metrics="accuracy", min_size=1, n_boot=200,
                           confidence=0.95, seed=seed)  # flag everything: accuracy is the positive rate
        lo, hi = rep["accuracy_low"].iloc[1], rep["accuracy_high"].iloc[1]
        covered += lo <= truth <= hi
    assert 0.90 <= covered / seeds <= 0.99, covered / seeds


def test_bootstrap_is_reproducible_and_independent_of_other_slicings():
    rng = np.random.default_rng(1)
    y, p, k = rng.random(400) < 0.3, rng.random(400), rng.choice(["x", "y"], 400)
    a = slice_report(y, p, {"k": k}, metrics=["pr_auc", "recall"], min_size=1, seed=3)
    b = slice_report(y, p, {"k": k}, metrics=["pr_auc", "recall"], min_size=1, seed=3)
    pd.testing.assert_frame_equal(a, b)
    c = slice_report(y, p, {"k": k}, metrics=["pr_auc", "recall"], min_size=1, seed=4)
    assert not np.allclose(a["pr_auc_low"], c["pr_auc_low"])
    assert (a["pr_auc_low"] < a["pr_auc_high"]).all()


def test_too_small_slices_are_counted_not_scored():
    rng = np.random.default_rng(2)
    y, p = rng.random(300) < 0.4, rng.random(300)
    k = np.where(np.arange(300) < 20, "tiny", "big")
    rep = slice_report(y, p, {"k": k}, min_size=50).set_index("slice")
    assert rep.loc["tiny", "status"] == "too small" and rep.loc["tiny", "rows"] == 20
    assert np.isnan(rep.loc["tiny", "pr_auc"]) and np.isfinite(rep.loc["big", "pr_auc"])


def test_slicings_columns_functions_rowwise_and_buckets_agree():
    rng = np.random.default_rng(3)
    df = pd.DataFrame({"hour": rng.integers(0, 24, 500), "miles": rng.uniform(0, 3000, 500)})
    y, p = rng.random(500) < 0.3, rng.random(500)
    by_fn = slice_report(y, p, {"h": lambda d: hour_bucket(d["hour"])}, df, min_size=1, n_boot=0)
    by_row = slice_report(y, p, {"h": rowwise(lambda r: hour_bucket([r["hour"]]).iloc[0])}, df, min_size=1, n_boot=0)
    by_arr = slice_report(y, p, {"h": hour_bucket(df["hour"]).to_numpy()}, None, min_size=1, n_boot=0)
    for other in (by_row, by_arr):
        pd.testing.assert_frame_equal(by_fn.astype({"slice": str}), other.astype({"slice": str}))
    assert distance_bucket([0, 499.9, 500, 2500]).tolist() == ["<500", "<500", "500-999", ">=2500"]
    assert bucket([1, 5], [0, 2, 10]).tolist() == ["0-2", "2-10"]


class Scorer:
    "A fixed scoring rule over a frame, standing in for a fitted model (informative except where planted)."
    feature_names_in_ = np.array(["x", "carrier"], dtype=object)

    def __init__(self, weak=None):
        self.weak = weak

    def predict_proba(self, X):
        x = X["x"].to_numpy()
        p = 1 / (1 + np.exp(-2 * x))
        if self.weak is not None:
            bad = (X["carrier"] == self.weak).to_numpy()
            p[bad] = np.random.default_rng(0).random(bad.sum())
        return np.c_[1 - p, p]


def _carriers(n=6000, seed=0):
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({"x": rng.normal(size=n), "carrier": rng.choice(["AA", "B6", "DL", "UA", "WN"], n),
                      "month": rng.integers(1, 3, n)})
    y = (rng.random(n) < 1 / (1 + np.exp(-2 * X["x"].to_numpy()))).astype(int)
    return X, y


def test_slice_test_finds_a_planted_weak_slice_and_lists_it_first():
    X, y = _carriers()
    test = SliceTest("auc by carrier", ["carrier", "month"], "roc_auc", max_gap=0.05, min_size=200)
    good = test.run(Scorer(), X, y)
    assert good.passed and good.examples.empty, good.summary
    bad = test.run(Scorer(weak="DL"), X, y)
    assert not bad.passed
    assert tuple(bad.examples.iloc[0][["slicing", "slice"]]) == ("carrier", "DL"), bad.examples
    assert "DL" in bad.summary
    floor = SliceTest("auc floor", "carrier", "roc_auc", min_value=0.7, min_size=200).run(Scorer(weak="DL"), X, y)
    assert not floor.passed and floor.examples["slice"].tolist() == ["DL"]
    res = BehaviouralSuite([test]).run(Scorer(weak="DL"), X, y)
    assert not res.passed and '"DL"' in res.to_json()


def test_slice_test_ci_spares_a_small_noisy_slice():
    rng = np.random.default_rng(5)
    n = 4000
    X = pd.DataFrame({"x": rng.normal(size=n), "carrier": np.where(np.arange(n) < 150, "small", "big")})
    y = (rng.random(n) < 1 / (1 + np.exp(-2 * X["x"].to_numpy()))).astype(int)
    X.loc[:149, "x"] += rng.normal(0, 1.3, 150)  # the small slice is scored from a noisy feature: a lower AUC, a wide interval
    ci = SliceTest("ci", "carrier", "roc_auc", max_gap=0.1, min_size=100).run(Scorer(), X, y)
    point = SliceTest("point", "carrier", "roc_auc", max_gap=0.1, min_size=100, use_ci=False).run(Scorer(), X, y)
    small = ci.details.set_index("slice").loc["small"]
    assert small["roc_auc"] < ci.extra["overall"] - 0.1 < small["roc_auc_high"]
    assert ci.passed and not point.passed


def test_slice_test_lower_is_better_and_nothing_checked_fails():
    X, y = _carriers(2000)
    r = SliceTest("brier", "carrier", "brier", max_value=0.5, min_size=100).run(Scorer(), X, y)
    assert r.passed
    tight = SliceTest("brier tight", "carrier", "brier", max_value=0.01, min_size=100)
    r = tight.run(Scorer(), X, y)
    assert not r.passed and len(r.examples) == 5
    none = SliceTest("huge", "carrier", "roc_auc", max_gap=0.1, min_size=10_000)
    check_named(lambda: none.run(Scorer(), X, y), NothingToMeasure, "test 'huge': no slice")
    check_named(lambda: none.run(Scorer(), X, y), DataError, "nothing was checked")  # standalone it is a DataError
    one_class = SliceTest("one class", "carrier", "roc_auc", max_gap=0.1, min_size=100)
    check_named(lambda: one_class.run(Scorer(), X, np.ones(len(X), int)), NothingToMeasure, "5 single-class")
    res = BehaviouralSuite([none, tight]).run(Scorer(), X, y)
    assert [t.status for t in res.results] == ["n/a", "FAIL"] and not res.results[0].measured


def test_a_series_key_is_aligned_on_the_data_index_not_by_position():
    rng = np.random.default_rng(3)
    n = 300
    d = pd.DataFrame({"g": rng.choice(list("abc"), n), "x": rng.random(n)}, index=rng.permutation(n) * 2 + 7)
    p = rng.random(n)
    y = rng.random(n) < np.where(d["g"] == "a", 0.8, 0.2)
    ref = slice_report(y, p, "g", d, metrics=["pr_auc", "recall"], min_size=1, n_boot=0)
    for key in [d["g"].sort_values(), d["g"].sample(frac=1, random_state=0), lambda df: df["g"].sort_values()]:
        rep = slice_report(y, p, {"g": key}, d, metrics=["pr_auc", "recall"], min_size=1, n_boot=0)
        pd.testing.assert_frame_equal(rep, ref)
    for other in [d["g"].reset_index(drop=True), d["g"].iloc[:-1], d["g"].rename(index=lambda i: i + 1)]:
        check_named(lambda other=other: slice_report(y, p, {"shifted": other}, d, min_size=1, n_boot=0), DataError,
                    "slicing 'shifted'")
    dup = d.set_axis([0] * n)
    check_named(lambda: slice_report(y, p, {"dup": dup["g"].sample(frac=1, random_state=0).set_axis(np.arange(n))}, dup,
                                     min_size=1, n_boot=0), DataError, "slicing 'dup'")
    pd.testing.assert_frame_equal(slice_report(y, p, {"g": dup["g"]}, dup, metrics=["pr_auc", "recall"], min_size=1, n_boot=0), ref)
    # the same in a SliceTest, whose X is the data
    X = d.assign(x=p)
    t = SliceTest("g", {"g": lambda df: df["g"].sort_values()}, "pr_auc", min_value=0.0, min_size=1, n_boot=20)
    u = SliceTest("g", "g", "pr_auc", min_value=0.0, min_size=1, n_boot=20)
    pd.testing.assert_frame_equal(t.run(Identity(), X, y).details, u.run(Identity(), X, y).details)


class Identity:
    "A binary model whose positive-class probability is the column x."

    def predict_proba(self, X):
        return np.c_[1 - X["x"].to_numpy(), X["x"].to_numpy()]


def test_simpson_where_must_be_boolean_and_missing_counts_as_not_counted():
    d = _confounded(2000, 4)
    rng = np.random.default_rng(1)
    d["w"] = rng.random(len(d)) < 0.6
    wn = pd.array(d["w"], dtype="boolean")
    wn[rng.random(len(d)) < 0.2] = pd.NA
    d["wn"] = wn
    d["wf"] = d["wn"].fillna(False).astype(bool)
    d["s"], d["i"] = np.where(d["w"], "yes", "no"), d["w"].astype(int)
    na = simpson_reversals(d, "ok", "stratum", group="arm", where=["wn", "wn"])
    false = simpson_reversals(d, "ok", "stratum", group="arm", where=["wf", "wf"])
    pd.testing.assert_frame_equal(na.table, false.table)
    for col in ("s", "i"):
        check_named(lambda col=col: simpson_reversals(d, "ok", "stratum", group="arm", where=["w", col]), DataError,
                    f"where column {col!r}")


def _confounded(n, seed, reverse=True):
    "Two treatments over two strata; A is better in each stratum but mostly given to the hard one (when reverse)."
    rng = np.random.default_rng(seed)
    hard = rng.random(n) < 0.5
    p_a = np.where(hard, 0.8, 0.2) if reverse else np.full(n, 0.5)
    a = rng.random(n) < p_a
    success_rate = np.where(hard, 0.4, 0.85) + np.where(a, 0.08, 0.0)
    return pd.DataFrame({"stratum": np.where(hard, "hard", "easy"), "arm": np.where(a, "A", "B"),
                         "ok": (rng.random(n) < success_rate).astype(int)})


def test_kidney_stones_are_flagged_and_a_same_direction_table_is_not():
    kidney = pd.DataFrame({"num_a": [81, 192], "den_a": [87, 263], "num_b": [234, 55], "den_b": [270, 80]},
                          index=["small", "large"])
    for rule in ("all", "majority", "adjusted"):
        r = simpson_from_counts(kidney, "A", "B", rule=rule)
        assert r.flagged, rule
        assert r.rate_a == pytest.approx(273 / 350) and r.rate_b == pytest.approx(289 / 350)
    same = kidney.assign(num_a=[85, 240])
    assert not any(simpson_from_counts(same, rule=rule).flagged for rule in ("all", "majority", "adjusted"))


def test_a_slice_only_one_side_occupies_does_not_make_a_reversal():
    counts = pd.DataFrame({"num_a": [90, 80, 10], "den_a": [100, 100, 300], "num_b": [80, 70, 0], "den_b": [100, 100, 0]},
                          index=["s1", "s2", "only a"])  # A better where both are; A's own bad slice drags its total down
    r = simpson_from_counts(counts)
    assert not r.flagged and r.diff == pytest.approx(0.1) and r.eligible == 2
    assert not r.table.loc["only a", "eligible"]
    assert not simpson_from_counts(counts.assign(num_b=[80, 70, 0]), min_diff=0.2).flagged


def test_min_diff_suppresses_a_near_tie():
    counts = pd.DataFrame({"num_a": [81, 192], "den_a": [87, 263], "num_b": [234, 55], "den_b": [270, 80]})
    assert simpson_from_counts(counts, min_diff=0.04).flagged  # |d| = 0.046
    assert not simpson_from_counts(counts, min_diff=0.05).flagged


def test_planted_reversal_flagged_non_reversal_not():
    for seed in range(10):
        planted = simpson_reversals(_confounded(4000, seed), "ok", "stratum", group="arm", a="A", b="B")
        assert planted.flagged and planted.diff < 0 and planted.adjusted_diff > 0, planted.summary
        balanced = simpson_reversals(_confounded(4000, seed, reverse=False), "ok", "stratum", group="arm", a="A", b="B")
        assert not balanced.flagged and balanced.diff > 0, balanced.summary


def test_simpson_counts_equal_brute_force_and_rules_nest():
    rng = np.random.default_rng(7)
    for _case in range(80):
        n = int(rng.integers(5, 200))
        df = pd.DataFrame({"s": rng.choice(["x", "y", "z", None], n), "g": rng.choice(["A", "B"], n),
                           "o": rng.integers(0, 2, n)})
        if df["g"].nunique() < 2:
            continue
        res = {rule: simpson_reversals(df, "o", "s", group="g", a="A", b="B", rule=rule) for rule in ("all", "majority", "adjusted")}
        r = res["all"]
        key = df["s"].fillna(MISSING)
        both = key.isin([k for k in key.unique() if set(df.loc[key == k, "g"]) == {"A", "B"}])  # the slices both occupy
        if both.any():
            assert r.rate_a == pytest.approx(df.loc[both & (df.g == "A"), "o"].mean())
            assert r.rate_b == pytest.approx(df.loc[both & (df.g == "B"), "o"].mean())
        assert r.eligible == key[both].nunique()
        for s, row in r.table.drop("(all)").iterrows():
            part = df[key == s]
            assert row["rows_A"] == (part.g == "A").sum() and row["rows_B"] == (part.g == "B").sum()
        if r.flagged:  # every slice reversing implies a reversing majority and a reversed standardized difference
            assert res["majority"].flagged and res["adjusted"].flagged


def test_two_models_on_the_same_rows_cannot_reverse_a_plain_mean():
    rng = np.random.default_rng(8)
    for _ in range(80):
        n = int(rng.integers(10, 300))
        df = pd.DataFrame({"s": rng.choice(list("abc"), n), "ca": rng.integers(0, 2, n), "cb": rng.integers(0, 2, n)})
        r = simpson_reversals(df, ("ca", "cb"), "s", rule="all")
        assert not r.flagged
        assert r.adjusted_diff == pytest.approx(r.diff)  # same rows on both sides: standardizing changes nothing


def test_simpson_search_finds_the_planted_pair():
    df = _confounded(6000, 0)
    rng = np.random.default_rng(1)
    hard = rng.random(3000) < 0.5  # a third arm, worse in each stratum and over all: no reversal against A or B
    extra = pd.DataFrame({"stratum": np.where(hard, "hard", "easy"), "arm": "C",
                          "ok": (rng.random(3000) < np.where(hard, 0.1, 0.5)).astype(int)})
    found = simpson_search(pd.concat([df, extra], ignore_index=True), "ok", "arm", ["stratum"])
    assert found.iloc[0][["a", "b", "flagged"]].tolist() == ["A", "B", True]
    assert found["flagged"].sum() == 1


def test_error_analysis_finds_the_planted_value():
    rng = np.random.default_rng(9)
    n = 5000
    df = pd.DataFrame({"origin": rng.choice(["EWR", "JFK", "LGA"], n), "dist": rng.uniform(100, 2500, n)})
    y = rng.random(n) < 0.3
    p = np.where(y, 0.8, 0.2)
    flip = (df["origin"] == "LGA").to_numpy() & (rng.random(n) < 0.4)
    p[flip] = 1 - p[flip]
    ea = error_analysis(y, p, df, ["origin", "dist"], min_rows=50)
    assert (ea.iloc[0]["feature"], ea.iloc[0]["value"]) == ("origin", "LGA")
    err = (p >= 0.5) != y
    lga = (df["origin"] == "LGA").to_numpy()
    assert ea.iloc[0]["lift"] == pytest.approx(err[lga].mean() / err.mean())
    assert ea.loc[ea.feature == "dist", "rows"].sum() == n and ea.loc[ea.feature == "dist"].shape[0] == 5
    wrong = misclassified(y, p, df, kind="fn")
    assert len(wrong) == (y & (p < 0.5)).sum() and set(wrong["error"]) == {"false negative"}


def test_plot_slices_draws_one_panel_per_slicing():
    X, y = _carriers(1000)
    rep = slice_report(y, Scorer().predict_proba(X)[:, 1], ["carrier", "month"], X, min_size=50)
    fig = plot_slices(rep)
    assert len(fig.axes) == 2 and "roc" not in fig.axes[0].get_xlabel()
    check_named(lambda: plot_slices(rep, slicings=["nope"]), ConfigError, "nope")


Y, P = np.array([0, 1, 0, 1]), np.array([0.1, 0.9, 0.4, 0.6])
D = pd.DataFrame({"carrier": ["AA", "AA", "B6", "B6"], "x": [0.0, 1.0, 2.0, 3.0]})
COUNTS = pd.DataFrame({"num_a": [1, 2], "den_a": [2, 4], "num_b": [1, 1], "den_b": [3, 3]})

CASES = [
    ("unknown slice column", lambda: slice_report(Y, P, ["carrier", "no_such"], D), SchemaError, "no_such"),
    ("zero-row slice", lambda: slice_report(Y, P, {"long haul": D["x"] > 10}, D), DataError, "'long haul' (a boolean mask) selects zero rows"),
    ("probabilities above 1", lambda: slice_report(Y, [0.1, 1.2, 0.3, 0.4], "carrier", D), DataError, "probabilities in [0, 1]"),
    ("negative probabilities", lambda: slice_report(Y, [-0.1, 0.2, 0.3, 0.4], "carrier", D), DataError, "from -0.1"),
    ("NaN scores", lambda: slice_report(Y, [np.nan, 0.2, 0.3, 0.4], "carrier", D), DataError, "scores has 1 missing"),
    ("min_size 0", lambda: slice_report(Y, P, "carrier", D, min_size=0), ConfigError, "min_size"),
    ("scores length", lambda: slice_report(Y, P[:3], "carrier", D), DataError, "scores has 3 values"),
    ("data length", lambda: slice_report(Y, P, "carrier", D.iloc[:3]), DataError, "data has 3 rows"),
    ("slicing length", lambda: slice_report(Y, P, {"k": [1, 2]}), DataError, "slicing 'k' gives 2 keys for 4 rows"),
    ("labels not binary", lambda: slice_report([0, 1, 2, 1], P, "carrier", D), DataError, "only 0/1"),
    ("labels missing", lambda: slice_report([0, 1, np.nan, 1], P, "carrier", D), DataError, "y has 1 missing"),
    ("unknown metric", lambda: slice_report(Y, P, "carrier", D, metrics="f1"), ConfigError, "f1"),
    ("failing slicing", lambda: slice_report(Y, P, {"bad": lambda d: d["zzz"]}, D), DataError, "slicing 'bad' failed"),
    ("column slicing without data", lambda: slice_report(Y, P, "carrier"), ConfigError, "data="),
    ("n_boot negative", lambda: slice_report(Y, P, "carrier", D, n_boot=-1), ConfigError, "n_boot"),
    ("confidence 1", lambda: slice_report(Y, P, "carrier", D, confidence=1.0), ConfigError, "confidence"),
    ("hour 24", lambda: hour_bucket([1, 24]), DataError, "hour has 1 values outside [0, 24)"),
    ("bucket strings", lambda: bucket(["a"], [0, 1]), DataError, "must be numbers"),
    ("bucket edges", lambda: bucket([1], [2, 1]), ConfigError, "increasing"),
    ("SliceTest unknown column", lambda: SliceTest("t", "nope", max_gap=0.1).run(Scorer(), D, Y), SchemaError, "'nope'"),
    ("SliceTest no criterion", lambda: SliceTest("t", "carrier"), ConfigError, "give min_value"),
    ("SliceTest floor on brier", lambda: SliceTest("t", "carrier", "brier", min_value=0.1), ConfigError, "max_value"),
    ("SliceTest min_size 0", lambda: SliceTest("t", "carrier", max_gap=0.1, min_size=0), ConfigError, "min_size"),
    ("SliceTest no labels", lambda: SliceTest("t", "carrier", max_gap=0.1).run(Scorer(), D), DataError, "needs the labels"),
    ("SliceTest y length", lambda: SliceTest("t", "carrier", max_gap=0.1).run(Scorer(), D, Y[:3]), DataError, "one row per label (3)"),
    ("counts lacks column", lambda: simpson_from_counts(COUNTS.drop(columns="den_b")), SchemaError, "den_b"),
    ("counts num > den", lambda: simpson_from_counts(COUNTS.assign(num_a=[5, 2])), DataError, "num_a > den_a"),
    ("counts negative", lambda: simpson_from_counts(COUNTS.assign(den_b=[-1, 3])), DataError, "non-negative"),
    ("simpson rule", lambda: simpson_from_counts(COUNTS, rule="most"), ConfigError, "rule"),
    ("simpson min_diff", lambda: simpson_from_counts(COUNTS, min_diff=-0.1), ConfigError, "min_diff"),
    ("simpson unknown group value", lambda: simpson_reversals(D.assign(o=Y), "o", "carrier", group="carrier", a="AA", b="ZZ"), DataError, "'ZZ'"),
    ("simpson outcome not 0/1", lambda: simpson_reversals(D.assign(o=[0, 2, 1, 0]), "o", "x", group="carrier"), DataError, "outcome 'o'"),
    ("simpson unknown by", lambda: simpson_reversals(D.assign(o=Y), "o", "nope", group="carrier"), SchemaError, "nope"),
    ("simpson no sides", lambda: simpson_reversals(D.assign(o=Y), "o", "x"), ConfigError, "group="),
    ("error_analysis unknown feature", lambda: error_analysis(Y, P, D, ["nope"]), SchemaError, "nope"),
    ("error_analysis no errors", lambda: error_analysis(Y, P, D, ["carrier"]), DataError, "no all errors"),
    ("misclassified kind", lambda: misclassified(Y, P, D, kind="tp"), ConfigError, "kind"),
    ("empty y", lambda: slice_report([], [], {"k": []}), DataError, "y is empty"),
]


@pytest.mark.parametrize("name,call,error,fragment", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_named(name, call, error, fragment):
    check_named(call, error, fragment)


def test_no_raw_library_errors_on_junk():
    calls = {**each(slice_report, y=Y, scores=P, slices="carrier", data=D, metrics="pr_auc", threshold=0.5, min_size=1,
                    n_boot=10, confidence=0.9, seed=0, missing="group"),
             **each(simpson_from_counts, counts=COUNTS, a="a", b="b", rule="all", min_size=1, min_diff=0.0),
             **each(simpson_reversals, data=D.assign(o=Y), outcome="o", by="x", group="carrier", a="AA", b="B6"),
             **each(error_analysis, y=Y, scores=[0.9, 0.1, 0.4, 0.6], data=D, features=["carrier"], threshold=0.5,
                    bins=2, min_rows=1),
             **each(lambda **k: SliceTest("t", **k), slices="carrier", metric="roc_auc", max_gap=0.1, min_size=1, n_boot=20),
             **each(hour_bucket, hour=[1, 2]), **each(distance_bucket, miles=[1.0])}
    assert raw_errors(calls, JUNK) == []


def test_import_is_light():
    code = "import sys, mlsys.evaluation.slices; print(sorted(m for m in ('torch', 'matplotlib', 'sliceline') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
