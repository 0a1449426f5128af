"""``jobs.ingest_files`` as the mapped ingest tasks call it, on SQLite and PostgreSQL.

Two runs ingesting one inbox at once (two dates under the scheduler, or the scheduler and a
``receivables run``) are real processes here: each file loads exactly once, neither run fails,
and each run's own summary agrees with what the warehouse says it loaded.
"""

from __future__ import annotations

import datetime as dt
import json
import multiprocessing
import os
from pathlib import Path

import sqlalchemy as sa

from receivables import jobs
from receivables.config import Settings
from receivables.ingest.kinds import KINDS
from receivables.ingest.staging import Staging
from receivables.warehouse.schema import customers, ingested_files, invoices, payments

AS_OF = dt.date(2024, 3, 1)
FILES = {
    "customers.csv": "customer_id,name\nC1,Hengda\nC2,Acme\n",
    "invoices.csv": (
        "invoice_id,customer_id,issue_date,due_date,amount\n"
        "I1,C1,2024-01-01,2024-01-31,1000.00\n"
        "I2,C2,2024-01-15,2024-02-14,250.50\n"
        "I3,C1,2024-02-01,2024-03-02,99.99\n"
    ),
    "payments.csv": (
        "payment_id,invoice_id,paid_date,amount\nP1,I1,2024-02-01,400\nP2,I2,2024-02-10,250.50\n"
    ),
}


def ingest_as_a_run(home: str, db_url: str, run_id: str, tokens: list[str], start) -> list[dict]:
    """One run's ingest tasks, one file each, in loading order (a spawned process)."""
    os.environ["RECEIVABLES_HOME"] = home
    os.environ.pop("RECEIVABLES_INBOX", None)
    settings = Settings.from_env()
    start.wait()  # both runs begin together
    outcomes = []
    for token in tokens:
        outcomes += jobs.ingest_files(
            [token], settings=settings, db_url=db_url, as_of=AS_OF, run_id=run_id
        )
    return outcomes


def test_two_runs_ingesting_one_inbox_at_once_load_each_file_once(home, engine, db_url):
    inbox = home / "inbox"
    for name, text in FILES.items():
        (inbox / name).write_text(text, encoding="utf-8")
    listed = jobs.discover_inbox(inbox)  # both runs listed the inbox before either started
    tokens = [t for kind in ("customers", "invoices", "payments") for t in listed[kind]]
    context = multiprocessing.get_context("spawn")
    with context.Manager() as manager, context.Pool(2) as pool:
        start = manager.Barrier(2)
        runs = {
            run_id: pool.apply_async(ingest_as_a_run, (str(home), db_url, run_id, tokens, start))
            for run_id in ("run-a", "run-b")
        }
        outcomes = {run_id: result.get(timeout=600) for run_id, result in runs.items()}

    by_file: dict[str, list[str]] = {}
    for run_outcomes in outcomes.values():
        for outcome in run_outcomes:
            by_file.setdefault(outcome["file"], []).append(outcome["status"])
    assert {name: sorted(statuses) for name, statuses in by_file.items()} == {
        name: ["loaded", "skipped"] for name in FILES
    }
    with engine.connect() as conn:
        files = conn.execute(sa.select(ingested_files)).all()
        counts = [
            conn.execute(sa.select(sa.func.count()).select_from(t)).scalar()
            for t in (customers, invoices, payments)
        ]
    assert sorted((f.file_name, f.status) for f in files) == [
        (name, "loaded") for name in sorted(FILES)
    ]
    assert counts == [2, 3, 2]
    assert list(inbox.iterdir()) == []
    # each run's summary (the ledger asset, the email) agrees with the warehouse's records of
    # that run (what `receivables run` prints): a skipped file counts in neither
    for run_id, run_outcomes in outcomes.items():
        summary = jobs.summarize_ingest(
            run_outcomes, settings=Settings.from_env(), as_of=AS_OF, run_id=run_id
        )
        mine = [f for f in files if f.dag_run_id == run_id]
        assert summary["files_loaded"] == len(mine)
        assert summary["files_rejected"] == 0
        assert summary["rows_read"] == sum(f.rows_read for f in mine)
        assert summary["rows_loaded"] == sum(f.rows_loaded for f in mine)
    assert staging_left(engine) == []


def staging_left(engine) -> list[str]:
    inspector = sa.inspect(engine)
    names = inspector.get_table_names() + inspector.get_view_names()
    return sorted(n for n in names if n.startswith("stg_ingest"))


def test_staging_left_by_a_crashed_attempt_is_dropped_by_the_next_ingest(home, engine, db_url):
    crashed = Staging(engine, KINDS["invoices"])
    crashed.reset()  # as if its process had died mid-load
    assert staging_left(engine) == sorted([crashed.name, crashed.good_rows_view])
    (home / "inbox" / "customers.csv").write_text(FILES["customers.csv"], encoding="utf-8")
    (outcome,) = jobs.ingest_files(
        [str(home / "inbox" / "customers.csv")],
        settings=Settings.from_env(),
        db_url=db_url,
        as_of=AS_OF,
        run_id="after-the-crash",
    )
    assert outcome["status"] == "loaded"
    assert staging_left(engine) == []


def test_a_name_that_is_not_utf8_reaches_the_task_through_json(home, engine, db_url):
    inbox = home / "inbox"
    raw = os.path.join(os.fsencode(inbox), b"customers_\xe6\x97.csv")  # a cut multibyte char
    with open(raw, "wb") as f:
        f.write(FILES["customers.csv"].encode("utf-8"))
    listed = jobs.discover_inbox(inbox)
    # what XCom does between the listing task and the mapped ingest task
    carried = json.loads(json.dumps(listed, ensure_ascii=False).encode("utf-8"))
    (outcome,) = jobs.ingest_files(
        carried["customers"],
        settings=Settings.from_env(),
        db_url=db_url,
        as_of=AS_OF,
        run_id="manual",
    )
    assert (outcome["status"], outcome["rows_loaded"]) == ("loaded", 2)
    assert outcome["file"] == "customers_\\xe6\\x97.csv"
    assert Path(outcome["stored_path"]).exists()
    assert not os.path.lexists(raw)
