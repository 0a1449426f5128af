"""The quarterly evaluation report: gathered from the warehouse, written in Chinese and English
(HTML, PDF, XLSX, chart images) under ``$RECEIVABLES_HOME/reports/quarterly/<quarter>/`` and
emailed once to the management list.

:func:`prepare_quarter` makes sure every quarter-end the report reads has its aging snapshot
and its provisions (computed from the ledger when missing), so a first run on a quarter-start
date reports what a history of daily runs would. :func:`evaluate` gathers the figures;
:func:`write_report` renders them; :func:`report_email` is the management email (an HTML body in
both languages with the charts inline, the PDFs and the workbook attached).
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import logging
import os
import tempfile
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from babel import Locale
from babel.numbers import format_decimal
from markupsafe import Markup
from sqlalchemy.engine import Engine

from receivables.config import DEFAULT_TIMEZONE, Policy, Settings
from receivables.documents import pdf_from_html
from receivables.evaluation import charts
from receivables.evaluation.findings import STAFF_REMARK_LIMIT, STAFF_REMARKS
from receivables.evaluation.kpis import (
    METRIC_LABELS,
    METRICS,
    UNITS,
    QuarterKpis,
    target_status,
    trend_kpis,
)
from receivables.evaluation.quarters import Quarter
from receivables.fx import rates_on
from receivables.mail import Attachment, OutboundEmail
from receivables.render import render
from receivables.text import one_line, shown
from receivables.warehouse.schema import aging_snapshots, credit_scores, invoice_risk, invoices

log = logging.getLogger(__name__)

LOCALES = ("zh-CN", "en")
_BABEL = {"zh-CN": "zh_CN", "en": "en"}
TEMPLATE_FOLDER = "evaluation"

#: The KPIs of the report's headline table (the others are in the workbook).
HEADLINE = (
    "total_outstanding",
    "overdue_ratio",
    "recovery_rate",
    "collection_success_rate",
    "dso",
    "best_possible_dso",
    "average_days_delinquent",
    "cei",
    "cure_rate",
    "bad_debt_ratio",
    "ecl_provision",
)
#: Aging buckets whose name is a word (the others are ranges of days).
BUCKET_LABELS = {"current": {"en": "current", "zh-CN": "未逾期"}}
#: Words of the report that are not KPI names.
WORDS: dict[str, dict[str, str]] = {
    "title": {"en": "Quarterly collection evaluation", "zh-CN": "季度催收评估报告"},
    "aging_trend": {"en": "Receivables by aging bucket", "zh-CN": "应收账款账龄结构"},
    "rolls": {"en": "Roll rates to the next bucket", "zh-CN": "账龄迁徙率"},
    "recovery": {"en": "Recovery, cure and CEI", "zh-CN": "回收率、治愈率与 CEI"},
    "ranking": {"en": "Collectors by recovery rate", "zh-CN": "催收员回收率排名"},
    "period": {"en": "Quarter", "zh-CN": "评估期间"},
    "headline": {"en": "Key figures", "zh-CN": "关键指标"},
    "metric": {"en": "Metric", "zh-CN": "指标"},
    "target": {"en": "Target", "zh-CN": "目标"},
    "status": {"en": "Status", "zh-CN": "状态"},
    "met": {"en": "met", "zh-CN": "达标"},
    "missed": {"en": "missed", "zh-CN": "未达标"},
    "trend": {"en": "Trend", "zh-CN": "趋势"},
    "amounts_in": {"en": "Amounts in", "zh-CN": "金额单位"},
    "books": {"en": "By currency", "zh-CN": "分币种"},
    "currency": {"en": "Currency", "zh-CN": "币种"},
    "findings": {"en": "Findings and recommendations", "zh-CN": "评估发现与调整建议"},
    "no_findings": {
        "en": "No rule found anything to change this quarter.",
        "zh-CN": "本季度各项规则均未发现需要调整之处。",
    },
    "missing_rates": {
        "en": "No exchange rate on the quarter's last day for these currencies; their books are "
        "left out of the totals:",
        "zh-CN": "以下币种在季末没有汇率，未计入合计：",
    },
    "ecl_missing": {
        "en": "The provisions of the quarter's last day have not been computed.",
        "zh-CN": "季末的预期信用损失准备尚未计算。",
    },
    "charts": {"en": "Charts", "zh-CN": "图表"},
    "collectors": {"en": "Collector performance", "zh-CN": "催收员绩效"},
    "unassigned": {"en": "(no collector)", "zh-CN": "（未分配催收员）"},
    "rank": {"en": "Rank", "zh-CN": "排名"},
    "collector": {"en": "Collector", "zh-CN": "催收员"},
    "recovered": {"en": "Recovered", "zh-CN": "回收金额"},
    "success_rate": {"en": "Reminder success", "zh-CN": "提醒成功率"},
    "promises_kept": {"en": "Promises kept", "zh-CN": "履约承诺"},
    "cases": {"en": "Legal cases", "zh-CN": "法律案件"},
    "incentive": {"en": "Proposed incentive", "zh-CN": "建议奖励"},
    "migration": {"en": "Credit grade migration (customers)", "zh-CN": "信用等级迁移（客户数）"},
    "from_to": {"en": "Opening ↓ / close →", "zh-CN": "期初 ↓ / 期末 →"},
    "feedback_title": {"en": "Customer disputes and feedback", "zh-CN": "客户争议与反馈"},
    "dispute": {"en": "dispute", "zh-CN": "争议"},
    "feedback": {"en": "feedback", "zh-CN": "反馈"},
    "open": {"en": "open", "zh-CN": "未解决"},
    "resolved": {"en": "resolved", "zh-CN": "已解决"},
    "received": {"en": "Received in the quarter", "zh-CN": "本季度收到"},
    "open_disputes": {
        "en": "Disputes still open at the quarter's end",
        "zh-CN": "季末仍未解决的争议",
    },
    "recent": {"en": "Latest messages", "zh-CN": "最近的留言"},
    "date": {"en": "Date", "zh-CN": "日期"},
    "customer": {"en": "Customer", "zh-CN": "客户"},
    "kind": {"en": "Kind", "zh-CN": "类型"},
    "message": {"en": "Message", "zh-CN": "内容"},
    "count": {"en": "Count", "zh-CN": "数量"},
    "staff_title": {"en": "Staff feedback", "zh-CN": "员工反馈"},
    "staff_received": {"en": "Remarks given in the quarter", "zh-CN": "本季度员工反馈条数"},
    "staff_more": {
        "en": "older remarks of the quarter are in the workbook (sheet Staff feedback):",
        "zh-CN": "本季度较早的反馈见 Excel 工作簿（Staff feedback 工作表），条数：",
    },
    "topic": {"en": "Topic", "zh-CN": "主题"},
    "author": {"en": "Given by", "zh-CN": "反馈人"},
    "strategy": {"en": "strategy", "zh-CN": "催收策略"},
    "templates": {"en": "templates", "zh-CN": "提醒模板"},
    "customers": {"en": "customers", "zh-CN": "客户"},
    "legal": {"en": "legal", "zh-CN": "法律"},
    "tools": {"en": "tools", "zh-CN": "工具"},
    "other": {"en": "other", "zh-CN": "其他"},
    "left_out": {
        "en": "collectors ranked between these are in the workbook (sheet Collectors):",
        "zh-CN": "排名居中的催收员见 Excel 工作簿（Collectors 工作表），人数：",
    },
    "incentive_note": {
        "en": "Incentives are proposals for management to decide on; nothing is paid.",
        "zh-CN": "奖励金额仅为建议，由管理层决定，系统不会自动发放。",
    },
}


@dataclass
class Evaluation:
    """Everything the report shows, for ``quarter`` (the last of ``trend``)."""

    quarter: Quarter
    reporting_currency: str
    trend: list[QuarterKpis]
    #: per trend quarter label, the receivables at its end by aging bucket (reporting currency)
    aging: dict[str, dict[str, Decimal]]
    buckets: list[str]
    targets: dict[str, Any]
    collectors: Any = None
    rolls: dict[str, dict[tuple[str, str], Decimal | None]] = field(default_factory=dict)
    findings: list[Any] = field(default_factory=list)
    feedback: Any = None

    @property
    def current(self) -> QuarterKpis:
        """The evaluated quarter's KPIs."""
        return self.trend[-1]

    @property
    def missing_fx_rates(self) -> list[str]:
        """Currencies left out of the portfolio's figures in any trend quarter."""
        return sorted({c for k in self.trend for c in k.missing_fx_rates})


# --- preparing and gathering -----------------------------------------------------------------


def quarter_ends(quarter: Quarter, policy: Policy) -> list[dt.date]:
    """The quarter-ends the report reads: every trend quarter's and the one before the oldest
    (for the change in provisions)."""
    trend = quarter.trend(policy.evaluation.trend_quarters)
    return [trend[0].previous().end] + [q.end for q in trend]


def prepare_quarter(engine: Engine, quarter: Quarter, policy: Policy) -> dict[str, Any]:
    """:func:`prepare_dates` for every quarter-end the report of ``quarter`` reads."""
    done = prepare_dates(engine, quarter_ends(quarter, policy), policy)
    return {"quarter": quarter.label, **done}


def prepare_dates(engine: Engine, days: list[dt.date], policy: Policy) -> dict[str, Any]:
    """Compute, from the ledger, the aging snapshot, customer classes and provisions of each of
    ``days`` that has no provisions yet, and the credit scores (with the model in force then) of
    each that has none (each step replaces its date's rows; a date before the first invoice
    needs none). Returns the dates computed and scored."""
    from receivables.aging import compute_snapshot
    from receivables.risk.classification import compute_customer_classes
    from receivables.risk.models import score_customers
    from receivables.risk.provisions import compute_provisions

    with engine.connect() as conn:
        first = conn.execute(sa.select(sa.func.min(invoices.c.issue_date))).scalar()
        done = set(
            conn.execute(
                sa.select(invoice_risk.c.as_of_date)
                .distinct()
                .where(invoice_risk.c.as_of_date.in_(days))
            ).scalars()
        )
        scored = set(
            conn.execute(
                sa.select(credit_scores.c.as_of_date)
                .distinct()
                .where(credit_scores.c.as_of_date.in_(days))
            ).scalars()
        )
    computed, graded = [], []
    for day in days:
        if first is None or day < first:
            continue
        if day not in done:
            log.info("%s has no provisions: computing them from the ledger", day)
            compute_snapshot(engine, day, policy.aging, summary=False)
            compute_customer_classes(engine, day, policy)
            compute_provisions(engine, day, policy.aging, policy.provisions)
            computed.append(day.isoformat())
        if day not in scored:
            log.info("%s has no credit scores: scoring with the model in force then", day)
            score_customers(engine, day, policy.scores)
            graded.append(day.isoformat())
    return {"computed": computed, "scored": graded}


def receivables_at(
    engine: Engine, days: list[dt.date], policy: Policy, by: str = "bucket"
) -> dict[dt.date, dict[str, Decimal]]:
    """Per day, the receivables by aging bucket (``by="bucket"``) or risk class
    (``"risk_class"``), in the reporting currency (each currency at that day's rate; one
    without a rate is left out, as in the KPIs). Snapshots missing or older than the ledger are
    computed first."""
    from receivables.aging import ensure_snapshots

    ensure_snapshots(engine, days, policy.aging)
    s = aging_snapshots.c
    group = s.bucket if by == "bucket" else s.risk_class
    names = policy.aging.buckets if by == "bucket" else policy.aging.risk_classes
    total = sa.type_coerce(sa.func.sum(s.outstanding), s.outstanding.type)
    out: dict[dt.date, dict[str, Decimal]] = {}
    reporting = policy.currency.reporting_currency
    for day in days:
        with engine.connect() as conn:
            rows = conn.execute(
                sa.select(s.currency, group, total)
                .where(s.as_of_date == day)
                .group_by(s.currency, group)
            ).all()
        rates = rates_on(engine, day, reporting)
        amounts = {b.name: Decimal("0.00") for b in names}
        for currency, name, amount in rows:
            converted = rates.convert(Decimal(amount), currency)
            if converted is not None:
                amounts[name] += converted
        out[day] = amounts
    return out


def aging_trend(
    engine: Engine, quarters: list[Quarter], policy: Policy
) -> dict[str, dict[str, Decimal]]:
    """Per quarter (by label), the receivables at its end by aging bucket (see
    :func:`receivables_at`)."""
    at = receivables_at(engine, [q.end for q in quarters], policy)
    return {q.label: at[q.end] for q in quarters}


def evaluate(
    engine: Engine,
    quarter: Quarter,
    policy: Policy,
    strategy: Any = None,
    timezone: str = DEFAULT_TIMEZONE,
) -> Evaluation:
    """Gather the evaluation of ``quarter`` (run :func:`prepare_quarter` first); ``strategy``
    (the dunning strategy) lets the recommendations name its stages' days."""
    quarters = quarter.trend(policy.evaluation.trend_quarters)
    log.info("KPIs of %s", ", ".join(q.label for q in quarters))
    trend = trend_kpis(engine, quarters, policy)
    from receivables.evaluation.collectors import collector_performance
    from receivables.evaluation.findings import feedback_summary, findings, quarterly_roll_rates

    log.info("roll rates, findings, collector performance and feedback of %s", quarter.label)
    rolls = quarterly_roll_rates(engine, quarters, policy)
    return Evaluation(
        quarter=quarter,
        reporting_currency=policy.currency.reporting_currency,
        trend=trend,
        aging=aging_trend(engine, quarters, policy),
        buckets=[b.name for b in policy.aging.buckets],
        targets=dict(policy.evaluation.targets),
        collectors=collector_performance(engine, quarter, policy),
        rolls=rolls,
        findings=findings(trend, rolls, policy, strategy),
        feedback=feedback_summary(engine, quarter, timezone),
    )


# --- formatting ------------------------------------------------------------------------------


def formatted(value: Decimal | None, unit: str, locale: str) -> str:
    """A KPI value as the report shows it: money grouped with two decimals, ratios as
    percentages with one decimal, days with one decimal, counts whole; ``–`` without one."""
    if value is None:
        return "–"
    babel = Locale.parse(_BABEL[locale])
    if unit == "ratio":
        return format_decimal(value * 100, format="#,##0.0", locale=babel) + " %"
    if unit == "days":
        return format_decimal(value, format="#,##0.0", locale=babel)
    if unit == "count":
        return format_decimal(value, format="#,##0", locale=babel)
    return format_decimal(value, format="#,##0.00", locale=babel)


# --- the files -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReportFiles:
    """What :func:`write_report` wrote (paths) and the charts (for the email)."""

    folder: Path
    html: dict[str, Path]
    pdf: dict[str, Path]
    xlsx: Path
    charts: dict[str, dict[str, bytes]]  # locale -> chart name -> PNG


def draw_charts(evaluation: Evaluation, locale: str) -> dict[str, bytes]:
    """The report's charts in ``locale``: aging trend, roll rates, recovery, collector
    ranking."""
    labels = [k.quarter.label for k in evaluation.trend]
    out = {
        "aging": charts.stacked_bars(
            WORDS["aging_trend"][locale],
            labels,
            [
                (bucket_label(b, locale), [evaluation.aging[q][b] for q in labels])
                for b in evaluation.buckets
            ],
            locale,
            unit=evaluation.reporting_currency,
        ),
        "recovery": charts.lines(
            WORDS["recovery"][locale],
            labels,
            [
                (METRIC_LABELS[m][locale], [k.values[m] for k in evaluation.trend])
                for m in ("recovery_rate", "cure_rate", "cei", "collection_success_rate")
            ],
            locale,
        ),
    }
    if evaluation.rolls:
        transitions = _transitions(evaluation)
        out["rolls"] = charts.lines(
            WORDS["rolls"][locale],
            labels,
            [
                (
                    f"{bucket_label(a, locale)} → {bucket_label(b, locale)}",
                    [evaluation.rolls.get(q, {}).get((a, b)) for q in labels],
                )
                for a, b in transitions
            ],
            locale,
        )
    ranked = _ranked_collectors(evaluation)
    if ranked:
        out["ranking"] = charts.ranking(
            WORDS["ranking"][locale],
            [name for name, _ in ranked],
            [rate for _, rate in ranked],
            locale,
        )
    return out


def bucket_label(name: str, locale: str) -> str:
    """An aging bucket's name as the reports print it in ``locale``."""
    return BUCKET_LABELS.get(name, {}).get(locale, name)


def _transitions(evaluation: Evaluation) -> list[tuple[str, str]]:
    """The roll transitions of the trend, in the buckets' order."""
    order = {b: i for i, b in enumerate(evaluation.buckets)}
    found = {t for rolls in evaluation.rolls.values() for t in rolls}
    return sorted(found, key=lambda t: (order.get(t[0], len(order)), t[1]))


def _ranked_collectors(evaluation: Evaluation) -> list[tuple[str, Decimal | None]]:
    report = evaluation.collectors
    if report is None:
        return []
    rows = getattr(report, "ranked", None) or []
    return [(str(getattr(r, "name", None) or r.collector_id), r.recovery_rate) for r in rows]


def _context(evaluation: Evaluation, locale: str, images: dict[str, str]) -> dict[str, Any]:
    current = evaluation.current
    rows = []
    for name in HEADLINE:
        unit = UNITS[name]
        target = evaluation.targets.get(name)
        rows.append(
            {
                "label": METRIC_LABELS[name][locale],
                "value": formatted(current.values[name], unit, locale),
                "trend": [formatted(k.values[name], unit, locale) for k in evaluation.trend],
                "target": None
                if target is None
                else ("≥ " if target.better == "higher" else "≤ ")
                + formatted(target.value, unit, locale),
                "status": target_status(current.values[name], target),
            }
        )
    return {
        "locale": locale,
        "words": {k: v[locale] for k, v in WORDS.items()},
        "quarter": evaluation.quarter.label,
        "start": evaluation.quarter.start.isoformat(),
        "end": evaluation.quarter.end.isoformat(),
        "currency": evaluation.reporting_currency,
        "quarters": [k.quarter.label for k in evaluation.trend],
        "rows": rows,
        "images": images,
        "missing_fx_rates": evaluation.missing_fx_rates,
        "ecl_missing": current.ecl_missing,
        "books": [
            {
                "currency": currency,
                "values": {
                    m: formatted(values[m], UNITS[m], locale)
                    for m in ("total_outstanding", "overdue_ratio", "dso", "cei", "recovery_rate")
                },
            }
            for currency, values in sorted(current.books.items())
        ],
        "labels": {k: v[locale] for k, v in METRIC_LABELS.items()},
        "migration": migration_rows(current.grade_migration),
        "collectors_left_out": _collectors_left_out(evaluation),
        "collectors": [
            {
                "rank": r.rank,
                "name": r.name or r.collector_id or WORDS["unassigned"][locale],
                "recovered": formatted(r.recovered, "money", locale),
                "recovery_rate": formatted(r.recovery_rate, "ratio", locale),
                "success_rate": formatted(r.success_rate, "ratio", locale),
                "promises": f"{r.promises_kept} / {r.promises_due}",
                "cases": r.legal_cases_opened,
                "incentive": formatted(r.incentive_proposal, "money", locale),
            }
            for r in _collectors_shown(evaluation)
        ],
        "findings": [f.text(locale) for f in evaluation.findings],
        "feedback": None
        if evaluation.feedback is None
        else {
            "received": evaluation.feedback.received,
            "counts": [
                (
                    WORDS.get(kind, {}).get(locale, kind),
                    WORDS.get(status, {}).get(locale, status),
                    n,
                )
                for kind, by_status in sorted(evaluation.feedback.counts.items())
                for status, n in sorted(by_status.items())
            ],
            "open_disputes": evaluation.feedback.open_disputes_at_end,
            "recent": [
                {
                    "date": m.date.isoformat(),
                    "customer": m.customer_id,
                    "kind": WORDS.get(m.kind, {}).get(locale, m.kind),
                    "message": m.message,
                }
                for m in evaluation.feedback.recent
            ],
            "staff_received": len(evaluation.feedback.staff),
            "staff_counts": [
                (WORDS.get(topic, {}).get(locale, topic), n)
                for topic, n in evaluation.feedback.staff_counts.items()
                if n
            ],
            "staff": [
                {
                    "date": r.date.isoformat(),
                    "author": r.author if not r.team else f"{r.author} ({r.team})",
                    "topic": WORDS.get(r.topic, {}).get(locale, r.topic),
                    "text": shown(one_line(r.text), STAFF_REMARK_LIMIT),
                }
                for r in evaluation.feedback.staff[:STAFF_REMARKS]
            ],
            "staff_more": max(0, len(evaluation.feedback.staff) - STAFF_REMARKS),
        },
    }


#: The report and the email show the best and the worst collectors (the workbook has all).
COLLECTORS_TOP, COLLECTORS_BOTTOM = 15, 5


def _collectors_shown(evaluation: Evaluation) -> list:
    """The collectors the report's table shows: all when few, else the best and the worst,
    then the unassigned group."""
    report = evaluation.collectors
    if report is None:
        return []
    ranked = report.ranked
    if len(ranked) > COLLECTORS_TOP + COLLECTORS_BOTTOM:
        ranked = ranked[:COLLECTORS_TOP] + ranked[-COLLECTORS_BOTTOM:]
    return ranked + ([report.unassigned] if report.unassigned is not None else [])


def _collectors_left_out(evaluation: Evaluation) -> int:
    report = evaluation.collectors
    if report is None:
        return 0
    return max(0, len(report.ranked) - COLLECTORS_TOP - COLLECTORS_BOTTOM)


GRADES = ("A", "B", "C", "D", "E")


def migration_rows(migration: dict[tuple[str, str], int] | None) -> list[list] | None:
    """The grade migration as rows: the grade at the opening, then the customers per grade at
    the close (A to E)."""
    if not migration:
        return None
    return [[a, *(migration.get((a, b), 0) for b in GRADES)] for a in GRADES]


def render_html(evaluation: Evaluation, locale: str, images: dict[str, str]) -> str:
    """The report in ``locale``; ``images`` maps chart names to the URLs that show them."""
    return render(f"{TEMPLATE_FOLDER}/report.html", **_context(evaluation, locale, images))


def write_xlsx(evaluation: Evaluation, path: Path) -> None:
    """The workbook: every KPI of every trend quarter, each book's, collectors, findings."""
    from openpyxl import Workbook
    from openpyxl.styles import Font

    workbook = Workbook()
    sheet = workbook.active
    sheet.title = "KPIs"
    labels = [k.quarter.label for k in evaluation.trend]
    sheet.append(["metric", "指标 / KPI", "unit", *labels, "target", "status"])
    for m in METRICS:
        target = evaluation.targets.get(m.name)
        sheet.append(
            [
                m.name,
                f"{METRIC_LABELS[m.name]['zh-CN']} / {METRIC_LABELS[m.name]['en']}",
                m.unit,
                *[cell_value(k.values[m.name]) for k in evaluation.trend],
                None if target is None else f"{target.better} {target.value}",
                target_status(evaluation.current.values[m.name], target),
            ]
        )
    books = workbook.create_sheet("Books")
    books.append(["currency", "metric", "value"])
    for currency, values in sorted(evaluation.current.books.items()):
        for name, value in values.items():
            books.append([currency, name, cell_value(value)])
    staff = workbook.create_sheet("Collectors")
    staff.append(
        [
            "rank",
            "collector_id",
            "name",
            "customers",
            "overdue_at_opening",
            "recovered",
            "recovery_rate",
            "reminders_sent",
            "success_rate",
            "promises_due",
            "promises_kept",
            "legal_cases_opened",
            "incentive_proposal",
        ]
    )
    for r in evaluation.collectors.results if evaluation.collectors else []:
        staff.append(
            [
                r.rank,
                r.collector_id,
                r.name,
                r.customers,
                cell_value(r.overdue_at_opening),
                cell_value(r.recovered),
                cell_value(r.recovery_rate),
                r.reminders_sent,
                cell_value(r.success_rate),
                r.promises_due,
                r.promises_kept,
                r.legal_cases_opened,
                cell_value(r.incentive_proposal),
            ]
        )
    found = workbook.create_sheet("Findings")
    found.append(["severity", "code", "subject", "发现与建议", "finding and recommendation"])
    for finding in evaluation.findings:
        found.append(
            [
                finding.severity,
                finding.code,
                finding.subject_name,
                finding.text("zh-CN"),
                finding.text("en"),
            ]
        )
    remarks = workbook.create_sheet("Staff feedback")
    remarks.append(["feedback_id", "date", "author", "team", "topic", "text"])
    for r in evaluation.feedback.staff if evaluation.feedback else []:
        remarks.append([r.feedback_id, r.date, r.author, r.team, r.topic, r.text])
    rolls = workbook.create_sheet("Roll rates")
    rolls.append(["from", "to", *labels])
    for a, b in _transitions(evaluation):
        rolls.append([a, b, *[cell_value(evaluation.rolls.get(q, {}).get((a, b))) for q in labels]])
    grades = workbook.create_sheet("Grade migration")
    grades.append(["opening \\ close", *GRADES])
    for row in migration_rows(evaluation.current.grade_migration) or []:
        grades.append(row)
    aging = workbook.create_sheet("Aging")
    aging.append(["bucket", *labels])
    for bucket in evaluation.buckets:
        aging.append([bucket, *[cell_value(evaluation.aging[q][bucket]) for q in labels]])
    for ws in workbook.worksheets:
        for cell in ws[1]:
            cell.font = Font(bold=True)
        # text from the ledger (a collector's name) stays text: openpyxl would store a value
        # that starts with "=" as a formula for the spreadsheet to evaluate
        for row in ws.iter_rows():
            for cell in row:
                if isinstance(cell.value, str):
                    cell.data_type = "s"
    workbook.properties.creator = "receivables"
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        workbook.save(temporary)
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)


def cell_value(value: Decimal | None) -> float | int | None:
    """A figure as a workbook cell's number (an int when whole)."""
    # a workbook holds numbers as IEEE doubles: exact for every cent up to 2**53 cents
    if value is None:
        return None
    if value == value.to_integral_value() and value.as_tuple().exponent >= 0:
        return int(value)
    return float(value)


def data_url(png: bytes) -> str:
    """A chart as a ``data:`` URL, for the HTML that WeasyPrint prints."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def write_atomically(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file renamed into place: a reader (the
    email step) never sees half a file."""
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def report_folder(settings: Settings, quarter: Quarter) -> Path:
    """``$RECEIVABLES_HOME/reports/quarterly/<quarter>``."""
    return settings.reports_dir / "quarterly" / quarter.label


def write_report(evaluation: Evaluation, folder: Path) -> ReportFiles:
    """Write the report into ``folder``: ``report-<locale>.html`` and ``.pdf`` in each language,
    ``report.xlsx``, ``charts/<name>-<locale>.png``, ``figures.json`` (the KPIs as computed)
    and the management email's ``email.html`` and ``email.txt``. Files of an earlier run are
    replaced (stale charts removed)."""
    for old in (folder / "charts").glob("*.png") if (folder / "charts").is_dir() else ():
        old.unlink()
    (folder / "charts").mkdir(parents=True, exist_ok=True)
    html: dict[str, Path] = {}
    pdf: dict[str, Path] = {}
    drawn: dict[str, dict[str, bytes]] = {}
    for locale in LOCALES:
        drawn[locale] = draw_charts(evaluation, locale)
        for name, png in drawn[locale].items():
            write_atomically(folder / "charts" / f"{name}-{locale}.png", png)
        page = render_html(evaluation, locale, {n: data_url(p) for n, p in drawn[locale].items()})
        html[locale] = folder / f"report-{locale}.html"
        write_atomically(html[locale], page.encode("utf-8"))
        pdf[locale] = folder / f"report-{locale}.pdf"
        write_atomically(pdf[locale], pdf_from_html(page, images=True))
    xlsx = folder / "report.xlsx"
    write_xlsx(evaluation, xlsx)
    figures = {
        "quarter": evaluation.quarter.label,
        "reporting_currency": evaluation.reporting_currency,
        "kpis": {
            k.quarter.label: {n: None if v is None else str(v) for n, v in k.values.items()}
            for k in evaluation.trend
        },
        "missing_fx_rates": evaluation.missing_fx_rates,
    }
    write_atomically(folder / "figures.json", json.dumps(figures, indent=2).encode("utf-8"))
    files = ReportFiles(folder=folder, html=html, pdf=pdf, xlsx=xlsx, charts=drawn)
    mail_html, mail_text = _email_bodies(evaluation, files)
    write_atomically(folder / "email.html", mail_html.encode("utf-8"))
    write_atomically(folder / "email.txt", mail_text.encode("utf-8"))
    return files


def _content_id(chart: Path, quarter: str) -> str:
    return f"{chart.stem}.{quarter}@receivables"


def _email_bodies(evaluation: Evaluation, files: ReportFiles) -> tuple[str, str]:
    """The management email's HTML (both languages, Chinese first, charts by content id) and
    plain text (the headline figures)."""
    bodies = []
    for locale in LOCALES:
        images = {
            name: "cid:" + _content_id(Path(f"{name}-{locale}.png"), evaluation.quarter.label)
            for name in files.charts[locale]
        }
        bodies.append(
            Markup(
                render(
                    f"{TEMPLATE_FOLDER}/_report_body.html",
                    **_context(evaluation, locale, images),
                )
            )
        )
    html = render(f"{TEMPLATE_FOLDER}/email.html", bodies=bodies, quarter=evaluation.quarter.label)
    text = render(
        f"{TEMPLATE_FOLDER}/email.txt",
        quarter=evaluation.quarter.label,
        rows=[
            (
                METRIC_LABELS[m]["zh-CN"],
                METRIC_LABELS[m]["en"],
                formatted(evaluation.current.values[m], UNITS[m], "en"),
            )
            for m in HEADLINE
        ],
        currency=evaluation.reporting_currency,
    )
    return html, text


#: MIME type of the workbook.
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def report_email(folder: Path, quarter: Quarter, to: tuple[str, ...]) -> OutboundEmail:
    """The management email from the files :func:`write_report` left in ``folder``: the HTML
    body in both languages with the charts inline, the two PDFs and the workbook attached;
    keyed by the quarter, so it is sent once."""
    return email_from_folder(
        folder,
        quarter.label,
        key=f"quarterly-evaluation/{quarter.label}",
        subject=f"季度催收评估报告 Quarterly collection evaluation {quarter.label}",
        category="quarterly-evaluation",
        to=to,
    )


def email_from_folder(
    folder: Path, label: str, *, key: str, subject: str, category: str, to: tuple[str, ...]
) -> OutboundEmail:
    """A report's email from its folder (``email.html``, ``email.txt``, ``report-<locale>.pdf``,
    ``report.xlsx``, ``charts/*.png`` shown inline by content id); refused
    (:class:`FileNotFoundError`) while any of them is missing."""
    needed = ["email.html", "email.txt", "report.xlsx"] + [f"report-{x}.pdf" for x in LOCALES]
    missing = [name for name in needed if not (folder / name).is_file()]
    if missing:
        raise FileNotFoundError(
            f"the report of {label} in {folder} is incomplete (no {', '.join(missing)}): "
            "write it again before sending"
        )
    inline = [
        Attachment(
            chart.name,
            "image/png",
            chart.read_bytes(),
            content_id=_content_id(chart, label),
        )
        for chart in sorted((folder / "charts").glob("*.png"))
    ]
    attached = [
        Attachment(
            f"report-{locale}.pdf",
            "application/pdf",
            (folder / f"report-{locale}.pdf").read_bytes(),
        )
        for locale in LOCALES
    ]
    attached.append(Attachment("report.xlsx", XLSX_TYPE, (folder / "report.xlsx").read_bytes()))
    return OutboundEmail(
        key=key,
        to=to,
        subject=subject,
        text=(folder / "email.txt").read_text(encoding="utf-8"),
        html=(folder / "email.html").read_text(encoding="utf-8"),
        category=category,
        attachments=(*inline, *attached),
    )
