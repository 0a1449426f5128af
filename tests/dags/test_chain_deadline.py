"""Every DAG of the daily chain carries the deadline alert, and its callback emails once per run.

The callback is exercised here with the context Airflow hands a deadline callback (the run as the
REST API shows it, and the deadline); under the real scheduler in
``tests/integration/test_chain_deadline.py``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import email
import importlib
import inspect
import logging
from email import policy
from pathlib import Path

import pytest

from receivables.airflow.deadlines import CHAIN_DAGS

REPO = Path(__file__).resolve().parents[2]
DAGS = REPO / "dags"
CALLBACK = "receivables.airflow.callbacks.alert_on_missed_deadline"


@pytest.fixture(scope="module")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS), safe_mode=False)


def test_every_dag_of_the_chain_carries_the_deadline(dagbag):
    from airflow.sdk import AsyncCallback, DeadlineReference

    assert dagbag.import_errors == {}
    for dag_id in CHAIN_DAGS:
        alerts = dagbag.dags[dag_id].deadline or []
        assert len(alerts) == 1, dag_id
        alert = alerts[0]
        assert alert.reference == DeadlineReference.DAGRUN_QUEUED_AT, dag_id
        assert alert.interval == dt.timedelta(hours=2), dag_id  # 06:00 → 08:00
        assert isinstance(alert.callback, AsyncCallback), dag_id
        assert alert.callback.path == CALLBACK
        assert alert.callback.kwargs == {"chain_deadline": "08:00", "window_seconds": 7200}
        # what the triggerer imports and awaits
        module, name = alert.callback.path.rsplit(".", 1)
        assert inspect.iscoroutinefunction(getattr(importlib.import_module(module), name))
    for dag_id in set(dagbag.dag_ids) - set(CHAIN_DAGS):
        assert not dagbag.dags[dag_id].deadline, f"{dag_id} is not part of the daily chain"


def test_the_deadline_survives_serialisation(dagbag):
    """What the DAG processor stores and the scheduler reads back when it creates a run."""
    from airflow.serialization.decoders import decode_deadline_alert
    from airflow.serialization.definitions.deadline import SerializedReferenceModels
    from airflow.serialization.serialized_objects import DagSerialization

    for dag_id in CHAIN_DAGS:
        stored = DagSerialization.serialize_dag(dagbag.dags[dag_id])
        [alert] = DagSerialization.deserialize_dag(stored).deadline
        assert alert["reference"] == {"reference_type": "DagRunQueuedAtDeadline"}
        decoded = decode_deadline_alert(alert)
        assert isinstance(decoded.reference, SerializedReferenceModels.DagRunQueuedAtDeadline)
        assert decoded.interval == dt.timedelta(hours=2)
        assert decoded.callback.path == CALLBACK


def test_the_environment_sets_or_switches_off_the_deadline(monkeypatch):
    from receivables.airflow.dag_defaults import chain_deadline_alert

    monkeypatch.setenv("RECEIVABLES_CHAIN_DEADLINE", "09:30")
    assert chain_deadline_alert().interval == dt.timedelta(hours=3, minutes=30)
    assert chain_deadline_alert().name == "daily chain by 09:30 Asia/Shanghai"
    monkeypatch.setenv("RECEIVABLES_CHAIN_DEADLINE", "none")
    assert chain_deadline_alert() is None
    monkeypatch.setenv("RECEIVABLES_CHAIN_DEADLINE", "25:00")
    with pytest.raises(ValueError, match="RECEIVABLES_CHAIN_DEADLINE must be a time of day"):
        chain_deadline_alert()


def _context(**run) -> dict:
    """The context Airflow gives a deadline callback (``Deadline.handle_miss``): the run as the
    REST API serialises it, and the deadline."""
    dag_run = {
        "dag_run_id": "scheduled__2025-06-29T22:00:00+00:00",
        "dag_id": "ledger_ingest",
        "logical_date": "2025-06-29T22:00:00Z",  # 2025-06-30 06:00 in Shanghai
        "queued_at": "2025-06-29T22:00:01.5Z",
        "run_after": "2025-06-29T22:00:00Z",
        "run_type": "scheduled",
        "state": "running",
    }
    dag_run.update(run)
    return {
        "dag_run": dag_run,
        # the triggerer gets a datetime, the executor ISO text: both are read
        "deadline": {
            "id": "01a2367d-45ea-7bf7-b364-e78997fdb507",
            "deadline_time": dt.datetime(2025, 6, 30, 0, 0, 1, 500000, tzinfo=dt.UTC),
        },
    }


def _message(path: Path):
    return email.message_from_bytes(path.read_bytes(), policy=policy.default)


def test_the_alert_names_the_run_its_business_date_the_deadline_and_a_link(home, monkeypatch):
    from receivables.airflow.callbacks import send_deadline_alert

    monkeypatch.setenv("RECEIVABLES_ALERT_EMAILS", "de@example.com; oncall@example.com")
    monkeypatch.setenv("AIRFLOW__API__BASE_URL", "https://airflow.example.com/")
    delivery = send_deadline_alert(_context(), chain_deadline="08:00", window_seconds=7200)
    assert delivery.status == "sent"
    [sent] = (home / "outbox").glob("chain-deadline_*.eml")
    message = _message(sent)
    assert message["To"] == "de@example.com, oncall@example.com"
    assert message["Subject"] == (
        "[receivables] LATE: ledger_ingest for 2025-06-30 had not finished by "
        "2025-06-30 08:00:01 Asia/Shanghai"
    )
    text = message.get_body(("plain",)).get_content()
    run_url = (
        "https://airflow.example.com/dags/ledger_ingest/runs/"
        "scheduled__2025-06-29T22%3A00%3A00%2B00%3A00"
    )
    for line in (
        "DAG:        ledger_ingest",
        "Run:        scheduled__2025-06-29T22:00:00+00:00 (scheduled)",
        "As of:      2025-06-30",  # the business date, not the UTC date of the logical date
        "Deadline:   2025-06-30 08:00:01 Asia/Shanghai (2025-06-30 00:00:01 UTC)",
        "Queued:     2025-06-30 06:00:01 Asia/Shanghai",
        "State:      running",
        f"Link:       {run_url}",
    ):
        assert f"{line}\n" in text
    assert "each run of the chain has 2:00 from being queued" in text
    assert "waiting for the warehouse's writer lock" in text
    assert f'<a href="{run_url}">' in message.get_body(("html",)).get_content()


def test_one_email_per_run_whatever_repeats(home):
    from receivables.airflow.callbacks import send_deadline_alert

    context = _context()
    assert send_deadline_alert(context, chain_deadline="08:00").status == "sent"
    assert send_deadline_alert(context, chain_deadline="08:00").status == "duplicate"
    assert len(list((home / "outbox").glob("chain-deadline_*.eml"))) == 1
    # another run of the same DAG has its own email
    later = _context(dag_run_id="scheduled__2025-06-30T22:00:00+00:00")
    assert send_deadline_alert(later, chain_deadline="08:00").status == "sent"
    assert len(list((home / "outbox").glob("chain-deadline_*.eml"))) == 2


def test_asset_triggered_failed_and_waiting_runs_say_so(home):
    from receivables.airflow.callbacks import send_deadline_alert

    risk = _context(
        dag_id="receivables_risk",
        dag_run_id="asset_triggered__2025-06-29T22:20:00+00:00",
        logical_date=None,  # asset-triggered: the date is in the event
        run_type="asset_triggered",
        state="failed",
    )
    send_deadline_alert(risk)
    legal = _context(
        dag_id="legal_escalation",
        dag_run_id="asset_triggered__2025-06-29T22:30:00+00:00",
        logical_date=None,
        run_type="asset_triggered",
    )
    send_deadline_alert(legal)
    [risk_mail] = (home / "outbox").glob("chain-deadline_receivables_risk_*.eml")
    [legal_mail] = (home / "outbox").glob("chain-deadline_legal_escalation_*.eml")
    risk_text = _message(risk_mail).get_body(("plain",)).get_content()
    assert "As of:      the date of the asset event that started the run\n" in risk_text
    assert "The run failed: its task's failure alert says why." in risk_text
    assert _message(risk_mail)["Subject"] == (
        "[receivables] LATE: receivables_risk had not finished by 2025-06-30 08:00:01 Asia/Shanghai"
    )
    legal_text = _message(legal_mail).get_body(("plain",)).get_content()
    assert "legal_escalation waits for people" in legal_text


def test_the_async_callback_sends_from_a_worker_thread(home):
    """What the triggerer awaits (``CallbackTrigger``): the same email, the event loop free."""
    from receivables.airflow.callbacks import alert_on_missed_deadline

    asyncio.run(alert_on_missed_deadline(context=_context(), chain_deadline="08:00"))
    assert len(list((home / "outbox").glob("chain-deadline_ledger_ingest_*.eml"))) == 1


def test_an_alert_that_cannot_be_sent_is_logged_loudly_and_raised(home, caplog, monkeypatch):
    from receivables.airflow.callbacks import send_deadline_alert

    with caplog.at_level(logging.ERROR), pytest.raises(ValueError, match="names no DAG run"):
        send_deadline_alert({"deadline": {}})
    assert "COULD NOT SEND THE DEADLINE ALERT" in caplog.text
    caplog.clear()
    monkeypatch.setenv("RECEIVABLES_TIMEZONE", "Mars/Olympus_Mons")  # settings refuse it
    with caplog.at_level(logging.ERROR), pytest.raises(ValueError, match="RECEIVABLES_TIMEZONE"):
        send_deadline_alert(_context())
    assert "COULD NOT SEND THE DEADLINE ALERT for ledger_ingest run scheduled__" in caplog.text
    assert not list((home / "outbox").glob("chain-deadline_*.eml"))
