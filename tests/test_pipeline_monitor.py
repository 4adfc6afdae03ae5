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


# ---- the stage's additions: mergeable summaries, online detectors, the request log, Prometheus, parameters ----

def _stream(n=3000, days=3, seed=0):
    "Synthetic predictions, requests and feature rows spread over `days` UTC days, sorted by time (ties included)."
    rng = np.random.default_rng(seed)
    t = pd.Timestamp("2013-03-01", tz="UTC") + pd.to_timedelta(np.sort(rng.integers(0, days * 86400, n)), unit="s")
    preds = pd.DataFrame({"prediction_id": [f"f{i}" for i in range(n)], "timestamp": t,
                          "score": np.round(rng.beta(2, 5, n), 2)})  # rounded: many ties
    reqs = pd.DataFrame({"timestamp": t[::10], "latency_ms": rng.lognormal(2, 0.5, len(t[::10]))})
    frame = pd.DataFrame({"timestamp": t, "distance": rng.integers(100, 2500, n).astype(float),
                          "route_late_rate": np.where(rng.random(n) < 0.1, np.nan, rng.random(n)),
                          "carrier": rng.choice(["UA", "B6", "ÉV", ""], n)})
    return preds, reqs, frame


def test_hourly_summaries_merge_into_the_direct_daily_ones(week):
    from mlsys.pipeline_monitor import merge_check, window_summaries
    train = week[2]
    preds, reqs, frame = _stream()
    s = window_summaries({"predictions": preds, "requests": reqs, "frame": frame}, train)
    check = merge_check(s)
    assert check["ok"].all() and set(check["window"]) == set(pd.date_range("2013-03-01", periods=3, tz="UTC"))
    assert len(s[("predictions", "score", "moments")]["fine"]) == 72  # 3 days of hours merged into 3 days
    mom = check[(check["summary"] == "moments") & (check["statistic"] == "mean")]
    assert (mom["difference"] <= 1e-9).all()
    # against numpy on the rows: the merged day is the day
    day = s[("frame", "distance", "moments")]["merged"].summaries[1].stats()
    rows = frame.loc[frame["timestamp"].dt.day == 2, "distance"]
    assert day["count"] == len(rows) and abs(day["mean"] - rows.mean()) <= 1e-9 * rows.mean() and day["max"] == rows.max()
    freq = s[("frame", "carrier", "frequencies")]["merged"].summaries[0].table
    assert freq == frame.loc[frame["timestamp"].dt.day == 1, "carrier"].value_counts().to_dict()
    # negative controls: a merged window that lost an hour fails its check, and so does a sketch asked off its data
    broken = dict(s)
    key = ("predictions", "score", "moments")
    fine = s[key]["fine"]
    broken[key] = {**s[key], "merged": type(fine)(fine.start[:-1], fine.end[:-1], fine.summaries[:-1], fine.freq).coarsen("1D")}
    bad = merge_check({key: broken[key]})
    assert not bad.loc[bad["window"] == bad["window"].max(), "ok"].all() and bad.loc[bad["window"] == bad["window"].min(), "ok"].all()
    from mlsys.pipeline_monitor import _rank_gap
    v = np.arange(100.0)
    assert _rank_gap(v, 49.0, 0.5) == 0.0 and _rank_gap(v, 89.0, 0.5) == pytest.approx(0.39)
    with pytest.raises(ConfigError, match="no table 'labels'"):
        window_summaries({"predictions": preds}, train, spec=(("labels", "label", ("moments",)),))
    with pytest.raises(ConfigError, match="summary kind 'tdigest'"):
        window_summaries({"predictions": preds}, train, spec=(("predictions", "score", ("tdigest",)),))


def test_online_detectors_fire_after_a_planted_change_and_raise_alerts(week, tmp_path):
    from mlsys.pipeline_monitor import (error_stream, feature_detector, online_by_window, online_detections)
    flights, feats, train, window, model = week
    rng = np.random.default_rng(0)
    n, change = 4000, 2000
    t = pd.Timestamp("2013-01-07", tz="UTC") + pd.to_timedelta(np.arange(n) * 60, unit="s")  # a label a minute
    wrong = np.r_[rng.random(change) < 0.1, rng.random(n - change) < 0.5]  # the error rate jumps from 10% to 50%
    preds = pd.DataFrame({"prediction_id": [f"p{i}" for i in range(n)], "score": np.where(wrong, 0.9, 0.1)})
    labels = pd.DataFrame({"prediction_id": preds["prediction_id"][::-1].to_numpy(), "label": 0.0, "label_time": t[::-1]})
    errors = error_stream(preds, labels)
    assert errors["time"].is_monotonic_increasing and (errors["error"].to_numpy() == wrong).all()  # arrival order, not id order
    assert len(error_stream(preds, labels, horizon=t[999])) == 1000
    rows = train.sample(n, replace=True, random_state=1).reset_index(drop=True)
    rows["distance"] = np.where(np.arange(n) < change, rows["distance"], rows["distance"] + 1500)  # a planted feature shift
    frame = rows.assign(timestamp=t)
    det = feature_detector(train, ert=100, n_bootstraps=1000)
    detections, stats = online_detections(errors, frame, det)
    for name in ("ddm", "page_hinkley", "adwin"):
        pos = detections.loc[detections["detector"] == name, "position"]
        assert (pos >= change).any() and (pos >= change).sum() >= (pos < change).sum(), name
    mmd = detections.loc[detections["detector"] == "mmd_online", "position"]
    assert (mmd < change).sum() < 3 * change / 100 and (mmd >= change).sum() > 2.5 * (mmd < change).sum()  # ERT 100: ~20 expected
    got = stats["mmd_online"]
    assert got["expected_false_alarms"] == got["points"] / 100 and got["points"] + got["skipped_rows_with_nulls"] == n
    assert set(detections["watched"]) == {"prediction errors, in label arrival order", "features distance, route_late_rate"}
    days = pd.date_range("2013-01-07", periods=3, tz="UTC")
    per = online_by_window(detections, days, "1D", detections.attrs["feature_times"], 100)
    assert per["error_detections"].sum() == (detections["stream"] == "errors").sum()  # none lost outside the windows
    assert per["feature_detection_ratio"].iloc[0] < 1.5 < per["feature_detection_ratio"].iloc[1]  # day 2 holds the change
    table = pd.DataFrame({"accuracy": 0.9, "error_rate": 0.0, "latency_p99_ms": 5.0, "drifted_share": 0.0,
                          "failed_checks": 0}, index=days.rename("window")).join(per)
    sent, counts = raise_alerts(table, tmp_path / "a.jsonl", repeat="0s")
    assert set(sent["alert"]) == {"ErrorStreamChange", "FeatureStreamShift"}
    assert sent.loc[sent["alert"] == "FeatureStreamShift", "window"].min() == days[1]
    with pytest.raises(ConfigError, match="numeric model features"):
        feature_detector(train, features=("carrier",))
    with pytest.raises(ConfigError, match="fitted on named features"):
        online_detections(errors, frame, object())
    with pytest.raises(ConfigError, match="threshold must be a probability"):
        error_stream(preds, labels, threshold=1.5)


def test_request_log_and_prometheus_agree_with_the_replay(week, tmp_path):
    from mlsys.deploy.service import create_app, feature_spec, serve_in_thread
    from mlsys.monitor.observe import find_binary
    from mlsys.pipeline_deploy import FLIGHT_BOUNDS
    from mlsys.pipeline_monitor import log_requests, read_request_log, scrape_totals, start_scrape
    flights, feats, train, window, model = week
    spec = feature_spec(train[FEATURES], bounds=FLIGHT_BOUNDS, nullable=[f for f in FEATURES if f in FLIGHT_BOUNDS])
    log = tmp_path / "requests.jsonl"
    try:
        find_binary("prometheus")
        have = True
    except ConfigError:
        have = False
    with serve_in_thread(create_app(model, spec, main_name="champion", budget=30.0, request_log=str(log))) as srv:
        replay(srv.url, window.head(120), batch=40)  # before the scrape starts: must not be counted
        prom = baseline = None
        if have:
            prom, baseline = start_scrape(srv.url, tmp_path / "prom")
        try:
            preds, reqs = replay(srv.url, window.iloc[120:400], batch=40)
            totals = scrape_totals(prom, srv.url, baseline, expect=len(reqs)) if have else None
            if have:  # the bucket interpolation is PromQL's own: the same estimate over the whole histogram
                from mlsys.pipeline_monitor import _scraped, bucket_quantile
                for q in (0.5, 0.9, 0.99):
                    promql = prom.query(f'histogram_quantile({q}, sum by (le) (mlsys_request_seconds_bucket{{route="/predict/batch"}}))')
                    assert bucket_quantile(_scraped(prom, "/predict/batch")["buckets"], q)[0] == pytest.approx(promql["value"].iloc[0])
        finally:
            if prom is not None:
                assert prom.stop() is not None
    got = read_request_log(log, reqs["request_id"])
    assert len(got) == len(reqs) and got.attrs["missing"] == [] and got.attrs["malformed"] == 0
    assert got.attrs["lines"] > len(reqs)  # the earlier replay (and the scrapes) are in the log too, and left out
    server = log_requests(got, reqs)
    assert (server["status"] == 200).all() and (server["latency_ms"] > 0).all() and server["request_id"].tolist() == reqs["request_id"].tolist()
    missing = read_request_log(log, ["replay-nothere"], timeout=0.2)
    assert missing.empty and missing.attrs["missing"] == ["replay-nothere"]
    if not have:
        pytest.skip("prometheus is not installed (Debian: apt-get install prometheus): the scrape half is not tested")
    assert totals["requests"] == len(reqs) == 7 and totals["errors_5xx"] == 0
    for q in ("p50", "p99"):
        lo, hi = totals[f"latency_{q}_bucket_ms"]
        assert lo <= totals[f"latency_{q}_ms"] <= hi
    assert (tmp_path / "prom" / "prometheus.yml").is_file()


def test_monitor_run_parameters_are_checked(week, tmp_path, monkeypatch):
    import mlsys.monitor.observe as observe
    from mlsys.pipeline_monitor import _scrape_start, monitor_run
    flights, feats, train, window, model = week
    for kw, msg in ((dict(prometheus="yes"), "prometheus='yes' must be"), (dict(online={"ertt": 5}), "unknown online detector"),):
        with pytest.raises(ConfigError, match=msg):
            monitor_run("http://127.0.0.1:9", window, flights, train, tmp_path, **kw)
    assert _scrape_start("off", "http://127.0.0.1:9", "1s") == (None, None, None, "prometheus='off'")

    def missing(name):
        raise ConfigError(f"{name} is not installed")
    monkeypatch.setattr(observe, "find_binary", missing)
    server, since, folder, why = _scrape_start("auto", "http://127.0.0.1:9", "1s")
    assert server is None and why == "skipped: prometheus is not installed"
    with pytest.raises(ConfigError, match="not installed"):
        _scrape_start("on", "http://127.0.0.1:9", "1s")
