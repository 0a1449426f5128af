"""Planning the day's reminders, on both engines: stages, ladders, rules, idempotency, and the
property that no plan ever breaks a contact rule."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from receivables.collection import compliance
from receivables.collection.planner import PlanError, plan_reminders
from receivables.collection.strategy import load_strategy
from receivables.warehouse.schema import collection_actions, reminder_invoices, reminders
from tests.collection_data import (
    age,
    customer,
    grade,
    invoice,
    legal_case,
    load,
    promise,
    sent_before,
    suppress,
    table,
)

AS_OF = dt.date(2025, 7, 1)
STRATEGY = load_strategy()
TZ = "Asia/Shanghai"
NOW = dt.datetime(2025, 6, 30, 22, 0, tzinfo=dt.UTC)


def days(n: int) -> dt.date:
    """The due date that is ``n`` days past due on AS_OF (negative: not yet due)."""
    return AS_OF - dt.timedelta(days=n)


def plan(engine, as_of=AS_OF):
    return plan_reminders(engine, as_of, STRATEGY, TZ, now=NOW)


def by_customer(engine, day=AS_OF) -> dict[str, dict]:
    return {
        r["customer_id"]: r
        for r in table(engine, reminders, reminders.c.reminder_id)
        if r["planned_on"] == day
    }


@pytest.fixture
def book(engine):
    """A small book with one customer for each situation."""
    people = [
        customer("COURTESY"),
        customer("NOTYET"),
        customer("FIRST", locale="zh-CN"),
        customer("SECOND"),
        customer("FINAL"),
        customer("OLDDEBT"),
        customer("EARLY"),
        customer("DNC", do_not_contact=True),
        customer("DISPUTE"),
        customer("NOMAIL", email=None, collector_id="K1"),
        customer("BADMAIL", email="nobody at example"),
        customer("PROMISE"),
        customer("LEGAL"),
        customer("BOUNCED", email="bounced@example.com; Other@Example.com"),
        customer("ALLBOUNCED", email="gone@example.com"),
        customer("PAID"),
        customer("NEWYORK", timezone="America/New_York"),
    ]
    bills = [
        invoice("I-C", "COURTESY", days(-3)),
        invoice("I-N", "NOTYET", days(-4)),
        invoice("I-F1", "FIRST", days(1)),
        invoice("I-F2", "FIRST", days(-20), "50.00", currency="USD"),
        invoice("I-S", "SECOND", days(20)),
        invoice("I-FN", "FINAL", days(45)),
        invoice("I-OLD", "OLDDEBT", dt.date(2022, 3, 1)),
        invoice("I-E", "EARLY", days(8)),
        invoice("I-D", "DNC", days(5)),
        invoice("I-DS", "DISPUTE", days(5), disputed=True),
        invoice("I-NM", "NOMAIL", days(5)),
        invoice("I-BM", "BADMAIL", days(5)),
        invoice("I-P", "PROMISE", days(5)),
        invoice("I-L", "LEGAL", days(200)),
        invoice("I-B", "BOUNCED", days(5)),
        invoice("I-AB", "ALLBOUNCED", days(5)),
        invoice("I-PD", "PAID", days(5)),
        invoice("I-NY", "NEWYORK", days(2)),
    ]
    paid = [
        {
            "payment_id": "P1",
            "invoice_id": "I-PD",
            "paid_date": days(1),
            "amount": bills[-2]["amount"],
        }
    ]
    load(engine, people, bills, paid)
    grade(engine, AS_OF, "EARLY", "E")
    promise(engine, "PROMISE", days(3), AS_OF + dt.timedelta(days=5))
    legal_case(engine, "LC-1", "LEGAL", days(10))
    # the final notices follow an earlier reminder for the same debt
    for who, oldest in (("FINAL", "I-FN"), ("OLDDEBT", "I-OLD"), ("LEGAL", "I-L")):
        sent_before(engine, who, "second_reminder", oldest, days(10))
    suppress(engine, "bounced@example.com")
    suppress(engine, "gone@example.com", "spamreport")
    age(engine, AS_OF)
    return engine


def test_each_customer_gets_the_stage_of_its_oldest_invoice_or_the_rule_that_stopped_it(book):
    summary = plan(book)
    got = by_customer(book)
    # NOTYET is 4 days before due and PAID has paid: nothing for them
    assert "NOTYET" not in got
    assert "PAID" not in got
    expected = {
        "COURTESY": ("courtesy", "pending", None),
        "FIRST": ("first_reminder", "pending", None),
        "SECOND": ("second_reminder", "pending", None),
        "FINAL": ("final_notice", "pending", None),
        "OLDDEBT": ("final_notice", "pending", None),
        "EARLY": ("second_reminder", "pending", None),  # day 8 on the early ladder (7)
        "DNC": ("first_reminder", "refused", "do_not_contact"),
        "DISPUTE": ("first_reminder", "refused", "invoice_disputed"),
        "NOMAIL": ("first_reminder", "refused", "no_usable_address"),
        "BADMAIL": ("first_reminder", "refused", "no_usable_address"),
        "PROMISE": ("first_reminder", "refused", "promise_to_pay"),
        "LEGAL": ("final_notice", "refused", "legal_case_open"),
        "BOUNCED": ("first_reminder", "pending", None),
        "ALLBOUNCED": ("first_reminder", "refused", "address_suppressed"),
        "NEWYORK": ("first_reminder", "pending", None),
    }
    assert {c: (r["stage"], r["status"], r["rule"]) for c, r in got.items()} == expected
    assert got["EARLY"]["ladder"] == "early"
    assert got["FIRST"]["ladder"] == "standard"
    # refusals name their rule in the reason
    assert got["DNC"]["reason"].startswith("do_not_contact: ")
    # only the debtor's own deliverable addresses
    assert got["BOUNCED"]["recipients"] == "other@example.com"
    # the legal step: mentioned in the final notice, never for a time-barred debt
    assert got["FINAL"]["mentions_legal"] is True
    assert got["OLDDEBT"]["mentions_legal"] is False
    assert not any(r["mentions_legal"] for c, r in got.items() if c not in ("FINAL", "LEGAL"))
    # one consolidated statement per customer, both currencies
    lines = [
        r for r in table(book, reminder_invoices) if r["reminder_id"] == got["FIRST"]["reminder_id"]
    ]
    assert sorted((r["invoice_id"], r["currency"]) for r in lines) == [
        ("I-F1", "CNY"),
        ("I-F2", "USD"),
    ]
    assert got["FIRST"]["invoices"] == 2
    assert got["FIRST"]["oldest_invoice_id"] == "I-F1"
    # delivered at 10:00 on each customer's own clock
    for c, r in got.items():
        tz = "America/New_York" if c == "NEWYORK" else TZ
        moment = (
            r["send_at"].replace(tzinfo=dt.UTC) if r["send_at"].tzinfo is None else r["send_at"]
        )
        assert moment.astimezone(ZoneInfo(tz)).hour == 10, c
    assert summary["planned"] == 15
    assert summary["refused_by_rule"] == {
        "address_suppressed": 1,
        "do_not_contact": 1,
        "invoice_disputed": 1,
        "legal_case_open": 1,
        "no_usable_address": 2,
        "promise_to_pay": 1,
    }
    assert summary["batches"] == 1


def test_the_worklist_gets_calls_visits_and_data_fixes(book):
    plan(book)
    actions = {(a["customer_id"], a["kind"], a["cause"]) for a in table(book, collection_actions)}
    assert ("SECOND", "call", "second_reminder") in actions
    assert ("FINAL", "call", "final_notice") in actions
    assert ("FINAL", "visit", "final_notice") in actions
    assert ("NOMAIL", "fix_data", "no_usable_address") in actions
    assert not any(c == "FIRST" for c, _, _ in actions)
    nomail = next(a for a in table(book, collection_actions) if a["customer_id"] == "NOMAIL")
    assert nomail["collector_id"] == "K1"


def test_planning_a_date_again_adds_nothing(book):
    plan(book)
    before = (
        table(book, reminders),
        table(book, reminder_invoices),
        table(book, collection_actions),
    )
    again = plan(book)
    assert again["planned"] == 0
    after = (
        table(book, reminders),
        table(book, reminder_invoices),
        table(book, collection_actions),
    )
    assert after == before


def test_a_stage_goes_once_per_oldest_invoice_and_the_next_one_when_it_is_due(book):
    plan(book)
    with book.begin() as conn:
        conn.execute(
            sa.update(reminders).where(reminders.c.status == "pending").values(status="sent")
        )
    later = AS_OF + dt.timedelta(days=1)
    age(book, later)
    plan_reminders(book, later, STRATEGY, TZ, now=NOW)
    rows = [r for r in table(book, reminders) if r["planned_on"] == later]
    stages = {r["customer_id"]: r["stage"] for r in rows}
    # each got its stage for its oldest invoice yesterday: nothing new today
    for sent_yesterday in ("FIRST", "COURTESY", "SECOND"):
        assert sent_yesterday not in stages
    # NOTYET is now 3 days before due: courtesy
    assert stages.get("NOTYET") == "courtesy"
    # refused ones are planned again (the rule still holds, so refused again)
    assert stages.get("DNC") == "first_reminder"


def test_the_daily_cap_stops_a_second_email_on_the_same_day(book):
    plan(book)
    # the ledger changes: FIRST's oldest invoice moves to 15 days past due the same day
    with book.begin() as conn:
        conn.execute(
            sa.update(sa.table("invoices", sa.column("invoice_id"), sa.column("due_date")))
            .where(sa.column("invoice_id") == "I-F1")
            .values(due_date=days(16))
        )
    age(book, AS_OF)
    plan(book)
    rows = [r for r in table(book, reminders) if r["customer_id"] == "FIRST"]
    assert [(r["stage"], r["status"], r["rule"]) for r in rows] == [
        ("first_reminder", "pending", None),
        ("second_reminder", "refused", "daily_cap"),
    ]


def test_a_final_notice_never_comes_out_of_the_blue(engine):
    load(
        engine,
        [customer("LATE"), customer("RECENT")],
        [invoice("I-LATE", "LATE", days(90)), invoice("I-REC", "RECENT", days(40))],
    )
    # RECENT got its second reminder 3 days ago: the final notice waits for day 7
    sent_before(engine, "RECENT", "second_reminder", "I-REC", days(3))
    age(engine, AS_OF)
    plan(engine)
    got = by_customer(engine)
    assert got["LATE"]["stage"] == "second_reminder", "no earlier reminder: not the final notice"
    assert got["LATE"]["mentions_legal"] is False
    assert "RECENT" not in got, "its second reminder went already; the final notice waits"
    later = AS_OF + dt.timedelta(days=4)
    age(engine, later)
    plan_reminders(engine, later, STRATEGY, TZ, now=NOW)
    assert by_customer(engine, later)["RECENT"]["stage"] == "final_notice"
    assert "LATE" not in by_customer(engine, later), "sent 4 days ago: the final notice waits"


def test_planning_needs_the_days_aging_snapshot(engine):
    with pytest.raises(PlanError, match="no aging snapshot for 2025-07-01"):
        plan(engine)


# --- property: no plan ever breaks a contact rule ----------------------------------------------

ZONES = ["Asia/Shanghai", "America/New_York", "Europe/Berlin", "Pacific/Auckland"]

#: mostly False: a flag that holds a customer back, now and then
rarely = st.sampled_from([False] * 5 + [True])

people_strategy = st.lists(
    st.fixed_dictionaries(
        {
            "timezone": st.sampled_from(ZONES),
            "email": st.sampled_from(["ok"] * 3 + ["two", "bad", "none", "suppressed"]),
            "do_not_contact": rarely,
            "invoices": st.lists(
                st.tuples(
                    st.integers(min_value=-10, max_value=1300),  # days past due on day 0
                    rarely,  # disputed
                ),
                min_size=1,
                max_size=3,
            ),
            "promise": st.one_of(st.none(), st.integers(min_value=0, max_value=10)),
            "legal": rarely,
            "grade": st.sampled_from(["A", "C", "E"]),
        }
    ),
    min_size=1,
    max_size=6,
)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(people=people_strategy, horizon=st.integers(min_value=3, max_value=12))
def test_no_plan_ever_breaks_a_contact_rule(tmp_path_factory, people, horizon):
    from receivables.warehouse.db import create_engine
    from receivables.warehouse.migrate import upgrade

    engine = create_engine(f"sqlite:///{tmp_path_factory.mktemp('plan') / 'w.db'}")
    upgrade(engine)
    emails = {
        "ok": "a{i}@example.com",
        "two": "a{i}@example.com;b{i}@example.com",
        "bad": "not-an-address",
        "none": None,
        "suppressed": "s{i}@example.com",
    }
    rows, bills = [], []
    for i, p in enumerate(people):
        cid = f"C{i}"
        email = emails[p["email"]]
        rows.append(
            customer(
                cid,
                timezone=p["timezone"],
                email=email.format(i=i) if email else None,
                do_not_contact=p["do_not_contact"],
            )
        )
        for j, (late, disputed) in enumerate(p["invoices"]):
            bills.append(invoice(f"I{i}-{j}", cid, days(late), disputed=disputed))
    load(engine, rows, bills)
    for i, p in enumerate(people):
        if p["email"] == "suppressed":
            suppress(engine, f"s{i}@example.com")
        if p["promise"] is not None:
            promise(engine, f"C{i}", AS_OF, AS_OF + dt.timedelta(days=p["promise"]))
        if p["legal"]:
            legal_case(engine, f"L{i}", f"C{i}", AS_OF)
    for offset in range(horizon):
        day = AS_OF + dt.timedelta(days=offset)
        age(engine, day)
        for i, p in enumerate(people):
            grade(engine, day, f"C{i}", p["grade"])
        plan_reminders(engine, day, STRATEGY, TZ, now=NOW)
        with engine.begin() as conn:  # the sender sent everything pending
            conn.execute(
                sa.update(reminders).where(reminders.c.status == "pending").values(status="sent")
            )
    sent = [r for r in table(engine, reminders, reminders.c.send_at) if r["status"] == "sent"]
    engine.dispose()
    by_person = {f"C{i}": p for i, p in enumerate(people)}
    local_days = defaultdict(list)
    stages_seen = set()
    rules = STRATEGY.contact
    for r in sent:
        p = by_person[r["customer_id"]]
        day = r["planned_on"]
        assert not p["do_not_contact"]
        assert not p["legal"]
        assert not any(disputed for _, disputed in p["invoices"])
        if p["promise"] is not None:
            assert day > AS_OF + dt.timedelta(days=p["promise"])
        assert p["email"] in ("ok", "two")
        assert all(
            "@example.com" in a and not a.startswith("s") for a in r["recipients"].split(";")
        )
        moment = r["send_at"].replace(tzinfo=dt.UTC)
        local = moment.astimezone(ZoneInfo(p["timezone"]))
        assert rules.window_start <= local.time() < rules.window_end
        local_days[r["customer_id"]].append(local.date())
        open_dues = [days(late) for late, _ in p["invoices"]]
        if r["mentions_legal"]:
            assert not any(compliance.time_barred(d, day, rules) for d in open_dues)
        key = (r["customer_id"], r["oldest_invoice_id"], r["stage"])
        assert key not in stages_seen, "a stage went twice for the same oldest invoice"
        stages_seen.add(key)
    for dates in local_days.values():
        for d in dates:
            assert dates.count(d) <= rules.max_per_day
            week = [x for x in dates if d - dt.timedelta(days=6) <= x <= d]
            assert len(week) <= rules.max_per_week
