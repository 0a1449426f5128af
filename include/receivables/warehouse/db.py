"""Engines for the warehouse: URL normalisation, SQLite pragmas, dialect helpers."""

from __future__ import annotations

import os
import re
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import URL, Engine, make_url

#: Seconds to wait for a PostgreSQL server to answer a new connection (unless the URL says).
CONNECT_TIMEOUT_SECONDS = 30

_SERVER_PREFIXES = re.compile(r"^(connection failed: )?(.*?FATAL:\s+)?")


class WarehouseUnavailable(RuntimeError):
    """The warehouse cannot be opened: no such database, no server, a path that cannot be
    created. The message is one line: the URL (password hidden) and the server's own words."""


def _first_words(exc: BaseException) -> str:
    """The driver's or server's own first line, without the driver's wrapping."""
    cause = getattr(exc, "orig", None) or exc
    if isinstance(cause, OSError) and cause.strerror:
        return cause.strerror + (f": {cause.filename}" if cause.filename else "")
    lines = [line.strip() for line in str(cause).splitlines() if line.strip()]
    return _SERVER_PREFIXES.sub("", lines[0]) if lines else type(cause).__name__


def unavailable(
    url: str | URL, exc: BaseException, words: str | None = None
) -> WarehouseUnavailable:
    """The one-line error for a warehouse at ``url`` that ``exc`` kept from opening (``words``
    say why; by default the driver's or server's own first line)."""
    words = _first_words(exc) if words is None else words
    return WarehouseUnavailable(f"cannot open the warehouse {redact(url)}: {words}")


def normalize_url(url: str | URL) -> URL:
    """Accept what people paste: ``postgres://`` and plain ``postgresql://`` URLs work as is."""
    if isinstance(url, str):
        url = url.strip()
        if url.startswith("postgres://"):
            url = "postgresql://" + url[len("postgres://") :]
    parsed = make_url(url)
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise ValueError(
            f"unsupported warehouse database {parsed.get_backend_name()!r}: "
            "use a sqlite:/// or postgresql:// URL"
        )
    return parsed


def redact(url: str | URL) -> str:
    """The URL with its password hidden, for logs and messages."""
    return normalize_url(url).render_as_string(hide_password=True)


def create_engine(url: str | URL, **kwargs) -> Engine:
    """Create an engine; for SQLite make the folder, enforce foreign keys and allow waiting."""
    parsed = normalize_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            folder = Path(parsed.database).parent
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except (FileExistsError, NotADirectoryError) as exc:
                words = f"cannot create the folder {folder}: a file is in the way"
                raise unavailable(parsed, exc, words) from None
            except OSError as exc:
                words = f"cannot create the folder {folder}: {exc.strerror or exc}"
                raise unavailable(parsed, exc, words) from None
        engine = sa.create_engine(parsed, connect_args={"timeout": 60}, **kwargs)

        @sa.event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection, _record):
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        return engine
    connect_args = kwargs.pop("connect_args", {})
    if "connect_timeout" not in parsed.query:
        # an unroutable host would otherwise hang every task until the TCP stack gives up
        connect_args.setdefault("connect_timeout", CONNECT_TIMEOUT_SECONDS)
    engine = sa.create_engine(parsed, pool_pre_ping=True, connect_args=connect_args, **kwargs)
    work_mem = os.environ.get("RECEIVABLES_PG_WORK_MEM", "64MB")

    @sa.event.listens_for(engine, "connect")
    def _session(dbapi_connection, _record):
        # Batch work groups and hashes millions of rows: the server's default of 4 MB per
        # sort spills them to disk. Set per session, so other users of the server keep theirs.
        cursor = dbapi_connection.cursor()
        cursor.execute("SELECT set_config('work_mem', %s, false)", (work_mem,))
        cursor.close()
        dbapi_connection.commit()

    return engine


def check_reachable(engine: Engine) -> None:
    """Connect once; raise :class:`WarehouseUnavailable` (one line) when that fails."""
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
    except (sa.exc.OperationalError, sa.exc.InterfaceError, OSError) as exc:
        raise unavailable(engine.url, exc) from None


def refresh_statistics(engine: Engine, *tables: str) -> None:
    """Update the planner's statistics of ``tables`` after a bulk write, so the next statements
    do not plan for yesterday's sizes (autovacuum would get there too, but only after them).
    On SQLite a sampled ``ANALYZE`` (``analysis_limit``) keeps it cheap on big tables."""
    with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            conn.exec_driver_sql("PRAGMA analysis_limit = 2000")
        for table in tables:
            conn.exec_driver_sql(f"ANALYZE {table}")
