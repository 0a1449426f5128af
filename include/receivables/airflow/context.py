"""From an Airflow task context to what the domain needs: settings, warehouse URL, as-of date."""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from typing import Any

from receivables.config import SENDGRID_CONN_ID, SendGridConfig, Settings, sendgrid_config_of
from receivables.dates import as_of_date

log = logging.getLogger(__name__)


def settings() -> Settings:
    """The environment's settings (read at run time, in the task), with SendGrid from the
    ``sendgrid_default`` connection when the environment does not define it (a connection kept
    in the UI or a secrets backend counts)."""
    current = Settings.from_env()
    if current.sendgrid is None:
        sendgrid = _airflow_sendgrid_config()
        if sendgrid is not None:
            current = dataclasses.replace(current, sendgrid=sendgrid)
    return current


def _airflow_sendgrid_config() -> SendGridConfig | None:
    """SendGrid from Airflow's ``sendgrid_default`` connection, or None when it is not defined
    (then email is written to the ``.eml`` outbox)."""
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        conn = BaseHook.get_connection(SENDGRID_CONN_ID)
    except AirflowNotFoundException:
        return None
    return sendgrid_config_of(conn.password, conn.host, conn.port, conn.schema)


def _airflow_connection_uri(conn_id: str) -> str | None:
    """The URI of an Airflow connection (metadata database, secrets backend or
    ``AIRFLOW_CONN_*``), or None when it is not defined."""
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        return BaseHook.get_connection(conn_id).get_uri()
    except AirflowNotFoundException:
        return None


def warehouse_url(current: Settings | None = None) -> str:
    """The warehouse of a task: :meth:`Settings.warehouse_url`, with Airflow's own connection
    lookup (so a ``receivables_db`` connection kept in the UI or a secrets backend counts)."""
    current = current or settings()
    return current.warehouse_url(lookup=_airflow_connection_uri)


def resolve_as_of_dates(context: dict[str, Any], timezone: str) -> list[dt.date]:
    """The business dates a run is about, oldest first: the one place they are derived.

    A scheduled or manual run has a logical date. A run triggered by an asset has none and
    takes the dates carried by the triggering events (the dates the upstream DAG processed), so
    a whole chain of DAGs works on one date. When several events queued up while the DAG was
    busy, Airflow hands them all to one run: every date is processed, in order, none skipped.
    """
    logical = context.get("logical_date")
    if logical is not None:
        return [as_of_date(logical, timezone)]
    dates: set[dt.date] = set()
    for events in (context.get("triggering_asset_events") or {}).values():
        for event in events:
            extra = getattr(event, "extra", None) or {}
            for text in extra.get("as_of_dates") or [extra.get("as_of_date")]:
                if text:
                    dates.add(dt.date.fromisoformat(text))
    if dates:
        if len(dates) > 1:
            log.info("triggered by events of %d dates: %s", len(dates), sorted(dates))
        return sorted(dates)
    run_after = context["dag_run"].run_after
    log.warning("no logical date and no as_of_date in the triggering events: using run_after")
    return [as_of_date(run_after, timezone)]


def resolve_as_of(context: dict[str, Any], timezone: str) -> dt.date:
    """The (latest) business date a run is about; see :func:`resolve_as_of_dates`."""
    return resolve_as_of_dates(context, timezone)[-1]


def publish(context: dict[str, Any], asset, dates: list[dt.date], **extra: Any) -> None:
    """Attach the processed dates (``as_of_dates``, oldest first, and ``as_of_date``, the
    latest) and a few figures to this task's event for ``asset``."""
    context["outlet_events"][asset].extra = {
        "as_of_date": dates[-1].isoformat(),
        "as_of_dates": [d.isoformat() for d in dates],
        **extra,
    }
