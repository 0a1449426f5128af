"""The per-file ingest (docs/contract.md §3) on SQLite and PostgreSQL, without Airflow.

Every kind of refusal has a test here: whole files (unreadable, wrong name, missing column,
already loaded, failing the GX suite) and rows (bad values, repeated ids, unknown references,
overpayments). Good rows always load; counts always reconcile; nothing is silently dropped.
"""

from __future__ import annotations

import datetime as dt
import errno
import json
import os
import shutil
import socket
import stat
import tempfile
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pytest
import sqlalchemy as sa

from receivables.config import Settings
from receivables.ingest import pipeline
from receivables.ingest.kinds import ordered_kinds
from receivables.ingest.names import path_from_token, path_token
from receivables.ingest.pipeline import FileIngest, discover, sha256_of
from receivables.text import has_unsafe_characters
from receivables.warehouse.schema import (
    customers,
    ingested_files,
    invoices,
    payments,
    quarantined_rows,
)
from tests.helpers import INGEST_AS_OF, drop, exported, rows

AS_OF = INGEST_AS_OF

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


def load_all(ingest, inbox):
    found = discover(inbox)
    outcomes = []
    for paths in found.by_kind.values():
        outcomes += [ingest.ingest(Path(p)) for p in paths]
    outcomes += [ingest.ingest(Path(p)) for p in found.unrecognised]
    return outcomes


def rejects(engine, tmp_path) -> list[dict]:
    return exported(engine, "rejects", tmp_path)[0]


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
        ("invoices.csv", b"\xff\xfe\x00bad", "UTF-8"),  # not a text encoding it reads
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
    assert staging_left(engine) == []


def staging_left(engine) -> list[str]:
    inspector = sa.inspect(engine)
    names = inspector.get_table_names() + inspector.get_view_names()
    return sorted(n for n in names if n.startswith("stg_ingest"))


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


def test_discover_orders_kinds(tmp_path):
    for name in (
        "payments_b.csv",
        "invoices.csv",
        "Customers.CSV",
        "payments_a.csv",
        "legal_updates_2024.csv",
        ".hidden.csv",
        "~$invoices.xlsx",
        "notes.txt",
        "invoices.csv.part",
    ):
        (tmp_path / name).write_text("x")
    found = discover(tmp_path)
    names = {k: [Path(p).name for p in v] for k, v in found.by_kind.items() if v}
    assert list(found.by_kind) == [k.name for k in ordered_kinds()]
    assert names == {
        "customers": ["Customers.CSV"],
        "invoices": ["invoices.csv"],
        "payments": ["payments_a.csv", "payments_b.csv"],
        "legal_updates": ["legal_updates_2024.csv"],
    }
    assert [Path(p).name for p in found.unrecognised] == ["notes.txt"]
    assert found.waiting == []
    with pytest.raises(FileNotFoundError, match="RECEIVABLES_INBOX"):
        discover(tmp_path / "missing")


# -- any name, any entry type ------------------------------------------------------------------


def customers_file(customer_id: str) -> str:
    return f"customer_id,name\n{customer_id},Customer {customer_id}\n"


def drop_named(inbox: Path, name: str | bytes, text: str) -> bytes:
    """Write a file under a name as the file system takes it (bytes need not be UTF-8)."""
    raw = os.path.join(os.fsencode(inbox), name if isinstance(name, bytes) else os.fsencode(name))
    with open(raw, "wb") as f:
        f.write(text.encode("utf-8"))
    return raw


LONG_ASCII = "customers_" + "x" * 241 + ".csv"  # 255 bytes: the longest name Linux allows
LONG_CHINESE = "customers_" + "发" * 80 + ".csv"  # 254 bytes
LONG_UNDECODABLE = b"customers_" + b"\xff" * 241 + b".csv"
WEIRD_NAMES: list[tuple[str | bytes, str, str | None]] = [
    # (name as dropped, expected status, expected ingested_files.file_name; None: see test)
    ("customers\\back\\slash.csv", "loaded", "customers\\back\\slash.csv"),
    ("customers with spaces.csv", "loaded", "customers with spaces.csv"),
    ("customers_caf\u00e9.csv", "loaded", "customers_caf\u00e9.csv"),  # NFC
    ("customers_cafe\u0301.csv", "loaded", "customers_cafe\u0301.csv"),  # NFD: another file
    ("customers_a\nb.csv", "loaded", "customers_a\\x0ab.csv"),
    ("customers_\u202egpj.csv", "loaded", "customers_\\u202egpj.csv"),
    (b"customers_\xff\xfe.csv", "loaded", "customers_\\xff\\xfe.csv"),
    (LONG_ASCII, "loaded", LONG_ASCII),
    (LONG_CHINESE, "loaded", LONG_CHINESE),
    (LONG_UNDECODABLE, "loaded", None),
    ("customers_trailing.csv ", "rejected", "customers_trailing.csv "),  # extension ".csv "
    (" customers_leading.csv", "rejected", " customers_leading.csv"),  # no known prefix
    ("-customers.csv", "rejected", "-customers.csv"),
]


def test_any_file_name_is_loaded_or_refused_on_its_own(ingest, engine, home, tmp_path):
    inbox = home / "inbox"
    for number, (name, _, _) in enumerate(WEIRD_NAMES):
        drop_named(inbox, name, customers_file(f"C{number}"))
    found = discover(inbox)
    tokens = [*found.by_kind["customers"], *found.unrecognised]
    assert len(tokens) == len(WEIRD_NAMES)
    # a mapped task gets its path through XCom: strict UTF-8 JSON must carry it unchanged
    carried = json.loads(json.dumps(tokens, ensure_ascii=False).encode("utf-8"))
    assert carried == tokens
    outcomes = [ingest.ingest(token) for token in carried]

    assert list(inbox.iterdir()) == []
    with engine.connect() as conn:
        recorded = conn.execute(
            sa.select(
                ingested_files.c.file_name, ingested_files.c.status, ingested_files.c.rows_loaded
            )
        ).all()
    assert len(recorded) == len(WEIRD_NAMES)
    by_name = {r.file_name: (r.status, r.rows_loaded) for r in recorded}
    for _, status, stored in WEIRD_NAMES:
        if stored is not None:
            assert by_name.get(stored) == (status, 1 if status == "loaded" else 0), stored
    (cut,) = [n for n in by_name if n.startswith("customers_\\xff\\xff")]
    assert len(cut) <= 255
    assert cut.endswith("… (255 characters)")
    for outcome in outcomes:
        # outcomes travel through XCom too: valid text, one line
        assert "\n" not in outcome.file
        json.dumps(outcome.as_dict(), ensure_ascii=False).encode("utf-8")
        assert Path(outcome.stored_path).exists()
    kept = [p for folder in ("archive", "rejected") for p in (home / folder).rglob("*")]
    assert len([p for p in kept if p.is_file()]) == len(WEIRD_NAMES) + 3  # + 3 reason files
    for path in kept:
        assert len(os.fsencode(path.name)) <= 255
        assert path.name == path.name.strip(" .")
        assert not any(c in path.name for c in "\n\\\u202e")
        path.name.encode("utf-8")  # no undecodable bytes
    # (the export may defuse a cell that a spreadsheet would take for a formula: "'-…")
    refused = {r["file"].removeprefix("'"): r["reason"] for r in rejects(engine, tmp_path)}
    assert set(refused) == {"customers_trailing.csv ", " customers_leading.csv", "-customers.csv"}
    assert "unsupported file type '.csv '" in refused["customers_trailing.csv "]
    assert "unrecognised file name" in refused[" customers_leading.csv"]
    assert (home / "rejected" / "2024-03-01" / "customers_trailing.csv").exists()
    assert (home / "rejected" / "2024-03-01" / "_customers.csv").exists()
    # Great Expectations named its results by a safe id, so every one of them was written
    for path in (home / "gx").rglob("*"):
        assert len(os.fsencode(path.name)) <= 255
    assert discover(inbox).by_kind["customers"] == []


def test_a_path_token_round_trips_any_name(tmp_path):
    for name in (b"invoices_\xff.csv", b"plain.csv", "发票 2024.csv".encode(), b"a\nb"):
        path = Path(os.fsdecode(os.path.join(os.fsencode(tmp_path), name)))
        token = path_token(path)
        token.encode("utf-8")
        assert path_from_token(token) == path
    assert path_token(tmp_path / "plain.csv") == str(tmp_path / "plain.csv")


@pytest.fixture
def outside(tmp_path) -> Path:
    """A good customers file outside the inbox, that no link may make the ingest read."""
    target = tmp_path / "outside.csv"
    target.write_text(customers_file("SECRET"), encoding="utf-8")
    return target


def test_links_pipes_sockets_devices_are_refused_without_being_opened(
    ingest, engine, home, tmp_path, outside, caplog
):
    inbox = home / "inbox"
    (inbox / "customers_link.csv").symlink_to(outside)
    (inbox / "customers_dangling.csv").symlink_to(tmp_path / "nowhere.csv")
    os.mkfifo(inbox / "customers_pipe.csv")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(inbox / "customers_socket.csv"))
    entries = {
        "customers_link.csv": ("a symbolic link", stat.S_ISLNK),
        "customers_dangling.csv": ("a symbolic link", stat.S_ISLNK),
        "customers_pipe.csv": ("a named pipe (FIFO)", stat.S_ISFIFO),
        "customers_socket.csv": ("a socket", stat.S_ISSOCK),
    }
    try:
        os.mknod(inbox / "customers_device.csv", 0o600 | stat.S_IFCHR, os.makedev(1, 3))
        entries["customers_device.csv"] = ("a character device", stat.S_ISCHR)
    except PermissionError:  # no CAP_MKNOD here: the other entries still cover the rule
        pass
    (inbox / "customers_folder").mkdir()
    (inbox / "customers_folder" / "customers.csv").write_text(customers_file("INNER"))
    drop(inbox, "customers.csv", CUSTOMERS)

    caplog.set_level("INFO", logger="receivables.ingest.pipeline")
    found = discover(inbox)
    names = sorted(Path(p).name for p in found.by_kind["customers"])
    assert names == sorted([*entries, "customers.csv"])  # the folder is not listed
    assert "customers_folder: a folder in the inbox; not read" in caplog.text
    outcomes = {Path(p).name: ingest.ingest(p) for p in found.by_kind["customers"]}
    server.close()

    assert outcomes["customers.csv"].status == "loaded"  # the others never stopped it
    for name, (what, is_type) in entries.items():
        outcome = outcomes[name]
        assert outcome.status == "rejected", name
        assert outcome.reason == (
            f"{what}: files are read only when they are regular files in the inbox"
        )
        moved = home / "rejected" / "2024-03-01" / name
        assert is_type(os.lstat(moved).st_mode), name  # renamed as it was, never copied
        assert not os.path.lexists(inbox / name)
    assert outside.read_text(encoding="utf-8") == customers_file("SECRET")
    assert [r["customer_id"] for r in rows(engine, customers, customers.c.customer_id)] == [
        "C1",
        "C2",
    ]
    assert (inbox / "customers_folder" / "customers.csv").exists()  # left alone
    # nothing is refused again: the next run finds only the folder
    assert discover(inbox).by_kind["customers"] == []


@pytest.fixture
def other_file_system(tmp_path, monkeypatch):
    """An inbox on another file system than RECEIVABLES_HOME (a rename cannot cross it)."""
    shm = Path("/dev/shm")
    if not shm.is_dir() or os.stat(shm).st_dev == os.stat(tmp_path).st_dev:
        pytest.skip("needs /dev/shm on a file system of its own")
    inbox = Path(tempfile.mkdtemp(prefix="receivables-inbox-", dir=shm))
    monkeypatch.setenv("RECEIVABLES_INBOX", str(inbox))
    yield inbox
    shutil.rmtree(inbox, ignore_errors=True)


def test_an_entry_that_cannot_be_moved_is_refused_once_and_left(
    home, engine, tmp_path, other_file_system
):
    inbox = other_file_system
    os.mkfifo(inbox / "payments_pipe.csv")
    drop(inbox, "notes.txt", "not a ledger")
    drop(inbox, "customers.csv", CUSTOMERS)
    first = FileIngest(engine, Settings.from_env(), AS_OF, "run-1")
    outcomes = {Path(p).name: first.ingest(p) for p in discover_all(inbox)}
    pipe = outcomes["payments_pipe.csv"]
    assert pipe.status == "rejected"
    assert "a named pipe (FIFO)" in pipe.reason
    assert "left in the inbox: cannot move it" in pipe.reason
    assert stat.S_ISFIFO(os.lstat(inbox / "payments_pipe.csv").st_mode)
    # regular files cross file systems by copy: refused and loaded ones leave the inbox
    assert outcomes["notes.txt"].status == "rejected"
    assert outcomes["customers.csv"].status == "loaded"
    assert sorted(p.name for p in inbox.iterdir()) == ["payments_pipe.csv"]
    assert (home / "rejected" / "2024-03-01" / "notes.txt").read_text() == "not a ledger"

    second = FileIngest(engine, Settings.from_env(), AS_OF, "run-2")
    (again,) = [second.ingest(p) for p in discover_all(inbox)]
    assert again.status == "skipped"
    assert "cannot be moved out of the inbox: remove it" in again.reason
    refused = [r["file"] for r in rejects(engine, tmp_path)]
    assert refused.count("payments_pipe.csv") == 1


def discover_all(inbox: Path) -> list[str]:
    found = discover(inbox)
    return [p for paths in found.by_kind.values() for p in paths] + found.unrecognised


def test_a_file_that_cannot_be_read_is_refused_with_the_reason(ingest, engine, home, monkeypatch):
    inbox = home / "inbox"
    locked = drop(inbox, "customers_locked.csv", CUSTOMERS)
    locked.chmod(0)
    if os.geteuid() == 0:
        # root reads anything: answer as the kernel answers any other user
        real_open = os.open

        def as_a_user(path, flags, *args, **kwargs):
            if Path(os.fsdecode(path)) == locked:
                raise PermissionError(errno.EACCES, "Permission denied", str(path))
            return real_open(path, flags, *args, **kwargs)

        monkeypatch.setattr(pipeline.os, "open", as_a_user)
    drop(inbox, "invoices.csv", INVOICES)
    outcome = ingest.ingest(locked)
    assert outcome.status == "rejected"
    assert outcome.reason.startswith("cannot read the file: permission denied (the ingest runs as")
    assert (home / "rejected" / "2024-03-01" / "customers_locked.csv").exists()
    assert ingest.ingest(inbox / "invoices.csv").status == "loaded"  # the day goes on


def test_a_garbage_header_is_quoted_only_as_a_short_escaped_excerpt(ingest, engine, home):
    inbox = home / "inbox"
    garbage = ",".join(f"col\x1b[31m{n}\u202e" for n in range(2000))
    drop(inbox, "invoices.csv", garbage + "\n" + ",".join("x" * 2000) + "\n")
    outcome = ingest.ingest(inbox / "invoices.csv")
    assert outcome.status == "rejected"
    assert outcome.reason.startswith("missing required column(s): invoice_id")
    assert "the file has 2000 column(s): col\\x1b[31m0\\u202e, " in outcome.reason
    assert len(outcome.reason) < 600
    assert not has_unsafe_characters(outcome.reason)
    with engine.connect() as conn:
        stored = conn.execute(sa.select(ingested_files.c.reason)).scalar_one()
    assert stored == outcome.reason


def test_a_file_already_loaded_by_another_run_is_skipped_not_counted_twice(engine, home):
    inbox = home / "inbox"
    drop(inbox, "customers.csv", CUSTOMERS)
    first = FileIngest(engine, Settings.from_env(), AS_OF, "run-1")
    loaded = first.ingest(inbox / "customers.csv")
    # run-1 committed, then died before archiving; run-2 finds the file in the inbox
    Path(loaded.stored_path).rename(inbox / "customers.csv")
    second = FileIngest(engine, Settings.from_env(), AS_OF, "run-2")
    outcome = second.ingest(inbox / "customers.csv")
    assert (outcome.status, outcome.rows_read, outcome.rows_loaded) == ("skipped", 0, 0)
    assert f"already loaded as file {loaded.file_id} by run run-1" in outcome.reason
    assert Path(loaded.stored_path).exists()
    assert not (inbox / "customers.csv").exists()
    # a file another run took away from the inbox is skipped as well
    vanished = second.ingest(inbox / "customers.csv")
    assert vanished.status == "skipped"
    assert "no longer in the inbox" in vanished.reason
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(ingested_files)).scalar() == 1


def test_a_file_that_changes_while_it_is_read_is_left_for_the_next_run(
    ingest, engine, home, monkeypatch
):
    inbox = home / "inbox"
    drop(inbox, "customers.csv", CUSTOMERS)
    real_open = pipeline.open_ledger_file

    def open_while_the_sender_still_writes(path, *args):
        ledger = real_open(path, *args)
        with path.open("a", encoding="utf-8") as f:
            f.write("C3,Late Ltd\n")
        return ledger

    monkeypatch.setattr(pipeline, "open_ledger_file", open_while_the_sender_still_writes)
    outcome = ingest.ingest(inbox / "customers.csv")
    assert outcome.status == "skipped"
    assert "changed while it was being read" in outcome.reason
    assert (inbox / "customers.csv").exists()
    assert staging_left(engine) == []
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(ingested_files)).scalar() == 0
    monkeypatch.undo()
    assert ingest.ingest(inbox / "customers.csv").rows_read == 3


@pytest.mark.timeout(120)
def test_the_staging_loader_raises_when_its_commit_fails(engine):
    """A failure at COMMIT (here a deferred foreign key) must reach close(), not hang it."""
    from receivables.ingest.kinds import KINDS
    from receivables.ingest.staging import Staging

    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE stg_parent (id INTEGER PRIMARY KEY)")
        conn.exec_driver_sql(
            "CREATE TABLE stg_deferred (row_number INTEGER NOT NULL REFERENCES stg_parent (id) "
            "DEFERRABLE INITIALLY DEFERRED, held BOOLEAN NOT NULL)"
        )
    staging = Staging(engine, KINDS["customers"])
    staging.name = "stg_deferred"
    loader = staging.loader()
    loader.put(pa.table({"row_number": [1, 2], "held": [False, False]}))
    with pytest.raises(sa.exc.IntegrityError):
        loader.close()
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT COUNT(*) FROM stg_deferred").scalar() == 0
