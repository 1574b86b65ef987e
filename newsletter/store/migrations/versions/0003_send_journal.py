"""The send journal: sends, and one row per recipient of each send.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

from newsletter.store.schema import UtcDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sends",
        sa.Column("issue", sa.String(96), nullable=False),
        sa.Column("newsletter", sa.String(64), nullable=False),
        sa.Column("backend", sa.String(16), nullable=False),
        sa.Column("recipients", sa.Integer, nullable=False),
        sa.Column("started_at", UtcDateTime, nullable=False),
        sa.Column("finished_at", UtcDateTime, nullable=True),
        sa.PrimaryKeyConstraint("issue", name="pk_sends"),
    )
    op.create_table(
        "send_journal",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("issue", sa.String(96), nullable=False),
        sa.Column("subscriber_id", sa.Integer, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("worker", sa.String(96), nullable=False, server_default=""),
        sa.Column("lease_until", UtcDateTime, nullable=True),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("provider_id", sa.String(255), nullable=False, server_default=""),
        sa.Column("error", sa.Text, nullable=False, server_default=""),
        sa.Column("updated_at", UtcDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_send_journal"),
        sa.ForeignKeyConstraint(
            ["issue"], ["sends.issue"], ondelete="CASCADE", name="fk_send_journal_issue_sends"
        ),
    )
    op.create_index(
        "ix_send_journal_issue_subscriber", "send_journal", ["issue", "subscriber_id"], unique=True
    )
    op.create_index("ix_send_journal_issue_state", "send_journal", ["issue", "state", "id"])


def downgrade() -> None:
    op.drop_table("send_journal")
    op.drop_table("sends")
