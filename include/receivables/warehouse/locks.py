"""One writer at a time: a named lock on the warehouse that holds across processes and hosts.

Every step that writes the warehouse (the per-file ingest, the risk and model steps) holds the
writer lock for its whole duration, so two runs — two dates under the scheduler, or the
scheduler and a ``receivables run`` from a terminal, each with its own Airflow — take turns
instead of dropping each other's staging tables, racing for the same inbox files or both
computing the same month-end snapshots.

* PostgreSQL: a session-level advisory lock, held on a connection of its own. The server lets
  it go when that session ends, so a holder that dies (killed, host lost) never leaves the
  warehouse locked. The holder is described by the connection's ``application_name``.
* SQLite: ``flock`` on ``<database>.lock`` beside the database file; the kernel releases it when
  the holder's process ends. The holder writes who it is into the file.

Waiting is bounded (``RECEIVABLES_LOCK_TIMEOUT_MINUTES``; by default 30 minutes, and never more
than half the task timeout). A waiter logs who holds the lock every 30 seconds and gives up
with one line: ``the warehouse is busy: <holder> since <time>; try again later``.

The lock is re-entrant within one thread: a step that holds it may call another that takes it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import logging
import os
import socket
import threading
import time
import zlib
from collections.abc import Iterator
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.pool import NullPool

from receivables.text import excerpt, one_line
from receivables.warehouse.db import CONNECT_TIMEOUT_SECONDS, unavailable

log = logging.getLogger(__name__)

#: Environment variable: minutes a step waits for the writer lock before giving up.
TIMEOUT_VARIABLE = "RECEIVABLES_LOCK_TIMEOUT_MINUTES"
DEFAULT_TIMEOUT_MINUTES = 30.0
#: The task timeout (see ``receivables.airflow.dag_defaults``): the default wait stays under it.
TASK_TIMEOUT_VARIABLE = "RECEIVABLES_TASK_TIMEOUT_MINUTES"
DEFAULT_TASK_TIMEOUT_MINUTES = 120.0
#: The lock every warehouse writer takes.
WRITER = "writer"

_NAMESPACE = zlib.crc32(b"receivables.warehouse") & 0x7FFFFFFF
_APPLICATION_NAME_BYTES = 63  # PostgreSQL keeps at most this much of application_name
_held = threading.local()


class WarehouseBusy(RuntimeError):
    """Another process held the warehouse's lock for longer than this one could wait."""


def _minutes(variable: str, default: float) -> float:
    text = os.environ.get(variable, "").strip()
    if not text:
        return default
    try:
        minutes = float(text)
    except ValueError:
        minutes = -1.0
    if not minutes > 0 or minutes == float("inf"):
        raise ValueError(f"{variable} must be a positive number of minutes, not {text!r}")
    return minutes


def default_timeout_seconds() -> float:
    """Seconds to wait for the lock: ``RECEIVABLES_LOCK_TIMEOUT_MINUTES``, else 30 minutes but
    at most half the task timeout (the wait must end, and say why, before the task is killed)."""
    if os.environ.get(TIMEOUT_VARIABLE, "").strip():
        return _minutes(TIMEOUT_VARIABLE, DEFAULT_TIMEOUT_MINUTES) * 60
    task = _minutes(TASK_TIMEOUT_VARIABLE, DEFAULT_TASK_TIMEOUT_MINUTES)
    return min(DEFAULT_TIMEOUT_MINUTES, task / 2) * 60


def describe(what: str) -> str:
    """``what`` with this process and host: how a waiter sees the holder."""
    return f"{one_line(what)} pid {os.getpid()} host {socket.gethostname()}"


def _since(moment: dt.datetime | None) -> str:
    if moment is None:
        return "an unknown time"
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


class _PostgresLock:
    """A session advisory lock on a dedicated connection (autocommit, never pooled)."""

    def __init__(self, engine: Engine, name: str, description: str):
        self._keys = {"a": _NAMESPACE, "b": zlib.crc32(name.encode("utf-8")) & 0x7FFFFFFF}
        application = description.encode("ascii", "replace").decode("ascii")
        connect_args = {"application_name": application[:_APPLICATION_NAME_BYTES]}
        if "connect_timeout" not in engine.url.query:
            connect_args["connect_timeout"] = CONNECT_TIMEOUT_SECONDS
        self._engine = sa.create_engine(
            engine.url, poolclass=NullPool, isolation_level="AUTOCOMMIT", connect_args=connect_args
        )
        try:
            self._conn = self._engine.connect()
        except sa.exc.OperationalError as exc:
            self._engine.dispose()
            raise unavailable(engine.url, exc) from None

    def try_acquire(self) -> bool:
        statement = sa.text("SELECT pg_try_advisory_lock(:a, :b)")
        return bool(self._conn.execute(statement, self._keys).scalar())

    def holder(self) -> tuple[str, dt.datetime | None] | None:
        # state_change is when the holder's last statement ended: the lock it took, since its
        # connection does nothing else.
        row = self._conn.execute(
            sa.text(
                "SELECT a.application_name, a.state_change, a.pid FROM pg_locks l "
                "JOIN pg_stat_activity a ON a.pid = l.pid "
                "WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2 "
                "AND l.classid = CAST(:a AS oid) AND l.objid = CAST(:b AS oid) "
                "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())"
            ),
            self._keys,
        ).first()
        if row is None:
            return None
        name = row.application_name or f"a session (server pid {row.pid})"
        return name, row.state_change

    def release(self) -> None:
        try:
            statement = sa.text("SELECT pg_advisory_unlock(:a, :b)")
            if not self._conn.execute(statement, self._keys).scalar():
                log.warning("the warehouse lock was no longer held when released")
        finally:
            self.close()

    def close(self) -> None:
        try:
            self._conn.close()
        finally:
            self._engine.dispose()


class _SqliteLock:
    """``flock`` on a file beside the database; the holder writes its description into it."""

    def __init__(self, database: Path, name: str, description: str):
        suffix = ".lock" if name == WRITER else f".{name}.lock"
        self.path = database.with_name(database.name + suffix)
        self._description = description
        try:
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
            self._writable = True
        except PermissionError:
            # another user's lock file (the scheduler's, say): locking needs no write access,
            # only saying who holds it does
            self._fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
            self._writable = False

    def try_acquire(self) -> bool:
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        if self._writable:
            since = dt.datetime.now(dt.UTC).isoformat()
            os.ftruncate(self._fd, 0)
            os.pwrite(self._fd, f"{self._description}\n{since}\n".encode(), 0)
        return True

    def holder(self) -> tuple[str, dt.datetime | None] | None:
        lines = os.pread(self._fd, 4096, 0).decode("utf-8", "replace").splitlines()
        if not lines or not lines[0].strip():
            return None
        since = None
        if len(lines) > 1:
            with contextlib.suppress(ValueError):
                since = dt.datetime.fromisoformat(lines[1].strip())
        return lines[0], since

    def release(self) -> None:
        try:
            if self._writable:
                os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self.close()

    def close(self) -> None:
        os.close(self._fd)


def _lock_for(engine: Engine, name: str, description: str):
    if engine.dialect.name == "postgresql":
        return _PostgresLock(engine, name, description)
    database = engine.url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None  # a private database: no other process can write it
    return _SqliteLock(Path(database).resolve(), name, description)


@contextlib.contextmanager
def warehouse_lock(
    engine: Engine,
    what: str,
    *,
    name: str = WRITER,
    timeout: float | None = None,
    poll: float = 0.5,
    log_every: float = 30.0,
) -> Iterator[None]:
    """Hold the warehouse's lock ``name`` for the ``with`` block; ``what`` says who holds it.

    Waits at most ``timeout`` seconds (default :func:`default_timeout_seconds`), logging the
    holder every ``log_every`` seconds, then raises :class:`WarehouseBusy` with one line.
    """
    key = (engine.url.render_as_string(hide_password=True), name)
    counts: dict = _held.__dict__.setdefault("counts", {})
    if counts.get(key):
        counts[key] += 1
        try:
            yield
        finally:
            counts[key] -= 1
        return
    timeout = default_timeout_seconds() if timeout is None else timeout
    lock = _lock_for(engine, name, describe(what))
    if lock is None:
        yield
        return
    started = time.monotonic()
    try:
        _wait(lock, started + timeout, poll, log_every)
    except BaseException:
        lock.close()
        raise
    waited = time.monotonic() - started
    if waited >= log_every:
        log.info("got the warehouse's %s lock after waiting %.0f s", name, waited)
    counts[key] = 1
    try:
        yield
    finally:
        counts[key] = 0
        try:
            lock.release()
        except Exception:  # the lock ends with the session or process anyway: never mask
            log.warning("could not release the warehouse's %s lock cleanly", name, exc_info=True)


def _wait(lock, deadline: float, poll: float, log_every: float) -> None:
    next_log = time.monotonic()
    while not lock.try_acquire():
        now = time.monotonic()
        if now >= deadline:
            holder, since = lock.holder() or ("another process", None)
            raise WarehouseBusy(
                f"the warehouse is busy: {excerpt(one_line(holder), 200)} since {_since(since)}; "
                "try again later"
            )
        if now >= next_log:
            holder, since = lock.holder() or ("another process", None)
            log.warning(
                "waiting for the warehouse: %s holds it since %s (giving up in %.0f s)",
                excerpt(one_line(holder), 200),
                _since(since),
                deadline - now,
            )
            next_log = now + log_every
        time.sleep(max(0.0, min(poll, deadline - now)))
