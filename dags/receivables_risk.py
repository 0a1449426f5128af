"""
### receivables_risk — the day's aging snapshot (risk classes, provisions and scores follow)

**Runs** when `ledger_ingest` publishes the `ledger` asset, for the `as_of_date` its event
carries (or for the logical date of a manual run).

**Writes** `aging_snapshots` for the as-of date, replacing that date's rows (a re-run is
idempotent): per open invoice its outstanding amount, days past due, aging bucket and
five-category risk class (CONTRACT §5), computed set-based by `sql/aging_snapshot.sql`.

**Sends** nothing yet (the failure alert aside).

**Publishes** the `risk` asset (its event carries `as_of_date`) for the collection and legal
DAGs.
"""

from __future__ import annotations

from pathlib import Path

from airflow.sdk import dag, task

from receivables.airflow import assets, dag_defaults


@dag(
    dag_id=Path(__file__).stem,
    doc_md=__doc__,
    schedule=[assets.LEDGER],
    start_date=dag_defaults.START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=dag_defaults.default_args(),
    tags=["receivables", "risk"],
)
def receivables_risk():
    @task(outlets=[assets.RISK])
    def compute_aging_snapshot() -> dict:
        from receivables.airflow.runtime import compute_aging_snapshot

        return compute_aging_snapshot()

    compute_aging_snapshot()


receivables_risk()
