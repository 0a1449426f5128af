"""One pass over a CSV file's raw bytes: its encoding, and the lines whose quotes are broken.

pyarrow's CSV reader is fast but trusting: one stray ``"`` at the start of a field makes it read
every following line, up to the next quote, as the rest of that value (thousands of rows gone
into one "malformed" row while the counts still reconcile), ``"Ac"me`` silently becomes
``Acme``, and an unterminated quote on the last line is accepted with the line end inside the
value. And GB18030 decodes almost any byte string, so a Windows-1252 file would load as
Chinese mojibake. This module reads the file once, before pyarrow does, and decides both.

**Lines and quotes.** A quote opens a quoted value only at the start of a field; inside it
``""`` is a quote and a lone ``"`` closes it, and the closing quote must be followed by a comma
or the line end. A quote anywhere else in an unquoted value is a literal character
(``Acme "Best" Ltd``), as pyarrow reads it. ``\\r\\n``, ``\\n`` and a bare ``\\r`` end lines. A
line that is a complete record under these rules is read as it is. Any other line either opens
a quoted value that continues on the following lines, or is bad:

* it opens a *multi-line record* when the record closes within :data:`MAX_QUOTED_SPAN` bytes
  and, from its first line break on, follows strict CSV: every quote there belongs to a quoted
  value (no literal quotes in unquoted values). Strictness is what keeps a stray quote from
  swallowing good lines: a well-formed single-line record holds an even number of quotes,
  while the lines after the first line of a strict multi-line record hold an odd number
  between them, so a quote left open can never be "closed" by ordinary records that follow.
  Such a record is one record, even when its number of fields is wrong (pyarrow then reports
  it as a malformed row). What strictness cannot tell apart is a stray quote followed, before
  any other quote, by a quoted value that starts with a line break (or a comma): the two quotes
  then do make a well-formed value. When the record so made has the wrong number of fields and
  the line where it ends opens a well-formed multi-line record with the header's number of
  fields, that second reading wins and the first line is bad; otherwise the quotes are read as
  written;
* otherwise the line is *bad*: an unterminated quote, or a closing quote followed by other
  characters. It is set aside as one record (the reader reports it as a malformed row naming
  the physical line) and reading resumes on the next line, so nothing else is lost. A bad
  header line refuses the file.

**How, fast.** The file is read in blocks of :data:`SCAN_BLOCK_SIZE` bytes; a partial line
(or a record that may still continue) at the end of a block is carried into the next one, so
memory stays bounded for any file size. ``,`` ``"`` ``\\r`` ``\\n`` never occur inside a
multi-byte character of UTF-8, GB18030 or any encoding this module accepts (see
:func:`receivables.config.check_encoding`), so the scan works on bytes whatever the encoding.
Per block, numpy finds the line ends and which lines hold a quote; those lines (an Arrow binary
array built zero-copy over the block) are matched at once against one RE2 regular expression for a
complete, well-formed line. Only when some line is not, the lines holding quotes are classified
again, still at once (does a line open a value it leaves open; inside a value, does it stay
inside, close it and end the record, or break it), and a short Python walk over the exceptional
lines (a binary search each) pairs every opening line with the line that closes its record.
About 0.1 s per million ordinary rows; a file whose every record spans two lines takes about
1.7 s per million.

**Encodings.** Strict UTF-8 (with or without a byte-order mark) comes first: the block is cast
to an Arrow string array, which validates it. If the file is not UTF-8 it is read as GB18030
only when the whole file decodes strictly as GB18030 (each non-ASCII line matched against an
RE2 pattern that accepts exactly what Python's codec decodes) *and* a bounded sample of its
non-ASCII lines reads as Chinese to ``charset-normalizer``. A file holding both UTF-8 text
(characters beyond U+07FF, which GB18030 text practically never forms by accident: none in
50,000 generated Chinese names and addresses) and lines that are not UTF-8 mixes encodings and
is refused, as is anything else, naming the first line that breaks the encoding, with an
escaped excerpt and charset-normalizer's guess of what the file looks like. A UTF-16 or UTF-32
byte-order mark is refused at once. A declared encoding replaces detection: the file is
decoded strictly with it. The scan stops at the first block that settles a refusal.
"""

from __future__ import annotations

import bisect
import codecs
import re
from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from receivables.text import excerpt

#: Bytes read per block of the scan.
SCAN_BLOCK_SIZE = 8 << 20
#: A quoted value may continue over following lines for at most this many bytes of its record.
MAX_QUOTED_SPAN = 64 << 10
#: A longer line refuses the file: it is not a ledger (and pyarrow could not read it either).
MAX_LINE_BYTES = 8 << 20
#: Bytes of a set-aside line kept for its excerpt and for naming its id.
RAW_BYTES = 1024
#: Non-ASCII lines per block, and bytes in all, sampled to judge whether text is Chinese.
SAMPLE_LINES_PER_BLOCK = 64
SAMPLE_BYTES = 64 << 10
#: Most "chaos" charset-normalizer may find in the sample for GB18030 to count as Chinese.
GB18030_MAX_CHAOS = 0.1
#: Encodings named when a refused file "looks like" one of them (charset-normalizer's names).
GUESSES = (
    "cp1252", "latin_1", "iso8859_15", "cp1250", "cp1251", "koi8_r", "cp1253", "cp1254",
    "cp1255", "cp1256", "cp1257", "cp1258", "cp874", "big5", "cp950", "shift_jis", "cp932",
    "euc_jp", "euc_kr", "cp949", "gb18030", "mac_roman", "cp437", "cp850",
)  # fmt: skip
#: Encodings accepted without a declaration.
DETECTED = "UTF-8, UTF-8 with a byte-order mark, or GB18030"

_WAIT = -1  # a record that may continue into the next block
_BAD = -2

UNCLOSED = "unclosed"
MISPLACED = "misplaced"

_BOM_UTF8 = codecs.BOM_UTF8
_BOMS_UNSUPPORTED = (
    (codecs.BOM_UTF32_LE, "UTF-32"),
    (codecs.BOM_UTF32_BE, "UTF-32"),
    (codecs.BOM_UTF16_LE, "UTF-16"),
    (codecs.BOM_UTF16_BE, "UTF-16"),
)

# A field of a single line under pyarrow's rules: quoted (closing quote then comma or line
# end), unquoted (may hold literal quotes after its first character), or empty.
_FIELD_RE2 = r'(?:"(?:[^"\r\n]|"")*"|[^,"\r\n][^,\r\n]*|)'
#: RE2 (Arrow, Latin-1 on binary): a line, with its line end, that is a complete record.
LINE_RE2 = rf"^{_FIELD_RE2}(?:,{_FIELD_RE2})*(?:\r\n|\n|\r)?$"
#: RE2: a line that is valid UTF-8.
UTF8_RE2 = (
    r"^(?:[\x00-\x7f]|[\xc2-\xdf][\x80-\xbf]|\xe0[\xa0-\xbf][\x80-\xbf]"
    r"|[\xe1-\xec\xee\xef][\x80-\xbf]{2}|\xed[\x80-\x9f][\x80-\xbf]"
    r"|\xf0[\x90-\xbf][\x80-\xbf]{2}|[\xf1-\xf3][\x80-\xbf]{3}|\xf4[\x80-\x8f][\x80-\xbf]{2})*$"
)

#: RE2: a line that Python's GB18030 codec decodes strictly: ASCII, two-byte characters and
#: the two ranges of four-byte ones it maps (checked against the codec byte for byte).
GB18030_RE2 = (
    r"^(?:[\x00-\x7f]|[\x81-\xfe][\x40-\x7e\x80-\xfe]"
    r"|[\x81-\x83][\x30-\x39][\x81-\xfe][\x30-\x39]|\x84\x30[\x81-\xfe][\x30-\x39]"
    r"|\x84\x31[\x81-\xa4][\x30-\x39]|[\x90-\xe2][\x30-\x39][\x81-\xfe][\x30-\x39]"
    r"|\xe3[\x30\x31][\x81-\xfe][\x30-\x39]|\xe3\x32[\x81-\x99][\x30-\x39]"
    r"|\xe3\x32\x9a[\x30-\x35])*$"
)

# Line classes for records that span lines, in RE2. Inside a quoted value, on one line:
_INSIDE = r'(?:[^"\r\n]|"")*'
_EOL = r"(?:\r\n|\n|\r)?$"
# a field after the first line break of a record: strict, no literal quotes
_STRICT_FIELD_RE2 = rf'(?:"{_INSIDE}"|[^,"\r\n]*)'
#: RE2: a line, read from a record's start, that ends inside a quoted value it opened.
OPENS_RE2 = rf'^(?:{_FIELD_RE2},)*"{_INSIDE}{_EOL}'
#: RE2: a line inside a quoted value that stays inside it, or closes it and opens another one
#: that goes on.
GOES_ON_RE2 = rf'^{_INSIDE}(?:"(?:,{_STRICT_FIELD_RE2})*,"{_INSIDE})?{_EOL}'
#: RE2: a line inside a quoted value that closes it and ends the record.
CLOSES_RE2 = rf'^{_INSIDE}"(?:,{_STRICT_FIELD_RE2})*{_EOL}'

_QUOTED_VALUE = re.compile(rb'"(?:[^"]|"")*+"')
_UNQUOTED_VALUE = re.compile(rb"[^,\r\n]*+")


class ScanRefused(Exception):
    """The file cannot be read as CSV; ``reason`` says why and what to do."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class BadLine:
    """A line set aside because of a quote: where it is and what is wrong with it."""

    #: physical line number in the file (the header's first line is line 1)
    line: int
    #: the record number it takes: 1 is the first record after the header
    record: int
    #: byte range of the line in the file, its line end included
    start: int
    end: int
    #: :data:`UNCLOSED` or :data:`MISPLACED`
    problem: str
    #: the line's first :data:`RAW_BYTES` bytes, without its line end
    raw: bytes = field(repr=False)
    #: whether it is the file's last line
    last: bool = False

    def reason(self) -> str:
        """What is wrong, what was done and what to do, in words a data engineer acts on."""
        n = self.line
        if self.problem == UNCLOSED:
            what = f"a quote opened on line {n} is never closed properly"
        else:
            what = (
                f"a quoted value on line {n} is followed by other characters before the next "
                'comma (as in "Ac"me)'
            )
        done = f"line {n} was set aside" + (
            " (the last line of the file)" if self.last else f" and reading resumed on line {n + 1}"
        )
        return f"{what}: {done}; quote a value that contains quotes and double the quotes inside it"


@dataclass
class CsvScan:
    """What the scan found: the encoding, the header record and the lines set aside."""

    #: Python codec name: "utf-8", "utf-8-sig", "gb18030" or the declared codec
    encoding: str
    #: the header record's bytes (no byte-order mark, no line end)
    header: bytes
    bad_lines: list[BadLine]
    #: physical lines in the file
    lines: int
    #: data records a person would count: blank and set-aside lines included
    records: int
    #: whether a quoted value holds a carriage return (a line break inside a value)
    cr_in_values: bool = False

    @property
    def skipped_ranges(self) -> list[tuple[int, int]]:
        """Byte ranges of the set-aside lines, adjacent ones merged."""
        ranges: list[tuple[int, int]] = []
        for bad in self.bad_lines:
            if ranges and ranges[-1][1] == bad.start:
                ranges[-1] = (ranges[-1][0], bad.end)
            else:
                ranges.append((bad.start, bad.end))
        return ranges


@cache
def scan_csv(path: Path, declared: str | None = None) -> CsvScan:
    """Scan ``path``: its encoding (``declared``, a codec name, or detected) and its bad lines.

    Raises :class:`ScanRefused` when the file cannot be read: an encoding problem, a header
    line with a broken quote, a line longer than :data:`MAX_LINE_BYTES`.
    """
    with path.open("rb") as f:
        return _Scanner(f, declared).run()


# --- the scanner ------------------------------------------------------------------------------


@dataclass
class _Lines:
    """The complete lines of a buffer: where each starts, where its content and line end end."""

    starts: np.ndarray
    ends: np.ndarray  # content end (line end excluded)
    nexts: np.ndarray  # start of the following line (line end included)

    def __len__(self) -> int:
        return len(self.starts)

    def line_of(self, position: int) -> int:
        """Index of the line holding byte ``position``."""
        return int(np.searchsorted(self.nexts, position, side="right"))

    def content(self, buf: bytes, index: int, limit: int | None = None) -> bytes:
        """Line ``index`` without its line end (its first ``limit`` bytes)."""
        start, end = int(self.starts[index]), int(self.ends[index])
        if limit is not None:
            end = min(end, start + limit)
        return bytes(buf[start:end])


def _binary_lines(buf: bytes, lines: _Lines, upto: int) -> pa.Array:
    """The first ``upto`` lines (line ends included) as an Arrow binary array over ``buf``."""
    offsets = np.empty(upto + 1, dtype=np.int32)
    offsets[:upto] = lines.starts[:upto]
    offsets[upto] = lines.nexts[upto - 1]
    return pa.Array.from_buffers(
        pa.binary(), upto, [None, pa.py_buffer(offsets), pa.py_buffer(buf)]
    )


def _indices(positions: np.ndarray) -> pa.Array:
    """Row indices for ``take``, zero-copy (``pa.array`` on numpy imports pandas)."""
    positions = np.ascontiguousarray(positions, dtype=np.int64)
    return pa.Array.from_buffers(pa.int64(), len(positions), [None, pa.py_buffer(positions)])


def _match(array: pa.Array, pattern: str) -> np.ndarray:
    """Which elements of a binary array match an RE2 ``pattern``, as a numpy mask."""
    result = pc.match_substring_regex(array, pattern)
    # unpacked by hand: BooleanArray.to_numpy imports pandas, which costs more than the scan
    bits = np.frombuffer(result.buffers()[1], dtype=np.uint8)
    unpacked = np.unpackbits(bits, bitorder="little")
    return unpacked[result.offset : result.offset + len(result)].astype(bool)


class _Spans:
    """Where the records that open a quoted value on one line and close it on another end.

    Every line holding a quote is classified once, as a line inside a quoted value: one that
    stays inside (only doubled quotes), one that closes the value and ends the record, one
    that closes it and opens another; any other line stops the value badly. A record opened
    on line k ends on the first such "stop" after k: well-formed if that line closes it within
    :data:`MAX_QUOTED_SPAN` bytes.
    """

    def __init__(
        self,
        buf: bytes,
        lines: _Lines,
        quoted: np.ndarray,
        exceptional: np.ndarray,
        eof: bool,
    ):
        self.eof = eof
        self.complete_end = int(lines.nexts[-1])
        array = _binary_lines(buf, lines, len(lines))
        self.opens = _match(array.take(_indices(exceptional)), OPENS_RE2).tolist()
        self.starts = lines.starts[exceptional].tolist()
        stops = quoted[~_match(array.take(_indices(quoted)), GOES_ON_RE2)]
        stop_lines = array.take(_indices(stops))
        self.stops = stops.tolist()
        self.stop_starts = lines.starts[stops].tolist()
        self.stop_nexts = lines.nexts[stops].tolist()
        self.closes = _match(stop_lines, CLOSES_RE2).tolist()
        self.stop_opens = _match(stop_lines, OPENS_RE2).tolist()
        arr = np.frombuffer(buf, dtype=np.uint8)
        ends = lines.ends
        cr = (ends < len(buf)) & (arr[np.minimum(ends, len(buf) - 1)] == 13)
        self.cr_lines = np.flatnonzero(cr).tolist()  # lines ended by \r or \r\n
        self.records = self._records(exceptional, stops)

    def _records(self, exceptional: np.ndarray, stops: np.ndarray) -> list[tuple[int, int]]:
        """:meth:`record_at` for every exceptional line at once."""
        index = np.searchsorted(stops, exceptional, side="right")
        found = index < len(stops)
        safe = np.minimum(index, max(len(stops) - 1, 0))
        last = np.full(len(exceptional), _BAD, dtype=np.int64)
        if len(stops):
            closes = np.asarray(self.closes, dtype=bool)[safe]
            span = np.asarray(self.stop_nexts, dtype=np.int64)[safe] - np.asarray(self.starts)
            ok = found & closes & (span <= MAX_QUOTED_SPAN)
            last[ok] = stops[safe[ok]]
        waiting = ~found & (self.complete_end - np.asarray(self.starts) < MAX_QUOTED_SPAN)
        if not self.eof:
            last[waiting] = _WAIT
        return list(zip(last.tolist(), np.where(last >= 0, safe, -1).tolist(), strict=True))

    def record_at(self, k: int, start: int) -> tuple[int, int]:
        """(the last line of the well-formed record opened on line ``k``, which starts at byte
        ``start``, or :data:`_BAD`, or :data:`_WAIT` when the next block may decide it; the
        index of that last line among the stops)."""
        index = bisect.bisect_right(self.stops, k)
        if index < len(self.stops):
            if self.closes[index] and self.stop_nexts[index] - start <= MAX_QUOTED_SPAN:
                return self.stops[index], index
            return _BAD, -1
        if not self.eof and self.complete_end - start < MAX_QUOTED_SPAN:
            return _WAIT, -1
        return _BAD, -1

    def cr_inside(self, first: int, last: int) -> bool:
        """Whether a line break inside lines ``first``..``last`` holds a carriage return."""
        if not self.cr_lines:
            return False
        index = bisect.bisect_left(self.cr_lines, first)
        return index < len(self.cr_lines) and self.cr_lines[index] < last


class _Scanner:
    """Walks the file block by block; a block's undecided tail is carried into the next."""

    def __init__(self, f: BinaryIO, declared: str | None):
        self.f = f
        self.offset = 0  # file offset of the current buffer's first byte
        self.line = 1  # physical line number of the buffer's first line
        self.record = 0  # record index of the buffer's first line (0 = the header)
        self.bom = 0
        self.header: bytes | None = None
        self._width: int | None = None
        self.cr_in_values = False
        self.bad: list[BadLine] = []
        self.encoding = _EncodingCheck(declared)

    def run(self) -> CsvScan:
        head = self.f.read(4)
        self.f.seek(0)
        for bom, name in _BOMS_UNSUPPORTED:
            if head.startswith(bom):
                raise ScanRefused(
                    f"the file is {name} (it starts with a {name} byte-order mark); "
                    f"CSV files are read as {DETECTED}: export it as UTF-8"
                )
        if head.startswith(_BOM_UTF8):
            self.bom = len(_BOM_UTF8)
            self.encoding.utf8_bom()
        carry = b""
        eof = False
        while not eof:
            block = self.f.read(SCAN_BLOCK_SIZE)
            eof = len(block) < SCAN_BLOCK_SIZE
            buf = carry + block if carry else block
            consumed = self._buffer(buf, eof)
            carry = buf[consumed:]
            self.offset += consumed
            if len(carry) > MAX_LINE_BYTES:
                raise ScanRefused(
                    f"line {self.line} is longer than {MAX_LINE_BYTES:,} bytes without a line "
                    f"end (it starts {excerpt(carry[:200])}): this is not a CSV ledger"
                )
        lines = self.line - 1
        if self.bad and self.bad[-1].line == lines:
            self.bad[-1] = replace(self.bad[-1], last=True)
        return CsvScan(
            encoding=self.encoding.decide(),
            header=self.header or b"",
            bad_lines=self.bad,
            lines=lines,
            records=max(self.record - 1, 0),
            cr_in_values=self.cr_in_values,
        )

    def _split(self, buf: bytes, arr: np.ndarray, eof: bool) -> _Lines:
        """The complete lines of ``buf`` (at the end of the file, the last line too)."""
        n = len(buf)
        first = self.bom if self.offset == 0 else 0
        terminators = np.flatnonzero(arr == 10)
        ends = terminators
        if (arr == 13).any():
            cr = np.flatnonzero(arr == 13)
            crlf = (cr + 1 < n) & (arr[np.minimum(cr + 1, n - 1)] == 10)
            # a \r as the last byte may be the first half of a \r\n: decided with the next block
            bare = cr[~crlf & ((cr + 1 < n) | eof)]
            terminators = np.union1d(terminators, bare)
            ends = terminators.copy()
            ends[(arr[terminators] == 10) & (arr[np.maximum(terminators - 1, 0)] == 13)] -= 1
        nexts = terminators + 1
        starts = np.empty(len(terminators), dtype=np.int64)
        if len(terminators):
            starts[0] = first
            starts[1:] = nexts[:-1]
        tail = int(nexts[-1]) if len(nexts) else first
        if eof and tail < n:
            starts = np.append(starts, tail)
            ends = np.append(ends, n)
            nexts = np.append(nexts, n)
        return _Lines(
            starts.astype(np.int64, copy=False),
            ends.astype(np.int64, copy=False),
            nexts.astype(np.int64, copy=False),
        )

    def _buffer(self, buf: bytes, eof: bool) -> int:
        """Scan the complete lines of ``buf``; return how many bytes were decided."""
        arr = np.frombuffer(buf, dtype=np.uint8)
        lines = self._split(buf, arr, eof)
        if len(lines) == 0:
            return 0
        quoted, exceptional = self._exceptional(buf, arr, lines)
        done, continued, header_problem = self._resolve(buf, lines, quoted, exceptional, eof)
        if done == 0:
            return 0
        consumed = int(lines.starts[done]) if done < len(lines) else int(lines.nexts[-1])
        self.encoding.check(buf, arr, lines, done, consumed, self.line, self.offset)
        if header_problem is not None:
            raise ScanRefused(header_problem)
        self.line += done
        self.record += done - continued
        return consumed

    def _exceptional(
        self, buf: bytes, arr: np.ndarray, lines: _Lines
    ) -> tuple[np.ndarray, np.ndarray]:
        """Indices of the lines holding a quote, and of those among them that are not, alone,
        a complete record."""
        count = len(lines)
        quotes = arr[: int(lines.nexts[-1])] == 34
        if not quotes.any():
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
        candidates = np.flatnonzero(np.logical_or.reduceat(quotes, lines.starts))
        array = _binary_lines(buf, lines, count)
        if len(candidates) < count:
            array = array.take(_indices(candidates))
        return candidates, candidates[~_match(array, LINE_RE2)]

    def _resolve(
        self,
        buf: bytes,
        lines: _Lines,
        quoted: np.ndarray,
        exceptional: np.ndarray,
        eof: bool,
    ) -> tuple[int, int, str | None]:
        """Decide the exceptional lines in order: each opens a multi-line record or is bad.

        Returns (lines decided, continuation lines among them, the header's problem if any).
        Stops early at a line whose record may continue into the next block. The lines are
        classified at once (RE2); what is left in Python is a walk over the exceptional lines.
        """
        if self.record == 0 and self.header is None and (not len(exceptional) or exceptional[0]):
            self.header = lines.content(buf, 0)
        if not len(exceptional):
            return len(lines), 0, None
        spans = _Spans(buf, lines, quoted, exceptional, eof)
        continued = 0
        resume = 0
        for k, opens, record in zip(exceptional.tolist(), spans.opens, spans.records, strict=True):
            if k < resume:
                continue  # a continuation line of a multi-line record
            is_header = self.record == 0 and k == 0
            last, stop = record if opens else (_BAD, -1)
            if last > k and not is_header and spans.stop_opens[stop]:
                # A quote left open can still be "closed" by the opening quote of a real value
                # that starts with a line break. When the "record" that makes has the wrong
                # number of fields and the line it ends on opens a well-formed multi-line record
                # with the right number, that reading wins: line k is bad.
                after, _ = spans.record_at(last, spans.stop_starts[stop])
                if after == _WAIT:
                    last = _WAIT
                elif (
                    after > last
                    and self._fields(buf, lines, k, last) != self.width
                    and self._fields(buf, lines, last, after) == self.width
                ):
                    last = _BAD
            if last == _WAIT:
                return k, continued, None  # the record may go on in the next block
            if last > k:
                continued += last - k
                resume = last + 1
                self.cr_in_values = self.cr_in_values or spans.cr_inside(k, last)
                if is_header:
                    self.header = bytes(buf[int(lines.starts[0]) : int(lines.ends[last])])
                continue
            problem = UNCLOSED if opens else MISPLACED
            if is_header:
                return len(lines), continued, _header_problem(problem, lines.content(buf, 0))
            self.bad.append(
                BadLine(
                    line=self.line + k,
                    record=self.record + k - continued,
                    start=self.offset + int(lines.starts[k]),
                    end=self.offset + int(lines.nexts[k]),
                    problem=problem,
                    raw=lines.content(buf, k, RAW_BYTES),
                )
            )
        return len(lines), continued, None

    @property
    def width(self) -> int:
        """The header's number of fields."""
        if self._width is None:
            header = self.header or b""
            self._width = _count_fields(header, 0, len(header))
        return self._width

    @staticmethod
    def _fields(buf: bytes, lines: _Lines, first: int, last: int) -> int:
        return _count_fields(buf, int(lines.starts[first]), int(lines.ends[last]))


def _count_fields(buf: bytes, start: int, end: int) -> int:
    """The number of fields of the well-formed record ``buf[start:end]``."""
    count, position = 1, start
    while position < end:
        value = _QUOTED_VALUE if buf[position] == 0x22 else _UNQUOTED_VALUE
        match = value.match(buf, position, end)
        position = match.end() if match else end
        if position < end and buf[position] == 0x2C:
            count += 1
            position += 1
        else:
            break
    return count


def _header_problem(problem: str, line: bytes) -> str:
    what = (
        "has a quote that is never closed properly"
        if problem == UNCLOSED
        else 'has a quoted name followed by other characters (as in "Ac"me)'
    )
    return (
        f"the header row (line 1) {what}: {excerpt(line)}; fix the header: quote a name that "
        "contains quotes and double the quotes inside it"
    )


# --- encodings --------------------------------------------------------------------------------


@dataclass
class _Found:
    """A line worth naming: its number, the byte offset of the problem and an escaped excerpt."""

    line: int
    offset: int
    text: str


class _EncodingCheck:
    """Follows, block by block, which encodings the file can still be in."""

    def __init__(self, declared: str | None):
        self.declared = declared
        self.bom = False
        self.utf8 = declared in (None, "utf-8", "utf-8-sig")
        self.gb18030 = declared is None
        self.not_utf8: _Found | None = None
        self.not_gb18030: _Found | None = None
        self.utf8_text: _Found | None = None  # a valid UTF-8 line with non-ASCII text
        self.utf8_wide: _Found | None = None  # ... with characters beyond U+07FF
        self.sample: list[bytes] = []
        self.sample_bytes = 0

    def utf8_bom(self) -> None:
        """The file starts with a UTF-8 byte-order mark."""
        self.bom = True
        if not self.utf8:
            raise ScanRefused(
                "the file starts with a UTF-8 byte-order mark but its inbox declares the "
                f"encoding {self.declared}: save it in {self.declared}, or declare UTF-8"
            )

    def check(
        self,
        buf: bytes,
        arr: np.ndarray,
        lines: _Lines,
        done: int,
        end: int,
        base_line: int,
        base_offset: int,
    ) -> None:
        """Check the first ``done`` lines of ``buf`` (its bytes up to ``end``)."""

        def found(position: int) -> _Found:
            index = lines.line_of(position)
            raw = lines.content(buf, index, 400)
            return _Found(base_line + index, base_offset + position, excerpt(raw))

        if not self.utf8 and not self.gb18030:
            # a declared encoding other than UTF-8
            error = _decode_error(buf, end, self.declared)
            if error is not None:
                raise ScanRefused(_declared_reason(found(error), self.declared))
            return
        first = int(lines.starts[0])  # after a byte-order mark
        if arr[first:end].max(initial=0) < 0x80:
            return  # ASCII is valid in every encoding left
        if self.utf8:
            if _valid_utf8(buf, end):
                self._utf8_text(arr, first, end, found)
                return
            self.utf8 = False
            self.not_utf8 = found(_decode_error(buf, end, "utf-8"))
            if not self.gb18030:
                raise ScanRefused(_declared_reason(self.not_utf8, "UTF-8"))
            if self.bom:
                raise ScanRefused(
                    f"the file starts with a UTF-8 byte-order mark but line {self.not_utf8.line} "
                    f"is not valid UTF-8 (byte offset {self.not_utf8.offset}: "
                    f"{self.not_utf8.text}); save the whole file as UTF-8"
                )
        self._not_utf8(buf, arr, lines, done, end, found)

    def _utf8_text(self, arr: np.ndarray, first: int, end: int, found) -> None:
        """Note the first UTF-8 lines with non-ASCII text, and with characters past U+07FF."""
        if self.utf8_text is None:
            self.utf8_text = found(first + int(np.argmax(arr[first:end] >= 0x80)))
        if self.utf8_wide is None:
            wide = arr[first:end] >= 0xE0
            if wide.any():
                self.utf8_wide = found(first + int(np.argmax(wide)))

    def _not_utf8(
        self, buf: bytes, arr: np.ndarray, lines: _Lines, done: int, end: int, found
    ) -> None:
        """A block of a file that is not UTF-8: can it still be GB18030?"""
        highest = np.maximum.reduceat(arr[:end], lines.starts[:done])
        non_ascii = np.flatnonzero(highest >= 0x80)
        array = _binary_lines(buf, lines, done).take(_indices(non_ascii))
        valid = _match(array, UTF8_RE2)
        if self.utf8_text is None and valid.any():
            self.utf8_text = found(int(lines.starts[non_ascii[np.argmax(valid)]]))
        # valid UTF-8 with characters beyond U+07FF: GB18030 text practically never is
        wide = valid & (highest[non_ascii] >= 0xE0)
        if self.utf8_wide is None and wide.any():
            self.utf8_wide = found(int(lines.starts[non_ascii[np.argmax(wide)]]))
        if self.sample_bytes < SAMPLE_BYTES:
            picks = np.unique(
                np.linspace(0, len(non_ascii) - 1, min(len(non_ascii), SAMPLE_LINES_PER_BLOCK))
                .round()
                .astype(np.int64)
            )
            for index in non_ascii[picks].tolist():
                line = lines.content(buf, index, 1024)
                self.sample.append(line)
                self.sample_bytes += len(line) + 1
        if self.utf8_wide is not None:
            raise ScanRefused(self._mixed_reason())
        # (a valid UTF-8 block before this one held only ASCII and two-byte sequences, which
        # are valid GB18030 as well: this block is the first that can break GB18030)
        gb18030 = _match(array, GB18030_RE2)
        if not gb18030.all():
            index = int(non_ascii[np.argmin(gb18030)])
            start = int(lines.starts[index])
            line = lines.content(buf, index)
            error = _decode_error(line, len(line), "gb18030")
            self.not_gb18030 = found(start + (error or 0))
            self.gb18030 = False
            raise ScanRefused(self._unknown_reason())

    def _mixed_reason(self) -> str:
        utf8, other = self.utf8_wide or self.utf8_text, self.not_utf8
        assert utf8 is not None
        assert other is not None
        return (
            f"the file mixes encodings: line {utf8.line} is UTF-8 text ({utf8.text}) but line "
            f"{other.line} is not valid UTF-8 (byte offset {other.offset}: {other.text}); "
            "save the whole file in one encoding, preferably UTF-8"
        )

    def _guess(self) -> str:
        import charset_normalizer

        if not self.sample:
            return ""
        # only the encodings ledgers really come in: a short sample "looks like" too many others
        best = charset_normalizer.from_bytes(
            b"\n".join(self.sample), cp_isolation=list(GUESSES)
        ).best()
        if best is None:
            return ""
        return (
            f"; it looks like {best.encoding}: declare the inbox's encoding in the "
            "configuration, or save the file as UTF-8"
        )

    def _unknown_reason(self) -> str:
        found = self.not_utf8
        assert found is not None
        if self.utf8_wide is not None:
            return self._mixed_reason()
        # two-byte UTF-8 sequences are common by accident in text of other encodings: a hint
        also = (
            f" (line {self.utf8_text.line} is valid UTF-8: the file may mix encodings)"
            if self.utf8_text is not None
            else ""
        )
        gb18030 = self.not_gb18030
        gb = (
            f"nor GB18030 (line {gb18030.line}, byte offset {gb18030.offset}: {gb18030.text})"
            if gb18030 is not None
            else "and though it decodes as GB18030 it does not read as Chinese text"
        )
        return (
            f"line {found.line} is not valid UTF-8 (byte offset {found.offset}: {found.text})"
            f"{also}, {gb}; CSV files are read as {DETECTED} unless their inbox declares another "
            f"encoding{self._guess()}"
        )

    def decide(self) -> str:
        """The file's encoding once every block was checked, or :class:`ScanRefused`."""
        if self.declared is not None and self.declared not in ("utf-8", "utf-8-sig"):
            return self.declared
        if self.utf8:
            return "utf-8-sig" if self.bom else "utf-8"
        if _reads_as_chinese(self.sample):
            return "gb18030"
        raise ScanRefused(self._unknown_reason())


def _declared_reason(found: _Found, name: str | None) -> str:
    return (
        f"line {found.line} cannot be decoded as {name}, the encoding declared for its inbox "
        f"(byte offset {found.offset}: {found.text}); save the file in {name} or declare the "
        "encoding it is in"
    )


def _valid_utf8(buf: bytes, end: int) -> bool:
    """Whether ``buf[:end]`` is UTF-8: Arrow validates a cast to string much faster than Python
    decodes."""
    whole = pa.Array.from_buffers(
        pa.binary(), 1, [None, pa.py_buffer(np.array([0, end], np.int32)), pa.py_buffer(buf)]
    )
    try:
        whole.cast(pa.string())
    except pa.ArrowInvalid:
        return False
    return True


def _decode_error(buf: bytes, end: int, encoding: str | None) -> int | None:
    """Offset of the first byte of ``buf[:end]`` that ``encoding`` cannot decode, if any."""
    try:
        codecs.decode(memoryview(buf)[:end], encoding or "utf-8")
    except UnicodeDecodeError as exc:
        return exc.start
    return None


def _reads_as_chinese(sample: list[bytes]) -> bool:
    """Whether charset-normalizer reads the sampled non-ASCII lines as GB18030 text."""
    import charset_normalizer

    payload = b"\n".join(sample)
    best = charset_normalizer.from_bytes(
        payload,
        cp_isolation=["gb18030"],
        # look at the whole sample, not a few chunks of it
        steps=max(1, len(payload) // 512),
        chunk_size=512,
    ).best()
    return best is not None and best.chaos <= GB18030_MAX_CHAOS


__all__ = [
    "MISPLACED",
    "UNCLOSED",
    "BadLine",
    "CsvScan",
    "ScanRefused",
    "scan_csv",
]
