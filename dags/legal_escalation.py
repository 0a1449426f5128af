"""
### legal_escalation — propose legal cases, have each approved by a person, open them

**Runs** when `receivables_risk` publishes the `risk` asset, for the as-of date(s) its event
carries (or the logical date of a manual run), oldest first.

**Reads** the day's aging snapshot, the reminders sent (the final notice and whether it
bounced), disputes, promises to pay and earlier cases; the selection rules, the automatic
approval amounts and the review time in the `legal` section of
`include/collection/strategy.yaml`.

**Asks** a person, for every case still proposed, to approve or reject it: one
human-in-the-loop task per case (`review_case`, Airflow's *Required actions*), showing the
claim and the rule results. Unanswered within `legal.review_hours`, the task is skipped and the
case stays proposed.

**Writes** `legal_cases` (proposed, approved or rejected, with the rule results and who decided),
`legal_case_invoices` (the claim as it stood), `legal_case_events` (every step), and for each
approved case its case file and demand letter (HTML and PDF) under
`$RECEIVABLES_HOME/legal/<case_id>/`. From approval on, no reminder goes to the customer (legal
hold).

**Sends** each new case file once, with the PDFs attached, to the legal team
(`legal.recipients`) through SendGrid or the `.eml` outbox.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from airflow.sdk import dag, task

from receivables.airflow import assets, dag_defaults
from receivables.airflow.review import CaseReview


def _review_time() -> dt.timedelta:
    """How long a case waits for a decision (the strategy's ``legal.review_hours``)."""
    import os

    from receivables.collection.strategy import load_strategy
    from receivables.config import ConfigError

    named = os.environ.get("RECEIVABLES_STRATEGY")
    try:
        legal = load_strategy(Path(named).expanduser() if named else None).legal
    except ConfigError:  # the tasks report the broken strategy; the DAG still parses
        legal = None
    return dt.timedelta(hours=legal.review_hours if legal else 72)


@dag(
    dag_id=Path(__file__).stem,
    doc_md=__doc__,
    schedule=[assets.RISK],
    start_date=dag_defaults.START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=dag_defaults.default_args(),
    deadline=dag_defaults.chain_deadline_alert(),
    tags=["receivables", "legal"],
)
def legal_escalation():
    @task
    def propose_cases() -> dict:
        from receivables import jobs
        from receivables.airflow.runtime import run_step

        return run_step(jobs.propose_legal_cases)

    @task
    def list_reviews() -> list[dict]:
        from receivables.airflow.runtime import legal_reviews

        return legal_reviews()

    @task(trigger_rule="none_failed")
    def open_cases() -> dict:
        from receivables import jobs
        from receivables.airflow.runtime import run_step

        return run_step(jobs.open_legal_cases)

    @task(trigger_rule="none_failed")
    def summarize_cases() -> dict:
        from receivables import jobs
        from receivables.airflow.runtime import run_step

        return run_step(jobs.summarize_legal)

    reviews = list_reviews()
    review = CaseReview.partial(
        task_id="review_case", response_timeout=_review_time(), retries=0
    ).expand_kwargs(reviews)
    propose_cases() >> reviews
    review >> open_cases() >> summarize_cases()


legal_escalation()
