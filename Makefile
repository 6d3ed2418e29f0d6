# Each target sets up what it needs: the first `make run` or `make test` creates .venv and
# installs the project (editable) with its dev tools; later runs reuse it until pyproject changes.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

export PREFECT_SERVER_ANALYTICS_ENABLED ?= false
export PREFECT_LOGGING_LEVEL ?= INFO

.PHONY: run test lint format bench venv clean blocks

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/python flows/etl.py

test: $(STAMP) lint
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# Register the project's block types (DuckDB and Redshift warehouses) with the Prefect server
# named by PREFECT_API_URL, so they can be created in the UI or from Python.
blocks: $(STAMP)
	$(BIN)/prefect block register -m tasks.warehouse
	$(BIN)/prefect block register -m tasks.redshift

bench: $(STAMP)
	$(BIN)/python bench/etl_local.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache sparkify.duckdb
