"""Case files: what the legal team receives once a legal case is approved.

Three steps, each usable on its own:

* :func:`gather` reads, in a dozen queries, everything the file shows into a frozen
  :class:`CaseFile`: the case (amounts, the selection rules' results, the decision, its
  history), the customer (identity, contacts, credit grades), the invoices claimed and the aging
  they stood in at escalation, the customer's invoices and payments, and the complete contact
  history (reminders with their email events, collectors' actions, promises to pay, what the
  customer told us). The case's own history is shown whole; the customer's ledger and contacts
  as they stood on ``as_of``.
* :func:`write_case_file` writes ``case-file.html`` / ``case-file.pdf`` for the legal team and
  ``demand-letter.html`` / ``demand-letter.pdf``, the formal demand to the customer, into the
  case's folder. Each file is written whole or not at all (a temporary file renamed into
  place), and no file name carries customer data.
* :func:`case_file_email` makes the email to the legal team that carries both PDFs; its key
  (``legal-case/<case id>``) lets the email layer send it at most once.

Languages. The demand letter is in the customer's own language (``en`` or ``zh-CN``). The case
file is in the language of the proceedings: Chinese for a customer who reads Chinese (its
documents, court and lawyers will be Chinese, and the letter the file accompanies is Chinese),
English otherwise. One language per file keeps it short and the two documents of a case in the
same words; a bilingual file would double every table for no reader.

Every amount and date is formatted for the document's locale with Babel (amounts stay
``Decimal`` end to end); the templates (``include/templates/legal/<locale>/``) go through the
project's template environment, which escapes HTML and prints every value on one line, so a
customer name cannot add markup, forge a line or reverse what a reader sees. The PDFs come from
that HTML through WeasyPrint, which is refused every external resource. Text in Chinese (a
zh-CN document, or a Chinese name in an English one) needs a font covering Chinese: without one
the PDF would print empty boxes, so :class:`CaseFileError` is raised instead, naming the Debian
package to install (:data:`CJK_FONT_PACKAGE`).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import jinja2
import sqlalchemy as sa
from babel import Locale
from babel.dates import format_date, format_time
from babel.numbers import format_currency, format_decimal, format_percent
from sqlalchemy.engine import Connection

from receivables.aging import band_for
from receivables.collection.compliance import customer_timezone, time_barred
from receivables.collection.letters import BABEL_LOCALES
from receivables.collection.strategy import Strategy
from receivables.config import DEFAULT_BUCKETS, DEFAULT_TIMEZONE, Band
from receivables.documents import CJK_FONT_PACKAGE, cjk_fonts, needs_cjk_font, pdf_from_html
from receivables.legal import lifecycle
from receivables.legal.selection import RuleResult
from receivables.mail import Attachment, OutboundEmail
from receivables.render import render, render_email
from receivables.text import excerpt, one_line
from receivables.warehouse.schema import (
    collection_actions,
    collectors,
    credit_scores,
    customer_feedback,
    customers,
    email_events,
    invoices,
    legal_case_invoices,
    legal_cases,
    payments,
    promises_to_pay,
    reminders,
)

#: The folder of the legal templates under ``include/templates``.
TEMPLATE_FOLDER = "legal"
#: The files :func:`write_case_file` writes into a case's folder (never customer data).
CASE_FILE_HTML = "case-file.html"
CASE_FILE_PDF = "case-file.pdf"
LETTER_HTML = "demand-letter.html"
LETTER_PDF = "demand-letter.pdf"
#: Permissions of the written files.
FILE_MODE = 0o644
#: Days the demand letter gives the customer to pay, from the letter's date.
PAYMENT_DEADLINE_DAYS = 7
#: The credit grades a case file shows: the customer's latest ones, oldest first.
MAX_CREDIT_GRADES = 24
#: The longest invoice description, note or customer message a document shows (cut with "…").
DESCRIPTION_LENGTH = 200
MESSAGE_LENGTH = 2000
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")
_ZERO = Decimal("0.00")


class CaseFileError(ValueError):
    """A case file that cannot be produced correctly; ``reason`` says why in one line, naming
    ids, never a person."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


# --- what a case file shows ---------------------------------------------------------------------


@dataclass(frozen=True)
class CaseEvent:
    """One step of the case (``legal_case_events``)."""

    status: str
    occurred_on: dt.date
    amount: Decimal | None
    note: str | None
    actor: str | None
    source: str
    recorded_at: dt.datetime


@dataclass(frozen=True)
class Case:
    """The legal case: what it claims, why it was proposed, who decided, what happened since."""

    case_id: str
    customer_id: str
    status: str
    opened_on: dt.date
    updated_on: dt.date
    currency: str
    principal: Decimal
    interest: Decimal
    amount: Decimal
    worst_days_past_due: int | None
    rules: tuple[RuleResult, ...]
    decided_by: str | None
    decided_at: dt.datetime | None
    decision_note: str | None
    recovered_amount: Decimal | None
    written_off_amount: Decimal | None
    strategy_version: str | None
    history: tuple[CaseEvent, ...]


@dataclass(frozen=True)
class Contacts:
    """How the customer is reached: its addresses (the ``;``-separated column split), phone,
    language and time zone."""

    emails: tuple[str, ...]
    phone: str | None
    locale: str
    timezone: str


@dataclass(frozen=True)
class Customer:
    """The customer's identity and its collector."""

    customer_id: str
    name: str
    segment: str | None
    currency: str
    credit_limit: Decimal | None
    collector_id: str | None
    collector_name: str | None
    do_not_contact: bool
    contacts: Contacts


@dataclass(frozen=True)
class CreditGrade:
    """One credit score of the customer."""

    as_of_date: dt.date
    score: float
    grade: str
    pd: float
    basis: str


@dataclass(frozen=True)
class ClaimedInvoice:
    """An invoice the case claims, as it stood at escalation."""

    invoice_id: str
    currency: str
    issue_date: dt.date
    due_date: dt.date
    description: str | None
    days_past_due: int
    outstanding: Decimal
    interest: Decimal

    @property
    def total(self) -> Decimal:
        """Principal plus late interest."""
        return self.outstanding + self.interest


@dataclass(frozen=True)
class Claim:
    """The amounts claimed in one currency."""

    currency: str
    principal: Decimal
    interest: Decimal
    total: Decimal
    invoices: int


@dataclass(frozen=True)
class AgingBucket:
    """The claimed invoices of one aging bucket (days past due at escalation)."""

    bucket: str
    currency: str
    outstanding: Decimal
    invoices: int


@dataclass(frozen=True)
class InvoiceRecord:
    """One of the customer's invoices, with what was paid on it up to the file's date."""

    invoice_id: str
    currency: str
    amount: Decimal
    issue_date: dt.date
    due_date: dt.date
    description: str | None
    disputed: bool
    paid: Decimal
    outstanding: Decimal


@dataclass(frozen=True)
class PaymentRecord:
    """One payment of the customer."""

    payment_id: str
    invoice_id: str
    paid_date: dt.date
    amount: Decimal
    currency: str
    method: str | None


@dataclass(frozen=True)
class EmailEvent:
    """What SendGrid reported about a reminder (delivered, open, click, bounce…)."""

    event: str
    occurred_at: dt.datetime


@dataclass(frozen=True)
class ReminderRecord:
    """A reminder planned for the customer: sent, refused by a contact rule, or failed."""

    reminder_id: int
    planned_on: dt.date
    stage: str
    status: str
    rule: str | None
    reason: str | None
    days_past_due: int
    invoices: int
    mentions_legal: bool
    sent_at: dt.datetime | None
    provider_message_id: str | None
    delivery_status: str | None
    delivered_at: dt.datetime | None
    opened_at: dt.datetime | None
    clicked_at: dt.datetime | None
    events: tuple[EmailEvent, ...]


@dataclass(frozen=True)
class ActionRecord:
    """An entry of the collectors' worklist: a call, a visit, a data fix, a review."""

    action_id: int
    planned_on: dt.date
    kind: str
    cause: str
    detail: str
    collector_id: str | None
    reminder_id: int | None


@dataclass(frozen=True)
class PromiseRecord:
    """A promise to pay."""

    promise_id: int
    promised_on: dt.date
    pay_by: dt.date
    amount: Decimal | None
    currency: str | None
    note: str | None


@dataclass(frozen=True)
class FeedbackRecord:
    """What the customer told us through its reminder's link: a dispute or feedback."""

    feedback_id: int
    kind: str
    message: str
    status: str
    received_at: dt.datetime
    reminder_id: int | None


@dataclass(frozen=True)
class ContactEntry:
    """One line of the contact history: ``on`` is its date on the customer's clock, ``at`` its
    moment when known; ``kind`` is ``reminder``, ``email_event``, ``action``, ``promise`` or
    ``feedback``; ``record`` the row itself (for an email event: ``(reminder, event)``)."""

    on: dt.date
    at: dt.datetime | None
    kind: str
    record: Any


@dataclass(frozen=True)
class CaseFile:
    """Everything a case file and its demand letter show, as of ``as_of``.

    ``late_interest_rate`` is the strategy's annual rate (None: no late interest is claimed);
    ``timezone`` is the customer's, in which moments are shown.
    """

    as_of: dt.date
    case: Case
    customer: Customer
    credit_grades: tuple[CreditGrade, ...]
    claimed: tuple[ClaimedInvoice, ...]
    claims: tuple[Claim, ...]
    aging: tuple[AgingBucket, ...]
    late_interest_rate: Decimal | None
    invoices: tuple[InvoiceRecord, ...]
    payments: tuple[PaymentRecord, ...]
    reminders: tuple[ReminderRecord, ...]
    actions: tuple[ActionRecord, ...]
    promises: tuple[PromiseRecord, ...]
    feedback: tuple[FeedbackRecord, ...]
    timezone: str

    @property
    def case_file_locale(self) -> str:
        """The case file's language: the customer's when it is zh-CN, else English."""
        return case_file_locale(self.customer.contacts.locale)

    @property
    def letter_locale(self) -> str:
        """The demand letter's language: the customer's own (English when unsupported)."""
        locale = self.customer.contacts.locale
        return locale if locale in BABEL_LOCALES else "en"

    @property
    def contact_history(self) -> tuple[ContactEntry, ...]:
        """Every contact with the customer in date order: reminders (on the day they were sent,
        else planned), their email events, actions, promises and feedback; on one day, timed
        entries first."""
        zone = ZoneInfo(self.timezone)
        order = {"reminder": 0, "email_event": 1, "action": 2, "promise": 3, "feedback": 4}
        entries: list[ContactEntry] = []
        for reminder in self.reminders:
            at = reminder.sent_at
            on = at.astimezone(zone).date() if at else reminder.planned_on
            entries.append(ContactEntry(on, at, "reminder", reminder))
            for event in reminder.events:
                entries.append(
                    ContactEntry(
                        event.occurred_at.astimezone(zone).date(),
                        event.occurred_at,
                        "email_event",
                        (reminder, event),
                    )
                )
        entries += [ContactEntry(a.planned_on, None, "action", a) for a in self.actions]
        entries += [ContactEntry(p.promised_on, None, "promise", p) for p in self.promises]
        entries += [
            ContactEntry(f.received_at.astimezone(zone).date(), f.received_at, "feedback", f)
            for f in self.feedback
        ]
        # an entry known by its day only (an action, a promise) follows that day's timed ones:
        # the call planned for a final notice comes after the notice
        late = dt.datetime.max.replace(tzinfo=dt.UTC)
        return tuple(sorted(entries, key=lambda e: (e.on, e.at or late, order[e.kind])))


@dataclass(frozen=True)
class CaseFileOutput:
    """The files :func:`write_case_file` wrote, and their languages."""

    folder: Path
    case_file_html: Path
    case_file_pdf: Path
    letter_html: Path
    letter_pdf: Path
    case_file_locale: str
    letter_locale: str


def case_file_locale(customer_locale: str | None) -> str:
    """The language of a customer's case file: zh-CN for a customer who reads Chinese, else
    English (see the module's docstring)."""
    return "zh-CN" if customer_locale == "zh-CN" else "en"


# --- reading it ---------------------------------------------------------------------------------


def _utc(value: dt.datetime | None) -> dt.datetime | None:
    # SQLite returns the stored UTC moments without their zone
    if value is None:
        return None
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def _rules(case_id: str, text: str | None) -> tuple[RuleResult, ...]:
    if not text:
        return ()
    try:
        items = json.loads(text)
    except ValueError:
        raise CaseFileError(f"case {case_id}: its rule results are not JSON") from None
    if not isinstance(items, list) or not all(
        isinstance(i, dict) and isinstance(i.get("rule"), str) for i in items
    ):
        raise CaseFileError(
            f"case {case_id}: its rule results are not a list of objects with a rule name"
        )
    return tuple(
        RuleResult(i["rule"], bool(i.get("passed")), str(i.get("detail") or "")) for i in items
    )


def _case(conn: Connection, case_id: str) -> Case:
    row = conn.execute(sa.select(legal_cases).where(legal_cases.c.case_id == case_id)).first()
    if row is None:
        raise CaseFileError(f"no legal case {excerpt(str(case_id), 64)}")
    history = tuple(
        CaseEvent(e.status, e.occurred_on, e.amount, e.note, e.actor, e.source, _utc(e.recorded_at))
        for e in lifecycle.history(conn, case_id)
    )
    return Case(
        case_id=row.case_id,
        customer_id=row.customer_id,
        status=row.status,
        opened_on=row.opened_on,
        updated_on=row.updated_on,
        currency=row.currency,
        principal=row.principal,
        interest=row.interest,
        amount=row.amount,
        worst_days_past_due=row.worst_days_past_due,
        rules=_rules(case_id, row.rules),
        decided_by=row.decided_by,
        decided_at=_utc(row.decided_at),
        decision_note=row.decision_note,
        recovered_amount=row.recovered_amount,
        written_off_amount=row.written_off_amount,
        strategy_version=row.strategy_version,
        history=history,
    )


def _customer(conn: Connection, case: Case) -> Customer:
    c = customers.c
    row = conn.execute(
        sa.select(customers, collectors.c.name.label("collector_name"))
        .select_from(customers.outerjoin(collectors, collectors.c.collector_id == c.collector_id))
        .where(c.customer_id == case.customer_id)
    ).first()
    if row is None:
        raise CaseFileError(f"case {case.case_id}: its customer {case.customer_id} is unknown")
    emails = tuple(a.strip() for a in (row.email or "").split(";") if a.strip())
    contacts = Contacts(
        emails=emails,
        phone=row.phone,
        locale=row.locale,
        timezone=customer_timezone(row.timezone, DEFAULT_TIMEZONE),
    )
    return Customer(
        customer_id=row.customer_id,
        name=row.name,
        segment=row.segment,
        currency=row.currency,
        credit_limit=row.credit_limit,
        collector_id=row.collector_id,
        collector_name=row.collector_name,
        do_not_contact=bool(row.do_not_contact),
        contacts=contacts,
    )


def _claimed(conn: Connection, case: Case) -> tuple[ClaimedInvoice, ...]:
    claim, bill = legal_case_invoices.c, invoices.c
    rows = conn.execute(
        sa.select(
            claim.invoice_id,
            claim.due_date,
            claim.days_past_due,
            claim.outstanding,
            claim.interest,
            bill.invoice_id.label("known"),
            bill.customer_id,
            bill.currency,
            bill.issue_date,
            bill.description,
        )
        .select_from(legal_case_invoices.outerjoin(invoices, bill.invoice_id == claim.invoice_id))
        .where(claim.case_id == case.case_id)
        .order_by(claim.due_date, claim.invoice_id)
    ).all()
    if not rows:
        raise CaseFileError(f"case {case.case_id} claims no invoices")
    lines = []
    for r in rows:
        if r.known is None or r.customer_id != case.customer_id:
            raise CaseFileError(
                f"case {case.case_id}: claimed invoice {r.invoice_id} is not an invoice of "
                f"customer {case.customer_id}"
            )
        if r.currency != case.currency:
            raise CaseFileError(
                f"case {case.case_id}: claimed invoice {r.invoice_id} is in {r.currency}, the "
                f"case in {case.currency}"
            )
        lines.append(
            ClaimedInvoice(
                invoice_id=r.invoice_id,
                currency=r.currency,
                issue_date=r.issue_date,
                due_date=r.due_date,
                description=r.description,
                days_past_due=r.days_past_due,
                outstanding=r.outstanding,
                interest=r.interest,
            )
        )
    return tuple(lines)


def _claims(case: Case, lines: Sequence[ClaimedInvoice]) -> tuple[Claim, ...]:
    """Per-currency totals of the claimed invoices, checked against the case's own amounts: a
    letter must never claim a total its invoices do not add up to."""
    totals: dict[str, list] = {}
    for line in lines:
        t = totals.setdefault(line.currency, [_ZERO, _ZERO, 0])
        t[0] += line.outstanding
        t[1] += line.interest
        t[2] += 1
    claims = tuple(Claim(cur, p, i, p + i, n) for cur, (p, i, n) in sorted(totals.items()))
    if len(claims) != 1:  # every line was checked to be in the case's currency
        raise CaseFileError(f"case {case.case_id}: its invoices are in several currencies")
    only = claims[0]
    expected = {
        "principal": case.principal if case.principal is not None else only.principal,
        "interest": case.interest if case.interest is not None else only.interest,
        "amount": case.amount,
    }
    found = {"principal": only.principal, "interest": only.interest, "amount": only.total}
    for what, value in expected.items():
        if value != found[what]:
            raise CaseFileError(
                f"case {case.case_id}: its {what} {value} {case.currency} is not what its "
                f"invoices add up to ({found[what]} {case.currency})"
            )
    return claims


def _aging(lines: Sequence[ClaimedInvoice], buckets: Sequence[Band]) -> tuple[AgingBucket, ...]:
    """The claimed invoices per aging bucket past due (the policy's buckets), in order."""
    sums: dict[tuple[str, str], list] = {}
    for line in lines:
        key = (band_for(max(line.days_past_due, 0), list(buckets)), line.currency)
        s = sums.setdefault(key, [_ZERO, 0])
        s[0] += line.outstanding
        s[1] += 1
    past_due = [b.name for b in buckets if b.max_days is None or b.max_days >= 1]
    currencies = sorted({line.currency for line in lines})
    return tuple(
        AgingBucket(name, cur, *sums.get((name, cur), [_ZERO, 0]))
        for cur in currencies
        for name in past_due
    )


def _credit_grades(conn: Connection, customer_id: str, as_of: dt.date):
    s = credit_scores.c
    rows = conn.execute(
        sa.select(s.as_of_date, s.score, s.grade, s.pd, s.basis)
        .where(s.customer_id == customer_id, s.as_of_date <= as_of)
        .order_by(s.as_of_date.desc())
        .limit(MAX_CREDIT_GRADES)
    ).all()
    return tuple(CreditGrade(r.as_of_date, r.score, r.grade, r.pd, r.basis) for r in rows[::-1])


def _ledger(conn: Connection, customer_id: str, as_of: dt.date):
    bill, pay = invoices.c, payments.c
    paid_rows = conn.execute(
        sa.select(
            pay.payment_id, pay.invoice_id, pay.paid_date, pay.amount, pay.method, bill.currency
        )
        .select_from(payments.join(invoices, bill.invoice_id == pay.invoice_id))
        .where(bill.customer_id == customer_id, pay.paid_date <= as_of)
        .order_by(pay.paid_date, pay.payment_id)
    ).all()
    paid: dict[str, Decimal] = {}
    for r in paid_rows:
        paid[r.invoice_id] = paid.get(r.invoice_id, _ZERO) + r.amount
    bill_rows = conn.execute(
        sa.select(invoices)
        .where(bill.customer_id == customer_id, bill.issue_date <= as_of)
        .order_by(bill.issue_date, bill.invoice_id)
    ).all()
    records = tuple(
        InvoiceRecord(
            invoice_id=r.invoice_id,
            currency=r.currency,
            amount=r.amount,
            issue_date=r.issue_date,
            due_date=r.due_date,
            description=r.description,
            disputed=bool(r.disputed),
            paid=paid.get(r.invoice_id, _ZERO),
            outstanding=max(r.amount - paid.get(r.invoice_id, _ZERO), _ZERO),
        )
        for r in bill_rows
    )
    payment_records = tuple(
        PaymentRecord(r.payment_id, r.invoice_id, r.paid_date, r.amount, r.currency, r.method)
        for r in paid_rows
    )
    return records, payment_records


def _contacts(conn: Connection, customer_id: str, as_of: dt.date, zone: ZoneInfo):
    """Reminders with their email events, actions, promises and feedback up to the end of
    ``as_of`` on the customer's clock."""
    cutoff = dt.datetime.combine(as_of + dt.timedelta(days=1), dt.time(), zone).astimezone(dt.UTC)
    r, e = reminders.c, email_events.c
    events: dict[int, list[EmailEvent]] = {}
    for row in conn.execute(
        sa.select(e.reminder_id, e.event, e.occurred_at)
        .select_from(email_events.join(reminders, r.reminder_id == e.reminder_id))
        .where(r.customer_id == customer_id, r.planned_on <= as_of)
        .order_by(e.occurred_at, e.sg_event_id)
    ):
        at = _utc(row.occurred_at)
        if at < cutoff:
            events.setdefault(row.reminder_id, []).append(EmailEvent(row.event, at))
    reminder_records = tuple(
        ReminderRecord(
            reminder_id=row.reminder_id,
            planned_on=row.planned_on,
            stage=row.stage,
            status=row.status,
            rule=row.rule,
            reason=row.reason,
            days_past_due=row.days_past_due,
            invoices=row.invoices,
            mentions_legal=bool(row.mentions_legal),
            sent_at=_utc(row.sent_at),
            provider_message_id=row.provider_message_id,
            delivery_status=row.delivery_status,
            delivered_at=_utc(row.delivered_at),
            opened_at=_utc(row.opened_at),
            clicked_at=_utc(row.clicked_at),
            events=tuple(events.get(row.reminder_id, ())),
        )
        for row in conn.execute(
            sa.select(reminders)
            .where(r.customer_id == customer_id, r.planned_on <= as_of)
            .order_by(r.planned_on, r.reminder_id)
        )
    )
    a = collection_actions.c
    actions = tuple(
        ActionRecord(
            row.action_id,
            row.planned_on,
            row.kind,
            row.cause,
            row.detail,
            row.collector_id,
            row.reminder_id,
        )
        for row in conn.execute(
            sa.select(collection_actions)
            .where(a.customer_id == customer_id, a.planned_on <= as_of)
            .order_by(a.planned_on, a.action_id)
        )
    )
    p = promises_to_pay.c
    promises = tuple(
        PromiseRecord(
            row.promise_id, row.promised_on, row.pay_by, row.amount, row.currency, row.note
        )
        for row in conn.execute(
            sa.select(promises_to_pay)
            .where(p.customer_id == customer_id, p.promised_on <= as_of)
            .order_by(p.promised_on, p.promise_id)
        )
    )
    f = customer_feedback.c
    feedback = tuple(
        FeedbackRecord(
            row.feedback_id,
            row.kind,
            row.message,
            row.status,
            _utc(row.received_at),
            row.reminder_id,
        )
        for row in conn.execute(
            sa.select(customer_feedback)
            .where(f.customer_id == customer_id)
            .order_by(f.received_at, f.feedback_id)
        )
        if _utc(row.received_at) < cutoff
    )
    return reminder_records, actions, promises, feedback


def late_interest_rate(strategy: Strategy) -> Decimal | None:
    """The strategy's annual late-interest rate, or None when it claims no interest."""
    if strategy.legal is None or strategy.legal.late_interest is None:
        return None
    return strategy.legal.late_interest.annual_rate


def gather(
    conn: Connection,
    case_id: str,
    as_of: dt.date,
    strategy: Strategy,
    *,
    buckets: Sequence[Band] = DEFAULT_BUCKETS,
) -> CaseFile:
    """Everything the case file of ``case_id`` shows, as of ``as_of``.

    ``buckets`` are the aging buckets the claimed invoices are summed in (the policy's;
    :data:`~receivables.config.DEFAULT_BUCKETS` by default). Raises :class:`CaseFileError`
    when the case is unknown, opened after ``as_of``, claims no invoice or an invoice that is
    not its customer's or not in its currency, when its amounts are not what its invoices add
    up to, or when it claims interest the strategy gives no rate for.
    """
    case = _case(conn, case_id)
    if case.opened_on > as_of:
        raise CaseFileError(f"case {case.case_id} was opened on {case.opened_on}, after {as_of}")
    customer = _customer(conn, case)
    claimed = _claimed(conn, case)
    claims = _claims(case, claimed)
    rate = late_interest_rate(strategy)
    if rate is None and any(c.interest for c in claims):
        raise CaseFileError(
            f"case {case.case_id} claims late interest, but the strategy has no "
            "legal.late_interest rate to state in its letter"
        )
    zone = ZoneInfo(customer.contacts.timezone)
    invoice_records, payment_records = _ledger(conn, customer.customer_id, as_of)
    reminder_records, actions, promises, feedback = _contacts(
        conn, customer.customer_id, as_of, zone
    )
    return CaseFile(
        as_of=as_of,
        case=case,
        customer=customer,
        credit_grades=_credit_grades(conn, customer.customer_id, as_of),
        claimed=claimed,
        claims=claims,
        aging=_aging(claimed, buckets),
        late_interest_rate=rate,
        invoices=invoice_records,
        payments=payment_records,
        reminders=reminder_records,
        actions=actions,
        promises=promises,
        feedback=feedback,
        timezone=customer.contacts.timezone,
    )


# --- formatting ---------------------------------------------------------------------------------


class _Format:
    """Amounts, dates, moments and numbers written for one locale, moments on one clock."""

    def __init__(self, locale: str, timezone: str):
        self.locale = Locale.parse(BABEL_LOCALES[locale])
        self.zone = ZoneInfo(timezone)

    def money(self, amount: Decimal | None, currency: str | None) -> str:
        if amount is None:
            return ""
        # every digit shown: a JPY 1234.50 is never rounded to a sum nobody owes
        return format_currency(amount, currency, locale=self.locale, decimal_quantization=False)

    def date(self, value: dt.date | None, form: str = "medium") -> str:
        return "" if value is None else format_date(value, format=form, locale=self.locale)

    def moment(self, value: dt.datetime | None) -> str:
        if value is None:
            return ""
        local = value.astimezone(self.zone)
        return f"{self.date(local.date())} {format_time(local, 'HH:mm', locale=self.locale)}"

    def number(self, value: int | float | Decimal | None, pattern: str | None = None) -> str:
        if value is None:
            return ""
        if isinstance(value, float):
            value = Decimal(repr(value))
        return format_decimal(value, format=pattern, locale=self.locale)

    def percent(self, value: Decimal | float | None, pattern: str = "#,##0.###%") -> str:
        if value is None:
            return ""
        if isinstance(value, float):
            value = Decimal(repr(value))
        return format_percent(value, format=pattern, locale=self.locale)


def _cut(text: str | None, limit: int) -> str:
    text = one_line(text or "")
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _claim_lines(f: _Format, case_file: CaseFile) -> list[dict[str, Any]]:
    return [
        {
            "invoice_id": line.invoice_id,
            "description": _cut(line.description, DESCRIPTION_LENGTH),
            "issue_date": f.date(line.issue_date),
            "due_date": f.date(line.due_date),
            "days_past_due": f.number(line.days_past_due),
            "principal": f.money(line.outstanding, line.currency),
            "interest": f.money(line.interest, line.currency),
            "total": f.money(line.total, line.currency),
        }
        for line in case_file.claimed
    ]


def _common(f: _Format, case_file: CaseFile, strategy: Strategy, locale: str) -> dict[str, Any]:
    """What both documents print: the case, the customer, the claim, the creditor."""
    case, customer = case_file.case, case_file.customer
    rate = case_file.late_interest_rate
    charged = rate is not None and any(c.interest for c in case_file.claims)
    return {
        "locale": locale,
        "as_of": f.date(case_file.as_of, "long"),
        "case_id": case.case_id,
        "customer_id": customer.customer_id,
        "customer_name": customer.name,
        "lines": _claim_lines(f, case_file),
        "claims": [
            {
                "currency": c.currency,
                "principal": f.money(c.principal, c.currency),
                "interest": f.money(c.interest, c.currency),
                "total": f.money(c.total, c.currency),
                "invoices": c.invoices,
            }
            for c in case_file.claims
        ],
        "interest": (
            {
                "rate": f.percent(rate),
                "until": f.date(case.opened_on, "long"),
            }
            if charged
            else None
        ),
        "creditor": {
            "name": strategy.payment.beneficiary[locale],
            "team": strategy.contact_details.team_name[locale],
            "email": strategy.contact_details.team_email,
            "phone": strategy.contact_details.team_phone,
        },
        "payment": {
            "beneficiary": strategy.payment.beneficiary[locale],
            "bank": strategy.payment.bank[locale],
            "account": strategy.payment.account,
            "reference": customer.customer_id,
        },
    }


def _deadline(case_file: CaseFile) -> dt.date:
    """The last day the demand letter gives the customer to pay."""
    return case_file.as_of + dt.timedelta(days=PAYMENT_DEADLINE_DAYS)


def letter_context(case_file: CaseFile, strategy: Strategy) -> dict[str, Any]:
    """What the demand letter prints, formatted for the customer's language."""
    locale = case_file.letter_locale
    f = _Format(locale, case_file.timezone)
    return {
        **_common(f, case_file, strategy, locale),
        "emails": list(case_file.customer.contacts.emails),
        "deadline": f.date(_deadline(case_file), "long"),
        "deadline_days": f.number(PAYMENT_DEADLINE_DAYS),
    }


def _timeline(f: _Format, case_file: CaseFile) -> list[dict[str, Any]]:
    rows = []
    for entry in case_file.contact_history:
        when = f.moment(entry.at) if entry.at else f.date(entry.on)
        row: dict[str, Any] = {"kind": entry.kind, "when": when}
        if entry.kind == "reminder":
            r = entry.record
            row.update(
                reminder_id=r.reminder_id,
                stage=r.stage,
                status=r.status,
                planned_on=f.date(r.planned_on),
                rule=r.rule or "",
                reason=_cut(r.reason, DESCRIPTION_LENGTH),
                message_id=r.provider_message_id or "",
                delivery=r.delivery_status or "",
                days=f.number(r.days_past_due),
                invoices=r.invoices,
                mentions_legal=r.mentions_legal,
            )
        elif entry.kind == "email_event":
            reminder, event = entry.record
            row.update(reminder_id=reminder.reminder_id, event=event.event)
        elif entry.kind == "action":
            a = entry.record
            row.update(
                action_id=a.action_id,
                action=a.kind,
                cause=a.cause,
                detail=_cut(a.detail, DESCRIPTION_LENGTH),
                collector_id=a.collector_id or "",
            )
        elif entry.kind == "promise":
            p = entry.record
            row.update(
                pay_by=f.date(p.pay_by),
                amount=f.money(p.amount, p.currency) if p.amount is not None else "",
                note=_cut(p.note, DESCRIPTION_LENGTH),
            )
        else:
            fb = entry.record
            row.update(
                feedback=fb.kind,
                status=fb.status,
                message=_cut(fb.message, MESSAGE_LENGTH),
                reminder_id=fb.reminder_id,
            )
        rows.append(row)
    return rows


def case_file_context(case_file: CaseFile, strategy: Strategy) -> dict[str, Any]:
    """What the case file prints, formatted for the legal team's language."""
    locale = case_file.case_file_locale
    f = _Format(locale, case_file.timezone)
    case, customer = case_file.case, case_file.customer
    return {
        **_common(f, case_file, strategy, locale),
        "case": {
            "status": case.status,
            "opened_on": f.date(case.opened_on, "long"),
            "updated_on": f.date(case.updated_on),
            "worst_days_past_due": f.number(case.worst_days_past_due),
            "amount": f.money(case.amount, case.currency),
            "decided_by": case.decided_by or "",
            "decided_at": f.moment(case.decided_at),
            "decision_note": _cut(case.decision_note, MESSAGE_LENGTH),
            "recovered": f.money(case.recovered_amount, case.currency),
            "written_off": f.money(case.written_off_amount, case.currency),
            "strategy_version": case.strategy_version or "",
        },
        "rules": [
            {"rule": r.rule, "passed": r.passed, "detail": _cut(r.detail, MESSAGE_LENGTH)}
            for r in case.rules
        ],
        "history": [
            {
                "status": e.status,
                "occurred_on": f.date(e.occurred_on),
                "amount": f.money(e.amount, case.currency),
                "note": _cut(e.note, MESSAGE_LENGTH),
                "actor": e.actor or "",
                "source": e.source,
                "recorded_at": f.moment(e.recorded_at),
            }
            for e in case.history
        ],
        "customer": {
            "segment": customer.segment or "",
            "currency": customer.currency,
            "credit_limit": f.money(customer.credit_limit, customer.currency),
            "collector_id": customer.collector_id or "",
            "collector_name": customer.collector_name or "",
            "do_not_contact": customer.do_not_contact,
            "emails": list(customer.contacts.emails),
            "phone": customer.contacts.phone or "",
            "locale": customer.contacts.locale,
            "timezone": customer.contacts.timezone,
        },
        "grades": [
            {
                "as_of": f.date(g.as_of_date),
                "score": f.number(g.score, "#,##0.00"),
                "grade": g.grade,
                "pd": f.percent(g.pd, "#,##0.0%"),
                "basis": g.basis,
            }
            for g in case_file.credit_grades
        ],
        "aging": [
            {
                "bucket": b.bucket,
                "outstanding": f.money(b.outstanding, b.currency),
                "invoices": b.invoices,
            }
            for b in case_file.aging
        ],
        "invoices": [
            {
                "invoice_id": i.invoice_id,
                "description": _cut(i.description, DESCRIPTION_LENGTH),
                "issue_date": f.date(i.issue_date),
                "due_date": f.date(i.due_date),
                "amount": f.money(i.amount, i.currency),
                "paid": f.money(i.paid, i.currency),
                "outstanding": f.money(i.outstanding, i.currency),
                "disputed": i.disputed,
                "claimed": i.invoice_id in {c.invoice_id for c in case_file.claimed},
            }
            for i in case_file.invoices
        ],
        "payments": [
            {
                "payment_id": p.payment_id,
                "invoice_id": p.invoice_id,
                "paid_date": f.date(p.paid_date),
                "amount": f.money(p.amount, p.currency),
                "method": p.method or "",
            }
            for p in case_file.payments
        ],
        "timeline": _timeline(f, case_file),
        "timezone": case_file.timezone,
        "letter_locale": case_file.letter_locale,
        "letter_deadline": f.date(_deadline(case_file), "long"),
        "deadline_days": f.number(PAYMENT_DEADLINE_DAYS),
    }


# --- fonts, PDF, files --------------------------------------------------------------------------


def check_fonts(documents: Iterable[str], case_id: str) -> None:
    """Raise :class:`CaseFileError` when a document holds Chinese text and no installed font
    covers Chinese: its PDF would show empty boxes where the text should be."""
    if any(needs_cjk_font(d) for d in documents) and not cjk_fonts():
        raise CaseFileError(
            f"case {case_id}: no font covering Chinese is installed (fontconfig's "
            f"'fc-list :lang=zh' finds none), so its PDFs would print empty boxes; install "
            f"the Debian package {CJK_FONT_PACKAGE} (apt-get install {CJK_FONT_PACKAGE})"
        )


def _write_atomically(path: Path, data: bytes) -> None:
    """Write ``path`` whole or not at all: a temporary file in the same folder, flushed to disk,
    renamed over it. The file is readable like the project's other reports (``0644``; the
    temporary file starts private)."""
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fchmod(f.fileno(), FILE_MODE)
            os.fsync(f.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _sync_folder(folder: Path) -> None:
    # the renames themselves reach the disk (POSIX); not every platform can open a folder
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _render(template: str, case_id: str, context: dict[str, Any]) -> str:
    try:
        return render(template, **context)
    except jinja2.TemplateError as exc:
        # the error names the template; its message could quote a printed value, so only its type
        raise CaseFileError(
            f"case {case_id}: the template {template} failed to render ({type(exc).__name__})"
        ) from exc


def render_documents(case_file: CaseFile, strategy: Strategy) -> tuple[str, str]:
    """The HTML of the case file and of the demand letter.

    Raises :class:`CaseFileError` when a claimed invoice is past its limitation period on the
    letter's date: a time-barred debt is never demanded under threat of proceedings.
    """
    case_id = case_file.case.case_id
    barred = [
        line.invoice_id
        for line in case_file.claimed
        if time_barred(line.due_date, case_file.as_of, strategy.contact)
    ]
    if barred:
        raise CaseFileError(
            f"case {case_id}: invoice(s) {', '.join(barred)} are past the limitation period on "
            f"{case_file.as_of}; a demand letter must not claim them"
        )
    case_html = _render(
        f"{TEMPLATE_FOLDER}/{case_file.case_file_locale}/case_file.html",
        case_id,
        case_file_context(case_file, strategy),
    )
    letter_html = _render(
        f"{TEMPLATE_FOLDER}/{case_file.letter_locale}/demand_letter.html",
        case_id,
        letter_context(case_file, strategy),
    )
    return case_html, letter_html


def write_case_file(case_file: CaseFile, folder: Path, strategy: Strategy) -> CaseFileOutput:
    """Write the case file and the demand letter, as HTML and PDF, into ``folder`` (created when
    missing; the files of an earlier run are replaced).

    Everything is rendered before anything is written, and each file is replaced whole: a crash
    leaves the earlier files or the new ones, never half a PDF. Raises :class:`CaseFileError`
    when a document cannot be produced correctly (see :func:`render_documents` and
    :func:`check_fonts`).
    """
    case_id = case_file.case.case_id
    case_html, letter_html = render_documents(case_file, strategy)
    check_fonts((case_html, letter_html), case_id)
    case_pdf = pdf_from_html(case_html)
    letter_pdf = pdf_from_html(letter_html)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    output = CaseFileOutput(
        folder=folder,
        case_file_html=folder / CASE_FILE_HTML,
        case_file_pdf=folder / CASE_FILE_PDF,
        letter_html=folder / LETTER_HTML,
        letter_pdf=folder / LETTER_PDF,
        case_file_locale=case_file.case_file_locale,
        letter_locale=case_file.letter_locale,
    )
    for path, data in (
        (output.case_file_html, case_html.encode("utf-8")),
        (output.letter_html, letter_html.encode("utf-8")),
        (output.case_file_pdf, case_pdf),
        (output.letter_pdf, letter_pdf),
    ):
        _write_atomically(path, data)
    _sync_folder(folder)
    return output


# --- the email to the legal team -----------------------------------------------------------------


def attachment_name(kind: str, case_id: str) -> str:
    """``<kind>-<case id>.pdf`` with the case id reduced to letters, digits, ``.``, ``_`` and
    ``-`` (a plain file name on every system)."""
    safe = _SAFE_NAME.sub("_", case_id).strip("._")[:100] or "case"
    return f"{kind}-{safe}.pdf"


def case_file_email(
    case_file: CaseFile, output: CaseFileOutput, recipients: Iterable[str]
) -> OutboundEmail:
    """The email that brings the legal team the case file and the demand letter (both PDFs
    attached), in the case file's language, under the key ``legal-case/<case id>`` so that it
    is sent at most once (:func:`receivables.mail.send_email_once`)."""
    case, customer = case_file.case, case_file.customer
    to = tuple(recipients)
    if not to:
        raise CaseFileError(f"case {case.case_id}: no recipient for its case file")
    locale = output.case_file_locale
    f = _Format(locale, case_file.timezone)
    attachments = []
    for kind, path in (("case-file", output.case_file_pdf), ("demand-letter", output.letter_pdf)):
        try:
            content = path.read_bytes()
        except OSError as exc:
            raise CaseFileError(
                f"case {case.case_id}: its {kind} PDF cannot be read ({type(exc).__name__})"
            ) from None
        if not content.startswith(b"%PDF-"):
            raise CaseFileError(f"case {case.case_id}: its {kind} file is not a PDF")
        name = attachment_name(kind, case.case_id)
        attachments.append(Attachment(name, "application/pdf", content))
    context = {
        "case_id": case.case_id,
        "customer_id": customer.customer_id,
        "customer_name": customer.name,
        "status": case.status,
        "opened_on": f.date(case.opened_on, "long"),
        "amount": f.money(case.amount, case.currency),
        "claims": [
            {
                "principal": f.money(c.principal, c.currency),
                "interest": f.money(c.interest, c.currency),
                "total": f.money(c.total, c.currency),
                "invoices": c.invoices,
            }
            for c in case_file.claims
        ],
        "worst_days_past_due": f.number(case.worst_days_past_due),
        "decided_by": case.decided_by or "",
        "decided_at": f.moment(case.decided_at),
        "letter_locale": output.letter_locale,
        "as_of": f.date(case_file.as_of, "long"),
        "deadline": f.date(_deadline(case_file), "long"),
        "files": [a.filename for a in attachments],
    }
    try:
        subject, text, html = render_email(f"{TEMPLATE_FOLDER}/{locale}/case_email", **context)
    except jinja2.TemplateError as exc:
        raise CaseFileError(
            f"case {case.case_id}: the case file email failed to render ({type(exc).__name__})"
        ) from exc
    return OutboundEmail(
        key=f"legal-case/{case.case_id}",
        to=to,
        subject=subject,
        text=text,
        html=html,
        category="legal",
        attachments=tuple(attachments),
    )
