# Entry points (CONTRACT §1). Every target works on a fresh clone: `.venv` is created from the
# committed lock file (uv.lock) by `make install`, which the other targets depend on.
SHELL := /bin/bash
PYTHON ?= python3.11
UV_VERSION := 0.13.9
VENV := .venv
BIN := $(VENV)/bin
export RECEIVABLES_HOME ?= $(CURDIR)/var
DEMO_AS_OF ?= 2025-06-30
DEMO_CUSTOMERS ?= 400

.PHONY: install demo test airflow bench lint format clean

# A stamp keeps `make install` fast when neither the lock nor pyproject changed.
$(VENV)/.installed: uv.lock pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@test -x $(BIN)/uv && $(BIN)/uv --version | grep -q "$(UV_VERSION)" || $(BIN)/pip install --quiet "uv==$(UV_VERSION)"
	$(BIN)/uv sync --frozen --python $(BIN)/python
	@touch $@

install: $(VENV)/.installed

demo: install
	$(BIN)/receivables demo --as-of $(DEMO_AS_OF) --customers $(DEMO_CUSTOMERS)

test: install
	$(BIN)/python -m tests.services
	$(BIN)/pytest

airflow: install
	$(BIN)/receivables airflow

bench: install
	$(BIN)/python -m tests.benchmarks.run

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf var .pytest_cache
