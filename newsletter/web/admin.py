"""`GET /admin/report`: the same HTML report as `newsletter report --html`, for the
publisher's staff, never public and never stored by a proxy.

Who may see it is decided by `allowed` alone. Until the subscriber API's keys with scopes
(issue #13) land, it compares the request's bearer token with `NEWSLETTER_ADMIN_KEY`
(constant time); at merge, `allowed` becomes "an API key with the `stats:read` scope" and
nothing else here changes. Without a configured key nobody is allowed."""

from __future__ import annotations

import hmac
from typing import cast

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response

from newsletter.config import Environment
from newsletter.errors import ReportError

PRIVATE = {"Cache-Control": "no-store, private", "Vary": "Authorization"}


def bearer(request: Request) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def allowed(request: Request) -> bool:
    """Whether the request may read statistics: THE check (see the module docstring)."""
    expected = Environment().admin_key()
    given = bearer(request)
    if expected is None or given is None:
        return False
    return hmac.compare_digest(given.encode(), expected.get_secret_value().encode())


def _refused(status: int, message: str) -> JSONResponse:
    headers = {**PRIVATE, "WWW-Authenticate": 'Bearer realm="newsletter admin"'}
    return JSONResponse({"error": message}, status_code=status, headers=headers)


async def report(request: Request) -> Response:
    if not allowed(request):
        return _refused(401, "a valid key is required (Authorization: Bearer …)")
    params = request.query_params
    by = params.get("by", "issue")
    if by not in ("issue", "week", "month"):
        return JSONResponse({"error": "by: one of issue, week, month"}, 400, headers=PRIVATE)
    state = request.app.state

    def make() -> str:
        from newsletter.reports.document import render
        from newsletter.reports.overview import By, build_report, parse_date, parse_since

        today = state.now().date()
        until = parse_date(params["until"], "until") if params.get("until") else None
        since = (
            parse_since(params["since"], until or today, "since") if params.get("since") else None
        )
        found = build_report(
            state.store,
            state.workspace,
            newsletter=params.get("newsletter") or None,
            since=since,
            until=until,
            by=cast(By, by),
            today=today,
        )
        return render(found, state.config.publication.name)

    try:
        page = await run_in_threadpool(make)
    except ReportError as exc:
        return JSONResponse({"error": str(exc)}, 400, headers=PRIVATE)
    return HTMLResponse(page, headers=PRIVATE)
