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
from receivables.mail import OutboundEmail, outbox_for
from receivables.render import render_email
from receivables.warehouse.db import create_engine, redact
from receivables.warehouse.migrate import ensure_current

log = logging.getLogger(__name__)


def open_warehouse(db_url: str) -> Engine:
    """An engine on a warehouse whose schema is current (else a clear error)."""
    engine = create_engine(db_url)
    ensure_current(engine)
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
    """Ingest files in the given order; refusals are outcomes, failures raise."""
    from receivables.ingest.pipeline import FileIngest

    engine = open_warehouse(db_url)
    try:
        ingest = FileIngest(engine, settings, as_of, run_id)
        return [ingest.ingest(Path(p)).as_dict() for p in paths]
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
        subject, text, html = render_email(
            "ops/ingest_quality",
            files=outcomes,
            rejected_dir=settings.rejected_dir,
            data_docs=settings.data_docs_index,
            **totals,
        )
        delivery = outbox_for(settings).send(
            OutboundEmail(
                key=f"ingest-quality/{run_id}",
                to=settings.alert_emails,
                subject=subject,
                text=text,
                html=html,
                category="data-quality",
            )
        )
        totals["alert"] = delivery.location
    return {**totals, "files": outcomes}


def compute_aging(*, settings: Settings, db_url: str, as_of: dt.date) -> dict[str, Any]:
    """Replace the aging snapshot of ``as_of``; return its summary."""
    from receivables.aging import compute_snapshot

    engine = open_warehouse(db_url)
    try:
        return compute_snapshot(engine, as_of, settings.policy.aging).as_dict()
    finally:
        engine.dispose()


def _run(db_url: str, step, *args):
    engine = open_warehouse(db_url)
    try:
        return step(engine, *args)
    finally:
        engine.dispose()


def classify_customers(*, settings: Settings, db_url: str, as_of: dt.date) -> dict[str, Any]:
    """Customer-level five-category classes of ``as_of``."""
    from receivables.risk.classification import compute_customer_classes

    policy = settings.policy
    classes = _run(db_url, compute_customer_classes, as_of, policy.aging, policy.classification)
    log.info("customer classes %s: %s", as_of, classes)
    return {"as_of_date": as_of.isoformat(), "customers_by_class": classes}


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
