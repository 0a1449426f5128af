"""Shared fixtures: a fresh warehouse per test on SQLite and on the real PostgreSQL.

Airflow reads its configuration once, at import: the environment for the embedded Airflow used
by the DAG and integration tests is set here, before any test module imports it.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

_AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="receivables-airflow-"))
REPO = Path(__file__).resolve().parents[1]
os.environ.update(
    {
        "AIRFLOW_HOME": str(_AIRFLOW_HOME),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{_AIRFLOW_HOME / 'airflow.db'}",
        "RECEIVABLES_TASK_RETRIES": "0",
        "GX_ANALYTICS_ENABLED": "false",
    }
)
for _name in (
    "RECEIVABLES_DB_URL",
    "RECEIVABLES_INBOX",
    "RECEIVABLES_CONFIG",
    "AIRFLOW_CONN_RECEIVABLES_DB",
    "AIRFLOW_CONN_SENDGRID_DEFAULT",
    "RECEIVABLES_LINK_SECRET",
    "RECEIVABLES_SENDGRID_WEBHOOK_KEY",
    "RECEIVABLES_STRATEGY",
    "RECEIVABLES_PUBLIC_URL",
):
    os.environ.pop(_name, None)

pytest_plugins = ["tests.sendgrid_mock"]

PG_ADMIN_URL = os.environ.get(
    "RECEIVABLES_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres"
)


def pytest_collection_modifyitems(items):
    """Every test carries its tier's marker (unit / dags / integration / e2e) from its folder."""
    for item in items:
        tier = Path(str(item.fspath)).parent.name
        if tier in ("unit", "dags", "integration", "e2e"):
            item.add_marker(getattr(pytest.mark, tier))


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    """A fresh RECEIVABLES_HOME with an inbox, set in the environment."""
    root = tmp_path / "home"
    (root / "inbox").mkdir(parents=True)
    monkeypatch.setenv("RECEIVABLES_HOME", str(root))
    monkeypatch.delenv("RECEIVABLES_DB_URL", raising=False)
    return root


@pytest.fixture(scope="session")
def pg_server() -> str:
    """The admin URL of the local PostgreSQL (the suite fails clearly if it is down)."""
    import sqlalchemy as sa

    engine = sa.create_engine(PG_ADMIN_URL)
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except Exception as exc:  # pragma: no cover - depends on the machine
        pytest.fail(f"PostgreSQL at {PG_ADMIN_URL} is not answering ({exc}); run tests/services.py")
    finally:
        engine.dispose()
    return PG_ADMIN_URL


@pytest.fixture
def pg_url(pg_server) -> str:
    """A new, empty PostgreSQL database for one test, dropped afterwards."""
    from tests.helpers import new_pg_database

    with new_pg_database(pg_server) as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path) -> str:
    """An empty warehouse database: each test using it runs on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'warehouse.db'}"
    return request.getfixturevalue("pg_url")


@pytest.fixture
def engine(db_url):
    """An engine on a migrated, empty warehouse (SQLite and PostgreSQL)."""
    from receivables.warehouse.db import create_engine
    from receivables.warehouse.migrate import upgrade

    eng = create_engine(db_url)
    upgrade(eng)
    yield eng
    eng.dispose()


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """The test session's Airflow metadata database, migrated once."""
    from receivables.airflow.runner import prepare_airflow
    from receivables.config import Settings

    prepare_airflow(Settings.from_env({"RECEIVABLES_HOME": str(_AIRFLOW_HOME / "unused")}))
    return _AIRFLOW_HOME
