"""staff feedback: remarks of the collection staff loaded from feedback files

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "staff_feedback",
        sa.Column("feedback_id", sa.String(length=64), nullable=False),
        sa.Column("given_on", sa.Date(), nullable=False),
        sa.Column("author", sa.String(length=255), nullable=False),
        sa.Column("team", sa.String(length=255), nullable=True),
        sa.Column(
            "topic",
            sa.String(length=16),
            nullable=False,
            comment="strategy, templates, customers, legal, tools or other",
        ),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("source_file_id", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("feedback_id", name=op.f("pk_staff_feedback")),
        comment="what the collection staff said of the plan (feedback files)",
    )
    with op.batch_alter_table("staff_feedback", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_staff_feedback_given_on"), ["given_on"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("staff_feedback", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_staff_feedback_given_on"))
    op.drop_table("staff_feedback")
