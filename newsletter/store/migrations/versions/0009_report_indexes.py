"""The indexes `newsletter report` aggregates through: delivery events per issue, event and
person (opens and clicks counted per reader without reading the table), clicks per link, and
the consent history per newsletter in time order (list growth).

Revision ID: 0009
Revises: 0006
"""

from alembic import op

revision = "0009"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_delivery_events_issue_event_people",
        "delivery_events",
        ["issue", "event", "machine", "subscriber_id"],
    )
    op.create_index(
        "ix_delivery_events_issue_event_url", "delivery_events", ["issue", "event", "url"]
    )
    op.create_index("ix_consent_events_newsletter_at", "consent_events", ["newsletter", "at"])


def downgrade() -> None:
    op.drop_index("ix_consent_events_newsletter_at", "consent_events")
    op.drop_index("ix_delivery_events_issue_event_url", "delivery_events")
    op.drop_index("ix_delivery_events_issue_event_people", "delivery_events")
