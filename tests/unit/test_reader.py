"""Unit tests of the ledger file reader (receivables.ingest.reader).

Every fixture file is written by the test itself in ``tmp_path``: CSV as raw bytes (so the
encoding is exact), XLSX with openpyxl, Parquet with pyarrow.
"""

from __future__ import annotations

import datetime as dt
import random
import re
import zipfile
from decimal import Decimal
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from openpyxl import Workbook

import receivables.ingest.reader as reader
from receivables.ingest.reader import (
    Batch,
    FileRefused,
    LedgerFile,
    cell_text,
    detect_encoding,
    normalise_header,
    open_ledger_file,
    read_all,
)

CHINESE_NAME = "恒达贸易有限公司"
CUSTOMERS_TEXT = (
    "customer_id,name,email,locale\n"
    f"C001,{CHINESE_NAME},a@x.example.com,zh-CN\n"
    "C002,上海锦程物流有限公司,,en\n"
    "C003,Acme Trading Ltd,b@y.example.com; c@y.example.com,\n"
)
CUSTOMERS_ROWS = [
    {"customer_id": "C001", "name": CHINESE_NAME, "email": "a@x.example.com", "locale": "zh-CN"},
    {"customer_id": "C002", "name": "上海锦程物流有限公司", "email": None, "locale": "en"},
    {
        "customer_id": "C003",
        "name": "Acme Trading Ltd",
        "email": "b@y.example.com; c@y.example.com",
        "locale": None,
    },
]


def write(tmp_path: Path, name: str, data: bytes | str) -> Path:
    path = tmp_path / name
    if isinstance(data, str):
        data = data.encode("utf-8")
    path.write_bytes(data)
    return path


def read_rows(path: Path) -> tuple[LedgerFile, list[dict[str, str | None]], list[int]]:
    ledger, table, numbers = read_all(path)
    return ledger, table.to_pylist(), [int(n) for n in numbers]


def write_xlsx(tmp_path: Path, rows: list[list[object]], name: str = "ledger.xlsx") -> Path:
    workbook = Workbook()
    sheet = workbook.active
    for row in rows:
        sheet.append(row)
    path = tmp_path / name
    workbook.save(path)
    return path


# --- encodings -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("codec", "detected"),
    [
        ("utf-8", "utf-8"),
        ("utf-8-sig", "utf-8-sig"),
        ("gb18030", "gb18030"),
        ("gbk", "gb18030"),
    ],
)
@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_csv_encodings_read_to_the_same_table(tmp_path, codec, detected, newline):
    data = CUSTOMERS_TEXT.replace("\n", newline).encode(codec)
    path = write(tmp_path, "customers.csv", data)

    assert detect_encoding(path) == detected
    ledger, rows, numbers = read_rows(path)

    assert ledger.file_format == "csv"
    assert ledger.encoding == detected
    assert ledger.columns == ["customer_id", "name", "email", "locale"]
    assert rows == CUSTOMERS_ROWS
    assert numbers == [1, 2, 3]
    assert ledger.malformed == []


def test_gb18030_only_characters_are_read(tmp_path):
    # U+20000 has no GBK code: GB18030 encodes it in four bytes
    name = "\U00020000记贸易"
    path = write(tmp_path, "customers.csv", f"customer_id,name\nC1,{name}\n".encode("gb18030"))
    ledger, rows, _ = read_rows(path)
    assert ledger.encoding == "gb18030"
    assert rows == [{"customer_id": "C1", "name": name}]


def test_gb18030_file_read_in_many_blocks(tmp_path, monkeypatch):
    monkeypatch.setattr(reader, "CSV_BLOCK_SIZE", 1024)
    lines = ["row,name"] + [f"{i},{CHINESE_NAME}{i}" for i in range(1, 501)]
    path = write(tmp_path, "customers.csv", ("\n".join(lines) + "\n").encode("gb18030"))
    ledger = open_ledger_file(path)
    batches = list(ledger.batches())
    assert len(batches) > 1
    table = pa.concat_tables([b.table for b in batches])
    numbers = np.concatenate([b.row_numbers for b in batches])
    assert table.column("row").to_pylist() == [str(n) for n in numbers]
    assert table.column("name").to_pylist() == [f"{CHINESE_NAME}{i}" for i in range(1, 501)]


def test_bytes_valid_in_neither_encoding_are_refused_with_offsets(tmp_path):
    # invalid UTF-8 at offset 10 (GB18030 bytes), invalid GB18030 at offset 22 (0xff)
    data = b"id,name\n1," + "恒达".encode("gb18030") + b"\n2,abcde\xff\n"
    assert data.index(b"\xff") == 22
    path = write(tmp_path, "customers.csv", data)
    with pytest.raises(FileRefused) as refused:
        detect_encoding(path)
    assert "offset 10" in refused.value.reason
    assert "offset 22" in refused.value.reason
    assert "0xff" in refused.value.reason
    with pytest.raises(FileRefused):
        open_ledger_file(path)


def test_utf16_file_is_refused(tmp_path):
    path = write(tmp_path, "customers.csv", "id,name\n1,a\n".encode("utf-16"))
    with pytest.raises(FileRefused, match="offset 0"):
        open_ledger_file(path)


def test_bom_file_that_is_not_utf8_is_refused(tmp_path):
    data = b"\xef\xbb\xbfid,name\n1," + CHINESE_NAME.encode("gb18030") + b"\n"
    path = write(tmp_path, "customers.csv", data)
    with pytest.raises(FileRefused) as refused:
        open_ledger_file(path)
    assert "byte-order mark" in refused.value.reason
    assert "offset 13" in refused.value.reason


# --- header ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ([" Invoice_ID ", "NAME", "Due_Date"], ["invoice_id", "name", "due_date"]),
        (["id", "name", "", None, "  "], ["id", "name"]),
        ([2024, "Label"], ["2024", "label"]),
        (["\tid\t"], ["id"]),
    ],
)
def test_normalise_header(raw, expected):
    assert normalise_header(raw) == expected


@pytest.mark.parametrize(
    ("raw", "repeated"),
    [
        (["id", "ID "], ["id"]),
        (["Amount", "x", " amount"], ["amount"]),
        (["b", "a", "B", "A"], ["a", "b"]),
    ],
)
def test_repeated_header_is_refused_naming_the_column(raw, repeated):
    with pytest.raises(FileRefused) as refused:
        normalise_header(raw)
    assert refused.value.column == ";".join(repeated)
    for name in repeated:
        assert name in refused.value.reason


@pytest.mark.parametrize(
    ("raw", "position"), [(["id", "", "name"], "2"), ([None, "id"], "1"), (["id", "  ", "x"], "2")]
)
def test_blank_header_cell_is_refused(raw, position):
    with pytest.raises(FileRefused, match=rf"column\(s\) {position} have no name"):
        normalise_header(raw)


@pytest.mark.parametrize("raw", [[], [""], [None, " "]])
def test_no_header_names_is_refused(raw):
    with pytest.raises(FileRefused, match="no header"):
        normalise_header(raw)


def test_csv_header_is_trimmed_and_case_insensitive(tmp_path):
    path = write(tmp_path, "invoices.csv", " Invoice_ID ,CUSTOMER_id\nI1,C1\n")
    ledger, rows, _ = read_rows(path)
    assert ledger.columns == ["invoice_id", "customer_id"]
    assert rows == [{"invoice_id": "I1", "customer_id": "C1"}]


def test_csv_repeated_header_is_refused(tmp_path):
    path = write(tmp_path, "invoices.csv", "invoice_id,Amount,AMOUNT \nI1,1,2\n")
    with pytest.raises(FileRefused) as refused:
        open_ledger_file(path)
    assert refused.value.column == "amount"
    assert "amount" in refused.value.reason


def test_csv_blank_header_cell_is_refused(tmp_path):
    path = write(tmp_path, "invoices.csv", "invoice_id,,amount\nI1,x,2\n")
    with pytest.raises(FileRefused, match="no name"):
        open_ledger_file(path)


def test_csv_trailing_empty_header_cells_are_ignored(tmp_path):
    path = write(tmp_path, "invoices.csv", "invoice_id,amount,,\nI1,2,,\nI2,3,,\n")
    ledger, rows, numbers = read_rows(path)
    assert ledger.columns == ["invoice_id", "amount"]
    assert rows == [{"invoice_id": "I1", "amount": "2"}, {"invoice_id": "I2", "amount": "3"}]
    assert numbers == [1, 2]


@pytest.mark.parametrize("data", [b"\n1,2\n", b"\xef\xbb\xbf", b"\r\n"])
def test_csv_without_header_line_is_refused(tmp_path, data):
    with pytest.raises(FileRefused, match="first line is empty"):
        open_ledger_file(write(tmp_path, "invoices.csv", data))


# --- whole-file refusals ---------------------------------------------------------------------


@pytest.mark.parametrize("name", ["invoices.csv", "invoices.xlsx", "invoices.parquet"])
def test_empty_file_is_refused(tmp_path, name):
    with pytest.raises(FileRefused, match="empty"):
        open_ledger_file(write(tmp_path, name, b""))


@pytest.mark.parametrize("name", ["invoices.txt", "invoices.json", "invoices", "invoices.csv.gz"])
def test_unsupported_extension_is_refused(tmp_path, name):
    with pytest.raises(FileRefused, match="unsupported file type"):
        open_ledger_file(write(tmp_path, name, b"invoice_id\nI1\n"))


def test_extension_is_case_insensitive(tmp_path):
    ledger, rows, _ = read_rows(write(tmp_path, "INVOICES.CSV", "invoice_id\nI1\n"))
    assert ledger.file_format == "csv"
    assert rows == [{"invoice_id": "I1"}]


def test_header_only_csv_has_zero_rows(tmp_path):
    ledger, table, numbers = read_all(write(tmp_path, "invoices.csv", "invoice_id,amount\n"))
    assert ledger.columns == ["invoice_id", "amount"]
    assert table.num_rows == 0
    assert table.column_names == ["invoice_id", "amount"]
    assert len(numbers) == 0
    assert ledger.malformed == []


def test_header_only_csv_without_final_newline_has_zero_rows(tmp_path):
    ledger, table, numbers = read_all(write(tmp_path, "invoices.csv", "invoice_id,amount"))
    assert ledger.columns == ["invoice_id", "amount"]
    assert table.num_rows == 0
    assert len(numbers) == 0


def test_batches_can_be_consumed_once(tmp_path):
    ledger = open_ledger_file(write(tmp_path, "invoices.csv", "invoice_id\nI1\n"))
    assert len(list(ledger.batches())) == 1
    with pytest.raises(RuntimeError):
        ledger.batches()


# --- CSV values ------------------------------------------------------------------------------


def test_csv_values_trimmed_and_blanks_are_null(tmp_path):
    data = 'id,name,note\n  A1  ,  x y  ,\nA2,   ,""\nA3,"  q  ",\t\n'
    _, rows, _ = read_rows(write(tmp_path, "customers.csv", data))
    assert rows == [
        {"id": "A1", "name": "x y", "note": None},
        {"id": "A2", "name": None, "note": None},
        {"id": "A3", "name": "q", "note": None},
    ]
    assert all(v != "" for row in rows for v in row.values())


def test_csv_quoted_commas_and_quotes_survive(tmp_path):
    data = 'id,description\nA1,"Consulting, March ""phase 2"""\nA2,"a,b,c"\n'
    ledger, rows, numbers = read_rows(write(tmp_path, "invoices.csv", data))
    assert rows == [
        {"id": "A1", "description": 'Consulting, March "phase 2"'},
        {"id": "A2", "description": "a,b,c"},
    ]
    assert numbers == [1, 2]
    assert ledger.malformed == []


def test_csv_quoted_newline_survives_and_rows_keep_numbers(tmp_path):
    data = 'id,description\nA1,"line one\nline two, still A1"\nA2,plain\nA3\nA4,"x\r\ny"\n'
    ledger, rows, numbers = read_rows(write(tmp_path, "invoices.csv", data))
    assert rows == [
        {"id": "A1", "description": "line one\nline two, still A1"},
        {"id": "A2", "description": "plain"},
        {"id": "A4", "description": "x\r\ny"},
    ]
    # rows are records, not physical lines
    assert numbers == [1, 2, 4]
    assert [(m.row_number, m.text) for m in ledger.malformed] == [(3, "A3")]


def test_csv_quoted_newlines_across_blocks(tmp_path, monkeypatch):
    monkeypatch.setattr(reader, "CSV_BLOCK_SIZE", 256)
    lines = ["row,description"]
    for i in range(1, 201):
        lines.append(
            f'{i},"first line of {i}\nsecond line, with a comma"' if i % 3 == 0 else f"{i},d"
        )
    ledger, rows, numbers = read_rows(write(tmp_path, "invoices.csv", "\n".join(lines) + "\n"))
    assert [r["row"] for r in rows] == [str(n) for n in numbers] == [str(i) for i in range(1, 201)]
    assert rows[2]["description"] == "first line of 3\nsecond line, with a comma"
    assert ledger.malformed == []


def test_csv_header_with_quoted_newline(tmp_path):
    path = write(tmp_path, "invoices.csv", 'id,"na\nme"\n1,2\n')
    try:
        ledger, _, numbers = read_rows(path)
    except FileRefused:
        return  # refusing such a header would be acceptable too
    assert ledger.malformed == []
    assert numbers == [1]


# --- row numbers -----------------------------------------------------------------------------


def test_csv_blank_line_keeps_its_number(tmp_path):
    data = "id,name\nA1,a\n\nA3,c\n\n\nA6,f\n"
    ledger, rows, numbers = read_rows(write(tmp_path, "customers.csv", data))
    assert numbers == [1, 2, 3, 4, 5, 6]
    assert rows[1] == {"id": None, "name": None}
    assert rows[3] == rows[4] == {"id": None, "name": None}
    assert [r["id"] for r in rows] == ["A1", None, "A3", None, None, "A6"]
    assert ledger.malformed == []


def test_csv_malformed_rows_are_reported_and_numbering_kept(tmp_path):
    data = "id,name,amount\nA1,a,1\nA2,b\nA3,c,3\nA4,d,4,extra\nA5,e,5\n"
    ledger, rows, numbers = read_rows(write(tmp_path, "invoices.csv", data))
    assert [r["id"] for r in rows] == ["A1", "A3", "A5"]
    assert numbers == [1, 3, 5]
    assert [(m.row_number, m.text) for m in ledger.malformed] == [(2, "A2,b"), (4, "A4,d,4,extra")]
    assert "2 field(s), expected 3" in ledger.malformed[0].reason
    assert "4 field(s), expected 3" in ledger.malformed[1].reason


def test_csv_malformed_first_and_last_rows(tmp_path):
    data = "id,name\nA1\nA2,b\nA3,c,x\n"
    ledger, rows, numbers = read_rows(write(tmp_path, "invoices.csv", data))
    assert rows == [{"id": "A2", "name": "b"}]
    assert numbers == [2]
    assert [m.row_number for m in ledger.malformed] == [1, 3]


def test_csv_last_row_without_newline(tmp_path):
    _, rows, numbers = read_rows(write(tmp_path, "invoices.csv", "id,name\nA1,a\nA2,b"))
    assert rows == [{"id": "A1", "name": "a"}, {"id": "A2", "name": "b"}]
    assert numbers == [1, 2]


def _numbered_csv(n_rows: int, malformed: set[int], blank: set[int]) -> str:
    """A CSV whose ``row`` column holds each data row's own number."""
    lines = ["row,name,flag"]
    for i in range(1, n_rows + 1):
        if i in malformed:
            lines.append(f"{i},short" if i % 2 else f"{i},too,many,fields")
        elif i in blank:
            lines.append("")
        else:
            lines.append(f"{i},n{i},y")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("block_size", [256, 1024])
def test_csv_row_numbers_across_many_batches(tmp_path, monkeypatch, block_size):
    monkeypatch.setattr(reader, "CSV_BLOCK_SIZE", block_size)
    n_rows = 3000
    rng = random.Random(20240305)
    malformed = {1, 2, 3, 500, 501, 1777, 1778, 1779, n_rows - 1, n_rows}
    malformed |= set(rng.sample(range(5, n_rows - 2), 40))
    blank = set(rng.sample(sorted(set(range(5, n_rows - 2)) - malformed), 15))
    path = write(tmp_path, "invoices.csv", _numbered_csv(n_rows, malformed, blank))

    ledger = open_ledger_file(path)
    batches = list(ledger.batches())
    assert len(batches) > 5
    for batch in batches:
        assert isinstance(batch, Batch)
        assert batch.row_numbers.dtype == np.int64
        assert len(batch.row_numbers) == batch.table.num_rows

    table = pa.concat_tables([b.table for b in batches])
    numbers = [int(n) for b in batches for n in b.row_numbers]
    written = table.column("row").to_pylist()

    good = [i for i in range(1, n_rows + 1) if i not in malformed]
    assert numbers == good
    for number, value in zip(numbers, written, strict=True):
        assert value == (None if number in blank else str(number))
    assert sorted(m.row_number for m in ledger.malformed) == sorted(malformed)
    for m in ledger.malformed:
        assert m.text.split(",")[0] == str(m.row_number)
        assert "expected 3" in m.reason


# --- XLSX ------------------------------------------------------------------------------------


XLSX_VALUES = [
    ("string", "  Acme  ", "Acme"),
    ("chinese", CHINESE_NAME, CHINESE_NAME),
    ("int", 7, "7"),
    ("big_int", 12345678901234, "12345678901234"),
    ("negative", -3, "-3"),
    ("float", 1234.5, "1234.5"),
    ("tenth", 0.1, "0.1"),
    ("whole_float", 100.0, "100"),
    ("tiny_float", 1e-7, "0.0000001"),
    ("date", dt.date(2024, 2, 29), "2024-02-29"),
    ("midnight", dt.datetime(2024, 3, 5), "2024-03-05"),
    ("true", True, "true"),
    ("false", False, "false"),
    ("empty", None, None),
    ("blank_string", "   ", None),
]


def test_xlsx_cells_become_csv_text(tmp_path):
    rows = [["Label", " Value "]] + [[label, value] for label, value, _ in XLSX_VALUES]
    ledger, got, numbers = read_rows(write_xlsx(tmp_path, rows))
    assert ledger.file_format == "xlsx"
    assert ledger.encoding is None
    assert ledger.columns == ["label", "value"]
    assert {r["label"]: r["value"] for r in got} == {label: text for label, _, text in XLSX_VALUES}
    assert numbers == list(range(1, len(XLSX_VALUES) + 1))
    assert "1e" not in {r["label"]: r["value"] for r in got}["tiny_float"]


def test_xlsx_datetime_with_time_keeps_the_time(tmp_path):
    path = write_xlsx(tmp_path, [["id", "at"], ["A1", dt.datetime(2024, 3, 5, 10, 30)]])
    _, rows, _ = read_rows(path)
    assert rows == [{"id": "A1", "at": "2024-03-05 10:30:00"}]


def test_xlsx_short_rows_are_padded_with_nulls(tmp_path):
    path = write_xlsx(tmp_path, [["id", "name", "note"], ["A1"], ["A2", "b"]])
    _, rows, numbers = read_rows(path)
    assert rows == [
        {"id": "A1", "name": None, "note": None},
        {"id": "A2", "name": "b", "note": None},
    ]
    assert numbers == [1, 2]


def test_xlsx_values_beyond_header_are_malformed(tmp_path):
    path = write_xlsx(
        tmp_path,
        [["id", "amount"], ["A1", 1], ["A2", 2, "stray"], ["A3", 3], ["A4", 4, None, 9], ["A5", 5]],
    )
    ledger, rows, numbers = read_rows(path)
    assert [r["id"] for r in rows] == ["A1", "A3", "A5"]
    assert numbers == [1, 3, 5]
    assert [m.row_number for m in ledger.malformed] == [2, 4]
    assert "A2" in ledger.malformed[0].text
    assert "stray" in ledger.malformed[0].text
    assert "beyond the header's 2 columns" in ledger.malformed[0].reason


def test_xlsx_trailing_empty_header_cells_and_blank_row(tmp_path):
    workbook = Workbook()
    sheet = workbook.active
    sheet.append(["ID", "Name"])
    sheet["D1"] = "   "  # a blank header cell beyond the last name
    sheet.append(["A1", "a"])
    sheet.append([])  # a blank row: keeps its number
    sheet.append(["A3", "c"])
    path = tmp_path / "customers.xlsx"
    workbook.save(path)

    ledger, rows, numbers = read_rows(path)
    assert ledger.columns == ["id", "name"]
    assert rows == [
        {"id": "A1", "name": "a"},
        {"id": None, "name": None},
        {"id": "A3", "name": "c"},
    ]
    assert numbers == [1, 2, 3]
    assert ledger.malformed == []


def test_xlsx_only_the_first_sheet_is_read(tmp_path):
    workbook = Workbook()
    first = workbook.active
    first.title = "ledger"
    first.append(["id", "name"])
    first.append(["A1", "from the first sheet"])
    other = workbook.create_sheet("notes")
    other.append(["something", "else", "entirely"])
    other.append([1, 2, 3])
    workbook.active = 1  # even when another sheet is the active one
    path = tmp_path / "customers.xlsx"
    workbook.save(path)

    ledger, rows, _ = read_rows(path)
    assert ledger.columns == ["id", "name"]
    assert rows == [{"id": "A1", "name": "from the first sheet"}]


def test_xlsx_header_only_has_zero_rows(tmp_path):
    ledger, table, numbers = read_all(write_xlsx(tmp_path, [["id", "name"]]))
    assert ledger.columns == ["id", "name"]
    assert table.num_rows == 0
    assert len(numbers) == 0


def test_xlsx_repeated_header_is_refused(tmp_path):
    with pytest.raises(FileRefused) as refused:
        open_ledger_file(write_xlsx(tmp_path, [["id", "Name", "NAME"], ["A1", "a", "b"]]))
    assert refused.value.column == "name"


def test_xlsx_empty_sheet_is_refused(tmp_path):
    path = tmp_path / "customers.xlsx"
    Workbook().save(path)
    with pytest.raises(FileRefused):
        open_ledger_file(path)


def test_xlsx_corrupt_file_is_refused(tmp_path):
    data = random.Random(7).randbytes(4096)
    with pytest.raises(FileRefused, match="XLSX"):
        open_ledger_file(write(tmp_path, "customers.xlsx", data))


def test_xlsx_zip_that_is_not_a_workbook_is_refused(tmp_path):
    path = tmp_path / "customers.xlsx"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("hello.txt", "not a workbook")
    with pytest.raises(FileRefused, match="XLSX"):
        open_ledger_file(path)


def test_xlsx_row_numbers_across_batches(tmp_path, monkeypatch):
    monkeypatch.setattr(reader, "ROWS_PER_BATCH", 7)
    malformed = {1, 10, 11, 50, 100}
    blank = {20, 21, 64}
    workbook = Workbook()
    sheet = workbook.active
    sheet.append(["row", "name"])
    for i in range(1, 101):
        if i in malformed:
            sheet.append([i, "x", "beyond"])
        elif i in blank:
            sheet.append([])
        else:
            sheet.append([i, f"n{i}"])
    path = tmp_path / "customers.xlsx"
    workbook.save(path)

    ledger = open_ledger_file(path)
    batches = list(ledger.batches())
    assert len(batches) > 5
    assert all(b.table.num_rows <= 7 for b in batches)
    numbers = [int(n) for b in batches for n in b.row_numbers]
    written = [v for b in batches for v in b.table.column("row").to_pylist()]
    assert numbers == [i for i in range(1, 101) if i not in malformed]
    for number, value in zip(numbers, written, strict=True):
        assert value == (None if number in blank else str(number))
    assert [m.row_number for m in ledger.malformed] == sorted(malformed)


def test_xlsx_with_understated_dimension_keeps_all_rows(tmp_path):
    source = write_xlsx(tmp_path, [["id", "name"], ["A1", "a"], ["A2", "b"]], name="src.xlsx")
    path = tmp_path / "customers.xlsx"
    with zipfile.ZipFile(source) as src, zipfile.ZipFile(path, "w") as dst:
        for item in src.infolist():
            data = src.read(item.filename)
            if item.filename == "xl/worksheets/sheet1.xml":
                data = re.sub(rb'<dimension ref="[^"]*"\s*/>', b'<dimension ref="A1"/>', data)
            dst.writestr(item, data)
    ledger, rows, numbers = read_rows(path)
    assert ledger.columns == ["id", "name"]
    assert rows == [{"id": "A1", "name": "a"}, {"id": "A2", "name": "b"}]
    assert numbers == [1, 2]


# --- Parquet ---------------------------------------------------------------------------------


def _typed_table() -> tuple[pa.Table, dict[str, list[str | None]]]:
    """A Parquet-ready table of every supported type and the text a CSV would carry."""
    table = pa.table(
        {
            "Text": pa.array([" Acme ", CHINESE_NAME, None, ""]),
            "Large": pa.array(["a", "b", None, "c"], pa.large_string()),
            "Count": pa.array([7, -3, None, 12345678901234], pa.int64()),
            "Small": pa.array([1, 2, None, 3], pa.int8()),
            "Ratio": pa.array([1234.5, 0.1, None, 1e-7], pa.float64()),
            "Amount": pa.array(
                [Decimal("1234.50"), Decimal("0.10"), None, Decimal("9999999999999.99")],
                pa.decimal128(18, 2),
            ),
            "Day": pa.array(
                [dt.date(2024, 2, 29), dt.date(1900, 1, 1), None, dt.date(2199, 12, 31)],
                pa.date32(),
            ),
            "Stamp": pa.array(
                [
                    dt.datetime(2024, 3, 5),
                    dt.datetime(2024, 3, 5, 10, 30, 15),
                    None,
                    dt.datetime(1999, 12, 31),
                ],
                pa.timestamp("us"),
            ),
            "Flag": pa.array([True, False, None, True]),
            "Category": pa.array(["retail", "wholesale", None, "retail"]).dictionary_encode(),
            "Coded": pa.array([5, 6, None, 5], pa.int64()).dictionary_encode(),
            "Nothing": pa.nulls(4),
        }
    )
    text = {
        "text": ["Acme", CHINESE_NAME, None, None],
        "large": ["a", "b", None, "c"],
        "count": ["7", "-3", None, "12345678901234"],
        "small": ["1", "2", None, "3"],
        "ratio": ["1234.5", "0.1", None, "0.0000001"],
        "amount": ["1234.50", "0.10", None, "9999999999999.99"],
        "day": ["2024-02-29", "1900-01-01", None, "2199-12-31"],
        "stamp": ["2024-03-05", "2024-03-05 10:30:15", None, "1999-12-31"],
        "flag": ["true", "false", None, "true"],
        "category": ["retail", "wholesale", None, "retail"],
        "coded": ["5", "6", None, "5"],
        "nothing": [None, None, None, None],
    }
    return table, text


def test_parquet_types_become_csv_text(tmp_path):
    table, text = _typed_table()
    path = tmp_path / "customers.parquet"
    pq.write_table(table, path)

    ledger, got, numbers = read_all(path)
    assert ledger.file_format == "parquet"
    assert ledger.encoding is None
    assert ledger.columns == list(text)
    assert got.to_pydict() == text
    assert all(got.schema.field(name).type == pa.string() for name in got.column_names)
    assert numbers.tolist() == [1, 2, 3, 4]

    # the same values written in a CSV read to the very same table
    csv_lines = [",".join(text)]
    for i in range(4):
        csv_lines.append(",".join('"' + (col[i] or "") + '"' for col in text.values()))
    _, from_csv, _ = read_all(write(tmp_path, "customers.csv", "\n".join(csv_lines) + "\n"))
    assert from_csv.equals(got)


def test_parquet_whole_float_reads_like_xlsx(tmp_path):
    path = tmp_path / "customers.parquet"
    pq.write_table(pa.table({"id": pa.array([1001.0, 100.0], pa.float64())}), path)
    _, table, _ = read_all(path)
    assert table.column("id").to_pylist() == ["1001", "100"]


def test_parquet_float32_reads_as_written(tmp_path):
    path = tmp_path / "invoices.parquet"
    pq.write_table(pa.table({"amount": pa.array([0.1, 1.5], pa.float32())}), path)
    _, table, _ = read_all(path)
    assert table.column("amount").to_pylist() == ["0.1", "1.5"]


def test_parquet_row_numbers_across_row_groups_and_batches(tmp_path, monkeypatch):
    monkeypatch.setattr(reader, "ROWS_PER_BATCH", 4)
    n = 50
    path = tmp_path / "invoices.parquet"
    pq.write_table(
        pa.table({"row": pa.array(range(1, n + 1), pa.int64()), "v": [f"v{i}" for i in range(n)]}),
        path,
        row_group_size=7,
    )
    assert pq.ParquetFile(path).num_row_groups > 1
    ledger = open_ledger_file(path)
    batches = list(ledger.batches())
    assert len(batches) > 5
    numbers = [int(x) for b in batches for x in b.row_numbers]
    written = [v for b in batches for v in b.table.column("row").to_pylist()]
    assert numbers == list(range(1, n + 1))
    assert written == [str(x) for x in numbers]
    assert ledger.malformed == []


def test_parquet_all_null_row_keeps_its_number(tmp_path):
    path = tmp_path / "invoices.parquet"
    pq.write_table(pa.table({"id": ["A1", None, " ", "A4"], "v": ["1", None, None, "4"]}), path)
    _, rows, numbers = read_rows(path)
    assert numbers == [1, 2, 3, 4]
    assert rows[1] == rows[2] == {"id": None, "v": None}


def test_parquet_header_only_has_zero_rows(tmp_path):
    path = tmp_path / "invoices.parquet"
    pq.write_table(pa.table({"Invoice_ID": pa.array([], pa.string())}), path)
    ledger, table, numbers = read_all(path)
    assert ledger.columns == ["invoice_id"]
    assert table.num_rows == 0
    assert len(numbers) == 0


def test_parquet_repeated_header_is_refused(tmp_path):
    path = tmp_path / "invoices.parquet"
    pq.write_table(pa.table({"ID": ["a"], "id": ["b"]}), path)
    with pytest.raises(FileRefused) as refused:
        open_ledger_file(path)
    assert refused.value.column == "id"


@pytest.mark.parametrize("cut", ["random", "truncated"])
def test_parquet_corrupt_file_is_refused(tmp_path, cut):
    if cut == "random":
        data = random.Random(11).randbytes(4096)
    else:
        good = tmp_path / "good.parquet"
        pq.write_table(pa.table({"id": [f"I{i}" for i in range(500)]}), good)
        data = good.read_bytes()[:-20]
    with pytest.raises(FileRefused, match="Parquet"):
        read_all(write(tmp_path, "invoices.parquet", data))


def test_parquet_unsupported_column_type_is_refused(tmp_path):
    path = tmp_path / "invoices.parquet"
    pq.write_table(pa.table({"id": ["a"], "tags": pa.array([[1, 2]])}), path)
    with pytest.raises(FileRefused, match="unsupported Parquet column type"):
        read_all(path)


# --- cell_text -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        (True, "true"),
        (False, "false"),
        (0, "0"),
        (7, "7"),
        (-3, "-3"),
        (12345678901234567890, "12345678901234567890"),
        (1234.5, "1234.5"),
        (0.1, "0.1"),
        (-0.25, "-0.25"),
        (1e-7, "0.0000001"),
        (2.5e-5, "0.000025"),
        (1e16, "10000000000000000"),
        (Decimal("1234.50"), "1234.50"),
        (Decimal("1E+2"), "100"),
        (Decimal("-0.01"), "-0.01"),
        (dt.date(2024, 2, 29), "2024-02-29"),
        (dt.datetime(2024, 3, 5), "2024-03-05"),
        (dt.datetime(2024, 3, 5, 10, 30), "2024-03-05 10:30:00"),
        (dt.datetime(2024, 3, 5, 0, 0, 1), "2024-03-05 00:00:01"),
        ("  text  ", "  text  "),
        (CHINESE_NAME, CHINESE_NAME),
        pytest.param(100.0, "100"),
    ],
)
def test_cell_text(value, expected):
    assert cell_text(value) == expected
