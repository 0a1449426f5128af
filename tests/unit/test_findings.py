"""Findings and recommendations of the quarterly evaluation: each rule on hand-made trends
(pure), its sentence in English and Chinese, the quarterly roll rates of a hand-worked ledger and
the feedback summary on both engines."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

import pytest
import sqlalchemy as sa

from receivables.aging import InvoiceFacts, compute_snapshot
from receivables.collection.strategy import load_strategy
from receivables.config import Policy
from receivables.evaluation import findings as fnd
from receivables.evaluation.findings import (
    Evidence,
    Finding,
    bad_debt_rising,
    cei_falling,
    collection_success_low,
    cure_rate_falling,
    early_roll_rising,
    feedback_summary,
    findings,
    format_figure,
    late_roll_rising,
    overdue_ratio_rising,
    quarterly_roll_rates,
    target_missed,
)
from receivables.evaluation.kpis import QuarterKpis
from receivables.evaluation.quarters import Quarter
from receivables.risk.provisions import update_roll_rates
from receivables.warehouse.schema import customer_feedback, fx_rates, roll_rates, staff_feedback
from tests.helpers import load_ledger, source_file

D = dt.date
Q1, Q2, Q3 = Quarter(2025, 1), Quarter(2025, 2), Quarter(2025, 3)
POLICY = Policy()
STRATEGY = load_strategy()
LATE = ("31-60", "61-90")
EARLY = ("1-30", "31-60")
CJK = re.compile(r"[\u4e00-\u9fff]")


# --- hand-made trends ------------------------------------------------------------------------


def trend(**series: list[str | None]) -> list[QuarterKpis]:
    """QuarterKpis ending in 2025Q2, oldest first, one value per quarter of each series."""
    length = max(len(values) for values in series.values())
    quarters = Q2.trend(length)
    return [
        QuarterKpis(
            quarter=q,
            reporting_currency="CNY",
            values={
                metric: None if values[i] is None else Decimal(values[i])
                for metric, values in series.items()
            },
        )
        for i, q in enumerate(quarters)
    ]


def evidence(rolls: dict | None = None, strategy=STRATEGY, **series) -> Evidence:
    """Evidence of the KPI ``series`` and the ``rolls`` (a roll's rates), each oldest first and
    ending in 2025Q2 (shorter ones padded with unknown values at the start)."""
    rolls = rolls or {}
    length = max([1, *map(len, series.values()), *map(len, rolls.values())])

    def padded(values):
        return [None] * (length - len(values)) + list(values)

    kpis = trend(**({m: padded(v) for m, v in series.items()} or {"cei": [None] * length}))
    rates = {
        q.label: {
            roll: None if padded(values)[i] is None else Decimal(padded(values)[i])
            for roll, values in rolls.items()
        }
        for i, q in enumerate(Q2.trend(length))
    }
    return Evidence(trend=kpis, rolls=rates, policy=POLICY, strategy=strategy)


def texts(finding: Finding) -> tuple[str, str]:
    en, zh = finding.text("en"), finding.text("zh-CN")
    for sentence in (en, zh):
        assert sentence
        assert "{" not in sentence
        assert "None" not in sentence
    assert en[0].isupper()
    assert en.endswith(".")
    assert ". " not in en  # one sentence
    assert not CJK.search(en)
    assert zh.endswith("。")
    assert zh.count("。") == 1
    assert CJK.search(zh)
    return en, zh


# --- missed targets --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "severity"),
    [("0.105", "low"), ("0.12", "medium"), ("0.125", "high"), ("0.444444", "high")],
)
def test_a_missed_target_is_a_finding_graded_by_how_far_it_missed(value, severity):
    found = target_missed(evidence(overdue_ratio=[value]), "overdue_ratio")
    assert found.code == "target_missed"
    assert found.severity == severity
    assert found.subject == "overdue_ratio"
    assert found.observation == "above_target"
    assert found.recommendation == "investigate_kpi"
    assert found.figures == {"value": Decimal(value), "target": Decimal("0.10")}


def test_a_met_target_or_a_kpi_without_value_or_target_is_no_finding():
    assert target_missed(evidence(overdue_ratio=["0.10"]), "overdue_ratio") is None
    assert target_missed(evidence(overdue_ratio=[None]), "overdue_ratio") is None
    assert target_missed(evidence(dso=["500"]), "dso") is None  # no target


def test_a_missed_target_in_both_languages():
    found = target_missed(evidence(overdue_ratio=["0.444444"]), "overdue_ratio")
    en, zh = texts(found)
    assert en == (
        "In 2025 Q2, the overdue ratio was 44.4%, above its target of at most 10.0%; please "
        "review the causes with the collection team and agree on corrective steps."
    )
    assert zh == (
        "2025年第二季度，逾期率为44.4%，高于目标上限10.0%，"
        "建议与催收团队共同分析原因，并商定改进措施。"
    )
    lower = target_missed(evidence(cure_rate=["0.2"]), "cure_rate")
    assert lower.observation == "below_target"
    assert lower.severity == "medium"  # 0.05 short of 0.25: 20 %
    en, zh = texts(lower)
    assert "below its target of at least 25.0%" in en
    assert "20.0%" in zh
    assert "低于目标下限25.0%" in zh
    days = target_missed(evidence(average_days_delinquent=["60.666"]), "average_days_delinquent")
    en, zh = texts(days)
    assert "was 60.7 days, above its target of at most 30.0 days" in en
    assert "平均逾期天数为60.7天，高于目标上限30.0天" in zh


def test_targets_with_a_rule_of_their_own_are_not_reported_twice():
    # the collection success rate's miss is its own rule's
    assert (
        target_missed(evidence(collection_success_rate=["0.2"]), "collection_success_rate") is None
    )
    # the bad debt ratio above target: the generic finding unless it also rose
    steady = evidence(bad_debt_ratio=["0.05", "0.04"])
    assert target_missed(steady, "bad_debt_ratio").severity == "high"
    assert bad_debt_rising(steady) is None
    rising = evidence(bad_debt_ratio=["0.03", "0.04"])
    assert target_missed(rising, "bad_debt_ratio") is None
    assert bad_debt_rising(rising) is not None


# --- roll rates ------------------------------------------------------------------------------


def test_the_late_roll_rising_two_quarters_and_above_its_mean_is_high():
    found = late_roll_rising(evidence(rolls={LATE: ["0.10", "0.20", "0.25", "0.30"]}))
    assert found.code == "late_roll_rising"
    assert found.severity == "high"
    assert found.subject == LATE
    assert found.observation == "rising"
    assert found.recommendation == "earlier_second_reminder"
    assert found.figures["second_reminder_day"] == 15  # the project's strategy
    assert found.figures["series"] == (Decimal("0.20"), Decimal("0.25"), Decimal("0.30"))
    assert found.figures["mean"] == Decimal("0.18333333")
    en, zh = texts(found)
    assert en == (
        "In 2025 Q2, the roll rate from 31-60 to 61-90 days past due was 30.0%, having risen in "
        "each of the last 2 quarters (20.0% → 25.0% → 30.0%); we suggest sending the second "
        "reminder earlier (it now goes on day 15 past due)."
    )
    assert zh == (
        "2025年第二季度，逾期31-60天账款向61-90天的迁徙率为30.0%，已连续2个季度上升"
        "（20.0% → 25.0% → 30.0%），建议提早发送第二次提醒（目前在逾期第15天发送）。"
    )


def test_the_late_roll_rising_but_not_above_its_mean_is_medium():
    found = late_roll_rising(evidence(rolls={LATE: ["0.40", "0.20", "0.25", "0.30"]}))
    assert found.severity == "medium"
    assert found.observation == "rising"


def test_the_late_roll_above_its_mean_by_the_margin():
    # not rising (0.29 < 0.30), but 0.29 > 0.2333… x 1.2 = 0.28
    found = late_roll_rising(evidence(rolls={LATE: ["0.20", "0.20", "0.30", "0.29"]}))
    assert found.severity == "medium"
    assert found.observation == "above_average"
    assert found.figures["earlier"] == 3
    en, zh = texts(found)
    assert "was 29.0%, well above its average of 23.3% over the 3 quarters before" in en
    assert "29.0%" in zh
    assert "明显高于此前3个季度的平均水平23.3%" in zh


@pytest.mark.parametrize(
    "rates",
    [
        ["0.20", "0.25", "0.24", "0.26"],  # up, down, up; 0.26 < 0.23 x 1.2
        ["0.20", "0.20", "0.24"],  # flat then up; exactly 20 % above the mean is not more
        ["0.30", None, "0.25", "0.30"],  # a quarter without a base breaks the run; mean 0.275
        ["0.30"],  # one quarter: nothing to compare
        ["0.20", "0.25", None],  # no rate for the evaluated quarter
    ],
)
def test_the_late_roll_not_rising(rates):
    assert late_roll_rising(evidence(rolls={LATE: rates})) is None


def test_a_quarter_without_a_base_leaves_the_mean_of_the_others():
    # not a run, but 0.30 > (0.10 + 0.25) / 2 x 1.2 = 0.21
    found = late_roll_rising(evidence(rolls={LATE: ["0.10", None, "0.25", "0.30"]}))
    assert found.observation == "above_average"
    assert found.figures["earlier"] == 2
    assert found.figures["mean"] == Decimal("0.17500000")


def test_the_early_roll_rising_recommends_an_earlier_courtesy_notice_or_first_reminder():
    found = early_roll_rising(evidence(rolls={EARLY: ["0.05", "0.06", "0.08"]}))
    assert found.code == "early_roll_rising"
    assert found.subject == EARLY
    assert found.recommendation == "earlier_first_reminder"
    assert found.figures["courtesy_lead_days"] == 3
    assert found.figures["first_reminder_day"] == 1
    en, zh = texts(found)
    assert "8.0%" in en
    assert "courtesy notice (now 3 days before the due date)" in en
    assert "first reminder (now on day 1 past due)" in en
    assert "逾期1-30天账款向31-60天的迁徙率为8.0%" in zh
    assert "到期前3天" in zh
    assert "逾期第1天" in zh
    assert early_roll_rising(evidence(rolls={EARLY: ["0.08", "0.06", "0.07"]})) is None
    # the late roll rising says nothing about the early one
    assert early_roll_rising(evidence(rolls={LATE: ["0.05", "0.06", "0.08"]})) is None


def test_without_a_strategy_the_recommendation_cites_no_day():
    found = late_roll_rising(evidence(rolls={LATE: ["0.1", "0.2", "0.3"]}, strategy=None))
    assert found.figures["second_reminder_day"] is None
    en, zh = texts(found)
    assert en.endswith("; we suggest sending the second reminder earlier.")
    assert zh.endswith("，建议提早发送第二次提醒。")
    legal = bad_debt_rising(
        evidence(
            bad_debt_ratio=["0.03", "0.04"], strategy=STRATEGY.model_copy(update={"legal": None})
        )
    )
    assert legal.figures["legal_days"] is None
    en, zh = texts(legal)
    assert en.endswith("we suggest escalating suitable cases to legal action earlier.")
    assert zh.endswith("建议对符合条件的案件更早启动法律程序。")


# --- KPI trends ------------------------------------------------------------------------------


def test_the_cure_rate_falling_two_quarters_recommends_earlier_calls():
    found = cure_rate_falling(evidence(cure_rate=["0.30", "0.28", "0.27"]))
    assert found.code == "cure_rate_falling"
    assert found.severity == "medium"  # 0.27 still meets 0.25
    assert found.recommendation == "earlier_calls"
    assert found.figures["call_day"] == 15  # second_reminder plans the first call
    en, zh = texts(found)
    assert en == (
        "In 2025 Q2, the cure rate was 27.0%, having fallen in each of the last 2 quarters "
        "(30.0% → 28.0% → 27.0%); we suggest scheduling collector calls earlier in the reminder "
        "ladder (they now start on day 15 past due)."
    )
    assert zh == (
        "2025年第二季度，逾期治愈率为27.0%，已连续2个季度下降（30.0% → 28.0% → 27.0%），"
        "建议在催收流程中更早安排电话催收（目前从逾期第15天开始）。"
    )
    assert cure_rate_falling(evidence(cure_rate=["0.30", "0.26", "0.24"])).severity == "high"


@pytest.mark.parametrize(
    "rates", [["0.30", "0.26", "0.26"], ["0.26", "0.30", "0.28"], ["0.30", "0.28"], [None, "0.3"]]
)
def test_the_cure_rate_not_falling(rates):
    assert cure_rate_falling(evidence(cure_rate=rates)) is None


def test_the_overdue_ratio_rising_three_quarters_recommends_tighter_limits():
    found = overdue_ratio_rising(evidence(overdue_ratio=["0.05", "0.06", "0.07", "0.08"]))
    assert found.code == "overdue_ratio_rising"
    assert found.severity == "medium"
    assert found.recommendation == "tighter_credit_limits"
    assert found.figures["quarters"] == 3
    en, zh = texts(found)
    assert "8.0%" in en
    assert "having risen in each of the last 3 quarters (5.0% → 6.0% → 7.0% → 8.0%)" in en
    assert en.endswith("we suggest tighter credit limits for customers graded D and E.")
    assert "逾期率为8.0%，已连续3个季度上升" in zh
    assert zh.endswith("建议收紧D级和E级客户的信用额度。")
    assert (
        overdue_ratio_rising(evidence(overdue_ratio=["0.08", "0.09", "0.11", "0.12"])).severity
        == "high"
    )


@pytest.mark.parametrize(
    "ratios",
    [
        ["0.06", "0.07", "0.08"],  # only two rises known
        ["0.05", "0.06", "0.06", "0.08"],
        ["0.05", "0.07", "0.06", "0.08"],
        ["0.05", None, "0.07", "0.08"],
    ],
)
def test_the_overdue_ratio_not_rising_three_quarters(ratios):
    assert overdue_ratio_rising(evidence(overdue_ratio=ratios)) is None


def test_the_bad_debt_ratio_above_target_and_rising_recommends_earlier_legal_escalation():
    found = bad_debt_rising(evidence(bad_debt_ratio=["0.02", "0.03"]))
    assert found.code == "bad_debt_rising"
    assert found.severity == "high"
    assert found.recommendation == "earlier_legal_escalation"
    assert found.figures == {
        "value": Decimal("0.03"),
        "target": Decimal("0.02"),
        "previous": Decimal("0.02"),
        "legal_days": 90,
    }
    en, zh = texts(found)
    assert en == (
        "In 2025 Q2, the bad debt ratio was 3.0%, above its target of at most 2.0% and up from "
        "2.0% the quarter before; we suggest escalating suitable cases to legal action earlier "
        "(now from 90 days past due)."
    )
    assert zh == (
        "2025年第二季度，坏账率为3.0%，高于目标上限2.0%，且较上一季度的2.0%有所上升，"
        "建议对符合条件的案件更早启动法律程序（目前自逾期90天起）。"
    )


@pytest.mark.parametrize("ratios", [["0.04", "0.03"], ["0.01", "0.015"], [None, "0.03"], ["0.03"]])
def test_the_bad_debt_ratio_not_above_target_and_rising(ratios):
    assert bad_debt_rising(evidence(bad_debt_ratio=ratios)) is None


def test_the_collection_success_rate_below_target_recommends_reviewing_the_reminders():
    found = collection_success_low(evidence(collection_success_rate=["0.30"]))
    assert found.code == "collection_success_low"
    assert found.severity == "medium"  # 0.05 of 0.35: 14 %
    assert found.recommendation == "review_reminders"
    en, zh = texts(found)
    assert en == (
        "In 2025 Q2, the collection success rate was 30.0%, below its target of at least "
        "35.0%; we suggest reviewing the timing and the content of the reminders."
    )
    assert zh == (
        "2025年第二季度，催收成功率为30.0%，低于目标下限35.0%，"
        "建议重新审视催收提醒的发送时机和内容。"
    )
    assert collection_success_low(evidence(collection_success_rate=["0.10"])).severity == "high"
    assert collection_success_low(evidence(collection_success_rate=["0.35"])) is None
    assert collection_success_low(evidence(collection_success_rate=[None])) is None


def test_the_cei_falling_two_quarters_recommends_reviewing_the_follow_up():
    found = cei_falling(evidence(cei=["0.90", "0.85", "0.82"]))
    assert found.code == "cei_falling"
    assert found.severity == "medium"
    assert found.recommendation == "review_follow_up"
    en, zh = texts(found)
    assert "the collection effectiveness index (CEI) was 82.0%" in en
    assert "promises to pay" in en
    assert "催收有效性指数 (CEI)为82.0%，已连续2个季度下降（90.0% → 85.0% → 82.0%）" in zh
    assert cei_falling(evidence(cei=["0.90", "0.78", "0.70"])).severity == "high"
    assert cei_falling(evidence(cei=["0.90", "0.85", "0.86"])) is None
    assert cei_falling(evidence(cei=["0.85", "0.82"])) is None


# --- all of them -----------------------------------------------------------------------------


def test_findings_run_every_rule_in_a_fixed_order():
    kpis = trend(
        overdue_ratio=["0.05", "0.06", "0.07", "0.12"],
        cure_rate=["0.30", "0.30", "0.28", "0.27"],
        bad_debt_ratio=["0.01", "0.01", "0.02", "0.03"],
        collection_success_rate=["0.4", "0.4", "0.4", "0.30"],
        cei=["0.9", "0.9", "0.85", "0.82"],
        average_days_delinquent=["20", "25", "28", "31"],
    )
    rolls = {
        q.label: {LATE: Decimal(late), EARLY: Decimal(early)}
        for q, late, early in zip(
            Q2.trend(4), ["0.1", "0.2", "0.25", "0.3"], ["0.1", "0.1", "0.1", "0.1"], strict=True
        )
    }
    found = findings(kpis, rolls, POLICY, STRATEGY)
    assert [(f.code, f.subject_name) for f in found] == [
        ("target_missed", "overdue_ratio"),
        ("target_missed", "average_days_delinquent"),
        ("late_roll_rising", "31-60>61-90"),
        ("cure_rate_falling", "cure_rate"),
        ("overdue_ratio_rising", "overdue_ratio"),
        ("bad_debt_rising", "bad_debt_ratio"),
        ("collection_success_low", "collection_success_rate"),
        ("cei_falling", "cei"),
    ]
    assert found == findings(kpis, rolls, POLICY, STRATEGY)  # pure
    for f in found:
        texts(f)
    assert findings([], rolls, POLICY, STRATEGY) == []


def test_every_text_has_both_languages_and_the_same_fields():
    assert set(fnd.TEXTS) == set(fnd.LOCALES)
    en, zh = fnd.TEXTS["en"], fnd.TEXTS["zh-CN"]
    assert set(en) == set(zh)
    for key in set(en) - {"quarter"}:  # the Chinese quarter is numbered in Chinese
        fields_en = set(re.findall(r"{(\w+)}", en[key]))
        assert fields_en == set(re.findall(r"{(\w+)}", zh[key])), key
    for metric in fnd.UNITS:
        assert f"kpi.{metric}" in en


def test_figures_are_formatted_by_unit():
    assert format_figure(Decimal("0.444444"), "ratio", "en") == "44.4%"
    assert format_figure(Decimal("0.00049"), "ratio", "zh-CN") == "0.0%"
    assert format_figure(Decimal("0.00050"), "ratio", "en") == "0.1%"  # half-up
    assert format_figure(Decimal("136.5"), "days", "en") == "136.5 days"
    assert format_figure(Decimal("75.83"), "days", "zh-CN") == "75.8天"
    assert format_figure(Decimal("1234567.5"), "money", "en", "CNY") == "1,234,567.50 CNY"
    assert format_figure(Decimal(5), "count", "zh-CN") == "5"
    with pytest.raises(ValueError, match="locale"):
        target_missed(evidence(overdue_ratio=["0.2"]), "overdue_ratio").text("fr")


# --- quarterly roll rates on a hand-worked ledger ------------------------------------------------


def ledger() -> tuple[list[InvoiceFacts], list[InvoiceFacts], list[InvoiceFacts]]:
    """CNY, USD and EUR invoices (amounts, then where each stands at the month-ends 02-28,
    03-31, 04-30, 05-31 and 06-30 of 2025)."""
    m = Decimal
    cny = [
        # A: current, 1-30 (15 days), 31-60 (45), 61-90 (76), 91-180 (106)
        InvoiceFacts("A", "C1", D(2025, 2, 14), D(2025, 3, 16), m(1000)),
        # B: current, 1-30 (10), paid on 04-20
        InvoiceFacts(
            "B", "C1", D(2025, 2, 19), D(2025, 3, 21), m(3000), ((D(2025, 4, 20), m(3000)),)
        ),
        # C: -, current, 1-30 (20) 2000, 31-60 (51) 1500 after 500 on 05-05, 61-90 (81) 1500
        InvoiceFacts(
            "C", "C2", D(2025, 3, 11), D(2025, 4, 10), m(2000), ((D(2025, 5, 5), m(500)),)
        ),
        # D: -, -, current, 1-30 (26), paid on 06-10
        InvoiceFacts(
            "D", "C2", D(2025, 4, 5), D(2025, 5, 5), m(4000), ((D(2025, 6, 10), m(4000)),)
        ),
        # E: -, current, 1-30 (10), paid on 05-25
        InvoiceFacts(
            "E", "C3", D(2025, 3, 20), D(2025, 4, 20), m(500), ((D(2025, 5, 25), m(500)),)
        ),
        # F: current, 1-30 (6), 31-60 (36), paid on 05-20
        InvoiceFacts(
            "F", "C3", D(2025, 2, 23), D(2025, 3, 25), m(6000), ((D(2025, 5, 20), m(6000)),)
        ),
        # H: -, current throughout
        InvoiceFacts("H", "C4", D(2025, 3, 1), D(2025, 7, 15), m(1000)),
        # K: current, current, paid on 04-15
        InvoiceFacts(
            "K", "C4", D(2025, 2, 10), D(2025, 4, 30), m(10000), ((D(2025, 4, 15), m(10000)),)
        ),
    ]
    # U (USD) and V (EUR): current, 1-30 (20), 31-60 (50), 61-90 (81), 91-180 (111)
    usd = [InvoiceFacts("U", "U1", D(2025, 2, 9), D(2025, 3, 11), m(100))]
    eur = [InvoiceFacts("V", "V1", D(2025, 2, 9), D(2025, 3, 11), m(10000))]
    return cny, usd, eur


@pytest.fixture
def rolled(engine):
    cny, usd, eur = ledger()
    load_ledger(engine, cny)
    load_ledger(engine, usd, currency="USD")
    load_ledger(engine, eur, currency="EUR")  # no rate: left out
    with engine.begin() as conn:
        file_id = source_file(conn)
        conn.execute(
            fx_rates.insert(),
            [
                {
                    "rate_date": day,
                    "currency": "USD",
                    "rate": Decimal(rate),
                    "source_file_id": file_id,
                }
                for day, rate in (
                    (D(2025, 3, 31), "6.5"),
                    (D(2025, 6, 30), "7"),
                    (D(2025, 7, 1), "8"),
                )
            ],
        )
    return engine


#: The rates worked out in :func:`test_quarterly_roll_rates_of_the_hand_worked_ledger`.
EXPECTED = {
    "2025Q1": {
        ("current", "1-30"): Decimal("0.51573850"),
        ("1-30", "31-60"): None,
        ("31-60", "61-90"): None,
        ("61-90", "91-180"): None,
        ("91-180", "181-360"): None,
        ("181-360", "361+"): None,
    },
    "2025Q2": {
        ("current", "1-30"): Decimal("0.33333333"),
        ("1-30", "31-60"): Decimal("0.56395349"),
        ("31-60", "61-90"): Decimal("0.34782609"),
        ("61-90", "91-180"): Decimal("1.00000000"),
        ("91-180", "181-360"): None,
        ("181-360", "361+"): None,
    },
}


def test_quarterly_roll_rates_of_the_hand_worked_ledger(rolled):
    """The quarterly roll rates of :func:`ledger`, worked by hand (Σ rolled ÷ Σ base over a
    quarter's monthly matrices; 8 places, half-up).

    2025Q1 (only the matrix 02-28 → 03-31: the ledger starts in February; USD at 6.5):
    current at 02-28 A 1 000, B 3 000, F 6 000, K 10 000 and U 100 USD = 650; all but K are in
    1-30 at 03-31: (10 000 + 650) / 20 650 = 0.515738498…

    2025Q2 (matrices 03-31 → 04-30, 04-30 → 05-31, 05-31 → 06-30; USD at 7, the rate of 06-30):

    * current: C 2 000, E 500, H 1 000, K 10 000 (03-31); H 1 000, D 4 000 (04-30); H 1 000
      (05-31) = 19 500, of which C, E and D rolled: 6 500 / 19 500 = 1/3.
    * 1-30: A 1 000, B 3 000, F 6 000, U 700 (03-31); C 2 000, E 500 (04-30); D 4 000 (05-31)
      = 17 200, of which A, F, U and C rolled: 9 700 / 17 200 = 0.563953488…
    * 31-60: A 1 000, F 6 000, U 700 (04-30); C 1 500 (05-31, after its 500 on 05-05) = 9 200,
      of which A, U and C rolled (F was paid): 3 200 / 9 200 = 0.347826086…
    * 61-90: A 1 000, U 700 (05-31), both rolled: 1.
    * 91-180 and 181-360 held nothing at the earlier month-ends: no rate.

    V (EUR) moves as U does; there is no EUR rate, so it is left out (counted, it would add
    10 000 wherever U's 700 is).
    """
    result = quarterly_roll_rates(rolled, [Q2, Q1], POLICY)
    assert list(result) == ["2025Q1", "2025Q2"]  # oldest first
    assert result == EXPECTED
    with rolled.connect() as conn:
        stored = set(conn.execute(sa.select(roll_rates.c.month_end).distinct()).scalars())
    # the month-ends of both quarters from the ledger's first month on (none before 02-28)
    assert stored == {D(2025, 3, 31), D(2025, 4, 30), D(2025, 5, 31), D(2025, 6, 30)}
    assert quarterly_roll_rates(rolled, [Q1, Q2], POLICY) == EXPECTED  # idempotent


def test_a_first_run_gives_what_the_daily_runs_stored(rolled):
    """With the month-end snapshots and matrices the daily risk runs leave behind, the same
    rates as a first run on an empty history."""
    month_ends = [D(2025, 2, 28), D(2025, 3, 31), D(2025, 4, 30), D(2025, 5, 31), D(2025, 6, 30)]
    for day in month_ends:
        compute_snapshot(rolled, day, POLICY.aging, summary=False)
    update_roll_rates(rolled, month_ends)
    assert quarterly_roll_rates(rolled, [Q1, Q2], POLICY) == EXPECTED


def test_quarterly_roll_rates_without_a_ledger_have_no_values(engine):
    result = quarterly_roll_rates(engine, [Q2], POLICY)
    assert result == {"2025Q2": dict.fromkeys(EXPECTED["2025Q2"])}


# --- feedback --------------------------------------------------------------------------------


def utc(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=dt.UTC)


@pytest.fixture
def feedback(engine):
    rows = [
        # just before midnight UTC on 03-31: 07:50 on 04-01 in Shanghai, the second quarter
        ("F1", "dispute", "open", utc(2025, 3, 31, 23, 50), "wrong amount on INV-1"),
        # 23:59 on 03-31 in Shanghai: the first quarter
        ("F2", "feedback", "resolved", utc(2025, 3, 31, 15, 59), "thanks"),
        ("F3", "dispute", "resolved", utc(2025, 5, 10, 3, 0), "already paid"),
        # 23:59:59 on 06-30 in Shanghai: the second quarter's last message
        ("F4", "feedback", "open", utc(2025, 6, 30, 15, 59, 59), "please call after 10"),
        # just before midnight UTC on 06-30: 07:50 on 07-01 in Shanghai, the third quarter
        ("F5", "dispute", "open", utc(2025, 6, 30, 23, 50), "goods returned"),
        ("F6", "dispute", "open", utc(2025, 2, 1, 2, 0), "never delivered"),  # still open
    ]
    rows += [
        ("M", "feedback", "open", utc(2025, 5, day, 2, 0), f"note {day} " + "x" * 300 * (day == 9))
        for day in range(1, 10)
    ]
    with engine.begin() as conn:
        conn.execute(
            customer_feedback.insert(),
            [
                {"customer_id": c, "kind": k, "status": s, "received_at": at, "message": text}
                for c, k, s, at, text in rows
            ],
        )
    return engine


def test_the_feedback_of_a_quarter_by_business_date_in_shanghai(feedback):
    summary = feedback_summary(feedback, Q2)
    assert summary.timezone == "Asia/Shanghai"
    # F1 (04-01 in Shanghai), F3, F4 (06-30 in Shanghai) and the nine notes of May
    assert summary.counts == {
        "dispute": {"open": 1, "resolved": 1},
        "feedback": {"open": 10, "resolved": 0},
    }
    assert summary.received == 12
    assert summary.open_disputes_at_end == 2  # F1 and F6 (F5 came in the next quarter)
    recent = summary.recent
    assert len(recent) == 10
    assert [(m.customer_id, m.date) for m in recent[:3]] == [
        ("F4", D(2025, 6, 30)),
        ("F3", D(2025, 5, 10)),
        ("M", D(2025, 5, 9)),
    ]
    assert recent[-1].date == D(2025, 5, 2)  # the tenth newest; 05-01 and F1 are older
    assert recent[0].kind == "feedback"
    assert recent[0].message == "please call after 10"
    long = recent[2].message
    assert len(long) <= 200
    assert long.startswith("note 9 xxx")
    assert long.endswith("(307 characters)")
    assert summary.staff == []


def test_a_message_just_before_midnight_utc_counts_on_the_next_business_day(feedback):
    q3 = feedback_summary(feedback, Q3)
    assert q3.counts["dispute"] == {"open": 1, "resolved": 0}
    assert [(m.customer_id, m.date) for m in q3.recent] == [("F5", D(2025, 7, 1))]
    assert q3.open_disputes_at_end == 3  # F1, F5, F6
    q1 = feedback_summary(feedback, Q1)
    assert q1.counts == {
        "dispute": {"open": 1, "resolved": 0},
        "feedback": {"open": 0, "resolved": 1},
    }
    assert [m.customer_id for m in q1.recent] == ["F2", "F6"]
    assert q1.recent[0].date == D(2025, 3, 31)
    assert q1.open_disputes_at_end == 1  # F6: F1 arrived on 04-01 in Shanghai


def test_an_empty_quarter_has_zero_counts(engine):
    summary = feedback_summary(engine, Q2)
    assert summary.received == 0
    assert summary.open_disputes_at_end == 0
    assert summary.recent == []
    assert summary.staff == []
    assert set(summary.staff_counts.values()) == {0}


def test_the_staff_remarks_of_a_quarter_newest_first_by_topic(engine):
    remarks = [
        ("S1", D(2025, 3, 31), "王芳", "上海一组", "strategy", "第二次提醒应提前到逾期十天。"),
        ("S2", D(2025, 4, 1), "Li Lei", None, "templates", "Too stiff.\nSay please."),
        ("S3", D(2025, 6, 30), "Zhang Wei", None, "other", '=HYPERLINK("x") \u202e kept'),
        ("S4", D(2025, 6, 30), "Zhang Wei", None, "strategy", "call before the final letter"),
        ("S5", D(2025, 7, 1), "Zhang Wei", None, "tools", "next quarter"),
    ]
    with engine.begin() as conn:
        conn.execute(
            staff_feedback.insert(),
            [
                {
                    "feedback_id": i,
                    "given_on": on,
                    "author": who,
                    "team": team,
                    "topic": topic,
                    "text": text,
                    "source_file_id": 1,
                }
                for i, on, who, team, topic, text in remarks
            ],
        )
    summary = feedback_summary(engine, Q2)
    assert [(r.feedback_id, r.date) for r in summary.staff] == [
        ("S4", D(2025, 6, 30)),
        ("S3", D(2025, 6, 30)),
        ("S2", D(2025, 4, 1)),
    ]
    assert summary.staff[1].text == '=HYPERLINK("x") \u202e kept'  # as given: shown escaped later
    assert summary.staff_counts == {
        "strategy": 1,
        "templates": 1,
        "customers": 0,
        "legal": 0,
        "tools": 0,
        "other": 1,
    }
    assert [r.feedback_id for r in feedback_summary(engine, Q1).staff] == ["S1"]
