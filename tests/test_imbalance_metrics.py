"""imbalance.metrics: equality with scikit-learn, cost search, bad input."""
import numpy as np
import pytest
from sklearn.metrics import (
    average_precision_score,
    balanced_accuracy_score,
    precision_recall_curve,
    precision_recall_fscore_support,
)

from mlsys.core import ConfigError, DataError
from mlsys.imbalance.metrics import (
    average_precision,
    balanced_accuracy,
    cancellation_task,
    cost_weighted_error,
    min_cost_threshold,
    per_class_report,
    pr_curve,
)


@pytest.fixture(scope="module")
def scored():
    rng = np.random.default_rng(0)
    y = rng.random(3000) < 0.05
    s = np.round(y * 0.8 + rng.normal(size=3000), 2)  # rounding makes many ties
    return y, s


def test_average_precision_equals_sklearn(scored):
    y, s = scored
    assert average_precision(y, s) == pytest.approx(average_precision_score(y, s), abs=1e-12)
    assert average_precision(y.astype(int), -s) == pytest.approx(average_precision_score(y, -s), abs=1e-12)
    assert average_precision(y, np.zeros(len(y))) == pytest.approx(y.mean())


def test_pr_curve_matches_sklearn(scored):
    y, s = scored
    curve = pr_curve(y, s)
    p, r, t = precision_recall_curve(y, s)
    np.testing.assert_allclose(curve["threshold"], t)
    np.testing.assert_allclose(curve["precision"], p[:-1])
    np.testing.assert_allclose(curve["recall"], r[:-1])


@pytest.mark.parametrize("seed", [0, 1])
def test_per_class_and_balanced_accuracy_match_sklearn(seed):
    rng = np.random.default_rng(seed)
    yt = rng.choice(["a", "b", "c"], size=500, p=[0.8, 0.15, 0.05])
    yp = np.where(rng.random(500) < 0.7, yt, rng.choice(["a", "b", "c"], size=500))
    rep = per_class_report(yt, yp)
    p, r, f, sup = precision_recall_fscore_support(yt, yp, labels=["a", "b", "c"], zero_division=0)
    np.testing.assert_allclose(rep[["precision", "recall", "f1"]].to_numpy().T, np.vstack([p, r, f]))
    np.testing.assert_array_equal(rep["support"], sup)
    assert balanced_accuracy(yt, yp) == pytest.approx(balanced_accuracy_score(yt, yp))


def test_constant_predictor_on_real_cancellations():
    X, y = cancellation_task("2013-02-01", "2013-02-10")
    assert list(X.columns)[:2] == ["hour", "distance"] and not X.isna().any().any()
    assert 0 < y.mean() < 0.5
    never = np.zeros(len(y), dtype=bool)
    assert balanced_accuracy(y, never) == 0.5
    assert per_class_report(y, never, labels=[False, True]).loc[True, "recall"] == 0
    assert (never == y).mean() > 0.5


def test_cost_weighted_error_and_min_cost_threshold(scored):
    y, s = scored
    C = np.array([[0.0, 1.0], [5.0, 0.0]])
    pred = s > 0.5
    fp, fn = np.sum(pred & ~y), np.sum(~pred & y)
    assert cost_weighted_error(y, pred, C, labels=[False, True]) == pytest.approx((fp + 5 * fn) / len(y))
    thr, cost = min_cost_threshold(y, s, C)
    brute = [cost_weighted_error(y, s >= t, C, labels=[False, True]) for t in np.r_[np.unique(s), np.inf]]
    assert cost == pytest.approx(min(brute))
    assert cost_weighted_error(y, s >= thr, C, labels=[False, True]) == pytest.approx(cost)


@pytest.mark.parametrize("call, err, msg", [
    (lambda: average_precision([0, 1, 1], [0.1, 0.2]), DataError, "y_true has 3 labels but scores has 2"),
    (lambda: average_precision([0, 0], [0.1, 0.2]), DataError, "no positive examples"),
    (lambda: pr_curve([0, 1, 2], [0.1, 0.2, 0.3]), DataError, "must be binary"),
    (lambda: pr_curve([0, 1], [np.inf, 0.2]), DataError, "NaN or infinite"),
    (lambda: per_class_report([[0, 1]], [[0, 1]]), DataError, "must be 1-D"),
    (lambda: cost_weighted_error([0, 1], [0, 1], np.ones((3, 3))), ConfigError, "shape (2, 2)"),
    (lambda: cost_weighted_error([0, 1], [0, 1], [[0, np.nan], [1, 0]]), ConfigError, "finite and non-negative"),
    (lambda: cost_weighted_error([0, 1], [0, 3], np.ones((2, 2)), labels=[0, 1]), DataError, "not in labels"),
    (lambda: min_cost_threshold([0, 1], [0.1, 0.9], np.ones((3, 3))), ConfigError, "cost_matrix"),
    (lambda: balanced_accuracy([None, 1], [0, 1]), DataError, "missing labels"),
])
def test_bad_input(call, err, msg):
    with pytest.raises(err, match=None) as e:
        call()
    assert msg in str(e.value)
