"""The steps the DAGs run, as plain functions (no Airflow here; ``receivables.airflow`` adapts).

Each step opens the warehouse, does one thing for one as-of date and returns a small dict
(it travels through XCom). Steps are idempotent: running one again for the same date and the
same inbox changes nothing and sends nothing twice.
"""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine

from receivables.config import Settings
from receivables.mail import send_once
from receivables.warehouse.db import create_engine, redact
from receivables.warehouse.migrate import ensure_current

log = logging.getLogger(__name__)


def open_warehouse(db_url: str) -> Engine:
    """An engine on a warehouse whose schema is current (else a clear error): one that cannot
    be reached raises :class:`~receivables.warehouse.db.WarehouseUnavailable`, one line."""
    from receivables.warehouse.db import check_reachable

    engine = create_engine(db_url)
    try:
        check_reachable(engine)
        ensure_current(engine)
    except BaseException:
        engine.dispose()
        raise
    log.info("warehouse: %s", redact(db_url))
    return engine


def discover_inbox(inbox: Path) -> dict[str, list[str]]:
    """Inbox files by kind in loading order, plus ``unrecognised`` ones."""
    from receivables.ingest.pipeline import discover

    found = discover(inbox)
    result = {**found.by_kind, "unrecognised": found.unrecognised}
    counts = ", ".join(f"{len(v)} {k}" for k, v in result.items() if v) or "nothing"
    log.info("inbox %s: %s", inbox, counts)
    return result


def ingest_files(
    paths: list[str], *, settings: Settings, db_url: str, as_of: dt.date, run_id: str | None
) -> list[dict[str, Any]]:
    """Ingest files in the given order; refusals are outcomes, failures raise.

    Holds the warehouse's writer lock throughout (another run's steps wait, and a file it took
    meanwhile is skipped, not loaded twice), and first drops the staging that crashed attempts
    left behind."""
    from receivables.ingest.pipeline import FileIngest
    from receivables.ingest.staging import drop_leftovers
    from receivables.warehouse.locks import warehouse_lock

    # ``paths`` are path tokens from discover_inbox (or plain paths): ingest() reads both.
    engine = open_warehouse(db_url)
    try:
        with warehouse_lock(engine, f"ledger_ingest for {as_of} run {run_id}"):
            drop_leftovers(engine)  # safe only now: no other attempt can be staging
            ingest = FileIngest(engine, settings, as_of, run_id)
            return [ingest.ingest(str(p)).as_dict() for p in paths]
    finally:
        engine.dispose()


def summarize_ingest(
    outcomes: list[dict[str, Any]], *, settings: Settings, as_of: dt.date, run_id: str
) -> dict[str, Any]:
    """Reconcile and log the run's counts; tell the data engineers about any refusal."""
    loaded = [o for o in outcomes if o["status"] == "loaded"]
    rejected = [o for o in outcomes if o["status"] == "rejected"]
    totals = {
        "as_of": as_of.isoformat(),
        "run_id": run_id,
        "files_loaded": len(loaded),
        "files_rejected": len(rejected),
        "rows_read": sum(o["rows_read"] for o in outcomes),
        "rows_loaded": sum(o["rows_loaded"] for o in outcomes),
        "rows_quarantined": sum(o["rows_quarantined"] for o in outcomes),
    }
    if totals["rows_read"] != totals["rows_loaded"] + totals["rows_quarantined"]:
        raise RuntimeError(f"ingest counts do not reconcile: {totals}")
    log.info(
        "ingest %s: %d file(s) loaded, %d refused; rows %d read = %d loaded + %d quarantined",
        as_of,
        totals["files_loaded"],
        totals["files_rejected"],
        totals["rows_read"],
        totals["rows_loaded"],
        totals["rows_quarantined"],
    )
    if rejected or totals["rows_quarantined"]:
        delivery = send_once(
            settings,
            f"ingest-quality/{run_id}",
            "ops/ingest_quality",
            settings.alert_emails,
            "data-quality",
            files=outcomes,
            rejected_dir=settings.rejected_dir,
            data_docs=settings.data_docs_index,
            **totals,
        )
        totals["alert"] = delivery.location
    return {**totals, "files": outcomes}


def compute_aging(*, settings: Settings, db_url: str, as_of: dt.date) -> dict[str, Any]:
    """Replace the aging snapshot of ``as_of``; return its summary."""
    from receivables.aging import compute_snapshot

    return _run(db_url, compute_snapshot, as_of, settings.policy.aging).as_dict()


def _open(db_url: str, step, *args):
    """Run ``step(engine, *args)`` on a warehouse engine of its own (no writer lock: for steps
    that write only their own rows, or only read)."""
    engine = open_warehouse(db_url)
    try:
        return step(engine, *args)
    finally:
        engine.dispose()


def _run(db_url: str, step, *args):
    """Run ``step(engine, *args)`` holding the warehouse's writer lock: steps of other runs
    (another date, a ``receivables run`` beside the scheduler) wait for it instead of writing
    the same tables at the same time."""
    from receivables.warehouse.locks import warehouse_lock

    engine = open_warehouse(db_url)
    day = next((a for a in args if isinstance(a, dt.date)), None)
    what = getattr(step, "__name__", "a step") + (f" for {day}" if day else "")
    try:
        with warehouse_lock(engine, what):
            return step(engine, *args)
    finally:
        engine.dispose()


def classify_customers(*, settings: Settings, db_url: str, as_of: dt.date) -> dict[str, Any]:
    """Customer-level five-category classes of ``as_of``."""
    from receivables.risk.classification import compute_customer_classes

    summary = _run(db_url, compute_customer_classes, as_of, settings.policy)
    log.info("customer classes %s: %s", as_of, summary["customers_by_class"])
    if summary["missing_fx_rates"]:
        log.warning(
            "no %s rate on or before %s for %s: those balances are judged on their own and left "
            "out of %s totals (drop an fx_rates file and run the date again)",
            summary["reporting_currency"],
            as_of,
            ", ".join(summary["missing_fx_rates"]),
            summary["reporting_currency"],
        )
    return summary


def compute_provisions(*, settings: Settings, db_url: str, as_of: dt.date) -> dict[str, Any]:
    """Roll-rate history, provision matrices and ECL per open invoice of ``as_of``."""
    from receivables.risk.provisions import compute_provisions as provisions

    policy = settings.policy
    summary = _run(db_url, provisions, as_of, policy.aging, policy.provisions)
    log.info("provisions %s: %s", as_of, summary["by_currency"])
    return summary


def score_customers(*, settings: Settings, db_url: str, as_of: dt.date) -> dict[str, Any]:
    """Credit scores of ``as_of`` with the latest approved model."""
    from receivables.risk.models import score_customers as score

    return _run(db_url, score, as_of, settings.policy.scores)


def raise_warnings(*, settings: Settings, db_url: str, as_of: dt.date) -> dict[str, Any]:
    """Risk warnings of ``as_of``."""
    from receivables.risk.warnings import raise_warnings as warn

    return _run(db_url, warn, as_of, settings.policy)


def send_risk_digest(*, settings: Settings, db_url: str, as_of: dt.date) -> dict[str, Any]:
    """The risk team's digest of ``as_of`` (sent once per date)."""
    from receivables.risk.digest import send_digest

    return _run(db_url, send_digest, as_of, settings)


def train_credit_model(*, settings: Settings, db_url: str, as_of: dt.date) -> dict[str, Any]:
    """The monthly scorecard: train, validate, gate, model card, registry."""
    from receivables.risk.models import train_credit_model as train

    return _run(db_url, train, as_of, settings.policy.scores, settings.reports_dir)


def plan_reminders(*, settings: Settings, db_url: str, as_of: dt.date) -> dict[str, Any]:
    """Plan the reminders of ``as_of`` by the dunning strategy (recorded before anything is
    sent; planning a date again adds nothing)."""
    from receivables.collection.planner import plan_reminders as plan

    return _run(db_url, plan, as_of, settings.strategy, settings.timezone)


def reminder_batches(*, settings: Settings, db_url: str, dates: list[dt.date]) -> list[dict]:
    """The send batches that still hold pending reminders, for the given dates, in order."""
    import sqlalchemy as sa

    from receivables.warehouse.schema import reminders

    r = reminders.c
    engine = open_warehouse(db_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                sa.select(r.planned_on, r.batch)
                .where(r.planned_on.in_(dates), r.status.in_(("pending", "sending")))
                .group_by(r.planned_on, r.batch)
                .order_by(r.planned_on, r.batch)
            ).all()
    finally:
        engine.dispose()
    batches = [{"as_of": str(row.planned_on), "batch": int(row.batch)} for row in rows]
    log.info("reminders to send: %d batch(es) for %s", len(batches), [str(d) for d in dates])
    return batches


def send_reminders(
    *, settings: Settings, db_url: str, as_of: dt.date, batch: int
) -> dict[str, Any]:
    """Send one batch of pending reminders (no writer lock: it writes only its own rows)."""
    from receivables.collection.sender import send_batch

    return _open(db_url, send_batch, settings, as_of, batch)


def summarize_reminders(*, settings: Settings, db_url: str, as_of: dt.date) -> dict[str, Any]:
    """What happened to the reminders planned on ``as_of``: by status, refusal rule, stage."""
    from receivables.collection.report import reminder_summary

    summary = _open(db_url, reminder_summary, as_of)
    log.info("reminders %s: %s", as_of, summary)
    return summary


# --- legal escalation -------------------------------------------------------------------------


def propose_legal_cases(*, settings: Settings, db_url: str, as_of: dt.date) -> dict[str, Any]:
    """Propose the day's legal cases by the selection rules (approving small claims at once);
    running the date again proposes nothing twice."""
    from receivables.legal.escalation import propose_cases

    return _run(db_url, propose_cases, as_of, settings.strategy)


def legal_cases_to_review(
    *, settings: Settings, db_url: str, dates: list[dt.date]
) -> list[dict[str, Any]]:
    """The cases waiting for a person's decision on the latest of ``dates`` (one review each)."""
    from receivables.legal.escalation import cases_to_review

    items = _open(db_url, cases_to_review, max(dates))
    log.info("legal cases waiting for a decision: %d", len(items))
    return items


def open_legal_cases(*, settings: Settings, db_url: str, as_of: dt.date) -> dict[str, Any]:
    """Write and send the case file of every approved case that has none yet."""
    from receivables.legal.escalation import open_approved_cases

    return _open(db_url, open_approved_cases, settings, as_of, settings.strategy)


def summarize_legal(*, settings: Settings, db_url: str, as_of: dt.date) -> dict[str, Any]:
    """Legal cases by status up to ``as_of``, and what the date proposed and opened."""
    from receivables.legal.escalation import legal_summary

    summary = _open(db_url, legal_summary, as_of)
    log.info("legal cases %s: %s", as_of, summary)
    return summary


# --- the quarterly evaluation -----------------------------------------------------------------


def prepare_quarter(*, settings: Settings, db_url: str, as_of: dt.date) -> dict[str, Any]:
    """The quarter-ends the evaluation of the quarter that ended before ``as_of`` reads: their
    aging snapshots, customer classes and provisions, computed from the ledger when missing."""
    from receivables.evaluation.quarters import just_ended
    from receivables.evaluation.report import prepare_quarter as prepare

    return _run(db_url, prepare, just_ended(as_of), settings.policy)


def write_quarterly_report(*, settings: Settings, db_url: str, as_of: dt.date) -> dict[str, Any]:
    """Evaluate the quarter that ended before ``as_of`` and write its report (both languages,
    PDF, HTML, XLSX, charts) under ``$RECEIVABLES_HOME/reports/quarterly/<quarter>/``."""
    from receivables.evaluation.quarters import just_ended
    from receivables.evaluation.report import evaluate, report_folder, write_report

    quarter = just_ended(as_of)

    def gather(engine):
        return evaluate(engine, quarter, settings.policy, settings.strategy, settings.timezone)

    # the aging snapshots and roll matrices of the trend's quarter-ends may be written: gathered
    # under the writer lock; the files are rendered after it is released
    evaluation = _run(db_url, gather)
    files = write_report(evaluation, report_folder(settings, quarter))

    current = evaluation.current.values
    log.info(
        "quarterly evaluation %s written to %s (overdue ratio %s, recovery rate %s)",
        quarter.label,
        files.folder,
        current["overdue_ratio"],
        current["recovery_rate"],
    )
    return {
        "quarter": quarter.label,
        "folder": str(files.folder),
        "reporting_currency": evaluation.reporting_currency,
        "kpis": {name: None if v is None else str(v) for name, v in current.items()},
        "findings": len(evaluation.findings),
        "collectors": len(evaluation.collectors.ranked) if evaluation.collectors else 0,
        "missing_fx_rates": evaluation.missing_fx_rates,
    }


def send_quarterly_report(*, settings: Settings, db_url: str, as_of: dt.date) -> dict[str, Any]:
    """Email the written report of the quarter that ended before ``as_of`` to management, once
    per quarter (a re-run sends nothing twice)."""
    from receivables.evaluation.quarters import just_ended
    from receivables.evaluation.report import report_email, report_folder
    from receivables.mail import send_email_once

    quarter = just_ended(as_of)
    email = report_email(report_folder(settings, quarter), quarter, settings.management_emails)
    delivery = send_email_once(settings, email)
    log.info("quarterly evaluation %s to management: %s", quarter.label, delivery.status)
    return {"quarter": quarter.label, "status": delivery.status, "to": len(email.to)}


# --- the monthly report -----------------------------------------------------------------------


def prepare_month(*, settings: Settings, db_url: str, as_of: dt.date) -> dict[str, Any]:
    """The month-ends the report of the month before ``as_of`` reads: their risk rows,
    computed from the ledger when missing."""
    from receivables.evaluation.monthly import month_end_before
    from receivables.evaluation.monthly import prepare_month as prepare

    return _run(db_url, prepare, month_end_before(as_of), settings.policy)


def write_monthly_report(*, settings: Settings, db_url: str, as_of: dt.date) -> dict[str, Any]:
    """The report of the month that ended before ``as_of`` (both languages, PDF, HTML, XLSX,
    charts) under ``$RECEIVABLES_HOME/reports/monthly/<YYYY-MM>/``."""
    from receivables.evaluation.monthly import (
        month_end_before,
        monthly_figures,
        monthly_folder,
    )
    from receivables.evaluation.monthly import (
        write_monthly_report as write,
    )

    month_end = month_end_before(as_of)
    report = _run(db_url, monthly_figures, month_end, settings.policy)
    folder = write(report, monthly_folder(settings, month_end))
    ratio = report.overdue_ratio(month_end)
    log.info("monthly report %s written to %s (overdue ratio %s)", report.label, folder, ratio)
    return {
        "month": report.label,
        "folder": str(folder),
        "total_outstanding": str(report.total(month_end)),
        "overdue_ratio": None if ratio is None else str(ratio),
    }


def send_monthly_report(*, settings: Settings, db_url: str, as_of: dt.date) -> dict[str, Any]:
    """Email the written report of the month before ``as_of`` to management, once a month."""
    from receivables.evaluation.monthly import month_end_before, monthly_email, monthly_folder
    from receivables.mail import send_email_once

    month_end = month_end_before(as_of)
    email = monthly_email(
        monthly_folder(settings, month_end), month_end, settings.management_emails
    )
    delivery = send_email_once(settings, email)
    log.info("monthly report %s to management: %s", month_end, delivery.status)
    return {"month": month_end.strftime("%Y-%m"), "status": delivery.status}
