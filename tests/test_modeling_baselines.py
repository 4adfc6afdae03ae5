"""mlsys.modeling.baselines: the estimator contract, equality with scikit-learn's Dummy estimators over generated
targets, the threshold search against brute force, the point-in-time route rate against an oracle, the existing-solution
slot and the baseline comparison, and named errors for bad input."""
import numpy as np
import pandas as pd
import pytest
from sklearn.dummy import DummyClassifier, DummyRegressor
from sklearn.utils.estimator_checks import parametrize_with_checks

from mlsys.core import ConfigError, DataError, SchemaError
from mlsys.modeling.baselines import (BaselineComparison, ExistingSolution, RandomClassifier, RandomRegressor,
                                      ReportedScores, ThresholdHeuristic, ZeroRuleClassifier, ZeroRuleRegressor,
                                      compare_to_baselines, fit_baselines, route_late_rate, score_models)

# ---- the estimator contract ------------------------------------------------------------------------------------------

ESTIMATORS = [  # for tests/test_estimators.py as well (with EXPECTED_FAILED_CHECKS below)
    RandomClassifier("uniform", random_state=0),
    RandomClassifier("label_distribution", random_state=0),
    ZeroRuleClassifier(),
    RandomRegressor("uniform", random_state=0),
    RandomRegressor("label_distribution", random_state=0),
    ZeroRuleRegressor("mean"),
    ZeroRuleRegressor("median"),
    ThresholdHeuristic(),
    ThresholdHeuristic(column=1, threshold=0.0, metric="balanced_accuracy"),
]

# scikit-learn's own reason for DummyClassifier (sklearn/utils/_test_common/instance_generator.py,
# PER_ESTIMATOR_XFAIL_CHECKS): a random guess for a row depends on the row's position in the batch
_RANDOM = {"check_methods_subset_invariance": "fails for the predict method (scikit-learn's reason for DummyClassifier)",
           "check_methods_sample_order_invariance": "fails for the predict method (scikit-learn's reason for DummyClassifier)"}
# uniform: predict_proba is 1/k for every class while predict breaks that tie at random, as
# DummyClassifier(strategy="uniform") does; scikit-learn runs its checks on the stratified and most_frequent strategies only
_UNIFORM = {**_RANDOM, "check_classifiers_train": "predict_proba is uniform (1/k) while predict draws a class at random, "
                                                  "as DummyClassifier(strategy='uniform'), which scikit-learn does not check"}


def EXPECTED_FAILED_CHECKS(estimator) -> dict:
    "Checks expected to fail for `estimator`, each with its reason."
    if isinstance(estimator, RandomClassifier):
        return _UNIFORM if estimator.strategy == "uniform" else _RANDOM
    if isinstance(estimator, RandomRegressor):
        return _RANDOM
    return {}


@parametrize_with_checks(ESTIMATORS, expected_failed_checks=EXPECTED_FAILED_CHECKS, xfail_strict=True)
def test_sklearn_checks(estimator, check):
    check(estimator)


# ---- equality with DummyClassifier / DummyRegressor over generated targets ------------------------------------------

_LABEL_POOLS = [np.array([0, 1]), np.array([3, -1, 7]), np.array([True, False]), np.array(["late", "on time"]),
                np.array(["", "é", "ß\n", "z"]), np.array([1.0, 2.0]), np.arange(6)]  # integral floats are labels; 0.5 is not


def _generated_targets(rng, n_cases):
    "Class targets of every awkward kind: one class, ties, strings (empty, non-ASCII, newline), floats, many classes."
    for case in range(n_cases):
        pool = _LABEL_POOLS[case % len(_LABEL_POOLS)]
        n = int(rng.integers(1, 40))
        k = int(rng.integers(1, len(pool) + 1))
        labels = rng.choice(pool, size=k, replace=False)
        kind = case % 3
        if kind == 0:  # a single class
            y = np.repeat(labels[:1], n)
        elif kind == 1:  # an exact tie between the first two classes (then maybe others)
            half = max(1, n // 2)
            y = np.r_[np.repeat(labels[:1], half), np.repeat(labels[-1:], half)]
            rng.shuffle(y)
        else:
            y = rng.choice(labels, size=n)
        w = None
        if case % 4 == 3:
            w = rng.integers(0, 4, size=len(y)).astype(float)
            if w.sum() == 0:
                w[0] = 1.0
        yield y, w, int(rng.integers(1, 30))


def test_classifiers_equal_dummy_classifier():
    rng = np.random.default_rng(0)
    cases = 0
    for y, w, n_test in _generated_targets(rng, 600):
        X, X_test = rng.normal(size=(len(y), 2)), rng.normal(size=(n_test, 3))[:, :2]
        seed = int(rng.integers(0, 1000))
        for ours, ref in [(RandomClassifier("uniform", random_state=seed), DummyClassifier(strategy="uniform", random_state=seed)),
                          (RandomClassifier("label_distribution", random_state=seed),
                           DummyClassifier(strategy="stratified", random_state=seed)),
                          (ZeroRuleClassifier(), DummyClassifier(strategy="prior"))]:
            ours.fit(X, y, sample_weight=w); ref.fit(X, y, sample_weight=w)
            np.testing.assert_array_equal(ours.classes_, ref.classes_)
            np.testing.assert_allclose(ours.class_prior_, ref.class_prior_)
            np.testing.assert_array_equal(ours.predict(X_test), ref.predict(X_test))
            np.testing.assert_array_equal(ours.predict_proba(X_test), ref.predict_proba(X_test))
            cases += 1
    assert cases == 1800


def test_regressors_equal_dummy_regressor():
    rng = np.random.default_rng(1)
    for case in range(500):
        n = int(rng.integers(1, 40))
        y = [rng.normal(size=n), rng.integers(-3, 3, size=n).astype(float),  # ties
             np.full(n, 2.5), rng.normal(size=n).astype("float32")][case % 4]
        w = None if case % 3 else rng.integers(0, 4, size=n).astype(float)
        if w is not None and w.sum() == 0:
            w[-1] = 2.0
        X, X_test = np.zeros((n, 1)), np.zeros((int(rng.integers(1, 20)), 1))
        for strategy in ("mean", "median"):
            ours = ZeroRuleRegressor(strategy).fit(X, y, sample_weight=w)
            ref = DummyRegressor(strategy=strategy).fit(X, y, sample_weight=w)
            tol = 1e-6 if y.dtype == np.float32 else 1e-12  # DummyRegressor averages float32 in float32; we use float64
            np.testing.assert_allclose(ours.predict(X_test), ref.predict(X_test), rtol=tol, atol=tol)


def test_random_regressor_draws_from_the_training_targets():
    rng = np.random.default_rng(2)
    y = rng.choice([1.0, 5.0, 9.0], size=300, p=[0.2, 0.5, 0.3])
    X = np.zeros((300, 1))
    draws = RandomRegressor("label_distribution", random_state=0).fit(X, y).predict(np.zeros((20_000, 1)))
    assert set(np.unique(draws)) == {1.0, 5.0, 9.0}
    for v in (1.0, 5.0, 9.0):
        assert abs((draws == v).mean() - (y == v).mean()) < 0.02
    u = RandomRegressor("uniform", random_state=0).fit(X, y).predict(np.zeros((5000, 1)))
    assert u.min() >= 1.0 and u.max() <= 9.0 and abs(u.mean() - 5.0) < 0.2
    # weights: a row with weight 0 is never drawn
    w = (y != 9.0).astype(float)
    d = RandomRegressor("label_distribution", random_state=1).fit(X, y, sample_weight=w).predict(np.zeros((2000, 1)))
    assert 9.0 not in d
    # an int seed gives the same guesses on every call
    m = RandomRegressor("uniform", random_state=3).fit(X, y)
    np.testing.assert_array_equal(m.predict(np.zeros((5, 1))), m.predict(np.zeros((5, 1))))


# ---- the threshold heuristic -----------------------------------------------------------------------------------------

def _brute_force_best(v, y, w, metric):
    "Best score of the rule v > x over every candidate x (each distinct value and one below the smallest)."
    from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score
    fn = {"f1": lambda t, p, sw: f1_score(t, p, sample_weight=sw, zero_division=0), "accuracy": accuracy_score,
          "balanced_accuracy": balanced_accuracy_score}[metric]
    cands = np.r_[np.unique(v), np.nextafter(v.min(), -np.inf)]
    if metric == "f1":
        return max(fn(y, v > x, w) for x in cands)
    return max(fn(y, v > x, sample_weight=w) for x in cands)


@pytest.mark.parametrize("metric", ["f1", "accuracy", "balanced_accuracy"])
def test_threshold_search_equals_brute_force(metric):
    rng = np.random.default_rng(3)
    for case in range(150):
        n = int(rng.integers(2, 60))
        v = np.round(rng.normal(size=n), int(rng.integers(0, 3)))  # rounding makes ties
        y = rng.random(n) < 1 / (1 + np.exp(-2 * v + rng.normal(size=n)))
        if y.all() or not y.any():
            y[0] = not y[0]
        w = None if case % 2 else rng.integers(1, 4, size=n).astype(float)
        h = ThresholdHeuristic(metric=metric).fit(v[:, None], y, sample_weight=w)
        assert h.train_score_ == pytest.approx(_brute_force_best(v, y, w, metric), abs=1e-12)
        np.testing.assert_array_equal(h.predict(v[:, None]), v > h.threshold_)
        np.testing.assert_allclose(h.decision_function(v[:, None]), v - h.threshold_)


def test_threshold_heuristic_on_frames_with_missing_values_and_string_labels():
    df = pd.DataFrame({"rate": [0.1, 0.5, np.nan, 0.9, 0.2, np.nan], "carrier": list("ABCDEF")})
    y = np.array(["on time", "late", "late", "late", "on time", "on time"])
    h = ThresholdHeuristic("rate").fit(df, y)
    assert list(h.classes_) == ["late", "on time"]  # classes sorted; the positive class is "on time"
    assert h.fill_ == pytest.approx(0.2)  # lower weighted median of [0.1, 0.2, 0.5, 0.9]
    h2 = ThresholdHeuristic("rate", fill_value=1.0).fit(df, y)
    assert h2.decision_function(df)[2] == pytest.approx(1.0 - h2.threshold_)
    given = ThresholdHeuristic("rate", threshold=0.3).fit(df, y)
    np.testing.assert_array_equal(given.predict(df), np.where(df["rate"].fillna(given.fill_) > 0.3, "on time", "late"))
    assert given.threshold_ == 0.3


# ---- the route rate is point-in-time correct -------------------------------------------------------------------------

@pytest.fixture(scope="module")
def few_days():
    from mlsys.datasets import load_flights
    return load_flights("2013-01-01", "2013-01-12")


def _oracle(flights, history, window, lead, margin):
    h = history[history["is_late"].notna()]
    known = h["sched_dep"] + pd.to_timedelta((h["dep_delay"] + h["air_time"]).astype(float), unit="min") + margin
    ok = known.notna()
    h, known = h[ok], known[ok]
    n, rate = [], []
    for _, f in flights.iterrows():
        t = f["sched_dep"] - lead
        m = (h["origin"] == f["origin"]) & (h["dest"] == f["dest"]) & (known < t) & (known >= t - window)
        n.append(float(m.sum()))
        rate.append(h.loc[m, "is_late"].astype(float).mean() if m.any() else np.nan)
    return np.array(rate), np.array(n)


def test_route_rate_equals_a_brute_force_oracle(few_days):
    rng = np.random.default_rng(4)
    for window, lead, margin in [("30D", "0min", "1h"), ("2D", "3h", "0min"), ("12h", "30min", "2h"), ("1D", "0min", "0min")]:
        sample = few_days.iloc[np.sort(rng.choice(len(few_days), 150, replace=False))]
        got = route_late_rate(sample, few_days, window=window, lead=lead, margin=margin, name="r")
        rate, n = _oracle(sample, few_days, pd.Timedelta(window), pd.Timedelta(lead), pd.Timedelta(margin))
        np.testing.assert_array_equal(got["r_n"].to_numpy(), n)
        np.testing.assert_allclose(got["r_late_rate"].to_numpy(), rate, rtol=0, atol=1e-12)
        assert got.index.equals(sample.index)


def test_no_future_label_leaks(few_days):
    "Rewriting every outcome known at or after a flight's prediction time leaves its rate unchanged."
    h = few_days
    known = h["sched_dep"] + pd.to_timedelta((h["dep_delay"] + h["air_time"]).astype(float), unit="min") + pd.Timedelta("1h")
    rng = np.random.default_rng(5)
    changed_something = 0
    for i in rng.choice(len(h), 40, replace=False):
        one = h.iloc[[i]]
        t = one["sched_dep"].iloc[0]
        future = known.ge(t).fillna(True).to_numpy()  # unknown landing times count as future too
        rewritten = h.copy()
        rewritten.loc[future, "is_late"] = rng.random(int(future.sum())) < 0.5
        # and their times, later still (an earlier landing would make them past outcomes, rightly counted)
        rewritten.loc[future, "dep_delay"] = h.loc[future, "dep_delay"] + rng.integers(0, 300, size=int(future.sum()))
        pd.testing.assert_frame_equal(route_late_rate(one, rewritten), route_late_rate(one, h))
        flipped = h.assign(is_late=~h["is_late"])
        before = route_late_rate(one, h)
        if before["route_30d_n"].iloc[0] > 0:
            changed_something += int(route_late_rate(one, flipped).iloc[0, 0] != before.iloc[0, 0])
    assert changed_something > 10  # the past does count


def test_route_rate_bad_input(few_days):
    f = few_days.head(50)
    with pytest.raises(SchemaError, match="dep_delay"):
        route_late_rate(f, f.drop(columns="dep_delay"))
    with pytest.raises(DataError, match="time zone"):
        route_late_rate(f.assign(sched_dep=f["sched_dep"].dt.tz_localize(None)))
    with pytest.raises(DataError, match="key column"):
        route_late_rate(f.assign(dest=f["dest"].astype(object).where(f.index != f.index[3], None)))
    for bad in ("0D", "-1D", "soon", 30, None):
        with pytest.raises(ConfigError, match="window"):
            route_late_rate(f, window=bad)
    with pytest.raises(ConfigError, match="keys"):
        route_late_rate(f, keys="origin")
    with pytest.raises(ConfigError, match="name"):
        route_late_rate(f, name="not a name")


# ---- the existing solution and reported scores ------------------------------------------------------------------------

def test_existing_solution_from_files_and_callables(tmp_path):
    X = pd.DataFrame({"id": [f"f{i}" for i in range(6)], "x": np.arange(6.0)})
    pred = X["x"].to_numpy() > 2
    pd.DataFrame({"prediction": pred, "score": X["x"]}).to_csv(tmp_path / "p.csv", index=False)
    keyed = pd.DataFrame({"id": X["id"], "prediction": pred, "score": X["x"]}).sample(frac=1, random_state=0)
    keyed.to_parquet(tmp_path / "p.parquet")
    by_order = ExistingSolution(tmp_path / "p.csv", score="score")
    np.testing.assert_array_equal(by_order.predict(X), pred)
    by_key = ExistingSolution(str(tmp_path / "p.parquet"), score="score", key="id")
    np.testing.assert_array_equal(by_key.predict(X.iloc[::-1]), pred[::-1])
    np.testing.assert_allclose(by_key.decision_function(X), X["x"])
    fn = ExistingSolution(lambda d: d["x"].to_numpy() > 2, score=lambda d: d["x"].to_numpy())
    np.testing.assert_array_equal(fn.predict(X), pred)
    scores = score_models({"file": by_order, "keyed": by_key, "fn": fn}, X, pred, ["accuracy", "average_precision", "brier"])
    assert (scores["accuracy"] == 1).all() and (scores["average_precision"] == 1).all()
    assert scores["brier"].isna().all()  # no probabilities: not applicable


def test_existing_solution_refuses_what_does_not_line_up(tmp_path):
    X = pd.DataFrame({"id": ["a", "b", "c"], "x": [1.0, 2.0, 3.0]})
    pd.DataFrame({"prediction": [1, 0]}).to_csv(tmp_path / "short.csv", index=False)
    with pytest.raises(DataError, match="2 rows but X has 3"):
        ExistingSolution(tmp_path / "short.csv").predict(X)
    pd.DataFrame({"id": ["a", "b"], "prediction": [1, 0]}).to_csv(tmp_path / "keys.csv", index=False)
    with pytest.raises(DataError, match="lacks 1 of the 3 keys"):
        ExistingSolution(tmp_path / "keys.csv", key="id").predict(X)
    pd.DataFrame({"id": ["a", "a"], "prediction": [1, 0]}).to_csv(tmp_path / "dup.csv", index=False)
    with pytest.raises(DataError, match="unique"):
        ExistingSolution(tmp_path / "dup.csv", key="id")
    with pytest.raises(SchemaError, match="prediction"):
        ExistingSolution(tmp_path / "keys.csv", prediction="label")
    with pytest.raises(DataError, match="does not exist"):
        ExistingSolution(tmp_path / "absent.csv")
    (tmp_path / "p.json").write_text("{}")
    with pytest.raises(DataError, match="must be"):
        ExistingSolution(tmp_path / "p.json")
    (tmp_path / "bad.parquet").write_bytes(b"PAR1 this is not parquet")  # a crafted, damaged file
    with pytest.raises(DataError, match="could not be read"):
        ExistingSolution(tmp_path / "bad.parquet")
    pd.DataFrame({"prediction": []}).to_csv(tmp_path / "empty.csv", index=False)
    with pytest.raises(DataError, match="no rows"):
        ExistingSolution(tmp_path / "empty.csv")
    with pytest.raises(DataError, match="returned shape"):
        ExistingSolution(lambda d: np.ones(2)).predict(X)
    with pytest.raises(ConfigError, match="no scores"):
        ExistingSolution(lambda d: np.ones(3)).decision_function(X)
    with pytest.raises(ConfigError):
        ExistingSolution(lambda d: np.ones(3), key="id")
    with pytest.raises(DataError):
        ExistingSolution(None)


# ---- the comparison ----------------------------------------------------------------------------------------------------

def test_compare_to_baselines_directions_ties_and_reported_rows():
    base = {"zero": {"accuracy": 0.7, "log_loss": 0.6}, "heur": {"accuracy": 0.75, "log_loss": np.nan},
            "human": ReportedScores({"accuracy": 0.8}, source="panel of 3 dispatchers, 200 flights", n_examples=200)}
    c = compare_to_baselines({"accuracy": 0.78, "log_loss": 0.5}, base, "accuracy")
    assert isinstance(c, BaselineComparison)
    assert not c.beats_best_baseline and c.best_baseline == "human" and c.gain == pytest.approx(-0.02)
    assert list(c.table.index) == ["model", "human", "heur", "zero"]
    assert c.table.loc["human", "source"].startswith("reported: panel")
    assert c.table.loc["zero", "model beats it"] and not c.table.loc["human", "model beats it"]
    assert c.not_applicable == {"heur": ["log_loss"], "human": ["log_loss"]}
    assert "DOES NOT BEAT" in c.message and "FLAG" in c._repr_markdown_()
    # lower is better for log loss; a baseline without the primary metric is left out of "best"
    c = compare_to_baselines({"accuracy": 0.78, "log_loss": 0.5}, base, "log_loss")
    assert c.beats_best_baseline and c.best_baseline == "zero" and c.gain == pytest.approx(0.1)
    assert list(c.table.index)[:2] == ["model", "zero"]
    # a tie does not beat; min_gain raises the bar
    assert not compare_to_baselines({"accuracy": 0.8}, base, "accuracy").beats_best_baseline
    assert not compare_to_baselines({"accuracy": 0.81}, base, "accuracy", min_gain=0.02).beats_best_baseline
    assert compare_to_baselines({"accuracy": 0.81}, base, "accuracy", min_gain=0.005).beats_best_baseline
    # a custom metric with an explicit direction; a frame of baselines
    frame = pd.DataFrame({"cost": [3.0, 2.0]}, index=["a", "b"])
    c = compare_to_baselines(pd.Series({"cost": 1.5}), frame, "cost", greater_is_better=False)
    assert c.beats_best_baseline and c.best_baseline == "b"


def test_compare_to_baselines_bad_input():
    base = {"zero": {"accuracy": 0.7}}
    with pytest.raises(ConfigError, match="not among"):
        compare_to_baselines({"accuracy": 0.9}, base, "f1")
    with pytest.raises(ConfigError, match="unknown metric"):
        compare_to_baselines({"cost": 1.0}, {"zero": {"cost": 2.0}}, "cost")
    with pytest.raises(DataError, match="at least one baseline"):
        compare_to_baselines({"accuracy": 0.9}, {}, "accuracy")
    with pytest.raises(DataError, match="no baseline has"):
        compare_to_baselines({"accuracy": 0.9, "f1": 0.3}, base, "f1")
    with pytest.raises(DataError, match="finite"):
        compare_to_baselines({"accuracy": np.nan}, base, "accuracy")
    with pytest.raises(DataError, match="must be a number"):
        compare_to_baselines({"accuracy": "0.9"}, base, "accuracy")
    with pytest.raises(DataError, match="must be a number"):
        compare_to_baselines({"accuracy": True}, base, "accuracy")
    with pytest.raises(DataError, match="like the model"):
        compare_to_baselines({"accuracy": 0.9}, {"model": {"accuracy": 0.7}}, "accuracy")
    for bad in (-0.1, np.inf, "0", True):
        with pytest.raises(ConfigError, match="min_gain"):
            compare_to_baselines({"accuracy": 0.9}, base, "accuracy", min_gain=bad)
    with pytest.raises(ConfigError, match="greater_is_better"):
        compare_to_baselines({"accuracy": 0.9}, base, "accuracy", greater_is_better="yes")
    with pytest.raises(DataError, match="source"):
        ReportedScores({"accuracy": 0.8}, source="")


def test_score_models_and_fit_baselines():
    rng = np.random.default_rng(6)
    X = pd.DataFrame({"rate": rng.random(400), "cat": pd.Categorical(rng.choice(list("ab"), 400))})
    y = rng.random(400) < X["rate"]
    models = fit_baselines(X, y, heuristics={"heur": ThresholdHeuristic("rate")})
    assert set(models) == {"random (uniform)", "random (label distribution)", "zero rule", "heur"}
    table = score_models(models, X, y, ["average_precision", "accuracy", "log_loss"])
    assert table.loc["zero rule", "average_precision"] == pytest.approx(y.mean())
    assert table.loc["heur", "average_precision"] > 0.7 and np.isnan(table.loc["heur", "log_loss"])
    reg = fit_baselines(X, X["rate"] * 10, task="regression")
    rt = score_models(reg, X, X["rate"] * 10, ["mae", "r2"])
    assert rt.loc["zero rule (mean)", "r2"] == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(ConfigError, match="unknown metric"):
        score_models(models, X, y, ["auc"])
    with pytest.raises(ConfigError, match="mix"):
        score_models(models, X, y, ["mae", "accuracy"])
    with pytest.raises(ConfigError, match="no predict"):
        score_models({"x": object()}, X, y, ["accuracy"])
    with pytest.raises(ConfigError, match="non-empty"):
        score_models({}, X, y, ["accuracy"])
    with pytest.raises(DataError, match="Unknown label type"):
        score_models(models, X, X["rate"], ["accuracy"])
    with pytest.raises(ConfigError, match="task"):
        fit_baselines(X, y, task="ranking")


# ---- bad input to the estimators -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("make", [lambda: RandomClassifier("gaussian"), lambda: RandomRegressor("normal"),
                                  lambda: ZeroRuleRegressor("mode"), lambda: ThresholdHeuristic(metric="auc"),
                                  lambda: RandomClassifier(None)])
def test_unknown_strategy(make):
    with pytest.raises(ConfigError, match="unknown strategy"):
        make().fit(np.zeros((4, 1)), [0, 1, 0, 1])


def test_estimators_bad_input():
    X = np.zeros((4, 2))
    for est in (RandomClassifier(), ZeroRuleClassifier(), ThresholdHeuristic()):
        with pytest.raises(DataError, match="no rows"):
            est.fit(np.zeros((0, 2)), [])
        with pytest.raises(DataError, match="Unknown label type"):
            est.fit(X, [0.5, 1.7, 2.2, 3.9])
        with pytest.raises(DataError, match="X has 4 rows but y has 3"):
            est.fit(X, [0, 1, 0])
        with pytest.raises(DataError, match="None"):
            est.fit(None, [0, 1])
        with pytest.raises(DataError, match="not a set of class labels"):
            est.fit(X, [0.0, np.nan, 1.0, 0.0])
    for est in (RandomRegressor(), ZeroRuleRegressor()):
        with pytest.raises(DataError, match="booleans"):
            est.fit(X, [True, False, True, True])
        with pytest.raises(DataError, match="must be numbers"):
            est.fit(X, ["a", "b", "a", "b"])
        with pytest.raises(DataError, match="missing or infinite"):
            est.fit(X, [1.0, np.inf, 2.0, 3.0])
        with pytest.raises(DataError, match="sample_weight: Negative"):
            est.fit(X, [1.0, 2.0, 3.0, 4.0], sample_weight=[1, -1, 1, 1])
    with pytest.raises(DataError, match="features"):
        ZeroRuleClassifier().fit(X, [0, 1, 0, 1]).predict(np.zeros((3, 5)))
    h = ThresholdHeuristic
    with pytest.raises(DataError, match="Only binary"):
        h().fit(X, [0, 1, 2, 1])
    with pytest.raises(DataError, match="one class"):
        h().fit(X, [1, 1, 1, 1])
    with pytest.raises(SchemaError, match="without column names"):
        h("rate").fit(X, [0, 1, 0, 1])
    with pytest.raises(SchemaError, match="no column number 5"):
        h(5).fit(X, [0, 1, 0, 1])
    with pytest.raises(DataError, match="must hold numbers"):
        h().fit(np.array([["a", 1], ["b", 2]], dtype=object), [0, 1])
    with pytest.raises(DataError, match="must be numeric"):
        h("c").fit(pd.DataFrame({"c": ["x", "y"]}), [0, 1])
    with pytest.raises(DataError, match="infinite"):
        h().fit(np.array([[np.inf], [1.0]]), [0, 1])
    with pytest.raises(DataError, match="no values"):
        h().fit(np.array([[np.nan], [np.nan]]), [0, 1])
    for bad in (np.nan, "0.3", True):
        with pytest.raises(ConfigError, match="threshold"):
            h(threshold=bad).fit(X, [0, 1, 0, 1])
    with pytest.raises(ConfigError, match="column"):
        h(column=1.5).fit(X, [0, 1, 0, 1])
