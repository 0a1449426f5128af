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
