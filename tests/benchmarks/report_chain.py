"""Targets and the Markdown report of the daily-chain benchmark (:mod:`tests.benchmarks.chain`)."""

from __future__ import annotations

from pathlib import Path

from tests.benchmarks.report import ENGINE_NAMES, MB, _machine, _table

#: A hand-written diagnosis, included in the report when present (kept beside it).
DIAGNOSIS = Path(__file__).resolve().parent / "diagnosis-chain.md"
#: Step labels, and the DuckDB yardstick beside each (key in the DuckDB results' seconds).
LABELS = {
    "ingest:fx_rates": "ingest the day's `fx_rates` file",
    "ingest:invoices": "ingest the day's `invoices` file",
    "ingest:payments": "ingest the day's `payments` file",
    "summarize_ingest": "summarize the ingest",
    "aging": "aging snapshot",
    "classes": "customer classes",
    "provisions": "provisions (roll rates, matrices, ECL)",
    "scores": "credit scores (last month's model)",
    "warnings": "risk warnings",
    "digest": "risk digest (to the outbox)",
    "plan_reminders": "plan reminders (not sent)",
    "propose_cases": "propose legal cases (no review)",
}
YARDSTICKS = {
    "aging": ("aging", "hand-written aging over `read_csv`"),
    "classes": ("classes", "aging + worst class + 10 % rule"),
    "provisions": ("ecl:{engine}", "aging × the stored provision matrix, per currency"),
    "scores": ("features", "two of the twelve features, every customer"),
}


def _s(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}"


def _mb(value: float | None, at_most: float | None = None) -> str:
    if not value and at_most:
        return f"≤ {at_most / MB:,.0f}"
    return "–" if not value else f"{value / MB:,.0f}"


def _ingest_seconds(measured: dict) -> float | None:
    steps = measured.get("steps") or {}
    parts = [steps.get(k, {}).get("seconds") for k in steps if k.startswith("ingest:")]
    return sum(parts) if parts and None not in parts else None


def _total(measured: dict, field: str = "seconds") -> float | None:
    steps = measured.get("steps") or {}
    if "error" in measured or not steps:
        return None
    return sum(s[field] for s in steps.values())


def _copy_seconds(size: dict, field: str) -> float | None:
    files = ((size.get("copy") or {}).get("files")) or {}
    return sum(f[field] for f in files.values()) if files else None


def targets(results: dict) -> list[dict]:
    """The issue's targets for the sizes and engines that ran: the chain's total (PostgreSQL
    warm; SQLite beside it for comparison) and the day's ingest against the shaped ``COPY``."""
    from tests.benchmarks.chain import INGEST_VS_SHAPED_COPY, TARGET_SECONDS

    rows = []
    for label, size in results["sizes"].items():
        limit = TARGET_SECONDS.get(label)
        for engine, measured in size["engines"].items():
            total = _total(measured)
            if limit and total is not None:
                process = _total(measured, "process_seconds")
                cpu = _total(measured, "cpu_seconds") if "cpu_seconds" in str(measured) else None
                suffix = "" if engine == "postgresql" else " (SQLite: for comparison)"
                rows.append(
                    {
                        "name": f"whole daily chain within {limit / 60:g} min: the steps" + suffix,
                        "where": f"{label} {ENGINE_NAMES[engine]}",
                        "value": total,
                        "measured": f"{total:.1f} s"
                        + ("" if cpu is None else f" (the task processes' own CPU {cpu:.1f} s)"),
                        "limit": f"≤ {limit:g} s",
                        "result": "MET" if total <= limit else "NOT MET",
                    }
                )
                rows.append(
                    {
                        "name": f"… counting each task process from start to exit (interpreter, "
                        f"imports){suffix}",
                        "where": f"{label} {ENGINE_NAMES[engine]}",
                        "value": process,
                        "measured": f"{process:.1f} s",
                        "limit": f"≤ {limit:g} s",
                        "result": "MET" if process <= limit else "NOT MET",
                    }
                )
            ingest = _ingest_seconds(measured)
            copy = _copy_seconds(size, "with_history")
            if ingest is not None and copy:
                ratio = ingest / copy
                rows.append(
                    {
                        "name": "the day's ingest within 2 × PostgreSQL COPY into warehouse-"
                        "shaped tables (indexes included)",
                        "where": f"{label} {ENGINE_NAMES[engine]}",
                        "value": ratio,
                        "measured": f"{ratio:,.0f}× ({ingest:.2f} s vs COPY {copy:.3f} s)",
                        "limit": f"≤ {INGEST_VS_SHAPED_COPY:g}×",
                        "result": "MET" if ratio <= INGEST_VS_SHAPED_COPY else "NOT MET",
                    }
                )
    return rows


def _size_table(label: str, size: dict) -> list[str]:
    engines = list(size["engines"])
    duck = size.get("duckdb") or {}
    header = ["DAG · task", "step"]
    for e in engines:
        name = ENGINE_NAMES[e]
        header += [f"{name} s (its CPU s)", f"{name} process s", f"{name} peak MB"]
    header += ["DuckDB yardstick s", "DuckDB: what"]
    from tests.benchmarks.chain import STEPS

    rows = []
    for key, dag, task, _function in STEPS:
        row = [f"`{dag}` · `{task}`", LABELS[key]]
        for e in engines:
            step = (size["engines"][e].get("steps") or {}).get(key) or {}
            cpu = step.get("cpu_seconds")
            row += [
                _s(step.get("seconds")) + ("" if cpu is None else f" ({cpu:.2f})"),
                _s(step.get("process_seconds")),
                _mb(step.get("peak_rss"), step.get("peak_rss_at_most")),
            ]
        yard, what = YARDSTICKS.get(key, (None, "–"))
        seconds = []
        for e in engines if yard and "{engine}" in yard else [None]:
            runs = (duck.get("seconds") or {}).get(yard.format(engine=e) if yard else "", [])
            if runs:
                seconds.append(runs[-1])
        if key.startswith("ingest:"):
            kind = key.split(":")[1]
            copy = ((size.get("copy") or {}).get("files") or {}).get(kind)
            if copy:
                seconds, what = [copy["with_history"]], "PostgreSQL COPY into the shaped table"
        row += [" / ".join(f"{s:.3f}" if s < 0.1 else f"{s:.2f}" for s in seconds) or "–", what]
        rows.append(row)
    total = ["**all steps**", ""]
    for e in engines:
        measured = size["engines"][e]
        steps = (measured.get("steps") or {}).values()
        peak = max((s.get("peak_rss") or 0 for s in steps), default=0)
        total += [
            f"**{_s(_total(measured))}**",
            f"**{_s(_total(measured, 'process_seconds'))}**",
            f"**{_mb(peak)}**",
        ]
    total += ["", ""]
    rows.append(total)
    return _table(header, rows, "ll" + "rrr" * len(engines) + "rl")


def _day_counts(size: dict) -> str:
    counts = size["counts"]
    day = counts["day"]
    history = counts["history"]
    return (
        f"History to the day before: {history['invoices']:,} invoices, {history['payments']:,} "
        f"payments, {history['customers']:,} customers, {history['collectors']:,} collectors, "
        f"{history['fx_rates']:,} exchange rates. The day's inbox: {day['invoices']:,} invoices, "
        f"{day['payments']:,} payments, {day['fx_rates']:,} exchange rates "
        f"({sum(day.values()):,} rows in three files)."
    )


def _loads(size: dict) -> str:
    parts = []
    for engine, measured in size["engines"].items():
        loads = [
            s["load_average"][0]
            for s in (measured.get("steps") or {}).values()
            if s.get("load_average")
        ]
        if loads:
            parts.append(f"{ENGINE_NAMES[engine]} {min(loads):.2f}–{max(loads):.2f}")
    if not parts:
        return ""
    return (
        "Load average (1 min) after each step of the day: " + ", ".join(parts) + " (2 cores: "
        "above 2, other work was queuing for the CPU beside the benchmark)."
    )


def _outcomes(label: str, size: dict) -> list[str]:
    lines = []
    for engine, measured in size["engines"].items():
        steps = measured.get("steps") or {}
        if "error" in measured:
            lines.append(f"- {ENGINE_NAMES[engine]}: **failed**: {measured['error']}")
            continue
        s = {k: v.get("summary") or {} for k, v in steps.items()}
        plan, legal = s.get("plan_reminders", {}), s.get("propose_cases", {})
        warnings = s.get("warnings", {})
        scores = s.get("scores", {})
        prepared = measured.get("prepared") or {}
        prep_total = sum((prepared.get("seconds") or {}).values())
        lines.append(
            f"- {ENGINE_NAMES[engine]}: {scores.get('customers', '?')} customers scored "
            f"(model `{scores.get('model_id', '?')}`); {warnings.get('warnings', '?')} warnings; "
            f"reminders planned {plan.get('planned', '?')} ({plan.get('pending', '?')} pending, "
            f"{plan.get('refused', '?')} refused by a contact rule); legal: "
            f"{legal.get('considered', '?')} customers considered, "
            f"{legal.get('proposed', '?')} cases proposed ({legal.get('auto_approved', '?')} "
            f"approved by the rule). Warm warehouse prepared in {prep_total:,.0f} s (not timed "
            f"as the chain), copied for the run in {measured.get('copy_seconds', 0):.1f} s; "
            f"{(measured.get('outputs') or {}).get('db_bytes', 0) / MB:,.0f} MB after the day."
        )
    return lines


def _yardstick_checks(size: dict) -> list[str]:
    duck = size.get("duckdb") or {}
    matches = duck.get("matches") or {}
    if "error" in duck:
        return [f"DuckDB yardsticks failed: {duck['error']}", ""]
    if not matches:
        return []
    parts = []
    for engine, m in matches.items():
        same = ", ".join(f"{k} {'same' if ok else '**differ**'}" for k, ok in m.items())
        parts.append(f"{ENGINE_NAMES[engine]}: {same}")
    return [
        f"DuckDB {duck.get('version')} ({duck.get('threads')} threads), from the generated CSV "
        f"files, each statement's last of two runs (ECL: one per engine's matrix); peak RSS "
        f"{_mb(duck.get('peak_rss'))} MB. Checked against what each warehouse stored for the "
        f"day — {'; '.join(parts)}.",
        "",
    ]


def _slowest(size: dict) -> list[str]:
    lines = []
    for engine, measured in size["engines"].items():
        steps = measured.get("steps") or {}
        ranked = sorted(
            ((k, v) for k, v in steps.items() if "seconds" in v), key=lambda kv: -kv[1]["seconds"]
        )[:4]
        for key, step in ranked:
            statements = step.get("statements") or []
            top = "; ".join(
                f"{st['seconds']:.2f} s ({st['calls']}×) `{st['statement'][:110]}`"
                for st in statements[:2]
            )
            lines.append(
                f"- {ENGINE_NAMES[engine]} · {LABELS[key]} ({step['seconds']:.2f} s): "
                + (top or "no SQL statement seen by the timer")
            )
    return lines


def render(results: dict) -> str:
    """The Markdown report of a run."""
    from tests.benchmarks.chain import DAY, MODEL_DATE, REMINDER_DAYS

    load = results.get("load_average") or {}
    start = load.get("start") or [0, 0, 0]
    end = load.get("end") or start
    busy = start[0] > 1
    lines = [
        "# The whole daily chain",
        "",
        f"Last run {results['date']} with `{results['command']}` "
        f"({results.get('duration_seconds', 0) / 60:.0f} min in all, warm warehouses prepared "
        "included; each size below says when and by which command it was measured). Regenerate "
        "with `python -m tests.benchmarks.chain` (`make bench`). Code measured: commit "
        f"`{results['code']['commit']}`, as copied at the start (fingerprint "
        f"`{results['code']['fingerprint']}`).",
        "",
        f"Load average (1, 5, 15 min) at the start {', '.join(f'{v:.2f}' for v in start)}, at "
        f"the end {', '.join(f'{v:.2f}' for v in end)}."
        + (
            " **The machine was busy with other work at the start (load above 1 on 2 cores): "
            "the figures are slower than on an idle machine.**"
            if busy
            else ""
        ),
        "",
        "## Targets",
        "",
    ]
    rows = [
        [t["name"], t["where"], t["measured"], t["limit"], f"**{t['result']}**"]
        for t in results.get("targets", [])
    ]
    lines += _table(["target", "where", "measured", "limit", "result"], rows, "lllll")
    lines += [
        "## What is measured",
        "",
        f"The day {DAY} of the generated ledgers of `tests.benchmarks.run` (same seed), on a warm "
        "warehouse: the ledger up to the day before ingested, the month-end aging snapshots and "
        f"roll matrices built, the scorecard trained on {MODEL_DATE} (`credit_model`), the "
        "previous day's risk steps done, and the reminders planned on "
        f"{', '.join(str(d) for d in REMINDER_DAYS)} marked sent (the sender's work is not part "
        "of the chain); no legal selection ran before the day, so the day proposes every case "
        "those final notices allow. On PostgreSQL the warm database was `VACUUM (ANALYZE)`d once "
        "prepared (the benchmark server runs with autovacuum off; a production server's "
        "autovacuum does this by the morning). The warm warehouse is prepared once (not timed) "
        "and kept; each run measures a fresh copy of it.",
        "",
        "Each task runs in a fresh child process, as Airflow runs a task, and calls the "
        "`receivables.jobs` function its DAG task calls (through `receivables.airflow.runtime`), "
        "in the DAGs' order: *s* is that call (what the task imports — Great Expectations, "
        "scikit-learn — imported before it), with the CPU time the child itself spent in it "
        "(the database server's is not counted); *process s* is the child from start to exit "
        "(interpreter, imports, the call); peak MB is the child's peak RSS. The `list_*_files` "
        "tasks, the send, the reviews and Airflow's own scheduling are not included.",
        "",
        "Yardsticks: the day's ingest against PostgreSQL's `COPY` of the same three files into "
        "tables shaped like the warehouse's (`CREATE TABLE … (LIKE … INCLUDING ALL)`: types, "
        "CHECKs, primary key, indexes) already holding the history, as the warehouse's tables "
        "do (`COPY` into empty shaped tables in the table below); the risk steps against DuckDB "
        "computing the same figures from the CSV files (it reads the files, not a warehouse, "
        "and writes nothing).",
        "",
    ]
    for label, size in results["sizes"].items():
        lines += [f"## {label}", "", _day_counts(size), ""]
        size_load = size.get("load_average") or {}
        if size.get("date"):
            first = (size_load.get("start") or [0])[0]
            lines += [
                f"Measured {size['date']} by `{size['command']}` (code "
                f"`{size['code']['fingerprint']}`); load average (1 min) {first:.2f} when this "
                f"size started, {(size_load.get('end') or [0])[0]:.2f} when it ended"
                + (" — **others were using the machine**." if first > 1 else "."),
                "",
            ]
        lines += _size_table(label, size)
        for engine, measured in size["engines"].items():
            if measured.get("peak_note"):
                lines += [f"{ENGINE_NAMES[engine]}: {measured['peak_note']}", ""]
        if _loads(size):
            lines += [_loads(size), ""]
        copy = (size.get("copy") or {}).get("files")
        if copy:
            lines += [
                "PostgreSQL `COPY` of the day's files (seconds): "
                + "; ".join(
                    f"{kind} {c['rows']:,} rows — empty shaped table {c['empty_table']:.3f}, "
                    f"holding {c['history_rows']:,} rows {c['with_history']:.3f}"
                    for kind, c in copy.items()
                )
                + ".",
                "",
            ]
        lines += _yardstick_checks(size)
        lines += ["What the day did:", "", *_outcomes(label, size), ""]
        lines += ["Slowest steps and their slowest SQL statements:", "", *_slowest(size), ""]
    if results.get("problems"):
        lines += ["## Problems", "", *[f"- {p}" for p in results["problems"]], ""]
    if DIAGNOSIS.exists():
        lines += ["## Diagnosis", "", DIAGNOSIS.read_text().strip(), ""]
    lines += ["## Machine", "", *_machine(results)]
    return "\n".join(lines).rstrip() + "\n"
