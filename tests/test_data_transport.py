"""Real-time transport: pub/sub and queue semantics on both backends, at-least-once delivery, retention, bad input, dead transport."""
import subprocess
import sys
import threading
import time
import uuid

import pandas as pd
import pytest

from mlsys.core import ConfigError, DataError, MlsysError
from mlsys.data.service import free_port
from mlsys.data.transport import (
    InProcessTransport,
    Message,
    RedisTransport,
    TransportError,
    decode_event,
    encode_event,
    flight_events,
    replay,
    validate_flight_event,
)
from mlsys.datasets import load_flights


@pytest.fixture(scope="module")
def events():
    return flight_events(load_flights("2013-01-02", "2013-01-02").head(120))


@pytest.fixture(params=["inprocess", pytest.param("redis", marks=pytest.mark.redis)])
def make_transport(request):
    "Factory of transports of the parametrized backend; Redis keys get a unique prefix and are removed."
    made = []

    def make(maxlen=10_000):
        if request.param == "inprocess":
            t = InProcessTransport(maxlen=maxlen)
        else:
            client = request.getfixturevalue("redis_client")
            t = RedisTransport(prefix=f"test-{uuid.uuid4().hex[:10]}", maxlen=maxlen, client=client)
        made.append(t)
        return t

    yield make
    for t in made:
        if isinstance(t, RedisTransport):
            keys = list(t.r.scan_iter(match=f"{t.prefix}:*"))
            if keys:
                t.r.delete(*keys)


@pytest.fixture
def redis_bus(redis_client):
    bus = RedisTransport(prefix=f"test-{uuid.uuid4().hex[:10]}", client=redis_client)
    yield bus
    keys = list(redis_client.scan_iter(match=f"{bus.prefix}:*"))
    if keys:
        redis_client.delete(*keys)


def drain(consumer, batch=50, ack=True):
    got = []
    while msgs := consumer.poll(batch):
        got += msgs
        if ack:
            consumer.ack(msgs)
    return got


def test_flight_events_orders_and_schema():
    day = load_flights("2013-01-02", "2013-01-02")
    ev = flight_events(day)
    assert len(ev) == len(day)
    assert [e["sched_dep"] for e in ev] == sorted(e["sched_dep"] for e in ev)
    for e in ev:
        validate_flight_event(e)
    assert sum(e["cancelled"] for e in ev) == int(day["cancelled"].sum())
    assert all((e["dep_delay"] is None) == e["cancelled"] for e in ev)
    actual = flight_events(day, order="actual")
    t = [pd.Timestamp(e["sched_dep"]) + pd.Timedelta(minutes=e["dep_delay"] or 0) for e in actual]
    assert t == sorted(t) and sorted(e["flight_id"] for e in actual) == sorted(e["flight_id"] for e in ev)
    with pytest.raises(ConfigError, match="order must be"):
        flight_events(day, order="random")
    with pytest.raises(DataError, match=r"lacks column \['dep_delay'\]"):
        flight_events(day.drop(columns=["dep_delay"]))


def test_two_subscribers_each_get_every_event_in_order(make_transport, events):
    bus = make_transport()
    a, b = bus.subscribe("flights", "a"), bus.subscribe("flights", "b")
    ids = replay(bus, "flights", events)
    got_a, got_b = drain(a, 17), drain(b, 1000)
    assert [m.event for m in got_a] == events == [m.event for m in got_b]
    assert [m.id for m in got_a] == ids == [m.id for m in got_b]
    assert bus.length("flights") == len(events)
    assert a.pending().empty and b.pending().empty


def test_subscriber_from_latest_sees_only_new_events(make_transport, events):
    bus = make_transport()
    replay(bus, "flights", events[:10])
    late = bus.subscribe("flights", "late", start="latest")
    replay(bus, "flights", events[10:15])
    assert [m.event for m in drain(late)] == events[10:15]


def test_queue_delivers_each_message_to_exactly_one_consumer(make_transport, events):
    bus = make_transport()
    workers = [bus.queue_consumer("flights", "work", f"w{i}") for i in range(3)]
    ids = replay(bus, "flights", events)
    seen = {w.name: [] for w in workers}
    while True:
        rounds = [(w, w.poll(4)) for w in workers]
        if not any(m for _, m in rounds):
            break
        for w, msgs in rounds:
            seen[w.name] += [m.id for m in msgs]
            assert w.ack(msgs) == len(msgs)
    flat = [i for v in seen.values() for i in v]
    assert sorted(flat) == sorted(ids) and len(set(flat)) == len(flat)
    assert all(len(v) > 0 for v in seen.values())


def test_unacknowledged_message_is_redelivered(make_transport, events):
    bus = make_transport()
    crashy, other = bus.queue_consumer("flights", "q", "crashy"), bus.queue_consumer("flights", "q", "other")
    replay(bus, "flights", events[:6])
    taken = crashy.poll(4)  # received, then "crash": never acknowledged
    assert crashy.ack([]) == 0
    pend = crashy.pending()
    assert pend["id"].tolist() == [m.id for m in taken] and set(pend["consumer"]) == {"crashy"}
    fresh = other.poll(10)
    assert [m.event for m in fresh] == events[4:6]  # new reads skip the in-flight ones
    assert other.ack(fresh) == 2
    assert other.claim(min_idle_ms=60_000) == []  # not idle long enough
    time.sleep(0.03)
    again = other.claim(min_idle_ms=10)
    assert [m.event for m in again] == [m.event for m in taken]
    assert all(m.deliveries == 2 for m in again)
    assert set(other.pending()["consumer"]) == {"other"}
    assert other.ack(again) == 4
    assert other.ack(again) == 0  # acknowledging twice is harmless
    assert other.pending().empty


def test_retention_by_length_trims_only_what_every_group_acknowledged(make_transport, events):
    bus = make_transport(maxlen=50)
    sub = bus.subscribe("flights", "keeps-up")
    got = []
    for i in range(0, 80, 10):  # the subscriber reads and acknowledges as the events come
        replay(bus, "flights", events[i:i + 10])
        got += drain(sub)
    assert bus.length("flights") == 50  # acknowledged events were trimmed down to maxlen
    assert [m.event for m in got] == events[:80]
    late = bus.subscribe("flights", "late-joiner")  # a group created later starts at the oldest retained event
    assert [m.event for m in drain(late)] == events[30:80]


@pytest.mark.parametrize("bad, msg", [
    ({"dep_delay": float("nan")}, "event field dep_delay is nan"),
    ({"when": pd.Timestamp("2013-01-01")}, "has type Timestamp"),
    ({"nested": {"x": [1, float("inf")]}}, r"nested.x\[1\] is inf"),
    ({}, "event is empty"),
    ("JFK,UA1545", "event must be a dict"),
    ({1: "a"}, "keys must be non-empty strings"),
])
def test_malformed_events_are_rejected_and_nothing_is_stored(make_transport, bad, msg):
    bus = make_transport()
    bus.publish("flights", {"ok": 1})
    with pytest.raises(DataError, match=msg):
        bus.publish("flights", bad)
    assert bus.length("flights") == 1


def test_flight_event_schema(events):
    e = events[0]
    with pytest.raises(DataError, match="missing field 'origin'"):
        validate_flight_event({k: v for k, v in e.items() if k != "origin"})
    with pytest.raises(DataError, match="'dep_delay' must be int or null"):
        validate_flight_event({**e, "dep_delay": 3.5})
    with pytest.raises(DataError, match="'cancelled' must be bool"):
        validate_flight_event({**e, "cancelled": 0})
    with pytest.raises(DataError, match="sched_dep="):
        validate_flight_event({**e, "sched_dep": "2013-01-02 10:00"})
    for impossible in ("2013-13-45T10:00:00Z", "2013-02-30T10:00:00Z", "2013-01-01T25:00:00Z", "2013-01-01T10:00:00Z\n"):
        with pytest.raises(DataError, match="sched_dep="):  # well-shaped, but no such time: not a raw ValueError
            validate_flight_event({**e, "sched_dep": impossible})
    bus = InProcessTransport()
    with pytest.raises(DataError):
        replay(bus, "flights", [events[0], {**events[1], "dep_delay": "7"}])
    assert bus.length("flights") == 1  # the good event before the bad one went out, nothing after it


def test_events_before_a_malformed_one_are_published_both_backends(make_transport, events):
    bus = make_transport()
    with pytest.raises(DataError, match="'dep_delay' must be int or null"):
        replay(bus, "flights", [events[0], events[1], {**events[2], "dep_delay": "7"}, events[3]])
    assert bus.length("flights") == 2
    with pytest.raises(DataError, match="is nan"):
        bus.publish_many("flights", [{"a": 1}, {"a": float("nan")}])
    assert bus.length("flights") == 3


@pytest.mark.redis
def test_redis_pipelined_publish_keeps_order_across_round_trips(redis_client, events):
    bus = RedisTransport(prefix=f"test-{uuid.uuid4().hex[:10]}", client=redis_client, pipeline_size=7)
    try:
        sub = bus.subscribe("flights", "s")
        ids = bus.publish_many("flights", events[:50])
        assert len(ids) == 50 and ids == sorted(ids, key=lambda i: tuple(map(int, i.split("-"))))
        assert [m.event for m in drain(sub)] == events[:50]
        with pytest.raises(ConfigError, match="pipeline_size"):
            RedisTransport(pipeline_size=0)
    finally:
        bus.delete("flights")


def test_bad_names_and_arguments(make_transport):
    bus = make_transport()
    with pytest.raises(DataError, match="topic='a topic'"):
        bus.publish("a topic", {"x": 1})
    with pytest.raises(DataError, match="queue=''"):
        bus.queue_consumer("flights", "", "w")
    with pytest.raises(ConfigError, match="start must be"):
        bus.subscribe("flights", "s", start="beginning")
    sub = bus.subscribe("flights", "s")
    with pytest.raises(ConfigError, match="max_messages"):
        sub.poll(0)
    with pytest.raises(ConfigError, match="min_idle_ms"):
        sub.claim(min_idle_ms=-5)
    with pytest.raises(DataError, match="ack expects"):
        sub.ack([3])
    with pytest.raises(ConfigError, match="maxlen"):
        InProcessTransport(maxlen=0)


def test_decode_event_errors():
    assert decode_event(encode_event({"a": [1, None]})) == {"a": [1, None]}
    with pytest.raises(DataError, match="message 5-0 is not valid JSON"):
        decode_event("{", "5-0")
    with pytest.raises(DataError, match="holds list"):
        decode_event("[1]", "6-0")


def test_in_process_ack_of_a_foreign_id_is_a_clear_error(events):
    bus = InProcessTransport()
    sub = bus.subscribe("flights", "s")
    replay(bus, "flights", events[:2])
    got = sub.poll(2)
    with pytest.raises(DataError, match="'1712345678901-0' is not an id of the in-process transport"):
        sub.ack(["1712345678901-0"])  # a Redis-style id
    assert sub.ack(got) == 2  # nothing was lost by the failed call


def test_closed_in_process_transport_fails_clearly_and_reports_what_was_sent(events):
    bus = InProcessTransport()
    sub = bus.subscribe("flights", "s")

    def feed():
        for i, e in enumerate(events[:6]):
            if i == 3:
                bus.close()
            yield e

    with pytest.raises(TransportError) as info:
        bus.publish_many("flights", feed())
    assert info.value.sent == 3 and "3 events of this batch were published" in str(info.value)
    assert isinstance(info.value, MlsysError) and isinstance(info.value, ConnectionError)
    with pytest.raises(TransportError, match="closed"):
        sub.poll()


def test_in_process_poll_waits_for_a_publish_from_another_thread():
    bus = InProcessTransport()
    sub = bus.subscribe("t", "s")
    threading.Timer(0.05, lambda: bus.publish("t", {"n": 1})).start()
    t0 = time.perf_counter()
    msgs = sub.poll(10, timeout=5.0)
    assert [m.event for m in msgs] == [{"n": 1}] and time.perf_counter() - t0 < 4
    assert sub.poll(10, timeout=0.05) == []


def test_dead_redis_fails_clearly_and_nothing_counts_as_sent(events):
    pytest.importorskip("redis")
    url = f"redis://127.0.0.1:{free_port()}/0"
    bus = RedisTransport(url, timeout=0.5)
    with pytest.raises(TransportError, match=f"Redis at {url} is unreachable while publishing") as info:
        bus.publish_many("flights", events[:3])
    assert info.value.sent == 0
    with pytest.raises(TransportError, match=url):
        bus.subscribe("flights", "s")
    with pytest.raises(TransportError, match=url):
        bus.length("flights")


@pytest.mark.redis
def test_redis_malformed_foreign_payload_goes_to_dead_letters(redis_bus, events):
    bus = redis_bus
    sub = bus.subscribe("flights", "s")
    replay(bus, "flights", events[:2])
    bus.r.xadd(bus.key("flights"), {"event": b"\xff not json"})
    bus.r.xadd(bus.key("flights"), {"event": b"[1, 2]"})
    replay(bus, "flights", events[2:3])
    got = drain(sub)
    assert [m.event for m in got] == events[:3]
    dead = sub.dead_letters()
    assert len(dead) == 2 and dead["reason"].str.contains("not UTF-8 text|not valid JSON|holds list").all()
    assert sub.pending().empty  # dead-lettered messages were acknowledged, not left blocking


@pytest.mark.redis
def test_redis_poll_blocks_until_timeout(redis_bus):
    bus = redis_bus
    sub = bus.subscribe("t", "s")
    t0 = time.perf_counter()
    assert sub.poll(5, timeout=0.2) == []
    assert 0.15 < time.perf_counter() - t0 < 2


def test_import_stays_light():
    code = "import sys, mlsys.data.streaming, mlsys.data.transport, mlsys.data.service; bad = {'redis','fastapi','uvicorn','httpx'} & set(sys.modules); assert not bad, bad"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_message_is_immutable():
    m = Message("1", "t", {"a": 1})
    with pytest.raises(AttributeError):
        m.id = "2"
