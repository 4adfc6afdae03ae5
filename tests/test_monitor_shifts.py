"""monitor.shifts: the simulators' ground truth (exact priors and density ratios), BBSE recovering known priors on
simulated label shift of real flights and its correction beating doing nothing, importance weights reducing the
error of a covariate-shift estimate, Kish's effective sample size against its formula, the monitors of
`shift_report` on no shift and on a concept shift, the breadth curve, scikit-learn's estimator checks, and bad input
refused with `DataError`/`ConfigError` naming the problem."""
import numpy as np
import pandas as pd
import pytest
from sklearn.dummy import DummyClassifier
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss
from sklearn.utils.estimator_checks import parametrize_with_checks

from mlsys.core import ConfigError, DataError
from mlsys.monitor import shifts as S

# the instances the project-wide tests/test_estimators.py counts (a small boosting model keeps the checks fast; the
# default one is exercised on real flights below)
ESTIMATORS = [S.DomainClassifier(HistGradientBoostingClassifier(max_iter=10, random_state=0)),
              S.BBSE(LogisticRegression(max_iter=200))]


@parametrize_with_checks(ESTIMATORS)
def test_sklearn_checks(estimator, check):
    check(estimator)


@pytest.fixture(scope="module")
def flights():
    "January 2013's feature rows, split at random into train / val / pool, and a small boosting model fitted on train."
    from mlsys.datasets import load_flights, load_planes, load_weather
    from mlsys.pipeline import FEATURES, LABEL, build_features, make_model
    jan = build_features(load_flights("2013-01-01", "2013-01-31"), load_weather("2013-01-01", "2013-01-31"),
                         load_planes()).dropna(subset=[LABEL]).reset_index(drop=True)
    rows = np.random.default_rng(0).permutation(len(jan))
    parts = dict(zip(["train", "val", "pool"], np.split(rows, [len(rows) // 2, 3 * len(rows) // 4])))
    X = {k: jan[FEATURES].iloc[v].reset_index(drop=True) for k, v in parts.items()}
    y = {k: jan[LABEL].astype(int).to_numpy()[v] for k, v in parts.items()}
    model = make_model(params={"max_iter": 100}).fit(X["train"], y["train"])
    return X, y, model


# ---- ground truth of the simulators ---------------------------------------------------------------------------------

def _toy(n=400, seed=0):
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({"a": rng.normal(size=n), "b": rng.integers(0, 5, n), "c": pd.Categorical(rng.choice(list("xyz"), n))})
    y = (rng.random(n) < 1 / (1 + np.exp(-X["a"]))).astype(int)
    return X, y


def test_covariate_shift_draws_in_proportion_to_the_known_ratio():
    X, y = _toy(50)
    s = S.covariate_shift(X, y, "a", strength=0.8, n=200_000, random_state=3)
    counts, expected = np.bincount(s.index, minlength=len(X)), s.density_ratio / len(X) * len(s.index)
    assert (np.abs(counts - expected) <= 4 * np.sqrt(expected)).all()  # each row drawn in proportion to p_target / p_pool
    np.testing.assert_allclose(s.density_ratio.mean(), 1.0)
    np.testing.assert_allclose(s.true_weights(X), s.density_ratio)  # the ratio from its parameters, on the pool itself
    np.testing.assert_allclose(s.priors[1], np.sum(s.density_ratio * y) / len(y))
    assert abs(s.y.mean() - s.priors[1]) < 0.01


def test_label_shift_priors_and_class_conditionals():
    X, y = _toy(2000)
    for q in [0.0, 0.1, 0.5, 0.9, 1.0]:
        s = S.label_shift(X, y, q, n=20_000, random_state=1)
        assert abs(s.y.mean() - q) < 0.015
        np.testing.assert_allclose(s.priors, [1 - q, q])
        if 0 < q < 1:  # P(x | y) unchanged: the within-class means stay
            Xs = s.take(X)
            for k in (0, 1):
                assert abs(Xs["a"][s.y == k].mean() - X["a"][y == k].mean()) < 0.05
        np.testing.assert_allclose(s.true_weights(X, y), s.density_ratio)


def test_concept_shift_keeps_inputs_and_changes_only_the_slice():
    X, y = _toy(1000)
    mask = (X["b"] == 2).to_numpy()
    flip = S.concept_shift(X, y, mask, "flip")
    assert sorted(flip.index) == list(range(len(X)))  # every row once: P(x) is the pool's
    np.testing.assert_array_equal(flip.y[~flip.changed], y[flip.index][~flip.changed])
    np.testing.assert_array_equal(flip.y[flip.changed], 1 - y[flip.index][flip.changed])
    np.testing.assert_allclose(flip.priors[1], flip.y.mean())
    shuf = S.concept_shift(X, y, mask, "shuffle", random_state=2)
    assert shuf.y.sum() == y.sum() and shuf.y[shuf.changed].sum() == y[mask].sum()
    half = S.concept_shift(X, y, mask, "flip", rate=0.0)
    np.testing.assert_array_equal(half.y, y[half.index])


# ---- effective sample size ---------------------------------------------------------------------------------------

def test_effective_sample_size_against_its_formula():
    rng = np.random.default_rng(0)
    for _ in range(300):
        n = int(rng.integers(1, 50))
        w = rng.exponential(size=n) * rng.choice([1e-6, 1.0, 1e6])
        w[rng.random(n) < 0.3] = 0.0
        if w.sum() == 0:
            w[0] = 1.0
        expected = w.sum() ** 2 / (w ** 2).sum()
        assert S.effective_sample_size(w) == pytest.approx(expected, rel=1e-12)
        assert S.effective_sample_size(w * 7.5) == pytest.approx(expected, rel=1e-12)  # scale-free
        assert 1 - 1e-12 <= S.effective_sample_size(w) <= np.count_nonzero(w) + 1e-9
    assert S.effective_sample_size(np.ones(13, np.float32)) == 13
    assert S.effective_sample_size(pd.Series([0.0, 4.0])) == 1


@pytest.mark.parametrize("w, words", [([], "non-empty"), ([[1.0, 2.0]], "1-D"), ([1.0, np.nan], "NaN"),
                                       ([1.0, np.inf], "infinite"), ([1.0, -0.5], "negative"), ([0.0, 0.0], "zero")])
def test_effective_sample_size_refuses(w, words):
    with pytest.raises(DataError, match=words):
        S.effective_sample_size(w)


# ---- corrections on real flights ----------------------------------------------------------------------------------

def test_bbse_recovers_known_priors_on_real_flights(flights):
    X, y, model = flights
    bb = {m: S.BBSE(model, prefit=True, method=m).fit(X["val"], y["val"]) for m in S.BBSE_METHODS}
    for q in [0.1, 0.4, 0.6]:
        s = S.label_shift(X["pool"], y["pool"], q, n=4000, random_state=5)
        for m, b in bb.items():
            est = b.estimate_priors(s.take(X["pool"]))
            assert est.sum() == pytest.approx(1.0)
            assert abs(est[1] - q) < 0.06, (m, q, est)


def test_bbse_correction_beats_doing_nothing(flights):
    X, y, model = flights
    s = S.label_shift(X["pool"], y["pool"], 0.55, n=4000, random_state=2)
    Xt = s.take(X["pool"])
    bb = S.BBSE(model, prefit=True).fit(X["val"], y["val"]).adapt(Xt)
    before, after = model.predict_proba(Xt)[:, 1], bb.predict_proba(Xt)[:, 1]
    assert log_loss(s.y, after) < log_loss(s.y, before) - 0.05
    assert np.mean((after > 0.5) == s.y) > np.mean((before > 0.5) == s.y)
    np.testing.assert_allclose(bb.weights_, bb.target_priors_ / bb.source_priors_)
    refit = S.BBSE(model, prefit=True).fit(X["val"], y["val"])  # fit forgets an earlier adaptation
    assert not hasattr(refit, "weights_")
    np.testing.assert_allclose(refit.predict_proba(Xt), model.predict_proba(Xt))


def test_importance_weights_reduce_the_covariate_shift_error(flights):
    X, y, model = flights
    s = S.covariate_shift(X["pool"], y["pool"], "sched_hour", strength=1.0, n=4000, random_state=4)
    Xt = s.take(X["pool"])
    truth = log_loss(s.y, model.predict_proba(Xt)[:, 1])
    p_val = model.predict_proba(X["val"])[:, 1]
    w = S.importance_weights(X["val"], Xt, cv=3)
    assert w.shape == (len(X["val"]),) and np.isfinite(w).all() and w.min() >= 0 and w.max() <= 20
    assert np.mean(w) == pytest.approx(1.0, abs=0.05)  # normalised to mean 1 before the cap
    plain = abs(log_loss(y["val"], p_val) - truth)
    weighted = abs(log_loss(y["val"], p_val, sample_weight=w) - truth)
    assert weighted < plain / 2, (plain, weighted)
    assert np.corrcoef(w, s.true_weights(X["val"]))[0, 1] > 0.5
    assert 0.2 * len(w) < S.effective_sample_size(w) < len(w)


def test_domain_classifier_weights_and_clip():
    X, _ = _toy(600)
    d = (X["a"] > 0.5).astype(int).to_numpy()  # a domain that X["a"] separates perfectly
    for clip in [1.0, 3.0, 20.0]:
        w = S.DomainClassifier(LogisticRegression(max_iter=500), clip=clip).fit(X[["a", "b"]], d).importance_weights(X[["a", "b"]])
        assert w.max() <= clip + 1e-12 and w.min() > 0
    with pytest.raises(DataError, match="two domains"):
        S.DomainClassifier(LogisticRegression()).fit(X[["a"]], X["b"]).importance_weights(X[["a"]])


def test_shift_report_quiet_without_shift_and_concept_shift_seen_only_with_labels(flights):
    X, y, model = flights
    none = S.no_shift(X["pool"], y["pool"], n=3000, random_state=7)
    rep = S.shift_report(model, X["val"], y["val"], none.take(X["pool"]), none.y)
    assert list(rep.index) == ["features (KS, chi2)", "predictions (KS)", "labels (chi2)", "log-loss (Welch)"]
    assert not rep["drift"].any()
    ewr = (X["pool"]["origin"] == "EWR").to_numpy()
    con = S.concept_shift(X["pool"], y["pool"], ewr, "shuffle", n=3000, random_state=7)
    rep = S.shift_report(model, X["val"], y["val"], con.take(X["pool"]), con.y)
    assert rep["drift"].tolist() == [False, False, False, True]
    with pytest.raises(DataError, match="X: .*distance"):  # a window without a model input
        S.shift_report(model, X["val"], y["val"], con.take(X["pool"]).drop(columns="distance"), con.y)
    with pytest.raises(DataError, match="y has 2999 labels for 3000 rows"):
        S.shift_report(model, X["val"], y["val"], con.take(X["pool"]), con.y[1:])


def test_retraining_table_refuses_bad_input():
    X, y = _toy(300)
    Xn = X[["a", "b"]]
    fit = lambda: LogisticRegression(max_iter=200)
    m = fit().fit(Xn, y)
    out = S.retraining_table(m, fit, Xn, y, Xn, 1 - y, Xn, 1 - y, mask=np.ones(300, bool))
    assert out.loc["retrain on target", "log-loss"] < out.loc["nothing", "log-loss"]  # flipped labels: retraining wins
    with pytest.raises(DataError, match="one value per test row"):
        S.retraining_table(m, fit, Xn, y, Xn, y, Xn, y, mask=np.ones(10, bool))
    with pytest.raises(DataError, match="both classes"):
        S.retraining_table(m, fit, Xn, y, Xn, np.zeros(300, int), Xn, y)
    with pytest.raises(ConfigError, match="make must be"):
        S.retraining_table(m, None, Xn, y, Xn, y, Xn, y)


def test_breadth_curve_on_flights():
    from mlsys.datasets import load_flights, load_planes, load_weather
    from mlsys.pipeline import FEATURES, LABEL, build_features, make_model
    feats = build_features(load_flights("2013-01-01", "2013-03-10"), load_weather("2013-01-01", "2013-03-10"),
                           load_planes()).dropna(subset=[LABEL])
    out = S.breadth_curve(feats, FEATURES, LABEL, "sched_dep_local", "2013-03-01", "2013-03-11",
                          lambda: make_model(params={"max_iter": 20}), months=(1, 2))
    assert out[["months", "equal size"]].values.tolist() == [[1, False], [2, False], [2, True]]
    assert out.loc[2, "rows"] == out.loc[0, "rows"] < out.loc[1, "rows"]
    assert ((out["AUC"] > 0.5) & (out["AUC"] <= 1)).all()
    with pytest.raises(ConfigError, match="months"):
        S.breadth_curve(feats, FEATURES, LABEL, "sched_dep_local", "2013-03-01", "2013-03-11", make_model, months=(0,))
    with pytest.raises(DataError, match="no rows"):
        S.breadth_curve(feats, FEATURES, LABEL, "sched_dep_local", "2014-03-01", "2014-03-11", make_model)
    for start, end in [("2013-13-01", "2014-01-01"), ("2013-03-11", "2013-03-01"), ("2013-03-01T00:00Z", "2013-03-11")]:
        with pytest.raises(DataError, match="test_start"):
            S.breadth_curve(feats, FEATURES, LABEL, "sched_dep_local", start, end, make_model)


# ---- bad input ------------------------------------------------------------------------------------------------------

def test_simulators_refuse_bad_input():
    X, y = _toy(100)
    cases = [
        (lambda: S.no_shift(X.to_numpy(), y), DataError, "DataFrame"),
        (lambda: S.no_shift(X.iloc[:1], y[:1]), DataError, "at least 2"),
        (lambda: S.no_shift(X, y[:-1]), DataError, "99 labels for 100 rows"),
        (lambda: S.no_shift(X, np.where(y == 1, 2, 0)), DataError, "0/1 labels"),
        (lambda: S.no_shift(X, np.where(y == 1, np.nan, 0.0)), DataError, "NaN labels"),
        (lambda: S.no_shift(X, pd.Series(y, dtype="Int64").mask(X["a"] > 1)), DataError, "missing labels"),
        (lambda: S.no_shift(X, y.astype(str)), DataError, "dtype"),
        (lambda: S.no_shift(X, y, n=0), ConfigError, "n must be"),
        (lambda: S.no_shift(X, y, random_state=-1), ConfigError, "random_state"),
        (lambda: S.covariate_shift(X, y, "nope"), DataError, "'nope' is not a column"),
        (lambda: S.covariate_shift(X, y, "c"), DataError, "must be numeric"),
        (lambda: S.covariate_shift(X.assign(a=X["a"].where(X["a"] < 1)), y, "a"), DataError, "NaN values"),
        (lambda: S.covariate_shift(X.assign(a=1.0), y, "a"), DataError, "constant"),
        (lambda: S.covariate_shift(X, y, "a", strength=np.inf), ConfigError, "strength"),
        (lambda: S.label_shift(X, y, 1.5), ConfigError, "prior"),
        (lambda: S.label_shift(X, np.zeros(100, int), 0.5), DataError, "only y=0"),
        (lambda: S.concept_shift(X, y, np.ones(99, bool)), DataError, "one value per pool row"),
        (lambda: S.concept_shift(X, y, np.ones(100, int)), DataError, "boolean"),
        (lambda: S.concept_shift(X, y, np.zeros(100, bool)), DataError, "selects no row"),
        (lambda: S.concept_shift(X, y, np.ones(100, bool), kind="swap"), ConfigError, "kind"),
        (lambda: S.no_shift(X, y).take(X.iloc[:10]), DataError, "pool DataFrame of 100 rows"),
        (lambda: S.label_shift(X, y, 0.3).true_weights(X), DataError, "pass y"),
        (lambda: S.covariate_shift(X, y, "a").true_weights(X.drop(columns="a")), DataError, "tilted feature 'a'"),
        (lambda: S.tilt_weights([1.0, np.nan], 1.0), DataError, "finite values"),
        (lambda: S.tilt_weights([], 1.0), DataError, "non-empty"),
        (lambda: S.tilt_weights([1.0, 2.0], 1.0, scale=0.0), DataError, "constant"),
    ]
    for fn, err, words in cases:
        with pytest.raises(err, match=words):
            fn()


def test_corrections_refuse_bad_input():
    X, y = _toy(200)
    Xn = X[["a", "b"]]
    with pytest.raises(ConfigError, match="not fitted"):
        S.BBSE(LogisticRegression(), prefit=True).fit(Xn, y)
    with pytest.raises(ConfigError, match="needs a fitted estimator"):
        S.BBSE(prefit=True).fit(Xn, y)
    with pytest.raises(ConfigError, match="method"):
        S.BBSE(LogisticRegression(), method="x").fit(Xn, y)
    fitted = LogisticRegression().fit(Xn, y)
    with pytest.raises(DataError, match=r"classes \[2\]"):
        S.BBSE(fitted, prefit=True).fit(Xn, np.where(y == 1, 2, 0))
    with pytest.raises(DataError, match="200 rows but y has 199"):
        S.BBSE(fitted, prefit=True).fit(Xn, y[:-1])
    for method in S.BBSE_METHODS:  # a black box whose output ignores x: C has rank 1
        with pytest.raises(DataError, match="singular"):
            S.BBSE(DummyClassifier().fit(Xn, y), prefit=True, method=method).fit(Xn, y).estimate_priors(Xn)
    with pytest.raises(DataError, match="BBSE X: The feature names should match"):
        S.BBSE(fitted, prefit=True).fit(Xn, y).estimate_priors(Xn.assign(c=1.0))
    with pytest.raises(DataError, match="same columns"):
        S.importance_weights(Xn, X[["a"]])
    with pytest.raises(DataError, match="at least 2 rows"):
        S.importance_weights(Xn, Xn.iloc[:1])
    with pytest.raises(ConfigError, match="cv"):
        S.importance_weights(Xn, Xn, cv=1)
    with pytest.raises(ConfigError, match="clip"):
        S.DomainClassifier(clip=0.5).fit(Xn, y)
    with pytest.raises(DataError, match="2 labelled rows"):
        S.loss_test([1], [0.5], [0, 1], [0.2, 0.3])
    with pytest.raises(DataError, match="probabilities"):
        S.loss_test([0, 1], [0.5, 1.5], [0, 1], [0.2, 0.3])


def test_label_and_loss_tests_against_scipy():
    from scipy.stats import chi2_contingency, ttest_ind
    rng = np.random.default_rng(1)
    for _ in range(30):
        a, b = rng.random(int(rng.integers(20, 200))) < rng.random(), rng.random(int(rng.integers(20, 200))) < rng.random()
        t = np.array([np.bincount(a, minlength=2), np.bincount(b, minlength=2)])
        if (t.sum(axis=0) == 0).any():
            continue
        r = S.label_test(a.astype(int), b.astype(int))
        assert r.p_value == pytest.approx(chi2_contingency(t, correction=False).pvalue, rel=1e-9, abs=1e-300)
        pa, pb = rng.random(len(a)), rng.random(len(b))
        ll = lambda y, p: -np.log(np.where(y, p, 1 - p))
        want = ttest_ind(ll(b, pb), ll(a, pa), equal_var=False, alternative="greater").pvalue
        assert S.loss_test(a.astype(int), pa, b.astype(int), pb).p_value == pytest.approx(want, rel=1e-9)
