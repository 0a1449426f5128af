"""Kill the sender mid-batch, retry the batch: no reminder is ever sent twice, none is lost.

The sender runs in a child process against a local HTTP server that answers like SendGrid's
Mail Send API (202, slowly) and records every request's ``reminder_id``. The child is killed
with SIGKILL while requests are in flight; the retry runs the same batch again.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from receivables.collection.planner import plan_reminders
from receivables.collection.sender import send_batch
from receivables.collection.strategy import load_strategy
from receivables.config import Settings
from receivables.warehouse.schema import reminders
from tests.collection_data import age, customer, invoice, load

#: today on the business clock: a reminder is sent close to its planned moment or not at all
AS_OF = dt.datetime.now(dt.UTC).astimezone(ZoneInfo("Asia/Shanghai")).date()
CUSTOMERS = 120
CONCURRENCY = load_strategy().sending.concurrency


class SlowSendGrid:
    """Answers 202 to ``POST /v3/mail/send`` after a pause; remembers every reminder id."""

    def __init__(self, pause: float = 0.05):
        self.requests: list[str] = []
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with outer.lock:
                    outer.requests.append(body["custom_args"]["reminder_id"])
                time.sleep(pause)
                self.send_response(202)
                self.send_header("X-Message-Id", f"m{len(outer.requests)}")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


CHILD = """
import datetime as dt, sys
from receivables.collection.sender import send_batch
from receivables.config import Settings
from receivables.warehouse.db import create_engine
settings = Settings.from_env()
day = dt.date.fromisoformat(sys.argv[1])
send_batch(create_engine(settings.warehouse_url()), settings, day, 0)
"""


def test_a_killed_sender_never_sends_a_reminder_twice(engine, db_url, home, monkeypatch):
    people = [customer(f"C{i:03d}") for i in range(CUSTOMERS)]
    bills = [
        invoice(f"I{i:03d}", f"C{i:03d}", AS_OF - dt.timedelta(days=1)) for i in range(CUSTOMERS)
    ]
    load(engine, people, bills)
    age(engine, AS_OF)
    plan = plan_reminders(engine, AS_OF, load_strategy(), "Asia/Shanghai")
    assert plan["pending"] == CUSTOMERS
    with SlowSendGrid() as sendgrid:
        connection = json.dumps({"conn_type": "http", "password": "SG.k", "host": sendgrid.url})
        env = {
            **os.environ,
            "RECEIVABLES_DB_URL": db_url,
            "RECEIVABLES_HOME": str(home),
            "AIRFLOW_CONN_SENDGRID_DEFAULT": connection,
        }
        child = subprocess.Popen([sys.executable, "-c", CHILD, AS_OF.isoformat()], env=env)
        deadline = time.monotonic() + 60
        while len(sendgrid.requests) < CUSTOMERS // 3:
            assert child.poll() is None, "the sender ended before it could be killed"
            assert time.monotonic() < deadline, "the sender made no progress"
            time.sleep(0.005)
        child.send_signal(signal.SIGKILL)
        child.wait(10)
        requested_before = len(sendgrid.requests)
        with engine.connect() as conn:
            left = Counter(
                conn.execute(sa.select(reminders.c.status).where(reminders.c.planned_on == AS_OF))
                .scalars()
                .all()
            )
        assert 0 < left["sent"] < CUSTOMERS
        assert left["sending"] <= CONCURRENCY, "at most the requests in flight are in doubt"
        assert left["pending"] > 0

        # the task's retry
        monkeypatch.setenv("AIRFLOW_CONN_SENDGRID_DEFAULT", connection)
        summary = send_batch(engine, Settings.from_env(), AS_OF, 0)
        assert summary["interrupted_before"] == left["sending"]

    requested = Counter(sendgrid.requests)
    duplicates = {rid: n for rid, n in requested.items() if n > 1}
    assert duplicates == {}, "a reminder was sent twice"
    with engine.connect() as conn:
        final = {
            str(r.reminder_id): r
            for r in conn.execute(sa.select(reminders).where(reminders.c.planned_on == AS_OF))
        }
    statuses = Counter(r.status for r in final.values())
    assert statuses["pending"] == statuses["sending"] == 0, "nothing lost"
    assert statuses["sent"] + statuses["failed"] == CUSTOMERS
    # every reminder marked sent reached the provider exactly once; the ones interrupted
    # mid-request are failed, never resent
    for rid, row in final.items():
        if row.status == "sent":
            assert requested[rid] == 1
        else:
            assert row.reason.startswith("interrupted while sending")
            assert requested[rid] <= 1
    assert statuses["failed"] == left["sending"]
    assert len(sendgrid.requests) > requested_before


@pytest.fixture(autouse=True)
def _no_real_sendgrid(monkeypatch):
    monkeypatch.delenv("AIRFLOW_CONN_SENDGRID_DEFAULT", raising=False)
