"""The API's handlers: each checks its key's scope first, reads and checks its input
(`bodies`), and does its work in a worker thread over `audience.profiles`. A sign-up's
confirmation email goes out after the answer, through the sign-up form's own mailer."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from newsletter.audience import idempotency, profiles
from newsletter.audience.apikeys import ApiKey
from newsletter.errors import ApiRefused, WriteConflict
from newsletter.store import Connection
from newsletter.web.api import bodies
from newsletter.web.api.auth import authenticate, check, json_response

READ, WRITE, CONFIRM, STATS = (
    "subscribers:read",
    "subscribers:write",
    "subscribers:confirm",
    "stats:read",
)
PAGE_DEFAULT = 100


def _view(profile: profiles.Profile, key: ApiKey, named: list[str]) -> dict[str, Any]:
    """All of it with subscribers:read; without it, only the id and the newsletters the
    caller named (a write-only key learns nothing else about the list)."""
    if key.allows(READ):
        return profile.to_json()
    return {"id": profile.id, "newsletters": {k: profile.newsletters.get(k) for k in named}}


def _offered(request: Request) -> list[str]:
    return list(request.app.state.config.newsletters)


async def create_subscriber(request: Request) -> Response:
    key = await authenticate(request, WRITE)
    raw = await request.body()
    wanted = bodies.signup(raw, _offered(request))
    if wanted.confirmed and not key.allows(CONFIRM):
        raise ApiRefused(
            "forbidden", "confirmed: true needs a key with the scope subscribers:confirm"
        )
    retry_key = bodies.idempotency_key(request.headers.get("idempotency-key"))
    state = request.app.state
    now = state.now()

    def work(conn: Connection) -> tuple[int, str, Any]:
        done = profiles.subscribe_in(
            conn,
            wanted,
            method=key.method,
            per_address=state.config.serve.signups_per_address,
            now=now,
        )
        body = json.dumps(_view(done.profile, key, wanted.newsletters), ensure_ascii=False)
        return (201 if done.created else 200), body, done.signup

    def run() -> idempotency.Outcome[Any]:
        if retry_key is None:
            with state.store.begin() as conn:
                status, body, signup = work(conn)
            return idempotency.Outcome(status, body, False, signup)
        fingerprint = idempotency.request_hash("POST", request.url.path, raw)
        return idempotency.once(state.store, key.id, retry_key, fingerprint, work, now=now)

    try:
        outcome = await run_in_threadpool(run)
    except WriteConflict:  # the same new address from another worker at once: now known
        outcome = await run_in_threadpool(run)
    background = None
    if outcome.extra is not None:
        from newsletter.web.subscribe import mail_confirmation

        background = BackgroundTask(mail_confirmation, request, outcome.extra)
    headers = {"Idempotent-Replayed": "true"} if outcome.replayed else None
    return json_response(outcome.status, outcome.body, headers, background=background)


async def list_subscribers(request: Request) -> Response:
    params = request.query_params
    state = request.app.state

    def run() -> dict[str, Any]:
        email = params.get("email")
        if email is not None:
            with state.store.begin() as conn:  # the hot path: one transaction, two queries
                check(request, READ, conn)
                others = [
                    p for p in ("newsletter", "status", "updated_since", "cursor") if p in params
                ]
                if others:
                    raise ApiRefused(
                        "invalid", f"email finds one subscriber: drop {others[0]}", others[0]
                    )
                bodies.checked_text(email, "email", 320)
                found = profiles.find_in(conn, email)
            return {"data": [found.to_json()] if found else [], "next_cursor": None}
        check(request, READ)
        newsletter = params.get("newsletter")
        if newsletter is not None:
            bodies.newsletter_key(newsletter, _offered(request), "newsletter")
        status = params.get("status")
        if status is not None and status not in bodies.STATUSES:
            raise ApiRefused("invalid", f"status: one of {', '.join(bodies.STATUSES)}", "status")
        found_page, after = profiles.page(
            state.store,
            after=bodies.cursor(params.get("cursor")),
            limit=bodies.limit(params.get("limit"), PAGE_DEFAULT, profiles.PAGE_MAX),
            newsletter=newsletter,
            status=status,
            since=bodies.since(params.get("updated_since")),
        )
        return {
            "data": [p.to_json() for p in found_page],
            "next_cursor": bodies.make_cursor(after) if after is not None else None,
        }

    return json_response(200, await run_in_threadpool(run))


async def get_subscriber(request: Request) -> Response:
    state = request.app.state

    def run() -> dict[str, Any]:
        with state.store.begin() as conn:
            check(request, READ, conn)
            subscriber_id = bodies.subscriber_id(request.path_params["id"])
            found = profiles.profile_in(conn, subscriber_id)
        if found is None:
            raise ApiRefused("not_found", "no such subscriber")
        return found.to_json()

    return json_response(200, await run_in_threadpool(run))


async def patch_subscriber(request: Request) -> Response:
    raw = await request.body()
    state = request.app.state

    def run() -> dict[str, Any]:
        with state.store.begin() as conn:  # the key and the change: one transaction
            key = check(request, WRITE, conn)
            subscriber_id = bodies.subscriber_id(request.path_params["id"])
            change = bodies.change(raw, _offered(request))
            if "subscribed" in change["newsletters"].values() and not key.allows(CONFIRM):
                raise ApiRefused(
                    "forbidden",
                    "subscribing without a confirmation needs the scope subscribers:confirm",
                )
            found = profiles.patch_in(
                conn,
                subscriber_id,
                method=key.method,
                now=state.now(),
                tier=change["tier"],
                name=change["name"],
                newsletters=change["newsletters"],
            )
        if found is None:
            raise ApiRefused("not_found", "no such subscriber")
        return _view(found, key, sorted(change["newsletters"]))

    return json_response(200, await run_in_threadpool(run))


async def delete_subscriber(request: Request) -> Response:
    key = await authenticate(request, WRITE)
    subscriber_id = bodies.subscriber_id(request.path_params["id"])
    state = request.app.state
    outbox = state.workspace.outbox_dir
    erased = await run_in_threadpool(
        lambda: profiles.erase(
            state.store, subscriber_id, outbox=outbox, method=key.method, now=state.now()
        )
    )
    if not erased:
        raise ApiRefused("not_found", "no such subscriber")
    return Response(status_code=204)


async def issue_stats(request: Request) -> Response:
    from newsletter.send.stats import issue_stats as figures

    state = request.app.state

    def run() -> dict[str, Any]:
        check(request, STATS)
        newsletter = request.path_params["newsletter"]
        raw_date = request.path_params["date"]
        if newsletter not in state.config.newsletters:
            raise ApiRefused("not_found", "no such newsletter")
        try:
            date = dt.date.fromisoformat(raw_date)
        except ValueError:
            raise ApiRefused("not_found", "no issue of that date (dates are YYYY-MM-DD)") from None
        if len(raw_date) != 10:
            raise ApiRefused("not_found", "no issue of that date (dates are YYYY-MM-DD)")
        found = figures(state.store, f"{newsletter}/{date.isoformat()}", state.workspace)
        if found is None:
            raise ApiRefused("not_found", "this issue has not been sent and no event names it")
        return found.to_json()

    return json_response(200, await run_in_threadpool(run))


async def openapi(request: Request) -> Response:
    from newsletter.web.api.openapi import document

    return json_response(200, document(str(request.base_url).rstrip("/"), _offered(request)))
