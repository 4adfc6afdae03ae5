"""Batch vs stream: equal results, windows, watermarks and late events, bounded state, bad input."""
import numpy as np
import pandas as pd
import pytest

from mlsys.core import ConfigError, DataError
from mlsys.data.streaming import (
    RollingCounts,
    WindowedCounts,
    batch_rolling_counts,
    batch_window_counts,
    drop_flights,
    event_time,
    to_seconds,
)
from mlsys.data.transport import InProcessTransport, flight_events, replay
from mlsys.datasets import load_flights


@pytest.fixture(scope="module")
def days():
    return load_flights("2013-03-07", "2013-03-09")  # includes the worst day of 2013 (March 8)


@pytest.fixture(scope="module")
def events(days):
    return flight_events(days)


def naive_window_counts(flights, size_s, slide_s, threshold=15):
    "Reference: loop over every window start and count the flights inside it, by brute force."
    ts = flights["sched_dep"].map(lambda x: int(x.timestamp())).to_numpy()
    delayed = (flights["dep_delay"] > threshold).fillna(False).to_numpy(bool)
    cancelled = flights["cancelled"].to_numpy(bool)
    origin = flights["origin"].astype(str).to_numpy()
    rows = []
    for start in range((ts.min() // slide_s) * slide_s - size_s, ts.max() + 1, slide_s):
        inside = (ts >= start) & (ts < start + size_s)
        for o in sorted(set(origin[inside])):
            sel = inside & (origin == o)
            rows.append((o, start, int(sel.sum()), int(delayed[sel].sum()), int(cancelled[sel].sum())))
    return rows


@pytest.mark.parametrize("size, slide", [("1h", None), ("2h", "1h"), ("3h", "30min")])
def test_batch_engines_agree_with_brute_force(days, size, slide):
    pdf = batch_window_counts(days, size, slide)
    pd.testing.assert_frame_equal(pdf, batch_window_counts(days, size, slide, engine="duckdb"))
    size_s, slide_s = to_seconds(size, "size"), to_seconds(slide or size, "slide")
    got = list(zip(pdf["origin"], pdf["window_start"].map(lambda x: int(x.timestamp())), pdf["flights"], pdf["delayed"], pdf["cancelled"]))
    ref = sorted(naive_window_counts(days, size_s, slide_s), key=lambda r: (r[1], r[0]))
    assert got == ref
    assert pdf["flights"].sum() == len(days) * (size_s // slide_s)


@pytest.mark.parametrize("size, slide", [("1h", None), ("2h", "1h"), ("3h", "30min")])
def test_stream_equals_batch_in_scheduled_order(days, events, size, slide):
    job = WindowedCounts(size, slide=slide)
    pd.testing.assert_frame_equal(job.run(events), batch_window_counts(days, size, slide))
    assert job.n_late_ == 0 and job.open_windows_ == 0 and job._open == {}


def test_stream_over_transport_equals_batch(days, events):
    bus = InProcessTransport()
    sub = bus.subscribe("flights", "job")
    replay(bus, "flights", events)
    job, rows = WindowedCounts("1h"), []
    while msgs := sub.poll(250):
        for m in msgs:
            rows += job.update(m.event)
        sub.ack(msgs)
    rows += job.flush()
    pd.testing.assert_frame_equal(job.to_frame(rows), batch_window_counts(days, "1h"))


def test_windows_are_emitted_only_when_closed(events):
    job = WindowedCounts("1h")
    for e in events:
        for w in job.update(e):
            assert w["start"] + 3600 <= event_time(e)  # never before the watermark passed the end


def test_rolling_stream_equals_batch(days, events):
    roller = RollingCounts("2h")
    stream = pd.DataFrame([roller.update(e) for e in events])
    batch = batch_rolling_counts(days, "2h")
    assert stream["origin"].tolist() == batch["origin"].tolist()
    np.testing.assert_array_equal(stream[["flights_window", "delayed_window"]].to_numpy(),
                                  batch[["flights_window", "delayed_window"]].to_numpy())
    # brute force for a few flights: departures at the origin in (t - 2h, t], up to and including this one
    ts = np.array([event_time(e) for e in events])
    for i in [0, 17, 500, len(events) - 1]:
        o = events[i]["origin"]
        mask = np.array([e["origin"] == o for e in events[: i + 1]]) & (ts[: i + 1] > ts[i] - 7200)
        assert stream["flights_window"].iloc[i] == mask.sum()
    # state is bounded by the busiest two hours at one airport
    assert roller.max_state_size_ <= 3 * stream["flights_window"].max()


@pytest.mark.parametrize("lateness", ["0min", "30min", "2h"])
def test_late_events_counted_side_output_and_exact_identity(days, lateness):
    actual = flight_events(days, order="actual")
    job = WindowedCounts("1h", allowed_lateness=lateness, late="side")
    got = job.run(actual)
    late = job.pop_late_events()
    assert len(late) == job.n_late_ > 0 and job.late_events_ == []
    # the stream's windows equal the batch job on the table without the late flights
    pd.testing.assert_frame_equal(got, batch_window_counts(drop_flights(days, {e["flight_id"] for e in late}), "1h"))
    # late events really are late: more than `lateness` behind the newest event time seen before them
    newest, late_ids = -np.inf, {e["flight_id"] for e in late}
    for e in actual:
        t = event_time(e)
        if e["flight_id"] in late_ids:
            assert t - t % 3600 + 3600 <= newest - to_seconds(lateness, "l", allow_zero=True)
        newest = max(newest, t)


def test_late_drop_counts_without_keeping(days):
    actual = flight_events(days, order="actual")
    side, drop = WindowedCounts("1h", late="side"), WindowedCounts("1h", late="drop")
    pd.testing.assert_frame_equal(side.run(actual), drop.run(actual))
    assert drop.n_late_ == side.n_late_ > 0 and drop.late_events_ == []


def test_enough_lateness_makes_out_of_order_stream_equal_batch(days):
    actual = flight_events(days, order="actual")
    max_delay = int(days["dep_delay"].max())
    job = WindowedCounts("2h", slide="1h", allowed_lateness=f"{max_delay + 120}min")
    pd.testing.assert_frame_equal(job.run(actual), batch_window_counts(days, "2h", "1h"))
    assert job.n_late_ == 0


def test_sliding_late_event_still_counts_in_open_half(days):
    ev = flight_events(days.head(50))
    job = WindowedCounts("2h", slide="1h")
    job.update(ev[0])
    t0 = event_time(ev[0])
    probe = {**ev[1], "sched_dep": pd.Timestamp(t0 - t0 % 3600 + 2 * 3600 - 60, unit="s", tz="UTC").strftime("%Y-%m-%dT%H:%M:%SZ")}
    job.update(probe)  # moves the watermark almost two hours on: the window starting an hour before ev[0] closes
    late = {**ev[2], "sched_dep": ev[0]["sched_dep"]}
    job.update(late)
    assert job.n_late_ == 1  # it missed the closed window ...
    open_counts = {(s, o): acc[0] for s, w in job._open.items() for o, acc in w.items()}
    start = t0 - t0 % 3600
    expected = 1 + (ev[0]["origin"] == late["origin"]) + (probe["origin"] == late["origin"])
    assert open_counts[(start, late["origin"])] == expected  # ... and counts in the window still open


def test_state_is_bounded_over_a_month():
    month = flight_events(load_flights("2013-02-01", "2013-02-28"))
    job = WindowedCounts("2h", slide="1h", allowed_lateness="1h")
    emitted = 0
    for e in month:
        emitted += len(job.update(e))
    bound = 3 * ((7200 + 3600) // 3600 + 1)
    assert job.max_open_windows_ <= bound
    assert len(job._open) <= bound // 3 and len(job._starts) == len(job._open)
    assert emitted > 100 * bound


@pytest.mark.parametrize("bad, msg", [
    ("JFK", "must be a dict"),
    ({"flight_id": "x"}, "missing field"),
    ("dep_delay=str", "'dep_delay' must be int or null"),
    ("sched_dep=bad", "sched_dep='2013-03-07 10:00'"),
    ("sched_dep=impossible", "is not a real time"),
])
def test_malformed_events_rejected_without_touching_state(events, bad, msg):
    if bad == "dep_delay=str":
        bad = {**events[1], "dep_delay": "20"}
    elif bad == "sched_dep=bad":
        bad = {**events[1], "sched_dep": "2013-03-07 10:00"}
    elif bad == "sched_dep=impossible":
        bad = {**events[1], "sched_dep": "2013-02-30T10:00:00Z"}
    for job in (WindowedCounts("1h"), RollingCounts("2h")):
        job.update(events[0])
        before = (job.n_events_, dict(job._open)) if isinstance(job, WindowedCounts) else job.state_size_
        with pytest.raises(DataError, match=msg):
            job.update(bad)
        after = (job.n_events_, dict(job._open)) if isinstance(job, WindowedCounts) else job.state_size_
        assert before == after


def test_rolling_refuses_out_of_order(events):
    r = RollingCounts("2h")
    r.update(events[10])
    same_origin_earlier = next(e for e in events[:10] if e["origin"] == events[10]["origin"] and e["sched_dep"] < events[10]["sched_dep"])
    with pytest.raises(DataError, match="older than the last event"):
        r.update(same_origin_earlier)


def test_bad_configuration(days):
    with pytest.raises(ConfigError, match="size='soon'"):
        WindowedCounts("soon")
    with pytest.raises(ConfigError, match="whole multiple"):
        WindowedCounts("1h", slide="25min")
    with pytest.raises(ConfigError, match="late must be"):
        WindowedCounts("1h", late="keep")
    with pytest.raises(ConfigError, match="allowed_lateness"):
        WindowedCounts("1h", allowed_lateness="-1h")
    with pytest.raises(ConfigError, match="window="):
        RollingCounts("0s")
    with pytest.raises(ConfigError, match="engine must be"):
        batch_window_counts(days, engine="polars")
    with pytest.raises(DataError, match="missing columns"):
        batch_window_counts(days.drop(columns=["origin"]))
    with pytest.raises(DataError, match="sorted by sched_dep"):
        batch_rolling_counts(days.iloc[::-1])
