"""Benchmark: 'airports within two hops' and 'busiest routes' on the route graph vs the relational self-join.

Baseline: the equivalent SQL over the normalized `flights` table, in DuckDB and in SQLite.
The graph's build time is reported separately (a graph database pays it at write time).
Run:  .venv/bin/python bench/bench_graph_vs_sql.py [--end 2013-12-31] [--repeat 5]
"""
import argparse
import statistics
import time

from mlsys.data.models import (
    BUSIEST_SQL,
    RelationalStore,
    RouteGraph,
    busiest_routes_sql,
    materialize_routes,
    normalize_tables,
    two_hop_sql,
)
from mlsys.datasets import (
    load_airlines,
    load_airports,
    load_flights,
    load_planes,
    load_weather,
)

SOURCES = ["BNA", "HNL", "SFO", "ORD", "EWR", "MTJ", "ANC", "BQN", "ATL", "LGA"]


def per_call_ms(fn, args_list, repeat):
    times = []
    for _ in range(repeat):
        for a in args_list:
            t0 = time.perf_counter()
            fn(a)
            times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--start", default="2013-01-01")
    ap.add_argument("--end", default="2013-12-31")
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    flights = load_flights(args.start, args.end)
    tables = normalize_tables(flights, load_planes(), load_airports(), load_airlines(), load_weather(args.start, args.end))
    t0 = time.perf_counter()
    graph = RouteGraph.from_flights(flights)
    build_ms = (time.perf_counter() - t0) * 1e3
    sources = [s for s in SOURCES if s in graph.adjacency]
    stores = {e: RelationalStore(engine=e).load(tables) for e in ("duckdb", "sqlite")}
    for e, st in stores.items():  # identical answers before timing anything
        for s in sources:
            assert two_hop_sql(st, s) == graph.within_hops(s, 2), (e, s)
        assert busiest_routes_sql(st, 10).equals(graph.busiest_routes(10)), e
    rows = []
    g2 = per_call_ms(lambda s: graph.within_hops(s, 2), sources, args.repeat)
    gb = per_call_ms(lambda n: graph.busiest_routes(n), [10], args.repeat * 10)
    rows.append(("graph (adjacency map, BFS)", g2, gb))
    for e, st in stores.items():
        rows.append((f"{e}: SQL over flights", per_call_ms(lambda s, st=st: two_hop_sql(st, s), sources, args.repeat),
                     per_call_ms(lambda n, st=st: busiest_routes_sql(st, n), [10], args.repeat * 2)))
    # a fairer relational baseline: the edge list materialized once as a `routes` table (like the graph's build)
    busiest_routes = BUSIEST_SQL.replace("COUNT(*)", "SUM(flights)").replace("FROM flights", "FROM routes")
    for e, st in stores.items():
        materialize_routes(st)
        for s in sources:
            assert two_hop_sql(st, s, table="routes") == graph.within_hops(s, 2)
        rows.append((f"{e}: SQL over a materialized routes table",
                     per_call_ms(lambda s, st=st: two_hop_sql(st, s, table="routes"), sources, args.repeat),
                     per_call_ms(lambda n, st=st: st.query(busiest_routes, [n]), [10], args.repeat * 2)))
    print(f"flights {args.start}..{args.end}: {len(flights):,} rows, {len(graph.adjacency)} airports, "
          f"{sum(len(v) for v in graph.adjacency.values()) // 2} routes; graph build {build_ms:.1f} ms; "
          f"median over {len(sources)} sources x {args.repeat} runs\n")
    print("| method | two-hop ms/query | speedup vs DuckDB | busiest-10 ms/query | speedup vs DuckDB |")
    print("|---|---|---|---|---|")
    duck = rows[1]
    for name, a, b in rows:
        print(f"| {name} | {a:.3f} | {duck[1] / a:.1f}x | {b:.3f} | {duck[2] / b:.1f}x |")


if __name__ == "__main__":
    main()
