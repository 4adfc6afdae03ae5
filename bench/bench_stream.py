"""Events per second of the stateful stream jobs vs a naive recompute-per-event baseline.

The stream jobs (`WindowedCounts` 1 h tumbling, 2 h/1 h sliding, `RollingCounts` 2 h) process a month of
flight events one at a time. The naive baseline keeps the same aggregates current by recomputing the
batch job (`batch_window_counts` + `batch_rolling_counts`, pandas) over every event seen so far after each
new event; its cost per event grows with the stream, so it is measured at several stream positions.

Redis publishing is timed against the previous publish path (a pipeline of `XADD ... MAXLEN`, which also
trims delivered-but-unacknowledged events) side by side, below and at the topic's maxlen.

    python bench/bench_stream.py [--month 1] [--naive-events 30]
"""
from __future__ import annotations

import argparse
import itertools
import math
import os
import time
import uuid

import pandas as pd

from mlsys.core import MissingExtraError
from mlsys.data.streaming import (
    RollingCounts,
    WindowedCounts,
    batch_rolling_counts,
    batch_window_counts,
)
from mlsys.data.transport import (
    InProcessTransport,
    RedisTransport,
    TransportError,
    encode_event,
    flight_events,
    replay,
)
from mlsys.datasets import load_flights


def stream_rate(job_factory, events) -> tuple[float, float]:
    job = job_factory()
    t0 = time.perf_counter()
    for e in events:
        job.update(e)
    if hasattr(job, "flush"):
        job.flush()
    dt = time.perf_counter() - t0
    return dt, len(events) / dt


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--month", type=int, default=1, help="month of 2013 to replay")
    ap.add_argument("--naive-events", type=int, default=30, help="events timed for the naive baseline at each position")
    args = ap.parse_args()
    start = f"2013-{args.month:02d}-01"
    end = pd.Period(start, freq="M").end_time.strftime("%Y-%m-%d")
    month = load_flights(start, end)
    events = flight_events(month)
    n = len(events)
    rows = []
    for name, factory in [
        ("stream: WindowedCounts 1 h tumbling", lambda: WindowedCounts("1h")),
        ("stream: WindowedCounts 2 h sliding by 1 h, 1 h lateness", lambda: WindowedCounts("2h", slide="1h", allowed_lateness="1h")),
        ("stream: RollingCounts 2 h", lambda: RollingCounts("2h")),
    ]:
        dt, rate = stream_rate(factory, events)
        rows.append((name, f"all {n:,}", dt, rate))
    # all three stream jobs together, the fair comparison with the naive recompute of all three aggregates
    jobs_t0 = time.perf_counter()
    a, b, c = WindowedCounts("1h"), WindowedCounts("2h", slide="1h", allowed_lateness="1h"), RollingCounts("2h")
    for e in events:
        a.update(e); b.update(e); c.update(e)
    dt_all = time.perf_counter() - jobs_t0
    rows.append(("stream: all three jobs", f"all {n:,}", dt_all, n / dt_all))
    stream_all_rate = n / dt_all
    naive_rates = []
    for pos in [100, 1_000, 10_000, n]:
        pos = min(pos, n)
        k = min(args.naive_events, pos)
        t0 = time.perf_counter()
        for i in range(pos - k, pos):
            prefix = month.iloc[: i + 1]
            batch_window_counts(prefix, "1h")
            batch_window_counts(prefix, "2h", slide="1h")
            batch_rolling_counts(prefix, "2h")
        dt = time.perf_counter() - t0
        naive_rates.append((pos, k / dt))
        rows.append((f"naive: recompute all three batch jobs per event (pandas), at stream position {pos:,}", f"{k}", dt, k / dt))
    # a second, leaner naive baseline: recompute only the 1 h tumbling counts from the raw events so far in
    # pure Python (no pandas overhead), to show the growth with stream position rather than library overhead
    py_rates = []
    for pos in [100, 1_000, 10_000, n]:
        pos = min(pos, n)
        k = min(args.naive_events, pos)
        t0 = time.perf_counter()
        for i in range(pos - k, pos):
            counts: dict = {}
            for e in events[: i + 1]:
                t = _ts(e)
                key = (t - t % 3600, e["origin"])
                acc = counts.setdefault(key, [0, 0, 0])
                acc[0] += 1
                acc[1] += e["dep_delay"] is not None and e["dep_delay"] > 15
                acc[2] += e["cancelled"]
        dt = time.perf_counter() - t0
        py_rates.append((pos, k / dt))
        rows.append((f"naive: recompute 1 h tumbling counts over all events so far (pure Python), at position {pos:,}", f"{k}", dt, k / dt))
    # end to end through a transport: publish the month, then poll + update + ack in batches of 500
    for label, make in [("in-process", lambda: InProcessTransport()), ("Redis Streams", _redis_transport)]:
        bus = make()
        if bus is None:
            rows.append((f"transport end to end ({label}): skipped, no Redis server at {REDIS_URL}", "0", 0.0, float("nan")))
            continue
        sub = bus.subscribe("flights", "bench")
        job = WindowedCounts("1h")
        t0 = time.perf_counter()
        replay(bus, "flights", events)
        t_pub = time.perf_counter() - t0
        while msgs := sub.poll(500):
            for m in msgs:
                job.update(m.event)
            sub.ack(msgs)
        dt = time.perf_counter() - t0
        name = (f"transport end to end ({label}): publish {n:,}, then poll + WindowedCounts 1 h + ack "
                f"(publishing alone {n / t_pub:,.0f} events/s)")
        rows.append((name, f"all {n:,}", dt, n / dt))
        if isinstance(bus, RedisTransport):
            bus.delete("flights")
        bus.close()
    # publishing to Redis: the lossless retention script against the previous path, a redis-py pipeline of
    # XADD ... MAXLEN (which trims pending events too), on an unbounded topic and on one held at its maxlen
    probe = _redis_transport()
    if probe is None:
        rows.append((f"Redis publishing: skipped, no Redis server at {REDIS_URL}", "0", 0.0, float("nan")))
    else:
        probe.close()
        payloads = [encode_event(e) for e in events]
        for maxlen, note in [(1_000_000, "topic below maxlen"), (1_000, "topic held at maxlen=1,000, trimming every publish")]:
            for label, publish in [("RedisTransport.publish_many (lossless retention script)", _publish_transport),
                                   ("baseline: redis-py pipeline of XADD MAXLEN (trims unacknowledged events)", _publish_raw_xadd)]:
                dt = min(publish(events, payloads, maxlen) for _ in range(3))
                rows.append((f"Redis publishing, {note}: {label}", f"all {n:,}", dt, n / dt))
    one_job = next(r for r in rows if r[0].startswith("stream: WindowedCounts 1 h"))[3]

    print(f"Replay of {start[:7]}: {n:,} flight events, one at a time (single process, shared 2-core machine).\n")
    print("| method | events timed | seconds | events/s |")
    print("|---|---:|---:|---:|")
    for name, cnt, dt, rate in rows:
        print(f"| {name} | {cnt} | {dt:.3f} | {rate:,.0f} |" if not math.isnan(rate) else f"| {name} | - | - | - |")
    print()
    for pos, rate in naive_rates:
        print(f"- all three stream jobs vs pandas recompute at event {pos:,}: {stream_all_rate / rate:,.0f}x")
    for pos, rate in py_rates:
        print(f"- WindowedCounts 1 h vs pure-Python recompute at event {pos:,}: {one_job / rate:,.0f}x")
    total = sum((b[0] - a[0]) * (1 / a[1] + 1 / b[1]) / 2 for a, b in itertools.pairwise(naive_rates))
    print(f"- replaying the whole month with the pandas recompute would take about {total / 60:.0f} min "
          f"(trapezoid over the measured positions); the three stream jobs take {dt_all:.1f} s")


REDIS_URL = os.environ.get("MLSYS_REDIS_URL", "redis://127.0.0.1:6379/0")


def _redis_transport():
    try:
        bus = RedisTransport(REDIS_URL, prefix=f"bench-{uuid.uuid4().hex[:8]}", maxlen=1_000_000)
        bus.length("probe")
        return bus
    except (MissingExtraError, TransportError):  # no client library or no server: the row says so
        return None


def _publish_transport(events, payloads, maxlen) -> float:
    "Seconds for `RedisTransport.publish_many` of `events` (a subscriber group that keeps up, so trimming is allowed)."
    bus = RedisTransport(REDIS_URL, prefix=f"bench-{uuid.uuid4().hex[:8]}", maxlen=maxlen)
    sub = bus.subscribe("flights", "reader")
    t = 0.0
    for i in range(0, len(events), 500):
        t0 = time.perf_counter()
        bus.publish_many("flights", events[i:i + 500])
        t += time.perf_counter() - t0
        while msgs := sub.poll(500):  # not timed: the reader acknowledges, so retention may trim
            sub.ack(msgs)
    bus.delete("flights")
    bus.close()
    return t


def _publish_raw_xadd(events, payloads, maxlen) -> float:
    "Seconds for the previous publish path: one pipelined round trip of `XADD ... MAXLEN =` per 500 events."
    bus = RedisTransport(REDIS_URL, prefix=f"bench-{uuid.uuid4().hex[:8]}", maxlen=maxlen)
    sub = bus.subscribe("flights", "reader")
    key, t = bus.key("flights"), 0.0
    for i in range(0, len(payloads), 500):
        t0 = time.perf_counter()
        pipe = bus.r.pipeline(transaction=False)
        for payload in payloads[i:i + 500]:
            pipe.xadd(key, {"event": payload}, maxlen=maxlen, approximate=False)
        pipe.execute()
        t += time.perf_counter() - t0
        while msgs := sub.poll(500):
            sub.ack(msgs)
    bus.delete("flights")
    bus.close()
    return t


def _ts(event: dict) -> int:
    from datetime import datetime
    return int(datetime.fromisoformat(event["sched_dep"]).timestamp())


if __name__ == "__main__":
    main()
