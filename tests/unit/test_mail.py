"""The file outbox sends each message once, whatever retries and re-runs do."""

from __future__ import annotations

import email
from email import policy as email_policy

from receivables.config import Settings
from receivables.mail import FileOutbox, OutboundEmail, send_once
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
