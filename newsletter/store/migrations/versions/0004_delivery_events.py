"""What the provider reports about each message: SendGrid's webhook events, once each.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

from newsletter.store.schema import UtcDateTime

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "delivery_events",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("event_id", sa.String(128), nullable=False),
        sa.Column("event", sa.String(32), nullable=False),
        sa.Column("issue", sa.String(96), nullable=True),
        sa.Column("subscriber_id", sa.Integer, nullable=True),
        sa.Column("email_hash", sa.String(64), nullable=True),
        sa.Column("machine", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("url", sa.Text, nullable=False, server_default=""),
        sa.Column("detail", sa.Text, nullable=False, server_default=""),
        sa.Column("provider_id", sa.String(255), nullable=False, server_default=""),
        sa.Column("occurred_at", UtcDateTime, nullable=False),
        sa.Column("received_at", UtcDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_delivery_events"),
        sa.UniqueConstraint("event_id", name="uq_delivery_events_event_id"),
    )
    op.create_index("ix_delivery_events_issue_event", "delivery_events", ["issue", "event"])


def downgrade() -> None:
    op.drop_table("delivery_events")
