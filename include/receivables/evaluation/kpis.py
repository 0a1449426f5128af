"""The quarter's KPIs (``kpis`` export, docs/formulas.md §10).

The ledger figures (receivables at the opening and the close, credit sales, what was overdue at
the opening and what became of it) come from invoices and payments alone
(``sql/evaluation/quarter_ledger.sql``): a first run on a quarter-start date, or a backfill,
gives the same figures as a year of daily runs. A trend of quarters (:func:`trend_kpis`, the
report's) is read in one pass over the ledger for all its quarters, each quarter's figures the
same as :func:`quarter_kpis` gives for it alone. The provision is the ECL the risk step stored for
the quarter's last day; reminders and legal cases are the warehouse's own history.

Amounts are exact (whole cents from the database, :class:`~decimal.Decimal` here). Each book
(currency) is evaluated on its own; the whole portfolio is every book converted to the reporting
currency at the rates in force on the quarter's last day (opening balances too, so that a
currency's movement never reads as collection). A book without a rate is left out of the
portfolio's figures and named (``missing_fx_rates``). Ratios are fractions rounded half-up to
six places, days to two, money to the cent; a ratio whose denominator is zero has no value.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, fields
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from typing import Literal, overload

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from receivables.config import Policy
from receivables.evaluation.quarters import Quarter, month_days
from receivables.fx import Rates, rates_on
from receivables.warehouse import sqlfiles
from receivables.warehouse.schema import (
    collectors,
    credit_scores,
    customers,
    invoice_risk,
    legal_case_events,
    legal_cases,
    payments,
    reminder_invoices,
    reminders,
)
from receivables.warehouse.types import from_cents

log = logging.getLogger(__name__)

#: Days after a reminder within which a payment on one of its invoices counts as its success.
SUCCESS_WINDOW_DAYS = 14
#: How far back the countback DSO looks for credit sales.
COUNTBACK_MONTHS = 36
#: The book of the whole portfolio, in the reporting currency.
ALL_BOOKS = "*"

_RATIO = Decimal("0.000001")
_DAYS = Decimal("0.01")
_CENT = Decimal("0.01")


@dataclass(frozen=True)
class Metric:
    """A KPI: its name (CONTRACT §5 where it is named there), unit and formula in words."""

    name: str
    unit: str  # money, ratio, days, count
    formula: str


METRICS: tuple[Metric, ...] = (
    Metric("total_outstanding", "money", "AR at the quarter's last day"),
    Metric("overdue_outstanding", "money", "AR past its due date at the quarter's last day"),
    Metric("overdue_ratio", "ratio", "overdue_outstanding / total_outstanding"),
    Metric("opening_outstanding", "money", "AR at the day before the quarter's first day"),
    Metric("credit_sales", "money", "amounts of invoices issued in the quarter"),
    Metric(
        "recovery_rate",
        "ratio",
        "payments in the quarter on invoices overdue at its opening (at most what each owed "
        "then) / their overdue outstanding at the opening",
    ),
    Metric(
        "collection_success_rate",
        "ratio",
        f"reminders sent in the quarter followed within {SUCCESS_WINDOW_DAYS} days by a payment "
        f"on a reminded invoice / reminders sent in the quarter whose {SUCCESS_WINDOW_DAYS} days "
        "ended by its last day",
    ),
    Metric("dso", "days", "total_outstanding / credit_sales x days in the quarter"),
    Metric(
        "dso_countback",
        "days",
        "days of the newest months whose credit sales add up to total_outstanding (the last "
        "month pro rata)",
    ),
    Metric("best_possible_dso", "days", "not-yet-due AR / credit_sales x days in the quarter"),
    Metric("average_days_delinquent", "days", "dso - best_possible_dso"),
    Metric(
        "cei",
        "ratio",
        "(opening AR + credit_sales - closing AR) / (opening AR + credit_sales - closing "
        "not-yet-due AR)",
    ),
    Metric(
        "cure_rate",
        "ratio",
        "overdue outstanding at the opening whose invoice is paid at the close / overdue "
        "outstanding at the opening",
    ),
    Metric("written_off", "money", "amounts written off on legal cases in the quarter"),
    Metric(
        "bad_debt_ratio",
        "ratio",
        "(outstanding classed loss at the close + written_off) / total_outstanding",
    ),
    Metric("ecl_provision", "money", "total ECL on the quarter's last day"),
    Metric("ecl_provision_change", "money", "ecl_provision - the previous quarter's"),
    Metric("reminders_sent", "count", "reminders sent in the quarter"),
    Metric("legal_cases_opened", "count", "legal cases approved in the quarter"),
    Metric("legal_recovered", "money", "recovered or settled on legal cases in the quarter"),
    Metric(
        "grades_improved",
        "count",
        "customers graded at the opening and at the close whose grade is better at the close",
    ),
    Metric("grades_worsened", "count", "of those customers, the ones whose grade is worse"),
    Metric("grades_unchanged", "count", "of those customers, the ones whose grade is the same"),
)
UNITS = {m.name: m.unit for m in METRICS}

#: What each KPI is called, in English and Chinese (the report, the workbook, the findings).
METRIC_LABELS: dict[str, dict[str, str]] = {
    "total_outstanding": {"en": "Receivables outstanding", "zh-CN": "应收账款余额"},
    "overdue_outstanding": {"en": "Overdue receivables", "zh-CN": "逾期应收账款"},
    "overdue_ratio": {"en": "Overdue ratio", "zh-CN": "逾期率"},
    "opening_outstanding": {"en": "Receivables at the opening", "zh-CN": "期初应收账款"},
    "credit_sales": {"en": "Credit sales", "zh-CN": "赊销额"},
    "recovery_rate": {"en": "Recovery rate", "zh-CN": "回收率"},
    "collection_success_rate": {"en": "Collection success rate", "zh-CN": "催收成功率"},
    "dso": {"en": "DSO", "zh-CN": "应收账款周转天数 (DSO)"},
    "dso_countback": {"en": "DSO (countback)", "zh-CN": "DSO (倒推法)"},
    "best_possible_dso": {"en": "Best possible DSO", "zh-CN": "最佳可能 DSO"},
    "average_days_delinquent": {"en": "Average days delinquent", "zh-CN": "平均逾期天数"},
    "cei": {"en": "Collection effectiveness index", "zh-CN": "催收有效性指数 (CEI)"},
    "cure_rate": {"en": "Cure rate", "zh-CN": "逾期治愈率"},
    "written_off": {"en": "Written off", "zh-CN": "核销金额"},
    "bad_debt_ratio": {"en": "Bad-debt ratio", "zh-CN": "坏账率"},
    "ecl_provision": {"en": "ECL provision", "zh-CN": "预期信用损失准备"},
    "ecl_provision_change": {"en": "Change in ECL provision", "zh-CN": "预期信用损失准备变动"},
    "reminders_sent": {"en": "Reminders sent", "zh-CN": "已发送催收提醒"},
    "legal_cases_opened": {"en": "Legal cases opened", "zh-CN": "新立法律案件"},
    "legal_recovered": {"en": "Recovered through legal cases", "zh-CN": "法律途径回收金额"},
    "grades_improved": {"en": "Customers whose grade improved", "zh-CN": "信用等级上升客户数"},
    "grades_worsened": {"en": "Customers whose grade worsened", "zh-CN": "信用等级下降客户数"},
    "grades_unchanged": {"en": "Customers whose grade held", "zh-CN": "信用等级不变客户数"},
}

#: Metrics that are a book's own (every other one is of the whole portfolio only).
BOOK_METRICS = (
    "total_outstanding",
    "overdue_outstanding",
    "overdue_ratio",
    "opening_outstanding",
    "credit_sales",
    "recovery_rate",
    "dso",
    "dso_countback",
    "best_possible_dso",
    "average_days_delinquent",
    "cei",
    "cure_rate",
    "written_off",
    "bad_debt_ratio",
    "ecl_provision",
)


# --- the formulas, on exact numbers ----------------------------------------------------------


def ratio(part: Decimal | int, whole: Decimal | int) -> Fraction | None:
    """``part / whole`` exactly; None when ``whole`` is zero."""
    if not whole:
        return None
    return Fraction(Decimal(part)) / Fraction(Decimal(whole))


def dso(closing_ar: Decimal, credit_sales: Decimal, days: int) -> Fraction | None:
    """Days sales outstanding: AR at the close / credit sales x days in the quarter."""
    share = ratio(closing_ar, credit_sales)
    return None if share is None else share * days


def cei(
    opening_ar: Decimal, credit_sales: Decimal, closing_ar: Decimal, closing_not_due: Decimal
) -> Fraction | None:
    """Collection Effectiveness Index: what was collected / what could have been."""
    return ratio(
        opening_ar + credit_sales - closing_ar, opening_ar + credit_sales - closing_not_due
    )


def dso_countback(ar: Decimal, months: Iterable[tuple[Decimal, int]]) -> Fraction | None:
    """Countback DSO: walk the months newest first (``(credit sales, days)`` each), taking each
    month's sales from ``ar`` and counting its days, until ``ar`` is used up; the month that
    uses it up counts its days x remainder / its sales. When the months given run out first
    (a history shorter than the AR), the oldest month with sales is extended pro rata by what
    remains (months older than it, without sales, do not count). 0 without AR."""
    rest = Fraction(Decimal(ar))
    if rest <= 0:
        return Fraction(0)
    walk = [(Fraction(Decimal(sales)), days) for sales, days in months]
    while walk and walk[-1][0] <= 0:  # before the oldest sales: nothing to count back into
        walk.pop()
    counted = Fraction(0)
    for sales, days in walk:
        if sales >= rest:
            return counted + rest / sales * days
        counted += days
        rest -= max(sales, Fraction(0))
    if not walk:
        return None
    sales, days = walk[-1]
    return counted + rest / sales * days


def rounded(value: Fraction | Decimal | int | None, unit: str) -> Decimal | None:
    """``value`` in its stored form: ratios to six places, days and money to two (half-up,
    exactly, from the exact value), counts whole."""
    if value is None:
        return None
    if unit == "count":
        return Decimal(int(value))
    quantum = {"ratio": _RATIO, "days": _DAYS, "money": _CENT}[unit]
    if isinstance(value, Fraction):
        steps = abs(value) / Fraction(quantum)
        whole = int(steps + Fraction(1, 2))  # floor, for a non-negative number: half-up
        return (Decimal(whole if value >= 0 else -whole) * quantum).quantize(quantum)
    return Decimal(value).quantize(quantum, rounding=ROUND_HALF_UP)


# --- the figures of one book -----------------------------------------------------------------


@dataclass(frozen=True)
class BookFigures:
    """One currency's ledger figures for a quarter (money exact)."""

    opening_ar: Decimal = Decimal(0)
    opening_overdue: Decimal = Decimal(0)
    closing_ar: Decimal = Decimal(0)
    closing_overdue: Decimal = Decimal(0)
    closing_loss: Decimal = Decimal(0)
    credit_sales: Decimal = Decimal(0)
    recovered: Decimal = Decimal(0)
    cured: Decimal = Decimal(0)
    written_off: Decimal = Decimal(0)
    legal_recovered: Decimal = Decimal(0)
    ecl: Decimal | None = None
    previous_ecl: Decimal | None = None
    #: credit sales per month, newest first, with the month's days (the countback)
    monthly_sales: tuple[tuple[Decimal, int], ...] = ()

    @property
    def closing_not_due(self) -> Decimal:
        """AR at the close that is not yet due."""
        return self.closing_ar - self.closing_overdue

    def converted(self, rates: Rates, currency: str) -> BookFigures | None:
        """Every amount in the reporting currency (None without a rate)."""
        if rates.rate(currency) is None:
            return None

        def convert(amount):
            return None if amount is None else rates.convert(amount, currency)

        values = {
            f.name: convert(getattr(self, f.name))
            for f in fields(self)
            if f.name != "monthly_sales"
        }
        values["monthly_sales"] = tuple(
            (rates.convert(sales, currency), days) for sales, days in self.monthly_sales
        )
        return BookFigures(**values)

    def __add__(self, other: BookFigures) -> BookFigures:
        def add(a, b):
            return None if a is None or b is None else a + b

        values = {
            f.name: add(getattr(self, f.name), getattr(other, f.name))
            for f in fields(self)
            if f.name != "monthly_sales"
        }
        length = max(len(self.monthly_sales), len(other.monthly_sales))
        mine = self.monthly_sales + ((Decimal(0), 0),) * (length - len(self.monthly_sales))
        theirs = other.monthly_sales + ((Decimal(0), 0),) * (length - len(other.monthly_sales))
        values["monthly_sales"] = tuple(
            (a + b, days or other_days)
            for (a, days), (b, other_days) in zip(mine, theirs, strict=True)
        )
        return BookFigures(**values)

    def metrics(self, days: int) -> dict[str, Decimal | None]:
        """The book's KPIs, rounded (see :data:`BOOK_METRICS`)."""
        dso_days = dso(self.closing_ar, self.credit_sales, days)
        best = dso(self.closing_not_due, self.credit_sales, days)
        values = {
            "total_outstanding": self.closing_ar,
            "overdue_outstanding": self.closing_overdue,
            "overdue_ratio": ratio(self.closing_overdue, self.closing_ar),
            "opening_outstanding": self.opening_ar,
            "credit_sales": self.credit_sales,
            "recovery_rate": ratio(self.recovered, self.opening_overdue),
            "dso": dso_days,
            "dso_countback": dso_countback(self.closing_ar, self.monthly_sales),
            "best_possible_dso": best,
            "average_days_delinquent": None
            if dso_days is None or best is None
            else dso_days - best,
            "cei": cei(self.opening_ar, self.credit_sales, self.closing_ar, self.closing_not_due),
            "cure_rate": ratio(self.cured, self.opening_overdue),
            "written_off": self.written_off,
            "bad_debt_ratio": ratio(self.closing_loss + self.written_off, self.closing_ar),
            "ecl_provision": self.ecl,
        }
        return {name: rounded(value, UNITS[name]) for name, value in values.items()}


# --- reading the warehouse -------------------------------------------------------------------


#: A book's ledger figures for a quarter, as ``quarter_ledger.sql`` names them (whole cents).
LEDGER_FIGURES = (
    "opening_ar",
    "opening_overdue",
    "closing_ar",
    "closing_overdue",
    "closing_loss",
    "credit_sales",
    "recovered",
    "cured",
)


def _by_currency(rows) -> dict[str, Decimal]:
    return {currency: Decimal(amount) for currency, amount in rows}


def read_books(
    engine: Engine, quarters: Sequence[Quarter], policy: Policy
) -> list[dict[str, BookFigures]]:
    """Every book's figures for each of ``quarters``, in their order (per quarter, the books with
    anything to show in it).

    However many quarters there are, the ledger figures of them all come from one statement
    (``sql/evaluation/quarter_ledger.sql``) and the countback's monthly credit sales from
    another (``sql/evaluation/monthly_sales.sql``), each one pass over the ledger; each quarter's
    figures are the ones it would have on its own."""
    quarters = list(quarters)
    if not quarters:
        return []
    with engine.connect() as conn:
        ledgers = _ledger_figures(conn, quarters, policy)
        monthly = _monthly_sales(conn, quarters)
        # each quarter-end once (consecutive quarters share one: the previous one's close), and
        # each on its own: a sum over several days sorts them all at once, which costs more
        days = {day for q in quarters for day in (q.end, q.previous().end)}
        ecl = {day: _ecl(conn, day) for day in sorted(days)}
        legal = [
            (_events(conn, q, ("written_off",)), _events(conn, q, ("recovered", "settled")))
            for q in quarters
        ]
    return [
        _quarter_books(
            quarter,
            ledger,
            monthly,
            written,
            recovered,
            ecl[quarter.end],
            ecl[quarter.previous().end],
        )
        for quarter, ledger, (written, recovered) in zip(quarters, ledgers, legal, strict=True)
    ]


def _quarter_books(
    quarter: Quarter,
    ledger: dict[str, dict[str, Decimal]],
    monthly: dict[str, dict[str | None, Decimal]],
    written: dict[str, Decimal],
    recovered: dict[str, Decimal],
    ecl: dict[str, Decimal] | None,
    previous_ecl: dict[str, Decimal] | None,
) -> dict[str, BookFigures]:
    """One quarter's books from what :func:`read_books` read.

    A book is in the quarter's ledger when it has an invoice issued by the quarter's last day:
    its monthly sales begin (with the month of its first invoice, or with the None of those
    issued before the months read) no later than the quarter's last month. The ledger statement
    gives no row for a book whose invoices issued by then were all settled by the opening: its
    ledger figures are zero."""
    last_month = _month_key(quarter.end)
    issued = {
        currency
        for currency, sales in monthly.items()
        if min(month or "" for month in sales) <= last_month
    }
    books = {
        currency: ledger.get(currency) or dict.fromkeys(LEDGER_FIGURES, from_cents(0))
        for currency in issued | set(ledger)
    }
    months = _months_newest_first(quarter.end, COUNTBACK_MONTHS)
    out: dict[str, BookFigures] = {}
    for currency in sorted(set(books) | set(written) | set(recovered)):
        base = books.get(currency, {})
        sales_of = monthly.get(currency, {})
        out[currency] = BookFigures(
            **base,
            written_off=written.get(currency, Decimal(0)),
            legal_recovered=recovered.get(currency, Decimal(0)),
            ecl=None if ecl is None else ecl.get(currency, Decimal(0)),
            previous_ecl=None if previous_ecl is None else previous_ecl.get(currency, Decimal(0)),
            monthly_sales=tuple(
                (sales_of.get(f"{y:04d}-{m:02d}", Decimal(0)), month_days(y, m)) for y, m in months
            ),
        )
    return out


def _ledger_figures(
    conn, quarters: list[Quarter], policy: Policy
) -> list[dict[str, dict[str, Decimal]]]:
    """Per quarter (in order), per currency, the ledger figures (:data:`LEDGER_FIGURES`) of
    ``quarter_ledger.sql``: one statement for all the quarters.

    Its bound dates are the distinct openings and closings of the quarters, earliest first
    (``day_0``, ``day_1``, …: consecutive quarters share one, the closing of one being the
    opening of the next), and each quarter's first day (``start_0``, …)."""
    days = sorted({day for q in quarters for day in (q.opening, q.end)})
    day_name = {day: f"day_{n}" for n, day in enumerate(days)}
    params: dict[str, dt.date] = {day_name[day]: day for day in days}
    params |= {f"start_{n}": q.start for n, q in enumerate(quarters)}
    aging = policy.aging
    (rows,) = sqlfiles.execute(
        conn,
        "evaluation/quarter_ledger.sql",
        params,
        types={name: sa.Date() for name in params},
        days=[day_name[day] for day in days],
        quarters=[
            {"opening": day_name[q.opening], "start": f"start_{n}", "closing": day_name[q.end]}
            for n, q in enumerate(quarters)
        ],
        risk_classes=aging.risk_classes,
        loss_class=aging.risk_classes[-1].name,
    )
    out: list[dict[str, dict[str, Decimal]]] = [{} for _ in quarters]
    for row in rows:
        out[int(row.quarter)][row.currency] = {
            name: from_cents(getattr(row, name)) for name in LEDGER_FIGURES
        }
    return out


def _monthly_sales(conn, quarters: list[Quarter]) -> dict[str, dict[str | None, Decimal]]:
    """Per currency, the credit sales of each month (``YYYY-MM``) of the quarters' countbacks
    (:data:`COUNTBACK_MONTHS` up to each one's last day), and under None those of the invoices
    issued before them: one statement for all the quarters (``monthly_sales.sql``)."""
    since = min(_months_back(q.end, COUNTBACK_MONTHS) for q in quarters)
    closing = max(q.end for q in quarters)
    (rows,) = sqlfiles.execute(
        conn,
        "evaluation/monthly_sales.sql",
        {"since": since, "closing": closing},
        types={"since": sa.Date(), "closing": sa.Date()},
    )
    monthly: dict[str, dict[str | None, Decimal]] = {}
    for currency, month, cents in rows:
        monthly.setdefault(currency, {})[month] = from_cents(cents)
    return monthly


def _month_key(day: dt.date) -> str:
    """The month of ``day`` as the monthly sales name it (``YYYY-MM``)."""
    return f"{day.year:04d}-{day.month:02d}"


def _months_newest_first(end: dt.date, count: int) -> list[tuple[int, int]]:
    index = end.year * 12 + end.month - 1
    return [((index - n) // 12, (index - n) % 12 + 1) for n in range(count)]


def _months_back(end: dt.date, count: int) -> dt.date:
    year, month = _months_newest_first(end, count)[-1]
    return dt.date(year, month, 1)


def _events(conn, quarter: Quarter, statuses: tuple[str, ...]) -> dict[str, Decimal]:
    """Per currency, the amounts of legal case steps to ``statuses`` in the quarter."""
    e, c = legal_case_events.c, legal_cases.c
    amount = sa.type_coerce(sa.func.sum(e.amount), e.amount.type)
    rows = conn.execute(
        sa.select(c.currency, amount)
        .select_from(legal_case_events.join(legal_cases, legal_cases.c.case_id == e.case_id))
        .where(
            e.status.in_(statuses),
            e.occurred_on >= quarter.start,
            e.occurred_on <= quarter.end,
            e.amount.is_not(None),
        )
        .group_by(c.currency)
    ).all()
    return _by_currency((currency, value) for currency, value in rows if value is not None)


def _ecl(conn, day: dt.date) -> dict[str, Decimal] | None:
    """Per currency, the ECL stored for ``day``; None when the risk step has not run for it."""
    r = invoice_risk.c
    ecl = sa.type_coerce(sa.func.sum(r.ecl), r.ecl.type)
    rows = conn.execute(
        sa.select(r.currency, ecl).where(r.as_of_date == day).group_by(r.currency)
    ).all()
    if not rows:
        return None
    return _by_currency(rows)


def collector_of(source, customer_id):
    """``source`` outer-joined to the customer whose id is ``customer_id`` and to that
    customer's collector, and the key to group by: the collector's id, NULL (the unassigned)
    when the customer has no collector, names one missing from ``collectors`` or is unknown."""
    cu, k = customers.c, collectors.c
    joined = source.outerjoin(customers, cu.customer_id == customer_id).outerjoin(
        collectors, k.collector_id == cu.collector_id
    )
    return joined, k.collector_id


#: ``(sent, eligible, followed)`` of :func:`reminder_success`.
SuccessCounts = tuple[int, int, int]


@overload
def reminder_success(
    engine: Engine, quarter: Quarter, *, by_collector: Literal[False] = False
) -> SuccessCounts: ...


@overload
def reminder_success(
    engine: Engine, quarter: Quarter, *, by_collector: Literal[True]
) -> dict[str | None, SuccessCounts]: ...


def reminder_success(
    engine: Engine, quarter: Quarter, *, by_collector: bool = False
) -> SuccessCounts | dict[str | None, SuccessCounts]:
    """``(sent, eligible, followed)``: reminders sent in the quarter; those whose
    :data:`SUCCESS_WINDOW_DAYS` ended by its last day; those of them followed, on the day they
    were sent or within the window, by a payment on one of the invoices they reminded of.

    ``by_collector``: the same counts per collector of the reminded customer (see
    :func:`collector_of`; the key None is the unassigned), for the groups that have any."""
    r, ri, p = reminders.c, reminder_invoices.c, payments.c
    last_eligible = quarter.end - dt.timedelta(days=SUCCESS_WINDOW_DAYS)
    in_quarter = (r.status == "sent", r.planned_on >= quarter.start, r.planned_on <= quarter.end)
    eligible = r.planned_on <= last_eligible
    with engine.connect() as conn:
        paid_in_window = (
            sa.select(sa.literal(1))
            .select_from(reminder_invoices.join(payments, p.invoice_id == ri.invoice_id))
            .where(
                ri.reminder_id == r.reminder_id,
                p.paid_date >= r.planned_on,
                p.paid_date <= _plus_days(conn, r.planned_on, SUCCESS_WINDOW_DAYS),
            )
            .exists()
        )
        counts = (
            sa.func.count(),
            sa.func.coalesce(sa.func.sum(sa.case((eligible, 1), else_=0)), 0),
            sa.func.coalesce(
                sa.func.sum(sa.case((sa.and_(eligible, paid_in_window), 1), else_=0)), 0
            ),
        )
        if not by_collector:
            sent, counted, followed = conn.execute(sa.select(*counts).where(*in_quarter)).one()
            return int(sent), int(counted), int(followed)
        source, key = collector_of(reminders, r.customer_id)
        rows = conn.execute(
            sa.select(key, *counts).select_from(source).where(*in_quarter).group_by(key)
        ).all()
    return {
        group: (int(sent), int(counted), int(followed)) for group, sent, counted, followed in rows
    }


def _plus_days(conn, column, days: int):
    """``column + days`` for a DATE column, on either engine."""
    if conn.dialect.name == "sqlite":
        return sa.func.date(column, f"+{int(days)} days")
    return column + sa.literal(int(days))


@overload
def legal_opened(
    engine: Engine, quarter: Quarter, *, by_collector: Literal[False] = False
) -> int: ...


@overload
def legal_opened(
    engine: Engine, quarter: Quarter, *, by_collector: Literal[True]
) -> dict[str | None, int]: ...


def legal_opened(
    engine: Engine, quarter: Quarter, *, by_collector: bool = False
) -> int | dict[str | None, int]:
    """Legal cases approved (by a person or the rule) in the quarter.

    ``by_collector``: per collector of the case's customer (see :func:`collector_of`), for the
    groups that have any."""
    e = legal_case_events.c
    approved = (
        e.status == "approved",
        e.occurred_on >= quarter.start,
        e.occurred_on <= quarter.end,
    )
    opened = sa.func.count(sa.distinct(e.case_id))
    with engine.connect() as conn:
        if not by_collector:
            return int(conn.execute(sa.select(opened).where(*approved)).scalar_one())
        c = legal_cases.c
        source, key = collector_of(
            legal_case_events.outerjoin(legal_cases, c.case_id == e.case_id), c.customer_id
        )
        rows = conn.execute(
            sa.select(key, opened).select_from(source).where(*approved).group_by(key)
        ).all()
    return {group: int(count) for group, count in rows}


# --- the quarter -----------------------------------------------------------------------------


@dataclass
class QuarterKpis:
    """A quarter's KPIs: the portfolio's (``values``) and each book's (``books``)."""

    quarter: Quarter
    reporting_currency: str
    values: dict[str, Decimal | None]
    books: dict[str, dict[str, Decimal | None]] = field(default_factory=dict)
    missing_fx_rates: list[str] = field(default_factory=list)
    #: True when the risk step had stored no ECL for the quarter's last day
    ecl_missing: bool = False
    #: customers by (grade at the opening, grade at the close); None without both scorings
    grade_migration: dict[tuple[str, str], int] | None = None

    def rows(self) -> list[tuple[str, str, Decimal | None]]:
        """``(book, metric, value)`` for every figure: the portfolio's first (book ``*``)."""
        out = [(ALL_BOOKS, m.name, self.values.get(m.name)) for m in METRICS]
        for currency, values in sorted(self.books.items()):
            out += [(currency, name, values.get(name)) for name in BOOK_METRICS]
        return out


def quarter_kpis(engine: Engine, quarter: Quarter, policy: Policy) -> QuarterKpis:
    """Every KPI of ``quarter`` from the warehouse."""
    (kpis,) = trend_kpis(engine, [quarter], policy)
    return kpis


def trend_kpis(engine: Engine, quarters: Sequence[Quarter], policy: Policy) -> list[QuarterKpis]:
    """Every KPI of each of ``quarters`` (a report's trend), in their order: each quarter's are
    what :func:`quarter_kpis` gives for it alone, with the ledger read once for all of them
    (:func:`read_books`)."""
    quarters = list(quarters)
    books = read_books(engine, quarters, policy)
    return [
        _quarter_kpis(engine, quarter, policy, of_quarter)
        for quarter, of_quarter in zip(quarters, books, strict=True)
    ]


def _quarter_kpis(
    engine: Engine, quarter: Quarter, policy: Policy, books: dict[str, BookFigures]
) -> QuarterKpis:
    """Every KPI of ``quarter`` from its ``books`` (:func:`read_books`) and the warehouse."""
    reporting = policy.currency.reporting_currency
    rates = rates_on(engine, quarter.end, reporting)
    missing = rates.missing(books)
    total = BookFigures(ecl=Decimal(0), previous_ecl=Decimal(0))
    for currency, figures in books.items():
        converted = figures.converted(rates, currency)
        if converted is not None:
            total = total + converted
    if not books:
        total = BookFigures()
    values = total.metrics(quarter.days)
    ecl_missing = any(b.ecl is None for b in books.values())
    if ecl_missing:
        values["ecl_provision"] = None
    change = None
    # the sum is None when any converted book lacks the previous quarter's ECL
    if not ecl_missing and books and total.previous_ecl is not None:
        change = total.ecl - total.previous_ecl
    values["ecl_provision_change"] = rounded(change, "money")
    sent, eligible, followed = reminder_success(engine, quarter)
    values["reminders_sent"] = Decimal(sent)
    values["collection_success_rate"] = rounded(ratio(followed, eligible), "ratio")
    values["legal_cases_opened"] = Decimal(legal_opened(engine, quarter))
    values["legal_recovered"] = rounded(total.legal_recovered, "money")
    migration = grade_migration(engine, quarter)
    if migration is not None:
        moves = {"improved": 0, "worsened": 0, "unchanged": 0}
        for (before, after), count in migration.items():
            key = "improved" if after < before else "worsened" if after > before else "unchanged"
            moves[key] += count
        for key, count in moves.items():
            values[f"grades_{key}"] = Decimal(count)
    return QuarterKpis(
        quarter=quarter,
        reporting_currency=reporting,
        values={m.name: values.get(m.name) for m in METRICS},
        books={currency: figures.metrics(quarter.days) for currency, figures in books.items()},
        missing_fx_rates=missing,
        ecl_missing=ecl_missing,
        grade_migration=migration,
    )


def grade_migration(engine: Engine, quarter: Quarter) -> dict[tuple[str, str], int] | None:
    """Customers graded both at the quarter's opening and at its close, counted by ``(grade at
    the opening, grade at the close)`` (grades A, best, to E); None when either day has no
    scores (the risk step did not score it)."""
    return grades_moved(engine, quarter.opening, quarter.end)


def grades_moved(
    engine: Engine, before_day: dt.date, after_day: dt.date
) -> dict[tuple[str, str], int] | None:
    """Customers graded on both days, by ``(grade on before_day, grade on after_day)``; None
    when either day has no scores."""
    s = credit_scores.c
    before = credit_scores.alias("before")
    after = credit_scores.alias("after")
    with engine.connect() as conn:
        for day in (before_day, after_day):
            # whether the day has any score: one probe of the index, not every score of the day
            if not conn.execute(sa.select(sa.exists().where(s.as_of_date == day))).scalar():
                return None
        rows = conn.execute(
            sa.select(before.c.grade, after.c.grade, sa.func.count())
            .select_from(before.join(after, after.c.customer_id == before.c.customer_id))
            .where(before.c.as_of_date == before_day, after.c.as_of_date == after_day)
            .group_by(before.c.grade, after.c.grade)
        ).all()
    return {(a, b): int(n) for a, b, n in rows}


def target_status(value: Decimal | None, target) -> str | None:
    """``met`` or ``missed`` against a :class:`~receivables.config.KpiTarget`; None without a
    value or a target."""
    if value is None or target is None:
        return None
    if target.better == "higher":
        return "met" if value >= target.value else "missed"
    return "met" if value <= target.value else "missed"
