"""Point-in-time retrieval: mlsys OfflineStore (DuckDB ASOF JOIN) vs pandas.merge_asof, and an out-of-core run.

Part 1: weather (origin, hourly, TTL 3h) + route history (origin+dest, daily cumulative late rate) for all
336,776 flights, as of each flight's scheduled departure. Baseline: two `pandas.merge_asof` calls (with the
sorting they need and the original row order restored). Results must be identical.

Part 2: an entity table replicated from the flights (default 100x, ~34M rows) written to Parquet and enriched
Parquet-to-Parquet in chunks (`OfflineStore.retrieve_to_parquet`), in a child process whose peak RSS is measured. For
comparison, the size the same entity table takes as a pandas DataFrame (what merge_asof would need in RAM,
before its sort copies).

Usage: .venv/bin/python bench/bench_pit.py [--repeat 7] [--scale 100] [--chunk-rows 250000]
"""
import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from mlsys.datasets import load_flights, load_weather
from mlsys.features.store import FeatureCatalog, FeatureView, OfflineStore, history_rates

WEATHER = ("temp", "wind_speed", "precip", "visib")


def setup(tmp: Path):
    flights = load_flights()
    weather = load_weather()
    route = history_rates(flights, ["origin", "dest"], "route")
    store = OfflineStore(tmp / "store", FeatureCatalog())
    wv = FeatureView("weather", ("origin",), WEATHER, "time_hour", ttl="3h")
    rv = FeatureView("route_history", ("origin", "dest"), ("route_late_rate", "route_n"), "available_at")
    store.write(wv, weather)
    store.write(rv, route)
    ent = flights[["origin", "dest", "sched_dep"]].copy()
    return flights, weather, route, store, ent


def with_store(store, ent, engine="auto"):
    return store.get_historical_features(ent, ["weather", "route_history"], timestamp_col="sched_dep", engine=engine)


def cold_store(store, ent):
    "A fresh store object: reads the Parquet files and encodes the keys again (no cache)."
    return with_store(OfflineStore(store.path, store.catalog), ent)


def prepare_right(weather, route):
    "Feature tables prepared for merge_asof once, outside the timing (the baseline's 'store')."
    w = weather.assign(origin=weather.origin.astype(str))[["origin", "time_hour", *WEATHER]]
    w = w.drop_duplicates(["origin", "time_hour"], keep="last").sort_values("time_hour", kind="stable")
    r = route.assign(origin=route.origin.astype(str), dest=route.dest.astype(str))
    r = r.sort_values("available_at", kind="stable")
    return w, r


def with_merge_asof(w, r, ent):
    left = ent.assign(origin=ent.origin.astype(str), dest=ent.dest.astype(str)).reset_index(names="__row")
    left = left.sort_values("sched_dep", kind="stable")
    out = pd.merge_asof(left, w, left_on="sched_dep", right_on="time_hour", by="origin",
                        tolerance=pd.Timedelta("3h"), allow_exact_matches=True).drop(columns="time_hour")
    out = pd.merge_asof(out, r, left_on="sched_dep", right_on="available_at", by=["origin", "dest"],
                        allow_exact_matches=True).drop(columns="available_at")
    return out.sort_values("__row").set_index("__row")


def best_of(fn, repeat):
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        res = fn()
        times.append(time.perf_counter() - t)
    return min(times), res


CHILD = r"""
import sys, time
from pathlib import Path

def hwm_mb():  # peak RSS of this process image (VmHWM resets on exec, unlike ru_maxrss)
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024

from mlsys.features.store import FeatureCatalog, FeatureView, OfflineStore
store_dir, ent_path, out_path, chunk = sys.argv[1:5]
store = OfflineStore(store_dir, FeatureCatalog())
store.catalog.register(FeatureView("weather", ("origin",), ("temp", "wind_speed", "precip", "visib"), "time_hour", ttl="3h"))
store.catalog.register(FeatureView("route_history", ("origin", "dest"), ("route_late_rate", "route_n"), "available_at"))
base_rss = hwm_mb()
t = time.perf_counter()
store.retrieve_to_parquet(ent_path, ["weather", "route_history"], out_path, timestamp_col="sched_dep", chunk_rows=int(chunk))
print(time.perf_counter() - t, base_rss, hwm_mb())
"""


PANDAS_CHILD = r"""
import sys, time
import pandas as pd

def hwm_mb():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024

store_dir, ent_path = sys.argv[1:3]
w = pd.read_parquet(f"{store_dir}/weather__v1.parquet").rename(columns={"__ts": "time_hour"})
r = pd.read_parquet(f"{store_dir}/route_history__v1.parquet").rename(columns={"__ts": "available_at"})
w = w.assign(origin=w.origin.astype(str)).sort_values("time_hour")
r = r.assign(origin=r.origin.astype(str), dest=r.dest.astype(str)).sort_values("available_at")
t = time.perf_counter()
left = pd.read_parquet(ent_path).sort_values("sched_dep")
out = pd.merge_asof(left, w, left_on="sched_dep", right_on="time_hour", by="origin", tolerance=pd.Timedelta("3h"))
out = pd.merge_asof(out, r, left_on="sched_dep", right_on="available_at", by=["origin", "dest"])
print(time.perf_counter() - t, hwm_mb())
"""


def out_of_core(store, ent, scale: int, chunk: int, tmp: Path):
    import pyarrow as pa
    import pyarrow.parquet as pq
    ent_path = tmp / "entities.parquet"
    base = ent.assign(origin=ent.origin.astype(str), dest=ent.dest.astype(str))
    writer = None
    for i in range(scale):  # written in slices, so this process never holds the whole table either
        part = base.assign(sched_dep=base.sched_dep + pd.Timedelta(minutes=i), copy_id=i)
        table = pa.Table.from_pandas(part, preserve_index=False)
        writer = writer or pq.ParquetWriter(ent_path, table.schema)
        writer.write_table(table)
    writer.close()
    n = len(base) * scale
    in_memory_mb = base.memory_usage(deep=True).sum() * scale / 2**20
    out_path = tmp / "enriched.parquet"
    res = subprocess.run([sys.executable, "-c", CHILD, str(store.path), str(ent_path), str(out_path), str(chunk)],
                         capture_output=True, text=True)
    if res.returncode:
        raise SystemExit(f"out-of-core child failed:\n{res.stderr[-3000:]}")
    secs, base_rss, rss = map(float, res.stdout.split()[-3:])
    # spot-check correctness of the out-of-core output against the in-memory store on one copy
    got = pd.read_parquet(out_path, filters=[("copy_id", "=", 0)]).sort_values(["sched_dep", "origin", "dest"])
    res = subprocess.run([sys.executable, "-c", PANDAS_CHILD, str(store.path), str(ent_path)], capture_output=True, text=True)
    if res.returncode:
        raise SystemExit(f"pandas child failed:\n{res.stderr[-3000:]}")
    p_secs, p_peak = map(float, res.stdout.split()[-2:])
    return dict(pandas_seconds=p_secs, pandas_peak_mb=p_peak, rows=n, file_mb=ent_path.stat().st_size / 2**20, pandas_mb=in_memory_mb, seconds=secs,
                peak_rss_mb=rss, base_rss_mb=base_rss, got=got)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--scale", type=int, default=100)
    ap.add_argument("--chunk-rows", type=int, default=250_000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        flights, weather, route, store, ent = setup(tmp)
        t_store, a = best_of(lambda: with_store(store, ent), args.repeat)
        t_cold, c = best_of(lambda: cold_store(store, ent), args.repeat)
        t_duck, dd = best_of(lambda: with_store(store, ent, "duckdb"), args.repeat)
        w, r = prepare_right(weather, route)
        t_pandas, b = best_of(lambda: with_merge_asof(w, r, ent), args.repeat)
        cols = [*WEATHER, "route_late_rate", "route_n"]
        same = lambda x: all(np.array_equal(x[k].to_numpy(float), b[k].to_numpy(float), equal_nan=True) for k in cols)
        identical = same(a)
        print(f"## Point-in-time retrieval, {len(ent):,} flights x (weather + route history), best of {args.repeat}\n")
        print("| method | seconds | rows/s | identical to merge_asof |")
        print("|---|---|---|---|")
        print(f"| pandas.merge_asof (baseline, 2 joins + sorts) | {t_pandas:.3f} | {len(ent) / t_pandas:,.0f} | - |")
        print(f"| mlsys OfflineStore, engine=auto (numpy sorted search), warm | {t_store:.3f} | {len(ent) / t_store:,.0f} | {identical} |")
        print(f"| mlsys OfflineStore, engine=auto, cold (new store: read Parquet + encode keys) | {t_cold:.3f} | {len(ent) / t_cold:,.0f} | {same(c)} |")
        print(f"| mlsys OfflineStore, engine=duckdb (chained ASOF JOIN) | {t_duck:.3f} | {len(ent) / t_duck:,.0f} | {same(dd)} |")
        print(f"\nspeed-up vs merge_asof: warm {t_pandas / t_store:.2f}x, cold {t_pandas / t_cold:.2f}x, duckdb {t_pandas / t_duck:.2f}x; non-null weather {a['temp'].notna().mean():.4f}, "
              f"route {a['route_n'].notna().mean():.4f}\n")
        if args.scale:
            r = out_of_core(store, ent, args.scale, args.chunk_rows, tmp)
            ref = with_store(store, flights[["origin", "dest", "sched_dep"]]).assign(
                origin=lambda x: x.origin.astype(str), dest=lambda x: x.dest.astype(str)).sort_values(["sched_dep", "origin", "dest"])
            same = len(r["got"]) == len(ref) and all(
                np.array_equal(r["got"][c].to_numpy(float), ref[c].to_numpy(float), equal_nan=True) for c in cols)
            print(f"## Out of core: {r['rows']:,} entity rows, Parquet to Parquet in chunks of {args.chunk_rows:,} rows\n")
            print("| entity rows | Parquet file MB | as pandas DataFrame MB | seconds | rows/s | child RSS after imports MB | child peak RSS MB | copy 0 == in-memory |")
            print("|---|---|---|---|---|---|---|---|")
            print(f"| {r['rows']:,} | {r['file_mb']:.0f} | {r['pandas_mb']:.0f} | {r['seconds']:.1f} | "
                  f"{r['rows'] / r['seconds']:,.0f} | {r['base_rss_mb']:.0f} | {r['peak_rss_mb']:.0f} | {same} |")
            print(f"| (baseline) same rows: pandas read_parquet + 2x merge_asof in one frame | | | {r['pandas_seconds']:.1f} | "
                  f"{r['rows'] / r['pandas_seconds']:,.0f} | | {r['pandas_peak_mb']:.0f} | |")


if __name__ == "__main__":
    main()
