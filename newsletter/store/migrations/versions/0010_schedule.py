"""A send handed to the provider ahead of its time (SendGrid's send_at) says when it goes out.

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

from newsletter.store.schema import UtcDateTime

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("sends") as batch:
        batch.add_column(sa.Column("scheduled_for", UtcDateTime, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("sends") as batch:
        batch.drop_column("scheduled_for")
