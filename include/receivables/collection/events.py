"""What SendGrid tells us back: its Event Webhook, verified and recorded.

SendGrid POSTs a JSON array of events, signed with ECDSA (P-256, SHA-256) over the timestamp
header followed by the raw body. :func:`verify` checks the signature and the timestamp's age
(the signing library does not, and an old signed request could be replayed);
:func:`record_events` stores each event once, by its ``sg_event_id`` (SendGrid delivers at least
once, and retries a batch it is not sure we took), and feeds from the new events:

* the suppression list: a hard bounce, a drop, a spam report or an unsubscribe means no
  reminder may go to that address again (a ``blocked`` bounce is temporary and only recorded);
* each reminder's engagement: its latest event by event time (SendGrid does not deliver in
  order) and the first time it was delivered, opened and clicked;
* reconciliation: a reminder left ``sending`` by a crash between the request and its mark, or
  ``failed`` without a message id after an attempt (the answer was lost), is proven sent by any
  event about it.

No Airflow and no web framework here: the plugin's endpoint calls these functions.
"""

from __future__ import annotations

import binascii
import datetime as dt
import json
import logging
import re
from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from receivables.warehouse.schema import email_events, reminders, suppressions

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP_HEADER = "X-Twilio-Email-Event-Webhook-Timestamp"
#: Seconds a signed request stays acceptable (SendGrid sends at once; retries are signed anew).
MAX_AGE_SECONDS = 600
#: Seconds a timestamp may lie ahead of our clock (clocks drift a little).
CLOCK_SKEW_SECONDS = 60

#: Events after which no reminder may be sent to the address again.
SUPPRESSING_EVENTS = ("bounce", "dropped", "spamreport", "unsubscribe", "group_unsubscribe")
#: Where an event stands in a message's life: breaks ties between events of the same second,
#: so "delivered" and "open" in one second leave the reminder "open", not "delivered".
EVENT_ORDER = {
    "processed": 1,
    "deferred": 2,
    "delivered": 3,
    "bounce": 3,
    "dropped": 3,
    "open": 4,
    "click": 5,
    "spamreport": 6,
    "unsubscribe": 6,
    "group_unsubscribe": 6,
}
#: Engagement columns of ``reminders``: the first time of each event.
FIRST_TIMES = {"delivered": "delivered_at", "open": "opened_at", "click": "clicked_at"}

_TIMESTAMP = re.compile(r"[0-9]{1,12}")
_INTEGER = re.compile(r"[0-9]{1,10}")
_MAX_INTEGER = 2**31 - 1  # the warehouse's integer columns are 32-bit
_CHUNK = 500  # ids per IN list: far below both engines' limits on bound parameters


class WebhookKeyError(ValueError):
    """The configured verification key is not a base64 DER P-256 public key (our setup is
    wrong, not the request)."""


def _public_key(public_key_b64: str):
    from cryptography.hazmat.primitives.asymmetric import ec
    from sendgrid import EventWebhook

    try:
        key = EventWebhook(public_key_b64.strip()).public_key
    except Exception as exc:  # the library raises whatever the parser raised
        raise WebhookKeyError(
            f"the webhook verification key is not a base64 DER public key ({type(exc).__name__})"
        ) from None
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp256r1":
        raise WebhookKeyError("the webhook verification key is not an ECDSA P-256 key")
    return key


def verify(
    public_key_b64: str,
    raw_body: bytes,
    signature: str | None,
    timestamp: str | None,
    now: float,
    max_age_s: int = MAX_AGE_SECONDS,
) -> str | None:
    """None when ``raw_body`` was signed by SendGrid's key at ``timestamp`` (unix seconds, no
    older than ``max_age_s`` and not in the future); else why not, in a few words for a log line.

    Raises :class:`WebhookKeyError` when ``public_key_b64`` itself is unusable.
    """
    from sendgrid import EventWebhook

    key = _public_key(public_key_b64)
    if not signature or not signature.strip():
        return "missing signature"
    if not timestamp or not timestamp.strip():
        return "missing timestamp"
    timestamp = timestamp.strip()
    if not _TIMESTAMP.fullmatch(timestamp):
        return "malformed timestamp"
    age = now - int(timestamp)
    if age > max_age_s:
        minutes, seconds = divmod(max_age_s, 60)
        limit = f"{minutes} minutes" if not seconds else f"{max_age_s} seconds"
        return f"timestamp older than {limit}"
    if age < -CLOCK_SKEW_SECONDS:
        return "timestamp in the future"
    try:
        body = raw_body.decode("utf-8")
    except UnicodeDecodeError:
        return "not UTF-8"
    try:
        valid = EventWebhook().verify_signature(body, signature.strip(), timestamp, key)
    except (TypeError, ValueError, binascii.Error, UnicodeError):
        # a signature that is not base64, or not DER: as good as a wrong one
        valid = False
    except Exception:  # whatever else the library raises on hostile input: refuse, not crash
        log.warning("event webhook: signature check raised; request refused", exc_info=True)
        valid = False
    return None if valid else "bad signature"


# --- recording -----------------------------------------------------------------------------


def _text(value: Any, limit: int) -> str | None:
    """A string that fits its column, else None (the payload keeps whatever came)."""
    return value if isinstance(value, str) and 0 < len(value) <= limit else None


def _occurred_at(value: Any) -> dt.datetime | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, str) and _TIMESTAMP.fullmatch(value.strip()):
        value = int(value.strip())
    if not isinstance(value, int | float) or value != value or value <= 0:
        return None
    try:
        return dt.datetime.fromtimestamp(value, dt.UTC)
    except (OverflowError, OSError, ValueError):
        return None


def _reminder_id(value: Any) -> int | None:
    """The ``reminder_id`` custom arg: custom args come back as strings."""
    if isinstance(value, str) and _INTEGER.fullmatch(value):
        number = int(value)
        return number if 0 < number <= _MAX_INTEGER else None
    return None


def normalize_address(address: Any) -> str | None:
    """An e-mail address as the suppression list keys it (stripped, lower case); None when it
    cannot be one."""
    if not isinstance(address, str):
        return None
    address = address.strip().lower()
    return address if 0 < len(address) <= 320 and "@" in address else None


def _row(event: Any, received_at: dt.datetime) -> dict | None:
    """The ``email_events`` row of one event, or None when it lacks what identifies it."""
    if not isinstance(event, dict):
        return None
    event_id = _text(event.get("sg_event_id"), 255)
    name = _text(event.get("event"), 32)
    occurred_at = _occurred_at(event.get("timestamp"))
    if event_id is None or name is None or occurred_at is None:
        return None
    try:
        payload = json.dumps(event, ensure_ascii=False)
    except (TypeError, ValueError):  # pragma: no cover - parsed JSON always serializes
        return None
    return {
        "sg_event_id": event_id,
        "event": name,
        "email": _text(event.get("email"), 320),
        "occurred_at": occurred_at,
        "sg_message_id": _text(event.get("sg_message_id"), 255),
        "reminder_id": _reminder_id(event.get("reminder_id")),
        "payload": payload,
        "received_at": received_at,
        # not stored: decides the suppression of a bounce
        "_bounce_type": event.get("type"),
    }


def _insert_or_ignore(conn: Connection, table: sa.Table):
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert(table)


def _chunks(values: list, size: int = _CHUNK) -> Iterable[list]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def _is_suppressing(row: dict) -> bool:
    if row["event"] not in SUPPRESSING_EVENTS:
        return False
    # "blocked" is the receiving server refusing for now (reputation, content); the address
    # itself is fine and later reminders may get through
    return row["event"] != "bounce" or row["_bounce_type"] == "bounce"


def record_events(engine: Engine, events: list[dict], received_at: dt.datetime) -> dict:
    """Store each event of one webhook delivery once (by ``sg_event_id``) and feed the new ones
    to the suppression list, the reminders' engagement and the reconciliation of interrupted
    sends, all in one transaction.

    An event without ``sg_event_id``, ``event`` or a valid ``timestamp`` (or that is not an
    object) is counted as invalid and skipped. Returns the counts ``received``, ``stored``,
    ``duplicates`` (already stored, or repeated in the batch), ``invalid`` and ``suppressed``
    (addresses the new events put on the suppression list, or kept there).
    """
    if received_at.tzinfo is None:
        raise ValueError("received_at must be timezone-aware")
    received_at = received_at.astimezone(dt.UTC)
    rows: dict[str, dict] = {}
    invalid = repeated = 0
    for event in events:
        row = _row(event, received_at)
        if row is None:
            invalid += 1
        elif row["sg_event_id"] in rows:
            repeated += 1
        else:
            rows[row["sg_event_id"]] = row
    counts = {
        "received": len(events),
        "stored": 0,
        "duplicates": repeated,
        "invalid": invalid,
        "suppressed": 0,
    }
    if not rows:
        return counts

    stored_columns = [c.name for c in email_events.columns]
    with engine.begin() as conn:
        insert = _insert_or_ignore(conn, email_events)
        statement = insert.on_conflict_do_nothing(index_elements=["sg_event_id"]).returning(
            email_events.c.sg_event_id
        )
        new_ids: set[str] = set()
        values = [{k: r[k] for k in stored_columns} for r in rows.values()]
        for chunk in _chunks(values):
            new_ids.update(conn.execute(statement, chunk).scalars())
        new = [r for r in rows.values() if r["sg_event_id"] in new_ids]
        counts["stored"] = len(new)
        counts["duplicates"] += len(rows) - len(new)
        counts["suppressed"] = _suppress(conn, new)
        touched = sorted({r["reminder_id"] for r in new if r["reminder_id"] is not None})
        for chunk in _chunks(touched):
            _update_engagement(conn, chunk)
            _reconcile(conn, chunk, received_at)
    log.info(
        "event webhook: %(received)d received, %(stored)d stored, %(duplicates)d duplicates, "
        "%(invalid)d invalid, %(suppressed)d addresses suppressed",
        counts,
    )
    return counts


def _suppress(conn: Connection, new: list[dict]) -> int:
    """Upsert the addresses of the suppressing events; returns how many addresses."""
    earliest: dict[str, dict] = {}
    for row in new:
        address = normalize_address(row["email"])
        if address is None or not _is_suppressing(row):
            continue
        known = earliest.get(address)
        # one row per address and statement (PostgreSQL refuses to update a row twice)
        if known is None or row["occurred_at"] < known["since"]:
            earliest[address] = {
                "address": address,
                "reason": row["event"],
                "source": "webhook",
                "since": row["occurred_at"],
                "sg_event_id": row["sg_event_id"],
            }
    if earliest:
        upsert_suppressions(conn, list(earliest.values()))
    return len(earliest)


def upsert_suppressions(conn: Connection, rows: list[dict]) -> None:
    """Put addresses on the suppression list (one row per address in ``rows``). An address
    already there keeps its earliest cause: ``since`` says since when it has been suppressed,
    whatever order the causes arrive in."""
    insert = _insert_or_ignore(conn, suppressions)
    excluded = insert.excluded
    statement = insert.on_conflict_do_update(
        index_elements=["address"],
        set_={
            "reason": excluded.reason,
            "source": excluded.source,
            "since": excluded.since,
            "sg_event_id": excluded.sg_event_id,
        },
        where=excluded.since < suppressions.c.since,
    )
    for chunk in _chunks(rows):
        conn.execute(statement, chunk)


def _order_rank() -> sa.ColumnElement:
    return sa.case(EVENT_ORDER, value=email_events.c.event, else_=0)


def _update_engagement(conn: Connection, reminder_ids: list[int]) -> None:
    """Recompute the engagement of ``reminder_ids`` from all their stored events: the latest
    event by event time, and the first time of delivered, open and click."""
    mine = email_events.c.reminder_id == reminders.c.reminder_id
    latest = (
        sa.select(email_events.c.event)
        .where(mine)
        .order_by(
            email_events.c.occurred_at.desc(), _order_rank().desc(), email_events.c.sg_event_id
        )
        .limit(1)
        .scalar_subquery()
    )
    values: dict[str, Any] = {"delivery_status": latest}
    for event, column in FIRST_TIMES.items():
        values[column] = (
            sa.select(sa.func.min(email_events.c.occurred_at))
            .where(mine, email_events.c.event == event)
            .scalar_subquery()
        )
    conn.execute(
        reminders.update().where(reminders.c.reminder_id.in_(reminder_ids)).values(**values)
    )


def _before_dot(conn: Connection, column: sa.ColumnElement) -> sa.ColumnElement:
    """``column`` up to its first '.' (SendGrid appends ``.filter…`` to the X-Message-Id)."""
    if conn.dialect.name == "postgresql":
        return sa.func.split_part(column, ".", 1)
    dot = sa.func.instr(column, ".")
    return sa.case((dot > 0, sa.func.substr(column, 1, dot - 1)), else_=column)


def _reconcile(conn: Connection, reminder_ids: list[int], now: dt.datetime) -> None:
    """Mark ``sent`` the interrupted sends among ``reminder_ids`` that SendGrid has events of:
    status ``sending``, or ``failed`` without a message id after an attempt. ``sent_at`` is
    their earliest event, the message id that of their earliest event that carries one."""
    mine = email_events.c.reminder_id == reminders.c.reminder_id
    first_message = (
        sa.select(_before_dot(conn, email_events.c.sg_message_id))
        .where(mine, email_events.c.sg_message_id.is_not(None))
        .order_by(email_events.c.occurred_at, email_events.c.sg_event_id)
        .limit(1)
        .scalar_subquery()
    )
    interrupted = sa.or_(
        reminders.c.status == "sending",
        sa.and_(
            reminders.c.status == "failed",
            reminders.c.provider_message_id.is_(None),
            reminders.c.attempts > 0,
        ),
    )
    result = conn.execute(
        reminders.update()
        .where(
            reminders.c.reminder_id.in_(reminder_ids),
            interrupted,
            sa.exists().where(mine),
        )
        .values(
            status="sent",
            sent_at=sa.select(sa.func.min(email_events.c.occurred_at))
            .where(mine)
            .scalar_subquery(),
            provider_message_id=sa.func.coalesce(first_message, reminders.c.provider_message_id),
            reason=None,
            updated_at=now,
        )
    )
    if result.rowcount:
        log.info("event webhook: %d interrupted send(s) proven sent by SendGrid", result.rowcount)


def suppressed_addresses(conn_or_engine: Connection | Engine, addresses: Iterable[str]) -> set[str]:
    """Which of ``addresses`` are on the suppression list, lower-cased and stripped (as the
    list keys them); for the planner, before it plans a reminder to them."""
    wanted = sorted({a for a in map(normalize_address, addresses) if a is not None})
    if not wanted:
        return set()
    if isinstance(conn_or_engine, Engine):
        with conn_or_engine.connect() as conn:
            return suppressed_addresses(conn, wanted)
    found: set[str] = set()
    for chunk in _chunks(wanted):
        found.update(
            conn_or_engine.execute(
                sa.select(suppressions.c.address).where(suppressions.c.address.in_(chunk))
            ).scalars()
        )
    return found
