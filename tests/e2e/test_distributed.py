"""The production shape, natively: Airflow's components as separate processes on the Celery
executor, driven only through Airflow's public REST API.

What ``docker-compose.yml`` describes runs here without containers: PostgreSQL for Airflow's
metadata and for the warehouse (two fresh databases, dropped afterwards), Redis as the Celery
broker (one database number, flushed before and after), the Celery result backend in the
metadata database, and ``airflow api-server``, ``scheduler``, ``dag-processor``, ``triggerer``
and ``celery worker`` each in its own process group with its own log file. A person's path
through it: a JWT from the API server (SimpleAuthManager), the daily DAGs unpaused, then
``ledger_ingest`` triggered for three business dates in turn; ``receivables_risk``,
``collection_reminders`` and ``legal_escalation`` follow on the assets, and the legal review a
case needs is answered through the REST API as a person's script would.

* 2025-06-30: the sample ledger is loaded; aging, classes, provisions, scores, warnings; the
  first reminders (no legal case yet: nothing had a final notice).
* 2025-07-07: final notices go out, 7 days after the first reminders.
* 2025-07-17: 10 days after the final notice, legal cases are proposed: the small ones approved
  by the rule, the others waiting in ``review_case`` for a person, answered here.

Each logical date is midnight in Shanghai, whose UTC date is the day before (the ``ds`` trap):
the results must be for the business dates, never for those UTC dates. Every task instance
that ran must have gone through Redis to the Celery worker: its queue is the worker's queue,
its Celery task id (``external_executor_id``) has a ``SUCCESS`` row in the result backend and
appears in the worker's log.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import psutil
import pytest
import sqlalchemy as sa

from receivables.dates import as_of_date, start_of_business_day
from receivables.legal.casefile import CJK_FONT_PACKAGE, cjk_fonts
from receivables.sample import SampleSummary, generate_sample
from tests.helpers import new_pg_database

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
TZ = "Asia/Shanghai"
#: first reminders; final notices 7 days later; legal cases 10 days after those
DATES = (dt.date(2025, 6, 30), dt.date(2025, 7, 7), dt.date(2025, 7, 17))
#: the daily chain: ledger ─► receivables_risk ─► (risk) ─► collection_reminders, legal_escalation
CHAIN = ("ledger_ingest", "receivables_risk", "collection_reminders", "legal_escalation")
#: the only queue the worker serves (Airflow's default queue here): a task seen on it was
#: taken by this worker
QUEUE = "receivables_e2e"
USER = "e2e-reviewer"
REDIS = ("127.0.0.1", 6379)
#: Redis databases the test may claim (0 is the compose file's broker)
REDIS_DATABASES = range(15, 7, -1)
REDIS_CLAIM = "receivables:e2e:claim"
#: claims the database when nobody holds it: flushes what a crashed run left, then marks it
REDIS_CLAIM_SCRIPT = """
if redis.call('exists', KEYS[1]) == 0 then
  redis.call('flushdb')
  redis.call('set', KEYS[1], ARGV[1], 'EX', ARGV[2])
  return 1
end
return 0
"""
#: seconds: the components up and the DAGs parsed; one date's chain (about a minute or two on
#: an idle 2-core machine, several times that when the machine is busy); no task instance
#: changing state (a hung component); stopping everything
READY_WITHIN = 300
CHAIN_WITHIN = 600
STALL_WITHIN = 240
STOP_WITHIN = 60
#: seconds between two looks at the REST API while waiting
POLL_EVERY = 2
#: seconds for the worker to store the last tasks' results; the states it stores them in
RESULTS_WITHIN = 60
CELERY_READY = ("SUCCESS", "FAILURE", "REVOKED")

pytestmark = pytest.mark.skipif(
    not cjk_fonts(),
    reason=f"no font covering Chinese (fc-list :lang=zh is empty): install {CJK_FONT_PACKAGE}",
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def redis_database() -> Iterator[int]:
    """A Redis database number of our own on 127.0.0.1:6379, flushed before and after."""
    import redis

    token = uuid.uuid4().hex
    for number in REDIS_DATABASES:
        client = redis.Redis(*REDIS, db=number, socket_timeout=10)
        try:
            claimed = client.eval(REDIS_CLAIM_SCRIPT, 1, REDIS_CLAIM, token, 3600)
        except redis.ConnectionError as exc:
            client.close()
            pytest.fail(
                f"Redis is not answering on {REDIS[0]}:{REDIS[1]} ({exc}); run tests/services.py"
            )
        if not claimed:
            client.close()
            continue
        try:
            yield number
        finally:
            client.flushdb()
            client.close()
        return
    pytest.fail(f"every Redis database in {list(REDIS_DATABASES)} is claimed by another run")


@dataclass
class Cluster:
    """The running components, their environment and logs."""

    env: dict[str, str]
    home: Path
    logs: Path
    api: str
    metadata_url: str
    warehouse_url: str
    password: str
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)

    def log_of(self, name: str) -> Path:
        return self.logs / f"{name}.log"

    def start(self, name: str, *args: str) -> None:
        with self.log_of(name).open("wb") as out:
            self.processes[name] = subprocess.Popen(
                [str(BIN / "airflow"), *args],
                env=self.env,
                cwd=self.home,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # its own process group: stopped with all its children
            )

    def run(self, name: str, *command: str) -> None:
        """A one-off command (migration, warehouse init), to completion, logged."""
        with self.log_of(name).open("wb") as out:
            try:
                done = subprocess.run(
                    list(command),
                    env=self.env,
                    cwd=self.home,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    timeout=READY_WITHIN,
                    check=False,
                )
            except subprocess.TimeoutExpired:
                pytest.fail(
                    f"`{' '.join(command[:3])}` took over {READY_WITHIN} s:\n{self.tail(name)}"
                )
        if done.returncode != 0:
            pytest.fail(f"`{' '.join(command[:3])}` exited {done.returncode}:\n{self.tail(name)}")

    def tail(self, name: str, lines: int = 40) -> str:
        path = self.log_of(name)
        text = path.read_text(errors="replace") if path.exists() else "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def tails(self) -> str:
        return "\n".join(
            f"----- {name} (last lines of {self.log_of(name).name}) -----\n{self.tail(name)}"
            for name in self.processes
        )

    def check_alive(self, waiting_for: str) -> None:
        for name, proc in self.processes.items():
            if proc.poll() is not None:
                pytest.fail(
                    f"{name} exited ({proc.returncode}) while waiting for {waiting_for}\n"
                    + self.tails()
                )

    def wait(
        self,
        what: str,
        predicate: Callable[[], Any],
        seconds: float,
        progress: Callable[[], Any] | None = None,
    ) -> Any:
        """Poll ``predicate`` until it returns something true; fail with every component's
        last log lines when a component dies, time runs out, or ``progress`` (when given)
        stops changing for ``STALL_WITHIN`` seconds."""
        deadline = time.monotonic() + seconds
        seen, moved_at = None, time.monotonic()
        while True:
            self.check_alive(what)
            try:
                value = predicate()
                current = progress() if progress is not None else None
            except httpx.TransportError:  # a busy API server: asked again (its death is seen)
                value, current = None, seen
            if value:
                return value
            now = time.monotonic()
            if progress is not None:
                if current != seen:
                    seen, moved_at = current, now
                elif now - moved_at > STALL_WITHIN:
                    pytest.fail(
                        f"nothing moved for {STALL_WITHIN} s while waiting for {what}\n"
                        + self.tails()
                    )
            if now > deadline:
                pytest.fail(f"timed out after {seconds} s waiting for {what}\n" + self.tails())
            time.sleep(POLL_EVERY)

    def stop(self) -> None:
        """Terminate every process group, wait, kill what is left; then make sure no process of
        this cluster (recognised by its own AIRFLOW_HOME) survives anywhere."""
        for proc in self.processes.values():
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_WITHIN
        for proc in self.processes.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(max(0.1, deadline - time.monotonic()))
        for proc in self.processes.values():
            # the leader may be gone while children of its group still run
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(10)
        strays = self.strays()
        for stray in strays:  # left their process group (a task's own session, say)
            with contextlib.suppress(psutil.NoSuchProcess):
                stray.kill()
        psutil.wait_procs(strays, timeout=10)
        if left := self.strays():
            pytest.fail(f"processes of the cluster survived SIGKILL: {[p.pid for p in left]}")

    def strays(self) -> list[psutil.Process]:
        home = self.env["AIRFLOW_HOME"]
        found = []
        for proc in psutil.process_iter():
            try:
                if (
                    proc.pid != os.getpid()
                    and proc.environ().get("AIRFLOW_HOME") == home
                    and proc.status() != psutil.STATUS_ZOMBIE
                ):
                    found.append(proc)
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                continue
        return found


class Api:
    """Airflow's public REST API, as a person's script uses it: with a JWT from ``/auth/token``."""

    def __init__(self, base: str) -> None:
        self.client = httpx.Client(base_url=base, timeout=30)

    def login(self, username: str, password: str) -> None:
        reply = self.client.post("/auth/token", json={"username": username, "password": password})
        assert reply.status_code in (200, 201), reply.text
        self.client.headers["Authorization"] = f"Bearer {reply.json()['access_token']}"

    def get(self, path: str, **params: Any) -> Any:
        reply = self.client.get(f"/api/v2{path}", params=params)
        reply.raise_for_status()
        return reply.json()

    def send(self, method: str, path: str, body: dict) -> httpx.Response:
        return self.client.request(method, f"/api/v2{path}", json=body)

    def close(self) -> None:
        self.client.close()


@pytest.fixture
def cluster(tmp_path, pg_server) -> Iterator[Cluster]:
    """Airflow's components on the CeleryExecutor, natively, on fresh databases."""
    with contextlib.ExitStack() as stack:
        redis_db = stack.enter_context(redis_database())
        metadata_url = stack.enter_context(new_pg_database(pg_server))
        warehouse_url = stack.enter_context(new_pg_database(pg_server))
        metadata = metadata_url.replace("postgresql://", "postgresql+psycopg://", 1)
        airflow_home = tmp_path / "airflow"
        home = tmp_path / "var"
        logs = tmp_path / "logs"
        for folder in (airflow_home, home / "inbox", logs):
            folder.mkdir(parents=True)
        passwords = airflow_home / "passwords.json"
        password = secrets.token_urlsafe(16)
        passwords.write_text(json.dumps({USER: password}))
        port = _free_port()
        api = f"http://127.0.0.1:{port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "RECEIVABLES"))}
        env.update(
            {
                "PATH": f"{BIN}{os.pathsep}{env.get('PATH', '')}",
                "AIRFLOW_HOME": str(airflow_home),
                "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
                "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
                "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__CORE__DEFAULT_TIMEZONE": TZ,
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{api}/execution/",
                "AIRFLOW__CORE__AUTH_MANAGER": "airflow.api_fastapi.auth.managers.simple."
                "simple_auth_manager.SimpleAuthManager",
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{USER}:admin",
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
                "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
                "AIRFLOW__API__SECRET_KEY": secrets.token_urlsafe(32),
                "AIRFLOW__API__HOST": "127.0.0.1",
                "AIRFLOW__API__PORT": str(port),
                "AIRFLOW__API__WORKERS": "1",
                # psycopg 3 for both engines: Airflow would derive asyncpg for the async one
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": metadata,
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC": metadata,
                "AIRFLOW__CELERY__BROKER_URL": f"redis://{REDIS[0]}:{REDIS[1]}/{redis_db}",
                "AIRFLOW__CELERY__RESULT_BACKEND": f"db+{metadata_url}",
                "AIRFLOW__CELERY__WORKER_CONCURRENCY": "2",
                "AIRFLOW__CELERY__SYNC_PARALLELISM": "1",
                "AIRFLOW__OPERATORS__DEFAULT_QUEUE": QUEUE,
                # the log servers of the worker and the triggerer: free ports, not 8793/8794
                "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(_free_port()),
                "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(_free_port()),
                "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
                "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
                # parsed once: parsing them again every 30 s (the default) takes a sixth of a core
                "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "600",
                "AIRFLOW_CONN_RECEIVABLES_DB": warehouse_url,
                "RECEIVABLES_HOME": str(home),
                "RECEIVABLES_TIMEZONE": TZ,
                "RECEIVABLES_PUBLIC_URL": api,
                # the same on every host that makes or serves links
                "RECEIVABLES_LINK_SECRET": secrets.token_hex(32),
                "RECEIVABLES_TASK_RETRIES": "0",  # a failure shows at once
                # only the triggered runs
                "RECEIVABLES_INGEST_CRON": "none",
                "RECEIVABLES_MODEL_CRON": "none",
                "RECEIVABLES_MONTHLY_CRON": "none",
                "RECEIVABLES_QUARTERLY_CRON": "none",
                "GX_ANALYTICS_ENABLED": "false",
            }
        )
        found = Cluster(env, home, logs, api, metadata_url, warehouse_url, password)
        found.run("db-migrate", str(BIN / "airflow"), "db", "migrate")
        found.run("receivables-init", str(BIN / "receivables"), "init")
        stack.callback(found.stop)
        found.start("api-server", "api-server", "--host", "127.0.0.1", "--port", str(port))
        found.start("scheduler", "scheduler")
        found.start("dag-processor", "dag-processor")
        found.start("triggerer", "triggerer")
        found.start("celery-worker", "celery", "worker", "--concurrency", "2", "--queues", QUEUE)
        yield found


def _health_answers(api: Api) -> bool:
    try:
        return api.client.get("/api/v2/monitor/health").status_code == 200
    except httpx.HTTPError:
        return False


def _healthy(api: Api) -> bool:
    try:
        health = api.get("/monitor/health")
    except httpx.HTTPError:
        return False
    return all(
        health.get(part, {}).get("status") == "healthy"
        for part in ("metadatabase", "scheduler", "triggerer", "dag_processor")
    )


def _parsed(api: Api) -> bool:
    try:
        dags = {d["dag_id"] for d in api.get("/dags", limit=100)["dags"]}
    except httpx.HTTPError:
        return False
    return set(CHAIN) <= dags


def _runs(api: Api, dag_id: str) -> list[dict]:
    return api.get(f"/dags/{dag_id}/dagRuns", limit=100, order_by="run_after")["dag_runs"]


def _task_instances(api: Api, dag_id: str) -> list[dict]:
    return api.get(f"/dags/{dag_id}/dagRuns/~/taskInstances", limit=1000)["task_instances"]


def _task_states(api: Api) -> set[tuple]:
    """Every task instance of the chain with its state: what moves while the chain runs."""
    return {
        (t["dag_id"], t["dag_run_id"], t["task_id"], t["map_index"], t["state"])
        for dag_id in CHAIN
        for t in _task_instances(api, dag_id)
    }


def _answer_reviews(api: Api, answered: list[dict]) -> None:
    """Approve every legal review waiting for a person, as a reviewer's script would."""
    waiting = api.get(
        "/dags/legal_escalation/dagRuns/~/hitlDetails",
        response_received="false",
        task_id="review_case",
        limit=100,
    )["hitl_details"]
    for detail in waiting:
        ti = detail["task_instance"]
        if ti["state"] != "awaiting_input":
            continue
        reply = api.send(
            "PATCH",
            f"/dags/legal_escalation/dagRuns/{quote(ti['dag_run_id'], safe='')}"
            f"/taskInstances/review_case/{ti['map_index']}/hitlDetails",
            {"chosen_options": ["Approve"], "params_input": {"note": "approved by the e2e test"}},
        )
        if reply.status_code == 409:  # answered already
            continue
        assert reply.status_code == 200, reply.text
        assert reply.json()["responded_by"]["name"] == USER
        answered.append({"subject": detail["subject"], **ti})


def _chain_done(cluster: Cluster, api: Api, runs_each: int, answered: list[dict]) -> bool:
    """Every DAG of the chain has ``runs_each`` runs, all successful (a failed run fails the
    test at once, with its task states); reviews waiting meanwhile are answered."""
    _answer_reviews(api, answered)
    done = True
    for dag_id in CHAIN:
        runs = _runs(api, dag_id)
        if failed := [r for r in runs if r["state"] == "failed"]:
            states = [
                (t["dag_run_id"], t["task_id"], t["map_index"], t["state"])
                for t in _task_instances(api, dag_id)
                if t["dag_run_id"] in {r["dag_run_id"] for r in failed}
            ]
            pytest.fail(f"{dag_id} failed: {states}\n" + cluster.tails())
        done = done and len(runs) == runs_each and all(r["state"] == "success" for r in runs)
    return done


@pytest.mark.timeout(2400)  # start-up, three chains at their longest, and the stop
def test_the_daily_chain_runs_on_celery_workers(cluster: Cluster):
    sample = generate_sample(cluster.home / "inbox", 40, DATES[0], seed=8)
    api = Api(cluster.api)
    started = time.monotonic()
    took: dict[str, float] = {}
    try:
        cluster.wait("the API server", lambda: _health_answers(api), READY_WITHIN)
        api.login(USER, cluster.password)
        cluster.wait("the DAG processor to parse the DAGs", lambda: _parsed(api), READY_WITHIN)
        for dag_id in CHAIN:
            reply = api.send("PATCH", f"/dags/{dag_id}", {"is_paused": False})
            assert reply.status_code == 200, reply.text
            assert reply.json()["is_paused"] is False
        cluster.wait("every component to heartbeat", lambda: _healthy(api), READY_WITHIN)
        took["start-up"] = time.monotonic() - started

        answered: list[dict] = []
        for number, day in enumerate(DATES, start=1):
            logical = start_of_business_day(day, TZ).astimezone(dt.UTC)
            # the trap this guards against: the UTC date (Airflow's ds) is the day before
            assert logical.date() == day - dt.timedelta(days=1)
            assert as_of_date(logical, TZ) == day
            reply = api.send(
                "POST",
                "/dags/ledger_ingest/dagRuns",
                {"dag_run_id": f"e2e__{day}", "logical_date": logical.isoformat(), "conf": {}},
            )
            assert reply.status_code == 200, reply.text
            assert dt.datetime.fromisoformat(reply.json()["logical_date"]) == logical
            cluster.wait(
                f"the daily chain of {day} ({', '.join(CHAIN)})",
                lambda number=number: _chain_done(cluster, api, number, answered),
                CHAIN_WITHIN,
                progress=lambda: _task_states(api),
            )
            took[str(day)] = time.monotonic() - started - sum(took.values())
        assert _healthy(api)
        ran = check_task_instances(api)
    finally:
        api.close()
    check_celery(cluster, ran)
    check_warehouse(cluster, sample, answered)
    print("seconds:", ", ".join(f"{what} {seconds:.0f}" for what, seconds in took.items()))


def check_task_instances(api: Api) -> list[dict]:
    """Through the REST API: every task instance succeeded or was skipped, and those that ran
    were queued on the worker's queue and ran on a host. Returns those that ran."""
    ran = []
    for dag_id in CHAIN:
        tis = _task_instances(api, dag_id)
        assert tis, dag_id
        assert {t["state"] for t in tis} <= {"success", "skipped"}, [
            (t["task_id"], t["map_index"], t["state"]) for t in tis
        ]
        for ti in tis:
            if ti["state"] == "success":
                assert ti["queue"] == QUEUE, ti
                assert ti["hostname"], ti
                ran.append(ti)
        runs = _runs(api, dag_id)
        assert len(runs) == len(DATES), dag_id
        if dag_id == "ledger_ingest":
            assert [r["dag_run_id"] for r in runs] == [f"e2e__{d}" for d in DATES]
            assert {r["run_type"] for r in runs} == {"manual"}
        else:  # nothing but the asset event tells these the date
            assert {r["run_type"] for r in runs} == {"asset_triggered"}, dag_id
            assert {r["logical_date"] for r in runs} == {None}, dag_id
    ran_ids = {t["dag_id"] for t in ran}
    assert ran_ids == set(CHAIN)
    return ran


def check_celery(cluster: Cluster, ran: list[dict]) -> None:
    """Every task instance that ran went through the broker to the Celery worker: its Celery
    task id has a SUCCESS result in the result backend and is in the worker's log."""
    query = sa.text(
        "SELECT ti.dag_id, ti.run_id, ti.task_id, ti.map_index, ti.external_executor_id, "
        "m.status FROM task_instance ti "
        "LEFT JOIN celery_taskmeta m ON m.task_id = ti.external_executor_id "
        "WHERE ti.state = 'success'"
    )
    engine = sa.create_engine(cluster.metadata_url)
    deadline = time.monotonic() + RESULTS_WITHIN
    try:
        while True:
            with engine.connect() as conn:
                rows = conn.execute(query).all()
            # the worker stores a result once the task's process has exited, a moment after
            # the task reported its state: the last task's result may still be on its way
            if all(r.status in CELERY_READY for r in rows) or time.monotonic() > deadline:
                break
            cluster.check_alive("the last results in the Celery result backend")
            time.sleep(1)
    finally:
        engine.dispose()
    assert len(rows) == len(ran)
    assert {(r.dag_id, r.run_id, r.task_id, r.map_index) for r in rows} == {
        (t["dag_id"], t["dag_run_id"], t["task_id"], t["map_index"]) for t in ran
    }
    not_celery = [
        (r.dag_id, r.task_id, r.map_index, r.status) for r in rows if r.status != "SUCCESS"
    ]
    assert not not_celery, not_celery
    worker_log = cluster.log_of("celery-worker").read_text(errors="replace")
    missing = [
        (r.dag_id, r.task_id, r.map_index)
        for r in rows
        if f"[{r.external_executor_id}] Executing workload in Celery" not in worker_log
    ]
    assert not missing, missing


def check_warehouse(cluster: Cluster, sample: SampleSummary, answered: list[dict]) -> None:
    """What the chain wrote, for the business dates only (never their UTC dates)."""
    home = cluster.home
    engine = sa.create_engine(cluster.warehouse_url)
    first, second, third = DATES
    try:
        with engine.connect() as conn:

            def scalar(sql: str, **params: Any) -> Any:
                return conn.execute(sa.text(sql), params).scalar()

            def dates(table: str, column: str = "as_of_date") -> list[dt.date]:
                found = conn.execute(sa.text(f"SELECT DISTINCT {column} FROM {table}")).scalars()
                return sorted(found)

            files = conn.execute(
                sa.text(
                    "SELECT kind, status, as_of_date, rows_read, rows_loaded, rows_quarantined "
                    "FROM ingested_files ORDER BY file_id"
                )
            ).all()
            assert {f.kind for f in files} == set(sample.paths)
            assert {(f.status, f.as_of_date) for f in files} == {("loaded", first)}
            read = {f.kind: f.rows_read for f in files}
            assert read == {
                "fx_rates": sample.fx_rates,
                "collectors": sample.collectors,
                "customers": sample.customers,
                "invoices": sample.invoices,
                "payments": sample.payments,
                "feedback": sample.feedback,
            }
            loaded = {f.kind: f.rows_loaded for f in files}
            assert scalar("SELECT COUNT(*) FROM customers") == loaded["customers"] > 0
            assert scalar("SELECT COUNT(*) FROM invoices") == loaded["invoices"] > 0
            assert scalar("SELECT COUNT(*) FROM payments") == loaded["payments"] > 0
            assert not list((home / "inbox").iterdir())  # archived

            # the risk DAG's results are for each business date, never for its UTC date (the
            # snapshots beside them are the month-ends the provisions read and the day before
            # each date that the warnings compare with, computed from the ledger)
            assert dates("credit_scores") == list(DATES)
            assert set(dates("risk_warnings")) <= set(DATES)
            day_before = {day - dt.timedelta(days=1) for day in DATES}
            for table in ("aging_runs", "customer_risk_classes", "invoice_risk"):
                found = dates(table)
                assert set(DATES) <= set(found), table
                assert max(found) == DATES[-1], table
                others = {
                    d
                    for d in set(found) - set(DATES) - day_before
                    if (d + dt.timedelta(days=1)).day != 1
                }
                assert not others, (table, others)
            for day in DATES:
                open_invoices = scalar(
                    "SELECT open_invoices FROM aging_runs WHERE as_of_date = :d", d=day
                )
                snapshot = scalar(
                    "SELECT COUNT(*) FROM aging_snapshots WHERE as_of_date = :d", d=day
                )
                assert snapshot == open_invoices > 0, day
                graded = scalar("SELECT COUNT(*) FROM credit_scores WHERE as_of_date = :d", d=day)
                assert graded == loaded["customers"], day  # every customer on the book
                assert list(home.glob(f"outbox/risk-digest*{day}*.eml")), day

            # reminders: planned for each date, every one decided, the sent ones in the outbox
            reminders = conn.execute(
                sa.text("SELECT customer_id, stage, status, planned_on FROM reminders")
            ).all()
            assert {r.planned_on for r in reminders} == set(DATES)
            assert {r.status for r in reminders} <= {"sent", "refused"}
            sent = [r for r in reminders if r.status == "sent"]
            assert any(r.planned_on == first for r in sent)
            # a week after the first reminders, the final notices
            assert any(r.planned_on == second and r.stage == "final_notice" for r in sent)
            for r in sent:
                eml = list(home.glob(f"outbox/{r.customer_id}_{r.stage}_{r.planned_on}-*.eml"))
                assert len(eml) == 1, r
            worklist = scalar("SELECT COUNT(*) FROM collection_actions")
            assert worklist > 0

            # legal: cases only on the third date; the ones a person had to decide were
            # answered through the REST API, by our user; every approved case has its files
            cases = conn.execute(
                sa.text("SELECT case_id, opened_on, status, decided_by, case_file FROM legal_cases")
            ).all()
    finally:
        engine.dispose()
    assert cases
    assert {c.opened_on for c in cases} == {third}
    assert {c.status for c in cases} == {"approved"}  # none left waiting
    by_person = sorted(c.case_id for c in cases if c.decided_by == USER)
    assert by_person, "no case needed a person: the review through the REST API was not tested"
    assert len(answered) == len(by_person)
    assert (
        sorted(re.search(r"LC-\d{8}-\d{4}", a["subject"]).group(0) for a in answered) == by_person
    )
    for case in cases:
        folder = home / case.case_file
        for name in ("case-file.pdf", "case-file.html", "demand-letter.pdf", "demand-letter.html"):
            assert (folder / name).stat().st_size > 0, (case.case_id, name)
        assert list(home.glob(f"outbox/legal-case_{case.case_id}-*.eml")), case.case_id
