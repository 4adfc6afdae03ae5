"""The Prefect engine's cost against the default engine on the same tiny DAG (two papermill stages).

Baseline: `run_pipeline(engine="default")`. Measured side by side in one run:
- a fresh run folder with each engine (the stages run);
- the first Prefect run of a process with a fresh PREFECT_HOME (import, API server start, database migration),
  and the first one of a new process on a migrated PREFECT_HOME (server start only);
- a second run into the same folder (every stage skipped), with each engine.

Usage: python bench/bench_orchestrator.py [--repeats 2]
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from test_workflow_runner import write_stage  # noqa: E402  (the tiny-pipeline helper of the runner's tests)

from mlsys.platform.workflow import run_pipeline  # noqa: E402


def tiny(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    write_stage(folder, "make", '''
        run_dir: str = "runs/dev"  # run folder
        n: int = 3  # count
        upstream: list = []  # none
        product: dict = {"numbers": "make/numbers.json"}  # the numbers
    ''', '''
        from pathlib import Path
        from mlsys.core import save_json
        save_json(list(range(n)), Path(run_dir) / product["numbers"])
    ''')
    write_stage(folder, "total", '''
        run_dir: str = "runs/dev"  # run folder
        upstream: list = ["make"]  # the numbers
        product: dict = {"total": "total/total.json"}  # their sum
    ''', '''
        from pathlib import Path
        from mlsys.core import load_json, save_json
        save_json(sum(load_json(Path(run_dir) / "make/numbers.json")), Path(run_dir) / product["total"])
    ''')
    (folder / "pipeline.toml").write_text("[profiles.smoke]\n")
    return folder


def timed(**kw) -> float:
    t0 = time.perf_counter()
    run_pipeline("smoke", progress=False, **kw)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=2, help="fresh-folder runs per engine (the median is shown)")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:  # a new process on a migrated PREFECT_HOME: the first run pays the server start only
        print(f"{timed(pipelines=Path(a.child) / 'pipes', runs_dir=Path(a.child) / 'child', engine='prefect'):.2f}")
        return
    work = Path(tempfile.mkdtemp(prefix="bench-orchestrator-"))
    pipes = tiny(work / "pipes")
    os.environ["PREFECT_HOME"] = str(work / "prefect-home")
    load = os.getloadavg()[0]
    rows = {}
    rows["prefect, first run of a process, fresh PREFECT_HOME"] = timed(pipelines=pipes, runs_dir=work / "cold", engine="prefect")
    for engine in ("default", "prefect"):
        secs = sorted(timed(pipelines=pipes, runs_dir=work / f"{engine}-{i}", engine=engine) for i in range(a.repeats))
        rows[f"{engine}, fresh run folder (stages run)"] = secs[len(secs) // 2]
        rows[f"{engine}, unchanged (stages skipped)"] = timed(pipelines=pipes, runs_dir=work / f"{engine}-0", engine=engine)
    child = subprocess.run([sys.executable, __file__, "--child", str(work)], capture_output=True, text=True, check=True,
                           env={**os.environ})
    rows["prefect, first run of a new process, migrated PREFECT_HOME"] = float(child.stdout.split()[-1])
    base = rows["default, fresh run folder (stages run)"]
    print(f"tiny DAG of 2 papermill stages; load average {load:.1f} at the start; baseline: default engine, fresh folder")
    print(f"{'scenario':62s} {'seconds':>8s} {'- baseline':>11s}")
    for k, v in rows.items():
        print(f"{k:62s} {v:8.2f} {v - base:+11.2f}")


if __name__ == "__main__":
    main()
