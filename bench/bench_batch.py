"""Batch prediction throughput: one row per predict_proba call (the baseline) vs score_table in chunks vs Dask with 2 workers.

The pipeline's gradient-boosting model is fitted on January 2013 and scores February's flights, repeated to a
bench-sized table written as Parquet (row groups of 32,768 rows). Every path reads the same Parquet file and writes
Parquet; the one-row baseline scores a prefix of it (it is too slow for the whole table) with predict_proba per row.
rows/s is measured side by side in one run; Dask's time excludes starting the cluster (shown apart).

    python bench/bench_batch.py            # ~1.2M rows
    python bench/bench_batch.py --small    # ~120k rows, a quick run
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--small", action="store_true", help="about 120k rows instead of 1.2M")
    ap.add_argument("--one-row", type=int, default=300, help="rows scored one at a time for the baseline")
    args = ap.parse_args()
    from threadpoolctl import threadpool_limits

    from mlsys.datasets import load_flights, load_planes, load_weather
    from mlsys.deploy.batch import score_table, score_table_dask
    from mlsys.pipeline import FEATURES, LABEL, build_features, make_model, time_split

    threadpool_limits(1)  # one thread per process: the comparison is per core, and Dask gets two processes
    flights = load_flights("2013-01-01", "2013-02-28")
    feats = build_features(flights, load_weather("2013-01-01", "2013-02-28"), load_planes())
    train, feb = time_split(feats, "2013-02-01")
    model = make_model().fit(train[FEATURES], train[LABEL].astype(int))
    reps = 5 if args.small else 50
    tmp = Path(tempfile.mkdtemp(prefix="bench-batch-"))
    src = tmp / "flights.parquet"
    one = pa.Table.from_pandas(feb[FEATURES].reset_index(drop=True), preserve_index=False)
    with pq.ParquetWriter(src, one.append_column("row_id", pa.array(np.arange(len(feb)))).schema) as w:
        for r in range(reps):
            w.write_table(one.append_column("row_id", pa.array(np.arange(len(feb)) + r * len(feb))), row_group_size=32768)
    n = len(feb) * reps
    rows = []

    X = feb[FEATURES].iloc[: args.one_row]
    t0 = time.perf_counter()
    for i in range(len(X)):
        model.predict_proba(X.iloc[i:i + 1])
    base = len(X) / (time.perf_counter() - t0)
    rows.append(("one row per call (baseline)", len(X), base, float("nan")))

    for size in [1_000, 10_000, 100_000]:
        r = score_table(model, src, tmp / f"chunked_{size}", key="row_id", chunk_rows=size, progress=False)
        rows.append((f"score_table, chunk_rows={size:,}", r.rows, r.rows_per_s, float("nan")))

    from distributed import Client, LocalCluster
    t0 = time.perf_counter()
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, memory_limit="2GiB", dashboard_address=":0",
                      env={"OMP_NUM_THREADS": "1"}) as cl, Client(cl) as client:
        start = time.perf_counter() - t0
        r = score_table_dask(model, src, tmp / "dask", key="row_id", scheduler=client)
        peak = max(r.peak_memory.values()) / 2**20
    rows.append((f"Dask, 2 workers ({r.chunks} partitions; cluster start {start:.1f} s)", r.rows, r.rows_per_s, peak))

    table = pd.DataFrame(rows, columns=["path", "rows", "rows/s", "peak worker MiB"])
    table["vs one row"] = table["rows/s"] / base
    print(f"\n{n:,} rows of February 2013 flights ({reps} copies), HistGradientBoosting (300 trees), one thread per process\n")
    print("| path | rows | rows/s | vs one row | peak worker MiB |\n|---|---:|---:|---:|---:|")
    for p, k, rate, rel, pk in table[["path", "rows", "rows/s", "vs one row", "peak worker MiB"]].itertuples(index=False):
        print(f"| {p} | {k:,} | {rate:,.0f} | {rel:,.1f}x | {'' if np.isnan(pk) else f'{pk:,.0f}'} |")


if __name__ == "__main__":
    main()
