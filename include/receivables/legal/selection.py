"""Which customers go to the legal team: the selection rules, each its own function.

A customer is proposed for a legal case — one case per currency of its debt — on an as-of date
when every rule holds (``strategy.legal``):

``days_past_due``
    its worst open invoice is at least ``min_days_past_due`` days past due;
``final_notice``
    its final notice was sent at least ``final_notice_days`` days before (by the date that
    planned it) and did not bounce: nobody goes to court without having been told;
``no_dispute``
    no open invoice of it is disputed and no dispute it raised is open;
``no_promise``
    no promise to pay is running;
``limitation``
    something is left to claim once invoices past the limitation period are left out (those
    are never claimed);
``no_case_running``
    no case of it in that currency is proposed or running, and none was rejected within
    ``rejected_cooldown_days``;
``min_outstanding``
    the claim in that currency reaches ``min_outstanding`` (a currency without a threshold is
    never escalated).

The claim is every overdue, not time-barred open invoice of that currency that no earlier case
(other than a rejected one) claimed: its outstanding, plus late interest when configured
(simple interest, actual/365, from the due date, rounded half up to the cent per invoice).

Every proposal carries all its rule results, in words; customers considered (worst invoice at
least ``min_days_past_due`` days past due) but not proposed are counted by the first rule they
failed.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from decimal import ROUND_HALF_UP, Decimal

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from receivables.collection import holds
from receivables.collection.compliance import time_barred
from receivables.collection.strategy import Legal, Strategy
from receivables.legal.lifecycle import ENDED_STATUSES
from receivables.warehouse.schema import (
    aging_snapshots,
    legal_case_invoices,
    legal_cases,
    reminders,
)

CENT = Decimal("0.01")
DAYS_IN_YEAR = Decimal(365)
#: Delivery events after which the final notice does not count as received.
UNDELIVERED = ("bounce", "dropped")
#: The rules, in the order they are judged.
RULES = (
    "days_past_due",
    "final_notice",
    "no_dispute",
    "no_promise",
    "limitation",
    "no_case_running",
    "min_outstanding",
)


@dataclass(frozen=True)
class RuleResult:
    """One rule's verdict on one customer (and currency), in words."""

    rule: str
    passed: bool
    detail: str


@dataclass(frozen=True)
class OpenInvoice:
    """An open invoice of the as-of date's aging snapshot."""

    invoice_id: str
    currency: str
    outstanding: Decimal
    due_date: dt.date
    days_past_due: int
    disputed: bool


@dataclass(frozen=True)
class ClaimedInvoice:
    """An invoice a case claims, as it stood at escalation."""

    invoice_id: str
    due_date: dt.date
    days_past_due: int
    outstanding: Decimal
    interest: Decimal


@dataclass
class Proposal:
    """A case the rules propose: one customer, one currency."""

    customer_id: str
    currency: str
    worst_days_past_due: int
    invoices: list[ClaimedInvoice]
    rules: list[RuleResult]
    auto_approve: bool = False
    principal: Decimal = field(init=False)
    interest: Decimal = field(init=False)

    def __post_init__(self) -> None:
        self.principal = sum((i.outstanding for i in self.invoices), Decimal(0))
        self.interest = sum((i.interest for i in self.invoices), Decimal(0))

    @property
    def amount(self) -> Decimal:
        """The claim: principal and interest."""
        return self.principal + self.interest

    def rules_json(self) -> str:
        return json.dumps([asdict(r) for r in self.rules], ensure_ascii=False)


@dataclass
class Selection:
    """The day's proposals, and why the other customers considered were not proposed."""

    proposals: list[Proposal]
    considered: int
    not_proposed: Counter


# --- the rules --------------------------------------------------------------------------------


def late_interest(outstanding: Decimal, days_past_due: int, legal: Legal) -> Decimal:
    """Simple late interest on ``outstanding`` for ``days_past_due`` days (actual/365), half up
    to the cent; 0 when the strategy claims none."""
    if legal.late_interest is None or days_past_due <= 0:
        return Decimal("0.00")
    raw = outstanding * legal.late_interest.annual_rate * days_past_due / DAYS_IN_YEAR
    return raw.quantize(CENT, rounding=ROUND_HALF_UP)


def rule_days_past_due(worst: int, legal: Legal) -> RuleResult:
    return RuleResult(
        "days_past_due",
        worst >= legal.min_days_past_due,
        f"worst open invoice {worst} days past due (escalation from {legal.min_days_past_due})",
    )


def rule_final_notice(
    notice: tuple[dt.date, str | None] | None, as_of: dt.date, legal: Legal
) -> RuleResult:
    """``notice``: (date that planned the latest sent final notice, its delivery status)."""
    if notice is None:
        return RuleResult("final_notice", False, "no final notice has been sent")
    planned_on, delivery = notice
    age = (as_of - planned_on).days
    if delivery in UNDELIVERED:
        return RuleResult(
            "final_notice", False, f"the final notice of {planned_on} did not arrive ({delivery})"
        )
    return RuleResult(
        "final_notice",
        age >= legal.final_notice_days,
        f"final notice sent on {planned_on}, {age} days ago "
        f"(escalation from {legal.final_notice_days} days after it)",
    )


def rule_no_dispute(disputed_invoices: list[str], open_disputes: int) -> RuleResult:
    if disputed_invoices:
        shown = ", ".join(disputed_invoices[:5]) + (" …" if len(disputed_invoices) > 5 else "")
        return RuleResult("no_dispute", False, f"disputed invoice(s): {shown}")
    if open_disputes:
        return RuleResult(
            "no_dispute", False, f"{open_disputes} dispute(s) raised by the customer are open"
        )
    return RuleResult("no_dispute", True, "no invoice disputed, no open dispute")


def rule_no_promise(promise_until: dt.date | None) -> RuleResult:
    if promise_until is not None:
        return RuleResult("no_promise", False, f"a promise to pay runs until {promise_until}")
    return RuleResult("no_promise", True, "no promise to pay running")


def rule_limitation(claimable: int, barred: int, strategy: Strategy) -> RuleResult:
    years = strategy.contact.limitation_years
    detail = f"{claimable} invoice(s) within the {years}-year limitation period"
    if barred:
        detail += f"; {barred} time-barred invoice(s) left out of the claim"
    return RuleResult("limitation", claimable > 0, detail)


def rule_no_case_running(currency: str, blocking: str | None) -> RuleResult:
    if blocking:
        return RuleResult("no_case_running", False, f"{currency}: {blocking}")
    return RuleResult("no_case_running", True, f"no {currency} case proposed or running")


def rule_min_outstanding(currency: str, claim: Decimal, legal: Legal) -> RuleResult:
    threshold = legal.min_outstanding.get(currency)
    if threshold is None:
        return RuleResult(
            "min_outstanding", False, f"no escalation threshold for {currency} in the strategy"
        )
    return RuleResult(
        "min_outstanding",
        claim >= threshold,
        f"{currency} {claim:,.2f} claimed (escalation from {currency} {threshold:,.2f})",
    )


# --- the facts --------------------------------------------------------------------------------


def _overdue(conn: Connection, as_of: dt.date, legal: Legal) -> dict[str, list[OpenInvoice]]:
    """Open overdue invoices of the customers whose worst one reaches the threshold."""
    a = aging_snapshots.c
    worst = (
        sa.select(a.customer_id)
        .where(a.as_of_date == as_of, a.outstanding > 0)
        .group_by(a.customer_id)
        .having(sa.func.max(a.days_past_due) >= legal.min_days_past_due)
    )
    found: dict[str, list[OpenInvoice]] = defaultdict(list)
    for row in conn.execute(
        sa.select(
            a.customer_id,
            a.invoice_id,
            a.currency,
            a.outstanding,
            a.due_date,
            a.days_past_due,
            a.disputed,
        )
        .where(
            a.as_of_date == as_of,
            a.outstanding > 0,
            a.days_past_due > 0,
            a.customer_id.in_(worst),
        )
        .order_by(a.customer_id, a.due_date, a.invoice_id)
    ):
        found[row.customer_id].append(
            OpenInvoice(
                row.invoice_id,
                row.currency,
                row.outstanding,
                row.due_date,
                int(row.days_past_due),
                bool(row.disputed),
            )
        )
    return found


def _final_notices(
    conn: Connection, as_of: dt.date, stage: str, customers: set[str]
) -> dict[str, tuple[dt.date, str | None]]:
    """Each customer's latest final notice sent up to ``as_of``: (planned on, delivery)."""
    r = reminders.c
    latest: dict[str, tuple[dt.date, str | None]] = {}
    for row in conn.execute(
        sa.select(r.customer_id, r.planned_on, r.delivery_status)
        .where(
            r.stage == stage,
            r.status == "sent",
            r.planned_on <= as_of,
            r.customer_id.in_(sorted(customers)),
        )
        .order_by(r.customer_id, r.planned_on)
    ):
        latest[row.customer_id] = (holds.as_date(row.planned_on), row.delivery_status)
    return latest


def _cases(conn: Connection, customers: set[str]):
    c = legal_cases.c
    return conn.execute(
        sa.select(c.case_id, c.customer_id, c.currency, c.status, c.updated_on).where(
            c.customer_id.in_(sorted(customers))
        )
    ).all()


def _claimed_invoices(conn: Connection, customers: set[str]) -> set[str]:
    """Invoices an earlier case (not a rejected one) already claims."""
    c, i = legal_cases.c, legal_case_invoices.c
    return set(
        conn.execute(
            sa.select(i.invoice_id)
            .join(legal_cases, c.case_id == i.case_id)
            .where(c.customer_id.in_(sorted(customers)), c.status != "rejected")
        ).scalars()
    )


def _blocking(case_rows, currency: str, as_of: dt.date, legal: Legal) -> str | None:
    for case in case_rows:
        if case.currency != currency:
            continue
        if case.status not in ENDED_STATUSES:
            return f"case {case.case_id} is {case.status}"
        if case.status == "rejected":
            since = (as_of - holds.as_date(case.updated_on)).days
            if since < legal.rejected_cooldown_days:
                return (
                    f"case {case.case_id} was rejected {since} days ago (proposed again after "
                    f"{legal.rejected_cooldown_days})"
                )
    return None


# --- the selection ----------------------------------------------------------------------------


def select_cases(conn: Connection, as_of: dt.date, strategy: Strategy) -> Selection:
    """The cases the rules propose on ``as_of`` (read from its aging snapshot)."""
    legal = strategy.legal
    if legal is None:
        return Selection([], 0, Counter())
    overdue = _overdue(conn, as_of, legal)
    who = set(overdue)
    if not who:
        return Selection([], 0, Counter())
    notices = _final_notices(conn, as_of, legal.final_notice_stage, who)
    promises = holds.running_promises(conn, as_of, who)
    disputes = holds.open_disputes(conn, who)
    cases = defaultdict(list)
    for case in _cases(conn, who):
        cases[case.customer_id].append(case)
    claimed = _claimed_invoices(conn, who)
    proposals: list[Proposal] = []
    not_proposed: Counter = Counter()
    for customer_id in sorted(who):
        invoices = overdue[customer_id]
        worst = max(i.days_past_due for i in invoices)
        common = [
            rule_days_past_due(worst, legal),
            rule_final_notice(notices.get(customer_id), as_of, legal),
            rule_no_dispute(
                [i.invoice_id for i in invoices if i.disputed], disputes.get(customer_id, 0)
            ),
            rule_no_promise(promises.get(customer_id)),
        ]
        failed = next((r for r in common if not r.passed), None)
        if failed is not None:
            not_proposed[failed.rule] += 1
            continue
        proposed_any = False
        first_failure = None
        for currency in sorted({i.currency for i in invoices}):
            mine = [i for i in invoices if i.currency == currency]
            live = [i for i in mine if not time_barred(i.due_date, as_of, strategy.contact)]
            claim = [
                ClaimedInvoice(
                    i.invoice_id,
                    i.due_date,
                    i.days_past_due,
                    i.outstanding,
                    late_interest(i.outstanding, i.days_past_due, legal),
                )
                for i in live
                if i.invoice_id not in claimed  # an earlier case claims it already
            ]
            principal = sum((i.outstanding for i in claim), Decimal(0))
            results = [
                *common,
                rule_limitation(len(live), len(mine) - len(live), strategy),
                rule_no_case_running(
                    currency, _blocking(cases.get(customer_id, []), currency, as_of, legal)
                ),
                rule_min_outstanding(currency, principal, legal),
            ]
            failed = next((r for r in results if not r.passed), None)
            if failed is not None:
                first_failure = first_failure or failed.rule
                continue
            proposal = Proposal(customer_id, currency, worst, claim, results)
            below = legal.auto_approve_below.get(currency)
            proposal.auto_approve = below is not None and proposal.amount < below
            proposals.append(proposal)
            proposed_any = True
        if not proposed_any:
            not_proposed[first_failure or "min_outstanding"] += 1
    return Selection(proposals, len(who), not_proposed)
