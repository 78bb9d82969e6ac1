# Two commands on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 8000
STAMP  := $(VENV)/.installed
# Folders users may add as sources through the API/UI (the CLI may add any).
export VPACK_LOCAL_ROOTS ?= $(HOME)

.PHONY: run test lint typecheck unit install init bench clean

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "VPACK needs Python 3.11 or newer (found: $$($(PYTHON) --version))"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet -e ".[dev]"
	@touch $(STAMP)

install: $(STAMP)

init: install
	$(BIN)/vpack init

## Set everything up and start the service on SQLite (http://$(HOST):$(PORT)).
run: init
	$(BIN)/vpack serve --host $(HOST) --port $(PORT)

lint: install
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: install
	$(BIN)/mypy

unit: install
	$(BIN)/pytest -q -p no:cacheprovider --cov --cov-report=term --cov-fail-under=85

## Lint, type-check and run every test with line coverage (fails under 85%).
test: lint typecheck unit

bench: install
	$(BIN)/python -m bench.local.run

clean:
	rm -rf $(VENV) .coverage .coverage.* .pytest_cache .mypy_cache .ruff_cache
