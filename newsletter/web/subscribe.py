"""Sign-up with double opt-in: /subscribe (a form, embeddable in the publication's site),
and /confirm/<token>, whose GET shows a button and whose POST confirms (mail scanners open
every link: no GET changes anything).

The answer to a sign-up is the same page whether the address was known, new, subscribed
or suppressed, and all the work that differs (the store's steps and the confirmation email)
happens after the answer (a background task), so neither the page nor its timing tells a
visitor who is on the list."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from newsletter.audience import addresses, optin
from newsletter.errors import NewsletterError, TokenError
from newsletter.web.limits import client_key
from newsletter.web.pages import error, mail, mask, offered, render
from newsletter.web.security import checked_form, csrf_token, origin, policy

log = logging.getLogger("newsletter.web")
FORM = "subscribe"


def _form(request: Request, status: int = 200, **values: Any) -> Response:
    chosen = values.pop("chosen", None)
    if chosen is None:
        asked = request.query_params.getlist("newsletter")
        chosen = [k for k in asked if k in offered(request)] or list(offered(request))[:1]
    values.setdefault("problem", None)
    values.setdefault("email", "")
    return render(
        request,
        "subscribe",
        status,
        offered=offered(request),
        chosen=chosen,
        csrf=csrf_token(request, FORM),
        **values,
    )


async def page(request: Request) -> Response:
    """Also meant for an iframe on the publication's own site (and only there)."""
    response = _form(request)
    response.headers["Content-Security-Policy"] = policy(_embedders(request))
    response.headers["Cache-Control"] = "no-store"
    return response


def _embedders(request: Request) -> list[str]:
    config = request.app.state.config
    origins = config.serve.embed_origins
    if origins is None:
        origins = [config.publication.subscribe_url] if config.publication.subscribe_url else []
    return sorted({origin(url) for url in origins})


async def submit(request: Request) -> Response:
    state = request.app.state
    form = await checked_form(request, FORM)
    if form is None:
        return _form(request, 403, problem="This form has expired: please try again.")
    if form.get("website", [""])[0]:  # the hidden field only bots fill in
        return render(request, "check_inbox")
    email = form.get("email", [""])[0].strip()
    chosen = [k for k in dict.fromkeys(form.get("newsletter", [])) if k in offered(request)]
    if not chosen:
        return _form(request, 400, problem="Choose at least one newsletter.", email=email)
    try:
        addresses.parse(email)  # only the form's own check: nothing about the list
    except addresses.InvalidAddress:
        return _form(
            request,
            400,
            problem="That does not look like an email address.",
            email=email,
            chosen=chosen,
        )
    client = client_key(request.client.host) if request.client else "unknown"
    if not state.limiter.allow(client, time.monotonic()):
        return error(request, "Too many sign-ups from your network: please try again later.", 429)
    # everything that depends on the list (the store's steps, the email) comes after the
    # answer, in every case: new, known, subscribed or suppressed answer alike and as fast
    return render(
        request, "check_inbox", background=BackgroundTask(_sign_up, request, email, chosen)
    )


def _sign_up(request: Request, email: str, chosen: list[str]) -> None:
    """After the answer (a worker thread): record the request, mail the confirmation."""
    state = request.app.state
    try:
        signup = optin.request(
            state.store,
            email,
            chosen,
            per_address=state.config.serve.signups_per_address,
            now=state.now(),
        )
    except NewsletterError as exc:
        log.error("sign-up of %s not recorded: %s", mask(email), exc)
        return
    if signup is not None:
        mail_confirmation(request, signup)


def mail_confirmation(request: Request, signup: optin.Signup) -> None:
    """The double opt-in email naming exactly `signup.newsletters` (a worker thread)."""
    from newsletter.audience.notices import confirmation

    state = request.app.state
    config = state.config
    try:
        notice = confirmation(
            config,
            state.pages,
            state.signer,
            signup.subscriber_id,
            signup.email,
            signup.newsletters,
            state.now(),
            config.serve.confirm_days,
        )
    except NewsletterError as exc:
        log.error("confirmation email for subscriber %s not sent: %s", signup.subscriber_id, exc)
        return
    mail(request, notice, signup.subscriber_id)


def _confirming(request: Request) -> tuple[int, tuple[str, ...]] | str:
    """The subscriber id and the newsletters the email named, or the message to show. A
    link from before #11 names none: refused (it would confirm whatever is pending now)."""
    max_age = request.app.state.config.serve.confirm_days * 24 * 3600
    try:
        data = request.app.state.signer.read("confirm", request.path_params["token"], max_age)
    except TokenError as exc:
        if "expired" in str(exc):
            return "This confirmation link has expired: please sign up again."
        return "This confirmation link is not valid."
    if not data.names:
        return "This confirmation link no longer works: please sign up again."
    return data.subscriber_id, data.names


def _titles(request: Request, keys: Sequence[str]) -> list[str]:
    newsletters = request.app.state.config.newsletters
    return [newsletters[k].title for k in keys if k in newsletters]


async def confirm_page(request: Request) -> Response:
    found = _confirming(request)
    if isinstance(found, str):
        return error(request, found)
    return render(
        request,
        "confirm",
        done=False,
        titles=_titles(request, found[1]),
        csrf=csrf_token(request, request.path_params["token"]),
        action=request.url.path,
    )


async def confirm(request: Request) -> Response:
    found = _confirming(request)
    if isinstance(found, str):
        return error(request, found)
    if await checked_form(request, request.path_params["token"]) is None:
        return error(request, "This form has expired: reload the page and try again.", 403)
    state = request.app.state
    subscriber_id, named = found
    result = await run_in_threadpool(
        optin.confirm, state.store, subscriber_id, named, now=state.now()
    )
    if result is None or result.suppressed:
        return error(request, "We cannot send newsletters to this address.", 410)
    preferences = state.signer.make("preferences", subscriber_id)
    return render(
        request,
        "confirm",
        done=True,
        email=mask(result.email),
        titles=_titles(request, result.newsletters),
        preferences=f"/preferences/{preferences}",
    )
