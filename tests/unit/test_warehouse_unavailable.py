"""A warehouse that cannot be opened is one clear line: in the CLI (exit code 1, no traceback)
and in tasks (the failure alert quotes the error's first line)."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from click.testing import CliRunner

from receivables import jobs
from receivables.cli import main
from receivables.config import Settings
from receivables.warehouse.db import WarehouseUnavailable


def _missing_database(pg_server: str) -> tuple[str, str]:
    name = f"receivables_missing_{uuid.uuid4().hex[:8]}"
    return pg_server.rsplit("/", 1)[0] + f"/{name}", f'database "{name}" does not exist'


@pytest.fixture(
    params=["missing database", "wrong port", "password", "sqlite under a file", "unwritable"]
)
def unreachable(request, pg_server, tmp_path) -> tuple[str, str]:
    """(warehouse URL, what the one line must end with)."""
    if request.param == "missing database":
        url, words = _missing_database(pg_server)
        return url, f"{url}: {words}"
    if request.param == "wrong port":
        url = "postgresql://postgres@127.0.0.1:1/warehouse"
        return url, f'{url}: connection to server at "127.0.0.1", port 1 failed: Connection refused'
    if request.param == "password":
        url, words = _missing_database(pg_server)
        with_password = url.replace("postgres@", "postgres:s3cret@")
        return with_password, f"{url.replace('postgres@', 'postgres:***@')}: {words}"
    if request.param == "sqlite under a file":
        (tmp_path / "a-file").write_text("not a folder")
        url = f"sqlite:///{tmp_path / 'a-file' / 'warehouse.db'}"
        return url, f"{url}: cannot create the folder {tmp_path / 'a-file'}: a file is in the way"
    # even root cannot create a file in /proc
    return (
        "sqlite:////proc/warehouse.db",
        "sqlite:////proc/warehouse.db: unable to open database file",
    )


@pytest.mark.parametrize(
    "command",
    [["init"], ["run", "--as-of", "2024-03-01"], ["export", "rejects", "--out", "rejects.csv"]],
    ids=["init", "run", "export"],
)
def test_the_cli_says_so_in_one_line(command, unreachable, home, monkeypatch, tmp_path):
    url, ending = unreachable
    monkeypatch.setenv("RECEIVABLES_DB_URL", url)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, command)
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit)  # handled: no traceback
    if command[0] == "export" and url.startswith("sqlite"):
        # export looks for the SQLite file before opening it, and says that, in one line
        assert result.output.startswith("Error: no warehouse at ")
        assert result.output.count("\n") == 1
    else:
        assert result.output == f"Error: cannot open the warehouse {ending}\n"
    assert "s3cret" not in result.output


def test_a_task_raises_one_line(unreachable, home):
    url, ending = unreachable
    with pytest.raises(WarehouseUnavailable) as caught:
        jobs.ingest_files(
            [], settings=Settings.from_env(), db_url=url, as_of=dt.date(2024, 3, 1), run_id="r"
        )
    assert str(caught.value) == f"cannot open the warehouse {ending}"
