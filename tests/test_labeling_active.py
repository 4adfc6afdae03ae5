"""Active learning: scores match scipy references, QBC, batch queries, empty pool, active beats random."""
import numpy as np
import pytest
from scipy.stats import entropy as scipy_entropy
from sklearn.linear_model import LogisticRegression

from mlsys.core import DataError
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
        s = al.score(Xp[40:300])
        assert np.sort(s)[-7] <= s[idx].min() + 1e-12
    assert len(al.query(Xp[40:43])) == 3  # a pool smaller than the batch returns all of it


def test_bad_input(digits):
    Xp, yp, Xt, yt = digits
    al = ActiveLearner(strategy="entropy").fit(Xp[:40], yp[:40])
    with pytest.raises(DataError, match="pool X_pool is empty"):
        al.query(Xp[:0])
    with pytest.raises(DataError, match="pool X_pool is empty"):
        active_learning_curve(Xp[:0], yp[:0], Xt, yt)
    with pytest.raises(DataError, match="strategy='nope'"):
        ActiveLearner(strategy="nope").fit(Xp[:40], yp[:40])
    with pytest.raises(DataError, match="batch_size=0"):
        ActiveLearner(batch_size=0).fit(Xp[:40], yp[:40])
    with pytest.raises(DataError, match="need at least 2 classes"):
        ActiveLearner().fit(Xp[:5], np.zeros(5))
    with pytest.raises(DataError, match="larger than the pool"):
        active_learning_curve(Xp[:30], yp[:30], Xt, yt, budget=50)
    with pytest.raises(DataError, match="n_initial"):
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
    with pytest.raises(DataError, match="give max_score"):
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
