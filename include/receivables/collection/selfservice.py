"""What customers do through the links in their reminder: opt out, dispute, tell us something.

The pages (the project's Airflow plugin) find the reminder from the link's token
(:mod:`receivables.collection.links`) and call these functions. An opt-out puts every address
of the customer on the suppression list (no reminder is planned to a suppressed address); a
dispute is recorded ``open`` in ``customer_feedback``, and the planner sends the customer no
reminder while it is open.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from receivables.collection.events import normalize_address, upsert_suppressions
from receivables.text import BIDI_CONTROLS, LINE_SEPARATORS
from receivables.warehouse.schema import customer_feedback, customers, reminders, suppressions

FEEDBACK_KINDS = ("dispute", "feedback")
#: Characters of a message kept; a longer one is cut (the page says so before sending).
MAX_MESSAGE_LENGTH = 4000
#: Control characters other than line feed and tab, bidirectional controls (they could disguise
#: what a collector reads), and lone surrogates (not text; PostgreSQL refuses them).
_UNWANTED = re.compile(f"[\x00-\x08\x0b-\x1f\x7f-\x9f{BIDI_CONTROLS}\ud800-\udfff]")
_ADDRESS_SEPARATORS = re.compile(r"[;,]")


@dataclass(frozen=True)
class PageContext:
    """What the self-service pages show about a reminder."""

    reminder_id: int
    customer_id: str
    #: None when the customer is not (or no longer) in the ledger
    customer_name: str | None
    #: ``en`` or ``zh-CN``
    locale: str
    stage: str
    planned_on: dt.date
    #: every address of the customer is already on the suppression list
    opted_out: bool
    #: the customer has a dispute we have not resolved yet
    disputing: bool


def _locale(value: str | None) -> str:
    return "en" if (value or "").lower().startswith("en") else "zh-CN"


def _utc(now: dt.datetime) -> dt.datetime:
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    return now.astimezone(dt.UTC)


def _addresses(*lists: str | None) -> list[str]:
    found = set()
    for text in lists:
        for part in _ADDRESS_SEPARATORS.split(text or ""):
            address = normalize_address(part)
            if address is not None:
                found.add(address)
    return sorted(found)


def _reminder(conn, reminder_id: int):
    return conn.execute(
        sa.select(
            reminders.c.reminder_id,
            reminders.c.customer_id,
            reminders.c.locale,
            reminders.c.stage,
            reminders.c.planned_on,
            reminders.c.recipients,
            customers.c.name,
            customers.c.email,
        )
        .select_from(
            reminders.outerjoin(customers, customers.c.customer_id == reminders.c.customer_id)
        )
        .where(reminders.c.reminder_id == reminder_id)
    ).one_or_none()


def opt_out(engine: Engine, reminder_id: int, now: dt.datetime) -> int | None:
    """Suppress every address of the reminder's customer: those the reminder went to
    (``reminders.recipients``) and those the ledger has now (``customers.email``), reason
    ``opt_out``, source ``self_service``. Idempotent: an address already suppressed keeps its
    first cause. Returns the number of the customer's addresses, None for an unknown
    reminder."""
    now = _utc(now)
    with engine.begin() as conn:
        row = _reminder(conn, reminder_id)
        if row is None:
            return None
        addresses = _addresses(row.recipients, row.email)
        if addresses:
            upsert_suppressions(
                conn,
                [
                    {
                        "address": address,
                        "reason": "opt_out",
                        "source": "self_service",
                        "since": now,
                        "sg_event_id": None,
                    }
                    for address in addresses
                ],
            )
    return len(addresses)


def clean_message(message: str) -> str:
    """A customer's message as stored: line breaks kept (as ``\\n``), other control and
    bidirectional characters removed, separators made line breaks, stripped, at most
    :data:`MAX_MESSAGE_LENGTH` characters."""
    text = message.replace("\r\n", "\n").replace("\r", "\n").replace("\t", " ")
    text = re.sub(f"[{LINE_SEPARATORS}]", "\n", text)
    text = _UNWANTED.sub("", text).strip()
    return text[:MAX_MESSAGE_LENGTH].rstrip()


def record_feedback(
    engine: Engine, reminder_id: int, kind: str, message: str, now: dt.datetime
) -> int:
    """Record what a customer wrote about a reminder (``kind`` ``dispute`` or ``feedback``) as
    an ``open`` row of ``customer_feedback``; returns its id. The same message sent twice (a
    double click, a reloaded page) is recorded once.

    Raises ValueError for another kind or a message with no text, LookupError for an unknown
    reminder."""
    now = _utc(now)
    if kind not in FEEDBACK_KINDS:
        raise ValueError(f"kind must be one of {FEEDBACK_KINDS}, not {kind!r}")
    text = clean_message(message if isinstance(message, str) else "")
    if not text:
        raise ValueError("the message is empty")
    with engine.begin() as conn:
        customer_id = conn.execute(
            sa.select(reminders.c.customer_id).where(reminders.c.reminder_id == reminder_id)
        ).scalar_one_or_none()
        if customer_id is None:
            raise LookupError(f"no reminder {reminder_id}")
        same = conn.execute(
            sa.select(customer_feedback.c.feedback_id).where(
                customer_feedback.c.reminder_id == reminder_id,
                customer_feedback.c.kind == kind,
                customer_feedback.c.status == "open",
                customer_feedback.c.message == text,
            )
        ).first()
        if same is not None:
            return same.feedback_id
        return conn.execute(
            customer_feedback.insert().values(
                customer_id=customer_id,
                reminder_id=reminder_id,
                kind=kind,
                message=text,
                status="open",
                received_at=now,
            )
        ).inserted_primary_key[0]


def page_context(engine: Engine, reminder_id: int) -> PageContext | None:
    """What the pages need about ``reminder_id``; None when there is no such reminder."""
    with engine.connect() as conn:
        row = _reminder(conn, reminder_id)
        if row is None:
            return None
        addresses = _addresses(row.recipients, row.email)
        suppressed = 0
        if addresses:
            suppressed = conn.execute(
                sa.select(sa.func.count()).where(suppressions.c.address.in_(addresses))
            ).scalar_one()
        disputing = conn.execute(
            sa.select(sa.func.count()).where(
                customer_feedback.c.customer_id == row.customer_id,
                customer_feedback.c.kind == "dispute",
                customer_feedback.c.status == "open",
            )
        ).scalar_one()
    return PageContext(
        reminder_id=row.reminder_id,
        customer_id=row.customer_id,
        customer_name=row.name,
        locale=_locale(row.locale),
        stage=row.stage,
        planned_on=row.planned_on,
        opted_out=bool(addresses) and suppressed == len(addresses),
        disputing=disputing > 0,
    )
