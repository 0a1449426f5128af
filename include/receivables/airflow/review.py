"""A person approves or rejects each proposed legal case, in Airflow.

:class:`CaseReview` is Airflow's human-in-the-loop operator (standard provider) with two options,
``Approve`` and ``Reject``, and an optional note; the ``legal_escalation`` DAG maps it over the
cases waiting for a decision, so each case is its own *required action* in Airflow's UI, showing
the claim and the rule results. The answer comes from the UI or from Airflow's REST API
(``PATCH /api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/{map_index}/hitlDetails``);
the decision is recorded on the case with the responder's name. Without an answer within
``legal.review_hours`` (Airflow's scheduler enforces it) the task is skipped and the case stays
``proposed``: it is offered again on the next run, or decided with ``receivables legal``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from airflow.providers.standard.operators.hitl import HITLOperator
from airflow.sdk import Param
from airflow.sdk.exceptions import AirflowSkipException

APPROVE = "Approve"
REJECT = "Reject"
#: The longest note a reviewer may leave.
NOTE_LENGTH = 500


class CaseReview(HITLOperator):
    """Approve or reject one proposed legal case."""

    template_fields = (*HITLOperator.template_fields, "case_id", "as_of")

    def __init__(self, *, case_id: str, as_of: str, **kwargs: Any) -> None:
        super().__init__(
            options=[APPROVE, REJECT],
            multiple=False,
            params={
                "note": Param(
                    None,
                    type=["null", "string"],
                    maxLength=NOTE_LENGTH,
                    description="why (optional; kept with the decision)",
                )
            },
            **kwargs,
        )
        self.case_id = case_id
        self.as_of = as_of

    def process_trigger_event_error(self, event: dict[str, Any]) -> None:
        if event.get("error_type") == "timeout":
            raise AirflowSkipException(
                f"no decision on case {self.case_id} in time: it stays proposed"
            )
        super().process_trigger_event_error(event)

    def execute_complete(self, context, event: dict[str, Any]) -> Any:
        result = super().execute_complete(context, event)
        from receivables.airflow.context import settings, warehouse_url
        from receivables.jobs import open_warehouse
        from receivables.legal.escalation import decide
        from receivables.legal.lifecycle import LifecycleError

        chosen = result["chosen_options"][0]
        user = result.get("responded_by_user") or {}
        actor = (user.get("name") or user.get("id") or "unknown reviewer")[:255]
        note = (result.get("params_input") or {}).get("note") or None
        current = settings()
        engine = open_warehouse(warehouse_url(current))
        try:
            status = decide(
                engine,
                self.case_id,
                chosen == APPROVE,
                dt.date.fromisoformat(self.as_of),
                actor=actor,
                note=note,
                source="review",
            )
        except LifecycleError as exc:
            # decided otherwise in the meantime (``receivables legal``): the first decision
            # stands, and the other cases of the run go on
            self.log.warning("case %s: %s's answer not recorded: %s", self.case_id, actor, exc)
            return {"case_id": self.case_id, "decision": "not recorded", "by": actor}
        finally:
            engine.dispose()
        self.log.info("case %s: %s by %s", self.case_id, status, actor)
        return {"case_id": self.case_id, "decision": status, "by": actor}
