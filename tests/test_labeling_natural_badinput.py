"""Every public entry point of mlsys.labeling.natural refuses bad input with a named mlsys error that names the input.

Issue 9 item 10 (`arrival_times` given airports without `tzone` raised a raw KeyError), then the same classes over
every function: None, wrong types, missing columns, naive or missing timestamps, impossible clock times, unknown
time zones, numbers where a duration is due (pd.Timedelta(2) is 2 ns), empty events, bad quantiles and grids,
clashing columns in a join, and a streaming joiner whose state must not move on a refused event.
"""
import numpy as np
import pandas as pd
import pytest

import mlsys.labeling.natural as N
from mlsys.core import ConfigError, DataError, MlsysError, SchemaError
from mlsys.datasets import load_airports, load_flights


@pytest.fixture(scope="module")
def data():
    f = load_flights("2013-01-01", "2013-01-01").head(40).reset_index(drop=True)
    return f, load_airports()


@pytest.fixture(scope="module")
def events(data):
    return N.label_events(*data)


T0 = pd.Timestamp("2013-01-01 10:00", tz="UTC")


def cases(f, ap, ev):
    preds = ev[["flight_id", "predict_at"]].assign(p_late=0.3)
    naive = f.assign(sched_dep_local=f["sched_dep_local"].dt.tz_localize(None))
    return [
        # ---- the case
        ("arrival airports without tzone", N.arrival_times, dict(flights=f, airports=ap.drop(columns="tzone")), SchemaError, "airports lacks column \\['tzone'\\]"),
        # ---- dest_timezones
        ("tz airports None", N.dest_timezones, dict(airports=None, dests=["ORD"]), DataError, "airports must be a pandas DataFrame, got NoneType"),
        ("tz airports without faa", N.dest_timezones, dict(airports=ap.drop(columns="faa"), dests=["ORD"]), SchemaError, "airports lacks column \\['faa'\\]"),
        ("tz dests None", N.dest_timezones, dict(airports=ap, dests=None), DataError, "dests must be a list of airport codes, got NoneType"),
        ("tz dests str", N.dest_timezones, dict(airports=ap, dests="ORD"), DataError, "dests must be a list of airport codes, got str"),
        ("tz dests 0-d", N.dest_timezones, dict(airports=ap, dests=np.array("ORD")), DataError, "dests must be a list"),
        ("tz dests empty", N.dest_timezones, dict(airports=ap, dests=[]), DataError, "dests is empty"),
        ("tz unknown dest", N.dest_timezones, dict(airports=ap, dests=["ZZZ"]), DataError, "no time zone for destination\\(s\\) \\['ZZZ'\\]"),
        ("tz bad zone", N.dest_timezones, dict(airports=ap.assign(tzone="Mars/Olympus"), dests=["ORD"]), DataError, "unknown time zone\\(s\\) \\[\\('ORD', 'Mars/Olympus'\\)\\]"),
        ("tz traversal zone", N.dest_timezones, dict(airports=ap.assign(tzone="../../etc/passwd"), dests=["ORD"]), DataError, "unknown time zone"),
        ("tz zone number", N.dest_timezones, dict(airports=ap.assign(tzone=5), dests=["ORD"]), DataError, "unknown time zone"),
        # ---- arrival_times / label_events on bad flights
        ("arr flights None", N.arrival_times, dict(flights=None, airports=ap), DataError, "flights must be a DataFrame, got NoneType"),
        ("arr flights empty", N.arrival_times, dict(flights=f.iloc[:0], airports=ap), DataError, "flights is empty"),
        ("arr flights missing column", N.arrival_times, dict(flights=f.drop(columns="sched_arr_time"), airports=ap), SchemaError, "flights lacks column\\(s\\) \\['sched_arr_time'\\]"),
        ("arr naive local", N.arrival_times, dict(flights=naive, airports=ap), DataError, "flights\\['sched_dep_local'\\] has no time zone"),
        ("arr naive utc", N.arrival_times, dict(flights=f.assign(sched_dep=f["sched_dep"].dt.tz_localize(None)), airports=ap), DataError, "flights\\['sched_dep'\\] has no time zone"),
        ("arr text times", N.arrival_times, dict(flights=f.assign(sched_dep=f["sched_dep"].astype(str)), airports=ap), DataError, "flights\\['sched_dep'\\] must be tz-aware timestamps"),
        ("arr NaT departure", N.arrival_times, dict(flights=f.assign(sched_dep=f["sched_dep"].where(f.index > 0)), airports=ap), DataError, "flights\\['sched_dep'\\] has 1 missing times"),
        ("arr NaN arrival clock", N.arrival_times, dict(flights=f.assign(sched_arr_time=f["sched_arr_time"].where(f.index > 0)), airports=ap), DataError, "flights\\['sched_arr_time'\\] has 1 missing values"),
        ("arr impossible clock", N.arrival_times, dict(flights=f.assign(sched_arr_time=f["sched_arr_time"].where(f.index > 0, 2575)), airports=ap), DataError, "no HHMM clock time, e.g. 2575"),
        ("arr clock 2400", N.arrival_times, dict(flights=f.assign(sched_arr_time=f["sched_arr_time"].where(f.index > 0, 2400)), airports=ap), DataError, "no HHMM clock time"),
        ("arr negative clock", N.arrival_times, dict(flights=f.assign(sched_arr_time=f["sched_arr_time"].where(f.index > 0, -5)), airports=ap), DataError, "no HHMM clock time"),
        ("arr fractional clock", N.arrival_times, dict(flights=f.assign(sched_arr_time=f["sched_arr_time"].astype(float).where(f.index > 0, 830.5)), airports=ap), DataError, "no HHMM clock time"),
        ("arr text clock", N.arrival_times, dict(flights=f.assign(sched_arr_time=f["sched_arr_time"].astype(str)), airports=ap), DataError, "must be HHMM integers, got dtype"),
        ("arr text delay", N.arrival_times, dict(flights=f.assign(arr_delay="late"), airports=ap), DataError, "flights\\['arr_delay'\\] must be minutes"),
        ("events lead number", N.label_events, dict(flights=f, airports=ap, lead=2), ConfigError, "lead=2 is not a duration; give a string such as '2h'"),
        ("events lead float", N.label_events, dict(flights=f, airports=ap, lead=2.5), ConfigError, "lead=2.5 is not a duration"),
        ("events lead bool", N.label_events, dict(flights=f, airports=ap, lead=True), ConfigError, "lead=True is not a duration"),
        ("events lead None", N.label_events, dict(flights=f, airports=ap, lead=None), ConfigError, "lead=None is not a duration"),
        ("events lead text", N.label_events, dict(flights=f, airports=ap, lead="soon"), ConfigError, "lead='soon' is not a duration"),
        ("events lead negative", N.label_events, dict(flights=f, airports=ap, lead="-2h"), ConfigError, "must be a non-negative duration"),
        ("events lead NaT", N.label_events, dict(flights=f, airports=ap, lead=pd.NaT), ConfigError, "lead=NaT is not a duration|must be a non-negative"),
        ("events cancelled NA", N.label_events, dict(flights=f.assign(cancelled=pd.array([None] + [False] * 39, dtype="boolean")), airports=ap), DataError, "flights\\['cancelled'\\] has 1 missing values"),
        ("events cancelled text", N.label_events, dict(flights=f.assign(cancelled="no"), airports=ap), DataError, "flights\\['cancelled'\\] must be boolean"),
        ("events is_late numbers", N.label_events, dict(flights=f.assign(is_late=0.5), airports=ap), DataError, "flights\\['is_late'\\] must be boolean"),
        ("events airports None", N.label_events, dict(flights=f, airports=None), DataError, "airports must be a pandas DataFrame"),
        # ---- flight_ids
        ("ids None", N.flight_ids, dict(flights=None), DataError, "flights must be a DataFrame"),
        ("ids missing column", N.flight_ids, dict(flights=f.drop(columns="carrier")), SchemaError, "flights lacks column\\(s\\) \\['carrier'\\]"),
        ("ids naive", N.flight_ids, dict(flights=naive), DataError, "flights\\['sched_dep_local'\\] has no time zone"),
        ("ids NaN carrier", N.flight_ids, dict(flights=f.assign(carrier=f["carrier"].astype(object).where(f.index > 0))), DataError, "flights\\['carrier'\\] has 1 missing values"),
        ("ids duplicate", N.flight_ids, dict(flights=pd.concat([f.head(2), f.head(1)])), DataError, "flight ids are not unique"),
        # ---- feedback_loop_table
        ("fb events None", N.feedback_loop_table, dict(events=None), DataError, "events must be a DataFrame \\(from label_events\\), got NoneType"),
        ("fb events empty", N.feedback_loop_table, dict(events=ev.iloc[:0]), DataError, "events is empty"),
        ("fb lacks loop_hours", N.feedback_loop_table, dict(events=ev.drop(columns="loop_hours")), SchemaError, "events lacks column 'loop_hours'"),
        ("fb text loop_hours", N.feedback_loop_table, dict(events=ev.assign(loop_hours="3")), DataError, "events\\['loop_hours'\\] must be hours"),
        ("fb inf loop_hours", N.feedback_loop_table, dict(events=ev.assign(loop_hours=np.inf)), DataError, "infinite"),
        ("fb text label_at", N.feedback_loop_table, dict(events=ev.assign(label_at="soon")), DataError, "events\\['label_at'\\] must be timestamps"),
        ("fb quantiles None", N.feedback_loop_table, dict(events=ev, quantiles=None), ConfigError, "quantiles must be a list of numbers in \\[0, 1\\], got None"),
        ("fb quantiles float", N.feedback_loop_table, dict(events=ev, quantiles=0.5), ConfigError, "quantiles must be a list"),
        ("fb quantiles str", N.feedback_loop_table, dict(events=ev, quantiles="0.5"), ConfigError, "quantiles must be a list"),
        ("fb quantiles nan", N.feedback_loop_table, dict(events=ev, quantiles=[np.nan]), ConfigError, "quantiles must lie in \\[0, 1\\]"),
        ("fb quantiles bool", N.feedback_loop_table, dict(events=ev, quantiles=[True]), ConfigError, "quantiles must lie in \\[0, 1\\]"),
        ("fb quantiles > 1", N.feedback_loop_table, dict(events=ev, quantiles=[1.5]), ConfigError, "quantiles must lie in \\[0, 1\\]"),
        ("fb quantiles text", N.feedback_loop_table, dict(events=ev, quantiles=["median"]), ConfigError, "quantiles must lie"),
        ("fb by missing", N.feedback_loop_table, dict(events=ev, by="carrier"), DataError, "by: column\\(s\\) \\['carrier'\\] not in events"),
        ("fb by int", N.feedback_loop_table, dict(events=ev, by=3), DataError, "by must be a column name or a list of column names, got 3"),
        ("fb by frame", N.feedback_loop_table, dict(events=ev, by=pd.DataFrame()), DataError, "by must be a column name"),
        # ---- label_arrival_curve
        ("curve events None", N.label_arrival_curve, dict(events=None), DataError, "events must be a DataFrame"),
        ("curve events empty", N.label_arrival_curve, dict(events=ev.iloc[:0]), DataError, "events is empty"),
        ("curve lacks loop_hours", N.label_arrival_curve, dict(events=ev.drop(columns="loop_hours")), SchemaError, "events lacks column 'loop_hours'"),
        ("curve hours str", N.label_arrival_curve, dict(events=ev, hours="x"), ConfigError, "hours must be a non-empty increasing sequence of numbers, got 'x'"),
        ("curve hours text list", N.label_arrival_curve, dict(events=ev, hours=["1", "2"]), ConfigError, "hours must be a non-empty increasing sequence of numbers"),
        ("curve hours dict", N.label_arrival_curve, dict(events=ev, hours={}), ConfigError, "hours must be"),
        ("curve hours nan", N.label_arrival_curve, dict(events=ev, hours=[0, np.nan]), ConfigError, "of finite numbers"),
        ("curve hours inf", N.label_arrival_curve, dict(events=ev, hours=[0, np.inf]), ConfigError, "of finite numbers"),
        ("curve hours decreasing", N.label_arrival_curve, dict(events=ev, hours=[3, 1]), ConfigError, "increasing"),
        ("curve hours empty", N.label_arrival_curve, dict(events=ev, hours=[]), ConfigError, "non-empty"),
        ("curve hours scalar", N.label_arrival_curve, dict(events=ev, hours=5), ConfigError, "non-empty increasing sequence"),
        ("curve hours bools", N.label_arrival_curve, dict(events=ev, hours=[False, True]), ConfigError, "sequence of numbers"),
        ("curve by missing", N.label_arrival_curve, dict(events=ev, by="nope"), SchemaError, "events lacks column \\['nope'\\]"),
        ("curve by list", N.label_arrival_curve, dict(events=ev, by=[]), DataError, "by must be a column name \\(a non-empty str\\), got \\[\\]"),
        ("curve by number", N.label_arrival_curve, dict(events=ev, by=0), DataError, "by must be a column name"),
        # ---- join_labels
        ("join on list", N.join_labels, dict(predictions=preds, labels=ev, on=["flight_id"]), DataError, "on must be a column name \\(a non-empty str\\), got \\['flight_id'\\]"),
        ("join on None", N.join_labels, dict(predictions=preds, labels=ev, on=None), DataError, "on must be a column name"),
        ("join predictions None", N.join_labels, dict(predictions=None, labels=ev), DataError, "predictions must be a DataFrame, got NoneType"),
        ("join labels list", N.join_labels, dict(predictions=preds, labels=[]), DataError, "labels must be a DataFrame, got list"),
        ("join lacks label_at", N.join_labels, dict(predictions=preds, labels=ev.drop(columns="label_at")), SchemaError, "labels lacks column\\(s\\) \\['label_at'\\]"),
        ("join NaN keys", N.join_labels, dict(predictions=preds.assign(flight_id=preds["flight_id"].where(preds.index > 0)), labels=ev), DataError, "predictions has 1 missing 'flight_id' values"),
        ("join naive predict_at", N.join_labels, dict(predictions=preds.assign(predict_at=preds["predict_at"].dt.tz_localize(None)), labels=ev), DataError, "predictions\\['predict_at'\\] has no time zone"),
        ("join NaT predict_at", N.join_labels, dict(predictions=preds.assign(predict_at=preds["predict_at"].where(preds.index > 0)), labels=ev), DataError, "predictions\\['predict_at'\\] has 1 missing times"),
        ("join naive label_at", N.join_labels, dict(predictions=preds, labels=ev.assign(label_at=ev["label_at"].dt.tz_localize(None))), DataError, "labels\\['label_at'\\] has no time zone"),
        ("join text label_at", N.join_labels, dict(predictions=preds, labels=ev.assign(label_at="later")), DataError, "labels\\['label_at'\\] must be tz-aware timestamps"),
        ("join clashing columns", N.join_labels, dict(predictions=ev, labels=ev), SchemaError, "predictions already has column\\(s\\) \\['label', 'label_at', 'loop_hours'\\]"),
        ("join as_of naive", N.join_labels, dict(predictions=preds, labels=ev, as_of="2013-03-10"), DataError, "must be time-zone aware"),
        ("join as_of text", N.join_labels, dict(predictions=preds, labels=ev, as_of="not-a-time"), DataError, "as_of='not-a-time' is not a time"),
        ("join as_of number", N.join_labels, dict(predictions=preds, labels=ev, as_of=1356998400), DataError, "as_of=1356998400 is not a time"),
        ("join as_of bool", N.join_labels, dict(predictions=preds, labels=ev, as_of=True), DataError, "as_of=True is not a time"),
        ("join as_of NaT", N.join_labels, dict(predictions=preds, labels=ev, as_of=pd.NaT), DataError, "as_of=NaT is not a time"),
        ("join as_of NaN", N.join_labels, dict(predictions=preds, labels=ev, as_of=float("nan")), DataError, "as_of=nan is not a time"),
        ("join as_of early", N.join_labels, dict(predictions=preds, labels=ev, as_of=pd.Timestamp("2000-01-01", tz="UTC")), DataError, "dated after as_of"),
        # ---- event_stream
        ("stream predictions None", N.event_stream, dict(predictions=None, labels=ev), DataError, "predictions must be a pandas DataFrame, got NoneType"),
        ("stream labels None", N.event_stream, dict(predictions=preds, labels=None), DataError, "labels must be a pandas DataFrame"),
        ("stream lacks score", N.event_stream, dict(predictions=preds.drop(columns="p_late"), labels=ev), SchemaError, "predictions lacks column \\['p_late'\\]"),
        ("stream score None", N.event_stream, dict(predictions=preds, labels=ev, score=None), DataError, "score must be a column name"),
        ("stream on list", N.event_stream, dict(predictions=preds, labels=ev, on=[]), DataError, "on must be a column name"),
        ("stream naive", N.event_stream, dict(predictions=preds.assign(predict_at=preds["predict_at"].dt.tz_localize(None)), labels=ev), DataError, "has no time zone"),
        # ---- LabelJoiner
        ("joiner window number", lambda **k: N.LabelJoiner(**k).flush(), dict(window=24), ConfigError, "window=24 is not a duration"),
        ("joiner window None", lambda **k: N.LabelJoiner(**k).flush(), dict(window=None), ConfigError, "window=None is not a duration"),
        ("joiner window negative", lambda **k: N.LabelJoiner(**k).flush(), dict(window="-1h"), ConfigError, "non-negative"),
        ("joiner event None", lambda **k: N.LabelJoiner().update(**k), dict(event=None), DataError, "event must be a dict with kind, id and time, got NoneType"),
        ("joiner event list", lambda **k: N.LabelJoiner().update(**k), dict(event=["prediction", "a", T0]), DataError, "event must be a dict"),
        ("joiner lacks time", lambda **k: N.LabelJoiner().update(**k), dict(event={"kind": "label", "id": "x"}), DataError, "event lacks field 'time'"),
        ("joiner kind", lambda **k: N.LabelJoiner().update(**k), dict(event={"kind": "score", "id": "x", "time": T0}), DataError, "event kind must be 'prediction' or 'label', got 'score'"),
        ("joiner kind frame", lambda **k: N.LabelJoiner().update(**k), dict(event={"kind": pd.DataFrame(), "id": "x", "time": T0}), DataError, "event kind must be"),
        ("joiner id list", lambda **k: N.LabelJoiner().update(**k), dict(event={"kind": "label", "id": ["x"], "time": T0}), DataError, "event id must be hashable"),
        ("joiner id None", lambda **k: N.LabelJoiner().update(**k), dict(event={"kind": "label", "id": None, "time": T0}), DataError, "event id is missing"),
        ("joiner id NaN", lambda **k: N.LabelJoiner().update(**k), dict(event={"kind": "label", "id": float("nan"), "time": T0}), DataError, "event id is missing"),
        ("joiner time naive", lambda **k: N.LabelJoiner().update(**k), dict(event={"kind": "label", "id": "x", "time": pd.Timestamp("2013-01-01")}), DataError, "event time=2013-01-01 00:00:00 must be time-zone aware"),
        ("joiner time naive str", lambda **k: N.LabelJoiner().update(**k), dict(event={"kind": "label", "id": "x", "time": "2013-01-01 10:00"}), DataError, "must be time-zone aware"),
        ("joiner time text", lambda **k: N.LabelJoiner().update(**k), dict(event={"kind": "label", "id": "x", "time": "x"}), DataError, "event time='x' is not a time"),
        ("joiner time number", lambda **k: N.LabelJoiner().update(**k), dict(event={"kind": "label", "id": "x", "time": 0}), DataError, "event time=0 is not a time"),
        ("joiner time None", lambda **k: N.LabelJoiner().update(**k), dict(event={"kind": "label", "id": "x", "time": None}), DataError, "event time=None is not a time"),
        ("joiner time NaT", lambda **k: N.LabelJoiner().update(**k), dict(event={"kind": "label", "id": "x", "time": pd.NaT}), DataError, "event time=NaT is not a time"),
    ]


def test_bad_input_is_named(data, events):
    f, ap = data
    failures = []
    for name, fn, kwargs, exc, fragment in cases(f, ap, events):
        try:
            fn(**kwargs)
        except exc as e:
            import re
            if not isinstance(e, MlsysError) or not re.search(fragment, str(e)):
                failures.append(f"{name}: {type(e).__name__}: {e}")
        except Exception as e:
            failures.append(f"{name}: raw {type(e).__name__}: {e}")
        else:
            failures.append(f"{name}: returned instead of raising {exc.__name__}")
    assert not failures, "\n".join(failures)


def test_every_public_entry_point_is_swept(data, events):
    names = {getattr(c[1], "__name__", "") for c in cases(*data, events)}
    public = {n for n in N.__all__ if callable(getattr(N, n))} - {"LabelJoiner"}
    assert public <= names, sorted(public - names)


def test_a_refused_event_leaves_the_joiner_as_it_was():
    j = N.LabelJoiner("1h")
    j.update({"kind": "prediction", "id": "a", "time": T0})
    with pytest.raises(DataError, match="event kind"):
        # before: the clock moved to +5h and "a" expired before the kind was checked
        j.update({"kind": "scroe", "id": "b", "time": T0 + pd.Timedelta("5h")})
    assert j.now_ == T0 and list(j.pending_) == ["a"]
    out = j.update({"kind": "label", "id": "a", "time": T0 + pd.Timedelta("30min"), "label": True})
    assert [r["status"] for r in out] == ["available"]
    with pytest.raises(DataError, match="already received"):
        j.update({"kind": "prediction", "id": "c", "time": T0 + pd.Timedelta("40min")})
        j.update({"kind": "prediction", "id": "c", "time": T0 + pd.Timedelta("50min")})
    assert j.now_ == T0 + pd.Timedelta("40min")


def test_times_in_other_zones_and_iso_strings_are_accepted():
    j = N.LabelJoiner("2h")
    j.update({"kind": "prediction", "id": 1, "time": "2013-01-01T10:00:00Z"})
    out = j.update({"kind": "label", "id": 1, "time": pd.Timestamp("2013-01-01 06:30", tz="America/New_York"), "label": False})
    assert out[0]["status"] == "available"


def test_an_all_missing_label_time_column_is_accepted(events):
    preds = events[["flight_id", "predict_at"]]
    never = events.assign(label_at=pd.Series(pd.NaT, index=events.index))  # every flight cancelled: no zone left
    j = N.join_labels(preds, never)
    assert (j["label_status"] == "never").all()
