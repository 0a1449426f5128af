"""Compose a reminder from the warehouse: its statement as of now, whom to contact, how to pay.

The statement is read fresh when the reminder is composed (right before sending, or for a
preview): each invoice's outstanding is its amount less the payments dated on or before the
as-of date that the ledger holds *now*, so a payment loaded after the plan is already counted
and a paid invoice drops out.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from receivables.collection.content import (
    Contact,
    PaymentDetails,
    ReminderContent,
    StatementLine,
)
from receivables.collection.strategy import Strategy
from receivables.warehouse.schema import (
    collectors,
    customers,
    invoices,
    payments,
    reminder_invoices,
)
from receivables.warehouse.types import Money

ZERO = Decimal("0.00")


@dataclass(frozen=True)
class Debtor:
    """The customer a reminder goes to, as the ledger knows it now."""

    customer_id: str
    name: str
    email: str | None
    locale: str
    timezone: str
    do_not_contact: bool
    collector_name: str | None
    collector_email: str | None


def debtors(conn: Connection, customer_ids: Iterable[str]) -> dict[str, Debtor]:
    """The customers (with their collector) by id."""
    ids = sorted(set(customer_ids))
    found: dict[str, Debtor] = {}
    c, k = customers.c, collectors.c
    for start in range(0, len(ids), 5000):
        chunk = ids[start : start + 5000]
        for row in conn.execute(
            sa.select(
                c.customer_id,
                c.name,
                c.email,
                c.locale,
                c.timezone,
                c.do_not_contact,
                k.name.label("collector_name"),
                k.email.label("collector_email"),
            )
            .join_from(customers, collectors, k.collector_id == c.collector_id, isouter=True)
            .where(c.customer_id.in_(chunk))
        ):
            found[row.customer_id] = Debtor(**row._asdict())
    return found


def statements(
    conn: Connection,
    reminder_ids: Iterable[int],
    as_of: dt.date,
    disputed: dict[int, int] | None = None,
) -> dict[int, list[StatementLine]]:
    """Each reminder's statement lines with today's outstanding (paid lines left out); with
    ``disputed``, also how many of each reminder's open invoices are disputed now."""
    ids = sorted(set(reminder_ids))
    if not ids:
        return {}
    ri, i, p = reminder_invoices.c, invoices.c, payments.c
    # correlated: one index lookup per invoice (ix_payments_invoice_id_paid_date)
    paid = (
        sa.select(sa.type_coerce(sa.func.sum(p.amount), Money()))
        .where(p.invoice_id == i.invoice_id, p.paid_date <= as_of)
        .scalar_subquery()
        .label("paid")
    )
    result: dict[int, list[StatementLine]] = defaultdict(list)
    for start in range(0, len(ids), 5000):
        chunk = ids[start : start + 5000]
        rows = conn.execute(
            sa.select(
                ri.reminder_id,
                i.invoice_id,
                i.description,
                i.issue_date,
                i.due_date,
                i.currency,
                i.amount,
                i.disputed,
                paid,
            )
            .join_from(reminder_invoices, invoices, i.invoice_id == ri.invoice_id)
            .where(ri.reminder_id.in_(chunk))
            .order_by(ri.reminder_id, i.due_date, i.invoice_id)
        )
        for row in rows:
            outstanding = row.amount - (row.paid or ZERO)
            if outstanding <= 0:
                continue
            if disputed is not None and row.disputed:
                disputed[row.reminder_id] = disputed.get(row.reminder_id, 0) + 1
            result[row.reminder_id].append(
                StatementLine(
                    invoice_id=row.invoice_id,
                    description=row.description,
                    issue_date=row.issue_date,
                    due_date=row.due_date,
                    currency=row.currency,
                    amount=row.amount,
                    outstanding=outstanding,
                    days_past_due=max((as_of - row.due_date).days, 0),
                )
            )
    return result


def content(
    *,
    key: str,
    debtor: Debtor,
    locale: str,
    stage: str,
    as_of: dt.date,
    lines: list[StatementLine],
    mentions_legal: bool,
    strategy: Strategy,
    opt_out_url: str,
    feedback_url: str,
) -> ReminderContent:
    """The :class:`ReminderContent` of one reminder: its collector (else the receivables team)
    to contact, and the strategy's payment details in the customer's language."""
    team = strategy.contact_details
    if debtor.collector_name and debtor.collector_email:
        contact = Contact(debtor.collector_name, debtor.collector_email, team.team_phone)
    else:
        contact = Contact(team.team_name[locale], team.team_email, team.team_phone)
    pay = strategy.payment
    return ReminderContent(
        reminder_key=key,
        customer_id=debtor.customer_id,
        customer_name=debtor.name,
        locale=locale,
        stage=stage,
        as_of=as_of,
        lines=tuple(lines),
        mentions_legal=mentions_legal,
        contact=contact,
        payment=PaymentDetails(
            beneficiary=pay.beneficiary[locale],
            bank=pay.bank[locale],
            account=pay.account,
            reference=debtor.customer_id,
        ),
        opt_out_url=opt_out_url,
        feedback_url=feedback_url,
    )
