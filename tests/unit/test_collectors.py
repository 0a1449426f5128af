"""Collector performance and proposed incentives: a ledger worked by hand, run through the
product's SQL on both engines, and the formulas on their own.

2025Q2: opening 2025-03-31, last day 2025-06-30, reporting currency CNY. Rates: USD 7.00 on
03-31, 7.15 on 06-27, 7.30 on 07-01, so 7.15 is in force on 06-30; EUR has no rate at all.

Collectors K1 Alice, K2 Bob, K3 Carol, K4 Dan (no customers). Customers: A1 (K1), A2 (K1, its
invoices in USD), B1 (K2), B2 (K2, its invoice in EUR), C1 (K3), U1 (no collector) and X1
(collector_id ``GHOST``, not a collector): U1 and X1 are the unassigned group.

====== ==== === ========== ========== ========= ============================ ======== =========
inv.   cust cur issued     due        amount    payments                     overdue  recovered
                                                                             03-31
====== ==== === ========== ========== ========= ============================ ======== =========
IA1    A1   CNY 2025-01-05 2025-02-04 100000.00 20000 on 03-15, 50000 04-20  80000.00 50000.00
IA2    A1   CNY 2025-02-01 2025-03-03  30000.00 35000 on 05-05 (overpaid)    30000.00 30000.00
IA3    A1   CNY 2025-03-20 2025-04-19  40000.00 40000 on 04-25               not due  -
IU1    A2   USD 2025-01-10 2025-02-09  10000.01 4000.03 on 06-10, 1000 07-02 10000.01 4000.03
IB1    B1   CNY 2024-11-01 2024-12-01  60000.00 6000 on 05-15                60000.00 6000.00
IB2    B1   CNY 2025-02-15 2025-03-17  20000.00 none                         20000.00 0
IE1    B2   EUR 2025-01-01 2025-01-31   5000.00 5000 on 04-30                no rate: left out
IC1    C1   CNY 2025-03-10 2025-04-09  15000.00 15000 on 04-09               not due  -
IU     U1   CNY 2025-01-20 2025-02-19   9000.00 9000 on 04-03                9000.00  9000.00
IX     X1   CNY 2025-02-01 2025-03-01   1000.00 none                         1000.00  0
====== ==== === ========== ========== ========= ============================ ======== =========

IA2's 35 000 counts only up to the 30 000 it owed at the opening; IU1's payment of 07-02 is the
next quarter's. In CNY at 7.15: IU1 owed 10 000.01 x 7.15 = 71 500.0715 -> 71 500.07, and
4 000.03 x 7.15 = 28 600.2145 -> 28 600.21 was recovered.

Reminders (status sent unless said; a 14-day window, so eligible when planned by 06-16):
R1 A1 04-10 IA1 (paid 04-20: followed), R2 A2 06-01 IU1 (paid 06-10: followed), R3 A1 06-20
IA1 (window open at 06-30: not eligible), R4 B1 04-15 IB2 (never paid), R5 B1 05-01 IB1 (paid
05-15, the 14th day: followed), R6 B1 04-30 IB1 (05-15 is the 15th day: not followed), R7 B1
05-02 failed (not sent), R8 X1 04-05 IX (never paid), R9 U1 03-28 (the previous quarter).

Promises to pay (pay_by in the quarter unless said): P1 A1 04-15..04-30 50 000 CNY (A1 paid
50 000 + 40 000 in CNY then: kept), P2 A1 04-15..04-30 1 000 USD (no USD payment of A1:
broken), P3 A2 06-01..06-10 4 000.03 USD (exactly that on 06-10, the last day: kept), P4 B1
05-01..05-10 10 000 CNY (nothing then: broken), P5 B1 05-10..05-20 without an amount (6 000 on
05-15: kept), P6 B2 04-25..05-05 5 000.01 EUR (5 000.00 paid: broken), P7 B1 06-20..07-05 (due
next quarter).

Legal cases: LC-A of A1 approved 04-02 (counted), LC-B of B1 approved 03-10 and filed 04-10
(the previous quarter's), LC-C of U1 approved 05-05 (counted), LC-D of A1 rejected 06-05.

=========== ===== ========== ========= ======== ========== ======== ======== ===== ==== ========
collector   cust. overdue    recovered recovery reminders  success  promises kept  legal proposal
            omers at opening            rate     sent/el./f rate     due/kept rate        (0.30,
                                                                                          1 %)
=========== ===== ========== ========= ======== ========== ======== ======== ===== ==== ========
#1 K1       2     181500.07  108600.21 0.598348 3 / 2 / 2  1.000000 3 / 2    .667  1    541.50
#2 K2       2      80000.00    6000.00 0.075000 3 / 3 / 1  0.333333 3 / 1    .333  0      0.00
#3 K3       1          0.00       0.00 none     0          none     0        none  0      0.00
#4 K4       0          0.00       0.00 none     0          none     0        none  0      0.00
unassigned  2      10000.00    9000.00 0.900000 1 / 1 / 0  0.000000 0        none  1    none
=========== ===== ========== ========= ======== ========== ======== ======== ===== ==== ========

K1: 110 000.00 + 71 500.07 overdue, 80 000.00 + 28 600.21 recovered; 108 600.21 / 181 500.07 =
0.5983480… -> 0.598348. Proposal: 108 600.21 - 0.30 x 181 500.07 = 54 150.189, x 0.01 =
541.50189 -> 541.50 (under the 20 000 cap). K2 recovered 6 000, less than 0.30 x 80 000: 0.00;
its EUR is left out and named. K3 and K4 had nothing overdue: no rate, ranked after K2, K3
before K4 by id. The unassigned group's 0.900000 would top the ranking, but it is never ranked
nor proposed an incentive. With a 5 % rate and a 2 000 cap, K1's 2 707.50945 -> 2 707.51 is
capped to 2 000.00.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
import sqlalchemy as sa
from hypothesis import given
from hypothesis import strategies as st

from receivables.config import EvaluationPolicy, IncentivePolicy, Policy
from receivables.evaluation import kpis
from receivables.evaluation.collectors import (
    CollectorResult,
    collector_performance,
    incentive_proposal,
    ranked,
)
from receivables.evaluation.kpis import quarter_kpis, ratio, rounded
from receivables.evaluation.quarters import Quarter
from receivables.warehouse.schema import (
    collectors,
    customers,
    fx_rates,
    invoices,
    legal_case_events,
    legal_cases,
    payments,
    promises_to_pay,
)
from tests.helpers import source_file
from tests.unit import test_kpis as kpi_tests

D = dt.date
m = Decimal
Q2 = Quarter(2025, 2)
NOW = dt.datetime(2025, 7, 1, tzinfo=dt.UTC)

COLLECTORS = [("K1", "Alice", "East"), ("K2", "Bob", "East"), ("K3", "Carol", "West")]
COLLECTORS += [("K4", "Dan", "West")]
#: customer, collector_id, currency
CUSTOMERS = [
    ("A1", "K1", "CNY"),
    ("A2", "K1", "USD"),
    ("B1", "K2", "CNY"),
    ("B2", "K2", "EUR"),
    ("C1", "K3", "CNY"),
    ("U1", None, "CNY"),
    ("X1", "GHOST", "CNY"),
]
#: invoice, customer, currency, issued, due, amount, payments
INVOICES = [
    (
        "IA1",
        "A1",
        "CNY",
        D(2025, 1, 5),
        D(2025, 2, 4),
        "100000.00",
        [(D(2025, 3, 15), "20000"), (D(2025, 4, 20), "50000")],
    ),
    ("IA2", "A1", "CNY", D(2025, 2, 1), D(2025, 3, 3), "30000.00", [(D(2025, 5, 5), "35000")]),
    ("IA3", "A1", "CNY", D(2025, 3, 20), D(2025, 4, 19), "40000.00", [(D(2025, 4, 25), "40000")]),
    (
        "IU1",
        "A2",
        "USD",
        D(2025, 1, 10),
        D(2025, 2, 9),
        "10000.01",
        [(D(2025, 6, 10), "4000.03"), (D(2025, 7, 2), "1000")],
    ),
    ("IB1", "B1", "CNY", D(2024, 11, 1), D(2024, 12, 1), "60000.00", [(D(2025, 5, 15), "6000")]),
    ("IB2", "B1", "CNY", D(2025, 2, 15), D(2025, 3, 17), "20000.00", []),
    ("IE1", "B2", "EUR", D(2025, 1, 1), D(2025, 1, 31), "5000.00", [(D(2025, 4, 30), "5000")]),
    ("IC1", "C1", "CNY", D(2025, 3, 10), D(2025, 4, 9), "15000.00", [(D(2025, 4, 9), "15000")]),
    ("IU", "U1", "CNY", D(2025, 1, 20), D(2025, 2, 19), "9000.00", [(D(2025, 4, 3), "9000")]),
    ("IX", "X1", "CNY", D(2025, 2, 1), D(2025, 3, 1), "1000.00", []),
]


def insert_ledger(engine) -> None:
    """Collectors, customers, invoices, payments and USD rates of the worked example."""
    with engine.begin() as conn:
        file_id = source_file(conn)
        conn.execute(
            collectors.insert(),
            [
                {"collector_id": k, "name": name, "team": team, "source_file_id": file_id}
                for k, name, team in COLLECTORS
            ],
        )
        conn.execute(
            customers.insert(),
            [
                {
                    "customer_id": c,
                    "name": c,
                    "locale": "en",
                    "timezone": "Asia/Shanghai",
                    "currency": currency,
                    "collector_id": collector,
                    "do_not_contact": False,
                    "source_file_id": file_id,
                }
                for c, collector, currency in CUSTOMERS
            ],
        )
        conn.execute(
            invoices.insert(),
            [
                {
                    "invoice_id": invoice,
                    "customer_id": customer,
                    "issue_date": issued,
                    "due_date": due,
                    "amount": m(amount),
                    "currency": currency,
                    "disputed": False,
                    "source_file_id": file_id,
                }
                for invoice, customer, currency, issued, due, amount, _ in INVOICES
            ],
        )
        conn.execute(
            payments.insert(),
            [
                {
                    "payment_id": f"{invoice}-P{n}",
                    "invoice_id": invoice,
                    "paid_date": day,
                    "amount": m(amount),
                    "source_file_id": file_id,
                }
                for invoice, *_, paid in INVOICES
                for n, (day, amount) in enumerate(paid)
            ],
        )
        conn.execute(
            fx_rates.insert(),
            [
                {"rate_date": day, "currency": "USD", "rate": m(rate), "source_file_id": file_id}
                for day, rate in [
                    (D(2025, 3, 31), "7"),
                    (D(2025, 6, 27), "7.15"),
                    (D(2025, 7, 1), "7.3"),
                ]
            ],
        )


def reminder(conn, rid: int, customer: str, planned: dt.date, invoice: str, status="sent"):
    kpi_tests.reminder(conn, rid, planned, invoice, status, customer=customer)


def promise(conn, customer, promised_on, pay_by, amount=None, currency=None):
    conn.execute(
        promises_to_pay.insert().values(
            customer_id=customer,
            promised_on=promised_on,
            pay_by=pay_by,
            amount=None if amount is None else m(amount),
            currency=currency,
            recorded_at=NOW,
        )
    )


def legal(conn, case: str, customer: str, steps: list[tuple[str, dt.date]]):
    conn.execute(
        legal_cases.insert().values(
            case_id=case,
            customer_id=customer,
            opened_on=steps[0][1],
            amount=m(1000),
            currency="CNY",
            status=steps[-1][0],
            updated_on=steps[-1][1],
        )
    )
    conn.execute(
        legal_case_events.insert(),
        [
            {
                "case_id": case,
                "status": status,
                "occurred_on": day,
                "source": "test",
                "recorded_at": NOW,
            }
            for status, day in steps
        ],
    )


@pytest.fixture
def worked(engine):
    insert_ledger(engine)
    with engine.begin() as conn:
        reminder(conn, 1, "A1", D(2025, 4, 10), "IA1")
        reminder(conn, 2, "A2", D(2025, 6, 1), "IU1")
        reminder(conn, 3, "A1", D(2025, 6, 20), "IA1")
        reminder(conn, 4, "B1", D(2025, 4, 15), "IB2")
        reminder(conn, 5, "B1", D(2025, 5, 1), "IB1")
        reminder(conn, 6, "B1", D(2025, 4, 30), "IB1")
        reminder(conn, 7, "B1", D(2025, 5, 2), "IB1", status="failed")
        reminder(conn, 8, "X1", D(2025, 4, 5), "IX")
        reminder(conn, 9, "U1", D(2025, 3, 28), "IU")
        promise(conn, "A1", D(2025, 4, 15), D(2025, 4, 30), "50000", "CNY")
        promise(conn, "A1", D(2025, 4, 15), D(2025, 4, 30), "1000", "USD")
        promise(conn, "A2", D(2025, 6, 1), D(2025, 6, 10), "4000.03", "USD")
        promise(conn, "B1", D(2025, 5, 1), D(2025, 5, 10), "10000", "CNY")
        promise(conn, "B1", D(2025, 5, 10), D(2025, 5, 20))
        promise(conn, "B2", D(2025, 4, 25), D(2025, 5, 5), "5000.01", "EUR")
        promise(conn, "B1", D(2025, 6, 20), D(2025, 7, 5), "1", "CNY")
        legal(conn, "LC-A", "A1", [("proposed", D(2025, 3, 20)), ("approved", D(2025, 4, 2))])
        legal(
            conn,
            "LC-B",
            "B1",
            [("proposed", D(2025, 3, 1)), ("approved", D(2025, 3, 10)), ("filed", D(2025, 4, 10))],
        )
        legal(conn, "LC-C", "U1", [("proposed", D(2025, 5, 1)), ("approved", D(2025, 5, 5))])
        legal(conn, "LC-D", "A1", [("proposed", D(2025, 6, 1)), ("rejected", D(2025, 6, 5))])
    return engine


def figures(result: CollectorResult) -> tuple:
    return (
        result.rank,
        result.customers,
        result.overdue_at_opening,
        result.recovered,
        result.recovery_rate,
        (result.reminders_sent, result.success_eligible, result.success_followed),
        result.success_rate,
        (result.promises_due, result.promises_kept),
        result.promise_kept_rate,
        result.legal_cases_opened,
        result.incentive_proposal,
        result.missing_fx_rates,
    )


def test_the_worked_example_through_the_warehouse(worked):
    report = collector_performance(worked, Q2, Policy())
    assert report.reporting_currency == "CNY"
    assert report.missing_fx_rates == ["EUR"]
    assert [r.collector_id for r in report.results] == ["K1", "K2", "K3", "K4", None]
    assert [r.collector_id for r in report.ranked] == ["K1", "K2", "K3", "K4"]
    none = None
    assert {r.collector_id: figures(r) for r in report.results} == {
        "K1": (
            1,
            2,
            m("181500.07"),
            m("108600.21"),
            m("0.598348"),
            (3, 2, 2),
            m("1.000000"),
            (3, 2),
            m("0.666667"),
            1,
            m("541.50"),
            (),
        ),
        "K2": (
            2,
            2,
            m("80000.00"),
            m("6000.00"),
            m("0.075000"),
            (3, 3, 1),
            m("0.333333"),
            (3, 1),
            m("0.333333"),
            0,
            m("0.00"),
            ("EUR",),
        ),
        "K3": (3, 1, m("0.00"), m("0.00"), none, (0, 0, 0), none, (0, 0), none, 0, m("0.00"), ()),
        "K4": (4, 0, m("0.00"), m("0.00"), none, (0, 0, 0), none, (0, 0), none, 0, m("0.00"), ()),
        None: (
            none,
            2,
            m("10000.00"),
            m("9000.00"),
            m("0.900000"),
            (1, 1, 0),
            m("0.000000"),
            (0, 0),
            none,
            1,
            none,
            (),
        ),
    }
    k1 = report.of("K1")
    assert (k1.name, k1.team) == ("Alice", "East")
    assert report.unassigned is not None
    assert report.unassigned.unassigned
    assert report.unassigned.name is None
    assert report.total_incentive_proposal == m("541.50")
    with pytest.raises(KeyError):
        report.of("GHOST")


def test_an_overpayment_never_counts_beyond_what_was_owed(worked):
    k1 = collector_performance(worked, Q2, Policy()).of("K1")
    # IA2 owed 30 000 and was paid 35 000: 30 000 of it counts (not 113 600.21)
    assert k1.recovered == m("108600.21")
    assert k1.recovered <= k1.overdue_at_opening


def test_a_cap_that_binds(worked):
    def k1_with(**incentives) -> Decimal:
        policy = Policy(evaluation=EvaluationPolicy(incentives=IncentivePolicy(**incentives)))
        report = collector_performance(worked, Q2, policy)
        assert report.incentive_policy == policy.evaluation.incentives
        return report.of("K1").incentive_proposal

    assert k1_with(rate=m("0.05"), cap=m("2000")) == m("2000.00")  # 2 707.51 capped
    assert k1_with(rate=m("0.05"), cap=None) == m("2707.51")  # 2 707.50945, half-up
    assert k1_with(target_recovery_rate=m("0.60")) == m("0.00")  # 0.598348 misses 0.60


def test_the_collectors_add_up_to_the_quarters_kpis(worked):
    report = collector_performance(worked, Q2, Policy())
    values = quarter_kpis(worked, Q2, Policy()).values
    recovered = sum(r.recovered for r in report.results)
    overdue = sum(r.overdue_at_opening for r in report.results)
    # every currency with a rate: the portfolio's recovery rate (USD is all K1's, so the
    # conversions round the same way)
    assert values["recovery_rate"] == rounded(ratio(recovered, overdue), "ratio")
    groups = kpis.reminder_success(worked, Q2, by_collector=True)
    assert groups == {"K1": (3, 2, 2), "K2": (3, 3, 1), None: (1, 1, 0)}
    assert kpis.reminder_success(worked, Q2) == (7, 6, 3)
    assert values["collection_success_rate"] == m("0.500000")  # 3 of 6
    assert kpis.legal_opened(worked, Q2) == 2
    assert kpis.legal_opened(worked, Q2, by_collector=True) == {"K1": 1, None: 1}


def test_a_quarter_is_the_same_whatever_happened_after_it(worked):
    before = collector_performance(worked, Q2, Policy())
    with worked.begin() as conn:
        file_id = source_file(conn)
        conn.execute(
            payments.insert().values(
                payment_id="late",
                invoice_id="IB2",
                paid_date=D(2025, 7, 1),
                amount=m(20_000),
                source_file_id=file_id,
            )
        )
        reminder(conn, 20, "B1", D(2025, 7, 1), "IB2")
        promise(conn, "B1", D(2025, 7, 1), D(2025, 7, 10), "5", "CNY")
        legal(conn, "LC-E", "B1", [("proposed", D(2025, 7, 1)), ("approved", D(2025, 7, 2))])
    assert collector_performance(worked, Q2, Policy()) == before


def test_an_empty_warehouse_has_no_collectors(engine):
    report = collector_performance(engine, Q2, Policy())
    assert report.results == []
    assert report.missing_fx_rates == []
    assert report.unassigned is None
    assert report.total_incentive_proposal == 0


def test_without_unassigned_customers_there_is_no_unassigned_group(engine):
    insert_ledger(engine)
    with engine.begin() as conn:
        conn.execute(sa.delete(invoices).where(invoices.c.customer_id.in_(["U1", "X1"])))
        conn.execute(sa.delete(customers).where(customers.c.customer_id.in_(["U1", "X1"])))
    report = collector_performance(engine, Q2, Policy())
    assert report.unassigned is None
    assert [r.rank for r in report.results] == [1, 2, 3, 4]


# --- the formulas on their own ---------------------------------------------------------------


def test_the_incentive_formula():
    policy = IncentivePolicy()  # 0.30, 1 %, cap 20 000
    assert incentive_proposal(m("108600.21"), m("181500.07"), policy) == m("541.50")
    assert incentive_proposal(m("6000.00"), m("80000.00"), policy) == m("0.00")
    assert incentive_proposal(m("0.00"), m("0.00"), policy) == m("0.00")
    # exactly half a cent rounds up: 1 000.50 x 1 % = 10.005
    half = IncentivePolicy(target_recovery_rate=m(0), rate=m("0.01"), cap=None)
    assert incentive_proposal(m("1000.50"), m("1000.50"), half) == m("10.01")
    capped = IncentivePolicy(target_recovery_rate=m(0), rate=m(1), cap=m("99.99"))
    assert incentive_proposal(m("500.00"), m("500.00"), capped) == m("99.99")
    assert incentive_proposal(m("5"), m("5"), capped.model_copy(update={"cap": m(0)})) == 0


def result(collector_id, rate, recovered, overdue="100.00") -> CollectorResult:
    return CollectorResult(
        collector_id=collector_id,
        recovery_rate=None if rate is None else m(rate),
        recovered=m(recovered),
        overdue_at_opening=m(overdue) if rate is not None else m(0),
    )


def test_the_ranking():
    out = ranked(
        [
            result(None, "0.99", "99"),  # the unassigned: last, never ranked
            result("Z", None, "0"),
            result("B", "0.5", "50"),
            result("A", "0.5", "50"),  # same rate and recovered: by id
            result("C", "0.5", "80", "160"),  # same rate, more recovered: first of them
            result("D", "0.7", "7", "10"),
            result("Y", "0", "0"),  # a rate of 0 still ranks before no rate
        ]
    )
    assert [(r.collector_id, r.rank) for r in out] == [
        ("D", 1),
        ("C", 2),
        ("A", 3),
        ("B", 4),
        ("Y", 5),
        ("Z", 6),
        (None, None),
    ]


money = st.decimals(min_value=0, max_value=10**12, places=2)
shares = st.decimals(min_value=0, max_value=1, places=6)


@given(
    owed=money,
    share=shares,
    target=shares,
    rate=shares,
    cap=st.none() | st.decimals(min_value=0, max_value=10**6, places=2),
)
def test_an_incentive_is_never_negative_never_above_its_cap_and_grows_with_recovery(
    owed, share, target, rate, cap
):
    policy = IncentivePolicy(target_recovery_rate=target, rate=rate, cap=cap)
    recovered = (owed * share).quantize(m("0.01"))  # never more than was owed
    amount = incentive_proposal(recovered, owed, policy)
    assert amount >= 0
    assert amount == amount.quantize(m("0.01"))
    if cap is not None:
        assert amount <= cap
    assert amount <= recovered * rate + m("0.005")  # never more than the rate of all recovered
    assert incentive_proposal(owed, owed, policy) >= amount  # recovering more never pays less
