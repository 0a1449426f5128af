"""What holds collection back, read from the warehouse: promises, legal cases, disputes,
suppressed addresses, and the reminders that count against the caps. The planner reads them for
the whole day; the sender reads them again right before sending."""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from collections.abc import Collection

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from receivables.collection.compliance import COUNTED_STATUSES
from receivables.legal.lifecycle import OPEN_STATUSES as OPEN_CASE_STATUSES
from receivables.warehouse.schema import (
    customer_feedback,
    legal_cases,
    promises_to_pay,
    reminders,
    suppressions,
)


def as_date(value) -> dt.date:
    """A date read back from either engine (SQLite may hand back ISO text)."""
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value))


def utc(value: dt.datetime) -> dt.datetime:
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def _of(column, customers: Collection[str] | None):
    """A condition limiting ``column`` to ``customers`` (None: everyone)."""
    return sa.true() if customers is None else column.in_(sorted(customers))


def running_promises(
    conn: Connection, as_of: dt.date, customers: Collection[str] | None = None
) -> dict[str, dt.date]:
    """Customers with a promise to pay running on ``as_of``: the latest date promised."""
    p = promises_to_pay.c
    return {
        row.customer_id: as_date(row.pay_by)
        for row in conn.execute(
            sa.select(p.customer_id, sa.func.max(p.pay_by).label("pay_by"))
            .where(p.promised_on <= as_of, p.pay_by >= as_of, _of(p.customer_id, customers))
            .group_by(p.customer_id)
        )
    }


def open_legal_cases(
    conn: Connection, as_of: dt.date, customers: Collection[str] | None = None
) -> dict[str, str]:
    """Customers with a legal case open on ``as_of``: one of its case ids."""
    c = legal_cases.c
    return {
        row.customer_id: row.case_id
        for row in conn.execute(
            sa.select(c.customer_id, c.case_id).where(
                c.status.in_(OPEN_CASE_STATUSES),
                c.opened_on <= as_of,
                _of(c.customer_id, customers),
            )
        )
    }


def open_disputes(conn: Connection, customers: Collection[str] | None = None) -> Counter:
    """Customers with disputes raised through their reminder's link and not yet resolved."""
    f = customer_feedback.c
    return Counter(
        row.customer_id
        for row in conn.execute(
            sa.select(f.customer_id).where(
                f.kind == "dispute", f.status == "open", _of(f.customer_id, customers)
            )
        )
    )


def suppressed_addresses(conn: Connection, among: Collection[str] | None = None) -> frozenset[str]:
    """The addresses no reminder may go to (lower case): all, or those ``among`` the given."""
    query = sa.select(suppressions.c.address)
    if among is not None:
        query = query.where(suppressions.c.address.in_(sorted({a.lower() for a in among})))
    return frozenset(row.address.strip().lower() for row in conn.execute(query))


def counted_sends(
    conn: Connection,
    start: dt.datetime,
    end: dt.datetime,
    customers: Collection[str] | None = None,
) -> dict[str, list[tuple[int, dt.datetime]]]:
    """(reminder id, moment) of the reminders that count against the caps, by customer, whose
    moment of delivery falls in [start, end)."""
    r = reminders.c
    found: dict[str, list[tuple[int, dt.datetime]]] = defaultdict(list)
    for row in conn.execute(
        sa.select(r.customer_id, r.reminder_id, r.send_at).where(
            r.status.in_(COUNTED_STATUSES),
            r.send_at >= start,
            r.send_at < end,
            _of(r.customer_id, customers),
        )
    ):
        found[row.customer_id].append((row.reminder_id, utc(row.send_at)))
    return found


def cap_window(as_of: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """The moments whose reminders can count against the caps of reminders planned on
    ``as_of`` (seven days either side, and a day for time zones)."""
    return (
        dt.datetime.combine(as_of - dt.timedelta(days=8), dt.time(0), tzinfo=dt.UTC),
        dt.datetime.combine(as_of + dt.timedelta(days=8), dt.time(0), tzinfo=dt.UTC),
    )
