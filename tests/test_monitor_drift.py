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
