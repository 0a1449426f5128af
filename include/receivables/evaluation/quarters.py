"""Calendar quarters: the one a date ends or starts, the ones before it, their months.

A quarter is named by its last day (``kpis`` export: DATE is a quarter's last day). Its
*opening* is the day before its first day: the previous quarter's last day, whose balances are
the quarter's opening balances.
"""

from __future__ import annotations

import calendar
import datetime as dt
from dataclasses import dataclass


class NotAQuarterEnd(ValueError):
    """A date that is not the last day of March, June, September or December."""


@dataclass(frozen=True, order=True)
class Quarter:
    """The quarter of ``year`` numbered ``number`` (1–4)."""

    year: int
    number: int

    def __post_init__(self):
        if not 1 <= self.number <= 4:
            raise ValueError(f"a quarter is numbered 1 to 4, not {self.number}")

    @property
    def label(self) -> str:
        """``2025Q2``."""
        return f"{self.year}Q{self.number}"

    @property
    def start(self) -> dt.date:
        """Its first day."""
        return dt.date(self.year, 3 * self.number - 2, 1)

    @property
    def end(self) -> dt.date:
        """Its last day."""
        month = 3 * self.number
        return dt.date(self.year, month, calendar.monthrange(self.year, month)[1])

    @property
    def opening(self) -> dt.date:
        """The day before its first day (the previous quarter's last day)."""
        return self.start - dt.timedelta(days=1)

    @property
    def days(self) -> int:
        """Its length in days (90, 91 or 92)."""
        return (self.end - self.start).days + 1

    def months(self) -> list[tuple[int, int]]:
        """Its three (year, month) pairs, in order."""
        return [(self.year, 3 * self.number - 2 + i) for i in range(3)]

    def previous(self, count: int = 1) -> Quarter:
        """The quarter ``count`` quarters before this one."""
        index = self.year * 4 + (self.number - 1) - count
        return Quarter(index // 4, index % 4 + 1)

    def trend(self, count: int = 4) -> list[Quarter]:
        """The last ``count`` quarters up to this one, oldest first."""
        return [self.previous(n) for n in range(count - 1, -1, -1)]


def quarter_of(day: dt.date) -> Quarter:
    """The quarter that holds ``day``."""
    return Quarter(day.year, (day.month - 1) // 3 + 1)


def ending_on(day: dt.date) -> Quarter:
    """The quarter whose last day is ``day``; :class:`NotAQuarterEnd` for any other date."""
    quarter = quarter_of(day)
    if quarter.end != day:
        raise NotAQuarterEnd(
            f"{day} is not the last day of a quarter (31 March, 30 June, 30 September or "
            f"31 December); the quarter that holds it ends on {quarter.end}"
        )
    return quarter


def just_ended(day: dt.date) -> Quarter:
    """The quarter that ended the day before ``day`` (evaluated on a quarter's first day)."""
    return quarter_of(day).previous()


def month_days(year: int, month: int) -> int:
    """Days in the month."""
    return calendar.monthrange(year, month)[1]
