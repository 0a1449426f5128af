"""
### collection_reminders — plan and send reminder emails by the dunning strategy

**Runs** when `receivables_risk` publishes the `risk` asset, for the as-of date(s) its event
carries (or the logical date of a manual run), oldest first.

**Reads** the day's aging snapshot, grades and warnings, the customers, the reminders already
sent, suppressions (bounces, spam reports, unsubscribes), promises to pay, open legal cases,
disputes, and a year of payments (each customer's habitual payment day); the dunning strategy
`include/collection/strategy.yaml`.

**Writes** `reminders` (the outbox: one row per customer, stage and date, written before
anything is sent; `pending`, then `sent` with SendGrid's message id or `failed` with the reason;
`refused` with the compliance rule that stopped it), `reminder_invoices` (each reminder's
statement) and `collection_actions` (the collectors' worklist: calls, visits, data fixes).

**Sends** one consolidated reminder per customer due a stage, in its language, through SendGrid
(the `sendgrid_default` connection) or, without it, as `.eml` files in
`$RECEIVABLES_HOME/outbox/`; in batches mapped over with bounded concurrency. A retry or a crash
never sends a reminder twice.
"""

from __future__ import annotations

from pathlib import Path

from airflow.sdk import dag, task

from receivables.airflow import assets, dag_defaults

#: send batches running at the same time (each with its own bounded request concurrency)
PARALLEL_BATCHES = 4


@dag(
    dag_id=Path(__file__).stem,
    doc_md=__doc__,
    schedule=[assets.RISK],
    start_date=dag_defaults.START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=dag_defaults.default_args(),
    deadline=dag_defaults.chain_deadline_alert(),
    tags=["receivables", "collection"],
)
def collection_reminders():
    @task
    def plan_reminders() -> dict:
        from receivables import jobs
        from receivables.airflow.runtime import run_step

        return run_step(jobs.plan_reminders)

    @task
    def list_send_batches() -> list[dict]:
        from receivables.airflow.runtime import reminder_batches

        return reminder_batches()

    @task(max_active_tis_per_dagrun=PARALLEL_BATCHES)
    def send_reminders(batch: dict) -> dict:
        from receivables.airflow.runtime import send_reminder_batch

        return send_reminder_batch(batch)

    @task(trigger_rule="none_failed")
    def summarize_reminders() -> dict:
        from receivables import jobs
        from receivables.airflow.runtime import run_step

        return run_step(jobs.summarize_reminders)

    batches = list_send_batches()
    sent = send_reminders.expand(batch=batches)
    plan_reminders() >> batches
    sent >> summarize_reminders()


collection_reminders()
