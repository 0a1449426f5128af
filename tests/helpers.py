"""Test helpers: put a ledger straight into the warehouse, read the aging snapshot back."""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterable, Iterator
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


#: The business date of the per-file ingest tests.
INGEST_AS_OF = dt.date(2024, 3, 1)


def drop(inbox, name: str, text: str, encoding: str = "utf-8"):
    """Write ``text`` as the file ``name`` in ``inbox`` (bytes in ``encoding``)."""
    path = inbox / name
    path.write_bytes(text.encode(encoding))
    return path


def rows(engine, table, order) -> list[dict]:
    """Every row of ``table`` as dicts, ordered by ``order``."""
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(sa.select(table).order_by(order)).mappings()]


def exported(engine, name: str, folder, as_of: dt.date | None = None) -> tuple[list[dict], str]:
    """Export ``name`` to a CSV in ``folder`` through the product's code: its rows and text."""
    import csv

    from receivables.exports import export

    out = folder / f"{name}.csv"
    export(name, engine, as_of, out)
    text = out.read_text(encoding="utf-8")
    with out.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f)), text


def rejects_by_cell(engine, folder) -> dict[tuple[str, str], dict]:
    """The ``rejects`` export's rows by (row number, column), through the product's code."""
    found, _text = exported(engine, "rejects", folder)
    return {(r["row_number"], r["column"]): r for r in found}


def add_invoice(engine, invoice_id: str, customer_id: str, issue, due, amount, currency: str):
    """One more invoice (in another currency, say) of a customer already loaded."""
    with engine.begin() as conn:
        conn.execute(
            invoices.insert().values(
                invoice_id=invoice_id,
                customer_id=customer_id,
                issue_date=issue,
                due_date=due,
                amount=Decimal(amount),
                currency=currency,
                disputed=False,
                source_file_id=1,
            )
        )


def add_scores(engine, customer_id: str, scored) -> None:
    """Credit scores of ``customer_id``: ``scored`` holds (date, score, grade, pd) tuples."""
    from receivables.warehouse.schema import credit_scores

    with engine.begin() as conn:
        conn.execute(
            credit_scores.insert(),
            [
                {
                    "as_of_date": day,
                    "customer_id": customer_id,
                    "model_id": 1,
                    "score": score,
                    "pd": pd_,
                    "grade": grade,
                    "reasons": "x",
                }
                for day, score, grade, pd_ in scored
            ],
        )


@contextlib.contextmanager
def new_pg_database(admin_url: str) -> Iterator[str]:
    """A new, empty PostgreSQL database on the server of ``admin_url``; its URL. Dropped after."""
    import uuid

    name = f"receivables_test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield admin_url.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
