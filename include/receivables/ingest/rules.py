"""Row checks: every value of a batch parsed and checked at once (Arrow compute, no per-row code).

:func:`check_batch` turns a :class:`~receivables.ingest.reader.Batch` of text into

* a *staged* table: the row number, ``held`` (true when the row failed any check) and each
  column parsed to its type (dates, integer cents, booleans, canonical codes);
* a *problems* table: one line per failed check — row number, the row's own id, column, the
  value as written and a reason that says what was wrong and what was expected.

Checks that need the whole file or the warehouse (repeated ids, unknown customers or invoices,
payments above the invoice amount) run later in SQL against the staging table
(``sql/ingest/``). Each rule here is a small function with its own tests.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from receivables.ingest.kinds import Column, FileKind
from receivables.ingest.reader import Batch

PROBLEM_SCHEMA = pa.schema(
    [
        ("row_number", pa.int64()),
        ("record_id", pa.string()),
        ("column_name", pa.string()),
        ("value", pa.string()),
        ("reason", pa.string()),
    ]
)

MAX_AMOUNT_DIGITS = 13  # integer digits: up to 9,999,999,999,999.99, inside NUMERIC(18, 2)

REASON_REQUIRED = "a value is required"
REASON_DATE = "not a valid date: expected YYYY-MM-DD, YYYY/MM/DD or YYYYMMDD"
REASON_DATE_RANGE = "date out of range: expected a year between 1900 and 2199"
REASON_AMOUNT = (
    "not an amount: expected digits with an optional decimal point, thousands separated by "
    "commas, e.g. 1,234.50"
)
REASON_AMOUNT_SCALE = "more than 2 decimal places: amounts are kept to the cent"
REASON_AMOUNT_LARGE = "amount too large: at most 9,999,999,999,999.99"
REASON_AMOUNT_POSITIVE = "must be greater than 0"
REASON_AMOUNT_NEGATIVE = "must not be negative"
REASON_BOOL = "not a yes/no value: expected true or false (also 1/0, yes/no)"
REASON_EMAIL = "not a valid email address list: expected name@domain, several separated by ';'"
REASON_LOCALE = "unsupported locale: expected zh-CN or en"
REASON_TIMEZONE = "unknown time zone: expected an IANA name such as Asia/Shanghai"
REASON_CURRENCY = "unknown currency: expected an ISO 4217 code such as CNY, USD or HKD"
REASON_CONTROL = "contains control characters (line breaks, tabs or invisible characters)"

TRUE_WORDS = ("true", "t", "yes", "y", "1", "是")
FALSE_WORDS = ("false", "f", "no", "n", "0", "否")
LOCALES = {
    "zh-cn": "zh-CN",
    "zh": "zh-CN",
    "zh-hans": "zh-CN",
    "zh-hans-cn": "zh-CN",
    "en": "en",
    "en-us": "en",
    "en-gb": "en",
}
_EMAIL = r"[^@\s;,]+@[^@\s;,.]+(?:\.[^@\s;,.]+)+"


@dataclass
class Parsed:
    """A parsed column and its failed checks as (mask, reason) pairs."""

    values: pa.Array
    failures: list[tuple[np.ndarray, str | pa.Array]]


@dataclass
class CheckedBatch:
    """Result of :func:`check_batch`."""

    staged: pa.Table
    problems: pa.Table
    rows_read: int


def _mask(array: pa.Array) -> np.ndarray:
    """A boolean Arrow array as a numpy mask, nulls counted as False."""
    return np.asarray(pc.fill_null(array, False).to_numpy(zero_copy_only=False), dtype=bool)


def _present(array: pa.Array) -> np.ndarray:
    return _mask(pc.is_valid(array))


@cache
def _timezones() -> tuple[pa.Array, pa.Array]:
    """(lower-cased names, canonical names) of the IANA time zones."""
    from zoneinfo import available_timezones

    names = sorted(available_timezones())
    return pa.array([n.lower() for n in names]), pa.array(names)


@cache
def _currencies() -> pa.Array:
    from babel.numbers import list_currencies

    # X-codes that are not money a customer owes in: metals, fund units, test and "no currency"
    not_money = {"XAG", "XAU", "XBA", "XBB", "XBC", "XBD", "XDR", "XPD", "XPT", "XSU", "XTS", "XUA"}
    return pa.array(sorted(c for c in list_currencies() if c not in not_money | {"XXX"}))


def parse_id(values: pa.Array, column: Column) -> Parsed:
    """Identifiers: at most ``max_length`` characters, no control characters."""
    failures = [
        (
            _mask(pc.greater(pc.utf8_length(values), column.max_length)),
            f"longer than {column.max_length} characters",
        ),
        # control and format characters (incl. zero-width ones) and Unicode line separators
        (_mask(pc.match_substring_regex(values, r"[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]")), REASON_CONTROL),
    ]
    return Parsed(values, failures)


def parse_text(values: pa.Array, column: Column) -> Parsed:
    """Free text: at most ``max_length`` characters."""
    too_long = _mask(pc.greater(pc.utf8_length(values), column.max_length))
    return Parsed(values, [(too_long, f"longer than {column.max_length} characters")])


_DAYS_IN_MONTH = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])


def parse_date(values: pa.Array, column: Column | None = None) -> Parsed:
    """Dates in ISO ``YYYY-MM-DD``, ``YYYY/MM/DD`` or ``YYYYMMDD``; real calendar days only."""
    shaped = _mask(
        pc.match_substring_regex(values, r"^(\d{4}-\d{2}-\d{2}|\d{4}/\d{2}/\d{2}|\d{8})$")
    )
    digits = pc.replace_substring(pc.replace_substring(values, "-", ""), "/", "")
    digits = pc.if_else(pa.array(shaped), digits, "19700101")
    # The calendar is checked with integers: month 1-12, day within the month (leap years
    # included); Arrow's strptime would roll 2023-02-30 over to March instead of refusing it.
    year, month, day = (
        pc.utf8_slice_codeunits(digits, start, stop).cast(pa.int32()).to_numpy(zero_copy_only=False)
        for start, stop in ((0, 4), (4, 6), (6, 8))
    )
    leap = ((year % 4 == 0) & (year % 100 != 0)) | (year % 400 == 0)
    month_days = _DAYS_IN_MONTH[np.clip(month, 0, 12)] + ((month == 2) & leap)
    real = shaped & (month >= 1) & (month <= 12) & (day >= 1) & (day <= month_days)
    present = _present(values)
    bad = present & ~real
    out_of_range = present & real & ((year < 1900) | (year > 2199))
    good = real & ~out_of_range
    days = (
        (np.where(good, year, 1970) - 1970).astype("datetime64[Y]").astype("datetime64[M]")
        + np.where(good, month - 1, 0).astype("timedelta64[M]")
    ).astype("datetime64[D]") + np.where(good, day - 1, 0).astype("timedelta64[D]")
    parsed = pa.array(days, type=pa.date32(), mask=~good)
    return Parsed(parsed, [(bad, REASON_DATE), (out_of_range, REASON_DATE_RANGE)])


def parse_amount(values: pa.Array, column: Column) -> Parsed:
    """Decimal amounts to integer cents, exactly (never through binary floating point)."""
    grouped = pc.match_substring_regex(values, r"^[+-]?(\d{1,3}(,\d{3})+|\d+)(\.\d+)?$")
    plain = pc.replace_substring(values, ",", "")
    parts = pc.extract_regex(
        pc.if_else(grouped, plain, pa.scalar(None, pa.string())),
        r"^(?P<sign>[+-]?)(?P<int>\d+)(?:\.(?P<frac>\d+))?$",
    )
    sign, int_part, frac = (parts.field(i) for i in range(3))
    int_part = pc.utf8_ltrim(int_part, "0")
    frac = pc.utf8_rtrim(frac, "0")
    present = _present(values)
    bad = present & ~_mask(pc.is_valid(parts))
    too_precise = ~bad & present & _mask(pc.greater(pc.utf8_length(frac), 2))
    too_large = ~bad & present & _mask(pc.greater(pc.utf8_length(int_part), MAX_AMOUNT_DIGITS))
    usable = pa.array(present & ~bad & ~too_precise & ~too_large)
    whole = pc.if_else(pc.equal(int_part, ""), "0", int_part)
    whole = pc.if_else(usable, whole, pa.scalar(None, pa.string())).cast(pa.int64())
    cents = pc.if_else(usable, pc.utf8_rpad(frac, width=2, padding="0"), None).cast(pa.int64())
    amount = pc.add(pc.multiply(whole, 100), cents)
    amount = pc.if_else(pc.equal(sign, "-"), pc.negate(amount), amount)
    failures: list[tuple[np.ndarray, str | pa.Array]] = [
        (bad, REASON_AMOUNT),
        (too_precise, REASON_AMOUNT_SCALE),
        (too_large, REASON_AMOUNT_LARGE),
    ]
    if column.positive:
        failures.append((_mask(pc.less_equal(amount, 0)), REASON_AMOUNT_POSITIVE))
    else:
        failures.append((_mask(pc.less(amount, 0)), REASON_AMOUNT_NEGATIVE))
    return Parsed(amount, failures)


def parse_bool(values: pa.Array, column: Column | None = None) -> Parsed:
    """Yes/no flags: true/false, t/f, yes/no, y/n, 1/0, 是/否 (case-insensitive)."""
    lowered = pc.utf8_lower(values)
    is_true = pc.is_in(lowered, value_set=pa.array(TRUE_WORDS))
    is_false = pc.is_in(lowered, value_set=pa.array(FALSE_WORDS))
    known = pc.or_(is_true, is_false)
    parsed = pc.if_else(known, is_true, pa.scalar(None, pa.bool_()))
    return Parsed(parsed, [(_present(values) & ~_mask(known), REASON_BOOL)])


def parse_email_list(values: pa.Array, column: Column) -> Parsed:
    """One or more email addresses separated by ';' (spaces around ';' are dropped)."""
    tidy = pc.replace_substring_regex(values, r"\s*;\s*", ";")
    tidy = pc.replace_substring_regex(tidy, r";+$", "")
    ok = pc.match_substring_regex(tidy, rf"^{_EMAIL}(?:;{_EMAIL})*$")
    failures = [
        (_present(values) & ~_mask(ok), REASON_EMAIL),
        (
            _mask(pc.greater(pc.utf8_length(tidy), column.max_length)),
            f"longer than {column.max_length} characters",
        ),
    ]
    return Parsed(tidy, failures)


def parse_locale(values: pa.Array, column: Column | None = None) -> Parsed:
    """Locale codes, canonicalised to ``zh-CN`` or ``en``."""
    key = pc.replace_substring(pc.utf8_lower(values), "_", "-")
    keys = pa.array(list(LOCALES))
    index = pc.index_in(key, value_set=keys)
    canonical = pc.take(pa.array(list(LOCALES.values())), index)
    return Parsed(canonical, [(_present(values) & ~_mask(pc.is_valid(index)), REASON_LOCALE)])


def parse_timezone(values: pa.Array, column: Column | None = None) -> Parsed:
    """IANA time zone names, e.g. ``Asia/Shanghai`` (any case; stored in canonical case)."""
    lowered, canonical = _timezones()
    index = pc.index_in(pc.utf8_lower(values), value_set=lowered)
    known = pc.is_valid(index)
    return Parsed(pc.take(canonical, index), [(_present(values) & ~_mask(known), REASON_TIMEZONE)])


def parse_currency(values: pa.Array, column: Column | None = None) -> Parsed:
    """ISO 4217 currency codes, upper-cased."""
    upper = pc.utf8_upper(values)
    known = pc.is_in(upper, value_set=_currencies())
    return Parsed(upper, [(_present(values) & ~_mask(known), REASON_CURRENCY)])


PARSERS = {
    "id": parse_id,
    "text": parse_text,
    "date": parse_date,
    "amount": parse_amount,
    "bool": parse_bool,
    "email_list": parse_email_list,
    "locale": parse_locale,
    "timezone": parse_timezone,
    "currency": parse_currency,
}

_ARROW_TYPES = {"date": pa.date32(), "amount": pa.int64(), "bool": pa.bool_()}


def staged_type(column: Column) -> pa.DataType:
    """Arrow type of a column in the staging table."""
    return _ARROW_TYPES.get(column.type, pa.string())


def check_batch(kind: FileKind, batch: Batch) -> CheckedBatch:
    """Parse and check every row of ``batch`` as a file of ``kind``."""
    table = batch.table
    n = table.num_rows
    raw = {
        c.name: table.column(c.name).combine_chunks()
        if c.name in table.column_names
        else pa.nulls(n, pa.string())
        for c in kind.columns
    }
    # A line with no value at all carries nothing: it is neither read nor quarantined.
    blank = np.ones(n, dtype=bool)
    for name in table.column_names:
        blank &= ~_present(table.column(name).combine_chunks())
    keep = ~blank
    if blank.any():
        raw = {name: arr.filter(pa.array(keep)) for name, arr in raw.items()}
    row_numbers = batch.row_numbers[keep]
    count = int(keep.sum())
    record_ids = raw[kind.id_column]

    problems: list[pa.Table] = []
    held = np.zeros(count, dtype=bool)

    def fail(mask: np.ndarray, column: str, reason: str | pa.Array) -> None:
        nonlocal held
        if not mask.any():
            return
        held |= mask
        idx = pa.array(np.flatnonzero(mask))
        reasons = (
            pa.array([reason] * len(idx), pa.string())
            if isinstance(reason, str)
            else reason.take(idx)
        )
        problems.append(
            pa.table(
                [
                    pa.array(row_numbers[mask]),
                    record_ids.take(idx),
                    pa.array([column] * len(idx), pa.string()),
                    raw[column].take(idx),
                    reasons,
                ],
                schema=PROBLEM_SCHEMA,
            )
        )

    staged: dict[str, pa.Array] = {}
    for column in kind.columns:
        values = raw[column.name]
        if column.required:
            fail(~_present(values), column.name, REASON_REQUIRED)
        parsed = PARSERS[column.type](values, column)
        for mask, reason in parsed.failures:
            fail(mask, column.name, reason)
        staged[column.staged_name] = parsed.values.cast(staged_type(column))

    for earlier, later in kind.date_order:
        early = _mask(pc.less(staged[later], staged[earlier]))
        if early.any():
            earlier_text = staged[earlier].cast(pa.string())  # ISO YYYY-MM-DD
            reasons = pc.binary_join_element_wise(
                f"{later} is before {earlier} ", pc.fill_null(earlier_text, ""), ""
            )
            fail(early, later, reasons)

    # Held rows are staged too (so repeated ids are found even when one copy is broken), with
    # whatever parsed; they never reach the merge or the GX suite, which read good rows only.
    staged_table = pa.table(
        {"row_number": pa.array(row_numbers, pa.int64()), "held": pa.array(held), **staged}
    )
    problem_table = pa.concat_tables(problems) if problems else PROBLEM_SCHEMA.empty_table()
    return CheckedBatch(staged=staged_table, problems=problem_table, rows_read=count)
