"""The daily chain's deadline: what ``RECEIVABLES_CHAIN_DEADLINE`` accepts, the deadline it gives.

``receivables.airflow.deadlines`` explains the choice: every DAG of the chain is due its *window*
(from the daily ingest's scheduled start to the deadline) after it was queued.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from receivables.airflow.deadlines import (
    ChainDeadline,
    chain_deadline,
    earliest_start,
    parse_time_of_day,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("08:00", dt.time(8, 0)),
        ("8:00", dt.time(8, 0)),
        (" 07:30 ", dt.time(7, 30)),
        ("23:59", dt.time(23, 59)),
        ("00:00:30", dt.time(0, 0, 30)),
        ("", dt.time(8, 0)),  # empty: the default
        (None, dt.time(8, 0)),  # unset: the default
        ("   ", dt.time(8, 0)),
    ],
)
def test_a_time_of_day_is_read(text, expected):
    assert parse_time_of_day(text) == expected


@pytest.mark.parametrize("text", ["none", "NONE", " None "])
def test_none_switches_the_deadline_off(text):
    assert parse_time_of_day(text) is None
    assert chain_deadline({"RECEIVABLES_CHAIN_DEADLINE": text}) is None


@pytest.mark.parametrize(
    "text",
    [
        *("25:00", "24:00", "8h", "08:60", "8", "0800", "08:00 pm", "-1:00", "08:00:60", "8.00"),
        "８:00",  # a full-width digit is not one of 0-9
    ],
)
def test_anything_else_is_refused_naming_the_variable(text):
    with pytest.raises(ValueError, match=r"^RECEIVABLES_CHAIN_DEADLINE must be a time of day") as e:
        parse_time_of_day(text)
    assert repr(text.strip()) in str(e.value)  # and what was given


@pytest.mark.parametrize(
    ("cron", "start"),
    [
        ("0 6 * * *", dt.time(6, 0)),
        (None, dt.time(6, 0)),  # the ingest's default schedule
        ("", dt.time(6, 0)),
        ("30 7 * * 1-5", dt.time(7, 30)),
        ("0 6,18 * * *", dt.time(6, 0)),  # several a day: the earliest
        ("*/15 6-8 * * *", dt.time(6, 0)),
        ("@daily", dt.time(0, 0)),
        ("none", dt.time(0, 0)),  # triggered runs only: the business day starts at midnight
    ],
)
def test_the_chain_starts_at_the_ingests_earliest_scheduled_time(cron, start):
    assert earliest_start(cron) == start


def test_a_broken_ingest_schedule_is_named():
    with pytest.raises(ValueError, match=r"^RECEIVABLES_INGEST_CRON='0 25 \* \* \*' is not a cron"):
        earliest_start("0 25 * * *")


def test_the_window_runs_from_the_ingests_start_to_the_deadline():
    assert chain_deadline({}).window == dt.timedelta(hours=2)  # 06:00 → 08:00
    assert chain_deadline({}).timezone == "Asia/Shanghai"
    weekdays = {"RECEIVABLES_INGEST_CRON": "30 7 * * 1-5", "RECEIVABLES_CHAIN_DEADLINE": "9:00"}
    assert chain_deadline(weekdays).window == dt.timedelta(hours=1, minutes=30)
    triggered = {"RECEIVABLES_INGEST_CRON": "none", "RECEIVABLES_CHAIN_DEADLINE": "00:00:30"}
    assert chain_deadline(triggered).window == dt.timedelta(seconds=30)
    assert chain_deadline(triggered).label == "00:00:30"
    assert chain_deadline({"RECEIVABLES_TIMEZONE": "Europe/Berlin"}).timezone == "Europe/Berlin"


@pytest.mark.parametrize("at", ["06:00", "05:00", "00:00"])
def test_a_deadline_not_after_the_chains_start_is_refused(at):
    with pytest.raises(ValueError, match=f"^RECEIVABLES_CHAIN_DEADLINE={at} is not after") as e:
        chain_deadline({"RECEIVABLES_CHAIN_DEADLINE": at})
    assert "06:00 (RECEIVABLES_INGEST_CRON='0 6 * * *', business time)" in str(e.value)


def test_the_scheduled_ingest_is_due_at_the_business_deadline_not_the_utc_one():
    # the scheduled ingest of 2025-06-30 is queued at 06:00 in Shanghai: 2025-06-29 22:00 UTC
    deadline = chain_deadline({})
    queued = dt.datetime(2025, 6, 30, 6, 0, tzinfo=SHANGHAI)
    assert queued.astimezone(dt.UTC) == dt.datetime(2025, 6, 29, 22, 0, tzinfo=dt.UTC)
    due = deadline.deadline_of(queued)
    # 08:00 in Shanghai on the 30th, which is midnight UTC: not 08:00 UTC, not the 29th
    assert due == dt.datetime(2025, 6, 30, 0, 0, tzinfo=dt.UTC)
    assert due == deadline.business_deadline(dt.date(2025, 6, 30))
    assert due.astimezone(SHANGHAI).isoformat() == "2025-06-30T08:00:00+08:00"
    # the same instant given in UTC gives the same deadline
    assert deadline.deadline_of(queued.astimezone(dt.UTC)) == due


def test_later_dags_of_the_chain_are_never_due_before_the_business_deadline():
    deadline = chain_deadline({})
    business = deadline.business_deadline(dt.date(2025, 6, 30))
    for minutes in (1, 5, 45, 119):  # queued when the DAG before them finished
        queued = dt.datetime(2025, 6, 30, 6, 0, tzinfo=SHANGHAI) + dt.timedelta(minutes=minutes)
        due = deadline.deadline_of(queued)
        assert due > business
        assert due - business == dt.timedelta(minutes=minutes)  # as late as the chain got there


def test_a_deadline_needs_a_moment_with_a_time_zone():
    with pytest.raises(ValueError, match="no time zone"):
        ChainDeadline(dt.time(8), dt.time(6)).deadline_of(dt.datetime(2025, 6, 30, 6))
