"""Credit models: monthly training with an approval gate, the registry, daily scoring.

* :func:`train_credit_model` (the ``credit_model`` DAG, monthly) builds the training set from
  the warehouse's own history — one row per customer and month-end whose 6-month outcome is
  already known — holds out the newest month-ends, fits a scorecard, measures AUC, KS and Gini
  on the held-out months and the population stability (PSI) of the score month over month,
  approves it when the policy's gate is met, writes the model card and registers the model.
* :func:`score_customers` (``receivables_risk``, daily) scores every customer with the latest
  model approved on or before the as-of date — a historical date uses the model it would have
  had — or, until one is, with the transparent rules scorecard.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from receivables.config import ScorePolicy
from receivables.dates import EARLIEST_AS_OF
from receivables.render import render
from receivables.risk.application import application_scores
from receivables.risk.features import (
    FEATURES,
    LedgerArrays,
    features_at,
    load_ledger,
    targets_at,
)
from receivables.risk.provisions import latest_month_end, months_back
from receivables.risk.scorecard import (
    Scorecard,
    discrimination,
    grade_of,
    psi,
    rules_scorecard,
    score_from_pd,
    train_scorecard,
)
from receivables.warehouse.bulk import write_arrow
from receivables.warehouse.schema import credit_models, credit_scores

log = logging.getLogger(__name__)

#: Month-ends of history a training set reaches back at most.
MAX_TRAINING_MONTHS = 24
#: Fewest bads for a fit (train) and for a meaningful validation (held-out months).
MIN_TRAIN_BADS = 30
MIN_HOLDOUT_BADS = 10


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)  # audit only


# --- the registry ----------------------------------------------------------------------------


def register(
    engine: Engine,
    card: Scorecard,
    trained_as_of: dt.date,
    status: str,
    reason: str,
    metrics: dict | None = None,
    card_path: str | None = None,
) -> int:
    """Store a model (replacing one of the same kind trained on the same date)."""
    metrics = metrics or {}
    values = {
        "trained_as_of": trained_as_of,
        "kind": card.kind,
        "status": status,
        "status_reason": reason,
        "auc": _finite(metrics.get("auc")),
        "ks": _finite(metrics.get("ks")),
        "gini": _finite(metrics.get("gini")),
        "psi": _finite(metrics.get("psi")),
        "train_rows": metrics.get("train_rows"),
        "holdout_rows": metrics.get("holdout_rows"),
        "definition": card.to_json(),
        "card_path": card_path,
        "created_at": _now(),
    }
    m = credit_models
    with engine.begin() as conn:
        existing = conn.execute(
            sa.select(m.c.model_id).where(m.c.trained_as_of == trained_as_of, m.c.kind == card.kind)
        ).scalar()
        if existing is None:
            return int(conn.execute(m.insert().values(**values)).inserted_primary_key[0])
        conn.execute(m.update().where(m.c.model_id == existing).values(**values))
        return int(existing)


def _finite(value) -> float | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else value


def rules_model(engine: Engine, policy: ScorePolicy) -> int:
    """The rules scorecard's registry entry (created on first use, dated 2000-01-01 so that it
    serves every date until a trained model is approved)."""
    card = rules_scorecard(policy)
    m = credit_models
    with engine.connect() as conn:
        found = conn.execute(
            sa.select(m.c.model_id, m.c.definition).where(m.c.kind == "rules")
        ).first()
    if found is not None and found.definition == card.to_json():
        return int(found.model_id)
    return register(
        engine,
        card,
        EARLIEST_AS_OF,
        "approved",
        "transparent rules: serves until a trained scorecard is approved",
    )


def current_model(engine: Engine, as_of: dt.date, policy: ScorePolicy) -> tuple[int, Scorecard]:
    """The newest model approved on or before ``as_of`` (a trained scorecard before rules)."""
    rules_id = rules_model(engine, policy)
    m = credit_models
    with engine.connect() as conn:
        row = conn.execute(
            sa.select(m.c.model_id, m.c.definition)
            .where(m.c.status == "approved", m.c.trained_as_of <= as_of)
            .order_by(m.c.trained_as_of.desc(), (m.c.kind == "rules").asc())
            .limit(1)
        ).first()
    if row is None:
        row = (rules_id, rules_scorecard(policy).to_json())
    return int(row[0]), Scorecard.from_json(row[1])


# --- daily scoring ---------------------------------------------------------------------------


def score_customers(
    engine: Engine, as_of: dt.date, policy: ScorePolicy, ledger: LedgerArrays | None = None
) -> dict:
    """Score every customer on the book and replace that date's scores: customers with an
    invoice on or before ``as_of`` by the model in force (behaviour), the others by how new
    customers fared (application scores, :mod:`receivables.risk.application`)."""
    started = time.monotonic()
    model_id, card = current_model(engine, as_of, policy)
    ledger = ledger if ledger is not None else load_ledger(engine)
    frame = features_at(ledger, as_of)
    scored = card.score(frame)
    without = np.setdiff1d(np.arange(ledger.customers), frame.index.to_numpy())
    applied = application_scores(ledger, as_of, without, policy)
    app_scores = np.round(score_from_pd(applied.pd, card.factor, card.offset), 2)
    count = len(frame) + len(without)
    rows = pa.table(
        {
            "as_of_date": pa.array([as_of] * count, pa.date32()),
            "customer_id": pa.array(
                frame["customer_id"].tolist() + ledger.customer_ids[without].tolist(),
                pa.string(),
            ),
            "model_id": pa.array([model_id] * count, pa.int64()),
            "score": pa.array(np.r_[scored["score"].to_numpy(), app_scores], pa.float64()),
            "pd": pa.array(np.r_[scored["pd"].to_numpy(), applied.pd], pa.float64()),
            "grade": pa.array(
                scored["grade"].tolist() + grade_of(applied.pd, card.grade_pd_bounds).tolist(),
                pa.string(),
            ),
            "reasons": pa.array(scored["reasons"].tolist() + applied.reasons, pa.string()),
            "basis": pa.array(["behaviour"] * len(frame) + ["application"] * len(without)),
        }
    )
    with engine.begin() as conn:
        conn.execute(credit_scores.delete().where(credit_scores.c.as_of_date == as_of))
        write_arrow(conn, credit_scores.name, rows)
    grades = pd.Series(rows.column("grade").to_pylist(), dtype=object).value_counts()
    grades = grades.reindex(list("ABCDE"), fill_value=0)
    summary = {
        "as_of_date": as_of.isoformat(),
        "model_id": model_id,
        "model_kind": card.kind,
        "customers": count,
        "application_scored": len(without),
        "grades": {g: int(n) for g, n in grades.items()},
        "seconds": round(time.monotonic() - started, 2),
    }
    log.info(
        "scored %d customers with model %d (%s), %d of them without history: %s",
        count,
        model_id,
        card.kind,
        len(without),
        summary["grades"],
    )
    return summary


# --- monthly training ------------------------------------------------------------------------


@dataclass
class TrainingSet:
    """Customer × month-end rows with features and the observed outcome."""

    frame: pd.DataFrame
    target: np.ndarray
    months: list[dt.date]
    skipped: dict[str, int] = field(default_factory=dict)


def training_set(ledger: LedgerArrays, as_of: dt.date, policy: ScorePolicy) -> TrainingSet:
    """Rows for every month-end whose horizon has passed by ``as_of`` and before which the
    ledger holds a full year (the longest feature window: earlier month-ends would see
    truncated features and teach the model the ledger's age); customers already
    ``bad_days_past_due`` past due at a month-end are not in that month's population."""
    last = months_back(latest_month_end(as_of), policy.horizon_months)
    first_issue = int(ledger.inv_issue.min()) if len(ledger.inv_issue) else None
    months = [months_back(last, n) for n in range(MAX_TRAINING_MONTHS - 1, -1, -1)]
    if first_issue is not None:
        earliest = dt.date(1970, 1, 1) + dt.timedelta(days=first_issue + 365)
        months = [m for m in months if m >= earliest]
    frames, targets, already_bad = [], [], 0
    for month in months:
        features = features_at(ledger, month)
        healthy = features["worst_open_dpd"] < policy.bad_days_past_due
        already_bad += int((~healthy).sum())
        features = features[healthy]
        horizon = months_back(month, -policy.horizon_months)
        bad = targets_at(ledger, month, horizon, policy.bad_days_past_due)[features.index]
        features = features.assign(month_end=month)
        frames.append(features)
        targets.append(bad)
    frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=FEATURES)
    target = np.concatenate(targets) if targets else np.zeros(0, dtype=bool)
    return TrainingSet(frame, target, months, {"already_bad_rows": already_bad})


def train_credit_model(
    engine: Engine, as_of: dt.date, policy: ScorePolicy, reports_dir: Path
) -> dict:
    """Train, validate, gate, document and register the month's scorecard."""
    started = time.monotonic()
    ledger = load_ledger(engine)
    data = training_set(ledger, as_of, policy)
    summary: dict = {
        "as_of_date": as_of.isoformat(),
        "months": [m.isoformat() for m in data.months],
    }
    if len(data.months) < policy.min_training_months:
        summary.update(
            status="insufficient_history",
            reason=f"{len(data.months)} month-end(s) with a known {policy.horizon_months}-month "
            f"outcome; {policy.min_training_months} needed: the rules scorecard stays in use",
        )
        log.warning("credit model %s: %s", as_of, summary["reason"])
        return summary
    holdout_months = set(data.months[-policy.holdout_months :])
    in_holdout = data.frame["month_end"].isin(holdout_months).to_numpy()
    train, holdout = data.frame[~in_holdout], data.frame[in_holdout]
    y_train, y_holdout = data.target[~in_holdout], data.target[in_holdout]
    if y_train.sum() < MIN_TRAIN_BADS or y_holdout.sum() < MIN_HOLDOUT_BADS:
        summary.update(
            status="insufficient_history",
            reason=f"{int(y_train.sum())} bad outcome(s) to train on and {int(y_holdout.sum())} "
            f"held out; at least {MIN_TRAIN_BADS} and {MIN_HOLDOUT_BADS} needed: the rules "
            "scorecard stays in use",
        )
        log.warning("credit model %s: %s", as_of, summary["reason"])
        return summary
    card = train_scorecard(train, y_train, list(FEATURES), policy)
    train_scores = card.score(train)
    holdout_scores = card.score(holdout)
    metrics = discrimination(y_holdout, holdout_scores["pd"].to_numpy())
    metrics["train"] = discrimination(y_train, train_scores["pd"].to_numpy())
    metrics["psi"] = psi(train_scores["score"].to_numpy(), holdout_scores["score"].to_numpy())
    all_scores = pd.concat([train_scores, holdout_scores])
    month_of = pd.concat([train["month_end"], holdout["month_end"]])
    series = []
    for previous, current in zip(data.months, data.months[1:], strict=False):
        series.append(
            {
                "month_end": current.isoformat(),
                "psi": psi(
                    all_scores["score"][month_of == previous].to_numpy(),
                    all_scores["score"][month_of == current].to_numpy(),
                ),
            }
        )
    metrics.update(
        train_rows=len(train),
        holdout_rows=len(holdout),
        train_bad_rate=float(y_train.mean()),
        holdout_bad_rate=float(y_holdout.mean()),
        psi_month_over_month=series,
    )
    problems = []
    if not metrics["auc"] >= policy.min_auc:
        problems.append(f"held-out AUC {metrics['auc']:.3f} below {policy.min_auc}")
    if not metrics["psi"] <= policy.max_psi:
        problems.append(f"PSI {metrics['psi']:.3f} above {policy.max_psi}")
    status = "rejected" if problems else "approved"
    reason = "; ".join(problems) or (
        f"held-out AUC {metrics['auc']:.3f} ≥ {policy.min_auc} and PSI {metrics['psi']:.3f} ≤ "
        f"{policy.max_psi}"
    )
    path = reports_dir / "models" / f"credit-model-{as_of.isoformat()}.md"
    model_id = register(engine, card, as_of, status, reason, metrics, str(path))
    write_model_card(path, model_id, as_of, card, data, metrics, status, reason, policy)
    (path.with_suffix(".json")).write_text(card.to_json(), encoding="utf-8")
    summary.update(
        status=status,
        reason=reason,
        model_id=model_id,
        auc=round(metrics["auc"], 4),
        ks=round(metrics["ks"], 4),
        gini=round(metrics["gini"], 4),
        psi=round(metrics["psi"], 4),
        features=[f.name for f in card.features],
        model_card=str(path),
        seconds=round(time.monotonic() - started, 1),
    )
    log.info("credit model %s: %s (%s)", as_of, status, reason)
    return summary


def write_model_card(
    path: Path,
    model_id: int,
    as_of: dt.date,
    card: Scorecard,
    data: TrainingSet,
    metrics: dict,
    status: str,
    reason: str,
    policy: ScorePolicy,
) -> None:
    """The model card (Markdown): data, method, bins and points, validation, decision."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = render(
        "reports/model_card.md",
        model_id=model_id,
        as_of=as_of,
        card=card,
        months=data.months,
        holdout=data.months[-policy.holdout_months :],
        metrics=metrics,
        status=status,
        reason=reason,
        policy=policy,
        rows=len(data.frame),
        bad_rate=float(data.target.mean()) if len(data.target) else 0.0,
        skipped=data.skipped,
        json=json,
    )
    path.write_text(text, encoding="utf-8")
