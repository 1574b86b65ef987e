"""Send benchmark: prints figures, asserts nothing.

- outbox: messages per second (in-process `run_send` into a temp workspace), without and
  with DKIM signing, and the time to sign one message ours vs dkimpy's own `dkim.sign`;
- SMTP to a local aiosmtpd: pooled connections vs one connection per message;
- SendGrid against the tests' SendGrid-compatible server (in its own process): 100,000
  subscribers (time), 1,000,000 (time and peak RSS, with --million), and the ratio against
  one request per recipient.

Usage: .venv/bin/python bench/bench_send.py [--outbox 5000] [--smtp 2000] [--sendgrid 100000] [--million]
       [--only outbox|sendgrid]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from _util import measured  # noqa: E402
from bench_subscribers import make_csv  # noqa: E402

from newsletter.audience.importer import Importer  # noqa: E402
from newsletter.send import SendOptions, plan_send, run_send  # noqa: E402
from newsletter.send.backends import smtp as smtp_module  # noqa: E402
from newsletter.store import open_store  # noqa: E402
from newsletter.workspace import Workspace  # noqa: E402

ISSUE = "daily/2025-05-14"


def workspace(rows: int, extra_config: str = "") -> tuple[Workspace, object]:
    # BENCH_DIR=/dev/shm: the outbox on tmpfs, where fsync costs nothing: what the send's
    # CPU allows, apart from what this machine's disk allows (its fsyncs vary threefold)
    root = Path(tempfile.mkdtemp(prefix="nl-bench-send-", dir=os.environ.get("BENCH_DIR")))
    shutil.copy(REPO / "newsletter.toml", root)
    shutil.copytree(REPO / "issues", root / "issues")
    shutil.copytree(REPO / "templates", root / "templates")
    (root / "newsletter.toml").write_text((root / "newsletter.toml").read_text() + extra_config)
    os.environ["NEWSLETTER_SECRET"] = "bench-secret-" + "z" * 40
    os.environ["NEWSLETTER_DATABASE_URL"] = f"sqlite:///{root / 'newsletter.db'}"
    ws = Workspace(root)
    store = open_store(ws.database_url)
    csv_file = root / "list.csv"
    make_csv(csv_file, rows)
    Importer(store, set(ws.config.newsletters), newsletter="daily").run(csv_file)
    return ws, store


def timed_send(ws: Workspace, store: object, backend: str) -> tuple[float, int]:
    plan = plan_send(ws, store, ISSUE, SendOptions(backend=backend, late=True))  # type: ignore[arg-type]
    start = time.perf_counter()
    report = run_send(plan, store)  # type: ignore[arg-type]
    return time.perf_counter() - start, report.sent


def bench_outbox(rows: int) -> None:
    ws, store = workspace(rows)
    seconds, sent = timed_send(ws, store, "outbox")
    print(f"outbox: {sent:,} messages in {seconds:.1f} s = {sent / seconds:,.0f} messages/s")
    shutil.rmtree(ws.root)


def bench_outbox_dkim(rows: int) -> None:
    """The same send with [dkim] on; then one message signed N times, ours vs dkimpy's."""
    import dkim

    from newsletter.send.dkim import keygen, load

    ws, store = workspace(rows, '\n[dkim]\ndomain = "harbourledger.example"\nselector = "bench"\n')
    keygen(ws.root / "bench.pem", "bench", "harbourledger.example")
    os.environ["NEWSLETTER_DKIM_KEY_FILE"] = str(ws.root / "bench.pem")
    seconds, sent = timed_send(ws, store, "outbox")
    print(
        f"outbox, DKIM on: {sent:,} messages in {seconds:.1f} s = {sent / seconds:,.0f} messages/s"
    )
    eml = next((ws.root / "outbox").rglob("*.eml")).read_bytes()
    unsigned = b"From: " + eml.split(b"\r\nFrom: ", 1)[1]
    plan = plan_send(ws, store, ISSUE, SendOptions(backend="outbox", late=True))  # type: ignore[arg-type]
    from newsletter.audience.tokens import Signer
    from newsletter.model import Recipient
    from newsletter.send.message import MessageFactory

    factory = MessageFactory(
        ws.config,
        plan.content,
        Signer(plan.secret),
        plan.secret,
        plan.options.now or __import__("datetime").datetime.now(__import__("datetime").UTC),
    )
    signer = load(ws.config)
    assert signer is not None
    messages = [
        factory.build(Recipient(i, f"r{i}@example.com", f"R {i}", "free")) for i in range(2000)
    ]
    for m in messages:
        m.data  # noqa: B018  # rendered before the clock starts: only the signing is timed
    start = time.perf_counter()
    for m in messages:
        signer.message(m)
    ours = (time.perf_counter() - start) / len(messages)
    pem = (ws.root / "bench.pem").read_bytes()
    start = time.perf_counter()
    for _ in range(20):
        dkim.sign(
            unsigned, b"bench", b"harbourledger.example", pem, canonicalize=(b"relaxed", b"relaxed")
        )
    theirs = (time.perf_counter() - start) / 20
    print(
        f"DKIM, one {len(unsigned) // 1024} KB message: {ours * 1e3:.2f} ms to sign ours "
        f"({1 / ours:,.0f}/s on one core), {theirs * 1e3:.1f} ms with dkimpy's dkim.sign ({theirs / ours:.0f}x)"
    )
    del os.environ["NEWSLETTER_DKIM_KEY_FILE"]
    shutil.rmtree(ws.root)


def _smtp_server(port: int, ready: multiprocessing.synchronize.Event) -> None:  # type: ignore[name-defined]
    from aiosmtpd.controller import Controller

    class Sink:
        async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]
            return "250 OK"

    controller = Controller(Sink(), hostname="127.0.0.1", port=port)
    controller.start()
    ready.set()
    time.sleep(3600)


def bench_smtp(rows: int) -> None:
    from tests.conftest import free_port

    port = free_port()
    ready = multiprocessing.Event()
    server = multiprocessing.Process(target=_smtp_server, args=(port, ready), daemon=True)
    server.start()
    ready.wait(10)
    config = f'\n[smtp]\nhost = "127.0.0.1"\nport = {port}\nsecurity = "none"\nconnections = 4\n'
    ws, store = workspace(rows, config)
    pooled, sent = timed_send(ws, store, "smtp")
    print(
        f"smtp, 4 pooled connections: {sent:,} messages in {pooled:.1f} s = {sent / pooled:,.0f} messages/s"
    )
    shutil.rmtree(ws.root)

    original = smtp_module.SmtpBackend._send_one

    def one_connection_each(self, message):  # type: ignore[no-untyped-def]
        try:
            return original(self, message)
        finally:
            conn = getattr(self._local, "conn", None)
            if conn is not None:
                conn.quit()
            self._local.conn = None

    smtp_module.SmtpBackend._send_one = one_connection_each  # type: ignore[method-assign]
    ws, store = workspace(rows, config.replace("connections = 4", "connections = 1"))
    single, sent = timed_send(ws, store, "smtp")
    smtp_module.SmtpBackend._send_one = original  # type: ignore[method-assign]
    print(
        f"smtp, one connection per message: {sent:,} in {single:.1f} s = {sent / single:,.0f} messages/s; "
        f"pooling is {single / pooled:.1f}x faster"
    )
    shutil.rmtree(ws.root)
    server.terminate()


def _fake_sendgrid(key: str, port_out: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    from tests.sendgrid_fake import FakeSendGrid

    fake = FakeSendGrid(key)
    fake.requests = _Counting()  # type: ignore[assignment]  # keep counts, not a million bodies
    port_out.put(fake.url)
    time.sleep(3600)


class _Counting(list):  # type: ignore[type-arg]
    def append(self, body) -> None:  # type: ignore[no-untyped-def]
        super().append(len(body.get("personalizations", [])))


def _start_fake_sendgrid() -> multiprocessing.Process:
    """The tests' SendGrid-compatible server in its own process, with SENDGRID_API_KEY and
    SENDGRID_API_HOST set for the sends this process runs."""
    key = "SG.bench-" + "k" * 40
    urls: multiprocessing.Queue = multiprocessing.Queue()  # type: ignore[type-arg]
    server = multiprocessing.Process(target=_fake_sendgrid, args=(key, urls), daemon=True)
    server.start()
    os.environ["SENDGRID_API_KEY"] = key
    os.environ["SENDGRID_API_HOST"] = urls.get(timeout=10)
    return server


def bench_sendgrid(rows: int, batch_size: int = 1000, parallel: int = 4) -> float:
    """`newsletter send --backend sendgrid` as a fresh process: its time and its peak RSS."""
    import json

    server = _start_fake_sendgrid()
    ws, store = workspace(rows, f"\n[sendgrid]\nbatch_size = {batch_size}\nparallel = {parallel}\n")
    store.close()  # type: ignore[attr-defined]
    newsletter = str(Path(sys.executable).with_name("newsletter"))
    argv = [
        newsletter,
        "-w",
        str(ws.root),
        "send",
        ISSUE,
        "--late",
        "--yes",
        "--json",
        "--backend",
        "sendgrid",
    ]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        # its own CPU and peak RSS (`_util.measured`: neither the fake server's nor this
        # process's, which has just imported the list)
        run = measured(argv, env=env, stdout=out, stderr=err)
        out.seek(0)
        err.seek(0)
        if run.returncode != 0:
            raise SystemExit(err.read().decode())
        report = json.loads(out.read())
    seconds, cpu, peak = run.seconds, run.cpu_seconds, run.peak_rss_mb
    print(
        f"sendgrid, {batch_size} per request: {report['sent']:,} recipients, `newsletter send` took {seconds:.1f} s "
        f"(sending {report['seconds']:.1f} s = {report['rate']:,.0f}/s); CPU {cpu:.1f} s "
        f"({cpu / max(report['sent'], 1) * 1e6:.0f} µs a recipient, the whole process); "
        f"peak RSS {peak:.0f} MB"
    )
    shutil.rmtree(ws.root)
    server.terminate()
    return float(report["rate"])


def _one_body(key: str) -> bytes:
    """A request body exactly as `newsletter send` posts it: 1,000 personalizations."""
    import json

    from tests.sendgrid_fake import FakeSendGrid

    fake = FakeSendGrid(key)
    saved = os.environ.get("SENDGRID_API_HOST")
    os.environ["SENDGRID_API_HOST"] = fake.url
    ws, store = workspace(1000, "\n[sendgrid]\nbatch_size = 1000\nparallel = 1\n")
    plan = plan_send(ws, store, ISSUE, SendOptions(backend="sendgrid", late=True))  # type: ignore[arg-type]
    run_send(plan, store)  # type: ignore[arg-type]
    store.close()  # type: ignore[attr-defined]
    shutil.rmtree(ws.root)
    if saved is not None:
        os.environ["SENDGRID_API_HOST"] = saved
    return json.dumps(fake.requests[0]).encode()


def sendgrid_ceiling(rows: int, parallel: int = 4) -> float:
    """The ceiling on this machine: a bare loop of `parallel` threads posting a real body of
    1,000 personalizations to the same server (in its own process) as `urllib` does for the
    sendgrid library, rows/1,000 times, with no journal and no message building at all."""
    import threading
    import urllib.request

    key = "SG.bench-" + "k" * 40
    os.environ["SENDGRID_API_KEY"] = key
    body = _one_body(key)
    urls: multiprocessing.Queue = multiprocessing.Queue()  # type: ignore[type-arg]
    server = multiprocessing.Process(target=_fake_sendgrid, args=(key, urls), daemon=True)
    server.start()
    url = urls.get(timeout=10) + "/v3/mail/send"
    left = [rows // 1000]
    lock = threading.Lock()
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}

    def post() -> None:
        while True:
            with lock:
                if left[0] <= 0:
                    return
                left[0] -= 1
            request = urllib.request.Request(url, data=body, method="POST", headers=headers)
            with urllib.request.urlopen(request, timeout=30) as answer:
                answer.read()

    start = time.perf_counter()
    threads = [threading.Thread(target=post) for _ in range(parallel)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - start
    server.terminate()
    rate = (rows // 1000) * 1000 / seconds
    print(
        f"sendgrid ceiling: a bare loop posting the same {len(body) / 1e6:.2f} MB bodies "
        f"({parallel} threads, no journal): {rows:,} in {seconds:.2f} s = {rate:,.0f}/s"
    )
    return rate


def sendgrid_profile(rows: int) -> None:
    """Where a SendGrid send's CPU goes, per recipient: the send in-process on one worker
    (parallel = 1, so each stage's thread CPU adds up to the whole), each stage timed with
    `time.thread_time` around it; against the same server in its own process."""
    import collections

    from newsletter.send import sender
    from newsletter.send.backends import sendgrid as sendgrid_module
    from newsletter.store import journal

    spent: collections.Counter[str] = collections.Counter()

    def timed(owner: object, name: str, label: str) -> None:
        inner = getattr(owner, name)

        def wrapper(*args: object, **kwargs: object) -> object:
            start = time.thread_time()
            try:
                return inner(*args, **kwargs)
            finally:
                spent[label] += time.thread_time() - start

        setattr(owner, name, wrapper)

    server = _start_fake_sendgrid()
    ws, store = workspace(rows, "\n[sendgrid]\nbatch_size = 1000\nparallel = 1\n")
    stages = [
        (journal, "claim", "claim: the rows and their subscribers (SQL, rows to objects)"),
        (sender, "_build", "build: values, two signed tokens, the Message"),
        (journal, "mark", "mark: in flight, then sent (SQL)"),
        (sendgrid_module.SendGridBackend, "payload", "payload: 1,000 personalizations"),
        (sendgrid_module.SendGridBackend, "_request", "request: urllib POST, the answer"),
    ]
    for owner, name, label in stages:
        timed(owner, name, label)
    plan = plan_send(ws, store, ISSUE, SendOptions(backend="sendgrid", late=True))  # type: ignore[arg-type]
    start, wall = time.thread_time(), time.perf_counter()
    report = run_send(plan, store)  # type: ignore[arg-type]
    total, wall = time.thread_time() - start, time.perf_counter() - wall
    server.terminate()
    n = report.sent
    print(
        f"sendgrid profile, {n:,} recipients, one worker: {total / n * 1e6:.1f} µs of CPU a recipient"
    )
    for label, seconds in spent.most_common():
        print(f"  {seconds / n * 1e6:5.1f} µs  {label}")
    rest = total - sum(spent.values())
    print(f"  {rest / n * 1e6:5.1f} µs  the rest: transactions and commits, encoding, settling")
    print(
        f"  one core's ceiling at that cost: {n / total:,.0f} recipients/s (wall here {n / wall:,.0f}/s)"
    )
    store.close()  # type: ignore[attr-defined]
    shutil.rmtree(ws.root)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--outbox", type=int, default=5000)
    parser.add_argument("--smtp", type=int, default=2000)
    parser.add_argument("--sendgrid", type=int, default=100_000)
    parser.add_argument(
        "--million", action="store_true", help="also send to 1,000,000 through SendGrid"
    )
    parser.add_argument(
        "--only", choices=["outbox", "sendgrid"], help="only the outbox or the SendGrid figures"
    )
    parser.add_argument(
        "--profile",
        type=int,
        metavar="N",
        help="only where a SendGrid send's CPU goes, N recipients",
    )
    args = parser.parse_args()
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores, {time.strftime('%Y-%m-%d')}\n")
    if args.profile:
        sendgrid_profile(args.profile)
        return
    if args.only != "sendgrid":
        bench_outbox(args.outbox)
        bench_outbox_dkim(args.outbox)
        if args.only == "outbox":
            return
        bench_smtp(args.smtp)
    ceiling = sendgrid_ceiling(args.sendgrid)
    batched = bench_sendgrid(args.sendgrid)
    print(f"sendgrid: `newsletter send` reaches {batched / ceiling:.0%} of the bare loop's rate")
    single = bench_sendgrid(2000, batch_size=1)
    print(
        f"sendgrid: batches of 1,000 are {batched / single:.0f}x faster than one request per recipient"
    )
    if args.million:
        bench_sendgrid(1_000_000)


if __name__ == "__main__":
    main()
