"""Plan the day's reminders: who is due which stage, when to deliver, and what the rules say.

For an as-of date the planner reads the day's aging snapshot (open invoices), the customers,
their grades and early-collection warnings, the reminders already sent, suppressions, promises
to pay, open legal cases and disputes, and the payments of the last year (for habits). For each
customer with open invoices:

1. its **oldest** open invoice (earliest due date) sets the stage, on the standard ladder or on
   the faster one for high-risk customers (the strategy's ``early_collection`` grades, or a
   ``start_collection_early`` warning that day);
2. each stage goes at most once per oldest invoice: a customer who already got this stage (or a
   later one) for it gets nothing new;
3. the moment of delivery follows its payment habit, inside its contact window;
4. the contact rules judge it (:mod:`receivables.collection.compliance`): a refusal is recorded
   with its rule (status ``refused``), otherwise the reminder is ``pending`` and waits for the
   sender, in numbered batches;
5. the collectors' worklist gets the stage's calls and visits, and a data fix where the data
   stopped a reminder (no usable address).

One consolidated reminder per customer covers all its open invoices (the statement is stored in
``reminder_invoices``). The idempotency key is ``customer/stage/date``: planning a date again
adds nothing that is already there, and sends nothing twice.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from receivables.collection import compliance, holds
from receivables.collection.compliance import COUNTED_STATUSES, Candidate
from receivables.collection.strategy import Strategy
from receivables.collection.timing import Habit, learn_habits, planned_moment
from receivables.warehouse.bulk import insert_rows
from receivables.warehouse.schema import (
    aging_runs,
    aging_snapshots,
    collection_actions,
    credit_scores,
    customers,
    invoices,
    payments,
    reminder_invoices,
    reminders,
    risk_warnings,
)

log = logging.getLogger(__name__)

EARLY_ACTION = "start_collection_early"
#: A worklist action is not repeated for the same customer and cause within these days.
ACTION_QUIET_DAYS = 7


class PlanError(Exception):
    """The day cannot be planned (e.g. its aging snapshot does not exist)."""


def reminder_key(customer_id: str, stage: str, day: dt.date) -> str:
    """The idempotency key of a customer's reminder of ``stage`` planned on ``day``."""
    return f"{customer_id}/{stage}/{day.isoformat()}"


@dataclass
class Facts:
    """Everything the rules need to know about the customers of one day, read in bulk."""

    open_invoices: list[tuple[str, list[OpenInvoice]]]
    customers: dict[str, dict]
    early: set[str]
    #: stages sent for each (customer, oldest invoice), with the date each was first planned
    episode_stages: dict[tuple[str, str], dict[str, dt.date]]
    other_sends: dict[str, list[dt.datetime]]
    promises: dict[str, dt.date]
    legal: dict[str, str]
    disputes: Counter
    suppressed: frozenset[str]
    habits: dict[str, Habit]
    recent_actions: set[tuple[str, str, str]]
    existing_keys: set[str]


@dataclass(frozen=True)
class OpenInvoice:
    """One open invoice of the day, as the planner sees it."""

    invoice_id: str
    currency: str
    outstanding: Decimal
    due_date: dt.date
    days: int
    disputed: bool


def open_invoices(conn: Connection, as_of: dt.date) -> list[tuple[str, list[OpenInvoice]]]:
    """The open invoices of ``as_of`` (from its aging snapshot) per customer, each customer's
    oldest first: one sorted query, grouped as it streams."""
    a = aging_snapshots.c
    query = (
        sa.select(a.customer_id, a.invoice_id, a.currency, a.outstanding, a.due_date, a.disputed)
        .where(a.as_of_date == as_of, a.outstanding > 0)
        .order_by(a.customer_id, a.due_date, a.invoice_id)
    )
    groups: list[tuple[str, list[OpenInvoice]]] = []
    current = None
    for customer_id, invoice_id, currency, outstanding, due, disputed in conn.execute(query):
        if customer_id != current:
            current = customer_id
            groups.append((customer_id, []))
        groups[-1][1].append(
            OpenInvoice(invoice_id, currency, outstanding, due, (as_of - due).days, bool(disputed))
        )
    return groups


def read_facts(conn: Connection, as_of: dt.date, strategy: Strategy, business_tz: str) -> Facts:
    """Read the day's facts in a handful of set-based queries."""
    frame = open_invoices(conn, as_of)
    ids = {customer_id for customer_id, _ in frame}
    c = customers.c
    people = {
        r.customer_id: r._asdict()
        for r in conn.execute(
            sa.select(
                c.customer_id,
                c.name,
                c.email,
                c.locale,
                c.timezone,
                c.do_not_contact,
                c.collector_id,
            ).where(
                c.customer_id.in_(
                    sa.select(aging_snapshots.c.customer_id).where(
                        aging_snapshots.c.as_of_date == as_of
                    )
                )
            )
        )
        if r.customer_id in ids
    }
    grades = strategy.early_collection.grades
    early = {
        r.customer_id
        for r in conn.execute(
            sa.select(credit_scores.c.customer_id).where(
                credit_scores.c.as_of_date == as_of, credit_scores.c.grade.in_(grades)
            )
        )
    } | {
        r.customer_id
        for r in conn.execute(
            sa.select(risk_warnings.c.customer_id).where(
                risk_warnings.c.as_of_date == as_of, risk_warnings.c.action == EARLY_ACTION
            )
        )
    }
    r = reminders.c
    episode: dict[tuple[str, str], dict[str, dt.date]] = defaultdict(dict)
    for row in conn.execute(
        sa.select(r.customer_id, r.oldest_invoice_id, r.stage, r.planned_on)
        .join_from(
            reminders,
            aging_snapshots,
            sa.and_(
                aging_snapshots.c.as_of_date == as_of,
                aging_snapshots.c.invoice_id == r.oldest_invoice_id,
            ),
        )
        .where(r.status.in_(COUNTED_STATUSES), r.planned_on < as_of)
    ):
        stages = episode[(row.customer_id, row.oldest_invoice_id)]
        day = row.planned_on
        stages[row.stage] = min(stages.get(row.stage, day), day)
    others = {
        customer: [moment for _, moment in sends]
        for customer, sends in holds.counted_sends(conn, *holds.cap_window(as_of)).items()
    }
    promises = holds.running_promises(conn, as_of)
    legal = holds.open_legal_cases(conn, as_of)
    disputes = holds.open_disputes(conn)
    suppressed = holds.suppressed_addresses(conn)
    lookback = as_of - dt.timedelta(days=strategy.timing.habit_lookback_days)
    paid = conn.execute(
        sa.select(invoices.c.customer_id, payments.c.paid_date)
        .join_from(payments, invoices, invoices.c.invoice_id == payments.c.invoice_id)
        .where(
            payments.c.paid_date > lookback,
            payments.c.paid_date <= as_of,
            invoices.c.customer_id.in_(
                sa.select(aging_snapshots.c.customer_id).where(
                    aging_snapshots.c.as_of_date == as_of
                )
            ),
        )
    ).all()
    habits = learn_habits(paid, strategy.timing)
    a = collection_actions.c
    recent_actions = {
        (row.customer_id, row.kind, row.cause)
        for row in conn.execute(
            sa.select(a.customer_id, a.kind, a.cause).where(
                a.planned_on > as_of - dt.timedelta(days=ACTION_QUIET_DAYS),
                a.planned_on <= as_of,
            )
        )
    }
    existing = {
        row.idempotency_key
        for row in conn.execute(sa.select(r.idempotency_key).where(r.planned_on == as_of))
    }
    return Facts(
        open_invoices=frame,
        customers=people,
        early=early,
        episode_stages=episode,
        other_sends=others,
        promises=promises,
        legal=legal,
        disputes=disputes,
        suppressed=suppressed,
        habits=habits,
        recent_actions=recent_actions,
        existing_keys=existing,
    )


@dataclass
class PlannedReminder:
    """One reminder the planner decided on (to be written)."""

    row: dict
    lines: list[dict]
    actions: list[dict]


def plan_customer(
    customer_id: str,
    open_items: list[OpenInvoice],
    facts: Facts,
    strategy: Strategy,
    as_of: dt.date,
    business_tz: str,
    now: dt.datetime,
) -> PlannedReminder | None:
    """The reminder of one customer on ``as_of`` (None: no stage is due, or it went already).
    ``open_items`` are its open invoices, oldest first."""
    person = facts.customers.get(customer_id)
    if person is None or not open_items:
        return None
    oldest = open_items[0]
    early = customer_id in facts.early
    names = _names(strategy)
    sent = facts.episode_stages.get((customer_id, oldest.invoice_id), {})
    stage = strategy.stage_due(oldest.days, early, sent, as_of)
    if stage is None:
        return None
    if any(strategy.rank(s) >= strategy.rank(stage.name) for s in sent if s in names):
        return None
    key = reminder_key(customer_id, stage.name, as_of)
    if key in facts.existing_keys:
        return None
    timezone = compliance.customer_timezone(person["timezone"], business_tz)
    send_at = planned_moment(
        as_of, timezone, facts.habits.get(customer_id), strategy.timing, strategy.contact
    )
    addresses = tuple(a for a in (person["email"] or "").split(";") if a.strip())
    candidate = Candidate(
        customer_id=customer_id,
        timezone=timezone,
        addresses=addresses,
        do_not_contact=bool(person["do_not_contact"]),
        send_at=send_at,
        outstanding=sum((i.outstanding for i in open_items), Decimal("0.00")),
        disputed_invoices=sum(1 for i in open_items if i.disputed),
        open_disputes=facts.disputes.get(customer_id, 0),
        promise_until=facts.promises.get(customer_id),
        legal_case=facts.legal.get(customer_id),
        suppressed=facts.suppressed,
        other_sends=tuple(facts.other_sends.get(customer_id, ())),
    )
    refusal = compliance.check(candidate, strategy.contact)
    mentions_legal = compliance.may_mention_legal(
        stage.mentions_legal, (i.due_date for i in open_items), as_of, strategy.contact
    )
    locale = person["locale"] if person["locale"] in ("en", "zh-CN") else "zh-CN"
    row = {
        "idempotency_key": key,
        "planned_on": as_of,
        "customer_id": customer_id,
        "stage": stage.name,
        "ladder": "early" if early else "standard",
        "channel": "email",
        "status": "refused" if refusal else "pending",
        "rule": refusal.rule if refusal else None,
        "reason": refusal.text() if refusal else None,
        "locale": locale,
        "recipients": ";".join(candidate.deliverable_addresses) or None,
        "send_at": send_at,
        "oldest_invoice_id": oldest.invoice_id,
        "days_past_due": oldest.days,
        "invoices": len(open_items),
        "mentions_legal": mentions_legal,
        "strategy_version": strategy.version,
        "attempts": 0,
        "created_at": now,
        "updated_at": now,
    }
    lines = [
        {
            "invoice_id": i.invoice_id,
            "currency": i.currency,
            "outstanding": i.outstanding,
            "due_date": i.due_date,
            "days_past_due": max(i.days, 0),
        }
        for i in open_items
    ]
    actions = []
    collector = person["collector_id"]
    if refusal is None:
        for kind in stage.actions:
            actions.append(
                _action(
                    as_of, customer_id, kind, stage.name, collector, now, _action_detail(kind, row)
                )
            )
    elif refusal.rule == "no_usable_address":
        actions.append(
            _action(
                as_of,
                customer_id,
                "fix_data",
                refusal.rule,
                collector,
                now,
                f"{stage.name} could not be emailed: no usable email address on file. Call the "
                "customer, ask for its address and correct the customer master data.",
            )
        )
    actions = [
        a for a in actions if (customer_id, a["kind"], a["cause"]) not in facts.recent_actions
    ]
    return PlannedReminder(row=row, lines=lines, actions=actions)


def _names(strategy: Strategy) -> set[str]:
    return {s.name for s in strategy.stages}


def _action_detail(kind: str, row: dict) -> str:
    what = {"call": "Call the customer", "visit": "Visit the customer"}[kind]
    return (
        f"{what} about {row['invoices']} open invoice(s); oldest {row['oldest_invoice_id']} "
        f"is {row['days_past_due']} days past due ({row['stage']} emailed)."
    )


def _action(
    as_of: dt.date,
    customer_id: str,
    kind: str,
    cause: str,
    collector: str | None,
    now: dt.datetime,
    detail: str,
) -> dict:
    return {
        "planned_on": as_of,
        "customer_id": customer_id,
        "kind": kind,
        "cause": cause,
        "detail": detail,
        "collector_id": collector,
        "created_at": now,
    }


def plan_reminders(
    engine: Engine,
    as_of: dt.date,
    strategy: Strategy,
    business_tz: str,
    now: dt.datetime | None = None,
) -> dict:
    """Plan (and record) the reminders of ``as_of``; return the counts by status and rule."""
    started = time.monotonic()
    now = now or dt.datetime.now(dt.UTC)
    with engine.connect() as conn:
        if (
            conn.execute(
                sa.select(aging_runs.c.as_of_date).where(aging_runs.c.as_of_date == as_of)
            ).first()
            is None
        ):
            raise PlanError(
                f"no aging snapshot for {as_of}: the risk DAG must run for that date first"
            )
        facts = read_facts(conn, as_of, strategy, business_tz)
    read_seconds = time.monotonic() - started
    planned: list[PlannedReminder] = []
    for customer_id, items in facts.open_invoices:
        result = plan_customer(customer_id, items, facts, strategy, as_of, business_tz, now)
        if result is not None:
            planned.append(result)
    pending = [p for p in planned if p.row["status"] == "pending"]
    size = strategy.sending.batch_size
    for index, item in enumerate(pending):
        item.row["batch"] = index // size
    written = _write(engine, planned)
    summary = summarize_plan(planned, as_of)
    summary.update(
        {
            "written": written,
            "batches": (len(pending) + size - 1) // size,
            "read_seconds": round(read_seconds, 2),
            "seconds": round(time.monotonic() - started, 2),
        }
    )
    log.info(
        "reminders %s: %d planned (%d pending, %d refused) in %d batch(es), %.1f s",
        as_of,
        summary["planned"],
        summary["pending"],
        summary["refused"],
        summary["batches"],
        summary["seconds"],
    )
    return summary


def summarize_plan(planned: list[PlannedReminder], as_of: dt.date) -> dict:
    """Counts of a plan: by status, by refusal rule, by stage, and worklist actions."""
    statuses = Counter(p.row["status"] for p in planned)
    return {
        "as_of_date": as_of.isoformat(),
        "planned": len(planned),
        "pending": statuses.get("pending", 0),
        "refused": statuses.get("refused", 0),
        "refused_by_rule": dict(
            sorted(Counter(p.row["rule"] for p in planned if p.row["rule"]).items())
        ),
        "by_stage": dict(sorted(Counter(p.row["stage"] for p in planned).items())),
        "actions": sum(len(p.actions) for p in planned),
    }


def _write(engine: Engine, planned: list[PlannedReminder]) -> int:
    if not planned:
        return 0
    rows = [p.row for p in planned]
    for row in rows:
        row.setdefault("batch", None)
    with engine.begin() as conn:
        # a plain executemany (RETURNING would go row by row), then the ids by key
        insert_rows(conn, reminders, rows)
        by_key = dict(
            conn.execute(
                sa.select(reminders.c.idempotency_key, reminders.c.reminder_id).where(
                    reminders.c.planned_on == rows[0]["planned_on"]
                )
            ).all()
        )
        ids = [by_key[row["idempotency_key"]] for row in rows]
        lines = [
            {"reminder_id": rid, **line}
            for rid, item in zip(ids, planned, strict=True)
            for line in item.lines
        ]
        insert_rows(conn, reminder_invoices, lines)
        actions = []
        for rid, item in zip(ids, planned, strict=True):
            for action in item.actions:
                actions.append({**action, "reminder_id": rid})
        insert_rows(conn, collection_actions, actions)
    return len(ids)
