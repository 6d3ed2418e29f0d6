# Each target sets up what it needs: the first `make run` or `make test` creates .venv, installs
# the locked dependencies (requirements.lock) and the project (editable) with its dev tools; later
# runs reuse it until pyproject.toml or the lock changes. `make lock` updates the lock.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

export PREFECT_SERVER_ANALYTICS_ENABLED ?= false
export PREFECT_LOGGING_LEVEL ?= INFO

.PHONY: run test lint format bench venv clean blocks deploy server worker redshift-smoke lock \
	docs docs-build

venv: $(STAMP)

$(STAMP): pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps -e '.[dev]'
	touch $(STAMP)

# Resolve pyproject.toml's dependencies (dev tools included) anew into requirements.lock.
lock: $(STAMP)
	$(BIN)/python -m pip install --quiet pip-tools
	$(BIN)/pip-compile --quiet --extra dev --strip-extras --no-emit-find-links \
	    --no-emit-index-url --output-file requirements.lock pyproject.toml

run: $(STAMP)
	$(BIN)/python flows/etl.py

# One part: make test TESTS=tests/test_etl.py (or TESTS='-k postgres', any pytest arguments).
TESTS ?=

test: $(STAMP) lint
	$(BIN)/python -m pytest $(TESTS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# The documentation site (mkdocs.yml, docs/): make docs serves it at http://127.0.0.1:8000;
# the suite (tests/test_docs.py) builds it with --strict, so a broken link or reference fails
# make test; make docs-build builds it alone into .venv/site.
export NO_MKDOCS_2_WARNING ?= 1

docs: $(STAMP)
	$(BIN)/mkdocs serve

docs-build: $(STAMP)
	$(BIN)/mkdocs build --strict --quiet --site-dir $(VENV)/site

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# Register the project's block types (DuckDB, Redshift and Redshift Data API warehouses) with
# the Prefect server named by PREFECT_API_URL, so they can be created in the UI or from Python.
blocks: $(STAMP)
	$(BIN)/prefect block register -m tasks.warehouse.block_types

# Deployments (prefect.yaml) on the Prefect server named by PREFECT_API_URL:
# `make server` in one terminal, `make deploy`, `make worker` in another.
WORK_POOL ?= sparkify-process

server: $(STAMP)
	$(BIN)/prefect server start

# The process work pool, the block types, the project's path (the deployments' pull step changes
# into it) in one process (flows/deploy_setup.py), then `prefect deploy --all` (prefect.yaml at
# the root) and the automations. Safe to rerun. Each warehouse's one-slot concurrency limit is
# created by the first run into it (tasks/run/lock.py).
deploy: $(STAMP)
	$(BIN)/python flows/deploy_setup.py "$(CURDIR)" --work-pool $(WORK_POOL)
	$(BIN)/prefect --no-prompt deploy --all
	$(BIN)/python flows/alerts.py

worker: $(STAMP)
	$(BIN)/prefect worker start --pool $(WORK_POOL)

# The smoke test on a real, throwaway Redshift cluster: costs money, never run by CI.
# make redshift-smoke SOURCE=s3://bucket/prefix [AWS_CREDENTIALS=BLOCK] [INGRESS_CIDR=CIDR]
redshift-smoke: $(STAMP)
	$(BIN)/python flows/redshift_smoke.py --source "$(SOURCE)" \
	    $(if $(AWS_CREDENTIALS),--aws-credentials "$(AWS_CREDENTIALS)") \
	    $(if $(INGRESS_CIDR),--ingress-cidr "$(INGRESS_CIDR)")

bench: $(STAMP)
	$(BIN)/python bench/etl_local.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache sparkify.duckdb
