# Entry points (docs/contract.md §1). Every target works on a fresh clone: `.venv` is created from the
# committed lock file (uv.lock) by `make install`, which the other targets depend on.
SHELL := /bin/bash
PYTHON ?= python3.11
UV_VERSION := 0.13.9
VENV := .venv
BIN := $(VENV)/bin
DEMO_HOME ?= $(CURDIR)/var/demo
DEMO_AS_OF ?= 2025-07-01
DEMO_CUSTOMERS ?= 400

.PHONY: install demo demo-sendgrid test e2e airflow bench lint format clean

# A stamp keeps `make install` fast when neither the lock nor pyproject changed.
$(VENV)/.installed: uv.lock pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@test -x $(BIN)/uv && $(BIN)/uv --version | grep -q "$(UV_VERSION)" || $(BIN)/pip install --quiet "uv==$(UV_VERSION)"
	$(BIN)/uv sync --frozen --python $(BIN)/python
	@touch $@

install: $(VENV)/.installed

# A fresh embedded warehouse in var/demo each time (its Airflow metadata DB is kept), a sample
# ledger with a few defective rows, the daily DAGs through Airflow for two earlier days (so that
# reminders, then final notices, have gone out) and for the first of a month (ingest, the
# monthly credit model, risk, reminders, legal escalation with every case approved through
# Airflow's API, and on a quarter's first day the quarterly evaluation), and the exports.
demo: install
	@mkdir -p $(DEMO_HOME) && find $(DEMO_HOME) -mindepth 1 -maxdepth 1 ! -name airflow -exec rm -rf {} +
	@export RECEIVABLES_HOME=$(DEMO_HOME) && unset RECEIVABLES_INBOX && set -e && \
	$(BIN)/receivables init && \
	$(BIN)/receivables sample --out $(DEMO_HOME)/inbox --customers $(DEMO_CUSTOMERS) \
		--as-of $(DEMO_AS_OF) --seed 7 --defects 0.002 && \
	for day in $$(date -d "$(DEMO_AS_OF) -17 days" +%F) $$(date -d "$(DEMO_AS_OF) -10 days" +%F); do \
		$(BIN)/receivables run --as-of $$day >/dev/null; echo "(ran $$day)"; done && \
	$(BIN)/receivables run --as-of $(DEMO_AS_OF) --legal-review approve && \
	$(BIN)/receivables export aging --as-of $(DEMO_AS_OF) \
		--out $(DEMO_HOME)/reports/aging-$(DEMO_AS_OF).csv && \
	$(BIN)/receivables export rejects --as-of $(DEMO_AS_OF) --out $(DEMO_HOME)/reports/rejects.csv && \
	$(BIN)/receivables export scores --as-of $(DEMO_AS_OF) \
		--out $(DEMO_HOME)/reports/scores-$(DEMO_AS_OF).csv && \
	$(BIN)/receivables export warnings --as-of $(DEMO_AS_OF) \
		--out $(DEMO_HOME)/reports/warnings-$(DEMO_AS_OF).csv && \
	$(BIN)/receivables export reminders --as-of $(DEMO_AS_OF) \
		--out $(DEMO_HOME)/reports/reminders-$(DEMO_AS_OF).csv && \
	$(BIN)/receivables export worklist --as-of $(DEMO_AS_OF) \
		--out $(DEMO_HOME)/reports/worklist-$(DEMO_AS_OF).csv && \
	$(BIN)/receivables export legal_cases --as-of $(DEMO_AS_OF) \
		--out $(DEMO_HOME)/reports/legal-cases-$(DEMO_AS_OF).csv && \
	quarter_end=$$(date -d "$(DEMO_AS_OF) -1 day" +%F) && \
	case $$quarter_end in *-03-31|*-06-30|*-09-30|*-12-31) \
		$(BIN)/receivables export kpis --as-of $$quarter_end \
			--out $(DEMO_HOME)/reports/kpis-$$quarter_end.csv;; esac

# The same demo with the sendgrid_default connection pointing at SendGrid's contract mock (Prism,
# installed from npm on first use): every email goes through SendGrid's Mail Send API. It runs
# today's date: SendGrid gets a reminder only close to its planned moment, never a backfill's.
demo-sendgrid: install
	$(BIN)/python -m tests.sendgrid_mock $(MAKE) --no-print-directory demo \
		DEMO_AS_OF=$$(TZ=$${RECEIVABLES_TIMEZONE:-Asia/Shanghai} date +%F)

test: install
	$(BIN)/python -m tests.services
	$(BIN)/pytest

# Only the distributed end-to-end tier: Airflow's components as separate processes on the Celery
# executor (Redis broker, PostgreSQL metadata and warehouse), started natively.
e2e: install
	$(BIN)/python -m tests.services
	$(BIN)/pytest tests/e2e

airflow: install
	$(BIN)/receivables airflow

bench: install
	$(BIN)/python -m tests.benchmarks.run
	$(BIN)/python -m tests.benchmarks.reminders
	$(BIN)/python -m tests.benchmarks.evaluation
	$(BIN)/python -m tests.benchmarks.chain

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf var .pytest_cache
