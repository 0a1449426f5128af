"""``receivables preview CUSTOMER_ID``: what that customer would get on a day, without sending.

The preview runs the planner's own decision for the one customer (stage, ladder, moment of
delivery, contact rules) and renders the email from the statement as it stands now. When the
day's reminder was already planned, it shows that one with its status. Nothing is written.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from receivables.collection import compliance, planner
from receivables.collection.compose import content, debtors, statements
from receivables.collection.content import StatementLine
from receivables.collection.letters import LetterError, RenderedEmail, render_reminder
from receivables.warehouse.schema import aging_runs, customers, reminders

if TYPE_CHECKING:
    from receivables.config import Settings


class PreviewError(Exception):
    """The preview cannot be made (unknown customer, no risk results for the day)."""


@dataclass
class Preview:
    """The decision for one customer on one day, and the email when there is one."""

    customer_id: str
    as_of: dt.date
    decision: str
    stage: str | None = None
    status: str | None = None
    send_at: dt.datetime | None = None
    recipients: str | None = None
    email: RenderedEmail | None = None


def latest_day(engine: Engine, on_or_before: dt.date) -> dt.date | None:
    """The latest as-of date on or before ``on_or_before`` with an aging snapshot."""
    with engine.connect() as conn:
        return conn.execute(
            sa.select(sa.func.max(aging_runs.c.as_of_date)).where(
                aging_runs.c.as_of_date <= on_or_before
            )
        ).scalar()


def preview(engine: Engine, settings: Settings, customer_id: str, as_of: dt.date) -> Preview:
    """What ``customer_id`` gets on ``as_of`` (see the module docstring)."""
    strategy = settings.strategy
    with engine.connect() as conn:
        if (
            conn.execute(
                sa.select(customers.c.customer_id).where(customers.c.customer_id == customer_id)
            ).first()
            is None
        ):
            raise PreviewError(f"no customer {customer_id!r} in the warehouse")
        existing = conn.execute(
            sa.select(reminders)
            .where(reminders.c.customer_id == customer_id, reminders.c.planned_on == as_of)
            .order_by(reminders.c.reminder_id.desc())
        ).first()
        if existing is not None:
            lines = statements(conn, [existing.reminder_id], as_of).get(existing.reminder_id, [])
            person = debtors(conn, [customer_id])[customer_id]
            result = Preview(
                customer_id,
                as_of,
                f"the {existing.stage} reminder of {as_of} is already planned: "
                f"{existing.status}" + (f" ({existing.reason})" if existing.reason else ""),
                stage=existing.stage,
                status=existing.status,
                send_at=existing.send_at,
                recipients=existing.recipients,
            )
            result.email = _render(
                settings,
                strategy,
                existing.idempotency_key,
                person,
                existing.locale,
                existing.stage,
                as_of,
                lines,
                existing.mentions_legal,
                existing.reminder_id,
            )
            return result
        facts = planner.read_facts(conn, as_of, strategy, settings.timezone)
    items = dict(facts.open_invoices).get(customer_id)
    if not items:
        return Preview(customer_id, as_of, f"nothing is open on {as_of}: no reminder")
    planned = planner.plan_customer(
        customer_id, items, facts, strategy, as_of, settings.timezone, dt.datetime.now(dt.UTC)
    )
    oldest = items[0]
    if planned is None:
        early = customer_id in facts.early
        sent = facts.episode_stages.get((customer_id, oldest.invoice_id), {})
        stage = strategy.stage_due(oldest.days, early, sent, as_of)
        if stage is None:
            nxt = strategy.ladder(early)[0]
            why = f"no stage is due yet ({nxt[0].name} from day {nxt[1]})"
        else:
            why = f"the {stage.name} reminder (or a later one) was already sent for it"
        return Preview(
            customer_id,
            as_of,
            f"no reminder on {as_of}: the oldest open invoice {oldest.invoice_id} is "
            f"{oldest.days} day(s) past due; {why}",
        )
    row = planned.row
    result = Preview(
        customer_id,
        as_of,
        f"would be {row['status']}" + (f" ({row['reason']})" if row["reason"] else ""),
        stage=row["stage"],
        status=row["status"],
        send_at=row["send_at"],
        recipients=row["recipients"],
    )
    with engine.connect() as conn:
        person = debtors(conn, [customer_id])[customer_id]
        lines = _lines(conn, items, as_of)
    result.email = _render(
        settings,
        strategy,
        row["idempotency_key"],
        person,
        row["locale"],
        row["stage"],
        as_of,
        lines,
        row["mentions_legal"],
        None,
    )
    return result


def _lines(conn, items: list[planner.OpenInvoice], as_of: dt.date) -> list[StatementLine]:
    from receivables.warehouse.schema import invoices

    ids = [i.invoice_id for i in items]
    details = {
        row.invoice_id: row
        for row in conn.execute(
            sa.select(
                invoices.c.invoice_id,
                invoices.c.description,
                invoices.c.issue_date,
                invoices.c.amount,
            ).where(invoices.c.invoice_id.in_(ids))
        )
    }
    return [
        StatementLine(
            invoice_id=i.invoice_id,
            description=details[i.invoice_id].description,
            issue_date=details[i.invoice_id].issue_date,
            due_date=i.due_date,
            currency=i.currency,
            amount=details[i.invoice_id].amount,
            outstanding=i.outstanding,
            days_past_due=max(i.days, 0),
        )
        for i in items
    ]


def _render(settings, strategy, key, person, locale, stage, as_of, lines, mentions_legal, rid):
    from receivables.collection import links

    if rid is None:  # not planned yet: links are made when it is
        base = f"{settings.public_url}/receivables"
        opt_out, feedback = f"{base}/preferences/PREVIEW", f"{base}/feedback/PREVIEW"
    else:
        opt_out, feedback = links.opt_out_url(settings, rid), links.feedback_url(settings, rid)
    letter = content(
        key=key,
        debtor=person,
        locale=locale,
        stage=stage,
        as_of=as_of,
        lines=lines,
        mentions_legal=mentions_legal
        and compliance.may_mention_legal(
            True, (line.due_date for line in lines), as_of, strategy.contact
        ),
        strategy=strategy,
        opt_out_url=opt_out,
        feedback_url=feedback,
    )
    try:
        return render_reminder(letter)
    except LetterError as exc:
        raise PreviewError(f"the email cannot be composed: {exc}") from None
