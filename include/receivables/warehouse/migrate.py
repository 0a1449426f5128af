"""Create or upgrade the warehouse schema with Alembic (``receivables init``)."""

from __future__ import annotations

import logging

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Engine

from receivables.paths import MIGRATIONS_DIR

log = logging.getLogger(__name__)


def alembic_config(engine: Engine) -> Config:
    """An Alembic config pointing at the package's migrations, without an ini file."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option(
        "sqlalchemy.url", engine.url.render_as_string(hide_password=False).replace("%", "%%")
    )
    return cfg


def head_revision(engine: Engine) -> str:
    """The newest migration in the code."""
    return ScriptDirectory.from_config(alembic_config(engine)).get_current_head()


def current_revision(engine: Engine) -> str | None:
    """The migration the database is at (None for an empty database)."""
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine: Engine) -> tuple[str | None, str]:
    """Upgrade the warehouse to the newest schema; return (revision before, revision after)."""
    before = current_revision(engine)
    cfg = alembic_config(engine)
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
    after = current_revision(engine)
    if before != after:
        log.info("warehouse schema upgraded from %s to %s", before or "empty", after)
    return before, after


def ensure_current(engine: Engine) -> None:
    """Refuse to work on a warehouse whose schema is not the code's (a clear, early error)."""
    current, head = current_revision(engine), head_revision(engine)
    if current != head:
        raise RuntimeError(
            f"the warehouse schema is at {current or 'nothing (empty database)'} but this code "
            f"needs {head}: run `receivables init` first"
        )
