"""The real DAGs, run by Airflow (``DAG.test()``), on SQLite and on PostgreSQL.

Each test asserts that tasks actually ran (Airflow marks a run before a DAG's start_date
successful without running anything) and checks the warehouse, not only the run state.
"""

from __future__ import annotations

import datetime as dt
import email
from decimal import Decimal
from email import policy as email_policy

import pytest
import sqlalchemy as sa

from receivables.aging import InvoiceFacts, age_invoices
from receivables.config import Policy
from receivables.dates import start_of_business_day
from receivables.sample import generate_sample
from receivables.warehouse.db import create_engine
from receivables.warehouse.migrate import upgrade
from receivables.warehouse.schema import (
    aging_runs,
    aging_snapshots,
    ingested_files,
    invoices,
    payments,
)

AS_OF = dt.date(2025, 6, 30)
TZ = "Asia/Shanghai"


@pytest.fixture
def warehouse(home, db_url, monkeypatch, airflow_db):
    monkeypatch.setenv("RECEIVABLES_DB_URL", db_url)
    engine = create_engine(db_url)
    upgrade(engine)
    yield engine
    engine.dispose()


def run(dag_id: str, day: dt.date = AS_OF, **conf):
    from receivables.airflow.runner import run_dag

    return run_dag(dag_id, start_of_business_day(day, TZ), conf=conf)


def ran(report, task_id: str) -> list[str]:
    return [state for task, _index, state in report.tasks if task == task_id]


def reference_aging(engine, as_of):
    """The aging by the contract's words, from the loaded ledger, one invoice at a time."""
    with engine.connect() as conn:
        paid: dict[str, list] = {}
        for p in conn.execute(sa.select(payments)):
            paid.setdefault(p.invoice_id, []).append((p.paid_date, p.amount))
        facts = [
            InvoiceFacts(
                i.invoice_id,
                i.customer_id,
                i.issue_date,
                i.due_date,
                i.amount,
                tuple(paid.get(i.invoice_id, ())),
            )
            for i in conn.execute(sa.select(invoices))
        ]
    return {a.invoice_id: a for a in age_invoices(facts, as_of, Policy().aging)}


def test_daily_pipeline_end_to_end(warehouse, home):
    sample = generate_sample(home / "inbox", 60, AS_OF, seed=3, defects=0.01)
    ingest = run("ledger_ingest")
    assert ingest.ok, ingest.tasks
    for task_id, files in (
        ("ingest_fx_rates", 1),
        ("ingest_collectors", 1),
        ("ingest_customers", 1),
        ("ingest_invoices", 1),
        ("ingest_payments", 1),
        ("ingest_feedback", 1),
    ):
        assert ran(ingest, task_id) == ["success"] * files
    assert ran(ingest, "summarize_ingest") == ["success"]
    assert ran(ingest, "reject_unrecognised_files") == ["skipped"]

    with warehouse.connect() as conn:
        files = conn.execute(sa.select(ingested_files).order_by(ingested_files.c.file_id)).all()
    assert [(f.kind, f.status, f.as_of_date) for f in files] == [
        ("fx_rates", "loaded", AS_OF),
        ("collectors", "loaded", AS_OF),
        ("customers", "loaded", AS_OF),
        ("invoices", "loaded", AS_OF),
        ("payments", "loaded", AS_OF),
        ("feedback", "loaded", AS_OF),
    ]
    assert sum(f.rows_read for f in files) == (
        sample.fx_rates
        + sample.collectors
        + sample.customers
        + sample.invoices
        + sample.payments
        + sample.feedback
    )
    assert sum(f.rows_quarantined for f in files) >= sample.defect_rows > 0
    assert not list((home / "inbox").iterdir())
    quality_mail = [p for p in (home / "outbox").glob("*.eml") if "ingest-quality" in p.name]
    assert len(quality_mail) == 1
    parsed = email.message_from_bytes(quality_mail[0].read_bytes(), policy=email_policy.default)
    assert "row(s) quarantined" in parsed["Subject"]
    assert (home / "gx" / "uncommitted" / "data_docs" / "local_site" / "index.html").exists()

    risk = run("receivables_risk")
    assert risk.ok, risk.tasks
    for task_id in RISK_TASKS:
        assert ran(risk, task_id) == ["success"], task_id
    expected = reference_aging(warehouse, AS_OF)
    with warehouse.connect() as conn:
        stored = {
            r.invoice_id: r
            for r in conn.execute(
                sa.select(aging_snapshots).where(aging_snapshots.c.as_of_date == AS_OF)
            )
        }
    assert len(stored) == len(expected) > 0
    for invoice_id, ref in expected.items():
        row = stored[invoice_id]
        assert (row.outstanding, row.days_past_due, row.bucket, row.risk_class) == (
            ref.outstanding,
            ref.days_past_due,
            ref.bucket,
            ref.risk_class,
        )
    assert {r.bucket for r in stored.values()} >= {"current", "1-30", "361+"}
    check_risk_tables(warehouse, AS_OF, stored)
    digests = [p for p in (home / "outbox").glob("*.eml") if "risk-digest" in p.name]
    assert len(digests) == 1
    digest = email.message_from_bytes(digests[0].read_bytes(), policy=email_policy.default)
    assert digest["To"] == "risk-team@receivables.example.com"
    assert digest["Subject"].startswith("[receivables] Risk digest 2025-06-30:")

    # the ledger asset event carries the business date for the DAGs it triggers
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session

    with create_session() as session:
        event = session.scalars(
            sa.select(AssetEvent)
            .join(AssetModel, AssetEvent.asset_id == AssetModel.id)
            .where(AssetModel.name == "ledger")
            .order_by(AssetEvent.id.desc())
        ).first()
        assert event.extra["as_of_date"] == "2025-06-30"
        assert event.extra["rows_quarantined"] > 0

    # running the same date again changes nothing and sends nothing twice
    emails_before = sorted(p.name for p in (home / "outbox").glob("*.eml"))
    again = run("ledger_ingest")
    assert again.ok
    assert ran(again, "ingest_invoices") == ["skipped"]  # the inbox is empty now
    assert run("receivables_risk").ok
    with warehouse.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(ingested_files)).scalar() == 6
        again_rows = {
            r.invoice_id: r
            for r in conn.execute(
                sa.select(aging_snapshots).where(aging_snapshots.c.as_of_date == AS_OF)
            )
        }
    assert again_rows == stored
    assert sorted(p.name for p in (home / "outbox").glob("*.eml")) == emails_before


RISK_TASKS = (
    "compute_aging_snapshot",
    "classify_customers",
    "compute_provisions",
    "score_customers",
    "raise_risk_warnings",
    "send_risk_digest",
)


def check_risk_tables(engine, as_of, aging_rows) -> None:
    """Every risk table holds the date's results and they agree with the aging snapshot."""
    from receivables.warehouse.schema import (
        credit_scores,
        customer_risk_classes,
        invoice_risk,
        provision_rates,
        risk_warnings,
        roll_rates,
    )

    with engine.connect() as conn:
        classes = conn.execute(
            sa.select(customer_risk_classes).where(customer_risk_classes.c.as_of_date == as_of)
        ).all()
        risk = {
            r.invoice_id: r
            for r in conn.execute(sa.select(invoice_risk).where(invoice_risk.c.as_of_date == as_of))
        }
        rates = conn.execute(
            sa.select(provision_rates).where(provision_rates.c.as_of_date == as_of)
        ).all()
        scores = conn.execute(
            sa.select(credit_scores).where(credit_scores.c.as_of_date == as_of)
        ).all()
        warnings = conn.execute(
            sa.select(risk_warnings).where(risk_warnings.c.as_of_date == as_of)
        ).all()
        months = conn.execute(sa.select(roll_rates.c.month_end).distinct()).scalars().all()
    # every open invoice has a final class no better than its days past due and an ECL
    assert set(risk) == set(aging_rows)
    order = ["normal", "special_mention", "substandard", "doubtful", "loss"]
    for invoice_id, row in risk.items():
        assert order.index(row.risk_class) >= order.index(aging_rows[invoice_id].risk_class)
        assert Decimal(0) <= row.ecl <= row.outstanding
        assert row.ecl == (row.outstanding * Decimal(str(row.loss_rate))).quantize(Decimal("0.01"))
    raised = {c.customer_id for c in classes if c.rule_applied}
    for row in risk.values():
        if row.customer_id in raised:
            assert order.index(row.risk_class) >= order.index("substandard")
    # one loss rate per currency and bucket, 361+ always 100 %
    assert {(r.currency, r.bucket) for r in rates} >= {
        (r.currency, r.bucket) for r in risk.values()
    }
    assert all(r.loss_rate == 1.0 for r in rates if r.bucket == "361+")
    assert len(months) >= 6  # month-end roll-rate history was built from the ledger
    # every customer with an invoice is scored, with a grade and reasons
    assert len(scores) > 0
    assert {s.grade for s in scores} <= set("ABCDE")
    assert all(s.reasons for s in scores)
    kinds = {
        "newly_overdue",
        "rolled_worse",
        "over_credit_limit",
        "grade_downgraded",
        "score_dropped",
        "concentration",
    }
    assert {w.kind for w in warnings} <= kinds
    actions = {"monitor", "reduce_credit_limit", "start_collection_early", "legal_review"}
    assert {w.action for w in warnings} <= actions


def test_the_monthly_credit_model_is_trained_and_then_used(warehouse, home):
    day = dt.date(2025, 7, 1)
    generate_sample(home / "inbox", 400, AS_OF, seed=42)
    assert run("ledger_ingest", day).ok
    model = run("credit_model", day)
    assert model.ok
    assert ran(model, "train_credit_model") == ["success"]
    from receivables.warehouse.schema import credit_models, credit_scores

    with warehouse.connect() as conn:
        trained = conn.execute(
            sa.select(credit_models).where(credit_models.c.kind == "scorecard")
        ).one()
    assert trained.status == "approved", trained.status_reason
    assert trained.auc >= 0.75
    card = home / "reports" / "models" / "credit-model-2025-07-01.md"
    assert card.exists()
    assert "held-out" in card.read_text(encoding="utf-8")
    assert run("receivables_risk", day).ok
    with warehouse.connect() as conn:
        used = (
            conn.execute(
                sa.select(credit_scores.c.model_id)
                .where(credit_scores.c.as_of_date == day)
                .distinct()
            )
            .scalars()
            .all()
        )
    assert used == [trained.model_id]
    # a day before the model existed is still scored with what existed then: the rules
    assert run("receivables_risk", dt.date(2025, 6, 30)).ok
    with warehouse.connect() as conn:
        earlier = (
            conn.execute(
                sa.select(credit_models.c.kind)
                .join(credit_scores, credit_scores.c.model_id == credit_models.c.model_id)
                .where(credit_scores.c.as_of_date == dt.date(2025, 6, 30))
                .distinct()
            )
            .scalars()
            .all()
        )
    assert earlier == ["rules"]


def test_an_empty_ledger_runs_cleanly(warehouse, home):
    day = dt.date(2025, 7, 1)  # a first of the month: the model is due too
    for dag_id in ("ledger_ingest", "credit_model", "receivables_risk"):
        report = run(dag_id, day)
        assert report.ok, (dag_id, report.tasks)
    from receivables.warehouse.schema import credit_models, credit_scores

    with warehouse.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(credit_scores)).scalar() == 0
        kinds = conn.execute(sa.select(credit_models.c.kind)).scalars().all()
    assert kinds == ["rules"]  # nothing to train on: the rules scorecard is in place


def test_a_historical_date_runs_for_that_business_date(warehouse, home):
    day = dt.date(2013, 6, 30)  # 2013-06-29 16:00 UTC: ds would say the 29th
    generate_sample(home / "inbox", 20, day, seed=5)
    ingest = run("ledger_ingest", day)
    risk = run("receivables_risk", day)
    assert ingest.ok
    assert risk.ok
    assert ran(risk, "send_risk_digest") == ["success"]
    with warehouse.connect() as conn:
        assert conn.execute(sa.select(ingested_files.c.as_of_date).distinct()).scalars().all() == [
            day
        ]
        computed = conn.execute(sa.select(aging_runs.c.as_of_date)).scalars().all()
    # the date itself, the day before (for warnings) and month-ends (roll rates): none later
    assert max(computed) == day
    assert day - dt.timedelta(days=1) in computed
    with warehouse.connect() as conn:
        latest_issue = conn.execute(sa.select(sa.func.max(invoices.c.issue_date))).scalar()
    assert latest_issue <= day


def test_the_inbox_param_and_a_refused_file(warehouse, home, tmp_path):
    drop = tmp_path / "drop"
    drop.mkdir()
    (drop / "invoices.csv").write_text("invoice_id,amount\nI1,5\n", encoding="utf-8")
    (drop / "readme.txt").write_text("not a ledger", encoding="utf-8")
    report = run("ledger_ingest", inbox=str(drop))
    assert report.ok
    assert ran(report, "ingest_invoices") == ["success"]
    assert ran(report, "reject_unrecognised_files") == ["success"]
    with warehouse.connect() as conn:
        refused = conn.execute(
            sa.select(ingested_files.c.file_name, ingested_files.c.reason_column)
            .where(ingested_files.c.status == "rejected")
            .order_by(ingested_files.c.file_name)
        ).all()
    assert [tuple(r) for r in refused] == [
        ("invoices.csv", "customer_id;issue_date;due_date"),
        ("readme.txt", None),
    ]
    assert sorted(p.name for p in (home / "rejected" / "2025-06-30").iterdir()) == [
        "invoices.csv",
        "invoices.csv.reason.txt",
        "readme.txt",
        "readme.txt.reason.txt",
    ]


def test_a_failing_task_alerts_the_data_engineers(home, monkeypatch, tmp_path, airflow_db):
    # a warehouse nobody initialised: the ingest task must fail loudly, not load anything
    monkeypatch.setenv("RECEIVABLES_DB_URL", f"sqlite:///{tmp_path / 'never-initialised.db'}")
    monkeypatch.setenv("RECEIVABLES_ALERT_EMAILS", "oncall@receivables.example.com")
    generate_sample(home / "inbox", 5, AS_OF, seed=1)
    report = run("ledger_ingest")
    assert not report.ok
    assert "ingest_fx_rates[0]" in report.failed_tasks  # the first file of the day
    assert (home / "inbox" / "customers.csv").exists()  # nothing was lost
    alerts = list((home / "outbox").glob("task-failure*.eml"))
    assert len(alerts) == 1
    parsed = email.message_from_bytes(alerts[0].read_bytes(), policy=email_policy.default)
    assert parsed["To"] == "oncall@receivables.example.com"
    assert parsed["Subject"] == "[receivables] FAILED: ledger_ingest.ingest_fx_rates for 2025-06-30"
    assert "run `receivables init` first" in parsed.get_body(("plain",)).get_content()


def test_money_totals_survive_the_whole_pipeline(warehouse, home):
    generate_sample(home / "inbox", 30, AS_OF, seed=11)
    with (home / "inbox" / "invoices.csv").open(encoding="utf-8") as f:
        import csv

        issued = sum(Decimal(r["amount"]) for r in csv.DictReader(f))
    assert run("ledger_ingest").ok
    with warehouse.connect() as conn:
        total = conn.execute(
            sa.select(sa.type_coerce(sa.func.sum(invoices.c.amount), invoices.c.amount.type))
        ).scalar()
    assert total == issued


def test_the_receivables_db_connection_names_the_warehouse(home, pg_url, monkeypatch, airflow_db):
    """Without RECEIVABLES_DB_URL, the tasks find the warehouse through Airflow's own lookup of
    the ``receivables_db`` connection (here from ``AIRFLOW_CONN_RECEIVABLES_DB``, as JSON), not
    the embedded SQLite default."""
    import json

    from sqlalchemy.engine import make_url

    monkeypatch.delenv("RECEIVABLES_DB_URL", raising=False)
    url = make_url(pg_url)
    monkeypatch.setenv(
        "AIRFLOW_CONN_RECEIVABLES_DB",
        json.dumps(
            {
                "conn_type": "postgres",
                "host": url.host,
                "port": url.port,
                "login": url.username,
                "schema": url.database,
            }
        ),
    )
    engine = create_engine(pg_url)
    upgrade(engine)
    generate_sample(home / "inbox", 10, AS_OF, seed=5)
    report = run("ledger_ingest")
    assert report.ok, report.tasks
    assert ran(report, "ingest_invoices") == ["success"]
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(invoices)).scalar() > 0
    engine.dispose()
    assert not (home / "warehouse.db").exists()  # the embedded default was never touched
