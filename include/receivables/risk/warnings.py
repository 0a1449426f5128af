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

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from receivables.aging import band_for, compute_snapshot
from receivables.config import Policy
from receivables.warehouse import sqlfiles
from receivables.warehouse.schema import aging_runs, credit_scores, customers, risk_warnings
from receivables.warehouse.types import Money

log = logging.getLogger(__name__)

SEVERITIES = ("low", "medium", "high", "critical")
GRADE_RANK = {g: i for i, g in enumerate("ABCDE")}
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
        compute_snapshot(engine, previous, policy.aging)
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
    if day is None:
        return pd.DataFrame(columns=["customer_id", "score", "grade", "pd"]).set_index(
            "customer_id"
        )
    s = credit_scores
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(s.c.customer_id, s.c.score, s.c.grade, s.c.pd).where(s.c.as_of_date == day)
        ).all()
    frame = pd.DataFrame(rows, columns=["customer_id", "score", "grade", "pd"])
    frame["score"] = frame["score"].astype(float)
    return frame.set_index("customer_id")


def _previous_score_date(engine: Engine, as_of: dt.date) -> dt.date | None:
    s = credit_scores
    with engine.connect() as conn:
        return conn.execute(
            sa.select(sa.func.max(s.c.as_of_date)).where(s.c.as_of_date < as_of)
        ).scalar()


def raise_warnings(engine: Engine, as_of: dt.date, policy: Policy) -> dict:
    """Work out the warnings of ``as_of`` and replace that date's stored ones."""
    previous = previous_day_snapshot(engine, as_of, policy)
    facts = _facts(engine, as_of, previous)
    with engine.connect() as conn:
        limits = {
            r.customer_id: (r.credit_limit, r.currency)
            for r in conn.execute(
                sa.select(customers.c.customer_id, customers.c.credit_limit, customers.c.currency)
            )
        }
    today = _scores(engine, as_of)
    before_date = _previous_score_date(engine, as_of)
    before = _scores(engine, before_date)
    rules = policy.warnings
    buckets = policy.aging.buckets
    bucket_rank = {b.name: i for i, b in enumerate(buckets)}
    warnings: list[dict] = []

    def add(customer_id, kind, severity, message, action, currency=None, limit=None):
        warnings.append(
            {
                "as_of_date": as_of,
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

    def grade(customer_id) -> str | None:
        return today["grade"].get(customer_id) if len(today) else None

    def proposed_limit(customer_id, default_factor: float | None = None) -> Decimal | None:
        limit, _ = limits.get(customer_id, (None, None))
        factor = rules.limit_factor_by_grade.get(grade(customer_id) or "", default_factor)
        if limit is None or factor is None:
            return None
        return (limit * Decimal(str(factor))).quantize(Decimal("0.01"))

    overdue_totals = facts.groupby("currency")["overdue"].sum().to_dict() if len(facts) else {}
    for row in facts.itertuples(index=False):
        cid, cur = row.customer_id, row.currency
        worst_bucket = band_for(int(row.worst_dpd), buckets)
        if row.newly_overdue:
            weak = grade(cid) in ("D", "E")
            add(
                cid,
                "newly_overdue",
                "medium" if weak else "low",
                f"{row.newly_overdue} invoice(s) of {_money(cur, row.newly_overdue_amount)} "
                "became overdue since yesterday",
                "start_collection_early" if weak else "monitor",
                cur,
            )
        previous_worst = row.previous_worst_dpd
        if previous_worst is not None and previous_worst > 0 and not pd.isna(previous_worst):
            old_bucket = band_for(int(previous_worst), buckets)
            if bucket_rank[worst_bucket] > bucket_rank[old_bucket]:
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
                add(
                    cid,
                    "rolled_worse",
                    severity,
                    f"oldest open invoice moved from {old_bucket} to {worst_bucket} days past due "
                    f"({dpd} days; {_money(cur, row.overdue)} overdue)",
                    action,
                    cur,
                )
        limit, limit_currency = limits.get(cid, (None, None))
        if limit and limit > 0 and limit_currency == cur and row.outstanding > limit:
            over = row.outstanding / limit - 1
            add(
                cid,
                "over_credit_limit",
                "high" if over > Decimal("0.2") else "medium",
                f"outstanding {_money(cur, row.outstanding)} exceeds the credit limit "
                f"{_money(cur, limit)} by {over:.0%}",
                "start_collection_early",
                cur,
            )
        total_overdue = overdue_totals.get(cur) or Decimal(0)
        if total_overdue > 0 and row.overdue > 0:
            share = row.overdue / total_overdue
            if share > Decimal(str(rules.concentration_share)):
                add(
                    cid,
                    "concentration",
                    "high",
                    f"holds {share:.1%} of all overdue {cur} ({_money(cur, row.overdue)})",
                    "reduce_credit_limit",
                    cur,
                    proposed_limit(cid, 0.5),
                )
    if len(before) and len(today):
        joined = today.join(before, how="inner", rsuffix="_before")
        for cid, row in joined.iterrows():
            if GRADE_RANK[row["grade"]] > GRADE_RANK[row["grade_before"]]:
                severity = {"B": "low", "C": "medium", "D": "high", "E": "critical"}[row["grade"]]
                limit = proposed_limit(cid)
                add(
                    cid,
                    "grade_downgraded",
                    severity,
                    f"grade fell from {row['grade_before']} to {row['grade']} (probability of "
                    f"default {float(row['pd']):.1%})",
                    "reduce_credit_limit" if limit is not None else "monitor",
                    limits.get(cid, (None, None))[1],
                    limit,
                )
            drop = row["score_before"] - row["score"]
            if drop >= policy.scores.sharp_drop_points:
                add(
                    cid,
                    "score_dropped",
                    "high" if drop >= 2 * policy.scores.sharp_drop_points else "medium",
                    f"score fell {drop:.0f} points in a day, to {row['score']:.0f}",
                    "start_collection_early",
                    limits.get(cid, (None, None))[1],
                )
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
    }
