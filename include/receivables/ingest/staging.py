"""The staging table of one file: bulk load, set-based checks in SQL, and the atomic merge.

Each kind has one staging table, ``stg_ingest_<kind>`` (files are loaded one at a time: the
DAG runs the per-file tasks in sequence). It holds every non-blank row of the file — good rows
and held-back rows alike, so repeated ids are found even when one copy is broken — with the
row number, a ``held`` flag and the parsed values. On PostgreSQL it is UNLOGGED and filled with
``COPY``; on SQLite it is filled with ``executemany``.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from receivables.ingest.kinds import FileKind
from receivables.ingest.rules import PROBLEM_SCHEMA
from receivables.warehouse import sqlfiles

log = logging.getLogger(__name__)

_SQL_TYPES = {"date": sa.Date, "amount": sa.BigInteger, "bool": sa.Boolean}
#: Rows per executemany / COPY chunk.
CHUNK_ROWS = 200_000


def staging_name(kind: FileKind) -> str:
    """The staging table of ``kind``."""
    return f"stg_ingest_{kind.name}"


def staging_table(kind: FileKind, dialect: str) -> sa.Table:
    """The staging table definition for ``kind``."""
    columns = [
        sa.Column("row_number", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("held", sa.Boolean, nullable=False),
    ]
    for column in kind.columns:
        columns.append(sa.Column(column.staged_name, _SQL_TYPES.get(column.type, sa.Text)()))
    prefixes = ["UNLOGGED"] if dialect == "postgresql" else []
    return sa.Table(staging_name(kind), sa.MetaData(), *columns, prefixes=prefixes)


@dataclass
class Staging:
    """Loads one file's checked rows and runs the set-based checks and the merge."""

    engine: Engine
    kind: FileKind

    def __post_init__(self) -> None:
        self.dialect = self.engine.dialect.name
        self.table = staging_table(self.kind, self.dialect)
        self.name = self.table.name

    def reset(self) -> None:
        """Drop what a crashed attempt may have left and create an empty staging table."""
        with self.engine.begin() as conn:
            self.table.drop(conn, checkfirst=True)
            self.table.create(conn)

    def drop(self) -> None:
        """Drop the staging table."""
        with self.engine.begin() as conn:
            self.table.drop(conn, checkfirst=True)

    def append(self, staged: pa.Table) -> None:
        """Append a batch of staged rows (committed at once, so validation can see them)."""
        if staged.num_rows == 0:
            return
        with self.engine.begin() as conn:
            for start in range(0, staged.num_rows, CHUNK_ROWS):
                chunk = staged.slice(start, CHUNK_ROWS)
                if self.dialect == "postgresql":
                    self._copy(conn, chunk)
                else:
                    self._executemany(conn, chunk)

    def _copy(self, conn: Connection, chunk: pa.Table) -> None:
        import pyarrow.csv as pcsv

        buffer = io.BytesIO()
        pcsv.write_csv(chunk, buffer, write_options=pcsv.WriteOptions(include_header=False))
        columns = ", ".join(chunk.column_names)
        cursor = conn.connection.dbapi_connection.cursor()
        try:
            with cursor.copy(f"COPY {self.name} ({columns}) FROM STDIN WITH (FORMAT csv)") as copy:
                copy.write(buffer.getbuffer())
        finally:
            cursor.close()

    def _executemany(self, conn: Connection, chunk: pa.Table) -> None:
        columns = []
        for name in chunk.column_names:
            array = chunk.column(name)
            if pa.types.is_date(array.type):
                array = pc.strftime(array.cast(pa.timestamp("s")), format="%Y-%m-%d")
            columns.append(array.to_pylist())
        placeholders = ", ".join("?" for _ in columns)
        sql = f"INSERT INTO {self.name} ({', '.join(chunk.column_names)}) VALUES ({placeholders})"
        conn.exec_driver_sql(sql, list(zip(*columns, strict=True)))

    def index(self) -> None:
        """Index the id columns once loaded (faster than maintaining them during the load)."""
        with self.engine.begin() as conn:
            for column in self.kind.columns:
                if column.type == "id":
                    conn.exec_driver_sql(
                        f"CREATE INDEX ix_{self.name}_{column.name} ON {self.name} ({column.name})"
                    )
            if self.dialect == "postgresql":
                conn.exec_driver_sql(f"ANALYZE {self.name}")

    def run_checks(self) -> pa.Table:
        """Run the set-based checks; hold back the rows they name; return their problems."""
        found: list[pa.Table] = []
        checks = [("ingest/check_duplicates.sql", {"id": self.kind.id_column})]
        if self.kind.name in ("invoices", "payments"):
            checks.append((f"ingest/checks_{self.kind.name}.sql", {}))
        for template, context in checks:
            for statement in sqlfiles.render(template, self.dialect, stg=self.name, **context):
                with self.engine.begin() as conn:
                    rows = conn.execute(sa.text(statement)).all()
                    if rows:
                        conn.execute(
                            sa.text(
                                f"UPDATE {self.name} SET held = true WHERE row_number IN "
                                f"(SELECT row_number FROM ({statement}) AS problems)"
                            )
                        )
                if rows:
                    found.append(
                        pa.Table.from_pylist(
                            [dict(zip(PROBLEM_SCHEMA.names, row, strict=True)) for row in rows],
                            schema=PROBLEM_SCHEMA,
                        )
                    )
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

    def merge(self, conn: Connection, file_id: int, defaults: dict[str, str]) -> int:
        """Upsert the good rows into the warehouse inside ``conn``'s transaction; return rows."""
        params = {"file_id": file_id, **defaults}
        (result,) = sqlfiles.execute(
            conn, f"ingest/merge_{self.kind.name}.sql", params, stg=self.name
        )
        return int(result.rowcount)
