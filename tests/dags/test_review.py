"""The legal review operator: two options and a note; no answer in time leaves the case
proposed (the task is skipped, never failed: the other cases of the run go on)."""

from __future__ import annotations

import pytest
from airflow.sdk.exceptions import AirflowSkipException

from receivables.airflow.review import APPROVE, REJECT, CaseReview


def review() -> CaseReview:
    return CaseReview(
        task_id="review_case", case_id="LC-20250701-0001", as_of="2025-07-01", subject="Case"
    )


def test_a_review_offers_approve_or_reject_and_a_note():
    task = review()
    assert task.options == [APPROVE, REJECT]
    assert task.multiple is False
    assert set(task.params) == {"note"}


def test_no_answer_in_time_skips_the_review():
    timeout = {"error": "The response timeout has passed", "error_type": "timeout"}
    with pytest.raises(AirflowSkipException, match="LC-20250701-0001 in time: it stays proposed"):
        review().execute_complete({}, timeout)


def test_any_other_error_still_fails_the_review():
    with pytest.raises(Exception, match="broken") as caught:
        review().execute_complete({}, {"error": "broken", "error_type": "unknown"})
    assert not isinstance(caught.value, AirflowSkipException)


def test_the_answerer_stops_the_run_rather_than_let_it_wait_forever(monkeypatch):
    import signal
    import time

    from receivables.airflow import approvals

    # as in `receivables run`: Python's own SIGINT handler (an earlier test in this process may
    # have left Airflow's, or the default action, installed)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler) or signal.SIG_DFL

    def unusable():
        raise RuntimeError("no API here")

    monkeypatch.setattr(approvals, "_client", unusable)
    answerer = approvals.ReviewAnswerer("legal_escalation", "manual__x", "approve")

    def wait_for_input():
        answerer.start()
        for _ in range(300):  # as DAG.test() waits for input: a little at a time
            time.sleep(0.1)

    try:
        with pytest.raises(KeyboardInterrupt):
            wait_for_input()
    finally:
        signal.signal(signal.SIGINT, previous)
    answerer.stop()
    assert answerer.errors == ["cannot reach Airflow's API in process: no API here"]


def test_an_unknown_decision_is_refused():
    from receivables.airflow.approvals import ReviewAnswerer

    with pytest.raises(ValueError, match="unknown decision 'maybe'"):
        ReviewAnswerer("legal_escalation", "manual__x", "maybe")
