"""Application scores: a score for every customer on the book, history or not.

A customer without any invoice yet (a few percent of a portfolio, with an above-average default
rate) has no behaviour for the scorecard to read. It is scored from what is known: how new
customers of its segment fared. The probability of default of such a customer is the share of
the ledger's past new customers — of the same segment when there are enough of them, else of
the whole book — whose invoices reached the policy's days past due (default 90) within the
horizon (default 6 months) after their first invoice. Too few past new customers: the policy's
``scores.application_pd`` (default 10 %). The reason says so in words: "no payment history yet:
new customers of segment retail reached 90 days past due within 6 months at 12.0 % (25 of 208)".
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np

from receivables.config import ScorePolicy
from receivables.risk.features import NEVER, LedgerArrays, day_number

#: Fewest past new customers for a rate of their own (segment, then the whole book).
MIN_NEW_CUSTOMERS = 30
DAYS_PER_MONTH = 30.4375


@dataclass(frozen=True)
class ApplicationScores:
    """PD and reason for the customers (positions in the ledger arrays) without history."""

    positions: np.ndarray
    pd: np.ndarray
    reasons: list[str]


def _first_issue(ledger: LedgerArrays) -> np.ndarray:
    first = np.full(ledger.customers, NEVER, dtype=np.int64)
    np.minimum.at(first, ledger.inv_customer, ledger.inv_issue.astype(np.int64))
    return first


def new_customer_outcomes(
    ledger: LedgerArrays, as_of: dt.date, policy: ScorePolicy
) -> tuple[np.ndarray, np.ndarray]:
    """(observed, bad) per customer: ``observed`` when its first invoice is at least the
    horizon before ``as_of``; ``bad`` when one of its invoices reached the bad days past due
    within the horizon after that first invoice without being paid in full by then."""
    t = day_number(as_of)
    horizon = round(policy.horizon_months * DAYS_PER_MONTH)
    first = _first_issue(ledger)
    observed = (first != NEVER) & (first + horizon <= t)
    crossing = ledger.inv_due.astype(np.int64) + policy.bad_days_past_due
    start = first[ledger.inv_customer]
    bad_invoice = (crossing <= start + horizon) & (ledger.inv_full_paid > crossing)
    bad = np.zeros(ledger.customers, dtype=bool)
    np.logical_or.at(bad, ledger.inv_customer, bad_invoice)
    return observed, bad & observed


def application_scores(
    ledger: LedgerArrays, as_of: dt.date, without_history: np.ndarray, policy: ScorePolicy
) -> ApplicationScores:
    """PD and reason for each customer position in ``without_history``."""
    observed, bad = new_customer_outcomes(ledger, as_of, policy)
    segments = np.asarray([s or "" for s in ledger.segment], dtype=object)
    horizon = f"{policy.bad_days_past_due} days past due within {policy.horizon_months} months"
    book_n, book_bad = int(observed.sum()), int(bad.sum())
    cache: dict[str, tuple[float, str]] = {}

    def rate_for(segment: str) -> tuple[float, str]:
        if segment in cache:
            return cache[segment]
        in_segment = observed & (segments == segment) if segment else np.zeros_like(observed)
        n, b = int(in_segment.sum()), int((bad & in_segment).sum())
        if segment and n >= MIN_NEW_CUSTOMERS:
            pd_ = b / n
            why = f"new customers of segment {segment} reached {horizon} at {pd_:.1%} ({b} of {n})"
        elif book_n >= MIN_NEW_CUSTOMERS:
            pd_ = book_bad / book_n
            why = f"new customers reached {horizon} at {pd_:.1%} ({book_bad} of {book_n})"
        else:
            pd_ = float(policy.application_pd)
            why = f"too few past new customers to measure: the policy's {pd_:.1%} for new customers"
        # a rate of 0 (or 1) would give an infinite score: keep it inside the scale
        pd_ = min(max(pd_, 0.001), 0.999)
        cache[segment] = (pd_, f"no payment history yet: {why}")
        return cache[segment]

    pds, reasons = [], []
    for position in without_history:
        pd_, why = rate_for(segments[position])
        pds.append(pd_)
        reasons.append(why)
    return ApplicationScores(
        positions=np.asarray(without_history, dtype=np.int64),
        pd=np.asarray(pds, dtype=float),
        reasons=reasons,
    )
