"""The monthly receivables report: the book's structure, what is overdue and the credit picture
at a month's end, with the six months before it for the trends — the quarterly report's
machinery (receivables by bucket from the aging snapshots, charts, PDF, workbook, email) on a
monthly schedule, under ``$RECEIVABLES_HOME/reports/monthly/<YYYY-MM>/``.

Like the quarterly report it reads the warehouse's history only: the month-ends it shows get
their aging snapshot, provisions and scores from the ledger when no daily run left them.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from markupsafe import Markup
from sqlalchemy.engine import Engine

from receivables.config import Policy, Settings
from receivables.documents import pdf_from_html
from receivables.evaluation import charts
from receivables.evaluation.kpis import grades_moved
from receivables.evaluation.report import (
    GRADES,
    LOCALES,
    TEMPLATE_FOLDER,
    WORDS,
    bucket_label,
    cell_value,
    data_url,
    email_from_folder,
    formatted,
    migration_rows,
    prepare_dates,
    receivables_at,
    write_atomically,
)
from receivables.fx import rates_on
from receivables.render import render
from receivables.warehouse.schema import aging_snapshots, credit_scores, customers, invoice_risk

log = logging.getLogger(__name__)

#: Months in the trends, the reported one included.
TREND_MONTHS = 6
#: Customers listed with the largest overdue amounts.
TOP_OVERDUE = 10

MONTHLY_WORDS: dict[str, dict[str, str]] = {
    "title": {"en": "Monthly receivables report", "zh-CN": "月度应收账款报告"},
    "month": {"en": "Month", "zh-CN": "报告月份"},
    "structure": {"en": "Structure of the book", "zh-CN": "应收账款结构"},
    "overdue_trend": {"en": "Overdue ratio", "zh-CN": "逾期率"},
    "total": {"en": "Receivables outstanding", "zh-CN": "应收账款余额"},
    "overdue": {"en": "Overdue receivables", "zh-CN": "逾期应收账款"},
    "overdue_ratio": {"en": "Overdue ratio", "zh-CN": "逾期率"},
    "ecl": {"en": "ECL provision", "zh-CN": "预期信用损失准备"},
    "ecl_change": {"en": "Change since the previous month", "zh-CN": "较上月变动"},
    "by_class": {"en": "By risk class", "zh-CN": "五级分类"},
    "class": {"en": "Risk class", "zh-CN": "风险分类"},
    "amount": {"en": "Amount", "zh-CN": "金额"},
    "share": {"en": "Share", "zh-CN": "占比"},
    "credit": {"en": "Credit grades (customers)", "zh-CN": "信用等级（客户数）"},
    "grade": {"en": "Grade", "zh-CN": "等级"},
    "customers": {"en": "Customers", "zh-CN": "客户数"},
    "top_overdue": {"en": "Largest overdue balances", "zh-CN": "逾期金额最大的客户"},
    "customer": {"en": "Customer", "zh-CN": "客户"},
    "worst_days": {"en": "Days past due (worst)", "zh-CN": "最长逾期天数"},
    "normal": {"en": "normal", "zh-CN": "正常"},
    "special_mention": {"en": "special mention", "zh-CN": "关注"},
    "substandard": {"en": "substandard", "zh-CN": "次级"},
    "doubtful": {"en": "doubtful", "zh-CN": "可疑"},
    "loss": {"en": "loss", "zh-CN": "损失"},
}


def month_end_before(day: dt.date) -> dt.date:
    """The last day of the month before ``day``'s month."""
    return day.replace(day=1) - dt.timedelta(days=1)


def month_ends(last: dt.date, count: int = TREND_MONTHS) -> list[dt.date]:
    """The ``count`` month-ends up to ``last`` (a month-end), oldest first."""
    ends = [last]
    while len(ends) < count:
        ends.append(month_end_before(ends[-1]))
    return ends[::-1]


@dataclass
class MonthlyReport:
    """What the monthly report shows for the month ending on ``month_end``."""

    month_end: dt.date
    reporting_currency: str
    months: list[dt.date]
    buckets: dict[dt.date, dict[str, Decimal]]
    classes: dict[str, Decimal]
    grades: dict[str, int]
    migration: dict[tuple[str, str], int] | None
    ecl: Decimal | None
    previous_ecl: Decimal | None
    top_overdue: list[dict[str, Any]] = field(default_factory=list)

    @property
    def label(self) -> str:
        """``2025-06``."""
        return self.month_end.strftime("%Y-%m")

    def total(self, day: dt.date) -> Decimal:
        """Receivables at ``day``."""
        return sum(self.buckets[day].values(), Decimal("0.00"))

    def overdue(self, day: dt.date) -> Decimal:
        """Receivables past their due date at ``day`` (every bucket but the first)."""
        return self.total(day) - next(iter(self.buckets[day].values()), Decimal(0))

    def overdue_ratio(self, day: dt.date) -> Decimal | None:
        """Overdue ÷ total at ``day``, six places."""
        total = self.total(day)
        if not total:
            return None
        return (self.overdue(day) / total).quantize(Decimal("0.000001"))


def prepare_month(engine: Engine, month_end: dt.date, policy: Policy) -> dict[str, Any]:
    """The risk rows of the month-ends the report reads, computed from the ledger when
    missing."""
    days = [month_end_before(month_ends(month_end)[0]), *month_ends(month_end)]
    return {"month": month_end.strftime("%Y-%m"), **prepare_dates(engine, days, policy)}


def monthly_figures(engine: Engine, month_end: dt.date, policy: Policy) -> MonthlyReport:
    """Gather the report of the month ending on ``month_end`` (run :func:`prepare_month`
    first)."""
    months = month_ends(month_end)
    previous = month_end_before(months[-1].replace(day=1))
    reporting = policy.currency.reporting_currency
    rates = rates_on(engine, month_end, reporting)
    with engine.connect() as conn:
        grades = dict(
            conn.execute(
                sa.select(credit_scores.c.grade, sa.func.count())
                .where(credit_scores.c.as_of_date == month_end)
                .group_by(credit_scores.c.grade)
            ).all()
        )
        ecl = _ecl_total(conn, month_end, reporting, engine)
        previous_ecl = _ecl_total(conn, previous, reporting, engine)
        top = _top_overdue(conn, month_end, rates)
    return MonthlyReport(
        month_end=month_end,
        reporting_currency=reporting,
        months=months,
        buckets=receivables_at(engine, months, policy),
        classes=receivables_at(engine, [month_end], policy, by="risk_class")[month_end],
        grades={g: int(grades.get(g, 0)) for g in GRADES},
        migration=grades_moved(engine, previous, month_end),
        ecl=ecl,
        previous_ecl=previous_ecl,
        top_overdue=top,
    )


def _ecl_total(conn, day: dt.date, reporting: str, engine: Engine) -> Decimal | None:
    r = invoice_risk.c
    total = sa.type_coerce(sa.func.sum(r.ecl), r.ecl.type)
    rows = conn.execute(
        sa.select(r.currency, total).where(r.as_of_date == day).group_by(r.currency)
    ).all()
    if not rows:
        return None
    rates = rates_on(engine, day, reporting)
    converted = [rates.convert(Decimal(amount), currency) for currency, amount in rows]
    return sum((c for c in converted if c is not None), Decimal("0.00"))


def _top_overdue(conn, day: dt.date, rates) -> list[dict[str, Any]]:
    """The customers with the largest overdue receivables at ``day`` (reporting currency)."""
    s = aging_snapshots.c
    amount = sa.type_coerce(sa.func.sum(s.outstanding), s.outstanding.type)
    rows = conn.execute(
        sa.select(s.customer_id, s.currency, amount, sa.func.max(s.days_past_due))
        .where(s.as_of_date == day, s.days_past_due > 0)
        .group_by(s.customer_id, s.currency)
    ).all()
    by_customer: dict[str, dict[str, Any]] = {}
    for customer_id, currency, owed, worst in rows:
        converted = rates.convert(Decimal(owed), currency)
        if converted is None:
            continue
        entry = by_customer.setdefault(customer_id, {"overdue": Decimal("0.00"), "worst": 0})
        entry["overdue"] += converted
        entry["worst"] = max(entry["worst"], int(worst))
    top = sorted(by_customer.items(), key=lambda kv: (-kv[1]["overdue"], kv[0]))[:TOP_OVERDUE]
    ids = [customer_id for customer_id, _ in top]
    names = dict(
        conn.execute(
            sa.select(customers.c.customer_id, customers.c.name).where(
                customers.c.customer_id.in_(ids)
            )
        ).all()
    )
    grades = dict(
        conn.execute(
            sa.select(credit_scores.c.customer_id, credit_scores.c.grade).where(
                credit_scores.c.as_of_date == day, credit_scores.c.customer_id.in_(ids)
            )
        ).all()
    )
    return [
        {
            "customer_id": customer_id,
            "name": names.get(customer_id) or customer_id,
            "overdue": entry["overdue"],
            "worst_days": entry["worst"],
            "grade": grades.get(customer_id),
        }
        for customer_id, entry in top
    ]


def _words(locale: str) -> dict[str, str]:
    return {k: v[locale] for k, v in {**WORDS, **MONTHLY_WORDS}.items()}


def _context(report: MonthlyReport, locale: str, images: dict[str, str]) -> dict[str, Any]:
    end = report.month_end
    total = report.total(end)
    change = None
    if report.ecl is not None and report.previous_ecl is not None:
        change = report.ecl - report.previous_ecl
    return {
        "locale": locale,
        "words": _words(locale),
        "month": report.label,
        "currency": report.reporting_currency,
        "images": images,
        "headline": [
            (MONTHLY_WORDS["total"][locale], formatted(total, "money", locale)),
            (MONTHLY_WORDS["overdue"][locale], formatted(report.overdue(end), "money", locale)),
            (
                MONTHLY_WORDS["overdue_ratio"][locale],
                formatted(report.overdue_ratio(end), "ratio", locale),
            ),
            (MONTHLY_WORDS["ecl"][locale], formatted(report.ecl, "money", locale)),
            (MONTHLY_WORDS["ecl_change"][locale], formatted(change, "money", locale)),
        ],
        "classes": [
            (
                MONTHLY_WORDS.get(name, {}).get(locale, name),
                formatted(amount, "money", locale),
                formatted(amount / total if total else None, "ratio", locale),
            )
            for name, amount in report.classes.items()
        ],
        "grades": [(g, report.grades[g]) for g in GRADES],
        "migration": migration_rows(report.migration),
        "top": [
            {
                **row,
                "overdue": formatted(row["overdue"], "money", locale),
                "grade": row["grade"] or "–",
            }
            for row in report.top_overdue
        ],
    }


def draw_monthly_charts(report: MonthlyReport, locale: str) -> dict[str, bytes]:
    """The structure over the months (stacked by bucket) and the overdue ratio."""
    labels = [d.strftime("%Y-%m") for d in report.months]
    first = report.months[0]
    return {
        "structure": charts.stacked_bars(
            MONTHLY_WORDS["structure"][locale],
            labels,
            [
                (bucket_label(b, locale), [report.buckets[d][b] for d in report.months])
                for b in report.buckets[first]
            ],
            locale,
            unit=report.reporting_currency,
        ),
        "overdue": charts.lines(
            MONTHLY_WORDS["overdue_trend"][locale],
            labels,
            [
                (
                    MONTHLY_WORDS["overdue_ratio"][locale],
                    [report.overdue_ratio(d) for d in report.months],
                )
            ],
            locale,
        ),
    }


def write_monthly_report(report: MonthlyReport, folder: Path) -> Path:
    """Write the report into ``folder`` (``report-<locale>.html``/``.pdf``, ``report.xlsx``,
    ``charts/``, ``email.html``, ``email.txt``); returns the folder."""
    from openpyxl import Workbook
    from openpyxl.styles import Font

    (folder / "charts").mkdir(parents=True, exist_ok=True)
    for old in (folder / "charts").glob("*.png"):
        old.unlink()
    bodies = []
    for locale in LOCALES:
        drawn = draw_monthly_charts(report, locale)
        for name, png in drawn.items():
            write_atomically(folder / "charts" / f"{name}-{locale}.png", png)
        page = render(
            f"{TEMPLATE_FOLDER}/monthly.html",
            **_context(report, locale, {n: data_url(p) for n, p in drawn.items()}),
        )
        write_atomically(folder / f"report-{locale}.html", page.encode("utf-8"))
        write_atomically(folder / f"report-{locale}.pdf", pdf_from_html(page, images=True))
        cids = {n: f"cid:{n}-{locale}.{report.label}@receivables" for n in drawn}
        bodies.append(
            Markup(
                render(f"{TEMPLATE_FOLDER}/_monthly_body.html", **_context(report, locale, cids))
            )
        )
    html = render(f"{TEMPLATE_FOLDER}/email.html", bodies=bodies, quarter=report.label)
    text = render(
        f"{TEMPLATE_FOLDER}/monthly_email.txt",
        month=report.label,
        rows=[
            (MONTHLY_WORDS[k]["zh-CN"], MONTHLY_WORDS[k]["en"], v)
            for k, v in (
                ("total", formatted(report.total(report.month_end), "money", "en")),
                ("overdue_ratio", formatted(report.overdue_ratio(report.month_end), "ratio", "en")),
                ("ecl", formatted(report.ecl, "money", "en")),
            )
        ],
        currency=report.reporting_currency,
    )
    write_atomically(folder / "email.html", html.encode("utf-8"))
    write_atomically(folder / "email.txt", text.encode("utf-8"))

    workbook = Workbook()
    sheet = workbook.active
    sheet.title = "Structure"
    sheet.append(["bucket", *[d.isoformat() for d in report.months]])
    for bucket in report.buckets[report.months[0]]:
        sheet.append([bucket, *[cell_value(report.buckets[d][bucket]) for d in report.months]])
    classes = workbook.create_sheet("Risk classes")
    classes.append(["risk_class", report.month_end.isoformat()])
    for name, amount in report.classes.items():
        classes.append([name, cell_value(amount)])
    grades = workbook.create_sheet("Grades")
    grades.append(["grade", "customers"])
    for grade in GRADES:
        grades.append([grade, report.grades[grade]])
    top = workbook.create_sheet("Largest overdue")
    top.append(["customer_id", "name", "overdue", "worst_days_past_due", "grade"])
    for row in report.top_overdue:
        top.append(
            [
                row["customer_id"],
                row["name"],
                cell_value(row["overdue"]),
                row["worst_days"],
                row["grade"],
            ]
        )
    for ws in workbook.worksheets:
        for cell in ws[1]:
            cell.font = Font(bold=True)
        for cells in ws.iter_rows():
            for cell in cells:
                if isinstance(cell.value, str):
                    cell.data_type = "s"  # a name from the ledger is never a formula
    temporary = folder / ".report.xlsx.tmp"
    workbook.save(temporary)
    temporary.replace(folder / "report.xlsx")
    return folder


def monthly_folder(settings: Settings, month_end: dt.date) -> Path:
    """``$RECEIVABLES_HOME/reports/monthly/<YYYY-MM>``."""
    return settings.reports_dir / "monthly" / month_end.strftime("%Y-%m")


def monthly_email(folder: Path, month_end: dt.date, to: tuple[str, ...]):
    """The management email of the month's report, keyed by the month (sent once)."""
    label = month_end.strftime("%Y-%m")
    return email_from_folder(
        folder,
        label,
        key=f"monthly-report/{label}",
        subject=f"月度应收账款报告 Monthly receivables report {label}",
        category="monthly-report",
        to=to,
    )
