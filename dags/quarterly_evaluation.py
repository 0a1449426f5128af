"""
### quarterly_evaluation — KPIs, collector performance and the report to management

**Runs** on the first day of January, April, July and October at 07:00 business time
(`RECEIVABLES_QUARTERLY_CRON`; `none` for triggered runs only) and on demand; it evaluates the
quarter that ended before the run's as-of date. `receivables run` on a quarter-start date runs it
after the daily DAGs. Every figure derives from the warehouse's history, so a first run, a
re-run or a backfill of a past quarter gives the same report.

**Does**
1. `prepare_quarter`: the aging snapshot, customer classes and provisions of every quarter-end
   the report reads (the trend's and the one before), computed from the ledger when missing;
2. `write_report`: the KPIs of the last quarters (docs/formulas.md §10), each book's, collector
   performance with proposed incentives, and the report in Chinese and English — HTML, PDF,
   XLSX and chart images — under `$RECEIVABLES_HOME/reports/quarterly/<quarter>/`;
3. `send_report`: the report to management (`RECEIVABLES_MANAGEMENT_EMAILS`) through the email
   layer, once per quarter.

**Writes** the report's files (`report-zh-CN.pdf`, `report-en.pdf`, their HTML, `report.xlsx`,
`charts/*.png`, `figures.json`, the email's body) under
`$RECEIVABLES_HOME/reports/quarterly/<quarter>/`, and the risk rows of quarter-ends that had
none (as `receivables_risk` would).

**Sends** the management email; the failure alert to the data engineers.
"""

from __future__ import annotations

from pathlib import Path

from airflow.sdk import chain, dag, task

from receivables.airflow import dag_defaults


@dag(
    dag_id=Path(__file__).stem,
    doc_md=__doc__,
    schedule=dag_defaults.timetable("RECEIVABLES_QUARTERLY_CRON", "0 7 1 1,4,7,10 *"),
    start_date=dag_defaults.START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=dag_defaults.default_args(),
    tags=["receivables", "evaluation"],
)
def quarterly_evaluation():
    @task
    def prepare_quarter() -> dict:
        from receivables import jobs
        from receivables.airflow.runtime import run_step

        return run_step(jobs.prepare_quarter)

    @task
    def write_report() -> dict:
        from receivables import jobs
        from receivables.airflow.runtime import run_step

        return run_step(jobs.write_quarterly_report)

    @task
    def send_report() -> dict:
        from receivables import jobs
        from receivables.airflow.runtime import run_step

        return run_step(jobs.send_quarterly_report)

    chain(prepare_quarter(), write_report(), send_report())


quarterly_evaluation()
