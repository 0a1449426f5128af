"""Row checks: every value of a batch parsed and checked at once (Arrow compute, no per-row code).

:func:`check_batch` turns a :class:`~receivables.ingest.reader.Batch` of text into

* a *staged* table: the row number, ``held`` (true when the row failed any check) and each
  column parsed to its type (dates, integer cents, booleans, canonical codes);
* a *problems* table: one line per failed check — row number, the row's own id, column, the
  value as written and a reason that says what was wrong and what was expected.

Untrusted text is never repeated raw: a value or id shown in a problem is an escaped excerpt
(:func:`receivables.text.excerpt`, at most 200 characters), and a held row's staged value of a
column that failed is stored in that same form, so no staged or quarantined text carries a NUL
(which PostgreSQL cannot store) or a control character into a later message. Every column is
checked for control characters (C0 except tab, DEL, C1), the Unicode line and paragraph
separators and the bidirectional controls; ids refuse tabs and every invisible formatting
character too, and multiline text columns allow line breaks.

Checks that need the whole file or the warehouse (repeated ids, unknown customers or invoices,
payments above the invoice amount) run later in SQL against the staging table
(``sql/ingest/``). Each rule here is a small function with its own tests.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from functools import cache

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from receivables.ingest.kinds import Column, FileKind
from receivables.ingest.reader import Batch
from receivables.text import BIDI_CONTROLS, CONTROL_CHARACTERS, LINE_SEPARATORS, excerpt
from receivables.warehouse.types import FX_RATE_SCALE

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
#: Integer digits of a rate: its units of 1e-10 must fit a 64-bit integer (the staged BIGINT and
#: the SQLite column), so at most 99,999,999.9999999999.
MAX_RATE_DIGITS = 18 - FX_RATE_SCALE
#: Characters of a value or id shown in a problem (escaped); the shown text never exceeds
#: SHOWN_WIDTH characters, the width of ``quarantined_rows.record_id``.
SHOWN_LENGTH = 200
SHOWN_WIDTH = 255

REASON_REQUIRED = "a value is required"
REASON_DATE = "not a valid date: expected YYYY-MM-DD, YYYY/MM/DD or YYYYMMDD"
REASON_DATE_RANGE = "date out of range: expected a year between 1900 and 2199"
REASON_AMOUNT = (
    "not an amount: expected digits with an optional decimal point, thousands separated by "
    "commas, e.g. 1,234.50"
)
REASON_AMOUNT_COMMA = (
    "not an amount: a comma separates thousands (1,234.50), never decimals: write 5.00, not 5,00"
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
REASON_RATE = (
    "not a rate: expected digits with an optional decimal point, e.g. 7.1234 or 0.0004412345 "
    "(no thousands separators, no exponent)"
)
REASON_RATE_SCALE = (
    f"more than {FX_RATE_SCALE} decimal places: rates are kept to {FX_RATE_SCALE} decimal places"
)
REASON_RATE_LARGE = f"rate too large: at most {MAX_RATE_DIGITS} digits before the decimal point"

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


# --- control and invisible characters --------------------------------------------------------


def _code_points(spec: str) -> frozenset[int]:
    """The code points of a character-class body such as ``"\\x00-\\x08\\x0b"``."""
    points: set[int] = set()
    i = 0
    while i < len(spec):
        if i + 2 < len(spec) and spec[i + 1] == "-":
            points.update(range(ord(spec[i]), ord(spec[i + 2]) + 1))
            i += 3
        else:
            points.add(ord(spec[i]))
            i += 1
    return frozenset(points)


@cache
def _re2_class(points: frozenset[int]) -> str:
    """An RE2 character class of ``points`` (written as escapes: a raw NUL never enters it)."""
    ordered = sorted(points)
    ranges: list[tuple[int, int]] = []
    for point in ordered:
        if ranges and point == ranges[-1][1] + 1:
            ranges[-1] = (ranges[-1][0], point)
        else:
            ranges.append((point, point))
    body = "".join(f"\\x{{{a:x}}}" if a == b else f"\\x{{{a:x}}}-\\x{{{b:x}}}" for a, b in ranges)
    return f"[{body}]"


_BIDI = _code_points(BIDI_CONTROLS)
_SEPARATORS = _code_points(LINE_SEPARATORS)
_LINE_BREAKS = frozenset({0x0A, 0x0D})
#: Never allowed in any value (tab is: it is ordinary white space in free text).
_UNSAFE = _code_points(CONTROL_CHARACTERS) | _BIDI | _SEPARATORS
#: Ids also refuse tabs and every other invisible formatting character (zero-width spaces,
#: byte-order marks): two ids that look the same must be the same.
_ID_CLASS = r"[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]"


@cache
def forbidden_class(column: Column) -> str:
    """The RE2 character class of the characters ``column`` refuses."""
    if column.type == "id":
        return _ID_CLASS
    return _re2_class(_UNSAFE - _LINE_BREAKS if column.multiline else _UNSAFE)


def _describe(char: str) -> str:
    """What kind of character ``char`` is, and ``char`` escaped, for a reason."""
    code = ord(char)
    escaped = f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"
    if code in _LINE_BREAKS:
        what = "a line break"
    elif code == 0x09:
        what = "a tab"
    elif code in _BIDI:
        what = "a bidirectional control character"
    elif code in _SEPARATORS:
        what = "a line or paragraph separator"
    elif unicodedata.category(char) == "Cc":
        what = "a control character"
    else:
        what = "an invisible formatting character"
    return f"{what} ({escaped})"


def find_forbidden(
    values: pa.Array, column: Column, among: np.ndarray | None = None
) -> tuple[np.ndarray, pa.Array]:
    """Values holding a character ``column`` refuses: (mask, reason per value). With ``among``,
    only the values under that mask are searched (the others are taken as clean).

    The reason names the first such character, escaped, and its position (counted in
    characters from 1), e.g. ``contains a control character (\\x00) at position 7: remove it``.
    Reasons are null where the mask is false.
    """
    pattern = forbidden_class(column)
    if among is None:
        mask = _mask(pc.match_substring_regex(values, pattern))
    else:
        mask = np.zeros(len(values), dtype=bool)
        candidates = np.flatnonzero(among)
        if candidates.size:
            subset = values.take(pa.array(candidates))
            mask[candidates] = _mask(pc.match_substring_regex(subset, pattern))
    reasons = pa.nulls(len(values), pa.string())
    if not mask.any():
        return mask, reasons
    first = f"(?s)^(?P<before>.*?)(?P<bad>{pattern})"
    found = pc.extract_regex(values.take(pa.array(np.flatnonzero(mask))), first)
    bad = found.field("bad")
    distinct = pc.unique(bad)
    described = pa.array([_describe(c) for c in distinct.to_pylist()], pa.string())
    position = pc.add(pc.utf8_length(found.field("before")), 1).cast(pa.string())
    text = pc.binary_join_element_wise(
        "contains ",
        pc.take(described, pc.index_in(bad, value_set=distinct)),
        " at position ",
        position,
        ": remove it",
        "",
    )
    # (RE2 found a match in each of these values: the fallback only guards the NOT NULL reason)
    text = pc.fill_null(text, "contains a control or invisible character: remove it")
    return mask, pc.replace_with_mask(reasons, pa.array(mask), text)


def shown(values: pa.Array) -> pa.Array:
    """Untrusted values as they may be shown and stored: escaped excerpts of at most
    :data:`SHOWN_LENGTH` characters (:func:`receivables.text.excerpt`) that fit
    :data:`SHOWN_WIDTH`. Values that need nothing are passed through untouched (vectorised);
    only the others are rewritten one by one."""
    unsafe = pc.match_substring_regex(values, _re2_class(_UNSAFE))
    needs = _mask(pc.or_(unsafe, pc.greater(pc.utf8_length(values), SHOWN_LENGTH)))
    if not needs.any():
        return values
    selected = values.take(pa.array(np.flatnonzero(needs))).to_pylist()
    rewritten = pa.array([None if v is None else _excerpt_within(v) for v in selected], pa.string())
    return pc.replace_with_mask(values, pa.array(needs), rewritten)


def _excerpt_within(value: str) -> str:
    limit = SHOWN_LENGTH
    text = excerpt(value, limit)
    while len(text) > SHOWN_WIDTH:  # escapes are up to 6 characters for one
        limit //= 2
        text = excerpt(value, limit)
    return text


def parse_id(values: pa.Array, column: Column) -> Parsed:
    """Identifiers: at most ``max_length`` characters (their characters are checked by
    :func:`find_forbidden`, like every column's)."""
    failures: list[tuple[np.ndarray, str | pa.Array]] = [
        (
            _mask(pc.greater(pc.utf8_length(values), column.max_length)),
            f"longer than {column.max_length} characters",
        ),
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
    # "5,00" or "1.234,50": a decimal comma, which would otherwise read as a malformed number
    comma = bad & _mask(pc.match_substring_regex(values, r"^[+-]?[0-9.]*[0-9],[0-9]{1,2}$"))
    too_precise = ~bad & present & _mask(pc.greater(pc.utf8_length(frac), 2))
    too_large = ~bad & present & _mask(pc.greater(pc.utf8_length(int_part), MAX_AMOUNT_DIGITS))
    usable = pa.array(present & ~bad & ~too_precise & ~too_large)
    whole = pc.if_else(pc.equal(int_part, ""), "0", int_part)
    whole = pc.if_else(usable, whole, pa.scalar(None, pa.string())).cast(pa.int64())
    cents = pc.if_else(usable, pc.utf8_rpad(frac, width=2, padding="0"), None).cast(pa.int64())
    amount = pc.add(pc.multiply(whole, 100), cents)
    amount = pc.if_else(pc.equal(sign, "-"), pc.negate(amount), amount)
    failures: list[tuple[np.ndarray, str | pa.Array]] = [
        (bad & ~comma, REASON_AMOUNT),
        (comma, REASON_AMOUNT_COMMA),
        (too_precise, REASON_AMOUNT_SCALE),
        (too_large, REASON_AMOUNT_LARGE),
    ]
    if column.positive:
        failures.append((_mask(pc.less_equal(amount, 0)), REASON_AMOUNT_POSITIVE))
    else:
        failures.append((_mask(pc.less(amount, 0)), REASON_AMOUNT_NEGATIVE))
    return Parsed(amount, failures)


def parse_rate(values: pa.Array, column: Column | None = None) -> Parsed:
    """Exchange rates: a decimal number > 0 with at most ``FX_RATE_SCALE`` decimal places and
    ``MAX_RATE_DIGITS`` integer digits, to integer units of 1e-10, exactly (never through
    binary floating point)."""
    parts = pc.extract_regex(values, r"^(?P<sign>[+-]?)(?P<int>[0-9]+)(?:\.(?P<frac>[0-9]+))?$")
    sign, int_part, frac = (parts.field(i) for i in range(3))
    int_part = pc.utf8_ltrim(int_part, "0")
    frac = pc.utf8_rtrim(frac, "0")
    present = _present(values)
    bad = present & ~_mask(pc.is_valid(parts))
    too_precise = ~bad & present & _mask(pc.greater(pc.utf8_length(frac), FX_RATE_SCALE))
    too_large = ~bad & present & _mask(pc.greater(pc.utf8_length(int_part), MAX_RATE_DIGITS))
    usable = pa.array(present & ~bad & ~too_precise & ~too_large)
    whole = pc.if_else(pc.equal(int_part, ""), "0", int_part)
    whole = pc.if_else(usable, whole, pa.scalar(None, pa.string())).cast(pa.int64())
    fraction = pc.utf8_rpad(frac, width=FX_RATE_SCALE, padding="0")
    fraction = pc.if_else(usable, fraction, pa.scalar(None, pa.string())).cast(pa.int64())
    units = pc.add(pc.multiply(whole, 10**FX_RATE_SCALE), fraction)
    units = pc.if_else(pc.equal(sign, "-"), pc.negate(units), units)
    failures: list[tuple[np.ndarray, str | pa.Array]] = [
        (bad, REASON_RATE),
        (too_precise, REASON_RATE_SCALE),
        (too_large, REASON_RATE_LARGE),
        (_mask(pc.less_equal(units, 0)), REASON_AMOUNT_POSITIVE),
    ]
    return Parsed(units, failures)


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


def parse_choice(values: pa.Array, column: Column) -> Parsed:
    """One of the column's ``choices``, in any case, blanks and hyphens read as underscores
    ("Written off" is ``written_off``); stored in that canonical form. A refused value's reason
    lists the choices and the column's ``choices_note``."""
    key = pc.replace_substring_regex(pc.utf8_lower(values), r"[\s-]+", "_")
    known = pc.is_in(key, value_set=pa.array(column.choices, pa.string()))
    reason = f"not one of {', '.join(column.choices)}"
    if column.choices_note:
        reason += f" ({column.choices_note})"
    return Parsed(key, [(_present(values) & ~_mask(known), reason)])


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
    "rate": parse_rate,
    "choice": parse_choice,
}

_ARROW_TYPES = {"date": pa.date32(), "amount": pa.int64(), "bool": pa.bool_(), "rate": pa.int64()}
#: Types whose parser accepts any character: every value is searched for forbidden ones. The
#: other parsers accept only digits, codes or words, so only the values they refuse are.
_FREE_TYPES = ("id", "text", "email_list")


def staged_type(column: Column) -> pa.DataType:
    """Arrow type of a column in the staging table."""
    return _ARROW_TYPES.get(column.type, pa.string())


def check_batch(kind: FileKind, batch: Batch) -> CheckedBatch:
    """Parse and check every row of ``batch`` as a file of ``kind``."""
    table = batch.table
    n = table.num_rows
    file_columns = [c for c in kind.columns if not c.derived_from]
    raw = {
        c.name: table.column(c.name).combine_chunks()
        if c.name in table.column_names
        else pa.nulls(n, pa.string())
        for c in file_columns
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

    held = np.zeros(count, dtype=bool)
    found: list[tuple[np.ndarray, str, str | pa.Array]] = []
    #: per column, the rows where one of its checks failed
    failed: dict[str, np.ndarray] = {}

    def fail(mask: np.ndarray, column: str, reason: str | pa.Array) -> None:
        nonlocal held
        if not mask.any():
            return
        held |= mask
        failed[column] = failed.get(column, np.zeros(count, dtype=bool)) | mask
        found.append((mask, column, reason))

    staged: dict[str, pa.Array] = {}
    for column in file_columns:
        values = raw[column.name]
        if column.required:
            fail(~_present(values), column.name, REASON_REQUIRED)
        parsed = PARSERS[column.type](values, column)
        refused = None
        if column.type not in _FREE_TYPES:
            refused = np.zeros(count, dtype=bool)
            for mask, _ in parsed.failures:
                refused |= mask
        forbidden, forbidden_reasons = find_forbidden(values, column, among=refused)
        # one reason per value: the forbidden character, not the failed parse it causes
        fail(forbidden, column.name, forbidden_reasons)
        for mask, reason in parsed.failures:
            fail(mask & ~forbidden, column.name, reason)
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
    # A text value that failed is staged in its shown form: no NUL reaches COPY or a text
    # column, and a set-based check that repeats it repeats it escaped.
    for name, mask in failed.items():
        column = kind.column(name)
        if staged_type(column) == pa.string():
            staged[column.staged_name] = _rewrite(staged[column.staged_name], mask)
    for column in kind.columns:
        if column.derived_from:
            staged[column.staged_name] = _derived(column, kind, raw, staged, failed)

    id_column = kind.column(kind.id_column)
    record_ids = staged[id_column.staged_name] if id_column.derived_from else raw[id_column.name]
    problems: list[pa.Table] = []
    for mask, column, reason in found:
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
                    shown(record_ids.take(idx)),
                    pa.array([column] * len(idx), pa.string()),
                    shown(raw[column].take(idx)),
                    reasons,
                ],
                schema=PROBLEM_SCHEMA,
            )
        )

    staged_table = pa.table(
        {
            "row_number": pa.array(row_numbers, pa.int64()),
            "held": pa.array(held),
            **{c.staged_name: staged[c.staged_name] for c in kind.columns},
        }
    )
    problem_table = pa.concat_tables(problems) if problems else PROBLEM_SCHEMA.empty_table()
    return CheckedBatch(staged=staged_table, problems=problem_table, rows_read=count)


def _rewrite(values: pa.Array, mask: np.ndarray) -> pa.Array:
    """``values`` with those under ``mask`` in their :func:`shown` form."""
    selected = pa.array(mask)
    return pc.replace_with_mask(values, selected, shown(values.filter(selected)))


def _derived(
    column: Column,
    kind: FileKind,
    raw: dict[str, pa.Array],
    staged: dict[str, pa.Array],
    failed: dict[str, np.ndarray],
) -> pa.Array:
    """A derived id: its parts joined by a space, each in canonical form where it parsed
    (ISO dates, upper-case codes) so two spellings of one key are one id, else as written
    (shown); null when a part is missing."""
    parts = []
    for name in column.derived_from:
        part = kind.column(name)
        value = staged[part.staged_name]
        if value.type != pa.string():
            text = value.cast(pa.string())
            written = _rewrite(raw[name], failed.get(name, np.zeros(len(text), dtype=bool)))
            value = pc.if_else(pc.is_valid(text), text, written)
        parts.append(value)
    return shown(pc.binary_join_element_wise(*parts, " ", null_handling="emit_null"))
