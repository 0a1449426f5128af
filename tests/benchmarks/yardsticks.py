"""The yardsticks: hand-written aging SQL, DuckDB on the CSV files, PostgreSQL ``COPY``.

The hand-written statement is written from docs/contract.md §5 alone (not from the package's SQL):
outstanding = amount − payments with ``paid_date`` ≤ as-of, one row per invoice issued on or
before the as-of date with outstanding > 0; days past due = as-of − due date when positive;
bucket and five-category risk class by days past due. It is one ``CREATE TABLE … AS SELECT``
with no indexes, which is what "one hand-written set-based statement" costs on each engine.
"""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

# Bands of docs/contract.md §5 (the package's defaults say the same; keeping them literal here makes
# the yardstick an independent check of the package's snapshot).
_BUCKET = """CASE WHEN dpd = 0 THEN 'current' WHEN dpd <= 30 THEN '1-30'
     WHEN dpd <= 60 THEN '31-60' WHEN dpd <= 90 THEN '61-90' WHEN dpd <= 180 THEN '91-180'
     WHEN dpd <= 360 THEN '181-360' ELSE '361+' END"""
_RISK = """CASE WHEN dpd = 0 THEN 'normal' WHEN dpd <= 90 THEN 'special_mention'
     WHEN dpd <= 270 THEN 'substandard' WHEN dpd <= 360 THEN 'doubtful' ELSE 'loss' END"""

# {as_of} is a literal date (a constant of the benchmark, not input): PostgreSQL does not take
# bound parameters in CREATE TABLE AS.
_AGING_SELECT = """SELECT {as_of} AS as_of_date, invoice_id, customer_id, currency, amount,
       outstanding, due_date, dpd AS days_past_due,
       {bucket} AS bucket,
       {risk} AS risk_class
FROM (
    SELECT i.invoice_id, i.customer_id, i.currency, i.amount, i.due_date,
           i.amount - COALESCE(p.paid, 0) AS outstanding,
           {dpd} AS dpd
    FROM {invoices} i
    LEFT JOIN (
        SELECT invoice_id, SUM(amount) AS paid
        FROM {payments}
        WHERE paid_date <= {as_of}
        GROUP BY invoice_id
    ) p ON p.invoice_id = i.invoice_id
    WHERE i.issue_date <= {as_of}
) a
WHERE outstanding > 0"""
_AGING = "CREATE TABLE {table} AS\n" + _AGING_SELECT

YARDSTICK_TABLE = "aging_yardstick"


def handwritten_aging_sql(dialect: str, as_of: dt.date, table: str = YARDSTICK_TABLE) -> str:
    """The hand-written aging statement for ``dialect`` (sqlite, postgresql or duckdb).

    On SQLite money is integer cents and dates are ISO text (see warehouse/types.py), so the
    same text works with ``julianday``; PostgreSQL and DuckDB subtract dates directly.
    """
    if dialect == "sqlite":
        literal = f"'{as_of.isoformat()}'"
        dpd = f"MAX(CAST(julianday({literal}) - julianday(i.due_date) AS INTEGER), 0)"
    else:
        literal = f"DATE '{as_of.isoformat()}'"
        dpd = f"GREATEST({literal} - i.due_date, 0)"
    return _AGING.format(
        table=table,
        as_of=literal,
        dpd=dpd,
        bucket=_BUCKET,
        risk=_RISK,
        invoices="invoices",
        payments="payments",
    )


def duckdb_aging_select(data_dir: Path, as_of: dt.date) -> str:
    """The hand-written aging as a SELECT over the CSV files (for the risk yardsticks)."""
    literal = f"DATE '{as_of.isoformat()}'"
    select = _AGING_SELECT.format(
        as_of=literal,
        dpd=f"GREATEST({literal} - i.due_date, 0)",
        bucket=_BUCKET,
        risk=_RISK,
        invoices="invoices",
        payments="payments",
    )
    return _from_csv(select, data_dir)


def csv_sources(data_dir: Path) -> dict[str, str]:
    """``read_csv`` expressions of the generated files, typed (amounts DECIMAL(18, 2): exact)."""
    return {
        "invoices": (
            f"read_csv('{data_dir / 'invoices.csv'}', header = true, columns = {{"
            "'invoice_id': 'VARCHAR', 'customer_id': 'VARCHAR', 'issue_date': 'DATE', "
            "'due_date': 'DATE', 'amount': 'DECIMAL(18,2)', 'currency': 'VARCHAR', "
            "'description': 'VARCHAR', 'disputed': 'BOOLEAN'})"
        ),
        "payments": (
            f"read_csv('{data_dir / 'payments.csv'}', header = true, columns = {{"
            "'payment_id': 'VARCHAR', 'invoice_id': 'VARCHAR', 'paid_date': 'DATE', "
            "'amount': 'DECIMAL(18,2)', 'method': 'VARCHAR'})"
        ),
        # only the id is used; every column read as text
        "customers": f"read_csv('{data_dir / 'customers.csv'}', header = true, all_varchar = true)",
    }


def _from_csv(sql: str, data_dir: Path) -> str:
    """The hand-written statement with ``read_csv`` in place of the warehouse tables."""
    sources = csv_sources(data_dir)
    sql = sql.replace(" invoices i", f" {sources['invoices']} i")
    return sql.replace("FROM payments", f"FROM {sources['payments']}")


def duckdb_aging(data_dir: Path, as_of: dt.date, threads: int | None = None) -> dict:
    """Age straight from the CSV files with DuckDB; return seconds and the snapshot's totals.

    Same statement as the hand-written one, with ``read_csv`` in place of the tables; amounts
    as DECIMAL(18, 2) so totals are exact.
    """
    import duckdb

    sql = _from_csv(handwritten_aging_sql("duckdb", as_of), data_dir)
    con = duckdb.connect()
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    runs = []
    for _ in range(2):
        con.execute(f"DROP TABLE IF EXISTS {YARDSTICK_TABLE}")
        started = time.perf_counter()
        con.execute(sql)
        runs.append(time.perf_counter() - started)
    totals = snapshot_totals(con, YARDSTICK_TABLE, "duckdb")
    con.close()
    return {"seconds": runs, **totals}


def snapshot_totals(conn, table: str, dialect: str, where: str = "") -> dict:
    """Rows, total outstanding in cents, and rows per (bucket, risk class) of an aging table.

    ``conn`` is a DBAPI-like connection with ``execute`` (sqlite3, psycopg, duckdb) or a
    SQLAlchemy connection (wrapped by the caller).
    """
    cents = "outstanding" if dialect == "sqlite" else "CAST(outstanding * 100 AS BIGINT)"
    rows, total = conn.execute(
        f"SELECT COUNT(*), COALESCE(SUM({cents}), 0) FROM {table} {where}"
    ).fetchone()
    groups = conn.execute(
        f"SELECT bucket, risk_class, COUNT(*) FROM {table} {where} "
        "GROUP BY bucket, risk_class ORDER BY bucket, risk_class"
    ).fetchall()
    return {
        "rows": int(rows),
        "outstanding_cents": int(total),
        "by_class": {f"{b}/{r}": int(n) for b, r, n in groups},
    }


def pg_copy(
    url: str, path: Path, table: str, create: list[str], columns: list[str] | None = None
) -> dict:
    """``COPY`` a CSV file into a new table, streaming it; return seconds and rows.

    ``create`` are the statements that make the table (not timed); the COPY and its commit are
    timed, reading the file in 1 MiB chunks as a client would. ``columns`` names the file's
    columns when the table has others too.
    """
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"DROP TABLE IF EXISTS {table}")
        for statement in create:
            conn.execute(statement)
    target = f"{table} ({', '.join(columns)})" if columns else table
    with psycopg.connect(url) as conn:
        started = time.perf_counter()
        with conn.cursor() as cursor:
            with (
                cursor.copy(f"COPY {target} FROM STDIN WITH (FORMAT csv, HEADER true)") as copy,
                path.open("rb") as f,
            ):
                while chunk := f.read(1 << 20):
                    copy.write(chunk)
            rows = cursor.rowcount
        conn.commit()
        seconds = time.perf_counter() - started
    return {"seconds": seconds, "rows": rows, "bytes": path.stat().st_size}


def create_table(table: str, columns: list[tuple[str, str]]) -> list[str]:
    """The statement creating a plain table of ``(name, type)`` columns."""
    return [f"CREATE TABLE {table} ({', '.join(f'{n} {t}' for n, t in columns)})"]


def create_like_warehouse(table: str, warehouse_table: str, indexes: bool = True) -> list[str]:
    """A table shaped like a migrated warehouse table: types, defaults, CHECKs (and indexes,
    primary key included, unless ``indexes`` is False).

    ``source_file_id`` gets a default, since the file does not carry it.
    """
    like = "INCLUDING ALL" if indexes else "INCLUDING DEFAULTS INCLUDING CONSTRAINTS"
    return [
        f"CREATE TABLE {table} (LIKE {warehouse_table} {like})",
        f"ALTER TABLE {table} ALTER COLUMN source_file_id SET DEFAULT 0",
    ]


#: Typed columns of the invoices file for the typed COPY.
INVOICE_TYPES = {
    "issue_date": "date",
    "due_date": "date",
    "amount": "numeric(18, 2)",
    "disputed": "boolean",
}


# --- risk yardsticks (DuckDB from the CSV files) ----------------------------------------------

#: docs/formulas.md's classification rule, literal here too (an independent check of the package):
#: an invoice is substandard or worse from 91 days past due (docs/contract.md §5's bands above); a
#: customer whose substandard-or-worse share of outstanding exceeds 10 % has the rule applied.
SUBSTANDARD_FROM_DAYS = 91
SUBSTANDARD_SHARE = 0.10

# Per customer and currency: worst days past due → class, and the 10 % rule; counted per class.
_CLASSES = """WITH aging AS (
{aging}
), c AS (
    SELECT customer_id, currency,
           CAST(SUM(outstanding) AS DOUBLE) AS outstanding,
           CAST(SUM(CASE WHEN days_past_due >= {substandard_from} THEN outstanding ELSE 0 END)
                AS DOUBLE) AS bad,
           MAX(days_past_due) AS dpd
    FROM aging
    GROUP BY customer_id, currency
)
SELECT {risk} AS risk_class,
       COUNT(*) AS customers,
       SUM(CASE WHEN bad / outstanding > {share} THEN 1 ELSE 0 END) AS rule_applied
FROM c
GROUP BY 1
ORDER BY 1"""

# ECL per currency of the DuckDB aging with a provision matrix (table ``rates``), rounded to
# the cent per invoice both ways the warehouses do it (see ``duckdb_risk``).
_ECL = """WITH aging AS (
{aging}
), a AS (
    SELECT currency, bucket, CAST(outstanding * 100 AS BIGINT) AS cents FROM aging
)
SELECT a.currency,
       COUNT(*) AS invoices,
       COUNT(r.rate) AS rated,
       SUM(a.cents) AS outstanding_cents,
       SUM((2 * CAST(a.cents AS HUGEINT) * r.numerator + r.scale) // (2 * r.scale))
           AS ecl_decimal_cents,
       SUM(CAST(floor(CAST(a.cents AS DOUBLE) * r.rate + 0.5) AS BIGINT)) AS ecl_double_cents
FROM a
LEFT JOIN rates r ON r.currency = a.currency AND r.bucket = a.bucket
GROUP BY a.currency
ORDER BY a.currency"""

# Two scoring features of receivables.risk.features, per customer as of {t}, from the module's
# definitions: an invoice counts when its due date has passed and it was due in the last 365
# days or is still open; its days late are those at full settlement (the first payment date on
# which the payments, in date order, reach the amount) or, while open, {t} − due date.
_FEATURES = """WITH inv AS (
    SELECT invoice_id, customer_id, issue_date, due_date, amount
    FROM {invoices}
    WHERE customer_id IN (SELECT customer_id FROM {customers})
), running AS (
    SELECT invoice_id, paid_date,
           SUM(amount) OVER (PARTITION BY invoice_id ORDER BY paid_date) AS paid
    FROM {payments}
), settled AS (
    SELECT r.invoice_id, MIN(r.paid_date) AS full_paid
    FROM running r
    JOIN inv i ON i.invoice_id = r.invoice_id
    WHERE r.paid >= i.amount
    GROUP BY r.invoice_id
), per_invoice AS (
    SELECT i.customer_id,
           i.due_date <= {t} AND (i.due_date > {t} - 365 OR s.full_paid IS NULL
                                  OR s.full_paid > {t}) AS relevant,
           CASE WHEN s.full_paid <= {t} THEN GREATEST(s.full_paid - i.due_date, 0)
                ELSE GREATEST({t} - i.due_date, 0) END AS late
    FROM inv i
    LEFT JOIN settled s ON s.invoice_id = i.invoice_id
    WHERE i.issue_date <= {t}
)
SELECT customer_id,
       MAX(CASE WHEN relevant THEN late ELSE 0 END) AS worst_dpd_12m,
       COALESCE(SUM(late) FILTER (WHERE relevant) / COUNT(*) FILTER (WHERE relevant), 0)
           AS avg_dpd_12m
FROM per_invoice
GROUP BY customer_id"""

_COMPARE_FEATURES = """SELECT
    COUNT(*) AS customers,
    COUNT(*) FILTER (WHERE d.customer_id IS NULL) AS only_package,
    COUNT(*) FILTER (WHERE p.customer_id IS NULL) AS only_duckdb,
    COUNT(*) FILTER (WHERE d.worst_dpd_12m <> p.worst_dpd_12m) AS worst_dpd_12m_differs,
    COUNT(*) FILTER (WHERE abs(d.avg_dpd_12m - p.avg_dpd_12m) > 1e-9) AS avg_dpd_12m_differs
FROM duck_features d
FULL JOIN read_parquet('{path}') p ON p.customer_id = d.customer_id"""

_FEATURE_DIFFERENCES = """SELECT d.customer_id, d.worst_dpd_12m, p.worst_dpd_12m,
       d.avg_dpd_12m, p.avg_dpd_12m
FROM duck_features d
JOIN read_parquet('{path}') p ON p.customer_id = d.customer_id
WHERE d.worst_dpd_12m <> p.worst_dpd_12m OR abs(d.avg_dpd_12m - p.avg_dpd_12m) > 1e-9
ORDER BY d.customer_id
LIMIT 5"""


def rate_terms(rate: float) -> tuple[str, str]:
    """A loss rate as PostgreSQL turns ``float8`` into ``numeric`` (15 significant digits,
    ``DBL_DIG``): an integer numerator and a power-of-ten denominator, as decimal strings."""
    from decimal import Decimal

    sign, digits, exponent = Decimal(f"{rate:.15g}").as_tuple()
    numerator = int("".join(map(str, digits))) * (-1 if sign else 1)
    if exponent >= 0:
        return str(numerator * 10**exponent), "1"
    return str(numerator), str(10**-exponent)


def _timed(con, sql: str, runs: int = 2):
    """Run ``sql`` ``runs`` times; its rows (of the last run) and the seconds of each run."""
    seconds, rows = [], []
    for _ in range(runs):
        started = time.perf_counter()
        rows = con.execute(sql).fetchall()
        seconds.append(time.perf_counter() - started)
    return rows, seconds


def duckdb_risk(data_dir: Path, as_of: dt.date, packages: dict[str, dict], probe=None) -> dict:
    """The risk yardsticks straight from the CSV files, and what is needed to check them.

    * classes: per customer and currency the worst class and the 10 % rule, counted per class;
    * ECL: the provision matrix each warehouse stored (``packages[engine]["provision_rates"]``)
      applied to the DuckDB aging, per currency, rounded per invoice to the cent exactly and
      half-up, as both warehouses do with their exact 8-place rates (and, for comparison, the
      way binary floating point would: cents × a ``DOUBLE`` rate, then ⌊x + 0.5⌋);
    * features: ``worst_dpd_12m`` and ``avg_dpd_12m`` of every customer, compared with the
      package's (``packages[engine]["features_file"]``, a Parquet file).

    ``probe`` (a :class:`~tests.benchmarks.probes.Probe`) labels each query for peak RSS.
    """
    import contextlib

    import duckdb

    def labelled(name):
        return probe.labelled(f"duckdb:{name}") if probe else contextlib.nullcontext()

    sources = csv_sources(data_dir)
    aging = duckdb_aging_select(data_dir, as_of)
    con = duckdb.connect()
    result: dict = {"seconds": {}}

    sql = _CLASSES.format(
        aging=aging, risk=_RISK, substandard_from=SUBSTANDARD_FROM_DAYS, share=SUBSTANDARD_SHARE
    )
    with labelled("classes"):
        rows, result["seconds"]["classes"] = _timed(con, sql)
    result["classes"] = {
        "by_class": {c: {"customers": int(n), "rule_applied": int(r)} for c, n, r in rows},
        "substandard_from": SUBSTANDARD_FROM_DAYS,
        "substandard_share": SUBSTANDARD_SHARE,
    }

    result["ecl"] = {}
    for engine, package in packages.items():
        con.execute(
            "CREATE OR REPLACE TABLE rates (currency VARCHAR, bucket VARCHAR, rate DOUBLE, "
            "numerator HUGEINT, scale HUGEINT)"
        )
        for r in package["provision_rates"]:
            numerator, scale = rate_terms(r["loss_rate"])
            con.execute(
                "INSERT INTO rates VALUES (?, ?, ?, CAST(? AS HUGEINT), CAST(? AS HUGEINT))",
                [r["currency"], r["bucket"], r["loss_rate"], numerator, scale],
            )
        with labelled(f"ecl:{engine}"):
            rows, seconds = _timed(con, _ECL.format(aging=aging), runs=1)
        result["seconds"][f"ecl:{engine}"] = seconds
        result["ecl"][engine] = {
            currency: {
                "invoices": int(n),
                "rated": int(rated),
                "outstanding_cents": int(out),
                "ecl_decimal_cents": int(dec),
                "ecl_double_cents": int(dbl),
            }
            for currency, n, rated, out, dec, dbl in rows
        }

    t = f"DATE '{as_of.isoformat()}'"
    sql = _FEATURES.format(t=t, **sources)
    with labelled("features"):
        _, result["seconds"]["features"] = _timed(
            con, f"CREATE OR REPLACE TABLE duck_features AS {sql}"
        )
    (customers,) = con.execute("SELECT COUNT(*) FROM duck_features").fetchone()
    result["features"] = {"customers": int(customers), "compared": {}}
    for engine, package in packages.items():
        path = package.get("features_file")
        if not path or not Path(path).exists():
            continue
        names = [
            "customers",
            "only_package",
            "only_duckdb",
            "worst_dpd_12m_differs",
            "avg_dpd_12m_differs",
        ]
        values = con.execute(_COMPARE_FEATURES.format(path=path)).fetchone()
        compared = dict(zip(names, map(int, values), strict=True))
        compared["examples"] = [
            list(map(str, row))
            for row in con.execute(_FEATURE_DIFFERENCES.format(path=path)).fetchall()
        ]
        result["features"]["compared"][engine] = compared
    con.close()
    result["sql"] = {
        "classes": _CLASSES.format(
            aging="<hand-written aging over read_csv>",
            risk=_RISK,
            substandard_from=SUBSTANDARD_FROM_DAYS,
            share=SUBSTANDARD_SHARE,
        ),
        "ecl": _ECL.format(aging="<hand-written aging over read_csv>"),
        "features": _FEATURES.format(
            t=t, invoices="invoices.csv", payments="payments.csv", customers="customers.csv"
        ),
    }
    return result
