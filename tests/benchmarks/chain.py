"""Benchmark of the whole daily chain: ``python -m tests.benchmarks.chain [--sizes 100k,1m,5m]
[--engines sqlite,postgresql]``.

For each ledger size (the generated ledgers of :mod:`tests.benchmarks.run`, split at the day
``DAY``) and each engine, on a *warm* warehouse — the ledger up to the day before loaded,
the month-end aging snapshots and roll matrices built, the month's scorecard trained on the
first of the month, the previous day's risk steps done and three earlier days of reminders
planned and marked sent (see :func:`prepare`) — it times the day ``DAY`` as the DAGs run it,
each task in a fresh child process of its own (as Airflow runs a task), calling the
:mod:`receivables.jobs` function the task calls, in the DAGs' order:

* ``ledger_ingest``: one ``ingest_files`` per inbox file (the day's ``fx_rates``,
  ``invoices`` and ``payments``: the rows of the generated ledger dated ``DAY``), then
  ``summarize_ingest``;
* ``receivables_risk``: ``compute_aging``, ``classify_customers``, ``compute_provisions``,
  ``score_customers``, ``raise_warnings``, ``send_risk_digest``;
* ``collection_reminders``: ``plan_reminders`` (nothing is sent);
* ``legal_escalation``: ``propose_legal_cases`` (nobody reviews).

Per step: the seconds of the ``jobs`` call (libraries the task imports — Great Expectations,
scikit-learn — imported before it, untimed), the child's wall time from start to exit, and its
peak RSS. Beside them, measured in children of their own on the same files: PostgreSQL's
``COPY`` of the day's files into tables shaped like the warehouse's (types, CHECKs, indexes)
holding the history, and DuckDB's yardsticks of the same computations from the CSV files (aging,
customer classes, ECL with the package's provision matrix, two scoring features), each checked
against what the package stored.

The warm warehouse of a (size, engine) is prepared once and kept (a SQLite file, a PostgreSQL
template database) until its inputs, the way it is prepared or the schema change; each run
measures a fresh copy. ``--prepare-only`` prepares them and stops (they can be prepared ahead,
even side by side: nothing is timed then); ``--clean`` drops them. Writes ``results-chain.md``
and ``results-chain.json`` beside this file (after every size; ``--append`` keeps the sizes and
engines of the previous results that this run does not measure; ``--render`` only writes the
Markdown again, with ``diagnosis-chain.md`` when it is there); progress goes to stderr.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

from tests.benchmarks.common import (
    BENCH_DIR,
    DATA_DIR,
    ENGINES,
    PG_ADMIN_URL,
    REPO,
    SIZES,
    WORK_DIR,
    Size,
    child_env,
    drop_pg_database,
    ensure_sample,
    fresh_dir,
    libpq_url,
    snapshot_code,
)

RESULTS_MD = BENCH_DIR / "results-chain.md"
RESULTS_JSON = BENCH_DIR / "results-chain.json"
#: The day measured: a Friday (a busy day: about 2 800 invoices and 1 600 payments per million
#: invoices of the ledger), neither a month-end nor the first of a month.
DAY = dt.date(2025, 6, 27)
PREVIOUS = DAY - dt.timedelta(days=1)
#: ``credit_model`` runs on the first of each month.
MODEL_DATE = DAY.replace(day=1)
#: Earlier days whose reminders the warm warehouse holds (planned, then marked sent), so that
#: the day's planning and the legal selection (a final notice sent at least 10 days before)
#: meet a reminder history.
REMINDER_DAYS = tuple(DAY - dt.timedelta(days=n) for n in (22, 15, 8, 1))
#: Every kind in loading order, and the date column that places a row on a day.
HISTORY_KINDS = ("fx_rates", "collectors", "customers", "invoices", "payments")
DAY_KINDS = ("fx_rates", "invoices", "payments")
DATE_COLUMN = {"fx_rates": "rate_date", "invoices": "issue_date", "payments": "paid_date"}
#: The issue's targets: the whole chain on PostgreSQL (warm), in seconds, per size.
TARGET_SECONDS = {"1m": 120.0, "5m": 480.0}
#: The day's ingest within 2 × PostgreSQL's COPY into tables shaped like the warehouse's.
INGEST_VS_SHAPED_COPY = 2.0
MB = 1_000_000

#: (key, DAG, task, the receivables.jobs function), in the order the DAGs run them.
STEPS = (
    ("ingest:fx_rates", "ledger_ingest", "ingest_fx_rates", "ingest_files"),
    ("ingest:invoices", "ledger_ingest", "ingest_invoices", "ingest_files"),
    ("ingest:payments", "ledger_ingest", "ingest_payments", "ingest_files"),
    ("summarize_ingest", "ledger_ingest", "summarize_ingest", "summarize_ingest"),
    ("aging", "receivables_risk", "compute_aging_snapshot", "compute_aging"),
    ("classes", "receivables_risk", "classify_customers", "classify_customers"),
    ("provisions", "receivables_risk", "compute_provisions", "compute_provisions"),
    ("scores", "receivables_risk", "score_customers", "score_customers"),
    ("warnings", "receivables_risk", "raise_risk_warnings", "raise_warnings"),
    ("digest", "receivables_risk", "send_risk_digest", "send_risk_digest"),
    ("plan_reminders", "collection_reminders", "plan_reminders", "plan_reminders"),
    ("propose_cases", "legal_escalation", "propose_cases", "propose_legal_cases"),
)
#: What a step imports before its timed call: the package module its ``jobs`` function imports
#: and the heavy libraries that module imports when called (a task imports them in its body).
PRE_IMPORTS = {
    "ingest": (
        "great_expectations",
        "pyarrow.csv",
        "receivables.ingest.pipeline",
        "receivables.ingest.staging",
    ),
    "summarize_ingest": ("receivables.mail",),
    "aging": ("receivables.aging",),
    "classes": ("receivables.risk.classification",),
    "provisions": ("receivables.risk.provisions",),
    "scores": ("sklearn.linear_model", "sklearn.metrics", "receivables.risk.models"),
    "warnings": ("receivables.risk.warnings",),
    "digest": ("receivables.risk.digest",),
    "plan_reminders": ("receivables.collection.planner",),
    "propose_cases": ("receivables.legal.escalation",),
}
#: Imported before every step: what each ``jobs`` call opens the warehouse with.
COMMON_IMPORTS = (
    "receivables.warehouse.db",
    "receivables.warehouse.migrate",
    "receivables.warehouse.locks",
)


def log(message: str) -> None:
    """A progress line on stderr."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --- the files: the ledger up to the day before, and the day --------------------------------


def chain_dir(size: Size) -> Path:
    """Where the split files of ``size`` live (git-ignored, beside the generated ledger)."""
    return DATA_DIR / f"{size.label}-chain-{DAY.isoformat()}"


def split_files(size: Size) -> dict:
    """The generated ledger of ``size`` split at ``DAY``: ``history/`` (rows dated before it,
    all collectors and customers) and ``day/`` (the rows dated ``DAY``); rows after it are
    left out. Values are copied as text, untouched. Returns the row counts."""
    stamp = chain_dir(size) / ".complete"
    if stamp.exists():
        return json.loads(stamp.read_text())
    import duckdb

    ensure_sample(size, log=log)
    log(f"{size.label}: splitting the ledger at {DAY} into {chain_dir(size)}")
    root = fresh_dir(chain_dir(size))
    (root / "history").mkdir()
    (root / "day").mkdir()
    con = duckdb.connect()
    counts: dict = {"history": {}, "day": {}}
    day = DAY.isoformat()
    for kind in HISTORY_KINDS:
        source = size.data_dir / f"{kind}.csv"
        if kind not in DATE_COLUMN:
            shutil.copyfile(source, root / "history" / f"{kind}.csv")
            (n,) = con.execute(
                f"SELECT COUNT(*) FROM read_csv('{source}', all_varchar = true)"
            ).fetchone()
            counts["history"][kind] = int(n)
            continue
        column = DATE_COLUMN[kind]
        for part, condition in (("history", f"< '{day}'"), ("day", f"= '{day}'")):
            target = root / part / f"{kind}.csv"
            # all_varchar: the values are copied as written (ISO dates compare as text)
            con.execute(
                f"COPY (SELECT * FROM read_csv('{source}', all_varchar = true, header = true) "
                f"WHERE {column} {condition}) TO '{target}' (HEADER, DELIMITER ',')"
            )
            (n,) = con.execute(
                f"SELECT COUNT(*) FROM read_csv('{target}', all_varchar = true)"
            ).fetchone()
            counts[part][kind] = int(n)
    con.close()
    stamp.write_text(json.dumps(counts))
    return counts


# --- warehouses: the kept warm one, and the copy a run measures -----------------------------


def folder(size: Size, engine_name: str, what: str) -> Path:
    """``warm`` (kept) or ``run`` (the measured copy) folder of one (size, engine)."""
    return WORK_DIR / "chain" / f"{size.label}-{engine_name}" / what


def db_name(size: Size, what: str) -> str:
    """The PostgreSQL database of ``what`` (``warm``: the kept template; ``run``; ``copy``)."""
    return f"receivables_bench_chain_{size.label}_{what}"


def url_of(size: Size, engine_name: str, what: str) -> str:
    """The SQLAlchemy URL of a warehouse of one (size, engine)."""
    if engine_name == "sqlite":
        return f"sqlite:///{folder(size, engine_name, what) / 'warehouse.db'}"
    return libpq_url(PG_ADMIN_URL, db_name(size, what))


def settings_for(size: Size, engine_name: str, what: str):
    """The package's settings of a warehouse (in a child): its home, its URL, nothing else from
    the environment."""
    from receivables.config import Settings

    home = folder(size, engine_name, what) / "home"
    return Settings.from_env(
        {"RECEIVABLES_HOME": str(home), "RECEIVABLES_DB_URL": url_of(size, engine_name, what)}
    )


def warm_key(size: Size) -> str:
    """What a kept warm warehouse depends on: the split files and the schema migrations."""
    digest = hashlib.sha256(json.dumps(split_files(size), sort_keys=True).encode())
    recipe = [DAY, MODEL_DATE, *REMINDER_DAYS]  # what prepare() does
    digest.update(" ".join(d.isoformat() for d in recipe).encode())
    migrations = REPO / "include" / "receivables" / "warehouse" / "migrations"
    for path in sorted(migrations.rglob("*.py")):
        digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()[:12]


def _pg_exists(name: str) -> bool:
    import psycopg

    with psycopg.connect(libpq_url(PG_ADMIN_URL), autocommit=True) as conn:
        return conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()


def warm_ready(size: Size, engine_name: str) -> dict | None:
    """The stamp of the kept warm warehouse, if it is there and current."""
    stamp = folder(size, engine_name, "warm") / ".complete"
    if not stamp.exists():
        return None
    data = json.loads(stamp.read_text())
    if data.get("key") != warm_key(size):
        return None
    if engine_name == "postgresql" and not _pg_exists(db_name(size, "warm")):
        return None
    return data


def drop_warm(size: Size, engine_name: str) -> None:
    """Remove the kept warm warehouse of one (size, engine)."""
    if engine_name == "postgresql":
        drop_pg_database(db_name(size, "warm"))
    shutil.rmtree(folder(size, engine_name, "warm"), ignore_errors=True)


def copy_warm(size: Size, engine_name: str) -> float:
    """The measured warehouse: a copy of the warm one (its home folder too); the seconds."""
    started = time.perf_counter()
    run = folder(size, engine_name, "run")
    shutil.rmtree(run, ignore_errors=True)
    warm = folder(size, engine_name, "warm")
    # the home folder (model cards, GX data docs, outbox); the SQLite file with it
    shutil.copytree(warm, run, ignore=shutil.ignore_patterns(".complete", "inbox"))
    if engine_name == "postgresql":
        import psycopg

        drop_pg_database(db_name(size, "run"))
        with psycopg.connect(libpq_url(PG_ADMIN_URL), autocommit=True) as conn:
            conn.execute(
                f'CREATE DATABASE "{db_name(size, "run")}" '
                f'TEMPLATE "{db_name(size, "warm")}" STRATEGY FILE_COPY'
            )
    return time.perf_counter() - started


def drop_run(size: Size, engine_name: str) -> None:
    """Remove the measured copy of one (size, engine)."""
    if engine_name == "postgresql":
        drop_pg_database(db_name(size, "run"))
    shutil.rmtree(folder(size, engine_name, "run"), ignore_errors=True)


# --- children ----------------------------------------------------------------------------------


def _brief(value, items: int = 20):
    """A task's summary for the results file: lists longer than ``items`` (a day's proposed case
    ids, say) cut to their first ``items`` and their length."""
    if isinstance(value, dict):
        return {k: _brief(v, items) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        shown = [_brief(v, items) for v in value[:items]]
        return [*shown, f"… {len(value):,} in all"] if len(value) > items else shown
    return value


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _peak() -> int:
    """This process's peak RSS: ``VmHWM``, the high-water mark of its own address space.

    Not ``ru_maxrss``: Linux carries that over from the parent through fork and exec, so a
    child would report the parent's peak when it is higher."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _mark_sent(engine, day: dt.date) -> int:
    """Every reminder planned on ``day`` still pending becomes ``sent`` (as the sender would
    leave it), so the warm warehouse has a reminder history."""
    import sqlalchemy as sa

    from receivables.warehouse.schema import reminders

    r = reminders.c
    with engine.begin() as conn:
        return conn.execute(
            reminders.update()
            .where(r.planned_on == day, r.status == "pending")
            .values(
                status="sent",
                provider="outbox",
                provider_message_id=sa.literal("bench-", sa.String)
                + sa.cast(r.reminder_id, sa.String),
                attempts=1,
                sent_at=sa.func.coalesce(r.send_at, r.created_at),
                updated_at=r.created_at,
            )
        ).rowcount


def child_prepare(size: Size, engine_name: str) -> dict:
    """Build the warm warehouse of one (size, engine) (not timed as the chain is): the history
    ingested as of the day before, the previous days' risk and reminders, last month's model."""
    from receivables import jobs
    from receivables.warehouse.db import create_engine
    from tests.benchmarks.worker import new_warehouse

    warm = fresh_dir(folder(size, engine_name, "warm"))
    seconds: dict[str, float] = {}
    engine = new_warehouse(engine_name, db_name(size, "warm"), warm)
    engine.dispose()
    settings = settings_for(size, engine_name, "warm")
    url = url_of(size, engine_name, "warm")
    inbox = fresh_dir(warm / "inbox")
    paths = []
    for kind in HISTORY_KINDS:
        path = inbox / f"{kind}.csv"
        shutil.copyfile(chain_dir(size) / "history" / f"{kind}.csv", path)
        paths.append(str(path))

    def timed(name, function, **kwargs):
        started = time.perf_counter()
        out = function(settings=settings, db_url=url, **kwargs)
        seconds[name] = round(time.perf_counter() - started, 2)
        log(f"[{size.label} {engine_name} prepare] {name}: {seconds[name]:.1f} s")
        return out

    outcomes = timed(
        "ingest history", jobs.ingest_files, paths=paths, as_of=PREVIOUS, run_id="bench-history"
    )
    bad = {o["file_name"]: o["status"] for o in outcomes if o["status"] != "loaded"}
    if bad or any(o["rows_quarantined"] for o in outcomes):
        raise RuntimeError(f"history files not loaded cleanly: {outcomes}")
    engine = create_engine(url)
    sent = {}
    for day in REMINDER_DAYS:
        timed(f"aging {day}", jobs.compute_aging, as_of=day)
        if day == PREVIOUS:
            timed(f"classes {day}", jobs.classify_customers, as_of=day)
            timed(f"provisions {day}", jobs.compute_provisions, as_of=day)
            timed(f"training {MODEL_DATE}", jobs.train_credit_model, as_of=MODEL_DATE)
            timed(f"scores {day}", jobs.score_customers, as_of=day)
            timed(f"warnings {day}", jobs.raise_warnings, as_of=day)
        timed(f"reminders {day}", jobs.plan_reminders, as_of=day)
        sent[day.isoformat()] = _mark_sent(engine, day)
    if engine_name == "postgresql":
        # autovacuum is off on the benchmark's server: do what it would have done by the morning
        import psycopg

        started = time.perf_counter()
        with psycopg.connect(libpq_url(PG_ADMIN_URL, db_name(size, "warm")), autocommit=True) as c:
            c.execute("VACUUM (ANALYZE)")
        seconds["vacuum analyze"] = round(time.perf_counter() - started, 2)
    engine.dispose()
    return {
        "seconds": seconds,
        "reminders_marked_sent": sent,
        "history_files": outcomes,
        "peak_rss": _peak(),
    }


def child_step(size: Size, engine_name: str, key: str) -> dict:
    """One task of the day, on the measured copy: the ``receivables.jobs`` call, timed."""
    import importlib

    from receivables import jobs
    from tests.benchmarks.common import measured_code
    from tests.benchmarks.probes import Probe, StatementTimer

    for module in (*COMMON_IMPORTS, *PRE_IMPORTS.get(key.split(":")[0], ())):
        importlib.import_module(module)
    settings = settings_for(size, engine_name, "run")
    url = url_of(size, engine_name, "run")
    name = next(s[3] for s in STEPS if s[0] == key)
    function = getattr(jobs, name)
    probe = Probe().start()
    statements = StatementTimer(probe)
    baseline = probe.rss()
    result: dict = {"baseline_rss": baseline, "code": measured_code()}
    captured: dict = {}
    if key == "scores":
        _capture_features(captured)
    kwargs: dict = {"settings": settings, "db_url": url, "as_of": DAY}
    if key.startswith("ingest:"):
        kind = key.split(":")[1]
        (path,) = jobs.discover_inbox(settings.inbox)[kind]
        kwargs.update(paths=[path], run_id="bench-chain")
    elif key == "summarize_ingest":
        outcomes = []
        for other in DAY_KINDS:
            saved = folder(size, engine_name, "run") / f"outcome-{other}.json"
            outcomes.extend(json.loads(saved.read_text()))
        kwargs = {"outcomes": outcomes, "settings": settings, "as_of": DAY, "run_id": "bench"}
    with probe.labelled("step"):
        cpu = _cpu_seconds()
        started = time.perf_counter()
        summary = function(**kwargs)
        result["seconds"] = time.perf_counter() - started
        # this process's CPU time in the call (not the database server's): less sensitive than
        # the wall time to other work on the machine
        result["cpu_seconds"] = _cpu_seconds() - cpu
    probe.stop()
    if key.startswith("ingest:"):
        saved = folder(size, engine_name, "run") / f"outcome-{key.split(':')[1]}.json"
        saved.write_text(json.dumps(summary, default=str))
        (outcome,) = summary
        if outcome["status"] != "loaded" or outcome["rows_quarantined"]:
            raise RuntimeError(f"{key}: not loaded cleanly: {outcome}")
    if "features" in captured:
        import pyarrow as pa
        import pyarrow.parquet as pq

        path = WORK_DIR / "chain" / "results" / f"{size.label}-{engine_name}-features.parquet"
        pq.write_table(pa.Table.from_pandas(captured["features"], preserve_index=False), path)
        result["features_file"] = str(path)
        result["features_customers"] = len(captured["features"])
    result["summary"] = _brief(summary)
    result["peak_rss"] = max(probe.peaks.get("step", 0), _peak())
    result["statements"] = statements.rows()[:8]
    return result


def _capture_features(captured: dict) -> None:
    """Keep the day's features that scoring computes (for the DuckDB check)."""
    from receivables.risk import models
    from tests.benchmarks.risk import CHECKED_FEATURES

    original = models.features_at

    def features_at(ledger, day):
        frame = original(ledger, day)
        if day == DAY and "features" not in captured:
            captured["features"] = frame[["customer_id", *CHECKED_FEATURES]].copy()
        return frame

    models.features_at = features_at


def child_outputs(size: Size, engine_name: str) -> dict:
    """What the day left in the measured warehouse (not timed): what the yardsticks check,
    counts of the day's rows, the database's size."""
    import sqlalchemy as sa

    from receivables.warehouse.db import create_engine
    from tests.benchmarks.risk import _db_bytes, _outputs

    engine = create_engine(url_of(size, engine_name, "run"))
    result = _outputs(engine, engine_name, DAY)
    day = DAY.isoformat()
    counts = {}
    with engine.connect() as conn:
        for table, column in (
            ("invoices", "issue_date"),
            ("payments", "paid_date"),
            ("aging_snapshots", "as_of_date"),
            ("credit_scores", "as_of_date"),
            ("risk_warnings", "as_of_date"),
            ("reminders", "planned_on"),
            ("legal_cases", "opened_on"),
        ):
            counts[table] = conn.execute(
                sa.text(f"SELECT COUNT(*) FROM {table} WHERE {column} = :d"), {"d": DAY}
            ).scalar_one()
        counts["invoices_total"] = conn.execute(sa.text("SELECT COUNT(*) FROM invoices")).scalar()
        counts["customers_total"] = conn.execute(sa.text("SELECT COUNT(*) FROM customers")).scalar()
    result["day_rows"] = {"date": day, **counts}
    result["db_bytes"] = _db_bytes(engine, engine_name, folder(size, engine_name, "run"))
    engine.dispose()
    return result


def child_copy(size: Size) -> dict:
    """PostgreSQL ``COPY`` of the day's files into tables shaped like the warehouse's (types,
    CHECKs, primary key and indexes): empty, and holding the history (filled from the history
    files first, not timed), as the warehouse's tables do on the day."""
    import csv

    from receivables.warehouse.db import create_engine
    from receivables.warehouse.migrate import upgrade
    from tests.benchmarks.common import recreate_pg_database
    from tests.benchmarks.yardsticks import create_like_warehouse, pg_copy

    name = db_name(size, "copy")
    url = recreate_pg_database(name)
    result: dict = {"files": {}}
    try:
        engine = create_engine(url)
        upgrade(engine)
        engine.dispose()
        for kind in DAY_KINDS:
            day_file = chain_dir(size) / "day" / f"{kind}.csv"
            history_file = chain_dir(size) / "history" / f"{kind}.csv"
            with day_file.open(encoding="utf-8", newline="") as f:
                header = next(csv.reader(f))
            create = create_like_warehouse("t", kind)
            empty = pg_copy(url, day_file, "t", create, header)
            # the table as the warehouse holds it before the day: the history in it, analysed
            history = pg_copy(url, history_file, "h", create_like_warehouse("h", kind), header)
            full = _copy_onto(url, day_file, "h", header)
            result["files"][kind] = {
                "rows": empty["rows"],
                "empty_table": empty["seconds"],
                "history_rows": history["rows"],
                "with_history": full["seconds"],
            }
            log(
                f"[{size.label} copy] {kind}: {empty['rows']:,} rows, "
                f"{empty['seconds']:.3f} s into an empty shaped table, "
                f"{full['seconds']:.3f} s into one holding {history['rows']:,} rows"
            )
    finally:
        drop_pg_database(name)
    return result


def _copy_onto(url: str, path: Path, table: str, columns: list[str]) -> dict:
    """``COPY`` a file into an existing table (analysed first, not timed); seconds and rows."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"VACUUM (ANALYZE) {table}")
    with psycopg.connect(url) as conn:
        started = time.perf_counter()
        with conn.cursor() as cursor:
            with (
                cursor.copy(
                    f"COPY {table} ({', '.join(columns)}) FROM STDIN WITH (FORMAT csv, HEADER true)"
                ) as copy,
                path.open("rb") as f,
            ):
                while chunk := f.read(1 << 20):
                    copy.write(chunk)
            rows = cursor.rowcount
        conn.commit()
        seconds = time.perf_counter() - started
    return {"seconds": seconds, "rows": rows}


def child_duckdb(size: Size, inputs: list[Path]) -> dict:
    """DuckDB's yardsticks of the day from the generated CSV files (rows after the day are
    left out by the statements' dates): aging, then customer classes, ECL with each engine's
    stored provision matrix, and two features checked against the package's."""
    import duckdb

    from tests.benchmarks.probes import Probe
    from tests.benchmarks.yardsticks import duckdb_aging, duckdb_risk

    packages = {}
    for path in inputs:
        if path.exists():
            data = json.loads(path.read_text())
            if "provision_rates" in data:
                packages[data["engine"]] = data
    probe = Probe().start()
    with probe.labelled("duckdb:aging"):
        aging = duckdb_aging(size.data_dir, DAY)
    risk = duckdb_risk(size.data_dir, DAY, packages, probe)
    probe.stop()
    risk["seconds"]["aging"] = aging.pop("seconds")
    return {
        "version": duckdb.__version__,
        "threads": os.cpu_count(),
        "aging": aging,
        **risk,
        "peaks": {k.split(":", 1)[1]: v for k, v in probe.peaks.items() if ":" in k},
        "peak_rss": _peak(),
    }


# --- the parent ----------------------------------------------------------------------------


def run_child(args: list[str], out: Path, code: Path) -> dict:
    """One child process; its JSON result with its wall time, or ``{"error": …}``."""
    out.unlink(missing_ok=True)
    command = [sys.executable, "-m", "tests.benchmarks.chain", "--child", *args, "--out", str(out)]
    env = child_env(code)
    # Compiled once, as in any installed deployment (the environment may forbid writing
    # bytecode beside the sources: then every task would compile pandas again, ≈2 s).
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(WORK_DIR / "pycache")
    started = time.perf_counter()
    done = subprocess.run(command, cwd=REPO, env=env, check=False)
    if done.returncode != 0 or not out.exists():
        return {"error": f"`{' '.join(args)}` exited with status {done.returncode}"}
    result = json.loads(out.read_text())
    result["process_seconds"] = time.perf_counter() - started
    return result


def ensure_warm(size: Size, engine_name: str, code: Path, fresh: bool = False) -> dict:
    """The stamp of the kept warm warehouse of one (size, engine), prepared first if needed
    (``{"error": …}`` if that failed)."""
    tag = f"{size.label} {engine_name}"
    out = WORK_DIR / "chain" / "results"
    if fresh:
        drop_warm(size, engine_name)
    stamp = warm_ready(size, engine_name)
    if stamp is None:
        log(f"{tag}: preparing the warm warehouse (history to {PREVIOUS}; not timed)")
        drop_warm(size, engine_name)
        prepared = run_child(
            ["prepare", size.label, engine_name],
            out / f"{size.label}-{engine_name}-prep.json",
            code,
        )
        if "error" in prepared:
            return {"error": prepared["error"]}
        stamp = {"key": warm_key(size), "prepared": prepared}
        (folder(size, engine_name, "warm") / ".complete").write_text(json.dumps(stamp))
    else:
        log(f"{tag}: reusing the warm warehouse prepared earlier")
    return stamp


def run_engine(size: Size, engine_name: str, code: Path, fresh: bool) -> dict:
    """The day on one engine: warm warehouse (kept or prepared), copy, each step, outputs."""
    tag = f"{size.label} {engine_name}"
    out = WORK_DIR / "chain" / "results"
    result: dict = {"steps": {}}
    stamp = ensure_warm(size, engine_name, code, fresh)
    if "error" in stamp:
        return stamp
    result["prepared"] = stamp["prepared"]
    result["copy_seconds"] = copy_warm(size, engine_name)
    inbox = fresh_dir(folder(size, engine_name, "run") / "home" / "inbox")
    for kind in DAY_KINDS:
        shutil.copyfile(chain_dir(size) / "day" / f"{kind}.csv", inbox / f"{kind}.csv")
    log(f"{tag}: measured copy ready in {result['copy_seconds']:.1f} s; the day {DAY}:")
    for key, _dag, _task, _function in STEPS:
        step = run_child(
            ["step", size.label, engine_name, "--step", key],
            out / f"{size.label}-{engine_name}-{key.replace(':', '-')}.json",
            code,
        )
        step["load_average"] = os.getloadavg()
        result["steps"][key] = step
        if "error" in step:
            log(f"{tag}: {key} FAILED: {step['error']}")
            result["error"] = f"{key}: {step['error']}"
            break
        log(
            f"{tag}: {key}: {step['seconds']:.2f} s (process {step['process_seconds']:.1f} s), "
            f"peak {step['peak_rss'] / MB:,.0f} MB"
        )
    if "error" not in result:
        outputs_file = out / f"{size.label}-{engine_name}-outputs.json"
        outputs = run_child(["outputs", size.label, engine_name], outputs_file, code)
        outputs["engine"] = engine_name
        features = result["steps"]["scores"].get("features_file")
        if features:
            outputs["features_file"] = features
        outputs_file.write_text(json.dumps(outputs, default=str))
        result["outputs"] = outputs
    return result


def _portable(text: str) -> str:
    """Paths in the results relative to the repository (they are committed)."""
    return text.replace(str(REPO) + os.sep, "")


def _check(size_result: dict) -> list[str]:
    """The DuckDB yardsticks must find what the package stored (else their figures mean
    nothing): aging, classes, ECL, features."""
    problems = []
    duck = size_result.get("duckdb") or {}
    if "aging" not in duck:
        return problems
    for engine, measured in size_result["engines"].items():
        outputs = measured.get("outputs") or {}
        if "classes" not in outputs:
            continue
        matches = {"classes": outputs["classes"]["by_class"] == duck["classes"]["by_class"]}
        theirs = (duck.get("ecl") or {}).get(engine, {})
        ok = bool(theirs) and sorted(theirs) == sorted(outputs["ecl"])
        for currency, package in outputs["ecl"].items():
            d = theirs.get(currency) or {}
            ok = ok and (
                d.get("invoices") == d.get("rated") == package["invoices"]
                and d.get("outstanding_cents") == package["outstanding_cents"]
                and d.get("ecl_decimal_cents") == package["ecl_cents"]
            )
        matches["ecl"] = ok
        matches["aging"] = duck["aging"]["rows"] == sum(
            p["invoices"] for p in outputs["ecl"].values()
        ) and duck["aging"]["outstanding_cents"] == sum(
            p["outstanding_cents"] for p in outputs["ecl"].values()
        )
        compared = (duck.get("features") or {}).get("compared", {}).get(engine)
        matches["features"] = bool(compared) and not any(
            v for k, v in compared.items() if k not in ("customers", "examples")
        )
        duck.setdefault("matches", {})[engine] = matches
        problems += [
            f"DuckDB's {what} differ from the {engine} warehouse's"
            for what, ok in matches.items()
            if not ok
        ]
    return problems


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark (or, with ``--child``, one part of it)."""
    from tests.benchmarks.run import _csv_list, pg_available

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--sizes",
        type=lambda v: _csv_list(v, tuple(SIZES)),
        default=list(SIZES),
        help="comma-separated: 100k,1m,5m (default: all)",
    )
    parser.add_argument(
        "--engines",
        type=lambda v: _csv_list(v, ENGINES),
        default=list(ENGINES),
        help="comma-separated: sqlite,postgresql (default: both)",
    )
    parser.add_argument(
        "--fresh", action="store_true", help="prepare the warm warehouses again, even if kept"
    )
    parser.add_argument(
        "--clean",
        action="store_true",
        help="only drop the kept warm warehouses of --sizes and --engines, and exit",
    )
    parser.add_argument(
        "--prepare-only",
        action="store_true",
        help="only prepare (or check) the warm warehouses of --sizes and --engines, and exit",
    )
    parser.add_argument(
        "--append",
        action="store_true",
        help="keep the sizes and engines of results-chain.json that this run does not measure",
    )
    parser.add_argument(
        "--render",
        action="store_true",
        help="only write results-chain.md again from results-chain.json (e.g. after editing "
        "diagnosis-chain.md), and exit",
    )
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    parser.add_argument("--step", help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return _child(args)
    if args.render:
        from tests.benchmarks.report_chain import render, targets

        results = json.loads(RESULTS_JSON.read_text())
        results["targets"] = targets(results)
        RESULTS_JSON.write_text(_portable(json.dumps(results, indent=1, default=str)) + "\n")
        RESULTS_MD.write_text(render(results))
        log(f"wrote {RESULTS_MD.relative_to(REPO)}")
        return 0
    if args.prepare_only:
        code_root, _ = snapshot_code()
        failed = []
        for label in args.sizes:
            split_files(SIZES[label])
            for engine in args.engines:
                if "error" in ensure_warm(SIZES[label], engine, code_root, args.fresh):
                    failed.append(f"{label} {engine}")
        log("prepared" + (f"; FAILED: {', '.join(failed)}" if failed else ""))
        return 1 if failed else 0
    if args.clean:
        for label in args.sizes:
            for engine in args.engines:
                drop_warm(SIZES[label], engine)
                drop_run(SIZES[label], engine)
        log("dropped the kept warm warehouses")
        return 0
    return _parent(args, pg_available)


def _child(args) -> int:
    import logging

    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    task, label, *rest = args.child
    size = SIZES[label]
    if task == "prepare":
        result = child_prepare(size, rest[0])
    elif task == "step":
        result = child_step(size, rest[0], args.step)
    elif task == "outputs":
        result = child_outputs(size, rest[0])
    elif task == "copy":
        result = child_copy(size)
    elif task == "duckdb":
        result = child_duckdb(size, [Path(p) for p in rest])
    else:
        raise SystemExit(f"unknown child task {task!r}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1, default=str))
    return 0


def _parent(args, pg_available) -> int:
    from tests.benchmarks.report import machine_info
    from tests.benchmarks.report_chain import render, targets

    started = time.perf_counter()
    code_root, code = snapshot_code()
    log(f"measuring code {code['fingerprint']} (commit {code['commit']}), copied to {code_root}")
    has_pg = pg_available()
    engines = [e for e in args.engines if e != "postgresql" or has_pg]
    results: dict = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": "python -m tests.benchmarks.chain "
        f"--sizes {','.join(args.sizes)} --engines {','.join(args.engines)}",
        "machine": machine_info(has_pg),
        "load_average": {"start": os.getloadavg()},
        "code": code,
        "day": DAY.isoformat(),
        "sizes": {},
    }
    log(f"load average at the start: {results['load_average']['start']}")
    problems: list[str] = []
    earlier: dict = {"sizes": {}}
    if args.append and RESULTS_JSON.exists():
        # another run's sizes and engines are kept; what runs now replaces its own parts
        earlier = json.loads(RESULTS_JSON.read_text())
        results["sizes"] = dict(earlier["sizes"])
        problems += [p for p in earlier.get("problems", []) if p.split(" ", 1)[0] not in args.sizes]
    if "postgresql" in args.engines and not has_pg:
        problems.append("PostgreSQL was not reachable: no PostgreSQL figures")
    out = WORK_DIR / "chain" / "results"
    for label in args.sizes:
        size = SIZES[label]
        kept = {
            e: r
            for e, r in earlier["sizes"].get(label, {}).get("engines", {}).items()
            if e not in engines
        }
        size_result: dict = {
            "counts": split_files(size),
            "engines": kept,
            "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "command": results["command"],
            "code": code,
            "load_average": {"start": os.getloadavg()},
        }
        kept_copy = earlier["sizes"].get(label, {}).get("copy") or {}
        results["sizes"][label] = size_result
        if kept_copy and "error" not in kept_copy:
            size_result["copy"] = kept_copy  # the same files: measured by the earlier run
        elif has_pg:
            log(f"{label}: PostgreSQL COPY of the day's files into warehouse-shaped tables")
            size_result["copy"] = run_child(["copy", label], out / f"{label}-copy.json", code_root)
        for engine in engines:
            size_result["engines"][engine] = run_engine(size, engine, code_root, args.fresh)
            drop_run(size, engine)
        inputs = [
            str(out / f"{label}-{e}-outputs.json")
            for e, r in size_result["engines"].items()
            if "outputs" in r
        ]
        log(f"{label}: DuckDB yardsticks from the files")
        size_result["duckdb"] = run_child(
            ["duckdb", label, *inputs], out / f"{label}-duckdb.json", code_root
        )
        size_result["load_average"]["end"] = os.getloadavg()
        for name, part in [
            ("copy", size_result.get("copy")),
            ("duckdb", size_result["duckdb"]),
            *size_result["engines"].items(),
        ]:
            if part and "error" in part:
                problems.append(f"{label} {name}: {part['error']}")
        problems += [f"{label}: {p}" for p in _check(size_result)]
        results["load_average"]["end"] = os.getloadavg()
        results["duration_seconds"] = time.perf_counter() - started
        results["targets"] = targets(results)
        results["problems"] = problems
        RESULTS_JSON.write_text(_portable(json.dumps(results, indent=1, default=str)) + "\n")
        RESULTS_MD.write_text(render(results))
    log(f"load average at the end: {results['load_average']['end']}")
    log(f"wrote {RESULTS_MD.relative_to(REPO)} and {RESULTS_JSON.relative_to(REPO)}")
    for problem in problems:
        log(f"PROBLEM: {problem}")
    for target in results.get("targets", []):
        log(
            f"target {target['name']} [{target['where']}]: {target['measured']} → "
            f"{target['result']}"
        )
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
