"""Staff feedback files (``feedback*``) through the real per-file ingest, on SQLite and
PostgreSQL: each good row is one remark of the collection staff, kept in ``staff_feedback`` for
the quarterly evaluation; bad rows are quarantined with their reason like any ledger row."""

from __future__ import annotations

import datetime as dt

from receivables.ingest.kinds import FEEDBACK_TOPICS, KINDS, kind_for, ordered_kinds
from receivables.warehouse.schema import staff_feedback
from tests.helpers import drop, rejects_by_cell, rows

HEADER = "feedback_id,date,author,team,topic,text\n"
NAME = "feedback_2024-02.csv"


def remarks(engine) -> dict[str, dict]:
    found = rows(engine, staff_feedback, staff_feedback.c.feedback_id)
    return {r["feedback_id"]: r for r in found}


def test_feedback_is_a_kind_of_its_own_loaded_last():
    kind = kind_for("Feedback_Shanghai team Q1.xlsx")
    assert kind is KINDS["feedback"]
    assert ordered_kinds()[-1] is kind
    assert kind.required == ("feedback_id", "date", "author", "text")
    assert kind.names == ("feedback_id", "date", "author", "team", "topic", "text")
    assert kind.written_tables == ("staff_feedback",)
    assert "other" in FEEDBACK_TOPICS


def test_a_file_of_remarks_loads_and_bad_rows_are_quarantined_saying_why(
    ingest, engine, home, tmp_path
):
    inbox = home / "inbox"
    long_text = "x" * 4001
    drop(
        inbox,
        NAME,
        HEADER + "F-1,2024-02-01,王芳,上海一组,Strategy,第二次提醒太晚了，客户已经逾期四十天。\n"
        'F-2,2024/02/15,Li Lei,,TEMPLATES,"The English letter is stiff.\nSay ""please"" once."\n'
        'F-3,20240229,Zhang Wei,,,=HYPERLINK("http://x";"call") customers ask for a number\n'
        "F-4,2024-03-02,Zhang Wei,,tools,dated after the business date\n"  # 2024-03-01
        "F-5,2024-02-01,Zhang Wei,,gossip,not a topic\n"
        "F-6,2024-02-01,,,other,no author\n"
        "F-7,2024-02-01,Zhang Wei,,other,\n"  # no text
        f"F-8,2024-02-01,Zhang Wei,,other,{long_text}\n"
        "F-9,2024-02-01,Zhang Wei,,other,first copy\n"
        "F-9,2024-02-02,Zhang Wei,,other,second copy\n",
    )
    outcome = ingest.ingest(inbox / NAME)
    assert (outcome.kind, outcome.status) == ("feedback", "loaded")
    assert (outcome.rows_read, outcome.rows_loaded, outcome.rows_quarantined) == (10, 3, 7)
    assert not list(inbox.iterdir())  # archived

    found = remarks(engine)
    assert sorted(found) == ["F-1", "F-2", "F-3"]
    assert {k: (v["given_on"], v["author"], v["team"], v["topic"]) for k, v in found.items()} == {
        "F-1": (dt.date(2024, 2, 1), "王芳", "上海一组", "strategy"),
        "F-2": (dt.date(2024, 2, 15), "Li Lei", None, "templates"),
        "F-3": (dt.date(2024, 2, 29), "Zhang Wei", None, "other"),  # no topic: other
    }
    assert found["F-1"]["text"] == "第二次提醒太晚了，客户已经逾期四十天。"
    assert found["F-2"]["text"] == 'The English letter is stiff.\nSay "please" once.'
    assert found["F-3"]["text"].startswith('=HYPERLINK("http://x";"call")')  # kept as text

    problems = rejects_by_cell(engine, tmp_path)
    assert {key: problem["reason"] for key, problem in problems.items()} == {
        ("4", "date"): (
            "dated after the business date 2024-03-01: feedback is dropped once it was given"
        ),
        ("5", "topic"): "not one of strategy, templates, customers, legal, tools, other",
        ("6", "author"): "a value is required",
        ("7", "text"): "a value is required",
        ("8", "text"): "longer than 4000 characters",
        ("9", "feedback_id"): "feedback_id appears 2 times in this file; every copy is held back",
        ("10", "feedback_id"): "feedback_id appears 2 times in this file; every copy is held back",
    }
    assert problems[("4", "date")]["value"] == "2024-03-02"
    assert problems[("5", "topic")]["value"] == "gossip"


def test_a_remark_sent_again_under_its_id_replaces_the_earlier_one(ingest, engine, home):
    inbox = home / "inbox"
    drop(inbox, NAME, HEADER + "F-1,2024-02-01,王芳,上海一组,strategy,first words\n")
    assert ingest.ingest(inbox / NAME).rows_loaded == 1
    drop(inbox, "feedback_corrected.csv", HEADER + "F-1,2024-02-02,王芳,,,corrected words\n")
    outcome = ingest.ingest(inbox / "feedback_corrected.csv")
    assert (outcome.status, outcome.rows_loaded) == ("loaded", 1)
    (remark,) = remarks(engine).values()
    # empty optional values keep what the warehouse has; the rest is the correction
    assert (remark["given_on"], remark["team"], remark["topic"], remark["text"]) == (
        dt.date(2024, 2, 2),
        "上海一组",
        "strategy",
        "corrected words",
    )


def test_a_file_without_the_text_column_is_refused_whole(ingest, engine, home):
    inbox = home / "inbox"
    drop(inbox, NAME, "feedback_id,date,author\nF-1,2024-02-01,王芳\n")
    outcome = ingest.ingest(inbox / NAME)
    assert outcome.status == "rejected"
    assert "missing required column(s): text" in outcome.reason
    assert remarks(engine) == {}


def test_a_latin1_file_is_refused_whole_and_a_nul_holds_back_its_row(ingest, engine, home):
    inbox = home / "inbox"
    text = HEADER + "F-1,2024-02-01,José Müller,,other,Señal débil\n"
    drop(inbox, "feedback_latin1.csv", text, encoding="latin-1")
    outcome = ingest.ingest(inbox / "feedback_latin1.csv")
    assert outcome.status == "rejected"
    assert "is not valid UTF-8" in outcome.reason
    assert "declare the inbox's encoding" in outcome.reason
    drop(inbox, "feedback_utf8.csv", text + "F-2,2024-02-01,José Müller,,other,a \x00 NUL\n")
    outcome = ingest.ingest(inbox / "feedback_utf8.csv")
    assert (outcome.status, outcome.rows_loaded, outcome.rows_quarantined) == ("loaded", 1, 1)
    assert [(r["author"], r["text"]) for r in remarks(engine).values()] == [
        ("José Müller", "Señal débil")
    ]
