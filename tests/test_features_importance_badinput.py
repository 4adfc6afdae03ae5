"""Bad input to every public entry point of mlsys.features.importance is refused with a named mlsys error.

One row per case: (callable, arguments, the mlsys error expected, a fragment of its message that names the input).
A sweep then feeds every entry point generic bad values and fails on any raw library error.
"""

import numpy as np
import pandas as pd
import pytest
from badinput import check_named, raw_errors
from sklearn.linear_model import LogisticRegression

from mlsys.core import ConfigError, DataError, SchemaError
from mlsys.features.importance import (
    ImportanceResult,
    UnseenValueFlagger,
    distribution_shift,
    drop_column_importance,
    feature_coverage,
    permutation_importance,
    psi,
)

rng = np.random.default_rng(0)
X = pd.DataFrame({"a": rng.normal(size=60), "b": rng.normal(size=60)})
Y = (X.a > 0).astype(int).to_numpy()
MODEL = LogisticRegression().fit(X, Y)
IMP = pd.DataFrame({"repeat_0": [0.1, 0.0], "repeat_1": [0.2, 0.1]}, index=["a", "b"])


def perm(**kw):
    args = dict(estimator=MODEL, X=X, y=Y, n_repeats=2) | kw
    return lambda: permutation_importance(**args)


def drop(**kw):
    args = dict(estimator=LogisticRegression(), X_train=X, y_train=Y, X_test=X, y_test=Y, n_repeats=2) | kw
    return lambda: drop_column_importance(**args)


def result(**kw):
    return lambda: ImportanceResult(**(dict(importances=IMP, baseline_score=0.5, method="permutation") | kw))


CASES = [
    # the issue's own case (item 11)
    ("psi(bins=0)", lambda: psi(X.a, X.b, bins=0), ConfigError, "bins must be an integer in [2, 1000000]"),
    # the same classes elsewhere
    ("psi(bins=1)", lambda: psi(X.a, X.b, bins=1), ConfigError, "one bin makes every PSI 0"),
    ("psi(bins=-1)", lambda: psi(X.a, X.b, bins=-1), ConfigError, "bins must be an integer"),
    ("psi(bins=True)", lambda: psi(X.a, X.b, bins=True), ConfigError, "bins must be an integer"),
    ("psi(bins=1.5)", lambda: psi(X.a, X.b, bins=1.5), ConfigError, "bins must be an integer"),
    ("psi(bins=None)", lambda: psi(X.a, X.b, bins=None), ConfigError, "bins must be an integer"),
    ("psi(bins=2**40)", lambda: psi(X.a, X.b, bins=2**40), ConfigError, "bins must be an integer"),  # MemoryError
    ("psi(eps=0)", lambda: psi(X.a, X.b, eps=0), ConfigError, "eps must be a number in (0, 1)"),
    ("psi(eps=None)", lambda: psi(X.a, X.b, eps=None), ConfigError, "eps must be a number in (0, 1)"),  # no floor
    ("psi(eps=1.5)", lambda: psi(X.a, X.b, eps=1.5), ConfigError, "eps"),
    ("psi(eps='x')", lambda: psi(X.a, X.b, eps="x"), ConfigError, "eps"),
    ("psi(reference='x')", lambda: psi("x", X.b), DataError, "reference must be a 1-D array, list or Series of values, got str"),
    ("psi(reference=1.5)", lambda: psi(1.5, X.b), DataError, "reference must be a 1-D array"),
    ("psi(current=None)", lambda: psi(X.a, None), DataError, "current must be a 1-D array"),
    ("psi(reference=2-D)", lambda: psi(np.ones((3, 3)), X.b), DataError, "reference must be a 1-D array, list or Series of values, got ndarray of shape (3, 3)"),
    ("psi(current=frame)", lambda: psi(X.a, X), DataError, "current must be a 1-D array"),
    ("psi(reference inf)", lambda: psi(np.array([np.inf, 1, 2]), X.b), DataError, "reference holds 1 infinite value(s)"),
    ("psi(current inf)", lambda: psi(X.a, np.array([np.inf, 1.0])), DataError, "current holds 1 infinite value(s)"),
    ("psi(all missing)", lambda: psi([np.nan], X.b), DataError, "non-missing values on both sides"),
    ("distribution_shift(None, X)", lambda: distribution_shift(None, X), DataError, "reference must be a pandas DataFrame, got NoneType"),
    ("distribution_shift(X, array)", lambda: distribution_shift(X, X.to_numpy()), DataError, "current must be a pandas DataFrame, got ndarray"),
    ("distribution_shift(empty reference)", lambda: distribution_shift(X.iloc[:0], X), DataError, "reference has no rows"),
    ("distribution_shift(empty current)", lambda: distribution_shift(X, X.iloc[:0]), DataError, "current has no rows"),  # was all NaN
    ("distribution_shift(no columns)", lambda: distribution_shift(X[[]], X), DataError, "reference has no columns"),
    ("distribution_shift(columns=[])", lambda: distribution_shift(X, X, columns=[]), ConfigError, "columns is empty"),
    ("distribution_shift(columns=5)", lambda: distribution_shift(X, X, columns=5), ConfigError, "columns must be a list of column names, got int"),
    ("distribution_shift(columns missing)", lambda: distribution_shift(X, X[["a"]]), SchemaError, "current: unknown column(s) ['b']"),
    ("distribution_shift(bins=0)", lambda: distribution_shift(X, X, bins=0), ConfigError, "bins must be an integer"),
    ("distribution_shift(inf)", lambda: distribution_shift(X, X.assign(a=np.inf)), DataError, "column 'a': current holds"),
    ("feature_coverage('x')", lambda: feature_coverage("x"), DataError, "splits must be a mapping {name: DataFrame}, got str"),
    ("feature_coverage([X])", lambda: feature_coverage([X]), DataError, "splits must be a mapping"),
    ("feature_coverage({'tr': None})", lambda: feature_coverage({"tr": None}), DataError, "splits['tr'] must be a DataFrame, got NoneType"),
    ("feature_coverage({})", lambda: feature_coverage({}), DataError, "splits is empty"),
    ("feature_coverage(columns=[])", lambda: feature_coverage({"tr": X}, columns=[]), ConfigError, "columns is empty"),  # empty frame
    ("feature_coverage(columns=1.5)", lambda: feature_coverage({"tr": X}, columns=1.5), ConfigError, "columns must be a list"),
    ("feature_coverage(columns twice)", lambda: feature_coverage({"tr": X}, columns=["a", "a"]), ConfigError, "columns names a column twice"),
    ("feature_coverage(empty split)", lambda: feature_coverage({"tr": X, "te": X.iloc[:0]}), DataError, "splits['te'] has no rows"),
    ("permutation_importance(estimator=None)", perm(estimator=None), ConfigError, "estimator/scoring"),
    ("permutation_importance(estimator='x')", perm(estimator="x"), ConfigError, "estimator/scoring"),
    ("permutation_importance(scoring='nonsense')", perm(scoring="nonsense"), ConfigError, "estimator/scoring: The 'scoring' parameter"),
    ("permutation_importance(X=None)", perm(X=None), DataError, "X must be a DataFrame or a 2-D array, got NoneType"),
    ("permutation_importance(X empty)", perm(X=X.iloc[:0]), DataError, "X has no rows"),
    ("permutation_importance(X no columns)", perm(X=X[[]]), DataError, "X has no columns"),
    ("permutation_importance(X NaN)", perm(X=X.assign(a=np.nan)), DataError, "LogisticRegression refused X and y: Input X contains NaN"),
    ("permutation_importance(X other columns)", perm(X=X.assign(c=1.0)), DataError, "LogisticRegression refused X and y"),
    ("permutation_importance(y=None)", perm(y=None), DataError, "y must be an array of 60 labels, got NoneType"),
    ("permutation_importance(y=1.5)", perm(y=1.5), DataError, "y must be an array of 60 labels"),
    ("permutation_importance(y short)", perm(y=Y[:5]), DataError, "y has 5 rows but X has 60"),
    ("permutation_importance(y NaN)", perm(y=np.full(60, np.nan)), DataError, "refused X and y: Input y_true contains NaN"),
    ("permutation_importance(n_repeats=True)", perm(n_repeats=True), ConfigError, "n_repeats must be a positive integer"),
    ("permutation_importance(n_repeats=0)", perm(n_repeats=0), ConfigError, "n_repeats must be a positive integer"),
    ("permutation_importance(random_state='x')", perm(random_state="x"), ConfigError, "random_state"),
    ("permutation_importance(random_state=-1)", perm(random_state=-1), ConfigError, "random_state"),
    ("permutation_importance(random_state=True)", perm(random_state=True), ConfigError, "random_state must be None"),
    ("permutation_importance(groups='x')", perm(groups="x"), ConfigError, "groups must be a non-empty mapping"),
    ("permutation_importance(groups={})", perm(groups={}), ConfigError, "groups must be a non-empty mapping"),  # empty result
    ("permutation_importance(groups={'g': []})", perm(groups={"g": []}), ConfigError, "groups['g'] is empty"),
    ("permutation_importance(groups={'g': None})", perm(groups={"g": None}), ConfigError, "groups['g'] must be a list of column names"),
    ("permutation_importance(groups={'g': 'q'})", perm(groups={"g": "q"}), SchemaError, "groups['g']: unknown column(s) ['q']"),
    ("permutation_importance(confidence=1)", perm(confidence=1.0), ConfigError, "confidence must be a number in (0, 1)"),
    ("permutation_importance(confidence='x')", perm(confidence="x"), ConfigError, "confidence must be a number in (0, 1)"),
    ("permutation_importance(confidence=True)", perm(confidence=True), ConfigError, "confidence"),
    ("drop_column_importance(estimator=None)", drop(estimator=None), ConfigError, "estimator must be a scikit-learn estimator"),
    ("drop_column_importance(estimator=[])", drop(estimator=[]), ConfigError, "estimator must be a scikit-learn estimator"),
    ("drop_column_importance(y_train=None)", drop(y_train=None), DataError, "y_train must be an array of 60 labels"),
    ("drop_column_importance(y_test=1.5)", drop(y_test=1.5), DataError, "y_test must be an array of 60 labels"),
    ("drop_column_importance(one class)", drop(y_train=np.zeros(60)), DataError, "LogisticRegression refused X_train/y_train"),
    ("drop_column_importance(X_train NaN)", drop(X_train=X.assign(a=np.nan)), DataError, "refused X_train/y_train: Input X contains NaN"),
    ("drop_column_importance(X_test NaN)", drop(X_test=X.assign(a=np.nan)), DataError, "refused X_test/y_test"),
    ("drop_column_importance(groups=5)", drop(groups=5), ConfigError, "groups must be a non-empty mapping"),
    ("drop_column_importance(n_repeats=2**40)", drop(n_repeats=2**40), ConfigError, "would draw more than 2**28 row indices"),
    ("drop_column_importance(confidence=0)", drop(confidence=0), ConfigError, "confidence"),
    ("drop_column_importance(scoring='x')", drop(scoring="x"), ConfigError, "estimator/scoring"),
    ("ImportanceResult(importances=None)", result(importances=None), DataError, "importances must be a non-empty DataFrame"),
    ("ImportanceResult(importances empty)", result(importances=IMP.iloc[:, :0]), DataError, "importances must be a non-empty DataFrame (features x repeats), got DataFrame of shape (2, 0)"),
    ("ImportanceResult(importances strings)", result(importances=IMP.astype(str)), DataError, "importances must hold numbers"),
    ("ImportanceResult(method='nope')", result(method="nope"), ConfigError, "method must be one of ('permutation', 'drop-column')"),
    ("ImportanceResult(method=None)", result(method=None), ConfigError, "method must be one of"),
    ("ImportanceResult(confidence=2)", result(confidence=2), ConfigError, "confidence must be a number in (0, 1)"),
    ("ImportanceResult(baseline_score='x')", result(baseline_score="x"), DataError, "baseline_score must be a number"),
    ("UnseenValueFlagger(tolerance=True)", lambda: UnseenValueFlagger(tolerance=True).fit(X), ConfigError, "tolerance must be a non-negative finite number"),
    ("UnseenValueFlagger(tolerance=nan)", lambda: UnseenValueFlagger(tolerance=np.nan).fit(X), ConfigError, "tolerance"),
    ("UnseenValueFlagger(tolerance=inf)", lambda: UnseenValueFlagger(tolerance=np.inf).fit(X), ConfigError, "tolerance"),  # nothing unseen
    ("UnseenValueFlagger(tolerance=-1)", lambda: UnseenValueFlagger(tolerance=-1).fit(X), ConfigError, "tolerance"),
    ("UnseenValueFlagger.fit(None)", lambda: UnseenValueFlagger().fit(None), DataError, "X"),
    ("UnseenValueFlagger.transform(reordered)", lambda: UnseenValueFlagger().fit(X).transform(X[["b", "a"]]), SchemaError, "X: columns do not match"),
    ("UnseenValueFlagger.get_feature_names_out(wrong)", lambda: UnseenValueFlagger().fit(X).get_feature_names_out(["q", "r"]), SchemaError, "input_features"),
]


@pytest.mark.parametrize("fn, error, fragment", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_named(fn, error, fragment):
    check_named(fn, error, fragment)


def test_good_input_unchanged():
    "A single string is one column; numpy counts, seeds and arrays work as before."
    np.testing.assert_array_equal(distribution_shift(X, X, columns="a").index, ["a"])
    assert list(feature_coverage({"tr": X}, columns="b").index) == ["b"]
    r1 = permutation_importance(MODEL, X, Y, n_repeats=np.int64(2))
    r2 = permutation_importance(MODEL, X, Y, n_repeats=2)
    pd.testing.assert_frame_equal(r1.importances, r2.importances)
    assert psi(X.a, X.b, bins=np.int64(3)) == psi(X.a, X.b, bins=3)




def test_sweep_no_entry_point_raises_a_raw_error():
    "Every entry point and parameter, every generic bad value: refused by an mlsys error, or accepted."
    u = UnseenValueFlagger().fit(X)
    p_args = dict(estimator=MODEL, X=X, y=Y, n_repeats=1)
    d_args = dict(estimator=LogisticRegression(), X_train=X, y_train=Y, X_test=X, y_test=Y, n_repeats=1)
    calls = {
        **{f"permutation_importance.{k}": (lambda v, k=k: permutation_importance(**(p_args | {k: v})))
           for k in [*p_args, "scoring", "random_state", "groups", "confidence"]},
        **{f"drop_column_importance.{k}": (lambda v, k=k: drop_column_importance(**(d_args | {k: v})))
           for k in [*d_args, "scoring", "random_state", "groups", "confidence"]},
        "feature_coverage.splits": lambda v: feature_coverage(v), "feature_coverage.columns": lambda v: feature_coverage({"t": X}, v),
        "psi.reference": lambda v: psi(v, X.b), "psi.current": lambda v: psi(X.a, v),
        "psi.bins": lambda v: psi(X.a, X.b, bins=v), "psi.eps": lambda v: psi(X.a, X.b, eps=v),
        "distribution_shift.reference": lambda v: distribution_shift(v, X), "distribution_shift.current": lambda v: distribution_shift(X, v),
        "distribution_shift.columns": lambda v: distribution_shift(X, X, v), "distribution_shift.bins": lambda v: distribution_shift(X, X, bins=v),
        "UnseenValueFlagger.tolerance": lambda v: UnseenValueFlagger(v).fit(X).transform(X),
        "UnseenValueFlagger.fit": lambda v: UnseenValueFlagger().fit(v), "UnseenValueFlagger.transform": lambda v: u.transform(v),
        "UnseenValueFlagger.get_feature_names_out": lambda v: u.get_feature_names_out(v),
        **{f"ImportanceResult.{k}": (lambda v, k=k: result(**{k: v})().summary())
           for k in ("importances", "baseline_score", "method", "confidence")},
    }
    assert raw_errors(calls) == []
