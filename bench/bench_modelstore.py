"""The model store on MLflow's registry (issue 17, item 4): register and load, against MLflow's plain API, side by side.

The model is the pipeline's gradient-boosting model fitted on one week of January flights. Each repeat, interleaved:

- `mlsys MlflowModelStore.register`: the book's whole table (definition, skops artifact, featurize/predict source,
  dependencies and lock-file hashes, data pointer, git commit, metrics, tags) plus the checksum tags; with and without
  the snapshot of uncommitted code (`log_code`);
- the baseline, `mlflow.sklearn.log_model(..., registered_model_name=...)` with `pip_requirements` given (MLflow 3.17
  serializes with skops too); `--infer-requirements` adds MLflow's default, which infers the requirements itself;
- `mlsys.deploy.registry.ModelStore.register`, the project's folder store, for reference;
- loading: `MlflowModelStore.load` (hash from the registry checked, then skops) against `mlflow.sklearn.load_model`
  and the folder store's `load`.

It prints the median and minimum seconds of each, and the bytes each entry occupies on disk.

    .venv/bin/python bench/bench_modelstore.py [--repeats 5] [--infer-requirements]
"""
import argparse
import contextlib
import io
import os
import shutil
import statistics
import tempfile
import time
import urllib.parse
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import pandas as pd  # noqa: E402


def folder_bytes(path) -> int:
    return sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--infer-requirements", action="store_true", help="also time log_model inferring its requirements")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-modelstore-"))
    try:
        _bench(args, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _bench(args, tmp: Path) -> None:
    "The measurements, with every store in `tmp`."
    import mlflow
    from mlflow.models import infer_signature

    from mlsys.datasets import load_flights, load_planes, load_weather
    from mlsys.deploy.batch import score_frame
    from mlsys.deploy.registry import ModelStore
    from mlsys.modeling.tracking import local_store
    from mlsys.pipeline import FEATURES, LABEL, TRUSTED_MODEL_TYPES, build_features, make_model, time_split
    from mlsys.pipeline_deploy import holdout_metrics
    from mlsys.platform.modelstore import ENTRY_FILE, MlflowModelStore, data_pointer

    feats = build_features(load_flights(start="2013-01-01", end="2013-01-09"), load_weather(), load_planes())
    feats.to_parquet(tmp / "features.parquet")
    train, test = time_split(feats, "2013-01-06")
    model = make_model("hgb").fit(train[FEATURES], train[LABEL].astype(int))
    metrics = holdout_metrics(model, test)
    ptr = data_pointer(tmp / "features.parquet", "features", time_column="sched_dep")

    t0 = time.perf_counter()
    store = MlflowModelStore(tmp / "mlsys")
    open_s = time.perf_counter() - t0
    folder = ModelStore(tmp / "folder")
    uri, plain_artifacts = local_store(tmp / "plain")
    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment(experiment_id=mlflow.MlflowClient(uri).create_experiment("plain", plain_artifacts.as_uri()))
    sample = test[FEATURES].head(50)
    sample = sample.astype({c: "float64" for c in sample.select_dtypes("integer").columns})
    sig = infer_signature(sample, model.predict_proba(sample))
    import sklearn
    reqs = [f"scikit-learn=={sklearn.__version__}"]
    times: dict[str, list[float]] = {}
    sizes: dict[str, int] = {}

    def timed(key, fn):
        t = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            out = fn()
        times.setdefault(key, []).append(time.perf_counter() - t)
        return out

    kw = dict(task="flights-delay", owner="bench", metrics=metrics, data=[ptr], featurize=build_features,
              predict=score_frame, trusted=TRUSTED_MODEL_TYPES)

    def plain(infer: bool):
        with mlflow.start_run():
            return mlflow.sklearn.log_model(model, name="model", signature=sig, registered_model_name="plain",
                                            pip_requirements=None if infer else reqs,
                                            skops_trusted_types=list(TRUSTED_MODEL_TYPES))

    plain_version = 0
    for _ in range(args.repeats):
        e = timed("register: mlsys MlflowModelStore", lambda: store.register("bench", model, **kw))
        e2 = timed("register: mlsys, no code snapshot", lambda: store.register("bench", model, log_code=False, **kw))
        info = timed("register: mlflow log_model (requirements given)", lambda: plain(False))
        plain_version += 1
        if args.infer_requirements:
            timed("register: mlflow log_model (requirements inferred)", lambda: plain(True))
            plain_version += 1
        fv = timed("register: mlsys folder ModelStore", lambda: folder.register("bench", model, metrics=metrics,
                                                                               trusted=TRUSTED_MODEL_TYPES))
        timed("load: mlsys MlflowModelStore (hash checked)", lambda v=e.version: store.load("bench", v, trusted=TRUSTED_MODEL_TYPES))
        timed("load: mlflow load_model", lambda v=plain_version: mlflow.sklearn.load_model(f"models:/plain/{v}"))
        timed("load: mlsys folder ModelStore", lambda v=fv.version: folder.load("bench", v, trusted=TRUSTED_MODEL_TYPES))
    run_dir = store.artifact_path("bench", e2.version, ENTRY_FILE).parent
    sizes["mlsys entry, with code snapshot"] = folder_bytes(store.artifact_path("bench", e.version, ENTRY_FILE).parent)
    sizes["mlsys entry, no code snapshot"] = folder_bytes(run_dir)
    sizes["  of which entry.json"] = (run_dir / ENTRY_FILE).stat().st_size
    sizes["mlflow logged model"] = folder_bytes(urllib.parse.urlparse(mlflow.get_logged_model(info.model_id).artifact_location).path)
    sizes["mlsys folder store artifact"] = (folder.root / folder.get("bench", fv.version).artifact).stat().st_size

    print(f"opening the MLflow store: {open_s:.2f} s; {args.repeats} repeats, interleaved; baseline: mlflow's plain API")
    table = pd.DataFrame({"median s": {k: statistics.median(v) for k, v in times.items()},
                          "min s": {k: min(v) for k, v in times.items()}}).round(3)
    print(table.to_string())
    print(pd.Series(sizes, name="bytes").to_string())


if __name__ == "__main__":
    main()
