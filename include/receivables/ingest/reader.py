"""Read ledger files of every supported format into batches of normalised text columns.

Whatever the format (CSV in UTF-8, UTF-8 with BOM or GB18030; XLSX; Parquet), a file becomes a
stream of :class:`Batch` objects: Arrow string columns named by the normalised header
(lower-case, trimmed), values trimmed, empty values as nulls, and each row's number in the file
(data rows counted from 1, so row 1 is the line after the header). Typed cells of XLSX and
Parquet are turned into the same text a CSV would carry, so one set of rules checks them all.

A file that cannot be read at all raises :class:`FileRefused` with a reason a data engineer can
act on. Rows that cannot be split into the header's columns are reported as
:class:`MalformedRow` and never silently skipped.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from receivables.ingest.kinds import FORMATS

log = logging.getLogger(__name__)

#: CSV bytes parsed per batch (about 300k invoice rows): bounds memory for any file size.
CSV_BLOCK_SIZE = 32 << 20
#: Rows per batch for XLSX and Parquet.
ROWS_PER_BATCH = 250_000


class FileRefused(Exception):
    """The whole file is refused; ``reason`` says why, ``column`` which column(s) if any."""

    def __init__(self, reason: str, column: str | None = None):
        super().__init__(reason)
        self.reason = reason
        self.column = column


@dataclass(frozen=True)
class MalformedRow:
    """A row that could not be split into the header's columns."""

    row_number: int
    text: str
    reason: str

    def field(self, index: int) -> str | None:
        """The row's ``index``-th field as far as it can be read (e.g. to name its id)."""
        try:
            fields = next(csv.reader([self.text]))
        except (csv.Error, StopIteration):
            return None
        value = fields[index].strip() if index < len(fields) else ""
        return value or None


@dataclass
class Batch:
    """Normalised text columns and the file row number of each row."""

    table: pa.Table
    row_numbers: np.ndarray


@dataclass
class LedgerFile:
    """An opened ledger file: format, encoding, header, and a way to stream its rows."""

    path: Path
    file_format: str
    encoding: str | None
    columns: list[str]
    malformed: list[MalformedRow] = field(default_factory=list)
    _batches: Iterator[Batch] | None = None

    def batches(self) -> Iterator[Batch]:
        """Stream the file's rows; may be called once."""
        if self._batches is None:
            raise RuntimeError("batches() may be consumed only once")
        batches, self._batches = self._batches, None
        return batches


def normalise_header(raw: list[object]) -> list[str]:
    """Lower-case and trim header names; refuse blank or repeated names."""
    names = [("" if h is None else str(h)).strip().lower() for h in raw]
    while names and names[-1] == "":
        names.pop()  # trailing empty header cells (spreadsheets) carry nothing
    blanks = [str(i + 1) for i, n in enumerate(names) if n == ""]
    if not names:
        raise FileRefused("the file has no header row (expected column names on the first line)")
    if blanks:
        raise FileRefused(
            f"header column(s) {', '.join(blanks)} have no name; every column needs a name"
        )
    seen: dict[str, int] = {}
    for n in names:
        seen[n] = seen.get(n, 0) + 1
    repeated = sorted(n for n, count in seen.items() if count > 1)
    if repeated:
        raise FileRefused(
            f"column(s) {', '.join(repeated)} appear more than once in the header "
            "(names are compared case-insensitively)",
            column=";".join(repeated),
        )
    return names


def normalise_text(array: pa.Array) -> pa.Array:
    """Trim blanks; empty or blank values become null."""
    array = pc.utf8_trim_whitespace(array.cast(pa.string()))
    return pc.if_else(pc.equal(array, ""), pa.scalar(None, pa.string()), array)


def open_ledger_file(path: Path) -> LedgerFile:
    """Open ``path`` by its extension; raise :class:`FileRefused` if it cannot be read."""
    file_format = FORMATS.get(path.suffix.lower())
    if file_format is None:
        raise FileRefused(
            f"unsupported file type {path.suffix or '(no extension)'!r}: "
            f"expected one of {', '.join(sorted(FORMATS))}"
        )
    if path.stat().st_size == 0:
        raise FileRefused("the file is empty (0 bytes): expected a header row and data rows")
    opener = {"csv": _open_csv, "xlsx": _open_xlsx, "parquet": _open_parquet}[file_format]
    return opener(path)


# --- CSV -------------------------------------------------------------------------------------


def detect_encoding(path: Path) -> str:
    """UTF-8 (with or without BOM) or GB18030, checked over the whole file without loading it.

    Returns ``"utf-8-sig"``, ``"utf-8"`` or ``"gb18030"``; refuses anything else with the offset
    of the first byte that is valid in neither.
    """
    with path.open("rb") as f:
        has_bom = f.read(3) == codecs.BOM_UTF8
    utf8_error = _first_decode_error(path, "utf-8")
    if utf8_error is None:
        return "utf-8-sig" if has_bom else "utf-8"
    if has_bom:
        raise FileRefused(
            f"the file starts with a UTF-8 byte-order mark but is not valid UTF-8: "
            f"{utf8_error}; save it again as UTF-8"
        )
    gb_error = _first_decode_error(path, "gb18030")
    if gb_error is None:
        return "gb18030"
    raise FileRefused(
        f"cannot decode the file as UTF-8 ({utf8_error}) or GB18030 ({gb_error}); "
        "save it as UTF-8 or GB18030"
    )


def _first_decode_error(path: Path, encoding: str) -> str | None:
    decoder = codecs.getincrementaldecoder(encoding)()
    offset = 0
    with path.open("rb") as f:
        while True:
            chunk = f.read(1 << 20)
            try:
                decoder.decode(chunk, final=not chunk)
            except UnicodeDecodeError as exc:
                return f"invalid byte 0x{exc.object[exc.start]:02x} at offset {offset + exc.start}"
            if not chunk:
                return None
            offset += len(chunk)


def _read_csv_header(path: Path, encoding: str) -> list[str]:
    with path.open("r", encoding=encoding, newline="") as f:
        try:
            first = next(csv.reader(f), None)
        except csv.Error as exc:
            raise FileRefused(f"cannot read the header row: {exc}") from None
    if not first:
        raise FileRefused("the first line is empty: expected the header row (column names)")
    return first


def _open_csv(path: Path) -> LedgerFile:
    import pyarrow.csv as pcsv

    encoding = detect_encoding(path)
    raw_header = _read_csv_header(path, encoding)
    columns = normalise_header(raw_header)
    ledger = LedgerFile(path=path, file_format="csv", encoding=encoding, columns=columns)

    def batches() -> Iterator[Batch]:
        invalid: list[tuple[int, str, int, int]] = []

        def on_invalid(row) -> str:
            # Single-threaded reading gives the row's number (header = 1).
            invalid.append((row.number, row.text, row.expected_columns, row.actual_columns))
            return "skip"

        try:
            reader = pcsv.open_csv(
                path,
                read_options=pcsv.ReadOptions(
                    encoding="utf8" if encoding.startswith("utf-8") else encoding,
                    # single-threaded: pyarrow then reports each malformed row's number
                    use_threads=False,
                    block_size=CSV_BLOCK_SIZE,
                ),
                parse_options=pcsv.ParseOptions(
                    invalid_row_handler=on_invalid,
                    ignore_empty_lines=False,
                    # quoted values may hold line breaks (descriptions, addresses)
                    newlines_in_values=True,
                ),
                convert_options=pcsv.ConvertOptions(
                    column_types={name: pa.string() for name in raw_header},
                    null_values=[""],
                    strings_can_be_null=True,
                    quoted_strings_can_be_null=True,
                ),
            )
        except pa.ArrowInvalid as exc:
            if "Empty CSV file" in str(exc):
                return  # a header and nothing else
            raise FileRefused(f"cannot read the file as CSV: {exc}") from None
        numbering = _RowNumbering()
        reported = 0
        while True:
            try:
                record_batch = reader.read_next_batch()
            except StopIteration:
                break
            except pa.ArrowInvalid as exc:
                raise FileRefused(f"cannot read the file as CSV: {exc}") from None
            for malformed in _malformed(invalid[reported:]):
                ledger.malformed.append(malformed)
                numbering.skip(malformed.row_number)
            reported = len(invalid)
            table = pa.Table.from_batches([record_batch])
            table = table.select(list(range(len(columns)))).rename_columns(columns)
            yield _finish_batch(table, numbering.take(table.num_rows))
        ledger.malformed.extend(_malformed(invalid[reported:]))

    ledger._batches = batches()
    return ledger


def _malformed(invalid: list[tuple[int, str, int, int]]) -> list[MalformedRow]:
    # pyarrow numbers records from 1 with the header as record 1: data row = number - 1
    return [
        MalformedRow(
            row_number=number - 1,
            text=text[:500],
            reason=f"the row has {actual} field(s), expected {expected} "
            "(check separators and quotes)",
        )
        for number, text, expected, actual in invalid
    ]


class _RowNumbering:
    """Assigns file row numbers to parsed rows, leaving gaps where malformed rows were skipped.

    pyarrow reports a skipped row's number before it hands over the batch that contains the
    rows around it (reading single-threaded, which is what makes the number known). Numbers
    count records, not lines: a quoted value with a line break stays one row.
    """

    def __init__(self) -> None:
        self.next_number = 1
        self.skipped: list[int] = []

    def skip(self, row_number: int) -> None:
        self.skipped.append(row_number)

    def take(self, count: int) -> np.ndarray:
        numbers = np.empty(count, dtype=np.int64)
        pending = sorted(n for n in self.skipped if n >= self.next_number)
        self.skipped = []
        filled = 0
        current = self.next_number
        for skipped in pending:
            # rows before the skipped one are consecutive
            run = min(skipped - current, count - filled)
            if run > 0:
                numbers[filled : filled + run] = np.arange(current, current + run)
                filled += run
                current += run
            if filled == count:
                self.skipped = [n for n in pending if n >= current]
                break
            current = skipped + 1
        if filled < count:
            numbers[filled:] = np.arange(current, current + count - filled)
            current += count - filled
        self.next_number = current
        return numbers


def _finish_batch(table: pa.Table, row_numbers: np.ndarray) -> Batch:
    columns = [normalise_text(table.column(i).combine_chunks()) for i in range(table.num_columns)]
    return Batch(table=pa.table(columns, names=table.column_names), row_numbers=row_numbers)


# --- XLSX ------------------------------------------------------------------------------------


def cell_text(value: object) -> str | None:
    """The text a CSV would carry for a spreadsheet or Parquet cell value."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.datetime):
        if value.time() == dt.time(0, 0):
            return value.date().isoformat()
        return value.isoformat(sep=" ")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, float | np.floating):
        return _float_text(value)
    if isinstance(value, Decimal):
        return format(value, "f")
    return str(value)


def _float_text(value: float | np.floating) -> str:
    """The shortest text that reads back as the same float (of its own precision), without an
    exponent: 100.0 -> "100", 0.1 -> "0.1" (also for float32), 1e-7 -> "0.0000001"."""
    if not np.isfinite(value):
        return str(value)
    return np.format_float_positional(value, trim="-")


def _open_xlsx(path: Path) -> LedgerFile:
    import zipfile

    from openpyxl import load_workbook

    try:
        workbook = load_workbook(path, read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, OSError, ValueError) as exc:
        raise FileRefused(f"cannot open the file as an XLSX workbook: {exc}") from None
    sheet = workbook.worksheets[0]
    # read-only mode trusts the sheet's recorded dimensions, which some writers get wrong:
    # forget them, so every row and column that is really there gets read
    sheet.reset_dimensions()
    rows = sheet.iter_rows(values_only=True)
    try:
        raw_header = list(next(rows))
    except StopIteration:
        workbook.close()
        raise FileRefused("the first sheet is empty: expected a header row") from None
    columns = normalise_header(raw_header)
    width = len(columns)
    ledger = LedgerFile(path=path, file_format="xlsx", encoding=None, columns=columns)

    def batches() -> Iterator[Batch]:
        try:
            buffer: list[list[str | None]] = [[] for _ in range(width)]
            numbers: list[int] = []
            for row_number, row in enumerate(rows, start=1):
                values = list(row)
                extra = [v for v in values[width:] if v not in (None, "")]
                if extra:
                    ledger.malformed.append(
                        MalformedRow(
                            row_number=row_number,
                            text=", ".join(cell_text(v) or "" for v in values)[:500],
                            reason=f"the row has values beyond the header's {width} columns",
                        )
                    )
                    continue
                values = (values + [None] * width)[:width]
                for i, v in enumerate(values):
                    buffer[i].append(cell_text(v))
                numbers.append(row_number)
                if len(numbers) >= ROWS_PER_BATCH:
                    yield _xlsx_batch(buffer, columns, numbers)
                    buffer, numbers = [[] for _ in range(width)], []
            if numbers:
                yield _xlsx_batch(buffer, columns, numbers)
        finally:
            workbook.close()

    ledger._batches = batches()
    return ledger


def _xlsx_batch(buffer: list[list[str | None]], columns: list[str], numbers: list[int]) -> Batch:
    table = pa.table([pa.array(col, type=pa.string()) for col in buffer], names=columns)
    return _finish_batch(table, np.asarray(numbers, dtype=np.int64))


# --- Parquet ---------------------------------------------------------------------------------


def _arrow_to_text(array: pa.Array) -> pa.Array:
    """A typed Arrow column as the text a CSV would carry."""
    t = array.type
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return array.cast(pa.string())
    if pa.types.is_null(t):
        return pa.nulls(len(array), pa.string())
    if pa.types.is_boolean(t):
        return pc.if_else(array, "true", "false")
    if pa.types.is_date(t):
        return pc.strftime(array.cast(pa.date32()).cast(pa.timestamp("s")), format="%Y-%m-%d")
    if pa.types.is_timestamp(t):
        return pa.array([cell_text(v) for v in array.to_pylist()], type=pa.string())
    if pa.types.is_floating(t):
        values = array.to_numpy(zero_copy_only=False)
        valid = pc.is_valid(array).to_numpy(zero_copy_only=False)
        return pa.array(
            [_float_text(v) if ok else None for v, ok in zip(values, valid, strict=True)],
            type=pa.string(),
        )
    if pa.types.is_integer(t) or pa.types.is_decimal(t):
        return array.cast(pa.string())
    if pa.types.is_dictionary(t):
        return _arrow_to_text(array.dictionary_decode())
    raise FileRefused(f"unsupported Parquet column type {t}")


def _open_parquet(path: Path) -> LedgerFile:
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise FileRefused(f"cannot open the file as Parquet: {exc}") from None
    raw_header = parquet.schema_arrow.names
    columns = normalise_header(raw_header)
    ledger = LedgerFile(path=path, file_format="parquet", encoding=None, columns=columns)

    def batches() -> Iterator[Batch]:
        start = 1
        try:
            for record_batch in parquet.iter_batches(batch_size=ROWS_PER_BATCH):
                arrays = [_arrow_to_text(col) for col in record_batch.columns][: len(columns)]
                table = pa.table(arrays, names=columns)
                numbers = np.arange(start, start + table.num_rows, dtype=np.int64)
                start += table.num_rows
                yield _finish_batch(table, numbers)
        except (pa.ArrowInvalid, OSError) as exc:
            raise FileRefused(f"cannot read the Parquet data: {exc}") from None
        finally:
            parquet.close()

    ledger._batches = batches()
    return ledger


def read_all(path: Path) -> tuple[LedgerFile, pa.Table, np.ndarray]:
    """Read a whole (small) file at once: for tests and tools, not for the ingest."""
    ledger = open_ledger_file(path)
    parts = list(ledger.batches())
    if parts:
        table = pa.concat_tables([b.table for b in parts])
        numbers = np.concatenate([b.row_numbers for b in parts])
    else:
        table = pa.table({c: pa.array([], pa.string()) for c in ledger.columns})
        numbers = np.empty(0, dtype=np.int64)
    return ledger, table, numbers


__all__ = [
    "Batch",
    "FileRefused",
    "LedgerFile",
    "MalformedRow",
    "normalise_header",
    "open_ledger_file",
    "read_all",
]
