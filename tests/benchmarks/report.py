"""Machine description, targets and the Markdown report of a benchmark run."""

from __future__ import annotations

import os
import platform
import sqlite3
from importlib import metadata

import psutil

from tests.benchmarks.common import KINDS, PG_ADMIN_URL, libpq_url

MB = 1_000_000
#: The issue's targets.
INGEST_VS_COPY = 6.0
AGING_VS_HANDWRITTEN = 1.5
PEAK_RSS_LIMIT = 3_000_000_000  # "under 3 GB", decimal gigabytes: the stricter reading
ENGINE_NAMES = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}
PG_SETTINGS = (
    "shared_buffers",
    "work_mem",
    "maintenance_work_mem",
    "max_wal_size",
    "synchronous_commit",
    "autovacuum",
    "max_parallel_workers_per_gather",
)


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine_info(has_pg: bool) -> dict:
    """What the figures were measured on."""
    info = {
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "ram_bytes": psutil.virtual_memory().total,
        "os": platform.platform(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "versions": {
            dist: _version(dist)
            for dist in (
                "apache-airflow",
                "pandas",
                "pyarrow",
                "SQLAlchemy",
                "great-expectations",
                "duckdb",
                "psycopg",
                "numpy",
            )
        },
    }
    if has_pg:
        import psycopg

        with psycopg.connect(libpq_url(PG_ADMIN_URL)) as conn:
            info["postgresql"] = conn.execute("SHOW server_version").fetchone()[0]
            info["postgresql_settings"] = {
                name: conn.execute(f"SHOW {name}").fetchone()[0] for name in PG_SETTINGS
            }
    return info


# --- targets ---------------------------------------------------------------------------------


def _verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def targets(results: dict) -> list[dict]:
    """The issue's targets, for the sizes and engines that were run."""
    rows = []
    sizes = results["sizes"]
    copy = (sizes.get("1m") or {}).get("copy") or {}
    copy_seconds = (copy.get("files") or {}).get("invoices", {}).get("seconds")
    for engine, measured in (sizes.get("1m") or {}).get("engines", {}).items():
        invoices = (measured.get("files") or {}).get("invoices")
        if not invoices or not copy_seconds:
            continue
        ratio = invoices["wall"] / copy_seconds
        rows.append(
            {
                "name": "ingest of 1M invoices ≤ 6 × PostgreSQL COPY",
                "where": f"1m {engine}",
                "ratio": ratio,
                "measured": f"{ratio:.1f}× ({invoices['wall']:.2f} s vs COPY {copy_seconds:.2f} s)",
                "limit": f"≤ {INGEST_VS_COPY:g}×",
                "result": _verdict(ratio <= INGEST_VS_COPY),
            }
        )
    for label, size in sizes.items():
        for engine, measured in size.get("engines", {}).items():
            if "aging" not in measured:
                continue
            aging = measured["aging"][-1]["wall"]
            handwritten = measured["handwritten"]["seconds"][-1]
            ratio = aging / handwritten
            rows.append(
                {
                    "name": "aging ≤ 1.5 × hand-written statement (warm runs)",
                    "where": f"{label} {engine}",
                    "ratio": ratio,
                    "measured": f"{ratio:.2f}× ({aging:.2f} s vs {handwritten:.2f} s)",
                    "limit": f"≤ {AGING_VS_HANDWRITTEN:g}×",
                    "result": _verdict(ratio <= AGING_VS_HANDWRITTEN),
                }
            )
    for engine, measured in (sizes.get("5m") or {}).get("engines", {}).items():
        if "ru_maxrss" not in measured:
            continue
        peak = max(measured["peak_rss_ingest_aging"], measured["ru_maxrss"])
        rows.append(
            {
                "name": "peak memory, 5M invoices, ingest + aging < 3 GB",
                "where": f"5m {engine}",
                "value": peak,
                "measured": f"{peak / MB:,.0f} MB",
                "limit": "< 3,000 MB",
                "result": _verdict(peak < PEAK_RSS_LIMIT),
            }
        )
    return rows


# --- Markdown --------------------------------------------------------------------------------


def _mb(value: float | None) -> str:
    return "–" if not value else f"{value / MB:,.0f}"


def _rate(rows: int, seconds: float) -> str:
    return "–" if seconds <= 0 else f"{rows / seconds:,.0f}"


def _s(seconds: float) -> str:
    return f"{seconds:.2f}"


def _table(header: list[str], rows: list[list[str]], align: str | None = None) -> list[str]:
    align = align or "l" + "r" * (len(header) - 1)
    marks = ["---:" if a == "r" else "---" for a in align]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(marks) + " |"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return [*lines, ""]


def _machine(results: dict) -> list[str]:
    m = results["machine"]
    v = m["versions"]
    pg = m.get("postgresql", "not reachable")
    settings = ", ".join(f"{k}={val}" for k, val in (m.get("postgresql_settings") or {}).items())
    rows = [
        ["CPU", f"{m['cpu']} ({m['cpu_count']} logical CPUs)"],
        ["RAM", f"{m['ram_bytes'] / 2**30:.1f} GiB"],
        ["OS", m["os"]],
        ["Python", m["python"]],
        ["Airflow", v["apache-airflow"]],
        ["pandas / pyarrow / numpy", f"{v['pandas']} / {v['pyarrow']} / {v['numpy']}"],
        ["SQLAlchemy / psycopg", f"{v['SQLAlchemy']} / {v['psycopg']}"],
        ["Great Expectations", v["great-expectations"]],
        ["DuckDB", v["duckdb"]],
        ["SQLite", m["sqlite"]],
        ["PostgreSQL", f"{pg} (local, {settings})" if settings else pg],
    ]
    return _table(["", ""], rows, "ll")


def _targets(results: dict) -> list[str]:
    rows = [
        [t["name"], t["where"], t["measured"], t["limit"], f"**{t['result']}**"]
        for t in results.get("targets", [])
    ]
    return _table(["target", "where", "measured", "limit", "result"], rows, "lllll")


def _yardsticks(results: dict) -> list[str]:
    lines = ["### PostgreSQL COPY of the same files", ""]
    rows = []
    for label, size in results["sizes"].items():
        copy = size.get("copy") or {}
        if "files" not in copy:
            continue
        variants = {
            "invoices": {
                "invoices_typed": "invoices (typed: date, numeric, boolean)",
                "invoices_shaped_no_index": "invoices (warehouse shape: types and CHECKs of the "
                "warehouse's `invoices`, no index)",
                "invoices_shaped": "invoices (warehouse shape with its indexes: primary key, "
                "customer_id)",
            },
            "payments": {
                "payments_shaped": "payments (warehouse shape with its indexes: primary key, "
                "(invoice_id, paid_date))",
            },
        }
        for kind in KINDS:
            entries = [(f"{kind} (text)", copy["files"][kind])]
            entries += [
                (name, copy[key]) for key, name in variants.get(kind, {}).items() if key in copy
            ]
            for name, f in entries:
                rows.append(
                    [
                        label,
                        name,
                        f"{f['rows']:,}",
                        _s(f["seconds"]),
                        _rate(f["rows"], f["seconds"]),
                        f"{f['bytes'] / f['seconds'] / MB:,.0f}",
                    ]
                )
    lines += _table(["size", "file", "rows", "seconds", "rows/s", "MB/s"], rows, "llrrrr")

    lines += [
        "### Ingest of the invoices file vs COPY (all sizes)",
        "",
        "The target compares with the plain COPY (text columns, no index). The COPY into a table "
        "shaped like the warehouse's `invoices` (with its indexes) shows what writing the same "
        "rows with the warehouse's types, CHECKs and two B-tree indexes costs by itself.",
        "",
    ]
    rows = []
    for label, size in results["sizes"].items():
        copy = size.get("copy") or {}
        text = (copy.get("files") or {}).get("invoices")
        shaped = copy.get("invoices_shaped")
        for engine, measured in size.get("engines", {}).items():
            inv = (measured.get("files") or {}).get("invoices")
            if not inv or not text:
                continue
            rows.append(
                [
                    label,
                    ENGINE_NAMES[engine],
                    _s(inv["wall"]),
                    _s(text["seconds"]),
                    f"{inv['wall'] / text['seconds']:.1f}×",
                    _s(shaped["seconds"]) if shaped else "–",
                    f"{inv['wall'] / shaped['seconds']:.1f}×" if shaped else "–",
                ]
            )
    lines += _table(
        [
            "size",
            "engine",
            "ingest() of invoices, s",
            "COPY (text), s",
            "ratio",
            "COPY (warehouse shape), s",
            "ratio",
        ],
        rows,
        "llrrrrr",
    )

    lines += ["### Aging: the package vs one hand-written statement vs DuckDB", ""]
    rows = []
    for label, size in results["sizes"].items():
        for engine, measured in size.get("engines", {}).items():
            if "aging" not in measured:
                continue
            a, h = measured["aging"], measured["handwritten"]
            rows.append(
                [
                    label,
                    ENGINE_NAMES[engine],
                    f"{a[0]['invoices']:,}",
                    f"{a[0]['open_invoices']:,}",
                    f"{_s(a[0]['wall'])} / {_s(a[1]['wall'])}",
                    f"{_s(h['seconds'][0])} / {_s(h['seconds'][1])}",
                    f"{a[1]['wall'] / h['seconds'][1]:.2f}×",
                    "yes",
                ]
            )
        duck = size.get("duckdb") or {}
        if "seconds" in duck:
            matches = duck.get("matches") or {}
            rows.append(
                [
                    label,
                    f"DuckDB {duck['version']} from the CSV files ({duck['threads']} threads)",
                    f"{size['counts']['invoices']:,}",
                    f"{duck['rows']:,}",
                    "–",
                    f"{_s(duck['seconds'][0])} / {_s(duck['seconds'][1])}",
                    "–",
                    ("yes" if matches and all(matches.values()) else "NO") if matches else "–",
                ]
            )
    lines += _table(
        [
            "size",
            "engine",
            "invoices",
            "open invoices",
            "package, s (run 1 / 2)",
            "hand-written, s (run 1 / 2)",
            "ratio (run 2)",
            "same snapshot",
        ],
        rows,
        "llrrrrrl",
    )
    return lines


def _engine_section(label: str, size: dict, engine: str, measured: dict) -> list[str]:
    lines = [f"### {label} · {ENGINE_NAMES[engine]}", ""]
    if "error" in measured:
        return [*lines, f"**Failed:** {measured['error']}", ""]
    lines += [
        f"RSS after the warm-up (GX imported) {_mb(measured['baseline_rss'])} MB; peak RSS over "
        f"ingest + aging {_mb(measured['peak_rss_ingest_aging'])} MB; child `ru_maxrss` "
        f"{_mb(measured['ru_maxrss'])} MB; warehouse size afterwards {_mb(measured['db_bytes'])} "
        "MB.",
        "",
    ]
    rows = []
    for kind in KINDS:
        f = measured["files"][kind]
        s, st, peak = f["seconds"], f["stages"], f["peak_rss"]
        detail = {
            "read": "read",
            "validate": f"validate (check {s.get('check', 0):.2f} + set_checks "
            f"{s.get('set_checks', 0):.2f} + gx {s.get('gx', 0):.2f})",
            "load": f"load (stage {s.get('stage', 0):.2f} + merge {s.get('merge', 0):.2f})",
            "other": "other (checksum, bookkeeping, archive)",
        }
        for i, group in enumerate(("read", "validate", "load", "other")):
            name = f"{kind} ({f['rows']:,} rows)" if i == 0 else ""
            rows.append(
                [name, detail[group], _s(st[group]), _rate(f["rows"], st[group]), _mb(peak[group])]
            )
        rows.append(
            [
                "",
                "**ingest() total**",
                f"**{_s(f['wall'])}**",
                f"**{_rate(f['rows'], f['wall'])}**",
                f"**{_mb(peak['all'])}**",
            ]
        )
    for run, a in enumerate(measured["aging"], 1):
        rows.append(
            [
                "aging" if run == 1 else "",
                f"compute_snapshot run {run} (transaction {a['transaction']:.2f} + summary queries "
                f"{a['summarise']:.2f})",
                _s(a["wall"]),
                _rate(a["invoices"], a["wall"]),
                _mb(a["peak_rss"]),
            ]
        )
    for run, seconds in enumerate(measured["handwritten"]["seconds"], 1):
        rows.append(
            [
                "hand-written aging" if run == 1 else "",
                f"one CREATE TABLE … AS SELECT, run {run}",
                _s(seconds),
                _rate(measured["aging"][0]["invoices"], seconds),
                _mb(measured["peaks_by_label"].get(f"handwritten:{run}")),
            ]
        )
    lines += _table(["file", "stage", "seconds", "rows/s", "peak RSS, MB"], rows, "llrrr")

    lines += ["Slowest SQL statements (time in the DBAPI call, per stage):", ""]
    rows = [
        [
            f"`{r['label']}`",
            str(r["calls"]),
            _s(r["seconds"]),
            "`" + r["statement"].replace("|", "\\|") + "`",
        ]
        for r in measured["statements"][:10]
    ]
    lines += _table(["stage", "calls", "seconds", "statement"], rows, "lrrl")
    lines += ["Slowest timed package functions:", ""]
    rows = [
        [f"`{r['label']}`", f"`{r['function']}`", str(r["calls"]), _s(r["seconds"])]
        for r in measured["functions"][:10]
    ]
    lines += _table(["stage", "function", "calls", "seconds"], rows, "llrr")
    return lines


# --- risk stages ---------------------------------------------------------------------------

#: step key → short name in the tables (the order of tests.benchmarks.risk.STEPS)
RISK_STEPS = {
    "classify": "customer classes",
    "provisions:1": "provisions, first run (+ month-end snapshots)",
    "provisions:2": "provisions, warm",
    "score:rules": "scores, rules scorecard",
    "score:previous": "scores of the previous day",
    "warnings:1": "warnings, first run (+ previous day's aging)",
    "warnings:2": "warnings, warm",
    "train": "monthly training",
    "score:trained": "scores, trained scorecard",
    "warnings:3": "warnings, day of a model change",
}
RISK_ROWS = {
    "classify": "open invoices",
    "provisions": "open invoices",
    "score": "customers",
    "train": "training rows",
    "warnings": "customer × currency",
}
#: how each warehouse rounds to the cent (see yardsticks.duckdb_risk): both exactly, half-up
ECL_VARIANT = {"postgresql": "ecl_decimal_cents", "sqlite": "ecl_decimal_cents"}


def _risk_runs(results: dict) -> list[tuple[str, str, dict]]:
    """(size, engine, risk result) of every risk run that has figures."""
    return [
        (label, engine, risk)
        for label, size in results["sizes"].items()
        for engine, risk in (size.get("risk") or {}).items()
        if "steps" in risk
    ]


def _cell(step: dict | None) -> str:
    if not step:
        return "–"
    return f"{_s(step['wall'])} s · {_mb(step['peak_rss'])} MB"


def _money(cents: int | None) -> str:
    return "–" if cents is None else f"{cents / 100:,.2f}"


def _yes(value: bool | None) -> str:
    return "–" if value is None else ("yes" if value else "**NO**")


def _time_goes(risk: dict, key: str, limit: int = 6) -> str:
    """The slowest timed functions of one step, in words."""
    rows = [r for r in risk.get("functions", []) if r["label"] == f"risk:{key}"][:limit]
    return "; ".join(
        f"`{r['function']}` {r['calls']}× {_s(r['seconds'])} s"
        for r in rows
        if r["seconds"] >= 0.01
    )


def _risk_overview(results: dict) -> list[str]:
    runs = _risk_runs(results)
    header = ["step"] + [f"{label} {ENGINE_NAMES[engine]}" for label, engine, _ in runs]
    rows = [
        [name] + [_cell(risk["steps"].get(key)) for _, _, risk in runs]
        for key, name in RISK_STEPS.items()
    ]
    rows.append(
        ["**all steps**"]
        + [
            f"**{_s(sum(st['wall'] for st in risk['steps'].values()))} s · "
            f"{_mb(max(st['peak_rss'] for st in risk['steps'].values()))} MB**"
            for _, _, risk in runs
        ]
    )
    return _table(header, rows)


def _risk_yardsticks(results: dict) -> list[str]:
    rows = []
    for label, size in results["sizes"].items():
        duck = size.get("duckdb_risk") or {}
        risks = {e: r for e, r in (size.get("risk") or {}).items() if "steps" in r}
        if "seconds" not in duck:
            continue
        matches = duck.get("matches") or {}

        def package(key, risks=risks):
            return " / ".join(
                f"{_s(r['steps'][key]['wall'])} ({ENGINE_NAMES[e]})" for e, r in risks.items()
            )

        def matched(what, matches=matches):
            return " / ".join(
                f"{_yes(m.get(what))} ({ENGINE_NAMES[e]})" for e, m in matches.items()
            )

        peaks = duck.get("peaks", {})
        rows.append(
            [
                label,
                "customer classes (aging + worst class + 10 % rule)",
                " / ".join(_s(x) for x in duck["seconds"]["classes"]),
                _mb(peaks.get("classes")),
                package("classify") + " (from the stored snapshot)",
                matched("classes"),
            ]
        )
        ecl = [k for k in duck["seconds"] if k.startswith("ecl:")]
        rows.append(
            [
                label,
                "ECL per currency (aging × the stored provision matrix)",
                " / ".join(_s(duck["seconds"][k][0]) for k in ecl)
                + f" ({', '.join(ENGINE_NAMES[k.split(':')[1]] + ' matrix' for k in ecl)})",
                _mb(max((peaks.get(k) or 0 for k in ecl), default=0)),
                package("provisions:2") + " (warm: roll rates, matrices, ECL)",
                matched("ecl"),
            ]
        )
        rows.append(
            [
                label,
                "features `worst_dpd_12m`, `avg_dpd_12m` of every customer",
                " / ".join(_s(x) for x in duck["seconds"]["features"]),
                _mb(peaks.get("features")),
                package("score:rules") + " (ledger load, all 12 features, scoring)",
                matched("features"),
            ]
        )
    if not rows:
        return []
    version = next(
        (
            s["duckdb_risk"]
            for s in results["sizes"].values()
            if "version" in (s.get("duckdb_risk") or {})
        ),
        {},
    )
    return [
        f"DuckDB {version.get('version', '?')} ({version.get('threads', '?')} threads), each query "
        "straight from the CSV files (runs 1 / 2); the package's step for orientation (it reads "
        "the warehouse, not the files, and does more):",
        "",
        *_table(
            [
                "size",
                "yardstick",
                "DuckDB, s",
                "DuckDB peak RSS, MB",
                "package step, s",
                "same result",
            ],
            rows,
            "llrrll",
        ),
    ]


def _risk_checks(results: dict) -> list[str]:
    lines = []
    for label, size in results["sizes"].items():
        duck = size.get("duckdb_risk") or {}
        risks = {e: r for e, r in (size.get("risk") or {}).items() if "classes" in r}
        if "classes" not in duck or not risks:
            continue
        lines += [f"#### {label}", ""]
        names = list(duck["classes"]["by_class"])
        for r in risks.values():
            names += [n for n in r["classes"]["by_class"] if n not in names]
        order = ["normal", "special_mention", "substandard", "doubtful", "loss"]
        names.sort(key=lambda n: order.index(n) if n in order else len(order))

        def pair(entry):
            return f"{entry['customers']:,} / {entry['rule_applied']:,}" if entry else "–"

        rows = [
            [n]
            + [pair(r["classes"]["by_class"].get(n)) for r in risks.values()]
            + [pair(duck["classes"]["by_class"].get(n))]
            for n in names
        ]
        lines += [
            "Customer classes: customer × currency rows per class / of them with the 10 % rule "
            "applied.",
            "",
            *_table(
                ["class"] + [f"package, {ENGINE_NAMES[e]}" for e in risks] + ["DuckDB"],
                rows,
                "l" + "r" * (len(risks) + 1),
            ),
        ]
        rows = []
        for engine, r in risks.items():
            theirs = (duck.get("ecl") or {}).get(engine, {})
            other = "ecl_double_cents"  # what binary floating point would have given
            for currency, mine in r["ecl"].items():
                d = theirs.get(currency, {})
                rows.append(
                    [
                        ENGINE_NAMES[engine],
                        currency,
                        f"{mine['invoices']:,}",
                        _money(mine["outstanding_cents"]),
                        _money(mine["ecl_cents"]),
                        _money(d.get(ECL_VARIANT[engine])),
                        _yes(d.get(ECL_VARIANT[engine]) == mine["ecl_cents"]),
                        f"{(d.get(other, 0) - mine['ecl_cents']) / 100:+,.2f}" if d else "–",
                    ]
                )
        lines += [
            "ECL per currency: the package's `invoice_risk` total vs DuckDB's aging × the "
            "provision matrix that warehouse stored, each invoice rounded half-up to the cent "
            "exactly, as both warehouses do (exact 8-place rates); the last column is what "
            "binary floating point (cents × a `DOUBLE` rate) would change.",
            "",
            *_table(
                [
                    "warehouse",
                    "currency",
                    "open invoices",
                    "outstanding",
                    "package ECL",
                    "DuckDB ECL",
                    "same to the cent",
                    "other rounding, Δ",
                ],
                rows,
                "llrrrrlr",
            ),
        ]
        rows = []
        for engine, compared in ((duck.get("features") or {}).get("compared") or {}).items():
            rows.append(
                [
                    ENGINE_NAMES[engine],
                    f"{compared['customers']:,}",
                    f"{compared['only_package']:,}",
                    f"{compared['only_duckdb']:,}",
                    f"{compared['worst_dpd_12m_differs']:,}",
                    f"{compared['avg_dpd_12m_differs']:,}",
                    "; ".join(" ".join(e) for e in compared["examples"]) or "–",
                ]
            )
        lines += [
            "Features as of the as-of date, every customer compared (the package's are those "
            "`score_customers` computed):",
            "",
            *_table(
                [
                    "warehouse",
                    "customers",
                    "only in the package",
                    "only in DuckDB",
                    "`worst_dpd_12m` differs",
                    "`avg_dpd_12m` differs (> 1e-9)",
                    "examples",
                ],
                rows,
                "lrrrrrl",
            ),
        ]
    return lines


def _risk_training(results: dict) -> list[str]:
    rows = []
    for label, engine, risk in _risk_runs(results):
        step = risk["steps"].get("train") or {}
        summary = step.get("summary") or {}
        trained = [m for m in risk.get("models", []) if m["kind"] != "rules"]
        model = trained[-1] if trained else {}
        rows.append(
            [
                label,
                ENGINE_NAMES[engine],
                str(len(summary.get("months", []))),
                f"{model.get('train_rows') or 0:,} / {model.get('holdout_rows') or 0:,}",
                "–" if model.get("auc") is None else f"{model['auc']:.4f}",
                "–" if model.get("ks") is None else f"{model['ks']:.4f}",
                "–" if model.get("gini") is None else f"{model['gini']:.4f}",
                "–" if model.get("psi") is None else f"{model['psi']:.4f}",
                f"{summary.get('status', '?')}: {summary.get('reason', '')}",
                _s(step["wall"]) if step else "–",
            ]
        )
    return _table(
        [
            "size",
            "engine",
            "month-ends",
            "rows train / held out",
            "AUC",
            "KS",
            "Gini",
            "PSI",
            "decision",
            "seconds",
        ],
        rows,
        "llrrrrrrlr",
    )


def _risk_warnings(results: dict) -> list[str]:
    rows = []
    for label, engine, risk in _risk_runs(results):
        for key in ("warnings:1", "warnings:3"):
            summary = (risk["steps"].get(key) or {}).get("summary") or {}
            if not summary:
                continue
            kinds = ", ".join(f"{k} {v:,}" for k, v in sorted(summary.get("by_kind", {}).items()))
            rows.append(
                [
                    label,
                    ENGINE_NAMES[engine],
                    RISK_STEPS[key],
                    f"{summary.get('warnings', 0):,}",
                    kinds or "–",
                ]
            )
    return _table(["size", "engine", "run", "warnings", "by kind"], rows, "lllrl")


def _risk_detail(label: str, engine: str, risk: dict) -> list[str]:
    lines = [f"#### {label} · {ENGINE_NAMES[engine]} (risk)", ""]
    if "error" in risk:
        return [*lines, f"**Failed:** {risk['error']}", ""]
    snaps = risk.get("aging_snapshots", {})
    lines += [
        f"RSS of the fresh process (package imported) {_mb(risk['baseline_rss'])} MB; "
        f"{risk['open_invoices']:,} open invoices on the as-of date; afterwards "
        f"{snaps.get('rows', 0):,} aging snapshot rows over {snaps.get('dates', 0)} dates, "
        f"warehouse {_mb(risk.get('db_bytes'))} MB.",
        "",
    ]
    rows = []
    for key, name in RISK_STEPS.items():
        step = risk["steps"].get(key)
        if not step:
            continue
        count = step.get("rows")
        rows.append(
            [
                name,
                _s(step["wall"]),
                f"{count:,} {RISK_ROWS[key.split(':')[0]]}" if count else "–",
                # a first run's time is mostly the snapshots it builds: no rate of the rows
                _rate(count, step["wall"]) if count and not key.endswith(":1") else "–",
                _mb(step["peak_rss"]),
                _time_goes(risk, key) or "–",
            ]
        )
    lines += _table(
        [
            "step",
            "seconds",
            "rows",
            "rows/s",
            "peak RSS, MB",
            "where the time goes (timed functions)",
        ],
        rows,
        "lrrrrl",
    )
    lines += ["Slowest SQL statements of the risk steps (time in the DBAPI call):", ""]
    rows = [
        [
            f"`{r['label'].removeprefix('risk:')}`",
            str(r["calls"]),
            _s(r["seconds"]),
            "`" + r["statement"].replace("|", "\\|") + "`",
        ]
        for r in risk["statements"][:10]
    ]
    lines += _table(["step", "calls", "seconds", "statement"], rows, "lrrl")
    return lines


def _risk_section(results: dict) -> list[str]:
    if not any(size.get("risk") for size in results["sizes"].values()):
        return []
    lines = [
        "## Risk stages: classification, provisions, scores, warnings",
        "",
        "On the warehouse each engine's ingest and aging left (as-of date 2025-06-30), in a "
        "fresh process of its own, the steps of `receivables_risk` and the monthly "
        "`credit_model` training as `receivables.jobs` calls them (see `tests/benchmarks/risk.py`"
        "). Seconds and peak RSS of the process per step (seconds · MB):",
        "",
        *_risk_overview(results),
    ]
    problems = [
        f"{label} {ENGINE_NAMES[engine]}: {risk['error']}"
        for label, size in results["sizes"].items()
        for engine, risk in (size.get("risk") or {}).items()
        if "error" in risk
    ]
    if problems:
        lines += ["**Failed:**", "", *[f"* {p}" for p in problems], ""]
    lines += ["### DuckDB yardsticks", "", *_risk_yardsticks(results)]
    lines += ["### What was checked", "", *_risk_checks(results)]
    lines += ["### Monthly training (held-out months)", "", *_risk_training(results)]
    lines += [
        "### Warnings raised",
        "",
        "An ordinary day (today's and yesterday's scores from the same rules scorecard) and the "
        "day a new model takes over (today's scores from the scorecard just trained, yesterday's "
        "from the rules): `raise_warnings` compares grades and scores only where both days were "
        "scored by the same model, so the model change raises no grade or score warnings.",
        "",
        *_risk_warnings(results),
    ]
    lines += ["### Risk steps per size and engine", ""]
    for label, engine, risk in [
        (label, engine, risk)
        for label, size in results["sizes"].items()
        for engine, risk in (size.get("risk") or {}).items()
    ]:
        lines += _risk_detail(label, engine, risk)
    return lines


METHOD = """\
How it is measured (`tests/benchmarks/`):

* The code is copied (`include/`, `sql/`) when the run starts and every worker imports the
  package from that copy (`PYTHONPATH`), so all figures of a run come from the same code even
  while the checkout is being edited; the fingerprint above identifies it.
* Ledgers come from `receivables.sample.generate_sample(…, as_of=2025-06-30, seed=42)` (clean
  data: every row loads). Each (size, engine) runs in a fresh child process on a fresh warehouse
  (a new SQLite file; a new PostgreSQL database), migrated with Alembic first.
* Before anything is timed, the child ingests and ages a 20-customer ledger in a throw-away
  warehouse of the same engine: that imports Great Expectations (≈5 s) and is **excluded** from
  the figures. The benchmark's own GX context is still created on first use, inside the
  collectors file's `gx` time.
* Each file is copied into the inbox and ingested with `FileIngest.ingest()` (one `FileIngest`
  for the four files, as `jobs.ingest_files` does). Stages are the package's own
  `FileOutcome.seconds`: read = `read`; validate = `check + set_checks + gx`; load =
  `stage + merge`; other = the rest of the `ingest()` wall time (SHA-256 of the file, the
  already-loaded lookup, building the quarantine rows, moving the file to the archive, dropping
  the staging table). rows/s = rows of the file / seconds of that stage.
* Peak RSS: a thread samples the child's RSS every 20 ms (and at every stage boundary); the
  ingest's `Stopwatch` is subclassed at run time so each sample is attributed to the stage that
  was running. It is the client process: on SQLite that includes the database engine, on
  PostgreSQL the server's memory is not counted. `ru_maxrss` is the child's high-water mark
  (warm-up and yardsticks included). The 5M target uses the larger of the two.
* Aging: `compute_snapshot()` twice (run 2 is warm); "transaction" is its own `seconds` (DELETE +
  INSERT … SELECT + count + `aging_runs`), "summary queries" is `summarise()`. The hand-written
  statement is one `CREATE TABLE aging_yardstick AS SELECT …` written from docs/contract.md §5,
  run twice on the same tables right after; the benchmark asserts it yields the same rows, the
  same total outstanding and the same (bucket, risk class) counts as the package's snapshot.
  Targets compare run 2 with run 2.
* COPY: `COPY t FROM STDIN WITH (FORMAT csv, HEADER true)` via psycopg, streaming the file in
  1 MiB chunks into a new plain (logged) table of text columns; for the invoices also into a
  typed table, and for invoices and payments into tables created `LIKE` the migrated warehouse
  tables (types, CHECKs, with or without their indexes); the commit is included.
* DuckDB runs the hand-written statement with `read_csv` in place of the tables (twice); its
  result is checked against the package's snapshot too.
* When the ingest writes the staging table on a background thread while the main thread reads
  and checks the next batch (it does at the time of writing), those writes (`Staging.write`,
  `_copy`, `_executemany`) carry the label of whatever stage the main thread was in, and
  `stage` is mostly the final wait for them.
* SQL statement times come from SQLAlchemy cursor events on every engine of the worker, so the
  queries Great Expectations runs on its own engine appear under `gx`. Function times come from
  timing wrappers put around a few package functions at run time; the package is not changed.
* Risk stages: after the ingest and aging, the engine's worker leaves its warehouse and a new
  child process (`worker risk`) runs the steps on it, in the order of the table above, each
  under its own RSS label (peaks are the process's RSS during the step: the arrays and frames
  the step builds, plus what the process kept from earlier steps; on PostgreSQL the server's
  memory is not counted). The modules the package imports inside its functions (scikit-learn,
  `pyarrow.csv`) are imported before the first step. The first `compute_provisions` builds the
  missing month-end aging snapshots (2023-12-31 … 2025-05-31: 18 of them), the second finds
  them all; `raise_warnings` computes the previous day's aging on its first run. The features
  `score_customers` computes for the as-of date are kept (a Parquet file) for the check below.
* Risk yardsticks: DuckDB, from the CSV files, runs the hand-written aging inside (1) the
  customer classes (worst class per customer and currency, rule: more than 10 % of the
  outstanding 91+ days past due), (2) the ECL per currency with the provision matrix each
  warehouse stored in `provision_rates` for the date, rounded per invoice as that warehouse
  rounds, (3) `worst_dpd_12m` and `avg_dpd_12m` per customer from the definitions in
  `receivables/risk/features.py`. The run fails (exit status 1) unless the class counts, the
  customers under the rule, the open invoices, the outstanding and the ECL per currency (to the
  cent) and both features of every customer are the same as the package's.
* For what happens inside the slow statements and functions (EXPLAIN ANALYZE plans, cProfile),
  run `python -m tests.benchmarks.diagnose --size 1m`: it writes `diagnosis-1m.md`.
"""


def _code_line(code: dict) -> str:
    dirty = code.get("dirty") or []
    changes = f", with uncommitted changes to {', '.join(f'`{d}`' for d in dirty)}" if dirty else ""
    return (
        f"Code measured: commit `{code.get('commit', '?')}`{changes}, as copied at the start of "
        f"the run (content fingerprint `{code.get('fingerprint', '?')}` of `include/` and `sql/`)."
    )


def render_markdown(results: dict) -> str:
    """The whole report."""
    lines = [
        "# Benchmark results",
        "",
        f"Run {results['date']} with `{results['command']}` "
        f"({results.get('duration_seconds', 0) / 60:.0f} min in all). "
        "Regenerate with `make bench`.",
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
    if results.get("warnings"):
        lines += ["**Warnings:**", ""]
        lines += [f"* {w}" for w in results["warnings"]] + [""]
    if results.get("problems"):
        lines += ["**Problems in this run:**", ""]
        lines += [f"* {p}" for p in results["problems"]] + [""]
    lines += ["## Yardsticks", "", *_yardsticks(results), "## Stages per size and engine", ""]
    for label, size in results["sizes"].items():
        c = size["counts"]
        lines += [
            f"Ledger {label}: {c['customers']:,} customers, {c['collectors']:,} collectors, "
            f"{c['invoices']:,} invoices ({c['bytes']['invoices'] / MB:,.0f} MB), "
            f"{c['payments']:,} payments ({c['bytes']['payments'] / MB:,.0f} MB).",
            "",
        ]
        for engine, measured in size.get("engines", {}).items():
            lines += _engine_section(label, size, engine, measured)
    lines += _risk_section(results)
    lines += ["## Method", "", METHOD]
    return "\n".join(lines)
