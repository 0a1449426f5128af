"""Legal case files: everything about the case and the customer is gathered (both engines), the
case file and the demand letter come out as real PDFs in the right language with the claimed
amounts formatted for it, hostile names stay inert, a missing Chinese font is refused instead of
printing boxes, files are replaced whole, and the legal team's email carries both PDFs once."""

from __future__ import annotations

import dataclasses
import datetime as dt
import email
import io
import json
import re
from decimal import Decimal
from email import policy as email_policy
from pathlib import Path

import pytest
import sqlalchemy as sa
from babel.dates import format_date
from babel.numbers import format_currency

from receivables.collection.strategy import load_strategy
from receivables.config import Settings
from receivables.legal import casefile
from receivables.legal.casefile import (
    CASE_FILE_HTML,
    CASE_FILE_PDF,
    CJK_FONT_PACKAGE,
    LETTER_HTML,
    LETTER_PDF,
    PAYMENT_DEADLINE_DAYS,
    CaseFileError,
    CaseFileOutput,
    case_file_email,
    check_fonts,
    cjk_fonts,
    gather,
    render_documents,
    write_case_file,
)
from receivables.mail import EmlTransport, send_email_once
from receivables.text import has_unsafe_characters
from receivables.warehouse.schema import (
    collection_actions,
    credit_scores,
    customer_feedback,
    email_events,
    invoices,
    legal_case_events,
    legal_case_invoices,
    legal_cases,
    reminders,
)
from tests.collection_data import NOW, customer, invoice, load, promise

pytestmark = pytest.mark.unit

AS_OF = dt.date(2025, 7, 1)
OPENED = dt.date(2025, 6, 20)
CASE = "LC-2025-06-20-C001-CNY"
CHINESE_NAME = "上海示例贸易有限公司"
#: principal and interest of the two claimed invoices (as the selection wrote them)
CLAIMED = {
    "INV-1": (dt.date(2024, 12, 1), 201, Decimal("4000.00"), Decimal("84.84")),
    "INV-2": (dt.date(2025, 3, 15), 97, Decimal("8000.00"), Decimal("81.86")),
}
PRINCIPAL = Decimal("12000.00")
INTEREST = Decimal("166.70")
TOTAL = Decimal("12166.70")
RULES = [
    {"rule": "min_days_past_due", "passed": True, "detail": "201 days past due (at least 90)"},
    {"rule": "final_notice_sent", "passed": True, "detail": "final notice 2025-05-20, delivered"},
]
HOSTILE = '<script>alert(1)</script> =HYPERLINK("http://evil.example.com") \u202eevil\\x\x00z'

needs_cjk_font = pytest.mark.skipif(
    not cjk_fonts(),
    reason=f"no font covering Chinese (fc-list :lang=zh is empty): apt-get install "
    f"{CJK_FONT_PACKAGE}",
)


@pytest.fixture
def strategy():
    """The project's strategy: late interest at 3.85 %, the legal team's address."""
    return load_strategy()


def _utc(day: dt.date, hour: int) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour), tzinfo=dt.UTC)


def build(engine, name: str = "Acme Trading Ltd", locale: str = "en") -> None:
    """A customer escalated to a legal case: invoices (two claimed, one paid, one disputed),
    payments, 30 credit scores, reminders with their email events, an action, a promise, a
    dispute, the case with its invoices and steps; and some rows after AS_OF that the file must
    not show."""
    bills = [
        invoice("INV-1", "C001", CLAIMED["INV-1"][0], "5000.00", description="Steel coils"),
        invoice("INV-2", "C001", CLAIMED["INV-2"][0], "8000.00"),
        invoice("INV-3", "C001", dt.date(2025, 1, 20), "300.00"),
        invoice("INV-4", "C001", dt.date(2025, 4, 30), "700.00", disputed=True),
        invoice("INV-9", "C001", dt.date(2025, 8, 30), "999.00"),  # issued after AS_OF
        invoice("INV-X", "C002", dt.date(2024, 12, 1), "123.00"),  # another customer's
    ]
    paid = [
        {"payment_id": "P-1", "invoice_id": "INV-1", "paid_date": dt.date(2025, 1, 15),
         "amount": Decimal("1000.00"), "method": "bank_transfer"},
        {"payment_id": "P-2", "invoice_id": "INV-3", "paid_date": dt.date(2025, 1, 18),
         "amount": Decimal("300.00"), "method": "card"},
        {"payment_id": "P-3", "invoice_id": "INV-2", "paid_date": dt.date(2025, 7, 5),
         "amount": Decimal("50.00"), "method": "bank_transfer"},  # after AS_OF
    ]  # fmt: skip
    people = [
        customer(
            "C001",
            name=name,
            locale=locale,
            email="ap@acme.example.com; cfo@acme.example.com ;",
            phone="+86 21 5555 0101",
            segment="wholesale",
            credit_limit=Decimal("20000.00"),
            collector_id="COL-7",
        ),
        customer("C002", phone=None, segment=None, credit_limit=None),
    ]
    staff = [{"collector_id": "COL-7", "name": "Collector Seven", "email": "c7@ar.example.com"}]
    load(engine, people, bills, paid, staff)
    promise(engine, "C001", dt.date(2025, 3, 1), dt.date(2025, 3, 15))
    with engine.begin() as conn:
        conn.execute(
            credit_scores.insert(),
            [
                {
                    "as_of_date": dt.date(2023, 1, 1) + dt.timedelta(days=30 * i),
                    "customer_id": "C001",
                    "model_id": 1,
                    "score": 640.0 - 5 * i,
                    "pd": 0.01 * (i + 1),
                    "grade": "ABCDE"[min(i // 7, 4)],
                    "reasons": "test",
                }
                for i in range(32)  # the last ones fall after AS_OF
            ],
        )
        first = _reminder(conn, "first_reminder", dt.date(2025, 1, 2), "sent", sent=2)
        final = _reminder(conn, "final_notice", dt.date(2025, 5, 20), "sent", sent=2, legal=True)
        _reminder(conn, "second_reminder", dt.date(2025, 5, 1), "refused", rule="max_per_week")
        conn.execute(
            email_events.insert(),
            [
                _event("e1", "delivered", first, _utc(dt.date(2025, 1, 2), 2)),
                _event("e2", "delivered", final, _utc(dt.date(2025, 5, 20), 2)),
                _event("e3", "open", final, _utc(dt.date(2025, 5, 21), 1)),
                _event("e4", "click", final, _utc(dt.date(2025, 7, 2), 1)),  # after AS_OF
            ],
        )
        conn.execute(
            collection_actions.insert().values(
                planned_on=dt.date(2025, 5, 20),
                customer_id="C001",
                kind="call",
                cause="final_notice",
                detail="Call about the final notice",
                collector_id="COL-7",
                reminder_id=final,
                created_at=NOW,
            )
        )
        conn.execute(
            customer_feedback.insert(),
            [
                {
                    "customer_id": "C001",
                    "reminder_id": final,
                    "kind": "dispute",
                    "message": "Invoice INV-4 was delivered damaged",
                    "status": "open",
                    "received_at": _utc(dt.date(2025, 5, 22), 3),
                },
                {
                    "customer_id": "C001",
                    "reminder_id": None,
                    "kind": "feedback",
                    "message": "Too late to count",
                    "status": "open",
                    "received_at": _utc(dt.date(2025, 7, 1), 17),  # 2 July in Shanghai
                },
            ],
        )
        conn.execute(
            legal_cases.insert().values(
                case_id=CASE,
                customer_id="C001",
                opened_on=OPENED,
                amount=TOTAL,
                currency="CNY",
                status="approved",
                updated_on=dt.date(2025, 6, 22),
                principal=PRINCIPAL,
                interest=INTEREST,
                worst_days_past_due=201,
                rules=json.dumps(RULES),
                decided_by="reviewer-1",
                decided_at=_utc(dt.date(2025, 6, 22), 6),
                decision_note="Approved: no answer to the final notice",
                strategy_version="2026.12-2",
            )
        )
        conn.execute(
            legal_case_invoices.insert(),
            [
                {
                    "case_id": CASE,
                    "invoice_id": invoice_id,
                    "due_date": due,
                    "days_past_due": days,
                    "outstanding": outstanding,
                    "interest": interest,
                }
                for invoice_id, (due, days, outstanding, interest) in CLAIMED.items()
            ],
        )
        conn.execute(
            legal_case_events.insert(),
            [
                {"case_id": CASE, "status": "proposed", "occurred_on": OPENED,
                 "actor": "selection", "source": "selection", "note": None,
                 "recorded_at": NOW},
                {"case_id": CASE, "status": "approved", "occurred_on": dt.date(2025, 6, 22),
                 "actor": "reviewer-1", "source": "review", "note": "go ahead",
                 "recorded_at": NOW},
            ],
        )  # fmt: skip


def _reminder(conn, stage, day, status, sent=None, rule=None, legal=False) -> int:
    return conn.execute(
        reminders.insert().values(
            idempotency_key=f"C001/{stage}/{day}",
            planned_on=day,
            customer_id="C001",
            stage=stage,
            ladder="standard",
            status=status,
            rule=rule,
            reason="3 emails this week" if rule else None,
            locale="en",
            recipients="ap@acme.example.com",
            oldest_invoice_id="INV-1",
            days_past_due=(day - CLAIMED["INV-1"][0]).days,
            invoices=2,
            mentions_legal=legal,
            strategy_version="test",
            provider="sendgrid" if sent else None,
            provider_message_id=f"msg-{stage}" if sent else None,
            sent_at=_utc(day, sent) if sent else None,
            delivery_status="delivered" if sent else None,
            created_at=NOW,
            updated_at=NOW,
        )
    ).inserted_primary_key[0]


def _event(event_id, event, reminder_id, at) -> dict:
    return {
        "sg_event_id": event_id,
        "event": event,
        "email": "ap@acme.example.com",
        "occurred_at": at,
        "reminder_id": reminder_id,
        "payload": "{}",
        "received_at": at,
    }


def _gather(engine, strategy, as_of=AS_OF, case_id=CASE):
    with engine.connect() as conn:
        return gather(conn, case_id, as_of, strategy)


def _pdf_text(path: Path) -> str:
    """The PDF's text without any white space (a phrase may wrap onto the next line)."""
    from pypdf import PdfReader

    reader = PdfReader(io.BytesIO(path.read_bytes()))
    assert len(reader.pages) >= 1
    return _squeezed("".join(page.extract_text() for page in reader.pages))


def _squeezed(text: str) -> str:
    return re.sub(r"\s+", "", text)


def _money(amount: Decimal, locale: str) -> str:
    return format_currency(amount, "CNY", locale=locale)


# --- gathering ----------------------------------------------------------------------------------


def test_gather_returns_everything(engine, strategy):
    build(engine)
    found = _gather(engine, strategy)

    case = found.case
    assert (case.case_id, case.status, case.opened_on, case.currency) == (
        CASE,
        "approved",
        OPENED,
        "CNY",
    )
    assert (case.principal, case.interest, case.amount) == (PRINCIPAL, INTEREST, TOTAL)
    assert case.worst_days_past_due == 201
    assert [(r.rule, r.passed, r.detail) for r in case.rules] == [
        (r["rule"], r["passed"], r["detail"]) for r in RULES
    ]
    assert (case.decided_by, case.decision_note) == (
        "reviewer-1",
        "Approved: no answer to the final notice",
    )
    assert case.decided_at == _utc(dt.date(2025, 6, 22), 6)
    assert [(e.status, e.occurred_on, e.actor, e.note) for e in case.history] == [
        ("proposed", OPENED, "selection", None),
        ("approved", dt.date(2025, 6, 22), "reviewer-1", "go ahead"),
    ]

    person = found.customer
    assert (person.customer_id, person.name, person.segment, person.currency) == (
        "C001",
        "Acme Trading Ltd",
        "wholesale",
        "CNY",
    )
    assert person.credit_limit == Decimal("20000.00")
    assert (person.collector_id, person.collector_name) == ("COL-7", "Collector Seven")
    assert person.contacts.emails == ("ap@acme.example.com", "cfo@acme.example.com")
    assert (person.contacts.phone, person.contacts.locale, person.contacts.timezone) == (
        "+86 21 5555 0101",
        "en",
        "Asia/Shanghai",
    )

    # the latest 24 scores up to AS_OF, oldest first
    grades = found.credit_grades
    assert len(grades) == 24
    assert grades[-1].as_of_date == max(
        dt.date(2023, 1, 1) + dt.timedelta(days=30 * i)
        for i in range(32)
        if dt.date(2023, 1, 1) + dt.timedelta(days=30 * i) <= AS_OF
    )
    assert [g.as_of_date for g in grades] == sorted(g.as_of_date for g in grades)

    assert [
        (c.invoice_id, c.due_date, c.days_past_due, c.outstanding, c.interest)
        for c in found.claimed
    ] == [(k, *v) for k, v in CLAIMED.items()]
    assert found.claimed[0].issue_date == CLAIMED["INV-1"][0] - dt.timedelta(days=30)
    assert found.claimed[0].total == Decimal("4084.84")
    assert [(c.currency, c.principal, c.interest, c.total, c.invoices) for c in found.claims] == [
        ("CNY", PRINCIPAL, INTEREST, TOTAL, 2)
    ]
    assert found.late_interest_rate == Decimal("0.0385")
    assert {(b.bucket, b.outstanding, b.invoices) for b in found.aging} == {
        ("1-30", Decimal("0.00"), 0),
        ("31-60", Decimal("0.00"), 0),
        ("61-90", Decimal("0.00"), 0),
        ("91-180", Decimal("8000.00"), 1),
        ("181-360", Decimal("4000.00"), 1),
        ("361+", Decimal("0.00"), 0),
    }
    past_due = ["1-30", "31-60", "61-90", "91-180", "181-360", "361+"]
    assert [b.bucket for b in found.aging] == past_due

    ledger = {i.invoice_id: (i.amount, i.paid, i.outstanding, i.disputed) for i in found.invoices}
    assert ledger == {
        "INV-1": (Decimal("5000.00"), Decimal("1000.00"), Decimal("4000.00"), False),
        "INV-2": (Decimal("8000.00"), Decimal("0.00"), Decimal("8000.00"), False),
        "INV-3": (Decimal("300.00"), Decimal("300.00"), Decimal("0.00"), False),
        "INV-4": (Decimal("700.00"), Decimal("0.00"), Decimal("700.00"), True),
    }
    assert [(p.payment_id, p.amount, p.currency, p.method) for p in found.payments] == [
        ("P-1", Decimal("1000.00"), "CNY", "bank_transfer"),
        ("P-2", Decimal("300.00"), "CNY", "card"),
    ]

    sent = {r.stage: r for r in found.reminders}
    assert set(sent) == {"first_reminder", "second_reminder", "final_notice"}
    final = sent["final_notice"]
    assert (final.status, final.provider_message_id, final.delivery_status) == (
        "sent",
        "msg-final_notice",
        "delivered",
    )
    assert final.mentions_legal
    assert [e.event for e in final.events] == ["delivered", "open"]  # the click came later
    assert (sent["second_reminder"].status, sent["second_reminder"].rule) == (
        "refused",
        "max_per_week",
    )
    assert [(a.kind, a.cause, a.reminder_id) for a in found.actions] == [
        ("call", "final_notice", final.reminder_id)
    ]
    assert [(p.promised_on, p.pay_by) for p in found.promises] == [
        (dt.date(2025, 3, 1), dt.date(2025, 3, 15))
    ]
    assert [(f.kind, f.message) for f in found.feedback] == [
        ("dispute", "Invoice INV-4 was delivered damaged")
    ]

    history = found.contact_history
    assert [(e.on, e.kind) for e in history] == [
        (dt.date(2025, 1, 2), "reminder"),
        (dt.date(2025, 1, 2), "email_event"),
        (dt.date(2025, 3, 1), "promise"),
        (dt.date(2025, 5, 1), "reminder"),
        (dt.date(2025, 5, 20), "reminder"),
        (dt.date(2025, 5, 20), "email_event"),
        (dt.date(2025, 5, 20), "action"),
        (dt.date(2025, 5, 21), "email_event"),
        (dt.date(2025, 5, 22), "feedback"),
    ]
    assert found.case_file_locale == found.letter_locale == "en"


def test_gather_refuses_a_case_it_cannot_show_correctly(engine, strategy):
    build(engine)
    with pytest.raises(CaseFileError, match="no legal case LC-none"):
        _gather(engine, strategy, case_id="LC-none")
    with pytest.raises(CaseFileError, match="opened on 2025-06-20, after 2025-06-01"):
        _gather(engine, strategy, as_of=dt.date(2025, 6, 1))
    no_interest = strategy.model_copy(
        update={"legal": strategy.legal.model_copy(update={"late_interest": None})}
    )
    with pytest.raises(CaseFileError, match=r"no legal\.late_interest rate"):
        _gather(engine, no_interest)

    with engine.begin() as conn:
        conn.execute(
            sa.update(legal_cases)
            .where(legal_cases.c.case_id == CASE)
            .values(amount=TOTAL + Decimal("0.01"))
        )
    with pytest.raises(CaseFileError, match=f"case {CASE}: its amount 12166.71 CNY is not what"):
        _gather(engine, strategy)

    with engine.begin() as conn:
        conn.execute(sa.update(legal_cases).values(amount=TOTAL))
        conn.execute(
            legal_case_invoices.insert().values(
                case_id=CASE,
                invoice_id="INV-X",
                due_date=dt.date(2024, 12, 1),
                days_past_due=201,
                outstanding=Decimal("123.00"),
                interest=Decimal("0.00"),
            )
        )
    with pytest.raises(CaseFileError, match="INV-X is not an invoice of customer C001"):
        _gather(engine, strategy)


# --- the documents ------------------------------------------------------------------------------


def test_english_case_file_and_letter_are_real_pdfs(engine, strategy, tmp_path):
    build(engine)
    found = _gather(engine, strategy)
    folder = tmp_path / "legal" / CASE
    output = write_case_file(found, folder, strategy)

    assert {p.name for p in folder.iterdir()} == {
        CASE_FILE_HTML,
        CASE_FILE_PDF,
        LETTER_HTML,
        LETTER_PDF,
    }
    assert (output.case_file_locale, output.letter_locale) == ("en", "en")
    for path in (output.case_file_pdf, output.letter_pdf):
        assert path.read_bytes().startswith(b"%PDF-")

    case_text = _pdf_text(output.case_file_pdf)
    for expected in (
        CASE,
        "C001",
        "Acme Trading Ltd",
        _money(TOTAL, "en"),  # CN¥12,166.70
        _money(PRINCIPAL, "en"),
        _money(INTEREST, "en"),
        _money(Decimal("4084.84"), "en"),
        "Legal case file",
        "181-360",
        "min_days_past_due",
        "Invoice INV-4 was delivered damaged",
        "msg-final_notice",
    ):
        assert _squeezed(expected) in case_text, expected

    letter_text = _pdf_text(output.letter_pdf)
    deadline = format_date(
        AS_OF + dt.timedelta(days=PAYMENT_DEADLINE_DAYS), format="long", locale="en"
    )
    for expected in (
        "Formal demand for payment",
        "Acme Trading Ltd",
        "C001",
        "INV-1",
        "INV-2",
        _money(TOTAL, "en"),
        "3.85%",
        deadline,  # July 8, 2025
        strategy.payment.account,
        strategy.payment.beneficiary["en"],
        strategy.contact_details.team_email,
        "legal action",
    ):
        assert _squeezed(expected) in letter_text, expected
    # only what the case claims: neither the paid nor the disputed invoice
    assert "INV-3" not in letter_text
    assert "INV-4" not in letter_text
    assert "INV-3" in case_text  # the case file shows the whole ledger


@needs_cjk_font
def test_chinese_case_file_and_letter_print_chinese(engine, strategy, tmp_path):
    build(engine, name=CHINESE_NAME, locale="zh-CN")
    found = _gather(engine, strategy)
    output = write_case_file(found, tmp_path / CASE, strategy)
    assert (output.case_file_locale, output.letter_locale) == ("zh-CN", "zh-CN")

    total = _money(TOTAL, "zh_CN")  # ¥12,166.70
    case_text = _pdf_text(output.case_file_pdf)
    for expected in (CHINESE_NAME, "C001", CASE, "法律案件卷宗", total, "立案依据"):
        assert _squeezed(expected) in case_text, expected

    letter_text = _pdf_text(output.letter_pdf)
    deadline = format_date(
        AS_OF + dt.timedelta(days=PAYMENT_DEADLINE_DAYS), format="long", locale="zh_CN"
    )
    for expected in (
        "付款催告函",
        CHINESE_NAME,
        "C001",
        total,
        deadline,  # 2025年7月8日
        strategy.payment.beneficiary["zh-CN"],
        strategy.payment.bank["zh-CN"],
        "法律措施",
    ):
        assert _squeezed(expected) in letter_text, expected
    assert "Formal demand" not in letter_text


@needs_cjk_font
def test_a_chinese_name_in_an_english_file_is_printed(engine, strategy, tmp_path):
    build(engine, name=CHINESE_NAME, locale="en")
    output = write_case_file(_gather(engine, strategy), tmp_path / CASE, strategy)
    assert output.letter_locale == "en"
    assert CHINESE_NAME in _pdf_text(output.letter_pdf)
    assert CHINESE_NAME in _pdf_text(output.case_file_pdf)


def test_without_a_chinese_font_nothing_is_written(engine, strategy, tmp_path, monkeypatch):
    build(engine, name=CHINESE_NAME, locale="zh-CN")
    found = _gather(engine, strategy)
    monkeypatch.setattr(casefile, "cjk_fonts", list)
    with pytest.raises(CaseFileError) as refused:
        write_case_file(found, tmp_path / CASE, strategy)
    assert CJK_FONT_PACKAGE in refused.value.reason
    assert CASE in refused.value.reason
    assert CHINESE_NAME not in refused.value.reason
    assert not (tmp_path / CASE).exists()
    check_fonts(["Acme Trading Ltd", "CN¥12,166.70"], CASE)  # Latin text needs no CJK font


def test_hostile_names_stay_inert(engine, strategy):
    build(engine)
    found = _gather(engine, strategy)
    hostile = dataclasses.replace(
        found,
        customer=dataclasses.replace(found.customer, name=HOSTILE, segment="<b>x</b>"),
    )
    for html in render_documents(hostile, strategy):
        assert "<script>" not in html
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
        assert "<b>x</b>" not in html
        assert "\u202e" not in html
        assert "\x00" not in html
        # the formula is plain text: escaped quotes, never an attribute or a link
        assert "=HYPERLINK(&#34;http://evil.example.com&#34;)" in html
        assert 'href="http://evil.example.com' not in html
        assert "evil\\x z" in html  # the backslash kept; NUL and override made spaces


def test_a_time_barred_invoice_is_never_demanded(engine, strategy, tmp_path):
    build(engine)
    late = _gather(engine, strategy, as_of=dt.date(2027, 12, 2))  # INV-1 due 2024-12-01
    with pytest.raises(CaseFileError, match="INV-1 are past the limitation period"):
        write_case_file(late, tmp_path / CASE, strategy)
    assert not (tmp_path / CASE).exists()


def test_files_are_replaced_whole(engine, strategy, tmp_path, monkeypatch):
    build(engine)
    found = _gather(engine, strategy)
    folder = tmp_path / CASE
    first = write_case_file(found, folder, strategy)
    before = {p.name: p.read_bytes() for p in folder.iterdir()}

    real = casefile.pdf_from_html
    calls = []

    def crash_on_the_letter(html: str) -> bytes:
        calls.append(html)
        if len(calls) == 2:
            raise MemoryError("killed while rendering the letter")
        return real(html)

    monkeypatch.setattr(casefile, "pdf_from_html", crash_on_the_letter)
    changed = dataclasses.replace(found, as_of=dt.date(2025, 7, 2))
    with pytest.raises(MemoryError):
        write_case_file(changed, folder, strategy)
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before  # nothing half-new

    def broken_disk(path, data):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(casefile, "pdf_from_html", real)
    monkeypatch.setattr(casefile.os, "replace", broken_disk)
    with pytest.raises(OSError, match="No space left"):
        write_case_file(changed, folder, strategy)
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before  # no temporary left
    assert first.case_file_pdf.read_bytes() == before[CASE_FILE_PDF]


# --- the email ----------------------------------------------------------------------------------


def test_the_email_carries_both_pdfs_once(engine, strategy, tmp_path):
    build(engine)
    found = _gather(engine, strategy)
    output = write_case_file(found, tmp_path / "legal" / CASE, strategy)
    message = case_file_email(found, output, strategy.legal.recipients)

    assert message.key == f"legal-case/{CASE}"
    assert message.category == "legal"
    assert message.to == ("legal@receivables.example.com",)
    assert CASE in message.subject
    assert "C001" in message.subject
    assert _money(TOTAL, "en") in message.subject
    assert "Acme" not in message.subject  # names stay out of subjects
    assert "Acme Trading Ltd" in message.text

    outbox = EmlTransport(tmp_path / "outbox", "Receivables <ar@ar.example.com>")
    first = outbox.deliver(message)
    assert first.status == "sent"
    with open(first.location, "rb") as f:
        parsed = email.message_from_binary_file(f, policy=email_policy.default)
    files = {
        part.get_filename(): (part.get_content_type(), part.get_content())
        for part in parsed.iter_attachments()
    }
    assert files == {
        f"case-file-{CASE}.pdf": ("application/pdf", output.case_file_pdf.read_bytes()),
        f"demand-letter-{CASE}.pdf": ("application/pdf", output.letter_pdf.read_bytes()),
    }
    assert CASE in parsed.get_body(("plain",)).get_content()
    assert outbox.deliver(message).status == "duplicate"
    assert len(list((tmp_path / "outbox").glob("*.eml"))) == 1

    settings = Settings.from_env({"RECEIVABLES_HOME": str(tmp_path / "home")})
    assert send_email_once(settings, message).status == "sent"
    again = send_email_once(settings, message)
    assert again.status == "duplicate"
    assert len(list(settings.outbox_dir.glob("*.eml"))) == 1


@needs_cjk_font
def test_the_email_to_a_chinese_customers_team_is_in_chinese(engine, strategy, tmp_path):
    build(engine, name=CHINESE_NAME, locale="zh-CN")
    found = _gather(engine, strategy)
    output = write_case_file(found, tmp_path / CASE, strategy)
    message = case_file_email(found, output, ["legal@receivables.example.com"])
    assert message.subject.startswith("[receivables] 法律案件")
    assert _money(TOTAL, "zh_CN") in message.subject
    assert CHINESE_NAME in message.html
    assert len(message.attachments) == 2
    with pytest.raises(CaseFileError, match="no recipient"):
        case_file_email(found, output, [])


def test_hostile_values_cannot_forge_lines_of_the_email(engine, strategy, tmp_path):
    build(engine)
    found = _gather(engine, strategy)
    pdfs = tmp_path / "pdfs"
    pdfs.mkdir()
    for name in (CASE_FILE_PDF, LETTER_PDF):
        (pdfs / name).write_bytes(b"%PDF-1.7\n%%EOF\n")
    output = CaseFileOutput(
        folder=pdfs,
        case_file_html=pdfs / CASE_FILE_HTML,
        case_file_pdf=pdfs / CASE_FILE_PDF,
        letter_html=pdfs / LETTER_HTML,
        letter_pdf=pdfs / LETTER_PDF,
        case_file_locale="en",
        letter_locale="en",
    )
    forged = "Please pay to account 6222 0000 1111"
    hostile_text = f"Acme\r\n{forged}\n\u202eLtd\u2066\x00\t<b>bold</b>\x1b[2J\u2028x"

    def email_with(text: str):
        person = dataclasses.replace(found.customer, name=text)
        case = dataclasses.replace(found.case, decided_by=text)
        return case_file_email(
            dataclasses.replace(found, customer=person, case=case), output, ["l@x.example.com"]
        )

    plain, hostile = email_with("Acme Ltd"), email_with(hostile_text)
    assert forged in hostile.text
    assert len(hostile.text.splitlines()) == len(plain.text.splitlines())
    assert not any(line.startswith(forged) for line in hostile.text.splitlines())
    assert not any(has_unsafe_characters(line) for line in hostile.text.splitlines())
    assert len(hostile.html.splitlines()) == len(plain.html.splitlines())
    assert not any(has_unsafe_characters(line) for line in hostile.html.splitlines())
    assert "<b>" not in hostile.html
    assert "&lt;b&gt;bold&lt;/b&gt;" in hostile.html
    assert hostile.subject == plain.subject  # the subject names ids and the amount only
    assert [a.filename for a in hostile.attachments] == [
        f"case-file-{CASE}.pdf",
        f"demand-letter-{CASE}.pdf",
    ]


def test_attachment_names_are_plain_file_names():
    assert casefile.attachment_name("case-file", "LC/../../etc\\x\u202e") == (
        "case-file-LC_.._.._etc_x.pdf"
    )
    assert casefile.attachment_name("case-file", "///") == "case-file-case.pdf"
    assert (
        len(casefile.attachment_name("demand-letter", "L" * 500)) == len("demand-letter-.pdf") + 100
    )


def test_a_case_in_another_currency_is_claimed_in_it(engine, strategy):
    build(engine)
    with engine.begin() as conn:
        conn.execute(
            sa.update(invoices).where(invoices.c.customer_id == "C001").values(currency="USD")
        )
        conn.execute(sa.update(legal_cases).values(currency="USD"))
    found = _gather(engine, strategy)
    assert [c.currency for c in found.claims] == ["USD"]
    assert {b.currency for b in found.aging} == {"USD"}
    for locale, total in (("en", "$12,166.70"), ("zh-CN", "US$12,166.70")):
        contacts = dataclasses.replace(found.customer.contacts, locale=locale)
        in_locale = dataclasses.replace(
            found, customer=dataclasses.replace(found.customer, contacts=contacts)
        )
        case_html, letter_html = render_documents(in_locale, strategy)
        assert total == format_currency(TOTAL, "USD", locale=locale.replace("-", "_"))
        assert total in letter_html
        assert total in case_html
        assert "CN¥" not in letter_html
        assert "¥" not in letter_html
