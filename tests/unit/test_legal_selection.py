"""Which customers are proposed for a legal case, on both engines: each selection rule, the claim
(late interest by the product's arithmetic, time-barred invoices left out, one case per
currency), automatic approval, idempotency, and the legal hold that follows approval."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pytest
import sqlalchemy as sa

from receivables.collection.planner import plan_reminders
from receivables.collection.strategy import load_strategy
from receivables.legal.escalation import cases_to_review, decide, propose_cases
from receivables.legal.selection import late_interest, select_cases
from receivables.warehouse.schema import (
    customer_feedback,
    legal_case_events,
    legal_case_invoices,
    legal_cases,
    reminders,
)
from tests.collection_data import (
    NOW,
    age,
    customer,
    invoice,
    legal_case,
    load,
    promise,
    sent_before,
    table,
)

AS_OF = dt.date(2025, 7, 1)
STRATEGY = load_strategy()
LEGAL = STRATEGY.legal


def past_due(n: int) -> dt.date:
    return AS_OF - dt.timedelta(days=n)


def debtor(engine, cid="C1", dpd=120, amount="50000.00", notice_days=20, **changes) -> None:
    """A customer whose one invoice is ``dpd`` days past due, final notice ``notice_days`` ago."""
    load(engine, [customer(cid, **changes)], [invoice(f"{cid}-1", cid, past_due(dpd), amount)])
    if notice_days is not None:
        sent_before(engine, cid, "final_notice", f"{cid}-1", AS_OF - dt.timedelta(notice_days))


def select(engine):
    age(engine, AS_OF)
    with engine.connect() as conn:
        return select_cases(conn, AS_OF, STRATEGY)


def test_late_interest_worked_example():
    # 10,000.00 CNY 100 days late at 3.85 % a year: 10000 × 0.0385 × 100 / 365 = 105.479… → 105.48
    assert late_interest(Decimal("10000.00"), 100, LEGAL) == Decimal("105.48")
    # half up at the cent: 1,000.00 × 0.0385 × 73 / 365 = 7.70 exactly; 0.005 rounds up
    assert late_interest(Decimal("1000.00"), 73, LEGAL) == Decimal("7.70")
    assert late_interest(Decimal("100.00"), 0, LEGAL) == Decimal("0.00")
    none = LEGAL.model_copy(update={"late_interest": None})
    assert late_interest(Decimal("10000.00"), 100, none) == Decimal("0.00")


def test_a_customer_meeting_every_rule_is_proposed_with_its_reasons(engine):
    debtor(engine, dpd=120, amount="50000.00")
    selection = select(engine)
    assert selection.considered == 1
    (p,) = selection.proposals
    assert (p.customer_id, p.currency, p.worst_days_past_due) == ("C1", "CNY", 120)
    assert p.principal == Decimal("50000.00")
    # 50,000.00 × 0.0385 × 120 / 365 = 632.876… → 632.88
    assert p.interest == Decimal("632.88")
    assert p.amount == Decimal("50632.88")
    assert [r.rule for r in p.rules] == [
        "days_past_due",
        "final_notice",
        "no_dispute",
        "no_promise",
        "limitation",
        "no_case_running",
        "min_outstanding",
    ]
    assert all(r.passed for r in p.rules)
    details = " | ".join(r.detail for r in p.rules)
    assert "120 days past due" in details
    assert "20 days ago" in details
    assert not p.auto_approve  # 50,632.88 is not below CNY 20,000


@pytest.mark.parametrize(
    ("setup", "rule"),
    [
        (lambda e: debtor(e, notice_days=None), "final_notice"),
        (lambda e: debtor(e, notice_days=9), "final_notice"),
        (lambda e: debtor(e, amount="9999.99"), "min_outstanding"),
    ],
)
def test_a_rule_that_fails_keeps_the_customer_out(engine, setup, rule):
    setup(engine)
    selection = select(engine)
    assert selection.proposals == []
    assert dict(selection.not_proposed) == {rule: 1}


def test_not_yet_ninety_days_is_not_even_considered(engine):
    debtor(engine, dpd=89)
    selection = select(engine)
    assert (selection.considered, selection.proposals) == (0, [])


def test_a_bounced_final_notice_does_not_count(engine):
    debtor(engine)
    with engine.begin() as conn:
        conn.execute(sa.update(reminders).values(delivery_status="bounce"))
    selection = select(engine)
    assert dict(selection.not_proposed) == {"final_notice": 1}


def test_a_disputed_invoice_or_open_dispute_or_running_promise_keeps_out(engine):
    load(
        engine, [customer("C2")], [invoice("C2-1", "C2", past_due(100), "50000.00", disputed=True)]
    )
    sent_before(engine, "C2", "final_notice", "C2-1", past_due(20))
    debtor(engine, "C3")
    with engine.begin() as conn:
        conn.execute(
            customer_feedback.insert().values(
                customer_id="C3", kind="dispute", message="wrong", status="open", received_at=NOW
            )
        )
    debtor(engine, "C4")
    promise(engine, "C4", past_due(3), AS_OF + dt.timedelta(days=5))
    selection = select(engine)
    assert selection.proposals == []
    assert dict(selection.not_proposed) == {"no_dispute": 2, "no_promise": 1}


def test_time_barred_invoices_are_never_claimed(engine):
    # three years and a day past due (limitation 3 years) beside a live one
    old = AS_OF.replace(year=AS_OF.year - 3) - dt.timedelta(days=1)
    load(
        engine,
        [customer("C1")],
        [
            invoice("C1-old", "C1", old, "90000.00"),
            invoice("C1-new", "C1", past_due(100), "12000.00"),
        ],
    )
    sent_before(engine, "C1", "final_notice", "C1-old", past_due(20))
    (p,) = select(engine).proposals
    assert [i.invoice_id for i in p.invoices] == ["C1-new"]
    assert p.principal == Decimal("12000.00")
    assert p.worst_days_past_due > 1000
    assert "1 time-barred invoice(s) left out" in p.rules[4].detail


def test_only_time_barred_debt_is_not_proposed(engine):
    old = AS_OF.replace(year=AS_OF.year - 4)
    load(engine, [customer("C1")], [invoice("C1-1", "C1", old, "90000.00")])
    sent_before(engine, "C1", "final_notice", "C1-1", past_due(20))
    selection = select(engine)
    assert dict(selection.not_proposed) == {"limitation": 1}


def test_one_case_per_currency_each_with_its_own_threshold(engine):
    load(
        engine,
        [customer("C1")],
        [
            invoice("C1-cny", "C1", past_due(120), "30000.00"),
            invoice("C1-usd", "C1", past_due(95), "1600.00", currency="USD"),
            invoice("C1-usd2", "C1", past_due(10), "100.00", currency="USD"),
            invoice("C1-jpy", "C1", past_due(95), "9000000", currency="JPY"),
        ],
    )
    sent_before(engine, "C1", "final_notice", "C1-cny", past_due(30))
    proposals = select(engine).proposals
    assert [(p.currency, p.principal) for p in proposals] == [
        ("CNY", Decimal("30000.00")),
        ("USD", Decimal("1700.00")),
    ]
    # USD 1,700.00 plus interest is below the USD 3,000 automatic approval amount
    assert [p.auto_approve for p in proposals] == [False, True]
    assert proposals[1].worst_days_past_due == 120  # the customer's worst invoice


def test_proposing_writes_the_case_its_invoices_and_steps_once(engine):
    debtor(engine, "C1", amount="50000.00")
    debtor(engine, "C2", amount="15000.00")  # below CNY 20,000: approved by the rule
    age(engine, AS_OF)
    summary = propose_cases(engine, AS_OF, STRATEGY, now=NOW)
    assert summary["proposed"] == 2
    assert summary["auto_approved"] == 1
    assert summary["case_ids"] == ["LC-20250701-0001", "LC-20250701-0002"]
    cases = {c["customer_id"]: c for c in table(engine, legal_cases)}
    assert cases["C1"]["status"] == "proposed"
    assert cases["C2"]["status"] == "approved"
    assert cases["C2"]["decided_by"] == "auto-approval"
    rules = json.loads(cases["C1"]["rules"])
    assert all(r["passed"] for r in rules)
    assert len(rules) == 7
    assert {r["invoice_id"] for r in table(engine, legal_case_invoices)} == {"C1-1", "C2-1"}
    steps = [(e["case_id"], e["status"]) for e in table(engine, legal_case_events)]
    assert steps == [
        ("LC-20250701-0001", "proposed"),
        ("LC-20250701-0002", "proposed"),
        ("LC-20250701-0002", "approved"),
    ]
    # the same date again: nothing new
    again = propose_cases(engine, AS_OF, STRATEGY, now=NOW)
    assert again["proposed"] == 0
    assert again["not_proposed_by_rule"] == {"no_case_running": 2}
    assert len(table(engine, legal_cases)) == 2
    # only the proposed one waits for a person, with its claim and reasons
    (item,) = cases_to_review(engine, AS_OF)
    assert item["case_id"] == "LC-20250701-0001"
    assert "CNY 50,632.88" in item["subject"]
    assert "final notice sent on 2025-06-11" in item["body"]


def test_a_rejected_customer_waits_for_the_cooldown(engine):
    debtor(engine)
    age(engine, AS_OF)
    propose_cases(engine, AS_OF, STRATEGY, now=NOW)
    decide(engine, "LC-20250701-0001", False, AS_OF, actor="Han Meimei", note="talks ongoing")
    later = AS_OF + dt.timedelta(days=LEGAL.rejected_cooldown_days - 1)
    age(engine, later)
    with engine.connect() as conn:
        assert dict(select_cases(conn, later, STRATEGY).not_proposed) == {"no_case_running": 1}
    after = AS_OF + dt.timedelta(days=LEGAL.rejected_cooldown_days)
    age(engine, after)
    with engine.connect() as conn:
        (p,) = select_cases(conn, after, STRATEGY).proposals
    assert p.invoices[0].invoice_id == "C1-1"  # a rejected case claims nothing for good


def test_a_running_case_blocks_a_new_one(engine):
    debtor(engine)
    legal_case(engine, "LC-old", "C1", past_due(40), status="filed")
    selection = select(engine)
    assert dict(selection.not_proposed) == {"no_case_running": 1}


def test_markdown_in_an_id_cannot_forge_the_review(engine):
    debtor(engine, cid="C|1 **[x](http://evil)**")
    age(engine, AS_OF)
    propose_cases(engine, AS_OF, STRATEGY, now=NOW)
    (item,) = cases_to_review(engine, AS_OF)
    assert "[x](http" not in item["body"]
    assert r"C\|1 \*\*\[x\]\(http://evil\)\*\*" in item["body"]


def test_approval_puts_the_customer_under_legal_hold(engine):
    # due its first reminder today, but a case against it is proposed, then approved
    load(engine, [customer("C1")], [invoice("C1-1", "C1", past_due(1), "500.00")])
    legal_case(engine, "LC-1", "C1", AS_OF, status="proposed")
    age(engine, AS_OF)
    decide(engine, "LC-1", True, AS_OF, actor="Han Meimei")
    plan_reminders(engine, AS_OF, STRATEGY, "Asia/Shanghai", now=NOW)
    (planned,) = table(engine, reminders)
    assert (planned["status"], planned["rule"]) == ("refused", "legal_case_open")


def test_a_proposed_case_alone_does_not_stop_collection(engine):
    load(engine, [customer("C1")], [invoice("C1-1", "C1", past_due(1), "500.00")])
    legal_case(engine, "LC-1", "C1", AS_OF, status="proposed")
    age(engine, AS_OF)
    plan_reminders(engine, AS_OF, STRATEGY, "Asia/Shanghai", now=NOW)
    (planned,) = table(engine, reminders)
    assert planned["status"] == "pending"
