"""Bulk writes of Arrow tables: ``COPY`` on PostgreSQL, ``executemany`` on SQLite.

Values must already be in the column's storage form: integer cents for money on SQLite (see
:mod:`receivables.warehouse.types`), decimals or cents-as-numeric text on PostgreSQL.
"""

from __future__ import annotations

import io

import pyarrow as pa
from sqlalchemy.engine import Connection

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
