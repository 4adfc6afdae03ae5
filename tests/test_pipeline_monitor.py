"""The monitor stage's functions (mlsys.pipeline_monitor): natural labels, the replay through a real service, drift and
validation per window, the per-window table and its alerts. The whole stage runs in tests/test_pipeline_run.py."""
import numpy as np
import pandas as pd
import pytest

from mlsys.core import ConfigError, DataError
from mlsys.pipeline import FEATURES, LABEL, build_features, make_model, time_split
from mlsys.pipeline_deploy import backup_model, deploy_window
from mlsys.pipeline_monitor import (monitor_policies, monitor_table, natural_labels, raise_alerts, replay, window_drift,
                                    window_key, window_validation)

pytest.importorskip("fastapi")


@pytest.fixture(scope="module")
def week():
    from mlsys.datasets import load_flights, load_planes, load_weather
    flights = load_flights("2013-01-01", "2013-01-09")
    feats = build_features(flights, load_weather("2013-01-01", "2013-01-09"), load_planes())
    train, _ = time_split(feats, "2013-01-07")
    window = deploy_window(feats, flights, "2013-01-07", days=3)
    model = make_model(params={"max_iter": 30}).fit(train[FEATURES], train[LABEL].astype(int))
    return flights, feats, train, window, model


def test_natural_labels_arrive_when_the_flight_lands_and_never_for_a_cancelled_one(week):
    from mlsys.data.service import flight_ids
    flights, feats, train, window, model = week
    labels = natural_labels(window, flights, report_delay="20min")
    by_id = flights.assign(flight_id=flight_ids(flights).to_numpy()).set_index("flight_id")
    f = by_id.loc[labels["prediction_id"]]
    want = f["sched_dep"] + pd.to_timedelta(f["dep_delay"].astype(float) + f["air_time"].astype(float) + 20, unit="min")
    assert (labels["label_time"].to_numpy() == want.to_numpy()).all()
    assert (labels["label"].to_numpy() == window.set_index("flight_id").loc[labels["prediction_id"], LABEL].astype(float)).all()
    never = set(window["flight_id"]) - set(labels["prediction_id"])
    assert never and by_id.loc[sorted(never), "air_time"].isna().all()  # cancelled or diverted: no arrival, no label
    for bad, msg in (("-5min", "non-negative"), ("soon", "not a duration"), (15, "bare number")):
        with pytest.raises(ConfigError, match=f"report_delay=.*{msg}"):
            natural_labels(window, flights, report_delay=bad)
    with pytest.raises(DataError, match="not among the ingested flights"):
        natural_labels(window.assign(flight_id="20130101-XX1-EWR"), flights)


def test_replay_through_a_real_service_equals_the_model_and_records_failures(week):
    from mlsys.deploy.service import DelayedModel, create_app, feature_spec, serve_in_thread
    from mlsys.pipeline_deploy import FLIGHT_BOUNDS
    flights, feats, train, window, model = week
    spec = feature_spec(train[FEATURES], bounds=FLIGHT_BOUNDS, nullable=[f for f in FEATURES if f in FLIGHT_BOUNDS])
    part = window.head(230)
    with serve_in_thread(create_app(model, spec, backup=backup_model(train), main_name="champion", backup_name="route_rate",
                                    budget=30.0)) as srv:
        preds, reqs = replay(srv.url, part, batch=50, version="3")
    assert len(reqs) == 5 and reqs["flights"].tolist() == [50, 50, 50, 50, 30] and set(reqs["status"]) == {200}
    assert (reqs["model_version"] == "3").all() and reqs["request_id"].is_unique
    want = pd.Series(model.predict_proba(part[FEATURES])[:, 1], index=part["flight_id"])
    assert np.abs(preds.set_index("prediction_id")["score"] - want.loc[preds["prediction_id"]].to_numpy()).max() <= 1e-12
    assert preds["timestamp"].is_monotonic_increasing  # time order: the replay clock is the schedule
    broken = DelayedModel(model, error=RuntimeError("boom"))
    with serve_in_thread(create_app(broken, spec, backup=DelayedModel(model, error=RuntimeError("also")), main_name="champion",
                                    backup_name="route_rate", budget=30.0)) as srv:
        preds, reqs = replay(srv.url, part.head(60), batch=25)
    assert preds.empty and reqs["status"].tolist() == [503, 503, 503]  # recorded, not raised: the monitor sees the errors
    with pytest.raises(ConfigError, match="batch must be"):
        replay("http://127.0.0.1:9", part, batch=0)
    with pytest.raises(ConfigError, match="lead=.*not a duration"):
        replay("http://127.0.0.1:9", part, lead="two hours")
    with pytest.raises(DataError, match="sched_dep"):
        replay("http://127.0.0.1:9", part.drop(columns="sched_dep"))


def test_window_drift_rarely_flags_windows_drawn_from_the_reference_itself(week):
    "Calibration: daily-sized windows resampled from the training rows are flagged for a feature in few of the tests."
    flights, feats, train, window, model = week
    rng = np.random.default_rng(0)
    pool = train.sample(frac=1.0, random_state=1).reset_index(drop=True)
    frame = pool.head(4000).assign(timestamp=pd.Timestamp("2013-01-01", tz="UTC") + pd.to_timedelta(rng.integers(0, 8, 4000), unit="D"))
    drift = window_drift(pool.iloc[4000:], frame, sample=4000)
    assert set(drift["feature"]) == set(FEATURES) - {"sched_dow"}  # constant within a day: left out by default
    assert drift["window"].nunique() == 8
    assert drift["drift"].mean() <= 0.05  # family-wise alpha 0.05 per window, Bonferroni over the features
    real = window_drift(train, window.assign(timestamp=window["sched_dep"]))
    assert real["drift"].mean() > drift["drift"].mean()  # the next days do differ (history counts grow, the weather moves)
    with pytest.raises(ConfigError, match="not model features"):
        window_drift(train, frame, exclude=("runway",))
    with pytest.raises(DataError, match="no window"):
        window_drift(train, frame.head(10))


def test_monitor_table_and_alerts_on_a_replayed_window(week, tmp_path):
    from mlsys.deploy.service import create_app, feature_spec, serve_in_thread
    from mlsys.monitor.metrics import accuracy_by_window
    from mlsys.monitor.validation import infer_suite
    from mlsys.pipeline_deploy import FLIGHT_BOUNDS
    flights, feats, train, window, model = week
    spec = feature_spec(train[FEATURES], bounds=FLIGHT_BOUNDS, nullable=[f for f in FEATURES if f in FLIGHT_BOUNDS])
    with serve_in_thread(create_app(model, spec, main_name="champion", budget=30.0)) as srv:
        preds, reqs = replay(srv.url, window)
    labels = natural_labels(window, flights)
    frame = window.assign(timestamp=window["sched_dep"])
    drift = window_drift(train, frame)
    validation = window_validation(infer_suite(train[FEATURES]), frame)
    table = monitor_table(reqs, preds, labels, drift, validation)
    days = window_key(frame["timestamp"], "1D").unique()
    assert set(table.index) == set(days) and table["requests"].sum() == len(reqs)
    acc = accuracy_by_window(preds[["prediction_id", "timestamp", "score"]], labels, "1D", lag="6h")
    pd.testing.assert_series_equal(table["coverage"], acc["coverage"].reindex(table.index), check_names=False)
    assert (table["drifted_share"] == drift.groupby("window")["drift"].mean().reindex(table.index)).all()
    sent, counts = raise_alerts(table, tmp_path / "alerts.jsonl", monitor_policies(max_drifted_share=0.0), repeat="7D")
    # FeatureDrift needs two windows in a row; after its first firing the 7-day repeat holds the rest of the episode back
    assert counts["fired"] >= counts["sent"] and (sent["alert"] == "FeatureDrift").sum() == 1
    assert pd.api.types.is_datetime64_any_dtype(sent["window"])
    sent0, counts0 = raise_alerts(table, tmp_path / "alerts0.jsonl", monitor_policies(max_drifted_share=0.0), repeat="0s")
    assert counts0["sent"] == counts0["fired"] >= counts["sent"]
