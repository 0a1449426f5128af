"""Collector performance and proposed incentives for a quarter (the quarterly evaluation).

A customer's collector is ``customers.collector_id``. Customers without one, or whose
``collector_id`` names no row of ``collectors``, form a single *unassigned* group
(``collector_id`` None): it is shown, but never ranked and never proposed an incentive.

Per collector, from the warehouse's history (so a backfill gives what the day would have):

* ``overdue_at_opening`` and ``recovered`` — the KPI ``recovery_rate``'s denominator and
  numerator (``sql/evaluation/quarter_ledger.sql``) restricted to the collector's customers
  (``sql/evaluation/collector_ledger.sql``): what their invoices overdue at the quarter's opening
  owed then, and what was paid on them in the quarter, each invoice at most up to what it owed
  at the opening (an overpayment never counts beyond it);
* reminders — exactly the KPI ``collection_success_rate``'s counts
  (:func:`receivables.evaluation.kpis.reminder_success`), grouped by the reminded customer's
  collector;
* promises to pay whose ``pay_by`` falls in the quarter, and those kept: the customer's
  payments dated from ``promised_on`` to ``pay_by`` (both included), on invoices in the
  promise's currency, add up to at least the amount promised (a promise without an amount is
  kept by any such payment; one without a currency, as recorded without an amount, is matched
  by payments in any currency);
* legal cases of their customers approved in the quarter
  (:func:`receivables.evaluation.kpis.legal_opened`).

Money is exact: whole cents from the database, each currency's sums converted to the reporting
currency at the rates in force on the quarter's last day and rounded half-up to the cent, as the
KPIs do (:mod:`receivables.evaluation.kpis`); a currency without a rate is left out of the
amounts and named (``missing_fx_rates``). Ratios are fractions rounded half-up to six places
from the exact value; a ratio whose denominator is zero has no value.

The ranking (collectors only): ``recovery_rate`` (as shown, six places) descending, then
``recovered`` descending, then ``collector_id``; a collector without a ``recovery_rate`` (nothing
overdue at the opening) ranks after every one with one.

The incentive is a **proposal** for a person to decide on; nothing here pays anything:
``max(0, recovered − target_recovery_rate × overdue_at_opening) × rate``, rounded half-up to the
cent, at most ``cap`` when there is one (policy ``evaluation.incentives``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from receivables.config import IncentivePolicy, Policy
from receivables.evaluation import kpis
from receivables.evaluation.kpis import collector_of, ratio, rounded
from receivables.evaluation.quarters import Quarter
from receivables.fx import rates_on
from receivables.warehouse import sqlfiles
from receivables.warehouse.schema import (
    collectors,
    customers,
    invoices,
    payments,
    promises_to_pay,
)
from receivables.warehouse.types import from_cents

_ZERO = Decimal("0.00")


@dataclass(frozen=True)
class CollectorResult:
    """One collector's quarter (or the unassigned group's: ``collector_id`` None).

    Money is in the reporting currency, exact to the cent; ratios are rounded to six places.
    """

    #: None for the unassigned group (no collector, or one missing from ``collectors``)
    collector_id: str | None
    name: str | None = None
    team: str | None = None
    #: customers assigned to the collector
    customers: int = 0
    #: outstanding at the opening of their customers' invoices overdue then
    overdue_at_opening: Decimal = _ZERO
    #: paid in the quarter on those invoices, each at most what it owed at the opening
    recovered: Decimal = _ZERO
    #: recovered / overdue_at_opening (None without anything overdue at the opening)
    recovery_rate: Decimal | None = None
    #: reminders sent in the quarter (status ``sent``, by planned date)
    reminders_sent: int = 0
    #: of those, the ones whose success window ended by the quarter's last day
    success_eligible: int = 0
    #: of those, the ones followed by a payment on a reminded invoice within the window
    success_followed: int = 0
    #: success_followed / success_eligible
    success_rate: Decimal | None = None
    #: promises to pay whose ``pay_by`` is in the quarter
    promises_due: int = 0
    #: of those, the ones kept
    promises_kept: int = 0
    #: promises_kept / promises_due
    promise_kept_rate: Decimal | None = None
    #: legal cases of their customers approved in the quarter
    legal_cases_opened: int = 0
    #: 1.. among the collectors; None for the unassigned group
    rank: int | None = None
    #: the proposed incentive (reporting currency; a proposal, nothing is paid); None for the
    #: unassigned group, which is never proposed one
    incentive_proposal: Decimal | None = None
    #: currencies of their overdue invoices left out of the amounts for lack of a rate
    missing_fx_rates: tuple[str, ...] = ()

    @property
    def unassigned(self) -> bool:
        """True for the group of customers without a (known) collector."""
        return self.collector_id is None


@dataclass(frozen=True)
class CollectorReport:
    """The collectors of a quarter: ranked, the unassigned group (when it has anything) last."""

    quarter: Quarter
    reporting_currency: str
    #: the collectors by rank, then the unassigned group
    results: list[CollectorResult]
    #: currencies left out of every amount for lack of a rate on the quarter's last day
    missing_fx_rates: list[str] = field(default_factory=list)
    #: the policy the incentive proposals were computed with
    incentive_policy: IncentivePolicy = field(default_factory=IncentivePolicy)

    @property
    def ranked(self) -> list[CollectorResult]:
        """The collectors, by rank (without the unassigned group)."""
        return [r for r in self.results if not r.unassigned]

    @property
    def unassigned(self) -> CollectorResult | None:
        """The unassigned group, when it has customers or anything in the quarter."""
        return next((r for r in self.results if r.unassigned), None)

    def of(self, collector_id: str | None) -> CollectorResult:
        """The result of ``collector_id`` (None: the unassigned group); KeyError without it."""
        for result in self.results:
            if result.collector_id == collector_id:
                return result
        raise KeyError(collector_id)

    @property
    def total_incentive_proposal(self) -> Decimal:
        """The sum of the proposed incentives."""
        return sum((r.incentive_proposal or _ZERO for r in self.results), _ZERO)


# --- the formulas ----------------------------------------------------------------------------


def incentive_proposal(
    recovered: Decimal, overdue_at_opening: Decimal, policy: IncentivePolicy
) -> Decimal:
    """The incentive proposed for a collector: ``rate`` × what they recovered beyond
    ``target_recovery_rate`` of the overdue outstanding at the opening (never below 0), rounded
    half-up to the cent from the exact value, at most ``cap`` when there is one."""
    beyond = Fraction(recovered) - Fraction(policy.target_recovery_rate) * Fraction(
        overdue_at_opening
    )
    amount = rounded(max(beyond, Fraction(0)) * Fraction(policy.rate), "money")
    if policy.cap is not None:
        amount = min(amount, rounded(policy.cap, "money"))
    return amount


def rank_key(result: CollectorResult) -> tuple:
    """The ranking order: recovery_rate descending (none: after all), recovered descending,
    collector_id."""
    rate = result.recovery_rate
    return (rate is None, -(rate or 0), -result.recovered, result.collector_id or "")


def ranked(results: Iterable[CollectorResult]) -> list[CollectorResult]:
    """The collectors of ``results`` ranked 1..n (see :func:`rank_key`), then the unassigned
    group (rank None)."""
    results = list(results)
    order = sorted((r for r in results if not r.unassigned), key=rank_key)
    out = [dataclasses.replace(r, rank=n) for n, r in enumerate(order, start=1)]
    return out + [dataclasses.replace(r, rank=None) for r in results if r.unassigned]


# --- reading the warehouse -------------------------------------------------------------------


def collector_performance(engine: Engine, quarter: Quarter, policy: Policy) -> CollectorReport:
    """Every collector's figures for ``quarter``, ranked, with their proposed incentives."""
    reporting = policy.currency.reporting_currency
    incentives = policy.evaluation.incentives
    rates = rates_on(engine, quarter.end, reporting)
    with engine.connect() as conn:
        staff = {
            row.collector_id: row
            for row in conn.execute(
                sa.select(collectors.c.collector_id, collectors.c.name, collectors.c.team)
            )
        }
        assigned = _customers(conn)
        ledger = _ledger(conn, quarter)
        promises = _promises(conn, quarter)
    reminders = kpis.reminder_success(engine, quarter, by_collector=True)
    legal = kpis.legal_opened(engine, quarter, by_collector=True)

    amounts: dict[str | None, dict[str, Decimal]] = {}
    missing: dict[str | None, set[str]] = {}
    for key, currency, overdue, recovered in ledger:
        overdue_converted = rates.convert(overdue, currency)
        if overdue_converted is None:
            missing.setdefault(key, set()).add(currency)
            continue
        totals = amounts.setdefault(key, {"overdue": _ZERO, "recovered": _ZERO})
        totals["overdue"] += overdue_converted
        totals["recovered"] += rates.convert(recovered, currency)

    keys: list[str | None] = sorted(staff)
    if None in {*assigned, *amounts, *missing, *reminders, *promises, *legal}:
        keys.append(None)
    results = []
    for key in keys:
        money = amounts.get(key, {"overdue": _ZERO, "recovered": _ZERO})
        sent, eligible, followed = reminders.get(key, (0, 0, 0))
        due, kept = promises.get(key, (0, 0))
        person = staff.get(key)
        results.append(
            CollectorResult(
                collector_id=key,
                name=None if person is None else person.name,
                team=None if person is None else person.team,
                customers=assigned.get(key, 0),
                overdue_at_opening=money["overdue"],
                recovered=money["recovered"],
                recovery_rate=rounded(ratio(money["recovered"], money["overdue"]), "ratio"),
                reminders_sent=sent,
                success_eligible=eligible,
                success_followed=followed,
                success_rate=rounded(ratio(followed, eligible), "ratio"),
                promises_due=due,
                promises_kept=kept,
                promise_kept_rate=rounded(ratio(kept, due), "ratio"),
                legal_cases_opened=legal.get(key, 0),
                incentive_proposal=None
                if key is None
                else incentive_proposal(money["recovered"], money["overdue"], incentives),
                missing_fx_rates=tuple(sorted(missing.get(key, ()))),
            )
        )
    return CollectorReport(
        quarter=quarter,
        reporting_currency=reporting,
        results=ranked(results),
        missing_fx_rates=sorted(set().union(*missing.values())),
        incentive_policy=incentives,
    )


def _customers(conn) -> dict[str | None, int]:
    """Customers per collector (None: the unassigned)."""
    cu, k = customers.c, collectors.c
    key = k.collector_id
    rows = conn.execute(
        sa.select(key, sa.func.count())
        .select_from(customers.outerjoin(collectors, key == cu.collector_id))
        .group_by(key)
    ).all()
    return {group: int(count) for group, count in rows}


def _ledger(conn, quarter: Quarter) -> list[tuple[str | None, str, Decimal, Decimal]]:
    """``(collector, currency, overdue at the opening, recovered)``, in the currency."""
    params = {"opening": quarter.opening, "closing": quarter.end}
    (rows,) = sqlfiles.execute(
        conn,
        "evaluation/collector_ledger.sql",
        params,
        types={name: sa.Date() for name in params},
    )
    return [
        (
            row.collector_id,
            row.currency,
            from_cents(row.overdue_at_opening),
            from_cents(row.recovered),
        )
        for row in rows
    ]


def _promises(conn, quarter: Quarter) -> dict[str | None, tuple[int, int]]:
    """``(due, kept)`` per collector: promises whose ``pay_by`` is in the quarter."""
    t, i, p = promises_to_pay.c, invoices.c, payments.c
    paid = (
        sa.select(sa.func.sum(p.amount))
        .select_from(payments.join(invoices, i.invoice_id == p.invoice_id))
        .where(
            i.customer_id == t.customer_id,
            sa.or_(t.currency.is_(None), i.currency == t.currency),
            p.paid_date >= t.promised_on,
            p.paid_date <= t.pay_by,
        )
        .scalar_subquery()
    )
    due = (
        sa.select(t.customer_id, t.amount, paid.label("paid"))
        .where(t.pay_by >= quarter.start, t.pay_by <= quarter.end)
        .subquery()
    )
    kept = sa.case(
        (
            sa.and_(
                due.c.paid.is_not(None), sa.or_(due.c.amount.is_(None), due.c.paid >= due.c.amount)
            ),
            1,
        ),
        else_=0,
    )
    source, key = collector_of(due, due.c.customer_id)
    rows = conn.execute(
        sa.select(key, sa.func.count(), sa.func.coalesce(sa.func.sum(kept), 0))
        .select_from(source)
        .group_by(key)
    ).all()
    return {group: (int(count), int(kept_count)) for group, count, kept_count in rows}
