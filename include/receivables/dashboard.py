"""The operations dashboard: the day's picture of the book, read back from the warehouse.

For one as-of date (by default the latest with an aging snapshot) :func:`build` gathers what
the *Receivables* page of the Airflow UI shows (``plugins/receivables_plugin.py`` renders it):

* outstanding and overdue per currency, and every currency converted to the reporting currency
  at the rates in force that day (each currency's total to the cent, half up, then added, as the
  ``receivables run`` summary and the reports do; a currency without a rate is left out and
  named);
* the aging distribution by the policy's buckets, per currency and in the reporting currency;
* the overdue trend: the month-ends of the last year that have a stored snapshot, and the day;
* the day's risk warnings by severity and kind;
* the reminders planned that day and over the last 30 days: planned, sent, delivered, opened,
  bounced, refused, failed, pending;
* the legal cases opened up to the day, by their status now, with their claims per currency;
* the data quality of the last ingest run up to the day (files loaded and refused, rows read,
  loaded and quarantined, per file) and where the GX data docs are.

Nothing here writes: a date without a snapshot is reported as missing, never computed. Money is
exact: the database sums whole cents (``sql/dashboard/``), Python adds integers and converts
with :class:`~decimal.Decimal`. No Airflow and no web framework here.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from receivables.config import Policy
from receivables.fx import rates_on
from receivables.legal.lifecycle import OPEN_STATUSES
from receivables.legal.selection import UNDELIVERED
from receivables.warehouse import sqlfiles
from receivables.warehouse.schema import CASE_STATUSES, aging_runs, ingested_files, quarantined_rows
from receivables.warehouse.types import from_cents

#: Severities of risk warnings, most severe first (``warnings.bucket_severity``'s values).
SEVERITIES = ("critical", "high", "medium", "low")
#: Month-ends in the overdue trend (before the as-of date itself).
TREND_MONTH_ENDS = 12
#: Days of reminders in the "recent" column, the as-of date included.
REMINDER_WINDOW_DAYS = 30
#: Columns listed in the quarantine summary of the last ingest, most rows first.
QUARANTINE_COLUMNS_SHOWN = 5


class NoSnapshot(LookupError):
    """No aging snapshot was computed for the date asked for; the message says what to run."""


def _as_date(value) -> dt.date:
    """A date read back from either engine (SQLite may hand back ISO text)."""
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value)[:10])


def _share(part: Decimal, whole: Decimal) -> Decimal | None:
    """``part / whole`` exactly enough for display (10 places), None when ``whole`` is 0."""
    if not whole:
        return None
    return (part / whole).quantize(Decimal("1e-10"), rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class Book:
    """One currency's open receivables on the day."""

    currency: str
    invoices: int
    customers: int
    overdue_customers: int
    outstanding: Decimal
    overdue: Decimal

    @property
    def overdue_share(self) -> Decimal | None:
        """Overdue ÷ outstanding (None for an empty book)."""
        return _share(self.overdue, self.outstanding)


@dataclass(frozen=True)
class Converted:
    """Amounts in the reporting currency at one day's rates."""

    currency: str
    rates_of: dt.date
    outstanding: Decimal
    overdue: Decimal
    #: currencies without a rate on or before the day, left out of the amounts
    missing: tuple[str, ...] = ()

    @property
    def overdue_share(self) -> Decimal | None:
        """Overdue ÷ outstanding (None when nothing is outstanding)."""
        return _share(self.overdue, self.outstanding)


@dataclass(frozen=True)
class AgingBucket:
    """One aging bucket: its open invoices and outstanding per currency and converted."""

    bucket: str
    invoices: int
    amounts: dict[str, Decimal]
    #: the bucket's amounts in the reporting currency (each currency's amount to the cent)
    reporting: Decimal


@dataclass(frozen=True)
class TrendPoint:
    """The book on one day of the trend, in the reporting currency at that day's rates."""

    day: dt.date
    month_end: bool
    converted: Converted


@dataclass(frozen=True)
class Reminders:
    """Reminders planned in a window of days: counts by outcome."""

    first_day: dt.date
    last_day: dt.date
    planned: int = 0
    sent: int = 0
    refused: int = 0
    failed: int = 0
    pending: int = 0
    #: SendGrid's Event Webhook reported it delivered / opened / bounced or dropped
    delivered: int = 0
    opened: int = 0
    bounced: int = 0
    refused_by_rule: dict[str, int] = field(default_factory=dict)
    #: how the sent ones went: ``sendgrid``, ``outbox`` (.eml files, no delivery events)
    providers: tuple[str, ...] = ()


@dataclass(frozen=True)
class LegalStatus:
    """Legal cases in one status: how many and their claims per currency."""

    status: str
    cases: int
    claimed: dict[str, Decimal]


@dataclass(frozen=True)
class IngestFile:
    """One file of an ingest run."""

    file_name: str
    kind: str | None
    status: str
    rows_read: int
    rows_loaded: int
    rows_quarantined: int
    reason: str | None
    sha256: str = ""
    #: its Great Expectations validation pages: (suite, path under the data docs folder)
    validations: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Ingest:
    """The last ingest run up to the day that received files."""

    as_of_date: dt.date
    run_id: str | None
    finished_at: dt.datetime | None
    files: tuple[IngestFile, ...]
    #: quarantined rows by column, most first (at most QUARANTINE_COLUMNS_SHOWN)
    quarantined_by_column: tuple[tuple[str, int], ...]

    @property
    def files_loaded(self) -> int:
        """Files loaded (their good rows; bad rows quarantined)."""
        return sum(1 for f in self.files if f.status == "loaded")

    @property
    def files_rejected(self) -> int:
        """Files refused whole (moved to ``rejected/`` with their reason)."""
        return sum(1 for f in self.files if f.status == "rejected")

    @property
    def rows_read(self) -> int:
        """Rows read from every file: loaded + quarantined."""
        return sum(f.rows_read for f in self.files)

    @property
    def rows_loaded(self) -> int:
        """Rows loaded into the warehouse."""
        return sum(f.rows_loaded for f in self.files)

    @property
    def rows_quarantined(self) -> int:
        """Rows held back in ``quarantined_rows`` with their reason."""
        return sum(f.rows_quarantined for f in self.files)


@dataclass(frozen=True)
class Dashboard:
    """Everything the operations dashboard shows for ``as_of``."""

    as_of: dt.date
    reporting_currency: str
    books: tuple[Book, ...]
    total: Converted
    buckets: tuple[AgingBucket, ...]
    trend: tuple[TrendPoint, ...]
    warnings: dict[str, int]
    warnings_by_kind: dict[str, dict[str, int]]
    reminders_on_day: Reminders
    reminders_recent: Reminders
    legal: tuple[LegalStatus, ...]
    ingest: Ingest | None
    #: customers with an open invoice, and with one past due (each counted once)
    customers: int
    overdue_customers: int
    #: the GX data docs' index page, when it exists
    data_docs: Path | None

    @property
    def invoices(self) -> int:
        """Open invoices on the day, every currency."""
        return sum(b.invoices for b in self.books)

    @property
    def warnings_total(self) -> int:
        """The day's risk warnings."""
        return sum(self.warnings.values())

    @property
    def legal_cases(self) -> int:
        """Legal cases opened up to the day."""
        return sum(s.cases for s in self.legal)

    @property
    def legal_open(self) -> int:
        """Legal cases running now (approved, filed, judgment)."""
        return sum(s.cases for s in self.legal if s.status in OPEN_STATUSES)

    @property
    def legal_waiting(self) -> int:
        """Legal cases proposed and waiting for a person's decision."""
        return sum(s.cases for s in self.legal if s.status == "proposed")


def snapshot_dates(engine: Engine, up_to: dt.date | None = None) -> list[dt.date]:
    """Every date with an aging snapshot (up to ``up_to``), newest first."""
    query = sa.select(aging_runs.c.as_of_date).order_by(aging_runs.c.as_of_date.desc())
    if up_to is not None:
        query = query.where(aging_runs.c.as_of_date <= up_to)
    with engine.connect() as conn:
        return [_as_date(d) for d in conn.execute(query).scalars()]


def latest_as_of(engine: Engine) -> dt.date | None:
    """The latest as-of date with an aging snapshot, or None before the first risk run."""
    with engine.connect() as conn:
        latest = conn.execute(sa.select(sa.func.max(aging_runs.c.as_of_date))).scalar()
    return None if latest is None else _as_date(latest)


def _is_month_end(day: dt.date) -> bool:
    return (day + dt.timedelta(days=1)).day == 1


def trend_days(dates: list[dt.date], as_of: dt.date) -> list[dt.date]:
    """The days of the overdue trend, oldest first: the last :data:`TREND_MONTH_ENDS`
    month-ends before ``as_of`` among ``dates`` (those with a snapshot), then ``as_of``."""
    ends = sorted(d for d in dates if d < as_of and _is_month_end(d))
    return [*ends[-TREND_MONTH_ENDS:], as_of]


def build(
    engine: Engine,
    policy: Policy,
    as_of: dt.date | None = None,
    data_docs: Path | None = None,
) -> Dashboard:
    """The dashboard of ``as_of`` (default: the latest date with an aging snapshot).

    ``data_docs`` is where the GX data docs' index would be (``Settings.data_docs_index``); it is
    reported only when it exists. Raises :class:`NoSnapshot` when the date, or the warehouse,
    has no aging snapshot yet.
    """
    dates = snapshot_dates(engine)
    if as_of is None:
        if not dates:
            raise NoSnapshot(
                "the warehouse has no aging snapshot yet: run the pipeline first "
                "(receivables run --as-of DATE, or the receivables_risk DAG)"
            )
        as_of = dates[0]
    elif as_of not in dates:
        raise NoSnapshot(
            f"no aging snapshot for {as_of.isoformat()}: run receivables run --as-of "
            f"{as_of.isoformat()} (or the receivables_risk DAG for that date) first"
        )
    reporting = policy.currency.reporting_currency
    bucket_names = [b.name for b in policy.aging.buckets]
    days = trend_days(dates, as_of)
    since = as_of - dt.timedelta(days=REMINDER_WINDOW_DAYS - 1)
    with engine.connect() as conn:
        cells = _book_cells(conn, days)
        customers, customers_all = _customers(conn, as_of)
        rates = {day: rates_on(conn, day, reporting) for day in days}
        warnings_by_kind = _warnings(conn, as_of)
        on_day, recent = _reminders(conn, as_of, since)
        legal = _legal(conn, as_of)
        ingest = _last_ingest(conn, as_of)
    docs = data_docs if data_docs is not None and data_docs.is_file() else None
    if ingest is not None and docs is not None:
        ingest = _with_validations(ingest, docs.parent)

    books = []
    for currency in sorted({c for (day, _b, c) in cells if day == as_of}):
        mine = [v for (day, _b, c), v in cells.items() if day == as_of and c == currency]
        seen, late = customers.get(currency, (0, 0))
        books.append(
            Book(
                currency=currency,
                invoices=sum(v[0] for v in mine),
                customers=seen,
                overdue_customers=late,
                outstanding=from_cents(sum(v[1] for v in mine)),
                overdue=from_cents(sum(v[2] for v in mine)),
            )
        )
    today = rates[as_of]
    buckets = []
    known = {b for (day, b, _c) in cells if day == as_of}
    # the policy's buckets in order; a name the policy no longer has (changed since) after them
    for name in [*bucket_names, *sorted(known - set(bucket_names))]:
        amounts = {
            c: from_cents(v[1])
            for (day, b, c), v in sorted(cells.items())
            if day == as_of and b == name
        }
        invoices = sum(v[0] for (day, b, _c), v in cells.items() if day == as_of and b == name)
        converted = [today.convert(amount, c) for c, amount in amounts.items()]
        buckets.append(
            AgingBucket(
                bucket=name,
                invoices=invoices,
                amounts=amounts,
                reporting=sum((x for x in converted if x is not None), Decimal("0.00")),
            )
        )
    trend = tuple(
        TrendPoint(day=day, month_end=_is_month_end(day), converted=_converted(cells, day, rates))
        for day in days
    )
    severities = Counter[str]()
    for by_severity in warnings_by_kind.values():
        severities.update(by_severity)
    return Dashboard(
        as_of=as_of,
        reporting_currency=reporting,
        books=tuple(books),
        total=trend[-1].converted,
        buckets=tuple(buckets),
        trend=trend,
        warnings={s: severities.get(s, 0) for s in _ordered(severities, SEVERITIES)},
        warnings_by_kind=warnings_by_kind,
        reminders_on_day=on_day,
        reminders_recent=recent,
        legal=legal,
        ingest=ingest,
        customers=customers_all[0],
        overdue_customers=customers_all[1],
        data_docs=docs,
    )


def _ordered(names, order: tuple[str, ...]) -> list[str]:
    """``order``'s names, then any other of ``names`` alphabetically."""
    return [*order, *sorted(set(names) - set(order))]


def _book_cells(conn: Connection, days: list[dt.date]) -> dict[tuple, tuple[int, int, int]]:
    """(day, bucket, currency) → (invoices, outstanding cents, overdue cents)."""
    params = {f"day_{n}": day for n, day in enumerate(days)}
    (rows,) = sqlfiles.execute(
        conn,
        "dashboard/book.sql",
        params,
        types={name: sa.Date() for name in params},
        days=list(params),
    )
    return {
        (_as_date(r.as_of_date), r.bucket, r.currency): (
            int(r.invoices),
            int(r.outstanding),
            int(r.overdue),
        )
        for r in rows
    }


def _converted(cells: dict, day: dt.date, rates: dict) -> Converted:
    """The day's totals in the reporting currency: each currency's total converted to the
    cent (half up) at the day's rates, then added; currencies without a rate left out."""
    outstanding: Counter[str] = Counter()
    overdue: Counter[str] = Counter()
    for (d, _bucket, currency), (_n, cents, late) in cells.items():
        if d == day:
            outstanding[currency] += cents
            overdue[currency] += late
    day_rates = rates[day]
    total, missing = day_rates.total({c: from_cents(v) for c, v in outstanding.items()})
    late_total, _ = day_rates.total({c: from_cents(v) for c, v in overdue.items()})
    return Converted(
        currency=day_rates.reporting,
        rates_of=day,
        outstanding=total.quantize(Decimal("0.01")),
        overdue=late_total.quantize(Decimal("0.01")),
        missing=tuple(missing),
    )


def _customers(
    conn: Connection, as_of: dt.date
) -> tuple[dict[str, tuple[int, int]], tuple[int, int]]:
    """Per currency and overall: (customers with an open invoice, those with one past due)."""
    per_currency, overall = sqlfiles.execute(
        conn, "dashboard/customers.sql", {"as_of": as_of}, types={"as_of": sa.Date()}
    )
    books = {r.currency: (int(r.customers), int(r.overdue_customers)) for r in per_currency}
    everyone = overall.one()
    return books, (int(everyone.customers), int(everyone.overdue_customers))


def _warnings(conn: Connection, as_of: dt.date) -> dict[str, dict[str, int]]:
    (rows,) = sqlfiles.execute(
        conn, "dashboard/warnings.sql", {"as_of": as_of}, types={"as_of": sa.Date()}
    )
    by_kind: dict[str, dict[str, int]] = {}
    for r in rows:
        by_kind.setdefault(r.kind, {})[r.severity] = int(r.warnings)
    return by_kind


def _reminders(conn: Connection, as_of: dt.date, since: dt.date) -> tuple[Reminders, Reminders]:
    """The reminders planned on ``as_of``, and from ``since`` to ``as_of``."""
    (rows,) = sqlfiles.execute(
        conn,
        "dashboard/reminders.sql",
        {"as_of": as_of, "since": since},
        types={"as_of": sa.Date(), "since": sa.Date()},
        undelivered=UNDELIVERED,
    )
    rows = rows.all()

    def count(first_day: dt.date, selected) -> Reminders:
        status: Counter[str] = Counter()
        rules: Counter[str] = Counter()
        events: Counter[str] = Counter()
        providers: set[str] = set()
        for r in selected:
            n = int(r.reminders)
            # a reminder claimed for sending is still on its way: pending, as the summary says
            status["pending" if r.status == "sending" else r.status] += n
            if r.status == "refused" and r.rule:
                rules[r.rule] += n
            for name in ("delivered", "opened", "bounced"):
                events[name] += int(getattr(r, name) or 0)
            if r.status == "sent" and r.provider:
                providers.add(r.provider)
        return Reminders(
            first_day=first_day,
            last_day=as_of,
            planned=sum(status.values()),
            sent=status["sent"],
            refused=status["refused"],
            failed=status["failed"],
            pending=status["pending"],
            delivered=events["delivered"],
            opened=events["opened"],
            bounced=events["bounced"],
            refused_by_rule=dict(sorted(rules.items(), key=lambda kv: (-kv[1], kv[0]))),
            providers=tuple(sorted(providers)),
        )

    return count(as_of, [r for r in rows if int(r.on_day)]), count(since, rows)


def _legal(conn: Connection, as_of: dt.date) -> tuple[LegalStatus, ...]:
    (rows,) = sqlfiles.execute(
        conn, "dashboard/legal_cases.sql", {"as_of": as_of}, types={"as_of": sa.Date()}
    )
    cases: Counter[str] = Counter()
    claimed: dict[str, dict[str, Decimal]] = {}
    for r in rows:
        cases[r.status] += int(r.cases)
        claimed.setdefault(r.status, {})[r.currency] = from_cents(int(r.claimed))
    return tuple(
        LegalStatus(status=s, cases=cases[s], claimed=claimed[s])
        for s in _ordered(cases, CASE_STATUSES)
        if cases[s]
    )


def _last_ingest(conn: Connection, as_of: dt.date) -> Ingest | None:
    """The files of the last ingest run up to ``as_of`` that received any (a run is its DAG
    run; files recorded without one are grouped by their as-of date)."""
    f = ingested_files.c
    last = conn.execute(
        sa.select(f.as_of_date, f.dag_run_id)
        .where(f.as_of_date <= as_of)
        .order_by(f.as_of_date.desc(), f.file_id.desc())
        .limit(1)
    ).first()
    if last is None:
        return None
    same_run = (
        f.dag_run_id == last.dag_run_id
        if last.dag_run_id is not None
        else sa.and_(f.dag_run_id.is_(None), f.as_of_date == last.as_of_date)
    )
    rows = conn.execute(
        sa.select(
            f.file_id,
            f.file_name,
            f.kind,
            f.status,
            f.rows_read,
            f.rows_loaded,
            f.rows_quarantined,
            f.reason,
            f.sha256,
            f.finished_at,
        )
        .where(same_run)
        .order_by(f.file_id)
    ).all()
    q = quarantined_rows.c
    column = sa.func.coalesce(q.column_name, "")
    by_column = conn.execute(
        sa.select(column.label("column_name"), sa.func.count().label("rows"))
        .where(q.file_id.in_([r.file_id for r in rows]))
        .group_by(column)
        .order_by(sa.func.count().desc(), column)
        .limit(QUARANTINE_COLUMNS_SHOWN)
    ).all()
    # SQLite hands timestamps back naive: they are stored in UTC
    finished = [
        r.finished_at.astimezone(dt.UTC)
        if r.finished_at.tzinfo
        else r.finished_at.replace(tzinfo=dt.UTC)
        for r in rows
        if r.finished_at is not None
    ]
    return Ingest(
        as_of_date=_as_date(last.as_of_date),
        run_id=last.dag_run_id,
        finished_at=max(finished) if finished else None,
        files=tuple(
            IngestFile(
                file_name=r.file_name,
                kind=r.kind,
                status=r.status,
                rows_read=int(r.rows_read),
                rows_loaded=int(r.rows_loaded),
                rows_quarantined=int(r.rows_quarantined),
                reason=r.reason,
                sha256=r.sha256,
            )
            for r in rows
        ),
        quarantined_by_column=tuple(
            (c.column_name or "(whole row)", int(c.rows)) for c in by_column
        ),
    )


def _with_validations(ingest: Ingest, root: Path) -> Ingest:
    """``ingest`` with each file's latest validation page per suite in the data docs under
    ``root``. The ingest names a file's validation run ``<as-of date>_<sha256[:12]>_<name>``
    (``ingest.names.run_key``); only the date and the checksum are matched, so any file name
    works."""
    import dataclasses

    files = []
    for f in ingest.files:
        pages = []
        if f.kind and len(f.sha256) >= 12 and f.sha256[:12].isalnum():
            for suite in ("header", "staged"):
                pattern = (
                    f"{f.kind}_{suite}/{ingest.as_of_date.isoformat()}_{f.sha256[:12]}_*/*/*.html"
                )
                found = sorted(root.joinpath("validations").glob(pattern))
                if found:
                    pages.append((suite, found[-1].relative_to(root).as_posix()))
        files.append(dataclasses.replace(f, validations=tuple(pages)))
    return dataclasses.replace(ingest, files=tuple(files))


def data_docs_file(root: Path, relative: str) -> Path | None:
    """The file ``relative`` names inside the GX data docs folder ``root``, or None when it is
    not a regular file there: no ``..``, no absolute path, no symbolic link leading out, no
    hidden file. The plugin serves the data docs behind Airflow's login through this."""
    if not relative or "\x00" in relative or "\\" in relative:
        return None
    parts = relative.split("/")
    if any(p in ("", ".", "..") or p.startswith(".") for p in parts):
        return None
    try:
        base = root.resolve(strict=True)
        target = base.joinpath(*parts).resolve(strict=True)
    except (OSError, RuntimeError):
        return None
    if not target.is_relative_to(base) or not target.is_file():
        return None
    return target


# --- the page ---------------------------------------------------------------------------------

TEMPLATE = "dashboard/page.html"
#: Bar colours of the aging buckets, from current to the oldest (the last repeats).
BUCKET_COLOURS = ("#3f8f5a", "#8fb04a", "#d7b53a", "#e39a3b", "#d9682f", "#c0392b", "#8e1b12")
TREND_WIDTH, TREND_HEIGHT, TREND_TOP, TREND_BOTTOM = 600, 300, 40, 28
CENT = Decimal("0.01")


def money(amount: Decimal | None) -> str:
    """``1,234,567.80`` (exact: the Decimal as stored, grouped by thousands)."""
    if amount is None:
        return "–"
    return f"{amount.quantize(CENT, rounding=ROUND_HALF_UP):,.2f}"


def percent(share: Decimal | None, places: int = 1) -> str:
    """A share as a percentage, half up (``0.0851`` → ``8.5 %``); ``–`` without one."""
    if share is None:
        return "–"
    step = Decimal(1).scaleb(-places)
    value = (share * 100).quantize(step, rounding=ROUND_HALF_UP)
    if not value and share > 0:
        return f"< {step} %"
    return f"{value} %"


def count(value: int) -> str:
    """``12,345``."""
    return f"{value:,}"


def _short(amount: Decimal) -> str:
    """A chart label: ``1.11M``, ``538K``, ``659``."""
    for limit, suffix in (
        (Decimal(10) ** 9, "B"),
        (Decimal(10) ** 6, "M"),
        (Decimal(10) ** 3, "K"),
    ):
        if abs(amount) >= limit:
            scaled = (amount / limit).quantize(
                Decimal("0.01") if abs(amount) < limit * 10 else Decimal("0.1"),
                rounding=ROUND_HALF_UP,
            )
            return f"{scaled}{suffix}"
    return str(amount.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def _aging_rows(dash: Dashboard) -> list[dict]:
    """The aging chart's bars: each bucket's share of the outstanding in the reporting currency."""
    total = sum((b.reporting for b in dash.buckets), Decimal(0))
    widest = max((b.reporting for b in dash.buckets), default=Decimal(0))
    rows = []
    for n, b in enumerate(dash.buckets):
        share = _share(b.reporting, total)
        rows.append(
            {
                "bucket": b.bucket,
                "invoices": count(b.invoices),
                "amounts": {c: money(a) for c, a in b.amounts.items()},
                "reporting": money(b.reporting),
                "share": percent(share),
                # percent of the widest bar, for the bar's width in CSS
                "width": float(_share(b.reporting, widest) or 0) * 100,
                "colour": BUCKET_COLOURS[min(n, len(BUCKET_COLOURS) - 1)],
            }
        )
    return rows


def _trend_chart(dash: Dashboard) -> dict:
    """The overdue trend as SVG geometry: a bar per day (overdue in the reporting currency),
    the overdue ratio above it, the month under it."""
    points = dash.trend
    plot_height = TREND_HEIGHT - TREND_TOP - TREND_BOTTOM
    highest = max((p.converted.overdue for p in points), default=Decimal(0))
    slot = TREND_WIDTH / max(len(points), 1)
    bar = min(slot * 0.62, 44)
    bars = []
    for n, p in enumerate(points):
        fraction = float(_share(p.converted.overdue, highest) or 0)
        height = max(plot_height * fraction, 1.0)
        x = slot * n + (slot - bar) / 2
        y = TREND_TOP + plot_height - height
        bars.append(
            {
                "x": round(x, 1),
                "y": round(y, 1),
                "width": round(bar, 1),
                "height": round(height, 1),
                "centre": round(slot * n + slot / 2, 1),
                "label": p.day.strftime("%b %y") if p.month_end else p.day.strftime("%d %b"),
                "amount": _short(p.converted.overdue),
                "ratio": percent(p.converted.overdue_share).replace(" ", ""),
                "current": p.day == dash.as_of,
                "title": (
                    f"{p.day.isoformat()}: overdue {money(p.converted.overdue)} of "
                    f"{money(p.converted.outstanding)} {p.converted.currency} "
                    f"({percent(p.converted.overdue_share)})"
                ),
            }
        )
    return {
        "width": TREND_WIDTH,
        "height": TREND_HEIGHT,
        "baseline": TREND_TOP + plot_height,
        "bars": bars,
    }


def page_html(
    dash: Dashboard | None,
    *,
    form_action: str,
    data_docs_base: str,
    message: str | None = None,
    asked: str = "",
    generated_at: dt.datetime | None = None,
) -> str:
    """The dashboard page (autoescaped HTML, nothing loaded from elsewhere). ``form_action`` is
    the page's own address, ``data_docs_base`` where the GX data docs are served (both relative
    to the page). ``dash`` None: only ``message`` (no snapshot yet, a date not computed, a date
    that is not one)."""
    from receivables.render import render

    context: dict = {
        "dash": dash,
        "message": message,
        "asked": asked,
        "form_action": form_action,
        "generated_at": (generated_at or dt.datetime.now(dt.UTC)).strftime("%Y-%m-%d %H:%M UTC"),
        "severities": SEVERITIES,
        "money": money,
        "percent": percent,
        "count": count,
    }
    if dash is not None:
        context |= {
            "aging_rows": _aging_rows(dash),
            "currencies": [b.currency for b in dash.books],
            "trend": _trend_chart(dash),
            "data_docs_base": data_docs_base if dash.data_docs is not None else None,
            "kinds": sorted(dash.warnings_by_kind),
        }
    return render(TEMPLATE, **context)
