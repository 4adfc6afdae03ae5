"""monitor.drift (chapter 8, items 2-3 of issue 15): the DriftResult/DriftDetector contract and its refusals of bad
input, per-feature tests equal to scipy's (randomized differential tests with ties, duplicates, float32, constant
columns), the multiple-testing corrections, the multivariate permutation tests, and the false-positive rate under no
drift on real flights within sampling error of alpha."""
import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from mlsys.core import ConfigError, DataError, SchemaError
from mlsys.monitor.drift import DriftDetector, DriftResult, KSDrift, corrected_threshold


def _draw(rng, n):
    "A column of a random kind: continuous, heavy ties, duplicates, constant, float32, integers."
    kind = rng.integers(6)
    if kind == 0:
        return rng.normal(rng.normal(), 1 + rng.random(), n)
    if kind == 1:
        return rng.integers(0, rng.integers(1, 5), n).astype(float)  # heavy ties
    if kind == 2:
        return np.repeat(rng.normal(size=n // 3 + 1), 3)[:n]
    if kind == 3:
        return np.full(n, rng.normal())  # constant
    if kind == 4:
        return rng.normal(size=n).astype(np.float32)
    return rng.poisson(rng.random() * 4, n)


# ---------------------------------------------------------------- the contract

def test_result_to_dict_is_plain_json():
    feats = pd.DataFrame({"feature": ["a", "b"], "statistic": [np.float32(0.5), np.nan],
                          "p_value": [np.float64(0.01), np.nan], "threshold": 0.025, "drift": np.array([True, False])})
    r = DriftResult("ks", np.float64(0.5), np.float64(0.01), 0.025, np.bool_(True), 10, 12, feats)
    d = r.to_dict()
    assert json.loads(json.dumps(d)) == d
    assert d["features"][1]["p_value"] is None and d["features"][0]["drift"] is True
    assert type(d["statistic"]) is float and type(d["drift"]) is bool
    assert "features=<2 features>" in repr(r)
    with pytest.raises(AttributeError):
        r.drift = False  # frozen
    assert DriftResult("psi", 0.3, None, 0.25, True, 5, 5).to_dict()["features"] is None


def test_base_detector_params_and_subclassing():
    class MeanShift(DriftDetector):  # what another module writes on the contract
        name = "mean"

        def __init__(self, alpha: float = 0.05, scale: float = 1.0):
            self.alpha, self.scale = alpha, scale

        def _fit(self, t):
            self.mean_ = t.matrix().mean(axis=0)

        def _predict(self, t):
            s = float(np.abs(t.matrix().mean(axis=0) - self.mean_).max())
            return DriftResult(self.name, s, None, self.scale, s > self.scale, self.n_reference_, t.n)

    d = MeanShift(scale=0.5)
    assert d.get_params() == {"alpha": 0.05, "scale": 0.5}
    assert repr(d) == "MeanShift(alpha=0.05, scale=0.5)"
    assert MeanShift(**d.get_params()).get_params() == d.get_params()
    assert d.set_params(scale=2.0) is d and d.scale == 2.0
    with pytest.raises(ConfigError, match="no parameter"):
        d.set_params(bandwidth=1)
    with pytest.raises(ConfigError, match="not fitted"):
        d.predict(np.zeros((3, 2)))
    r = d.fit(np.zeros((4, 2))).predict(np.full((3, 2), 3.0))
    assert r.drift and r.n_reference == 4 and r.n == 3 and list(d.feature_names_in_) == ["x0", "x1"]


BAD = [
    ("single-row reference", lambda d: d.fit(np.zeros((1, 3))), DataError, "X_ref has 1 row"),
    ("empty reference", lambda d: d.fit(np.zeros((0, 3))), DataError, "X_ref has 0 row"),
    ("no features", lambda d: d.fit(np.zeros((5, 0))), DataError, "no features"),
    ("1-D reference", lambda d: d.fit(np.zeros(5)), DataError, "reshape"),
    ("3-D reference", lambda d: d.fit(np.zeros((5, 2, 2))), DataError, "shape"),
    ("string reference", lambda d: d.fit("abc"), DataError, "got str"),
    ("None reference", lambda d: d.fit(None), DataError, "got NoneType"),
    ("NaN in reference", lambda d: d.fit(np.array([[1.0, np.nan], [2.0, 3.0]])), DataError, "NaN) in numeric feature 'x1'"),
    ("inf in reference", lambda d: d.fit(np.array([[1.0, np.inf], [2.0, 3.0]])), DataError, "infinite"),
    ("datetime column", lambda d: d.fit(pd.DataFrame({"t": pd.date_range("2020", periods=3)})), DataError, "times to numbers"),
    ("categorical for KS", lambda d: d.fit(pd.DataFrame({"c": list("abc")})), DataError, "categorical feature(s) ['c']"),
    ("duplicate columns", lambda d: d.fit(pd.DataFrame(np.zeros((3, 2)), columns=["a", "a"])), DataError, "duplicate"),
    ("nullable NA", lambda d: d.fit(pd.DataFrame({"a": pd.array([1, None, 3], dtype="Int64")})), DataError, "NaN"),
]


@pytest.mark.parametrize("case,call,exc,msg", BAD, ids=[b[0] for b in BAD])
def test_bad_reference(case, call, exc, msg):
    with pytest.raises(exc) as e:
        call(KSDrift())
    assert msg in str(e.value)


def test_bad_window():
    rng = np.random.default_rng(0)
    ref = pd.DataFrame({"a": rng.normal(size=20), "b": rng.normal(size=20)})
    d = KSDrift().fit(ref)
    with pytest.raises(DataError, match="X has 0 row"):
        d.predict(ref.iloc[:0])
    with pytest.raises(SchemaError, match=r"missing \['b'\], unexpected \['c'\]"):
        d.predict(ref.rename(columns={"b": "c"}))
    with pytest.raises(DataError, match="3 feature"):
        d.predict(np.zeros((5, 3)))
    with pytest.raises(DataError, match="NaN\\) in numeric feature 'b'"):
        d.predict(ref.assign(b=np.nan))
    with pytest.raises(DataError, match="'a' is categorical, but it was numeric"):
        d.predict(ref.assign(a="x"))
    # same columns in another order, and a plain array of the right width, are the same window
    r1, r2, r3 = d.predict(ref[["b", "a"]] + 1), d.predict(ref + 1), d.predict((ref + 1).to_numpy())
    assert r1.to_dict() == r2.to_dict() == r3.to_dict()


@pytest.mark.parametrize("bad", [0, 1, -0.1, 1.5, True, "0.05", None])
def test_bad_alpha(bad):
    with pytest.raises(ConfigError, match="alpha"):
        KSDrift(alpha=bad).fit(np.zeros((3, 1)))


def test_bad_options():
    with pytest.raises(ConfigError, match="correction"):
        KSDrift(correction="holm").fit(np.zeros((3, 1)))
    with pytest.raises(ConfigError, match="alternative"):
        KSDrift(alternative="both").fit(np.zeros((3, 1)))


# ---------------------------------------------------------------- KS equal to scipy

def test_ks_equal_to_scipy_randomized():
    rng = np.random.default_rng(15)
    for case in range(300):
        n_ref, n = int(rng.integers(2, 80)), int(rng.integers(1, 80))
        k = int(rng.integers(1, 4))
        ref = [_draw(rng, n_ref) for _ in range(k)]
        x = [_draw(rng, n) if rng.random() < 0.5 else rng.choice(ref[j], n) for j in range(k)]
        alternative = ["two-sided", "less", "greater"][case % 3]
        method = ["auto", "exact", "asymp"][(case // 3) % 3]
        X_ref = pd.DataFrame({f"f{j}": ref[j] for j in range(k)})
        X = pd.DataFrame({f"f{j}": x[j] for j in range(k)})
        r = KSDrift(correction=None, alternative=alternative, method=method).fit(X_ref).predict(X)
        for j, row in enumerate(r.features.itertuples()):
            want = stats.ks_2samp(ref[j], x[j], alternative=alternative, method=method)
            assert row.statistic == want.statistic and row.p_value == want.pvalue, (case, j)
        if k == 1:
            assert (r.statistic, r.p_value) == (r.features.statistic[0], r.features.p_value[0])


# ---------------------------------------------------------------- corrections

def test_corrections_equal_statsmodels():
    from statsmodels.stats.multitest import multipletests
    rng = np.random.default_rng(1)
    for _ in range(300):
        k = int(rng.integers(1, 30))
        p = rng.random(k) ** rng.uniform(0.3, 4)
        if rng.random() < 0.3:
            p[: k // 2] = p[0]  # ties
        alpha = float(rng.uniform(0.001, 0.3))
        for corr, method in [("bonferroni", "bonferroni"), ("fdr", "fdr_bh")]:
            assert ((p <= corrected_threshold(p, alpha, corr)) == multipletests(p, alpha, method)[0]).all()
        assert corrected_threshold(p, alpha, None) == alpha


# ---------------------------------------------------------------- the other per-feature tests equal to scipy

from mlsys.monitor.drift import (  # noqa: E402
    DRIFT_CATEGORICAL,
    DRIFT_NUMERIC,
    ADDrift,
    ChiSquaredDrift,
    ClassifierDrift,
    CvMDrift,
    LSDDDrift,
    MMDDrift,
    PSIDrift,
    UnivariateDrift,
    flights_drift_data,
    median_sigma,
    mmd2_permutations,
    permutation_p_value,
    rejection_rate,
)


def _cats(rng, n, k):
    pool = np.array(["a", "b", "ç", "", "d\n", "東京", "e"])[:k]
    return rng.choice(pool, n, p=rng.dirichlet(np.ones(k)))


def test_chi2_equal_to_scipy_randomized():
    rng = np.random.default_rng(3)
    for case in range(300):
        n_ref, n = int(rng.integers(2, 60)), int(rng.integers(1, 60))
        ref, x = _cats(rng, n_ref, int(rng.integers(1, 7))), _cats(rng, n, int(rng.integers(1, 7)))
        det = ChiSquaredDrift(correction=None, unseen="pool", min_expected=0).fit(pd.DataFrame({"c": ref}))
        r = det.predict(pd.DataFrame({"c": x}))
        cats = list(pd.unique(ref))
        unseen = ~pd.Series(x).isin(cats).to_numpy()
        table = np.array([[np.sum(ref == c) for c in cats] + [0], [np.sum(x == c) for c in cats] + [unseen.sum()]], float)
        table = table[:, table.sum(0) > 0]
        if table.shape[1] < 2:
            assert (r.statistic, r.p_value) == (0.0, 1.0)
            continue
        want = stats.chi2_contingency(table, correction=False)
        assert r.statistic == pytest.approx(want.statistic, rel=1e-12, abs=1e-12), case
        assert r.p_value == pytest.approx(want.pvalue, rel=1e-10, abs=1e-14), case


def test_chi2_unseen_categories_refused_or_pooled():
    ref = pd.DataFrame({"carrier": ["AA", "UA", "AA", "DL"], "origin": ["JFK"] * 4})
    x = pd.DataFrame({"carrier": ["AA", "OO", "ZZ", "OO"], "origin": ["JFK", "JFK", "JFK", "EWR"]})
    with pytest.raises(DataError, match=r"X feature 'carrier' has 2 categories unseen in the reference X_ref: \['OO', 'ZZ'\]"):
        ChiSquaredDrift().fit(ref).predict(x)
    with pytest.raises(DataError, match="'origin' has 1 category unseen"):
        UnivariateDrift().fit(ref).predict(x.assign(carrier="AA"))
    r = ChiSquaredDrift(unseen="pool", min_expected=0).fit(ref).predict(x)
    assert r.features.p_value.notna().all()
    with pytest.raises(ConfigError, match="unseen"):
        ChiSquaredDrift(unseen="ignore").fit(ref)
    with pytest.raises(DataError, match="missing value"):
        ChiSquaredDrift().fit(ref.assign(origin=[None, "JFK", "JFK", "JFK"]))


def test_chi2_pools_sparse_categories():
    # one common and many rare categories: without pooling the chi-squared approximation is off
    rng = np.random.default_rng(0)
    cats = ["x"] + [f"r{i}" for i in range(30)]
    p = np.r_[0.7, np.full(30, 0.01)]
    ref, x = rng.choice(cats, 300, p=p), rng.choice(cats, 300, p=p)
    raw = ChiSquaredDrift(min_expected=0, unseen="pool").fit(ref.reshape(-1, 1)).predict(x.reshape(-1, 1))
    pooled = ChiSquaredDrift(unseen="pool").fit(ref.reshape(-1, 1)).predict(x.reshape(-1, 1))
    assert raw.p_value != pooled.p_value


def test_cvm_and_ad_equal_to_scipy_randomized():
    import warnings
    rng = np.random.default_rng(4)
    for case in range(150):
        n_ref, n = int(rng.integers(2, 60)), int(rng.integers(2, 60))
        ref, x = _draw(rng, n_ref), (_draw(rng, n) if rng.random() < 0.5 else rng.choice(_draw(rng, n_ref), n))
        r = CvMDrift().fit(ref.reshape(-1, 1)).predict(x.reshape(-1, 1))
        # float32 input is tested in float64 (scipy would compute CvM in float32): equal to scipy on float64
        want = stats.cramervonmises_2samp(ref.astype(float), x.astype(float))
        assert (r.statistic, r.p_value) == (want.statistic, want.pvalue), case
        if ref.dtype == np.float32:
            assert r.statistic == pytest.approx(stats.cramervonmises_2samp(ref, x).statistic, rel=1e-5)
        r = ADDrift().fit(ref.reshape(-1, 1)).predict(x.reshape(-1, 1))
        if np.ptp(np.r_[ref, x]) == 0:
            assert (r.statistic, r.p_value) == (0.0, 1.0)
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            want = stats.anderson_ksamp([ref.astype(float), x.astype(float)], variant="midrank")
        assert (r.statistic, r.p_value) == (want.statistic, want.pvalue), case


def test_ad_permutations_and_guards():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(50, 3))
    with pytest.raises(ConfigError, match="can never give a p-value"):
        ADDrift(n_permutations=20).fit(X)  # 1/21 > 0.05/3
    with pytest.raises(ConfigError, match="alpha"):
        ADDrift(alpha=0.3).fit(X)
    r = ADDrift(alpha=0.3, n_permutations=99, random_state=0).fit(X).predict(X + 1)
    assert r.drift and r.p_value == pytest.approx(0.01)


def test_univariate_mixed_uses_the_right_test():
    rng = np.random.default_rng(5)
    ref = pd.DataFrame({"a": rng.normal(size=80), "c": rng.choice(list("xyz"), 80), "b": rng.integers(0, 3, 80)})
    x = pd.DataFrame({"a": rng.normal(0.5, size=60), "c": rng.choice(list("xyz"), 60), "b": rng.integers(0, 3, 60)})
    for num_test, fn in [("ks", stats.ks_2samp), ("cvm", stats.cramervonmises_2samp)]:
        r = UnivariateDrift(numeric_test=num_test, correction="fdr").fit(ref).predict(x)
        f = r.features.set_index("feature")
        assert list(f.test) == [num_test, "chi2", num_test]
        assert f.p_value["a"] == fn(ref.a, x.a).pvalue and f.p_value["b"] == fn(ref.b, x.b).pvalue
        assert f.p_value["c"] == ChiSquaredDrift(correction=None).fit(ref[["c"]]).predict(x[["c"]]).p_value
        assert r.p_value == f.p_value.min() and r.drift == bool((f.p_value <= r.threshold).any())
    with pytest.raises(ConfigError, match="numeric_test"):
        UnivariateDrift(numeric_test="t").fit(ref)


def test_psi_by_hand():
    ref = np.arange(100, dtype=float).reshape(-1, 1)
    x = np.r_[np.zeros(50), np.full(50, 99.0)].reshape(-1, 1)
    r = PSIDrift(n_bins=10).fit(ref).predict(x)
    p = np.full(10, 0.1)
    q = np.r_[0.5, np.full(8, 1e-4), 0.5]
    assert r.statistic == pytest.approx(np.sum((q - p) * np.log(q / p)))
    assert r.drift and r.p_value is None and r.threshold == 0.25
    assert PSIDrift().fit(ref).predict(ref).statistic == pytest.approx(0.0)
    cats = pd.DataFrame({"c": list("aabb")})
    with pytest.raises(DataError, match="unseen"):
        PSIDrift().fit(cats).predict(pd.DataFrame({"c": list("abcc")}))
    r = PSIDrift(unseen="pool").fit(cats).predict(pd.DataFrame({"c": list("abcc")}))
    q = np.array([0.25, 0.25, 0.5]); p = np.array([0.5, 0.5, 1e-4])
    assert r.statistic == pytest.approx(np.sum((q - p) * np.log(q / p)))
    assert PSIDrift().fit(np.ones((10, 1))).predict(np.ones((5, 1))).statistic == 0.0  # constant: one bin
    for bad in [dict(threshold=0), dict(n_bins=1), dict(eps=-1), dict(unseen="x")]:
        with pytest.raises(ConfigError):
            PSIDrift(**bad).fit(ref)


# ---------------------------------------------------------------- permutation tests

def _mmd2_direct(K, idx_x, idx_y):
    m, n = len(idx_x), len(idx_y)
    kxx, kyy, kxy = K[np.ix_(idx_x, idx_x)], K[np.ix_(idx_y, idx_y)], K[np.ix_(idx_x, idx_y)]
    return (kxx.sum() - np.trace(kxx)) / (m * (m - 1)) + (kyy.sum() - np.trace(kyy)) / (n * (n - 1)) - 2 * kxy.mean()


def test_mmd_permutations_equal_brute_force():
    rng = np.random.default_rng(6)
    for case in range(20):
        m, n = int(rng.integers(2, 30)), int(rng.integers(2, 30))
        Z = rng.normal(size=(m + n, 3))
        K = np.exp(-((Z[:, None] - Z[None]) ** 2).sum(-1) / 2)
        stat, perms = mmd2_permutations(K, m, 30, np.random.default_rng(case))
        s = np.random.default_rng(case).random((30, m + n)).argsort(1)  # the same splits, drawn again

        assert stat == pytest.approx(_mmd2_direct(K, np.arange(m), np.arange(m, m + n)), abs=1e-12)
        want = [_mmd2_direct(K, row[:m], row[m:]) for row in s]
        np.testing.assert_allclose(perms, want, atol=1e-12)


def test_permutation_p_value_counts_the_observed_statistic():
    assert permutation_p_value(5.0, [1, 2, 3]) == 0.25  # never 0
    assert permutation_p_value(2.0, [1, 2, 3]) == 0.75  # ties count as at least as large
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 2))
    r = MMDDrift(n_permutations=99, random_state=0).fit(X).predict(X + 5)
    assert r.p_value == 0.01 and r.drift
    with pytest.raises(ConfigError, match="can never give a p-value"):
        MMDDrift(n_permutations=10).fit(X)
    with pytest.raises(ConfigError, match="n_permutations"):
        LSDDDrift(n_permutations=0).fit(X)
    with pytest.raises(ConfigError, match="sigma"):
        MMDDrift(sigma=-1.0).fit(X)


def test_mmd_is_scale_free_when_standardized_and_refuses_huge_pools(monkeypatch):
    rng = np.random.default_rng(1)
    X, Y = rng.normal(size=(60, 3)), rng.normal(0.3, size=(50, 3))
    a = MMDDrift(random_state=0).fit(X).predict(Y)
    scale = np.array([1.0, 1000.0, 0.001])
    b = MMDDrift(random_state=0).fit(X * scale).predict(Y * scale)
    assert a.statistic == pytest.approx(b.statistic, rel=1e-9) and a.p_value == b.p_value
    import mlsys.monitor.drift as drift
    monkeypatch.setattr(drift, "MAX_KERNEL_ROWS", 100)
    with pytest.raises(DataError, match="110 rows together"):
        MMDDrift().fit(X).predict(Y)
    assert median_sigma(np.ones((5, 2))) == 1.0  # all rows equal: no scale to take


def test_lsdd_statistic_equals_direct_computation():
    rng = np.random.default_rng(2)
    X, Y = rng.normal(size=(200, 4)), rng.normal(0.5, size=(80, 4))
    det = LSDDDrift(random_state=0, n_permutations=19).fit(X)
    r = det.predict(Y)
    assert det.centers_.shape == (10, 4) and r.drift
    # h and the permuted h vectors: the batched matrix product equals the means taken row by row
    from mlsys.monitor.drift import _split_indicators
    k = np.vstack([det._k_ref, det._kernel(Y)])
    s = _split_indicators(len(k), len(det._k_ref), 5, np.random.default_rng(0))
    h = (s.T @ k) * (1 / 190 + 1 / 80) - k.sum(0) / 80
    for j in range(s.shape[1]):
        np.testing.assert_allclose(h[j], k[s[:, j] == 1].mean(0) - k[s[:, j] == 0].mean(0), atol=1e-12)
    with pytest.raises(ConfigError, match="n_kernel_centers"):
        LSDDDrift(n_kernel_centers=200).fit(X)


def test_classifier_drift_detects_and_refuses_bad_params():
    from sklearn.linear_model import LogisticRegression
    rng = np.random.default_rng(3)
    X = pd.DataFrame({"a": rng.normal(size=200), "c": rng.choice(list("xy"), 200)})
    Y = pd.DataFrame({"a": rng.normal(1.0, size=200), "c": rng.choice(list("xyz"), 200)})  # z: unseen, pooled
    for metric in ["auc", "accuracy"]:
        r = ClassifierDrift(metric=metric, random_state=0).fit(X).predict(Y)
        assert r.drift and r.statistic > 0.6
    r = ClassifierDrift(model=LogisticRegression(), n_folds=3, random_state=0).fit(X[["a"]]).predict(Y[["a"]])
    assert r.drift
    for bad in [dict(metric="f1"), dict(n_folds=1), dict(train_size=1.5), dict(model=object())]:
        with pytest.raises(ConfigError):
            ClassifierDrift(**bad).fit(X)


# ---------------------------------------------------------------- calibrated on real flights (item 3)

@pytest.fixture(scope="module")
def flights():
    return flights_drift_data("2013-01-01", "2013-01-31"), flights_drift_data("2013-07-01", "2013-07-31")


def _calibrated(r, alpha=0.05):
    "The rate's 95% interval holds alpha, or lies below it (conservative: discrete data makes KS and chi2 so)."
    return r["ci_low"] <= alpha


def test_false_positive_rate_within_sampling_error(flights):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    jan, _ = flights
    num, cat = DRIFT_NUMERIC, DRIFT_CATEGORICAL
    exact = {  # tests whose p-value is exact on any data: the interval must hold alpha
        "humid ks": rejection_rate(KSDrift(), jan[["humid"]], n=200, n_draws=200, random_state=1),
        "mmd": rejection_rate(MMDDrift(n_permutations=39), jan[num], n=100, n_draws=150, random_state=2),
        "lsdd": rejection_rate(LSDDDrift(n_permutations=39), jan[num], n=200, n_draws=150, random_state=3),
        "chi2": rejection_rate(ChiSquaredDrift(unseen="pool"), jan[cat], n=200, n_draws=200, random_state=4),
        "classifier": rejection_rate(ClassifierDrift(model=make_pipeline(StandardScaler(), LogisticRegression())),
                                     jan[num], n=100, n_draws=60, random_state=5),
    }
    for name, r in exact.items():
        assert r["ci_low"] <= 0.05 <= r["ci_high"], (name, r)
    corrected = {  # Bonferroni/BH over correlated features: at most alpha
        "ks bonferroni": rejection_rate(KSDrift(), jan[num], n=200, n_draws=200, random_state=6),
        "univariate fdr": rejection_rate(UnivariateDrift(correction="fdr", unseen="pool"), jan, n=200, n_draws=150,
                                         random_state=7),
    }
    for name, r in corrected.items():
        assert _calibrated(r), (name, r)
    # scipy's Anderson-Darling table is anti-conservative on a tied feature; the permutation p-value is not
    assert rejection_rate(ADDrift(), jan[["precip"]], n=200, n_draws=200, random_state=8)["ci_low"] > 0.05
    assert _calibrated(rejection_rate(ADDrift(n_permutations=39), jan[["precip"]], n=200, n_draws=100, random_state=8))


def test_power_against_january_vs_july(flights):
    jan, jul = flights
    cols = DRIFT_NUMERIC[:5]
    for det, n, least in [(KSDrift(), 200, 0.4), (MMDDrift(n_permutations=39), 200, 0.2), (CvMDrift(), 200, 0.4)]:
        r = rejection_rate(det, jan[cols], n=n, n_draws=40, shifted=jul[cols])
        assert r["rate"] >= least, r
    assert rejection_rate(KSDrift(), jan[DRIFT_NUMERIC], n=20, n_draws=40, shifted=jul[DRIFT_NUMERIC])["rate"] == 1.0
    with pytest.raises(DataError, match="needs 400"):
        rejection_rate(KSDrift(), jan.iloc[:300], n=200)


def test_real_result_to_json(flights):
    jan, jul = flights
    r = UnivariateDrift(unseen="pool").fit(jan.iloc[:500]).predict(jul.iloc[:500])
    d = json.loads(json.dumps(r.to_dict()))
    assert d["drift"] and len(d["features"]) == len(jan.columns)


def test_import_is_light():
    import subprocess
    import sys
    code = ("import sys, mlsys.monitor.drift; bad = [m for m in ['scipy', 'sklearn', 'torch', 'matplotlib'] "
            "if m in sys.modules]; assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
