"""The staging table of one file: bulk load, set-based checks in SQL, and the atomic merge.

Each attempt at loading a file gets a staging table of its own, ``stg_ingest_<kind>_<attempt>``
(a random id), so what a crashed attempt left behind never collides with the next one; such
leftovers are dropped by :func:`drop_leftovers` at the start of the next ingest, which holds the
warehouse's writer lock (so no other attempt can be using them). The table holds every
non-blank row of the file — good rows and held-back rows alike, so repeated ids are found even
when one copy is broken — with the row number, a ``held`` flag and the parsed values. On
PostgreSQL it is UNLOGGED and filled with ``COPY``; on SQLite it is filled with ``executemany``.

The view of the good rows that Great Expectations validates keeps one name per kind,
``stg_ingest_<kind>_good``: GX registers the view once, by name, as a table asset of its
project. Each attempt replaces it, under the writer lock.

Most kinds merge with SQL (``sql/ingest/merge_<kind>.sql``). A kind whose rows are steps, each
legal only after the ones before it (``legal_updates``: see
:mod:`receivables.ingest.legal_updates`), is rehearsed row by row as its last check and taken
row by row, in file order, as its merge.
"""

from __future__ import annotations

import datetime as dt
import logging
import queue
import re
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from receivables.ingest import legal_updates
from receivables.ingest.kinds import FileKind
from receivables.ingest.rules import PROBLEM_SCHEMA
from receivables.paths import SQL_DIR
from receivables.warehouse import sqlfiles
from receivables.warehouse.bulk import write_arrow

log = logging.getLogger(__name__)

_SQL_TYPES = {"date": sa.Date, "amount": sa.BigInteger, "bool": sa.Boolean, "rate": sa.BigInteger}


#: Every staging table and view starts with this.
PREFIX = "stg_ingest_"

#: Kinds whose rows are taken one by one in file order (see the module's docstring).
STEPWISE = {"legal_updates": legal_updates}
#: Row numbers bound in one statement (SQLite allows a limited number of parameters).
_HELD_PER_STATEMENT = 500


def staging_name(kind: FileKind) -> str:
    """The prefix of ``kind``'s staging tables (each attempt adds its own id)."""
    return f"{PREFIX}{kind.name}"


def staging_table(kind: FileKind, dialect: str, name: str | None = None) -> sa.Table:
    """The staging table definition for ``kind`` (named ``name``, default the kind's prefix)."""
    # SQLite joins through indexes (row_number as the rowid, ids indexed after the load);
    # PostgreSQL hash-joins a freshly ANALYZEd table faster than it could build the indexes.
    key = dialect == "sqlite"
    columns = [
        sa.Column(
            "row_number",
            sa.Integer if key else sa.BigInteger,
            primary_key=key,
            autoincrement=False,
            nullable=False,
        ),
        sa.Column("held", sa.Boolean, nullable=False),
    ]
    for column in kind.columns:
        columns.append(sa.Column(column.staged_name, _SQL_TYPES.get(column.type, sa.Text)()))
    prefixes = ["UNLOGGED"] if dialect == "postgresql" else []
    return sa.Table(name or staging_name(kind), sa.MetaData(), *columns, prefixes=prefixes)


def drop_leftovers(engine: Engine) -> list[str]:
    """Drop every staging table and view (what crashed attempts left); return their names.

    Only safe while holding the warehouse's writer lock: no other attempt is loading then.
    """
    inspector = sa.inspect(engine)
    views = [v for v in inspector.get_view_names() if v.startswith(PREFIX)]
    tables = [t for t in inspector.get_table_names() if t.startswith(PREFIX)]
    if views or tables:
        preparer = engine.dialect.identifier_preparer
        with engine.begin() as conn:
            for view in views:  # first: on PostgreSQL a view keeps its table from being dropped
                conn.exec_driver_sql(f"DROP VIEW IF EXISTS {preparer.quote(view)}")
            for table in tables:
                conn.exec_driver_sql(f"DROP TABLE IF EXISTS {preparer.quote(table)}")
        log.info("dropped staging left by earlier attempts: %s", ", ".join(views + tables))
    return views + tables


@dataclass
class Staging:
    """Loads one file's checked rows and runs the set-based checks and the merge."""

    engine: Engine
    kind: FileKind
    #: this attempt's id: part of the table's name
    attempt: str = field(default_factory=lambda: uuid.uuid4().hex[:10])

    def __post_init__(self) -> None:
        self.dialect = self.engine.dialect.name
        name = f"{staging_name(self.kind)}_{self.attempt}"
        self.table = staging_table(self.kind, self.dialect, name)
        self.name = self.table.name

    @property
    def good_rows_view(self) -> str:
        """A view of the rows that passed every check: what GX validates and the merge loads.

        (A view rather than a query: GX reads a view's column types from the catalogue, but
        runs a query to learn them.) One name per kind: see the module's docstring."""
        return f"{staging_name(self.kind)}_good"

    def reset(self) -> None:
        """Create this attempt's empty staging table and (re)point the good-rows view at it."""
        with self.engine.begin() as conn:
            conn.exec_driver_sql(f"DROP VIEW IF EXISTS {self.good_rows_view}")
            self.table.create(conn)
            conn.exec_driver_sql(
                f"CREATE VIEW {self.good_rows_view} AS SELECT * FROM {self.name} WHERE NOT held"
            )

    def drop(self) -> None:
        """Drop the staging table and the good-rows view (it shows this attempt's rows)."""
        with self.engine.begin() as conn:
            conn.exec_driver_sql(f"DROP VIEW IF EXISTS {self.good_rows_view}")
            self.table.drop(conn, checkfirst=True)

    def loader(self) -> StagingLoader:
        """A loader that writes batches on a background thread (see :class:`StagingLoader`)."""
        return StagingLoader(self)

    def write(self, conn: Connection, staged: pa.Table) -> None:
        """Write one batch of staged rows inside ``conn``'s transaction."""
        write_arrow(conn, self.name, staged)

    def index(self) -> None:
        """Prepare the loaded table for the checks: indexes on SQLite, statistics on PostgreSQL
        (without them the planner takes the table for empty and loops over it)."""
        with self.engine.begin() as conn:
            if self.dialect == "postgresql":
                conn.exec_driver_sql(f"ANALYZE {self.name}")
                return
            for column in self.kind.columns:
                if column.type == "id":
                    conn.exec_driver_sql(
                        f"CREATE INDEX ix_{self.name}_{column.name} ON {self.name} ({column.name})"
                    )

    def run_checks(self, params: Mapping[str, Any] | None = None) -> pa.Table:
        """Run the set-based checks; hold back the rows they name; return their problems.

        ``params`` are bound in the checks that name them (e.g. ``:reporting_currency``); a
        stepwise kind's rehearsal takes ``as_of`` (the run's business date) and ``file_name``
        (the file's name as shown)."""
        found: list[pa.Table] = []
        checks = [("ingest/check_duplicates.sql", {"id": self.kind.id_column})]
        own = f"ingest/checks_{self.kind.name}.sql"  # checks against the warehouse, if any
        if (SQL_DIR / own).exists():
            checks.append((own, {}))
        for template, context in checks:
            for statement in sqlfiles.render(template, self.dialect, stg=self.name, **context):
                started = time.perf_counter()
                used = {
                    k: v
                    for k, v in (params or {}).items()
                    if re.search(rf"(?<!:):{k}\b", statement)
                }
                with self.engine.begin() as conn:
                    rows = conn.execute(sa.text(statement), used).all()
                    if rows:
                        conn.execute(
                            sa.text(
                                f"UPDATE {self.name} SET held = true WHERE row_number IN "
                                f"(SELECT row_number FROM ({statement}) AS problems)"
                            ),
                            used,
                        )
                log.debug(
                    "%s: check %s found %d problem(s) in %.2f s",
                    self.name,
                    " ".join(statement.split()[:12]),
                    len(rows),
                    time.perf_counter() - started,
                )
                if rows:
                    found.append(
                        pa.Table.from_pylist(
                            [dict(zip(PROBLEM_SCHEMA.names, row, strict=True)) for row in rows],
                            schema=PROBLEM_SCHEMA,
                        )
                    )
        stepwise = STEPWISE.get(self.kind.name)
        if stepwise is not None:  # last: it judges the rows every other check let through
            params = params or {}
            problems = stepwise.rehearse(
                self.engine, self.table, params["as_of"], params["file_name"]
            )
            if problems.num_rows:
                numbers = problems.column("row_number").to_pylist()
                with self.engine.begin() as conn:
                    for start in range(0, len(numbers), _HELD_PER_STATEMENT):
                        chunk = numbers[start : start + _HELD_PER_STATEMENT]
                        conn.execute(
                            sa.update(self.table)
                            .where(self.table.c.row_number.in_(chunk))
                            .values(held=True)
                        )
                found.append(problems)
        return pa.concat_tables(found) if found else PROBLEM_SCHEMA.empty_table()

    def counts(self) -> tuple[int, int]:
        """(rows staged, rows held back)."""
        with self.engine.connect() as conn:
            total, held = conn.execute(
                sa.text(
                    f"SELECT COUNT(*), COALESCE(SUM(CASE WHEN held THEN 1 ELSE 0 END), 0) "
                    f"FROM {self.name}"
                )
            ).one()
        return int(total), int(held)

    def earliest_date(self, conn: Connection) -> dt.date | None:
        """The earliest business date whose ledger the good rows change (``sql/ingest/
        earliest_<kind>.sql``, for kinds with dated rows; else None). Run before the merge,
        inside its transaction: a corrected row counts from the earlier of its old and new
        dates."""
        name = f"ingest/earliest_{self.kind.name}.sql"
        if not (SQL_DIR / name).exists():
            return None
        (result,) = sqlfiles.execute(conn, name, stg=self.name)
        value = result.scalar()
        if isinstance(value, str):  # SQLite keeps dates as ISO text
            return dt.date.fromisoformat(value)
        return value

    def merge(self, conn: Connection, file_id: int, defaults: dict[str, str]) -> int:
        """Upsert the good rows into the warehouse inside ``conn``'s transaction; return rows
        written (updated + inserted). A stepwise kind's rows are taken in file order instead
        (rows whose step is recorded already count as written)."""
        stepwise = STEPWISE.get(self.kind.name)
        if stepwise is not None:
            return stepwise.apply_rows(conn, self.table, file_id)
        params = {"file_id": file_id, **defaults}
        results = sqlfiles.execute(
            conn, f"ingest/merge_{self.kind.name}.sql", params, stg=self.name
        )
        return sum(int(result.rowcount) for result in results)


class StagingLoader:
    """Writes batches of staged rows on a background thread, in one transaction.

    Writing overlaps with reading and checking the next batch: the database parses and stores
    one batch while Python works on the next (two batches in flight at most, so memory stays
    bounded). :meth:`close` waits for the writes, commits, and raises what the writer raised.
    """

    def __init__(self, staging: Staging):
        self._staging = staging
        self._batches: queue.Queue[pa.Table | None] = queue.Queue(maxsize=2)
        self._failure: BaseException | None = None
        self._thread = threading.Thread(target=self._write, name=f"load-{staging.name}")
        self._thread.start()

    def _write(self) -> None:
        closed = False  # close()'s None was taken: nothing more will be queued
        try:
            with self._staging.engine.begin() as conn:
                while (staged := self._batches.get()) is not None:
                    self._staging.write(conn, staged)
                closed = True
        except BaseException as exc:  # re-raised in the caller's thread by put() / close()
            self._failure = exc
            # Keep draining so put() never blocks, until close()'s None; but when the failure
            # is the COMMIT after that None, waiting for another would never end.
            while not closed and self._batches.get() is not None:
                pass

    def put(self, staged: pa.Table) -> None:
        """Queue a batch (waits while two batches are still being written)."""
        if self._failure is not None:
            raise self._failure
        if staged.num_rows:
            self._batches.put(staged)

    def close(self) -> None:
        """Wait for every queued batch to be written and committed."""
        self._batches.put(None)
        self._thread.join()
        if self._failure is not None:
            raise self._failure
