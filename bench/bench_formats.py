"""Benchmark: size, write, full read and one-column read of the flights table in each format.

Baseline: CSV (row-major text), the format most pipelines start from. Two tables, measured side by side in one run:

1. the data files alone (`measure_formats`): every format, including Avro and Protobuf;
2. the public `write_table`/`read_table`, whose commit writes the sidecar twice under a lock (no fsync by default)
   and whose read hashes the file, against the raw write/read of table 1 (the commit's overhead).

Run:
    .venv/bin/python bench/bench_formats.py [--rows N] [--repeat R] [--formats csv,parquet,...]
"""
import argparse
import tempfile
import time
from pathlib import Path

import pandas as pd

from mlsys.data.formats import FORMATS, measure_formats, read_table, write_table
from mlsys.datasets import load_flights


def markdown(df, floatfmt="{:.4g}") -> str:
    cols = list(df.columns)
    out = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for _, r in df.iterrows():
        out.append("| " + " | ".join(floatfmt.format(v) if isinstance(v, float) else str(v) for v in r) + " |")
    return "\n".join(out)


def best(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=None, help="first N flights (default: the whole year)")
    ap.add_argument("--repeat", type=int, default=3, help="runs per timing (minimum reported)")
    ap.add_argument("--formats", default=",".join(FORMATS), help="comma-separated formats (default: all)")
    args = ap.parse_args()
    formats = tuple(args.formats.split(","))
    df = load_flights()
    if args.rows:
        df = df.iloc[: args.rows].reset_index(drop=True)
    with tempfile.TemporaryDirectory() as tmp:
        m = measure_formats(df, tmp, column="dep_delay", formats=formats, repeat=args.repeat)
        rows = []
        for fmt in formats:
            p = Path(tmp) / f"table.{fmt}"
            w = best(lambda p=p, f=fmt: write_table(df, p, format=f), args.repeat)
            r = best(lambda p=p, f=fmt: read_table(p, format=f, allow_pickle=True), args.repeat)
            rows.append({"format": fmt, "write_table_s": w, "read_table_s": r})
    base = m.set_index("format").loc["csv"] if "csv" in formats else None
    if base is not None:
        m["size_vs_csv"] = m["size_mb"] / base["size_mb"]
        m["read_column_speedup_vs_csv"] = base["read_column_s"] / m["read_column_s"]
    api = m[["format", "write_s", "read_s"]].merge(pd.DataFrame(rows), on="format")
    api["commit_overhead"] = api["write_table_s"] / api["write_s"]
    api["verify_overhead"] = api["read_table_s"] / api["read_s"]
    print(f"flights: {len(df):,} rows x {df.shape[1]} columns; single column = dep_delay; min of {args.repeat} runs\n")
    print("data files alone (baseline: csv)\n")
    print(markdown(m))
    print("\nwrite_table / read_table (sidecar commit, lock, fsync, checksum) vs the data file alone\n")
    print(markdown(api))


if __name__ == "__main__":
    main()
