"""data.models: relational store on two engines, documents, route graph vs networkx and SQL."""
import json
import sqlite3

import duckdb
import networkx as nx
import numpy as np
import pandas as pd
import pytest

from mlsys.core import ConfigError, DataError, SchemaError
from mlsys.data.models import (
    RelationalStore,
    RouteGraph,
    busiest_routes_sql,
    connect_duckdb,
    dangling_references,
    from_documents,
    materialize_routes,
    normalize_tables,
    route_edges,
    to_documents,
    two_hop_sql,
)
from mlsys.datasets import (
    load_airlines,
    load_airports,
    load_flights,
    load_planes,
    load_weather,
)


@pytest.fixture(scope="module")
def frames():
    flights = load_flights("2013-07-01", "2013-07-03")
    return flights, normalize_tables(flights, load_planes(), load_airports(), load_airlines(),
                                     load_weather("2013-07-01", "2013-07-03"))


@pytest.fixture(scope="module")
def stores(frames):
    s = {e: RelationalStore(engine=e).load(frames[1]) for e in ("duckdb", "sqlite")}
    yield s
    for st in s.values():
        st.close()


def _vals(s):
    return [None if pd.isna(x) else (x.item() if hasattr(x, "item") else x) for x in s.astype(object)]


def test_engines_agree_on_every_view_column(stores):
    d = stores["duckdb"].query("SELECT * FROM flights_wide ORDER BY flight_id")
    s = stores["sqlite"].query("SELECT * FROM flights_wide ORDER BY flight_id")
    assert list(d.columns) == list(s.columns)
    for col in d.columns:
        if col == "sched_dep":
            assert pd.to_datetime(s[col], utc=True).tolist() == d[col].tolist()
        elif pd.api.types.is_float_dtype(d[col]) and col in ("temp", "wind_speed", "precip", "visib"):
            np.testing.assert_allclose(d[col].to_numpy(float), s[col].to_numpy(float))
        else:
            assert _vals(d[col]) == _vals(s[col]), col


def test_view_matches_pandas_merge(frames, stores):
    flights, tables = frames
    d = stores["duckdb"].query("SELECT flight_id, airline_name, plane_seats, dest_name FROM flights_wide ORDER BY flight_id")
    ref = (tables["flights"].merge(tables["airlines"].rename(columns={"name": "airline_name"}), on="carrier", how="left")
           .merge(tables["planes"][["tailnum", "seats"]], on="tailnum", how="left")
           .merge(tables["airports"][["faa", "name"]].rename(columns={"faa": "dest", "name": "dest_name"}), on="dest", how="left"))
    assert len(d) == len(flights)  # left joins lose no flight
    assert _vals(d["airline_name"]) == _vals(ref["airline_name"])
    assert _vals(d["plane_seats"]) == _vals(ref["seats"])
    assert _vals(d["dest_name"]) == _vals(ref["dest_name"])


def test_dangling_references_counts(frames, stores):
    flights, tables = frames
    dang = dangling_references(stores["duckdb"]).set_index("reference")
    pd.testing.assert_frame_equal(dang, dangling_references(stores["sqlite"]).set_index("reference"))
    t = flights["tailnum"].dropna()
    assert dang.loc["flights.tailnum -> planes.tailnum", "dangling_rows"] == int((~t.isin(tables["planes"]["tailnum"])).sum())


def test_load_is_transactional(frames, tmp_path):
    bad = dict(frames[1])
    bad["weather"] = bad["weather"].assign(temp="not a number")  # fails on insert, after earlier tables went in
    for engine in ("duckdb", "sqlite"):
        path = tmp_path / f"s.{engine}"
        st = RelationalStore(path, engine=engine)
        with pytest.raises(SchemaError, match=f"{engine} refused table 'weather'") as info:
            st.load(bad)
        assert isinstance(info.value.__cause__, (duckdb.Error, sqlite3.Error))  # the engine's reason is kept
        assert st.tables() == []  # nothing half-loaded
        st.load(frames[1])  # the store is usable after the failed load
        assert "flights_wide" in st.tables()
        st.close()
    with pytest.raises(SchemaError, match=r"table 'planes' lacks column \['seats'\]"):
        RelationalStore().load({**frames[1], "planes": frames[1]["planes"].drop(columns="seats")})


def test_bad_inputs(frames):
    flights, tables = frames
    with pytest.raises(DataError, match="engine='mysql' is not one of duckdb, sqlite"):
        RelationalStore(engine="mysql")
    with pytest.raises(SchemaError, match=r"tables \['weather'\] are missing"):
        RelationalStore().load({k: v for k, v in tables.items() if k != "weather"})
    with pytest.raises(DataError, match=r"'airlines' has 1 rows with a duplicate primary key \['carrier'\]"):
        normalize_tables(flights, load_planes(), load_airports(), pd.concat([load_airlines(), load_airlines().head(1)]),
                         load_weather("2013-07-01", "2013-07-01"))


def test_documents_round_trip_and_schema_on_read(stores):
    wide = stores["duckdb"].query("SELECT * FROM flights_wide ORDER BY flight_id")
    docs = to_documents(wide)
    assert all("plane" not in d for d, m in zip(docs, wide["plane_manufacturer"].isna()) if m)
    back = from_documents(json.loads(json.dumps(docs)))  # through real JSON text
    for col in back.columns:
        assert _vals(back[col]) == _vals(wide[col]), col


def test_documents_bad_input():
    with pytest.raises(DataError, match=r"document 1 \(_id=7\) has no required field 'airline.code'"):
        from_documents([{"_id": 6, "sched_dep": "2013-01-01T00:00:00Z", "flight": 1, "airline": {"code": "UA"},
                         "route": {"origin": {"faa": "EWR"}, "dest": {"faa": "ORD"}}},
                        {"_id": 7, "sched_dep": "2013-01-01T00:00:00Z", "flight": 1, "airline": {},
                         "route": {"origin": {"faa": "EWR"}, "dest": {"faa": "ORD"}}}])
    with pytest.raises(SchemaError, match="wide table lacks columns"):
        to_documents(pd.DataFrame({"flight_id": [1]}))


def test_graph_matches_networkx_and_sql(frames, stores):
    flights, _ = frames
    graph = RouteGraph.from_flights(flights)
    G = nx.Graph()
    G.add_weighted_edges_from(route_edges(flights).itertuples(index=False))
    assert set(graph.adjacency) == set(G.nodes)
    for node in sorted(G.nodes)[:15] + ["EWR", "JFK", "LGA"]:
        ref = nx.single_source_shortest_path_length(G, node, cutoff=2)
        del ref[node]
        assert graph.within_hops(node, 2) == ref
        assert graph.within_hops(node, 1) == {k: 1 for k in G.neighbors(node)}
        for st in stores.values():
            assert two_hop_sql(st, node) == ref
    # weights: the flights on each undirected edge
    for a, b, w in G.edges(data="weight"):
        assert graph.adjacency[a][b] == graph.adjacency[b][a] == w
    counts = flights.groupby([flights["origin"].astype(str), flights["dest"].astype(str)]).size()
    top = graph.busiest_routes(5)
    assert top["flights"].tolist() == sorted(counts, reverse=True)[:5]
    for st in stores.values():
        pd.testing.assert_frame_equal(busiest_routes_sql(st, 5), top)


def test_graph_bad_input(frames):
    graph = RouteGraph.from_flights(frames[0])
    with pytest.raises(DataError, match="airport 'ZZZ' is not in the route graph"):
        graph.within_hops("ZZZ")
    with pytest.raises(DataError, match="hops must be a positive integer"):
        graph.within_hops("EWR", -1)
    with pytest.raises(DataError, match="n must be a positive integer"):
        graph.busiest_routes(0)
    with pytest.raises(SchemaError, match=r"edges lacks column \['flights'\]"):
        RouteGraph(pd.DataFrame({"origin": ["EWR"], "dest": ["ORD"]}))
    with pytest.raises(DataError, match="self-loop"):
        RouteGraph(pd.DataFrame({"origin": ["EWR"], "dest": ["EWR"], "flights": [1]}))


def test_query_errors_name_the_engine_and_query(stores):
    for engine, st in stores.items():
        with pytest.raises(DataError, match=f"(?s){engine} could not run the query .*sql: SELECT no_such_column FROM flights"):
            st.query("SELECT no_such_column FROM flights")
        with pytest.raises(DataError, match="sql must be a non-empty string"):
            st.query("  ")
    with pytest.raises(DataError, match="wide table must be a pandas DataFrame, got list"):
        to_documents([{}])
    with pytest.raises(DataError, match="table='planes' must be 'flights' or 'routes'"):
        two_hop_sql(stores["duckdb"], "EWR", table="planes")


# ---- every public entry point refuses bad input with a named error -------------------------------



def _five(frames):
    flights = frames[0]
    return [flights, load_planes(), load_airports(), load_airlines(), load_weather("2013-07-01", "2013-07-03")]


@pytest.mark.parametrize("i, name", list(enumerate(["flights", "planes", "airports", "airlines", "weather"])))
def test_normalize_tables_refuses_none(frames, i, name):
    args = _five(frames)
    args[i] = None
    with pytest.raises(DataError, match=f"{name} must be a pandas DataFrame, got NoneType"):
        normalize_tables(*args)


@pytest.mark.parametrize("edit, exc, msg", [
    (lambda a: a.__setitem__(4, a[4].assign(time_hour=a[4]["time_hour"].dt.tz_localize(None))), DataError,
     "table 'weather' column 'time_hour' has no time zone"),  # TIMESTAMPTZ would read it as UTC
    (lambda a: a.__setitem__(0, a[0].assign(sched_dep=a[0]["sched_dep"].astype(str))), DataError,
     "table 'flights' column 'sched_dep' must be tz-aware"),
    (lambda a: a.__setitem__(4, a[4].assign(origin=a[4]["origin"].astype(object).where(a[4].index != 5, None))), DataError,
     r"table 'weather' has 1 rows with a missing primary key \['origin', 'time_hour'\] \(first at row 5\)"),
    (lambda a: a.__setitem__(1, a[1].drop(columns="seats")), SchemaError, r"table 'planes' lacks column \['seats'\]"),
])
def test_normalize_tables_refuses_what_the_engine_would_store_wrongly(frames, edit, exc, msg):
    args = _five(frames)
    edit(args)
    with pytest.raises(exc, match=msg):
        normalize_tables(*args)


def test_normalize_tables_of_empty_flights_loads_an_empty_store(frames):
    args = _five(frames)
    args[0] = args[0].iloc[:0]
    with RelationalStore().load(normalize_tables(*args)) as st:
        assert len(st.query("SELECT * FROM flights_wide")) == 0
        assert dangling_references(st)["dangling_rows"].sum() == 0


def test_store_refuses_bad_arguments_and_odd_paths(tmp_path):
    with pytest.raises(DataError, match="engine=None is not one of"):
        RelationalStore(engine=None)
    with pytest.raises(ConfigError, match="read_only must be True or False"):
        RelationalStore(read_only="yes")
    with pytest.raises(ConfigError, match="read_only must be True or False"):
        connect_duckdb(tmp_path / "t.duckdb", read_only=pd.DataFrame({"a": [1]}))  # was pandas' truth-value ValueError
    for timeout in (-1, "5", float("nan"), True):
        with pytest.raises(ConfigError, match="timeout must be a non-negative number"):
            RelationalStore(tmp_path / "t.duckdb", timeout=timeout)
    (tmp_path / "text.txt").write_text("not a database\n")
    for engine in ("duckdb", "sqlite"):
        with pytest.raises(DataError, match="database path must be a str or os.PathLike, got NoneType"):
            RelationalStore(None, engine=engine)
        with pytest.raises(DataError, match=f"{engine} database path .* is a directory"):
            RelationalStore(tmp_path, engine=engine)
        with pytest.raises(DataError, match="the folder .*nope.* does not exist"):
            RelationalStore(tmp_path / "nope" / "s.db", engine=engine)
        with pytest.raises(DataError, match=f"{engine} cannot open .*text.txt"):
            RelationalStore(tmp_path / "text.txt", engine=engine)
        with pytest.raises(ConfigError, match="read_only=True needs a database file"):
            RelationalStore(":memory:", engine=engine, read_only=True)
        with pytest.raises(DataError, match="does not exist; read_only=True opens an existing database"):
            RelationalStore(tmp_path / f"absent.{engine}", engine=engine, read_only=True)


@pytest.mark.parametrize("engine", ["duckdb", "sqlite"])
def test_non_ascii_path_round_trips(frames, tmp_path, engine):
    path = tmp_path / "données-✈" / f"vols-ü.{engine}"
    path.parent.mkdir()
    RelationalStore(path, engine=engine).load(frames[1]).close()
    with RelationalStore(path, engine=engine, read_only=True) as st:
        assert len(st.query("SELECT * FROM flights")) == len(frames[0])
        with pytest.raises(ConfigError, match="read_only=True"):
            st.load(frames[1])
        with pytest.raises(ConfigError, match="read_only=True; it cannot run CREATE"):
            st.execute("CREATE TABLE x (a INTEGER)")
        with pytest.raises(ConfigError, match="read_only=True"):
            materialize_routes(st)


@pytest.mark.parametrize("engine", ["duckdb", "sqlite"])
def test_load_refuses_bad_tables(frames, engine):
    tables = frames[1]
    with RelationalStore(engine=engine) as st:
        with pytest.raises(DataError, match="tables must be a dict of DataFrames .* got NoneType"):
            st.load(None)
        with pytest.raises(DataError, match="tables must be a dict of DataFrames .* got list"):
            st.load(list(tables.values()))
        with pytest.raises(DataError, match="table 'airlines' must be a pandas DataFrame, got NoneType"):
            st.load({**tables, "airlines": None})
        naive = tables["weather"].assign(time_hour=tables["weather"]["time_hour"].dt.tz_localize(None))
        with pytest.raises(DataError, match="table 'weather' column 'time_hour' has no time zone"):
            st.load({**tables, "weather": naive})
        assert st.tables() == []
        st.load(tables)
        with pytest.raises(SchemaError, match=r"already holds \['airlines'"):
            st.load(tables)


@pytest.mark.parametrize("engine", ["duckdb", "sqlite"])
def test_query_and_execute_refuse_bad_arguments(stores, engine):
    st = stores[engine]
    with pytest.raises(DataError, match="params must be a list or tuple of values, got NoneType"):
        st.query("SELECT 1", None)
    with pytest.raises(DataError, match="params must be a list or tuple of values, got str"):
        st.query("SELECT ?", "x")
    with pytest.raises(DataError, match="sql must be a non-empty string, got None"):
        st.execute(None)
    with pytest.raises(DataError, match=f"{engine} could not run the statement .*sql: CREATE TABLE flights"):
        st.execute("CREATE TABLE flights (a INTEGER)")
    assert st.query("SELECT COUNT(*) AS n FROM flights")["n"].iloc[0] > 0  # still usable
    with RelationalStore(engine=engine) as fresh:
        assert fresh.query("CREATE TABLE t (a INTEGER)").empty  # a statement without rows: an empty frame (sqlite: TypeError)


@pytest.mark.parametrize("engine", ["duckdb", "sqlite"])
def test_closed_or_empty_store_gives_named_errors(engine):
    st = RelationalStore(engine=engine)
    with pytest.raises(DataError, match=f"{engine} could not run the query"):
        dangling_references(st)  # nothing loaded
    with pytest.raises(DataError, match=f"{engine} could not run the statement"):
        materialize_routes(st)
    st.close()
    with pytest.raises(DataError, match=f"{engine} could not run the query"):
        st.tables()


@pytest.mark.parametrize("fn", [dangling_references, materialize_routes, lambda s: two_hop_sql(s, "EWR"),
                                lambda s: busiest_routes_sql(s, 3)])
def test_store_functions_refuse_a_non_store(fn):
    with pytest.raises(DataError, match="needs a RelationalStore, got NoneType"):
        fn(None)


@pytest.mark.parametrize("engine", ["duckdb", "sqlite"])
def test_sql_graph_functions_refuse_bad_arguments(stores, engine):
    st = stores[engine]
    for n in (0, -1, "3", 2.0, True, None):  # LIMIT 0 returned an empty frame silently
        with pytest.raises(DataError, match="n must be a positive integer"):
            busiest_routes_sql(st, n)
    assert len(busiest_routes_sql(st, np.int64(3))) == 3
    with pytest.raises(DataError, match="node must be an airport code"):
        two_hop_sql(st, None)
    with pytest.raises(DataError, match="node must be an airport code"):
        two_hop_sql(st, ["EWR"])
    with pytest.raises(DataError, match="table=None must be"):
        two_hop_sql(st, "EWR", table=None)


def test_documents_refuse_bad_input(stores):
    wide = stores["duckdb"].query("SELECT * FROM flights_wide ORDER BY flight_id LIMIT 20")
    assert to_documents(wide.iloc[:0]) == []
    with pytest.raises(DataError, match="wide table must be a pandas DataFrame, got NoneType"):
        to_documents(None)
    with pytest.raises(DataError, match="wide table column 'origin' has 1 missing values .*first at row 3"):
        to_documents(wide.assign(origin=wide["origin"].where(wide.index != 3, None)))
    with pytest.raises(DataError, match="wide table column 'sched_dep' has no time zone"):
        to_documents(wide.assign(sched_dep=wide["sched_dep"].dt.tz_localize(None)))
    with pytest.raises(DataError, match="'2013-07-01 10:00:00', which is not an ISO-8601 time with a UTC offset"):
        to_documents(wide.assign(sched_dep="2013-07-01 10:00:00"))
    lite = stores["sqlite"].query("SELECT * FROM flights_wide ORDER BY flight_id LIMIT 20")  # sched_dep as text ending in Z
    assert to_documents(lite) == to_documents(wide)
    docs = to_documents(wide)
    for bad, msg in [(None, "got NoneType"), (docs[0], r"got dict \(one document\? wrap it in a list\)"),
                     ("[{}]", "got str"), (42, "got int")]:
        with pytest.raises(DataError, match=msg):
            from_documents(bad)
    for when, msg in [("2013-07-01T10:00:00", "is not an ISO-8601 time with a UTC offset"),
                      (1372672800, "is not an ISO-8601 time with a UTC offset"),
                      ("2013-13-45T10:00:00Z", "does not parse as ISO-8601")]:
        with pytest.raises(DataError, match=msg):
            from_documents([docs[0], {**docs[1], "sched_dep": when}])
    empty = from_documents([])
    assert list(empty.columns) == list(from_documents(docs).columns) and len(empty) == 0


@pytest.mark.parametrize("make, msg", [
    (lambda f: None, "flights must be a pandas DataFrame, got NoneType"),
    (lambda f: f.drop(columns="dest"), r"flights lacks column \['dest'\]"),
    (lambda f: f.assign(dest=f["dest"].astype(object).where(f.index != 2, None)), r"flights\['dest'\] has 1 missing airport codes"),
    (lambda f: f.assign(origin=f["origin"].astype(object).where(f.index != 0, 7)), r"flights\['origin'\] holds 7"),
])
def test_route_edges_refuses_bad_flights(frames, make, msg):
    with pytest.raises(DataError, match=msg):
        route_edges(make(frames[0]))


def test_route_edges_of_empty_flights_is_an_empty_graph(frames):
    edges = route_edges(frames[0].iloc[:0])
    assert list(edges.columns) == ["origin", "dest", "flights"] and len(edges) == 0
    g = RouteGraph(edges)
    assert g.adjacency == {} and len(g.busiest_routes(3)) == 0
    with pytest.raises(DataError, match="airport 'EWR' is not in the route graph"):
        g.neighbors("EWR")


@pytest.mark.parametrize("edges, msg", [
    (None, "edges must be a pandas DataFrame, got NoneType"),
    ([("EWR", "ORD", 1)], "edges must be a pandas DataFrame, got list"),
    (pd.DataFrame({"origin": ["EWR"], "dest": [None], "flights": [1]}), r"edges\['dest'\] has 1 missing airport codes"),
    (pd.DataFrame({"origin": ["EWR"], "dest": [""], "flights": [1]}), r"edges\['dest'\] holds ''"),
    (pd.DataFrame({"origin": ["EWR"], "dest": ["ORD"], "flights": [np.nan]}), "positive integer counts; row 0 has nan"),
    (pd.DataFrame({"origin": ["EWR"], "dest": ["ORD"], "flights": [0]}), "positive integer counts; row 0 has 0"),
    (pd.DataFrame({"origin": ["EWR"], "dest": ["ORD"], "flights": [1.5]}), "positive integer counts; row 0 has 1.5"),
    (pd.DataFrame({"origin": ["EWR"], "dest": ["ORD"], "flights": ["3"]}), "positive integer counts, got dtype"),
    (pd.DataFrame({"origin": ["EWR"], "dest": ["ORD"], "flights": [True]}), "positive integer counts, got dtype bool"),
])
def test_route_graph_refuses_bad_edges(edges, msg):
    with pytest.raises(DataError, match=msg):
        RouteGraph(edges)


def test_route_graph_lookups_refuse_bad_arguments_and_take_non_ascii_codes():
    g = RouteGraph(pd.DataFrame({"origin": ["EWR", "ZÜR"], "dest": ["ZÜR", "東京"], "flights": [3, 2]}))
    assert g.within_hops("EWR", 2) == {"ZÜR": 1, "東京": 2}
    assert g.neighbors("東京") == {"ZÜR": 2}
    with pytest.raises(DataError, match=r"airport \['EWR'\] is not in the route graph"):
        g.neighbors(["EWR"])  # unhashable: was a raw TypeError
    with pytest.raises(DataError, match="airport None is not in the route graph"):
        g.within_hops(None)
    for hops in (True, 1.0, "2", None):
        with pytest.raises(DataError, match="hops must be a positive integer"):
            g.within_hops("EWR", hops)
    assert g.within_hops("EWR", np.int64(1)) == {"ZÜR": 1}
