"""deploy.service: spec-driven 422s, micro-batching, fallback, load shedding, cache, metrics, online-store lookups."""
import asyncio
import collections
import json
import uuid
import warnings

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("httpx")
pytest.importorskip("prometheus_client")

import httpx

from mlsys.core import ConfigError, DataError, SchemaError
from mlsys.deploy.service import (
    DelayedModel,
    FallbackPredictor,
    FeatureSpec,
    MicroBatcher,
    OnlineFeatures,
    PredictionService,
    TTLCache,
    app_from_folder,
    create_app,
    feature_spec,
    positive_proba,
    request_models,
    save_service,
    serve_in_thread,
)
from mlsys.features.online import RedisOnlineStore, SQLiteOnlineStore

BOUNDS = {"sched_hour": (0, 23), "sched_dow": (0, 6), "distance": (0, None), "route_n": (0, None), "carrier_n": (0, None),
          "origin_deps_2h": (0, None), "origin_dep_delay_2h": (-60, None), "route_late_rate": (0, 1),
          "carrier_late_rate": (0, 1), "route_30d_late_rate": (0, 1)}


@pytest.fixture(scope="module")
def flights_model():
    "A small boosting model and the route-rate backup on Jan 1-7, the spec, and request rows of Jan 8-9."
    from mlsys.data.service import flight_ids
    from mlsys.datasets import load_flights, load_planes, load_weather
    from mlsys.pipeline import FEATURES, LABEL, ROUTE_RATE, build_features, fit_baseline_models, make_model, time_split

    flights = load_flights("2013-01-01", "2013-01-09")
    feats = build_features(flights, load_weather("2013-01-01", "2013-01-09"), load_planes())
    feats["flight_id"] = flight_ids(flights).to_numpy()
    train, test = time_split(feats, "2013-01-08")
    model = make_model(params={"max_iter": 30}).fit(train[FEATURES], train[LABEL].astype(int))
    backup = fit_baseline_models(train)["route_rate"]
    spec = feature_spec(train, FEATURES + [ROUTE_RATE], widen=0.5, bounds=BOUNDS)
    test = test.head(300).reset_index(drop=True)
    rows = test[spec.names].astype(object).where(test[spec.names].notna(), None).to_dict("records")
    return model, backup, spec, test, rows


def _client(app):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient
    return TestClient(app)


def _proba(model, test):
    return model.predict_proba(test[list(model.feature_names_in_)])[:, 1]


# ---------------------------------------------------------------- the spec

def test_feature_spec_learns_kinds_ranges_categories_and_nulls(flights_model):
    model, backup, spec, test, rows = flights_model
    f = {x.name: x for x in spec.fields}
    assert f["carrier"].kind == "category" and "UA" in f["carrier"].categories and not f["carrier"].nullable
    assert f["sched_hour"].kind == "integer" and (f["sched_hour"].minimum, f["sched_hour"].maximum) == (0, 23)
    assert f["carrier_n"].maximum is None and f["wind_gust"].nullable
    X = pd.DataFrame({"x": [1.0, 3.0, np.nan], "c": pd.Categorical(["b", "a", "b"], categories=["b", "a"])})
    s = feature_spec(X, widen=0.5)
    assert s.fields[0].to_dict() == {"name": "x", "kind": "number", "nullable": True, "minimum": 0.0, "maximum": 4.0,
                                     "categories": []}
    assert s.fields[1].categories == ("b", "a")  # the dtype's order: the model reads the codes
    assert FeatureSpec.from_dict(json.loads(json.dumps(spec.to_dict()))) == spec


@pytest.mark.parametrize("make, exc, msg", [
    (lambda X: feature_spec(X.to_dict()), DataError, "non-empty DataFrame"),
    (lambda X: feature_spec(X.head(0)), DataError, "non-empty DataFrame"),
    (lambda X: feature_spec(X, ["carrier", "nope"]), SchemaError, "nope"),
    (lambda X: feature_spec(X, ["carrier", "carrier"]), DataError, "distinct"),
    (lambda X: feature_spec(X.assign(b=True), ["b"]), DataError, "'b' has dtype bool"),
    (lambda X: feature_spec(X.assign(e=np.nan), ["e"]), DataError, "'e' has no values"),
    (lambda X: feature_spec(X.assign(e=np.inf), ["e"]), DataError, "'e' has infinite values"),
    (lambda X: feature_spec(X.assign(o=[1, "a"] * (len(X) // 2) + [1] * (len(X) % 2)), ["o"]), DataError, "'o' must hold text"),
    (lambda X: feature_spec(X, ["distance"], widen=-1), ConfigError, "widen=-1"),
    (lambda X: feature_spec(X, ["distance"], widen=float("nan")), ConfigError, "widen=nan"),
    (lambda X: feature_spec(X, ["distance"], bounds={"distance": (5, 1)}), ConfigError, "bounds['distance']"),
    (lambda X: feature_spec(X, ["distance"], bounds={"temp": (0, 1)}), ConfigError, "bounds['temp']"),
    (lambda X: feature_spec(X, ["distance"], nullable=["temp"]), ConfigError, "temp"),
])
def test_feature_spec_refuses(flights_model, make, exc, msg):
    X = flights_model[3]
    with pytest.raises(exc, match=msg.replace("[", r"\[").replace("]", r"\]")):
        make(X)


@pytest.mark.parametrize("bad", [None, {}, {"fields": []}, {"fields": [{"name": "x"}]},
                                 {"fields": [{"name": "x", "kind": "number", "nullable": False, "minimum": 2, "maximum": 1,
                                              "categories": []}]},
                                 {"fields": [{"name": "c", "kind": "category", "nullable": False, "minimum": None,
                                              "maximum": None, "categories": []}]}])
def test_spec_from_dict_refuses(bad):
    with pytest.raises(ConfigError):
        FeatureSpec.from_dict(bad)


def test_service_answers_equal_the_model_on_300_rows(flights_model):
    model, backup, spec, test, rows = flights_model
    with _client(create_app(model, spec, backup=backup, main_name="hgb", backup_name="route_rate", budget=30.0)) as c:
        got = c.post("/predict/batch", json={"flights": rows}).json()["predictions"]
        one = [c.post("/predict", json=r).json()["probability"] for r in rows[:20]]
    np.testing.assert_allclose([g["probability"] for g in got], _proba(model, test), rtol=0, atol=1e-12)
    np.testing.assert_allclose(one, _proba(model, test)[:20], rtol=0, atol=1e-12)
    assert {g["model"] for g in got} == {"hgb"} and all(g["late"] == (g["probability"] >= 0.5) for g in got)


# ---------------------------------------------------------------- 422 with the field named

BAD_BODIES = [
    ("unknown field", lambda r: {**r, "runway": "4L"}, "runway", "extra_forbidden"),
    ("string for a number", lambda r: {**r, "distance": "1400"}, "distance", "float_type"),
    ("bool for a number", lambda r: {**r, "temp": True}, "temp", "float_type"),
    ("fraction for an integer", lambda r: {**r, "sched_hour": 5.5}, "sched_hour", "int_type"),
    ("bool for an integer", lambda r: {**r, "sched_dow": False}, "sched_dow", "int_type"),
    ("string for an integer", lambda r: {**r, "sched_hour": "5"}, "sched_hour", "int_type"),
    ("above the range", lambda r: {**r, "sched_hour": 24}, "sched_hour", "less_than_equal"),
    ("below the range", lambda r: {**r, "distance": -1.0}, "distance", "greater_than_equal"),
    ("rate above 1", lambda r: {**r, "route_late_rate": 1.5}, "route_late_rate", "less_than_equal"),
    ("unknown category", lambda r: {**r, "carrier": "ZZ"}, "carrier", "literal_error"),
    ("number for a category", lambda r: {**r, "origin": 7}, "origin", "literal_error"),
    ("null where never missing", lambda r: {**r, "carrier": None}, "carrier", "literal_error"),
    ("missing required", lambda r: {k: v for k, v in r.items() if k != "dest"}, "dest", "missing"),
    ("huge number", lambda r: {**r, "temp": 1e308}, "temp", "less_than_equal"),
    ("list for a number", lambda r: {**r, "temp": [1]}, "temp", "float_type"),
]


@pytest.mark.parametrize("name, change, fieldname, kind", BAD_BODIES, ids=[b[0] for b in BAD_BODIES])
def test_bad_request_gets_422_naming_the_field_and_service_keeps_serving(flights_model, name, change, fieldname, kind):
    model, backup, spec, test, rows = flights_model
    with _client(create_app(model, spec, backup=backup, main_name="hgb", backup_name="route_rate")) as c:
        r = c.post("/predict", json=change(rows[0]))
        assert r.status_code == 422, r.text
        body = r.json()
        assert body["status"] == 422 and body["error"] == "invalid_request" and fieldname in body["detail"], body
        assert [(e["loc"][-1], e["type"]) for e in body["errors"]] == [(fieldname, kind)], body
        rb = c.post("/predict/batch", json={"flights": [rows[1], change(rows[0])]})
        assert rb.status_code == 422 and f"flights.1.{fieldname}" in rb.json()["detail"], rb.text
        assert c.post("/predict", json=rows[0]).status_code == 200


@pytest.mark.parametrize("body, where", [
    (b'{"carrier": ', "json_invalid"),
    (b"[]", "model_attributes_type"),
    (b"null", "missing"),
    (b'{"flights": []}', None),
    (b"\xff\xfe{", "json_invalid"),  # not UTF-8: FastAPI's own answer would be an undocumented 400
])
def test_malformed_bodies_get_422(flights_model, body, where):
    model, backup, spec, test, rows = flights_model
    with _client(create_app(model, spec)) as c:
        for path in ("/predict", "/predict/batch"):
            r = c.post(path, content=body, headers={"content-type": "application/json"})
            assert r.status_code == 422, (path, r.text)
            assert r.json()["errors"], r.text
    with _client(create_app(model, spec, max_rows=3)) as c:
        r = c.post("/predict/batch", json={"flights": rows[:4]})
        assert r.status_code == 422 and "flights" in r.json()["detail"]
        r = c.post("/predict", content=json.dumps({**rows[0], "temp": float("nan")}), headers={"content-type": "application/json"})
        assert r.status_code == 422 and "temp" in r.json()["detail"]


def test_an_integral_float_is_an_integer_as_json_schema_says(flights_model):
    model, backup, spec, test, rows = flights_model
    with _client(create_app(model, spec)) as c:
        a = c.post("/predict", json={**rows[0], "sched_hour": float(rows[0]["sched_hour"])})
        b = c.post("/predict", json=rows[0])
    assert a.status_code == 200 and a.json()["probability"] == b.json()["probability"]


def test_unknown_route_and_method_get_json_errors(flights_model):
    model, backup, spec, test, rows = flights_model
    with _client(create_app(model, spec)) as c:
        r = c.get("/nope")
        assert r.status_code == 404 and "no route GET /nope" in r.json()["detail"]
        r = c.get("/predict")
        assert r.status_code == 405 and r.json()["error"] == "method_not_allowed"


# ---------------------------------------------------------------- micro-batching

def _batcher(model, spec, **kw):
    counted = DelayedModel(model)
    p = FallbackPredictor(counted, None, "hgb", "route_rate")
    return counted, p, MicroBatcher(p.predict, spec.frame, **kw)


def test_micro_batcher_makes_one_call_per_batch_and_respects_the_max(flights_model):
    model, backup, spec, test, rows = flights_model

    async def run(n, **kw):
        counted, p, b = _batcher(model, spec, **kw)
        out = await asyncio.gather(*(b.submit([r]) for r in rows[:n]))
        await b.stop()
        p.close()
        return counted, out
    counted, out = asyncio.run(run(50, max_batch_size=16, max_wait=1.0))
    assert counted.rows == [16, 16, 16, 2] and counted.calls == 4
    np.testing.assert_allclose(np.concatenate([o[0] for o in out]), _proba(model, test)[:50], atol=1e-12, rtol=0)
    assert [o[2] for o in out] == [16] * 48 + [2] * 2
    counted, out = asyncio.run(run(5, max_batch_size=64, max_wait=0.0))
    assert counted.rows == [5]  # everything queued before the worker ran: one call, no wait needed


def test_micro_batcher_lone_request_is_not_held_and_a_big_request_goes_alone(flights_model):
    model, backup, spec, test, rows = flights_model

    async def run():
        counted, p, b = _batcher(model, spec, max_batch_size=4, max_wait=5.0)
        lone = await asyncio.wait_for(b.submit([rows[0]]), 4.0)  # a lone request does not wait max_wait
        big = await asyncio.gather(b.submit(rows[:10]), b.submit(rows[10:12]))
        await b.stop()
        p.close()
        return counted, lone, big
    counted, lone, big = asyncio.run(run())
    assert counted.rows == [1, 10, 2]
    np.testing.assert_allclose(big[0][0], _proba(model, test)[:10], atol=1e-12, rtol=0)


def test_micro_batcher_error_reaches_every_request_and_worker_survives(flights_model):
    model, backup, spec, test, rows = flights_model

    async def run():
        broken = DelayedModel(model, error=RuntimeError("boom"))
        p = FallbackPredictor(broken, None, "hgb", "b")
        b = MicroBatcher(p.predict, spec.frame, max_wait=0.5)
        res = await asyncio.gather(*(b.submit([r]) for r in rows[:3]), return_exceptions=True)
        broken.error = None
        ok = await b.submit([rows[0]])
        await b.stop()
        p.close()
        return res, ok
    res, ok = asyncio.run(run())
    assert all(type(r).__name__ == "PredictionUnavailableError" and "boom" in str(r) for r in res)
    assert ok[1].model == "hgb"


@pytest.mark.parametrize("kw, msg", [({"max_batch_size": 0}, "max_batch_size=0"), ({"max_queue": True}, "max_queue=True"),
                                     ({"max_wait": -1}, "max_wait=-1"), ({"max_wait": float("inf")}, "max_wait=inf")])
def test_micro_batcher_refuses_bad_settings(kw, msg):
    async def predict(X):
        return None
    with pytest.raises(ConfigError, match=msg):
        MicroBatcher(predict, lambda rows: None, **kw)


@pytest.mark.server
def test_concurrent_http_requests_share_model_calls(flights_model):
    model, backup, spec, test, rows = flights_model
    counted = DelayedModel(model, delay=0.2)  # slow enough that the others queue while one batch runs
    app = create_app(counted, spec, budget=60.0, max_batch_size=64, max_wait=0.05)

    async def clients(url):
        async with httpx.AsyncClient(base_url=url, timeout=120) as c:
            return await asyncio.gather(*(c.post("/predict", json=r) for r in rows[:48]))
    with serve_in_thread(app) as srv:
        got = asyncio.run(clients(srv.url))
    assert [r.status_code for r in got] == [200] * 48
    assert sum(counted.rows) == 48 and counted.calls < 48 / 2, counted.rows
    assert max(r.json()["batch_size"] for r in got) > 1
    np.testing.assert_allclose([r.json()["probability"] for r in got], _proba(model, test)[:48], atol=1e-12, rtol=0)


# ---------------------------------------------------------------- smooth failing

def test_fallback_on_timeout_then_busy_then_main_again(flights_model):
    model, backup, spec, test, rows = flights_model
    slow = DelayedModel(model, delay=2.0)
    with _client(create_app(slow, spec, backup=backup, main_name="hgb", backup_name="route_rate", budget=0.05)) as c:
        first, second = (c.post("/predict", json=rows[0]).json() for _ in range(2))
        assert (first["model"], first["fallback"]) == ("route_rate", "timeout")
        assert (second["model"], second["fallback"]) == ("route_rate", "busy")
        assert first["probability"] == pytest.approx(float(backup.predict_proba(test[["route_30d_late_rate"]].head(1))[0, 1]))
        slow.delay = 0.0
        deadline = __import__("time").monotonic() + 60
        while (ans := c.post("/predict", json=rows[0]).json())["model"] != "hgb":  # the late call finishes, main is back
            assert __import__("time").monotonic() < deadline, ans
        assert ans["fallback"] is None and ans["probability"] == pytest.approx(_proba(model, test)[0], abs=1e-12)
        text = c.get("/metrics").text
    assert 'mlsys_fallbacks_total{reason="timeout"} 1.0' in text and 'mlsys_fallbacks_total{reason="busy"}' in text
    assert 'mlsys_model_answers_total{model="route_rate"}' in text


def test_fallback_on_error_and_on_bad_probabilities(flights_model):
    model, backup, spec, test, rows = flights_model

    class Nan:
        feature_names_in_ = model.feature_names_in_

        def predict_proba(self, X):
            return np.full((len(X), 2), np.nan)
    for main in (DelayedModel(model, error=ValueError("bad weights")), Nan()):
        with _client(create_app(main, spec, backup=backup, main_name="hgb", backup_name="route_rate")) as c:
            ans = c.post("/predict/batch", json={"flights": rows[:3]}).json()["predictions"]
        assert [(a["model"], a["fallback"]) for a in ans] == [("route_rate", "error")] * 3


def test_no_model_answers_gives_503_and_the_service_keeps_serving(flights_model):
    model, backup, spec, test, rows = flights_model
    app = create_app(DelayedModel(model, error=RuntimeError("boom")), spec, main_name="hgb", backup_name="route_rate",
                     backup=DelayedModel(backup, error=RuntimeError("also boom")))
    with _client(app) as c:
        r = c.post("/predict", json=rows[0])
        assert r.status_code == 503 and r.headers["retry-after"] == "1"
        assert "boom" in r.json()["detail"] and "also boom" in r.json()["detail"]
        assert c.get("/health").status_code == 200 and c.get("/ready").status_code == 200
    with _client(create_app(DelayedModel(model, error=RuntimeError("boom")), spec)) as c:
        r = c.post("/predict", json=rows[0])
        assert r.status_code == 503 and "no backup" in r.json()["detail"]


def test_without_a_backup_a_slow_main_model_is_awaited(flights_model):
    model, backup, spec, test, rows = flights_model
    with _client(create_app(DelayedModel(model, delay=0.3), spec, budget=0.01)) as c:
        ans = c.post("/predict", json=rows[0]).json()
    assert ans["model"] == "main" and ans["fallback"] is None


# ---------------------------------------------------------------- load shedding

@pytest.mark.server
def test_overload_sheds_with_503_and_recovers(flights_model):
    model, backup, spec, test, rows = flights_model
    app = create_app(DelayedModel(model, delay=1.0), spec, budget=60.0, max_batch_size=1, max_queue=2)

    async def burst(url):
        async with httpx.AsyncClient(base_url=url, timeout=120) as c:
            return await asyncio.gather(*(c.post("/predict", json=r) for r in rows[:12]))
    with serve_in_thread(app) as srv:
        got = asyncio.run(burst(srv.url))
        codes = collections.Counter(r.status_code for r in got)
        shed = [r for r in got if r.status_code == 503]
        after = httpx.get(f"{srv.url}/ready", timeout=30), httpx.post(f"{srv.url}/predict", json=rows[0], timeout=60)
        text = httpx.get(f"{srv.url}/metrics", timeout=30).text
    assert set(codes) == {200, 503} and codes[200] >= 2, codes  # the queue holds 2; the worker may hold one more
    assert all(r.headers["retry-after"] == "1" and "max_queue=2" in r.json()["detail"] for r in shed)
    assert after[0].status_code == 200 and after[1].status_code == 200
    assert f"mlsys_shed_requests_total {float(codes[503])}" in text
    assert f'mlsys_requests_total{{route="/predict",status="503"}} {float(codes[503])}' in text


def test_ready_is_503_when_the_queue_is_full(flights_model):
    model, backup, spec, test, rows = flights_model
    app = create_app(model, spec, max_queue=1)
    with _client(app) as c:
        service = app.state.service
        service.batcher._queue.append(object())  # a stand-in for a waiting request
        try:
            r = c.get("/ready")
        finally:
            service.batcher._queue.clear()
        assert r.status_code == 503 and "queue is full" in r.json()["detail"] and r.headers["retry-after"] == "1"
        assert c.get("/ready").json() == {"status": "ready", "queued": 0, "max_queue": 1}


# ---------------------------------------------------------------- cache and lookups

def test_ttl_cache_lru_and_expiry():
    now = [0.0]
    c = TTLCache(maxsize=3, ttl=5, clock=lambda: now[0])
    for k in "abc":
        c.put(k, k.upper())
    assert c.get("a") == "A"  # a is now the most recent
    c.put("d", "D")
    assert [c.get(k) for k in "abcd"] == ["A", None, "C", "D"] and c.evicted == 1
    now[0] = 4.9
    assert c.get("a") == "A"
    now[0] = 5.0
    assert c.get("a") is None and c.expired == 1 and len(c) == 2
    c.put("c", "C2")
    assert c.get("c") == "C2"
    for bad in ({"maxsize": 0}, {"ttl": 0}, {"ttl": float("inf")}, {"maxsize": 1.5}, {"clock": 3}):
        with pytest.raises(ConfigError):
            TTLCache(**bad)


def _lookup_app(flights_model, store, **kw):
    model, backup, spec, test, rows = flights_model
    assert OnlineFeatures(store, spec).publish(test) == len(test)
    return create_app(model, spec, backup=backup, main_name="hgb", backup_name="route_rate", store=store, **kw)


def test_lookup_by_flight_id_from_sqlite_store_and_cache_hits(flights_model, tmp_path):
    model, backup, spec, test, rows = flights_model
    app = _lookup_app(flights_model, SQLiteOnlineStore(tmp_path / "online.sqlite"))
    ids = test["flight_id"].tolist()
    with _client(app) as c:
        got = [c.get(f"/flights/{i}/prediction").json() for i in ids[:30]]
        again = [c.get(f"/flights/{i}/prediction").json() for i in ids[:30]]
        missing = c.get("/flights/20130101-ZZ1-EWR/prediction")
        malformed = c.get("/flights/UA1545/prediction")
        text = c.get("/metrics").text
    np.testing.assert_allclose([g["probability"] for g in got], _proba(model, test)[:30], atol=1e-12, rtol=0)
    assert [g["cached"] for g in got] == [False] * 30 and [a["cached"] for a in again] == [True] * 30
    assert [a["probability"] for a in again] == [g["probability"] for g in got]
    assert missing.status_code == 404 and "20130101-ZZ1-EWR" in missing.json()["detail"]
    assert malformed.status_code == 422 and "flight_id" in malformed.json()["detail"]
    assert 'mlsys_prediction_cache_total{result="hit"} 30.0' in text
    assert 'mlsys_prediction_cache_total{result="miss"} 31.0' in text


def test_warm_precomputes_popular_keys_and_fallbacks_are_not_cached(flights_model, tmp_path):
    model, backup, spec, test, rows = flights_model
    app = _lookup_app(flights_model, SQLiteOnlineStore(), max_batch_size=8)
    ids = test["flight_id"].tolist()
    service: PredictionService = app.state.service
    with _client(app) as c:
        assert c.portal.call(service.warm, ids[:20] + ["20130101-ZZ1-EWR"]) == 20
        got = [c.get(f"/flights/{i}/prediction").json() for i in ids[:20]]
        assert all(g["cached"] and g["batch_size"] == 0 for g in got)
        np.testing.assert_allclose([g["probability"] for g in got], _proba(model, test)[:20], atol=1e-12, rtol=0)
    slow = _lookup_app(flights_model, SQLiteOnlineStore())
    slow.state.service.predictor.main = DelayedModel(model, error=RuntimeError("down"))
    with _client(slow) as c:
        first, second = (c.get(f"/flights/{ids[0]}/prediction").json() for _ in range(2))
    assert first["model"] == second["model"] == "route_rate" and not second["cached"]


@pytest.mark.redis
def test_lookup_from_redis_store(flights_model, redis_client):
    model, backup, spec, test, rows = flights_model
    prefix = f"mlsys:test:{uuid.uuid4().hex}"
    try:
        app = _lookup_app(flights_model, RedisOnlineStore(redis_client, prefix=prefix))
        with _client(app) as c:
            got = [c.get(f"/flights/{i}/prediction").json()["probability"] for i in test["flight_id"][:10]]
        np.testing.assert_allclose(got, _proba(model, test)[:10], atol=1e-12, rtol=0)
    finally:
        keys = list(redis_client.scan_iter(f"{prefix}:*"))
        if keys:
            redis_client.delete(*keys)


def test_online_features_refuses_bad_tables(flights_model):
    model, backup, spec, test, rows = flights_model
    online = OnlineFeatures(SQLiteOnlineStore(), spec)
    with pytest.raises(SchemaError, match="flight_id"):
        online.publish(test.drop(columns="flight_id"))
    with pytest.raises(DataError, match="distinct"):
        online.publish(pd.concat([test.head(2), test.head(1)]))
    with pytest.raises(ConfigError):
        OnlineFeatures(object(), spec)


# ---------------------------------------------------------------- metrics, settings, folders

def test_metrics_count_by_route_and_status_and_registries_are_per_app(flights_model):
    model, backup, spec, test, rows = flights_model
    a, b = create_app(model, spec), create_app(model, spec)  # a shared registry would refuse the second
    with _client(a) as c:
        c.post("/predict", json=rows[0])
        c.post("/predict", json={**rows[0], "x": 1})
        c.get("/nope")
        r = c.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    text = r.text
    for line in ('mlsys_requests_total{route="/predict",status="200"} 1.0', 'mlsys_requests_total{route="/predict",status="422"} 1.0',
                 'mlsys_requests_total{route="unmatched",status="404"} 1.0', "mlsys_batch_size_count 1.0",
                 'mlsys_request_seconds_count{route="/predict"} 2.0', "mlsys_queue_depth 0.0"):
        assert line in text, line
    with _client(b) as c:
        assert 'status="422"' not in c.get("/metrics").text


@pytest.mark.parametrize("kw, msg", [({"budget": 0}, "budget=0"), ({"threshold": 2}, "threshold=2"),
                                     ({"main_name": "x", "backup_name": "x"}, "distinct"), ({"max_rows": 0}, "max_rows=0")])
def test_create_app_refuses_bad_settings(flights_model, kw, msg):
    model, backup, spec, test, rows = flights_model
    with pytest.raises(ConfigError, match=msg):
        create_app(model, spec, **kw)


def test_positive_proba_and_delayed_model_checks(flights_model):
    model, backup, spec, test, rows = flights_model
    assert positive_proba(model, test).shape == (len(test),)
    with pytest.raises(ConfigError):
        DelayedModel(object())
    with pytest.raises(ConfigError, match="delay=-1"):
        DelayedModel(model, delay=-1)
    with pytest.raises(ConfigError):
        request_models("spec")


def test_save_service_round_trip_in_process(flights_model, tmp_path):
    model, backup, spec, test, rows = flights_model
    store = {"kind": "sqlite", "path": str(tmp_path / "online.sqlite")}
    folder = save_service(tmp_path / "svc", {"hgb": model, "route_rate": backup}, spec, store=store,
                          main_name="hgb", backup_name="route_rate", budget=1.0)
    OnlineFeatures(SQLiteOnlineStore(store["path"]), spec).publish(test)
    with _client(app_from_folder(folder)) as c:
        one = c.post("/predict", json=rows[3]).json()
        by_id = c.get(f"/flights/{test['flight_id'][3]}/prediction").json()
    assert one["model"] == "hgb" and one["probability"] == pytest.approx(_proba(model, test)[3], abs=1e-12)
    assert by_id["probability"] == pytest.approx(one["probability"], abs=1e-12)
    with pytest.raises(ConfigError, match="unknown service settings"):
        save_service(tmp_path / "x", {"hgb": model}, spec, main_name="hgb", colour="red")
    with pytest.raises(ConfigError, match="holding"):
        save_service(tmp_path / "x", {"hgb": model}, spec)
    with pytest.raises(ConfigError, match="service.json"):
        app_from_folder(tmp_path / "empty")


# ---------------------------------------------------------------- serving the ONNX export, and the batch fill rule

def _onnx(model):
    from mlsys.deploy.serialize import OnnxModel, hgb_to_onnx
    data, feed, outputs = hgb_to_onnx(model)
    return OnnxModel(data, feed, outputs, list(model.classes_))


def test_onnx_record_inputs_equal_the_dataframe_path_on_random_rows(flights_model):
    "Randomized: rows with nulls, NaN, ints for floats, unseen and non-ASCII categories give the same tensors and probabilities."
    pytest.importorskip("onnxruntime")
    model, backup, spec, test, rows = flights_model
    om, rng = _onnx(model), np.random.default_rng(7)
    cats = {f.name: list(f.categories) for f in spec.fields if f.kind == "category"}
    for _ in range(15):
        batch = []
        for r in [dict(rows[i]) for i in rng.integers(0, len(rows), rng.integers(1, 20))]:
            for name, choices in cats.items():
                r[name] = rng.choice(choices + [None, "ünseen", "", "x\n"])
            for f in spec.fields:
                if f.kind != "category" and rng.random() < 0.15:
                    r[f.name] = None if rng.random() < 0.5 else float("nan")
                elif f.kind != "category" and r[f.name] is not None and rng.random() < 0.2:
                    r[f.name] = int(r[f.name]) if np.isfinite(r[f.name]) else r[f.name]
            batch.append(r)
        frame = pd.DataFrame({f.name: pd.Categorical([r[f.name] if r[f.name] in f.categories else None for r in batch],
                                                     categories=f.categories)
                              if f.kind == "category" else [r[f.name] for r in batch] for f in spec.fields})
        for f in spec.fields:
            if f.kind != "category":
                frame[f.name] = frame[f.name].astype("float64")
        got, want = om.record_inputs(batch), om.inputs(frame)
        for name in want:
            if want[name].dtype.kind in "UO":  # an unseen category is a category the model never saw, either way
                known = np.isin(got[name], [c for c in cats[name]])
                assert (got[name][known] == want[name][known]).all()
            else:
                np.testing.assert_array_equal(got[name], want[name])
        np.testing.assert_allclose(om.predict_proba_records(batch), om.predict_proba(frame), atol=1e-12, rtol=0)
        np.testing.assert_allclose(om.predict_proba_records(batch)[:, 1], model.predict_proba(frame[list(model.feature_names_in_)])[:, 1],
                                   atol=1e-9, rtol=0)


def test_onnx_record_inputs_refuse_bad_records(flights_model):
    pytest.importorskip("onnxruntime")
    model, backup, spec, test, rows = flights_model
    om = _onnx(model)
    with pytest.raises(DataError, match="list of dicts"):
        om.record_inputs({"a": 1})
    with pytest.raises(DataError, match="non-numeric"):
        om.record_inputs([{**rows[0], "temp": "12.5"}])  # a string is never read as a number
    with pytest.raises(DataError, match="not a number"):
        om.record_inputs([{**rows[0], "temp": [1, 2]}])


def test_service_serves_the_onnx_export_equal_to_the_model(flights_model, tmp_path):
    pytest.importorskip("onnxruntime")
    from mlsys.deploy.serialize import OnnxModel
    model, backup, spec, test, rows = flights_model
    models = {"hgb": model, "route_rate": backup}
    with pytest.raises(ConfigError, match="needs example="):
        save_service(tmp_path / "x", models, spec, main_format="onnx", main_name="hgb", backup_name="route_rate")
    with pytest.raises(ConfigError, match="main_format='tflite'"):
        save_service(tmp_path / "x", models, spec, main_format="tflite", main_name="hgb", backup_name="route_rate")
    save_service(tmp_path / "svc", models, spec, main_format="onnx", example=test, main_name="hgb", backup_name="route_rate",
                 bench_endpoints=True, budget=30.0)
    app = app_from_folder(tmp_path / "svc")
    assert isinstance(app.state.service.predictor.main, OnnxModel)
    want = _proba(model, test)
    with _client(app) as c:
        got = [c.post("/predict", json=r).json() for r in rows[:20]]
        assert {g["model"] for g in got} == {"hgb"} and all(g["fallback"] is None for g in got)
        np.testing.assert_allclose([g["probability"] for g in got], want[:20], atol=1e-9, rtol=0)
        batch = c.post("/predict/batch", json={"flights": rows[:50]}).json()["predictions"]
        np.testing.assert_allclose([g["probability"] for g in batch], want[:50], atol=1e-9, rtol=0)
        for path in ("/predict/naive", "/predict/naive-records"):
            np.testing.assert_allclose(c.post(path, json=rows[3]).json()["probability"], want[3], atol=1e-9, rtol=0)
        bad = c.post("/predict", json={**rows[0], "temp": "warm"})
        assert bad.status_code == 422 and "temp" in bad.text
    (tmp_path / "svc" / "main.onnx.zip").write_bytes(b"PK\x03\x04 not an artifact")
    with pytest.raises(Exception, match="main.onnx.zip"):
        app_from_folder(tmp_path / "svc")  # the export is verified on load


def test_micro_batcher_does_not_wait_once_as_many_requests_as_last_time_are_in(flights_model):
    "After a batch of 6 requests, the next 6 leave at once: the wait (3 s) is only for a batch that is still filling."
    model, backup, spec, test, rows = flights_model

    async def run():
        counted, p, b = _batcher(model, spec, max_batch_size=64, max_wait=3.0)
        await asyncio.gather(*(b.submit([r]) for r in rows[:6]))
        t0 = asyncio.get_running_loop().time()
        await asyncio.wait_for(asyncio.gather(*(b.submit([r]) for r in rows[6:12])), 2.5)
        fast = asyncio.get_running_loop().time() - t0
        t0 = asyncio.get_running_loop().time()
        await asyncio.wait_for(asyncio.gather(*(b.submit([r]) for r in rows[12:15])), 8.0)  # 3 of 6: waits, then goes
        slow = asyncio.get_running_loop().time() - t0
        await b.stop()
        p.close()
        return counted, fast, slow
    counted, fast, slow = asyncio.run(run())
    assert counted.rows == [6, 6, 3], counted.rows
    assert fast < 2.5 and slow >= 2.0  # the partial batch waited (most of) max_wait; the full one did not


@pytest.mark.server
def test_a_detached_service_outlives_the_process_that_started_it(flights_model, tmp_path):
    "What the deploy stage relies on: its kernel exits, the service it started keeps answering until it is stopped."
    import subprocess
    import sys

    import psutil
    model, backup, spec, test, rows = flights_model
    save_service(tmp_path / "svc", {"hgb": model, "route_rate": backup}, spec, main_name="hgb", backup_name="route_rate",
                 budget=30.0)
    code = ("from mlsys.deploy.service import start_service\n"
            f"s = start_service({str(tmp_path / 'svc')!r}, detach=True)\n"
            "print(s.url, s.process.pid)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=180, check=True)
    url, pid = out.stdout.split()
    try:
        r = httpx.post(f"{url}/predict", json=rows[0], timeout=30)
        assert r.status_code == 200 and r.json()["probability"] == pytest.approx(_proba(model, test)[0], abs=1e-12)
    finally:
        p = psutil.Process(int(pid))
        p.terminate()
        p.wait(30)


def test_request_log_writes_one_json_line_per_request_with_its_ids(flights_model, tmp_path):
    from mlsys.monitor.observe import read_json_logs
    model, backup, spec, test, rows = flights_model
    log = tmp_path / "requests.jsonl"
    with _client(create_app(model, spec, main_name="hgb", budget=30.0, request_log=str(log))) as c:
        ok = c.post("/predict", json=rows[0], headers={"x-request-id": "abc123def456"})
        bad = c.post("/predict", json={**rows[0], "temp": "warm"})
        c.get("/health")
    assert ok.headers["x-request-id"] == "abc123def456" and "traceparent" in bad.headers
    got = read_json_logs(log)
    assert len(got) == 3 and list(got["status"]) == [200, 422, 200]
    assert got["request_id"].iloc[0] == "abc123def456" and got["model"].iloc[0] == "hgb"
    assert got["trace_id"].notna().all() and got["trace_id"].nunique() == 3



def test_a_relative_request_log_in_a_saved_service_belongs_to_its_folder(flights_model, tmp_path):
    "A copied or moved run folder's restarted service logs into its own copy, not into the folder it was saved in."
    import shutil
    model, backup, spec, test, rows = flights_model
    save_service(tmp_path / "a" / "deploy" / "service", {"hgb": model, "route_rate": backup}, spec, main_name="hgb",
                 backup_name="route_rate", budget=1.0, request_log="../../logs/requests.jsonl")
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    with _client(app_from_folder(tmp_path / "b" / "deploy" / "service")) as c:
        assert c.post("/predict", json=rows[3]).status_code == 200
    assert (tmp_path / "b" / "logs" / "requests.jsonl").read_text().count("\n") == 1
    assert not (tmp_path / "a" / "logs").exists()
