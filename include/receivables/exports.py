"""``receivables export NAME --as-of DATE --out FILE.csv`` (docs/contract.md §5), streamed to CSV.

Each export is a query with the contract's columns first (more may follow). Money is written
exactly as stored (two decimals), dates as ISO ``YYYY-MM-DD``, UTF-8 without a byte-order mark.

Exports are opened in spreadsheets, and their text comes from ledger files that other systems
(or hostile hands) wrote. Every text cell is therefore made inert (:func:`safe_cell`): a cell a
spreadsheet would evaluate as a formula (first character ``=``, ``+``, ``-``, ``@``, their
full-width forms, tab or carriage return, possibly after spaces) is prefixed with ``'`` unless it
is a plain number such as ``-12.50``, ``+3``, ``-1,000.00`` or ``-1e-3``; control and
bidirectional characters are written as ``\\xNN`` / ``\\uNNNN``; a value longer than
:data:`CELL_LIMIT` characters is cut and says its length. Numbers, dates and booleans the warehouse
holds as such are written by this module and left as they are. The work is column by column on
batches of rows: Arrow finds the few cells that need it, and only those are rewritten in Python.
"""

from __future__ import annotations

import csv
import datetime as dt
import re
from collections.abc import Callable, Sequence
from decimal import Decimal
from itertools import repeat
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from receivables.text import BIDI_CONTROLS, CONTROL_CHARACTERS, LINE_SEPARATORS, escape_controls
from receivables.warehouse.schema import (
    aging_runs,
    aging_snapshots,
    collection_actions,
    credit_scores,
    ingested_files,
    legal_cases,
    quarantined_rows,
    reminders,
    risk_warnings,
)


class ExportError(Exception):
    """The export cannot be produced (e.g. nothing computed for that date yet)."""


def _aging(engine: Engine, as_of: dt.date | None) -> sa.Select:
    if as_of is None:
        raise ExportError("the aging export needs --as-of DATE")
    a = aging_snapshots
    with engine.connect() as conn:
        computed = conn.execute(
            sa.select(aging_runs.c.as_of_date).where(aging_runs.c.as_of_date == as_of)
        ).first()
    if computed is None:
        raise ExportError(
            f"no aging snapshot for {as_of}: run `receivables run --as-of {as_of}` first"
        )
    return (
        sa.select(
            a.c.as_of_date,
            a.c.invoice_id,
            a.c.customer_id,
            a.c.currency,
            a.c.amount,
            a.c.outstanding,
            a.c.due_date,
            a.c.days_past_due,
            a.c.bucket,
            a.c.risk_class,
            a.c.issue_date,
            a.c.paid,
            a.c.disputed,
        )
        .where(a.c.as_of_date == as_of)
        .order_by(a.c.customer_id, a.c.invoice_id)
    )


def _rejects(engine: Engine, as_of: dt.date | None) -> sa.Select:
    """Every refusal ever (docs/contract.md §5): quarantined rows, then files refused whole."""
    f, q = ingested_files, quarantined_rows
    rows = sa.select(
        f.c.file_name.label("file"),
        q.c.row_number,
        q.c.record_id,
        q.c.column_name.label("column"),
        q.c.value,
        q.c.reason,
        f.c.kind,
        f.c.as_of_date.label("ingested_for"),
        f.c.file_id,
        q.c.quarantine_id.label("sequence"),
    ).join_from(q, f, q.c.file_id == f.c.file_id)
    files = sa.select(
        f.c.file_name.label("file"),
        sa.null().label("row_number"),
        sa.null().label("record_id"),
        f.c.reason_column.label("column"),
        sa.null().label("value"),
        f.c.reason,
        f.c.kind,
        f.c.as_of_date.label("ingested_for"),
        f.c.file_id,
        sa.literal(0).label("sequence"),
    ).where(f.c.status == "rejected")
    union = sa.union_all(rows, files).subquery()
    return sa.select(
        union.c.file,
        union.c.row_number,
        union.c.record_id,
        union.c.column,
        union.c.value,
        union.c.reason,
        union.c.kind,
        union.c.ingested_for,
    ).order_by(union.c.file_id, union.c.row_number, union.c.sequence)


def _scored(engine: Engine, as_of: dt.date | None, name: str) -> None:
    if as_of is None:
        raise ExportError(f"the {name} export needs --as-of DATE")
    with engine.connect() as conn:
        found = conn.execute(
            sa.select(credit_scores.c.as_of_date)
            .where(credit_scores.c.as_of_date == as_of)
            .limit(1)
        ).first()
    if found is None:
        raise ExportError(
            f"no risk results for {as_of}: run `receivables run --as-of {as_of}` first"
        )


def _scores(engine: Engine, as_of: dt.date | None) -> sa.Select:
    _scored(engine, as_of, "scores")
    s = credit_scores
    return (
        sa.select(
            s.c.customer_id,
            s.c.score,
            s.c.grade,
            s.c.reasons,
            s.c.pd,
            s.c.model_id,
            s.c.as_of_date,
            s.c.basis,
        )
        .where(s.c.as_of_date == as_of)
        .order_by(s.c.customer_id)
    )


def _warnings(engine: Engine, as_of: dt.date | None) -> sa.Select:
    _scored(engine, as_of, "warnings")
    w = risk_warnings
    severity = sa.case(
        {"critical": 0, "high": 1, "medium": 2, "low": 3}, value=w.c.severity, else_=4
    )
    return (
        sa.select(
            w.c.customer_id,
            w.c.kind,
            w.c.severity,
            w.c.message,
            w.c.action,
            w.c.proposed_credit_limit,
            w.c.currency,
            w.c.dunning_stage,
            w.c.as_of_date,
        )
        .where(w.c.as_of_date == as_of)
        .order_by(severity, w.c.customer_id, w.c.kind)
    )


def _reminders(engine: Engine, as_of: dt.date | None) -> sa.Select:
    if as_of is None:
        raise ExportError("the reminders export needs --as-of DATE (the date they were planned)")
    r = reminders
    # ``sending`` is a reminder in flight (or interrupted): to the outside it is still pending
    status = sa.case((r.c.status == "sending", "pending"), else_=r.c.status)
    return (
        sa.select(
            r.c.customer_id,
            r.c.stage,
            status.label("status"),
            r.c.reason,
            r.c.provider_message_id,
            r.c.send_at,
            r.c.reminder_id,
            r.c.planned_on,
            r.c.rule,
            r.c.ladder,
            r.c.locale,
            r.c.days_past_due,
            r.c.invoices,
            r.c.mentions_legal,
            r.c.provider,
            r.c.attempts,
            r.c.sent_at,
            r.c.delivery_status,
            r.c.delivered_at,
            r.c.opened_at,
            r.c.clicked_at,
            r.c.strategy_version,
        )
        .where(r.c.planned_on == as_of)
        .order_by(r.c.customer_id, r.c.reminder_id)
    )


def _worklist(engine: Engine, as_of: dt.date | None) -> sa.Select:
    if as_of is None:
        raise ExportError("the worklist export needs --as-of DATE")
    a = collection_actions
    return (
        sa.select(
            a.c.planned_on,
            a.c.customer_id,
            a.c.kind,
            a.c.cause,
            a.c.detail,
            a.c.collector_id,
            a.c.reminder_id,
        )
        .where(a.c.planned_on == as_of)
        .order_by(a.c.collector_id, a.c.customer_id, a.c.kind)
    )


def _legal_cases(engine: Engine, as_of: dt.date | None) -> sa.Select:
    if as_of is None:
        raise ExportError("the legal_cases export needs --as-of DATE (cases opened up to it)")
    c = legal_cases.c
    return (
        sa.select(
            c.case_id,
            c.customer_id,
            c.opened_on,
            c.amount,
            c.status,
            c.currency,
            c.principal,
            c.interest,
            c.worst_days_past_due,
            c.updated_on,
            c.decided_by,
            c.decided_at,
            c.decision_note,
            c.recovered_amount,
            c.written_off_amount,
            c.case_file,
            c.strategy_version,
        )
        .where(c.opened_on <= as_of)
        .order_by(c.opened_on, c.case_id)
    )


def _kpis(engine: Engine, as_of: dt.date | None) -> sa.Select:
    """The quarter's KPIs, computed from the warehouse (the same figures whenever asked: the
    ledger's history, the risk step's provision, reminders and legal cases as stored)."""
    from receivables.config import Settings
    from receivables.evaluation.kpis import METRICS, quarter_kpis
    from receivables.evaluation.quarters import NotAQuarterEnd, ending_on

    if as_of is None:
        raise ExportError("the kpis export needs --as-of DATE, the last day of a quarter")
    try:
        quarter = ending_on(as_of)
    except NotAQuarterEnd as exc:
        raise ExportError(f"the kpis export: {exc}") from None
    result = quarter_kpis(engine, quarter, Settings.from_env().policy)
    text = sa.String()
    rows = sa.union_all(
        *(
            sa.select(
                sa.literal(position, sa.Integer()).label("position"),
                sa.literal(m.name, text).label("metric"),
                sa.literal(
                    None if result.values[m.name] is None else str(result.values[m.name]), text
                ).label("value"),
                sa.literal(m.unit, text).label("unit"),
                sa.literal(result.reporting_currency if m.unit == "money" else None, text).label(
                    "currency"
                ),
                sa.literal(m.formula, text).label("formula"),
            )
            for position, m in enumerate(METRICS)
        )
    ).subquery("kpis")
    # computed here, handed to the CSV writer as a query of literals in the metrics' order
    return sa.select(
        rows.c.metric, rows.c.value, rows.c.unit, rows.c.currency, rows.c.formula
    ).order_by(rows.c.position)


EXPORTS: dict[str, Callable[[Engine, dt.date | None], sa.Select]] = {
    "aging": _aging,
    "rejects": _rejects,
    "scores": _scores,
    "warnings": _warnings,
    "reminders": _reminders,
    "worklist": _worklist,
    "legal_cases": _legal_cases,
    "kpis": _kpis,
}


#: Rows converted and written at a time: few enough that a batch is gone before the garbage
#: collector promotes it, enough for Arrow's column-wise work to pay.
BATCH_ROWS = 1_000
#: Longest text written whole: longer values are cut to this many characters and say how long
#: they were (a quarantined megabyte is evidence enough in its first thousand characters).
CELL_LIMIT = 1_000
#: First characters that make a spreadsheet evaluate a cell (ASCII and full-width forms).
FORMULA_STARTS = ("=", "+", "-", "@", "\uff1d", "\uff0b", "\uff0d", "\uff20")
#: White space some spreadsheets trim on import before they look at the first character.
LEADING_SPACES = (" ", "\t", "\r", "\u00a0", "\u3000")

_FORMULA = re.compile(
    "[\t\r]|[{}]*[{}]".format(
        re.escape("".join(LEADING_SPACES)), re.escape("".join(FORMULA_STARTS))
    )
)
# A plain number is data, not a formula: optional sign, digits (with thousands separators or
# without), optional decimals and exponent. Nothing else, not even a space, may follow.
_PLAIN_NUMBER = re.compile(
    r"[+-]?(?:(?:[0-9]{1,3}(?:,[0-9]{3})+|[0-9]+)(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"
)


def _re2_class(characters: str, ranges: bool) -> str:
    """A character class for Arrow's RE2, every character written as ``\\x{hex}``."""
    parts = ("-" if ranges and c == "-" else f"\\x{{{ord(c):x}}}" for c in characters)
    return "[" + "".join(parts) + "]"


# The cells safe_cell() may change, found by Arrow: a superset of what it changes (a plain
# number starting with a sign is flagged too, and left as it is by safe_cell).
_FLAG = "|".join(
    (
        "^[\\t\\r]",
        "^"
        + _re2_class("".join(LEADING_SPACES), ranges=False)
        + "*"
        + _re2_class("".join(FORMULA_STARTS), ranges=False),
        _re2_class(CONTROL_CHARACTERS + BIDI_CONTROLS + LINE_SEPARATORS, ranges=True),
    )
)


def safe_cell(value: str) -> str:
    r"""``value`` as a spreadsheet cell that is shown, never evaluated.

    A formula is prefixed with ``'`` (a plain number is not a formula and stays a number),
    control and bidirectional characters are escaped, and a value over :data:`CELL_LIMIT`
    characters is cut and says its length:

    >>> safe_cell('=HYPERLINK("http://x","y")')
    '\'=HYPERLINK("http://x","y")'
    >>> safe_cell("-12.50"), safe_cell("-2+3"), safe_cell("a\nb")
    ('-12.50', "'-2+3", 'a\\x0ab')
    """
    length = len(value)
    kept = value[:CELL_LIMIT]
    formula = _FORMULA.match(kept) is not None and not (
        length <= CELL_LIMIT and _PLAIN_NUMBER.fullmatch(kept)
    )
    shown = ("'" if formula else "") + escape_controls(kept)
    if length > CELL_LIMIT:
        shown += f"…[cut: {length:,} characters]"
    return shown


def safe_cells(values: Sequence[str | None]) -> list[str]:
    """:func:`safe_cell` of every value (``None`` written empty), vectorised.

    Arrow finds the cells that may need a change in one pass over the column; only those go
    through Python.
    """
    out = ["" if v is None else v for v in values] if None in values else list(values)
    if not out:
        return out
    array = pa.array(values, pa.large_string())
    flagged = pc.or_(
        pc.match_substring_regex(array, _FLAG),
        pc.greater(pc.utf8_length(array), CELL_LIMIT),
    ).fill_null(False)
    for i in np.flatnonzero(flagged.to_numpy(zero_copy_only=False)).tolist():
        out[i] = safe_cell(out[i])
    return out


def _float_text(value: float) -> str:
    return repr(round(value, 8))


def _bool_text(value: bool) -> str:
    return "true" if value else "false"


def _moment_text(value: dt.datetime) -> str:
    """A moment in UTC, ISO 8601 with ``Z`` (SQLite hands back naive UTC values)."""
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC).replace(tzinfo=None)
    return value.isoformat(timespec="seconds") + "Z"


def _cell(value: object) -> str:
    """One cell of any type (the fallback for a column whose values differ in type)."""
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return _moment_text(value)
    if isinstance(value, bool):
        return _bool_text(value)
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, float):
        return _float_text(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, int):
        return str(value)
    return safe_cell(str(value))


# Values the warehouse holds as numbers, dates and booleans, written by this module as they
# are: nothing in them can come from a file's text.
_WRITERS: dict[type, Callable[[object], str]] = {
    bool: _bool_text,
    int: str,
    float: _float_text,
    Decimal: lambda value: format(value, "f"),
    dt.date: dt.date.isoformat,
    dt.datetime: _moment_text,
}


def _column_text(values: Sequence[object]) -> list[str]:
    """One batch of one column as CSV text, converted column-wise."""
    kinds = set(map(type, values))
    kinds.discard(type(None))
    if not kinds:
        return [""] * len(values)
    if kinds == {str}:
        return safe_cells(values)
    if len(kinds) == 1:
        (kind,) = kinds
        if kind is dt.date:
            # a column holds few distinct days: each is formatted once
            names = {v: "" if v is None else v.isoformat() for v in set(values)}
            return list(map(names.__getitem__, values))
        if kind is Decimal and None not in values:
            return list(map(Decimal.__format__, values, repeat("f")))
        write = _WRITERS.get(kind)
        if write is not None:
            if None not in values:
                return list(map(write, values))
            return ["" if v is None else write(v) for v in values]
    return [_cell(v) for v in values]


def export(name: str, engine: Engine, as_of: dt.date | None, out: Path) -> int:
    """Write export ``name`` to ``out``; return the number of data rows written.

    Every text cell goes through :func:`safe_cell` (see the module's docstring); the columns and
    their order are the contract's.
    """
    if name not in EXPORTS:
        raise ExportError(f"unknown export {name!r}: expected one of {', '.join(sorted(EXPORTS))}")
    query = EXPORTS[name](engine, as_of)
    out.parent.mkdir(parents=True, exist_ok=True)
    temporary = out.with_name(out.name + ".part")
    count = 0
    with engine.connect() as conn, temporary.open("w", encoding="utf-8", newline="") as f:
        result = conn.execution_options(stream_results=True, yield_per=10_000).execute(query)
        writer = csv.writer(f)
        writer.writerow(result.keys())
        for rows in result.partitions(BATCH_ROWS):
            count += len(rows)
            values = list(zip(*rows, strict=True))
            # Row objects are tracked by the garbage collector: freed now, they do not live long
            # enough to be promoted and rescanned (measured: 1M rows in batches of 10,000 took
            # 2.3 s longer to fetch than row by row, in batches of 1,000 0.4 s)
            rows.clear()
            columns = [_column_text(column) for column in values]
            del values
            writer.writerows(zip(*columns, strict=True))
    temporary.replace(out)
    return count
