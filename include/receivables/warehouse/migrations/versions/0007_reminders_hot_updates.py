"""reminders: the outbox's status changes without index writes

A reminder's row changes status twice as it is sent (pending -> sending -> sent). With
``status`` in an index every change wrote a new entry into each of the table's five indexes;
without it, and with room left in each page (PostgreSQL's ``fillfactor``), PostgreSQL updates
the row in place of its page (a heap-only tuple) and writes no index at all. The senders find
their batch by ``(planned_on, batch)`` instead.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02
"""

from __future__ import annotations

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

#: Share of each new page of ``reminders`` PostgreSQL fills on insert: the rest takes the
#: updated versions of its rows.
FILLFACTOR = 70


def upgrade() -> None:
    with op.batch_alter_table("reminders", schema=None) as batch_op:
        batch_op.drop_index("ix_reminders_planned_on_status")
        batch_op.create_index("ix_reminders_planned_on_batch", ["planned_on", "batch"])
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"ALTER TABLE reminders SET (fillfactor = {FILLFACTOR})")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE reminders RESET (fillfactor)")
    with op.batch_alter_table("reminders", schema=None) as batch_op:
        batch_op.drop_index("ix_reminders_planned_on_batch")
        batch_op.create_index("ix_reminders_planned_on_status", ["planned_on", "status"])
