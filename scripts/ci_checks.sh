#!/usr/bin/env bash
# Every check CI runs. Each step prints a header; the script runs them all and fails at the end
# if any failed, so one run reports every problem. Usage: scripts/ci_checks.sh [VENV]
set -uo pipefail
VENV=${1:-.venv}
cd "$(dirname "$0")/.."
export PATH="$PWD/$VENV/bin:$PATH"
export MPLBACKEND=Agg PYTHONHASHSEED=0 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
failed=()
step() { echo; echo "=== $1"; }
run() { local name=$1; shift; step "$name"; local t0=$SECONDS; if "$@"; then echo "--- ok: $name ($((SECONDS - t0)) s)"; else echo "--- FAILED: $name ($((SECONDS - t0)) s)"; failed+=("$name"); fi; }

clean_unchanged() {
  local before; before=$(git status --porcelain -- nbs)
  nbdev_clean >/dev/null || return 1
  [ "$(git status --porcelain -- nbs)" = "$before" ] || { echo "nbdev_clean changed notebooks:"; git status --porcelain -- nbs; return 1; }
}
export_unchanged() {
  local before; before=$(git status --porcelain -- mlsys)
  nbdev_export || return 1
  [ "$(git status --porcelain -- mlsys)" = "$before" ] || { echo "nbdev_export changed the library:"; git status --porcelain -- mlsys; git diff --stat -- mlsys; return 1; }
}

bash scripts/services.sh
run "import mlsys is light (time printed)" python -c "
import sys, time
t = time.perf_counter(); import mlsys, mlsys.core, mlsys.datasets; dt = time.perf_counter() - t
heavy = [m for m in ('torch', 'tensorflow') if m in sys.modules]
print(f'import mlsys: {dt:.2f} s; heavy modules loaded: {heavy or None}'); sys.exit(1 if heavy else 0)"
run "notebooks clean (nbdev_clean changes nothing)" clean_unchanged
run "library in sync (nbdev_export changes nothing)" export_unchanged
run "no stale generated module" python scripts/check_modules.py
run "stored notebook outputs: no warnings, tracebacks or kernel chatter" python scripts/check_outputs.py
run "chapter notebooks open with the idea and end with what we measured" python scripts/check_notebooks.py
run "ruff check (library, tests, benches, scripts)" ruff check mlsys tests bench scripts --output-format concise
run "README generated from nbs/index.ipynb is current" python scripts/make_readme.py --check
run "lock files current (settings.ini, setup_env.sh, Dockerfile) and this venv is the lock" python scripts/lock.py --check --env
run "nbdev_test over all notebooks" nbdev_test --flags "torch redis" --n_workers 2 --timing
# two workers, one per core (each test is single-threaded); a file stays on one worker, so its module fixtures run once
SMOKE_RUNS=$(mktemp -d)
export MLSYS_SMOKE_RUNS_DIR=$SMOKE_RUNS  # the smoke run of tests/test_pipeline_run.py is written here: the main-job check
run "pytest tests/ (2 workers)" python -m pytest tests/ -q -p no:cacheprovider -n 2 --dist loadfile --durations=15
run "wheel installs in a clean venv" bash scripts/check_wheel.sh "$VENV"
run "docs site builds offline" python scripts/build_docs.py
smoke_ran() {  # `mlsys run --profile smoke`, run by the pytest step's smoke_run fixture into $SMOKE_RUNS
  python -c "import json, sys; r = json.load(open(sys.argv[1])); print('smoke run:', r.get('status')); sys.exit(r.get('status') != 'ok')" "$SMOKE_RUNS/smoke/run.json"
}
run "main job: mlsys run --profile smoke (what make smoke runs; run by the pytest step)" smoke_ran
report=()  # the smoke run's report.html (written for failed runs too) is photographed with the site
[ -f "$SMOKE_RUNS/smoke/report.html" ] && report=(--report "$SMOKE_RUNS/smoke/report.html")
run "docs site passes the headless-Chromium check" python scripts/check_site.py "${report[@]}"

echo
if [ ${#failed[@]} -gt 0 ]; then
  echo "FAILED checks: ${failed[*]}"
  exit 1
fi
echo "all checks passed"
