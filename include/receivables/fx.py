"""Exchange rates to the reporting currency, as of a business date.

``fx_rates`` files give, per date and currency, the units of the reporting currency (policy
``currency.reporting_currency``, default CNY) that one unit of the currency is worth. A date
without its own rate uses the latest earlier one; the reporting currency's own rate is 1.

A currency with no rate on or before the date cannot be converted. That is never an error: its
amounts are left out of converted totals and shown on their own, the customer-level 10 % rule
judges that currency's balance by itself, and the run says which currencies lacked a rate (the
risk digest and the task's summary name them), so someone can drop the missing ``fx_rates``
file and run the date again.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from receivables.warehouse.schema import fx_rates

CENT = Decimal("0.01")


@dataclass(frozen=True)
class Rates:
    """The rates in force on ``as_of``: ``rates[currency]`` = reporting units per unit."""

    as_of: dt.date
    reporting: str
    rates: dict[str, Decimal]

    def rate(self, currency: str) -> Decimal | None:
        """The rate of ``currency`` (1 for the reporting currency), or None without one."""
        if currency == self.reporting:
            return Decimal(1)
        return self.rates.get(currency)

    def convert(self, amount: Decimal, currency: str) -> Decimal | None:
        """``amount`` of ``currency`` in the reporting currency, rounded half-up to the cent
        (None when the currency has no rate)."""
        rate = self.rate(currency)
        if rate is None:
            return None
        return (amount * rate).quantize(CENT, rounding=ROUND_HALF_UP)

    def total(self, amounts: dict[str, Decimal]) -> tuple[Decimal, list[str]]:
        """The sum of ``amounts`` (by currency) in the reporting currency, each converted to the
        cent, and the currencies without a rate, left out of the sum."""
        total, missing = Decimal(0), []
        for currency, amount in amounts.items():
            converted = self.convert(amount, currency)
            if converted is None:
                missing.append(currency)
            else:
                total += converted
        return total, sorted(missing)

    def missing(self, currencies) -> list[str]:
        """Those of ``currencies`` that cannot be converted, sorted."""
        return sorted({c for c in currencies if self.rate(c) is None})


def rates_on(source: Engine | Connection, as_of: dt.date, reporting: str) -> Rates:
    """The latest rate on or before ``as_of`` of every currency that has one."""
    latest = (
        sa.select(fx_rates.c.currency, sa.func.max(fx_rates.c.rate_date).label("rate_date"))
        .where(fx_rates.c.rate_date <= as_of)
        .group_by(fx_rates.c.currency)
        .subquery()
    )
    query = sa.select(fx_rates.c.currency, fx_rates.c.rate).join(
        latest,
        sa.and_(
            latest.c.currency == fx_rates.c.currency, latest.c.rate_date == fx_rates.c.rate_date
        ),
    )
    if isinstance(source, Engine):
        with source.connect() as conn:
            rows = conn.execute(query).all()
    else:
        rows = source.execute(query).all()
    rates = {currency: rate for currency, rate in rows if currency != reporting}
    return Rates(as_of=as_of, reporting=reporting, rates=rates)
