"""Make sure the services the tests use are answering: PostgreSQL and Redis on 127.0.0.1.

``make test`` runs this first (and ``.ci/run`` does the same in shell). A service that does not
answer is started with the machine's own commands; if that fails, the message says what to do.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

PG = ("127.0.0.1", 5432)
REDIS = ("127.0.0.1", 6379)


def answering(address: tuple[str, int]) -> bool:
    """True when something accepts TCP connections at ``address``."""
    try:
        socket.create_connection(address, timeout=1).close()
        return True
    except OSError:
        return False


def _wait(address: tuple[str, int], seconds: float = 30) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if answering(address):
            return True
        time.sleep(0.5)
    return False


def ensure_postgres() -> None:
    """Start the local PostgreSQL cluster if it is not answering."""
    if answering(PG):
        return
    versions = sorted(Path("/etc/postgresql").glob("*")) if Path("/etc/postgresql").exists() else []
    if not versions or not shutil.which("pg_ctlcluster"):
        sys.exit("PostgreSQL is not answering on 127.0.0.1:5432 and cannot be started here")
    print(f"starting PostgreSQL {versions[-1].name}", flush=True)
    subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", versions[-1].name, "main", "start"],
        check=False,
    )
    if not _wait(PG):
        sys.exit("PostgreSQL did not start on 127.0.0.1:5432")


def ensure_redis() -> None:
    """Start a throw-away Redis if none is answering."""
    if answering(REDIS):
        return
    if not shutil.which("redis-server"):
        sys.exit("Redis is not answering on 127.0.0.1:6379 and redis-server is not installed")
    print("starting Redis", flush=True)
    subprocess.run(
        [
            "redis-server",
            "--daemonize",
            "yes",
            "--bind",
            "127.0.0.1",
            "--port",
            "6379",
            "--save",
            "",
            "--appendonly",
            "no",
        ],
        check=False,
    )
    if not _wait(REDIS):
        sys.exit("Redis did not start on 127.0.0.1:6379")


if __name__ == "__main__":
    ensure_postgres()
    ensure_redis()
    print("PostgreSQL and Redis are answering")
