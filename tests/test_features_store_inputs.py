"""Every public entry point of mlsys.features.store (and of features.online and features.windows, split from it) given
bad input: a named mlsys error that names the input, never a raw library error, a silent NaN or a coerced value. Empty
inputs that have a well-defined answer get it."""
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from mlsys.core import ConfigError, DataError, IntegrityError, MlsysError, SchemaError
from mlsys.features import store as m
from mlsys.features.online import RedisOnlineStore, SQLiteOnlineStore, StoreUnavailableError
from mlsys.features.store import (
    FeatureCatalog, FeatureStore, FeatureView, OfflineStore, UnknownFeatureError, build_flight_features, history_rates,
)
from mlsys.features.windows import WindowAggregate, WindowState, departure_events

B = pd.Timestamp("2013-06-01", tz="UTC")
FLIGHT_COLS = ["sched_dep", "origin", "dest", "carrier", "tailnum", "dep_delay", "is_late"]


@pytest.fixture
def e(tmp_path):
    store = OfflineStore(tmp_path / "off")
    view = FeatureView("v", ("k",), ("x",), "ts", ttl="1h")
    rows = pd.DataFrame({"k": ["a", "b"], "ts": [B, B], "x": [1.0, 2.0]})
    store.write(view, rows)
    (tmp_path / "notdb").write_text("hello")
    (tmp_path / "bad.parquet").write_text("not parquet")
    return SimpleNamespace(tmp=tmp_path, store=store, view=view, rows=rows, ent=pd.DataFrame({"k": ["a"], "event_time": [B]}),
                           fs=FeatureStore(store, SQLiteOnlineStore()), win=WindowAggregate("f", "k", "x", "ts", "1h"),
                           state=WindowAggregate("f", "k", "x", "ts", "1h").stream(),
                           empty=(pd.DataFrame(columns=FLIGHT_COLS), pd.DataFrame(columns=["origin", "time_hour", *m.WEATHER_FEATURES]),
                                  pd.DataFrame(columns=["tailnum", "year"])))


CASES = [
    # definitions and the catalog
    ("FeatureView name None", lambda e: FeatureView(None, ("k",), ("x",)), ConfigError, r"name=None must be an identifier"),
    ("FeatureView entity int", lambda e: FeatureView("v", 5, ("x",)), ConfigError, r"entity=5 must be a column name"),
    ("FeatureView entity empty", lambda e: FeatureView("v", [], ("x",)), ConfigError, r"entity=\(\) must be a non-empty"),
    ("FeatureView features None", lambda e: FeatureView("v", "k", None), ConfigError, r"features=None"),
    ("FeatureView feature twice", lambda e: FeatureView("v", "k", ["x", "x"]), ConfigError, r"names a column twice"),
    ("FeatureView reserved name", lambda e: FeatureView("v", "k", ["__ts"]), ConfigError, r"\['__ts'\] start with '__'"),
    ("FeatureView timestamp None", lambda e: FeatureView("v", "k", "x", None), ConfigError, r"timestamp=None"),
    ("FeatureView ttl text", lambda e: FeatureView("v", "k", "x", ttl="abc"), ConfigError, r"ttl='abc' is not a time span"),
    ("FeatureView ttl bool", lambda e: FeatureView("v", "k", "x", ttl=True), ConfigError, r"ttl=True is not a time span"),
    ("FeatureView ttl negative", lambda e: FeatureView("v", "k", "x", ttl="-1h"), ConfigError, r"ttl='-1h' must be positive"),
    ("FeatureView version bool", lambda e: FeatureView("v", "k", "x", version=True), ConfigError, r"version=True"),
    ("FeatureView owner int", lambda e: FeatureView("v", "k", "x", owner=5), ConfigError, r"owner=5 must be a string"),
    ("register None", lambda e: FeatureCatalog().register(None), ConfigError, r"view must be a FeatureView, got NoneType"),
    ("catalog.view None", lambda e: e.store.catalog.view(None), ConfigError, r"view name None must be a string"),
    ("catalog.view version str", lambda e: e.store.catalog.view("v", "1"), ConfigError, r"version='1'"),
    ("catalog.view unknown", lambda e: e.store.catalog.view("w"), UnknownFeatureError, r"'w' is not registered"),
    ("search None", lambda e: e.store.catalog.search(None), ConfigError, r"text=None"),
    ("resolve None", lambda e: e.store.catalog.resolve(None), ConfigError, r"features=None must be"),
    ("resolve int", lambda e: e.store.catalog.resolve(5), ConfigError, r"features=5 must be"),
    ("resolve dict", lambda e: e.store.catalog.resolve({"v": "x"}), ConfigError, r"features=\{'v': 'x'\} must be"),
    ("resolve [int]", lambda e: e.store.catalog.resolve([5]), ConfigError, r"feature reference 5 must be a string"),
    ("resolve bad version", lambda e: e.store.catalog.resolve(["v@x:x"]), ConfigError, r"'v@x:x': version 'x'"),
    # the offline store
    ("OfflineStore path int", lambda e: OfflineStore(5), ConfigError, r"path=5 must be a folder path"),
    ("OfflineStore catalog int", lambda e: OfflineStore(e.tmp, catalog=5), ConfigError, r"catalog must be a FeatureCatalog"),
    ("OfflineStore memory_limit injection", lambda e: OfflineStore(e.tmp, memory_limit="1GB'; DROP"), ConfigError, r"memory_limit="),
    ("OfflineStore threads 0", lambda e: OfflineStore(e.tmp, threads=0), ConfigError, r"threads=0"),
    ("OfflineStore lock_timeout", lambda e: OfflineStore(e.tmp, lock_timeout=-1), ConfigError, r"lock_timeout=-1"),
    ("OfflineStore max_parts", lambda e: OfflineStore(e.tmp, max_parts=0), ConfigError, r"max_parts=0"),
    ("OfflineStore retain", lambda e: OfflineStore(e.tmp, retain=float("nan")), ConfigError, r"retain=nan"),
    ("write view None", lambda e: e.store.write(None, e.rows), ConfigError, r"view must be a FeatureView or the name"),
    ("write view unknown", lambda e: e.store.write("nope", e.rows), UnknownFeatureError, r"'nope' is not registered"),
    ("write df None", lambda e: e.store.write(e.view, None), DataError, r"rows for view 'v' must be a pandas DataFrame, got NoneType"),
    ("write df list", lambda e: e.store.write(e.view, [1]), DataError, r"must be a pandas DataFrame, got list"),
    ("write mode", lambda e: e.store.write(e.view, e.rows, mode="x"), ConfigError, r"mode='x'"),
    ("write naive times", lambda e: e.store.write(e.view, e.rows.assign(ts=e.rows.ts.dt.tz_localize(None))), SchemaError,
     r"column 'ts' must hold tz-aware timestamps"),
    ("write text times", lambda e: e.store.write(e.view, e.rows.assign(ts=["2013", "2014"])), SchemaError, r"column 'ts' must hold tz-aware"),
    ("write NaT", lambda e: e.store.write(e.view, e.rows.assign(ts=[B, pd.NaT])), DataError, r"column 'ts' has 1 missing timestamp"),
    ("write NaN key", lambda e: e.store.write(e.view, e.rows.assign(k=["a", None])), DataError, r"entity column 'k' has 1 missing keys"),
    ("write mixed-type key", lambda e: e.store.write(e.view, e.rows.assign(k=pd.Series(["a", 1], dtype=object))), SchemaError,
     r"entity column 'k' holds mixed-integer values"),
    ("write timestamp key", lambda e: e.store.write(e.view, e.rows.assign(k=[B, B])), SchemaError, r"entity column 'k' has dtype datetime64"),
    ("write missing column", lambda e: e.store.write(e.view, e.rows.drop(columns="x")), SchemaError, r"lacks column\(s\) \['x'\]"),
    ("write duplicate column", lambda e: e.store.write(e.view, pd.concat([e.rows, e.rows[["x"]]], axis=1)), SchemaError,
     r"several columns named \['x'\]"),
    ("write mixed-type feature", lambda e: e.store.write(FeatureView("w", "k", "x", "ts"), e.rows.assign(x=pd.Series([1, "a"], dtype=object))),
     SchemaError, r"view 'w' cannot be stored in Parquet.*column x"),
    ("append numeric keys to string keys", lambda e: e.store.write(e.view, e.rows.assign(k=[1, 2]), mode="append"), SchemaError,
     r"entity keys \{'k': 'numeric'\}; the stored rows have \{'k': 'string'\}"),
    ("append text feature to float", lambda e: e.store.write(e.view, e.rows.assign(x=["a", "b"], ts=B + pd.Timedelta("1h")), mode="append"),
     SchemaError, r"cannot be stored in Parquet"),
    ("read None", lambda e: e.store.read(None), ConfigError, r"view must be a FeatureView or the name"),
    ("read never written", lambda e: e.store.read(FeatureView("zz", "k", "x")), DataError, r"view 'zz' \(version 1\) has no stored rows"),
    ("compact int", lambda e: e.store.compact(5), ConfigError, r"got int"),
    ("ghf entity None", lambda e: e.store.get_historical_features(None, ["v:x"]), DataError, r"entity_df must be a pandas DataFrame"),
    ("ghf entity dict", lambda e: e.store.get_historical_features({"k": "a"}, ["v:x"]), DataError, r"entity_df must be a pandas DataFrame, got dict"),
    ("ghf features None", lambda e: e.store.get_historical_features(e.ent, None), ConfigError, r"features=None"),
    ("ghf features empty", lambda e: e.store.get_historical_features(e.ent, []), ConfigError, r"at least one"),
    ("ghf unknown view", lambda e: e.store.get_historical_features(e.ent, ["nope:x"]), UnknownFeatureError, r"'nope' is not registered"),
    ("ghf timestamp_col int", lambda e: e.store.get_historical_features(e.ent, ["v:x"], timestamp_col=5), ConfigError, r"timestamp_col=5"),
    ("ghf naive", lambda e: e.store.get_historical_features(e.ent.assign(event_time=B.tz_localize(None)), ["v:x"]), SchemaError,
     r"entity_df column 'event_time' must hold tz-aware"),
    ("ghf text times", lambda e: e.store.get_historical_features(e.ent.assign(event_time="2013"), ["v:x"]), SchemaError,
     r"entity_df column 'event_time' must hold tz-aware timestamps \(e.g. UTC\), got dtype str"),
    ("ghf NaT", lambda e: e.store.get_historical_features(pd.DataFrame({"k": ["a"], "event_time": pd.Series([pd.NaT], dtype="datetime64[us, UTC]")}),
                                                       ["v:x"]), DataError, r"entity_df column 'event_time' has 1 missing timestamp"),
    ("ghf full_feature_names text", lambda e: e.store.get_historical_features(e.ent, ["v:x"], full_feature_names="yes"), ConfigError,
     r"full_feature_names='yes' must be True or False"),
    ("ghf include_timestamps int", lambda e: e.store.get_historical_features(e.ent, ["v:x"], include_timestamps=1), ConfigError,
     r"include_timestamps=1"),
    ("ghf engine None", lambda e: e.store.get_historical_features(e.ent, ["v:x"], engine=None), ConfigError, r"engine=None"),
    ("ghf numeric keys, string store", lambda e: e.store.get_historical_features(e.ent.assign(k=[1]), ["v:x"]), SchemaError,
     r"entity_df column 'k' holds numeric keys but the view stores string keys"),
    ("ghf numeric keys, string store, duckdb", lambda e: e.store.get_historical_features(e.ent.assign(k=[1]), ["v:x"], engine="duckdb"),
     SchemaError, r"entity_df column 'k' holds numeric keys"),
    ("ghf mixed-type keys", lambda e: e.store.get_historical_features(
        pd.DataFrame({"k": pd.Series(["a", 1], dtype=object), "event_time": [B, B]}), ["v:x"]), SchemaError, r"entity_df column 'k' holds mixed"),
    ("ghf duplicate columns", lambda e: e.store.get_historical_features(pd.concat([e.ent, e.ent[["k"]]], axis=1), ["v:x"]), SchemaError,
     r"entity_df has several columns named \['k'\]"),
    ("ghf output clash", lambda e: e.store.get_historical_features(e.ent.assign(x=1), ["v:x"]), SchemaError, r"already has column\(s\) \['x'\]"),
    ("rtp entity_path None", lambda e: e.store.retrieve_to_parquet(None, ["v:x"], e.tmp / "o.parquet"), ConfigError, r"entity_path=None"),
    ("rtp out_path None", lambda e: e.store.retrieve_to_parquet(e.tmp / "bad.parquet", ["v:x"], None), ConfigError, r"out_path=None"),
    ("rtp missing file", lambda e: e.store.retrieve_to_parquet(e.tmp / "no.parquet", ["v:x"], e.tmp / "o.parquet"), DataError, r"does not exist"),
    ("rtp not parquet", lambda e: e.store.retrieve_to_parquet(e.tmp / "bad.parquet", ["v:x"], e.tmp / "o.parquet"), DataError,
     r"bad.parquet are not readable Parquet"),
    ("rtp chunk_rows bool", lambda e: e.store.retrieve_to_parquet(e.tmp / "bad.parquet", ["v:x"], e.tmp / "o.parquet", chunk_rows=True),
     ConfigError, r"chunk_rows=True"),
    ("rtp output is input", lambda e: e.store.retrieve_to_parquet(e.tmp / "bad.parquet", ["v:x"], e.tmp / "bad.parquet"), ConfigError,
     r"is the entity file itself"),
    # the feature store and the online stores
    ("FeatureStore offline int", lambda e: FeatureStore(5), ConfigError, r"offline must be an OfflineStore, got int"),
    ("FeatureStore online int", lambda e: FeatureStore(e.store, 5), ConfigError, r"online must be an online store"),
    ("apply None", lambda e: e.fs.apply(None), ConfigError, r"view must be a FeatureView, got NoneType"),
    ("ingest None", lambda e: e.fs.ingest(e.view, None), DataError, r"rows for view 'v' must be a pandas DataFrame"),
    ("materialize None", lambda e: e.fs.materialize(None), DataError, r"end=None must be a tz-aware timestamp"),
    ("materialize text", lambda e: e.fs.materialize("garbage"), DataError, r"end='garbage' is not a timestamp"),
    ("materialize naive", lambda e: e.fs.materialize("2013-01-01"), SchemaError, r"end=Timestamp\('2013-01-01 00:00:00'\) must be tz-aware"),
    ("materialize int", lambda e: e.fs.materialize(5), DataError, r"end=5 must be a tz-aware timestamp, got int"),
    ("materialize views empty", lambda e: e.fs.materialize(B, views=[]), ConfigError, r"views=\[\] names no view"),
    ("materialize views int", lambda e: e.fs.materialize(B, views=5), ConfigError, r"views=5"),
    ("materialize unknown view", lambda e: e.fs.materialize(B, views=["nope"]), UnknownFeatureError, r"'nope' is not registered"),
    ("materialize never written", lambda e: e.fs.materialize(B, views=[FeatureView("zz", "k", "x")]), DataError, r"view 'zz' has no stored rows"),
    ("push None", lambda e: e.fs.push(e.view, None), DataError, r"rows for view 'v' must be a pandas DataFrame"),
    ("push NaN key", lambda e: e.fs.push(e.view, e.rows.assign(k=["a", None])), DataError, r"entity column 'k' has 1 missing keys"),
    ("push naive", lambda e: e.fs.push(e.view, e.rows.assign(ts=e.rows.ts.dt.tz_localize(None))), SchemaError, r"column 'ts' must hold tz-aware"),
    ("online None", lambda e: e.fs.get_online_features(None, ["v:x"]), DataError, r"entity_rows must be a pandas DataFrame"),
    ("online dict of lists", lambda e: e.fs.get_online_features({"k": ["a", "b"]}, ["v:x"]), DataError, r"\['k'\] must be single values"),
    ("online at text", lambda e: e.fs.get_online_features({"k": "a"}, ["v:x"], at="garbage"), DataError, r"at='garbage' is not a timestamp"),
    ("online at naive", lambda e: e.fs.get_online_features({"k": "a"}, ["v:x"], at="2013-01-01"), SchemaError, r"at=.* must be tz-aware"),
    ("online at int", lambda e: e.fs.get_online_features({"k": "a"}, ["v:x"], at=5), DataError, r"at=5 must be a tz-aware timestamp"),
    ("online missing column", lambda e: e.fs.get_online_features({"q": "a"}, ["v:x"]), SchemaError, r"entity_rows lacks column\(s\) \['k'\]"),
    ("SQLite path int", lambda e: SQLiteOnlineStore(5), ConfigError, r"path=5"),
    ("SQLite path is a folder", lambda e: SQLiteOnlineStore(e.tmp), StoreUnavailableError, r"SQLite online store .*: opening the database failed"),
    ("SQLite not a database", lambda e: SQLiteOnlineStore(e.tmp / "notdb"), IntegrityError, r"notdb: opening the database failed, the file is not"),
    ("SQLite timeout 0", lambda e: SQLiteOnlineStore(timeout=0), ConfigError, r"timeout=0"),
    ("SQLite retries 0", lambda e: SQLiteOnlineStore(retries=0), ConfigError, r"retries=0"),
    ("SQLite write_rows None", lambda e: SQLiteOnlineStore().write_rows("v", None), DataError, r"rows must be a list of \(entity_key"),
    ("SQLite write_rows pairs", lambda e: SQLiteOnlineStore().write_rows("v", [("a", "b")]), DataError, r"rows must be a list"),
    ("SQLite read_rows None", lambda e: SQLiteOnlineStore().read_rows("v", None), DataError, r"keys must be a list"),
    ("Redis client None", lambda e: RedisOnlineStore(None), ConfigError, r"client must be a redis.Redis client, got NoneType"),
    # one window definition, two executions
    ("WindowAggregate name None", lambda e: WindowAggregate(None, "k", "x", "ts"), ConfigError, r"name=None"),
    ("WindowAggregate window text", lambda e: WindowAggregate("f", "k", "x", "ts", "x"), ConfigError, r"window='x'"),
    ("compute events None", lambda e: e.win.compute(None, e.ent, "event_time"), DataError, r"events must be a pandas DataFrame"),
    ("compute query_time int", lambda e: e.win.compute(e.rows, e.ent, 5), ConfigError, r"query_time=5"),
    ("compute naive events", lambda e: e.win.compute(e.rows.assign(ts=e.rows.ts.dt.tz_localize(None)), e.ent, "event_time"), SchemaError,
     r"events column 'ts' must hold tz-aware"),
    ("compute text values", lambda e: e.win.compute(e.rows.assign(x=["a", "b"]), e.ent, "event_time"), DataError, r"events column 'x' must hold numbers"),
    ("compute NaN entity", lambda e: e.win.compute(e.rows.assign(k=["a", None]), e.ent, "event_time"), DataError,
     r"events column 'k' has 1 missing entity keys"),
    ("compute naive queries", lambda e: e.win.compute(e.rows, e.ent.assign(event_time=B.tz_localize(None)), "event_time"), SchemaError,
     r"queries column 'event_time' must hold tz-aware"),
    ("compute exclude missing", lambda e: e.win.compute(e.rows, e.ent, "event_time", exclude="id"), SchemaError, r"events lacks column\(s\) \['id'\]"),
    ("WindowState None", lambda e: WindowState(None), ConfigError, r"definition must be a WindowAggregate"),
    ("update None", lambda e: e.state.update(None), DataError, r"event must be a mapping of fields, got NoneType"),
    ("update text value", lambda e: e.state.update({"k": "a", "x": "z", "ts": B}), DataError, r"event field 'x'='z' must be a number"),
    ("update missing key", lambda e: e.state.update({"k": None, "x": 1.0, "ts": B}), DataError, r"event field 'k' is missing"),
    ("update text time", lambda e: e.state.update({"k": "a", "x": 1.0, "ts": "garbage"}), DataError, r"event field 'ts'='garbage' is not a timestamp"),
    ("update naive time", lambda e: e.state.update({"k": "a", "x": 1.0, "ts": "2013-01-01"}), SchemaError, r"event field 'ts'=.* must be tz-aware"),
    ("update int time", lambda e: e.state.update({"k": "a", "x": 1.0, "ts": 5}), DataError, r"event field 'ts'=5 must be a tz-aware timestamp"),
    ("get at None", lambda e: e.state.get("a", None), DataError, r"at=None must be a tz-aware timestamp"),
    ("evict naive", lambda e: e.state.evict("2013-01-01"), SchemaError, r"before=.* must be tz-aware"),
    # the flights features
    ("departure_events None", lambda e: departure_events(None), DataError, r"flights must be a pandas DataFrame"),
    ("departure_events naive", lambda e: departure_events(pd.DataFrame({"sched_dep": [B.tz_localize(None)], "dep_delay": [1], "origin": ["a"]})),
     SchemaError, r"flights column 'sched_dep' must hold tz-aware"),
    ("departure_events text delays", lambda e: departure_events(pd.DataFrame({"sched_dep": [B], "dep_delay": ["1"], "origin": ["a"]})),
     SchemaError, r"flights column 'dep_delay' must hold minutes as numbers"),
    ("history_rates None", lambda e: history_rates(None, ["carrier"], "c"), DataError, r"flights must be a pandas DataFrame"),
    ("history_rates keys int", lambda e: history_rates(pd.DataFrame(), 5, "c"), ConfigError, r"keys=5"),
    ("history_rates prefix None", lambda e: history_rates(pd.DataFrame(), ["carrier"], None), ConfigError, r"prefix=None"),
    ("history_rates margin text", lambda e: history_rates(pd.DataFrame(), ["carrier"], "c", margin="x"), ConfigError, r"margin='x'"),
    ("build flights None", lambda e: build_flight_features(None, None, None), DataError, r"flights must be a pandas DataFrame"),
    ("build lead text", lambda e: build_flight_features(*e.empty, lead="x"), ConfigError, r"lead='x' is not a time span"),
    ("build lead negative", lambda e: build_flight_features(*e.empty, lead="-1h"), ConfigError, r"must not be negative"),
    ("build store int", lambda e: build_flight_features(*e.empty, store=5), ConfigError, r"store must be a FeatureStore, got int"),
    ("build include_timestamps text", lambda e: build_flight_features(*e.empty, include_timestamps="no"), ConfigError, r"include_timestamps='no'"),
]


@pytest.mark.parametrize("call,exc,match", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_a_named_error(e, call, exc, match):
    with pytest.raises(exc, match=match) as err:
        call(e)
    assert isinstance(err.value, MlsysError)


@pytest.fixture
def ns_view(e):
    "A view stored at nanosecond resolution, for the out-of-range case."
    OfflineStore(e.tmp / "ns").write(FeatureView("n", "k", "x", "ts"), pd.DataFrame({"k": ["a"], "ts": [B.as_unit("ns")], "x": [1.0]}))


def test_times_outside_the_stored_resolution_are_refused(e, ns_view):
    s = OfflineStore(e.tmp / "ns")
    s.catalog.register(FeatureView("n", "k", "x", "ts"))
    far = pd.DataFrame({"k": ["a"], "event_time": pd.Series(np.array(["3000-01-01"], dtype="datetime64[s]")).dt.tz_localize("UTC")})
    for engine in ("numpy", "duckdb"):
        with pytest.raises(DataError, match=r"entity_df column 'event_time' has times outside the range a datetime64\[ns\]"):
            s.get_historical_features(far, ["n:x"], engine=engine)
    with pytest.raises(DataError, match=r"column .ts. has times outside the stored datetime64\[ns\] range"):
        s.write("n", far.rename(columns={"event_time": "ts"}).assign(x=2.0), mode="append")


def test_empty_inputs_get_empty_answers(e):
    "Empty frames have a well-defined answer: an empty write stores (or appends) nothing; empty requests get empty frames."
    empty = e.rows.iloc[:0]
    e.store.write(e.view, empty, mode="append")
    assert len(e.store.read(e.view)) == 2  # appending nothing
    for engine in ("numpy", "duckdb"):
        got = e.store.get_historical_features(e.ent.iloc[:0], ["v:x"], engine=engine, include_timestamps=True)
        assert list(got.columns) == ["k", "event_time", "x", "v__timestamp"] and len(got) == 0
    assert e.fs.push(e.view, empty) == 0
    assert len(e.fs.get_online_features(e.ent.iloc[:0][["k"]], ["v:x"])) == 0
    assert e.win.compute(e.rows, e.ent.iloc[:0], "event_time").tolist() == []
    assert np.isnan(e.win.compute(empty, e.ent, "event_time")).all()  # no events: the mean is undefined
    e.store.write(e.view, empty)  # overwrite with nothing: the view exists and knows nothing
    assert len(e.store.read(e.view)) == 0
    for engine in ("numpy", "duckdb"):
        assert e.store.get_historical_features(e.ent, ["v:x"], engine=engine)["x"].isna().all()
    e.ent.iloc[:0].to_parquet(e.tmp / "empty.parquet")
    with pytest.raises(DataError, match="empty.parquet are empty"):
        e.store.retrieve_to_parquet(e.tmp / "empty.parquet", ["v:x"], e.tmp / "o.parquet")


def test_missing_keys_in_requests_match_nothing(e):
    "A request row without a key (a flight without a tail number) gets missing features, in both engines and online."
    ent = pd.DataFrame({"k": pd.Series(["a", None, "b"], dtype="str"), "event_time": [B] * 3})
    for engine in ("numpy", "duckdb"):
        np.testing.assert_array_equal(e.store.get_historical_features(ent, ["v:x"], engine=engine)["x"], [1.0, np.nan, 2.0])
    e.fs.materialize(B)
    np.testing.assert_array_equal(e.fs.get_online_features(ent[["k"]], ["v:x"])["x"], [1.0, np.nan, 2.0])
