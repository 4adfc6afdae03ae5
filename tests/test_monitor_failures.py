"""monitor.failures: every example of the catalog stages its failure and the catalog's detection catches it (a
hidden optional extra -> MissingExtraError with the install hint, the wrong model version served and caught by its
reported name and by canary rows, a Dask worker SIGKILLed mid-job with the job still complete, drift between flights
months with a quiet control, the service's 422 on rows outside the training ranges, a feedback loop concentrating
exposure), `hidden_modules` restoring what it hid, `gini` against its definition, and bad arguments refused."""
import sys

import numpy as np
import pytest

from mlsys.core import ConfigError, DataError, MissingExtraError
from mlsys.monitor import failures as F


@pytest.fixture(scope="module")
def rows():
    "A week of January 2013's labelled feature rows (the service examples' training data)."
    return F._flights_table("2013-01-01", "2013-01-07")


def test_catalog_names_an_example_for_every_failure():
    cat = F.failure_catalog()
    assert set(cat["kind"]) == {"software", "ML"}
    assert cat["example"].tolist() == list(F.EXAMPLES)
    assert cat.notna().all().all() and (cat.map(len) > 0).all().all()


def test_dependency_failure_names_the_extra():
    obs = F.dependency_failure("fastapi")
    assert (obs.happened, obs.detected) == (True, True)
    assert obs.details["hint"] == 'pip install "mlsys[serve]"'
    import fastapi  # restored after the example
    assert sys.modules["fastapi"] is fastapi


def test_hidden_modules_hides_submodules_and_restores_them():
    import xml.dom
    from mlsys.core import optional_import
    before = sys.modules["xml.dom"]
    with F.hidden_modules("xml"):
        assert "xml.dom" not in sys.modules
        with pytest.raises(ImportError):
            __import__("xml")
        with pytest.raises(MissingExtraError, match="pip install xml"):
            optional_import("xml.dom")
    assert sys.modules["xml.dom"] is before and xml.dom is before
    with pytest.raises(ConfigError):
        with F.hidden_modules():
            pass


def test_wrong_version_served_is_caught_by_name_and_by_canaries(rows, tmp_path):
    obs = F.wrong_version_served(rows, folder=tmp_path, canaries=8)
    assert (obs.happened, obs.detected) == (True, True)
    assert obs.details["served"] == ["flights-v1"] and obs.details["champion"] == 2
    assert obs.details["detected_by_name"] and obs.details["detected_by_canary"]
    assert obs.details["max_canary_gap"] > 1e-6
    assert (tmp_path / "store" / "registry.json").is_file()  # the store was written where it was asked to be


def test_killed_worker_job_still_completes():
    obs = F.killed_worker(tasks=8, seconds=0.3)
    assert obs.happened and obs.detected, obs.summary
    assert obs.details["result_ok"]
    assert obs.details["task_starts"] > obs.details["tasks"]  # the killed task started again elsewhere
    assert obs.details["new_worker"] and obs.details["workers_after"] == 2  # the nanny replaced the process


def test_data_drift_seen_between_months_and_not_within_one():
    obs = F.data_drift(n=800)
    assert (obs.happened, obs.detected) == (True, True)
    assert obs.details["control_drift"] is False
    assert "temp" in obs.details["drifted"]
    with pytest.raises(DataError, match="need"):
        F.data_drift(n=10**6)


def test_edge_cases_get_422_naming_the_field(rows):
    obs = F.edge_cases(rows)
    assert (obs.happened, obs.detected) == (True, True)
    assert obs.details["in_range"] == 200
    assert obs.details["codes"] == {"distance": 422, "carrier": 422}
    assert 0 <= obs.details["raw_model_answer"] <= 1  # the model alone answers without a word


def test_feedback_loop_concentrates_exposure():
    obs = F.feedback_loop(rounds=4, users=100, items=200)
    assert (obs.happened, obs.detected) == (True, True)
    t = obs.details["table"]
    loop = t[t["policy"] == "popularity loop"]["gini"].to_numpy()
    rand = t[t["policy"] == "random"]["gini"].to_numpy()
    assert (loop > rand).all()
    with pytest.raises(DataError, match="movies with 5 or more ratings"):
        F.feedback_loop(items=10**6)


def test_gini_against_its_definition():
    rng = np.random.default_rng(0)
    for _ in range(200):
        x = rng.exponential(size=int(rng.integers(1, 40))) * rng.choice([1e-3, 1, 1e3])
        x[rng.random(len(x)) < 0.3] = 0
        if x.sum() == 0:
            x[0] = 1
        mean_abs_diff = np.abs(x[:, None] - x[None, :]).mean()
        assert F.gini(x) == pytest.approx(mean_abs_diff / (2 * x.mean()), rel=1e-9, abs=1e-12)
    assert F.gini([0, 0, 0, 5]) == pytest.approx(0.75)
    for bad in ([], [1, -1], [0, 0], [1, np.nan], [[1, 2]]):
        with pytest.raises(DataError, match="gini"):
            F.gini(bad)


def test_run_catalog_refuses_unknown_names():
    with pytest.raises(ConfigError, match="unknown failure examples"):
        F.run_catalog(["no_such_failure"])
    out = F.run_catalog("dependency_failure")
    assert out.loc["dependency_failure", "detected"]
