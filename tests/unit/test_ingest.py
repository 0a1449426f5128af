"""The per-file ingest (CONTRACT §3) on SQLite and PostgreSQL, without Airflow.

Every kind of refusal has a test here: whole files (unreadable, wrong name, missing column,
already loaded, failing the GX suite) and rows (bad values, repeated ids, unknown references,
overpayments). Good rows always load; counts always reconcile; nothing is silently dropped.
"""

from __future__ import annotations

import csv
import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa

from receivables.config import Settings
from receivables.exports import export
from receivables.ingest import pipeline
from receivables.ingest.pipeline import FileIngest, discover, sha256_of
from receivables.warehouse.schema import (
    customers,
    ingested_files,
    invoices,
    payments,
    quarantined_rows,
)

AS_OF = dt.date(2024, 3, 1)

CUSTOMERS = (
    "customer_id,name,email,locale,timezone,currency,credit_limit,do_not_contact\n"
    'C1,恒达贸易有限公司,ar@hengda.example.net,zh-CN,Asia/Shanghai,CNY,"100,000.00",false\n'
    "C2,Acme Ltd,ap@acme.example.com;cfo@acme.example.com,en,Europe/London,USD,5000,\n"
)
INVOICES = (
    "invoice_id,customer_id,issue_date,due_date,amount,currency,description,disputed\n"
    'I1,C1,2024-01-01,2024-01-31,"1,000.00",,2024年1月 货款,false\n'
    "I2,C2,2024/01/15,2024/02/14,250.5,,Services January 2024,\n"
    "I3,C1,20240201,20240302,99.99,,,\n"
)
PAYMENTS = (
    "payment_id,invoice_id,paid_date,amount,method\n"
    "P1,I1,2024-02-01,400,bank_transfer\n"
    "P2,I2,2024-02-10,250.50,card\n"
)


def drop(inbox: Path, name: str, text: str, encoding: str = "utf-8") -> Path:
    path = inbox / name
    path.write_bytes(text.encode(encoding))
    return path


@pytest.fixture
def ingest(home, engine):
    return FileIngest(engine, Settings.from_env(), AS_OF, "test-run")


def load_all(ingest, inbox):
    found = discover(inbox)
    outcomes = []
    for paths in found.by_kind.values():
        outcomes += [ingest.ingest(Path(p)) for p in paths]
    outcomes += [ingest.ingest(Path(p)) for p in found.unrecognised]
    return outcomes


def rows(engine, table, order):
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(sa.select(table).order_by(order)).mappings()]


def rejects(engine, tmp_path) -> list[dict]:
    out = tmp_path / "rejects.csv"
    export("rejects", engine, None, out)
    with out.open(encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_good_files_load_and_are_archived_under_their_checksum(ingest, engine, home):
    inbox = home / "inbox"
    sums = {
        name: sha256_of(drop(inbox, name, text))
        for name, text in (
            ("customers.csv", CUSTOMERS),
            ("invoices_2024-03.csv", INVOICES),
            ("payments.csv", PAYMENTS),
        )
    }
    outcomes = load_all(ingest, inbox)
    assert [
        (o.file, o.status, o.rows_read, o.rows_loaded, o.rows_quarantined) for o in outcomes
    ] == [
        ("customers.csv", "loaded", 2, 2, 0),
        ("invoices_2024-03.csv", "loaded", 3, 3, 0),
        ("payments.csv", "loaded", 2, 2, 0),
    ]
    assert not list(inbox.iterdir())
    for name, digest in sums.items():
        assert (home / "archive" / "2024-03-01" / f"{digest[:12]}_{name}").exists()
    c = rows(engine, customers, customers.c.customer_id)
    assert c[0]["name"] == "恒达贸易有限公司"
    assert c[0]["credit_limit"] == Decimal("100000.00")
    assert c[1]["email"] == "ap@acme.example.com;cfo@acme.example.com"
    assert c[1]["do_not_contact"] is False  # empty optional value: the contract's default
    inv = rows(engine, invoices, invoices.c.invoice_id)
    assert [(i["invoice_id"], i["amount"], i["currency"], i["issue_date"]) for i in inv] == [
        ("I1", Decimal("1000.00"), "CNY", dt.date(2024, 1, 1)),
        ("I2", Decimal("250.50"), "USD", dt.date(2024, 1, 15)),  # currency from the customer
        ("I3", Decimal("99.99"), "CNY", dt.date(2024, 2, 1)),
    ]
    with engine.connect() as conn:
        files = conn.execute(sa.select(ingested_files).order_by(ingested_files.c.file_id)).all()
    assert [(f.kind, f.status, f.encoding, f.sha256) for f in files] == [
        ("customers", "loaded", "utf-8", sums["customers.csv"]),
        ("invoices", "loaded", "utf-8", sums["invoices_2024-03.csv"]),
        ("payments", "loaded", "utf-8", sums["payments.csv"]),
    ]
    assert outcomes[1].seconds
    assert set(outcomes[1].seconds) >= {"read", "check", "merge", "gx"}


def test_the_same_file_never_loads_twice(ingest, engine, home, tmp_path):
    inbox = home / "inbox"
    drop(inbox, "customers.csv", CUSTOMERS)
    first = ingest.ingest(inbox / "customers.csv")
    drop(inbox, "customers_again.csv", CUSTOMERS)
    second = ingest.ingest(inbox / "customers_again.csv")
    assert first.status == "loaded"
    assert second.status == "rejected"
    assert "identical to customers.csv" in second.reason
    assert (home / "rejected" / "2024-03-01" / "customers_again.csv").exists()
    reason_file = home / "rejected" / "2024-03-01" / "customers_again.csv.reason.txt"
    assert "never loads twice" in reason_file.read_text(encoding="utf-8")
    assert [r["file"] for r in rejects(engine, tmp_path)] == ["customers_again.csv"]


def test_a_load_whose_archive_move_was_lost_is_finished_not_repeated(ingest, engine, home):
    inbox = home / "inbox"
    drop(inbox, "customers.csv", CUSTOMERS)
    loaded = ingest.ingest(inbox / "customers.csv")
    # as if the process died after the commit and before the move
    Path(loaded.stored_path).rename(inbox / "customers.csv")
    again = ingest.ingest(inbox / "customers.csv")
    assert again.status == "loaded"
    assert again.file_id == loaded.file_id
    assert Path(loaded.stored_path).exists()
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(ingested_files)).scalar() == 1


def test_bad_rows_are_quarantined_and_good_rows_load(ingest, engine, home, tmp_path):
    inbox = home / "inbox"
    drop(inbox, "customers.csv", CUSTOMERS + "C3,,x@y.example.com,fr,Mars/Base,ZZZ,-1,maybe\n")
    drop(
        inbox,
        "invoices.csv",
        INVOICES
        + "I4,C1,2024-02-30,2024-03-30,10,,,\n"  # no such day
        + "I5,C1,2024-02-01,2024-01-01,10,,,\n"  # due before issue
        + "I6,C9,2024-02-01,2024-03-01,10,,,\n"  # unknown customer
        + "I7,C3,2024-02-01,2024-03-01,10,,,\n"  # customer quarantined above
        + "I8,C1,2024-02-01,2024-03-01,12.345,,,\n"  # sub-cent
        + "I9,C1,2024-02-01,2024-03-01,0,,,\n"  # not positive
        + "I3,C1,2024-02-01,2024-03-01,5,,,\n"  # repeats I3: both copies held
        + "I10,C1,2024-02-01\n",  # malformed
    )
    drop(
        inbox,
        "payments.csv",
        PAYMENTS
        + "P3,I1,2024-02-02,600.00,\n"  # exactly settles I1 (400 + 600)
        + "P4,I1,2024-02-03,0.01,\n"  # one cent too much
        + "P5,I404,2024-02-03,1,\n"  # unknown invoice
        + "P6,I4,2024-02-03,1,\n",  # invoice quarantined above
    )
    outcomes = {o.file: o for o in load_all(ingest, inbox)}
    assert (outcomes["customers.csv"].rows_loaded, outcomes["customers.csv"].rows_quarantined) == (
        2,
        1,
    )
    inv = outcomes["invoices.csv"]
    assert (inv.rows_read, inv.rows_loaded, inv.rows_quarantined) == (11, 2, 9)
    pay = outcomes["payments.csv"]
    assert (pay.rows_read, pay.rows_loaded, pay.rows_quarantined) == (6, 3, 3)
    for outcome in outcomes.values():
        assert outcome.rows_read == outcome.rows_loaded + outcome.rows_quarantined
    assert [r["invoice_id"] for r in rows(engine, invoices, invoices.c.invoice_id)] == ["I1", "I2"]
    assert sorted(r["payment_id"] for r in rows(engine, payments, payments.c.payment_id)) == [
        "P1",
        "P2",
        "P3",
    ]

    found = {(r["file"], r["row_number"], r["column"]): r for r in rejects(engine, tmp_path)}
    customer = found[("customers.csv", "3", "name")]
    assert (customer["record_id"], customer["value"], customer["reason"]) == (
        "C3",
        "",
        "a value is required",
    )
    assert found[("customers.csv", "3", "locale")]["value"] == "fr"
    assert "unknown time zone" in found[("customers.csv", "3", "timezone")]["reason"]
    assert "unknown currency" in found[("customers.csv", "3", "currency")]["reason"]
    assert found[("customers.csv", "3", "credit_limit")]["reason"] == "must not be negative"
    assert found[("customers.csv", "3", "do_not_contact")]["value"] == "maybe"
    assert found[("invoices.csv", "4", "issue_date")]["reason"].startswith("not a valid date")
    assert found[("invoices.csv", "5", "due_date")]["reason"] == (
        "due_date is before issue_date 2024-02-01"
    )
    assert found[("invoices.csv", "6", "customer_id")]["reason"].startswith("unknown customer_id")
    cascade = found[("invoices.csv", "7", "customer_id")]["reason"]
    assert "its own row was quarantined: customers.csv row 3" in cascade
    assert "2 decimal places" in found[("invoices.csv", "8", "amount")]["reason"]
    assert found[("invoices.csv", "9", "amount")]["reason"] == "must be greater than 0"
    for row in ("3", "10"):
        assert "invoice_id appears 2 times" in found[("invoices.csv", row, "invoice_id")]["reason"]
    malformed = found[("invoices.csv", "11", "")]
    assert (malformed["record_id"], malformed["value"]) == ("I10", "I10,C1,2024-02-01")
    assert "3 field(s), expected 8" in malformed["reason"]
    over = found[("payments.csv", "4", "amount")]
    assert (over["record_id"], over["value"]) == ("P4", "0.01")
    assert "exceed the invoice amount of 1000.00" in over["reason"]
    assert found[("payments.csv", "5", "invoice_id")]["reason"].startswith("unknown invoice_id")
    assert "invoices.csv row 4" in found[("payments.csv", "6", "invoice_id")]["reason"]


def test_payments_correcting_earlier_ones_count_once(ingest, engine, home):
    inbox = home / "inbox"
    for name, text in (
        ("customers.csv", CUSTOMERS),
        ("invoices.csv", INVOICES),
        ("payments_1.csv", PAYMENTS),
    ):
        drop(inbox, name, text)
    load_all(ingest, inbox)
    # P1 was 400 on I1 (1000): restating it as 900 and adding 100 exactly settles the invoice
    drop(
        inbox,
        "payments_2.csv",
        "payment_id,invoice_id,paid_date,amount\nP1,I1,2024-02-01,900\nP9,I1,2024-02-20,100\n",
    )
    outcome = ingest.ingest(inbox / "payments_2.csv")
    assert (outcome.rows_loaded, outcome.rows_quarantined) == (2, 0)
    drop(inbox, "payments_3.csv", "payment_id,invoice_id,paid_date,amount\nP10,I1,2024-02-21,1\n")
    assert ingest.ingest(inbox / "payments_3.csv").rows_quarantined == 1
    # and an invoice may not be corrected below what was paid on it
    drop(
        inbox,
        "invoices_fix.csv",
        "invoice_id,customer_id,issue_date,due_date,amount\nI1,C1,2024-01-01,2024-01-31,999\n",
    )
    fix = ingest.ingest(inbox / "invoices_fix.csv")
    assert (fix.rows_loaded, fix.rows_quarantined) == (0, 1)


def test_later_files_update_rows_and_empty_values_keep_what_is_known(ingest, engine, home):
    inbox = home / "inbox"
    for name, text in (("customers.csv", CUSTOMERS), ("invoices.csv", INVOICES)):
        drop(inbox, name, text)
    load_all(ingest, inbox)
    drop(inbox, "customers_update.csv", "customer_id,name,email,do_not_contact\nC1,恒达,,true\n")
    drop(
        inbox,
        "invoices_update.csv",
        "invoice_id,customer_id,issue_date,due_date,amount,disputed\n"
        "I1,C1,2024-01-01,2024-02-15,1000,true\n",
    )
    load_all(ingest, inbox)
    c1 = rows(engine, customers, customers.c.customer_id)[0]
    assert (c1["name"], c1["email"], c1["do_not_contact"]) == (
        "恒达",
        "ar@hengda.example.net",
        True,
    )
    i1 = rows(engine, invoices, invoices.c.invoice_id)[0]
    assert (i1["due_date"], i1["disputed"], i1["description"]) == (
        dt.date(2024, 2, 15),
        True,
        "2024年1月 货款",
    )


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        (
            "invoices.csv",
            "invoice_id,customer_id,issue_date,amount\nI1,C1,2024-01-01,5\n",
            "missing required column(s): due_date",
        ),
        ("invoices.csv", b"\xff\xfe\x00bad", "cannot decode the file as UTF-8"),
        ("invoices.csv", b"", "the file is empty"),
        ("invoices.csv", "Invoice_ID,INVOICE_ID\n1,2\n", "appear more than once"),
        ("invoices.json", "{}", "unsupported file type '.json'"),
        ("ledger.csv", "a,b\n1,2\n", "unrecognised file name"),
        ("payments.xlsx", b"PK\x03\x04 not really a workbook", "cannot open the file as an XLSX"),
        ("customers.parquet", b"PAR1 nope", "cannot open the file as Parquet"),
    ],
)
def test_files_refused_whole(ingest, engine, home, tmp_path, name, content, reason):
    inbox = home / "inbox"
    path = inbox / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    outcome = ingest.ingest(path)
    assert outcome.status == "rejected"
    assert reason in outcome.reason
    assert not path.exists()
    assert (home / "rejected" / "2024-03-01" / name).exists()
    (line,) = rejects(engine, tmp_path)
    assert (line["file"], line["row_number"], line["record_id"]) == (name, "", "")
    assert reason in line["reason"]
    if "missing required" in reason:
        assert line["column"] == "due_date"
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(invoices)).scalar() == 0
        assert not sa.inspect(conn).has_table("stg_ingest_invoices")


def test_a_failed_load_leaves_nothing_behind(ingest, engine, home, monkeypatch):
    inbox = home / "inbox"
    drop(inbox, "customers.csv", CUSTOMERS)
    real_merge = pipeline.Staging.merge

    def merge_then_crash(self, conn, file_id, defaults):
        real_merge(self, conn, file_id, defaults)
        raise OSError("disk full")

    monkeypatch.setattr(pipeline.Staging, "merge", merge_then_crash)
    with pytest.raises(OSError, match="disk full"):
        ingest.ingest(inbox / "customers.csv")
    assert (inbox / "customers.csv").exists()  # still waiting in the inbox
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(customers)).scalar() == 0
        assert conn.execute(sa.select(sa.func.count()).select_from(ingested_files)).scalar() == 0
        assert conn.execute(sa.select(sa.func.count()).select_from(quarantined_rows)).scalar() == 0
    monkeypatch.undo()
    assert ingest.ingest(inbox / "customers.csv").rows_loaded == 2  # the retry loads it once


def test_great_expectations_is_the_gate_before_the_merge(ingest, engine, home, monkeypatch):
    from receivables.ingest import rules

    real = rules.parse_amount

    def lenient(values, column):  # a row check that forgot "> 0"
        parsed = real(values, column)
        parsed.failures = [f for f in parsed.failures if f[1] != rules.REASON_AMOUNT_POSITIVE]
        return parsed

    monkeypatch.setitem(rules.PARSERS, "amount", lenient)
    inbox = home / "inbox"
    drop(inbox, "customers.csv", CUSTOMERS)
    ingest.ingest(inbox / "customers.csv")
    drop(inbox, "invoices.csv", INVOICES + "I9,C1,2024-02-01,2024-03-01,-5,,,\n")
    outcome = ingest.ingest(inbox / "invoices.csv")
    assert outcome.status == "rejected"
    assert "invoices_staged failed" in outcome.reason
    assert "expect_column_values_to_be_between(column=amount_cents" in outcome.reason
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(invoices)).scalar() == 0
    assert (home / "gx" / "uncommitted" / "data_docs" / "local_site" / "index.html").exists()


def test_every_format_and_encoding_loads_the_same(ingest, engine, home):
    import openpyxl
    import pyarrow as pa
    import pyarrow.parquet as pq

    inbox = home / "inbox"
    drop(inbox, "customers.csv", CUSTOMERS, encoding="gb18030")
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.append(["Invoice_ID", "customer_id", "issue_date", "due_date", "amount"])
    sheet.append(["I1", "C1", dt.datetime(2024, 1, 1), dt.date(2024, 1, 31), 1000])
    sheet.append(["I2", "C2", "2024-01-15", "2024-02-14", 250.5])
    workbook.save(inbox / "invoices.xlsx")
    pq.write_table(
        pa.table(
            {
                "payment_id": ["P1"],
                "invoice_id": ["I1"],
                "paid_date": pa.array([dt.date(2024, 2, 1)], pa.date32()),
                "amount": pa.array([Decimal("400.00")], pa.decimal128(18, 2)),
            }
        ),
        inbox / "payments.parquet",
    )
    outcomes = load_all(ingest, inbox)
    assert [(o.status, o.rows_loaded) for o in outcomes] == [
        ("loaded", 2),
        ("loaded", 2),
        ("loaded", 1),
    ]
    assert rows(engine, customers, customers.c.customer_id)[0]["name"] == "恒达贸易有限公司"
    inv = rows(engine, invoices, invoices.c.invoice_id)
    assert [(i["amount"], i["due_date"]) for i in inv] == [
        (Decimal("1000.00"), dt.date(2024, 1, 31)),
        (Decimal("250.50"), dt.date(2024, 2, 14)),
    ]
    assert rows(engine, payments, payments.c.payment_id)[0]["amount"] == Decimal("400.00")
    with engine.connect() as conn:
        formats = conn.execute(
            sa.select(ingested_files.c.file_format, ingested_files.c.encoding).order_by(
                ingested_files.c.file_id
            )
        ).all()
    assert [tuple(f) for f in formats] == [("csv", "gb18030"), ("xlsx", None), ("parquet", None)]


def test_discover_orders_kinds_and_leaves_later_kinds_waiting(tmp_path):
    for name in (
        "payments_b.csv",
        "invoices.csv",
        "Customers.CSV",
        "payments_a.csv",
        "fx_rates_2024.csv",
        ".hidden.csv",
        "~$invoices.xlsx",
        "notes.txt",
        "invoices.csv.part",
    ):
        (tmp_path / name).write_text("x")
    found = discover(tmp_path)
    names = {k: [Path(p).name for p in v] for k, v in found.by_kind.items()}
    assert names == {
        "collectors": [],
        "customers": ["Customers.CSV"],
        "invoices": ["invoices.csv"],
        "payments": ["payments_a.csv", "payments_b.csv"],
    }
    assert [Path(p).name for p in found.unrecognised] == ["notes.txt"]
    assert [Path(p).name for p in found.waiting] == ["fx_rates_2024.csv"]
    with pytest.raises(FileNotFoundError, match="RECEIVABLES_INBOX"):
        discover(tmp_path / "missing")
