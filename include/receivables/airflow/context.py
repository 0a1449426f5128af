"""From an Airflow task context to what the domain needs: settings, warehouse URL, as-of date."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from receivables.config import Settings
from receivables.dates import as_of_date

log = logging.getLogger(__name__)

#: Airflow connection that names the warehouse when ``RECEIVABLES_DB_URL`` is not set.
WAREHOUSE_CONN_ID = "receivables_db"


def settings() -> Settings:
    """The environment's settings (read at run time, in the task)."""
    return Settings.from_env()


def warehouse_url(current: Settings | None = None) -> str:
    """``RECEIVABLES_DB_URL``, else the ``receivables_db`` connection, else embedded SQLite."""
    current = current or settings()
    if current.db_url:
        return current.db_url
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        connection = BaseHook.get_connection(WAREHOUSE_CONN_ID)
    except AirflowNotFoundException:
        return current.default_db_url
    return connection.get_uri()


def resolve_as_of(context: dict[str, Any], timezone: str) -> dt.date:
    """The business date a run is about: the one place it is derived.

    A scheduled or manual run has a logical date; a run triggered by an asset has none, and
    takes the ``as_of_date`` carried by the triggering event (the date the upstream DAG
    processed), so a whole chain of DAGs works on one date.
    """
    logical = context.get("logical_date")
    if logical is not None:
        return as_of_date(logical, timezone)
    dates = set()
    for events in (context.get("triggering_asset_events") or {}).values():
        for event in events:
            extra = getattr(event, "extra", None) or {}
            if "as_of_date" in extra:
                dates.add(dt.date.fromisoformat(extra["as_of_date"]))
    if dates:
        if len(dates) > 1:
            log.warning("triggered by events of several dates %s: taking the latest", sorted(dates))
        return max(dates)
    run_after = context["dag_run"].run_after
    log.warning("no logical date and no as_of_date in the triggering events: using run_after")
    return as_of_date(run_after, timezone)


def publish(context: dict[str, Any], asset, as_of: dt.date, **extra: Any) -> None:
    """Attach the as-of date (and a few figures) to this task's event for ``asset``."""
    context["outlet_events"][asset].extra = {"as_of_date": as_of.isoformat(), **extra}
