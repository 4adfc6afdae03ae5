"""Point-in-time retrieval: mlsys OfflineStore vs pandas.merge_asof, on flights, side by side in one run.

Part 1 (the fair comparison). Entity rows are flights (replicated with minute shifts beyond the 336,776 of 2013),
sorted by `sched_dep` once, outside the timing, as a pandas user must sort them for `merge_asof`. The feature tables
are prepared for `merge_asof` once, outside the timing too: deduplicated (last row wins, as in the store) and sorted by
time, keys in the same dtype as the entity rows. Both sides receive the same sorted entity frame and their results are
compared value by value. Workloads:

- weather: hourly weather by `origin` (3 keys, TTL 3h = merge_asof `tolerance`);
- weather+route: the same plus route history by (`origin`, `dest`) (two chained joins);
- plane: aircraft year by `tailnum` (4,043 keys of 5-6 characters; some flights have none).

Each for string keys (pandas' `str` dtype) and categorical keys (one shared `CategoricalDtype` on both sides), at
25k .. 1.6M entity rows. mlsys "warm" reuses the store object (its index of the stored rows is cached); "cold" is a
new store object per call (reads the Parquet parts and indexes them again). Times are medians of `--repeat` runs
(more for small sizes), mlsys and merge_asof alternating.

Part 2: the same 336,776 flights in their original (unsorted) order: merge_asof needs a sort and the original order
restored; mlsys takes the frame as it is.

Part 3 (`--scale N`): an entity table replicated N times from the flights, written to Parquet and enriched
Parquet-to-Parquet in chunks (`OfflineStore.retrieve_to_parquet`) in a child process whose peak RSS is measured,
against pandas reading it whole and running the two merge_asof calls.

Usage: .venv/bin/python bench/bench_pit.py [--sizes 25000,100000,336776,1600000] [--repeat 7] [--scale 0]
"""
import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from mlsys.datasets import load_flights, load_planes, load_weather
from mlsys.features.store import FeatureCatalog, FeatureView, OfflineStore, history_rates

WEATHER = ("temp", "wind_speed", "precip", "visib")
ROUTE = ("route_late_rate", "route_n")
VIEWS = {
    "weather": FeatureView("weather", ("origin",), WEATHER, "time_hour", ttl="3h"),
    "route_history": FeatureView("route_history", ("origin", "dest"), ROUTE, "available_at"),
    "plane": FeatureView("plane", ("tailnum",), ("plane_year",), "valid_from"),
}
WORKLOADS = {"weather": ["weather"], "weather+route": ["weather", "route_history"], "plane": ["plane"]}
KEYS = ("origin", "dest", "tailnum")


def feature_tables():
    flights, weather = load_flights(), load_weather()
    planes = load_planes()
    route = history_rates(flights, ["origin", "dest"], "route")
    plane = planes[["tailnum", "year"]].rename(columns={"year": "plane_year"}).dropna(subset=["tailnum"])
    plane = plane.assign(plane_year=plane.plane_year.astype("float64"), valid_from=pd.Timestamp("1900-01-01", tz="UTC"))
    return flights, {"weather": weather[["origin", "time_hour", *WEATHER]], "route_history": route, "plane": plane}


def key_dtypes(flights, tables, kind):
    "One dtype per key column for every frame: `str`, or a categorical shared by both sides of each join."
    if kind == "str":
        return {k: "str" for k in KEYS}
    out = {}
    for k in KEYS:
        vals = [flights[k].astype("str")] + [t[k].astype("str") for t in tables.values() if k in t]
        out[k] = pd.CategoricalDtype(sorted(pd.concat(vals).dropna().unique()))
    return out


def entity_rows(flights, n):
    "n rows: the flights, replicated with a minute shift per copy when n exceeds them, sorted by sched_dep."
    reps = -(-n // len(flights))
    base = flights[["origin", "dest", "tailnum", "sched_dep"]]
    ent = pd.concat([base.assign(sched_dep=base.sched_dep + pd.Timedelta(minutes=i)) for i in range(reps)], ignore_index=True)
    return ent.sort_values("sched_dep", kind="stable").iloc[:n].reset_index(drop=True)


def prepare_right(view, table, dtypes):
    "A feature table as a pandas user prepares it for merge_asof, once: keys typed, last write wins ties, sorted by time."
    t = table.astype({k: dtypes[k] for k in view.entity})
    t = t[[*view.entity, view.timestamp, *view.features]].drop_duplicates([*view.entity, view.timestamp], keep="last")
    return t.sort_values(view.timestamp, kind="stable").reset_index(drop=True)


def merge_asof_chain(left, rights, views):
    out = left
    for view, right in zip(views, rights):
        tol = view.ttl if view.ttl is not None else None
        out = pd.merge_asof(out, right, left_on="sched_dep", right_on=view.timestamp, by=list(view.entity),
                            tolerance=tol, allow_exact_matches=True).drop(columns=view.timestamp)
    return out


def refs(names):
    return [r for n in names for r in VIEWS[n].refs]


def median_pair(fa, fb, repeat):
    "Medians of `repeat` alternating runs of two functions, after one warm-up each; the last results."
    ra, rb = fa(), fb()
    ta, tb = [], []
    for _ in range(repeat):
        t = time.perf_counter()
        ra = fa()
        ta.append(time.perf_counter() - t)
        t = time.perf_counter()
        rb = fb()
        tb.append(time.perf_counter() - t)
    return statistics.median(ta), statistics.median(tb), ra, rb


def same(a, b, cols):
    return all(np.array_equal(a[c].to_numpy(float), b[c].to_numpy(float), equal_nan=True) for c in cols)


def part1(flights, tables, store, sizes, repeat):
    print("## Point-in-time join: mlsys OfflineStore vs pandas.merge_asof (both given the same sorted entity rows)\n")
    print(f"median of {repeat} alternating runs ({repeat} x 336,776 / rows, up to {10 * repeat}, below 336,776 rows); "
          "speed-up = merge_asof seconds / mlsys seconds (> 1: mlsys faster)\n")
    print("| workload | keys | entity rows | merge_asof s | mlsys warm s | speed-up warm | mlsys cold s | speed-up cold | identical |")
    print("|---|---|---|---|---|---|---|---|---|")
    rows = []
    for kind in ("str", "category"):
        dtypes = key_dtypes(flights, tables, kind)
        rights = {n: prepare_right(VIEWS[n], tables[n], dtypes) for n in VIEWS}
        for n in sizes:
            ent = entity_rows(flights, n).astype({k: dtypes[k] for k in KEYS})
            reps = min(repeat * max(1, 336_776 // n), 10 * repeat)  # small sizes: more runs, so the median is stable
            for wl, names in WORKLOADS.items():
                t_base, t_warm, t_cold, ok = measure(ent, names, rights, store, reps)
                rows.append((wl, kind, n, t_base, t_warm, t_cold, ok))
                print(f"| {wl} | {kind} | {n:,} | {t_base:.4f} | {t_warm:.4f} | {t_base / t_warm:.2f}x | {t_cold:.4f} | "
                      f"{t_base / t_cold:.2f}x | {ok} |", flush=True)
    slower = [r for r in rows if r[4] > r[3]]
    print(f"\nwarm mlsys slower than merge_asof in {len(slower)} of {len(rows)} cells"
          + (": " + ", ".join(f"{w}/{k}/{n:,} ({b / m:.2f}x)" for w, k, n, b, m, _, _ in slower) if slower else ""))
    if not all(r[-1] for r in rows):
        raise SystemExit("results differ from merge_asof")
    return rows


def measure(ent, names, rights, store, repeat):
    "(merge_asof s, mlsys warm s, mlsys cold s, identical) for one workload on one entity frame."
    views = [VIEWS[v] for v in names]
    t_base, t_warm, b, a = median_pair(lambda: merge_asof_chain(ent, [rights[v] for v in names], views),
                                       lambda: store.get_historical_features(ent, refs(names), "sched_dep"), repeat)
    cold = lambda: OfflineStore(store.path, store.catalog).get_historical_features(ent, refs(names), "sched_dep")
    t_cold = statistics.median([_timed(cold) for _ in range(max(1, repeat // 2))])
    return t_base, t_warm, t_cold, same(a, b, [f for v in views for f in v.features]) and len(a) == len(b)


def _timed(fn):
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def part2(flights, tables, store, repeat):
    "Unsorted entity rows (flights in file order): merge_asof must sort, then restore the order."
    dtypes = key_dtypes(flights, tables, "str")
    rights = {n: prepare_right(VIEWS[n], tables[n], dtypes) for n in VIEWS}
    ent = flights[["origin", "dest", "tailnum", "sched_dep"]].astype({k: "str" for k in KEYS}).reset_index(drop=True)
    names = WORKLOADS["weather+route"]
    views = [VIEWS[v] for v in names]

    def pandas_way():
        left = ent.reset_index(names="__row").sort_values("sched_dep", kind="stable")
        return merge_asof_chain(left, [rights[v] for v in names], views).sort_values("__row").set_index("__row")

    t_base, t_warm, b, a = median_pair(pandas_way, lambda: store.get_historical_features(ent, refs(names), "sched_dep"), repeat)
    ok = same(a, b, [f for v in views for f in v.features])
    print(f"\n## Unsorted entity rows ({len(ent):,} flights in file order, weather+route, str keys)\n")
    print("| method | seconds | identical |")
    print("|---|---|---|")
    print(f"| merge_asof + sort + restore order (baseline) | {t_base:.4f} | - |")
    print(f"| mlsys OfflineStore (warm) | {t_warm:.4f} | {ok} |")
    print(f"\nspeed-up {t_base / t_warm:.2f}x")


CHILD = r"""
import sys, time

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
from mlsys.features.store import FeatureCatalog, FeatureView, OfflineStore

def hwm_mb():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024

store_dir, ent_path = sys.argv[1:3]
store = OfflineStore(store_dir, FeatureCatalog())
w = store.read(FeatureView("weather", ("origin",), ("temp", "wind_speed", "precip", "visib"), "time_hour", ttl="3h"))
r = store.read(FeatureView("route_history", ("origin", "dest"), ("route_late_rate", "route_n"), "available_at"))
w, r = w.sort_values("time_hour"), r.sort_values("available_at")
t = time.perf_counter()
left = pd.read_parquet(ent_path).sort_values("sched_dep")
out = pd.merge_asof(left, w, left_on="sched_dep", right_on="time_hour", by="origin", tolerance=pd.Timedelta("3h"))
out = pd.merge_asof(out, r, left_on="sched_dep", right_on="available_at", by=["origin", "dest"])
print(time.perf_counter() - t, hwm_mb())
"""


def out_of_core(store, flights, scale: int, chunk: int, tmp: Path):
    import pyarrow as pa
    import pyarrow.parquet as pq
    ent_path = tmp / "entities.parquet"
    base = flights[["origin", "dest", "sched_dep"]].astype({"origin": "str", "dest": "str"})
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
    got = pd.read_parquet(out_path, filters=[("copy_id", "=", 0)]).sort_values(["sched_dep", "origin", "dest"])
    res = subprocess.run([sys.executable, "-c", PANDAS_CHILD, str(store.path), str(ent_path)], capture_output=True, text=True)
    if res.returncode:
        raise SystemExit(f"pandas child failed:\n{res.stderr[-3000:]}")
    p_secs, p_peak = map(float, res.stdout.split()[-2:])
    ref = store.get_historical_features(base, refs(WORKLOADS["weather+route"]), "sched_dep").sort_values(["sched_dep", "origin", "dest"])
    ok = len(got) == len(ref) and same(got, ref, [*WEATHER, *ROUTE])
    print(f"\n## Out of core: {n:,} entity rows, Parquet to Parquet in chunks of {chunk:,} rows\n")
    print("| entity rows | Parquet file MB | as pandas DataFrame MB | seconds | rows/s | child RSS after imports MB | child peak RSS MB | copy 0 == in-memory |")
    print("|---|---|---|---|---|---|---|---|")
    print(f"| {n:,} | {ent_path.stat().st_size / 2**20:.0f} | {in_memory_mb:.0f} | {secs:.1f} | {n / secs:,.0f} | {base_rss:.0f} | {rss:.0f} | {ok} |")
    print(f"| (baseline) same rows: pandas read_parquet + 2x merge_asof in one frame | | | {p_secs:.1f} | {n / p_secs:,.0f} | | {p_peak:.0f} | |")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="25000,100000,336776,1600000", help="entity rows, comma-separated")
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--scale", type=int, default=0, help="out-of-core part: copies of the flights (0 skips it)")
    ap.add_argument("--chunk-rows", type=int, default=250_000)
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s]
    flights, tables = feature_tables()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        store = OfflineStore(tmp / "store", FeatureCatalog())
        for name, view in VIEWS.items():
            store.write(view, tables[name])
        part1(flights, tables, store, sizes, args.repeat)
        part2(flights, tables, store, args.repeat)
        if args.scale:
            out_of_core(store, flights, args.scale, args.chunk_rows, tmp)


if __name__ == "__main__":
    main()
