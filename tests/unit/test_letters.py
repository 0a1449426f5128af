"""Reminder emails: every stage in both languages, exact amounts, inert hostile text, the legal
mention only where the strategy allows it, and a LetterError instead of a wrong email."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from decimal import Decimal
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import SMTP
from html.parser import HTMLParser

import jinja2
import pytest
from babel.dates import format_date
from babel.numbers import format_currency
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from markupsafe import escape

from receivables.collection import letters
from receivables.collection.content import (
    Contact,
    PaymentDetails,
    ReminderContent,
    StatementLine,
)
from receivables.collection.letters import (
    BABEL_LOCALES,
    LetterError,
    RenderedEmail,
    problems,
    render_reminder,
)
from receivables.collection.strategy import LOCALES, load_strategy
from receivables.render import environment
from receivables.text import has_unsafe_characters, one_line

pytestmark = pytest.mark.unit

STAGES = ("courtesy", "first_reminder", "second_reminder", "final_notice")
COMBINATIONS = [(loc, stage) for loc in LOCALES for stage in STAGES]
AS_OF = dt.date(2024, 3, 1)
# "&" in the query: the links must be escaped in the HTML attribute and still lead there
OPT_OUT = "https://receivables.example.com/reminders/opt-out?c=C001&t=abc123"
FEEDBACK = "https://receivables.example.com/reminders/feedback?c=C001&t=abc123"

#: Words of legal action, in both languages ("sue" as a word: "issued" holds it).
LEGAL_WORDS = re.compile(
    r"\b(legal|law|laws|lawsuits?|lawyers?|attorneys?|courts?|litigation|sue|proceedings)\b"
    r"|法律|诉讼|律师|法院|起诉|法务|仲裁",
    re.IGNORECASE,
)


def line(invoice_id: str = "INV-1", **overrides) -> StatementLine:
    """An open invoice, 30 days past due on AS_OF unless told otherwise."""
    values = {
        "invoice_id": invoice_id,
        "description": "Consulting, February",
        "issue_date": dt.date(2024, 1, 1),
        "due_date": dt.date(2024, 1, 31),
        "currency": "CNY",
        "amount": Decimal("1234.50"),
        "outstanding": Decimal("1234.50"),
        "days_past_due": 30,
    }
    return StatementLine(**{**values, **overrides})


def content(**overrides) -> ReminderContent:
    """A plain reminder (en, first reminder, two CNY invoices); ``overrides`` replace fields."""
    values = {
        "reminder_key": "reminder/C001/first_reminder/INV-1",
        "customer_id": "C001",
        "customer_name": "Acme Trading Ltd",
        "locale": "en",
        "stage": "first_reminder",
        "as_of": AS_OF,
        "lines": (
            line(),
            line(
                "INV-2",
                description=None,
                issue_date=dt.date(2024, 2, 1),
                due_date=dt.date(2024, 3, 10),
                amount=Decimal("100.00"),
                outstanding=Decimal("99.99"),
                days_past_due=0,
            ),
        ),
        "mentions_legal": False,
        "contact": Contact("Receivables Team", "collections@example.com", "+86 400 800 1234"),
        "payment": PaymentDetails(
            "Example Finance Co., Ltd.",
            "Bank of Example, Shanghai Branch",
            "6222 0000 1234 5678 901",
            "C001",
        ),
        "opt_out_url": OPT_OUT,
        "feedback_url": FEEDBACK,
    }
    return ReminderContent(**{**values, **overrides})


def money(amount: str, currency: str, locale: str) -> str:
    """Babel's own rendering of an exact amount."""
    return format_currency(Decimal(amount), currency, locale=BABEL_LOCALES[locale])


class _Html(HTMLParser):
    """The tags (with attributes) and the text of an HTML document, as a browser reads them."""

    def __init__(self, html: str):
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple] = []
        self.data: list[str] = []
        self.feed(html)
        self.close()

    def handle_starttag(self, tag, attrs):
        self.tags.append(("start", tag, tuple(attrs)))

    def handle_endtag(self, tag):
        self.tags.append(("end", tag))

    def handle_data(self, data):
        self.data.append(data)

    @property
    def text(self) -> str:
        return "".join(self.data)


def hrefs(html: str) -> set[str]:
    """Every link target in ``html``."""
    return {
        value
        for kind, _tag, *attrs in _Html(html).tags
        if kind == "start"
        for name, value in attrs[0]
        if name == "href"
    }


# --- every stage in both languages ------------------------------------------------------------


def test_there_are_templates_for_every_stage_of_the_strategy_in_every_locale():
    assert set(BABEL_LOCALES) == set(LOCALES)
    names = [s.name for s in load_strategy().stages]
    assert sorted(names) == sorted(STAGES)
    for locale in LOCALES:
        assert letters.stages(locale) == sorted(names)


@pytest.mark.parametrize(("locale", "stage"), COMBINATIONS)
def test_every_stage_renders_in_every_locale(locale, stage):
    email = render_reminder(content(locale=locale, stage=stage))

    assert isinstance(email, RenderedEmail)
    assert email.subject
    assert "\n" not in email.subject
    assert "Acme Trading Ltd" in email.subject
    for part in (email.text, email.html):
        assert "Acme Trading Ltd" in part
        assert "C001" in part
        assert "INV-1" in part
        assert "INV-2" in part
        assert "Consulting, February" in part
        assert "6222 0000 1234 5678 901" in part
        assert "collections@example.com" in part
        assert "+86 400 800 1234" in part
    assert email.html.startswith("<!doctype html>")
    assert f'<html lang="{locale}">' in email.html
    # one invoice per line in the plain text
    assert len([ln for ln in email.text.splitlines() if "INV-1" in ln]) == 1
    assert len([ln for ln in email.text.splitlines() if "INV-2" in ln]) == 1


@pytest.mark.parametrize("locale", LOCALES)
def test_the_stages_differ_and_speak_the_customers_language(locale):
    emails = {stage: render_reminder(content(locale=locale, stage=stage)) for stage in STAGES}
    assert len({e.subject for e in emails.values()}) == len(STAGES)
    assert len({e.text for e in emails.values()}) == len(STAGES)
    cjk = re.compile(r"[\u4e00-\u9fff]")
    for email in emails.values():
        if locale == "zh-CN":
            assert "尊敬的Acme Trading Ltd：" in email.text
            assert "贵司" in email.text
        else:
            assert email.text.startswith("Dear Acme Trading Ltd,\n")
            assert not cjk.search(email.text + email.html + email.subject)


def test_the_statement_says_which_invoices_are_late_and_which_not_yet_due():
    lines = (
        line("INV-LATE", days_past_due=1, due_date=AS_OF - dt.timedelta(days=1)),
        line("INV-TODAY", days_past_due=0, due_date=AS_OF),
        line("INV-LATER", days_past_due=0, due_date=AS_OF + dt.timedelta(days=3)),
        line("INV-OLD", days_past_due=1234, due_date=AS_OF - dt.timedelta(days=1234)),
    )
    text = render_reminder(content(lines=lines)).text
    by_id = {ln.split()[2].rstrip(":"): ln for ln in text.splitlines() if ln.startswith("- ")}
    assert "1 day past due" in by_id["INV-LATE"]
    assert "due today" in by_id["INV-TODAY"]
    assert "not yet due" in by_id["INV-LATER"]
    assert "1,234 days past due" in by_id["INV-OLD"]

    zh = render_reminder(content(lines=lines, locale="zh-CN")).text
    rows = [ln for ln in zh.splitlines() if ln.startswith("- ")]
    assert ["已逾期1天" in rows[0], "今日到期" in rows[1], "尚未到期" in rows[2]] == [True] * 3
    assert "已逾期1,234天" in rows[3]


# --- amounts and dates --------------------------------------------------------------------------


@pytest.mark.parametrize("locale", LOCALES)
def test_amounts_are_babels_rendering_of_the_exact_decimal(locale):
    lines = (
        line("A", outstanding=Decimal("0.10"), amount=Decimal("0.10")),
        line("B", outstanding=Decimal("0.20"), amount=Decimal("0.20")),
        # beyond a float's 15-17 significant digits: a float would change the cents
        line(
            "C",
            currency="USD",
            amount=Decimal("12345678901234567.89"),
            outstanding=Decimal("12345678901234567.89"),
        ),
        line("D", currency="HKD", amount=Decimal("1234.50"), outstanding=Decimal("1234.45")),
    )
    email = render_reminder(content(locale=locale, lines=lines))

    for amount, currency in (
        ("0.10", "CNY"),
        ("0.20", "CNY"),
        ("0.30", "CNY"),  # the CNY subtotal
        ("12345678901234567.89", "USD"),
        ("1234.45", "HKD"),
    ):
        shown = money(amount, currency, locale)
        assert shown in email.text
        assert str(escape(shown)) in email.html
    for part in (email.text, email.html):
        assert "0.30000000000000004" not in part  # 0.1 + 0.2 in floats
        assert "1234.4499" not in part
        assert "1,234.4499" not in part
        assert "12,345,678,901,234,568" not in part  # the float nearest the USD amount
    if locale == "en":
        assert "CN¥0.30" in email.text
        assert "$12,345,678,901,234,567.89" in email.text
    else:
        assert "¥0.30" in email.text
        assert "US$12,345,678,901,234,567.89" in email.text


def test_an_amount_is_never_rounded_to_a_currencys_minor_units():
    # JPY has no minor unit; an amount stored with cents is shown whole, not rounded away
    lines = (line(currency="JPY", amount=Decimal("1234.50"), outstanding=Decimal("1234.50")),)
    text = render_reminder(content(lines=lines)).text
    assert "¥1,234.5" in text
    assert not re.search(r"¥1,23[45](?![.\d])", text)


@pytest.mark.parametrize(
    ("locale", "as_of", "due"),
    [("en", "March 1, 2024", "Jan 31, 2024"), ("zh-CN", "2024年3月1日", "2024年1月31日")],
)
def test_dates_are_written_for_the_locale(locale, as_of, due):
    email = render_reminder(content(locale=locale))
    assert as_of == format_date(AS_OF, format="long", locale=BABEL_LOCALES[locale])
    for part in (email.text, email.html):
        assert as_of in part
        assert due in part
        assert "2024-01-31" not in part


@pytest.mark.parametrize("locale", LOCALES)
def test_several_currencies_have_one_subtotal_each_and_no_grand_total(locale):
    lines = (
        line("C1", currency="CNY", outstanding=Decimal("100.00"), amount=Decimal("100.00")),
        line("U1", currency="USD", outstanding=Decimal("20.00"), amount=Decimal("20.00")),
        line("C2", currency="CNY", outstanding=Decimal("50.25"), amount=Decimal("60.00")),
        line("H1", currency="HKD", outstanding=Decimal("3.00"), amount=Decimal("3.00")),
    )
    reminder = content(locale=locale, lines=lines)
    email = render_reminder(reminder)
    label = "Total outstanding in" if locale == "en" else "未付合计"

    totals = [ln for ln in email.text.splitlines() if label in ln]
    assert len(totals) == 3
    expected = [("CNY", "150.25", 2), ("USD", "20.00", 1), ("HKD", "3.00", 1)]
    assert [(c, str(a), n) for c, a, n in reminder.subtotals] == expected
    for total, (currency, amount, count) in zip(totals, expected, strict=True):
        assert total.count(currency) == 1  # one currency per subtotal line
        assert total.endswith(money(amount, currency, locale))
        assert str(count) in total
    assert email.html.count(label) == 3
    # the sum across currencies (173.25) is nowhere, in any currency's format
    for currency in ("CNY", "USD", "HKD"):
        for part in (email.text, email.html):
            assert money("173.25", currency, locale) not in part
            assert "173.25" not in part
    assert "Grand total" not in email.text
    assert "总计" not in email.text


@pytest.mark.parametrize("locale", LOCALES)
def test_a_single_currency_has_one_subtotal(locale):
    email = render_reminder(content(locale=locale))
    label = "Total outstanding in" if locale == "en" else "未付合计"
    totals = [ln for ln in email.text.splitlines() if label in ln]
    assert totals == [
        (
            "Total outstanding in CNY (2 invoices): "
            if locale == "en"
            else "CNY 未付合计（共2张发票）："
        )
        + money("1334.49", "CNY", locale)
    ]
    assert "separately" not in email.text
    assert "分别合计" not in email.text


# --- the legal mention --------------------------------------------------------------------------


@pytest.mark.parametrize("mentions_legal", [False, True])
@pytest.mark.parametrize(("locale", "stage"), COMBINATIONS)
def test_only_a_final_notice_that_may_mention_legal_action_does(locale, stage, mentions_legal):
    email = render_reminder(content(locale=locale, stage=stage, mentions_legal=mentions_legal))
    allowed = stage == "final_notice" and mentions_legal

    assert not LEGAL_WORDS.search(email.subject)
    for part in (email.text, _Html(email.html).text):
        assert bool(LEGAL_WORDS.search(part)) == allowed, LEGAL_WORDS.search(part)
    if allowed:
        sentence = "take legal action" if locale == "en" else "依法采取法律措施追收欠款"
        assert sentence in email.text
        assert sentence in email.html


@pytest.mark.parametrize("locale", LOCALES)
def test_a_final_notice_without_the_legal_mention_still_asks_firmly(locale):
    email = render_reminder(content(locale=locale, stage="final_notice"))
    firm = "without further delay" if locale == "en" else "请贵司立即安排支付全部未付款项"
    final = "final notice" if locale == "en" else "最终付款通知"
    assert firm in email.text
    assert firm in email.html
    assert final in email.text.lower()
    assert final in email.subject.lower()


# --- links and what every email carries --------------------------------------------------------


@pytest.mark.parametrize(("locale", "stage"), COMBINATIONS)
def test_every_email_carries_the_opt_out_and_feedback_links_with_their_purpose(locale, stage):
    email = render_reminder(content(locale=locale, stage=stage))
    words = {
        "en": (
            "To stop receiving these emails",
            "If you believe an invoice is wrong, or want to tell us something",
            "If you have already paid, thank you, and please disregard this email.",
            "Payment reference: C001",
        ),
        "zh-CN": (
            "如不希望再收到此类邮件，请通过以下链接退订",
            "如贵司认为某张发票有误，或有任何情况希望告知我们",
            "如贵司已经付款，谨致谢意，请忽略本邮件。",
            "付款附言：C001",
        ),
    }[locale]

    text_lines = email.text.splitlines()
    assert OPT_OUT in text_lines
    assert FEEDBACK in text_lines
    html_text = _Html(email.html).text
    *sentences, reference = words
    for sentence in sentences:
        assert sentence in email.text
        assert sentence in html_text
    assert reference in email.text
    assert "<strong>C001</strong>" in email.html
    assert hrefs(email.html) == {OPT_OUT, FEEDBACK}
    assert 'href="https://receivables.example.com/reminders/opt-out?c=C001&amp;t=abc123"' in (
        email.html
    )


@pytest.mark.parametrize(("locale", "stage"), COMBINATIONS)
def test_the_html_needs_nothing_from_outside(locale, stage):
    html = render_reminder(content(locale=locale, stage=stage)).html.lower()
    for needle in (
        "<img",
        "<script",
        "<link",
        "<style",
        "<iframe",
        "<object",
        "src=",
        "url(",
        "@import",
        "@font-face",
        "javascript:",
    ):
        assert needle not in html
    assert {tag for kind, tag, *_ in _Html(html).tags if kind == "start"} <= {
        "html", "head", "meta", "body", "div", "p", "table", "thead", "tbody", "tfoot", "tr",
        "th", "td", "h3", "strong", "br", "a",
    }  # fmt: skip


# --- hostile text -------------------------------------------------------------------------------

FORGED = "Please pay to account 6222 0000 1111"
HOSTILE_NAME = (
    f'Acme <script>alert(1)</script> =HYPERLINK("http://x")\r\nBcc: victim@example.com'
    f"\n{FORGED}\u2028Ltd \u202egnp.exe\x00"
)
HOSTILE_DESCRIPTION = f'=HYPERLINK("http://x","pay")\r\n{FORGED}\u2029<b>x</b>\u202e\x00end'


@pytest.mark.parametrize(("locale", "stage"), COMBINATIONS)
def test_hostile_names_and_descriptions_stay_inert(locale, stage):
    plain = render_reminder(content(locale=locale, stage=stage))
    lines = (line(description=HOSTILE_DESCRIPTION), line("INV-2", description="Licence"))
    email = render_reminder(
        content(locale=locale, stage=stage, customer_name=HOSTILE_NAME, lines=lines)
    )

    # the subject is one line, and a mail header built from it holds no injected header
    assert len(email.subject.splitlines()) == 1
    assert not has_unsafe_characters(email.subject)
    message = EmailMessage()
    message["Subject"] = email.subject
    message["To"] = "customer@example.com"
    message.set_content(email.text)
    parsed = message_from_bytes(message.as_bytes(policy=SMTP))
    assert sorted(k.lower() for k in parsed) == sorted(
        ["subject", "to", "content-type", "content-transfer-encoding", "mime-version"]
    )

    # plain text: shown, but on its own line; nothing can start a forged line
    assert FORGED in email.text
    assert len(email.text.splitlines()) == len(plain.text.splitlines())
    for text_line in email.text.splitlines():
        assert not has_unsafe_characters(text_line)
        assert not text_line.startswith((FORGED, "Bcc:", "\u202e"))
    assert '=HYPERLINK("http://x")' in email.text

    # HTML: escaped, the same document as with plain values
    assert "<script" not in email.html
    assert "<b>" not in email.html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in email.html
    assert "=HYPERLINK(&#34;http://x&#34;)" in email.html
    assert hrefs(email.html) == {OPT_OUT, FEEDBACK}
    assert not any(has_unsafe_characters(ln) for ln in email.html.splitlines())
    assert len(email.html.splitlines()) == len(plain.html.splitlines())
    assert [t for t in _Html(email.html).tags] == [t for t in _Html(plain.html).tags]
    assert one_line(HOSTILE_NAME) in _Html(email.html).text


def test_a_long_name_is_shortened_in_the_subject_only():
    name = "Very Long Company Name " * 10
    email = render_reminder(content(customer_name=name))
    assert len(email.subject) < len("Payment reminder ()") + letters.SUBJECT_NAME_LENGTH + 1
    assert "…" in email.subject
    assert one_line(name) in email.text


_TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=80)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    name=_TEXT.filter(lambda s: one_line(s) != ""),
    description=_TEXT,
    combination=st.sampled_from(COMBINATIONS),
)
def test_any_text_stays_one_line_and_escaped(name, description, combination):
    locale, stage = combination
    lines = (line(description="placeholder"),)
    plain = render_reminder(content(locale=locale, stage=stage, lines=lines))
    email = render_reminder(
        content(
            locale=locale,
            stage=stage,
            customer_name=name,
            lines=(line(description=description or "placeholder"),),
        )
    )

    assert len(email.subject.splitlines()) == 1
    assert not has_unsafe_characters(email.subject)
    assert len(email.text.splitlines()) == len(plain.text.splitlines())
    assert not any(has_unsafe_characters(ln) for ln in email.text.splitlines())
    # the HTML is the same document whatever the text: no tag, attribute or link from it
    parsed, plain_parsed = _Html(email.html), _Html(plain.html)
    assert parsed.tags == plain_parsed.tags
    assert one_line(name) in parsed.text
    if one_line(description):
        assert one_line(description)[:50] in parsed.text
    assert len(email.html.splitlines()) == len(plain.html.splitlines())


# --- refusals -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"locale": "fr"}, "unsupported locale 'fr'"),
        ({"locale": "zh"}, "unsupported locale 'zh'"),
        ({"lines": ()}, "the statement has no open invoices"),
        ({"lines": (line(currency="XYZ"),)}, "invoice INV-1 is in 'XYZ', which is not an ISO"),
        ({"lines": (line(currency="cny"),)}, "which is not an ISO 4217 currency"),
        ({"opt_out_url": ""}, "the opt-out link is empty"),
        ({"opt_out_url": "  \n"}, "the opt-out link is empty"),
        ({"feedback_url": ""}, "the feedback link is empty"),
        ({"feedback_url": "javascript:alert(1)"}, "the feedback link is not an http(s) address"),
        ({"opt_out_url": "https://x.example/a\nb"}, "the opt-out link is not an http(s)"),
        ({"stage": "legal_threat"}, "no en reminder templates for stage 'legal_threat'"),
        ({"stage": "../../ops/task_failure"}, "no en reminder templates for stage"),
        ({"customer_name": " \r\n\u202e"}, "customer C001 has no name"),
        ({"lines": (line(outstanding=1234.5),)}, "is not an exact decimal amount"),
        ({"lines": (line(outstanding=Decimal("NaN")),)}, "is not an exact decimal amount"),
        ({"lines": (line(outstanding=Decimal("1234.4999")),)}, "not a whole number of cents"),
        ({"lines": (line(outstanding=Decimal("0.00")),)}, "invoice INV-1 has nothing outstanding"),
        ({"lines": (line(outstanding=Decimal("-5.00")),)}, "has nothing outstanding"),
        ({"contact": Contact("", "collections@example.com")}, "the contact has no name"),
        ({"payment": PaymentDetails("X", "", "1", "C001")}, "payment details are incomplete"),
    ],
)
def test_content_that_cannot_become_a_correct_email_is_refused(overrides, reason):
    bad = content(**{"customer_name": "Secret Person Ltd", **overrides})
    found = problems(bad)
    assert any(reason in p for p in found), found
    with pytest.raises(LetterError) as refused:
        render_reminder(bad)
    assert reason in refused.value.reason
    assert str(refused.value) == refused.value.reason
    # one plain line, without the customer's name or the contact's address
    assert len(refused.value.reason.splitlines()) == 1
    assert not has_unsafe_characters(refused.value.reason)
    assert "Secret Person" not in refused.value.reason
    assert "collections@example.com" not in refused.value.reason


def test_good_content_has_no_problems():
    for locale, stage in COMBINATIONS:
        assert problems(content(locale=locale, stage=stage)) == []


@pytest.fixture
def extra_templates(tmp_path, monkeypatch):
    """Templates of an extra stage ``broken`` (written by the test) beside the real ones."""
    folder = tmp_path / "reminders" / "en" / "broken"
    folder.mkdir(parents=True)
    env = environment()
    monkeypatch.setattr(
        env, "loader", jinja2.ChoiceLoader([env.loader, jinja2.FileSystemLoader(tmp_path)])
    )
    monkeypatch.setattr(letters, "TEMPLATES_DIR", tmp_path)
    return folder


def rewrite(path, text: str) -> None:
    """Replace a template; the environment's cache forgets it even if the mtime is unchanged."""
    path.write_text(text, encoding="utf-8")
    environment().cache.clear()


def test_a_template_that_fails_to_render_is_a_letter_error(extra_templates):
    rewrite(extra_templates / "subject.txt", "Reminder {{ customer_name }}")
    rewrite(extra_templates / "body.txt", "{{ no_such_value.anything }}")
    rewrite(extra_templates / "body.html", "<p>{{ customer_name }}</p>")
    with pytest.raises(LetterError, match=r"reminders/en/broken failed to render \(Undefined"):
        render_reminder(content(stage="broken"))

    rewrite(extra_templates / "body.txt", "{% if %}")
    with pytest.raises(LetterError, match=r"failed to render \(TemplateSyntaxError"):
        render_reminder(content(stage="broken"))


def test_a_template_that_leaves_out_the_opt_out_link_is_a_letter_error(extra_templates):
    rewrite(extra_templates / "subject.txt", "Reminder {{ customer_name }}")
    body = "{% for l in lines %}{{ l.invoice_id }} {% endfor %}{{ subtotals[0].outstanding }} "
    body += "{{ payment.reference }} {{ feedback_url }}"
    rewrite(extra_templates / "body.txt", body)
    rewrite(extra_templates / "body.html", body + " {{ opt_out_url }}")
    with pytest.raises(LetterError, match="left out 1 required part"):
        render_reminder(content(stage="broken"))
    rewrite(extra_templates / "body.txt", body + " {{ opt_out_url }}")
    assert render_reminder(content(stage="broken")).subject == "Reminder Acme Trading Ltd"


def test_the_rendered_email_is_frozen():
    email = render_reminder(content())
    with pytest.raises(dataclasses.FrozenInstanceError):
        email.subject = "changed"  # type: ignore[misc]


_ANY_CURRENCY = sorted(letters._currencies())


@settings(max_examples=400, deadline=None)
@given(
    amount=st.decimals(allow_nan=True, allow_infinity=True, places=None)
    | st.decimals(min_value=0, max_value=Decimal("1e13"), places=2)
    | st.decimals(min_value=0, max_value=Decimal("1e6"), places=3),
    currency=st.sampled_from(["CNY", "USD", "EUR", "HKD", "JPY", "KWD", "CLF"])
    | st.sampled_from(_ANY_CURRENCY),
    locale=st.sampled_from(sorted(letters.BABEL_LOCALES.values())),
)
def test_an_amount_reads_exactly_as_babel_writes_it(amount, currency, locale):
    # the fast path (the currency's shape, checked once) never differs from Babel itself, not
    # even in what it refuses (a signalling NaN)
    def outcome(write):
        try:
            return write()
        except ArithmeticError as exc:
            return type(exc)

    assert outcome(lambda: letters._money(amount, currency, locale)) == outcome(
        lambda: format_currency(amount, currency, locale=locale, decimal_quantization=False)
    )


def test_amounts_of_the_usual_currencies_take_the_checked_shape():
    assert letters._money_shape("CNY", "zh_CN") == ("¥", "", 2)
    assert letters._money_shape("USD", "en") == ("$", "", 2)
    assert letters._money_shape("JPY", "en") == ("¥", "", 0)
    assert letters._money(Decimal("1234567.5"), "CNY", "zh_CN") == "¥1,234,567.50"
    assert letters._money(Decimal("1234.567"), "CNY", "zh_CN") == "¥1,234.567"  # never rounded
    assert letters._money(Decimal("-3.1"), "USD", "en") == "-$3.10"
