#!/usr/bin/env bash
# Build a wheel from the repo, install it in a clean virtual environment outside the checkout,
# and check that `import mlsys`, `mlsys --help` and a dataset loader work there.
set -euo pipefail
VENV=${1:-.venv}
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$VENV/bin/python" -m build --wheel --outdir "$work/dist" . >"$work/build.log" 2>&1 || { tail -30 "$work/build.log"; exit 1; }
wheel=$(ls "$work"/dist/mlsys-*.whl)
python3 -m venv "$work/venv"
"$work/venv/bin/python" -m pip install -q --upgrade pip >/dev/null
"$work/venv/bin/python" -m pip install -q "$wheel[datasets]" >"$work/pip.log" 2>&1 || { tail -30 "$work/pip.log"; exit 1; }
cd "$work"
"$work/venv/bin/python" - <<'PY'
import sys, mlsys
from mlsys.datasets import load_airlines, load_flights
assert "torch" not in sys.modules and "tensorflow" not in sys.modules
assert len(load_airlines()) == 16
jan1 = load_flights("2013-01-01", "2013-01-01", cache=False)
assert len(jan1) == 842, len(jan1)
import importlib.resources
rules = importlib.resources.files("mlsys.monitor") / "prometheus_rules.yml"  # package data, not Python
assert rules.is_file() and "groups:" in rules.read_text(), "the wheel lacks mlsys/monitor/prometheus_rules.yml"
print(f"wheel OK: mlsys {mlsys.__version__} from {mlsys.__file__}; {len(jan1)} flights on 2013-01-01")
PY
"$work/venv/bin/mlsys" --help >/dev/null
"$work/venv/bin/mlsys" --version
