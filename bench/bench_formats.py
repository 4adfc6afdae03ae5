"""Benchmark: size, write, full read and one-column read of the flights table in each format.

Baseline: CSV (row-major text), the format most pipelines start from. Run:
    .venv/bin/python bench/bench_formats.py [--rows N] [--repeat R]
"""
import argparse
import tempfile

from mlsys.data.formats import measure_formats
from mlsys.datasets import load_flights


def markdown(df, floatfmt="{:.4g}") -> str:
    cols = list(df.columns)
    out = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for _, r in df.iterrows():
        out.append("| " + " | ".join(floatfmt.format(v) if isinstance(v, float) else str(v) for v in r) + " |")
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rows", type=int, default=None, help="first N flights (default: the whole year)")
    ap.add_argument("--repeat", type=int, default=3, help="runs per timing (minimum reported)")
    args = ap.parse_args()
    df = load_flights()
    if args.rows:
        df = df.iloc[: args.rows].reset_index(drop=True)
    with tempfile.TemporaryDirectory() as tmp:
        m = measure_formats(df, tmp, column="dep_delay", repeat=args.repeat)
    base = m.set_index("format").loc["csv"]
    m["size_vs_csv"] = m["size_mb"] / base["size_mb"]
    m["read_column_speedup_vs_csv"] = base["read_column_s"] / m["read_column_s"]
    print(f"flights: {len(df):,} rows x {df.shape[1]} columns; single column = dep_delay; min of {args.repeat} runs\n")
    print(markdown(m))


if __name__ == "__main__":
    main()
