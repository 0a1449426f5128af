"""The daily chain's deadline alert under the real scheduler (``airflow standalone``).

Only the scheduler watches deadlines: it creates a run's deadline when the run is queued, notices
when it passed while the run had not finished, and hands the callback to the triggerer, which
emails the data engineers through the project's outbox. Here the ingest is held past its
deadline the way a real day can be: another writer holds the warehouse's lock, so its tasks
wait. The window is made 30 seconds (``RECEIVABLES_CHAIN_DEADLINE=00:00:30`` with triggered runs
only: the window counts from midnight).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import email
import json
import os
import signal
import subprocess
import sys
from email import policy
from pathlib import Path
from urllib.parse import quote

import pytest
import sqlalchemy as sa

from receivables.sample import generate_sample
from tests.integration.test_scheduler import REPO, _free_port, _wait

BIN = Path(sys.executable).parent
AS_OF = dt.date(2025, 6, 30)
WINDOW = dt.timedelta(seconds=30)


@pytest.fixture
def standalone(tmp_path):
    port = _free_port()
    home = tmp_path / "var"
    airflow_home = tmp_path / "airflow"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "RECEIVABLES"))}
    env.update(
        {
            "PATH": f"{BIN}{os.pathsep}{env.get('PATH', '')}",
            "AIRFLOW_HOME": str(airflow_home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{airflow_home / 'airflow.db'}",
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(port),
            "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{port}",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
            "AIRFLOW__CORE__PARALLELISM": "4",  # a few task processes at a time: two cores
            # the log servers' ports too: other Airflow instances may run on this machine
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(_free_port()),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(_free_port()),
            "RECEIVABLES_HOME": str(home),
            "RECEIVABLES_TASK_RETRIES": "0",
            "RECEIVABLES_ALERT_EMAILS": "oncall@example.com",
            # triggered runs only, so the window counts from midnight: 30 seconds
            "RECEIVABLES_INGEST_CRON": "none",
            "RECEIVABLES_CHAIN_DEADLINE": "00:00:30",
            "RECEIVABLES_MODEL_CRON": "none",
            "RECEIVABLES_QUARTERLY_CRON": "none",
            "RECEIVABLES_MONTHLY_CRON": "none",
        }
    )
    subprocess.run([str(BIN / "receivables"), "init"], env=env, check=True, capture_output=True)
    generate_sample(home / "inbox", 40, AS_OF, seed=8)
    subprocess.run(
        [str(BIN / "airflow"), "db", "migrate"], env=env, check=True, capture_output=True
    )
    log = tmp_path / "standalone.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(BIN / "airflow"), "standalone"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield env, home, port, proc, log
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


def _deadline_emails(home: Path, dag_id: str) -> list[Path]:
    return sorted((home / "outbox").glob(f"chain-deadline_{dag_id}_*.eml"))


@pytest.mark.timeout(600)
def test_a_run_held_past_its_deadline_emails_the_data_engineers_once(standalone, monkeypatch):
    from receivables.warehouse.locks import warehouse_lock

    env, home, port, proc, log = standalone
    warehouse = sa.create_engine(f"sqlite:///{home / 'warehouse.db'}")
    metadata = sa.create_engine(env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"])

    def parsed() -> bool:
        # the DAG processor has written the DAG, with its deadline alert
        with metadata.connect() as conn:
            return bool(
                conn.execute(
                    sa.text(
                        "SELECT 1 FROM deadline_alert a JOIN serialized_dag s "
                        "ON s.id = a.serialized_dag_id WHERE s.dag_id = 'ledger_ingest'"
                    )
                ).first()
            )

    def triggered() -> bool:
        done = subprocess.run(
            [
                str(BIN / "airflow"),
                "dags",
                "trigger",
                "ledger_ingest",
                "--logical-date",
                "2025-06-30T00:00:00+08:00",
            ],
            env=env,
            capture_output=True,
            text=True,
        )
        return done.returncode == 0

    with contextlib.ExitStack() as held:
        # another writer has the warehouse: the ingest's tasks wait for it, past the deadline
        held.enter_context(warehouse_lock(warehouse, "the deadline test, holding the ingest"))
        _wait(parsed, 240, "the DAG processor to write ledger_ingest", proc, log)
        _wait(triggered, 60, "ledger_ingest to accept a trigger", proc, log)
        sent = _wait(
            lambda: _deadline_emails(home, "ledger_ingest"),
            240,
            "the deadline alert in the outbox",
            proc,
            log,
        )

        def deadline_row():
            with metadata.connect() as conn:
                return conn.execute(
                    sa.text(
                        "SELECT r.run_id, r.logical_date, r.queued_at, r.state AS run_state, "
                        "d.deadline_time, d.missed, c.type, c.state, c.data "
                        "FROM deadline d JOIN dag_run r ON r.id = d.dagrun_id "
                        "JOIN callback c ON c.id = d.callback_id "
                        "WHERE r.dag_id = 'ledger_ingest' AND c.state IN ('success', 'failed')"
                    )
                ).one_or_none()

        # the triggerer reports the callback's outcome to the scheduler
        deadline = _wait(deadline_row, 120, "the callback's outcome", proc, log)

    assert _utc(deadline.logical_date) == dt.datetime(2025, 6, 29, 16, tzinfo=dt.UTC)
    assert deadline.run_state != "success"  # still held by the lock
    assert deadline.missed  # Airflow saw the run miss it: the scheduler never fires it again
    assert (deadline.type, deadline.state) == ("triggerer", "success")  # the triggerer ran it
    queued_at = _utc(deadline.queued_at)
    deadline_time = _utc(deadline.deadline_time)
    assert deadline_time == queued_at + WINDOW  # DAGRUN_QUEUED_AT + the window

    assert len(sent) == 1
    message = email.message_from_bytes(sent[0].read_bytes(), policy=policy.default)
    assert message["To"] == "oncall@example.com"
    shanghai = deadline_time.astimezone(dt.timezone(dt.timedelta(hours=8)))
    shown = f"{shanghai:%Y-%m-%d %H:%M:%S} Asia/Shanghai"
    assert message["Subject"] == (
        f"[receivables] LATE: ledger_ingest for 2025-06-30 had not finished by {shown}"
    )
    text = message.get_body(("plain",)).get_content()
    assert "DAG:        ledger_ingest\n" in text
    assert f"Run:        {deadline.run_id} (manual)\n" in text
    # the business date of a run whose logical date is 2025-06-29 16:00 UTC
    assert "As of:      2025-06-30\n" in text
    assert f"Deadline:   {shown} ({deadline_time:%Y-%m-%d %H:%M:%S} UTC)\n" in text
    assert "RECEIVABLES_CHAIN_DEADLINE 00:00:30: each run of the chain has 0:00:30" in text
    link = f"http://127.0.0.1:{port}/dags/ledger_ingest/runs/{quote(deadline.run_id)}"
    assert f"Link:       {link}\n" in text
    html = message.get_body(("html",)).get_content()
    assert f'<a href="{link}">' in html

    # The same alert again, exactly as Airflow handed it to the callback (a repeat, a second
    # alert on the run): the run's email is not sent twice.
    from airflow.serialization.serialized_objects import BaseSerialization

    from receivables.airflow.callbacks import send_deadline_alert

    data = BaseSerialization.deserialize(json.loads(deadline.data))
    kwargs = dict(data["kwargs"])
    context = kwargs.pop("context")
    assert context["dag_run"]["dag_run_id"] == deadline.run_id
    # the run's state when the deadline passed (held: queued or running)
    assert context["dag_run"]["state"] in ("queued", "running")
    assert f"State:      {context['dag_run']['state']}\n" in text
    monkeypatch.setenv("RECEIVABLES_HOME", str(home))
    monkeypatch.setenv("RECEIVABLES_ALERT_EMAILS", "oncall@example.com")
    assert send_deadline_alert(context, **kwargs).status == "duplicate"
    assert _deadline_emails(home, "ledger_ingest") == sent


def _utc(value) -> dt.datetime:
    """A moment read from Airflow's SQLite metadata (naive UTC text or a datetime)."""
    moment = value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(str(value))
    return moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment.astimezone(dt.UTC)
