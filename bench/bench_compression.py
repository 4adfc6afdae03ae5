"""The compression table of issue 14 (item 10): every technique against its uncompressed model, measured in one run.

The baselines are trained here once (the flights MLP 256-256-128 and the Fashion-MNIST CNN of
`mlsys.deploy.compress`); each compression module's `compression_rows` copies them, compresses, fine-tunes where
its technique does, and measures with `mlsys.deploy.compress.measure` (size on disk, weights, non-zeros, p50/p99
latency at batch 1 and 64 on one CPU thread, accuracy, and AUC on flights). Rows are grouped by model and compared
with that model's uncompressed row: x_smaller, x_faster_b1/_b64 and accuracy_change_pts.

    python bench/bench_compression.py           # full size (minutes)
    python bench/bench_compression.py --quick   # small, for a look
    python bench/bench_compression.py --json out.json
"""
import argparse
import importlib
import json
import os
import sys
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")
MODULES = ["lowrank", "distill", "prune", "quantize", "tfcompress"]
BASELINE = {"flights MLP": "MLP float32", "Fashion CNN": "CNN float32", "flights Keras MLP": None}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="small data and few epochs")
    ap.add_argument("--only", nargs="*", choices=MODULES, help="run only these modules")
    ap.add_argument("--json", help="also write the rows to this JSON file")
    args = ap.parse_args()
    import pandas as pd
    import torch
    from mlsys.core import seed_everything
    from mlsys.deploy import compress as C
    seed_everything(0)
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    flights = C.flights_arrays()
    images = C.image_arrays(n_train=3000 if args.quick else 12000, n_test=1000 if args.quick else 2000)
    mlp, cnn = C.flights_mlp(flights.X_train.shape[1]), C.fashion_cnn()
    C.fit_torch(mlp, flights.X_train, flights.y_train, epochs=2 if args.quick else 4)
    C.fit_torch(cnn, images.X_train, images.y_train, epochs=1 if args.quick else 3, batch_size=128)
    rows = [{**C.measure("MLP float32", mlp, flights.X_test, flights.y_test), "model": "flights MLP"},
            {**C.measure("CNN float32", cnn, images.X_test, images.y_test), "model": "Fashion CNN"}]
    print(f"baselines trained and measured in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    for name in args.only or MODULES:
        t = time.perf_counter()
        mod = importlib.import_module(f"mlsys.deploy.{name}")
        got = mod.compression_rows(flights, images, mlp, cnn, quick=args.quick)
        rows += [{**r, "module": name} for r in got]
        print(f"{name}: {len(got)} rows in {time.perf_counter() - t:.0f} s", file=sys.stderr)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1, default=float)
    cols = ["size_kb", "params", "nonzeros", "p50_b1_ms", "p99_b1_ms", "p50_b64_ms", "p99_b64_ms", "accuracy", "auc",
            "x_smaller", "x_faster_b1", "x_faster_b64", "accuracy_change_pts"]
    pd.set_option("display.width", 250)
    pd.set_option("display.max_columns", 30)
    pd.set_option("display.max_rows", 200)
    for model, group in pd.DataFrame(rows).groupby("model", sort=False):
        base = BASELINE.get(model)
        recs = group.drop(columns=["model"]).to_dict("records")
        if base is not None:  # the uncompressed torch model first, then the techniques in module order
            recs = [r for r in recs if r["technique"] == base][:1] + [r for r in recs if r["technique"] != base]
        table = C.compression_table(recs, baseline=recs[0]["technique"])
        print(f"\n## {model} (baseline: {recs[0]['technique']})\n")
        print(table[[c for c in cols if c in table.columns]].round(3).to_string())
    print(f"\ntotal {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
