"""Unit tests of the row checks (receivables.ingest.rules): each parser, then check_batch."""

from __future__ import annotations

import datetime as dt
import re

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from receivables.ingest.kinds import (
    KINDS,
    RESERVED_PREFIXES,
    Column,
    FileKind,
    kind_for,
    ordered_kinds,
)
from receivables.ingest.reader import Batch
from receivables.ingest.rules import (
    PROBLEM_SCHEMA,
    REASON_AMOUNT,
    REASON_AMOUNT_COMMA,
    REASON_AMOUNT_LARGE,
    REASON_AMOUNT_NEGATIVE,
    REASON_AMOUNT_POSITIVE,
    REASON_AMOUNT_SCALE,
    REASON_BOOL,
    REASON_CURRENCY,
    REASON_DATE,
    REASON_DATE_RANGE,
    REASON_EMAIL,
    REASON_LOCALE,
    REASON_RATE,
    REASON_RATE_LARGE,
    REASON_RATE_SCALE,
    REASON_REQUIRED,
    REASON_TIMEZONE,
    check_batch,
    find_forbidden,
    parse_amount,
    parse_bool,
    parse_currency,
    parse_date,
    parse_email_list,
    parse_id,
    parse_locale,
    parse_rate,
    parse_text,
    parse_timezone,
    shown,
    staged_type,
)
from receivables.text import BIDI_CONTROLS, CONTROL_CHARACTERS, LINE_SEPARATORS, excerpt

AMOUNT = Column("amount", "amount", required=True)
CREDIT_LIMIT = Column("credit_limit", "amount", positive=False)
EMAIL = Column("email", "email_list", max_length=2000)
ID64 = Column("customer_id", "id", required=True, max_length=64)
TEXT = Column("description", "text", max_length=20)


def run(parser, value: str | None, column: Column | None = None) -> tuple[object, list[str]]:
    """Parse one value: (parsed value, reasons of the failed checks)."""
    parsed = parser(pa.array([value], pa.string()), column)
    reasons = [reason for mask, reason in parsed.failures if bool(mask[0])]
    return parsed.values[0].as_py(), reasons


def run_many(parser, values: list[str | None], column: Column | None = None):
    parsed = parser(pa.array(values, pa.string()), column)
    failed = np.zeros(len(values), dtype=bool)
    for mask, _ in parsed.failures:
        assert len(mask) == len(values)
        failed |= mask
    return parsed.values.to_pylist(), failed


# --- parse_date ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-02-29", dt.date(2024, 2, 29)),
        ("2024/03/05", dt.date(2024, 3, 5)),
        ("20240305", dt.date(2024, 3, 5)),
        ("2024-01-31", dt.date(2024, 1, 31)),
        ("2024-04-30", dt.date(2024, 4, 30)),
        ("2024-12-31", dt.date(2024, 12, 31)),
        ("2000-02-29", dt.date(2000, 2, 29)),
        ("1900-01-01", dt.date(1900, 1, 1)),
        ("2199-12-31", dt.date(2199, 12, 31)),
    ],
)
def test_parse_date_valid(text, expected):
    assert run(parse_date, text) == (expected, [])


@pytest.mark.parametrize(
    "text",
    [
        "2023-02-29",
        "2024-02-30",
        "2024-13-01",
        "2024-00-10",
        "2024-04-31",
        "2024-01-00",
        "1900-02-29",
        "2024-3-5",
        "05/03/2024",
        "2024/03-05",
        "2024.03.05",
        "240305",
        "2024-03-05T00:00",
        "2024-03-05 10:00:00",
        "March 5, 2024",
        "20241305",
    ],
)
def test_parse_date_invalid(text):
    assert run(parse_date, text) == (None, [REASON_DATE])


@pytest.mark.parametrize("text", ["1899-12-31", "2200-01-01", "0001-01-01", "99991231"])
def test_parse_date_out_of_range(text):
    assert run(parse_date, text) == (None, [REASON_DATE_RANGE])


def test_parse_date_nulls_stay_null_without_failure():
    values, failed = run_many(parse_date, [None, "2024-03-05", None])
    assert values == [None, dt.date(2024, 3, 5), None]
    assert not failed.any()


def test_parse_date_vector_keeps_positions():
    values, failed = run_many(parse_date, ["2024-02-29", "2023-02-29", None, "1899-12-31"])
    assert values == [dt.date(2024, 2, 29), None, None, None]
    assert failed.tolist() == [False, True, False, True]


@settings(max_examples=50, deadline=None)
@given(st.lists(st.dates(dt.date(1900, 1, 1), dt.date(2199, 12, 31)), min_size=1, max_size=30))
def test_parse_date_round_trips_every_format(days):
    for fmt in ("%Y-%m-%d", "%Y/%m/%d", "%Y%m%d"):
        values, failed = run_many(parse_date, [d.strftime(fmt) for d in days])
        assert values == days
        assert not failed.any()


# --- parse_amount ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "cents"),
    [
        ("1,234.50", 123450),
        ("1234.5", 123450),
        ("0.10", 10),
        ("+7", 700),
        ("007.100", 710),
        ("12.3400", 1234),
        ("1,234", 123400),
        ("1,234,567.89", 123456789),
        ("0.01", 1),
        ("9999999999999.99", 999999999999999),
        ("9,999,999,999,999.99", 999999999999999),
    ],
)
def test_parse_amount_valid(text, cents):
    assert run(parse_amount, text, AMOUNT) == (cents, [])


@pytest.mark.parametrize(
    "text",
    [
        "12,34.5",
        "1,2345",
        ",123",
        "1e5",
        "1E5",
        "¥100",
        "100元",
        "$5",
        "1 234",
        "1.2.3",
        ".5",
        "5.",
        "-",
        "abc",
        "1,234.5,0",
        "(5.00)",
    ],
)
def test_parse_amount_not_an_amount(text):
    value, reasons = run(parse_amount, text, AMOUNT)
    assert value is None
    assert reasons == [REASON_AMOUNT]


@pytest.mark.parametrize(
    "text",
    [
        "1e20",
        "１２３",  # full-width digits
        "１２３.００",
        "٣",  # Arabic-Indic digit
        "12.3.4",
        "--5",
        "+-5",
        " 5 ",  # the readers trim values; a value that reaches the rule untrimmed is refused
        "NaN",
        "nan",
        "Infinity",
        "-inf",
        "0x10",
        "1_000",
        "1\u00a0000",
        "",
    ],
)
def test_parse_amount_hostile_text_is_refused_with_a_reason(text):
    assert run(parse_amount, text, AMOUNT) == (None, [REASON_AMOUNT])


@pytest.mark.parametrize("text", ["5,00", "5,5", "-5,00", "1.234,50", "12,34"])
def test_parse_amount_decimal_comma_says_so(text):
    assert run(parse_amount, text, AMOUNT) == (None, [REASON_AMOUNT_COMMA])


@pytest.mark.parametrize("column", [AMOUNT, CREDIT_LIMIT])
def test_parse_amount_range_ends_at_what_the_warehouse_holds(column):
    assert run(parse_amount, "9,999,999,999,999.99", column) == (999_999_999_999_999, [])
    assert run(parse_amount, "9999999999999.99", column) == (999_999_999_999_999, [])
    assert run(parse_amount, "0009999999999999.990", column) == (999_999_999_999_999, [])
    for one_cent_more in ("10,000,000,000,000.00", "10000000000000", "10000000000000.00"):
        assert run(parse_amount, one_cent_more, column) == (None, [REASON_AMOUNT_LARGE])
    # far beyond 64 bits: refused, never an overflow
    assert run(parse_amount, "9" * 40, column) == (None, [REASON_AMOUNT_LARGE])
    assert run(parse_amount, "-" + "9" * 40, column) == (None, [REASON_AMOUNT_LARGE])


@pytest.mark.parametrize("text", ["12.345", "0.001", "1.999"])
def test_parse_amount_more_than_two_decimals(text):
    assert run(parse_amount, text, AMOUNT) == (None, [REASON_AMOUNT_SCALE])


@pytest.mark.parametrize("text", ["12345678901234", "10,000,000,000,000.00", "99999999999999.5"])
def test_parse_amount_too_large(text):
    assert run(parse_amount, text, AMOUNT) == (None, [REASON_AMOUNT_LARGE])


@pytest.mark.parametrize("text", ["0", "0.00", "-5", "-0.01", "-0"])
def test_parse_amount_must_be_positive(text):
    _, reasons = run(parse_amount, text, AMOUNT)
    assert reasons == [REASON_AMOUNT_POSITIVE]


@pytest.mark.parametrize(("text", "cents"), [("0", 0), ("0.00", 0), ("50,000", 5000000)])
def test_parse_amount_non_negative_column_accepts_zero(text, cents):
    assert run(parse_amount, text, CREDIT_LIMIT) == (cents, [])


@pytest.mark.parametrize("text", ["-1", "-0.01", "-1,000.00"])
def test_parse_amount_non_negative_column_refuses_negative(text):
    _, reasons = run(parse_amount, text, CREDIT_LIMIT)
    assert reasons == [REASON_AMOUNT_NEGATIVE]


def test_parse_amount_nulls_stay_null_without_failure():
    values, failed = run_many(parse_amount, [None, "1.00", None], AMOUNT)
    assert values == [None, 100, None]
    assert not failed.any()


def test_parse_amount_is_int64_cents():
    parsed = parse_amount(pa.array(["1.00", None]), AMOUNT)
    assert parsed.values.type == pa.int64()


def _plain(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}"


def _grouped(cents: int) -> str:
    return f"{cents // 100:,}.{cents % 100:02d}"


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(0, 10**15 - 1), min_size=1, max_size=40))
def test_parse_amount_is_exact(cents):
    for texts in ([_plain(c) for c in cents], [_grouped(c) for c in cents]):
        values, failed = run_many(parse_amount, texts, CREDIT_LIMIT)
        assert values == cents
        assert not failed.any()


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(1, 10**15 - 1), min_size=1, max_size=40))
def test_parse_amount_negative_is_exact(cents):
    values, _ = run_many(parse_amount, ["-" + _plain(c) for c in cents], CREDIT_LIMIT)
    assert values == [-c for c in cents]


# --- parse_bool ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("true", True),
        ("TRUE", True),
        ("True", True),
        ("1", True),
        ("yes", True),
        ("YES", True),
        ("Y", True),
        ("y", True),
        ("是", True),
        ("false", False),
        ("False", False),
        ("0", False),
        ("no", False),
        ("No", False),
        ("N", False),
        ("n", False),
        ("否", False),
    ],
)
def test_parse_bool_valid(text, expected):
    assert run(parse_bool, text) == (expected, [])


@pytest.mark.parametrize("text", ["maybe", "2", "-1", "ja", "oui", "yess", "是的"])
def test_parse_bool_invalid(text):
    assert run(parse_bool, text) == (None, [REASON_BOOL])


def test_parse_bool_null_stays_null():
    assert run(parse_bool, None) == (None, [])


# --- parse_email_list ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "tidy"),
    [
        ("a@x.example.com", "a@x.example.com"),
        ("a@x.example.com; b@y.example.com", "a@x.example.com;b@y.example.com"),
        ("a@x.example.com ;b@y.example.com", "a@x.example.com;b@y.example.com"),
        ("a@x.example.com;", "a@x.example.com"),
        ("a@x.example.com; ", "a@x.example.com"),
        ("first.last+tag@sub.x.example.com", "first.last+tag@sub.x.example.com"),
    ],
)
def test_parse_email_list_valid(text, tidy):
    assert run(parse_email_list, text, EMAIL) == (tidy, [])


@pytest.mark.parametrize(
    "text",
    [
        "not-an-email",
        "a@b",
        "a@@b.com",
        "@x.example.com",
        "a@x.example.com, b@y.example.com",
        "a b@x.example.com",
        "a@x.example.com;b",
        "a@.com",
    ],
)
def test_parse_email_list_invalid(text):
    _, reasons = run(parse_email_list, text, EMAIL)
    assert reasons == [REASON_EMAIL]


def test_parse_email_list_too_long():
    addresses = ";".join(f"person{i}@x.example.com" for i in range(20))
    _, reasons = run(parse_email_list, addresses, Column("email", "email_list", max_length=100))
    assert reasons == ["longer than 100 characters"]


def test_parse_email_list_null_stays_null():
    assert run(parse_email_list, None, EMAIL) == (None, [])


# --- parse_locale / parse_timezone / parse_currency ------------------------------------------


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("zh-CN", "zh-CN"),
        ("zh_cn", "zh-CN"),
        ("ZH", "zh-CN"),
        ("zh-Hans", "zh-CN"),
        ("en", "en"),
        ("EN", "en"),
        ("en-US", "en"),
        ("en_GB", "en"),
    ],
)
def test_parse_locale_valid(text, canonical):
    assert run(parse_locale, text) == (canonical, [])


@pytest.mark.parametrize("text", ["fr", "zh-TW", "english", "de-DE"])
def test_parse_locale_invalid(text):
    assert run(parse_locale, text) == (None, [REASON_LOCALE])


@pytest.mark.parametrize("text", ["Asia/Shanghai", "Asia/Hong_Kong", "America/New_York", "UTC"])
def test_parse_timezone_valid(text):
    assert run(parse_timezone, text) == (text, [])


@pytest.mark.parametrize("text", ["Mars/Base", "Asia/Beijing", "GMT+8", "+08:00"])
def test_parse_timezone_invalid(text):
    _, reasons = run(parse_timezone, text)
    assert reasons == [REASON_TIMEZONE]


@pytest.mark.parametrize(
    ("text", "code"),
    [("cny", "CNY"), ("CNY", "CNY"), ("usd", "USD"), ("HKD", "HKD"), ("Eur", "EUR")],
)
def test_parse_currency_valid(text, code):
    assert run(parse_currency, text) == (code, [])


@pytest.mark.parametrize("text", ["XXX", "XTS", "ABC", "XAU", "RMB", "US$", "CN"])
def test_parse_currency_invalid(text):
    _, reasons = run(parse_currency, text)
    assert reasons == [REASON_CURRENCY]


# --- parse_rate -------------------------------------------------------------------------------

RATE = Column("rate", "rate", required=True)


@pytest.mark.parametrize(
    ("text", "units"),
    [
        ("7.1234", 71_234_000_000),
        ("0.0004412345", 4_412_345),
        ("0.0000000001", 1),
        ("1", 10_000_000_000),
        ("1.0000000000", 10_000_000_000),
        ("+0.5", 5_000_000_000),
        ("007.10", 71_000_000_000),
        ("0.00044123450000", 4_412_345),  # trailing zeros are not precision
        ("99999999.9999999999", 999_999_999_999_999_999),
    ],
)
def test_parse_rate_valid(text, units):
    assert run(parse_rate, text, RATE) == (units, [])


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("0", REASON_AMOUNT_POSITIVE),
        ("0.0000000000", REASON_AMOUNT_POSITIVE),
        ("-1", REASON_AMOUNT_POSITIVE),
        ("-0.0004412345", REASON_AMOUNT_POSITIVE),
        ("0.00044123456", REASON_RATE_SCALE),
        ("7.12345678901", REASON_RATE_SCALE),
        ("100000000", REASON_RATE_LARGE),
        ("123456789.5", REASON_RATE_LARGE),
        ("9" * 40, REASON_RATE_LARGE),
        ("seven", REASON_RATE),
        ("4.4e-4", REASON_RATE),
        ("1,234.5", REASON_RATE),
        ("7,1234", REASON_RATE),
        (".5", REASON_RATE),
        ("5.", REASON_RATE),
        ("NaN", REASON_RATE),
        ("７.１", REASON_RATE),
        ("1/7", REASON_RATE),
    ],
)
def test_parse_rate_invalid(text, reason):
    value, reasons = run(parse_rate, text, RATE)
    assert reasons == [reason]
    if reason != REASON_AMOUNT_POSITIVE:
        assert value is None


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(1, 10**18 - 1), min_size=1, max_size=40))
def test_parse_rate_is_exact(units):
    texts = [f"{u // 10**10}.{u % 10**10:010d}" for u in units]
    values, failed = run_many(parse_rate, texts, RATE)
    assert values == units
    assert not failed.any()


def test_parse_rate_is_int64_units_and_keeps_nulls():
    parsed = parse_rate(pa.array(["1", None]), RATE)
    assert parsed.values.type == pa.int64()
    assert parsed.values.to_pylist() == [10_000_000_000, None]
    assert not any(mask.any() for mask, _ in parsed.failures)


@pytest.mark.parametrize("parser", [parse_locale, parse_timezone, parse_currency])
def test_code_parsers_keep_nulls(parser):
    assert run(parser, None) == (None, [])


# --- parse_id / parse_text -------------------------------------------------------------------


@pytest.mark.parametrize("text", ["C001", "c" * 64, "恒" * 64, "INV-2024/0001 (a)"])
def test_parse_id_valid(text):
    assert run(parse_id, text, ID64) == (text, [])


def test_parse_id_too_long():
    assert run(parse_id, "c" * 65, ID64) == ("c" * 65, ["longer than 64 characters"])


def test_parse_text():
    assert run(parse_text, "x" * 20, TEXT) == ("x" * 20, [])
    assert run(parse_text, "恒" * 20, TEXT) == ("恒" * 20, [])
    assert run(parse_text, "x" * 21, TEXT) == ("x" * 21, ["longer than 20 characters"])
    assert run(parse_text, None, TEXT) == (None, [])


# --- find_forbidden: control, separator and bidirectional characters -------------------------

NAME = Column("name", "text", required=True)
MULTILINE = Column("description", "text", max_length=2000, multiline=True)


def forbidden(value: str | None, column: Column) -> str | None:
    """The reason ``column`` refuses ``value`` for its characters, or None."""
    mask, reasons = find_forbidden(pa.array([value], pa.string()), column)
    assert bool(mask[0]) == (reasons[0].as_py() is not None)
    return reasons[0].as_py()


#: (character, what the reason calls it, escaped as)
UNSAFE_CHARACTERS = [
    ("\x00", "a control character", "\\x00"),
    ("\x01", "a control character", "\\x01"),
    ("\x08", "a control character", "\\x08"),
    ("\n", "a line break", "\\x0a"),
    ("\x0b", "a control character", "\\x0b"),
    ("\x0c", "a control character", "\\x0c"),
    ("\r", "a line break", "\\x0d"),
    ("\x1b", "a control character", "\\x1b"),
    ("\x1f", "a control character", "\\x1f"),
    ("\x7f", "a control character", "\\x7f"),
    ("\x85", "a control character", "\\x85"),
    ("\x9f", "a control character", "\\x9f"),
    ("\u2028", "a line or paragraph separator", "\\u2028"),
    ("\u2029", "a line or paragraph separator", "\\u2029"),
    ("\u202a", "a bidirectional control character", "\\u202a"),
    ("\u202b", "a bidirectional control character", "\\u202b"),
    ("\u202c", "a bidirectional control character", "\\u202c"),
    ("\u202d", "a bidirectional control character", "\\u202d"),
    ("\u202e", "a bidirectional control character", "\\u202e"),
    ("\u2066", "a bidirectional control character", "\\u2066"),
    ("\u2067", "a bidirectional control character", "\\u2067"),
    ("\u2068", "a bidirectional control character", "\\u2068"),
    ("\u2069", "a bidirectional control character", "\\u2069"),
]


@pytest.mark.parametrize(("char", "what", "escaped"), UNSAFE_CHARACTERS)
@pytest.mark.parametrize("column", [NAME, ID64, EMAIL, Column("currency", "currency")])
def test_find_forbidden_names_the_character_and_its_position(char, what, escaped, column):
    reason = forbidden(f"恒达{char}x", column)
    assert reason == f"contains {what} ({escaped}) at position 3: remove it"
    assert char not in reason


@pytest.mark.parametrize(("char", "what", "escaped"), UNSAFE_CHARACTERS)
def test_find_forbidden_multiline_text_allows_line_breaks_only(char, what, escaped):
    reason = forbidden(f"line one{char}x", MULTILINE)
    if char in "\r\n":
        assert reason is None
    else:
        assert reason == f"contains {what} ({escaped}) at position 9: remove it"


@pytest.mark.parametrize(
    "text",
    [
        "first line\nsecond line",
        "windows\r\nline ends\r\n",
        "a\tb\tc",
        "恒达贸易有限公司 2024年1月 货款",
        "Zürich – “quoted” — ½ €5 😀 \u3000 full-width space",
        "Arabic text: مرحبا",  # right-to-left script is fine; only the controls are not
    ],
)
def test_find_forbidden_multiline_text_accepts_ordinary_text(text):
    assert forbidden(text, MULTILINE) is None


@pytest.mark.parametrize(
    "text", ["Acme\tLtd", "恒达贸易有限公司", "O'Brien & Sons (HK) Ltd.", "Café 😀", "مرحبا"]
)
def test_find_forbidden_single_line_text_allows_tabs_and_any_script(text):
    assert forbidden(text, NAME) is None


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("C\t001", "contains a tab (\\x09) at position 2: remove it"),
        (
            "C001\u200b",
            "contains an invisible formatting character (\\u200b) at position 5: remove it",
        ),
        (
            "\ufeffC001",
            "contains an invisible formatting character (\\ufeff) at position 1: remove it",
        ),
        ("C00\xad1", "contains an invisible formatting character (\\xad) at position 4: remove it"),
    ],
)
def test_find_forbidden_ids_also_refuse_tabs_and_invisible_characters(text, reason):
    assert forbidden(text, ID64) == reason
    assert forbidden(text, NAME) is None  # free text may hold them


def test_find_forbidden_names_the_first_of_several():
    assert forbidden("ab\u202ec\x00", NAME) == (
        "contains a bidirectional control character (\\u202e) at position 3: remove it"
    )


def test_find_forbidden_among_searches_only_the_given_rows():
    values = pa.array(["a\x00", "b\x00", None, "ok"], pa.string())
    mask, reasons = find_forbidden(values, NAME, among=np.array([False, True, True, True]))
    assert mask.tolist() == [False, True, False, False]
    assert reasons.to_pylist() == [
        None,
        "contains a control character (\\x00) at position 2: remove it",
        None,
        None,
    ]


def test_find_forbidden_nulls_and_clean_values_pass():
    mask, reasons = find_forbidden(pa.array([None, "x", ""], pa.string()), NAME)
    assert not mask.any()
    assert reasons.null_count == 3


def test_shown_escapes_and_cuts_only_what_needs_it():
    values = pa.array(["plain", None, "a\x00b", "x" * 201, "\u202e" * 300, "tab\tok"], pa.string())
    out = shown(values).to_pylist()
    assert out[:2] == ["plain", None]
    assert out[5] == "tab\tok"
    assert out[2] == "a\\x00b"
    assert out[3] == "x" * 200 + "… (201 characters)"
    # escapes take 6 characters each: cut further so it fits a VARCHAR(255)
    assert out[4].startswith("\\u202e")
    assert len(out[4]) <= 255
    assert "\u202e" not in out[4]
    assert out[4].endswith("(300 characters)")


# --- check_batch -----------------------------------------------------------------------------

GOOD_ROWS: dict[str, dict[str, str]] = {
    "fx_rates": {"rate_date": "2024/03/01", "currency": "idr", "rate": "0.0004412345"},
    "collectors": {
        "collector_id": "K01",
        "name": "李伟",
        "email": "li.wei@x.example.com",
        "team": "East",
    },
    "customers": {
        "customer_id": "C001",
        "name": "恒达贸易有限公司",
        "email": "a@x.example.com; b@x.example.com",
        "phone": "+86 21 5555 0101",
        "locale": "zh_cn",
        "timezone": "Asia/Shanghai",
        "segment": "wholesale",
        "credit_limit": "50,000.00",
        "currency": "cny",
        "collector_id": "K01",
        "do_not_contact": "否",
    },
    "invoices": {
        "invoice_id": "INV-1",
        "customer_id": "C001",
        "issue_date": "2024-03-05",
        "due_date": "2024/04/04",
        "amount": "1,234.50",
        "currency": "usd",
        "description": "Consulting, March\r\nsecond line\twith a tab",
        "disputed": "No",
    },
    "payments": {
        "payment_id": "P-1",
        "invoice_id": "INV-1",
        "paid_date": "20240310",
        "amount": "100",
        "method": "bank transfer",
    },
    "legal_updates": {
        "case_id": "LC-1",
        "status": "Written Off",
        "date": "2024/03/01",
        "amount": "1,000.00",
        "currency": "cny",
        "note": "line one\r\nline two",
        "actor": "Legal team",
    },
    "feedback": {
        "feedback_id": "F-1",
        "date": "2024/03/01",
        "author": "王芳",
        "team": "East",
        "topic": "Strategy",
        "text": "第二次提醒太晚。\r\nsecond line\twith a tab",
    },
}

STAGED_GOOD: dict[str, dict[str, object]] = {
    "fx_rates": {
        "rate_date": dt.date(2024, 3, 1),
        "currency": "IDR",
        "rate_e10": 4_412_345,
        "rate_id": "2024-03-01 IDR",
    },
    "collectors": {
        "collector_id": "K01",
        "name": "李伟",
        "email": "li.wei@x.example.com",
        "team": "East",
    },
    "customers": {
        "customer_id": "C001",
        "name": "恒达贸易有限公司",
        "email": "a@x.example.com;b@x.example.com",
        "phone": "+86 21 5555 0101",
        "locale": "zh-CN",
        "timezone": "Asia/Shanghai",
        "segment": "wholesale",
        "credit_limit_cents": 5000000,
        "currency": "CNY",
        "collector_id": "K01",
        "do_not_contact": False,
    },
    "invoices": {
        "invoice_id": "INV-1",
        "customer_id": "C001",
        "issue_date": dt.date(2024, 3, 5),
        "due_date": dt.date(2024, 4, 4),
        "amount_cents": 123450,
        "currency": "USD",
        "description": "Consulting, March\r\nsecond line\twith a tab",
        "disputed": False,
    },
    "payments": {
        "payment_id": "P-1",
        "invoice_id": "INV-1",
        "paid_date": dt.date(2024, 3, 10),
        "amount_cents": 10000,
        "method": "bank transfer",
    },
    "legal_updates": {
        "case_id": "LC-1",
        "status": "written_off",
        "date": dt.date(2024, 3, 1),
        "amount_cents": 100000,
        "currency": "CNY",
        "note": "line one\r\nline two",
        "actor": "Legal team",
        "step_id": "LC-1 written_off",
    },
    "feedback": {
        "feedback_id": "F-1",
        "date": dt.date(2024, 3, 1),
        "author": "王芳",
        "team": "East",
        "topic": "strategy",
        "text": "第二次提醒太晚。\r\nsecond line\twith a tab",
    },
}


def make_batch(rows: list[dict[str, str | None]], numbers: list[int], columns=None) -> Batch:
    columns = columns or list(rows[0])
    table = pa.table({c: pa.array([r.get(c) for r in rows], pa.string()) for c in columns})
    return Batch(table=table, row_numbers=np.asarray(numbers, dtype=np.int64))


def test_good_rows_cover_every_kind():
    assert set(GOOD_ROWS) == set(KINDS)
    for name, kind in KINDS.items():
        assert list(GOOD_ROWS[name]) == list(kind.names)


@pytest.mark.parametrize("kind_name", sorted(KINDS))
def test_check_batch_good_row(kind_name):
    kind = KINDS[kind_name]
    result = check_batch(kind, make_batch([GOOD_ROWS[kind_name]], [4]))
    assert result.rows_read == 1
    assert result.problems.num_rows == 0
    assert result.problems.schema == PROBLEM_SCHEMA
    staged = result.staged.to_pylist()
    assert staged == [{"row_number": 4, "held": False, **STAGED_GOOD[kind_name]}]


@pytest.mark.parametrize("kind_name", sorted(KINDS))
def test_check_batch_staged_types(kind_name):
    kind = KINDS[kind_name]
    staged = check_batch(kind, make_batch([GOOD_ROWS[kind_name]], [1])).staged
    assert staged.column_names == ["row_number", "held"] + [c.staged_name for c in kind.columns]
    assert staged.schema.field("row_number").type == pa.int64()
    assert staged.schema.field("held").type == pa.bool_()
    expected = {"date": pa.date32(), "amount": pa.int64(), "bool": pa.bool_(), "rate": pa.int64()}
    for column in kind.columns:
        assert staged.schema.field(column.staged_name).type == expected.get(
            column.type, pa.string()
        )
        assert staged_type(column) == expected.get(column.type, pa.string())
    amounts = [c for c in kind.columns if c.type == "amount"]
    assert all(c.staged_name == f"{c.name}_cents" for c in amounts)
    rates = [c for c in kind.columns if c.type == "rate"]
    assert all(c.staged_name == f"{c.name}_e10" for c in rates)


BAD_VALUES = [
    # (kind, column, value as written, reason)
    ("collectors", "collector_id", "K\t01", "contains a tab (\\x09) at position 2: remove it"),
    ("collectors", "collector_id", "K" * 65, "longer than 64 characters"),
    ("collectors", "name", None, REASON_REQUIRED),
    ("collectors", "email", "li.wei", REASON_EMAIL),
    ("collectors", "team", "t" * 256, "longer than 255 characters"),
    ("customers", "customer_id", None, REASON_REQUIRED),
    (
        "customers",
        "customer_id",
        "C\n001",
        "contains a line break (\\x0a) at position 2: remove it",
    ),
    ("customers", "name", None, REASON_REQUIRED),
    ("customers", "name", "n" * 256, "longer than 255 characters"),
    ("customers", "email", "a@@b.com", REASON_EMAIL),
    ("customers", "phone", "1" * 65, "longer than 64 characters"),
    ("customers", "locale", "fr", REASON_LOCALE),
    ("customers", "timezone", "Mars/Base", REASON_TIMEZONE),
    ("customers", "segment", "s" * 65, "longer than 64 characters"),
    ("customers", "credit_limit", "-1", REASON_AMOUNT_NEGATIVE),
    ("customers", "credit_limit", "1e5", REASON_AMOUNT),
    ("customers", "currency", "XXX", REASON_CURRENCY),
    ("customers", "collector_id", "K" * 65, "longer than 64 characters"),
    ("customers", "do_not_contact", "maybe", REASON_BOOL),
    ("invoices", "invoice_id", None, REASON_REQUIRED),
    ("invoices", "invoice_id", "I" * 65, "longer than 64 characters"),
    ("invoices", "customer_id", None, REASON_REQUIRED),
    (
        "invoices",
        "customer_id",
        "C\x00",
        "contains a control character (\\x00) at position 2: remove it",
    ),
    ("invoices", "issue_date", None, REASON_REQUIRED),
    ("invoices", "issue_date", "2023-02-29", REASON_DATE),
    ("invoices", "due_date", "2024-3-5", REASON_DATE),
    ("invoices", "due_date", "2200-01-01", REASON_DATE_RANGE),
    ("invoices", "due_date", None, REASON_REQUIRED),
    ("invoices", "amount", None, REASON_REQUIRED),
    ("invoices", "amount", "0", REASON_AMOUNT_POSITIVE),
    ("invoices", "amount", "12.345", REASON_AMOUNT_SCALE),
    ("invoices", "amount", "12345678901234", REASON_AMOUNT_LARGE),
    ("invoices", "amount", "¥100", REASON_AMOUNT),
    ("invoices", "currency", "ABC", REASON_CURRENCY),
    ("invoices", "description", "d" * 2001, "longer than 2000 characters"),
    ("invoices", "disputed", "perhaps", REASON_BOOL),
    ("payments", "payment_id", None, REASON_REQUIRED),
    ("payments", "invoice_id", None, REASON_REQUIRED),
    ("payments", "invoice_id", "I" * 65, "longer than 64 characters"),
    ("payments", "paid_date", "05/03/2024", REASON_DATE),
    ("payments", "paid_date", "1899-12-31", REASON_DATE_RANGE),
    ("payments", "amount", "-5", REASON_AMOUNT_POSITIVE),
    ("payments", "amount", "1,2,3", REASON_AMOUNT),
    ("payments", "method", "m" * 65, "longer than 64 characters"),
    ("fx_rates", "rate_date", None, REASON_REQUIRED),
    ("fx_rates", "rate_date", "2024-02-30", REASON_DATE),
    ("fx_rates", "currency", None, REASON_REQUIRED),
    ("fx_rates", "currency", "ZZZ", REASON_CURRENCY),
    ("fx_rates", "rate", None, REASON_REQUIRED),
    ("fx_rates", "rate", "0", REASON_AMOUNT_POSITIVE),
    ("fx_rates", "rate", "-7.1", REASON_AMOUNT_POSITIVE),
    ("fx_rates", "rate", "0.00044123451", REASON_RATE_SCALE),
    ("fx_rates", "rate", "about seven", REASON_RATE),
]

_NUL = "contains a control character (\\x00) at position {}: remove it"
_BIDI = "contains a bidirectional control character (\\u202e) at position {}: remove it"
#: A forbidden character in every text-bearing column of every kind (and in columns whose
#: parser would refuse the value anyway: the reason names the character, not the parse).
FORBIDDEN_VALUES = [
    ("collectors", "name", "李\x00伟", _NUL.format(2)),
    ("collectors", "email", "li.wei@x.example.com\u202e", _BIDI.format(21)),
    ("collectors", "team", "East\nWest", "contains a line break (\\x0a) at position 5: remove it"),
    ("customers", "name", "\u202eLtd Acme", _BIDI.format(1)),
    (
        "customers",
        "name",
        "Acme\r\nBcc: x@evil.example",
        "contains a line break (\\x0d) at position 5: remove it",
    ),
    ("customers", "email", "a@x.example.com\x00", _NUL.format(16)),
    (
        "customers",
        "phone",
        "+86 21\x85 5555",
        "contains a control character (\\x85) at position 7: remove it",
    ),
    ("customers", "locale", "zh\x00CN", _NUL.format(3)),
    (
        "customers",
        "timezone",
        "Asia/Shanghai\x7f",
        "contains a control character (\\x7f) at position 14: remove it",
    ),
    (
        "customers",
        "segment",
        "whole\u2028sale",
        "contains a line or paragraph separator (\\u2028) at position 6: remove it",
    ),
    ("customers", "credit_limit", "50\x00000", _NUL.format(3)),
    (
        "customers",
        "currency",
        "C\u2066NY",
        "contains a bidirectional control character (\\u2066) at position 2: remove it",
    ),
    ("customers", "collector_id", "K\x0001", _NUL.format(2)),
    (
        "customers",
        "do_not_contact",
        "no\x1b",
        "contains a control character (\\x1b) at position 3: remove it",
    ),
    ("invoices", "invoice_id", "INV\x00-1", _NUL.format(4)),
    ("invoices", "issue_date", "2024-03-05\x00", _NUL.format(11)),
    ("invoices", "amount", "1,234.50\u202e", _BIDI.format(9)),
    ("invoices", "currency", "\x00USD", _NUL.format(1)),
    ("invoices", "description", "March\x00", _NUL.format(6)),
    ("invoices", "description", "line\nthen \u202eevil", _BIDI.format(11)),
    (
        "invoices",
        "description",
        "page\x0cbreak",
        "contains a control character (\\x0c) at position 5: remove it",
    ),
    (
        "invoices",
        "disputed",
        "\u2069no",
        "contains a bidirectional control character (\\u2069) at position 1: remove it",
    ),
    ("payments", "paid_date", "2024\x0003\x0010", _NUL.format(5)),
    (
        "payments",
        "method",
        "card\u2029",
        "contains a line or paragraph separator (\\u2029) at position 5: remove it",
    ),
    ("fx_rates", "rate_date", "\x002024-03-01", _NUL.format(1)),
    ("fx_rates", "currency", "US\x00D", _NUL.format(3)),
    ("fx_rates", "rate", "7.1\u202e234", _BIDI.format(4)),
]


def expected_record_id(kind: FileKind, row: dict[str, str | None]) -> str | None:
    """The id a problem names for ``row``, worked out independently of the rules."""
    id_column = kind.column(kind.id_column)
    if not id_column.derived_from:
        value = row[kind.id_column]
        return None if value is None else excerpt(value, 200)
    date, currency = row["rate_date"], row["currency"]
    if date is None or currency is None:
        return None
    date = {"2024/03/01": "2024-03-01", "2024-03-01": "2024-03-01"}.get(date, date)
    return f"{excerpt(date, 200)} {excerpt(currency.upper(), 200)}"


@pytest.mark.parametrize(
    ("kind_name", "column", "value", "reason"),
    BAD_VALUES + FORBIDDEN_VALUES,
    ids=[f"{k}.{c}-{(r or '')[:24]}" for k, c, _, r in BAD_VALUES + FORBIDDEN_VALUES],
)
def test_check_batch_one_bad_value(kind_name, column, value, reason):
    kind = KINDS[kind_name]
    good = GOOD_ROWS[kind_name]
    bad = {**good, column: value}
    if column != kind.id_column and kind.id_column in bad:
        bad[kind.id_column] = "BAD-ROW-ID"
    result = check_batch(kind, make_batch([good, bad, good], [3, 7, 8]))

    assert result.rows_read == 3
    assert result.problems.to_pylist() == [
        {
            "row_number": 7,
            "record_id": expected_record_id(kind, bad),
            "column_name": column,
            # as shown: escaped, at most 200 characters
            "value": None if value is None else excerpt(value, 200),
            "reason": reason,
        }
    ]
    staged = result.staged
    assert staged.column("row_number").to_pylist() == [3, 7, 8]
    assert staged.column("held").to_pylist() == [False, True, False]


@pytest.mark.parametrize(
    ("kind_name", "column", "value", "reason"),
    FORBIDDEN_VALUES,
    ids=[f"{k}.{c}" for k, c, _, _ in FORBIDDEN_VALUES],
)
def test_check_batch_no_staged_or_problem_text_carries_a_forbidden_character(
    kind_name, column, value, reason
):
    kind = KINDS[kind_name]
    bad = {**GOOD_ROWS[kind_name], column: value}
    result = check_batch(kind, make_batch([GOOD_ROWS[kind_name], bad], [1, 2]))
    unsafe = re.compile(f"[{CONTROL_CHARACTERS}{BIDI_CONTROLS}{LINE_SEPARATORS}]")
    bad_staged = result.staged.to_pylist()[1]
    assert bad_staged["held"] is True
    for name, staged_value in bad_staged.items():
        if isinstance(staged_value, str):
            if kind.column(name).multiline:  # its line breaks are its own, held or not
                staged_value = staged_value.replace("\r", "").replace("\n", "")
            assert not unsafe.search(staged_value), (name, staged_value)
    for problem in result.problems.to_pylist():
        for text in problem.values():
            assert not (isinstance(text, str) and unsafe.search(text)), problem
    # the good row keeps its own text as written (line breaks of a description included)
    good_staged = result.staged.to_pylist()[0]
    assert good_staged == {"row_number": 1, "held": False, **STAGED_GOOD[kind_name]}


def test_check_batch_held_text_is_staged_escaped_and_ids_stay_comparable():
    kind = KINDS["customers"]
    rows = [
        {**GOOD_ROWS["customers"], "customer_id": "C\x009", "name": "A"},
        {**GOOD_ROWS["customers"], "customer_id": "C\x009", "name": "B\x00"},
        {**GOOD_ROWS["customers"], "customer_id": "C" * 300},
    ]
    result = check_batch(kind, make_batch(rows, [1, 2, 3]))
    ids = result.staged.column("customer_id").to_pylist()
    # both copies of the broken id are staged alike: the repeated-id check still pairs them
    assert ids[0] == ids[1] == "C\\x009"
    assert ids[2] == "C" * 200 + "… (300 characters)"
    assert result.staged.column("name").to_pylist() == ["A", "B\\x00", "恒达贸易有限公司"]
    assert all(len(p["record_id"]) <= 255 for p in result.problems.to_pylist())


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.text(
            alphabet=st.one_of(
                st.characters(codec="utf-8"),
                st.sampled_from("\x00\t\n\r\x0b\x7f\x85\u2028\u2029\u202a\u202e\u2066\u2069\u200b"),
            ),
            min_size=1,
            max_size=400,
        ),
        min_size=1,
        max_size=5,
    )
)
def test_check_batch_any_text_is_staged_and_shown_safely(texts):
    kind = KINDS["invoices"]
    rows = [
        {**GOOD_ROWS["invoices"], "invoice_id": t[:80], "customer_id": t, "description": t}
        for t in texts
    ]
    result = check_batch(kind, make_batch(rows, list(range(1, len(rows) + 1))))
    for row in result.staged.to_pylist():
        for value in row.values():
            assert not (isinstance(value, str) and "\x00" in value)
    unsafe = re.compile(f"[{CONTROL_CHARACTERS}{BIDI_CONTROLS}{LINE_SEPARATORS}]")
    for problem in result.problems.to_pylist():
        assert problem["record_id"] is None or len(problem["record_id"]) <= 255
        assert problem["value"] is None or len(problem["value"]) <= 255
        assert not unsafe.search(problem["reason"])
        for text in (problem["record_id"], problem["value"]):
            assert text is None or not unsafe.search(text)
    held = result.staged.column("held").to_pylist()
    for row, was_held in zip(rows, held, strict=True):
        if not unsafe.search(row["customer_id"]) and not re.search(
            r"[\t\u200b]", row["customer_id"]
        ):
            continue
        assert was_held


@pytest.mark.parametrize(
    ("kind_name", "column", "value"),
    [
        ("invoices", "issue_date", "2023-02-29"),
        ("invoices", "amount", "12.345"),
        ("invoices", "amount", "abc"),
        ("invoices", "disputed", "maybe"),
        ("payments", "paid_date", "1899-12-31"),
        ("customers", "locale", "fr"),
    ],
)
def test_check_batch_unparseable_value_is_staged_as_null(kind_name, column, value):
    kind = KINDS[kind_name]
    staged_name = kind.column(column).staged_name
    result = check_batch(kind, make_batch([{**GOOD_ROWS[kind_name], column: value}], [1]))
    assert result.staged.column(staged_name).to_pylist() == [None]
    assert result.staged.column("held").to_pylist() == [True]


def test_check_batch_two_bad_values_in_one_row():
    kind = KINDS["invoices"]
    bad = {**GOOD_ROWS["invoices"], "invoice_id": "INV-9", "amount": "abc", "currency": "ABC"}
    result = check_batch(kind, make_batch([GOOD_ROWS["invoices"], bad], [1, 2]))
    problems = result.problems.to_pylist()
    assert sorted((p["row_number"], p["record_id"], p["column_name"]) for p in problems) == [
        (2, "INV-9", "amount"),
        (2, "INV-9", "currency"),
    ]
    assert result.staged.column("held").to_pylist() == [False, True]
    assert int(np.sum(result.staged.column("held").to_numpy(zero_copy_only=False))) == 1
    assert result.rows_read == 2


def test_check_batch_bad_row_without_id_has_null_record_id():
    kind = KINDS["payments"]
    bad = {**GOOD_ROWS["payments"], "payment_id": None, "amount": "0"}
    problems = check_batch(kind, make_batch([bad], [5])).problems.to_pylist()
    assert {(p["column_name"], p["reason"]) for p in problems} == {
        ("payment_id", REASON_REQUIRED),
        ("amount", REASON_AMOUNT_POSITIVE),
    }
    assert all(p["record_id"] is None and p["row_number"] == 5 for p in problems)


@pytest.mark.parametrize("kind_name", sorted(KINDS))
def test_check_batch_missing_optional_columns(kind_name):
    kind = KINDS[kind_name]
    row = {name: GOOD_ROWS[kind_name][name] for name in kind.required}
    result = check_batch(kind, make_batch([row], [1]))
    assert result.problems.num_rows == 0
    assert result.rows_read == 1
    staged = result.staged.to_pylist()[0]
    assert staged["held"] is False
    for column in kind.columns:
        if not column.required and not column.derived_from:
            assert staged[column.staged_name] is None
            assert result.staged.schema.field(column.staged_name).type == staged_type(column)


@pytest.mark.parametrize("kind_name", sorted(KINDS))
def test_check_batch_missing_required_column_fails_every_row(kind_name):
    kind = KINDS[kind_name]
    missing = kind.required[-1]
    rows = [{k: v for k, v in GOOD_ROWS[kind_name].items() if k != missing}] * 2
    problems = check_batch(kind, make_batch(rows, [1, 2])).problems.to_pylist()
    assert [(p["row_number"], p["column_name"], p["reason"]) for p in problems] == [
        (1, missing, REASON_REQUIRED),
        (2, missing, REASON_REQUIRED),
    ]


def test_check_batch_unknown_columns_are_ignored():
    row = {**GOOD_ROWS["payments"], "note": "whatever"}
    result = check_batch(KINDS["payments"], make_batch([row], [1]))
    assert result.problems.num_rows == 0
    assert "note" not in result.staged.column_names


def test_check_batch_blank_rows_are_dropped():
    kind = KINDS["invoices"]
    columns = [*kind.names, "extra"]
    blank: dict[str, str | None] = dict.fromkeys(columns)
    good = GOOD_ROWS["invoices"]
    batch = make_batch([good, blank, blank, {**good, "invoice_id": "INV-2"}], [1, 2, 3, 4], columns)
    result = check_batch(kind, batch)
    assert result.rows_read == 2
    assert result.problems.num_rows == 0
    assert result.staged.column("row_number").to_pylist() == [1, 4]
    assert result.staged.column("invoice_id").to_pylist() == ["INV-1", "INV-2"]


def test_check_batch_blank_rows_do_not_shift_problem_rows():
    kind = KINDS["payments"]
    blank = dict.fromkeys(kind.names)
    bad = {**GOOD_ROWS["payments"], "payment_id": "P-9", "paid_date": "2024-02-30"}
    result = check_batch(kind, make_batch([blank, bad, blank, GOOD_ROWS["payments"]], [1, 2, 3, 4]))
    assert result.rows_read == 2
    assert [(p["row_number"], p["record_id"]) for p in result.problems.to_pylist()] == [(2, "P-9")]
    assert result.staged.column("held").to_pylist() == [True, False]


def test_check_batch_only_blank_rows():
    kind = KINDS["customers"]
    blank = dict.fromkeys(kind.names)
    result = check_batch(kind, make_batch([blank, blank], [1, 2]))
    assert result.rows_read == 0
    assert result.staged.num_rows == 0
    assert result.problems.num_rows == 0


def test_check_batch_empty_batch():
    kind = KINDS["invoices"]
    table = pa.table({name: pa.array([], pa.string()) for name in kind.names})
    result = check_batch(kind, Batch(table=table, row_numbers=np.empty(0, dtype=np.int64)))
    assert result.rows_read == 0
    assert result.staged.num_rows == 0
    assert result.problems.schema == PROBLEM_SCHEMA


@pytest.mark.parametrize(
    ("issue", "due", "early"),
    [
        ("2024-03-05", "2024/03/01", True),
        ("20240305", "2024-03-04", True),
        ("2024-03-05", "2024-03-05", False),
        ("2024-03-05", "2024-03-06", False),
    ],
)
def test_check_batch_due_date_before_issue_date(issue, due, early):
    kind = KINDS["invoices"]
    row = {**GOOD_ROWS["invoices"], "invoice_id": "INV-7", "issue_date": issue, "due_date": due}
    result = check_batch(kind, make_batch([GOOD_ROWS["invoices"], row], [1, 2]))
    problems = result.problems.to_pylist()
    if not early:
        assert problems == []
        return
    assert len(problems) == 1
    problem = problems[0]
    assert (problem["row_number"], problem["record_id"]) == (2, "INV-7")
    assert problem["column_name"] == "due_date"
    assert problem["value"] == due
    assert problem["reason"].startswith("due_date is before issue_date")
    assert "2024-03-05" in problem["reason"]
    assert result.staged.column("held").to_pylist() == [False, True]


def test_check_batch_due_date_check_skips_invalid_dates():
    kind = KINDS["invoices"]
    row = {**GOOD_ROWS["invoices"], "issue_date": "2024-02-30", "due_date": "2024-01-01"}
    problems = check_batch(kind, make_batch([row], [1])).problems.to_pylist()
    assert [(p["column_name"], p["reason"]) for p in problems] == [("issue_date", REASON_DATE)]


def test_check_batch_row_numbers_follow_the_batch():
    kind = KINDS["payments"]
    rows = [{**GOOD_ROWS["payments"], "payment_id": f"P{i}"} for i in range(5)]
    rows[3]["amount"] = "0"
    numbers = [10, 12, 13, 20, 1000]
    result = check_batch(kind, make_batch(rows, numbers))
    assert result.staged.column("row_number").to_pylist() == numbers
    assert [(p["row_number"], p["record_id"]) for p in result.problems.to_pylist()] == [(20, "P3")]


# --- kinds ------------------------------------------------------------------------------------


def test_fx_rates_is_a_kind_loaded_first():
    assert kind_for("FX_Rates_2024-03.csv") is KINDS["fx_rates"]
    assert kind_for("fx_rates.parquet") is KINDS["fx_rates"]
    assert not any("fx_rates".startswith(prefix) for prefix in RESERVED_PREFIXES)
    order = [k.name for k in ordered_kinds()]
    assert order == [
        "fx_rates",
        "collectors",
        "customers",
        "invoices",
        "payments",
        "legal_updates",
        "feedback",
    ]


def test_fx_rates_id_is_derived_from_date_and_currency():
    kind = KINDS["fx_rates"]
    assert kind.names == ("rate_date", "currency", "rate")  # what a file carries
    assert kind.required == ("rate_date", "currency", "rate")
    assert kind.column(kind.id_column).derived_from == ("rate_date", "currency")


def test_a_derived_rate_id_ignores_a_rate_id_column_in_the_file():
    kind = KINDS["fx_rates"]
    row = {**GOOD_ROWS["fx_rates"], "rate_id": "forged"}
    result = check_batch(kind, make_batch([row], [1], [*row]))
    assert result.staged.column("rate_id").to_pylist() == ["2024-03-01 IDR"]


def test_check_batch_fx_rates_one_id_per_date_and_currency_whatever_the_spelling():
    kind = KINDS["fx_rates"]
    rows = [
        {"rate_date": "2024-03-01", "currency": "USD", "rate": "7.1234"},
        {"rate_date": "20240301", "currency": "usd", "rate": "7.2"},
        {"rate_date": "2024/03/02", "currency": "Usd", "rate": "7.3"},
        {"rate_date": "2024-02-30", "currency": "usd", "rate": "7.4"},
        {"rate_date": None, "currency": "USD", "rate": "7.5"},
    ]
    result = check_batch(kind, make_batch(rows, [1, 2, 3, 4, 5]))
    assert result.staged.column("rate_id").to_pylist() == [
        "2024-03-01 USD",
        "2024-03-01 USD",  # the same key: the repeated-id check will hold both
        "2024-03-02 USD",
        "2024-02-30 USD",  # as written where the date is not one
        None,
    ]
    assert [(p["row_number"], p["record_id"]) for p in result.problems.to_pylist()] == [
        (5, None),
        (4, "2024-02-30 USD"),
    ]


@pytest.mark.parametrize(
    ("declare", "message"),
    [
        (lambda: Column("n", "amount", multiline=True), "only text columns may be multiline"),
        (lambda: Column("n", "text", derived_from=("a",)), "a derived column is an optional id"),
        (lambda: Column("n", "id", required=True, derived_from=("a",)), "a derived column"),
        (lambda: Column("n", "money"), "unknown type"),
        (
            lambda: FileKind("k", "missing", (Column("a", "id"),), order=9),
            "id column 'missing' is not a column",
        ),
        (
            lambda: FileKind("k", "a", (Column("a", "id", derived_from=("b",)),), order=9),
            "a derives from unknown columns",
        ),
    ],
)
def test_column_and_kind_declarations_are_checked(declare, message):
    with pytest.raises(ValueError, match=message):
        declare()
