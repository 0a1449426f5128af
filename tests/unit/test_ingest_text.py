"""Hostile text and extreme amounts through the real per-file ingest, on SQLite and PostgreSQL.

A NUL, another control character, a Unicode line separator or a bidirectional override in any
text-bearing value quarantines its row with a reason that names the character escaped; the
file's good rows load, the following files of the day load, and nothing raw reaches the
warehouse, the quarantine or the rejects export. Amounts load up to what the warehouse holds,
exactly, and anything beyond or malformed is quarantined with a reason, never a crash.
"""

from __future__ import annotations

import re
from decimal import Decimal

import sqlalchemy as sa

from receivables.text import BIDI_CONTROLS, CONTROL_CHARACTERS, LINE_SEPARATORS
from receivables.warehouse.schema import customers, invoices, payments, quarantined_rows
from tests.helpers import INGEST_AS_OF, drop, exported, rows

AS_OF = INGEST_AS_OF
UNSAFE = re.compile(f"[{CONTROL_CHARACTERS}{BIDI_CONTROLS}{LINE_SEPARATORS}]")


def quarantined(engine, file_id: int) -> dict[tuple[int, str | None], dict]:
    """A file's quarantined rows by (row number, column), as the warehouse holds them."""
    found = {}
    for row in rows(engine, quarantined_rows, quarantined_rows.c.quarantine_id):
        if row["file_id"] == file_id:
            found[(row["row_number"], row["column_name"])] = row
    return found


def rejects(engine, tmp_path) -> tuple[list[dict], str]:
    """The rejects export: its rows and its whole text."""
    return exported(engine, "rejects", tmp_path)


def assert_no_raw_text(exported: list[dict], text: str) -> None:
    """No cell of the export holds a raw control character: one line per row, no forged
    ones."""
    for row in exported:
        for value in row.values():
            assert not UNSAFE.search(value), row
    assert len(text.splitlines()) == len(exported) + 1


CUSTOMERS = (
    "customer_id,name,email,phone,segment,currency\n"
    "C1,Acme Ltd,ap@acme.example.com,+86 21 5555 0101,wholesale,CNY\n"
    "C2,A\x00B Trading,,,,\n"  # NUL: PostgreSQL cannot even store it
    '"C3","Acme\r\nBcc: victim@example.com",,,,\n'  # a quoted line break forging an email line
    "C4,\u202eLtd Evil,,,,\n"  # right-to-left override: reads reversed
    "C5,Phone Co,,+86\x85 21,,\n"  # C1 control
    "C6,Segment Co,,,whole\u2028sale,\n"  # line separator
    "C7,Mail Co,ap\x7f@mail.example.com,,,\n"  # DEL in an email list
    "C8,Good Co,,,,usd\n"
    "C9,First Copy,,,,\n"
    "C9,Second\x00Copy,,,,\n"  # a repeated id: both copies held, the broken one included
    "C\x0010,Id Co,,,,\n"  # NUL in the id itself
    "C11,Tab\tis fine,,,,cny\n"
    "C12,Code Co,,,,U\u2066SD\n"  # bidi isolate in a code
)
INVOICES = (
    "invoice_id,customer_id,issue_date,due_date,amount,description\n"
    'I1,C1,2024-01-01,2024-01-31,100.00,"two lines:\r\nfirst\tand second"\n'
    "I2,C1,2024-01-01,2024-01-31,100.00,x\x00y\n"
    "I3,C8,2024-01-01,2024-01-31,100.00,\u202egnp.exe\n"
    "I4,C8,2024-01-01,2024-01-31,100.00,page\x0cbreak\n"
    "I5,C8,2024-01-01,2024-01-31,\x00100,\n"
    "I6,C11,2024-01-01\x00,2024-01-31,100.00,\n"
    "I7,C8,2024-01-01,2024-01-31,250.00,plain\n"
)
PAYMENTS = (
    "payment_id,invoice_id,paid_date,amount,method\n"
    "P1,I1,2024-02-01,40,ca\u2029rd\n"  # (at the end it would be trimmed as white space)
    "P2,I1,2024-02-02,60,bank\n"
)


def test_control_characters_are_quarantined_and_the_day_goes_on(ingest, engine, home, tmp_path):
    inbox = home / "inbox"
    outcomes = [
        ingest.ingest(drop(inbox, name, text))
        for name, text in (
            ("customers.csv", CUSTOMERS),
            ("invoices.csv", INVOICES),
            ("payments.csv", PAYMENTS),
        )
    ]
    counts = [(o.file, o.status, o.rows_read, o.rows_loaded, o.rows_quarantined) for o in outcomes]
    assert counts == [
        ("customers.csv", "loaded", 13, 3, 10),
        ("invoices.csv", "loaded", 7, 2, 5),
        ("payments.csv", "loaded", 2, 1, 1),
    ]
    assert [c["customer_id"] for c in rows(engine, customers, customers.c.customer_id)] == [
        "C1",
        "C11",
        "C8",
    ]
    good = rows(engine, invoices, invoices.c.invoice_id)
    assert [(i["invoice_id"], i["description"]) for i in good] == [
        ("I1", "two lines:\r\nfirst\tand second"),  # a multi-line description is kept whole
        ("I7", "plain"),
    ]
    assert rows(engine, customers, customers.c.customer_id)[1]["name"] == "Tab\tis fine"
    assert [p["payment_id"] for p in rows(engine, payments, payments.c.payment_id)] == ["P2"]

    nul = "contains a control character (\\x00) at position {}: remove it"
    found = quarantined(engine, outcomes[0].file_id)
    assert {key: (row["value"], row["reason"]) for key, row in found.items()}.items() >= {
        (2, "name"): ("A\\x00B Trading", nul.format(2)),
        (3, "name"): (
            "Acme\\x0d\\x0aBcc: victim@example.com",
            "contains a line break (\\x0d) at position 5: remove it",
        ),
        (4, "name"): (
            "\\u202eLtd Evil",
            "contains a bidirectional control character (\\u202e) at position 1: remove it",
        ),
        (5, "phone"): (
            "+86\\x85 21",
            "contains a control character (\\x85) at position 4: remove it",
        ),
        (6, "segment"): (
            "whole\\u2028sale",
            "contains a line or paragraph separator (\\u2028) at position 6: remove it",
        ),
        (7, "email"): (
            "ap\\x7f@mail.example.com",
            "contains a control character (\\x7f) at position 3: remove it",
        ),
        (10, "name"): ("Second\\x00Copy", nul.format(7)),
        (11, "customer_id"): ("C\\x0010", nul.format(2)),
        (13, "currency"): (
            "U\\u2066SD",
            "contains a bidirectional control character (\\u2066) at position 2: remove it",
        ),
    }.items()
    for row_number in (9, 10):  # the repeated id is found although one copy is broken
        assert found[(row_number, "customer_id")]["reason"] == (
            "customer_id appears 2 times in this file; every copy is held back"
        )
    assert found[(11, "customer_id")]["record_id"] == "C\\x0010"
    invoice_problems = {
        key: row["reason"] for key, row in quarantined(engine, outcomes[1].file_id).items()
    }
    assert invoice_problems == {
        (2, "description"): nul.format(2),
        (3, "description"): (
            "contains a bidirectional control character (\\u202e) at position 1: remove it"
        ),
        (4, "description"): "contains a control character (\\x0c) at position 5: remove it",
        (5, "amount"): nul.format(1),
        (6, "issue_date"): nul.format(11),
    }
    # nothing raw anywhere in the quarantine, and the export shows the escaped values
    for row in found.values():
        for text in (row["record_id"], row["value"], row["reason"]):
            assert text is None or not UNSAFE.search(text), row
    exported, text = rejects(engine, tmp_path)
    assert_no_raw_text(exported, text)
    shown = {(r["file"], r["row_number"], r["column"]): r for r in exported}
    assert shown[("customers.csv", "2", "name")]["value"] == "A\\x00B Trading"
    assert shown[("customers.csv", "4", "name")]["reason"] == (
        "contains a bidirectional control character (\\u202e) at position 1: remove it"
    )
    assert shown[("invoices.csv", "2", "description")]["value"] == "x\\x00y"
    assert shown[("payments.csv", "1", "method")]["value"] == "ca\\u2029rd"


def test_nul_in_a_parquet_string_column_is_quarantined(ingest, engine, home, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    inbox = home / "inbox"
    pq.write_table(
        pa.table(
            {
                "customer_id": ["C1", "C\x002", "C3", "C4"],
                "name": ["Acme", "Evil\x00Co", "Beta", "\u202eGamma"],
                "credit_limit": pa.array(
                    [Decimal("10.00"), None, None, None], pa.decimal128(18, 2)
                ),
            }
        ),
        inbox / "customers.parquet",
    )
    loaded = ingest.ingest(inbox / "customers.parquet")
    assert (loaded.status, loaded.rows_loaded, loaded.rows_quarantined) == ("loaded", 2, 2)
    assert [c["customer_id"] for c in rows(engine, customers, customers.c.customer_id)] == [
        "C1",
        "C3",
    ]
    found = quarantined(engine, loaded.file_id)
    assert (found[(2, "customer_id")]["record_id"], found[(2, "name")]["value"]) == (
        "C\\x002",
        "Evil\\x00Co",
    )
    assert found[(4, "name")]["reason"].startswith("contains a bidirectional control character")
    # the next file of the day still loads
    drop(
        inbox,
        "invoices.csv",
        "invoice_id,customer_id,issue_date,due_date,amount\nI1,C1,2024-01-01,2024-01-31,5\n",
    )
    assert ingest.ingest(inbox / "invoices.csv").rows_loaded == 1
    exported, text = rejects(engine, tmp_path)
    assert_no_raw_text(exported, text)
    assert {r["value"] for r in exported} >= {"C\\x002", "Evil\\x00Co", "\\u202eGamma"}


def test_line_breaks_and_overrides_in_an_xlsx_are_quarantined(ingest, engine, home):
    import openpyxl

    inbox = home / "inbox"
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.append(["customer_id", "name", "segment"])
    sheet.append(["C1", "Acme", "retail"])
    sheet.append(["C2", "Acme\nBcc: x@evil.example", "retail"])
    sheet.append(["C3", "Beta", "re\u202etail"])
    workbook.save(inbox / "customers.xlsx")
    outcome = ingest.ingest(inbox / "customers.xlsx")
    assert (outcome.rows_loaded, outcome.rows_quarantined) == (1, 2)
    found = quarantined(engine, outcome.file_id)
    assert found[(2, "name")]["value"] == "Acme\\x0aBcc: x@evil.example"
    assert found[(3, "segment")]["reason"] == (
        "contains a bidirectional control character (\\u202e) at position 3: remove it"
    )


# --- amounts up to what the warehouse holds --------------------------------------------------

LARGEST = "9,999,999,999,999.99"
ONE_CENT_MORE = "10,000,000,000,000.00"


def test_largest_amounts_load_exactly_and_one_cent_more_is_quarantined(
    ingest, engine, home, tmp_path
):
    inbox = home / "inbox"
    drop(
        inbox,
        "customers.csv",
        "customer_id,name,credit_limit\n"
        f'C1,Max,"{LARGEST}"\n'
        f'C2,Over,"{ONE_CENT_MORE}"\n'
        "C3,Exponent,1e20\n"
        "C4,Wide,１２３\n"
        "C5,Zero,0\n",
    )
    drop(
        inbox,
        "invoices.csv",
        "invoice_id,customer_id,issue_date,due_date,amount\n"
        f'I1,C1,2024-01-01,2024-01-31,"{LARGEST}"\n'
        "I2,C1,2024-01-01,2024-01-31,10000000000000.00\n"
        "I3,C1,2024-01-01,2024-01-31,12.3.4\n"
        "I4,C1,2024-01-01,2024-01-31,--5\n"
        'I5,C1,2024-01-01,2024-01-31," 5 "\n'  # spaces are trimmed: it loads as 5.00
        'I6,C1,2024-01-01,2024-01-31,"5,00"\n'
        "I7,C1,2024-01-01,2024-01-31,NaN\n"
        "I8,C1,2024-01-01,2024-01-31,1e20\n"
        "I9,C1,2024-01-01,2024-01-31,１２３\n"
        f"I10,C1,2024-01-01,2024-01-31,{'9' * 40}\n",
    )
    drop(
        inbox,
        "payments.csv",
        "payment_id,invoice_id,paid_date,amount\n"
        f'P1,I1,2024-02-01,"{LARGEST}"\n'  # settles the largest invoice exactly
        "P2,I1,2024-02-02,0.01\n"  # one cent more than the invoice
        f'P3,I5,2024-02-02,"{ONE_CENT_MORE}"\n',
    )
    outcomes = [
        ingest.ingest(inbox / name) for name in ("customers.csv", "invoices.csv", "payments.csv")
    ]
    assert [(o.status, o.rows_loaded, o.rows_quarantined) for o in outcomes] == [
        ("loaded", 2, 3),
        ("loaded", 2, 8),
        ("loaded", 1, 2),
    ]
    largest = Decimal("9999999999999.99")
    loaded_customers = rows(engine, customers, customers.c.customer_id)
    assert [(c["customer_id"], c["credit_limit"]) for c in loaded_customers] == [
        ("C1", largest),
        ("C5", Decimal("0.00")),
    ]
    assert [
        (i["invoice_id"], i["amount"]) for i in rows(engine, invoices, invoices.c.invoice_id)
    ] == [
        ("I1", largest),
        ("I5", Decimal("5.00")),
    ]
    assert [
        (p["payment_id"], p["amount"]) for p in rows(engine, payments, payments.c.payment_id)
    ] == [("P1", largest)]
    with engine.connect() as conn:  # exact in SQL too, not only after conversion
        total = conn.execute(sa.select(sa.func.sum(invoices.c.amount))).scalar()
    assert Decimal(total) in (largest + Decimal("5.00"), (largest + 5) * 100)

    exported, _ = rejects(engine, tmp_path)
    reasons = {(r["file"], r["record_id"], r["column"]): r["reason"] for r in exported}
    too_large = "amount too large: at most 9,999,999,999,999.99"
    assert reasons[("customers.csv", "C2", "credit_limit")] == too_large
    assert reasons[("invoices.csv", "I2", "amount")] == too_large
    assert reasons[("invoices.csv", "I10", "amount")] == too_large
    assert reasons[("payments.csv", "P3", "amount")] == too_large
    for record_id in ("I3", "I4", "I7", "I8", "I9"):
        assert reasons[("invoices.csv", record_id, "amount")].startswith("not an amount:")
    assert reasons[("customers.csv", "C3", "credit_limit")].startswith("not an amount:")
    assert reasons[("customers.csv", "C4", "credit_limit")].startswith("not an amount:")
    assert "never decimals: write 5.00, not 5,00" in reasons[("invoices.csv", "I6", "amount")]
    assert reasons[("payments.csv", "P2", "amount")] == (
        "payments would exceed the invoice amount of 9999999999999.99 (0.00 paid before this "
        "file, 10000000000000.00 with this payment)"
    )
