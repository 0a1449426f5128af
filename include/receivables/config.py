"""Configuration: where state lives (environment, CONTRACT §2) and the business policy.

Two kinds of settings:

* :class:`Settings` — the environment: ``RECEIVABLES_HOME``, ``RECEIVABLES_DB_URL``,
  ``RECEIVABLES_INBOX`` and a few optional variables, read when asked for (never at import time,
  so tests and the CLI can change them).
* :class:`Policy` — thresholds that management may change (aging buckets, the five-category
  classification). Defaults follow CONTRACT §5 and DOMAIN.md; a TOML file named by
  ``RECEIVABLES_CONFIG`` overrides them. Every value is validated when loaded, and a bad one is
  refused with a message that names the key and what was expected.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

DEFAULT_TIMEZONE = "Asia/Shanghai"


class ConfigError(ValueError):
    """A configuration value is missing or wrong; the message says which and what is expected."""


@dataclass(frozen=True)
class Settings:
    """The environment of one process: folders, warehouse URL, business time zone, mail."""

    home: Path
    db_url: str | None
    inbox: Path
    timezone: str
    alert_emails: tuple[str, ...]
    mail_from: str
    config_file: Path | None

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Settings:
        """Read the settings from ``environ`` (default: ``os.environ``)."""
        env = os.environ if environ is None else environ
        home = Path(env.get("RECEIVABLES_HOME") or "./var").expanduser().resolve()
        inbox = Path(env.get("RECEIVABLES_INBOX") or home / "inbox").expanduser().resolve()
        timezone = env.get("RECEIVABLES_TIMEZONE") or DEFAULT_TIMEZONE
        try:
            ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ConfigError(
                f"RECEIVABLES_TIMEZONE={timezone!r} is not an IANA time zone "
                "(expected e.g. Asia/Shanghai)"
            ) from None
        alerts = env.get("RECEIVABLES_ALERT_EMAILS") or "data-engineering@receivables.example.com"
        config_file = env.get("RECEIVABLES_CONFIG")
        return cls(
            home=home,
            db_url=env.get("RECEIVABLES_DB_URL") or None,
            inbox=inbox,
            timezone=timezone,
            alert_emails=tuple(a.strip() for a in alerts.replace(",", ";").split(";") if a.strip()),
            mail_from=env.get("RECEIVABLES_MAIL_FROM")
            or "Receivables Operations <receivables@receivables.example.com>",
            config_file=Path(config_file).expanduser().resolve() if config_file else None,
        )

    def warehouse_url(self, environ: dict[str, str] | None = None) -> str:
        """The warehouse URL outside Airflow: ``RECEIVABLES_DB_URL``, else the
        ``receivables_db`` connection given as ``AIRFLOW_CONN_RECEIVABLES_DB``, else SQLite.

        (Inside Airflow tasks, :func:`receivables.airflow.context.warehouse_url` also finds a
        ``receivables_db`` connection kept in Airflow's metadata database or secrets backend.)
        """
        if self.db_url:
            return self.db_url
        env = os.environ if environ is None else environ
        connection = env.get("AIRFLOW_CONN_RECEIVABLES_DB")
        if connection:
            return connection_url(connection)
        return self.default_db_url

    @property
    def default_db_url(self) -> str:
        """The embedded warehouse: ``sqlite:///$RECEIVABLES_HOME/warehouse.db``."""
        return f"sqlite:///{self.home / 'warehouse.db'}"

    @property
    def archive_dir(self) -> Path:
        """Loaded files, renamed with their checksum."""
        return self.home / "archive"

    @property
    def rejected_dir(self) -> Path:
        """Files refused whole, each with a ``.reason.txt`` beside it."""
        return self.home / "rejected"

    @property
    def outbox_dir(self) -> Path:
        """Emails written as ``.eml`` files when no SendGrid connection is configured."""
        return self.home / "outbox"

    @property
    def reports_dir(self) -> Path:
        """Reports and exports."""
        return self.home / "reports"

    @property
    def airflow_home(self) -> Path:
        """``AIRFLOW_HOME`` for the embedded Airflow (metadata DB, logs, config)."""
        return self.home / "airflow"

    @property
    def gx_root(self) -> Path:
        """Great Expectations project root: validation results and data docs."""
        return self.home

    @property
    def data_docs_index(self) -> Path:
        """The data docs page a data engineer opens."""
        return self.home / "gx" / "uncommitted" / "data_docs" / "local_site" / "index.html"

    @property
    def logs_dir(self) -> Path:
        """Logs of CLI runs."""
        return self.home / "logs"

    @cached_property
    def policy(self) -> Policy:
        """The business policy (defaults, or the TOML file named by ``RECEIVABLES_CONFIG``)."""
        return load_policy(self.config_file)


def connection_url(value: str) -> str:
    """A SQLAlchemy URL from an Airflow connection in URI or JSON form."""
    import json
    from urllib.parse import quote

    value = value.strip()
    if not value.startswith("{"):
        return value
    try:
        conn = json.loads(value)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"AIRFLOW_CONN_RECEIVABLES_DB is neither a URI nor JSON: {exc}") from None
    scheme = {"postgres": "postgresql", "postgresql": "postgresql", "sqlite": "sqlite"}.get(
        conn.get("conn_type", "")
    )
    if scheme is None:
        raise ConfigError(
            f"AIRFLOW_CONN_RECEIVABLES_DB: conn_type {conn.get('conn_type')!r} is not supported "
            "(expected postgres or sqlite)"
        )
    if scheme == "sqlite":
        return f"sqlite:///{conn.get('host') or conn.get('schema')}"
    auth = ""
    if conn.get("login"):
        auth = quote(conn["login"], safe="")
        if conn.get("password"):
            auth += ":" + quote(conn["password"], safe="")
        auth += "@"
    port = f":{conn['port']}" if conn.get("port") else ""
    return f"postgresql://{auth}{conn.get('host', 'localhost')}{port}/{conn.get('schema', '')}"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Band(_Strict):
    """A named range of days past due, ``min_days`` to ``max_days`` inclusive (None: open)."""

    name: str = Field(min_length=1, pattern=r"^[a-z0-9_+\-]+$")
    min_days: int = Field(ge=0)
    max_days: int | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _ordered(self) -> Band:
        if self.max_days is not None and self.max_days < self.min_days:
            raise ValueError(
                f"band {self.name!r}: max_days {self.max_days} is below min_days {self.min_days}"
            )
        return self


def _check_partition(bands: list[Band], what: str) -> list[Band]:
    """Bands must cover 0 days upwards without gap or overlap and end open-ended."""
    if not bands:
        raise ValueError(f"{what}: at least one band is needed")
    names = [b.name for b in bands]
    if len(set(names)) != len(names):
        raise ValueError(f"{what}: names must be unique, got {names}")
    expected_min = 0
    for band in bands:
        if band.min_days != expected_min:
            raise ValueError(
                f"{what}: band {band.name!r} starts at {band.min_days} days, expected "
                f"{expected_min} (bands must be in order, without gaps or overlaps)"
            )
        if band.max_days is None:
            if band is not bands[-1]:
                raise ValueError(f"{what}: only the last band may be open-ended ({band.name!r})")
            break
        expected_min = band.max_days + 1
    if bands[-1].max_days is not None:
        raise ValueError(f"{what}: the last band ({bands[-1].name!r}) must have no max_days")
    return bands


DEFAULT_BUCKETS = [
    Band(name="current", min_days=0, max_days=0),
    Band(name="1-30", min_days=1, max_days=30),
    Band(name="31-60", min_days=31, max_days=60),
    Band(name="61-90", min_days=61, max_days=90),
    Band(name="91-180", min_days=91, max_days=180),
    Band(name="181-360", min_days=181, max_days=360),
    Band(name="361+", min_days=361, max_days=None),
]

#: Five-category classification by days past due (CONTRACT §5; PRC 2023 rules).
DEFAULT_RISK_CLASSES = [
    Band(name="normal", min_days=0, max_days=0),
    Band(name="special_mention", min_days=1, max_days=90),
    Band(name="substandard", min_days=91, max_days=270),
    Band(name="doubtful", min_days=271, max_days=360),
    Band(name="loss", min_days=361, max_days=None),
]

RISK_CLASS_ORDER = ("normal", "special_mention", "substandard", "doubtful", "loss")


class AgingPolicy(_Strict):
    """Aging buckets and the per-invoice five-category classification."""

    buckets: list[Band] = Field(default_factory=lambda: list(DEFAULT_BUCKETS))
    risk_classes: list[Band] = Field(default_factory=lambda: list(DEFAULT_RISK_CLASSES))

    @field_validator("buckets")
    @classmethod
    def _buckets(cls, v: list[Band]) -> list[Band]:
        return _check_partition(v, "aging.buckets")

    @field_validator("risk_classes")
    @classmethod
    def _classes(cls, v: list[Band]) -> list[Band]:
        _check_partition(v, "aging.risk_classes")
        names = tuple(b.name for b in v)
        if names != RISK_CLASS_ORDER:
            raise ValueError(
                f"aging.risk_classes: expected the five categories in order {RISK_CLASS_ORDER}, "
                f"got {names}"
            )
        return v


class Policy(_Strict):
    """All business thresholds; one instance per process, loaded by :func:`load_policy`."""

    aging: AgingPolicy = Field(default_factory=AgingPolicy)


def load_policy(path: Path | None = None) -> Policy:
    """Load the policy from a TOML file (or the defaults) and validate every value."""
    if path is None:
        return Policy()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"RECEIVABLES_CONFIG names {path}, which does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    try:
        return Policy.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigError(f"{path}: {problems}") from None
