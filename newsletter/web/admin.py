"""`GET /admin/report`: the same HTML report as `newsletter report --html`, for the
publisher's staff, never public and never stored by a proxy.

Who may see it is an API key with the `stats:read` scope (`newsletter api-key create NAME
--scope stats:read`), checked by the API's one rule (`web.api.auth`): no key, an unknown or
revoked one is a JSON 401, a key without the scope a JSON 403."""

from __future__ import annotations

from typing import cast

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response

from newsletter.errors import ApiRefused, ReportError
from newsletter.web.api.auth import authenticate, refusal

PRIVATE = {"Cache-Control": "no-store, private", "Vary": "Authorization"}


async def report(request: Request) -> Response:
    try:
        await authenticate(request, "stats:read")
    except ApiRefused as exc:
        refused = refusal(exc)
        refused.headers.update(PRIVATE)
        return refused
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
