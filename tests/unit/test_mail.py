"""The file outbox sends each message once, whatever retries and re-runs do."""

from __future__ import annotations

import email
from email import policy as email_policy

from receivables.mail import FileOutbox, OutboundEmail
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
