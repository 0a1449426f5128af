"""The monthly receivables report on the KPIs' hand-worked ledger (see tests/unit/test_kpis.py),
on both engines: the book at 2025-06-30 by bucket and class, the largest overdue balances, the
six-month trend; its files read back."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from receivables.config import Policy
from receivables.documents import CJK_FONT_PACKAGE, cjk_fonts
from receivables.evaluation.monthly import (
    month_end_before,
    month_ends,
    monthly_email,
    monthly_figures,
    prepare_month,
    write_monthly_report,
)
from tests.helpers import load_ledger
from tests.unit.test_kpis import facts

D = dt.date
JUNE = D(2025, 6, 30)


def test_month_ends():
    assert month_end_before(D(2025, 7, 1)) == JUNE
    assert month_end_before(D(2025, 3, 15)) == D(2025, 2, 28)
    assert month_ends(JUNE, 3) == [D(2025, 4, 30), D(2025, 5, 31), JUNE]
    assert month_ends(D(2025, 1, 31), 2) == [D(2024, 12, 31), D(2025, 1, 31)]


@pytest.fixture
def june(engine):
    load_ledger(engine, facts())
    policy = Policy()
    prepare_month(engine, JUNE, policy)
    return monthly_figures(engine, JUNE, policy)


def test_the_book_at_the_months_end(june):
    m = Decimal
    assert june.months[0] == D(2025, 1, 31)
    assert june.months[-1] == JUNE
    assert june.total(JUNE) == m("450000.00")
    assert june.overdue(JUNE) == m("200000.00")
    assert june.overdue_ratio(JUNE) == m("0.444444")
    # J1, M1, P3 not due; A1 51 days; P1 141 days; L1 394 days
    assert june.buckets[JUNE]["current"] == m("250000.00")
    assert june.buckets[JUNE]["31-60"] == m("60000.00")
    assert june.buckets[JUNE]["91-180"] == m("120000.00")
    assert june.buckets[JUNE]["361+"] == m("20000.00")
    assert june.classes == {
        "normal": m("250000.00"),
        "special_mention": m("60000.00"),
        "substandard": m("120000.00"),
        "doubtful": m("0.00"),
        "loss": m("20000.00"),
    }
    top = [(r["customer_id"], r["overdue"], r["worst_days"]) for r in june.top_overdue]
    assert top == [("C1", m("140000.00"), 394), ("C3", m("60000.00"), 51)]
    assert sum(june.grades.values()) == 4  # every customer scored at the month's end
    assert june.ecl is not None


@pytest.mark.skipif(not cjk_fonts(), reason=f"no font covering Chinese: {CJK_FONT_PACKAGE}")
def test_the_files_and_the_email(june, tmp_path):
    from openpyxl import load_workbook
    from pypdf import PdfReader

    folder = write_monthly_report(june, tmp_path / "2025-06")
    text = "".join(p.extract_text() for p in PdfReader(folder / "report-zh-CN.pdf").pages)
    assert "月度应收账款报告 2025-06" in text
    assert "450,000.00" in text
    sheet = load_workbook(folder / "report.xlsx")["Structure"]
    rows = {r[0].value: r for r in sheet.iter_rows(min_row=2)}
    assert rows["current"][-1].value == 250000
    email = monthly_email(folder, JUNE, ("board@example.com",))
    assert email.key == "monthly-report/2025-06"
    assert {a.filename for a in email.attachments} >= {
        "report-zh-CN.pdf",
        "report-en.pdf",
        "report.xlsx",
        "structure-zh-CN.png",
    }
