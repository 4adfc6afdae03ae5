"""evaluation.suite: the contract every behavioural test follows (predict_scores, TestResult, ModelTest), the suite and its
reports (valid JSON without NaN tokens, escaped HTML), and the scores shared by the tests of one run (content-keyed)."""
import json
import math

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score

from mlsys.core import ConfigError, DataError, SchemaError
from mlsys.evaluation.suite import (BehaviouralSuite, MetricTest, ModelTest, SuiteFailure, SuiteResult, TestResult, check_features,
                                    predict_scores, suite_html, suite_markdown)


def strict_json(text: str):
    "json.loads that refuses NaN/Infinity tokens (which are not JSON)."
    return json.loads(text, parse_constant=lambda c: (_ for _ in ()).throw(ValueError(f"not JSON: {c}")))


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"a": rng.normal(size=300), "b": rng.normal(size=300)})
    y = (X["a"] + 0.5 * rng.normal(size=300) > 0).astype(int)
    return X, y, LogisticRegression().fit(X, y)


class Counting:
    "A model that counts its predict_proba calls and the rows it saw."

    def __init__(self, model):
        self.model, self.calls = model, 0
        self.feature_names_in_ = model.feature_names_in_

    def predict_proba(self, X):
        self.calls += 1
        return self.model.predict_proba(X)


class Rows(ModelTest):
    "A test that scores X (and optionally a copy, a column selection and a perturbed copy) and passes."

    def __init__(self, name, variants=("same",)):
        super().__init__(name, must_pass=False)
        self.variants = variants

    def run(self, model, X, y=None):
        for v in self.variants:
            Z = {"same": X, "copy": X.copy(), "wide": X.assign(extra=1.0), "perturbed": X.assign(a=X["a"] + 1.0)}[v]
            predict_scores(model, Z)
        return TestResult(self.name, "probe", 0.0, True, False)


def test_predict_scores_takes_every_kind_of_model(data):
    X, y, lr = data
    p = predict_scores(lr, X)
    assert p.shape == (300,) and np.allclose(p, lr.predict_proba(X)[:, 1])
    three = LogisticRegression().fit(X, np.arange(300) % 3)
    assert predict_scores(three, X).shape == (300, 3)

    class OnlyDecision:
        def decision_function(self, X):
            return np.asarray(X)[:, 0]

    class OnlyPredict:
        def predict(self, X):
            return [1.0] * len(X)  # a list is fine

    assert np.allclose(predict_scores(OnlyDecision(), X.to_numpy()), X["a"]) and predict_scores(OnlyPredict(), X).tolist() == [1.0] * 300
    assert np.allclose(predict_scores(lr, X.assign(extra="x", z=pd.NA)), p)  # a wider table: the model gets its own columns


@pytest.mark.parametrize("model, X, exc, needle", [
    (object(), [[1.0]], ConfigError, "has none of predict_proba"),
    (type("Bad", (), {"predict": lambda self, X: [np.nan] * len(X)})(), [[1.0], [2.0]], DataError, "2 non-finite"),
    (type("Short", (), {"predict": lambda self, X: [0.0]})(), [[1.0], [2.0]], DataError, "returned 1 scores for 2 inputs"),
    (type("Scalar", (), {"predict": lambda self, X: 0.5})(), [[1.0], [2.0]], DataError, "a scalar"),
    (type("Boom", (), {"predict": lambda self, X: 1 / 0})(), [[1.0]], DataError, "ZeroDivisionError"),
])
def test_predict_scores_names_a_broken_model(model, X, exc, needle):
    with pytest.raises(exc, match=needle):
        predict_scores(model, X)


def test_predict_scores_names_columns_the_input_lacks(data):
    X, y, lr = data
    with pytest.raises(SchemaError, match=r"\['b'\]"):
        predict_scores(lr, X[["a"]])
    with pytest.raises(SchemaError, match="'zz'"):
        check_features(X, ["a", "zz"], "probe")
    with pytest.raises(DataError, match="needs a DataFrame"):
        check_features(X.to_numpy(), "a", "probe")


def test_the_tests_of_one_run_share_scores_keyed_by_content(data):
    X, y, lr = data
    model = Counting(lr)
    BehaviouralSuite([Rows("one"), Rows("two", ("same", "copy", "wide"))]).run(model, X, y)
    assert model.calls == 1  # the same rows, a copy and a wider table of them: scored once
    BehaviouralSuite([Rows("p", ("same", "perturbed", "perturbed"))]).run(model, X, y)
    assert model.calls == 1 + 2  # a new run starts with nothing remembered; a perturbed copy is new, then remembered
    predict_scores(model, X), predict_scores(model, X)
    assert model.calls == 5  # outside a suite nothing is remembered
    Xi = X.set_axis(X.index + 1000)
    BehaviouralSuite([Rows("i", ("same",)), Rows("j", ("same",))]).run(model, Xi, y)
    assert model.calls == 6  # other index labels are another input


def test_shared_scores_are_copies(data):
    X, y, lr = data

    class Mutates(ModelTest):
        def run(self, model, X, y=None):
            s = predict_scores(model, X)
            s[:] = -1  # a test that scribbles on its scores must not change another test's
            return TestResult(self.name, "probe", 0.0, True, False)

    class Reads(ModelTest):
        def run(self, model, X, y=None):
            return TestResult(self.name, "probe", float(predict_scores(model, X).min()), True, False)

    res = BehaviouralSuite([Mutates("m"), Reads("r")]).run(lr, X, y)
    assert res["r"].value >= 0


def test_results_render_as_strict_json_and_escaped_html(data):
    X, y, lr = data
    ex = pd.DataFrame({"when": pd.to_datetime(["2013-01-01"], utc=True), "cat": pd.Categorical(["<b>"]), 3: [np.int64(4)],
                       "x": [np.nan]})
    r = TestResult("<script>alert(1)</script>", "probe", float("nan"), False, True, "x <= 1", "bad & worse", ex, ex,
                   {"inf": float("inf")})
    res = SuiteResult([r, TestResult("ok", "probe", math.inf, True, False), TestResult("idle", "probe", np.nan, True, False,
                                                                                      measured=False)], "m<1>")
    d = strict_json(res.to_json())
    assert d["passed"] is False and d["counts"] == {"pass": 1, "FAIL": 1, "warn": 0, "n/a": 1}
    assert d["results"][0]["value"] is None and d["results"][1]["value"] is None
    page = suite_html(d)
    assert "<script>" not in page and "&lt;script&gt;" in page and "m&lt;1&gt;" in page
    assert "FAIL: <script>alert(1)</script>" in suite_markdown(d)  # Markdown is for terminals and notebooks: kept as written
    with pytest.raises(SuiteFailure, match="alert"):
        res.raise_for_failures()
    assert [x.name for x in res.failures] == ["<script>alert(1)</script>"]


def test_suite_and_metric_test_refuse_bad_declarations(data):
    X, y, lr = data
    for bad, needle in [("x", "list of ModelTest"), ([1], "must be a ModelTest"), ([Rows("a"), Rows("a")], "repeated")]:
        with pytest.raises(ConfigError, match=needle):
            BehaviouralSuite(bad)
    for kwargs, needle in [({"metric": "ap", "min_value": 0.1}, "metric must be a function"), ({"metric": average_precision_score},
                           "give min_value"), ({"metric": average_precision_score, "min_value": float("nan")}, "finite"),
                           ({"metric": average_precision_score, "max_value": True}, "finite")]:
        with pytest.raises(ConfigError, match=needle):
            MetricTest("m", **kwargs)
    for name in ["", "  ", None, 3]:
        with pytest.raises(ConfigError, match="non-empty name"):
            ModelTest(name)
    with pytest.raises(ConfigError, match="must_pass"):
        ModelTest("x", must_pass="yes")
    with pytest.raises(DataError, match="no rows"):
        BehaviouralSuite([Rows("a")]).run(lr, X.iloc[:0])
    t = MetricTest("ap", average_precision_score, min_value=0.5)
    with pytest.raises(DataError, match="needs the labels"):
        t.run(lr, X)
    with pytest.raises(DataError, match="shape"):
        t.run(lr, X, y[:10])
    with pytest.raises(DataError, match="missing labels"):
        t.run(lr, X, np.where(np.arange(300) == 5, np.nan, y))

    class NotAResult(ModelTest):
        def run(self, model, X, y=None):
            return {"passed": True}

    with pytest.raises(ConfigError, match="not a TestResult"):
        BehaviouralSuite([NotAResult("n")]).run(lr, X, y)


def test_missing_values_of_every_kind_become_null(data):
    ex = pd.DataFrame({"i": pd.array([1, None], dtype="Int64"), "t": [pd.Timestamp("2013-01-01"), pd.NaT],
                       "b": pd.array([True, None], dtype="boolean"), "arr": [np.array([1.0, np.nan]), [np.inf]]})
    r = TestResult("t", "probe", 1.0, True, False, details=ex, extra={"nested": {"x": [np.float32(np.nan), np.int64(3)]},
                                                                        1: pd.Timestamp("2013-01-01", tz="UTC")})
    d = strict_json(SuiteResult([r]).to_json())["results"][0]
    assert d["details"] == [{"i": 1, "t": "2013-01-01 00:00:00", "b": True, "arr": [1.0, None]},
                            {"i": None, "t": None, "b": None, "arr": [None]}]
    assert d["extra"] == {"nested": {"x": [None, 3]}, "1": "2013-01-01 00:00:00+00:00"}


def test_models_made_inside_tests_never_share_scores(data):
    "A temporary model's id can be reused once it is freed; the cache entry holds its model, so it is never mistaken (review #1)."
    X, y, lr = data

    class Scaled:
        def __init__(self, k):
            self.k = k

        def predict_proba(self, X):
            p = 1 / (1 + np.exp(-self.k * X["a"].to_numpy()))
            return np.c_[1 - p, p]

    class Wrap(ModelTest):
        def __init__(self, name, k):
            super().__init__(name, must_pass=False)
            self.k = k

        def run(self, model, X, y=None):
            return TestResult(self.name, "probe", float(predict_scores(Scaled(self.k), X).mean()), True, False)

    res = BehaviouralSuite([Wrap(f"{i}: k={k}", k) for i, k in enumerate((1.0, 10.0, 1.0, 10.0))]).run(object(), X)
    direct = [float(predict_scores(Scaled(k), X).mean()) for k in (1.0, 10.0, 1.0, 10.0)]
    assert [r.value for r in res.results] == direct and direct[0] != direct[1]


def test_nothing_to_measure_is_n_a_in_a_suite_and_an_error_alone(data):
    from mlsys.evaluation.suite import NothingToMeasure

    X, y, lr = data

    class Empty(ModelTest):
        kind = "probe"

        def run(self, model, X, y=None):
            raise NothingToMeasure(f"test {self.name!r}: no row has rain")

    assert issubclass(NothingToMeasure, DataError)
    with pytest.raises(NothingToMeasure, match="no row has rain"):
        Empty("rain").run(lr, X)
    res = BehaviouralSuite([Empty("rain"), Rows("other")]).run(lr, X, y)
    r = res["rain"]
    assert (r.status, r.measured, r.passed, r.kind) == ("n/a", False, True, "probe") and "no row has rain" in r.summary
    assert res.passed and res.to_dict()["counts"]["n/a"] == 1


def test_evidence_whose_index_is_named_like_a_column_still_renders(data):
    ex = pd.DataFrame({"row": [1, 2], "x": [0.1, 0.2]}, index=pd.Index([10, 11], name="row"))
    d = strict_json(SuiteResult([TestResult("t", "probe", 1.0, False, True, examples=ex, details=ex.rename_axis("index"))]).to_json())
    assert d["results"][0]["examples"] == [{"row (index)": 10, "row": 1, "x": 0.1}, {"row (index)": 11, "row": 2, "x": 0.2}]
    assert d["results"][0]["details"][0] == {"index": 10, "row": 1, "x": 0.1}


def test_metric_test_refuses_labels_and_scores_it_cannot_judge(data):
    from sklearn.metrics import roc_auc_score

    X, y, lr = data
    t = MetricTest("auc", roc_auc_score, min_value=0.5)
    with pytest.raises(DataError, match="labels must be numbers"):
        t.run(lr, X, np.where(y, "late", "on time"))
    with pytest.raises(DataError, match="labels must be numbers"):
        t.run(lr, X, np.array([None] * 300, dtype=object))

    class TooHigh:
        feature_names_in_ = lr.feature_names_in_

        def predict_proba(self, X):
            return np.c_[np.zeros(len(X)) - 0.5, np.full(len(X), 1.5)]

    with pytest.raises(DataError, match="outside \\[0, 1\\]"):
        t.run(TooHigh(), X, y)
    with pytest.raises(DataError, match="not a number"):
        MetricTest("s", lambda a, b: "high", min_value=0.1).run(lr, X, y)
    with pytest.raises(DataError, match="metric 'boom' failed: ZeroDivisionError"):
        MetricTest("s", type("M", (), {"__call__": lambda self, a, b: 1 / 0, "__name__": "boom"})(), min_value=0.1).run(lr, X, y)
