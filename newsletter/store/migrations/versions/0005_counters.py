"""High-water marks for ids, so that SQLite never reuses an erased subscriber's id.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "counters",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("value", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_counters"),
    )
    op.execute(
        "INSERT INTO counters (name, value) "
        "SELECT 'subscribers', COALESCE(MAX(id), 0) FROM subscribers"
    )


def downgrade() -> None:
    op.drop_table("counters")
