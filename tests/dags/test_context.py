"""The as-of date of a run: logical date in the business time zone, else the asset event's."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

from receivables.airflow.context import resolve_as_of, resolve_as_of_dates


def test_logical_date_in_business_time_zone():
    logical = dt.datetime(2013, 6, 29, 16, 0, tzinfo=dt.UTC)  # 2013-06-30 00:00 in Shanghai
    assert resolve_as_of({"logical_date": logical}, "Asia/Shanghai") == dt.date(2013, 6, 30)


def test_asset_triggered_runs_take_the_date_of_the_event():
    event = SimpleNamespace(extra={"as_of_date": "2025-06-30", "files_loaded": 4})
    context = {"logical_date": None, "triggering_asset_events": {"ledger": [event]}}
    assert resolve_as_of(context, "Asia/Shanghai") == dt.date(2025, 6, 30)


def test_queued_events_give_every_date_in_order():
    # three ingest runs finished while the risk DAG was busy: none of their dates is skipped
    events = [
        SimpleNamespace(extra={"as_of_date": d})
        for d in ("2025-06-30", "2025-06-28", "2025-06-29", "2025-06-30")
    ]
    context = {"logical_date": None, "triggering_asset_events": {"ledger": events}}
    assert resolve_as_of_dates(context, "Asia/Shanghai") == [
        dt.date(2025, 6, 28),
        dt.date(2025, 6, 29),
        dt.date(2025, 6, 30),
    ]
    assert resolve_as_of(context, "Asia/Shanghai") == dt.date(2025, 6, 30)


def test_an_event_carrying_several_dates_gives_all_of_them():
    event = SimpleNamespace(
        extra={"as_of_date": "2025-06-30", "as_of_dates": ["2025-06-29", "2025-06-30"]}
    )
    context = {"logical_date": None, "triggering_asset_events": {"risk": [event]}}
    assert resolve_as_of_dates(context, "Asia/Shanghai") == [
        dt.date(2025, 6, 29),
        dt.date(2025, 6, 30),
    ]


def test_no_date_anywhere_falls_back_to_run_after():
    run = SimpleNamespace(run_after=dt.datetime(2025, 6, 30, 20, 0, tzinfo=dt.UTC))
    context = {"logical_date": None, "triggering_asset_events": {}, "dag_run": run}
    assert resolve_as_of(context, "Asia/Shanghai") == dt.date(2025, 7, 1)


def test_a_risk_step_runs_for_every_queued_date_in_order(monkeypatch, home):
    from receivables.airflow import runtime

    events = [SimpleNamespace(extra={"as_of_date": d}) for d in ("2025-06-30", "2025-06-29")]
    context = {"logical_date": None, "triggering_asset_events": {"ledger": events}}
    monkeypatch.setattr(runtime, "get_current_context", lambda: context)
    monkeypatch.setenv("RECEIVABLES_DB_URL", "sqlite:///unused.db")
    seen = []

    def step(*, settings, db_url, as_of):
        seen.append(as_of)
        return {"as_of_date": as_of.isoformat()}

    result = runtime.run_step(step)
    assert seen == [dt.date(2025, 6, 29), dt.date(2025, 6, 30)]
    assert list(result) == ["2025-06-29", "2025-06-30"]
