"""The consent history: one row per subscribe, confirm, unsubscribe, suppression or erasure.

Existing subscriptions get one event each, dated when they last changed (method 'migration').

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

from newsletter.store.schema import UtcDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "consent_events",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("email_hash", sa.String(64), nullable=False),
        sa.Column("subscriber_id", sa.Integer, nullable=True),
        sa.Column("newsletter", sa.String(64), nullable=True),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("method", sa.String(32), nullable=False),
        sa.Column("detail", sa.Text, nullable=False, server_default=""),
        sa.Column("at", UtcDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_consent_events"),
        sa.ForeignKeyConstraint(
            ["subscriber_id"],
            ["subscribers.id"],
            ondelete="SET NULL",
            name="fk_consent_events_subscriber_id_subscribers",
        ),
    )
    op.create_index("ix_consent_events_email_hash", "consent_events", ["email_hash"])
    op.create_index("ix_consent_events_subscriber_id", "consent_events", ["subscriber_id"])
    op.execute(
        "INSERT INTO consent_events "
        "(email_hash, subscriber_id, newsletter, action, method, detail, at) "
        "SELECT s.email_hash, s.id, sub.newsletter, sub.status, 'migration', "
        "'recorded when the consent history began', sub.updated_at "
        "FROM subscriptions sub JOIN subscribers s ON s.id = sub.subscriber_id"
    )


def downgrade() -> None:
    op.drop_table("consent_events")
