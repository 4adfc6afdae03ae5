"""imbalance.resample: exact counts, equality with imbalanced-learn, SMOTE geometry, pipelines, bad input."""
import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_validate
from sklearn.neighbors import NearestNeighbors

from mlsys.core import ConfigError, DataError
from mlsys.imbalance.resample import (
    SMOTE,
    NearMiss,
    RandomOverSampler,
    RandomUnderSampler,
    ResampledClassifier,
    TomekLinks,
    class_counts,
    resolve_sampling_strategy,
    tomek_links,
)

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
    ours.fit(X, y)
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
    np.testing.assert_array_equal(TomekLinks().fit(X, y).sample_indices_, ref.sample_indices_)


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
def test_nearmiss_keeps_imblearn_rows(binary, version):
    from imblearn.under_sampling import NearMiss as Ref
    X, y = binary
    ours, ref = NearMiss(version=version).fit(X, y), Ref(version=version)
    ref.fit_resample(X, y)
    assert set(ours.sample_indices_) == set(ref.sample_indices_)


@pytest.mark.filterwarnings("ignore:The number of the samples to be selected")
@pytest.mark.parametrize("version", [1, 2, 3])
@pytest.mark.parametrize("strategy", ["auto", {0: 300, 1: 250}])
def test_nearmiss_multiclass_keeps_imblearn_rows(multi, version, strategy):
    "Three classes: every non-minority class is scored against the minority class, as in imbalanced-learn."
    from imblearn.under_sampling import NearMiss as Ref
    X, y = multi
    ours, ref = NearMiss(version=version, sampling_strategy=strategy).fit(X, y), Ref(version=version, sampling_strategy=strategy)
    ref.fit_resample(X, y)
    assert set(ours.sample_indices_) == set(ref.sample_indices_)
    assert len(ours.sample_indices_) < len(y)


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
    a = RandomUnderSampler(random_state=5).fit(X, y).sample_indices_
    b = clone(RandomUnderSampler(random_state=5)).fit(X, y).sample_indices_
    np.testing.assert_array_equal(a, b)
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


IMBLEARN_CHECKS = ["check_target_type", "check_samplers_one_label", "check_samplers_fit", "check_samplers_fit_resample",
                   "check_samplers_sampling_strategy_fit_resample", "check_samplers_pandas", "check_samplers_list",
                   "check_samplers_preserve_dtype", "check_samplers_2d_target"]


@pytest.mark.parametrize("sampler", [RandomOverSampler(random_state=0), RandomUnderSampler(random_state=0),
                                     SMOTE(random_state=0), TomekLinks(), NearMiss()], ids=lambda s: type(s).__name__)
def test_imblearn_sampler_conformance_checks(sampler):
    "imbalanced-learn's own sampler checks (one-hot targets are deliberately not supported)."
    import warnings

    from imblearn.utils import estimator_checks as ec
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name in IMBLEARN_CHECKS:
            getattr(ec, name)(type(sampler).__name__, sampler)
