"""Configuration: where state lives (environment, docs/contract.md §2) and the business policy.

Two kinds of settings:

* :class:`Settings` — the environment: ``RECEIVABLES_HOME``, ``RECEIVABLES_DB_URL``,
  ``RECEIVABLES_INBOX`` and a few optional variables, read when asked for (never at import time,
  so tests and the CLI can change them).
* :class:`Policy` — thresholds that management may change (aging buckets, the five-category
  classification). Defaults follow docs/contract.md §5 and docs/formulas.md; a TOML file named by
  ``RECEIVABLES_CONFIG`` overrides them. Every value is validated when loaded, and a bad one is
  refused with a message that names the key and what was expected.
"""

from __future__ import annotations

import itertools
import math
import os
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cache, cached_property
from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

DEFAULT_TIMEZONE = "Asia/Shanghai"
#: The Airflow connection that names the warehouse when ``RECEIVABLES_DB_URL`` is not set.
WAREHOUSE_CONN_ID = "receivables_db"
#: The Airflow connection of SendGrid: ``password`` = API key, optional ``host`` = base URL.
SENDGRID_CONN_ID = "sendgrid_default"


class ConfigError(ValueError):
    """A configuration value is missing or wrong; the message says which and what is expected."""


def _addresses(text: str) -> tuple[str, ...]:
    return tuple(a.strip() for a in text.replace(",", ";").split(";") if a.strip())


@dataclass(frozen=True)
class Settings:
    """The environment of one process: folders, warehouse URL, business time zone, mail."""

    home: Path
    db_url: str | None
    inbox: Path
    timezone: str
    alert_emails: tuple[str, ...]
    risk_emails: tuple[str, ...]
    mail_from: str
    config_file: Path | None
    #: the dunning strategy (YAML); None: the project's ``include/collection/strategy.yaml``
    strategy_file: Path | None = None
    #: where customers reach the self-service pages (opt-out, dispute, feedback) linked from
    #: every reminder: the Airflow API server that hosts the project's plugin
    public_url: str = "http://127.0.0.1:8080"
    #: SendGrid, when the ``sendgrid_default`` connection is defined (else: ``.eml`` files)
    sendgrid: SendGridConfig | None = None
    #: management: receives the quarterly evaluation report
    management_emails: tuple[str, ...] = ("management@receivables.example.com",)

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
        risk = env.get("RECEIVABLES_RISK_EMAILS") or "risk-team@receivables.example.com"
        config_file = env.get("RECEIVABLES_CONFIG")
        strategy_file = env.get("RECEIVABLES_STRATEGY")
        sendgrid = env.get(f"AIRFLOW_CONN_{SENDGRID_CONN_ID.upper()}")
        return cls(
            home=home,
            db_url=env.get("RECEIVABLES_DB_URL") or None,
            inbox=inbox,
            timezone=timezone,
            alert_emails=_addresses(alerts),
            risk_emails=_addresses(risk),
            mail_from=env.get("RECEIVABLES_MAIL_FROM")
            or "Receivables Operations <receivables@receivables.example.com>",
            config_file=Path(config_file).expanduser().resolve() if config_file else None,
            strategy_file=Path(strategy_file).expanduser().resolve() if strategy_file else None,
            public_url=(env.get("RECEIVABLES_PUBLIC_URL") or "http://127.0.0.1:8080").rstrip("/"),
            sendgrid=sendgrid_config(sendgrid) if sendgrid else None,
            management_emails=_addresses(
                env.get("RECEIVABLES_MANAGEMENT_EMAILS") or "management@receivables.example.com"
            ),
        )

    def warehouse_url(
        self,
        lookup: Callable[[str], str | None] | None = None,
        environ: dict[str, str] | None = None,
    ) -> str:
        """The warehouse URL — the one place it is resolved: ``RECEIVABLES_DB_URL``, else the
        Airflow connection ``receivables_db``, else the embedded SQLite warehouse.

        ``lookup`` finds a connection's URI by id: inside Airflow tasks Airflow's own lookup
        (metadata database, secrets backends, environment); elsewhere (the CLI) the
        ``AIRFLOW_CONN_RECEIVABLES_DB`` variable, as URI or JSON.
        """
        if self.db_url:
            return self.db_url
        env = os.environ if environ is None else environ
        if lookup is None:

            def lookup(conn_id: str) -> str | None:
                return env.get(f"AIRFLOW_CONN_{conn_id.upper()}")

        connection = lookup(WAREHOUSE_CONN_ID)
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
    def strategy(self):
        """The dunning strategy (:mod:`receivables.collection.strategy`)."""
        from receivables.collection.strategy import load_strategy

        return load_strategy(self.strategy_file)

    @cached_property
    def policy(self) -> Policy:
        """The business policy (defaults, or the TOML file named by ``RECEIVABLES_CONFIG``)."""
        return load_policy(self.config_file)


@dataclass(frozen=True)
class SendGridConfig:
    """How to reach SendGrid: the API key and, for a local contract mock, another base URL."""

    api_key: str = field(repr=False)
    host: str | None = None


def sendgrid_config(value: str) -> SendGridConfig:
    """A :class:`SendGridConfig` from the ``sendgrid_default`` connection in URI or JSON form
    (``password`` = API key; ``host`` = base URL such as ``http://127.0.0.1:4010``, else the
    public API). A host without a scheme gets ``https://`` (``http://`` for a loopback host), and
    a ``port`` is kept."""
    import json
    from urllib.parse import unquote, urlsplit

    value = value.strip()
    if value.startswith("{"):
        try:
            conn = json.loads(value)
        except json.JSONDecodeError as exc:
            raise ConfigError(
                f"AIRFLOW_CONN_{SENDGRID_CONN_ID.upper()} is neither a URI nor JSON: {exc}"
            ) from None
        key, host, port, schema = (
            conn.get("password"),
            conn.get("host"),
            conn.get("port"),
            conn.get("schema"),
        )
    else:
        parts = urlsplit(value)
        key = unquote(parts.password) if parts.password else None
        host, port, schema = parts.hostname, parts.port, parts.path.lstrip("/") or None
    return sendgrid_config_of(key, host, port, schema)


def sendgrid_config_of(
    key: str | None, host: str | None, port: int | str | None = None, schema: str | None = None
) -> SendGridConfig:
    """A :class:`SendGridConfig` from a connection's fields (see :func:`sendgrid_config`)."""
    if not key:
        raise ConfigError(
            f"the {SENDGRID_CONN_ID} connection has no password: it must hold the SendGrid API key"
        )
    if not host:
        return SendGridConfig(api_key=key)
    host = host.strip().rstrip("/")
    if "://" not in host:
        loopback = host.split(":")[0] in ("127.0.0.1", "localhost", "::1")
        scheme = schema if schema in ("http", "https") else ("http" if loopback else "https")
        host = f"{scheme}://{host}"
    if port and host.count(":") < 2:
        host = f"{host}:{port}"
    return SendGridConfig(api_key=key, host=host)


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

#: Five-category classification by days past due (docs/contract.md §5; PRC 2023 rules).
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


#: Shares and rates are exact decimals: a TOML ``0.10`` is the decimal 0.10, never the binary
#: float 0.1000000000000000055…, so a rule "more than 10 %" means exactly that on every engine.
Rate = Annotated[Decimal, Field(ge=0, le=1, max_digits=12, decimal_places=8)]
#: Probabilities of default are model estimates (floats), unlike shares of money.
Probability = Annotated[float, Field(ge=0.0, le=1.0)]


class ClassificationPolicy(_Strict):
    """Customer-level five-category classification (PRC 2023 rules, docs/formulas.md)."""

    #: when more than this share of a customer's outstanding is substandard or worse, every
    #: receivable of the customer is classed at least substandard
    substandard_share: Decimal = Field(default=Decimal("0.10"), gt=0, lt=1, decimal_places=8)


#: docs/formulas.md's example fallback loss rates, used while the roll-rate history is too short.
DEFAULT_FALLBACK_RATES = {
    "current": Decimal("0.005"),
    "1-30": Decimal("0.022"),
    "31-60": Decimal("0.027"),
    "61-90": Decimal("0.045"),
    "91-180": Decimal("0.25"),
    "181-360": Decimal("0.60"),
    "361+": Decimal("1"),
}


class ProvisionPolicy(_Strict):
    """IFRS 9 simplified approach, migration (roll-rate) method."""

    #: months of roll-rate history averaged for the loss rates
    history_months: int = Field(default=12, ge=1, le=120)
    #: fewer observed month-to-month transitions than this: use the fallback rates
    min_history_months: int = Field(default=6, ge=1, le=120)
    #: forward-looking adjustment applied to every historical loss rate (capped at 100 %)
    forward_looking_factor: Decimal = Field(default=Decimal(1), gt=0, le=5, decimal_places=8)
    fallback_rates: dict[str, Rate] = Field(default_factory=lambda: dict(DEFAULT_FALLBACK_RATES))

    @model_validator(mode="after")
    def _history(self) -> ProvisionPolicy:
        if self.min_history_months > self.history_months:
            raise ValueError(
                f"provisions.min_history_months ({self.min_history_months}) cannot exceed "
                f"provisions.history_months ({self.history_months})"
            )
        return self


class ScorePolicy(_Strict):
    """The credit score scale, grades and the model's approval gate (docs/formulas.md)."""

    base_score: float = 600.0
    base_odds: float = Field(default=50.0, gt=0.0)
    points_to_double_odds: float = Field(default=20.0, gt=0.0)
    #: upper PD bounds of grades A-D (E above the last): A < 1 %, B < 3 %, C < 8 %, D < 20 %
    grade_pd_bounds: dict[str, Probability] = Field(
        default_factory=lambda: {"A": 0.01, "B": 0.03, "C": 0.08, "D": 0.20}
    )
    #: a customer is "bad" on reaching this many days past due within the horizon
    bad_days_past_due: int = Field(default=90, ge=1)
    horizon_months: int = Field(default=6, ge=1, le=24)
    #: month-ends of history (with an observed horizon) needed to train a scorecard
    min_training_months: int = Field(default=6, ge=2)
    #: the newest month-ends held out for validation
    holdout_months: int = Field(default=3, ge=1)
    #: approval gate for a newly trained model
    min_auc: float = Field(default=0.70, ge=0.5, le=1.0)
    max_psi: float = Field(default=0.25, gt=0.0)
    #: score drop (points, since the previous scoring) that raises a warning
    sharp_drop_points: float = Field(default=40.0, gt=0.0)
    #: probability of default of a customer without payment history when the ledger has too
    #: few past new customers to measure theirs
    application_pd: Decimal = Field(default=Decimal("0.10"), gt=0, lt=1, decimal_places=8)

    @field_validator("grade_pd_bounds")
    @classmethod
    def _grades(cls, v: dict[str, float]) -> dict[str, float]:
        if list(v) != ["A", "B", "C", "D"]:
            raise ValueError(
                f"expected upper PD bounds for grades A, B, C, D in order, got {list(v)}"
            )
        bounds = list(v.values())
        if any(b <= a for a, b in itertools.pairwise(bounds)) or bounds[0] <= 0:
            raise ValueError(f"grade PD bounds must rise strictly above 0, got {bounds}")
        return v

    @property
    def factor(self) -> float:
        """Points per unit of ln(odds): PDO / ln 2."""
        return self.points_to_double_odds / math.log(2)

    @property
    def offset(self) -> float:
        """Score at odds 1:1: base − factor × ln(base odds)."""
        return self.base_score - self.factor * math.log(self.base_odds)


Severity = Literal["low", "medium", "high", "critical"]


class WarningPolicy(_Strict):
    """When the risk warnings fire and what they recommend."""

    #: one customer holding more than this share of a currency's overdue outstanding
    concentration_share: Decimal = Field(default=Decimal("0.10"), gt=0, lt=1, decimal_places=8)
    #: the concentration rule needs at least this many overdue debtors in the book: in a small
    #: book every large debtor holds a large share, which says nothing
    concentration_min_debtors: int = Field(default=20, ge=2)
    #: proposed credit limit as a share of the current one (or, without a limit, of the current
    #: outstanding), by grade; grades not listed keep their limit
    limit_factor_by_grade: dict[str, Rate] = Field(
        default_factory=lambda: {"D": Decimal("0.5"), "E": Decimal("0")}
    )
    #: days past due from which a customer's case is proposed for legal review
    legal_review_days: int = Field(default=181, ge=1)
    #: severity of a customer whose oldest invoice rolls into a bucket (buckets not named are
    #: ``low``); from ``medium`` up, collection starts early
    bucket_severity: dict[str, Severity] = Field(
        default_factory=lambda: {
            "61-90": "medium",
            "91-180": "high",
            "181-360": "critical",
            "361+": "critical",
        }
    )

    @field_validator("limit_factor_by_grade")
    @classmethod
    def _grades(cls, v: dict[str, float]) -> dict[str, float]:
        unknown = sorted(set(v) - set("ABCDE"))
        if unknown:
            raise ValueError(f"unknown grade(s) {unknown}: expected A, B, C, D or E")
        return v


class CurrencyPolicy(_Strict):
    """The reporting currency: totals across currencies are converted into it."""

    #: ISO 4217 code; ``fx_rates`` files give every other currency's rate to it
    reporting_currency: str = Field(default="CNY", pattern=r"^[A-Z]{3}$")


class IngestPolicy(_Strict):
    """How inbox files are read."""

    #: encoding of CSV files when it is not detected (None: UTF-8, else GB18030 Chinese text)
    encoding: str | None = None
    #: encodings declared per inbox folder (absolute path -> Python codec name), for
    #: institutions whose systems export in another code page
    inbox_encodings: dict[str, str] = Field(default_factory=dict)

    @field_validator("encoding")
    @classmethod
    def _encoding(cls, v: str | None) -> str | None:
        return None if v is None else check_encoding(v)

    @field_validator("inbox_encodings")
    @classmethod
    def _inbox_encodings(cls, v: dict[str, str]) -> dict[str, str]:
        return {
            str(Path(folder).expanduser().resolve()): check_encoding(name)
            for folder, name in v.items()
        }

    def encoding_for(self, inbox: Path) -> str | None:
        """The encoding declared for files in ``inbox`` (None: detect it)."""
        return self.inbox_encodings.get(str(Path(inbox).resolve()), self.encoding)


@cache
def check_encoding(name: str) -> str:
    """The canonical name of a Python codec in which CSV files can be read byte-wise: commas,
    quotes and line ends are ASCII bytes and never occur inside other characters. UTF-16/32 and
    stateful encodings (ISO-2022, HZ) are refused with a clear ``ValueError``."""
    import codecs

    try:
        info = codecs.lookup(name)
    except LookupError:
        raise ValueError(
            f"unknown encoding {name!r} (expected e.g. cp1252, latin-1, big5)"
        ) from None
    if ',"\r\n'.encode(info.name, errors="replace") != b',"\r\n':
        raise ValueError(
            f"encoding {name!r} does not write commas, quotes and line ends as ASCII bytes "
            "(UTF-16 and UTF-32 are not supported: export as UTF-8)"
        )
    if info.name in {"utf-8", "utf-8-sig", "gb18030", "gbk", "iso8859-1", "cp1252", "ascii"}:
        return info.name  # known to be safe; the check below takes a moment per codec
    for code in range(0x80, 0x10000):
        if 0xD800 <= code < 0xE000:
            continue
        try:
            encoded = chr(code).encode(info.name)
        except UnicodeEncodeError:
            continue
        if any(b in encoded for b in b',"\r\n'):
            raise ValueError(
                f"encoding {name!r} writes commas, quotes or line ends inside other characters "
                "(a stateful encoding such as ISO-2022 or HZ): CSV files in it cannot be read "
                "reliably; export them as UTF-8"
            )
    return info.name


class KpiTarget(_Strict):
    """A KPI's target: met when the value is at least it (``better = "higher"``) or at most it
    (``"lower"``)."""

    value: Decimal = Field(decimal_places=6)
    better: Literal["higher", "lower"]


#: Default targets of the quarterly evaluation (the industry's overdue ratio sits above 0.10).
DEFAULT_KPI_TARGETS = {
    "overdue_ratio": {"value": Decimal("0.10"), "better": "lower"},
    "recovery_rate": {"value": Decimal("0.30"), "better": "higher"},
    "collection_success_rate": {"value": Decimal("0.35"), "better": "higher"},
    "cei": {"value": Decimal("0.80"), "better": "higher"},
    "cure_rate": {"value": Decimal("0.25"), "better": "higher"},
    "average_days_delinquent": {"value": Decimal("30"), "better": "lower"},
    "bad_debt_ratio": {"value": Decimal("0.02"), "better": "lower"},
}


class IncentivePolicy(_Strict):
    """Collector incentives, shown as proposals: ``rate`` of what a collector recovered beyond
    ``target_recovery_rate`` of the overdue outstanding of their customers at the quarter's
    opening, at most ``cap`` (reporting currency) per collector and quarter."""

    target_recovery_rate: Decimal = Field(default=Decimal("0.30"), ge=0, le=1, decimal_places=6)
    rate: Decimal = Field(default=Decimal("0.01"), ge=0, le=1, decimal_places=6)
    cap: Decimal | None = Field(default=Decimal("20000"), ge=0, decimal_places=2)


class EvaluationPolicy(_Strict):
    """The quarterly evaluation: KPI targets, trend length, collector incentives."""

    #: per KPI (names of the ``kpis`` export); KPIs without a target have no status
    targets: dict[str, KpiTarget] = Field(
        default_factory=lambda: {k: KpiTarget(**v) for k, v in DEFAULT_KPI_TARGETS.items()}
    )
    #: quarters shown in the trends, the evaluated one included
    trend_quarters: int = Field(default=4, ge=2, le=12)
    incentives: IncentivePolicy = Field(default_factory=IncentivePolicy)

    @field_validator("targets", mode="before")
    @classmethod
    def _over_the_defaults(cls, v: object) -> object:
        # a configured target replaces that KPI's default; the other defaults stay
        return {**DEFAULT_KPI_TARGETS, **v} if isinstance(v, dict) else v

    @field_validator("targets")
    @classmethod
    def _known_kpis(cls, v: dict[str, KpiTarget]) -> dict[str, KpiTarget]:
        from receivables.evaluation.kpis import UNITS

        unknown = sorted(set(v) - set(UNITS))
        if unknown:
            raise ValueError(
                f"evaluation.targets: unknown KPI(s) {unknown}; the KPIs are {sorted(UNITS)}"
            )
        return v


class Policy(_Strict):
    """All business thresholds; one instance per process, loaded by :func:`load_policy`."""

    currency: CurrencyPolicy = Field(default_factory=CurrencyPolicy)
    ingest: IngestPolicy = Field(default_factory=IngestPolicy)
    aging: AgingPolicy = Field(default_factory=AgingPolicy)
    classification: ClassificationPolicy = Field(default_factory=ClassificationPolicy)
    provisions: ProvisionPolicy = Field(default_factory=ProvisionPolicy)
    scores: ScorePolicy = Field(default_factory=ScorePolicy)
    warnings: WarningPolicy = Field(default_factory=WarningPolicy)
    evaluation: EvaluationPolicy = Field(default_factory=EvaluationPolicy)

    @model_validator(mode="after")
    def _fallback_buckets(self) -> Policy:
        buckets = [b.name for b in self.aging.buckets]
        rates = self.provisions.fallback_rates
        unknown = sorted(set(rates) - set(buckets))
        if unknown:
            raise ValueError(
                f"provisions.fallback_rates: unknown bucket(s) {unknown}; the buckets are {buckets}"
            )
        missing = [b for b in buckets if b not in rates]
        if missing:
            raise ValueError(f"provisions.fallback_rates: no rate for bucket(s) {missing}")
        values = [rates[b] for b in buckets]
        if any(b < a for a, b in itertools.pairwise(values)):
            raise ValueError(
                "provisions.fallback_rates: rates must not fall as buckets get older, got "
                + ", ".join(f"{b} {rates[b]}" for b in buckets)
            )
        unknown = sorted(set(self.warnings.bucket_severity) - set(buckets))
        if unknown:
            raise ValueError(
                f"warnings.bucket_severity: unknown bucket(s) {unknown}; the buckets are "
                f"{buckets} (restate the severities when the buckets change)"
            )
        return self


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
