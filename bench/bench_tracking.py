"""Experiment tracking costs (issue 12, item 4).

1. The train stage's time with tracking vs without, measured side by side (interleaved repeats, median).
   Both variants do the same work as `nbs/pipelines/train.ipynb` on the smoke profile (three weeks of flights:
   time split, zero-rule + random baselines + gradient boosting, a per-iteration eval-loss curve, evaluation,
   the model saved); the tracked one also records everything `mlsys.modeling.tracking` records: a new local
   store, params, the git commit and code snapshot, both loss curves per step, a prediction sample, system
   metrics, the model artifact and the data version. Target: tracking adds at most 5%.
2. Logging 10,000 per-step values to a local SQLite store: MLflow's `log_metric` per call (the baseline),
   MLflow's asynchronous per-call logging, and the mlsys buffer (`log_batch` of 1,000).

One-time costs (importing MLflow, building the schema template once per MLflow version) are reported apart. Wall
time on a loaded machine swings by 2x between identical runs, so the stage table also gives CPU time (this process's
threads and its git subprocesses), which other load does not inflate.

    .venv/bin/python bench/bench_tracking.py [--repeats 3] [--steps 10000] [--skip-stage] [--skip-logging]
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402


PROFILES = {  # (end, split_date): data from 2013-01-01
    "smoke (3 weeks)": ("2013-01-21", "2013-01-15"),
    "quarter (3 months)": ("2013-03-31", "2013-03-01"),
}


def stage_inputs(end: str = "2013-01-21", split: str = "2013-01-15"):
    from mlsys.datasets import load_flights, load_planes, load_weather
    from mlsys.pipeline import build_features, time_split

    feats = build_features(load_flights("2013-01-01", end), load_weather("2012-12-31", end), load_planes())
    return feats, time_split(feats, split)


def train_stage(train, test, out: Path, run=None, features_dir: Path | None = None):
    "The train stage's work; with `run`, everything is also tracked."
    from sklearn.metrics import log_loss, roc_auc_score

    from mlsys.core import save_json
    from mlsys.pipeline import FEATURES, LABEL, model_inputs, save_models, train_models

    models = train_models(train, model="hgb", seed=0)
    hgb = models["hgb"]
    y_tr, y_ev = train[LABEL].astype(bool).to_numpy(), test[LABEL].astype(bool).to_numpy()
    train_curve = [log_loss(y_tr, p[:, 1]) for p in hgb.staged_predict_proba(train[FEATURES])]
    eval_curve = [log_loss(y_ev, p[:, 1]) for p in hgb.staged_predict_proba(test[FEATURES])]
    p = hgb.predict_proba(test[FEATURES])[:, 1]
    metrics = {"eval_loss": log_loss(y_ev, p), "eval_auc": roc_auc_score(y_ev, p),
               **{f"{k}_eval_loss": log_loss(y_ev, m.predict_proba(test[model_inputs(m)])[:, 1]) for k, m in models.items() if k != "hgb"}}
    save_models(models, out / "models.skops")
    save_json(metrics, out / "metrics.json")
    if run is not None:
        from mlsys.modeling.tracking import log_model, log_predictions
        from mlsys.modeling.versioning import dataset_version, log_data_version

        for step, (a, b) in enumerate(zip(train_curve, eval_curve)):
            run.log_metrics({"train_loss": a, "eval_loss_curve": b}, step=step)
        run.log_metrics(metrics)
        log_predictions(run, y_ev, p, X=test[["carrier", "origin", "dest"]], n=100)
        log_model(run, out / "models.skops")  # the file the stage saved: no second serialization
        log_data_version(run, dataset_version(features_dir, "features"))
    return metrics


def _cpu() -> float:
    "CPU seconds of this process (all threads) and its finished children (git), robust to other load on the machine."
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def bench_stage(repeats: int, end: str, split: str) -> pd.DataFrame:
    from mlsys.modeling.tracking import Tracker

    feats, (train, test) = stage_inputs(end, split)
    work = Path(tempfile.mkdtemp(prefix="mlsys-bench-tracking-"))
    fdir = work / "features"
    fdir.mkdir()
    feats.to_parquet(fdir / "features.parquet")
    params = {"model": "hgb", "seed": 0, "split_date": split, "max_iter": 300, "learning_rate": 0.05}
    train_stage(train, test, work / "warm")  # warm caches and imports for both variants
    Tracker(work / "warm-store")
    times = {"without tracking": [], "with tracking": []}
    cpu = {k: [] for k in times}
    for i in range(repeats):
        for mode in (["without tracking", "with tracking"] if i % 2 == 0 else ["with tracking", "without tracking"]):
            out = work / f"{mode.split()[0]}-{i}"
            c0 = _cpu()
            t0 = time.perf_counter()
            if mode == "with tracking":
                tracker = Tracker(out / "mlflow", experiment="train")
                with tracker.start_run("train", params=params, system_interval=10.0) as run:
                    with run.timer("train", n_samples=len(train)):
                        train_stage(train, test, out, run=run, features_dir=fdir)
            else:
                train_stage(train, test, out)
            times[mode].append(time.perf_counter() - t0)
            cpu[mode].append(_cpu() - c0)
    base, base_cpu = statistics.median(times["without tracking"]), statistics.median(cpu["without tracking"])
    return pd.DataFrame({
        "median wall s": {k: statistics.median(v) for k, v in times.items()},
        "min wall s": {k: min(v) for k, v in times.items()},
        "wall vs baseline": {k: statistics.median(v) / base for k, v in times.items()},
        "median CPU s": {k: statistics.median(v) for k, v in cpu.items()},
        "CPU vs baseline": {k: statistics.median(v) / base_cpu for k, v in cpu.items()},
        "runs": {k: len(v) for k, v in times.items()},
        "training rows": {k: len(train) for k in times}}).round(3)


def bench_logging(steps: int) -> pd.DataFrame:
    from mlsys.modeling.tracking import Tracker

    work = Path(tempfile.mkdtemp(prefix="mlsys-bench-logging-"))
    values = np.random.default_rng(0).random(steps)
    rows = {}
    tracker = Tracker(work / "store", experiment="logging")

    with tracker.start_run("per call", system_interval=None, log_code=False) as run:
        t0, c0 = time.perf_counter(), _cpu()
        for s, v in enumerate(values):
            tracker.client.log_metric(run.run_id, "loss", float(v), step=s)
        rows["MLflow log_metric per call (baseline)"] = (time.perf_counter() - t0, _cpu() - c0)

    with tracker.start_run("async", system_interval=None, log_code=False) as run:
        t0, c0 = time.perf_counter(), _cpu()
        for s, v in enumerate(values):
            tracker.client.log_metric(run.run_id, "loss", float(v), step=s, synchronous=False)
        import mlflow

        mlflow.flush_async_logging()  # wait until the queue is written
        rows["MLflow log_metric(synchronous=False)"] = (time.perf_counter() - t0, _cpu() - c0)

    with tracker.start_run("buffered", system_interval=None, log_code=False) as run:
        t0, c0 = time.perf_counter(), _cpu()
        for s, v in enumerate(values):
            run.log_metric("loss", float(v), s)
        run.flush()
        rows["mlsys Run.log_metric (buffer + log_batch of 1,000)"] = (time.perf_counter() - t0, _cpu() - c0)

    for name, rid in [(r.info.run_name, r.info.run_id) for r in tracker.client.search_runs([tracker.experiment_id])]:
        n = len(tracker.client.get_metric_history(rid, "loss"))
        assert n == steps, f"{name}: {n} of {steps} values stored"
    base, base_cpu = rows["MLflow log_metric per call (baseline)"]
    return pd.DataFrame({"wall s": {k: t for k, (t, _) in rows.items()},
                         "wall ms per step": {k: 1000 * t / steps for k, (t, _) in rows.items()},
                         "wall speed-up": {k: base / t for k, (t, _) in rows.items()},
                         "CPU s": {k: c for k, (_, c) in rows.items()},
                         "CPU speed-up": {k: base_cpu / c for k, (_, c) in rows.items()}}).round(4)


def one_time_costs() -> pd.DataFrame:
    "Importing MLflow and building the schema template, each in a fresh process with an empty cache."
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "MLSYS_CACHE_DIR": cache}
        code = ("import time; t=time.perf_counter(); import mlflow; a=time.perf_counter()-t; "
                "from mlsys.modeling.tracking import _schema_template; t=time.perf_counter(); _schema_template(); "
                "b=time.perf_counter()-t; t=time.perf_counter(); from mlsys.modeling.tracking import local_store; "
                "import tempfile; local_store(tempfile.mkdtemp()); c=time.perf_counter()-t; print(a, b, c)")
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=600)
        a, b, c = map(float, out.stdout.split())
    return pd.DataFrame({"seconds": {"import mlflow (once per process)": a,
                                     "schema template (once per MLflow version and machine)": b,
                                     "a new local store from the template": c}}).round(3)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--steps", type=int, default=10_000)
    ap.add_argument("--skip-stage", action="store_true")
    ap.add_argument("--skip-logging", action="store_true")
    args = ap.parse_args()
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs\n")
    print("One-time costs\n" + one_time_costs().to_string() + "\n")
    if not args.skip_stage:
        for label, (end, split) in PROFILES.items():
            print(f"Train stage, {label}, {args.repeats} interleaved runs each; baseline: without tracking\n"
                  + bench_stage(args.repeats, end, split).to_string() + "\n")
    if not args.skip_logging:
        print(f"Logging {args.steps:,} per-step values to a local SQLite store; baseline: MLflow log_metric per call\n"
              + bench_logging(args.steps).to_string())
