"""The preferences page (/preferences/<token>): which newsletters, changed with one form;
the tier; "download my data" and "delete me", each behind a confirming POST."""

from __future__ import annotations

import json
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from newsletter.audience import selfservice
from newsletter.errors import TokenError
from newsletter.web.pages import error, mask, offered, render
from newsletter.web.security import checked_form, csrf_token

INVALID = "This preferences link is not valid."


def _subscriber(request: Request) -> int | None:
    try:
        data = request.app.state.signer.read("preferences", request.path_params["token"])
    except TokenError:
        return None
    return data.subscriber_id if data.newsletter is None else None


async def _page(request: Request, subscriber_id: int, **values: Any) -> HTMLResponse:
    person = await run_in_threadpool(selfservice.profile, request.app.state.store, subscriber_id)
    if person is None:
        return error(request, "We hold nothing on this subscriber any more.", 404)
    token = request.path_params["token"]
    values.setdefault("saved", False)
    return render(
        request,
        "preferences",
        person=person,
        email=mask(person.email),
        offered=offered(request),
        csrf=csrf_token(request, token),
        base=f"/preferences/{token}",
        **values,
    )


async def page(request: Request) -> Response:
    subscriber_id = _subscriber(request)
    if subscriber_id is None:
        return error(request, INVALID)
    return await _page(request, subscriber_id)


async def save(request: Request) -> Response:
    subscriber_id = _subscriber(request)
    if subscriber_id is None:
        return error(request, INVALID)
    form = await checked_form(request, request.path_params["token"])
    if form is None:
        return error(request, "This form has expired: reload the page and try again.", 403)
    choices = set(offered(request))
    wanted = set(form.get("newsletter", [])) & choices
    changes = await run_in_threadpool(
        selfservice.set_newsletters, request.app.state.store, subscriber_id, wanted, choices
    )
    if changes is None:
        return error(request, "We hold nothing on this subscriber any more.", 404)
    return await _page(request, subscriber_id, saved=True)


def _ask(request: Request, page: str, action: str) -> Response:
    """The confirmation step before a download or an erasure: a page with one button."""
    if _subscriber(request) is None:
        return error(request, INVALID)
    token = request.path_params["token"]
    return render(
        request,
        page,
        done=False,
        csrf=csrf_token(request, token),
        action=f"/preferences/{token}/{action}",
        back=f"/preferences/{token}",
    )


async def confirm_delete(request: Request) -> Response:
    return _ask(request, "delete", "delete")


async def confirm_data(request: Request) -> Response:
    return _ask(request, "data", "data")


async def delete(request: Request) -> Response:
    subscriber_id = _subscriber(request)
    if subscriber_id is None:
        return error(request, INVALID)
    if await checked_form(request, request.path_params["token"]) is None:
        return error(request, "This form has expired: reload the page and try again.", 403)
    outbox = request.app.state.workspace.root / "outbox"
    await run_in_threadpool(
        selfservice.forget_id, request.app.state.store, subscriber_id, outbox=outbox
    )
    return render(request, "delete", done=True)


async def data(request: Request) -> Response:
    """POST only, from the confirming page: a link scanner never downloads anyone's data."""
    subscriber_id = _subscriber(request)
    if subscriber_id is None:
        return error(request, INVALID)
    if await checked_form(request, request.path_params["token"]) is None:
        return error(request, "This form has expired: reload the page and try again.", 403)
    found = await run_in_threadpool(selfservice.data_of, request.app.state.store, subscriber_id)
    if found is None:
        return error(request, "We hold nothing on this subscriber any more.", 404)
    return Response(
        json.dumps(found, indent=2, ensure_ascii=False) + "\n",
        media_type="application/json",
        headers={"Content-Disposition": 'attachment; filename="my-newsletter-data.json"'},
    )
