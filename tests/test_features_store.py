"""Feature store: point-in-time retrieval vs a brute-force oracle and vs merge_asof (every engine, every timestamp unit),
DST days, materialization into the online stores, catalog. Window features: tests/test_features_windows.py."""
import json
import uuid

import numpy as np
import pandas as pd
import pytest

from mlsys.core import ConfigError, DataError, IntegrityError, SchemaError
from mlsys.datasets import load_flights, load_planes, load_weather
from mlsys.features.online import RedisOnlineStore, SQLiteOnlineStore
from mlsys.features.store import (
    FeatureCatalog, FeatureStore, FeatureView, OfflineStore, UnknownFeatureError, build_flight_features, flight_feature_columns,
    flight_feature_known_at,
    history_rates,
)
from mlsys.features.windows import departure_events

BASE = pd.Timestamp("2013-11-03 04:00", tz="UTC")  # the night New York leaves daylight saving time


def oracle(feat, ent, ttl=None, keys=("k",)):
    "Brute force: latest row of the same entity at or before the event time; last written wins ties; TTL blanks."
    out = []
    for _, row in ent.iterrows():
        m = feat["ts"] <= row["event_time"]
        for k in keys:
            m &= feat[k] == row[k]
        cand = feat[m]
        if cand.empty:
            out.append(np.nan)
            continue
        last = cand[cand["ts"] == cand["ts"].max()].iloc[-1]
        too_old = ttl is not None and row["event_time"] - last["ts"] > pd.Timedelta(ttl)
        out.append(np.nan if too_old else last["x"])
    return np.array(out, dtype=float)


def random_case(rng, n_feat, n_ent, n_keys=4, step="20min", spread=16):
    feat = pd.DataFrame({
        "k": rng.choice([f"e{i}" for i in range(n_keys)], n_feat),
        "j": rng.choice(["p", "q"], n_feat),
        "ts": BASE + rng.integers(0, spread, n_feat) * pd.Timedelta(step),
        "x": rng.normal(size=n_feat).round(4),
    })
    ent = pd.DataFrame({
        "k": rng.choice([f"e{i}" for i in range(n_keys + 1)], n_ent),  # e{n_keys}: entity with no history
        "j": rng.choice(["p", "q"], n_ent),
        "event_time": BASE + rng.integers(-2, spread + 2, n_ent) * pd.Timedelta(step),
    })
    return feat, ent


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("ttl", [None, "40min"])
@pytest.mark.parametrize("engine", ["numpy", "duckdb"])
def test_pit_matches_oracle(tmp_path, seed, ttl, engine):
    rng = np.random.default_rng(seed)
    feat, ent = random_case(rng, n_feat=int(rng.integers(1, 80)), n_ent=60)
    store = OfflineStore(tmp_path)
    store.write(FeatureView("v", ("k",), ("x",), "ts", ttl=ttl), feat)
    got = store.get_historical_features(ent, ["v:x"], engine=engine)
    np.testing.assert_array_equal(got["x"].to_numpy(float), oracle(feat, ent, ttl))
    # the entity frame comes back unchanged, in order, with the feature added
    pd.testing.assert_frame_equal(got.drop(columns="x"), ent)


UNITS = ["s", "ms", "us", "ns"]
JITTER = {"s": [0], "ms": [0, 1], "us": [0, 1, 999], "ns": [0, 1, 100, 500, 900]}  # sub-step offsets, in ticks of the unit
STEP = pd.Timedelta("20min")


def _stamps(rng, unit, n, lo, hi):
    "n tz-aware times in `unit`: BASE + k * 20min + a small jitter, with many exact and sub-microsecond ties."
    base = BASE.as_unit(unit).asm8.view("i8")
    step = STEP.as_unit(unit).asm8.view("i8")
    ticks = base + rng.integers(lo, hi, n) * step + rng.choice(JITTER[unit], n)
    return pd.Series(ticks.astype(f"datetime64[{unit}]")).dt.tz_localize("UTC")


def reference(feat_parts, ent, view):
    "merge_asof answer, at nanosecond resolution: the last written row wins ties, TTL is merge_asof's tolerance."
    keys = list(view.entity)
    f = pd.concat(feat_parts, ignore_index=True)
    f = f.assign(**{k: f[k].astype("str") for k in keys}, __t=f[view.timestamp].dt.as_unit("ns"))
    f = f.drop_duplicates([*keys, "__t"], keep="last").sort_values("__t", kind="stable")
    e = ent.assign(**{k: ent[k].astype("str") for k in keys}, __e=ent["event_time"].dt.as_unit("ns"), __row=np.arange(len(ent)))
    e = e[[*keys, "__e", "__row"]].sort_values("__e", kind="stable")
    out = pd.merge_asof(e, f[[*keys, "__t", *view.features]], left_on="__e", right_on="__t", by=keys,
                        tolerance=view.ttl, allow_exact_matches=True)
    return out.sort_values("__row")


def oracle_case(rng, fu, eu, ttl, key_dtype):
    "Two views written in two appends each, and entity rows with unknown and missing keys, in units fu/eu."
    n_feat = int(rng.integers(1, 50))
    feat = pd.DataFrame({"k": rng.choice(["e0", "e1", "e2", "e3"], n_feat), "j": rng.choice(["p", "q"], n_feat),
                         "ts": _stamps(rng, fu, n_feat, 0, 12), "x": rng.normal(size=n_feat).round(4),
                         "y": rng.integers(0, 100, n_feat).astype(float)})
    n_ent = 60
    ent = pd.DataFrame({"k": rng.choice(["e0", "e1", "e2", "e3", "e9"], n_ent).astype(object),
                        "j": rng.choice(["p", "q", "r"], n_ent), "event_time": _stamps(rng, eu, n_ent, -2, 14)})
    ent.loc[rng.random(n_ent) < 0.05, "k"] = None  # a missing key matches nothing
    ent = ent.astype({"k": key_dtype, "j": key_dtype})
    views = [FeatureView("a", ("k",), ("x",), "ts", ttl=ttl), FeatureView("b", ("k", "j"), ("y",), "ts")]
    cut = int(rng.integers(0, n_feat + 1))
    return feat, ent, views, [feat.iloc[:cut], feat.iloc[cut:]]


@pytest.mark.parametrize("eu", UNITS)
@pytest.mark.parametrize("fu", UNITS)
def test_pit_equals_merge_asof_every_engine_and_unit(tmp_path, fu, eu):
    "Randomized: stored in unit fu, asked in unit eu, ties down to the nanosecond, TTL exactly at its edge, 2 views."
    rng = np.random.default_rng(UNITS.index(fu) * 4 + UNITS.index(eu))
    for case, (ttl, key_dtype) in enumerate([(None, "str"), ("20min", "category"), (STEP + pd.Timedelta(500, "ns"), "object"),
                                             ("40min", "str")]):
        feat, ent, views, parts = oracle_case(rng, fu, eu, ttl, key_dtype)
        store = OfflineStore(tmp_path / f"{case}", max_parts=1 + case % 2)  # max_parts=1: every append compacts
        for v in views:
            for part in parts:
                store.write(v, part, mode="append")
        for engine in ("numpy", "duckdb", "auto"):
            got = store.get_historical_features(ent, ["a:x", "b:y"], engine=engine, include_timestamps=True)
            for v in views:
                want = reference(parts, ent, v)
                f = v.features[0]
                np.testing.assert_array_equal(got[f].to_numpy(float), want[f].to_numpy(float),
                                              err_msg=f"{engine} view {v.name} fu={fu} eu={eu} ttl={ttl}")
                # the joined value's own timestamp: never after the as-of time, at the stored resolution
                ts = got[f"{v.name}__timestamp"]
                assert (ts.dropna() <= ent.loc[ts.notna(), "event_time"]).all()
                assert ts.dtype.unit == store._snapshot(v)["unit"]
            pd.testing.assert_frame_equal(got[list(ent.columns)], ent)
        # entity rows sorted by time take the one-pass rank path: same answers
        order = np.argsort(ent["event_time"].to_numpy(), kind="stable")
        got = store.get_historical_features(ent.iloc[order], ["a:x", "b:y"])
        for v in views:
            f = v.features[0]
            np.testing.assert_array_equal(got[f].to_numpy(float), reference(parts, ent, v)[f].to_numpy(float)[order])


@pytest.mark.parametrize("engine", ["numpy", "duckdb", "auto"])
def test_nanosecond_feature_is_never_from_the_future(tmp_path, engine):
    "The audited case: a feature stamped 12:00:00.000000900 is after an as-of time of 12:00:00.000000500."
    t0 = pd.Timestamp("2013-01-01 12:00", tz="UTC").as_unit("ns")
    feat = pd.DataFrame({"k": ["a", "a"], "ts": [t0 + pd.Timedelta(100, "ns"), t0 + pd.Timedelta(900, "ns")], "x": [1.0, 2.0]})
    ent = pd.DataFrame({"k": ["a", "a", "a"], "event_time": [t0 + pd.Timedelta(n, "ns") for n in (500, 900, 50)]})
    store = OfflineStore(tmp_path)
    store.write(FeatureView("v", ("k",), ("x",), "ts", ttl="1us"), feat)
    got = store.get_historical_features(ent, ["v:x"], engine=engine, include_timestamps=True)
    np.testing.assert_array_equal(got["x"].to_numpy(float), [1.0, 2.0, np.nan])
    assert got["v__timestamp"].iloc[0] == t0 + pd.Timedelta(100, "ns")
    # the TTL is compared in nanoseconds too: 1us after 100ns is fresh at 1100ns and stale at 1101ns
    late = pd.DataFrame({"k": ["a", "a"], "event_time": [t0 + pd.Timedelta(n, "ns") for n in (1900, 1901)]})
    np.testing.assert_array_equal(store.get_historical_features(late, ["v:x"], engine=engine)["x"].to_numpy(float),
                                  [2.0, np.nan])


def test_duckdb_ttl_on_nanosecond_timestamps(tmp_path):
    "Was a BinderException (TIMESTAMP WITH TIME ZONE - TIMESTAMPTZ_NS); now equal to the numpy engine and merge_asof."
    rng = np.random.default_rng(3)
    feat = pd.DataFrame({"k": rng.choice(list("abc"), 300), "x": rng.normal(size=300),
                         "ts": (BASE + pd.to_timedelta(rng.integers(0, 10**13, 300), unit="ns")).as_unit("ns")})
    ent = pd.DataFrame({"k": rng.choice(list("abcd"), 500),
                        "event_time": (BASE + pd.to_timedelta(rng.integers(0, 10**13, 500), unit="ns")).as_unit("ns")})
    assert str(feat.ts.dtype) == "datetime64[ns, UTC]"
    store = OfflineStore(tmp_path)
    view = FeatureView("v", ("k",), ("x",), "ts", ttl="17min")
    store.write(view, feat)
    duck = store.get_historical_features(ent, ["v:x"], engine="duckdb")
    np.testing.assert_array_equal(duck["x"].to_numpy(float), store.get_historical_features(ent, ["v:x"])["x"].to_numpy(float))
    np.testing.assert_array_equal(duck["x"].to_numpy(float), reference([feat], ent, view)["x"].to_numpy(float))
    assert duck["x"].notna().sum() > 50


def test_auto_engine_needs_no_fallback_for_many_keys_and_a_long_time_range(tmp_path):
    "The combined key no longer overflows int64 (keys x distinct times, not keys x nanoseconds): auto = numpy, exact."
    rng = np.random.default_rng(4)
    n = 4000
    feat = pd.DataFrame({"k": rng.integers(0, 3000, n), "x": rng.normal(size=n),
                         "ts": pd.Series(rng.integers(-2 * 10**18, 2 * 10**18, n).astype("datetime64[ns]")).dt.tz_localize("UTC")})
    ent = pd.DataFrame({"k": rng.integers(0, 3100, n),
                        "event_time": pd.Series(rng.integers(-2 * 10**18, 2 * 10**18, n).astype("datetime64[ns]")).dt.tz_localize("UTC")})
    store = OfflineStore(tmp_path)
    view = FeatureView("v", ("k",), ("x",), "ts", ttl="3650D")  # before: fell back to DuckDB, which crashed on this TTL
    store.write(view, feat)
    want = reference([feat], ent, view)["x"].to_numpy(float)
    assert 0 < np.isnan(want).sum() < n - 100
    assert store._prepared(view)[1].table is None  # too many keys x times for the dense table: the sorted search
    for engine in ("auto", "duckdb"):
        np.testing.assert_array_equal(store.get_historical_features(ent, ["v:x"], engine=engine)["x"].to_numpy(float), want)
    order = np.argsort(ent["event_time"].to_numpy(), kind="stable")  # entity rows sorted by time: the one-pass ranks
    got = store.get_historical_features(ent.iloc[order], ["v:x"])["x"].to_numpy(float)
    np.testing.assert_array_equal(got, want[order])


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("engine", ["numpy", "duckdb"])
def test_pit_composite_key_and_append(tmp_path, seed, engine):
    rng = np.random.default_rng(100 + seed)
    feat, ent = random_case(rng, n_feat=70, n_ent=50)
    store = OfflineStore(tmp_path)
    view = FeatureView("v2", ("k", "j"), ("x",), "ts")
    store.write(view, feat.iloc[:35])
    store.write(view, feat.iloc[35:], mode="append")  # later writes win ties, as in one write of the whole frame
    ent = ent.assign(k=ent.k.astype("category"))  # categorical keys take the code path of flights' columns
    got = store.get_historical_features(ent, ["v2:x"], engine=engine)
    np.testing.assert_array_equal(got["x"].to_numpy(float), oracle(feat, ent, keys=("k", "j")))


def test_pit_equals_merge_asof_on_dst_days(tmp_path):
    days = [("2013-03-10", "2013-03-10"), ("2013-11-03", "2013-11-03")]
    flights = pd.concat([load_flights(start=a, end=b) for a, b in days], ignore_index=True)
    weather = pd.concat([load_weather(start="2013-03-09", end="2013-03-11"),
                         load_weather(start="2013-11-02", end="2013-11-04")], ignore_index=True)
    store = OfflineStore(tmp_path)
    store.write(FeatureView("weather", ("origin",), ("temp", "visib"), "time_hour"), weather)
    got = store.get_historical_features(flights[["origin", "sched_dep", "time_hour"]], ["weather"],
                                        timestamp_col="sched_dep", include_timestamps=True)
    duck = store.get_historical_features(flights[["origin", "sched_dep", "time_hour"]], ["weather"],
                                         timestamp_col="sched_dep", include_timestamps=True, engine="duckdb")
    pd.testing.assert_frame_equal(got, duck, check_dtype=False)
    w = weather.assign(origin=weather.origin.astype(str)).sort_values("time_hour")
    ref = pd.merge_asof(flights[["origin", "sched_dep"]].assign(origin=lambda d: d.origin.astype(str))
                        .reset_index().sort_values("sched_dep"), w[["origin", "time_hour", "temp", "visib"]],
                        left_on="sched_dep", right_on="time_hour", by="origin").set_index("index").sort_index()
    np.testing.assert_array_equal(got["temp"].to_numpy(float), ref["temp"].to_numpy(float))
    np.testing.assert_array_equal(got["visib"].to_numpy(float), ref["visib"].to_numpy(float))
    # each flight gets its own scheduled hour's observation (UTC), including the repeated/skipped local hours
    has = got["weather__timestamp"].notna()
    assert (got.loc[has, "weather__timestamp"] == got.loc[has, "time_hour"]).all()
    assert has.mean() > 0.99
    local = got["sched_dep"].dt.tz_convert("America/New_York")
    assert set(local[local.dt.month == 11].dt.strftime("%Z")) == {"EST"}  # all Nov-3 flights are after 02:00 EDT->EST
    assert set(local[local.dt.month == 3].dt.strftime("%Z")) == {"EDT"}


def test_ttl_and_naive_timestamps(tmp_path):
    store = OfflineStore(tmp_path)
    view = FeatureView("t", ("k",), ("x",), "ts", ttl="1h")
    store.write(view, pd.DataFrame({"k": ["a"], "ts": [BASE], "x": [1.0]}))
    ent = pd.DataFrame({"k": ["a", "a", "a"], "event_time": [BASE + pd.Timedelta(m, "min") for m in (0, 60, 61)]})
    assert store.get_historical_features(ent, ["t:x"])["x"].isna().tolist() == [False, False, True]
    with pytest.raises(SchemaError, match="must hold tz-aware"):
        store.write(view, pd.DataFrame({"k": ["a"], "ts": [BASE.tz_localize(None)], "x": [1.0]}))


def test_bad_entity_rows(tmp_path):
    store = OfflineStore(tmp_path)
    store.write(FeatureView("t", ("k",), ("x",), "ts"), pd.DataFrame({"k": ["a"], "ts": [BASE], "x": [1.0]}))
    ent = pd.DataFrame({"k": ["a", "b"], "event_time": [BASE, pd.NaT]}).astype({"event_time": "datetime64[us, UTC]"})
    with pytest.raises(DataError, match=r"entity_df column 'event_time' has 1 missing timestamp"):
        store.get_historical_features(ent, ["t:x"])
    with pytest.raises(SchemaError, match=r"entity_df lacks column\(s\) \['event_time'\]"):
        store.get_historical_features(ent[["k"]], ["t:x"])
    with pytest.raises(SchemaError, match=r"entity_df lacks column\(s\) \['k'\]"):
        store.get_historical_features(ent[["event_time"]].dropna(), ["t:x"])
    with pytest.raises(UnknownFeatureError, match="view 't' has no feature 'y'"):
        store.get_historical_features(ent.dropna(), ["t:y"])
    with pytest.raises(UnknownFeatureError, match="'nope' is not registered"):
        store.get_historical_features(ent.dropna(), ["nope:x"])
    with pytest.raises(DataError, match="must be a pandas DataFrame"):
        store.get_historical_features([1, 2], ["t:x"])
    with pytest.raises(ConfigError, match="engine='spark'"):
        store.get_historical_features(ent.dropna(), ["t:x"], engine="spark")
    with pytest.raises(SchemaError, match=r"already has column\(s\) \['x'\]"):
        store.get_historical_features(ent.dropna().assign(x=1), ["t:x"])
    with pytest.raises(SchemaError, match=r"lacks column\(s\) \['x'\]"):
        store.write("t", pd.DataFrame({"k": ["a"], "ts": [BASE]}))
    with pytest.raises(DataError, match="missing keys"):
        store.write("t", pd.DataFrame({"k": [None], "ts": [BASE], "x": [1.0]}))


def test_out_of_core_retrieval_matches_in_memory(tmp_path):
    rng = np.random.default_rng(7)
    feat, ent = random_case(rng, n_feat=500, n_ent=3000, n_keys=20, step="1min", spread=300)
    store = OfflineStore(tmp_path / "s", memory_limit="64MB", threads=1)
    store.write(FeatureView("v", ("k",), ("x",), "ts", ttl="90min"), feat)
    ent_path = tmp_path / "ent.parquet"
    ent.assign(row=np.arange(len(ent))).to_parquet(ent_path)
    out = pd.read_parquet(store.retrieve_to_parquet(ent_path, ["v:x"], tmp_path / "out.parquet", chunk_rows=700)).sort_values("row")
    assert len(out) == len(ent)
    mem = store.get_historical_features(ent, ["v:x"], engine="numpy")
    np.testing.assert_array_equal(out["x"].to_numpy(float), mem["x"].to_numpy(float))
    ent.assign(event_time=ent.event_time.dt.tz_localize(None)).to_parquet(tmp_path / "naive.parquet")
    with pytest.raises(SchemaError, match="must be tz-aware"):
        store.retrieve_to_parquet(tmp_path / "naive.parquet", ["v:x"], tmp_path / "o2.parquet")
    ent.assign(event_time=ent.event_time.where(ent.index != 2000)).to_parquet(tmp_path / "hole.parquet")
    with pytest.raises(DataError, match=r"entity rows 1400..2099: entity_df column 'event_time' has 1 missing"):
        store.retrieve_to_parquet(tmp_path / "hole.parquet", ["v:x"], tmp_path / "o3.parquet", chunk_rows=700)
    assert not (tmp_path / "o3.parquet").exists()  # nothing half-written
    with pytest.raises(DataError, match="does not exist"):
        store.retrieve_to_parquet(tmp_path / "nope.parquet", ["v:x"], tmp_path / "o4.parquet")


def test_catalog_register_list_search_errors():
    cat = FeatureCatalog()
    v1 = cat.register(FeatureView("route", ("origin", "dest"), ("late_rate", "n"), "ts", owner="ml",
                                  description="route delay history", source="flights"))
    cat.register(v1)  # identical re-registration is a no-op
    with pytest.raises(ConfigError, match="bump `version`"):
        cat.register(FeatureView("route", ("origin", "dest"), ("late_rate",), "ts"))
    v2 = cat.register(FeatureView("route", ("origin", "dest"), ("late_rate", "n", "p90"), "ts", version=2))
    assert cat.view("route") is v2 and cat.view("route", 1) is v1
    df = cat.list_features()
    assert list(df["ref"]) == ["route:late_rate", "route:n", "route:p90"]
    assert set(df.columns) >= {"owner", "description", "entity", "source", "version"}
    assert list(cat.search("P90")["ref"]) == ["route:p90"]
    assert cat.search("weather").empty
    assert [(v.version, f) for v, f in cat.resolve(["route@1:n"])] == [(1, ["n"])]
    with pytest.raises(UnknownFeatureError, match=r"did you mean \['late_rate'\]"):
        cat.resolve(["route:late_rat"])
    with pytest.raises(UnknownFeatureError, match="has no version 3"):
        cat.resolve(["route@3:n"])
    with pytest.raises(ConfigError, match="at least one"):
        cat.resolve([])
    with pytest.raises(ConfigError, match="non-empty string"):
        cat.search(" ")
    with pytest.raises(ConfigError, match="name='bad name' must be an identifier"):
        FeatureView("bad name", ("k",), ("x",))
    with pytest.raises(ConfigError, match="used twice"):
        FeatureView("v", ("k",), ("k",))


def _online_roundtrip(online, tmp_path):
    store = FeatureStore(OfflineStore(tmp_path), online)
    view = FeatureView("w", ("k",), ("x", "s"), "ts", ttl="2h")
    rows = pd.DataFrame({"k": ["a", "a", "b", "c"], "ts": BASE + pd.to_timedelta([0, 60, 30, 300], unit="min"),
                         "x": [1.0, 2.0, np.nan, 4.0], "s": ["u", "v", "w", "z"]})
    store.ingest(view, rows)
    assert store.materialize(BASE + pd.Timedelta("90min")) == {"w": 2}  # c is in the future of the cut-off
    req = pd.DataFrame({"k": ["a", "b", "c", "zz"]})
    got = store.get_online_features(req, ["w:x", "w:s"], at=BASE + pd.Timedelta("90min"))
    assert got["x"].tolist()[:1] == [2.0] and np.isnan(got["x"].tolist()[1:]).all()
    assert got["s"].tolist()[:2] == ["v", "w"] and got["s"].isna().tolist()[2:] == [True, True]
    # same answer as the offline store at the same time
    hist = store.get_historical_features(req.assign(event_time=BASE + pd.Timedelta("90min")), ["w:x", "w:s"])
    np.testing.assert_array_equal(got["x"].to_numpy(float), hist["x"].to_numpy(float))
    # an older write never replaces a newer value
    store.push(view, rows.iloc[[0]])
    assert store.get_online_features({"k": "a"}, ["w:x"])["x"].tolist() == [2.0]
    # TTL at request time
    assert store.get_online_features(req, ["w:x"], at=BASE + pd.Timedelta("4h"))["x"].isna().all()
    with pytest.raises(SchemaError, match="must be tz-aware"):
        store.get_online_features(req, ["w:x"], at=pd.Timestamp("2013-01-01"))
    with pytest.raises(SchemaError, match=r"entity_rows lacks column\(s\) \['k'\]"):
        store.get_online_features(pd.DataFrame({"q": [1]}), ["w:x"])
    with pytest.raises(UnknownFeatureError):
        store.get_online_features(req, ["w:nope"])


def test_sqlite_online_store(tmp_path):
    _online_roundtrip(SQLiteOnlineStore(tmp_path / "online.db"), tmp_path)


@pytest.mark.redis
def test_redis_online_store(tmp_path, redis_client):
    prefix = f"test:{uuid.uuid4().hex}"
    try:
        _online_roundtrip(RedisOnlineStore(redis_client, prefix=prefix), tmp_path)
    finally:
        keys = redis_client.keys(f"{prefix}:*")
        if keys:
            redis_client.delete(*keys)


def test_materialize_from_flights_weather(tmp_path):
    weather = load_weather(start="2013-03-10", end="2013-03-10")
    store = FeatureStore(OfflineStore(tmp_path), SQLiteOnlineStore())
    store.ingest(FeatureView("weather", ("origin",), ("temp",), "time_hour"), weather)
    cut = pd.Timestamp("2013-03-10 12:30", tz="UTC")
    store.materialize(cut)
    got = store.get_online_features(pd.DataFrame({"origin": ["EWR", "JFK", "LGA"]}), ["weather:temp"])
    w = weather[weather.time_hour == pd.Timestamp("2013-03-10 12:00", tz="UTC")].set_index("origin")["temp"]
    assert got["temp"].tolist() == [w["EWR"], w["JFK"], w["LGA"]]


def test_history_rates_are_known_before_use():
    fl = load_flights(start="2013-06-01", end="2013-06-10")
    h = history_rates(fl, ["carrier"], "carrier")
    local = h["available_at"].dt.tz_convert("America/New_York")
    # stamped at the next local midnight, or later in that night when the day's last flight landed after it
    assert (local.dt.hour < 8).all() and (local.dt.normalize() > pd.Timestamp("2013-06-01", tz="America/New_York")).all()
    # each row is stamped no earlier than the next local midnight after its day
    last = fl[fl.is_late.notna()].groupby("carrier", observed=True)["sched_dep"].max()
    for carrier, t in last.items():
        assert h.loc[h.carrier == carrier, "available_at"].max() > t


def test_build_flight_features_is_leakage_safe():
    fl = load_flights(start="2013-03-08", end="2013-03-12")
    out = build_flight_features(fl, load_weather(start="2013-03-07", end="2013-03-12"), load_planes())
    assert len(out) == len(fl) and set(flight_feature_columns()) <= set(out.columns)
    assert set(flight_feature_known_at()) == set(flight_feature_columns())
    assert set(flight_feature_known_at().values()) <= set(out.columns)
    for c in [c for c in out.columns if c.endswith("__timestamp")]:
        known = out[c].notna()
        assert (out.loc[known, c] <= out.loc[known, "as_of"]).all(), c
    # the recent-departures feature never includes the flight's own departure
    ev = departure_events(fl).reset_index(names="fid")
    i = out.index[out["origin_deps_2h"] > 0][0]
    row = fl.loc[i]
    m = (ev.origin == row.origin) & (ev.dep_actual >= row.sched_dep - pd.Timedelta("2h")) & \
        (ev.dep_actual < row.sched_dep) & (ev.fid != i)
    assert out.loc[i, "origin_deps_2h"] == m.sum()
    assert np.isclose(out.loc[i, "origin_dep_delay_2h"], ev.dep_delay[m].astype(float).mean())
    # route history on 12 March uses only labels of flights before 12 March (local)
    local = fl.sched_dep.dt.tz_convert("America/New_York")
    r = out[(local.dt.day == 12) & (local.dt.hour >= 8)].iloc[0]
    prev = fl[(local.dt.day < 12) & (fl.origin == r.origin) & (fl.dest == r.dest) & fl.is_late.notna()]
    assert out.loc[r.name, "route_n"] == len(prev)
    assert np.isclose(out.loc[r.name, "route_late_rate"], prev.is_late.astype(float).mean())
    # history given separately (earlier days): the same features for the overlapping days
    early = load_flights(start="2013-03-05", end="2013-03-07")
    both = build_flight_features(fl, load_weather(start="2013-03-04", end="2013-03-12"), load_planes(),
                                 history=pd.concat([early, fl], ignore_index=True))
    assert (both["route_n"].fillna(0) >= out["route_n"].fillna(0)).all()
    first = local.dt.day == 8
    assert (both.loc[first & (local.dt.hour >= 8), "route_n"].notna().mean() > 0.9)
    np.testing.assert_array_equal(both.loc[~first, "origin_deps_2h"], out.loc[~first, "origin_deps_2h"])
    with pytest.raises(ConfigError, match="lead=.*must not be negative"):
        build_flight_features(fl, load_weather(start="2013-03-07", end="2013-03-12"), load_planes(), lead="-1h")
    with pytest.raises(SchemaError, match=r"weather lacks column\(s\) \['temp'\]"):
        build_flight_features(fl, load_weather(start="2013-03-07", end="2013-03-12").drop(columns="temp"), load_planes())


def test_build_flight_features_into_a_store_then_serve_online(tmp_path):
    fl = load_flights(start="2013-04-01", end="2013-04-03")
    store = FeatureStore(OfflineStore(tmp_path), SQLiteOnlineStore(tmp_path / "online.db"))
    build_flight_features(fl, load_weather(start="2013-04-01", end="2013-04-03"), load_planes(), store=store)
    assert {v.name for v in store.catalog.views} == {"weather", "plane", "route_history", "carrier_history"}
    assert len(store.catalog.search("day before")) == 4
    cut = pd.Timestamp("2013-04-03 16:00", tz="UTC")
    store.materialize(cut)
    req = fl[["origin", "dest", "carrier", "tailnum"]].drop_duplicates().head(50).reset_index(drop=True)
    refs = ["weather:temp", "route_history:route_late_rate", "carrier_history:carrier_n", "plane:plane_year"]
    online = store.get_online_features(req, refs, at=cut)
    offline = store.get_historical_features(req.assign(event_time=cut), refs)
    for r in refs:
        c = r.split(":")[1]
        np.testing.assert_array_equal(online[c].to_numpy(float), offline[c].to_numpy(float))


def test_cache_follows_writes_of_other_store_objects(tmp_path):
    "The in-memory index is per stored version: a same-sized rewrite by another store object is seen at once."
    a, b = OfflineStore(tmp_path), OfflineStore(tmp_path)
    view = FeatureView("v", ("k",), ("x",), "ts")
    rows = pd.DataFrame({"k": ["a", "b"], "ts": [BASE, BASE], "x": [1.0, 2.0]})
    a.write(view, rows)
    ent = pd.DataFrame({"k": ["a", "b"], "event_time": [BASE, BASE]})
    assert a.get_historical_features(ent, ["v:x"])["x"].tolist() == [1.0, 2.0]
    b.write(view, rows.assign(x=[3.0, 4.0]))  # same shape, same file size
    assert a.get_historical_features(ent, ["v:x"])["x"].tolist() == [3.0, 4.0]
    b.write(view, rows.assign(ts=BASE + pd.Timedelta("1min"), x=[5.0, 6.0]), mode="append")
    later = ent.assign(event_time=BASE + pd.Timedelta("1h"))
    assert a.get_historical_features(later, ["v:x"])["x"].tolist() == [5.0, 6.0]
    assert a.compact(view) == 2 and len(json.loads((tmp_path / "v__v1" / "_manifest.json").read_text())["parts"]) == 1
    assert a.get_historical_features(later, ["v:x"])["x"].tolist() == [5.0, 6.0]


def test_reads_and_adopts_the_single_file_layout_of_earlier_versions(tmp_path):
    "A view written by the previous version (one `<view>__v1.parquet`) is read as is and moved into parts on write."
    old = pd.DataFrame({"k": pd.Series(["a", "b"], dtype="string"), "__ts": [BASE, BASE], "x": [1.0, 2.0]})
    old.to_parquet(tmp_path / "v__v1.parquet", index=False)
    store = OfflineStore(tmp_path)
    view = store.catalog.register(FeatureView("v", ("k",), ("x",), "ts"))
    assert store.read(view)["x"].tolist() == [1.0, 2.0]
    ent = pd.DataFrame({"k": ["a", "b"], "event_time": [BASE, BASE]})
    for engine in ("numpy", "duckdb"):
        assert store.get_historical_features(ent, ["v:x"], engine=engine)["x"].tolist() == [1.0, 2.0]
    store.write(view, pd.DataFrame({"k": ["a"], "ts": [BASE + pd.Timedelta("1h")], "x": [3.0]}), mode="append")
    assert not (tmp_path / "v__v1.parquet").exists()
    assert store.read(view)["x"].tolist() == [1.0, 3.0, 2.0]


def test_a_corrupt_manifest_or_part_is_an_integrity_error(tmp_path):
    store = OfflineStore(tmp_path)
    view = FeatureView("v", ("k",), ("x",), "ts")
    store.write(view, pd.DataFrame({"k": ["a"], "ts": [BASE], "x": [1.0]}))
    man = tmp_path / "v__v1" / "_manifest.json"
    part = tmp_path / "v__v1" / json.loads(man.read_text())["parts"][0]["file"]
    part.write_bytes(b"PAR1 not really")
    with pytest.raises(IntegrityError, match=r"part .* of view 'v' is not a readable Parquet file"):
        store.read(view)
    part.unlink()
    with pytest.raises(IntegrityError, match=r"view 'v': part .* listed in its manifest is missing"):
        store.read(view)
    man.write_text("{not json")
    with pytest.raises(IntegrityError, match=r"manifest .*_manifest.json of view 'v' is unreadable"):
        store.read(view)


def test_online_store_times_are_exact_below_a_microsecond(tmp_path):
    "Newest-wins and the TTL at request time compare nanoseconds (microseconds made 100 ns and 900 ns a tie)."
    t0 = pd.Timestamp("2013-01-01 12:00", tz="UTC").as_unit("ns")
    store = FeatureStore(OfflineStore(tmp_path), SQLiteOnlineStore(tmp_path / "online.db"))
    view = FeatureView("v", ("k",), ("x",), "ts", ttl="1us")
    store.apply(view)
    store.push(view, pd.DataFrame({"k": ["a"], "ts": [t0 + pd.Timedelta(900, "ns")], "x": [2.0]}))
    store.push(view, pd.DataFrame({"k": ["a"], "ts": [t0 + pd.Timedelta(100, "ns")], "x": [1.0]}))  # older: ignored
    at = [t0 + pd.Timedelta(n, "ns") for n in (1900, 1901)]
    assert [store.get_online_features({"k": "a"}, ["v:x"], at=a)["x"].iloc[0] for a in at][0] == 2.0
    assert np.isnan(store.get_online_features({"k": "a"}, ["v:x"], at=at[1])["x"].iloc[0])
