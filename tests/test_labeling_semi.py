"""Semi-supervision: SelfTraining equals scikit-learn's SelfTrainingClassifier; consistency method; errors."""
import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.naive_bayes import GaussianNB
from sklearn.semi_supervised import SelfTrainingClassifier
from sklearn.utils.estimator_checks import parametrize_with_checks

from mlsys.core import DataError
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


def test_bad_input(digits):
    Xp, yp, _, _ = digits
    y = _partial(yp, 30, 0)
    with pytest.raises(DataError, match="no labeled examples"):
        SelfTraining().fit(Xp, np.full(len(yp), -1))
    with pytest.raises(DataError, match="threshold=1.5"):
        SelfTraining(threshold=1.5).fit(Xp, y)
    with pytest.raises(DataError, match="need at least 2"):
        yy = np.full(len(yp), -1); yy[:5] = 3
        SelfTraining().fit(Xp, yy)
    with pytest.raises(DataError, match="string dtype"):  # "-1" would silently be a class, nothing unlabeled
        SelfTraining().fit(Xp, y.astype(str))
    names = np.array(["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"], dtype=object)
    y_obj = np.where(y == UNLABELED, UNLABELED, names[np.maximum(y, 0)]).astype(object)
    st = SelfTraining(LogisticRegression(max_iter=300), max_iter=1).fit(Xp, y_obj)  # object labels with -1 work
    assert set(st.classes_) <= set(names) and (st.transduction_[y_obj != UNLABELED] == y_obj[y_obj != UNLABELED]).all()
    with pytest.raises(DataError, match="noise_scale >= 0"):
        ConsistencyTraining(noise_scale=-1).fit(Xp, y)


_XFAIL = {
    "check_classifiers_classes": "y == -1 means unlabeled (scikit-learn's convention), so a class named -1 is unsupported",
    "check_non_transformer_estimators_n_iter": "n_iter_ can be 0 (xfailed for SelfTrainingClassifier too)",
}


@parametrize_with_checks([SelfTraining(LogisticRegression(max_iter=200)),
                          ConsistencyTraining(LogisticRegression(max_iter=200), random_state=0)],
                         expected_failed_checks=lambda est: _XFAIL)
def test_sklearn_contract(estimator, check):
    check(estimator)
