"""Failure alert: a task that fails (after its retries) emails the data engineers."""

from __future__ import annotations

import logging
from typing import Any

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
