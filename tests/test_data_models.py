"""data.models: relational store on two engines, documents, route graph vs networkx and SQL."""
import json
import sqlite3

import duckdb
import networkx as nx
import numpy as np
import pandas as pd
import pytest

from mlsys.core import DataError, SchemaError
from mlsys.data.models import (
    RelationalStore,
    RouteGraph,
    busiest_routes_sql,
    dangling_references,
    from_documents,
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
    with pytest.raises(SchemaError, match=r"table 'planes' lacks columns \['seats'\]"):
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
    with pytest.raises(SchemaError, match="wide table is missing columns"):
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
    with pytest.raises(SchemaError, match=r"edges is missing columns \['flights'\]"):
        RouteGraph(pd.DataFrame({"origin": ["EWR"], "dest": ["ORD"]}))
    with pytest.raises(DataError, match="self-loop"):
        RouteGraph(pd.DataFrame({"origin": ["EWR"], "dest": ["EWR"], "flights": [1]}))


def test_query_errors_name_the_engine_and_query(stores):
    for engine, st in stores.items():
        with pytest.raises(DataError, match=f"(?s){engine} could not run the query .*sql: SELECT no_such_column FROM flights"):
            st.query("SELECT no_such_column FROM flights")
        with pytest.raises(DataError, match="sql must be a non-empty string"):
            st.query("  ")
    with pytest.raises(DataError, match="wide must be a pandas DataFrame, got list"):
        to_documents([{}])
    with pytest.raises(DataError, match="table='planes' must be 'flights' or 'routes'"):
        two_hop_sql(stores["duckdb"], "EWR", table="planes")
