"""The legal_updates file kind through the real per-file ingest, on SQLite and PostgreSQL.

A legal update file moves legal cases along their lifecycle: its rows are steps taken in file
order inside the file's load transaction (filed, then judgment, for one case in one file), each
judged by receivables.legal.lifecycle; the steps that cannot be taken are quarantined with the
lifecycle's own message, the others are recorded with the file as their source. A file never
approves or rejects a case, and a file sent again changes nothing.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pytest
import sqlalchemy as sa

from receivables.ingest import pipeline, rules
from receivables.ingest.kinds import FILE_STATUSES, KINDS, kind_for, ordered_kinds
from receivables.ingest.pipeline import discover
from receivables.legal.lifecycle import TRANSITIONS, WITH_AMOUNT, Step, apply
from receivables.warehouse.schema import (
    CASE_STATUSES,
    ingested_files,
    legal_case_events,
    legal_cases,
    quarantined_rows,
)
from tests.helpers import INGEST_AS_OF, drop, exported, rejects_by_cell
from tests.unit.test_rules import make_batch

AS_OF = INGEST_AS_OF  # 2024-03-01
OPENED = dt.date(2024, 1, 10)
APPROVED = dt.date(2024, 1, 15)
HEADER = "case_id,status,date,amount,currency,note,actor\n"
#: Every step recorded from a file names it.
NAME = "legal_updates_2024-03.csv"


def case(engine, case_id: str, status: str = "approved", amount="1000.00", currency="CNY"):
    """A legal case proposed on OPENED and, unless still proposed, approved on APPROVED."""
    history = [("proposed", OPENED)] + ([] if status == "proposed" else [("approved", APPROVED)])
    with engine.begin() as conn:
        conn.execute(
            legal_cases.insert().values(
                case_id=case_id,
                customer_id=f"CUST-{case_id}",
                opened_on=OPENED,
                amount=Decimal(amount),
                currency=currency,
                status="proposed",
                updated_on=OPENED,
            )
        )
        for step_status, on in history:
            if step_status == "proposed":
                conn.execute(
                    legal_case_events.insert().values(
                        case_id=case_id,
                        status="proposed",
                        occurred_on=on,
                        source="selection",
                        recorded_at=dt.datetime(2024, 1, 10, tzinfo=dt.UTC),
                    )
                )
            else:
                apply(conn, Step(case_id, step_status, on, actor="reviewer", source="review"))


def cases(engine) -> dict[str, dict]:
    with engine.connect() as conn:
        return {r.case_id: dict(r._mapping) for r in conn.execute(sa.select(legal_cases))}


def events(engine, case_id: str) -> list[tuple]:
    e = legal_case_events.c
    with engine.connect() as conn:
        found = conn.execute(
            sa.select(e.status, e.occurred_on, e.amount, e.note, e.actor, e.source)
            .where(e.case_id == case_id)
            .order_by(e.event_id)
        ).all()
    return [tuple(r) for r in found]


def event_count(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(legal_case_events)).scalar()


# -- the kind ----------------------------------------------------------------------------------


def test_legal_updates_is_a_kind_loaded_after_the_ledger():
    kind = kind_for("Legal_Updates_2024-03.xlsx")
    assert kind is KINDS["legal_updates"]
    names = [k.name for k in ordered_kinds()]
    assert names.index("legal_updates") > max(names.index(k) for k in ("invoices", "payments"))
    assert kind.required == ("case_id", "status", "date")
    assert kind.names == ("case_id", "status", "date", "amount", "currency", "note", "actor")
    assert kind.column(kind.id_column).derived_from == ("case_id", "status")
    assert kind.written_tables == ("legal_cases", "legal_case_events")


def test_a_file_sets_only_the_steps_after_approval():
    # every status a file may set is one the lifecycle knows and can reach from approval on
    assert set(FILE_STATUSES) <= set(CASE_STATUSES)
    reachable = {"approved"}
    for _ in CASE_STATUSES:
        reachable |= {s for r in reachable for s in TRANSITIONS[r]}
    assert set(FILE_STATUSES) == reachable - {"approved"}
    assert "approved" not in FILE_STATUSES
    assert "rejected" not in FILE_STATUSES
    assert set(WITH_AMOUNT) <= set(FILE_STATUSES)


def test_the_status_is_read_in_any_case_and_approval_is_refused_saying_why():
    kind = KINDS["legal_updates"]
    rows = [
        {"case_id": "LC-1", "status": status, "date": "2024-02-01"}
        for status in ("Filed", "WRITTEN OFF", "written-off", "approved", "rejected", "appealed")
    ]
    result = rules.check_batch(kind, make_batch(rows, [1, 2, 3, 4, 5, 6]))
    staged = result.staged.to_pylist()
    assert [r["status"] for r in staged[:3]] == ["filed", "written_off", "written_off"]
    assert [r["step_id"] for r in staged[:3]] == [
        "LC-1 filed",
        "LC-1 written_off",
        "LC-1 written_off",
    ]
    assert [r["held"] for r in staged] == [False, False, False, True, True, True]
    reason = (
        "not one of filed, judgment, recovered, settled, written_off, closed (a case is "
        "approved or rejected in its legal review, never by a file)"
    )
    assert [
        (p["row_number"], p["column_name"], p["value"], p["reason"])
        for p in result.problems.to_pylist()
    ] == [
        (4, "status", "approved", reason),
        (5, "status", "rejected", reason),
        (6, "status", "appealed", reason),
    ]


# -- through the ingest ------------------------------------------------------------------------


def test_a_file_moves_cases_along_in_file_order(ingest, engine, home):
    for case_id in ("LC-1", "LC-2", "LC-3"):
        case(engine, case_id)
    case(engine, "LC-USD", currency="USD", amount="2500.00")
    inbox = home / "inbox"
    drop(
        inbox,
        NAME,
        HEADER + "LC-1,filed,2024-01-20,,,立案 (Shanghai court),王律师\n"
        'LC-1,Judgment,2024/02/10,,,"judgment for the full claim, with costs",\n'
        'LC-2,settled,20240215,"1,200.50",CNY,settled out of court,\n'
        "LC-USD,recovered,2024-02-20,2500,usd,,\n"
        "LC-3,closed,2024-03-01,,,claim withdrawn,\n",
    )
    outcome = ingest.ingest(inbox / NAME)
    assert (outcome.kind, outcome.status) == ("legal_updates", "loaded")
    assert (outcome.rows_read, outcome.rows_loaded, outcome.rows_quarantined) == (5, 5, 0)
    assert not list(inbox.iterdir())  # archived

    source = f"file:{NAME}"
    found = cases(engine)
    assert {k: (v["status"], v["updated_on"]) for k, v in found.items()} == {
        "LC-1": ("judgment", dt.date(2024, 2, 10)),
        "LC-2": ("settled", dt.date(2024, 2, 15)),
        "LC-3": ("closed", dt.date(2024, 3, 1)),
        "LC-USD": ("recovered", dt.date(2024, 2, 20)),
    }
    assert found["LC-2"]["recovered_amount"] == Decimal("1200.50")
    assert found["LC-USD"]["recovered_amount"] == Decimal("2500.00")
    assert events(engine, "LC-1")[2:] == [
        ("filed", dt.date(2024, 1, 20), None, "立案 (Shanghai court)", "王律师", source),
        (
            "judgment",
            dt.date(2024, 2, 10),
            None,
            "judgment for the full claim, with costs",
            None,
            source,
        ),
    ]
    (settled,) = events(engine, "LC-2")[2:]
    assert settled[:3] == ("settled", dt.date(2024, 2, 15), Decimal("1200.50"))
    with engine.connect() as conn:
        record = conn.execute(sa.select(ingested_files)).one()
    assert (record.kind, record.file_name, record.status) == ("legal_updates", NAME, "loaded")


def test_steps_that_cannot_be_taken_are_quarantined_with_the_lifecycles_reason(
    ingest, engine, home, tmp_path
):
    for case_id in ("LC-1", "LC-2", "LC-3", "LC-4", "LC-5", "LC-6", "LC-7", "LC-8"):
        case(engine, case_id)
    case(engine, "LC-P", status="proposed")
    inbox = home / "inbox"
    drop(
        inbox,
        NAME,
        HEADER + "LC-1,filed,2024-02-01,,,,\n"  # 1: good
        "NOPE,filed,2024-02-01,,,,\n"  # 2: no such case
        "LC-2,judgment,2024-02-01,,,,\n"  # 3: approved cannot become judgment
        "LC-3,filed,2024-01-12,,,,\n"  # 4: before its approval (2024-01-15)
        "LC-3,judgment,2024-02-01,,,,\n"  # 5: LC-3 was not filed: still approved
        "LC-4,recovered,2024-02-01,,,,\n"  # 6: needs an amount
        "LC-5,filed,2024-02-01,10,,,\n"  # 7: takes no amount
        "LC-6,filed,2024-02-01,,,,\n"  # 8: good ...
        "LC-6,written_off,2024-02-02,5000,,,\n"  # 9: ... more than claimed
        "LC-P,filed,2024-02-01,,,,\n"  # 10: still proposed
        "LC-7,filed,2024-03-02,,,,\n"  # 11: after the business date
        "LC-8,settled,2024-02-01,10,USD,,\n"  # 12: the case is claimed in CNY
        "LC-1,closed,2024-02-05,,,,\n"  # 13: repeated step ...
        "LC-1,closed,2024-02-06,,,,\n"  # 14: ... both copies held back
        "LC-4,approved,2024-02-01,,,,\n"  # 15: a file never approves
        "LC-4,settled,2024-02-01,0,,,\n"  # 16: row check: amount above 0
        "LC-4,filed,2024-02-30,,,,\n",  # 17: no such day
    )
    outcome = ingest.ingest(inbox / NAME)
    assert (outcome.rows_read, outcome.rows_loaded, outcome.rows_quarantined) == (17, 2, 15)
    found = rejects_by_cell(engine, tmp_path)

    def line(row: int, column: str) -> tuple[str, str, str]:
        got = found[(str(row), column)]
        assert (got["file"], got["kind"]) == (NAME, "legal_updates")
        return got["record_id"], got["value"], got["reason"]

    assert line(2, "case_id") == ("NOPE filed", "NOPE", "no legal case NOPE")
    assert line(3, "status") == (
        "LC-2 judgment",
        "judgment",
        "case LC-2 is approved: it cannot become judgment (what may follow: filed, recovered, "
        "settled, closed)",
    )
    assert line(4, "date") == (
        "LC-3 filed",
        "2024-01-12",
        "case LC-3: filed on 2024-01-12 is before its last step (2024-01-15)",
    )
    assert line(5, "status")[2].startswith("case LC-3 is approved: it cannot become judgment")
    assert line(6, "amount") == ("LC-4 recovered", "", "case LC-4: recovered needs an amount")
    assert line(7, "amount") == ("LC-5 filed", "10.00", "case LC-5: filed takes no amount")
    record_id, value, reason = line(9, "amount")
    assert (record_id, value) == ("LC-6 written_off", "5000.00")
    assert reason.startswith("case LC-6: cannot write off 5000.00 CNY, more than the 1000.00 CNY")
    assert line(10, "status")[2] == (
        "case LC-P is proposed: it cannot become filed (what may follow: approved, rejected)"
    )
    assert line(11, "date") == (
        "LC-7 filed",
        "2024-03-02",
        "case LC-7: filed on 2024-03-02 is after the business date 2024-03-01: a step is "
        "reported once it has happened",
    )
    assert line(12, "currency") == (
        "LC-8 settled",
        "USD",
        "case LC-8 is claimed in CNY: a step in USD cannot be recorded on it",
    )
    for row in (13, 14):
        assert line(row, "step_id") == (
            "LC-1 closed",
            "LC-1 closed",
            "step_id appears 2 times in this file; every copy is held back",
        )
    assert line(15, "status")[2].startswith("not one of filed, judgment")
    assert line(16, "amount")[2] == rules.REASON_AMOUNT_POSITIVE
    assert line(17, "date")[2] == rules.REASON_DATE
    assert len(found) == 15

    # the good rows moved their cases; the refused ones left theirs as they were
    statuses = {k: v["status"] for k, v in cases(engine).items()}
    assert statuses == {
        "LC-1": "filed",
        "LC-2": "approved",
        "LC-3": "approved",
        "LC-4": "approved",
        "LC-5": "approved",
        "LC-6": "filed",
        "LC-7": "approved",
        "LC-8": "approved",
        "LC-P": "proposed",
    }
    assert event_count(engine) == 8 * 2 + 1 + 2
    with engine.connect() as conn:
        record = conn.execute(sa.select(ingested_files)).one()
        held = conn.execute(sa.select(sa.func.count()).select_from(quarantined_rows)).scalar()
    assert (record.rows_read, record.rows_loaded, record.rows_quarantined) == (17, 2, 15)
    assert held == 15


def test_a_file_dropped_twice_changes_nothing(ingest, engine, home, tmp_path):
    import openpyxl

    case(engine, "LC-1")
    case(engine, "LC-2")
    inbox = home / "inbox"
    text = HEADER + (
        "LC-1,filed,2024-01-20,,,,\n"
        "LC-1,judgment,2024-02-10,,,,\n"
        "LC-1,recovered,2024-02-20,400,,,\n"
        "LC-2,settled,2024-02-01,900,,,\n"
    )
    drop(inbox, NAME, text)
    assert ingest.ingest(inbox / NAME).rows_loaded == 4
    before = (cases(engine), event_count(engine))

    # the very same bytes: refused whole, nothing changes
    drop(inbox, NAME, text)
    again = ingest.ingest(inbox / NAME)
    assert again.status == "rejected"
    assert "a file never loads twice" in again.reason
    assert (cases(engine), event_count(engine)) == before

    # the same steps in another file (a spreadsheet export): loaded, no step recorded twice;
    # a step recorded already with another amount is held back
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.append(["Case_ID", "Status", "Date", "Amount"])
    sheet.append(["LC-1", "filed", dt.date(2024, 1, 20), None])
    sheet.append(["LC-1", "judgment", dt.datetime(2024, 2, 10), None])
    sheet.append(["LC-1", "recovered", "2024-02-20", 400])
    sheet.append(["LC-2", "settled", dt.date(2024, 2, 1), 950])
    workbook.save(inbox / "legal_updates_resent.xlsx")
    resent = ingest.ingest(inbox / "legal_updates_resent.xlsx")
    assert (resent.status, resent.rows_read, resent.rows_loaded, resent.rows_quarantined) == (
        "loaded",
        4,
        3,
        1,
    )
    assert (cases(engine), event_count(engine)) == before
    line = rejects_by_cell(engine, tmp_path)[("4", "amount")]
    assert (line["file"], line["value"], line["reason"]) == (
        "legal_updates_resent.xlsx",
        "950.00",
        "case LC-2: settled on 2024-02-01 is recorded already with amount 900.00 CNY, not "
        "amount 950.00 CNY",
    )


def test_parquet_and_gb18030_files_load_like_utf8_csv(ingest, engine, home):
    import pyarrow.parquet as pq

    case(engine, "LC-1")
    case(engine, "案件-2")
    inbox = home / "inbox"
    pq.write_table(
        pa.table(
            {
                "case_id": ["LC-1", "LC-1"],
                "status": ["filed", "settled"],
                "date": pa.array([dt.date(2024, 1, 20), dt.date(2024, 2, 1)], pa.date32()),
                "amount": pa.array([None, Decimal("300.10")], pa.decimal128(18, 2)),
            }
        ),
        inbox / "legal_updates_a.parquet",
    )
    drop(
        inbox,
        "legal_updates_b.csv",
        "case_id,status,date,note\n案件-2,filed,2024-01-25,已向上海市浦东新区人民法院起诉\n",
        encoding="gb18030",
    )
    outcomes = [ingest.ingest(Path(p)) for p in discover(inbox).by_kind["legal_updates"]]
    assert [(o.file, o.status, o.rows_loaded) for o in outcomes] == [
        ("legal_updates_a.parquet", "loaded", 2),
        ("legal_updates_b.csv", "loaded", 1),
    ]
    found = cases(engine)
    assert (found["LC-1"]["status"], found["LC-1"]["recovered_amount"]) == (
        "settled",
        Decimal("300.10"),
    )
    assert events(engine, "案件-2")[-1] == (
        "filed",
        dt.date(2024, 1, 25),
        None,
        "已向上海市浦东新区人民法院起诉",
        None,
        "file:legal_updates_b.csv",
    )
    with engine.connect() as conn:
        formats = conn.execute(
            sa.select(ingested_files.c.file_format, ingested_files.c.encoding).order_by(
                ingested_files.c.file_id
            )
        ).all()
    assert [tuple(f) for f in formats] == [("parquet", None), ("csv", "gb18030")]


def test_a_file_without_a_required_column_is_refused_whole(ingest, engine, home, tmp_path):
    case(engine, "LC-1")
    inbox = home / "inbox"
    drop(inbox, NAME, "case_id,status,amount\nLC-1,filed,\n")
    outcome = ingest.ingest(inbox / NAME)
    assert outcome.status == "rejected"
    assert outcome.reason.startswith("missing required column(s): date;")
    assert (home / "rejected" / "2024-03-01" / NAME).exists()
    line = rejects_by_cell(engine, tmp_path)[("", "date")]
    assert line["kind"] == "legal_updates"
    assert cases(engine)["LC-1"]["status"] == "approved"


# -- hostile input -----------------------------------------------------------------------------


def test_hostile_values_are_stored_safely_or_quarantined(ingest, engine, home, tmp_path):
    backslashed = "LC\\2024\\1"
    for case_id in ("LC-1", "LC-3", "LC-4", "LC-5", "LC-6", backslashed):
        case(engine, case_id)
    hyperlink = '=HYPERLINK("http://evil.example","click")'
    quoted = '"' + hyperlink.replace('"', '""') + '"'
    inbox = home / "inbox"
    lines = [
        f"LC-1,filed,2024-02-01,,,{quoted},",  # 1: a formula in a note is text
        f"{quoted},filed,2024-02-01,,,,",  # 2: unknown case, named by a formula
        'LC-6,filed,2024-02-01,,,"an unclosed quote,',  # 3: set aside, reading resumes
        "LC-3,filed,2024-02-01,,,a NUL \x00 here,",  # 4
        "LC-4,filed,2024-02-01,,,\u202eevil,",  # 5: right-to-left override
        f"{backslashed},filed,2024-02-01,,,,",  # 6: good
        "LC\\9,filed,2024-02-01,,,,",  # 7: unknown, with a backslash
        "LC-5,filed,2024-02-01,,," + "长" * 2001 + ",",  # 8: too long a note
        "LC-5,judgment,2024-02-01,,,,张三 律师",  # 9: LC-5 was not filed
    ]
    drop(inbox, NAME, HEADER + "\n".join(lines) + "\n")
    outcome = ingest.ingest(inbox / NAME)
    assert (outcome.rows_read, outcome.rows_loaded, outcome.rows_quarantined) == (9, 2, 7)
    # a formula in a note is text: stored as written
    assert events(engine, "LC-1")[-1][3] == hyperlink
    assert cases(engine)[backslashed]["status"] == "filed"
    assert events(engine, backslashed)[-1][5] == f"file:{NAME}"

    found, text = exported(engine, "rejects", tmp_path)
    by_row = {r["row_number"]: r for r in found}
    # a formula in a case id is shown, never evaluated, by the rejects export
    assert by_row["2"]["record_id"] == f"'{hyperlink} filed"
    assert by_row["2"]["reason"] == f"no legal case {hyperlink}"
    assert by_row["3"]["reason"].startswith("a quote opened on line 4 is never closed properly")
    assert by_row["3"]["record_id"] == "LC-6 filed"
    assert by_row["4"]["reason"] == "contains a control character (\\x00) at position 7: remove it"
    assert by_row["4"]["value"] == "a NUL \\x00 here"
    assert by_row["5"]["reason"] == (
        "contains a bidirectional control character (\\u202e) at position 1: remove it"
    )
    assert by_row["7"]["reason"] == "no legal case LC\\9"
    assert by_row["7"]["record_id"] == "LC\\9 filed"
    assert by_row["8"]["reason"] == "longer than 2000 characters"
    assert by_row["9"]["reason"].startswith("case LC-5 is approved: it cannot become judgment")
    assert "\x00" not in text
    assert "\u202e" not in text
    assert "张三" not in by_row["9"]["reason"]  # a reason never names the actor


def test_latin1_bytes_refuse_the_file_whole(ingest, engine, home, tmp_path):
    case(engine, "LC-1")
    inbox = home / "inbox"
    (inbox / NAME).write_bytes(
        "case_id,status,date,note\n"
        "LC-1,filed,2024-02-01,Dépôt au greffe du tribunal de commerce\n"
        "LC-1,judgment,2024-02-20,Jugement rendu à Paris, décision définitive\n".encode("latin-1")
    )
    outcome = ingest.ingest(inbox / NAME)
    assert outcome.status == "rejected"
    assert outcome.reason.startswith("line 2 is not valid UTF-8")
    assert outcome.reason.endswith("or save the file as UTF-8")
    assert (home / "rejected" / "2024-03-01" / NAME).exists()
    assert cases(engine)["LC-1"]["status"] == "approved"
    assert event_count(engine) == 2


def test_the_file_name_as_dropped_is_the_source(ingest, engine, home):
    case(engine, "LC-1")
    name = "legal_updates_律师事务所 (march) \\ final.csv"
    inbox = home / "inbox"
    drop(inbox, name, "case_id,status,date\nLC-1,filed,2024-02-01\n")
    assert ingest.ingest(inbox / name).rows_loaded == 1
    assert events(engine, "LC-1")[-1][5] == f"file:{name}"
    long_name = "legal_updates_" + "x" * 237 + ".csv"  # 255 bytes: the longest name there is
    drop(inbox, long_name, "case_id,status,date\nLC-1,judgment,2024-02-02\n")
    assert ingest.ingest(inbox / long_name).rows_loaded == 1
    source = events(engine, "LC-1")[-1][5]
    assert len(source) <= 255
    assert source.startswith("file:legal_updates_xxx")
    assert source.endswith("… (255 characters)")


# -- atomicity ---------------------------------------------------------------------------------


def test_a_file_refused_after_the_rehearsal_changes_no_case(ingest, engine, home, monkeypatch):
    # the rehearsal takes every step (here: an approval the lifecycle allows) and rolls back;
    # the GX suite, the gate after it, refuses the file: the case is as it was
    case(engine, "LC-1", status="proposed")
    real = rules.PARSERS["choice"]

    def lenient(values, column):  # a row check that forgot which statuses a file may set
        parsed = real(values, column)
        parsed.failures = []
        return parsed

    monkeypatch.setitem(rules.PARSERS, "choice", lenient)
    inbox = home / "inbox"
    drop(inbox, NAME, "case_id,status,date\nLC-1,approved,2024-02-01\n")
    outcome = ingest.ingest(inbox / NAME)
    assert outcome.status == "rejected"
    assert "legal_updates_staged failed" in outcome.reason
    assert "expect_column_values_to_be_in_set(column=status" in outcome.reason
    assert cases(engine)["LC-1"]["status"] == "proposed"
    assert event_count(engine) == 1


def test_cases_changed_between_rehearsal_and_load_leave_the_file_for_the_next_run(
    ingest, engine, home
):
    case(engine, "LC-1")
    case(engine, "LC-2")
    inbox = home / "inbox"
    drop(inbox, NAME, "case_id,status,date\nLC-1,filed,2024-02-01\nLC-2,filed,2024-02-01\n")
    real_merge = pipeline.Staging.merge

    def close_then_merge(self, conn, file_id, defaults):
        # a writer that ignores the warehouse's lock closes LC-2 after the rehearsal
        apply(conn, Step("LC-2", "closed", dt.date(2024, 1, 31), source="cli"))
        return real_merge(self, conn, file_id, defaults)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(pipeline.Staging, "merge", close_then_merge)
        outcome = ingest.ingest(inbox / NAME)
    assert outcome.status == "skipped"
    assert "changed while it was being loaded" in outcome.reason
    assert (inbox / NAME).exists()
    assert {k: v["status"] for k, v in cases(engine).items()} == {
        "LC-1": "approved",
        "LC-2": "approved",
    }
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(ingested_files)).scalar() == 0
    retried = ingest.ingest(inbox / NAME)  # the next run loads it
    assert (retried.status, retried.rows_loaded) == ("loaded", 2)
    assert cases(engine)["LC-2"]["status"] == "filed"


def test_discover_lists_legal_updates_after_the_ledger(tmp_path):
    for name in ("legal_updates_b.csv", "payments.csv", "LEGAL_UPDATES_a.xlsx", "customers.csv"):
        (tmp_path / name).write_text("x")
    found = discover(tmp_path)
    listed = [kind for kind, paths in found.by_kind.items() if paths]
    assert listed == ["customers", "payments", "legal_updates"]
    assert [Path(p).name for p in found.by_kind["legal_updates"]] == [
        "LEGAL_UPDATES_a.xlsx",
        "legal_updates_b.csv",
    ]
    assert found.waiting == []


def test_a_file_of_many_refused_steps_holds_each_of_them(ingest, engine, home, tmp_path):
    # more refused rows than one statement binds: every one is held back and reported
    case(engine, "LC-1")
    inbox = home / "inbox"
    unknown = "".join(f"GONE-{i},filed,2024-02-01\n" for i in range(1, 1201))
    drop(inbox, NAME, "case_id,status,date\n" + unknown + "LC-1,filed,2024-02-01\n")
    outcome = ingest.ingest(inbox / NAME)
    assert (outcome.rows_read, outcome.rows_loaded, outcome.rows_quarantined) == (1201, 1, 1200)
    found = rejects_by_cell(engine, tmp_path)
    assert len(found) == 1200
    assert found[("1200", "case_id")]["reason"] == "no legal case GONE-1200"
    assert cases(engine)["LC-1"]["status"] == "filed"
