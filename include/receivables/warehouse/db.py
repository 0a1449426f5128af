"""Engines for the warehouse: URL normalisation, SQLite pragmas, dialect helpers."""

from __future__ import annotations

import os
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import URL, Engine, make_url


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
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(parsed, connect_args={"timeout": 60}, **kwargs)

        @sa.event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection, _record):
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        return engine
    engine = sa.create_engine(parsed, pool_pre_ping=True, **kwargs)
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


def refresh_statistics(engine: Engine, *tables: str) -> None:
    """Update the planner's statistics of ``tables`` after a bulk write, so the next statements
    do not plan for yesterday's sizes (autovacuum would get there too, but only after them).
    On SQLite a sampled ``ANALYZE`` (``analysis_limit``) keeps it cheap on big tables."""
    with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            conn.exec_driver_sql("PRAGMA analysis_limit = 2000")
        for table in tables:
            conn.exec_driver_sql(f"ANALYZE {table}")
