"""Settings every DAG shares: owner, retries, the failure alert, the start date, the timetable;
the daily chain's deadline alert.

Read at parse time, so only cheap things happen here (environment variables, no I/O).
"""

from __future__ import annotations

import datetime as dt
import os
from typing import TYPE_CHECKING

import pendulum

from receivables.config import DEFAULT_TIMEZONE

if TYPE_CHECKING:
    from airflow.sdk import DeadlineAlert

#: The business time zone: schedules run on its clock and the as-of date is its date.
TIMEZONE = os.environ.get("RECEIVABLES_TIMEZONE") or DEFAULT_TIMEZONE

#: Early on purpose: Airflow marks a run before ``start_date`` successful without running any
#: task, and historical ledgers (years back) must run for real. ``catchup=False`` everywhere.
START_DATE = pendulum.datetime(2000, 1, 1, tz=TIMEZONE)

OWNER = "receivables-data-engineering"


def timetable(variable: str, default: str):
    """The cron schedule named by environment ``variable`` (``none``: triggered only), in the
    business time zone. Lets an institution match its own drop times without editing DAGs."""
    from airflow.sdk import CronTriggerTimetable

    cron = (os.environ.get(variable) or default).strip()
    if cron.lower() == "none":
        return None
    return CronTriggerTimetable(cron, timezone=TIMEZONE)


#: Minutes a task may run before Airflow stops it (a stuck task must not hold a run forever).
#: A million-row day takes minutes; a task that waits for the warehouse's writer lock gives
#: up long before this (see ``receivables.warehouse.locks``).
DEFAULT_TASK_TIMEOUT_MINUTES = 120


def task_timeout() -> dt.timedelta:
    """Every task's ``execution_timeout``: ``RECEIVABLES_TASK_TIMEOUT_MINUTES`` (default 120)."""
    text = (os.environ.get("RECEIVABLES_TASK_TIMEOUT_MINUTES") or "").strip()
    if not text:
        return dt.timedelta(minutes=DEFAULT_TASK_TIMEOUT_MINUTES)
    try:
        minutes = float(text)
    except ValueError:
        minutes = -1.0
    if not 0 < minutes < float("inf"):
        raise ValueError(
            f"RECEIVABLES_TASK_TIMEOUT_MINUTES must be a positive number of minutes, not {text!r}"
        )
    return dt.timedelta(minutes=minutes)


def default_args() -> dict:
    """``default_args`` of every DAG: the owner, retries, the task timeout and the alert on
    failure."""
    from receivables.airflow.callbacks import alert_on_failure

    return {
        "owner": OWNER,
        "retries": int(os.environ.get("RECEIVABLES_TASK_RETRIES", "2")),
        "retry_delay": dt.timedelta(seconds=30),
        "retry_exponential_backoff": True,
        "execution_timeout": task_timeout(),
        "on_failure_callback": alert_on_failure,
    }


def chain_deadline_alert() -> DeadlineAlert | None:
    """The deadline alert of the daily chain's DAGs (``ledger_ingest``, ``receivables_risk``,
    ``collection_reminders``, ``legal_escalation``): each run that has not finished by
    ``RECEIVABLES_CHAIN_DEADLINE`` (default 08:00 business time) emails the data engineers once.
    None when the variable is ``none``. See :mod:`receivables.airflow.deadlines`."""
    from receivables.airflow.deadlines import deadline_alert

    return deadline_alert()
