"""The operations dashboard's figures, on both engines, from the worked example of
``tests/dashboard_data.py``: every amount below is what the product computed from that ledger,
stated as the worked example derives it by hand (never re-computed here)."""

from __future__ import annotations

import datetime as dt
import os
import re
from decimal import Decimal

import pytest

from receivables import dashboard
from receivables.config import Settings
from receivables.dashboard import (
    AgingBucket,
    Book,
    Converted,
    LegalStatus,
    NoSnapshot,
    build,
    data_docs_file,
    latest_as_of,
    page_html,
)
from tests.dashboard_data import AS_OF, INVOICES_SHA, load_worked_example

D = Decimal


@pytest.fixture
def policy(home):
    return Settings.from_env().policy


@pytest.fixture
def example(engine, policy):
    load_worked_example(engine, policy)
    return engine


@pytest.fixture
def docs(tmp_path):
    """A GX data docs folder as the ingest leaves it, with the last run's invoices pages."""
    root = tmp_path / "local_site"
    run = f"2025-06-30_{INVOICES_SHA[:12]}_invoices.csv"
    for suite, stamp in (
        ("invoices_header", "20250629T220100Z"),
        ("invoices_staged", "20250629T220100Z"),
        ("invoices_staged", "20250629T230500Z"),  # a retry: the later one is shown
    ):
        page = root / "validations" / suite / run / stamp / "invoices.html"
        page.parent.mkdir(parents=True, exist_ok=True)
        page.write_text("<html>validation</html>", encoding="utf-8")
    (root / "index.html").write_text("<html>index</html>", encoding="utf-8")
    return root


def test_the_latest_date_is_shown_by_default_with_totals_per_currency_and_in_cny(example, policy):
    dash = build(example, policy)

    assert dash.as_of == AS_OF == latest_as_of(example)
    assert dash.reporting_currency == "CNY"
    assert dash.books == (
        Book("CNY", invoices=4, customers=2, overdue_customers=2, outstanding=D("4000.85"),
             overdue=D("1500.35")),
        Book("HKD", invoices=1, customers=1, overdue_customers=1, outstanding=D("5000.00"),
             overdue=D("5000.00")),
        Book("USD", invoices=2, customers=1, overdue_customers=1, outstanding=D("1099.99"),
             overdue=D("1000.00")),
    )  # fmt: skip
    # USD at 7.1234567891 (the rate of 06-27, in force on 06-30): 1,099.99 -> 7,835.73 and
    # 1,000.00 -> 7,123.46, each to the cent; HKD has no rate and is left out, by name
    assert dash.total == Converted(
        "CNY", AS_OF, outstanding=D("11836.58"), overdue=D("8623.81"), missing=("HKD",)
    )
    assert (dash.invoices, dash.customers, dash.overdue_customers) == (7, 4, 4)
    assert dashboard.percent(dash.total.overdue_share) == "72.9 %"
    assert dashboard.percent(dash.books[0].overdue_share) == "37.5 %"


def test_aging_buckets_follow_the_policy_and_convert_each_currency_to_the_cent(example, policy):
    dash = build(example, policy)

    assert dash.buckets == (
        AgingBucket("current", 2, {"CNY": D("2500.50"), "USD": D("99.99")}, D("3212.77")),
        AgingBucket("1-30", 2, {"CNY": D("0.10"), "HKD": D("5000.00")}, D("0.10")),
        AgingBucket("31-60", 1, {"CNY": D("800.25")}, D("800.25")),
        AgingBucket("61-90", 0, {}, D("0.00")),
        AgingBucket("91-180", 2, {"CNY": D("700.00"), "USD": D("1000.00")}, D("7823.46")),
        AgingBucket("181-360", 0, {}, D("0.00")),
        AgingBucket("361+", 0, {}, D("0.00")),
    )
    # the buckets partition each book exactly
    for book in dash.books:
        assert sum(b.amounts.get(book.currency, D(0)) for b in dash.buckets) == book.outstanding


def test_the_trend_reads_the_stored_month_ends_and_the_day_at_each_days_rates(example, policy):
    dash = build(example, policy)

    assert [
        (p.day, p.converted.outstanding, p.converted.overdue, p.converted.missing)
        for p in dash.trend
    ] == [
        # USD has no rate yet on 03-31; 06-29 is not a month-end and is not shown
        (dt.date(2025, 3, 31), D("1000.00"), D("0.00"), ("USD",)),
        (dt.date(2025, 4, 30), D("10440.25"), D("9640.00"), ()),  # USD 1,200.00 at 7.2
        (dt.date(2025, 5, 31), D("10080.25"), D("10080.25"), ("HKD",)),  # at 7.15
        (AS_OF, D("11836.58"), D("8623.81"), ("HKD",)),
    ]


def test_warnings_reminders_and_legal_cases_of_the_day(example, policy):
    dash = build(example, policy)

    assert dash.warnings == {"critical": 1, "high": 2, "medium": 1, "low": 1}
    assert list(dash.warnings) == ["critical", "high", "medium", "low"]
    assert dash.warnings_by_kind == {
        "concentration": {"critical": 1},
        "newly_overdue": {"low": 1},
        "over_credit_limit": {"high": 1},
        "rolled_worse": {"high": 1, "medium": 1},
    }
    day, recent = dash.reminders_on_day, dash.reminders_recent
    assert (day.planned, day.sent, day.refused, day.failed, day.pending) == (5, 2, 1, 1, 1)
    assert (day.delivered, day.opened, day.bounced) == (1, 0, 1)
    assert day.refused_by_rule == {"invoice_disputed": 1}
    assert (recent.first_day, recent.last_day) == (dt.date(2025, 6, 1), AS_OF)
    assert (recent.planned, recent.sent, recent.refused, recent.failed, recent.pending) == (
        7,
        3,
        2,
        1,
        1,
    )
    assert (recent.delivered, recent.opened, recent.bounced) == (2, 1, 1)
    assert recent.providers == ("sendgrid",)
    assert dash.legal == (
        LegalStatus("proposed", 1, {"CNY": D("12000.00")}),
        LegalStatus("approved", 2, {"CNY": D("30000.55"), "USD": D("5000.00")}),
        LegalStatus("recovered", 1, {"CNY": D("1000.00")}),
    )
    assert (dash.legal_cases, dash.legal_waiting, dash.legal_open) == (4, 1, 2)


def test_the_last_ingest_up_to_the_day_and_its_validation_pages(example, policy, docs):
    dash = build(example, policy, data_docs=docs / "index.html")

    ingest = dash.ingest
    assert ingest.as_of_date == AS_OF
    assert ingest.run_id == "scheduled__2025-06-29T22:00:00+00:00"
    assert ingest.finished_at == dt.datetime(2025, 6, 30, 0, 31, tzinfo=dt.UTC)
    assert [(f.file_name, f.status) for f in ingest.files] == [
        ("invoices.csv", "loaded"),
        ("payments.csv", "loaded"),
        ("customers <b>bad</b>.xlsx", "rejected"),
    ]
    assert (ingest.files_loaded, ingest.files_rejected) == (2, 1)
    assert (ingest.rows_read, ingest.rows_loaded, ingest.rows_quarantined) == (15, 13, 2)
    assert ingest.quarantined_by_column == (("amount", 1), ("due_date", 1))
    run = f"2025-06-30_{INVOICES_SHA[:12]}_invoices.csv"
    assert ingest.files[0].validations == (
        ("header", f"validations/invoices_header/{run}/20250629T220100Z/invoices.html"),
        ("staged", f"validations/invoices_staged/{run}/20250629T230500Z/invoices.html"),
    )
    assert ingest.files[1].validations == ()
    assert dash.data_docs == docs / "index.html"
    # an earlier day sees the earlier run; without data docs, no link
    earlier = build(example, policy, dt.date(2025, 6, 29))
    assert earlier.ingest.run_id == "run-0601"
    assert earlier.data_docs is None


def test_a_day_without_a_snapshot_is_refused_with_what_to_run(engine, example, policy):
    with pytest.raises(NoSnapshot, match=r"receivables run --as-of 2025-06-28"):
        build(example, policy, dt.date(2025, 6, 28))


def test_an_empty_warehouse_says_to_run_the_pipeline_first(engine, policy):
    assert latest_as_of(engine) is None
    with pytest.raises(NoSnapshot, match="no aging snapshot yet"):
        build(engine, policy)


def test_an_older_day_shows_what_was_stored_for_it(example, policy):
    dash = build(example, policy, dt.date(2025, 5, 31))

    assert dash.total == Converted(
        "CNY", dt.date(2025, 5, 31), D("10080.25"), D("10080.25"), ("HKD",)
    )
    assert [p.day for p in dash.trend] == [
        dt.date(2025, 3, 31),
        dt.date(2025, 4, 30),
        dt.date(2025, 5, 31),
    ]
    assert dash.warnings_total == 0
    assert dash.reminders_on_day.planned == 1  # the outbox reminder of 05-31
    assert [(s.status, s.cases) for s in dash.legal] == [("recovered", 1)]


def test_the_page_shows_the_figures_escaped_and_loads_nothing_from_elsewhere(example, policy, docs):
    html = page_html(
        build(example, policy, data_docs=docs / "index.html"),
        form_action="dashboard",
        data_docs_base="dashboard/data-docs/",
    )

    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))
    for shown in (
        "Receivables as of 2025-06-30",
        "Outstanding · CNY 11,836.58",  # all currencies in CNY
        "Overdue · CNY 8,623.81",
        "72.9 % of outstanding",
        "CNY 4 2 4,000.85 1,500.35 37.5 %",
        "All in CNY 7 4 11,836.58 8,623.81 72.9 % 4",
        "HKD 1 1 5,000.00 5,000.00 100.0 % 1",
        "No CNY rate on or before 2025-06-30 for HKD",
        "91-180 7,823.46 66.1 %",
        "1 critical",
        "2 high",
        "rolled worse · 1 1 · 2",  # critical, high, medium, low, all
        "Bounced or dropped 1 1",
        "approved 2 CNY 30,000.55 USD 5,000.00",
        "proposed 1 CNY 12,000.00",
        "1 case(s) wait for a decision",
        "Quarantined rows by column: amount 1, due_date 1",
    ):
        assert shown in text, shown
    assert "customers &lt;b&gt;bad&lt;/b&gt;.xlsx" in html  # a file name is text, not markup
    assert "<b>bad</b>" not in html
    run = f"2025-06-30_{INVOICES_SHA[:12]}_invoices.csv"
    assert f'href="dashboard/data-docs/validations/invoices_staged/{run}/' in html
    assert 'href="dashboard/data-docs/index.html"' in html
    # nothing from elsewhere: no script, no external stylesheet, image or font
    assert "<script" not in html
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html)


def test_the_page_without_a_dashboard_says_why(policy):
    html = page_html(
        None,
        form_action="dashboard",
        data_docs_base="dashboard/data-docs/",
        message="no aging snapshot for 2025-06-28: run receivables run --as-of 2025-06-28",
        asked="2025-06-28",
    )

    assert "run receivables run --as-of 2025-06-28" in html
    assert 'value="2025-06-28"' in html


def test_money_and_percentages_are_formatted_exactly():
    assert dashboard.money(D("12345678901234.5")) == "12,345,678,901,234.50"
    assert dashboard.money(D("0.10")) == "0.10"
    assert dashboard.percent(D("0.0005")) == "0.1 %"  # half up, not to even
    assert dashboard.percent(D("0.00004")) == "< 0.1 %"
    assert dashboard.percent(D(0)) == "0.0 %"
    assert dashboard.percent(None) == "–"


def test_data_docs_files_are_served_from_their_folder_only(docs, tmp_path):
    (tmp_path / "secret.txt").write_text("no", encoding="utf-8")
    os.symlink(tmp_path / "secret.txt", docs / "link.html")
    (docs / ".hidden.html").write_text("no", encoding="utf-8")

    assert data_docs_file(docs, "index.html") == (docs / "index.html").resolve()
    for hostile in (
        "../secret.txt",
        "validations/../../secret.txt",
        "/etc/passwd",
        "link.html",  # a link out of the folder
        ".hidden.html",
        "validations",  # a folder
        "missing.html",
        "index.html\x00.png",
        "..\\secret.txt",
        "",
    ):
        assert data_docs_file(docs, hostile) is None, hostile
