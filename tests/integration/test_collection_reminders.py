"""The ``collection_reminders`` DAG run by Airflow after the ledger and risk DAGs, on SQLite and
PostgreSQL: reminders as ``.eml`` files without SendGrid, through SendGrid's API (the contract
mock) with it; re-running the date sends nothing twice."""

from __future__ import annotations

import datetime as dt
import email
import json
from collections import Counter
from email import policy as email_policy
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from receivables.dates import start_of_business_day
from receivables.sample import generate_sample
from receivables.warehouse.db import create_engine
from receivables.warehouse.migrate import upgrade
from receivables.warehouse.schema import reminder_invoices, reminders

AS_OF = dt.date(2025, 6, 30)
TZ = "Asia/Shanghai"
TASKS = ("plan_reminders", "list_send_batches", "send_reminders", "summarize_reminders")


@pytest.fixture
def warehouse(home, db_url, monkeypatch, airflow_db):
    monkeypatch.setenv("RECEIVABLES_DB_URL", db_url)
    engine = create_engine(db_url)
    upgrade(engine)
    yield engine
    engine.dispose()


def run(dag_id: str, day: dt.date = AS_OF):
    from receivables.airflow.runner import run_dag

    report = run_dag(dag_id, start_of_business_day(day, TZ))
    assert report.ok, (dag_id, report.tasks)
    return report


def prepare(home, customers: int = 80, day: dt.date = AS_OF) -> None:
    generate_sample(home / "inbox", customers, day, seed=11)
    run("ledger_ingest", day)
    run("receivables_risk", day)


def rows(engine) -> list:
    with engine.connect() as conn:
        return conn.execute(sa.select(reminders).order_by(reminders.c.reminder_id)).all()


def reminder_files(home) -> list:
    found = []
    for path in sorted((home / "outbox").glob("*.eml")):
        message = email.message_from_bytes(path.read_bytes(), policy=email_policy.default)
        if message["X-Receivables-Category"] == "reminder":
            found.append(message)
    return found


def test_reminders_are_planned_and_written_to_the_outbox_once(warehouse, home):
    prepare(home)
    report = run("collection_reminders")
    for task_id in TASKS:
        states = [state for task, _, state in report.tasks if task == task_id]
        assert states, task_id
        assert set(states) == {"success"}, (task_id, states)
    planned = rows(warehouse)
    statuses = Counter(r.status for r in planned)
    assert statuses["sent"] > 0
    assert statuses["pending"] == statuses["sending"] == 0
    assert {r.locale for r in planned if r.status == "sent"} == {"en", "zh-CN"}
    for r in planned:
        if r.status == "refused":
            assert r.rule
            assert r.reason.startswith(f"{r.rule}: ")
    messages = reminder_files(home)
    assert len(messages) == statuses["sent"]
    keys = {m["X-Receivables-Key"] for m in messages}
    assert keys == {r.idempotency_key for r in planned if r.status == "sent"}
    with warehouse.connect() as conn:
        lines = conn.execute(sa.select(sa.func.count()).select_from(reminder_invoices)).scalar()
    assert lines >= len(planned)
    chinese = [m for m in messages if any("\u4e00" <= ch <= "\u9fff" for ch in m["Subject"])]
    assert chinese, "zh-CN customers get Chinese subjects"
    for message in messages:
        assert "/receivables/preferences/" in message.get_body(("plain",)).get_content()

    # the same date again: nothing new planned, nothing sent twice
    again = run("collection_reminders")
    assert [s for t, _, s in again.tasks if t == "send_reminders"] in (["skipped"], [])
    assert rows(warehouse) == planned
    assert len(reminder_files(home)) == len(messages)


def test_reminders_go_through_sendgrids_api(warehouse, home, monkeypatch, sendgrid_mock):
    monkeypatch.setenv(
        "AIRFLOW_CONN_SENDGRID_DEFAULT",
        json.dumps({"conn_type": "http", "password": "SG.test-key", "host": sendgrid_mock}),
    )
    # today: SendGrid gets a reminder only close to its planned moment
    today = dt.datetime.now(dt.UTC).astimezone(ZoneInfo(TZ)).date()
    prepare(home, customers=40, day=today)
    run("collection_reminders", today)
    planned = rows(warehouse)
    sent = [r for r in planned if r.status == "sent"]
    assert sent
    assert not [r for r in planned if r.rule == "too_late"]
    assert {r.provider for r in sent} == {"sendgrid"}
    assert all(r.provider_message_id is None for r in sent), "the mock sends no X-Message-Id"
    assert not [r for r in planned if r.status == "failed"], [r.reason for r in planned]
    assert reminder_files(home) == [], "nothing written to the outbox when SendGrid is set"
