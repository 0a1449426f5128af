"""What collectors record by hand: promises to pay, and disputes they have resolved."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal, InvalidOperation

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from receivables.text import one_line, shown
from receivables.warehouse.schema import customer_feedback, customers, promises_to_pay

#: A promise further out than this is not a promise to pay but a payment plan.
MAX_PROMISE_DAYS = 90


class RecordError(ValueError):
    """The record is refused; the message says why."""


def record_promise(
    engine: Engine,
    customer_id: str,
    *,
    promised_on: dt.date,
    pay_by: dt.date,
    amount: str | None = None,
    currency: str | None = None,
    note: str = "",
) -> str:
    """Record that ``customer_id`` promised on ``promised_on`` to pay by ``pay_by``: its
    reminders pause until then (rule ``promise_to_pay``). Returns a one-line confirmation."""
    if pay_by < promised_on:
        raise RecordError(f"--pay-by {pay_by} is before the promise ({promised_on})")
    if (pay_by - promised_on).days > MAX_PROMISE_DAYS:
        raise RecordError(
            f"--pay-by {pay_by} is more than {MAX_PROMISE_DAYS} days after the promise: record "
            "a payment plan with the collector's team instead"
        )
    value = None
    if amount is not None:
        try:
            value = Decimal(amount.replace(",", ""))
        except InvalidOperation:
            raise RecordError(f"--amount {shown(amount, 40)!r} is not an amount") from None
        if not value.is_finite() or value <= 0 or value != value.quantize(Decimal("0.01")):
            raise RecordError(f"--amount {shown(amount, 40)!r} must be positive, to the cent")
    with engine.begin() as conn:
        customer = conn.execute(
            sa.select(customers.c.currency).where(customers.c.customer_id == customer_id)
        ).first()
        if customer is None:
            raise RecordError(f"no customer {shown(customer_id, 64)!r} in the warehouse")
        if currency is not None and not (len(currency) == 3 and currency.isalpha()):
            raise RecordError(f"--currency {shown(currency, 10)!r} is not an ISO 4217 code")
        conn.execute(
            promises_to_pay.insert().values(
                customer_id=customer_id,
                promised_on=promised_on,
                pay_by=pay_by,
                amount=value,
                currency=(currency or customer.currency).upper() if value is not None else None,
                note=one_line(note)[:2000] or None,
                recorded_at=dt.datetime.now(dt.UTC),
            )
        )
    return f"promise recorded: {customer_id} pays by {pay_by}; reminders pause until then"


def resolve_dispute(engine: Engine, feedback_id: int) -> str:
    """Mark dispute ``feedback_id`` resolved: the customer's reminders resume (unless another
    dispute of it is still open)."""
    f = customer_feedback.c
    with engine.begin() as conn:
        row = conn.execute(
            sa.select(f.customer_id, f.kind, f.status).where(f.feedback_id == feedback_id)
        ).first()
        if row is None or row.kind != "dispute":
            raise RecordError(f"no dispute {feedback_id}")
        if row.status == "resolved":
            return f"dispute {feedback_id} was already resolved"
        conn.execute(
            sa.update(customer_feedback)
            .where(f.feedback_id == feedback_id)
            .values(status="resolved")
        )
    return f"dispute {feedback_id} of {row.customer_id} resolved"
