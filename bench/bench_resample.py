"""Time mlsys.imbalance.resample against imbalanced-learn on an imbalanced 100k × 20 problem.

Usage: python bench/bench_resample.py [--rows 100000] [--features 20] [--minority 0.1] [--repeat 3] [--skip tomek,smote,nearmiss]
Prints a markdown table with wall and process-CPU seconds (CPU is the fairer number on a busy machine). Both libraries run single-threaded in their own search (n_jobs=1 where
they accept it) and get the same data; the check column compares the outputs (the same rows removed or kept,
in the same order; SMOTE's synthetic rows bit for bit).
"""
from __future__ import annotations

import argparse
import time

import numpy as np
from sklearn.datasets import make_classification

CPU = {}  # process CPU seconds of the last timed call, by wall time; the machine may be shared


def timed(fn, repeat: int) -> tuple[float, object]:
    "Best wall time over `repeat` calls (its CPU time goes to CPU) and the last result."
    best, out = float("inf"), None
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        out = fn()
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        if wall < best:
            best = wall
            CPU[best] = cpu
    return best, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--features", type=int, default=20)
    ap.add_argument("--minority", type=float, default=0.1, help="share of the minority class")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--skip", default="", help="comma-separated samplers to skip (tomek,smote,nearmiss)")
    a = ap.parse_args()

    import imblearn
    from imblearn.over_sampling import SMOTE as ImbSMOTE
    from imblearn.under_sampling import NearMiss as ImbNearMiss
    from imblearn.under_sampling import TomekLinks as ImbTomek

    from mlsys.imbalance.resample import SMOTE, NearMiss, TomekLinks

    X, y = make_classification(a.rows, a.features, n_informative=10, weights=[1 - a.minority],
                               flip_y=0.01, random_state=0)
    skip = set(filter(None, a.skip.split(",")))
    # warm up both libraries (thread pools, first-call imports) so the first timed call is not penalized
    SMOTE(random_state=0).fit_resample(X[:2000], y[:2000])
    ImbSMOTE(random_state=0).fit_resample(X[:2000], y[:2000])
    rows = []
    if "tomek" not in skip:
        ours = TomekLinks()
        t_ours, _ = timed(lambda: ours.fit_resample(X, y), a.repeat)
        ref_obj = ImbTomek(n_jobs=1)
        t_ref, _ = timed(lambda: ref_obj.fit_resample(X, y), a.repeat)
        same = np.array_equal(ours.sample_indices_, ref_obj.sample_indices_)
        rows.append(("TomekLinks", t_ref, t_ours, f"same rows removed: {same} ({a.rows - len(ours.sample_indices_)} removed)"))
    if "smote" not in skip:
        t_ours, (Xo, yo) = timed(lambda: SMOTE(random_state=0).fit_resample(X, y), a.repeat)
        t_ref, (Xr, yr) = timed(lambda: ImbSMOTE(random_state=0).fit_resample(X, y), a.repeat)
        rows.append(("SMOTE (k=5)", t_ref, t_ours, f"identical output: {np.array_equal(Xo, Xr) and np.array_equal(yo, yr)}"))
    if "nearmiss" not in skip:
        ours = NearMiss(version=1)
        t_ours, _ = timed(lambda: ours.fit_resample(X, y), a.repeat)
        ref_obj = ImbNearMiss(version=1, n_jobs=1)
        t_ref, _ = timed(lambda: ref_obj.fit_resample(X, y), a.repeat)
        same = np.array_equal(ours.sample_indices_, ref_obj.sample_indices_)
        rows.append(("NearMiss-1", t_ref, t_ours, f"same rows in the same order: {same}"))

    print(f"\n{a.rows:,} rows × {a.features} features, minority share {a.minority:.0%}, "
          f"imbalanced-learn {imblearn.__version__}, best of {a.repeat}\n")
    print("| sampler | imbalanced-learn wall (s) | mlsys wall (s) | speed-up wall | imbalanced-learn CPU (s) | mlsys CPU (s) | speed-up CPU | check |")
    print("|---|---:|---:|---:|---:|---:|---:|---|")
    for name, t_ref, t_ours, check in rows:
        c_ref, c_ours = CPU[t_ref], CPU[t_ours]
        print(f"| {name} | {t_ref:.2f} | {t_ours:.2f} | {t_ref / t_ours:.1f}× | {c_ref:.2f} | {c_ours:.2f} | "
              f"{c_ref / c_ours:.1f}× | {check} |")


if __name__ == "__main__":
    main()
