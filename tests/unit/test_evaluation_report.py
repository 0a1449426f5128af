"""The quarterly report's files on a hand-worked ledger: what a hostile collector name becomes
in the workbook, the charts and the HTML, and a report that is refused rather than sent
incomplete."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from receivables.config import Policy
from receivables.documents import CJK_FONT_PACKAGE, cjk_fonts
from receivables.evaluation.quarters import Quarter
from receivables.evaluation.report import evaluate, prepare_quarter, report_email, write_report
from receivables.warehouse.schema import collectors, staff_feedback
from tests.unit.test_collectors import insert_ledger

pytestmark = pytest.mark.skipif(
    not cjk_fonts(),
    reason=f"no font covering Chinese (fc-list :lang=zh is empty): install {CJK_FONT_PACKAGE}",
)

Q2 = Quarter(2025, 2)
HOSTILE = '=HYPERLINK("http://evil.example","$\\frac{1}{0}$ <b>x</b>")'


def remark(feedback_id: str, on: dt.date, text: str, topic: str, author: str = "王芳") -> dict:
    return {
        "feedback_id": feedback_id,
        "given_on": on,
        "author": author,
        "team": "上海一组",
        "topic": topic,
        "text": text,
        "source_file_id": 1,
    }


@pytest.fixture
def written(engine, tmp_path):
    insert_ledger(engine)
    with engine.begin() as conn:
        conn.execute(
            collectors.update().where(collectors.c.collector_id == "K1").values(name=HOSTILE)
        )
        conn.execute(
            staff_feedback.insert(),
            [
                remark("S1", dt.date(2025, 5, 6), HOSTILE, "other"),
                remark("S2", dt.date(2025, 6, 30), "第二次提醒太晚了。\n建议提前。", "strategy"),
                remark("S0", dt.date(2025, 3, 31), "last quarter's", "tools"),
            ],
        )
    policy = Policy()
    prepare_quarter(engine, Q2, policy)
    evaluation = evaluate(engine, Q2, policy)
    return evaluation, write_report(evaluation, tmp_path / "2025Q2")


def test_a_hostile_name_stays_text_everywhere(written):
    from openpyxl import load_workbook

    evaluation, files = written
    sheet = load_workbook(files.xlsx)["Collectors"]
    names = {row[1].value: row[2] for row in sheet.iter_rows(min_row=2)}
    assert names["K1"].value == HOSTILE
    assert names["K1"].data_type == "s"  # never a formula
    html = files.html["en"].read_text(encoding="utf-8")
    assert "<b>x</b>" not in html
    assert "&lt;b&gt;x&lt;/b&gt;" in html
    assert (files.folder / "charts" / "ranking-en.png").stat().st_size > 1000
    assert evaluation.collectors.of("K1").name == HOSTILE


def test_the_staff_feedback_of_the_quarter_is_in_the_report_and_the_workbook(written):
    from openpyxl import load_workbook

    _, files = written
    sheet = load_workbook(files.xlsx)["Staff feedback"]
    found = {row[0].value: row for row in sheet.iter_rows(min_row=2)}
    assert sorted(found) == ["S1", "S2"]  # S0 was given in the first quarter
    assert found["S1"][5].value == HOSTILE
    assert found["S1"][5].data_type == "s"  # never a formula
    assert found["S2"][5].value == "第二次提醒太晚了。\n建议提前。"  # whole, as given
    assert found["S2"][4].value == "strategy"
    zh = files.html["zh-CN"].read_text(encoding="utf-8")
    assert "员工反馈" in zh
    assert "第二次提醒太晚了。 建议提前。" in zh  # on one line
    assert "催收策略" in zh  # the topic in Chinese
    assert "王芳 (上海一组)" in zh
    en = files.html["en"].read_text(encoding="utf-8")
    assert "Staff feedback" in en
    assert "Remarks given in the quarter: 2" in en
    assert "last quarter" not in en


def test_the_email_is_refused_while_the_report_is_incomplete(written):
    _, files = written
    files.pdf["en"].unlink()
    with pytest.raises(FileNotFoundError, match=r"report-en\.pdf"):
        report_email(files.folder, Q2, ("board@example.com",))


def test_writing_again_replaces_the_files(written, engine):
    evaluation, files = written
    stale = files.folder / "charts" / "gone-en.png"
    stale.write_bytes(b"old")
    again = write_report(evaluation, files.folder)
    assert not stale.exists()
    assert again.pdf["zh-CN"].read_bytes()[:5] == b"%PDF-"
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(collectors)).scalar() > 0


def test_a_chinese_name_in_an_english_chart_needs_the_font(monkeypatch):
    from receivables.evaluation import charts

    png = charts.ranking("Collectors", ["郑敏", "Brandon Wells"], [None, None], "en")
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    monkeypatch.setattr(charts, "_cjk_family", lambda: None)
    with pytest.raises(charts.ChartError, match=CJK_FONT_PACKAGE):
        charts.ranking("Collectors", ["郑敏"], [None], "en")
    with pytest.raises(charts.ChartError, match=CJK_FONT_PACKAGE):
        charts.lines("回收率", ["2025Q2"], [], "zh-CN")
    assert charts.ranking("Collectors", ["Brandon Wells"], [None], "en")[:4] == b"\x89PNG"


def test_many_collectors_the_report_shows_the_best_and_the_worst(written):
    import dataclasses

    from receivables.evaluation.collectors import CollectorReport, CollectorResult
    from receivables.evaluation.report import render_html

    evaluation, _ = written
    staff = [
        CollectorResult(collector_id=f"K{n:02d}", name=f"Collector {n:02d}", rank=n)
        for n in range(1, 31)
    ]
    crowded = dataclasses.replace(
        evaluation,
        collectors=CollectorReport(quarter=Q2, reporting_currency="CNY", results=staff),
    )
    html = render_html(crowded, "en", {})
    shown = [n for n in range(1, 31) if f"Collector {n:02d}<" in html]
    assert shown == [*range(1, 16), *range(26, 31)]
    assert "in the workbook (sheet Collectors): 10" in html


def test_a_busy_quarter_shows_the_newest_remarks_and_keeps_every_one_whole(engine, tmp_path):
    """22 remarks: the report lists the 20 newest, one line each, a long one cut with its length,
    and says that the 2 oldest are in the workbook, which holds all 22 whole."""
    from openpyxl import load_workbook

    insert_ledger(engine)
    long_text = "电话常常打不通，" * 100  # 800 characters
    rows = [
        remark(f"R{day:02d}", dt.date(2025, 4, day), f"remark of April {day}", "tools")
        for day in range(1, 22)
    ]
    rows.append(remark("LONG", dt.date(2025, 6, 1), long_text, "customers"))
    with engine.begin() as conn:
        conn.execute(staff_feedback.insert(), rows)
    policy = Policy()
    prepare_quarter(engine, Q2, policy)
    evaluation = evaluate(engine, Q2, policy)
    files = write_report(evaluation, tmp_path / "2025Q2")

    en = files.html["en"].read_text(encoding="utf-8")
    assert "Remarks given in the quarter: 22" in en
    assert "older remarks of the quarter are in the workbook (sheet Staff feedback): 2" in en
    assert "remark of April 3<" in en  # the 20 newest: LONG and April 21 … 3
    assert "remark of April 2<" not in en
    assert "remark of April 1<" not in en
    assert "… (800 characters)" in en
    assert long_text not in en
    zh = files.html["zh-CN"].read_text(encoding="utf-8")
    assert "本季度较早的反馈见 Excel 工作簿（Staff feedback 工作表），条数： 2" in zh

    sheet = load_workbook(files.xlsx)["Staff feedback"]
    found = {row[0].value: row[5].value for row in sheet.iter_rows(min_row=2)}
    assert len(found) == 22
    assert found["LONG"] == long_text
    assert found["R01"] == "remark of April 1"
