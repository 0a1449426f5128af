"""Behaviour features and the credit model's target, on a ledger worked out by hand."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import numpy as np
import pytest
import sqlalchemy as sa

from receivables.aging import InvoiceFacts
from receivables.config import ScorePolicy
from receivables.risk.features import features_at, load_ledger, targets_at
from receivables.risk.models import training_set
from receivables.warehouse.schema import customers, invoices
from tests.helpers import load_ledger as put_ledger

D = dt.date
T = D(2024, 6, 30)


@pytest.fixture
def ledger(engine):
    facts = [
        InvoiceFacts(
            "A1",
            "A",
            D(2024, 1, 1),
            D(2024, 1, 31),
            Decimal("100.00"),
            ((D(2024, 2, 10), Decimal("100.00")),),
        ),  # 10 days late
        InvoiceFacts(
            "A2",
            "A",
            D(2024, 2, 1),
            D(2024, 3, 2),
            Decimal("100.00"),
            ((D(2024, 3, 20), Decimal("50.00")), (D(2024, 4, 15), Decimal("50.00"))),
        ),
        InvoiceFacts("A3", "A", D(2024, 5, 1), D(2024, 5, 31), Decimal("100.00")),  # open, 30
        InvoiceFacts("A4", "A", D(2024, 6, 15), D(2024, 7, 15), Decimal("100.00")),  # not due
        InvoiceFacts(
            "B1",
            "B",
            D(2024, 1, 15),
            D(2024, 2, 14),
            Decimal("80.00"),
            ((D(2024, 2, 14), Decimal("80.00")),),
        ),
        InvoiceFacts("C1", "C", D(2024, 7, 1), D(2024, 7, 31), Decimal("10.00")),  # after T
        InvoiceFacts("D1", "D", D(2024, 2, 1), D(2024, 3, 1), Decimal("10.00")),  # 121 days
    ]
    put_ledger(engine, facts)
    with engine.begin() as conn:
        conn.execute(
            customers.update()
            .where(customers.c.customer_id == "A")
            .values(credit_limit=Decimal("400.00"))
        )
        conn.execute(invoices.update().where(invoices.c.invoice_id == "A4").values(disputed=True))
    return load_ledger(engine)


def test_features_worked_out_by_hand(ledger):
    frame = features_at(ledger, T).set_index("customer_id")
    assert set(frame.index) == {"A", "B", "D"}  # C has nothing before T
    a = frame.loc["A"]
    assert (a.worst_dpd_3m, a.avg_dpd_3m) == (30, 30)  # A3 only (A2 was due before Apr 1)
    assert a.worst_dpd_6m == 44  # A2 settled on Apr 15, 44 days after Mar 2
    assert a.avg_dpd_6m == pytest.approx((10 + 44 + 30) / 3)
    assert a.late_share_12m == pytest.approx(1 / 3)  # only A2 is more than 30 days late
    assert (a.late_12m, a.due_12m) == (1, 3)
    assert a.partial_ratio_12m == pytest.approx(1 / 3)  # A2 in two instalments
    assert a.utilisation == pytest.approx(200 / 400)  # A3 + A4 outstanding
    assert a.tenure_months == pytest.approx(181 / 30.4375)  # 2024-01-01 to 2024-06-30
    assert a.disputed_share_12m == pytest.approx(1 / 4)
    assert a.overdue_share == pytest.approx(0.5)  # A3 overdue, A4 not yet due
    assert a.worst_open_dpd == 30
    b = frame.loc["B"]
    assert (b.worst_dpd_12m, b.late_share_12m) == (0, 0)
    assert np.isnan(b.overdue_share)  # owes nothing: missing, not 0
    assert b.utilisation != b.utilisation  # no credit limit: missing
    assert frame.loc["D", "worst_open_dpd"] == 121


def test_target_and_population(ledger):
    bad = targets_at(ledger, T, D(2024, 12, 31), 90)
    positions = {cid: i for i, cid in enumerate(ledger.customer_ids)}
    assert bad[positions["A"]]  # A3 reaches 90 days on Aug 29, unpaid
    assert not bad[positions["B"]]
    assert not bad[positions["D"]]  # D1 was already 90+ before T: not a new default
    assert not targets_at(ledger, T, D(2024, 8, 28), 90)[positions["A"]]  # horizon too short


def test_the_training_set_leaves_out_customers_already_bad(engine, ledger):
    data = training_set(ledger, D(2025, 12, 31), ScorePolicy())
    assert data.months  # month-ends with a full year of ledger before them
    assert all(m >= D(2024, 12, 31) for m in data.months)
    assert len(data.frame) == len(data.target)
    assert (data.frame["worst_open_dpd"] < 90).all()
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(invoices)).scalar() == 7
