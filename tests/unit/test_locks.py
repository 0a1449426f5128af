"""The warehouse's writer lock across real processes, on SQLite and PostgreSQL.

A holder is another Python process (the lock is meant for other processes: Airflow workers, a
``receivables run`` in a terminal); it is told when to let go through a file, and says when it
did, so every test checks the order of events, never how long anything took.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from receivables import jobs
from receivables.warehouse.db import create_engine
from receivables.warehouse.locks import WarehouseBusy, default_timeout_seconds, warehouse_lock

HOLDER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from receivables.warehouse.db import create_engine
    from receivables.warehouse.locks import warehouse_lock

    url, what, release = sys.argv[1:4]
    with warehouse_lock(create_engine(url), what, timeout=60):
        print("locked", flush=True)
        while not Path(release).exists():
            time.sleep(0.05)
        Path(release + ".done").write_text("released while still holding the lock")
    """
)


class Holder:
    """A process holding the writer lock until :meth:`release` (or until it is killed)."""

    def __init__(self, db_url: str, what: str, folder: Path):
        self.release_file = folder / "release"
        self.process = subprocess.Popen(
            [sys.executable, "-c", HOLDER, db_url, what, str(self.release_file)],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout.readline().strip() == "locked"

    @property
    def released(self) -> bool:
        return self.release_file.with_name("release.done").exists()

    def release(self) -> None:
        self.release_file.write_text("go")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        self.process.stdout.close()


@pytest.fixture
def holders(db_url, tmp_path):
    started: list[Holder] = []

    def start(what: str) -> Holder:
        folder = tmp_path / f"holder-{len(started)}"
        folder.mkdir()
        holder = Holder(db_url, what, folder)
        started.append(holder)
        return holder

    yield start
    for holder in started:
        holder.stop()


@pytest.fixture
def warehouse(db_url):
    engine = create_engine(db_url)
    yield engine
    engine.dispose()


def test_a_second_process_waits_for_the_holder_then_gets_the_lock(warehouse, holders, caplog):
    holder = holders("classify 2024-03-01")
    caplog.set_level(logging.INFO, logger="receivables.warehouse.locks")
    threading.Timer(1.0, holder.release).start()
    with warehouse_lock(warehouse, "ingest 2024-03-02", timeout=60, log_every=0.2):
        assert holder.released  # the lock came only once the holder let it go
    waiting = [r.getMessage() for r in caplog.records if r.getMessage().startswith("waiting")]
    assert waiting
    assert f"classify 2024-03-01 pid {holder.process.pid} host " in waiting[0]
    assert re.search(r"holds it since \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", waiting[0])


def test_a_wait_that_times_out_says_who_holds_the_lock_in_one_line(warehouse, holders):
    holder = holders("risk 2024-03-01")
    with (
        pytest.raises(WarehouseBusy) as caught,
        warehouse_lock(warehouse, "ingest 2024-03-02", timeout=0.5),
    ):
        pytest.fail("the lock is held by another process")
    message = str(caught.value)
    assert "\n" not in message
    assert re.fullmatch(
        rf"the warehouse is busy: risk 2024-03-01 pid {holder.process.pid} host \S+ since "
        r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC; try again later",
        message,
    ), message
    assert not holder.released


def test_a_killed_holder_leaves_the_warehouse_unlocked(warehouse, holders):
    holder = holders("ledger_ingest 2024-03-01")
    holder.process.send_signal(signal.SIGKILL)
    holder.process.wait()
    with warehouse_lock(warehouse, "after the crash", timeout=60):
        assert not holder.released  # it never let go: its death did


def test_the_lock_is_reentrant_in_a_thread_and_exclusive_across_threads(warehouse):
    refused: list[BaseException] = []

    def other_thread() -> None:
        try:
            with warehouse_lock(warehouse, "another thread", timeout=0):
                pass
        except WarehouseBusy as exc:
            refused.append(exc)

    with warehouse_lock(warehouse, "outer", timeout=5):
        with warehouse_lock(warehouse, "inner", timeout=0):  # the same thread: no wait
            thread = threading.Thread(target=other_thread)
            thread.start()
            thread.join()
        assert len(refused) == 1
        assert "busy: outer pid" in str(refused[0])
    with warehouse_lock(warehouse, "afterwards", timeout=0):
        pass  # released when the outer block ended


def test_job_steps_hold_the_writer_lock_while_they_run(db_url, engine):
    seen: list[str] = []

    def probe_step(_engine, day):
        def other_writer() -> None:
            try:
                with warehouse_lock(_engine, "other", timeout=0):
                    seen.append("free")
            except WarehouseBusy as exc:
                seen.append(str(exc))

        thread = threading.Thread(target=other_writer)
        thread.start()
        thread.join()
        return "done"

    assert jobs._run(db_url, probe_step, dt.date(2024, 3, 1)) == "done"
    (message,) = seen
    assert message.startswith("the warehouse is busy: probe_step for 2024-03-01 pid ")


def test_the_default_wait_ends_well_before_the_task_timeout(monkeypatch):
    monkeypatch.delenv("RECEIVABLES_LOCK_TIMEOUT_MINUTES", raising=False)
    monkeypatch.delenv("RECEIVABLES_TASK_TIMEOUT_MINUTES", raising=False)
    assert default_timeout_seconds() == 30 * 60
    monkeypatch.setenv("RECEIVABLES_TASK_TIMEOUT_MINUTES", "20")
    assert default_timeout_seconds() == 10 * 60
    monkeypatch.setenv("RECEIVABLES_LOCK_TIMEOUT_MINUTES", "2.5")
    assert default_timeout_seconds() == 150
    for bad in ("soon", "0", "-3", "inf", "nan"):
        monkeypatch.setenv("RECEIVABLES_LOCK_TIMEOUT_MINUTES", bad)
        with pytest.raises(ValueError, match="RECEIVABLES_LOCK_TIMEOUT_MINUTES must be a posit"):
            default_timeout_seconds()
