"""The ``quarterly_evaluation`` DAG run by Airflow (``DAG.test()``) on the sample ledger, on
SQLite and PostgreSQL: a backfill of two quarters, each report read back (PDF text, workbook
cells, chart images), the management email sent once, and a past quarter reported the same
whether it is evaluated on its own day or as part of a later quarter's trend."""

from __future__ import annotations

import datetime as dt
import email
import io
import json
from decimal import Decimal
from email import policy as email_policy

import pytest

from receivables.config import Policy
from receivables.dates import start_of_business_day
from receivables.documents import CJK_FONT_PACKAGE, cjk_fonts
from receivables.evaluation.kpis import quarter_kpis
from receivables.evaluation.quarters import Quarter
from receivables.evaluation.report import HEADLINE, METRIC_LABELS, formatted
from receivables.sample import generate_sample
from receivables.warehouse.db import create_engine
from receivables.warehouse.migrate import upgrade

pytestmark = pytest.mark.skipif(
    not cjk_fonts(),
    reason=f"no font covering Chinese (fc-list :lang=zh is empty): install {CJK_FONT_PACKAGE}",
)

TZ = "Asia/Shanghai"
LOADED = dt.date(2025, 7, 1)
Q1, Q2 = Quarter(2025, 1), Quarter(2025, 2)


@pytest.fixture
def warehouse(home, db_url, monkeypatch, airflow_db):
    monkeypatch.setenv("RECEIVABLES_DB_URL", db_url)
    engine = create_engine(db_url)
    upgrade(engine)
    generate_sample(home / "inbox", 80, LOADED, seed=11)
    assert run("ledger_ingest", LOADED).ok
    yield engine
    engine.dispose()


def run(dag_id: str, day: dt.date):
    from receivables.airflow.runner import run_dag

    return run_dag(dag_id, start_of_business_day(day, TZ))


def ran(report, task_id: str) -> list[str]:
    return [state for task, _index, state in report.tasks if task == task_id]


def management_emails(home) -> list:
    found = []
    for path in sorted((home / "outbox").glob("*.eml")):
        message = email.message_from_bytes(path.read_bytes(), policy=email_policy.default)
        if message["X-Receivables-Category"] == "quarterly-evaluation":
            found.append(message)
    return found


def test_a_backfill_of_two_quarters_reports_each_once_and_the_same_way(warehouse, home):
    from openpyxl import load_workbook
    from PIL import Image
    from pypdf import PdfReader

    for day in (dt.date(2025, 4, 1), LOADED):  # Q1, then Q2
        report = run("quarterly_evaluation", day)
        assert report.ok, report.tasks
        for task_id in ("prepare_quarter", "write_report", "send_report"):
            assert ran(report, task_id) == ["success"], task_id

    folder = home / "reports" / "quarterly"
    assert sorted(p.name for p in folder.iterdir()) == ["2025Q1", "2025Q2"]
    expected = quarter_kpis(warehouse, Q2, Policy()).values
    assert expected["total_outstanding"] > 0

    # the PDFs hold the headline figures, in both languages
    english = "".join(p.extract_text() for p in PdfReader(folder / "2025Q2/report-en.pdf").pages)
    chinese = "".join(p.extract_text() for p in PdfReader(folder / "2025Q2/report-zh-CN.pdf").pages)
    assert "Quarterly collection evaluation 2025Q2" in english
    assert "季度催收评估报告" in chinese
    for name in ("total_outstanding", "dso", "overdue_ratio"):
        unit = "money" if name == "total_outstanding" else ("days" if name == "dso" else "ratio")
        assert formatted(expected[name], unit, "en") in english, name
        assert METRIC_LABELS[name]["zh-CN"] in chinese, name
    assert set(HEADLINE) <= set(expected)

    # the workbook holds every KPI of the trend, the evaluated quarter last
    sheet = load_workbook(folder / "2025Q2/report.xlsx")["KPIs"]
    header = [c.value for c in sheet[1]]
    assert header[3:7] == ["2024Q3", "2024Q4", "2025Q1", "2025Q2"]
    cells = {row[0].value: row for row in sheet.iter_rows(min_row=2)}
    for name, value in expected.items():
        cell = cells[name][6].value
        if value is None:
            assert cell is None, name
        else:
            assert Decimal(str(cell)) == value, name

    # the staff's remarks of the quarter (the sample's feedback file, loaded by the ingest)
    # are listed in the workbook and summed up in both PDFs
    remarks = [
        row
        for row in load_workbook(folder / "2025Q2/report.xlsx")["Staff feedback"].iter_rows(
            min_row=2, values_only=True
        )
    ]
    assert remarks
    assert all(Q2.start <= row[1].date() <= Q2.end for row in remarks)
    assert f"Remarks given in the quarter: {len(remarks)}" in english
    assert "员工反馈" in chinese

    # the charts are images
    for chart in ("aging-en.png", "aging-zh-CN.png", "recovery-zh-CN.png"):
        with Image.open(folder / "2025Q2/charts" / chart) as image:
            assert image.format == "PNG"
            assert image.width > 600
            assert image.height > 300

    # Q1 is the same on its own day as in Q2's trend
    alone = json.loads((folder / "2025Q1/figures.json").read_text())["kpis"]["2025Q1"]
    in_trend = json.loads((folder / "2025Q2/figures.json").read_text())["kpis"]["2025Q1"]
    assert alone == in_trend

    # one email per quarter, with the report attached and the charts inline; a re-run sends
    # nothing again
    sent = management_emails(home)
    assert len(sent) == 2
    q2 = next(m for m in sent if "2025Q2" in m["Subject"])
    parts = {p.get_filename(): p for p in q2.walk() if p.get_filename()}
    assert {"report-zh-CN.pdf", "report-en.pdf", "report.xlsx"} <= set(parts)
    assert parts["aging-zh-CN.png"].get_content_disposition() == "inline"
    html = q2.get_body(("html",)).get_content()
    assert "cid:aging-zh-CN.2025Q2@receivables" in html
    assert PdfReader(io.BytesIO(parts["report-en.pdf"].get_content())).pages
    again = run("quarterly_evaluation", LOADED)
    assert again.ok
    assert len(management_emails(home)) == 2


def test_the_monthly_report_of_june_is_written_and_sent_once(warehouse, home):
    from pypdf import PdfReader

    for _ in range(2):
        report = run("monthly_report", LOADED)
        assert report.ok, report.tasks
        for task_id in ("prepare_month", "write_report", "send_report"):
            assert ran(report, task_id) == ["success"], task_id
    folder = home / "reports" / "monthly" / "2025-06"
    english = "".join(p.extract_text() for p in PdfReader(folder / "report-en.pdf").pages)
    assert "Monthly receivables report 2025-06" in english
    sent = []
    for path in sorted((home / "outbox").glob("*.eml")):
        message = email.message_from_bytes(path.read_bytes(), policy=email_policy.default)
        if message["X-Receivables-Category"] == "monthly-report":
            sent.append(message)
    assert len(sent) == 1  # the second run sent nothing again
