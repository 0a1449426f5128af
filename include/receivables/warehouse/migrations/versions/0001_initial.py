"""initial warehouse: ledger, ingest bookkeeping, aging snapshots

Revision ID: 0001
Revises:
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import receivables.warehouse.types

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "aging_runs",
        sa.Column("as_of_date", sa.Date(), nullable=False),
        sa.Column("open_invoices", sa.Integer(), nullable=False),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False, comment="audit only"),
        sa.PrimaryKeyConstraint("as_of_date", name=op.f("pk_aging_runs")),
        comment="one row per as-of date whose aging snapshot exists (even when it has no rows)",
    )
    op.create_table(
        "aging_snapshots",
        sa.Column("as_of_date", sa.Date(), nullable=False),
        sa.Column("invoice_id", sa.String(length=64), nullable=False),
        sa.Column("customer_id", sa.String(length=64), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column(
            "amount", receivables.warehouse.types.Money(precision=18, scale=2), nullable=False
        ),
        sa.Column(
            "paid",
            receivables.warehouse.types.Money(precision=18, scale=2),
            nullable=False,
            comment="payments with paid_date <= as_of_date",
        ),
        sa.Column(
            "outstanding", receivables.warehouse.types.Money(precision=18, scale=2), nullable=False
        ),
        sa.Column("issue_date", sa.Date(), nullable=False),
        sa.Column("due_date", sa.Date(), nullable=False),
        sa.Column("days_past_due", sa.Integer(), nullable=False),
        sa.Column("bucket", sa.String(length=16), nullable=False),
        sa.Column("risk_class", sa.String(length=16), nullable=False),
        sa.Column("disputed", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("as_of_date", "invoice_id", name=op.f("pk_aging_snapshots")),
    )
    with op.batch_alter_table("aging_snapshots", schema=None) as batch_op:
        batch_op.create_index(
            "ix_aging_snapshots_as_of_date_customer_id", ["as_of_date", "customer_id"], unique=False
        )

    op.create_table(
        "collectors",
        sa.Column("collector_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=True),
        sa.Column("team", sa.String(length=255), nullable=True),
        sa.Column("source_file_id", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("collector_id", name=op.f("pk_collectors")),
    )
    op.create_table(
        "customers",
        sa.Column("customer_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column(
            "email", sa.Text(), nullable=True, comment="one or more addresses separated by ';'"
        ),
        sa.Column("phone", sa.String(length=64), nullable=True),
        sa.Column("locale", sa.String(length=8), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("segment", sa.String(length=64), nullable=True),
        sa.Column(
            "credit_limit", receivables.warehouse.types.Money(precision=18, scale=2), nullable=True
        ),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column(
            "collector_id",
            sa.String(length=64),
            nullable=True,
            comment="not enforced: collectors may come later",
        ),
        sa.Column("do_not_contact", sa.Boolean(), nullable=False),
        sa.Column("source_file_id", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("customer_id", name=op.f("pk_customers")),
    )
    with op.batch_alter_table("customers", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_customers_collector_id"), ["collector_id"], unique=False
        )

    op.create_table(
        "ingested_files",
        sa.Column("file_id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column(
            "file_name",
            sa.String(length=255),
            nullable=False,
            comment="name as dropped in the inbox",
        ),
        sa.Column(
            "kind",
            sa.String(length=32),
            nullable=True,
            comment="collectors, customers, invoices, payments",
        ),
        sa.Column("file_format", sa.String(length=16), nullable=True),
        sa.Column("encoding", sa.String(length=32), nullable=True),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True, comment="why a file was refused whole"),
        sa.Column(
            "reason_column",
            sa.String(length=255),
            nullable=True,
            comment="the column(s) a refusal is about",
        ),
        sa.Column("rows_read", sa.Integer(), server_default="0", nullable=False),
        sa.Column("rows_loaded", sa.Integer(), server_default="0", nullable=False),
        sa.Column("rows_quarantined", sa.Integer(), server_default="0", nullable=False),
        sa.Column(
            "as_of_date", sa.Date(), nullable=False, comment="business date of the ingest run"
        ),
        sa.Column("dag_run_id", sa.String(length=250), nullable=True),
        sa.Column(
            "stored_path",
            sa.Text(),
            nullable=True,
            comment="where the file went: archive/ or rejected/",
        ),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "status IN ('loaded', 'rejected')", name=op.f("ck_ingested_files_status")
        ),
        sa.CheckConstraint(
            "rows_read = rows_loaded + rows_quarantined",
            name=op.f("ck_ingested_files_rows_reconcile"),
        ),
        sa.PrimaryKeyConstraint("file_id", name=op.f("pk_ingested_files")),
    )
    with op.batch_alter_table("ingested_files", schema=None) as batch_op:
        batch_op.create_index(
            "uq_ingested_files_loaded_sha256",
            ["sha256"],
            unique=True,
            sqlite_where=sa.text("status = 'loaded'"),
            postgresql_where=sa.text("status = 'loaded'"),
        )

    op.create_table(
        "invoices",
        sa.Column("invoice_id", sa.String(length=64), nullable=False),
        sa.Column("customer_id", sa.String(length=64), nullable=False),
        sa.Column("issue_date", sa.Date(), nullable=False),
        sa.Column("due_date", sa.Date(), nullable=False),
        sa.Column(
            "amount", receivables.warehouse.types.Money(precision=18, scale=2), nullable=False
        ),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("disputed", sa.Boolean(), nullable=False),
        sa.Column("source_file_id", sa.Integer(), nullable=False),
        sa.CheckConstraint("amount > 0", name=op.f("ck_invoices_amount_positive")),
        sa.CheckConstraint("due_date >= issue_date", name=op.f("ck_invoices_due_after_issue")),
        sa.PrimaryKeyConstraint("invoice_id", name=op.f("pk_invoices")),
    )
    with op.batch_alter_table("invoices", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_invoices_customer_id"), ["customer_id"], unique=False)

    op.create_table(
        "payments",
        sa.Column("payment_id", sa.String(length=64), nullable=False),
        sa.Column("invoice_id", sa.String(length=64), nullable=False),
        sa.Column("paid_date", sa.Date(), nullable=False),
        sa.Column(
            "amount", receivables.warehouse.types.Money(precision=18, scale=2), nullable=False
        ),
        sa.Column("method", sa.String(length=64), nullable=True),
        sa.Column("source_file_id", sa.Integer(), nullable=False),
        sa.CheckConstraint("amount > 0", name=op.f("ck_payments_amount_positive")),
        sa.PrimaryKeyConstraint("payment_id", name=op.f("pk_payments")),
    )
    with op.batch_alter_table("payments", schema=None) as batch_op:
        batch_op.create_index(
            "ix_payments_invoice_id_paid_date", ["invoice_id", "paid_date"], unique=False
        )

    op.create_table(
        "quarantined_rows",
        sa.Column("quarantine_id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("file_id", sa.Integer(), nullable=False),
        sa.Column("row_number", sa.Integer(), nullable=True, comment="data rows counted from 1"),
        sa.Column(
            "record_id",
            sa.String(length=255),
            nullable=True,
            comment="the row's own id when it could be read",
        ),
        sa.Column("column_name", sa.String(length=255), nullable=True),
        sa.Column("value", sa.Text(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["file_id"],
            ["ingested_files.file_id"],
            name=op.f("fk_quarantined_rows_file_id_ingested_files"),
        ),
        sa.PrimaryKeyConstraint("quarantine_id", name=op.f("pk_quarantined_rows")),
    )
    with op.batch_alter_table("quarantined_rows", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_quarantined_rows_file_id"), ["file_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("quarantined_rows", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_quarantined_rows_file_id"))

    op.drop_table("quarantined_rows")
    with op.batch_alter_table("payments", schema=None) as batch_op:
        batch_op.drop_index("ix_payments_invoice_id_paid_date")

    op.drop_table("payments")
    with op.batch_alter_table("invoices", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_invoices_customer_id"))

    op.drop_table("invoices")
    with op.batch_alter_table("ingested_files", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_ingested_files_loaded_sha256",
            sqlite_where=sa.text("status = 'loaded'"),
            postgresql_where=sa.text("status = 'loaded'"),
        )

    op.drop_table("ingested_files")
    with op.batch_alter_table("customers", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_customers_collector_id"))

    op.drop_table("customers")
    op.drop_table("collectors")
    with op.batch_alter_table("aging_snapshots", schema=None) as batch_op:
        batch_op.drop_index("ix_aging_snapshots_as_of_date_customer_id")

    op.drop_table("aging_snapshots")
    op.drop_table("aging_runs")
