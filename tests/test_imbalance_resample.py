"""imbalance.resample: exact counts, equality with imbalanced-learn, SMOTE geometry, pipelines, the estimator
contract (scikit-learn's and imbalanced-learn's check suites), bad input.

The randomized differential tests against imbalanced-learn are in `test_imbalance_resample_differential.py`.
"""
import inspect
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import sparse
from sklearn.base import clone, is_classifier
from sklearn.datasets import make_classification
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_score, cross_validate
from sklearn.neighbors import NearestNeighbors
from sklearn.utils.estimator_checks import parametrize_with_checks

import mlsys.imbalance.resample as resample_module
from mlsys.core import ConfigError, DataError, MlsysError
from mlsys.imbalance.resample import (
    SMOTE,
    BaseResampler,
    DataTypeError,
    NearMiss,
    RandomOverSampler,
    RandomUnderSampler,
    ResampledClassifier,
    TomekLinks,
    check_X_y,
    class_counts,
    resolve_sampling_strategy,
    tomek_links,
)

# One instance of every public estimator of mlsys.imbalance.resample, with small fast parameters; the project-wide
# estimator suite (tests/test_estimators.py) imports this list.
ESTIMATORS = [
    RandomOverSampler(random_state=0),
    RandomUnderSampler(random_state=0),
    SMOTE(random_state=0),
    TomekLinks(),
    NearMiss(version=1),
    NearMiss(version=2),
    NearMiss(version=3),
    ResampledClassifier(RandomUnderSampler(random_state=0), LogisticRegression()),
]

imblearn = pytest.importorskip("imblearn")


@pytest.fixture(scope="module")
def binary():
    X, y = make_classification(3000, 6, n_informative=4, weights=[0.9], flip_y=0.05, random_state=0)
    return X, y


@pytest.fixture(scope="module")
def multi():
    X, y = make_classification(2000, 5, n_informative=4, n_redundant=0, n_classes=3, weights=[0.7, 0.2, 0.1],
                               flip_y=0.05, random_state=1)
    return X, y


STRATEGIES_OVER = ["auto", "minority", "not majority", "all", "not minority", 0.5, {1: 2000}]
STRATEGIES_UNDER = ["auto", "majority", "not minority", "all", "not majority", 0.5, {0: 600}]


@pytest.mark.parametrize("strategy", STRATEGIES_OVER)
def test_over_strategy_matches_imblearn(binary, strategy):
    from imblearn.utils import check_sampling_strategy
    _, y = binary
    ref = dict(check_sampling_strategy(strategy, y, "over-sampling"))
    assert resolve_sampling_strategy(strategy, y, "over") == {int(k): int(v) for k, v in ref.items()}


@pytest.mark.parametrize("strategy", STRATEGIES_UNDER)
def test_under_strategy_matches_imblearn(binary, strategy):
    from imblearn.utils import check_sampling_strategy
    _, y = binary
    ref = dict(check_sampling_strategy(strategy, y, "under-sampling"))
    assert resolve_sampling_strategy(strategy, y, "under") == {int(k): int(v) for k, v in ref.items()}


@pytest.mark.parametrize("sampler, strategy, expected", [
    (RandomOverSampler, "auto", lambda c: {k: max(c.values()) for k in c}),
    (RandomOverSampler, {1: 500, 2: 300}, lambda c: {0: c[0], 1: 500, 2: 300}),
    (RandomUnderSampler, "auto", lambda c: {k: min(c.values()) for k in c}),
    (RandomUnderSampler, {0: 400}, lambda c: {0: 400, 1: c[1], 2: c[2]}),
    (SMOTE, "auto", lambda c: {k: max(c.values()) for k in c}),
    (SMOTE, "minority", lambda c: {0: c[0], 1: c[1], 2: c[0]}),
    (NearMiss, "auto", lambda c: {k: min(c.values()) for k in c}),
])
def test_exact_class_counts(multi, sampler, strategy, expected):
    X, y = multi
    _, yr = sampler(sampling_strategy=strategy).fit_resample(X, y)
    assert class_counts(yr) == expected(class_counts(y))


@pytest.mark.parametrize("strategy", ["auto", "all", "majority", [0, 2]])
def test_tomek_links_remove_exactly_imblearn_rows(multi, strategy):
    from imblearn.under_sampling import TomekLinks as Ref
    X, y = multi
    ours, ref = TomekLinks(sampling_strategy=strategy), Ref(sampling_strategy=strategy)
    ours.fit_resample(X, y)
    ref.fit_resample(X, y)
    np.testing.assert_array_equal(ours.sample_indices_, ref.sample_indices_)
    assert len(ours.sample_indices_) < len(y)


def test_tomek_links_binary_and_mask_is_symmetric(binary):
    from imblearn.under_sampling import TomekLinks as Ref
    X, y = binary
    mask = tomek_links(X, y)
    nn = NearestNeighbors(n_neighbors=2).fit(X).kneighbors(X, return_distance=False)[:, 1]
    expected = (y[nn] != y) & (nn[nn] == np.arange(len(y)))  # brute force definition
    np.testing.assert_array_equal(mask, expected)
    ref = Ref()
    ref.fit_resample(X, y)
    ours = TomekLinks()
    ours.fit_resample(X, y)
    np.testing.assert_array_equal(ours.sample_indices_, ref.sample_indices_)


def test_smote_points_lie_on_segments_to_k_neighbours(binary):
    X, y = binary
    k = 4
    sm = SMOTE(k_neighbors=k, random_state=3)
    Xr, yr = sm.fit_resample(X, y)
    new, n0 = Xr[len(y):], len(y)
    assert (yr[n0:] == 1).all() and len(new) == len(sm.pairs_)
    np.testing.assert_array_equal(Xr[:n0], X)
    minority = np.flatnonzero(y == 1)
    nbrs = NearestNeighbors(n_neighbors=k + 1).fit(X[minority]).kneighbors(X[minority], return_distance=False)
    pos = {r: i for i, r in enumerate(minority)}
    for (a, b) in sm.pairs_[:300]:
        assert y[a] == 1 and y[b] == 1
        assert pos[b] in nbrs[pos[a], 1:]  # b is one of a's k nearest minority neighbours
    a, b = X[sm.pairs_[:, 0]], X[sm.pairs_[:, 1]]
    t = ((new - a) * (b - a)).sum(1) / ((b - a) ** 2).sum(1)
    np.testing.assert_allclose(a + t[:, None] * (b - a), new, atol=1e-9)
    assert t.min() >= 0 and t.max() <= 1


def test_smote_same_counts_as_imblearn(multi):
    from imblearn.over_sampling import SMOTE as Ref
    X, y = multi
    for s in ["auto", "minority", {1: 900}]:
        assert class_counts(SMOTE(sampling_strategy=s, random_state=0).fit_resample(X, y)[1]) == \
            class_counts(Ref(sampling_strategy=s, random_state=0).fit_resample(X, y)[1])


@pytest.mark.parametrize("version", [1, 2, 3])
def test_nearmiss_keeps_imblearn_rows_in_imblearn_order(binary, version):
    from imblearn.under_sampling import NearMiss as Ref
    X, y = binary
    ours, ref = NearMiss(version=version), Ref(version=version)
    Xo, yo = ours.fit_resample(X, y)
    Xr, yr = ref.fit_resample(X, y)
    np.testing.assert_array_equal(ours.sample_indices_, ref.sample_indices_)
    np.testing.assert_array_equal(Xo, Xr)
    np.testing.assert_array_equal(yo, yr)


@pytest.mark.parametrize("version", [1, 2, 3])
@pytest.mark.parametrize("strategy", ["auto", {0: 300, 1: 250}])
def test_nearmiss_multiclass_keeps_imblearn_rows(multi, version, strategy):
    "Three classes: every non-minority class is scored against the minority class, as in imbalanced-learn."
    from imblearn.under_sampling import NearMiss as Ref
    X, y = multi
    ours, ref = NearMiss(version=version, sampling_strategy=strategy), Ref(version=version, sampling_strategy=strategy)
    with warnings.catch_warnings(record=True) as w_ref:
        warnings.simplefilter("always")
        ref.fit_resample(X, y)
    with warnings.catch_warnings(record=True) as w_ours:
        warnings.simplefilter("always")
        ours.fit_resample(X, y)
    np.testing.assert_array_equal(ours.sample_indices_, ref.sample_indices_)
    assert len(ours.sample_indices_) < len(y)
    assert (len(w_ours) > 0) == (len(w_ref) > 0)  # NearMiss-3 warns when its pre-selection is too small


def test_nearmiss_minority_tie_is_first_class_in_y():
    "Issue 9 #15: with tied smallest classes the minority is the class that appears first in y, as in imbalanced-learn."
    from imblearn.under_sampling import NearMiss as Ref
    rng = np.random.default_rng(3)
    X = rng.normal(size=(12, 2))
    y = np.array([2, 2, 2, 0, 0, 0, 1, 1, 1, 1, 1, 1])  # classes 2 and 0 tie; 2 comes first
    for v in (1, 2, 3):
        ours, ref = NearMiss(version=v, sampling_strategy="all"), Ref(version=v, sampling_strategy="all")
        np.testing.assert_array_equal(ours.fit_resample(X, y)[0], ref.fit_resample(X, y)[0])
        np.testing.assert_array_equal(ours.sample_indices_, ref.sample_indices_)


def test_nearmiss2_with_fewer_minority_rows_than_neighbours_returns_like_imblearn():
    "Issue 9 #15: y=[0,0,1,1,1,1,1,1], version=2, n_neighbors=3 raised in mlsys; imbalanced-learn returns rows."
    from imblearn.under_sampling import NearMiss as Ref
    X = np.random.default_rng(0).normal(size=(8, 2))
    y = np.array([0, 0, 1, 1, 1, 1, 1, 1])
    ours, ref = NearMiss(version=2, n_neighbors=3), Ref(version=2, n_neighbors=3)
    np.testing.assert_array_equal(ours.fit_resample(X, y)[1], ref.fit_resample(X, y)[1])
    np.testing.assert_array_equal(ours.sample_indices_, ref.sample_indices_)
    with pytest.raises(DataError, match="fewer than n_neighbors=3"):  # version 1 needs 3 minority neighbours
        NearMiss(version=1, n_neighbors=3).fit_resample(X, y)


def test_nearmiss3_warns_when_preselection_is_short(multi):
    X, y = multi
    with pytest.warns(UserWarning, match="pre-selected only"):
        NearMiss(version=3, n_neighbors_ver3=1).fit_resample(X, y)


def test_pandas_in_pandas_out(binary):
    X, y = binary
    Xf = pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])], index=np.arange(len(y)) + 1000)
    ys = pd.Series(y, name="target", index=Xf.index)
    for sampler in [RandomOverSampler(random_state=0), RandomUnderSampler(random_state=0), TomekLinks(),
                    NearMiss(), SMOTE(random_state=0)]:
        Xr, yr = sampler.fit_resample(Xf, ys)
        assert isinstance(Xr, pd.DataFrame) and list(Xr.columns) == list(Xf.columns)
        assert isinstance(yr, pd.Series) and yr.name == "target" and len(Xr) == len(yr)
    Xu, _ = RandomUnderSampler(random_state=0).fit_resample(Xf, ys)
    assert Xu.index.isin(Xf.index).all()  # selected rows keep their index


def test_random_samplers_are_reproducible_and_clone(binary):
    X, y = binary
    a, b = RandomUnderSampler(random_state=5), clone(RandomUnderSampler(random_state=5))
    a.fit_resample(X, y)
    b.fit_resample(X, y)
    np.testing.assert_array_equal(a.sample_indices_, b.sample_indices_)
    assert RandomOverSampler(sampling_strategy=0.3).get_params()["sampling_strategy"] == 0.3


def test_training_fold_only_with_both_pipelines(binary):
    from imblearn.pipeline import Pipeline
    X, y = binary
    cv = StratifiedKFold(3, shuffle=True, random_state=0)
    ours = cross_validate(ResampledClassifier(SMOTE(random_state=0), LogisticRegression()), X, y, cv=cv,
                          scoring="average_precision", return_estimator=True)
    theirs = cross_validate(Pipeline([("s", SMOTE(random_state=0)), ("m", LogisticRegression())]), X, y, cv=cv,
                            scoring="average_precision")
    np.testing.assert_allclose(ours["test_score"], theirs["test_score"])
    # each fold's sampler saw only its training rows: 2/3 of the data plus synthetic rows
    for est in ours["estimator"]:
        assert est.sampler_.n_features_in_ == X.shape[1]
        assert sum(est.sampler_.sampling_strategy_.values()) < len(y)


@pytest.mark.parametrize("call, err, msg", [
    (lambda X, y: SMOTE(k_neighbors=5).fit_resample(X[:25], np.r_[np.zeros(21), np.ones(4)]), DataError,
     "needs at least 6"),
    (lambda X, y: SMOTE(k_neighbors=-1).fit_resample(X, y), ConfigError, "k_neighbors must be"),
    (lambda X, y: RandomUnderSampler(sampling_strategy={0: 10**6}).fit_resample(X, y), ConfigError, "cannot add rows"),
    (lambda X, y: RandomOverSampler(sampling_strategy={1: 1}).fit_resample(X, y), ConfigError, "cannot remove rows"),
    (lambda X, y: RandomOverSampler(sampling_strategy=0.01).fit_resample(X, y), ConfigError, "cannot remove rows"),
    (lambda X, y: RandomUnderSampler(sampling_strategy=1.5).fit_resample(X, y), ConfigError, "(0, 1]"),
    (lambda X, y: RandomUnderSampler(sampling_strategy={7: 1}).fit_resample(X, y), ConfigError, "not in y"),
    (lambda X, y: SMOTE().fit_resample(X, y[:-3]), DataError, "X has 3000 rows but y has 2997"),
    (lambda X, y: TomekLinks().fit_resample(X[:, 0], y), DataError, "X must be 2-D"),
    (lambda X, y: NearMiss().fit_resample(np.where(X > 2, np.nan, X), y), DataError, "NaN"),
    (lambda X, y: NearMiss(version=0).fit_resample(X, y), ConfigError, "version must be"),
    (lambda X, y: TomekLinks(sampling_strategy=0.5).fit_resample(X, y), ConfigError, "list of classes"),
    (lambda X, y: SMOTE().fit_resample(X.astype(str).astype(object) + "x", y), DataError, "numeric"),
    (lambda X, y: RandomOverSampler().fit_resample(X, np.zeros(len(y))), DataError, "at least 2 classes"),
    (lambda X, y: RandomOverSampler().fit_resample(X, np.r_[y[:-1], np.nan]), DataError, "missing labels"),
    (lambda X, y: ResampledClassifier(LogisticRegression(), LogisticRegression()).fit(X, y), ConfigError,
     "fit_resample"),
])
def test_bad_input(binary, call, err, msg):
    X, y = binary
    with pytest.raises(err) as e:
        call(X, y)
    assert msg in str(e.value)




# ---- the estimator contract (issue 9 #12, #13) ----------------------------------------------------------------

@parametrize_with_checks(ESTIMATORS)
def test_sklearn_estimator_checks(estimator, check):
    "scikit-learn's `check_estimator` suite: every check passes (none is marked as an expected failure)."
    check(estimator)


def _imblearn_checks():
    "imbalanced-learn's `parametrize_with_checks`, with its generator turned into a list (pytest deprecates generators)."
    from imblearn.utils.estimator_checks import estimator_checks_generator
    from sklearn.utils.estimator_checks import _get_check_estimator_ids
    cases = [c for est in ESTIMATORS for c in estimator_checks_generator(est, mark="xfail")]
    return pytest.mark.parametrize("estimator, check", cases, ids=_get_check_estimator_ids)


@_imblearn_checks()
def test_imblearn_estimator_checks(estimator, check):
    "imbalanced-learn's sampler and classifier checks, run as imbalanced-learn runs them for its own samplers."
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # imbalanced-learn ignores these in its own run
        check(estimator)


def test_imblearn_param_and_feature_name_checks():
    "The two checks imbalanced-learn runs outside its decorator: feature names (here) and `feature_names_in_`."
    from imblearn.utils.estimator_checks import check_dataframe_column_names_consistency
    for est in ESTIMATORS:
        check_dataframe_column_names_consistency(type(est).__name__, est)


def test_base_resampler_is_abstract_and_not_discovered():
    assert inspect.isabstract(BaseResampler)
    with pytest.raises(TypeError, match="abstract"):
        BaseResampler()
    concrete = {name for name, obj in inspect.getmembers(resample_module, inspect.isclass)
                if obj.__module__ == resample_module.__name__ and hasattr(obj, "fit") and not inspect.isabstract(obj)}
    assert concrete == {type(e).__name__ for e in ESTIMATORS}  # ESTIMATORS covers every public estimator


def test_sampler_tags_match_what_they_accept():
    from sklearn.utils import get_tags
    X = np.array([[0.0, 1.0], [np.nan, 2.0], [1.0, 0.5], [2.0, 2.0], [0.5, 0.1], [3.0, 1.0]])
    y = np.array([0, 0, 0, 1, 1, 1])
    for est in ESTIMATORS[:-1]:
        tags = get_tags(est)
        assert tags.estimator_type == "sampler" and tags.input_tags.sparse and tags.target_tags.required
        if tags.input_tags.allow_nan:
            est.fit_resample(X, y)
            est.fit_resample(np.array([["a", "b"]] * 6, dtype=object), y)  # strings too
        else:
            with pytest.raises(DataError, match="NaN"):
                est.fit_resample(X, y)
        Xs, _ = clone(est).fit_resample(sparse.csc_matrix(np.nan_to_num(X)), y)
        assert sparse.issparse(Xs)


def test_resampled_classifier_is_a_classifier_with_score(binary):
    "Issue 9 #13: `cross_val_score` failed (no `score`, no classifier tags)."
    X, y = binary
    clf = ResampledClassifier(SMOTE(random_state=0), LogisticRegression())
    assert is_classifier(clf)
    scores = cross_val_score(clf, X, y, cv=3)  # default scoring: the classifier's accuracy `score`
    assert scores.shape == (3,) and (scores > 0.5).all()
    fitted = clone(clf).fit(X, y)
    assert fitted.score(X, y) == pytest.approx((fitted.predict(X) == y).mean())
    assert fitted.decision_function(X).shape == (len(y),) and fitted.n_features_in_ == X.shape[1]
    with pytest.raises(DataError, match="X has 2 features, but ResampledClassifier is expecting 6"):
        fitted.predict(X[:, :2])
    with pytest.raises(NotFittedError):
        clone(clf).predict(X)


def test_fit_only_validates_fit_resample_resamples(binary):
    "As in imbalanced-learn: `fit` checks the input and resolves `sampling_strategy_`; `fit_resample` does the work."
    X, y = binary
    s = NearMiss().fit(X, y)
    assert s.sampling_strategy_ == {0: int((y == 1).sum())} and s.n_features_in_ == X.shape[1]
    assert not hasattr(s, "sample_indices_")
    names = SMOTE(random_state=0).fit(pd.DataFrame(X, columns=list("abcdef")), y).get_feature_names_out()
    assert names.tolist() == list("abcdef")


def test_one_hot_targets_round_trip(multi):
    "One-hot encoded multiclass y resamples like its labels and comes back one-hot (imbalanced-learn's behaviour)."
    X, y = multi
    Y = np.eye(3, dtype=np.int32)[y]
    for est in ESTIMATORS[:-1]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # NearMiss-3: pre-selection shorter than asked
            Xa, ya = clone(est).fit_resample(X, y)
            Xb, Yb = clone(est).fit_resample(X, Y)
        np.testing.assert_array_equal(Xa, Xb)
        assert Yb.dtype == np.int32 and Yb.shape == (len(ya), 3)
        np.testing.assert_array_equal(Yb.argmax(1), ya)
    _, Y2 = SMOTE(random_state=0).fit_resample(X, np.eye(2, dtype=int)[(y > 0).astype(int)])
    assert Y2.shape[1] == 2  # two one-hot columns stay two columns (imbalanced-learn returns one)
    with pytest.raises(DataError, match="rows \\[1\\] have no class"):
        SMOTE().fit_resample(X[:3], np.array([[1, 0], [0, 0], [0, 1]]))


def test_smote_integer_X_keeps_the_synthetic_values(binary):
    "Deliberate difference: imbalanced-learn casts SMOTE's synthetic rows back to an integer X's dtype (truncating)."
    from imblearn.over_sampling import SMOTE as Ref
    X, y = binary
    Xi = np.round(X * 3).astype(np.int64)
    ours, ref = SMOTE(random_state=4).fit_resample(Xi, y), Ref(random_state=4).fit_resample(Xi, y)
    assert ours[0].dtype == np.float64 and ref[0].dtype == np.int64
    np.testing.assert_array_equal(ours[0].astype(np.int64), ref[0])  # same points before the cast
    assert (ours[0][len(y):] != np.trunc(ours[0][len(y):])).any()
    np.testing.assert_array_equal(ours[1], ref[1])


def test_smote_sparse_equals_dense_and_imblearn(binary):
    from imblearn.over_sampling import SMOTE as Ref
    X, y = binary
    Xs = sparse.csr_matrix(np.where(np.abs(X) < 0.5, 0, X))
    ours, ref = SMOTE(random_state=1).fit_resample(Xs, y), Ref(random_state=1).fit_resample(Xs, y)
    assert sparse.issparse(ours[0]) and ours[0].format == "csr"
    np.testing.assert_array_equal(ours[0].toarray(), ref[0].toarray())
    np.testing.assert_allclose(ours[0].toarray(), SMOTE(random_state=1).fit_resample(Xs.toarray(), y)[0], rtol=1e-12)


# ---- bad input: every public entry point refuses with a named mlsys error ----------------------------------------

def _X_y():
    rng = np.random.default_rng(0)
    return rng.normal(size=(30, 3)), np.r_[np.zeros(20, int), np.ones(10, int)]


SAMPLERS = [RandomOverSampler, RandomUnderSampler, SMOTE, TomekLinks, NearMiss]
X0, Y0 = _X_y()
BAD_DATA = [  # (X, y, error, message) for every sampler's fit and fit_resample
    (None, Y0, DataError, "X is None"),
    (X0, None, DataError, "requires y to be passed, but the target y is None"),
    ("not a matrix", Y0, DataError, "X must be 2-D"),
    (5, Y0, DataError, "X must be 2-D"),
    (X0[:, 0], Y0, DataError, "X must be 2-D"),
    (X0[None], Y0, DataError, "X must be 2-D"),
    ([[1.0, 2.0], [3.0]] * 15, Y0, DataError, "X"),
    (X0[:0], Y0[:0], DataError, "0 sample"),
    (X0[:, :0], Y0, DataError, "0 feature"),
    (X0 + 1j, Y0, DataError, "Complex data not supported"),
    (sparse.coo_matrix(X0[:10]), Y0, DataError, "X has 10 rows but y has 30"),
    (X0, Y0[:-1], DataError, "X has 30 rows but y has 29"),
    (X0, np.r_[Y0[:-1].astype(float), np.nan], DataError, "Input y contains NaN"),
    (X0, np.r_[Y0[:-1].astype(float), np.inf], DataError, "Input y contains infinity"),
    (X0, pd.Series(Y0, dtype="Int64").mask(Y0 == 1), DataError, "missing labels"),
    (X0, np.zeros(30), DataError, "at least 2 classes to resample, found 1 class"),
    (X0, np.linspace(0, 1, 30), DataError, "Unknown label type"),
    (X0, np.array([1, "a"] * 15, dtype=object), DataError, "mixes label types"),
    (X0, np.ones((30, 3)), DataError, "Multilabel and multioutput targets are not supported"),
    (X0, np.c_[Y0, Y0 * 2], DataError, "Multilabel and multioutput targets are not supported"),
    (X0, "abc", DataError, "1-D sequence of class labels"),
    (X0, 3, DataError, "scalar"),
    (X0, {0: 1}, DataError, "1-D sequence of class labels"),
]
NUMERIC_ONLY = [  # refused by the neighbour-based samplers, accepted by the random ones (their tags say so)
    (np.where(X0 > 1, np.nan, X0), Y0, DataError, "NaN"),
    (np.where(X0 > 1, np.inf, X0), Y0, DataError, "infinite"),
    (X0.astype(str), Y0, DataError, "numeric"),
    (pd.DataFrame({"a": ["x"] * 30, "b": X0[:, 0]}), Y0, DataError, "numeric"),
]


@pytest.mark.parametrize("Sampler", SAMPLERS, ids=lambda s: s.__name__)
@pytest.mark.parametrize("X, y, err, msg, numeric_only", [c + (False,) for c in BAD_DATA] + [c + (True,) for c in NUMERIC_ONLY])
def test_bad_data_named(Sampler, X, y, err, msg, numeric_only):
    if numeric_only and not Sampler._numeric:
        Sampler().fit_resample(X, y)  # the random samplers accept NaN and strings
        return
    for method in ("fit", "fit_resample"):
        with pytest.raises(err, match=msg) as e:
            getattr(Sampler(), method)(X, y)
        assert isinstance(e.value, MlsysError)


def test_object_X_with_non_numbers_is_a_named_type_error():
    X = X0.astype(object)
    X[0, 0] = {"foo": "bar"}
    for Sampler in (SMOTE, TomekLinks, NearMiss):
        with pytest.raises(DataTypeError, match="argument must be a string or a real number"):
            Sampler().fit_resample(X, Y0)
    assert issubclass(DataTypeError, DataError) and issubclass(DataTypeError, TypeError)


BAD_PARAMS = [
    (RandomOverSampler, {"random_state": "seed"}, "random_state must be"),
    (RandomOverSampler, {"random_state": -1}, "random_state must be"),
    (RandomOverSampler, {"random_state": 1.5}, "random_state must be"),
    (RandomOverSampler, {"random_state": np.random.default_rng(0)}, "random_state must be"),
    (RandomUnderSampler, {"random_state": True}, "random_state must be"),
    (SMOTE, {"k_neighbors": -1}, "k_neighbors must be a positive integer"),
    (SMOTE, {"k_neighbors": 0}, "k_neighbors must be a positive integer"),
    (SMOTE, {"k_neighbors": 2.5}, "k_neighbors must be a positive integer"),
    (SMOTE, {"k_neighbors": None}, "k_neighbors must be a positive integer"),
    (SMOTE, {"random_state": "x"}, "random_state must be"),
    (NearMiss, {"n_neighbors": -3}, "n_neighbors must be a positive integer"),
    (NearMiss, {"n_neighbors_ver3": 0}, "n_neighbors_ver3 must be a positive integer"),
    (NearMiss, {"version": 4}, "version must be 1, 2 or 3"),
    (NearMiss, {"version": True}, "version must be 1, 2 or 3"),
    (NearMiss, {"version": "1"}, "version must be 1, 2 or 3"),
]
BAD_STRATEGIES = [
    (None, "must be a str, float, dict, list or callable"),
    ({1, 0}, "must be a str, float, dict, list or callable"),
    (True, "must be a str, float, dict, list or callable"),
    ("most", "is not one of"),
    ({7: 3}, "not in y"),
    ({"zero": 3}, "not in y"),
    ({0: -1}, "non-negative integer"),
    ({0: 2.5}, "non-negative integer"),
    (0.0, "(0, 1]"),
    (-0.5, "(0, 1]"),
    (1.5, "(0, 1]"),
    (np.nan, "(0, 1]"),
    (lambda y: [0], "must return a dict"),
    (lambda y: 1 / 0, "callable"),
]


@pytest.mark.parametrize("Sampler, params, msg", BAD_PARAMS)
def test_bad_params_named(Sampler, params, msg):
    for method in ("fit", "fit_resample"):
        with pytest.raises(ConfigError, match=msg):
            getattr(Sampler(**params), method)(X0, Y0)


@pytest.mark.parametrize("Sampler", SAMPLERS, ids=lambda s: s.__name__)
@pytest.mark.parametrize("strategy, msg", BAD_STRATEGIES)
def test_bad_sampling_strategy_named(Sampler, strategy, msg):
    if Sampler is TomekLinks and isinstance(strategy, (dict, float)):
        msg = "cleaning sampler"  # a cleaner takes a list of classes, never counts
    with pytest.raises(ConfigError, match=msg.replace("(", r"\(").replace(")", r"\)")):
        Sampler(sampling_strategy=strategy).fit_resample(X0, Y0)


def test_class_counts_and_resolve_refuse_non_labels():
    "Issue 9 #11: `class_counts(None)` returned a value."
    for bad, msg in [(None, "y is None"), (3, "scalar"), ("abc", "1-D sequence"), (np.ones((3, 2)), "1-D class labels"),
                     ([1.0, np.nan], "NaN"), ([0, "a"], "mixes strings"),
                     (np.array([0, "a"], dtype=object), "mixes label types")]:
        with pytest.raises(DataError, match=msg):
            class_counts(bad)
    assert class_counts([]) == {}
    assert class_counts(pd.Series(["b", "a", "b"])) == {"a": 1, "b": 2}
    with pytest.raises(ConfigError, match="kind must be one of"):
        resolve_sampling_strategy("auto", Y0, "sideways")
    with pytest.raises(DataError, match="Unknown label type"):
        resolve_sampling_strategy("auto", np.linspace(0, 1, 9), "over")
    with pytest.raises(DataError, match="y is None"):
        resolve_sampling_strategy("auto", None, "over")
    assert resolve_sampling_strategy(lambda y: {1: 20}, Y0, "over") == {1: 10}  # callables, as in imbalanced-learn
    assert list(resolve_sampling_strategy({1: 5, 0: 5}, Y0, "under")) == [0, 1]  # sorted class order


def test_tomek_links_and_check_X_y_refuse_bad_input():
    for call, msg in [(lambda: tomek_links(None, Y0), "X is None"), (lambda: tomek_links(X0, None), "y is None"),
                      (lambda: tomek_links(X0[:, 0], Y0), "X must be 2-D"),
                      (lambda: tomek_links(X0, Y0[:3]), "X has 30 rows but y has 3"),
                      (lambda: tomek_links(X0[:1], Y0[:1]), "at least 2 rows"),
                      (lambda: check_X_y(sparse.csr_matrix(X0), Y0), "dense array"),
                      (lambda: check_X_y(X0, Y0[:-1]), "X has 30 rows but y has 29"),
                      (lambda: check_X_y(np.where(X0 > 1, np.nan, X0), Y0), "NaN"),
                      (lambda: check_X_y(None, Y0), "X is None")]:
        with pytest.raises(DataError, match=msg):
            call()
    Xa, ya = check_X_y(X0.astype(np.float32).tolist(), list(Y0))
    assert Xa.dtype == np.float64 and ya.shape == (30,)


def test_resampled_classifier_refuses_bad_input(binary):
    X, y = binary
    for clf, msg in [(ResampledClassifier(None, LogisticRegression()), "fit_resample"),
                     (ResampledClassifier(SMOTE(), None), "estimator must have a fit method")]:
        with pytest.raises(ConfigError, match=msg):
            clf.fit(X, y)
    with pytest.raises(DataError, match="y is None"):
        ResampledClassifier(SMOTE(), LogisticRegression()).fit(X, None)
    fitted = ResampledClassifier(RandomUnderSampler(random_state=0), LogisticRegression()).fit(X, y)
    for bad, msg in [(None, "X is None"), (X[:, 0], "Reshape your data"), ([[1.0] * 6, [1.0]], "X must be 2-D")]:
        with pytest.raises(DataError, match=msg):
            fitted.predict(bad)
    with pytest.warns(Warning, match="column-vector y"):
        ResampledClassifier(RandomUnderSampler(random_state=0), LogisticRegression()).fit(X, y[:, None])


def test_resampled_classifier_names_errors_of_what_it_wraps(binary):
    "A random sampler accepts NaN, the wrapped LogisticRegression does not: its refusal comes back named."
    X, y = binary
    Xn = np.where(X > 2.5, np.nan, X)
    with pytest.raises(DataError, match="LogisticRegression refused the resampled data: Input X contains NaN"):
        ResampledClassifier(RandomUnderSampler(random_state=0), LogisticRegression()).fit(Xn, y)
    fitted = ResampledClassifier(RandomUnderSampler(random_state=0), LogisticRegression()).fit(X, y)
    with pytest.raises(DataError, match="LogisticRegression.predict_proba: Input X contains NaN"):
        fitted.predict_proba(Xn)
    for bad, msg in [(None, "y is None"), (y[:3], "inconsistent numbers of samples"), (np.ones((len(y), 2)), "1-D")]:
        with pytest.raises(DataError, match=msg):
            fitted.score(X, bad)
    with pytest.raises(DataError, match="input_features should have length equal"):
        SMOTE().fit(X, y).get_feature_names_out(["a"])


BAD_X_ALL = [None, "s", 5, 3.5, {}, [], [[]], X0[:, 0], X0[None], X0[:0], X0[:, :0], X0 + 1j, [[1, 2], [3]], object(),
             pd.DataFrame(), X0.astype(str), np.full((30, 3), np.nan), sparse.coo_matrix(X0[:5])]
BAD_Y_ALL = [None, "s", 5, {}, [], Y0[:3], np.full(30, np.nan), np.full(30, np.inf), np.zeros(30), np.linspace(0, 1, 30),
             np.ones((30, 3)), np.array([1, "a"] * 15, dtype=object), [[0, 1]] * 30, object(),
             pd.DataFrame({"a": Y0, "b": Y0}), np.array([None] * 30), pd.Series(pd.Categorical([None] * 30)),
             np.arange(30).astype("datetime64[D]"), Y0 + 1j]


def test_no_entry_point_raises_a_raw_library_error():
    "The sweep: every public function and method, every bad X and y: refused with an mlsys error, or accepted."
    calls = {"class_counts": lambda X, y: class_counts(y),
             "resolve_sampling_strategy": lambda X, y: resolve_sampling_strategy("auto", y, "over"),
             "check_X_y": check_X_y, "tomek_links": tomek_links,
             "ResampledClassifier.fit": lambda X, y: ResampledClassifier(RandomUnderSampler(), LogisticRegression()).fit(X, y)}
    calls.update({f"{S.__name__}.{m}": (lambda X, y, S=S, m=m: getattr(S(), m)(X, y))
                  for S in SAMPLERS for m in ("fit", "fit_resample")})
    fitted = ResampledClassifier(RandomUnderSampler(random_state=0), LogisticRegression()).fit(X0, Y0)
    calls.update({f"ResampledClassifier.{m}": (lambda X, y, m=m: getattr(fitted, m)(X))
                  for m in ("predict", "predict_proba", "predict_log_proba", "decision_function")})
    calls["ResampledClassifier.score"] = lambda X, y: fitted.score(X0 if X is None or X is X0 else X, y)
    raw = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, call in calls.items():
            for X, y in [(bx, Y0) for bx in BAD_X_ALL] + [(X0, by) for by in BAD_Y_ALL]:
                try:
                    call(X, y)
                except MlsysError:
                    pass
                except Exception as e:  # noqa: BLE001 - collected and reported
                    raw.append((name, type(e).__name__, str(e)[:80]))
    assert raw == []
