"""The as-of date of a run: logical date in the business time zone, else the asset event's."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

from receivables.airflow.context import resolve_as_of


def test_logical_date_in_business_time_zone():
    logical = dt.datetime(2013, 6, 29, 16, 0, tzinfo=dt.UTC)  # 2013-06-30 00:00 in Shanghai
    assert resolve_as_of({"logical_date": logical}, "Asia/Shanghai") == dt.date(2013, 6, 30)


def test_asset_triggered_runs_take_the_date_of_the_event():
    event = SimpleNamespace(extra={"as_of_date": "2025-06-30", "files_loaded": 4})
    context = {"logical_date": None, "triggering_asset_events": {"ledger": [event]}}
    assert resolve_as_of(context, "Asia/Shanghai") == dt.date(2025, 6, 30)


def test_several_events_take_the_latest_date():
    events = [SimpleNamespace(extra={"as_of_date": d}) for d in ("2025-06-29", "2025-06-30")]
    context = {"logical_date": None, "triggering_asset_events": {"ledger": events}}
    assert resolve_as_of(context, "Asia/Shanghai") == dt.date(2025, 6, 30)


def test_no_date_anywhere_falls_back_to_run_after():
    run = SimpleNamespace(run_after=dt.datetime(2025, 6, 30, 20, 0, tzinfo=dt.UTC))
    context = {"logical_date": None, "triggering_asset_events": {}, "dag_run": run}
    assert resolve_as_of(context, "Asia/Shanghai") == dt.date(2025, 7, 1)
