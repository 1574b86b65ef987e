"""A local HTTP server that behaves like SendGrid's v3 Mail Send API, for the tests.

It enforces the documented limits (1 to 1,000 personalizations, 10,000 bytes of
substitutions per personalization, text/plain before text/html, a Bearer key) and can be
told to misbehave: answer 429 with X-RateLimit-Reset, answer 5xx, stall past the client's
timeout, drop the connection, or echo the request's Authorization header in an error body."""

from __future__ import annotations

import http.server
import json
import threading
import time
from typing import Any


class FakeSendGrid:
    def __init__(self, key: str):
        self.key = key
        self.requests: list[dict[str, Any]] = []  # accepted bodies
        self.attempts = 0
        self.attempt_times: list[float] = []
        self.resets: list[int] = []  # the X-RateLimit-Reset of each 429 given
        self.faults: list[tuple[Any, ...]] = []  # popped one per request
        self.lock = threading.Lock()
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _answer(
                self,
                status: int,
                body: dict[str, Any] | None = None,
                headers: dict[str, str] | None = None,
            ) -> None:
                data = json.dumps(body).encode() if body is not None else b""
                self.send_response(status)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                raw = self.rfile.read(length)
                with fake.lock:
                    fake.attempts += 1
                    fake.attempt_times.append(time.time())
                    fault = fake.faults.pop(0) if fake.faults else None
                if self.path != "/v3/mail/send":
                    return self._answer(404, {"errors": [{"message": "not found"}]})
                if fault and fault[0] == "echo":  # an error body quoting the request's key
                    said = self.headers.get("Authorization", "")
                    return self._answer(fault[1], {"errors": [{"message": f"not allowed: {said}"}]})
                if self.headers.get("Authorization") != f"Bearer {fake.key}":
                    return self._answer(
                        401,
                        {
                            "errors": [
                                {
                                    "message": "The provided authorization grant is invalid, expired, or revoked"
                                }
                            ]
                        },
                    )
                if fault:
                    if fault[0] == "rate-limit":  # reset in `fault[1]` whole seconds from now
                        reset = int(time.time()) + fault[1]
                        fake.resets.append(reset)
                        return self._answer(
                            429,
                            {"errors": [{"message": "too many requests"}]},
                            {"X-RateLimit-Reset": str(reset)},
                        )
                    if fault[0] == "status":
                        return self._answer(
                            fault[1],
                            {"errors": [{"message": f"fault {fault[1]}"}]},
                            fault[2] if len(fault) > 2 else None,
                        )
                    if fault[0] == "sleep":
                        time.sleep(fault[1])
                    if fault[0] == "drop":
                        self.close_connection = True
                        self.connection.shutdown(2)
                        return None
                body = json.loads(raw)
                problem = fake.validate(body)
                if problem:
                    return self._answer(400, {"errors": [problem]})
                with fake.lock:
                    fake.requests.append(body)
                    number = len(fake.requests)
                return self._answer(202, None, {"X-Message-Id": f"fake-msg-{number}"})

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @staticmethod
    def validate(body: dict[str, Any]) -> dict[str, str] | None:
        people = body.get("personalizations") or []
        if not 1 <= len(people) <= 1000:
            return {
                "message": "The personalizations field must have at least one and no more than 1000 items.",
                "field": "personalizations",
            }
        for p in people:
            if not p.get("to"):
                return {
                    "message": "The to array is required for all personalization objects.",
                    "field": "personalizations.to",
                }
            size = sum(
                len(k.encode()) + len(v.encode()) for k, v in (p.get("substitutions") or {}).items()
            )
            if size > 10000:
                return {
                    "message": "Substitutions may not exceed 10000 bytes per personalization.",
                    "field": "personalizations.substitutions",
                }
        types = [c.get("type") for c in body.get("content", [])]
        if (
            "text/plain" in types
            and "text/html" in types
            and types.index("text/plain") > types.index("text/html")
        ):
            return {
                "message": "If present, text/plain must be first, followed by text/html.",
                "field": "content",
            }
        if not body.get("from", {}).get("email"):
            return {
                "message": "The from email does not contain a valid address.",
                "field": "from.email",
            }
        return None

    def recipients(self) -> list[str]:
        return [
            t["email"] for body in self.requests for p in body["personalizations"] for t in p["to"]
        ]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
