"""collection: reminders outbox, worklist, email events, suppressions

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import receivables.warehouse.types

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "collection_actions",
        sa.Column("action_id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("planned_on", sa.Date(), nullable=False),
        sa.Column("customer_id", sa.String(length=64), nullable=False),
        sa.Column(
            "kind", sa.String(length=32), nullable=False, comment="call, visit, fix_data, review"
        ),
        sa.Column(
            "cause", sa.String(length=64), nullable=False, comment="the stage or rule behind it"
        ),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("collector_id", sa.String(length=64), nullable=True),
        sa.Column("reminder_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("action_id", name=op.f("pk_collection_actions")),
        sa.UniqueConstraint(
            "planned_on",
            "customer_id",
            "kind",
            "cause",
            name=op.f("uq_collection_actions_planned_on_customer_id_kind_cause"),
        ),
        comment="the collectors' worklist: calls, visits and data fixes (recorded, never sent)",
    )
    op.create_table(
        "customer_feedback",
        sa.Column("feedback_id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("customer_id", sa.String(length=64), nullable=False),
        sa.Column("reminder_id", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(length=16), nullable=False, comment="dispute or feedback"),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False, comment="open or resolved"),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("feedback_id", name=op.f("pk_customer_feedback")),
        comment="what customers told us through the link in their reminder",
    )
    with op.batch_alter_table("customer_feedback", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_customer_feedback_customer_id"), ["customer_id"], unique=False
        )

    op.create_table(
        "email_events",
        sa.Column("sg_event_id", sa.String(length=255), nullable=False),
        sa.Column("event", sa.String(length=32), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=True),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sg_message_id", sa.String(length=255), nullable=True),
        sa.Column(
            "reminder_id", sa.Integer(), nullable=True, comment="from the send's custom_args"
        ),
        sa.Column("payload", sa.Text(), nullable=False, comment="the event as received (JSON)"),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("sg_event_id", name=op.f("pk_email_events")),
        comment="SendGrid Event Webhook events, each stored once",
    )
    with op.batch_alter_table("email_events", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_email_events_reminder_id"), ["reminder_id"], unique=False
        )

    op.create_table(
        "legal_cases",
        sa.Column("case_id", sa.String(length=64), nullable=False),
        sa.Column("customer_id", sa.String(length=64), nullable=False),
        sa.Column("opened_on", sa.Date(), nullable=False),
        sa.Column("amount", receivables.warehouse.types.Money(28), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("updated_on", sa.Date(), nullable=False),
        sa.PrimaryKeyConstraint("case_id", name=op.f("pk_legal_cases")),
        comment="legal cases; reminders stop while one is open (approved, filed, judgment)",
    )
    with op.batch_alter_table("legal_cases", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_legal_cases_customer_id"), ["customer_id"], unique=False
        )

    op.create_table(
        "promises_to_pay",
        sa.Column("promise_id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("customer_id", sa.String(length=64), nullable=False),
        sa.Column("promised_on", sa.Date(), nullable=False, comment="when the customer promised"),
        sa.Column("pay_by", sa.Date(), nullable=False),
        sa.Column(
            "amount", receivables.warehouse.types.Money(precision=18, scale=2), nullable=True
        ),
        sa.Column("currency", sa.String(length=3), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("promise_id", name=op.f("pk_promises_to_pay")),
        comment="promises to pay: collection pauses from promised_on until pay_by",
    )
    with op.batch_alter_table("promises_to_pay", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_promises_to_pay_customer_id"), ["customer_id"], unique=False
        )

    op.create_table(
        "reminder_invoices",
        sa.Column("reminder_id", sa.Integer(), nullable=False),
        sa.Column("invoice_id", sa.String(length=64), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column(
            "outstanding",
            receivables.warehouse.types.Money(precision=18, scale=2),
            nullable=False,
            comment="when planned",
        ),
        sa.Column("due_date", sa.Date(), nullable=False),
        sa.Column("days_past_due", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("reminder_id", "invoice_id", name=op.f("pk_reminder_invoices")),
        comment="the open invoices a reminder's statement covers",
    )
    op.create_table(
        "reminders",
        sa.Column("reminder_id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column(
            "idempotency_key",
            sa.String(length=200),
            nullable=False,
            comment="customer/stage/planned_on: one reminder of a stage per customer and day",
        ),
        sa.Column(
            "planned_on", sa.Date(), nullable=False, comment="the as-of date that planned it"
        ),
        sa.Column("customer_id", sa.String(length=64), nullable=False),
        sa.Column("stage", sa.String(length=32), nullable=False),
        sa.Column("ladder", sa.String(length=16), nullable=False, comment="standard or early"),
        sa.Column("channel", sa.String(length=16), server_default="email", nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column(
            "rule",
            sa.String(length=64),
            nullable=True,
            comment="the compliance rule that refused it",
        ),
        sa.Column(
            "reason", sa.Text(), nullable=True, comment="why it was refused or failed, in words"
        ),
        sa.Column("locale", sa.String(length=8), nullable=False),
        sa.Column(
            "recipients",
            sa.Text(),
            nullable=True,
            comment="the debtor's own addresses, ';'-separated",
        ),
        sa.Column(
            "send_at",
            sa.DateTime(timezone=True),
            nullable=True,
            comment="planned moment of delivery (UTC)",
        ),
        sa.Column(
            "oldest_invoice_id",
            sa.String(length=64),
            nullable=False,
            comment="the invoice whose age sets the stage",
        ),
        sa.Column("days_past_due", sa.Integer(), nullable=False, comment="of the oldest invoice"),
        sa.Column(
            "invoices", sa.Integer(), nullable=False, comment="open invoices in the statement"
        ),
        sa.Column("mentions_legal", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("strategy_version", sa.String(length=64), nullable=False),
        sa.Column(
            "batch", sa.Integer(), nullable=True, comment="send batch within the planned date"
        ),
        sa.Column(
            "provider",
            sa.String(length=16),
            nullable=True,
            comment="sendgrid, or outbox (.eml files)",
        ),
        sa.Column("provider_message_id", sa.String(length=255), nullable=True),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "delivery_status",
            sa.String(length=32),
            nullable=True,
            comment="the latest Event Webhook event",
        ),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("clicked_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('pending', 'sending', 'sent', 'refused', 'failed')",
            name=op.f("ck_reminders_status"),
        ),
        sa.PrimaryKeyConstraint("reminder_id", name=op.f("pk_reminders")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_reminders_idempotency_key")),
        comment="customer reminders: the outbox of customer-facing email, one row per customer, "
        "stage and planned date",
    )
    with op.batch_alter_table("reminders", schema=None) as batch_op:
        batch_op.create_index(
            "ix_reminders_customer_id_planned_on", ["customer_id", "planned_on"], unique=False
        )
        batch_op.create_index(
            "ix_reminders_planned_on_status", ["planned_on", "status"], unique=False
        )
        batch_op.create_index("ix_reminders_oldest_invoice_id", ["oldest_invoice_id"], unique=False)

    op.create_table(
        "suppressions",
        sa.Column("address", sa.String(length=320), nullable=False, comment="lower case"),
        sa.Column(
            "reason",
            sa.String(length=32),
            nullable=False,
            comment="bounce, dropped, spamreport, unsubscribe, group_unsubscribe, opt_out",
        ),
        sa.Column(
            "source", sa.String(length=32), nullable=False, comment="webhook or self_service"
        ),
        sa.Column("since", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sg_event_id", sa.String(length=255), nullable=True),
        sa.PrimaryKeyConstraint("address", name=op.f("pk_suppressions")),
        comment="addresses no reminder may be sent to",
    )


def downgrade() -> None:
    op.drop_table("suppressions")
    with op.batch_alter_table("reminders", schema=None) as batch_op:
        batch_op.drop_index("ix_reminders_oldest_invoice_id")
        batch_op.drop_index("ix_reminders_planned_on_status")
        batch_op.drop_index("ix_reminders_customer_id_planned_on")

    op.drop_table("reminders")
    op.drop_table("reminder_invoices")
    with op.batch_alter_table("promises_to_pay", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_promises_to_pay_customer_id"))

    op.drop_table("promises_to_pay")
    with op.batch_alter_table("legal_cases", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_legal_cases_customer_id"))

    op.drop_table("legal_cases")
    with op.batch_alter_table("email_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_email_events_reminder_id"))

    op.drop_table("email_events")
    with op.batch_alter_table("customer_feedback", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_customer_feedback_customer_id"))

    op.drop_table("customer_feedback")
    op.drop_table("collection_actions")
