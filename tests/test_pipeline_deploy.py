"The main job's register and deploy logic (mlsys.pipeline_deploy) on one real week of flights."
import os

import numpy as np
import psutil
import pytest

from mlsys.core import ConfigError, DataError, IntegrityError
from mlsys.datasets import load_flights, load_planes, load_weather
from mlsys.deploy.registry import ModelStore
from mlsys.pipeline import FEATURES, LABEL, TRUSTED_MODEL_TYPES, build_features, fit_baseline_models, make_model, time_split
from mlsys.pipeline_deploy import (deploy_batch, deploy_service, deploy_window, distil, flight_keys, footprint,
                                   holdout_metrics, register_run)
from mlsys.report.text import interpret_deployment


@pytest.fixture(scope="module")
def week():
    flights = load_flights(start="2013-01-01", end="2013-01-09")
    feats = build_features(flights, load_weather(), load_planes())
    train, test = time_split(feats, "2013-01-06")
    hgb = make_model("hgb").fit(train[FEATURES], train[LABEL].astype(int))
    logreg = make_model("logreg").fit(train[FEATURES], train[LABEL].astype(int))
    return flights, feats, train, test, hgb, logreg


def test_register_is_idempotent_and_promotes_only_on_the_same_data(week, tmp_path):
    _, _, train, test, hgb, logreg = week
    store = ModelStore(tmp_path)
    first = register_run(store, "m", hgb, "hgb", train, test, run_id="r1")
    assert first["promotion"]["promoted"] and first["champion"] == first["version"]
    n = len(store.versions("m"))
    assert register_run(store, "m", hgb, "hgb", train, test, run_id="r1")["version"] == first["version"]
    assert len(store.versions("m")) == n  # the same run and model: nothing new
    assert "already champion" in register_run(store, "m", hgb, "hgb", train, test, run_id="r1")["promotion"]["reason"]
    zero = fit_baseline_models(train)["zero_rule"]
    worse = register_run(store, "m", zero, "zero_rule", train, test, run_id="r2", compress=False)
    assert not worse["promotion"]["promoted"] and worse["champion"] == first["version"]
    assert worse["promotion"]["champion_score"] == pytest.approx(holdout_metrics(hgb, test)["pr_auc"])
    assert store.load("m", "champion", trusted=TRUSTED_MODEL_TYPES).predict_proba(test[FEATURES]).shape == (len(test), 2)


def test_a_champion_without_a_variant_drops_the_old_variant_alias(week, tmp_path):
    _, _, train, test, hgb, logreg = week
    store = ModelStore(tmp_path)
    a = register_run(store, "m", hgb, "hgb", train, test, run_id="r1")
    assert "version" in a["compressed"], a["compressed"]
    assert store.get("m", "champion-compressed").version == a["compressed"]["version"]
    b = register_run(store, "m", logreg, "logreg", train, test, run_id="r2", min_gain=-1.0)
    assert b["promotion"]["promoted"] and "skipped" in b["compressed"]
    with pytest.raises(DataError, match="no alias 'champion-compressed'"):
        store.get("m", "champion-compressed")
    assert "No compressed variant" in interpret_deployment({**b, "name": "m"})


def test_the_distilled_student_follows_its_teacher(week):
    _, _, train, test, hgb, _ = week
    student = distil(hgb, train)
    p, q = hgb.predict_proba(test[FEATURES])[:, 1], student.predict_proba(test[FEATURES])[:, 1]
    assert np.corrcoef(p, q)[0, 1] > 0.7
    assert footprint(student, test)["bytes"] < footprint(hgb, test)["bytes"]
    with pytest.raises(DataError, match="empty"):
        distil(hgb, train.iloc[:0])


def test_holdout_metrics_needs_both_classes(week):
    _, _, _, test, hgb, _ = week
    with pytest.raises(DataError, match="both classes"):
        holdout_metrics(hgb, test[test[LABEL] == 0])


def test_keys_and_window_refuse_misaligned_or_empty_input(week):
    flights, feats, *_ = week
    keys = flight_keys(feats, flights)
    assert keys.is_unique and keys.str.fullmatch(r"\d{8}-[A-Z0-9]{2}\d+-[A-Z]{3}").all()
    with pytest.raises(IntegrityError, match="same order"):
        flight_keys(feats.iloc[1:], flights)
    with pytest.raises(IntegrityError, match="not the flight"):
        flight_keys(feats.iloc[::-1].reset_index(drop=True), flights)
    with pytest.raises(DataError, match="no flights"):
        deploy_window(feats, flights, "2014-01-01")
    for days in (0, -1, 1.5, True):
        with pytest.raises(ConfigError, match="days"):
            deploy_window(feats, flights, "2013-01-06", days=days)


@pytest.mark.server
def test_the_service_check_catches_answers_that_differ_from_the_batch(week, tmp_path):
    flights, feats, train, _, hgb, _ = week
    window = deploy_window(feats, flights, "2013-01-06", days=2)
    batch = deploy_batch(hgb, window, tmp_path / "pred", "m", "1", tmp_path / "p.sqlite")
    assert batch["rows"] == batch["stored"] == len(window)
    import pandas as pd
    scores = pd.read_parquet(tmp_path / "pred")
    backup = fit_baseline_models(train)["route_rate"]
    ok, _ = deploy_service(tmp_path / "svc", hgb, backup, train, window, scores, n_check=40)
    assert ok["served_as"] == "onnx" and ok["not_onnx_because"] is None  # the boosting model's export equals it
    assert ok["max_abs_diff"] <= 1e-9 and ok["stopped"] and (not psutil.pid_exists(ok["pid"]) or
                                                             psutil.Process(ok["pid"]).status() == psutil.STATUS_ZOMBIE)
    log = tmp_path / "logs" / "requests.jsonl"
    log.parent.mkdir()
    log.write_text("a stale line of an earlier service\n")
    native, _ = deploy_service(tmp_path / "svc_native", hgb, backup, train, window, scores, n_check=40, serve_format="native",
                               request_log=log)
    assert native["served_as"] == "native" and native["max_abs_diff"] == 0.0
    # the service logged every request as JSON (a new log: the stale line is gone), outside its folder, whose hash is its own
    from mlsys.core import load_json
    from mlsys.monitor.observe import read_json_logs
    records = read_json_logs(log)
    batch_calls = records[records["route"] == "/predict/batch"]
    assert len(batch_calls) == 1 + 40 // 20 and set(batch_calls["status"]) == {200}  # the warm-up and two checks
    rel = os.path.relpath(log.resolve(), (tmp_path / "svc_native").resolve())  # relative: a copied run folder logs into itself
    assert load_json(tmp_path / "svc_native" / "service.json")["settings"]["request_log"] == rel == "../logs/requests.jsonl"
    assert native["request_log"] == rel and not list((tmp_path / "svc_native").rglob("*.jsonl"))
    assert not (tmp_path / "svc_native" / "main.onnx.zip").exists()
    with pytest.raises(ConfigError, match="serve_format='tflite'"):
        deploy_service(tmp_path / "svc3", hgb, backup, train, window, scores, n_check=40, serve_format="tflite")
    wrong = scores.assign(score=scores["score"] + 0.01)
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    with pytest.raises(IntegrityError, match="differ from the batch scores"):
        deploy_service(tmp_path / "svc2", hgb, backup, train, window, wrong, n_check=40)
    left = [p for p in psutil.Process().children(recursive=True) if p.pid not in before and p.is_running()
            and p.status() != psutil.STATUS_ZOMBIE]
    assert not left  # a failed check still stops the service


@pytest.mark.server
def test_a_slowed_champion_is_answered_by_the_request_feature_backup(week, tmp_path):
    import pandas as pd
    from mlsys.deploy.service import DelayedModel, create_app, feature_spec, serve_in_thread
    from mlsys.pipeline_deploy import FLIGHT_BOUNDS, backup_model, check_service
    flights, feats, train, _, hgb, _ = week
    window = deploy_window(feats, flights, "2013-01-06", days=1)
    deploy_batch(hgb, window, tmp_path / "pred", "m", "1")
    scores = pd.read_parquet(tmp_path / "pred")
    backup = backup_model(train)
    assert backup.column == "route_late_rate" and "route_late_rate" in FEATURES  # the backup reads what requests carry
    spec = feature_spec(train[FEATURES], bounds=FLIGHT_BOUNDS, nullable=[f for f in FEATURES if f in FLIGHT_BOUNDS])
    slow = create_app(DelayedModel(hgb, delay=2.0), spec, backup=backup, budget=0.05)
    with serve_in_thread(slow) as server:
        with pytest.raises(IntegrityError, match="backup answered all 40"):
            check_service(server.url, window, scores, n=40)
    with serve_in_thread(create_app(hgb, spec, backup=backup, budget=5.0)) as server:
        ok = check_service(server.url, window, scores, n=40)
    assert ok["flights_checked"] == 40 and ok["fallback_answers"] == 0 and ok["max_abs_diff"] == 0.0
