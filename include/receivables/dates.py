"""The as-of date: the one place where a moment in time becomes a business date.

Airflow hands tasks a logical date in UTC; ``ds`` is the UTC date, which is the previous day for
any run between 00:00 and 08:00 in Shanghai. Every result of this project is "as of" a business
date in the institution's time zone, derived here and nowhere else.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

#: Runs for dates before this are refused: the DAGs start here, and Airflow silently marks a run
#: before a DAG's ``start_date`` successful without running a single task.
EARLIEST_AS_OF = dt.date(2000, 1, 1)


def as_of_date(moment: dt.datetime, timezone: str) -> dt.date:
    """Return the business date of ``moment`` (timezone-aware) in ``timezone``.

    >>> as_of_date(dt.datetime(2013, 6, 29, 16, 0, tzinfo=dt.UTC), "Asia/Shanghai")
    datetime.date(2013, 6, 30)
    """
    if moment.tzinfo is None:
        raise ValueError(f"moment {moment.isoformat()} has no time zone; pass an aware datetime")
    local = moment.astimezone(ZoneInfo(timezone))
    # a plain date, whatever ``moment`` is: Airflow's pendulum moments give pendulum dates,
    # which database drivers do not all bind (sqlite3 refuses them)
    return dt.date(local.year, local.month, local.day)


def start_of_business_day(day: dt.date, timezone: str) -> dt.datetime:
    """Return midnight of ``day`` in ``timezone``: the logical date the CLI uses for ``day``."""
    return dt.datetime(day.year, day.month, day.day, tzinfo=ZoneInfo(timezone))


def parse_iso_date(text: str) -> dt.date:
    """Parse ``YYYY-MM-DD`` (as given on the command line) with a message that says what to type."""
    try:
        return dt.date.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"{text!r} is not a date: expected YYYY-MM-DD, e.g. 2025-06-30") from None


def is_quarter_start(day: dt.date) -> bool:
    """True on the first day of January, April, July and October."""
    return day.day == 1 and day.month in (1, 4, 7, 10)


def today_in(timezone: str) -> dt.date:
    """Today's date on the business clock (only for commands a person runs, never for results)."""
    return as_of_date(dt.datetime.now(dt.UTC), timezone)
