"""Streaming prediction: events/s and end-to-end latency of StreamingPredictor, one event per cycle (the baseline) vs batched polls.

The pipeline's gradient-boosting model is fitted on 1-13 January 2013 and 14 January is streamed as events (one
scheduled event per flight, one departed event per departure). Each configuration is measured side by side in one
run, on the in-process transport and (when a server answers) Redis Streams:

- throughput: every event is published first, then the predictor drains the topic; events/s of the drain;
- latency: a producer thread publishes at `--rate` events/s while the predictor runs; end-to-end milliseconds from
  an event's publication to its prediction's (p50, p99).

The baseline polls one message per cycle (`batch_size=1`): every event pays the whole cycle (a model call, a publish,
a checkpoint, an acknowledgement). Batched polls take whatever has arrived, up to `batch_size`.

    python bench/bench_streaming_predict.py                 # the whole day, 1,854 events
    python bench/bench_streaming_predict.py --events 600    # a quick run
"""
from __future__ import annotations

import argparse
import os
import threading
import time
import uuid

import pandas as pd


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=None, help="stream only the day's first N events")
    ap.add_argument("--rate", type=float, default=200.0, help="events/s of the latency runs")
    ap.add_argument("--redis", default=os.environ.get("MLSYS_REDIS_URL", "redis://127.0.0.1:6379/0"), help="Redis URL")
    args = ap.parse_args()
    from threadpoolctl import threadpool_limits

    from mlsys.data.service import flight_ids
    from mlsys.data.transport import InProcessTransport, RedisTransport, TransportError
    from mlsys.datasets import load_flights, load_planes, load_weather
    from mlsys.deploy.streaming import MemoryCheckpoint, StreamingPredictor, flight_stream, latency_table, read_topic, replay_stream
    from mlsys.pipeline import FEATURES, LABEL, build_features, make_model, time_split

    threadpool_limits(1)
    flights = load_flights("2013-01-01", "2013-01-15")
    feats = build_features(flights, load_weather("2013-01-01", "2013-01-15"), load_planes())
    feats["flight_id"] = flight_ids(flights).to_numpy()
    train, _ = time_split(feats, "2013-01-14")
    model = make_model().fit(train[FEATURES], train[LABEL].astype(int))
    day = feats[feats["local_date"] == "2013-01-14"]
    events = flight_stream(flights, start=day["sched_dep"].min(), end=day["sched_dep"].max() + pd.Timedelta("1s"))
    events = events[: args.events] if args.events else events

    def transports():
        yield "in-process", InProcessTransport
        try:
            probe = RedisTransport(args.redis, prefix="bench-probe")
            probe.length("probe")
            probe.close()
        except TransportError as e:
            print(f"Redis Streams skipped: {e}")
            return
        yield "Redis Streams", lambda: RedisTransport(args.redis, prefix=f"bench-stream-{uuid.uuid4().hex[:8]}")

    def cleanup(bus) -> None:
        if isinstance(bus, RedisTransport):
            for t in ("flights", "predictions", "flights-rejected"):
                bus.delete(t)
            bus.close()

    rows = []
    for tname, make in transports():
        for label, batch_size in [("one event per cycle (baseline)", 1), ("batched polls, up to 100", 100)]:
            bus = make()
            replay_stream(bus, "flights", events)
            p = StreamingPredictor(bus, model, feats, checkpoint=MemoryCheckpoint(), batch_size=batch_size, consumer="bench")
            p.recover()
            t0 = time.perf_counter()
            stats = p.run(max_messages=len(events), idle_timeout=5)
            drain = time.perf_counter() - t0
            cleanup(bus)

            bus = make()
            p = StreamingPredictor(bus, model, feats, checkpoint=MemoryCheckpoint(), batch_size=batch_size, consumer="bench")
            p.recover()
            producer = threading.Thread(target=replay_stream, args=(bus, "flights", events), kwargs={"rate": args.rate})
            producer.start()
            p.run(max_messages=len(events), idle_timeout=5)
            producer.join()
            lat = latency_table(read_topic(bus, "predictions")).loc["end to end"]
            cleanup(bus)
            rows.append({"transport": tname, "predictor": label, "events": stats["messages"], "batches": stats["batches"],
                         "events/s": stats["messages"] / drain, f"p50 ms at {args.rate:g}/s": lat["p50"],
                         f"p99 ms at {args.rate:g}/s": lat["p99"]})
    table = pd.DataFrame(rows)
    base = table.groupby("transport")["events/s"].transform("first")
    table["vs baseline"] = (table["events/s"] / base).map(lambda x: f"{x:.1f}x")
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(table.round(1).to_string(index=False))


if __name__ == "__main__":
    main()
