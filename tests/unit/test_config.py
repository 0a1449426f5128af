"""Configuration: settings from the environment, policy validation with clear messages."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from receivables.config import ConfigError, Policy, Settings, connection_url, load_policy


def test_settings_defaults_follow_the_contract(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    settings = Settings.from_env({})
    assert settings.home == tmp_path / "var"
    assert settings.inbox == tmp_path / "var" / "inbox"
    assert settings.default_db_url == f"sqlite:///{tmp_path / 'var' / 'warehouse.db'}"
    assert settings.warehouse_url(environ={}) == settings.default_db_url
    assert settings.timezone == "Asia/Shanghai"
    assert settings.outbox_dir == tmp_path / "var" / "outbox"


def test_settings_read_the_environment(tmp_path):
    env = {
        "RECEIVABLES_HOME": str(tmp_path / "h"),
        "RECEIVABLES_INBOX": str(tmp_path / "drop"),
        "RECEIVABLES_DB_URL": "postgresql://u@db:5432/ar",
        "RECEIVABLES_ALERT_EMAILS": "a@x.example.com; b@x.example.com",
    }
    settings = Settings.from_env(env)
    assert settings.inbox == tmp_path / "drop"
    assert settings.warehouse_url(environ=env) == "postgresql://u@db:5432/ar"
    assert settings.alert_emails == ("a@x.example.com", "b@x.example.com")


def test_unknown_time_zone_is_refused_by_name():
    with pytest.raises(ConfigError, match="RECEIVABLES_TIMEZONE='Mars/Base'"):
        Settings.from_env({"RECEIVABLES_TIMEZONE": "Mars/Base"})


def test_airflow_connection_env_names_the_warehouse(tmp_path):
    env = {"RECEIVABLES_HOME": str(tmp_path)}
    uri = {"AIRFLOW_CONN_RECEIVABLES_DB": "postgresql://app@10.0.0.5:5432/ar"}
    assert Settings.from_env(env).warehouse_url(environ=uri) == "postgresql://app@10.0.0.5:5432/ar"
    as_json = json.dumps(
        {
            "conn_type": "postgres",
            "host": "db",
            "login": "app",
            "password": "p@ss word",
            "port": 5432,
            "schema": "ar",
        }
    )
    assert connection_url(as_json) == "postgresql://app:p%40ss%20word@db:5432/ar"
    with pytest.raises(ConfigError, match="conn_type 'mysql'"):
        connection_url(json.dumps({"conn_type": "mysql"}))


def test_default_policy_matches_contract():
    policy = Policy()
    assert [b.name for b in policy.aging.buckets] == [
        "current",
        "1-30",
        "31-60",
        "61-90",
        "91-180",
        "181-360",
        "361+",
    ]
    assert [(b.name, b.min_days, b.max_days) for b in policy.aging.risk_classes] == [
        ("normal", 0, 0),
        ("special_mention", 1, 90),
        ("substandard", 91, 270),
        ("doubtful", 271, 360),
        ("loss", 361, None),
    ]


def _write(tmp_path, text):
    path = tmp_path / "policy.toml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        (
            "[[aging.buckets]]\nname='current'\nmin_days=0\nmax_days=0\n"
            "[[aging.buckets]]\nname='late'\nmin_days=5\n",
            "band 'late' starts at 5 days, expected 1",
        ),
        (
            "[[aging.buckets]]\nname='current'\nmin_days=0\nmax_days=10\n"
            "[[aging.buckets]]\nname='x'\nmin_days=11\nmax_days=20\n",
            "the last band ('x') must have no max_days",
        ),
        (
            "[[aging.buckets]]\nname='a'\nmin_days=0\nmax_days=10\n"
            "[[aging.buckets]]\nname='a'\nmin_days=11\n",
            "names must be unique",
        ),
        (
            "[[aging.buckets]]\nname='a'\nmin_days=0\nmax_days=-1\n",
            "aging.buckets.0.max_days",
        ),
        (
            "[[aging.risk_classes]]\nname='normal'\nmin_days=0\n",
            "expected the five categories in order",
        ),
        ("[aging]\nbucket = 1\n", "aging.bucket: Extra inputs are not permitted"),
    ],
)
def test_bad_policy_is_refused_with_the_key_and_what_was_expected(tmp_path, toml, message):
    with pytest.raises(ConfigError) as refused:
        load_policy(_write(tmp_path, toml))
    assert message in str(refused.value)
    assert "policy.toml" in str(refused.value)


def test_policy_file_overrides_defaults(tmp_path):
    path = _write(
        tmp_path,
        "[[aging.buckets]]\nname='current'\nmin_days=0\nmax_days=0\n"
        "[[aging.buckets]]\nname='1-90'\nmin_days=1\nmax_days=90\n"
        "[[aging.buckets]]\nname='91+'\nmin_days=91\n"
        "[provisions.fallback_rates]\n'current'=0.01\n'1-90'=0.1\n'91+'=1.0\n"
        "[warnings.bucket_severity]\n'91+'='high'\n"
        "[ingest]\nencoding='CP1252'\n"
        "[currency]\nreporting_currency='USD'\n",
    )
    policy = load_policy(path)
    assert [b.name for b in policy.aging.buckets] == ["current", "1-90", "91+"]
    assert policy.warnings.bucket_severity == {"91+": "high"}
    assert policy.ingest.encoding == "cp1252"
    assert policy.currency.reporting_currency == "USD"
    # shares are exact decimals, not binary floats
    assert policy.provisions.fallback_rates["1-90"] == Decimal("0.1")


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ("[provisions.fallback_rates]\n'current'=1.5\n", "Input should be less than or equal to 1"),
        (
            "[provisions]\nfallback_rates = {'current' = 0.1, 'soon' = 0.2}\n",
            "unknown bucket(s) ['soon']",
        ),
        (
            "[provisions]\nfallback_rates = {'current' = 0.5, '1-30' = 0.1, '31-60' = 0.2, "
            "'61-90' = 0.3, '91-180' = 0.4, '181-360' = 0.6, '361+' = 1.0}\n",
            "rates must not fall as buckets get older",
        ),
        ("[provisions]\nmin_history_months = 13\n", "cannot exceed provisions.history_months"),
        ("[classification]\nsubstandard_share = 1.5\n", "classification.substandard_share"),
        (
            "[scores]\ngrade_pd_bounds = {A = 0.05, B = 0.03, C = 0.08, D = 0.2}\n",
            "grade PD bounds must rise strictly",
        ),
        ("[warnings]\nlimit_factor_by_grade = {F = 0.5}\n", "unknown grade(s) ['F']"),
        (
            "[[aging.buckets]]\nname='current'\nmin_days=0\nmax_days=0\n"
            "[[aging.buckets]]\nname='1+'\nmin_days=1\n"
            "[provisions.fallback_rates]\n'current'=0.01\n'1+'=1.0\n",
            "warnings.bucket_severity: unknown bucket(s) ['181-360', '361+', '61-90', '91-180']",
        ),
        ("[warnings.bucket_severity]\n'61-90'='urgent'\n", "warnings.bucket_severity.61-90"),
        ("[ingest]\nencoding='utf-16'\n", "UTF-16 and UTF-32 are not supported"),
        ("[ingest]\nencoding='klingon'\n", "unknown encoding 'klingon'"),
        ("[currency]\nreporting_currency='cny'\n", "currency.reporting_currency"),
    ],
)
def test_bad_risk_policy_is_refused_by_key(tmp_path, toml, message):
    with pytest.raises(ConfigError) as refused:
        load_policy(_write(tmp_path, toml))
    assert message in str(refused.value)


def test_missing_or_broken_policy_file(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_policy(tmp_path / "nope.toml")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_policy(_write(tmp_path, "[aging\n"))


def test_configured_grade_bounds_travel_with_a_model(tmp_path):
    """Grade bounds are probabilities (floats): a scorecard built with configured ones can be
    stored as JSON and read back."""
    from receivables.risk.scorecard import Scorecard, rules_scorecard

    policy = load_policy(
        _write(tmp_path, "[scores]\ngrade_pd_bounds = {A = 0.02, B = 0.04, C = 0.1, D = 0.3}\n")
    )
    card = rules_scorecard(policy.scores)
    assert Scorecard.from_json(card.to_json()).grade_pd_bounds == {
        "A": 0.02,
        "B": 0.04,
        "C": 0.1,
        "D": 0.3,
    }
