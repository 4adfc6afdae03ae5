"""Hyperparameter search on the flights model: TPE against random search at equal trial budgets over several
seeds, and the wall time of 2 worker processes against 1 on one journal-file study.

Task: the pipeline's gradient-boosting model (`mlsys.pipeline.make_model("hgb")`) on the smoke profile's
training period (flights of 2013-01-01 to 2013-01-14), validated on the latest 20% of that period (a time-based
split), scored by average precision of the "late" class. Space: learning rate, leaf count, L2 penalty, rounds.

Baselines: random search (for TPE), measured with the same seeds and budget; one worker (for two workers),
measured in the same run on the same budget. Each seed's TPE run begins with the same random trials as the
random search of that seed (Optuna seeds both alike), so the comparison is paired.

Usage: python bench/bench_hpo.py [--seeds 5] [--budget 30] [--parallel-budget 16] [--repeats 2]
Prints markdown tables. Not run in tests.
"""
import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from mlsys.datasets import load_flights, load_planes, load_weather
from mlsys.modeling.hpo import Float, Int, tune
from mlsys.pipeline import FEATURES, LABEL, build_features, make_model

SPACE = {
    "learning_rate": Float(0.01, 0.5, log=True),
    "max_leaf_nodes": Int(4, 64, log=True),
    "l2_regularization": Float(1e-3, 10.0, log=True),
    "max_iter": Int(20, 200, log=True),
}


def flights():
    feats = build_features(load_flights("2013-01-01", "2013-01-14"), load_weather("2013-01-01", "2013-01-14"), load_planes())
    feats = feats[feats[LABEL].notna()].sort_values("sched_dep").reset_index(drop=True)
    return feats[FEATURES], feats[LABEL].astype(bool), feats["sched_dep"]


def search(X, y, times, sampler, budget, seed, **kw):
    return tune(make_model("hgb").set_params(early_stopping=False), SPACE, budget, X=X, y=y, times=times,
                scoring="average_precision", sampler=sampler, seed=seed, refit=False, **kw)


def compare_samplers(X, y, times, samplers, seeds, budget):
    rows, curves = [], {}
    for s in samplers:
        for seed in range(seeds):
            t0 = time.perf_counter()
            res = search(X, y, times, s, budget, seed)
            best = res.trials["value"].cummax().to_numpy()
            curves[(s, seed)] = best
            rows.append({"sampler": s, "seed": seed, "best AP": best[-1], "wall s": time.perf_counter() - t0})
            print(f"  {s:6s} seed {seed}: best AP {best[-1]:.4f} ({rows[-1]['wall s']:.0f} s)", flush=True)
    return pd.DataFrame(rows), curves


def parallel(X, y, times, budget, repeats):
    "Wall seconds of the same search with 1 worker in-process, and with 2 spawned workers on a journal file."
    from threadpoolctl import threadpool_limits
    out = {"1 worker, all threads": [], "1 worker, 1 thread": [], "2 workers, 1 thread each": []}
    for r in range(repeats):
        with tempfile.TemporaryDirectory() as d:
            for label, kw in [("1 worker, all threads", {}), ("1 worker, 1 thread", {"threads": 1}),
                              ("2 workers, 1 thread each", {"n_workers": 2})]:
                threads = kw.pop("threads", None)
                path = Path(d) / f"{label.replace(' ', '_').replace(',', '')}-{r}.journal"
                t0 = time.perf_counter()
                if threads:
                    with threadpool_limits(threads):
                        res = search(X, y, times, "random", budget, seed=r, storage=path, study_name="p", **kw)
                else:
                    res = search(X, y, times, "random", budget, seed=r, storage=path, study_name="p", **kw)
                out[label].append(time.perf_counter() - t0)
                assert len(res.trials) == budget
    return {k: min(v) for k, v in out.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--budget", type=int, default=30)
    ap.add_argument("--parallel-budget", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--samplers", default="tpe,random")
    a = ap.parse_args()
    import sklearn.ensemble  # noqa: F401  (loads OpenMP before the thread limit below is reported)
    from threadpoolctl import threadpool_info, threadpool_limits
    X, y, times = flights()
    print(f"flights 2013-01-01..14: {len(X):,} rows, late rate {y.mean():.3f}; validation = latest 20% of the period; "
          f"Python {platform.python_version()}, {os.cpu_count()} CPUs, OpenMP threads "
          f"{[i['num_threads'] for i in threadpool_info() if i['internal_api'] == 'openmp']}\n")
    samplers = a.samplers.split(",")
    with threadpool_limits(1):  # one thread per fit: comparable runs on a shared machine
        df, curves = compare_samplers(X, y, times, samplers, a.seeds, a.budget)
    print(f"\n### TPE vs random: best validation AP after {a.budget} trials, {a.seeds} seeds\n")
    print("| sampler | mean best AP | std | min | max | mean best after 10 trials |")
    print("|---|---:|---:|---:|---:|---:|")
    for s in samplers:
        v = df[df["sampler"] == s]["best AP"]
        at10 = np.mean([curves[(s, k)][min(9, a.budget - 1)] for k in range(a.seeds)])
        print(f"| {s} | {v.mean():.4f} | {v.std(ddof=1):.4f} | {v.min():.4f} | {v.max():.4f} | {at10:.4f} |")
    if {"tpe", "random"} <= set(samplers):
        t = df[df["sampler"] == "tpe"].set_index("seed")["best AP"]
        r = df[df["sampler"] == "random"].set_index("seed")["best AP"]
        diff = t - r
        wins = int((diff > 0).sum())
        print(f"\npaired by seed: TPE - random = {diff.mean():+.4f} AP on average (std {diff.std(ddof=1):.4f}); "
              f"TPE better on {wins} of {a.seeds} seeds, equal on {int((diff == 0).sum())}.")
        se = diff.std(ddof=1) / np.sqrt(len(diff)) if len(diff) > 1 else float("inf")
        if diff.mean() > 2 * se:
            verdict = f"TPE wins by more than twice the standard error of the paired difference ({se:.4f})."
        elif diff.mean() < -2 * se:
            verdict = f"TPE LOSES to random search by more than twice the standard error ({se:.4f})."
        else:
            verdict = (f"TPE does NOT beat random search here: the difference is within twice its standard error "
                       f"({se:.4f}) over {len(diff)} seeds.")
        print("verdict:", verdict)
    print(f"\n### 2 workers vs 1: wall seconds for {a.parallel_budget} random-search trials (best of {a.repeats})\n")
    walls = parallel(X, y, times, a.parallel_budget, a.repeats)
    base = walls["1 worker, all threads"]
    print("| setup | wall s | speed-up vs 1 worker, all threads |")
    print("|---|---:|---:|")
    for k, v in walls.items():
        print(f"| {k} | {v:.1f} | {base / v:.2f}x |")
    print("\n(2 workers include starting 2 fresh Python processes, which import mlsys, Optuna and scikit-learn.)")


if __name__ == "__main__":
    main()
