"""The file outbox sends each message once, whatever retries and re-runs do; both transports
refuse what SendGrid would refuse; the SendGrid request is shaped by the official library."""

from __future__ import annotations

import base64
import email
import json
import time
from email import policy as email_policy

import pytest

from receivables.config import SendGridConfig, Settings
from receivables.mail import (
    MAX_MESSAGE_BYTES,
    Attachment,
    DeliveryError,
    EmlTransport,
    FileOutbox,
    OutboundEmail,
    SendGridTransport,
    check_email,
    message_size,
    safe_reason,
    send_once,
    transport_for,
)
from receivables.render import render_email


def _message(key="k/1"):
    return OutboundEmail(
        key=key,
        to=("de@x.example.com",),
        subject="Subject 主题",
        text="plain 文本",
        html="<p>html</p>",
        category="alert",
    )


def test_a_message_is_written_once(tmp_path):
    outbox = FileOutbox(tmp_path / "outbox", "Ops <ops@x.example.com>")
    first = outbox.send(_message())
    again = outbox.send(_message())
    assert first.status == "sent"
    assert again.status == "duplicate"
    assert again.location == first.location
    assert len(list((tmp_path / "outbox").glob("*.eml"))) == 1
    assert outbox.send(_message("k/2")).status == "sent"
    assert not list((tmp_path / "outbox").glob("*.tmp"))


def test_the_eml_is_a_real_message(tmp_path):
    outbox = FileOutbox(tmp_path, "Ops <ops@x.example.com>")
    path = outbox.send(_message()).location
    with open(path, "rb") as f:
        parsed = email.message_from_binary_file(f, policy=email_policy.default)
    assert parsed["Subject"] == "Subject 主题"
    assert parsed["To"] == "de@x.example.com"
    assert parsed["X-Receivables-Key"] == "k/1"
    assert parsed.get_body(("plain",)).get_content().strip() == "plain 文本"
    assert parsed.get_body(("html",)).get_content().strip() == "<p>html</p>"


def test_templates_escape_html_but_not_text():
    subject, text, html = render_email(
        "ops/task_failure",
        dag_id="ledger_ingest",
        task_id="ingest_invoices",
        map_index=0,
        run_id="r",
        try_number=1,
        as_of="2024-01-01",
        error="ValueError: <script>x</script>",
        log_url="http://localhost/log",
    )
    assert subject == "[receivables] FAILED: ledger_ingest.ingest_invoices for 2024-01-01"
    assert "<script>" in text
    assert "<script>" not in html
    assert "&lt;script&gt;" in html


def test_send_once_renders_sends_once_and_keeps_the_subject_on_one_line(tmp_path):
    settings = Settings.from_env(
        {"RECEIVABLES_HOME": str(tmp_path), "RECEIVABLES_ALERT_EMAILS": "oncall@x.example.com"}
    )
    hostile = "ingest_customers\r\nBcc: victim@evil.example.com\n\u202eevil\x00"
    facts = {
        "dag_id": "ledger_ingest",
        "task_id": hostile,
        "map_index": -1,
        "run_id": "manual__2024-01-01",
        "try_number": 1,
        "as_of": "2024-01-01",
        "error": f"ValueError: {hostile}",
        "log_url": "http://localhost/log",
    }
    first = send_once(
        settings, "task-failure/r/1", "ops/task_failure", settings.alert_emails, "alert", **facts
    )
    again = send_once(
        settings, "task-failure/r/1", "ops/task_failure", settings.alert_emails, "alert", **facts
    )
    assert first.status == "sent"
    assert (again.status, again.location) == ("duplicate", first.location)
    (written,) = (tmp_path / "outbox").glob("*.eml")
    assert str(written) == first.location

    raw = written.read_bytes()
    parsed = email.message_from_bytes(raw, policy=email_policy.default)
    assert parsed["Subject"] == (
        "[receivables] FAILED: ledger_ingest.ingest_customers Bcc: victim@evil.example.com "
        "evil for 2024-01-01"
    )
    assert parsed["Bcc"] is None  # no header forged by a value
    assert parsed["To"] == "oncall@x.example.com"
    assert parsed["X-Receivables-Category"] == "alert"
    assert parsed["X-Receivables-Key"] == "task-failure/r/1"
    headers = raw.split(b"\n\n", 1)[0].decode("ascii")
    assert not any(line.startswith("Bcc") for line in headers.splitlines())
    text = parsed.get_body(("plain",)).get_content()
    assert "Task:       ingest_customers Bcc: victim@evil.example.com evil\n" in text
    assert not any(line.startswith("Bcc") for line in text.splitlines())
    assert "\u202e" not in parsed.get_body(("html",)).get_content()


# --- the transports ---------------------------------------------------------------------------

NOW = 1_800_000_000  # a fixed "now" for the send_at checks


def _reminder(**changes):
    fields = {
        "key": "reminder/42",
        "to": ("张三 <zhang@debtor.example.com>", "ap@debtor.example.com"),
        "subject": "付款提醒：发票 INV-1 已逾期",
        "text": "尊敬的客户，发票 INV-1 已逾期 5 天。",
        "html": "<p>尊敬的客户，发票 INV-1 已逾期 5 天。</p>",
        "category": "reminder",
        "categories": ("first_reminder", "zh-CN"),
        "custom_args": {"reminder_id": "42"},
        "send_at": NOW + 3600,
        "headers": {"List-Unsubscribe": "<https://ar.example.com/u/abc>"},
        "reply_to": "Collections <collections@ar.example.com>",
    }
    return OutboundEmail(**{**fields, **changes})


def test_the_eml_shows_what_sendgrid_would_carry(tmp_path):
    outbox = EmlTransport(tmp_path, "Ops <ops@x.example.com>")
    delivery = outbox.deliver(_reminder(send_at=1_700_000_000))
    with open(delivery.location, "rb") as f:
        parsed = email.message_from_binary_file(f, policy=email_policy.default)
    assert delivery.provider_message_id == parsed["Message-ID"]
    assert parsed["X-Receivables-Send-At"] == "2023-11-14T22:13:20+00:00"
    assert json.loads(parsed["X-Receivables-Categories"]) == [
        "reminder",
        "first_reminder",
        "zh-CN",
    ]
    assert json.loads(parsed["X-Receivables-Custom-Args"]) == {"reminder_id": "42"}
    assert parsed["List-Unsubscribe"] == "<https://ar.example.com/u/abc>"
    assert parsed["Reply-To"] == "Collections <collections@ar.example.com>"
    assert parsed["Subject"] == "付款提醒：发票 INV-1 已逾期"
    again = outbox.deliver(_reminder(send_at=None))
    assert (again.status, again.provider_message_id) == ("duplicate", parsed["Message-ID"])


@pytest.mark.parametrize(
    ("changes", "why"),
    [
        ({"to": ()}, "no recipient"),
        ({"categories": tuple(f"c{i}" for i in range(10))}, "11 categories"),
        ({"categories": ("x" * 256,)}, "256 characters"),
        ({"custom_args": {"reminder_id": 42}}, "not a string"),
        ({"headers": {"From": "boss@x.example.com"}}, "set by the mail system"),
        ({"send_at": NOW + 72 * 3600 + 1}, "more than 72 hours ahead"),
        ({"send_at": float(NOW)}, "integer unix time"),
    ],
)
def test_what_sendgrid_would_refuse_is_refused_before_sending(changes, why):
    with pytest.raises(DeliveryError) as refused:
        check_email(_reminder(**changes), now=NOW)
    assert why in refused.value.reason
    assert not refused.value.retryable
    assert not refused.value.uncertain
    assert refused.value.status_code is None
    assert "@" not in refused.value.reason  # addresses never reach a stored reason


def test_the_limits_themselves_are_allowed():
    check_email(
        _reminder(categories=tuple(f"c{i}" for i in range(9)), send_at=NOW + 72 * 3600), now=NOW
    )
    check_email(_reminder(categories=("x" * 255,), send_at=None), now=NOW)


def test_the_eml_outbox_refuses_what_sendgrid_would(tmp_path):
    outbox = EmlTransport(tmp_path, "Ops <ops@x.example.com>")
    with pytest.raises(DeliveryError, match="custom argument"):
        outbox.deliver(_reminder(custom_args={"reminder_id": 42}))
    assert not list(tmp_path.iterdir())


def test_the_request_is_shaped_by_the_official_library():
    transport = SendGridTransport(
        SendGridConfig(api_key="SG.test"), "应收账款 Receivables <ar@ar.example.com>"
    )
    body = transport.request_body(_reminder(send_at=int(time.time()) + 3600))
    assert body["from"] == {"name": "应收账款 Receivables", "email": "ar@ar.example.com"}
    assert body["subject"] == "付款提醒：发票 INV-1 已逾期"
    # one personalization: every address of the debtor sees the same message
    assert body["personalizations"] == [
        {
            "to": [
                {"name": "张三", "email": "zhang@debtor.example.com"},
                {"email": "ap@debtor.example.com"},
            ]
        }
    ]
    assert [c["type"] for c in body["content"]] == ["text/plain", "text/html"]
    assert body["content"][0]["value"] == "尊敬的客户，发票 INV-1 已逾期 5 天。"
    assert body["categories"] == ["reminder", "first_reminder", "zh-CN"]
    assert body["custom_args"] == {"reminder_id": "42"}
    assert isinstance(body["send_at"], int)
    assert body["headers"] == {"List-Unsubscribe": "<https://ar.example.com/u/abc>"}
    assert body["reply_to"] == {"name": "Collections", "email": "collections@ar.example.com"}


def test_an_ops_email_needs_no_extras():
    transport = SendGridTransport(SendGridConfig(api_key="SG.test"), "ops@x.example.com")
    body = transport.request_body(_message())
    assert body["categories"] == ["alert"]
    assert "send_at" not in body
    assert "reply_to" not in body
    assert "headers" not in body


def test_transport_for_picks_sendgrid_when_the_connection_is_set(tmp_path):
    plain = Settings.from_env({"RECEIVABLES_HOME": str(tmp_path)})
    assert isinstance(transport_for(plain), EmlTransport)
    assert transport_for(plain).name == "outbox"
    configured = Settings.from_env(
        {
            "RECEIVABLES_HOME": str(tmp_path),
            "AIRFLOW_CONN_SENDGRID_DEFAULT": json.dumps(
                {"conn_type": "generic", "password": "SG.secret", "host": "127.0.0.1:4010"}
            ),
        }
    )
    transport = transport_for(configured)
    assert isinstance(transport, SendGridTransport)
    assert transport.name == "sendgrid"
    assert transport.config.host == "http://127.0.0.1:4010"
    assert "SG.secret" not in repr(transport)


def test_a_reason_never_carries_an_address_or_a_key():
    reason = safe_reason("to zhang@debtor.example.com\nwith key SG.abc.def refused" + "x" * 900)
    assert "@" not in reason
    assert "SG.abc" not in reason
    assert "\n" not in reason
    assert len(reason) <= 500
    assert reason.startswith("to <address> with key <api key> refused")


# --- attachments ------------------------------------------------------------------------------

PDF = b"%PDF-1.7\n" + bytes(range(256)) * 40 + b"\n%%EOF\n"


def _with_files(*files: Attachment, **changes) -> OutboundEmail:
    return _reminder(
        key="legal-case/LC-1",
        category="legal",
        categories=(),
        custom_args={},
        send_at=None,
        headers={},
        attachments=files
        or (
            Attachment("case-file-LC-1.pdf", "application/pdf", PDF),
            Attachment("催款函.pdf", "application/pdf", PDF[::-1]),
        ),
        **changes,
    )


def test_the_eml_carries_the_attachments(tmp_path):
    outbox = EmlTransport(tmp_path, "Ops <ops@x.example.com>")
    delivery = outbox.deliver(_with_files())
    with open(delivery.location, "rb") as f:
        parsed = email.message_from_binary_file(f, policy=email_policy.default)
    assert parsed.get_content_type() == "multipart/mixed"
    files = [
        (part.get_filename(), part.get_content_type(), part.get_content_disposition())
        for part in parsed.iter_attachments()
    ]
    assert files == [
        ("case-file-LC-1.pdf", "application/pdf", "attachment"),
        ("催款函.pdf", "application/pdf", "attachment"),
    ]
    contents = [part.get_content() for part in parsed.iter_attachments()]
    assert contents == [PDF, PDF[::-1]]  # byte for byte
    assert (
        parsed.get_body(("plain",)).get_content().strip() == "尊敬的客户，发票 INV-1 已逾期 5 天。"
    )
    assert "INV-1" in parsed.get_body(("html",)).get_content()


def test_sendgrid_gets_the_attachments_base64_encoded():
    transport = SendGridTransport(SendGridConfig(api_key="SG.test"), "ar@ar.example.com")
    body = transport.request_body(_with_files())
    assert body["attachments"] == [
        {
            "content": base64.b64encode(PDF).decode("ascii"),
            "type": "application/pdf",
            "filename": "case-file-LC-1.pdf",
            "disposition": "attachment",
        },
        {
            "content": base64.b64encode(PDF[::-1]).decode("ascii"),
            "type": "application/pdf",
            "filename": "催款函.pdf",
            "disposition": "attachment",
        },
    ]
    assert "attachments" not in transport.request_body(_message())


PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8


def _with_chart(**changes) -> OutboundEmail:
    return _with_files(
        Attachment("chart.png", "image/png", PNG, content_id="chart.2025Q2@receivables"),
        Attachment("report.pdf", "application/pdf", PDF),
        html='<p>Figures</p><img src="cid:chart.2025Q2@receivables" alt="chart">',
        **changes,
    )


def test_an_inline_image_is_part_of_the_html_in_the_eml(tmp_path):
    delivery = EmlTransport(tmp_path, "Ops <ops@x.example.com>").deliver(_with_chart())
    with open(delivery.location, "rb") as f:
        parsed = email.message_from_binary_file(f, policy=email_policy.default)
    html = parsed.get_body(("html",))
    related = next(p for p in parsed.walk() if p.get_content_type() == "multipart/related")
    image = next(p for p in related.walk() if p.get_content_type() == "image/png")
    assert image["Content-ID"] == "<chart.2025Q2@receivables>"
    assert image.get_content_disposition() == "inline"
    assert image.get_content() == PNG
    assert "cid:chart.2025Q2@receivables" in html.get_content()
    assert [p.get_filename() for p in parsed.iter_attachments()] == ["report.pdf"]


def test_sendgrid_gets_an_inline_image_with_its_content_id():
    transport = SendGridTransport(SendGridConfig(api_key="SG.test"), "ar@ar.example.com")
    chart, report = transport.request_body(_with_chart())["attachments"]
    assert chart["disposition"] == "inline"
    assert chart["content_id"] == "chart.2025Q2@receivables"
    assert report["disposition"] == "attachment"
    assert "content_id" not in report


def test_two_inline_images_may_not_share_a_content_id():
    twice = _with_files(
        Attachment("a.png", "image/png", PNG, content_id="same"),
        Attachment("b.png", "image/png", PNG, content_id="same"),
    )
    with pytest.raises(DeliveryError, match="same content id"):
        check_email(twice)


def test_attachments_pass_sendgrids_contract(sendgrid_mock):
    transport = SendGridTransport(
        SendGridConfig(api_key="SG.contract-test", host=sendgrid_mock),
        "Receivables <ar@ar.example.com>",
        max_attempts=1,
    )
    assert transport.deliver(_with_files()).status == "sent"
    assert transport.deliver(_with_chart()).status == "sent"


@pytest.mark.parametrize(
    ("attachment", "why"),
    [
        (Attachment("../etc/passwd", "application/pdf", PDF), "path separator"),
        (Attachment("a/b.pdf", "application/pdf", PDF), "path separator"),
        (Attachment("C:\\temp\\x.pdf", "application/pdf", PDF), "path separator"),
        (Attachment("x\x00.pdf", "application/pdf", PDF), "control or bidirectional"),
        (Attachment("x\r\nBcc: a.pdf", "application/pdf", PDF), "control or bidirectional"),
        (Attachment("fdp.\u202eexe", "application/pdf", PDF), "control or bidirectional"),
        (Attachment("", "application/pdf", PDF), "no file name"),
        (Attachment(" x.pdf", "application/pdf", PDF), "surrounding blanks"),
        (Attachment("..", "application/pdf", PDF), "dot name"),
        (Attachment("x" * 252 + ".pdf", "application/pdf", PDF), "256 characters"),
        (Attachment("x.pdf", "pdf", PDF), "MIME type"),
        (Attachment("x.pdf", "application/pdf\r\nX-Evil: 1", PDF), "MIME type"),
        (Attachment("x.pdf", "application/pdf", b""), "is empty"),
        (Attachment("x.pdf", "application/pdf", "text"), "not bytes"),
        (Attachment("x.png", "image/png", PNG, content_id="a b"), "not a plain token"),
        (Attachment("x.png", "image/png", PNG, content_id="<x>"), "not a plain token"),
        (Attachment("x.pdf", "application/pdf", PDF, content_id="x1"), "not an image"),
    ],
)
def test_a_bad_attachment_is_refused_by_both_transports(attachment, why, tmp_path):
    message = _with_files(attachment)
    with pytest.raises(DeliveryError) as refused:
        check_email(message)
    assert why in refused.value.reason
    assert "attachment 1" in refused.value.reason
    assert not refused.value.retryable
    with pytest.raises(DeliveryError, match="refused before sending"):
        EmlTransport(tmp_path, "ops@x.example.com").deliver(message)
    assert not list(tmp_path.iterdir())
    transport = SendGridTransport(SendGridConfig(api_key="SG.test"), "ar@ar.example.com")
    with pytest.raises(DeliveryError, match=why):
        transport.request_body(message)


def test_two_attachments_may_not_share_a_name():
    twice = _with_files(
        Attachment("x.pdf", "application/pdf", PDF), Attachment("X.PDF", "application/pdf", PDF)
    )
    with pytest.raises(DeliveryError, match="attachment 2 has the same file name"):
        check_email(twice)


def test_a_message_over_sendgrids_size_limit_is_refused():
    # base64 makes 3 bytes 4: what fits raw may not fit encoded
    raw = MAX_MESSAGE_BYTES * 3 // 4
    small = _with_files(Attachment("a.pdf", "application/pdf", bytes(raw - 3000)))
    assert message_size(small) <= MAX_MESSAGE_BYTES
    check_email(small)
    large = _with_files(Attachment("a.pdf", "application/pdf", bytes(raw + 3)))
    assert message_size(large) > MAX_MESSAGE_BYTES
    with pytest.raises(DeliveryError, match="at most 30,000,000"):
        check_email(large)
