"""Benchmark of the quarterly evaluation: its KPIs against a hand-written query, and the report.

``python -m tests.benchmarks.evaluation [--invoices 5000000] [--customers 250000]
[--engines sqlite,postgresql]``

The ledgers are the main benchmark's (:func:`~tests.benchmarks.common.ensure_sample`: the
package's ``generate_sample`` as of 2025-06-30, seed 42, 24 months of history, about 20 invoices
and 20 payments per customer, generated once into ``tests/benchmarks/data/<size>``): ``--invoices
N`` is the ledger of N / 20 customers (5M invoices: the ``5m`` ledger of 250,000 customers),
``--customers N`` the ledger of N customers. Per engine (SQLite, PostgreSQL) and ledger, a child
process loads the files into a fresh, migrated warehouse through the product's ingest
(``FileIngest``: exchange rates, collectors, customers, invoices, payments; not timed), then,
each in a child process of its own (peak RSS is the child's):

1. **KPIs** (``--invoices``) — ``quarter_kpis(engine, 2025Q1, Policy())`` (a quarter inside the
   ledger: invoices issued and payments made after it are there to be left out), and the
   yardstick: one hand-written query on the same engine computing the same ledger figures per
   currency (opening AR and its overdue part, closing AR, its overdue and ``loss`` parts, credit
   sales, recovered, cured), written from docs/formulas.md §2 and §10 (not from the package's
   SQL templates). They run alternately, ``--rounds`` times each (default 3); the best of each
   is compared. The yardstick's figures must equal the product's to the cent for every currency
   (a mismatch is a failure, and no ratio is reported). Target: ``quarter_kpis`` within 3× the
   yardstick. Seconds per statement and per function of ``quarter_kpis`` are recorded; when the
   target fails (or with ``--explain``) the plans of its heavy statements and of the yardstick
   are taken (``EXPLAIN (ANALYZE, BUFFERS)`` on PostgreSQL, ``EXPLAIN QUERY PLAN`` on SQLite).
   Then the trend as the report reads it: ``trend_kpis`` of the four quarters to 2025Q1 (one
   ledger statement and one monthly-sales statement for them all), ``--rounds`` times, against
   the yardstick of each of those quarters; every quarter's figures must equal its yardstick's
   to the cent (a mismatch is a failure; the seconds are reported, without a target).
2. **Report** (``--customers``) — on the warehouse as the ingest leaves it (no daily run before:
   a first run on a quarter-start date), for 2025Q2, as the ``quarterly_evaluation`` DAG runs it:
   ``prepare_quarter`` (aging snapshots, customer classes and provisions of the trend's
   quarter-ends, computed from the ledger: reported on its own), then ``evaluate`` and
   ``write_report`` (*rendering*: KPIs of four quarters, roll rates, collectors, findings,
   charts, HTML, PDF and XLSX in both languages), then ``report_email`` and ``send_email_once``
   without a SendGrid connection, into the ``.eml`` outbox (*sending*). Target: rendering +
   sending under 60 s.

The generated ledger has no reminders, promises, legal cases or customer feedback: the parts of
the KPIs and of the report that read them read empty tables here.

Results go to ``results-evaluation.md`` and ``results-evaluation.json`` beside this file (they
state the sizes measured); progress goes to stderr. The exit status is 1 if a measurement failed
or the yardstick's figures differ from the product's (targets that fail are results, not
errors). ``make bench`` runs it at the default sizes.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import time
import warnings
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

from tests.benchmarks.common import (
    AS_OF,
    BENCH_DIR,
    CODE_ENV,
    ENGINES,
    KINDS,
    PG_ADMIN_URL,
    REPO,
    SIZES,
    WORK_DIR,
    Size,
    drop_pg_database,
    ensure_sample,
    fresh_dir,
    libpq_url,
    measured_code,
    snapshot_code,
)
from tests.benchmarks.probes import FunctionTimer, Probe, StatementTimer

RESULTS_MD = BENCH_DIR / "results-evaluation.md"
RESULTS_JSON = BENCH_DIR / "results-evaluation.json"
#: The generator writes about 20 invoices per customer (see common.SIZES).
INVOICES_PER_CUSTOMER = 20
DEFAULT_INVOICES = 5_000_000
DEFAULT_CUSTOMERS = 250_000
#: Quarters as (year, number): the KPIs' lies inside the ledger (2023-06-30 … 2025-06-30); the
#: report's is the one that ended the day before the DAG's quarter start (2025-07-01).
KPI_QUARTER = (2025, 1)
REPORT_QUARTER = (2025, 2)
#: Quarters of the trend read at once in part 1 (the report's trend: the KPI quarter and the
#: three before it, 2024Q2 … 2025Q1).
TREND_QUARTERS = 4
#: Targets.
KPI_VS_YARDSTICK = 3.0
REPORT_SECONDS = 60.0
#: The ledger figures of one currency, compared exactly (whole cents).
FIGURES = (
    "opening_ar",
    "opening_overdue",
    "closing_ar",
    "closing_overdue",
    "closing_loss",
    "credit_sales",
    "recovered",
    "cured",
)
#: What the KPI money metrics of each book are, in FIGURES' terms.
BOOK_MONEY = {
    "opening_outstanding": "opening_ar",
    "total_outstanding": "closing_ar",
    "overdue_outstanding": "closing_overdue",
    "credit_sales": "credit_sales",
}
#: The report's steps, in order: ``prepare`` apart, then rendering, then sending.
REPORT_STEPS = ("prepare", "evaluate", "write", "email", "send")
ENGINE_NAMES = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}
MB = 1_000_000


def log(message: str) -> None:
    """A progress line on stderr."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --- sizes and warehouses --------------------------------------------------------------------


def _label(invoices: int) -> str:
    if invoices % 1_000_000 == 0:
        return f"{invoices // 1_000_000}m"
    if invoices % 1_000 == 0:
        return f"{invoices // 1_000}k"
    return str(invoices)


def ledger_size(customers: int) -> Size:
    """The generated ledger of ``customers`` customers: the main benchmark's when it has one of
    that many (``100k``, ``1m``, ``5m``), else one labelled by its nominal invoices."""
    customers = max(1, customers)
    for size in SIZES.values():
        if size.customers == customers:
            return size
    return Size(_label(customers * INVOICES_PER_CUSTOMER), customers)


def folder_of(size: Size, engine_name: str) -> Path:
    """The working folder of one (ledger, engine): SQLite file, inbox, ``RECEIVABLES_HOME``."""
    return WORK_DIR / f"evaluation-{size.label}-{engine_name}"


def db_name_of(size: Size) -> str:
    """The PostgreSQL database of one ledger's warehouse."""
    return f"receivables_bench_evaluation_{size.label}"


def url_of(size: Size, engine_name: str) -> str:
    """The SQLAlchemy URL of the warehouse the ``build`` child leaves."""
    if engine_name == "sqlite":
        return f"sqlite:///{folder_of(size, engine_name) / 'warehouse.db'}"
    return libpq_url(PG_ADMIN_URL, db_name_of(size))


def remove(size: Size, engine_name: str) -> None:
    """Drop one warehouse and its folder."""
    if engine_name == "postgresql":
        drop_pg_database(db_name_of(size))
    shutil.rmtree(folder_of(size, engine_name), ignore_errors=True)


def _settings(size: Size, engine_name: str):
    from tests.benchmarks.worker import settings_for

    return settings_for(folder_of(size, engine_name) / "home")


def _quarter(pair: tuple[int, int]):
    from receivables.evaluation.quarters import Quarter

    return Quarter(*pair)


# --- build (child) ---------------------------------------------------------------------------


def build(size: Size, engine_name: str) -> dict:
    """A fresh warehouse of ``size`` loaded through the product's ingest (not timed as a
    figure of this benchmark; its seconds are reported for information)."""
    import sqlalchemy as sa

    from receivables.ingest.pipeline import FileIngest
    from tests.benchmarks.worker import new_warehouse

    tag = f"[{size.label} {engine_name} build]"
    folder = fresh_dir(folder_of(size, engine_name))
    engine = new_warehouse(engine_name, db_name_of(size), folder)
    settings = _settings(size, engine_name)
    ingest = FileIngest(engine, settings, AS_OF, f"bench-evaluation-{size.label}")
    inbox = fresh_dir(folder / "inbox")
    started = time.perf_counter()
    loaded = {}
    for kind in ("fx_rates", *KINDS):
        path = inbox / f"{kind}.csv"
        shutil.copyfile(size.data_dir / f"{kind}.csv", path)
        outcome = ingest.ingest(path)
        if outcome.status != "loaded" or outcome.rows_quarantined:
            raise RuntimeError(f"{kind}: not loaded cleanly: {outcome}")
        loaded[kind] = outcome.rows_loaded
        log(f"{tag} {kind}: {outcome.rows_loaded:,} rows")
    seconds = time.perf_counter() - started
    with engine.connect() as conn:
        if engine_name == "postgresql":
            db_bytes = conn.execute(sa.text("SELECT pg_database_size(current_database())"))
            db_bytes = db_bytes.scalar_one()
        else:
            db_bytes = (folder / "warehouse.db").stat().st_size
    engine.dispose()
    return {"rows": loaded, "seconds": seconds, "db_bytes": db_bytes}


# --- 1. KPIs against the hand-written query (child) ------------------------------------------


def handwritten_kpi_sql(dialect: str, quarter) -> str:
    """The yardstick: one query giving, per currency, the quarter's ledger figures.

    Written from docs/formulas.md §2 and §10: what an invoice owes on a day is its amount less
    its payments dated on or before that day, counted for invoices issued by then when it is
    positive; overdue when its due date is before the day; ``loss`` when more than 360 days past
    due (§4). Recovered = paid in the quarter on what was overdue at the opening, at most what
    it owed then; cured = what was overdue at the opening on invoices owing nothing at the
    close. Dates are literals (on SQLite: ISO text, money integer cents; on PostgreSQL: DATE and
    NUMERIC(18, 2)).
    """
    if dialect == "sqlite":
        opening, start, closing = (f"'{d.isoformat()}'" for d in _days(quarter))
        loss_before = f"date({closing}, '-360 days')"
        smaller = "MIN"
    else:
        opening, start, closing = (f"DATE '{d.isoformat()}'" for d in _days(quarter))
        loss_before = f"{closing} - 360"
        smaller = "LEAST"
    return f"""WITH paid AS (
    SELECT invoice_id,
           SUM(CASE WHEN paid_date <= {opening} THEN amount ELSE 0 END) AS by_opening,
           SUM(amount) AS by_closing
    FROM payments
    WHERE paid_date <= {closing}
    GROUP BY invoice_id
), owed AS (
    SELECT i.currency, i.amount, i.issue_date, i.due_date,
           i.amount - COALESCE(p.by_opening, 0) AS at_opening,
           i.amount - COALESCE(p.by_closing, 0) AS at_closing,
           i.issue_date <= {opening} AND i.due_date < {opening}
               AND i.amount - COALESCE(p.by_opening, 0) > 0 AS overdue_at_opening
    FROM invoices i
    LEFT JOIN paid p ON p.invoice_id = i.invoice_id
    WHERE i.issue_date <= {closing}
)
SELECT currency,
       SUM(CASE WHEN issue_date <= {opening} AND at_opening > 0 THEN at_opening ELSE 0 END)
           AS opening_ar,
       SUM(CASE WHEN overdue_at_opening THEN at_opening ELSE 0 END) AS opening_overdue,
       SUM(CASE WHEN at_closing > 0 THEN at_closing ELSE 0 END) AS closing_ar,
       SUM(CASE WHEN at_closing > 0 AND due_date < {closing} THEN at_closing ELSE 0 END)
           AS closing_overdue,
       SUM(CASE WHEN at_closing > 0 AND due_date < {loss_before} THEN at_closing ELSE 0 END)
           AS closing_loss,
       SUM(CASE WHEN issue_date >= {start} THEN amount ELSE 0 END) AS credit_sales,
       SUM(CASE WHEN overdue_at_opening
                THEN {smaller}(at_opening - at_closing, at_opening) ELSE 0 END) AS recovered,
       SUM(CASE WHEN overdue_at_opening AND at_closing <= 0 THEN at_opening ELSE 0 END)
           AS cured
FROM owed
GROUP BY currency
ORDER BY currency"""


def _days(quarter) -> tuple[dt.date, dt.date, dt.date]:
    """The quarter's opening (the day before its first day), first day and last day."""
    return quarter.start - dt.timedelta(days=1), quarter.start, quarter.end


def _cents(value) -> int:
    """Money as whole cents: integers are cents already (SQLite); a Decimal (PostgreSQL, and
    the product's figures) must be a whole number of cents."""
    if value is None:
        return 0
    if isinstance(value, int):
        return value
    cents = Decimal(value) * 100
    if cents != cents.to_integral_value():
        raise ValueError(f"{value} is not a whole number of cents")
    return int(cents)


def _ratio6(part: int, whole: int) -> str | None:
    """``part / whole`` rounded half-up to six places, as text (None when ``whole`` is 0)."""
    if not whole:
        return None
    steps = Fraction(part, whole) * 10**6
    rounded = int(abs(steps) + Fraction(1, 2)) * (1 if steps >= 0 else -1)
    return str((Decimal(rounded) / 10**6).quantize(Decimal("0.000001")))


def compare_figures(yardstick: dict, product_books: dict, kpis) -> list[str]:
    """Every difference between the yardstick's figures and the product's (empty: equal).

    ``product_books`` are the figures ``quarter_kpis`` read (``read_books``); ``kpis`` is what
    it returned: its books' money metrics and recovery and cure rates are checked too."""
    differences = []
    product = {c: {f: _cents(getattr(b, f)) for f in FIGURES} for c, b in product_books.items()}
    for currency in sorted(set(yardstick) | set(product)):
        mine, theirs = yardstick.get(currency), product.get(currency)
        if mine is None or theirs is None:
            where = "the yardstick" if mine is None else "the product"
            differences.append(f"{currency}: no figures from {where}")
            continue
        for name in FIGURES:
            if mine[name] != theirs[name]:
                differences.append(
                    f"{currency} {name}: yardstick {mine[name]} cents, product {theirs[name]}"
                )
        book = kpis.books.get(currency, {})
        for metric, name in BOOK_MONEY.items():
            value = book.get(metric)
            if value is None or _cents(value) != mine[name]:
                differences.append(
                    f"{currency} {metric}: product {value}, yardstick {mine[name]} cents"
                )
        for metric, name in (("recovery_rate", "recovered"), ("cure_rate", "cured")):
            value = book.get(metric)
            expected = _ratio6(mine[name], mine["opening_overdue"])
            if (None if value is None else str(value)) != expected:
                differences.append(f"{currency} {metric}: product {value}, yardstick {expected}")
    return differences


class StatementLog(StatementTimer):
    """A :class:`StatementTimer` that also keeps every statement's full text, parameters and
    seconds per label (to EXPLAIN the heavy ones afterwards)."""

    def __init__(self, probe: Probe):
        self.full: dict[str, list[tuple[str, object, float]]] = {}
        super().__init__(probe)

    def _after(self, conn, cursor, statement, parameters, context, executemany) -> None:
        elapsed = time.perf_counter() - conn.info["bench_started"][-1]
        super()._after(conn, cursor, statement, parameters, context, executemany)
        self.full.setdefault(self.probe.label, []).append((statement, parameters, elapsed))


def _explain(engine, engine_name: str, statement: str, parameters=None) -> str:
    """The plan of ``statement`` with its DBAPI ``parameters``: on PostgreSQL executed
    (``EXPLAIN (ANALYZE, BUFFERS)``), on SQLite ``EXPLAIN QUERY PLAN`` as a tree."""
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        if engine_name == "postgresql":
            cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + statement, parameters or None)
            lines = [row[0] for row in cursor.fetchall()]
        else:
            cursor.execute("EXPLAIN QUERY PLAN " + statement, parameters or ())
            depth: dict[int, int] = {}
            lines = []
            for node, parent, _, detail in cursor.fetchall():
                depth[node] = depth.get(parent, -1) + 1
                lines.append("  " * depth[node] + detail)
        raw.rollback()
    finally:
        raw.close()
    return "\n".join(lines)


def _instrument_kpis(probe: Probe, captured: dict) -> FunctionTimer:
    """Time the functions ``quarter_kpis`` spends its time in; keep the figures it read."""
    from receivables.evaluation import kpis

    functions = FunctionTimer(probe)
    for name in (
        "read_books",
        "_ledger_figures",
        "_monthly_sales",
        "rates_on",
        "reminder_success",
        "legal_opened",
        "grade_migration",
        "_events",
        "_ecl",
    ):
        functions.wrap(kpis, name, f"kpis.{name}")  # skipped when the package has no such one
    timed = kpis.read_books

    def read_books(engine, quarters, policy):
        books = timed(engine, quarters, policy)
        captured["books"] = books
        return books

    kpis.read_books = read_books
    return functions


def measure_kpis(size: Size, engine_name: str, rounds: int, explain: bool) -> dict:
    """``quarter_kpis`` and the hand-written query, alternately, ``rounds`` times each."""
    from receivables.config import Policy
    from receivables.evaluation.kpis import quarter_kpis
    from receivables.warehouse.db import create_engine

    tag = f"[{size.label} {engine_name} kpis]"
    quarter = _quarter(KPI_QUARTER)
    policy = Policy()
    loss = policy.aging.risk_classes[-1]
    before_loss = policy.aging.risk_classes[-2].max_days
    if loss.name != "loss" or before_loss != 360:  # the yardstick's literal band
        raise RuntimeError(f"the policy's loss class is not '> 360 days' ({loss})")
    probe = Probe().start()
    captured: dict = {}
    functions = _instrument_kpis(probe, captured)
    statements = StatementLog(probe)
    engine = create_engine(url_of(size, engine_name))
    sql = handwritten_kpi_sql(engine_name, quarter)
    runs: dict[str, list[float]] = {"product": [], "yardstick": []}
    yardstick: dict = {}
    result_kpis = None
    for n in range(1, rounds + 1):
        with probe.labelled(f"product:{n}"):
            started = time.perf_counter()
            result_kpis = quarter_kpis(engine, quarter, policy)
            runs["product"].append(time.perf_counter() - started)
        with probe.labelled(f"yardstick:{n}"):
            started = time.perf_counter()
            with engine.connect() as conn:
                rows = conn.exec_driver_sql(sql).all()
            runs["yardstick"].append(time.perf_counter() - started)
        yardstick = {
            row[0]: {name: _cents(v) for name, v in zip(FIGURES, row[1:], strict=True)}
            for row in rows
        }
        log(
            f"{tag} round {n}: quarter_kpis {runs['product'][-1]:.2f} s, "
            f"hand-written {runs['yardstick'][-1]:.2f} s"
        )
    differences = compare_figures(yardstick, captured["books"][0], result_kpis)
    trend = measure_trend(engine, engine_name, policy, rounds, probe, captured, runs, yardstick)
    best = {k: min(v) for k, v in runs.items()}
    ratio = best["product"] / best["yardstick"] if best["yardstick"] else None
    passed = not differences and ratio is not None and ratio <= KPI_VS_YARDSTICK
    fastest = runs["product"].index(best["product"]) + 1
    result: dict = {
        "size": size.label,
        "engine": engine_name,
        "quarter": quarter.label,
        "runs": runs,
        "best": best,
        "ratio": None if differences else ratio,
        "figures_equal": not differences,
        "differences": differences,
        "passed": passed,
        "figures": yardstick,
        "yardstick_sql": sql,
        "kpis": {
            "portfolio": {k: None if v is None else str(v) for k, v in result_kpis.values.items()},
            "missing_fx_rates": result_kpis.missing_fx_rates,
            "ecl_missing": result_kpis.ecl_missing,
        },
        "trend": trend,
        "fastest_run": fastest,
        "statements": [
            r for r in statements.rows() if r["label"] in (f"product:{fastest}", "yardstick:1")
        ],
        "functions": [r for r in functions.rows() if r["label"] == f"product:{fastest}"],
    }
    if differences:
        log(f"{tag} FIGURES DIFFER: " + "; ".join(differences[:5]))
    else:
        log(f"{tag} figures equal; best {best['product']:.3f} s vs {best['yardstick']:.3f} s")
    if explain or not passed:
        heavy = sorted(statements.full.get(f"product:{fastest}", []), key=lambda s: -s[2])
        total = sum(s[2] for s in heavy) or 1.0
        result["plans"] = [
            {
                "what": "quarter_kpis statement",
                "seconds": seconds,
                "share": seconds / total,
                "statement": statement,
                "plan": _explain(engine, engine_name, statement, parameters),
            }
            for statement, parameters, seconds in heavy[:3]
            if seconds / total >= 0.05
        ]
        result["plans"].append(
            {
                "what": "hand-written query",
                "seconds": best["yardstick"],
                "statement": None,  # shown whole in its own section
                "plan": _explain(engine, engine_name, sql),
            }
        )
    engine.dispose()
    probe.stop()
    result["peak_rss"] = probe.peak("product:")
    return result


def measure_trend(
    engine, engine_name: str, policy, rounds: int, probe: Probe, captured: dict, runs, yardstick
) -> dict:
    """``trend_kpis`` of the :data:`TREND_QUARTERS` quarters to the KPI quarter (what the report
    does), ``rounds`` times, and the hand-written query of each of those quarters (the KPI
    quarter's from its rounds, the others' once each): every quarter's figures must equal its
    hand-written query's to the cent."""
    from receivables.evaluation.kpis import trend_kpis

    tag = f"[{engine_name} trend]"
    quarters = _quarter(KPI_QUARTER).trend(TREND_QUARTERS)
    seconds: list[float] = []
    for n in range(1, rounds + 1):
        with probe.labelled(f"trend:{n}"):
            started = time.perf_counter()
            result = trend_kpis(engine, quarters, policy)
            seconds.append(time.perf_counter() - started)
        log(f"{tag} round {n}: trend_kpis of {len(quarters)} quarters {seconds[-1]:.2f} s")
    books = captured["books"]
    hand = {quarters[-1].label: (min(runs["yardstick"]), yardstick)}
    for quarter in quarters[:-1]:
        with probe.labelled(f"trend-yardstick:{quarter.label}"):
            started = time.perf_counter()
            with engine.connect() as conn:
                rows = conn.exec_driver_sql(handwritten_kpi_sql(engine_name, quarter)).all()
            figures = {
                row[0]: {name: _cents(v) for name, v in zip(FIGURES, row[1:], strict=True)}
                for row in rows
            }
            hand[quarter.label] = (time.perf_counter() - started, figures)
    differences = [
        f"{quarter.label} {difference}"
        for quarter, read, kpis in zip(quarters, books, result, strict=True)
        for difference in compare_figures(hand[quarter.label][1], read, kpis)
    ]
    hand_seconds = sum(s for s, _ in hand.values())
    if differences:
        log(f"{tag} FIGURES DIFFER: " + "; ".join(differences[:5]))
    else:
        log(f"{tag} figures equal; best {min(seconds):.3f} s vs {hand_seconds:.3f} s")
    return {
        "quarters": [q.label for q in quarters],
        "runs": seconds,
        "best": min(seconds),
        "yardstick_seconds": {label: s for label, (s, _) in hand.items()},
        "yardstick_total": hand_seconds,
        "ratio": None if differences else min(seconds) / hand_seconds,
        "figures_equal": not differences,
        "differences": differences,
    }


# --- 2. the report (child) -------------------------------------------------------------------


def _instrument_report(probe: Probe) -> FunctionTimer:
    """Time the functions the report's steps spend their time in."""
    from receivables import aging
    from receivables.evaluation import collectors, findings, kpis, report
    from receivables.risk import classification, models, provisions

    functions = FunctionTimer(probe)
    wraps = [
        (aging, "compute_snapshot", "aging.compute_snapshot (quarter-ends)"),
        (classification, "compute_customer_classes", None),
        (provisions, "compute_provisions", None),
        (provisions, "compute_snapshot", "aging.compute_snapshot (month-ends, provisions)"),
        (models, "score_customers", None),
        (report, "trend_kpis", "kpis.trend_kpis"),
        (kpis, "read_books", "kpis.read_books"),
        (kpis, "_ledger_figures", "kpis._ledger_figures"),
        (kpis, "_monthly_sales", "kpis._monthly_sales"),
        (kpis, "reminder_success", "kpis.reminder_success"),
        (kpis, "grade_migration", "kpis.grade_migration"),
        (report, "aging_trend", None),
        (collectors, "collector_performance", None),
        (findings, "quarterly_roll_rates", None),
        (findings, "findings", None),
        (findings, "feedback_summary", None),
        (report, "draw_charts", None),
        (report, "render_html", None),
        (report, "pdf_from_html", "documents.pdf_from_html (WeasyPrint)"),
        (report, "write_xlsx", None),
        (report, "_email_bodies", None),
    ]
    for owner, name, qualname in wraps:
        functions.wrap(owner, name, qualname)
    return functions


def measure_report(size: Size, engine_name: str) -> dict:
    """``prepare_quarter``, then ``evaluate`` + ``write_report`` (rendering), then
    ``report_email`` + ``send_email_once`` (sending), each timed."""
    import sqlalchemy as sa

    from receivables.evaluation.report import (
        evaluate,
        prepare_quarter,
        report_email,
        report_folder,
        write_report,
    )
    from receivables.mail import send_email_once
    from receivables.warehouse.db import create_engine

    tag = f"[{size.label} {engine_name} report]"
    quarter = _quarter(REPORT_QUARTER)
    settings = _settings(size, engine_name)
    if settings.sendgrid is not None:
        raise RuntimeError("a SendGrid connection is configured: the benchmark sends to .eml")
    fresh_dir(settings.outbox_dir)  # an earlier run's message would make this one a duplicate
    policy = settings.policy
    probe = Probe().start()
    functions = _instrument_report(probe)
    statements = StatementTimer(probe)
    engine = create_engine(url_of(size, engine_name))
    with engine.connect() as conn:
        customers = conn.execute(sa.text("SELECT COUNT(*) FROM customers")).scalar_one()
    steps: dict[str, dict] = {}
    outputs: dict = {}

    caught: list[warnings.WarningMessage] = []

    def step(key: str, call):
        # Python warnings (matplotlib's missing glyphs, …) are counted for the report, not
        # printed: they would bury the progress lines
        with warnings.catch_warnings(record=True) as seen, probe.labelled(f"report:{key}"):
            warnings.simplefilter("always")
            started = time.perf_counter()
            value = call()
            seconds = time.perf_counter() - started
        caught.extend(seen)
        steps[key] = {"seconds": seconds, "warnings": len(seen)}
        log(f"{tag} {key}: {seconds:.2f} s" + (f" ({len(seen)} warnings)" if seen else ""))
        return value

    prepared = step("prepare", lambda: prepare_quarter(engine, quarter, policy))
    evaluation = step(
        "evaluate",
        lambda: evaluate(engine, quarter, policy, settings.strategy, settings.timezone),
    )
    folder = report_folder(settings, quarter)
    files = step("write", lambda: write_report(evaluation, folder))
    email = step("email", lambda: report_email(folder, quarter, settings.management_emails))
    delivery = step("send", lambda: send_email_once(settings, email))
    engine.dispose()
    probe.stop()
    for key, measured in steps.items():
        measured["peak_rss"] = probe.peaks.get(f"report:{key}", 0)
    outputs = {
        "prepared": prepared,
        "customers": customers,
        "trend": [k.quarter.label for k in evaluation.trend],
        "findings": len(evaluation.findings),
        "collectors": len(evaluation.collectors.results) if evaluation.collectors else 0,
        "missing_fx_rates": evaluation.missing_fx_rates,
        "files": {
            p.name: p.stat().st_size
            for p in sorted(files.folder.iterdir())
            if p.is_file() and not p.name.startswith(".")
        },
        "charts": sum(len(c) for c in files.charts.values()),
        "attachments": len(email.attachments),
        "delivery": delivery.status,
        "eml_bytes": Path(delivery.location).stat().st_size if delivery.status == "sent" else None,
        "kpis": {k: None if v is None else str(v) for k, v in evaluation.current.values.items()},
        "warnings": _warning_summary(caught),
    }
    render = steps["evaluate"]["seconds"] + steps["write"]["seconds"]
    send = steps["email"]["seconds"] + steps["send"]["seconds"]
    return {
        "size": size.label,
        "engine": engine_name,
        "quarter": quarter.label,
        "steps": steps,
        "render_seconds": render,
        "send_seconds": send,
        "target_seconds": render + send,
        "passed": render + send < REPORT_SECONDS and delivery.status == "sent",
        **outputs,
        "statements": statements.rows()[:40],
        "functions": functions.rows(),
    }


def _warning_summary(caught: list[warnings.WarningMessage]) -> list[dict]:
    """The warnings seen, grouped by category, place and message (digits and glyph names
    left out of the grouping), with a count and one example each."""
    groups: dict[tuple[str, str, str], dict] = {}
    for w in caught:
        text = str(w.message)
        shape = re.sub(r"\d+|\(\\N\{[^}]*\}\)", "#", text)
        where = f"{Path(w.filename).name}:{w.lineno}"
        entry = groups.setdefault(
            (w.category.__name__, where, shape),
            {"category": w.category.__name__, "where": where, "example": text, "count": 0},
        )
        entry["count"] += 1
    return sorted(groups.values(), key=lambda g: -g["count"])


# --- the parent ------------------------------------------------------------------------------


def run_child(args: list[str], out: Path, code: Path) -> dict:
    """One measurement in a child process running the code snapshot; its result, or
    ``{"error": …}``."""
    out.unlink(missing_ok=True)
    command = [sys.executable, "-m", "tests.benchmarks.evaluation", *args, "--out", str(out)]
    path = os.pathsep.join(p for p in (str(code / "include"), os.environ.get("PYTHONPATH")) if p)
    env = {**os.environ, "GX_ANALYTICS_ENABLED": "false", "PYTHONPATH": path, CODE_ENV: str(code)}
    for name in (
        "RECEIVABLES_DB_URL",
        "RECEIVABLES_INBOX",
        "RECEIVABLES_CONFIG",
        "RECEIVABLES_HOME",
        "AIRFLOW_CONN_SENDGRID_DEFAULT",
    ):
        env.pop(name, None)  # the child sets up its own warehouse, folders and outbox
    started = time.perf_counter()
    completed = subprocess.run(command, cwd=REPO, env=env, check=False)
    if completed.returncode != 0 or not out.exists():
        return {"error": f"`{' '.join(args)}` exited with status {completed.returncode}"}
    result = json.loads(out.read_text())
    result["process_seconds"] = time.perf_counter() - started
    return result


def _across_engines(measured: dict) -> list[str]:
    """The same ledger must give the same figures on every engine."""
    figures = {e: r["figures"] for e, r in measured.items() if r.get("figures_equal")}
    if len(figures) > 1 and len({json.dumps(f, sort_keys=True) for f in figures.values()}) > 1:
        return [f"the KPI figures differ between {' and '.join(figures)}"]
    return []


def targets(results: dict) -> list[dict]:
    """The two targets, per engine measured."""
    rows = []
    kpi, report = results["kpis"], results["report"]
    for engine, r in kpi["engines"].items():
        if "error" in r:
            continue
        where = f"{kpi['size']} {engine}"
        if not r["figures_equal"]:
            measured, verdict = "figures differ from the hand-written query's: no ratio", "FAIL"
        else:
            measured = (
                f"{r['ratio']:.2f}× ({r['best']['product']:.3f} s vs "
                f"{r['best']['yardstick']:.3f} s)"
            )
            verdict = "PASS" if r["passed"] else "FAIL"
        rows.append(
            {
                "name": f"quarter_kpis ≤ {KPI_VS_YARDSTICK:g} × hand-written query",
                "where": where,
                "measured": measured,
                "limit": f"≤ {KPI_VS_YARDSTICK:g}×",
                "result": verdict,
            }
        )
    for engine, r in report["engines"].items():
        if "error" in r:
            continue
        measured = (
            f"{r['target_seconds']:.1f} s (render {r['render_seconds']:.1f} + send "
            f"{r['send_seconds']:.1f}; prepare_quarter {r['steps']['prepare']['seconds']:.1f} s "
            "apart)"
        )
        rows.append(
            {
                "name": "report rendered and sent < 60 s",
                "where": f"{report['size']} {engine}",
                "measured": measured,
                "limit": f"< {REPORT_SECONDS:g} s",
                "result": "PASS" if r["passed"] else "FAIL",
            }
        )
    return rows


def _money(cents: int) -> str:
    sign = "-" if cents < 0 else ""
    return f"{sign}{abs(cents) // 100:,}.{abs(cents) % 100:02d}"


def _s(seconds: float | None) -> str:
    return "–" if seconds is None else f"{seconds:.3f}" if seconds < 10 else f"{seconds:.1f}"


def _mb(value: int | None) -> str:
    return "–" if not value else f"{value / MB:,.0f}"


def _fence(text: str, lang: str = "") -> list[str]:
    return [f"```{lang}", text, "```", ""]


def _sizes_line(results: dict) -> str:
    kpi, report = results["kpis"], results["report"]
    c, r = kpi["counts"], report["counts"]
    small = results["invoices"] != DEFAULT_INVOICES or results["customers"] != DEFAULT_CUSTOMERS
    line = (
        f"**Sizes: KPIs on the `{kpi['size']}` ledger ({c['invoices']:,} invoices, "
        f"{c['payments']:,} payments, {c['customers']:,} customers; `--invoices "
        f"{results['invoices']:,}`), report on the `{report['size']}` ledger "
        f"({r['customers']:,} customers, {r['invoices']:,} invoices; `--customers "
        f"{results['customers']:,}`).**"
    )
    if small:
        line += (
            f" These are not the targets' sizes ({DEFAULT_INVOICES:,} invoices, "
            f"{DEFAULT_CUSTOMERS:,} customers): the PASS/FAIL below is of this run's sizes only."
        )
    return line


def _prepared(summary: dict) -> str:
    """What ``prepare_quarter`` says it did (its summary's lists of dates)."""
    done = [
        f"{key} {', '.join(days) or 'none'}"
        for key, days in summary.items()
        if isinstance(days, list)
    ]
    return "; ".join(done) or json.dumps(summary)


def _builds_line(results: dict) -> str:
    loads = [
        f"{where} {b['seconds']:.0f} s ({_mb(b['db_bytes'])} MB)"
        if "error" not in b
        else f"{where}: {b['error']}"
        for where, b in results["builds"].items()
    ]
    return (
        "Warehouses loaded through the ingest before the measurements (not part of any figure): "
        + ", ".join(loads)
        + "."
    )


METHOD = f"""\
* Ledgers: the main benchmark's generated ledgers (`generate_sample`, as of {AS_OF}, seed 42,
  24 months), loaded into a fresh warehouse per engine through the product's ingest
  (`FileIngest`; exchange rates, collectors, customers, invoices, payments), not timed. Each
  measurement runs in a child process of its own on a snapshot of `include/` and `sql/` taken at
  the start.
* KPIs: `quarter_kpis(engine, {KPI_QUARTER[0]}Q{KPI_QUARTER[1]}, Policy())` and the hand-written
  query run alternately on the same engine (same connection pool and session settings); the
  best of the rounds of each is compared. The product's time covers everything `quarter_kpis`
  does: the ledger statement, the monthly credit sales (countback DSO), exchange rates, ECL,
  reminders, legal and credit-grade reads, and the formulas in Python. It runs on the warehouse
  as the ingest leaves it: no ECL or credit scores are stored for the quarter's ends yet, so
  those reads find nothing (in the report below they run after `prepare_quarter`). The
  hand-written query computes only the ledger figures (one statement). Its figures are
  compared, per currency and to the cent, with those `quarter_kpis` read (`read_books`), and
  with the money metrics and recovery / cure rates of the books it returned; a difference
  fails the run and no ratio is given. The trend: `trend_kpis` of the {TREND_QUARTERS} quarters
  to {KPI_QUARTER[0]}Q{KPI_QUARTER[1]} after those rounds, its figures compared in the same way,
  quarter by quarter, with the hand-written query of each quarter.
* Report: `prepare_quarter`, `evaluate`, `write_report`, `report_email`, `send_email_once`
  called as the `quarterly_evaluation` DAG's tasks call them (`receivables.jobs`; the writer
  lock they take is left out), on the warehouse as the ingest leaves it, for
  {REPORT_QUARTER[0]}Q{REPORT_QUARTER[1]}. The 60 s target covers *rendering* (`evaluate` +
  `write_report`) and *sending* (`report_email` + `send_email_once` into the `.eml` outbox, no
  SendGrid connection); `prepare_quarter` (the risk figures of the five quarter-ends the report
  reads — aging snapshots, customer classes, provisions, credit scores — computed from the
  ledger on a first run) is reported apart.
* The generated ledger has no reminders, promises, legal cases or customer feedback: those
  reads cost next to nothing here, and the collection success rate has no value.
* Peak RSS is sampled every 20 ms per step (the child's resident memory).
"""


def render_markdown(results: dict) -> str:
    """The Markdown report."""
    from tests.benchmarks.report import _code_line, _machine, _table, _targets

    kpi, report = results["kpis"], results["report"]
    lines = [
        "# Quarterly evaluation benchmark",
        "",
        f"Run {results['date']} with `{results['command']}` "
        f"({results.get('duration_seconds', 0) / 60:.0f} min in all). Regenerate with "
        "`make bench` (default sizes) or `python -m tests.benchmarks.evaluation`.",
        "",
        _sizes_line(results),
        "",
        _builds_line(results),
        "",
        _code_line(results.get("code") or {}),
        "",
        "## Machine",
        "",
        *_machine(results),
        "## Targets",
        "",
        *_targets(results),
    ]
    if results.get("problems"):
        lines += ["**Problems in this run:**", ""]
        lines += [f"* {p}" for p in results["problems"]] + [""]
    lines += [
        f"## 1. Quarter KPIs ({kpi['quarter']}) against a hand-written query",
        "",
    ]
    rows = []
    for engine, r in kpi["engines"].items():
        if "error" in r:
            rows.append([ENGINE_NAMES[engine], "–", "–", "–", "–", "–", r["error"]])
            continue
        runs = ", ".join(_s(s) for s in r["runs"]["product"])
        hand = ", ".join(_s(s) for s in r["runs"]["yardstick"])
        rows.append(
            [
                ENGINE_NAMES[engine],
                f"{_s(r['best']['product'])} ({runs})",
                f"{_s(r['best']['yardstick'])} ({hand})",
                "–" if r["ratio"] is None else f"{r['ratio']:.2f}×",
                "yes" if r["figures_equal"] else "**no**",
                _mb(r.get("peak_rss")),
                "PASS" if r["passed"] else "FAIL",
            ]
        )
    lines += _table(
        [
            "engine",
            "quarter_kpis s, best (runs)",
            "hand-written s, best (runs)",
            "ratio",
            "same figures",
            "peak MB",
            f"≤ {KPI_VS_YARDSTICK:g}×",
        ],
        rows,
        "lrrrlrl",
    )
    for engine, r in kpi["engines"].items():
        if "error" in r:
            continue
        if r["differences"]:
            lines += [f"{ENGINE_NAMES[engine]}: the figures differ:", ""]
            lines += [f"* {d}" for d in r["differences"]] + [""]
    lines += _trend_lines(kpi)
    shown = next((r for r in kpi["engines"].values() if r.get("figures_equal")), None)
    if shown:
        engines = " and ".join(
            ENGINE_NAMES[e] for e, r in kpi["engines"].items() if r.get("figures_equal")
        )
        lines += [
            f"The ledger figures per currency (the same from the product and the hand-written "
            f"query, on {engines}):",
            "",
        ]
        lines += _table(
            ["currency", *FIGURES],
            [
                [currency, *(_money(f[name]) for name in FIGURES)]
                for currency, f in sorted(shown["figures"].items())
            ],
        )
    for engine, r in kpi["engines"].items():
        if "error" in r:
            continue
        fastest = f"product:{r['fastest_run']}"
        lines += [
            f"### Where the time of `quarter_kpis` goes, {ENGINE_NAMES[engine]} "
            f"(run {r['fastest_run']})",
            "",
        ]
        lines += _table(
            ["function", "calls", "s"],
            [[f"`{f['function']}`", str(f["calls"]), _s(f["seconds"])] for f in r["functions"]],
        )
        lines += _table(
            ["statement", "calls", "s"],
            [
                [f"`{s['statement']}`", str(s["calls"]), _s(s["seconds"])]
                for s in r["statements"]
                if s["label"] == fastest
            ][:8],
        )
        for plan in r.get("plans", []):
            share = f", {plan['share']:.0%} of its statement time" if "share" in plan else ""
            lines += [f"Plan of the {plan['what']} ({_s(plan['seconds'])} s{share}):", ""]
            if plan["statement"]:
                lines += _fence(plan["statement"], "sql")
            lines += _fence(plan["plan"])
    lines += ["### The hand-written query", ""]
    for engine, r in kpi["engines"].items():
        if "yardstick_sql" in r:
            lines += [f"{ENGINE_NAMES[engine]}:", "", *_fence(r["yardstick_sql"], "sql")]
    lines += [f"## 2. The report of {report['quarter']}", ""]
    rows = []
    for engine, r in report["engines"].items():
        if "error" in r:
            rows.append([ENGINE_NAMES[engine], *["–"] * 8, r["error"]])
            continue
        s = r["steps"]
        rows.append(
            [
                ENGINE_NAMES[engine],
                _s(s["prepare"]["seconds"]),
                _s(s["evaluate"]["seconds"]),
                _s(s["write"]["seconds"]),
                _s(s["email"]["seconds"]),
                _s(s["send"]["seconds"]),
                f"**{_s(r['target_seconds'])}**",
                _mb(max(v["peak_rss"] for v in s.values())),
                r["delivery"],
                "PASS" if r["passed"] else "FAIL",
            ]
        )
    lines += _table(
        [
            "engine",
            "prepare_quarter s",
            "evaluate s",
            "write_report s",
            "report_email s",
            "send s",
            "render + send s",
            "peak MB",
            "delivery",
            f"< {REPORT_SECONDS:g} s",
        ],
        rows,
        "lrrrrrrrll",
    )
    lines += [
        "The target covers *rendering* (`evaluate` + `write_report`) and *sending* "
        "(`report_email` + `send_email_once` into the `.eml` outbox); `prepare_quarter` (the "
        "risk computation of the quarter-ends) is reported apart.",
        "",
    ]
    for engine, r in report["engines"].items():
        if "error" in r:
            continue
        files = ", ".join(f"{n} {v / 1000:,.0f} kB" for n, v in r["files"].items())
        lines += [
            f"### {ENGINE_NAMES[engine]}: what was computed, written and sent",
            "",
            f"* `prepare_quarter`: {_prepared(r['prepared'])}; trend {', '.join(r['trend'])}; "
            f"{r['customers']:,} customers, {r['collectors']} collector rows, "
            f"{r['findings']} findings"
            + (
                f"; no exchange rate for {', '.join(r['missing_fx_rates'])}"
                if r["missing_fx_rates"]
                else ""
            )
            + ".",
            f"* Files: {files}; {r['charts']} chart images.",
            f"* Email: {r['attachments']} attachments (charts inline, two PDFs, the workbook); "
            f"{r['delivery']}, `.eml` of {(r['eml_bytes'] or 0) / 1000:,.0f} kB.",
        ]
        for w in r.get("warnings", []):
            lines.append(
                f"* Warning ({w['count']}×, {w['category']} at `{w['where']}`), e.g. "
                f"“{w['example']}”"
            )
        lines.append("")
        lines += _table(
            ["step", "function", "calls", "s"],
            [
                [
                    f["label"].split(":", 1)[1],
                    f"`{f['function']}`",
                    str(f["calls"]),
                    _s(f["seconds"]),
                ]
                for f in sorted(r["functions"], key=_in_step_order)
            ],
            "lllr",
        )
        lines += _table(
            ["step", "slowest statements", "calls", "s"],
            [
                [
                    s["label"].split(":", 1)[1],
                    f"`{s['statement']}`",
                    str(s["calls"]),
                    _s(s["seconds"]),
                ]
                for s in r["statements"][:10]
            ],
            "lllr",
        )
    lines += ["## Method", "", METHOD]
    return "\n".join(lines)


def _trend_lines(kpi: dict) -> list[str]:
    """Part 1's trend: ``trend_kpis`` of the quarters to the KPI quarter against the
    hand-written query of each."""
    from tests.benchmarks.report import _table

    measured = {e: r["trend"] for e, r in kpi["engines"].items() if r.get("trend")}
    if not measured:
        return []
    quarters = next(iter(measured.values()))["quarters"]
    lines = [
        f"The trend ({', '.join(quarters)}), as the report reads it: `trend_kpis` (one ledger "
        "statement and one monthly-sales statement for all the quarters) against the "
        "hand-written query run once per quarter (the KPI quarter's best of its rounds, the "
        "others' once); every quarter's figures are compared to the cent.",
        "",
    ]
    rows = []
    for engine, t in measured.items():
        runs = ", ".join(_s(s) for s in t["runs"])
        rows.append(
            [
                ENGINE_NAMES[engine],
                f"{_s(t['best'])} ({runs})",
                _s(t["yardstick_total"]),
                "–" if t["ratio"] is None else f"{t['ratio']:.2f}×",
                "yes" if t["figures_equal"] else "**no**",
            ]
        )
    lines += _table(
        [
            "engine",
            "trend_kpis s, best (runs)",
            f"hand-written × {len(quarters)} s",
            "ratio",
            "same figures",
        ],
        rows,
        "lrrrl",
    )
    for engine, t in measured.items():
        if t["differences"]:
            lines += [f"{ENGINE_NAMES[engine]}: the trend's figures differ:", ""]
            lines += [f"* {d}" for d in t["differences"]] + [""]
    return lines


def _in_step_order(row: dict) -> tuple[int, float]:
    """Sort key of a timed function of the report: its step's place, then slowest first."""
    return REPORT_STEPS.index(row["label"].split(":", 1)[1]), -row["seconds"]


def _child_main(args) -> int:
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    size = ledger_size(args.ledger_customers)
    code = measured_code()
    if args.child == "build":
        result = build(size, args.engine)
    elif args.child == "kpis":
        result = measure_kpis(size, args.engine, args.rounds, args.explain)
    else:
        result = measure_report(size, args.engine)
    result["code"] = code
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1, default=str))
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark (or, with ``--child``, one step of it) and write the results."""
    from tests.benchmarks.report import machine_info
    from tests.benchmarks.run import _csv_list, pg_available

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--invoices",
        type=int,
        default=DEFAULT_INVOICES,
        help=f"KPIs on the ledger of about this many invoices (default {DEFAULT_INVOICES:,})",
    )
    parser.add_argument(
        "--customers",
        type=int,
        default=DEFAULT_CUSTOMERS,
        help=f"the report on the ledger of this many customers (default {DEFAULT_CUSTOMERS:,})",
    )
    parser.add_argument(
        "--engines",
        type=lambda v: _csv_list(v, ENGINES),
        default=list(ENGINES),
        help="comma-separated: sqlite,postgresql (default: both)",
    )
    parser.add_argument(
        "--rounds", type=int, default=3, help="runs of quarter_kpis and of the hand-written query"
    )
    parser.add_argument(
        "--explain", action="store_true", help="take the KPI plans even when the target passes"
    )
    parser.add_argument("--keep", action="store_true", help="keep the warehouses afterwards")
    parser.add_argument("--child", choices=("build", "kpis", "report"), help=argparse.SUPPRESS)
    parser.add_argument("--ledger-customers", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--engine", choices=ENGINES, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return _child_main(args)

    started = time.perf_counter()
    code_root, code = snapshot_code()
    log(f"measuring code {code['fingerprint']} (commit {code['commit']}), copied to {code_root}")
    has_pg = pg_available()
    engines = [e for e in args.engines if e != "postgresql" or has_pg]
    kpi_size = ledger_size(round(args.invoices / INVOICES_PER_CUSTOMER))
    report_size = ledger_size(args.customers)
    results: dict = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": "python -m tests.benchmarks.evaluation "
        f"--invoices {args.invoices} --customers {args.customers} "
        f"--engines {','.join(args.engines)}"
        + (f" --rounds {args.rounds}" if args.rounds != 3 else "")
        + (" --explain" if args.explain else ""),
        "invoices": args.invoices,
        "customers": args.customers,
        "machine": machine_info(has_pg),
        "code": code,
        "kpis": {"size": kpi_size.label, "quarter": "{}Q{}".format(*KPI_QUARTER), "engines": {}},
        "report": {
            "size": report_size.label,
            "quarter": "{}Q{}".format(*REPORT_QUARTER),
            "engines": {},
        },
        "builds": {},
    }
    problems: list[str] = []
    if "postgresql" in args.engines and not has_pg:
        problems.append("PostgreSQL was not reachable: no PostgreSQL figures")
    results["kpis"]["counts"] = ensure_sample(kpi_size, log=log)
    results["report"]["counts"] = ensure_sample(report_size, log=log)
    folder = WORK_DIR / "results"
    sizes = [kpi_size] if kpi_size == report_size else [kpi_size, report_size]
    for engine in engines:
        for size in sizes:
            ledger = ["--ledger-customers", str(size.customers), "--engine", engine]
            stem = f"evaluation-{size.label}-{engine}"
            log(f"{size.label} {engine}: loading the ledger through the ingest")
            built = run_child(
                ["--child", "build", *ledger], folder / f"{stem}-build.json", code_root
            )
            results["builds"][f"{size.label} {engine}"] = built
            parts = [("kpis", kpi_size), ("report", report_size)]
            for part, wanted in parts:
                if size != wanted:
                    continue
                if "error" in built:
                    results[part]["engines"][engine] = {"error": f"build: {built['error']}"}
                    continue
                log(f"{size.label} {engine}: {part}")
                extra = ["--rounds", str(args.rounds)] + (["--explain"] if args.explain else [])
                results[part]["engines"][engine] = run_child(
                    ["--child", part, *ledger, *(extra if part == "kpis" else [])],
                    folder / f"{stem}-{part}.json",
                    code_root,
                )
            if not args.keep:
                remove(size, engine)
        for part in ("kpis", "report"):
            r = results[part]["engines"].get(engine) or {}
            if "error" in r:
                problems.append(f"{part} on {engine}: {r['error']}")
            elif part == "kpis" and r and not r["figures_equal"]:
                problems.append(
                    f"KPIs on {engine}: the hand-written query's figures differ from "
                    f"quarter_kpis's ({len(r['differences'])} differences)"
                )
            elif part == "kpis" and r and not r["trend"]["figures_equal"]:
                problems.append(
                    f"KPIs on {engine}: the hand-written query's figures differ from "
                    f"trend_kpis's ({len(r['trend']['differences'])} differences)"
                )
            elif part == "report" and r and r["delivery"] != "sent":
                problems.append(f"report on {engine}: the email was {r['delivery']}, not sent")
        problems += _across_engines(results["kpis"]["engines"])
        # Write after every engine: a long run that stops later still leaves its figures.
        results["duration_seconds"] = time.perf_counter() - started
        results["targets"] = targets(results)
        results["problems"] = problems
        RESULTS_JSON.write_text(json.dumps(results, indent=1, default=str) + "\n")
        RESULTS_MD.write_text(render_markdown(results))
    log(f"wrote {RESULTS_MD.relative_to(REPO)} and {RESULTS_JSON.relative_to(REPO)}")
    for problem in problems:
        log(f"PROBLEM: {problem}")
    for target in results.get("targets", []):
        where, measured = target["where"], target["measured"]
        log(f"target {target['name']} [{where}]: {measured} → {target['result']}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
