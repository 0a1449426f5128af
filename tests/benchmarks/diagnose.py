"""Where the time goes: ``python -m tests.benchmarks.diagnose [--size 1m] [--engines …]``.

Not part of ``make bench`` (profiling distorts the timings it explains). For one size and each
engine it ingests the ledger once more, the way the benchmark does, and records:

* a cProfile of ``FileIngest.ingest()`` for the invoices and payments files (own time and
  cumulative time per function);
* the plan of every heavy statement, taken while the statement does its real work:
  ``EXPLAIN (ANALYZE, BUFFERS, WAL)`` on PostgreSQL (the merge is executed *as* the EXPLAIN, so
  its trigger and index work is in the figures), ``EXPLAIN QUERY PLAN`` plus the measured time on
  SQLite — merges, set-based checks, the aging INSERT and the hand-written aging;
* every SQL statement with its time, Great Expectations' own queries included, and the RSS
  before and after each GX suite;
* on PostgreSQL, the aging plans again after ``ANALYZE invoices, payments`` (the warehouse
  tables have no statistics otherwise when autovacuum is off).

Writes ``diagnosis-<size>.md`` next to this file.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import sqlalchemy as sa

from tests.benchmarks.common import (
    AS_OF,
    BENCH_DIR,
    CODE_ENV,
    ENGINES,
    KINDS,
    SIZES,
    WORK_DIR,
    fresh_dir,
    measured_code,
    snapshot_code,
)
from tests.benchmarks.probes import Probe, StatementTimer
from tests.benchmarks.worker import new_warehouse, progress, settings_for, warm_up
from tests.benchmarks.yardsticks import handwritten_aging_sql

MB = 1_000_000


class Notes:
    """Markdown sections collected during the run."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def section(self, title: str, body: str, fence: bool = True) -> None:
        """Add a titled block (fenced as text unless ``fence`` is False)."""
        self.lines += [f"#### {title}", ""]
        self.lines += ["```text", body.rstrip(), "```", ""] if fence else [body.rstrip(), ""]


def _used(statement: str, params: dict) -> dict:
    # The same rule as receivables.warehouse.sqlfiles.execute: bind only what the text uses.
    return {k: v for k, v in params.items() if re.search(rf"(?<!:):{k}\b", statement)}


def _plan(conn, dialect: str, statement: str, params: dict, analyze: bool = True) -> str:
    """The plan of ``statement`` run on ``conn`` (executed when ``analyze`` on PostgreSQL)."""
    if dialect == "postgresql":
        options = "ANALYZE, BUFFERS, WAL" if analyze else "COSTS"
        rows = conn.execute(sa.text(f"EXPLAIN ({options}) {statement}"), _used(statement, params))
        return "\n".join(r[0] for r in rows)
    rows = conn.execute(sa.text(f"EXPLAIN QUERY PLAN {statement}"), _used(statement, params))
    return "\n".join(f"{'  ' * (r[1] > 0)}{r[3]}" for r in rows)


#: Where the wrappers below write: the notes and probe of the engine being diagnosed.
_CURRENT: dict = {}


def _patch() -> None:
    """Take plans inside the merge and the set-based checks of invoices and payments."""
    from receivables.ingest import staging
    from receivables.warehouse import sqlfiles

    original_merge, original_checks = staging.Staging.merge, staging.Staging.run_checks

    def merge(self, conn, file_id, defaults):
        notes, dialect = _CURRENT["notes"], self.dialect
        if notes is None or self.kind.name not in ("invoices", "payments"):
            return original_merge(self, conn, file_id, defaults)
        params = {"file_id": file_id, **defaults}
        template = f"ingest/merge_{self.kind.name}.sql"
        statements = sqlfiles.render(template, dialect, stg=self.name)
        if dialect == "sqlite":
            for n, statement in enumerate(statements, 1):
                notes.section(f"{template} statement {n}", _plan(conn, dialect, statement, params))
            started = time.perf_counter()
            result = original_merge(self, conn, file_id, defaults)
            notes.lines += [f"{template}: {time.perf_counter() - started:.2f} s in all", ""]
            return result
        for n, statement in enumerate(statements, 1):
            # EXPLAIN ANALYZE runs the statement for real: the load goes on as usual afterwards.
            started = time.perf_counter()
            plan = _plan(conn, dialect, statement, params)
            seconds = time.perf_counter() - started
            notes.section(f"{template} statement {n} ({seconds:.2f} s)", plan)
        rows = conn.execute(sa.text(f"SELECT COUNT(*) FROM {self.name} WHERE NOT held"))
        return int(rows.scalar_one())

    def run_checks(self):
        notes, dialect = _CURRENT["notes"], self.dialect
        if notes is not None and self.kind.name in ("invoices", "payments"):
            templates = ["ingest/check_duplicates.sql", f"ingest/checks_{self.kind.name}.sql"]
            context = {"id": self.kind.id_column}
            for template in templates:
                for n, statement in enumerate(
                    sqlfiles.render(template, dialect, stg=self.name, **context), 1
                ):
                    with self.engine.connect() as conn:
                        started = time.perf_counter()
                        if dialect == "postgresql":
                            plan = _plan(conn, dialect, statement, {})
                        else:
                            conn.execute(sa.text(statement)).all()
                            plan = _plan(conn, dialect, statement, {})
                        seconds = time.perf_counter() - started
                    notes.section(f"{template} statement {n} ({seconds:.2f} s)", plan)
        return original_checks(self)

    staging.Staging.merge = merge
    staging.Staging.run_checks = run_checks

    # The staging rows are written on a background thread in newer code, which the main
    # thread's cProfile does not see: profile the write calls in whatever thread runs them.
    # Only the outermost write function: a profiler enabled twice is switched off by the inner
    # call's disable().
    names = ["write"] if hasattr(staging.Staging, "write") else ["_copy", "_executemany"]
    for name in names:
        original = getattr(staging.Staging, name, None)
        if original is not None:
            setattr(staging.Staging, name, _profiled(original))


def _profiled(function):
    """``function`` profiled into ``_CURRENT["writer"]`` (a cProfile per diagnosed file)."""
    import functools

    @functools.wraps(function)
    def profiled(*args, **kwargs):
        profile = _CURRENT.get("writer")
        # In the main thread the file's own cProfile already sees it (and enabling a second
        # profiler there would switch the first one off).
        if profile is None or threading.current_thread() is threading.main_thread():
            return function(*args, **kwargs)
        profile.enable()
        try:
            return function(*args, **kwargs)
        finally:
            profile.disable()

    return profiled


def _profile_text(profile: cProfile.Profile, sort: str, limit: int = 25) -> str:
    out = io.StringIO()
    stats = pstats.Stats(profile, stream=out)
    stats.strip_dirs().sort_stats(sort).print_stats(limit)
    # Keep the table, drop pstats' preamble.
    text = out.getvalue()
    return text[text.find("   ncalls") :] if "   ncalls" in text else text


def _gx_memory() -> None:
    """Report RSS before and after each GX staged suite."""
    from receivables.ingest import validation

    original = validation.Validator.validate_staged

    def validate_staged(self, kind_name, staging_table, run_name):
        notes, probe = _CURRENT["notes"], _CURRENT["probe"]
        if notes is None:  # the warm-up
            return original(self, kind_name, staging_table, run_name)
        before = probe.rss()
        started = time.perf_counter()
        with probe.labelled(f"gx:{kind_name}"):
            result = original(self, kind_name, staging_table, run_name)
        notes.lines += [
            f"* GX `{kind_name}_staged`: {time.perf_counter() - started:.2f} s, RSS "
            f"{before / MB:,.0f} MB before, peak {probe.peaks[f'gx:{kind_name}'] / MB:,.0f} MB, "
            f"{probe.rss() / MB:,.0f} MB after",
        ]
        return result

    validation.Validator.validate_staged = validate_staged


def diagnose(size_label: str, engine_name: str, notes: Notes) -> None:
    """Ingest one size on one engine with plans and profiles; age it; add the notes."""
    from receivables.aging import compute_snapshot
    from receivables.ingest.pipeline import FileIngest
    from receivables.warehouse import sqlfiles

    size = SIZES[size_label]
    tag = f"[diagnose {size_label} {engine_name}]"
    folder = fresh_dir(WORK_DIR / f"diagnose-{size_label}-{engine_name}")
    _CURRENT["notes"] = None  # nothing of the warm-up goes into the notes
    warm_up(engine_name, folder / "warmup", tag)
    probe = Probe().start()
    db_name = f"receivables_diagnose_{size_label}"
    engine = new_warehouse(engine_name, db_name, folder)
    statements = StatementTimer(probe)
    settings = settings_for(folder / "home")
    ingest = FileIngest(engine, settings, AS_OF, "diagnose")
    notes.lines += [f"## {size_label} · {engine_name}", ""]
    _CURRENT.update(notes=notes, probe=probe)
    if not _CURRENT.get("patched"):
        _patch()
        _gx_memory()
        _CURRENT["patched"] = True
    inbox = fresh_dir(folder / "inbox")
    import shutil

    for kind in KINDS:
        path = inbox / f"{kind}.csv"
        shutil.copyfile(size.file(kind), path)
        if kind in ("invoices", "payments"):
            notes.lines += [f"### {kind}", ""]
            profile = cProfile.Profile()
            _CURRENT["writer"] = writer = cProfile.Profile()
            with probe.labelled(f"ingest:{kind}"):
                started = time.perf_counter()
                profile.enable()
                outcome = ingest.ingest(path)
                profile.disable()
            seconds = time.perf_counter() - started
            notes.lines += [
                f"`ingest()` under cProfile: {seconds:.2f} s, stages {outcome.seconds}",
                "",
            ]
            notes.section("cProfile, by own time", _profile_text(profile, "tottime"))
            notes.section("cProfile, by cumulative time", _profile_text(profile, "cumulative"))
            _CURRENT["writer"] = None
            if writer.getstats():
                notes.section(
                    "cProfile of the staging writes (whichever thread ran them), by own time",
                    _profile_text(writer, "tottime", 15),
                )
        else:
            with probe.labelled(f"ingest:{kind}"):
                outcome = ingest.ingest(path)
        progress(tag, f"{kind}: {outcome.status} {outcome.rows_loaded:,} rows {outcome.seconds}")

    notes.lines += ["### aging", ""]
    probe.label = "aging"  # for the statement list
    policy = settings.policy.aging
    compute_snapshot(engine, AS_OF, policy)  # as the benchmark's run 1; plans are of a warm run
    aging_sql = sqlfiles.render(
        "aging_snapshot.sql", engine_name, buckets=policy.buckets, risk_classes=policy.risk_classes
    )
    handwritten = handwritten_aging_sql(engine_name, AS_OF)
    params = {"as_of": AS_OF.isoformat() if engine_name == "sqlite" else AS_OF}

    def aging_plans(title: str) -> None:
        # DELETE and INSERT in one transaction, as compute_snapshot runs them, rolled back so
        # the stored snapshot stays as computed; the hand-written statement likewise.
        for group in (
            [
                (aging_sql[0], "aging_snapshot.sql DELETE"),
                (aging_sql[1], "aging_snapshot.sql INSERT … SELECT"),
            ],
            [(handwritten, "hand-written CREATE TABLE … AS SELECT")],
        ):
            with engine.connect() as conn:
                trans = conn.begin()
                conn.exec_driver_sql("DROP TABLE IF EXISTS aging_yardstick")
                for statement, name in group:
                    if engine_name == "sqlite":
                        # the plan first: SQLite plans CREATE TABLE only while it does not exist
                        plan = _plan(conn, engine_name, statement, params)
                        started = time.perf_counter()
                        conn.execute(sa.text(statement), _used(statement, params))
                    else:
                        started = time.perf_counter()
                        plan = _plan(conn, engine_name, statement, params)
                    seconds = time.perf_counter() - started
                    notes.section(f"{name} ({title}, {seconds:.2f} s)", plan)
                trans.rollback()

    aging_plans("as loaded")
    if engine_name == "postgresql":
        with engine.connect() as conn:
            stats = conn.execute(
                sa.text(
                    "SELECT relname, n_live_tup, last_analyze, last_autoanalyze "
                    "FROM pg_stat_user_tables WHERE relname IN ('invoices', 'payments')"
                )
            ).all()
        notes.section("table statistics before ANALYZE", "\n".join(str(tuple(r)) for r in stats))
        with engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE invoices")
            conn.exec_driver_sql("ANALYZE payments")
        aging_plans("after ANALYZE invoices, payments")

    rows = [
        f"{r['seconds']:8.2f} s {r['calls']:5d}×  {r['label']:28s} {r['statement'][:110]}"
        for r in statements.rows()[:40]
    ]
    notes.section("slowest SQL statements (all engines, GX included)", "\n".join(rows))
    engine.dispose()
    probe.stop()
    if engine_name == "postgresql":
        from tests.benchmarks.common import drop_pg_database

        drop_pg_database(db_name)
    shutil.rmtree(folder, ignore_errors=True)


def _measured_snapshot() -> Path | None:
    """The code snapshot of the last ``results.json``, if it is still there."""
    import json

    results = BENCH_DIR / "results.json"
    if not results.exists():
        return None
    root = WORK_DIR / "code" / json.loads(results.read_text())["code"]["fingerprint"]
    return root if root.is_dir() else None


def main(argv: list[str] | None = None) -> int:
    """Diagnose one size on the chosen engines; write ``diagnosis-<size>.md``."""
    import logging

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", choices=sorted(SIZES), default="1m")
    parser.add_argument("--engines", default=",".join(ENGINES))
    args = parser.parse_args(argv)
    if not os.environ.get(CODE_ENV):
        # Diagnose the code results.md measured (its snapshot, kept under .work/code), else a
        # snapshot of the checkout as it is now: start again importing the package from it.
        root = _measured_snapshot() or snapshot_code()[0]
        path = os.pathsep.join(
            p for p in (str(root / "include"), os.environ.get("PYTHONPATH")) if p
        )
        env = {**os.environ, "PYTHONPATH": path, CODE_ENV: str(root)}
        command = [sys.executable, "-m", "tests.benchmarks.diagnose", *(argv or sys.argv[1:])]
        return subprocess.run(command, env=env, check=False).returncode
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    notes = Notes()
    notes.lines += [
        f"# Diagnosis of the {args.size} ledger",
        "",
        f"Written by `python -m tests.benchmarks.diagnose --size {args.size}` on "
        f"{time.strftime('%Y-%m-%d %H:%M')} for the code with fingerprint "
        f"`{measured_code()['fingerprint']}` (see `results.md`). Timings here include cProfile "
        "and EXPLAIN ANALYZE overhead: use `results.md` for the figures, this file for where "
        "they go.",
        "",
    ]
    for engine_name in args.engines.split(","):
        diagnose(args.size, engine_name, notes)
    out = BENCH_DIR / f"diagnosis-{args.size}.md"
    out.write_text("\n".join(notes.lines) + "\n")
    progress(
        "[diagnose]",
        f"wrote {out.relative_to(Path.cwd()) if out.is_relative_to(Path.cwd()) else out}",
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
