"""Ingest one inbox file end to end: read, check, stage, validate, load atomically, archive.

The per-file contract (docs/contract.md §3): a file's good rows load in one transaction or none do;
bad rows are quarantined with a reason and never block good rows; a file that cannot be read or
lacks a required column is refused whole and moved to ``rejected/``; a loaded file is archived
under its checksum and never loads twice. Counts always reconcile: rows read = rows loaded +
rows quarantined (the database enforces it too).

One file never stops the others: whatever is wrong with a file — its name, its type, its
permissions, its content — ends as an outcome (``loaded``, ``rejected`` or ``skipped``), never
as an exception. Only failures of the system (the database, the disk) raise.

* Names are used as they are only to open the file: the warehouse, the outcome, logs and emails
  get :func:`~receivables.ingest.names.shown_name`, the kept copies
  :func:`~receivables.ingest.names.safe_name` (see :mod:`receivables.ingest.names`).
* Only regular files are read. An inbox entry is looked at with ``lstat`` (links are not
  followed) and a regular file is opened with ``O_NOFOLLOW | O_NONBLOCK`` and checked with
  ``fstat`` before a byte is read, so a symbolic link, FIFO, socket or device is refused without
  being opened and a FIFO can never block the task. A refused entry is moved to ``rejected/``
  with ``rename`` (a FIFO cannot be copied). A file that cannot be read (permissions) is refused
  the same way.
* A refused entry that cannot be moved out of the inbox (another file system, a read-only
  inbox) is recorded once with the inbox as its place and left there; later runs skip it,
  saying why, until it changes or is removed.
* A file another run took meanwhile (it left the inbox, or its content was loaded) is skipped:
  the run that took it accounts for it.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import errno
import hashlib
import logging
import os
import shutil
import stat
import tempfile
import time
import zipfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from receivables.config import DEFAULT_TIMEZONE, Settings
from receivables.ingest.kinds import (
    FORMATS,
    RESERVED_PREFIXES,
    FileKind,
    kind_for,
    ordered_kinds,
)
from receivables.ingest.legal_updates import CasesChanged
from receivables.ingest.names import (
    path_from_token,
    path_token,
    run_key,
    safe_name,
    shown,
    shown_name,
)
from receivables.ingest.reader import FileRefused, LedgerFile, open_ledger_file
from receivables.ingest.rules import PROBLEM_SCHEMA, check_batch
from receivables.ingest.staging import Staging
from receivables.ingest.validation import Validator
from receivables.text import excerpt
from receivables.warehouse.db import refresh_statistics
from receivables.warehouse.schema import ingested_files, quarantined_rows

log = logging.getLogger(__name__)

MERGE_DEFAULTS = {
    "default_locale": "zh-CN",
    "default_timezone": DEFAULT_TIMEZONE,
    "default_currency": "CNY",
}
_IGNORED_SUFFIXES = (".tmp", ".part", ".partial", ".crdownload", ".filepart", ".reason.txt")
#: Characters of a refusal reason (whatever part of it quotes the file is shorter still).
REASON_CHARACTERS = 1000
#: Characters of the file's header quoted when a required column is missing.
HEADER_EXCERPT = 160
#: Characters of the GX suite's failures quoted in a refusal (they hold sample values).
GX_FAILURES_EXCERPT = 600
#: Characters kept of a malformed line and of its id (``quarantined_rows``).
LINE_CHARACTERS = 1000
RECORD_ID_CHARACTERS = 255
_ONLY_REGULAR = "files are read only when they are regular files in the inbox"
_ENTRY_TYPES = {
    stat.S_IFLNK: "a symbolic link",
    stat.S_IFIFO: "a named pipe (FIFO)",
    stat.S_IFSOCK: "a socket",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFDIR: "a folder",
}
#: What a broken file can make a reader raise beyond :class:`FileRefused` (a safety net: the
#: reader refuses what it knows; these are still about the file, not the system).
_UNREADABLE = (ValueError, UnicodeError, EOFError, zipfile.BadZipFile, csv.Error)


@dataclass(frozen=True)
class FileOutcome:
    """What happened to one file; small and JSON-friendly (it travels through XCom)."""

    file: str
    kind: str | None
    #: loaded | rejected | skipped (another run took the file, or it is waiting: see reason)
    status: str
    rows_read: int = 0
    rows_loaded: int = 0
    rows_quarantined: int = 0
    reason: str | None = None
    file_id: int | None = None
    stored_path: str | None = None
    #: seconds per stage: read, check (row checks), stage (bulk load into staging), set_checks,
    #: gx (both suites), merge (the load transaction)
    seconds: dict[str, float] | None = None

    def as_dict(self) -> dict:
        """Plain dict for XCom."""
        return asdict(self)


@dataclass(frozen=True)
class Discovery:
    """Inbox files by kind (in loading order), files of no known kind, files left waiting.

    Each file is a path token (:func:`~receivables.ingest.names.path_token`): plain text that
    survives XCom's JSON; :meth:`FileIngest.ingest` takes it as it is."""

    by_kind: dict[str, list[str]]
    unrecognised: list[str]
    waiting: list[str]


def discover(inbox: Path) -> Discovery:
    """List the inbox: each entry's kind by name prefix; hidden and partial files are ignored.

    Entries are listed without following links. Folders are ignored, with a log line: files are
    read only from the inbox itself, never from a folder in it. Every other entry is listed by
    the kind its name announces — regular files and also symbolic links, FIFOs, sockets and
    devices, which the ingest refuses without opening them.
    """
    by_kind: dict[str, list[str]] = {k.name: [] for k in ordered_kinds()}
    unrecognised, waiting = [], []
    inbox = Path(inbox)
    if not inbox.is_dir():
        raise FileNotFoundError(f"the inbox {inbox} does not exist (set RECEIVABLES_INBOX)")
    with os.scandir(inbox) as listing:
        entries = sorted(listing, key=lambda e: e.name)
    for entry in entries:
        name = entry.name
        if name.startswith((".", "~$")) or name.endswith(_IGNORED_SUFFIXES):
            continue
        try:
            folder = entry.is_dir(follow_symlinks=False)
        except OSError:
            folder = False
        if folder:
            log.info(
                "%s: a folder in the inbox; not read (files are read from the inbox itself)",
                shown_name(name),
            )
            continue
        token = path_token(entry.path)
        if name.lower().startswith(RESERVED_PREFIXES):
            waiting.append(token)
            log.warning(
                "%s: %s files are not handled by this version; left in the inbox",
                shown_name(name),
                shown_name(name.split("_")[0], 40),
            )
            continue
        kind = kind_for(name)
        if kind is None:
            unrecognised.append(token)
        else:
            by_kind[kind.name].append(token)
    return Discovery(by_kind=by_kind, unrecognised=unrecognised, waiting=waiting)


class _NotRegular(Exception):
    """The entry is not (or no longer) the regular file that ``lstat`` saw."""


def _identity(st: os.stat_result) -> tuple[int, int, int, int]:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def _open_regular(path: Path, seen: os.stat_result | None = None) -> int:
    """A read-only descriptor of ``path`` if it is a regular file (and the one ``seen``)."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or (
            seen is not None and (st.st_dev, st.st_ino) != (seen.st_dev, seen.st_ino)
        ):
            raise _NotRegular(path)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _sha256_fd(fd: int) -> str:
    digest = hashlib.sha256()
    while chunk := os.read(fd, 1 << 20):
        digest.update(chunk)
    return digest.hexdigest()


def sha256_of(path: Path) -> str:
    """Hex SHA-256 of a regular file, read in chunks (never follows a link, never blocks)."""
    fd = _open_regular(Path(path))
    try:
        return _sha256_fd(fd)
    finally:
        os.close(fd)


def _entry_digest(name: str, st: os.stat_result) -> str:
    """A stand-in checksum for an entry whose content is never read: its type, device, inode,
    change time, size and name. It changes when the entry is replaced or its mode changes."""
    facts = f"{stat.S_IFMT(st.st_mode)}:{st.st_dev}:{st.st_ino}:{st.st_ctime_ns}:{st.st_size}"
    return hashlib.sha256(
        b"unread entry\0" + facts.encode() + b"\0" + os.fsencode(name)
    ).hexdigest()


def _now() -> dt.datetime:
    # Audit timestamps only: no result depends on them.
    return dt.datetime.now(dt.UTC)


def _text_path(path: Path) -> str:
    """A path as text the warehouse and XCom can hold (escaped where it is not plain text)."""
    return shown(os.fspath(path), 4096)


def _reason(text: str, limit: int = REASON_CHARACTERS) -> str:
    return shown(text, limit)


def _user() -> str:
    try:
        import pwd

        return pwd.getpwuid(os.geteuid()).pw_name
    except (ImportError, KeyError):
        return f"uid {os.geteuid()}"


def _move(source: Path, target: Path, regular: bool) -> str | None:
    """Move ``source`` to ``target``; return None, or why it could not be moved (it stays).

    A rename never copies (an entry that is not a regular file cannot be copied); only a regular
    file crossing to another file system is copied, then removed from the inbox."""
    try:
        os.rename(source, target)
        return None
    except OSError as exc:
        if exc.errno != errno.EXDEV or not regular:
            return exc.strerror or str(exc)
    partial = target.with_name(target.name + ".part")
    try:
        fd = _open_regular(source)
        with os.fdopen(fd, "rb") as src, partial.open("wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
            dst.flush()
            os.fsync(dst.fileno())
        os.replace(partial, target)
        os.unlink(source)
    except (OSError, _NotRegular) as exc:
        for leftover in (partial, target):
            if leftover.exists() and source.exists():
                with contextlib.suppress(OSError):
                    leftover.unlink()
        return getattr(exc, "strerror", None) or "it is no longer a regular file"
    return None


def _malformed_problems(kind: FileKind, columns: list[str], malformed: list) -> pa.Table:
    """Problems of the rows that could not be split into the header's columns: the line as
    written and its id as far as it can be read, both escaped and cut (rare rows: row by row)."""
    column = kind.column(kind.id_column)
    parts = getattr(column, "derived_from", ()) or (kind.id_column,)  # derived: "<date> <code>"
    record_ids = []
    for m in malformed:
        values = {c: m.field(columns.index(c)) for c in parts if c in columns}
        found = [values.get(c) for c in parts]
        record_id = None if any(v is None for v in found) else " ".join(found)
        record_ids.append(None if record_id is None else shown(record_id, RECORD_ID_CHARACTERS))
    return pa.table(
        {
            "row_number": pa.array([m.row_number for m in malformed], pa.int64()),
            "record_id": pa.array(record_ids, pa.string()),
            "column_name": pa.nulls(len(malformed), pa.string()),
            "value": pa.array([shown(m.text, LINE_CHARACTERS) for m in malformed], pa.string()),
            "reason": pa.array([_reason(m.reason) for m in malformed], pa.string()),
        },
        schema=PROBLEM_SCHEMA,
    )


class Stopwatch:
    """Seconds spent per stage, accumulated over the batches of a file."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Add the time spent in the ``with`` block to stage ``name``."""
        started = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - started

    def rounded(self) -> dict[str, float]:
        """The stages' seconds, rounded to milliseconds."""
        return {k: round(v, 3) for k, v in self.seconds.items()}


def _free_path(path: Path) -> Path:
    candidate, n = path, 1
    while os.path.lexists(candidate):  # lexists: a moved dangling link still takes the name
        candidate = path.with_name(f"{path.stem}-{n}{path.suffix}")
        n += 1
    return candidate


@dataclass(frozen=True)
class _Source:
    """One inbox entry under ingest: where it is, what to call it, what was read of it."""

    path: Path
    shown: str
    safe: str
    #: content SHA-256 (or the entry's stand-in digest when it is not read)
    sha: str
    size: int
    regular: bool
    identity: tuple[int, int, int, int]

    @property
    def name(self) -> str:
        """The name as the file system gives it (only for opening the file)."""
        return self.path.name


class _Skip(Exception):
    """This attempt leaves the file alone (another run took it, or it is still changing)."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


_CHANGED = "it changed while it was being opened; left for the next run"
#: What opening an entry that ``lstat`` showed as a regular file answers when it was removed,
#: had its permissions changed or was replaced by a link, FIFO or socket meanwhile.
_GONE_OR_REPLACED = (errno.ENOENT, errno.EACCES, errno.EPERM, errno.ELOOP, errno.ENXIO)


@contextlib.contextmanager
def _readable(source: _Source) -> Iterator[Path]:
    """A path the readers open to reach the very file that was checked and hashed.

    It is a link, in a private folder, to this process's descriptor of the file (Linux's
    ``/proc/self/fd``), named ``ledger`` plus the file's own extension: the readers never see
    the dropped name (which may not even be UTF-8, which pyarrow cannot open) and never reach a
    FIFO or another file put in its place meanwhile. Where there is no ``/proc``, the path
    itself."""
    try:
        fd = _open_regular(source.path)
    except _NotRegular:
        raise _Skip(_CHANGED) from None
    except OSError as exc:
        if exc.errno not in _GONE_OR_REPLACED:
            raise
        raise _Skip(_CHANGED) from None
    folder = None
    try:
        opened = os.fstat(fd)
        if (opened.st_dev, opened.st_ino) != source.identity[:2]:
            raise _Skip(_CHANGED)
        descriptor = Path(f"/proc/self/fd/{fd}")
        if not descriptor.exists():
            yield source.path
            return
        folder = Path(tempfile.mkdtemp(prefix="receivables-read-"))
        link = folder / ("ledger" + shown(source.path.suffix, 32).replace("/", "_"))
        link.symlink_to(descriptor)
        yield link
    finally:
        os.close(fd)
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)


class FileIngest:
    """Ingests inbox files for one run (one warehouse, one as-of date, one GX context)."""

    def __init__(self, engine: Engine, settings: Settings, as_of: dt.date, run_id: str | None):
        self.engine = engine
        self.settings = settings
        self.as_of = as_of
        self.run_id = run_id
        self._validator: Validator | None = None

    @property
    def validator(self) -> Validator:
        """The GX context, created on first use (importing GX takes seconds)."""
        if self._validator is None:
            url = self.engine.url.render_as_string(hide_password=False)
            self._validator = Validator(self.settings.gx_root, url, self.engine.dialect.name)
        return self._validator

    # -- bookkeeping --------------------------------------------------------------------------

    def _loaded_record(self, sha: str):
        with self.engine.connect() as conn:
            return conn.execute(
                sa.select(ingested_files).where(
                    ingested_files.c.sha256 == sha, ingested_files.c.status == "loaded"
                )
            ).first()

    def _left_in_inbox(self, source: _Source):
        """The refusal recorded earlier for this very entry when it could not be moved."""
        with self.engine.connect() as conn:
            return conn.execute(
                sa.select(ingested_files)
                .where(
                    ingested_files.c.sha256 == source.sha,
                    ingested_files.c.status == "rejected",
                    ingested_files.c.stored_path == _text_path(source.path.absolute()),
                )
                .limit(1)
            ).first()

    def _record(self, conn, source: _Source, started, stored: Path, **fields) -> int:
        """Insert the file's ``ingested_files`` row inside ``conn``'s transaction."""
        return conn.execute(
            ingested_files.insert().values(
                file_name=source.shown,
                sha256=source.sha,
                size_bytes=source.size,
                as_of_date=self.as_of,
                dag_run_id=self.run_id,
                stored_path=_text_path(stored),
                started_at=started,
                finished_at=_now(),
                **fields,
            )
        ).inserted_primary_key[0]

    def _skipped(self, shown_as: str, kind: FileKind | None, reason: str) -> FileOutcome:
        log.warning("%s: skipped: %s", shown_as, reason)
        return FileOutcome(
            file=shown_as, kind=kind.name if kind else None, status="skipped", reason=reason
        )

    def _reject(
        self,
        source: _Source,
        kind: FileKind | None,
        started: dt.datetime,
        refusal: FileRefused,
        file_format: str | None = None,
        encoding: str | None = None,
    ) -> FileOutcome:
        reason = _reason(refusal.reason)
        folder = self.settings.rejected_dir / self.as_of.isoformat()
        folder.mkdir(parents=True, exist_ok=True)
        target = _free_path(folder / source.safe)
        problem, moved = None, False
        try:
            with self.engine.begin() as conn:
                file_id = self._record(
                    conn,
                    source,
                    started,
                    target,
                    kind=kind.name if kind else None,
                    file_format=file_format or FORMATS.get(source.path.suffix.lower()),
                    encoding=encoding,
                    status="rejected",
                    reason=reason,
                    reason_column=shown(refusal.column, 255) if refusal.column else None,
                )
                # moved inside the transaction: a refusal is recorded if and only if it moved
                # (or, when it cannot move, recorded once with the inbox as its place)
                problem = _move(source.path, target, source.regular)
                moved = problem is None
                if not moved:
                    conn.execute(
                        ingested_files.update()
                        .where(ingested_files.c.file_id == file_id)
                        .values(stored_path=_text_path(source.path.absolute()))
                    )
        except BaseException:
            if moved:  # the record was not committed: put the file back where it was
                with contextlib.suppress(OSError):
                    os.rename(target, source.path)
            raise
        if moved:
            try:
                target.with_name(target.name + ".reason.txt").write_text(reason + "\n", "utf-8")
            except OSError as exc:
                log.warning("%s: could not write the reason file beside it: %s", target, exc)
            log.warning("%s: refused whole and moved to %s: %s", source.shown, target, reason)
        else:
            log.error(
                "%s: refused whole but cannot be moved out of the inbox (%s): remove it; "
                "it is skipped until then: %s",
                source.shown,
                problem,
                reason,
            )
        return FileOutcome(
            file=source.shown,
            kind=kind.name if kind else None,
            status="rejected",
            reason=reason if moved else f"{reason} (left in the inbox: cannot move it: {problem})",
            file_id=file_id,
            stored_path=_text_path(target if moved else source.path.absolute()),
        )

    # -- the ingest ---------------------------------------------------------------------------

    def ingest(self, path: Path | str) -> FileOutcome:
        """Ingest one file; returns its outcome. Refusals are outcomes, not exceptions.

        ``path`` is a path or a path token from :func:`discover`."""
        started = _now()
        path = path_from_token(path) if isinstance(path, str) else Path(path)
        shown_as = shown_name(path.name)
        kind = kind_for(path.name)
        try:
            source, unread = self._look(path)
            earlier = self._left_in_inbox(source)
            if earlier is not None:
                raise _Skip(
                    f"refused on {earlier.as_of_date} as file {earlier.file_id} but it cannot be "
                    f"moved out of the inbox: remove it ({earlier.reason})"
                )
            if unread is not None:
                return self._reject(source, kind, started, FileRefused(unread))
            earlier = self._loaded_record(source.sha)
            if earlier is not None:
                return self._already_loaded(source, kind, started, earlier)
            if kind is None:
                prefixes = [k.name for k in ordered_kinds()]
                refusal = FileRefused(
                    f"unrecognised file name: it must start with {', '.join(prefixes[:-1])} or "
                    f"{prefixes[-1]} (docs/contract.md §3)"
                )
                return self._reject(source, None, started, refusal)
            try:
                return self._load(source, kind, started)
            except FileRefused as refusal:
                return self._reject(source, kind, started, refusal)
        except _Skip as skip:
            return self._skipped(shown_as, kind, _reason(skip.reason))

    def _look(self, path: Path) -> tuple[_Source, str | None]:
        """The entry as it is now, its checksum, and why it cannot be read (None: it can)."""
        name = path.name
        common = {"path": path, "shown": shown_name(name), "safe": safe_name(name)}
        try:
            seen = os.lstat(path)
        except FileNotFoundError:
            raise _Skip("no longer in the inbox: another run took it, or it was removed") from None
        if not stat.S_ISREG(seen.st_mode):
            what = _ENTRY_TYPES.get(stat.S_IFMT(seen.st_mode), "not a regular file")
            source = _Source(
                sha=_entry_digest(name, seen),
                size=seen.st_size,
                regular=False,
                identity=_identity(seen),
                **common,
            )
            return source, f"{what}: {_ONLY_REGULAR}"
        try:
            fd = _open_regular(path, seen)
        except FileNotFoundError:
            raise _Skip("no longer in the inbox: another run took it, or it was removed") from None
        except PermissionError as exc:
            source = _Source(
                sha=_entry_digest(name, seen),
                size=seen.st_size,
                regular=True,
                identity=_identity(seen),
                **common,
            )
            why = (exc.strerror or "permission denied").lower()
            return source, f"cannot read the file: {why} (the ingest runs as {_user()})"
        except (_NotRegular, OSError) as exc:
            if isinstance(exc, OSError) and exc.errno not in (errno.ELOOP, errno.ENXIO):
                raise
            raise _Skip(_CHANGED) from None
        try:
            sha = _sha256_fd(fd)
            st = os.fstat(fd)
        finally:
            os.close(fd)
        source = _Source(sha=sha, size=st.st_size, regular=True, identity=_identity(st), **common)
        return source, None

    def _already_loaded(self, source: _Source, kind, started, earlier) -> FileOutcome:
        stored = Path(earlier.stored_path)
        if not stored.exists():
            # The load committed but the move to the archive did not happen: finish it.
            stored.parent.mkdir(parents=True, exist_ok=True)
            problem = _move(source.path, stored, regular=True)
            if problem is not None:
                raise _Skip(
                    f"already loaded as file {earlier.file_id} but it cannot be moved to the "
                    f"archive ({problem}): it stays in the inbox"
                )
            if earlier.dag_run_id != self.run_id:
                # another run loaded it and accounts for it; this one only tidied up
                log.info("%s: loaded by run %s; archived it now", source.shown, earlier.dag_run_id)
                raise _Skip(
                    f"already loaded as file {earlier.file_id} by run {earlier.dag_run_id} on "
                    f"{earlier.as_of_date}; archived it now"
                )
            log.info(
                "%s: already loaded as file %s; archived it now", source.shown, earlier.file_id
            )
            return FileOutcome(
                file=source.shown,
                kind=earlier.kind,
                status="loaded",
                rows_read=earlier.rows_read,
                rows_loaded=earlier.rows_loaded,
                rows_quarantined=earlier.rows_quarantined,
                file_id=earlier.file_id,
                stored_path=_text_path(stored),
            )
        refusal = FileRefused(
            f"identical to {earlier.file_name}, loaded on {earlier.as_of_date} as file "
            f"{earlier.file_id} (same SHA-256 {source.sha[:12]}…): a file never loads twice"
        )
        return self._reject(source, kind, started, refusal)

    def _check_params(self, source: _Source) -> dict[str, Any]:
        """What the checks may use: the policy's reporting currency (exchange rates are
        expressed in it, so its own rate must be 1); the run's business date and the file's
        name (a legal update's step cannot be dated later, and names its file)."""
        return {
            "reporting_currency": self.settings.policy.currency.reporting_currency,
            "as_of": self.as_of,
            "file_name": source.shown,
        }

    def _changed(self, source: _Source) -> bool:
        try:
            return _identity(os.lstat(source.path)) != source.identity
        except FileNotFoundError:
            return True

    def _open(self, source: _Source, readable: Path) -> LedgerFile:
        # a declared encoding is configuration: resolved here, outside the file's safety net
        encoding = self.settings.policy.ingest.encoding_for(source.path.parent)
        try:
            return open_ledger_file(readable, encoding)
        except _UNREADABLE as exc:
            raise FileRefused(f"cannot read the file: {excerpt(str(exc), 200)}") from None

    def _load(self, source: _Source, kind: FileKind, started) -> FileOutcome:
        staging = Staging(self.engine, kind)
        with _readable(source) as readable:
            try:
                return self._load_into(source, readable, kind, started, staging)
            finally:
                try:
                    staging.drop()
                except Exception:  # never mask the load's own outcome or failure
                    log.warning(
                        "could not drop %s (the next ingest will)", staging.name, exc_info=True
                    )

    def _load_into(
        self, source: _Source, readable: Path, kind: FileKind, started, staging: Staging
    ) -> FileOutcome:
        clock = time.monotonic()
        watch = Stopwatch()
        with watch.stage("read"):
            ledger = self._open(source, readable)
        run_name = f"{self.as_of}_{run_key(source.sha, source.name)}"
        unknown = [c for c in ledger.columns if c not in kind.names]
        if unknown:
            log.info(
                "%s: ignoring %d column(s) this version does not use: %s",
                source.shown,
                len(unknown),
                excerpt(", ".join(unknown), HEADER_EXCERPT),
            )
        with watch.stage("gx"):
            header = self.validator.validate_header(kind.name, ledger.columns, run_name)
        if not header.success:
            missing = header.missing_columns
            raise FileRefused(
                f"missing required column(s): {', '.join(missing)}; the file has "
                f"{len(ledger.columns)} column(s): "
                f"{excerpt(', '.join(ledger.columns), HEADER_EXCERPT)}; a {kind.name} file "
                f"needs at least {', '.join(kind.required)}",
                column=";".join(missing) or None,
            )
        with watch.stage("stage"):
            staging.reset()
        problems: list[pa.Table] = []
        rows_read = 0
        batches = ledger.batches()
        loader = staging.loader()
        try:
            while True:
                with watch.stage("read"):
                    try:
                        batch = next(batches, None)
                    except _UNREADABLE as exc:
                        raise FileRefused(
                            f"cannot read the file: {excerpt(str(exc), 200)}"
                        ) from None
                if batch is None:
                    break
                with watch.stage("check"):
                    checked = check_batch(kind, batch)
                with watch.stage("stage"):
                    loader.put(checked.staged)
                problems.append(checked.problems)
                rows_read += checked.rows_read
                log.info(
                    "%s: %d rows read and checked (%.1f s)",
                    source.shown,
                    rows_read,
                    time.monotonic() - clock,
                )
        finally:
            with watch.stage("stage"):
                loader.close()
        malformed = ledger.malformed
        if malformed:
            problems.append(_malformed_problems(kind, ledger.columns, malformed))
        rows_read += len(malformed)
        with watch.stage("stage"):
            staging.index()
        with watch.stage("set_checks"):
            problems.append(staging.run_checks(self._check_params(source)))
            staged_rows, held = staging.counts()
        if staged_rows + len(malformed) != rows_read:
            raise RuntimeError(
                f"{source.shown}: {rows_read} rows read but {staged_rows} staged and "
                f"{len(malformed)} malformed: refusing to load an unreconciled file"
            )
        with watch.stage("gx"):
            staged = self.validator.validate_staged(kind.name, staging.good_rows_view, run_name)
        if not staged.success:
            raise FileRefused(
                f"the Great Expectations suite {staged.suite} failed on rows that passed the row "
                f"checks: {excerpt('; '.join(staged.failures), GX_FAILURES_EXCERPT)}"
            )
        if self._changed(source):
            raise _Skip(
                "it changed while it was being read (still being written?): left in the inbox "
                "for the next run"
            )
        rows_quarantined = held + len(malformed)
        rows_loaded = rows_read - rows_quarantined
        archive_dir = self.settings.archive_dir / self.as_of.isoformat()
        archive = archive_dir / f"{source.sha[:12]}_{source.safe}"
        problem_rows = pa.concat_tables(problems).to_pylist()
        try:
            with watch.stage("merge"), self.engine.begin() as conn:
                file_id = self._record(
                    conn,
                    source,
                    started,
                    archive,
                    earliest_date=staging.earliest_date(conn),
                    kind=kind.name,
                    file_format=ledger.file_format,
                    encoding=ledger.encoding,
                    status="loaded",
                    rows_read=rows_read,
                    rows_loaded=rows_loaded,
                    rows_quarantined=rows_quarantined,
                )
                merged = staging.merge(conn, file_id, MERGE_DEFAULTS)
                if merged != rows_loaded:
                    raise RuntimeError(
                        f"{source.shown}: {rows_loaded} good rows but the merge wrote {merged}: "
                        "rolled back, nothing loaded"
                    )
                if problem_rows:
                    conn.execute(
                        quarantined_rows.insert(),
                        [{**row, "file_id": file_id} for row in problem_rows],
                    )
        except CasesChanged as exc:
            log.warning("%s: %s", source.shown, exc)
            raise _Skip(
                "the legal cases it updates changed while it was being loaded: nothing of it "
                "was loaded; left in the inbox for the next run"
            ) from None
        except sa.exc.IntegrityError:
            earlier = self._loaded_record(source.sha)
            if earlier is None:
                raise
            # the same content was loaded meanwhile by a run that did not hold the lock
            raise _Skip(
                f"loaded meanwhile as file {earlier.file_id} by run {earlier.dag_run_id}"
            ) from None
        archive_dir.mkdir(parents=True, exist_ok=True)
        problem = _move(source.path, archive, regular=True)
        if problem is not None:
            log.error(
                "%s: loaded as file %s but cannot be moved to %s (%s); a later run archives it",
                source.shown,
                file_id,
                archive,
                problem,
            )
        with watch.stage("merge"):
            refresh_statistics(self.engine, *kind.written_tables)
        log.info(
            "%s: %d read = %d loaded + %d quarantined; archived as %s (%.1f s: %s)",
            source.shown,
            rows_read,
            rows_loaded,
            rows_quarantined,
            archive.name,
            time.monotonic() - clock,
            ", ".join(f"{k} {v:.1f}" for k, v in watch.rounded().items()),
        )
        return FileOutcome(
            file=source.shown,
            kind=kind.name,
            status="loaded",
            rows_read=rows_read,
            rows_loaded=rows_loaded,
            rows_quarantined=rows_quarantined,
            file_id=file_id,
            stored_path=_text_path(archive),
            seconds=watch.rounded(),
        )
