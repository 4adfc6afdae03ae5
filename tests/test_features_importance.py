"""Feature importance (permutation, drop-column) and generalization (coverage, PSI/KS, unseen values)."""
import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn.inspection import permutation_importance as sk_permutation_importance
from sklearn.linear_model import LinearRegression, LogisticRegression

from mlsys.core import ConfigError, DataError, SchemaError
from mlsys.datasets import load_flights, load_weather
from mlsys.features.importance import (
    UnseenValueFlagger,
    distribution_shift,
    drop_column_importance,
    feature_coverage,
    permutation_importance,
    psi,
)


@pytest.fixture(scope="module")
def flights_xy():
    f = load_flights("2013-05-01", "2013-05-20").dropna(subset=["is_late"]).sample(6000, random_state=0)
    X = pd.DataFrame({"hour": f["hour"].astype(float), "distance": f["distance"].astype(float) / 1000,
                      "jfk": (f["origin"] == "JFK").astype(float), "noise": np.random.default_rng(0).normal(size=len(f))})
    y = f["is_late"].to_numpy(bool)
    model = LogisticRegression(max_iter=500).fit(X.iloc[:4000], y[:4000])
    return model, X.iloc[4000:], y[4000:]


@pytest.fixture(scope="module")
def synthetic():
    rng = np.random.default_rng(0)
    x1 = rng.normal(size=3000)
    X = pd.DataFrame({"x1": x1, "x2": x1 + rng.normal(scale=0.01, size=3000), "x3": rng.normal(size=3000)})
    y = 2 * x1 + rng.normal(scale=0.5, size=3000)
    return X, y


@pytest.mark.filterwarnings("ignore:X does not have valid feature names")
@pytest.mark.parametrize("seed", [0, 7])
@pytest.mark.parametrize("scoring", ["average_precision", "neg_log_loss", None])
def test_permutation_equals_sklearn(flights_xy, seed, scoring):
    model, X, y = flights_xy
    ours = permutation_importance(model, X, y, scoring=scoring, n_repeats=4, random_state=seed)
    ref = sk_permutation_importance(model, X, y, scoring=scoring, n_repeats=4, random_state=seed)
    np.testing.assert_array_equal(ours.importances.to_numpy(), ref.importances)
    np.testing.assert_allclose(ours.summary().loc[X.columns, "mean"], ref.importances_mean)
    # the same on a NumPy array (columns named x0, x1, ...)
    arr = permutation_importance(model, X.to_numpy(), y, scoring=scoring, n_repeats=4, random_state=seed)
    ref_arr = sk_permutation_importance(model, X.to_numpy(), y, scoring=scoring, n_repeats=4, random_state=seed)
    np.testing.assert_array_equal(arr.importances.to_numpy(), ref_arr.importances)
    assert list(arr.importances.index) == ["x0", "x1", "x2", "x3"]


def test_confidence_interval_is_a_t_interval(flights_xy):
    model, X, y = flights_xy
    res = permutation_importance(model, X, y, scoring="neg_log_loss", n_repeats=6, random_state=1, confidence=0.9)
    s = res.summary()
    row = res.importances.loc["hour"].to_numpy()
    half = stats.t.ppf(0.95, 5) * row.std(ddof=1) / np.sqrt(6)
    np.testing.assert_allclose([s.loc["hour", "ci_low"], s.loc["hour", "ci_high"]], [row.mean() - half, row.mean() + half])
    # the interval covers the shuffling noise only (model and test set are fixed), so judge the
    # random probe by size: it costs far less than the real signal
    assert s.loc["hour", "significant"] and abs(s.loc["noise", "mean"]) < 0.05 * s.loc["hour", "mean"]
    assert s.index[0] == "hour"


def test_groups_and_correlated_features(synthetic):
    X, y = synthetic
    model = LinearRegression().fit(X, y)
    single = permutation_importance(model, X, y, n_repeats=3, random_state=0)
    grouped = permutation_importance(model, X, y, n_repeats=3, random_state=0, groups={"x1": ["x1"], "both": ["x1", "x2"]})
    np.testing.assert_array_equal(grouped.importances.loc["x1"], single.importances.loc["x1"])
    assert grouped.importances.loc["both"].mean() > single.importances.loc[["x1", "x2"]].mean(axis=1).max()
    # ablation: either copy can be dropped, the pair cannot
    drop = drop_column_importance(LinearRegression(), X.iloc[:2000], y[:2000], X.iloc[2000:], y[2000:], n_repeats=30,
                                  groups={"x1": ["x1"], "x2": ["x2"], "x3": ["x3"], "x1+x2": ["x1", "x2"]})
    s = drop.summary()
    assert abs(s.loc["x1", "mean"]) < 0.01 and abs(s.loc["x3", "mean"]) < 0.01
    assert s.loc["x1+x2", "mean"] > 0.5 and s.loc["x1+x2", "significant"]
    q = drop.importances.loc["x1+x2"].quantile([0.025, 0.975]).to_numpy()
    np.testing.assert_allclose([s.loc["x1+x2", "ci_low"], s.loc["x1+x2", "ci_high"]], q)
    assert np.isclose(drop.baseline_score, LinearRegression().fit(X.iloc[:2000], y[:2000]).score(X.iloc[2000:], y[2000:]))


def test_importance_bad_input(flights_xy, synthetic):
    model, X, y = flights_xy
    with pytest.raises(SchemaError, match=r"groups\['g'\]: unknown column\(s\) \['rain'\]"):
        permutation_importance(model, X, y, groups={"g": ["hour", "rain"]})
    with pytest.raises(ConfigError, match="n_repeats must be a positive integer"):
        permutation_importance(model, X, y, n_repeats=0)
    with pytest.raises(DataError, match="y has 3 rows but X has 2000"):
        permutation_importance(model, X, y[:3])
    Xs, ys = synthetic
    with pytest.raises(SchemaError, match="different columns"):
        drop_column_importance(LinearRegression(), Xs, ys, Xs.rename(columns={"x3": "z"}), ys)
    with pytest.raises(ConfigError, match="leaves no feature"):
        drop_column_importance(LinearRegression(), Xs, ys, Xs, ys, groups={"all": ["x1", "x2", "x3"]})
    with pytest.raises(DataError, match="X_test has no rows"):
        drop_column_importance(LinearRegression(), Xs, ys, Xs.head(0), ys[:0])
    with pytest.raises(DataError, match="y_train has 2999 rows but X_train has 3000"):
        drop_column_importance(LinearRegression(), Xs, ys[:-1], Xs, ys)
    with pytest.raises(DataError, match="y_test has 10 rows but X_test has 3000"):
        drop_column_importance(LinearRegression(), Xs, ys, Xs, ys[:10])


def test_feature_coverage_exact():
    a = pd.DataFrame({"u": [1.0, np.nan, 3.0, 4.0], "v": ["a", None, None, "b"]})
    b = pd.DataFrame({"u": [np.nan, np.nan], "v": ["a", "c"]})
    cov = feature_coverage({"train": a, "serve": b})
    assert cov.to_dict() == {"train": {"u": 0.75, "v": 0.5}, "serve": {"u": 0.0, "v": 1.0}}
    with pytest.raises(SchemaError, match=r"splits\['serve'\]: unknown column\(s\) \['w'\]"):
        feature_coverage({"train": a.assign(w=1), "serve": b})
    with pytest.raises(DataError, match="splits is empty"):
        feature_coverage({})


def test_psi_properties():
    rng = np.random.default_rng(1)
    a = rng.normal(size=30_000)
    assert psi(a, a) == 0.0
    assert psi(a, rng.normal(size=30_000)) < 0.01
    small, big = psi(a, rng.normal(0.2, 1, 30_000)), psi(a, rng.normal(1.0, 1, 30_000))
    assert 0.02 < small < 0.1  # a small shift: below the 'moderate' threshold
    assert big > 0.25  # a one-sigma shift: 'major'
    # categorical, by hand
    expected = (0.8 - 0.5) * np.log(0.8 / 0.5) + (0.2 - 0.5) * np.log(0.2 / 0.5)
    assert np.isclose(psi(list("x" * 5 + "y" * 5), list("x" * 8 + "y" * 2)), expected)
    with pytest.raises(DataError, match="non-missing values on both sides"):
        psi([np.nan, np.nan], [1.0])


def test_distribution_shift_on_flights_weather():
    w = load_weather()
    jan, jul = (w[w.month == m][["temp", "humid", "origin"]] for m in (1, 7))
    jan_a, jan_b = jan.iloc[::2], jan.iloc[1::2]
    same = distribution_shift(jan_a, jan_b)
    assert (same["psi"] < 0.05).all() and same.loc["temp", "ks_pvalue"] > 0.01
    moved = distribution_shift(jan, jul)
    assert moved.loc["temp", "shift"] == "major" and moved.loc["temp", "ks_pvalue"] < 1e-10
    assert moved.loc["temp", "unseen_share"] > 0.5  # July is hotter than any January hour
    assert moved.loc["origin", "kind"] == "categorical" and moved.loc["origin", "unseen_share"] == 0
    with pytest.raises(SchemaError, match=r"current: unknown column\(s\) \['temp'\]"):
        distribution_shift(jan, jul.drop(columns="temp"))
    with pytest.raises(DataError, match=r"reference\['temp'\] is entirely missing"):
        distribution_shift(jan.assign(temp=np.nan), jul)


def test_unseen_value_flagger():
    train = pd.DataFrame({"carrier": ["AA", "UA", "DL"], "temp": [10.0, 20.0, 30.0]})
    serve = pd.DataFrame({"carrier": ["AA", "ZZ", None, "DL"], "temp": [15.0, 31.0, np.nan, 5.0]})
    f = UnseenValueFlagger().set_output(transform="pandas").fit(train)
    out = f.transform(serve)
    assert list(out.columns) == ["carrier_unseen", "temp_unseen"]
    np.testing.assert_array_equal(out.to_numpy(), [[0, 0], [1, 1], [0, 0], [0, 1]])
    np.testing.assert_array_equal(UnseenValueFlagger(tolerance=1.5).fit(train).transform(serve)[:, 1], [0, 0, 0, 1])
    with pytest.raises(SchemaError, match="Feature names unseen at fit time"):
        f.transform(serve.rename(columns={"temp": "t"}))
    with pytest.raises(ConfigError, match="tolerance"):
        UnseenValueFlagger(tolerance=-1).fit(train)
    # a column entirely missing in training: every present serving value is unseen, numeric or not
    blank = UnseenValueFlagger().fit(train.assign(temp=np.nan, carrier=None))
    np.testing.assert_array_equal(blank.transform(serve), [[1, 1], [1, 1], [0, 0], [1, 1]])
    # on flights: December tail numbers unseen in January are flagged, and only those
    jan, dec = load_flights("2013-01-01", "2013-01-31"), load_flights("2013-12-01", "2013-12-31")
    flags = UnseenValueFlagger().fit(jan[["tailnum"]]).transform(dec[["tailnum"]])[:, 0]
    expected = dec["tailnum"].notna() & ~dec["tailnum"].isin(set(jan["tailnum"].dropna()))
    np.testing.assert_array_equal(flags.astype(bool), expected.to_numpy(bool))
