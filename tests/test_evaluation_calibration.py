"""Calibration: ECE/MCE against a hand computation and scikit-learn's calibration_curve bins, the debiased estimate's
planted zero, the exact Brier decomposition, TemperatureScaler against scipy and scikit-learn, calibrators lowering a
planted miscalibration on held-out data, CalibrationTest, Steck's calibrated re-ranking, and bad input."""
import math
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.calibration import CalibratedClassifierCV, calibration_curve
from sklearn.frozen import FrozenEstimator
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import brier_score_loss
from sklearn.naive_bayes import GaussianNB
from sklearn.utils.estimator_checks import parametrize_with_checks

from badinput import JUNK, check_named, each, raw_errors
from mlsys.augment.mixup import expected_calibration_error as mixup_ece
from mlsys.core import ConfigError, DataError
from mlsys.evaluation.calibration import (CalibrationTest, TemperatureScaler, brier_decomposition, brier_score,
                                          calibrate, calibrated_rerank, calibration_metrics, calibration_tradeoff,
                                          debiased_calibration_error, expected_calibration_error, genre_distribution,
                                          genre_matrix, maximum_calibration_error, miscalibration, reliability_table,
                                          split_history, user_knn_candidates)
from mlsys.evaluation.suite import BehaviouralSuite

ESTIMATORS = [TemperatureScaler(), TemperatureScaler(GaussianNB(), max_iter=50)]


@pytest.mark.torch
@parametrize_with_checks(ESTIMATORS)
def test_sklearn_compatible(estimator, check):
    check(estimator)


# ---- generated inputs ----------------------------------------------------------------------------------------------

def _case(rng):
    "A random (labels, scores) pair with ties, exact 0 and 1, constant scores, a single class or float32."
    n = int(rng.integers(1, 80))
    kind = rng.integers(0, 6)
    if kind == 0:
        p = rng.random(n)
    elif kind == 1:
        p = rng.integers(0, 6, n) / 5.0  # a grid: ties and exact 0 and 1 (also on inner bin edges)
    elif kind == 2:
        p = np.full(n, rng.choice([0.0, 0.3, 1.0]))  # all scores equal
    elif kind == 3:
        p = rng.random(n).astype(np.float32)
    elif kind == 4:
        p = np.clip(rng.normal(0.5, 0.4, n), 0, 1)  # many exact 0 and 1
    else:
        p = rng.beta(0.3, 3, n)  # skewed towards 0
    single = rng.random() < 0.15
    y = np.full(n, int(rng.integers(0, 2))) if single else (rng.random(n) < np.asarray(p, float)).astype(int)
    return y, p


def _naive_ece(y, p, edges):
    "ECE by a plain loop: a score goes to the number of inner edges strictly below it (a score on an edge goes lower)."
    bins = {}
    for yi, pi in zip(y, p):
        b = sum(float(pi) > e for e in edges[1:-1])
        bins.setdefault(b, []).append((yi, float(pi)))
    return sum(len(v) * abs(np.mean([a for a, _ in v]) - np.mean([b for _, b in v])) for v in bins.values()) / len(y), \
        max(abs(np.mean([a for a, _ in v]) - np.mean([b for _, b in v])) for v in bins.values())


# ---- ECE and MCE -------------------------------------------------------------------------------------------------

def test_ece_by_hand():
    # equal-width, 2 bins: [0.1, 0.2] mean 0.15 rate 1/2 gap 0.35; [0.6, 0.9] mean 0.75 rate 1 gap 0.25
    y, p = [0, 1, 1, 1], [0.1, 0.2, 0.6, 0.9]
    assert expected_calibration_error(y, p, 2) == pytest.approx(0.5 * 0.35 + 0.5 * 0.25, abs=1e-15)
    assert maximum_calibration_error(y, p, 2) == pytest.approx(0.35, abs=1e-15)
    # equal-mass, 2 bins: the median of the scores is 0.4, so the same two groups
    assert expected_calibration_error(y, p, 2, "quantile") == pytest.approx(0.30, abs=1e-15)
    # a score exactly on an inner edge (0.5) goes to the lower bin, as calibration_curve does:
    # bin 0 = {0.2, 0.5} mean 0.35 rate 0 -> gap 0.35; bin 1 = {0.7} rate 1 -> gap 0.3; ECE = (2*0.35 + 0.3)/3
    assert expected_calibration_error([0, 0, 1], [0.2, 0.5, 0.7], 2) == pytest.approx((2 * 0.35 + 0.3) / 3, abs=1e-15)
    # one bin: |mean score - mean label|
    assert expected_calibration_error([1, 0, 0, 0], [0.4, 0.4, 0.2, 0.2], 1) == pytest.approx(0.05, abs=1e-15)


@pytest.mark.parametrize("strategy", ["uniform", "quantile"])
def test_reliability_table_equals_calibration_curve(strategy):
    rng = np.random.default_rng(0)
    for _ in range(400):
        y, p = _case(rng)
        n_bins = int(rng.integers(1, 13))
        t = reliability_table(y, p, n_bins, strategy)
        # scikit-learn is given the same values as float64 (its quantile edges of float32 input are float32)
        sk_true, sk_pred = calibration_curve(y, np.asarray(p, np.float64), n_bins=n_bins, strategy=strategy)
        np.testing.assert_allclose(t["observed_rate"], sk_true, rtol=0, atol=1e-12)
        np.testing.assert_allclose(t["mean_predicted"], sk_pred, rtol=0, atol=1e-12)
        assert t["rows"].sum() == len(y) and (t["rows"] > 0).all()
        edges = (np.linspace(0, 1, n_bins + 1) if strategy == "uniform"
                 else np.percentile(np.asarray(p, np.float64), np.linspace(0, 1, n_bins + 1) * 100))  # as calibration_curve
        ece, mce = _naive_ece(y, p, edges)
        assert expected_calibration_error(y, p, n_bins, strategy) == pytest.approx(ece, abs=1e-12)
        assert maximum_calibration_error(y, p, n_bins, strategy) == pytest.approx(mce, abs=1e-12)
        if strategy == "uniform":
            assert expected_calibration_error(y, p, n_bins) == pytest.approx(mixup_ece(y, p, n_bins), abs=1e-12)


def test_quantile_bins_hold_equal_mass_without_ties():
    rng = np.random.default_rng(1)
    p = rng.random(1000)
    t = reliability_table((rng.random(1000) < p).astype(int), p, 10, "quantile")
    assert t["rows"].between(99, 101).all()


def test_debiased_estimate_is_zero_on_average_when_calibrated():
    rng = np.random.default_rng(2)
    p = rng.beta(2, 5, 400)
    est = np.array([debiased_calibration_error(rng.random(400) < p, p, 10, squared=True) for _ in range(400)])
    plugin = np.array([(lambda t: (t["weight"] * t["gap"] ** 2).sum())(reliability_table(rng.random(400) < p, p, 10, "quantile"))
                       for _ in range(400)])
    se = est.std(ddof=1) / math.sqrt(len(est))
    assert abs(est.mean()) < 3.5 * se
    assert plugin.mean() > 10 * se  # the plug-in squared gap is biased upwards


def test_debiased_estimate_recovers_a_planted_gap():
    rng = np.random.default_rng(3)
    p = rng.random(600)
    truth = p ** 2  # the model says p, the truth is p^2
    t = reliability_table(np.zeros(600), p, 10, "quantile")  # the bins depend on the scores only
    ids = np.searchsorted(np.percentile(p, np.linspace(0, 100, 11))[1:-1], p)
    target = sum((ids == b).mean() * (truth[ids == b].mean() - p[ids == b].mean()) ** 2 for b in t["bin"])
    est = np.array([debiased_calibration_error(rng.random(600) < truth, p, 10, squared=True) for _ in range(300)])
    assert abs(est.mean() - target) < 3.5 * est.std(ddof=1) / math.sqrt(len(est))
    assert debiased_calibration_error(rng.random(600) < truth, p) >= 0


# ---- Brier decomposition -----------------------------------------------------------------------------------------

def test_brier_decomposition_is_exact_for_finitely_many_values():
    rng = np.random.default_rng(4)
    for _ in range(300):
        n = int(rng.integers(1, 200))
        values = rng.random(int(rng.integers(1, 8)))
        if rng.random() < 0.3:
            values = np.r_[values, 0.0, 1.0]
        p = rng.choice(values, n)
        y = (rng.random(n) < rng.random()).astype(int)
        d = brier_decomposition(y, p)
        assert d.within_bin_variance == 0 and d.within_bin_covariance == 0
        assert d.reliability - d.resolution + d.uncertainty == pytest.approx(d.brier, abs=1e-12)
        assert d.brier == pytest.approx(brier_score_loss(y, p, labels=[0, 1]), abs=1e-12)
        assert brier_score(y, p) == pytest.approx(d.brier, abs=1e-15)
        assert d.groups == len(np.unique(p))


def test_binned_brier_decomposition_adds_up_with_the_within_bin_terms():
    rng = np.random.default_rng(5)
    for _ in range(200):
        y, p = _case(rng)
        strategy = ["uniform", "quantile"][int(rng.integers(0, 2))]
        d = brier_decomposition(y, p, int(rng.integers(1, 12)), strategy)
        assert (d.reliability - d.resolution + d.uncertainty + d.within_bin_variance - d.within_bin_covariance
                == pytest.approx(d.brier, abs=1e-12))
        assert d.reliability >= 0 and d.resolution >= 0 and d.within_bin_variance >= 0


# ---- temperature scaling and calibrators -------------------------------------------------------------------------

class _Logits(ClassifierMixin, BaseEstimator):
    "A 'model' whose decision_function is its input: the logits themselves (one column for binary)."

    def fit(self, X, y):
        self.classes_ = np.unique(y)
        self.n_features_in_ = np.asarray(X).shape[1]
        return self

    def decision_function(self, X):
        X = np.asarray(X, dtype=float)
        return X[:, 0] if X.shape[1] == 1 else X


def _scipy_temperature(z, y):
    def nll(log_t):
        return -log_softmax(z / math.exp(log_t), axis=1)[np.arange(len(y)), y].mean()
    return math.exp(minimize_scalar(nll, bounds=(-10, 10), method="bounded", options={"xatol": 1e-10}).x)


@pytest.mark.torch
@pytest.mark.parametrize("classes", [2, 3, 5])
def test_temperature_equals_scipy_minimisation(classes):
    rng = np.random.default_rng(classes)
    for t0 in (0.5, 1.0, 2.5):
        z = rng.normal(0, 3, (800, classes))
        X = z[:, 1:2] if classes == 2 else z  # binary: one logit column, the model's logits are (0, z)
        zz = np.column_stack([np.zeros(len(z)), z[:, 1]]) if classes == 2 else z
        y = np.array([rng.choice(classes, p=np.exp(log_softmax(row / t0))) for row in zz])
        model = _Logits().fit(X, y)
        ts = TemperatureScaler(FrozenEstimator(model)).fit(X, y)
        assert ts.temperature_ == pytest.approx(_scipy_temperature(zz, y), rel=1e-5)
        np.testing.assert_allclose(ts.predict_proba(X), np.exp(log_softmax(zz / ts.temperature_, axis=1)), atol=1e-12)
        assert ts.temperature_ == pytest.approx(t0, rel=0.35)  # the planted temperature, within sampling error


@pytest.mark.torch
def test_temperature_agrees_with_scikit_learn():
    rng = np.random.default_rng(7)
    for n_classes in (2, 3):
        X = rng.normal(size=(600, 4))
        y = (X @ rng.normal(size=4) * 2 + rng.normal(size=600) > 0).astype(int) if n_classes == 2 else rng.integers(0, 3, 600)
        base = LogisticRegression(C=100).fit(X[:300], y[:300])
        for est in (base, GaussianNB().fit(X[:300], y[:300])):  # decision_function, and predict_proba only
            ours = TemperatureScaler(FrozenEstimator(est)).fit(X[300:], y[300:])
            sk = CalibratedClassifierCV(FrozenEstimator(est), method="temperature").fit(X[300:], y[300:])
            np.testing.assert_allclose(ours.predict_proba(X), sk.predict_proba(X), atol=1e-5)
            np.testing.assert_array_equal(ours.predict(X), est.predict(X))  # a temperature never moves the class


class _Overconfident(ClassifierMixin, BaseEstimator):
    "A fitted logistic regression whose logits are multiplied by `k` and shifted by `b`: miscalibrated on purpose."

    def __init__(self, model=None, k=3.0, b=0.0):
        self.model, self.k, self.b = model, k, b

    def fit(self, X, y):
        self.classes_ = self.model.classes_
        return self

    def decision_function(self, X):
        return self.k * self.model.decision_function(X) + self.b

    def predict_proba(self, X):
        p = 1 / (1 + np.exp(-self.decision_function(X)))
        return np.column_stack([1 - p, p])

    def predict(self, X):
        return self.classes_[(self.decision_function(X) > 0).astype(int)]


@pytest.mark.torch
@pytest.mark.parametrize("k,b", [(3.0, 0.0), (0.3, 0.0), (1.0, 1.5)])
def test_calibrators_lower_ece_on_held_out_data(k, b):
    rng = np.random.default_rng(8)
    X = rng.normal(size=(6000, 3))
    y = (rng.random(6000) < 1 / (1 + np.exp(-(X @ [1.0, -2.0, 0.5])))).astype(int)
    base = LogisticRegression().fit(X[:2000], y[:2000])
    bad = _Overconfident(base, k, b).fit(X[:2000], y[:2000])
    before = expected_calibration_error(y[4000:], bad.predict_proba(X[4000:])[:, 1], 15, "quantile")
    assert before > 0.05
    for method in ("platt", "isotonic", "temperature"):
        if method == "temperature" and b:
            continue  # a shift is not a scale: temperature scaling cannot remove it (shown in the notebook)
        cal = calibrate(bad, X[2000:4000], y[2000:4000], method)
        after = expected_calibration_error(y[4000:], cal.predict_proba(X[4000:])[:, 1], 15, "quantile")
        assert after < before / 2, (method, before, after)


def test_isotonic_calibrator_equals_isotonic_regression_on_scores():
    rng = np.random.default_rng(9)
    X = rng.normal(size=(900, 3))
    y = (rng.random(900) < 1 / (1 + np.exp(-X[:, 0] * 2))).astype(int)
    base = LogisticRegression().fit(X[:300], y[:300])
    cal = calibrate(base, X[300:600], y[300:600], "isotonic")
    iso = IsotonicRegression(out_of_bounds="clip").fit(base.decision_function(X[300:600]), y[300:600])
    np.testing.assert_allclose(cal.predict_proba(X[600:])[:, 1], iso.predict(base.decision_function(X[600:])), atol=1e-12)


def test_calibration_metrics_keys_and_values():
    rng = np.random.default_rng(10)
    p = rng.random(500)
    y = (rng.random(500) < p).astype(int)
    m = calibration_metrics(y, p)
    assert set(m) == {"ece_uniform", "ece_quantile", "debiased_l2", "mce_quantile", "brier", "log_loss"}
    assert m["brier"] == pytest.approx(brier_score_loss(y, p))


# ---- the suite's test --------------------------------------------------------------------------------------------

def test_calibration_test_in_a_suite():
    rng = np.random.default_rng(11)
    X = rng.normal(size=(3000, 3))
    y = (rng.random(3000) < 1 / (1 + np.exp(-X[:, 0]))).astype(int)
    good = LogisticRegression().fit(X[:1500], y[:1500])
    bad = _Overconfident(good, 4.0).fit(X, y)
    suite = BehaviouralSuite([CalibrationTest("cal", max_ece=0.05), CalibrationTest("cal must", 0.05, 10, "uniform", True)])
    ok = suite.run(good, X[1500:], y[1500:])
    assert ok.passed and ok["cal"].status == "pass"
    worse = suite.run(bad, X[1500:], y[1500:])
    assert worse["cal"].status == "warn" and worse["cal must"].status == "FAIL"
    r = worse["cal"]
    assert r.value == pytest.approx(expected_calibration_error(y[1500:], bad.predict_proba(X[1500:])[:, 1], 15, "quantile"))
    assert len(r.details) == 15 and len(r.examples) == 3 and r.kind == "calibration"
    assert r.examples["gap"].abs().min() >= r.details["gap"].abs().nlargest(3).min()
    assert "ECE is" in r.summary and r.extra["mce"] >= r.value
    assert r.to_dict()["details"]  # JSON-safe


def test_calibration_test_bad_input():
    rng = np.random.default_rng(12)
    X = rng.normal(size=(100, 2))
    y = (X[:, 0] > 0).astype(int)

    class Scores(BaseEstimator):  # decision scores, not probabilities
        def decision_function(self, X):
            return X[:, 0] * 10

    check_named(lambda: CalibrationTest("c").run(Scores(), X, y), DataError, "test 'c': proba must be probabilities in [0, 1]")
    check_named(lambda: CalibrationTest("c").run(LogisticRegression().fit(X, y), X, y[:50]), DataError, "y has shape")
    check_named(lambda: CalibrationTest("c", max_ece=-0.1), ConfigError, "max_ece")
    check_named(lambda: CalibrationTest("c", n_bins=0), ConfigError, "n_bins")
    check_named(lambda: CalibrationTest("c", strategy="kmeans"), ConfigError, "strategy")


# ---- recommendation calibration ----------------------------------------------------------------------------------

def test_miscalibration_properties():
    rng = np.random.default_rng(13)
    for _ in range(200):
        g = int(rng.integers(1, 8))
        p, q = rng.dirichlet(np.ones(g)), rng.dirichlet(np.ones(g))
        p[rng.random(g) < 0.3] = 0
        if p.sum() == 0:
            p[0] = 1
        p /= p.sum()
        assert miscalibration(p, p) == pytest.approx(0, abs=1e-12)
        assert miscalibration(p, q) >= -1e-12
    # by hand: p = (0.7, 0.3), q = (1, 0), alpha = 0.01 -> q~ = (0.997, 0.003)
    assert miscalibration([0.7, 0.3], [1, 0]) == pytest.approx(0.7 * math.log(0.7 / 0.997) + 0.3 * math.log(100), abs=1e-12)


def _naive_rerank(s, G, p, k, lam, alpha=0.01):
    chosen = []
    for _ in range(k):
        best, arg = -np.inf, None
        for j in range(len(s)):
            if j in chosen:
                continue
            lst = chosen + [j]
            obj = (1 - lam) * s[lst].sum() - lam * miscalibration(p, G[lst].mean(axis=0), alpha)
            if obj > best:
                best, arg = obj, j
        chosen.append(arg)
    return chosen


def test_rerank_equals_a_naive_greedy_and_lam_zero_is_score_order():
    rng = np.random.default_rng(14)
    for _ in range(150):
        n, g = int(rng.integers(2, 15)), int(rng.integers(1, 5))
        G = rng.dirichlet(np.ones(g), n) * (rng.random((n, 1)) < 0.8) + 0.0
        G[G.sum(axis=1) == 0, 0] = 1.0
        G = G / G.sum(axis=1, keepdims=True)
        s = np.round(rng.random(n), 1)  # ties
        p = rng.dirichlet(np.ones(g))
        k = int(rng.integers(1, n + 1))
        assert calibrated_rerank(s, G, p, k, 0.0).tolist() == np.argsort(-s, kind="stable")[:k].tolist()
        lam = float(rng.choice([0.3, 0.7, 0.99]))
        assert calibrated_rerank(s, G, p, k, lam).tolist() == _naive_rerank(s, G, p, k, lam)


def _toy_ratings():
    rows = []
    movies = {1: "Drama", 2: "Drama", 3: "Comedy", 4: "Comedy|Drama", 5: "Horror", 6: "Drama"}
    for u, seen in {10: [1, 2, 3, 4], 11: [1, 2, 5, 6], 12: [3, 4, 5, 1], 13: [2, 3, 6, 5]}.items():
        for t, m in enumerate(seen):
            rows.append({"user_id": u, "movie_id": m, "genres": movies[m], "timestamp": pd.Timestamp("2020-01-01", tz="UTC")
                         + pd.Timedelta(days=t + u)})
    return pd.DataFrame(rows)


def test_genre_matrix_split_and_candidates():
    r = _toy_ratings()
    g = genre_matrix(r)
    assert g.loc[4, "Comedy"] == 0.5 and g.loc[4, "Drama"] == 0.5 and g.loc[5, "Horror"] == 1
    np.testing.assert_allclose(genre_distribution([1, 4], g), [0.25, 0.75, 0.0])  # Comedy, Drama, Horror
    hist, held = split_history(r, 0.25)
    assert len(held) == 4 and held.groupby("user_id").size().eq(1).all()
    assert (held.set_index("user_id")["timestamp"] >= hist.groupby("user_id")["timestamp"].max()).all()
    c = user_knn_candidates(hist, n_candidates=2, n_neighbors=2)
    assert not c.merge(hist, on=["user_id", "movie_id"]).shape[0]
    assert c.groupby("user_id")["score"].first().eq(1).all() and (c["score"] <= 1).all()
    # brute force for user 10 (history 1, 2, 3): cosine with the others' sets, the 2 nearest vote
    sets = hist.groupby("user_id")["movie_id"].apply(set)
    sim = {v: len(sets[10] & sets[v]) / math.sqrt(len(sets[10]) * len(sets[v])) for v in sets.index if v != 10}
    near = sorted(sim, key=sim.get, reverse=True)[:2]
    votes = {m: sum(sim[v] for v in near if m in sets[v]) for m in set().union(*sets) - sets[10]}
    best = max(votes.values())
    got = c[c["user_id"] == 10].set_index("movie_id")["score"]
    for m, sc in got.items():
        assert sc == pytest.approx(votes[m] / best)


def test_tradeoff_precision_by_hand():
    g = genre_matrix(pd.DataFrame({"movie_id": [1, 2, 3], "genres": ["A", "B", "A"]}))
    cands = pd.DataFrame({"user_id": [7, 7, 7], "movie_id": [2, 1, 3], "score": [1.0, 0.9, 0.8]})
    hist = pd.DataFrame({"user_id": [7], "movie_id": [3]})  # the user watched only genre A
    held = pd.DataFrame({"user_id": [7, 7], "movie_id": [1, 9]})
    t = calibration_tradeoff(cands, hist, held, g, lams=[0.0, 0.99], k=1)
    assert t.loc[0.0, "precision@1"] == 0 and t.loc[0.99, "precision@1"] == 1  # lam=0 takes movie 2 (genre B)
    assert t.loc[0.99, "recall@1"] == 0.5 and t.loc[0.99, "miscalibration"] == pytest.approx(0, abs=1e-12)
    assert t.loc[0.0, "miscalibration"] == pytest.approx(math.log(1 / 0.01))


# ---- bad input ---------------------------------------------------------------------------------------------------

Y, P = np.array([0, 1, 1, 0]), np.array([0.1, 0.8, 0.6, 0.3])
PLAIN = [reliability_table, expected_calibration_error, maximum_calibration_error, debiased_calibration_error]


@pytest.mark.parametrize("fn", PLAIN + [brier_score, brier_decomposition, calibration_metrics])
def test_bad_probabilities_and_labels(fn):
    check_named(lambda: fn(Y, P * 2), DataError, "proba must be probabilities in [0, 1]")
    check_named(lambda: fn(Y, P - 0.5), DataError, "proba must be probabilities in [0, 1]")
    check_named(lambda: fn(Y, np.r_[P[:3], np.nan]), DataError, "proba has 1 missing")
    check_named(lambda: fn(Y[:3], P), DataError, "y_true has 3 labels but proba has 4")
    check_named(lambda: fn([0, 1, 2, 0], P), DataError, "y_true must hold only 0/1")
    check_named(lambda: fn([0, 1, np.nan, 0], P), DataError, "y_true has 1 missing")
    check_named(lambda: fn(["a", "b", "a", "b"], P), DataError, "y_true")


@pytest.mark.parametrize("fn", PLAIN + [brier_decomposition])
def test_bad_bins(fn):
    check_named(lambda: fn(Y, P, 0), ConfigError, "n_bins must be an integer in [1, 1000000], got 0")
    check_named(lambda: fn(Y, P, 10**9), ConfigError, "n_bins")
    check_named(lambda: fn(Y, P, 2.5), ConfigError, "n_bins")
    check_named(lambda: fn(Y, P, 5, "kmeans"), ConfigError, "strategy must be 'uniform'")


def test_no_raw_errors_on_junk():
    r = _toy_ratings()
    g = genre_matrix(r)
    hist, held = split_history(r, 0.25)
    cands = user_knn_candidates(hist, 2, 2)
    calls = {}
    for fn in PLAIN:
        calls |= each(fn, y_true=Y, proba=P, n_bins=3, strategy="uniform")
    calls |= each(brier_decomposition, y_true=Y, proba=P, n_bins=3, strategy="quantile")
    calls |= each(miscalibration, p=[0.5, 0.5], q=[1.0, 0.0], alpha=0.01)
    calls |= each(calibrated_rerank, scores=[1.0, 0.5], item_genres=np.eye(2), p=[0.5, 0.5], k=1, lam=0.5, alpha=0.01)
    calls |= each(genre_matrix, movies=r, sep="|")
    calls |= each(genre_distribution, items=[1, 2], genres=g)
    calls |= each(split_history, ratings=r, test_fraction=0.25)
    calls |= each(user_knn_candidates, history=hist, n_candidates=2, n_neighbors=2)
    calls |= each(calibration_tradeoff, candidates=cands, history=hist, heldout=held, genres=g, lams=[0.0, 0.5], k=1)
    calls |= each(CalibrationTest, name="c", max_ece=0.1, n_bins=5, strategy="uniform", must_pass=False)
    assert raw_errors(calls, JUNK) == []


@pytest.mark.torch
def test_calibrator_bad_input():
    rng = np.random.default_rng(15)
    X = rng.normal(size=(60, 2))
    y = (X[:, 0] > 0).astype(int)
    m = LogisticRegression().fit(X, y)
    check_named(lambda: calibrate(m, X, y, "beta"), ConfigError, "method must be one of")
    check_named(lambda: calibrate(LogisticRegression(), X, y), ConfigError, "needs a fitted classifier")
    check_named(lambda: calibrate(m, X, np.zeros(60)), DataError, "y_val holds no row of class [1]")
    check_named(lambda: calibrate(m, X, y[:10]), DataError, "y has shape")
    check_named(lambda: TemperatureScaler(max_iter=0).fit(X, y), ConfigError, "max_iter")
    check_named(lambda: TemperatureScaler(FrozenEstimator(m)).fit(X, np.ones(60)), DataError, "one class")
    check_named(lambda: TemperatureScaler(FrozenEstimator(m)).fit(X, np.full(60, 7)), DataError, "no class for")
    check_named(lambda: TemperatureScaler().fit(X, None), DataError, "requires y")


def test_import_is_light():
    code = ("import sys, mlsys.evaluation.calibration; "
            "print(sorted(m for m in ('torch', 'matplotlib') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True)
    assert out.stdout.strip() == "[]"


# ---- review 13: calibrate refuses bad validation data the same way for every method -----------------------------------

@pytest.mark.torch
@pytest.mark.parametrize("method", ["platt", "isotonic", "temperature"])
def test_calibrate_names_bad_validation_data_for_every_method(method):
    rng = np.random.default_rng(16)
    X = rng.normal(size=(200, 3))
    y = (X[:, 0] + rng.normal(size=200) > 0).astype(int)
    m = LogisticRegression().fit(X[:100], y[:100])
    Xv, yv = X[100:], y[100:]
    check_named(lambda: calibrate(m, Xv, yv + 1, method), DataError, "has no class for: [2]")
    check_named(lambda: calibrate(m, Xv, np.where(yv, "a", "b"), method), DataError, "has no class for: ['")
    check_named(lambda: calibrate(m, Xv, yv.astype(str), method), DataError, "has no class for")  # '1' is not 1
    check_named(lambda: calibrate(m, Xv, np.where(yv, 1, None), method), DataError, "has no class for: [None]")
    check_named(lambda: calibrate(m, np.where(Xv > 2, np.nan, Xv), yv, method), DataError,
                f"calibrate({method}) failed on the 100 validation rows: ValueError: Input X contains NaN")
    check_named(lambda: calibrate(m, Xv[:, :2], yv, method), DataError, f"calibrate({method}) failed")
    check_named(lambda: calibrate(m, Xv, np.ones(100, int), method), DataError, "no row of class [0]")
    # two rows, one per class, calibrate without a cross-validation limit (the frozen model is never refitted)
    p = calibrate(m, Xv[:2], np.array([0, 1]), method).predict_proba(X[:5])
    assert p.shape == (5, 2) and np.allclose(p.sum(axis=1), 1)
    assert calibrate(m, Xv, yv.astype(bool), method).predict_proba(X[:1]).shape == (1, 2)


@pytest.mark.parametrize("method", ["sigmoid", "isotonic"])
def test_calibrate_equals_calibrated_classifier_cv_on_a_frozen_model(method):
    "One split of all rows gives the calibrator scikit-learn's default 5-fold run gives a frozen model, without its limits."
    rng = np.random.default_rng(17)
    for n in (40, 333, 2000):
        X = rng.normal(size=(3 * n, 3))
        y = (X[:, 0] + rng.normal(size=3 * n) > 0).astype(int)
        m = LogisticRegression().fit(X[:n], y[:n])
        ours = calibrate(m, X[n:2 * n], y[n:2 * n], {"sigmoid": "platt", "isotonic": "isotonic"}[method])
        ref = CalibratedClassifierCV(FrozenEstimator(m), method=method).fit(X[n:2 * n], y[n:2 * n])
        np.testing.assert_allclose(ours.predict_proba(X[2 * n:]), ref.predict_proba(X[2 * n:]), atol=1e-12)
