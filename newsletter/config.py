"""newsletter.toml → validated settings, with the line of every key for error messages; and
the environment variables, the only other settings (this is the one module that reads them)."""

from __future__ import annotations

import os
import re
import tomllib
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.utils import parseaddr
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import quote, unquote, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    model_validator,
)

from newsletter.errors import ConfigError, ConfigProblems
from newsletter.model import AbsoluteUrl, Text
from newsletter.problems import LineMap, Loc, from_validation_error

CONFIG_FILE = "newsletter.toml"
KEY_RE = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
COLOR_RE = re.compile(r"^#[0-9a-fA-F]{6}$")


def _timezone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        hint = "use an IANA name like 'Europe/London'"
        raise ValueError(f"unknown timezone '{value}' ({hint})") from None
    return value


def _color(value: str) -> str:
    if not COLOR_RE.match(value):
        raise ValueError(f"'{value}' is not a colour like '#1a4d8f'")
    return value


def _address(value: str) -> str:
    if any(c in value for c in "\r\n\0"):
        raise ValueError("must be one line")
    _, addr = parseaddr(value)
    if "@" not in addr or addr.startswith("@") or addr.endswith("@"):
        raise ValueError(f"'{value}' is not an email address like 'Name <brief@example.com>'")
    return value


Timezone = Annotated[str, AfterValidator(_timezone)]
Color = Annotated[str, AfterValidator(_color)]
EmailAddress = Annotated[str, AfterValidator(_address)]


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Colors(Section):
    brand: Color = "#12355b"
    accent: Color = "#b3261e"
    text: Color = "#1f2328"
    muted: Color = "#57606a"
    background: Color = "#f4f1ea"
    card: Color = "#ffffff"


class Publication(Section):
    name: Text
    base_url: AbsoluteUrl
    subscribe_url: AbsoluteUrl | None = None
    address: Text
    timezone: Timezone = "UTC"
    language: str = "en"
    logo: AbsoluteUrl | None = None
    logo_width: int = Field(default=180, ge=16, le=600)
    unsubscribe_mailto: str | None = None  # the List-Unsubscribe mailto address
    colors: Colors = Colors()

    @property
    def root_url(self) -> str:
        return self.base_url.rstrip("/")

    @property
    def subscribe_link(self) -> str:
        return self.subscribe_url or f"{self.root_url}/subscribe"


class Utm(Section):
    enabled: bool = True
    source: str = "newsletter"
    medium: str = "email"  # the emails' links
    web: str = "web"  # the web version's links (utm_medium); "": no UTM parameters there
    feed: str = "feed"  # the Atom feeds' links (utm_medium); "": no UTM parameters there
    campaign: str = "{newsletter}-{date}"


class Collect(Section):
    source: str = Field(alias="from")
    must_read: bool = False
    tags: list[str] = Field(default_factory=list)
    days: int = Field(default=7, ge=1, le=366)

    @model_validator(mode="after")
    def _has_criterion(self) -> Collect:
        if not self.must_read and not self.tags:
            raise ValueError("collect needs must_read = true or a list of tags")
        return self


class NewsletterConfig(Section):
    title: Text
    cadence: Literal["daily", "weekly"]
    sender: EmailAddress = Field(alias="from")
    reply_to: EmailAddress | None = None
    template: str = "daily"
    description: Text | None = None  # what the newsletter is: the feed's subtitle, the web meta
    reason: Text | None = None  # why the reader gets it: the emails' footer sentence
    utm: Utm = Utm()
    collect: Collect | None = None
    send_window_days: int = Field(default=1, ge=1, le=365)  # 1: until the end of the date

    @property
    def why(self) -> str:
        return self.reason or f"You are receiving this because you subscribed to {self.title}."


class SmtpSettings(Section):
    """The password is never here: it comes from NEWSLETTER_SMTP_PASSWORD."""

    host: str = "localhost"
    port: int = Field(default=587, ge=1, le=65535)
    security: Literal["starttls", "tls", "none"] = "starttls"
    username: str | None = None
    connections: int = Field(default=4, ge=1, le=64)
    rate: float = Field(default=0, ge=0)  # messages per second across connections; 0: no limit
    timeout: float = Field(default=30, gt=0)
    retries: int = Field(default=3, ge=0, le=10)  # for 4xx replies and dropped connections
    retry_delay: float = Field(default=2.0, ge=0)  # seconds before the first retry, then doubled


class SendGridSettings(Section):
    """The API key is never here: it comes from SENDGRID_API_KEY."""

    host: AbsoluteUrl = "https://api.sendgrid.com"  # SENDGRID_API_HOST overrides it
    batch_size: int = Field(default=1000, ge=1, le=1000)  # personalizations per request
    parallel: int = Field(default=4, ge=1, le=32)  # requests in flight
    timeout: float = Field(default=30, gt=0)
    retries: int = Field(default=5, ge=0, le=10)  # for 429 and 5xx answers
    retry_delay: float = Field(default=1.0, ge=0)
    # the Event Webhook's public key as SendGrid shows it (SENDGRID_WEBHOOK_VERIFICATION_KEY
    # overrides it); without one, `serve` refuses every webhook request
    webhook_verification_key: str | None = None
    webhook_max_age: int = Field(default=25 * 3600, ge=60)  # seconds; SendGrid retries for 24 h


class ServeSettings(Section):
    """The subscriber-facing service (`newsletter serve`)."""

    backend: Literal["outbox", "smtp", "sendgrid"] = "outbox"  # for confirmation emails
    confirm_days: int = Field(default=7, ge=1, le=60)  # a confirmation link's life
    signups_per_address: int = Field(default=3, ge=1)  # confirmation emails per address a day
    signups_per_client: int = Field(default=20, ge=1)  # sign-ups per client address an hour
    # sites that may show /subscribe in an iframe (default: the subscribe_url's site)
    embed_origins: list[AbsoluteUrl] | None = None


class Config(Section):
    publication: Publication
    newsletters: dict[str, NewsletterConfig]
    database: str = "sqlite:///newsletter.db"
    smtp: SmtpSettings = SmtpSettings()
    sendgrid: SendGridSettings = SendGridSettings()
    serve: ServeSettings = ServeSettings()

    @model_validator(mode="after")
    def _consistent(self) -> Config:
        for key, nl in self.newsletters.items():
            if not KEY_RE.match(key):
                raise ValueError(
                    f"newsletter key '{key}' must be lowercase letters, digits, '-' or '_'"
                )
            if nl.collect and nl.collect.source not in self.newsletters:
                raise ValueError(
                    f"newsletters.{key}.collect.from: no newsletter '{nl.collect.source}'"
                )
            if nl.collect and self.newsletters[nl.collect.source].collect:
                raise ValueError(
                    f"newsletters.{key}.collect.from: '{nl.collect.source}' collects itself"
                )
        return self

    def check_newsletter(self, key: str | None) -> None:
        """ConfigError unless `key` (when given) names a configured newsletter: the one
        wording for the CLI, the web service and the library."""
        if key is not None and key not in self.newsletters:
            known = ", ".join(sorted(self.newsletters))
            raise ConfigError(f"no newsletter '{key}' in newsletter.toml (configured: {known})")


_TABLE = re.compile(r"^\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
_KEY = re.compile(
    r"""^\s*((?:[A-Za-z0-9_-]+|"[^"]*")(?:\s*\.\s*(?:[A-Za-z0-9_-]+|"[^"]*"))*)\s*="""
)


def _split_dotted(text: str) -> tuple[str, ...]:
    return tuple(p.strip().strip('"') for p in text.split("."))


def toml_lines(text: str) -> LineMap:
    """A map from key paths to line numbers, good enough for error messages."""
    lines: dict[Loc, int] = {}
    table: tuple[str, ...] = ()
    for number, raw in enumerate(text.splitlines(), start=1):
        if m := _TABLE.match(raw):
            table = _split_dotted(m.group(1))
            lines.setdefault(table, number)
        elif m := _KEY.match(raw):
            lines.setdefault(table + _split_dotted(m.group(1)), number)
    return LineMap(lines)


def load_config(path: Path) -> Config:
    """Read and validate newsletter.toml; ConfigError carries every problem found."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        hint = "run 'newsletter init DIR' to make one"
        raise ConfigError(f"no newsletter.toml here ({hint})", path) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read: {exc}", path) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        found = re.search(r"\(at line (\d+)", str(exc))
        line = int(found.group(1)) if found else None
        message = str(exc).split(" (at line")[0]
        raise ConfigError(f"TOML syntax error: {message}", path, line) from None
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        problems = from_validation_error(exc, Config, path, toml_lines(text))
        raise ConfigProblems(problems) from None


DATABASE_URL_ENV = "NEWSLETTER_DATABASE_URL"
SECRET_ENV = "NEWSLETTER_SECRET"
SMTP_PASSWORD_ENV = "NEWSLETTER_SMTP_PASSWORD"
SENDGRID_API_KEY_ENV = "SENDGRID_API_KEY"
SENDGRID_API_HOST_ENV = "SENDGRID_API_HOST"
SENDGRID_WEBHOOK_KEY_ENV = "SENDGRID_WEBHOOK_VERIFICATION_KEY"
ADMIN_KEY_ENV = "NEWSLETTER_ADMIN_KEY"  # serve's /admin/report until API keys land (#13)
SECRET_ENVS = (SECRET_ENV, SMTP_PASSWORD_ENV, SENDGRID_API_KEY_ENV, ADMIN_KEY_ENV)  # masked
SOURCE_DATE_EPOCH_ENV = "SOURCE_DATE_EPOCH"


@dataclass(frozen=True)
class Environment:
    """Every environment variable newsletter reads, one accessor each (None: not set).

    Each is read when asked for, not once at start: a command reads only what it uses, so a
    bad SMTP password never stops a build. Secrets come back as `SecretStr` (masked in any
    repr or log), stripped of surrounding whitespace: a key mounted from a file ends in a
    newline. A secret that is empty, or holds a control character inside, is a ConfigError
    that names the variable and never shows the value.
    """

    environ: Mapping[str, str] = field(default_factory=lambda: os.environ)

    def database_url(self) -> str | None:
        """Keeps a database password out of newsletter.toml; wins over its `database`."""
        return self._plain(DATABASE_URL_ENV)

    def secret(self) -> SecretStr | None:
        """The key that signs subscribers' links; wins over the workspace's .secrets file."""
        return self._secret(SECRET_ENV)

    def smtp_password(self) -> SecretStr | None:
        return self._secret(SMTP_PASSWORD_ENV)

    def sendgrid_api_key(self) -> SecretStr | None:
        return self._secret(SENDGRID_API_KEY_ENV)

    def sendgrid_api_host(self) -> str | None:
        """Another API host (a test server, SendGrid's EU host); wins over [sendgrid] host."""
        return self._plain(SENDGRID_API_HOST_ENV)

    def sendgrid_webhook_verification_key(self) -> str | None:
        """A public key, so not a secret; wins over [sendgrid] webhook_verification_key."""
        return self._plain(SENDGRID_WEBHOOK_KEY_ENV)

    def admin_key(self) -> SecretStr | None:
        """The key `serve`'s /admin/report asks for (none set: nobody gets the report)."""
        return self._secret(ADMIN_KEY_ENV)

    def mask(self, text: str) -> str:
        """`text` with every configured secret written as its variable's name: the one rule
        for any text a person may see (an error, a failure's reason), whoever wrote it (a
        provider echoing the key, an HTTP client quoting a header, a database driver)."""
        values: dict[str, str] = {}
        for name in SECRET_ENVS:
            value = self.environ.get(name, "").strip()
            if value:
                values[value] = name
                values[quote(value, safe="")] = name
        password = urlsplit(self.environ.get(DATABASE_URL_ENV, "").strip()).password
        if password:
            values[password] = DATABASE_URL_ENV
            values[unquote(password)] = DATABASE_URL_ENV
        for value in sorted(values, key=len, reverse=True):  # a longer one may hold a shorter
            text = text.replace(value, f"<{values[value]}>")
        return text

    def source_date_epoch(self) -> int | None:
        """The reproducible-builds timestamp: the date of an empty feed (else the config's
        modification time). Not a number: ignored."""
        raw = self._plain(SOURCE_DATE_EPOCH_ENV)
        return int(raw) if raw and raw.isdigit() else None

    def _plain(self, name: str) -> str | None:
        return self.environ.get(name, "").strip() or None

    def _secret(self, name: str) -> SecretStr | None:
        raw = self.environ.get(name)
        if raw is None:
            return None
        value = raw.strip()
        if not value:
            raise ConfigError(f"{name} is set but empty: give it a value or unset it")
        if any(unicodedata.category(c) == "Cc" for c in value):
            raise ConfigError(
                f"{name} holds a control character (a line break, a tab…): set it again "
                "from the value as the provider shows it"
            )
        return SecretStr(value)
