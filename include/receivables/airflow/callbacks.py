"""Alerts to the data engineers: a task that fails (after its retries), and a run of the daily
chain that has not finished by its deadline (``receivables.airflow.deadlines``)."""

from __future__ import annotations

import datetime as dt
import logging
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from receivables.mail import Delivery

log = logging.getLogger(__name__)


def alert_on_failure(context: dict[str, Any]) -> None:
    """``on_failure_callback`` of every task: one email per failed task instance and try."""
    from receivables.airflow.context import resolve_as_of, settings
    from receivables.mail import send_once

    try:
        current = settings()
        ti = context["ti"]
        try:
            as_of = resolve_as_of(context, current.timezone).isoformat()
        except Exception:  # the alert must go out even when the context is incomplete
            as_of = "unknown"
        error = context.get("exception")
        # the exception's type and first line: enough to act on, without data values
        first_line = str(error).splitlines()[0][:500] if error and str(error) else ""
        facts = {
            "dag_id": ti.dag_id,
            "task_id": ti.task_id,
            "map_index": getattr(ti, "map_index", None),
            "run_id": ti.run_id,
            "try_number": getattr(ti, "try_number", None),
            "as_of": as_of,
            "error": f"{type(error).__name__}: {first_line}" if error else "unknown",
            "log_url": getattr(ti, "log_url", "") or "",
        }
        key = "/".join(
            str(part)
            for part in (
                "task-failure",
                ti.dag_id,
                ti.run_id,
                ti.task_id,
                facts["map_index"],
                facts["try_number"],
            )
        )
        send_once(current, key, "ops/task_failure", current.alert_emails, "alert", **facts)
    except Exception:
        # A broken alert must not hide the task's own failure: log it loudly instead.
        log.exception("could not send the failure alert")


async def alert_on_missed_deadline(
    context: dict[str, Any] | None = None,
    *,
    chain_deadline: str = "",
    window_seconds: int | None = None,
) -> None:
    """Callback of the daily chain's deadline (``receivables.airflow.deadlines``), run by
    Airflow's triggerer when the scheduler finds a run of the chain past its deadline: one
    email to the data engineers per run (:func:`send_deadline_alert`).

    The sending blocks (templates, SendGrid's API with its retries, the outbox's files), so it
    runs in a worker thread: the triggerer's event loop, where deferred tasks such as the legal
    reviews wait, is never held up.
    """
    import asyncio

    await asyncio.to_thread(
        send_deadline_alert,
        context,
        chain_deadline=chain_deadline,
        window_seconds=window_seconds,
    )


def send_deadline_alert(
    context: dict[str, Any] | None,
    *,
    chain_deadline: str = "",
    window_seconds: int | None = None,
) -> Delivery:
    """Email the data engineers (``RECEIVABLES_ALERT_EMAILS``) that a run of the daily chain had
    not finished by its deadline; return the :class:`receivables.mail.Delivery`.

    ``context`` is what Airflow gives a deadline callback: ``{"dag_run": <the run, as the REST
    API shows it>, "deadline": {"id": ..., "deadline_time": ...}}``; ``chain_deadline`` and
    ``window_seconds`` come from the alert's definition. The email is sent once per run,
    whatever repeats: its key is ``chain-deadline/<dag_id>/<run_id>``. Anything that goes wrong
    is logged with the run's ids and raised, so Airflow records the callback as failed as well:
    a missed deadline is never dropped without a trace.
    """
    from receivables.airflow.context import settings
    from receivables.airflow.deadlines import TEMPLATE
    from receivables.mail import send_once

    dag_run = (context or {}).get("dag_run") or {}
    dag_id, run_id = dag_run.get("dag_id"), dag_run.get("dag_run_id") or dag_run.get("run_id")
    try:
        if not dag_id or not run_id:
            raise ValueError(f"the deadline's context names no DAG run: {sorted(context or {})}")
        current = settings()
        facts = deadline_facts(
            context or {},
            current.timezone,
            chain_deadline=chain_deadline,
            window_seconds=window_seconds,
        )
        key = f"chain-deadline/{dag_id}/{run_id}"
        delivery = send_once(current, key, TEMPLATE, current.alert_emails, "alert", **facts)
        log.warning(
            "%s run %s had not finished by its deadline %s: alert %s (%s)",
            dag_id,
            run_id,
            facts["deadline"],
            delivery.status,
            key,
        )
        return delivery
    except Exception:
        log.exception(
            "COULD NOT SEND THE DEADLINE ALERT for %s run %s: the data engineers were not told "
            "that it missed its deadline",
            dag_id,
            run_id,
        )
        raise


def deadline_facts(
    context: dict[str, Any],
    timezone: str,
    *,
    chain_deadline: str = "",
    window_seconds: int | None = None,
) -> dict[str, Any]:
    """What the deadline email says, from the callback's ``context``: the DAG, the run, its
    business date (from the logical date; asset-triggered runs take theirs from the event),
    the deadline in business time and UTC, the run's state and a link to it."""
    from urllib.parse import quote
    from zoneinfo import ZoneInfo

    from receivables.dates import as_of_date

    zone = ZoneInfo(timezone)
    dag_run = context.get("dag_run") or {}
    run_id = dag_run.get("dag_run_id") or dag_run.get("run_id")
    deadline_time = _moment((context.get("deadline") or {}).get("deadline_time"))
    if deadline_time is None:
        raise ValueError(f"the deadline of {dag_run.get('dag_id')} run {run_id} has no time")
    logical = _moment(dag_run.get("logical_date"))
    queued = _moment(dag_run.get("queued_at"))

    def shown(moment: dt.datetime | None) -> str:
        if moment is None:
            return ""
        return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S")

    window = dt.timedelta(seconds=window_seconds) if window_seconds else None
    return {
        "dag_id": dag_run.get("dag_id"),
        "run_id": run_id,
        "run_type": dag_run.get("run_type") or "",
        "state": dag_run.get("state") or "unknown",
        "as_of": as_of_date(logical, timezone).isoformat() if logical else None,
        "deadline": f"{shown(deadline_time)} {timezone}",
        "deadline_utc": deadline_time.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
        "queued_at": f"{shown(queued)} {timezone}" if queued else "",
        "chain_deadline": chain_deadline or "",
        "window": _duration(window) if window else "",
        "run_url": f"{_ui_base_url()}/dags/{quote(str(dag_run.get('dag_id')))}"
        f"/runs/{quote(str(run_id))}",
    }


def _moment(value: Any) -> dt.datetime | None:
    """An aware datetime from what the callback's context carries (a datetime, ISO text, a
    timestamp, or Airflow's serialised form), or None."""
    if isinstance(value, dict) and "__var" in value:  # Airflow's serialisation of a datetime
        value = value["__var"]
    if value is None or value == "":
        return None
    if isinstance(value, dt.datetime):
        moment = value
    elif isinstance(value, int | float):
        moment = dt.datetime.fromtimestamp(value, dt.UTC)
    else:
        moment = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def _duration(delta: dt.timedelta) -> str:
    """``2:00`` hours and minutes (``0:00:20`` when seconds matter)."""
    seconds = int(delta.total_seconds())
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}" if seconds else f"{hours}:{minutes:02d}"


def _ui_base_url() -> str:
    """Airflow's UI base URL (``[api] base_url``), as task log links use it."""
    try:
        from airflow.sdk.configuration import conf
    except ImportError:  # pragma: no cover - older layouts
        from airflow.configuration import conf
    return conf.get("api", "base_url", fallback="http://localhost:8080/").rstrip("/")
