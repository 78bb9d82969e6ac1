# Two commands on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 8000
STAMP  := $(VENV)/.installed
# Folders users may add as sources through the API/UI (the CLI may add any).
export VPACK_LOCAL_ROOTS ?= $(HOME)

.PHONY: run test lint typecheck unit install init bench clean web web-test api-client screenshots lock

# Installs come from uv.lock, never from what the registry serves that day: uv itself is
# pinned by hash in requirements/uv.txt and lives in its own small venv, .uv/.
UV_HOME := .uv
UV      := $(UV_HOME)/bin/uv
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(VENV)

$(UV): requirements/uv.txt
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "VPACK needs Python 3.11 or newer (found: $$($(PYTHON) --version))"; exit 1; }
	$(PYTHON) -m venv $(UV_HOME)
	$(UV_HOME)/bin/pip install --quiet --no-deps --require-hashes -r requirements/uv.txt
	@touch $@

# --locked: the lock as committed, and an error (not a silent re-resolve) if pyproject.toml
# changed without `make lock`.
$(STAMP): $(UV) pyproject.toml uv.lock
	$(UV) sync --quiet --locked --all-extras --python $(PYTHON)
	@touch $(STAMP)

## Refresh uv.lock on purpose: the newest releases pyproject.toml allows. Then `make test`.
lock: $(UV)
	$(UV) lock --upgrade

# vpack's own modules as bytecode, as a pip install leaves them: Python writes none
# itself where PYTHONDONTWRITEBYTECODE is set (container images often set it), and
# compiling them cost every command 30 ms of its start.
BYTECODE := $(VENV)/.bytecode
$(BYTECODE): $(STAMP) $(shell find src -name '*.py')
	$(BIN)/python -m compileall -q src
	@touch $@

install: $(STAMP) $(BYTECODE)

init: install
	$(BIN)/vpack init

# The web UI (web/): dependencies when the lock file changes, a build when any source is newer.
WEB_SOURCES := $(shell find web/src web/public -type f 2>/dev/null) \
	web/index.html web/vite.config.ts web/tsconfig.json web/package.json
web/node_modules/.package-lock.json: web/package.json web/package-lock.json
	cd web && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

web/dist/index.html: web/node_modules/.package-lock.json $(WEB_SOURCES)
	cd web && npm run build --silent
	@touch $@

## Build the web UI into web/dist (served by `vpack serve` at /).
web: web/dist/index.html

## The UI's formatting (Prettier) and component tests (Vitest).
web-test: web/node_modules/.package-lock.json
	cd web && npm run format:check --silent && npm test --silent

## After an API change: refresh web/openapi.json and the typed client web/src/api/schema.d.ts.
api-client: install web/node_modules/.package-lock.json
	$(BIN)/python web/scripts/dump_openapi.py
	cd web && npm run gen:api --silent

## Re-take the screenshots in docs/screenshots/ (the browser tests, saving what they see).
screenshots: install web
	VPACK_SCREENSHOTS=docs/screenshots $(BIN)/pytest -q -p no:cacheprovider tests/e2e/test_web_ui.py

## Set everything up and start the service on SQLite (http://$(HOST):$(PORT)).
run: init web
	$(BIN)/vpack serve --host $(HOST) --port $(PORT)

lint: install
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: install
	$(BIN)/mypy

unit: install web
	$(BIN)/pytest -q -p no:cacheprovider -n auto --cov --cov-report=term --cov-fail-under=85

## Lint, type-check and run every test with line coverage (fails under 85%), UI tests included.
## pytest spreads the tests over every core (pytest-xdist): they share no port, file or schema.
test: lint typecheck web-test unit

bench: install
	$(BIN)/python -m bench.local.run

clean:
	rm -rf $(VENV) $(UV_HOME) .coverage .coverage.* .pytest_cache .mypy_cache .ruff_cache web/node_modules web/dist
	find src -name __pycache__ -type d -prune -exec rm -rf {} +
