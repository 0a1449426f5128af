"""Roll rates and IFRS 9 provisions (docs/formulas.md), checked on paper-sized examples."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from fractions import Fraction

import sqlalchemy as sa

from receivables.aging import InvoiceFacts, compute_snapshot
from receivables.config import Policy, ProvisionPolicy
from receivables.risk.classification import compute_customer_classes
from receivables.risk.provisions import (
    apply_matrices,
    build_matrix,
    chain_loss_rates,
    compute_provisions,
    cure_rates,
    latest_month_end,
    month_end,
    months_back,
    roll_months,
    update_roll_rates,
)
from receivables.warehouse.schema import invoice_risk, provision_rates, roll_rates
from tests.helpers import load_ledger

POLICY = Policy()
D = Decimal


EXAMPLE_ROLLS = ["0.10", "0.30", "0.50", "0.60", "0.70", "0.80"]
EXAMPLE_LOSS = ["0.00504", "0.0504", "0.168", "0.336", "0.56", "0.80", "1"]


def test_loss_rates_of_the_worked_example_are_exact():
    rates = chain_loss_rates([D(r) for r in EXAMPLE_ROLLS])
    assert rates == [D(x) for x in EXAMPLE_LOSS]
    assert all(r == r.quantize(D("0.00000001")) for r in rates)  # stored with 8 places


def test_forward_looking_factor_is_applied_and_capped():
    rates = chain_loss_rates([D("0.5"), D("0.9")], factor=D("1.5"))
    assert rates == [D("0.675"), D("1"), D("1")]


def test_the_worked_example_through_the_product_sql(engine):
    """The provision example of docs/formulas.md, computed by the warehouse: twelve months of
    the example's average rolls give its loss rates; balances of 1 000 000 / 200 000 / 80 000 /
    50 000 / 40 000 / 20 000 / 10 000 in the seven buckets give an ECL of 93 760. A balance of
    62.50 at 0.504 % is 0.315: half-up to the cent, 0.32 on both engines."""
    as_of = dt.date(2024, 6, 30)
    days = [0, 15, 45, 75, 120, 200, 400]  # one age in each bucket
    balances = ["1000000.00", "200000.00", "80000.00", "50000.00", "40000.00", "20000.00"]
    ledger = [
        InvoiceFacts(
            f"B{i}",
            f"c{i}",  # one customer per bucket: the customer rule raises classes, not buckets
            as_of - dt.timedelta(days=days[i] + 30),
            as_of - dt.timedelta(days=days[i]),
            D(amount),
        )
        for i, amount in enumerate([*balances, "10000.00"])
    ]
    ledger.append(InvoiceFacts("TIE", "c0", as_of, as_of + dt.timedelta(days=30), D("62.50")))
    load_ledger(engine, ledger)
    compute_snapshot(engine, as_of, POLICY.aging)
    compute_customer_classes(engine, as_of, POLICY)
    buckets = [b.name for b in POLICY.aging.buckets]
    observed = {b: [Fraction(roll)] * 12 for b, roll in zip(buckets, EXAMPLE_ROLLS, strict=False)}
    matrix = build_matrix("CNY", observed, POLICY.aging, POLICY.provisions)
    assert [matrix.loss_rates[b] for b in buckets] == [D(x) for x in EXAMPLE_LOSS]
    apply_matrices(engine, as_of, [matrix], POLICY.aging)
    with engine.connect() as conn:
        risk = {
            r.invoice_id: r
            for r in conn.execute(sa.select(invoice_risk).where(invoice_risk.c.as_of_date == as_of))
        }
        stored = {
            r.bucket: r.loss_rate
            for r in conn.execute(
                sa.select(provision_rates).where(provision_rates.c.as_of_date == as_of)
            )
        }
    assert stored == {b: D(x) for b, x in zip(buckets, EXAMPLE_LOSS, strict=True)}
    ecl = [risk[f"B{i}"].ecl for i in range(7)]
    assert ecl == [
        D(x)
        for x in ("5040.00", "10080.00", "13440.00", "16800.00", "22400.00", "16000.00", "10000.00")
    ]
    assert sum(ecl) == D("93760.00")
    assert risk["TIE"].ecl == D("0.32")
    assert risk["TIE"].loss_rate == D("0.00504")


def test_provision_of_the_largest_invoice_is_exact(engine):
    # 9,999,999,999,999.99 at 0.504 %: 50,399,999,999.99995 -> 50,400,000,000.00 (half-up);
    # the SQLite product of cents and rate units would overflow 64 bits if not split
    as_of = dt.date(2024, 6, 30)
    load_ledger(
        engine,
        [InvoiceFacts("BIG", "c", as_of, as_of + dt.timedelta(days=30), D("9999999999999.99"))],
    )
    compute_snapshot(engine, as_of, POLICY.aging)
    compute_customer_classes(engine, as_of, POLICY)
    buckets = [b.name for b in POLICY.aging.buckets]
    observed = {b: [Fraction(roll)] * 12 for b, roll in zip(buckets, EXAMPLE_ROLLS, strict=False)}
    apply_matrices(
        engine,
        as_of,
        [build_matrix("CNY", observed, POLICY.aging, POLICY.provisions)],
        POLICY.aging,
    )
    with engine.connect() as conn:
        ecl = conn.execute(sa.select(invoice_risk.c.ecl)).scalar_one()
    assert ecl == D("50400000000.00")


def test_month_arithmetic():
    assert month_end(dt.date(2024, 2, 10)) == dt.date(2024, 2, 29)
    assert latest_month_end(dt.date(2024, 3, 31)) == dt.date(2024, 3, 31)
    assert latest_month_end(dt.date(2024, 3, 30)) == dt.date(2024, 2, 29)
    assert months_back(dt.date(2024, 3, 31), 1) == dt.date(2024, 2, 29)
    assert months_back(dt.date(2024, 1, 31), 13) == dt.date(2022, 12, 31)
    assert months_back(dt.date(2024, 1, 31), -6) == dt.date(2024, 7, 31)


def test_each_bucket_rolls_over_its_own_width():
    assert roll_months(POLICY.aging.buckets) == {
        "current": 1,
        "1-30": 1,
        "31-60": 1,
        "61-90": 1,
        "91-180": 3,
        "181-360": 6,
    }


def test_fallback_per_bucket_when_history_is_short():
    policy = ProvisionPolicy(min_history_months=3)
    observed = {  # plenty of history for the young buckets, little for 181-360
        "current": [Fraction(1, 10)] * 12,
        "1-30": [Fraction(3, 10)] * 12,
        "31-60": [Fraction(5, 10)] * 12,
        "61-90": [Fraction(6, 10)] * 12,
        "91-180": [Fraction(7, 10)] * 12,
        "181-360": [Fraction(8, 10)] * 2,
    }
    matrix = build_matrix("CNY", observed, POLICY.aging, policy)
    # 181-360 lacks history, and so does every chain that passes through it
    assert matrix.methods == {b: "fallback" for b in matrix.buckets[:-1]} | {"361+": "loss"}
    assert matrix.loss_rates["current"] == policy.fallback_rates["current"]
    observed["181-360"] = [Fraction(8, 10)] * 3
    matrix = build_matrix("CNY", observed, POLICY.aging, policy)
    assert matrix.methods["current"] == "roll_rates"
    assert matrix.loss_rates["current"] == D("0.00504")
    assert matrix.loss_rates["181-360"] == D("0.8")


ME = [dt.date(2024, 1, 31), dt.date(2024, 2, 29)]


def test_roll_matrix_by_amount_and_count(engine):
    # at 2024-01-31: A not yet due (current); B 16, C 21 and D 30 days past due (1-30).
    # at 2024-02-29: A 20 days (1-30); B paid on Feb 10; C 50 and D 59 days (31-60), D with
    # 100 paid on Feb 1: the matrix counts the outstanding at the earlier month-end (400).
    ledger = [
        InvoiceFacts("A", "c1", dt.date(2024, 1, 10), dt.date(2024, 2, 9), D("100.00")),
        InvoiceFacts(
            "B",
            "c1",
            dt.date(2023, 12, 1),
            dt.date(2024, 1, 15),
            D("200.00"),
            ((dt.date(2024, 2, 10), D("200.00")),),
        ),
        InvoiceFacts("C", "c2", dt.date(2023, 12, 1), dt.date(2024, 1, 10), D("300.00")),
        InvoiceFacts(
            "D",
            "c2",
            dt.date(2023, 11, 1),
            dt.date(2024, 1, 1),
            D("400.00"),
            ((dt.date(2024, 2, 1), D("100.00")),),
        ),
    ]
    load_ledger(engine, ledger)
    for day in ME:
        compute_snapshot(engine, day, POLICY.aging)
    update_roll_rates(engine, ME)
    with engine.connect() as conn:
        matrix = {
            (r.from_bucket, r.to_bucket): (r.amount, r.invoices)
            for r in conn.execute(sa.select(roll_rates).where(roll_rates.c.month_end == ME[1]))
        }
    assert matrix == {
        ("current", "1-30"): (D("100.00"), 1),
        ("1-30", "paid"): (D("200.00"), 1),
        ("1-30", "31-60"): (D("700.00"), 2),
    }
    # roll rate 1-30 -> 31-60 by amount 7/9, by count 2/3; cure rate of 1-30: 2/9
    rolled, paid = matrix[("1-30", "31-60")][0], matrix[("1-30", "paid")][0]
    assert rolled / (rolled + paid) == D(7) / D(9)
    assert cure_rates(engine, ME[1]) == {"CNY": D("0.22222222")}  # 2/9 to 8 places
    update_roll_rates(engine, ME)  # a re-run replaces, never adds
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(roll_rates)).scalar() == 3


def test_provisions_use_fallback_rates_without_history(engine):
    as_of = dt.date(2024, 3, 15)
    ledger = [
        InvoiceFacts("I1", "c1", dt.date(2024, 3, 1), dt.date(2024, 3, 31), D("1000.00")),
        InvoiceFacts("I2", "c1", dt.date(2024, 1, 1), dt.date(2024, 2, 1), D("333.33")),
        InvoiceFacts("I3", "c2", dt.date(2022, 1, 1), dt.date(2022, 2, 1), D("50.00")),
    ]
    load_ledger(engine, ledger)
    compute_snapshot(engine, as_of, POLICY.aging)
    compute_customer_classes(engine, as_of, POLICY)
    summary = compute_provisions(engine, as_of, POLICY.aging, POLICY.provisions)
    with engine.connect() as conn:
        methods = set(
            conn.execute(
                sa.select(provision_rates.c.method).where(provision_rates.c.as_of_date == as_of)
            ).scalars()
        )
        risk = {
            r.invoice_id: r
            for r in conn.execute(sa.select(invoice_risk).where(invoice_risk.c.as_of_date == as_of))
        }
    assert methods == {"fallback", "loss"}
    # I1 current 0.5 %; I2 43 days: 31-60 2.7 % of 333.33 = 9.00; I3 361+: all of it
    assert risk["I1"].ecl == D("5.00")
    assert risk["I2"].ecl == D("9.00")
    assert risk["I3"].ecl == D("50.00")
    # c2 is wholly loss: the customer rule raises nothing that is not already worse
    assert risk["I3"].risk_class == "loss"
    assert summary["by_currency"]["CNY"] == {"ecl": "64.00", "outstanding": "1383.33"}
