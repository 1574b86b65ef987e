"""Shared fixtures: a copy of the sample workspace, the CLI runner, no network, Chromium."""

from __future__ import annotations

import ipaddress
import os
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

REPO = Path(__file__).resolve().parent.parent
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Every test runs with non-loopback connections refused, and fails if it tried one,
    even when the code under test swallowed the error."""
    attempts: list[str] = []
    real_connect = socket.socket.connect

    def guarded(self: socket.socket, address: object) -> object:
        if self.family in (socket.AF_INET, socket.AF_INET6):
            host = address[0] if isinstance(address, tuple) else str(address)
            try:
                loopback = ipaddress.ip_address(host).is_loopback
            except ValueError:
                loopback = host == "localhost"
            if not loopback:
                attempts.append(repr(address))
                raise ConnectionRefusedError(f"test tried to reach the network: {address!r}")
        return real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", guarded)
    monkeypatch.setattr(socket, "getaddrinfo", _guarded_getaddrinfo(socket.getaddrinfo, attempts))
    yield attempts
    assert attempts == [], "the code under test tried to reach the network"


def _guarded_getaddrinfo(real, attempts: list[str]):  # type: ignore[no-untyped-def]
    def guarded(host, *args, **kwargs):  # type: ignore[no-untyped-def]
        if host not in (None, "localhost", "127.0.0.1", "::1") and not str(host).startswith("127."):
            attempts.append(str(host))
            raise socket.gaierror(f"test tried to resolve {host!r}")
        return real(host, *args, **kwargs)

    return guarded


def copy_sample(root: Path) -> Path:
    """The repository's sample publication (config, issues, template overrides) into `root`."""
    root.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / "newsletter.toml", root)
    shutil.copytree(REPO / "issues", root / "issues")
    shutil.copytree(REPO / "templates", root / "templates")
    return root


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    """A copy of the repository's sample publication."""
    return copy_sample(tmp_path / "ws")


@pytest.fixture(scope="session")
def sample_build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample publication built once for the session's read-only checks (browsers, the Nu
    HTML Checker): its build/ folder."""
    from newsletter.build.pipeline import build
    from newsletter.workspace import Workspace

    root = copy_sample(tmp_path_factory.mktemp("sample") / "ws")
    assert build(Workspace(root)).ok
    return root / "build"


def open_offline(browser, path: Path, width: int, **options):  # type: ignore[no-untyped-def]
    """A page of `path` at `width`, every request but file: ones refused: images point at the
    publication's server, which the tests never reach."""
    page = browser.new_page(viewport={"width": width, "height": 800}, **options)
    page.route(
        "**/*",
        lambda route: (
            route.abort() if not route.request.url.startswith("file:") else route.continue_()
        ),
    )
    page.goto(path.as_uri())
    return page


@pytest.fixture
def ws(workspace: Path):  # type: ignore[no-untyped-def]
    from newsletter.workspace import Workspace

    return Workspace(workspace)


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture(scope="session")
def chromium_path() -> str:
    """Debian's Chromium: skipped with a reason where missing, a failure when CI is set."""
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        reason = f"Chromium not found at {CHROMIUM} (apt-get install chromium, or set CHROMIUM)"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    return CHROMIUM


@pytest.fixture(scope="session")
def browser(chromium_path: str):  # type: ignore[no-untyped-def]
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=chromium_path,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        yield b
        b.close()


# -- databases ---------------------------------------------------------------------------

PG_URL = os.environ.get("NEWSLETTER_TEST_DATABASE_URL")


def _fresh_postgres(url: str) -> None:
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()


def _postgres_or_skip() -> str:
    if not PG_URL:
        reason = "PostgreSQL: set NEWSLETTER_TEST_DATABASE_URL (scripts/postgres starts a server)"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    _fresh_postgres(PG_URL)
    return PG_URL


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Every store test runs on SQLite, and on PostgreSQL when NEWSLETTER_TEST_DATABASE_URL
    names a server (CI starts one; locally: export NEWSLETTER_TEST_DATABASE_URL=$(scripts/postgres))."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'newsletter.db'}"
    return _postgres_or_skip()


@pytest.fixture
def pg_url() -> str:
    """PostgreSQL only: for what needs a server database (concurrent senders)."""
    return _postgres_or_skip()


@pytest.fixture
def store(db_url: str):  # type: ignore[no-untyped-def]
    from newsletter.store import open_store

    s = open_store(db_url)
    yield s
    s.close()


# -- sending ------------------------------------------------------------------------------


class SmtpRecorder:
    """An aiosmtpd handler that keeps every accepted message and can misbehave on demand."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], bytes]] = []
        self.rcpt_replies: dict[str, list[str]] = {}  # address → replies to give, in order
        self.data_delay = 0.0
        self.data_replies: list[str] = []
        self.connections = 0
        self.data_attempts = 0

    async def handle_EHLO(self, server, session, envelope, hostname, responses):  # type: ignore[no-untyped-def]
        self.connections += 1
        session.host_name = hostname
        return responses

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # type: ignore[no-untyped-def]
        replies = self.rcpt_replies.get(address)
        if replies:
            return replies.pop(0)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]
        import asyncio

        self.data_attempts += 1
        if self.data_delay:
            await asyncio.sleep(self.data_delay)
        if self.data_replies:
            return self.data_replies.pop(0)
        self.messages.append(
            (
                envelope.mail_from,
                list(envelope.rcpt_tos),
                envelope.original_content or envelope.content,
            )
        )
        return "250 Message accepted for delivery"

    def received(self) -> list[str]:
        return [to for _, tos, _ in self.messages for to in tos]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def smtp_server():  # type: ignore[no-untyped-def]
    """A real SMTP server (aiosmtpd) on loopback."""
    from aiosmtpd.controller import Controller

    recorder = SmtpRecorder()
    controller = Controller(recorder, hostname="127.0.0.1", port=free_port())
    controller.start()
    recorder.port = controller.port  # type: ignore[attr-defined]
    yield recorder
    controller.stop()


@pytest.fixture
def sending(workspace: Path, db_url: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The sample workspace with a database and a signing secret, ready to send."""
    monkeypatch.setenv("NEWSLETTER_DATABASE_URL", db_url)
    monkeypatch.setenv("NEWSLETTER_SECRET", "test-secret-" + "x" * 40)
    return workspace


def subscribe_readers(root: Path, count: int) -> list[str]:
    """`count` readers of the daily, imported through the CLI (the kill and --due tests)."""
    from newsletter.cli import cli

    addresses = [f"reader{i:03d}@example.com" for i in range(count)]
    path = root / "readers.csv"
    path.write_text("email\n" + "\n".join(addresses) + "\n")
    result = CliRunner().invoke(
        cli, ["-w", str(root), "subscribers", "import", str(path), "--newsletter", "daily"]
    )
    assert result.exit_code == 0, result.output
    return addresses


def use_smtp(workspace: Path, port: int, **settings: object) -> None:
    values = {
        "host": "127.0.0.1",
        "port": port,
        "security": "none",
        "connections": 2,
        "retry_delay": 0.01,
        "timeout": 5,
        **settings,
    }
    lines = "\n".join(f"{k} = {v!r}".replace("'", '"') for k, v in values.items())
    config = workspace / "newsletter.toml"
    config.write_text(config.read_text() + f"\n[smtp]\n{lines}\n")


SENDGRID_KEY = "SG.test-key-0123456789abcdefghijklmnopqrstuvwxyz"


@pytest.fixture
def fake_sendgrid(monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """A SendGrid-compatible API on loopback, with SENDGRID_API_KEY and _HOST pointing at it."""
    from tests.sendgrid_fake import FakeSendGrid

    fake = FakeSendGrid(SENDGRID_KEY)
    monkeypatch.setenv("SENDGRID_API_KEY", SENDGRID_KEY)
    monkeypatch.setenv("SENDGRID_API_HOST", fake.url)
    yield fake
    fake.close()


# -- the web service -------------------------------------------------------------------------

WEB_SECRET = "web-test-secret-" + "w" * 40


class Clock:
    """The service's clock, moved by tests (token expiry, webhook windows)."""

    def __init__(self) -> None:
        import time

        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture(scope="session")
def webhook_signer():  # type: ignore[no-untyped-def]
    from tests.webhook_signing import WebhookSigner

    return WebhookSigner()


@pytest.fixture
def service(
    workspace: Path, db_url: str, monkeypatch: pytest.MonkeyPatch, clock: Clock, webhook_signer
):  # type: ignore[no-untyped-def]
    """The app on a test client, with Jane subscribed to daily and weekly (id 1), the test
    secret, and the self-signed webhook key."""
    from starlette.testclient import TestClient

    from newsletter.audience.subscribers import add
    from newsletter.store import open_store
    from newsletter.web import create_app
    from newsletter.workspace import Workspace

    monkeypatch.setenv("NEWSLETTER_SECRET", WEB_SECRET)
    monkeypatch.setenv("SENDGRID_WEBHOOK_VERIFICATION_KEY", webhook_signer.public_key)
    store = open_store(db_url)
    add(store, "jane.doe@example.com", "daily", name="Jane")
    add(store, "jane.doe@example.com", "weekly")
    app = create_app(Workspace(workspace), store, clock=clock)
    with TestClient(app, follow_redirects=False) as client:
        client.store = store  # type: ignore[attr-defined]
        client.workspace = workspace  # type: ignore[attr-defined]
        yield client
    store.close()


class LiveServer:
    """An ASGI app under a real uvicorn on a loopback port, in a thread."""

    def __init__(self, app) -> None:  # type: ignore[no-untyped-def]
        import threading
        import time

        import uvicorn

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("the test server did not start")
            time.sleep(0.02)

    def close(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture
def live_server():  # type: ignore[no-untyped-def]
    """live_server(app) → a LiveServer, stopped after the test."""
    servers: list[LiveServer] = []

    def start(app) -> LiveServer:  # type: ignore[no-untyped-def]
        server = LiveServer(app)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()


# -- the Nu HTML Checker ------------------------------------------------------------------

VNU_JAR = os.environ.get("VNU_JAR", "/opt/vnu/node_modules/vnu-jar/build/dist/vnu.jar")


def nu_check(folder: Path) -> dict[str, list[str]]:
    """Run the Nu HTML Checker (vnu.jar, a JVM: once, on the whole folder) on every .html
    file under `folder`: file name (relative) → its errors, "line: message". Skipped with a
    reason where Java or vnu.jar is missing, a failure when CI is set."""
    import json
    import subprocess

    java = shutil.which("java")
    missing = []
    if java is None:
        missing.append("java (apt-get install default-jre-headless)")
    if not os.path.isfile(VNU_JAR):
        missing.append(f"{VNU_JAR} (npm install --prefix /opt/vnu vnu-jar, or set VNU_JAR)")
    if missing:
        reason = "Nu HTML Checker: missing " + " and ".join(missing)
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    assert java is not None
    files = sorted(folder.rglob("*.html"))
    done = subprocess.run(
        [
            java,
            "-Xss8m",
            "-jar",
            VNU_JAR,
            "--format",
            "json",
            "--exit-zero-always",
            *map(str, files),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    found: dict[str, list[str]] = {str(f.relative_to(folder)): [] for f in files}
    for message in json.loads(done.stderr)["messages"]:
        if message.get("type") == "error" or message.get("subType") == "fatal":
            url = message.get("url", "")
            name = str(Path(url.removeprefix("file:")).relative_to(folder)) if url else "?"
            found.setdefault(name, []).append(f"{message.get('lastLine')}: {message['message']}")
    return found
