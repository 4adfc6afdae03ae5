"""Dataflow through a service: lookups, 4xx JSON errors, a real uvicorn server, and the client on a dead server."""
import socket
import warnings
from urllib.parse import quote

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

from mlsys.core import ConfigError, DataError, MlsysError, SchemaError
from mlsys.data.service import (
    FLIGHT_ID_PATTERN,
    UTC_TIME_PATTERN,
    FlightsClient,
    FlightsLookup,
    NotFoundError,
    RequestRejectedError,
    ServiceUnavailableError,
    api_models,
    create_app,
    flight_ids,
    free_port,
    parse_utc_time,
    start_server,
)
from mlsys.datasets import load_flights, load_weather


@pytest.fixture(scope="module")
def day():
    return load_flights("2013-01-01", "2013-01-01"), load_weather("2013-01-01", "2013-01-01")


@pytest.fixture(scope="module")
def test_client(day):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient
    return TestClient(create_app(*day))


def test_flight_ids_unique_over_the_year():
    ids = flight_ids(load_flights())
    assert ids.is_unique
    assert ids.str.fullmatch(FLIGHT_ID_PATTERN).all()


def test_lookup_values_match_the_table(day):
    flights, weather = day
    lookup = FlightsLookup(flights, weather)
    row = flights.iloc[100]
    got = lookup.flight(flight_ids(flights).iloc[100])
    assert got["dep_delay"] == (None if row["dep_delay"] is None else int(row["dep_delay"]))
    assert got["dest"] == row["dest"]
    w = lookup.weather_at("LGA", "2013-01-01T15:59:59Z")
    expected = weather[(weather.origin == "LGA") & (weather.time_hour == parse_utc_time("2013-01-01T15:00:00Z"))]
    assert w["temp"] == expected["temp"].iloc[0]


@pytest.mark.parametrize("bad, msg", [
    ("2013-01-01T10:00:00", "no UTC offset"),
    ("noon", "not an ISO-8601/RFC 3339 time"),
    ("00", "not an ISO-8601/RFC 3339 time"),  # pandas read this as a time once (the issue's /weather?time=00)
    ("2013-01-01T10:00:00Z\n", "not an ISO-8601/RFC 3339 time"),  # `$` in Python's re matches before a final newline
    ("٢٠١٣-01-01T10:00:00Z", "not an ISO-8601/RFC 3339 time"),  # \d would accept Arabic-Indic digits
    ("2013-02-29T10:00:00Z", "2013-02 has 28 days"),
    ("1899-12-31T23:00:00Z", "years 1900-2099"),
    ("", "non-empty"),
    (None, "non-empty"),
    (20130101, "non-empty"),
])
def test_parse_utc_time_rejects(bad, msg):
    with pytest.raises(DataError, match=msg):
        parse_utc_time(bad)


def test_parse_utc_time_accepts_leap_days_offsets_and_nanoseconds():
    assert parse_utc_time("2012-02-29T10:00:00Z") == pd.Timestamp("2012-02-29T10:00:00", tz="UTC")
    assert parse_utc_time("2013-01-01T05:30:00-05:00") == pd.Timestamp("2013-01-01T10:30:00", tz="UTC")
    assert parse_utc_time("2013-01-01T10:00:00.123456789+00:00").nanosecond == 789


def test_lookup_rejects_bad_input(day):
    lookup = FlightsLookup(*day)
    with pytest.raises(DataError, match="flight_id="):
        lookup.flight("UA1545")
    with pytest.raises(DataError, match="flight_id="):
        lookup.flight("20130101-UA1545-EWR\n")
    with pytest.raises(NotFoundError, match="no flight") as info:
        lookup.flight("20130101-UA9999-EWR")
    assert isinstance(info.value, KeyError) and isinstance(info.value, MlsysError)
    with pytest.raises(DataError, match="origin='BOS'"):
        lookup.weather_at("BOS", "2013-01-01T10:00:00Z")
    with pytest.raises(DataError, match="origin=None"):
        lookup.weather_at(None, "2013-01-01T10:00:00Z")
    with pytest.raises(NotFoundError, match="no weather"):
        lookup.weather_at("JFK", "2014-01-01T10:00:00Z")


def _nan_at(df, col, i=3):
    df = df.copy()
    df[col] = df[col].astype(object)
    df.loc[df.index[i], col] = None
    return df


@pytest.mark.parametrize("make, exc, msg", [
    (lambda f, w: (None, w), DataError, "flights must be a pandas DataFrame, got NoneType"),
    (lambda f, w: (f, None), DataError, "weather must be a pandas DataFrame, got NoneType"),
    (lambda f, w: (f.to_dict(), w), DataError, "flights must be a pandas DataFrame, got dict"),
    (lambda f, w: (f, w.drop(columns="time_hour")), SchemaError, r"weather lacks column \['time_hour'\]"),
    (lambda f, w: (f.drop(columns="carrier"), w), SchemaError, r"flights lacks column \['carrier'\]"),
    (lambda f, w: (f, w.assign(time_hour=w["time_hour"].dt.tz_localize(None))), DataError, r"weather\['time_hour'\] has no time zone"),
    (lambda f, w: (f, w.assign(time_hour=w["time_hour"].astype(str))), DataError, r"weather\['time_hour'\] must be tz-aware"),
    (lambda f, w: (f.assign(sched_dep_local=f["sched_dep_local"].dt.tz_localize(None)), w), DataError,
     r"flights\['sched_dep_local'\] has no time zone"),
    (lambda f, w: (f.assign(sched_dep=f["sched_dep"].dt.tz_localize(None)), w), DataError, r"flights\['sched_dep'\] has no time zone"),
    (lambda f, w: (f, w.assign(temp=np.where(np.arange(len(w)) == 2, np.inf, w["temp"]))), DataError,
     r"weather\['temp'\] has 1 infinite values"),
    (lambda f, w: (f, w.assign(temp=w["temp"].astype(str))), DataError, r"weather\['temp'\] must be numbers"),
    (lambda f, w: (f.assign(flight=f["flight"].astype(float)), w), DataError, r"flights\['flight'\] must be integers, got dtype float64"),
    (lambda f, w: (_nan_at(f, "carrier").astype({"carrier": "string"}), w), DataError, r"flights\['carrier'\] has 1 missing values"),
    (lambda f, w: (f.assign(carrier=f["carrier"].astype(str).str.replace("UA", "ÜA")), w), DataError,
     "gets the id '20130101-ÜA1545-EWR', which does not match FLIGHT_ID_PATTERN"),
    (lambda f, w: (f.assign(dest=1), w), DataError, r"flights\['dest'\] must be text, got integer values"),
    (lambda f, w: (f.assign(cancelled=f["cancelled"].astype(int)), w), DataError, r"flights\['cancelled'\] must be booleans"),
])
def test_lookup_refuses_tables_it_could_not_serve(day, make, exc, msg):
    with pytest.raises(exc, match=msg):
        FlightsLookup(*make(*day))


def test_lookup_allows_missing_values_where_the_answer_is_nullable(day):
    flights, weather = day
    w = weather.assign(temp=weather["temp"].where(weather.index != weather.index[0]))  # NaN temperature -> null
    lookup = FlightsLookup(flights, w)
    row = weather.iloc[0]
    assert lookup.weather_at(row["origin"], row["time_hour"].isoformat())["temp"] is None


@pytest.mark.parametrize("make, msg", [
    (lambda f: None, "flights must be a pandas DataFrame, got NoneType"),
    (lambda f: f.drop(columns="origin"), r"flights lacks column \['origin'\]"),
    (lambda f: _nan_at(f, "flight"), r"1 rows with a missing sched_dep_local/carrier/flight/origin value \(first: index 3\)"),
    (lambda f: f.assign(sched_dep_local=f["sched_dep_local"].dt.tz_localize(None)), "has no time zone"),
])
def test_flight_ids_refuses_bad_tables(day, make, msg):
    with pytest.raises(DataError, match=msg):
        flight_ids(make(day[0]))


def test_flight_ids_of_an_empty_table_is_empty(day):
    assert flight_ids(day[0].iloc[:0]).tolist() == []


ERROR_KEYS = ["detail", "error", "errors", "status"]


@pytest.mark.parametrize("method, path, status, loc", [
    ("GET", "/flights/garbage", 422, ["path", "flight_id"]),
    ("GET", "/flights/20130101-UA9999-EWR", 404, None),
    ("GET", "/weather?origin=BOS&time=2013-01-01T10:00:00Z", 422, ["query", "origin"]),
    ("GET", "/weather?origin=JFK", 422, ["query", "time"]),
    ("GET", "/weather?origin=JFK&time=2013-01-01T10:00:00", 422, ["query", "time"]),
    ("GET", "/weather?origin=JFK&time=00", 422, ["query", "time"]),
    ("GET", "/weather?origin=JFK&time=2013-02-30T10:00:00Z", 422, ["query", "time"]),
    ("GET", "/weather?origin=JFK&time=2015-01-01T10:00:00Z", 404, None),
    ("GET", "/no/such/route", 404, None),
    ("GET", "/flights/", 404, None),
    ("POST", "/health", 405, None),
    ("DELETE", "/flights/20130101-UA1545-EWR", 405, None),
])
def test_every_error_has_the_one_declared_shape_and_server_keeps_serving(test_client, method, path, status, loc):
    r = test_client.request(method, path)
    assert r.status_code == status
    assert r.headers["content-type"] == "application/json"
    body = r.json()
    assert sorted(body) == ERROR_KEYS and body["status"] == status
    api_models().ErrorResponse.model_validate(body)
    assert (body["errors"][0]["loc"] if loc else body["errors"]) == (loc or [])
    if status == 405:
        assert r.headers["allow"] == "GET"
    assert test_client.get("/flights/20130101-UA1545-EWR").status_code == 200


def test_spec_declares_every_answer_and_no_default_validation_error(test_client):
    spec = test_client.get("/openapi.json").json()
    assert sorted(spec["components"]["schemas"]) == ["ErrorResponse", "FieldError", "Flight", "Health", "Weather"]
    ops = spec["paths"]
    assert sorted(ops["/flights/{flight_id}"]["get"]["responses"]) == ["200", "404", "422"]  # 404 was undeclared
    assert sorted(ops["/weather"]["get"]["responses"]) == ["200", "404", "422"]
    for op in ops.values():
        for code, answer in op["get"]["responses"].items():
            if code >= "400":
                assert answer["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/ErrorResponse"}
    params = {p["name"]: p["schema"] for op in ops.values() for p in op["get"].get("parameters", [])}
    assert params["flight_id"]["pattern"] == FLIGHT_ID_PATTERN
    assert params["time"] == {**params["time"], "pattern": UTC_TIME_PATTERN, "format": "date-time"}
    assert params["origin"]["enum"] == ["EWR", "JFK", "LGA"]


def _mutants(valid: list[str], rng: np.random.Generator, n: int) -> list[str]:
    "Valid strings and near misses: one character replaced, dropped or added (ASCII, Unicode digits, newline, space)."
    alphabet = list("0123456789-:.TZtz+ _/AUEWRJFKLG\n") + ["٣", "１", "é", "\x00"]
    out = []
    for _ in range(n):
        s = list(valid[rng.integers(len(valid))])
        for _ in range(rng.integers(0, 3)):
            op, i = rng.integers(3), rng.integers(len(s) + 1)
            if op == 0 and i < len(s):
                s[i] = alphabet[rng.integers(len(alphabet))]
            elif op == 1 and i < len(s):
                del s[i]
            else:
                s.insert(i, alphabet[rng.integers(len(alphabet))])
        out.append("".join(s))
    return out


def _valid_times(rng: np.random.Generator, n: int) -> list[str]:
    out = []
    for _ in range(n):
        y, mo = rng.integers(1890, 2110), rng.integers(1, 13)
        d = rng.integers(1, 32)  # may exceed the month: the calendar check decides
        frac = "" if rng.random() < 0.5 else "." + "".join(map(str, rng.integers(0, 10, rng.integers(1, 11))))
        off = "Z" if rng.random() < 0.4 else f"{'+-'[rng.integers(2)]}{rng.integers(0, 25):02d}:{rng.integers(0, 61):02d}"
        out.append(f"{y:04d}-{mo:02d}-{d:02d}T{rng.integers(0, 25):02d}:{rng.integers(0, 61):02d}:{rng.integers(0, 61):02d}{frac}{off}")
    return out


def test_time_parameter_accepts_exactly_what_the_spec_says(test_client):
    "Differential: the spec's schema (checked by jsonschema_rs, the validator schemathesis uses) vs the parser and the server."
    jsonschema_rs = pytest.importorskip("jsonschema_rs")
    spec = test_client.get("/openapi.json").json()
    schema = next(p["schema"] for p in spec["paths"]["/weather"]["get"]["parameters"] if p["name"] == "time")
    validator = jsonschema_rs.Draft202012Validator(schema, validate_formats=True)
    rng = np.random.default_rng(0)
    cases = _mutants(_valid_times(rng, 300), rng, 3000)
    disagree = []
    for s in cases:
        try:
            parse_utc_time(s)
            ok = True
        except DataError:
            ok = False
        if ok != validator.is_valid(s):
            disagree.append(s)
    assert disagree == [], disagree[:10]
    assert 0.15 < np.mean([validator.is_valid(s) for s in cases]) < 0.85  # both kinds were tried
    for s in cases[:400]:  # through HTTP: 422 exactly for what the schema refuses
        r = test_client.get("/weather", params={"origin": "JFK", "time": s})
        assert (r.status_code != 422) == validator.is_valid(s), (s, r.status_code, r.text)


def test_flight_id_parameter_accepts_exactly_what_the_spec_says(test_client, day):
    jsonschema_rs = pytest.importorskip("jsonschema_rs")
    validator = jsonschema_rs.Draft202012Validator({"type": "string", "pattern": FLIGHT_ID_PATTERN})
    rng = np.random.default_rng(1)
    cases = _mutants(flight_ids(day[0]).sample(50, random_state=0).tolist(), rng, 600)
    lookup = FlightsLookup(*day)
    for s in cases:
        try:
            lookup.flight(s)
            ok = True
        except NotFoundError:
            ok = True
        except DataError:
            ok = False
        assert ok == validator.is_valid(s), s
        if "/" not in s:  # a decoded slash makes another route (404)
            r = test_client.get("/flights/" + quote(s, safe="").replace(".", "%2E"))
            assert (r.status_code != 422) == validator.is_valid(s), (s, r.status_code, r.text)


def test_client_rejects_bad_configuration():
    with pytest.raises(ConfigError, match="base_url"):
        FlightsClient("127.0.0.1:8000")
    with pytest.raises(ConfigError, match="base_url"):
        FlightsClient(None)
    with pytest.raises(ConfigError, match="timeout"):
        FlightsClient("http://127.0.0.1:8000", timeout=-1)
    with pytest.raises(ConfigError, match="timeout"):
        FlightsClient("http://127.0.0.1:8000", timeout="2")
    with pytest.raises(ConfigError, match="retries"):
        FlightsClient("http://127.0.0.1:8000", retries=1.5)
    with pytest.raises(ConfigError, match="backoff"):
        FlightsClient("http://127.0.0.1:8000", backoff=3, max_backoff=1)
    with pytest.raises(ConfigError, match="backoff"):
        FlightsClient("http://127.0.0.1:8000", backoff=None)
    with pytest.raises(ConfigError, match="backoff"):
        FlightsClient("http://127.0.0.1:8000", backoff=float("nan"))
    with pytest.raises(ConfigError, match="sleep must be callable"):
        FlightsClient("http://127.0.0.1:8000", sleep=1)


def test_client_rejects_bad_arguments_before_sending():
    client = FlightsClient(f"http://127.0.0.1:{free_port()}", retries=0)
    with pytest.raises(DataError, match="path must be a string starting with '/'"):
        client.get("health")
    with pytest.raises(DataError, match="params must be a dict"):
        client.get("/weather", params=[("origin", "JFK")])
    with pytest.raises(DataError, match="flight_id must be a non-empty string, got None"):
        client.flight(None)
    with pytest.raises(DataError, match="time must be a string, got Timestamp"):
        client.weather("JFK", pd.Timestamp("2013-01-01", tz="UTC"))
    client.close()
    with pytest.raises(ConfigError, match="is closed"):
        client.get("/health")


def test_server_helpers_reject_bad_arguments():
    with pytest.raises(ConfigError, match="host="):
        free_port("no-such-host.invalid")
    with pytest.raises(ConfigError, match="host must be"):
        free_port(None)
    with pytest.raises(DataError, match="start='yesterday' is not a date"):
        start_server(start="yesterday")
    with pytest.raises(DataError, match="end must be a date string"):
        start_server(end=None)
    with pytest.raises(ConfigError, match="startup_timeout"):
        start_server(startup_timeout="1")


def test_client_on_dead_port_retries_with_exponential_backoff():
    waits = []
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    with FlightsClient(url, retries=4, backoff=0.5, max_backoff=3.0, sleep=waits.append) as client, \
            pytest.raises(ServiceUnavailableError) as info:
        client.flight("20130101-UA1545-EWR")
    assert waits == [0.5, 1.0, 2.0, 3.0]  # doubled, then capped
    assert info.value.url == f"{url}/flights/20130101-UA1545-EWR" and info.value.attempts == 5
    assert url in str(info.value) and "5 attempts" in str(info.value)
    assert isinstance(info.value, MlsysError) and isinstance(info.value, ConnectionError)


def test_client_times_out_on_a_mute_service():
    with socket.socket() as mute:
        mute.bind(("127.0.0.1", 0))
        mute.listen(8)
        client = FlightsClient(f"http://127.0.0.1:{mute.getsockname()[1]}", timeout=0.1, retries=1, sleep=lambda s: None)
        with pytest.raises(ServiceUnavailableError, match="ReadTimeout"):
            client.get("/health")
        assert [a["outcome"].split(":")[0] for a in client.attempts_] == ["ReadTimeout", "ReadTimeout"]
        client.close()


@pytest.mark.server
def test_real_server_serves_then_dies_and_client_fails_clearly():
    flights = load_flights("2013-01-01", "2013-01-01")
    server = start_server("2013-01-01", "2013-01-01")
    try:
        assert server.url.startswith("http://127.0.0.1:")
        waits = []
        client = FlightsClient(server.url, timeout=2.0, retries=2, backoff=0.01, sleep=waits.append)
        assert client.get("/health") == {"status": "ok", "flights": len(flights)}
        fid = flight_ids(flights).iloc[5]
        got = client.flight(fid)
        assert got["flight_id"] == fid and got["flight"] == int(flights["flight"].iloc[5])
        with pytest.raises(RequestRejectedError) as info:
            client.weather("BOS", "2013-01-01T10:00:00Z")
        assert info.value.status == 422 and len(client.attempts_) == 1  # 4xx is not retried
        assert info.value.errors[0]["loc"] == ["query", "origin"] and "origin" in info.value.detail
        # an id is one path segment: "../health" must not reach /health
        with pytest.raises(RequestRejectedError) as info:
            client.flight("../health")
        assert info.value.status in (404, 422)
        with pytest.raises(RequestRejectedError, match="HTTP 422"):
            client.flight("..")
        assert client.weather("EWR", got["sched_dep"])["origin"] == "EWR"  # still serving
        assert waits == []
        server.kill()
        assert not server.alive()
        with pytest.raises(ServiceUnavailableError, match=f"service at {server.url}/flights/{fid}"):
            client.flight(fid)
        assert waits == [0.01, 0.02]
        assert [a["outcome"].split(":")[0] for a in client.attempts_] == ["ConnectError"] * 3
        client.close()
    finally:
        server.stop()
