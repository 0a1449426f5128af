"""Aging: outstanding, days past due, bucket and five-category class per invoice.

Definitions: docs/contract.md §5.

The snapshot is computed set-based by ``sql/aging_snapshot.sql`` on the warehouse's own engine
and replaces the date's rows, so a re-run is idempotent. The pure functions here state the same
definitions in Python: they document them, and the tests check the SQL against them.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from receivables.config import AgingPolicy, Band
from receivables.warehouse import sqlfiles
from receivables.warehouse.db import refresh_statistics
from receivables.warehouse.schema import aging_runs, aging_snapshots, ingested_files

log = logging.getLogger(__name__)


def days_past_due(as_of: dt.date, due_date: dt.date) -> int:
    """``as_of - due_date`` in days when positive, else 0."""
    return max((as_of - due_date).days, 0)


def band_index(days, bands: list[Band]):
    """Index in ``bands`` of the band holding each number of days past due (an int, or a numpy
    array of them): the one lookup of buckets and classes in Python (SQL uses the
    ``band_case`` macro of :mod:`receivables.warehouse.sqlfiles`)."""
    values = np.asarray(days)
    if (values < 0).any():
        raise ValueError(f"days past due cannot be negative: {days}")
    upper = np.asarray([b.max_days for b in bands if b.max_days is not None])
    index = np.searchsorted(upper, values, side="left")
    return int(index) if index.ndim == 0 else index


def band_for(days: int, bands: list[Band]) -> str:
    """The name of the band that holds ``days`` days past due."""
    return bands[band_index(days, bands)].name


@dataclass(frozen=True)
class InvoiceFacts:
    """An invoice and its payments, as the pure reference implementation takes them."""

    invoice_id: str
    customer_id: str
    issue_date: dt.date
    due_date: dt.date
    amount: Decimal
    payments: tuple[tuple[dt.date, Decimal], ...] = ()


@dataclass(frozen=True)
class AgedInvoice:
    """One row of the aging snapshot."""

    invoice_id: str
    customer_id: str
    amount: Decimal
    paid: Decimal
    outstanding: Decimal
    due_date: dt.date
    days_past_due: int
    bucket: str
    risk_class: str


def age_invoices(
    invoices: Iterable[InvoiceFacts], as_of: dt.date, policy: AgingPolicy
) -> list[AgedInvoice]:
    """The aging snapshot by the contract's words, one invoice at a time (reference only)."""
    rows = []
    for inv in invoices:
        if inv.issue_date > as_of:
            continue
        paid = sum((amount for day, amount in inv.payments if day <= as_of), Decimal("0.00"))
        outstanding = inv.amount - paid
        if outstanding <= 0:
            continue
        dpd = days_past_due(as_of, inv.due_date)
        rows.append(
            AgedInvoice(
                invoice_id=inv.invoice_id,
                customer_id=inv.customer_id,
                amount=inv.amount,
                paid=paid,
                outstanding=outstanding,
                due_date=inv.due_date,
                days_past_due=dpd,
                bucket=band_for(dpd, policy.buckets),
                risk_class=band_for(dpd, policy.risk_classes),
            )
        )
    return rows


@dataclass(frozen=True)
class AgingSummary:
    """Totals of one snapshot, for logs, the asset event and the CLI summary."""

    as_of_date: str
    invoices: int
    customers: int
    outstanding_by_currency: dict[str, str]
    overdue_by_currency: dict[str, str]
    by_bucket: dict[str, dict[str, str]]
    by_risk_class: dict[str, dict[str, str]]
    seconds: float

    def as_dict(self) -> dict:
        """Plain dict for XCom (money as strings: exact and JSON-safe)."""
        return self.__dict__.copy()


def compute_snapshot(
    engine: Engine, as_of: dt.date, policy: AgingPolicy, summary: bool = True
) -> AgingSummary | None:
    """Replace the aging snapshot of ``as_of`` in one transaction and summarise it (unless
    ``summary`` is false: snapshots computed only as history need no totals)."""
    started = time.monotonic()
    with engine.begin() as conn:
        # read before the snapshot: a load committing meanwhile makes it look stale (and be
        # recomputed once), never fresh
        ledger_file_id = conn.execute(
            sa.select(sa.func.max(ingested_files.c.file_id)).where(
                ingested_files.c.status == "loaded"
            )
        ).scalar()
        sqlfiles.execute(
            conn,
            "aging_snapshot.sql",
            {"as_of": as_of},
            types={"as_of": sa.Date()},
            buckets=policy.buckets,
            risk_classes=policy.risk_classes,
        )
        open_invoices = conn.execute(
            sa.select(sa.func.count()).where(aging_snapshots.c.as_of_date == as_of)
        ).scalar_one()
        conn.execute(aging_runs.delete().where(aging_runs.c.as_of_date == as_of))
        conn.execute(
            aging_runs.insert().values(
                as_of_date=as_of,
                open_invoices=open_invoices,
                ledger_file_id=ledger_file_id,
                computed_at=dt.datetime.now(dt.UTC),
            )
        )
    refresh_statistics(engine, "aging_snapshots")
    seconds = time.monotonic() - started
    if not summary:
        log.info("aging snapshot %s: %d open invoices in %.2f s", as_of, open_invoices, seconds)
        return None
    totals = summarise(engine, as_of, seconds)
    log.info(
        "aging snapshot %s: %d open invoices of %d customers in %.2f s",
        as_of,
        totals.invoices,
        totals.customers,
        seconds,
    )
    return totals


def stale_or_missing(engine: Engine, dates: Iterable[dt.date]) -> list[dt.date]:
    """Those of ``dates`` whose snapshot was never computed, or was computed before a load that
    changed the ledger on or before its date (a back-dated payment, a corrected invoice: see
    ``ingested_files.earliest_date``). History follows the ledger, not the order of the loads."""
    wanted = sorted(set(dates))
    if not wanted:
        return []
    r, f = aging_runs, ingested_files
    newer_load = (
        sa.select(f.c.file_id)
        .where(
            f.c.status == "loaded",
            f.c.file_id > sa.func.coalesce(r.c.ledger_file_id, 0),
            f.c.earliest_date <= r.c.as_of_date,
        )
        .exists()
    )
    fresh: set[dt.date] = set()
    with engine.connect() as conn:
        for chunk in range(0, len(wanted), 500):
            part = wanted[chunk : chunk + 500]
            fresh.update(
                conn.execute(
                    sa.select(r.c.as_of_date).where(r.c.as_of_date.in_(part), ~newer_load)
                ).scalars()
            )
    return [d for d in wanted if d not in fresh]


def ensure_snapshots(
    engine: Engine, dates: Iterable[dt.date], policy: AgingPolicy
) -> list[dt.date]:
    """Compute the snapshot of every date in ``dates`` that is missing or stale; return them."""
    redo = stale_or_missing(engine, dates)
    for day in redo:
        compute_snapshot(engine, day, policy, summary=False)
    if redo:
        log.info(
            "computed %d aging snapshot(s) that were missing or older than the ledger: %s",
            len(redo),
            ", ".join(d.isoformat() for d in redo),
        )
    return redo


def summarise(engine: Engine, as_of: dt.date, seconds: float = 0.0) -> AgingSummary:
    """Totals of the stored snapshot of ``as_of`` (money per currency, never mixed)."""
    a = aging_snapshots
    where = a.c.as_of_date == as_of
    with engine.connect() as conn:
        invoices, customers = conn.execute(
            sa.select(sa.func.count(), sa.func.count(sa.distinct(a.c.customer_id))).where(where)
        ).one()
        outstanding, overdue = {}, {}
        by_bucket: dict[str, dict[str, str]] = {}
        by_class: dict[str, dict[str, str]] = {}
        total = sa.type_coerce(sa.func.sum(a.c.outstanding), a.c.outstanding.type)
        for column, target in ((a.c.bucket, by_bucket), (a.c.risk_class, by_class)):
            for name, currency, amount in conn.execute(
                sa.select(column, a.c.currency, total).where(where).group_by(column, a.c.currency)
            ):
                target.setdefault(name, {})[currency] = str(amount)
        for currency, amount, late in conn.execute(
            sa.select(
                a.c.currency,
                total,
                sa.type_coerce(
                    sa.func.sum(sa.case((a.c.days_past_due > 0, a.c.outstanding), else_=0)),
                    a.c.outstanding.type,
                ),
            )
            .where(where)
            .group_by(a.c.currency)
        ):
            outstanding[currency] = str(amount)
            overdue[currency] = str(late)
    return AgingSummary(
        as_of_date=as_of.isoformat(),
        invoices=int(invoices),
        customers=int(customers),
        outstanding_by_currency=dict(sorted(outstanding.items())),
        overdue_by_currency=dict(sorted(overdue.items())),
        by_bucket=by_bucket,
        by_risk_class=by_class,
        seconds=round(seconds, 3),
    )
