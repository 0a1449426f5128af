"""The distributed topology's compose file: well-formed, complete, and its init cannot hide a
failed migration. ``docker compose config`` checks it against the Compose specification where the
compose plugin exists (no Docker engine is needed for that)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

COMPOSE = Path(__file__).resolve().parents[2] / "docker-compose.yml"
AIRFLOW_COMPONENTS = {
    "airflow-apiserver": "api-server",
    "airflow-scheduler": "scheduler",
    "airflow-dag-processor": "dag-processor",
    "airflow-triggerer": "triggerer",
    "airflow-worker": "celery worker",
}


@pytest.fixture(scope="module")
def services() -> dict:
    return yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))["services"]


def test_init_stops_on_the_first_failing_step(services):
    script = services["airflow-init"]["command"][-1]
    assert script.splitlines()[0] == "set -euo pipefail"
    assert "|| true" not in script
    assert "airflow db migrate" in script  # Airflow's metadata database
    assert "receivables init" in script  # the warehouse
    assert services["airflow-init"]["restart"] == "no"


def test_every_component_of_the_celery_topology_is_there_and_waits_for_the_init(services):
    assert {"postgres", "redis"} <= set(services)
    for name, command in AIRFLOW_COMPONENTS.items():
        service = services[name]
        assert service["command"] == command
        assert service["depends_on"]["airflow-init"]["condition"] == (
            "service_completed_successfully"
        )
        assert service["depends_on"]["postgres"]["condition"] == "service_healthy"
        assert service["depends_on"]["redis"]["condition"] == "service_healthy"
        assert service["healthcheck"]["test"]
    assert services["airflow-worker"]["environment"]["DUMB_INIT_SETSID"] == "0"


def test_every_airflow_service_shares_one_environment(services):
    for name, service in services.items():
        if not name.startswith("airflow-"):
            continue
        env = service["environment"]
        assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
        assert env["AIRFLOW__CORE__LOAD_EXAMPLES"] == "false"
        assert env["AIRFLOW__CORE__DAGS_FOLDER"] == "/opt/receivables/dags"
        assert env["AIRFLOW__CORE__PLUGINS_FOLDER"] == "/opt/receivables/plugins"
        assert env["AIRFLOW__CELERY__BROKER_URL"].startswith("redis://redis:")
        # the warehouse and Airflow's metadata are separate databases
        assert env["AIRFLOW_CONN_RECEIVABLES_DB"].endswith("@postgres/receivables")
        assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].endswith("@postgres/airflow")
        assert "/opt/receivables-data" in " ".join(service["volumes"])


def test_the_contract_mock_runs_only_in_staging(services):
    mock = services["sendgrid-mock"]
    assert mock["profiles"] == ["staging"]
    assert "mock" in mock["command"]


def test_every_variable_has_a_default():
    """`docker compose config` (and `up`) works without an .env file."""
    text = COMPOSE.read_text(encoding="utf-8").replace("$$", "")
    bare = [m for m in re.findall(r"\$\{([^}]*)\}", text) if ":-" not in m]
    assert bare == []


@pytest.mark.skipif(
    shutil.which("docker") is None, reason="no docker command here to run `docker compose config`"
)
def test_docker_compose_accepts_the_file():
    probe = subprocess.run(["docker", "compose", "version"], capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.skip("docker is here but not its compose plugin")
    for profile in ([], ["--profile", "staging"]):
        result = subprocess.run(
            ["docker", "compose", "-f", str(COMPOSE), *profile, "config", "--quiet"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
