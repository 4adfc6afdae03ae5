"""Active learning: scores match scipy references, QBC, batch queries, empty pool, active beats random."""
import numpy as np
import pytest
from scipy.stats import entropy as scipy_entropy
from sklearn.linear_model import LogisticRegression

from mlsys.core import ConfigError, DataError
from mlsys.labeling.active import (
    STRATEGIES,
    ActiveLearner,
    StoppingRule,
    active_learning_curve,
    entropy,
    kl_to_consensus,
    least_confidence,
    margin,
    vote_entropy,
)




def test_uncertainty_scores_match_definitions():
    rng = np.random.default_rng(0)
    p = rng.dirichlet(np.ones(5), size=200)
    np.testing.assert_allclose(entropy(p), scipy_entropy(p, axis=1))
    np.testing.assert_allclose(least_confidence(p), 1 - p.max(axis=1))
    s = np.sort(p, axis=1)
    np.testing.assert_allclose(margin(p), 1 - (s[:, -1] - s[:, -2]))
    # binary case: all three rank identically
    b = np.column_stack([q := rng.random(100), 1 - q])
    r = [np.argsort(f(b), kind="stable") for f in (least_confidence, margin, entropy)]
    assert (r[0] == r[1]).all() and (r[1] == r[2]).all()


def test_committee_scores_match_scipy():
    rng = np.random.default_rng(1)
    probas = rng.dirichlet(np.ones(4), size=(6, 50))  # 6 members, 50 samples, 4 classes
    cons = probas.mean(axis=0)
    expected = np.array([np.mean([scipy_entropy(probas[m, i], cons[i]) for m in range(6)]) for i in range(50)])
    np.testing.assert_allclose(kl_to_consensus(probas), expected, rtol=1e-10)
    votes = probas.argmax(axis=2)
    ve = np.array([scipy_entropy(np.bincount(votes[:, i], minlength=4)) for i in range(50)])
    np.testing.assert_allclose(vote_entropy(votes, 4), ve)
    assert vote_entropy(np.zeros((3, 2), dtype=int), 2).tolist() == [0.0, 0.0]
    # classes nobody voted for add nothing: a huge n_classes costs nothing (it looped over every class)
    np.testing.assert_allclose(vote_entropy(votes, 10**12), vote_entropy(votes, 4))
    with pytest.raises(DataError, match="class indices"):
        vote_entropy(np.array([[0, 5], [1, 1]]), 2)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_query_batch(digits, strategy):
    Xp, yp, _, _ = digits
    al = ActiveLearner(LogisticRegression(max_iter=300), strategy=strategy, batch_size=7, n_committee=3,
                       random_state=0).fit(Xp[:40], yp[:40])
    idx = al.query(Xp[40:300])
    assert len(idx) == 7 and len(set(idx.tolist())) == 7 and idx.max() < 260
    if strategy != "random":  # the batch is the top of the ranking
        s = al.uncertainty(Xp[40:300])
        assert np.sort(s)[-7] <= s[idx].min() + 1e-12
    assert len(al.query(Xp[40:43])) == 3  # a pool smaller than the batch returns all of it


def test_bad_input(digits):
    Xp, yp, Xt, yt = digits
    al = ActiveLearner(strategy="entropy").fit(Xp[:40], yp[:40])
    with pytest.raises(DataError, match="pool X_pool is empty"):
        al.query(Xp[:0])
    with pytest.raises(DataError, match="pool X_pool is empty"):
        active_learning_curve(Xp[:0], yp[:0], Xt, yt)
    with pytest.raises(ConfigError, match="strategy='nope'"):
        ActiveLearner(strategy="nope").fit(Xp[:40], yp[:40])
    with pytest.raises(ConfigError, match="batch_size must be an integer >= 1, got 0"):
        ActiveLearner(batch_size=0).fit(Xp[:40], yp[:40])
    with pytest.raises(DataError, match="needs at least 2 classes"):
        ActiveLearner().fit(Xp[:5], np.zeros(5))
    with pytest.raises(DataError, match="larger than the pool"):
        active_learning_curve(Xp[:30], yp[:30], Xt, yt, budget=50)
    with pytest.raises(ConfigError, match="n_initial"):
        active_learning_curve(Xp, yp, Xt, yt, n_initial=1)
    with pytest.raises(DataError, match=r"y_pool holds only class \[3\]"):  # used to loop forever
        active_learning_curve(Xp, np.full(len(yp), 3), Xt, yt)
    with pytest.raises(DataError, match="y_test has"):
        active_learning_curve(Xp, yp, Xt, yt[:-1])


def test_initial_set_holds_two_classes_even_for_a_very_rare_class(digits):
    Xp, _, Xt, _ = digits
    y = np.zeros(len(Xp), dtype=int)
    y[7] = 1  # one positive in the whole pool: random redraws of 2 would almost never find it
    c = active_learning_curve(Xp, y, Xt, np.zeros(len(Xt), dtype=int), n_initial=2, budget=2, random_state=0)
    assert c["n_labeled"].tolist() == [2] and c["min_class_share"].iloc[0] == 0.5
    with pytest.raises(ConfigError, match="give max_score"):
        StoppingRule(max_score=None, min_agreement=None)


def test_stopping_rule():
    rule = StoppingRule(min_agreement=0.9, patience=2)
    assert not rule.update(1.0, np.array([0, 1, 2, 3]))
    assert not rule.update(1.0, np.array([0, 1, 2, 3]))  # 1 stable round
    assert rule.update(1.0, np.array([0, 1, 2, 3]))  # 2 stable rounds
    rule = StoppingRule(min_agreement=0.9, patience=2)
    for preds in ([0, 0, 0, 0], [0, 0, 0, 0], [1, 0, 0, 0], [1, 0, 0, 0]):
        stopped = rule.update(1.0, np.array(preds))
    assert not stopped  # the change in round 3 reset the count
    with pytest.raises(DataError, match="same fixed stop set"):
        rule.update(1.0, np.zeros(2))


def test_margin_beats_random_at_fixed_budget(digits):
    Xp, yp, Xt, yt = digits
    lr = LogisticRegression(max_iter=300, tol=1e-3)
    acc = {st: [active_learning_curve(Xp, yp, Xt, yt, strategy=st, estimator=lr, n_initial=20, batch_size=10,
                                      budget=120, random_state=s)["accuracy"].iloc[-1] for s in range(3)]
           for st in ("random", "margin")}
    assert np.mean(acc["margin"]) > np.mean(acc["random"]) + 0.01
    curve = active_learning_curve(Xp, yp, Xt, yt, strategy="margin", estimator=lr, budget=60, batch_size=20, random_state=0)
    assert curve["n_labeled"].tolist() == [20, 40, 60]


def test_metric_column(digits):
    Xp, yp, Xt, yt = digits
    c = active_learning_curve(Xp, yp, Xt, yt, strategy="least_confidence", budget=40, batch_size=10,
                              metric=lambda a, b: float((a == b).mean()), random_state=1)
    np.testing.assert_allclose(c["metric"], c["accuracy"])
    assert (c["min_class_share"] <= 0.1 + 1e-12).all()


# ---- the estimator contract: score(X, y) is scikit-learn's accuracy; the pool rating is uncertainty(X_pool) ----

def test_score_is_accuracy_and_uncertainty_rates_the_pool(digits):
    from sklearn.model_selection import cross_val_score
    Xp, yp, Xt, yt = digits
    al = ActiveLearner(LogisticRegression(max_iter=300), strategy="margin", random_state=0).fit(Xp[:200], yp[:200])
    assert al.score(Xt, yt) == (al.predict(Xt) == yt).mean()  # was: score(X_pool) -> per-row informativeness
    np.testing.assert_allclose(al.uncertainty(Xt[:50]), margin(al.predict_proba(Xt[:50])))
    cv = cross_val_score(ActiveLearner(LogisticRegression(max_iter=300)), Xp[:300], yp[:300], cv=3)
    assert cv.shape == (3,) and cv.min() > 0.8
    assert al.n_features_in_ == 64
    with pytest.raises(DataError, match="X has 3 features, but ActiveLearner is expecting 64"):
        al.uncertainty(Xt[:5, :3])


def test_learner_defers_nan_to_a_base_estimator_that_accepts_it(digits):
    from sklearn.tree import DecisionTreeClassifier
    Xp, yp, _, _ = digits
    X = Xp[:300].copy()
    X[np.random.default_rng(0).random(X.shape) < 0.1] = np.nan
    al = ActiveLearner(DecisionTreeClassifier(max_depth=4, random_state=0), strategy="vote_entropy", n_committee=3,
                       random_state=0).fit(X[:100], yp[:100])
    assert al.query(X[100:]).shape == (10,)
    with pytest.raises(DataError, match="LogisticRegression.fit refused the data: Input X contains NaN"):
        ActiveLearner().fit(X[:100], yp[:100])


@pytest.mark.parametrize("proba, msg", [
    ([[0.5, 0.4], [0.3, 0.7]], r"rows must sum to 1 .*1 row\(s\) do not, e.g. row 0 sums to 0.9"),
    ([[0.6, 0.6]], "rows must sum to 1"),
    ([[np.nan, 0.5], [0.5, 0.5]], r"NaN or infinite values in 1 row\(s\), e.g. row 0"),
    ([[np.inf, 0.0]], "NaN or infinite"),
    ([[1.5, -0.5]], r"probabilities in \[0, 1\]"),
    ([[True, False]], "must hold class probabilities"),
    ([["0.5", "0.5"]], "must hold class probabilities"),
    ([[None, 1.0]], "must hold class probabilities"),
    (np.ones(3) / 3, "must have shape"),
    ([[1.0]], "n_classes >= 2"),
])
@pytest.mark.parametrize("score", [least_confidence, margin, entropy])
def test_uncertainty_scores_refuse_what_is_not_a_distribution(score, proba, msg):
    with pytest.raises(DataError, match=msg):
        score(proba)


def test_uncertainty_scores_accept_float32_and_one_hot():
    p32 = np.random.default_rng(0).dirichlet(np.ones(10), size=50).astype(np.float32)
    np.testing.assert_allclose(entropy(p32), scipy_entropy(p32.astype(float), axis=1), rtol=1e-5)
    assert least_confidence(np.eye(3, dtype=int)).tolist() == [0.0, 0.0, 0.0]


@pytest.mark.parametrize("call, exc, msg", [
    (lambda: vote_entropy(np.array([[0.5, 1.0], [1.0, 0.0]]), 2), DataError, "integer class indices"),
    (lambda: vote_entropy(np.array([[0, 1], [1, 0]]), True), ConfigError, "n_classes must be an integer >= 1"),
    (lambda: vote_entropy(np.array([[0, 1], [1, 0]]), 0), ConfigError, "n_classes must be an integer >= 1"),
    (lambda: vote_entropy(np.array([[0, -1], [1, 0]]), 2), DataError, r"class indices in 0..1, got values in \[-1, 1\]"),
    (lambda: kl_to_consensus(np.ones((2, 3, 2))), DataError, r"probas\[0\] rows must sum to 1"),
    (lambda: kl_to_consensus(np.full((2, 3, 2), np.nan)), DataError, r"probas\[0\] has NaN"),
    (lambda: kl_to_consensus(np.ones((1, 3, 2)) / 2), DataError, "n_members >= 2"),
    (lambda: StoppingRule(min_agreement=True), ConfigError, r"min_agreement=True must be a number in \(0, 1\]"),
    (lambda: StoppingRule(min_agreement="0.9"), ConfigError, "min_agreement='0.9'"),
    (lambda: StoppingRule(min_agreement=1.5), ConfigError, "min_agreement=1.5"),
    (lambda: StoppingRule(patience=2.5), ConfigError, "patience must be an integer >= 1"),
    (lambda: StoppingRule(patience="2"), ConfigError, "patience must be an integer >= 1"),
    (lambda: StoppingRule(max_score="high"), ConfigError, "max_score='high' must be None or a number"),
    (lambda: StoppingRule(max_score=float("nan")), ConfigError, "max_score=nan"),
    (lambda: StoppingRule().update(None, np.zeros(3)), DataError, "top_score must be a number"),
    (lambda: StoppingRule().update(0.5, None), DataError, "predictions must be a non-empty 1-D array"),
    (lambda: StoppingRule().update(0.5, []), DataError, "predictions must be a non-empty 1-D array"),
    (lambda: StoppingRule().update(0.5, [[1, 2], [3]]), DataError, "predictions must be a rectangular array"),
    (lambda: entropy([[0.5, 0.5], [1.0]]), DataError, "proba must be a rectangular array"),
    (lambda: vote_entropy([[0, 1], [1]], 2), DataError, "votes must be a rectangular array"),
    (lambda: kl_to_consensus([[[0.5, 0.5]], [[1.0]]]), DataError, "probas must be a rectangular array"),
])
def test_committee_scores_and_stopping_rule_refuse_bad_input(call, exc, msg):
    with pytest.raises(exc, match=msg):
        call()


@pytest.mark.parametrize("kwargs, exc, msg", [
    (dict(batch_size=True), ConfigError, "batch_size must be an integer >= 1, got True"),
    (dict(batch_size=2.5), ConfigError, "batch_size must be an integer >= 1"),
    (dict(strategy="vote_entropy", n_committee=2.5), ConfigError, "n_committee must be an integer >= 1, got 2.5"),
    (dict(strategy="margin", n_committee="x"), ConfigError, "n_committee must be an integer >= 1"),  # unused, still checked
    (dict(strategy="kl_consensus", n_committee=1), ConfigError, r"n_committee \(for kl_consensus\) must be an integer >= 2"),
    (dict(strategy=None), ConfigError, "strategy=None is not one of"),
    (dict(random_state="x"), ConfigError, "random_state must be None or a non-negative int"),
    (dict(estimator="lr"), ConfigError, "estimator must be a classifier with fit and predict_proba, got str"),
])
def test_learner_refuses_bad_parameters(digits, kwargs, exc, msg):
    Xp, yp, _, _ = digits
    with pytest.raises(exc, match=msg):
        ActiveLearner(**kwargs).fit(Xp[:40], yp[:40])


def test_learner_refuses_bad_data(digits):
    Xp, yp, _, _ = digits
    for X, y, msg in [(None, yp[:3], "ActiveLearner: "), (Xp[:40], None, "requires y to be passed"),
                      (Xp[:40], np.linspace(0, 1, 40), "LogisticRegression.fit refused the data: Unknown label type"), (Xp[:40], yp[:30], "inconsistent numbers")]:
        with pytest.raises(DataError, match=msg):
            ActiveLearner().fit(X, y)
    al = ActiveLearner().fit(Xp[:40], yp[:40])
    for pool in (None, 3, "abc"):
        with pytest.raises(DataError, match="X_pool must be a 2-D array of examples"):
            al.uncertainty(pool)
    with pytest.raises(DataError, match="pool X_pool is empty"):
        al.uncertainty([])


@pytest.mark.parametrize("kwargs, exc, msg", [
    (dict(X_pool=None), DataError, "X_pool must be a 2-D array of examples, got NoneType"),
    (dict(y_pool=None), DataError, "y_pool must be a 1-D array of class labels, got NoneType"),
    (dict(X_test=None), DataError, "X_test must be a 2-D array of examples"),
    (dict(y_test="labels"), DataError, "y_test must be a 1-D array of class labels, got str"),
    (dict(X_test=np.zeros((0, 64)), y_test=np.zeros(0)), DataError, "X_test is empty"),
    (dict(y_pool="float"), DataError, "y_pool must hold class labels"),
    (dict(n_initial=True), ConfigError, "n_initial must be an integer >= 2"),
    (dict(budget=50.5), ConfigError, "budget must be an integer >= 2"),
    (dict(batch_size=0), ConfigError, "batch_size must be an integer >= 1"),
    (dict(n_committee=-1), ConfigError, "n_committee must be an integer >= 1"),
    (dict(stopping="rule"), ConfigError, "stopping must be a StoppingRule or None, got str"),
    (dict(stop_early="yes"), ConfigError, "stop_early must be True or False"),
    (dict(metric="accuracy"), ConfigError, r"metric must be a function metric\(y_true, y_pred\)"),
    (dict(random_state=-1), ConfigError, "random_state must be None or a non-negative int"),
])
def test_curve_refuses_bad_input(digits, kwargs, exc, msg):
    Xp, yp, Xt, yt = digits
    args = dict(X_pool=Xp[:300], y_pool=yp[:300], X_test=Xt, y_test=yt, budget=40)
    if kwargs.get("y_pool") == "float":
        kwargs = dict(y_pool=np.random.default_rng(0).random(300))
    args.update(kwargs)
    with pytest.raises(exc, match=msg):
        active_learning_curve(**args)
