"""Bulk writes of Arrow tables: ``COPY`` on PostgreSQL, ``executemany`` on SQLite.

Values must already be in the column's storage form: integer cents for money on SQLite (see
:mod:`receivables.warehouse.types`), decimals or cents-as-numeric text on PostgreSQL.
"""

from __future__ import annotations

import io

import pyarrow as pa
import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.types import TypeDecorator

#: Rows per COPY / executemany call: bounds the memory of the text buffer.
CHUNK_ROWS = 200_000


def write_arrow(conn: Connection, table_name: str, rows: pa.Table) -> None:
    """Append ``rows`` to ``table_name`` (columns by name) inside ``conn``'s transaction."""
    for start in range(0, rows.num_rows, CHUNK_ROWS):
        chunk = rows.slice(start, CHUNK_ROWS)
        if conn.dialect.name == "postgresql":
            _copy(conn, table_name, chunk)
        else:
            _executemany(conn, table_name, chunk)


def insert_rows(conn: Connection, table: sa.Table, rows: list[dict]) -> None:
    """Bulk-insert ``rows`` (dicts of Python values, as for ``table.insert()``) into ``table``.

    Each value is first put in its column's storage form (exact money and rates become integer
    units on SQLite, decimals on PostgreSQL), then the rows go through :func:`write_arrow`:
    ``COPY`` on PostgreSQL, ``executemany`` on SQLite — much faster than row-by-row inserts for
    the hundreds of thousands of rows a risk step writes.
    """
    if not rows:
        return
    dialect = conn.dialect
    columns: dict[str, list] = {}
    for column in table.columns:
        if column.name not in rows[0]:
            continue
        values = [row[column.name] for row in rows]
        if isinstance(column.type, TypeDecorator):
            values = [column.type.process_bind_param(v, dialect) for v in values]
        columns[column.name] = values
    write_arrow(conn, table.name, pa.table(columns))


def _copy(conn: Connection, table_name: str, chunk: pa.Table) -> None:
    import pyarrow.csv as pcsv

    buffer = io.BytesIO()
    pcsv.write_csv(chunk, buffer, write_options=pcsv.WriteOptions(include_header=False))
    columns = ", ".join(chunk.column_names)
    cursor = conn.connection.dbapi_connection.cursor()
    try:
        with cursor.copy(f"COPY {table_name} ({columns}) FROM STDIN WITH (FORMAT csv)") as copy:
            copy.write(buffer.getbuffer())
    finally:
        cursor.close()


def _executemany(conn: Connection, table_name: str, chunk: pa.Table) -> None:
    columns = []
    for name in chunk.column_names:
        array = chunk.column(name)
        if pa.types.is_date(array.type):
            array = array.cast(pa.string())  # ISO text, as SQLite stores dates
        columns.append(array.to_pylist())
    placeholders = ", ".join("?" for _ in columns)
    sql = f"INSERT INTO {table_name} ({', '.join(chunk.column_names)}) VALUES ({placeholders})"
    conn.exec_driver_sql(sql, list(zip(*columns, strict=True)))
