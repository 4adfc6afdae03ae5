"""monitor.observe: W3C trace context, JSON log lines, request logs of the real service, stream ids, metrics from logs equal
to the service's Prometheus counters, a real Prometheus server scraping the service, and the alerting rules under promtool."""
import asyncio
import io
import json
import logging
import random
import shutil
import string

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("httpx")
pytest.importorskip("prometheus_client")

import httpx

from mlsys.core import ConfigError, DataError
from mlsys.monitor.observe import (
    CORE_FIELDS,
    JsonFormatter,
    RequestLogMiddleware,
    current_trace,
    inject_trace,
    json_handler,
    key_trace_id,
    log_stream_event,
    parse_traceparent,
    prometheus_config,
    prometheus_samples,
    promtool_check_rules,
    promtool_test_rules,
    read_json_lines,
    read_json_logs,
    request_counts,
    request_metrics,
    rules_path,
    start_prometheus,
    start_trace,
    stream_trace,
    trace_scope,
)


def _strict(line: str):
    "json.loads that refuses NaN/Infinity, as strict JSON readers do."
    def bad(c):
        raise ValueError(f"non-standard JSON constant {c}")
    return json.loads(line, parse_constant=bad)


@pytest.fixture(scope="module")
def service():
    "A small boosting model and the route-rate backup on Jan 1-3, the spec, and request rows of Jan 4."
    from mlsys.datasets import load_flights, load_planes, load_weather
    from mlsys.deploy.service import feature_spec
    from mlsys.pipeline import FEATURES, LABEL, ROUTE_RATE, build_features, fit_baseline_models, make_model, time_split

    flights = load_flights("2013-01-01", "2013-01-05")
    feats = build_features(flights, load_weather("2013-01-01", "2013-01-05"), load_planes())
    train, test = time_split(feats, "2013-01-04")
    model = make_model(params={"max_iter": 10}).fit(train[FEATURES], train[LABEL].astype(int))
    backup = fit_baseline_models(train)["route_rate"]
    spec = feature_spec(train, FEATURES + [ROUTE_RATE], widen=0.5, bounds={"sched_hour": (0, 23), "sched_dow": (0, 6)})
    from mlsys.deploy.service import request_models
    rows = test[spec.names].astype(object).where(test[spec.names].notna(), None).to_dict("records")
    Flight = request_models(spec).Flight

    def valid(r):
        try:
            return Flight.model_validate(r) is not None
        except ValueError:  # pydantic's ValidationError: a category or value training never saw
            return False
    return model, backup, spec, [r for r in rows if valid(r)][:200]


@pytest.fixture
def capture():
    "A fresh JSON log stream on the middleware's logger (and on mlsys.test), removed afterwards."
    buf = io.StringIO()
    handler = json_handler(buf)
    loggers = [logging.getLogger(n) for n in ("mlsys.requests", "mlsys.test", "mlsys.stream")]
    saved = [(lg.level, lg.propagate) for lg in loggers]
    for lg in loggers:
        lg.addHandler(handler)
        lg.setLevel(logging.INFO)
        lg.propagate = False
    yield buf
    for lg, (level, prop) in zip(loggers, saved):
        lg.removeHandler(handler)
        lg.setLevel(level)
        lg.propagate = prop


def _app(service, **kw):
    from mlsys.deploy.service import create_app
    model, backup, spec, rows = service
    inner = create_app(model, spec, backup=backup, main_name="hgb", backup_name="route_rate", **kw)

    @inner.get("/echo")
    async def echo() -> dict:  # logs from inside the request, and hands back the ids in scope
        await asyncio.sleep(random.random() / 100)
        logging.getLogger("mlsys.test").info("inside")
        ctx = await asyncio.to_thread(current_trace)
        return {"request_id": ctx.request_id, "trace_id": ctx.trace_id}
    return inner, RequestLogMiddleware(inner)


async def _with_client(inner, app, fn):
    async with inner.router.lifespan_context(inner):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://svc") as c:
            return await fn(c)


# ---------------------------------------------------------------- trace context

def test_traceparent_parse_matches_the_w3c_rules_on_random_headers():
    rng = random.Random(0)
    hexd = "0123456789abcdef"
    for _ in range(2000):
        trace = "".join(rng.choice(hexd) for _ in range(32))
        span = "".join(rng.choice(hexd) for _ in range(16))
        flags = rng.choice(["00", "01", "03", "ff", "fe"])
        version = rng.choice(["00", "01", "cc", "ff"])
        kind = rng.randrange(8)
        h = f"{version}-{trace}-{span}-{flags}"
        if kind == 1:
            h = h.upper() if any(c in "abcdef" for c in h) else h.replace("0", "g", 1)
        elif kind == 2:
            h = h[:-1]
        elif kind == 3:
            h = f"{version}-{'0' * 32}-{span}-{flags}"
        elif kind == 4:
            h = f"{version}-{trace}-{'0' * 16}-{flags}"
        elif kind == 5:
            h += "-" + "".join(rng.choice(string.ascii_lowercase) for _ in range(5))
        elif kind == 6:
            h = h.replace("-", "_", 1)
        want_ok = (kind in (0, 5, 7) and version != "ff" and not (kind == 5 and version == "00"))
        got = parse_traceparent(h)
        if want_ok:
            assert got == (trace, span, bool(int(flags, 16) & 1)), h
        else:
            assert got is None, h


def test_start_trace_continues_a_valid_parent_and_restarts_on_an_invalid_one():
    root = start_trace(request_id="r")
    assert parse_traceparent(root.traceparent) == (root.trace_id, root.span_id, True)
    child = start_trace(root.traceparent, "r")
    assert (child.trace_id, child.parent_id) == (root.trace_id, root.span_id) and child.span_id != root.span_id
    unsampled = start_trace(f"00-{root.trace_id}-{root.span_id}-00")
    assert unsampled.traceparent.endswith("-00")
    for bad in ("", "00-xyz", root.traceparent.upper(), None, 12):
        fresh = start_trace(bad)
        assert fresh.parent_id is None and fresh.trace_id != root.trace_id
    assert root.child().parent_id == root.span_id
    with pytest.raises(ConfigError, match="TraceContext"):
        with trace_scope("00-abc"):
            pass


# ---------------------------------------------------------------- JSON lines

def test_every_record_is_one_strict_json_line_whatever_it_holds():
    rng = random.Random(1)
    alphabet = "ab \n\r\t\"\\é漢\u2028\u2029\x00\x1f💥{}[]"
    buf = io.StringIO()
    lg = logging.getLogger("mlsys.test.fmt")
    lg.addHandler(json_handler(buf, level=logging.DEBUG))
    lg.setLevel(logging.DEBUG)
    lg.propagate = False
    messages = []
    try:
        for i in range(400):
            msg = "".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 30)))
            messages.append(msg)
            extra = {"f32": np.float32(rng.random()), "i64": np.int64(i), "nan": float("nan"), "inf": -np.inf,
                     "arr": np.array([1.5, np.nan]), "when": pd.Timestamp("2013-01-01", tz="UTC"), "obj": object(),
                     "text": msg, "message_like": {"nested": [float("nan"), np.bool_(True)]}}
            if i % 50 == 0:
                try:
                    raise RuntimeError(f"boom\n{msg}")
                except RuntimeError:
                    lg.exception("%s", msg, extra=extra)
            else:
                lg.log(rng.choice([10, 20, 30, 40]), "%s", msg, extra=extra)
    finally:
        lg.handlers.clear()
    lines = buf.getvalue().split("\n")
    assert lines[-1] == "" and len(lines) == 401
    recs = [_strict(x) for x in lines[:-1]]
    assert [r["message"] for r in recs] == messages
    assert all(set(CORE_FIELDS) <= set(r) and r["nan"] is None and r["inf"] is None and r["arr"] == [1.5, None]
               and r["timestamp"].endswith("Z") for r in recs)
    assert "boom" in recs[0]["exception"]
    assert pd.to_datetime([r["timestamp"] for r in recs], utc=True, format="ISO8601").is_monotonic_increasing


def test_context_fields_never_overwrite_the_core_fields_and_ids_come_from_the_scope():
    rec = logging.makeLogRecord({"name": "x", "levelname": "INFO", "msg": "m", "created": 0.0, "level": "fake",
                                 "logger": "fake", "timestamp": "fake"})
    ctx = start_trace(request_id="req")
    with trace_scope(ctx):
        out = _strict(JsonFormatter().format(rec))
    assert out["timestamp"] == "1970-01-01T00:00:00.000000Z" and out["level"] == "INFO" and out["logger"] == "x"
    assert (out["field_level"], out["field_logger"], out["field_timestamp"]) == ("fake", "fake", "fake")
    assert (out["trace_id"], out["span_id"], out["request_id"]) == (ctx.trace_id, ctx.span_id, "req")
    with pytest.raises(ConfigError, match="file path or a text stream"):
        json_handler(42)


# ---------------------------------------------------------------- the service's request logs

def test_every_request_to_the_service_gives_exactly_one_json_line_with_its_ids(service, capture):
    model, backup, spec, rows = service
    inner, app = _app(service)
    parent = start_trace()

    async def traffic(c):
        out = [await c.post("/predict", json=rows[0], headers={"traceparent": parent.traceparent, "x-request-id": "req-1"}),
               await c.post("/predict/batch", json={"flights": rows[:7]}),
               await c.post("/predict", json={**rows[0], "sched_hour": 24}),
               await c.post("/predict", content=b'{"carrier": ', headers={"content-type": "application/json"}),
               await c.get("/nope"), await c.get("/predict"), await c.get("/health"),
               await c.post("/predict", json=rows[1], headers={"x-request-id": "bad id with spaces", "traceparent": "junk"})]
        return out
    resp = asyncio.run(_with_client(inner, app, traffic))
    lines = capture.getvalue().splitlines()
    assert len(lines) == len(resp)
    recs = [_strict(x) for x in lines]
    assert [(r["route"], r["status"]) for r in recs] == [
        ("/predict", 200), ("/predict/batch", 200), ("/predict", 422), ("/predict", 422), ("unmatched", 404),
        ("/predict", 405), ("/health", 200), ("/predict", 200)]
    assert [r.status_code for r in resp] == [r["status"] for r in recs]
    for r, rec in zip(resp, recs):
        assert r.headers["x-request-id"] == rec["request_id"] and rec["latency_ms"] >= 0
        assert parse_traceparent(r.headers["traceparent"]) == (rec["trace_id"], rec["span_id"], True)
        assert rec["level"] == "INFO" and rec["logger"] == "mlsys.requests" and rec["method"] in ("GET", "POST")
    assert (recs[0]["request_id"], recs[0]["trace_id"], recs[0]["parent_id"]) == ("req-1", parent.trace_id, parent.span_id)
    assert recs[7]["request_id"] != "bad id with spaces" and recs[7].get("parent_id") is None
    answered = [resp[0].json()["model"], resp[1].json()["predictions"][0]["model"], None]  # the backup answers when main is late
    assert [r["model"] for r in recs[:3]] == answered and set(answered[:2]) <= {"hgb", "route_rate"}
    assert all({"timestamp", "latency_ms", "status", "model_version", "prediction_id"} <= set(r) for r in recs)
    assert len({r["request_id"] for r in recs}) == len(recs) and len({r["trace_id"] for r in recs}) == len(recs)


def test_concurrent_requests_keep_their_own_ids_inside_the_app(service, capture):
    inner, app = _app(service)
    random.seed(2)

    async def traffic(c):
        return await asyncio.gather(*[c.get("/echo", headers={"x-request-id": f"r{i}"}) for i in range(40)])
    resp = asyncio.run(_with_client(inner, app, traffic))
    assert [r.json()["request_id"] for r in resp] == [f"r{i}" for i in range(40)]
    recs = [_strict(x) for x in capture.getvalue().splitlines()]
    inside = {r["request_id"]: r["trace_id"] for r in recs if r["logger"] == "mlsys.test"}
    outer = {r["request_id"]: r["trace_id"] for r in recs if r["logger"] == "mlsys.requests"}
    assert len(inside) == len(outer) == 40 and inside == outer == {r.json()["request_id"]: r.json()["trace_id"] for r in resp}


def test_model_names_from_a_batch_answered_by_both_models_and_from_headers(capture):
    async def app(scope, receive, send):
        if scope["path"] == "/both":
            body = json.dumps({"predictions": [{"model": "hgb", "prediction_id": "f1@v"}, {"model": "route_rate"},
                                               {"model": "hgb", "prediction_id": "f\u00e9\"2@v"}]}).encode()
            headers = [(b"content-type", b"application/json")]
        else:
            body, headers = b"ok", [(b"content-type", b"text/plain"), (b"x-model", b"m"), (b"x-model-version", b"v7"),
                                    (b"x-request-id", b"stale")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def go():
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=RequestLogMiddleware(app)), base_url="http://x") as c:
            return await c.get("/both"), await c.get("/plain")
    a, b = asyncio.run(go())
    recs = [_strict(x) for x in capture.getvalue().splitlines()]
    assert recs[0]["model"] == ["hgb", "route_rate"] and (recs[1]["model"], recs[1]["model_version"]) == ("m", "v7")
    assert recs[0]["prediction_id"] == ["f1@v", 'f\u00e9"2@v'] and recs[1]["prediction_id"] is None
    assert b.headers.get_list("x-request-id") == [recs[1]["request_id"]]  # the app's own is replaced, not duplicated
    with pytest.raises(ConfigError, match="sniff_bytes"):
        RequestLogMiddleware(app, sniff_bytes=-1)


def test_a_crashing_app_is_logged_as_500_at_error_level(capture):
    async def app(scope, receive, send):
        raise RuntimeError("model exploded")

    async def go():
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=RequestLogMiddleware(app)), base_url="http://x") as c:
            await c.get("/x")
    with pytest.raises(RuntimeError, match="exploded"):
        asyncio.run(go())
    (rec,) = [_strict(x) for x in capture.getvalue().splitlines()]
    assert (rec["status"], rec["level"]) == (500, "ERROR")


# ---------------------------------------------------------------- the stream

def test_stream_events_of_one_flight_share_a_trace_and_injected_traces_continue(capture):
    fid = "20130108-UA1545-EWR"
    events = [{"flight_id": fid, "kind": "scheduled"}, {"flight_id": fid, "kind": "departed"},
              {"key": fid, "prediction_id": f"{fid}@v1", "model_version": "v1"}]
    spans = [log_stream_event("mlsys.stream", s, e, message_id=str(i)) for i, (s, e) in
             enumerate(zip(["published", "published", "predicted"], events))]
    assert {s.trace_id for s in spans} == {key_trace_id(fid)} and len({s.span_id for s in spans}) == 3
    with trace_scope(start_trace(request_id="http-7")) as ctx:
        carried = inject_trace(events[0])
    assert stream_trace(carried).trace_id == ctx.trace_id and stream_trace(carried).parent_id == ctx.span_id
    assert carried["request_id"] == "http-7" and "traceparent" not in events[0]
    recs = [_strict(x) for x in capture.getvalue().splitlines()]
    assert [r["stage"] for r in recs] == ["published", "published", "predicted"]
    assert recs[2]["request_id"] == f"{fid}@v1" and recs[2]["model_version"] == "v1"
    for bad, exc in [([1], DataError), ({"kind": "x"}, DataError), ({"flight_id": ""}, DataError)]:
        with pytest.raises(exc):
            stream_trace(bad)


# ---------------------------------------------------------------- reading logs back

def test_read_json_logs_names_each_malformed_line_or_counts_it(tmp_path):
    good = json.dumps({"timestamp": "2013-01-01T00:00:00Z", "level": "INFO", "logger": "x", "message": "m"})
    bad_lines = {b"not json": "not JSON", b"[1]": "a JSON list", b'{"timestamp": "2013"}': "missing field",
                 b"": "not JSON", b"\xff\xfe": "not JSON", good.encode()[:20]: "not JSON"}
    for bad, why in bad_lines.items():
        data = b"\n".join([good.encode(), good.encode(), bad, good.encode()]) + b"\n"
        (tmp_path / "log.jsonl").write_bytes(data)
        with pytest.raises(DataError, match=f"log .*log.jsonl: line 3 is malformed: {why}"):
            read_json_logs(tmp_path / "log.jsonl")
        df = read_json_logs(data, errors="count")
        assert len(df) == 3 and df.attrs["malformed_lines"] == [3] and str(df["timestamp"].dt.tz) == "UTC"
    torn = (good + "\n" + good[:30]).encode()  # a writer killed mid-line: the last line has no newline
    assert read_json_logs(torn, errors="count").attrs["malformed_lines"] == [2]
    assert len(read_json_logs((good + "\r\n") * 2)) == 2  # CRLF written by another platform
    with pytest.raises(DataError, match="unreadable timestamp"):
        read_json_logs(good.replace("2013-01-01T00:00:00Z", "yesterday") + "\n")
    with pytest.raises(DataError, match="does not exist"):
        read_json_logs(tmp_path / "nope.jsonl")
    with pytest.raises(ConfigError, match="errors='skip'"):
        read_json_lines([good], errors="skip")
    with pytest.raises(DataError, match="path, bytes, text or lines"):
        read_json_logs(3.5)
    empty = read_json_logs(b"")
    assert len(empty) == 0 and list(empty.columns) == list(CORE_FIELDS)


def test_metrics_from_the_logs_equal_the_service_prometheus_counters(service, capture):
    model, backup, spec, rows = service
    inner, app = _app(service)
    rng = np.random.default_rng(3)

    async def traffic(c):
        for i in range(150):
            u, r = rng.random(), rows[i % len(rows)]
            if u < 0.15:
                await c.post("/predict", json={**r, "sched_hour": 25})
            elif u < 0.3:
                await c.post("/predict/batch", json={"flights": rows[i:i + int(rng.integers(1, 9))]})
            elif u < 0.35:
                await c.get(f"/nope/{i}")
            elif u < 0.4:
                await c.put("/predict")
            elif u < 0.45:
                await c.get("/metrics")
            else:
                await c.post("/predict", json=r)
        return (await c.get("/metrics")).text
    page = asyncio.run(_with_client(inner, app, traffic))
    logs = read_json_logs(capture.getvalue())
    from_logs = request_counts(logs.iloc[:-1])  # the last /metrics request is counted after its own page
    prom = prometheus_samples(page, "mlsys_requests_total")
    prom = prom.assign(requests=prom["value"].astype(int))[["route", "status", "requests"]]
    pd.testing.assert_frame_equal(from_logs, prom.sort_values(["route", "status"], ignore_index=True))
    counts = prometheus_samples(page, "mlsys_request_seconds_count").set_index("route")["value"]
    sums = prometheus_samples(page, "mlsys_request_seconds_sum").set_index("route")["value"] * 1000
    per_route = logs.iloc[:-1].groupby("route")["latency_ms"]
    assert (per_route.size()[counts.index] == counts).all()
    assert (per_route.sum()[sums.index] >= sums - 1e-6 * len(logs)).all()  # the log middleware's clock wraps the metrics one

    m = request_metrics(logs, window="50ms", percentiles=(0, 50, 99, 100))
    assert m["requests"].sum() == len(logs) and (m["errors_4xx"] + m["errors_5xx"] <= m["requests"]).all()
    win = logs["timestamp"].dt.floor("50ms")
    for w, g in logs.groupby(win):
        ms = g["latency_ms"].to_numpy()
        got = m.loc[w]
        assert got["requests"] == len(g) and got["errors_4xx"] == ((g["status"] >= 400) & (g["status"] < 500)).sum()
        np.testing.assert_allclose([got["latency_p0_ms"], got["latency_p50_ms"], got["latency_p99_ms"], got["latency_p100_ms"]],
                                   np.percentile(ms, [0, 50, 99, 100]), rtol=1e-12)


@pytest.mark.parametrize("kw, exc, msg", [
    ({"window": "0s"}, ConfigError, "positive duration"), ({"window": "-1min"}, ConfigError, "positive duration"),
    ({"window": "soon"}, ConfigError, "not a duration"), ({"percentiles": (50, 101)}, ConfigError, "percentiles"),
    ({"percentiles": ()}, ConfigError, "percentiles")])
def test_request_metrics_refuses_bad_settings(kw, exc, msg):
    logs = pd.DataFrame({"timestamp": pd.to_datetime(["2013-01-01"], utc=True), "logger": ["mlsys.requests"],
                         "route": ["/predict"], "status": [200], "latency_ms": [1.0]})
    with pytest.raises(exc, match=msg):
        request_metrics(logs, **kw)
    with pytest.raises(DataError, match="RequestLogMiddleware"):
        request_counts(logs.drop(columns="latency_ms"))
    with pytest.raises(DataError, match="DataFrame"):
        request_counts([1])


def test_prometheus_samples_refuses_what_is_not_a_metrics_page():
    with pytest.raises(DataError, match="text"):
        prometheus_samples(b"x 1")
    with pytest.raises(DataError, match="Prometheus text"):
        prometheus_samples('x{a="1" 1\n')


# ---------------------------------------------------------------- a real Prometheus server and promtool

needs_prometheus = pytest.mark.skipif(shutil.which("prometheus") is None and not __import__("os").path.exists("/usr/bin/prometheus"),
                                      reason="the prometheus binary is not installed (apt-get install prometheus)")
needs_promtool = pytest.mark.skipif(shutil.which("promtool") is None and not __import__("os").path.exists("/usr/bin/promtool"),
                                    reason="promtool is not installed (apt-get install prometheus)")


@needs_prometheus
def test_a_real_prometheus_server_scrapes_the_service_and_counts_what_it_served(service, capture, tmp_path):
    from mlsys.deploy.service import serve_in_thread
    model, backup, spec, rows = service
    inner, app = _app(service)
    with serve_in_thread(app) as svc:
        with start_prometheus({"mlsys": [svc.url.removeprefix("http://")]}, tmp_path / "prom", rule_files=[rules_path()]) as ps:
            up = ps.wait_until_up(timeout=90)
            assert list(up["health"]) == ["up"] and list(up["job"]) == ["mlsys"]
            with httpx.Client(base_url=svc.url, timeout=30) as c:
                ok = sum(c.post("/predict", json=r).status_code == 200 for r in rows[:40])
                bad = sum(c.post("/predict", json={**r, "sched_hour": -1}).status_code == 422 for r in rows[:3])
            assert (ok, bad) == (40, 3)
            ps.wait_for_value('mlsys_requests_total{route="/predict",status="200"}', 40.0, timeout=90)
            ps.wait_for_value('mlsys_requests_total{route="/predict",status="422"}', 3.0, timeout=90)
            page = httpx.get(f"{svc.url}/metrics", timeout=30).text
            assert ps.query('sum(mlsys_request_seconds_count{route="/predict"})')["value"].iloc[0] == 43.0
            rules = ps.api("rules")["groups"][0]["rules"]
            assert len(rules) == 6 and {r["health"] for r in rules} == {"ok"}
            with pytest.raises(DataError, match="refused"):
                ps.query("sum(")
        assert ps.process.returncode == 0  # stopped cleanly by SIGTERM
    mine = prometheus_samples(page, "mlsys_requests_total").set_index(["route", "status"])["value"]
    assert (mine[("/predict", "200")], mine[("/predict", "422")]) == (40.0, 3.0)
    logs = read_json_logs(capture.getvalue())
    assert (logs["route"] == "/predict").sum() == 43  # and the request logs saw the same traffic


@pytest.mark.parametrize("kw, msg", [
    ({"targets": {}}, "targets"), ({"targets": {"j": "127.0.0.1:1"}}, "host:port"),
    ({"targets": {"j": ["http://x:1"]}}, "host:port"), ({"targets": {"j": []}}, "host:port"),
    ({"targets": {"j": ["a:1"]}, "scrape_interval": "1 second"}, "scrape_interval"),
    ({"targets": {"j": ["a:1"]}, "scrape_interval": ""}, "scrape_interval")])
def test_prometheus_config_refuses_bad_settings(kw, msg):
    with pytest.raises(ConfigError, match=msg):
        prometheus_config(**kw)
    assert json.loads(prometheus_config({"j": ["a:1"]}))["scrape_configs"][0]["static_configs"] == [{"targets": ["a:1"]}]


@needs_promtool
def test_the_alerting_rules_pass_promtool_and_a_broken_rule_does_not(tmp_path):
    assert "SUCCESS: 6 rules found" in promtool_check_rules(rules_path())
    (tmp_path / "bad.yml").write_text("groups:\n- name: x\n  rules:\n  - alert: A\n    expr: rate(x[5m] > 1\n")
    with pytest.raises(ConfigError, match="bad.yml failed"):
        promtool_check_rules(tmp_path / "bad.yml")
    with pytest.raises(ConfigError, match="does not exist"):
        promtool_check_rules(tmp_path / "none.yml")


RULE_TEST = """
rule_files:
  - {rules}
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - series: 'mlsys_requests_total{{job="mlsys",route="/predict",status="200"}}'
        values: '0+60x30'
      - series: 'mlsys_requests_total{{job="mlsys",route="/predict",status="503"}}'
        values: '0+0x10 0+10x20'
      - series: 'up{{job="mlsys",instance="svc:8000"}}'
        values: '1x5 0x10'
    alert_rule_test:
      - eval_time: 9m
        alertname: MlsysHighErrorRate
        exp_alerts: []
      - eval_time: 13m
        alertname: MlsysHighErrorRate
        exp_alerts: []
      - eval_time: 20m
        alertname: MlsysHighErrorRate
        exp_alerts:
          - exp_labels: {{severity: critical, owner: ml-platform, job: mlsys}}
            exp_annotations:
              summary: "mlsys: 14.29% of requests fail with 5xx"
              description: "More than 5% of the requests of mlsys answered 5xx over 5 minutes, for 5 minutes."
              runbook_url: "https://mlsys.example.org/monitor.observe.html#runbooks"
      - eval_time: 6m
        alertname: MlsysServiceDown
        exp_alerts: []
      - eval_time: 8m
        alertname: MlsysServiceDown
        exp_alerts:
          - exp_labels: {{severity: critical, owner: ml-platform, job: mlsys, instance: "svc:8000"}}
            exp_annotations:
              summary: "mlsys service svc:8000 is down"
              description: "Prometheus has not been able to scrape svc:8000 for 1 minute."
              runbook_url: "https://mlsys.example.org/monitor.observe.html#runbooks"
"""


@needs_promtool
def test_promtool_unit_tests_of_two_rules_pass_and_a_wrong_expectation_fails(tmp_path):
    path = tmp_path / "rules_test.yml"
    path.write_text(RULE_TEST.format(rules=rules_path()))
    assert "SUCCESS" in promtool_test_rules(path)
    path.write_text(RULE_TEST.format(rules=rules_path()).replace("eval_time: 13m", "eval_time: 19m"))
    with pytest.raises(ConfigError, match="promtool test rules"):
        promtool_test_rules(path)
