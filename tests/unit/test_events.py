"""SendGrid's Event Webhook through the plugin's endpoint, with genuinely signed requests, on
both engines: what is accepted and stored once, what is refused and leaves no trace, and what
the events feed (suppressions, engagement, reconciliation of interrupted sends)."""

from __future__ import annotations

import datetime as dt
import json
import time

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from receivables.collection.events import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    record_events,
    suppressed_addresses,
    verify,
)
from receivables.collection.links import opt_out_url
from receivables.config import Settings
from receivables.warehouse.schema import email_events, reminders, suppressions
from tests.signing import SENT, Signer, add_reminder, plugin_module, sample_events, utc

URL = "/sendgrid/events"
T0 = dt.datetime.fromtimestamp(SENT, dt.UTC)


@pytest.fixture(scope="module")
def signer() -> Signer:
    """SendGrid's key pair, for this module."""
    return Signer()


@pytest.fixture
def client(home, engine, db_url, signer, monkeypatch):
    """The plugin's app on this test's warehouse, with the signer's verification key."""
    monkeypatch.setenv("RECEIVABLES_DB_URL", db_url)
    monkeypatch.setenv("RECEIVABLES_SENDGRID_WEBHOOK_KEY", signer.public_key_b64)
    plugin = plugin_module()
    with TestClient(plugin.app) as test_client:
        yield test_client
    plugin.dispose_engines()


def post(client, body: bytes, headers: dict[str, str]):
    """POST a webhook request as SendGrid does."""
    return client.post(URL, content=body, headers=headers)


def stored(engine, table=email_events) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()


def reminder(engine, reminder_id: int) -> dict:
    with engine.connect() as conn:
        row = conn.execute(sa.select(reminders).where(reminders.c.reminder_id == reminder_id)).one()
    return row._asdict()


def suppression_rows(engine) -> dict[str, dict]:
    with engine.connect() as conn:
        return {r.address: r._asdict() for r in conn.execute(sa.select(suppressions))}


# --- accepted -------------------------------------------------------------------------------


def test_a_genuine_request_is_stored_once_and_a_replay_doubles_nothing(client, engine, signer):
    first, second = add_reminder(engine), add_reminder(engine, recipients="nobody@example.net")
    events = sample_events(first, second)
    body, headers = signer.request(events)

    answer = post(client, body, headers)

    assert answer.status_code == 200
    assert answer.json() == {
        "received": 11,
        "stored": 11,
        "duplicates": 0,
        "invalid": 0,
        "suppressed": 5,
    }
    with engine.connect() as conn:
        rows = {r.sg_event_id: r for r in conn.execute(sa.select(email_events))}
    delivered = rows["ZGVsaXZlcmVkLTAwMw"]
    assert delivered.event == "delivered"
    assert delivered.reminder_id == first
    assert utc(delivered.occurred_at) == T0 + dt.timedelta(seconds=100)
    assert delivered.sg_message_id == "a1b2c3XYZ.filterdrecv-0-1-0"
    assert json.loads(delivered.payload) == events[2]  # the event as received
    assert rows["c3BhbXJlcG9ydC0wMDg"].reminder_id is None  # no custom arg: not a reminder
    suppressed_before = suppression_rows(engine)
    engagement_before = reminder(engine, first)

    # SendGrid retries a batch it is not sure we took, signed anew
    body, headers = signer.request(events)
    replay = post(client, body, headers)

    assert replay.status_code == 200
    assert replay.json() == {
        "received": 11,
        "stored": 0,
        "duplicates": 11,
        "invalid": 0,
        "suppressed": 0,
    }
    assert stored(engine) == 11
    assert suppression_rows(engine) == suppressed_before
    assert reminder(engine, first) == engagement_before


def test_events_it_cannot_identify_are_counted_invalid_and_the_rest_is_kept(client, engine, signer):
    rid = add_reminder(engine)
    good = sample_events(rid)[2]
    events = [
        good,
        {**good, "sg_event_id": "no-timestamp", "timestamp": None},
        {**good, "sg_event_id": "bad-timestamp", "timestamp": "yesterday"},
        {k: v for k, v in good.items() if k != "sg_event_id"},
        {k: v for k, v in good.items() if k != "event"},
        "not an object",
        good,  # repeated within the batch
    ]
    body, headers = signer.request(events)

    answer = post(client, body, headers)

    assert answer.status_code == 200
    assert answer.json() == {
        "received": 7,
        "stored": 1,
        "duplicates": 1,
        "invalid": 5,
        "suppressed": 0,
    }
    assert stored(engine) == 1


def test_a_reminder_id_that_is_not_an_integer_string_is_not_taken(engine):
    event = {**sample_events(1)[0], "reminder_id": "1; DROP TABLE reminders"}
    record_events(engine, [event, {**event, "sg_event_id": "x2", "reminder_id": 7}], T0)
    with engine.connect() as conn:
        assert set(conn.execute(sa.select(email_events.c.reminder_id)).scalars()) == {None}


# --- refused: nothing stored -----------------------------------------------------------------


REFUSALS = {
    "no headers": "missing signature",
    "no timestamp": "missing timestamp",
    "forged signature": "bad signature",
    "garbage signature": "bad signature",
    "tampered body": "bad signature",
    "other timestamp": "bad signature",
    "other key": "bad signature",
    "11 minutes old": "timestamp older than 10 minutes",
    "in the future": "timestamp in the future",
}


def _refused_request(signer: Signer, events: list[dict], case: str):
    now = time.time()
    body, headers = signer.request(events, now)
    if case == "no headers":
        headers = {"Content-Type": "application/json"}
    elif case == "no timestamp":
        del headers[TIMESTAMP_HEADER]
    elif case == "forged signature":
        headers[SIGNATURE_HEADER] = Signer().sign(body, headers[TIMESTAMP_HEADER])
    elif case == "garbage signature":
        headers[SIGNATURE_HEADER] = "not base64 at all!"
    elif case == "tampered body":
        body = body.replace(b'"bounce"', b'"delivered"', 1)
    elif case == "other timestamp":
        headers[TIMESTAMP_HEADER] = str(int(now) - 1)
    elif case == "other key":
        body, headers = Signer().request(events, now)
    elif case == "11 minutes old":
        body, headers = signer.request(events, now - 11 * 60)
    elif case == "in the future":
        body, headers = signer.request(events, now + 5 * 60)
    return body, headers


def test_a_request_not_signed_by_sendgrid_now_is_refused_and_nothing_stored(client, engine, signer):
    rid = add_reminder(engine, status="sending", attempts=1)
    events = sample_events(rid)

    for case, reason in REFUSALS.items():
        answer = post(client, *_refused_request(signer, events, case))

        assert (case, answer.status_code, answer.json()) == (case, 403, {"error": reason})
    assert stored(engine) == 0
    assert stored(engine, suppressions) == 0
    assert reminder(engine, rid)["status"] == "sending"
    # the same events, genuinely signed, are taken: the refusals were about the signing
    assert post(client, *signer.request(events)).status_code == 200
    assert stored(engine) == len(events)


def test_a_signed_body_that_is_not_an_array_of_events_is_a_bad_request(client, engine, signer):
    stamp = str(int(time.time()))
    for body in (b'{"event": "open"}\r\n', b"[{not json\r\n"):
        headers = {SIGNATURE_HEADER: signer.sign(body, stamp), TIMESTAMP_HEADER: stamp}
        assert post(client, body, headers).status_code == 400
    assert stored(engine) == 0


def test_a_body_over_5_mb_is_refused_unread(client, engine, signer):
    body, headers = signer.request([{"pad": "x" * (5 * 1024 * 1024)}])

    answer = post(client, body, headers)
    # without a Content-Length (chunked), reading stops at the limit
    chunked = client.post(
        URL,
        content=iter([body[i : i + 2**20] for i in range(0, len(body), 2**20)]),
        headers=headers,
    )

    assert answer.status_code == 413
    assert chunked.status_code == 413
    assert stored(engine) == 0


def test_without_a_verification_key_the_endpoint_says_it_is_not_configured(
    client, engine, signer, monkeypatch
):
    body, headers = signer.request(sample_events(1))
    monkeypatch.delenv("RECEIVABLES_SENDGRID_WEBHOOK_KEY")

    answer = post(client, body, headers)

    assert answer.status_code == 503
    assert "RECEIVABLES_SENDGRID_WEBHOOK_KEY" in answer.json()["error"]
    monkeypatch.setenv("RECEIVABLES_SENDGRID_WEBHOOK_KEY", "bm90IGEga2V5")  # base64, not a key
    assert post(client, body, headers).status_code == 503
    assert stored(engine) == 0


def test_an_unreachable_warehouse_is_a_503_so_sendgrid_retries(home, signer, monkeypatch):
    monkeypatch.setenv("RECEIVABLES_DB_URL", "postgresql://postgres@127.0.0.1:1/nowhere")
    monkeypatch.setenv("RECEIVABLES_SENDGRID_WEBHOOK_KEY", signer.public_key_b64)
    plugin = plugin_module()
    with TestClient(plugin.app) as client:
        answer = post(client, *signer.request(sample_events(1)))
        page = client.get(opt_out_url(Settings.from_env(), 1).split("/receivables", 1)[1])
    plugin.dispose_engines()

    assert answer.status_code == 503
    assert answer.json() == {"error": "the warehouse is unavailable; try again later"}
    assert page.status_code == 503
    assert "Temporarily unavailable" in page.text


def test_verify_names_the_problem():
    signer = Signer()
    body, headers = signer.request([], timestamp=1_800_000_000)
    signature, stamp = headers[SIGNATURE_HEADER], headers[TIMESTAMP_HEADER]
    key = signer.public_key_b64

    assert verify(key, body, signature, stamp, now=1_800_000_000 + 600) is None
    assert verify(key, body, signature, stamp, now=1_800_000_000 + 601) == (
        "timestamp older than 10 minutes"
    )
    assert verify(key, body, signature, stamp, now=1_800_000_000 - 60) is None  # clock skew
    assert verify(key, body, signature, stamp, now=1_800_000_000 - 61) == "timestamp in the future"
    assert verify(key, body, "", stamp, now=1_800_000_000) == "missing signature"
    assert verify(key, body, signature, "1.8e9", now=1_800_000_000) == "malformed timestamp"
    assert verify(key, b"\xff\xfe", signature, stamp, now=1_800_000_000) == "not UTF-8"
    assert verify(key, body.rstrip(), signature, stamp, now=1_800_000_000) == "bad signature"


# --- what the events feed ----------------------------------------------------------------------


def test_suppressing_events_suppress_their_address_and_others_do_not(client, engine, signer):
    body, headers = signer.request(sample_events(add_reminder(engine)))

    assert post(client, body, headers).status_code == 200

    rows = suppression_rows(engine)
    assert {a: r["reason"] for a, r in rows.items()} == {
        "nobody@example.net": "bounce",
        "dropped@example.net": "dropped",
        "carol@example.org": "spamreport",
        "dave@example.org": "unsubscribe",
        "erin@example.org": "group_unsubscribe",  # " Erin@Example.org " stripped, lower-cased
    }
    # not: busy@ (a "blocked" bounce is temporary), alex@ (processed ... click)
    bounce = rows["nobody@example.net"]
    assert bounce["source"] == "webhook"
    assert utc(bounce["since"]) == T0 + dt.timedelta(seconds=105)
    assert bounce["sg_event_id"] == "Ym91bmNlLTAwNg"
    assert suppressed_addresses(engine, ["Nobody@Example.net ", "alex@example.com"]) == {
        "nobody@example.net"
    }
    with engine.connect() as conn:
        assert suppressed_addresses(conn, ["busy@example.net", "DAVE@example.org"]) == {
            "dave@example.org"
        }


def test_an_address_keeps_its_earliest_suppression_whatever_the_arrival_order(engine):
    bounce = {
        "event": "bounce",
        "type": "bounce",
        "email": "x@example.com",
        "sg_event_id": "late-to-arrive",
        "timestamp": SENT,
    }
    spam = {
        **bounce,
        "event": "spamreport",
        "sg_event_id": "first-to-arrive",
        "timestamp": SENT + 60,
    }

    assert record_events(engine, [spam], T0)["suppressed"] == 1
    record_events(engine, [bounce], T0)
    record_events(engine, [{**spam, "sg_event_id": "again", "timestamp": SENT + 120}], T0)

    row = suppression_rows(engine)["x@example.com"]
    assert (row["reason"], utc(row["since"]), row["sg_event_id"]) == (
        "bounce",
        T0,
        "late-to-arrive",
    )


def test_engagement_follows_event_time_not_arrival_order(client, engine, signer):
    rid = add_reminder(engine)
    events = {e["event"]: e for e in sample_events(rid)}
    later_open = {**events["open"], "sg_event_id": "b3Blbi0wMTI", "timestamp": SENT + 9000}

    # the open arrives first, then the earlier events, then a second open
    for batch in ([events["open"]], [events["delivered"], events["processed"]], [later_open]):
        body, headers = signer.request(batch)
        assert post(client, body, headers).status_code == 200

    row = reminder(engine, rid)
    assert row["delivery_status"] == "open"  # the latest by event time
    assert utc(row["delivered_at"]) == T0 + dt.timedelta(seconds=100)
    assert utc(row["opened_at"]) == T0 + dt.timedelta(seconds=3700)  # the first open
    assert row["clicked_at"] is None

    body, headers = signer.request([events["click"]])
    post(client, body, headers)
    row = reminder(engine, rid)
    assert row["delivery_status"] == "open"  # the click (3760 s) is older than the open (9000 s)
    assert utc(row["clicked_at"]) == T0 + dt.timedelta(seconds=3760)


def test_events_of_one_second_leave_the_furthest_state(engine):
    rid = add_reminder(engine)
    events = {e["event"]: e for e in sample_events(rid)}
    same_second = [{**events[name], "timestamp": SENT} for name in ("open", "delivered")]

    record_events(engine, same_second, T0)

    assert reminder(engine, rid)["delivery_status"] == "open"


def test_events_prove_interrupted_sends_sent(client, engine, signer):
    sending = add_reminder(engine, status="sending", attempts=1)
    lost_answer = add_reminder(engine, status="failed", attempts=2, reason="read timed out")
    refused_by_sendgrid = add_reminder(engine, status="failed", attempts=0, reason="400")
    sent = add_reminder(engine, status="sent", attempts=1, provider_message_id="own", sent_at=T0)
    events = []
    for n, rid in enumerate((sending, lost_answer, refused_by_sendgrid, sent)):
        for event in sample_events(rid)[:3]:  # processed, deferred, delivered
            events.append({**event, "sg_event_id": f"{event['sg_event_id']}-{n}"})
    body, headers = signer.request(list(reversed(events)))  # arrival order does not matter

    assert post(client, body, headers).status_code == 200

    for rid in (sending, lost_answer):
        row = reminder(engine, rid)
        assert row["status"] == "sent"
        assert utc(row["sent_at"]) == T0  # the earliest event
        assert row["provider_message_id"] == "a1b2c3XYZ"  # the X-Message-Id, without .filter…
        assert row["reason"] is None
        assert row["delivery_status"] == "delivered"
    # an interrupted send is recognised by attempts > 0 and no message id, nothing else
    assert reminder(engine, refused_by_sendgrid)["status"] == "failed"
    assert reminder(engine, sent)["provider_message_id"] == "own"


def test_the_returned_counts_reconcile_and_time_is_stored_in_utc(engine):
    events = sample_events(add_reminder(engine))
    shanghai = dt.timezone(dt.timedelta(hours=8))

    counts = record_events(engine, events, dt.datetime(2026, 11, 28, 9, 0, tzinfo=shanghai))

    assert counts["received"] == counts["stored"] + counts["duplicates"] + counts["invalid"]
    with engine.connect() as conn:
        received = set(conn.execute(sa.select(email_events.c.received_at)).scalars())
    assert {utc(r) for r in received} == {dt.datetime(2026, 11, 28, 1, 0, tzinfo=dt.UTC)}
    with pytest.raises(ValueError, match="timezone-aware"):
        record_events(engine, events, dt.datetime(2026, 11, 28))


# --- the plugin --------------------------------------------------------------------------------


def test_airflow_finds_the_plugin_and_mounts_its_app_under_receivables():
    from airflow import plugins_manager
    from airflow.api_fastapi.app import init_plugins
    from fastapi import FastAPI

    plugins_manager.ensure_plugins_loaded()
    assert plugins_manager.get_import_errors() == {}
    apps, _ = plugins_manager.get_fastapi_plugins()
    mounted = [a for a in apps if a["url_prefix"] == "/receivables"]
    assert [(a["name"], type(a["app"]).__name__) for a in mounted] == [("Receivables", "FastAPI")]
    info = [p for p in plugins_manager.get_plugin_info() if p["name"] == "receivables"]
    assert len(info) == 1
    assert str(info[0]["source"]).endswith("receivables_plugin.py")

    # mounted as the API server mounts it: the routes answer under the prefix
    root = FastAPI()
    init_plugins(root)
    with TestClient(root) as client:
        assert client.get("/receivables/preferences/1.forged").status_code == 404
        assert client.post("/receivables/sendgrid/events", content=b"[]").status_code in (
            403,
            503,
        )
