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

import pyarrow as pa
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from receivables.aging import band_for
from receivables.config import RISK_CLASS_ORDER, AgingPolicy, ClassificationPolicy, Policy
from receivables.fx import Rates, rates_on
from receivables.warehouse import sqlfiles
from receivables.warehouse.bulk import write_arrow
from receivables.warehouse.schema import customer_risk_classes
from receivables.warehouse.types import FX_RATE_SCALE, RATE_SCALE, stored_money, stored_units

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


@dataclass
class Balances:
    """Per customer and currency (parallel lists): the exact sums in whole cents, the worst
    days past due and its class."""

    customer_ids: list[str]
    currencies: list[str]
    outstanding: list[int]
    substandard: list[int]
    worst_days: list[int]
    risk_classes: list[str]

    def __len__(self) -> int:
        return len(self.customer_ids)


@dataclass
class Decision:
    """The customer-level rule for each row of :class:`Balances` (parallel lists)."""

    share_units: list[int]  # the share it was judged on, in units of 10**-RATE_SCALE
    rule_applied: list[bool]
    reporting_cents: list[int | None]  # the outstanding in the reporting currency


def decide(rows: Balances, rates: Rates, policy: ClassificationPolicy) -> Decision:
    """Whether the customer-level rule applies to each row: over the customer's currencies with
    a rate, converted (cents × rate units, exact integers); alone for a currency without one."""
    units: dict[str, int | None] = {}
    for currency in set(rows.currencies):
        rate = rates.rate(currency)
        units[currency] = None if rate is None else int(rate.scaleb(FX_RATE_SCALE))
    converted: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for customer_id, currency, whole, part in zip(
        rows.customer_ids, rows.currencies, rows.outstanding, rows.substandard, strict=True
    ):
        rate = units[currency]
        if rate is not None:
            totals = converted[customer_id]
            totals[0] += part * rate
            totals[1] += whole * rate
    numerator, denominator = policy.substandard_share.as_integer_ratio()
    scale = 10**RATE_SCALE
    half_fx = 10**FX_RATE_SCALE // 2
    shares, applied, reporting = [], [], []
    for customer_id, currency, whole, part in zip(
        rows.customer_ids, rows.currencies, rows.outstanding, rows.substandard, strict=True
    ):
        rate = units[currency]
        if rate is None:
            judged_part, judged_whole = part, whole
            reporting.append(None)
        else:
            judged_part, judged_whole = converted[customer_id]
            reporting.append((whole * rate + half_fx) // 10**FX_RATE_SCALE)
        if judged_whole > 0:
            shares.append((2 * judged_part * scale + judged_whole) // (2 * judged_whole))
            applied.append(judged_part * denominator > judged_whole * numerator)
        else:
            shares.append(0)
            applied.append(False)
    return Decision(shares, applied, reporting)


def read_balances(engine: Engine, as_of: dt.date, aging: AgingPolicy) -> Balances:
    """The customer × currency sums of the aging snapshot of ``as_of`` (one set-based query,
    ``sql/risk/customer_risk_classes.sql``; plain values, no per-value type conversion)."""
    (statement,) = sqlfiles.render(
        "risk/customer_risk_classes.sql",
        engine.dialect.name,
        substandard_from=substandard_from(aging),
        risk_classes=aging.risk_classes,
    )
    query = sa.text(statement).bindparams(sa.bindparam("as_of", type_=sa.Date()))
    with engine.connect() as conn:
        found = conn.execute(query, {"as_of": as_of}).all()
    columns = list(zip(*found, strict=True)) if found else [()] * 6
    return Balances(
        customer_ids=list(columns[0]),
        currencies=list(columns[1]),
        outstanding=[int(c) for c in columns[2]],  # PostgreSQL: NUMERIC(38, 0) as Decimal
        substandard=[int(c) for c in columns[3]],
        worst_days=[int(d) for d in columns[4]],
        risk_classes=list(columns[5]),
    )


def compute_customer_classes(engine: Engine, as_of: dt.date, policy: Policy) -> dict:
    """Replace the customer classes of ``as_of`` (needs that date's aging snapshot)."""
    rows = read_balances(engine, as_of, policy.aging)
    with engine.connect() as conn:
        rates = rates_on(conn, as_of, policy.currency.reporting_currency)
    decision = decide(rows, rates, policy.classification)
    dialect = engine.dialect.name
    fx_units = {
        c: None if rates.rate(c) is None else int(rates.rate(c).scaleb(FX_RATE_SCALE))
        for c in set(rows.currencies)
    }
    table = pa.table(
        {
            "as_of_date": pa.array([as_of] * len(rows), pa.date32()),
            "customer_id": pa.array(rows.customer_ids, pa.string()),
            "currency": pa.array(rows.currencies, pa.string()),
            "outstanding": pa.array(stored_money(rows.outstanding, dialect)),
            "substandard_or_worse": pa.array(stored_money(rows.substandard, dialect)),
            "substandard_share": pa.array(stored_units(decision.share_units, RATE_SCALE, dialect)),
            "worst_days_past_due": pa.array(rows.worst_days, pa.int64()),
            "risk_class": pa.array(rows.risk_classes, pa.string()),
            "rule_applied": pa.array(decision.rule_applied, pa.bool_()),
            "fx_rate": pa.array(
                stored_units([fx_units[c] for c in rows.currencies], FX_RATE_SCALE, dialect)
            ),
            "reporting_outstanding": pa.array(stored_money(decision.reporting_cents, dialect)),
        }
    )
    with engine.begin() as conn:
        conn.execute(
            customer_risk_classes.delete().where(customer_risk_classes.c.as_of_date == as_of)
        )
        if len(rows):
            write_arrow(conn, customer_risk_classes.name, table)
    counts: dict[str, int] = {}
    for risk_class in rows.risk_classes:
        counts[risk_class] = counts.get(risk_class, 0) + 1
    return {
        "as_of_date": as_of.isoformat(),
        "customers_by_class": counts,
        "rule_applied": len(
            {c for c, a in zip(rows.customer_ids, decision.rule_applied, strict=True) if a}
        ),
        "reporting_currency": rates.reporting,
        "missing_fx_rates": rates.missing(rows.currencies),
    }
