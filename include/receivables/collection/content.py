"""What a reminder says: the facts a template is rendered from (no rendering here).

Built by the planner and the sender from the warehouse and the strategy; rendered by
:mod:`receivables.collection.letters`. Amounts are ``Decimal``, dates are dates; text from
ledger files (names, descriptions) is printed one line by the template environment.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal


@dataclass(frozen=True)
class StatementLine:
    """One open invoice in the statement."""

    invoice_id: str
    description: str | None
    issue_date: dt.date
    due_date: dt.date
    currency: str
    amount: Decimal
    outstanding: Decimal
    days_past_due: int


@dataclass(frozen=True)
class Contact:
    """Whom the customer can reach: its collector, else the receivables team."""

    name: str
    email: str
    phone: str | None = None


@dataclass(frozen=True)
class PaymentDetails:
    """How to pay (from the strategy, in the customer's language)."""

    beneficiary: str
    bank: str
    account: str
    reference: str


@dataclass(frozen=True)
class ReminderContent:
    """Everything one reminder email says."""

    reminder_key: str
    customer_id: str
    customer_name: str
    locale: str
    stage: str
    as_of: dt.date
    lines: tuple[StatementLine, ...]
    mentions_legal: bool
    contact: Contact
    payment: PaymentDetails
    opt_out_url: str
    feedback_url: str

    @property
    def subtotals(self) -> list[tuple[str, Decimal, int]]:
        """(currency, outstanding, invoices) per currency, in order of first appearance."""
        totals: dict[str, tuple[Decimal, int]] = {}
        for line in self.lines:
            amount, count = totals.get(line.currency, (Decimal("0.00"), 0))
            totals[line.currency] = (amount + line.outstanding, count + 1)
        return [(c, a, n) for c, (a, n) in totals.items()]

    @property
    def overdue(self) -> bool:
        """Whether any invoice in the statement is past due."""
        return any(line.days_past_due > 0 for line in self.lines)
