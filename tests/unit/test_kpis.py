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
import re
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
    credit_scores,
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


# --- a trend of quarters read at once --------------------------------------------------------

TREND = Q2.trend(4)  # 2024Q3, 2024Q4, 2025Q1, 2025Q2
#: Quarters in no order, apart from each other, one before any invoice (2019Q4), one where only
#: long-settled invoices exist (2022Q1), one twice.
SCATTERED = [
    Quarter(2025, 2),
    Quarter(2019, 4),
    Quarter(2024, 3),
    Quarter(2022, 1),
    Quarter(2023, 4),
    Quarter(2024, 3),
]


def spanning() -> dict[str, list[InvoiceFacts]]:
    """A ledger whose invoices and payments cross the trend's quarter boundaries, per currency
    (the comments name the trend's days: openings 2024-06-30, 09-30, 12-31, 2025-03-31)."""
    m = Decimal
    return {
        "CNY": [
            # issued on the first opening; paid on that day, on Q3's last day, the day after
            # it and in 2025Q1: partial payments in four quarters
            InvoiceFacts(
                "S1",
                "SC1",
                D(2024, 6, 30),
                D(2024, 7, 30),
                m("1000.00"),
                (
                    (D(2024, 6, 30), m("100.00")),
                    (D(2024, 9, 30), m("200.00")),
                    (D(2024, 10, 1), m("300.00")),
                    (D(2025, 2, 15), m("400.00")),
                ),
            ),
            # settled on exactly the first opening: nothing in any quarter of the trend
            InvoiceFacts(
                "S2", "SC1", D(2024, 3, 1), D(2024, 3, 31), m("500.00"), ((D(2024, 6, 30), m(500)),)
            ),
            # never paid: loss throughout
            InvoiceFacts("S3", "SC2", D(2023, 1, 10), D(2023, 2, 9), m("800.00")),
            # due 360 and 361 days before 2025-03-31: doubtful and loss there
            InvoiceFacts("S4", "SC2", D(2024, 3, 6), D(2024, 4, 5), m("123.45")),
            InvoiceFacts("S4b", "SC2", D(2024, 3, 5), D(2024, 4, 4), m("67.89")),
            # issued after Q3's close, before Q4's; paid in full on Q4's last day
            InvoiceFacts(
                "S5", "SC3", D(2024, 10, 5), D(2024, 11, 4), m(250), ((D(2024, 12, 31), m(250)),)
            ),
            # due on Q4's opening: not overdue then, overdue at its close
            InvoiceFacts(
                "S6", "SC3", D(2024, 8, 1), D(2024, 9, 30), m(600), ((D(2024, 11, 15), m(100)),)
            ),
            # overpaid in Q4
            InvoiceFacts(
                "S7",
                "SC4",
                D(2024, 7, 15),
                D(2024, 8, 14),
                m(300),
                ((D(2024, 8, 1), m(200)), (D(2024, 12, 20), m(150))),
            ),
            # overdue at the first opening, recovered in Q3 and on 2025Q2's first day
            InvoiceFacts(
                "S8",
                "SC4",
                D(2024, 5, 1),
                D(2024, 5, 31),
                m(700),
                ((D(2024, 8, 10), m(300)), (D(2025, 4, 1), m(400))),
            ),
            # issued on 2025Q1's last day
            InvoiceFacts("S9", "SC5", D(2025, 3, 31), D(2025, 4, 30), m(900)),
        ],
        "USD": [
            # the book's first invoice, in 2024Q3: no USD book before it
            InvoiceFacts(
                "U1",
                "SU1",
                D(2024, 8, 20),
                D(2024, 9, 19),
                m("100.00"),
                ((D(2025, 1, 15), m("40.00")), (D(2025, 6, 30), m("60.00"))),
            ),
            InvoiceFacts("U2", "SU1", D(2025, 4, 2), D(2025, 7, 2), m("50.00")),
        ],
        "HKD": [
            # nothing happens to it in 2024Q4 and 2025Q1: the balance carries
            InvoiceFacts(
                "H1", "SH1", D(2024, 7, 10), D(2024, 8, 9), m(2000), ((D(2025, 5, 1), m(2000)),)
            ),
        ],
        # settled years before the trend (and before the countback's months): the book is there,
        # every figure zero; no exchange rate for it
        "EUR": [
            InvoiceFacts(
                "E1", "SE1", D(2020, 2, 1), D(2020, 3, 1), m(400), ((D(2020, 3, 15), m(400)),)
            ),
        ],
    }


@pytest.fixture
def spanned(engine):
    for currency, invoices in spanning().items():
        load_ledger(engine, invoices, currency=currency)
    m = Decimal
    with engine.begin() as conn:
        file_id = source_file(conn)
        conn.execute(
            fx_rates.insert(),
            [
                {"rate_date": day, "currency": c, "rate": m(rate), "source_file_id": file_id}
                for day, c, rate in [
                    (D(2024, 6, 1), "USD", "7.1"),
                    (D(2024, 12, 31), "USD", "7.3"),
                    (D(2024, 6, 1), "HKD", "0.91"),
                ]
            ],
        )
        # the risk step ran on some quarter-ends only (2025-03-31 not)
        ecl(conn, D(2024, 6, 30), "5.00", invoice="S3")
        ecl(conn, D(2024, 9, 30), "10.00", invoice="S3")
        ecl(conn, D(2024, 12, 31), "12.00", invoice="S3")
        ecl(conn, D(2024, 12, 31), "1.00", currency="USD", invoice="U1")
        ecl(conn, D(2025, 6, 30), "15.00", invoice="S3")
        reminder(conn, 11, D(2024, 9, 20), "S1", customer="SC1")  # S1 paid 10 days later
        reminder(conn, 12, D(2025, 1, 5), "U1", customer="SU1")  # U1 paid 10 days later
        reminder(conn, 13, D(2025, 5, 1), "S3", customer="SC2")  # never paid
        legal_step(conn, "LC-U", "proposed", D(2024, 8, 1), currency="USD")
        legal_step(conn, "LC-U", "approved", D(2024, 8, 5))
        legal_step(conn, "LC-U", "written_off", D(2024, 11, 1), Decimal(30))
        legal_step(conn, "LC-U", "recovered", D(2025, 5, 5), Decimal(10))
        # a book with a legal case and no invoice at all
        legal_step(conn, "LC-J", "proposed", D(2024, 10, 1), currency="JPY")
        legal_step(conn, "LC-J", "written_off", D(2024, 12, 1), Decimal(5_000))
        conn.execute(
            credit_scores.insert(),
            [
                {
                    "as_of_date": day,
                    "customer_id": customer,
                    "model_id": 0,
                    "score": 600.0,
                    "pd": 0.05,
                    "grade": grade,
                    "reasons": "",
                }
                for day, grades in [
                    (D(2024, 9, 30), {"SC1": "B", "SC2": "D", "SU1": "A"}),
                    (D(2024, 12, 31), {"SC1": "A", "SC2": "E", "SU1": "A"}),
                ]
                for customer, grade in grades.items()
            ],
        )
    return engine


def expected_ledger(quarter: Quarter) -> dict[str, dict[str, Decimal]]:
    """The ledger figures of ``quarter`` per book, worked out invoice by invoice from
    :func:`spanning` with the definitions of docs/formulas.md (not the product's SQL): owed on a
    day = amount - payments dated on or before it, counted for invoices issued by then when
    positive; overdue when due before the day; loss when more than 360 days past due."""
    out: dict[str, dict[str, Decimal]] = {}
    for currency, invoices in spanning().items():
        issued = [f for f in invoices if f.issue_date <= quarter.end]
        if not issued:
            continue
        book = out[currency] = dict.fromkeys(kpis.LEDGER_FIGURES, Decimal(0))
        for f in issued:

            def paid_by(day, f=f):
                return sum((a for d, a in f.payments if d <= day), Decimal(0))

            owed_then = f.amount - paid_by(quarter.opening)
            owed_now = f.amount - paid_by(quarter.end)
            overdue_then = (
                f.issue_date <= quarter.opening and f.due_date < quarter.opening and owed_then > 0
            )
            if f.issue_date <= quarter.opening and owed_then > 0:
                book["opening_ar"] += owed_then
            if overdue_then:
                book["opening_overdue"] += owed_then
                book["recovered"] += min(owed_then - owed_now, owed_then)
                if owed_now <= 0:
                    book["cured"] += owed_then
            if owed_now > 0:
                book["closing_ar"] += owed_now
                if f.due_date < quarter.end:
                    book["closing_overdue"] += owed_now
                if (quarter.end - f.due_date).days > 360:
                    book["closing_loss"] += owed_now
            if f.issue_date >= quarter.start:
                book["credit_sales"] += f.amount
    return out


def _as_read(books: dict[str, kpis.BookFigures]) -> dict[str, dict[str, Decimal]]:
    return {
        currency: {name: getattr(b, name) for name in kpis.LEDGER_FIGURES}
        for currency, b in books.items()
        if currency != "JPY"  # the legal case's book: no ledger
    }


@pytest.mark.parametrize("quarters", [TREND, SCATTERED], ids=["trend", "scattered"])
def test_a_trend_is_its_quarters_one_by_one(spanned, quarters):
    trend = kpis.trend_kpis(spanned, quarters, Policy())
    alone = [quarter_kpis(spanned, q, Policy()) for q in quarters]
    assert trend == alone
    assert repr(trend) == repr(alone)  # the same Decimals, places included
    # and the ledger figures are the hand-worked ones, quarter by quarter
    read = kpis.read_books(spanned, quarters, Policy())
    assert [_as_read(books) for books in read] == [expected_ledger(q) for q in quarters]


def test_the_trends_figures_where_the_quarters_meet(spanned):
    q3, q4, q1, q2 = kpis.trend_kpis(spanned, TREND, Policy())
    cny = [k.books["CNY"] for k in (q3, q4, q1, q2)]
    # S1: 100 paid on the opening day itself (before Q3), 200 on Q3's last day, 300 the day
    # after; credit sales of Q3 leave out S1, issued on the opening day
    assert cny[0]["opening_outstanding"] == Decimal("900.00") + 800 + 700 + Decimal("191.34")
    assert cny[0]["credit_sales"] == Decimal("900.00")  # S6 600 + S7 300
    assert cny[1]["credit_sales"] == Decimal("250.00")  # S5, issued after Q3's close
    # S5 (paid in full on Q4's last day) owes nothing at the close; S6 (due on Q4's opening) is
    # overdue at its close (500), not at its opening; S7, overpaid, owes nothing
    # overdue at Q4's opening: S1 700, S3 800, S4 191.34, S7 100, S8 400; recovered in Q4: S1's
    # 300 of the day after the opening, S7's 150 counted up to the 100 it owed then
    overdue_at_q4_opening = Decimal("2191.34")
    assert cny[1]["recovery_rate"] == (
        (Decimal(300 + 100) / overdue_at_q4_opening).quantize(Decimal("0.000001"))
    )
    assert cny[1]["overdue_outstanding"] == Decimal("400.00") + 800 + Decimal("191.34") + 500 + 400
    # S4b's due date is 361 days before 2025-03-31, S4's 360: only S4b joins S3 as loss
    assert cny[2]["bad_debt_ratio"] == (
        (Decimal("867.89") / Decimal(cny[2]["total_outstanding"])).quantize(Decimal("0.000001"))
    )
    # the HKD book carries its balance through the quarters where nothing happens to it
    assert [k.books["HKD"]["total_outstanding"] for k in (q3, q4, q1)] == [Decimal("2000.00")] * 3
    assert q2.books["HKD"]["total_outstanding"] == Decimal("0.00")
    # the EUR book, settled in 2020, is in every quarter with nothing in it, and has no rate
    assert all(k.books["EUR"]["total_outstanding"] == Decimal("0.00") for k in (q3, q4, q1, q2))
    # the JPY book has only a legal case's write-off, in Q4
    assert q4.books["JPY"]["written_off"] == Decimal("5000.00")
    assert [k.missing_fx_rates for k in (q3, q4, q1, q2)] == [
        ["EUR"],
        ["EUR", "JPY"],
        ["EUR"],
        ["EUR"],
    ]
    # the provision: 2025-03-31 was not computed, so 2025Q1 has none and 2025Q2 no change
    assert [k.values["ecl_provision"] for k in (q3, q4, q1, q2)] == [
        Decimal("10.00"),
        Decimal("19.30"),  # CNY 12 + USD 1 x 7.3
        None,
        Decimal("15.00"),
    ]
    assert [k.values["ecl_provision_change"] for k in (q3, q4, q1, q2)] == [
        Decimal("5.00"),
        Decimal("9.30"),
        None,
        None,
    ]
    assert q4.grade_migration == {("B", "A"): 1, ("D", "E"): 1, ("A", "A"): 1}


def test_a_quarter_before_any_invoice_has_no_books(spanned):
    (before,) = kpis.trend_kpis(spanned, [Quarter(2019, 4)], Policy())
    assert before.books == {}
    assert before.values["total_outstanding"] == Decimal("0.00")
    assert kpis.trend_kpis(spanned, [], Policy()) == []


def test_the_worked_example_as_a_trend(worked):
    trend = kpis.trend_kpis(worked, TREND, Policy())
    assert trend == [quarter_kpis(worked, q, Policy()) for q in TREND]
    assert trend[-1].values["dso"] == Decimal("136.50")
    assert trend[-1].values["cei"] == Decimal("0.636364")


def test_a_trend_reads_the_ledger_in_one_statement_and_its_sales_in_another(spanned):
    statements: list[str] = []

    def seen(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement)

    sa.event.listen(spanned, "before_cursor_execute", seen)
    try:
        kpis.trend_kpis(spanned, TREND, Policy())
    finally:
        sa.event.remove(spanned, "before_cursor_execute", seen)
    over_ledger = [s for s in statements if re.search(r"\bFROM (invoices|payments)\b", s)]
    assert len(over_ledger) == 2
    # the provisions of each quarter-end once: 2024-06-30 … 2025-06-30
    assert sum("invoice_risk" in s for s in statements) == 5


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
