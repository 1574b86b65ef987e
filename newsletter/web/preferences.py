"""The preferences page (/preferences/<token>, the link in every email's footer): which
newsletters, changed with one form; the tier; "download my data" and "delete me".

Emails get forwarded, so the footer link is only trusted to take newsletters away: a
newsletter added there goes through double opt-in (pending, and a confirmation email naming
exactly it), and "download my data" and "delete me" only mail the address a link that
expires in an hour (/data/<token>), whose page (GET shows a button, POST acts) downloads
or erases."""

from __future__ import annotations

import json
import time
from typing import Any

from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from newsletter.audience import selfservice
from newsletter.errors import TokenError
from newsletter.web.pages import error, mail, mask, offered, render
from newsletter.web.security import checked_form, csrf_token
from newsletter.web.subscribe import mail_confirmation

INVALID = "This preferences link is not valid."
EXPIRED_FORM = "This form has expired: reload the page and try again."
GONE = "We hold nothing on this subscriber any more."


def _subscriber(request: Request) -> int | None:
    try:
        data = request.app.state.signer.read("preferences", request.path_params["token"])
    except TokenError:
        return None
    return data.subscriber_id if not data.names else None


async def _page(request: Request, subscriber_id: int, **values: Any) -> HTMLResponse:
    person = await run_in_threadpool(selfservice.profile, request.app.state.store, subscriber_id)
    if person is None:
        return error(request, GONE, 404)
    token = request.path_params["token"]
    values.setdefault("saved", False)
    values.setdefault("emailed", [])
    values.setdefault("limited", [])
    background = values.pop("background", None)
    return render(
        request,
        "preferences",
        background=background,
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
    """Leaving takes effect at once; an addition is pending until the address confirms it."""
    state = request.app.state
    subscriber_id = _subscriber(request)
    if subscriber_id is None:
        return error(request, INVALID)
    form = await checked_form(request, request.path_params["token"])
    if form is None:
        return error(request, EXPIRED_FORM, 403)
    choices = set(offered(request))
    wanted = set(form.get("newsletter", [])) & choices
    result = await run_in_threadpool(
        lambda: selfservice.set_newsletters(
            state.store,
            subscriber_id,
            wanted,
            choices,
            per_address=state.config.serve.signups_per_address,
            now=state.now(),
        )
    )
    if result is None:
        return error(request, GONE, 404)
    titles = offered(request)
    signup = result.signup
    return await _page(
        request,
        subscriber_id,
        saved=True,
        emailed=[titles[k] for k in signup.newsletters] if signup else [],
        limited=[titles[k] for k in result.limited],
        background=BackgroundTask(mail_confirmation, request, signup) if signup else None,
    )


async def _ask_by_email(request: Request, action: str) -> Response:
    """The footer link's "download my data" or "delete me": a link mailed to the address
    (at most signups_per_address a day), never the data or the erasure itself."""
    from newsletter.audience.notices import data_request

    state = request.app.state
    subscriber_id = _subscriber(request)
    if subscriber_id is None:
        return error(request, INVALID)
    if await checked_form(request, request.path_params["token"]) is None:
        return error(request, EXPIRED_FORM, 403)
    person = await run_in_threadpool(selfservice.profile, state.store, subscriber_id)
    if person is None:
        return error(request, GONE, 404)
    if person.suppressed:
        message = (
            "We no longer send email to this address, so we cannot mail you the link "
            "this needs: write to us instead."
        )
        return error(request, message, 410)
    if not state.data_limiter.allow(str(subscriber_id), time.monotonic()):
        message = (
            "We have already emailed this address several such links today: use one of "
            "those, or try again tomorrow."
        )
        return error(request, message, 429)
    notice = data_request(
        state.config, state.pages, state.signer, person.id, person.email, action, state.now()
    )
    return render(
        request,
        "data_sent",
        background=BackgroundTask(mail, request, notice, person.id),
        email=mask(person.email),
        action=action,
        back=f"/preferences/{request.path_params['token']}",
    )


async def request_data(request: Request) -> Response:
    return await _ask_by_email(request, "download")


async def request_delete(request: Request) -> Response:
    return await _ask_by_email(request, "delete")


def _data_link(request: Request) -> tuple[int, str] | str:
    """The subscriber and the action of a data link, or the message to show."""
    try:
        data = request.app.state.signer.read("data", request.path_params["token"])
    except TokenError as exc:
        if "expired" in str(exc):
            return "This link has expired: ask again from your preferences page."
        return "This link is not valid."
    if len(data.names) != 1 or data.names[0] not in ("download", "delete"):
        return "This link is not valid."
    return data.subscriber_id, data.names[0]


async def data_page(request: Request) -> Response:
    """The emailed link's page: one button (a link scanner never downloads nor erases)."""
    found = _data_link(request)
    if isinstance(found, str):
        return error(request, found)
    subscriber_id, action = found
    token = request.path_params["token"]
    preferences = request.app.state.signer.make("preferences", subscriber_id)
    return render(
        request,
        "delete" if action == "delete" else "data",
        done=False,
        csrf=csrf_token(request, token),
        action=f"/data/{token}",
        back=f"/preferences/{preferences}",
    )


async def data_act(request: Request) -> Response:
    """POST only, from the emailed link's page: the download, or the erasure."""
    found = _data_link(request)
    if isinstance(found, str):
        return error(request, found)
    subscriber_id, action = found
    if await checked_form(request, request.path_params["token"]) is None:
        return error(request, EXPIRED_FORM, 403)
    store = request.app.state.store
    if action == "delete":
        outbox = request.app.state.workspace.outbox_dir
        await run_in_threadpool(selfservice.forget_id, store, subscriber_id, outbox=outbox)
        return render(request, "delete", done=True)
    found_data = await run_in_threadpool(selfservice.data_of, store, subscriber_id)
    if found_data is None:
        return error(request, GONE, 404)
    return Response(
        json.dumps(found_data, indent=2, ensure_ascii=False) + "\n",
        media_type="application/json",
        headers={"Content-Disposition": 'attachment; filename="my-newsletter-data.json"'},
    )
