"""The contact rules, one by one, and when a reminder is delivered (habits, window)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from receivables.collection import compliance
from receivables.collection.compliance import Candidate
from receivables.collection.strategy import ContactRules, Timing, load_strategy
from receivables.collection.timing import Habit, learn_habits, planned_moment

RULES = ContactRules()
SHANGHAI = "Asia/Shanghai"
# 2025-07-01 10:00 in Shanghai
MORNING = dt.datetime(2025, 7, 1, 2, 0, tzinfo=dt.UTC)


def candidate(**changes) -> Candidate:
    base = {
        "customer_id": "C1",
        "timezone": SHANGHAI,
        "addresses": ("ap@example.com",),
        "do_not_contact": False,
        "send_at": MORNING,
        "outstanding": Decimal("100.00"),
    }
    return Candidate(**{**base, **changes})


def test_a_clean_candidate_passes_every_rule():
    assert compliance.check(candidate(), RULES) is None


@pytest.mark.parametrize(
    ("changes", "rule"),
    [
        ({"do_not_contact": True}, "do_not_contact"),
        ({"legal_case": "LC-1"}, "legal_case_open"),
        ({"disputed_invoices": 1}, "invoice_disputed"),
        ({"open_disputes": 1}, "invoice_disputed"),
        ({"promise_until": dt.date(2025, 7, 1)}, "promise_to_pay"),
        ({"outstanding": Decimal("0.00")}, "nothing_outstanding"),
        ({"addresses": ("not an address",)}, "no_usable_address"),
        ({"addresses": ()}, "no_usable_address"),
        ({"suppressed": frozenset({"ap@example.com"})}, "address_suppressed"),
        # 22:30 in Shanghai
        ({"send_at": dt.datetime(2025, 7, 1, 14, 30, tzinfo=dt.UTC)}, "contact_window"),
        # 10:00 UTC is 06:00 in New York
        (
            {"timezone": "America/New_York", "send_at": dt.datetime(2025, 7, 1, 10, tzinfo=dt.UTC)},
            "contact_window",
        ),
        ({"other_sends": (dt.datetime(2025, 7, 1, 1, tzinfo=dt.UTC),)}, "daily_cap"),
        (
            {"other_sends": tuple(dt.datetime(2025, 6, d, 2, tzinfo=dt.UTC) for d in (25, 27, 29))},
            "weekly_cap",
        ),
    ],
)
def test_each_rule_refuses_and_names_itself(changes, rule):
    refusal = compliance.check(candidate(**changes), RULES)
    assert refusal is not None
    assert refusal.rule == rule
    assert refusal.text().startswith(f"{rule}: ")


def test_the_rules_are_each_their_own_function_in_order():
    assert compliance.RULE_NAMES[0] == "do_not_contact"
    for name in compliance.RULE_NAMES:
        assert callable(getattr(compliance, name))


def test_an_expired_promise_no_longer_pauses():
    assert compliance.promise_to_pay(candidate(promise_until=dt.date(2025, 6, 30)), RULES) is None


def test_the_window_edges_are_on_the_customers_clock():
    opening = dt.datetime(2025, 7, 1, 0, 0, tzinfo=dt.UTC)  # 08:00 Shanghai
    closing = dt.datetime(2025, 7, 1, 13, 0, tzinfo=dt.UTC)  # 21:00 Shanghai
    assert compliance.contact_window(candidate(send_at=opening), RULES) is None
    assert compliance.contact_window(candidate(send_at=closing), RULES) is not None
    just_before = opening - dt.timedelta(minutes=1)
    assert compliance.contact_window(candidate(send_at=just_before), RULES) is not None


def test_caps_count_days_on_the_customers_clock():
    # 23:30 UTC on 30 June is 07:30 on 1 July in Shanghai: the same local day as MORNING
    late = dt.datetime(2025, 6, 30, 23, 30, tzinfo=dt.UTC)
    assert compliance.daily_cap(candidate(other_sends=(late,)), RULES).rule == "daily_cap"
    # the weekly cap looks at the seven days ending on the send day only
    old = tuple(dt.datetime(2025, 6, d, 2, tzinfo=dt.UTC) for d in (20, 21, 22))
    assert compliance.weekly_cap(candidate(other_sends=old), RULES) is None


def test_only_suppressed_addresses_are_dropped():
    c = candidate(
        addresses=("AP@Example.com; billing@example.com", "x"),
        suppressed=frozenset({"ap@example.com"}),
    )
    assert c.usable_addresses == ("ap@example.com", "billing@example.com")
    assert c.deliverable_addresses == ("billing@example.com",)
    assert compliance.check(c, RULES) is None


@pytest.mark.parametrize(
    "text",
    [
        "a@b",  # no top-level domain
        "Name <a@example.com>",  # display names are not taken from ledger text
        "a@example.com\r\nBcc: x@evil.com",
        "a b@example.com",
        "a@exam_ple.com",
    ],
)
def test_odd_addresses_are_not_usable(text):
    assert compliance.usable_addresses([text]) == ()


def test_a_time_barred_debt_is_never_threatened():
    as_of = dt.date(2025, 7, 1)
    assert not compliance.time_barred(dt.date(2022, 7, 1), as_of, RULES)
    assert compliance.time_barred(dt.date(2022, 6, 30), as_of, RULES)
    assert compliance.time_barred(dt.date(2020, 2, 29), dt.date(2023, 3, 1), RULES)
    assert compliance.may_mention_legal(True, [dt.date(2025, 5, 1)], as_of, RULES)
    assert not compliance.may_mention_legal(
        True, [dt.date(2025, 5, 1), dt.date(2021, 1, 1)], as_of, RULES
    )
    assert not compliance.may_mention_legal(False, [dt.date(2025, 5, 1)], as_of, RULES)


def test_delivery_waits_for_the_window_when_the_planned_moment_has_passed():
    planned = MORNING
    # sending late at night (23:00 Shanghai): delivery at 08:00 next morning, not now
    night = dt.datetime(2025, 7, 1, 15, 0, tzinfo=dt.UTC)
    assert compliance.delivery_moment(planned, night, SHANGHAI, RULES) == dt.datetime(
        2025, 7, 2, 0, 0, tzinfo=dt.UTC
    )
    # sending in the afternoon: at once
    afternoon = dt.datetime(2025, 7, 1, 6, 0, tzinfo=dt.UTC)
    assert compliance.delivery_moment(planned, afternoon, SHANGHAI, RULES) is None
    # sending before the planned moment: at the planned moment
    early = dt.datetime(2025, 6, 30, 22, 0, tzinfo=dt.UTC)
    assert compliance.delivery_moment(planned, early, SHANGHAI, RULES) == planned


@settings(max_examples=300, deadline=None)
@given(
    planned=st.datetimes(
        min_value=dt.datetime(2024, 1, 1),
        max_value=dt.datetime(2026, 1, 1),
        timezones=st.just(dt.UTC),
    ),
    offset=st.integers(min_value=-72 * 3600, max_value=72 * 3600),
    timezone=st.sampled_from([SHANGHAI, "America/New_York", "Europe/London", "Pacific/Auckland"]),
)
def test_delivery_is_never_at_night_on_the_customers_clock(planned, offset, timezone):
    now = planned + dt.timedelta(seconds=offset)
    planned_in_window = compliance.within_window(planned, timezone, RULES)
    moment = compliance.delivery_moment(planned_in_window, now, timezone, RULES)
    actual = moment or now
    local = compliance.local_time(actual, timezone).time()
    assert RULES.window_start <= local < RULES.window_end
    if moment is not None and moment != planned_in_window:
        # moved into the window: the next opening, never more than a day away
        assert moment - now <= dt.timedelta(hours=24)


# --- habits and the moment of delivery -----------------------------------------------------


def test_a_customer_paying_around_the_25th_has_that_habit():
    days = [dt.date(2025, m, d) for m, d in ((1, 25), (2, 24), (3, 26), (4, 25), (5, 10))]
    habits = learn_habits([("C1", d) for d in days], Timing())
    assert habits["C1"].day_of_month == 25
    assert habits["C1"].share == pytest.approx(0.8)


def test_a_friday_payer_has_a_weekday_habit_and_a_scattered_one_none():
    fridays = [dt.date(2025, 1, 3) + dt.timedelta(weeks=w * 5 + 1) for w in range(5)]
    scattered = [dt.date(2025, 1, 1) + dt.timedelta(days=d * 37) for d in range(6)]
    habits = learn_habits([("F", d) for d in fridays] + [("S", d) for d in scattered], Timing())
    assert habits["F"].weekday == 4
    assert "S" not in habits


def test_too_few_payments_teach_no_habit():
    assert learn_habits([("C", dt.date(2025, 1, 25))] * 2, Timing()) == {}


def test_the_reminder_goes_the_day_before_the_habitual_payday_within_72_hours():
    timing, rules = Timing(), RULES
    as_of = dt.date(2025, 7, 1)  # habit: the 3rd; reminder on the 2nd at 10:00 local
    moment = planned_moment(as_of, SHANGHAI, Habit(day_of_month=3), timing, rules)
    assert moment == dt.datetime(2025, 7, 2, 2, 0, tzinfo=dt.UTC)
    # payday too far ahead: the planned day at the preferred hour
    far = planned_moment(as_of, SHANGHAI, Habit(day_of_month=20), timing, rules)
    assert far == dt.datetime(2025, 7, 1, 2, 0, tzinfo=dt.UTC)
    # no habit
    assert planned_moment(as_of, SHANGHAI, None, timing, rules) == far


@settings(max_examples=200, deadline=None)
@given(
    as_of=st.dates(min_value=dt.date(2015, 1, 1), max_value=dt.date(2030, 12, 31)),
    day=st.one_of(st.none(), st.integers(1, 31)),
    weekday=st.one_of(st.none(), st.integers(0, 6)),
    hour=st.integers(0, 23),
    timezone=st.sampled_from([SHANGHAI, "America/Los_Angeles", "Asia/Kolkata", "Europe/Berlin"]),
)
def test_planned_moments_are_in_the_window_and_within_the_horizon(
    as_of, day, weekday, hour, timezone
):
    timing = Timing(preferred_hour=hour)
    habit = (
        Habit(day_of_month=day)
        if day
        else (Habit(weekday=weekday) if weekday is not None else None)
    )
    moment = planned_moment(as_of, timezone, habit, timing, RULES)
    local = compliance.local_time(moment, timezone)
    assert RULES.window_start <= local.time() < RULES.window_end
    start = dt.datetime.combine(as_of, dt.time(0), tzinfo=local.tzinfo)
    assert start <= local < start + dt.timedelta(hours=timing.horizon_hours)


def test_the_shipped_strategy_loads_and_its_ladders_rise():
    strategy = load_strategy()
    assert [s.name for s in strategy.stages] == [
        "courtesy",
        "first_reminder",
        "second_reminder",
        "final_notice",
    ]
    assert [d for _, d in strategy.ladder(False)] == [-3, 1, 15, 30]
    assert [d for _, d in strategy.ladder(True)] == [-7, 1, 7, 15]
    assert strategy.stage_for(30, False).mentions_legal
    assert not any(s.mentions_legal for s in strategy.stages[:-1])
    assert strategy.stage_for(-4, False) is None
    assert strategy.stage_for(16, True).name == "final_notice"


def test_a_strategy_that_contradicts_itself_is_refused(tmp_path):
    from receivables.config import ConfigError

    text = load_strategy.__module__ and ""  # keep the shipped file as the base
    shipped = (
        __import__("receivables.collection.strategy", fromlist=["x"]).DEFAULT_STRATEGY_FILE
    ).read_text(encoding="utf-8")
    bad = shipped.replace("days_past_due: 15", "days_past_due: 0")
    path = tmp_path / "strategy.yaml"
    path.write_text(text + bad, encoding="utf-8")
    with pytest.raises(ConfigError, match="days_past_due must rise"):
        load_strategy(path)
    path.write_text(shipped.replace('window_end: "21:00"', 'window_end: "07:00"'), "utf-8")
    with pytest.raises(ConfigError, match="window_end"):
        load_strategy(path)
    path.write_text(shipped.replace("grades: [D, E]", "grades: [D, Z]"), "utf-8")
    with pytest.raises(ConfigError, match="unknown grade"):
        load_strategy(path)


def test_the_worked_window_example_of_the_formulas():
    moment = dt.datetime(2025, 3, 10, 4, 0, tzinfo=dt.UTC)
    assert compliance.contact_window(candidate(send_at=moment), RULES) is None  # 12:00 Shanghai
    new_york = candidate(timezone="America/New_York", send_at=moment)  # 00:00 New York
    assert compliance.contact_window(new_york, RULES).rule == "contact_window"
    opening = compliance.within_window(moment, "America/New_York", RULES)
    assert compliance.local_time(opening, "America/New_York") == dt.datetime(
        2025, 3, 10, 8, 0, tzinfo=compliance.local_time(opening, "America/New_York").tzinfo
    )
    same_day = candidate(send_at=moment, other_sends=(moment - dt.timedelta(hours=1),))
    assert compliance.check(same_day, RULES).rule == "daily_cap"
