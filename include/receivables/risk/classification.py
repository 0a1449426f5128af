"""Five-category classification per customer (PRC 2023 rules, DOMAIN.md).

A customer takes the worst class of its open invoices; when more than the configured share
(default 10 %) of its outstanding is substandard or worse, every receivable of that customer is
classed at least substandard. The SQL (``sql/risk/customer_risk_classes.sql``) does it
set-based per as-of date; :func:`classify_customer` states the same rule in Python for tests.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from receivables.aging import band_for
from receivables.config import RISK_CLASS_ORDER, AgingPolicy, ClassificationPolicy
from receivables.warehouse import sqlfiles

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
    """Classify a customer from its open invoices given as (outstanding, days past due)."""
    classes = [band_for(days, aging.risk_classes) for _, days in invoices]
    total = sum((amount for amount, _ in invoices), Decimal(0))
    threshold = substandard_from(aging)
    bad = sum((amount for amount, days in invoices if days >= threshold), Decimal(0))
    share = bad / total if total else Decimal(0)
    applied = share > Decimal(str(policy.substandard_share))
    rank = {name: i for i, name in enumerate(RISK_CLASS_ORDER)}
    if applied:
        floor = rank[SUBSTANDARD]
        classes = [c if rank[c] >= floor else SUBSTANDARD for c in classes]
    worst = max(classes, key=rank.__getitem__) if classes else RISK_CLASS_ORDER[0]
    return CustomerClass(worst, share, applied, tuple(classes))


def compute_customer_classes(
    engine: Engine, as_of: dt.date, aging: AgingPolicy, policy: ClassificationPolicy
) -> dict[str, int]:
    """Replace the customer classes of ``as_of`` (needs that date's aging snapshot)."""
    with engine.begin() as conn:
        sqlfiles.execute(
            conn,
            "risk/customer_risk_classes.sql",
            {"as_of": as_of, "threshold": policy.substandard_share},
            types={"as_of": sa.Date()},
            risk_classes=aging.risk_classes,
            substandard_from=substandard_from(aging),
        )
        rows = conn.execute(
            sa.text(
                "SELECT risk_class, COUNT(*) FROM customer_risk_classes "
                "WHERE as_of_date = :d GROUP BY risk_class"
            ).bindparams(sa.bindparam("d", type_=sa.Date())),
            {"d": as_of},
        ).all()
    return {name: int(count) for name, count in rows}
