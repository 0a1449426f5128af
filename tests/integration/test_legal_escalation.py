"""The ``legal_escalation`` DAG run by Airflow (``DAG.test()``), on SQLite and PostgreSQL: cases
proposed by the rules, small ones approved by the rule, the others answered through Airflow's
REST API (approve, reject, or left for later), case files written and emailed once, a re-run
changing nothing."""

from __future__ import annotations

import datetime as dt
import email
from email import policy as email_policy

import pytest

from receivables.dates import start_of_business_day
from receivables.legal.casefile import CJK_FONT_PACKAGE, cjk_fonts
from receivables.warehouse.db import create_engine
from receivables.warehouse.migrate import upgrade
from receivables.warehouse.schema import legal_case_events, legal_cases
from tests.collection_data import age, customer, invoice, load, sent_before, table

# the customers are Chinese companies: their case files need a font covering Chinese
pytestmark = pytest.mark.skipif(
    not cjk_fonts(),
    reason=f"no font covering Chinese (fc-list :lang=zh is empty): install {CJK_FONT_PACKAGE}",
)

AS_OF = dt.date(2025, 7, 1)
TZ = "Asia/Shanghai"
DAG = "legal_escalation"


@pytest.fixture
def warehouse(home, db_url, monkeypatch, airflow_db):
    monkeypatch.setenv("RECEIVABLES_DB_URL", db_url)
    engine = create_engine(db_url)
    upgrade(engine)
    # C1 owes 50,000.00 (a person decides), C2 15,000.00 (below 20,000: approved by the rule)
    for cid, amount in (("C1", "50000.00"), ("C2", "15000.00")):
        load(
            engine,
            [customer(cid, name=f"客户{cid}有限公司", locale="zh-CN")],
            [invoice(f"{cid}-1", cid, AS_OF - dt.timedelta(days=120), amount)],
        )
        sent_before(engine, cid, "final_notice", f"{cid}-1", AS_OF - dt.timedelta(days=20))
    age(engine, AS_OF)
    yield engine
    engine.dispose()


def run(decision: str):
    from receivables.airflow.runner import run_dag

    return run_dag(DAG, start_of_business_day(AS_OF, TZ), legal_review=decision)


def states(report, task_id: str) -> list[str]:
    return [state for task, _, state in report.tasks if task == task_id]


def cases(engine) -> dict:
    return {c["customer_id"]: c for c in table(engine, legal_cases)}


def legal_emails(home) -> list:
    found = []
    for path in sorted((home / "outbox").glob("*.eml")):
        message = email.message_from_bytes(path.read_bytes(), policy=email_policy.default)
        if message["X-Receivables-Category"] == "legal":
            found.append(message)
    return found


def test_approved_through_the_api_and_opened_once(warehouse, home):
    report = run("approve")
    assert report.ok, report.tasks
    for task_id in ("propose_cases", "list_reviews", "open_cases", "summarize_cases"):
        assert states(report, task_id) == ["success"], task_id
    assert states(report, "review_case") == ["success"]  # one review: C2 needed none
    found = cases(warehouse)
    assert found["C1"]["status"] == found["C2"]["status"] == "approved"
    assert found["C1"]["decided_by"] == "receivables-run"
    assert "receivables run --legal-review approve" in found["C1"]["decision_note"]
    assert found["C2"]["decided_by"] == "auto-approval"
    for case in found.values():
        folder = home / case["case_file"]
        assert (folder / "case-file.pdf").read_bytes().startswith(b"%PDF")
        assert (folder / "demand-letter.pdf").read_bytes().startswith(b"%PDF")
    sent = legal_emails(home)
    assert len(sent) == 2
    for message in sent:  # the case file and the demand letter, as PDFs
        pdfs = [p for p in message.iter_attachments() if p.get_content_type() == "application/pdf"]
        assert len(pdfs) == 2
        assert all(p.get_content().startswith(b"%PDF") for p in pdfs)
    # the same date again: no new case, no new step, no second email
    events = len(table(warehouse, legal_case_events))
    again = run("approve")
    assert again.ok, again.tasks
    assert states(again, "review_case") == ["skipped"]  # nothing waits for a decision
    assert len(table(warehouse, legal_cases)) == 2
    assert len(table(warehouse, legal_case_events)) == events
    assert len(legal_emails(home)) == 2


def test_rejected_through_the_api(warehouse, home):
    report = run("reject")
    assert report.ok, report.tasks
    found = cases(warehouse)
    assert found["C1"]["status"] == "rejected"
    assert found["C1"]["case_file"] is None
    assert found["C2"]["status"] == "approved"
    assert len(legal_emails(home)) == 1


def test_left_for_later_stays_proposed_until_a_person_decides(warehouse, home):
    from click.testing import CliRunner

    from receivables.cli import main

    report = run("later")
    assert report.ok, report.tasks
    assert states(report, "review_case") == ["skipped"]
    assert cases(warehouse)["C1"]["status"] == "proposed"
    case_id = cases(warehouse)["C1"]["case_id"]
    done = CliRunner().invoke(main, ["legal", "approve", case_id, "--on", "2025-07-02"])
    assert done.exit_code == 0, done.output
    assert cases(warehouse)["C1"]["status"] == "approved"
    again = run("later")
    assert again.ok, again.tasks
    assert cases(warehouse)["C1"]["case_file"] is not None
    assert len(legal_emails(home)) == 2
