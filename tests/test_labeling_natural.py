"""Tests of mlsys.labeling.natural: arrival instants, label events, as-of joins, the streaming joiner."""
import numpy as np
import pandas as pd
import pytest

from mlsys.core import ConfigError, DataError
from mlsys.datasets import load_airports, load_flights
from mlsys.labeling.natural import (
    LabelJoiner,
    arrival_times,
    event_stream,
    feedback_loop_table,
    join_labels,
    label_arrival_curve,
    label_events,
)


@pytest.fixture(scope="module")
def data():
    # includes the 2013-03-10 spring-forward and 2013-11-03 fall-back days
    f = pd.concat([load_flights("2013-03-09", "2013-03-11"), load_flights("2013-11-02", "2013-11-04")], ignore_index=True)
    return f, load_airports()


@pytest.fixture(scope="module")
def events(data):
    return label_events(*data, lead="2h")


def test_actual_arrival_matches_recorded_local_clock(data):
    f, a = data
    arr = arrival_times(f, a)
    ok = arr["actual_arr"].notna() & f["arr_time"].notna()
    hits = 0
    for zone, idx in arr[ok].groupby("dest_tz").groups.items():
        local = arr.loc[idx, "actual_arr"].dt.tz_convert(zone)
        hits += int(((local.dt.hour * 100 + local.dt.minute) == f.loc[idx, "arr_time"] % 2400).sum())
    assert hits / ok.sum() > 0.999
    # actual gate-to-gate time = air time + taxi: never shorter than the air time by much
    dep = f["sched_dep"] + pd.to_timedelta(f["dep_delay"].astype(float), unit="min")
    gate = (arr["actual_arr"] - dep).dt.total_seconds() / 60
    taxi = (gate - f["air_time"].astype(float)).dropna()
    assert taxi.median() == pytest.approx(28, abs=8)


def test_label_events_outcomes_and_never_labels(data, events):
    f, _ = data
    assert len(events) == len(f) and events["flight_id"].is_unique
    cancelled = events["outcome"] == "cancelled"
    assert (cancelled.to_numpy() == f["cancelled"].to_numpy()).all()
    never = events["outcome"] != "arrived"
    assert events.loc[never, "label_at"].isna().all() and events.loc[never, "label"].isna().all()
    assert events.loc[~never, "label"].notna().all()
    lead = (f["sched_dep"] - events["predict_at"]).dt.total_seconds().to_numpy()
    assert (lead == 7200).all()
    assert (events["loop_hours"].dropna() > 2).all()


def test_feedback_loop_table_counts(events):
    t = feedback_loop_table(events, by="outcome")
    assert t.loc["cancelled", "labeled share"] == 0 and t.loc["arrived", "labeled share"] == 1
    assert t["predictions"].sum() == len(events)
    assert t.loc["cancelled", "never labeled"] == (events["outcome"] == "cancelled").sum()
    overall = feedback_loop_table(events, quantiles=[0.5])
    assert overall.loc["all", "p50 loop (h)"] == pytest.approx(events["loop_hours"].median())
    with pytest.raises(ConfigError, match="quantiles"):
        feedback_loop_table(events, quantiles=[1.5])
    with pytest.raises(DataError, match="loop_hours"):
        feedback_loop_table(events.drop(columns="loop_hours"))


def test_label_arrival_curve_is_the_ecdf(events):
    c = label_arrival_curve(events, hours=[0, 2, 5, 100])["all"]
    h = events["loop_hours"]
    assert c.tolist() == [0.0, 0.0, float((h <= 5).sum() / len(h)), float(h.notna().mean())]
    with pytest.raises(ConfigError, match="increasing"):
        label_arrival_curve(events, hours=[3, 1])


def test_join_as_of_hides_future_labels(events):
    preds = events[["flight_id", "predict_at"]].assign(score=0.3)
    t = events["label_at"].dropna().median()
    j = join_labels(preds[preds["predict_at"] <= t], events, as_of=t)
    avail = j["label_status"] == "available"
    assert (j.loc[avail, "label_at"] <= t).all()
    assert j.loc[~avail, "label"].isna().all()
    # statuses partition the predictions and agree with the label times
    exp_pending = events.set_index("flight_id").loc[j["flight_id"], "label_at"].gt(t).to_numpy()
    assert ((j["label_status"] == "pending").to_numpy() == exp_pending).all()
    full = join_labels(preds, events)
    assert set(full["label_status"].unique()) == {"available", "never"}
    assert (full["label_status"] == "never").sum() == events["label_at"].isna().sum()


def test_join_missing_label_rows_are_never(events):
    preds = events[["flight_id", "predict_at"]]
    j = join_labels(preds, events.iloc[:10])
    assert (j["label_status"] == "available").sum() == events.iloc[:10]["label_at"].notna().sum()


@pytest.mark.parametrize(
    "kwargs,msg",
    [
        ({"as_of": "2013-03-10"}, "time-zone aware"),
        ({"as_of": pd.Timestamp("2000-01-01", tz="UTC")}, "dated after as_of"),
    ],
)
def test_join_bad_input(events, kwargs, msg):
    with pytest.raises(DataError, match=msg):
        join_labels(events[["flight_id", "predict_at"]], events, **kwargs)


def test_join_rejects_duplicates_and_missing_columns(events):
    p = events[["flight_id", "predict_at"]]
    with pytest.raises(DataError, match="duplicate"):
        join_labels(pd.concat([p, p.head(1)]), events)
    with pytest.raises(DataError, match="label_at"):
        join_labels(p, events.drop(columns="label_at"))


def test_streaming_joiner_equals_batch_join(events):
    preds = events[["flight_id", "predict_at"]].assign(p_late=0.2)
    j = LabelJoiner("168h")
    rows = [r for e in event_stream(preds, events) for r in j.update(e)] + j.flush()
    s = pd.DataFrame(rows).set_index("id")
    b = join_labels(preds, events).set_index("flight_id")
    assert len(s) == len(b)
    expired = s["status"] == "expired"
    assert (expired == (b.loc[s.index, "label_status"] == "never")).all()
    got = s.loc[~expired, "label"].astype(bool)
    assert (got == b.loc[got.index, "label"].astype(bool)).all()
    assert j.orphans_ == 0 and not j.pending_


def test_streaming_joiner_window_expires_and_counts_orphans():
    t0 = pd.Timestamp("2013-01-01 10:00", tz="UTC")
    j = LabelJoiner("1h")
    assert j.update({"kind": "prediction", "id": "a", "time": t0, "score": 0.9}) == []
    out = j.update({"kind": "label", "id": "a", "time": t0 + pd.Timedelta("2h"), "label": True})
    assert [r["status"] for r in out] == ["expired"]  # expired before its (late) label came
    assert j.orphans_ == 1
    with pytest.raises(DataError, match="already received"):
        j.update({"kind": "prediction", "id": "b", "time": t0 + pd.Timedelta("3h")})
        j.update({"kind": "prediction", "id": "b", "time": t0 + pd.Timedelta("3h")})
    with pytest.raises(DataError, match="lacks field 'time'"):
        j.update({"kind": "label", "id": "x"})


def test_label_events_bad_input(data):
    f, a = data
    with pytest.raises(ConfigError, match="lead"):
        label_events(f, a, lead="-2h")
    with pytest.raises(DataError, match="sched_arr_time"):
        label_events(f.drop(columns="sched_arr_time"), a)
    with pytest.raises(DataError, match="no time zone"):
        label_events(f, a[a["faa"] != "ORD"])
    with pytest.raises(DataError, match="empty"):
        arrival_times(f.iloc[:0], a)
    assert np.isfinite(label_events(f.head(5), a)["loop_hours"]).all()
