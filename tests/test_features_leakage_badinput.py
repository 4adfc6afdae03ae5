"""Bad input to every public entry point of mlsys.features.leakage is refused with a named mlsys error.

One row per case: (callable, the mlsys error expected, a fragment of its message that names the input).
A sweep then feeds every entry point generic bad values and fails on any raw library error.
"""

import numpy as np
import pandas as pd
import pytest
from badinput import check_named, each, raw_errors
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from mlsys.core import ConfigError, DataError, SchemaError
from mlsys.features.leakage import (
    Finding,
    LeakageReport,
    detect_duplicates,
    detect_fit_on_test,
    detect_group_leakage,
    detect_late_timestamps,
    detect_predictive_features,
    detect_time_overlap,
    detect_unavailable_features,
    flight_known_at,
    group_split,
    leakage_report,
    single_feature_auc,
    split_then_fit,
    time_split,
)

rng = np.random.default_rng(0)
N = 80
DF = pd.DataFrame({"t": pd.date_range("2013-01-01", periods=N, freq="h", tz="UTC"), "a": rng.normal(size=N),
                   "g": rng.integers(0, 10, N).astype(str), "y": np.tile([0, 1], N // 2)})
DF["k"] = DF.t - pd.Timedelta("1h")
TR, TE = DF.iloc[:60], DF.iloc[60:]
NAIVE = DF.assign(t=DF.t.dt.tz_localize(None))
FL = pd.DataFrame({"sched_dep": DF.t, "dep_delay": rng.normal(size=N), "air_time": rng.normal(size=N)})
SCALER = StandardScaler().fit(TR[["a"]])
F = Finding("c", "high", "m")

CASES = [
    ("time_split(empty)", lambda: time_split(DF.iloc[:0], "t"), DataError, "df has no rows"),  # IndexError
    ("time_split(time_col=None)", lambda: time_split(DF, None), ConfigError, "time_col must be a column name, got None"),
    ("time_split(time_col=[])", lambda: time_split(DF, []), ConfigError, "time_col must be a column name"),
    ("time_split(time_col=True)", lambda: time_split(DF, True), ConfigError, "time_col must be a column name"),
    ("time_split(cutoff='x')", lambda: time_split(DF, "t", cutoff="x"), ConfigError, "cutoff='x' is not a time"),
    ("time_split(cutoff=True)", lambda: time_split(DF, "t", cutoff=True), ConfigError, "cutoff must be a time"),
    ("time_split(cutoff=nan)", lambda: time_split(DF, "t", cutoff=np.nan), ConfigError, "cutoff is missing (NaT)"),
    ("time_split(test_size=None)", lambda: time_split(DF, "t", test_size=None), ConfigError, "test_size=None must be in (0, 1)"),
    ("time_split(test_size='x')", lambda: time_split(DF, "t", test_size="x"), ConfigError, "test_size='x'"),
    ("time_split(test_size=True)", lambda: time_split(DF, "t", test_size=True), ConfigError, "test_size=True"),
    ("time_split(gap='x')", lambda: time_split(DF, "t", gap="x"), ConfigError, "gap='x' is not a duration"),
    ("time_split(gap=True)", lambda: time_split(DF, "t", gap=True), ConfigError, "gap=True is not a duration"),
    ("time_split(gap=1.5)", lambda: time_split(DF, "t", gap=1.5), ConfigError, "bare number (pandas would read it as nanoseconds)"),
    ("time_split(gap='-1h')", lambda: time_split(DF, "t", gap="-1h"), ConfigError, "gap='-1h' must be a non-negative duration"),  # train overlapped test
    ("group_split(empty)", lambda: group_split(DF.iloc[:0], "g"), DataError, "df has no rows"),
    ("group_split(one row)", lambda: group_split(DF.iloc[:1], "g"), DataError, "df has 1 group(s) of ['g']"),
    ("group_split(groups=None)", lambda: group_split(DF, None), ConfigError, "groups must be a column name (a string) or a list"),
    ("group_split(groups=[])", lambda: group_split(DF, []), ConfigError, "groups is empty"),
    ("group_split(groups=5)", lambda: group_split(DF, 5), ConfigError, "groups must be a column name (a string) or a list"),
    ("group_split(groups twice)", lambda: group_split(DF, ["g", "g"]), ConfigError, "groups names a column twice"),
    ("group_split(test_size=None)", lambda: group_split(DF, "g", test_size=None), ConfigError, "test_size=None"),
    ("group_split(random_state='x')", lambda: group_split(DF, "g", random_state="x"), ConfigError, "random_state must be None"),
    ("group_split(random_state=1.5)", lambda: group_split(DF, "g", random_state=1.5), ConfigError, "random_state"),
    ("group_split(random_state=True)", lambda: group_split(DF, "g", random_state=True), ConfigError, "random_state"),
    ("split_then_fit(estimator=None)", lambda: split_then_fit(None, TR, TE, ["a"], "y"), ConfigError, "estimator must be a scikit-learn classifier"),
    ("split_then_fit(estimator=scaler)", lambda: split_then_fit(StandardScaler(), TR, TE, ["a"], "y"), ConfigError, "with predict_proba, got StandardScaler"),
    ("split_then_fit(one class in train)", lambda: split_then_fit(LogisticRegression(), TR.assign(y=0), TE, ["a"], "y"), DataError, "LogisticRegression refused the train/test rows"),
    ("split_then_fit(NaN labels)", lambda: split_then_fit(LogisticRegression(), TR.assign(y=np.nan), TE, ["a"], "y"), DataError, "train['y'] has 60 missing labels"),
    ("split_then_fit(float label)", lambda: split_then_fit(LogisticRegression(), TR, TE, ["y"], "a"), DataError, "train['a'] must hold binary labels"),  # truncated
    ("split_then_fit(one class in test)", lambda: split_then_fit(LogisticRegression(), TR, TE.assign(y=1), ["a"], "y"), DataError, "test['y'] holds a single class"),  # AUC was NaN
    ("split_then_fit(empty test)", lambda: split_then_fit(LogisticRegression(), TR, TE.iloc[:0], ["a"], "y"), DataError, "test has no rows"),
    ("split_then_fit(NaN feature)", lambda: split_then_fit(LogisticRegression(), TR.assign(a=np.nan), TE, ["a"], "y"), DataError, "Input X contains NaN"),
    ("split_then_fit(features=None)", lambda: split_then_fit(LogisticRegression(), TR, TE, None, "y"), ConfigError, "features must be a column name (a string) or a list"),
    ("split_then_fit(features=[])", lambda: split_then_fit(LogisticRegression(), TR, TE, [], "y"), ConfigError, "features is empty"),
    ("split_then_fit(label=[])", lambda: split_then_fit(LogisticRegression(), TR, TE, ["a"], []), ConfigError, "label must be a column name"),
    ("split_then_fit(label missing)", lambda: split_then_fit(LogisticRegression(), TR, TE, ["a"], "q"), SchemaError, "train lacks column(s) ['q']"),
    ("detect_time_overlap(naive vs aware)", lambda: detect_time_overlap(NAIVE.iloc[:60], TE, "t"), SchemaError, "train and test column 't' must both be tz-aware or both naive"),
    ("detect_time_overlap(empty train)", lambda: detect_time_overlap(TR.iloc[:0], TE, "t"), DataError, "train has no rows"),  # reported no leak
    ("detect_time_overlap(empty test)", lambda: detect_time_overlap(TR, TE.iloc[:0], "t"), DataError, "test has no rows"),
    ("detect_time_overlap(time_col=None)", lambda: detect_time_overlap(TR, TE, None), ConfigError, "time_col must be a column name"),
    ("detect_time_overlap(train=None)", lambda: detect_time_overlap(None, TE, "t"), DataError, "train must be a pandas DataFrame, got NoneType"),
    ("detect_fit_on_test(fitted=None)", lambda: detect_fit_on_test(None, TR, TE), ConfigError, "fitted must be a fitted scikit-learn transformer or Pipeline, got NoneType"),
    ("detect_fit_on_test(unfitted)", lambda: detect_fit_on_test(StandardScaler(), TR, TE, columns=["a"]), ConfigError, "fitted: This StandardScaler instance is not fitted"),
    ("detect_fit_on_test(a classifier)", lambda: detect_fit_on_test(LogisticRegression().fit(TR[["a"]], TR.y), TR, TE), ConfigError, "LogisticRegression has none (no transform)"),
    ("detect_fit_on_test(pipeline, no step)", lambda: detect_fit_on_test(Pipeline([("m", LogisticRegression())]).fit(TR[["a"]], TR.y), TR, TE), ConfigError, "Pipeline has none"),
    ("detect_fit_on_test(empty train)", lambda: detect_fit_on_test(SCALER, TR.iloc[:0], TE), DataError, "train has no rows"),
    ("detect_fit_on_test(columns=True)", lambda: detect_fit_on_test(SCALER, TR, TE, columns=True), ConfigError, "columns must be a column name (a string) or a list"),
    ("detect_fit_on_test(columns=[])", lambda: detect_fit_on_test(SCALER, TR, TE, columns=[]), ConfigError, "columns"),
    ("detect_fit_on_test(rtol=None)", lambda: detect_fit_on_test(SCALER, TR, TE, rtol=None), ConfigError, "rtol must be a finite number >= 0"),
    ("detect_fit_on_test(rtol=-1)", lambda: detect_fit_on_test(SCALER, TR, TE, rtol=-1), ConfigError, "rtol"),
    ("detect_fit_on_test(strings)", lambda: detect_fit_on_test(SCALER, TR.assign(a="s"), TE), DataError, "step 0 (StandardScaler) could not be refitted on train"),
    ("detect_duplicates(train=None)", lambda: detect_duplicates(None, TE), DataError, "train must be a pandas DataFrame, got NoneType"),  # AttributeError
    ("detect_duplicates(test='x')", lambda: detect_duplicates(TR, "x"), DataError, "test must be a pandas DataFrame, got str"),
    ("detect_duplicates(empty train)", lambda: detect_duplicates(TR.iloc[:0], TE), DataError, "train has no rows"),
    ("detect_duplicates(empty test)", lambda: detect_duplicates(TR, TE.iloc[:0]), DataError, "test has no rows"),
    ("detect_duplicates(columns=1.5)", lambda: detect_duplicates(TR, TE, 1.5), ConfigError, "columns must be a column name (a string) or a list"),
    ("detect_duplicates(radius=None)", lambda: detect_duplicates(TR, TE, radius=None), ConfigError, "radius must be a finite number >= 0"),
    ("detect_duplicates(radius=-1)", lambda: detect_duplicates(TR, TE, radius=-1), ConfigError, "radius"),
    ("detect_duplicates(max_rows=0)", lambda: detect_duplicates(TR, TE, max_rows=0), ConfigError, "max_rows must be a positive integer"),  # checked nothing
    ("detect_duplicates(max_rows=nan)", lambda: detect_duplicates(TR, TE, max_rows=np.nan), ConfigError, "max_rows"),
    ("detect_duplicates(near='x')", lambda: detect_duplicates(TR, TE, near="x"), ConfigError, "near must be True or False"),
    ("detect_group_leakage(groups=[])", lambda: detect_group_leakage(TR, TE, []), ConfigError, "groups is empty"),  # every row one group
    ("detect_group_leakage(groups=None)", lambda: detect_group_leakage(TR, TE, None), ConfigError, "groups must be a column name (a string) or a list"),
    ("detect_group_leakage(empty test)", lambda: detect_group_leakage(TR, TE.iloc[:0], "g"), DataError, "test has no rows"),
    ("detect_unavailable_features(None)", lambda: detect_unavailable_features(None), ConfigError, "features=None must be a non-empty list"),
    ("detect_unavailable_features([None])", lambda: detect_unavailable_features([None]), ConfigError, "features must be a column name, got None"),
    ("detect_unavailable_features(availability='x')", lambda: detect_unavailable_features(["a"], "x"), ConfigError, "availability must map each column"),
    ("detect_unavailable_features(availability value)", lambda: detect_unavailable_features(["a"], {"a": None}), ConfigError, "availability values must be one of"),
    ("detect_late_timestamps(naive vs aware)", lambda: detect_late_timestamps(DF.assign(k=DF.k.dt.tz_localize(None)), "t", {"a": "k"}), SchemaError, "must both be tz-aware or both naive"),
    ("detect_late_timestamps(empty)", lambda: detect_late_timestamps(DF.iloc[:0], "t", {"a": "k"}), DataError, "df has no rows"),
    ("detect_late_timestamps(prediction_time_col=None)", lambda: detect_late_timestamps(DF, None, {"a": "k"}), ConfigError, "prediction_time_col must be a column name"),
    ("detect_late_timestamps(known_at value None)", lambda: detect_late_timestamps(DF, "t", {"a": None}), ConfigError, "known_at['a'] must be a column name"),
    ("detect_late_timestamps(known_at value 5)", lambda: detect_late_timestamps(DF, "t", {"a": 5}), SchemaError, "df lacks column(s) [5]"),
    ("detect_late_timestamps(tolerance='x')", lambda: detect_late_timestamps(DF, "t", {"a": "k"}, tolerance="x"), ConfigError, "tolerance='x' is not a duration"),
    ("detect_late_timestamps(tolerance=-5)", lambda: detect_late_timestamps(DF, "t", {"a": "k"}, tolerance=-5), ConfigError, "tolerance=-5 is a bare number"),
    ("detect_late_timestamps(tolerance='-1h')", lambda: detect_late_timestamps(DF, "t", {"a": "k"}, tolerance="-1h"), ConfigError, "tolerance='-1h' must be a non-negative duration"),
    ("flight_known_at(string delays)", lambda: flight_known_at(FL.assign(dep_delay="x")), SchemaError, "flights column 'dep_delay' must hold minutes as numbers"),
    ("flight_known_at(string times)", lambda: flight_known_at(FL.assign(sched_dep="x")), SchemaError, "flights column 'sched_dep' must hold timestamps"),
    ("flight_known_at(inf delays)", lambda: flight_known_at(FL.assign(dep_delay=np.inf)), DataError, "flights column 'dep_delay' holds infinite minutes"),
    ("single_feature_auc(empty X)", lambda: single_feature_auc(DF[["a"]].iloc[:0], DF.y), DataError, "X must have rows and columns, got shape (0, 1)"),
    ("single_feature_auc(no columns)", lambda: single_feature_auc(DF[[]], DF.y), DataError, "X must have rows and columns"),  # empty result
    ("single_feature_auc(y short)", lambda: single_feature_auc(DF[["a"]], DF.y[:5]), DataError, "y has 5 labels but X has 80 rows"),
    ("single_feature_auc(y='x')", lambda: single_feature_auc(DF[["a"]], "x"), DataError, "y must be a 1-D array of 80 binary labels"),
    ("single_feature_auc(y 2-D)", lambda: single_feature_auc(DF[["a"]], np.ones((N, 2))), DataError, "y must be a 1-D array"),
    ("single_feature_auc(y strings)", lambda: single_feature_auc(DF[["a"]], DF.y.astype(str)), DataError, "y must hold binary labels (bool or 0/1), got dtype"),  # '0'/'1' were cast
    ("single_feature_auc(y 0.5/1.5)", lambda: single_feature_auc(DF[["a"]], DF.y + 0.5), DataError, "y must hold binary labels (bool or 0/1), got values [0.5, 1.5]"),  # truncated
    ("single_feature_auc(y inf)", lambda: single_feature_auc(DF[["a"]], np.full(N, np.inf)), DataError, "y must hold binary labels"),
    ("single_feature_auc(y one class)", lambda: single_feature_auc(DF[["a"]], np.zeros(N)), DataError, "binary with both classes"),
    ("single_feature_auc(n_splits=1)", lambda: single_feature_auc(DF[["g"]], DF.y, n_splits=1), ConfigError, "n_splits must be an integer >= 2"),
    ("single_feature_auc(n_splits=None)", lambda: single_feature_auc(DF[["g"]], DF.y, n_splits=None), ConfigError, "n_splits"),
    ("single_feature_auc(n_splits=1000)", lambda: single_feature_auc(DF[["g"]], DF.y, n_splits=1000), DataError, "n_splits=1000 exceeds the 40 rows"),
    ("single_feature_auc(inf feature)", lambda: single_feature_auc(DF[["a"]].assign(a=np.inf), DF.y), DataError, "X column 'a' holds 80 infinite value(s)"),
    ("single_feature_auc(random_state='x')", lambda: single_feature_auc(DF[["g"]], DF.y, random_state="x"), ConfigError, "random_state"),
    ("detect_predictive_features(threshold=None)", lambda: detect_predictive_features(DF[["a"]], DF.y, threshold=None), ConfigError, "threshold must be a number in (0.5, 1]"),
    ("detect_predictive_features(high='x')", lambda: detect_predictive_features(DF[["a"]], DF.y, high="x"), ConfigError, "high must be a number"),
    ("leakage_report(features=None)", lambda: leakage_report(TR, TE, None, "y"), ConfigError, "features must be a column name (a string) or a list"),
    ("leakage_report(label=[])", lambda: leakage_report(TR, TE, ["a"], []), ConfigError, "label must be a column name"),
    ("leakage_report(groups=0)", lambda: leakage_report(TR, TE, ["a"], "y", groups=0), ConfigError, "groups must be a column name (a string) or a list"),  # was skipped
    ("leakage_report(groups=1.5)", lambda: leakage_report(TR, TE, ["a"], "y", groups=1.5), ConfigError, "groups must be a column name (a string) or a list"),
    ("leakage_report(known_at without time)", lambda: leakage_report(TR, TE, ["a"], "y", known_at={"a": "k"}), ConfigError, "prediction_time_col and known_at go together"),  # was skipped
    ("leakage_report(time without known_at)", lambda: leakage_report(TR, TE, ["a"], "y", prediction_time_col="t"), ConfigError, "go together"),
    ("leakage_report(fitted='x')", lambda: leakage_report(TR, TE, ["a"], "y", fitted="x"), ConfigError, "fitted must be a fitted scikit-learn transformer"),
    ("leakage_report(duplicate_columns=0)", lambda: leakage_report(TR, TE, ["a"], "y", duplicate_columns=0), ConfigError, "columns must be a column name (a string) or a list"),  # fell back
    ("leakage_report(duplicate_columns=[])", lambda: leakage_report(TR, TE, ["a"], "y", duplicate_columns=[]), ConfigError, "columns is empty"),
    ("leakage_report(auc_threshold='x')", lambda: leakage_report(TR, TE, ["a"], "y", auc_threshold="x"), ConfigError, "auc_threshold must be a number in (0.5, 1]"),
    ("leakage_report(auc_threshold=2)", lambda: leakage_report(TR, TE, ["a"], "y", auc_threshold=2), ConfigError, "auc_threshold"),
    ("leakage_report(empty test)", lambda: leakage_report(TR, TE.iloc[:0], ["a"], "y"), DataError, "test has no rows"),
    ("leakage_report(float label)", lambda: leakage_report(TR, TE, ["y"], "a"), DataError, "column 'a' must hold binary labels"),
    ("Finding(severity=array)", lambda: Finding("c", np.array([]), "m"), ConfigError, "severity=array([], dtype=float64) must be one of"),
    ("Finding(check=None)", lambda: Finding(None, "high", "m"), ConfigError, "check must be a non-empty string"),
    ("Finding(message=5)", lambda: Finding("c", "high", 5), ConfigError, "message must be a non-empty string"),
    ("Finding(evidence=5)", lambda: Finding("c", "high", "m", evidence=5), ConfigError, "evidence must be a dict"),
    ("LeakageReport(findings=None)", lambda: LeakageReport(None), ConfigError, "findings must be a list of Finding, got NoneType"),
    ("LeakageReport(findings=[5])", lambda: LeakageReport([5]), ConfigError, "findings must be a list of Finding, got list holding int"),
    ("LeakageReport(findings='x')", lambda: LeakageReport("x"), ConfigError, "findings must be a list of Finding, got str"),
    ("LeakageReport(checks_run='x')", lambda: LeakageReport([F], "x"), ConfigError, "checks_run must be a list of check names"),
    ("LeakageReport + None", lambda: LeakageReport([F]) + None, DataError, "only a LeakageReport can be added to a LeakageReport, got NoneType"),
    ("LeakageReport.for_check(None)", lambda: LeakageReport([F]).for_check(None), ConfigError, "check must be a check name"),
]


@pytest.mark.parametrize("fn, error, fragment", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_named(fn, error, fragment):
    check_named(fn, error, fragment)


def test_good_input_unchanged():
    "Durations as strings or Timedeltas, a single string as a column, bool labels: as before."
    a = time_split(DF, "t", cutoff=DF.t.iloc[40], gap="2h")
    b = time_split(DF, "t", cutoff=DF.t.iloc[40], gap=pd.Timedelta(hours=2))
    pd.testing.assert_frame_equal(a[0], b[0])
    assert a[0].t.max() < DF.t.iloc[40] - pd.Timedelta("2h") + pd.Timedelta("1ns")
    pd.testing.assert_series_equal(single_feature_auc(DF[["a"]], DF.y.astype(bool)), single_feature_auc(DF[["a"]], DF.y))
    assert detect_duplicates(TR, TE, "a").checks_run == ["duplicates"]
    model, auc = split_then_fit(LogisticRegression(), TR.assign(y=TR.y.astype(bool)), TE, "a", "y")
    assert 0 <= auc <= 1




def test_sweep_no_entry_point_raises_a_raw_error():
    "Every entry point and parameter, every generic bad value: refused by an mlsys error, or accepted."
    calls = {
        **each(time_split, df=DF, time_col="t", cutoff=None, test_size=0.2, gap=None),
        **each(group_split, df=DF, groups="g", test_size=0.2, random_state=0),
        **each(split_then_fit, estimator=LogisticRegression(), train=TR, test=TE, features=["a"], label="y"),
        **each(detect_time_overlap, train=TR, test=TE, time_col="t"),
        **each(detect_fit_on_test, fitted=SCALER, train=TR, test=TE, columns=None, rtol=1e-7),
        **each(detect_duplicates, train=TR, test=TE, columns=None, near=True, radius=1e-3, max_rows=5000),
        **each(detect_group_leakage, train=TR, test=TE, groups="g"),
        **each(detect_unavailable_features, features=["a"], availability=None),
        **each(detect_late_timestamps, df=DF, prediction_time_col="t", known_at={"a": "k"}, tolerance=None),
        **each(flight_known_at, flights=FL),
        **each(single_feature_auc, X=DF[["a", "g"]], y=DF.y, n_splits=5, random_state=0),
        **each(detect_predictive_features, X=DF[["a", "g"]], y=DF.y, threshold=0.8, high=0.95),
        **each(leakage_report, train=TR, test=TE, features=["a"], label="y", time_col=None, groups=None, availability=None,
               prediction_time_col=None, known_at=None, fitted=None, duplicate_columns=None, auc_threshold=0.8),
        **each(Finding, check="c", severity="high", message="m", feature=None, evidence={}),
        **each(LeakageReport, findings=[F], checks_run=["c"]),
        "LeakageReport.__add__": lambda v: LeakageReport([F]) + v,
        "LeakageReport.for_check": lambda v: LeakageReport([F]).for_check(v),
    }
    assert raw_errors(calls) == []
