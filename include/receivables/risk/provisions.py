"""Roll rates and IFRS 9 provisions (simplified approach, migration method; docs/formulas.md).

* **Roll-rate history.** Month-end aging snapshots (computed from the ledger when missing) give,
  for every pair of consecutive month-ends, the bucket × bucket matrix by amount and count,
  ``paid`` included (``roll_rates``), kept as history.
* **Loss rates.** A bucket's roll rate is the share of its outstanding that sits in a worse
  bucket one *bucket-width* later: one month for the 30-day buckets, three months for 91-180,
  six for 181-360. (Measured month to month, a 180-day bucket would roll only a sixth of its
  balance and the chained loss rate would understate the loss several times over.) The loss
  rate of a bucket is the product of the average roll rates from it to ``361+`` (treated as
  loss, 100 %), averaged over the history window (default 12 months), times the
  forward-looking factor, capped at 100 %. Each currency has its own book and history; where a
  chain lacks enough observations the configured fallback rates apply, per bucket.
* **ECL** per open invoice = outstanding × its bucket's loss rate, rounded to the cent
  (``invoice_risk``), totalled per bucket, segment and currency.
"""

from __future__ import annotations

import calendar
import datetime as dt
import itertools
import logging
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from receivables.aging import ensure_snapshots
from receivables.config import AgingPolicy, Band, ProvisionPolicy
from receivables.risk.classification import substandard_from
from receivables.warehouse import sqlfiles
from receivables.warehouse.db import refresh_statistics
from receivables.warehouse.schema import (
    TOTAL,
    aging_runs,
    aging_snapshots,
    invoice_risk,
    invoices,
    provision_rates,
    roll_rates,
)
from receivables.warehouse.types import RATE_SCALE, quantize_rate

log = logging.getLogger(__name__)


def month_end(day: dt.date) -> dt.date:
    """The last day of ``day``'s month."""
    return day.replace(day=calendar.monthrange(day.year, day.month)[1])


def latest_month_end(as_of: dt.date) -> dt.date:
    """The newest month-end on or before ``as_of``."""
    if as_of == month_end(as_of):
        return as_of
    return as_of.replace(day=1) - dt.timedelta(days=1)


def months_back(end: dt.date, months: int) -> dt.date:
    """The month-end ``months`` months before the month-end ``end``."""
    index = end.year * 12 + end.month - 1 - months
    return month_end(dt.date(index // 12, index % 12 + 1, 1))


def roll_months(buckets: list[Band]) -> dict[str, int]:
    """Months over which each bucket's roll to the next one is observed: its width in months
    (at least one); the last, open bucket does not roll."""
    steps = {}
    for band in buckets[:-1]:
        width = band.max_days - band.min_days + 1
        steps[band.name] = max(1, round(width / 30))
    return steps


def exact_rate(value: Fraction | Decimal | int) -> Decimal:
    """An exact ratio as a stored rate: rounded half-up to
    :data:`~receivables.warehouse.types.RATE_SCALE` places."""
    if isinstance(value, Decimal):
        return quantize_rate(value)
    fraction = Fraction(value)
    scale = 10**RATE_SCALE
    units = (2 * fraction.numerator * scale + fraction.denominator) // (2 * fraction.denominator)
    return Decimal(units).scaleb(-RATE_SCALE)


def chain_loss_rates(
    rolls: list[Fraction | Decimal], factor: Decimal | Fraction = Decimal(1)
) -> list[Decimal]:
    """Loss rates from roll rates: the product of the rolls from each bucket to the last (whose
    loss rate is 1), times ``factor``, capped at 1 — computed exactly, then rounded half-up to
    the stored places. ``rolls`` has one rate per bucket but the last; the result has one per
    bucket.

    >>> rates = chain_loss_rates([Decimal(x) for x in ("0.1", "0.3", "0.5", "0.6", "0.7", "0.8")])
    >>> [f"{r:.5f}" for r in rates]
    ['0.00504', '0.05040', '0.16800', '0.33600', '0.56000', '0.80000', '1.00000']
    """
    rates = [Fraction(1)]
    for roll in reversed(rolls):
        rates.append(rates[-1] * Fraction(roll))
    rates.reverse()
    factor = Fraction(factor)
    return [
        exact_rate(1 if i == len(rates) - 1 else min(Fraction(1), r * factor))
        for i, r in enumerate(rates)
    ]


@dataclass
class ProvisionMatrix:
    """Loss rates of one currency's book (exact, as stored)."""

    currency: str
    buckets: list[str]
    roll_rates: dict[str, Decimal | None]
    observations: dict[str, int]
    loss_rates: dict[str, Decimal]
    methods: dict[str, str]
    steps: dict[str, int] = field(default_factory=dict)


def build_matrix(
    currency: str,
    observed: dict[str, list[Fraction]],
    aging: AgingPolicy,
    policy: ProvisionPolicy,
) -> ProvisionMatrix:
    """Loss rates of a book from its roll observations (per bucket, a list of exact monthly
    rates), falling back per bucket where a bucket of its chain has too few observations."""
    buckets = [b.name for b in aging.buckets]
    steps = roll_months(aging.buckets)
    averages: dict[str, Fraction | None] = {}
    counts: dict[str, int] = {}
    for name in buckets[:-1]:
        values = [Fraction(v) for v in observed.get(name, [])]
        counts[name] = len(values)
        averages[name] = sum(values, Fraction(0)) / len(values) if values else None
    counts[buckets[-1]] = 0
    averages[buckets[-1]] = None
    loss: dict[str, Decimal] = {}
    methods: dict[str, str] = {}
    for i, name in enumerate(buckets):
        chain = buckets[i:-1]
        enough = all(counts[b] >= policy.min_history_months for b in chain)
        if i == len(buckets) - 1:
            loss[name], methods[name] = exact_rate(1), "loss"
        elif enough:
            rolls = [averages[b] for b in chain]
            loss[name] = chain_loss_rates(rolls, policy.forward_looking_factor)[0]
            methods[name] = "roll_rates"
        else:
            loss[name], methods[name] = exact_rate(policy.fallback_rates[name]), "fallback"
    rolls_stored = {b: None if a is None else exact_rate(a) for b, a in averages.items()}
    return ProvisionMatrix(currency, buckets, rolls_stored, counts, loss, methods, steps)


def earliest_ledger_date(engine: Engine) -> dt.date | None:
    """The first issue date in the ledger."""
    first = sa.type_coerce(sa.func.min(invoices.c.issue_date), sa.Date())
    with engine.connect() as conn:
        return conn.execute(sa.select(first)).scalar()


def update_roll_rates(engine: Engine, month_ends: list[dt.date]) -> None:
    """Compute the monthly roll matrix of each consecutive pair of ``month_ends`` that has none
    yet, or whose snapshots were recomputed since (each matrix remembers the newest loaded file
    its two snapshots saw)."""
    r, a = roll_rates, aging_runs
    with engine.connect() as conn:
        done = dict(
            conn.execute(
                sa.select(r.c.month_end, sa.func.max(r.c.ledger_file_id)).group_by(r.c.month_end)
            ).all()
        )
        seen = dict(
            conn.execute(
                sa.select(a.c.as_of_date, a.c.ledger_file_id).where(a.c.as_of_date.in_(month_ends))
            ).all()
        )
    for previous, current in itertools.pairwise(month_ends):
        ledger_file_id = max(seen.get(previous) or 0, seen.get(current) or 0)
        if current in done and done[current] == ledger_file_id:
            continue
        with engine.begin() as conn:
            sqlfiles.execute(
                conn,
                "risk/roll_rates.sql",
                {
                    "month_end": current,
                    "previous_month_end": previous,
                    "ledger_file_id": ledger_file_id,
                },
                types={"month_end": sa.Date(), "previous_month_end": sa.Date()},
            )


def observe_rolls(
    engine: Engine, laters: list[dt.date], available: set[dt.date], aging: AgingPolicy
) -> dict[str, dict[str, list[Fraction]]]:
    """Roll observations per currency and bucket, one per month-end in ``laters`` whose
    bucket-width earlier month-end has a snapshot (``available``)."""
    steps = roll_months(aging.buckets)
    observed: dict[str, dict[str, list[Fraction]]] = {}
    statements = {}
    for later in laters:
        for step in sorted(set(steps.values())):
            earlier = months_back(later, step)
            if earlier not in available:
                continue
            if step not in statements:
                (statements[step],) = sqlfiles.render(
                    "risk/roll_observations.sql",
                    engine.dialect.name,
                    buckets=aging.buckets,
                    bucket_names=[b for b, months in steps.items() if months == step],
                )
            query = (
                sa.text(statements[step])
                .bindparams(
                    sa.bindparam("earlier", type_=sa.Date()),
                    sa.bindparam("later", type_=sa.Date()),
                )
                .columns(currency=sa.String(), bucket=sa.String(), base=TOTAL, rolled=TOTAL)
            )
            with engine.connect() as conn:
                rows = conn.execute(query, {"earlier": earlier, "later": later}).all()
            for currency, bucket, base, rolled in rows:
                if steps.get(bucket) != step or not base:
                    continue
                # exact: both sums are money, so the ratio is a ratio of integer cents
                observed.setdefault(currency, {}).setdefault(bucket, []).append(
                    Fraction(rolled) / Fraction(base)
                )
    return observed


def compute_provisions(
    engine: Engine, as_of: dt.date, aging: AgingPolicy, policy: ProvisionPolicy
) -> dict:
    """Roll-rate history, the provision matrix per currency and ECL per open invoice for
    ``as_of`` (whose aging snapshot and customer classes must exist). Idempotent."""
    latest = latest_month_end(as_of)
    longest = max(roll_months(aging.buckets).values())
    first = earliest_ledger_date(engine)
    window = [months_back(latest, n) for n in range(policy.history_months + longest, -1, -1)]
    if first is not None:
        window = [d for d in window if d >= month_end(first) or d == latest]
    ensure_snapshots(engine, window, aging)
    update_roll_rates(engine, window[-(policy.history_months + 1) :])
    # one observation per bucket and month of the history window (the later month-ends)
    observed_all = observe_rolls(engine, window[-policy.history_months :], set(window), aging)
    with engine.connect() as conn:
        currencies = sorted(
            conn.execute(
                sa.select(aging_snapshots.c.currency)
                .distinct()
                .where(aging_snapshots.c.as_of_date == as_of)
            ).scalars()
        )
    matrices = [build_matrix(c, observed_all.get(c, {}), aging, policy) for c in currencies]
    apply_matrices(engine, as_of, matrices, aging)
    return provision_summary(engine, as_of, matrices)


def apply_matrices(
    engine: Engine, as_of: dt.date, matrices: list[ProvisionMatrix], aging: AgingPolicy
) -> None:
    """Store the provision matrices of ``as_of`` and compute every open invoice's final class
    and ECL from them (``sql/risk/invoice_risk.sql``; the date's aging snapshot and customer
    classes must exist). Replaces the date's rows."""
    with engine.begin() as conn:
        conn.execute(provision_rates.delete().where(provision_rates.c.as_of_date == as_of))
        rows = [
            {
                "as_of_date": as_of,
                "currency": m.currency,
                "bucket": b,
                "roll_rate": m.roll_rates[b],
                "roll_months": m.steps.get(b),
                "loss_rate": m.loss_rates[b],
                "method": m.methods[b],
                "observations": m.observations[b],
            }
            for m in matrices
            for b in m.buckets
        ]
        if rows:
            conn.execute(provision_rates.insert(), rows)
    # without fresh statistics the planner takes the just-written tables for one row and
    # joins 5M invoices by nested loops (10 s instead of 1 s)
    refresh_statistics(engine, "provision_rates", "customer_risk_classes")
    with engine.begin() as conn:
        sqlfiles.execute(
            conn,
            "risk/invoice_risk.sql",
            {"as_of": as_of},
            types={"as_of": sa.Date()},
            substandard_from=substandard_from(aging),
        )
    refresh_statistics(engine, "invoice_risk")


def cure_rates(engine: Engine, month_end_day: dt.date) -> dict[str, Decimal]:
    """Per currency, the share of the overdue outstanding at the previous month-end that was
    paid or back to current at ``month_end_day`` (from the stored roll matrix)."""
    r = roll_rates
    overdue = r.c.from_bucket != "current"
    cured = sa.and_(overdue, r.c.to_bucket.in_(("paid", "current")))
    amount = sa.type_coerce(r.c.amount, r.c.amount.type)
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(
                r.c.currency,
                sa.type_coerce(sa.func.sum(sa.case((overdue, amount), else_=0)), amount.type),
                sa.type_coerce(sa.func.sum(sa.case((cured, amount), else_=0)), amount.type),
            )
            .where(r.c.month_end == month_end_day)
            .group_by(r.c.currency)
        ).all()
    return {currency: exact_rate(Fraction(c) / Fraction(o)) for currency, o, c in rows if o}


def provision_summary(engine: Engine, as_of: dt.date, matrices: list[ProvisionMatrix]) -> dict:
    """ECL totals per currency, bucket and segment (money as strings, exact)."""
    r = invoice_risk
    ecl = sa.type_coerce(sa.func.sum(r.c.ecl), r.c.ecl.type)
    out = sa.type_coerce(sa.func.sum(r.c.outstanding), r.c.outstanding.type)
    summary: dict = {
        "as_of_date": as_of.isoformat(),
        "by_currency": {},
        "by_bucket": {},
        "by_segment": {},
        "matrices": {},
    }
    with engine.connect() as conn:
        where = r.c.as_of_date == as_of
        for currency, total, outstanding in conn.execute(
            sa.select(r.c.currency, ecl, out).where(where).group_by(r.c.currency)
        ):
            summary["by_currency"][currency] = {"ecl": str(total), "outstanding": str(outstanding)}
        for column, key in ((r.c.bucket, "by_bucket"), (r.c.segment, "by_segment")):
            for name, currency, total in conn.execute(
                sa.select(column, r.c.currency, ecl).where(where).group_by(column, r.c.currency)
            ):
                summary[key].setdefault(name or "unknown", {})[currency] = str(total)
    latest = latest_month_end(as_of)
    summary["cure_rates"] = {
        "month_end": latest.isoformat(),
        "by_currency": {c: str(v) for c, v in cure_rates(engine, latest).items()},
    }
    for m in matrices:
        summary["matrices"][m.currency] = {
            b: {
                "loss_rate": str(m.loss_rates[b]),
                "method": m.methods[b],
                "observations": m.observations[b],
            }
            for b in m.buckets
        }
    return summary
