"""Application scores: every customer on the book is scored, payment history or not."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import numpy as np
import pytest
import sqlalchemy as sa

from receivables.aging import InvoiceFacts
from receivables.config import ScorePolicy
from receivables.risk.application import MIN_NEW_CUSTOMERS, application_scores
from receivables.risk.features import load_ledger
from receivables.risk.models import score_customers
from receivables.warehouse.schema import credit_scores, customers
from tests.helpers import load_ledger as put_ledger
from tests.helpers import source_file

D = dt.date
AS_OF = D(2024, 6, 30)
POLICY = ScorePolicy()


def _new_customer(conn, customer_id: str, segment: str | None = None) -> None:
    conn.execute(
        customers.insert().values(
            customer_id=customer_id,
            name=customer_id,
            locale="en",
            timezone="Asia/Shanghai",
            currency="CNY",
            segment=segment,
            do_not_contact=False,
            source_file_id=source_file(conn),
        )
    )


def _scores(engine) -> dict:
    with engine.connect() as conn:
        return {
            r.customer_id: r
            for r in conn.execute(
                sa.select(credit_scores).where(credit_scores.c.as_of_date == AS_OF)
            )
        }


def test_a_customer_without_invoices_is_scored_from_the_policy_when_history_is_short(engine):
    # used to get no score at all
    put_ledger(engine, [InvoiceFacts("A1", "A", D(2024, 6, 1), D(2024, 7, 1), Decimal("10.00"))])
    with engine.begin() as conn:
        _new_customer(conn, "NEW")
    summary = score_customers(engine, AS_OF, POLICY)
    scores = _scores(engine)
    assert set(scores) == {"A", "NEW"}
    assert summary["customers"] == 2
    assert summary["application_scored"] == 1
    new = scores["NEW"]
    assert (new.basis, new.grade, new.pd) == ("application", "D", pytest.approx(0.10))
    # 487.12 + 28.854 * ln(0.9 / 0.1)
    assert new.score == pytest.approx(550.52, abs=0.01)
    assert new.reasons.startswith("no payment history yet: too few past new customers")
    assert scores["A"].basis == "behaviour"


def _book(engine, n_new: int, n_bad: int, segment: str) -> None:
    """``n_new`` customers of ``segment`` whose first invoice was a year before AS_OF; the
    first ``n_bad`` of them never paid it (90 days past due within 6 months)."""
    facts = []
    for i in range(n_new):
        paid = () if i < n_bad else ((D(2023, 7, 20), Decimal("100.00")),)
        facts.append(
            InvoiceFacts(
                f"{segment}{i}",
                f"{segment}-{i}",
                D(2023, 6, 1),
                D(2023, 7, 1),
                Decimal("100.00"),
                paid,
            )
        )
    put_ledger(engine, facts)
    with engine.begin() as conn:
        conn.execute(
            customers.update()
            .where(customers.c.customer_id.like(f"{segment}-%"))
            .values(segment=segment)
        )


def test_new_customers_take_the_measured_rate_of_their_segment(engine):
    _book(engine, MIN_NEW_CUSTOMERS, 6, "retail")
    with engine.begin() as conn:
        _new_customer(conn, "NEW-R", "retail")
        _new_customer(conn, "NEW-X", "unknown-segment")
    score_customers(engine, AS_OF, POLICY)
    scores = _scores(engine)
    assert len(scores) == MIN_NEW_CUSTOMERS + 2
    retail = scores["NEW-R"]
    assert retail.pd == pytest.approx(6 / MIN_NEW_CUSTOMERS)
    assert retail.grade == "E"  # 20 %
    assert retail.reasons == (
        "no payment history yet: new customers of segment retail reached 90 days past due "
        "within 6 months at 20.0% (6 of 30)"
    )
    # a segment with no past new customers takes the whole book's rate
    assert scores["NEW-X"].pd == pytest.approx(0.2)
    assert scores["NEW-X"].reasons.startswith("no payment history yet: new customers reached")


def test_application_rates_stay_inside_the_scale():
    from receivables.risk.features import LedgerArrays

    empty = np.empty(0, dtype=np.int64)
    ledger = LedgerArrays(
        customer_ids=np.asarray(["X"], dtype=object),
        credit_limit=np.asarray([np.nan]),
        segment=np.asarray([None], dtype=object),
        inv_customer=empty,
        inv_issue=empty,
        inv_due=empty,
        inv_amount=empty,
        inv_disputed=np.empty(0, dtype=bool),
        inv_full_paid=empty,
        pay_invoice=empty,
        pay_day=empty,
        pay_amount=empty,
    )
    scores = application_scores(ledger, AS_OF, np.asarray([0]), POLICY)
    assert scores.pd.tolist() == [0.1]
    assert np.isfinite(scores.pd).all()


def test_the_ledger_arrays_carry_segments(engine):
    with engine.begin() as conn:
        _new_customer(conn, "S", "sme")
    assert load_ledger(engine).segment.tolist() == ["sme"]
