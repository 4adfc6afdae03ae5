#!/usr/bin/env bash
# Create the drift benchmark's reference environments (issue 15, item 5), each in its own venv so that neither
# shares ours: alibi-detect 0.13 pins numpy<2 (and is BSL-licensed), Evidently 0.7 pins plotly<6. They are
# benchmark references only, never dependencies of mlsys. Usage: bash bench/setup_drift_refs.sh [alibi|evidently]
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-python3.11}
mk() {  # mk NAME PACKAGES...: a fresh venv under bench/.venvs/NAME with PACKAGES, unless it already imports
  local name=$1; shift
  local venv=.venvs/$name
  if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c "import ${IMPORT}" 2>/dev/null; then
    echo "$venv: ready"; return
  fi
  rm -rf "$venv" && "$PY" -m venv "$venv"
  "$venv/bin/python" -m pip install -q --upgrade pip
  "$venv/bin/python" -m pip install -q "$@"
  "$venv/bin/python" -c "import ${IMPORT}; print('$venv:', ${IMPORT%%.*}.__version__ if hasattr(${IMPORT%%.*}, '__version__') else 'ok')"
}
want=${1:-all}
if [ "$want" = all ] || [ "$want" = alibi ]; then
  # torch 2.13 CPU is the torch wheel on this machine's disk (other versions pull CUDA); its wheels run on numpy 1.x
  IMPORT=alibi_detect mk alibi "alibi-detect[torch]==0.13.0" "numpy<2" "torch==2.13.0" "pandas<3"
fi
if [ "$want" = all ] || [ "$want" = evidently ]; then
  # Evidently 0.7 imports a pandas internal that pandas 3 removed
  IMPORT=evidently mk evidently "evidently>=0.7,<0.8" "pandas<3" "pyarrow"
fi
