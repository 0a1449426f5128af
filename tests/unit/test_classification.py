"""Customer-level five-category classification (docs/formulas.md, PRC 2023 rules)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import sqlalchemy as sa

from receivables.aging import InvoiceFacts, compute_snapshot
from receivables.config import ClassificationPolicy, Policy
from receivables.risk.classification import classify_customer, compute_customer_classes
from receivables.warehouse.schema import customer_risk_classes, fx_rates
from tests.helpers import add_invoice, load_ledger

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
    strict = classify_customer(
        invoices, POLICY.aging, ClassificationPolicy(substandard_share=D("0.04"))
    )
    assert strict.invoice_classes == ("loss", "substandard")


def test_sql_matches_the_rule(engine):
    as_of = dt.date(2024, 6, 30)
    ledger = [
        # X: the worked example of docs/formulas.md
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
    summary = compute_customer_classes(engine, as_of, POLICY)
    assert summary["customers_by_class"] == {"substandard": 2, "normal": 1}
    assert summary["missing_fx_rates"] == []
    with engine.connect() as conn:
        rows = {
            r.customer_id: r
            for r in conn.execute(
                sa.select(customer_risk_classes).where(customer_risk_classes.c.as_of_date == as_of)
            )
        }
    assert rows["X"].rule_applied
    assert rows["X"].substandard_share == D("0.12")
    assert rows["X"].substandard_or_worse == D("12000.00")
    assert rows["X"].worst_days_past_due == 120  # 2024-03-02 to 2024-06-30
    assert not rows["Y"].rule_applied
    assert rows["Z"].risk_class == "normal"
    assert rows["Z"].substandard_share == 0


def _classes(engine, as_of):
    with engine.connect() as conn:
        return {
            (r.customer_id, r.currency): r
            for r in conn.execute(
                sa.select(customer_risk_classes).where(customer_risk_classes.c.as_of_date == as_of)
            )
        }


def test_exactly_ten_percent_is_not_more_than_ten_percent_on_either_engine(engine):
    # 1,024.13 of 10,241.30 is exactly 10 %: floats made it "more" on PostgreSQL
    as_of = dt.date(2024, 6, 30)
    load_ledger(
        engine,
        [
            InvoiceFacts("E1", "E", dt.date(2024, 1, 1), dt.date(2024, 3, 2), D("1024.13")),
            InvoiceFacts("E2", "E", dt.date(2024, 6, 1), dt.date(2024, 7, 1), D("9217.17")),
            # one cent more substandard: 1,024.14 of 10,241.30 is more than 10 %
            InvoiceFacts("F1", "F", dt.date(2024, 1, 1), dt.date(2024, 3, 2), D("1024.14")),
            InvoiceFacts("F2", "F", dt.date(2024, 6, 1), dt.date(2024, 7, 1), D("9217.16")),
        ],
    )
    compute_snapshot(engine, as_of, POLICY.aging)
    compute_customer_classes(engine, as_of, POLICY)
    rows = _classes(engine, as_of)
    assert not rows[("E", "CNY")].rule_applied
    assert rows[("E", "CNY")].substandard_share == D("0.10000000")
    assert rows[("F", "CNY")].rule_applied
    assert rows[("F", "CNY")].substandard_share == D("0.10000098")


def _two_currency_customer(engine):
    """Customer M: CNY 9,000.00 current and USD 200.00 120 days past due."""
    load_ledger(
        engine,
        [InvoiceFacts("M1", "M", dt.date(2024, 6, 1), dt.date(2024, 7, 1), D("9000.00"))],
    )
    add_invoice(engine, "M2", "M", dt.date(2024, 1, 1), dt.date(2024, 3, 2), "200.00", "USD")


def test_the_rule_weighs_the_whole_customer_in_the_reporting_currency(engine):
    as_of = dt.date(2024, 6, 30)
    _two_currency_customer(engine)
    with engine.begin() as conn:
        conn.execute(
            fx_rates.insert(),
            [  # the latest rate on or before the as-of date counts: 7.0 from June 28
                {
                    "rate_date": dt.date(2024, 6, 1),
                    "currency": "USD",
                    "rate": D("6.5"),
                    "source_file_id": 1,
                },
                {
                    "rate_date": dt.date(2024, 6, 28),
                    "currency": "USD",
                    "rate": D("7.0"),
                    "source_file_id": 1,
                },
                {
                    "rate_date": dt.date(2024, 7, 1),
                    "currency": "USD",
                    "rate": D("99"),
                    "source_file_id": 1,
                },
            ],
        )
    compute_snapshot(engine, as_of, POLICY.aging)
    summary = compute_customer_classes(engine, as_of, POLICY)
    rows = _classes(engine, as_of)
    # USD 200 = CNY 1,400 of CNY 10,400: 13.46 % > 10 %, so both books are raised
    assert rows[("M", "USD")].rule_applied
    assert rows[("M", "CNY")].rule_applied
    assert rows[("M", "CNY")].substandard_share == D("0.13461538")
    assert rows[("M", "USD")].fx_rate == D("7.0")
    assert rows[("M", "USD")].reporting_outstanding == D("1400.00")
    assert rows[("M", "CNY")].reporting_outstanding == D("9000.00")
    assert summary["missing_fx_rates"] == []


def test_without_a_rate_a_currency_is_judged_on_its_own(engine):
    as_of = dt.date(2024, 6, 30)
    _two_currency_customer(engine)
    compute_snapshot(engine, as_of, POLICY.aging)
    summary = compute_customer_classes(engine, as_of, POLICY)
    rows = _classes(engine, as_of)
    assert summary["missing_fx_rates"] == ["USD"]
    assert rows[("M", "USD")].rule_applied  # 100 % of the USD book is substandard
    assert rows[("M", "USD")].reporting_outstanding is None
    assert not rows[("M", "CNY")].rule_applied  # nothing of the CNY book is
    assert rows[("M", "CNY")].substandard_share == 0


def test_a_total_in_the_reporting_currency_leaves_out_what_it_cannot_convert():
    from receivables.fx import Rates

    rates = Rates(dt.date(2024, 6, 30), "CNY", {"USD": D("7.1")})
    assert rates.total({"CNY": D("100.00"), "USD": D("0.05"), "HKD": D("9.00")}) == (
        D("100.36"),  # 0.05 x 7.1 = 0.355, half-up to 0.36
        ["HKD"],
    )
