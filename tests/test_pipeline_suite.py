"""pipeline_suite: the flights model's behavioural suite — its declaration refuses bad criteria, a planted tail-number reader and a
planted loss of edge fail must-pass tests, a dry test period is 'nothing to measure', and bad input gets named errors."""
import json

import numpy as np
import pandas as pd
import pytest

from mlsys.core import ConfigError, DataError, SchemaError
from mlsys.pipeline import FEATURES, LABEL, build_features, make_model, time_split
from mlsys.pipeline_suite import flights_suite, run_flights_suite


@pytest.fixture(scope="module")
def fitted():
    from mlsys.datasets import load_flights, load_planes, load_weather

    feats = build_features(load_flights("2013-01-01", "2013-01-07"), load_weather("2013-01-01", "2013-01-07"),
                           load_planes()).dropna(subset=[LABEL])
    train, test = time_split(feats, "2013-01-06")
    model = make_model().fit(train[FEATURES], train[LABEL].astype(int))
    return model, test.reset_index(drop=True)


class Wrapped:
    "A model that changes the pipeline model's probability with `bump(X)`, reading whatever columns it likes."

    def __init__(self, model, bump, extra=()):
        self.model, self.bump = model, bump
        self.feature_names_in_ = list(FEATURES) + list(extra)

    def predict_proba(self, X):
        p = np.clip(self.model.predict_proba(X[FEATURES])[:, 1] + self.bump(X), 0, 1)
        return np.column_stack([1 - p, p])


def test_the_pipeline_model_passes_every_must_pass_test_and_writes_its_results(fitted, tmp_path):
    model, test = fitted
    res = run_flights_suite(model, test, name="hgb", json_path=tmp_path / "s.json", html_path=tmp_path / "s.html")
    assert res.passed and not res.failures
    must = [r.name for r in res.results if r.must_pass]
    assert must == ["invariant to tailnum", "beats the zero rule", "missing weather", "noisy delay history"]
    stored = json.loads((tmp_path / "s.json").read_text())
    assert stored["passed"] is True and [r["name"] for r in stored["results"]] == [r.name for r in res.results]
    assert "PASSED" in (tmp_path / "s.html").read_text()


def test_a_model_that_reads_the_tail_number_fails_with_the_moved_flights_as_examples(fitted):
    model, test = fitted
    tails = set(test["tailnum"].dropna().unique()[::5])
    bad = Wrapped(model, lambda X: 0.3 * X["tailnum"].isin(tails).to_numpy(), extra=["tailnum"])
    res = run_flights_suite(bad, test)
    assert [r.name for r in res.failures] == ["invariant to tailnum"]
    ex = res["invariant to tailnum"].examples
    assert len(ex) and (ex["tailnum"].isin(tails) != ex["tailnum (perturbed)"].isin(tails)).all()


def test_a_model_no_better_than_the_zero_rule_fails_the_baseline_test(fitted):
    model, test = fitted
    const = Wrapped(model, lambda X: 0.5 - model.predict_proba(X[FEATURES])[:, 1])  # every flight 0.5
    res = run_flights_suite(const, test)
    assert "beats the zero rule" in [r.name for r in res.failures]
    assert res["beats the zero rule"].value == pytest.approx(0.0, abs=1e-12)  # a constant's AP is the positive rate


def test_a_dry_test_period_is_nothing_to_measure_not_an_error(fitted):
    from mlsys.evaluation.behavioral import DirectionalTest
    from mlsys.evaluation.suite import NothingToMeasure

    model, test = fitted
    dry = test.assign(precip=0.0)
    with pytest.raises(NothingToMeasure, match="precip"):
        DirectionalTest("more rain", "precip", "increasing", 0.1, must_pass=False).run(model, dry, dry[LABEL])
    res = run_flights_suite(model, dry)
    r = res["more rain"]
    assert r.status == "n/a" and r.passed and not r.measured and "nothing to measure" in r.summary
    early = run_flights_suite(model, test[test["sched_hour"] < 17])  # no evening flight: that test has nothing to measure
    assert early["later in the evening"].status == "n/a" and early.passed
    one_plane = run_flights_suite(model, test.assign(tailnum="N1"))  # a swap among one tail number changes nothing
    assert one_plane["invariant to tailnum"].status == "n/a"


@pytest.mark.parametrize("kwargs, needle", [
    ({"invariant_to": "tailnum"}, "invariant_to must be a list"),
    ({"invariant_to": [""]}, "invariant_to must be a list"),
    ({"min_ap_lift": -0.1}, "min_ap_lift must be a number in [0, 1]"),
    ({"max_missing_weather_drop": float("nan")}, "max_missing_weather_drop"),
    ({"max_history_noise_drop": True}, "max_history_noise_drop"),
    ({"max_violation_rate": "0.1"}, "max_violation_rate"),
    ({"target_accuracy": 1.5}, "target_accuracy"),
    ({"max_ece": None}, "max_ece"),
    ({"max_slice_gap": 2}, "max_slice_gap"),
    ({"min_slice_size": 0}, "min_slice_size must be a positive integer"),
    ({"min_slice_size": 1.5}, "min_slice_size"),
    ({"max_error_ratio": 0.5}, "max_error_ratio must be a finite number of at least 1"),
    ({"max_error_ratio": float("inf")}, "max_error_ratio"),
])
def test_bad_criteria_are_named(kwargs, needle):
    with pytest.raises(ConfigError) as e:
        flights_suite(**kwargs)
    assert needle in str(e.value)


def test_bad_test_input_is_named(fitted):
    model, test = fitted
    with pytest.raises(SchemaError, match="lacks column"):
        run_flights_suite(model, test.drop(columns=["precip"]))
    with pytest.raises(DataError, match="no rows"):
        run_flights_suite(model, test.iloc[:0])
    with pytest.raises(SchemaError, match="no_such_column"):
        run_flights_suite(model, test, suite=flights_suite(invariant_to=["no_such_column"]))
    with pytest.raises(ConfigError, match="BehaviouralSuite"):
        run_flights_suite(model, test, suite=[1, 2])
    with pytest.raises(DataError):
        run_flights_suite(model, test.assign(**{LABEL: np.nan}))
    assert isinstance(test, pd.DataFrame)
