"""Benchmark: plan and send 100k reminders to SendGrid's contract mock, crash the sender, retry.

``python -m tests.benchmarks.reminders [--customers 100000] [--engines sqlite,postgresql]``

Per engine, on a fresh warehouse of ``--customers`` customers (each with one to three open
invoices and two paid ones of the last year, so habits are learned; 1 % do-not-contact, 3 % with
a disputed invoice), each step in a child process of its own (peak RSS is the child's):

1. **plan** — ``plan_reminders`` for the as-of date (target: under 30 s);
2. **send** — every batch through ``SendGridTransport`` to the contract mock (Stoplight Prism on
   SendGrid's published spec), ``--processes`` batches at a time (default 2), each in a process
   of its own, as the DAG's mapped ``send_reminders`` tasks run;
3. **yardstick** — the mock's own ceiling: one fixed valid request shaped like a reminder (the
   same fields, parts of about the same size) posted in a tight loop through the same transport
   at the same concurrency (``sending.concurrency`` × processes), measured
   (after a warm-up of the mock) before and after the send; the project's send rate must reach
   at least 70 % of their mean;
4. **crash** — every reminder back to ``pending``, the sender started against a local server that
   answers 202 and records each request's ``reminder_id``, killed with SIGKILL a third of the way
   through, then run again to the end: the number of reminders sent twice must be 0.

Results go to ``results-reminders.md`` and ``results-reminders.json`` beside this file; progress to
stderr. Needs Node/npm and SendGrid's contract spec (see ``tests/sendgrid_mock.py``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import multiprocessing
import os
import resource
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from zoneinfo import ZoneInfo

from tests.benchmarks.common import (
    BENCH_DIR,
    WORK_DIR,
    drop_pg_database,
    fresh_dir,
    recreate_pg_database,
)

#: Today in the business time zone: a reminder is sent close to its planned moment or not at all
#: (``sending.max_delay_hours``), so the benchmark plans the current day.
AS_OF = dt.datetime.now(dt.UTC).astimezone(ZoneInfo("Asia/Shanghai")).date()
RESULTS_MD = BENCH_DIR / "results-reminders.md"
RESULTS_JSON = BENCH_DIR / "results-reminders.json"
PG_DATABASE = "receivables_bench_reminders"
TARGET_PLAN_SECONDS = 30.0
TARGET_SHARE = 0.70
#: Requests posted to the mock before anything is measured.
WARM_UP_REQUESTS = 10_000


def log(message: str) -> None:
    """A progress line on stderr."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def peak_rss_mb() -> float:
    """This process's peak resident memory."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


#: Processes whose CPU time the diagnosis counts, by the name the kernel gives them.
CPU_GROUPS = {"postgres": "PostgreSQL server", "node": "the mock (Prism)"}


def cpu_seconds() -> dict[str, float]:
    """CPU seconds (user + system) used so far by the PostgreSQL server and the mock's Node
    processes, their finished children included (a closed session's backend counts in the
    postmaster's children), read from ``/proc``; empty where there is no ``/proc``."""
    tick = os.sysconf("SC_CLK_TCK")
    used = dict.fromkeys(CPU_GROUPS, 0.0)
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:  # gone meanwhile
            continue
        name = text[text.index("(") + 1 : text.rindex(")")]
        group = next((g for g in CPU_GROUPS if name.startswith(g)), None)
        if group is None:
            continue
        fields = text[text.rindex(")") + 2 :].split()
        # utime, stime, cutime, cstime are fields 14-17 of stat(5); fields[0] is field 3
        used[group] += sum(int(v) for v in fields[11:15]) / tick
    return used


def self_cpu_seconds() -> float:
    """CPU seconds of this process and its finished children."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + children.ru_utime + children.ru_stime


# --- the data ---------------------------------------------------------------------------------


def build(url: str, customers: int) -> dict:
    """A warehouse with ``customers`` customers due a reminder, and its aging snapshot."""
    import numpy as np
    import sqlalchemy as sa

    from receivables.aging import compute_snapshot
    from receivables.config import AgingPolicy
    from receivables.warehouse.db import create_engine
    from receivables.warehouse.migrate import upgrade
    from receivables.warehouse.schema import customers as customers_t
    from receivables.warehouse.schema import ingested_files, invoices, payments

    rng = np.random.default_rng(7)
    engine = create_engine(url)
    upgrade(engine)
    now = dt.datetime.now(dt.UTC)
    zones = ["Asia/Shanghai", "Asia/Hong_Kong", "America/New_York", "Europe/London"]
    with engine.begin() as conn:
        file_id = conn.execute(
            ingested_files.insert().values(
                file_name="bench",
                sha256="b" * 64,
                size_bytes=0,
                status="rejected",
                as_of_date=AS_OF,
                started_at=now,
                finished_at=now,
            )
        ).inserted_primary_key[0]
    people, bills, paid = [], [], []
    for i in range(customers):
        cid = f"C{i:07d}"
        english = rng.random() < 0.3
        people.append(
            {
                "customer_id": cid,
                "name": f"Customer {i}" if english else f"客户{i}有限公司",
                "email": f"ap{i}@example.com",
                "locale": "en" if english else "zh-CN",
                "timezone": zones[int(rng.integers(0, len(zones)))],
                "currency": "CNY",
                "do_not_contact": bool(rng.random() < 0.01),
                "source_file_id": file_id,
            }
        )
        oldest = int(rng.integers(-3, 120))
        for j in range(int(rng.integers(1, 4))):
            due = AS_OF - dt.timedelta(days=oldest - 10 * j)
            bills.append(
                {
                    "invoice_id": f"I{i:07d}-{j}",
                    "customer_id": cid,
                    "issue_date": due - dt.timedelta(days=30),
                    "due_date": due,
                    "amount": Decimal(int(rng.integers(10_000, 5_000_000))) / 100,
                    "currency": "CNY",
                    "description": f"Invoice {j}",
                    "disputed": bool(rng.random() < 0.01),
                    "source_file_id": file_id,
                }
            )
        payday = int(rng.integers(1, 29))
        for j in range(2):
            day = (AS_OF - dt.timedelta(days=60 * (j + 1))).replace(day=payday)
            bills.append(
                {
                    "invoice_id": f"P{i:07d}-{j}",
                    "customer_id": cid,
                    "issue_date": day - dt.timedelta(days=40),
                    "due_date": day - dt.timedelta(days=10),
                    "amount": Decimal("100.00"),
                    "currency": "CNY",
                    "description": None,
                    "disputed": False,
                    "source_file_id": file_id,
                }
            )
            paid.append(
                {
                    "payment_id": f"Y{i:07d}-{j}",
                    "invoice_id": f"P{i:07d}-{j}",
                    "paid_date": day,
                    "amount": Decimal("100.00"),
                    "source_file_id": file_id,
                }
            )
    with engine.begin() as conn:
        for table, rows in ((customers_t, people), (invoices, bills), (payments, paid)):
            for start in range(0, len(rows), 20_000):
                conn.execute(table.insert(), rows[start : start + 20_000])
    compute_snapshot(engine, AS_OF, AgingPolicy(), summary=False)
    with engine.connect() as conn:
        open_invoices = conn.execute(sa.text("SELECT count(*) FROM aging_snapshots")).scalar()
    engine.dispose()
    return {"customers": customers, "invoices": len(bills), "open_invoices": open_invoices}


# --- the steps, each in a child -------------------------------------------------------------


def child_plan(url: str) -> dict:
    """Plan the as-of date."""
    from receivables.collection.planner import plan_reminders
    from receivables.config import Settings
    from receivables.warehouse.db import create_engine

    settings = Settings.from_env()
    engine = create_engine(url)
    started = time.monotonic()
    summary = plan_reminders(engine, AS_OF, settings.strategy, settings.timezone)
    seconds = time.monotonic() - started
    return {
        "seconds": round(seconds, 2),
        "planned": summary["planned"],
        "pending": summary["pending"],
        "refused": summary["refused"],
        "batches": summary["batches"],
        "read_seconds": summary["read_seconds"],
        "peak_rss_mb": round(peak_rss_mb(), 1),
    }


def _send_batches(url: str, batches: list[int]) -> Counter:
    """One worker: its share of the batches, one after the other (one mapped task each)."""
    from receivables.collection.sender import send_batch
    from receivables.config import Settings
    from receivables.warehouse.db import create_engine

    settings = Settings.from_env()
    engine = create_engine(url)
    counts: Counter = Counter()
    try:
        for batch in batches:
            summary = send_batch(engine, settings, AS_OF, batch)
            for key in ("sent", "refused", "failed"):
                counts[key] += summary[key]
    finally:
        engine.dispose()
    return counts


def child_send(url: str, processes: int) -> dict:
    """Send every batch that holds pending reminders, ``processes`` batches at a time, each in
    a process of its own (as the DAG's mapped ``send_reminders`` tasks run)."""
    import sqlalchemy as sa

    from receivables.warehouse.db import create_engine
    from receivables.warehouse.schema import reminders

    engine = create_engine(url)
    with engine.connect() as conn:
        batches = (
            conn.execute(
                sa.select(reminders.c.batch)
                .where(
                    reminders.c.planned_on == AS_OF, reminders.c.status.in_(("pending", "sending"))
                )
                .group_by(reminders.c.batch)
                .order_by(reminders.c.batch)
            )
            .scalars()
            .all()
        )
    engine.dispose()
    started = time.monotonic()
    cpu_before = self_cpu_seconds()
    counts: Counter = Counter()
    shares = [batches[i::processes] for i in range(processes)]
    with multiprocessing.get_context("fork").Pool(processes) as pool:
        for part in pool.starmap(_send_batches, [(url, share) for share in shares if share]):
            counts.update(part)
    seconds = time.monotonic() - started
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {
        "seconds": round(seconds, 2),
        **counts,
        "per_second": round(counts["sent"] / seconds, 1) if seconds else None,
        "sender_cpu_seconds": round(self_cpu_seconds() - cpu_before, 2),
        "processes": processes,
        "peak_rss_mb": round(max(peak_rss_mb(), children), 1),
    }


def _child_command(step: str, url: str, processes: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "tests.benchmarks.reminders",
        "--child",
        step,
        "--url",
        url,
        "--processes",
        str(processes),
    ]


def _run_child(step: str, url: str, env: dict, processes: int = 1) -> dict:
    done = subprocess.run(
        _child_command(step, url, processes),
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    sys.stderr.write(done.stderr[-3000:] if done.returncode else "")
    if done.returncode != 0:
        raise RuntimeError(f"{step} failed ({done.returncode})")
    return json.loads(done.stdout.strip().splitlines()[-1])


def yardstick(base_url: str, concurrency: int, requests: int) -> dict:
    """The mock's ceiling: one fixed valid request, posted ``requests`` times."""
    from receivables.config import SendGridConfig
    from receivables.mail import OutboundEmail, SendGridTransport

    transport = SendGridTransport(
        SendGridConfig("SG.bench", base_url), "Receivables <r@example.com>"
    )
    # shaped like a reminder (the same fields, parts of about the same size): the mock's work
    # per request grows with what it validates, and the ceiling is of requests like the send's
    link = "http://127.0.0.1:8080/receivables/preferences/1.XcYQ3rF0OhTaC2XeLvhN7Wme29LvQ5W6"
    message = OutboundEmail(
        key="yardstick",
        to=("ap@example.com",),
        subject="Second payment reminder: overdue payment (Customer 1)",
        text="Dear customer, please pay invoice INV-1. " * 40,
        html="<p>Dear customer, please pay <b>INV-1</b>.</p>" * 90,
        category="reminder",
        categories=("second_reminder",),
        custom_args={"reminder_id": "1"},
        send_at=int(time.time()) + 3600,
        headers={
            "List-Unsubscribe": f"<{link}>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        },
        reply_to="Collections <collections@example.com>",
    )
    started, cpu_before, client_before = time.monotonic(), cpu_seconds(), self_cpu_seconds()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(lambda _: transport.deliver(message), range(requests)))
    seconds = time.monotonic() - started
    cpu = cpu_seconds()
    return {
        "requests": requests,
        "seconds": round(seconds, 2),
        "per_second": round(requests / seconds, 1),
        "cpu_ms_per_request": {
            "client": round((self_cpu_seconds() - client_before) / requests * 1000, 3),
            **{g: round((cpu[g] - cpu_before[g]) / requests * 1000, 3) for g in CPU_GROUPS},
        },
    }


class CountingServer:
    """Answers 202 like Mail Send and records every request's ``reminder_id``."""

    def __init__(self):
        self.ids: list[str] = []
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                try:
                    body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                except ValueError:  # the sender was killed while writing it: never accepted
                    self.close_connection = True
                    return
                with outer.lock:
                    outer.ids.append(body["custom_args"]["reminder_id"])
                self.send_response(202)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"


def crash(url: str, env: dict, total: int, processes: int) -> dict:
    """Every reminder pending again; kill the sender a third of the way; retry; count."""
    import sqlalchemy as sa

    from receivables.warehouse.db import create_engine
    from receivables.warehouse.schema import reminders

    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(
            sa.update(reminders)
            .where(reminders.c.planned_on == AS_OF, reminders.c.status == "sent")
            .values(status="pending", attempts=0, provider=None, sent_at=None)
        )
    server = CountingServer()
    connection = json.dumps({"conn_type": "http", "password": "SG.bench", "host": server.url})
    child_env = {**env, "AIRFLOW_CONN_SENDGRID_DEFAULT": connection}
    child = subprocess.Popen(
        _child_command("send", url, processes),
        env=child_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # its workers too are killed, all at once
    )
    while len(server.ids) < total // 3:
        if child.poll() is not None:
            raise RuntimeError("the sender finished before it could be killed")
        time.sleep(0.01)
    os.killpg(child.pid, signal.SIGKILL)
    child.wait()
    before = len(server.ids)
    with engine.connect() as conn:
        in_doubt = conn.execute(
            sa.select(sa.func.count()).where(
                reminders.c.planned_on == AS_OF, reminders.c.status == "sending"
            )
        ).scalar()
    retry = _run_child("send", url, child_env, processes)
    with engine.connect() as conn:
        statuses = dict(
            conn.execute(
                sa.select(reminders.c.status, sa.func.count())
                .where(reminders.c.planned_on == AS_OF)
                .group_by(reminders.c.status)
            ).all()
        )
    engine.dispose()
    server.server.shutdown()
    counts = Counter(server.ids)
    return {
        "requests_before_kill": before,
        "in_doubt_at_kill": in_doubt,
        "requests_after_retry": len(server.ids) - before,
        "retry_seconds": retry["seconds"],
        "duplicate_sends": sum(1 for n in counts.values() if n > 1),
        "statuses_after": statuses,
        "left_pending": statuses.get("pending", 0) + statuses.get("sending", 0),
    }


# --- the run ----------------------------------------------------------------------------------


def run_engine(
    engine_name: str, customers: int, base_env: dict, mock_url: str, processes: int
) -> dict:
    """Every step on one engine."""
    from receivables.collection.strategy import load_strategy

    folder = fresh_dir(WORK_DIR / f"reminders-{engine_name}")
    url = (
        f"sqlite:///{folder / 'warehouse.db'}"
        if engine_name == "sqlite"
        else recreate_pg_database(PG_DATABASE)
    )
    env = {**base_env, "RECEIVABLES_HOME": str(folder / "home"), "RECEIVABLES_DB_URL": url}
    env.pop("AIRFLOW_CONN_SENDGRID_DEFAULT", None)
    log(f"{engine_name}: building {customers:,} customers")
    data = build(url, customers)
    log(f"{engine_name}: {data}")
    plan = _run_child("plan", url, env)
    log(f"{engine_name}: plan {plan}")
    # the same number of requests in flight as the send: each process its strategy's concurrency
    concurrency = load_strategy().sending.concurrency * processes
    # Prism speeds up over its first thousands of requests (V8 compiles its hot paths): warmed
    # up first, so that neither the ceiling nor the send is measured on a cold mock
    yardstick(mock_url, concurrency, WARM_UP_REQUESTS)
    ceiling = yardstick(mock_url, concurrency, 5_000)
    log(f"{engine_name}: mock ceiling {ceiling}")
    mock_env = {
        **env,
        "AIRFLOW_CONN_SENDGRID_DEFAULT": json.dumps(
            {"conn_type": "http", "password": "SG.bench", "host": mock_url}
        ),
    }
    cpu_before = cpu_seconds()
    send = _run_child("send", url, mock_env, processes)
    cpu = cpu_seconds()
    sent = max(1, send["sent"])
    # where the send's CPU went, per reminder sent: the senders, the database server, the mock
    send["cpu_ms_per_reminder"] = {
        "sender": round(send["sender_cpu_seconds"] / sent * 1000, 3),
        **{g: round((cpu[g] - cpu_before[g]) / sent * 1000, 3) for g in CPU_GROUPS},
    }
    log(f"{engine_name}: send {send}")
    # the mock's pace drifts on a shared machine: measured again right after the send, and the
    # send compared with the mean of the two measurements that bracket it
    after = yardstick(mock_url, concurrency, 5_000)
    log(f"{engine_name}: mock ceiling after the send {after}")
    ceiling = {
        "before": ceiling,
        "after": after,
        "per_second": round((ceiling["per_second"] + after["per_second"]) / 2, 1),
    }
    crashed = crash(url, env, send["sent"], processes)
    log(f"{engine_name}: crash {crashed}")
    if engine_name == "postgresql":
        drop_pg_database(PG_DATABASE)
    share = send["per_second"] / ceiling["per_second"] if ceiling["per_second"] else 0
    return {
        "data": data,
        "plan": plan,
        "send": send,
        "yardstick": ceiling,
        "share_of_ceiling": round(share, 3),
        "crash": crashed,
        "targets": {
            "plan under 30 s": plan["seconds"] < TARGET_PLAN_SECONDS,
            "send at least 70 % of the mock's ceiling": share >= TARGET_SHARE,
            "no duplicate send after a crash": crashed["duplicate_sends"] == 0,
            "nothing left pending": crashed["left_pending"] == 0,
        },
    }


def render(results: dict) -> str:
    """The Markdown report."""
    lines = [
        "# Reminders benchmark",
        "",
        f"Measured {results['measured_at']} on {results['machine']}, "
        f"{results['customers']:,} customers, as of {AS_OF}; "
        f"`python -m tests.benchmarks.reminders` (`make bench`).",
        "",
        "| engine | plan s | plan peak MB | planned | pending | send s | sent/s | send peak MB "
        "| mock ceiling/s (before, after) | share | duplicates after crash | targets |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, r in results["engines"].items():
        ok = all(r["targets"].values())
        failed = [k for k, v in r["targets"].items() if not v]
        lines.append(
            f"| {name} | {r['plan']['seconds']} | {r['plan']['peak_rss_mb']} | "
            f"{r['plan']['planned']:,} | {r['plan']['pending']:,} | {r['send']['seconds']} | "
            f"{r['send']['per_second']} | {r['send']['peak_rss_mb']} | "
            f"{r['yardstick']['per_second']} ({r['yardstick']['before']['per_second']}, "
            f"{r['yardstick']['after']['per_second']}) | {r['share_of_ceiling']:.0%} | "
            f"{r['crash']['duplicate_sends']} | "
            + ("PASS" if ok else "FAIL: " + "; ".join(failed))
            + " |"
        )
    lines += [
        "",
        "Targets: planning under 30 s; sending at least 70 % of the mock's ceiling (one fixed "
        "valid request shaped like a reminder, posted in a tight loop through the same "
        "transport at the same concurrency, measured before and after the send, the mean of "
        "the two); 0 reminders sent twice after the sender is killed mid-batch and retried.",
        "",
        "Where the CPU goes (milliseconds of CPU per reminder sent, or per yardstick request; "
        "user + system time from `/proc`; the cores are busy when the sum times the rate nears "
        f"{os.cpu_count()} × 1000 ms per second):",
        "",
        "| engine | run | sender / client | PostgreSQL server | the mock (Prism) | sum | "
        "cores busy |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, r in results["engines"].items():
        rows = [("send", r["send"].get("cpu_ms_per_reminder"), r["send"]["per_second"])]
        for when in ("before", "after"):
            y = r["yardstick"][when]
            rows.append((f"yardstick ({when})", y.get("cpu_ms_per_request"), y["per_second"]))
        for run, cpu, rate in rows:
            if not cpu:
                continue
            first = cpu.get("sender", cpu.get("client"))
            total = first + cpu["postgres"] + cpu["node"]
            lines.append(
                f"| {name} | {run} | {first:.3f} | {cpu['postgres']:.3f} | {cpu['node']:.3f} | "
                f"{total:.3f} | {total * rate / 1000:.2f} |"
            )
    lines += [
        "",
        "Crash runs (the sender killed with SIGKILL a third of the way through, then retried):",
        "",
    ]
    for name, r in results["engines"].items():
        c = r["crash"]
        lines.append(
            f"- {name}: {c['requests_before_kill']:,} requests before the kill, "
            f"{c['in_doubt_at_kill']} reminder(s) in flight (`sending`) at the kill, "
            f"{c['requests_after_retry']:,} requests by the retry in {c['retry_seconds']} s; "
            f"statuses after: {c['statuses_after']}; duplicate sends: {c['duplicate_sends']}"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark (or, with ``--child``, one step of it)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--engines", default="sqlite,postgresql")
    parser.add_argument(
        "--processes",
        type=int,
        default=2,
        help="send batches in parallel, each in a process of its own (the DAG runs up to 4)",
    )
    parser.add_argument("--child", choices=("plan", "send"))
    parser.add_argument("--url")
    args = parser.parse_args(argv)
    if args.child:
        if args.child == "plan":
            result = child_plan(args.url)
        else:
            result = child_send(args.url, args.processes)
        print(json.dumps(result))
        return 0
    import platform

    from tests.sendgrid_mock import contract_spec, prism_mock

    base_env = {**os.environ, "PYTHONPATH": str(BENCH_DIR.parents[1])}
    results = {
        "measured_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": f"{os.cpu_count()} cores, {platform.python_implementation()} "
        f"{platform.python_version()}",
        "customers": args.customers,
        "processes": args.processes,
        "engines": {},
    }
    with prism_mock(contract_spec()) as mock_url:
        for name in [e.strip() for e in args.engines.split(",") if e.strip()]:
            results["engines"][name] = run_engine(
                name, args.customers, base_env, mock_url, args.processes
            )
    RESULTS_JSON.write_text(json.dumps(results, indent=2, default=str) + "\n", encoding="utf-8")
    RESULTS_MD.write_text(render(results), encoding="utf-8")
    log(f"results in {RESULTS_MD}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
