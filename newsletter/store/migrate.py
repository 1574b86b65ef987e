"""Schema versions with Alembic, driven from code: open → compare → upgrade in one transaction."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy import Connection

from newsletter.errors import SchemaVersionError

MIGRATIONS = Path(__file__).parent / "migrations"


def _config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def head() -> str:
    head = ScriptDirectory.from_config(_config()).get_current_head()
    assert head is not None
    return head


def current(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def upgrade(connection: Connection, target: str = "head", shown_url: str = "") -> None:
    """Bring the schema to `target` (inside the caller's transaction); refuse a newer schema."""
    revision = current(connection)
    scripts = ScriptDirectory.from_config(_config())
    if revision is not None:
        try:
            scripts.get_revision(revision)
        except CommandError:
            raise SchemaVersionError(
                f"the database {shown_url} has schema version {revision}, newer than this "
                f"version of newsletter knows (up to {head()}): upgrade newsletter"
            ) from None
    if revision != target and not (target == "head" and revision == head()):
        command.upgrade(_config(connection), target)
