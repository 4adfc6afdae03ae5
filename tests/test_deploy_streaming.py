"""mlsys.deploy.streaming: streamed features and scores equal the batch pipeline's (real flights, and generated flights
against the feature store's own batch function), crashes at every point of the batch cycle lose nothing on both
transports, bad input goes to the dead-letter topic, and named errors for bad arguments."""
import json
import os
import socket
import uuid

import numpy as np
import pandas as pd
import pytest

from mlsys.core import ConfigError, DataError, IntegrityError
from mlsys.data.transport import InProcessTransport, TransportError
from mlsys.deploy.batch import score_frame
from mlsys.deploy.streaming import (FileCheckpoint, MemoryCheckpoint, RecentDepartures, RedisCheckpoint, StoreFeatures,
                                    StreamingPredictor, TableFeatures, artifact_version, audit_predictions,
                                    check_stream_event, flight_stream, latency_table, read_topic,
                                    recent_departure_windows, replay_stream, run_stream)

STREAM = ["origin_dep_delay_2h", "origin_deps_2h"]


def redis_url() -> str:
    return os.environ.get("MLSYS_REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture(scope="module")
def flights_model():
    "Three days of real flights, the pipeline's features, a small boosted-tree model, and the third day as a stream."
    from mlsys.data.service import flight_ids
    from mlsys.datasets import load_flights, load_planes, load_weather
    from mlsys.pipeline import FEATURES, LABEL, build_features, make_model, time_split

    flights = load_flights("2013-03-04", "2013-03-06")
    feats = build_features(flights, load_weather("2013-03-04", "2013-03-06"), load_planes())
    feats["flight_id"] = flight_ids(flights).to_numpy()
    train, _ = time_split(feats, "2013-03-06")
    model = make_model(params={"max_iter": 15}).fit(train[FEATURES], train[LABEL].astype(int))
    day = feats[feats["local_date"] == "2013-03-06"]
    events = flight_stream(flights, start=day["sched_dep"].min(), end=day["sched_dep"].max() + pd.Timedelta("1s"))
    return {"flights": flights, "feats": feats, "model": model, "events": events, "features": FEATURES}


class Bus:
    "A transport of either kind, with its topics cleaned up afterwards."

    def __init__(self, kind: str, client=None):
        self.kind = kind
        if kind == "inproc":
            self.t = InProcessTransport()
        else:
            from mlsys.data.transport import RedisTransport
            self.t = RedisTransport(redis_url(), prefix=f"test-stream-{uuid.uuid4().hex[:10]}", client=client)

    def checkpoint(self):
        return MemoryCheckpoint() if self.kind == "inproc" else RedisCheckpoint(self.t.r, f"{self.t.prefix}:checkpoint")

    def close(self):
        if self.kind == "redis":
            keys = list(self.t.r.scan_iter(f"{self.t.prefix}:*"))
            if keys:
                self.t.r.delete(*keys)


@pytest.fixture(params=["inproc", pytest.param("redis", marks=pytest.mark.redis)])
def bus(request):
    client = request.getfixturevalue("redis_client") if request.param == "redis" else None
    b = Bus(request.param, client)
    yield b
    b.close()


def check_against_batch(preds: pd.DataFrame, feats: pd.DataFrame, model, features) -> None:
    "Every prediction's streamed features and score equal the batch table's, bit for bit."
    batch = feats.set_index("flight_id").loc[preds["key"]]
    for c in STREAM:
        np.testing.assert_array_equal(preds[c].to_numpy(float), batch[c].to_numpy(float), err_msg=c)
    scores = score_frame(model, batch.reset_index(), ["flight_id"], features, "main", "v")["score"].to_numpy()
    np.testing.assert_array_equal(preds["score"].to_numpy(), scores)


def test_streamed_features_and_scores_equal_the_batch_pipeline(bus, flights_model):
    fm = flights_model
    events = fm["events"][:600]
    replay_stream(bus.t, "flights", events)
    p = StreamingPredictor(bus.t, fm["model"], fm["feats"], checkpoint=bus.checkpoint(), consumer="c1", batch_size=37)
    stats = p.run(max_messages=len(events), idle_timeout=10)
    preds, rejected = read_topic(bus.t, "predictions"), read_topic(bus.t, "flights-rejected")
    audit = audit_predictions(events, preds, rejected)
    assert (audit["missing"], audit["duplicate_messages"], audit["unexpected_keys"], len(rejected)) == (0, 0, 0, 0)
    assert audit["predicted"] == sum(e["kind"] == "scheduled" for e in events) == stats["predictions"]
    check_against_batch(preds, fm["feats"], fm["model"], fm["features"])
    assert set(preds["model_version"]) == {p.version} and (preds["prediction_id"] == preds["key"] + "@" + p.version).all()
    lat = latency_table(preds)
    assert list(lat.index) == ["queued", "processing", "end to end"] and (lat["n"] == len(preds)).all()
    assert (lat["p50"] >= 0).all() and (lat["max"] >= lat["p99"]).all()


def generated_flights(rng: np.random.Generator, n: int) -> pd.DataFrame:
    "Flights on a minute grid with ties, early and late departures, cancellations and a non-ASCII origin."
    t0 = pd.Timestamp("2013-05-02 10:00", tz="UTC")
    sched = t0 + pd.to_timedelta(np.sort(rng.choice(np.arange(0, 480, rng.choice([1, 5, 15])), n)), unit="min")
    delay = rng.choice([-25, -10, -1, 0, 0, 1, 5, 14, 15, 16, 60, 119, 120, 121, 240], n) + rng.integers(0, 3, n)
    gone = rng.random(n) < 0.07
    origins = np.array(["EWR", "JFK", "ÖRB"])[rng.integers(0, rng.integers(1, 4), n)]
    f = pd.DataFrame({"sched_dep": sched, "carrier": "AA", "flight": np.arange(n) + 1, "origin": origins, "dest": "ORD",
                      "dep_delay": pd.array(np.where(gone, 0, delay), dtype="Int64"), "cancelled": gone, "distance": 700.0})
    f.loc[gone, "dep_delay"] = pd.NA
    f["sched_dep_local"] = f["sched_dep"].dt.tz_convert("America/New_York")
    return f


def test_streamed_features_equal_the_feature_store_batch_function_on_generated_flights():
    "Differential: the predictor's emitted features vs features.store._recent_departures (what build_features runs)."
    from sklearn.dummy import DummyClassifier

    from mlsys.data.service import flight_ids
    from mlsys.features.store import _recent_departures

    rng = np.random.default_rng(7)
    cases = 0
    for case in range(30):
        f = generated_flights(rng, int(rng.integers(5, 120)))
        lead, window = rng.choice(["0min", "30min", "2h"]), rng.choice(["2h", "45min", "1min"])
        base = f[["sched_dep", "origin", "dest", "carrier"]].assign(tailnum="N1", is_late=False)
        base["as_of"] = f["sched_dep"] - pd.Timedelta(lead)
        mean, count = _recent_departures(f, f, base, pd.Timedelta(window))
        table = pd.DataFrame({"flight_id": flight_ids(f).to_numpy(), "distance": f["distance"], "sched_dep": f["sched_dep"],
                              "as_of": base["as_of"]})
        model = DummyClassifier(strategy="prior").fit(table[["distance"]], np.arange(len(table)) % 2)
        bus = InProcessTransport()
        events = flight_stream(f, lead=lead, warmup="1D")
        replay_stream(bus, "flights", events)
        p = StreamingPredictor(bus, model, table, lead=lead, recent_window=window, max_lateness="1D",
                               batch_size=int(rng.choice([1, 7, 100])), consumer=f"case{case}")
        p.run(max_messages=len(events), idle_timeout=10)
        preds = read_topic(bus, "predictions").set_index("key").loc[table["flight_id"]]
        np.testing.assert_array_equal(preds["origin_dep_delay_2h"].to_numpy(float), mean, err_msg=f"case {case}")
        np.testing.assert_array_equal(preds["origin_deps_2h"].to_numpy(float), count, err_msg=f"case {case}")
        cases += 1
    assert cases == 30


class Crash(Exception):
    pass


def crash_then_recover(bus: Bus, fm: dict, phase: str, n_events: int = 400) -> tuple[dict, dict, pd.DataFrame]:
    events = fm["events"][:n_events]
    replay_stream(bus.t, "flights", events)
    ck = bus.checkpoint()
    first = StreamingPredictor(bus.t, fm["model"], fm["feats"], checkpoint=ck, consumer="first", batch_size=15, claim_idle_ms=0)
    for _ in range(5):
        first.step()
    before = bus.t.length("predictions")
    if phase == "after poll":
        first._open().poll(15)
    else:
        obj, name = {"mid publish": (bus.t, "publish_many"), "before checkpoint": (ck, "save"),
                     "before ack": (first._open(), "ack")}[phase]
        real = getattr(obj, name)

        def crash(*args, **kwargs):
            if phase == "mid publish":
                real(args[0], list(args[1])[: (len(args[1]) + 1) // 2])
            raise Crash(phase)
        setattr(obj, name, crash)
        try:
            with pytest.raises(Crash):
                while True:  # a batch of departures only publishes nothing: go on until the crash
                    first.step()
        finally:
            setattr(obj, name, real)
        assert first.state_ is None  # the crashed predictor would reload its state before another batch
    published_before_crash = bus.t.length("predictions") - before
    second = StreamingPredictor(bus.t, fm["model"], fm["feats"], checkpoint=ck, consumer="second", batch_size=15, claim_idle_ms=0)
    stats = second.run(idle_timeout=0.5)  # the first predictor handled the first batches
    preds = read_topic(bus.t, "predictions")
    audit = audit_predictions(events, preds, read_topic(bus.t, "flights-rejected"))
    return audit, stats, preds, published_before_crash if phase != "after poll" else 0


@pytest.mark.parametrize("phase", ["after poll", "mid publish", "before checkpoint", "before ack"])
def test_a_crash_anywhere_in_the_batch_cycle_loses_nothing(bus, flights_model, phase):
    audit, stats, preds, published = crash_then_recover(bus, flights_model, phase)
    assert (audit["missing"], audit["rejected"], audit["unexpected_keys"]) == (0, 0, 0)
    assert audit["duplicates_agree"] and stats["claimed"] == 15
    check_against_batch(preds, flights_model["feats"], flights_model["model"], flights_model["features"])
    if phase in ("after poll", "before ack"):  # nothing of that batch was published / the checkpoint knew it was
        assert audit["duplicate_messages"] == 0
    else:  # what the crashed batch published is published again: duplicates, identified by key, with the same score
        assert published > 0 and audit["duplicate_messages"] == published
    if phase == "before ack":
        assert stats["duplicate_departures"] + stats["duplicate_requests"] == 15


def test_a_restart_without_a_checkpoint_says_its_windows_restart_empty(flights_model, caplog):
    fm, bus = flights_model, InProcessTransport()
    replay_stream(bus, "flights", fm["events"][:40])
    bus.queue_consumer("flights", "predictor", "dead").poll(10)
    with caplog.at_level("WARNING", logger="mlsys.deploy.streaming"):
        StreamingPredictor(bus, fm["model"], fm["feats"], consumer="c", claim_idle_ms=0).recover()
    assert "took over 10 pending messages without a checkpoint" in caplog.text


def test_a_transport_failure_leaves_the_batch_pending_and_the_next_step_recovers(flights_model):
    fm, bus = flights_model, InProcessTransport()
    events = fm["events"][:300]
    replay_stream(bus, "flights", events)
    p = StreamingPredictor(bus, fm["model"], fm["feats"], checkpoint=MemoryCheckpoint(), consumer="c", batch_size=20, claim_idle_ms=0)
    p.step()
    real, calls = bus.publish_many, []

    def down(topic, evs):
        calls.append(topic)
        raise TransportError("the server went away")
    bus.publish_many = down
    with pytest.raises(TransportError):
        while True:
            p.step()
    bus.publish_many = real
    assert p.state_ is None and len(p._open().pending()) == 20
    p.run(max_messages=len(events), idle_timeout=10)
    audit = audit_predictions(events, read_topic(bus, "predictions"))
    assert (audit["missing"], audit["duplicate_messages"]) == (0, 0)


def good_and_bad(fm: dict) -> tuple[list, list]:
    good = fm["events"][:200]
    deps = [e for e in good if e["kind"] == "departed"]
    dep = deps[-1]  # the newest departure: still in the state at the end
    early = next(e for e in reversed(deps) if any(d["origin"] == e["origin"] for d in deps[deps.index(e) + 1:]))
    other, other2, other3 = [e for e in fm["events"][200:] if e["kind"] == "scheduled"][:3]
    bad = [
        ({**good[1], "origin": None}, "field 'origin' must be str"),
        ({k: v for k, v in good[2].items() if k != "sched_dep"}, "missing field 'sched_dep'"),
        ({**good[3], "kind": "arrived"}, "'kind' must be one of"),
        ({**good[4], "dep_delay": "12"}, "field 'dep_delay' must be int or null"),
        ({**dep, "dep_delay": None}, "a departed event needs dep_delay"),
        ({**good[5], "kind": "scheduled", "dep_delay": 3}, "not known before departure"),
        ({**good[6], "published_at": "yesterday"}, "published_at must be seconds"),
        ({**good[7], "sched_dep": "2013-03-06 10:00"}, "must look like 2013-01-01T10:15:00Z"),
        ({**good[8], "kind": "scheduled", "dep_delay": None, "flight_id": "20130306-ZZ998-EWR"}, "older than the newest departure"),
        ({**other3, "flight_id": "20130306-ZZ999-EWR"}, "no batch features"),
        ({**other, "origin": "LGA" if other["origin"] != "LGA" else "JFK"}, "its batch features say"),
        ({**other2, "sched_dep": "2013-03-06T23:59:00Z"}, "is not the as_of"),
        ({**early, "flight_id": "20130306-XX1-" + early["origin"]}, "departure of '20130306-XX1-"),
        ({**dep, "dep_delay": dep["dep_delay"] + 7}, "conflicts with the one already ingested"),
        ({"flight_id": 12, "nested": {"a": [1, 2]}}, "field 'flight_id' must be str"),
    ]
    return good, bad


def test_bad_events_go_to_the_dead_letter_topic_with_their_reason_and_the_stream_goes_on(bus, flights_model):
    good, bad = good_and_bad(flights_model)
    for e in good + [b for b, _ in bad]:
        bus.t.publish("flights", e)
    p = StreamingPredictor(bus.t, flights_model["model"], flights_model["feats"], consumer="c", batch_size=30)
    stats = p.run(max_messages=len(good) + len(bad))
    rejected = read_topic(bus.t, "flights-rejected").sort_values("input_id", key=lambda s: s.map(lambda i: tuple(map(int, i.split("-")))))
    assert len(rejected) == len(bad) == stats["dead_letters"]
    for (event, why), (_, row) in zip(bad, rejected.iterrows()):
        assert why in row["reason"], (why, row["reason"])
        assert row["event"] == event and row["input_topic"] == "flights" and row["consumer"] == "c"
    assert stats["predictions"] == sum(e["kind"] == "scheduled" for e in good)
    assert len(p._open().pending()) == 0  # every message, bad or good, was acknowledged


def test_a_rejected_request_does_not_hide_a_valid_one_for_the_same_flight_in_its_batch(flights_model):
    "Two requests of one flight in a batch: a bad one (its origin contradicts the features) then a good one, then the good one again."
    fm, bus = flights_model, InProcessTransport()
    events = fm["events"][:100]
    req = next(e for e in events[50:] if e["kind"] == "scheduled")
    wrong = {**req, "origin": "LGA" if req["origin"] != "LGA" else "JFK"}
    stream = [e for e in events if e is not req]
    i = stream.index(next(e for e in stream[50:] if e["kind"] == "scheduled"))
    stream[i:i] = [wrong, req, req]
    replay_stream(bus, "flights", stream)
    stats = StreamingPredictor(bus, fm["model"], fm["feats"], consumer="c", batch_size=len(stream)).run(max_messages=len(stream), idle_timeout=10)
    preds = read_topic(bus, "predictions")
    assert (preds["key"] == req["flight_id"]).sum() == 1 and stats["duplicate_requests"] == 1 and stats["dead_letters"] == 1
    assert audit_predictions(stream, preds)["missing"] == 0


@pytest.mark.redis
def test_a_payload_that_is_not_json_is_kept_by_the_transport_and_the_predictor_goes_on(redis_client, flights_model):
    b = Bus("redis", redis_client)
    try:
        events = flights_model["events"][:50]
        replay_stream(b.t, "flights", events[:25])
        redis_client.xadd(b.t.key("flights"), {"event": b"\xff{not json"})
        redis_client.xadd(b.t.key("flights"), {"other": b"1"})
        replay_stream(b.t, "flights", events[25:])
        p = StreamingPredictor(b.t, flights_model["model"], flights_model["feats"], consumer="c")
        stats = p.run(idle_timeout=0.5)
        assert stats["predictions"] == sum(e["kind"] == "scheduled" for e in events)
        dead = p._open().dead_letters()
        assert len(dead) == 2 and "not UTF-8" in dead["reason"].iloc[0] and "no 'event' field" in dead["reason"].iloc[1]
    finally:
        b.close()


def test_a_message_redelivered_too_often_goes_to_the_dead_letter_topic(flights_model):
    bus = InProcessTransport()
    replay_stream(bus, "flights", flights_model["events"][:3])
    c = bus.queue_consumer("flights", "predictor", "crashy")
    c.poll(1)
    for _ in range(3):  # three more deliveries of the first message, never acknowledged
        c.claim(min_idle_ms=0, max_messages=1)
    p = StreamingPredictor(bus, flights_model["model"], flights_model["feats"], consumer="c", max_deliveries=3, claim_idle_ms=0)
    p.run(max_messages=3, idle_timeout=10)
    rejected = read_topic(bus, "flights-rejected")
    assert len(rejected) == 1 and "delivered 5 times (max_deliveries=3)" in rejected["reason"].iloc[0]


class PickyModel:
    "A model that fails on some rows (distance == 0 raises, distance == 1 gives NaN), or on every row."

    def __init__(self, inner, fail_all: bool = False):
        self.inner, self.fail_all = inner, fail_all
        self.feature_names_in_ = inner.feature_names_in_

    def predict_proba(self, X):
        if self.fail_all or (X["distance"] == 0).any():
            raise ValueError("this model cannot score that row")
        p = self.inner.predict_proba(X)
        p[(X["distance"] == 1).to_numpy(), 1] = np.nan
        return p


def test_rows_the_model_fails_on_are_set_aside_and_a_broken_model_stops_without_acknowledging(flights_model):
    fm = flights_model
    feats = fm["feats"].copy()
    events = fm["events"][:200]
    asked = [e["flight_id"] for e in events if e["kind"] == "scheduled"]
    feats.loc[feats["flight_id"] == asked[3], "distance"] = 0.0
    feats.loc[feats["flight_id"] == asked[5], "distance"] = 1.0
    bus = InProcessTransport()
    replay_stream(bus, "flights", events)
    stats = StreamingPredictor(bus, PickyModel(fm["model"]), feats, consumer="c", version="v1").run(max_messages=len(events), idle_timeout=10)
    rejected = read_topic(bus, "flights-rejected")
    assert stats["predictions"] == len(asked) - 2 and len(rejected) == 2
    assert "cannot score that row" in rejected["reason"].iloc[0] and "not a finite number" in rejected["reason"].iloc[1]

    bus = InProcessTransport()
    replay_stream(bus, "flights", events)
    broken = StreamingPredictor(bus, PickyModel(fm["model"], fail_all=True), fm["feats"], consumer="a", version="v1",
                                checkpoint=(ck := MemoryCheckpoint()))
    with pytest.raises(DataError, match="failed on every row"):
        broken.run(max_messages=len(events), idle_timeout=10)
    assert len(broken._open().pending()) > 0 and len(read_topic(bus, "predictions")) == 0
    fixed = StreamingPredictor(bus, fm["model"], fm["feats"], consumer="b", version="v1", checkpoint=ck, claim_idle_ms=0)
    fixed.run(idle_timeout=0.5)
    assert audit_predictions(events, read_topic(bus, "predictions"))["missing"] == 0


def test_the_online_store_serves_the_same_batch_features_as_the_table(flights_model):
    from mlsys.deploy.service import OnlineFeatures, feature_spec
    from mlsys.features.online import SQLiteOnlineStore

    fm = flights_model
    events = fm["events"][:300]
    online = OnlineFeatures(SQLiteOnlineStore(), feature_spec(fm["feats"], fm["features"]))
    online.publish(fm["feats"])
    out = {}
    for name, features in [("table", fm["feats"]), ("store", StoreFeatures(online)), ("online", online)]:
        bus = InProcessTransport()
        replay_stream(bus, "flights", events)
        StreamingPredictor(bus, fm["model"], features, consumer=name).run(max_messages=len(events), idle_timeout=10)
        out[name] = read_topic(bus, "predictions").set_index("key")["score"]
    np.testing.assert_array_equal(out["store"].loc[out["table"].index].to_numpy(), out["table"].to_numpy())
    np.testing.assert_array_equal(out["online"].loc[out["table"].index].to_numpy(), out["table"].to_numpy())


def test_run_stream_loads_an_artifact_and_a_parquet_table_and_versions_by_the_artifact(tmp_path, flights_model):
    from mlsys.deploy.serialize import save_model

    fm = flights_model
    art = save_model(fm["model"], tmp_path / "model.zip")
    fm["feats"].to_parquet(tmp_path / "feats.parquet")
    bus = InProcessTransport()
    events = fm["events"][:150]
    replay_stream(bus, "flights", events)
    out = run_stream(art, tmp_path / "feats.parquet", bus, checkpoint=tmp_path / "state.json", consumer="cli",
                     max_messages=len(events), idle_timeout=10)
    preds = read_topic(bus, "predictions")
    assert out["model_version"] == artifact_version(art) == preds["model_version"].iloc[0]
    assert out["predictions"] == len(preds) == sum(e["kind"] == "scheduled" for e in events)
    assert json.loads((tmp_path / "state.json").read_bytes())["format"] == "mlsys.deploy.streaming.state/1"
    with pytest.raises(ConfigError, match="features file not found"):
        run_stream(art, tmp_path / "nope.parquet", bus)
    with pytest.raises(ConfigError, match='checkpoint="redis" needs a Redis transport'):
        run_stream(art, tmp_path / "feats.parquet", bus, checkpoint="redis")


@pytest.mark.parametrize("kwargs, match", [
    ({"transport": "redis://127.0.0.1:6379"}, "transport must be a Transport"),
    ({"model": object()}, "model must be a fitted model"),
    ({"features": [1, 2]}, "features must be a DataFrame"),
    ({"input_topic": "bad topic"}, "input_topic="),
    ({"output_topic": "flights"}, "must differ"),
    ({"dead_letter_topic": "predictions"}, "must differ"),
    ({"group": ""}, "group="),
    ({"consumer": "-x"}, "consumer="),
    ({"lead": "-5min"}, "lead="),
    ({"lead": 30}, "bare number"),
    ({"lead": "30min"}, "built with lead"),
    ({"recent_window": "0s"}, "recent_window="),
    ({"max_lateness": "soon"}, "max_lateness="),
    ({"checkpoint": "state.json"}, "load() and save"),
    ({"batch_size": 0}, "batch_size must be"),
    ({"batch_size": True}, "batch_size must be"),
    ({"claim_idle_ms": -1}, "claim_idle_ms must be"),
    ({"max_deliveries": 0}, "max_deliveries must be"),
    ({"model_name": ""}, "model_name must be"),
    ({"version": 3}, "version must be"),
    ({"feature_names": ["no_such_feature"]}, "['no_such_feature']"),
    ({"threads": 0}, "threads must be"),
])
def test_bad_constructor_arguments_are_config_errors(flights_model, kwargs, match):
    args = {"transport": InProcessTransport(), "model": flights_model["model"], "features": flights_model["feats"], **kwargs}
    with pytest.raises(ConfigError) as e:
        StreamingPredictor(**args)
    assert match in str(e.value)


def test_bad_feature_tables_are_config_errors(flights_model):
    feats = flights_model["feats"]
    with pytest.raises(ConfigError, match="distinct, non-missing keys"):
        TableFeatures(pd.concat([feats.head(3), feats.head(1)]))
    with pytest.raises(ConfigError, match="neither the stream"):
        StreamingPredictor(InProcessTransport(), flights_model["model"], feats.drop(columns=["temp", "route_n"]))
    with pytest.raises(ConfigError, match="online must be an OnlineFeatures"):
        StoreFeatures(feats)


def test_damaged_or_foreign_checkpoints_are_refused(tmp_path, flights_model):
    fm = flights_model
    path = tmp_path / "state.json"

    def start(window="2h"):
        return StreamingPredictor(InProcessTransport(), fm["model"], fm["feats"], checkpoint=FileCheckpoint(path),
                                  recent_window=window, consumer="c").recover()
    path.write_bytes(b"\x00\x01garbage")
    with pytest.raises(IntegrityError, match="is not JSON"):
        start()
    path.write_text(json.dumps({"format": "something else"}))
    with pytest.raises(IntegrityError, match="is not a streaming-state snapshot"):
        start()
    good = RecentDepartures(recent_departure_windows("2h")).snapshot()
    path.write_text(json.dumps(good))
    start()  # an empty snapshot of the same definitions is fine
    with pytest.raises(IntegrityError, match="other feature definitions"):
        start("1h")
    for bad in ([["A", "JFK", 3, 1.5]], [["A", "JFK", True, 1]], [["A", "JFK"]], "x"):
        path.write_text(json.dumps({**good, "departures": bad}))
        with pytest.raises(IntegrityError, match="damaged"):
            start()
    hour = 3600 * 10**9
    path.write_text(json.dumps({**good, "departures": [["A", "JFK", 3, 10**18 + hour], ["B", "JFK", 3, 10**18]]}))
    with pytest.raises(IntegrityError, match="damaged.*in time order"):
        start()
    path.write_text(json.dumps({**good, "departures": [["A", "JFK", 3, 10**18 + 9 * hour], ["B", "JFK", 3, 10**18]]}))
    with pytest.raises(IntegrityError, match="damaged.*older than the state kept"):
        start()


def test_state_snapshot_round_trip_answers_like_the_original_on_random_departures():
    rng = np.random.default_rng(3)
    windows = recent_departure_windows("45min")
    for _ in range(20):
        s = RecentDepartures(windows, max_lateness="30min")
        t = pd.Timestamp("2013-06-01", tz="UTC")
        for i in range(int(rng.integers(1, 200))):
            t += pd.Timedelta(seconds=int(rng.integers(0, 400)))
            s.add(f"f{i}", str(rng.choice(["A", "B", "Ç"])), float(rng.integers(-30, 300)), t)
            if rng.random() < 0.1:
                s.evict()
        r = RecentDepartures(windows, max_lateness="30min").restore(json.loads(json.dumps(s.snapshot())))
        for at in [t, t + pd.Timedelta("1min"), t + pd.Timedelta("50min")]:
            for o in ["A", "B", "Ç", "Z"]:
                got, want = r.features("q", o, at), s.features("q", o, at)
                assert all(x == y or (np.isnan(x) and np.isnan(y)) for x, y in zip(got.values(), want.values())), (got, want)


def test_stream_helpers_refuse_bad_arguments(flights_model):
    bus = InProcessTransport()
    with pytest.raises(ConfigError, match="rate must be"):
        replay_stream(bus, "flights", [], rate=0)
    with pytest.raises(ConfigError, match="transport must be"):
        replay_stream("bus", "flights", [])
    with pytest.raises(DataError, match="needs dep_delay"):
        replay_stream(bus, "flights", [{**flights_model["events"][0], "kind": "departed", "dep_delay": None}])
    with pytest.raises(ConfigError, match="tz-aware"):
        flight_stream(flights_model["flights"], start="2013-03-06 10:00")
    with pytest.raises(ConfigError, match="end='soon' is not a time"):
        flight_stream(flights_model["flights"], end="soon")
    with pytest.raises(DataError, match="wrap a single event in a list"):
        replay_stream(bus, "flights", flights_model["events"][0])
    with pytest.raises(DataError, match="no prediction carries both"):
        latency_table(pd.DataFrame({"published_at": [None], "received_at": [1.0], "emitted_at": [2.0]}))
    with pytest.raises(DataError, match="must be a dict"):
        check_stream_event([1])


def test_flight_stream_orders_events_by_time_and_covers_every_flight(flights_model):
    fm = flights_model
    ev = flight_stream(fm["flights"], lead="1h")
    times = [pd.Timestamp(e["sched_dep"]) - pd.Timedelta("1h") if e["kind"] == "scheduled"
             else pd.Timestamp(e["sched_dep"]) + pd.Timedelta(minutes=e["dep_delay"]) for e in ev]
    assert all(a <= b for a, b in zip(times, times[1:]))
    assert sum(e["kind"] == "scheduled" for e in ev) == len(fm["flights"])
    assert sum(e["kind"] == "departed" for e in ev) == int(fm["flights"]["dep_delay"].notna().sum())
    assert all(check_stream_event(e) is e for e in ev[:50])


def test_redis_checkpoint_names_an_unreachable_server():
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    ck = RedisCheckpoint(redis.Redis(port=port, socket_connect_timeout=1, retry=Retry(NoBackoff(), 0)), "k")
    with pytest.raises(TransportError, match="Redis checkpoint 'k': writing failed"):
        ck.save(b"{}")
    with pytest.raises(ConfigError, match="client must be a redis.Redis"):
        RedisCheckpoint(object(), "k")


# --- JSON logs and trace context through the stream (issue 15) ---

def json_logger(path, level=None):
    "A logger of its own (unique name) writing JSON lines to `path`; the caller closes it with `close_logger`."
    import logging

    from mlsys.monitor.observe import json_handler
    lg = logging.getLogger(f"test.stream.{uuid.uuid4().hex[:8]}")
    lg.setLevel(level or logging.INFO)
    lg.propagate = False
    lg.addHandler(json_handler(path, level=level or logging.INFO))
    return lg


def close_logger(lg):
    for h in list(lg.handlers):
        lg.removeHandler(h)
        h.close()


# malformed traceparents: the W3C rules (version ff, all-zero ids, upper case, extra fields after version 00, wrong
# lengths), non-strings, and a long string; each is ignored and the event gets its flight's trace
MALFORMED = ["", "garbage", "00-" + "0" * 32 + "-" + "a" * 16 + "-01", "00-" + "a" * 32 + "-" + "0" * 16 + "-01",
             "ff-" + "a" * 32 + "-" + "b" * 16 + "-01", "00-" + "A" * 32 + "-" + "b" * 16 + "-01",
             "00-" + "a" * 32 + "-" + "b" * 16 + "-01-extra", "00-" + "a" * 31 + "-" + "b" * 16 + "-01",
             "00-" + "a" * 32 + "-" + "b" * 16, 12, 1.5, True, ["00"], {"t": 1}, "00-" + "a" * 32 + "-" + "b" * 16 + "-01" + "x" * 5000,
             "00-" + "é" * 32 + "-" + "b" * 16 + "-01", "00-" + "a" * 32 + "-" + "b" * 16 + "-01\n"]


def traced_run(tmp_path, fm, events, level=None, batch_size=50, raw=()):
    "Stream `events` (then the malformed `raw` ones, published as they are) with a JSON log; the run's products."
    from mlsys.monitor.observe import read_json_logs
    bus = InProcessTransport()
    replay_stream(bus, "flights", events)
    for e in raw:
        bus.publish("flights", e)
    events = [*events, *raw]
    lg = json_logger(tmp_path / "stream.jsonl", level)
    try:
        p = StreamingPredictor(bus, fm["model"], fm["feats"], consumer="traced", batch_size=batch_size, log=lg)
        stats = p.run(max_messages=len(events), idle_timeout=10)
    finally:
        close_logger(lg)
    return p, stats, read_topic(bus, "predictions"), read_topic(bus, "flights-rejected"), read_json_logs(tmp_path / "stream.jsonl"), lg.name


def test_traceparent_flows_from_event_to_prediction_and_every_log_line(tmp_path, flights_model):
    import logging

    from mlsys.monitor.observe import key_trace_id, parse_traceparent, start_trace
    fm = flights_model
    rng = np.random.default_rng(3)
    events = fm["events"][:300]
    producer = {}
    traced = []
    for i, e in enumerate(events):
        r = rng.random()
        if r < 0.6:  # a producer's span
            s = start_trace()
            producer[i] = s
            traced.append({**e, "traceparent": s.traceparent})
        elif r < 0.8:
            traced.append(dict(e))  # no traceparent: the flight's own trace
        else:
            traced.append({**e, "traceparent": MALFORMED[int(rng.integers(len(MALFORMED)))]})
    p, stats, preds, rejected, logs, name = traced_run(tmp_path, fm, traced, level=logging.DEBUG)
    assert len(rejected) == 0 and stats["predictions"] == sum(e["kind"] == "scheduled" for e in events)  # none refused
    bad = [i for i, e in enumerate(traced) if "traceparent" in e and i not in producer]
    assert stats.get("invalid_traceparent", 0) == len(bad) > 0
    cons = logs[logs["stage"] == "consume"].set_index("message_id")
    assert cons["traceparent_invalid"].notna().sum() == len(bad)
    by_flight = {e["flight_id"]: i for i, e in enumerate(traced) if e["kind"] == "scheduled"}
    assert len(preds) == len(by_flight)
    for _, pr in preds.iterrows():
        i = by_flight[pr["key"]]
        trace, span, _ = parse_traceparent(pr["traceparent"])
        assert trace == pr["trace_id"]
        want = producer[i].trace_id if i in producer else key_trace_id(pr["key"])
        assert trace == want, (i, traced[i].get("traceparent"))
        lines = logs[logs["message_id"] == pr["input_id"]]
        assert list(lines["stage"]) == ["consume", "features", "predict", "publish"]
        assert set(lines["trace_id"]) == {trace}
        c = lines.iloc[0]
        if i in producer:
            assert c["parent_id"] == producer[i].span_id
        else:
            assert pd.isna(c["parent_id"])  # the root span of the flight's trace
        assert (lines.iloc[1:]["parent_id"] == c["span_id"]).all() and lines["span_id"].nunique() == 4
        assert lines.iloc[3]["span_id"] == span  # the prediction's traceparent is the publish span


def test_metrics_from_the_logs_match_the_predictors_counters(tmp_path, flights_model):
    import time

    from mlsys.deploy.streaming import stream_log_metrics
    fm = flights_model
    events = list(fm["events"][:400])
    events.append(dict(events[20]))  # a duplicate
    raw = [{**events[5], "origin": None}, {**events[9], "kind": "arrived"}]  # two dead letters
    t0 = time.time()
    p, stats, preds, rejected, logs, name = traced_run(tmp_path, fm, events, batch_size=37, raw=raw)
    events += raw
    wall = time.time() - t0
    m = stream_log_metrics(logs, logger=name)
    assert (m["events"], m["predictions"], m["dead letters"], m["batches"]) == (
        stats["messages"], stats["predictions"], stats["dead_letters"], stats["batches"]) == (
        len(events), len(preds), len(rejected), stats["batches"])
    assert set(logs["stage"]) == {"consume", "publish", "dead_letter"}  # INFO: no step lines
    assert m["departed events"] == sum(isinstance(e, dict) and e.get("kind") == "departed" for e in events)
    assert m["predict s total"] == pytest.approx(stats["seconds_scoring"], abs=1e-3)
    assert m["events/s"] >= len(events) / wall  # the log's span of consume times is within the run
    # the lag in the log equals the lag the predictions carry (received_at - published_at)
    lag = logs[logs["stage"] == "consume"].set_index("message_id")["lag_ms"]
    want = (preds["received_at"] - preds["published_at"]) * 1000
    np.testing.assert_allclose(lag.loc[preds["input_id"]].to_numpy(float), want.to_numpy(float), atol=1e-6)
    assert m["lag p50 ms"] == pytest.approx(np.percentile(lag.dropna().astype(float), 50))  # raw events carry no published_at
    pub = logs[logs["stage"] == "publish"].set_index("message_id").loc[preds["input_id"]]
    np.testing.assert_allclose(pub["end_to_end_ms"].to_numpy(float),
                               ((preds["emitted_at"] - preds["published_at"]) * 1000).to_numpy(float), atol=1e-6)
    assert (pub["prediction_id"].to_numpy() == preds["prediction_id"].to_numpy()).all()
    with pytest.raises(DataError, match="no consume lines"):
        stream_log_metrics(logs, logger="somebody.else")


def test_without_a_handler_no_line_is_written_and_predictions_still_carry_traces(flights_model, caplog):
    import logging

    from mlsys.monitor.observe import key_trace_id
    fm = flights_model
    bus = InProcessTransport()
    replay_stream(bus, "flights", fm["events"][:120])
    with caplog.at_level(logging.WARNING, logger="mlsys.stream"):
        p = StreamingPredictor(bus, fm["model"], fm["feats"], consumer="quiet")
        p.run(max_messages=120, idle_timeout=10)
    assert not [r for r in caplog.records if r.name == "mlsys.stream"]
    preds = read_topic(bus, "predictions")
    assert (preds["trace_id"] == preds["key"].map(key_trace_id)).all()
    assert StreamingPredictor(InProcessTransport(), fm["model"], fm["feats"], log=None).log is None
    with pytest.raises(ConfigError, match="log must be a logger name"):
        StreamingPredictor(InProcessTransport(), fm["model"], fm["feats"], log=42)


def test_a_failed_batch_logs_one_error_line_and_its_redelivery_is_counted_once(tmp_path, flights_model):
    from mlsys.deploy.streaming import stream_log_metrics
    from mlsys.monitor.observe import read_json_logs
    fm = flights_model
    events = fm["events"][:200]
    bus = InProcessTransport()
    replay_stream(bus, "flights", events)
    lg = json_logger(tmp_path / "s.jsonl")
    ck = MemoryCheckpoint()
    try:
        p = StreamingPredictor(bus, fm["model"], fm["feats"], consumer="a", batch_size=50, checkpoint=ck, log=lg,
                               claim_idle_ms=0)
        real = p.transport.publish_many
        calls = {"n": 0}

        def flaky(topic, evs):
            calls["n"] += 1
            if calls["n"] == 2:
                raise RuntimeError("publish failed")
            return real(topic, evs)
        p.transport.publish_many = flaky
        with pytest.raises(RuntimeError):
            p.run(max_messages=len(events), idle_timeout=10)
        p.transport.publish_many = real
        q = StreamingPredictor(bus, fm["model"], fm["feats"], consumer="b", batch_size=50, checkpoint=ck, log=lg,
                               claim_idle_ms=0)
        q.run(max_messages=len(events) - p.stats_["messages"], idle_timeout=10)
    finally:
        close_logger(lg)
    logs = read_json_logs(tmp_path / "s.jsonl")
    failed = logs[logs["stage"] == "batch_failed"]
    assert len(failed) == 1 and failed["level"].item() == "ERROR" and "publish failed" in failed["error"].item()
    m = stream_log_metrics(logs, logger=lg.name)
    assert m["events"] == p.stats_["messages"] + q.stats_["messages"] == len(events)
    assert m["predictions"] == p.stats_["predictions"] + q.stats_["predictions"]
