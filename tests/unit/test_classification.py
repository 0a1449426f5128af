"""Customer-level five-category classification (DOMAIN.md, PRC 2023 rules)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
import sqlalchemy as sa

from receivables.aging import InvoiceFacts, compute_snapshot
from receivables.config import ClassificationPolicy, Policy
from receivables.risk.classification import classify_customer, compute_customer_classes
from receivables.warehouse.schema import customer_risk_classes
from tests.helpers import load_ledger

POLICY = Policy()
D = Decimal


def test_domain_example_raises_every_receivable_to_substandard():
    # 100 000 outstanding, 12 000 of it 120 days past due, 88 000 current: 12 % > 10 %
    result = classify_customer(
        [(D(12000), 120), (D(88000), 0)], POLICY.aging, POLICY.classification
    )
    assert result.substandard_share == D("0.12")
    assert result.rule_applied
    assert result.invoice_classes == ("substandard", "substandard")
    assert result.risk_class == "substandard"


def test_exactly_ten_percent_does_not_trigger_the_rule():
    result = classify_customer(
        [(D(10000), 120), (D(90000), 0)], POLICY.aging, POLICY.classification
    )
    assert not result.rule_applied
    assert result.invoice_classes == ("substandard", "normal")
    assert result.risk_class == "substandard"


def test_worse_classes_are_kept_and_the_threshold_is_configurable():
    invoices = [(D(5000), 400), (D(95000), 10)]
    default = classify_customer(invoices, POLICY.aging, POLICY.classification)
    assert default.invoice_classes == ("loss", "special_mention")
    assert default.risk_class == "loss"
    strict = classify_customer(invoices, POLICY.aging, ClassificationPolicy(substandard_share=0.04))
    assert strict.invoice_classes == ("loss", "substandard")


def test_sql_matches_the_rule(engine):
    as_of = dt.date(2024, 6, 30)
    ledger = [
        # X: the DOMAIN example
        InvoiceFacts("X1", "X", dt.date(2024, 1, 1), dt.date(2024, 3, 2), D("12000.00")),
        InvoiceFacts("X2", "X", dt.date(2024, 6, 1), dt.date(2024, 7, 1), D("88000.00")),
        # Y: 5 % substandard only: no rule; worst class substandard
        InvoiceFacts("Y1", "Y", dt.date(2024, 1, 1), dt.date(2024, 3, 2), D("5000.00")),
        InvoiceFacts("Y2", "Y", dt.date(2024, 6, 1), dt.date(2024, 7, 1), D("95000.00")),
        # Z: all current
        InvoiceFacts("Z1", "Z", dt.date(2024, 6, 1), dt.date(2024, 7, 1), D("10.00")),
    ]
    load_ledger(engine, ledger)
    compute_snapshot(engine, as_of, POLICY.aging)
    counts = compute_customer_classes(engine, as_of, POLICY.aging, POLICY.classification)
    assert counts == {"substandard": 2, "normal": 1}
    with engine.connect() as conn:
        rows = {
            r.customer_id: r
            for r in conn.execute(
                sa.select(customer_risk_classes).where(customer_risk_classes.c.as_of_date == as_of)
            )
        }
    assert rows["X"].rule_applied
    assert rows["X"].substandard_share == pytest.approx(0.12)
    assert rows["X"].substandard_or_worse == D("12000.00")
    assert rows["X"].worst_days_past_due == 120  # 2024-03-02 to 2024-06-30
    assert not rows["Y"].rule_applied
    assert rows["Z"].risk_class == "normal"
    assert rows["Z"].substandard_share == 0
