"""exact rates, wide totals, exchange rates, history that follows the ledger

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import receivables.warehouse.types

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


Rate = receivables.warehouse.types.Rate
Money = receivables.warehouse.types.Money

#: (table, column, new type, SQLite factor): float rates become exact 8-place rates; money totals
#: get room (PostgreSQL precision only: SQLite already holds 64-bit cents).
_RETYPED = [
    ("customer_risk_classes", "substandard_share", Rate(8, 12), 10**8),
    ("invoice_risk", "loss_rate", Rate(8, 12), 10**8),
    ("provision_rates", "roll_rate", Rate(8, 12), 10**8),
    ("provision_rates", "loss_rate", Rate(8, 12), 10**8),
    ("customer_risk_classes", "outstanding", Money(28), None),
    ("customer_risk_classes", "substandard_or_worse", Money(28), None),
    ("roll_rates", "amount", Money(28), None),
]


_COMMENTS = {
    ("customer_risk_classes", "substandard_share"): (
        "share of the customer's outstanding (converted) that is substandard or worse"
    ),
}


def _comment(table: str, column: str) -> dict:
    # Alembic leaves a comment alone unless one is given (None would drop it)
    comment = _COMMENTS.get((table, column))
    return {"comment": comment} if comment else {}


def _retype() -> None:
    """Change the column types in place, converting existing values exactly."""
    bind = op.get_bind()
    for table, column, new_type, factor in _RETYPED:
        if bind.dialect.name == "postgresql":
            scale = 8 if factor else 2
            op.alter_column(
                table,
                column,
                type_=new_type,
                **_comment(table, column),
                postgresql_using=f"ROUND({column}::numeric, {scale})",
            )
            continue
        if factor is None:
            continue  # SQLite: 64-bit integer cents either way
        # scale first (the rebuilt table casts the old values to integers), then retype
        op.execute(f"UPDATE {table} SET {column} = ROUND({column} * {factor})")
        with op.batch_alter_table(table) as batch:
            batch.alter_column(column, type_=new_type, **_comment(table, column))


def upgrade() -> None:
    _retype()
    with op.batch_alter_table("customer_risk_classes") as batch:
        batch.add_column(
            sa.Column(
                "fx_rate",
                Rate(10, 20),
                nullable=True,
                comment="rate to the reporting currency on the as-of date "
                "(none: judged on its own)",
            )
        )
        batch.add_column(
            sa.Column(
                "reporting_outstanding",
                Money(28),
                nullable=True,
                comment="outstanding in the reporting currency",
            )
        )
    with op.batch_alter_table("roll_rates") as batch:
        batch.add_column(
            sa.Column(
                "ledger_file_id",
                sa.Integer(),
                nullable=True,
                comment="the newest loaded file the two month-end snapshots saw",
            )
        )
    with op.batch_alter_table("credit_scores") as batch:
        batch.add_column(
            sa.Column(
                "basis",
                sa.String(length=16),
                nullable=False,
                server_default="behaviour",
                comment="behaviour (payment history) or application (no payment history yet)",
            )
        )
    op.create_table(
        "fx_rates",
        sa.Column("rate_date", sa.Date(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column(
            "rate",
            receivables.warehouse.types.Rate(10, 20),
            nullable=False,
            comment="units of the reporting currency for one unit of currency",
        ),
        sa.Column("source_file_id", sa.Integer(), nullable=False),
        sa.CheckConstraint("rate > 0", name=op.f("ck_fx_rates_rate_positive")),
        sa.PrimaryKeyConstraint("rate_date", "currency", name=op.f("pk_fx_rates")),
        comment="exchange rates to the reporting currency; a date without its own rate uses the "
        "latest earlier one",
    )
    with op.batch_alter_table("ingested_files") as batch:
        batch.add_column(
            sa.Column(
                "earliest_date",
                sa.Date(),
                nullable=True,
                comment="earliest business date whose ledger this load changed (history is "
                "recomputed from there)",
            )
        )
    with op.batch_alter_table("aging_runs") as batch:
        batch.add_column(
            sa.Column(
                "ledger_file_id",
                sa.Integer(),
                nullable=True,
                comment="the newest loaded file the snapshot saw: a later load that changed this "
                "date makes it stale",
            )
        )
    # snapshots computed before this version saw every file loaded so far
    op.execute(
        "UPDATE aging_runs SET ledger_file_id = "
        "(SELECT MAX(file_id) FROM ingested_files WHERE status = 'loaded')"
    )


def downgrade() -> None:
    with op.batch_alter_table("credit_scores") as batch:
        batch.drop_column("basis")
    with op.batch_alter_table("roll_rates") as batch:
        batch.drop_column("ledger_file_id")
    with op.batch_alter_table("customer_risk_classes") as batch:
        batch.drop_column("reporting_outstanding")
        batch.drop_column("fx_rate")
    with op.batch_alter_table("aging_runs") as batch:
        batch.drop_column("ledger_file_id")
    with op.batch_alter_table("ingested_files") as batch:
        batch.drop_column("earliest_date")
    op.drop_table("fx_rates")
