"""The risk stages, measured on the warehouse an ``engine`` task left (``worker risk …``).

The daily ``receivables_risk`` DAG runs, after the aging snapshot of the as-of date, each in
its own Airflow task (``receivables.jobs``): customer classes, provisions, credit scores and
warnings; ``credit_model`` trains the scorecard monthly. Here each of them runs in one fresh
child process on the ingested and aged warehouse, in this order:

=====================  ======================================================================
``classify``           ``compute_customer_classes`` (``sql/risk/customer_risk_classes.sql``)
``provisions:1``       ``compute_provisions``, first run: builds the missing month-end aging
                       snapshots (18 for 2025-06-30), the roll-rate matrices, the provision
                       matrices and the ECL of every open invoice
``provisions:2``       the same again, warm (every snapshot there)
``score:rules``        ``score_customers`` of the as-of date: ``load_ledger``, features, the
                       rules scorecard (no model trained yet), ``credit_scores``
``score:previous``     the same for the day before (the warnings compare with it)
``warnings:1``         ``raise_warnings``: computes the previous day's aging snapshot first
``warnings:2``         the same again, warm
``train``              ``train_credit_model`` (the monthly DAG): training set, fit, validation,
                       model card, registry
``score:trained``      ``score_customers`` of the as-of date with the model just trained
``warnings:3``         ``raise_warnings`` again: today's scores now come from the trained model,
                       yesterday's from the rules (what the first day of a new model sees)
=====================  ======================================================================

Seconds and peak RSS per step are taken as for the ingest (a sampling thread, a label per
step), SQL statements and a few package functions are timed per step. What the DuckDB
yardsticks check is collected afterwards (not timed): class counts, the stored provision
matrix, ECL totals per currency, and two features of every customer (a Parquet file).
"""

from __future__ import annotations

import datetime as dt
import importlib
import time
from pathlib import Path

from tests.benchmarks.common import (
    AS_OF,
    Size,
    remove_warehouse,
    warehouse_folder,
    warehouse_url,
)
from tests.benchmarks.probes import FunctionTimer, Probe, StatementTimer

#: (step key, what it is), in the order they run.
STEPS = (
    ("classify", "customer classes"),
    ("provisions:1", "provisions, first run (builds the month-end snapshots)"),
    ("provisions:2", "provisions, warm run"),
    ("score:rules", "scores of the as-of date, rules scorecard"),
    ("score:previous", "scores of the day before (rules scorecard)"),
    ("warnings:1", "warnings, first run (computes the previous day's aging)"),
    ("warnings:2", "warnings, warm run"),
    ("train", "monthly training of the scorecard"),
    ("score:trained", "scores of the as-of date, trained scorecard"),
    ("warnings:3", "warnings on the day of a model change"),
)
#: Which count a step's rows/s is of.
ROWS_OF = {
    "classify": "open invoices",
    "provisions": "open invoices",
    "score": "customers",
    "train": "training rows",
    "warnings": "customer × currency rows",
}
#: The two features the DuckDB yardstick recomputes.
CHECKED_FEATURES = ("worst_dpd_12m", "avg_dpd_12m")


def _instrument(probe: Probe, captured: dict) -> tuple[StatementTimer, FunctionTimer]:
    """Time SQL statements and the functions the risk steps spend their time in; keep the
    features of the as-of date that scoring computes (for the DuckDB check)."""
    from receivables.risk import features, models, provisions, scorecard, warnings

    original = models.features_at

    def features_at(ledger, day):
        frame = original(ledger, day)
        if day == AS_OF and "features" not in captured:
            captured["features"] = frame[["customer_id", *CHECKED_FEATURES]].copy()
        return frame

    models.features_at = features_at
    functions = FunctionTimer(probe)
    wraps = [
        (provisions, "compute_snapshot", "aging.compute_snapshot (month-ends)"),
        (provisions, "update_roll_rates", "provisions.update_roll_rates"),
        (provisions, "observe_rolls", "provisions.observe_rolls"),
        (provisions, "provision_summary", "provisions.provision_summary"),
        (provisions, "cure_rates", "provisions.cure_rates"),
        (models, "current_model", "models.current_model"),
        (models, "load_ledger", "features.load_ledger"),
        (models, "features_at", "features.features_at"),
        (models, "training_set", "models.training_set"),
        (models, "train_scorecard", "scorecard.train_scorecard"),
        (models, "discrimination", "scorecard.discrimination"),
        (models, "psi", "scorecard.psi"),
        (models, "write_model_card", "models.write_model_card"),
        (models, "write_arrow", "bulk.write_arrow (credit_scores)"),
        (scorecard.Scorecard, "score", "Scorecard.score"),
        (scorecard, "reasons", "scorecard.reasons"),
        (warnings, "compute_snapshot", "aging.compute_snapshot (previous day)"),
        (warnings, "_facts", "warnings._facts (warning_facts.sql)"),
        (warnings, "_scores", "warnings._scores"),
    ]
    for owner, name, qualname in wraps:
        functions.wrap(owner, name, qualname)
    _time_fetch_per_file(functions, features)
    return StatementTimer(probe), functions


def _time_fetch_per_file(functions: FunctionTimer, features) -> None:
    """Time ``features._fetch`` per SQL file it runs (its raw DBAPI cursors are not seen by
    the statement timer)."""
    import functools

    original = getattr(features, "_fetch", None)
    if original is None:
        return

    @functools.wraps(original)
    def fetch(engine, name, *args, **kwargs):
        label, started = functions.probe.label, time.perf_counter()
        try:
            return original(engine, name, *args, **kwargs)
        finally:
            entry = functions.totals.setdefault((label, f"features._fetch({name})"), [0, 0.0])
            entry[0] += 1
            entry[1] += time.perf_counter() - started

    features._fetch = fetch


def _scalar_rows(engine, sql: str) -> list[tuple]:
    import sqlalchemy as sa

    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.text(sql)).all()]


def _cents(engine_name: str, column: str) -> str:
    # SQLite stores money as integer cents (warehouse/types.py); PostgreSQL as numeric(18, 2)
    return column if engine_name == "sqlite" else f"CAST({column} * 100 AS BIGINT)"


def _outputs(engine, engine_name: str, as_of: dt.date = AS_OF) -> dict:
    """What the yardsticks check, read from the warehouse after the steps (not timed)."""
    import sqlalchemy as sa

    from receivables.warehouse.schema import provision_rates

    day = f"'{as_of.isoformat()}'"
    classes = _scalar_rows(
        engine,
        "SELECT risk_class, COUNT(*), SUM(CASE WHEN rule_applied THEN 1 ELSE 0 END) "
        f"FROM customer_risk_classes WHERE as_of_date = {day} GROUP BY risk_class",
    )
    r = provision_rates  # typed: exact rates are integer units on SQLite
    with engine.connect() as conn:
        rates = conn.execute(
            sa.select(
                r.c.currency,
                r.c.bucket,
                r.c.loss_rate,
                r.c.method,
                r.c.observations,
                r.c.roll_rate,
                r.c.roll_months,
            )
            .where(r.c.as_of_date == as_of)
            .order_by(r.c.currency, r.c.bucket)
        ).all()
    ecl = _scalar_rows(
        engine,
        f"SELECT currency, COUNT(*), SUM({_cents(engine_name, 'ecl')}), "
        f"SUM({_cents(engine_name, 'outstanding')}) "
        f"FROM invoice_risk WHERE as_of_date = {day} GROUP BY currency ORDER BY currency",
    )
    snapshots = _scalar_rows(
        engine,
        "SELECT COUNT(DISTINCT as_of_date), COUNT(*) FROM aging_snapshots",
    )[0]
    models = _scalar_rows(
        engine,
        "SELECT model_id, kind, status, auc, ks, gini, psi, train_rows, holdout_rows "
        "FROM credit_models ORDER BY model_id",
    )
    return {
        "classes": {
            "by_class": {
                c: {"customers": int(n), "rule_applied": int(r or 0)} for c, n, r in classes
            },
        },
        "provision_rates": [
            {
                "currency": c,
                "bucket": b,
                "loss_rate": float(lr),
                "method": m,
                "observations": int(o),
                "roll_rate": None if rr is None else float(rr),
                "roll_months": rm,
            }
            for c, b, lr, m, o, rr, rm in rates
        ],
        "ecl": {
            c: {"invoices": int(n), "ecl_cents": int(e), "outstanding_cents": int(o)}
            for c, n, e, o in ecl
        },
        "aging_snapshots": {"dates": int(snapshots[0]), "rows": int(snapshots[1])},
        "models": [
            dict(
                zip(
                    (
                        "model_id",
                        "kind",
                        "status",
                        "auc",
                        "ks",
                        "gini",
                        "psi",
                        "train_rows",
                        "holdout_rows",
                    ),
                    row,
                    strict=True,
                )
            )
            for row in models
        ],
    }


def _db_bytes(engine, engine_name: str, folder: Path) -> int:
    import sqlalchemy as sa

    if engine_name == "postgresql":
        with engine.connect() as conn:
            return conn.execute(sa.text("SELECT pg_database_size(current_database())")).scalar_one()
    return (folder / "warehouse.db").stat().st_size


def run_risk(size: Size, engine_name: str, features_file: Path, keep: bool = False, log=print):
    """Run and measure the risk steps on the (size, engine) warehouse; then remove it unless
    ``keep``."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    # what the package imports inside its functions, imported now so no step pays for it
    for module in ("sklearn.linear_model", "sklearn.metrics", "pyarrow.csv"):
        importlib.import_module(module)

    from receivables.config import Settings
    from receivables.risk.classification import compute_customer_classes
    from receivables.risk.models import score_customers, train_credit_model
    from receivables.risk.provisions import compute_provisions
    from receivables.risk.warnings import raise_warnings
    from receivables.warehouse.db import create_engine

    tag = f"[{size.label} {engine_name} risk]"
    folder = warehouse_folder(size, engine_name)
    if not folder.exists():
        raise RuntimeError(f"no warehouse in {folder}: run the engine task with --keep first")
    probe = Probe().start()
    captured: dict = {}
    statements, functions = _instrument(probe, captured)
    engine = create_engine(warehouse_url(size, engine_name))
    settings = Settings.from_env({"RECEIVABLES_HOME": str(folder / "home")})
    policy = settings.policy
    previous = AS_OF - dt.timedelta(days=1)
    runs = dict(_scalar_rows(engine, "SELECT as_of_date, open_invoices FROM aging_runs"))
    (models,) = _scalar_rows(engine, "SELECT COUNT(*) FROM credit_models")[0]
    if len(runs) != 1 or models:
        # every step is idempotent, but a second pass would time warm runs as first ones
        raise RuntimeError(
            f"the warehouse in {folder} is not as the engine task leaves it (aging runs "
            f"{sorted(map(str, runs))}, {models} model(s)): run the engine task again"
        )
    (open_invoices,) = runs.values()
    result: dict = {
        "size": size.label,
        "engine": engine_name,
        "baseline_rss": probe.rss(),
        "open_invoices": int(open_invoices),
        "policy": {
            "substandard_share": str(policy.classification.substandard_share),
            "history_months": policy.provisions.history_months,
            "min_history_months": policy.provisions.min_history_months,
        },
        "steps": {},
    }
    calls = {
        "classify": (
            compute_customer_classes,
            (engine, AS_OF, policy),
        ),
        "provisions:1": (compute_provisions, (engine, AS_OF, policy.aging, policy.provisions)),
        "provisions:2": (compute_provisions, (engine, AS_OF, policy.aging, policy.provisions)),
        "score:rules": (score_customers, (engine, AS_OF, policy.scores)),
        "score:previous": (score_customers, (engine, previous, policy.scores)),
        "warnings:1": (raise_warnings, (engine, AS_OF, policy)),
        "warnings:2": (raise_warnings, (engine, AS_OF, policy)),
        "train": (train_credit_model, (engine, AS_OF, policy.scores, settings.reports_dir)),
        "score:trained": (score_customers, (engine, AS_OF, policy.scores)),
        "warnings:3": (raise_warnings, (engine, AS_OF, policy)),
    }
    for key, _ in STEPS:
        function, args = calls[key]
        label = f"risk:{key}"
        with probe.labelled(label):
            started = time.perf_counter()
            summary = function(*args)
            wall = time.perf_counter() - started
        result["steps"][key] = {"wall": wall, "summary": summary}
        log(tag, f"{key}: {wall:.2f} s")
        if "features" in captured:  # written at once, so the frame is not held any longer
            frame = captured.pop("features")
            pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), features_file)
            result["features_file"] = str(features_file)
            result["features_customers"] = len(frame)
            del frame
    result.update(_outputs(engine, engine_name))
    result["db_bytes"] = _db_bytes(engine, engine_name, folder)
    engine.dispose()
    probe.stop()
    for key, step in result["steps"].items():
        step["peak_rss"] = probe.peaks.get(f"risk:{key}", 0)
        step["rows"] = _rows_of(key, step["summary"], result)
    result["peaks_by_label"] = probe.peaks
    result["statements"] = statements.rows()
    result["functions"] = functions.rows()
    if not keep:
        remove_warehouse(size, engine_name)
    return result


def _rows_of(key: str, summary: dict, result: dict) -> int | None:
    """The count a step's rows/s is of (see ``ROWS_OF``)."""
    kind = key.split(":")[0]
    if kind in ("classify", "provisions"):
        return result["open_invoices"]
    if kind == "score":
        return summary.get("customers")
    if kind == "train":
        trained = [m for m in result.get("models", []) if m["kind"] != "rules"]
        if trained and trained[-1]["train_rows"] is not None:
            return int(trained[-1]["train_rows"]) + int(trained[-1]["holdout_rows"] or 0)
        return None
    if kind == "warnings":
        return sum(c["customers"] for c in result["classes"]["by_class"].values())
    return None


def run_duckdb_risk(size: Size, inputs: list[Path], log=print) -> dict:
    """DuckDB's risk yardsticks from the CSV files, with each engine's stored provision matrix
    and features (from the JSON results of the ``risk`` tasks in ``inputs``)."""
    import json
    import os

    import duckdb

    from tests.benchmarks.yardsticks import duckdb_risk

    packages = {}
    for path in inputs:
        if path.exists():
            data = json.loads(path.read_text())
            if "provision_rates" in data:
                packages[data["engine"]] = data
    probe = Probe().start()
    result = duckdb_risk(size.data_dir, AS_OF, packages, probe)
    probe.stop()
    result.update(
        size=size.label,
        version=duckdb.__version__,
        threads=os.cpu_count(),
        peaks={k.split(":", 1)[1]: v for k, v in probe.peaks.items() if k.startswith("duckdb:")},
    )
    seconds = ", ".join(
        f"{k} {'/'.join(f'{s:.2f}' for s in v)}" for k, v in result["seconds"].items()
    )
    log(f"[{size.label} duckdb risk]", f"from the CSV files: {seconds} s")
    return result
