"""Reminder emails: a :class:`~receivables.collection.content.ReminderContent` rendered into a
subject, a plain-text part and an HTML part, in the customer's language (``en`` or ``zh-CN``).

The words live in the templates (``include/templates/reminders/<locale>/<stage>/``, with the
statement and the footer shared per locale); this module checks the content, formats every
amount and date for the locale with Babel (amounts stay ``Decimal``: never a float), and renders
through the project's template environment, which escapes HTML and prints every value on one
line. Content that cannot become a correct email is refused with a :class:`LetterError`; a
half-filled email is never returned.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

import jinja2
from babel import Locale
from babel.dates import format_date
from babel.numbers import (
    format_currency,
    format_decimal,
    get_currency_precision,
    list_currencies,
)
from markupsafe import escape

from receivables.collection.content import ReminderContent, StatementLine
from receivables.paths import TEMPLATES_DIR
from receivables.render import render_email
from receivables.text import excerpt, has_unsafe_characters, one_line

#: The locales reminders are written in, and Babel's name for each.
BABEL_LOCALES = {"en": "en", "zh-CN": "zh_CN"}
#: The folder of the reminder templates under ``include/templates``.
TEMPLATE_FOLDER = "reminders"
#: The longest customer name a subject shows (the body shows it whole).
SUBJECT_NAME_LENGTH = 60
#: The longest invoice description the statement shows (descriptions may hold 2 000 characters).
DESCRIPTION_LENGTH = 200

_CENT = Decimal("0.01")
# Stage names as the strategy allows them; anything else could walk out of the template folder.
_STAGE_NAME = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
_URL = re.compile(r"^https?://[^\s/?#]+\S*$", re.IGNORECASE)


@functools.cache
def _babel_locale(name: str) -> Locale:
    # parsed once: Babel would parse a locale name again at every amount and date it formats
    return Locale.parse(name)


@functools.cache
def _currencies() -> frozenset[str]:
    return frozenset(list_currencies())


@functools.lru_cache(maxsize=4096)
def _date(value: dt.date, form: str, locale: str) -> str:
    # a batch's statements share most of their dates: each is formatted once per locale
    return format_date(value, format=form, locale=_babel_locale(locale))


class LetterError(ValueError):
    """A reminder that cannot become a correct email; ``reason`` says why in one line, without
    personal data (ids and codes only)."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class RenderedEmail:
    """A reminder ready to send: one-line subject, plain-text part, HTML part."""

    subject: str
    text: str
    html: str


def stages(locale: str) -> list[str]:
    """The stages that have reminder templates in ``locale`` (sorted)."""
    return list(_stages(locale))


def _has_templates(locale: str, stage: str) -> bool:
    """Whether ``stage`` has templates in ``locale``: looked up once per process, and again
    when a stage is missing (a folder added since)."""
    if stage in _stages(locale):
        return True
    _stages.cache_clear()
    return stage in _stages(locale)


@functools.cache
def _stages(locale: str) -> tuple[str, ...]:
    # the templates ship with the code: looked up once per process
    folder = TEMPLATES_DIR / TEMPLATE_FOLDER / locale
    if locale not in BABEL_LOCALES or not folder.is_dir():
        return ()
    return tuple(
        sorted(
            p.name
            for p in folder.iterdir()
            if all((p / part).is_file() for part in ("subject.txt", "body.txt", "body.html"))
        )
    )


def _blank(value: object) -> bool:
    return not isinstance(value, str) or not one_line(value)


def _amount_problem(value: object, what: str, invoice: str) -> str | None:
    # A float here has already lost the cents it was meant to hold: refuse it rather than guess.
    if not isinstance(value, Decimal) or not value.is_finite():
        return f"the {what} of invoice {invoice} is not an exact decimal amount"
    try:
        whole_cents = value == value.quantize(_CENT)
    except InvalidOperation:  # too many digits to hold in cents
        whole_cents = False
    if not whole_cents:
        return f"the {what} of invoice {invoice} is not a whole number of cents"
    return None


def _line_problems(line: StatementLine, currencies: set[str]) -> list[str]:
    invoice = excerpt(str(line.invoice_id), 64)
    found = []
    if _blank(line.invoice_id):
        found.append("an invoice in the statement has no id")
    if line.currency not in currencies:
        found.append(
            f"invoice {invoice} is in {excerpt(str(line.currency), 8)!r}, "
            "which is not an ISO 4217 currency"
        )
    for what, value in (("amount", line.amount), ("outstanding amount", line.outstanding)):
        problem = _amount_problem(value, what, invoice)
        if problem:
            found.append(problem)
    outstanding = line.outstanding
    if isinstance(outstanding, Decimal) and outstanding.is_finite() and outstanding <= 0:
        # a paid invoice is never reminded (docs/formulas.md §11)
        found.append(f"invoice {invoice} has nothing outstanding")
    for what, value in (("issue", line.issue_date), ("due", line.due_date)):
        if not isinstance(value, dt.date):
            found.append(f"the {what} date of invoice {invoice} is not a date")
    return found


def _url_problem(url: object, what: str) -> str | None:
    if _blank(url):
        return f"the {what} link is empty"
    # The link is printed as it is and must survive one_line() unchanged; only web links, so
    # that no "javascript:" or "data:" address ever reaches an href.
    if has_unsafe_characters(url) or not _URL.match(url):
        return f"the {what} link is not an http(s) address"
    return None


def problems(content: ReminderContent) -> list[str]:
    """Why ``content`` cannot become a correct email (empty when it can), without rendering.

    Each reason is one line of plain words naming ids and codes only, never a name or an
    address.
    """
    found: list[str] = []
    if content.locale not in BABEL_LOCALES:
        found.append(
            f"unsupported locale {excerpt(str(content.locale), 16)!r}: "
            f"expected one of {', '.join(BABEL_LOCALES)}"
        )
    elif not (isinstance(content.stage, str) and _STAGE_NAME.match(content.stage)) or (
        not _has_templates(content.locale, content.stage)
    ):
        found.append(
            f"no {content.locale} reminder templates for stage {excerpt(str(content.stage), 32)!r}"
        )
    if not content.lines:
        found.append("the statement has no open invoices")
    currencies = _currencies()
    for line in content.lines:
        found.extend(_line_problems(line, currencies))
    if _blank(content.customer_name):
        found.append(f"customer {excerpt(str(content.customer_id), 64)} has no name")
    if not isinstance(content.as_of, dt.date):
        found.append("the statement date is not a date")
    for what, url in (("opt-out", content.opt_out_url), ("feedback", content.feedback_url)):
        problem = _url_problem(url, what)
        if problem:
            found.append(problem)
    if _blank(content.contact.name) or _blank(content.contact.email):
        found.append("the contact has no name or no email address")
    payment = content.payment
    if any(_blank(v) for v in (payment.beneficiary, payment.bank, payment.account)):
        found.append("the payment details are incomplete")
    if _blank(payment.reference):
        found.append("the payment reference is empty")
    return found


def _shorten(text: str, limit: int) -> str:
    text = one_line(text)
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _babel_money(amount: Decimal, currency: str, locale: str) -> str:
    # decimal_quantization=False: a currency with fewer minor units than the amount holds (JPY
    # 1234.50) shows every digit instead of being rounded to a sum the customer does not owe.
    return format_currency(
        amount, currency, locale=_babel_locale(locale), decimal_quantization=False
    )


#: Amounts whose Babel form :func:`_money_shape` checks against its own before trusting it.
_SHAPE_PROBES = tuple(
    Decimal(v) for v in ("0", "0.01", "0.5", "7", "12.3", "999.99", "1000", "1234567.89", "1E+12")
)


@functools.cache
def _money_shape(currency: str, locale: str) -> tuple[str, str, int] | None:
    """``(prefix, suffix, digits)`` when Babel writes every amount of ``currency`` in ``locale``
    as ``prefix``, the amount grouped by thousands with ``,`` and ``digits`` decimals after a
    ``.``, then ``suffix`` (en and zh-CN do, for every currency); None when it does not (then
    Babel formats every amount). Checked on :data:`_SHAPE_PROBES` before it is trusted."""
    digits = get_currency_precision(currency)
    sample = _babel_money(Decimal(1234567), currency, locale)
    number = f"{Decimal(1234567):,.{digits}f}"
    if sample.count(number) != 1:
        return None
    prefix, suffix = sample.split(number)
    for probe in _SHAPE_PROBES:
        if probe.as_tuple().exponent < -digits:  # never formatted from the shape
            continue
        if f"{prefix}{probe:,.{digits}f}{suffix}" != _babel_money(probe, currency, locale):
            return None
    return prefix, suffix, digits


def _money(amount: Decimal, currency: str, locale: str) -> str:
    """``amount`` as Babel writes it in ``locale``; formatted from the currency's checked shape
    when it has no more decimals than the currency's (Babel costs ~16 µs an amount, a reminder
    shows several)."""
    shape = _money_shape(currency, locale)
    if (
        shape is not None
        and amount.is_finite()
        and not amount.is_signed()
        and amount.as_tuple().exponent >= -shape[2]
    ):
        prefix, suffix, digits = shape
        return f"{prefix}{amount:,.{digits}f}{suffix}"
    return _babel_money(amount, currency, locale)


@functools.lru_cache(maxsize=4096)
def _days(days: int, locale: str) -> str:
    return format_decimal(days, locale=_babel_locale(locale))


def context(content: ReminderContent) -> dict[str, Any]:
    """What the reminder templates print: every amount and date already formatted for the
    locale, texts as given (the environment makes them one line and escapes them)."""
    locale = BABEL_LOCALES[content.locale]

    def date(value: dt.date, form: str = "medium") -> str:
        return _date(value, form, locale)

    lines = [
        {
            "invoice_id": line.invoice_id,
            "description": _shorten(line.description or "", DESCRIPTION_LENGTH),
            "issue_date": date(line.issue_date),
            "due_date": date(line.due_date),
            "days_past_due": max(line.days_past_due, 0),
            "days": _days(max(line.days_past_due, 0), locale),
            "due_today": line.days_past_due <= 0 and line.due_date == content.as_of,
            "outstanding": _money(line.outstanding, line.currency, locale),
            "currency": line.currency,
        }
        for line in content.lines
    ]
    upcoming = [line.due_date for line in content.lines if line.due_date >= content.as_of]
    return {
        "customer_id": content.customer_id,
        "customer_name": content.customer_name,
        "subject_name": _shorten(content.customer_name, SUBJECT_NAME_LENGTH),
        "as_of": date(content.as_of, "long"),
        "next_due": date(min(upcoming), "long") if upcoming else None,
        "overdue": content.overdue,
        "lines": lines,
        "subtotals": [
            {"currency": currency, "outstanding": _money(amount, currency, locale), "invoices": n}
            for currency, amount, n in content.subtotals
        ],
        # read by the final notice only; no other stage's template mentions legal action
        "mentions_legal": bool(content.mentions_legal),
        "contact": {
            "name": content.contact.name,
            "email": content.contact.email,
            "phone": one_line(content.contact.phone or ""),
        },
        "payment": {
            "beneficiary": content.payment.beneficiary,
            "bank": content.payment.bank,
            "account": content.payment.account,
            "reference": content.payment.reference,
        },
        "opt_out_url": content.opt_out_url,
        "feedback_url": content.feedback_url,
    }


def _template_failure(folder: str, exc: jinja2.TemplateError) -> LetterError:
    # These errors name templates and variables; any other one might quote a value it printed.
    named = (jinja2.TemplateNotFound, jinja2.TemplateSyntaxError, jinja2.UndefinedError)
    detail = type(exc).__name__
    if isinstance(exc, named) and str(exc):
        detail += ": " + excerpt(str(exc).splitlines()[0], 120)
    return LetterError(f"the reminder template {folder} failed to render ({detail})")


def _missing_parts(content: ReminderContent, ctx: dict[str, Any], email: RenderedEmail) -> list:
    """What a rendered email lacks that every reminder must carry (a template gone wrong)."""
    needed = [content.opt_out_url, content.feedback_url, content.payment.reference]
    needed += [one_line(line.invoice_id) for line in content.lines]
    needed += [s["outstanding"] for s in ctx["subtotals"]]
    missing = [p for p in needed if p not in email.text or str(escape(p)) not in email.html]
    if not email.subject:
        missing.append("subject")
    return missing


def render_reminder(content: ReminderContent) -> RenderedEmail:
    """The reminder email for ``content``: subject, plain text and HTML in its locale.

    Raises :class:`LetterError` when the content cannot become a correct email (see
    :func:`problems`) or a template fails; never returns a half-filled email.
    """
    found = problems(content)
    if found:
        raise LetterError("; ".join(found))
    folder = f"{TEMPLATE_FOLDER}/{content.locale}/{content.stage}"
    try:
        ctx = context(content)
    except (ValueError, TypeError, ArithmeticError, LookupError) as exc:
        raise LetterError(f"the reminder could not be formatted ({type(exc).__name__})") from exc
    try:
        email = RenderedEmail(*render_email(folder, **ctx))
    except jinja2.TemplateError as exc:
        raise _template_failure(folder, exc) from exc
    missing = _missing_parts(content, ctx, email)
    if missing:
        raise LetterError(
            f"the reminder template {folder} left out {len(missing)} required part(s)"
        )
    return email
