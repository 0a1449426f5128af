"""Test helpers: put a ledger straight into the warehouse, read the aging snapshot back."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from decimal import Decimal

import sqlalchemy as sa

from receivables.aging import InvoiceFacts
from receivables.warehouse.schema import (
    aging_runs,
    aging_snapshots,
    customers,
    ingested_files,
    invoices,
    payments,
    quarantined_rows,
)


def clear(engine) -> None:
    """Empty every ledger table (between hypothesis examples)."""
    with engine.begin() as conn:
        for table in (
            aging_snapshots,
            aging_runs,
            payments,
            invoices,
            customers,
            quarantined_rows,
            ingested_files,
        ):
            conn.execute(table.delete())


def source_file(conn, status: str = "rejected") -> int:
    """An ``ingested_files`` row for fixture data to point at."""
    now = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    return conn.execute(
        ingested_files.insert().values(
            file_name="fixture.csv",
            sha256="f" * 64,
            size_bytes=0,
            status=status,
            as_of_date=dt.date(2024, 1, 1),
            started_at=now,
            finished_at=now,
        )
    ).inserted_primary_key[0]


def load_ledger(engine, facts: Iterable[InvoiceFacts], currency: str = "CNY") -> None:
    """Insert customers, invoices and payments for ``facts`` (one source file record)."""
    facts = list(facts)
    with engine.begin() as conn:
        file_id = source_file(conn)
        ids = sorted({f.customer_id for f in facts})
        if ids:
            conn.execute(
                customers.insert(),
                [
                    {
                        "customer_id": c,
                        "name": c,
                        "locale": "zh-CN",
                        "timezone": "Asia/Shanghai",
                        "currency": currency,
                        "do_not_contact": False,
                        "source_file_id": file_id,
                    }
                    for c in ids
                ],
            )
        if facts:
            conn.execute(
                invoices.insert(),
                [
                    {
                        "invoice_id": f.invoice_id,
                        "customer_id": f.customer_id,
                        "issue_date": f.issue_date,
                        "due_date": f.due_date,
                        "amount": f.amount,
                        "currency": currency,
                        "disputed": False,
                        "source_file_id": file_id,
                    }
                    for f in facts
                ],
            )
        rows = [
            {
                "payment_id": f"{f.invoice_id}-P{i}",
                "invoice_id": f.invoice_id,
                "paid_date": day,
                "amount": amount,
                "source_file_id": file_id,
            }
            for f in facts
            for i, (day, amount) in enumerate(f.payments)
        ]
        if rows:
            conn.execute(payments.insert(), rows)


def snapshot(engine, as_of: dt.date) -> dict[str, dict]:
    """The stored aging snapshot of ``as_of`` by invoice id."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(aging_snapshots).where(aging_snapshots.c.as_of_date == as_of)
        ).mappings()
        return {r["invoice_id"]: dict(r) for r in rows}


def money(text: str) -> Decimal:
    """Shorthand for an exact amount."""
    return Decimal(text)
