"""Bounces over SMTP (#14): the bounce mailbox's messages processed, once each by Message-ID;
a diagnostic (RFC 3463 status, the server's words) on each delivery event; the delivery events
of an address found fast (the soft-bounce count).

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

from newsletter.store.schema import UtcDateTime

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "bounce_messages",
        sa.Column("message_id", sa.String(255), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("how", sa.String(32), nullable=False, server_default=""),
        sa.Column("processed_at", UtcDateTime, nullable=False),
        sa.PrimaryKeyConstraint("message_id", name="pk_bounce_messages"),
    )
    with op.batch_alter_table("delivery_events") as batch:
        batch.add_column(sa.Column("diagnostic", sa.Text, nullable=False, server_default=""))
    op.create_index("ix_delivery_events_email_hash", "delivery_events", ["email_hash"])


def downgrade() -> None:
    op.drop_index("ix_delivery_events_email_hash", "delivery_events")
    with op.batch_alter_table("delivery_events") as batch:
        batch.drop_column("diagnostic")
    op.drop_table("bounce_messages")
