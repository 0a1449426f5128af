"""Quarterly KPIs: the worked example of docs/formulas.md §10, run through the product's SQL on
both engines, and the formulas on their own.

The ledger (2025Q2: opening 2025-03-31, 91 days to 2025-06-30, CNY), worked by hand:

====== ========== ========== ======== ====================================== ============
invoice issued     due        amount   payments                               at 2025-06-30
====== ========== ========== ======== ====================================== ============
L1     2024-05-01 2024-06-01   20 000 none                                   20 000, 394 days: loss
P1     2025-01-10 2025-02-09  130 000 10 000 on 04-10                        120 000 overdue
P2     2025-02-10 2025-03-12   50 000 50 000 on 04-15                        paid (cured)
P3     2025-03-05 2025-07-04  300 000 260 000 on 05-04                       40 000 not due
A1     2025-04-10 2025-05-10   90 000 30 000 on 05-10                        60 000 overdue
M1     2025-05-15 2025-07-14  110 000 none                                   110 000 not due
J1     2025-06-10 2025-07-10  100 000 none                                   100 000 not due
====== ========== ========== ======== ====================================== ============

Opening AR (03-31) = 20 + 130 + 50 + 300 = 500 000, of which overdue L1 + P1 + P2 = 200 000;
credit sales = A1 + M1 + J1 = 300 000; closing AR = 450 000, of which not yet due P3 + M1 + J1 =
250 000 and overdue 200 000: the figures of the formulas' worked example.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from fractions import Fraction

import pytest
import sqlalchemy as sa
from hypothesis import given
from hypothesis import strategies as st

from receivables.aging import InvoiceFacts
from receivables.config import Policy
from receivables.dates import is_quarter_start
from receivables.evaluation import kpis
from receivables.evaluation.kpis import dso_countback, quarter_kpis, rounded
from receivables.evaluation.quarters import (
    NotAQuarterEnd,
    Quarter,
    ending_on,
    just_ended,
)
from receivables.warehouse.schema import (
    fx_rates,
    invoice_risk,
    legal_case_events,
    legal_cases,
    reminder_invoices,
    reminders,
)
from tests.helpers import load_ledger, source_file

D = dt.date
Q2 = Quarter(2025, 2)
NOW = dt.datetime(2025, 7, 1, tzinfo=dt.UTC)


def facts() -> list[InvoiceFacts]:
    m = Decimal
    return [
        InvoiceFacts("L1", "C1", D(2024, 5, 1), D(2024, 6, 1), m(20_000)),
        InvoiceFacts(
            "P1", "C1", D(2025, 1, 10), D(2025, 2, 9), m(130_000), ((D(2025, 4, 10), m(10_000)),)
        ),
        InvoiceFacts(
            "P2", "C2", D(2025, 2, 10), D(2025, 3, 12), m(50_000), ((D(2025, 4, 15), m(50_000)),)
        ),
        InvoiceFacts(
            "P3", "C2", D(2025, 3, 5), D(2025, 7, 4), m(300_000), ((D(2025, 5, 4), m(260_000)),)
        ),
        InvoiceFacts(
            "A1", "C3", D(2025, 4, 10), D(2025, 5, 10), m(90_000), ((D(2025, 5, 10), m(30_000)),)
        ),
        InvoiceFacts("M1", "C3", D(2025, 5, 15), D(2025, 7, 14), m(110_000)),
        InvoiceFacts("J1", "C4", D(2025, 6, 10), D(2025, 7, 10), m(100_000)),
    ]


def reminder(
    conn, rid: int, planned: dt.date, invoice: str, status: str = "sent", customer: str = "C1"
) -> None:
    conn.execute(
        reminders.insert().values(
            reminder_id=rid,
            idempotency_key=f"k{rid}",
            planned_on=planned,
            customer_id=customer,
            stage="first_reminder",
            ladder="standard",
            status=status,
            locale="en",
            oldest_invoice_id=invoice,
            days_past_due=10,
            invoices=1,
            strategy_version="test",
            created_at=NOW,
            updated_at=NOW,
        )
    )
    conn.execute(
        reminder_invoices.insert().values(
            reminder_id=rid,
            invoice_id=invoice,
            currency="CNY",
            outstanding=Decimal(1),
            due_date=planned,
            days_past_due=10,
        )
    )


def legal_step(conn, case: str, status: str, day: dt.date, amount=None, currency="CNY"):
    if status == "proposed":
        conn.execute(
            legal_cases.insert().values(
                case_id=case,
                customer_id="C1",
                opened_on=day,
                amount=Decimal(30_000),
                currency=currency,
                status=status,
                updated_on=day,
            )
        )
    conn.execute(
        legal_case_events.insert().values(
            case_id=case,
            status=status,
            occurred_on=day,
            amount=amount,
            source="test",
            recorded_at=NOW,
        )
    )


def ecl(conn, day: dt.date, amount: str, currency: str = "CNY", invoice: str = "P1") -> None:
    conn.execute(
        invoice_risk.insert().values(
            as_of_date=day,
            invoice_id=invoice,
            customer_id="C1",
            currency=currency,
            bucket="91-180",
            outstanding=Decimal(amount) * 10,
            risk_class="substandard",
            loss_rate=Decimal("0.1"),
            ecl=Decimal(amount),
        )
    )


@pytest.fixture
def worked(engine):
    load_ledger(engine, facts())
    with engine.begin() as conn:
        # followed: P1 paid 04-10, 9 days after; A1 paid 05-10, exactly 14 days after
        reminder(conn, 1, D(2025, 4, 1), "P1")
        reminder(conn, 2, D(2025, 4, 26), "A1")
        reminder(conn, 3, D(2025, 5, 20), "L1")  # never paid
        reminder(conn, 4, D(2025, 4, 20), "P2")  # P2 was paid 04-15, before it
        reminder(conn, 5, D(2025, 6, 20), "A1")  # window ends 07-04: not counted yet
        reminder(conn, 6, D(2025, 4, 5), "L1", status="failed")  # never sent
        reminder(conn, 7, D(2025, 3, 25), "P1")  # the previous quarter
        legal_step(conn, "LC-1", "proposed", D(2025, 3, 20))
        legal_step(conn, "LC-1", "approved", D(2025, 4, 2))
        legal_step(conn, "LC-1", "written_off", D(2025, 6, 1), Decimal(7_000))
        legal_step(conn, "LC-2", "proposed", D(2025, 5, 2))
        legal_step(conn, "LC-2", "approved", D(2025, 5, 3))
        legal_step(conn, "LC-2", "recovered", D(2025, 7, 2), Decimal(5_000))  # next quarter
        ecl(conn, D(2025, 3, 31), "10000.00")
        ecl(conn, D(2025, 6, 30), "12345.67")
    return engine


def test_the_worked_example_through_the_warehouse(worked):
    result = quarter_kpis(worked, Q2, Policy())
    v = result.values
    assert v["opening_outstanding"] == Decimal("500000.00")
    assert v["credit_sales"] == Decimal("300000.00")
    assert v["total_outstanding"] == Decimal("450000.00")
    assert v["overdue_outstanding"] == Decimal("200000.00")
    assert v["overdue_ratio"] == Decimal("0.444444")
    assert v["dso"] == Decimal("136.50")
    assert v["best_possible_dso"] == Decimal("75.83")
    assert v["average_days_delinquent"] == Decimal("60.67")  # 136.5 - 75.8333…, rounded once
    assert v["cei"] == Decimal("0.636364")  # 350 000 / 550 000
    # P1 10 000 + P2 50 000 paid in the quarter on 200 000 overdue at its opening
    assert v["recovery_rate"] == Decimal("0.300000")
    assert v["cure_rate"] == Decimal("0.250000")  # P2 (50 000) paid in full
    # June 100 000 (30 d), May 110 000 (31), April 90 000 (30) leave 150 000 of March's 300 000
    assert v["dso_countback"] == Decimal("106.50")  # 91 + 150/300 x 31
    assert v["written_off"] == Decimal("7000.00")
    assert v["bad_debt_ratio"] == Decimal("0.060000")  # (L1 20 000 + 7 000) / 450 000
    assert v["ecl_provision"] == Decimal("12345.67")
    assert v["ecl_provision_change"] == Decimal("2345.67")
    assert v["reminders_sent"] == 5  # 1, 2, 3, 4, 5
    assert v["collection_success_rate"] == Decimal("0.500000")  # 2 of 1, 2, 3, 4
    assert v["legal_cases_opened"] == 2
    assert v["legal_recovered"] == Decimal("0.00")  # LC-2's recovery is next quarter's
    assert result.books["CNY"]["dso"] == Decimal("136.50")
    assert result.missing_fx_rates == []
    assert not result.ecl_missing
    assert [name for book, name, _ in result.rows() if book == kpis.ALL_BOOKS] == [
        m.name for m in kpis.METRICS
    ]


def test_a_second_book_converts_at_the_quarter_end_rate_and_one_without_a_rate_is_named(
    worked,
):
    m = Decimal
    load_ledger(
        worked,
        [
            InvoiceFacts("U1", "U1", D(2025, 1, 5), D(2025, 2, 4), m(1_000)),  # overdue
            InvoiceFacts("U2", "U2", D(2025, 5, 5), D(2025, 8, 4), m(2_000)),  # sold, not due
        ],
        currency="USD",
    )
    load_ledger(
        worked, [InvoiceFacts("E1", "E1", D(2025, 5, 1), D(2025, 6, 1), m(500))], currency="EUR"
    )
    with worked.begin() as conn:
        file_id = source_file(conn)
        conn.execute(
            fx_rates.insert(),
            [
                {
                    "rate_date": D(2025, 3, 31),
                    "currency": "USD",
                    "rate": m(7),
                    "source_file_id": file_id,
                },
                {
                    "rate_date": D(2025, 6, 27),
                    "currency": "USD",
                    "rate": m("7.5"),
                    "source_file_id": file_id,
                },
                {
                    "rate_date": D(2025, 7, 1),
                    "currency": "USD",
                    "rate": m(8),
                    "source_file_id": file_id,
                },
            ],
        )
        ecl(conn, D(2025, 6, 30), "100.00", currency="USD", invoice="U1")
    result = quarter_kpis(worked, Q2, Policy())
    # USD at 7.5 (the latest rate on or before 06-30), opening balances too; EUR left out
    assert result.missing_fx_rates == ["EUR"]
    assert result.values["total_outstanding"] == Decimal("450000.00") + 3_000 * Decimal("7.5")
    assert result.values["opening_outstanding"] == Decimal("500000.00") + 1_000 * Decimal("7.5")
    assert result.values["credit_sales"] == Decimal("300000.00") + 2_000 * Decimal("7.5")
    assert result.values["ecl_provision"] == Decimal("12345.67") + 750
    assert result.books["USD"]["total_outstanding"] == Decimal("3000.00")
    assert result.books["USD"]["overdue_ratio"] == Decimal("0.333333")
    assert result.books["EUR"]["overdue_outstanding"] == Decimal("500.00")
    assert result.books["EUR"]["ecl_provision"] == Decimal("0.00")  # risk ran, nothing for EUR
    # the risk step of 03-31 stored no USD provision: it counts as 0 there
    assert result.values["ecl_provision_change"] == Decimal("13095.67") - Decimal("10000.00")


def test_without_the_risk_step_for_the_quarter_end_the_provision_has_no_value(engine):
    load_ledger(engine, facts())
    result = quarter_kpis(engine, Q2, Policy())
    assert result.ecl_missing
    assert result.values["ecl_provision"] is None
    assert result.values["ecl_provision_change"] is None
    assert result.values["dso"] == Decimal("136.50")  # the ledger figures do not need it
    assert result.values["collection_success_rate"] is None  # no reminder: no ratio


def test_an_empty_warehouse_has_zero_balances_and_no_ratios(engine):
    result = quarter_kpis(engine, Q2, Policy())
    assert result.values["total_outstanding"] == Decimal("0.00")
    assert result.values["overdue_ratio"] is None
    assert result.values["dso"] is None
    assert result.values["cei"] is None
    assert result.books == {}


def test_a_quarter_is_the_same_whatever_was_paid_after_it(worked):
    before = quarter_kpis(worked, Q2, Policy()).values
    load_ledger(
        worked,
        [
            InvoiceFacts(
                "Z1", "Z1", D(2025, 7, 2), D(2025, 8, 1), Decimal(1), ((D(2025, 7, 3), Decimal(1)),)
            )
        ],
    )
    with worked.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO payments (payment_id, invoice_id, paid_date, amount, source_file_id) "
                "SELECT 'late', 'L1', :day, 20000, source_file_id FROM invoices "
                "WHERE invoice_id = 'L1'"
            ),
            {"day": D(2025, 7, 15)},
        )
    assert quarter_kpis(worked, Q2, Policy()).values == before


# --- the formulas on their own ---------------------------------------------------------------


def test_countback_of_the_formulas_example():
    # June 100 000 (30), May 110 000 (31), April 90 000 (30), March 120 000 (31), nothing
    # before: the remainder 150 000 extends March pro rata (31 + 30 000/120 000 x 31)
    months = [(Decimal(100_000), 30), (Decimal(110_000), 31), (Decimal(90_000), 30)]
    months += [(Decimal(120_000), 31), (Decimal(0), 28), (Decimal(0), 31)]
    assert dso_countback(Decimal(450_000), months) == Fraction(12975, 100)
    # with February's 60 000 known, March counts whole and February 30/60 of its 28 days
    months[4] = (Decimal(60_000), 28)
    assert dso_countback(Decimal(450_000), months) == 136
    assert dso_countback(Decimal(0), months) == 0
    assert dso_countback(Decimal(10), []) is None


@given(
    ar=st.decimals(min_value=0, max_value=10**9, places=2),
    sales=st.lists(st.decimals(min_value=0, max_value=10**8, places=2), min_size=1, max_size=36),
)
def test_countback_never_counts_more_days_than_needed(ar, sales):
    months = [(s, 30) for s in sales]
    days = dso_countback(ar, months)
    if ar == 0:
        assert days == 0
    elif not any(sales):
        assert days is None
    else:
        assert days > 0
        if sum(sales) >= ar:  # used up within the months: never beyond them
            assert days <= 30 * len(sales)


def test_rounding_is_half_up_from_the_exact_value():
    assert rounded(Fraction(1, 8), "days") == Decimal("0.13")
    assert rounded(Fraction(-1, 8), "days") == Decimal("-0.13")
    assert rounded(Fraction(2, 3), "ratio") == Decimal("0.666667")
    assert rounded(Fraction(7, 11), "ratio") == Decimal("0.636364")
    assert rounded(Decimal("2.5"), "count") == 2
    assert rounded(None, "money") is None


# --- quarters --------------------------------------------------------------------------------


def test_quarters():
    assert Q2.start == D(2025, 4, 1)
    assert Q2.end == D(2025, 6, 30)
    assert Q2.days == 91
    assert Q2.opening == D(2025, 3, 31)
    assert Q2.label == "2025Q2"
    assert Quarter(2024, 1).days == 91
    assert Quarter(2025, 1).days == 90
    assert Quarter(2025, 1).previous() == Quarter(2024, 4)
    assert [q.label for q in Q2.trend()] == ["2024Q3", "2024Q4", "2025Q1", "2025Q2"]
    assert ending_on(D(2024, 12, 31)) == Quarter(2024, 4)
    with pytest.raises(NotAQuarterEnd, match="ends on 2025-06-30"):
        ending_on(D(2025, 6, 29))
    assert is_quarter_start(D(2025, 7, 1))
    assert not is_quarter_start(D(2025, 8, 1))
    assert just_ended(D(2025, 7, 1)) == Q2
    assert just_ended(D(2025, 1, 1)) == Quarter(2024, 4)


def test_the_kpis_export_reads_back(worked, tmp_path, monkeypatch):
    import csv

    from receivables.exports import ExportError, export

    monkeypatch.delenv("RECEIVABLES_CONFIG", raising=False)
    out = tmp_path / "kpis.csv"
    assert export("kpis", worked, D(2025, 6, 30), out) == len(kpis.METRICS)
    with out.open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["metric", "value", "unit", "currency", "formula"]
    values = {r["metric"]: r["value"] for r in rows}
    assert values["dso"] == "136.50"
    assert values["cei"] == "0.636364"
    assert values["ecl_provision_change"] == "2345.67"
    assert {r["currency"] for r in rows if r["unit"] == "money"} == {"CNY"}
    assert {r["currency"] for r in rows if r["unit"] != "money"} == {""}
    for contract in [
        "total_outstanding",
        "overdue_outstanding",
        "overdue_ratio",
        "recovery_rate",
        "collection_success_rate",
        "dso",
        "dso_countback",
        "best_possible_dso",
        "average_days_delinquent",
        "cei",
        "cure_rate",
        "bad_debt_ratio",
        "ecl_provision",
    ]:
        assert values[contract] != "", contract
    with pytest.raises(ExportError, match="not the last day of a quarter"):
        export("kpis", worked, D(2025, 6, 29), out)
    with pytest.raises(ExportError, match="needs --as-of"):
        export("kpis", worked, None, out)


def test_a_target_is_met_from_the_right_side():
    from receivables.config import KpiTarget

    lower = KpiTarget(value=Decimal("0.10"), better="lower")
    higher = KpiTarget(value=Decimal("0.30"), better="higher")
    assert kpis.target_status(Decimal("0.10"), lower) == "met"
    assert kpis.target_status(Decimal("0.100001"), lower) == "missed"
    assert kpis.target_status(Decimal("0.30"), higher) == "met"
    assert kpis.target_status(Decimal("0.29"), higher) == "missed"
    assert kpis.target_status(None, higher) is None
    assert kpis.target_status(Decimal(1), None) is None


def test_grade_migration_counts_customers_graded_on_both_days(worked):
    from receivables.warehouse.schema import credit_scores

    def scores(day, grades):
        return [
            {
                "as_of_date": day,
                "customer_id": customer,
                "model_id": 0,
                "score": 600.0,
                "pd": 0.05,
                "grade": grade,
                "reasons": "",
            }
            for customer, grade in grades.items()
        ]

    # the opening's scores only: no migration yet
    with worked.begin() as conn:
        conn.execute(credit_scores.insert(), scores(Q2.opening, {"C1": "B", "C2": "C", "C3": "B"}))
    values = quarter_kpis(worked, Q2, Policy()).values
    assert values["grades_improved"] is None
    with worked.begin() as conn:
        conn.execute(
            credit_scores.insert(), scores(Q2.end, {"C1": "D", "C2": "A", "C3": "B", "C4": "E"})
        )
    result = quarter_kpis(worked, Q2, Policy())
    assert result.grade_migration == {("B", "D"): 1, ("C", "A"): 1, ("B", "B"): 1}  # C4: new
    assert result.values["grades_improved"] == 1
    assert result.values["grades_worsened"] == 1
    assert result.values["grades_unchanged"] == 1
