"""The warehouse: migrations match the schema, money is exact on both engines, SQL files."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from receivables.warehouse.db import normalize_url, redact
from receivables.warehouse.migrate import current_revision, ensure_current, head_revision
from receivables.warehouse.schema import customers, invoices, metadata
from receivables.warehouse.sqlfiles import render
from receivables.warehouse.types import from_cents, to_cents
from tests.helpers import source_file


def test_migrations_create_exactly_the_schema(engine):
    assert current_revision(engine) == head_revision(engine)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == []


def test_ensure_current_refuses_an_empty_database(tmp_path):
    from receivables.warehouse.db import create_engine

    with pytest.raises(RuntimeError, match="run `receivables init` first"):
        ensure_current(create_engine(f"sqlite:///{tmp_path / 'empty.db'}"))


def test_upgrade_is_idempotent(engine):
    from receivables.warehouse.migrate import upgrade

    before, after = upgrade(engine)
    assert before == after == head_revision(engine)


def _customer(conn) -> int:
    """Customer C1 and the file it came from (returned)."""
    file_id = source_file(conn, status="loaded")
    conn.execute(
        customers.insert().values(
            customer_id="C1",
            name="n",
            locale="en",
            timezone="UTC",
            currency="CNY",
            do_not_contact=False,
            source_file_id=file_id,
        )
    )
    return file_id


def test_money_is_exact_on_both_engines(engine):
    amounts = [Decimal("0.10"), Decimal("0.20"), Decimal("12345678901234.99"), Decimal("1")]
    with engine.begin() as conn:
        file_id = _customer(conn)
        for i, amount in enumerate(amounts):
            conn.execute(
                invoices.insert().values(
                    invoice_id=f"I{i}",
                    customer_id="C1",
                    issue_date=dt.date(2024, 1, 1),
                    due_date=dt.date(2024, 1, 31),
                    amount=amount,
                    currency="CNY",
                    disputed=False,
                    source_file_id=file_id,
                )
            )
    with engine.connect() as conn:
        stored = conn.execute(sa.select(invoices.c.amount).order_by(invoices.c.invoice_id)).all()
        total = conn.execute(
            sa.select(sa.type_coerce(sa.func.sum(invoices.c.amount), invoices.c.amount.type))
        ).scalar_one()
    assert [r.amount for r in stored] == [
        Decimal("0.10"),
        Decimal("0.20"),
        Decimal("12345678901234.99"),
        Decimal("1.00"),
    ]
    assert total == Decimal("12345678901236.29")  # 0.1 + 0.2 is 0.30 here, not 0.30000000000000004


def test_money_refuses_sub_cent_amounts():
    assert to_cents("12.30") == 1230
    assert from_cents(1230) == Decimal("12.30")
    with pytest.raises(ValueError, match="more than 2 decimal places"):
        to_cents("0.001")


def test_database_constraints_hold(engine):
    with engine.begin() as conn:
        file_id = _customer(conn)
    due_before_issue = invoices.insert().values(
        invoice_id="I1",
        customer_id="C1",
        issue_date=dt.date(2024, 2, 1),
        due_date=dt.date(2024, 1, 1),
        amount=Decimal(1),
        currency="CNY",
        disputed=False,
        source_file_id=file_id,
    )
    with engine.connect() as conn, pytest.raises(sa.exc.IntegrityError):
        conn.execute(due_before_issue)


def test_urls_work_as_pasted():
    assert normalize_url("postgres://u:secret@h:5432/d").drivername == "postgresql"
    assert "secret" not in redact("postgresql://u:secret@h:5432/d")
    with pytest.raises(ValueError, match="unsupported warehouse database 'mysql'"):
        normalize_url("mysql://u@h/d")


def test_sql_files_render_for_each_dialect():
    from receivables.config import Policy

    aging = Policy().aging
    for dialect in ("sqlite", "postgresql"):
        statements = render(
            "aging_snapshot.sql", dialect, buckets=aging.buckets, risk_classes=aging.risk_classes
        )
        assert len(statements) == 2
        assert statements[0].startswith("DELETE FROM aging_snapshots")
        assert "WHEN a.days_past_due <= 360 THEN '181-360'" in statements[1]
        assert "ELSE 'loss'" in statements[1]


def test_every_sql_macro_exists_for_both_dialects():
    from receivables.warehouse.sqlfiles import _macros

    assert set(_macros("sqlite")) == set(_macros("postgresql"))


def test_every_sql_file_renders_for_both_dialects():
    from receivables.config import Policy
    from receivables.legal.selection import UNDELIVERED
    from receivables.paths import SQL_DIR

    policy = Policy()
    context = {
        "buckets": policy.aging.buckets,
        "risk_classes": policy.aging.risk_classes,
        "substandard_from": 91,
        "stg": "stg_x",
        "id": "invoice_id",
        "bucket_names": ["current", "1-30"],
        "loss_class": "loss",
        # the quarters' ledger: two quarters, their bound dates by name
        "days": ["day_0", "day_1", "day_2"],
        "quarters": [
            {"opening": "day_0", "start": "start_0", "closing": "day_1"},
            {"opening": "day_1", "start": "start_1", "closing": "day_2"},
        ],
        # the dashboard's reminders: the webhook events that mean "not delivered"
        "undelivered": UNDELIVERED,
    }
    for path in sorted(p for p in SQL_DIR.rglob("*.sql") if not p.name.startswith("_")):
        for dialect in ("sqlite", "postgresql"):
            statements = render(str(path.relative_to(SQL_DIR)), dialect, **context)
            assert statements, path


def test_bands_are_looked_up_the_same_in_python_and_sql(engine):
    """One lookup of buckets and classes: the SQL ``band_case`` agrees with ``band_for``."""
    from receivables.aging import band_for
    from receivables.config import Policy
    from receivables.warehouse.sqlfiles import band_case

    bands = Policy().aging.buckets
    days = [0, 1, 30, 31, 60, 61, 90, 91, 180, 181, 360, 361, 10_000]
    with engine.connect() as conn:
        for d in days:
            name = conn.execute(sa.text(f"SELECT {band_case(str(d), bands)}")).scalar()
            assert name == band_for(d, bands), d


def test_upgrading_keeps_stored_rates_exactly(db_url):
    """Rates stored as floats by schema 0002 become exact 8-place decimals in 0003."""
    from alembic import command

    from receivables.warehouse.db import create_engine
    from receivables.warehouse.migrate import alembic_config, upgrade

    engine = create_engine(db_url)
    config = alembic_config(engine)
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "0002")
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO provision_rates (as_of_date, currency, bucket, roll_rate, "
                "roll_months, loss_rate, method, observations) "
                "VALUES ('2024-06-30', 'CNY', 'current', 0.1, 1, 0.00504, 'roll_rates', 12)"
            )
        )
    upgrade(engine)
    from receivables.warehouse.schema import provision_rates

    with engine.connect() as conn:
        row = conn.execute(sa.select(provision_rates)).one()
    assert (row.roll_rate, row.loss_rate) == (Decimal("0.1"), Decimal("0.00504"))
    assert str(row.loss_rate) == "0.00504000"
    engine.dispose()


def test_rates_refuse_floats_and_round_half_up(engine):
    from receivables.warehouse.types import Rate, quantize_rate

    with pytest.raises(TypeError, match="not a float"):
        quantize_rate(0.1)
    assert quantize_rate(Decimal("0.123456785")) == Decimal("0.12345679")
    assert Rate().process_bind_param(Decimal("0.5"), engine.dialect) in (
        50_000_000,
        Decimal("0.50000000"),
    )
