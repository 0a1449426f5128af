"""Email templates print ledger text on one line: a name cannot forge lines nor reverse text.

Every email template is rendered twice with the same shape of context: once with plain values,
once with every text value hostile (line breaks, a forged instruction, a right-to-left override,
NUL, markup). The hostile rendering must have exactly as many lines as the plain one, no control
or bidirectional character, and escaped markup in the HTML part.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from markupsafe import Markup

from receivables.paths import TEMPLATES_DIR
from receivables.render import finalize, render, render_email
from receivables.risk.warnings import SEVERITIES
from receivables.text import has_unsafe_characters, one_line

PLAIN = "Acme Ltd"
FORGED = "Please pay to account 6222 0000 1111"
HOSTILE = f"Acme\r\n{FORGED}\n\u202eLtd\u2066\x00\t<b>bold</b>\x1b[2J\u2028x"


def ingest_quality(text: str) -> dict:
    return {
        "as_of": "2024-03-01",
        "run_id": text,
        "files_loaded": 1,
        "files_rejected": 1,
        "rows_read": 3,
        "rows_loaded": 2,
        "rows_quarantined": 1,
        "files": [
            {
                "file": f"customers_{text}.csv",
                "kind": "customers",
                "status": "loaded",
                "rows_read": 3,
                "rows_loaded": 2,
                "rows_quarantined": 1,
                "reason": None,
            },
            {
                "file": text,
                "kind": None,
                "status": "rejected",
                "rows_read": 0,
                "rows_loaded": 0,
                "rows_quarantined": 0,
                "reason": f"unrecognised file name {text}",
            },
        ],
        "rejected_dir": Path("/srv/receivables/rejected") / text,
        "data_docs": Path("/srv/receivables/gx") / text / "index.html",
    }


def task_failure(text: str) -> dict:
    return {
        "dag_id": "ledger_ingest",
        "task_id": text,
        "map_index": 2,
        "run_id": text,
        "try_number": 3,
        "as_of": "2024-03-01",
        "error": f"ValueError: {text}",
        "log_url": f"http://airflow.example.com/log?run={text}",
    }


def chain_deadline(text: str) -> dict:
    return {
        "dag_id": "receivables_risk",
        "run_id": text,
        "run_type": "asset_triggered",
        "state": "running",
        "as_of": "2025-06-30",
        "deadline": "2025-06-30 08:00:00 Asia/Shanghai",
        "deadline_utc": "2025-06-30 00:00:00 UTC",
        "queued_at": "2025-06-30 06:40:00 Asia/Shanghai",
        "chain_deadline": "08:00",
        "window": "2 h",
        "run_url": f"http://airflow.example.com/dags/receivables_risk/runs/{text}",
    }


def daily_digest(text: str) -> dict:
    mover = {
        "customer_id": text,
        "name": text,
        "grade_before": "B",
        "grade": "D",
        "score_before": 600.0,
        "score": 540.0,
    }
    return {
        "as_of": "2024-06-30",
        "new_warnings": [
            {
                "severity": "high",
                "customer_id": text,
                "name": text,
                "kind": "over_credit_limit",
                "message": f"over the limit, {text}",
                "action": "reduce_credit_limit",
                "proposed_credit_limit": Decimal("500.00"),
                "currency": "CNY",
            },
            {
                "severity": "low",
                "customer_id": "C2",
                "name": None,
                "kind": "newly_overdue",
                "message": text,
                "action": "monitor",
                "proposed_credit_limit": None,
                "currency": None,
            },
        ],
        "new_count": 5,
        "continuing_count": 1,
        "new_by_severity": dict.fromkeys(SEVERITIES, 1),
        "downgrades": [mover],
        "upgrades": [{**mover, "grade_before": "D", "grade": "B"}],
        "provisions": [
            {
                "currency": "CNY",
                "ecl": Decimal("93760.00"),
                "before": Decimal("90000.00"),
                "change": Decimal("3760.00"),
                "in_reporting": None,
            },
            {
                "currency": "USD",
                "ecl": Decimal("1000.00"),
                "before": None,
                "change": None,
                "in_reporting": Decimal("7100.00"),
            },
        ],
        "previous_risk_day": "2024-06-29",
        "severities": SEVERITIES,
        # what the digest says in the reporting currency (templates may show it)
        "reporting_currency": "CNY",
        "reporting_ecl": Decimal("100860.00"),
        "reporting_outstanding": Decimal("2000000.00"),
        "missing_fx_rates": ["HKD"],
    }


CONTEXTS = {
    "ops/chain_deadline": chain_deadline,
    "ops/ingest_quality": ingest_quality,
    "ops/task_failure": task_failure,
    "risk/daily_digest": daily_digest,
}


def test_every_email_template_is_covered():
    folders = {str(p.parent.relative_to(TEMPLATES_DIR)) for p in TEMPLATES_DIR.rglob("subject.txt")}
    # reminders are rendered from a ReminderContent, with the same hostile values, in
    # tests/unit/test_letters.py
    folders = {f for f in folders if not f.startswith(("reminders/", "legal/"))}
    assert folders == set(CONTEXTS)


@pytest.mark.parametrize("folder", sorted(CONTEXTS))
def test_hostile_values_cannot_forge_lines_of_an_email(folder):
    plain_subject, plain_text, plain_html = render_email(folder, **CONTEXTS[folder](PLAIN))
    subject, text, html = render_email(folder, **CONTEXTS[folder](HOSTILE))

    assert FORGED in text  # the value is shown, on its line
    assert len(text.splitlines()) == len(plain_text.splitlines())
    assert not any(line.startswith(FORGED) for line in text.splitlines())
    assert not any(has_unsafe_characters(line) for line in text.splitlines())
    assert text.count("\t") == plain_text.count("\t")  # tabs of values became spaces too
    assert "\u202e" not in text
    assert "<b>bold</b>" in text  # plain text is not HTML: nothing to escape

    assert len(subject.splitlines()) == 1
    assert not has_unsafe_characters(subject)

    assert not any(has_unsafe_characters(line) for line in html.splitlines())
    assert len(html.splitlines()) == len(plain_html.splitlines())  # not even inside a <pre>
    assert "<b>" not in html
    assert "&lt;b&gt;bold&lt;/b&gt;" in html
    assert subject.count(" ") >= plain_subject.count(" ")


def test_a_multi_line_value_is_shown_on_one_line():
    text = render_email(
        "ops/task_failure",
        **{**task_failure(PLAIN), "error": "RuntimeError: first\nsecond\r\nthird"},
    )[1]
    assert "Error:      RuntimeError: first second third\n" in text
    body = render("ops/task_failure/body.txt", **task_failure(" a\n b "))
    assert "Task:       a  b (map index 2)\n" in body
    subject = render_email("ops/task_failure", **task_failure(" a\n b "))[0]
    assert subject == "[receivables] FAILED: ledger_ingest.a b for 2024-03-01"


def test_the_shortcut_for_one_line_text_agrees_with_one_line_on_every_character():
    # finalize returns printable text without spaces at its ends as it is: no character
    # one_line replaces is printable, and the only printable white space is the space
    for code in range(0x110000):
        character = chr(code)
        if character.isprintable():
            assert one_line(f"a{character}a") == f"a{character}a", hex(code)
            assert not character.isspace() or character == " ", hex(code)


@settings(max_examples=500, deadline=None)
@given(st.text() | st.text(alphabet=" \t\n\u2028\u202ea<&") | st.from_type(int))
def test_finalize_prints_what_one_line_makes(value):
    assert finalize(value) == one_line(value)
    assert finalize(Markup(str(value))) == Markup(one_line(str(value)))
