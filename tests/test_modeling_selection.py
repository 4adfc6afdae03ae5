"""mlsys.modeling.selection: the power law recovers planted curves, learning curves share nested subsets, the Pareto
front and operating points match their definitions, the comparable setup gives every candidate the same splits,
budget and seeds, and the assumption checker flags planted violations and passes conforming data."""
import pickle

import numpy as np
import pandas as pd
import pytest
from scipy.stats import chi2_contingency, loguniform
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import LogisticRegression
from sklearn.tree import DecisionTreeClassifier

from mlsys.core import ConfigError, DataError
from mlsys.modeling.selection import (ComparableSetup, PowerLaw, _bins, _conditional_independence, check_assumptions,
                                      compare_candidates, extrapolate, fit_power_law, learning_curves, measure_cost,
                                      operating_points, pareto_front, tradeoff_table)

ESTIMATORS = []  # this module defines no estimator

# ---- power laws -----------------------------------------------------------------------------------------------------


def test_power_law_recovers_planted_curves():
    rng = np.random.default_rng(0)
    for _ in range(40):
        a, b, c = rng.uniform(0.3, 3.0), rng.uniform(0.2, 1.0), rng.uniform(0.5, 0.95)
        n = np.geomspace(rng.integers(50, 300), rng.integers(20_000, 80_000), int(rng.integers(6, 10))).round()
        law = fit_power_law(n, c - a * n ** -b + rng.normal(0, 0.001, n.size))
        assert isinstance(law, PowerLaw) and law.identified
        assert law.c == pytest.approx(c, abs=0.02)
        assert law.predict(10 * n.max()) == pytest.approx(c - a * (10 * n.max()) ** -b, abs=0.02)
        exact = fit_power_law(n, c - a * n ** -b)  # without noise: the parameters themselves
        assert (exact.a, exact.b, exact.c) == pytest.approx((a, b, c), rel=1e-4)
        assert exact.rmse < 1e-7


def test_power_law_caps_the_ceiling_and_says_so():
    n = np.geomspace(100, 10_000, 6)
    still_climbing = 0.4 + 0.05 * np.log(n)  # log-linear: no ceiling in sight
    law = fit_power_law(n, still_climbing)
    assert law.c == 1.0 and not law.identified
    assert fit_power_law(n, still_climbing, max_score=None).c > 1.0  # uncapped, the "ceiling" runs away
    neg = fit_power_law(n, -0.3 - 2 * n ** -0.5, max_score=0.0)  # e.g. neg_log_loss
    assert neg.c == pytest.approx(-0.3, abs=1e-6)


@pytest.mark.parametrize("args, match", [
    (([10, 20], [0.5, 0.6]), "3 or more"), (([10, 10, 10], [0.5, 0.6, 0.7]), "3 or more"),
    (([10, 20, 30], [0.5, 0.6]), "same length"), (([0, 20, 30], [0.5, 0.6, 0.7]), "positive"),
    (([10, 20, 30], [0.5, np.nan, 0.7]), "finite"), (([10, 20, 30], [0.5, 0.6, 1.2]), "exceed max_score")])
def test_power_law_bad_input(args, match):
    with pytest.raises(DataError, match=match):
        fit_power_law(*args)


def test_power_law_bad_config():
    for bad in [(0, 1), (1, 0.5), "x", (0.1,)]:
        with pytest.raises(ConfigError, match="b_range"):
            fit_power_law([10, 20, 30], [0.5, 0.6, 0.7], b_range=bad)
    with pytest.raises(ConfigError, match="max_score"):
        fit_power_law([10, 20, 30], [0.5, 0.6, 0.7], max_score="1")
    with pytest.raises(DataError, match="positive"):
        fit_power_law([10, 20, 30], [0.5, 0.6, 0.7]).predict([0])


# ---- learning curves: the same nested subsets for every model --------------------------------------------------------

SEEN = []


class Recorder(ClassifierMixin, BaseEstimator):
    "Remembers which rows (column 0 holds row ids) it was trained on."

    def __init__(self, tag="a"):
        self.tag = tag

    def fit(self, X, y):
        SEEN.append((self.tag, len(X), tuple(np.asarray(X)[:, 0].astype(int))))
        self.classes_ = np.unique(y)
        return self

    def predict_proba(self, X):
        return np.tile([0.5, 0.5], (len(X), 1))

    def predict(self, X):
        return np.full(len(X), self.classes_[0])


def test_learning_curves_share_nested_subsets():
    SEEN.clear()
    rng = np.random.default_rng(1)
    X = np.c_[np.arange(300), rng.normal(size=300)]
    y = rng.random(300) < 0.4
    curves = learning_curves({"a": Recorder("a"), "b": Recorder("b")}, X, y, X[:50], y[:50], sizes=[20, 60, 200],
                             n_repeats=2, random_state=3)
    assert len(curves) == 2 * 3 * 2 and set(curves.columns) >= {"model", "n_train", "repeat", "train_score", "valid_score"}
    by = {}
    for tag, _size, rows in SEEN:
        by.setdefault(tag, []).append(rows)
    assert by["a"] == by["b"]  # every model saw exactly the same rows, in the same order
    per_repeat = [by["a"][:3], by["a"][3:]]
    for series in per_repeat:  # nested within a repeat
        for small, big in zip(series, series[1:]):
            assert set(small) < set(big)
    assert set(per_repeat[0][0]) != set(per_repeat[1][0])  # repeats shuffle differently
    SEEN.clear()
    learning_curves({"a": Recorder("a")}, X, y, X[:50], y[:50], sizes=[20, 60, 200], n_repeats=2, random_state=3)
    assert [r for _, _, r in SEEN] == by["a"]  # the seed fixes the subsets


def test_learning_curves_bad_input():
    X, y = np.zeros((40, 2)), np.r_[np.zeros(20), np.ones(20)]
    m = {"lr": LogisticRegression()}
    for sizes in ([0], [50], [2.5], "10", [], [True]):
        with pytest.raises(ConfigError, match="size"):
            learning_curves(m, X, y, X, y, sizes=sizes)
    with pytest.raises(ConfigError, match="scorer"):
        learning_curves(m, X, y, X, y, sizes=[10], scoring="auc")
    with pytest.raises(ConfigError, match="n_repeats"):
        learning_curves(m, X, y, X, y, sizes=[10], n_repeats=0)
    with pytest.raises(DataError, match="same number of rows"):
        learning_curves(m, X, y[:-1], X, y, sizes=[10])
    with pytest.raises(DataError, match="no rows"):
        learning_curves(m, X[:0], y[:0], X, y, sizes=[10])
    with pytest.raises(ConfigError, match="no fit"):
        learning_curves({"x": object()}, X, y, X, y, sizes=[10])
    with pytest.raises(ConfigError, match="random_state"):
        learning_curves(m, X, y, X, y, sizes=[10], random_state=-1)


def test_extrapolate_ranks_now_and_later():
    n = np.array([100, 300, 1000, 3000, 10000])
    curves = pd.concat([pd.DataFrame({"model": "fast start", "n_train": n, "valid_score": 0.70 - 0.5 * n ** -0.9}),
                        pd.DataFrame({"model": "slow start", "n_train": n, "valid_score": 0.80 - 2.0 * n ** -0.25})])
    table, fits = extrapolate(curves, n_future=10**6)
    assert table.loc["fast start", "rank_now"] == 1 and table.loc["slow start", "rank_later"] == 1
    assert table.loc["slow start", "predicted_at_1000000"] == pytest.approx(0.80 - 2.0 * 1e6 ** -0.25, abs=1e-4)
    assert set(fits) == {"fast start", "slow start"}
    with pytest.raises(ConfigError, match="n_future"):
        extrapolate(curves, 0)
    with pytest.raises(DataError, match="learning_curves"):
        extrapolate(curves.drop(columns="valid_score"), 10)


# ---- trade-offs ---------------------------------------------------------------------------------------------------------

def _dominated_brute(v):
    out = []
    for i in range(len(v)):
        out.append(any((v[j] >= v[i]).all() and (v[j] > v[i]).any() for j in range(len(v)) if j != i))
    return np.array(out)


def test_pareto_front_matches_its_definition():
    rng = np.random.default_rng(2)
    for _ in range(300):
        k = int(rng.integers(1, 12))
        t = pd.DataFrame({"score": rng.integers(0, 4, k), "lat": rng.integers(0, 4, k), "size": rng.integers(0, 4, k)}).astype(float)
        front = pareto_front(t, maximize=["score"], minimize=["lat", "size"])
        v = np.c_[t["score"], -t["lat"], -t["size"]]
        np.testing.assert_array_equal(front.to_numpy(), ~_dominated_brute(v))
        assert front.any()  # someone is always on the front
    dup = pd.DataFrame({"score": [1.0, 1.0], "latency_batch_ms": [2.0, 2.0], "size_bytes": [3.0, 3.0]})
    assert pareto_front(dup).all()  # identical points do not dominate each other


def test_pareto_front_bad_input():
    t = pd.DataFrame({"score": [1.0, np.nan], "latency_batch_ms": [1, 2], "size_bytes": [1, 2]})
    with pytest.raises(DataError, match="finite"):
        pareto_front(t)
    with pytest.raises(DataError, match="lacks"):
        pareto_front(t.drop(columns="size_bytes"))
    with pytest.raises(DataError, match="non-empty"):
        pareto_front(t.iloc[:0])
    with pytest.raises(ConfigError, match="at least one"):
        pareto_front(t, maximize=[], minimize=[])


def test_operating_points_reach_their_recall_at_the_highest_threshold():
    rng = np.random.default_rng(3)
    for _ in range(50):
        n = int(rng.integers(20, 300))
        y = rng.random(n) < 0.3
        y[:2] = [True, False]
        s = np.round(y * rng.uniform(0, 1) + rng.normal(size=n), 1)  # rounding makes tied scores
        pts = operating_points(y, {"m": s}, target_recalls=(0.2, 0.5, 0.9, 1.0))
        for _, p in pts.iterrows():
            flagged = s >= p["threshold"]
            assert flagged[y].mean() == pytest.approx(p["recall"]) and p["recall"] >= p["target_recall"]
            assert y[flagged].mean() == pytest.approx(p["precision"])
            higher = s[s > p["threshold"]]
            if higher.size:  # the next threshold up would miss the target
                assert (s >= higher.min())[y].mean() < p["target_recall"]
    with pytest.raises(DataError, match="both positive and negative"):
        operating_points(np.ones(5, bool), {"m": np.arange(5.0)})
    with pytest.raises(ConfigError, match="target recalls"):
        operating_points(y, {"m": s}, target_recalls=(0.0,))
    with pytest.raises(DataError, match="finite"):
        operating_points(y, {"m": np.r_[s[:-1], np.nan]})


def test_tradeoff_table_and_measure_cost():
    rng = np.random.default_rng(4)
    X = rng.normal(size=(200, 3))
    y = X[:, 0] + rng.normal(size=200) > 0
    models = {"lr": LogisticRegression().fit(X, y), "tree": DecisionTreeClassifier(random_state=0).fit(X, y)}
    t = tradeoff_table(models, X, y, scoring="roc_auc", n_repeats=2, batch_rows=50)
    assert set(t.columns) >= {"score", "latency_1_row_ms", "latency_batch_ms", "size_bytes", "pareto"}
    assert (t["batch_rows"] == 50).all()
    assert t.loc["lr", "size_bytes"] == len(pickle.dumps(models["lr"]))
    assert t["pareto"].any()
    cost = measure_cost(models["tree"], X[:10], n_repeats=1)
    assert set(cost) == {"latency_1_row_ms", "latency_batch_ms", "batch_rows", "size_bytes"} and cost["batch_rows"] == 10
    with pytest.raises(ConfigError, match="n_repeats"):
        measure_cost(models["lr"], X, n_repeats=0)
    with pytest.raises(ConfigError, match="batch_rows"):
        tradeoff_table(models, X, y, batch_rows=0)
    with pytest.raises(ConfigError, match="neither"):
        measure_cost(object(), X)


# ---- the comparable setup ---------------------------------------------------------------------------------------------

FITS = []


class SeedRecorder(ClassifierMixin, BaseEstimator):
    "A weak learner that records its random_state and parameters at every fit."

    def __init__(self, depth=1, random_state=None, width=1.0):
        self.depth, self.random_state, self.width = depth, random_state, width

    def fit(self, X, y):
        FITS.append((self.random_state, self.depth, self.width, len(X)))
        self.tree_ = DecisionTreeClassifier(max_depth=self.depth, random_state=self.random_state).fit(X, y)
        self.classes_ = self.tree_.classes_
        return self

    def predict_proba(self, X):
        return self.tree_.predict_proba(X)


def _data(n=240, seed=5):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    return X, X[:, 0] + 0.5 * rng.normal(size=n) > 0


def test_every_candidate_gets_the_same_splits_budget_and_seed():
    X, y = _data()
    FITS.clear()
    setup = ComparableSetup(n_splits=3, n_trials=5, seed=7)
    result = compare_candidates({"favourite": (SeedRecorder(), {"depth": [1, 2, 3, 4, 5, 6], "width": loguniform(0.1, 10)}),
                                 "plain": (SeedRecorder(), {"depth": [1, 2]}), "defaults": SeedRecorder()},
                                X, y, setup, scoring="roc_auc")
    t = result.table
    assert t.loc["favourite", "trials"] == 5  # a big space does not buy more trials
    assert t.loc["plain", "trials"] == 2 and t.loc["plain", "space_exhausted"]  # a grid smaller than the budget: all of it
    assert t.loc["defaults", "trials"] == 1 and t.loc["defaults", "space_exhausted"]
    assert t["splits"].nunique() == 1 and (t["seed"] == 7).all()
    assert {rs for rs, *_ in FITS} == {7}  # every fit got the setup's seed
    assert len(FITS) == 3 * (5 + 2 + 1)
    assert sorted({n for *_, n in FITS}) == sorted({len(tr) for tr, _ in setup.splits(X, y)})
    assert (result.trials.groupby("candidate")["best_so_far"].apply(lambda s: s.is_monotonic_increasing)).all()
    again = compare_candidates({"favourite": (SeedRecorder(), {"depth": [1, 2, 3, 4, 5, 6], "width": loguniform(0.1, 10)})},
                               X, y, setup, scoring="roc_auc")
    assert again.trials["params"].tolist() == result.trials.query("candidate == 'favourite'")["params"].tolist()


def test_time_budget_and_time_ordered_splits():
    X, y = _data()
    r = compare_candidates({"a": (SeedRecorder(), {"depth": list(range(1, 30))})}, X, y,
                           ComparableSetup(n_trials=None, seconds=1e-6, seed=0))
    assert r.table.loc["a", "trials"] == 1  # the budget ran out after the first trial
    for tr, va in ComparableSetup(n_splits=4, n_trials=1, time_ordered=True).splits(X, y):
        assert tr.max() < va.min()  # train on the past, validate on the future


@pytest.mark.parametrize("kwargs, match", [
    (dict(n_trials=0), "n_trials"), (dict(n_trials=-3), "n_trials"), (dict(n_trials=2.5), "n_trials"),
    (dict(n_trials=None), "set a budget"), (dict(seconds=0), "seconds"), (dict(seconds=-1.0), "seconds"),
    (dict(seconds=np.inf), "seconds"), (dict(n_splits=1), "n_splits"), (dict(seed=-1), "seed"),
    (dict(time_ordered="yes"), "time_ordered")])
def test_comparable_setup_refuses_bad_budgets(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        ComparableSetup(**kwargs)


def test_compare_candidates_bad_input():
    X, y = _data()
    with pytest.raises(ConfigError, match="no parameter 'C'"):
        compare_candidates({"a": (SeedRecorder(), {"C": [1.0]})}, X, y)
    with pytest.raises(ConfigError, match="seeds are not tuned"):
        compare_candidates({"a": (SeedRecorder(), {"random_state": [1, 2]})}, X, y)
    with pytest.raises(ConfigError, match="non-empty list"):
        compare_candidates({"a": (SeedRecorder(), {"depth": []})}, X, y)
    with pytest.raises(ConfigError, match="non-empty mapping"):
        compare_candidates({}, X, y)
    with pytest.raises(ConfigError, match="ComparableSetup"):
        compare_candidates({"a": SeedRecorder()}, X, y, setup={"n_trials": 3})
    with pytest.raises(ConfigError, match="no fit"):
        compare_candidates({"a": "tree"}, X, y)
    with pytest.raises(DataError, match="too few"):
        compare_candidates({"a": SeedRecorder()}, X[:4], y[:4])


# ---- the assumption checker --------------------------------------------------------------------------------------------

def planted(kind, n=1200, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.random(n) < 0.5
    X = rng.normal(size=(n, 4)) + np.where(y, 0.6, -0.6)[:, None] * np.array([1, 1, 0.5, 0])
    time = rng.permutation(n)
    if kind == "iid":
        X[time > n / 2, 0] += 1.5
    elif kind == "smoothness":
        X = rng.random((n, 2)); y = np.floor(X[:, 0] * 8) % 2 == 1
    elif kind == "linear_boundary":
        X[:, :2] = rng.normal(size=(n, 2)); y = (X[:, :2] ** 2).sum(1) < 1.4
    elif kind == "conditional_independence":
        X[:, 3] = X[:, 2] + rng.normal(0, 0.3, n)
    elif kind == "normality":
        X[:, 3] = rng.exponential(size=n)
    elif kind == "prediction":
        y = rng.random(n) < 0.5
    return pd.DataFrame(X, columns=[f"x{i}" for i in range(X.shape[1])]), y, time


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_conforming_data_passes_every_check(seed):
    X, y, t = planted("none", seed=seed)
    report = check_assumptions(X, y, time=t, random_state=seed)
    verdicts = report.table["verdict"]
    assert (verdicts.drop("tractability") == "holds").all(), report.table[["statistic", "threshold", "evidence"]]
    assert verdicts["tractability"] == "not tested"


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("kind", ["iid", "smoothness", "linear_boundary", "conditional_independence", "normality", "prediction"])
def test_each_planted_violation_is_flagged(kind, seed):
    X, y, t = planted(kind, seed=seed)
    report = check_assumptions(X, y, time=t, checks=[kind], random_state=seed)
    assert report.verdict(kind) == "violated", report.table.loc[kind, "evidence"]


def test_groups_keep_shared_rows_in_one_fold():
    """Rows of one group share their features (like the flights of one hour share its weather). Without groups the
    adversarial classifier recognises the groups, not a shift; with groups the IID check sees there is none."""
    rng = np.random.default_rng(6)
    n_groups, per = 120, 15
    fingerprint = rng.normal(size=(n_groups, 3))  # drawn from one distribution for early and late groups alike
    g = np.repeat(np.arange(n_groups), per)
    X = pd.DataFrame(fingerprint[g], columns=list("abc"))
    y = rng.random(len(g)) < 0.5
    time = g  # groups in time order: the first half early, the second late
    assert check_assumptions(X, y, time=time, checks=["iid"]).verdict("iid") == "violated"
    assert check_assumptions(X, y, time=time, groups=g, checks=["iid"]).verdict("iid") == "holds"


def test_conditional_mutual_information_is_the_g_test():
    "The pair statistic equals scipy's log-likelihood chi-squared, summed over the classes."
    rng = np.random.default_rng(7)
    X = pd.DataFrame(rng.normal(size=(500, 3)), columns=list("abc"))
    X["c"] = X["a"] + rng.normal(0, 0.5, 500)
    X.loc[::17, "b"] = np.nan  # missing values get a bin of their own
    y = rng.integers(0, 3, 500)
    pairs = _conditional_independence(X, y, 4).set_index(["feature_a", "feature_b"])
    for a, b in [("a", "b"), ("a", "c"), ("b", "c")]:
        G, dof = 0.0, 0
        for k in range(3):
            m = y == k
            table = pd.crosstab(_bins(X[a], 4)[m], _bins(X[b], 4)[m]).to_numpy()
            g, _, d, _ = chi2_contingency(table, correction=False, lambda_="log-likelihood")
            G, dof = G + g, dof + d
        assert pairs.loc[(a, b), "G"] == pytest.approx(G, rel=1e-9) and pairs.loc[(a, b), "df"] == dof
    assert pairs.loc[("a", "c"), "cmi_bits"] > 0.2 > pairs.loc[("a", "b"), "cmi_bits"]


def test_bins_never_split_equal_values():
    col = pd.Series([0.0] * 80 + list(np.linspace(1, 5, 20)) + [np.nan] * 3)
    b = _bins(col, 5)
    assert len(set(b[:80])) == 1  # ties share a bin (a tie broken by position would fake a dependence)
    assert set(b[-3:]) == {0} and 0 not in set(b[:-3])


def test_check_assumptions_bad_input():
    X, y, t = planted("none", n=200)
    with pytest.raises(ConfigError, match="unknown assumption"):
        check_assumptions(X, y, checks=["gaussianity"])
    with pytest.raises(ConfigError, match="non-empty list"):
        check_assumptions(X, y, checks="iid")
    with pytest.raises(DataError, match="not numeric"):
        check_assumptions(X.assign(s="x"), y)
    with pytest.raises(DataError, match="class labels"):
        check_assumptions(X, X["x0"].to_numpy())
    with pytest.raises(DataError, match="rows but y has"):
        check_assumptions(X, y[:-1])
    with pytest.raises(DataError, match="at least 50"):
        check_assumptions(X.iloc[:20], y[:20])
    with pytest.raises(DataError, match="infinite"):
        check_assumptions(X.assign(x0=np.inf), y)
    with pytest.raises(DataError, match="time must give"):
        check_assumptions(X, y, time=t[:-1])
    with pytest.raises(DataError, match="groups has"):
        check_assumptions(X, y, groups=np.zeros(len(X)))
    for name, bad in [("gap", 0), ("iid_auc", 0.4), ("alpha", 1.5), ("max_skew", -1), ("gap", True)]:
        with pytest.raises(ConfigError, match=name):
            check_assumptions(X, y, **{name: bad})
    for name, bad in [("n_splits", 1), ("max_rows", 10), ("n_bins", 1.5)]:
        with pytest.raises(ConfigError, match=name):
            check_assumptions(X, y, **{name: bad})
    report = check_assumptions(X, y, checks=["iid"])
    assert report.verdict("iid") == "not tested"
    with pytest.raises(ConfigError, match="unknown assumption"):
        report.verdict("smoothness")


# ---- the phase ladder ------------------------------------------------------------------------------------------------

def _ladder_data(n=600, seed=8):
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({"rate": rng.random(n), "x": rng.normal(size=n), "noise": rng.normal(size=n)})
    y = (X["rate"] + 0.8 * X["x"] + rng.normal(0, 0.3, n)) > 0.6
    return X.iloc[:400], y.iloc[:400], X.iloc[400:], y.iloc[400:]


def test_walk_phases_adopts_only_what_earns_its_place():
    from sklearn.dummy import DummyClassifier

    from mlsys.modeling.baselines import ThresholdHeuristic
    from mlsys.modeling.selection import PhaseReport, walk_phases
    Xt, yt, Xv, yv = _ladder_data()
    phases = [("heuristic", ThresholdHeuristic("rate")), ("logistic", LogisticRegression(), ["rate", "x"]),
              ("logistic + noise", LogisticRegression(), ["rate", "x", "noise"]), ("zero rule", DummyClassifier())]
    r = walk_phases(phases, Xt, yt, Xv, yv, scoring="roc_auc", min_gain=0.01, n_repeats=1)
    assert isinstance(r, PhaseReport) and r.best == "logistic"
    assert r.table["adopted"].tolist() == [True, True, False, False]
    t = r.table
    assert t.loc["logistic", "gain_low"] > 0 and t.loc["logistic", "gain_low"] <= t.loc["logistic", "gain"] <= t.loc["logistic", "gain_high"]
    assert t.loc["logistic + noise", "decision"].startswith("not adopted") and "min_gain" in t.loc["logistic + noise", "decision"]
    assert t.loc["logistic", "gain"] == pytest.approx(t.loc["logistic", "score"] - t.loc["heuristic", "score"])
    assert set(r.models) == {p[0] for p in phases}
    assert list(r.models["logistic"].feature_names_in_) == ["rate", "x"]  # each phase saw only its columns
    # the same model again gains exactly 0: with min_gain 0 it is still refused, because the gain could be noise
    same = walk_phases(phases[1:2] + [("again", LogisticRegression(), ["rate", "x"])], Xt, yt, Xv, yv, scoring="roc_auc",
                       min_gain=0.0, n_repeats=1)
    assert same.table.loc["again", "gain"] == 0 and "could be noise" in same.table.loc["again", "decision"]
    # a target the logistic regression reaches: the walk stops there, later phases are not run
    stop = walk_phases(phases, Xt, yt, Xv, yv, scoring="roc_auc", target=t.loc["logistic", "score"] - 1e-9, n_repeats=1)
    assert stop.table.loc["logistic", "decision"].endswith("reached: stop")
    assert stop.table.loc["zero rule", "decision"].startswith("not run") and "zero rule" not in stop.models
    # the bootstrap is seeded: the same intervals twice
    again = walk_phases(phases, Xt, yt, Xv, yv, scoring="roc_auc", min_gain=0.01, n_repeats=1)
    pd.testing.assert_frame_equal(again.table[["gain_low", "gain_high"]], t[["gain_low", "gain_high"]])


def test_walk_phases_latency_budget(monkeypatch):
    "With latencies fixed (no timing in tests), a phase over the budget is refused and one within it adopted."
    import mlsys.modeling.selection as sel
    from mlsys.modeling.baselines import ThresholdHeuristic
    fake = {"ThresholdHeuristic": 0.1, "LogisticRegression": 5.0, "DecisionTreeClassifier": 50.0}
    monkeypatch.setattr(sel, "measure_cost", lambda m, X, n: {"latency_1_row_ms": 0.0, "latency_batch_ms": fake[type(m).__name__],
                                                              "batch_rows": len(X), "size_bytes": 1})
    Xt, yt, Xv, yv = _ladder_data()
    phases = [("heuristic", ThresholdHeuristic("rate")), ("tree", DecisionTreeClassifier(max_depth=6, random_state=0)),
              ("logistic", LogisticRegression())]
    r = sel.walk_phases(phases, Xt, yt, Xv, yv, scoring="roc_auc", max_latency_ms=10.0)
    assert r.table["adopted"].tolist() == [True, False, True]
    assert "over the budget of 10.0 ms" in r.table.loc["tree", "decision"]
    late = sel.walk_phases(phases[1:], Xt, yt, Xv, yv, scoring="roc_auc", max_latency_ms=10.0)  # the first is over budget
    assert late.best == "logistic" and "first phase within the latency budget" in late.table.loc["logistic", "decision"]
    with pytest.raises(DataError, match="no phase fits"):
        sel.walk_phases(phases, Xt, yt, Xv, yv, scoring="roc_auc", max_latency_ms=0.01)


def test_walk_phases_bad_input():
    from mlsys.modeling.selection import walk_phases
    Xt, yt, Xv, yv = _ladder_data()
    lr = LogisticRegression()
    with pytest.raises(ConfigError, match="non-empty list"):
        walk_phases([], Xt, yt, Xv, yv)
    with pytest.raises(ConfigError, match="unique"):
        walk_phases([("a", lr), ("a", lr)], Xt, yt, Xv, yv)
    with pytest.raises(ConfigError, match="no fit"):
        walk_phases([("a", "model")], Xt, yt, Xv, yv)
    with pytest.raises(ConfigError, match="each phase"):
        walk_phases([lr], Xt, yt, Xv, yv)
    for kwargs, match in [(dict(min_gain=-0.1), "min_gain"), (dict(max_latency_ms=0), "max_latency_ms"),
                          (dict(target=np.nan), "target"), (dict(batch_rows=0), "batch_rows"), (dict(scoring="auc"), "scorer"),
                          (dict(n_bootstrap=-1), "n_bootstrap"), (dict(confidence=1.0), "confidence"),
                          (dict(random_state=-2), "random_state")]:
        with pytest.raises(ConfigError, match=match):
            walk_phases([("a", lr)], Xt, yt, Xv, yv, **kwargs)
    with pytest.raises(DataError, match="same number of rows"):
        walk_phases([("a", lr)], Xt, yt[:-1], Xv, yv)
    with pytest.raises(DataError, match="DataFrames"):
        walk_phases([("a", lr, ["x"])], Xt.to_numpy(), yt, Xv.to_numpy(), yv)


def test_frozen_outputs_score_like_the_model():
    "The bootstrap scores cached outputs by row index; on all rows that equals scoring the model itself."
    from sklearn.metrics import get_scorer

    from mlsys.modeling.selection import _Frozen
    Xt, yt, Xv, yv = _ladder_data()
    m = LogisticRegression().fit(Xt, yt)
    idx = np.arange(len(Xv))
    for name in ("roc_auc", "average_precision", "accuracy", "neg_log_loss"):
        sc = get_scorer(name)
        assert sc(_Frozen(m, Xv), idx, yv.to_numpy()) == pytest.approx(sc(m, Xv, yv))
    f = _Frozen(m, Xv)
    assert not hasattr(_Frozen(DecisionTreeClassifier().fit(Xt, yt), Xv), "decision_function") and hasattr(f, "decision_function")
