"""The service's rules under abuse and faults (#11), seen as a client or an operator sees
them: a real `newsletter serve` in a subprocess (its memory, its exit status, its log) or a
real uvicorn on loopback where the behaviour depends on the transport."""

from __future__ import annotations

import os
import select
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2 as httpx
import pytest
import uvicorn
from starlette.testclient import TestClient

from newsletter.audience.subscribers import add, forget
from newsletter.web import create_app
from newsletter.web.limits import HeaderTimeoutProtocol
from newsletter.workspace import Workspace
from tests.conftest import WEB_SECRET, Clock, free_port
from tests.web.test_subscribe import csrf, sign_up
from tests.webhook_signing import WebhookSigner, body_of

MB = 1024 * 1024
TOKEN = "MTIzNDU2.SECRET-LINK-TOKEN-abcdef"  # what a leaked link token looks like in a log


class Served:
    """`newsletter serve` as an operator runs it, on a loopback port."""

    def __init__(self, workspace: Path, env: dict[str, str]):
        self.workspace = workspace
        self.env = env
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            self.command(),
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 20
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"serve exited: {self.proc.communicate()}")
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("serve did not start")
            time.sleep(0.05)

    def command(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "newsletter",
            "-w",
            str(self.workspace),
            "serve",
            "--port",
            str(self.port),
        ]

    def rss(self) -> int:
        """The server's resident memory, in bytes."""
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise AssertionError("no VmRSS")

    def stop(self) -> str:
        """Stop it; everything it logged (stdout: the access log, stderr: the rest)."""
        if self.proc.poll() is None:
            self.proc.terminate()
        out, err = self.proc.communicate(timeout=15)
        return out + err


@pytest.fixture
def served(
    workspace: Path, tmp_path: Path, webhook_signer: WebhookSigner
) -> Iterator[tuple[Served, Path]]:
    """A real `serve` on a SQLite file made by `newsletter db init`, and that file."""
    database = tmp_path / "newsletter.db"
    env = {
        **os.environ,
        "NEWSLETTER_SECRET": WEB_SECRET,
        "NEWSLETTER_DATABASE_URL": f"sqlite:///{database}",
        "SENDGRID_WEBHOOK_VERIFICATION_KEY": webhook_signer.public_key,
    }
    made = subprocess.run(
        [sys.executable, "-m", "newsletter", "-w", str(workspace), "db", "init"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert made.returncode == 0 and database.exists(), made.stderr
    server = Served(workspace, env)
    yield server, database
    server.stop()


def chunked_upload(
    port: int, path: str, total: int, headers: str = "", kind: str = "application/json"
) -> tuple[bytes, int]:
    """POST `total` bytes in 1 MB chunks (Transfer-Encoding: chunked, so no Content-Length
    to check), generated as it goes; stop as soon as the server answers or closes. The
    answer's bytes and how many body bytes were sent."""
    chunk = b"x" * MB
    frame = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
    sent = 0
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n"
            f"Content-Type: {kind}\r\n{headers}\r\n".encode()
        )
        try:
            while sent < total:
                if select.select([sock], [], [], 0)[0]:
                    break  # the server has answered: it is not reading any more
                sock.sendall(frame)
                sent += len(chunk)
            else:
                sock.sendall(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass
        answer = b""
        try:
            while data := sock.recv(65536):
                answer += data
                if b"\r\n\r\n" in answer:
                    break
        except (ConnectionResetError, TimeoutError):
            pass
    return answer, sent


# -- 5. bodies: bounded whatever the transfer encoding ---------------------------------------


def test_a_chunked_body_over_the_limit_is_413_and_never_read_whole(
    served: tuple[Served, Path],
) -> None:
    server, _ = served
    before = server.rss()
    signed = "X-Twilio-Email-Event-Webhook-Signature: AAAA\r\n"
    signed += f"X-Twilio-Email-Event-Webhook-Timestamp: {int(time.time())}\r\n"
    answer, sent = chunked_upload(server.port, "/webhooks/sendgrid", 200 * MB, signed)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert sent < 100 * MB  # answered long before the 200 MB were sent
    assert server.rss() - before < 50 * MB
    # a form's limit is far smaller, and holds for chunked bodies too
    form = "application/x-www-form-urlencoded"
    answer, sent = chunked_upload(server.port, "/subscribe", 50 * MB, kind=form)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert sent < 40 * MB
    assert httpx.get(server.url + "/healthz").status_code == 200


def test_a_form_over_its_limit_is_413(service: TestClient) -> None:
    page = service.get("/subscribe").text
    big = {"csrf": csrf(page), "email": "a@example.net", "newsletter": "daily", "x": "y" * 70_000}
    assert service.post("/subscribe", data=big).status_code == 413
    token = service.app.state.signer.make("preferences", 1)  # type: ignore[attr-defined]
    page = service.get(f"/preferences/{token}").text
    big = {"csrf": csrf(page), "newsletter": "daily", "x": "y" * 70_000}
    assert service.post(f"/preferences/{token}", data=big).status_code == 413


def raw_post(port: int, path: str, headers: bytes, body: bytes) -> bytes:
    """A request with exactly these header bytes (an HTTP client would re-encode them)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {len(body)}\r\n".encode()
            + headers
            + b"\r\n"
            + body
        )
        return sock.recv(65536)


def test_a_malformed_timestamp_of_any_bytes_is_403(live, webhook_signer: WebhookSigner) -> None:  # type: ignore[no-untyped-def]
    server = live()
    body = body_of([{"event": "open", "sg_event_id": "e1", "timestamp": 1}])
    signature = f"X-Twilio-Email-Event-Webhook-Signature: {webhook_signer.sign(body, 1)}\r\n"
    # latin-1 superscripts pass str.isdigit() but not int(); then other junk
    for value in (b"\xb2\xb2", b"1\xb9", b"\xb3", b"1e9", b"-1", b"+17", b"\xff" * 40, b"1" * 40):
        header = signature.encode() + b"X-Twilio-Email-Event-Webhook-Timestamp: " + value + b"\r\n"
        answer = raw_post(server.port, "/webhooks/sendgrid", header, body)
        assert answer.startswith(b"HTTP/1.1 403"), (value, answer[:100])


@pytest.fixture
def live(
    workspace: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, webhook_signer, live_server
):  # type: ignore[no-untyped-def]
    """The app on a real uvicorn (in a thread), on SQLite; live(**create_app options)."""
    from newsletter.store import open_store

    monkeypatch.setenv("NEWSLETTER_SECRET", WEB_SECRET)
    monkeypatch.setenv("SENDGRID_WEBHOOK_VERIFICATION_KEY", webhook_signer.public_key)
    store = open_store(f"sqlite:///{tmp_path / 'live.db'}")

    def start(**options: object):  # type: ignore[no-untyped-def]
        return live_server(create_app(Workspace(workspace), store, **options))

    yield start
    store.close()


def test_a_large_signed_batch_does_not_stall_other_requests(
    live, webhook_signer: WebhookSigner, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    from newsletter.send.backends import sendgrid_webhook

    real = sendgrid_webhook.parse

    def slow_parse(*args, **kwargs):  # type: ignore[no-untyped-def]
        time.sleep(1.5)  # what parsing a huge batch costs, on whichever thread runs it
        return real(*args, **kwargs)

    monkeypatch.setattr(sendgrid_webhook, "parse", slow_parse)
    server = live()
    body = body_of([{"event": "open", "sg_event_id": "e1", "timestamp": 1747200000}])
    headers = webhook_signer.headers(body, int(time.time()))
    answers: list[int] = []
    batch = threading.Thread(
        target=lambda: answers.append(
            httpx.post(server.url + "/webhooks/sendgrid", content=body, headers=headers).status_code
        )
    )
    batch.start()
    time.sleep(0.3)
    started = time.monotonic()
    assert httpx.get(server.url + "/healthz", timeout=5).status_code == 200
    waited = time.monotonic() - started
    batch.join(10)
    assert answers == [200]
    assert waited < 0.8, f"/healthz waited {waited:.2f} s behind the batch"


# -- 9. the database deleted under a running service -----------------------------------------


def test_a_deleted_database_is_a_503_and_serve_refuses_to_start_without_one(
    served: tuple[Served, Path], webhook_signer: WebhookSigner
) -> None:
    server, database = served
    body = body_of([{"event": "delivered", "sg_event_id": "e1", "timestamp": 1747200000}])
    url = server.url + "/webhooks/sendgrid"
    assert (
        httpx.post(
            url, content=body, headers=webhook_signer.headers(body, int(time.time()))
        ).status_code
        == 200
    )
    for path in database.parent.glob("newsletter.db*"):
        path.unlink()
    body = body_of([{"event": "delivered", "sg_event_id": "e2", "timestamp": 1747200001}])
    answer = httpx.post(url, content=body, headers=webhook_signer.headers(body, int(time.time())))
    assert answer.status_code == 503  # not acknowledged: SendGrid delivers it again
    assert httpx.get(server.url + "/healthz").status_code == 503
    log = server.stop()
    assert f"the database file {database} is gone" in log
    # restarted on the missing file: one line, a non-zero exit, and no empty database made
    again = subprocess.run(
        server.command(), env=server.env, capture_output=True, text=True, timeout=30
    )
    assert again.returncode != 0
    assert again.stderr.strip().splitlines() == [
        f"Error: no database at {database}: `newsletter db init` creates an empty one "
        "(`newsletter subscribers import …` creates it too); serve never does"
    ]
    assert not database.exists()


def test_serve_refuses_a_database_that_holds_no_schema_of_ours(
    workspace: Path, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An empty database (a touched SQLite file, a fresh PostgreSQL database, a URL that names
    the wrong one) is not made into an empty list: serve says which command creates it, and
    leaves the database as it found it."""
    from sqlalchemy import create_engine, inspect

    from newsletter.errors import NoDatabase
    from newsletter.store import shown, sqlite_file

    if (file := sqlite_file(db_url)) is not None:
        file.touch()
    monkeypatch.setenv("NEWSLETTER_SECRET", WEB_SECRET)
    monkeypatch.setenv("NEWSLETTER_DATABASE_URL", db_url)
    with pytest.raises(NoDatabase) as refused:
        create_app(Workspace(workspace))
    assert str(refused.value) == (
        f"NEWSLETTER_DATABASE_URL: the database {shown(db_url)} holds no newsletter data yet: "
        "`newsletter db init` creates it; serve never does"
    )
    engine = create_engine(db_url)
    assert inspect(engine).get_table_names() == []
    engine.dispose()


def test_a_replaced_database_is_a_503(
    workspace: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clock: Clock
) -> None:
    from newsletter.store import open_store

    monkeypatch.setenv("NEWSLETTER_SECRET", WEB_SECRET)
    database = tmp_path / "newsletter.db"
    store = open_store(f"sqlite:///{database}")
    client = TestClient(create_app(Workspace(workspace), store, clock=clock))
    assert client.get("/subscribe").status_code == 200
    copy = tmp_path / "restored.db"
    copy.write_bytes(database.read_bytes())
    copy.replace(database)  # a backup restored over it: the service still has the old one open
    assert client.get("/subscribe").status_code == 503
    store.close()


def test_a_database_deleted_while_a_batch_is_stored_is_not_acknowledged(
    workspace: Path,
    tmp_path: Path,
    webhook_signer: WebhookSigner,
    clock: Clock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from newsletter.audience import delivery
    from newsletter.store import open_store

    monkeypatch.setenv("NEWSLETTER_SECRET", WEB_SECRET)
    monkeypatch.setenv("SENDGRID_WEBHOOK_VERIFICATION_KEY", webhook_signer.public_key)
    database = tmp_path / "newsletter.db"
    store = open_store(f"sqlite:///{database}")
    real = delivery.record

    def record_then_lose_the_file(*args, **kwargs):  # type: ignore[no-untyped-def]
        result = real(*args, **kwargs)
        database.unlink()  # between the commit and the answer
        return result

    monkeypatch.setattr(delivery, "record", record_then_lose_the_file)
    client = TestClient(create_app(Workspace(workspace), store, clock=clock))
    body = body_of([{"event": "delivered", "sg_event_id": "e1", "timestamp": 1747200000}])
    answer = client.post(
        "/webhooks/sendgrid", content=body, headers=webhook_signer.headers(body, int(clock()))
    )
    assert answer.status_code == 503
    store.close()


# -- 10. logs, disconnects, timeouts ---------------------------------------------------------


def test_no_log_line_shows_a_link_token_and_a_disconnect_is_one_line(
    served: tuple[Served, Path],
) -> None:
    server, database = served
    with socket.create_connection(("127.0.0.1", server.port)) as sock:  # gone mid-form
        sock.sendall(
            b"POST /subscribe HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1000\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\n\r\nemail=a%40b"
        )
        time.sleep(0.3)
    time.sleep(0.5)
    for path in database.parent.glob("newsletter.db*"):
        path.unlink()
    assert httpx.get(f"{server.url}/preferences/{TOKEN}").status_code == 503
    assert httpx.post(f"{server.url}/unsubscribe/{TOKEN}").status_code == 503
    log = server.stop()
    assert TOKEN not in log and "SECRET-LINK-TOKEN" not in log, log
    assert "GET /preferences/[token]: the database file" in log
    assert "Traceback" not in log, log
    disconnects = [line for line in log.splitlines() if "disconnected" in line]
    assert disconnects == [
        "POST /subscribe: the client disconnected before its request was complete"
    ], log


def test_a_store_error_log_line_redacts_the_token(
    service: TestClient, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    from newsletter.errors import StoreError
    from newsletter.web import unsubscribe

    def locked(*_args: object, **_kwargs: object) -> None:
        raise StoreError(f"database is locked while opening /preferences/{TOKEN}")

    monkeypatch.setattr(unsubscribe, "unsubscribe_id", locked)
    token = service.app.state.signer.make("unsubscribe", 1, "daily")  # type: ignore[attr-defined]
    with caplog.at_level("ERROR", logger="newsletter.web"):
        assert service.post(f"/unsubscribe/{token}").status_code == 503
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "POST /unsubscribe/[token]" in text and "/preferences/[token]" in text
    assert token not in text and TOKEN not in text


def test_a_body_that_does_not_arrive_in_time_is_408(live) -> None:  # type: ignore[no-untyped-def]
    server = live(body_timeout=0.5)
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(
            b"POST /subscribe HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\n\r\nemail="
        )
        started = time.monotonic()
        answer = sock.recv(65536)
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert time.monotonic() - started < 3


def test_idle_and_slow_connections_are_closed(
    workspace: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from newsletter.store import open_store

    class Quick(HeaderTimeoutProtocol):
        header_timeout = 0.5

    monkeypatch.setenv("NEWSLETTER_SECRET", WEB_SECRET)
    store = open_store(f"sqlite:///{tmp_path / 'idle.db'}")
    port = free_port()
    config = uvicorn.Config(
        create_app(Workspace(workspace), store),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        http=Quick,
        timeout_keep_alive=1,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    try:

        def closed_after(first: bytes, trickle: bytes = b"") -> float:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
                started = time.monotonic()
                sock.sendall(first)
                sock.settimeout(0.2)
                while time.monotonic() - started < 4:
                    try:
                        if sock.recv(65536) == b"":
                            return time.monotonic() - started
                    except TimeoutError:
                        if trickle:
                            sock.sendall(trickle)  # a byte at a time, never the end
                    except ConnectionResetError:
                        return time.monotonic() - started
            return float("inf")

        assert closed_after(b"") < 2  # connected, never a byte
        assert closed_after(b"GET /healthz HTTP/1.1\r\nHost: x\r\n", b"X") < 2  # slowloris
        # a finished request's connection stays for keep-alive, then closes
        assert closed_after(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n") < 3
    finally:
        server.should_exit = True
        thread.join(10)
        store.close()


# -- 11. the sign-up limit and the sign-up's timing ------------------------------------------


def test_an_ipv6_client_is_its_slash_64_and_ipv4_mapped_is_ipv4(service: TestClient) -> None:
    app = service.app

    def from_(host: str, n: int) -> int:
        client = TestClient(app, client=(host, 40000))
        return sign_up(client, f"v6.{n}@example.net", "daily").status_code

    answers = [from_(f"2001:db8:1:2::{n:x}", n) for n in range(1, 21)]
    assert answers == [200] * 20
    assert from_("2001:db8:1:2:ffff:ffff:ffff:ffff", 21) == 429  # the same /64
    assert from_("2001:db8:1:3::1", 22) == 200  # the next /64 is another client
    assert [from_("192.0.2.7", 100 + n) for n in range(20)] == [200] * 20
    assert from_("::ffff:192.0.2.7", 200) == 429  # the same IPv4 client


def test_the_sign_up_answer_goes_before_any_store_step_in_every_case(
    service: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from newsletter.audience import optin

    add(service.store, "gone@example.com", "daily")  # type: ignore[attr-defined]
    forget(service.store, "gone@example.com")  # type: ignore[attr-defined]
    steps: list[str] = []
    real = optin.request

    def recorded(store, email, *args, **kwargs):  # type: ignore[no-untyped-def]
        steps.append(f"store {email}")
        return real(store, email, *args, **kwargs)

    monkeypatch.setattr(optin, "request", recorded)
    app = service.app

    async def watched(scope, receive, send):  # type: ignore[no-untyped-def]
        async def sending(message):  # type: ignore[no-untyped-def]
            if message["type"] == "http.response.body" and scope.get("method") == "POST":
                steps.append("answered")
            await send(message)

        await app(scope, receive, sending)

    client = TestClient(watched)
    for address in ("jane.doe@example.com", "someone.new@example.com", "gone@example.com"):
        steps.clear()
        assert sign_up(client, address, "daily").status_code == 200
        assert steps == ["answered", f"store {address}"], address


# -- 12. the archive: regular files inside build/ only ---------------------------------------


def test_the_archive_serves_no_link_out_of_build_nor_a_fifo_nor_a_directory(
    service: TestClient, tmp_path: Path
) -> None:
    build = Path(service.workspace) / "build"  # type: ignore[attr-defined]
    (build / "daily" / "2025-05-14").mkdir(parents=True)
    (build / "daily" / "2025-05-15").mkdir(parents=True)
    secret = tmp_path / "outside.html"
    secret.write_text("the server's secrets")
    (build / "daily" / "2025-05-14" / "index.html").symlink_to(secret)
    (build / "daily" / "2025-05-15" / "index.html").mkdir()
    (build / "weekly").mkdir()
    inside = build / "weekly" / "real.xml"
    inside.write_text("<feed/>")
    (build / "weekly" / "feed.xml").symlink_to(inside)  # a link inside build/ is fine
    fifo = build / "index.html"
    os.mkfifo(fifo)
    # were the FIFO opened for reading, this writer lets it finish (empty) instead of hanging
    threading.Thread(target=lambda: os.close(os.open(fifo, os.O_WRONLY)), daemon=True).start()
    try:
        for path in ("/daily/2025-05-14/", "/daily/2025-05-15/", "/"):
            answer = service.get(path)
            assert answer.status_code == 404, path
            assert "secrets" not in answer.text
        assert service.get("/weekly/feed.xml").text == "<feed/>"
    finally:
        os.close(os.open(fifo, os.O_RDONLY | os.O_NONBLOCK))  # releases the writer
