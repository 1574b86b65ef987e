"""Subscribers, their subscriptions, and the suppression list.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

from newsletter.store.schema import UtcDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "subscribers",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("email_key", sa.String(320), nullable=False),
        sa.Column("email_hash", sa.String(64), nullable=False),
        sa.Column("name", sa.String(300), nullable=False, server_default=""),
        sa.Column("tier", sa.String(16), nullable=False, server_default="free"),
        sa.Column("source", sa.String(200), nullable=False, server_default=""),
        sa.Column("attributes", sa.JSON, nullable=False),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.Column("updated_at", UtcDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_subscribers"),
        sa.UniqueConstraint("email_key", name="uq_subscribers_email_key"),
    )
    op.create_table(
        "subscriptions",
        sa.Column("subscriber_id", sa.Integer, nullable=False),
        sa.Column("newsletter", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("method", sa.String(32), nullable=False),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.Column("updated_at", UtcDateTime, nullable=False),
        sa.Column("subscribed_at", UtcDateTime, nullable=True),
        sa.Column("unsubscribed_at", UtcDateTime, nullable=True),
        sa.PrimaryKeyConstraint("subscriber_id", "newsletter", name="pk_subscriptions"),
        sa.ForeignKeyConstraint(
            ["subscriber_id"],
            ["subscribers.id"],
            ondelete="CASCADE",
            name="fk_subscriptions_subscriber_id_subscribers",
        ),
    )
    op.create_index("ix_subscriptions_newsletter_status", "subscriptions", ["newsletter", "status"])
    op.create_table(
        "suppressions",
        sa.Column("email_hash", sa.String(64), nullable=False),
        sa.Column("reason", sa.String(32), nullable=False),
        sa.Column("source", sa.String(200), nullable=False, server_default=""),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.PrimaryKeyConstraint("email_hash", name="pk_suppressions"),
    )


def downgrade() -> None:
    op.drop_table("suppressions")
    op.drop_table("subscriptions")
    op.drop_table("subscribers")
