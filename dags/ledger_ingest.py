"""
### ledger_ingest — pick up the day's ledger files, validate them, load them

**Runs** daily at 06:00 business time (`RECEIVABLES_INGEST_CRON`; `none` for triggered runs
only) and on demand.

**Reads** the inbox (`RECEIVABLES_INBOX`, or the run's `inbox` param): `fx_rates*`,
`collectors*`, `customers*`, `invoices*`, `payments*`, `legal_updates*` and `feedback*` files in
CSV (UTF-8, UTF-8 with BOM, GB18030 Chinese text, or the encoding declared for the inbox), XLSX or
Parquet (docs/contract.md §3).

**Does**, one mapped task per file, kinds in loading order (fx_rates, collectors, customers,
invoices, payments, legal_updates, feedback): reads and checks every row, stages the file, runs
the Great Expectations suites of `include/gx/`, and loads the good rows in one transaction (a
legal update's rows are steps of legal cases, taken in file order through the case lifecycle).
Bad rows are quarantined with their reason; unreadable files and files missing a required
column are refused whole.

**Writes** the warehouse (`fx_rates`, `collectors`, `customers`, `invoices`, `payments`,
`legal_cases`, `legal_case_events`, `staff_feedback`, `ingested_files`, `quarantined_rows`),
moves loaded files to `archive/` (named by checksum: a file never loads twice) and refused ones
to `rejected/`, and updates the GX data docs.

**Sends** the data engineers an email when a file is refused or rows are quarantined, and when
a task fails.

**Publishes** the `ledger` asset (its event carries `as_of_date`), which starts
`receivables_risk`.
"""

from __future__ import annotations

from pathlib import Path

from airflow.sdk import Param, chain, dag, task

from receivables.airflow import assets, dag_defaults


@dag(
    dag_id=Path(__file__).stem,
    doc_md=__doc__,
    schedule=dag_defaults.timetable("RECEIVABLES_INGEST_CRON", "0 6 * * *"),
    start_date=dag_defaults.START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=dag_defaults.default_args(),
    deadline=dag_defaults.chain_deadline_alert(),
    tags=["receivables", "ingest"],
    params={
        "inbox": Param(
            None,
            type=["null", "string"],
            title="Inbox folder",
            description="Read ledger files from this folder instead of RECEIVABLES_INBOX.",
        )
    },
)
def ledger_ingest():
    @task
    def list_files(kind: str, params=None) -> list[str]:
        from receivables.airflow.runtime import list_files

        return list_files(kind, params.get("inbox") if params else None)

    # One file at a time: files of a later kind refer to rows of earlier ones, and a file's
    # load is one transaction against a single staging table per kind.
    @task(max_active_tis_per_dagrun=1, trigger_rule="none_failed")
    def ingest_file(path: str) -> dict:
        from receivables.airflow.runtime import ingest_file

        return ingest_file(path)

    @task(trigger_rule="none_failed", outlets=[assets.LEDGER])
    def summarize_ingest(
        fx_rates, collectors, customers, invoices, payments, legal_updates, feedback, unrecognised
    ):
        from receivables.airflow.runtime import summarize_ingest

        return summarize_ingest(
            fx_rates,
            collectors,
            customers,
            invoices,
            payments,
            legal_updates,
            feedback,
            unrecognised,
        )

    fx_rates = ingest_file.override(task_id="ingest_fx_rates").expand(
        path=list_files.override(task_id="list_fx_rates_files")("fx_rates")
    )
    collectors = ingest_file.override(task_id="ingest_collectors").expand(
        path=list_files.override(task_id="list_collectors_files")("collectors")
    )
    customers = ingest_file.override(task_id="ingest_customers").expand(
        path=list_files.override(task_id="list_customers_files")("customers")
    )
    invoices = ingest_file.override(task_id="ingest_invoices").expand(
        path=list_files.override(task_id="list_invoices_files")("invoices")
    )
    payments = ingest_file.override(task_id="ingest_payments").expand(
        path=list_files.override(task_id="list_payments_files")("payments")
    )
    legal_updates = ingest_file.override(task_id="ingest_legal_updates").expand(
        path=list_files.override(task_id="list_legal_updates_files")("legal_updates")
    )
    feedback = ingest_file.override(task_id="ingest_feedback").expand(
        path=list_files.override(task_id="list_feedback_files")("feedback")
    )
    unrecognised = ingest_file.override(task_id="reject_unrecognised_files").expand(
        path=list_files.override(task_id="list_unrecognised_files")("unrecognised")
    )
    chain(fx_rates, collectors, customers, invoices, payments, legal_updates, feedback)
    summarize_ingest(
        fx_rates, collectors, customers, invoices, payments, legal_updates, feedback, unrecognised
    )


ledger_ingest()
