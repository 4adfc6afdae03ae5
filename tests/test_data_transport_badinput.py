"""Every public entry point of mlsys.data.transport refuses bad input with a named mlsys error that names the input.

Classes swept: None, wrong types, empty input, NaN/inf, bool-as-int, negative or huge sizes, naive or impossible
times, non-string topic names, bytes that are not UTF-8, huge or odd ids; and Redis down for every call.
"""
import json
import math
import random
import socket
import threading
import uuid

import numpy as np
import pandas as pd
import pytest

from mlsys.core import ConfigError, DataError, MlsysError
from mlsys.data.service import free_port
from mlsys.data.transport import (
    InProcessTransport,
    Message,
    RedisTransport,
    TransportError,
    check_name,
    decode_event,
    encode_event,
    flight_events,
    replay,
    validate_flight_event,
)
from mlsys.datasets import load_flights


@pytest.fixture(scope="module")
def day():
    return load_flights("2013-01-02", "2013-01-02").head(40)


@pytest.fixture(scope="module")
def events(day):
    return flight_events(day)


@pytest.fixture(params=["inprocess", pytest.param("redis", marks=pytest.mark.redis)])
def bus(request):
    if request.param == "inprocess":
        yield InProcessTransport()
        return
    client = request.getfixturevalue("redis_client")
    t = RedisTransport(prefix=f"test-{uuid.uuid4().hex[:10]}", client=client)
    yield t
    keys = list(client.scan_iter(match=f"{t.prefix}:*"))
    if keys:
        client.delete(*keys)


# ---------------------------------------------------------------- the issue's own cases


def test_issue_replay_with_none_events_is_named(bus):
    with pytest.raises(DataError, match="events must be an iterable of event dicts.*got NoneType"):
        replay(bus, "x", None)


@pytest.mark.parametrize("payload", ['{"x": NaN}', '{"x": Infinity}', '{"x": [-Infinity]}', b'{"x": {"y": NaN}}'])
def test_issue_decode_refuses_nan_and_infinity_like_encode(payload):
    with pytest.raises(DataError, match="message 7-0 holds (NaN|Infinity|-Infinity), which JSON does not allow"):
        decode_event(payload, "7-0")


# ---------------------------------------------------------------- events: encode and decode


@pytest.mark.parametrize("payload, msg", [
    ('{"x": 1e999}', "holds the number 1e999, beyond the range of a float"),
    ('{"x": -1e400}', "holds the number -1e400"),
    (b'{"x": "\xff"}', "is not UTF-8 text: byte 7 is 0xff"),
    ('{"a": "\\ud800"}', "not valid Unicode text"),
    ('{"\\udc00": 1}', "not valid Unicode text"),
    ('{"a": ' + "9" * 30 + "}", r"holds the integer 9{30} \(30 digits\), beyond 64 bits"),
    ('{"a": [-9223372036854775809]}', r"\(19 digits\), beyond 64 bits"),
    ('{"a": ' + "9" * 5000 + "}", "not valid JSON"),
    ("{}", "an empty object"),
    ('{"": 1}', "an empty key"),
    ("[1]", "holds list, not a JSON object"),
    ("null", "holds NoneType"),
    ('{"a": ' + "[" * 100 + "]" * 100 + "}", "nested more than 64 levels"),
    ('{"a": ' + "[" * 100_000 + "]" * 100_000 + "}", "nested too deeply"),
    (None, "must be JSON text \\(str or bytes\\), got NoneType"),
    (17, "got int"),
    ("", "not valid JSON"),
])
def test_decode_refuses_what_encode_refuses(payload, msg):
    with pytest.raises(DataError, match=msg):
        decode_event(payload, "9-0")


@pytest.mark.parametrize("event, msg", [
    ({"a": "\ud800"}, "not valid Unicode text"),
    ({"\udc00": 1}, "not valid Unicode text"),
    ({"a": 2**64}, "integer of 65 bits"),
    ({"a": -(2**63) - 1}, "integer of 64 bits"),
    ({"a": 10**5000}, "integer of 16610 bits"),
    ({"a": np.int64(3)}, "has type int64"),
    ({"a": np.float64("nan")}, "is nan"),
    ({"a": float("-inf")}, "is -inf"),
    ({"a": b"x"}, "has type bytes"),
    ({"a": {1, 2}}, "has type set"),
    (None, "event must be a dict"),
    ({"": 1}, "non-empty strings"),
])
def test_encode_refuses_with_the_field_named(event, msg):
    with pytest.raises(DataError, match=msg):
        encode_event(event)


def test_encode_refuses_cycles_and_deep_nesting():
    cyclic = {}
    cyclic["a"] = cyclic
    with pytest.raises(DataError, match="nested more than 64 levels deep"):
        encode_event(cyclic)
    deep = {"a": []}
    cur = deep["a"]
    for _ in range(70):
        cur.append([])
        cur = cur[0]
    with pytest.raises(DataError, match="nested more than 64 levels"):
        encode_event(deep)


def _random_value(rng, depth=0):
    kind = rng.random()
    if depth > 3 or kind < 0.45:
        return rng.choice([
            None, True, False, 0, -1, 2**63 - 1, -(2**63), 2**63, 10**20, 1.5, -0.0, 1e308, float("nan"), float("inf"),
            "", "abc", "é", "\u00e9\u0301", "😀", "\ud800", "a\nb", "\x00", "x" * 50, 3,
        ])
    if kind < 0.75:
        return [_random_value(rng, depth + 1) for _ in range(rng.randrange(4))]
    return {rng.choice(["a", "b", "é", "😀", "", "\udc00", "k"]): _random_value(rng, depth + 1) for _ in range(rng.randrange(4))}


def test_decode_accepts_exactly_what_encode_accepts_randomized():
    "Differential test over generated events: decode(text) succeeds iff encode accepts the same value, and round-trips it."
    rng = random.Random(0)
    n_ok = n_refused = 0
    for _ in range(3_000):
        event = {rng.choice(["a", "b", "é", "k😀"]): _random_value(rng) for _ in range(rng.randrange(1, 4))}
        # the text a foreign producer could write for `event` (Python's json allows NaN, lone surrogates, big ints)
        try:
            text = json.dumps(event, allow_nan=True, ensure_ascii=rng.random() < 0.5)
        except ValueError:
            continue
        try:
            encoded = encode_event(event)
        except DataError:
            encoded = None
        try:
            raw = text.encode("utf-8", "surrogatepass") if rng.random() < 0.5 else text
            if isinstance(raw, bytes) and b"\xed" in raw:  # a raw surrogate is not UTF-8 at all: also refused
                raw = text
            decoded = decode_event(raw, "r")
        except DataError:
            decoded = None
        assert (encoded is None) == (decoded is None), (event, text)
        if encoded is not None:
            assert decode_event(encoded) == decoded == json.loads(encoded)
            n_ok += 1
        else:
            n_refused += 1
    assert n_ok > 300 and n_refused > 300


def test_check_name_refuses_trailing_newline_and_non_strings():
    for bad in ["t\n", "t\r\n", "", " t", "-t", "t t", "x" * 201, None, 5, b"t", ["t"], "tö"]:
        with pytest.raises(DataError, match="topic="):
            check_name(bad, "topic")
    assert check_name("x" * 200, "topic") == "x" * 200


# ---------------------------------------------------------------- transports: every call, both backends


@pytest.mark.parametrize("call, exc, msg", [
    (lambda b, s: b.publish(None, {"a": 1}), DataError, "topic=None"),
    (lambda b, s: b.publish(b"t", {"a": 1}), DataError, "topic=b't'"),
    (lambda b, s: b.publish("t\n", {"a": 1}), DataError, "topic='t\\\\n'"),
    (lambda b, s: b.publish("t", {"a": math.nan}), DataError, "event field a is nan"),
    (lambda b, s: b.publish_many("t", None), DataError, "events must be an iterable"),
    (lambda b, s: b.publish_many("t", {"a": 1}), DataError, "wrap a single event in a list"),
    (lambda b, s: b.publish_many("t", "abc"), DataError, "got str"),
    (lambda b, s: b.publish_many(None, []), DataError, "topic=None"),
    (lambda b, s: b.subscribe(None, "s"), DataError, "topic=None"),
    (lambda b, s: b.subscribe("t", 7), DataError, "subscriber=7"),
    (lambda b, s: b.subscribe("t", "s", start=None), ConfigError, "start must be"),
    (lambda b, s: b.subscribe("t", "s", start=["earliest"]), ConfigError, "start must be"),
    (lambda b, s: b.queue_consumer("t", None, "c"), DataError, "queue=None"),
    (lambda b, s: b.queue_consumer("t", "q", ""), DataError, "consumer=''"),
    (lambda b, s: b.drop_group("t", None), DataError, "group=None"),
    (lambda b, s: b.drop_group(3, "g"), DataError, "topic=3"),
    (lambda b, s: b.length(None), DataError, "topic=None"),
    (lambda b, s: s.poll(0), ConfigError, "max_messages must be an integer from 1"),
    (lambda b, s: s.poll(True), ConfigError, "max_messages"),
    (lambda b, s: s.poll(2.0), ConfigError, "max_messages"),
    (lambda b, s: s.poll(10**30), ConfigError, "max_messages"),
    (lambda b, s: s.poll(1, timeout=math.nan), ConfigError, "timeout must be a number of seconds"),
    (lambda b, s: s.poll(1, timeout=math.inf), ConfigError, "timeout"),
    (lambda b, s: s.poll(1, timeout=-1), ConfigError, "timeout"),
    (lambda b, s: s.poll(1, timeout=True), ConfigError, "timeout"),
    (lambda b, s: s.poll(1, timeout="1"), ConfigError, "timeout"),
    (lambda b, s: s.ack(None), DataError, "ack expects a list"),
    (lambda b, s: s.ack("1"), DataError, "wrap a single id or message in a list"),
    (lambda b, s: s.ack(b"1"), DataError, "ack expects a list"),
    (lambda b, s: s.ack([1]), DataError, "got int"),
    (lambda b, s: s.ack([Message("1", "other", {"a": 1})]), DataError, "is from topic 'other'"),
    (lambda b, s: s.ack(["-1"]), DataError, "message id '-1' is not"),
    (lambda b, s: s.ack(["9" * 500]), DataError, "is not"),
    (lambda b, s: s.ack(["١٢"]), DataError, "is not"),
    (lambda b, s: s.ack(["1 "]), DataError, "is not"),
    (lambda b, s: s.claim(-5), ConfigError, "min_idle_ms"),
    (lambda b, s: s.claim(True), ConfigError, "min_idle_ms"),
    (lambda b, s: s.claim(1.5), ConfigError, "min_idle_ms"),
    (lambda b, s: s.claim(10**30), ConfigError, "min_idle_ms"),
    (lambda b, s: s.claim(0, 0), ConfigError, "max_messages"),
    (lambda b, s: s.claim(0, 10**30), ConfigError, "max_messages"),
    (lambda b, s: replay(None, "t", []), ConfigError, "transport must be a Transport"),
    (lambda b, s: replay(b, None, []), DataError, "topic=None"),
    (lambda b, s: replay(b, "t", {"flight_id": "x"}), DataError, "wrap a single event in a list"),
    (lambda b, s: replay(b, "t", [None]), DataError, "flight event must be a dict"),
])
def test_transport_calls_refuse_bad_input_on_both_backends(bus, call, exc, msg):
    sub = bus.subscribe("t", "s")
    bus.publish("t", {"a": 1})
    with pytest.raises(exc, match=msg):
        call(bus, sub)
    assert bus.length("t") == 1  # nothing was published by the refused call
    assert len(sub.poll(10)) == 1


def test_a_failed_ack_acknowledges_nothing(bus):
    sub = bus.subscribe("t", "s")
    bus.publish_many("t", [{"a": i} for i in range(3)])
    got = sub.poll(3)
    with pytest.raises(DataError):
        sub.ack([got[0], got[1], "not an id"])
    assert len(sub.pending()) == 3  # all checked before any was acknowledged
    assert sub.ack(got) == 3


def test_wrong_backend_ids_are_named(bus):
    sub = bus.subscribe("t", "s")
    bus.publish("t", {"a": 1})
    sub.poll(1)
    foreign = "1712345678901-0" if isinstance(bus, InProcessTransport) else "abc"
    with pytest.raises(DataError, match=f"message id '{foreign}' is not"):
        sub.ack([foreign])


@pytest.mark.parametrize("make, msg", [
    (lambda: InProcessTransport(maxlen=None), "maxlen must be an integer"),
    (lambda: InProcessTransport(maxlen=True), "maxlen"),
    (lambda: InProcessTransport(maxlen=1.0), "maxlen"),
    (lambda: InProcessTransport(maxlen=-3), "maxlen"),
    (lambda: InProcessTransport(maxlen=2**40), "maxlen"),
    (lambda: RedisTransport(maxlen=0), "maxlen"),
    (lambda: RedisTransport(url=None), "url must be a Redis URL"),
    (lambda: RedisTransport(url=5), "url must be a Redis URL"),
    (lambda: RedisTransport(url="http://127.0.0.1:6379"), "url must be a Redis URL"),
    (lambda: RedisTransport(url="redis://127.0.0.1:notaport/0"), "is not a valid Redis URL"),
    (lambda: RedisTransport(timeout=0), "timeout must be a positive number"),
    (lambda: RedisTransport(timeout=True), "timeout"),
    (lambda: RedisTransport(timeout=math.nan), "timeout"),
    (lambda: RedisTransport(timeout=math.inf), "timeout"),
    (lambda: RedisTransport(client="redis://127.0.0.1"), "client must be a redis.Redis"),
    (lambda: RedisTransport(pipeline_size=True), "pipeline_size"),
    (lambda: RedisTransport(pipeline_size=10**9), "pipeline_size"),
])
def test_constructors_refuse_bad_settings(make, msg):
    pytest.importorskip("redis")
    with pytest.raises(ConfigError, match=msg):
        make()


def test_redis_prefix_is_a_name():
    pytest.importorskip("redis")
    with pytest.raises(DataError, match="prefix="):
        RedisTransport(prefix="a b")


@pytest.mark.redis
def test_redis_key_of_another_type_is_named(redis_client):
    bus = RedisTransport(prefix=f"test-{uuid.uuid4().hex[:10]}", client=redis_client)
    try:
        redis_client.set(bus.key("clash"), "some other program's value")
        for call in (lambda: bus.publish("clash", {"a": 1}), lambda: bus.publish_many("clash", [{"a": 1}]),
                     lambda: bus.length("clash"), lambda: bus.subscribe("clash", "s")):
            with pytest.raises(DataError, match="refused .*'clash'.*holds another kind of value, not a stream"):
                call()
    finally:
        redis_client.delete(bus.key("clash"))


@pytest.mark.redis
def test_redis_poll_longer_than_the_socket_timeout_is_not_a_dead_server(redis_client):
    "A poll whose wait exceeded the socket timeout raised 'unreachable', and a timeout under 1 ms blocked forever."
    bus = RedisTransport(prefix=f"test-{uuid.uuid4().hex[:10]}", timeout=0.3)
    try:
        sub = bus.subscribe("t", "s")
        assert sub.poll(5, timeout=0.8) == []  # waits in slices below the socket timeout
        assert sub.poll(5, timeout=0.0004) == []  # BLOCK 0 would mean "forever"
        threading.Timer(0.4, lambda: bus.publish("t", {"a": 1})).start()
        assert [m.event for m in sub.poll(5, timeout=5)] == [{"a": 1}]
    finally:
        bus.delete("t")
        bus.close()


@pytest.mark.redis
def test_redis_foreign_payloads_go_to_dead_letters_never_silently(redis_client):
    bus = RedisTransport(prefix=f"test-{uuid.uuid4().hex[:10]}", client=redis_client)
    try:
        sub = bus.subscribe("t", "s")
        key = bus.key("t")
        redis_client.xadd(key, {"event": b'{"x": "\xff"}'})
        redis_client.xadd(key, {"event": b'{"x": NaN}'})
        redis_client.xadd(key, {"event": b"{}"})
        redis_client.xadd(key, {"other": b"1"})
        redis_client.xadd(key, {"event": b'{"ok": 1}'})
        good = sub.poll(10)
        assert [m.event for m in good] == [{"ok": 1}] and sub.ack(good) == 1
        dead = sub.dead_letters()
        assert len(dead) == 4 and sub.pending().empty
        assert dead["payload"].iloc[0] == b'{"x": "\xff"}'  # the raw bytes are kept, not decoded with replacement
        reasons = dead["reason"].tolist()
        assert "not UTF-8" in reasons[0] and "NaN" in reasons[1] and "empty object" in reasons[2] and "no 'event' field" in reasons[3]
    finally:
        bus.delete("t")


# ---------------------------------------------------------------- Redis down: every call raises TransportError


class _Proxy:
    "A TCP relay to the Redis server that can be cut, so a transport sees its server vanish mid-session."

    def __init__(self, target):
        self.target = target
        self.srv = socket.create_server(("127.0.0.1", 0))
        self.port = self.srv.getsockname()[1]
        self.socks = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = self.srv.accept()
            except OSError:
                return
            u = socket.create_connection(self.target)
            self.socks += [c, u]
            for a, b in ((c, u), (u, c)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(a, b):
        try:
            while data := a.recv(65536):
                b.sendall(data)
        except OSError:
            pass
        for s in (a, b):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def cut(self):
        try:
            self.srv.shutdown(socket.SHUT_RDWR)  # wakes the accepting thread; a bare close() can leave it listening
        except OSError:
            pass
        self.srv.close()
        for s in self.socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()


@pytest.mark.redis
def test_redis_going_down_mid_session_is_a_transport_error_on_every_call(redis_client, events):
    kw = redis_client.connection_pool.connection_kwargs
    proxy = _Proxy((kw.get("host", "127.0.0.1"), kw.get("port", 6379)))
    url = f"redis://127.0.0.1:{proxy.port}/{kw.get('db', 0)}"
    bus = RedisTransport(url, prefix=f"test-{uuid.uuid4().hex[:10]}", timeout=1.0)
    try:
        sub, worker = bus.subscribe("t", "s"), bus.queue_consumer("t", "q", "w")
        bus.publish_many("t", [{"a": i} for i in range(3)])
        got = sub.poll(1)
        proxy.cut()
        calls = {
            "publish": lambda: bus.publish("t", {"a": 9}), "publish_many": lambda: bus.publish_many("t", [{"a": 9}]),
            "replay": lambda: replay(bus, "t", events[:2]), "length": lambda: bus.length("t"),
            "subscribe": lambda: bus.subscribe("t", "s2"), "queue_consumer": lambda: bus.queue_consumer("t", "q", "w2"),
            "drop_group": lambda: bus.drop_group("t", "s"), "delete": lambda: bus.delete("t"),
            "poll": lambda: sub.poll(5), "poll(timeout)": lambda: worker.poll(5, timeout=0.5), "ack": lambda: sub.ack(got),
            "pending": lambda: sub.pending(), "claim": lambda: worker.claim(0), "dead_letters": lambda: sub.dead_letters(),
        }
        for name, call in calls.items():
            with pytest.raises(TransportError, match=f"Redis at {url} is unreachable while") as info:
                call()
                pytest.fail(f"{name} did not fail")
            assert isinstance(info.value, MlsysError) and info.value.sent == 0, name
    finally:
        keys = list(redis_client.scan_iter(match=f"{bus.prefix}:*"))
        if keys:
            redis_client.delete(*keys)


def test_closed_in_process_transport_refuses_every_call():
    bus = InProcessTransport()
    sub = bus.subscribe("t", "s")
    bus.publish("t", {"a": 1})
    got = sub.poll(1)
    bus.close()
    for call in (lambda: bus.publish("t", {"a": 1}), lambda: bus.publish_many("t", [{"a": 1}]), lambda: bus.length("t"),
                 lambda: bus.subscribe("t", "s2"), lambda: bus.queue_consumer("t", "q", "c"), lambda: bus.drop_group("t", "s"),
                 lambda: sub.poll(), lambda: sub.ack(got), lambda: sub.pending(), lambda: sub.claim(0)):
        with pytest.raises(TransportError, match="in-process transport is closed"):
            call()


def test_dead_redis_url_is_a_transport_error_for_each_call():
    pytest.importorskip("redis")
    url = f"redis://127.0.0.1:{free_port()}/0"
    bus = RedisTransport(url, timeout=0.5)
    for call in (lambda: bus.publish("t", {"a": 1}), lambda: bus.length("t"), lambda: bus.drop_group("t", "g"),
                 lambda: bus.delete("t"), lambda: bus.queue_consumer("t", "q", "c")):
        with pytest.raises(TransportError, match=f"Redis at {url} is unreachable"):
            call()


# ---------------------------------------------------------------- flight events


@pytest.mark.parametrize("change, exc, msg", [
    (lambda d: None, DataError, "flights must be a pandas DataFrame, got NoneType"),
    (lambda d: d.to_dict("records"), DataError, "flights must be a pandas DataFrame, got list"),
    (lambda d: d.iloc[:0], DataError, "flights is empty"),
    (lambda d: d.drop(columns=["dest"]), DataError, r"lacks column \['dest'\]"),
    (lambda d: d.assign(sched_dep=d["sched_dep"].dt.tz_localize(None)), DataError, "has no time zone"),
    (lambda d: d.assign(sched_dep=d["sched_dep"].astype(str)), DataError, "must be tz-aware timestamps"),
    (lambda d: d.assign(sched_dep=d["sched_dep"].where(d.index != d.index[3])), DataError, "1 missing times"),
    (lambda d: d.assign(sched_dep=d["sched_dep"] - pd.Timedelta(days=365 * 400)), DataError, "outside the years"),
    (lambda d: d.assign(dep_delay=1.5), DataError, "whole minutes.*1.5"),
    (lambda d: d.assign(dep_delay=np.inf), DataError, "whole minutes.*inf"),
    (lambda d: d.assign(dep_delay=10**9), DataError, "within"),
    (lambda d: d.assign(dep_delay="5"), DataError, "must be numeric minutes"),
    (lambda d: d.assign(dep_delay=True), DataError, "must be numeric minutes"),
    (lambda d: d.assign(cancelled=np.nan), DataError, "cancelled'\\] must be bool"),
    (lambda d: d.assign(cancelled=d["cancelled"].astype(int)), DataError, "must be bool"),
    (lambda d: d.assign(dest=None), DataError, r"\['dest'\] has 40 missing or empty"),
    (lambda d: d.assign(origin=""), DataError, r"\['origin'\] has 40 missing or empty"),
])
def test_flight_events_refuses_bad_tables(day, change, exc, msg):
    with pytest.raises(exc, match=msg):
        flight_events(change(day))


def test_flight_events_converts_other_zones_to_utc(day):
    "A sched_dep column in another zone was formatted in that zone and labelled Z (five hours off for +05:00)."
    karachi = day.assign(sched_dep=day["sched_dep"].dt.tz_convert("Asia/Karachi"))
    assert flight_events(karachi) == flight_events(day)


@pytest.mark.parametrize("field, value, msg", [
    ("dep_delay", 10**30, "beyond"), ("dep_delay", -(10**30), "beyond"), ("dep_delay", True, "must be int or null"),
    ("dep_delay", 2.0, "must be int or null"), ("flight_id", "", "is an empty string"), ("origin", "", "empty string"),
    ("carrier", None, "must be str"), ("sched_dep", "٢٠١٣-01-01T10:00:00Z", "must look like"),
    ("sched_dep", "2013-01-01T10:00:60Z", "not a real time"), ("sched_dep", "2013-01-01T10:00:00", "must look like"),
    ("sched_dep", "2013-01-01T10:00:00+00:00", "must look like"), ("sched_dep", "0001-01-01T00:00:00Z", "outside the years"),
    ("sched_dep", "9999-01-01T00:00:00Z", "outside the years"), ("sched_dep", "2013-01-01T10:00:00Z\n", "must look like"),
    ("cancelled", 1, "must be bool"),
])
def test_validate_flight_event_refuses(events, field, value, msg):
    with pytest.raises(DataError, match=msg):
        validate_flight_event({**events[0], field: value})
