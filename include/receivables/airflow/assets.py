"""The cross-DAG Assets, declared once (docs/design.md: ledger ──► risk ──► reminders, legal)."""

from __future__ import annotations

from airflow.sdk import Asset

#: Published by ``ledger_ingest`` after every run; its event carries ``as_of_date``.
LEDGER = Asset(name="ledger", uri="receivables://warehouse/ledger", group="receivables")

#: Published by ``receivables_risk`` once the date's aging and risk tables are written.
RISK = Asset(name="risk", uri="receivables://warehouse/risk", group="receivables")
