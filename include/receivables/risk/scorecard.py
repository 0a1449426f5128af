"""The credit scorecard: monotone bins, weight of evidence, logistic regression, points.

A scorecard is a table of points: for every feature, bins of its values and the points a
customer earns in each; the score is the base points plus the points of the customer's bins.
The scale is fixed by the policy (docs/formulas.md): score = offset + factor × ln(odds
good:bad), with factor = PDO / ln 2 and offset = base − factor × ln(base odds), so the score
maps back to a probability of default (PD) and the PD to a grade A–E.

Training (:func:`train_scorecard`): each feature is cut at quantiles, adjacent bins are merged
until the bad rate moves in one direction only (monotone, so the points make sense to a credit
officer) and every bin is big enough; each bin's weight of evidence is ln(share of goods ÷ share
of bads); a logistic regression on the WoE values weighs the features (features whose weight
comes out with the wrong sign are dropped, then the model is fitted again); the points of a bin
are −factor × weight × WoE.

While there is not enough history to train, :func:`rules_scorecard` — a transparent,
hand-written points table on the same features — serves instead.

Reasons: a customer's top reasons are the features that cost it the most points against that
feature's best bin, said in plain words with the customer's own figures.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from receivables.config import ScorePolicy

GRADES = ("A", "B", "C", "D", "E")


@dataclass
class FeatureBins:
    """Bins of one feature: bin *i* holds values in (edges[i-1], edges[i]]; the last is open."""

    name: str
    edges: list[float]  # upper bounds of all bins but the last
    points: list[float]
    missing_points: float = 0.0
    woe: list[float] = field(default_factory=list)
    missing_woe: float = 0.0
    counts: list[int] = field(default_factory=list)
    bad_rates: list[float] = field(default_factory=list)
    iv: float = 0.0
    coefficient: float | None = None

    def bin_of(self, values: np.ndarray) -> np.ndarray:
        """Bin index of each value; -1 for missing values."""
        index = np.searchsorted(np.asarray(self.edges, dtype=float), values, side="left")
        return np.where(np.isnan(values), -1, index)

    def points_of(self, values: np.ndarray) -> np.ndarray:
        """Points earned by each value."""
        index = self.bin_of(values)
        table = np.asarray([*self.points, self.missing_points], dtype=float)
        return table[np.where(index < 0, len(self.points), index)]

    @property
    def best_points(self) -> float:
        """The most points this feature can give."""
        return max([*self.points, self.missing_points])

    def label(self, i: int) -> str:
        """The range of bin ``i`` in words."""
        if i < 0:
            return "missing"
        low = "-inf" if i == 0 else f"{self.edges[i - 1]:g}"
        high = "+inf" if i == len(self.edges) else f"{self.edges[i]:g}"
        return f"({low}, {high}]"


@dataclass
class Scorecard:
    """A complete scorecard: base points, feature bins, the scale and the grade bounds."""

    kind: str  # "scorecard" (trained) or "rules"
    base_points: float
    features: list[FeatureBins]
    factor: float
    offset: float
    grade_pd_bounds: dict[str, float]
    intercept: float | None = None
    info: dict = field(default_factory=dict)

    def to_json(self) -> str:
        """The definition stored with the model."""
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Scorecard:
        """A scorecard from its stored definition."""
        data = json.loads(text)
        data["features"] = [FeatureBins(**f) for f in data["features"]]
        return cls(**data)

    def score(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Score, PD, grade and reasons of every row of ``frame`` (the features' columns)."""
        points = {f.name: f.points_of(frame[f.name].to_numpy(dtype=float)) for f in self.features}
        total = self.base_points + sum(points.values(), np.zeros(len(frame)))
        pd_ = pd_from_score(total, self.factor, self.offset)
        out = pd.DataFrame(
            {"score": np.round(total, 2), "pd": pd_, "grade": grade_of(pd_, self.grade_pd_bounds)},
            index=frame.index,
        )
        out["reasons"] = reasons(self, frame, points)
        return out


def score_from_pd(pd_: np.ndarray | float, factor: float, offset: float) -> np.ndarray:
    """Score of a probability of default: offset + factor × ln((1 − PD) / PD)."""
    p = np.asarray(pd_, dtype=float)
    return offset + factor * np.log((1 - p) / p)


def pd_from_score(score: np.ndarray | float, factor: float, offset: float) -> np.ndarray:
    """Probability of default of a score (the inverse of :func:`score_from_pd`)."""
    return 1.0 / (1.0 + np.exp((np.asarray(score, dtype=float) - offset) / factor))


def grade_of(pd_: np.ndarray, bounds: dict[str, float]) -> np.ndarray:
    """Grade A–E by PD: A below the first bound, … E from the last bound up."""
    edges = np.asarray(list(bounds.values()), dtype=float)
    return np.asarray(GRADES)[np.searchsorted(edges, np.asarray(pd_, dtype=float), side="right")]


# --- reasons in plain words -----------------------------------------------------------------


def _pct(x: float) -> str:
    return f"{x:.0%}"


def _explain(name: str, row: dict) -> str:
    value = row[name]
    if name.startswith("worst_dpd_"):
        months = name.rsplit("_", 1)[1].removesuffix("m")
        return f"an invoice of the last {months} months was {value:.0f} days past due"
    if name.startswith("avg_dpd_"):
        months = name.rsplit("_", 1)[1].removesuffix("m")
        return f"paid on average {value:.0f} days late over the last {months} months"
    if name == "late_share_12m":
        return (
            f"paid {row['late_12m']:.0f} of the last {row['due_12m']:.0f} invoices more than "
            "30 days late"
        )
    if name == "partial_ratio_12m":
        return (
            f"paid {row['partial_12m']:.0f} of the last {row['due_12m']:.0f} invoices in "
            "instalments or only in part"
        )
    if name == "utilisation":
        if value != value:
            return "has no credit limit on file"
        return f"uses {_pct(value)} of its credit limit"
    if name == "tenure_months":
        return f"has been a customer for only {value:.0f} months"
    if name == "disputed_share_12m":
        return (
            f"disputed {row['disputed_12m']:.0f} of the {row['issued_12m']:.0f} invoices of the "
            "last 12 months"
        )
    if name == "overdue_share":
        return f"{_pct(value)} of what it owes is overdue"
    return f"{name} is {value:g}"


#: points lost below which a feature is not worth naming as a reason
MIN_POINTS_LOST = 0.5


def reasons(card: Scorecard, frame: pd.DataFrame, points: dict[str, np.ndarray]) -> list[str]:
    """For each row, the (up to three) features that cost it the most points against their
    best bin, in plain words with the row's own figures."""
    if not card.features or frame.empty:
        return [""] * len(frame)
    names = [f.name for f in card.features]
    lost = np.column_stack([card.features[i].best_points - points[n] for i, n in enumerate(names)])
    order = np.argsort(-lost, axis=1, kind="stable")[:, :3]
    columns = {c: frame[c].to_numpy() for c in frame.columns}
    texts = []
    for r in range(len(frame)):
        row = _Row(columns, r)
        words = [_explain(names[j], row) for j in order[r] if lost[r, j] > MIN_POINTS_LOST]
        texts.append("; ".join(words) if words else "no weakness: best band on every factor")
    return texts


class _Row:
    """One row of column arrays, read like a mapping (cheaper than DataFrame.iterrows)."""

    def __init__(self, columns: dict[str, np.ndarray], r: int):
        self._columns, self._r = columns, r

    def __getitem__(self, name: str):
        return self._columns[name][self._r]


# --- training --------------------------------------------------------------------------------


def _woe(goods: np.ndarray, bads: np.ndarray) -> np.ndarray:
    # +0.5 keeps a bin without goods or bads finite
    g = (goods + 0.5) / (goods.sum() + 0.5 * len(goods))
    b = (bads + 0.5) / (bads.sum() + 0.5 * len(bads))
    return np.log(g / b)


def monotone_bins(
    name: str, x: np.ndarray, y: np.ndarray, max_bins: int = 8, min_share: float = 0.05
) -> FeatureBins:
    """Cut ``x`` into at most ``max_bins`` bins whose bad rate only rises or only falls, each
    holding at least ``min_share`` of the rows; missing values get a bin of their own."""
    valid = ~np.isnan(x)
    xv, yv = x[valid], y[valid].astype(float)
    n = len(y)
    if len(xv) == 0:
        return FeatureBins(name=name, edges=[], points=[0.0])
    quantiles = np.unique(np.quantile(xv, np.linspace(0, 1, max_bins + 1)[1:-1]))
    edges = [float(q) for q in quantiles if q < xv.max()]

    def stats(edges: list[float]) -> tuple[np.ndarray, np.ndarray]:
        index = np.searchsorted(np.asarray(edges), xv, side="left")
        counts = np.bincount(index, minlength=len(edges) + 1).astype(float)
        bads = np.bincount(index, weights=yv, minlength=len(edges) + 1)
        return counts, bads

    counts, bads = stats(edges)
    with np.errstate(invalid="ignore", divide="ignore"):
        correlation = np.corrcoef(np.argsort(np.argsort(xv)), yv)[0, 1]
    direction = -1.0 if correlation < 0 else 1.0  # NaN (constant values) counts as rising
    while edges:
        counts, bads = stats(edges)
        rates = bads / np.maximum(counts, 1)
        small = counts < min_share * n
        steps = np.diff(rates) * direction
        if small.any():
            i = int(np.argmin(counts))
            drop = i - 1 if i == len(edges) else i  # merge with the neighbour above (or below)
            if i > 0 and i < len(edges) and counts[i - 1] < counts[i + 1]:
                drop = i - 1
        elif (steps < 0).any():
            drop = int(np.argmin(steps))  # the worst reversal: merge the two bins
        else:
            break
        edges.pop(drop)
    counts, bads = stats(edges)
    goods = counts - bads
    woe = _woe(goods, bads)
    missing = ~valid
    missing_woe = 0.0
    if missing.sum() >= min_share * n:
        m_bads = float(y[missing].sum())
        m_goods = float(missing.sum()) - m_bads
        total_goods, total_bads = goods.sum() + m_goods, bads.sum() + m_bads
        missing_woe = float(
            np.log(((m_goods + 0.5) / (total_goods + 0.5)) / ((m_bads + 0.5) / (total_bads + 0.5)))
        )
    shares_g = (goods + 0.5) / (goods.sum() + 0.5 * len(goods))
    shares_b = (bads + 0.5) / (bads.sum() + 0.5 * len(bads))
    iv = float(((shares_g - shares_b) * woe).sum())
    return FeatureBins(
        name=name,
        edges=edges,
        points=[0.0] * (len(edges) + 1),
        woe=[float(w) for w in woe],
        missing_woe=missing_woe,
        counts=[int(c) for c in counts],
        bad_rates=[float(b / c) if c else 0.0 for b, c in zip(bads, counts, strict=True)],
        iv=iv,
    )


def woe_matrix(bins: list[FeatureBins], frame: pd.DataFrame) -> np.ndarray:
    """The WoE value of every row for every binned feature."""
    columns = []
    for f in bins:
        index = f.bin_of(frame[f.name].to_numpy(dtype=float))
        table = np.asarray([*f.woe, f.missing_woe])
        columns.append(table[np.where(index < 0, len(f.woe), index)])
    return np.column_stack(columns) if columns else np.empty((len(frame), 0))


def train_scorecard(
    train: pd.DataFrame,
    target: np.ndarray,
    features: list[str],
    policy: ScorePolicy,
    min_iv: float = 0.02,
) -> Scorecard:
    """Fit a scorecard on ``train`` (feature columns) and ``target`` (True = bad)."""
    from sklearn.linear_model import LogisticRegression

    y = np.asarray(target, dtype=int)
    binned = [monotone_bins(f, train[f].to_numpy(dtype=float), y) for f in features]
    chosen = [b for b in binned if b.iv >= min_iv and len(b.woe) > 1]
    dropped = {
        b.name: f"information value {b.iv:.3f} below {min_iv}" for b in binned if b not in chosen
    }
    while True:
        model = LogisticRegression(C=1.0, max_iter=2000)
        x = woe_matrix(chosen, train)
        model.fit(x, y)
        coefficients = model.coef_[0]
        # WoE is ln(good/bad): a sound feature lowers the odds of bad as its WoE rises, so its
        # weight is negative; a positive weight comes from overlap with other features
        wrong = [i for i, c in enumerate(coefficients) if c >= 0]
        if not wrong or len(chosen) == 1:
            break
        worst = max(wrong, key=lambda i: coefficients[i])
        dropped[chosen[worst].name] = "weight with the wrong sign next to the other features"
        chosen.pop(worst)
    factor, offset = policy.factor, policy.offset
    intercept = float(model.intercept_[0])
    for f, coefficient in zip(chosen, coefficients, strict=True):
        f.coefficient = float(coefficient)
        f.points = [float(-factor * coefficient * w) for w in f.woe]
        f.missing_points = float(-factor * coefficient * f.missing_woe)
    return Scorecard(
        kind="scorecard",
        base_points=float(offset - factor * intercept),
        features=chosen,
        factor=factor,
        offset=offset,
        grade_pd_bounds=dict(policy.grade_pd_bounds),
        intercept=intercept,
        info={"dropped": dropped, "all_bins": [asdict(b) for b in binned]},
    )


def rules_scorecard(policy: ScorePolicy) -> Scorecard:
    """The transparent scorecard that serves until a model can be trained: points for worst
    days past due, late payment, overdue share, utilisation and tenure, on the same scale."""
    factor, offset = policy.factor, policy.offset
    features = [
        FeatureBins("worst_dpd_12m", [0, 30, 60, 90], [20.0, 0.0, -25.0, -45.0, -80.0]),
        FeatureBins("late_share_12m", [0.1, 0.3, 0.6], [10.0, 0.0, -20.0, -35.0], 0.0),
        FeatureBins("overdue_share", [0.0, 0.25, 0.5], [5.0, 0.0, -15.0, -30.0], 5.0),
        FeatureBins("utilisation", [0.5, 0.9, 1.0], [5.0, 0.0, -10.0, -30.0], 0.0),
        FeatureBins("tenure_months", [6], [-10.0, 0.0]),
    ]
    return Scorecard(
        kind="rules",
        base_points=float(policy.base_score),
        features=features,
        factor=factor,
        offset=offset,
        grade_pd_bounds=dict(policy.grade_pd_bounds),
        info={"note": "hand-written points; serves until a scorecard is trained and approved"},
    )


# --- evaluation ------------------------------------------------------------------------------


def discrimination(target: np.ndarray, pd_: np.ndarray) -> dict[str, float]:
    """AUC, KS and Gini of PDs against outcomes."""
    from sklearn.metrics import roc_auc_score, roc_curve

    y = np.asarray(target, dtype=int)
    if y.min() == y.max():
        return {"auc": math.nan, "ks": math.nan, "gini": math.nan}
    auc = float(roc_auc_score(y, pd_))
    fpr, tpr, _ = roc_curve(y, pd_)
    return {"auc": auc, "ks": float(np.max(tpr - fpr)), "gini": 2 * auc - 1}


def psi(expected: np.ndarray, actual: np.ndarray, bins: int = 10) -> float:
    """Population stability index of ``actual`` scores against ``expected`` ones (deciles of
    the expected distribution)."""
    expected = np.asarray(expected, dtype=float)
    actual = np.asarray(actual, dtype=float)
    if len(expected) == 0 or len(actual) == 0:
        return math.nan
    edges = np.unique(np.quantile(expected, np.linspace(0, 1, bins + 1)[1:-1]))
    e = np.bincount(np.searchsorted(edges, expected, side="right"), minlength=len(edges) + 1)
    a = np.bincount(np.searchsorted(edges, actual, side="right"), minlength=len(edges) + 1)
    e_share = np.maximum(e / e.sum(), 1e-6)
    a_share = np.maximum(a / a.sum(), 1e-6)
    return float(((a_share - e_share) * np.log(a_share / e_share)).sum())
