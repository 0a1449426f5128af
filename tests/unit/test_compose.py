"""The production compose file: well-formed, and its init cannot hide a failed migration."""

from __future__ import annotations

from pathlib import Path

import yaml

COMPOSE = Path(__file__).resolve().parents[2] / "docker-compose.yml"


def test_init_stops_on_the_first_failing_step():
    services = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))["services"]
    script = services["airflow-init"]["command"][-1]
    assert script.splitlines()[0] == "set -euo pipefail"
    assert "|| true" not in script
    assert "airflow db migrate" in script
    assert "receivables init" in script


def test_every_airflow_service_shares_one_environment():
    services = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))["services"]
    airflow = {name: s for name, s in services.items() if name.startswith("airflow-")}
    assert {"airflow-scheduler", "airflow-worker", "airflow-apiserver"} <= set(airflow)
    for service in airflow.values():
        env = service["environment"]
        assert env["AIRFLOW__CORE__DAGS_FOLDER"] == "/opt/receivables/dags"
        assert env["AIRFLOW_CONN_RECEIVABLES_DB"].startswith("postgresql://")
