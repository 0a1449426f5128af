"""Test data for collection: customers, invoices, payments and holds straight into the warehouse,
and the day's aging snapshot computed by the product's own SQL."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import sqlalchemy as sa

from receivables.aging import compute_snapshot
from receivables.config import AgingPolicy
from receivables.warehouse.schema import (
    collectors,
    credit_scores,
    customers,
    invoices,
    legal_cases,
    payments,
    promises_to_pay,
    reminders,
    suppressions,
)
from tests.helpers import source_file

NOW = dt.datetime(2025, 7, 1, tzinfo=dt.UTC)


def customer(customer_id: str, **changes) -> dict:
    """A customers row with sensible defaults."""
    return {
        "customer_id": customer_id,
        "name": f"Customer {customer_id}",
        "email": f"{customer_id.lower()}@example.com",
        "locale": "en",
        "timezone": "Asia/Shanghai",
        "currency": "CNY",
        "do_not_contact": False,
        "collector_id": None,
        **changes,
    }


def invoice(invoice_id: str, customer_id: str, due: dt.date, amount: str = "100.00", **changes):
    """An invoices row issued 30 days before it is due."""
    return {
        "invoice_id": invoice_id,
        "customer_id": customer_id,
        "issue_date": due - dt.timedelta(days=30),
        "due_date": due,
        "amount": Decimal(amount),
        "currency": "CNY",
        "description": f"Goods {invoice_id}",
        "disputed": False,
        **changes,
    }


def load(engine, people=(), bills=(), paid=(), collectors_=()) -> None:
    """Insert the rows (each list may be empty)."""
    with engine.begin() as conn:
        file_id = source_file(conn)
        for table, rows in (
            (collectors, collectors_),
            (customers, people),
            (invoices, bills),
            (payments, paid),
        ):
            if rows:
                conn.execute(table.insert(), [{**r, "source_file_id": file_id} for r in rows])


def age(engine, as_of: dt.date) -> None:
    """The day's aging snapshot, by the product's SQL."""
    compute_snapshot(engine, as_of, AgingPolicy(), summary=False)


def grade(engine, as_of: dt.date, customer_id: str, grade_: str) -> None:
    """A credit score of ``grade_`` for the customer on ``as_of``."""
    with engine.begin() as conn:
        conn.execute(
            credit_scores.insert().values(
                as_of_date=as_of,
                customer_id=customer_id,
                model_id=0,
                score=500.0,
                pd=0.3,
                grade=grade_,
                reasons="test",
            )
        )


def promise(engine, customer_id: str, promised_on: dt.date, pay_by: dt.date) -> None:
    """A promise to pay."""
    with engine.begin() as conn:
        conn.execute(
            promises_to_pay.insert().values(
                customer_id=customer_id, promised_on=promised_on, pay_by=pay_by, recorded_at=NOW
            )
        )


def legal_case(engine, case_id: str, customer_id: str, opened_on: dt.date, status="filed"):
    """A legal case."""
    with engine.begin() as conn:
        conn.execute(
            legal_cases.insert().values(
                case_id=case_id,
                customer_id=customer_id,
                opened_on=opened_on,
                amount=Decimal("100.00"),
                currency="CNY",
                status=status,
                updated_on=opened_on,
            )
        )


def suppress(engine, address: str, reason: str = "bounce") -> None:
    """A suppressed address."""
    with engine.begin() as conn:
        conn.execute(
            suppressions.insert().values(
                address=address, reason=reason, source="webhook", since=NOW
            )
        )


def table(engine, name: sa.Table, order_by=None) -> list[dict]:
    """Every row of a table as dicts."""
    with engine.connect() as conn:
        query = sa.select(name)
        if order_by is not None:
            query = query.order_by(order_by)
        return [dict(r._mapping) for r in conn.execute(query)]


def sent_before(engine, customer_id: str, stage: str, oldest_invoice_id: str, day: dt.date):
    """A reminder of ``stage`` sent on ``day`` for the debt whose oldest invoice is given."""
    with engine.begin() as conn:
        conn.execute(
            reminders.insert().values(
                idempotency_key=f"{customer_id}/{stage}/{day}",
                planned_on=day,
                customer_id=customer_id,
                stage=stage,
                ladder="standard",
                status="sent",
                locale="en",
                recipients=f"{customer_id.lower()}@example.com",
                send_at=dt.datetime.combine(day, dt.time(2), tzinfo=dt.UTC),
                oldest_invoice_id=oldest_invoice_id,
                days_past_due=15,
                invoices=1,
                strategy_version="test",
                created_at=NOW,
                updated_at=NOW,
            )
        )
