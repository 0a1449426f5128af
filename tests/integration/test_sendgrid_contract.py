"""SendGrid through the official client: every request the project sends is valid against
SendGrid's published contract (a Prism mock of the Mail Send API), and every kind of failure is
handled as it must be: retried when it may succeed later, never retried when the message may
already have gone, refused with a reason that names no address and no key.

What the mock cannot answer (429 with ``Retry-After``, a dropped connection, a timeout) comes
from a scripted server on 127.0.0.1 (:class:`tests.sendgrid_mock.ScriptedServer`).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from pathlib import Path

import pytest

from receivables.config import SendGridConfig, Settings
from receivables.mail import (
    DeliveryError,
    OutboundEmail,
    SendGridTransport,
    send_once,
)
from tests.sendgrid_mock import Answer, ScriptedServer, free_port

API_KEY = "SG.contract-test.not-a-real-key"
MAIL_FROM = "应收账款 Receivables <receivables@ar.example.com>"
DEBTOR = ("张三 <zhang.san@debtor.example.com>", "ap@debtor.example.com", "cfo@debtor.example.com")


def _reminder(**changes) -> OutboundEmail:
    """A reminder as the collection DAG sends it: Chinese, HTML and text, several addresses of
    the debtor, categories, the reminder's id, a scheduled time, an unsubscribe header."""
    fields = {
        "key": "reminder/42",
        "to": DEBTOR,
        "subject": "付款提醒：发票 INV-2024-001 已逾期 5 天",
        "text": "尊敬的张三：\n发票 INV-2024-001（人民币 1,234.50 元）已逾期 5 天，请尽快付款。",
        "html": "<p>尊敬的张三：</p><p>发票 <b>INV-2024-001</b>（人民币 1,234.50 元）已逾期。</p>",
        "category": "reminder",
        "categories": ("first_reminder", "zh-CN"),
        "custom_args": {"reminder_id": "42"},
        "send_at": int(time.time()) + 36 * 3600,
        "headers": {
            "List-Unsubscribe": "<https://ar.example.com/optout/abc>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        },
        "reply_to": "催收部 Collections <collections@ar.example.com>",
    }
    return OutboundEmail(**{**fields, **changes})


def _transport(url: str, waits: list[float] | None = None, **options) -> SendGridTransport:
    """A transport on ``url`` that records its waits instead of sleeping."""
    recorded = [] if waits is None else waits
    return SendGridTransport(
        SendGridConfig(api_key=API_KEY, host=url), MAIL_FROM, sleep=recorded.append, **options
    )


def _settings(home: Path, url: str) -> Settings:
    """Settings with the ``sendgrid_default`` connection pointing at ``url``."""
    connection = {"conn_type": "generic", "password": API_KEY, "host": url}
    return Settings.from_env(
        {
            "RECEIVABLES_HOME": str(home),
            "RECEIVABLES_ALERT_EMAILS": "oncall@ar.example.com; de@ar.example.com",
            "AIRFLOW_CONN_SENDGRID_DEFAULT": json.dumps(connection),
        }
    )


FAILURE = {
    "dag_id": "ledger_ingest",
    "task_id": "ingest_customers",
    "map_index": -1,
    "run_id": "manual__2024-01-01",
    "try_number": 1,
    "as_of": "2024-01-01",
    "error": "ValueError: 客户文件无法读取 <bad>",
    "log_url": "http://localhost:8080/log",
}


# --- accepted by the contract -------------------------------------------------------------------


def test_a_reminder_with_every_feature_is_accepted(sendgrid_mock):
    waits: list[float] = []
    delivery = _transport(sendgrid_mock, waits).deliver(_reminder())
    assert delivery.status == "sent"
    assert delivery.provider_message_id is None  # the mock sends no X-Message-Id
    assert delivery.location == "sendgrid"
    assert waits == []  # accepted at the first attempt


def test_the_ops_emails_are_accepted(sendgrid_mock, tmp_path):
    settings = _settings(tmp_path, sendgrid_mock)
    failure = send_once(
        settings, "task-failure/r/1", "ops/task_failure", settings.alert_emails, "alert", **FAILURE
    )
    quality = send_once(
        settings,
        "ingest-quality/r/1",
        "ops/ingest_quality",
        settings.alert_emails,
        "data-quality",
        as_of="2024-03-01",
        run_id="r",
        files_loaded=1,
        files_rejected=1,
        rows_read=3,
        rows_loaded=2,
        rows_quarantined=1,
        files=[
            {"file": "客户.csv", "kind": "customers", "status": "loaded", "rows_read": 3,
             "rows_loaded": 2, "rows_quarantined": 1, "reason": None},
            {"file": "x.txt", "kind": None, "status": "rejected", "rows_read": 0,
             "rows_loaded": 0, "rows_quarantined": 0, "reason": "unrecognised file name"},
        ],
        rejected_dir=tmp_path / "rejected",
        data_docs=tmp_path / "index.html",
    )  # fmt: skip
    assert (failure.status, quality.status) == ("sent", "sent")
    assert not list(tmp_path.glob("outbox/*.eml"))  # nothing went to the file outbox


def test_the_risk_digest_is_accepted(sendgrid_mock, engine, tmp_path):
    """The digest of an empty day, on both engines (its request is built from the warehouse)."""
    from receivables.risk.digest import send_digest

    settings = _settings(tmp_path, sendgrid_mock)
    first = send_digest(engine, dt.date(2024, 6, 30), settings)
    again = send_digest(engine, dt.date(2024, 6, 30), settings)
    assert (first["status"], again["status"]) == ("sent", "duplicate")


def test_an_invalid_request_is_refused_with_the_contract_s_reason(sendgrid_mock):
    transport = SendGridTransport(
        SendGridConfig(api_key=API_KEY, host=sendgrid_mock),
        "Receivables <ar@example..com>",  # a sender address that is no address
        sleep=pytest.fail,
    )
    with pytest.raises(DeliveryError) as refused:
        transport.deliver(_reminder())
    error = refused.value
    assert error.status_code == 400
    assert 'from.email must match format "email"' in error.reason
    assert (error.retryable, error.uncertain, error.attempts) == (False, False, 1)
    assert "example..com" not in error.reason


def test_no_key_and_no_address_reaches_the_logs(sendgrid_mock, caplog):
    caplog.set_level(logging.DEBUG)
    _transport(sendgrid_mock).deliver(_reminder())
    with pytest.raises(DeliveryError):
        _transport(sendgrid_mock, request_headers={"Prefer": "code=400"}).deliver(_reminder())
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "reminder/42" in logged  # the key is logged: it is what an operator looks for
    assert API_KEY not in logged
    assert "@" not in logged


# --- errors ------------------------------------------------------------------------------------


def test_a_server_error_is_retried_then_reported_as_retryable(sendgrid_mock):
    waits: list[float] = []
    transport = _transport(
        sendgrid_mock, waits, max_attempts=3, request_headers={"Prefer": "code=500"}
    )
    with pytest.raises(DeliveryError) as failed:
        transport.deliver(_reminder())
    error = failed.value
    assert (error.status_code, error.retryable, error.uncertain) == (500, True, False)
    assert error.attempts == 3
    assert "after 3 attempts" in error.reason
    assert len(waits) == 2
    # exponential backoff with full jitter: at most 1 s, then at most 2 s
    assert 0 <= waits[0] <= 1
    assert 0 <= waits[1] <= 2


@pytest.mark.parametrize("status", [400, 401, 403, 404, 413])
def test_a_refusal_is_not_retried(sendgrid_mock, status):
    transport = _transport(sendgrid_mock, request_headers={"Prefer": f"code={status}"})
    transport.sleep = pytest.fail  # a refusal must not wait for a second attempt
    with pytest.raises(DeliveryError) as refused:
        transport.deliver(_reminder())
    error = refused.value
    assert (error.status_code, error.retryable, error.uncertain) == (status, False, False)
    assert error.attempts == 1
    assert error.reason.startswith(f"SendGrid answered {status}")


def test_too_many_requests_waits_as_asked_then_sends():
    waits: list[float] = []
    with ScriptedServer(
        Answer(429, {"Retry-After": "7"}),
        Answer(503, {"Retry-After": "3600"}),
        Answer(202, {"X-Message-Id": "msg-abc"}),
    ) as server:
        delivery = _transport(server.url, waits, max_wait=60).deliver(_reminder())
    assert (delivery.status, delivery.provider_message_id) == ("sent", "msg-abc")
    assert delivery.location == "sendgrid:msg-abc"
    assert waits == [7.0, 60.0]  # Retry-After honoured, capped at max_wait
    assert len(server.requests) == 3
    # the same request each time, through the official client, with the key
    assert server.requests[0].body == server.requests[2].body
    assert server.requests[0].path == "/v3/mail/send"
    assert server.requests[0].headers["Authorization"] == f"Bearer {API_KEY}"
    assert server.requests[0].body["custom_args"] == {"reminder_id": "42"}


def test_a_connection_dropped_after_the_body_is_uncertain_and_not_retried():
    with (
        ScriptedServer(Answer(drop=True), Answer(202)) as server,
        pytest.raises(DeliveryError) as dropped,
    ):
        _transport(server.url, [], max_attempts=5).deliver(_reminder())
    error = dropped.value
    assert (error.uncertain, error.retryable, error.attempts) == (True, False, 1)
    assert error.status_code is None
    assert len(server.requests) == 1  # the body arrived whole; it is never posted again


def test_no_answer_within_the_timeout_is_uncertain():
    with ScriptedServer(Answer(hang=True)) as server, pytest.raises(DeliveryError) as waited:
        _transport(server.url, [], timeout=0.5).deliver(_reminder())
    assert (waited.value.uncertain, waited.value.attempts) == (True, 1)
    assert len(server.requests) == 1


def test_a_refused_connection_is_retried():
    waits: list[float] = []
    nobody = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(DeliveryError) as refused:
        _transport(nobody, waits, max_attempts=3).deliver(_reminder())
    error = refused.value
    assert (error.retryable, error.uncertain, error.attempts) == (True, False, 3)
    assert "ConnectionRefusedError" in error.reason
    assert len(waits) == 2


# --- at most once per key ----------------------------------------------------------------------


def _fail(settings: Settings, key: str = "task-failure/r/1"):
    return send_once(settings, key, "ops/task_failure", settings.alert_emails, "alert", **FAILURE)


def test_send_once_through_sendgrid_sends_once_per_key(tmp_path):
    with ScriptedServer(Answer(202, {"X-Message-Id": "msg-1"})) as server:
        settings = _settings(tmp_path, server.url)
        first = _fail(settings)
        again = _fail(settings)
        other = _fail(settings, "task-failure/r/2")
    assert (first.status, first.provider_message_id) == ("sent", "msg-1")
    assert (again.status, again.location, again.provider_message_id) == (
        "duplicate",
        "sendgrid:msg-1",
        "msg-1",
    )
    assert other.status == "sent"
    assert len(server.requests) == 2  # the duplicate sent nothing
    sent = server.requests[0].body
    assert sent["personalizations"] == [
        {"to": [{"email": "oncall@ar.example.com"}, {"email": "de@ar.example.com"}]}
    ]
    assert sent["categories"] == ["alert"]
    assert sent["subject"].startswith("[receivables] FAILED: ledger_ingest.ingest_customers")


def test_a_refused_send_releases_the_key_for_a_retry(tmp_path):
    with ScriptedServer(Answer(400, body={"errors": [{"message": "bad", "field": "x"}]}),
                        Answer(202)) as server:  # fmt: skip
        settings = _settings(tmp_path, server.url)
        with pytest.raises(DeliveryError) as refused:
            _fail(settings)
        assert refused.value.reason == "SendGrid answered 400: x: bad"
        assert not list((tmp_path / "outbox" / ".sent").iterdir())  # the claim is released
        retried = _fail(settings)
    assert retried.status == "sent"
    assert len(server.requests) == 2


def test_an_uncertain_send_keeps_the_key_so_it_never_goes_twice(tmp_path):
    with ScriptedServer(Answer(drop=True), Answer(202)) as server:
        settings = _settings(tmp_path, server.url)
        with pytest.raises(DeliveryError) as dropped:
            _fail(settings)
        assert dropped.value.uncertain
        again = _fail(settings)
    assert again.status == "duplicate"
    assert len(server.requests) == 1
    (claim,) = (tmp_path / "outbox" / ".sent").iterdir()
    assert json.loads(claim.read_text())["state"] == "uncertain"


def test_ops_emails_stay_on_eml_without_the_connection(tmp_path):
    settings = Settings.from_env({"RECEIVABLES_HOME": str(tmp_path)})
    first = _fail(settings)
    assert first.status == "sent"
    assert first.location.endswith(".eml")
    assert _fail(settings).status == "duplicate"
    assert not (tmp_path / "outbox" / ".sent").exists()


# --- the connection, through Airflow -------------------------------------------------------------


def test_the_airflow_connection_configures_sendgrid(monkeypatch):
    """``sendgrid_default`` as Airflow resolves it (here from the environment, one of its
    lookups): password = key; host, port and schema = the base URL."""
    from receivables.airflow import context

    monkeypatch.delenv("AIRFLOW_CONN_SENDGRID_DEFAULT", raising=False)
    assert context.settings().sendgrid is None  # no connection: the .eml outbox
    monkeypatch.setenv(
        "AIRFLOW_CONN_SENDGRID_DEFAULT",
        json.dumps(
            {
                "conn_type": "generic",
                "password": API_KEY,
                "host": "127.0.0.1",
                "port": 4010,
                "schema": "http",
            }
        ),
    )
    assert context._airflow_sendgrid_config() == SendGridConfig(API_KEY, "http://127.0.0.1:4010")
    assert context.settings().sendgrid == SendGridConfig(API_KEY, "http://127.0.0.1:4010")


@pytest.mark.parametrize(
    ("field", "value", "violation"),
    [
        ("categories", [f"c{i}" for i in range(11)], "categories must NOT have more than 10"),
        ("categories", ["x" * 256], "must NOT have more than 255 characters"),
        ("custom_args", {"reminder_id": 42}, "custom_args.reminder_id must be string"),
        ("send_at", "tomorrow", "send_at must be integer"),
    ],
)
def test_the_contract_refuses_what_the_local_checks_refuse(sendgrid_mock, field, value, violation):
    """The checks made before sending (receivables.mail.check_email) guard real rules: posted
    anyway, such a request is refused by the contract."""
    from python_http_client.exceptions import BadRequestsError
    from sendgrid import SendGridAPIClient

    body = _transport(sendgrid_mock).request_body(_reminder())
    body[field] = value
    client = SendGridAPIClient(api_key=API_KEY, host=sendgrid_mock)
    with pytest.raises(BadRequestsError) as refused:
        client.client.mail.send.post(request_body=body)
    messages = [v["message"] for v in json.loads(refused.value.headers["sl-violations"])]
    assert any(violation in m for m in messages), messages
