"""Engines for the warehouse: URL normalisation, SQLite pragmas, dialect helpers."""

from __future__ import annotations

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
    return sa.create_engine(parsed, pool_pre_ping=True, **kwargs)


def is_sqlite(engine: Engine) -> bool:
    """True when the engine talks to SQLite."""
    return engine.dialect.name == "sqlite"
