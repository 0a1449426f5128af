"""The as-of date is the business date in the business time zone, derived in one place."""

from __future__ import annotations

import datetime as dt

import pytest

from receivables.dates import as_of_date, is_quarter_start, parse_iso_date, start_of_business_day


def test_shanghai_midnight_is_that_day_not_the_utc_day():
    # 2013-06-30 00:00 in Shanghai is 2013-06-29 16:00 UTC: Airflow's ds would say the 29th
    logical = start_of_business_day(dt.date(2013, 6, 30), "Asia/Shanghai")
    assert logical.astimezone(dt.UTC).date() == dt.date(2013, 6, 29)
    assert as_of_date(logical, "Asia/Shanghai") == dt.date(2013, 6, 30)
    assert as_of_date(dt.datetime(2013, 6, 29, 16, 0, tzinfo=dt.UTC), "Asia/Shanghai") == dt.date(
        2013, 6, 30
    )


def test_other_time_zones_and_naive_datetimes():
    moment = dt.datetime(2024, 3, 1, 3, 0, tzinfo=dt.UTC)
    assert as_of_date(moment, "America/New_York") == dt.date(2024, 2, 29)
    with pytest.raises(ValueError, match="no time zone"):
        as_of_date(dt.datetime(2024, 3, 1), "Asia/Shanghai")


def test_parse_iso_date_says_what_to_type():
    assert parse_iso_date(" 2024-02-29 ") == dt.date(2024, 2, 29)
    with pytest.raises(ValueError, match="expected YYYY-MM-DD"):
        parse_iso_date("2023-02-29")


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        ("2025-01-01", True),
        ("2025-04-01", True),
        ("2025-07-01", True),
        ("2025-10-01", True),
        ("2025-02-01", False),
        ("2025-04-02", False),
        ("2025-12-31", False),
    ],
)
def test_quarter_start(day, expected):
    assert is_quarter_start(dt.date.fromisoformat(day)) is expected


def test_the_business_date_of_a_pendulum_moment_is_a_plain_date():
    import pendulum

    day = as_of_date(pendulum.datetime(2013, 6, 29, 16, 0, tz="UTC"), "Asia/Shanghai")
    assert type(day) is dt.date
    assert day == dt.date(2013, 6, 30)
