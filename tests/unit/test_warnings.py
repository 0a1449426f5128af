"""Risk warnings and the digest, on a day worked out by hand."""

from __future__ import annotations

import csv
import datetime as dt
import email
from decimal import Decimal
from email import policy as email_policy

import pytest
import sqlalchemy as sa

from receivables.aging import InvoiceFacts, compute_snapshot
from receivables.config import Policy, Settings
from receivables.exports import export
from receivables.risk.classification import compute_customer_classes
from receivables.risk.digest import send_digest
from receivables.risk.provisions import compute_provisions
from receivables.risk.warnings import raise_warnings
from receivables.warehouse.schema import credit_scores, customers, risk_warnings
from tests.helpers import add_invoice, add_scores, load_ledger

#: the day's book has only three overdue debtors: judge concentration even so
POLICY = Policy.model_validate({"warnings": {"concentration_min_debtors": 2}})
D = dt.date
M = Decimal
TODAY, YESTERDAY = D(2024, 6, 30), D(2024, 6, 29)


@pytest.fixture
def day(engine):
    load_ledger(
        engine,
        [
            # N: due yesterday: overdue since today
            InvoiceFacts("N1", "N", D(2024, 6, 1), D(2024, 6, 29), M("400.00")),
            # R: 30 days past due yesterday (1-30), 31 today (31-60)
            InvoiceFacts("R1", "R", D(2024, 4, 1), D(2024, 5, 30), M("200.00")),
            # L: owes 150 against a limit of 100, nothing overdue
            InvoiceFacts("L1", "L", D(2024, 6, 20), D(2024, 7, 20), M("150.00")),
            # K: the biggest overdue balance by far
            InvoiceFacts("K1", "K", D(2024, 1, 1), D(2024, 2, 1), M("9000.00")),
            # G: fine on the ledger; its grade and score fall (scores set below)
            InvoiceFacts("G1", "G", D(2024, 6, 20), D(2024, 7, 20), M("10.00")),
        ],
    )
    with engine.begin() as conn:
        for cid, limit in (("L", "100.00"), ("G", "1000.00"), ("K", "20000.00")):
            conn.execute(
                customers.update()
                .where(customers.c.customer_id == cid)
                .values(credit_limit=M(limit))
            )
        rows = []
        for cid, grade, score, day_ in (
            ("G", "B", 600.0, YESTERDAY),
            ("G", "D", 540.0, TODAY),
            ("K", "C", 570.0, YESTERDAY),
            ("K", "E", 500.0, TODAY),
            ("N", "B", 600.0, YESTERDAY),
            ("N", "B", 598.0, TODAY),
        ):
            rows.append(
                {
                    "as_of_date": day_,
                    "customer_id": cid,
                    "model_id": 1,
                    "score": score,
                    "pd": 0.1,
                    "grade": grade,
                    "reasons": "x",
                }
            )
        conn.execute(credit_scores.insert(), rows)
    compute_snapshot(engine, TODAY, POLICY.aging)
    compute_customer_classes(engine, TODAY, POLICY)
    compute_provisions(engine, TODAY, POLICY.aging, POLICY.provisions)
    return engine


def _stored(engine):
    with engine.connect() as conn:
        return {
            (r.customer_id, r.kind): r
            for r in conn.execute(
                sa.select(risk_warnings).where(risk_warnings.c.as_of_date == TODAY)
            )
        }


def test_each_warning_kind(day):
    summary = raise_warnings(day, TODAY, POLICY)
    found = _stored(day)
    assert set(found) == {
        ("N", "newly_overdue"),
        ("R", "rolled_worse"),  # overdue already yesterday: not "newly overdue"
        ("L", "over_credit_limit"),
        ("K", "concentration"),
        ("K", "grade_downgraded"),
        ("K", "score_dropped"),
        ("G", "grade_downgraded"),
        ("G", "score_dropped"),
    }
    n = found[("N", "newly_overdue")]
    assert (n.severity, n.action) == ("low", "monitor")
    assert n.message == "1 invoice(s) of CNY 400.00 became overdue since yesterday"
    r = found[("R", "rolled_worse")]
    assert (r.severity, r.action) == ("low", "monitor")
    assert r.message.startswith("oldest open invoice moved from 1-30 to 31-60 days past due")
    limit = found[("L", "over_credit_limit")]
    assert limit.severity == "high"  # 50 % over
    assert limit.message == ("outstanding CNY 150.00 exceeds the credit limit CNY 100.00 by 50%")
    assert (limit.action, limit.dunning_stage) == ("start_collection_early", "early")
    k = found[("K", "concentration")]
    assert (k.severity, k.action) == ("high", "reduce_credit_limit")
    assert k.proposed_credit_limit == M("0.00")  # grade E gets no new credit, and says why
    assert k.message == (
        "holds 93.8% of all overdue receivables (CNY 9,000.00 of CNY 9,600.00, 3 overdue "
        "debtors); grade E: no new credit (limit CNY 0.00, now CNY 20,000.00)"
    )
    g = found[("G", "grade_downgraded")]
    assert (g.severity, g.action, g.proposed_credit_limit) == (
        "high",
        "reduce_credit_limit",
        M("500.00"),
    )
    assert g.message == (
        "grade fell from B to D in a day (probability of default 10.0%); grade D: proposed "
        "limit CNY 500.00, 50% of the current CNY 1,000.00"
    )
    drop = found[("G", "score_dropped")]
    assert drop.severity == "medium"
    assert drop.message == "score fell 60 points in a day, to 540"
    assert found[("K", "score_dropped")].severity == "medium"  # 70 < 2 x 40
    assert summary["warnings"] == len(found)
    assert summary["compared_with_scores_of"] == "2024-06-29"


def test_warnings_are_replaced_on_a_rerun_and_exported(day, tmp_path):
    first = raise_warnings(day, TODAY, POLICY)
    again = raise_warnings(day, TODAY, POLICY)
    assert first == again
    out = tmp_path / "warnings.csv"
    assert export("warnings", day, TODAY, out) == first["warnings"]
    with out.open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0])[:4] == ["customer_id", "kind", "severity", "message"]
    assert rows[0]["severity"] == "critical"  # most severe first: K fell to grade E


def test_the_digest_goes_once_per_day(day, home):
    raise_warnings(day, TODAY, POLICY)
    settings = Settings.from_env()
    first = send_digest(day, TODAY, settings)
    second = send_digest(day, TODAY, settings)
    assert (first["status"], second["status"]) == ("sent", "duplicate")
    with open(first["location"], "rb") as f:
        message = email.message_from_binary_file(f, policy=email_policy.default)
    assert message["Subject"] == (
        "[receivables] Risk digest 2024-06-30: 8 new warning(s), 1 critical"
    )
    text = message.get_body(("plain",)).get_content()
    assert "[high] L" in text
    assert "Provisions (IFRS 9 expected credit loss)" in text
    assert "CNY" in text
    html = message.get_body(("html",)).get_content()
    assert "<table" in html


def test_a_new_model_does_not_raise_grade_or_score_warnings(day):
    with day.begin() as conn:
        conn.execute(
            credit_scores.update().where(credit_scores.c.as_of_date == YESTERDAY).values(model_id=2)
        )
    summary = raise_warnings(day, TODAY, POLICY)
    assert summary["model_changed"]
    kinds = {kind for _, kind in _stored(day)}
    assert not kinds & {"grade_downgraded", "score_dropped"}
    assert "over_credit_limit" in kinds  # the ledger's own warnings still come


def _usd_invoice(engine, invoice_id, customer_id, issue, due, amount):
    add_invoice(engine, invoice_id, customer_id, issue, due, amount, "USD")


def test_a_customer_overdue_in_two_currencies_gets_one_warning_per_kind(engine):
    # used to fail with an IntegrityError on the warnings' key on both engines
    from receivables.warehouse.schema import fx_rates

    load_ledger(engine, [InvoiceFacts("T1", "T", D(2024, 6, 1), D(2024, 6, 29), M("400.00"))])
    _usd_invoice(engine, "T2", "T", D(2024, 6, 1), D(2024, 6, 29), "50.00")
    with engine.begin() as conn:
        conn.execute(
            fx_rates.insert().values(
                rate_date=D(2024, 6, 28), currency="USD", rate=M("7.1"), source_file_id=1
            )
        )
    compute_snapshot(engine, TODAY, POLICY.aging)
    raise_warnings(engine, TODAY, POLICY)
    found = _stored(engine)
    assert set(found) == {("T", "newly_overdue")}
    assert found[("T", "newly_overdue")].message == (
        "2 invoice(s) of CNY 400.00 and USD 50.00 (CNY 755.00 in all) became overdue since "
        "yesterday"
    )


def test_without_a_rate_amounts_stay_in_their_currency(engine):
    load_ledger(engine, [InvoiceFacts("T1", "T", D(2024, 6, 1), D(2024, 6, 29), M("400.00"))])
    _usd_invoice(engine, "T2", "T", D(2024, 6, 1), D(2024, 6, 29), "50.00")
    compute_snapshot(engine, TODAY, POLICY.aging)
    summary = raise_warnings(engine, TODAY, POLICY)
    assert summary["missing_fx_rates"] == ["USD"]
    assert _stored(engine)[("T", "newly_overdue")].message == (
        "2 invoice(s) of CNY 400.00 and USD 50.00 became overdue since yesterday"
    )


def test_severity_follows_the_configured_buckets(engine):
    policy = Policy.model_validate(
        {
            "aging": {
                "buckets": [
                    {"name": "current", "min_days": 0, "max_days": 0},
                    {"name": "early", "min_days": 1, "max_days": 10},
                    {"name": "late", "min_days": 11},
                ]
            },
            "provisions": {"fallback_rates": {"current": 0.01, "early": 0.1, "late": 1}},
            "warnings": {"bucket_severity": {"late": "critical"}, "legal_review_days": 400},
        }
    )
    # 10 days past due yesterday ("early"), 11 today ("late"): critical by configuration,
    # where the old hard-coded days (181 / 91 / 61) made it "low"
    load_ledger(engine, [InvoiceFacts("S1", "S", D(2024, 5, 1), D(2024, 6, 19), M("70.00"))])
    compute_snapshot(engine, TODAY, policy.aging)
    raise_warnings(engine, TODAY, policy)
    rolled = _stored(engine)[("S", "rolled_worse")]
    assert (rolled.severity, rolled.action) == ("critical", "start_collection_early")
    assert rolled.message.startswith("oldest open invoice moved from early to late days past due")


def test_the_score_drop_names_the_real_interval(engine):
    load_ledger(engine, [InvoiceFacts("G1", "G", D(2024, 6, 20), D(2024, 7, 20), M("10.00"))])
    add_scores(engine, "G", [(D(2024, 6, 27), 600.0, "B", 0.02), (TODAY, 550.0, "B", 0.02)])
    compute_snapshot(engine, TODAY, POLICY.aging)
    raise_warnings(engine, TODAY, POLICY)
    assert _stored(engine)[("G", "score_dropped")].message == (
        "score fell 50 points in 3 days (since 2024-06-27), to 550"
    )


def test_a_weak_grade_without_a_limit_gets_a_concrete_proposal(engine):
    # no credit limit on file: half of today's outstanding for grade D, never "no limit"
    load_ledger(engine, [InvoiceFacts("W1", "W", D(2024, 6, 20), D(2024, 7, 20), M("150.00"))])
    add_scores(engine, "W", [(YESTERDAY, 0.0, "C", 0.1), (TODAY, 0.0, "D", 0.1)])
    compute_snapshot(engine, TODAY, POLICY.aging)
    raise_warnings(engine, TODAY, POLICY)
    w = _stored(engine)[("W", "grade_downgraded")]
    assert (w.action, w.proposed_credit_limit, w.currency) == (
        "reduce_credit_limit",
        M("75.00"),
        "CNY",
    )
    assert w.message.endswith(
        "grade D, no limit on file: proposed limit CNY 75.00, 50% of today's outstanding CNY 150.00"
    )


def test_concentration_is_not_judged_in_a_small_book(day):
    # the fixture's book has three overdue debtors: by default (20) no one is "concentrated"
    raise_warnings(day, TODAY, Policy())
    assert not [key for key in _stored(day) if key[1] == "concentration"]


@pytest.mark.parametrize("with_rate", [True, False])
def test_the_digest_shows_the_reporting_currency_beside_each(engine, home, with_rate):
    from receivables.warehouse.schema import fx_rates

    load_ledger(engine, [InvoiceFacts("T1", "T", D(2024, 1, 1), D(2024, 2, 1), M("400.00"))])
    _usd_invoice(engine, "T2", "T", D(2024, 1, 1), D(2024, 2, 1), "50.00")
    if with_rate:
        with engine.begin() as conn:
            conn.execute(
                fx_rates.insert().values(
                    rate_date=D(2024, 6, 1), currency="USD", rate=M("7.1"), source_file_id=1
                )
            )
    compute_snapshot(engine, TODAY, POLICY.aging)
    compute_customer_classes(engine, TODAY, POLICY)
    compute_provisions(engine, TODAY, POLICY.aging, POLICY.provisions)
    raise_warnings(engine, TODAY, POLICY)
    sent = send_digest(engine, TODAY, Settings.from_env())
    with open(sent["location"], "rb") as f:
        text = (
            email.message_from_binary_file(f, policy=email_policy.default)
            .get_body(("plain",))
            .get_content()
        )
    # 145 days past due: the 91-180 fallback rate of 25 %: CNY 100.00 and USD 12.50
    assert "- CNY 100.00" in text
    if with_rate:
        assert "- USD 12.50 = CNY 88.75" in text
        assert "- all currencies: CNY 188.75 of CNY 755.00 outstanding" in text
        assert "No CNY rate" not in text
    else:
        assert "- USD 12.50\n" in text
        assert "No CNY rate on or before 2024-06-30 for USD" in text


def test_a_book_of_many_scored_customers_without_invoices(engine):
    # 70 000 customers graded today with nothing open: their limits were once read with an
    # IN-list of their ids, beyond PostgreSQL's 65 535 parameters (found by the benchmark)
    count = 70_000
    ids = [f"Q{i:06d}" for i in range(count)]
    with engine.begin() as conn:
        conn.execute(
            customers.insert(),
            [
                {
                    "customer_id": c,
                    "name": c,
                    "locale": "en",
                    "timezone": "UTC",
                    "currency": "CNY",
                    "do_not_contact": False,
                    "source_file_id": 1,
                }
                for c in ids
            ],
        )
        conn.execute(
            credit_scores.insert(),
            [
                {
                    "as_of_date": TODAY,
                    "customer_id": c,
                    "model_id": 1,
                    "score": 600.0,
                    "pd": 0.02,
                    "grade": "B",
                    "reasons": "x",
                    "basis": "application",
                }
                for c in ids
            ],
        )
    compute_snapshot(engine, TODAY, POLICY.aging)
    summary = raise_warnings(engine, TODAY, POLICY)
    assert summary["warnings"] == 0
