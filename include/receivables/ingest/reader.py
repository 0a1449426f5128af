"""Read ledger files of every supported format into batches of normalised text columns.

Whatever the format (CSV in UTF-8, UTF-8 with BOM, GB18030 or a declared encoding; XLSX;
Parquet), a file becomes a stream of :class:`Batch` objects: Arrow string columns named by the
normalised header (lower-case, trimmed), values trimmed, empty values as nulls, and each row's
number in the file (data records counted from 1, so record 1 is the first record after the
header; a quoted value with a line break is one record, a blank line is one too). Typed cells of
XLSX and Parquet are turned into the same text a CSV would carry, so one set of rules checks
them all.

A CSV file is scanned once before it is parsed (:mod:`receivables.ingest.csvscan`): that pass
decides its encoding and finds the lines whose quotes are broken. Those lines are left out of
the bytes pyarrow parses (pyarrow would otherwise read every following line into the broken
value) and reported as :class:`MalformedRow`, and the record numbers pyarrow gives are mapped
back to the file's own numbering.

A file that cannot be read at all raises :class:`FileRefused` with a reason a data engineer can
act on. Rows that cannot be split into the header's columns are reported as
:class:`MalformedRow` and never silently skipped. Reasons and row texts quote the file only in
short escaped excerpts (:func:`receivables.text.excerpt`): a file's content never reaches a log,
an email or the warehouse whole.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import io
import logging
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from receivables.ingest.csvscan import CsvScan, ScanRefused, scan_csv
from receivables.ingest.kinds import FORMATS
from receivables.text import excerpt, shown

log = logging.getLogger(__name__)

#: CSV bytes parsed per batch (about 300k invoice rows): bounds memory for any file size.
CSV_BLOCK_SIZE = 32 << 20
#: Rows per batch for XLSX and Parquet.
ROWS_PER_BATCH = 250_000
#: Longest :attr:`MalformedRow.text`, in characters.
MALFORMED_TEXT_LENGTH = 200
#: Characters of a malformed row kept, unescaped, to read its fields (e.g. its id) from.
MALFORMED_RAW_LENGTH = 2000
#: Names or positions listed at most in a refusal about the header.
LISTED_NAMES = 10


class FileRefused(Exception):
    """The whole file is refused; ``reason`` says why, ``column`` which column(s) if any."""

    def __init__(self, reason: str, column: str | None = None):
        super().__init__(reason)
        self.reason = reason
        self.column = column


@dataclass(frozen=True)
class MalformedRow:
    """A row that could not be split into the header's columns (or whose quotes are broken).

    ``text`` is a short escaped excerpt of the row (at most :data:`MALFORMED_TEXT_LENGTH`
    characters); the row's first characters are kept privately to read its fields from.
    """

    row_number: int
    text: str
    reason: str
    _raw: str | None = field(default=None, repr=False, compare=False)

    @classmethod
    def of(cls, row_number: int, text: str, reason: str) -> MalformedRow:
        """A malformed row from its full text: the excerpt shown, the beginning kept."""
        return cls(
            row_number, shown(text, MALFORMED_TEXT_LENGTH), reason, text[:MALFORMED_RAW_LENGTH]
        )

    def field(self, index: int) -> str | None:
        """The row's ``index``-th field as far as it can be read (e.g. to name its id), as a
        short escaped excerpt: safe to store and show."""
        source = self.text if self._raw is None else self._raw
        try:
            fields = next(csv.reader(io.StringIO(source, newline="")))
        except (csv.Error, StopIteration):
            return None
        value = fields[index].strip() if index < len(fields) else ""
        return excerpt(value, 100) if value else None


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


def _listed(items: list[str]) -> str:
    """At most :data:`LISTED_NAMES` items, then how many more."""
    shown = ", ".join(items[:LISTED_NAMES])
    if len(items) > LISTED_NAMES:
        shown += f" and {len(items) - LISTED_NAMES:,} more"
    return shown


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
            f"header column(s) {_listed(blanks)} have no name; every column needs a name"
        )
    seen: dict[str, int] = {}
    for n in names:
        seen[n] = seen.get(n, 0) + 1
    repeated = [excerpt(n, 40) for n in sorted(n for n, count in seen.items() if count > 1)]
    if repeated:
        raise FileRefused(
            f"column(s) {_listed(repeated)} appear more than once in the header "
            "(names are compared case-insensitively)",
            column=";".join(repeated[:LISTED_NAMES])[:255],
        )
    return names


def normalise_text(array: pa.Array) -> pa.Array:
    """Trim blanks; empty or blank values become null."""
    array = pc.utf8_trim_whitespace(array.cast(pa.string()))
    return pc.if_else(pc.equal(array, ""), pa.scalar(None, pa.string()), array)


def open_ledger_file(path: Path, encoding: str | None = None) -> LedgerFile:
    """Open ``path`` by its extension; raise :class:`FileRefused` if it cannot be read.

    ``encoding`` (a Python codec name such as ``"cp1252"`` or ``"big5"``) declares the encoding
    of a CSV file: the file is then decoded strictly with it instead of being detected. An
    unknown codec, or one that cannot carry CSV (UTF-16, ISO-2022), raises ``ValueError``: that
    is a configuration problem, not the file's.
    """
    if encoding is not None:
        from receivables.config import check_encoding

        encoding = check_encoding(encoding)
    file_format = FORMATS.get(path.suffix.lower())
    if file_format is None:
        raise FileRefused(
            f"unsupported file type {path.suffix or '(no extension)'!r}: "
            f"expected one of {', '.join(sorted(FORMATS))}"
        )
    if path.stat().st_size == 0:
        raise FileRefused("the file is empty (0 bytes): expected a header row and data rows")
    if file_format == "csv":
        return _open_csv(path, encoding)
    opener = {"xlsx": _open_xlsx, "parquet": _open_parquet}[file_format]
    return opener(path)


# --- CSV -------------------------------------------------------------------------------------


def detect_encoding(path: Path, declared: str | None = None) -> str:
    """The encoding a CSV file is read in: ``"utf-8"``, ``"utf-8-sig"`` (a byte-order mark),
    ``"gb18030"``, or ``declared`` once the file decodes strictly with it.

    Checked over the whole file without loading it; anything else raises :class:`FileRefused`
    naming the first offending line (see :mod:`receivables.ingest.csvscan`).
    """
    return _scan(path, declared).encoding


def _scan(path: Path, declared: str | None) -> CsvScan:
    try:
        return scan_csv(path, declared)
    except ScanRefused as refusal:
        raise FileRefused(refusal.reason) from None


def _csv_header(raw: bytes, encoding: str) -> list[str]:
    """The header record's fields (the scan found its bytes and checked its quotes)."""
    if not raw.strip(b" \t"):
        raise FileRefused("the first line is empty: expected the header row (column names)")
    if b"\x00" in raw:
        # valid UTF-8, but no ledger's header holds NUL: UTF-16 without a byte-order mark, or
        # a binary file
        raise FileRefused(
            f"the header row holds NUL bytes ({excerpt(raw)}): this looks like UTF-16 or a "
            "binary file, not a CSV ledger; export it as UTF-8"
        )
    try:
        return next(csv.reader(io.StringIO(raw.decode(encoding), newline=""), strict=True))
    except (csv.Error, StopIteration) as exc:
        raise FileRefused(f"cannot read the header row: {excerpt(str(exc))}") from None


class _CsvStream(io.RawIOBase):
    """The bytes pyarrow parses: the file without the lines the scan set aside, as UTF-8.

    A ``\\r\\n`` is never split between two reads: pyarrow drops the ``\\n`` of a ``\\r\\n``
    inside a quoted value when its blocks split the pair there (which is also why this stream
    transcodes other encodings itself rather than letting pyarrow do it). Where a left-out line
    follows a line ended by a bare ``\\r``, a ``\\n`` takes its place: the ``\\r`` would
    otherwise pair with a blank line's ``\\n`` after it, and the blank line (a record) would be
    lost.
    """

    def __init__(self, path: Path, skipped: list[tuple[int, int]], encoding: str):
        super().__init__()
        self._file = path.open("rb")
        self._ranges = skipped
        self._next = 0  # index of the first range not yet passed
        self._position = 0
        self._decoder = (
            None if encoding.startswith("utf-8") else codecs.getincrementaldecoder(encoding)()
        )
        self._out = bytearray()
        self._eof = False
        self._last = 0  # the last byte read from the file

    def readable(self) -> bool:
        """It is."""
        return True

    def _raw(self, size: int) -> bytes:
        """The next bytes of the file outside the left-out ranges."""
        skipped = False
        while self._next < len(self._ranges) and self._ranges[self._next][0] <= self._position:
            self._position = max(self._position, self._ranges[self._next][1])
            self._next += 1
            self._file.seek(self._position)
            skipped = True
        if skipped and self._last == 0x0D:
            self._last = 0x0A
            return b"\n"  # the line before ends with \r\n now, and nothing pairs with it
        if self._next < len(self._ranges):
            size = min(size, self._ranges[self._next][0] - self._position)
        data = self._file.read(size)
        self._position += len(data)
        if data:
            self._last = data[-1]
        return data

    def read(self, size: int | None = -1) -> bytes:
        """Up to ``size`` bytes (all that is left when ``size`` is negative)."""
        wanted = sys.maxsize if size is None or size < 0 else size
        while len(self._out) <= wanted and not self._eof:
            data = self._raw(max(min(wanted, 64 << 20), 1 << 20))
            self._eof = not data
            if self._decoder is not None:
                data = self._decoder.decode(data, final=self._eof).encode("utf-8")
            self._out += data
        cut = min(wanted, len(self._out))
        if 1 < cut < len(self._out) and self._out[cut - 1] == 0x0D and self._out[cut] == 0x0A:
            cut -= 1  # keep the pair together for the next read
        data = bytes(self._out[:cut])
        del self._out[:cut]
        return data

    def close(self) -> None:
        """Close the file."""
        self._file.close()
        super().close()


class _Renumbering:
    """Maps the record numbers of the bytes pyarrow parses (set-aside lines left out) back to
    the file's own record numbers."""

    def __init__(self, set_aside: list[int]):
        records = np.asarray(set_aside, dtype=np.int64)
        # the k-th set-aside record has (record - k) kept records at or before its place
        self._kept_before = records - np.arange(len(records))

    def __call__(self, numbers: np.ndarray) -> np.ndarray:
        if len(self._kept_before) == 0:
            return numbers
        return numbers + np.searchsorted(self._kept_before, numbers, side="right")


def pyarrow_csv_options(columns: list[str], encoding: str, on_invalid) -> dict:
    """pyarrow's options for streaming a ledger CSV: every column as text, empty = null, quoted
    line breaks allowed, rows with the wrong number of fields handed to ``on_invalid``."""
    import pyarrow.csv as pcsv

    return {
        "read_options": pcsv.ReadOptions(
            encoding="utf8" if encoding.startswith(("utf-8", "utf8")) else encoding,
            # single-threaded: pyarrow then reports each malformed row's number
            use_threads=False,
            block_size=CSV_BLOCK_SIZE,
        ),
        "parse_options": pcsv.ParseOptions(
            invalid_row_handler=on_invalid,
            ignore_empty_lines=False,
            # quoted values may hold line breaks (descriptions, addresses)
            newlines_in_values=True,
        ),
        "convert_options": pcsv.ConvertOptions(
            column_types={name: pa.string() for name in columns},
            null_values=[""],
            strings_can_be_null=True,
            quoted_strings_can_be_null=True,
        ),
    }


def _open_csv(path: Path, declared: str | None) -> LedgerFile:
    import pyarrow.csv as pcsv

    scan = _scan(path, declared)
    encoding = scan.encoding
    raw_header = _csv_header(scan.header, encoding)
    columns = normalise_header(raw_header)
    ledger = LedgerFile(path=path, file_format="csv", encoding=encoding, columns=columns)
    ledger.malformed.extend(
        MalformedRow.of(bad.record, bad.raw.decode(encoding, errors="replace"), bad.reason())
        for bad in scan.bad_lines
    )
    renumber = _Renumbering([bad.record for bad in scan.bad_lines])
    skipped = scan.skipped_ranges

    def batches() -> Iterator[Batch]:
        invalid: list[tuple[int, str, int, int]] = []

        def on_invalid(row) -> str:
            # Single-threaded reading gives the row's number (header = 1).
            invalid.append((row.number, row.text, row.expected_columns, row.actual_columns))
            return "skip"

        # the plain path when nothing is left out and no value holds a \r: pyarrow then reads
        # (and transcodes) the file natively
        source = _CsvStream(path, skipped, encoding) if skipped or scan.cr_in_values else None
        try:
            try:
                reader = pcsv.open_csv(
                    source if source is not None else path,
                    **pyarrow_csv_options(
                        raw_header,
                        "utf8" if source is not None else encoding,
                        on_invalid,
                    ),
                )
            except pa.ArrowInvalid as exc:
                if "Empty CSV file" in str(exc):
                    return  # a header and nothing else
                raise FileRefused(f"cannot read the file as CSV: {excerpt(str(exc))}") from None
            numbering = _RowNumbering()
            reported = 0
            while True:
                try:
                    record_batch = reader.read_next_batch()
                except StopIteration:
                    break
                except pa.ArrowInvalid as exc:
                    raise FileRefused(f"cannot read the file as CSV: {excerpt(str(exc))}") from None
                for number, malformed in _malformed(invalid[reported:], renumber):
                    ledger.malformed.append(malformed)
                    numbering.skip(number)
                reported = len(invalid)
                table = pa.Table.from_batches([record_batch])
                table = table.select(list(range(len(columns)))).rename_columns(columns)
                yield _finish_batch(table, renumber(numbering.take(table.num_rows)))
            ledger.malformed.extend(m for _, m in _malformed(invalid[reported:], renumber))
            ledger.malformed.sort(key=lambda m: m.row_number)
        finally:
            if source is not None:
                source.close()

    ledger._batches = batches()
    return ledger


def _malformed(
    invalid: list[tuple[int, str, int, int]], renumber: _Renumbering
) -> list[tuple[int, MalformedRow]]:
    """(number among the rows pyarrow parsed, the row with its number in the file)."""
    # pyarrow numbers records from 1 with the header as record 1: data row = number - 1
    parsed = np.asarray([number - 1 for number, *_ in invalid], dtype=np.int64)
    in_file = renumber(parsed)
    return [
        (
            int(number),
            MalformedRow.of(
                int(file_number),
                text,
                f"the row has {actual} field(s), expected {expected} (check separators and quotes)",
            ),
        )
        for number, file_number, (_, text, expected, actual) in zip(
            parsed, in_file, invalid, strict=True
        )
    ]


class _RowNumbering:
    """Assigns row numbers to parsed rows, leaving gaps where malformed rows were skipped.

    pyarrow reports a skipped row's number before it hands over the batch that contains the
    rows around it (reading single-threaded, which is what makes the number known). Numbers
    count records, not lines: a quoted value with a line break stays one row. These are
    numbers among the records pyarrow parsed; :class:`_Renumbering` maps them to the file's.
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
        raise FileRefused(
            f"cannot open the file as an XLSX workbook: {excerpt(str(exc))}"
        ) from None
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
                        MalformedRow.of(
                            row_number,
                            ", ".join(cell_text(v) or "" for v in values),
                            f"the row has values beyond the header's {width} columns",
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
    raise FileRefused(f"unsupported Parquet column type {excerpt(str(t))}")


def _open_parquet(path: Path) -> LedgerFile:
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise FileRefused(f"cannot open the file as Parquet: {excerpt(str(exc))}") from None
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
            raise FileRefused(f"cannot read the Parquet data: {excerpt(str(exc))}") from None
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
