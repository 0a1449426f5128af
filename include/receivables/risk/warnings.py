"""Risk warnings: who is deteriorating today, how badly, and what to do about it.

Each warning has a kind, a severity (``low``, ``medium``, ``high``, ``critical``), a message in
plain words with the customer's own figures, and a recommended action:

* ``reduce_credit_limit`` — with the proposed new limit (grade D keeps half, E none, by
  default);
* ``start_collection_early`` — moves the customer to an earlier dunning stage (``early``);
* ``legal_review`` — the case is old enough to be looked at by the legal team;
* ``monitor`` — nothing to do yet, but worth knowing.

Kinds: ``newly_overdue`` (invoices that became overdue since the day before), ``rolled_worse``
(the worst invoice moved into a worse aging bucket), ``over_credit_limit``,
``grade_downgraded``, ``score_dropped`` (by the policy's points in a day), ``concentration``
(one customer holds more than the policy's share of a currency's overdue). Broken promises
will join when promises to pay are recorded. A re-run replaces the date's warnings.
"""

from __future__ import annotations

import datetime as dt
import logging
from decimal import Decimal

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from receivables.aging import compute_snapshot
from receivables.config import Policy
from receivables.warehouse import sqlfiles
from receivables.warehouse.schema import aging_runs, credit_scores, customers, risk_warnings
from receivables.warehouse.types import Money

log = logging.getLogger(__name__)

SEVERITIES = ("low", "medium", "high", "critical")
EARLY = "early"


def _money(currency: str, amount: Decimal) -> str:
    return f"{currency} {amount:,.2f}"


def previous_day_snapshot(engine: Engine, as_of: dt.date, policy: Policy) -> dt.date:
    """The day before ``as_of``, whose aging snapshot is computed if it does not exist yet."""
    previous = as_of - dt.timedelta(days=1)
    with engine.connect() as conn:
        done = conn.execute(
            sa.select(aging_runs.c.as_of_date).where(aging_runs.c.as_of_date == previous)
        ).first()
    if done is None:
        compute_snapshot(engine, previous, policy.aging, summary=False)
    return previous


def _facts(engine: Engine, as_of: dt.date, previous: dt.date) -> pd.DataFrame:
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
    with engine.connect() as conn:
        rows = conn.execute(query, {"as_of": as_of, "previous": previous}).mappings().all()
    return pd.DataFrame([dict(r) for r in rows])


def _scores(engine: Engine, day: dt.date | None) -> pd.DataFrame:
    columns = ["customer_id", "model_id", "score", "grade", "pd"]
    if day is None:
        return pd.DataFrame(columns=columns)
    s = credit_scores
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(s.c.customer_id, s.c.model_id, s.c.score, s.c.grade, s.c.pd).where(
                s.c.as_of_date == day
            )
        ).all()
    frame = pd.DataFrame(rows, columns=columns)
    frame["score"] = frame["score"].astype(float)
    return frame


def _previous_score_date(engine: Engine, as_of: dt.date) -> dt.date | None:
    s = credit_scores
    with engine.connect() as conn:
        return conn.execute(
            sa.select(sa.func.max(s.c.as_of_date)).where(s.c.as_of_date < as_of)
        ).scalar()


def _bucket_rank(days: pd.Series, policy: Policy) -> np.ndarray:
    """Index of the aging bucket of each number of days past due."""
    bounds = [b.max_days for b in policy.aging.buckets if b.max_days is not None]
    return np.searchsorted(np.asarray(bounds), days.to_numpy(dtype=float), side="left")


class _Collector:
    """The day's warnings, with the recommended action's consequences filled in."""

    def __init__(self, as_of: dt.date):
        self.as_of = as_of
        self.rows: list[dict] = []

    def add(self, customer_id, kind, severity, message, action, currency=None, limit=None):
        self.rows.append(
            {
                "as_of_date": self.as_of,
                "customer_id": customer_id,
                "kind": kind,
                "severity": severity,
                "message": message,
                "action": action,
                "currency": currency,
                "proposed_credit_limit": limit,
                "dunning_stage": EARLY if action == "start_collection_early" else None,
            }
        )


def raise_warnings(engine: Engine, as_of: dt.date, policy: Policy) -> dict:
    """Work out the warnings of ``as_of`` and replace that date's stored ones.

    Each rule selects its customers with whole-column comparisons; messages are written only
    for the customers selected. Grades and scores are compared only where both days were
    scored by the same model: the day a new model takes over, a changed grade says more about
    the model than about the customer.
    """
    previous = previous_day_snapshot(engine, as_of, policy)
    facts = _facts(engine, as_of, previous)
    with engine.connect() as conn:
        limits = pd.DataFrame(
            conn.execute(
                sa.select(
                    customers.c.customer_id,
                    customers.c.credit_limit,
                    customers.c.currency.label("limit_currency"),
                )
            ).all(),
            columns=["customer_id", "credit_limit", "limit_currency"],
        )
    today = _scores(engine, as_of)
    before_date = _previous_score_date(engine, as_of)
    before = _scores(engine, before_date)
    rules = policy.warnings
    names = [b.name for b in policy.aging.buckets]
    grade_today = dict(zip(today["customer_id"], today["grade"], strict=True))
    limit_of = dict(zip(limits["customer_id"], limits["credit_limit"], strict=True))
    currency_of = dict(zip(limits["customer_id"], limits["limit_currency"], strict=True))
    found = _Collector(as_of)

    def proposed_limit(customer_id, default_factor: float | None = None) -> Decimal | None:
        limit = limit_of.get(customer_id)
        factor = rules.limit_factor_by_grade.get(grade_today.get(customer_id, ""), default_factor)
        if limit is None or factor is None or pd.isna(limit):
            return None
        return (limit * Decimal(str(factor))).quantize(Decimal("0.01"))

    if len(facts):
        facts = facts.merge(limits, on="customer_id", how="left")
        weak = facts["customer_id"].map(grade_today).isin(["D", "E"]).to_numpy()
        for row, is_weak in zip(
            facts[facts["newly_overdue"] > 0].itertuples(index=False),
            weak[(facts["newly_overdue"] > 0).to_numpy()],
            strict=True,
        ):
            found.add(
                row.customer_id,
                "newly_overdue",
                "medium" if is_weak else "low",
                f"{row.newly_overdue} invoice(s) of "
                f"{_money(row.currency, row.newly_overdue_amount)} became overdue since yesterday",
                "start_collection_early" if is_weak else "monitor",
                row.currency,
            )
        had = facts["previous_worst_dpd"].fillna(0).astype(float)
        now_rank = _bucket_rank(facts["worst_dpd"], policy)
        old_rank = _bucket_rank(had, policy)
        rolled = ((had > 0).to_numpy()) & (now_rank > old_rank)
        for row, new, old in zip(
            facts[rolled].itertuples(index=False), now_rank[rolled], old_rank[rolled], strict=True
        ):
            dpd = int(row.worst_dpd)
            severity = (
                "critical"
                if dpd >= 181
                else "high"
                if dpd >= 91
                else "medium"
                if dpd >= 61
                else "low"
            )
            action = (
                "legal_review"
                if dpd >= rules.legal_review_days
                else "start_collection_early"
                if dpd >= 61
                else "monitor"
            )
            found.add(
                row.customer_id,
                "rolled_worse",
                severity,
                f"oldest open invoice moved from {names[old]} to {names[new]} days past due "
                f"({dpd} days; {_money(row.currency, row.overdue)} overdue)",
                action,
                row.currency,
            )
        has_limit = facts["credit_limit"].notna() & (facts["limit_currency"] == facts["currency"])
        over = facts[has_limit]
        over = over[
            [o > lim > 0 for o, lim in zip(over["outstanding"], over["credit_limit"], strict=True)]
        ]
        for row in over.itertuples(index=False):
            excess = row.outstanding / row.credit_limit - 1
            found.add(
                row.customer_id,
                "over_credit_limit",
                "high" if excess > Decimal("0.2") else "medium",
                f"outstanding {_money(row.currency, row.outstanding)} exceeds the credit limit "
                f"{_money(row.currency, row.credit_limit)} by {excess:.0%}",
                "start_collection_early",
                row.currency,
            )
        totals = facts.groupby("currency")["overdue"].transform(lambda v: sum(v, Decimal(0)))
        threshold = Decimal(str(rules.concentration_share))
        concentrated = [
            total > 0 and overdue > 0 and overdue / total > threshold
            for overdue, total in zip(facts["overdue"], totals, strict=True)
        ]
        for row, total in zip(
            facts[concentrated].itertuples(index=False), totals[concentrated], strict=True
        ):
            found.add(
                row.customer_id,
                "concentration",
                "high",
                f"holds {row.overdue / total:.1%} of all overdue {row.currency} "
                f"({_money(row.currency, row.overdue)})",
                "reduce_credit_limit",
                row.currency,
                proposed_limit(row.customer_id, 0.5),
            )
    compared = today.merge(before, on="customer_id", suffixes=("", "_before"))
    model_changed = bool(len(compared)) and bool(
        (compared["model_id"] != compared["model_id_before"]).all()
    )
    compared = compared[compared["model_id"] == compared["model_id_before"]]
    if len(compared):
        rank = {g: i for i, g in enumerate("ABCDE")}
        down = compared["grade"].map(rank) > compared["grade_before"].map(rank)
        for row in compared[down].itertuples(index=False):
            limit = proposed_limit(row.customer_id)
            found.add(
                row.customer_id,
                "grade_downgraded",
                {"B": "low", "C": "medium", "D": "high", "E": "critical"}[row.grade],
                f"grade fell from {row.grade_before} to {row.grade} (probability of default "
                f"{float(row.pd):.1%})",
                "reduce_credit_limit" if limit is not None else "monitor",
                currency_of.get(row.customer_id),
                limit,
            )
        drop = compared["score_before"] - compared["score"]
        sharp = drop >= policy.scores.sharp_drop_points
        for row, points in zip(compared[sharp].itertuples(index=False), drop[sharp], strict=True):
            found.add(
                row.customer_id,
                "score_dropped",
                "high" if points >= 2 * policy.scores.sharp_drop_points else "medium",
                f"score fell {points:.0f} points in a day, to {row.score:.0f}",
                "start_collection_early",
                currency_of.get(row.customer_id),
            )
    warnings = found.rows
    with engine.begin() as conn:
        conn.execute(risk_warnings.delete().where(risk_warnings.c.as_of_date == as_of))
        if warnings:
            conn.execute(risk_warnings.insert(), warnings)
    by_severity = {s: sum(1 for w in warnings if w["severity"] == s) for s in SEVERITIES}
    by_kind: dict[str, int] = {}
    for w in warnings:
        by_kind[w["kind"]] = by_kind.get(w["kind"], 0) + 1
    log.info("%d warning(s) for %s: %s", len(warnings), as_of, by_severity)
    return {
        "as_of_date": as_of.isoformat(),
        "warnings": len(warnings),
        "by_severity": by_severity,
        "by_kind": by_kind,
        "compared_with_scores_of": before_date.isoformat() if before_date else None,
        "model_changed": model_changed,
    }
