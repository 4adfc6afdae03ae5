"""Research vs production, measured: per-request latency percentiles and throughput of the flights model by batch size.

Baseline: batch size 1 (one request per call, how an online service answers by default); every other row is a
batched call of the same model on the same rows. Latency is per request: every request in a batch waits for the
whole call. Percentiles are nearest-rank (`np.percentile(..., method="inverted_cdf")`) with 95% percentile-bootstrap
intervals from a seeded Generator (`mlsys.overview.latency_profile`).

Usage: python bench/bench_latency.py [--repeats 200] [--batch-sizes 1,8,64,512,4096] [--threads 1]
Prints a markdown table and the machine it ran on. Not run in tests; on a loaded machine the tail is the machine's.
"""
import argparse
import os
import platform

import numpy as np
import pandas as pd


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=200, help="timed calls per batch size")
    ap.add_argument("--batch-sizes", default="1,8,64,512,4096", help="comma-separated batch sizes")
    ap.add_argument("--threads", type=int, default=1, help="OpenMP/BLAS threads of the model")
    args = ap.parse_args()
    sizes = tuple(int(b) for b in args.batch_sizes.split(","))

    import sklearn.ensemble  # noqa: F401  (load the OpenMP runtime before limiting it)
    from sklearn.ensemble import HistGradientBoostingClassifier
    from threadpoolctl import threadpool_limits

    from mlsys.overview import flights_table, latency_profile
    from mlsys.pipeline import FEATURES

    with threadpool_limits(args.threads):
        flights = flights_table("2013-01-01", "2013-01-28")
        cats = [i for i, c in enumerate(FEATURES) if isinstance(flights[c].dtype, pd.CategoricalDtype)]
        X = np.column_stack([flights[c].cat.codes.to_numpy(float) if i in cats else flights[c].to_numpy(float)
                             for i, c in enumerate(FEATURES)])
        fit = (flights["local_date"] <= "2013-01-21").to_numpy() & flights["is_late"].notna().to_numpy()
        model = HistGradientBoostingClassifier(categorical_features=cats, max_iter=100, learning_rate=0.1, max_leaf_nodes=15,
                                               min_samples_leaf=100, early_stopping=False, random_state=0)
        model.fit(X[fit], flights.loc[fit, "is_late"].astype(bool))
        rows = X[~fit]
        if max(sizes) > len(rows):
            rows = np.tile(rows, (max(sizes) // len(rows) + 1, 1))
        prof = latency_profile(model.predict_proba, rows, batch_sizes=sizes, repeats=args.repeats, random_state=0)
    base = prof.iloc[0]
    table = pd.DataFrame({
        "batch size": prof["batch_size"],
        "p50 ms [95% CI]": [f"{r.p50_ms:.2f} [{r.p50_lo:.2f}, {r.p50_hi:.2f}]" for r in prof.itertuples()],
        "p90 ms [95% CI]": [f"{r.p90_ms:.2f} [{r.p90_lo:.2f}, {r.p90_hi:.2f}]" for r in prof.itertuples()],
        "p99 ms [95% CI]": [f"{r.p99_ms:.2f} [{r.p99_lo:.2f}, {r.p99_hi:.2f}]" for r in prof.itertuples()],
        "throughput rows/s": prof["throughput_rows_s"].round(0).astype(int),
        "throughput vs batch 1": (prof["throughput_rows_s"] / base["throughput_rows_s"]).map("{:.1f}x".format),
        "p99 vs batch 1": (prof["p99_ms"] / base["p99_ms"]).map("{:.1f}x".format),
    })
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, load average "
          f"{os.getloadavg()[0]:.1f}; model threads: {args.threads}; {args.repeats} calls per batch size\n")
    print(table.to_markdown(index=False))


if __name__ == "__main__":
    main()
