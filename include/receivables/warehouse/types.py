"""Column types. Money is exact: NUMERIC(18, 2) on PostgreSQL, integer cents on SQLite.

SQLite has no exact decimal type: a NUMERIC column there stores binary floating point, so
12.10 + 0.20 would not be 12.30. Storing integer minor units keeps every sum exact, and this
type converts at the boundary so Python always sees :class:`~decimal.Decimal` with two places.
SQL files that mix money with cents use the ``cents()`` / ``money()`` macros of
:mod:`receivables.warehouse.sqlfiles` for the same reason.
"""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import BigInteger, Numeric
from sqlalchemy.types import TypeDecorator

MONEY_SCALE = 2
MONEY_PRECISION = 18
_QUANTUM = Decimal(1).scaleb(-MONEY_SCALE)


def to_cents(value: Decimal | int | str) -> int:
    """Exact conversion of an amount to integer cents; refuses sub-cent amounts."""
    d = Decimal(value)
    cents = d.scaleb(MONEY_SCALE)
    if cents != cents.to_integral_value():
        raise ValueError(f"{value!r} has more than {MONEY_SCALE} decimal places")
    return int(cents)


def from_cents(cents: int) -> Decimal:
    """Integer cents to a two-place Decimal."""
    return Decimal(int(cents)).scaleb(-MONEY_SCALE).quantize(_QUANTUM)


class Money(TypeDecorator):
    """An amount of money: Decimal in Python, exact in the database."""

    impl = Numeric(MONEY_PRECISION, MONEY_SCALE)
    cache_ok = True

    def load_dialect_impl(self, dialect):
        if dialect.name == "sqlite":
            return dialect.type_descriptor(BigInteger())
        return dialect.type_descriptor(Numeric(MONEY_PRECISION, MONEY_SCALE, asdecimal=True))

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if dialect.name == "sqlite":
            return to_cents(value)
        return Decimal(value)

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if dialect.name == "sqlite":
            return from_cents(value)
        return Decimal(value).quantize(_QUANTUM)
