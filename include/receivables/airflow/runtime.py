"""Task bodies' glue: take the Airflow context, call :mod:`receivables.jobs`.

Each function here is what one ``@task`` calls; it resolves the as-of date and the warehouse
once, in the task, and returns a small dict for XCom.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from airflow.sdk import get_current_context

from receivables import jobs
from receivables.airflow import assets
from receivables.airflow.context import (
    publish,
    resolve_as_of,
    resolve_as_of_dates,
    settings,
    warehouse_url,
)


def list_files(kind: str, inbox: str | None) -> list[str]:
    """Inbox files of one kind (or ``unrecognised``), in loading order; ``inbox`` (the run's
    param) overrides ``RECEIVABLES_INBOX``."""
    current = settings()
    return jobs.discover_inbox(Path(inbox) if inbox else current.inbox)[kind]


def ingest_file(path: str) -> dict[str, Any]:
    """Ingest one file."""
    context = get_current_context()
    current = settings()
    (outcome,) = jobs.ingest_files(
        [path],
        settings=current,
        db_url=warehouse_url(current),
        as_of=resolve_as_of(context, current.timezone),
        run_id=context["run_id"],
    )
    return outcome


def summarize_ingest(*outcome_groups: Any) -> dict[str, Any]:
    """Gather every file's outcome, reconcile, alert, and publish the ledger asset."""
    context = get_current_context()
    current = settings()
    as_of = resolve_as_of(context, current.timezone)
    outcomes: list[dict[str, Any]] = []
    for group in outcome_groups:
        if not group:
            continue
        # index within len(): iterating a lazy XCom sequence probes one past its end, which
        # Airflow logs as an error
        outcomes.extend(group[i] for i in range(len(group)))
    summary = jobs.summarize_ingest(
        outcomes, settings=current, as_of=as_of, run_id=context["run_id"]
    )
    publish(
        context,
        assets.LEDGER,
        [as_of],
        files_loaded=summary["files_loaded"],
        files_rejected=summary["files_rejected"],
        rows_loaded=summary["rows_loaded"],
        rows_quarantined=summary["rows_quarantined"],
    )
    return summary


def run_step(step: Callable[..., dict[str, Any]]) -> dict[str, Any]:
    """Run a :mod:`receivables.jobs` step for each of the run's as-of dates, oldest first (one
    date, unless asset events of several dates queued up for this run)."""
    context = get_current_context()
    current = settings()
    dates = resolve_as_of_dates(context, current.timezone)
    url = warehouse_url(current)
    results = {d.isoformat(): step(settings=current, db_url=url, as_of=d) for d in dates}
    return next(iter(results.values())) if len(results) == 1 else results


def raise_risk_warnings() -> dict[str, Any]:
    """The risk warnings of each date; then publishes the risk asset (every risk table of
    those dates is written) with the dates processed."""
    context = get_current_context()
    current = settings()
    dates = resolve_as_of_dates(context, current.timezone)
    url = warehouse_url(current)
    summaries = [jobs.raise_warnings(settings=current, db_url=url, as_of=d) for d in dates]
    publish(context, assets.RISK, dates, warnings=summaries[-1]["warnings"])
    return summaries[0] if len(summaries) == 1 else {s["as_of_date"]: s for s in summaries}


def reminder_batches() -> list[dict[str, Any]]:
    """The send batches of the run's dates that hold pending reminders (the mapped tasks)."""
    context = get_current_context()
    current = settings()
    dates = resolve_as_of_dates(context, current.timezone)
    return jobs.reminder_batches(settings=current, db_url=warehouse_url(current), dates=dates)


def send_reminder_batch(batch: dict[str, Any]) -> dict[str, Any]:
    """Send one batch (``{"as_of": ISO date, "batch": n}``)."""
    import datetime as dt

    current = settings()
    return jobs.send_reminders(
        settings=current,
        db_url=warehouse_url(current),
        as_of=dt.date.fromisoformat(batch["as_of"]),
        batch=int(batch["batch"]),
    )


def legal_reviews() -> list[dict[str, Any]]:
    """The cases waiting for a decision: one mapped review task each."""
    context = get_current_context()
    current = settings()
    dates = resolve_as_of_dates(context, current.timezone)
    return jobs.legal_cases_to_review(settings=current, db_url=warehouse_url(current), dates=dates)
