"""When a reminder is delivered: by the customer's payment habit, inside its contact window.

A customer who usually pays around the same day of the month (the 25th, payroll) or on the same
weekday (Fridays) is reminded shortly before that day — when money is there, not when it is
least able to pay. The habit is learned from its payments of the last year: the day of the
month (±1 day) or the weekday on which at least ``habit_min_share`` of at least
``habit_min_payments`` payments fell. The reminder then goes ``lead_days`` before the next such
day at the preferred hour, when that moment is within ``horizon_hours`` of the planned day's
start (SendGrid schedules at most 72 hours ahead); otherwise, and for customers without a habit,
at the preferred hour of the planned day. Either moment is moved into the contact window.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import numpy as np

from receivables.collection.compliance import within_window
from receivables.collection.strategy import ContactRules, Timing


@dataclass(frozen=True)
class Habit:
    """A customer's habitual payment day: ``day_of_month`` (1-31) or ``weekday`` (0 = Monday)."""

    day_of_month: int | None = None
    weekday: int | None = None
    share: float = 0.0
    payments: int = 0


def learn_habits(payments: Iterable[tuple[str, dt.date]], timing: Timing) -> dict[str, Habit]:
    """Habits from ``payments`` ((customer id, paid date) pairs), vectorised: a count matrix of
    customers × day of month (and × weekday), the ±1-day window summed by shifting."""
    pairs = list(payments)
    if not pairs:
        return {}
    customers, codes = np.unique(np.array([c for c, _ in pairs], dtype=object), return_inverse=True)
    days = np.fromiter((d.day for _, d in pairs), dtype=np.int64, count=len(pairs))
    weekdays = np.fromiter((d.weekday() for _, d in pairs), dtype=np.int64, count=len(pairs))
    n = len(customers)
    totals = np.bincount(codes, minlength=n)
    by_day = np.zeros((n, 33), dtype=np.int64)  # columns 1..31, padded both sides
    np.add.at(by_day, (codes, days), 1)
    window = by_day[:, :-2] + by_day[:, 1:-1] + by_day[:, 2:]  # column j: days j, j+1, j+2
    best_day = window[:, 0:31].argmax(axis=1)  # centre day = best_day + 1
    day_count = window[np.arange(n), best_day]
    by_weekday = np.zeros((n, 7), dtype=np.int64)
    np.add.at(by_weekday, (codes, weekdays), 1)
    best_weekday = by_weekday.argmax(axis=1)
    weekday_count = by_weekday[np.arange(n), best_weekday]
    habits: dict[str, Habit] = {}
    enough = totals >= timing.habit_min_payments
    for i in np.flatnonzero(enough):
        total = int(totals[i])
        day_share = day_count[i] / total
        weekday_share = weekday_count[i] / total
        if max(day_share, weekday_share) < timing.habit_min_share:
            continue
        if day_share >= weekday_share:
            habits[customers[i]] = Habit(
                day_of_month=int(best_day[i]) + 1, share=float(day_share), payments=total
            )
        else:
            habits[customers[i]] = Habit(
                weekday=int(best_weekday[i]), share=float(weekday_share), payments=total
            )
    return habits


def _next_habit_day(habit: Habit, start: dt.date, days: int) -> dt.date | None:
    for offset in range(days):
        day = start + dt.timedelta(days=offset)
        if habit.day_of_month is not None and day.day == habit.day_of_month:
            return day
        if habit.weekday is not None and day.weekday() == habit.weekday:
            return day
    return None


def planned_moment(
    as_of: dt.date,
    timezone: str,
    habit: Habit | None,
    timing: Timing,
    rules: ContactRules,
) -> dt.datetime:
    """The moment (UTC) a reminder planned on ``as_of`` is to be delivered."""
    tz = ZoneInfo(timezone)
    start = dt.datetime.combine(as_of, dt.time(0), tzinfo=tz)
    horizon = start + dt.timedelta(hours=timing.horizon_hours)
    default = dt.datetime.combine(as_of, dt.time(timing.preferred_hour), tzinfo=tz)
    chosen = default
    if habit is not None:
        payday = _next_habit_day(habit, as_of, 3 + timing.horizon_hours // 24 + timing.lead_days)
        if payday is not None:
            day = max(as_of, payday - dt.timedelta(days=timing.lead_days))
            moment = dt.datetime.combine(day, dt.time(timing.preferred_hour), tzinfo=tz)
            if moment < horizon:
                chosen = moment
    moment = within_window(chosen, timezone, rules)
    # a preferred hour after the window closes would move to the next morning: past the horizon
    # it goes back to the planned day's opening instead
    if moment >= horizon.astimezone(dt.UTC):
        moment = within_window(
            dt.datetime.combine(as_of, rules.window_start, tzinfo=tz), timezone, rules
        )
    return moment
