"""Answer the legal reviews of a ``receivables run`` through Airflow's REST API.

Under the scheduler, a person answers each ``review_case`` task in Airflow's UI (*Required
actions*). ``receivables run`` drives the DAGs with ``DAG.test()``, which waits for such
answers forever, so the command answers them itself, by the same documented endpoints a person's
browser or script would use, served by Airflow's own API application in this process:

* ``approve`` / ``reject`` — ``PATCH …/taskInstances/{task_id}/{map_index}/hitlDetails`` with
  that option and a note naming the command: the task resumes and records the decision;
* ``later`` (the default) — ``PATCH …/taskInstances/{task_id}/{map_index}`` to ``skipped``: no
  decision is taken, every case stays ``proposed`` for a person (``receivables legal approve``,
  or the next run of the DAG under the scheduler).

The command authenticates as the user ``receivables-run`` with a token signed by Airflow's auth
manager; the decision is recorded with that name.
"""

from __future__ import annotations

import _thread
import logging
import threading
import time
from typing import Any
from urllib.parse import quote

log = logging.getLogger(__name__)

DECISIONS = ("approve", "reject", "later")
REVIEW_TASK = "review_case"
USER = "receivables-run"
API = "/api/v2"
#: Seconds of failing to answer after which the run is interrupted rather than left waiting.
GIVE_UP_AFTER = 60.0
#: Seconds within which ``DAG.test()`` creates its run (it parses and syncs the DAG first).
RUN_APPEARS_WITHIN = 300.0


class ReviewError(RuntimeError):
    """The legal reviews could not be answered: the run was stopped instead of waiting."""


class ReviewAnswerer:
    """Answers every review task of one DAG run (``run_id``) that waits for input, until
    stopped."""

    def __init__(self, dag_id: str, run_id: str, decision: str, interval: float = 0.5) -> None:
        if decision not in DECISIONS:
            raise ValueError(f"unknown decision {decision!r}: expected one of {DECISIONS}")
        self.dag_id = dag_id
        #: only this run's reviews: other runs' cases (the scheduler's, say, in a shared
        #: metadata database) wait for the people they were meant for
        self.run_id = run_id
        self.decision = decision
        self.interval = interval
        self.answered: list[dict[str, Any]] = []
        self.errors: list[str] = []
        self._halt = threading.Event()
        self._created_at = time.monotonic()
        self._thread = threading.Thread(target=self._run, name=f"answer-{dag_id}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._halt.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        try:
            client = _client()
        except Exception as exc:
            self._give_up(f"cannot reach Airflow's API in process: {exc}")
            return
        failing_since = None
        with client:
            while not self._halt.wait(self.interval):
                try:
                    self._answer_waiting(client)
                    failing_since = None
                except Exception as exc:  # tried again; given up after GIVE_UP_AFTER
                    log.exception("answering the legal reviews failed")
                    failing_since = failing_since or time.monotonic()
                    if time.monotonic() - failing_since > GIVE_UP_AFTER:
                        self._give_up(f"answering the legal reviews failed: {exc}")
                        return

    def _give_up(self, reason: str) -> None:
        """Stop the run (``DAG.test()`` in the main thread) rather than let it wait forever."""
        self.errors.append(reason)
        log.error("%s: stopping the run", reason)
        _thread.interrupt_main()

    def _answer_waiting(self, client) -> None:
        listing = client.get(
            f"{API}/dags/{self.dag_id}/dagRuns/{quote(self.run_id, safe='')}/hitlDetails",
            params={"response_received": "false", "task_id": REVIEW_TASK, "limit": 100},
        )
        if listing.status_code == 404:  # DAG.test() has not created the run yet
            if time.monotonic() - self._created_at > RUN_APPEARS_WITHIN:
                raise RuntimeError(f"no run {self.run_id} of {self.dag_id} appeared")
            return
        listing.raise_for_status()
        for detail in listing.json()["hitl_details"]:
            ti = detail["task_instance"]
            if ti["state"] != "awaiting_input" or ti["dag_run_id"] != self.run_id:
                continue
            path = (
                f"{API}/dags/{self.dag_id}/dagRuns/{quote(self.run_id, safe='')}/taskInstances/"
                f"{ti['task_id']}/{ti['map_index']}"
            )
            if self.decision == "later":
                reply = client.patch(
                    path,
                    json={
                        "new_state": "skipped",
                        "note": "left for a person to decide (receivables run --legal-review "
                        "later)",
                    },
                )
            else:
                reply = client.patch(
                    f"{path}/hitlDetails",
                    json={
                        "chosen_options": ["Approve" if self.decision == "approve" else "Reject"],
                        "params_input": {
                            "note": f"answered by receivables run --legal-review {self.decision}"
                        },
                    },
                )
            if reply.status_code == 409:  # answered by someone else in the meantime
                continue
            reply.raise_for_status()
            self.answered.append({"map_index": ti["map_index"], "decision": self.decision})
            log.info(
                "%s: review %s[%s] answered %s",
                self.dag_id,
                ti["task_id"],
                ti["map_index"],
                self.decision,
            )


def dag_test_run_id(logical_date, run_after) -> str:
    """The run id ``DAG.test(logical_date=…, run_after=…)`` gives its run (computed as it does),
    so that the answerer knows its run before the run exists."""
    from airflow.models.dagrun import DagRun
    from airflow.sdk import timezone
    from airflow.utils.types import DagRunType

    return DagRun.generate_run_id(
        run_type=DagRunType.MANUAL,
        logical_date=timezone.coerce_datetime(logical_date),
        run_after=timezone.coerce_datetime(run_after),
    )


def _client():
    """A client of Airflow's core API application, in this process, as ``receivables-run``."""
    from airflow.api_fastapi.app import create_app, get_auth_manager
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser
    from fastapi.testclient import TestClient

    app = create_app("core")
    token = get_auth_manager().generate_jwt(SimpleAuthManagerUser(username=USER, role="ADMIN"))
    return TestClient(app, headers={"Authorization": f"Bearer {token}"})
