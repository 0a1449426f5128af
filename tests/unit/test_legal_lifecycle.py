"""The life of a legal case, on both engines: every legal step, every illegal one refused with a
clear error, amounts and dates checked, a step recorded once."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

import pytest

from receivables.legal.lifecycle import (
    ENDED_STATUSES,
    OPEN_STATUSES,
    TRANSITIONS,
    LifecycleError,
    Step,
    apply,
    history,
)
from receivables.warehouse.schema import CASE_STATUSES, legal_cases
from tests.collection_data import customer, legal_case, load, table

DAY = dt.date(2025, 7, 1)


def on(n: int) -> dt.date:
    return DAY + dt.timedelta(days=n)


@pytest.fixture
def case(engine):
    """Case LC-1 of customer C1, proposed on DAY, claiming CNY 100.00."""
    load(engine, [customer("C1")])
    legal_case(engine, "LC-1", "C1", DAY, status="proposed")
    return engine


def step(engine, status, day, amount=None, **kw) -> bool:
    with engine.begin() as conn:
        return apply(conn, Step("LC-1", status, day, amount, **kw))


def status_of(engine) -> dict:
    return table(engine, legal_cases)[0]


def test_every_status_has_its_followers_and_the_final_ones_have_none():
    assert set(TRANSITIONS) == set(CASE_STATUSES)
    assert TRANSITIONS["rejected"] == ()
    assert TRANSITIONS["closed"] == ()
    assert set(OPEN_STATUSES) | set(ENDED_STATUSES) | {"proposed"} == set(CASE_STATUSES)
    for status, follows in TRANSITIONS.items():
        assert set(follows) <= set(CASE_STATUSES), status


def test_a_case_from_proposal_to_closing(case):
    assert step(case, "approved", on(1), actor="Li Lei", note="clear case")
    assert step(case, "filed", on(10))
    assert step(case, "judgment", on(60))
    assert step(case, "recovered", on(90), Decimal("60.00"))
    assert step(case, "closed", on(91))
    row = status_of(case)
    assert row["status"] == "closed"
    assert row["updated_on"] == on(91)
    assert row["decided_by"] == "Li Lei"
    assert row["decision_note"] == "clear case"
    assert row["recovered_amount"] == Decimal("60.00")
    with case.connect() as conn:
        steps = [(s.status, s.occurred_on, s.amount) for s in history(conn, "LC-1")]
    assert steps == [
        ("approved", on(1), None),
        ("filed", on(10), None),
        ("judgment", on(60), None),
        ("recovered", on(90), Decimal("60.00")),
        ("closed", on(91), None),
    ]


def test_a_written_off_remainder(case):
    step(case, "approved", on(1))
    step(case, "filed", on(2))
    step(case, "written_off", on(30), Decimal("100.00"))
    assert status_of(case)["written_off_amount"] == Decimal("100.00")


@pytest.mark.parametrize(
    ("path", "illegal", "message"),
    [
        ([], "filed", "case LC-1 is proposed: it cannot become filed (what may follow: approved"),
        ([], "recovered", "cannot become recovered"),
        (["rejected"], "approved", "it cannot become approved (what may follow: nothing"),
        (["approved", "filed", "judgment"], "filed", "is judgment: it cannot become filed"),
        (["approved"], "proposed", "cannot become proposed"),
        (["approved", "closed"], "filed", "nothing (it is final)"),
    ],
)
def test_illegal_steps_are_refused_with_what_may_follow(case, path, illegal, message):
    for n, status in enumerate(path, 1):
        step(case, status, on(n))
    before = status_of(case)["status"]
    amount = Decimal("1.00") if illegal in ("recovered", "settled", "written_off") else None
    with pytest.raises(LifecycleError, match=re.escape(message)):
        step(case, illegal, on(20), amount)
    assert status_of(case)["status"] == before


def test_amounts_are_required_refused_and_bounded(case):
    step(case, "approved", on(1))
    step(case, "filed", on(2))
    with pytest.raises(LifecycleError, match="recovered needs an amount") as missing:
        step(case, "recovered", on(3))
    assert missing.value.field == "amount"
    with pytest.raises(LifecycleError, match="must be above 0"):
        step(case, "settled", on(3), Decimal("0.00"))
    with pytest.raises(LifecycleError, match="judgment takes no amount"):
        step(case, "judgment", on(3), Decimal("5.00"))
    with pytest.raises(LifecycleError, match=r"more than the 100\.00 CNY still claimed"):
        step(case, "written_off", on(3), Decimal("100.01"))


def test_a_step_cannot_go_back_in_time(case):
    step(case, "approved", on(5))
    with pytest.raises(LifecycleError, match="before its last step") as early:
        step(case, "filed", on(4))
    assert early.value.field == "date"
    too_early = Step("LC-1", "filed", DAY - dt.timedelta(days=1))
    with case.begin() as conn, pytest.raises(LifecycleError, match="before its last step"):
        apply(conn, too_early)


def test_an_unknown_case_or_status_is_refused(case):
    with case.begin() as conn, pytest.raises(LifecycleError, match="no legal case LC-9"):
        apply(conn, Step("LC-9", "approved", DAY))
    with pytest.raises(LifecycleError, match="unknown status 'paid'"):
        step(case, "paid", DAY)


def test_the_same_step_is_recorded_once(case):
    assert step(case, "approved", on(1))
    assert not step(case, "approved", on(1))
    assert step(case, "filed", on(3))
    assert not step(case, "filed", on(3))
    with case.connect() as conn:
        assert [s.status for s in history(conn, "LC-1")] == ["approved", "filed"]
    # the same status on another date is not a repeat: filed cannot follow filed
    with pytest.raises(LifecycleError, match="is filed: it cannot become filed"):
        step(case, "filed", on(4))
