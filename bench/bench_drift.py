"""Drift detectors against their references (issue 15, item 5), each reference in its own virtual environment, run as a
subprocess so it never shares ours (create them with `bash bench/setup_drift_refs.sh`):

1. alibi-detect 0.13 (PyTorch backend, CPU) on 1,000 x 32 reference and test samples with 100 permutations, over
   paired draws (half without drift, half with a small mean shift): MMD and LSDD time per test (fit + predict vs the
   detector's construction + predict) and whether both flag the same draws; KS statistics and p-values compared
   feature by feature (alibi uses scipy's asymptotic p-value, so ours runs with method="asymp").
2. Evidently 0.7's DataDriftPreset on the full flights year (January-June reference, July-December current): time and
   peak memory (each side in a fresh process, peak RSS) vs mlsys's UnivariateDrift (KS for numeric, chi-squared for
   categorical columns), on two tables: all columns of `flights_drift_data` ("drift"), and the pipeline's feature
   table `build_features(...)[FEATURES]` for the year ("features", cached in bench/.cache; its weather, plane and
   history columns have missing values, which mlsys's detectors refuse, so mlsys tests each column's non-missing
   values with Bonferroni over all columns, as Evidently drops each column's missing values).

Usage: python bench/bench_drift.py [--draws 50] [--skip-evidently] [--evidently-cases drift,features] [--threads N]
Each side gets the same thread count (OMP/MKL/torch). A short run: --draws 6 --skip-evidently.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
VENVS = ROOT / "bench" / ".venvs"

ALIBI_WORKER = textwrap.dedent('''
    import json, logging, sys, time, warnings
    import numpy as np, torch
    warnings.simplefilter("ignore")
    logging.disable(logging.WARNING)  # alibi logs that the sigma we pass overrides its own inference
    torch.set_num_threads(int(sys.argv[3]))
    from alibi_detect.cd import KSDrift, LSDDDrift, MMDDrift
    d = np.load(sys.argv[1])
    refs, tests, sigmas = d["refs"], d["tests"], d["sigmas"]
    out = {"mmd": [], "lsdd": [], "ks": []}
    for i in range(len(refs)):
        torch.manual_seed(i); np.random.seed(i)
        t = time.perf_counter()
        r = MMDDrift(refs[i], backend="pytorch", p_val=0.05, n_permutations=100, sigma=np.array([sigmas[i]]),
                     device="cpu").predict(tests[i])["data"]
        out["mmd"].append({"time": time.perf_counter() - t, "p": float(r["p_val"]), "drift": bool(r["is_drift"]),
                           "stat": float(r["distance"])})
        t = time.perf_counter()
        r = LSDDDrift(refs[i], backend="pytorch", p_val=0.05, n_permutations=100, device="cpu").predict(tests[i])["data"]
        out["lsdd"].append({"time": time.perf_counter() - t, "p": float(r["p_val"]), "drift": bool(r["is_drift"])})
        t = time.perf_counter()
        r = KSDrift(refs[i], p_val=0.05, correction="bonferroni").predict(tests[i], return_p_val=True, return_distance=True)["data"]
        out["ks"].append({"time": time.perf_counter() - t, "p": np.asarray(r["p_val"]).tolist(),
                          "stat": np.asarray(r["distance"]).tolist(), "drift": bool(r["is_drift"])})
    json.dump(out, open(sys.argv[2], "w"))
''')

EVIDENTLY_WORKER = textwrap.dedent('''
    import json, resource, sys, time, tracemalloc, warnings
    import pandas as pd
    warnings.simplefilter("ignore")
    ref, cur = pd.read_parquet(sys.argv[1]), pd.read_parquet(sys.argv[2])
    from evidently import Report
    from evidently.presets import DataDriftPreset
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if sys.argv[4] == '1':
        tracemalloc.start()
    t = time.perf_counter()
    snap = Report([DataDriftPreset()]).run(cur, ref)
    d = snap.dict()
    took = time.perf_counter() - t
    traced = tracemalloc.get_traced_memory()[1] / 2**20
    drifted = d["metrics"][0]["value"]["count"]
    json.dump({"time": took, "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
               "before_mib": base / 1024, "traced_mib": traced, "drifted": drifted}, open(sys.argv[3], "w"))
''')

OURS_WORKER = textwrap.dedent('''
    import json, resource, sys, time, tracemalloc
    import pandas as pd
    ref, cur = pd.read_parquet(sys.argv[1]), pd.read_parquet(sys.argv[2])
    from mlsys.monitor.drift import UnivariateDrift
    import scipy.stats  # noqa: F401 (imported before timing, as Evidently's imports are)
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if sys.argv[4] == '1':
        tracemalloc.start()
    t = time.perf_counter()
    gaps = [c for c in ref.columns if ref[c].isna().any() or cur[c].isna().any()]
    if not gaps:  # one detector over the table, Bonferroni over its columns
        drifted = int(UnivariateDrift(unseen="pool").fit(ref).predict(cur).features.drift.sum())
    else:  # the detectors refuse missing values: each column's non-missing values, Bonferroni over all columns
        alpha = 0.05 / ref.shape[1]
        drifted = sum(bool(UnivariateDrift(alpha=alpha, correction=None, unseen="pool").fit(ref[[c]].dropna())
                           .predict(cur[[c]].dropna()).drift) for c in ref.columns)
    took = time.perf_counter() - t
    traced = tracemalloc.get_traced_memory()[1] / 2**20
    json.dump({"time": took, "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
               "before_mib": base / 1024, "traced_mib": traced, "drifted": drifted}, open(sys.argv[3], "w"))
''')


def _python(name: str) -> Path:
    py = VENVS / name / "bin" / "python"
    if not py.exists():
        sys.exit(f"{py} is missing: run `bash bench/setup_drift_refs.sh {name}` first")
    return py


def draws(n_draws: int, n: int = 1000, d: int = 32, seed: int = 0):
    "Paired reference/test samples: the first half without drift, the second with a small shift in a few features."
    rng = np.random.default_rng(seed)
    cov = 0.5 * np.eye(d) + 0.5 / d
    L = np.linalg.cholesky(cov)
    refs, tests = [], []
    for i in range(n_draws):
        refs.append(rng.normal(size=(n, d)) @ L.T)
        shift = np.zeros(d)
        if i >= n_draws // 2:
            shift[:4] = rng.uniform(0.02, 0.12)  # from barely to clearly detectable
        tests.append(rng.normal(size=(n, d)) @ L.T + shift)
    return np.array(refs, dtype=np.float32), np.array(tests, dtype=np.float32)


def bench_alibi(n_draws: int, threads: int, env: dict) -> list[dict]:
    from mlsys.monitor.drift import KSDrift, LSDDDrift, MMDDrift, median_sigma
    refs, tests = draws(n_draws)
    sigmas = np.array([median_sigma(np.vstack([r, t]).astype("float64")) for r, t in zip(refs, tests)])
    ours = {"mmd": [], "lsdd": [], "ks": []}
    for i in range(n_draws):
        t = time.perf_counter()
        r = MMDDrift(n_permutations=100, sigma=float(sigmas[i]), standardize=False, random_state=i).fit(refs[i]).predict(tests[i])
        ours["mmd"].append({"time": time.perf_counter() - t, "p": r.p_value, "drift": r.drift, "stat": r.statistic})
        t = time.perf_counter()
        r = LSDDDrift(n_permutations=100, random_state=i).fit(refs[i]).predict(tests[i])
        ours["lsdd"].append({"time": time.perf_counter() - t, "p": r.p_value, "drift": r.drift})
        t = time.perf_counter()
        r = KSDrift(method="asymp").fit(refs[i]).predict(tests[i])
        ours["ks"].append({"time": time.perf_counter() - t, "p": r.features.p_value.tolist(),
                           "stat": r.features.statistic.tolist(), "drift": r.drift})
    with tempfile.TemporaryDirectory() as tmp:
        data, out, src = Path(tmp) / "data.npz", Path(tmp) / "alibi.json", Path(tmp) / "worker.py"
        np.savez(data, refs=refs, tests=tests, sigmas=sigmas)
        src.write_text(ALIBI_WORKER)
        subprocess.run([str(_python("alibi")), str(src), str(data), str(out), str(threads)], check=True, env=env)
        theirs = json.loads(out.read_text())
    rows = []
    for name in ["mmd", "lsdd", "ks"]:
        a, b = ours[name], theirs[name]
        t_ours, t_ref = np.median([x["time"] for x in a]), np.median([x["time"] for x in b])
        same = sum(x["drift"] == y["drift"] for x, y in zip(a, b))
        row = {"test": f"{name.upper()} 1,000 x 32" + (", 100 perm." if name != "ks" else ""),
               "mlsys s": t_ours, "alibi-detect s": t_ref, "speed-up": t_ref / t_ours,
               "same decision": f"{same}/{n_draws}", "flagged mlsys/alibi": f"{sum(x['drift'] for x in a)}/{sum(y['drift'] for y in b)}"}
        if name == "ks":  # alibi stores statistics and p-values as float32
            row["max |diff| stat, p"] = "%.1e, %.1e" % (
                max(np.max(np.abs(np.subtract(x["stat"], y["stat"]))) for x, y in zip(a, b)),
                max(np.max(np.abs(np.subtract(x["p"], y["p"]))) for x, y in zip(a, b)))
            row["equal as float32"] = all((np.float32(x[k]) == np.float32(y[k])).all() for x, y in zip(a, b) for k in ["stat", "p"])
        elif name == "mmd":
            row["max |diff| stat, p"] = "%.1e, %.2f" % (max(abs(x["stat"] - y["stat"]) for x, y in zip(a, b)),
                                                          max(abs(x["p"] - y["p"]) for x, y in zip(a, b)))
        rows.append(row)
    return rows


def _evidently_case(label: str, ref: Path, cur: Path, env: dict) -> dict:
    "Both sides on the same reference/current parquet files, each in a fresh process: one table row."
    res = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, py, script in [("mlsys", sys.executable, OURS_WORKER), ("evidently", _python("evidently"), EVIDENTLY_WORKER)]:
            src, out = Path(tmp) / f"worker_{name}.py", Path(tmp) / f"{name}.json"
            src.write_text(script)
            for trace in ["0", "1"]:  # timed without tracemalloc (it slows Python code), then traced for memory
                subprocess.run([str(py), str(src), str(ref), str(cur), str(out), trace], check=True, env=env, cwd=ROOT)
                got = json.loads(out.read_text())
                res.setdefault(name, got)
                res[name]["traced_mib"] = got["traced_mib"]
    m, e = res["mlsys"], res["evidently"]
    return {"test": label, "mlsys s": m["time"], "Evidently s": e["time"], "speed-up": e["time"] / m["time"],
            "peak RSS MiB mlsys/Evidently": f"{m['peak_rss_mib']:.0f}/{e['peak_rss_mib']:.0f}",
            "RSS before test MiB": f"{m['before_mib']:.0f}/{e['before_mib']:.0f}",
            "peak traced MiB mlsys/Evidently": f"{m['traced_mib']:.0f}/{e['traced_mib']:.0f}",
            "drifted columns mlsys/Evidently": f"{int(m['drifted'])}/{int(e['drifted'])}"}


def bench_evidently(env: dict, cases=("drift", "features")) -> list[dict]:
    "The drift columns of `flights_drift_data` and the pipeline's whole feature table, January-June vs July-December."
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        ref, cur = Path(tmp) / "ref.parquet", Path(tmp) / "cur.parquet"
        if "drift" in cases:
            from mlsys.monitor.drift import flights_drift_data
            year = flights_drift_data()  # the year's rows come in date order: the first half is January-June
            year.iloc[: len(year) // 2].to_parquet(ref)
            year.iloc[len(year) // 2:].to_parquet(cur)
            rows.append(_evidently_case(f"drift columns, {len(year):,} rows x {year.shape[1]} columns", ref, cur, env))
        if "features" in cases:
            import pandas as pd
            from mlsys.pipeline import FEATURES
            year = pd.read_parquet(pipeline_features_year())
            first = (year["sched_dep_local"].dt.month <= 6).to_numpy()
            year[FEATURES][first].to_parquet(ref)
            year[FEATURES][~first].to_parquet(cur)
            gaps = int(year[FEATURES].isna().any().sum())
            rows.append(_evidently_case(f"pipeline FEATURES, {len(year):,} rows x {len(FEATURES)} columns "
                                        f"({gaps} with missing values)", ref, cur, env))
    return rows


CACHE = ROOT / "bench" / ".cache"


def pipeline_features_year(path: Path | None = None) -> Path:
    "The pipeline's feature table for the whole flights year (`FEATURES` + the local departure), built once into a parquet."
    path = Path(path) if path is not None else CACHE / "pipeline_features_2013.parquet"
    if path.exists():
        return path
    from mlsys.datasets import load_flights, load_planes, load_weather
    from mlsys.pipeline import FEATURES, build_features
    feats = build_features(load_flights(), load_weather(), load_planes())
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    feats[["sched_dep_local", *FEATURES]].to_parquet(tmp)
    os.replace(tmp, path)
    return path


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--draws", type=int, default=50, help="paired draws for MMD/LSDD/KS (at least 50 for the issue's claim)")
    ap.add_argument("--threads", type=int, default=os.cpu_count(), help="threads for both sides")
    ap.add_argument("--skip-evidently", action="store_true")
    ap.add_argument("--skip-alibi", action="store_true")
    ap.add_argument("--evidently-cases", default="drift,features", help="comma-separated: drift, features")
    args = ap.parse_args(argv)
    cases = tuple(c.strip() for c in args.evidently_cases.split(","))
    if unknown := set(cases) - {"drift", "features"}:
        ap.error(f"unknown --evidently-cases {sorted(unknown)}; use drift and/or features")
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads),
               OPENBLAS_NUM_THREADS=str(args.threads))
    import pandas as pd
    pd.set_option("display.width", 200)
    if not args.skip_alibi:
        print(f"## mlsys vs alibi-detect 0.13 (PyTorch, CPU), {args.draws} paired draws, {args.threads} thread(s); "
              "median time per test")
        print(pd.DataFrame(bench_alibi(args.draws, args.threads, env)).round(4).fillna("-").to_string(index=False))
    if not args.skip_evidently:
        print("\n## mlsys UnivariateDrift vs Evidently 0.7 DataDriftPreset (Jan-Jun reference, Jul-Dec current), "
              "each in a fresh process")
        print(pd.DataFrame(bench_evidently(env, cases)).round(3).to_string(index=False))


if __name__ == "__main__":
    main()
