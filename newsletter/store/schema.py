"""The one owner of the database schema (SQLAlchemy Core). Migrations in migrations/versions
change it; this file always describes the newest version (the head revision)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    false,
)
from sqlalchemy.engine import Dialect

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_name)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


class UtcDateTime(TypeDecorator[dt.datetime]):
    """Aware UTC datetimes in, aware UTC datetimes out, on SQLite (no time zones) too."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store")
        value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        stored: dt.datetime = value
        return stored.replace(tzinfo=dt.UTC) if stored.tzinfo is None else stored.astimezone(dt.UTC)


subscribers = Table(
    "subscribers",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("email", String(320), nullable=False),  # as given
    Column("email_key", String(320), nullable=False, unique=True),  # domain lowercased, NFC
    Column("email_hash", String(64), nullable=False),  # sha256 of email_key (no index: joins go
    # from subscribers to suppressions, whose key it is)
    Column("name", String(300), nullable=False, server_default=""),
    Column("tier", String(16), nullable=False, server_default="free"),
    Column("source", String(200), nullable=False, server_default=""),
    Column("attributes", JSON, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
)

subscriptions = Table(
    "subscriptions",
    metadata,
    Column("subscriber_id", ForeignKey("subscribers.id", ondelete="CASCADE"), primary_key=True),
    Column("newsletter", String(64), primary_key=True),
    Column("status", String(16), nullable=False),  # pending | subscribed | unsubscribed
    Column("method", String(32), nullable=False),  # how the last change happened
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Column("subscribed_at", UtcDateTime, nullable=True),
    Column("unsubscribed_at", UtcDateTime, nullable=True),
    Index("ix_subscriptions_newsletter_status", "newsletter", "status"),
)

suppressions = Table(
    "suppressions",
    metadata,
    Column("email_hash", String(64), primary_key=True),
    Column(
        "reason", String(32), nullable=False
    ),  # bounce | complaint | blocklisted | erased | manual
    Column("source", String(200), nullable=False, server_default=""),
    Column("created_at", UtcDateTime, nullable=False),
)

# revision 0002: the consent history
consent_events = Table(
    "consent_events",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("email_hash", String(64), nullable=False, index=True),
    Column(
        "subscriber_id",
        ForeignKey("subscribers.id", ondelete="SET NULL"),
        nullable=True,
        index=True,
    ),
    Column("newsletter", String(64), nullable=True),
    Column(
        "action", String(32), nullable=False
    ),  # subscribed | pending | unsubscribed | suppressed | erased …
    Column(
        "method", String(32), nullable=False
    ),  # import | command | web | one-click | webhook | migration
    Column("detail", Text, nullable=False, server_default=""),
    Column("at", UtcDateTime, nullable=False),
    # revision 0009: list growth (per newsletter in time; each address's history in order)
    Index("ix_consent_events_newsletter_action_at", "newsletter", "action", "at"),
    Index("ix_consent_events_history", "email_hash", "newsletter", "at"),
)

# revision 0003: the send journal, one row per (issue, recipient), written before and after
# each hand-off to a backend, so that a send survives a crash without sending anyone twice
sends = Table(
    "sends",
    metadata,
    Column("issue", String(96), primary_key=True),  # "<newsletter>/<date>"
    Column("newsletter", String(64), nullable=False),
    Column("backend", String(16), nullable=False),
    Column("recipients", Integer, nullable=False),
    Column("started_at", UtcDateTime, nullable=False),
    Column("finished_at", UtcDateTime, nullable=True),
    Column("scheduled_for", UtcDateTime, nullable=True),  # handed over to go out then (#17)
)

send_journal = Table(
    "send_journal",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("issue", String(96), ForeignKey("sends.issue", ondelete="CASCADE"), nullable=False),
    Column("subscriber_id", Integer, nullable=False),  # no FK: an erased subscriber's row stays
    Column(
        "state", String(16), nullable=False
    ),  # pending|claimed|inflight|sent|failed|skipped|unknown
    Column("worker", String(96), nullable=False, server_default=""),
    Column("lease_until", UtcDateTime, nullable=True),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("provider_id", String(255), nullable=False, server_default=""),
    Column("error", Text, nullable=False, server_default=""),
    Column("updated_at", UtcDateTime, nullable=False),
    # revision 0007: the tier fixed at the send's start (None: a send started before 0007,
    # which reads the subscriber's tier at hand-over)
    Column("tier", String(16), nullable=True),
    Index("ix_send_journal_issue_subscriber", "issue", "subscriber_id", unique=True),
    Index("ix_send_journal_issue_state", "issue", "state", "id"),  # claims: ORDER BY id
)

# revision 0004: what the provider reports about each message (SendGrid's Event Webhook), stored
# once per provider event id: SendGrid sends duplicates and retries
delivery_events = Table(
    "delivery_events",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("event_id", String(128), nullable=False, unique=True),  # sg_event_id
    Column("event", String(32), nullable=False),  # delivered | open | click | bounce | …
    Column("issue", String(96), nullable=True),  # from custom_args: "<newsletter>/<date>"
    Column("subscriber_id", Integer, nullable=True),  # from custom_args; no FK (erasure)
    Column("email_hash", String(64), nullable=True),
    Column("machine", Boolean, nullable=False, server_default=false()),  # sg_machine_open
    Column("url", Text, nullable=False, server_default=""),  # clicks
    Column("detail", Text, nullable=False, server_default=""),  # bounce type, drop reason…
    Column("provider_id", String(255), nullable=False, server_default=""),  # sg_message_id
    Column("occurred_at", UtcDateTime, nullable=False),
    Column("received_at", UtcDateTime, nullable=False),
    # revision 0008: the RFC 3463 status and the server's words of a bounce (SMTP, mailbox)
    Column("diagnostic", Text, nullable=False, server_default=""),
    Index("ix_delivery_events_issue_event", "issue", "event"),
    Index("ix_delivery_events_email_hash", "email_hash"),
    # revision 0009: what `newsletter report` aggregates through
    Index("ix_delivery_events_issue_event_people", "issue", "event", "machine", "subscriber_id"),
    Index("ix_delivery_events_issue_event_url", "issue", "event", "url"),
)

# revision 0008: each message `bounces process` read, by Message-ID: reading a mailbox again
# changes nothing
bounce_messages = Table(
    "bounce_messages",
    metadata,
    Column("message_id", String(255), primary_key=True),
    Column("kind", String(16), nullable=False),  # bounce | complaint | report | autoreply
    Column("how", String(32), nullable=False, server_default=""),  # dsn | flufl | arf | …
    Column("processed_at", UtcDateTime, nullable=False),
)

# revision 0005: high-water marks, so that SQLite never hands out an id again after the row
# that held it was deleted (an erased subscriber's id still names them in the send journal
# and in delivery events); PostgreSQL's sequences never go back anyway
counters = Table(
    "counters",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", Integer, nullable=False),
)

# revision 0007: the publisher's systems (the HTTP API, issue #13)
# keys: only the SHA-256 of a key is stored, looked up by its index on every request
api_keys = Table(
    "api_keys",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(28), nullable=False, unique=True),  # "api:<name>" fits a method
    Column("key_hash", String(64), nullable=False, unique=True),  # sha256 hex of the key
    Column("prefix", String(12), nullable=False),  # the key's first characters, to tell keys apart
    Column("scopes", String(200), nullable=False),  # space-separated
    Column("created_at", UtcDateTime, nullable=False),
    Column("last_used_at", UtcDateTime, nullable=True),
    Column("revoked_at", UtcDateTime, nullable=True),
)

# a POST's first answer under its Idempotency-Key, so that a retry (from any worker or
# machine) replays it and changes nothing
idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("key_id", ForeignKey("api_keys.id", ondelete="CASCADE"), primary_key=True),
    Column("idempotency_key", String(200), primary_key=True),
    Column("request_hash", String(64), nullable=False),  # sha256 of method, path and body
    Column("status", Integer, nullable=False),
    Column("body", Text, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
)
