"""`import mlsys` stays light: no torch, no tensorflow, and it reports its import time."""
import subprocess
import sys

import mlsys

CODE = """
import sys, time
t = time.perf_counter()
import mlsys, mlsys.core, mlsys.datasets, mlsys.platform.workflow, mlsys.pipeline, mlsys.cli
dt = time.perf_counter() - t
heavy = sorted(m for m in ("torch", "tensorflow", "snorkel", "fastapi", "dask", "mlflow") if m in sys.modules)
print(f"{dt:.3f}", ",".join(heavy))
"""


def test_import_is_light_and_timed():
    out = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, check=True).stdout.split()
    seconds, heavy = float(out[0]), (out[1] if len(out) > 1 else "")
    print(f"import mlsys (+ core modules): {seconds:.3f} s")
    assert heavy == "", f"import mlsys pulled in heavy modules: {heavy}"


def test_version_matches_settings_ini():
    from configparser import ConfigParser
    from pathlib import Path
    cfg = ConfigParser(); cfg.read(Path(__file__).resolve().parents[1] / "settings.ini")
    assert mlsys.__version__ == cfg["DEFAULT"]["version"]
