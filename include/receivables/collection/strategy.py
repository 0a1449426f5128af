"""The dunning strategy (``include/collection/strategy.yaml``), loaded and validated.

The strategy is configuration that management may change: the stages of the reminder ladder
and the faster one for high-risk customers, the contact rules, the timing, the batch sizes, and
what every email says about paying. ``RECEIVABLES_STRATEGY`` names another file. Every value is
checked when loaded; a bad one is refused naming its key.
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from functools import cache
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from receivables.config import ConfigError
from receivables.paths import INCLUDE_DIR

DEFAULT_STRATEGY_FILE = INCLUDE_DIR / "collection" / "strategy.yaml"
LOCALES = ("en", "zh-CN")
ACTION_KINDS = ("call", "visit")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Stage(_Strict):
    """One rung of the ladder: due from ``days_past_due`` of the customer's oldest invoice."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_]{0,31}$")
    days_past_due: int = Field(ge=-60, le=3650)
    mentions_legal: bool = False
    actions: tuple[str, ...] = ()
    #: sent only when an earlier stage went for the same debt at least this many days before;
    #: until then the customer is at the latest stage without this condition (a final notice
    #: never comes out of the blue)
    after_previous_days: int | None = Field(default=None, ge=1, le=365)

    @field_validator("actions")
    @classmethod
    def _actions(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        unknown = sorted(set(v) - set(ACTION_KINDS))
        if unknown:
            raise ValueError(f"unknown action(s) {unknown}: expected {list(ACTION_KINDS)}")
        return v


class EarlyCollection(_Strict):
    """The faster ladder: its grades and each stage's day on it."""

    grades: tuple[str, ...] = ("D", "E")
    stages: dict[str, int] = Field(default_factory=dict)

    @field_validator("grades")
    @classmethod
    def _grades(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        unknown = sorted(set(v) - set("ABCDE"))
        if unknown:
            raise ValueError(f"unknown grade(s) {unknown}: expected A to E")
        return v


class ContactRules(_Strict):
    """When and how often a customer may be contacted."""

    window_start: dt.time = dt.time(8, 0)
    window_end: dt.time = dt.time(21, 0)
    max_per_day: int = Field(default=1, ge=1, le=10)
    max_per_week: int = Field(default=3, ge=1, le=70)
    limitation_years: int = Field(default=3, ge=1, le=30)

    @model_validator(mode="after")
    def _window(self) -> ContactRules:
        if self.window_end <= self.window_start:
            raise ValueError(
                f"contact.window_end {self.window_end} must be after window_start "
                f"{self.window_start}"
            )
        if self.max_per_week < self.max_per_day:
            raise ValueError("contact.max_per_week cannot be below max_per_day")
        return self


class Timing(_Strict):
    """When in the day, and by which habit, reminders are delivered."""

    preferred_hour: int = Field(default=10, ge=0, le=23)
    lead_days: int = Field(default=1, ge=0, le=3)
    horizon_hours: int = Field(default=72, ge=1, le=72)
    habit_min_payments: int = Field(default=3, ge=2)
    habit_min_share: float = Field(default=0.5, gt=0, le=1)
    habit_lookback_days: int = Field(default=365, ge=30, le=3650)


class Sending(_Strict):
    """Batches and request concurrency."""

    #: at most 10 000: a batch's customers and addresses are looked up in IN-lists, and
    #: PostgreSQL takes at most 65 535 parameters a statement
    batch_size: int = Field(default=500, ge=1, le=10_000)
    concurrency: int = Field(default=8, ge=1, le=64)
    max_attempts: int = Field(default=5, ge=1, le=10)
    #: a reminder whose planned moment passed longer ago than this is not sent through SendGrid
    #: (a backfill of an old date must not email customers about it today); the ``.eml``
    #: outbox, which contacts nobody, still gets it
    max_delay_hours: int = Field(default=48, ge=1, le=24 * 30)


Localized = dict[str, str]


def _localized(value: Localized, key: str) -> Localized:
    missing = [loc for loc in LOCALES if not (value.get(loc) or "").strip()]
    if missing:
        raise ValueError(f"{key}: no text for locale(s) {missing}")
    return value


class ContactDetails(_Strict):
    """Whom a customer can reach when no collector is assigned."""

    team_name: Localized
    team_email: str = Field(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
    team_phone: str

    @field_validator("team_name")
    @classmethod
    def _name(cls, v: Localized) -> Localized:
        return _localized(v, "contact_details.team_name")


class Payment(_Strict):
    """How to pay: printed in every reminder."""

    beneficiary: Localized
    bank: Localized
    account: str = Field(min_length=1)
    reference: str = Field(default="customer_id", pattern=r"^customer_id$")

    @field_validator("beneficiary", "bank")
    @classmethod
    def _texts(cls, v: Localized, info) -> Localized:
        return _localized(v, f"payment.{info.field_name}")


class LateInterest(_Strict):
    """Late interest claimed on each invoice from its due date (simple interest, actual/365)."""

    annual_rate: Decimal = Field(ge=0, le=1)


class Legal(_Strict):
    """When collection gives up and a case goes to the legal team, and who approves it."""

    #: the customer's worst open invoice must be at least this many days past due
    min_days_past_due: int = Field(default=90, ge=1, le=3650)
    #: the claim (per currency) must reach this; a currency not listed is never escalated
    min_outstanding: dict[str, Decimal] = Field(default_factory=lambda: {"CNY": Decimal(10000)})
    #: the final notice must have been sent (and not bounced) at least this many days before
    final_notice_stage: str = "final_notice"
    final_notice_days: int = Field(default=10, ge=0, le=365)
    #: claims below this (per currency) are approved without a person; absent: never
    auto_approve_below: dict[str, Decimal] = Field(default_factory=dict)
    #: how long a proposed case waits for a decision in Airflow before it is left proposed
    review_hours: int = Field(default=72, ge=1, le=24 * 30)
    #: a rejected customer is not proposed again before this many days
    rejected_cooldown_days: int = Field(default=30, ge=0, le=3650)
    late_interest: LateInterest | None = None
    #: who receives the case files
    recipients: tuple[str, ...] = Field(min_length=1)

    @field_validator("min_outstanding", "auto_approve_below")
    @classmethod
    def _amounts(cls, v: dict[str, Decimal], info) -> dict[str, Decimal]:
        for currency, amount in v.items():
            if not re.fullmatch(r"[A-Z]{3}", currency):
                raise ValueError(f"legal.{info.field_name}: {currency!r} is not a currency code")
            if amount < 0:
                raise ValueError(f"legal.{info.field_name}.{currency}: must not be negative")
        return v

    @field_validator("recipients")
    @classmethod
    def _recipients(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        bad = [a for a in v if not re.fullmatch(r"[^@\s;,]+@[^@\s;,]+\.[^@\s;,]+", a)]
        if bad:
            raise ValueError(f"legal.recipients: not an email address: {bad}")
        return v


class Strategy(_Strict):
    """The whole dunning strategy."""

    version: str = Field(min_length=1, max_length=64)
    stages: tuple[Stage, ...]
    early_collection: EarlyCollection = Field(default_factory=EarlyCollection)
    contact: ContactRules = Field(default_factory=ContactRules)
    timing: Timing = Field(default_factory=Timing)
    sending: Sending = Field(default_factory=Sending)
    contact_details: ContactDetails
    payment: Payment
    #: absent: no customer is ever proposed for a legal case
    legal: Legal | None = None

    @model_validator(mode="after")
    def _ladders(self) -> Strategy:
        names = [s.name for s in self.stages]
        if not names:
            raise ValueError("stages: at least one stage is needed")
        if len(set(names)) != len(names):
            raise ValueError(f"stages: names must be unique, got {names}")
        for ladder, days in (("stages", [s.days_past_due for s in self.stages]),):
            if days != sorted(set(days)):
                raise ValueError(f"{ladder}: days_past_due must rise strictly, got {days}")
        early = self.early_collection.stages
        unknown = sorted(set(early) - set(names))
        if unknown:
            raise ValueError(f"early_collection.stages: unknown stage(s) {unknown}")
        days = [early.get(s.name, s.days_past_due) for s in self.stages]
        if days != sorted(set(days)):
            raise ValueError(f"early_collection.stages: days must rise strictly, got {days}")
        if any(s.mentions_legal and s.days_past_due < 1 for s in self.stages):
            raise ValueError("stages: only a stage past the due date may mention legal action")
        if self.legal and self.legal.final_notice_stage not in names:
            raise ValueError(
                f"legal.final_notice_stage: {self.legal.final_notice_stage!r} is not a stage"
            )
        return self

    def ladder(self, early: bool) -> list[tuple[Stage, int]]:
        """The stages with the day each is due on the standard or the early ladder."""
        overrides = self.early_collection.stages if early else {}
        return [(s, overrides.get(s.name, s.days_past_due)) for s in self.stages]

    def stage_for(self, days_past_due: int, early: bool) -> Stage | None:
        """The stage a customer is at when its oldest invoice is ``days_past_due`` (the last
        stage whose day has come), or None before the first."""
        reached = [s for s, day in self.ladder(early) if days_past_due >= day]
        return reached[-1] if reached else None

    def stage_due(
        self, days_past_due: int, early: bool, sent: dict[str, dt.date], as_of: dt.date
    ) -> Stage | None:
        """The stage due on ``as_of`` for a debt whose oldest invoice is ``days_past_due``, given
        the stages ``sent`` for it so far (name -> date): the reached stage, or — while its
        ``after_previous_days`` condition is not met — the latest reached stage without one."""
        reached = [s for s, day in self.ladder(early) if days_past_due >= day]
        for stage in reversed(reached):
            if stage.after_previous_days is None:
                return stage
            earlier = [
                d
                for name, d in sent.items()
                if name in self._ranks and self.rank(name) < self.rank(stage.name)
            ]
            if any((as_of - d).days >= stage.after_previous_days for d in earlier):
                return stage
        return None

    @property
    def _ranks(self) -> dict[str, int]:
        return {s.name: i for i, s in enumerate(self.stages)}

    def rank(self, stage: str) -> int:
        """Position of ``stage`` on the ladder (0 first)."""
        return self._ranks[stage]


@cache
def _load(path: Path, stamp: float) -> Strategy:
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"no dunning strategy at {path}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of strategy settings")
    try:
        return Strategy.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'strategy'}: {err['msg']}"
            for err in exc.errors()
        )
        raise ConfigError(f"{path}: {problems}") from None


def load_strategy(path: Path | None = None) -> Strategy:
    """The strategy in ``path`` (default: the project's ``include/collection/strategy.yaml``),
    validated; re-read when the file changes."""
    path = (path or DEFAULT_STRATEGY_FILE).resolve()
    try:
        stamp = path.stat().st_mtime
    except FileNotFoundError:
        raise ConfigError(f"no dunning strategy at {path}") from None
    return _load(path, stamp)
