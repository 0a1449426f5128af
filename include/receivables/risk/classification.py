"""Five-category classification per customer (PRC 2023 rules; docs/formulas.md).

A customer takes the worst class of its open invoices; when more than the configured share
(default 10 %) of its outstanding is substandard or worse, every receivable of that customer is
classed at least substandard. The share is taken over the customer's whole outstanding, every
currency converted to the reporting currency at the as-of rate (:mod:`receivables.fx`); a
currency without a rate is judged on its own (and the run says so).

The comparison is exact on both engines: sums come from SQL as exact money, conversions and the
"more than" are done with Python integers (cents × rate units), never with floats — exactly
10 % does not trigger the rule anywhere. :func:`classify_customer` states the rule for one
customer in plain Python (the tests hold the SQL path to it).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from receivables.aging import band_for
from receivables.config import RISK_CLASS_ORDER, AgingPolicy, ClassificationPolicy, Policy
from receivables.fx import Rates, rates_on
from receivables.warehouse import sqlfiles
from receivables.warehouse.bulk import insert_rows
from receivables.warehouse.schema import customer_risk_classes
from receivables.warehouse.types import FX_RATE_SCALE, RATE_SCALE, Money

SUBSTANDARD = "substandard"


def substandard_from(aging: AgingPolicy) -> int:
    """Days past due from which an invoice is substandard or worse."""
    return next(b.min_days for b in aging.risk_classes if b.name == SUBSTANDARD)


@dataclass(frozen=True)
class CustomerClass:
    """The classification of one customer's open invoices."""

    risk_class: str
    substandard_share: Decimal
    rule_applied: bool
    invoice_classes: tuple[str, ...]


def classify_customer(
    invoices: list[tuple[Decimal, int]], aging: AgingPolicy, policy: ClassificationPolicy
) -> CustomerClass:
    """Classify a customer from its open invoices given as (outstanding, days past due), all in
    one currency."""
    classes = [band_for(days, aging.risk_classes) for _, days in invoices]
    total = sum((amount for amount, _ in invoices), Decimal(0))
    threshold = substandard_from(aging)
    bad = sum((amount for amount, days in invoices if days >= threshold), Decimal(0))
    share = bad / total if total else Decimal(0)
    applied = share > policy.substandard_share
    rank = {name: i for i, name in enumerate(RISK_CLASS_ORDER)}
    if applied:
        floor = rank[SUBSTANDARD]
        classes = [c if rank[c] >= floor else SUBSTANDARD for c in classes]
    worst = max(classes, key=rank.__getitem__) if classes else RISK_CLASS_ORDER[0]
    return CustomerClass(worst, share, applied, tuple(classes))


def share_exceeds(part: int, whole: int, threshold: Decimal) -> bool:
    """``part / whole > threshold``, exactly (integers and an exact decimal threshold)."""
    numerator, denominator = threshold.as_integer_ratio()
    return whole > 0 and part * denominator > whole * numerator


def rounded_share(part: int, whole: int, places: int = RATE_SCALE) -> Decimal:
    """``part / whole`` rounded half-up to ``places`` decimals (0 when ``whole`` is 0)."""
    if whole <= 0:
        return Decimal(0)
    scale = 10**places
    units = (2 * part * scale + whole) // (2 * whole)
    return Decimal(units).scaleb(-places)


@dataclass
class _Row:
    customer_id: str
    currency: str
    outstanding: Decimal
    substandard_or_worse: Decimal
    worst_days_past_due: int


def _cents(amount: Decimal) -> int:
    return int(amount.scaleb(2))


def decide(rows: list[_Row], rates: Rates, policy: ClassificationPolicy) -> list[dict]:
    """The stored rows: per customer and currency its worst class, and whether the customer-level
    rule applies (converted over the currencies with a rate; alone for those without)."""
    converted: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    rate_units: dict[str, int | None] = {}
    for row in rows:
        rate = rates.rate(row.currency)
        rate_units[row.currency] = None if rate is None else int(rate.scaleb(FX_RATE_SCALE))
        if rate is not None:
            totals = converted[row.customer_id]
            totals[0] += _cents(row.substandard_or_worse) * rate_units[row.currency]
            totals[1] += _cents(row.outstanding) * rate_units[row.currency]
    out = []
    for row in rows:
        rate = rate_units[row.currency]
        if rate is not None:
            part, whole = converted[row.customer_id]
            reporting = rates.convert(row.outstanding, row.currency)
        else:
            part, whole = _cents(row.substandard_or_worse), _cents(row.outstanding)
            reporting = None
        out.append(
            {
                "customer_id": row.customer_id,
                "currency": row.currency,
                "outstanding": row.outstanding,
                "substandard_or_worse": row.substandard_or_worse,
                "substandard_share": rounded_share(part, whole),
                "worst_days_past_due": row.worst_days_past_due,
                "risk_class": None,  # filled by the caller from the days past due
                "rule_applied": share_exceeds(part, whole, policy.substandard_share),
                "fx_rate": rates.rate(row.currency),
                "reporting_outstanding": reporting,
            }
        )
    return out


def compute_customer_classes(engine: Engine, as_of: dt.date, policy: Policy) -> dict:
    """Replace the customer classes of ``as_of`` (needs that date's aging snapshot)."""
    (statement,) = sqlfiles.render(
        "risk/customer_risk_classes.sql",
        engine.dialect.name,
        substandard_from=substandard_from(policy.aging),
    )
    query = (
        sa.text(statement)
        .bindparams(sa.bindparam("as_of", type_=sa.Date()))
        .columns(
            customer_id=sa.String(),
            currency=sa.String(),
            outstanding=Money(),
            substandard_or_worse=Money(),
            worst_days_past_due=sa.Integer(),
        )
    )
    with engine.connect() as conn:
        rows = [_Row(*r) for r in conn.execute(query, {"as_of": as_of})]
        rates = rates_on(conn, as_of, policy.currency.reporting_currency)
    stored = decide(rows, rates, policy.classification)
    for row in stored:
        row["as_of_date"] = as_of
        row["risk_class"] = band_for(row["worst_days_past_due"], policy.aging.risk_classes)
    with engine.begin() as conn:
        conn.execute(
            customer_risk_classes.delete().where(customer_risk_classes.c.as_of_date == as_of)
        )
        if stored:
            insert_rows(conn, customer_risk_classes, stored)
    counts: dict[str, int] = {}
    for row in stored:
        counts[row["risk_class"]] = counts.get(row["risk_class"], 0) + 1
    missing = rates.missing(r.currency for r in rows)
    return {
        "as_of_date": as_of.isoformat(),
        "customers_by_class": counts,
        "rule_applied": len({r["customer_id"] for r in stored if r["rule_applied"]}),
        "reporting_currency": rates.reporting,
        "missing_fx_rates": missing,
    }
