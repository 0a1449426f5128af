"""Ingest one inbox file end to end: read, check, stage, validate, load atomically, archive.

The per-file contract (CONTRACT §3): a file's good rows load in one transaction or none do;
bad rows are quarantined with a reason and never block good rows; a file that cannot be read or
lacks a required column is refused whole and moved to ``rejected/``; a loaded file is archived
under its checksum and never loads twice. Counts always reconcile: rows read = rows loaded +
rows quarantined (the database enforces it too).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import logging
import shutil
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import pyarrow as pa
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from receivables.config import DEFAULT_TIMEZONE, Settings
from receivables.ingest.kinds import FORMATS, RESERVED_PREFIXES, FileKind, kind_for
from receivables.ingest.reader import FileRefused, open_ledger_file
from receivables.ingest.rules import PROBLEM_SCHEMA, check_batch
from receivables.ingest.staging import Staging
from receivables.ingest.validation import Validator
from receivables.warehouse.db import refresh_statistics
from receivables.warehouse.schema import ingested_files, quarantined_rows

log = logging.getLogger(__name__)

MERGE_DEFAULTS = {
    "default_locale": "zh-CN",
    "default_timezone": DEFAULT_TIMEZONE,
    "default_currency": "CNY",
}
_IGNORED_SUFFIXES = (".tmp", ".part", ".partial", ".crdownload", ".filepart", ".reason.txt")


@dataclass(frozen=True)
class FileOutcome:
    """What happened to one file; small and JSON-friendly (it travels through XCom)."""

    file: str
    kind: str | None
    status: str  # loaded | rejected
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
    """Inbox files by kind (in loading order), files of no known kind, files left waiting."""

    by_kind: dict[str, list[str]]
    unrecognised: list[str]
    waiting: list[str]


def discover(inbox: Path) -> Discovery:
    """List the inbox: each file's kind by name prefix; hidden and partial files are ignored."""
    from receivables.ingest.kinds import ordered_kinds

    by_kind: dict[str, list[str]] = {k.name: [] for k in ordered_kinds()}
    unrecognised, waiting = [], []
    if not inbox.is_dir():
        raise FileNotFoundError(f"the inbox {inbox} does not exist (set RECEIVABLES_INBOX)")
    for path in sorted(inbox.iterdir()):
        name = path.name
        if not path.is_file() or name.startswith((".", "~$")) or name.endswith(_IGNORED_SUFFIXES):
            continue
        if name.lower().startswith(RESERVED_PREFIXES):
            waiting.append(str(path))
            log.warning(
                "%s: %s files are not handled by this version; left in the inbox",
                name,
                name.split("_")[0],
            )
            continue
        kind = kind_for(name)
        if kind is None:
            unrecognised.append(str(path))
        else:
            by_kind[kind.name].append(str(path))
    return Discovery(by_kind=by_kind, unrecognised=unrecognised, waiting=waiting)


def sha256_of(path: Path) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _now() -> dt.datetime:
    # Audit timestamps only: no result depends on them.
    return dt.datetime.now(dt.UTC)


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
    while candidate.exists():
        candidate = path.with_name(f"{path.stem}-{n}{path.suffix}")
        n += 1
    return candidate


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

    def _record(
        self, conn, path: Path, sha: str, size: int, started, stored: Path, **fields
    ) -> int:
        """Insert the file's ``ingested_files`` row inside ``conn``'s transaction."""
        return conn.execute(
            ingested_files.insert().values(
                file_name=path.name,
                sha256=sha,
                size_bytes=size,
                as_of_date=self.as_of,
                dag_run_id=self.run_id,
                stored_path=str(stored),
                started_at=started,
                finished_at=_now(),
                **fields,
            )
        ).inserted_primary_key[0]

    def _reject(
        self,
        path: Path,
        kind: FileKind | None,
        sha: str,
        size: int,
        started: dt.datetime,
        refusal: FileRefused,
        file_format: str | None = None,
        encoding: str | None = None,
    ) -> FileOutcome:
        target = _free_path(self.settings.rejected_dir / self.as_of.isoformat() / path.name)
        with self.engine.begin() as conn:
            file_id = self._record(
                conn,
                path,
                sha,
                size,
                started,
                target,
                kind=kind.name if kind else None,
                file_format=file_format or FORMATS.get(path.suffix.lower()),
                encoding=encoding,
                status="rejected",
                reason=refusal.reason,
                reason_column=refusal.column,
            )
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(path), target)
        target.with_name(target.name + ".reason.txt").write_text(refusal.reason + "\n", "utf-8")
        log.warning("%s: refused whole and moved to %s: %s", path.name, target, refusal.reason)
        return FileOutcome(
            file=path.name,
            kind=kind.name if kind else None,
            status="rejected",
            reason=refusal.reason,
            file_id=file_id,
            stored_path=str(target),
        )

    # -- the ingest ---------------------------------------------------------------------------

    def ingest(self, path: Path) -> FileOutcome:
        """Ingest one file; returns its outcome. Refusals are outcomes, not exceptions."""
        started = _now()
        path = Path(path)
        kind = kind_for(path.name)
        sha, size = sha256_of(path), path.stat().st_size
        earlier = self._loaded_record(sha)
        if earlier is not None:
            return self._already_loaded(path, kind, sha, size, started, earlier)
        if kind is None:
            return self._reject(
                path,
                None,
                sha,
                size,
                started,
                FileRefused(
                    "unrecognised file name: it must start with collectors, customers, invoices or "
                    "payments (CONTRACT §3)"
                ),
            )
        try:
            return self._load(path, kind, sha, size, started)
        except FileRefused as refusal:
            Staging(self.engine, kind).drop()
            return self._reject(path, kind, sha, size, started, refusal)

    def _already_loaded(self, path, kind, sha, size, started, earlier) -> FileOutcome:
        stored = Path(earlier.stored_path)
        if not stored.exists():
            # The load committed but the move to the archive did not happen: finish it.
            stored.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(path), stored)
            log.info("%s: already loaded as file %s; archived it now", path.name, earlier.file_id)
            return FileOutcome(
                file=path.name,
                kind=earlier.kind,
                status="loaded",
                rows_read=earlier.rows_read,
                rows_loaded=earlier.rows_loaded,
                rows_quarantined=earlier.rows_quarantined,
                file_id=earlier.file_id,
                stored_path=str(stored),
            )
        refusal = FileRefused(
            f"identical to {earlier.file_name}, loaded on {earlier.as_of_date} as file "
            f"{earlier.file_id} (same SHA-256 {sha[:12]}…): a file never loads twice"
        )
        return self._reject(path, kind, sha, size, started, refusal)

    def _load(self, path: Path, kind: FileKind, sha: str, size: int, started) -> FileOutcome:
        clock = time.monotonic()
        watch = Stopwatch()
        with watch.stage("read"):
            ledger = open_ledger_file(path)
        run_name = f"{self.as_of} {path.name} {sha[:12]}"
        unknown = [c for c in ledger.columns if c not in kind.names]
        if unknown:
            log.info(
                "%s: ignoring column(s) this version does not use: %s",
                path.name,
                ", ".join(unknown),
            )
        with watch.stage("gx"):
            header = self.validator.validate_header(kind.name, ledger.columns, run_name)
        if not header.success:
            missing = header.missing_columns
            raise FileRefused(
                f"missing required column(s): {', '.join(missing)}; the file has "
                f"{', '.join(ledger.columns)}; a {kind.name} file needs at least "
                f"{', '.join(kind.required)}",
                column=";".join(missing) or None,
            )
        staging = Staging(self.engine, kind)
        with watch.stage("stage"):
            staging.reset()
        problems: list[pa.Table] = []
        rows_read = 0
        batches = ledger.batches()
        loader = staging.loader()
        try:
            while True:
                with watch.stage("read"):
                    batch = next(batches, None)
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
                    path.name,
                    rows_read,
                    time.monotonic() - clock,
                )
        finally:
            with watch.stage("stage"):
                loader.close()
        malformed = ledger.malformed
        if malformed:
            problems.append(
                pa.table(
                    {
                        "row_number": pa.array([m.row_number for m in malformed], pa.int64()),
                        "record_id": pa.array(
                            [m.field(ledger.columns.index(kind.id_column)) for m in malformed],
                            pa.string(),
                        ),
                        "column_name": pa.nulls(len(malformed), pa.string()),
                        "value": pa.array([m.text for m in malformed], pa.string()),
                        "reason": pa.array([m.reason for m in malformed], pa.string()),
                    },
                    schema=PROBLEM_SCHEMA,
                )
            )
        rows_read += len(malformed)
        with watch.stage("stage"):
            staging.index()
        with watch.stage("set_checks"):
            problems.append(staging.run_checks())
            staged_rows, held = staging.counts()
        if staged_rows + len(malformed) != rows_read:
            raise RuntimeError(
                f"{path.name}: {rows_read} rows read but {staged_rows} staged and "
                f"{len(malformed)} malformed: refusing to load an unreconciled file"
            )
        with watch.stage("gx"):
            staged = self.validator.validate_staged(kind.name, staging.good_rows_view, run_name)
        if not staged.success:
            raise FileRefused(
                f"the Great Expectations suite {staged.suite} failed on rows that passed the row "
                f"checks: {'; '.join(staged.failures)}"
            )
        rows_quarantined = held + len(malformed)
        rows_loaded = rows_read - rows_quarantined
        archive = self.settings.archive_dir / self.as_of.isoformat() / f"{sha[:12]}_{path.name}"
        problem_rows = pa.concat_tables(problems).to_pylist()
        with watch.stage("merge"), self.engine.begin() as conn:
            file_id = self._record(
                conn,
                path,
                sha,
                size,
                started,
                archive,
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
                    f"{path.name}: {rows_loaded} good rows but the merge wrote {merged}: "
                    "rolled back, nothing loaded"
                )
            if problem_rows:
                conn.execute(
                    quarantined_rows.insert(),
                    [{**row, "file_id": file_id} for row in problem_rows],
                )
        archive.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(path), archive)
        staging.drop()
        with watch.stage("merge"):
            refresh_statistics(self.engine, kind.name)
        log.info(
            "%s: %d read = %d loaded + %d quarantined; archived as %s (%.1f s: %s)",
            path.name,
            rows_read,
            rows_loaded,
            rows_quarantined,
            archive.name,
            time.monotonic() - clock,
            ", ".join(f"{k} {v:.1f}" for k, v in watch.rounded().items()),
        )
        return FileOutcome(
            file=path.name,
            kind=kind.name,
            status="loaded",
            rows_read=rows_read,
            rows_loaded=rows_loaded,
            rows_quarantined=rows_quarantined,
            file_id=file_id,
            stored_path=str(archive),
            seconds=watch.rounded(),
        )
