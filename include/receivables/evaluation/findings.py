"""What the quarterly evaluation concludes: rule-based findings with a recommendation each, the
quarterly roll rates some of the rules read, and what customers told us in the quarter.

* **Quarterly roll rates** (:func:`quarterly_roll_rates`). From the monthly roll matrix
  (``roll_rates``, docs/formulas.md §5): for each bucket, the outstanding in it at the quarter's
  opening and its first two month-ends that sat in a worse bucket one month later, over all the
  outstanding in it at those month-ends — Σ rolled ÷ Σ base over the three monthly matrices of
  the quarter (``month_end`` in the quarter), whole portfolio, each currency's sums converted to
  the reporting currency at the rates in force on the quarter's last day (a currency without a
  rate is left out). The matrices, and the month-end snapshots under them, are computed from
  the ledger where missing or stale first, so a first run gives what a history of daily runs
  would.
* **Findings** (:func:`findings`). Each rule is a small pure function of the KPI trend (oldest
  first, the evaluated quarter last), the quarterly roll rates, the policy and the dunning
  strategy; it returns a :class:`Finding` or None. Thresholds are the constants below.
  :meth:`Finding.text` renders a finding as one sentence in English or Simplified Chinese from
  :data:`TEXTS`.
* **Feedback** (:func:`feedback_summary`). Disputes and feedback customers sent through their
  reminder's link, by the business date they arrived on; and the remarks the collection staff
  dropped as ``feedback*`` files (``staff_feedback``), by the date they were given.
"""

from __future__ import annotations

import datetime as dt
import itertools
import logging
import string
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from receivables.aging import ensure_snapshots
from receivables.collection.holds import utc
from receivables.collection.selfservice import FEEDBACK_KINDS
from receivables.collection.strategy import Strategy
from receivables.config import DEFAULT_TIMEZONE, AgingPolicy, KpiTarget, Policy
from receivables.dates import as_of_date, start_of_business_day
from receivables.evaluation.kpis import METRIC_LABELS, UNITS, QuarterKpis, target_status
from receivables.evaluation.quarters import Quarter
from receivables.fx import rates_on
from receivables.ingest.kinds import FEEDBACK_TOPICS
from receivables.risk.provisions import (
    earliest_ledger_date,
    exact_rate,
    month_end,
    update_roll_rates,
)
from receivables.text import one_line, shown
from receivables.warehouse.schema import customer_feedback, roll_rates, staff_feedback

log = logging.getLogger(__name__)

# --- thresholds ------------------------------------------------------------------------------

#: A roll rate "is rising" when it rose in each of this many quarters in a row ...
ROLL_RISING_QUARTERS = 2
#: ... or when the evaluated quarter's rate exceeds the mean of the earlier quarters of the
#: trend by more than this share of that mean (0.20: more than 20 % above it).
ROLL_MARGIN = Decimal("0.20")
#: The mean of the earlier quarters needs at least this many of them with a rate.
ROLL_MEAN_MIN_QUARTERS = 2
#: The cure rate "is falling" when it fell in each of this many quarters in a row.
CURE_FALLING_QUARTERS = 2
#: The overdue ratio "is rising" when it rose in each of this many quarters in a row.
OVERDUE_RISING_QUARTERS = 3
#: The CEI "is falling" when it fell in each of this many quarters in a row.
CEI_FALLING_QUARTERS = 2
#: A missed target is of ``medium`` severity when the value is off by at least this share of
#: the target, ``high`` from :data:`MISS_HIGH` (a target of 0 missed is always ``high``).
MISS_MEDIUM = Decimal("0.10")
MISS_HIGH = Decimal("0.25")
#: The rolls the reminder rules watch (buckets of the default aging policy; with other bucket
#: names these rules find nothing).
FIRST_ROLL = ("1-30", "31-60")
LATE_ROLL = ("31-60", "61-90")
#: Grades whose credit limits the overdue-ratio rule proposes to tighten.
TIGHTEN_GRADES = ("D", "E")

SEVERITIES = ("low", "medium", "high")
LOCALES = ("en", "zh-CN")

#: Messages listed in the feedback summary, and the characters shown of each.
RECENT_MESSAGES = 10
MESSAGE_LIMIT = 200
FEEDBACK_STATUSES = ("open", "resolved")
#: Staff remarks listed in the report (the workbook lists every one), and the characters shown
#: of each there.
STAFF_REMARKS = 20
STAFF_REMARK_LIMIT = 500

# --- the words -------------------------------------------------------------------------------

#: Every text of a finding, per locale: the sentence that joins an observation and a
#: recommendation, the observations and recommendations (a ``.plain`` recommendation is used
#: when a figure the full one cites is unknown), the names of the KPIs, the roll rates, the
#: quarter and the units of the figures.
TEXTS: dict[str, dict[str, str]] = {
    "en": {
        "sentence": "{observation}; {recommendation}.",
        "quarter": "{year} Q{number}",
        "roll": "the roll rate from {from_bucket} to {to_bucket} days past due",
        "unit.ratio": "{value}%",
        "unit.days": "{value} days",
        "unit.money": "{value} {currency}",
        "unit.count": "{value}",
        "observation.above_target": (
            "In {quarter}, {subject} was {value}, above its target of at most {target}"
        ),
        "observation.below_target": (
            "In {quarter}, {subject} was {value}, below its target of at least {target}"
        ),
        "observation.rising": (
            "In {quarter}, {subject} was {value}, having risen in each of the last {quarters} "
            "quarters ({series})"
        ),
        "observation.falling": (
            "In {quarter}, {subject} was {value}, having fallen in each of the last {quarters} "
            "quarters ({series})"
        ),
        "observation.above_average": (
            "In {quarter}, {subject} was {value}, well above its average of {mean} over the "
            "{earlier} quarters before"
        ),
        "observation.above_target_rising": (
            "In {quarter}, {subject} was {value}, above its target of at most {target} and up "
            "from {previous} the quarter before"
        ),
        "recommendation.investigate_kpi": (
            "please review the causes with the collection team and agree on corrective steps"
        ),
        "recommendation.earlier_second_reminder": (
            "we suggest sending the second reminder earlier (it now goes on day "
            "{second_reminder_day} past due)"
        ),
        "recommendation.earlier_second_reminder.plain": (
            "we suggest sending the second reminder earlier"
        ),
        "recommendation.earlier_first_reminder": (
            "we suggest sending the courtesy notice (now {courtesy_lead_days} days before the "
            "due date) or the first reminder (now on day {first_reminder_day} past due) earlier"
        ),
        "recommendation.earlier_first_reminder.plain": (
            "we suggest sending a courtesy notice before the due date, or the first reminder, "
            "earlier"
        ),
        "recommendation.earlier_calls": (
            "we suggest scheduling collector calls earlier in the reminder ladder (they now "
            "start on day {call_day} past due)"
        ),
        "recommendation.earlier_calls.plain": (
            "we suggest scheduling collector calls earlier in the reminder ladder"
        ),
        "recommendation.tighter_credit_limits": (
            "we suggest tighter credit limits for customers graded D and E"
        ),
        "recommendation.earlier_legal_escalation": (
            "we suggest escalating suitable cases to legal action earlier (now from "
            "{legal_days} days past due)"
        ),
        "recommendation.earlier_legal_escalation.plain": (
            "we suggest escalating suitable cases to legal action earlier"
        ),
        "recommendation.review_reminders": (
            "we suggest reviewing the timing and the content of the reminders"
        ),
        "recommendation.review_follow_up": (
            "we suggest reviewing how collectors follow up overdue accounts, including calls "
            "and promises to pay"
        ),
        "kpi.total_outstanding": "the total outstanding",
        "kpi.overdue_outstanding": "the overdue outstanding",
        "kpi.overdue_ratio": "the overdue ratio",
        "kpi.opening_outstanding": "the opening outstanding",
        "kpi.credit_sales": "credit sales",
        "kpi.recovery_rate": "the recovery rate",
        "kpi.collection_success_rate": "the collection success rate",
        "kpi.dso": "DSO",
        "kpi.dso_countback": "the countback DSO",
        "kpi.best_possible_dso": "the best possible DSO",
        "kpi.average_days_delinquent": "the average days delinquent",
        "kpi.cei": "the collection effectiveness index (CEI)",
        "kpi.cure_rate": "the cure rate",
        "kpi.written_off": "the amount written off",
        "kpi.bad_debt_ratio": "the bad debt ratio",
        "kpi.ecl_provision": "the ECL provision",
        "kpi.ecl_provision_change": "the change in the ECL provision",
        "kpi.reminders_sent": "the number of reminders sent",
        "kpi.legal_cases_opened": "the number of legal cases opened",
        "kpi.legal_recovered": "the amount recovered through legal cases",
        "kpi.grades_improved": "the number of customers whose credit grade improved",
        "kpi.grades_worsened": "the number of customers whose credit grade worsened",
        "kpi.grades_unchanged": "the number of customers whose credit grade held",
    },
    "zh-CN": {
        "sentence": "{observation}，{recommendation}。",
        "quarter": "{year}年第{number_zh}季度",
        "roll": "逾期{from_bucket}天账款向{to_bucket}天的迁徙率",
        "unit.ratio": "{value}%",
        "unit.days": "{value}天",
        "unit.money": "{value} {currency}",
        "unit.count": "{value}",
        "observation.above_target": "{quarter}，{subject}为{value}，高于目标上限{target}",
        "observation.below_target": "{quarter}，{subject}为{value}，低于目标下限{target}",
        "observation.rising": (
            "{quarter}，{subject}为{value}，已连续{quarters}个季度上升（{series}）"
        ),
        "observation.falling": (
            "{quarter}，{subject}为{value}，已连续{quarters}个季度下降（{series}）"
        ),
        "observation.above_average": (
            "{quarter}，{subject}为{value}，明显高于此前{earlier}个季度的平均水平{mean}"
        ),
        "observation.above_target_rising": (
            "{quarter}，{subject}为{value}，高于目标上限{target}，且较上一季度的{previous}有所上升"
        ),
        "recommendation.investigate_kpi": "建议与催收团队共同分析原因，并商定改进措施",
        "recommendation.earlier_second_reminder": (
            "建议提早发送第二次提醒（目前在逾期第{second_reminder_day}天发送）"
        ),
        "recommendation.earlier_second_reminder.plain": "建议提早发送第二次提醒",
        "recommendation.earlier_first_reminder": (
            "建议提早发送到期前的友好提醒（目前在到期前{courtesy_lead_days}天发送）"
            "或第一次提醒（目前在逾期第{first_reminder_day}天发送）"
        ),
        "recommendation.earlier_first_reminder.plain": ("建议提早发送到期前的友好提醒或第一次提醒"),
        "recommendation.earlier_calls": (
            "建议在催收流程中更早安排电话催收（目前从逾期第{call_day}天开始）"
        ),
        "recommendation.earlier_calls.plain": "建议在催收流程中更早安排电话催收",
        "recommendation.tighter_credit_limits": "建议收紧D级和E级客户的信用额度",
        "recommendation.earlier_legal_escalation": (
            "建议对符合条件的案件更早启动法律程序（目前自逾期{legal_days}天起）"
        ),
        "recommendation.earlier_legal_escalation.plain": ("建议对符合条件的案件更早启动法律程序"),
        "recommendation.review_reminders": "建议重新审视催收提醒的发送时机和内容",
        "recommendation.review_follow_up": (
            "建议检查催收人员对逾期账户的跟进情况，包括电话催收和还款承诺的落实"
        ),
        **{f"kpi.{name}": labels["zh-CN"] for name, labels in METRIC_LABELS.items()},
    },
}

_CHINESE_NUMBERS = "一二三四"
_TENTH = Decimal("0.1")

# --- findings --------------------------------------------------------------------------------

Figure = Decimal | int | tuple[Decimal | None, ...] | None
Roll = tuple[str, str]
RollRates = Mapping[str, Mapping[Roll, Decimal | None]]


@dataclass(frozen=True)
class Finding:
    """One conclusion of the evaluation.

    ``subject`` is a KPI name or a roll ``(from_bucket, to_bucket)``; ``unit`` the unit of the
    figures ``value``, ``target``, ``previous``, ``mean`` and ``series`` (a KPI's unit; roll
    rates are ratios); ``observation`` names the sentence that states it and
    ``recommendation`` what we suggest. Figures ending in ``_day`` or ``_days`` are days of the
    dunning strategy (whole days); ``quarters`` and ``earlier`` are numbers of quarters.
    """

    code: str
    severity: str
    subject: str | Roll
    quarter: Quarter
    observation: str
    recommendation: str
    figures: dict[str, Figure] = field(default_factory=dict)
    unit: str = "ratio"
    currency: str | None = None

    def __post_init__(self):
        if self.severity not in SEVERITIES:
            raise ValueError(f"severity must be one of {SEVERITIES}, not {self.severity!r}")

    @property
    def subject_name(self) -> str:
        """The KPI's name, or ``from>to`` of a roll."""
        return self.subject if isinstance(self.subject, str) else ">".join(self.subject)

    def text(self, locale: str = "en") -> str:
        """The finding and its recommendation as one sentence in ``locale`` (``en``, ``zh-CN``)."""
        if locale not in TEXTS:
            raise ValueError(f"locale must be one of {LOCALES}, not {locale!r}")
        words = TEXTS[locale]
        values: dict[str, str | None] = {
            name: self._formatted(name, value, locale) for name, value in self.figures.items()
        }
        values["quarter"] = words["quarter"].format(
            year=self.quarter.year,
            number=self.quarter.number,
            number_zh=_CHINESE_NUMBERS[self.quarter.number - 1],
        )
        if isinstance(self.subject, str):
            values["subject"] = words[f"kpi.{self.subject}"]
        else:
            values["subject"] = words["roll"].format(
                from_bucket=self.subject[0], to_bucket=self.subject[1]
            )
        observation = words[f"observation.{self.observation}"].format(**values)
        key = f"recommendation.{self.recommendation}"
        template = words[key]
        cited = [name for _, name, _, _ in string.Formatter().parse(template) if name]
        if any(values.get(name) is None for name in cited):
            template = words[f"{key}.plain"]
        return words["sentence"].format(
            observation=observation, recommendation=template.format(**values)
        )

    def _formatted(self, name: str, value: Figure, locale: str) -> str | None:
        if value is None:
            return None
        if name.endswith(("_day", "_days")) or name in ("quarters", "earlier"):
            return str(int(value))
        if isinstance(value, tuple):
            return " → ".join(self._formatted(name, v, locale) or "–" for v in value)
        return format_figure(value, self.unit, locale, self.currency)


def format_figure(value: Decimal | int, unit: str, locale: str, currency: str | None = None) -> str:
    """A KPI's value for a sentence: ratios as percentages with one decimal, days with one
    decimal, money to the cent with thousands separators, counts whole (half-up)."""
    words = TEXTS[locale]
    if unit == "ratio":
        text = str((Decimal(value) * 100).quantize(_TENTH, rounding=ROUND_HALF_UP))
    elif unit == "days":
        text = str(Decimal(value).quantize(_TENTH, rounding=ROUND_HALF_UP))
    elif unit == "money":
        text = f"{Decimal(value).quantize(Decimal('0.01'), rounding=ROUND_HALF_UP):,}"
    else:
        text = str(int(value))
    return words[f"unit.{unit}"].format(value=text, currency=currency or "")


@dataclass(frozen=True)
class Evidence:
    """What the rules read: the KPI trend (oldest first, the evaluated quarter last), the
    quarterly roll rates (:func:`quarterly_roll_rates`, by quarter label), the policy and the
    dunning strategy (None: the rules cite none of its days)."""

    trend: Sequence[QuarterKpis]
    rolls: RollRates
    policy: Policy
    strategy: Strategy | None = None

    @property
    def quarter(self) -> Quarter:
        """The evaluated quarter."""
        return self.trend[-1].quarter

    @property
    def currency(self) -> str:
        """The reporting currency (money figures are in it)."""
        return self.trend[-1].reporting_currency

    def series(self, metric: str) -> list[Decimal | None]:
        """The KPI's values over the trend, oldest first."""
        return [kpis.values.get(metric) for kpis in self.trend]

    def roll_series(self, roll: Roll) -> list[Decimal | None]:
        """The roll rate over the trend's quarters, oldest first (None where unknown)."""
        return [(self.rolls.get(k.quarter.label) or {}).get(roll) for k in self.trend]

    def target(self, metric: str) -> KpiTarget | None:
        """The KPI's target in the policy (None: it has none)."""
        return self.policy.evaluation.targets.get(metric)


def _run(values: Sequence[Decimal | None], steps: int, rising: bool) -> bool:
    """True when the last ``steps`` + 1 values are known and each step went the same way
    (strictly up when ``rising``, else strictly down)."""
    tail = list(values[-(steps + 1) :])
    if len(tail) < steps + 1 or any(v is None for v in tail):
        return False
    return all((b > a) if rising else (b < a) for a, b in itertools.pairwise(tail))


def _earlier_mean(values: Sequence[Decimal | None]) -> Fraction | None:
    """The exact mean of the known values before the last one (None with fewer than
    :data:`ROLL_MEAN_MIN_QUARTERS`)."""
    earlier = [Fraction(v) for v in values[:-1] if v is not None]
    if len(earlier) < ROLL_MEAN_MIN_QUARTERS:
        return None
    return sum(earlier, Fraction(0)) / len(earlier)


def _miss_severity(value: Decimal, target: Decimal) -> str:
    """How far ``value`` missed ``target``, as a share of the target."""
    if target == 0:
        return "high"
    gap = abs(value - target) / abs(target)
    if gap >= MISS_HIGH:
        return "high"
    return "medium" if gap >= MISS_MEDIUM else "low"


def _stage_day(strategy: Strategy | None, name: str, position: int | None = None) -> int | None:
    """The day (standard ladder) of the stage ``name``; without one, of the ``position``-th
    stage past the due date (0-based); None without a strategy or such a stage."""
    if strategy is None:
        return None
    for stage in strategy.stages:
        if stage.name == name:
            return stage.days_past_due
    past_due = [s for s in strategy.stages if s.days_past_due >= 1]
    if position is not None and position < len(past_due):
        return past_due[position].days_past_due
    return None


def _courtesy_lead_days(strategy: Strategy | None) -> int | None:
    """How many days before the due date the courtesy notice goes (the stage ``courtesy``,
    else the last stage before the due date)."""
    if strategy is None:
        return None
    named = [s for s in strategy.stages if s.name == "courtesy"]
    before = named or [s for s in strategy.stages if s.days_past_due <= 0]
    if not before or before[-1].days_past_due > 0:
        return None
    return -before[-1].days_past_due


def _call_day(strategy: Strategy | None) -> int | None:
    """The day past due of the first stage (standard ladder) that plans a call."""
    if strategy is None:
        return None
    return next((s.days_past_due for s in strategy.stages if "call" in s.actions), None)


def _kpi_finding(evidence: Evidence, code: str, metric: str, severity: str, **kwargs) -> Finding:
    return Finding(
        code=code,
        severity=severity,
        subject=metric,
        quarter=evidence.quarter,
        unit=UNITS.get(metric, "ratio"),
        currency=evidence.currency,
        **kwargs,
    )


def _missed(evidence: Evidence, metric: str) -> tuple[Decimal, KpiTarget] | None:
    """The evaluated quarter's value and the target when the value missed it."""
    if not evidence.trend:
        return None
    value, target = evidence.series(metric)[-1], evidence.target(metric)
    if target_status(value, target) != "missed":
        return None
    return value, target


def target_missed(evidence: Evidence, metric: str) -> Finding | None:
    """A KPI with a target that the evaluated quarter missed (one finding per KPI), unless a
    rule of its own reports that miss (:data:`OWN_TARGET_RULES`). Severity by how far it
    missed (:data:`MISS_MEDIUM`, :data:`MISS_HIGH`). Recommendation: ``investigate_kpi``."""
    missed = _missed(evidence, metric)
    if missed is None:
        return None
    own = OWN_TARGET_RULES.get(metric)
    if own is not None and own(evidence) is not None:
        return None
    value, target = missed
    return _kpi_finding(
        evidence,
        "target_missed",
        metric,
        _miss_severity(value, target.value),
        observation="below_target" if target.better == "higher" else "above_target",
        recommendation="investigate_kpi",
        figures={"value": value, "target": target.value},
    )


def _roll_rising(
    evidence: Evidence, code: str, roll: Roll, recommendation: str, figures: dict[str, Figure]
) -> Finding | None:
    if not evidence.trend:
        return None
    values = evidence.roll_series(roll)
    latest = values[-1]
    if latest is None:
        return None
    rising = _run(values, ROLL_RISING_QUARTERS, rising=True)
    mean = _earlier_mean(values)
    above = mean is not None and Fraction(latest) > mean * (1 + Fraction(ROLL_MARGIN))
    if not (rising or above):
        return None
    cited: dict[str, Figure] = {
        "value": latest,
        "previous": values[-2] if len(values) > 1 else None,
        "mean": None if mean is None else exact_rate(mean),
        "earlier": sum(v is not None for v in values[:-1]),
    }
    if rising:
        cited["quarters"] = ROLL_RISING_QUARTERS
        cited["series"] = tuple(values[-(ROLL_RISING_QUARTERS + 1) :])
    return Finding(
        code=code,
        severity="high" if rising and above else "medium",
        subject=roll,
        quarter=evidence.quarter,
        observation="rising" if rising else "above_average",
        recommendation=recommendation,
        figures={**cited, **figures},
        unit="ratio",
    )


def late_roll_rising(evidence: Evidence) -> Finding | None:
    """The ``31-60`` → ``61-90`` roll rate rose in each of the last
    :data:`ROLL_RISING_QUARTERS` quarters, or is more than :data:`ROLL_MARGIN` above the mean
    of the trend's earlier quarters: recommend an earlier second reminder (citing the
    strategy's ``second_reminder`` day). ``high`` when both hold, else ``medium``."""
    day = _stage_day(evidence.strategy, "second_reminder", position=1)
    return _roll_rising(
        evidence,
        "late_roll_rising",
        LATE_ROLL,
        "earlier_second_reminder",
        {"second_reminder_day": day},
    )


def early_roll_rising(evidence: Evidence) -> Finding | None:
    """The ``1-30`` → ``31-60`` roll rate rising the same way: recommend an earlier courtesy
    notice or first reminder (citing both days)."""
    return _roll_rising(
        evidence,
        "early_roll_rising",
        FIRST_ROLL,
        "earlier_first_reminder",
        {
            "courtesy_lead_days": _courtesy_lead_days(evidence.strategy),
            "first_reminder_day": _stage_day(evidence.strategy, "first_reminder", position=0),
        },
    )


def _trend_finding(
    evidence: Evidence,
    code: str,
    metric: str,
    steps: int,
    rising: bool,
    recommendation: str,
    figures: dict[str, Figure] | None = None,
) -> Finding | None:
    """A KPI that moved the same way in each of the last ``steps`` quarters: ``medium``, or
    ``high`` when it also missed its target."""
    if not evidence.trend:
        return None
    values = evidence.series(metric)
    if not _run(values, steps, rising):
        return None
    return _kpi_finding(
        evidence,
        code,
        metric,
        "high" if _missed(evidence, metric) else "medium",
        observation="rising" if rising else "falling",
        recommendation=recommendation,
        figures={
            "value": values[-1],
            "quarters": steps,
            "series": tuple(values[-(steps + 1) :]),
            **(figures or {}),
        },
    )


def cure_rate_falling(evidence: Evidence) -> Finding | None:
    """The cure rate fell in each of the last :data:`CURE_FALLING_QUARTERS` quarters: recommend
    calls earlier in the ladder (citing the day of the first stage with a call)."""
    return _trend_finding(
        evidence,
        "cure_rate_falling",
        "cure_rate",
        CURE_FALLING_QUARTERS,
        rising=False,
        recommendation="earlier_calls",
        figures={"call_day": _call_day(evidence.strategy)},
    )


def overdue_ratio_rising(evidence: Evidence) -> Finding | None:
    """The overdue ratio rose in each of the last :data:`OVERDUE_RISING_QUARTERS` quarters:
    recommend tighter credit limits for grades D and E."""
    return _trend_finding(
        evidence,
        "overdue_ratio_rising",
        "overdue_ratio",
        OVERDUE_RISING_QUARTERS,
        rising=True,
        recommendation="tighter_credit_limits",
    )


def bad_debt_rising(evidence: Evidence) -> Finding | None:
    """The bad debt ratio is above its target and higher than the quarter before: recommend
    earlier legal escalation (citing the strategy's ``legal.min_days_past_due`` when it has a
    legal section). Always ``high``."""
    missed = _missed(evidence, "bad_debt_ratio")
    if missed is None or missed[1].better != "lower":
        return None
    values = evidence.series("bad_debt_ratio")
    previous = values[-2] if len(values) > 1 else None
    if previous is None or not missed[0] > previous:
        return None
    strategy = evidence.strategy
    legal_days = strategy.legal.min_days_past_due if strategy and strategy.legal else None
    return _kpi_finding(
        evidence,
        "bad_debt_rising",
        "bad_debt_ratio",
        "high",
        observation="above_target_rising",
        recommendation="earlier_legal_escalation",
        figures={
            "value": missed[0],
            "target": missed[1].value,
            "previous": previous,
            "legal_days": legal_days,
        },
    )


def collection_success_low(evidence: Evidence) -> Finding | None:
    """The collection success rate missed its target: recommend reviewing the reminders'
    timing and content. Severity by how far it missed."""
    missed = _missed(evidence, "collection_success_rate")
    if missed is None:
        return None
    value, target = missed
    return _kpi_finding(
        evidence,
        "collection_success_low",
        "collection_success_rate",
        _miss_severity(value, target.value),
        observation="below_target" if target.better == "higher" else "above_target",
        recommendation="review_reminders",
        figures={"value": value, "target": target.value},
    )


def cei_falling(evidence: Evidence) -> Finding | None:
    """The CEI fell in each of the last :data:`CEI_FALLING_QUARTERS` quarters: recommend
    reviewing the collectors' follow-up of overdue accounts."""
    return _trend_finding(
        evidence,
        "cei_falling",
        "cei",
        CEI_FALLING_QUARTERS,
        rising=False,
        recommendation="review_follow_up",
    )


Rule = Callable[[Evidence], Finding | None]
#: The rules after the target misses, in the order their findings are listed.
RULES: tuple[Rule, ...] = (
    late_roll_rising,
    early_roll_rising,
    cure_rate_falling,
    overdue_ratio_rising,
    bad_debt_rising,
    collection_success_low,
    cei_falling,
)
#: KPIs whose missed target a rule of their own reports (with its own recommendation): the
#: generic :func:`target_missed` stays silent while that rule fires.
OWN_TARGET_RULES: dict[str, Rule] = {
    "collection_success_rate": collection_success_low,
    "bad_debt_ratio": bad_debt_rising,
}


def findings(
    trend: Sequence[QuarterKpis],
    rolls: RollRates,
    policy: Policy,
    strategy: Strategy | None = None,
) -> list[Finding]:
    """Every finding about the last quarter of ``trend`` (oldest first): first one per missed
    target (KPIs in the order of the ``kpis`` export), then the rules of :data:`RULES` in
    order. Pure: the same inputs give the same findings."""
    if not trend:
        return []
    evidence = Evidence(trend=trend, rolls=rolls, policy=policy, strategy=strategy)
    targets = policy.evaluation.targets
    out = [target_missed(evidence, metric) for metric in UNITS if metric in targets]
    out += [rule(evidence) for rule in RULES]
    return [f for f in out if f is not None]


# --- quarterly roll rates --------------------------------------------------------------------


def roll_month_ends(quarter: Quarter) -> list[dt.date]:
    """The month-ends whose monthly roll matrices make up the quarter's: its opening (the
    month-end before it) and its three month-ends."""
    return [quarter.opening] + [month_end(dt.date(y, m, 1)) for y, m in quarter.months()]


def ensure_roll_matrices(engine: Engine, quarters: Sequence[Quarter], aging: AgingPolicy) -> None:
    """Compute the monthly roll matrices of ``quarters`` (and the month-end snapshots under
    them) where missing or older than the ledger. Month-ends before the ledger's first month
    are skipped, as the provisions do: nothing was open then."""
    first = earliest_ledger_date(engine)
    if first is None:
        return
    earliest = month_end(first)
    ladders = [[d for d in roll_month_ends(q) if d >= earliest] for q in quarters]
    ensure_snapshots(engine, sorted({d for ladder in ladders for d in ladder}), aging)
    for ladder in ladders:  # each a run of consecutive month-ends: pairs never span a gap
        if len(ladder) > 1:
            update_roll_rates(engine, ladder)


def _roll_sums(engine: Engine, quarter: Quarter) -> dict[str, dict[tuple[str, str], Decimal]]:
    """Per currency, the stored monthly matrices of the quarter summed by (from, to)."""
    r = roll_rates.c
    total = sa.type_coerce(sa.func.sum(r.amount), r.amount.type)
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(r.currency, r.from_bucket, r.to_bucket, total)
            .where(r.month_end.in_(roll_month_ends(quarter)[1:]))
            .group_by(r.currency, r.from_bucket, r.to_bucket)
        ).all()
    sums: dict[str, dict[tuple[str, str], Decimal]] = {}
    for currency, from_bucket, to_bucket, amount in rows:
        sums.setdefault(currency, {})[(from_bucket, to_bucket)] = Decimal(amount)
    return sums


def quarterly_roll_rates(
    engine: Engine, quarters: Sequence[Quarter], policy: Policy
) -> dict[str, dict[Roll, Decimal | None]]:
    """Per quarter (by label, oldest first), the roll rate from each bucket to the next one:
    the outstanding in the bucket at the quarter's opening and its first two month-ends that
    sat in a worse bucket (the next one, or beyond) one month later, over all the outstanding
    in it at those month-ends, whole portfolio in the reporting currency. Each currency's sums
    are converted at the rates in force on the quarter's last day (one without a rate is left
    out); the ratio is exact, rounded half-up once to the stored places of a rate; None where
    the bucket held nothing. Computes the monthly matrices it needs first."""
    quarters = sorted(set(quarters))
    ensure_roll_matrices(engine, quarters, policy.aging)
    buckets = [b.name for b in policy.aging.buckets]
    rank = {name: i for i, name in enumerate(buckets)}
    reporting = policy.currency.reporting_currency
    out: dict[str, dict[Roll, Decimal | None]] = {}
    for quarter in quarters:
        sums = _roll_sums(engine, quarter)
        rates = rates_on(engine, quarter.end, reporting)
        missing = rates.missing(sums)
        if missing:
            log.warning(
                "roll rates of %s: no exchange rate on or before %s for %s; left out",
                quarter.label,
                quarter.end,
                ", ".join(missing),
            )
        base = dict.fromkeys(buckets, Decimal(0))
        rolled = dict.fromkeys(buckets, Decimal(0))
        for currency, moves in sums.items():
            if currency in missing:
                continue
            book_base = dict.fromkeys(buckets, Decimal(0))
            book_rolled = dict.fromkeys(buckets, Decimal(0))
            for (from_bucket, to_bucket), amount in moves.items():
                if from_bucket not in rank:
                    continue
                book_base[from_bucket] += amount
                if rank.get(to_bucket, -1) > rank[from_bucket]:
                    book_rolled[from_bucket] += amount
            for name in buckets:
                base[name] += rates.convert(book_base[name], currency)
                rolled[name] += rates.convert(book_rolled[name], currency)
        out[quarter.label] = {
            (a, b): exact_rate(Fraction(rolled[a]) / Fraction(base[a])) if base[a] else None
            for a, b in itertools.pairwise(buckets)
        }
    return out


# --- what customers told us ------------------------------------------------------------------


@dataclass(frozen=True)
class FeedbackMessage:
    """One dispute or feedback, as listed: its business date and at most
    :data:`MESSAGE_LIMIT` characters of its message (escaped)."""

    feedback_id: int
    customer_id: str
    kind: str
    status: str
    date: dt.date
    message: str


@dataclass(frozen=True)
class StaffRemark:
    """One remark of the collection staff (a row of a ``feedback*`` file), as given."""

    feedback_id: str
    date: dt.date
    author: str
    team: str | None
    topic: str
    text: str


@dataclass
class FeedbackSummary:
    """Disputes and feedback customers sent in a quarter (by business date in ``timezone``)."""

    quarter: Quarter
    timezone: str
    #: received in the quarter, by kind and status (every kind and status present, 0 or more)
    counts: dict[str, dict[str, int]]
    #: disputes received on or before the quarter's last day and still open (as recorded now:
    #: the warehouse keeps no date of resolution)
    open_disputes_at_end: int
    #: the :data:`RECENT_MESSAGES` newest messages of the quarter, newest first
    recent: list[FeedbackMessage] = field(default_factory=list)
    #: remarks of the collection staff given in the quarter, by topic (every topic, 0 or more)
    staff_counts: dict[str, int] = field(default_factory=dict)
    #: every remark of the quarter, newest first (the report shows the first
    #: :data:`STAFF_REMARKS`, cut to :data:`STAFF_REMARK_LIMIT` characters; the workbook all)
    staff: list[StaffRemark] = field(default_factory=list)

    @property
    def received(self) -> int:
        """Disputes and feedback received in the quarter."""
        return sum(n for by_status in self.counts.values() for n in by_status.values())


def feedback_summary(
    engine: Engine, quarter: Quarter, timezone: str = DEFAULT_TIMEZONE
) -> FeedbackSummary:
    """What customers told us through their reminders' links in ``quarter``: each message's
    ``received_at`` counts on its business date in ``timezone``."""
    f = customer_feedback.c
    # the quarter's business days as moments: from its first midnight to the next quarter's
    start = start_of_business_day(quarter.start, timezone).astimezone(dt.UTC)
    end = start_of_business_day(quarter.end + dt.timedelta(days=1), timezone).astimezone(dt.UTC)
    in_quarter = sa.and_(f.received_at >= start, f.received_at < end)
    counts = {kind: dict.fromkeys(FEEDBACK_STATUSES, 0) for kind in FEEDBACK_KINDS}
    with engine.connect() as conn:
        for kind, status, n in conn.execute(
            sa.select(f.kind, f.status, sa.func.count())
            .where(in_quarter)
            .group_by(f.kind, f.status)
        ):
            counts.setdefault(kind, {})[status] = int(n)
        open_at_end = conn.execute(
            sa.select(sa.func.count()).where(
                f.kind == "dispute", f.status == "open", f.received_at < end
            )
        ).scalar_one()
        rows = conn.execute(
            sa.select(f.feedback_id, f.customer_id, f.kind, f.status, f.received_at, f.message)
            .where(in_quarter)
            .order_by(f.received_at.desc(), f.feedback_id.desc())
            .limit(RECENT_MESSAGES)
        ).all()
    recent = [
        FeedbackMessage(
            feedback_id=row.feedback_id,
            customer_id=row.customer_id,
            kind=row.kind,
            status=row.status,
            date=as_of_date(utc(row.received_at), timezone),
            message=shown(one_line(row.message), MESSAGE_LIMIT),
        )
        for row in rows
    ]
    staff = staff_remarks(engine, quarter)
    staff_counts = dict.fromkeys(FEEDBACK_TOPICS, 0)
    for remark in staff:
        staff_counts[remark.topic] = staff_counts.get(remark.topic, 0) + 1
    return FeedbackSummary(
        quarter=quarter,
        timezone=timezone,
        counts=counts,
        open_disputes_at_end=int(open_at_end),
        recent=recent,
        staff_counts=staff_counts,
        staff=staff,
    )


def staff_remarks(engine: Engine, quarter: Quarter) -> list[StaffRemark]:
    """The staff's remarks given in ``quarter`` (their ``date`` is a business date already),
    newest first."""
    s = staff_feedback.c
    with engine.connect() as conn:
        found = conn.execute(
            sa.select(s.feedback_id, s.given_on.label("date"), s.author, s.team, s.topic, s.text)
            .where(s.given_on >= quarter.start, s.given_on <= quarter.end)
            .order_by(s.given_on.desc(), s.feedback_id.desc())
        ).mappings()
        return [StaffRemark(**row) for row in found]
