"""legal: case lifecycle, its events and claimed invoices

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import receivables.warehouse.types

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

TOTAL = receivables.warehouse.types.Money(28)
MONEY = receivables.warehouse.types.Money()
NEW_COLUMNS = (
    ("principal", TOTAL, "outstanding of the claimed invoices at escalation"),
    ("interest", TOTAL, "late interest claimed (0 when not configured)"),
    ("worst_days_past_due", sa.Integer(), None),
    ("rules", sa.Text(), "the selection rule results that proposed it (JSON)"),
    ("decided_by", sa.String(length=255), "who approved or rejected it"),
    ("decided_at", sa.DateTime(timezone=True), None),
    ("decision_note", sa.Text(), None),
    ("recovered_amount", TOTAL, "recovered or settled"),
    ("written_off_amount", TOTAL, None),
    ("case_file", sa.Text(), "folder of its case file under RECEIVABLES_HOME"),
    ("strategy_version", sa.String(length=64), None),
)
STATUSES = (
    "status IN ('proposed', 'approved', 'rejected', 'filed', 'judgment', 'recovered', "
    "'settled', 'written_off', 'closed')"
)


def upgrade() -> None:
    with op.batch_alter_table("legal_cases", schema=None) as batch_op:
        batch_op.alter_column(
            "opened_on", existing_type=sa.Date(), comment="the as-of date that proposed it"
        )
        batch_op.alter_column(
            "amount", existing_type=TOTAL, comment="claimed: principal + interest"
        )
        for name, type_, comment in NEW_COLUMNS:
            batch_op.add_column(sa.Column(name, type_, nullable=True, comment=comment))
        batch_op.create_check_constraint(op.f("ck_legal_cases_status"), STATUSES)

    op.create_table(
        "legal_case_events",
        sa.Column("event_id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("case_id", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False, comment="the status it moved to"),
        sa.Column("occurred_on", sa.Date(), nullable=False),
        sa.Column("amount", TOTAL, nullable=True, comment="recovered, settled or written off"),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column(
            "actor",
            sa.String(length=255),
            nullable=True,
            comment="a person, or the rule that decided",
        ),
        sa.Column(
            "source",
            sa.String(length=255),
            nullable=False,
            comment="selection, review, cli, a file",
        ),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("event_id", name=op.f("pk_legal_case_events")),
        comment="every step of every legal case, in order",
    )
    with op.batch_alter_table("legal_case_events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_legal_case_events_case_id"), ["case_id"], unique=False)

    op.create_table(
        "legal_case_invoices",
        sa.Column("case_id", sa.String(length=64), nullable=False),
        sa.Column("invoice_id", sa.String(length=64), nullable=False),
        sa.Column("due_date", sa.Date(), nullable=False),
        sa.Column("days_past_due", sa.Integer(), nullable=False, comment="at escalation"),
        sa.Column("outstanding", MONEY, nullable=False, comment="at escalation"),
        sa.Column("interest", MONEY, nullable=False),
        sa.PrimaryKeyConstraint("case_id", "invoice_id", name=op.f("pk_legal_case_invoices")),
        comment="the invoices a legal case claims, as they stood at escalation",
    )


def downgrade() -> None:
    op.drop_table("legal_case_invoices")
    with op.batch_alter_table("legal_case_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_legal_case_events_case_id"))
    op.drop_table("legal_case_events")
    with op.batch_alter_table("legal_cases", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_legal_cases_status"), type_="check")
        for name, _type, _comment in reversed(NEW_COLUMNS):
            batch_op.drop_column(name)
        batch_op.alter_column("amount", existing_type=TOTAL, comment=None)
        batch_op.alter_column("opened_on", existing_type=sa.Date(), comment=None)
