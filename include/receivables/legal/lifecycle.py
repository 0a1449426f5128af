"""The life of a legal case: which step may follow which, with its date and amount.

::

    proposed ──► approved ──► filed ──► judgment ──► recovered ─┐
        │            │          │          │      ├─► settled ───┼─► closed
        ▼            │          │          │      └─► written_off┘
    rejected         └──────────┴──────────┴─► recovered / settled / closed

A case is *proposed* by the selection rules, *approved* or *rejected* by a person (or approved
automatically below a configured amount), *filed* in court, *judged*, and ends *recovered*
(paid), *settled* (an agreed amount paid), *written_off* (given up) or *closed* (withdrawn, or
ended after one of those). ``rejected`` and ``closed`` are final. Recovered, settled and
written-off steps carry an amount; every step carries the date it happened, never earlier than
the step before it.

Every step is one row in ``legal_case_events`` and updates the case; an illegal step is refused
with a :class:`LifecycleError` that says what the case is and what may follow. A step that is
already recorded (same status, same date) is not recorded twice: an update file dropped again
changes nothing.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from receivables.text import excerpt
from receivables.warehouse.schema import CASE_STATUSES, legal_case_events, legal_cases

#: What may follow each status.
TRANSITIONS: dict[str, tuple[str, ...]] = {
    "proposed": ("approved", "rejected"),
    "approved": ("filed", "recovered", "settled", "closed"),
    "filed": ("judgment", "recovered", "settled", "written_off", "closed"),
    "judgment": ("recovered", "settled", "written_off", "closed"),
    "recovered": ("closed",),
    "settled": ("closed",),
    "written_off": ("closed",),
    "rejected": (),
    "closed": (),
}
#: Steps that need an amount (money recovered, agreed and paid, or given up).
WITH_AMOUNT = ("recovered", "settled", "written_off")
#: While a case is in one of these, collection does not contact the customer (legal hold).
OPEN_STATUSES = ("approved", "filed", "judgment")
#: A case in one of these is over: the customer may be proposed again for new debts.
ENDED_STATUSES = ("rejected", "recovered", "settled", "written_off", "closed")

assert set(TRANSITIONS) == set(CASE_STATUSES)


class LifecycleError(ValueError):
    """A step the case cannot take; the message says why, naming the case, never a person.
    ``field`` names what is wrong: ``case_id``, ``status``, ``date`` or ``amount``."""

    def __init__(self, message: str, field: str = "status"):
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class Step:
    """One step of a case, as asked for."""

    case_id: str
    status: str
    occurred_on: dt.date
    amount: Decimal | None = None
    note: str | None = None
    actor: str | None = None
    source: str = "cli"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def check(case, step: Step, last_on: dt.date | None) -> None:
    """Raise :class:`LifecycleError` unless ``case`` (a ``legal_cases`` row, or None) may take
    ``step``; ``last_on`` is the date of its latest recorded step."""
    if case is None:
        raise LifecycleError(f"no legal case {excerpt(str(step.case_id), 64)}", "case_id")
    if step.status not in TRANSITIONS:
        raise LifecycleError(
            f"unknown status {step.status!r}: expected one of {', '.join(CASE_STATUSES)}"
        )
    allowed = TRANSITIONS[case.status]
    if step.status not in allowed:
        follows = ", ".join(allowed) if allowed else "nothing (it is final)"
        raise LifecycleError(
            f"case {case.case_id} is {case.status}: it cannot become {step.status} "
            f"(what may follow: {follows})"
        )
    earliest = max(d for d in (case.opened_on, last_on) if d is not None)
    if step.occurred_on < earliest:
        raise LifecycleError(
            f"case {case.case_id}: {step.status} on {step.occurred_on} is before its last step "
            f"({earliest})",
            "date",
        )
    if step.status in WITH_AMOUNT:
        if step.amount is None:
            raise LifecycleError(f"case {case.case_id}: {step.status} needs an amount", "amount")
        if step.amount <= 0:
            raise LifecycleError(
                f"case {case.case_id}: the {step.status} amount must be above 0", "amount"
            )
        if step.status == "written_off":
            left = case.amount - (case.recovered_amount or Decimal(0))
            if step.amount > left:
                raise LifecycleError(
                    f"case {case.case_id}: cannot write off {step.amount} {case.currency}, more "
                    f"than the {left} {case.currency} still claimed",
                    "amount",
                )
    elif step.amount is not None:
        raise LifecycleError(f"case {case.case_id}: {step.status} takes no amount", "amount")


def _last_step(conn: Connection, case_id: str):
    e = legal_case_events.c
    return conn.execute(
        sa.select(e.status, e.occurred_on)
        .where(e.case_id == case_id)
        .order_by(e.occurred_on.desc(), e.event_id.desc())
        .limit(1)
    ).first()


def record_event(conn: Connection, step: Step, now: dt.datetime | None = None) -> None:
    """Append ``step`` to the case's history (no checks: :func:`apply` checks)."""
    conn.execute(
        legal_case_events.insert().values(
            case_id=step.case_id,
            status=step.status,
            occurred_on=step.occurred_on,
            amount=step.amount,
            note=step.note,
            actor=step.actor,
            source=step.source,
            recorded_at=now or _now(),
        )
    )


def apply(conn: Connection, step: Step, now: dt.datetime | None = None) -> bool:
    """Take ``step`` on its case inside the caller's transaction (the case row is locked on
    PostgreSQL). Returns False when exactly this step is already the case's latest (nothing
    changes); raises :class:`LifecycleError` when the case cannot take it."""
    c = legal_cases.c
    query = sa.select(legal_cases).where(c.case_id == step.case_id)
    if conn.dialect.name == "postgresql":
        query = query.with_for_update()
    case = conn.execute(query).first()
    last = _last_step(conn, step.case_id)
    if (
        case is not None
        and last is not None
        and case.status == step.status
        and last.status == step.status
        and last.occurred_on == step.occurred_on
    ):
        return False
    check(case, step, last.occurred_on if last else None)
    values: dict = {"status": step.status, "updated_on": step.occurred_on}
    if step.status in ("approved", "rejected"):
        values.update(decided_by=step.actor, decided_at=now or _now(), decision_note=step.note)
    if step.status in ("recovered", "settled"):
        values["recovered_amount"] = (case.recovered_amount or Decimal(0)) + step.amount
    if step.status == "written_off":
        values["written_off_amount"] = (case.written_off_amount or Decimal(0)) + step.amount
    conn.execute(sa.update(legal_cases).where(c.case_id == step.case_id).values(**values))
    record_event(conn, step, now)
    return True


def history(conn: Connection, case_id: str) -> list:
    """Every step of the case, oldest first."""
    e = legal_case_events.c
    return conn.execute(
        sa.select(legal_case_events).where(e.case_id == case_id).order_by(e.occurred_on, e.event_id)
    ).all()
