"""What the day's reminders came to, read back from the warehouse (for logs and summaries)."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from receivables.warehouse.schema import collection_actions, reminders


def reminder_summary(engine: Engine, as_of: dt.date) -> dict:
    """Reminders planned on ``as_of`` by status (``sending`` counts as pending), refusals and
    failures by rule or reason, by stage and language, and the worklist actions."""
    r = reminders.c
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(r.status, r.rule, r.stage, r.locale, r.provider, sa.func.count().label("n"))
            .where(r.planned_on == as_of)
            .group_by(r.status, r.rule, r.stage, r.locale, r.provider)
        ).all()
        actions = conn.execute(
            sa.select(collection_actions.c.kind, sa.func.count().label("n"))
            .where(collection_actions.c.planned_on == as_of)
            .group_by(collection_actions.c.kind)
        ).all()
    by_status: dict[str, int] = {}
    by_rule: dict[str, int] = {}
    by_stage: dict[str, int] = {}
    by_locale: dict[str, int] = {}
    providers: set[str] = set()
    for row in rows:
        status = "pending" if row.status == "sending" else row.status
        by_status[status] = by_status.get(status, 0) + row.n
        if row.rule:
            by_rule[row.rule] = by_rule.get(row.rule, 0) + row.n
        by_stage[row.stage] = by_stage.get(row.stage, 0) + row.n
        by_locale[row.locale] = by_locale.get(row.locale, 0) + row.n
        if row.status == "sent" and row.provider:
            providers.add(row.provider)
    return {
        "as_of_date": as_of.isoformat(),
        "planned": sum(by_status.values()),
        **{s: by_status.get(s, 0) for s in ("sent", "refused", "failed", "pending")},
        "refused_by_rule": dict(sorted(by_rule.items())),
        "by_stage": dict(sorted(by_stage.items())),
        "by_locale": dict(sorted(by_locale.items())),
        "providers": sorted(providers),
        "actions": {row.kind: row.n for row in actions},
    }
