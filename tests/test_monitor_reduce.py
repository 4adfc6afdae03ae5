"""mlsys.monitor.reduce: the reducers' scikit-learn contract, shapes, dtypes and seeds; bad input; the learned-kernel
MMD's permutation test; calibration under no drift (repeated draws from the same real flights month) and power
under a known real shift (January vs July flights), for each reducer in front of `KSDrift` and for `LearnedKernelDrift`.

The module is imported by tests/test_estimators.py for its ESTIMATORS: nothing here may import torch at module level.
"""
import importlib.util
import sys

import numpy as np
import pandas as pd
import pytest
from scipy.stats import binom
from sklearn.linear_model import LogisticRegression
from sklearn.utils.estimator_checks import parametrize_with_checks

from mlsys.core import ConfigError, DataError
from mlsys.monitor.drift import KSDrift
from mlsys.monitor.reduce import (AutoencoderReducer, BBSDReducer, LearnedKernelDrift, PCAReducer, RandomProjectionReducer,
                                  ReducedDrift)

HAS_TORCH = importlib.util.find_spec("torch") is not None

ESTIMATORS = [  # checked by scikit-learn's parametrize_with_checks
    PCAReducer(n_components=2),
    PCAReducer(n_components=3, standardize=False),
    RandomProjectionReducer(n_components=3),
    BBSDReducer(LogisticRegression(max_iter=200)),
] + ([AutoencoderReducer(n_components=2, hidden=8)] if HAS_TORCH else [])


@parametrize_with_checks(ESTIMATORS)
def test_sklearn_contract(estimator, check):
    check(estimator)


def _torch():
    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)
    return torch


# ---- real data: ten days of January and ten of July, the pipeline's features one-hot encoded on January -------------

@pytest.fixture(scope="module")
def flights():
    "(January matrix, July matrix, names, raw January features, raw July features, labels) of the pipeline's flights."
    from mlsys.datasets import load_flights, load_planes, load_weather
    from mlsys.deploy.compress import flights_arrays
    from mlsys.pipeline import build_features
    w, p = load_weather(), load_planes()
    feats = pd.concat([build_features(load_flights(start=s, end=e), w, p)
                       for s, e in [("2013-01-01", "2013-01-11"), ("2013-07-01", "2013-07-11")]], ignore_index=True)
    a = flights_arrays(feats=feats, split_date="2013-07-01")
    cut = feats["sched_dep_local"].dt.tz_localize(None) < pd.Timestamp("2013-07-01")
    jan, jul = feats[cut & feats["is_late"].notna()], feats[~cut & feats["is_late"].notna()]
    return a.X_train.astype(np.float64), a.X_test.astype(np.float64), a.names, jan, jul


def _draws(n_pool: int, n: int, reps: int, seed: int):
    "`reps` pairs of disjoint random row sets of size n from a pool of n_pool rows (the reference gets 2n)."
    rng = np.random.default_rng(seed)
    for _ in range(reps):
        idx = rng.permutation(n_pool)
        yield idx[:2 * n], idx[2 * n:3 * n]


def _fpr_bound(reps: int, alpha: float) -> int:
    "The most false positives of `reps` tests at level `alpha` that a binomial leaves above 1 - 0.001."
    return int(binom.ppf(0.999, reps, alpha))


# ---- shapes, dtypes, names, seeds -------------------------------------------------------------------------------------

def _reducers():
    out = [PCAReducer(4), RandomProjectionReducer(4)]
    if HAS_TORCH:
        out.append(AutoencoderReducer(4, hidden=16))
    return out


@pytest.mark.parametrize("reducer", _reducers(), ids=lambda r: type(r).__name__)
def test_reducer_shapes_dtypes_names(reducer, flights):
    jan, jul, names, *_ = flights
    frame = pd.DataFrame(jan[:500], columns=names)
    r = reducer.set_output(transform="pandas").fit(frame)
    out = r.transform(pd.DataFrame(jul[:300], columns=names))
    assert out.shape == (300, 4) and (out.dtypes == np.float64).all()
    assert list(out.columns) == list(r.get_feature_names_out()) and len(set(out.columns)) == 4
    assert np.isfinite(out.to_numpy()).all()
    arr = type(reducer)(**reducer.get_params()).fit(jan[:500].astype(np.float32)).transform(jul[:300].astype(np.float32))
    assert isinstance(arr, np.ndarray) and arr.dtype == np.float64 and arr.shape == (300, 4)


def test_pca_more_components_than_rows_or_columns():
    X = np.random.default_rng(0).normal(size=(5, 3))
    r = PCAReducer(n_components=10).fit(X)
    assert r.n_components_ == 3 and r.transform(X).shape == (5, 3)
    np.testing.assert_allclose(r.explained_variance_ratio_.sum(), 1.0)


def test_random_projection_seeded():
    X = np.random.default_rng(0).normal(size=(50, 12))
    a, b = RandomProjectionReducer(3, random_state=7).fit(X), RandomProjectionReducer(3, random_state=7).fit(X)
    np.testing.assert_array_equal(a.transform(X), b.transform(X))
    assert not np.allclose(a.components_, RandomProjectionReducer(3, random_state=8).fit(X).components_)
    np.testing.assert_allclose(a.components_.var(), 1 / 3, rtol=0.5)  # entries N(0, 1/k)


@pytest.mark.torch
def test_autoencoder_seeded_and_leaves_global_rng_alone():
    torch = _torch()
    X = np.random.default_rng(0).normal(size=(40, 6))
    torch.manual_seed(123)
    before = torch.rand(3)
    torch.manual_seed(123)
    a = AutoencoderReducer(3, hidden=8, random_state=5).fit(X)
    np.testing.assert_array_equal(torch.rand(3), before)  # the global torch RNG is untouched
    b = AutoencoderReducer(3, hidden=8, random_state=5).fit(X)
    np.testing.assert_array_equal(a.transform(X), b.transform(X))
    assert not np.allclose(a.transform(X), AutoencoderReducer(3, hidden=8, random_state=6).fit(X).transform(X))
    assert "torch" in sys.modules  # (imported by fit, not by the module: see test_module_imports_without_torch)


def test_module_imports_without_torch():
    import subprocess
    code = "import sys, mlsys.monitor.reduce; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


# ---- BBSD ---------------------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def hgb(flights):
    "The pipeline's gradient boosting (fewer rounds), fitted on the first 2,000 January rows of the raw features."
    from mlsys.pipeline import FEATURES, LABEL, make_model
    jan = flights[3]
    return make_model("hgb", params={"max_iter": 30}).fit(jan[FEATURES].iloc[:2000], jan[LABEL].iloc[:2000].astype(bool))


def test_bbsd_prefit_model_reads_raw_features(hgb, flights):
    from mlsys.pipeline import FEATURES
    jan, jul = flights[3][FEATURES], flights[4][FEATURES]
    assert jan.isna().any().any() and (jan.dtypes == "category").any()  # categories and NaN go to the model as they are
    r = BBSDReducer(hgb, unseen="model").set_output(transform="pandas").fit(jan.iloc[2000:])
    out = r.transform(jul.iloc[:200])
    assert list(out.columns) == ["proba_True"] and out.shape == (200, 1)
    np.testing.assert_allclose(out["proba_True"], hgb.predict_proba(jul.iloc[:200])[:, 1])
    assert r.model_ is hgb  # used as it is, never refitted


def test_bbsd_unfitted_model_is_fitted_on_the_reference():
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(80, 3)), np.repeat([0, 1, 2], [30, 30, 20])
    r = BBSDReducer(LogisticRegression(max_iter=300)).fit(X, y)
    assert r.transform(X).shape == (80, 3) and list(r.get_feature_names_out()) == ["proba_0", "proba_1", "proba_2"]
    with pytest.raises(DataError, match="requires y"):
        BBSDReducer(LogisticRegression()).fit(X)


@pytest.mark.torch
def test_bbsd_torch_layer_and_softmax():
    torch = _torch()
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(5, 7), torch.nn.ReLU(), torch.nn.Linear(7, 3))
    X = np.random.default_rng(0).normal(size=(20, 5))
    hidden = BBSDReducer(net, layer="1").fit(X)
    assert hidden.transform(X).shape == (20, 7) and (hidden.transform(X) >= 0).all()  # the ReLU's output
    soft = BBSDReducer(net).fit(X).transform(X)
    np.testing.assert_allclose(soft.sum(1), 1.0, rtol=1e-6)
    with pytest.raises(ConfigError, match="not a sub-module"):
        BBSDReducer(net, layer="nope").fit(X)


# ---- bad input ----------------------------------------------------------------------------------------------------------

def _all_detectors():
    out = [ReducedDrift(PCAReducer(2), KSDrift()), ReducedDrift(RandomProjectionReducer(2), KSDrift())]
    if HAS_TORCH:
        out.append(LearnedKernelDrift(epochs=2, n_permutations=19))
    return out


@pytest.mark.parametrize("make", [lambda: PCAReducer(2), lambda: RandomProjectionReducer(2)]
                         + ([lambda: AutoencoderReducer(2)] if HAS_TORCH else []), ids=["pca", "rp", "ae"][:2 + HAS_TORCH])
def test_reducer_bad_input(make):
    X = pd.DataFrame(np.random.default_rng(0).normal(size=(30, 4)), columns=list("abcd"))
    with pytest.raises(DataError, match="1 sample"):
        make().fit(X.iloc[:1])
    with pytest.raises(DataError, match="3 features, but .* is expecting 4"):
        make().fit(X.to_numpy()).transform(X.to_numpy()[:, :3])
    r = make().fit(X)
    with pytest.raises(DataError, match=r"NaN in columns \['b'\]"):
        r.transform(X.assign(b=np.where(np.arange(30) == 3, np.nan, X["b"])))
    with pytest.raises(DataError, match=r"non-numeric columns \['c'\].*one-hot"):
        make().fit(X.assign(c=pd.Categorical(["x", "y"] * 15)))
    with pytest.raises(DataError, match="NaN"):
        make().fit(np.where(np.eye(30, 4) > 0, np.nan, X.to_numpy()))
    with pytest.raises(ConfigError, match="n_components"):
        type(make())(n_components=0).fit(X)


def test_bbsd_prefit_bad_input(hgb, flights):
    from mlsys.pipeline import FEATURES
    jan = flights[3][FEATURES]
    r = BBSDReducer(hgb).fit(jan.iloc[:100])
    with pytest.raises(DataError, match="20 features, but BBSDReducer is expecting 21"):
        r.transform(jan.iloc[:10, :20])
    with pytest.raises(DataError, match="differ from the reference"):
        r.transform(jan.iloc[:10].rename(columns={"temp": "temperature"}))
    with pytest.raises(DataError, match="1 sample"):
        BBSDReducer(hgb).fit(jan.iloc[:1])
    with pytest.raises(ConfigError, match="predict_proba"):
        BBSDReducer(object()).fit(jan.iloc[:10])
    few = jan[jan["dest"].isin(["ATL", "ORD"])].iloc[:50]  # a reference with two destinations
    with pytest.raises(DataError, match="column '(carrier|dest)' has .* unseen in the reference"):
        BBSDReducer(hgb).fit(few).transform(jan.iloc[:100])
    out = BBSDReducer(hgb, unseen="model").fit(few).transform(jan.iloc[:100])  # left to the model's own handling
    np.testing.assert_allclose(out[:, 0], hgb.predict_proba(jan.iloc[:100])[:, 1])
    with pytest.raises(ConfigError, match="unseen"):
        BBSDReducer(hgb, unseen="pool").fit(few)


@pytest.mark.parametrize("det", _all_detectors(), ids=lambda d: repr(d)[:40])
def test_detector_bad_input(det):
    X = np.random.default_rng(0).normal(size=(40, 4))
    with pytest.raises(DataError, match="1 row|1 sample"):
        type(det)(**det.get_params()).fit(X[:1])
    det.fit(X)
    with pytest.raises(DataError, match="3 feature"):
        det.predict(X[:20, :3])
    with pytest.raises(DataError, match="NaN"):
        det.predict(np.where(np.eye(20, 4) > 0, np.nan, X[:20]))


def test_reduced_drift_refuses_parts_and_unfitted_use():
    X = np.random.default_rng(0).normal(size=(40, 4))
    with pytest.raises(ConfigError, match="not fitted"):
        ReducedDrift(PCAReducer(2), KSDrift()).predict(X)
    with pytest.raises(ConfigError, match="DriftDetector"):
        ReducedDrift(PCAReducer(2), object()).fit(X)
    with pytest.raises(ConfigError, match="fit_fraction"):
        ReducedDrift(PCAReducer(2), KSDrift(), fit_fraction=1.0).fit(X)
    with pytest.raises(DataError, match="each needs at least 2"):
        ReducedDrift(PCAReducer(2), KSDrift()).fit(X[:3])


@pytest.mark.torch
def test_learned_kernel_bad_input():
    _torch()
    X = np.random.default_rng(0).normal(size=(40, 4))
    with pytest.raises(DataError, match="at least 4"):
        LearnedKernelDrift(epochs=2).fit(X[:3])
    det = LearnedKernelDrift(epochs=2, n_permutations=19).fit(X)
    with pytest.raises(DataError, match="3 row"):
        det.predict(X[:3])
    for bad in [{"train_fraction": 1.0}, {"n_permutations": 0}, {"hidden": 5}, {"lr": -1.0}, {"alpha": 2}, {"n_permutations": 9}]:
        with pytest.raises(ConfigError):
            LearnedKernelDrift(**bad).fit(X)


# ---- calibration: false positives under no drift, over repeated draws from one real month --------------------------

@pytest.mark.parametrize("make", [lambda i: PCAReducer(4), lambda i: RandomProjectionReducer(4, random_state=i)]
                         + ([lambda i: AutoencoderReducer(4, random_state=i)] if HAS_TORCH else []),
                         ids=["pca", "rp", "ae"][:2 + HAS_TORCH])
def test_reduced_ks_calibrated_under_no_drift(make, flights):
    "Each draw: a new reference and window from the same rows, a new projection/encoder seed, a new reference split."
    jan = flights[0]
    reps, alpha = 100, 0.05
    fp = sum(ReducedDrift(make(i), KSDrift(alpha=alpha), random_state=i).fit(jan[ref]).predict(jan[x]).drift
             for i, (ref, x) in enumerate(_draws(len(jan), 100, reps, seed=1)))
    assert fp <= _fpr_bound(reps, alpha), f"{fp} false positives in {reps} tests at alpha={alpha}"


def test_reduced_drift_splits_the_reference_only_for_learned_maps(flights):
    "PCA (a map learned from the data) is fitted on half the reference and tested with the other half; projections not."
    jan = flights[0][:300]
    pca = ReducedDrift(PCAReducer(4), KSDrift()).fit(jan)
    assert pca.fit_fraction_ == 0.5 and pca.detector_.n_reference_ == 150
    rp = ReducedDrift(RandomProjectionReducer(4), KSDrift()).fit(jan)
    assert rp.fit_fraction_ == 0.0 and rp.detector_.n_reference_ == 300
    same = ReducedDrift(PCAReducer(4), KSDrift(), fit_fraction=0.0).fit(jan)
    assert same.detector_.n_reference_ == 300
    a, b = (ReducedDrift(PCAReducer(4), KSDrift(), random_state=3).fit(jan).predict(flights[1][:100]) for _ in range(2))
    assert a.p_value == b.p_value  # the split is seeded


@pytest.mark.torch
def test_learned_kernel_calibrated_under_no_drift(flights):
    _torch()
    jan = flights[0]
    reps, alpha = 24, 0.1
    ps = [LearnedKernelDrift(alpha=alpha, epochs=15, n_permutations=49, hidden=(16,), out=8, random_state=i)
          .fit(jan[ref[:80]]).predict(jan[x[:80]]).p_value for i, (ref, x) in enumerate(_draws(len(jan), 80, reps, seed=3))]
    assert sum(p <= alpha for p in ps) <= _fpr_bound(reps, alpha), ps
    assert all(abs(p * 50 - round(p * 50)) < 1e-9 and p >= 1 / 50 for p in ps)


# ---- power: January vs July ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("make", [lambda: PCAReducer(4), lambda: RandomProjectionReducer(4)]
                         + ([lambda: AutoencoderReducer(4)] if HAS_TORCH else []), ids=["pca", "rp", "ae"][:2 + HAS_TORCH])
def test_reduced_ks_detects_january_vs_july(make, flights):
    jan, jul, names = flights[:3]
    rng = np.random.default_rng(4)
    hits = []
    for i in range(10):
        ref, x = rng.choice(len(jan), 200, replace=False), rng.choice(len(jul), 100, replace=False)
        r = ReducedDrift(make(), KSDrift(), random_state=i).fit(pd.DataFrame(jan[ref], columns=names))
        res = r.predict(pd.DataFrame(jul[x], columns=names))
        hits.append(res.drift)
    assert sum(hits) >= 9, hits
    assert res.detector.endswith("4+ks") and list(res.features["feature"]) == [f"{res.detector[:2]}{j}" for j in range(4)]
    assert res.to_dict()["detector"] == res.detector


def test_bbsd_detects_january_vs_july(hgb, flights):
    from mlsys.pipeline import FEATURES
    jan, jul = flights[3][FEATURES], flights[4][FEATURES]
    det = ReducedDrift(BBSDReducer(hgb, unseen="model"), KSDrift()).fit(jan.iloc[2000:2600])  # July has new carriers
    assert det.fit_fraction_ == 0.0  # a prefit model learns nothing from the reference
    assert det.predict(jul.iloc[:300]).drift and det.predict(jul.iloc[:300]).detector == "bbsd+ks"


@pytest.mark.torch
def test_learned_kernel_detects_january_vs_july_and_is_reproducible(flights):
    _torch()
    jan, jul = flights[:2]
    make = lambda: LearnedKernelDrift(epochs=30, n_permutations=99, random_state=0).fit(jan[:200])
    a, b = make().predict(jul[:200]), make().predict(jul[:200])
    assert a.drift and a.p_value == pytest.approx(0.01) and a.detector == "learned_kernel_mmd"
    assert (a.statistic, a.p_value) == (b.statistic, b.p_value)  # same seed, same result
