"""Aging (docs/contract.md §5): the SQL snapshot against the contract's words, on both engines."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from receivables.aging import (
    InvoiceFacts,
    age_invoices,
    band_for,
    compute_snapshot,
    days_past_due,
)
from receivables.config import Policy
from tests.helpers import clear, load_ledger, money, snapshot

POLICY = Policy().aging
D = dt.date


@pytest.mark.parametrize(
    ("days", "bucket", "risk_class"),
    [
        (0, "current", "normal"),
        (1, "1-30", "special_mention"),
        (30, "1-30", "special_mention"),
        (31, "31-60", "special_mention"),
        (60, "31-60", "special_mention"),
        (61, "61-90", "special_mention"),
        (90, "61-90", "special_mention"),
        (91, "91-180", "substandard"),
        (180, "91-180", "substandard"),
        (181, "181-360", "substandard"),
        (270, "181-360", "substandard"),
        (271, "181-360", "doubtful"),
        (360, "181-360", "doubtful"),
        (361, "361+", "loss"),
        (5000, "361+", "loss"),
    ],
)
def test_bands_at_every_boundary(days, bucket, risk_class):
    assert band_for(days, POLICY.buckets) == bucket
    assert band_for(days, POLICY.risk_classes) == risk_class


def test_days_past_due_is_never_negative():
    assert days_past_due(D(2024, 3, 1), D(2024, 2, 29)) == 1  # leap day
    assert days_past_due(D(2024, 3, 1), D(2024, 3, 1)) == 0  # due today
    assert days_past_due(D(2024, 3, 1), D(2024, 4, 1)) == 0  # not yet due
    with pytest.raises(ValueError, match="negative"):
        band_for(-1, POLICY.buckets)


AS_OF = D(2024, 3, 1)
EDGE_CASES = [
    # (invoice, expected outstanding or None when not in the snapshot, expected dpd)
    (
        InvoiceFacts(
            "partial",
            "A",
            D(2024, 1, 1),
            D(2024, 1, 31),
            money("100.00"),
            ((D(2024, 2, 1), money("40.00")),),
        ),
        money("60.00"),
        30,
    ),
    (
        InvoiceFacts(
            "paid-after",
            "A",
            D(2024, 1, 1),
            D(2024, 2, 29),
            money("100.00"),
            ((D(2024, 3, 2), money("100.00")),),
        ),
        money("100.00"),
        1,
    ),
    (
        InvoiceFacts(
            "paid-on-as-of",
            "A",
            D(2024, 1, 1),
            D(2024, 1, 1),
            money("100.00"),
            ((D(2024, 3, 1), money("100.00")),),
        ),
        None,
        None,
    ),
    (
        InvoiceFacts(
            "paid-in-two",
            "A",
            D(2023, 1, 1),
            D(2023, 1, 1),
            money("0.30"),
            ((D(2023, 2, 1), money("0.10")), (D(2023, 3, 1), money("0.20"))),
        ),
        None,
        None,
    ),
    (InvoiceFacts("issued-later", "B", D(2024, 3, 2), D(2024, 4, 1), money("50.00")), None, None),
    (
        InvoiceFacts("issued-today", "B", D(2024, 3, 1), D(2024, 3, 31), money("50.00")),
        money("50.00"),
        0,
    ),
    (
        InvoiceFacts("due-today", "B", D(2024, 2, 1), D(2024, 3, 1), money("50.00")),
        money("50.00"),
        0,
    ),
    (
        InvoiceFacts("leap-day", "B", D(2024, 1, 30), D(2024, 2, 28), money("7.77")),
        money("7.77"),
        2,
    ),
    (
        InvoiceFacts("month-end", "C", D(2023, 12, 31), D(2024, 1, 31), money("1.00")),
        money("1.00"),
        30,
    ),
    (
        InvoiceFacts("boundary-91", "C", D(2023, 10, 1), D(2023, 12, 1), money("1.00")),
        money("1.00"),
        91,
    ),
    (
        InvoiceFacts("year-old", "C", D(2022, 1, 1), D(2023, 2, 28), money("1.00")),
        money("1.00"),
        367,
    ),
]


def test_snapshot_edge_cases(engine):
    load_ledger(engine, [case[0] for case in EDGE_CASES])
    summary = compute_snapshot(engine, AS_OF, POLICY)
    rows = snapshot(engine, AS_OF)
    for facts, outstanding, dpd in EDGE_CASES:
        if outstanding is None:
            assert facts.invoice_id not in rows, facts.invoice_id
            continue
        row = rows[facts.invoice_id]
        assert row["outstanding"] == outstanding, facts.invoice_id
        assert row["days_past_due"] == dpd, facts.invoice_id
        assert row["bucket"] == band_for(dpd, POLICY.buckets)
        assert row["risk_class"] == band_for(dpd, POLICY.risk_classes)
        assert row["amount"] - row["paid"] == row["outstanding"]
    assert summary.invoices == len(rows) == 8
    assert summary.outstanding_by_currency == {
        "CNY": str(sum(r["outstanding"] for r in rows.values()))
    }


def test_snapshot_is_replaced_not_appended(engine):
    facts = [InvoiceFacts("I1", "A", D(2024, 1, 1), D(2024, 1, 31), money("100.00"))]
    load_ledger(engine, facts)
    compute_snapshot(engine, AS_OF, POLICY)
    first = snapshot(engine, AS_OF)
    compute_snapshot(engine, AS_OF, POLICY)
    assert snapshot(engine, AS_OF) == first
    other_day = compute_snapshot(engine, D(2024, 2, 15), POLICY)
    assert other_day.invoices == 1
    assert snapshot(engine, AS_OF) == first  # another date's snapshot leaves this one alone


def test_a_snapshot_with_nothing_open_is_still_recorded(engine, tmp_path):
    from receivables.exports import ExportError, export

    with pytest.raises(ExportError, match="no aging snapshot for 2024-03-01"):
        export("aging", engine, AS_OF, tmp_path / "before.csv")
    summary = compute_snapshot(engine, AS_OF, POLICY)
    assert summary.invoices == 0
    assert summary.outstanding_by_currency == {}
    assert export("aging", engine, AS_OF, tmp_path / "aging.csv") == 0
    header = (tmp_path / "aging.csv").read_text(encoding="utf-8").splitlines()
    assert header == [
        "as_of_date,invoice_id,customer_id,currency,amount,outstanding,due_date,days_past_due,"
        "bucket,risk_class,issue_date,paid,disputed"
    ]


# --- properties -----------------------------------------------------------------------------

days = st.integers(min_value=0, max_value=900)
BASE = D(2022, 1, 1)


@st.composite
def ledgers(draw):
    count = draw(st.integers(min_value=0, max_value=12))
    facts = []
    for i in range(count):
        issue = BASE + dt.timedelta(days=draw(days))
        due = issue + dt.timedelta(days=draw(st.integers(min_value=0, max_value=120)))
        cents = draw(st.integers(min_value=1, max_value=10**9))
        paid_parts = draw(st.lists(st.integers(min_value=1, max_value=10**9), max_size=3))
        pays, left = [], cents
        for part in paid_parts:
            amount = min(part, left)
            if amount <= 0:
                break
            left -= amount
            day = issue + dt.timedelta(days=draw(st.integers(min_value=0, max_value=400)))
            pays.append((day, Decimal(amount).scaleb(-2)))
        facts.append(
            InvoiceFacts(f"I{i}", f"C{i % 3}", issue, due, Decimal(cents).scaleb(-2), tuple(pays))
        )
    as_of = BASE + dt.timedelta(days=draw(st.integers(min_value=0, max_value=1300)))
    return facts, as_of


def _check_properties(engine, facts, as_of):
    clear(engine)
    load_ledger(engine, facts)
    compute_snapshot(engine, as_of, POLICY)
    rows = snapshot(engine, as_of)
    expected = {a.invoice_id: a for a in age_invoices(facts, as_of, POLICY)}
    # the SQL says what the contract says, invoice by invoice
    assert set(rows) == set(expected)
    for invoice_id, row in rows.items():
        ref = expected[invoice_id]
        assert (row["outstanding"], row["days_past_due"], row["bucket"], row["risk_class"]) == (
            ref.outstanding,
            ref.days_past_due,
            ref.bucket,
            ref.risk_class,
        )
        # outstanding is positive and never more than the invoice
        assert Decimal(0) < row["outstanding"] <= row["amount"]
    # totals reconcile: issued amounts minus payments up to as_of = outstanding of the snapshot
    issued = [f for f in facts if f.issue_date <= as_of]
    owed = sum(
        (f.amount - sum((a for d, a in f.payments if d <= as_of), Decimal(0)) for f in issued),
        Decimal(0),
    )
    assert sum((r["outstanding"] for r in rows.values()), Decimal(0)) == owed
    # buckets partition the outstanding: every row in exactly one known bucket and one class
    names = {b.name for b in POLICY.buckets}
    by_bucket = {}
    for r in rows.values():
        assert r["bucket"] in names
        by_bucket[r["bucket"]] = by_bucket.get(r["bucket"], Decimal(0)) + r["outstanding"]
    assert sum(by_bucket.values(), Decimal(0)) == owed


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(ledgers())
def test_properties(engine, ledger):
    """Runs on SQLite and on PostgreSQL (the ``engine`` fixture's two databases)."""
    _check_properties(engine, *ledger)
