"""Alembic environment: the URL and connection come from :func:`receivables.warehouse.migrate`."""

from __future__ import annotations

from alembic import context

from receivables.warehouse.db import create_engine
from receivables.warehouse.schema import metadata

config = context.config


def run_migrations_online() -> None:
    """Run against the connection handed over by ``migrate.upgrade`` (or a fresh engine)."""
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = create_engine(config.get_main_option("sqlalchemy.url"))
    with engine.connect() as conn:
        _run(conn)
    engine.dispose()


def _run(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    raise SystemExit("offline migrations are not supported: run `receivables init`")
run_migrations_online()
