"""DAG integrity and policy: every DAG parses, is documented, owned, alerting, cheap to parse."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DAGS = REPO / "dags"
EXPECTED = {
    "ledger_ingest",
    "receivables_risk",
    "credit_model",
    "collection_reminders",
    "legal_escalation",
    "quarterly_evaluation",
    "monthly_report",
}


@pytest.fixture(scope="module")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS), safe_mode=False)


def test_every_dag_parses(dagbag):
    assert dagbag.import_errors == {}
    assert set(dagbag.dag_ids) >= EXPECTED


def test_dag_policy(dagbag):
    from receivables.airflow.callbacks import alert_on_failure

    for dag_id in dagbag.dag_ids:
        dag = dagbag.dags[dag_id]
        assert Path(dag.fileloc).stem == dag_id
        assert dag.doc_md
        assert "**Writes**" in dag.doc_md
        assert "**Sends**" in dag.doc_md
        assert dag.tags
        assert "receivables" in dag.tags
        assert dag.catchup is False
        assert dag.max_active_runs == 1
        # early enough for historical ledgers: a run before start_date silently runs nothing
        assert dag.start_date <= dt.datetime(2000, 1, 2, tzinfo=dt.UTC)
        for task in dag.tasks:
            assert task.owner == "receivables-data-engineering", task.task_id
            callbacks = task.on_failure_callback
            callbacks = callbacks if isinstance(callbacks, list) else [callbacks]
            assert alert_on_failure in callbacks, task.task_id
            assert re.fullmatch(r"[a-z]+(_[a-z]+)+", task.task_id), task.task_id


def test_every_task_has_an_execution_timeout(dagbag):
    """A stuck task (a file that never ends, a lock never granted) must not hold a run forever."""
    from receivables.airflow.dag_defaults import task_timeout
    from receivables.warehouse.locks import default_timeout_seconds

    for dag_id in dagbag.dag_ids:
        for task in dagbag.dags[dag_id].tasks:
            assert task.execution_timeout == task_timeout(), f"{dag_id}.{task.task_id}"
            # a task waiting for the warehouse's lock gives up, saying why, before it is killed
            assert default_timeout_seconds() <= task.execution_timeout.total_seconds() / 2


def test_the_task_timeout_is_configurable(monkeypatch):
    from receivables.airflow.dag_defaults import default_args

    monkeypatch.delenv("RECEIVABLES_TASK_TIMEOUT_MINUTES", raising=False)
    # room for a million-row day (minutes), not for a task stuck for good
    assert default_args()["execution_timeout"] == dt.timedelta(minutes=120)
    monkeypatch.setenv("RECEIVABLES_TASK_TIMEOUT_MINUTES", "45")
    assert default_args()["execution_timeout"] == dt.timedelta(minutes=45)
    for bad in ("never", "0", "-5", "inf"):
        monkeypatch.setenv("RECEIVABLES_TASK_TIMEOUT_MINUTES", bad)
        with pytest.raises(ValueError, match="RECEIVABLES_TASK_TIMEOUT_MINUTES must be"):
            default_args()


def test_retries_default_to_two_outside_the_cli(monkeypatch):
    from receivables.airflow.dag_defaults import default_args

    monkeypatch.delenv("RECEIVABLES_TASK_RETRIES", raising=False)
    assert default_args()["retries"] == 2


def test_assets_chain_the_dags(dagbag):
    from receivables.airflow import assets

    ingest = dagbag.dags["ledger_ingest"]
    risk = dagbag.dags["receivables_risk"]
    assert [a.name for a in ingest.get_task("summarize_ingest").outlets] == ["ledger"]
    assert [a.name for a in risk.get_task("raise_risk_warnings").outlets] == ["risk"]
    # the asset is published only once every risk table is written
    assert risk.get_task("raise_risk_warnings").upstream_task_ids == {"score_customers"}
    assert list(risk.timetable.asset_condition.objects) == [assets.LEDGER]


def test_legal_escalation_asks_a_person_per_case(dagbag):
    from receivables.airflow import assets
    from receivables.airflow.review import CaseReview

    dag = dagbag.dags["legal_escalation"]
    assert list(dag.timetable.asset_condition.objects) == [assets.RISK]
    review = dag.get_task("review_case")
    assert issubclass(review.operator_class, CaseReview)
    assert review.upstream_task_ids == {"list_reviews"}
    assert dag.get_task("list_reviews").upstream_task_ids == {"propose_cases"}
    opened = dag.get_task("open_cases")
    assert opened.upstream_task_ids == {"review_case"}
    # a skipped review (none waiting, or no answer in time) must not stop approved cases
    assert opened.trigger_rule == "none_failed"
    assert dag.get_task("summarize_cases").upstream_task_ids == {"open_cases"}


def test_the_quarterly_evaluation_runs_on_quarter_starts_and_writes_before_it_sends(dagbag):
    dag = dagbag.dags["quarterly_evaluation"]
    assert dag.timetable.expression == "0 7 1 1,4,7,10 *"
    assert dag.get_task("write_report").upstream_task_ids == {"prepare_quarter"}
    assert dag.get_task("send_report").upstream_task_ids == {"write_report"}


def test_the_monthly_report_runs_on_the_first_of_a_month(dagbag):
    dag = dagbag.dags["monthly_report"]
    assert dag.timetable.expression == "0 7 1 * *"
    assert dag.get_task("write_report").upstream_task_ids == {"prepare_month"}
    assert dag.get_task("send_report").upstream_task_ids == {"write_report"}


def test_ingest_runs_kinds_in_loading_order(dagbag):
    dag = dagbag.dags["ledger_ingest"]
    from receivables.ingest.kinds import ordered_kinds

    # every kind has its task, chained in the kinds' loading order
    order = [f"ingest_{kind.name}" for kind in ordered_kinds()]
    assert order[-2:] == ["ingest_legal_updates", "ingest_feedback"]
    for earlier, later in itertools.pairwise(order):
        assert earlier in dag.get_task(later).upstream_task_ids
    for task_id in order:
        assert dag.get_task(task_id).max_active_tis_per_dagrun == 1


def test_parsing_imports_nothing_heavy():
    """Parsing the DAG files must not import pandas, GX, pyarrow, sendgrid or the SQL layer."""
    probe = (
        "import sys, json\n"
        "from airflow.dag_processing.dagbag import DagBag\n"
        "before = set(sys.modules)\n"
        f"bag = DagBag(dag_folder={str(DAGS)!r}, safe_mode=False)\n"
        "assert not bag.import_errors, bag.import_errors\n"
        "print(json.dumps(sorted(set(sys.modules) - before)))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    added = {m.split(".")[0] for m in json.loads(done.stdout.strip().splitlines()[-1])}
    heavy = {"pandas", "great_expectations", "pyarrow", "sendgrid", "openpyxl", "numpy"}
    assert not added & heavy, sorted(added & heavy)
    assert not any(m.startswith("receivables.ingest") for m in added)


def test_schedules_are_configurable(monkeypatch):
    from receivables.airflow.dag_defaults import timetable

    assert timetable("RECEIVABLES_TEST_CRON", "0 6 * * *").expression == "0 6 * * *"
    monkeypatch.setenv("RECEIVABLES_TEST_CRON", "30 7 * * 1-5")
    assert timetable("RECEIVABLES_TEST_CRON", "0 6 * * *").expression == "30 7 * * 1-5"
    monkeypatch.setenv("RECEIVABLES_TEST_CRON", "none")
    assert timetable("RECEIVABLES_TEST_CRON", "0 6 * * *") is None
