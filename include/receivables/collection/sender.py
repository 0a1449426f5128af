"""Send one batch of planned reminders: re-check, compose, claim, deliver, record.

The ``reminders`` table is the outbox. For each ``pending`` reminder of the batch, in order:

1. the contact rules are applied again on fresh facts (payments, disputes, promises, legal
   cases, suppressions loaded since the plan): a customer who paid in the meantime is not
   chased, and the reminder becomes ``refused`` with the rule;
2. the email is composed from the statement as it stands now and rendered; content that cannot
   make a correct email (an unknown currency, a template error, no opt-out link) makes the
   reminder ``failed`` with the reason and puts a data fix on the collectors' worklist — never a
   half-filled email, never a crash of the batch;
3. the reminder is **claimed** (``pending`` → ``sending``, one row, committed) right before its
   request, and marked ``sent`` (with the provider's message id, when it gives one) or
   ``failed`` right after.

At most ``sending.concurrency`` requests are in flight, so a crash leaves at most that many
reminders ``sending``. A retry of the batch finds them and never sends them again: through
SendGrid they become ``failed`` ("interrupted"), because SendGrid may have accepted them — an
Event Webhook event for one of them later proves it was and marks it ``sent``; written to the
``.eml`` outbox they are safe to write again, since the outbox never writes a key twice.

A provider that is down (429 or 5xx after the client's own retries) or refuses our credentials
leaves the reminder ``pending`` and fails the task at the end of the batch, so Airflow's retry
(with back-off) sends what is left; nothing is lost and nothing goes twice.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import time
from collections import Counter, deque
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING

import sqlalchemy as sa
from markupsafe import escape
from sqlalchemy.engine import Engine

from receivables.collection import compliance, holds, links
from receivables.collection.compliance import Candidate
from receivables.collection.compose import content, debtors, statements
from receivables.collection.letters import LetterError, render_reminder
from receivables.collection.strategy import Strategy
from receivables.mail import DeliveryError, OutboundEmail, Transport, transport_for
from receivables.warehouse.schema import collection_actions, reminders

if TYPE_CHECKING:
    from receivables.config import Settings

log = logging.getLogger(__name__)

#: SendGrid's limit for ``send_at``.
SCHEDULE_LIMIT = dt.timedelta(hours=72)
DEFERRED = "deferred: its moment of delivery is more than 72 hours ahead; run the date again later"
#: Status codes that mean our configuration is wrong, not the reminder: stop the batch.
CONFIGURATION_ERRORS = (401, 403)


class SendIncomplete(RuntimeError):
    """Some reminders of the batch are still pending (the provider was unavailable)."""


@dataclass
class Outcome:
    """What happened to one reminder in this attempt."""

    reminder_id: int
    status: str
    reason: str | None = None
    rule: str | None = None
    provider_message_id: str | None = None


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def recover_interrupted(engine: Engine, as_of: dt.date, batch: int, transport: Transport) -> int:
    """Reminders a crashed attempt left ``sending``: never sent again through SendGrid (it may
    have accepted them); rewritten through the ``.eml`` outbox, which never writes a key twice.
    Returns how many were found."""
    r = reminders.c
    where = sa.and_(r.planned_on == as_of, r.batch == batch, r.status == "sending")
    with engine.begin() as conn:
        if transport.name == "outbox":
            count = conn.execute(
                sa.update(reminders).where(where).values(status="pending", updated_at=_now())
            ).rowcount
        else:
            count = conn.execute(
                sa.update(reminders)
                .where(where)
                .values(
                    status="failed",
                    reason="interrupted while sending: SendGrid may have accepted it, so it is "
                    "not sent again (an Event Webhook event for it will mark it sent)",
                    updated_at=_now(),
                )
            ).rowcount
    if count:
        log.warning(
            "batch %d of %s: %d reminder(s) were interrupted while sending by an earlier attempt",
            batch,
            as_of,
            count,
        )
    return count


@dataclass
class Prepared:
    """A reminder ready to go, or the outcome that stopped it."""

    reminder_id: int
    email: OutboundEmail | None = None
    outcome: Outcome | None = None
    action: dict | None = None


def prepare(
    engine: Engine,
    settings: Settings,
    strategy: Strategy,
    as_of: dt.date,
    rows: list,
    now: dt.datetime,
    delivers: bool = True,
) -> Iterator[Prepared]:
    """Re-check, compose and render each reminder of ``rows`` (``reminders`` rows), one at a
    time as they are asked for (the facts are read for all of them first, in bulk): rendering
    then overlaps with the requests in flight."""
    ids = [row.reminder_id for row in rows]
    with engine.connect() as conn:
        people = debtors(conn, {row.customer_id for row in rows})
        disputed: dict[int, int] = {}
        lines = statements(conn, ids, as_of, disputed=disputed)
        # only this batch's customers (at most a batch size: within any IN-list limit)
        who = {row.customer_id for row in rows}
        promises = holds.running_promises(conn, as_of, who)
        legal = holds.open_legal_cases(conn, as_of, who)
        disputes = holds.open_disputes(conn, who)
        addresses = [
            a for p in people.values() for a in compliance.usable_addresses([p.email or ""])
        ]
        suppressed = holds.suppressed_addresses(conn, addresses)
        sends = holds.counted_sends(conn, *holds.cap_window(as_of), customers=who)
    for row in rows:
        rid = row.reminder_id
        person = people.get(row.customer_id)
        if person is None:
            yield (_failed(rid, row, as_of, now, "the customer is no longer on file"))
            continue
        statement = lines.get(rid, [])
        send_at = holds.utc(row.send_at)
        timezone = compliance.customer_timezone(person.timezone, settings.timezone)
        candidate = Candidate(
            customer_id=row.customer_id,
            timezone=timezone,
            addresses=tuple((person.email or "").split(";")),
            do_not_contact=bool(person.do_not_contact),
            send_at=send_at,
            outstanding=sum((line.outstanding for line in statement), Decimal(0)),
            disputed_invoices=disputed.get(rid, 0),
            open_disputes=disputes.get(row.customer_id, 0),
            promise_until=promises.get(row.customer_id),
            legal_case=legal.get(row.customer_id),
            suppressed=suppressed,
            other_sends=tuple(m for other, m in sends.get(row.customer_id, []) if other != rid),
        )
        refusal = compliance.check(candidate, strategy.contact)
        if refusal is None and delivers:
            refusal = compliance.too_late(send_at, now, strategy.sending.max_delay_hours)
        if refusal is not None:
            yield (Prepared(rid, outcome=Outcome(rid, "refused", refusal.text(), refusal.rule)))
            continue
        mentions_legal = row.mentions_legal and compliance.may_mention_legal(
            True, (line.due_date for line in statement), as_of, strategy.contact
        )
        opt_out = links.opt_out_url(settings, rid)
        letter = content(
            key=row.idempotency_key,
            debtor=person,
            locale=row.locale,
            stage=row.stage,
            as_of=as_of,
            lines=statement,
            mentions_legal=mentions_legal,
            strategy=strategy,
            opt_out_url=opt_out,
            feedback_url=links.feedback_url(settings, rid),
        )
        try:
            rendered = render_reminder(letter)
        except LetterError as exc:
            yield (_failed(rid, row, as_of, now, f"cannot compose the email: {exc}"))
            continue
        if opt_out not in rendered.text or str(escape(opt_out)) not in rendered.html:
            yield (_failed(rid, row, as_of, now, "the email lacks its opt-out link"))
            continue
        moment = compliance.delivery_moment(send_at, now, timezone, strategy.contact)
        if moment is not None and moment - now > SCHEDULE_LIMIT:
            # SendGrid schedules at most 72 hours ahead: a later run of the date sends it
            yield (Prepared(rid, outcome=Outcome(rid, "pending", DEFERRED)))
            continue
        email = OutboundEmail(
            key=row.idempotency_key,
            to=candidate.deliverable_addresses,
            subject=rendered.subject,
            text=rendered.text,
            html=rendered.html,
            category="reminder",
            categories=("reminder", row.stage),
            custom_args={"reminder_id": str(rid)},
            send_at=int(moment.timestamp()) if moment else None,
            headers={
                "List-Unsubscribe": f"<{opt_out}>",
                "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
            },
            reply_to=letter.contact.email,
        )
        yield Prepared(rid, email=email)


def _failed(rid: int, row, as_of: dt.date, now: dt.datetime, reason: str) -> Prepared:
    """A reminder the data stopped: failed, and a data fix on the worklist."""
    return Prepared(
        rid,
        outcome=Outcome(rid, "failed", reason),
        action={
            "planned_on": as_of,
            "customer_id": row.customer_id,
            "kind": "fix_data",
            "cause": "reminder_failed",
            "detail": f"The {row.stage} email could not be sent ({reason}). Correct the data, "
            "or call the customer.",
            "collector_id": None,
            "reminder_id": rid,
            "created_at": now,
        },
    )


_MARK = (
    sa.update(reminders)
    .where(
        reminders.c.reminder_id == sa.bindparam("rid"),
        reminders.c.status == sa.bindparam("expect"),
    )
    .values(
        status=sa.bindparam("new_status"),
        reason=sa.bindparam("new_reason"),
        rule=sa.bindparam("new_rule"),
        provider=sa.bindparam("new_provider"),
        provider_message_id=sa.bindparam("new_message_id"),
        sent_at=sa.bindparam("new_sent_at"),
        updated_at=sa.bindparam("new_updated_at"),
    )
)


def _mark(outcome: Outcome, expect: str, provider: str | None, now: dt.datetime) -> dict:
    """Parameters of :data:`_MARK` for one outcome (only from status ``expect``)."""
    sent = outcome.status == "sent"
    return {
        "rid": outcome.reminder_id,
        "expect": expect,
        "new_status": outcome.status,
        "new_reason": outcome.reason,
        "new_rule": outcome.rule,
        "new_provider": provider,
        "new_message_id": outcome.provider_message_id if sent else None,
        "new_sent_at": now if sent else None,
        "new_updated_at": now,
    }


def _claim(conn, ids: list[int], provider: str) -> list[int]:
    """``pending`` -> ``sending`` for ``ids``; the ids this attempt now holds."""
    r = reminders.c
    return list(
        conn.execute(
            sa.update(reminders)
            .where(r.reminder_id.in_(ids), r.status == "pending")
            .values(status="sending", attempts=r.attempts + 1, provider=provider, updated_at=_now())
            .returning(r.reminder_id)
        ).scalars()
    )


#: PostgreSQL: a turn's outcomes recorded and its next reminders claimed in ONE statement (one
#: round trip, atomic on its own in autocommit): with four send tasks, their PostgreSQL
#: sessions and the mock on two cores, a turn of BEGIN, UPDATE, UPDATE, COMMIT waits for the
#: server four times while the requests in flight drain. The two updates touch different rows
#: (outcomes of ``sending`` reminders, or of ``pending`` ones the sender stopped; claims of other
#: ``pending`` ones).
_TURN_PG = sa.text(
    """
    WITH recorded AS (
        UPDATE reminders AS r
        SET status = v.status, reason = v.reason, rule = v.rule, provider = v.provider,
            provider_message_id = v.message_id, sent_at = v.sent_at, updated_at = v.updated_at
        FROM unnest(
            CAST(:rids AS integer[]), CAST(:expects AS text[]), CAST(:statuses AS text[]),
            CAST(:reasons AS text[]), CAST(:rules AS text[]), CAST(:providers AS text[]),
            CAST(:message_ids AS text[]), CAST(:sent_ats AS timestamptz[]),
            CAST(:updated_ats AS timestamptz[])
        ) AS v(rid, expect, status, reason, rule, provider, message_id, sent_at, updated_at)
        WHERE r.reminder_id = v.rid AND r.status = v.expect
        RETURNING r.reminder_id
    ), claimed AS (
        UPDATE reminders
        SET status = 'sending', attempts = attempts + 1, provider = :provider, updated_at = :now
        WHERE reminder_id = ANY(CAST(:claim AS integer[])) AND status = 'pending'
        RETURNING reminder_id
    )
    SELECT reminder_id FROM claimed
    """
)


def _turn_pg(db, marks: list[dict], claim: list[int], provider: str) -> list[int]:
    """Record ``marks`` (:data:`_MARK` parameters) and claim ``claim`` in one statement."""
    column = {
        "rids": "rid",
        "expects": "expect",
        "statuses": "new_status",
        "reasons": "new_reason",
        "rules": "new_rule",
        "providers": "new_provider",
        "message_ids": "new_message_id",
        "sent_ats": "new_sent_at",
        "updated_ats": "new_updated_at",
    }
    params = {name: [m[key] for m in marks] for name, key in column.items()}
    params.update(claim=claim, provider=provider, now=_now())
    return list(db.execute(_TURN_PG, params).scalars())


def _add_actions(conn, actions: list[dict]) -> None:
    if not actions:
        return
    a = collection_actions.c
    existing = {
        (row.customer_id, row.kind, row.cause)
        for row in conn.execute(
            sa.select(a.customer_id, a.kind, a.cause).where(
                a.planned_on == actions[0]["planned_on"],
                a.customer_id.in_({x["customer_id"] for x in actions}),
            )
        )
    }
    fresh = [x for x in actions if (x["customer_id"], x["kind"], x["cause"]) not in existing]
    if fresh:
        conn.execute(collection_actions.insert(), fresh)


def send_batch(
    engine: Engine,
    settings: Settings,
    as_of: dt.date,
    batch: int,
    *,
    strategy: Strategy | None = None,
    transport: Transport | None = None,
    now: dt.datetime | None = None,
) -> dict:
    """Send the pending reminders of batch ``batch`` of ``as_of``; return the counts. ``now``
    (the clock, for tests) decides whether a planned moment has passed.

    One loop: fill the free request slots (each reminder re-checked and rendered as it is
    taken), then wait for a request to finish. Each turn writes in one transaction what the
    last turn learned (sent, failed, refused, the worklist) and claims the next reminders, and
    commits that *before* their requests go out: at most ``sending.concurrency`` reminders are
    ever ``sending``.

    Raises :class:`SendIncomplete` (after recording everything else) when the provider was
    unavailable for some reminders: they stay ``pending`` for the task's retry."""
    started = time.monotonic()
    strategy = strategy or settings.strategy
    transport = transport or transport_for(settings)
    recovered = recover_interrupted(engine, as_of, batch, transport)
    r = reminders.c
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(reminders)
            .where(r.planned_on == as_of, r.batch == batch, r.status == "pending")
            .order_by(r.reminder_id)
        ).all()
    counts: Counter = Counter()
    rules: Counter = Counter()
    unavailable: list[str] = []
    stop = False
    limit = strategy.sending.concurrency
    # the .eml outbox contacts nobody: a late (backfilled) reminder may still be written there
    delivers = transport.name != "outbox"
    queue = prepare(engine, settings, strategy, as_of, rows, now or _now(), delivers)
    marks: list[dict] = []  # outcomes learned, not yet written
    actions: list[dict] = []
    in_flight: dict[Future, int] = {}
    exhausted = False
    # one connection for the whole loop: a checkout per turn would also ping the server; on
    # PostgreSQL in autocommit, for turns of one statement (see _TURN_PG)
    one_statement = engine.dialect.name == "postgresql"
    connection = engine.connect()
    if one_statement:
        connection = connection.execution_options(isolation_level="AUTOCOMMIT")
    # reminders re-checked and rendered, not yet claimed: rendered while requests are in flight,
    # so that a free slot waits only for the claim
    buffer: deque[Prepared] = deque()

    def top_up() -> bool:
        """Render until the buffer holds a slot's worth for every request; outcomes of the
        reminders the rules or the data stopped go to the next turn. True once all are taken."""
        while not stop and len(buffer) < limit:
            item = next(queue, None)
            if item is None:
                return True
            if item.email is not None:
                buffer.append(item)
                continue
            outcome = item.outcome
            marks.append(_mark(outcome, "pending", None, _now()))
            counts[outcome.status] += 1
            if outcome.rule:
                rules[outcome.rule] += 1
            if item.action:
                actions.append(item.action)
        return exhausted

    with connection as db, ThreadPoolExecutor(max_workers=limit) as pool:
        while True:
            exhausted = top_up()
            ready: dict[int, OutboundEmail] = {}
            while not stop and buffer and len(in_flight) + len(ready) < limit:
                item = buffer.popleft()
                ready[item.reminder_id] = item.email
            if one_statement and not actions:
                claimed = _turn_pg(db, marks, list(ready), transport.name)
            else:
                # a turn with worklist entries: outcomes and entries in one transaction
                with contextlib.ExitStack() as stack:
                    if one_statement:
                        turn = stack.enter_context(engine.begin())
                    else:
                        turn = db
                        stack.enter_context(db.begin())
                    if marks:
                        turn.execute(_MARK, marks)
                    _add_actions(turn, actions)
                    claimed = _claim(turn, list(ready), transport.name) if ready else []
            marks, actions = [], []
            for rid in claimed:  # an id not claimed is another attempt's: left alone
                in_flight[pool.submit(transport.deliver, ready[rid])] = rid
            exhausted = top_up()  # the next ones, while these requests are in flight
            drained = stop or (exhausted and not buffer)
            if not in_flight:
                if drained:
                    break
                continue
            # wait until half the slots are free (or, at the end, each request): one statement
            # or transaction then records those outcomes and claims their successors together
            done: set[Future] = set()
            while in_flight.keys() - done and (
                len(done) < max(1, limit // 2) or (drained and len(done) < len(in_flight))
            ):
                finished, _ = wait(in_flight.keys() - done, return_when=FIRST_COMPLETED)
                done |= finished
                if drained:
                    break
            now = _now()
            for future in done:
                rid = in_flight.pop(future)
                outcome, retry = _outcome(rid, future)
                if retry:
                    # not accepted: back to pending for the task's retry
                    marks.append(
                        _mark(Outcome(rid, "pending", outcome.reason), "sending", None, now)
                    )
                    unavailable.append(outcome.reason or "")
                    stop = stop or _is_configuration_error(future)
                    continue
                marks.append(_mark(outcome, "sending", transport.name, now))
                counts[outcome.status] += 1
        if marks:
            if one_statement:
                _turn_pg(db, marks, [], transport.name)
            else:
                with db.begin():
                    db.execute(_MARK, marks)
    summary = {
        "as_of_date": as_of.isoformat(),
        "batch": batch,
        "provider": transport.name,
        "reminders": len(rows),
        "sent": counts.get("sent", 0),
        "refused": counts.get("refused", 0),
        "failed": counts.get("failed", 0),
        "pending": _pending(engine, as_of, batch),
        "refused_by_rule": dict(sorted(rules.items())),
        "interrupted_before": recovered,
        "seconds": round(time.monotonic() - started, 2),
    }
    log.info(
        "batch %d of %s via %s: %d sent, %d refused, %d failed, %d pending (%.1f s)",
        batch,
        as_of,
        transport.name,
        summary["sent"],
        summary["refused"],
        summary["failed"],
        summary["pending"],
        summary["seconds"],
    )
    if unavailable or stop:
        raise SendIncomplete(
            f"batch {batch} of {as_of}: {len(unavailable)} reminder(s) not accepted by "
            f"{transport.name} ({unavailable[0] if unavailable else 'stopped'}); they stay "
            "pending for the retry"
        )
    return summary


def _pending(engine: Engine, as_of: dt.date, batch: int) -> int:
    r = reminders.c
    with engine.connect() as conn:
        return conn.execute(
            sa.select(sa.func.count()).where(
                r.planned_on == as_of, r.batch == batch, r.status == "pending"
            )
        ).scalar_one()


def _is_configuration_error(future: Future) -> bool:
    error = future.exception()
    return isinstance(error, DeliveryError) and error.status_code in CONFIGURATION_ERRORS


def _outcome(rid: int, future: Future) -> tuple[Outcome, bool]:
    """(outcome, whether to leave it pending for a retry) of one delivery."""
    error = future.exception()
    if error is None:
        delivery = future.result()
        return Outcome(rid, "sent", provider_message_id=delivery.provider_message_id), False
    if isinstance(error, DeliveryError):
        if error.uncertain:
            return Outcome(
                rid,
                "failed",
                f"outcome unknown ({error.reason}): it may have been accepted, so it is not "
                "sent again",
            ), False
        retry = error.retryable or error.status_code in CONFIGURATION_ERRORS
        return Outcome(rid, "failed", error.reason), retry
    # an unexpected error of our own: the request may or may not have gone out
    return Outcome(
        rid, "failed", f"outcome unknown ({type(error).__name__}): not sent again"
    ), False
