"""Unit tests of the sample ledger generator (receivables.sample)."""

from __future__ import annotations

import csv
import io
import re
from collections import Counter, defaultdict
from datetime import date, timedelta
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from openpyxl import load_workbook

from receivables.sample import (
    BEHAVIOURS,
    COLUMNS,
    PAYMENT_METHODS,
    SampleSummary,
    customer_behaviours,
    generate_sample,
)

pytestmark = pytest.mark.unit

AS_OF = date(2025, 6, 30)
N = 500
SEED = 42
AMOUNT = re.compile(r"^\d+\.\d{2}$")
ISO = re.compile(r"^\d{4}-\d{2}-\d{2}$")
EXAMPLE_DOMAIN = re.compile(r"^[a-z0-9._-]+@[a-z0-9-]+\.example\.(com|net|org)$")
BUCKETS = (
    ("current", -(10**6), 0),
    ("1-30", 1, 30),
    ("31-60", 31, 60),
    ("61-90", 61, 90),
    ("91-180", 91, 180),
    ("181-360", 181, 360),
    ("361+", 361, 10**6),
)


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def cents(text: str) -> int:
    units, frac = text.split(".")
    return int(units) * 100 + int(frac)


@pytest.fixture(scope="module")
def ledger(tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("sample")
    summary = generate_sample(out, N, AS_OF, SEED, truth=True)
    tables = {name: read_csv(summary.paths[name]) for name in (*COLUMNS, "truth")}
    return {"summary": summary, **tables}


def test_summary_counts_match_files(ledger: dict) -> None:
    summary: SampleSummary = ledger["summary"]
    assert summary.customers == len(ledger["customers"]) == N
    assert summary.collectors == len(ledger["collectors"])
    assert summary.invoices == len(ledger["invoices"])
    assert summary.payments == len(ledger["payments"])
    assert summary.feedback == len(ledger["feedback"]) >= 8
    assert summary.defects == {}
    assert summary.defect_rows == 0


def test_same_seed_same_bytes_and_other_seed_differs(tmp_path: Path) -> None:
    first = generate_sample(tmp_path / "a", 120, AS_OF, 7)
    again = generate_sample(tmp_path / "b", 120, AS_OF, 7)
    other = generate_sample(tmp_path / "c", 120, AS_OF, 8)
    for name in COLUMNS:
        assert first.paths[name].read_bytes() == again.paths[name].read_bytes(), name
    assert first.paths["invoices"].read_bytes() != other.paths["invoices"].read_bytes()
    assert first.paths["customers"].read_bytes() != other.paths["customers"].read_bytes()


def test_headers_follow_the_contract(ledger: dict) -> None:
    for name, columns in COLUMNS.items():
        header = ledger["summary"].paths[name].read_text(encoding="utf-8").split("\n", 1)[0]
        assert header == ",".join(columns)


def test_csv_is_utf8_lf_and_quoted_like_the_csv_module(ledger: dict) -> None:
    for name in COLUMNS:
        raw = ledger["summary"].paths[name].read_bytes()
        assert b"\r" not in raw
        assert raw.endswith(b"\n")
        rows = list(csv.reader(io.StringIO(raw.decode("utf-8"), newline="")))
        rewritten = io.StringIO()
        csv.writer(rewritten, lineterminator="\n").writerows(rows)
        assert rewritten.getvalue().encode("utf-8") == raw, name
    # English company names such as "Smith, Jones and Brown" need quoting.
    assert any("," in row["name"] for row in ledger["customers"])


def test_referential_integrity_and_unique_ids(ledger: dict) -> None:
    collectors = {row["collector_id"] for row in ledger["collectors"]}
    customers = {row["customer_id"] for row in ledger["customers"]}
    invoices = {row["invoice_id"] for row in ledger["invoices"]}
    assert len(collectors) == len(ledger["collectors"]) >= 2
    assert len(customers) == N
    assert len(invoices) == len(ledger["invoices"])
    assert len({row["payment_id"] for row in ledger["payments"]}) == len(ledger["payments"])
    assert {row["collector_id"] for row in ledger["customers"]} <= collectors
    assert {row["customer_id"] for row in ledger["invoices"]} <= customers
    assert {row["invoice_id"] for row in ledger["payments"]} <= invoices
    assert all(re.fullmatch(r"C\d{6}", c) for c in customers)
    assert all(re.fullmatch(r"COL-\d{3,}", c) for c in collectors)
    assert all(re.fullmatch(r"INV-20\d{2}-\d{7}", i) for i in invoices)


def test_amounts_are_positive_with_two_decimals(ledger: dict) -> None:
    values = [row["amount"] for row in ledger["invoices"] + ledger["payments"]]
    values += [row["credit_limit"] for row in ledger["customers"]]
    assert all(AMOUNT.match(v) for v in values)
    assert all(cents(v) > 0 for v in values)


def test_payments_never_exceed_the_invoice(ledger: dict) -> None:
    amount = {row["invoice_id"]: cents(row["amount"]) for row in ledger["invoices"]}
    paid: dict[str, int] = defaultdict(int)
    for row in ledger["payments"]:
        paid[row["invoice_id"]] += cents(row["amount"])
    assert all(total <= amount[invoice] for invoice, total in paid.items())
    # Most invoices are settled exactly; some are split into instalments.
    settled = sum(total == amount[invoice] for invoice, total in paid.items())
    assert settled / len(amount) > 0.7
    per_invoice = Counter(row["invoice_id"] for row in ledger["payments"])
    assert max(per_invoice.values()) in (2, 3)


def test_dates_are_iso_ordered_and_never_after_as_of(ledger: dict) -> None:
    issued = {}
    terms: dict[str, set[int]] = defaultdict(set)
    for row in ledger["invoices"]:
        assert ISO.match(row["issue_date"])
        assert ISO.match(row["due_date"])
        issue, due = date.fromisoformat(row["issue_date"]), date.fromisoformat(row["due_date"])
        assert issue <= AS_OF
        terms[row["customer_id"]].add((due - issue).days)
        issued[row["invoice_id"]] = issue
    assert all(len(t) == 1 and t <= {30, 45, 60, 90} for t in terms.values())
    for row in ledger["payments"]:
        paid = date.fromisoformat(row["paid_date"])
        assert issued[row["invoice_id"]] <= paid <= AS_OF
        assert row["method"] in PAYMENT_METHODS


def test_history_spans_at_least_18_months(ledger: dict) -> None:
    first = min(date.fromisoformat(row["issue_date"]) for row in ledger["invoices"])
    last = max(date.fromisoformat(row["issue_date"]) for row in ledger["invoices"])
    assert first <= AS_OF - timedelta(days=18 * 30)
    assert last >= AS_OF - timedelta(days=7)
    assert 14 <= len(ledger["invoices"]) / N <= 26


def test_invoice_currency_and_description_follow_the_customer(ledger: dict) -> None:
    customers = {row["customer_id"]: row for row in ledger["customers"]}
    for row in ledger["invoices"][::7]:
        customer = customers[row["customer_id"]]
        assert row["currency"] == customer["currency"]
        assert row["disputed"] in ("true", "false")
        issue = date.fromisoformat(row["issue_date"])
        if customer["locale"] == "zh-CN":
            assert row["description"].startswith(f"{issue.year}年{issue.month}月 ")
        else:
            assert row["description"].endswith(f"{issue.strftime('%B')} {issue.year}")


def test_customers_look_realistic(ledger: dict) -> None:
    rows = ledger["customers"]
    locales = Counter(row["locale"] for row in rows)
    assert set(locales) == {"zh-CN", "en"}
    assert 0.7 <= locales["zh-CN"] / N <= 0.9
    assert {row["segment"] for row in rows} == {"corporate", "sme", "retail"}
    assert {row["currency"] for row in rows} == {"CNY", "USD", "HKD"}
    assert Counter(row["currency"] for row in rows).most_common(1)[0][0] == "CNY"
    assert {row["do_not_contact"] for row in rows} <= {"true", "false"}
    assert len({row["name"] for row in rows}) == N
    for row in rows:
        addresses = row["email"].split(";")
        assert 1 <= len(addresses) <= 2
        assert all(EXAMPLE_DOMAIN.match(a) for a in addresses), row["email"]
        assert re.fullmatch(r"\+\d{1,3} [\d -]+", row["phone"]), row["phone"]
        if row["locale"] == "zh-CN":
            assert re.search(r"[\u4e00-\u9fff]", row["name"])
            assert row["timezone"] in ("Asia/Shanghai", "Asia/Hong_Kong")
        if row["timezone"] == "Asia/Hong_Kong":
            assert row["currency"] == "HKD"
    assert any(";" in row["email"] for row in rows)
    teams = {row["team"] for row in ledger["collectors"]}
    assert "International" in teams
    assert "East China" in teams


def test_behaviours_are_hidden_but_recoverable(ledger: dict) -> None:
    truth = {row["customer_id"]: row["behaviour"] for row in ledger["truth"]}
    assert customer_behaviours(N, SEED) == truth
    shares = Counter(truth.values())
    assert set(shares) == set(BEHAVIOURS)
    assert 0.45 <= shares["on_time"] / N <= 0.65
    assert all("behaviour" not in columns for columns in COLUMNS.values())


def _days_late_by_behaviour(ledger: dict) -> dict[str, list[int]]:
    truth = {row["customer_id"]: row["behaviour"] for row in ledger["truth"]}
    invoices = {row["invoice_id"]: row for row in ledger["invoices"]}
    late: dict[str, list[int]] = defaultdict(list)
    for row in ledger["payments"]:
        invoice = invoices[row["invoice_id"]]
        days = date.fromisoformat(row["paid_date"]) - date.fromisoformat(invoice["due_date"])
        late[truth[invoice["customer_id"]]].append(days.days)
    return late


def test_behaviours_drive_the_payments(ledger: dict) -> None:
    late = _days_late_by_behaviour(ledger)
    mean = {b: sum(v) / len(v) for b, v in late.items()}
    assert abs(mean["on_time"]) < 5
    assert 10 <= mean["habitually_late"] <= 60
    truth = {row["customer_id"]: row["behaviour"] for row in ledger["truth"]}
    disputed: dict[str, list[bool]] = defaultdict(list)
    for row in ledger["invoices"]:
        disputed[truth[row["customer_id"]]].append(row["disputed"] == "true")
    share = {b: sum(v) / len(v) for b, v in disputed.items()}
    assert 0.15 <= share["disputer"] <= 0.45
    assert share["on_time"] < 0.05


def test_defaulters_deteriorate_before_they_stop_paying(ledger: dict) -> None:
    truth = {row["customer_id"]: row for row in ledger["truth"]}
    invoices = {row["invoice_id"]: row for row in ledger["invoices"]}
    before, after = [], []
    last_payment: dict[str, date] = {}
    for row in ledger["payments"]:
        invoice = invoices[row["invoice_id"]]
        customer = truth[invoice["customer_id"]]
        if customer["behaviour"] != "defaulter":
            continue
        paid = date.fromisoformat(row["paid_date"])
        days = (paid - date.fromisoformat(invoice["due_date"])).days
        deterioration = date.fromisoformat(customer["deterioration_date"])
        (after if paid > deterioration else before).append(days)
        assert paid <= date.fromisoformat(customer["stop_date"])
        last_payment[customer["customer_id"]] = max(
            paid, last_payment.get(customer["customer_id"], paid)
        )
    assert sum(after) / len(after) > sum(before) / len(before) + 10
    stopped = [c for c in truth.values() if c["stop_date"] and c["stop_date"] < "2025-01-01"]
    assert stopped


def test_aging_is_spread_and_mostly_current(ledger: dict) -> None:
    paid: dict[str, int] = defaultdict(int)
    for row in ledger["payments"]:
        paid[row["invoice_id"]] += cents(row["amount"])
    rate = {"CNY": 1.0, "USD": 7.2, "HKD": 0.92}
    bucket_amount: Counter[str] = Counter()
    for row in ledger["invoices"]:
        outstanding = cents(row["amount"]) - paid[row["invoice_id"]]
        if outstanding <= 0:
            continue
        dpd = (AS_OF - date.fromisoformat(row["due_date"])).days
        bucket = next(name for name, lo, hi in BUCKETS if lo <= dpd <= hi)
        bucket_amount[bucket] += outstanding * rate[row["currency"]]
    assert sum(1 for name, _, _ in BUCKETS if bucket_amount[name] > 0) >= 6
    assert bucket_amount["361+"] > 0
    overdue = sum(bucket_amount.values()) - bucket_amount["current"]
    assert 0.05 <= overdue / sum(bucket_amount.values()) <= 0.35


def test_defects_are_injected_and_counted(tmp_path: Path) -> None:
    summary = generate_sample(tmp_path, 150, AS_OF, 3, defects=0.02)
    kinds = {key.split(".", 1)[1] for key in summary.defects}
    assert kinds == {
        "bad_date",
        "bad_amount",
        "missing_value",
        "due_before_issue",
        "duplicate_id",
        "unknown_invoice",
        "invalid_email",
    }
    assert summary.defect_rows >= 0.02 * (summary.invoices + summary.payments)
    customers = read_csv(summary.paths["customers"])
    invoices = read_csv(summary.paths["invoices"])
    payments = read_csv(summary.paths["payments"])
    assert sum(row["email"] == "not-an-email" for row in customers) >= 1
    ids = Counter(row["invoice_id"] for row in invoices)
    assert any(count > 1 for count in ids.values())
    assert any(not AMOUNT.match(row["amount"]) for row in invoices)
    assert any(row["amount"] == "" for row in invoices + payments)
    bad_dates = [row["issue_date"] for row in invoices] + [row["paid_date"] for row in payments]
    assert any(v and not _is_date(v) for v in bad_dates)
    assert any(row["invoice_id"] and row["invoice_id"] not in ids for row in payments)
    assert any(
        _is_date(row["issue_date"])
        and _is_date(row["due_date"])
        and row["due_date"] < row["issue_date"]
        for row in invoices
    )


def _is_date(text: str) -> bool:
    try:
        date.fromisoformat(text)
    except ValueError:
        return False
    return True


def test_parquet_and_xlsx_hold_the_same_rows_as_csv(tmp_path: Path) -> None:
    as_csv = generate_sample(tmp_path / "csv", 40, AS_OF, 5)
    as_parquet = generate_sample(tmp_path / "parquet", 40, AS_OF, 5, file_format="parquet")
    as_xlsx = generate_sample(tmp_path / "xlsx", 40, AS_OF, 5, file_format="xlsx")
    again = generate_sample(tmp_path / "xlsx2", 40, AS_OF, 5, file_format="xlsx")
    for name, columns in COLUMNS.items():
        expected = [tuple(row.values()) for row in read_csv(as_csv.paths[name])]
        table = pq.read_table(as_parquet.paths[name])
        assert table.column_names == list(columns)
        assert all(str(t) == "string" for t in table.schema.types)
        assert list(zip(*table.to_pydict().values(), strict=True)) == expected
        sheet = load_workbook(as_xlsx.paths[name], read_only=True).active
        rows = list(sheet.iter_rows(values_only=True))
        assert rows[0] == columns
        assert rows[1:] == expected
        assert as_xlsx.paths[name].read_bytes() == again.paths[name].read_bytes()


@pytest.mark.parametrize(
    "kwargs",
    [
        {"customers": 0},
        {"defects": 1.5},
        {"file_format": "json"},
        {"history_months": 0},
    ],
)
def test_invalid_arguments_are_rejected(tmp_path: Path, kwargs: dict) -> None:
    arguments = {"customers": 10, **kwargs}
    with pytest.raises(ValueError, match=r"customers|defects|file_format|history_months"):
        generate_sample(tmp_path, as_of=AS_OF, **arguments)
