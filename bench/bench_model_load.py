"""Benchmark: loading the pipeline's models in a fresh process (what every train/evaluate kernel does).

The same fitted models (the train stage's baselines and gradient-boosting model on one week of
flights) are saved twice, then loaded by fresh Python processes, interleaved, three ways:

- `joblib (pickle)`: the old way and the baseline, `load_models(..., allow_pickle=True)` on a
  `.joblib` file. Fast, but a pickle runs whatever code its author put in it.
- `skops, plain import`: `import skops.io` first, then `load_models` on the `.skops` file. skops'
  import walks every scikit-learn package to list the estimators it trusts, and the walk imports
  torch through sklearn's vendored array-api adapters.
- `skops, import_skops_io`: `load_models` as mlsys runs it: skops imported with those adapters
  blocked, the same trusted types.

Each cell is the median over `--repeat` fresh processes of the wall time from interpreter start of
the measured block (imports included) to models in memory, and the process's peak RSS.
Run:
    .venv/bin/python bench/bench_model_load.py [--repeat 7]
"""
import argparse
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = r"""
import resource, sys, time
t = time.perf_counter()
{pre}
from mlsys.pipeline import load_models
models = load_models(sys.argv[1], allow_pickle=sys.argv[1].endswith(".joblib"))
dt = time.perf_counter() - t
print(dt, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "torch" in sys.modules, len(models))
"""


def markdown(rows) -> str:
    cols = list(rows[0])
    out = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        out.append("| " + " | ".join(f"{v:.3g}" if isinstance(v, float) else str(v) for v in r.values()) + " |")
    return "\n".join(out)


def fit_models(folder: Path) -> tuple[Path, Path]:
    from mlsys.datasets import load_flights, load_planes, load_weather
    from mlsys.pipeline import LABEL, build_features, save_models, train_models

    feats = build_features(load_flights("2013-01-01", "2013-01-07"), load_weather("2013-01-01", "2013-01-07"),
                           load_planes()).dropna(subset=[LABEL])
    models = train_models(feats)
    return (save_models(models, folder / "models.skops"),
            save_models(models, folder / "models.joblib", allow_pickle=True))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=7, help="fresh processes per way (the median is reported)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        skops_file, joblib_file = fit_models(Path(tmp))
        ways = {"joblib (pickle), the baseline": ("", joblib_file),
                "skops, plain import": ("import skops.io", skops_file),
                "skops, import_skops_io (mlsys)": ("", skops_file)}
        runs = {k: [] for k in ways}
        for _ in range(args.repeat):  # interleaved, so a change in machine load hits every way alike
            for name, (pre, file) in ways.items():
                out = subprocess.run([sys.executable, "-c", CHILD.format(pre=pre), str(file)], check=True,
                                     capture_output=True, text=True).stdout.split()
                runs[name].append((float(out[0]), float(out[1]), out[2] == "True"))
    base = statistics.median(t for t, _, _ in runs["joblib (pickle), the baseline"])
    rows = []
    for name, rs in runs.items():
        t = statistics.median(r[0] for r in rs)
        rows.append({"way": name, "load s (median)": t, "vs pickle": f"{t / base:.2f}x",
                     "peak RSS MiB": statistics.median(r[1] for r in rs), "imports torch": rs[0][2]})
    print(f"fresh-process load of the train stage's models, median of {args.repeat} processes per way\n")
    print(markdown(rows))


if __name__ == "__main__":
    main()
