"""Drive the real DAGs through Airflow for one date (``receivables run``, the demo, the tests).

Airflow's own ``DAG.test()`` runs every task of a DAG run in this process, against a real
metadata database: the same DAG files, tasks, XComs, asset events and callbacks as under the
scheduler, without one. Airflow is configured from ``$RECEIVABLES_HOME/airflow`` unless the
environment already says otherwise, and its verbose output goes to a log file.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from receivables.config import Settings
from receivables.dates import is_quarter_start
from receivables.paths import DAGS_DIR, PLUGINS_DIR

log = logging.getLogger(__name__)

#: Runs on the first day of a month, after the ingest and before the risk DAG scores.
MONTHLY_DAG = "credit_model"
#: On the first of a month, after the daily DAGs: the month that just ended.
MONTHLY_REPORT_DAG = "monthly_report"
QUARTERLY_DAG = "quarterly_evaluation"
#: Asks a person about each proposed case: ``run_dag`` answers through Airflow's API.
LEGAL_DAG = "legal_escalation"


def dags_for(day: dt.date) -> list[str]:
    """The DAGs ``receivables run`` drives for ``day``, in order (only those that exist)."""
    plan = ["ledger_ingest"]
    if day.day == 1:
        plan.append(MONTHLY_DAG)
    plan += ["receivables_risk", "collection_reminders", LEGAL_DAG]
    if day.day == 1:
        plan.append(MONTHLY_REPORT_DAG)
    if is_quarter_start(day):
        plan.append(QUARTERLY_DAG)
    return [d for d in plan if (DAGS_DIR / f"{d}.py").exists()]


def airflow_environment(settings: Settings) -> dict[str, str]:
    """Airflow settings for this project (only where the environment sets nothing)."""
    home = settings.airflow_home
    wanted = {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_DIR),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(PLUGINS_DIR),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DEFAULT_TIMEZONE": settings.timezone,
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
        "RECEIVABLES_HOME": str(settings.home),
    }
    return {key: os.environ.get(key, value) for key, value in wanted.items()}


def prepare_airflow(settings: Settings) -> dict[str, str]:
    """Export the Airflow environment and migrate its metadata DB once per Airflow version.

    Must run before Airflow is imported in this process.
    """
    if "airflow.configuration" in sys.modules:
        log.debug("Airflow already imported: its configuration is already fixed")
    env = airflow_environment(settings)
    os.environ.update(env)
    home = Path(env["AIRFLOW_HOME"])
    home.mkdir(parents=True, exist_ok=True)
    from importlib.metadata import version

    stamp = home / f".migrated-{version('apache-airflow-core')}"
    if not stamp.exists():
        airflow = Path(sys.executable).with_name("airflow")
        log.info("initialising the Airflow metadata database in %s", home)
        done = subprocess.run(
            [str(airflow), "db", "migrate"],
            env={**os.environ, **env},
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"`airflow db migrate` failed:\n{done.stdout}\n{done.stderr}")
        stamp.touch()
    return env


@dataclass
class DagRunReport:
    """How one DAG run went."""

    dag_id: str
    state: str
    seconds: float
    tasks: list[tuple[str, int, str]] = field(default_factory=list)
    run_id: str = ""

    @property
    def ok(self) -> bool:
        """Succeeded, every task succeeded or was skipped, and at least one task really ran."""
        ran = [t for t in self.tasks if t[2] == "success"]
        return (
            self.state == "success"
            and bool(ran)
            and all(t[2] in ("success", "skipped") for t in self.tasks)
        )

    @property
    def failed_tasks(self) -> list[str]:
        """Task ids (with map index) that did not succeed or skip."""
        return [
            f"{task}[{index}]" if index >= 0 else task
            for task, index, state in self.tasks
            if state not in ("success", "skipped")
        ]


@contextlib.contextmanager
def output_to(log_file: Path | None) -> Iterator[None]:
    """Send everything written to stdout/stderr (Airflow's logs included) to ``log_file``."""
    if log_file is None:
        yield
        return
    log_file.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with log_file.open("ab") as target:
        os.dup2(target.fileno(), 1)
        os.dup2(target.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


def load_dag(dag_id: str):
    """Parse ``dags/<dag_id>.py`` and return the DAG (import errors are raised, not hidden)."""
    from airflow.dag_processing.dagbag import DagBag

    path = DAGS_DIR / f"{dag_id}.py"
    if not path.exists():
        raise FileNotFoundError(f"no DAG file {path}")
    bag = DagBag(dag_folder=str(path), safe_mode=False)
    if bag.import_errors:
        raise RuntimeError(f"{dag_id} does not parse: {bag.import_errors}")
    return bag.get_dag(dag_id)


def run_dag(
    dag_id: str,
    logical_date: dt.datetime,
    conf: dict | None = None,
    log_file: Path | None = None,
    legal_review: str = "later",
) -> DagRunReport:
    """Run one DAG for ``logical_date`` with ``DAG.test()`` and report every task's state.

    The legal DAG's reviews are answered ``legal_review`` (``approve``, ``reject`` or
    ``later``) through Airflow's REST API while it runs (see
    :mod:`receivables.airflow.approvals`): ``DAG.test()`` alone would wait for a person
    forever."""
    from receivables.airflow.approvals import ReviewAnswerer, ReviewError, dag_test_run_id

    started = time.monotonic()
    run_after = dt.datetime.now(dt.UTC)
    answerer = None
    if dag_id == LEGAL_DAG:
        answerer = ReviewAnswerer(dag_id, dag_test_run_id(logical_date, run_after), legal_review)
    with output_to(log_file), _interruptible(answerer is not None):
        dag = load_dag(dag_id)
        # No scheduler watches deadlines under DAG.test(), and Airflow 3.3's DAG.test() fails at
        # the end of a successful run of a DAG that carries one (apache/airflow#73428): the run
        # is tested without it. The DAG files keep theirs for the scheduler.
        dag.deadline = None
        if answerer:
            answerer.start()
        try:
            dag_run = dag.test(logical_date=logical_date, run_after=run_after, run_conf=conf or {})
        except KeyboardInterrupt:
            if answerer and answerer.errors:
                raise ReviewError(answerer.errors[-1]) from None
            raise
        finally:
            if answerer:
                answerer.stop()
        tasks = sorted(
            (ti.task_id, ti.map_index, _state(ti.state)) for ti in dag_run.get_task_instances()
        )
    return DagRunReport(
        dag_id=dag_id,
        state=_state(dag_run.state),
        seconds=time.monotonic() - started,
        tasks=tasks,
        run_id=dag_run.run_id,
    )


@contextlib.contextmanager
def _interruptible(needed: bool) -> Iterator[None]:
    """Python's own SIGINT handler while the legal DAG runs: the review answerer stops a run it
    cannot answer by interrupting the main thread, which does nothing under the default action
    (an embedding program, or Airflow code run earlier in the process, may have set it)."""
    if not needed or threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous if previous is not None else signal.SIG_DFL)


def _state(state) -> str:
    # Airflow's states are str enums, sometimes plain strings, None before a task is scheduled
    if state is None:
        return "none"
    return str(getattr(state, "value", state))
