"""Benchmark: ``python -m tests.benchmarks.run [--sizes 100k,1m,5m] [--engines sqlite,postgresql]``.

For each ledger size (≈100k, 1M and 5M invoices, generated once into ``tests/benchmarks/data``)
it measures, each in a fresh child process (``worker``):

* per engine (SQLite, PostgreSQL): the ingest of collectors, customers, invoices and payments
  through ``FileIngest`` — seconds per stage (read; validate = check + set_checks + gx; load =
  stage + merge), rows/s and peak RSS per stage — then the aging snapshot twice, and the
  hand-written aging statement twice on the same tables (asserted to give the same snapshot);
* PostgreSQL's own ``COPY`` of the same files (text columns; the invoices typed as well);
* DuckDB ageing straight from the same CSV files, for reference;
* per engine, on the warehouse just ingested and aged (unless ``--no-risk``), the risk stages
  in a process of their own (``risk``): customer classes, provisions (first run building the
  month-end snapshots, then warm), scores (rules scorecard, then after the monthly training),
  warnings — seconds and peak RSS per step;
* DuckDB's risk yardsticks from the CSV files (classes, ECL with each warehouse's stored
  provision matrix, two scoring features), checked against the package's results.

It writes ``results.md`` (with the targets of the issue and PASS/FAIL) and ``results.json``
next to this file; progress goes to stderr. The exit status is 1 if a measurement failed or a
result disagreed with the package's (targets that fail are results, not errors).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from tests.benchmarks.common import (
    BENCH_DIR,
    CODE_ENV,
    ENGINES,
    PG_ADMIN_URL,
    REPO,
    SIZES,
    WORK_DIR,
    ensure_sample,
    libpq_url,
    remove_warehouse,
    snapshot_code,
)
from tests.benchmarks.report import machine_info, render_markdown, targets

RESULTS_MD = BENCH_DIR / "results.md"
RESULTS_JSON = BENCH_DIR / "results.json"


def log(message: str) -> None:
    """A progress line on stderr."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _csv_list(value: str, allowed) -> list[str]:
    items = [v.strip().lower() for v in value.split(",") if v.strip()]
    unknown = [v for v in items if v not in allowed]
    if unknown:
        raise argparse.ArgumentTypeError(
            f"unknown value(s) {', '.join(unknown)}; expected some of {', '.join(allowed)}"
        )
    return items


def pg_available() -> bool:
    """True when the benchmark's PostgreSQL answers."""
    try:
        import psycopg

        with psycopg.connect(libpq_url(PG_ADMIN_URL), connect_timeout=5) as conn:
            conn.execute("SELECT 1")
        return True
    except Exception as exc:  # any failure means: no PostgreSQL figures this run
        log(f"PostgreSQL at {PG_ADMIN_URL} is not answering ({exc})")
        return False


def run_worker(args: list[str], out: Path, keep: bool, code: Path) -> dict:
    """Run one measurement in a child process; its result, or ``{"error": …}``."""
    out.unlink(missing_ok=True)
    command = [sys.executable, "-m", "tests.benchmarks.worker", *args, "--out", str(out)]
    if keep and args[0] in ("engine", "risk"):
        command.append("--keep")
    path = os.pathsep.join(p for p in (str(code / "include"), os.environ.get("PYTHONPATH")) if p)
    env = {**os.environ, "GX_ANALYTICS_ENABLED": "false", "PYTHONPATH": path, CODE_ENV: str(code)}
    for name in ("RECEIVABLES_DB_URL", "RECEIVABLES_INBOX", "RECEIVABLES_CONFIG"):
        env.pop(name, None)  # the worker sets up its own warehouse and folders
    started = time.perf_counter()
    completed = subprocess.run(command, cwd=REPO, env=env, check=False)
    if completed.returncode != 0 or not out.exists():
        return {"error": f"`{' '.join(args)}` exited with status {completed.returncode}"}
    result = json.loads(out.read_text())
    result["process_seconds"] = time.perf_counter() - started
    return result


def _check_duckdb(size_result: dict) -> list[str]:
    """DuckDB must find the same snapshot as the package (else its figure means nothing)."""
    problems = []
    duck = size_result.get("duckdb") or {}
    for engine, measured in size_result["engines"].items():
        snapshot = measured.get("snapshot")
        if snapshot and "rows" in duck:
            same = {k: duck[k] for k in snapshot} == snapshot
            duck.setdefault("matches", {})[engine] = same
            if not same:
                problems.append(f"DuckDB's aging differs from the {engine} snapshot")
    return problems


#: How each warehouse rounds outstanding × loss rate to the cent (see yardsticks.duckdb_risk):
#: both exactly, half-up.
ECL_ROUNDING = {"postgresql": "ecl_decimal_cents", "sqlite": "ecl_decimal_cents"}


def _check_risk(size_result: dict) -> list[str]:
    """DuckDB's risk yardsticks must find what the package stored: the same customer classes
    (counts per class, rule applied), the same ECL per currency to the cent with the package's
    provision matrix, the same two features for every customer."""
    problems = []
    duck = size_result.get("duckdb_risk") or {}
    if "classes" not in duck:
        return problems
    for engine, risk in (size_result.get("risk") or {}).items():
        if "classes" not in risk:
            continue
        matches = {}
        matches["classes"] = risk["classes"]["by_class"] == duck["classes"]["by_class"]
        mine, theirs = risk["ecl"], (duck.get("ecl") or {}).get(engine, {})
        matches["ecl"] = bool(theirs) and sorted(mine) == sorted(theirs)
        for currency, package in mine.items():
            d = theirs.get(currency) or {}
            same = (
                d.get("invoices") == d.get("rated") == package["invoices"]
                and d.get("outstanding_cents") == package["outstanding_cents"]
                and d.get(ECL_ROUNDING[engine]) == package["ecl_cents"]
            )
            matches["ecl"] = matches["ecl"] and same
        compared = (duck.get("features") or {}).get("compared", {}).get(engine)
        matches["features"] = bool(compared) and not any(
            v for k, v in compared.items() if k not in ("customers", "examples")
        )
        if compared:
            matches["features"] = matches["features"] and compared["customers"] == risk.get(
                "features_customers"
            )
        duck.setdefault("matches", {})[engine] = matches
        problems += [
            f"DuckDB's {what} differ from the {engine} warehouse's"
            for what, ok in matches.items()
            if not ok
        ]
    return problems


def _code_changes(results: dict) -> list[str]:
    """Name the measurements that ran other code than the snapshot (should never happen)."""
    expected = results["code"]["fingerprint"]
    changed = []
    for label, size in results["sizes"].items():
        parts = {
            "copy": size.get("copy"),
            "duckdb": size.get("duckdb"),
            "duckdb risk": size.get("duckdb_risk"),
            **size["engines"],
            **{f"{e} risk": r for e, r in (size.get("risk") or {}).items()},
        }
        for name, part in parts.items():
            code = (part or {}).get("code")
            if code and (code["fingerprint"] != expected or "/.work/code/" not in code["package"]):
                changed.append(f"{label} {name} (code {code['fingerprint']})")
    if not changed:
        return []
    return [
        f"not all measurements ran the snapshot {expected} of the code: "
        + ", ".join(changed)
        + " ran other code; compare their figures with care or run again"
    ]


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and write the results."""
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
        "--keep", action="store_true", help="keep the warehouses (for EXPLAIN, profiling)"
    )
    parser.add_argument(
        "--no-risk",
        dest="risk",
        action="store_false",
        help="skip the risk stages (classes, provisions, scores, warnings) and their yardsticks",
    )
    parser.add_argument(
        "--code",
        metavar="REF",
        help="measure this commit (e.g. HEAD) instead of the working tree as it is now",
    )
    args = parser.parse_args(argv)

    started = time.perf_counter()
    code_root, code = snapshot_code(args.code)
    log(f"measuring code {code['fingerprint']} (commit {code['commit']}), copied to {code_root}")
    has_pg = pg_available()
    engines = [e for e in args.engines if e != "postgresql" or has_pg]
    results: dict = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": "python -m tests.benchmarks.run "
        f"--sizes {','.join(args.sizes)} --engines {','.join(args.engines)}"
        + ("" if args.risk else " --no-risk")
        + (f" --code {args.code}" if args.code else ""),
        "machine": machine_info(has_pg),
        "code": code,
        "sizes": {},
    }
    problems: list[str] = []
    if "postgresql" in args.engines and not has_pg:
        problems.append("PostgreSQL was not reachable: no PostgreSQL figures")
    for label in args.sizes:
        size = SIZES[label]
        counts = ensure_sample(size, log=log)
        size_result: dict = {"counts": counts, "engines": {}}
        if args.risk:
            size_result["risk"] = {}
        results["sizes"][label] = size_result
        folder = WORK_DIR / "results"
        # COPY is the ingest's yardstick whatever engine is benchmarked, so it runs whenever
        # PostgreSQL is there.
        if has_pg:
            log(f"{label}: PostgreSQL COPY of the files")
            size_result["copy"] = run_worker(
                ["copy", label], folder / f"{label}-copy.json", False, code_root
            )
        log(f"{label}: DuckDB aging from the files")
        size_result["duckdb"] = run_worker(
            ["duckdb", label], folder / f"{label}-duckdb.json", False, code_root
        )
        for engine in engines:
            log(f"{label}: ingest and aging on {engine}")
            # the risk stages run on the warehouse the ingest leaves, in a process of their own
            size_result["engines"][engine] = run_worker(
                ["engine", label, "--engine", engine],
                folder / f"{label}-{engine}.json",
                args.keep or args.risk,
                code_root,
            )
            if args.risk and "error" not in size_result["engines"][engine]:
                log(f"{label}: risk stages on {engine}")
                size_result["risk"][engine] = run_worker(
                    ["risk", label, "--engine", engine],
                    folder / f"{label}-{engine}-risk.json",
                    args.keep,
                    code_root,
                )
            if not args.keep:
                remove_warehouse(size, engine)  # whatever the workers left (a failed one)
        if args.risk and size_result["risk"]:
            log(f"{label}: DuckDB risk yardsticks from the files")
            inputs = [str(folder / f"{label}-{e}-risk.json") for e in size_result["risk"]]
            size_result["duckdb_risk"] = run_worker(
                ["duckdb-risk", label, "--inputs", *inputs],
                folder / f"{label}-duckdb-risk.json",
                False,
                code_root,
            )
        for name, part in [
            ("copy", size_result.get("copy")),
            ("duckdb", size_result["duckdb"]),
            *size_result["engines"].items(),
            *[(f"{e} risk", r) for e, r in (size_result.get("risk") or {}).items()],
            ("duckdb risk", size_result.get("duckdb_risk")),
        ]:
            if part and "error" in part:
                problems.append(f"{label} {name}: {part['error']}")
        problems += [f"{label}: {p}" for p in _check_duckdb(size_result)]
        problems += [f"{label}: {p}" for p in _check_risk(size_result)]
        # Write after every size: a long run that stops later still leaves its figures.
        results["warnings"] = _code_changes(results)
        results["duration_seconds"] = time.perf_counter() - started
        results["targets"] = targets(results)
        results["problems"] = problems
        RESULTS_JSON.write_text(json.dumps(results, indent=1, default=str) + "\n")
        RESULTS_MD.write_text(render_markdown(results))
    log(f"wrote {RESULTS_MD.relative_to(REPO)} and {RESULTS_JSON.relative_to(REPO)}")
    for problem in problems:
        log(f"PROBLEM: {problem}")
    for warning in results.get("warnings", []):
        log(f"WARNING: {warning}")
    for target in results.get("targets", []):
        where, measured = target["where"], target["measured"]
        log(f"target {target['name']} [{where}]: {measured} → {target['result']}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
