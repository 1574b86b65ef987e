"""newsletter.toml → validated settings, with the line of every key for error messages; and
the environment variables, the only other settings (this is the one module that reads them)."""

from __future__ import annotations

import datetime as dt
import os
import re
import tomllib
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.utils import parseaddr
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import quote, unquote, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
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


def _bounce_address(value: str) -> str:
    local, _, domain = value.rpartition("@")
    if not local or not domain or "+" in local or not re.fullmatch(r"[A-Za-z0-9._-]+", local):
        raise ValueError(
            f"'{value}' is not a plain mailbox like 'bounces@news.example.com' (no name, no '+')"
        )
    if not re.fullmatch(r"[A-Za-z0-9.-]+\.[A-Za-z0-9-]+", domain):
        raise ValueError(f"'{value}' has no domain like 'news.example.com'")
    return value


Timezone = Annotated[str, AfterValidator(_timezone)]
Color = Annotated[str, AfterValidator(_color)]
EmailAddress = Annotated[str, AfterValidator(_address)]
BounceAddress = Annotated[str, AfterValidator(_bounce_address)]


class Section(BaseModel):
    # defer_build: a model is built when first validated, so a nested section is built once,
    # inside its parent, not also on its own when this module is imported (#16: 10-20 ms)
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, defer_build=True)


def _defaults(section: type[Section]) -> Any:
    """A section's default: its all-defaults instance, made when needed with
    `model_construct`, which is what `section()` gives (no section given a default this way
    has a model validator, and pydantic does not validate defaults) without building the
    section's own validator: `section()` as a class attribute built six of them, and looked
    up pydantic's plugins, when this module was imported (#16: 15-20 ms of every command)."""
    return Field(default_factory=section.model_construct)


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
    colors: Colors = _defaults(Colors)

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


TRACKING_PARAMS = (
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "utm_term",
    "utm_content",
    "utm_id",
    "fbclid",
    "gclid",
    "mc_cid",
    "mc_eid",
    "ocid",
    "cmpid",
)
Day = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
DAYS: tuple[Day, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_DAY_SETS = {"weekdays": DAYS[:5], "weekends": DAYS[5:], "daily": DAYS}


def _send_time(value: str) -> str:
    try:
        parsed = dt.time.fromisoformat(value)
    except ValueError:
        raise ValueError(f"'{value}' is not a time of day like '06:30'") from None
    if parsed.tzinfo is not None:
        raise ValueError("give the time without an offset: the timezone setting says where")
    return value


def _send_days(value: object) -> object:
    """`"weekdays"`, `"weekends"` or `"daily"` stand for their days; names in any case."""
    if isinstance(value, str):
        value = list(_DAY_SETS.get(value.lower(), (value,)))
    if isinstance(value, list):
        return [v.lower()[:3] if isinstance(v, str) else v for v in value]
    return value


class FeedSettings(Section):
    """Where `newsletter draft` reads the stories of an issue (#17)."""

    url: str | None = None  # the feed's URL (or a file); --from overrides it
    paywalled_category: str | None = None  # an item with this category is paywalled
    paywalled_field: str | None = None  # or one with this element/key set ("ledger:premium")
    strip_params: list[str] = Field(default_factory=lambda: list(TRACKING_PARAMS))
    order: Literal["newest", "feed"] = "newest"  # newest first, or the feed's own order
    limit: int = Field(default=12, ge=1, le=200)  # stories at most (--limit overrides it)
    timeout: float = Field(default=10, gt=0)  # seconds to fetch the feed
    dedupe_days: int = Field(default=30, ge=0)  # earlier issues searched for sent stories (0: all)


class NewsletterConfig(Section):
    title: Text
    cadence: Literal["daily", "weekly"]
    sender: EmailAddress = Field(alias="from")
    reply_to: EmailAddress | None = None
    template: str = "daily"
    description: Text | None = None  # what the newsletter is: the feed's subtitle, the web meta
    reason: Text | None = None  # why the reader gets it: the emails' footer sentence
    utm: Utm = _defaults(Utm)
    collect: Collect | None = None
    send_window_days: int = Field(default=1, ge=1, le=365)  # 1: until the end of the date
    feed: FeedSettings | None = None  # the site's feed, for `newsletter draft`
    # scheduled editions (#17): `send --due` sends a ready issue at its date's send_time
    send_time: Annotated[str, AfterValidator(_send_time)] | None = None
    send_days: Annotated[list[Day], BeforeValidator(_send_days)] = Field(
        default_factory=lambda: list(DAYS)
    )
    timezone: Timezone | None = None  # the newsletter's own; default the publication's
    send_window_hours: float = Field(default=2, gt=0, le=72)  # after send_time; then missed

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
    # the envelope sender's mailbox: each message goes out from bounces+<token>@… (VERP, #14)
    bounce_address: BounceAddress | None = None


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
    # `send --due` hands an issue over this many hours before its time, with SendGrid's
    # send_at (0: at its time); SendGrid schedules at most 72 hours ahead (#17)
    schedule_ahead: float = Field(default=0, ge=0, le=72)


class ServeSettings(Section):
    """The subscriber-facing service (`newsletter serve`)."""

    backend: Literal["outbox", "smtp", "sendgrid"] = "outbox"  # for confirmation emails
    confirm_days: int = Field(default=7, ge=1, le=60)  # a confirmation link's life
    signups_per_address: int = Field(default=3, ge=1)  # confirmation emails per address a day
    signups_per_client: int = Field(default=20, ge=1)  # sign-ups per client address an hour
    # sites that may show /subscribe in an iframe (default: the subscribe_url's site)
    embed_origins: list[AbsoluteUrl] | None = None


_DNS_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


def _domain(value: str) -> str:
    labels = value.lower().rstrip(".").split(".")
    if len(labels) < 2 or not all(_DNS_LABEL.match(label) for label in labels):
        raise ValueError(f"'{value}' is not a domain name like 'news.example.com'")
    return ".".join(labels)


def _selector(value: str) -> str:
    if not all(_DNS_LABEL.match(label) for label in value.lower().split(".")):
        raise ValueError(f"'{value}' is not a DKIM selector like 'news2026' (letters, digits, '-')")
    return value.lower()


class DkimSettings(Section):
    """DKIM signing for the SMTP and outbox backends. The private key is never here: it is
    the file named by NEWSLETTER_DKIM_KEY_FILE (`newsletter dkim keygen` writes one)."""

    domain: Annotated[str, AfterValidator(_domain)]  # d=: the From domain, or a parent of it
    selector: Annotated[str, AfterValidator(_selector)]  # s=: the key's name under _domainkey


class BouncesSettings(Section):
    """`newsletter bounces process` (#14): when transient failures suppress an address, and
    how an imap:// source is reached (its password only from NEWSLETTER_IMAP_PASSWORD)."""

    soft_limit: int = Field(default=5, ge=1, le=1000)  # transient failures that suppress…
    soft_days: int = Field(default=14, ge=1, le=365)  # …within this many days
    imap_security: Literal["tls", "starttls", "none"] = "tls"


class Config(Section):
    publication: Publication
    newsletters: dict[str, NewsletterConfig]
    database: str = "sqlite:///newsletter.db"
    smtp: SmtpSettings = _defaults(SmtpSettings)
    sendgrid: SendGridSettings = _defaults(SendGridSettings)
    serve: ServeSettings = _defaults(ServeSettings)
    dkim: DkimSettings | None = None
    bounces: BouncesSettings = _defaults(BouncesSettings)

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
IMAP_PASSWORD_ENV = "NEWSLETTER_IMAP_PASSWORD"
SECRET_ENVS = (
    SECRET_ENV,
    SMTP_PASSWORD_ENV,
    SENDGRID_API_KEY_ENV,
    IMAP_PASSWORD_ENV,
)  # masked wherever shown
SOURCE_DATE_EPOCH_ENV = "SOURCE_DATE_EPOCH"
DKIM_KEY_FILE_ENV = "NEWSLETTER_DKIM_KEY_FILE"
DKIM_KEY_MAX = 64 * 1024  # a PEM RSA key of 8192 bits is under 7 KB
NOW_ENV = "NEWSLETTER_NOW"  # test-only: the clock of `send --due` and `schedule`


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

    def imap_password(self) -> SecretStr | None:
        """The bounce mailbox's password, for `bounces process imap://…`."""
        return self._secret(IMAP_PASSWORD_ENV)

    def sendgrid_api_key(self) -> SecretStr | None:
        return self._secret(SENDGRID_API_KEY_ENV)

    def sendgrid_api_host(self) -> str | None:
        """Another API host (a test server, SendGrid's EU host); wins over [sendgrid] host."""
        return self._plain(SENDGRID_API_HOST_ENV)

    def sendgrid_webhook_verification_key(self) -> str | None:
        """A public key, so not a secret; wins over [sendgrid] webhook_verification_key."""
        return self._plain(SENDGRID_WEBHOOK_KEY_ENV)

    def dkim_key_file(self) -> str | None:
        """The name of the DKIM private key's file (the key itself: `dkim_key`)."""
        return self._plain(DKIM_KEY_FILE_ENV)

    def dkim_key(self) -> SecretStr | None:
        """The DKIM private key (PEM) from the file NEWSLETTER_DKIM_KEY_FILE names; None
        when the variable is unset. A file that is missing, unreadable, too large or holds
        no PEM private key is a ConfigError naming the variable and the file (never the key);
        send/dkim.py checks that it is an RSA key."""
        name = self.dkim_key_file()
        if name is None:
            return None
        path = Path(name).expanduser()
        where = f"{DKIM_KEY_FILE_ENV}={name}"
        try:
            with path.open("rb") as file:
                raw = file.read(DKIM_KEY_MAX + 1)
        except FileNotFoundError:
            raise ConfigError(
                f"{where}: no such file (make one with 'newsletter dkim keygen')"
            ) from None
        except OSError as exc:
            raise ConfigError(f"{where}: cannot read the key file: {exc.strerror}") from None
        text = raw.decode("ascii", "replace")
        if len(raw) > DKIM_KEY_MAX or "-----BEGIN" not in text or "PRIVATE KEY-----" not in text:
            raise ConfigError(f"{where}: not a PEM RSA private key")
        return SecretStr(text)

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

    def now(self) -> dt.datetime | None:
        """FOR TESTS ONLY: NEWSLETTER_NOW (an ISO date-time with offset) stands in for the
        clock of `send --due` and `schedule`, so that a test moves time instead of sleeping
        (its subprocesses included). Not for production: a wrong value sends at the wrong
        time. Unset or empty: the real clock; unreadable: a ConfigError."""
        raw = self._plain(NOW_ENV)
        if not raw:
            return None
        try:
            value = dt.datetime.fromisoformat(raw)
        except ValueError:
            raise ConfigError(f"{NOW_ENV} is not a date-time like 2025-05-14T06:30+08:00") from None
        return value if value.tzinfo else value.replace(tzinfo=dt.UTC)

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
