"""Batch vs stream: equal results, windows, watermarks and late events, bounded state, bad input."""
import math

import numpy as np
import pandas as pd
import pytest

from mlsys.core import ConfigError, DataError
from mlsys.data.streaming import (
    WINDOW_COLUMNS,
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
    with pytest.raises(DataError, match=r"lacks column \['origin'\]"):
        batch_window_counts(days.drop(columns=["origin"]))
    with pytest.raises(DataError, match="sorted by sched_dep"):
        batch_rolling_counts(days.iloc[::-1])


# ---------------------------------------------------------------- bad input: the issue's cases, then every entry point


def test_issue_event_time_of_an_empty_dict_is_named():
    with pytest.raises(DataError, match="has no 'sched_dep' field"):
        event_time({})


def test_issue_event_time_refuses_a_naive_time():
    "A naive ISO time was read in the machine's local zone (so results depended on TZ); it is refused."
    with pytest.raises(DataError, match="has no UTC offset, so it would be read in this machine's time zone"):
        event_time({"sched_dep": "2013-07-01T22:59:00"})
    assert event_time({"sched_dep": "2013-07-01T22:59:00Z"}) == event_time({"sched_dep": "2013-07-01T18:59:00-04:00"}) \
        == int(pd.Timestamp("2013-07-01T22:59:00Z").timestamp())


def test_issue_threshold_x_is_named(days):
    with pytest.raises(ConfigError, match="threshold must be a finite number of minutes.*'x'"):
        batch_window_counts(days, threshold="x")


def test_issue_drop_flights_none_and_one_string_are_refused(days):
    fid = flight_events(days.head(1))[0]["flight_id"]
    with pytest.raises(DataError, match="flight_ids_to_drop must be a collection.*got NoneType"):
        drop_flights(days, None)
    with pytest.raises(DataError, match=f"flight_ids_to_drop is a single str '{fid}', not a collection"):
        drop_flights(days, fid)  # it iterated the id's characters and dropped nothing
    assert len(drop_flights(days, [fid])) == len(days) - 1


@pytest.mark.parametrize("event, msg", [
    (None, "event must be a dict"), ("2013-07-01T22:59:00Z", "event must be a dict"),
    ({"sched_dep": None}, "must be an ISO time string, got NoneType"), ({"sched_dep": 1372719540}, "got int"),
    ({"sched_dep": "soon"}, "is not an ISO time"), ({"sched_dep": ""}, "is not an ISO time"),
    ({"sched_dep": "2013-02-30T10:00:00Z"}, "is not an ISO time"), ({"sched_dep": "2013-07-01"}, "has no UTC offset"),
    ({"flight_id": "F1", "sched_dep": "2013-07-01T10:00:00"}, "event 'F1'.*has no UTC offset"),
])
def test_event_time_refuses(event, msg):
    with pytest.raises(DataError, match=msg):
        event_time(event)


@pytest.mark.parametrize("value, msg", [
    (None, "is not a duration"), (True, "is not a duration"), (3600, "is a bare number"),
    (1.5, "bare number"), (np.int64(60), "bare number"), (math.nan, "is not a duration"), (math.inf, "is not a duration"),
    ("-1h", "must be a positive"), ("1.5s", "whole number of seconds"), ("400D", "longer than 366 days"),
    ("1000000000D", "is not a duration"), ([1], "is not a duration"), ("NaT", "is not a duration"),
])
def test_to_seconds_refuses(value, msg):
    with pytest.raises(ConfigError, match=msg):
        to_seconds(value, "size")


@pytest.mark.parametrize("threshold", ["x", None, True, math.nan, math.inf, [15]])
def test_threshold_is_checked_everywhere(days, threshold):
    for call in (lambda: batch_window_counts(days, threshold=threshold), lambda: batch_rolling_counts(days, threshold=threshold),
                 lambda: WindowedCounts(threshold=threshold), lambda: RollingCounts(threshold=threshold)):
        with pytest.raises(ConfigError, match="threshold must be a finite number"):
            call()


@pytest.mark.parametrize("change, msg", [
    (lambda d: None, "flights must be a pandas DataFrame, got NoneType"),
    (lambda d: d.to_dict("list"), "got dict"),
    (lambda d: d.iloc[:0], "flights is empty"),
    (lambda d: d.assign(sched_dep=d["sched_dep"].dt.tz_localize(None)), "has no time zone"),
    (lambda d: d.assign(sched_dep=d["sched_dep"].astype(str)), "must be tz-aware timestamps"),
    (lambda d: d.assign(sched_dep=d["sched_dep"].where(d.index != d.index[5])), "1 missing times"),
    (lambda d: d.assign(origin=None), "origin'\\] has .* missing or empty"),
    (lambda d: d.assign(dep_delay="5"), "must be numeric minutes"),
    (lambda d: d.assign(dep_delay=np.inf), "whole minutes"),
    (lambda d: d.assign(cancelled=np.nan), "must be bool without missing values"),
])
def test_batch_jobs_refuse_bad_tables(days, change, msg):
    for job in (batch_window_counts, batch_rolling_counts):
        with pytest.raises(DataError, match=msg):
            job(change(days))


def test_window_fan_out_is_bounded(days):
    'size="1D", slide="1s" copied every flight 86,400 times (memory exhaustion on a real table).'
    for call in (lambda: batch_window_counts(days, "1D", slide="1s"), lambda: WindowedCounts("1D", slide="1s")):
        with pytest.raises(ConfigError, match="puts each event in 86,400 windows; at most 1,000"):
            call()


def test_stream_job_inputs_are_named(events):
    job = WindowedCounts("1h")
    with pytest.raises(DataError, match="events must be an iterable of event dicts.*NoneType"):
        job.run(None)
    with pytest.raises(DataError, match="wrap a single event in a list"):
        job.run(events[0])
    with pytest.raises(DataError, match="rows must be a list of the window dicts"):
        job.to_frame(None)
    with pytest.raises(DataError, match=r"rows\[1\] is not a window result.*lacks \['cancelled'"):
        job.to_frame([{"origin": "JFK", "start": 0, "flights": 1, "delayed": 0, "cancelled": 0},
                      {"origin": "JFK", "start": 3600, "flights": 1, "delayed": 0}])
    with pytest.raises(ConfigError, match="late must be"):
        WindowedCounts(late=None)
    assert job.run([]).columns.tolist() == WINDOW_COLUMNS  # an empty stream is a normal state: no windows
    for bad, msg in [({**events[0], "dep_delay": 10**30}, "beyond"), ({**events[0], "sched_dep": "0001-01-01T00:00:00Z"}, "outside the years"),
                     ({**events[0], "sched_dep": "2013-01-01T10:00:00"}, "must look like"), ({**events[0], "origin": ""}, "empty string")]:
        for j in (WindowedCounts("1h"), RollingCounts("2h")):
            with pytest.raises(DataError, match=msg):
                j.update(bad)


@pytest.mark.parametrize("ids, msg", [
    (b"20130307-UA1545-EWR", "is a single bytes"),
    ({"flight_id": "x"}, "a single event\\?"),
    ([1, 2], "must hold flight id strings, got 1"),
    ([["a"]], "must hold flight id strings"),
    (5, "must be a collection"),
    (["19990101-XX1-JFK"], "1 of flight_ids_to_drop are not flights of this table"),
])
def test_drop_flights_refuses(days, ids, msg):
    with pytest.raises(DataError, match=msg):
        drop_flights(days, ids)


def test_drop_flights_needs_a_flights_table():
    with pytest.raises(DataError, match="flights must be a pandas DataFrame"):
        drop_flights(None, [])
