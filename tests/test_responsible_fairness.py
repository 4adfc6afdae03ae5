"""mlsys.responsible.fairness: point estimates equal fairlearn's (`demographic_parity_difference`,
`equalized_odds_difference`, `equal_opportunity_difference`, `MetricFrame`) in a randomized differential test over
ties, groups of one row, groups with a single label, non-ASCII group names, float32 scores and many groups; an
undefined rate is refused exactly where fairlearn silently counts 0; the stratified bootstrap is seeded, keeps each
group's size and has the binomial spread; mitigation lowers the parity difference on held-out data; Chouldechova's
identity holds; and bad input is refused with named mlsys errors."""
import warnings
from functools import partial

import numpy as np
import pandas as pd
import pytest
from badinput import check_named, each, raw_errors
from sklearn.metrics import precision_score

from mlsys.core import ConfigError, DataError
from mlsys.evaluation.calibration import expected_calibration_error
from mlsys.responsible.fairness import (
    ADULT_CATEGORICAL,
    fairness_metrics,
    group_ece,
    group_rates,
    group_report,
    impossibility_table,
    load_adult,
    mitigate,
    mitigation_table,
    predict_mitigated,
)

fl = pytest.importorskip("fairlearn.metrics")
CASES = {"plain": 12, "many": 4, "tiny": 10, "one_label": 10}  # generated cases per kind (fairlearn is slow)
NAMES = ["Männlich", "女性", "niño", "Ørsted", "a", "b", "ção", "x y"]


def _case(rng: np.random.Generator, kind: str):
    "Labels, predictions, float32 scores and groups of one generated case."
    n_groups = {"many": 25, "tiny": 3}.get(kind, int(rng.integers(2, 6)))
    n = int(rng.integers(n_groups * 2, 300))
    names = NAMES if n_groups <= len(NAMES) else [f"g{i}é" for i in range(n_groups)]
    g = np.asarray(names[:n_groups], dtype=object)[rng.integers(0, n_groups, n)]
    g[: n_groups] = names[:n_groups]  # every group is present
    score = np.round(rng.random(n), 1).astype(np.float32)  # ties, and scores on the bin edges
    y = rng.random(n) < rng.uniform(0.1, 0.9)
    if kind == "tiny":  # a group of one row
        g[0], g[1:] = names[0], np.where(g[1:] == names[0], names[1], g[1:])
    if kind == "one_label":  # a whole group with a single label
        y[g == names[0]] = bool(rng.integers(0, 2))
    p = score >= 0.5
    return y, p, score, g


def _undefined(y, p, g) -> bool:
    "Some group lacks positives, negatives or positive predictions."
    d = pd.DataFrame({"pos": y, "neg": ~y, "sel": p}).groupby(g).sum()
    return bool((d == 0).any(axis=None))


@pytest.mark.parametrize("kind", ["plain", "many", "tiny", "one_label"])
def test_equals_fairlearn(kind):
    rng = np.random.default_rng(["plain", "many", "tiny", "one_label"].index(kind))
    refused = 0
    for _ in range(CASES[kind]):
        y, p, s, g = _case(rng, kind)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # fairlearn's and scikit-learn's warnings on undefined rates
            mf = fl.MetricFrame(metrics={"selection_rate": fl.selection_rate, "tpr": fl.true_positive_rate,
                                         "fpr": fl.false_positive_rate, "ppv": partial(precision_score, zero_division=0)},
                                y_true=y, y_pred=p, sensitive_features=g)
            dpd = fl.demographic_parity_difference(y, p, sensitive_features=g)
            eod = fl.equalized_odds_difference(y, p, sensitive_features=g)
        r = group_rates(y, p, g, undefined="fairlearn")
        np.testing.assert_allclose(r[["selection_rate", "tpr", "fpr", "ppv"]].to_numpy(),
                                   mf.by_group.loc[r.index].to_numpy(float), atol=1e-12)
        if p.any():
            m = fairness_metrics(y, p, g, undefined="fairlearn")
            assert m["demographic_parity_difference"] == pytest.approx(dpd, abs=1e-12)
            assert m["equalized_odds_difference"] == pytest.approx(eod, abs=1e-12)
            assert m["equal_opportunity_difference"] == pytest.approx(mf.difference()["tpr"], abs=1e-12)
            assert m["demographic_parity_ratio"] == pytest.approx(mf.ratio()["selection_rate"], abs=1e-12)
        else:  # fairlearn's ratio is 0 / 0 = NaN; ours refuses
            assert np.isnan(mf.ratio()["selection_rate"])
            check_named(lambda y=y, p=p, g=g: fairness_metrics(y, p, g, undefined="fairlearn"), DataError, "selects no row")
        if _undefined(y, p, g):  # fairlearn counts 0; the default refuses and names the group
            refused += 1
            check_named(lambda y=y, p=p, g=g: fairness_metrics(y, p, g), DataError, "undefined")
        elif p.any():
            assert fairness_metrics(y, p, g) == pytest.approx(fairness_metrics(y, p, g, undefined="fairlearn"))
        ece = group_ece(y, s, g)
        for name in ece.index:
            assert ece[name] == pytest.approx(expected_calibration_error(y[g == name], s[g == name], n_bins=10), abs=1e-9)
    if kind in ("tiny", "one_label"):
        assert refused == CASES[kind]  # every such case has an undefined rate



KEYS = ["x & y", "x", "y & z", "z", "y", "Ørsted & co"]  # keys that collide when joined with " & "


@pytest.mark.parametrize("seed", range(6))
def test_multi_column_groups_equal_fairlearn(seed):
    "A frame of key columns is grouped by its tuples, as fairlearn does: joined strings must not merge groups."
    rng = np.random.default_rng(100 + seed)
    n = int(rng.integers(20, 200))
    g = pd.DataFrame({"a": rng.choice(KEYS, n), "b": rng.choice(KEYS, n)}, index=rng.permutation(n) + 7)
    if seed == 0:  # the reviewer's case: 'x & y' + 'z' and 'x' + 'y & z' print alike
        g.iloc[:4] = [["x & y", "z"], ["x", "y & z"], ["x & y", "z"], ["x", "y & z"]]
        g = g.iloc[:4]
    y = rng.random(len(g)) < 0.5
    p = rng.random(len(g)) < 0.5
    if seed == 0:
        y, p = np.array([1, 0, 0, 1], bool), np.array([1, 1, 1, 0], bool)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mf = fl.MetricFrame(metrics={"selection_rate": fl.selection_rate, "tpr": fl.true_positive_rate,
                                     "fpr": fl.false_positive_rate}, y_true=y, y_pred=p, sensitive_features=g)
        dpd = fl.demographic_parity_difference(y, p, sensitive_features=g)
        eod = fl.equalized_odds_difference(y, p, sensitive_features=g)
    r = group_rates(y, p, g, undefined="fairlearn")
    want = mf.by_group.dropna(how="all")  # fairlearn lists absent combinations as NaN rows
    assert len(r) == len(want) == len(set(map(tuple, g.to_numpy())))
    assert r.index.is_unique
    np.testing.assert_allclose(r[["selection_rate", "tpr", "fpr"]].to_numpy(), want.to_numpy(float), atol=1e-12)
    m = fairness_metrics(y, p, g, undefined="fairlearn")
    assert m["demographic_parity_difference"] == pytest.approx(dpd, abs=1e-12)
    assert m["equalized_odds_difference"] == pytest.approx(eod, abs=1e-12)
    if seed == 0:
        assert dpd == pytest.approx(0.5)


def test_multi_column_groups_keep_key_types_apart():
    "1 and '1' are different keys, as in fairlearn's tuples; the display names stay unique."
    y, p = np.array([1, 0, 0, 1]), np.array([1, 1, 1, 0])
    r = group_rates(y, p, pd.DataFrame({"a": [1, "1", 1, "1"], "b": [0, 0, 0, 0]}), undefined="fairlearn")
    assert len(r) == 2 and r.index.is_unique
    assert sorted(r["selection_rate"]) == [0.5, 1.0]
    check_named(lambda: group_rates(y, p, pd.DataFrame({"a": ["u"] * 4, "b": [0] * 4})), DataError, "single group")
    check_named(lambda: group_rates(y, p, pd.DataFrame({"a": ["u", None, "v", "v"], "b": [0] * 4})), DataError, "missing")
    check_named(lambda: group_rates(y, p, pd.DataFrame({"a": ["u", "v"], "b": [0, 0]})), DataError, "aligned")

def test_omit_leaves_undefined_groups_out_and_says_so():
    y = np.array([1, 0, 1, 0, 0, 0, 1, 1, 0, 1])
    p = np.array([1, 0, 0, 1, 0, 1, 1, 0, 0, 1])
    g = np.array(["a"] * 4 + ["b"] * 2 + ["c"] * 4)  # b has no positives: its TPR is undefined
    rep = group_report(y, p, None, g, n_boot=50, undefined="omit").set_index(["metric", "group"])
    assert np.isnan(rep.loc[("tpr", "b"), "value"]) and "no positive labels" in rep.loc[("tpr", "b"), "note"]
    tpr = group_rates(y, p, g, undefined="omit")["tpr"]
    assert rep.loc[("tpr_difference", "(all)"), "value"] == pytest.approx(tpr.max() - tpr.min())
    assert "1 group(s) left out" in rep.loc[("tpr_difference", "(all)"), "note"]


def test_bootstrap_is_seeded_stratified_and_binomial():
    rng = np.random.default_rng(3)
    n1, n2 = 4000, 1000
    g = np.r_[["a"] * n1, ["b"] * n2]
    y = rng.random(n1 + n2) < 0.3
    p = rng.random(n1 + n2) < np.r_[np.full(n1, 0.4), np.full(n2, 0.2)]
    rep = group_report(y, p, None, g, n_boot=2000, seed=5)
    assert rep.equals(group_report(y, p, None, g, n_boot=2000, seed=5))
    assert not rep.equals(group_report(y, p, None, g, n_boot=2000, seed=6))
    row = rep.set_index(["metric", "group"]).loc[("demographic_parity_difference", "(all)")]
    s1, s2 = p[:n1].mean(), p[n1:].mean()
    sd = np.sqrt(s1 * (1 - s1) / n1 + s2 * (1 - s2) / n2)  # the groups keep their sizes: no group-size noise
    assert (row["high"] - row["low"]) / (2 * 1.96 * sd) == pytest.approx(1.0, abs=0.1)
    assert row["low"] <= row["value"] <= row["high"]


def test_bootstrap_ece_separates_a_miscalibrated_group():
    rng = np.random.default_rng(4)
    s = rng.random(4000).astype(np.float32)
    g = rng.choice(["x", "y"], 4000)
    y = rng.random(4000) < np.where(g == "x", s, s**2)  # x calibrated, y over-confident
    rep = group_report(y, s >= 0.5, s, g, n_boot=200).set_index(["metric", "group"])
    x, yy = rep.loc[("ece", "x")], rep.loc[("ece", "y")]
    assert x["low"] < x["high"] < 0.06 < yy["low"] <= yy["value"] <= yy["high"]


def test_chouldechova_identity_is_exact():
    rng = np.random.default_rng(7)
    y = rng.random(2000) < 0.35
    g = rng.choice(["p", "q", "r"], 2000)
    t = impossibility_table(y, {"m": rng.random(2000) < 0.3 + 0.4 * y}, g)
    np.testing.assert_allclose(t["fpr"], t["fpr_implied"], atol=1e-12)


def _synthetic(rng, n):
    a = rng.random(n) < 0.5
    x = rng.normal(size=(n, 3)) + a[:, None] * 0.8
    y = rng.random(n) < 1 / (1 + np.exp(-(x[:, 0] + x[:, 1] - 0.8)))
    return x, y, np.where(a, "A", "B")


@pytest.mark.parametrize("method", ["threshold", "reduction"])
def test_mitigation_lowers_parity_on_held_out(method):
    from sklearn.linear_model import LogisticRegression
    rng = np.random.default_rng(11)
    X, y, a = _synthetic(rng, 3000)
    Xt, yt, at = _synthetic(rng, 3000)
    base = LogisticRegression().fit(X, y)
    est = base if method == "threshold" else LogisticRegression()
    m = mitigate(est, X, y, a, method, "demographic_parity", prefit=method == "threshold", max_iter=20)
    t = mitigation_table(yt, {"unmitigated": base.predict(Xt), "mitigated": predict_mitigated(m, Xt, at)}, at)
    assert t.loc["mitigated", "dp_difference"] < t.loc["unmitigated", "dp_difference"] / 2
    assert t.loc["mitigated", "accuracy_cost"] > -0.02  # no free lunch beyond noise
    if method == "reduction":  # a Pipeline's fit takes no sample_weight: named, not scikit-learn's raw ValueError
        from sklearn.pipeline import make_pipeline
        check_named(lambda: mitigate(make_pipeline(LogisticRegression()), X, y, a, "reduction", max_iter=2),
                    ConfigError, "sample_weight")
    eo = mitigate(base, X, y, a, "threshold", "equalized_odds", prefit=True)
    t = mitigation_table(yt, {"unmitigated": base.predict(Xt), "eo": predict_mitigated(eo, Xt, at)}, at)
    assert t.loc["eo", "eo_difference"] < t.loc["unmitigated", "eo_difference"]


def test_load_adult_is_clean():
    df = load_adult()
    assert df.shape == (32561, 14)
    for c in ADULT_CATEGORICAL:
        assert isinstance(df[c].dtype, pd.CategoricalDtype)
        cats = df[c].cat.categories
        assert "?" not in cats and all(v == v.strip() for v in cats)
    assert int(df[["workclass", "occupation", "native_country"]].isna().sum().sum()) == 1836 + 1843 + 583
    assert df["income_gt_50k"].dtype == bool and df["income_gt_50k"].sum() == 7841
    assert len(load_adult(sample=500)) == 500


Y = np.array([0, 1, 0, 1, 1, 0])
P = np.array([0, 1, 1, 1, 0, 0])
S = np.array([0.1, 0.9, 0.6, 0.8, 0.3, 0.2])
G = np.array(["a", "a", "a", "b", "b", "b"])


@pytest.mark.parametrize("call,error,fragment", [
    (lambda: group_report(Y, P, S, ["a"] * 6), DataError, "single group"),
    (lambda: group_report(Y, P, S, G[:-1]), DataError, "groups has 5 values"),
    (lambda: group_report(Y, P[:-1], S, G), DataError, "y_pred has 5 values"),
    (lambda: group_report(np.r_[Y[:-1], 2], P, S, G), DataError, "binary"),
    (lambda: group_report(Y, P, np.r_[S[:-1], np.nan], G), DataError, "NaN"),
    (lambda: group_report(Y, P, S * 2, G), DataError, "[0, 1]"),
    (lambda: group_report(Y, P, S, np.r_[G[:-1], None]), DataError, "missing values"),
    (lambda: group_report(Y, P, S, G, undefined="zero"), ConfigError, "undefined must be"),
    (lambda: group_report(Y, P, S, G, confidence=1.5), ConfigError, "confidence"),
    (lambda: mitigate(None, np.zeros((6, 1)), Y, G, "threshold", "fair_share"), ConfigError, "constraint must be"),
    (lambda: mitigate(None, np.zeros((6, 1)), Y, G, "magic"), ConfigError, "method must be"),
    (lambda: mitigate(None, np.zeros((5, 1)), Y, G), DataError, "X has 5 rows"),
    (lambda: fairness_metrics(Y, np.zeros(6), G), DataError, "undefined"),
    (lambda: mitigation_table(Y, {}, G), ConfigError, "non-empty"),
])
def test_bad_input_is_named(call, error, fragment):
    check_named(call, error, fragment)


def test_no_raw_library_errors():
    calls = {**each(group_report, y_true=Y, y_pred=P, y_score=S, groups=G, n_boot=20),
             **each(fairness_metrics, y_true=Y, y_pred=P, groups=G, undefined="omit"),
             **each(impossibility_table, y_true=Y, predictions={"m": P}, groups=G)}
    assert raw_errors(calls) == []
