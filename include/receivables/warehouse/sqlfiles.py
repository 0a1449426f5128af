"""Run the set-based SQL kept as files under ``sql/`` (Jinja2 templates, one per dialect need).

A file may hold several statements, each ending with ``;`` at the end of a line; files whose
name starts with ``_`` hold Jinja macros shared by others. The template sees ``dialect``
(``"sqlite"`` or ``"postgresql"``) and these macros, which hide the differences that matter:

* ``band_case(days, bands)`` — the name of the band (bucket or risk class) of a number of days
  past due; ``band_rank(name, bands)`` — a band's position by its name;
* ``days_between(later, earlier)`` — whole days between two DATE expressions;
* ``cents(expr)`` — a Money column as integer cents (64-bit); ``exact_cents(expr)`` — a sum of
  money as whole cents of any size (an integer on SQLite, ``NUMERIC(38, 0)`` on PostgreSQL);
  ``money(expr)`` — integer cents as Money (on SQLite money already *is* cents, see
  :mod:`receivables.warehouse.types`);
* ``money_text(cents)`` — non-negative integer cents as text with two decimals, for messages;
* ``date_param(name)`` — a bound date parameter usable in comparisons;
* ``epoch_days(date)`` — a DATE as whole days since 1970-01-01 (for numeric work);
* ``money_times_rate(money, rate)`` — a non-negative amount times an exact rate of
  :data:`~receivables.warehouse.types.RATE_SCALE` places between 0 and 1, rounded half-up to
  the cent, to the same cent on both engines (PostgreSQL: NUMERIC; SQLite: integer cents times
  integer rate units, split so the product never leaves 64 bits).

Values always go in as bound parameters; only validated configuration (bucket bounds and
names) is rendered into the text.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import cache
from typing import Any

import jinja2
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from receivables.paths import SQL_DIR
from receivables.warehouse.types import RATE_SCALE

#: One rate as stored on SQLite, in integer units (see :class:`~receivables.warehouse.types.Rate`).
_RATE_UNIT = 10**RATE_SCALE


def band_case(expr: str, bands) -> str:
    """``CASE`` giving the name of the band (bucket or risk class) that holds ``expr`` days
    past due; the bands are validated configuration (receivables.config.Band)."""
    whens = " ".join(
        f"WHEN {expr} <= {band.max_days} THEN '{band.name}'"
        for band in bands
        if band.max_days is not None
    )
    return f"(CASE {whens} ELSE '{bands[-1].name}' END)"


def band_rank(expr: str, bands) -> str:
    """``CASE`` giving the position (0, 1, …) of the band named by ``expr``."""
    whens = " ".join(f"WHEN '{band.name}' THEN {i}" for i, band in enumerate(bands))
    return f"(CASE {expr} {whens} END)"


def _macros(dialect: str) -> dict[str, Any]:
    common = {"band_case": band_case, "band_rank": band_rank}
    return common | _dialect_macros(dialect)


def _dialect_macros(dialect: str) -> dict[str, Any]:
    if dialect == "sqlite":
        return {
            "days_between": lambda later, earlier: (
                f"CAST(julianday({later}) - julianday({earlier}) AS INTEGER)"
            ),
            "cents": lambda expr: f"({expr})",
            "exact_cents": lambda expr: f"({expr})",
            "money": lambda expr: f"({expr})",
            "date_param": lambda name: f"date(:{name})",
            "money_text": lambda cents: f"printf('%d.%02d', ({cents}) / 100, ({cents}) % 100)",
            "money_times_rate": lambda money, rate: (
                f"((({money}) / {_RATE_UNIT}) * ({rate}) "
                f"+ ((({money}) % {_RATE_UNIT}) * ({rate}) + {_RATE_UNIT // 2}) / {_RATE_UNIT})"
            ),
            "epoch_days": lambda expr: f"CAST(julianday({expr}) - 2440587.5 AS INTEGER)",
        }
    return {
        "days_between": lambda later, earlier: f"(({later})::date - ({earlier})::date)",
        "cents": lambda expr: f"(({expr}) * 100)::bigint",
        "exact_cents": lambda expr: f"CAST(({expr}) * 100 AS NUMERIC(38, 0))",
        "money": lambda expr: f"(CAST({expr} AS NUMERIC(18, 2)) / 100)",
        "date_param": lambda name: f"CAST(:{name} AS DATE)",
        "money_text": lambda cents: (
            f"CAST(CAST(CAST(({cents}) AS NUMERIC(30, 0)) / 100 AS NUMERIC(30, 2)) AS TEXT)"
        ),
        "money_times_rate": lambda money, rate: f"ROUND(({money}) * ({rate}), 2)",
        "epoch_days": lambda expr: f"(({expr}) - DATE '1970-01-01')",
    }


@cache
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(SQL_DIR),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,  # SQL, not HTML: values are bound parameters, never rendered
    )


def render(name: str, dialect: str, **context: Any) -> list[str]:
    """Render ``sql/<name>`` for ``dialect`` and split it into statements."""
    template = _environment().get_template(name)
    text = template.render(dialect=dialect, **_macros(dialect), **context)
    statements = []
    for chunk in text.split(";\n"):
        body = "\n".join(
            line
            for line in chunk.splitlines()
            if line.strip() and not line.strip().startswith("--")
        ).strip()
        if body:
            statements.append(body.rstrip(";"))
    return statements


def execute(
    conn: Connection,
    name: str,
    params: Mapping[str, Any] | None = None,
    *,
    types: Mapping[str, sa.types.TypeEngine] | None = None,
    **context: Any,
) -> list[sa.CursorResult]:
    """Render and run every statement of ``sql/<name>`` on ``conn`` (inside its transaction).

    ``types`` declares bound parameter types (e.g. ``{"as_of": sa.Date()}``) so dates and money
    are converted the way the dialect needs.
    """
    results = []
    for statement in render(name, conn.dialect.name, **context):
        clause = sa.text(statement)
        used = {k: v for k, v in (params or {}).items() if re.search(rf"(?<!:):{k}\b", statement)}
        for key, type_ in (types or {}).items():
            if key in used:
                clause = clause.bindparams(sa.bindparam(key, type_=type_))
        results.append(conn.execute(clause, used))
    return results
