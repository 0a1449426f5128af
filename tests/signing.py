"""Genuinely signed SendGrid Event Webhook requests, for tests.

SendGrid signs ``timestamp + raw body`` with ECDSA over P-256 and SHA-256, and sends the
base64 DER signature and the timestamp (unix seconds) in two headers; the verification key it
shows is the base64 DER SubjectPublicKeyInfo of its public key. :class:`Signer` does the same
with a key made for the test, so the endpoint is exercised with real signatures, not a bypass.

Also what the webhook and self-service tests share: the plugin module under test and the
warehouse rows (reminders, customers) they need.
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import importlib.util
import json
import secrets
import time
from dataclasses import dataclass, field

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from receivables.collection.events import SIGNATURE_HEADER, TIMESTAMP_HEADER
from receivables.paths import PLUGINS_DIR
from receivables.warehouse.schema import customers, reminders
from tests.helpers import source_file

#: 2026-11-28 00:00 UTC: the send the sample events are about.
SENT = 1795852800


@dataclass
class Signer:
    """A P-256 key pair; signs webhook bodies the way SendGrid does."""

    private_key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1())
    )

    @property
    def public_key_b64(self) -> str:
        """The verification key as SendGrid's settings show it (base64 DER, no PEM lines)."""
        der = self.private_key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return base64.b64encode(der).decode("ascii")

    def sign(self, body: bytes, timestamp: str) -> str:
        """The base64 DER signature of ``timestamp + body``."""
        signature = self.private_key.sign(
            timestamp.encode("ascii") + body, ec.ECDSA(hashes.SHA256())
        )
        return base64.b64encode(signature).decode("ascii")

    def request(self, events, timestamp: float | None = None) -> tuple[bytes, dict[str, str]]:
        """(body, headers) as SendGrid POSTs ``events``: a JSON array ending in CRLF, signed
        at ``timestamp`` (default: now)."""
        body = (json.dumps(events) + "\r\n").encode("utf-8")
        stamp = str(int(time.time() if timestamp is None else timestamp))
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: self.sign(body, stamp),
            TIMESTAMP_HEADER: stamp,
        }
        return body, headers


def sample_events(reminder_id: int, bounced_reminder_id: int | None = None) -> list[dict]:
    """One event of each type SendGrid sends, as it sends them (and a ``blocked`` bounce). The
    first five are about ``reminder_id`` (to alex@), the bounce, the drop and the unsubscribes
    about ``bounced_reminder_id`` (default: the same); the blocked bounce and the spam report
    carry no reminder (other mail)."""
    rid = str(reminder_id)
    other = str(bounced_reminder_id or reminder_id)
    message = "a1b2c3XYZ.filterdrecv-0-1-0"
    return [
        {
            "event": "processed",
            "email": "Alex@Example.com",
            "timestamp": SENT,
            "smtp-id": "<a1b2c3@ismtpd-001>",
            "sg_event_id": "cHJvY2Vzc2VkLTAwMQ",
            "sg_message_id": message,
            "category": ["reminder"],
            "reminder_id": rid,
        },
        {
            "event": "deferred",
            "email": "alex@example.com",
            "timestamp": SENT + 10,
            "sg_event_id": "ZGVmZXJyZWQtMDAy",
            "sg_message_id": message,
            "response": "421 try again later",
            "attempt": "1",
            "reminder_id": rid,
        },
        {
            "event": "delivered",
            "email": "alex@example.com",
            "timestamp": SENT + 100,
            "sg_event_id": "ZGVsaXZlcmVkLTAwMw",
            "sg_message_id": message,
            "response": "250 OK",
            "tls": 1,
            "reminder_id": rid,
        },
        {
            "event": "open",
            "email": "alex@example.com",
            "timestamp": SENT + 3700,
            "sg_event_id": "b3Blbi0wMDQ",
            "sg_message_id": message,
            "useragent": "Mozilla/5.0",
            "sg_machine_open": False,
            "reminder_id": rid,
        },
        {
            "event": "click",
            "email": "alex@example.com",
            "timestamp": SENT + 3760,
            "sg_event_id": "Y2xpY2stMDA1",
            "sg_message_id": message,
            "url": "http://127.0.0.1:8080/receivables/feedback/x",
            "url_offset": {"index": 0, "type": "html"},
            "reminder_id": rid,
        },
        {
            "event": "bounce",
            "email": "nobody@example.net",
            "timestamp": SENT + 105,
            "sg_event_id": "Ym91bmNlLTAwNg",
            "sg_message_id": "d4e5f6XYZ.filterdrecv-0-1-0",
            "type": "bounce",
            "status": "5.1.1",
            "reason": "550 5.1.1 The email account that you tried to reach does not exist",
            "bounce_classification": "Invalid Address",
            "reminder_id": other,
        },
        {
            "event": "bounce",
            "email": "busy@example.net",
            "timestamp": SENT + 106,
            "sg_event_id": "YmxvY2tlZC0wMTE",
            "sg_message_id": "s1t2u3XYZ.filterdrecv-0-1-0",
            "type": "blocked",
            "status": "4.0.0",
            "reason": "421 too many connections",
            "bounce_classification": "Reputation",
        },
        {
            "event": "dropped",
            "email": "dropped@example.net",
            "timestamp": SENT + 86400,
            "sg_event_id": "ZHJvcHBlZC0wMDc",
            "sg_message_id": "g7h8i9XYZ.filterdrecv-0-1-0",
            "reason": "Bounced Address",
            "status": "5.0.0",
            "reminder_id": other,
        },
        {
            "event": "spamreport",
            "email": "carol@example.org",
            "timestamp": SENT + 7200,
            "sg_event_id": "c3BhbXJlcG9ydC0wMDg",
            "sg_message_id": "j1k2l3XYZ.filterdrecv-0-1-0",
            "category": ["management-report"],
        },
        {
            "event": "unsubscribe",
            "email": "dave@example.org",
            "timestamp": SENT + 7300,
            "sg_event_id": "dW5zdWJzY3JpYmUtMDA5",
            "sg_message_id": "m4n5o6XYZ.filterdrecv-0-1-0",
            "reminder_id": other,
        },
        {
            "event": "group_unsubscribe",
            "email": " Erin@Example.org ",
            "timestamp": SENT + 7400,
            "sg_event_id": "Z3JvdXBfdW5zdWItMDEw",
            "sg_message_id": "p7q8r9XYZ.filterdrecv-0-1-0",
            "asm_group_id": 12345,
            "reminder_id": other,
        },
    ]


# --- what the webhook and page tests share: the app under test, reminder rows ----------------


@functools.cache
def plugin_module():
    """``plugins/receivables_plugin.py``, imported from its file as Airflow imports it."""
    path = PLUGINS_DIR / "receivables_plugin.py"
    spec = importlib.util.spec_from_file_location("receivables_plugin_under_test", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def add_reminder(engine, status: str = "sent", **values) -> int:
    """A ``reminders`` row (the NOT NULL columns filled in, ``values`` override); its id."""
    now = dt.datetime(2026, 11, 27, 8, 0, tzinfo=dt.UTC)
    row = {
        "idempotency_key": f"C1/first_reminder/{secrets.token_hex(6)}",
        "planned_on": dt.date(2026, 11, 27),
        "customer_id": "C1",
        "stage": "first_reminder",
        "ladder": "standard",
        "status": status,
        "locale": "en",
        "recipients": "alex@example.com",
        "oldest_invoice_id": "I1",
        "days_past_due": 3,
        "invoices": 1,
        "strategy_version": "test",
        "created_at": now,
        "updated_at": now,
    }
    row.update(values)
    with engine.begin() as conn:
        return conn.execute(reminders.insert().values(**row)).inserted_primary_key[0]


def add_customer(engine, customer_id: str = "C1", **values) -> None:
    """A ``customers`` row (with the fixture source file it must point at)."""
    with engine.begin() as conn:
        row = {
            "customer_id": customer_id,
            "name": "Acme Trading",
            "email": None,
            "locale": "en",
            "timezone": "Asia/Shanghai",
            "currency": "CNY",
            "do_not_contact": False,
            "source_file_id": source_file(conn),
        }
        row.update(values)
        conn.execute(customers.insert().values(**row))


def utc(value: dt.datetime | None) -> dt.datetime | None:
    """A timestamp read back from the warehouse as aware UTC (SQLite returns it naive)."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=dt.UTC)
