# fwbench: `make demo` (the whole product, offline) and `make test` each set up .venv themselves.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
LOCK := requirements-lock.txt
DEMO_DIR ?= demo
PYTEST_ARGS ?=

.PHONY: venv demo test test-fast lint format clean

# The dependency install is redone only when the lock file changes.
$(VENV)/.deps-installed: $(LOCK)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -r $(LOCK)
	touch $@

venv: $(VENV)/.deps-installed
	$(BIN)/pip install -q --no-deps -e .

# The main job, offline: environment -> digits -> demo matrix (both frameworks) -> report.
demo: venv
	FWBENCH_WORKSPACE=$(DEMO_DIR) bash scripts/demo.sh $(BIN)

# Everything CI runs: lint, then every test (slow ones included).
test: venv
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src tests
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

# The quick loop while developing.
test-fast: venv
	$(BIN)/python -m pytest -q -m "not slow" $(PYTEST_ARGS)

lint: venv
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src tests

format: venv
	$(BIN)/ruff format src tests
	$(BIN)/ruff check --fix src tests

clean:
	rm -rf $(VENV) $(DEMO_DIR) .pytest_cache .ruff_cache
