"""
### receivables_risk — aging, classification, provisions, credit scores, warnings, digest

**Runs** when `ledger_ingest` publishes the `ledger` asset, for the `as_of_date` its event
carries (or for the logical date of a manual run). When events of several dates queued up while
a run was busy, the next run processes every one of those dates, oldest first. Each step
replaces its date's rows, so a re-run is idempotent.

**Writes**
- `aging_snapshots`: per open invoice its outstanding amount, days past due, aging bucket and
  five-category risk class (docs/contract.md §5; `sql/aging_snapshot.sql`);
- `customer_risk_classes`: each customer's worst class, and whether more than 10 % of its
  outstanding is substandard or worse (then all its receivables are at least substandard);
- `roll_rates` (month-end to month-end matrices, kept as history), `provision_rates` (IFRS 9
  loss rates per currency and bucket) and `invoice_risk` (final class and ECL per invoice);
- `credit_scores`: score, PD, grade A–E and reasons per customer, with the latest approved
  model of `credit_model` (or the rules scorecard until one is approved);
- `risk_warnings`: kind, severity, message and recommended action per customer.

**Sends** the risk team's daily digest (new warnings by severity, grade movers, provision
change), once per date; the failure alert to the data engineers.

**Publishes** the `risk` asset (its event carries `as_of_dates` and the latest as `as_of_date`)
once the warnings are written, for the collection and legal DAGs.
"""

from __future__ import annotations

from pathlib import Path

from airflow.sdk import chain, dag, task

from receivables.airflow import assets, dag_defaults


@dag(
    dag_id=Path(__file__).stem,
    doc_md=__doc__,
    schedule=[assets.LEDGER],
    start_date=dag_defaults.START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=dag_defaults.default_args(),
    deadline=dag_defaults.chain_deadline_alert(),
    tags=["receivables", "risk"],
)
def receivables_risk():
    @task
    def compute_aging_snapshot() -> dict:
        from receivables import jobs
        from receivables.airflow.runtime import run_step

        return run_step(jobs.compute_aging)

    @task
    def classify_customers() -> dict:
        from receivables import jobs
        from receivables.airflow.runtime import run_step

        return run_step(jobs.classify_customers)

    @task
    def compute_provisions() -> dict:
        from receivables import jobs
        from receivables.airflow.runtime import run_step

        return run_step(jobs.compute_provisions)

    @task
    def score_customers() -> dict:
        from receivables import jobs
        from receivables.airflow.runtime import run_step

        return run_step(jobs.score_customers)

    @task(outlets=[assets.RISK])
    def raise_risk_warnings() -> dict:
        from receivables.airflow.runtime import raise_risk_warnings

        return raise_risk_warnings()

    @task
    def send_risk_digest() -> dict:
        from receivables import jobs
        from receivables.airflow.runtime import run_step

        return run_step(jobs.send_risk_digest)

    chain(
        compute_aging_snapshot(),
        classify_customers(),
        compute_provisions(),
        score_customers(),
        raise_risk_warnings(),
        send_risk_digest(),
    )


receivables_risk()
