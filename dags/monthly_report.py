"""
### monthly_report — the book at a month's end, to management

**Runs** on the first day of every month at 07:00 business time (`RECEIVABLES_MONTHLY_CRON`;
`none` for triggered runs only) and on demand; it reports the month that ended before the run's
as-of date. `receivables run` on the first of a month runs it after the daily DAGs. Every figure
derives from the warehouse's history, so a re-run or a backfill gives the same report.

**Does**
1. `prepare_month`: the aging snapshot, customer classes, provisions and scores of each
   month-end the report reads, computed from the ledger when missing;
2. `write_report`: receivables by aging bucket over six months, the overdue ratio, the book by
   risk class, customers by credit grade and their migration since the month before, the ECL
   provision and the largest overdue balances, in Chinese and English;
3. `send_report`: the report to management (`RECEIVABLES_MANAGEMENT_EMAILS`), once a month.

**Writes** `report-zh-CN.pdf`, `report-en.pdf`, their HTML, `report.xlsx`, `charts/*.png` and
the email's body under `$RECEIVABLES_HOME/reports/monthly/<YYYY-MM>/`, and the risk rows of
month-ends that had none (as `receivables_risk` would).

**Sends** the management email; the failure alert to the data engineers.
"""

from __future__ import annotations

from pathlib import Path

from airflow.sdk import chain, dag, task

from receivables.airflow import dag_defaults


@dag(
    dag_id=Path(__file__).stem,
    doc_md=__doc__,
    schedule=dag_defaults.timetable("RECEIVABLES_MONTHLY_CRON", "0 7 1 * *"),
    start_date=dag_defaults.START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=dag_defaults.default_args(),
    tags=["receivables", "evaluation"],
)
def monthly_report():
    @task
    def prepare_month() -> dict:
        from receivables import jobs
        from receivables.airflow.runtime import run_step

        return run_step(jobs.prepare_month)

    @task
    def write_report() -> dict:
        from receivables import jobs
        from receivables.airflow.runtime import run_step

        return run_step(jobs.write_monthly_report)

    @task
    def send_report() -> dict:
        from receivables import jobs
        from receivables.airflow.runtime import run_step

        return run_step(jobs.send_monthly_report)

    chain(prepare_month(), write_report(), send_report())


monthly_report()
