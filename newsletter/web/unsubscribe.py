"""Unsubscribe: a GET shows a page with a button (mail scanners follow links, so a GET never
unsubscribes); a POST to the same URL unsubscribes at once: the RFC 8058 one-click request
that Gmail and Yahoo send (no cookie, no CSRF token, no confirmation), and the page's button.
It answers 200, never a redirect, and is idempotent. A bad token changes nothing: 400."""

from __future__ import annotations

import asyncio

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse

from newsletter.audience.selfservice import unsubscribe_id
from newsletter.errors import TokenError
from newsletter.web.pages import mask, render


def _read(request: Request) -> tuple[int, str] | None:
    try:
        data = request.app.state.signer.read("unsubscribe", request.path_params["token"])
    except TokenError:
        return None
    if data.newsletter is None or data.newsletter not in request.app.state.config.newsletters:
        return None
    return data.subscriber_id, data.newsletter


async def page(request: Request) -> HTMLResponse:
    found = _read(request)
    if found is None:
        return render(request, "error", 400, message="This unsubscribe link is not valid.")
    subscriber_id, newsletter = found
    from newsletter.store import people as q

    def look() -> str | None:
        with request.app.state.store.begin() as conn:
            person = q.by_id(conn, subscriber_id)
            return person.email if person else None

    email = await run_in_threadpool(look)
    title = request.app.state.config.newsletters[newsletter].title
    preferences = request.app.state.signer.make("preferences", subscriber_id)
    return render(
        request,
        "unsubscribe",
        title=title,
        email=mask(email) if email else None,
        action=request.url.path,
        preferences=f"/preferences/{preferences}",
        done=False,
    )


ONE_CLICK_BODY = b"List-Unsubscribe=One-Click"  # RFC 8058, section 3.1


def _urlencoded(request: Request) -> bool:
    kind = request.headers.get("content-type", "").split(";", 1)[0]
    return kind.strip().lower() == "application/x-www-form-urlencoded"


async def _route(request: Request) -> str:
    """ "page" when the page's button sent it (its form says so), else "one-click": the mail
    app's RFC 8058 request. Reports count unsubscribes by route; an unreadable body is still
    an unsubscribe."""
    from starlette.formparsers import MultiPartException

    try:
        body = await request.body()  # kept: the form below parses it from memory
        if body == ONE_CLICK_BODY and _urlencoded(request):
            return "one-click"  # what every mail app sends: no parser needed to read it
        form = await request.form()
    except (MultiPartException, ValueError):  # a body too large or too slow still raises
        return "one-click"
    return "page" if form.get("via") == "page" else "one-click"


async def one_click(request: Request) -> HTMLResponse:
    found = _read(request)
    if found is None:
        return render(request, "error", 400, message="This unsubscribe link is not valid.")
    subscriber_id, newsletter = found
    method = await _route(request)
    # answered once its transaction, shared with the unsubscribes that came at the same
    # time, is committed (store/groupcommit.py)
    result = await asyncio.wrap_future(
        request.app.state.commits.submit(
            lambda store: unsubscribe_id(store, subscriber_id, newsletter, method=method)
        )
    )
    title = request.app.state.config.newsletters[newsletter].title
    return render(
        request,
        "unsubscribe",
        title=title,
        email=mask(result.email) if result else None,
        action=request.url.path,
        preferences=f"/preferences/{request.app.state.signer.make('preferences', subscriber_id)}",
        done=True,
    )
