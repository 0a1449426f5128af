"""Risk warnings: who is deteriorating today, how badly, and what to do about it.

Each warning has a kind, a severity (``low``, ``medium``, ``high``, ``critical``), a message in
plain words with the customer's own figures — a risk officer should agree with the proposal on
reading it — and a recommended action:

* ``reduce_credit_limit`` — with the proposed limit and what it is based on: a share of the
  current limit by grade (policy ``warnings.limit_factor_by_grade``: D keeps half, E gets no new
  credit), or, for a customer without a limit on file, the same share of today's outstanding;
* ``start_collection_early`` — moves the customer to an earlier dunning stage (``early``);
* ``legal_review`` — the case is old enough to be looked at by the legal team;
* ``monitor`` — nothing to do yet, but worth knowing.

One function per kind, each reading the day's facts (:class:`Day`): ``newly_overdue``
(invoices that became overdue since the day before), ``rolled_worse`` (the oldest open invoice
moved into a worse aging bucket; the severity is the bucket's, policy
``warnings.bucket_severity``), ``over_credit_limit``, ``grade_downgraded``, ``score_dropped``
(by the policy's points since the previous scoring), ``concentration`` (one debtor holds more
than the policy's share of the book's overdue receivables, in a book with enough overdue debtors
for a share to mean something). A customer with balances in several currencies gets one warning
per kind, its amounts per currency and, where rates exist, in the reporting currency. Broken
promises will join when promises to pay are recorded. A re-run replaces the date's warnings.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from receivables.aging import band_index, ensure_snapshots
from receivables.config import Policy
from receivables.fx import Rates, rates_on
from receivables.warehouse import sqlfiles
from receivables.warehouse.schema import credit_scores, customers, risk_warnings
from receivables.warehouse.types import Money

log = logging.getLogger(__name__)

SEVERITIES = ("low", "medium", "high", "critical")
EARLY = "early"
CENT = Decimal("0.01")
_RANK = {s: i for i, s in enumerate(SEVERITIES)}


def _money(currency: str, amount: Decimal) -> str:
    return f"{currency} {amount:,.2f}"


def _share(value: Decimal) -> str:
    """A policy share as a percentage, as precise as it was written: 50%, 12.5%."""
    percent = (value * 100).normalize()
    return f"{percent:f}%"


@dataclass(frozen=True)
class RiskWarning:
    """One warning of one customer."""

    customer_id: str
    kind: str
    severity: str
    message: str
    action: str
    currency: str | None = None
    proposed_credit_limit: Decimal | None = None

    def row(self, as_of: dt.date) -> dict:
        """The ``risk_warnings`` row."""
        return {
            "as_of_date": as_of,
            "customer_id": self.customer_id,
            "kind": self.kind,
            "severity": self.severity,
            "message": self.message,
            "action": self.action,
            "currency": self.currency,
            "proposed_credit_limit": self.proposed_credit_limit,
            "dunning_stage": EARLY if self.action == "start_collection_early" else None,
        }


@dataclass
class Balance:
    """One customer's figures in one currency on the day (and the day before)."""

    outstanding: Decimal
    overdue: Decimal
    worst_dpd: int
    newly_overdue: int
    newly_overdue_amount: Decimal
    previous_worst_dpd: int | None


@dataclass
class Customer:
    """One customer's balances by currency, its credit limit and today's grade."""

    customer_id: str
    balances: dict[str, Balance] = field(default_factory=dict)
    credit_limit: Decimal | None = None
    limit_currency: str | None = None
    grade: str | None = None

    @property
    def worst_dpd(self) -> int:
        """Days past due of the oldest open invoice, any currency."""
        return max((b.worst_dpd for b in self.balances.values()), default=0)

    @property
    def previous_worst_dpd(self) -> int | None:
        """The same the day before (None: nothing was open then)."""
        known = [b.previous_worst_dpd for b in self.balances.values()]
        return max((d for d in known if d is not None), default=None)


@dataclass(frozen=True)
class Proposal:
    """A proposed credit limit and the sentence that justifies it."""

    limit: Decimal
    currency: str
    because: str


@dataclass
class Day:
    """Everything the warning rules read about one as-of date."""

    as_of: dt.date
    policy: Policy
    rates: Rates
    customers: dict[str, Customer]
    scores_today: dict[str, tuple[int, float, str, float]]
    scores_before: dict[str, tuple[int, float, str, float]]
    scored_before: dt.date | None

    # -- money in several currencies ----------------------------------------------------------

    def amounts(self, amounts: dict[str, Decimal]) -> str:
        """``CNY 400.00`` or ``CNY 400.00 and USD 50.00 (CNY 755.00 in all)``."""
        shown = [_money(c, a) for c, a in sorted(amounts.items()) if a]
        if len(shown) <= 1:
            return shown[0] if shown else _money(self.rates.reporting, Decimal(0))
        text = ", ".join(shown[:-1]) + " and " + shown[-1]
        total, missing = self.rates.total(amounts)
        if not missing:
            text += f" ({_money(self.rates.reporting, total)} in all)"
        return text

    def in_currency(self, amounts: dict[str, Decimal], target: str) -> tuple[Decimal, list[str]]:
        """The sum of ``amounts`` in ``target`` (through the reporting currency's rates), and
        the currencies that could not be converted (left out)."""
        if set(amounts) <= {target}:
            return amounts.get(target, Decimal(0)), []
        target_rate = self.rates.rate(target)
        total, missing = Decimal(0), []
        for currency, amount in amounts.items():
            rate = self.rates.rate(currency)
            if currency == target:
                total += amount
            elif rate is None or target_rate is None:
                missing.append(currency)
            else:
                total += (amount * rate / target_rate).quantize(CENT, rounding=ROUND_HALF_UP)
        return total, sorted(missing)

    # -- credit limits ------------------------------------------------------------------------

    def proposal(self, customer: Customer) -> Proposal | None:
        """The credit limit the grade policy proposes for ``customer`` (None: keep it)."""
        grade = customer.grade
        factor = self.policy.warnings.limit_factor_by_grade.get(grade or "")
        if factor is None:
            return None
        currency = customer.limit_currency or self.rates.reporting
        limit = customer.credit_limit
        if limit is not None and limit > 0:
            proposed = (limit * factor).quantize(CENT, rounding=ROUND_HALF_UP)
            if factor == 0:
                because = (
                    f"grade {grade}: no new credit (limit {_money(currency, proposed)}, "
                    f"now {_money(currency, limit)})"
                )
            else:
                because = (
                    f"grade {grade}: proposed limit {_money(currency, proposed)}, "
                    f"{_share(factor)} of the current {_money(currency, limit)}"
                )
            return Proposal(proposed, currency, because)
        owed, missing = self.in_currency(
            {c: b.outstanding for c, b in customer.balances.items()}, currency
        )
        if missing or owed <= 0:
            return None  # no honest base for a figure: the warning says monitor instead
        proposed = (owed * factor).quantize(CENT, rounding=ROUND_HALF_UP)
        if factor == 0:
            because = f"grade {grade}: no new credit (no limit on file; proposed limit 0.00)"
        else:
            because = (
                f"grade {grade}, no limit on file: proposed limit {_money(currency, proposed)}, "
                f"{_share(factor)} of today's outstanding {_money(currency, owed)}"
            )
        return Proposal(proposed, currency, because)

    def weak(self, customer: Customer) -> bool:
        """Graded where the policy cuts credit (D and E by default)."""
        return (customer.grade or "") in self.policy.warnings.limit_factor_by_grade


# --- the rules: one function per kind ----------------------------------------------------------


def newly_overdue(day: Day) -> Iterable[RiskWarning]:
    """Invoices that were not overdue yesterday and are today."""
    for c in day.customers.values():
        count = sum(b.newly_overdue for b in c.balances.values())
        if not count:
            continue
        amounts = {cur: b.newly_overdue_amount for cur, b in c.balances.items() if b.newly_overdue}
        weak = day.weak(c)
        yield RiskWarning(
            c.customer_id,
            "newly_overdue",
            "medium" if weak else "low",
            f"{count} invoice(s) of {day.amounts(amounts)} became overdue since yesterday"
            + (f" (grade {c.grade})" if weak else ""),
            "start_collection_early" if weak else "monitor",
            _single(amounts) or day.rates.reporting,
        )


def rolled_worse(day: Day) -> Iterable[RiskWarning]:
    """The oldest open invoice moved into a worse bucket; severity is that bucket's."""
    rules = day.policy.warnings
    buckets = day.policy.aging.buckets
    for c in day.customers.values():
        before = c.previous_worst_dpd
        if not before:
            continue  # nothing overdue yesterday: that is "newly overdue"
        now = c.worst_dpd
        new, old = band_index(now, buckets), band_index(before, buckets)
        if new <= old:
            continue
        severity = rules.bucket_severity.get(buckets[new].name, "low")
        if now >= rules.legal_review_days:
            action = "legal_review"
        elif _RANK[severity] >= _RANK["medium"]:
            action = "start_collection_early"
        else:
            action = "monitor"
        overdue = {cur: b.overdue for cur, b in c.balances.items() if b.overdue}
        yield RiskWarning(
            c.customer_id,
            "rolled_worse",
            severity,
            f"oldest open invoice moved from {buckets[old].name} to {buckets[new].name} days past "
            f"due ({now} days; {day.amounts(overdue)} overdue)",
            action,
            _single(overdue) or day.rates.reporting,
        )


def over_credit_limit(day: Day) -> Iterable[RiskWarning]:
    """Outstanding (all currencies, converted to the limit's) above the credit limit."""
    for c in day.customers.values():
        if c.credit_limit is None or c.credit_limit <= 0 or c.limit_currency is None:
            continue
        amounts = {cur: b.outstanding for cur, b in c.balances.items()}
        owed, missing = day.in_currency(amounts, c.limit_currency)
        if owed <= c.credit_limit:
            continue
        excess = owed / c.credit_limit - 1
        detail = ""
        if len(amounts) > 1:
            detail = f" ({day.amounts(amounts)}"
            detail += f"; {', '.join(missing)} without a rate, left out)" if missing else ")"
        yield RiskWarning(
            c.customer_id,
            "over_credit_limit",
            "high" if excess > Decimal("0.2") else "medium",
            f"outstanding {_money(c.limit_currency, owed)}{detail} exceeds the credit limit "
            f"{_money(c.limit_currency, c.credit_limit)} by {excess:.0%}",
            "start_collection_early",
            c.limit_currency,
        )


def concentration(day: Day) -> Iterable[RiskWarning]:
    """A debtor holding more than the policy's share of a book's overdue receivables. The book
    is the whole portfolio in the reporting currency; a currency without a rate is a book of its
    own. Books with fewer overdue debtors than the policy's minimum are not judged."""
    rules = day.policy.warnings
    books: dict[str, dict[str, Decimal]] = {}
    for c in day.customers.values():
        for currency, balance in c.balances.items():
            if not balance.overdue:
                continue
            converted = day.rates.convert(balance.overdue, currency)
            book, amount = (
                (day.rates.reporting, converted)
                if converted is not None
                else (currency, balance.overdue)
            )
            debtors = books.setdefault(book, {})
            debtors[c.customer_id] = debtors.get(c.customer_id, Decimal(0)) + amount
    threshold = rules.concentration_share
    for book, debtors in sorted(books.items()):
        total = sum(debtors.values(), Decimal(0))
        if len(debtors) < rules.concentration_min_debtors or total <= 0:
            continue
        for customer_id, overdue in sorted(debtors.items()):
            share = overdue / total
            if share <= threshold:
                continue
            customer = day.customers[customer_id]
            proposal = day.proposal(customer)
            text = (
                f"holds {share:.1%} of all overdue receivables "
                f"({_money(book, overdue)} of {_money(book, total)}, {len(debtors)} overdue "
                "debtors)"
            )
            yield RiskWarning(
                customer_id,
                "concentration",
                "high" if share >= 2 * threshold else "medium",
                text + (f"; {proposal.because}" if proposal else ""),
                "reduce_credit_limit" if proposal else "monitor",
                proposal.currency if proposal else book,
                proposal.limit if proposal else None,
            )


def grade_downgraded(day: Day) -> Iterable[RiskWarning]:
    """The grade fell since the previous scoring (same model both days)."""
    rank = {g: i for i, g in enumerate("ABCDE")}
    severity = {"B": "low", "C": "medium", "D": "high", "E": "critical"}
    for customer_id, (model, _score, grade, pd_) in sorted(day.scores_today.items()):
        before = day.scores_before.get(customer_id)
        if before is None or before[0] != model or rank[grade] <= rank[before[2]]:
            continue
        customer = day.customers.get(customer_id) or Customer(customer_id, grade=grade)
        proposal = day.proposal(customer)
        yield RiskWarning(
            customer_id,
            "grade_downgraded",
            severity[grade],
            f"grade fell from {before[2]} to {grade} {_since(day)} (probability of default "
            f"{pd_:.1%})" + (f"; {proposal.because}" if proposal else ""),
            "reduce_credit_limit" if proposal else "monitor",
            proposal.currency if proposal else customer.limit_currency,
            proposal.limit if proposal else None,
        )


def score_dropped(day: Day) -> Iterable[RiskWarning]:
    """The score fell by the policy's points or more since the previous scoring."""
    points = day.policy.scores.sharp_drop_points
    for customer_id, (model, score, _grade, _pd) in sorted(day.scores_today.items()):
        before = day.scores_before.get(customer_id)
        if before is None or before[0] != model:
            continue
        drop = before[1] - score
        if drop < points:
            continue
        customer = day.customers.get(customer_id)
        yield RiskWarning(
            customer_id,
            "score_dropped",
            "high" if drop >= 2 * points else "medium",
            f"score fell {drop:.0f} points {_since(day)}, to {score:.0f}",
            "start_collection_early",
            customer.limit_currency if customer else None,
        )


RULES: tuple[Callable[[Day], Iterable[RiskWarning]], ...] = (
    newly_overdue,
    rolled_worse,
    over_credit_limit,
    concentration,
    grade_downgraded,
    score_dropped,
)


def _single(amounts: dict[str, Decimal]) -> str | None:
    return next(iter(amounts)) if len(amounts) == 1 else None


def _since(day: Day) -> str:
    """``in a day`` or ``in 3 days (since 2024-06-27)``: the real interval between scorings."""
    if day.scored_before is None:
        return ""
    days = (day.as_of - day.scored_before).days
    if days == 1:
        return "in a day"
    return f"in {days} days (since {day.scored_before.isoformat()})"


# --- reading the day ---------------------------------------------------------------------------


def previous_day_snapshot(engine: Engine, as_of: dt.date, policy: Policy) -> dt.date:
    """The day before ``as_of``, whose aging snapshot is computed if it is missing or stale."""
    previous = as_of - dt.timedelta(days=1)
    ensure_snapshots(engine, [previous], policy.aging)
    return previous


def _balances(
    engine: Engine, as_of: dt.date, previous: dt.date
) -> tuple[dict[str, Customer], dict[str, tuple]]:
    """Customers with open invoices by id, and every customer's (credit limit, currency)."""
    (statement,) = sqlfiles.render("risk/warning_facts.sql", engine.dialect.name)
    query = (
        sa.text(statement)
        .bindparams(
            sa.bindparam("as_of", type_=sa.Date()), sa.bindparam("previous", type_=sa.Date())
        )
        .columns(
            customer_id=sa.String(),
            currency=sa.String(),
            outstanding=Money(),
            overdue=Money(),
            worst_dpd=sa.Integer(),
            newly_overdue=sa.Integer(),
            newly_overdue_amount=Money(),
            previous_worst_dpd=sa.Integer(),
        )
    )
    found: dict[str, Customer] = {}
    with engine.connect() as conn:
        for row in conn.execute(query, {"as_of": as_of, "previous": previous}):
            customer = found.setdefault(row.customer_id, Customer(row.customer_id))
            customer.balances[row.currency] = Balance(
                outstanding=row.outstanding,
                overdue=row.overdue,
                worst_dpd=int(row.worst_dpd),
                newly_overdue=int(row.newly_overdue),
                newly_overdue_amount=row.newly_overdue_amount,
                previous_worst_dpd=row.previous_worst_dpd,
            )
        limits = {
            customer_id: (limit, currency)
            for customer_id, limit, currency in conn.execute(
                sa.select(customers.c.customer_id, customers.c.credit_limit, customers.c.currency)
            )
        }
    for customer_id, customer in found.items():
        customer.credit_limit, customer.limit_currency = limits.get(customer_id, (None, None))
    return found, limits


def _scores(engine: Engine, day: dt.date | None) -> dict[str, tuple[int, float, str, float]]:
    if day is None:
        return {}
    s = credit_scores
    with engine.connect() as conn:
        return {
            r.customer_id: (int(r.model_id), float(r.score), r.grade, float(r.pd))
            for r in conn.execute(
                sa.select(s.c.customer_id, s.c.model_id, s.c.score, s.c.grade, s.c.pd).where(
                    s.c.as_of_date == day
                )
            )
        }


def read_day(engine: Engine, as_of: dt.date, policy: Policy) -> Day:
    """The facts the rules read for ``as_of`` (computing the previous day's aging if needed)."""
    previous = previous_day_snapshot(engine, as_of, policy)
    found, limits = _balances(engine, as_of, previous)
    with engine.connect() as conn:
        scored_before = conn.execute(
            sa.select(sa.func.max(credit_scores.c.as_of_date)).where(
                credit_scores.c.as_of_date < as_of
            )
        ).scalar()
        rates = rates_on(conn, as_of, policy.currency.reporting_currency)
    today = _scores(engine, as_of)
    # customers without open invoices still have a limit and a grade (grade warnings); no
    # IN-list of their ids: a book of 250 000 customers would exceed any driver's parameters
    for customer_id in set(today) - set(found):
        limit, currency = limits.get(customer_id, (None, None))
        found[customer_id] = Customer(customer_id, credit_limit=limit, limit_currency=currency)
    for customer_id, customer in found.items():
        if customer_id in today:
            customer.grade = today[customer_id][2]
    return Day(
        as_of=as_of,
        policy=policy,
        rates=rates,
        customers=found,
        scores_today=today,
        scores_before=_scores(engine, scored_before),
        scored_before=scored_before,
    )


def raise_warnings(engine: Engine, as_of: dt.date, policy: Policy) -> dict:
    """Work out the warnings of ``as_of`` and replace that date's stored ones.

    Grades and scores are compared only where both days were scored by the same model: the day
    a new model takes over, a changed grade says more about the model than about the customer.
    """
    day = read_day(engine, as_of, policy)
    warnings = [w for rule in RULES for w in rule(day)]
    with engine.begin() as conn:
        conn.execute(risk_warnings.delete().where(risk_warnings.c.as_of_date == as_of))
        if warnings:
            conn.execute(risk_warnings.insert(), [w.row(as_of) for w in warnings])
    by_severity = {s: sum(1 for w in warnings if w.severity == s) for s in SEVERITIES}
    by_kind: dict[str, int] = {}
    for w in warnings:
        by_kind[w.kind] = by_kind.get(w.kind, 0) + 1
    compared = [c for c in day.scores_today if c in day.scores_before]
    model_changed = bool(compared) and all(
        day.scores_today[c][0] != day.scores_before[c][0] for c in compared
    )
    missing = day.rates.missing(cur for c in day.customers.values() for cur in c.balances)
    log.info("%d warning(s) for %s: %s", len(warnings), as_of, by_severity)
    return {
        "as_of_date": as_of.isoformat(),
        "warnings": len(warnings),
        "by_severity": by_severity,
        "by_kind": by_kind,
        "compared_with_scores_of": day.scored_before.isoformat() if day.scored_before else None,
        "model_changed": model_changed,
        "missing_fx_rates": missing,
    }
