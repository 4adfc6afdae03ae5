"""Bad input to every public entry point of mlsys.imbalance.metrics is refused with a named mlsys error.

One row per case: (callable, the mlsys error expected, a fragment of its message that names the input).
A sweep then feeds every entry point generic bad values and fails on any raw library error.
"""

import numpy as np
import pandas as pd
import pytest
from badinput import each, raw_errors

from mlsys.core import ConfigError, DataError, MlsysError
from mlsys.imbalance.metrics import (
    average_precision,
    balanced_accuracy,
    cancellation_task,
    cost_weighted_error,
    min_cost_threshold,
    per_class_report,
    pr_curve,
)

YT = np.array([0, 1, 0, 1, 1])
YP = np.array([0, 1, 1, 1, 0])
S = np.array([0.1, 0.9, 0.4, 0.8, 0.3])
C = [[0, 1], [5, 0]]
MIXED = np.array([0, "a", 1, 0, 1], dtype=object)

CASES = [
    ("per_class_report(NaN y_pred)", lambda: per_class_report(YT, np.full(5, np.nan)), DataError, "y_pred has 5 missing values"),  # scored 0
    ("balanced_accuracy(NaN y_pred)", lambda: balanced_accuracy(YT, [0, 1, np.nan, 1, 0]), DataError, "y_pred has 1 missing values"),
    ("per_class_report(strings vs ints)", lambda: per_class_report(YT, YP.astype(str)), DataError, "numbers and strings never match"),
    ("balanced_accuracy(strings vs ints)", lambda: balanced_accuracy(YT, np.array(["a"] * 5)), DataError, "y_true holds int64 and y_pred holds <U1"),  # was 0.0
    ("per_class_report(mixed types)", lambda: per_class_report(MIXED, YP), DataError, "y_true/y_pred mix label types"),
    ("cost_weighted_error(mixed types)", lambda: cost_weighted_error(MIXED, YP, C), DataError, "mix label types"),
    ("per_class_report(labels='x')", lambda: per_class_report(YT, YP, labels="x"), ConfigError, "labels must be a 1-D list of classes, got str"),
    ("per_class_report(labels=5)", lambda: per_class_report(YT, YP, labels=5), ConfigError, "labels must be a 1-D list of classes, got int"),
    ("per_class_report(labels 3-D)", lambda: per_class_report(YT, YP, labels=np.ones((1, 1, 1))), ConfigError, "labels must be a 1-D list"),  # flattened
    ("per_class_report(labels=[])", lambda: per_class_report(YT, YP, labels=[]), ConfigError, "labels is empty"),
    ("per_class_report(labels twice)", lambda: per_class_report(YT, YP, labels=[0, 0]), ConfigError, "labels lists a class twice"),
    ("per_class_report(2-D)", lambda: per_class_report(np.ones((5, 2)), YP), DataError, "y_true and y_pred must be 1-D"),
    ("per_class_report(lengths)", lambda: per_class_report(YT, YP[:3]), DataError, "y_true has 5 labels but y_pred has 3"),
    ("per_class_report(None)", lambda: per_class_report(None, YP), DataError, "y_true and y_pred must be 1-D"),
    ("cost_weighted_error(cost_matrix='x')", lambda: cost_weighted_error(YT, YP, "x"), ConfigError, "cost_matrix must be a 2x2 matrix of numbers"),
    ("cost_weighted_error(cost_matrix strings)", lambda: cost_weighted_error(YT, YP, [[0, "a"], [1, 0]]), ConfigError, "cost_matrix must be a 2x2 matrix of numbers"),
    ("cost_weighted_error(cost_matrix={})", lambda: cost_weighted_error(YT, YP, {}), ConfigError, "cost_matrix must be a 2x2 matrix"),
    ("cost_weighted_error(cost_matrix NaN)", lambda: cost_weighted_error(YT, YP, [[0, np.nan], [1, 0]]), ConfigError, "cost_matrix entries must be finite"),
    ("cost_weighted_error(cost_matrix shape)", lambda: cost_weighted_error(YT, YP, [[0, 1]]), ConfigError, "cost_matrix must have shape (2, 2)"),
    ("cost_weighted_error(labels=1.5)", lambda: cost_weighted_error(YT, YP, C, labels=1.5), ConfigError, "labels must be a 1-D list of classes"),
    ("cost_weighted_error(labels twice)", lambda: cost_weighted_error(YT, YP, C, labels=[0, 0]), ConfigError, "labels lists a class twice"),
    ("min_cost_threshold(cost_matrix='x')", lambda: min_cost_threshold(YT, S, "x"), ConfigError, "cost_matrix must be a 2x2 matrix of numbers"),
    ("min_cost_threshold(cost_matrix Obj)", lambda: min_cost_threshold(YT, S, object()), ConfigError, "cost_matrix must be a 2x2 matrix of numbers"),
    ("pr_curve(strings)", lambda: pr_curve(YT, S.astype(str)), DataError, "numbers and strings never match"),
    ("pr_curve(not binary)", lambda: pr_curve(YT * 2, S), DataError, "y_true must be binary"),
    ("pr_curve(mixed y)", lambda: pr_curve(MIXED, S), DataError, "y_true must be binary"),
    ("average_precision(no positives)", lambda: average_precision(np.zeros(5), S), DataError, "no positive examples"),
    ("average_precision(inf scores)", lambda: average_precision(YT, [np.inf, 1, 2, 3, 4]), DataError, "scores has 1 NaN or infinite values"),
    ("cancellation_task(random_state='x')", lambda: cancellation_task("2013-01-01", "2013-01-01", random_state="x"), ConfigError, "random_state must be an integer seed"),  # ignored
    ("cancellation_task(random_state=1.5)", lambda: cancellation_task("2013-01-01", "2013-01-01", random_state=1.5), ConfigError, "random_state"),
    ("cancellation_task(random_state=True)", lambda: cancellation_task("2013-01-01", "2013-01-01", random_state=True), ConfigError, "random_state"),
    ("cancellation_task(random_state=-1)", lambda: cancellation_task("2013-01-01", "2013-01-01", random_state=-1), ConfigError, "random_state"),
]


@pytest.mark.parametrize("fn, error, fragment", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_named(fn, error, fragment):
    with pytest.raises(error) as info:
        fn()
    assert isinstance(info.value, MlsysError)
    assert fragment in str(info.value), str(info.value)


def test_good_input_unchanged():
    "Labels not seen in y are reported with support 0; reordered labels reorder the matrix; numpy seeds work."
    rep = per_class_report(YT, YP, labels=[1, 7])
    assert list(rep.index) == [1, 7] and rep.loc[7, "support"] == 0
    assert cost_weighted_error(YT, YP, C, labels=[1, 0]) == cost_weighted_error(YT, YP, [[0, 5], [1, 0]])
    assert balanced_accuracy(YT.astype(float), YP.astype(float)) == balanced_accuracy(YT, YP)
    assert balanced_accuracy(pd.Series(["a", "b"]), np.array(["a", "a"])) == 0.5




def test_sweep_no_entry_point_raises_a_raw_error():
    "Every entry point and parameter, every generic bad value: refused by an mlsys error, or accepted."
    calls = {
        **each(per_class_report, y_true=YT, y_pred=YP, labels=None),
        **each(balanced_accuracy, y_true=YT, y_pred=YP),
        **each(pr_curve, y_true=YT, scores=S),
        **each(average_precision, y_true=YT, scores=S),
        **each(cost_weighted_error, y_true=YT, y_pred=YP, cost_matrix=C, labels=None),
        **each(min_cost_threshold, y_true=YT, scores=S, cost_matrix=C),
        **each(cancellation_task, start="2013-01-01", end="2013-01-01", sample=None, random_state=0),
    }
    assert raw_errors(calls) == []
