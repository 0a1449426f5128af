"""Column types. Money and rates are exact on both engines.

SQLite has no exact decimal type: a NUMERIC column there stores binary floating point, so
12.10 + 0.20 would not be 12.30. Money is therefore stored as integer minor units (cents) on
SQLite and as ``NUMERIC(precision, 2)`` on PostgreSQL; rates (loss rates, shares, exchange rates)
likewise as integer units of their last decimal place on SQLite and ``NUMERIC`` on PostgreSQL.
The types convert at the boundary, so Python always sees :class:`~decimal.Decimal` with a fixed
number of places, and both engines hold the same exact values. SQL files that mix money with
cents use the ``cents()`` / ``money()`` macros of :mod:`receivables.warehouse.sqlfiles` for the
same reason.

Per-row money (an invoice, a payment) is ``NUMERIC(18, 2)``; columns that hold sums of many rows
use :data:`TOTAL_PRECISION`, so no aggregate a ledger can produce overflows on PostgreSQL. On
SQLite both are 64-bit integers of cents (up to 92 quadrillion units).
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from sqlalchemy import BigInteger, Numeric
from sqlalchemy.types import TypeDecorator

MONEY_SCALE = 2
MONEY_PRECISION = 18
#: Precision of money columns that hold totals (sums over customers, buckets, books).
TOTAL_PRECISION = 28
_QUANTUM = Decimal(1).scaleb(-MONEY_SCALE)

#: Decimal places of loss rates, roll rates and shares (0.00504 = 0.504 %).
RATE_SCALE = 8
#: Decimal places of exchange rates (1 IDR = 0.0004412345 CNY).
FX_RATE_SCALE = 10


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


def quantize_rate(value: Decimal | int | str, scale: int = RATE_SCALE) -> Decimal:
    """``value`` rounded half-up to ``scale`` decimal places (the form rates are stored in)."""
    if isinstance(value, float):
        raise TypeError("rates are exact: pass a Decimal, an int or a string, not a float")
    return Decimal(value).quantize(Decimal(1).scaleb(-scale), rounding=ROUND_HALF_UP)


class Money(TypeDecorator):
    """An amount of money: Decimal in Python, exact in the database.

    ``Money()`` is one row's amount, ``NUMERIC(18, 2)``; ``Money(TOTAL_PRECISION)`` a total.
    """

    impl = Numeric(MONEY_PRECISION, MONEY_SCALE)
    cache_ok = True

    def __init__(self, precision: int = MONEY_PRECISION, scale: int = MONEY_SCALE):
        # ``scale`` is accepted because Alembic renders the type with the impl's arguments
        if scale != MONEY_SCALE:
            raise ValueError(f"money has {MONEY_SCALE} decimal places, not {scale}")
        super().__init__()
        self.precision = precision

    def load_dialect_impl(self, dialect):
        if dialect.name == "sqlite":
            return dialect.type_descriptor(BigInteger())
        return dialect.type_descriptor(Numeric(self.precision, MONEY_SCALE, asdecimal=True))

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


class Rate(TypeDecorator):
    """A rate, share or exchange rate held exactly with ``scale`` decimal places.

    ``NUMERIC(precision, scale)`` on PostgreSQL; integer units of ``10**-scale`` on SQLite.
    Values with more places are rounded half-up when stored; floats are refused (they would
    carry binary noise into the warehouse).
    """

    impl = Numeric(12, RATE_SCALE)
    cache_ok = True

    def __init__(self, scale: int = RATE_SCALE, precision: int = 12):
        super().__init__()
        self.scale = scale
        self.precision = precision

    def load_dialect_impl(self, dialect):
        if dialect.name == "sqlite":
            return dialect.type_descriptor(BigInteger())
        return dialect.type_descriptor(Numeric(self.precision, self.scale, asdecimal=True))

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        exact = quantize_rate(value, self.scale)
        if dialect.name == "sqlite":
            return int(exact.scaleb(self.scale))
        return exact

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if dialect.name == "sqlite":
            return Decimal(int(value)).scaleb(-self.scale)
        return quantize_rate(Decimal(value), self.scale)


def stored_money(cents: list[int | None], dialect: str) -> list:
    """Integer cents in a money column's storage form, for bulk writes: the cents themselves on
    SQLite, exact decimal text on PostgreSQL (``COPY`` reads it into ``NUMERIC``)."""
    return stored_units(cents, MONEY_SCALE, dialect)


def stored_units(units: list[int | None], scale: int, dialect: str) -> list:
    """Integer units of ``10**-scale`` in the storage form of a :class:`Rate` (or money) column:
    the integers on SQLite, exact decimal text on PostgreSQL."""
    if dialect == "sqlite":
        return units
    one = 10**scale
    return [
        None if u is None else f"{'-' if u < 0 else ''}{abs(u) // one}.{abs(u) % one:0{scale}d}"
        for u in units
    ]
