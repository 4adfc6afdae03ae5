"""Semi-supervision: SelfTraining equals scikit-learn's SelfTrainingClassifier (fixtures and generated cases); consistency method; errors."""
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.linear_model import LogisticRegression
from sklearn.naive_bayes import GaussianNB
from sklearn.semi_supervised import SelfTrainingClassifier
from sklearn.tree import DecisionTreeClassifier

from mlsys.core import ConfigError, DataError
from mlsys.labeling.semi import UNLABELED, ConsistencyTraining, SelfTraining


def _partial(y, n, seed):
    out = np.full(len(y), UNLABELED)
    keep = np.random.default_rng(seed).choice(len(y), n, replace=False)
    out[keep] = y[keep]
    return out


@pytest.mark.parametrize("base,threshold,n,max_iter", [
    (LogisticRegression(max_iter=300, tol=1e-3, C=10.0), 0.9, 50, 10),
    (LogisticRegression(max_iter=300), 0.6, 30, None),
    (GaussianNB(), 0.99, 80, 3),
])
def test_same_as_sklearn(digits, base, threshold, n, max_iter):
    Xp, yp, Xt, _ = digits
    y = _partial(yp, n, seed=n)
    ours = SelfTraining(base, threshold=threshold, max_iter=max_iter).fit(Xp, y)
    ref = SelfTrainingClassifier(base, threshold=threshold, criterion="threshold", max_iter=max_iter).fit(Xp, y)
    np.testing.assert_array_equal(ours.transduction_, ref.transduction_)
    np.testing.assert_array_equal(ours.labeled_iter_, ref.labeled_iter_)
    assert ours.n_iter_ == ref.n_iter_ and ours.termination_condition_ == ref.termination_condition_
    np.testing.assert_array_equal(ours.predict(Xt), ref.predict(Xt))
    np.testing.assert_allclose(ours.predict_proba(Xt), ref.predict_proba(Xt))


# ---- randomized differential test against SelfTrainingClassifier ----

def _semi_case(rng):
    "A small generated problem: X (ties, duplicates, constant columns, NaN, float32, a single row), y with -1 for unlabeled."
    n, d, k = int(rng.choice([1, 2, 3, 6, 15, 40])), int(rng.integers(1, 4)), int(rng.integers(1, 4))
    cols = []
    for _ in range(d):
        kind = rng.choice(["normal", "ties", "duplicates", "constant"])
        cols.append({"normal": lambda: rng.normal(size=n), "ties": lambda: rng.integers(0, 3, n).astype(float),
                     "duplicates": lambda: rng.choice(rng.normal(size=2), n), "constant": lambda: np.full(n, 1.5)}[kind]())
    X = np.column_stack(cols)
    y = rng.integers(0, k, n)
    X[:, 0] += y * rng.uniform(0, 3)  # some signal, so thresholds are crossed
    nan = rng.random() < 0.3
    if nan:
        X[rng.random(X.shape) < 0.2] = np.nan
    if rng.random() < 0.25:
        X = X.astype(np.float32)
    y = np.where(rng.random(n) < rng.choice([0.0, 0.3, 0.7, 0.95, 1.0]), UNLABELED, y)
    return X, y, nan


def _fit(est, X, y):
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "y contains no unlabeled samples"; GaussianNB's zero variances
            return est.fit(X, y)
    except Exception as e:  # noqa: B902 - the exception is the outcome compared
        return e


def test_self_training_equals_sklearn_on_generated_cases():
    "2,000 generated cases; a base estimator that accepts NaN (a tree) sees NaN: both defer to it, also for one class."
    rng = np.random.default_rng(0)
    counts = {"cases": 0, "fitted": 0, "both refuse": 0, "with NaN": 0, "one labeled class": 0}
    mismatches = []
    for i in range(2000):
        X, y, nan = _semi_case(rng)
        base = [DecisionTreeClassifier(max_depth=3, random_state=0), GaussianNB(), LogisticRegression(max_iter=100)][i % 3]
        if nan:
            base = DecisionTreeClassifier(max_depth=3, random_state=0)
        threshold, max_iter = float(rng.choice([0.0, 0.5, 0.75, 0.9, 0.99])), [None, 0, 1, 3, 10][i % 5]
        ours = _fit(SelfTraining(base, threshold, max_iter), X, y)
        ref = _fit(SelfTrainingClassifier(base, threshold=threshold, max_iter=max_iter), X, y)
        counts["cases"] += 1
        if isinstance(ours, Exception) or isinstance(ref, Exception):
            if isinstance(ours, DataError) and isinstance(ref, ValueError):
                counts["both refuse"] += 1
            else:
                mismatches.append((i, repr(ours)[:100], repr(ref)[:100]))
            continue
        counts["fitted"] += 1
        counts["with NaN"] += nan
        counts["one labeled class"] += len(np.unique(y[y != UNLABELED])) == 1
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # GaussianNB on a constant float32 column divides by a zero variance
            same = (np.array_equal(ours.transduction_, ref.transduction_) and np.array_equal(ours.labeled_iter_, ref.labeled_iter_)
                    and ours.n_iter_ == ref.n_iter_ and ours.termination_condition_ == ref.termination_condition_
                    and np.array_equal(ours.classes_, ref.classes_)
                    and np.array_equal(ours.predict_proba(X), ref.predict_proba(X), equal_nan=True))
        if not same:
            mismatches.append((i, "outputs differ"))
    assert mismatches == []
    assert counts["fitted"] > 1000 and counts["with NaN"] > 200 and counts["one labeled class"] > 100 and counts["both refuse"] > 50


def test_nan_goes_to_a_base_estimator_that_accepts_it(digits):
    Xp, yp, Xt, _ = digits
    X = Xp[:300].copy()
    X[np.random.default_rng(0).random(X.shape) < 0.1] = np.nan
    y = _partial(yp[:300], 60, seed=1)
    tree = DecisionTreeClassifier(max_depth=5, random_state=0)
    ours = SelfTraining(tree, 0.8).fit(X, y)  # was: DataError "Input X contains NaN"
    ref = SelfTrainingClassifier(tree, threshold=0.8).fit(X, y)
    np.testing.assert_array_equal(ours.transduction_, ref.transduction_)
    np.testing.assert_array_equal(ours.predict(Xt), ref.predict(Xt))
    assert ours.__sklearn_tags__().input_tags.allow_nan
    with pytest.raises(DataError, match="base estimator LogisticRegression.fit refused the data: Input X contains NaN"):
        SelfTraining(LogisticRegression()).fit(X, y)  # one that does not: its own reason, named


def test_one_labeled_class_fits_when_the_base_estimator_can(digits):
    Xp, _, _, _ = digits
    y = np.full(200, UNLABELED)
    y[:10] = 3
    ours = SelfTraining(DecisionTreeClassifier(random_state=0)).fit(Xp[:200], y)  # was: "need at least 2 classes"
    ref = SelfTrainingClassifier(DecisionTreeClassifier(random_state=0)).fit(Xp[:200], y)
    np.testing.assert_array_equal(ours.transduction_, ref.transduction_)
    assert ours.classes_.tolist() == [3] and (ours.predict(Xp[200:210]) == 3).all()
    with pytest.raises(DataError, match="only one class"):  # logistic regression cannot: its reason, named
        SelfTraining(LogisticRegression()).fit(Xp[:200], y)


def test_sparse_input_when_the_base_estimator_accepts_it(digits):
    Xp, yp, Xt, _ = digits
    y = _partial(yp, 80, seed=2)
    lr = LogisticRegression(max_iter=300)
    dense = SelfTraining(lr, 0.9, 3).fit(Xp, y)
    sparse = SelfTraining(lr, 0.9, 3).fit(sp.csr_matrix(Xp), y)
    np.testing.assert_array_equal(dense.transduction_, sparse.transduction_)
    np.testing.assert_array_equal(sparse.predict(sp.csr_matrix(Xt)), dense.predict(Xt))
    with pytest.raises(DataError, match="does not accept sparse input"):
        ConsistencyTraining(lr).fit(sp.csr_matrix(Xp), y)
    with pytest.raises(DataError, match="[Ss]parse"):
        SelfTraining(GaussianNB()).fit(sp.csr_matrix(Xp), y)


def test_consistency_filters_pseudo_labels(digits):
    Xp, yp, Xt, yt = digits
    lr = LogisticRegression(max_iter=300, tol=1e-3, C=10.0)
    y = _partial(yp, 50, seed=0)
    unl = y == UNLABELED
    plain = SelfTraining(lr, 0.9, max_iter=10).fit(Xp, y)
    cons = ConsistencyTraining(lr, 0.9, max_iter=10, noise_scale=0.3, random_state=0).fit(Xp, y)
    # after the full loop, consistency's pseudo-labels are cleaner than plain self-training's
    got_plain, got_cons = (plain.transduction_ != UNLABELED) & unl, (cons.transduction_ != UNLABELED) & unl
    assert (cons.transduction_[got_cons] == yp[got_cons]).mean() > (plain.transduction_[got_plain] == yp[got_plain]).mean() + 0.02
    # one round without augmentation: the filter rejects some of what the threshold alone accepts
    one = ConsistencyTraining(lr, 0.9, max_iter=1, noise_scale=0.3, augment_labeled=False, random_state=0).fit(Xp, y)
    assert ((one.transduction_ != UNLABELED) & unl).sum() < ((SelfTraining(lr, 0.9, max_iter=1).fit(Xp, y).transduction_ != UNLABELED) & unl).sum()
    # zero noise and one perturbation: identical to plain self-training
    same = ConsistencyTraining(lr, 0.9, max_iter=3, noise_scale=0.0, n_perturbations=1, augment_labeled=False).fit(Xp, y)
    ref = SelfTraining(lr, 0.9, max_iter=3).fit(Xp, y)
    np.testing.assert_array_equal(same.transduction_, ref.transduction_)
    full = ConsistencyTraining(lr, 0.9, max_iter=5, noise_scale=0.3, random_state=0).fit(Xp, y)
    assert full.n_augmented_ == 4 * 50 and len(full.transduction_) == len(yp)
    assert full.score(Xt, yt) > lr.fit(Xp[~unl], yp[~unl]).score(Xt, yt)  # helps at 50 labels (seed 0)


def test_consistency_with_nan_and_a_tree(digits):
    Xp, yp, _, _ = digits
    X = Xp[:300].copy()
    X[np.random.default_rng(3).random(X.shape) < 0.1] = np.nan
    c = ConsistencyTraining(DecisionTreeClassifier(max_depth=5, random_state=0), 0.8, random_state=0).fit(X, _partial(yp[:300], 60, 0))
    assert np.isfinite(c.scale_).all() and len(c.transduction_) == 300


def test_bad_input(digits):
    Xp, yp, _, _ = digits
    y = _partial(yp, 30, 0)
    with pytest.raises(DataError, match="no labeled examples"):
        SelfTraining().fit(Xp, np.full(len(yp), -1))
    with pytest.raises(DataError, match="string dtype"):  # "-1" would silently be a class, nothing unlabeled
        SelfTraining().fit(Xp, y.astype(str))
    names = np.array(["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"], dtype=object)
    y_obj = np.where(y == UNLABELED, UNLABELED, names[np.maximum(y, 0)]).astype(object)
    st = SelfTraining(LogisticRegression(max_iter=300), max_iter=1).fit(Xp, y_obj)  # object labels with -1 work
    assert set(st.classes_) <= set(names) and (st.transduction_[y_obj != UNLABELED] == y_obj[y_obj != UNLABELED]).all()


@pytest.mark.parametrize("make, exc, msg", [
    (lambda: SelfTraining(threshold=1.5), ConfigError, r"threshold=1.5 must be a number in \[0, 1\)"),
    (lambda: SelfTraining(threshold=None), ConfigError, "threshold=None"),
    (lambda: SelfTraining(threshold="0.5"), ConfigError, "threshold='0.5'"),
    (lambda: SelfTraining(threshold=False), ConfigError, "threshold=False"),
    (lambda: SelfTraining(threshold=float("nan")), ConfigError, "threshold=nan"),
    (lambda: SelfTraining(max_iter=2.5), ConfigError, "max_iter=2.5 must be None or an integer >= 0"),
    (lambda: SelfTraining(max_iter=-1), ConfigError, "max_iter=-1"),
    (lambda: SelfTraining(max_iter=True), ConfigError, "max_iter=True"),
    (lambda: SelfTraining(max_iter="3"), ConfigError, "max_iter='3'"),
    (lambda: SelfTraining(estimator="lr"), ConfigError, "estimator must be a classifier with fit and predict_proba, got str"),
    (lambda: ConsistencyTraining(noise_scale=-1), ConfigError, "noise_scale >= 0"),
    (lambda: ConsistencyTraining(noise_scale=float("inf")), ConfigError, "noise_scale >= 0"),
    (lambda: ConsistencyTraining(noise_scale="big"), ConfigError, "noise_scale >= 0"),
    (lambda: ConsistencyTraining(n_perturbations=2.5), ConfigError, "n_perturbations >= 1"),
    (lambda: ConsistencyTraining(n_perturbations=0), ConfigError, "n_perturbations >= 1"),
    (lambda: ConsistencyTraining(augment_labeled="yes"), ConfigError, "augment_labeled must be True or False"),
    (lambda: ConsistencyTraining(random_state=-3), ConfigError, "random_state must be None or a non-negative int"),
    (lambda: ConsistencyTraining(random_state="seed"), ConfigError, "random_state must be None or a non-negative int"),
])
def test_bad_parameters_are_named(digits, make, exc, msg):
    Xp, yp, _, _ = digits
    with pytest.raises(exc, match=msg):
        make().fit(Xp[:100], _partial(yp[:100], 30, 0))


@pytest.mark.parametrize("X, y, msg", [
    (None, np.zeros(3), "SelfTraining: "),
    (np.ones((3, 2)), None, "requires y to be passed, but the target y is None"),
    (np.ones((3, 2)), [0, 1], "inconsistent numbers of samples"),
    (np.ones((0, 2)), np.zeros(0), r"0 sample\(s\)"),
    (np.ones((4, 2)), np.array([0.0, 1.0, np.nan, -1]), "y contains NaN"),
    (np.ones((4, 2)), np.array([0.5, 1.5, 2.5, -1]), "refused the data: Unknown label type"),
    ("not an array", np.zeros(3), "SelfTraining: "),
])
def test_bad_data_is_named(X, y, msg):
    with pytest.raises(DataError, match=msg):
        SelfTraining(LogisticRegression()).fit(X, y)
    st = SelfTraining(LogisticRegression()).fit(np.eye(4), [0, 1, 0, -1])
    with pytest.raises(DataError, match="X has 3 features, but SelfTraining is expecting 4"):
        st.predict(np.ones((2, 3)))
