"""The dashboard's worked example: a small warehouse whose every figure the tests state.

As of 2025-06-30 (business date), reporting currency CNY:

| invoice | customer | currency | amount | issued | due | paid (date) | on 2025-06-30 |
| --- | --- | --- | ---: | --- | --- | --- | --- |
| I1 | C1 | CNY | 1,000.00 | 03-01 | 03-31 | 300.00 (05-15) | 700.00, 91 days: 91-180 |
| I2 | C1 | CNY | 2,500.50 | 06-01 | 07-01 | | 2,500.50, current |
| I3 | C2 | CNY | 800.25 | 04-01 | 05-20 | | 800.25, 41 days: 31-60 |
| I7 | C2 | CNY | 0.10 | 06-01 | 06-29 | | 0.10, 1 day: 1-30 |
| I4 | C3 | USD | 1,200.00 | 01-10 | 02-09 | 200.00 (06-10) | 1,000.00, 141 days: 91-180 |
| I5 | C3 | USD | 99.99 | 06-15 | 07-15 | | 99.99, current |
| I6 | C4 | HKD | 5,000.00 | 05-01 | 06-25 | | 5,000.00, 5 days: 1-30 |

USD rates to CNY: 7.2 on 04-30, 7.15 on 05-31, 7.1234567891 on 06-27 (in force on 06-30); HKD
has none, so it is left out of every CNY total. Aging snapshots (computed by the product's
``compute_snapshot``) of the month-ends 03-31, 04-30, 05-31, of 06-29 (a previous day, not a
month-end) and of 06-30. Warnings, reminders (with SendGrid events recorded by the product's
``record_events``), legal cases and two ingest runs (one before and one after the last one up to
06-30) complete it.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from receivables.aging import compute_snapshot
from receivables.collection.events import record_events
from receivables.config import Policy
from receivables.warehouse.schema import (
    customers,
    fx_rates,
    ingested_files,
    invoices,
    legal_cases,
    payments,
    quarantined_rows,
    risk_warnings,
)
from tests.signing import add_reminder

AS_OF = dt.date(2025, 6, 30)
SNAPSHOT_DAYS = (
    dt.date(2025, 3, 31),
    dt.date(2025, 4, 30),
    dt.date(2025, 5, 31),
    dt.date(2025, 6, 29),
    AS_OF,
)
#: The checksum of the last run's invoices file (its GX validation pages are found by it).
INVOICES_SHA = "ab12cd34ef56" + "0" * 52

_T = dt.datetime(2025, 6, 30, 0, 30, tzinfo=dt.UTC)


def _file(conn, name, kind, status, read, loaded, quarantined, as_of, run, sha, reason=None):
    return conn.execute(
        ingested_files.insert().values(
            file_name=name,
            kind=kind,
            file_format=name.rsplit(".", 1)[-1],
            sha256=sha,
            size_bytes=1000,
            status=status,
            reason=reason,
            rows_read=read,
            rows_loaded=loaded,
            rows_quarantined=quarantined,
            as_of_date=as_of,
            dag_run_id=run,
            started_at=_T,
            finished_at=_T + dt.timedelta(minutes=1),
        )
    ).inserted_primary_key[0]


def load_worked_example(engine, policy: Policy) -> None:
    """Fill an empty, migrated warehouse with the worked example."""
    d = dt.date
    with engine.begin() as conn:
        # an earlier run, and a later one (after the as-of date): neither is the last one
        _file(conn, "old.csv", "customers", "loaded", 4, 4, 0, d(2025, 6, 1), "run-0601", "1" * 64)
        source = _file(
            conn,
            "invoices.csv",
            "invoices",
            "loaded",
            10,
            8,
            2,
            AS_OF,
            "scheduled__2025-06-29T22:00:00+00:00",
            INVOICES_SHA,
        )
        _file(
            conn,
            "payments.csv",
            "payments",
            "loaded",
            5,
            5,
            0,
            AS_OF,
            "scheduled__2025-06-29T22:00:00+00:00",
            "2" * 64,
        )
        _file(
            conn,
            "customers <b>bad</b>.xlsx",
            "customers",
            "rejected",
            0,
            0,
            0,
            AS_OF,
            "scheduled__2025-06-29T22:00:00+00:00",
            "3" * 64,
            reason="required column(s) missing: customer_id",
        )
        _file(conn, "late.csv", "payments", "loaded", 7, 6, 1, d(2025, 7, 2), "run-0702", "4" * 64)
        conn.execute(
            quarantined_rows.insert(),
            [
                {"file_id": source, "row_number": 3, "column_name": "amount", "reason": "x"},
                {"file_id": source, "row_number": 9, "column_name": "due_date", "reason": "y"},
            ],
        )
        conn.execute(
            customers.insert(),
            [
                {
                    "customer_id": cid,
                    "name": cid,
                    "locale": "en",
                    "timezone": "Asia/Shanghai",
                    "currency": currency,
                    "do_not_contact": False,
                    "source_file_id": source,
                }
                for cid, currency in (("C1", "CNY"), ("C2", "CNY"), ("C3", "USD"), ("C4", "HKD"))
            ],
        )
        conn.execute(
            invoices.insert(),
            [
                {
                    "invoice_id": iid,
                    "customer_id": cid,
                    "currency": currency,
                    "amount": Decimal(amount),
                    "issue_date": issued,
                    "due_date": due,
                    "disputed": False,
                    "source_file_id": source,
                }
                for iid, cid, currency, amount, issued, due in (
                    ("I1", "C1", "CNY", "1000.00", d(2025, 3, 1), d(2025, 3, 31)),
                    ("I2", "C1", "CNY", "2500.50", d(2025, 6, 1), d(2025, 7, 1)),
                    ("I3", "C2", "CNY", "800.25", d(2025, 4, 1), d(2025, 5, 20)),
                    ("I7", "C2", "CNY", "0.10", d(2025, 6, 1), d(2025, 6, 29)),
                    ("I4", "C3", "USD", "1200.00", d(2025, 1, 10), d(2025, 2, 9)),
                    ("I5", "C3", "USD", "99.99", d(2025, 6, 15), d(2025, 7, 15)),
                    ("I6", "C4", "HKD", "5000.00", d(2025, 5, 1), d(2025, 6, 25)),
                )
            ],
        )
        conn.execute(
            payments.insert(),
            [
                {
                    "payment_id": "P1",
                    "invoice_id": "I1",
                    "paid_date": d(2025, 5, 15),
                    "amount": Decimal("300.00"),
                    "source_file_id": source,
                },
                {
                    "payment_id": "P2",
                    "invoice_id": "I4",
                    "paid_date": d(2025, 6, 10),
                    "amount": Decimal("200.00"),
                    "source_file_id": source,
                },
            ],
        )
        conn.execute(
            fx_rates.insert(),
            [
                {"rate_date": day, "currency": "USD", "rate": Decimal(rate), "source_file_id": 1}
                for day, rate in (
                    (d(2025, 4, 30), "7.2"),
                    (d(2025, 5, 31), "7.15"),
                    (d(2025, 6, 27), "7.1234567891"),
                )
            ],
        )
        conn.execute(
            risk_warnings.insert(),
            [
                {
                    "as_of_date": day,
                    "customer_id": cid,
                    "kind": kind,
                    "severity": severity,
                    "message": "m",
                    "action": "monitor",
                }
                for day, cid, kind, severity in (
                    (AS_OF, "C1", "newly_overdue", "low"),
                    (AS_OF, "C2", "rolled_worse", "medium"),
                    (AS_OF, "C3", "rolled_worse", "high"),
                    (AS_OF, "C3", "over_credit_limit", "high"),
                    (AS_OF, "C4", "concentration", "critical"),
                    (d(2025, 6, 29), "C1", "rolled_worse", "high"),  # another day
                )
            ],
        )
        conn.execute(
            legal_cases.insert(),
            [
                {
                    "case_id": case_id,
                    "customer_id": cid,
                    "opened_on": opened,
                    "amount": Decimal(amount),
                    "currency": currency,
                    "status": status,
                    "updated_on": opened,
                }
                for case_id, cid, opened, amount, currency, status in (
                    ("L1", "C1", AS_OF, "12000.00", "CNY", "proposed"),
                    ("L2", "C2", d(2025, 6, 20), "30000.55", "CNY", "approved"),
                    ("L3", "C3", d(2025, 6, 15), "5000.00", "USD", "approved"),
                    ("L4", "C1", d(2025, 3, 1), "1000.00", "CNY", "recovered"),
                    ("L5", "C4", d(2025, 7, 2), "9999.99", "CNY", "proposed"),  # after the day
                )
            ],
        )
    for day in SNAPSHOT_DAYS:
        compute_snapshot(engine, day, policy.aging, summary=False)

    def reminder(planned_on, status, **values):
        return add_reminder(engine, status, planned_on=planned_on, **values)

    delivered = reminder(AS_OF, "sent", provider="sendgrid", provider_message_id="m1")
    bounced = reminder(AS_OF, "sent", provider="sendgrid", provider_message_id="m2", attempts=1)
    reminder(AS_OF, "refused", rule="invoice_disputed", reason="invoice_disputed: I3")
    reminder(AS_OF, "failed", reason="no usable address")
    reminder(AS_OF, "sending", provider="sendgrid", attempts=1)
    opened = reminder(d(2025, 6, 10), "sent", provider="sendgrid", provider_message_id="m3")
    reminder(d(2025, 6, 10), "refused", rule="do_not_contact", reason="do_not_contact")
    reminder(d(2025, 5, 31), "sent", provider="outbox")  # before the 30 days
    events = [
        (delivered, "delivered", 1),
        (bounced, "bounce", 2),
        (opened, "delivered", 3),
        (opened, "open", 4),
    ]
    record_events(
        engine,
        [
            {
                "event": event,
                "email": "alex@example.com",
                "timestamp": 1751250000 + n,
                "sg_event_id": f"event-{n}",
                "sg_message_id": f"m{n}.filter",
                "reminder_id": str(rid),
                "type": "bounce",
            }
            for rid, event, n in events
        ],
        _T,
    )
