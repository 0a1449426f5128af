"""The DAGs under the real scheduler (``airflow standalone``), chained by the ``ledger`` asset.

``DAG.test()`` covers the tasks; this covers what only the scheduler does: an asset-triggered
``receivables_risk`` run has no logical date and must take its as-of date from the event the
ingest published — a Shanghai-midnight run whose UTC date is the day before.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from receivables.sample import generate_sample

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
AS_OF = dt.date(2025, 6, 30)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(predicate, seconds: float, what: str, proc: subprocess.Popen, log: Path):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(
                f"airflow standalone exited while waiting for {what}:\n"
                + log.read_text(errors="replace")[-4000:]
            )
        value = predicate()
        if value:
            return value
        time.sleep(2)
    pytest.fail(
        f"timed out waiting for {what}; last log lines:\n" + log.read_text(errors="replace")[-4000:]
    )


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
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
            "RECEIVABLES_HOME": str(home),
            "RECEIVABLES_TASK_RETRIES": "0",
            # only the triggered run: a scheduled one for today would take the inbox first
            "RECEIVABLES_INGEST_CRON": "none",
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
        yield env, home, proc, log
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


def test_the_scheduler_chains_ingest_and_risk_on_the_business_date(standalone):
    env, home, proc, log = standalone

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

    # the DAG processor parses the files first; then the trigger is accepted
    _wait(triggered, 240, "ledger_ingest to accept a trigger", proc, log)
    warehouse = sa.create_engine(f"sqlite:///{home / 'warehouse.db'}")
    metadata = sa.create_engine(env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"])

    def risk_run():
        with metadata.connect() as conn:
            return conn.execute(
                sa.text(
                    "SELECT run_type, state, logical_date FROM dag_run "
                    "WHERE dag_id = 'receivables_risk' AND state IN ('success', 'failed')"
                )
            ).first()

    run = _wait(risk_run, 600, "receivables_risk to finish after the ledger asset", proc, log)
    assert run.state == "success", log.read_text(errors="replace")[-4000:]
    assert run.run_type == "asset_triggered"
    assert run.logical_date is None  # nothing but the event can tell it the date
    with warehouse.connect() as conn:
        files = conn.execute(sa.text("SELECT DISTINCT as_of_date FROM ingested_files")).all()
        scores = conn.execute(sa.text("SELECT DISTINCT as_of_date FROM credit_scores")).all()
        warning_dates = conn.execute(sa.text("SELECT DISTINCT as_of_date FROM risk_warnings")).all()
        aging_dates = conn.execute(sa.text("SELECT MAX(as_of_date) FROM aging_runs")).scalar()
    assert [f[0] for f in files] == ["2025-06-30"]
    assert [s[0] for s in scores] == ["2025-06-30"]  # the event's date, not 2025-06-29 (UTC)
    assert [w[0] for w in warning_dates] in ([], ["2025-06-30"])
    assert aging_dates == "2025-06-30"  # the latest snapshot is the event's date, none later
    assert list((home / "outbox").glob("risk-digest*2025-06-30*.eml"))
