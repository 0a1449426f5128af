"""CSV exports are safe to open in a spreadsheet, on SQLite and PostgreSQL.

Ledger text reaches the exports (refused values, file names, ids, names inside messages). A cell
a spreadsheet would evaluate as a formula is written with a leading ``'``; a plain number stays
a number; control and bidirectional characters are escaped so a value stays one cell on one
line; a very long value is cut and says how long it was. Numbers, dates and booleans the
warehouse holds as such are written as they are.
"""

from __future__ import annotations

import csv
import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from receivables.config import Settings
from receivables.exports import CELL_LIMIT, export, safe_cell, safe_cells
from receivables.ingest.pipeline import FileIngest
from receivables.text import has_unsafe_characters
from receivables.warehouse.schema import (
    aging_runs,
    aging_snapshots,
    credit_scores,
    ingested_files,
    quarantined_rows,
    risk_warnings,
)

AS_OF = dt.date(2024, 3, 1)
REJECTS_COLUMNS = [
    "file",
    "row_number",
    "record_id",
    "column",
    "value",
    "reason",
    "kind",
    "ingested_for",
]
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\uff1d", "\uff0b", "\uff0d", "\uff20")

HOSTILE_CUSTOMERS = (
    "customer_id,name,email,locale,timezone,currency,credit_limit,do_not_contact\n"
    'C1,Acme,ap@acme.example.com,"=HYPERLINK(""http://x"",""y"")",Europe/London,USD,-12.50,\n'
    "C2,Acme,ap@acme.example.com,en,@SUM(A1),USD,-2+3,\n"
    "C3,Acme,ap@acme.example.com,en,Europe/London,\"+cmd|' /C calc'!A0\",100,\n"
    "-2+3,,ap@acme.example.com,en,Europe/London,USD,100,\n"
)


def read_csv(path: Path) -> list[dict]:
    with path.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def physical_lines(path: Path) -> int:
    """Lines as a naive reader (or ``wc -l``) counts them: any raw line break counts."""
    return len(path.read_bytes().replace(b"\r\n", b"\n").split(b"\n")) - 1


def add_file(conn, name: str, status: str = "loaded", reason: str | None = None) -> int:
    now = dt.datetime.now(dt.UTC)
    return conn.execute(
        ingested_files.insert().returning(ingested_files.c.file_id),
        {
            "file_name": name,
            "kind": "customers",
            "sha256": "0" * 64,
            "size_bytes": 1,
            "status": status,
            "reason": reason,
            "as_of_date": AS_OF,
            "started_at": now,
            "finished_at": now,
        },
    ).scalar_one()


def test_rejects_of_a_hostile_file_are_inert_in_a_spreadsheet(engine, home, tmp_path):
    inbox = home / "inbox"
    (inbox / "customers.csv").write_text(HOSTILE_CUSTOMERS, encoding="utf-8")
    # a file name a spreadsheet would run: refused (unrecognised kind) and listed in the export
    hostile_name = '=HYPERLINK("http:\\\\evil","y").csv'
    (inbox / hostile_name).write_text("a,b\n1,2\n", encoding="utf-8")
    ingest = FileIngest(engine, Settings.from_env(), AS_OF, "test-run")
    assert ingest.ingest(inbox / "customers.csv").rows_quarantined == 4
    assert ingest.ingest(inbox / hostile_name).status == "rejected"

    out = tmp_path / "rejects.csv"
    written = export("rejects", engine, None, out)
    lines = read_csv(out)
    assert written == len(lines)
    assert list(lines[0]) == REJECTS_COLUMNS  # the contract's columns, in order
    found = {(r["row_number"], r["column"]): r for r in lines if r["file"] == "customers.csv"}
    assert found[("1", "locale")]["value"] == '\'=HYPERLINK("http://x","y")'
    assert found[("1", "credit_limit")]["value"] == "-12.50"  # a negative amount stays a number
    assert found[("1", "credit_limit")]["reason"] == "must not be negative"
    assert found[("2", "timezone")]["value"] == "'@SUM(A1)"
    assert found[("2", "credit_limit")]["value"] == "'-2+3"  # arithmetic is not a number
    assert found[("3", "currency")]["value"] == "'+cmd|' /C calc'!A0"
    assert found[("4", "name")]["record_id"] == "'-2+3"  # an id is ledger text too
    (refused,) = [r for r in lines if r["file"] != "customers.csv"]
    assert refused["file"] == "'" + hostile_name
    assert refused["ingested_for"] == "2024-03-01"  # a date we write is not touched
    for line in lines:
        for column, value in line.items():
            assert not value.startswith(FORMULA_STARTS) or value in ("-12.50",), (column, value)


def test_controls_are_escaped_and_long_values_cut(engine, tmp_path):
    long_value = "x" * 4_178
    values = {
        1: "evil\r\nPlease pay to account 123",
        2: "abc\u202edcba",
        3: "\x1b[31mred\x07",
        4: "\t=1+1",
        5: "\r=1+1",
        6: " =1+1",
        7: "\uff1dSUM(A1)",
        8: "-1e-3",
        9: "+3",
        10: "-0.5",
        11: "-1,000.00",
        12: long_value,
        13: "=" + "9" * CELL_LIMIT,
        14: "line\u2028separator",
        15: "-" + "1" * (CELL_LIMIT + 5),
        16: " \t@SUM(A1)",
    }
    if engine.dialect.name == "sqlite":  # PostgreSQL text cannot hold NUL at all
        values[17] = "nul\x00byte"
    with engine.begin() as conn:
        file_id = add_file(conn, "customers.csv")
        conn.execute(
            quarantined_rows.insert(),
            [
                {
                    "file_id": file_id,
                    "row_number": n,
                    "record_id": f"C{n}",
                    "column_name": "name",
                    "value": v,
                    "reason": "hostile",
                }
                for n, v in values.items()
            ],
        )
    out = tmp_path / "rejects.csv"
    assert export("rejects", engine, None, out) == len(values)
    assert physical_lines(out) == len(values) + 1  # one line per value, whatever it held
    got = {int(r["row_number"]): r["value"] for r in read_csv(out)}
    assert got[1] == "evil\\x0d\\x0aPlease pay to account 123"
    assert got[2] == "abc\\u202edcba"
    assert got[3] == "\\x1b[31mred\\x07"
    assert got[4] == "'\t=1+1"
    assert got[5] == "'\\x0d=1+1"
    assert got[6] == "' =1+1"
    assert got[7] == "'\uff1dSUM(A1)"
    assert [got[n] for n in (8, 9, 10, 11)] == ["-1e-3", "+3", "-0.5", "-1,000.00"]
    assert got[12] == "x" * CELL_LIMIT + "…[cut: 4,178 characters]"
    assert got[13] == "'=" + "9" * (CELL_LIMIT - 1) + f"…[cut: {CELL_LIMIT + 1:,} characters]"
    assert got[14] == "line\\u2028separator"
    # a number too long to keep whole is no longer a number once cut: it is quoted
    assert got[15].startswith("'-111")
    assert got[15].endswith(f"[cut: {CELL_LIMIT + 6:,} characters]")
    assert got[16] == "' \t@SUM(A1)"
    if 17 in values:
        assert got[17] == "nul\\x00byte"
    for value in got.values():
        assert not has_unsafe_characters(value)


def test_numbers_we_write_stay_numbers_and_text_is_made_safe(engine, tmp_path):
    with engine.begin() as conn:
        conn.execute(
            credit_scores.insert(),
            [
                {
                    "as_of_date": AS_OF,
                    "customer_id": "=1+1",
                    "model_id": 0,
                    "score": -12.5,
                    "pd": 0.25,
                    "grade": "E",
                    "reasons": "@SUM(A1) paid late\nPlease pay to account 123",
                }
            ],
        )
        conn.execute(
            risk_warnings.insert(),
            [
                {
                    "as_of_date": AS_OF,
                    "customer_id": "=1+1",
                    "kind": "over_credit_limit",
                    "severity": "high",
                    "message": "-2+3 over the limit of \u202eACME",
                    "action": "reduce_credit_limit",
                    "currency": "CNY",
                    "proposed_credit_limit": Decimal("0.00"),
                    "dunning_stage": None,
                }
            ],
        )
    scores = tmp_path / "scores.csv"
    assert export("scores", engine, AS_OF, scores) == 1
    (score,) = read_csv(scores)
    assert list(score)[:4] == ["customer_id", "score", "grade", "reasons"]
    assert score["customer_id"] == "'=1+1"
    assert score["score"] == "-12.5"  # a number of the warehouse: never quoted
    assert score["pd"] == "0.25"
    assert score["reasons"] == "'@SUM(A1) paid late\\x0aPlease pay to account 123"
    assert score["as_of_date"] == "2024-03-01"

    warnings = tmp_path / "warnings.csv"
    assert export("warnings", engine, AS_OF, warnings) == 1
    (warning,) = read_csv(warnings)
    assert list(warning)[:4] == ["customer_id", "kind", "severity", "message"]
    assert warning["customer_id"] == "'=1+1"
    assert warning["message"] == "'-2+3 over the limit of \\u202eACME"
    assert warning["proposed_credit_limit"] == "0.00"
    assert warning["dunning_stage"] == ""


def test_the_aging_export_writes_its_own_values_exactly(engine, tmp_path):
    # money, dates, integers and booleans are the warehouse's: written as they are, batch after
    # batch, and text beside them (ids from files) made safe
    rows = [
        {
            "as_of_date": AS_OF,
            "invoice_id": f"I{n:04d}" if n else "=I1",
            "customer_id": {0: "C3", 1: "-C1"}.get(n, "C2"),
            "currency": "CNY",
            "amount": Decimal("1234567.89") if n == 2 else Decimal("0.01"),
            "paid": Decimal("0.00"),
            "outstanding": Decimal("1234567.89") if n == 2 else Decimal("0.01"),
            "issue_date": dt.date(2023, 12, 1),
            "due_date": dt.date(2024, 1, 1) + dt.timedelta(days=n % 40),
            "days_past_due": 60 - n % 40,
            "bucket": "31-60",
            "risk_class": "special_mention",
            "disputed": n == 2,
        }
        for n in range(2_500)  # more than one batch of rows
    ]
    with engine.begin() as conn:
        conn.execute(
            aging_runs.insert(),
            {
                "as_of_date": AS_OF,
                "open_invoices": len(rows),
                "computed_at": dt.datetime.now(dt.UTC),
            },
        )
        conn.execute(aging_snapshots.insert(), rows)
    out = tmp_path / "aging.csv"
    assert export("aging", engine, AS_OF, out) == len(rows)
    lines = out.read_bytes().decode("utf-8").split("\r\n")
    assert lines[0] == (
        "as_of_date,invoice_id,customer_id,currency,amount,outstanding,due_date,days_past_due,"
        "bucket,risk_class,issue_date,paid,disputed"
    )
    assert lines[1:4] == [
        "2024-03-01,I0001,'-C1,CNY,0.01,0.01,2024-01-02,59,31-60,special_mention,2023-12-01,0.00,"
        "false",
        "2024-03-01,I0002,C2,CNY,1234567.89,1234567.89,2024-01-03,58,31-60,special_mention,"
        "2023-12-01,0.00,true",
        "2024-03-01,I0003,C2,CNY,0.01,0.01,2024-01-04,57,31-60,special_mention,2023-12-01,0.00,"
        "false",
    ]
    assert lines[-3].startswith("2024-03-01,I2499,C2,CNY,0.01,0.01,2024-01-20,41,")
    assert lines[-2] == (
        "2024-03-01,'=I1,C3,CNY,0.01,0.01,2024-01-01,60,31-60,special_mention,2023-12-01,0.00,false"
    )
    assert lines[-1] == ""
    assert len(lines) == len(rows) + 2


def test_a_refused_file_with_a_long_reason_is_one_cut_line(engine, tmp_path):
    reason = "@" + "bad header " * 500
    with engine.begin() as conn:
        add_file(conn, "-2+3.csv", status="rejected", reason=reason)
    out = tmp_path / "rejects.csv"
    assert export("rejects", engine, None, out) == 1
    (line,) = read_csv(out)
    assert line["file"] == "'-2+3.csv"
    assert line["row_number"] == line["value"] == ""
    assert line["reason"].startswith("'@bad header")
    assert line["reason"].endswith(f"…[cut: {len(reason):,} characters]")
    assert len(line["reason"]) < CELL_LIMIT + 40


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("-12.50", "-12.50"),
        ("+3", "+3"),
        ("-0.5", "-0.5"),
        ("-.5", "-.5"),
        ("-1E+5", "-1E+5"),
        ("-1,000", "-1,000"),
        ("-1,00", "'-1,00"),
        ("-2+3", "'-2+3"),
        ("- 5", "'- 5"),
        ("-5 ", "'-5 "),
        ("-", "'-"),
        ("-inf", "'-inf"),
        ("-٣", "'-٣"),  # not an ASCII digit: not a plain number to us
        ("1e-3", "1e-3"),
        ("a=b", "a=b"),
        ("", ""),
    ],
)
def test_what_counts_as_a_plain_number(value, expected):
    assert safe_cell(value) == expected


text_values = st.text(
    alphabet=st.sampled_from(
        list("=+-@ 0123456789.,eEab\t\r\n\x00\x1b\u202e\u2066\u2028\u00a0\u3000\uff1d\uff0d")
    ),
    max_size=12,
) | st.text(max_size=30)


@settings(max_examples=400, deadline=None)
@given(st.lists(st.none() | text_values, max_size=30))
def test_the_vectorised_column_agrees_with_each_cell(values):
    # the Arrow prefilter must never pass over a cell that safe_cell() would change
    assert safe_cells(values) == ["" if v is None else safe_cell(v) for v in values]


@settings(max_examples=400, deadline=None)
@given(text_values | st.text(min_size=CELL_LIMIT - 2, max_size=CELL_LIMIT + 3))
def test_a_safe_cell_is_never_a_formula_nor_several_lines(value):
    cell = safe_cell(value)
    assert not has_unsafe_characters(cell)
    if cell.lstrip(" \t\r\u00a0\u3000")[:1] in FORMULA_STARTS or cell[:1] in ("\t", "\r"):
        # only a plain number may start like that; everything else starts with the quote
        float(cell.replace(",", ""))
    assert len(cell) <= 6 * CELL_LIMIT + 40
