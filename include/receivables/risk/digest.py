"""The daily risk digest for the risk team: new warnings by severity, movers, provision change."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from receivables.config import Settings
from receivables.fx import rates_on
from receivables.mail import send_once
from receivables.risk.warnings import SEVERITIES
from receivables.warehouse.schema import credit_scores, customers, invoice_risk, risk_warnings

#: rows of each list shown in the email (the exports hold all of them)
SHOWN = 15


def _ecl_by_currency(conn, day: dt.date | None) -> dict[str, Decimal]:
    if day is None:
        return {}
    total = sa.type_coerce(sa.func.sum(invoice_risk.c.ecl), invoice_risk.c.ecl.type)
    return {
        currency: amount
        for currency, amount in conn.execute(
            sa.select(invoice_risk.c.currency, total)
            .where(invoice_risk.c.as_of_date == day)
            .group_by(invoice_risk.c.currency)
        )
    }


def digest_context(engine: Engine, as_of: dt.date, reporting: str = "CNY") -> dict:
    """What the digest says, read back from the warehouse; amounts per currency and, where a
    rate exists, in the ``reporting`` currency (the currencies without one are named)."""
    w, s = risk_warnings, credit_scores
    with engine.connect() as conn:
        previous_warning_day = conn.execute(
            sa.select(sa.func.max(w.c.as_of_date)).where(w.c.as_of_date < as_of)
        ).scalar()
        earlier = set()
        if previous_warning_day is not None:
            earlier = {
                (r.customer_id, r.kind)
                for r in conn.execute(
                    sa.select(w.c.customer_id, w.c.kind).where(
                        w.c.as_of_date == previous_warning_day
                    )
                )
            }
        rows = (
            conn.execute(
                sa.select(w, customers.c.name)
                .join_from(w, customers, customers.c.customer_id == w.c.customer_id, isouter=True)
                .where(w.c.as_of_date == as_of)
            )
            .mappings()
            .all()
        )
        rank = {name: i for i, name in enumerate(SEVERITIES)}
        new = sorted(
            (dict(r) for r in rows if (r["customer_id"], r["kind"]) not in earlier),
            key=lambda r: (-rank[r["severity"]], r["customer_id"], r["kind"]),
        )
        previous_score_day = conn.execute(
            sa.select(sa.func.max(s.c.as_of_date)).where(s.c.as_of_date < as_of)
        ).scalar()
        movers = []
        if previous_score_day is not None:
            before = s.alias("before")
            movers = [
                dict(r)
                for r in conn.execute(
                    sa.select(
                        s.c.customer_id,
                        customers.c.name,
                        before.c.grade.label("grade_before"),
                        s.c.grade,
                        before.c.score.label("score_before"),
                        s.c.score,
                    )
                    .join(
                        before,
                        sa.and_(
                            before.c.customer_id == s.c.customer_id,
                            before.c.as_of_date == previous_score_day,
                            # a new model's grades are not moves of the customer's
                            before.c.model_id == s.c.model_id,
                        ),
                    )
                    .join(customers, customers.c.customer_id == s.c.customer_id, isouter=True)
                    .where(s.c.as_of_date == as_of, s.c.grade != before.c.grade)
                    .order_by((s.c.score - before.c.score).asc(), s.c.customer_id)
                ).mappings()
            ]
        previous_risk_day = conn.execute(
            sa.select(sa.func.max(invoice_risk.c.as_of_date)).where(
                invoice_risk.c.as_of_date < as_of
            )
        ).scalar()
        ecl_now = _ecl_by_currency(conn, as_of)
        ecl_before = _ecl_by_currency(conn, previous_risk_day)
        outstanding = {
            currency: amount
            for currency, amount in conn.execute(
                sa.select(
                    invoice_risk.c.currency,
                    sa.type_coerce(
                        sa.func.sum(invoice_risk.c.outstanding), invoice_risk.c.outstanding.type
                    ),
                )
                .where(invoice_risk.c.as_of_date == as_of)
                .group_by(invoice_risk.c.currency)
            )
        }
        rates = rates_on(conn, as_of, reporting)
    provisions = [
        {
            "currency": c,
            "ecl": ecl_now[c],
            "before": ecl_before.get(c),
            "change": ecl_now[c] - ecl_before[c] if c in ecl_before else None,
            "in_reporting": rates.convert(ecl_now[c], c) if c != reporting else None,
        }
        for c in sorted(ecl_now)
    ]
    missing = rates.missing(set(ecl_now) | set(outstanding))

    def total(amounts: dict[str, Decimal]) -> Decimal | None:
        if set(amounts) <= {reporting} or set(amounts) <= set(missing):
            return None  # one currency (or none convertible): nothing to add up
        return rates.total(amounts)[0]

    return {
        "as_of": as_of.isoformat(),
        "new_warnings": new[:SHOWN],
        "new_count": len(new),
        "continuing_count": len(rows) - len(new),
        "new_by_severity": {sev: sum(1 for r in new if r["severity"] == sev) for sev in SEVERITIES},
        "downgrades": [m for m in movers if m["grade"] > m["grade_before"]][:SHOWN],
        "upgrades": [m for m in movers if m["grade"] < m["grade_before"]][:SHOWN],
        "provisions": provisions,
        "previous_risk_day": previous_risk_day.isoformat() if previous_risk_day else None,
        "severities": SEVERITIES,
        "reporting_currency": reporting,
        "reporting_ecl": total(ecl_now),
        "reporting_outstanding": total(outstanding),
        "missing_fx_rates": missing,
    }


def send_digest(engine: Engine, as_of: dt.date, settings: Settings) -> dict:
    """Email the digest of ``as_of`` to the risk team (once per date, whatever re-runs do)."""
    context = digest_context(engine, as_of, settings.policy.currency.reporting_currency)
    delivery = send_once(
        settings,
        f"risk-digest/{as_of.isoformat()}",
        "risk/daily_digest",
        settings.risk_emails,
        "risk-digest",
        **context,
    )
    return {
        "status": delivery.status,
        "location": delivery.location,
        "new_warnings": context["new_count"],
    }
