# The two commands of the README:
#   make run   - create the environment if needed, then run the main job on the default profile
#   make test  - create the environment (and system packages) if needed, then run every check
# Both are idempotent.

PYTHON ?= python3
VENV   ?= .venv
PROFILE ?= default

.PHONY: env system run smoke test docs readme clean-runs

env:
	@bash scripts/setup_env.sh "$(PYTHON)" "$(VENV)"

system:
	@bash scripts/setup_system.sh

run: env
	$(VENV)/bin/mlsys run --profile $(PROFILE)

smoke: env
	$(VENV)/bin/mlsys run --profile smoke

test: env system
	@bash scripts/ci_checks.sh "$(VENV)"

docs: env
	$(VENV)/bin/python scripts/build_docs.py

readme: env
	$(VENV)/bin/python scripts/make_readme.py

clean-runs:
	rm -rf runs
