"""The indexes `newsletter report` aggregates through: delivery events per issue, event and
person (opens and clicks counted per reader without reading the table), clicks per link, and
the consent history per newsletter and action in time order and per address in order (list growth).

Revision ID: 0009
Revises: 0008
"""

from alembic import op

revision = "0009"
down_revision = "0008"
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
    op.create_index(
        "ix_consent_events_newsletter_action_at", "consent_events", ["newsletter", "action", "at"]
    )
    op.create_index(
        "ix_consent_events_history", "consent_events", ["email_hash", "newsletter", "at"]
    )


def downgrade() -> None:
    op.drop_index("ix_consent_events_history", "consent_events")
    op.drop_index("ix_consent_events_newsletter_action_at", "consent_events")
    op.drop_index("ix_delivery_events_issue_event_url", "delivery_events")
    op.drop_index("ix_delivery_events_issue_event_people", "delivery_events")
