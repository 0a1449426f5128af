"""risk: classification, provisions, roll rates, scores, warnings

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import receivables.warehouse.types

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "credit_models",
        sa.Column("model_id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("trained_as_of", sa.Date(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False, comment="scorecard or rules"),
        sa.Column("status", sa.String(length=16), nullable=False, comment="approved or rejected"),
        sa.Column("status_reason", sa.Text(), nullable=True),
        sa.Column("auc", sa.Float(), nullable=True),
        sa.Column("ks", sa.Float(), nullable=True),
        sa.Column("gini", sa.Float(), nullable=True),
        sa.Column("psi", sa.Float(), nullable=True),
        sa.Column("train_rows", sa.Integer(), nullable=True),
        sa.Column("holdout_rows", sa.Integer(), nullable=True),
        sa.Column("definition", sa.Text(), nullable=False, comment="JSON: bins, WoE, coefficients"),
        sa.Column("card_path", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, comment="audit only"),
        sa.PrimaryKeyConstraint("model_id", name=op.f("pk_credit_models")),
        sa.UniqueConstraint(
            "trained_as_of", "kind", name=op.f("uq_credit_models_trained_as_of_kind")
        ),
    )
    op.create_table(
        "credit_scores",
        sa.Column("as_of_date", sa.Date(), nullable=False),
        sa.Column("customer_id", sa.String(length=64), nullable=False),
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("score", sa.Float(precision=53), nullable=False, comment="rounded to 2 decimals"),
        sa.Column(
            "pd",
            sa.Float(precision=53),
            nullable=False,
            comment="probability of reaching 90+ days past due",
        ),
        sa.Column("grade", sa.String(length=1), nullable=False),
        sa.Column("reasons", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("as_of_date", "customer_id", name=op.f("pk_credit_scores")),
    )
    op.create_table(
        "customer_risk_classes",
        sa.Column("as_of_date", sa.Date(), nullable=False),
        sa.Column("customer_id", sa.String(length=64), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column(
            "outstanding", receivables.warehouse.types.Money(precision=18, scale=2), nullable=False
        ),
        sa.Column(
            "substandard_or_worse",
            receivables.warehouse.types.Money(precision=18, scale=2),
            nullable=False,
        ),
        sa.Column("substandard_share", sa.Float(precision=53), nullable=False),
        sa.Column("worst_days_past_due", sa.Integer(), nullable=False),
        sa.Column(
            "risk_class", sa.String(length=16), nullable=False, comment="the worst of its invoices"
        ),
        sa.Column(
            "rule_applied",
            sa.Boolean(),
            nullable=False,
            comment="more than the threshold is substandard or worse: all at least substandard",
        ),
        sa.PrimaryKeyConstraint(
            "as_of_date", "customer_id", "currency", name=op.f("pk_customer_risk_classes")
        ),
        comment="customer-level five-category classification per as-of date and currency",
    )
    op.create_table(
        "invoice_risk",
        sa.Column("as_of_date", sa.Date(), nullable=False),
        sa.Column("invoice_id", sa.String(length=64), nullable=False),
        sa.Column("customer_id", sa.String(length=64), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("segment", sa.String(length=64), nullable=True),
        sa.Column("bucket", sa.String(length=16), nullable=False),
        sa.Column(
            "outstanding", receivables.warehouse.types.Money(precision=18, scale=2), nullable=False
        ),
        sa.Column(
            "risk_class",
            sa.String(length=16),
            nullable=False,
            comment="by days past due, raised to substandard by the customer rule",
        ),
        sa.Column("loss_rate", sa.Float(precision=53), nullable=False),
        sa.Column(
            "ecl",
            receivables.warehouse.types.Money(precision=18, scale=2),
            nullable=False,
            comment="expected credit loss = outstanding x rate",
        ),
        sa.PrimaryKeyConstraint("as_of_date", "invoice_id", name=op.f("pk_invoice_risk")),
        comment="per open invoice: final risk class and IFRS 9 provision",
    )
    with op.batch_alter_table("invoice_risk", schema=None) as batch_op:
        batch_op.create_index(
            "ix_invoice_risk_as_of_date_customer_id", ["as_of_date", "customer_id"], unique=False
        )

    op.create_table(
        "provision_rates",
        sa.Column("as_of_date", sa.Date(), nullable=False),
        sa.Column(
            "currency", sa.String(length=3), nullable=False, comment="each book has its own history"
        ),
        sa.Column("bucket", sa.String(length=16), nullable=False),
        sa.Column(
            "roll_rate",
            sa.Float(precision=53),
            nullable=True,
            comment="average roll rate to the next bucket",
        ),
        sa.Column(
            "roll_months",
            sa.Integer(),
            nullable=True,
            comment="months over which this bucket's roll is seen",
        ),
        sa.Column("loss_rate", sa.Float(precision=53), nullable=False),
        sa.Column("method", sa.String(length=16), nullable=False, comment="roll_rates or fallback"),
        sa.Column(
            "observations", sa.Integer(), nullable=False, comment="roll observations averaged"
        ),
        sa.PrimaryKeyConstraint(
            "as_of_date", "currency", "bucket", name=op.f("pk_provision_rates")
        ),
    )
    op.create_table(
        "risk_warnings",
        sa.Column("as_of_date", sa.Date(), nullable=False),
        sa.Column("customer_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("severity", sa.String(length=16), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=True),
        sa.Column(
            "proposed_credit_limit",
            receivables.warehouse.types.Money(precision=18, scale=2),
            nullable=True,
        ),
        sa.Column("dunning_stage", sa.String(length=32), nullable=True),
        sa.PrimaryKeyConstraint("as_of_date", "customer_id", "kind", name=op.f("pk_risk_warnings")),
    )
    op.create_table(
        "roll_rates",
        sa.Column(
            "month_end", sa.Date(), nullable=False, comment="the later of the two month-ends"
        ),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("from_bucket", sa.String(length=16), nullable=False),
        sa.Column("to_bucket", sa.String(length=16), nullable=False, comment="a bucket, or 'paid'"),
        sa.Column(
            "amount",
            receivables.warehouse.types.Money(precision=18, scale=2),
            nullable=False,
            comment="outstanding at the earlier month-end",
        ),
        sa.Column("invoices", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint(
            "month_end", "currency", "from_bucket", "to_bucket", name=op.f("pk_roll_rates")
        ),
        comment="bucket-to-bucket movement of open invoices between consecutive month-ends",
    )


def downgrade() -> None:
    op.drop_table("roll_rates")
    op.drop_table("risk_warnings")
    op.drop_table("provision_rates")
    with op.batch_alter_table("invoice_risk", schema=None) as batch_op:
        batch_op.drop_index("ix_invoice_risk_as_of_date_customer_id")

    op.drop_table("invoice_risk")
    op.drop_table("customer_risk_classes")
    op.drop_table("credit_scores")
    op.drop_table("credit_models")
