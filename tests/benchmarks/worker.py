"""One measurement in a fresh process: ``python -m tests.benchmarks.worker TASK SIZE [...]``.

Tasks:

* ``engine SIZE ENGINE`` — fresh warehouse (SQLite file or PostgreSQL database), Great
  Expectations warmed up on a tiny ledger, then ingest collectors, customers, invoices and
  payments with :class:`~receivables.ingest.pipeline.FileIngest`, the aging snapshot twice
  (:func:`~receivables.aging.compute_snapshot`), and the hand-written aging statement twice on
  the same tables, checked against the snapshot.
* ``risk SIZE ENGINE`` — on the warehouse ``engine … --keep`` left: customer classes,
  provisions (cold and warm), scores, training, warnings (see :mod:`tests.benchmarks.risk`);
  the warehouse is removed afterwards unless ``--keep``.
* ``copy SIZE`` — PostgreSQL ``COPY`` of the four files into text tables, and of the invoices
  into a typed table and into a table shaped like the warehouse's ``invoices``.
* ``duckdb SIZE`` — DuckDB ages straight from the CSV files.
* ``duckdb-risk SIZE --inputs RISK.json…`` — DuckDB's risk yardsticks from the CSV files:
  customer classes, ECL with each warehouse's stored provision matrix, two scoring features
  (compared with the package's).

Results go to ``--out`` as JSON; progress goes to stderr. A separate process per measurement
keeps each peak RSS (and ``ru_maxrss``) its own.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import resource
import shutil
import sys
import time
from pathlib import Path

from tests.benchmarks.common import (
    AS_OF,
    KINDS,
    SIZES,
    WARMUP,
    Size,
    drop_pg_database,
    ensure_sample,
    fresh_dir,
    measured_code,
    recreate_pg_database,
    remove_warehouse,
    warehouse_db_name,
    warehouse_folder,
)
from tests.benchmarks.probes import FunctionTimer, Probe, StatementTimer
from tests.benchmarks.risk import run_duckdb_risk, run_risk
from tests.benchmarks.yardsticks import (
    INVOICE_TYPES,
    YARDSTICK_TABLE,
    create_like_warehouse,
    create_table,
    duckdb_aging,
    handwritten_aging_sql,
    pg_copy,
    snapshot_totals,
)

#: FileOutcome.seconds keys grouped into the issue's stages.
STAGE_GROUPS = {
    "read": ("read",),
    "validate": ("check", "set_checks", "gx"),
    "load": ("stage", "merge"),
}


def progress(tag: str, message: str) -> None:
    """One progress line on stderr."""
    print(f"[{time.strftime('%H:%M:%S')}] {tag} {message}", file=sys.stderr, flush=True)


def ru_maxrss_bytes() -> int:
    """This process's high-water RSS (Linux reports kilobytes)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


# --- engine ----------------------------------------------------------------------------------


def new_warehouse(engine_name: str, db_name: str, folder: Path):
    """A migrated, empty warehouse: a new SQLite file or a new PostgreSQL database."""
    from receivables.warehouse.db import create_engine
    from receivables.warehouse.migrate import upgrade

    if engine_name == "sqlite":
        url = f"sqlite:///{folder / 'warehouse.db'}"
    else:
        url = recreate_pg_database(db_name)
    engine = create_engine(url)
    upgrade(engine)
    return engine


def settings_for(home: Path):
    """The package's settings with ``RECEIVABLES_HOME`` at ``home``."""
    from receivables.config import Settings

    # An explicit environment: nothing from the caller's RECEIVABLES_* leaks in.
    return Settings.from_env({"RECEIVABLES_HOME": str(home)})


def _ingest_all(ingest, source: Size, inbox: Path, on_file=None) -> dict:
    """Copy each file into the inbox (ingest moves it away) and ingest it, in loading order."""
    outcomes = {}
    for kind in KINDS:
        path = inbox / f"{kind}.csv"
        shutil.copyfile(source.file(kind), path)
        outcomes[kind] = on_file(kind, path) if on_file else ingest.ingest(path)
    return outcomes


def warm_up(engine_name: str, folder: Path, tag: str) -> None:
    """Ingest and age a tiny ledger in a throw-away warehouse of the same engine.

    The first Great Expectations call of a process imports GX (≈5 s); this keeps that import,
    and the first use of the SQL templates and of the GX SQL datasource, out of the figures.
    """
    from receivables.aging import compute_snapshot
    from receivables.ingest.pipeline import FileIngest

    started = time.perf_counter()
    ensure_sample(WARMUP, log=lambda m: progress(tag, m))
    engine = new_warehouse(engine_name, "receivables_bench_warmup", fresh_dir(folder))
    settings = settings_for(folder / "home")
    ingest = FileIngest(engine, settings, AS_OF, "bench-warmup")
    outcomes = _ingest_all(ingest, WARMUP, fresh_dir(folder / "inbox"))
    bad = {k: o.status for k, o in outcomes.items() if o.status != "loaded"}
    if bad:
        raise RuntimeError(f"warm-up files were not loaded: {bad}")
    compute_snapshot(engine, AS_OF, settings.policy.aging)
    engine.dispose()
    if engine_name == "postgresql":
        drop_pg_database("receivables_bench_warmup")
    progress(tag, f"warm-up (GX import, tiny ledger) took {time.perf_counter() - started:.1f} s")


def _instrument(probe: Probe) -> tuple[StatementTimer, FunctionTimer]:
    """Label the ingest's stages for the probe; time SQL statements and chosen functions."""
    from receivables import aging
    from receivables.ingest import pipeline, reader, staging, validation

    class LabelledStopwatch(pipeline.Stopwatch):
        """The ingest's own stopwatch, also telling the probe which stage is running."""

        @contextlib.contextmanager
        def stage(self, name):
            kind = probe.label.split(":")[1]
            with super().stage(name), probe.labelled(f"ingest:{kind}:{name}"):
                yield

    # _load creates its Stopwatch by module-level name: replacing it labels every stage.
    pipeline.Stopwatch = LabelledStopwatch
    functions = FunctionTimer(probe)
    # Internals move; whichever of these the measured code has is timed (see FunctionTimer).
    functions.wrap(pipeline, "sha256_of")
    functions.wrap(pipeline, "check_batch", "rules.check_batch")
    functions.wrap(reader, "detect_encoding")  # up to cf9680c
    functions.wrap(reader, "_scan", "reader.scan_csv")  # the pre-scan: encoding and quotes
    functions.wrap(staging, "write_arrow", "bulk.write_arrow")
    for name in (
        "reset",
        "write",
        "_copy",
        "_executemany",
        "index",
        "run_checks",
        "counts",
        "merge",
    ):
        functions.wrap(staging.Staging, name)
    for name in ("__init__", "validate_header", "validate_staged"):
        functions.wrap(validation.Validator, name)
    functions.wrap(aging, "summarise")
    return StatementTimer(probe), functions


def _peaks_by_stage(probe: Probe, kind: str) -> dict[str, int]:
    """Peak RSS of one file per issue stage (read, validate, load, other) and overall."""
    prefix = f"ingest:{kind}:"
    peaks = {
        group: max((probe.peaks.get(prefix + s, 0) for s in stages), default=0)
        for group, stages in STAGE_GROUPS.items()
    }
    peaks["other"] = probe.peaks.get(prefix + "other", 0)
    peaks["all"] = probe.peak(prefix)
    return peaks


def _yardstick_totals(engine, engine_name: str, table: str, where: str = "") -> dict:
    """Totals of an aging table through the engine's raw DBAPI connection."""
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()

        class _Exec:
            # sqlite3 and psycopg cursors both have execute/fetchone/fetchall
            @staticmethod
            def execute(sql):
                cursor.execute(sql)
                return cursor

        return snapshot_totals(_Exec, table, engine_name, where)
    finally:
        raw.close()


def run_engine(size: Size, engine_name: str, keep: bool = False) -> dict:
    """Ingest, age and measure the hand-written aging for one size on one engine."""
    import sqlalchemy as sa

    from receivables.aging import compute_snapshot
    from receivables.ingest.pipeline import FileIngest

    tag = f"[{size.label} {engine_name}]"
    probe = Probe().start()
    folder = fresh_dir(warehouse_folder(size, engine_name))
    warm_up(engine_name, folder / "warmup", tag)
    db_name = warehouse_db_name(size)
    engine = new_warehouse(engine_name, db_name, folder)
    statements, functions = _instrument(probe)
    settings = settings_for(folder / "home")
    ingest = FileIngest(engine, settings, AS_OF, f"bench-{size.label}")
    baseline = probe.rss()
    result: dict = {"size": size.label, "engine": engine_name, "baseline_rss": baseline}

    def ingest_one(kind: str, path: Path):
        with probe.labelled(f"ingest:{kind}:other"):
            started = time.perf_counter()
            outcome = ingest.ingest(path)
            wall = time.perf_counter() - started
        if outcome.status != "loaded" or outcome.rows_quarantined:
            raise RuntimeError(f"{kind}: not loaded cleanly: {outcome}")
        seconds = dict(outcome.seconds or {})
        grouped = {g: sum(seconds.get(s, 0.0) for s in ss) for g, ss in STAGE_GROUPS.items()}
        grouped["other"] = wall - sum(seconds.values())
        progress(
            tag,
            f"{kind}: {outcome.rows_loaded:,} rows in {wall:.2f} s "
            f"({', '.join(f'{k} {v:.2f}' for k, v in seconds.items())})",
        )
        return {
            "rows": outcome.rows_read,
            "rows_loaded": outcome.rows_loaded,
            "wall": wall,
            "seconds": seconds,
            "stages": grouped,
            "peak_rss": _peaks_by_stage(probe, kind),
        }

    result["files"] = _ingest_all(ingest, size, fresh_dir(folder / "inbox"), ingest_one)
    invoices = result["files"]["invoices"]["rows_loaded"]

    result["aging"] = []
    for run in (1, 2):
        label = f"aging:{run}"
        with probe.labelled(label):
            started = time.perf_counter()
            summary = compute_snapshot(engine, AS_OF, settings.policy.aging)
            wall = time.perf_counter() - started
        result["aging"].append(
            {
                "wall": wall,
                # compute_snapshot's own figure: the transaction (DELETE + INSERT … SELECT,
                # count, aging_runs); the rest of the wall time is summarise()
                "transaction": summary.seconds,
                "summarise": wall - summary.seconds,
                "open_invoices": summary.invoices,
                "invoices": invoices,
                "peak_rss": probe.peaks.get(label, 0),
            }
        )
        progress(tag, f"aging run {run}: {summary.invoices:,} open invoices in {wall:.2f} s")
    where = f"WHERE as_of_date = '{AS_OF.isoformat()}'"
    snapshot = _yardstick_totals(engine, engine_name, "aging_snapshots", where)
    result["snapshot"] = snapshot

    sql = handwritten_aging_sql(engine_name, AS_OF)
    result["handwritten"] = {"sql": sql, "seconds": []}
    for run in (1, 2):
        with engine.begin() as conn:
            conn.exec_driver_sql(f"DROP TABLE IF EXISTS {YARDSTICK_TABLE}")
        with probe.labelled(f"handwritten:{run}"):
            started = time.perf_counter()
            with engine.begin() as conn:
                conn.exec_driver_sql(sql)
            result["handwritten"]["seconds"].append(time.perf_counter() - started)
    yardstick = _yardstick_totals(engine, engine_name, YARDSTICK_TABLE)
    result["handwritten"].update(yardstick)
    # A yardstick that computes something else is worthless: same rows, same money, same classes.
    assert yardstick == snapshot, f"hand-written aging differs: {yardstick} vs {snapshot}"
    progress(
        tag,
        "hand-written aging: "
        + ", ".join(f"{s:.2f} s" for s in result["handwritten"]["seconds"])
        + " (matches the snapshot)",
    )

    if engine_name == "postgresql":
        with engine.connect() as conn:
            result["db_bytes"] = conn.execute(
                sa.text("SELECT pg_database_size(current_database())")
            ).scalar_one()
    else:
        result["db_bytes"] = (folder / "warehouse.db").stat().st_size
    engine.dispose()
    if not keep:
        # A 5M warehouse is gigabytes: keep it only when asked (--keep: for the risk stages,
        # which run on it in their own process, or for diagnosis).
        remove_warehouse(size, engine_name)
    probe.stop()
    result["peaks_by_label"] = probe.peaks
    result["peak_rss_ingest_aging"] = max(probe.peak("ingest:"), probe.peak("aging:"))
    result["ru_maxrss"] = ru_maxrss_bytes()
    result["statements"] = statements.rows()
    result["functions"] = functions.rows()
    return result


# --- yardsticks ------------------------------------------------------------------------------


def run_copy(size: Size) -> dict:
    """PostgreSQL COPY of the files: all four as text; the invoices also typed, and invoices and
    payments into tables shaped like the warehouse's (same types, CHECKs and indexes) — the part
    of the load that no ingest design avoids with this schema."""
    import csv

    from receivables.warehouse.db import create_engine
    from receivables.warehouse.migrate import upgrade

    tag = f"[{size.label} copy]"
    db_name = f"receivables_bench_{size.label}_copy"
    url = recreate_pg_database(db_name)
    result: dict = {"size": size.label, "files": {}}
    try:
        engine = create_engine(url)
        upgrade(engine)  # the warehouse tables, for the table of the same shape
        engine.dispose()
        for kind in KINDS:
            with size.file(kind).open(encoding="utf-8", newline="") as f:
                header = next(csv.reader(f))
            path = size.file(kind)
            text = create_table(f"copy_{kind}", [(c, "text") for c in header])
            result["files"][kind] = pg_copy(url, path, f"copy_{kind}", text)
            progress(tag, f"COPY {kind} (text): {result['files'][kind]['seconds']:.2f} s")
            variants = {
                "payments": {"payments_shaped": create_like_warehouse("t", "payments")},
                "invoices": {
                    "invoices_typed": create_table(
                        "t", [(c, INVOICE_TYPES.get(c, "text")) for c in header]
                    ),
                    "invoices_shaped_no_index": create_like_warehouse("t", "invoices", False),
                    "invoices_shaped": create_like_warehouse("t", "invoices"),
                },
            }.get(kind, {})
            for key, create in variants.items():
                columns = header if "shaped" in key else None
                result[key] = pg_copy(url, path, "t", create, columns)
                progress(tag, f"COPY {kind} ({key}): {result[key]['seconds']:.2f} s")
    finally:
        drop_pg_database(db_name)
    return result


def run_duckdb(size: Size) -> dict:
    """DuckDB ages from the CSV files (twice), with its peak RSS."""
    import duckdb

    probe = Probe().start()
    with probe.labelled("duckdb"):
        result = duckdb_aging(size.data_dir, AS_OF)
    probe.stop()
    result.update(
        size=size.label,
        version=duckdb.__version__,
        threads=os.cpu_count(),
        peak_rss=probe.peaks.get("duckdb", 0),
        ru_maxrss=ru_maxrss_bytes(),
    )
    progress(
        f"[{size.label} duckdb]",
        "aging from the CSV files: " + ", ".join(f"{s:.2f} s" for s in result["seconds"]),
    )
    return result


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, run one task, write its JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("task", choices=("engine", "risk", "copy", "duckdb", "duckdb-risk"))
    parser.add_argument("size", choices=sorted(SIZES))
    parser.add_argument("--engine", choices=("sqlite", "postgresql"))
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--keep", action="store_true", help="keep the warehouse afterwards")
    parser.add_argument(
        "--inputs", type=Path, nargs="*", default=[], help="duckdb-risk: the risk tasks' JSON"
    )
    args = parser.parse_args(argv)
    # The package logs every batch at INFO; progress lines of our own are enough here.
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    size = SIZES[args.size]
    code = measured_code()
    if args.task == "engine":
        result = run_engine(size, args.engine, args.keep)
    elif args.task == "risk":
        features = args.out.with_name(f"{args.out.stem}-features.parquet")
        args.out.parent.mkdir(parents=True, exist_ok=True)
        result = run_risk(size, args.engine, features, args.keep, log=progress)
    elif args.task == "duckdb-risk":
        result = run_duckdb_risk(size, args.inputs, log=progress)
    elif args.task == "copy":
        result = run_copy(size)
    else:
        result = run_duckdb(size)
    result["code"] = code
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
