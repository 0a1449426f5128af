"""The daily chain's deadline: an email to the data engineers when it has not finished in time.

The daily chain is ``ledger_ingest`` (06:00 business time) → ``receivables_risk`` →
``collection_reminders`` and ``legal_escalation``, chained by the ``ledger`` and ``risk``
assets. Operators set a time of day in business time, ``RECEIVABLES_CHAIN_DEADLINE`` (default
``08:00``; ``none`` switches it off), by which the day's chain must have finished. Every run of
the chain that has not finished by its deadline gets one email
(:func:`receivables.airflow.callbacks.send_deadline_alert`, template ``ops/chain_deadline``).

**Which deadline.** It is one of Airflow's own deadline alerts: a ``DeadlineAlert`` on each DAG
of the chain. Airflow computes a run's deadline once, when the run is created, as a *reference*
moment plus a fixed *interval*; the scheduler notices a deadline that passes while the run has
not succeeded and has the callback run; a run that succeeds in time has its deadline deleted.
Which reference expresses "the chain of business day D has finished by D at HH:MM"?

* ``DAGRUN_LOGICAL_DATE``: only ``ledger_ingest`` has a logical date. The DAGs after it run on
  asset events and have none: Airflow skips their alert (it logs that the reference evaluated
  to None). Even for ``ledger_ingest`` one fixed interval cannot fit both kinds of its runs: a
  scheduled run's logical date is D at 06:00, a run started by hand carries D at midnight by
  this project's convention (``receivables run``, ``airflow dags trigger --logical-date
  2025-06-30T00:00:00+08:00``), so it would be due at 02:00, and a backfill would be "missed"
  the moment it is created.
* ``FIXED_DATETIME``: evaluated when the DAG file is parsed. "Today at 08:00" would make the DAG
  depend on the wall clock: a new DAG version every day, and the deadline of whatever day the
  last parse saw.
* ``AVERAGE_RUNTIME``: relative to past runs' durations, not to the business clock.
* A custom reference ("the next HH:MM after the run was queued", exact for every run) is only
  read back by the scheduler when a plugin registers it (``AirflowPlugin.deadline_references``);
  the project's plugin registers none.
* ``DAGRUN_QUEUED_AT`` plus the *window*, the time from the daily ingest's scheduled start to the
  deadline (06:00 → 08:00: two hours), on every DAG of the chain, is what this module builds:

  - the scheduled ingest of day D is queued at D 06:00, so its deadline is D 08:00, the business
    deadline itself. Both are absolute moments: 2025-06-30 06:00 in Shanghai is
    2025-06-29 22:00 UTC, and the deadline 2025-06-30 00:00 UTC is 08:00 in Shanghai;
  - every later DAG of D's chain is queued after the ingest started, so its deadline is never
    before D 08:00: no alert for a chain that is still on time. The price: a later DAG still
    running at 08:00 is reported at the end of its own window, as late as the chain took to
    reach it (minutes on an ordinary day), and not at all if it finishes before then. The window
    is the shortest fixed interval that never raises a false alarm;
  - runs started by hand and backfills get the window from their own start: a backfill of a
    month is not reported thirty times the moment it begins, only a run still going after the
    window.

  Without a daily schedule (``RECEIVABLES_INGEST_CRON=none``) the window counts from midnight,
  the start of the business day; with several times a day, from the earliest. The window is a
  wall-clock difference (06:00 → 08:00): where the clocks change, a change between the two
  shifts that day's deadline by the change.

What it does not see: a run that was never created (a scheduler that was down at 06:00 creates
the day's run when it comes back, and that run has its window from then). A run that failed
keeps its deadline (Airflow only deletes the deadlines of runs that succeed), so its alert comes
at the deadline too, saying it failed. ``legal_escalation`` waits for people (its reviews): a run
with a case still waiting at its deadline is reported, and the email says where to look.
``receivables run`` drives the DAGs with ``DAG.test()``, where no scheduler watches deadlines,
and drops them (``receivables.airflow.runner``).

**Which callback.** An ``AsyncCallback``: the triggerer runs it (``airflow standalone`` starts
one, and so does the production set-up, for the legal reviews), and its blocking work runs in a
worker thread. A ``SyncCallback`` would run on the executor, but in Airflow 3.3 the executor's
callback process keeps the one-time workload token, which the Execution API refuses for
connections (apache/airflow#66141): a ``sendgrid_default`` connection kept in the UI or in a
secrets backend could not be read there, and the alert would go to the ``.eml`` outbox instead
of SendGrid. The triggerer reads connections through its supervisor, as deferred tasks do.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from receivables.config import DEFAULT_TIMEZONE

if TYPE_CHECKING:
    from airflow.sdk import DeadlineAlert

#: The environment variable: the time of day (business time) the day's chain must be done by.
DEADLINE_VARIABLE = "RECEIVABLES_CHAIN_DEADLINE"
DEFAULT_DEADLINE = "08:00"
#: The daily ingest's schedule (see ``dag_defaults.timetable``): where the chain starts.
INGEST_CRON_VARIABLE = "RECEIVABLES_INGEST_CRON"
DEFAULT_INGEST_CRON = "0 6 * * *"
#: The DAGs of the daily chain, in order; each carries the deadline.
CHAIN_DAGS = ("ledger_ingest", "receivables_risk", "collection_reminders", "legal_escalation")
#: The email to the data engineers (``include/templates/ops/chain_deadline/``).
TEMPLATE = "ops/chain_deadline"

_TIME_OF_DAY = re.compile(r"([0-9]{1,2}):([0-9]{2})(?::([0-9]{2}))?")


def parse_time_of_day(text: str | None, variable: str = DEADLINE_VARIABLE) -> dt.time | None:
    """The time of day ``text`` names: ``HH:MM`` (24-hour clock, ``8:00`` too) or ``HH:MM:SS``.

    Empty or unset gives the default (08:00); ``none`` switches the deadline off (None). Anything
    else (``25:00``, ``8h``, ``8:00 pm``) is refused with a message naming ``variable``.
    """
    value = (text or "").strip()
    if not value:
        value = DEFAULT_DEADLINE
    if value.lower() == "none":
        return None
    match = _TIME_OF_DAY.fullmatch(value)
    if match:
        hour, minute, second = (int(part) if part else 0 for part in match.groups())
        if hour <= 23 and minute <= 59 and second <= 59:
            return dt.time(hour, minute, second)
    raise ValueError(
        f"{variable} must be a time of day in business time as HH:MM (24-hour clock, e.g. "
        f"{DEFAULT_DEADLINE}; HH:MM:SS also works), or none to switch the alert off; not {value!r}"
    )


def earliest_start(cron: str | None, variable: str = INGEST_CRON_VARIABLE) -> dt.time:
    """The earliest time of day at which the cron expression ``cron`` fires (business time);
    midnight for ``none`` (triggered runs only: the business day starts at midnight)."""
    expression = (cron or "").strip() or DEFAULT_INGEST_CRON
    if expression.lower() == "none":
        return dt.time(0, 0)
    from croniter import croniter  # Airflow's own cron library, already loaded with it

    try:
        fields, _ = croniter.expand(expression)
    except (ValueError, KeyError) as exc:  # croniter's errors are ValueErrors
        raise ValueError(f"{variable}={expression!r} is not a cron expression: {exc}") from None

    def first(values: list) -> int:
        return min(0 if value == "*" else int(value) for value in values)

    return dt.time(first(fields[1]), first(fields[0]))


@dataclass(frozen=True)
class ChainDeadline:
    """The configured deadline: the time of day ``at`` (business time, ``timezone``) by which
    the chain started at ``start`` must have finished."""

    at: dt.time
    start: dt.time
    timezone: str = DEFAULT_TIMEZONE

    @property
    def window(self) -> dt.timedelta:
        """Time from the chain's start to the deadline: every run of the chain has this long
        from being queued."""
        day = dt.date(2000, 1, 1)
        return dt.datetime.combine(day, self.at) - dt.datetime.combine(day, self.start)

    @property
    def label(self) -> str:
        """``08:00`` (``08:00:30`` when seconds were given)."""
        return self.at.strftime("%H:%M:%S" if self.at.second else "%H:%M")

    def deadline_of(self, queued_at: dt.datetime) -> dt.datetime:
        """The deadline Airflow gives a run queued at ``queued_at`` (an aware moment): what
        ``DeadlineReference.DAGRUN_QUEUED_AT`` plus :attr:`window` evaluates to, in UTC."""
        if queued_at.tzinfo is None:
            raise ValueError(f"queued_at {queued_at.isoformat()} has no time zone")
        return (queued_at + self.window).astimezone(dt.UTC)

    def business_deadline(self, day: dt.date) -> dt.datetime:
        """Business day ``day`` at the deadline's time of day, in the business time zone."""
        return dt.datetime.combine(day, self.at, tzinfo=ZoneInfo(self.timezone))


def chain_deadline(environ: Mapping[str, str] | None = None) -> ChainDeadline | None:
    """The deadline the environment configures (``RECEIVABLES_CHAIN_DEADLINE``, the ingest's
    ``RECEIVABLES_INGEST_CRON`` and ``RECEIVABLES_TIMEZONE``), or None when switched off.

    Raises ValueError, naming the variable, for a time that is not one, and for a deadline that
    is not after the ingest's scheduled start on the same day (the chain of day D cannot have
    finished before it started).
    """
    env = os.environ if environ is None else environ
    at = parse_time_of_day(env.get(DEADLINE_VARIABLE))
    if at is None:
        return None
    cron = env.get(INGEST_CRON_VARIABLE)
    start = earliest_start(cron)
    deadline = ChainDeadline(at, start, env.get("RECEIVABLES_TIMEZONE") or DEFAULT_TIMEZONE)
    if deadline.window <= dt.timedelta(0):
        schedule = (cron or "").strip() or DEFAULT_INGEST_CRON
        raise ValueError(
            f"{DEADLINE_VARIABLE}={deadline.label} is not after the daily chain's start "
            f"{start.strftime('%H:%M')} ({INGEST_CRON_VARIABLE}={schedule!r}, business time): "
            "the chain of a day starts then and cannot have finished earlier that day"
        )
    return deadline


def deadline_alert(environ: Mapping[str, str] | None = None) -> DeadlineAlert | None:
    """The ``DeadlineAlert`` every DAG of the daily chain carries (None when switched off):
    ``DAGRUN_QUEUED_AT`` plus the window, calling
    :func:`receivables.airflow.callbacks.alert_on_missed_deadline` in the triggerer.

    Built at parse time from the environment (cheap: no I/O). See the module's docstring for
    why the reference is the time the run was queued.
    """
    from airflow.sdk import AsyncCallback, DeadlineAlert, DeadlineReference

    from receivables.airflow.callbacks import alert_on_missed_deadline

    deadline = chain_deadline(environ)
    if deadline is None:
        return None
    return DeadlineAlert(
        reference=DeadlineReference.DAGRUN_QUEUED_AT,
        interval=deadline.window,
        callback=AsyncCallback(
            alert_on_missed_deadline,
            kwargs={
                "chain_deadline": deadline.label,
                "window_seconds": int(deadline.window.total_seconds()),
            },
        ),
        name=f"daily chain by {deadline.label} {deadline.timezone}",
    )
