"""API keys on requests, and the API's one error shape.

Any endpoint behind a key (the API's, `/admin/report`) starts with

    key = await authenticate(request, "stats:read")

which returns the live `ApiKey` or raises `ApiRefused`: the app's exception handler turns
it into `{"error": {"code": "unauthorized" | "forbidden", "message": …}}` with 401 (no
key, a malformed, unknown or revoked one; with `WWW-Authenticate: Bearer`) or 403 (a valid
key without `scope`), never an HTML page. The key is read from `Authorization: Bearer
<key>` only (never a query string, which ends up in logs), looked up in the database on
every request (so a revoked key is refused at once by every worker), and never appears in
a message or a log line.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from newsletter.audience import apikeys
from newsletter.audience.apikeys import ApiKey
from newsletter.errors import ApiRefused
from newsletter.store import Connection

STATUS = {
    "bad_request": 400,
    "unauthorized": 401,
    "forbidden": 403,
    "not_found": 404,
    "method_not_allowed": 405,
    "timeout": 408,
    "suppressed": 409,
    "unsubscribed": 409,
    "conflict": 409,
    "too_large": 413,
    "invalid": 422,
    "idempotency_mismatch": 422,
    "limited": 429,
    "unavailable": 503,
}


def check(request: Request, scope: str, conn: Connection | None = None) -> ApiKey:
    """`authenticate`, for code already in a worker thread; inside `conn`'s transaction if
    given (the request's own: one transaction a request)."""
    header = request.headers.get("authorization", "")
    kind, _, presented = header.strip().partition(" ")
    if not header:
        raise ApiRefused("unauthorized", "no API key: send the header Authorization: Bearer <key>")
    if kind.lower() != "bearer" or not presented.strip():
        raise ApiRefused("unauthorized", "the Authorization header is not Bearer <key>")
    state = request.app.state
    if conn is None:
        key = apikeys.lookup(state.store, presented.strip(), now=state.now())
    else:
        key = apikeys.lookup_in(conn, presented.strip(), now=state.now())
    if key is None:
        raise ApiRefused("unauthorized", "this API key is unknown or revoked")
    if not key.allows(scope):
        raise ApiRefused("forbidden", f"this API key does not have the scope {scope}")
    return key


async def authenticate(request: Request, scope: str) -> ApiKey:
    """The live key of `request` if it has `scope`; ApiRefused (→ JSON 401/403) otherwise."""
    return await run_in_threadpool(check, request, scope)


def error_body(code: str, message: str, field: str | None = None) -> dict[str, Any]:
    inner: dict[str, Any] = {"code": code, "message": message}
    if field is not None:
        inner["field"] = field
    return {"error": inner}


def json_response(
    status: int, data: Any, headers: dict[str, str] | None = None, **options: Any
) -> Response:
    body = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)
    return Response(body, status, headers=headers, media_type="application/json", **options)


def refusal(exc: ApiRefused) -> Response:
    status = STATUS.get(exc.code, 400)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return json_response(status, error_body(exc.code, exc.message, exc.field), headers)


def error(status: int, code: str, message: str) -> Response:
    """The JSON error for what the app's own handlers answer (404, 405, 413, 503…)."""
    return json_response(status, error_body(code, message))
