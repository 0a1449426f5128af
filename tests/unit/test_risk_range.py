"""Risk on the largest amounts the warehouse accepts: no aggregate overflows, on either engine."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import sqlalchemy as sa

from receivables.aging import InvoiceFacts, compute_snapshot
from receivables.config import Policy
from receivables.risk.classification import compute_customer_classes
from receivables.risk.models import score_customers
from receivables.risk.provisions import compute_provisions
from receivables.risk.warnings import raise_warnings
from receivables.warehouse.schema import customer_risk_classes, invoice_risk
from tests.helpers import load_ledger

POLICY = Policy()
LARGEST = Decimal("9999999999999.99")  # the largest amount the ingest accepts
AS_OF = dt.date(2024, 6, 30)


def test_a_thousand_and_one_largest_invoices_of_one_customer(engine):
    # used to overflow NUMERIC(18, 2) in customer_risk_classes on PostgreSQL, failing the
    # risk DAG for that date and every later one
    count = 1001
    load_ledger(
        engine,
        [
            InvoiceFacts(f"I{i}", "BIG", dt.date(2024, 1, 1), dt.date(2024, 2, 1), LARGEST)
            for i in range(count)
        ],
    )
    compute_snapshot(engine, AS_OF, POLICY.aging)
    compute_customer_classes(engine, AS_OF, POLICY)
    summary = compute_provisions(engine, AS_OF, POLICY.aging, POLICY.provisions)
    score_customers(engine, AS_OF, POLICY.scores)
    raise_warnings(engine, AS_OF, POLICY)
    total = LARGEST * count
    with engine.connect() as conn:
        row = conn.execute(sa.select(customer_risk_classes)).one()
        ecl = conn.execute(
            sa.select(sa.type_coerce(sa.func.sum(invoice_risk.c.ecl), invoice_risk.c.ecl.type))
        ).scalar()
    assert row.outstanding == total == Decimal("10009999999999989.99")
    assert row.reporting_outstanding == total
    assert Decimal(summary["by_currency"]["CNY"]["outstanding"]) == total
    assert ecl == Decimal(summary["by_currency"]["CNY"]["ecl"]) > 0


def test_the_embedded_warehouse_refuses_a_book_its_integers_cannot_add_up(ingest, engine, home):
    """SQLite keeps 64-bit integer cents: an invoice that would take a currency's ledger past
    90,000,000,000,000,000.00 is quarantined there (PostgreSQL loads it); either way the risk
    steps add the book up without overflowing."""
    from tests.helpers import drop, exported

    inbox = home / "inbox"
    drop(inbox, "customers.csv", "customer_id,name\nBIG,Big Ltd\n")
    lines = ["invoice_id,customer_id,issue_date,due_date,amount"] + [
        f"I{i},BIG,2024-01-01,2024-02-01,{LARGEST}" for i in range(9001)
    ]
    drop(inbox, "invoices.csv", "\n".join(lines) + "\n")
    assert ingest.ingest(inbox / "customers.csv").status == "loaded"
    outcome = ingest.ingest(inbox / "invoices.csv")
    if engine.dialect.name == "sqlite":
        assert (outcome.rows_loaded, outcome.rows_quarantined) == (9000, 1)
        (refused,) = exported(engine, "rejects", home)[0]
        assert refused["record_id"] == "I9000"
        assert refused["reason"].startswith(
            "the embedded SQLite warehouse holds at most 90,000,000,000,000,000.00 CNY"
        )
    else:
        assert (outcome.rows_loaded, outcome.rows_quarantined) == (9001, 0)
    compute_snapshot(engine, AS_OF, POLICY.aging)
    compute_customer_classes(engine, AS_OF, POLICY)
    with engine.connect() as conn:
        row = conn.execute(sa.select(customer_risk_classes)).one()
    assert row.outstanding == LARGEST * outcome.rows_loaded
