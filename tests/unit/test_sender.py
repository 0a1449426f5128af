"""Sending a batch of planned reminders, on both engines: the outbox's state machine, the
re-check right before sending, bad data, provider failures and interrupted attempts."""

from __future__ import annotations

import datetime as dt
import email
import threading
from collections import Counter
from decimal import Decimal
from email import policy

import pytest
import sqlalchemy as sa

from receivables.collection.planner import plan_reminders
from receivables.collection.sender import SendIncomplete, send_batch
from receivables.collection.strategy import load_strategy
from receivables.config import Settings
from receivables.mail import Delivery, DeliveryError, EmlTransport
from receivables.warehouse.schema import collection_actions, invoices, reminders
from tests.collection_data import age, customer, invoice, load, sent_before, suppress, table

AS_OF = dt.date(2025, 7, 1)
STRATEGY = load_strategy()
NOW = dt.datetime(2025, 6, 30, 22, 0, tzinfo=dt.UTC)
#: the clock while sending: 09:00 in Shanghai on the planned day
SENDING = dt.datetime(2025, 7, 1, 1, 0, tzinfo=dt.UTC)


def days(n: int) -> dt.date:
    return AS_OF - dt.timedelta(days=n)


class Recording:
    """A transport that records what it was asked to deliver, and fails on demand."""

    def __init__(self, name="sendgrid", fail=None):
        self.name = name
        self.fail = fail or {}
        self.sent: list = []
        self.lock = threading.Lock()

    def deliver(self, message):
        with self.lock:
            self.sent.append(message)
        for address, error in self.fail.items():
            if address in message.to:
                raise error
        return Delivery("sent", "test", provider_message_id=f"msg-{len(self.sent)}")


@pytest.fixture
def settings(home):
    return Settings.from_env()


@pytest.fixture
def planned(engine, home):
    people = [
        customer("EN"),
        customer("ZH", locale="zh-CN"),
        customer("TWO", email="one@example.com;two@example.com"),
        customer("PAYS"),
        customer("UNSUB"),
        customer("ODD"),
        customer("OLD"),
    ]
    bills = [
        invoice("I-EN", "EN", days(1)),
        invoice("I-ZH", "ZH", days(16), "1234.50"),
        invoice("I-ZH2", "ZH", days(2), "10.00", currency="USD"),
        invoice("I-TWO", "TWO", days(31)),
        invoice("I-PAYS", "PAYS", days(1)),
        invoice("I-UNSUB", "UNSUB", days(1)),
        invoice("I-ODD", "ODD", days(1), currency="XYZ"),
        invoice("I-OLD", "OLD", dt.date(2021, 1, 10)),
    ]
    load(engine, people, bills)
    for who, oldest in (("TWO", "I-TWO"), ("OLD", "I-OLD")):  # final notices follow a reminder
        sent_before(engine, who, "second_reminder", oldest, days(10))
    age(engine, AS_OF)
    summary = plan_reminders(engine, AS_OF, STRATEGY, "Asia/Shanghai", now=NOW)
    assert summary["pending"] == 7
    return engine


def statuses(engine) -> dict[str, tuple]:
    return {
        r["customer_id"]: (r["status"], r["rule"])
        for r in table(engine, reminders, reminders.c.reminder_id)
        if r["planned_on"] == AS_OF
    }


def test_a_batch_goes_to_the_eml_outbox_once(planned, settings):
    transport = EmlTransport(settings.outbox_dir, settings.mail_from)
    summary = send_batch(
        planned, settings, AS_OF, 0, strategy=STRATEGY, transport=transport, now=SENDING
    )
    assert summary["sent"] == 6
    assert summary["failed"] == 1  # ODD: unknown currency
    got = {r["customer_id"]: r for r in table(planned, reminders) if r["planned_on"] == AS_OF}
    assert got["EN"]["status"] == "sent"
    assert got["EN"]["provider"] == "outbox"
    assert got["EN"]["provider_message_id"]
    assert got["EN"]["attempts"] == 1
    files = sorted(settings.outbox_dir.glob("*.eml"))
    assert len(files) == 6
    messages = [email.message_from_bytes(f.read_bytes(), policy=policy.default) for f in files]
    by_to = {m["To"]: m for m in messages}
    two = by_to["one@example.com, two@example.com"]
    assert two["X-Receivables-Key"] == "TWO/final_notice/2025-07-01"
    body = two.get_body(("plain",)).get_content()
    assert "/receivables/preferences/" in body
    assert "/receivables/feedback/" in body
    zh = by_to["zh@example.com"].get_body(("plain",)).get_content()
    assert "1,234.50" in zh
    assert "US$10.00" in zh or "10.00" in zh
    # sending the batch again sends nothing
    again = send_batch(
        planned, settings, AS_OF, 0, strategy=STRATEGY, transport=transport, now=SENDING
    )
    assert again["sent"] == 0
    assert len(list(settings.outbox_dir.glob("*.eml"))) == 6


def test_the_rules_are_applied_again_right_before_sending(planned, settings):
    # after the plan: PAYS paid in full, UNSUB opted out
    load(
        planned,
        paid=[
            {
                "payment_id": "P",
                "invoice_id": "I-PAYS",
                "paid_date": AS_OF,
                "amount": Decimal("100.00"),
            }
        ],
    )
    suppress(planned, "unsub@example.com", "unsubscribe")
    with planned.begin() as conn:  # and EN's invoice came under dispute
        conn.execute(
            sa.update(invoices).where(invoices.c.invoice_id == "I-EN").values(disputed=True)
        )
    transport = Recording()
    send_batch(planned, settings, AS_OF, 0, strategy=STRATEGY, transport=transport, now=SENDING)
    got = statuses(planned)
    assert got["PAYS"] == ("refused", "nothing_outstanding")
    assert got["UNSUB"] == ("refused", "address_suppressed")
    assert got["EN"] == ("refused", "invoice_disputed")
    assert all("pays@example.com" not in m.to for m in transport.sent)
    assert all("unsub@example.com" not in m.to for m in transport.sent)


def test_what_goes_to_sendgrid_carries_the_reminder_id_stage_and_opt_out(planned, settings):
    transport = Recording()
    send_batch(planned, settings, AS_OF, 0, strategy=STRATEGY, transport=transport, now=SENDING)
    ids = {r["idempotency_key"]: r["reminder_id"] for r in table(planned, reminders)}
    for message in transport.sent:
        assert message.custom_args == {"reminder_id": str(ids[message.key])}
        assert message.all_categories == ("reminder", message.key.split("/")[1])
        assert message.headers["List-Unsubscribe"].startswith("<http")
        assert message.headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert message.reply_to
    en = next(m for m in transport.sent if m.key.startswith("EN/"))
    # planned for 10:00 Shanghai on 1 July 2025, long past: delivered at once or at the next
    # opening of the window, never at night
    assert en.send_at is None or en.send_at > 0
    old = next(m for m in transport.sent if m.key.startswith("OLD/"))
    assert "final_notice" in old.key
    for word in ("legal", "court", "lawsuit", "lawyer"):
        assert word not in old.text.lower()
    two = next(m for m in transport.sent if m.key.startswith("TWO/"))
    assert "legal" in two.text.lower()


def test_bad_data_fails_one_reminder_and_puts_a_fix_on_the_worklist(planned, settings):
    send_batch(planned, settings, AS_OF, 0, strategy=STRATEGY, transport=Recording(), now=SENDING)
    odd = next(r for r in table(planned, reminders) if r["customer_id"] == "ODD")
    assert odd["status"] == "failed"
    assert "XYZ" in odd["reason"]
    assert odd["attempts"] == 0, "never claimed: nothing was sent"
    actions = [a for a in table(planned, collection_actions) if a["customer_id"] == "ODD"]
    assert [(a["kind"], a["cause"]) for a in actions] == [("fix_data", "reminder_failed")]


def test_an_unavailable_provider_leaves_reminders_pending_for_the_retry(planned, settings):
    down = DeliveryError("SendGrid answered 503", status_code=503, retryable=True, attempts=5)
    transport = Recording(fail={"zh@example.com": down})
    with pytest.raises(SendIncomplete, match="1 reminder"):
        send_batch(planned, settings, AS_OF, 0, strategy=STRATEGY, transport=transport, now=SENDING)
    assert statuses(planned)["ZH"] == ("pending", None)
    assert statuses(planned)["EN"] == ("sent", None)
    # the retry sends what is left, and only that
    retry = Recording()
    send_batch(planned, settings, AS_OF, 0, strategy=STRATEGY, transport=retry, now=SENDING)
    assert [m.key for m in retry.sent] == ["ZH/second_reminder/2025-07-01"]
    assert statuses(planned)["ZH"] == ("sent", None)


def test_rejected_credentials_stop_the_batch(planned, settings):
    refused = DeliveryError("SendGrid answered 401", status_code=401)
    transport = Recording(fail={a: refused for a in ("en@example.com", "zh@example.com")})
    STRATEGY_ONE = STRATEGY.model_copy(
        update={"sending": STRATEGY.sending.model_copy(update={"concurrency": 1})}
    )
    with pytest.raises(SendIncomplete):
        send_batch(
            planned, settings, AS_OF, 0, strategy=STRATEGY_ONE, transport=transport, now=SENDING
        )
    assert len(transport.sent) == 1, "stopped after the first 401"
    found = Counter(s for s, _ in statuses(planned).values())
    assert found["sent"] == found["sending"] == 0
    # the rejected one and every one not yet judged wait for the retry; the next one was
    # already re-checked while the first request was in flight, and may have been refused
    assert found["pending"] >= 6, found


def test_an_uncertain_delivery_is_never_sent_again(planned, settings):
    lost = DeliveryError("connection reset after the request was sent", uncertain=True)
    transport = Recording(fail={"en@example.com": lost})
    send_batch(planned, settings, AS_OF, 0, strategy=STRATEGY, transport=transport, now=SENDING)
    en = next(r for r in table(planned, reminders) if r["customer_id"] == "EN")
    assert en["status"] == "failed"
    assert "not sent again" in en["reason"]
    retry = Recording()
    send_batch(planned, settings, AS_OF, 0, strategy=STRATEGY, transport=retry, now=SENDING)
    assert retry.sent == []


def test_an_interrupted_attempt_is_not_resent_through_sendgrid(planned, settings):
    with planned.begin() as conn:  # a crash left EN claimed
        conn.execute(
            sa.update(reminders)
            .where(reminders.c.customer_id == "EN")
            .values(status="sending", attempts=1)
        )
    transport = Recording()
    summary = send_batch(
        planned, settings, AS_OF, 0, strategy=STRATEGY, transport=transport, now=SENDING
    )
    assert summary["interrupted_before"] == 1
    assert all(not m.key.startswith("EN/") for m in transport.sent)
    en = next(r for r in table(planned, reminders) if r["customer_id"] == "EN")
    assert en["status"] == "failed"
    assert en["reason"].startswith("interrupted while sending")


def test_an_interrupted_attempt_is_rewritten_to_the_eml_outbox_once(planned, settings):
    transport = EmlTransport(settings.outbox_dir, settings.mail_from)
    send_batch(planned, settings, AS_OF, 0, strategy=STRATEGY, transport=transport, now=SENDING)
    with planned.begin() as conn:  # as if the crash came after the file was written
        conn.execute(
            sa.update(reminders).where(reminders.c.customer_id == "EN").values(status="sending")
        )
    send_batch(planned, settings, AS_OF, 0, strategy=STRATEGY, transport=transport, now=SENDING)
    assert statuses(planned)["EN"] == ("sent", None)
    assert len(list(settings.outbox_dir.glob("EN_*.eml"))) == 1


def test_a_reminder_days_late_is_not_sent_through_sendgrid_but_still_to_the_outbox(
    planned, settings
):
    late = SENDING + dt.timedelta(days=3)
    transport = Recording()
    summary = send_batch(
        planned, settings, AS_OF, 0, strategy=STRATEGY, transport=transport, now=late
    )
    assert transport.sent == []
    # every one of them, ODD too: the rules come before composing the email
    assert summary["refused_by_rule"] == {"too_late": 7}
    got = statuses(planned)
    assert got["EN"] == ("refused", "too_late")


def test_a_backfilled_date_still_writes_the_eml_outbox(planned, settings):
    late = SENDING + dt.timedelta(days=300)
    transport = EmlTransport(settings.outbox_dir, settings.mail_from)
    summary = send_batch(
        planned, settings, AS_OF, 0, strategy=STRATEGY, transport=transport, now=late
    )
    assert summary["sent"] == 6
