"""Dataflow through a service: lookups, 4xx JSON errors, a real uvicorn server, and the client on a dead server."""
import socket
import warnings

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

from mlsys.core import ConfigError, DataError, MlsysError
from mlsys.data.service import (
    FlightsClient,
    FlightsLookup,
    RequestRejectedError,
    ServiceUnavailableError,
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
    assert ids.str.match(r"^\d{8}-[A-Z0-9]{2}\d{1,4}-[A-Z]{3}$").all()


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


@pytest.mark.parametrize("bad, exc, msg", [
    ("2013-01-01T10:00:00", DataError, "no UTC offset"),
    ("noon", DataError, "not an ISO-8601 time"),
    ("", DataError, "non-empty"),
])
def test_parse_utc_time_rejects(bad, exc, msg):
    with pytest.raises(exc, match=msg):
        parse_utc_time(bad)


def test_lookup_rejects_bad_input(day):
    lookup = FlightsLookup(*day)
    with pytest.raises(DataError, match="flight_id="):
        lookup.flight("UA1545")
    with pytest.raises(KeyError, match="no flight"):
        lookup.flight("20130101-UA9999-EWR")
    with pytest.raises(DataError, match="origin='BOS'"):
        lookup.weather_at("BOS", "2013-01-01T10:00:00Z")
    with pytest.raises(KeyError, match="no weather"):
        lookup.weather_at("JFK", "2014-01-01T10:00:00Z")
    with pytest.raises(DataError, match="missing columns"):
        FlightsLookup(day[0].drop(columns=["carrier"]), day[1])


@pytest.mark.parametrize("path, status, field", [
    ("/flights/garbage", 422, "flight_id"),
    ("/flights/20130101-UA9999-EWR", 404, None),
    ("/weather?origin=BOS&time=2013-01-01T10:00:00Z", 422, "origin"),
    ("/weather?origin=JFK", 422, "time"),
    ("/weather?origin=JFK&time=2013-01-01T10:00:00", 422, None),
    ("/weather?origin=JFK&time=2015-01-01T10:00:00Z", 404, None),
])
def test_bad_requests_get_4xx_json_and_server_keeps_serving(test_client, path, status, field):
    r = test_client.get(path)
    assert r.status_code == status
    assert r.headers["content-type"].startswith("application/json")
    detail = r.json()["detail"]
    if field:
        assert detail[0]["loc"][-1] == field
    assert test_client.get("/flights/20130101-UA1545-EWR").status_code == 200


def test_client_rejects_bad_configuration():
    with pytest.raises(ConfigError, match="base_url"):
        FlightsClient("127.0.0.1:8000")
    with pytest.raises(ConfigError, match="timeout"):
        FlightsClient("http://127.0.0.1:8000", timeout=-1)
    with pytest.raises(ConfigError, match="retries"):
        FlightsClient("http://127.0.0.1:8000", retries=1.5)
    with pytest.raises(ConfigError, match="backoff"):
        FlightsClient("http://127.0.0.1:8000", backoff=3, max_backoff=1)


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
