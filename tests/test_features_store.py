"""Feature store: point-in-time retrieval vs a brute-force oracle, DST days, online stores, zero train/serve skew, catalog."""
import uuid

import numpy as np
import pandas as pd
import pytest

from mlsys.core import ConfigError, DataError, SchemaError
from mlsys.datasets import load_flights, load_planes, load_weather
from mlsys.features.store import (
    FeatureCatalog, FeatureStore, FeatureView, OfflineStore, RedisOnlineStore, SQLiteOnlineStore,
    UnknownFeatureError, WindowAggregate, build_flight_features, departure_events, flight_feature_columns,
    flight_feature_known_at,
    history_rates,
)

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


def _replay(defn, events, queries, qtime, exclude):
    "Serve the feature from a stream: events and queries interleaved in time order."
    state = defn.stream()
    log = pd.concat([events.assign(kind_=1, t_=events[defn.timestamp]),
                     queries.assign(kind_=0, t_=queries[qtime])]).sort_values(["t_", "kind_"], kind="stable")
    out = {}
    for r in log.to_dict("records"):
        if r["kind_"] == 1:
            state.update(r, id=r[exclude])
        else:
            out[r[exclude]] = state.get(r[defn.entity], r[qtime], exclude=r[exclude])
    return pd.Series(out).reindex(queries[exclude]).to_numpy()


@pytest.mark.parametrize("agg", ["mean", "sum", "count"])
def test_zero_skew_on_flights(agg):
    day = load_flights(start="2013-11-02", end="2013-11-03").reset_index(names="fid")
    defn = WindowAggregate("f", "origin", "dep_delay", "dep_actual", "2h", agg)
    ev = departure_events(day)
    batch = defn.compute(ev, day, "sched_dep", exclude="fid").to_numpy()
    served = _replay(defn, ev, day, "sched_dep", "fid")
    np.testing.assert_array_equal(batch, served)  # bit-identical, NaN where no departures


@pytest.mark.parametrize("seed", range(5))
def test_zero_skew_random_floats_and_eviction(seed):
    rng = np.random.default_rng(seed)
    n = 400
    ev = pd.DataFrame({"fid": np.arange(n), "k": rng.choice(list("ab"), n), "v": rng.normal(size=n) * 1e3,
                       "t": BASE + pd.to_timedelta(np.sort(rng.integers(0, 2000, n)), unit="min")})
    q = ev.assign(qt=ev.t + pd.to_timedelta(rng.integers(-30, 30, n), unit="min"))
    defn = WindowAggregate("f", "k", "v", "t", "45min", "mean")
    batch = defn.compute(ev, q, "qt", exclude="fid").to_numpy()
    served = _replay(defn, ev, q, "qt", "fid")
    np.testing.assert_array_equal(batch, served)
    # brute-force check of the batch path itself
    for i in rng.choice(n, 30, replace=False):
        row = q.iloc[i]
        m = (ev.k == row.k) & (ev.t >= row.qt - pd.Timedelta("45min")) & (ev.t < row.qt) & (ev.fid != row.fid)
        assert np.isclose(batch[i], ev.v[m].mean(), equal_nan=True)
    # eviction forgets old events without changing answers for later queries
    state = defn.stream()
    for r in ev.to_dict("records"):
        state.update(r)
    at = ev.t.iloc[-1]
    before = [state.get(k, at) for k in "ab"]
    assert state.evict(at) > 0
    assert [state.get(k, at) for k in "ab"] == before


def test_stream_bad_input():
    state = WindowAggregate("f", "k", "v", "t", "1h").stream()
    state.update({"k": "a", "v": 1.0, "t": BASE})
    with pytest.raises(DataError, match="arrived after a later one"):
        state.update({"k": "a", "v": 1.0, "t": BASE - pd.Timedelta("1min")})
    with pytest.raises(SchemaError, match="event lacks field 'v'"):
        state.update({"k": "a", "t": BASE})
    with pytest.raises(SchemaError, match="must be tz-aware"):
        state.get("a", pd.Timestamp("2013-01-01"))
    with pytest.raises(ConfigError, match="agg='median'"):
        WindowAggregate("f", "k", "v", "t", "1h", "median")
    with pytest.raises(ConfigError, match="window=.*must be positive"):
        WindowAggregate("f", "k", "v", "t", "0s")


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
