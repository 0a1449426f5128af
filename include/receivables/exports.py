"""``receivables export NAME --as-of DATE --out FILE.csv`` (CONTRACT §5), streamed to CSV.

Each export is a query with the contract's columns first (more may follow). Money is written
exactly as stored (two decimals), dates as ISO ``YYYY-MM-DD``, UTF-8 without a byte-order mark.
"""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from receivables.warehouse.schema import (
    aging_runs,
    aging_snapshots,
    credit_scores,
    ingested_files,
    quarantined_rows,
    risk_warnings,
)


class ExportError(Exception):
    """The export cannot be produced (e.g. nothing computed for that date yet)."""


def _aging(engine: Engine, as_of: dt.date | None) -> sa.Select:
    if as_of is None:
        raise ExportError("the aging export needs --as-of DATE")
    a = aging_snapshots
    with engine.connect() as conn:
        computed = conn.execute(
            sa.select(aging_runs.c.as_of_date).where(aging_runs.c.as_of_date == as_of)
        ).first()
    if computed is None:
        raise ExportError(
            f"no aging snapshot for {as_of}: run `receivables run --as-of {as_of}` first"
        )
    return (
        sa.select(
            a.c.as_of_date,
            a.c.invoice_id,
            a.c.customer_id,
            a.c.currency,
            a.c.amount,
            a.c.outstanding,
            a.c.due_date,
            a.c.days_past_due,
            a.c.bucket,
            a.c.risk_class,
            a.c.issue_date,
            a.c.paid,
            a.c.disputed,
        )
        .where(a.c.as_of_date == as_of)
        .order_by(a.c.customer_id, a.c.invoice_id)
    )


def _rejects(engine: Engine, as_of: dt.date | None) -> sa.Select:
    """Every refusal ever (CONTRACT §5): quarantined rows, then files refused whole."""
    f, q = ingested_files, quarantined_rows
    rows = sa.select(
        f.c.file_name.label("file"),
        q.c.row_number,
        q.c.record_id,
        q.c.column_name.label("column"),
        q.c.value,
        q.c.reason,
        f.c.kind,
        f.c.as_of_date.label("ingested_for"),
        f.c.file_id,
        q.c.quarantine_id.label("sequence"),
    ).join_from(q, f, q.c.file_id == f.c.file_id)
    files = sa.select(
        f.c.file_name.label("file"),
        sa.null().label("row_number"),
        sa.null().label("record_id"),
        f.c.reason_column.label("column"),
        sa.null().label("value"),
        f.c.reason,
        f.c.kind,
        f.c.as_of_date.label("ingested_for"),
        f.c.file_id,
        sa.literal(0).label("sequence"),
    ).where(f.c.status == "rejected")
    union = sa.union_all(rows, files).subquery()
    return sa.select(
        union.c.file,
        union.c.row_number,
        union.c.record_id,
        union.c.column,
        union.c.value,
        union.c.reason,
        union.c.kind,
        union.c.ingested_for,
    ).order_by(union.c.file_id, union.c.row_number, union.c.sequence)


def _scored(engine: Engine, as_of: dt.date | None, name: str) -> None:
    if as_of is None:
        raise ExportError(f"the {name} export needs --as-of DATE")
    with engine.connect() as conn:
        found = conn.execute(
            sa.select(credit_scores.c.as_of_date)
            .where(credit_scores.c.as_of_date == as_of)
            .limit(1)
        ).first()
    if found is None:
        raise ExportError(
            f"no risk results for {as_of}: run `receivables run --as-of {as_of}` first"
        )


def _scores(engine: Engine, as_of: dt.date | None) -> sa.Select:
    _scored(engine, as_of, "scores")
    s = credit_scores
    return (
        sa.select(
            s.c.customer_id,
            s.c.score,
            s.c.grade,
            s.c.reasons,
            s.c.pd,
            s.c.model_id,
            s.c.as_of_date,
        )
        .where(s.c.as_of_date == as_of)
        .order_by(s.c.customer_id)
    )


def _warnings(engine: Engine, as_of: dt.date | None) -> sa.Select:
    _scored(engine, as_of, "warnings")
    w = risk_warnings
    severity = sa.case(
        {"critical": 0, "high": 1, "medium": 2, "low": 3}, value=w.c.severity, else_=4
    )
    return (
        sa.select(
            w.c.customer_id,
            w.c.kind,
            w.c.severity,
            w.c.message,
            w.c.action,
            w.c.proposed_credit_limit,
            w.c.currency,
            w.c.dunning_stage,
            w.c.as_of_date,
        )
        .where(w.c.as_of_date == as_of)
        .order_by(severity, w.c.customer_id, w.c.kind)
    )


EXPORTS: dict[str, Callable[[Engine, dt.date | None], sa.Select]] = {
    "aging": _aging,
    "rejects": _rejects,
    "scores": _scores,
    "warnings": _warnings,
}


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, float):
        return repr(round(value, 8))
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def export(name: str, engine: Engine, as_of: dt.date | None, out: Path) -> int:
    """Write export ``name`` to ``out``; return the number of data rows written."""
    if name not in EXPORTS:
        raise ExportError(f"unknown export {name!r}: expected one of {', '.join(sorted(EXPORTS))}")
    query = EXPORTS[name](engine, as_of)
    out.parent.mkdir(parents=True, exist_ok=True)
    temporary = out.with_name(out.name + ".part")
    count = 0
    with engine.connect() as conn, temporary.open("w", encoding="utf-8", newline="") as f:
        result = conn.execution_options(stream_results=True, yield_per=10_000).execute(query)
        writer = csv.writer(f)
        writer.writerow(result.keys())
        for row in result:
            writer.writerow([_text(v) for v in row])
            count += 1
    temporary.replace(out)
    return count
