"""The scorecard: the score scale of docs/formulas.md, bins, points, reasons, training, PSI."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from receivables.config import ScorePolicy
from receivables.risk.scorecard import (
    Scorecard,
    discrimination,
    grade_of,
    monotone_bins,
    pd_from_score,
    psi,
    rules_scorecard,
    score_from_pd,
    train_scorecard,
)

POLICY = ScorePolicy()


def test_domain_scale():
    assert POLICY.factor == pytest.approx(28.854, abs=1e-3)
    assert POLICY.offset == pytest.approx(487.12, abs=1e-2)
    assert score_from_pd(0.05, POLICY.factor, POLICY.offset) == pytest.approx(572.1, abs=0.05)
    assert score_from_pd(1 / 51, POLICY.factor, POLICY.offset) == pytest.approx(600.0)
    assert pd_from_score(572.08, POLICY.factor, POLICY.offset) == pytest.approx(0.05, abs=1e-4)


@pytest.mark.parametrize(
    ("pd_", "grade"),
    [
        (0.0, "A"),
        (0.0099, "A"),
        (0.01, "B"),
        (0.0299, "B"),
        (0.03, "C"),
        (0.0799, "C"),
        (0.08, "D"),
        (0.1999, "D"),
        (0.2, "E"),
        (0.9, "E"),
    ],
)
def test_grades_by_pd(pd_, grade):
    assert grade_of(np.array([pd_]), POLICY.grade_pd_bounds)[0] == grade


def _customer(**values):
    row = {
        "worst_dpd_12m": 0.0,
        "late_share_12m": 0.0,
        "overdue_share": 0.0,
        "utilisation": 0.2,
        "tenure_months": 12.0,
        "late_12m": 0,
        "due_12m": 6,
        "partial_12m": 0,
        "issued_12m": 6,
        "disputed_12m": 0,
    }
    row.update(values)
    return pd.DataFrame([row])


def test_points_of_a_known_customer_on_the_rules_card():
    card = rules_scorecard(POLICY)
    frame = _customer(
        worst_dpd_12m=45.0,
        late_share_12m=0.5,
        late_12m=3,
        due_12m=6,
        overdue_share=0.0,
        utilisation=float("nan"),
        tenure_months=12.0,
    )
    scored = card.score(frame).iloc[0]
    # 600 base; 45 days: -25; 50 % late: -20; nothing overdue: +5; no limit: 0; tenure: 0
    assert scored["score"] == pytest.approx(560.0)
    expected_pd = 1 / (1 + math.exp((560 - POLICY.offset) / POLICY.factor))
    assert scored["pd"] == pytest.approx(expected_pd)
    assert scored["grade"] == "C"  # PD 7.6 %
    assert scored["reasons"] == (
        "an invoice of the last 12 months was 45 days past due; "
        "paid 3 of the last 6 invoices more than 30 days late; "
        "has no credit limit on file"
    )


def test_a_customer_without_weakness_says_so():
    scored = rules_scorecard(POLICY).score(_customer(tenure_months=12.0, utilisation=0.1)).iloc[0]
    assert scored["score"] == pytest.approx(640.0)
    assert scored["grade"] == "A"
    assert scored["reasons"] == "no weakness: best band on every factor"


def _synthetic(n: int, seed: int):
    rng = np.random.default_rng(seed)
    late = rng.exponential(20, n)
    share = rng.beta(1, 4, n)
    noise = rng.normal(size=n)
    logit = -4 + 0.05 * late + 3 * share
    bad = rng.random(n) < 1 / (1 + np.exp(-logit))
    frame = pd.DataFrame(
        {
            "worst_dpd_12m": late,
            "late_share_12m": share,
            "noise": noise,
            "late_12m": 1,
            "due_12m": 4,
        }
    )
    return frame, bad


def test_bins_are_monotone_and_big_enough():
    frame, bad = _synthetic(20_000, 1)
    bins = monotone_bins("worst_dpd_12m", frame["worst_dpd_12m"].to_numpy(), bad)
    assert len(bins.points) >= 3
    assert all(b >= a for a, b in zip(bins.bad_rates, bins.bad_rates[1:], strict=False))
    assert all(c >= 0.05 * len(frame) for c in bins.counts)
    assert all(b <= a for a, b in zip(bins.woe, bins.woe[1:], strict=False))  # ln(good/bad)


def test_missing_values_get_their_own_bin():
    frame, bad = _synthetic(5_000, 2)
    x = frame["late_share_12m"].to_numpy().copy()
    x[:1000] = np.nan
    bad = bad.copy()
    bad[:1000] = True  # customers with no history here are all bad: a strong signal
    bins = monotone_bins("late_share_12m", x, bad)
    assert bins.missing_woe < min(bins.woe)


def test_training_finds_the_signal_and_validates_out_of_sample():
    frame, bad = _synthetic(30_000, 3)
    card = train_scorecard(
        frame.iloc[:20_000], bad[:20_000], ["worst_dpd_12m", "late_share_12m", "noise"], POLICY
    )
    names = [f.name for f in card.features]
    assert "worst_dpd_12m" in names
    assert "late_share_12m" in names
    assert all(f.coefficient < 0 for f in card.features)
    assert "noise" in card.info["dropped"] or "noise" not in names
    held = card.score(frame.iloc[20_000:])
    metrics = discrimination(bad[20_000:], held["pd"].to_numpy())
    assert metrics["auc"] > 0.7
    assert metrics["gini"] == pytest.approx(2 * metrics["auc"] - 1)
    assert 0 < metrics["ks"] < 1
    # the stored definition scores identically
    again = Scorecard.from_json(card.to_json()).score(frame.iloc[20_000:])
    assert np.allclose(again["score"], held["score"])
    # points: higher WoE bins earn more points, and the scale maps them to PD
    worst = card.features[names.index("worst_dpd_12m")]
    assert worst.points == sorted(worst.points, reverse=True)


def test_population_stability():
    rng = np.random.default_rng(4)
    base = rng.normal(600, 30, 10_000)
    assert psi(base, rng.normal(600, 30, 10_000)) < 0.02
    assert psi(base, rng.normal(640, 30, 10_000)) > 0.25
